/* sa.c: IKE SAs: creation, lookup, teardown (wiping keys), timers, operator commands and introspection. */
#include <stdio.h>
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
	sa->last_recv_ms = now_ms;
	sa->rekey_at_ms = sa->expire_at_ms = UINT64_MAX;
	sa->next = e->sas;
	if (e->sas)
		e->sas->prev = sa;
	e->sas = sa;
	e->n_sas++;
	ike_sa_index(e, sa);
	return sa;
}

void ike_req_done(struct ike_sa *sa)
{
	uint8_t *buf = sa->req.buf;
	size_t cap = sa->req.cap;

	ike_dh_free(sa->req.dh);
	OPENSSL_cleanse(&sa->req, sizeof sa->req);
	sa->req.buf = buf;
	sa->req.cap = cap;
}

void ike_sa_free(struct ike_engine *e, struct ike_sa *sa)
{
	ike_sa_unindex(e, sa);
	if (sa->next)
		sa->next->prev = sa->prev;
	*(sa->prev ? &sa->prev->next : &e->sas) = sa->next;
	e->n_sas--;
	if (sa->half_open)
		e->n_half_open--;
	ike_req_done(sa);
	free(sa->req.buf);
	ike_dh_free(sa->dh);
	ike_sk_free(sa->sk_out);
	ike_sk_free(sa->sk_in);
	free(sa->init_req);
	free(sa->init_resp);
	free(sa->resp);
	ike_defrag_free(sa->defrag);
	for (size_t i = 0; i < sa->n_children; i++)
		ike_child_drop_out_later(&sa->children[i]);
	if (sa->children)
		OPENSSL_cleanse(sa->children, sa->cap_children * sizeof *sa->children);
	free(sa->children);
	OPENSSL_cleanse(sa, sizeof *sa);
	free(sa);
}

const struct ike_peer *ike_sa_peer(struct ike_engine *e, const struct ike_sa *sa)
{
	return ike_peer_find(e, sa->peer_id);
}

uint64_t ike_dpd_step_ms(struct ike_engine *e, const struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);

	return (p && p->conf.dpd_timeout_s ? (uint64_t)p->conf.dpd_timeout_s * 1000 : e->conf.dpd_timeout_ms) /
	       IKE_DPD_SENDS;
}

struct ike_sa *ike_sa_find_peer(struct ike_engine *e, uint32_t peer_id)
{
	for (struct ike_sa *sa = e->sas; sa; sa = sa->next)
		if (sa->peer_id == peer_id && sa->state != IKE_SA_DELETING && (sa->initiator || !sa->half_open))
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

uint32_t ike_jitter(struct ike_engine *e, uint32_t margin_s)
{
	uint32_t r;

	if (!margin_s)
		return 0;
	ike_random(e, (uint8_t *)&r, sizeof r);
	return r % (margin_s * 100 + 1); /* up to a tenth of the margin, in ms */
}

void ike_sa_established(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	uint32_t life = p && p->conf.ike_lifetime_s ? p->conf.ike_lifetime_s : 86400;
	uint32_t margin = p && p->conf.ike_rekey_margin_s ? p->conf.ike_rekey_margin_s : life / 10;
	char text[128];

	if (margin >= life)
		margin = life / 10;
	if (sa->half_open) {
		sa->half_open = false;
		e->n_half_open--;
	}
	sa->state = IKE_SA_ESTABLISHED;
	sa->established_ms = now_ms;
	sa->delete_at_ms = 0;
	sa->expire_at_ms = now_ms + (uint64_t)life * 1000;
	sa->rekey_at_ms = now_ms + (uint64_t)(life - margin) * 1000 - ike_jitter(e, margin);
	ike_choice_format(&(struct ike_choice){ .suite = sa->suite, .dh = sa->dh_group }, false, text, sizeof text);
	ike_log(e, 6, "IKE SA %llu with peer %u established (%s%s)", (unsigned long long)sa->id, sa->peer_id, text,
		sa->encap ? ", UDP 4500" : "");
	ike_emit(e, IKE_EV_SA_UP, sa, 0, 0, 0, text);
	if (e->conf.keyexport && ike_keyexport_ikev2(text, sizeof text, sa->spi_i, sa->spi_r, sa->suite.encr,
		sa->suite.key_bits, sa->suite.integ, &sa->keys) > 0) {
		char line[512];

		ike_keyexport_ikev2(line, sizeof line, sa->spi_i, sa->spi_r, sa->suite.encr, sa->suite.key_bits,
			sa->suite.integ, &sa->keys);
		ike_emit(e, IKE_EV_KEYS, sa, 0, 0, 0, line);
		OPENSSL_cleanse(line, sizeof line);
	}
}

void ike_sa_fail(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint8_t ev, const char *why)
{
	bool was_up = sa->state >= IKE_SA_ESTABLISHED;

	(void)now_ms;
	ike_rekey_collision_adopt(e, sa);
	for (size_t i = 0; i < sa->n_children; i++)
		ike_child_drop_out_later(&sa->children[i]); /* all go: no successor starts sending */
	while (sa->n_children)
		ike_child_remove(e, sa, &sa->children[sa->n_children - 1], why);
	ike_log(e, ev == IKE_EV_SA_DOWN ? 6 : 4, "IKE SA %llu with peer %u: %s", (unsigned long long)sa->id,
		sa->peer_id, why);
	ike_emit(e, ev, sa, 0, 0, 0, why);
	if (ev != IKE_EV_SA_DOWN && was_up)
		ike_emit(e, IKE_EV_SA_DOWN, sa, 0, 0, 0, why);
	ike_sa_free(e, sa);
}

void ike_sa_terminate(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool notify)
{
	if (!notify || sa->state < IKE_SA_ESTABLISHED || sa->state == IKE_SA_DELETING) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_SA_DOWN, "terminated");
		return;
	}
	for (size_t i = 0; i < sa->n_children; i++)
		ike_child_drop_out_later(&sa->children[i]);
	while (sa->n_children)
		ike_child_remove(e, sa, &sa->children[sa->n_children - 1], "IKE SA terminated");
	ike_req_done(sa); /* an exchange in flight is abandoned: the DELETE supersedes it */
	sa->state = IKE_SA_DELETING;
	sa->n_pending = 0;
	if (ike_info_send_delete(e, now_ms, sa, NULL) < 0)
		ike_sa_fail(e, now_ms, sa, IKE_EV_SA_DOWN, "terminated");
}

void ike_sa_delete_policy_children(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint32_t policy_id)
{
	for (size_t i = 0; i < sa->n_children; i++) {
		struct ike_child *c = &sa->children[i];

		if (c->policy_id != policy_id || c->state == CHILD_DELETING)
			continue;
		c->state = CHILD_DELETING;
		c->delete_at_ms = now_ms;
	}
}

/* IKE SA rekey: the new SA talks to the same peer, as the same identities, the same way. */
void ike_sa_inherit(const struct ike_sa *from, struct ike_sa *to)
{
	to->peer_id = from->peer_id;
	to->local = from->local;
	to->remote = from->remote;
	to->encap = from->encap;
	to->nat_local = from->nat_local;
	to->nat_remote = from->nat_remote;
	to->peer_frag = from->peer_frag;
	to->local_ident = from->local_ident;
	to->remote_ident = from->remote_ident;
}

/* IKE SA rekey: the children and the work queued for them belong to the new SA from now on. */
void ike_sa_move_children(struct ike_sa *from, struct ike_sa *to)
{
	free(to->children);
	to->children = from->children;
	to->n_children = from->n_children;
	to->cap_children = from->cap_children;
	from->children = NULL;
	from->n_children = from->cap_children = 0;
	memcpy(to->pending, from->pending, sizeof to->pending);
	to->n_pending = from->n_pending;
	from->n_pending = 0;
	ike_sa_inherit(from, to);
}

/* ---- operator commands and inputs ---- */

static bool pending_has(const struct ike_sa *sa, const struct ike_child_key *k)
{
	for (size_t i = 0; i < sa->n_pending; i++)
		if (ike_child_key_eq(&sa->pending[i], k))
			return true;
	for (size_t i = 0; i < sa->n_children; i++)
		if (ike_child_is(&sa->children[i], k) && sa->children[i].state == CHILD_ACTIVE)
			return true;
	if (sa->req.kind == REQ_CHILD_NEW && ike_child_key_eq(&sa->req.child, k))
		return true;
	return ike_child_key_eq(&sa->first, k) && sa->state < IKE_SA_ESTABLISHED;
}

static void pending_add(struct ike_sa *sa, const struct ike_child_key *k)
{
	if (!pending_has(sa, k) && sa->n_pending < sizeof sa->pending / sizeof sa->pending[0])
		sa->pending[sa->n_pending++] = *k;
}

/* The children a policy (for one clone host, or none) brings up: its protocol's, or ESP then AH for a bundle. */
static void pending_policy(struct ike_sa *sa, const struct ike_policy *pol, const struct ike_child_key *host)
{
	struct ike_child_key k = *host;

	k.policy_id = pol->conf.id;
	k.ah = ike_policy_first_ah(pol);
	pending_add(sa, &k);
	if (pol->conf.sa_type == IKE_SA_TYPE_AHESP) {
		k.ah = true;
		pending_add(sa, &k);
	}
}

/* Clone policies are left out: they come up per host, from ACQUIREs. */
static void pending_all(struct ike_engine *e, struct ike_sa *sa)
{
	for (size_t i = 0; i < e->n_policies; i++)
		if (e->policies[i].conf.peer_id == sa->peer_id && e->policies[i].conf.clone == IKE_CLONE_NONE)
			pending_policy(sa, &e->policies[i], &(struct ike_child_key){ 0 });
}

static int start_sa(struct ike_engine *e, uint64_t now_ms, const struct ike_peer *p,
	const struct ike_child_key *first, struct ike_sa **out)
{
	struct ike_sa *sa;
	int rc;

	if (!p->conf.remote.family)
		return -IKE_E_STATE; /* respond only: no address to send to */
	sa = ike_sa_new(e, now_ms, p, true);
	if (!sa)
		return -IKE_E_LIMIT;
	sa->local = p->conf.local;
	sa->remote = p->conf.remote;
	if (!sa->local.port || p->conf.force_encap)
		sa->local.port = p->conf.force_encap ? 4500 : 500;
	if (!sa->remote.port || p->conf.force_encap)
		sa->remote.port = p->conf.force_encap ? 4500 : 500;
	sa->encap = p->conf.force_encap;
	if (first)
		sa->first = *first;
	rc = ike_init_start(e, now_ms, sa);
	if (rc < 0) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, ike_strerror(rc));
		return rc;
	}
	*out = sa;
	return 0;
}

int ike_initiate(struct ike_engine *e, uint64_t now_ms, uint32_t peer_id)
{
	const struct ike_peer *p = ike_peer_find(e, peer_id);
	struct ike_sa *sa;
	int rc;

	e->deadline_stale = true;
	if (!p)
		return -IKE_E_NOT_FOUND;
	sa = ike_sa_find_peer(e, peer_id);
	if (!sa) {
		struct ike_child_key first = { 0 };

		for (size_t i = 0; i < e->n_policies && !first.policy_id; i++)
			if (e->policies[i].conf.peer_id == peer_id && e->policies[i].conf.clone == IKE_CLONE_NONE)
				first = (struct ike_child_key){ .policy_id = e->policies[i].conf.id,
					.ah = ike_policy_first_ah(&e->policies[i]) };
		rc = start_sa(e, now_ms, p, &first, &sa);
		if (rc < 0)
			return rc;
	}
	pending_all(e, sa);
	return 0;
}

/* A clone policy's host lies inside its cloned side's selectors. */
static bool clone_host_ok(const struct ike_policy *pol, const struct ike_child_key *k)
{
	struct ike_ts_conf one;

	if (pol->conf.clone == IKE_CLONE_SRC)
		return ike_ts_to_host(pol->conf.local_ts, pol->conf.n_local_ts, k, &one, 1) == 1;
	return ike_ts_to_host(pol->conf.remote_ts, pol->conf.n_remote_ts, k, &one, 1) == 1;
}

int ike_acquire(struct ike_engine *e, uint64_t now_ms, uint32_t child_id, const uint8_t *src, const uint8_t *dst,
	uint8_t family, const uint8_t *clone_host)
{
	const struct ike_policy *pol = ike_policy_find(e, child_id);
	const struct ike_peer *p = pol ? ike_peer_find(e, pol->conf.peer_id) : NULL;
	struct ike_child_key first = { .policy_id = child_id };
	struct ike_sa *sa;
	int rc;

	e->deadline_stale = true;
	if (!p)
		return -IKE_E_NOT_FOUND;
	if (pol->conf.clone != IKE_CLONE_NONE) {
		if (!clone_host || (family != 4 && family != 6))
			return -IKE_E_BAD_PARAM;
		first.host_family = family;
		memcpy(first.host, clone_host, family == 4 ? 4 : 16);
		if (!clone_host_ok(pol, &first))
			return -IKE_E_TS_UNACCEPTABLE;
	}
	first.ah = ike_policy_first_ah(pol);
	sa = ike_sa_find_peer(e, p->conf.id);
	if (sa) {
		pending_policy(sa, pol, &first);
		return 0;
	}
	rc = start_sa(e, now_ms, p, &first, &sa);
	if (rc < 0)
		return rc;
	if (src && dst && (family == 4 || family == 6)) {
		sa->acq_family = family;
		memcpy(sa->acq_src, src, family == 4 ? 4 : 16);
		memcpy(sa->acq_dst, dst, family == 4 ? 4 : 16);
	}
	/* A bundle's AH half follows the ESP one IKE_AUTH carries. */
	if (pol->conf.sa_type == IKE_SA_TYPE_AHESP)
		pending_policy(sa, pol, &first);
	return 0;
}

static struct ike_sa *sa_of_child(struct ike_engine *e, uint32_t spi_in, struct ike_child **c)
{
	for (struct ike_sa *sa = e->sas; sa; sa = sa->next)
		if ((*c = ike_child_find_in(sa, spi_in)))
			return sa;
	return NULL;
}

int ike_sa_expire(struct ike_engine *e, uint64_t now_ms, uint32_t spi_in, bool hard)
{
	struct ike_child *c;
	struct ike_sa *sa = sa_of_child(e, spi_in, &c);

	e->deadline_stale = true;
	if (!sa)
		return -IKE_E_NOT_FOUND;
	if (hard) {
		struct ike_child *mate = ike_child_partner(e, sa, c);

		c->state = CHILD_DELETING;
		c->delete_at_ms = now_ms;
		if (mate && mate->state != CHILD_DELETING) {   /* a bundle goes as one */
			mate->state = CHILD_DELETING;
			mate->delete_at_ms = now_ms;
		}
		return 0;
	}
	c->rekey_at_ms = now_ms;
	return 0;
}

int ike_rekey(struct ike_engine *e, uint64_t now_ms, uint64_t ike_sa_id, uint32_t spi_in)
{
	struct ike_sa *sa = ike_sa_find_id(e, ike_sa_id);
	struct ike_child *c;

	e->deadline_stale = true;
	if (!sa)
		return -IKE_E_NOT_FOUND;
	if (sa->state != IKE_SA_ESTABLISHED)
		return -IKE_E_STATE;
	if (!spi_in) {
		sa->rekey_at_ms = now_ms;
		return 0;
	}
	c = ike_child_find_in(sa, spi_in);
	if (!c)
		return -IKE_E_NOT_FOUND;
	c->rekey_at_ms = now_ms;
	return 0;
}

int ike_terminate(struct ike_engine *e, uint64_t now_ms, uint64_t ike_sa_id)
{
	struct ike_sa *sa = ike_sa_find_id(e, ike_sa_id);

	e->deadline_stale = true;
	if (!sa)
		return -IKE_E_NOT_FOUND;
	ike_sa_terminate(e, now_ms, sa, true);
	return 0;
}

/* ---- timers ---- */

static void dead_peer(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	bool restart = p && p->conf.dpd_action == IKE_DPD_RESTART && sa->state >= IKE_SA_ESTABLISHED;
	uint32_t peer_id = sa->peer_id;

	if (sa->state == IKE_SA_DELETING) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_SA_DOWN, "deleted (the peer did not answer)");
		return;
	}
	if (sa->state < IKE_SA_ESTABLISHED) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, "the peer did not answer");
		return;
	}
	ike_sa_fail(e, now_ms, sa, IKE_EV_DPD_DEAD, "the peer did not answer: dead");
	if (restart)
		ike_initiate(e, now_ms, peer_id);
}

/* Retransmits the outstanding request; false when the SA is gone. */
static bool retransmit(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	bool dpd = sa->req.kind == REQ_DPD;

	if (!sa->req.kind || now_ms < sa->req.next_ms)
		return true;
	if (sa->req.tries >= (dpd ? IKE_DPD_SENDS - 1 : e->conf.retransmit_tries)) {
		dead_peer(e, now_ms, sa);
		return false;
	}
	sa->req.tries++;
	if (dpd)
		sa->req.next_ms = now_ms + ike_dpd_step_ms(e, sa);
	else
		sa->req.next_ms = now_ms +
			((uint64_t)e->conf.retransmit_base_ms << (sa->req.tries < 16 ? sa->req.tries : 16));
	ike_out_resend(e, sa, sa->req.buf, sa->req.len, sa->req.frag_len, sa->req.n_frags);
	return true;
}

/* Child SA timers; at most one exchange starts (window 1). */
static void child_timers(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	for (size_t i = 0; i < sa->n_children; i++) {
		struct ike_child *c = &sa->children[i];

		if (now_ms >= c->expire_at_ms) {
			ike_child_remove(e, sa, c, "expired");
			i--;
		} else if (c->state != CHILD_ACTIVE && c->delete_at_ms && now_ms >= c->delete_at_ms) {
			if (!sa->req.kind && ike_info_send_delete(e, now_ms, sa, c) == 0)
				c->delete_at_ms = 0;
		} else if (c->state == CHILD_ACTIVE && now_ms >= c->rekey_at_ms && !sa->req.kind) {
			if (ike_ccs_start_rekey(e, now_ms, sa, c) < 0)
				c->rekey_at_ms = UINT64_MAX;
		}
	}
}

static void sa_timers(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);

	if (!retransmit(e, now_ms, sa))
		return;
	if (sa->delete_at_ms && now_ms >= sa->delete_at_ms) {
		if (sa->state == IKE_SA_DELETING)
			ike_sa_fail(e, now_ms, sa, IKE_EV_SA_DOWN, "rekeyed");
		else
			ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, "not authenticated in time (half-open)");
		return;
	}
	if (sa->state != IKE_SA_ESTABLISHED)
		return;
	if (now_ms >= sa->expire_at_ms) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_SA_DOWN, "expired");
		return;
	}
	child_timers(e, now_ms, sa);
	if (!sa->req.kind && now_ms >= sa->rekey_at_ms && ike_ccs_start_ike_rekey(e, now_ms, sa) < 0)
		sa->rekey_at_ms = UINT64_MAX;
	while (!sa->req.kind && sa->n_pending) {
		struct ike_child_key k = sa->pending[0];

		memmove(sa->pending, sa->pending + 1, --sa->n_pending * sizeof sa->pending[0]);
		ike_ccs_start_new(e, now_ms, sa, &k);
	}
	if (!sa->req.kind && p && p->conf.dpd_interval_s &&
	    now_ms >= sa->last_recv_ms + (uint64_t)p->conf.dpd_interval_s * 1000)
		ike_info_send_dpd(e, now_ms, sa);
}

void ike_tick(struct ike_engine *e, uint64_t now_ms)
{
	e->deadline_stale = true;
	for (struct ike_sa *sa = e->sas, *next; sa; sa = next) {
		next = sa->next;
		sa_timers(e, now_ms, sa);
	}
}

static void earliest(uint64_t *d, uint64_t t)
{
	if (t && t < *d)
		*d = t;
}

/*
 * A walk over every SA, so it is cached: the reactor asks after each of its
 * wake-ups (wire replies, REST, events), most of which never enter the
 * engine. The engine has no clock and no thread of its own, so its timers only
 * change inside the entry points, and each of them marks the cache stale.
 */
uint64_t ike_next_deadline(struct ike_engine *e)
{
	uint64_t d = UINT64_MAX;
	const struct ike_peer *p = NULL;

	if (!e->deadline_stale)
		return e->deadline;
	for (const struct ike_sa *sa = e->sas; sa; sa = sa->next) {
		if (!p || p->conf.id != sa->peer_id)
			p = ike_peer_find(e, sa->peer_id);

		if (sa->req.kind)
			earliest(&d, sa->req.next_ms);
		earliest(&d, sa->delete_at_ms);
		if (sa->state != IKE_SA_ESTABLISHED)
			continue;
		earliest(&d, sa->expire_at_ms);
		if (sa->req.kind)
			continue;
		earliest(&d, sa->rekey_at_ms);
		if (sa->n_pending)
			earliest(&d, 1);
		if (p && p->conf.dpd_interval_s)
			earliest(&d, sa->last_recv_ms + (uint64_t)p->conf.dpd_interval_s * 1000);
		for (size_t i = 0; i < sa->n_children; i++) {
			earliest(&d, sa->children[i].expire_at_ms);
			earliest(&d, sa->children[i].delete_at_ms);
			if (sa->children[i].state == CHILD_ACTIVE)
				earliest(&d, sa->children[i].rekey_at_ms);
		}
	}
	e->deadline = d;
	e->deadline_stale = false;
	return d;
}

/* ---- introspection ---- */

static void child_info(const struct ike_child *c, struct ike_child_info *out)
{
	memset(out, 0, sizeof *out);
	out->child_id = c->policy_id;
	out->spi_in = c->spi_in;
	out->spi_out = c->spi_out;
	out->encap = c->encap;
	out->transport = c->transport;
	out->ah = c->ah;
	out->clone_family = c->host_family;
	memcpy(out->clone_host, c->host, sizeof out->clone_host);
	ike_choice_format(&(struct ike_choice){ .suite = c->suite, .dh = c->dh, .esn = c->esn }, true, out->algs,
		sizeof out->algs);
	out->established_ms = c->established_ms;
	out->rekey_at_ms = c->rekey_at_ms;
	out->expire_at_ms = c->expire_at_ms;
}

static void sa_info(const struct ike_sa *sa, struct ike_sa_info *out)
{
	memset(out, 0, sizeof *out);
	out->id = sa->id;
	out->peer_id = sa->peer_id;
	out->state = sa->state;
	out->state_name = ike_sa_state_name(sa->state);
	out->initiator = sa->initiator;
	out->nat_local = sa->nat_local;
	out->nat_remote = sa->nat_remote;
	out->local = sa->local;
	out->remote = sa->remote;
	memcpy(out->spi_i, sa->spi_i, 8);
	memcpy(out->spi_r, sa->spi_r, 8);
	if (sa->suite.encr)
		ike_choice_format(&(struct ike_choice){ .suite = sa->suite, .dh = sa->dh_group }, false, out->algs,
			sizeof out->algs);
	if (sa->remote_ident.len) {
		ike_id_format(&sa->local_ident, out->local_id, sizeof out->local_id);
		ike_id_format(&sa->remote_ident, out->remote_id, sizeof out->remote_id);
	}
	out->established_ms = sa->established_ms;
	out->rekey_at_ms = sa->rekey_at_ms;
	out->expire_at_ms = sa->expire_at_ms;
	out->n_children = sa->n_children;
	for (size_t i = 0; i < sa->n_children && i < IKE_INFO_MAX_CHILDREN; i++)
		child_info(&sa->children[i], &out->children[i]);
}

size_t ike_sa_list(const struct ike_engine *e, struct ike_sa_info *out, size_t max)
{
	size_t n = 0;

	for (const struct ike_sa *sa = e->sas; sa; sa = sa->next, n++)
		if (n < max)
			sa_info(sa, &out[n]);
	return n;
}
