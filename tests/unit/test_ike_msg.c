/* test_ike_msg.c: the IKEv2 message codec: scapy-made reference messages, round trips of every payload, strict rejection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ike/crypto.h"
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

/* A message with every payload type we model, built from structs as the engine will build them. */
static struct ike_transform ike_tr[4] = {
	{ .type = IKE_TR_ENCR, .id = 20, .key_len = 256 }, { .type = IKE_TR_PRF, .id = 7 },
	{ .type = IKE_TR_DH, .id = 32 }, { .type = IKE_TR_DH, .id = 19 },
};
static struct ike_transform esp_tr[3] = {
	{ .type = IKE_TR_ENCR, .id = 12, .key_len = 128 }, { .type = IKE_TR_INTEG, .id = 12 }, { .type = IKE_TR_ESN, .id = 0 },
};
static const uint8_t esp_spi[4] = { 0xca, 0xfe, 0x00, 0x01 }, ike_spi[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
static struct ike_proposal props[2];
static struct ike_ts tsi[2] = {
	{ .type = IKE_TS_IPV4_ADDR_RANGE, .ip_proto = 6, .start_port = 80, .end_port = 443,
	  .start = { 192, 0, 2, 0 }, .end = { 192, 0, 2, 255 } },
	{ .type = IKE_TS_IPV6_ADDR_RANGE, .start_port = 0, .end_port = 65535,
	  .start = { 0x20, 0x01, 0x0d, 0xb8 }, .end = { 0x20, 0x01, 0x0d, 0xb8, [4] = 0xff, [5] = 0xff } },
};
static const uint8_t blob[300] = { 1, 2, 3 }, v4[4] = { 198, 51, 100, 7 }, v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
static const uint8_t del_spis[12] = { 0xc0, 0, 0, 1, 0xc0, 0, 0, 2, 0xc0, 0, 0, 3 };
static const uint8_t sig_hash[6] = { 0, 2, 0, 3, 0, 4 };

#define SPAN(p, n) ((struct ike_span){ (p), (n) })

static void build_everything(struct ike_msg *m)
{
	struct ike_payload *pl;

	memset(m, 0, sizeof *m);
	memcpy(m->spi_i, spi_i, 8);
	memcpy(m->spi_r, ike_spi, 8);
	m->exchange = IKE_CREATE_CHILD_SA;
	m->flags = IKE_FLAG_I | IKE_FLAG_R;
	m->msg_id = 0x01020304;
	props[0] = (struct ike_proposal){ .num = 1, .protocol = IKE_PROTO_IKE, .spi = SPAN(ike_spi, 8), .n_transforms = 4,
	                                  .transforms = ike_tr };
	props[1] = (struct ike_proposal){ .num = 2, .protocol = IKE_PROTO_ESP, .spi = SPAN(esp_spi, 4), .n_transforms = 3,
	                                  .transforms = esp_tr };
	pl = ike_msg_add(m, IKE_PL_SA);
	pl->u.sa = (struct ike_sa_payload){ .n_proposals = 2, .proposals = props };
	pl = ike_msg_add(m, IKE_PL_KE);
	pl->u.ke = (struct ike_ke){ .group = 32, .data = SPAN(blob, 56) };
	pl = ike_msg_add(m, IKE_PL_IDI);
	pl->u.id = (struct ike_id){ .type = IKE_ID_FQDN, .data = SPAN((const uint8_t *)"moon.example", 12) };
	pl = ike_msg_add(m, IKE_PL_IDR);
	pl->u.id = (struct ike_id){ .type = IKE_ID_IPV4_ADDR, .data = SPAN(v4, 4) };
	pl = ike_msg_add(m, IKE_PL_IDR);
	pl->u.id = (struct ike_id){ .type = IKE_ID_IPV6_ADDR, .data = SPAN(v6, 16) };
	pl = ike_msg_add(m, IKE_PL_IDI);
	pl->u.id = (struct ike_id){ .type = IKE_ID_RFC822_ADDR, .data = SPAN((const uint8_t *)"a@b\n", 4) };
	pl = ike_msg_add(m, IKE_PL_IDI);
	pl->u.id = (struct ike_id){ .type = IKE_ID_DER_ASN1_DN, .data = SPAN(blob, 40) };
	pl = ike_msg_add(m, IKE_PL_IDI);
	pl->u.id = (struct ike_id){ .type = IKE_ID_KEY_ID, .data = SPAN(blob, 3) };
	pl = ike_msg_add(m, IKE_PL_CERT);
	pl->u.cert = (struct ike_cert){ .encoding = 4, .data = SPAN(blob, 300) };
	pl = ike_msg_add(m, IKE_PL_CERTREQ);
	pl->u.cert = (struct ike_cert){ .encoding = 4, .data = SPAN(blob, 40) };
	pl = ike_msg_add(m, IKE_PL_AUTH);
	pl->u.auth = (struct ike_auth){ .method = 14, .data = SPAN(blob, 64) };
	pl = ike_msg_add(m, IKE_PL_NONCE);
	pl->u.nonce = SPAN(blob, 16);
	pl = ike_msg_add(m, IKE_PL_NOTIFY);
	pl->u.notify = (struct ike_notify){ .type = IKE_N_SIGNATURE_HASH_ALGORITHMS, .data = SPAN(sig_hash, 6) };
	pl = ike_msg_add(m, IKE_PL_NOTIFY);
	pl->u.notify = (struct ike_notify){ .protocol = IKE_PROTO_ESP, .type = IKE_N_REKEY_SA, .spi = SPAN(esp_spi, 4) };
	pl = ike_msg_add(m, IKE_PL_NOTIFY);
	pl->u.notify = (struct ike_notify){ .type = IKE_N_INVALID_KE_PAYLOAD, .data = SPAN((const uint8_t *)"\0\x1f", 2) };
	pl = ike_msg_add(m, IKE_PL_NOTIFY);
	pl->u.notify = (struct ike_notify){ .type = IKE_N_COOKIE, .data = SPAN(blob, 64) };
	pl = ike_msg_add(m, IKE_PL_DELETE);
	pl->u.del = (struct ike_delete){ .protocol = IKE_PROTO_ESP, .spi_size = 4, .n_spis = 3, .spis = del_spis };
	pl = ike_msg_add(m, IKE_PL_DELETE);
	pl->u.del = (struct ike_delete){ .protocol = IKE_PROTO_IKE };
	pl = ike_msg_add(m, IKE_PL_VENDOR);
	pl->raw = SPAN((const uint8_t *)"bitw", 4);
	pl = ike_msg_add(m, IKE_PL_TSI);
	pl->u.ts = (struct ike_ts_payload){ .n_ts = 2, .ts = tsi };
	pl = ike_msg_add(m, IKE_PL_TSR);
	pl->u.ts = (struct ike_ts_payload){ .n_ts = 1, .ts = tsi + 1 };
	pl = ike_msg_add(m, IKE_PL_CP);
	pl->raw = SPAN(blob, 8);
	pl = ike_msg_add(m, IKE_PL_SK);
	pl->u.sk = (struct ike_sk_payload){ .next_inner = IKE_PL_IDI, .body = SPAN(blob, 80) };
}

static int same_span(struct ike_span a, struct ike_span b)
{
	return a.len == b.len && (!a.len || !memcmp(a.p, b.p, a.len));
}

static void test_round_trip_everything(void)
{
	static struct ike_msg built, got;
	static uint8_t again[4096];
	const struct ike_payload *pl;
	int len, n = 0;

	build_everything(&built);
	len = ike_msg_encode(&built, out, sizeof out);
	CHECK(len > 0, "a message with every payload type encodes (%d)", len);
	CHECK_EQ(ike_msg_decode(&got, out, (size_t)len), 0, "and decodes");
	CHECK_EQ(got.n_payloads, built.n_payloads, "all payloads come back");
	CHECK(got.exchange == IKE_CREATE_CHILD_SA && got.flags == (IKE_FLAG_I | IKE_FLAG_R) && got.msg_id == 0x01020304 &&
	      !memcmp(got.spi_r, ike_spi, 8), "header fields");
	for (int i = 0; i < got.n_payloads; i++)
		n += got.payloads[i].type == built.payloads[i].type;
	CHECK_EQ(n, got.n_payloads, "payload types in order");
	pl = &got.payloads[0];
	CHECK(pl->u.sa.n_proposals == 2 && pl->u.sa.proposals[0].n_transforms == 4 &&
	      pl->u.sa.proposals[1].n_transforms == 3, "SA: 2 proposals with 4 and 3 transforms");
	CHECK(same_span(pl->u.sa.proposals[0].spi, SPAN(ike_spi, 8)) && same_span(pl->u.sa.proposals[1].spi, SPAN(esp_spi, 4)) &&
	      pl->u.sa.proposals[1].num == 2 && pl->u.sa.proposals[1].protocol == IKE_PROTO_ESP, "SA: proposal SPIs, numbers");
	CHECK(!memcmp(pl->u.sa.proposals[0].transforms, ike_tr, sizeof ike_tr) &&
	      !memcmp(pl->u.sa.proposals[1].transforms, esp_tr, sizeof esp_tr), "SA: transforms and key lengths");
	pl = &got.payloads[1];
	CHECK(pl->u.ke.group == 32 && same_span(pl->u.ke.data, SPAN(blob, 56)), "KE");
	CHECK(got.payloads[2].u.id.type == IKE_ID_FQDN && same_span(got.payloads[2].u.id.data, built.payloads[2].u.id.data),
	      "IDi FQDN");
	CHECK(got.payloads[3].u.id.type == IKE_ID_IPV4_ADDR && same_span(got.payloads[3].u.id.data, SPAN(v4, 4)), "IDr IPv4");
	CHECK(got.payloads[4].u.id.type == IKE_ID_IPV6_ADDR && same_span(got.payloads[4].u.id.data, SPAN(v6, 16)), "IDr IPv6");
	CHECK(got.payloads[5].u.id.type == IKE_ID_RFC822_ADDR && got.payloads[6].u.id.type == IKE_ID_DER_ASN1_DN &&
	      got.payloads[7].u.id.type == IKE_ID_KEY_ID && same_span(got.payloads[6].u.id.data, SPAN(blob, 40)),
	      "IDi RFC822, DN, KEY_ID");
	CHECK(got.payloads[8].u.cert.encoding == 4 && same_span(got.payloads[8].u.cert.data, SPAN(blob, 300)), "CERT");
	CHECK(got.payloads[9].u.cert.encoding == 4 && got.payloads[9].u.cert.data.len == 40, "CERTREQ");
	CHECK(got.payloads[10].u.auth.method == 14 && got.payloads[10].u.auth.data.len == 64, "AUTH");
	CHECK(same_span(got.payloads[11].u.nonce, SPAN(blob, 16)), "Nonce");
	CHECK(got.payloads[12].u.notify.type == IKE_N_SIGNATURE_HASH_ALGORITHMS &&
	      same_span(got.payloads[12].u.notify.data, SPAN(sig_hash, 6)), "N(SIGNATURE_HASH_ALGORITHMS)");
	CHECK(got.payloads[13].u.notify.protocol == IKE_PROTO_ESP && same_span(got.payloads[13].u.notify.spi, SPAN(esp_spi, 4)),
	      "N(REKEY_SA) with its SPI");
	CHECK(got.payloads[16].u.del.n_spis == 3 && !memcmp(got.payloads[16].u.del.spis, del_spis, 12), "D(ESP, 3 SPIs)");
	CHECK(got.payloads[17].u.del.protocol == IKE_PROTO_IKE && got.payloads[17].u.del.n_spis == 0, "D(IKE)");
	CHECK(same_span(got.payloads[18].raw, SPAN((const uint8_t *)"bitw", 4)), "Vendor ID");
	CHECK(got.payloads[19].u.ts.n_ts == 2 && !memcmp(&got.payloads[19].u.ts.ts[0], &tsi[0], sizeof tsi[0]) &&
	      !memcmp(&got.payloads[19].u.ts.ts[1], &tsi[1], sizeof tsi[1]), "TSi: IPv4 and IPv6 ranges, ports, protocol");
	CHECK(got.payloads[20].u.ts.n_ts == 1 && got.payloads[20].u.ts.ts[0].type == IKE_TS_IPV6_ADDR_RANGE, "TSr");
	CHECK(got.payloads[21].type == IKE_PL_CP && got.payloads[21].raw.len == 8, "CP kept raw");
	pl = &got.payloads[22];
	CHECK(pl->u.sk.next_inner == IKE_PL_IDI && same_span(pl->u.sk.body, SPAN(blob, 80)), "SK: first inner, body");
	CHECK(pl->off + 4 + 80 == (uint32_t)len, "SK: its offset, for the AAD");
	CHECK_EQ(ike_sk_payload_split((struct ike_sk_payload *)&pl->u.sk, 16, 16), 0, "SK splits for a 16-byte IV and ICV");
	CHECK(pl->u.sk.iv.p == out + pl->off + 4 && pl->u.sk.iv.len == 16 && pl->u.sk.ct.len == 48 &&
	      pl->u.sk.icv.p == out + len - 16 && pl->u.sk.icv.len == 16, "SK: IV, ciphertext, ICV boundaries");
	CHECK_EQ(ike_sk_payload_split((struct ike_sk_payload *)&pl->u.sk, 64, 17), -IKE_E_INVALID_SYNTAX, "SK shorter than IV + ICV refused");
	CHECK_EQ(ike_msg_encode(&got, again, sizeof again), len, "the decoded message re-encodes");
	CHECK_MEM(again, out, (size_t)len, "to the same bytes");
	CHECK_EQ(ike_msg_encode(&built, again, (size_t)len - 1), -IKE_E_NOSPACE, "one byte short: NOSPACE");
	ike_msg_dump(&got, text, sizeof text);
	CHECK(strstr(text, "IDi FQDN (2) \"moon.example\"") && strstr(text, "IDr IPV4_ADDR (1) 198.51.100.7") &&
	      strstr(text, "IDr IPV6_ADDR (5) 2001:db8::1") && strstr(text, "\"a@b\\x0a\""), "trace: identities, escaped");
	CHECK(strstr(text, "IPv4 protocol 6 ports 80-443 192.0.2.0 - 192.0.2.255") != NULL, "trace: selectors");
	CHECK(strstr(text, "N INVALID_KE_PAYLOAD (17) protocol none (0) spi - data group CURVE25519 (31)") != NULL,
	      "trace: INVALID_KE_PAYLOAD names the group");
	CHECK(strstr(text, "SK first inner IDi, 80 bytes encrypted") != NULL, "trace: SK");
	CHECK(strstr(text, "ESN (5) NO_ESN (0)") && strstr(text, "proposal 2 protocol ESP (3) spi cafe0001"), "trace: proposals");
	n = (int)strlen(text);
	CHECK_EQ(ike_msg_dump(&got, text, 10), n, "dump into a small buffer says the size it needs");
	CHECK(strlen(text) == 9, "and stays terminated");
}

/* The plaintext inside SK is a chain of its own, decoded onto the same message. */
static void test_inner(void)
{
	static struct ike_msg m;
	struct ike_payload inner[3] = { { .type = IKE_PL_IDI }, { .type = IKE_PL_AUTH }, { .type = IKE_PL_NOTIFY } };
	uint8_t plain[256];
	int len;

	inner[0].u.id = (struct ike_id){ .type = IKE_ID_FQDN, .data = SPAN((const uint8_t *)"sun", 3) };
	inner[1].u.auth = (struct ike_auth){ .method = 2, .data = SPAN(blob, 32) };
	inner[2].u.notify = (struct ike_notify){ .type = IKE_N_INITIAL_CONTACT };
	len = ike_payloads_encode(inner, 3, plain, sizeof plain);
	CHECK_EQ(len, 4 + 4 + 3 + 4 + 4 + 32 + 4 + 4, "inner chain encodes");
	CHECK_EQ(ike_msg_decode(&m, ref_info_delete, sizeof ref_info_delete), 0, "outer message");
	CHECK_EQ(ike_msg_decode_inner(&m, IKE_PL_IDI, plain, (size_t)len), 0, "inner chain decodes");
	CHECK(m.n_payloads == 5 && m.payloads[2].type == IKE_PL_IDI && m.payloads[3].u.auth.method == 2 &&
	      m.payloads[4].u.notify.type == IKE_N_INITIAL_CONTACT, "appended after the outer payloads");
	CHECK_EQ(ike_msg_decode_inner(&m, IKE_PL_NONCE, plain, (size_t)len), -IKE_E_INVALID_SYNTAX,
	         "inner chain with the wrong first type refused");
}

static void test_skf(void)
{
	static struct ike_msg m;
	struct ike_payload *pl;
	int len;

	memset(&m, 0, sizeof m);
	m.exchange = IKE_AUTH;
	pl = ike_msg_add(&m, IKE_PL_SKF);
	pl->u.sk = (struct ike_sk_payload){ .next_inner = IKE_PL_IDI, .frag_num = 1, .frag_total = 3, .body = SPAN(blob, 40) };
	len = ike_msg_encode(&m, out, sizeof out);
	CHECK_EQ(len, IKE_HDR_LEN + 4 + 4 + 40, "SKF encodes");
	CHECK_EQ(ike_msg_decode(&m, out, (size_t)len), 0, "SKF decodes");
	pl = &m.payloads[0];
	CHECK(pl->type == IKE_PL_SKF && pl->u.sk.frag_num == 1 && pl->u.sk.frag_total == 3 && pl->u.sk.body.len == 40 &&
	      pl->u.sk.next_inner == IKE_PL_IDI, "SKF: fragment 1 of 3, body");
	out[IKE_HDR_LEN + 5] = 2; /* fragment 2 of 3 still naming the first inner payload */
	CHECK_EQ(ike_msg_decode(&m, out, (size_t)len), -IKE_E_INVALID_SYNTAX, "fragment 2 with a next payload refused");
	out[IKE_HDR_LEN] = 0;
	CHECK_EQ(ike_msg_decode(&m, out, (size_t)len), 0, "fragment 2 with next payload 0 accepted");
	out[IKE_HDR_LEN + 5] = 4; /* fragment 4 of 3 */
	CHECK_EQ(ike_msg_decode(&m, out, (size_t)len), -IKE_E_INVALID_SYNTAX, "fragment number beyond the total refused");
	out[IKE_HDR_LEN + 5] = 0;
	CHECK_EQ(ike_msg_decode(&m, out, (size_t)len), -IKE_E_INVALID_SYNTAX, "fragment number 0 refused");
}

/* Encodes a header + the given payloads and decodes it; returns the decode result. */
static int decode_built(struct ike_msg *m, struct ike_payload *pl, size_t n)
{
	static struct ike_msg b;
	int len;

	memset(&b, 0, sizeof b);
	b.exchange = IKE_INFORMATIONAL;
	memcpy(b.payloads, pl, n * sizeof *pl);
	b.n_payloads = (uint8_t)n;
	len = ike_msg_encode(&b, out, sizeof out);
	if (len < 0)
		return 1000 + len;
	return ike_msg_decode(m, out, (size_t)len);
}

static void test_unknown_payloads(struct ike_msg *m)
{
	struct ike_payload pl[3] = { { .type = IKE_PL_NONCE }, { .type = 200 }, { .type = IKE_PL_VENDOR } };

	pl[0].u.nonce = SPAN(blob, 16);
	pl[1].raw = SPAN(blob, 10);
	CHECK_EQ(decode_built(m, pl, 3), 0, "unknown non-critical payload: message accepted");
	CHECK(m->n_payloads == 2 && m->payloads[1].type == IKE_PL_VENDOR && m->n_skipped == 1, "and the payload skipped");
	pl[1].critical = 1;
	CHECK_EQ(decode_built(m, pl, 3), -IKE_E_UNSUPPORTED_CRITICAL_PAYLOAD, "unknown critical payload reported");
	CHECK_EQ(m->bad_critical, 200, "with its type, for the notify");
	CHECK_EQ(ike_err_notify(-IKE_E_UNSUPPORTED_CRITICAL_PAYLOAD), IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD, "maps to its notify");
	pl[0].critical = 1;
	pl[1].critical = 0;
	CHECK_EQ(decode_built(m, pl, 3), 0, "critical bit on a known payload is fine");
}

static void test_header_errors(struct ike_msg *m)
{
	uint8_t buf[sizeof ref_sa_init + 1];

	memcpy(buf, ref_sa_init, sizeof ref_sa_init);
	buf[17] = 0x30;
	CHECK_EQ(ike_msg_decode(m, buf, sizeof ref_sa_init), -IKE_E_INVALID_MAJOR_VERSION, "version 3.0: INVALID_MAJOR_VERSION");
	CHECK_EQ(ike_err_notify(-IKE_E_INVALID_MAJOR_VERSION), IKE_N_INVALID_MAJOR_VERSION, "maps to its notify");
	buf[17] = 0x21;
	CHECK_EQ(ike_msg_decode(m, buf, sizeof ref_sa_init), 0, "version 2.1 accepted (minor is ignored)");
	buf[17] = 0x20;
	buf[sizeof ref_sa_init] = 0;
	CHECK_EQ(ike_msg_decode(m, buf, sizeof buf), -IKE_E_TRAILING_DATA, "a byte after the message: TRAILING_DATA");
	buf[27]++;
	CHECK_EQ(ike_msg_decode(m, buf, sizeof buf), -IKE_E_TRAILING_DATA, "length covering a byte no payload claims");
	buf[27]++;
	CHECK_EQ(ike_msg_decode(m, buf, sizeof buf), -IKE_E_TRUNCATED, "length beyond the datagram: TRUNCATED");
	CHECK_EQ(ike_err_notify(-IKE_E_TRUNCATED), IKE_N_INVALID_SYNTAX, "answered with INVALID_SYNTAX");
	memcpy(buf, ref_sa_init, sizeof ref_sa_init);
	buf[IKE_HDR_LEN + 3] += 4; /* SA payload claims 4 more bytes: the chain no longer lines up */
	CHECK(ike_msg_decode(m, buf, sizeof ref_sa_init) < 0, "payload length that disagrees refused");
	CHECK(strcmp(ike_err_name(-IKE_E_INVALID_SYNTAX), "IKE_E_INVALID_SYNTAX") == 0 && strcmp(ike_err_name(99), "?") == 0,
	      "error names");
}

/* Body-level rules, each on a copy of a reference message with one field broken. */
static void test_body_errors(struct ike_msg *m)
{
	uint8_t buf[sizeof ref_sa_init];
	struct ike_payload pl[IKE_MAX_PAYLOADS + 1];
	const size_t sa = IKE_HDR_LEN, prop = sa + 4, tr0 = prop + 8;

#define BROKEN(off, val, what) do { memcpy(buf, ref_sa_init, sizeof buf); buf[off] = (val); \
		CHECK_EQ(ike_msg_decode(m, buf, sizeof buf), -IKE_E_INVALID_SYNTAX, what); } while (0)
	BROKEN(prop, 2, "last proposal marked 'more'");
	BROKEN(prop + 7, 3, "proposal says 3 transforms, has 4");
	BROKEN(prop + 7, 5, "proposal says 5 transforms, has 4");
	BROKEN(tr0, 0, "first transform marked last");
	BROKEN(tr0 + 8, 0x00, "key length in TLV form");
	BROKEN(prop + 6, 4, "SPI size eating into the transforms");
#undef BROKEN
	memset(pl, 0, sizeof pl);
	pl[0].type = IKE_PL_NONCE;
	pl[0].u.nonce = SPAN(blob, 15);
	CHECK_EQ(decode_built(m, pl, 1), -IKE_E_INVALID_SYNTAX, "15-byte nonce refused");
	pl[0].u.nonce = SPAN(blob, 257);
	CHECK_EQ(decode_built(m, pl, 1), -IKE_E_INVALID_SYNTAX, "257-byte nonce refused");
	pl[0].u.nonce = SPAN(blob, 256);
	CHECK_EQ(decode_built(m, pl, 1), 0, "256-byte nonce accepted");
	pl[0].type = IKE_PL_NOTIFY;
	pl[0].u.notify = (struct ike_notify){ .type = IKE_N_NAT_DETECTION_SOURCE_IP, .data = SPAN(blob, 19) };
	CHECK_EQ(decode_built(m, pl, 1), -IKE_E_INVALID_SYNTAX, "NAT detection hash of 19 bytes refused");
	pl[0].type = IKE_PL_DELETE;
	pl[0].u.del = (struct ike_delete){ .protocol = IKE_PROTO_ESP, .spi_size = 8, .n_spis = 1, .spis = del_spis };
	CHECK_EQ(decode_built(m, pl, 1), -IKE_E_INVALID_SYNTAX, "ESP delete with 8-byte SPIs refused");
	pl[0].type = IKE_PL_IDI;
	pl[0].u.id = (struct ike_id){ .type = IKE_ID_IPV4_ADDR, .data = SPAN(v6, 16) };
	CHECK_EQ(decode_built(m, pl, 1), -IKE_E_INVALID_SYNTAX, "IPv4 identity of 16 bytes refused");
	pl[0].type = IKE_PL_TSI;
	pl[0].u.ts = (struct ike_ts_payload){ .n_ts = 2, .ts = tsi };
	CHECK_EQ(decode_built(m, pl, 1), 0, "two selectors");
	out[IKE_HDR_LEN + 4] = 3;
	CHECK_EQ(ike_msg_decode(m, out, (size_t)(IKE_HDR_LEN + 8 + 16 + 40)), -IKE_E_INVALID_SYNTAX,
	         "selector count larger than the selectors refused");
	for (int i = 0; i <= IKE_MAX_PAYLOADS; i++)
		pl[i] = (struct ike_payload){ .type = IKE_PL_VENDOR, .raw = SPAN(blob, 1) };
	CHECK_EQ(decode_built(m, pl, IKE_MAX_PAYLOADS), 0, "as many payloads as we accept");
	{
		static struct ike_msg b;
		int len;

		memset(&b, 0, sizeof b);
		memcpy(b.payloads, pl, sizeof b.payloads);
		b.n_payloads = IKE_MAX_PAYLOADS;
		len = ike_msg_encode(&b, out, sizeof out);
		/* One payload more than fits in struct ike_msg: append a Vendor ID by hand. */
		out[len - 5] = IKE_PL_VENDOR;
		memcpy(out + len, (const uint8_t[]){ 0, 0, 0, 5, 1 }, 5);
		len += 5;
		out[26] = (uint8_t)(len >> 8), out[27] = (uint8_t)len;
		CHECK_EQ(ike_msg_decode(m, out, (size_t)len), -IKE_E_TOO_MANY, "one payload more: TOO_MANY");
	}
	pl[0] = (struct ike_payload){ .type = IKE_PL_SK, .u.sk = { .body = SPAN(blob, 4) } };
	pl[1] = (struct ike_payload){ .type = IKE_PL_VENDOR, .raw = SPAN(blob, 1) };
	CHECK_EQ(decode_built(m, pl, 2), 1000 - IKE_E_BAD_PARAM, "encoding a payload after SK refused");
}

/* The codec's SK framing meets ike/crypto.c: an IKE_AUTH request encoded, encrypted, decoded, decrypted, decoded. */
static void test_sk_with_crypto(void)
{
	static struct ike_msg m;
	static uint8_t msg[2048];
	uint8_t key[36], plain[512], back[512];
	const struct ike_suite gcm = { .encr = IKE_ENCR_AES_GCM_16, .key_bits = 256 };
	struct ike_payload inner[3] = { { .type = IKE_PL_IDI }, { .type = IKE_PL_AUTH }, { .type = IKE_PL_TSI } };
	struct ike_payload *pl;
	struct ike_sk *sk = NULL;
	int len, plain_len, mlen, back_len;

	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 7);
	CHECK_EQ(ike_sk_new(&gcm, key, sizeof key, NULL, 0, &sk), 0, "AES-GCM-16-256 SK state");
	if (!sk)
		return;
	inner[0].u.id = (struct ike_id){ .type = IKE_ID_FQDN, .data = SPAN((const uint8_t *)"moon.example", 12) };
	inner[1].u.auth = (struct ike_auth){ .method = 2, .data = SPAN(blob, 32) };
	inner[2].u.ts = (struct ike_ts_payload){ .n_ts = 1, .ts = tsi };
	plain_len = ike_payloads_encode(inner, 3, plain, sizeof plain);
	memset(&m, 0, sizeof m);
	memcpy(m.spi_i, spi_i, 8);
	memcpy(m.spi_r, ike_spi, 8);
	m.exchange = IKE_AUTH;
	m.flags = IKE_FLAG_I;
	m.msg_id = 1;
	pl = ike_msg_add(&m, IKE_PL_SK);
	pl->u.sk.next_inner = IKE_PL_IDI;
	len = ike_msg_encode(&m, msg, sizeof msg);
	CHECK_EQ(len, IKE_HDR_LEN + 4, "header and an empty SK payload");
	mlen = ike_sk_encrypt(sk, msg, sizeof msg, (size_t)len - 4, plain, (size_t)plain_len);
	CHECK(mlen > len + plain_len, "encrypted (%d bytes)", mlen);
	CHECK_EQ(ike_msg_decode(&m, msg, (size_t)mlen), 0, "the encrypted message decodes");
	pl = &m.payloads[0];
	CHECK(m.n_payloads == 1 && pl->type == IKE_PL_SK && pl->off == (uint32_t)len - 4 && pl->u.sk.next_inner == IKE_PL_IDI,
	      "SK found where it was written, naming IDi");
	CHECK_EQ(ike_sk_payload_split(&pl->u.sk, 8, 16), 0, "split for GCM: 8-byte IV, 16-byte ICV");
	CHECK(pl->u.sk.icv.p + 16 == msg + mlen && pl->u.sk.ct.len >= (uint32_t)plain_len, "ICV ends the message");
	back_len = ike_sk_decrypt(sk, msg, (size_t)mlen, pl->off, back, sizeof back);
	CHECK_EQ(back_len, plain_len, "decrypts at the SK offset the codec reported");
	CHECK_EQ(ike_msg_decode_inner(&m, pl->u.sk.next_inner, back, back_len > 0 ? (size_t)back_len : 0), 0,
	         "inner payloads decode");
	CHECK(m.n_payloads == 4 && m.payloads[1].u.id.data.len == 12 && m.payloads[2].u.auth.method == 2 &&
	      m.payloads[3].u.ts.n_ts == 1, "IDi, AUTH, TSi inside");
	ike_sk_free(sk);
}

int main(void)
{
	static struct ike_msg m;

	test_ref_sa_init(&m);
	test_ref_info_delete(&m);
	test_truncations(&m, ref_sa_init, sizeof ref_sa_init, "IKE_SA_INIT");
	test_truncations(&m, ref_info_delete, sizeof ref_info_delete, "INFORMATIONAL");
	test_round_trip_everything();
	test_inner();
	test_skf();
	test_unknown_payloads(&m);
	test_header_errors(&m);
	test_body_errors(&m);
	test_sk_with_crypto();
	return check_done();
}
