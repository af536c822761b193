/* clone.c: clone policies' outbound SAs by (policy, host), built once per snapshot and only read afterwards; their inbound check. */
#include <stdlib.h>
#include <string.h>

#include "sa.h"

struct clone_index {
	uint32_t mask;  /* slots - 1; slots is a power of two at least twice the SAs */
	struct clone_slot {
		uint32_t policy_id;
		struct bw_addr host;
		struct sa *sa;  /* the host's SA; an ahesp policy's ESP SA */
		struct sa *ah;  /* an ahesp policy's AH SA; both NULL: empty */
	} slot[];
};

uint64_t clone_key_hash(uint32_t policy_id, const struct bw_addr *host)
{
	return bw_addr_hash(host, 0xcbf29ce484222325ull ^ policy_id);
}

static bool slot_is(const struct clone_slot *s, uint32_t policy_id, const struct bw_addr *host)
{
	return s->policy_id == policy_id && s->host.family == host->family && !memcmp(s->host.a, host->a, 16);
}

/* The host's slot, a free one if it has none yet. */
static struct clone_slot *slot_for(struct clone_index *ci, const struct sa_conf *c)
{
	uint32_t h = (uint32_t)clone_key_hash(c->policy_id, &c->clone_host) & ci->mask;

	while ((ci->slot[h].sa != NULL || ci->slot[h].ah != NULL) && !slot_is(&ci->slot[h], c->policy_id, &c->clone_host))
		h = (h + 1) & ci->mask;
	ci->slot[h].policy_id = c->policy_id;
	ci->slot[h].host = c->clone_host;
	return &ci->slot[h];
}

struct clone_index *clone_index_build(struct sa *const *out_sas, uint32_t n, struct sa *const *ah_sas, uint32_t nah)
{
	uint32_t slots = 4;
	struct clone_index *ci;

	while (slots < 2ull * ((uint64_t)n + nah))
		slots <<= 1;
	ci = calloc(1, sizeof(*ci) + (size_t)slots * sizeof(ci->slot[0]));
	if (ci == NULL)
		return NULL;
	ci->mask = slots - 1;
	/* The same host twice: the later SA (the newer, make-before-break) wins. */
	for (uint32_t i = 0; i < n; i++)
		if (out_sas[i]->conf.clone_host.family)
			slot_for(ci, &out_sas[i]->conf)->sa = out_sas[i];
	for (uint32_t i = 0; i < nah; i++)
		if (ah_sas[i]->conf.clone_host.family)
			slot_for(ci, &ah_sas[i]->conf)->ah = ah_sas[i];
	return ci;
}

void clone_index_free(struct clone_index *ci)
{
	free(ci);
}

struct sa *clone_index_lookup(const struct clone_index *ci, uint32_t policy_id, const struct bw_addr *host,
                              struct sa **ah)
{
	uint32_t h = (uint32_t)clone_key_hash(policy_id, host) & ci->mask;

	for (;;) {
		const struct clone_slot *s = &ci->slot[h];

		if ((s->sa == NULL && s->ah == NULL) || slot_is(s, policy_id, host)) {
			*ah = s->ah;
			return s->sa;
		}
		h = (h + 1) & ci->mask;
	}
}

struct sa *clone_index_next(const struct clone_index *ci, uint32_t *pos)
{
	while (*pos <= ci->mask) {
		struct sa *sa = ci->slot[(*pos)++].sa;

		if (sa)
			return sa;
	}
	return NULL;
}

const struct bw_addr *clone_value(uint8_t clone, int dir, const struct pkt_info *pi)
{
	if (clone == CLONE_NONE)
		return NULL;
	/* Selectors speak outbound; inbound packets travel the mirror image. */
	if (dir == DIR_IN)
		return clone == CLONE_SRC ? &pi->dst : &pi->src;
	return clone == CLONE_SRC ? &pi->src : &pi->dst;
}

bool clone_inbound_ok(uint8_t clone, const struct bw_addr *sa_host, const struct pkt_info *inner)
{
	const struct bw_addr *host = clone_value(clone, DIR_IN, inner);

	if (!host)
		return !sa_host->family;
	return bw_addr_eq(host, sa_host);
}
