/* test_transport.c: ESP, AH and AH+ESP transport mode: the host's packet gains them after its IP headers and comes back whole. */
#include <string.h>

#include "check.h"
#include "config.h"
#include "frames.h"
#include "pkt.h"
#include "sa.h"
#include "wire.h"

/* ESP (integ HMAC-SHA-256 with AES-CBC) or AH with integ; the SPI is 0x4242 either way. */
static bool make_sas(struct sa **out, struct sa **in, int proto, int integ, uint8_t integ_key_len)
{
	struct sa_conf c;
	char err[128];

	memset(&c, 0, sizeof c);
	c.spi = 0x4242;
	c.dir = DIR_OUT;
	c.mode = MODE_TRANSPORT;
	c.proto = (uint8_t)proto;
	c.enc = proto == PROTO_AH ? ENC_NULL : ENC_AES_CBC_256;
	c.integ = (uint8_t)integ;
	c.enc_key_len = proto == PROTO_AH ? 0 : 32;
	c.integ_key_len = integ_key_len;
	for (int i = 0; i < 32; i++)
		c.enc_key[i] = (uint8_t)(i * 7 + 1), c.integ_key[i] = (uint8_t)(i * 13 + 5);
	c.replay_window = 64;
	if (sa_create(&c, out, err, sizeof err) < 0)
		return false;
	c.dir = DIR_IN;
	return sa_create(&c, in, err, sizeof err) == 0;
}

static bool make_pair(struct sa **out, struct sa **in)
{
	return make_sas(out, in, PROTO_ESP, INTEG_HMAC_SHA256_128, 32);
}

static uint32_t split_at = 0;  /* where ESP/AH must start in the IP packet: 0 = right after the fixed header */

/* Encap, check the wire form, decap, compare with the original frame byte for byte. */
static void round_trip(const char *what, uint8_t *frame, uint32_t len, struct sa *out, struct sa *in)
{
	uint8_t proto = out->conf.proto == PROTO_AH ? 51 : 50;
	uint32_t at;
	static uint8_t wire[4096];
	struct pkt_info pi, wpi, rpi;
	uint32_t back_len = 0;
	uint8_t *back = NULL;
	int n;

	CHECK(pkt_parse(frame, len, &pi) == 0, "%s: the host's frame parses", what);
	n = transport_encap(out, wire, sizeof wire, frame, &pi);
	CHECK(n > (int)len, "%s: encap grows the frame (%d > %u)", what, n, len);
	if (n <= 0)
		return;
	at = split_at ? split_at : pi.family == 4 ? (uint32_t)(pi.l4_off - pi.l3_off) : 40;
	CHECK(pkt_parse(wire, (uint32_t)n, &wpi) == 0 && (proto == 50 ? wpi.proto == 50 : wpi.ah_off == 14 + at ||
	      wpi.proto == 51), "%s: the result is an %s packet", what, proto == 50 ? "ESP" : "AH");
	CHECK(bw_addr_eq(&wpi.src, &pi.src) && bw_addr_eq(&wpi.dst, &pi.dst),
	      "%s: the outer addresses are the host's own", what);
	CHECK(wpi.ip_len + 14 == (uint32_t)n, "%s: the IP length covers the ESP packet", what);
	CHECK(pi.family == 6 || ref_ipv4_hdr_ok(wire + 14), "%s: the IPv4 header checksum is right", what);
	CHECK(get32(wire + 14 + at + (proto == 51 ? 4 : 0)) == 0x4242, "%s: the SPI follows the IP header%s", what,
	      split_at ? "s that stay in front" : "");
	CHECK(memcmp(wire, frame, 12) == 0 && wpi.ttl == pi.ttl && wpi.tos == pi.tos,
	      "%s: MACs, TTL and TOS are the host's", what);
	CHECK(transport_decap(in, wire, &wpi, &back, &back_len) == 0, "%s: decap verifies", what);
	CHECK(back_len == len && back && memcmp(back, frame, len) == 0, "%s: decap restores the frame exactly", what);
	CHECK(back && pkt_parse(back, back_len, &rpi) == 0 && rpi.proto == pi.proto, "%s: and it parses again", what);
	CHECK(transport_decap(in, wire, &wpi, &back, &back_len) < 0, "%s: decap of the same (now plain) bytes fails",
	      what);
}

/* IPv6 hop-by-hop (option type hbh_opt) + destination options + UDP: ESP/AH goes between the two headers. */
static uint32_t hbh_do_udp(uint8_t *frame, uint8_t hbh_opt)
{
	uint8_t pl[16 + 108] = { 60, 0, hbh_opt, 4, 1, 2, 3, 4, 17, 0, 0x3e, 4, 5, 6, 7, 8 };

	build_udp(pl + 16, 5000, 53, 100);
	return build_ipv6(frame, 0, "2001:db8:1::10", "2001:db8:2::10", pl, sizeof pl);
}

static void ext_headers(void)
{
	static uint8_t frame[2048];
	struct sa *out = NULL, *in = NULL;

	CHECK(make_pair(&out, &in), "ESP SAs for extension headers");
	split_at = 48;
	round_trip("ESP IPv6 hop-by-hop + destination options", frame, hbh_do_udp(frame, 0x1e), out, in);
	split_at = 0;
	sa_destroy(out);
	sa_destroy(in);
}

/*
 * ESP after an atomic fragment header (RFC 6946) whose reserved byte is not
 * zero: a whole packet, verified; the fragment header is 8 bytes whatever
 * that byte says, and it stays in front of the restored payload.
 */
static void atomic_fragment_in(void)
{
	static uint8_t frame[2048], wire[4096];
	struct sa *out = NULL, *in = NULL;
	struct pkt_info pi, wpi, rpi;
	uint32_t back_len = 0;
	uint8_t *back = NULL, l4[256];
	int n = 0;

	CHECK(make_pair(&out, &in), "ESP SAs for the atomic fragment");
	uint32_t len = build_ipv6(frame, 17, "2001:db8:1::10", "2001:db8:2::10", l4, build_udp(l4, 5000, 53, 100));
	CHECK(pkt_parse(frame, len, &pi) == 0 && (n = transport_encap(out, wire, sizeof wire - 8, frame, &pi)) > 0,
	      "the host's packet is encapsulated");
	if (n <= 0)
		return;
	/* what a router in between may do: IPv6 | fragment (offset 0, M 0, reserved 0xa5) | ESP */
	memmove(wire + 14 + 48, wire + 14 + 40, (size_t)n - 54);
	memcpy(wire + 14 + 40, (const uint8_t[]){ 50, 0xa5, 0, 0, 0, 0, 0x12, 0x34 }, 8);
	wire[14 + 6] = 44;
	put16(wire + 14 + 4, get16(wire + 14 + 4) + 8);
	CHECK(pkt_parse(wire, (uint32_t)n + 8, &wpi) == 0 && wpi.frag == PKT_FRAG_NONE && wpi.proto == 50,
	      "an atomic fragment of ESP parses as a whole ESP packet");
	CHECK_EQ(transport_decap(in, wire, &wpi, &back, &back_len), 0,
	         "an atomic fragment header with a non-zero reserved byte in front of ESP: verified");
	CHECK(back && pkt_parse(back, back_len, &rpi) == 0 && rpi.proto == 17 && rpi.dport == 53 &&
	      back[14 + 6] == 44 && back[14 + 40] == 17 && back_len == len + 8,
	      "the host's UDP comes back behind the fragment header");
	sa_destroy(out);
	sa_destroy(in);
}

/* Verify what a router and the host's network did to the AH packet at wire (n bytes). */
static int ah_verify(struct sa *in, uint8_t *wire, uint32_t n)
{
	struct pkt_info wpi;
	uint32_t back_len;
	uint8_t *back;

	if (pkt_parse(wire, n, &wpi) < 0)
		return -XE_MALFORMED_PACKET;
	return transport_decap(in, wire, &wpi, &back, &back_len);
}

/* RFC 4302 3.3.3: what may change on the way (and how the sender predicts it) against what may not. */
static void ah_mutable(struct sa *out, struct sa *in)
{
	static uint8_t frame[2048], wire[4096], l4[256];
	/* a loose source route (131) through 198.18.9.1 to the host 198.18.2.10, then end of options */
	const uint8_t lsrr[8] = { 131, 7, 4, 198, 18, 2, 10, 0 };
	/* routing header type 0 (and type 3, unpredictable), one address left: the final destination */
	uint8_t rh[24 + 108] = { 17, 2, 0, 1, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
	uint8_t big[600 + 108] = { 17, 74, 1, 197 };  /* a 600-byte hop-by-hop header of padding */
	struct pkt_info pi;
	uint32_t n;
	int w = 0;

	n = hbh_do_udp(frame, 0x3e);
	CHECK(pkt_parse(frame, n, &pi) == 0 && (w = transport_encap(out, wire, sizeof wire, frame, &pi)) > 0,
	      "AH after hop-by-hop, before destination options");
	CHECK(wire[14 + 40] == 51 && wire[14 + 48] == 60, "hop-by-hop names AH, AH names the destination options");
	wire[14 + 7] = 1, wire[14 + 1] ^= 0xf0, wire[14 + 44] = 0xee;  /* hop limit, traffic class, may-change data */
	CHECK_EQ(ah_verify(in, wire, (uint32_t)w), 0, "AH: a changed may-change hop-by-hop option verifies");
	CHECK(pkt_parse(frame, n, &pi) == 0 && (w = transport_encap(out, wire, sizeof wire, frame, &pi)) > 0, "again");
	wire[14 + 48 + ah_hdr_len(out, 6) + 4] ^= 1;
	CHECK_EQ(ah_verify(in, wire, (uint32_t)w), -XE_AH_DIGEST_MISMATCH,
	         "AH: destination options after AH are covered whole (even a may-change option)");

	n = build_ipv4(frame, 17, "198.18.1.10", "198.18.9.1", lsrr, sizeof lsrr, l4, build_udp(l4, 1, 2, 100), 0);
	CHECK(pkt_parse(frame, n, &pi) == 0 && (w = transport_encap(out, wire, sizeof wire, frame, &pi)) > 0,
	      "AH over an IPv4 packet with a loose source route");
	/* 198.18.9.1 forwards it: the destination becomes the route's last address, its own is recorded */
	memcpy(wire + 14 + 16, (const uint8_t[]){ 198, 18, 2, 10 }, 4);
	memcpy(wire + 14 + 23, (const uint8_t[]){ 198, 18, 9, 1 }, 4);
	wire[14 + 22] = 8, wire[14 + 8] -= 1;
	CHECK_EQ(ah_verify(in, wire, (uint32_t)w), 0, "AH: the destination a source route predicts verifies at the end");

	build_udp(rh + 24, 1, 2, 100);
	n = build_ipv6(frame, 43, "2001:db8:1::10", "2001:db8:9::1", rh, sizeof rh);
	split_at = 64;
	round_trip("AH IPv6 routing header (type 0) in front", frame, n, out, in);
	CHECK(pkt_parse(frame, n, &pi) == 0 && (w = transport_encap(out, wire, sizeof wire, frame, &pi)) > 0, "again");
	/* 2001:db8:9::1 processes the routing header: the destination and the address swap, none left */
	memcpy(wire + 14 + 64 - 16, wire + 14 + 24, 16);
	memcpy(wire + 14 + 24, rh + 8, 16);
	wire[14 + 43] = 0;
	CHECK_EQ(ah_verify(in, wire, (uint32_t)w), 0, "AH: computed as at the final destination of a routing header");
	rh[2] = 3;
	n = build_ipv6(frame, 43, "2001:db8:1::10", "2001:db8:9::1", rh, sizeof rh);
	CHECK(pkt_parse(frame, n, &pi) == 0 && transport_encap(out, wire, sizeof wire, frame, &pi) == -XE_NOT_SUPPORTED,
	      "AH: a routing header whose end cannot be predicted is refused");

	for (int i = 0; i < 3; i++)
		memcpy(big + 2 + 199 * i, (const uint8_t[]){ 1, 197 }, 2);
	build_udp(big + 600, 1, 2, 100);
	n = build_ipv6(frame, 0, "2001:db8:1::10", "2001:db8:2::10", big, sizeof big);
	split_at = 640;
	round_trip("AH IPv6 after 600 bytes of hop-by-hop options", frame, n, out, in);
	split_at = 0;
}

static void ah_transport(void)
{
	static const struct {
		int integ;
		uint8_t key_len;
	} algs[] = { { INTEG_HMAC_SHA256_128, 32 }, { INTEG_AES_GMAC_128, 20 }, { INTEG_AES_GMAC_256, 36 } };
	static uint8_t frame[2048], l4[1600];
	uint8_t opt[4] = { 1, 1, 1, 0 };

	for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
		struct sa *out = NULL, *in = NULL;
		char what[96];
		uint32_t n;

		CHECK(make_sas(&out, &in, PROTO_AH, algs[a].integ, algs[a].key_len), "AH %s transport SAs",
		      integ_name((uint8_t)algs[a].integ));
		if (!out || !in)
			continue;
		snprintf(what, sizeof what, "AH %s IPv4 UDP", integ_name((uint8_t)algs[a].integ));
		n = build_ipv4(frame, 17, "198.18.1.10", "198.18.2.10", NULL, 0, l4, build_udp(l4, 5000, 53, 100), 0x4000);
		ref_l4_set(frame + 14);
		round_trip(what, frame, n, out, in);
		snprintf(what, sizeof what, "AH %s IPv4 TCP with IP options", integ_name((uint8_t)algs[a].integ));
		n = build_ipv4(frame, 6, "198.18.1.10", "198.18.2.10", opt, 4, l4,
		               build_tcp(l4, 40000, 443, 7, 0x18, NULL, 0, 1000), 0);
		ref_l4_set(frame + 14);
		round_trip(what, frame, n, out, in);
		snprintf(what, sizeof what, "AH %s IPv6 UDP", integ_name((uint8_t)algs[a].integ));
		n = build_ipv6(frame, 17, "2001:db8:1::10", "2001:db8:2::10", l4, build_udp(l4, 5000, 53, 333));
		round_trip(what, frame, n, out, in);
		snprintf(what, sizeof what, "AH %s IPv6 hop-by-hop + destination options", integ_name((uint8_t)algs[a].integ));
		split_at = 48;
		round_trip(what, frame, hbh_do_udp(frame, 0x1e), out, in);
		split_at = 0;
		if (a == 0)
			ah_mutable(out, in);
		sa_destroy(out);
		sa_destroy(in);
	}
}

/*
 * An AH+ESP bundle (esp[0]/ah[0] out, esp[1]/ah[1] in): IP | AH | ESP |
 * payload, AH's ICV over the ESP packet; AH comes off first, then ESP, and
 * the host's frame is back byte for byte.
 */
static void bundle_round_trip(const char *what, uint8_t *frame, uint32_t len, struct sa *const esp[2],
                              struct sa *const ah[2])
{
	static uint8_t wire[4096], copy[4096];
	struct pkt_info pi, wpi, mpi, rpi;
	uint32_t at, ah_len, mid_len = 0, back_len = 0;
	uint8_t *mid = NULL, *back = NULL;
	int n;

	CHECK(pkt_parse(frame, len, &pi) == 0, "%s: the host's frame parses", what);
	n = transport_encap_bundle(esp[0], ah[0], wire, sizeof wire, frame, &pi);
	ah_len = ah_hdr_len(ah[0], pi.family);
	CHECK(n > (int)(len + ah_len), "%s: encap adds AH and ESP (%d > %u + %u)", what, n, len, ah_len);
	if (n <= 0)
		return;
	at = split_at ? split_at : pi.family == 4 ? (uint32_t)(pi.l4_off - pi.l3_off) : 40;
	CHECK(pkt_parse(wire, (uint32_t)n, &wpi) == 0 && wpi.ip_len + 14 == (uint32_t)n &&
	      bw_addr_eq(&wpi.src, &pi.src) && bw_addr_eq(&wpi.dst, &pi.dst),
	      "%s: one packet between the host's own addresses, its IP length covering AH and ESP", what);
	CHECK(pi.family == 6 ? wpi.ah_off == 14 + at && wpi.proto == 50 : wire[14 + 9] == 51,
	      "%s: the IP headers name AH", what);
	CHECK(wire[14 + at] == 50 && get32(wire + 14 + at + 4) == 0x4242 && get32(wire + 14 + at + ah_len) == 0x4242,
	      "%s: AH names ESP, which follows it with its SPI", what);
	CHECK(pi.family == 6 || ref_ipv4_hdr_ok(wire + 14), "%s: the IPv4 header checksum is right", what);
	memcpy(copy, wire, (size_t)n);
	copy[n - 1] ^= 1;
	CHECK(transport_decap(ah[1], copy, &wpi, &mid, &mid_len) == -XE_AH_DIGEST_MISMATCH,
	      "%s: AH covers the ESP packet (its last byte changed fails AH)", what);
	CHECK(transport_decap(ah[1], wire, &wpi, &mid, &mid_len) == 0, "%s: AH verifies", what);
	CHECK(mid && pkt_parse(mid, mid_len, &mpi) == 0 && mpi.proto == 50 && mpi.l4_off == 14 + at && !mpi.ah_off,
	      "%s: what AH leaves is the host's IP headers and ESP", what);
	if (!mid || mpi.proto != 50)
		return;
	CHECK(transport_decap(esp[1], mid, &mpi, &back, &back_len) == 0, "%s: then ESP decrypts", what);
	CHECK(back_len == len && back && memcmp(back, frame, len) == 0, "%s: the host's frame is restored exactly", what);
	CHECK(back && pkt_parse(back, back_len, &rpi) == 0 && rpi.proto == pi.proto, "%s: and it parses again", what);
}

static void bundle_transport(void)
{
	static uint8_t frame[2048], l4[1600];
	struct sa *esp[2] = { NULL, NULL }, *ah[2] = { NULL, NULL };
	struct pkt_info pi;
	uint32_t n;

	CHECK(make_pair(&esp[0], &esp[1]) && make_sas(&ah[0], &ah[1], PROTO_AH, INTEG_HMAC_SHA256_128, 32),
	      "an ESP and an AH transport SA pair sharing SPI 0x4242");
	if (!esp[0] || !esp[1] || !ah[0] || !ah[1])
		return;
	n = build_ipv4(frame, 17, "198.18.1.10", "198.18.2.10", NULL, 0, l4, build_udp(l4, 5000, 53, 100), 0x4000);
	ref_l4_set(frame + 14);
	bundle_round_trip("bundle IPv4 UDP", frame, n, esp, ah);
	n = build_ipv6(frame, 17, "2001:db8:1::10", "2001:db8:2::10", l4, build_udp(l4, 5000, 53, 333));
	bundle_round_trip("bundle IPv6 UDP", frame, n, esp, ah);
	split_at = 48;
	bundle_round_trip("bundle IPv6 hop-by-hop + destination options", frame, hbh_do_udp(frame, 0x1e), esp, ah);
	split_at = 0;
	n = build_ipv4(frame, 17, "198.18.1.10", "198.18.2.10", NULL, 0, l4, build_udp(l4, 1, 2, 100), 0);
	CHECK(pkt_parse(frame, n, &pi) == 0 &&
	      transport_encap_bundle(esp[0], ah[0], l4, 14 + 20 + ah_hdr_len(ah[0], 4) + 40, frame, &pi) ==
	              -XE_MTU_EXCEEDED,
	      "bundle: room for AH but not ESP is an error, not an overrun");
	for (int i = 0; i < 2; i++)
		sa_destroy(esp[i]), sa_destroy(ah[i]);
}

int main(void)
{
	static uint8_t frame[2048], l4[1600];
	struct sa *out = NULL, *in = NULL;
	struct pkt_info pi;
	uint8_t opt[4] = { 1, 1, 1, 0 };  /* NOPs and end of options */
	uint32_t n;

	CHECK(make_pair(&out, &in), "transport SAs are created");
	n = build_ipv4(frame, 17, "198.18.1.10", "198.18.2.10", NULL, 0, l4, build_udp(l4, 5000, 53, 100), 0x4000);
	ref_l4_set(frame + 14);
	round_trip("IPv4 UDP", frame, n, out, in);
	n = build_ipv4(frame, 6, "198.18.1.10", "198.18.2.10", opt, 4, l4,
	               build_tcp(l4, 40000, 443, 7, 0x18, NULL, 0, 1000), 0);
	ref_l4_set(frame + 14);
	round_trip("IPv4 TCP with IP options", frame, n, out, in);
	n = build_ipv6(frame, 17, "2001:db8:1::10", "2001:db8:2::10", l4, build_udp(l4, 5000, 53, 333));
	ref_l4_set(frame + 14);
	round_trip("IPv6 UDP", frame, n, out, in);

	/* What transport mode refuses rather than guesses at. */
	n = build_ipv4(frame, 17, "198.18.1.10", "198.18.2.10", NULL, 0, l4, build_udp(l4, 1, 2, 100), 0x2000);
	CHECK(pkt_parse(frame, n, &pi) == 0 && transport_encap(out, l4, sizeof l4, frame, &pi) == -XE_NOT_SUPPORTED,
	      "a fragment is not transport-encapsulated");
	uint8_t frag6[8 + 108] = { 17, 0, 0, 0, 0, 0, 0, 1 };  /* an atomic fragment: a whole packet */
	build_udp(frag6 + 8, 1, 2, 100);
	n = build_ipv6(frame, 44, "2001:db8:1::10", "2001:db8:2::10", frag6, sizeof frag6);
	CHECK(pkt_parse(frame, n, &pi) == 0 && transport_encap(out, l4, sizeof l4, frame, &pi) == -XE_NOT_SUPPORTED,
	      "an IPv6 packet with a fragment header is refused");
	n = build_ipv4(frame, 17, "198.18.1.10", "198.18.2.10", NULL, 0, l4, build_udp(l4, 1, 2, 100), 0);
	CHECK(pkt_parse(frame, n, &pi) == 0 && transport_encap(out, l4, 40, frame, &pi) == -XE_MTU_EXCEEDED,
	      "no room is an error, not an overrun");
	sa_destroy(out);
	sa_destroy(in);
	ext_headers();
	atomic_fragment_in();
	ah_transport();
	bundle_transport();
	return check_done();
}
