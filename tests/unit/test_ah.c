/* test_ah.c: AH (RFC 4302) round trips, mutable fields that may change on the way, tampering and replay. */
#include "check.h"
#include "config.h"
#include "sa.h"
#include "wire.h"

static const uint8_t integ_key_len[INTEG__COUNT] = { 0, 20, 32, 48, 64, 16, 16, 20, 36 };
static const int integs[] = { INTEG_HMAC_SHA1_96, INTEG_HMAC_SHA256_128, INTEG_HMAC_SHA384_192,
	                      INTEG_HMAC_SHA512_256, INTEG_AES_XCBC_96, INTEG_AES_GMAC_128, INTEG_AES_GMAC_256 };

static struct sa_conf ah_conf(int integ, bool esn, int dir)
{
	struct sa_conf c;

	memset(&c, 0, sizeof(c));
	c.spi = 0x2000u + (uint32_t)integ;
	c.dir = (uint8_t)dir;
	c.proto = PROTO_AH;
	c.enc = ENC_NULL;
	c.integ = (uint8_t)integ;
	c.integ_key_len = integ_key_len[integ];
	for (int i = 0; i < 64; i++)
		c.integ_key[i] = (uint8_t)(i * 13 + 5);
	c.esn = esn;
	c.replay_window = 64;
	return c;
}

/* An inner IPv4 ping of len bytes. */
static uint32_t inner_packet(uint8_t *p, uint32_t len)
{
	memset(p, 0, len);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 63;
	p[9] = 1;
	memcpy(p + 12, (const uint8_t[]){ 198, 18, 0, 1, 198, 19, 0, 1 }, 8);
	for (uint32_t i = 20; i < len; i++)
		p[i] = (uint8_t)i;
	return len;
}

/*
 * An outer packet with room for AH: IPv4 with opt_len bytes of options
 * (copied from opts) or IPv6 with a hop-by-hop header (hbh, 8 bytes) when
 * given. Returns the IP length; *ah_off says where AH goes.
 */
static uint32_t outer_packet(uint8_t *ip, int family, const struct sa *sa, const uint8_t *opts, uint32_t opt_len,
                             const uint8_t *hbh, uint32_t *ah_off)
{
	uint32_t ah_len = ah_hdr_len(sa, family), inner_len = 84, hdr, total;

	if (family == 4) {
		hdr = 20 + opt_len;
		total = hdr + ah_len + inner_len;
		memset(ip, 0, hdr);
		ip[0] = (uint8_t)(0x40 | hdr / 4);
		ip[1] = 0x2e;  /* DSCP + ECT(0) */
		ip[2] = (uint8_t)(total >> 8);
		ip[3] = (uint8_t)total;
		ip[4] = 0x12;
		ip[6] = 0x40;
		ip[8] = 64;
		ip[9] = 51;
		memcpy(ip + 12, (const uint8_t[]){ 192, 0, 2, 1, 198, 51, 100, 2 }, 8);
		if (opt_len)
			memcpy(ip + 20, opts, opt_len);
	} else {
		hdr = 40 + (hbh ? 8u : 0u);
		total = hdr + ah_len + inner_len;
		memset(ip, 0, hdr);
		ip[0] = 0x60;
		ip[1] = 0x21;
		ip[3] = 0x77;  /* flow label */
		ip[4] = (uint8_t)((total - 40) >> 8);
		ip[5] = (uint8_t)(total - 40);
		ip[6] = hbh ? 0 : 51;
		ip[7] = 64;
		ip[8] = 0x20, ip[9] = 0x01, ip[10] = 0x0d, ip[11] = 0xb8, ip[23] = 1;
		ip[24] = 0x20, ip[25] = 0x01, ip[26] = 0x0d, ip[27] = 0xb8, ip[39] = 2;
		if (hbh)
			memcpy(ip + 40, hbh, 8);
	}
	*ah_off = hdr;
	inner_packet(ip + hdr + ah_len, inner_len);
	return total;
}

static void round_trips(void)
{
	for (size_t a = 0; a < sizeof(integs) / sizeof(integs[0]); a++) {
		for (int family = 4; family <= 6; family += 2) {
			for (int esn = 0; esn <= 1; esn++) {
				struct sa_conf co = ah_conf(integs[a], esn, DIR_OUT), ci = ah_conf(integs[a], esn, DIR_IN);
				struct sa *out = NULL, *in = NULL;
				uint8_t pkt[512], copy[512], *inner, nh;
				uint32_t ah_off, len, inner_len;
				char err[128];
				const char *name = integ_name((uint8_t)integs[a]);

				CHECK(sa_create(&co, &out, err, sizeof(err)) == 0 && sa_create(&ci, &in, err, sizeof(err)) == 0,
				      "%s IPv%d esn %d: AH SAs created", name, family, esn);
				if (!out || !in)
					continue;
				if (esn)
					out->seq = 0x1ffffffffull;  /* the next packet crosses into the high half */
				len = outer_packet(pkt, family, out, NULL, 0, NULL, &ah_off);
				CHECK_EQ(ah_encap(out, pkt, len, ah_off, NH_IPV4), 0, "%s IPv%d esn %d: encap", name, family, esn);
				CHECK_EQ(((uint32_t)pkt[ah_off + 1] + 2) * 4, ah_hdr_len(out, family),
				         "%s IPv%d: AH length field says %u bytes (multiple of %d)", name, family,
				         ah_hdr_len(out, family), family == 6 ? 8 : 4);
				memcpy(copy, pkt, len);
				/* What routers may change: TTL/hop limit, DSCP/ECN, DF, checksum, flow label. */
				if (family == 4) {
					pkt[8] = 3, pkt[1] = 0x03, pkt[6] = 0, pkt[10] = 0xaa;
				} else {
					pkt[7] = 3, pkt[1] = 0x0f, pkt[3] = 0x55;
				}
				in->replay.top = esn ? 0x1fffffff0ull : 0;
				copy[len - 1] ^= 1;
				CHECK_EQ(ah_decap(in, copy, len, ah_off, &inner, &inner_len, &nh), -XE_AH_DIGEST_MISMATCH,
				         "%s IPv%d esn %d: a changed payload bit fails", name, family, esn);
				copy[len - 1] ^= 1;
				copy[family == 4 ? 15 : 39] ^= 1;  /* the outer source address is immutable */
				CHECK_EQ(ah_decap(in, copy, len, ah_off, &inner, &inner_len, &nh), -XE_AH_DIGEST_MISMATCH,
				         "%s IPv%d esn %d: a changed outer address fails", name, family, esn);
				CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), 0,
				         "%s IPv%d esn %d: verifies with mutable fields changed on the way", name, family, esn);
				CHECK(inner_len == 84 && nh == NH_IPV4 && inner[0] == 0x45 && inner[83] == 83,
				      "%s IPv%d esn %d: the inner packet comes back", name, family, esn);
				CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), -XE_BAD_SEQUENCE_NUMBER,
				         "%s IPv%d esn %d: the same packet again is a replay", name, family, esn);
				CHECK_EQ(atomic_load(&in->st.auth_drops), 2, "%s IPv%d esn %d: two auth drops counted", name,
				         family, esn);
				sa_destroy(out);
				sa_destroy(in);
			}
		}
	}
}

/* RFC 4302 A.1/A.2: mutable options count as zeros, immutable ones are covered. */
static void options(void)
{
	struct sa_conf co = ah_conf(INTEG_HMAC_SHA256_128, false, DIR_OUT), ci = ah_conf(INTEG_HMAC_SHA256_128, false, DIR_IN);
	/* record route (7, mutable) then router alert (148, immutable) */
	const uint8_t opts[12] = { 7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0, 0 };
	/* hop-by-hop: next header AH, an option 0x3e (change bit set) with 4 bytes */
	const uint8_t hbh[8] = { 51, 0, 0x3e, 4, 1, 2, 3, 4 }, hbh_fixed[8] = { 51, 0, 0x1e, 4, 1, 2, 3, 4 };
	struct sa *out = NULL, *in = NULL;
	uint8_t pkt[512], *inner, nh;
	uint32_t ah_off, len, inner_len;
	char err[128];

	CHECK(sa_create(&co, &out, err, sizeof(err)) == 0 && sa_create(&ci, &in, err, sizeof(err)) == 0, "SAs");
	if (!out || !in)
		return;
	len = outer_packet(pkt, 4, out, opts, sizeof(opts), NULL, &ah_off);
	ah_encap(out, pkt, len, ah_off, NH_IPV4);
	pkt[23] = 8;  /* a router recorded its address */
	CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), 0, "IPv4: a changed record-route option verifies");
	len = outer_packet(pkt, 4, out, opts, sizeof(opts), NULL, &ah_off);
	ah_encap(out, pkt, len, ah_off, NH_IPV4);
	pkt[30] = 1;
	CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), -XE_AH_DIGEST_MISMATCH,
	         "IPv4: a changed router-alert option fails");
	len = outer_packet(pkt, 6, out, NULL, 0, hbh, &ah_off);
	ah_encap(out, pkt, len, ah_off, NH_IPV4);
	pkt[44] = 9;
	CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), 0,
	         "IPv6: a hop-by-hop option marked may-change verifies after a change");
	len = outer_packet(pkt, 6, out, NULL, 0, hbh_fixed, &ah_off);
	ah_encap(out, pkt, len, ah_off, NH_IPV4);
	pkt[44] = 9;
	CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), -XE_AH_DIGEST_MISMATCH,
	         "IPv6: a hop-by-hop option not marked may-change fails after a change");
	pkt[ah_off + 1] = 0;
	CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), -XE_MALFORMED_PACKET,
	         "an AH length shorter than the ICV is malformed");
	sa_destroy(out);
	sa_destroy(in);
}

static void refusals(void)
{
	struct sa_conf c = ah_conf(INTEG_HMAC_SHA256_128, false, DIR_OUT);
	struct sa *sa = NULL;
	char err[128] = "";

	c.enc = ENC_AES_GCM_128;
	c.enc_key_len = 20;
	CHECK(sa_create(&c, &sa, err, sizeof(err)) == -XE_BAD_PARAM && sa == NULL, "AH with an encryption algorithm refused: %s", err);
	c = ah_conf(INTEG_NONE, false, DIR_OUT);
	CHECK(sa_create(&c, &sa, err, sizeof(err)) == -XE_BAD_PARAM && sa == NULL, "AH without integrity refused: %s", err);
}

/* RFC 4543 5: AES-GMAC's AH carries an 8-byte IV in front of the 16-byte ICV; the IV never repeats. */
static void gmac_layout(void)
{
	struct sa_conf co = ah_conf(INTEG_AES_GMAC_128, false, DIR_OUT), ci = ah_conf(INTEG_AES_GMAC_128, false, DIR_IN);
	struct sa *out = NULL, *in = NULL;
	uint8_t pkt[512], first[512], *inner, nh;
	uint32_t ah_off, len, inner_len;
	char err[128] = "";

	CHECK(sa_create(&co, &out, err, sizeof(err)) == 0 && sa_create(&ci, &in, err, sizeof(err)) == 0,
	      "AES-GMAC-128 AH SAs: %s", err);
	if (!out || !in)
		return;
	CHECK(ah_hdr_len(out, 4) == 36 && ah_hdr_len(out, 6) == 40, "AH with GMAC: 12 + 8 IV + 16 ICV (IPv6: padded to 40)");
	len = outer_packet(pkt, 4, out, NULL, 0, NULL, &ah_off);
	CHECK_EQ(ah_encap(out, pkt, len, ah_off, NH_IPV4), 0, "GMAC: first packet");
	memcpy(first, pkt, len);
	len = outer_packet(pkt, 4, out, NULL, 0, NULL, &ah_off);
	CHECK_EQ(ah_encap(out, pkt, len, ah_off, NH_IPV4), 0, "GMAC: second packet");
	CHECK(pkt[ah_off + 1] == 7 && memcmp(first + ah_off + 12, (const uint8_t[]){ 0, 0, 0, 0, 0, 0, 0, 1 }, 8) == 0 &&
	      memcmp(pkt + ah_off + 12, (const uint8_t[]){ 0, 0, 0, 0, 0, 0, 0, 2 }, 8) == 0,
	      "GMAC: the IV follows the sequence number (1, then 2), the length field says 9 words - 2");
	pkt[ah_off + 19] ^= 1;
	CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), -XE_AH_DIGEST_MISMATCH,
	         "GMAC: a changed IV fails (it is part of the nonce)");
	pkt[ah_off + 19] ^= 1;
	CHECK_EQ(ah_decap(in, pkt, len, ah_off, &inner, &inner_len, &nh), 0, "GMAC: the packet verifies");
	sa_destroy(out);
	sa_destroy(in);
	co = ah_conf(INTEG_AES_GMAC_128, false, DIR_OUT);
	co.proto = PROTO_ESP;
	CHECK(sa_create(&co, &out, err, sizeof(err)) == -XE_BAD_PARAM && out == NULL,
	      "ESP with integ aes-gmac-128 refused (ESP names GMAC as enc): %s", err);
}

int main(void)
{
	gmac_layout();
	round_trips();
	options();
	refusals();
	return check_done();
}
