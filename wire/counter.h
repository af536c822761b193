/* counter.h: statistics counters written by one thread each (a data thread) and read by others. */
#ifndef BITW_COUNTER_H
#define BITW_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

/* One writer: a relaxed load and store replace a locked add, and readers still see whole values. */
static inline uint64_t stat_add(_Atomic uint64_t *c, uint64_t v)
{
	uint64_t n = atomic_load_explicit(c, memory_order_relaxed) + v;

	atomic_store_explicit(c, n, memory_order_relaxed);
	return n;
}

static inline void stat_inc(_Atomic uint64_t *c)
{
	stat_add(c, 1);
}

#endif
