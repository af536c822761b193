/* ccs.c: CREATE_CHILD_SA: additional child SAs, child rekey (REKEY_SA, make-before-break, collisions), PFS,
 * INVALID_KE_PAYLOAD retries, and IKE SA rekey (the children move to the new IKE SA). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sa.h"

#define RETRY_LATER_MS 10000            /* a refused rekey is tried again this much later */

int ike_nonce_cmp(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	int c = memcmp(a, b, a_len < b_len ? a_len : b_len);

	return c ? c : (a_len > b_len) - (a_len < b_len);
}

static const uint8_t *be32(uint8_t *buf, uint32_t v)
{
	buf[0] = (uint8_t)(v >> 24), buf[1] = (uint8_t)(v >> 16), buf[2] = (uint8_t)(v >> 8), buf[3] = (uint8_t)v;
	return buf;
}

/* Our nonce and, when group is set, a fresh KE, into the request being built; context into sa->req. */
static int nonce_and_ke(struct ike_engine *e, struct ike_sa *sa, uint16_t group, bool legacy)
{
	struct ike_req *r = &sa->req;
	int kl;

	ike_random(e, r->nonce, sizeof r->nonce);
	ike_msg_add(&e->inner, IKE_PL_NONCE)->u.nonce = (struct ike_span){ r->nonce, sizeof r->nonce };
	r->dh_group = group;
	if (!group)
		return 0;
	if (ike_dh_new(group, legacy, &r->dh) < 0)
		return -IKE_E_NOT_SUPPORTED;
	kl = ike_dh_public(r->dh, e->ke_buf, sizeof e->ke_buf);
	if (kl < 0)
		return -IKE_E_CRYPTO;
	ike_msg_add(&e->inner, IKE_PL_KE)->u.ke = (struct ike_ke){ group, { e->ke_buf, (uint32_t)kl } };
	return 0;
}

/* ---- child SAs: initiator ---- */

static int child_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_policy *pol,
	const struct ike_child_key *key, uint32_t old_spi_in, uint16_t group)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	uint8_t *spi = e->octets + 64;
	const struct ike_proposal_conf *props;
	size_t n_props;
	int rc;

	if (sa->req.kind || sa->state != IKE_SA_ESTABLISHED || !p)
		return -IKE_E_BUSY;
	props = ike_policy_props(pol, key->ah, &n_props);
	if (!group)
		group = ike_proposals_first_dh(props, n_props, true);
	ike_out_begin(e, sa, IKE_CREATE_CHILD_SA, false, sa->next_msg_id++);
	if (old_spi_in)
		ike_out_notify(&e->inner, IKE_N_REKEY_SA, IKE_CHILD_PROTO(key->ah), be32(spi, old_spi_in), 4, NULL, 0);
	rc = ike_child_offer(e, sa, pol, key, group != 0, ike_child_spi(e, sa, key));
	if (rc == 0)
		rc = nonce_and_ke(e, sa, group, p->conf.legacy_groups);
	sa->req.old_spi_in = old_spi_in;
	if (rc == 0)
		rc = ike_out_send(e, sa, now_ms, true, old_spi_in ? REQ_CHILD_REKEY : REQ_CHILD_NEW);
	if (rc < 0)
		ike_req_done(sa);
	return rc;
}

int ike_ccs_start_new(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_child_key *key)
{
	const struct ike_policy *pol = ike_policy_find(e, key->policy_id);

	return pol ? child_request(e, now_ms, sa, pol, key, 0, 0) : -IKE_E_NOT_FOUND;
}

int ike_ccs_start_rekey(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, struct ike_child *c)
{
	const struct ike_policy *pol = ike_policy_find(e, c->policy_id);
	struct ike_child *mate = ike_child_partner(e, sa, c);
	struct ike_child_key key;

	if (!pol)
		return -IKE_E_NOT_FOUND;
	ike_child_key_of(c, &key);
	ike_log(e, 6, "IKE SA %llu: rekeying child SA %08x", (unsigned long long)sa->id, c->spi_in);
	/* A bundle is rekeyed as one: its other half right after (taking this one's new inbound SPI). */
	if (mate && mate->state == CHILD_ACTIVE && mate->rekey_at_ms > now_ms)
		mate->rekey_at_ms = now_ms;
	return child_request(e, now_ms, sa, pol, &key, c->spi_in, c->dh);
}

/* The peer asks for another group: retry once with it if our proposals have it. True when retried. */
static bool invalid_ke_retry(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_payload *n = ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_INVALID_KE_PAYLOAD, 0);
	struct ike_child_key key = sa->req.child;
	const struct ike_policy *pol = ike_policy_find(e, key.policy_id);
	const struct ike_proposal_conf *props;
	uint32_t old = sa->req.old_spi_in;
	size_t n_props;
	uint16_t g;

	if (!n || n->u.notify.data.len != 2 || !pol)
		return false;
	g = (uint16_t)(n->u.notify.data.p[0] << 8 | n->u.notify.data.p[1]);
	props = ike_policy_props(pol, key.ah, &n_props);
	if (g == sa->req.dh_group || !n_props || !ike_proposals_have_dh(props, n_props, g))
		return false;
	ike_log(e, 6, "IKE SA %llu: peer wants group %u for the child SA, retrying", (unsigned long long)sa->id, g);
	ike_req_done(sa);
	return child_request(e, now_ms, sa, pol, &key, old, g) == 0;
}

/* A collision: both rekeyed the same child. The exchange with the lowest of the four nonces made the redundant
 * SA; whoever started that exchange deletes it. Returns true when ours is the redundant one. */
static bool ours_redundant(struct ike_sa *sa, const uint8_t *nr, size_t nr_len)
{
	const uint8_t *lo = sa->req.nonce;
	size_t lo_len = sizeof sa->req.nonce;

	if (ike_nonce_cmp(nr, nr_len, lo, lo_len) < 0)
		lo = nr, lo_len = nr_len;
	return ike_nonce_cmp(lo, lo_len, sa->coll.min_nonce, sa->coll.min_len) < 0;
}

static void rekeyed(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint32_t old_spi_in, bool ah,
	uint64_t grace)
{
	struct ike_child *old = ike_child_find_proto(sa, old_spi_in, ah);

	if (old && old->state == CHILD_ACTIVE) {
		old->state = CHILD_REKEYED;
		old->delete_at_ms = now_ms + grace;
	}
}

static void child_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_payload *nr = ike_msg_find(&e->msg, IKE_PL_NONCE, 0, 0);
	const struct ike_payload *ke = ike_msg_find(&e->msg, IKE_PL_KE, 0, 0);
	uint32_t old = sa->req.old_spi_in, policy = sa->req.child.policy_id, spi_in = sa->req.spi_in;
	bool ah = sa->req.child.ah;
	int gl = 0, rc;

	if (invalid_ke_retry(e, now_ms, sa))
		return;
	rc = nr && nr->u.nonce.len >= IKE_NONCE_MIN ? 0 : -IKE_E_INVALID_SYNTAX;
	if (rc == 0 && sa->req.dh) {
		gl = ke && ke->u.ke.group == sa->req.dh_group ? ike_dh_shared(sa->req.dh, ke->u.ke.data.p,
			ke->u.ke.data.len, e->gir, sizeof e->gir) : -1;
		rc = gl < 0 ? -IKE_E_NO_PROPOSAL_CHOSEN : 0;
	}
	if (rc == 0 && ike_msg_find(&e->msg, IKE_PL_SA, 0, 0))
		rc = ike_child_accept(e, now_ms, sa, true, gl > 0 ? e->gir : NULL, (size_t)gl, sa->req.nonce,
			sizeof sa->req.nonce, nr->u.nonce.p, nr->u.nonce.len, old);
	else if (rc == 0)
		rc = ike_child_accept(e, now_ms, sa, true, NULL, 0, NULL, 0, NULL, 0, old); /* reports the notify */
	if (rc < 0) {
		char why[96];
		struct ike_child *c = old ? ike_child_find_proto(sa, old, ah) : NULL;

		snprintf(why, sizeof why, "child SA for policy %u: %s", policy, ike_strerror(rc));
		ike_emit(e, IKE_EV_NEGOTIATION_FAILED, sa, policy, 0, 0, why);
		if (c)
			c->rekey_at_ms = now_ms + RETRY_LATER_MS + ike_jitter(e, 30);
	} else if (old) {
		rekeyed(e, now_ms, sa, old, ah, IKE_OLD_CHILD_GRACE_MS);
		if (sa->coll.old_spi_in == old && ours_redundant(sa, nr->u.nonce.p, nr->u.nonce.len)) {
			struct ike_child *mine = ike_child_find_proto(sa, spi_in, ah);

			ike_log(e, 6, "IKE SA %llu: rekey collision, our new child %08x is redundant",
				(unsigned long long)sa->id, spi_in);
			if (mine) {
				mine->state = CHILD_DELETING;
				mine->delete_at_ms = now_ms;
			}
		}
	}
	OPENSSL_cleanse(e->gir, sizeof e->gir);
	memset(&sa->coll, 0, sizeof sa->coll);
	ike_req_done(sa);
}

/* ---- child SAs: responder ---- */

static void child_request_in(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_payload *ni = ike_msg_find(&e->msg, IKE_PL_NONCE, 0, 0);
	const struct ike_payload *rk = ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_REKEY_SA, 0);
	struct ike_child *old = NULL;
	uint8_t nr[IKE_NONCE_LEN], g[2];
	struct ike_choice chosen;
	uint32_t old_spi = 0;
	bool old_ah = false;
	uint16_t err;

	if (!ni || ni->u.nonce.len < IKE_NONCE_MIN) {
		ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_INVALID_SYNTAX, NULL, 0);
		return;
	}
	if (rk) {
		if (rk->u.notify.protocol != IKE_PROTO_ESP && rk->u.notify.protocol != IKE_PROTO_AH) {
			ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_INVALID_SYNTAX, NULL, 0);
			return;
		}
		old = rk->u.notify.spi.len == 4 ?
			ike_child_find_out(sa, ike_get32(rk->u.notify.spi.p), rk->u.notify.protocol == IKE_PROTO_AH) : NULL;
		if (!old) {
			ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_CHILD_SA_NOT_FOUND, NULL, 0);
			return;
		}
		old_spi = old->spi_in;
		old_ah = old->ah;   /* old may move: the answer adds a child */
	}
	ike_random(e, nr, sizeof nr);
	ike_out_begin(e, sa, IKE_CREATE_CHILD_SA, true, e->msg.msg_id);
	ike_msg_add(&e->inner, IKE_PL_NONCE)->u.nonce = (struct ike_span){ nr, sizeof nr };
	err = ike_child_answer(e, now_ms, sa, true, ike_msg_find(&e->msg, IKE_PL_KE, 0, 0), ni->u.nonce.p,
		ni->u.nonce.len, nr, sizeof nr, old, &chosen);
	if (err) {
		g[0] = (uint8_t)(chosen.dh >> 8), g[1] = (uint8_t)chosen.dh;
		ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, err, err == IKE_N_INVALID_KE_PAYLOAD ? g : NULL,
			err == IKE_N_INVALID_KE_PAYLOAD ? 2 : 0);
		return;
	}
	ike_out_send(e, sa, now_ms, true, REQ_NONE);
	if (!old)
		return;
	/* Their exchange rekeys a child ours rekeys too: remember its lower nonce for the tie-break. */
	if (sa->req.kind == REQ_CHILD_REKEY && sa->req.old_spi_in == old_spi && sa->req.child.ah == old_ah) {
		bool theirs_lower = ike_nonce_cmp(ni->u.nonce.p, ni->u.nonce.len, nr, sizeof nr) < 0;

		sa->coll.old_spi_in = old_spi;
		sa->coll.min_len = theirs_lower ? ni->u.nonce.len : sizeof nr;
		memcpy(sa->coll.min_nonce, theirs_lower ? ni->u.nonce.p : nr, sa->coll.min_len);
	}
	/* The initiator of the rekey deletes the old pair; if it never does, we do, later. */
	rekeyed(e, now_ms, sa, old_spi, old_ah, 5 * IKE_OLD_CHILD_GRACE_MS);
}

/* ---- IKE SA rekey ---- */

static int ike_ccs_ike_rekey_group(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint16_t group);

int ike_ccs_start_ike_rekey(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	uint16_t group;

	if (sa->req.kind || sa->state != IKE_SA_ESTABLISHED || !p)
		return -IKE_E_BUSY;
	group = ike_proposals_have_dh(p->conf.ike, p->conf.n_ike, sa->dh_group) ? sa->dh_group :
		ike_proposals_first_dh(p->conf.ike, p->conf.n_ike, false);
	return ike_ccs_ike_rekey_group(e, now_ms, sa, group);
}

static int ike_ccs_ike_rekey_group(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint16_t group)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	int rc;

	ike_log(e, 6, "IKE SA %llu: rekeying the IKE SA", (unsigned long long)sa->id);
	ike_out_begin(e, sa, IKE_CREATE_CHILD_SA, false, sa->next_msg_id++);
	ike_random_spi(e, sa->req.new_spi);
	rc = ike_sa_payload_add(&e->inner, p->conf.ike, p->conf.n_ike, IKE_PROTO_IKE, sa->req.new_spi, IKE_SPI_LEN,
		true);
	if (rc == 0)
		rc = nonce_and_ke(e, sa, group, p->conf.legacy_groups);
	if (rc == 0)
		rc = ike_out_send(e, sa, now_ms, true, REQ_IKE_REKEY);
	if (rc < 0) {
		ike_req_done(sa);
		return rc;
	}
	sa->state = IKE_SA_REKEYING;
	return 0;
}

/* The new IKE SA of a rekey, keyed, talking to the same peer as old. take_children: old's children move to it
 * now (no collision; else they wait on old until the collision is resolved). NULL on failure (nothing changed). */
static struct ike_sa *ike_successor(struct ike_engine *e, uint64_t now_ms, struct ike_sa *old, bool initiator,
	const struct ike_choice *c, const uint8_t *spi_i, const uint8_t *spi_r, const uint8_t *ni, size_t ni_len,
	const uint8_t *nr, size_t nr_len, size_t gir_len, bool take_children)
{
	const struct ike_peer *p = ike_sa_peer(e, old);
	struct ike_sa *sa = ike_sa_new(e, now_ms, p, initiator);

	if (!sa)
		return NULL;
	sa->peer_id = old->peer_id;
	sa->suite = c->suite;
	sa->dh_group = c->dh;
	memcpy(sa->spi_i, spi_i, IKE_SPI_LEN);
	memcpy(sa->spi_r, spi_r, IKE_SPI_LEN);
	memcpy(sa->ni, ni, ni_len);
	sa->ni_len = ni_len;
	memcpy(sa->nr, nr, nr_len);
	sa->nr_len = nr_len;
	if (ike_rekey_keys(old, sa, e->gir, gir_len) < 0) {
		ike_sa_free(e, sa);
		return NULL;
	}
	if (take_children)
		ike_sa_move_children(old, sa);
	else
		ike_sa_inherit(old, sa);
	ike_sa_index(e, sa);
	ike_sa_established(e, now_ms, sa);
	if (take_children)
		ike_emit(e, IKE_EV_REKEYED, sa, 0, 0, 0, "IKE SA rekeyed");
	return sa;
}

/* The old SA waits for the peer's DELETE (and goes by itself if that never comes). */
static void await_delete(struct ike_sa *sa, uint64_t now_ms)
{
	sa->state = IKE_SA_DELETING;
	sa->delete_at_ms = now_ms + IKE_DELETE_WAIT_MS;
}

/* The peer's new IKE SA of a collision can take the children: it is up and not itself going (a DELETE of ours
 * or a failure would take them with it). */
static bool can_adopt(const struct ike_sa *theirs)
{
	return theirs && (theirs->state == IKE_SA_ESTABLISHED || theirs->state == IKE_SA_REKEYING);
}

/* The children of a rekeyed IKE SA go to the survivor of a collision. */
static void hand_over(struct ike_engine *e, struct ike_sa *old, struct ike_sa *to)
{
	ike_sa_move_children(old, to);  /* same identities as to's (both succeed old): its index entries hold */
	memset(&old->ike_coll, 0, sizeof old->ike_coll);
	ike_emit(e, IKE_EV_REKEYED, to, 0, 0, 0, "IKE SA rekeyed (simultaneous rekey resolved)");
}

/* The peer's new SA is going: the peer moves the children into it and loses them with it; so do we, with no
 * IKE_EV_REKEYED for an SA that will not carry them. */
static void end_with(struct ike_sa *old, struct ike_sa *going)
{
	ike_sa_move_children(old, going);
	memset(&old->ike_coll, 0, sizeof old->ike_coll);
}

void ike_rekey_collision_adopt(struct ike_engine *e, struct ike_sa *old)
{
	struct ike_sa *theirs = old->ike_coll.theirs ? ike_sa_find_id(e, old->ike_coll.theirs) : NULL;

	if (can_adopt(theirs) && (old->n_children || old->n_pending)) {
		ike_log(e, 6, "IKE SA %llu: the peer's new IKE SA %llu takes over (simultaneous rekey)",
			(unsigned long long)old->id, (unsigned long long)theirs->id);
		hand_over(e, old, theirs);
	}
	memset(&old->ike_coll, 0, sizeof old->ike_coll);
}

/* RFC 7296 2.8.2: both rekeyed the IKE SA at once and both exchanges completed. The new SA made by the exchange
 * with the lowest of the four nonces is redundant: whoever initiated that exchange deletes it; the other new SA
 * takes the children and its initiator deletes the old SA. The peer orders the nonces alike and acts on that, so
 * we follow the rule even when the peer's new SA is going already (our DELETE of it, e.g. our operator's): keeping
 * ours instead would leave us an IKE SA the peer deletes. */
static void ike_collision_resolve(struct ike_engine *e, uint64_t now_ms, struct ike_sa *old, struct ike_sa *mine,
	struct ike_sa *theirs, const uint8_t *nr, size_t nr_len)
{
	const uint8_t *lo = old->req.nonce;
	size_t lo_len = sizeof old->req.nonce;
	bool ours_redundant;

	if (ike_nonce_cmp(nr, nr_len, lo, lo_len) < 0)
		lo = nr, lo_len = nr_len;
	ours_redundant = ike_nonce_cmp(lo, lo_len, old->ike_coll.min_nonce, old->ike_coll.min_len) < 0;
	ike_req_done(old);
	if (ours_redundant) {
		ike_log(e, 6, "IKE SA %llu: simultaneous rekey, our new IKE SA %llu is redundant, the peer's %llu stays%s",
			(unsigned long long)old->id, (unsigned long long)mine->id, (unsigned long long)theirs->id,
			can_adopt(theirs) ? "" : " (but is going: the children go with it, as on the peer)");
		if (can_adopt(theirs))
			hand_over(e, old, theirs);
		else
			end_with(old, theirs);
		if (ike_info_send_delete(e, now_ms, mine, NULL) == 0)
			mine->state = IKE_SA_DELETING;
		else
			ike_sa_fail(e, now_ms, mine, IKE_EV_SA_DOWN, "redundant (simultaneous rekey)");
		await_delete(old, now_ms);
		return;
	}
	ike_log(e, 6, "IKE SA %llu: simultaneous rekey, our new IKE SA %llu stays, the peer deletes its %llu",
		(unsigned long long)old->id, (unsigned long long)mine->id, (unsigned long long)theirs->id);
	hand_over(e, old, mine);
	await_delete(theirs, now_ms);
	if (ike_info_send_delete(e, now_ms, old, NULL) == 0)
		old->state = IKE_SA_DELETING;
	else
		await_delete(old, now_ms);
}

static void ike_rekey_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	const struct ike_payload *nr = ike_msg_find(&e->msg, IKE_PL_NONCE, 0, 0);
	const struct ike_payload *ke = ike_msg_find(&e->msg, IKE_PL_KE, 0, 0);
	const struct ike_payload *n = ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_INVALID_KE_PAYLOAD, 0);
	struct ike_sa *theirs = sa->ike_coll.theirs ? ike_sa_find_id(e, sa->ike_coll.theirs) : NULL;
	struct ike_sa *mine;
	struct ike_choice c;
	int gl = -1;

	sa->state = IKE_SA_ESTABLISHED;
	if (n && n->u.notify.data.len == 2 && p && !theirs) {
		uint16_t g = (uint16_t)(n->u.notify.data.p[0] << 8 | n->u.notify.data.p[1]);

		ike_req_done(sa);
		if (g != sa->dh_group && ike_proposals_have_dh(p->conf.ike, p->conf.n_ike, g) &&
		    ike_ccs_ike_rekey_group(e, now_ms, sa, g) == 0)
			return;
	} else if (p && nr && ke && nr->u.nonce.len >= IKE_NONCE_MIN && ke->u.ke.group == sa->req.dh_group &&
		   ike_proposal_accept(&e->msg, p->conf.ike, p->conf.n_ike, IKE_PROTO_IKE, p->conf.legacy_groups, true,
			&c) == 0 && c.spi_len == IKE_SPI_LEN && c.dh == sa->req.dh_group) {
		gl = ike_dh_shared(sa->req.dh, ke->u.ke.data.p, ke->u.ke.data.len, e->gir, sizeof e->gir);
	}
	mine = gl > 0 ? ike_successor(e, now_ms, sa, true, &c, sa->req.new_spi, c.spi, sa->req.nonce,
		sizeof sa->req.nonce, nr->u.nonce.p, nr->u.nonce.len, (size_t)gl, !theirs) : NULL;
	OPENSSL_cleanse(e->gir, sizeof e->gir);
	if (mine && theirs) {
		ike_collision_resolve(e, now_ms, sa, mine, theirs, nr->u.nonce.p, nr->u.nonce.len);
		return;
	}
	if (mine) {
		ike_req_done(sa);
		memset(&sa->ike_coll, 0, sizeof sa->ike_coll);
		/* The rekey's initiator deletes the old IKE SA. */
		if (ike_info_send_delete(e, now_ms, sa, NULL) == 0)
			sa->state = IKE_SA_DELETING;
		return;
	}
	ike_req_done(sa);
	if (can_adopt(theirs)) {
		/* The peer finished its rekey before it saw ours (RFC 7296 2.8.2's special case): its SA stays. */
		ike_log(e, 6, "IKE SA %llu: our IKE SA rekey refused, the peer's new IKE SA %llu takes over",
			(unsigned long long)sa->id, (unsigned long long)theirs->id);
		hand_over(e, sa, theirs);
		await_delete(sa, now_ms);
		return;
	}
	memset(&sa->ike_coll, 0, sizeof sa->ike_coll);   /* the peer's new SA, if any, is going: ours keeps them */
	ike_log(e, 4, "IKE SA %llu: IKE SA rekey refused, retrying later", (unsigned long long)sa->id);
	/* Jittered, so two sides refusing each other's rekey for another reason do not collide again. */
	sa->rekey_at_ms = now_ms + RETRY_LATER_MS + ike_jitter(e, 30);
}

/* Their request rekeys the IKE SA while our own rekey of it is outstanding: answered like any other (RFC 7296
 * 2.8.2); the tie-break waits for our response. */
static bool ike_rekey_collides(const struct ike_sa *sa)
{
	return sa->state == IKE_SA_REKEYING && sa->req.kind == REQ_IKE_REKEY && !sa->ike_coll.theirs;
}

static void ike_rekey_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	const struct ike_payload *ni = ike_msg_find(&e->msg, IKE_PL_NONCE, 0, 0);
	const struct ike_payload *ke = ike_msg_find(&e->msg, IKE_PL_KE, 0, 0);
	uint8_t nr[IKE_NONCE_LEN], spi_r[IKE_SPI_LEN], g[2];
	bool collision = ike_rekey_collides(sa);
	struct ike_dh *dh = NULL;
	struct ike_choice c;
	struct ike_sa *next;
	int kl = -1, gl = -1;

	/* Another exchange of ours in flight, or the SA already rekeyed or going: the peer retries later. */
	if ((!collision && (sa->state != IKE_SA_ESTABLISHED || sa->req.kind)) || !p || !ni ||
	    ni->u.nonce.len < IKE_NONCE_MIN) {
		ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_TEMPORARY_FAILURE, NULL, 0);
		return;
	}
	if (ike_proposal_choose(&e->msg, p->conf.ike, p->conf.n_ike, IKE_PROTO_IKE, p->conf.legacy_groups, true,
		&c) < 0 || c.spi_len != IKE_SPI_LEN) {
		ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		return;
	}
	if (!ke || ke->u.ke.group != c.dh) {
		g[0] = (uint8_t)(c.dh >> 8), g[1] = (uint8_t)c.dh;
		ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_INVALID_KE_PAYLOAD, g, 2);
		return;
	}
	if (ike_dh_new(c.dh, p->conf.legacy_groups, &dh) == 0 &&
	    (kl = ike_dh_public(dh, e->ke_buf, sizeof e->ke_buf)) >= 0)
		gl = ike_dh_shared(dh, ke->u.ke.data.p, ke->u.ke.data.len, e->gir, sizeof e->gir);
	ike_dh_free(dh);
	ike_random(e, nr, sizeof nr);
	ike_random_spi(e, spi_r);
	next = gl > 0 ? ike_successor(e, now_ms, sa, false, &c, c.spi, spi_r, ni->u.nonce.p, ni->u.nonce.len, nr,
		sizeof nr, (size_t)gl, !collision) : NULL;
	OPENSSL_cleanse(e->gir, sizeof e->gir);
	if (!next) {
		ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		return;
	}
	ike_out_begin(e, sa, IKE_CREATE_CHILD_SA, true, e->msg.msg_id);
	ike_choice_add(&e->inner, &c, IKE_PROTO_IKE, spi_r, IKE_SPI_LEN);
	ike_msg_add(&e->inner, IKE_PL_NONCE)->u.nonce = (struct ike_span){ nr, sizeof nr };
	ike_msg_add(&e->inner, IKE_PL_KE)->u.ke = (struct ike_ke){ c.dh, { e->ke_buf, (uint32_t)kl } };
	ike_out_send(e, sa, now_ms, true, REQ_NONE);
	if (collision) {
		bool theirs_lower = ike_nonce_cmp(ni->u.nonce.p, ni->u.nonce.len, nr, sizeof nr) < 0;

		ike_log(e, 6, "IKE SA %llu: simultaneous IKE SA rekey: the peer's new IKE SA is %llu",
			(unsigned long long)sa->id, (unsigned long long)next->id);
		sa->ike_coll.theirs = next->id;
		sa->ike_coll.min_len = theirs_lower ? ni->u.nonce.len : sizeof nr;
		memcpy(sa->ike_coll.min_nonce, theirs_lower ? ni->u.nonce.p : nr, sa->ike_coll.min_len);
		return;
	}
	await_delete(sa, now_ms);
}

/* ---- dispatch ---- */

static bool rekeys_ike(const struct ike_msg *m)
{
	const struct ike_payload *sa = ike_msg_find(m, IKE_PL_SA, 0, 0);

	return sa && sa->u.sa.n_proposals && sa->u.sa.proposals[0].protocol == IKE_PROTO_IKE;
}

void ike_ccs_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	if (rekeys_ike(&e->msg))
		ike_rekey_request(e, now_ms, sa);
	else if (sa->state != IKE_SA_ESTABLISHED && sa->state != IKE_SA_REKEYING)
		ike_send_error(e, now_ms, sa, IKE_CREATE_CHILD_SA, IKE_N_TEMPORARY_FAILURE, NULL, 0);
	else
		child_request_in(e, now_ms, sa);
}

void ike_ccs_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	switch (sa->req.kind) {
	case REQ_CHILD_NEW:
	case REQ_CHILD_REKEY:
		child_response(e, now_ms, sa);
		break;
	case REQ_IKE_REKEY:
		ike_rekey_response(e, now_ms, sa);
		break;
	default:
		break;
	}
}
