/* fwd.c: the packet walk of the two data threads: classify, encapsulate, decapsulate, bridge. */
#include "wire_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "counter.h"
#include "log.h"

#define RX_BATCH 64

static inline void count_drop(struct worker *wk, int reason)
{
	if (reason < 0)
		reason = -reason;
	if (reason >= XE__COUNT)
		reason = XE_MALFORMED_PACKET;
	atomic_fetch_add_explicit(&wk->drops.by_reason[reason], 1, memory_order_relaxed);
}

static uint64_t mac_to_u64(const uint8_t *m)
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = v << 8 | m[i];
	return v;
}

static void u64_to_mac(uint64_t v, uint8_t *m)
{
	for (int i = 5; i >= 0; i--, v >>= 8)
		m[i] = (uint8_t)v;
}

static void eth_write(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	if (dst)
		memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	wr16(f + 12, type);
}

static bool is_ours(const struct port_conf *pc, const struct bw_addr *a)
{
	for (uint8_t i = 0; i < pc->naddr; i++)
		if (bw_addr_eq(&pc->addr[i], a))
			return true;
	return false;
}

const struct bw_addr *black_source(const struct snapshot *s, int family)
{
	for (uint8_t i = 0; i < s->black.naddr; i++)
		if (s->black.addr[i].family == family)
			return &s->black.addr[i];
	return NULL;
}

static const struct bw_addr *port_source(const struct port_conf *pc, int family)
{
	for (uint8_t i = 0; i < pc->naddr; i++)
		if (pc->addr[i].family == family)
			return &pc->addr[i];
	return NULL;
}

bool black_next_hop(const struct snapshot *s, const struct bw_addr *dst, struct bw_addr *nh)
{
	const struct bw_addr *gw = dst->family == 4 ? &s->black.gw4 : &s->black.gw6;

	for (uint8_t i = 0; i < s->black.naddr; i++) {
		if (s->black.addr[i].family == dst->family &&
		    bw_addr_in_prefix(dst, &s->black.addr[i], s->black.plen[i])) {
			*nh = *dst;
			return true;
		}
	}
	if (gw->family != dst->family)
		return false;
	*nh = *gw;
	return true;
}

/*
 * The frame in the last slot of tx (destination MAC unset) goes to next hop
 * nh: sent when the neighbour is known, otherwise queued until it resolves,
 * with a solicitation on its way.
 */
static int send_via(struct txq *tx, struct neigh_table *nt, const struct port_conf *pc, const uint8_t *smac,
                    const struct bw_addr *nh, uint8_t *slot, uint32_t len, uint64_t now)
{
	int rc;

	if (neigh_lookup(nt, nh, slot, now)) {
		txq_commit(tx, len);
		return 0;
	}
	rc = neigh_enqueue(nt, nh, slot, len, now);
	if (rc == 1) {
		/* The slot was not committed: reuse it for the solicitation. */
		const struct bw_addr *sip = port_source(pc, nh->family);

		len = nh->family == 4 ? arp_build_request(slot, smac, sip, nh) : nd_build_solicit(slot, smac, sip, nh);
		txq_commit(tx, len);
		return 0;
	}
	return rc < 0 ? -XE_NEIGH_UNRESOLVED : 0;
}

/* Multicast and broadcast destinations map to group MACs; unicast needs a neighbour. */
static bool group_mac(const struct bw_addr *a, uint8_t *mac)
{
	if (a->family == 4 && (a->a[0] & 0xf0) == 0xe0) {
		const uint8_t m[6] = { 0x01, 0x00, 0x5e, a->a[1] & 0x7f, a->a[2], a->a[3] };

		memcpy(mac, m, 6);
		return true;
	}
	if (a->family == 4 && a->a[0] == 255 && a->a[1] == 255 && a->a[2] == 255 && a->a[3] == 255) {
		memset(mac, 0xff, 6);
		return true;
	}
	if (a->family == 6 && a->a[0] == 0xff) {
		const uint8_t m[6] = { 0x33, 0x33, a->a[12], a->a[13], a->a[14], a->a[15] };

		memcpy(mac, m, 6);
		return true;
	}
	return false;
}

/* ---- outer headers ---- */

static uint32_t ip_hdr_len(int family)
{
	return family == 4 ? 20 : 40;
}

static uint32_t outer_hdr_len(const struct sa *sa)
{
	return ip_hdr_len(sa->conf.peer.family) + (sa->conf.encap == ENCAP_UDP ? 8 : 0);
}

/* The largest inner packet that still fits the black MTU once encapsulated. */
static uint32_t inner_mtu(const struct sa *sa, uint32_t mtu)
{
	uint32_t hdr = outer_hdr_len(sa), b = sa->block;
	uint32_t l = mtu > hdr + esp_overhead(sa, 0) ? mtu - hdr - esp_overhead(sa, 0) : 0;
	/* Headers, IV and ICV; inner + 2 trailer bytes are padded up to the block: one division, no search. */
	uint32_t fixed = hdr + esp_overhead(sa, b - 2) - 2, fit;

	if (mtu < fixed + b)
		return 0;
	fit = (mtu - fixed) / b * b - 2;
	return fit < l ? fit : l;
}

/* The same inside an AH+ESP bundle: the AH header comes off the MTU first. */
static uint32_t bundle_mtu(const struct sa *esp, const struct sa *ah, uint32_t mtu)
{
	uint32_t a = ah ? ah_hdr_len(ah, ah->conf.peer.family) : 0;

	return mtu > a ? inner_mtu(esp, mtu - a) : 0;
}

static void ip_header_write(uint8_t *ip, const struct bw_addr *src, const struct bw_addr *dst, uint8_t proto,
                            uint32_t payload_len, uint8_t tos, uint16_t ident, bool df)
{
	if (src->family == 4) {
		ip[0] = 0x45;
		ip[1] = tos;
		wr16(ip + 2, (uint16_t)(20 + payload_len));
		wr16(ip + 4, ident);
		/* By default DF clear: a smaller MTU further along the WAN fragments, the peer reassembles. */
		wr16(ip + 6, df ? 0x4000 : 0);
		ip[8] = 64;
		ip[9] = proto;
		memcpy(ip + 12, src->a, 4);
		memcpy(ip + 16, dst->a, 4);
		ipv4_set_csum(ip);
	} else {
		ip[0] = (uint8_t)(0x60 | tos >> 4);
		ip[1] = (uint8_t)(tos << 4);
		ip[2] = ip[3] = 0;
		wr16(ip + 4, (uint16_t)payload_len);
		ip[6] = proto;
		ip[7] = 64;
		memcpy(ip + 8, src->a, 16);
		memcpy(ip + 24, dst->a, 16);
	}
}

static void udp_header_write(uint8_t *udp, const struct bw_addr *src, const struct bw_addr *dst, uint16_t sport,
                             uint16_t dport, uint32_t udp_len, bool want_csum)
{
	wr16(udp, sport);
	wr16(udp + 2, dport);
	wr16(udp + 4, (uint16_t)udp_len);
	wr16(udp + 6, 0);
	/* RFC 3948 §2.1 lets IPv4 ESP-in-UDP go without a checksum; IPv6 always needs one. */
	if (want_csum || src->family == 6) {
		uint16_t c = csum_fold(csum_partial(udp, udp_len, csum_pseudo(src, dst, IPPROTO_UDP_, udp_len)));

		wr16(udp + 6, c ? c : 0xffff);
	}
}

/* The outer IPv4 DF bit the policy asks for (RFC 4301 8.1); an IPv6 inner packet never fragments on the way. */
static bool outer_df(const struct sa *sa, const struct pkt_info *pi)
{
	if (sa->conf.peer.family != 4 || sa->conf.opts.df == DF_CLEAR)
		return false;
	return sa->conf.opts.df == DF_SET || pi->family == 6 || pi->df;
}

/* RFC 6040 4.1 normal mode copies the inner ECN field; compatibility mode sends not-ECT outside. */
static uint8_t outer_tos(const struct sa *sa, uint8_t inner_tos)
{
	return sa->conf.opts.ecn_off ? (uint8_t)(inner_tos & ~3u) : inner_tos;
}

/* Outer header fields derived from the inner packet. */
struct outer_hints {
	uint8_t tos;
	bool df;
	uint32_t tfc;
};

/* AH tunnel mode: outer IP header, AH, the inner packet; the ICV covers the outer header too, so it comes last. */
static int outer_build_ah(struct worker *wk, struct sa *sa, uint8_t *buf, uint32_t cap, const uint8_t *inner,
                          uint32_t inner_len, uint8_t next_header, const struct outer_hints *h)
{
	const struct sa_conf *c = &sa->conf;
	uint32_t iph = ip_hdr_len(c->peer.family), ah_len = ah_hdr_len(sa, c->peer.family);
	uint32_t total = ETH_HLEN_ + iph + ah_len + inner_len;
	int rc;

	if (total > cap)
		return -XE_MTU_EXCEEDED;
	memmove(buf + ETH_HLEN_ + iph + ah_len, inner, inner_len);
	eth_write(buf, NULL, wk->w->black.mac, c->peer.family == 4 ? ETHERTYPE_IPV4_ : ETHERTYPE_IPV6_);
	ip_header_write(buf + ETH_HLEN_, &c->local, &c->peer, IPPROTO_AH_, ah_len + inner_len, h->tos, wk->ip_ident++,
	                h->df);
	rc = ah_encap(sa, buf + ETH_HLEN_, iph + ah_len + inner_len, iph, next_header);
	return rc < 0 ? rc : (int)total;
}

/*
 * An AH+ESP bundle, tunnel mode: outer IP | AH | ESP | inner. ESP is built
 * first, in place after the room for AH; AH's ICV then covers the outer
 * header and the whole ESP packet (RFC 4301 4.5: ESP inside, AH outside).
 */
static int outer_build_bundle(struct worker *wk, struct sa *esp, struct sa *ah, uint8_t *buf, uint32_t cap,
                              const uint8_t *inner, uint32_t inner_len, uint8_t next_header,
                              const struct outer_hints *h)
{
	const struct sa_conf *c = &ah->conf;
	uint32_t iph = ip_hdr_len(c->peer.family), ah_len = ah_hdr_len(ah, c->peer.family), off = ETH_HLEN_ + iph + ah_len;
	int n, rc;

	if (cap <= off)
		return -XE_MTU_EXCEEDED;
	n = esp_encap_tfc(esp, buf + off, cap - off, inner, inner_len, next_header, h->tfc);
	if (n < 0)
		return n;
	eth_write(buf, NULL, wk->w->black.mac, c->peer.family == 4 ? ETHERTYPE_IPV4_ : ETHERTYPE_IPV6_);
	ip_header_write(buf + ETH_HLEN_, &c->local, &c->peer, IPPROTO_AH_, ah_len + (uint32_t)n, h->tos, wk->ip_ident++,
	                h->df);
	rc = ah_encap(ah, buf + ETH_HLEN_, iph + ah_len + (uint32_t)n, iph, IPPROTO_ESP_);
	return rc < 0 ? rc : (int)off + n;
}

/* Write the whole outer frame (destination MAC unset) into buf; returns its length or -XE_*. ah: a bundle's AH SA. */
static int outer_build(struct worker *wk, struct sa *sa, struct sa *ah, uint8_t *buf, uint32_t cap,
                       const uint8_t *inner, uint32_t inner_len, uint8_t next_header, const struct outer_hints *h)
{
	const struct sa_conf *c = &sa->conf;
	uint32_t iph = ip_hdr_len(c->peer.family), off = ETH_HLEN_ + iph + (c->encap == ENCAP_UDP ? 8 : 0);
	int n;

	if (ah)
		return outer_build_bundle(wk, sa, ah, buf, cap, inner, inner_len, next_header, h);
	if (c->proto == PROTO_AH)
		return outer_build_ah(wk, sa, buf, cap, inner, inner_len, next_header, h);
	if (cap <= off)
		return -XE_MTU_EXCEEDED;
	n = esp_encap_tfc(sa, buf + off, cap - off, inner, inner_len, next_header, h->tfc);
	if (n < 0)
		return n;
	eth_write(buf, NULL, wk->w->black.mac, c->peer.family == 4 ? ETHERTYPE_IPV4_ : ETHERTYPE_IPV6_);
	if (c->encap == ENCAP_UDP) {
		udp_header_write(buf + ETH_HLEN_ + iph, &c->local, &c->peer, c->encap_sport, c->encap_dport,
		                 (uint32_t)n + 8, false);
		n += 8;
	}
	ip_header_write(buf + ETH_HLEN_, &c->local, &c->peer, c->encap == ENCAP_UDP ? IPPROTO_UDP_ : IPPROTO_ESP_,
	                (uint32_t)n, h->tos, wk->ip_ident++, h->df);
	return (int)(ETH_HLEN_ + iph) + n;
}

int wire_send_udp(struct wire *w, struct txq *tx, const struct snapshot *s, const struct bw_addr *src, uint16_t sport,
                  const struct bw_addr *dst, uint16_t dport, const uint8_t *data, uint32_t len, int non_esp_marker)
{
	uint32_t iph = ip_hdr_len(dst->family), mk = non_esp_marker ? 4 : 0;
	uint32_t total = ETH_HLEN_ + iph + 8 + mk + len;
	struct bw_addr nh;
	uint8_t *slot;
	static uint16_t ident;

	if (src->family != dst->family || total > TXQ_BUF || iph + 8 + mk + len > w->black.mtu)
		return -XE_BAD_PARAM;
	if (!black_next_hop(s, dst, &nh))
		return -XE_NO_ROUTE;
	slot = txq_slot(tx);
	eth_write(slot, NULL, w->black.mac, dst->family == 4 ? ETHERTYPE_IPV4_ : ETHERTYPE_IPV6_);
	memset(slot + ETH_HLEN_ + iph + 8, 0, mk);
	memcpy(slot + ETH_HLEN_ + iph + 8 + mk, data, len);
	udp_header_write(slot + ETH_HLEN_ + iph, src, dst, sport, dport, 8 + mk + len, true);
	ip_header_write(slot + ETH_HLEN_, src, dst, IPPROTO_UDP_, 8 + mk + len, 0, ident++, false);
	return send_via(tx, w->neigh_black, &s->black, w->black.mac, &nh, slot, total, now_ms());
}

/* ---- outbound: red -> black ---- */

static void bridge(struct worker *wk, struct txq *tx, const uint8_t *frame, uint32_t len)
{
	if (len - ETH_HLEN_ > tx->port->mtu) {
		count_drop(wk, XE_TOO_BIG);
		return;
	}
	txq_push(tx, frame, len);
}

/*
 * IP behind one or two 802.1Q/802.1ad tags. The SPD never sees it, so
 * bridging it as non-IP would carry protected traffic across in clear: such
 * frames are dropped (and counted) instead. Deeper stacks count as IP too.
 */
static bool tagged_ip(const uint8_t *frame, uint32_t len)
{
	uint32_t off = 12;

	for (int tags = 0; tags < 3 && off + 4 + 2 <= len; tags++, off += 4) {
		uint16_t tpid = (uint16_t)rd16(frame + off), inner = (uint16_t)rd16(frame + off + 4);

		if (tpid != ETHERTYPE_8021Q_ && tpid != ETHERTYPE_8021AD_ && tpid != ETHERTYPE_QINQ_OLD_)
			return false;
		if (inner == ETHERTYPE_IPV4_ || inner == ETHERTYPE_IPV6_ || tags == 2)
			return true;
	}
	return false;
}

/* A non-IP frame crossing to tx, when bridging is on and it hides no IP. */
static void bridge_non_ip(struct worker *wk, struct txq *tx, const uint8_t *frame, uint32_t len)
{
	if (tagged_ip(frame, len))
		count_drop(wk, XE_TAGGED_IP_BLOCKED);
	else if (wk->snap->opt.bridge_non_ip)
		bridge(wk, tx, frame, len);
	else
		count_drop(wk, XE_NON_IP_BLOCKED);
}

static void too_big(struct worker *wk, const uint8_t *frame, const struct pkt_info *pi, uint32_t mtu)
{
	const struct snapshot *s = wk->snap;
	const struct bw_addr *src = port_source(&s->red, pi->family);
	uint8_t *slot = txq_slot(&wk->tx_red);
	uint32_t n;

	if (!src)
		src = black_source(s, pi->family);
	if (!src)
		src = &pi->dst;
	/* The answer comes from the MAC the host sent to: its router, as far as it can tell. */
	n = icmp_build_too_big(slot, TXQ_BUF, frame, pi, mtu, frame, src);
	if (n)
		txq_commit(&wk->tx_red, n);
}

/*
 * The outbound SA of policy p for this packet: its own, or for a clone policy
 * its host's. An ahesp policy's (or host's) is its ESP SA, *ah its AH SA; NULL
 * until it has both (the bundle fails closed). *ah is NULL for other policies.
 */
static struct sa *out_sa_for(const struct snapshot *s, const struct spd_policy *p, const struct pkt_info *pi,
                             struct sa **ah)
{
	const struct bw_addr *host = clone_value(p->conf.clone, DIR_OUT, pi);

	struct sa *sa;

	if (host) {
		sa = clone_index_lookup(s->clones, p->conf.id, host, ah);
	} else {
		sa = s->out_sa[p->index];
		*ah = p->conf.sa_type == SATYPE_AHESP ? s->out_ah[p->index] : NULL;
	}
	if (p->conf.sa_type == SATYPE_AHESP && !*ah)
		return NULL;
	return sa;
}

/* Who waits for an SA: the policy, or for a clone policy the host (never 0: that marks a free queue slot). */
static uint64_t acq_key(const struct spd_policy *p, const struct pkt_info *pi)
{
	const struct bw_addr *host = clone_value(p->conf.clone, DIR_OUT, pi);

	return host ? clone_key_hash(p->conf.id, host) | 1ull << 63 : p->conf.id;
}

static void acquire_event(struct worker *wk, const struct spd_policy *p, const struct pkt_info *pi, uint64_t key)
{
	uint32_t h = (uint32_t)(key % ACQ_RATE_SLOTS);
	struct ring_msg *m;
	uint64_t one = 1;

	/* One ACQUIRE per policy (per host of a clone policy) per second is plenty to start a negotiation. */
	if (wk->acq_rate_key[h] == key && wk->now - wk->acq_rate_ms[h] < 1000)
		return;
	m = ring_reserve(&wk->events);
	if (!m)
		return;
	wk->acq_rate_key[h] = key;
	wk->acq_rate_ms[h] = wk->now;
	m->type = CTL_EV_ACQUIRE;
	m->policy_id = p->conf.id;
	m->pi = *pi;
	ring_publish(&wk->events);
	if (write(wk->w->ev_fd, &one, sizeof one) < 0)
		return;  /* the control thread polls the ring anyway */
}

/* No SA yet: tell bitwd and keep a few frames per policy (per host of a clone policy) until one arrives. */
static void acquire(struct worker *wk, const struct spd_policy *p, const uint8_t *frame, uint32_t len,
                    const struct pkt_info *pi)
{
	uint64_t key = acq_key(p, pi);
	int i;

	acquire_event(wk, p, pi, key);
	i = len <= TXQ_BUF ? acq_admit(wk->acq, key, wk->snap->opt.acquire_queue) : -1;
	if (i < 0) {
		count_drop(wk, XE_NO_SA);
		return;
	}
	if (wk->acq[i].key)
		count_drop(wk, XE_NO_SA);  /* a waiter with more frames queued gave up its oldest */
	else
		wk->acq_used++;
	wk->acq[i].key = key;
	wk->acq[i].policy_id = p->conf.id;
	wk->acq[i].len = len;
	wk->acq[i].since_ms = wk->now;
	memcpy(wk->acq[i].frame, frame, len);
}

static void out_protect(struct worker *wk, const struct spd_policy *p, uint8_t *frame, uint32_t len,
                        const struct pkt_info *pi);

/* Frames queued for an SA: send them once it is there, drop them after a while. */
static void acquire_service(struct worker *wk)
{
	const struct snapshot *s = wk->snap;
	bool new_snap = s->gen != wk->acq_gen;

	wk->acq_gen = s->gen;
	for (uint32_t i = 0; i < ACQ_SLOTS && wk->acq_used; i++) {
		struct acq_slot *q = &wk->acq[i];
		const struct spd_policy *p;
		struct pkt_info pi;
		struct sa *ah;

		if (!q->key)
			continue;
		p = new_snap ? spd_by_id(s->spd, q->policy_id) : NULL;
		if (p && p->conf.action == ACT_PROTECT && pkt_parse(q->frame, q->len, &pi) == 0 &&
		    out_sa_for(s, p, &pi, &ah)) {
			q->key = 0;
			wk->acq_used--;
			out_protect(wk, p, q->frame, q->len, &pi);
		} else if (wk->now - q->since_ms > ACQ_TIMEOUT_MS) {
			q->key = 0;
			wk->acq_used--;
			count_drop(wk, XE_NO_SA);
		}
	}
}

/* Outer packet larger than the MTU and the inner allows fragmentation: fragment the outer packet. */
static void out_fragmented(struct worker *wk, struct sa *sa, const struct bw_addr *nh, const uint8_t *outer,
                           uint32_t outer_len)
{
	struct wire *w = wk->w;
	uint32_t state = 0, ident = wk->ip_ident++;
	int n;

	for (;;) {
		uint8_t *slot = txq_slot(&wk->tx_black);

		n = ip_fragment_next(outer + ETH_HLEN_, outer_len - ETH_HLEN_, w->black.mtu, ident, &state,
		                     slot + ETH_HLEN_, TXQ_BUF - ETH_HLEN_);
		if (n <= 0)
			break;
		memcpy(slot, outer, ETH_HLEN_);
		if (send_via(&wk->tx_black, w->neigh_black, &wk->snap->black, w->black.mac, nh, slot,
		             (uint32_t)n + ETH_HLEN_, wk->now) < 0)
			count_drop(wk, XE_NEIGH_UNRESOLVED);
	}
	if (n < 0)
		count_drop(wk, n);
}

/*
 * Transport mode on a host's behalf: its frame keeps its own Ethernet and IP
 * headers (the host addressed its router; the addresses are the SA's) and only
 * gains ESP, AH or both (a bundle); too big ones are fragmented or refused as in
 * tunnel mode.
 */
static void out_transport(struct worker *wk, const struct spd_policy *p, struct sa *sa, struct sa *ah,
                          uint8_t *frame, const struct pkt_info *pi)
{
	uint32_t iph = ip_hdr_len(pi->family);
	uint32_t fit = (ah ? bundle_mtu(sa, ah, wk->w->black.mtu) : inner_mtu(sa, wk->w->black.mtu)) + iph;
	struct bw_addr nh;
	uint8_t *slot;
	int n;

	if (p->conf.mss_clamp && pi->proto == IPPROTO_TCP_ && fit > iph + 20)
		tcp_mss_clamp(frame, pi, (uint16_t)(fit - iph - 20));
	if (pi->ip_len > fit && (pi->family == 6 || pi->df)) {
		too_big(wk, frame, pi, fit);
		count_drop(wk, XE_MTU_EXCEEDED);
		return;
	}
	if (sa_account(sa, pi->ip_len) < 0 || (ah && sa_account(ah, pi->ip_len) < 0)) {
		count_drop(wk, XE_SA_EXPIRED);
		return;
	}
	slot = pi->ip_len > fit ? wk->scratch + TXQ_BUF : txq_slot(&wk->tx_black);
	n = ah ? transport_encap_bundle(sa, ah, slot, TXQ_BUF, frame, pi) : transport_encap(sa, slot, TXQ_BUF, frame, pi);
	if (n < 0) {
		count_drop(wk, n);
		return;
	}
	stat_add(&p->stats->packets[0], 1);
	stat_add(&p->stats->bytes[0], pi->ip_len);
	if (pi->ip_len <= fit)
		txq_commit(&wk->tx_black, (uint32_t)n);
	else if (black_next_hop(wk->snap, &sa->conf.peer, &nh))
		out_fragmented(wk, sa, &nh, slot, (uint32_t)n);
	else
		count_drop(wk, XE_NO_ROUTE);
}

static void out_protect(struct worker *wk, const struct spd_policy *p, uint8_t *frame, uint32_t len,
                        const struct pkt_info *pi)
{
	struct wire *w = wk->w;
	struct sa *ah, *sa = out_sa_for(wk->snap, p, pi, &ah);
	const uint8_t *inner = frame + pi->l3_off;
	uint32_t inner_len = pi->ip_len, fit;
	struct outer_hints h = { 0 };
	struct bw_addr nh;
	uint8_t *slot;
	int n;

	if (!sa || atomic_load_explicit(&sa->state, memory_order_relaxed) == SA_DEAD ||
	    (ah && atomic_load_explicit(&ah->state, memory_order_relaxed) == SA_DEAD)) {
		acquire(wk, p, frame, len, pi);
		return;
	}
	if (sa->conf.mode == MODE_TRANSPORT) {
		out_transport(wk, p, sa, ah, frame, pi);
		return;
	}
	fit = ah ? bundle_mtu(sa, ah, w->black.mtu) : inner_mtu(sa, w->black.mtu);
	h.tos = outer_tos(sa, pi->tos);
	h.df = outer_df(sa, pi);
	if (p->conf.mss_clamp && pi->proto == IPPROTO_TCP_ && fit > ip_hdr_len(pi->family) + 20)
		tcp_mss_clamp(frame, pi, (uint16_t)(fit - ip_hdr_len(pi->family) - 20));
	/* An outer DF the policy sets cannot be fragmented by us either: the sender must send smaller. */
	if (inner_len > fit && (pi->family == 6 || pi->df || h.df)) {
		too_big(wk, frame, pi, fit);
		count_drop(wk, XE_MTU_EXCEEDED);
		return;
	}
	if (!black_next_hop(wk->snap, &sa->conf.peer, &nh)) {
		count_drop(wk, XE_NO_ROUTE);
		return;
	}
	if (sa_account(sa, inner_len) < 0 || (ah && sa_account(ah, inner_len) < 0)) {
		count_drop(wk, XE_SA_EXPIRED);
		return;
	}
	stat_add(&p->stats->packets[0], 1);
	stat_add(&p->stats->bytes[0], inner_len);
	/* RFC 4303 2.7: TFC padding only where the inner header tells the real length (tunnel mode), within the MTU. */
	if (sa->conf.opts.tfc_pad && sa->conf.mode == MODE_TUNNEL && sa->conf.proto == PROTO_ESP && inner_len < fit) {
		uint32_t room = fit - inner_len < sa->conf.opts.tfc_pad ? fit - inner_len : sa->conf.opts.tfc_pad;

		h.tfc = sa_random(sa) % (room + 1);
	}
	if (inner_len > fit) {
		uint8_t *big = wk->scratch + TXQ_BUF;

		n = outer_build(wk, sa, ah, big, TXQ_BUF, inner, inner_len, pi->family == 4 ? NH_IPV4 : NH_IPV6, &h);
		if (n < 0)
			count_drop(wk, n);
		else
			out_fragmented(wk, sa, &nh, big, (uint32_t)n);
		return;
	}
	slot = txq_slot(&wk->tx_black);
	n = outer_build(wk, sa, ah, slot, TXQ_BUF, inner, inner_len, pi->family == 4 ? NH_IPV4 : NH_IPV6, &h);
	if (n < 0) {
		count_drop(wk, n);
		return;
	}
	if (send_via(&wk->tx_black, w->neigh_black, &wk->snap->black, w->black.mac, &nh, slot, (uint32_t)n, wk->now) < 0)
		count_drop(wk, XE_NEIGH_UNRESOLVED);
}

/* One dummy packet (next header 59, RFC 4303 2.6) of a random size that fits the tunnel. */
static void dummy_send(struct worker *wk, struct sa *sa)
{
	struct wire *w = wk->w;
	struct outer_hints h = { 0 };
	uint32_t fit = inner_mtu(sa, w->black.mtu), len;
	struct bw_addr nh;
	uint8_t *slot;
	int n;

	if (fit > 1400)
		fit = 1400;
	len = sa_random(sa) % (fit + 1);
	for (uint32_t i = 0; i < len; i += 4) {
		uint32_t r = sa_random(sa);

		memcpy(wk->scratch + i, &r, 4);
	}
	if (!black_next_hop(wk->snap, &sa->conf.peer, &nh))
		return;
	slot = txq_slot(&wk->tx_black);
	/* Never a bundle's: an ahesp policy refuses dummy_interval_ms. */
	n = outer_build(wk, sa, NULL, slot, TXQ_BUF, wk->scratch, len, NH_DUMMY, &h);
	if (n < 0)
		return;
	if (send_via(&wk->tx_black, w->neigh_black, &wk->snap->black, w->black.mac, &nh, slot, (uint32_t)n, wk->now) < 0)
		count_drop(wk, XE_NEIGH_UNRESOLVED);
	else
		stat_add(&sa->st.dummies, 1);
}

/* One outbound SA's dummy clock; returns whether it wants dummy packets at all. */
static bool dummy_tick(struct worker *wk, struct sa *sa)
{
	uint32_t mean;

	if (atomic_load_explicit(&sa->state, memory_order_relaxed) == SA_DEAD)
		return false;
	mean = sa->conf.opts.dummy_ms;
	if (sa->dummy_next && wk->now >= sa->dummy_next)
		dummy_send(wk, sa);
	if (!sa->dummy_next || wk->now >= sa->dummy_next)
		sa->dummy_next = wk->now + mean / 2 + sa_random(sa) % (mean + 1);
	return true;
}

/*
 * Outbound tunnel SAs whose policy asks for dummy packets send one at random
 * intervals between half and one and a half times the configured mean: each
 * policy's SA, and each host's SA of a clone policy (the snapshot lists
 * them). They are visited only when one is due or the snapshot changed.
 * Returns whether any SA wants them (the caller then wakes up more often).
 */
static bool dummy_service(struct worker *wk)
{
	const struct snapshot *s = wk->snap;
	uint64_t due = UINT64_MAX;

	if (s->gen == wk->dummy_gen && wk->now < wk->dummy_due)
		return wk->dummy_due != UINT64_MAX;
	for (uint32_t i = 0; i < s->n_dummy; i++) {
		struct sa *sa = s->dummy_sas[i];

		if (dummy_tick(wk, sa) && sa->dummy_next < due)
			due = sa->dummy_next;
	}
	wk->dummy_gen = s->gen;
	wk->dummy_due = due;
	return due != UINT64_MAX;
}

/* What an unmatched packet gets, or a matched one its policy's action. */
static int verdict(const struct worker *wk, const struct spd_policy *p)
{
	return p ? p->conf.action : wk->snap->opt.default_action;
}

/* The maintenance states override every policy: bypass all bridges in clear, drop all passes nothing. */
static bool admin_override(struct worker *wk, struct txq *tx, const uint8_t *frame, uint32_t len)
{
	switch (wk->snap->opt.admin_state) {
	case ADMIN_BYPASS:
		bridge(wk, tx, frame, len);
		return true;
	case ADMIN_DROP:
		count_drop(wk, XE_ADMIN_DROP);
		return true;
	default:
		return false;
	}
}

static void out_ip(struct worker *wk, uint8_t *frame, uint32_t len, const struct pkt_info *pi)
{
	const struct spd_policy *p;
	uint64_t rmac;

	if (admin_override(wk, &wk->tx_black, frame, len))
		return;
	p = flow_cache_lookup(wk->fc, wk->snap->spd, DIR_OUT, pi);
	switch (verdict(wk, p)) {
	case ACT_PROTECT:
		/* A protected flow goes off the LAN, so its destination MAC is the router's. */
		rmac = mac_to_u64(frame);
		if (!(frame[0] & 1) && atomic_load_explicit(&wk->w->router_mac, memory_order_relaxed) != rmac)
			atomic_store(&wk->w->router_mac, rmac);
		out_protect(wk, p, frame, len, pi);
		return;
	case ACT_BYPASS:
		if (p) {
			stat_add(&p->stats->packets[0], 1);
			stat_add(&p->stats->bytes[0], pi->ip_len);
		}
		bridge(wk, &wk->tx_black, frame, len);
		return;
	default:
		if (p)
			stat_add(&p->stats->drops[0], 1);
		count_drop(wk, p ? XE_POLICY_DISCARD : XE_NO_POLICY);
	}
}

/* Red hosts are learned from their own traffic, refreshed (under the lock) at most once a second per host. */
static void red_learn(struct worker *wk, const uint8_t *frame, const struct bw_addr *ip)
{
	if (frame[6] & 1 || ip->family == 0)
		return;
	if (ip->family == 4 && (ip->a[0] == 0 || ip->a[0] >= 224))
		return;
	if (ip->family == 6 && (ip->a[0] == 0xff || (ip->a[0] == 0 && ip->a[15] <= 1 && ip->a[1] == 0)))
		return;
	/* Confirmed by this host's traffic within the last second: nothing to learn, and no lock. */
	if (neigh_confirmed_since(wk->w->neigh_red, ip, frame + 6, wk->now > 1000 ? wk->now - 1000 : 0))
		return;
	neigh_update(wk->w->neigh_red, ip, frame + 6, wk->now, &wk->tx_red);
}

/* IPv6 link-scope traffic (ND, RS/RA, MLD, anything to/from fe80::/10 or to ff02::/16) belongs to the link. */
static bool ipv6_link_scope(const struct pkt_info *pi)
{
	if (pi->family != 6)
		return false;
	if (pi->proto == IPPROTO_ICMPV6_ && pi->sport >= 130 && pi->sport <= 143)
		return true;
	return (pi->dst.a[0] == 0xff && (pi->dst.a[1] & 0x0f) <= 2) || (pi->src.a[0] == 0xfe && (pi->src.a[1] & 0xc0) == 0x80) ||
	       (pi->dst.a[0] == 0xfe && (pi->dst.a[1] & 0xc0) == 0x80);
}

static bool arp_for_red(struct worker *wk, const uint8_t *frame, uint32_t len)
{
	const struct snapshot *s = wk->snap;
	struct l2_self self = { &s->red, wk->w->red.mac, wk->w->neigh_red, &wk->tx_red };
	struct bw_addr sip = { .family = 4 };

	if (len < ETH_HLEN_ + 28)
		return false;
	memcpy(sip.a, frame + ETH_HLEN_ + 14, 4);
	red_learn(wk, frame, &sip);
	if (arp_input(&self, frame, len, wk->now))
		return true;
	/* Replies to our own probes are ours, not the black side's. */
	return memcmp(frame, wk->w->red.mac, 6) == 0;
}

static void out_frame(void *ctx, uint8_t *frame, uint32_t len);

/* A GRO/GSO super-frame: cut it to the port MTU and walk each piece. */
static void oversize(struct worker *wk, uint8_t *frame, uint32_t len, const struct pkt_info *pi, uint32_t mtu,
                     port_rx_fn walk)
{
	uint32_t state = 0;
	int n;

	while ((n = gso_segment_next(frame, len, pi, mtu, &state, wk->scratch, TXQ_BUF)) > 0)
		walk(wk, wk->scratch, (uint32_t)n);
	if (n < 0)
		count_drop(wk, n);
}

/*
 * What a red super-frame is cut to: a protected one to what fits its tunnel,
 * so no DF segment comes back as ICMP too-big; anything else to the red MTU.
 */
static uint32_t segment_mtu(struct worker *wk, const struct pkt_info *pi)
{
	const struct spd_policy *p = flow_cache_lookup(wk->fc, wk->snap->spd, DIR_OUT, pi);
	uint32_t mtu = wk->w->red.mtu, fit;
	struct sa *sa, *ah;

	if (!p || p->conf.action != ACT_PROTECT || !(sa = out_sa_for(wk->snap, p, pi, &ah)))
		return mtu;
	fit = bundle_mtu(sa, ah, wk->w->black.mtu);
	return fit && fit < mtu ? fit : mtu;
}

static void out_frame(void *ctx, uint8_t *frame, uint32_t len)
{
	struct worker *wk = ctx;
	struct pkt_info pi;
	int rc = pkt_parse(frame, len, &pi);

	if (rc < 0) {
		count_drop(wk, rc);
		return;
	}
	if (pi.family == 0) {
		if (pi.ethertype == ETHERTYPE_ARP_ && arp_for_red(wk, frame, len))
			return;
		bridge_non_ip(wk, &wk->tx_black, frame, len);
		return;
	}
	if (pi.ip_len > wk->w->red.mtu) {
		oversize(wk, frame, len, &pi, segment_mtu(wk, &pi), out_frame);
		return;
	}
	red_learn(wk, frame, &pi.src);
	if (ipv6_link_scope(&pi)) {
		struct l2_self self = { &wk->snap->red, wk->w->red.mac, wk->w->neigh_red, &wk->tx_red };

		if (pi.proto == IPPROTO_ICMPV6_ && nd_input(&self, frame, len, &pi, wk->now))
			return;
		if (wk->snap->opt.bridge_non_ip)
			bridge(wk, &wk->tx_black, frame, len);
		return;
	}
	csum_complete_partial(frame, &pi);
	out_ip(wk, frame, len, &pi);
}

/* ---- inbound: black -> red ---- */

static void deliver_red(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	struct wire *w = wk->w;
	uint32_t len = pi->l3_off + pi->ip_len;  /* drops TFC padding after the inner packet */
	uint64_t rmac = atomic_load_explicit(&w->router_mac, memory_order_relaxed);
	uint8_t *slot;

	if (pi->ip_len > w->red.mtu) {
		count_drop(wk, XE_MTU_EXCEEDED);
		return;
	}
	/*
	 * After esp_decap_slot this is the same slot, or (when that was the
	 * spare of a full ring) the ring frame if it has come back since: this
	 * call does not wait for the ring again.
	 */
	slot = txq_slot(&wk->tx_red);
	if (slot != frame)  /* else decrypted straight into the slot */
		memcpy(slot, frame, len);
	if (rmac)
		u64_to_mac(rmac, slot + 6);
	else
		memcpy(slot + 6, w->red.mac, 6);
	if (group_mac(&pi->dst, slot)) {
		txq_commit(&wk->tx_red, len);
		return;
	}
	if (send_via(&wk->tx_red, w->neigh_red, &wk->snap->red, w->red.mac, &pi->dst, slot, len, wk->now) < 0)
		count_drop(wk, XE_NEIGH_UNRESOLVED);
}

/*
 * RFC 6040 4.2 (normal mode): outer CE marks the inner packet CE, and is a
 * drop when the inner packet is not-ECT; outer ECT(1) over inner ECT(0) gives
 * ECT(1); anything else leaves the inner field as it is.
 */
static int ecn_decap(uint8_t *ip, int family, uint8_t outer)
{
	uint8_t inner = family == 4 ? ip[1] & 3 : (ip[1] >> 4) & 3, want = inner;

	if (outer == 3 && inner == 0)
		return -XE_ECN_CE_NOT_ECT;
	if (outer == 3)
		want = 3;
	else if (outer == 1 && inner == 2)
		want = 1;
	if (want == inner)
		return 0;
	if (family == 4) {
		ip[1] = (uint8_t)((ip[1] & ~3u) | want);
		ipv4_set_csum(ip);
	} else {
		ip[1] = (uint8_t)((ip[1] & 0xcfu) | (unsigned)want << 4);
	}
	return 0;
}

/*
 * The inner packet of a verified tunnel-mode SA (ah: the AH SA of the bundle
 * it came through, else NULL): bundle, dummy, policy and ECN checks, then to
 * red.
 */
static void in_inner(struct worker *wk, struct sa *sa, struct sa *ah, uint8_t *frame, uint8_t *inner,
                     uint32_t inner_len, uint8_t nh, uint8_t outer_ecn)
{
	const struct snapshot *s = wk->snap;
	const struct spd_policy *p = spd_by_id(s->spd, sa->conf.policy_id);
	struct pkt_info ipi;
	int rc;

	/* An ahesp policy takes only what came through both of its SAs; other policies only their own protocol. */
	if (!p || p->conf.sa_type != (ah ? SATYPE_AHESP : sa->conf.proto)) {
		count_drop(wk, XE_INBOUND_POLICY_FAILURE);
		return;
	}
	if (nh == NH_DUMMY) {
		stat_add(&sa->st.dummies, 1);
		count_drop(wk, XE_DUMMY_PACKET);
		return;
	}
	if ((nh != NH_IPV4 && nh != NH_IPV6) || inner - frame < ETH_HLEN_) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return;
	}
	if (sa_account(sa, inner_len) < 0 || (ah && sa_account(ah, inner_len) < 0)) {
		count_drop(wk, XE_SA_EXPIRED);
		return;
	}
	/* The ESP header and IV (or the AH header) sit right before the inner packet: room for its Ethernet header. */
	inner -= ETH_HLEN_;
	eth_write(inner, NULL, wk->w->red.mac, nh == NH_IPV4 ? ETHERTYPE_IPV4_ : ETHERTYPE_IPV6_);
	rc = pkt_parse(inner, inner_len + ETH_HLEN_, &ipi);
	if (rc < 0 || ipi.family != (nh == NH_IPV4 ? 4 : 6)) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return;
	}
	/* RFC 4301 §5.2: what comes out of an SA must be what its policy protects. */
	if (!selector_match(&p->conf.sel, DIR_IN, &ipi) || !clone_inbound_ok(p->conf.clone, &sa->conf.clone_host, &ipi)) {
		count_drop(wk, XE_INBOUND_POLICY_FAILURE);
		return;
	}
	if (!sa->conf.opts.ecn_off && (rc = ecn_decap(inner + ETH_HLEN_, ipi.family, outer_ecn)) < 0) {
		count_drop(wk, rc);
		return;
	}
	stat_add(&p->stats->packets[1], 1);
	stat_add(&p->stats->bytes[1], ipi.ip_len);
	deliver_red(wk, inner, &ipi);
}

/*
 * Decrypt into the red transmit slot, where the inner packet goes anyway:
 * no copy of it afterwards (deliver_red). The slot is committed only if the
 * packet passes every check; a frame too big for a slot is decrypted in place.
 * *frame becomes the slot; the inner packet starts after room for its
 * Ethernet header.
 */
static int esp_decap_slot(struct worker *wk, struct sa *sa, uint8_t **frame, uint8_t *esp, uint32_t esp_len,
                          uint8_t **inner, uint32_t *inner_len, uint8_t *nh)
{
	uint8_t *slot;

	if (esp_len > TXQ_BUF - ETH_HLEN_)
		return esp_decap(sa, esp, esp_len, inner, inner_len, nh);
	slot = txq_slot(&wk->tx_red);
	*frame = slot;
	*inner = slot + ETH_HLEN_;
	return esp_decap_to(sa, esp, esp_len, *inner, TXQ_BUF - ETH_HLEN_, inner_len, nh);
}

static void in_esp(struct worker *wk, uint8_t *frame, uint8_t *esp, uint32_t esp_len, uint8_t outer_ecn)
{
	const struct snapshot *s = wk->snap;
	struct sa *sa;
	uint8_t *inner, nh;
	uint32_t inner_len;
	int rc;

	if (esp_len < 8 || esp - frame < ETH_HLEN_ + 8) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return;
	}
	/* Drop all stops protected traffic too; bypass all still delivers what arrives protected. */
	if (s->opt.admin_state == ADMIN_DROP) {
		count_drop(wk, XE_ADMIN_DROP);
		return;
	}
	sa = sad_lookup(s->sad, rd32(esp), PROTO_ESP);
	if (!sa) {
		count_drop(wk, XE_BAD_ESP_SPI);
		return;
	}
	if (atomic_load_explicit(&sa->state, memory_order_relaxed) == SA_DEAD) {
		count_drop(wk, XE_SA_EXPIRED);
		return;
	}
	rc = esp_decap_slot(wk, sa, &frame, esp, esp_len, &inner, &inner_len, &nh);
	if (rc < 0) {
		count_drop(wk, rc);
		return;
	}
	in_inner(wk, sa, NULL, frame, inner, inner_len, nh, outer_ecn);
}

/* The ESP packet inside a verified AH packet of an AH+ESP bundle: its SA must be the same policy's. */
static void in_bundle_esp(struct worker *wk, struct sa *ah, uint8_t *frame, uint8_t *esp, uint32_t esp_len,
                          uint8_t outer_ecn)
{
	struct sa *sa;
	uint8_t *inner, nh;
	uint32_t inner_len;
	int rc;

	if (esp_len < 8) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return;
	}
	sa = sad_bundle_esp(wk->snap->sad, ah, rd32(esp), &rc);
	if (!sa) {
		count_drop(wk, rc);
		return;
	}
	if (atomic_load_explicit(&sa->state, memory_order_relaxed) == SA_DEAD) {
		count_drop(wk, XE_SA_EXPIRED);
		return;
	}
	rc = esp_decap_slot(wk, sa, &frame, esp, esp_len, &inner, &inner_len, &nh);
	if (rc < 0) {
		count_drop(wk, rc);
		return;
	}
	in_inner(wk, sa, ah, frame, inner, inner_len, nh, outer_ecn);
}

/* AH (RFC 4302) to our black address: verified in place, then delivered as ESP's inner packets are. */
static void in_ah(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	uint8_t *ip = frame + pi->l3_off, *inner, nh;
	uint32_t ah_off = pkt_ah_at(pi), inner_len;
	struct sa *sa;
	int rc;

	if (!ah_off || pi->ip_len < ah_off + 12) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return;
	}
	if (wk->snap->opt.admin_state == ADMIN_DROP) {
		count_drop(wk, XE_ADMIN_DROP);
		return;
	}
	sa = sad_lookup(wk->snap->sad, rd32(ip + ah_off + 4), PROTO_AH);
	if (!sa) {
		count_drop(wk, XE_BAD_AH_SPI);
		return;
	}
	if (atomic_load_explicit(&sa->state, memory_order_relaxed) == SA_DEAD) {
		count_drop(wk, XE_SA_EXPIRED);
		return;
	}
	rc = ah_decap(sa, ip, pi->ip_len, ah_off, &inner, &inner_len, &nh);
	if (rc < 0) {
		count_drop(wk, rc);
		return;
	}
	if (nh == IPPROTO_ESP_)
		in_bundle_esp(wk, sa, frame, inner, inner_len, pi->tos & 3);
	else
		in_inner(wk, sa, NULL, frame, inner, inner_len, nh, pi->tos & 3);
}

static void to_control(struct worker *wk, const struct pkt_info *pi, const uint8_t *data, uint32_t len)
{
	struct ring_msg *m = ring_reserve(&wk->events);
	uint64_t one = 1;

	if (!m || len > sizeof m->data) {
		count_drop(wk, XE_IO);
		return;
	}
	m->type = CTL_EV_IKE_RECV;
	memset(&m->dg, 0, sizeof m->dg);
	m->dg.family = pi->family;
	m->dg.sport = pi->sport;
	m->dg.dport = pi->dport;
	memcpy(m->dg.src, pi->src.a, 16);
	memcpy(m->dg.dst, pi->dst.a, 16);
	m->len = len;
	memcpy(m->data, data, len);
	ring_publish(&wk->events);
	if (write(wk->w->ev_fd, &one, sizeof one) < 0)
		return;
}

static bool is_udp_encap_port(const struct snapshot *s, uint16_t port)
{
	for (uint8_t i = 0; i < s->n_udp_ports; i++)
		if (s->udp_ports[i] == port)
			return true;
	return false;
}

static void in_udp(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	uint8_t *udp = frame + pi->l4_off, *data = udp + 8;
	uint32_t l4len = pi->ip_len - (uint32_t)(pi->l4_off - pi->l3_off), dlen;

	if (l4len < 8 || ((uint32_t)udp[4] << 8 | udp[5]) > l4len || ((uint32_t)udp[4] << 8 | udp[5]) < 8) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return;
	}
	dlen = ((uint32_t)udp[4] << 8 | udp[5]) - 8;
	if (is_udp_encap_port(wk->snap, pi->dport)) {
		if (dlen == 1 && data[0] == 0xff)
			return;  /* NAT keepalive (RFC 3948 §2.3): it did its job by arriving */
		if (dlen >= 4 && rd32(data) == 0) {
			to_control(wk, pi, data + 4, dlen - 4);  /* non-ESP marker: IKE */
			return;
		}
		in_esp(wk, frame, data, dlen, pi->tos & 3);
		return;
	}
	if (pi->dport == 500) {
		to_control(wk, pi, data, dlen);
		return;
	}
	count_drop(wk, XE_NOT_FOR_US);
}

static void in_local_whole(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	uint32_t n;

	/* AH first: an IPv6 walk goes past AH to the ESP of a bundle (proto ESP, ah_off set) */
	if (pi->proto == IPPROTO_AH_ || pi->ah_off) {
		in_ah(wk, frame, pi);
	} else if (pi->proto == IPPROTO_ESP_) {
		in_esp(wk, frame, frame + pi->l4_off, pi->ip_len - (uint32_t)(pi->l4_off - pi->l3_off), pi->tos & 3);
	} else if (pi->proto == IPPROTO_UDP_) {
		in_udp(wk, frame, pi);
	} else if ((n = icmp_build_echo_reply(txq_slot(&wk->tx_black), TXQ_BUF, frame, pi, wk->w->black.mac)) > 0) {
		txq_commit(&wk->tx_black, n);
	} else {
		count_drop(wk, XE_NOT_FOR_US);
	}
}

/* A packet addressed to our black address: ESP, ESP-in-UDP, IKE, ping; fragments reassembled first. */
static void in_local(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	const uint8_t *whole;
	uint32_t whole_len;
	struct pkt_info wpi;
	int rc;

	if (pi->frag == PKT_FRAG_NONE) {
		in_local_whole(wk, frame, pi);
		return;
	}
	rc = reasm_input(wk->reasm, frame + pi->l3_off, pi->ip_len, pi, wk->now, &whole, &whole_len);
	if (rc <= 0) {
		if (rc < 0)
			count_drop(wk, XE_FRAG_FAILED);
		return;
	}
	if (whole_len + ETH_HLEN_ > TXQ_BUF) {
		count_drop(wk, XE_FRAG_FAILED);
		return;
	}
	memcpy(wk->scratch, frame, ETH_HLEN_);
	memcpy(wk->scratch + ETH_HLEN_, whole, whole_len);
	if (pkt_parse(wk->scratch, whole_len + ETH_HLEN_, &wpi) < 0 || wpi.frag != PKT_FRAG_NONE) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return;
	}
	in_local_whole(wk, wk->scratch, &wpi);
}

static void in_ip(struct worker *wk, uint8_t *frame, uint32_t len, const struct pkt_info *pi)
{
	const struct spd_policy *p;

	if (admin_override(wk, &wk->tx_red, frame, len))
		return;
	p = flow_cache_lookup(wk->fc, wk->snap->spd, DIR_IN, pi);
	switch (verdict(wk, p)) {
	case ACT_BYPASS:
		if (p) {
			stat_add(&p->stats->packets[1], 1);
			stat_add(&p->stats->bytes[1], pi->ip_len);
		}
		bridge(wk, &wk->tx_red, frame, len);
		return;
	case ACT_PROTECT:
		stat_add(&p->stats->drops[1], 1);
		count_drop(wk, XE_INBOUND_EXPECTED_SECURE_PACKET);
		return;
	default:
		if (p)
			stat_add(&p->stats->drops[1], 1);
		count_drop(wk, p ? XE_POLICY_DISCARD : XE_NO_POLICY);
	}
}

/*
 * The SPI of the ESP or AH header a packet to a transport host carries, and
 * which of the two it is (false: neither). AH comes first: in an AH+ESP
 * bundle it is the outer header (RFC 4301 4.5), and IPv6's walk has gone
 * past it to ESP.
 */
static bool transport_spi(const uint8_t *frame, const struct pkt_info *pi, uint32_t *spi, uint8_t *proto)
{
	uint32_t at = pkt_ah_at(pi);

	if (pi->frag != PKT_FRAG_NONE)
		return false;
	if (at && pi->ip_len >= at + 12u) {
		*spi = rd32(frame + pi->l3_off + at + 4);
		*proto = PROTO_AH;
		return true;
	}
	if (pi->proto == IPPROTO_ESP_ && pi->l4_off && pi->l3_off + pi->ip_len >= pi->l4_off + 8u) {
		*spi = rd32(frame + pi->l4_off);
		*proto = PROTO_ESP;
		return true;
	}
	return false;
}

/* sa usable for a packet to a transport host: 0, or the drop's code. */
static int transport_sa_ok(const struct snapshot *s, const struct sa *sa)
{
	if (s->opt.admin_state == ADMIN_DROP)
		return XE_ADMIN_DROP;
	return atomic_load_explicit(&sa->state, memory_order_relaxed) == SA_DEAD ? XE_SA_EXPIRED : 0;
}

/*
 * The ESP packet inside a verified transport AH packet of an AH+ESP bundle
 * (IP | ESP | payload once AH came off): its SA must be the same policy's and
 * the same host's. Returns 0 or -XE_*.
 */
static int in_transport_bundle_esp(struct worker *wk, struct sa *ah, uint8_t **out, uint32_t *out_len,
                                   struct sa **esp)
{
	struct pkt_info epi;
	int rc;

	if (pkt_parse(*out, *out_len, &epi) < 0 || epi.proto != IPPROTO_ESP_ || !epi.l4_off ||
	    epi.l3_off + epi.ip_len < epi.l4_off + 8u)
		return -XE_MALFORMED_PACKET;
	if (!(*esp = sad_bundle_esp(wk->snap->sad, ah, rd32(*out + epi.l4_off), &rc)))
		return -rc;
	if ((*esp)->conf.mode != MODE_TRANSPORT || !bw_addr_eq(&(*esp)->conf.local, &ah->conf.local))
		return -XE_INBOUND_POLICY_FAILURE;
	if ((rc = transport_sa_ok(wk->snap, *esp)))
		return -rc;
	return transport_decap(*esp, *out, &epi, out, out_len);
}

/*
 * ESP or AH addressed to a protected host on one of our transport SAs: bitw
 * verifies it on the host's behalf. AH over ESP is a bundle: AH is verified,
 * then the ESP inside decrypted, and only an ahesp policy takes the result.
 */
static bool in_transport(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	const struct snapshot *s = wk->snap;
	const struct spd_policy *p;
	struct pkt_info ipi;
	uint32_t out_len, spi;
	uint8_t *out, proto;
	struct sa *sa, *esp = NULL;
	bool bundle;
	int rc;

	if (!transport_spi(frame, pi, &spi, &proto))
		return false;
	sa = sad_lookup(s->sad, spi, proto);
	if (!sa || sa->conf.mode != MODE_TRANSPORT || !bw_addr_eq(&sa->conf.local, &pi->dst))
		return false;
	if ((rc = transport_sa_ok(s, sa))) {
		count_drop(wk, rc);
		return true;
	}
	/* AH's next header: read before it is verified, but a forged one fails AH's ICV all the same. */
	bundle = proto == PROTO_AH && frame[pi->ah_off] == IPPROTO_ESP_;
	rc = transport_decap(sa, frame, pi, &out, &out_len);
	if (rc == 0 && bundle)
		rc = in_transport_bundle_esp(wk, sa, &out, &out_len, &esp);
	if (rc == 0 && (sa_account(sa, out_len - pi->l3_off) < 0 || (esp && sa_account(esp, out_len - pi->l3_off) < 0)))
		rc = -XE_SA_EXPIRED;
	if (rc < 0) {
		count_drop(wk, rc);
		return true;
	}
	/* RFC 4301 §5.2: what comes out of an SA must be what its policy protects; an ahesp one both SAs. */
	p = spd_by_id(s->spd, sa->conf.policy_id);
	if (pkt_parse(out, out_len, &ipi) < 0 || !p || p->conf.sa_type != (esp ? SATYPE_AHESP : sa->conf.proto) ||
	    !selector_match(&p->conf.sel, DIR_IN, &ipi)) {
		count_drop(wk, XE_INBOUND_POLICY_FAILURE);
		return true;
	}
	stat_add(&p->stats->packets[1], 1);
	stat_add(&p->stats->bytes[1], ipi.ip_len);
	bridge(wk, &wk->tx_red, out, out_len);
	return true;
}

/*
 * Fragments of ESP or AH addressed to a transport-mode host: the peer's bitw
 * fragmented them after the transform (RFC 4301 7), so they are reassembled
 * here, with the same bounded table as our own, and verified whole.
 * Transport SAs are never UDP-encapsulated, so UDP fragments are left alone.
 * A whole packet no SA of its host takes is counted by its outer header (AH
 * for a bundle, whose IPv6 walk goes on to ESP), not by its last one.
 */
static bool in_transport_frags(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	const uint8_t *whole;
	uint32_t whole_len;
	struct pkt_info wpi;
	uint32_t spi;
	uint8_t proto;
	int rc;

	if (pi->frag == PKT_FRAG_NONE || (pi->proto != IPPROTO_ESP_ && pi->proto != IPPROTO_AH_ && !pi->ah_off) ||
	    !spd_transport_host(wk->snap->spd, &pi->dst))
		return false;
	rc = reasm_input(wk->reasm, frame + pi->l3_off, pi->ip_len, pi, wk->now, &whole, &whole_len);
	if (rc <= 0) {
		if (rc < 0)
			count_drop(wk, XE_FRAG_FAILED);
		return true;
	}
	if (whole_len + ETH_HLEN_ > TXQ_BUF) {
		count_drop(wk, XE_FRAG_FAILED);
		return true;
	}
	memcpy(wk->scratch, frame, ETH_HLEN_);
	memcpy(wk->scratch + ETH_HLEN_, whole, whole_len);
	if (pkt_parse(wk->scratch, whole_len + ETH_HLEN_, &wpi) < 0 || wpi.frag != PKT_FRAG_NONE) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return true;
	}
	if (!in_transport(wk, wk->scratch, &wpi))
		count_drop(wk, !transport_spi(wk->scratch, &wpi, &spi, &proto) ? XE_MALFORMED_PACKET
		               : proto == PROTO_AH ? XE_BAD_AH_SPI : XE_BAD_ESP_SPI);
	return true;
}

/* IKE (UDP 500, or 4500 with the non-ESP marker) for a transport-mode host: bitwd answers on its behalf. */
static bool in_host_ike(struct worker *wk, uint8_t *frame, const struct pkt_info *pi)
{
	uint8_t *data = frame + pi->l4_off + 8;
	uint32_t l4len = pi->ip_len - (uint32_t)(pi->l4_off - pi->l3_off), ulen;

	if ((pi->dport != 500 && pi->dport != 4500) || pi->frag != PKT_FRAG_NONE || l4len < 8 ||
	    !spd_transport_host(wk->snap->spd, &pi->dst))
		return false;
	ulen = (uint32_t)frame[pi->l4_off + 4] << 8 | frame[pi->l4_off + 5];
	if (ulen < 8 || ulen > l4len) {
		count_drop(wk, XE_MALFORMED_PACKET);
		return true;
	}
	ulen -= 8;
	if (pi->dport == 500)
		to_control(wk, pi, data, ulen);
	else if (ulen >= 4 && rd32(data) == 0)
		to_control(wk, pi, data + 4, ulen - 4);
	else
		count_drop(wk, XE_NOT_SUPPORTED);  /* ESP in UDP: transport SAs are not encapsulated */
	return true;
}

static void in_frame(void *ctx, uint8_t *frame, uint32_t len)
{
	struct worker *wk = ctx;
	const struct snapshot *s = wk->snap;
	struct l2_self self = { &s->black, wk->w->black.mac, wk->w->neigh_black, &wk->tx_black };
	struct pkt_info pi;
	int rc = pkt_parse(frame, len, &pi);

	if (rc < 0) {
		count_drop(wk, rc);
		return;
	}
	if (pi.family == 0) {
		if (pi.ethertype == ETHERTYPE_ARP_ && arp_input(&self, frame, len, wk->now))
			return;
		bridge_non_ip(wk, &wk->tx_red, frame, len);
		return;
	}
	if (ipv6_link_scope(&pi)) {
		if (pi.proto == IPPROTO_ICMPV6_ && nd_input(&self, frame, len, &pi, wk->now))
			return;
		if (s->opt.bridge_non_ip)
			bridge(wk, &wk->tx_red, frame, len);
		return;
	}
	if (is_ours(&s->black, &pi.dst)) {
		in_local(wk, frame, &pi);
		return;
	}
	if ((pi.proto == IPPROTO_ESP_ || pi.proto == IPPROTO_AH_ || pi.ah_off) &&
	    (in_transport(wk, frame, &pi) || in_transport_frags(wk, frame, &pi)))
		return;
	if (pi.proto == IPPROTO_UDP_ && in_host_ike(wk, frame, &pi))
		return;
	if (pi.ip_len > wk->w->black.mtu) {
		oversize(wk, frame, len, &pi, wk->w->black.mtu, in_frame);
		return;
	}
	csum_complete_partial(frame, &pi);
	in_ip(wk, frame, len, &pi);
}

/* ---- the data thread ---- */

/* pcap's drop count is only safe to read from the thread that reads the port: publish it for STATS. */
static void ring_drops_publish(struct port *port)
{
	uint64_t drops;

	if (port_ring_drops(port, &drops) == 0)
		atomic_store_explicit(&port->st.ring_drops, drops, memory_order_relaxed);
}

void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct wire *w = wk->w;
	struct port *port = wk->dir == TH_OUT ? &w->red : &w->black;
	port_rx_fn walk = wk->dir == TH_OUT ? out_frame : in_frame;
	struct pollfd pfd[2] = { { .fd = port->fd, .events = POLLIN }, { .fd = wk->wake_fd, .events = POLLIN } };
	uint64_t last_expire = 0, last_ring_drops = 0, v;
	bool dummies = false;

	while (!atomic_load(&w->stop)) {
		atomic_store(&wk->idle, 1);
		if (poll(pfd, 2, wk->acq_used || dummies ? 20 : 100) < 0 && errno != EINTR)
			wlog(WLOG_ERR, "poll: %s", strerror(errno));
		/* seq_cst: pairs with the control thread's snapshot exchange (see synchronize()). */
		atomic_store(&wk->idle, 0);
		if (pfd[1].revents && read(wk->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
			wlog(WLOG_WARN, "wake fd: %s", strerror(errno));
		wk->snap = atomic_load(&w->snap);
		wk->now = now_ms();
		if (wk->acq_used)
			acquire_service(wk);
		if (wk->dir == TH_OUT) {
			dummies = dummy_service(wk);
			txq_flush(&wk->tx_black);
		}
		for (int round = 0; round < 16; round++) {
			int n = port_rx_batch(port, RX_BATCH, walk, wk);

			txq_flush(&wk->tx_black);
			txq_flush(&wk->tx_red);
			if (n < RX_BATCH)
				break;
			wk->now = now_ms();
		}
		if (wk->now - last_ring_drops >= 1000) {
			ring_drops_publish(port);
			last_ring_drops = wk->now;
		}
		if (wk->reasm && wk->now - last_expire >= 100) {
			atomic_fetch_add_explicit(&wk->drops.by_reason[XE_FRAG_FAILED], reasm_expire(wk->reasm, wk->now),
			                          memory_order_relaxed);
			last_expire = wk->now;
		}
		atomic_store(&wk->quiescent, wk->snap->gen);
		wk->snap = NULL;
	}
	ring_drops_publish(port);
	atomic_store(&wk->idle, 1);
	return NULL;
}
