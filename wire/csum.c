/* csum.c: the Internet checksum (RFC 1071) and the pieces of it the wire needs. */
#include <arpa/inet.h>
#include <string.h>

#include "pkt.h"

/*
 * Convention: every uint32_t "sum" here is a one's-complement sum of
 * big-endian 16-bit words, held as a host number. csum_fold() returns the
 * complemented 16-bit checksum as a host number: store it with htons().
 * Only the last piece given to csum_partial in a chain may have odd length.
 */

static uint32_t fold32(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffu) + (s >> 16);
	s = (s & 0xffffu) + (s >> 16);
	s = (s & 0xffffu) + (s >> 16);
	return (uint32_t)s;
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w;
}

/* a + b with the carry out added back in: one's-complement addition of 64-bit words. */
static inline uint64_t add_carry(uint64_t a, uint64_t b)
{
	a += b;
	return a + (a < b);
}

/*
 * One's-complement sum of the 32-byte blocks at p (len rounded down), as
 * 64-bit native-order words. On x86-64 one adc chain does it in 5
 * instructions a block; compilers do not produce that from C.
 */
static uint64_t sum_blocks(const uint8_t *p, size_t len, uint64_t a)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(CSUM_PORTABLE)
	for (; len >= 32; p += 32, len -= 32)
		__asm__("addq 0(%[p]), %[a]\n\t"
		        "adcq 8(%[p]), %[a]\n\t"
		        "adcq 16(%[p]), %[a]\n\t"
		        "adcq 24(%[p]), %[a]\n\t"
		        "adcq $0, %[a]"
		        : [a] "+r"(a)
		        : [p] "r"(p), "m"(*(const uint8_t(*)[32])p)
		        : "cc");
	return a;
#else
	uint64_t b = 0;
	for (; len >= 32; p += 32, len -= 32) {
		a = add_carry(a, load64(p));
		b = add_carry(b, load64(p + 8));
		a = add_carry(a, load64(p + 16));
		b = add_carry(b, load64(p + 24));
	}
	return add_carry(a, b);
#endif
}

uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;

	/*
	 * RFC 1071 byte-order independence: summing native-order words and
	 * swapping once at the end gives the big-endian sum, so the loop needs
	 * no per-word swaps.
	 */
	uint64_t a = sum_blocks(p, len, 0);
	p += len & ~(size_t)31;
	len &= 31;
	for (; len >= 8; p += 8, len -= 8)
		a = add_carry(a, load64(p));
	uint64_t acc = (a & 0xffffffffu) + (a >> 32);
	if (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		acc += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		acc += w;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t tail[2] = { p[0], 0 };
		uint16_t w;
		memcpy(&w, tail, 2);
		acc += w;
	}
	uint32_t native = fold32(acc);
	return fold32((uint64_t)ntohs((uint16_t)native) + sum);
}

uint16_t csum_fold(uint32_t sum)
{
	return (uint16_t)~fold32(sum);
}

uint32_t csum_pseudo(const struct bw_addr *src, const struct bw_addr *dst, uint8_t proto, uint32_t l4_len)
{
	size_t alen = src->family == 6 ? 16 : 4;
	uint32_t sum = csum_partial(src->a, alen, 0);
	sum = csum_partial(dst->a, alen, sum);
	return fold32((uint64_t)sum + proto + (l4_len >> 16) + (l4_len & 0xffff));
}

void ipv4_set_csum(uint8_t *ip)
{
	size_t hlen = (size_t)(ip[0] & 0x0f) * 4;
	ip[10] = ip[11] = 0;
	uint16_t c = htons(csum_fold(csum_partial(ip, hlen, 0)));
	memcpy(ip + 10, &c, 2);
}

/*
 * Linux CHECKSUM_PARTIAL leaves ~csum_tcpudp_magic(src, dst, len, proto, 0)
 * in the field, i.e. the folded, non-complemented pseudo-header sum. If the
 * field holds exactly that we finish the job. A complete checksum that
 * happens to equal it is recomputed to the same value, so the test is safe.
 */
void csum_complete_partial(uint8_t *frame, const struct pkt_info *pi)
{
	if ((pi->family != 4 && pi->family != 6) || pi->frag != PKT_FRAG_NONE || pi->l4_off == 0)
		return;
	uint32_t hdr_len = (uint32_t)(pi->l4_off - pi->l3_off);
	if (hdr_len > pi->ip_len)
		return;
	uint32_t l4_len = pi->ip_len - hdr_len;
	uint32_t field;
	if (pi->proto == IPPROTO_TCP_ && l4_len >= 20)
		field = 16;
	else if (pi->proto == IPPROTO_UDP_ && l4_len >= 8)
		field = 6;
	else
		return;

	uint8_t *l4 = frame + pi->l4_off;
	uint16_t cur;
	memcpy(&cur, l4 + field, 2);
	cur = ntohs(cur);
	if (pi->proto == IPPROTO_UDP_ && pi->family == 4 && cur == 0)
		return; /* UDP over IPv4 without a checksum */
	uint32_t pseudo = csum_pseudo(&pi->src, &pi->dst, pi->proto, l4_len);
	if (cur != (uint16_t)fold32(pseudo))
		return;

	l4[field] = l4[field + 1] = 0;
	uint16_t c = csum_fold(csum_partial(l4, l4_len, pseudo));
	if (pi->proto == IPPROTO_UDP_ && c == 0)
		c = 0xffff;
	c = htons(c);
	memcpy(l4 + field, &c, 2);
}
