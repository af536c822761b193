/* pkt.c: Ethernet/IPv4/IPv6 frame parsing for the classifier, and address helpers. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "pkt.h"
#include "wire.h"

#define MALFORMED (-XE_MALFORMED_PACKET)

/* Smallest upper-layer header we accept, per protocol (0: no ports to read). */
static uint32_t l4_min_len(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP_: return 20;
	case IPPROTO_UDP_: return 8;
	case IPPROTO_UDPLITE_: return 8;
	case IPPROTO_SCTP_: return 12;
	case IPPROTO_ICMP_: return 8;
	case IPPROTO_ICMPV6_: return 8;
	default: return 0;
	}
}

/*
 * Ports (or ICMP type/code) of the upper-layer header at l4_off. A first
 * fragment need only carry the first 8 bytes (RFC 791's smallest fragment);
 * an unfragmented packet must hold the whole header.
 */
static int parse_l4(const uint8_t *frame, uint32_t end, struct pkt_info *pi)
{
	uint32_t need = l4_min_len(pi->proto);
	if (need == 0)
		return 0;
	if (pi->frag == PKT_FRAG_FIRST && need > 8)
		need = 8;
	if (pi->l4_off > end || end - pi->l4_off < need)
		return MALFORMED;
	const uint8_t *l4 = frame + pi->l4_off;
	if (pi->proto == IPPROTO_ICMP_ || pi->proto == IPPROTO_ICMPV6_) {
		pi->sport = l4[0];
		pi->dport = l4[1];
		return 0;
	}
	pi->sport = rd16(l4);
	pi->dport = rd16(l4 + 2);
	if (pi->proto == IPPROTO_TCP_ && pi->frag == PKT_FRAG_NONE) {
		uint32_t doff = (uint32_t)(l4[12] >> 4) * 4;
		if (doff < 20 || doff > end - pi->l4_off)
			return MALFORMED;
	}
	return 0;
}

static int parse_ipv4(const uint8_t *frame, uint32_t len, struct pkt_info *pi)
{
	uint32_t off = pi->l3_off;
	if (len - off < 20)
		return MALFORMED;
	const uint8_t *ip = frame + off;
	uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	uint32_t tot = rd16(ip + 2);
	if (ip[0] >> 4 != 4 || ihl < 20 || tot < ihl || tot > len - off)
		return MALFORMED;

	uint16_t fo = rd16(ip + 6);
	if (fo & 0x1fff)
		pi->frag = PKT_FRAG_OTHER;
	else if (fo & 0x2000)
		pi->frag = PKT_FRAG_FIRST;
	pi->df = (fo & 0x4000) != 0;
	pi->family = 4;
	pi->ip_len = tot;
	pi->tos = ip[1];
	pi->ttl = ip[8];
	/* IPv4's next layer is the protocol field, AH included (RFC 4301 4.4.1.1). */
	pi->proto = ip[9];
	pi->src.family = pi->dst.family = 4;
	memcpy(pi->src.a, ip + 12, 4);
	memcpy(pi->dst.a, ip + 16, 4);
	if (pi->frag == PKT_FRAG_OTHER)
		return 0;
	pi->l4_off = (uint16_t)(off + ihl);
	if (pi->proto == IPPROTO_AH_)
		pi->ah_off = pi->l4_off;
	return parse_l4(frame, off + tot, pi);
}

int ipv6_walk_step(const uint8_t *ip, uint32_t end, struct ipv6_walk *w)
{
	const uint8_t *h = ip + w->off;
	uint32_t room = end > w->off ? end - w->off : 0, len;

	switch (w->nh) {
	case NH_HOP:
	case NH_ROUTING:
	case NH_DSTOPTS:
		len = room < 2 ? 0 : (h[1] + 1u) * 8u;
		break;
	case NH_FRAGMENT:
		len = 8;
		break;
	case IPPROTO_AH_:
		len = room < 2 ? 0 : (h[1] + 2u) * 4u;
		break;
	default:
		return 0;
	}
	if (len == 0 || len > room)
		return MALFORMED;
	w->nh_at = w->off;
	w->nh = h[0];
	w->off += len;
	return 1;
}

/* Walk the extension headers after the fixed IPv6 header; sets proto, l4_off, frag, ah_off. */
static int walk_ipv6_ext(const uint8_t *frame, uint32_t end, struct pkt_info *pi)
{
	const uint8_t *ip = frame + pi->l3_off;
	struct ipv6_walk w;

	ipv6_walk_start(ip, &w);
	for (int n = 0; n < 32; n++) {
		struct ipv6_walk at = w;
		int rc = ipv6_walk_step(ip, end, &w);

		if (rc < 0)
			return rc;
		if (rc == 0) {  /* ESP, no next header, upper layer or unknown: stop here */
			pi->proto = w.nh;
			pi->l4_off = (uint16_t)(pi->l3_off + w.off);
			return parse_l4(frame, pi->l3_off + end, pi);
		}
		/* hop-by-hop is only allowed right after the fixed header */
		if (at.nh == NH_HOP && n != 0)
			return MALFORMED;
		if (at.nh == IPPROTO_AH_ && !pi->ah_off)
			pi->ah_off = (uint16_t)(pi->l3_off + at.off);
		if (at.nh == NH_FRAGMENT) {
			uint16_t fo = rd16(ip + at.off + 2);

			if (fo & 0xfff8) {
				pi->frag = PKT_FRAG_OTHER;
				pi->proto = w.nh;
				pi->l4_off = 0;
				return 0;
			}
			/* An atomic fragment (offset 0, M 0) is a whole packet (RFC 6946). */
			if (fo & 1)
				pi->frag = PKT_FRAG_FIRST;
		}
	}
	return MALFORMED; /* absurd header chain */
}

static int parse_ipv6(const uint8_t *frame, uint32_t len, struct pkt_info *pi)
{
	uint32_t off = pi->l3_off;
	if (len - off < 40)
		return MALFORMED;
	const uint8_t *ip = frame + off;
	uint32_t tot = 40u + rd16(ip + 4);
	if (ip[0] >> 4 != 6 || tot > len - off)
		return MALFORMED;
	pi->family = 6;
	pi->ip_len = tot;
	pi->tos = (uint8_t)((ip[0] & 0x0f) << 4 | ip[1] >> 4);
	pi->ttl = ip[7];
	pi->src.family = pi->dst.family = 6;
	memcpy(pi->src.a, ip + 8, 16);
	memcpy(pi->dst.a, ip + 24, 16);
	return walk_ipv6_ext(frame, tot, pi);
}

int pkt_parse(const uint8_t *frame, uint32_t len, struct pkt_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	if (len < ETH_HLEN_)
		return MALFORMED;
	/*
	 * 802.1Q/802.1ad tagged frames (0x8100/0x88a8) parse as non-IP: fwd.c
	 * drops those that carry IP (XE_TAGGED_IP_BLOCKED) and bridges the rest
	 * like any other non-IP frame.
	 */
	pi->ethertype = rd16(frame + 12);
	pi->l3_off = ETH_HLEN_;
	int rc;
	if (pi->ethertype == ETHERTYPE_IPV4_)
		rc = parse_ipv4(frame, len, pi);
	else if (pi->ethertype == ETHERTYPE_IPV6_)
		rc = parse_ipv6(frame, len, pi);
	else
		return 0;
	if (rc < 0) {
		uint16_t et = pi->ethertype;
		memset(pi, 0, sizeof(*pi));
		pi->ethertype = et;
	}
	return rc;
}

bool bw_addr_eq(const struct bw_addr *a, const struct bw_addr *b)
{
	if (a->family != b->family)
		return false;
	return memcmp(a->a, b->a, a->family == 6 ? 16 : 4) == 0;
}

uint64_t bw_addr_hash(const struct bw_addr *a, uint64_t seed)
{
	uint64_t h = seed;

	/* FNV-1a: the hosts of one subnet differ in their last bytes only. */
	h = (h ^ a->family) * 0x100000001b3ull;
	for (int i = 0; i < (a->family == 4 ? 4 : 16); i++)
		h = (h ^ a->a[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

int bw_addr_parse(const char *s, struct bw_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return -XE_BAD_PARAM;
	if (inet_pton(AF_INET, s, out->a) == 1) {
		out->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->a) == 1) {
		out->family = 6;
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -XE_BAD_PARAM;
}

const char *bw_addr_str(const struct bw_addr *a, char *buf, size_t len)
{
	if (!buf || len == 0)
		return "";
	const char *r = NULL;
	if (a->family == 4)
		r = inet_ntop(AF_INET, a->a, buf, (socklen_t)len);
	else if (a->family == 6)
		r = inet_ntop(AF_INET6, a->a, buf, (socklen_t)len);
	if (!r)
		snprintf(buf, len, "%s", a->family ? "?" : "-");
	return buf;
}

bool bw_addr_in_prefix(const struct bw_addr *a, const struct bw_addr *net, uint8_t plen)
{
	if (a->family != net->family || (a->family != 4 && a->family != 6))
		return false;
	unsigned bits = a->family == 6 ? 128 : 32;
	if (plen > bits)
		plen = (uint8_t)bits;
	unsigned whole = plen / 8, rest = plen % 8;
	if (memcmp(a->a, net->a, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return ((a->a[whole] ^ net->a[whole]) & mask) == 0;
}
