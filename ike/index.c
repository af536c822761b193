/* index.c: hash indexes over the IKE SAs (our SPI, a responder SA's initiator SPI, the peer's identity), so a
 * message finds its SA without walking them all. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "engine.h"

/*
 * The keys come from the network (the initiator's SPI, its identity), so the
 * hash is a PRF: SipHash-2-4 under a key drawn when the engine is made. A
 * peer that cannot compute it cannot aim its SPIs at one bucket. It is
 * computed here rather than through OpenSSL's EVP_MAC: an index hash must not
 * fail (an SA filed under one hash and looked up under another is lost), nor
 * depend on a provider that may lack SIPHASH (FIPS), and it runs per message.
 * test_ike_engine checks it against OpenSSL's SIPHASH where that exists.
 */
void ike_index_init(struct ike_engine *e)
{
	ike_random(e, (uint8_t *)e->idx_key, sizeof e->idx_key);
}

struct sip {
	uint64_t v[4];
	uint64_t word;                      /* the bytes of the current 8-byte word so far, little-endian */
	size_t len;                         /* bytes hashed so far */
};

static uint64_t rotl(uint64_t x, int b)
{
	return x << b | x >> (64 - b);
}

static void sip_rounds(struct sip *s, int n)
{
	uint64_t *v = s->v;

	while (n--) {
		v[0] += v[1], v[1] = rotl(v[1], 13), v[1] ^= v[0], v[0] = rotl(v[0], 32);
		v[2] += v[3], v[3] = rotl(v[3], 16), v[3] ^= v[2];
		v[0] += v[3], v[3] = rotl(v[3], 21), v[3] ^= v[0];
		v[2] += v[1], v[1] = rotl(v[1], 17), v[1] ^= v[2], v[2] = rotl(v[2], 32);
	}
}

static void sip_word(struct sip *s, uint64_t m)
{
	s->v[3] ^= m;
	sip_rounds(s, 2);
	s->v[0] ^= m;
}

static void sip_bytes(struct sip *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		s->word |= (uint64_t)p[i] << (8 * (s->len++ & 7));
		if (!(s->len & 7)) {
			sip_word(s, s->word);
			s->word = 0;
		}
	}
}

uint64_t ike_index_hash(const struct ike_engine *e, const void *a, size_t a_len, const void *b, size_t b_len)
{
	const uint64_t k0 = e->idx_key[0], k1 = e->idx_key[1];
	struct sip s = { .v = { k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull, k0 ^ 0x6c7967656e657261ull,
		k1 ^ 0x7465646279746573ull } };

	sip_bytes(&s, a, a_len);
	if (b_len)
		sip_bytes(&s, b, b_len);
	sip_word(&s, s.word | (uint64_t)(s.len & 0xff) << 56);
	s.v[2] ^= 0xff;
	sip_rounds(&s, 4);
	return s.v[0] ^ s.v[1] ^ s.v[2] ^ s.v[3];
}

static uint64_t spi_hash(const struct ike_engine *e, const uint8_t spi[IKE_SPI_LEN])
{
	return ike_index_hash(e, spi, IKE_SPI_LEN, NULL, 0);
}

static uint64_t ident_hash(const struct ike_engine *e, const struct ike_ident *id)
{
	uint8_t head[3] = { id->type, (uint8_t)(id->len >> 8), (uint8_t)id->len };

	return ike_index_hash(e, head, sizeof head, id->data, id->len);
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
	OPENSSL_cleanse(e->idx_key, sizeof e->idx_key);
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
