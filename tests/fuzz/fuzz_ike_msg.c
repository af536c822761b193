/* fuzz_ike_msg.c: the IKEv2 message codec: decode, trace, the SK inside as a payload chain, and encode/decode agreeing. */
#include <stdlib.h>
#include <string.h>

#include "ike/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever the decoder accepts, the encoder must write in a form the decoder accepts again, and stably. */
static void check_round_trip(const struct ike_msg *m)
{
	static uint8_t enc[1 << 16], again[1 << 16];
	static struct ike_msg m2;
	int len = ike_msg_encode(m, enc, sizeof enc);

	if (len < 0)
		abort();
	if (ike_msg_decode(&m2, enc, (size_t)len) != 0)
		abort();
	if (ike_msg_encode(&m2, again, sizeof again) != len || memcmp(enc, again, (size_t)len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ike_msg m;
	static char text[1 << 14];
	uint8_t *buf;

	if (size > 1 << 16)
		return 0;
	/* An exact-size copy so the sanitizer sees any read past the end. */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (ike_msg_decode(&m, buf, size) == 0) {
		const struct ike_payload *sk = m.n_payloads ? &m.payloads[m.n_payloads - 1] : NULL;

		ike_msg_dump(&m, text, sizeof text);
		check_round_trip(&m);
		if (sk && (sk->type == IKE_PL_SK || sk->type == IKE_PL_SKF)) {
			struct ike_sk_payload parts = sk->u.sk;

			ike_sk_payload_split(&parts, 16, 16);
			ike_sk_payload_split(&parts, 8, 12);
			/* Pretend the body decrypted to itself: the inner parser sees attacker bytes just the same. */
			if (ike_msg_decode_inner(&m, parts.next_inner, parts.body.p, parts.body.len) == 0)
				ike_msg_dump(&m, text, sizeof text);
		}
	}
	free(buf);
	return 0;
}
