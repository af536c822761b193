/* index.c: hash indexes over the IKE SAs (our SPI, a responder SA's initiator SPI, the peer's identity), so a
 * message finds its SA without walking them all. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "engine.h"

/*
 * The keys come from the network (the initiator's SPI, its identity), so the
 * hash is a PRF: SipHash-2-4 under a key drawn when the engine is made. A
 * peer that cannot compute it cannot aim its SPIs at one bucket. The MAC
 * context is keyed once; each hash only re-initialises it (nothing allocated).
 */
int ike_index_init(struct ike_engine *e)
{
	uint8_t key[16];
	size_t size = sizeof(uint64_t);
	OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end() };
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	int ok;

	e->idx_mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);   /* the context holds its own reference */
	ike_random(e, key, sizeof key);
	ok = e->idx_mac && EVP_MAC_CTX_set_params(e->idx_mac, params) == 1 &&
	     EVP_MAC_init(e->idx_mac, key, sizeof key, NULL) == 1;
	OPENSSL_cleanse(key, sizeof key);
	return ok ? 0 : -IKE_E_CRYPTO;
}

/* SipHash of a | b; 0 (one bucket: slower, still right) should OpenSSL fail. */
static uint64_t keyed_hash(EVP_MAC_CTX *mac, const void *a, size_t a_len, const void *b, size_t b_len)
{
	uint8_t out[sizeof(uint64_t)];
	size_t n = 0;
	uint64_t h;

	if (EVP_MAC_init(mac, NULL, 0, NULL) != 1 || EVP_MAC_update(mac, a, a_len) != 1 ||
	    (b_len && EVP_MAC_update(mac, b, b_len) != 1) || EVP_MAC_final(mac, out, &n, sizeof out) != 1 ||
	    n != sizeof out)
		return 0;
	memcpy(&h, out, sizeof h);
	return h;
}

static uint64_t spi_hash(const struct ike_engine *e, const uint8_t spi[IKE_SPI_LEN])
{
	return keyed_hash(e->idx_mac, spi, IKE_SPI_LEN, NULL, 0);
}

static uint64_t ident_hash(const struct ike_engine *e, const struct ike_ident *id)
{
	uint8_t head[3] = { id->type, (uint8_t)(id->len >> 8), (uint8_t)id->len };

	return keyed_hash(e->idx_mac, head, sizeof head, id->data, id->len);
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

	ike_sa_unindex(e, sa);
	if (!spi_zero(ours))
		tab_add(&e->idx[IKE_IDX_OURS], IKE_IDX_OURS, sa, spi_hash(e, ours));
	if (!sa->initiator && !spi_zero(sa->spi_i))
		tab_add(&e->idx[IKE_IDX_SPI_I], IKE_IDX_SPI_I, sa, spi_hash(e, sa->spi_i));
	if (sa->remote_ident.len)
		tab_add(&e->idx[IKE_IDX_IDENT], IKE_IDX_IDENT, sa, ident_hash(e, &sa->remote_ident));
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
	EVP_MAC_CTX_free(e->idx_mac);
	e->idx_mac = NULL;
}

struct ike_sa *ike_sa_by_our_spi(struct ike_engine *e, const uint8_t *spi)
{
	const struct ike_sa_tab *t = &e->idx[IKE_IDX_OURS];

	if (!t->b)
		return NULL;
	for (struct ike_sa *sa = t->b[spi_hash(e, spi) & t->mask]; sa; sa = sa->idx_next[IKE_IDX_OURS])
		if (!memcmp(sa->initiator ? sa->spi_i : sa->spi_r, spi, IKE_SPI_LEN))
			return sa;
	return NULL;
}

struct ike_sa *ike_sa_chain_spi_i(struct ike_engine *e, const uint8_t *spi_i)
{
	const struct ike_sa_tab *t = &e->idx[IKE_IDX_SPI_I];

	return t->b ? t->b[spi_hash(e, spi_i) & t->mask] : NULL;
}

struct ike_sa *ike_sa_chain_ident(struct ike_engine *e, const struct ike_ident *id)
{
	const struct ike_sa_tab *t = &e->idx[IKE_IDX_IDENT];

	return t->b && id->len ? t->b[ident_hash(e, id) & t->mask] : NULL;
}
