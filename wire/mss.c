/* mss.c: TCP MSS clamping of SYNs, so tunnelled connections never need fragmentation. */
#include <string.h>

#include "ip.h"

#define TCP_SYN 0x02
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
static uint16_t csum_replace16(uint16_t check, uint16_t old, uint16_t new_)
{
	uint32_t s = (uint16_t)~check + (uint32_t)(uint16_t)~old + new_;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint16_t swap16(uint16_t v)
{
	return (uint16_t)(v << 8 | v >> 8);
}

/* Offset of the MSS option's value within the TCP header, 0 if none or the options are malformed. */
static uint32_t find_mss_option(const uint8_t *tcp, uint32_t doff)
{
	uint32_t i = 20;
	while (i < doff) {
		uint8_t kind = tcp[i];
		if (kind == TCPOPT_EOL)
			return 0;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (doff - i < 2)
			return 0;
		uint8_t olen = tcp[i + 1];
		if (olen < 2 || olen > doff - i)
			return 0;
		if (kind == TCPOPT_MSS)
			return olen == 4 ? i + 2 : 0;
		i += olen;
	}
	return 0;
}

bool tcp_mss_clamp(uint8_t *frame, const struct pkt_info *pi, uint16_t mss)
{
	if ((pi->family != 4 && pi->family != 6) || pi->proto != 6 || pi->l4_off == 0 ||
	    pi->frag == PKT_FRAG_OTHER)
		return false;
	uint32_t avail = pi->ip_len - (uint32_t)(pi->l4_off - pi->l3_off);
	uint8_t *tcp = frame + pi->l4_off;
	if (avail < 20 || !(tcp[13] & TCP_SYN))
		return false;
	uint32_t doff = (uint32_t)(tcp[12] >> 4) * 4;
	if (doff < 20 || doff > avail)
		return false;
	uint32_t at = find_mss_option(tcp, doff);
	if (at == 0)
		return false;
	uint16_t old = (uint16_t)(tcp[at] << 8 | tcp[at + 1]);
	if (old <= mss)
		return false;
	uint16_t check = (uint16_t)(tcp[16] << 8 | tcp[17]);
	/* A 16-bit value at an odd offset adds to the sum byte-swapped. */
	bool odd = at & 1;
	check = csum_replace16(check, odd ? swap16(old) : old, odd ? swap16(mss) : mss);
	tcp[at] = (uint8_t)(mss >> 8);
	tcp[at + 1] = (uint8_t)mss;
	tcp[16] = (uint8_t)(check >> 8);
	tcp[17] = (uint8_t)check;
	return true;
}
