/* fuzz_esp.c: inbound ESP decapsulation under every algorithm, with a valid SPI so the checks past it are reached. */
#include <stdlib.h>
#include <string.h>

#include "sa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sa *make(uint8_t enc, uint8_t integ, uint8_t klen, uint8_t ilen)
{
	struct sa_conf c = { .spi = 0x1001, .dir = DIR_IN, .enc = enc, .integ = integ, .enc_key_len = klen,
	                     .integ_key_len = ilen, .replay_window = 64, .esn = 1 };
	struct sa *sa = NULL;
	char err[128];

	memset(c.enc_key, 0x11, sizeof c.enc_key);
	memset(c.integ_key, 0x22, sizeof c.integ_key);
	c.peer.family = c.local.family = 4;
	return sa_create(&c, &sa, err, sizeof err) == 0 ? sa : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sa *sas[10];
	uint8_t *esp, *inner, nh;
	uint32_t inner_len;

	if (!sas[0]) {
		sas[0] = make(ENC_AES_GCM_256, INTEG_NONE, 36, 0);
		sas[1] = make(ENC_CHACHA20_POLY1305, INTEG_NONE, 36, 0);
		sas[2] = make(ENC_AES_CBC_128, INTEG_HMAC_SHA256_128, 16, 32);
		sas[3] = make(ENC_NULL, INTEG_HMAC_SHA1_96, 0, 20);
		sas[4] = make(ENC_AES_GCM_128, INTEG_NONE, 20, 0);
		sas[5] = make(ENC_AES_CTR_128, INTEG_AES_XCBC_96, 20, 16);
		sas[6] = make(ENC_AES_CCM8_256, INTEG_NONE, 35, 0);
		sas[7] = make(ENC_AES_CCM16_128, INTEG_NONE, 19, 0);
		sas[8] = make(ENC_AES_GMAC_128, INTEG_NONE, 20, 0);
		sas[9] = make(ENC_3DES_CBC, INTEG_HMAC_MD5_96, 24, 16);
	}
	if (size < 1 || size > 9000)
		return 0;
	esp = malloc(size - 1 ? size - 1 : 1);
	if (!esp)
		return 0;
	memcpy(esp, data + 1, size - 1);
	if (sas[data[0] % 10])
		esp_decap(sas[data[0] % 10], esp, (uint32_t)(size - 1), &inner, &inner_len, &nh);
	free(esp);
	return 0;
}
