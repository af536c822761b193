/* nd.c: our side of IPv6 neighbour discovery (RFC 4861) on a port: answer solicitations for our addresses, learn from advertisements. */
#include <string.h>

#include "port.h"
#include "wire.h"

#define IP6_HLEN 40
#define ND_NS 135
#define ND_NA 136
#define ND_BODY 24            /* type, code, checksum, flags/reserved, target */
#define OPT_SLLA 1
#define OPT_TLLA 2
#define NA_FLAG_SOLICITED 0x40
#define NA_FLAG_OVERRIDE 0x20

static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };

static void v6(struct bw_addr *a, const uint8_t *ip)
{
	a->family = 6;
	memcpy(a->a, ip, 16);
}

static bool is_ours(const struct port_conf *pc, const uint8_t ip[16])
{
	for (unsigned i = 0; i < pc->naddr && i < PORT_MAX_ADDRS; i++)
		if (pc->addr[i].family == 6 && memcmp(pc->addr[i].a, ip, 16) == 0)
			return true;
	return false;
}

static bool is_unspecified(const uint8_t ip[16])
{
	static const uint8_t zero[16];
	return memcmp(ip, zero, 16) == 0;
}

/*
 * Ethernet + IPv6 header (hop limit 255, next header ICMPv6) for an ND
 * message of icmp_len bytes; the caller writes the body then calls nd_finish.
 */
static uint8_t *nd_header(uint8_t *buf, const uint8_t dmac[6], const uint8_t smac[6], const uint8_t src[16],
                          const uint8_t dst[16], uint32_t icmp_len)
{
	memcpy(buf, dmac, 6);
	memcpy(buf + 6, smac, 6);
	wr16(buf + 12, ETHERTYPE_IPV6_);
	uint8_t *ip = buf + ETH_HLEN_;
	memset(ip, 0, IP6_HLEN);
	ip[0] = 0x60;
	wr16(ip + 4, (uint16_t)icmp_len);
	ip[6] = IPPROTO_ICMPV6_;
	ip[7] = 255;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	uint8_t *icmp = ip + IP6_HLEN;
	memset(icmp, 0, icmp_len);
	return icmp;
}

static uint32_t nd_finish(uint8_t *buf, uint32_t icmp_len)
{
	struct bw_addr src, dst;
	const uint8_t *ip = buf + ETH_HLEN_;
	uint8_t *icmp = buf + ETH_HLEN_ + IP6_HLEN;
	v6(&src, ip + 8);
	v6(&dst, ip + 24);
	uint16_t c = csum_fold(csum_partial(icmp, icmp_len, csum_pseudo(&src, &dst, IPPROTO_ICMPV6_, icmp_len)));
	wr16(icmp + 2, c);
	return ETH_HLEN_ + IP6_HLEN + icmp_len;
}

uint32_t nd_build_solicit(uint8_t *buf, const uint8_t smac[6], const struct bw_addr *sip,
                          const struct bw_addr *target)
{
	static const uint8_t unspec[16];
	/* Solicited-node multicast ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX. */
	uint8_t snm[16] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff };
	memcpy(snm + 13, target->a + 13, 3);
	uint8_t dmac[6] = { 0x33, 0x33, 0xff, target->a[13], target->a[14], target->a[15] };
	/* An unspecified source must not carry a link-layer option (RFC 4861 7.1.1). */
	uint32_t icmp_len = ND_BODY + (sip ? 8 : 0);
	uint8_t *icmp = nd_header(buf, dmac, smac, sip ? sip->a : unspec, snm, icmp_len);
	icmp[0] = ND_NS;
	memcpy(icmp + 8, target->a, 16);
	if (sip) {
		icmp[24] = OPT_SLLA;
		icmp[25] = 1;
		memcpy(icmp + 26, smac, 6);
	}
	return nd_finish(buf, icmp_len);
}

/* The parts of a received NS/NA the decisions need. */
struct nd_msg {
	const uint8_t *eth, *ip, *icmp;
	uint32_t icmp_len;
	const uint8_t *lla;           /* source (NS) or target (NA) link-layer address option, or NULL */
};

/* RFC 4861 7.1: hop limit 255, code 0, valid checksum, well-formed options. */
static bool nd_parse(const uint8_t *frame, uint32_t len, const struct pkt_info *pi, struct nd_msg *m)
{
	if (pi->family != 6 || pi->proto != IPPROTO_ICMPV6_ || pi->frag != PKT_FRAG_NONE || pi->ttl != 255 ||
	    pi->l4_off == 0 || pi->l4_off < pi->l3_off || pi->l3_off + pi->ip_len > len)
		return false;
	uint32_t hdrs = (uint32_t)(pi->l4_off - pi->l3_off);
	if (hdrs > pi->ip_len || pi->ip_len - hdrs < ND_BODY)
		return false;
	m->eth = frame;
	m->ip = frame + pi->l3_off;
	m->icmp = frame + pi->l4_off;
	m->icmp_len = pi->ip_len - hdrs;
	if ((m->icmp[0] != ND_NS && m->icmp[0] != ND_NA) || m->icmp[1] != 0)
		return false;
	if (csum_fold(csum_partial(m->icmp, m->icmp_len, csum_pseudo(&pi->src, &pi->dst, IPPROTO_ICMPV6_, m->icmp_len))))
		return false;
	m->lla = NULL;
	uint8_t want = m->icmp[0] == ND_NS ? OPT_SLLA : OPT_TLLA;
	for (uint32_t off = ND_BODY; off < m->icmp_len;) {
		if (m->icmp_len - off < 2 || m->icmp[off + 1] == 0 || m->icmp[off + 1] * 8u > m->icmp_len - off)
			return false;
		if (m->icmp[off] == want && m->icmp[off + 1] == 1)
			m->lla = m->icmp + off + 2;
		off += m->icmp[off + 1] * 8u;
	}
	return true;
}

/* Solicited (unless answering DAD, RFC 4861 7.2.4), override, with our link-layer address. */
static void nd_advertise(const struct l2_self *s, const struct nd_msg *m)
{
	uint8_t na[ETH_HLEN_ + IP6_HLEN + ND_BODY + 8];
	const uint8_t *target = m->icmp + 8;
	bool dad = is_unspecified(m->ip + 8);
	const uint8_t *dst = dad ? all_nodes : m->ip + 8;
	uint8_t dmac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	if (!dad)
		memcpy(dmac, m->lla ? m->lla : m->eth + 6, 6);
	uint8_t *icmp = nd_header(na, dmac, s->mac, target, dst, ND_BODY + 8);
	icmp[0] = ND_NA;
	icmp[4] = NA_FLAG_OVERRIDE | (dad ? 0 : NA_FLAG_SOLICITED);
	memcpy(icmp + 8, target, 16);
	icmp[24] = OPT_TLLA;
	icmp[25] = 1;
	memcpy(icmp + 26, s->mac, 6);
	uint32_t n = nd_finish(na, ND_BODY + 8);
	if (s->tx)
		txq_push(s->tx, na, n);
}

static bool ns_input(const struct l2_self *s, const struct nd_msg *m, const struct pkt_info *pi, uint64_t now_ms)
{
	bool dad = is_unspecified(m->ip + 8);
	/* A DAD probe must go to a solicited-node address and carries no source link-layer option. */
	if (m->icmp[8] == 0xff || (dad && (m->lla || m->ip[24] != 0xff)))
		return false;
	if (!is_ours(s->pc, m->icmp + 8)) {
		if (!dad && m->lla)
			(void)neigh_confirm(s->neigh, &pi->src, m->lla, now_ms, s->tx);
		return false;
	}
	if (!dad && m->lla)
		neigh_update(s->neigh, &pi->src, m->lla, now_ms, s->tx);
	nd_advertise(s, m);
	return true;
}

static bool na_input(const struct l2_self *s, const struct nd_msg *m, uint64_t now_ms)
{
	const uint8_t *ip_dst = m->ip + 24;
	/* RFC 4861 7.1.2: an answer to a multicast solicitation has S clear when sent to multicast. */
	if (m->icmp[8] == 0xff || ((m->icmp[4] & NA_FLAG_SOLICITED) && ip_dst[0] == 0xff))
		return false;
	if (!m->lla)
		return is_ours(s->pc, ip_dst);
	struct bw_addr target;
	v6(&target, m->icmp + 8);
	if (is_ours(s->pc, ip_dst)) {
		neigh_update(s->neigh, &target, m->lla, now_ms, s->tx);
		return true;
	}
	/* To all-nodes: the answer to our unspecified-source probe, or news about a neighbour we know. */
	return neigh_confirm(s->neigh, &target, m->lla, now_ms, s->tx) == NEIGH_RESOLVED;
}

bool nd_input(const struct l2_self *s, const uint8_t *frame, uint32_t len, const struct pkt_info *pi,
              uint64_t now_ms)
{
	struct nd_msg m;
	if (!nd_parse(frame, len, pi, &m))
		return false;
	return m.icmp[0] == ND_NS ? ns_input(s, &m, pi, now_ms) : na_input(s, &m, now_ms);
}
