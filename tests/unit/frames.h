/* frames.h: test frame builders and a slow, independent reference checksum for the IP-level unit tests. */
#ifndef BITW_TEST_FRAMES_H
#define BITW_TEST_FRAMES_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const uint8_t MAC_HOST[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t MAC_WIRE[6] = { 0x02, 0, 0, 0, 0, 0x0b };

static inline void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* Word-by-word big-endian one's-complement sum, deliberately unlike csum.c. */
static inline uint32_t ref_sum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i < n; i++)
		s += (i % 2) ? p[i] : (uint32_t)p[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

static inline void addr_of(const char *s, uint8_t *out, int *fam)
{
	if (inet_pton(AF_INET, s, out) == 1)
		*fam = 4;
	else if (inet_pton(AF_INET6, s, out) == 1)
		*fam = 6;
	else
		*fam = 0;
}

/* Pseudo header sum of an IPv4/IPv6 packet with no extension headers. */
static inline uint32_t ref_pseudo(const uint8_t *ip, uint8_t proto, uint32_t l4len)
{
	uint32_t s;
	if (ip[0] >> 4 == 4)
		s = ref_sum(ip + 12, 8, 0);
	else
		s = ref_sum(ip + 8, 32, 0);
	uint8_t tail[8] = { 0 };
	put16(tail, l4len >> 16);
	put16(tail + 2, l4len & 0xffff);
	tail[7] = proto;
	return ref_sum(tail, 8, s);
}

static inline uint32_t ip_hlen(const uint8_t *ip)
{
	return ip[0] >> 4 == 4 ? (uint32_t)(ip[0] & 15) * 4 : 40;
}

static inline uint32_t ip_total(const uint8_t *ip)
{
	return ip[0] >> 4 == 4 ? get16(ip + 2) : 40u + get16(ip + 4);
}

static inline uint8_t ip_proto(const uint8_t *ip)
{
	return ip[0] >> 4 == 4 ? ip[9] : ip[6];
}

static inline bool ref_ipv4_hdr_ok(const uint8_t *ip)
{
	return ref_sum(ip, ip_hlen(ip), 0) == 0xffff;
}

/* Is the TCP/UDP/ICMP/ICMPv6 checksum of this unfragmented packet right? */
static inline bool ref_l4_ok(const uint8_t *ip)
{
	uint32_t hl = ip_hlen(ip), l4len = ip_total(ip) - hl;
	uint8_t proto = ip_proto(ip);
	const uint8_t *l4 = ip + hl;
	if (proto == 17 && ip[0] >> 4 == 4 && get16(l4 + 6) == 0)
		return true;
	uint32_t s = proto == 1 ? 0 : ref_pseudo(ip, proto, l4len);
	return ref_sum(l4, l4len, s) == 0xffff;
}

/* Set the upper-layer checksum of an unfragmented packet (reference code). */
static inline void ref_l4_set(uint8_t *ip)
{
	uint32_t hl = ip_hlen(ip), l4len = ip_total(ip) - hl;
	uint8_t proto = ip_proto(ip);
	uint8_t *l4 = ip + hl;
	uint32_t at = proto == 6 ? 16 : proto == 17 ? 6 : 2;
	put16(l4 + at, 0);
	uint32_t s = proto == 1 ? 0 : ref_pseudo(ip, proto, l4len);
	uint16_t c = (uint16_t)~ref_sum(l4, l4len, s);
	if (proto == 17 && c == 0)
		c = 0xffff;
	put16(l4 + at, c);
}

static inline uint32_t put_eth(uint8_t *f, uint16_t type)
{
	memcpy(f, MAC_WIRE, 6);
	memcpy(f + 6, MAC_HOST, 6);
	put16(f + 12, type);
	return 14;
}

/* Ethernet + IPv4 (options opt/optlen, a multiple of 4) + l4 bytes; header checksum set. */
static inline uint32_t build_ipv4(uint8_t *f, uint8_t proto, const char *src, const char *dst, const uint8_t *opt,
                                  uint32_t optlen, const uint8_t *l4, uint32_t l4len, uint16_t frag_field)
{
	int fam;
	uint8_t *ip = f + put_eth(f, 0x0800);
	uint32_t hl = 20 + optlen;
	memset(ip, 0, 20);
	ip[0] = (uint8_t)(0x40 | hl / 4);
	ip[1] = 0x28;
	put16(ip + 2, hl + l4len);
	put16(ip + 4, 0x1234);
	put16(ip + 6, frag_field);
	ip[8] = 61;
	ip[9] = proto;
	addr_of(src, ip + 12, &fam);
	addr_of(dst, ip + 16, &fam);
	if (optlen)
		memcpy(ip + 20, opt, optlen);
	memmove(ip + hl, l4, l4len);
	put16(ip + 10, (uint16_t)~ref_sum(ip, hl, 0));
	return 14 + hl + l4len;
}

/* Ethernet + IPv6 with next header nh and payload (which may start with extension headers). */
static inline uint32_t build_ipv6(uint8_t *f, uint8_t nh, const char *src, const char *dst, const uint8_t *pl,
                                  uint32_t plen)
{
	int fam;
	uint8_t *ip = f + put_eth(f, 0x86dd);
	memset(ip, 0, 40);
	ip[0] = 0x6b; /* traffic class 0xb7 */
	ip[1] = 0x70;
	put16(ip + 4, plen);
	ip[6] = nh;
	ip[7] = 59;
	addr_of(src, ip + 8, &fam);
	addr_of(dst, ip + 24, &fam);
	memmove(ip + 40, pl, plen);
	return 14 + 40 + plen;
}

/* TCP header with options (a multiple of 4) followed by n pattern bytes; checksum left 0. */
static inline uint32_t build_tcp(uint8_t *t, uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags,
                                 const uint8_t *opt, uint32_t optlen, uint32_t n)
{
	memset(t, 0, 20);
	put16(t, sport);
	put16(t + 2, dport);
	put16(t + 4, seq >> 16);
	put16(t + 6, seq & 0xffff);
	put16(t + 8, 0x0102);
	put16(t + 10, 0x0304);
	t[12] = (uint8_t)((20 + optlen) / 4 << 4);
	t[13] = flags;
	put16(t + 14, 64240);
	if (optlen)
		memcpy(t + 20, opt, optlen);
	for (uint32_t i = 0; i < n; i++)
		t[20 + optlen + i] = (uint8_t)(i * 7 + i / 251);
	return 20 + optlen + n;
}

/* UDP header followed by n pattern bytes; checksum left 0. */
static inline uint32_t build_udp(uint8_t *u, uint16_t sport, uint16_t dport, uint32_t n)
{
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (8 + n) & 0xffff);
	put16(u + 6, 0);
	for (uint32_t i = 0; i < n; i++)
		u[8 + i] = (uint8_t)(i * 13 + i / 253);
	return 8 + n;
}

#endif
