/* gso.c: split GRO/GSO super-frames that reach the wire into frames that fit the port MTU. */
#include <string.h>

#include "ip.h"
#include "wire.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static int copy_whole(const uint8_t *frame, uint32_t len, uint32_t *state, uint8_t *out, uint32_t cap)
{
	if (*state)
		return 0;
	if (len > cap)
		return -XE_BAD_PARAM;
	memcpy(out, frame, len);
	*state = 1;
	return (int)len;
}

/*
 * TCP: every segment carries the super-frame's headers (IP options and
 * extension headers included) and at most mss payload bytes. *state is 1 +
 * the payload offset of the next segment.
 */
static int tcp_segment_next(const uint8_t *frame, const struct pkt_info *pi, uint32_t mtu, uint32_t *state,
                            uint8_t *out, uint32_t cap)
{
	uint32_t iphl = (uint32_t)(pi->l4_off - pi->l3_off);
	const uint8_t *tcp = frame + pi->l4_off;
	uint32_t tcphl = (uint32_t)(tcp[12] >> 4) * 4;
	if (iphl + tcphl >= mtu || iphl + tcphl > pi->ip_len)
		return -XE_TOO_BIG;
	uint32_t mss = mtu - iphl - tcphl;
	uint32_t plen = pi->ip_len - iphl - tcphl;
	uint32_t done = *state ? *state - 1 : 0;
	if (*state && done >= plen)
		return 0;
	uint32_t seg = plen - done < mss ? plen - done : mss;
	uint32_t hdrs = pi->l4_off + tcphl;
	if (hdrs + seg > cap)
		return -XE_BAD_PARAM;

	memcpy(out, frame, hdrs);
	memcpy(out + hdrs, tcp + tcphl + done, seg);
	uint8_t *ip = out + pi->l3_off, *th = out + pi->l4_off;
	uint32_t seg_ip_len = iphl + tcphl + seg;
	if (pi->family == 4) {
		wr16(ip + 2, seg_ip_len);
		wr16(ip + 4, (uint32_t)(ip[4] << 8 | ip[5]) + done / mss);
		ipv4_set_csum(ip);
	} else {
		wr16(ip + 4, seg_ip_len - 40);
	}
	wr32(th + 4, rd32(tcp + 4) + done);
	bool first = done == 0, last = done + seg >= plen;
	if (!last)
		th[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
	if (!first)
		th[13] &= (uint8_t)~TCP_CWR;
	th[16] = th[17] = 0;
	uint32_t sum = csum_pseudo(&pi->src, &pi->dst, IPPROTO_TCP_, tcphl + seg);
	wr16(th + 16, csum_fold(csum_partial(th, tcphl + seg, sum)));
	*state = 1 + done + seg;
	return (int)(hdrs + seg);
}

/*
 * A UDP super-frame may carry a CHECKSUM_PARTIAL field; once fragmented
 * nobody can complete it, so the first fragment gets the full checksum.
 */
static void udp_fix_first_fragment(const uint8_t *frame, const struct pkt_info *pi, uint8_t *out_ip)
{
	uint32_t ulen = pi->ip_len - (uint32_t)(pi->l4_off - pi->l3_off);
	const uint8_t *udp = frame + pi->l4_off;
	uint16_t cur = (uint16_t)(udp[6] << 8 | udp[7]);
	uint32_t pseudo = csum_pseudo(&pi->src, &pi->dst, IPPROTO_UDP_, ulen);
	uint16_t folded = (uint16_t)~csum_fold(pseudo);
	if (cur == 0 || cur != folded)
		return;
	uint32_t sum = csum_partial(udp, 6, pseudo);
	sum = csum_partial(udp + 8, ulen - 8, sum);
	uint16_t c = csum_fold(sum);
	uint8_t *f_udp = out_ip + (pi->l4_off - pi->l3_off);
	wr16(f_udp + 6, c ? c : 0xffff);
}

static int ipv4_fragment_frame(const uint8_t *frame, const struct pkt_info *pi, uint32_t mtu, uint32_t *state,
                               uint8_t *out, uint32_t cap)
{
	if (cap < pi->l3_off)
		return -XE_BAD_PARAM;
	bool first = *state == 0;
	int n = ip_fragment_next(frame + pi->l3_off, pi->ip_len, mtu, 0, state, out + pi->l3_off,
	                         cap - pi->l3_off);
	if (n <= 0)
		return n;
	memcpy(out, frame, pi->l3_off);
	if (first && pi->proto == IPPROTO_UDP_ && pi->l4_off && (uint32_t)n >= pi->l4_off - pi->l3_off + 8u)
		udp_fix_first_fragment(frame, pi, out + pi->l3_off);
	return n + pi->l3_off;
}

int gso_segment_next(const uint8_t *frame, uint32_t len, const struct pkt_info *pi, uint32_t mtu,
                     uint32_t *state, uint8_t *out, uint32_t cap)
{
	if ((pi->family != 4 && pi->family != 6) || pi->l3_off + pi->ip_len > len)
		return -XE_MALFORMED_PACKET;
	if (pi->ip_len <= mtu)
		return copy_whole(frame, pi->l3_off + pi->ip_len, state, out, cap);
	if (pi->proto == IPPROTO_TCP_ && pi->frag == PKT_FRAG_NONE && pi->l4_off)
		return tcp_segment_next(frame, pi, mtu, state, out, cap);
	if (pi->family == 4 && !pi->df)
		return ipv4_fragment_frame(frame, pi, mtu, state, out, cap);
	return -XE_TOO_BIG;
}
