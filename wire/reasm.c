/* reasm.c: bounded reassembly of IPv4/IPv6 fragments addressed to the wire, no overlaps (RFC 5722). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ip.h"
#include "wire.h"

/* Room before the payload for the unfragmentable part (v4 header with options, v6 header chain). */
#define HDR_ROOM 256u
#define BLOCKS (PKT_MAX / 8 + 1)

struct reasm_slot {
	bool used;
	bool have_last;
	uint8_t family;
	uint8_t proto;
	uint32_t id;
	struct bw_addr src, dst;
	uint64_t born_ms;
	uint32_t total;     /* payload length, known once the last fragment arrived */
	uint32_t received;  /* payload bytes held */
	uint32_t max_end;   /* highest payload byte held + 1 */
	uint32_t hdr_len;   /* unfragmentable part, from the offset-0 fragment; 0 until it arrived */
	uint32_t nh_at;     /* v6: where in the header the Next Header that named the fragment header is */
	uint8_t *buf;       /* HDR_ROOM + PKT_MAX */
	uint8_t have[BLOCKS / 8 + 1]; /* which 8-byte payload blocks are held */
};

struct reasm {
	struct reasm_slot *slots;
	uint32_t nslots;
	uint32_t timeout_ms;
	uint8_t *mem;
};

/* What one fragment says about itself. */
struct frag_desc {
	uint32_t id;
	uint32_t off;       /* payload offset in bytes */
	uint32_t hdr_len;   /* unfragmentable part */
	uint32_t nh_at;
	uint8_t proto;      /* v4: protocol field; v6: next header from the fragment header */
	bool more;
	const uint8_t *data;
	uint32_t dlen;
};

struct reasm *reasm_new(uint32_t mem_max, uint32_t timeout_ms)
{
	size_t per = sizeof(struct reasm_slot) + HDR_ROOM + PKT_MAX;
	size_t n = mem_max / per;
	if (n == 0)
		n = 1; /* one datagram at a time is the least that works */
	struct reasm *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->slots = calloc(n, sizeof(*r->slots));
	r->mem = malloc(n * (HDR_ROOM + PKT_MAX));
	if (!r->slots || !r->mem) {
		reasm_free(r);
		return NULL;
	}
	r->nslots = (uint32_t)n;
	r->timeout_ms = timeout_ms;
	for (size_t i = 0; i < n; i++)
		r->slots[i].buf = r->mem + i * (HDR_ROOM + PKT_MAX);
	return r;
}

void reasm_free(struct reasm *r)
{
	if (!r)
		return;
	if (r->mem)
		OPENSSL_cleanse(r->mem, (size_t)r->nslots * (HDR_ROOM + PKT_MAX)); /* may hold decrypted-bound data */
	free(r->mem);
	free(r->slots);
	free(r);
}

static void slot_reset(struct reasm_slot *s)
{
	uint8_t *buf = s->buf;
	memset(s, 0, sizeof(*s));
	s->buf = buf;
}

uint32_t reasm_expire(struct reasm *r, uint64_t now_ms)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->nslots; i++) {
		struct reasm_slot *s = &r->slots[i];
		if (s->used && now_ms - s->born_ms >= r->timeout_ms) {
			slot_reset(s);
			n++;
		}
	}
	return n;
}

static int describe_ipv4(const uint8_t *ip, uint32_t len, struct frag_desc *d)
{
	if (len < 20)
		return -XE_MALFORMED_PACKET;
	uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4, tot = rd16(ip + 2);
	if (ihl < 20 || tot < ihl || tot > len)
		return -XE_MALFORMED_PACKET;
	uint16_t fo = rd16(ip + 6);
	d->id = rd16(ip + 4);
	d->proto = ip[9];
	d->off = (uint32_t)(fo & 0x1fff) * 8;
	d->more = fo & 0x2000;
	d->hdr_len = ihl;
	d->data = ip + ihl;
	d->dlen = tot - ihl;
	return 0;
}

/* Find the fragment header after the unfragmentable part (hop-by-hop, routing, destination options). */
static int describe_ipv6(const uint8_t *ip, uint32_t len, struct frag_desc *d)
{
	if (len < 40)
		return -XE_MALFORMED_PACKET;
	uint32_t end = 40u + rd16(ip + 4);
	if (end > len)
		return -XE_MALFORMED_PACKET;
	struct ipv6_walk w;
	ipv6_walk_start(ip, &w);
	while (w.nh == NH_HOP || w.nh == NH_ROUTING || w.nh == NH_DSTOPTS)
		if (ipv6_walk_step(ip, end, &w) < 0)
			return -XE_MALFORMED_PACKET;
	uint32_t off = w.off;
	if (w.nh != NH_FRAGMENT || end - off < 8 || off > HDR_ROOM)
		return -XE_MALFORMED_PACKET;
	const uint8_t *fh = ip + off;
	uint16_t fo = rd16(fh + 2);
	d->proto = fh[0];
	d->off = fo & 0xfff8u;
	d->more = fo & 1;
	d->id = (uint32_t)rd16(fh + 4) << 16 | rd16(fh + 6);
	d->hdr_len = off;
	d->nh_at = w.nh_at;
	d->data = fh + 8;
	d->dlen = end - off - 8;
	return 0;
}

static struct reasm_slot *slot_find(struct reasm *r, const struct pkt_info *pi, const struct frag_desc *d,
                                    uint64_t now_ms)
{
	struct reasm_slot *free_slot = NULL;
	for (uint32_t i = 0; i < r->nslots; i++) {
		struct reasm_slot *s = &r->slots[i];
		if (s->used && now_ms - s->born_ms >= r->timeout_ms)
			slot_reset(s);
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (s->id == d->id && s->family == pi->family && s->proto == d->proto &&
		    bw_addr_eq(&s->src, &pi->src) && bw_addr_eq(&s->dst, &pi->dst))
			return s;
	}
	if (!free_slot)
		return NULL;
	free_slot->used = true;
	free_slot->family = pi->family;
	free_slot->proto = d->proto;
	free_slot->id = d->id;
	free_slot->src = pi->src;
	free_slot->dst = pi->dst;
	free_slot->born_ms = now_ms;
	return free_slot;
}

static bool block_held(const struct reasm_slot *s, uint32_t b)
{
	return s->have[b / 8] & (1u << (b % 8));
}

/*
 * Store one fragment's payload. 1: new data, 0: an exact duplicate, <0: the
 * datagram must go (overlap with different coverage or bytes, RFC 5722).
 */
static int slot_store(struct reasm_slot *s, const struct frag_desc *d)
{
	uint32_t b0 = d->off / 8, b1 = (d->off + d->dlen + 7) / 8;
	uint32_t held = 0;
	for (uint32_t b = b0; b < b1; b++)
		held += block_held(s, b);
	uint8_t *dst = s->buf + HDR_ROOM + d->off;
	if (held == b1 - b0 && memcmp(dst, d->data, d->dlen) == 0)
		return 0;
	if (held)
		return -XE_FRAG_FAILED;
	memcpy(dst, d->data, d->dlen);
	for (uint32_t b = b0; b < b1; b++)
		s->have[b / 8] |= (uint8_t)(1u << (b % 8));
	s->received += d->dlen;
	if (d->off + d->dlen > s->max_end)
		s->max_end = d->off + d->dlen;
	return 1;
}

/* Check what the fragment says about the datagram's end against what we know. */
static int slot_check_end(struct reasm_slot *s, const struct frag_desc *d)
{
	uint32_t end = d->off + d->dlen;
	if (d->more && d->dlen % 8)
		return -XE_MALFORMED_PACKET; /* only the last fragment may end off the 8-byte grid */
	uint32_t hdr = d->off == 0 || s->hdr_len == 0 ? d->hdr_len : s->hdr_len;
	uint32_t far = end > s->max_end ? end : s->max_end;
	if (hdr + far > PKT_MAX)
		return -XE_FRAG_FAILED;
	if (!d->more) {
		if ((s->have_last && s->total != end) || s->max_end > end)
			return -XE_FRAG_FAILED;
		s->have_last = true;
		s->total = end;
	} else if (s->have_last && end > s->total) {
		return -XE_FRAG_FAILED;
	}
	return 0;
}

/* Put the unfragmentable part in front of the payload and fix it up as one packet. */
static const uint8_t *slot_finish(struct reasm_slot *s, uint32_t *out_len)
{
	uint8_t *ip = s->buf + HDR_ROOM - s->hdr_len;
	if (s->family == 4) {
		wr16(ip + 2, s->hdr_len + s->total);
		wr16(ip + 6, rd16(ip + 6) & 0x4000); /* DF stays; MF and offset go */
		ipv4_set_csum(ip);
	} else {
		wr16(ip + 4, s->hdr_len - 40 + s->total);
		ip[s->nh_at] = s->proto;
	}
	*out_len = s->hdr_len + s->total;
	return ip;
}

int reasm_input(struct reasm *r, const uint8_t *ip, uint32_t len, const struct pkt_info *pi, uint64_t now_ms,
                const uint8_t **out, uint32_t *out_len)
{
	struct frag_desc d = { 0 };
	int rc = pi->family == 4 ? describe_ipv4(ip, len, &d)
	       : pi->family == 6 ? describe_ipv6(ip, len, &d) : -XE_MALFORMED_PACKET;
	if (rc < 0)
		return rc;
	if (pi->family == 4 && d.off == 0 && !d.more) {
		*out = ip; /* not a fragment at all */
		*out_len = d.hdr_len + d.dlen;
		return 1;
	}
	if (d.dlen == 0 && d.more)
		return -XE_MALFORMED_PACKET;
	struct reasm_slot *s = slot_find(r, pi, &d, now_ms);
	if (!s)
		return -XE_NOMEM;
	rc = slot_check_end(s, &d);
	if (rc == 0)
		rc = slot_store(s, &d);
	if (rc < 0) {
		slot_reset(s);
		return rc;
	}
	if (d.off == 0 && s->hdr_len == 0) {
		memcpy(s->buf + HDR_ROOM - d.hdr_len, ip, d.hdr_len);
		s->hdr_len = d.hdr_len;
		s->nh_at = d.nh_at;
	}
	if (!s->have_last || s->hdr_len == 0 || s->received != s->total)
		return 0;
	const uint8_t *done = slot_finish(s, out_len);
	slot_reset(s); /* the buffer stays as it is until this slot is used again, i.e. the next call */
	*out = done;
	return 1;
}
