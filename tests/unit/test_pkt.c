/* test_pkt.c: frame parsing, address helpers and checksums, plus a crash hunt with random frames. */
#include <stdlib.h>

#include "check.h"
#include "frames.h"
#include "ip.h"
#include "pkt.h"
#include "wire.h"

static uint8_t f[2048], l4[2048];

static void test_ipv4_udp(void)
{
	struct pkt_info pi;
	uint32_t n = build_udp(l4, 1234, 53, 10);
	uint32_t len = build_ipv4(f, 17, "198.18.0.10", "192.0.2.1", NULL, 0, l4, n, 0x4000);
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v4 UDP parses");
	CHECK_EQ(pi.family, 4, "family 4");
	CHECK_EQ(pi.ethertype, 0x0800, "ethertype");
	CHECK_EQ(pi.proto, 17, "proto UDP");
	CHECK_EQ(pi.sport, 1234, "sport");
	CHECK_EQ(pi.dport, 53, "dport");
	CHECK_EQ(pi.l3_off, 14, "l3_off");
	CHECK_EQ(pi.l4_off, 34, "l4_off");
	CHECK_EQ(pi.ip_len, 38, "ip_len");
	CHECK_EQ(pi.df, 1, "DF seen");
	CHECK_EQ(pi.tos, 0x28, "tos");
	CHECK_EQ(pi.ttl, 61, "ttl");
	CHECK_EQ(pi.frag, PKT_FRAG_NONE, "not a fragment");
	struct bw_addr a;
	bw_addr_parse("198.18.0.10", &a);
	CHECK(bw_addr_eq(&pi.src, &a), "src address");
	bw_addr_parse("192.0.2.1", &a);
	CHECK(bw_addr_eq(&pi.dst, &a), "dst address");

	/* Ethernet pads short frames to 60 bytes: that is not part of the IP packet. */
	uint8_t padded[60] = { 0 };
	memcpy(padded, f, len);
	CHECK_EQ(pkt_parse(padded, 60, &pi), 0, "padded frame parses");
	CHECK_EQ(pi.ip_len, 38, "padding not counted in ip_len");
}

static void test_ipv4_options_and_frags(void)
{
	struct pkt_info pi;
	uint8_t opt[12] = { 0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0 }; /* router alert, record route */
	uint32_t n = build_tcp(l4, 40000, 443, 1, 0x02, NULL, 0, 0);
	uint32_t len = build_ipv4(f, 6, "198.18.0.10", "192.0.2.1", opt, 12, l4, n, 0);
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v4 with options parses");
	CHECK_EQ(pi.l4_off, 14 + 32, "l4_off after options");
	CHECK_EQ(pi.dport, 443, "TCP dport after options");

	n = build_udp(l4, 5000, 6000, 100);
	len = build_ipv4(f, 17, "198.18.0.10", "192.0.2.1", NULL, 0, l4, 64, 0x2000);
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "first fragment parses");
	CHECK_EQ(pi.frag, PKT_FRAG_FIRST, "first fragment");
	CHECK_EQ(pi.sport, 5000, "ports from first fragment");
	len = build_ipv4(f, 17, "198.18.0.10", "192.0.2.1", NULL, 0, l4 + 64, 44, 8);
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "later fragment parses");
	CHECK_EQ(pi.frag, PKT_FRAG_OTHER, "later fragment");
	CHECK_EQ(pi.l4_off, 0, "no l4 in later fragment");
	CHECK_EQ(pi.proto, 17, "proto of later fragment");
	CHECK_EQ(pi.sport, 0, "no ports in later fragment");

	n = build_udp(l4, 1, 2, 0);
	len = build_ipv4(f, 1, "198.18.0.10", "192.0.2.1", NULL, 0, (const uint8_t[]){ 3, 4, 0, 0, 0, 0, 5, 0xdc }, 8, 0);
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "ICMP parses");
	CHECK(pi.sport == 3 && pi.dport == 4, "ICMP type/code in sport/dport");
}

static void test_ipv4_malformed(void)
{
	struct pkt_info pi;
	uint32_t n = build_udp(l4, 1, 2, 20);
	uint32_t len = build_ipv4(f, 17, "198.18.0.10", "192.0.2.1", NULL, 0, l4, n, 0);
	uint8_t *ip = f + 14;
	uint8_t save[20];
	memcpy(save, ip, 20);

	ip[0] = 0x44;
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "IHL < 5");
	CHECK_EQ(pi.family, 0, "nothing reported for a malformed packet");
	memcpy(ip, save, 20);
	ip[0] = 0x55;
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "wrong version");
	memcpy(ip, save, 20);
	put16(ip + 2, 19);
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "total length < header");
	memcpy(ip, save, 20);
	put16(ip + 2, (uint16_t)(len - 14 + 1));
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "total length beyond frame");
	memcpy(ip, save, 20);
	ip[0] = 0x4f;
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "IHL beyond total length");
	memcpy(ip, save, 20);
	CHECK_EQ(pkt_parse(f, 14 + 19, &pi), -XE_MALFORMED_PACKET, "truncated IPv4 header");
	put16(ip + 2, 20 + 7);
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "truncated UDP header");
	CHECK_EQ(pkt_parse(f, 13, &pi), -XE_MALFORMED_PACKET, "runt frame");

	n = build_tcp(l4, 1, 2, 0, 0x10, NULL, 0, 0);
	l4[12] = 0x60; /* 24-byte header in a 20-byte segment */
	len = build_ipv4(f, 6, "198.18.0.10", "192.0.2.1", NULL, 0, l4, n, 0);
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "TCP data offset beyond packet");
	l4[12] = 0x40;
	len = build_ipv4(f, 6, "198.18.0.10", "192.0.2.1", NULL, 0, l4, n, 0);
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "TCP data offset < 5");
}

static void test_ipv6(void)
{
	struct pkt_info pi;
	uint8_t pl[600];
	/* hop-by-hop (8) -> routing (16) -> destination options (8) -> TCP */
	memset(pl, 0, sizeof(pl));
	pl[0] = 43; pl[1] = 0; pl[2] = 1; pl[3] = 4;
	pl[8] = 60; pl[9] = 1;
	pl[24] = 6; pl[25] = 0; pl[26] = 1; pl[27] = 4;
	uint32_t n = build_tcp(pl + 32, 40000, 22, 7, 0x02, NULL, 0, 5);
	uint32_t len = build_ipv6(f, 0, "2001:db8::1", "2001:db8:1::2", pl, 32 + n);
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v6 with extension headers parses");
	CHECK_EQ(pi.family, 6, "family 6");
	CHECK_EQ(pi.proto, 6, "proto TCP after extension headers");
	CHECK_EQ(pi.l4_off, 14 + 40 + 32, "l4_off after extension headers");
	CHECK_EQ(pi.dport, 22, "TCP dport");
	CHECK_EQ(pi.tos, 0xb7, "traffic class");
	CHECK_EQ(pi.ttl, 59, "hop limit");
	CHECK_EQ(pi.ip_len, 40 + 32 + n, "ip_len");
	struct bw_addr a;
	bw_addr_parse("2001:db8:1::2", &a);
	CHECK(bw_addr_eq(&pi.dst, &a), "v6 dst");

	CHECK_EQ(pkt_parse(f, len - 1, &pi), -XE_MALFORMED_PACKET, "payload length beyond frame");
	len = build_ipv6(f, 0, "2001:db8::1", "2001:db8:1::2", pl, 20);
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "extension header chain truncated");
	len = build_ipv6(f, 60, "2001:db8::1", "2001:db8:1::2", (const uint8_t[]){ 0, 0, 1, 4, 0, 0, 0, 0 }, 8);
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "hop-by-hop not first");
	f[14] = 0x40;
	CHECK_EQ(pkt_parse(f, len, &pi), -XE_MALFORMED_PACKET, "version 4 in an IPv6 frame");
	CHECK_EQ(pkt_parse(f, 14 + 39, &pi), -XE_MALFORMED_PACKET, "truncated IPv6 header");

	/* Fragment header: first fragment sees the ports, later ones the protocol only. */
	uint8_t fh[8 + 16] = { 17, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef };
	build_udp(fh + 8, 7, 9, 8);
	len = build_ipv6(f, 44, "2001:db8::1", "2001:db8::2", fh, sizeof(fh));
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v6 first fragment parses");
	CHECK_EQ(pi.frag, PKT_FRAG_FIRST, "v6 first fragment");
	CHECK(pi.proto == 17 && pi.sport == 7 && pi.dport == 9, "v6 first fragment ports");
	fh[2] = 0x05; fh[3] = 0x00; /* offset 160, last */
	len = build_ipv6(f, 44, "2001:db8::1", "2001:db8::2", fh, sizeof(fh));
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v6 later fragment parses");
	CHECK_EQ(pi.frag, PKT_FRAG_OTHER, "v6 later fragment");
	CHECK(pi.proto == 17 && pi.l4_off == 0 && pi.sport == 0, "v6 later fragment: proto, no l4");
	fh[2] = 0; fh[3] = 0; /* atomic fragment: a whole packet (RFC 6946) */
	len = build_ipv6(f, 44, "2001:db8::1", "2001:db8::2", fh, sizeof(fh));
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "atomic fragment parses");
	CHECK(pi.frag == PKT_FRAG_NONE && pi.sport == 7, "atomic fragment is not a fragment");

	/* AH is skipped by its length; ESP stops the walk. */
	uint8_t ah[24 + 8] = { 17, 4 };
	build_udp(ah + 24, 500, 500, 0);
	len = build_ipv6(f, 51, "2001:db8::1", "2001:db8::2", ah, sizeof(ah));
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v6 AH parses");
	CHECK(pi.proto == 17 && pi.l4_off == 14 + 40 + 24 && pi.sport == 500, "UDP after AH");
	uint8_t esp[16] = { 0, 0, 0x10, 0x01, 0, 0, 0, 1 };
	len = build_ipv6(f, 50, "2001:db8::1", "2001:db8::2", esp, sizeof(esp));
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v6 ESP parses");
	CHECK(pi.proto == 50 && pi.l4_off == 54 && pi.sport == 0, "walk stops at ESP");

	uint8_t icmp6[8] = { 128, 0, 0, 0, 0, 1, 0, 1 };
	len = build_ipv6(f, 58, "2001:db8::1", "2001:db8::2", icmp6, 8);
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "ICMPv6 parses");
	CHECK(pi.sport == 128 && pi.dport == 0, "ICMPv6 type in sport");
}

/* Append one extension header of type `type` (nh: the header after it) at h; returns its length. */
static uint32_t ext(uint8_t *h, uint8_t type, uint8_t nh)
{
	switch (type) {
	case 44:  /* fragment: always 8 bytes; byte 1 is reserved (non-zero here on purpose) */
		memcpy(h, (const uint8_t[]){ nh, 0x5a, 0, 0, 1, 2, 3, 4 }, 8);
		return 8;
	case 51:  /* AH with a 12-byte ICV: 24 bytes, length field 4 (4-byte words less 2) */
		memset(h, 0, 24);
		h[0] = nh, h[1] = 4, h[7] = 0x42;
		return 24;
	case 43:  /* routing type 2, no segments left: 24 bytes */
		memset(h, 0, 24);
		h[0] = nh, h[1] = 2, h[2] = 2;
		return 24;
	default:  /* hop-by-hop or destination options, 16 bytes, a PadN */
		memset(h, 0, 16);
		h[0] = nh, h[1] = 1, h[2] = 1, h[3] = 12;
		return 16;
	}
}

/* IPv6 with the extension headers types[0..n) then UDP; pkt_parse's verdict, and the walk over the same bytes. */
static int ext_chain(const uint8_t *types, uint32_t n, struct pkt_info *pi, uint32_t *hdrs)
{
	uint8_t pl[256];
	uint32_t off = 0;

	for (uint32_t i = 0; i < n; i++)
		off += ext(pl + off, types[i], i + 1 < n ? types[i + 1] : 17);
	build_udp(pl + off, 4000, 53, 16);
	*hdrs = off;
	return pkt_parse(f, build_ipv6(f, n ? types[0] : 17, "2001:db8::1", "2001:db8::2", pl, off + 24), pi);
}

/* The extension-header walker every IPv6 reader shares, through pkt_parse and directly. */
static void test_ipv6_walk(void)
{
	static const struct {
		const char *what;
		uint8_t types[5];
		uint32_t n;
		uint32_t ah_at;  /* IP-relative, 0: none */
	} chains[] = {
		{ "hop-by-hop", { 0 }, 1, 0 },
		{ "routing", { 43 }, 1, 0 },
		{ "destination options", { 60 }, 1, 0 },
		{ "atomic fragment with a non-zero reserved byte", { 44 }, 1, 0 },
		{ "AH", { 51 }, 1, 40 },
		{ "hop-by-hop, routing, destination options", { 0, 43, 60 }, 3, 0 },
		{ "hop-by-hop, atomic fragment, AH", { 0, 44, 51 }, 3, 64 },
		{ "hop-by-hop, destination options, routing, AH, destination options", { 0, 60, 43, 51, 60 }, 5, 96 },
		{ "routing, atomic fragment, destination options", { 43, 44, 60 }, 3, 0 },
	};
	struct pkt_info pi;
	uint32_t hdrs;

	for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
		int rc = ext_chain(chains[i].types, chains[i].n, &pi, &hdrs);

		CHECK(rc == 0 && pi.proto == 17 && pi.l4_off == 14 + 40 + hdrs && pi.dport == 53 &&
		      pi.frag == PKT_FRAG_NONE, "%s: UDP found after %u bytes of headers (rc %d, l4_off %u)",
		      chains[i].what, hdrs, rc, pi.l4_off);
		CHECK_EQ(pkt_ah_at(&pi), chains[i].ah_at, "%s: where AH is", chains[i].what);

		struct ipv6_walk w;
		const uint8_t *ip = f + 14;
		uint32_t steps = 0, last_nh_at = 6;

		ipv6_walk_start(ip, &w);
		while ((rc = ipv6_walk_step(ip, 40 + hdrs + 24, &w)) > 0)
			steps++, last_nh_at = w.nh_at;
		CHECK(rc == 0 && steps == chains[i].n && w.off == 40 + hdrs && w.nh == 17 && w.nh_at == last_nh_at &&
		      ip[w.nh_at] == 17, "%s: the walk steps over %u headers to UDP", chains[i].what, chains[i].n);
	}

	/* A fragment in a chain that is not atomic: the first sees the ports, the others only the protocol. */
	uint8_t types[] = { 0, 44 };
	CHECK(ext_chain(types, 2, &pi, &hdrs) == 0, "hop-by-hop + fragment parses");
	f[14 + 40 + 16 + 3] = 1;  /* M: more fragments */
	CHECK(pkt_parse(f, 14 + 40 + hdrs + 24, &pi) == 0 && pi.frag == PKT_FRAG_FIRST && pi.dport == 53,
	      "first fragment after hop-by-hop: ports read");
	f[14 + 40 + 16 + 2] = 0x01;  /* offset 32 */
	CHECK(pkt_parse(f, 14 + 40 + hdrs + 24, &pi) == 0 && pi.frag == PKT_FRAG_OTHER && pi.proto == 17 &&
	      pi.l4_off == 0 && pkt_ah_at(&pi) == 0, "later fragment after hop-by-hop: protocol only");

	/* Headers that do not fit. */
	struct ipv6_walk w = { .off = 40, .nh_at = 6, .nh = 44 };
	uint8_t ip[48] = { 0 };
	CHECK_EQ(ipv6_walk_step(ip, 47, &w), -XE_MALFORMED_PACKET, "a fragment header needs 8 bytes");
	CHECK(ipv6_walk_step(ip, 48, &w) == 1 && w.off == 48 && w.nh_at == 40, "and 8 are enough");
	w = (struct ipv6_walk){ .off = 40, .nh_at = 6, .nh = 51 };
	ip[41] = 1;  /* 12 bytes */
	CHECK_EQ(ipv6_walk_step(ip, 41, &w), -XE_MALFORMED_PACKET, "AH's length byte beyond the end");
	CHECK(ipv6_walk_step(ip, 52, &w) == 1 && w.off == 52, "AH of 12 bytes");
	w = (struct ipv6_walk){ .off = 40, .nh_at = 6, .nh = 60 };
	CHECK_EQ(ipv6_walk_step(ip, 48, &w), -XE_MALFORMED_PACKET, "destination options of 16 bytes in 8");
	w = (struct ipv6_walk){ .off = 40, .nh_at = 6, .nh = 50 };
	CHECK(ipv6_walk_step(ip, 48, &w) == 0 && w.off == 40, "ESP ends the walk");
}

/* IPv4: AH is where the protocol field says, unless the fragment carries no header to read. */
static void test_ipv4_ah_at(void)
{
	struct pkt_info pi;
	uint8_t ah[24] = { 4, 4 };
	uint32_t len = build_ipv4(f, 51, "192.0.2.1", "192.0.2.2", NULL, 0, ah, sizeof ah, 0);

	CHECK(pkt_parse(f, len, &pi) == 0 && pkt_ah_at(&pi) == 20, "IPv4 AH right after the header");
	len = build_ipv4(f, 51, "192.0.2.1", "192.0.2.2", NULL, 0, ah, sizeof ah, 0x2001);  /* MF, offset 8 */
	CHECK(pkt_parse(f, len, &pi) == 0 && pi.frag == PKT_FRAG_OTHER && pkt_ah_at(&pi) == 0,
	      "a later IPv4 fragment of AH has no AH header to read (no offset from l4_off 0)");
}

static void test_non_ip(void)
{
	struct pkt_info pi;
	uint8_t arp[42] = { 0 };
	put16(arp + 12, 0x0806);
	CHECK_EQ(pkt_parse(arp, sizeof(arp), &pi), 0, "ARP is not an error");
	CHECK(pi.family == 0 && pi.ethertype == 0x0806, "ARP: not IP");
	uint32_t len = build_ipv4(f, 17, "198.18.0.10", "192.0.2.1", NULL, 0, l4, build_udp(l4, 1, 2, 0), 0);
	memmove(f + 16, f + 12, len - 12);
	put16(f + 12, 0x8100);
	CHECK_EQ(pkt_parse(f, len + 2, &pi), 0, "802.1Q frame is not an error");
	CHECK_EQ(pi.family, 0, "802.1Q frames are treated as non-IP");
}

static void test_addr(void)
{
	struct bw_addr a, b, net;
	char buf[64];
	CHECK_EQ(bw_addr_parse("192.0.2.33", &a), 0, "parse v4");
	CHECK(a.family == 4 && a.a[3] == 33 && a.a[4] == 0, "v4 bytes");
	CHECK_EQ(bw_addr_parse("2001:db8::a:1", &b), 0, "parse v6");
	CHECK(b.family == 6 && b.a[15] == 1 && b.a[13] == 0x0a, "v6 bytes");
	CHECK_EQ(bw_addr_parse("192.0.2.256", &a), -XE_BAD_PARAM, "bad v4 rejected");
	CHECK_EQ(a.family, 0, "rejected address cleared");
	CHECK_EQ(bw_addr_parse("2001:db8:::1", &a), -XE_BAD_PARAM, "bad v6 rejected");
	CHECK_EQ(bw_addr_parse("", &a), -XE_BAD_PARAM, "empty rejected");
	CHECK_EQ(bw_addr_parse(NULL, &a), -XE_BAD_PARAM, "NULL rejected");
	CHECK(strcmp(bw_addr_str(&b, buf, sizeof(buf)), "2001:db8::a:1") == 0, "v6 to string");
	bw_addr_parse("198.51.100.7", &a);
	CHECK(strcmp(bw_addr_str(&a, buf, sizeof(buf)), "198.51.100.7") == 0, "v4 to string");
	CHECK(strcmp(bw_addr_str(&a, buf, 4), "198.51.100.7") != 0 && strlen(buf) < 4, "short buffer: no overflow");
	CHECK(!bw_addr_eq(&a, &b), "v4 != v6");
	bw_addr_parse("198.51.100.7", &b);
	CHECK(bw_addr_eq(&a, &b), "equal v4");
	bw_addr_parse("198.51.100.0", &net);
	CHECK(bw_addr_in_prefix(&a, &net, 24), "in /24");
	CHECK(bw_addr_in_prefix(&a, &net, 29), "in /29");
	CHECK(!bw_addr_in_prefix(&a, &net, 30), "not in /30");
	CHECK(!bw_addr_in_prefix(&a, &net, 32), "not /32");
	CHECK(bw_addr_in_prefix(&a, &b, 32), "/32 of itself");
	bw_addr_parse("0.0.0.0", &net);
	CHECK(bw_addr_in_prefix(&a, &net, 0), "in /0");
	bw_addr_parse("2001:db8:ff80::", &net);
	bw_addr_parse("2001:db8:ff7f::1", &b);
	CHECK(bw_addr_in_prefix(&b, &net, 40), "v6 in /40");
	CHECK(!bw_addr_in_prefix(&b, &net, 41), "v6 not in /41");
	CHECK(!bw_addr_in_prefix(&a, &net, 0), "family mismatch never matches");
}

static void test_csum(void)
{
	const uint8_t rfc[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	CHECK_EQ(csum_partial(rfc, 8, 0), 0xddf2, "RFC 1071 example sum");
	CHECK_EQ(csum_fold(csum_partial(rfc, 8, 0)), 0x220d, "RFC 1071 example checksum");
	uint8_t buf[1500];
	srand(7);
	int bad = 0;
	for (int t = 0; t < 2000; t++) {
		size_t n = (size_t)rand() % sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand();
		size_t cut = n ? ((size_t)rand() % n) & ~(size_t)1 : 0;
		uint32_t whole = csum_partial(buf, n, 0);
		uint32_t chained = csum_partial(buf + cut, n - cut, csum_partial(buf, cut, 0));
		if (csum_fold(whole) != (uint16_t)~ref_sum(buf, n, 0) || csum_fold(chained) != csum_fold(whole))
			bad++;
	}
	CHECK_EQ(bad, 0, "csum_partial agrees with a reference on random buffers, odd lengths and chains");

	uint32_t n = build_udp(l4, 1, 2, 33);
	uint32_t len = build_ipv4(f, 17, "198.18.0.10", "192.0.2.1", NULL, 0, l4, n, 0);
	struct pkt_info pi;
	pkt_parse(f, len, &pi);
	CHECK_EQ(csum_fold(csum_pseudo(&pi.src, &pi.dst, 17, n)), (uint16_t)~ref_pseudo(f + 14, 17, n), "v4 pseudo sum");
	f[24] ^= 0xff;
	ipv4_set_csum(f + 14);
	CHECK(ref_ipv4_hdr_ok(f + 14), "ipv4_set_csum gives a valid header checksum");
	len = build_ipv6(f, 17, "2001:db8::1", "2001:db8::2", l4, n);
	pkt_parse(f, len, &pi);
	CHECK_EQ(csum_fold(csum_pseudo(&pi.src, &pi.dst, 17, 70000)), (uint16_t)~ref_pseudo(f + 14, 17, 70000),
	         "v6 pseudo sum with a 32-bit length");
}

/* Put what Linux leaves for CHECKSUM_PARTIAL in the field: the folded pseudo-header sum. */
static void make_partial(uint8_t *ip)
{
	uint32_t hl = ip_hlen(ip), l4len = ip_total(ip) - hl;
	uint8_t proto = ip_proto(ip);
	put16(ip + hl + (proto == 6 ? 16 : 6), ref_pseudo(ip, proto, l4len));
}

static void test_csum_partial(void)
{
	struct pkt_info pi;
	uint32_t n = build_udp(l4, 1111, 2222, 301);
	uint32_t len = build_ipv4(f, 17, "198.18.0.10", "192.0.2.1", NULL, 0, l4, n, 0);
	make_partial(f + 14);
	CHECK(!ref_l4_ok(f + 14), "partial UDP checksum is not valid on the wire");
	pkt_parse(f, len, &pi);
	csum_complete_partial(f, &pi);
	CHECK(ref_l4_ok(f + 14) && get16(f + 14 + 20 + 6) != 0, "partial v4 UDP checksum completed");

	uint8_t before[2048];
	memcpy(before, f, len);
	csum_complete_partial(f, &pi);
	CHECK_MEM(before, f, len, "a complete checksum is left alone");
	put16(f + 14 + 20 + 6, 0);
	memcpy(before, f, len);
	csum_complete_partial(f, &pi);
	CHECK_MEM(before, f, len, "v4 UDP without checksum stays without");

	n = build_tcp(l4, 80, 40000, 99, 0x18, (const uint8_t[]){ 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2 }, 12, 1001);
	len = build_ipv6(f, 6, "2001:db8::1", "2001:db8::2", l4, n);
	make_partial(f + 14);
	pkt_parse(f, len, &pi);
	csum_complete_partial(f, &pi);
	CHECK(ref_l4_ok(f + 14), "partial v6 TCP checksum completed");

	n = build_tcp(l4, 80, 40000, 99, 0x18, NULL, 0, 64);
	len = build_ipv4(f, 6, "198.18.0.10", "192.0.2.1", NULL, 0, l4, n, 0x2000);
	make_partial(f + 14);
	memcpy(before, f, len);
	pkt_parse(f, len, &pi);
	csum_complete_partial(f, &pi);
	CHECK_MEM(before, f, len, "fragments are left alone");
}

/* Everything else in the IP level that takes a parsed frame must survive it too. */
static void exercise_ip_level(uint8_t *frame, uint32_t len, const struct pkt_info *pi, struct reasm *r, uint64_t now)
{
	static uint8_t out[PKT_MAX];
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct bw_addr me;
	bw_addr_parse(pi->family == 4 ? "192.0.2.254" : "2001:db8::fe", &me);
	icmp_build_too_big(out, sizeof(out), frame, pi, 1280, mac, &me);
	icmp_build_echo_reply(out, sizeof(out), frame, pi, mac);
	uint32_t state = 0;
	for (int k = 0; k < 8 && gso_segment_next(frame, len, pi, 64, &state, out, sizeof(out)) > 0; k++)
		;
	state = 0;
	for (int k = 0; k < 8 && ip_fragment_next(frame + pi->l3_off, pi->ip_len, 68, 1, &state, out, sizeof(out)) > 0; k++)
		;
	const uint8_t *done;
	uint32_t done_len;
	if (pi->frag != PKT_FRAG_NONE)
		reasm_input(r, frame + pi->l3_off, pi->ip_len, pi, now, &done, &done_len);
	tcp_mss_clamp(frame, pi, 500);
	csum_complete_partial(frame, pi);
}

/* Random and mutated frames, each in a heap block of its exact size so ASan sees any overread. */
static void test_garbage(void)
{
	uint8_t seeds[4][256];
	uint32_t seed_len[4];
	seed_len[0] = build_ipv4(seeds[0], 6, "198.18.0.1", "192.0.2.1", NULL, 0, l4, build_tcp(l4, 1, 2, 3, 2, NULL, 0, 30), 0);
	seed_len[1] = build_ipv4(seeds[1], 17, "198.18.0.1", "192.0.2.1", (const uint8_t[]){ 0x94, 4, 0, 0 }, 4, l4,
	                         build_udp(l4, 1, 2, 40), 0x2000);
	uint8_t pl[64] = { 43, 0, 0, 0, 0, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 9 };
	build_tcp(pl + 24, 5, 6, 7, 2, NULL, 0, 0);
	seed_len[2] = build_ipv6(seeds[2], 0, "2001:db8::1", "2001:db8::2", pl, 44);
	seed_len[3] = build_ipv6(seeds[3], 51, "2001:db8::1", "2001:db8::2", (const uint8_t[]){ 58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0 }, 20);
	srand(12345);
	struct reasm *r = reasm_new(64 * PKT_MAX, 100);
	int inconsistent = 0, parsed_ip = 0;
	for (int t = 0; t < 100000; t++) {
		uint32_t len;
		uint8_t tmp[256];
		if (t % 4 == 0) { /* pure noise behind a plausible Ethernet type */
			len = (uint32_t)rand() % 200;
			for (uint32_t i = 0; i < len; i++)
				tmp[i] = (uint8_t)rand();
			if (len >= 14)
				put16(tmp + 12, rand() % 2 ? 0x0800 : 0x86dd);
		} else { /* a valid frame with a few bytes flipped and maybe cut */
			int s = rand() % 4;
			len = seed_len[s];
			memcpy(tmp, seeds[s], len);
			for (int k = rand() % 4 + 1; k > 0; k--)
				tmp[14 + (uint32_t)rand() % (len - 14)] = (uint8_t)rand();
			if (rand() % 3 == 0)
				len = (uint32_t)rand() % (len + 1);
		}
		uint8_t *heap = malloc(len ? len : 1);
		memcpy(heap, tmp, len);
		struct pkt_info pi;
		int rc = pkt_parse(heap, len, &pi);
		if (rc == 0 && pi.family) {
			parsed_ip++;
			if (pi.l3_off + pi.ip_len > len || (pi.l4_off && pi.l4_off > pi.l3_off + pi.ip_len))
				inconsistent++;
			exercise_ip_level(heap, len, &pi, r, (uint64_t)t);
		} else if (rc != 0 && rc != -XE_MALFORMED_PACKET) {
			inconsistent++;
		}
		free(heap);
	}
	reasm_free(r);
	CHECK_EQ(inconsistent, 0, "100k random/mutated frames: no crash in parser, ICMP, MSS, GSO, fragmentation, reassembly");
	CHECK(parsed_ip > 1000, "mutated frames still exercise the IP paths (%d parsed)", parsed_ip);
}

int main(void)
{
	test_ipv4_udp();
	test_ipv4_options_and_frags();
	test_ipv4_malformed();
	test_ipv6();
	test_ipv6_walk();
	test_ipv4_ah_at();
	test_non_ip();
	test_addr();
	test_csum();
	test_csum_partial();
	test_garbage();
	return check_done();
}
