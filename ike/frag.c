/* ike/frag.c: RFC 7383 IKE fragmentation: splitting a message into SKF datagrams and bounded reassembly. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "msg.h"
#include "wire/wire.h"

#define SKF_HDR 8        /* generic header + Fragment Number + Total Fragments */
#define PAD_SLACK 320    /* most a fragment's ciphertext exceeds its plaintext by: IV, ICV, up to 255 bytes padding */

static void put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The most inner-payload bytes one fragment of at most max_msg bytes can carry (0: none fit). */
static size_t frag_room(const struct ike_sk *sk, size_t max_msg)
{
	size_t fixed = IKE_HDR_LEN + SKF_HDR;

	if (max_msg <= fixed + ike_sk_overhead(sk, 0))
		return 0;
	/* Overhead grows by at most a cipher block as the size drops, so this walks a few steps at most. */
	for (size_t p = max_msg - fixed; p > 0; p--)
		if (fixed + p + ike_sk_overhead(sk, p) <= max_msg)
			return p;
	return 0;
}

int ike_frag_split(struct ike_sk *sk, const uint8_t *hdr, uint8_t first, const uint8_t *inner, size_t inner_len,
	size_t max_msg, uint8_t *out, size_t cap, size_t *frag_len, size_t max_frags)
{
	size_t room = frag_room(sk, max_msg > 0xffff ? 0xffff : max_msg), used = 0;

	if (room == 0)
		return -IKE_E_BAD_PARAM;
	size_t total = inner_len ? (inner_len + room - 1) / room : 1;
	if (total > max_frags || total > IKE_FRAG_MAX)
		return -IKE_E_TOO_MANY;
	for (size_t i = 0; i < total; i++) {
		size_t off = i * room, n = inner_len - off < room ? inner_len - off : room;
		uint8_t *msg = out + used;

		if (cap - used < IKE_HDR_LEN + SKF_HDR)
			return -IKE_E_NOSPACE;
		memcpy(msg, hdr, IKE_HDR_LEN);
		msg[16] = IKE_PL_SKF;
		msg[IKE_HDR_LEN] = i == 0 ? first : IKE_PL_NONE;   /* RFC 7383 2.5: only fragment 1 names it */
		msg[IKE_HDR_LEN + 1] = 0;
		put16(msg + IKE_HDR_LEN + 4, i + 1);
		put16(msg + IKE_HDR_LEN + 6, total);
		int len = ike_skf_encrypt(sk, msg, cap - used, IKE_HDR_LEN, inner + off, n);
		if (len < 0)
			return len == -XE_BAD_PARAM ? -IKE_E_NOSPACE : -IKE_E_BAD_PARAM;
		frag_len[i] = (size_t)len;
		used += (size_t)len;
	}
	return (int)total;
}

struct ike_defrag {
	size_t max_frags, max_total, alloc;
	uint64_t timeout_ms, started_ms;
	bool active;
	uint8_t first;
	uint32_t msg_id;
	uint16_t total, have;
	size_t used;                       /* bytes of buf holding fragments' plaintext, in arrival order */
	uint32_t off[IKE_FRAG_MAX + 1], len[IKE_FRAG_MAX + 1];   /* by fragment number; len 0 = not yet */
	bool got[IKE_FRAG_MAX + 1];
	uint8_t *buf;
};

int ike_defrag_new(size_t max_frags, size_t max_total, uint64_t timeout_ms, struct ike_defrag **out)
{
	struct ike_defrag *d;

	*out = NULL;
	if (max_frags == 0 || max_frags > IKE_FRAG_MAX || max_total == 0 || max_total > (1u << 24))
		return -IKE_E_BAD_PARAM;
	d = calloc(1, sizeof *d);
	if (!d)
		return -IKE_E_NOSPACE;
	d->max_frags = max_frags;
	d->max_total = max_total;
	d->alloc = max_total + PAD_SLACK;
	d->timeout_ms = timeout_ms;
	d->buf = malloc(d->alloc);
	if (!d->buf) {
		free(d);
		return -IKE_E_NOSPACE;
	}
	*out = d;
	return 0;
}

void ike_defrag_reset(struct ike_defrag *d)
{
	/* What was collected is decrypted IKE_AUTH content: wipe it. */
	OPENSSL_cleanse(d->buf, d->used);
	d->active = false;
	d->used = 0;
	d->total = d->have = 0;
	memset(d->got, 0, sizeof d->got);
}

void ike_defrag_free(struct ike_defrag *d)
{
	if (!d)
		return;
	OPENSSL_clear_free(d->buf, d->alloc);
	free(d);
}

uint64_t ike_defrag_deadline(const struct ike_defrag *d)
{
	return d->active ? d->started_ms + d->timeout_ms : UINT64_MAX;
}

static void defrag_start(struct ike_defrag *d, uint32_t msg_id, uint16_t total, uint64_t now_ms)
{
	ike_defrag_reset(d);
	d->active = true;
	d->msg_id = msg_id;
	d->total = total;
	d->started_ms = now_ms;
}

/* Copies the fragments in order to out and resets; the message's inner payloads length or -IKE_E_NOSPACE. */
static int defrag_finish(struct ike_defrag *d, uint8_t *out, size_t cap, uint8_t *first)
{
	size_t n = 0;
	int rc;

	for (unsigned i = 1; i <= d->total; i++)
		n += d->len[i];
	if (n > cap || n > INT32_MAX) {
		rc = -IKE_E_NOSPACE;
	} else {
		n = 0;
		for (unsigned i = 1; i <= d->total; i++) {
			memcpy(out + n, d->buf + d->off[i], d->len[i]);
			n += d->len[i];
		}
		*first = d->first;
		rc = (int)n;
	}
	ike_defrag_reset(d);
	return rc;
}

int ike_defrag_add(struct ike_defrag *d, struct ike_sk *sk, const uint8_t *msg, size_t len, uint64_t now_ms,
	uint8_t *out, size_t cap, uint8_t *first)
{
	struct ike_msg m;
	const struct ike_payload *pl;
	int rc = ike_msg_decode(&m, msg, len);

	if (rc < 0)
		return rc;
	if (m.n_payloads == 0 || (pl = &m.payloads[m.n_payloads - 1])->type != IKE_PL_SKF)
		return -IKE_E_INVALID_SYNTAX;
	uint16_t num = pl->u.sk.frag_num, total = pl->u.sk.frag_total;
	if (total > d->max_frags)
		return -IKE_E_TOO_MANY;
	if (d->active && now_ms - d->started_ms > d->timeout_ms)
		ike_defrag_reset(d);
	bool same = d->active && d->msg_id == m.msg_id;
	if (same && (total < d->total || d->got[num]))
		return 0;   /* a stale fragment of a larger size, or a duplicate (a retransmission) */

	if (!same && d->active)
		ike_defrag_reset(d);   /* the caller moved on to another message ID */

	/* Decrypt behind what is stored, so a forged fragment changes nothing. */
	size_t start = d->used;
	if (len - pl->off - SKF_HDR > d->alloc - start)
		return -IKE_E_TOO_MANY;
	rc = ike_skf_decrypt(sk, msg, len, pl->off, d->buf + start, d->alloc - start);
	if (rc < 0)
		return rc;
	bool restart = !same || total > d->total;
	if ((size_t)rc > d->max_total - (restart ? 0 : d->used)) {
		OPENSSL_cleanse(d->buf + start, (size_t)rc);
		return -IKE_E_TOO_MANY;
	}
	if (restart) {
		/* A new message, or the sender re-fragmented smaller (RFC 7383 2.6.2): start over with this one. */
		OPENSSL_cleanse(d->buf, start);
		memmove(d->buf, d->buf + start, (size_t)rc);
		d->used = 0;
		defrag_start(d, m.msg_id, total, now_ms);
		start = 0;
	}
	d->off[num] = (uint32_t)start;
	d->len[num] = (uint32_t)rc;
	d->got[num] = true;
	d->used = start + (size_t)rc;
	d->have++;
	if (num == 1)
		d->first = pl->u.sk.next_inner;
	return d->have == d->total ? defrag_finish(d, out, cap, first) : 0;
}
