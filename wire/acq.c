/* acq.c: which slot of a data thread's acquire queue a frame waiting for an SA may take, shared fairly by its waiters. */
#include <string.h>

#include "wire_int.h"

/* The waiters of a full queue, counted in one pass: open addressing over twice the slots. */
struct waiter {
	uint64_t key;      /* 0: empty */
	uint32_t count;
	uint32_t oldest;   /* its slot with the smallest since_ms */
};

static struct waiter *waiter_of(struct waiter *t, uint64_t key)
{
	uint32_t h = (uint32_t)(key ^ key >> 32) & (2 * ACQ_SLOTS - 1);

	while (t[h].key && t[h].key != key)
		h = (h + 1) & (2 * ACQ_SLOTS - 1);
	t[h].key = key;
	return &t[h];
}

/*
 * A full queue: the waiter holding the most frames gives up its oldest
 * when it holds at least two more than the newcomer (so two waiters
 * never trade one frame back and forth). Max-min fair in ACQ_SLOTS frames.
 */
static int evict_for(const struct acq_slot *q, uint32_t own)
{
	struct waiter t[2 * ACQ_SLOTS], *top = NULL;

	memset(t, 0, sizeof t);
	for (uint32_t i = 0; i < ACQ_SLOTS; i++) {
		struct waiter *w = waiter_of(t, q[i].key);

		if (!w->count++ || q[i].since_ms < q[w->oldest].since_ms)
			w->oldest = i;
		if (!top || w->count > top->count)
			top = w;
	}
	return top->count > own + 1 ? (int)top->oldest : -1;
}

int acq_admit(const struct acq_slot *q, uint64_t key, uint32_t per_waiter)
{
	uint32_t own = 0, free_slot = ACQ_SLOTS;

	for (uint32_t i = 0; i < ACQ_SLOTS; i++) {
		if (q[i].key == key)
			own++;
		else if (!q[i].key && free_slot == ACQ_SLOTS)
			free_slot = i;
	}
	if (own >= per_waiter)
		return -1;
	if (free_slot < ACQ_SLOTS)
		return (int)free_slot;
	return evict_for(q, own);
}
