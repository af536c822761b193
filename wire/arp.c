/* arp.c: our side of ARP on a port: answer for our IPv4 addresses, learn from answers, build requests and probes. */
#include <string.h>

#include "port.h"
#include "wire.h"

#define ARP_LEN 28            /* Ethernet/IPv4 ARP body */
#define ARP_FRAME_MIN 60      /* Ethernet minimum without FCS: we pad what we send */
#define ARP_REQUEST 1
#define ARP_REPLY 2

/* Offsets in the ARP body. */
enum { A_HTYPE = 0, A_PTYPE = 2, A_HLEN = 4, A_PLEN = 5, A_OP = 6, A_SHA = 8, A_SPA = 14, A_THA = 18, A_TPA = 24 };

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void v4(struct bw_addr *a, const uint8_t *ip)
{
	memset(a, 0, sizeof *a);
	a->family = 4;
	memcpy(a->a, ip, 4);
}

static bool is_ours(const struct port_conf *pc, const uint8_t ip[4])
{
	for (unsigned i = 0; i < pc->naddr && i < PORT_MAX_ADDRS; i++)
		if (pc->addr[i].family == 4 && memcmp(pc->addr[i].a, ip, 4) == 0)
			return true;
	return false;
}

static bool is_zero4(const uint8_t ip[4])
{
	return !(ip[0] | ip[1] | ip[2] | ip[3]);
}

/* Ethernet header then an Ethernet/IPv4 ARP body, zero padded to the minimum frame. */
static uint32_t arp_build(uint8_t *buf, const uint8_t dst[6], const uint8_t smac[6], uint16_t op,
                          const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4])
{
	memset(buf, 0, ARP_FRAME_MIN);
	memcpy(buf, dst, 6);
	memcpy(buf + 6, smac, 6);
	wr16(buf + 12, ETHERTYPE_ARP_);
	uint8_t *a = buf + ETH_HLEN_;
	wr16(a + A_HTYPE, 1);
	wr16(a + A_PTYPE, ETHERTYPE_IPV4_);
	a[A_HLEN] = 6;
	a[A_PLEN] = 4;
	wr16(a + A_OP, op);
	memcpy(a + A_SHA, smac, 6);
	memcpy(a + A_SPA, spa, 4);
	memcpy(a + A_THA, tha, 6);
	memcpy(a + A_TPA, tpa, 4);
	return ARP_FRAME_MIN;
}

uint32_t arp_build_request(uint8_t *buf, const uint8_t smac[6], const struct bw_addr *sip,
                           const struct bw_addr *target)
{
	static const uint8_t zero[6];
	return arp_build(buf, bcast, smac, ARP_REQUEST, sip ? sip->a : zero, zero, target->a);
}

/* A request for one of our addresses: answer it, and the asker is a neighbour we will talk to. */
static void arp_answer(const struct l2_self *s, const uint8_t *a, uint64_t now_ms)
{
	uint8_t reply[ARP_FRAME_MIN];
	/* A probe (sender 0.0.0.0, RFC 5227) is defended but its sender has no address to learn. */
	if (!is_zero4(a + A_SPA)) {
		struct bw_addr sender;
		v4(&sender, a + A_SPA);
		neigh_update(s->neigh, &sender, a + A_SHA, now_ms, s->tx);
	}
	uint32_t n = arp_build(reply, a + A_SHA, s->mac, ARP_REPLY, a + A_TPA, a + A_SHA, a + A_SPA);
	if (s->tx)
		txq_push(s->tx, reply, n);
}

bool arp_input(const struct l2_self *s, const uint8_t *frame, uint32_t len, uint64_t now_ms)
{
	if (len < ETH_HLEN_ + ARP_LEN || rd16(frame + 12) != ETHERTYPE_ARP_)
		return false;
	const uint8_t *a = frame + ETH_HLEN_;
	if (rd16(a + A_HTYPE) != 1 || rd16(a + A_PTYPE) != ETHERTYPE_IPV4_ || a[A_HLEN] != 6 || a[A_PLEN] != 4)
		return false;
	uint16_t op = rd16(a + A_OP);
	/* A multicast sender hardware address is never a neighbour (and never gets an answer). */
	if (a[A_SHA] & 1)
		return false;
	bool for_us = is_ours(s->pc, a + A_TPA);
	struct bw_addr sender;
	v4(&sender, a + A_SPA);

	if (op == ARP_REQUEST && for_us) {
		arp_answer(s, a, now_ms);
		return true;
	}
	if (op == ARP_REPLY && for_us) {
		if (!is_zero4(a + A_SPA))
			neigh_update(s->neigh, &sender, a + A_SHA, now_ms, s->tx);
		return true;
	}
	/*
	 * Answers to our RFC 5227 probes come back with target 0.0.0.0 and our
	 * MAC: consume them only if we were asking for that sender.
	 */
	if (op == ARP_REPLY && is_zero4(a + A_TPA) && memcmp(a + A_THA, s->mac, 6) == 0 && !is_zero4(a + A_SPA))
		return neigh_confirm(s->neigh, &sender, a + A_SHA, now_ms, s->tx) == NEIGH_RESOLVED;
	/* Anything else (gratuitous ARP included) only refreshes what we already know. */
	if ((op == ARP_REQUEST || op == ARP_REPLY) && !is_zero4(a + A_SPA))
		(void)neigh_confirm(s->neigh, &sender, a + A_SHA, now_ms, s->tx);
	return false;
}
