/* index.c: hash indexes over the IKE SAs (our SPI, a responder SA's initiator SPI, the peer's identity), so a
 * message finds its SA without walking them all. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/*
 * The keys come from the network (the initiator's SPI, its identity): the
 * hashes are keyed with a secret drawn when the first SA is indexed, so a peer
 * cannot aim its SPIs at one bucket.
 */
static uint64_t mix(uint64_t x, const uint64_t key[2])
{
	x = (x ^ key[0]) * (key[1] | 1);
	return x ^ (x >> 29);
}

static uint64_t spi_hash(const uint8_t spi[IKE_SPI_LEN], const uint64_t key[2])
{
	uint64_t x;

	memcpy(&x, spi, sizeof x);
	return mix(x, key);
}

static uint64_t ident_hash(const struct ike_ident *id, const uint64_t key[2])
{
	uint64_t h = key[0] ^ ((uint64_t)id->type << 56) ^ id->len;

	for (size_t i = 0; i < id->len; i++)
		h = (h ^ id->data[i]) * 0x100000001b3ull;
	return mix(h, key);
}

static bool spi_zero(const uint8_t spi[IKE_SPI_LEN])
{
	static const uint8_t zero[IKE_SPI_LEN];

	return !memcmp(spi, zero, IKE_SPI_LEN);
}

/* Doubles the buckets when the table holds more SAs than it has buckets. */
static void tab_grow(struct ike_sa_tab *t, enum ike_sa_idx which)
{
	size_t nb = t->mask ? (t->mask + 1) * 2 : 64;
	struct ike_sa **b;

	if (t->mask && t->n <= t->mask + 1)
		return;
	b = calloc(nb, sizeof *b);
	if (!b)
		return;  /* the old buckets still work, just longer chains */
	for (size_t i = 0; t->mask && i <= t->mask; i++) {
		for (struct ike_sa *sa = t->b[i], *next; sa; sa = next) {
			next = sa->idx_next[which];
			sa->idx_next[which] = b[sa->idx_hash[which] & (nb - 1)];
			b[sa->idx_hash[which] & (nb - 1)] = sa;
		}
	}
	free(t->b);
	t->b = b;
	t->mask = nb - 1;
}

static void tab_add(struct ike_sa_tab *t, enum ike_sa_idx which, struct ike_sa *sa, uint64_t h)
{
	struct ike_sa **head;

	t->n++;
	tab_grow(t, which);
	if (!t->b) {
		t->n--;
		return;
	}
	head = &t->b[h & t->mask];
	sa->idx_hash[which] = h;
	sa->idx_next[which] = *head;
	*head = sa;
	sa->idx_in |= (uint8_t)(1u << which);
}

static void tab_del(struct ike_sa_tab *t, enum ike_sa_idx which, struct ike_sa *sa)
{
	if (!(sa->idx_in & (1u << which)))
		return;
	for (struct ike_sa **pp = &t->b[sa->idx_hash[which] & t->mask]; *pp; pp = &(*pp)->idx_next[which]) {
		if (*pp == sa) {
			*pp = sa->idx_next[which];
			break;
		}
	}
	sa->idx_next[which] = NULL;
	sa->idx_in &= (uint8_t)~(1u << which);
	t->n--;
}

void ike_sa_unindex(struct ike_engine *e, struct ike_sa *sa)
{
	for (int i = 0; i < IKE_IDX_N; i++)
		tab_del(&e->idx[i], (enum ike_sa_idx)i, sa);
	if (sa->idx_unauth) {
		sa->idx_unauth = false;
		e->n_unauth_initiators--;
	}
}

void ike_sa_index(struct ike_engine *e, struct ike_sa *sa)
{
	const uint8_t *ours = sa->initiator ? sa->spi_i : sa->spi_r;

	if (!e->idx_key[1])
		ike_random(e, (uint8_t *)e->idx_key, sizeof e->idx_key);
	if (!e->idx_key[1])
		e->idx_key[1] = 0x9e3779b97f4a7c15ull;
	ike_sa_unindex(e, sa);
	if (!spi_zero(ours))
		tab_add(&e->idx[IKE_IDX_OURS], IKE_IDX_OURS, sa, spi_hash(ours, e->idx_key));
	if (!sa->initiator && !spi_zero(sa->spi_i))
		tab_add(&e->idx[IKE_IDX_SPI_I], IKE_IDX_SPI_I, sa, spi_hash(sa->spi_i, e->idx_key));
	if (sa->remote_ident.len)
		tab_add(&e->idx[IKE_IDX_IDENT], IKE_IDX_IDENT, sa, ident_hash(&sa->remote_ident, e->idx_key));
	else if (sa->initiator) {
		sa->idx_unauth = true;
		e->n_unauth_initiators++;
	}
}

void ike_index_free(struct ike_engine *e)
{
	for (int i = 0; i < IKE_IDX_N; i++) {
		free(e->idx[i].b);
		memset(&e->idx[i], 0, sizeof e->idx[i]);
	}
}

struct ike_sa *ike_sa_by_our_spi(struct ike_engine *e, const uint8_t *spi)
{
	const struct ike_sa_tab *t = &e->idx[IKE_IDX_OURS];

	if (!t->b)
		return NULL;
	for (struct ike_sa *sa = t->b[spi_hash(spi, e->idx_key) & t->mask]; sa; sa = sa->idx_next[IKE_IDX_OURS])
		if (!memcmp(sa->initiator ? sa->spi_i : sa->spi_r, spi, IKE_SPI_LEN))
			return sa;
	return NULL;
}

struct ike_sa *ike_sa_chain_spi_i(struct ike_engine *e, const uint8_t *spi_i)
{
	const struct ike_sa_tab *t = &e->idx[IKE_IDX_SPI_I];

	return t->b ? t->b[spi_hash(spi_i, e->idx_key) & t->mask] : NULL;
}

struct ike_sa *ike_sa_chain_ident(struct ike_engine *e, const struct ike_ident *id)
{
	const struct ike_sa_tab *t = &e->idx[IKE_IDX_IDENT];

	return t->b && id->len ? t->b[ident_hash(id, e->idx_key) & t->mask] : NULL;
}
