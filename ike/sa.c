/* sa.c: IKE SAs: creation, lookup, freeing (wiping keys), timers and introspection. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sa.h"

struct ike_sa *ike_sa_new(struct ike_engine *e, uint64_t now_ms, const struct ike_peer *peer, bool initiator)
{
	struct ike_sa *sa;

	if (e->n_sas >= e->conf.max_sas)
		return NULL;
	sa = calloc(1, sizeof *sa);
	if (!sa)
		return NULL;
	sa->id = e->next_sa_id++;
	sa->peer_id = peer ? peer->conf.id : 0;
	sa->initiator = initiator;
	sa->created_ms = now_ms;
	sa->next = e->sas;
	e->sas = sa;
	e->n_sas++;
	return sa;
}

static void req_clear(struct ike_req *r)
{
	free(r->buf);
	ike_dh_free(r->dh);
	OPENSSL_cleanse(r, sizeof *r);
}

void ike_sa_free(struct ike_engine *e, struct ike_sa *sa)
{
	for (struct ike_sa **pp = &e->sas; *pp; pp = &(*pp)->next) {
		if (*pp == sa) {
			*pp = sa->next;
			e->n_sas--;
			break;
		}
	}
	req_clear(&sa->req);
	ike_dh_free(sa->dh);
	ike_sk_free(sa->sk_out);
	ike_sk_free(sa->sk_in);
	free(sa->init_req);
	free(sa->init_resp);
	free(sa->resp);
	if (sa->children)
		OPENSSL_cleanse(sa->children, sa->cap_children * sizeof *sa->children);
	free(sa->children);
	OPENSSL_cleanse(sa, sizeof *sa);
	free(sa);
}

struct ike_sa *ike_sa_find_peer(struct ike_engine *e, uint32_t peer_id)
{
	for (struct ike_sa *sa = e->sas; sa; sa = sa->next)
		if (sa->peer_id == peer_id && sa->state != IKE_SA_DELETING)
			return sa;
	return NULL;
}

struct ike_sa *ike_sa_find_id(struct ike_engine *e, uint64_t id)
{
	for (struct ike_sa *sa = e->sas; sa; sa = sa->next)
		if (sa->id == id)
			return sa;
	return NULL;
}

void ike_sa_terminate(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool notify)
{
	(void)now_ms;
	(void)notify;
	ike_sa_free(e, sa);
}

void ike_sa_delete_policy_children(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint32_t policy_id)
{
	(void)e;
	(void)now_ms;
	(void)sa;
	(void)policy_id;
}

void ike_input(struct ike_engine *e, uint64_t now_ms, const struct ike_addr *src, const struct ike_addr *dst,
	const uint8_t *msg, size_t len)
{
	(void)e;
	(void)now_ms;
	(void)src;
	(void)dst;
	(void)msg;
	(void)len;
}

int ike_acquire(struct ike_engine *e, uint64_t now_ms, uint32_t child_id, const uint8_t *src, const uint8_t *dst,
	uint8_t family)
{
	(void)e;
	(void)now_ms;
	(void)child_id;
	(void)src;
	(void)dst;
	(void)family;
	return -IKE_E_STATE;
}

int ike_sa_expire(struct ike_engine *e, uint64_t now_ms, uint32_t spi_in, bool hard)
{
	(void)e;
	(void)now_ms;
	(void)spi_in;
	(void)hard;
	return -IKE_E_NOT_FOUND;
}

int ike_initiate(struct ike_engine *e, uint64_t now_ms, uint32_t peer_id)
{
	(void)now_ms;
	return ike_peer_find(e, peer_id) ? -IKE_E_STATE : -IKE_E_NOT_FOUND;
}

int ike_rekey(struct ike_engine *e, uint64_t now_ms, uint64_t ike_sa_id, uint32_t spi_in)
{
	(void)now_ms;
	(void)spi_in;
	return ike_sa_find_id(e, ike_sa_id) ? -IKE_E_STATE : -IKE_E_NOT_FOUND;
}

int ike_terminate(struct ike_engine *e, uint64_t now_ms, uint64_t ike_sa_id)
{
	struct ike_sa *sa = ike_sa_find_id(e, ike_sa_id);

	if (!sa)
		return -IKE_E_NOT_FOUND;
	ike_sa_terminate(e, now_ms, sa, true);
	return 0;
}

void ike_tick(struct ike_engine *e, uint64_t now_ms)
{
	(void)e;
	(void)now_ms;
}

uint64_t ike_next_deadline(const struct ike_engine *e)
{
	(void)e;
	return UINT64_MAX;
}

size_t ike_sa_list(const struct ike_engine *e, struct ike_sa_info *out, size_t max)
{
	(void)out;
	(void)max;
	return e->n_sas;
}
