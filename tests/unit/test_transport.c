/* test_transport.c: ESP transport mode: the host's packet gains ESP after its IP header and comes back whole. */
#include <string.h>

#include "check.h"
#include "config.h"
#include "frames.h"
#include "pkt.h"
#include "sa.h"
#include "wire.h"

static bool make_pair(struct sa **out, struct sa **in)
{
	struct sa_conf c;
	char err[128];

	memset(&c, 0, sizeof c);
	c.spi = 0x4242;
	c.dir = DIR_OUT;
	c.mode = MODE_TRANSPORT;
	c.enc = ENC_AES_CBC_256;
	c.integ = INTEG_HMAC_SHA256_128;
	c.enc_key_len = 32;
	c.integ_key_len = 32;
	for (int i = 0; i < 32; i++)
		c.enc_key[i] = (uint8_t)(i * 7 + 1), c.integ_key[i] = (uint8_t)(i * 13 + 5);
	c.replay_window = 64;
	if (sa_create(&c, out, err, sizeof err) < 0)
		return false;
	c.dir = DIR_IN;
	return sa_create(&c, in, err, sizeof err) == 0;
}

/* Encap, check the wire form, decap, compare with the original frame byte for byte. */
static void round_trip(const char *what, uint8_t *frame, uint32_t len, struct sa *out, struct sa *in)
{
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
	CHECK(pkt_parse(wire, (uint32_t)n, &wpi) == 0 && wpi.proto == 50, "%s: the result is an ESP packet", what);
	CHECK(bw_addr_eq(&wpi.src, &pi.src) && bw_addr_eq(&wpi.dst, &pi.dst),
	      "%s: the outer addresses are the host's own", what);
	CHECK(wpi.ip_len + 14 == (uint32_t)n, "%s: the IP length covers the ESP packet", what);
	CHECK(pi.family == 6 || ref_ipv4_hdr_ok(wire + 14), "%s: the IPv4 header checksum is right", what);
	CHECK(get32(wire + wpi.l4_off) == 0x4242, "%s: the SPI follows the IP header", what);
	CHECK(memcmp(wire, frame, 12) == 0 && wpi.ttl == pi.ttl && wpi.tos == pi.tos,
	      "%s: MACs, TTL and TOS are the host's", what);
	CHECK(transport_decap(in, wire, &wpi, &back, &back_len) == 0, "%s: decap verifies", what);
	CHECK(back_len == len && back && memcmp(back, frame, len) == 0, "%s: decap restores the frame exactly", what);
	CHECK(back && pkt_parse(back, back_len, &rpi) == 0 && rpi.proto == pi.proto, "%s: and it parses again", what);
	CHECK(transport_decap(in, wire, &wpi, &back, &back_len) < 0, "%s: decap of the same (now plain) bytes fails",
	      what);
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
	uint8_t hbh[8 + 108] = { 17, 0, 1, 4, 0, 0, 0, 0 };
	build_udp(hbh + 8, 1, 2, 100);
	n = build_ipv6(frame, 0, "2001:db8:1::10", "2001:db8:2::10", hbh, sizeof hbh);
	CHECK(pkt_parse(frame, n, &pi) == 0 && transport_encap(out, l4, sizeof l4, frame, &pi) == -XE_NOT_SUPPORTED,
	      "an IPv6 packet with extension headers is refused");
	n = build_ipv4(frame, 17, "198.18.1.10", "198.18.2.10", NULL, 0, l4, build_udp(l4, 1, 2, 100), 0);
	CHECK(pkt_parse(frame, n, &pi) == 0 && transport_encap(out, l4, 40, frame, &pi) == -XE_MTU_EXCEEDED,
	      "no room is an error, not an overrun");
	sa_destroy(out);
	sa_destroy(in);
	return check_done();
}
