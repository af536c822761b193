/* spd.h: the compiled Security Policy Database and its per-thread flow cache. */
#ifndef BITW_SPD_H
#define BITW_SPD_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"

/* Counters of one policy; each direction's thread writes only its own half. */
struct pol_stats {
	_Atomic uint64_t packets[2], bytes[2];  /* [0] outbound, [1] inbound */
	_Atomic uint64_t drops[2];
};

struct spd_policy {
	struct policy_conf conf;
	uint32_t index;              /* position in evaluation order */
	struct pol_stats *stats;     /* owned by the caller of spd_build, survives rebuilds */
};

/* Immutable once built: shared by the threads through a snapshot pointer. */
struct spd;

/*
 * Compile policies (any order) into evaluation order: priority 1 first, then
 * `order`. stats[i] belongs to conf[i] (may be NULL). Returns NULL and fills
 * err on a bad policy set.
 */
struct spd *spd_build(const struct policy_conf *conf, struct pol_stats *const *stats, uint32_t n,
                      char *err, size_t errlen);
void spd_free(struct spd *spd);
uint32_t spd_count(const struct spd *spd);
const struct spd_policy *spd_at(const struct spd *spd, uint32_t i);   /* evaluation order */
const struct spd_policy *spd_by_id(const struct spd *spd, uint32_t id);
/*
 * addr is the host of a protect policy in transport mode (its single src
 * address): bitw verifies ESP/AH and answers IKE on its behalf. O(1): the
 * hosts are put in a table when the SPD is built.
 */
bool spd_transport_host(const struct spd *spd, const struct bw_addr *addr);
/* Unique per built spd (never reused), so caches can tell an old spd from a new one at the same address. */
uint64_t spd_generation(const struct spd *spd);

/* Does the packet match the selector? dir DIR_IN mirrors src/dst. */
bool selector_match(const struct selector *s, int dir, const struct pkt_info *pi);

/*
 * First policy in evaluation order whose direction includes dir and whose
 * selector matches, or NULL. Must stay fast with thousands of policies.
 */
const struct spd_policy *spd_lookup(const struct spd *spd, int dir, const struct pkt_info *pi);

/*
 * A flow cache in front of spd_lookup, private to one thread (no locks).
 * Entries are tied to the spd they came from; a new spd invalidates them.
 */
struct flow_cache;
struct flow_cache *flow_cache_new(uint32_t entries);   /* power of two */
void flow_cache_free(struct flow_cache *fc);
const struct spd_policy *flow_cache_lookup(struct flow_cache *fc, const struct spd *spd, int dir,
                                           const struct pkt_info *pi);
/* Hits and misses so far; safe to read from another thread (single writer). */
void flow_cache_stats(const struct flow_cache *fc, uint64_t *hits, uint64_t *misses);

#endif
