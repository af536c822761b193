/* icmp.c: ICMP/ICMPv6 messages the wire originates: too-big errors and echo replies. */
#include <arpa/inet.h>
#include <string.h>

#include "ip.h"

#define ICMP4_ERR_QUOTE_TOTAL 576u  /* RFC 1812 4.3.2.3: whole error datagram */
#define ICMP6_ERR_QUOTE_TOTAL 1280u /* RFC 4443 2.4(c): the IPv6 minimum MTU */
#define ERR_TTL 64

/* Addresses we may neither answer nor answer from (RFC 1122 3.2.2, RFC 1812 4.3.2.7, RFC 4443 2.4(e)). */
static bool addr_no_icmp(const struct bw_addr *a)
{
	if (a->family == 4) {
		static const uint8_t zero[4];
		return memcmp(a->a, zero, 4) == 0 || a->a[0] == 127 || a->a[0] >= 224; /* also 255.255.255.255 */
	}
	static const uint8_t zero[16];
	return memcmp(a->a, zero, 16) == 0 || a->a[0] == 0xff;
}

/* ICMPv4 types that are not errors (queries and their replies); anything else gets no error back. */
static bool icmp4_is_query(uint8_t type)
{
	return type == 0 || type == 8 || type == 9 || type == 10 || (type >= 13 && type <= 18);
}

static bool may_send_error(const uint8_t *frame, const struct pkt_info *pi)
{
	if (pi->frag == PKT_FRAG_OTHER || (frame[0] & 1)) /* non-first fragment; link multicast/broadcast */
		return false;
	if (addr_no_icmp(&pi->src) || addr_no_icmp(&pi->dst))
		return false;
	if (pi->family == 4 && pi->proto == IPPROTO_ICMP_ && !icmp4_is_query((uint8_t)pi->sport))
		return false;
	if (pi->family == 6 && pi->proto == IPPROTO_ICMPV6_ && pi->sport < 128)
		return false;
	return true;
}

static void eth_reply_hdr(uint8_t *out, const uint8_t *frame, const uint8_t smac[6], uint16_t ethertype)
{
	memcpy(out, frame + 6, 6);
	memcpy(out + 6, smac, 6);
	wr16(out + 12, ethertype);
}

static void ipv4_hdr(uint8_t *ip, uint32_t tot, uint8_t tos, const uint8_t src[4], const uint8_t dst[4])
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[1] = tos;
	wr16(ip + 2, tot);
	ip[8] = ERR_TTL;
	ip[9] = IPPROTO_ICMP_;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	ipv4_set_csum(ip);
}

static void ipv6_hdr(uint8_t *ip, uint32_t plen, const uint8_t src[16], const uint8_t dst[16])
{
	memset(ip, 0, 8);
	ip[0] = 0x60;
	wr16(ip + 4, plen);
	ip[6] = IPPROTO_ICMPV6_;
	ip[7] = ERR_TTL;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
}

static void set_icmp_csum(uint8_t *icmp, uint32_t len, uint32_t init)
{
	icmp[2] = icmp[3] = 0;
	wr16(icmp + 2, csum_fold(csum_partial(icmp, len, init)));
}

static uint32_t quote_len(const struct pkt_info *pi, uint32_t room, uint32_t cap, uint32_t hdrs)
{
	uint32_t q = pi->ip_len < room ? pi->ip_len : room;
	if (cap < hdrs)
		return 0;
	return q < cap - hdrs ? q : cap - hdrs;
}

uint32_t icmp_build_too_big(uint8_t *out, uint32_t cap, const uint8_t *frame, const struct pkt_info *pi,
                            uint32_t mtu, const uint8_t smac[6], const struct bw_addr *src)
{
	if (pi->family == 0 || src->family != pi->family || !may_send_error(frame, pi))
		return 0;
	const uint8_t *orig = frame + pi->l3_off;
	uint32_t iphl = pi->family == 4 ? 20 : 40;
	uint32_t hdrs = ETH_HLEN_ + iphl + 8;
	uint32_t room = (pi->family == 4 ? ICMP4_ERR_QUOTE_TOTAL : ICMP6_ERR_QUOTE_TOTAL) - iphl - 8;
	uint32_t q = quote_len(pi, room, cap, hdrs);
	if (q < (pi->family == 4 ? 28u : 48u) && q < pi->ip_len)
		return 0; /* no room for what the RFCs require us to quote */

	uint8_t *ip = out + ETH_HLEN_;
	uint8_t *icmp = ip + iphl;
	memmove(icmp + 8, orig, q); /* memmove: out may alias a scratch copy of frame */
	memset(icmp, 0, 8);
	if (pi->family == 4) {
		eth_reply_hdr(out, frame, smac, ETHERTYPE_IPV4_);
		icmp[0] = 3;
		icmp[1] = 4;
		wr16(icmp + 6, mtu > 0xffff ? 0xffff : mtu);
		set_icmp_csum(icmp, 8 + q, 0);
		ipv4_hdr(ip, iphl + 8 + q, 0xc0, src->a, pi->src.a); /* 0xc0: precedence internetwork control */
	} else {
		eth_reply_hdr(out, frame, smac, ETHERTYPE_IPV6_);
		icmp[0] = 2;
		wr32(icmp + 4, mtu);
		set_icmp_csum(icmp, 8 + q, csum_pseudo(src, &pi->src, IPPROTO_ICMPV6_, 8 + q));
		ipv6_hdr(ip, 8 + q, src->a, pi->src.a);
	}
	return hdrs + q;
}

uint32_t icmp_build_echo_reply(uint8_t *out, uint32_t cap, const uint8_t *frame, const struct pkt_info *pi,
                               const uint8_t smac[6])
{
	uint8_t want = pi->family == 4 ? 1 : 58, req = pi->family == 4 ? 8 : 128;
	if ((pi->family != 4 && pi->family != 6) || pi->proto != want || pi->frag != PKT_FRAG_NONE ||
	    pi->l4_off == 0 || pi->sport != req || pi->dport != 0)
		return 0;
	/* We answer from the address that was asked, so it must be one of ours, i.e. unicast. */
	if (addr_no_icmp(&pi->src) || addr_no_icmp(&pi->dst))
		return 0;
	uint32_t msg_len = pi->ip_len - (uint32_t)(pi->l4_off - pi->l3_off);
	uint32_t iphl = pi->family == 4 ? 20 : 40;
	/* Options and extension headers are not echoed: the reply is a plain header and the message. */
	if (cap < ETH_HLEN_ + iphl + msg_len)
		return 0;
	uint8_t *ip = out + ETH_HLEN_;
	uint8_t *icmp = ip + iphl;
	memmove(icmp, frame + pi->l4_off, msg_len);
	eth_reply_hdr(out, frame, smac, pi->family == 4 ? ETHERTYPE_IPV4_ : ETHERTYPE_IPV6_);
	if (pi->family == 4) {
		icmp[0] = 0;
		set_icmp_csum(icmp, msg_len, 0);
		ipv4_hdr(ip, iphl + msg_len, pi->tos, pi->dst.a, pi->src.a);
	} else {
		icmp[0] = 129;
		set_icmp_csum(icmp, msg_len, csum_pseudo(&pi->dst, &pi->src, IPPROTO_ICMPV6_, msg_len));
		ipv6_hdr(ip, msg_len, pi->dst.a, pi->src.a);
	}
	return ETH_HLEN_ + iphl + msg_len;
}
