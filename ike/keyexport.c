/* ike/keyexport.c: key material as Wireshark's esp_sa and ikev2_decryption_table UAT lines, for reading captures. */
#include "crypto.h"

/* Stubs until the implementation lands. */
int ike_keyexport_esp_sa(char *buf, size_t len, uint8_t family, const uint8_t *src, const uint8_t *dst,
	uint32_t spi, uint16_t encr, uint16_t key_bits, const uint8_t *ekey, size_t ekey_len, uint16_t integ,
	const uint8_t *akey, size_t akey_len)
{ (void)buf; (void)len; (void)family; (void)src; (void)dst; (void)spi; (void)encr; (void)key_bits; (void)ekey; (void)ekey_len; (void)integ; (void)akey; (void)akey_len; return -IKE_E_NOT_SUPPORTED; }
int ike_keyexport_ikev2(char *buf, size_t len, const uint8_t *spi_i, const uint8_t *spi_r, uint16_t encr,
	uint16_t key_bits, uint16_t integ, const struct ike_sa_keys *keys)
{ (void)buf; (void)len; (void)spi_i; (void)spi_r; (void)encr; (void)key_bits; (void)integ; (void)keys; return -IKE_E_NOT_SUPPORTED; }
