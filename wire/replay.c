/* replay.c: the RFC 4303 anti-replay window (ring bitmap) with ESN high-bit inference (appendix A2.2). */
#include <string.h>

#include "sa.h"
#include "wire.h"

#define RING_MASK ((uint64_t)REPLAY_MAX - 1)

/*
 * With the check off there is no window to infer the high bits from, yet an
 * ESN receiver still needs them for the ICV: assume packets are never more
 * than this many late.
 */
#define ESN_GUESS_WINDOW REPLAY_MAX

void replay_init(struct replay *r, uint32_t size)
{
	memset(r, 0, sizeof(*r));
	r->size = size > REPLAY_MAX ? REPLAY_MAX : size;
}

static bool bit_test(const struct replay *r, uint64_t seq)
{
	uint64_t pos = seq & RING_MASK;

	return (r->bits[pos >> 6] >> (pos & 63)) & 1;
}

static void bit_set(struct replay *r, uint64_t seq)
{
	uint64_t pos = seq & RING_MASK;

	r->bits[pos >> 6] |= 1ull << (pos & 63);
}

/*
 * Forget n sequence numbers starting at from: they enter the window as the
 * top moves and must read as unseen. Word at a time, so a jump costs at
 * most REPLAY_MAX/64 stores.
 */
static void clear_range(struct replay *r, uint64_t from, uint64_t n)
{
	if (n >= REPLAY_MAX) {
		memset(r->bits, 0, sizeof(r->bits));
		return;
	}
	while (n > 0) {
		uint64_t pos = from & RING_MASK;
		uint32_t off = (uint32_t)(pos & 63);
		uint64_t take = 64 - off < n ? 64 - off : n;
		uint64_t mask = take == 64 ? ~0ull : ((1ull << take) - 1) << off;

		r->bits[pos >> 6] &= ~mask;
		from += take;
		n -= take;
	}
}

/*
 * RFC 4303 A2.2: pick the high half that puts seql in or above the window.
 * Returns false when the only candidate lies before sequence number 0.
 */
static bool esn_infer(const struct replay *r, uint32_t seql, uint64_t *full)
{
	uint32_t w = r->size ? r->size : ESN_GUESS_WINDOW;
	uint32_t tl = (uint32_t)r->top, th = (uint32_t)(r->top >> 32);
	uint32_t bottom = tl - w + 1;  /* mod 2^32 on purpose in case B */
	uint64_t seqh;

	if (tl >= w - 1)
		seqh = seql >= bottom ? th : (uint64_t)th + 1;
	else if (seql >= bottom) {
		if (th == 0)
			return false;
		seqh = th - 1;
	} else
		seqh = th;
	if (seqh > UINT32_MAX)
		return false;  /* the 64-bit space is used up */
	*full = seqh << 32 | seql;
	return true;
}

int replay_check(const struct replay *r, uint32_t seq, bool esn, uint64_t *full)
{
	uint64_t s = seq;

	if (esn && !esn_infer(r, seq, &s))
		return -XE_BAD_SEQUENCE_NUMBER;
	*full = s;
	/* 0 is never sent: the first packet carries 1 and a 32-bit counter never wraps. */
	if (s == 0)
		return -XE_BAD_SEQUENCE_NUMBER;
	if (r->size == 0 || s > r->top)
		return 0;
	if (r->top - s >= r->size)
		return -XE_BAD_SEQUENCE_NUMBER;  /* left of the window */
	return bit_test(r, s) ? -XE_BAD_SEQUENCE_NUMBER : 0;
}

void replay_update(struct replay *r, uint64_t full)
{
	if (full > r->top) {
		if (r->size)
			clear_range(r, r->top + 1, full - r->top);
		r->top = full;
	}
	if (r->size)
		bit_set(r, full);
}
