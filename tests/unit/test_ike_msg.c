/* test_ike_msg.c: the IKEv2 message codec: scapy-made reference messages, round trips of every payload, strict rejection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ike/msg.h"

/* Reference messages made by scapy's independent IKEv2 encoder: /usr/bin/python3 tests/unit/ike_msg_ref.py.
 * ref_sa_init: IKE_SA_INIT request, SA(1 IKE proposal: AES-CBC-256, HMAC-SHA2-256 PRF and integrity, Curve25519),
 *   KE(31, 00..1f), Nonce(40..5f), N(NAT_DETECTION_SOURCE_IP, a0..b3), N(NAT_DETECTION_DESTINATION_IP, c0..d3).
 * ref_info_delete: INFORMATIONAL response #7, D(ESP, c0000001 c0000002), N(REKEY_SA, ESP SPI c0000003). */
static const uint8_t ref_sa_init[] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x21, 0x20, 0x22, 0x08, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0xd0, 0x22, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x2c,
	0x01, 0x01, 0x00, 0x04, 0x03, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x0c,
	0x80, 0x0e, 0x01, 0x00, 0x03, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x05,
	0x03, 0x00, 0x00, 0x08, 0x03, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08,
	0x04, 0x00, 0x00, 0x1f, 0x28, 0x00, 0x00, 0x28, 0x00, 0x1f, 0x00, 0x00,
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
	0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x29, 0x00, 0x00, 0x24,
	0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b,
	0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
	0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x29, 0x00, 0x00, 0x1c,
	0x00, 0x00, 0x40, 0x04, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3,
	0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x05, 0xc0, 0xc1, 0xc2, 0xc3,
	0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
	0xd0, 0xd1, 0xd2, 0xd3,
};
static const uint8_t ref_info_delete[] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x12, 0x13, 0x14,
	0x15, 0x16, 0x17, 0x18, 0x2a, 0x20, 0x25, 0x20, 0x00, 0x00, 0x00, 0x07,
	0x00, 0x00, 0x00, 0x38, 0x29, 0x00, 0x00, 0x10, 0x03, 0x04, 0x00, 0x02,
	0xc0, 0x00, 0x00, 0x01, 0xc0, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0c,
	0x03, 0x04, 0x40, 0x09, 0xc0, 0x00, 0x00, 0x03,
};

static const uint8_t spi_i[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static uint8_t out[4096];
static char text[8192];

/* An exact-size heap copy, so the sanitizer catches any read past the end. */
static int decode_copy(struct ike_msg *m, const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	memcpy(copy, buf, len);
	r = ike_msg_decode(m, copy, len);
	free(copy);
	return r;
}

static void test_ref_sa_init(struct ike_msg *m)
{
	const struct ike_payload *pl;
	const struct ike_proposal *pr;
	uint8_t nonce[32];

	CHECK_EQ(ike_msg_decode(m, ref_sa_init, sizeof ref_sa_init), 0, "scapy's IKE_SA_INIT request decodes");
	CHECK_MEM(m->spi_i, spi_i, 8, "SPIi");
	CHECK_EQ(m->exchange, IKE_SA_INIT, "exchange IKE_SA_INIT");
	CHECK_EQ(m->flags, IKE_FLAG_I, "flags: initiator, request");
	CHECK_EQ(m->msg_id, 0, "message ID 0");
	CHECK_EQ(m->version, 0x20, "version 2.0");
	CHECK_EQ(m->n_payloads, 5, "five payloads");
	pl = ike_msg_find(m, IKE_PL_SA, 0, 0);
	CHECK(pl && pl->u.sa.n_proposals == 1, "SA with one proposal");
	if (!pl)
		return;
	pr = &pl->u.sa.proposals[0];
	CHECK(pr->num == 1 && pr->protocol == IKE_PROTO_IKE && pr->spi.len == 0 && pr->n_transforms == 4,
	      "proposal 1, IKE, no SPI, 4 transforms");
	CHECK(pr->transforms[0].type == IKE_TR_ENCR && pr->transforms[0].id == 12 && pr->transforms[0].key_len == 256,
	      "ENCR AES-CBC key length 256");
	CHECK(pr->transforms[1].type == IKE_TR_PRF && pr->transforms[1].id == 5 && pr->transforms[1].key_len == 0,
	      "PRF HMAC-SHA2-256");
	CHECK(pr->transforms[2].type == IKE_TR_INTEG && pr->transforms[2].id == 12, "INTEG HMAC-SHA2-256-128");
	CHECK(pr->transforms[3].type == IKE_TR_DH && pr->transforms[3].id == 31, "DH Curve25519");
	pl = ike_msg_find(m, IKE_PL_KE, 0, 0);
	CHECK(pl && pl->u.ke.group == 31 && pl->u.ke.data.len == 32 && pl->u.ke.data.p[31] == 0x1f, "KE group 31, 32 bytes");
	for (int i = 0; i < 32; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	pl = ike_msg_find(m, IKE_PL_NONCE, 0, 0);
	CHECK(pl && pl->u.nonce.len == 32 && !memcmp(pl->u.nonce.p, nonce, 32), "Nonce 40..5f");
	pl = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_SOURCE_IP, 0);
	CHECK(pl && pl->u.notify.data.len == 20 && pl->u.notify.data.p[0] == 0xa0 && pl->u.notify.protocol == 0,
	      "N(NAT_DETECTION_SOURCE_IP) with its hash");
	pl = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_DESTINATION_IP, 0);
	CHECK(pl && pl->u.notify.data.len == 20 && pl->u.notify.data.p[19] == 0xd3, "N(NAT_DETECTION_DESTINATION_IP)");
	CHECK_EQ(ike_msg_encode(m, out, sizeof out), sizeof ref_sa_init, "re-encodes to the same length");
	CHECK_MEM(out, ref_sa_init, sizeof ref_sa_init, "re-encodes to scapy's bytes");
	ike_msg_dump(m, text, sizeof text);
	CHECK(strstr(text, "IKE_SA_INIT request msg_id 0 flags I--") != NULL, "trace: header line");
	CHECK(strstr(text, "ENCR (1) AES_CBC (12) key_len 256") != NULL, "trace: transform with key length");
	CHECK(strstr(text, "KE group CURVE25519 (31) 32 bytes 000102") != NULL, "trace: KE");
	CHECK(strstr(text, "N NAT_DETECTION_DESTINATION_IP (16389) protocol none (0) spi - data c0c1") != NULL,
	      "trace: notify by name with its data");
}

static void test_ref_info_delete(struct ike_msg *m)
{
	const struct ike_payload *pl;
	static const uint8_t spis[8] = { 0xc0, 0, 0, 1, 0xc0, 0, 0, 2 };

	CHECK_EQ(ike_msg_decode(m, ref_info_delete, sizeof ref_info_delete), 0, "scapy's INFORMATIONAL decodes");
	CHECK(m->exchange == IKE_INFORMATIONAL && m->flags == IKE_FLAG_R && m->msg_id == 7, "INFORMATIONAL response #7");
	pl = ike_msg_find(m, IKE_PL_DELETE, 0, 0);
	CHECK(pl && pl->u.del.protocol == IKE_PROTO_ESP && pl->u.del.spi_size == 4 && pl->u.del.n_spis == 2 &&
	      !memcmp(pl->u.del.spis, spis, 8), "D(ESP) with two SPIs");
	pl = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_REKEY_SA, 0);
	CHECK(pl && pl->u.notify.protocol == IKE_PROTO_ESP && pl->u.notify.spi.len == 4 && pl->u.notify.spi.p[3] == 3 &&
	      pl->u.notify.data.len == 0, "N(REKEY_SA) for ESP SPI c0000003");
	CHECK_EQ(ike_msg_encode(m, out, sizeof out), sizeof ref_info_delete, "re-encodes to the same length");
	CHECK_MEM(out, ref_info_delete, sizeof ref_info_delete, "re-encodes to scapy's bytes");
	ike_msg_dump(m, text, sizeof text);
	CHECK(strstr(text, "D protocol ESP (3) 2 SPIs c0000001 c0000002") != NULL, "trace: delete");
}

/* Every prefix, with the header's length as sent and with it patched to the prefix, must be refused. */
static void test_truncations(struct ike_msg *m, const uint8_t *ref, size_t len, const char *name)
{
	uint8_t buf[512];
	int as_sent = 0, patched = 0;

	for (size_t n = 0; n < len; n++) {
		memcpy(buf, ref, n);
		as_sent += decode_copy(m, buf, n) < 0;
		if (n >= IKE_HDR_LEN) {
			buf[24] = 0, buf[25] = 0, buf[26] = (uint8_t)(n >> 8), buf[27] = (uint8_t)n;
			patched += decode_copy(m, buf, n) < 0;
		} else {
			patched++;
		}
	}
	CHECK_EQ(as_sent, len, "%s: every truncation is refused", name);
	CHECK_EQ(patched, len, "%s: every truncation with a matching length field is refused", name);
}

int main(void)
{
	static struct ike_msg m;

	test_ref_sa_init(&m);
	test_ref_info_delete(&m);
	test_truncations(&m, ref_sa_init, sizeof ref_sa_init, "IKE_SA_INIT");
	test_truncations(&m, ref_info_delete, sizeof ref_info_delete, "INFORMATIONAL");
	return check_done();
}
