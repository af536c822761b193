/* frag.c: IPv4 (RFC 791) and IPv6 (RFC 8200 4.5) fragmentation of packets leaving the wire. */
#include <string.h>

#include "ip.h"
#include "wire.h"

#define IP4_MF 0x2000
#define IP4_DF 0x4000
#define IP4_OFFMASK 0x1fff
#define FRAG6_HLEN 8

/*
 * *state is 0 before the first call, then 1 + the offset of the next payload
 * byte to send, so that a packet with an empty payload still ends.
 */

/* Options of later fragments: only those with the copied flag (RFC 791), padded with EOL. */
static uint32_t ipv4_copied_options(const uint8_t *ip, uint32_t ihl, uint8_t *opts)
{
	uint32_t n = 0, i = 20;
	while (i < ihl) {
		uint8_t type = ip[i];
		if (type == 0)
			break;
		if (type == 1) {
			i++;
			continue;
		}
		if (ihl - i < 2 || ip[i + 1] < 2 || ip[i + 1] > ihl - i)
			break; /* malformed: copy no more */
		uint32_t olen = ip[i + 1];
		if (type & 0x80) {
			memcpy(opts + n, ip + i, olen);
			n += olen;
		}
		i += olen;
	}
	while (n % 4)
		opts[n++] = 0;
	return n;
}

static int copy_whole(const uint8_t *ip, uint32_t len, uint32_t *state, uint8_t *out, uint32_t cap)
{
	if (len > cap)
		return -XE_BAD_PARAM;
	memcpy(out, ip, len);
	*state = 1 + len;
	return (int)len;
}

static int fragment_ipv4(const uint8_t *ip, uint32_t len, uint32_t mtu, uint32_t *state, uint8_t *out,
                         uint32_t cap)
{
	if (len < 20)
		return -XE_MALFORMED_PACKET;
	uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4, tot = rd16(ip + 2);
	if (ihl < 20 || tot < ihl || tot > len)
		return -XE_MALFORMED_PACKET;
	uint32_t plen = tot - ihl;
	uint32_t done = *state ? *state - 1 : 0;
	if (*state && done >= plen)
		return 0;
	if (*state == 0 && tot <= mtu)
		return copy_whole(ip, tot, state, out, cap);
	uint16_t fo = rd16(ip + 6);
	if (fo & IP4_DF)
		return -XE_MTU_EXCEEDED;

	uint8_t opts[40];
	uint32_t hl = ihl;
	if (done > 0)
		hl = 20 + ipv4_copied_options(ip, ihl, opts);
	if (mtu < hl + 8)
		return -XE_MTU_EXCEEDED;
	uint32_t chunk = plen - done;
	bool last = chunk <= mtu - hl;
	if (!last)
		chunk = (mtu - hl) & ~7u;
	if (hl + chunk > cap)
		return -XE_BAD_PARAM;

	memcpy(out, ip, 20);
	if (done == 0)
		memcpy(out + 20, ip + 20, ihl - 20);
	else
		memcpy(out + 20, opts, hl - 20);
	memcpy(out + hl, ip + ihl + done, chunk);
	out[0] = (uint8_t)(0x40 | hl / 4);
	wr16(out + 2, hl + chunk);
	/* A packet that is itself a fragment keeps its place and its MF on the last piece. */
	uint32_t off = (fo & IP4_OFFMASK) + done / 8;
	bool mf = !last || (fo & IP4_MF);
	wr16(out + 6, (fo & 0x8000) | (mf ? IP4_MF : 0) | off);
	ipv4_set_csum(out);
	*state = 1 + done + chunk;
	return (int)(hl + chunk);
}

/* Our outer packets carry no extension headers: the unfragmentable part is the fixed header. */
static int fragment_ipv6(const uint8_t *ip, uint32_t len, uint32_t mtu, uint32_t ident, uint32_t *state,
                         uint8_t *out, uint32_t cap)
{
	if (len < 40 || ip[0] >> 4 != 6)
		return -XE_MALFORMED_PACKET;
	uint32_t tot = 40u + rd16(ip + 4);
	if (tot > len)
		return -XE_MALFORMED_PACKET;
	uint32_t plen = tot - 40;
	uint32_t done = *state ? *state - 1 : 0;
	if (*state && done >= plen)
		return 0;
	if (*state == 0 && tot <= mtu)
		return copy_whole(ip, tot, state, out, cap);

	uint32_t hl = 40 + FRAG6_HLEN;
	if (mtu < hl + 8)
		return -XE_MTU_EXCEEDED;
	uint32_t chunk = plen - done;
	bool last = chunk <= mtu - hl;
	if (!last)
		chunk = (mtu - hl) & ~7u;
	if (hl + chunk > cap)
		return -XE_BAD_PARAM;

	memcpy(out, ip, 40);
	wr16(out + 4, FRAG6_HLEN + chunk);
	out[6] = NH_FRAGMENT;
	uint8_t *fh = out + 40;
	fh[0] = ip[6];
	fh[1] = 0;
	wr16(fh + 2, done | (last ? 0 : 1));
	wr16(fh + 4, ident >> 16);
	wr16(fh + 6, ident & 0xffff);
	memcpy(out + hl, ip + 40 + done, chunk);
	*state = 1 + done + chunk;
	return (int)(hl + chunk);
}

int ip_fragment_next(const uint8_t *ip, uint32_t len, uint32_t mtu, uint32_t ident, uint32_t *state,
                     uint8_t *out, uint32_t cap)
{
	if (len < 1)
		return -XE_MALFORMED_PACKET;
	if (ip[0] >> 4 == 4)
		return fragment_ipv4(ip, len, mtu, state, out, cap);
	if (ip[0] >> 4 == 6)
		return fragment_ipv6(ip, len, mtu, ident, state, out, cap);
	return -XE_MALFORMED_PACKET;
}
