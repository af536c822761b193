/* flowcache.c: a per-thread, 2-way set-associative cache of SPD lookup results keyed by the flow. */
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "spd.h"

/*
 * One thread owns a cache, so there are no locks. An entry is valid only
 * for the spd generation it was filled from: generations are never reused,
 * so a stale entry (whose policy pointer may point into a freed spd) is
 * never returned, and a new spd needs no flush.
 */

struct flow_key {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint8_t dir, family, proto;
	uint8_t has_l4;   /* a non-first fragment has no ports: a different flow */
};

struct flow_ent {
	struct flow_key key;
	uint64_t gen;                    /* 0 = empty */
	const struct spd_policy *pol;    /* NULL = no policy matched */
};

struct flow_cache {
	uint32_t mask;                   /* sets - 1 */
	_Atomic uint64_t hits, misses;   /* written by the owner only: no locked add */
	struct flow_ent (*set)[2];       /* [0] most recently filled */
};

struct flow_cache *flow_cache_new(uint32_t entries)
{
	struct flow_cache *fc;
	uint32_t sets = entries / 2;

	if (sets < 1 || (sets & (sets - 1)))
		return NULL;
	fc = calloc(1, sizeof(*fc));
	if (!fc)
		return NULL;
	fc->set = calloc(sets, sizeof(*fc->set));
	if (!fc->set) {
		free(fc);
		return NULL;
	}
	fc->mask = sets - 1;
	return fc;
}

void flow_cache_free(struct flow_cache *fc)
{
	if (!fc)
		return;
	free(fc->set);
	free(fc);
}

static void key_make(struct flow_key *k, int dir, const struct pkt_info *pi)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->src, pi->src.a, 16);
	memcpy(k->dst, pi->dst.a, 16);
	k->has_l4 = pi->l4_off != 0;
	if (k->has_l4) {
		k->sport = pi->sport;
		k->dport = pi->dport;
	}
	k->dir = (uint8_t)dir;
	k->family = pi->family;
	k->proto = pi->proto;
}

/* FNV-1a over the key's 64-bit words, then a final mix (murmur3's fmix64). */
static uint64_t key_hash(const struct flow_key *k)
{
	uint64_t w[sizeof(*k) / 8 + 1] = { 0 };
	uint64_t h = 0xcbf29ce484222325ull;

	memcpy(w, k, sizeof(*k));
	for (size_t i = 0; i < sizeof(w) / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

void flow_cache_stats(const struct flow_cache *fc, uint64_t *hits, uint64_t *misses)
{
	*hits = fc ? atomic_load_explicit(&fc->hits, memory_order_relaxed) : 0;
	*misses = fc ? atomic_load_explicit(&fc->misses, memory_order_relaxed) : 0;
}

const struct spd_policy *flow_cache_lookup(struct flow_cache *fc, const struct spd *spd, int dir,
                                           const struct pkt_info *pi)
{
	struct flow_key k;
	struct flow_ent *set;
	uint64_t gen = spd_generation(spd);

	if (!fc || !spd)
		return spd_lookup(spd, dir, pi);
	key_make(&k, dir, pi);
	set = fc->set[key_hash(&k) & fc->mask];
	for (int w = 0; w < 2; w++)
		if (set[w].gen == gen && !memcmp(&set[w].key, &k, sizeof(k))) {
			stat_inc(&fc->hits);
			return set[w].pol;
		}
	stat_inc(&fc->misses);
	set[1] = set[0];
	set[0].key = k;
	set[0].gen = gen;
	set[0].pol = spd_lookup(spd, dir, pi);
	return set[0].pol;
}
