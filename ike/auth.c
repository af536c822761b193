/* auth.c: IKE_AUTH with pre-shared keys as initiator and responder, identities, and the first child SA. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "sa.h"

struct id_buf {
	uint8_t body[4 + IKE_IDENT_MAX];    /* ID payload body: type, 3 reserved, data */
	size_t len;
};

/* Our identity: the configured text, or our address. */
static int local_id(const struct ike_peer *p, const struct ike_sa *sa, struct id_buf *out)
{
	struct ike_ident id;

	memset(out, 0, sizeof *out);
	if (!p->conf.local_id[0] && p->conf.auth == IKE_AUTH_PUBKEY && p->cred &&
	    ike_cred_subject(p->cred, &id) == 0) {
		out->body[0] = id.type;
		memcpy(out->body + 4, id.data, id.len);
		out->len = 4 + id.len;
		return 0;
	}
	if (!p->conf.local_id[0]) {
		out->body[0] = sa->local.family == 4 ? IKE_ID_IPV4_ADDR : IKE_ID_IPV6_ADDR;
		out->len = 4 + (sa->local.family == 4 ? 4 : 16);
		memcpy(out->body + 4, sa->local.addr, out->len - 4);
		return 0;
	}
	if (ike_id_parse(p->conf.local_id, &id) < 0 || id.type == IKE_ID_ANY)
		return -IKE_E_BAD_PARAM;
	out->body[0] = id.type;
	memcpy(out->body + 4, id.data, id.len);
	out->len = 4 + id.len;
	return 0;
}

/* The peer's identity is the configured one (empty or %any: anything; else ike_id_match). */
static bool remote_id_ok(const struct ike_peer *p, const struct ike_sa *sa, const struct ike_id *got)
{
	struct ike_ident want, have;
	const char *t = p->conf.remote_id;

	if (!t[0] && p->conf.auth == IKE_AUTH_PUBKEY)
		return true; /* the certificate must vouch for it (cert_check) */
	if (!t[0]) {
		size_t n = sa->remote.family == 4 ? 4 : 16;

		/* No identity configured: the peer names itself by its address, or anything goes. */
		return (got->type != IKE_ID_IPV4_ADDR && got->type != IKE_ID_IPV6_ADDR) ||
		       (got->data.len == n && !memcmp(got->data.p, sa->remote.addr, n)) || sa->nat_remote;
	}
	if (!strcmp(t, "%any"))
		return true;
	return ike_id_parse(t, &want) == 0 && ike_id_from_payload(got->type, got->data.p, got->data.len, &have) == 0 &&
	       ike_id_match(&want, &have);
}

static void id_payload_add(struct ike_msg *m, uint8_t type, const struct id_buf *id)
{
	ike_msg_add(m, type)->u.id = (struct ike_id){ id->body[0], { id->body + 4, (uint32_t)(id->len - 4) } };
}

/* AUTH for PSK: prf(prf(PSK, pad), <init message> | <peer's nonce> | prf(SK_p, ID body)). */
static int psk_octets(struct ike_engine *e, const struct ike_sa *sa, bool ours, const uint8_t *id_body,
	size_t id_len)
{
	bool initiator_side = ours == sa->initiator;
	const uint8_t *msg = initiator_side ? sa->init_req : sa->init_resp;
	size_t msg_len = initiator_side ? sa->init_req_len : sa->init_resp_len;
	const uint8_t *nonce = initiator_side ? sa->nr : sa->ni;
	size_t nonce_len = initiator_side ? sa->nr_len : sa->ni_len;
	const uint8_t *sk_p = initiator_side ? sa->keys.sk_pi : sa->keys.sk_pr;

	return ike_signed_octets(sa->suite.prf, msg, msg_len, nonce, nonce_len, sk_p, sa->keys.prf_len, id_body, id_len,
		e->octets, sizeof e->octets);
}

struct auth_out {
	uint8_t method;
	uint8_t data[IKE_AUTH_SIG_MAX];
	size_t len;
};

/* Our AUTH payload: the PSK's MAC or our key's signature over the signed octets. */
static int auth_make(struct ike_engine *e, const struct ike_sa *sa, const struct ike_peer *p,
	const struct id_buf *id, struct auth_out *out)
{
	int n = psk_octets(e, sa, true, id->body, id->len);

	if (n < 0)
		return -IKE_E_CRYPTO;
	if (p->conf.auth == IKE_AUTH_PUBKEY) {
		if (!p->cred)
			return -IKE_E_BAD_PARAM;
		n = ike_auth_sign(p->cred, sa->peer_hashes, false, e->octets, (size_t)n, &out->method, out->data,
			sizeof out->data);
	} else {
		out->method = IKE_AUTH_METHOD_PSK;
		n = ike_auth_psk(sa->suite.prf, p->psk, p->conf.psk_len, e->octets, (size_t)n, out->data);
	}
	if (n < 0)
		return -IKE_E_CRYPTO;
	out->len = (size_t)n;
	return 0;
}

/* ID, our certificates (PUBKEY), AUTH: what proves who we are, into the message being built. */
static void auth_payloads(struct ike_engine *e, const struct ike_peer *p, uint8_t id_type, const struct id_buf *id,
	const struct auth_out *auth, bool initial_contact)
{
	id_payload_add(&e->inner, id_type, id);
	for (size_t i = 0; p->conf.auth == IKE_AUTH_PUBKEY && p->cred && i < ike_cred_chain_len(p->cred); i++) {
		const uint8_t *der;
		size_t len;

		if (ike_cred_cert(p->cred, i, &der, &len) == 0)
			ike_msg_add(&e->inner, IKE_PL_CERT)->u.cert =
				(struct ike_cert){ IKE_CERT_X509_SIG, { der, (uint32_t)len } };
	}
	if (id_type == IKE_PL_IDI)
		ike_init_auth_notifies(e, p, true);
	if (initial_contact)
		ike_out_notify(&e->inner, IKE_N_INITIAL_CONTACT, 0, NULL, 0, NULL, 0);
	ike_msg_add(&e->inner, IKE_PL_AUTH)->u.auth =
		(struct ike_auth){ auth->method, { auth->data, (uint32_t)auth->len } };
}

/* PUBKEY: the peer's certificate chains to our CAs, vouches for its identity, and its key signed the octets. */
static int cert_check(struct ike_engine *e, const struct ike_peer *p, const struct ike_id *id,
	const struct ike_auth *auth, size_t octets_len)
{
	const uint8_t *chain[8];
	size_t chain_len[8], n = 0;
	const struct ike_payload *ee = ike_msg_find(&e->msg, IKE_PL_CERT, 0, 0), *c;
	struct ike_ident have;
	int64_t wall = e->cb.wall_clock ? e->cb.wall_clock(e->cb.ctx) : (int64_t)time(NULL);

	if (!ee || ee->u.cert.encoding != IKE_CERT_X509_SIG || !p->cas)
		return -IKE_E_AUTH_FAILED;
	for (c = ike_msg_find(&e->msg, IKE_PL_CERT, 0, (size_t)(ee - e->msg.payloads) + 1); c && n < 8;
	     c = ike_msg_find(&e->msg, IKE_PL_CERT, 0, (size_t)(c - e->msg.payloads) + 1)) {
		chain[n] = c->u.cert.data.p;
		chain_len[n++] = c->u.cert.data.len;
	}
	if (ike_cert_verify(p->cas, ee->u.cert.data.p, ee->u.cert.data.len, chain, chain_len, n, wall) < 0) {
		ike_log(e, 4, "peer %u: its certificate does not validate", p->conf.id);
		return -IKE_E_AUTH_FAILED;
	}
	if (ike_id_from_payload(id->type, id->data.p, id->data.len, &have) < 0 ||
	    ike_id_matches_cert(&have, ee->u.cert.data.p, ee->u.cert.data.len) < 0) {
		ike_log(e, 4, "peer %u: its certificate does not vouch for its identity", p->conf.id);
		return -IKE_E_AUTH_FAILED;
	}
	return ike_auth_verify(ee->u.cert.data.p, ee->u.cert.data.len, auth->method, auth->data.p, auth->data.len,
		e->octets, octets_len) == 0 ? 0 : -IKE_E_AUTH_FAILED;
}

/* Checks the peer's IDx and AUTH; 0 or -IKE_E_AUTH_FAILED. */
static int auth_check(struct ike_engine *e, const struct ike_sa *sa, const struct ike_peer *p, uint8_t id_type)
{
	const struct ike_payload *id = ike_msg_find(&e->msg, id_type, 0, 0);
	const struct ike_payload *auth = ike_msg_find(&e->msg, IKE_PL_AUTH, 0, 0);
	int n;

	if (!id || !auth || id->u.id.data.len > IKE_IDENT_MAX)
		return -IKE_E_AUTH_FAILED;
	if (!remote_id_ok(p, sa, &id->u.id)) {
		ike_log(e, 4, "IKE SA %llu: the peer's identity is not the configured one", (unsigned long long)sa->id);
		return -IKE_E_AUTH_FAILED;
	}
	if ((p->conf.auth == IKE_AUTH_PSK) != (auth->u.auth.method == IKE_AUTH_METHOD_PSK))
		return -IKE_E_AUTH_FAILED;
	/* The ID payload body as received: its generic header is 4 bytes before the type byte. */
	n = psk_octets(e, sa, false, id->u.id.data.p - 4, id->u.id.data.len + 4);
	if (n < 0)
		return -IKE_E_AUTH_FAILED;
	if (p->conf.auth == IKE_AUTH_PUBKEY)
		return cert_check(e, p, &id->u.id, &auth->u.auth, (size_t)n);
	return ike_auth_psk_verify(sa->suite.prf, p->psk, p->conf.psk_len, e->octets, (size_t)n, auth->u.auth.data.p,
		auth->u.auth.data.len) == 0 ? 0 : -IKE_E_AUTH_FAILED;
}

static bool other_sa_with(struct ike_engine *e, const struct ike_sa *sa)
{
	for (struct ike_sa *o = e->sas; o; o = o->next)
		if (o != sa && o->peer_id == sa->peer_id && o->state >= IKE_SA_ESTABLISHED)
			return true;
	return false;
}

/* The identities this SA authenticated: ours as sent, the peer's as received (its ID payload of type id_type). */
static void remember_ids(struct ike_engine *e, struct ike_sa *sa, const struct id_buf *local, uint8_t id_type)
{
	const struct ike_payload *id = ike_msg_find(&e->msg, id_type, 0, 0);

	sa->local_ident.type = local->body[0];
	sa->local_ident.len = (uint16_t)(local->len - 4);
	memcpy(sa->local_ident.data, local->body + 4, local->len - 4);
	if (id && id->u.id.data.len <= IKE_IDENT_MAX) { /* else auth_check refused it already */
		sa->remote_ident.type = id->u.id.type;
		sa->remote_ident.len = (uint16_t)id->u.id.data.len;
		memcpy(sa->remote_ident.data, id->u.id.data.p, id->u.id.data.len);
	}
	ike_sa_index(e, sa);
}

static bool same_ident(const struct ike_ident *a, const struct ike_ident *b)
{
	return a->type == b->type && a->len == b->len && !memcmp(a->data, b->data, a->len);
}

/* INITIAL_CONTACT: the peer restarted, so the SAs between the same two authenticated identities are stale
 * (RFC 7296 2.4). Other identities behind the same peer configuration (a %any responder) keep theirs. Our own
 * start towards that peer, not yet authenticated, crossed this one (both ends restarted it, e.g. after DPD):
 * it goes too, so one SA is left. */
static void initial_contact(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	/* The SAs with the same remote identity are in one chain of the index; failing one frees only that one. */
	for (struct ike_sa *o = ike_sa_chain_ident(e, &sa->remote_ident), *next; o; o = next) {
		next = o->idx_next[IKE_IDX_IDENT];
		if (o != sa && same_ident(&o->remote_ident, &sa->remote_ident) &&
		    same_ident(&o->local_ident, &sa->local_ident))
			ike_sa_fail(e, now_ms, o, IKE_EV_SA_DOWN, "replaced (INITIAL_CONTACT)");
	}
	for (struct ike_sa *o = e->n_unauth_initiators ? e->sas : NULL, *next; o; o = next) {
		next = o->next;
		if (o != sa && !o->remote_ident.len && o->initiator && o->peer_id == sa->peer_id)
			ike_sa_fail(e, now_ms, o, IKE_EV_SA_DOWN, "replaced (INITIAL_CONTACT)");
	}
}

/* ---- the child SA inside IKE_AUTH and CREATE_CHILD_SA: offer (initiator) ---- */

uint32_t ike_new_spi(struct ike_engine *e)
{
	uint32_t spi = 0;

	if (e->cb.spi_alloc) {
		if (e->cb.spi_alloc(e->cb.ctx, &spi) < 0)
			return 0;
	} else {
		while (spi < 256)
			ike_random(e, (uint8_t *)&spi, sizeof spi);
	}
	return spi;
}

/* The child part of a request: SA, TSi, TSr (and USE_TRANSPORT_MODE) for child key of policy pol; context into
 * sa->req. A clone child's selectors on the cloned side are its host's alone. */
int ike_child_offer(struct ike_engine *e, struct ike_sa *sa, const struct ike_policy *pol,
	const struct ike_child_key *key, bool with_dh, uint32_t spi_in)
{
	struct ike_req *r = &sa->req;
	uint8_t *spi = e->octets; /* lives until the message is encoded */
	const struct ike_proposal_conf *props;
	size_t n, n_props, first = 0;

	if (!spi_in)
		return -IKE_E_LIMIT;
	spi[0] = (uint8_t)(spi_in >> 24), spi[1] = (uint8_t)(spi_in >> 16), spi[2] = (uint8_t)(spi_in >> 8);
	spi[3] = (uint8_t)spi_in;
	r->child = *key;
	r->spi_in = spi_in;
	if (sa->acq_family && sa->first.policy_id == key->policy_id && sa->first.host_family == key->host_family &&
	    !memcmp(sa->first.host, key->host, sizeof key->host)) {
		struct ike_ts_conf *t = &r->ts_i[first++];

		*t = (struct ike_ts_conf){ .family = sa->acq_family, .port_hi = 65535 };
		memcpy(t->lo, sa->acq_src, 16), memcpy(t->hi, sa->acq_src, 16);
		t = &r->ts_r[0];
		*t = (struct ike_ts_conf){ .family = sa->acq_family, .port_hi = 65535 };
		memcpy(t->lo, sa->acq_dst, 16), memcpy(t->hi, sa->acq_dst, 16);
	}
	n = ike_ts_to_host(pol->conf.local_ts, pol->conf.n_local_ts, pol->conf.clone == IKE_CLONE_SRC ? key : NULL,
		r->ts_i + first, IKE_MAX_TS_CONF - first);
	r->n_ts_i = first + n;
	n = ike_ts_to_host(pol->conf.remote_ts, pol->conf.n_remote_ts, pol->conf.clone == IKE_CLONE_DST ? key : NULL,
		r->ts_r + first, IKE_MAX_TS_CONF - first);
	r->n_ts_r = first + n;
	if (!r->n_ts_i || !r->n_ts_r)
		return -IKE_E_TS_UNACCEPTABLE;
	if (pol->conf.transport)
		ike_out_notify(&e->inner, IKE_N_USE_TRANSPORT_MODE, 0, NULL, 0, NULL, 0);
	props = ike_policy_props(pol, key->ah, &n_props);
	if (ike_sa_payload_add(&e->inner, props, n_props, IKE_CHILD_PROTO(key->ah), spi, 4, with_dh) < 0)
		return -IKE_E_TOO_MANY;
	if (ike_ts_payload_add(&e->inner, IKE_PL_TSI, r->ts_i, r->n_ts_i) < 0 ||
	    ike_ts_payload_add(&e->inner, IKE_PL_TSR, r->ts_r, r->n_ts_r) < 0)
		return -IKE_E_TOO_MANY;
	return 0;
}

/* The child IKE_AUTH carries: the one that started the SA, else the peer's first policy that needs no clone
 * host (a clone policy comes up for a host, from an ACQUIRE). */
static const struct ike_policy *first_policy(struct ike_engine *e, struct ike_sa *sa)
{
	const struct ike_policy *pol = sa->first.policy_id ? ike_policy_find(e, sa->first.policy_id) : NULL;

	for (size_t i = 0; !pol && i < e->n_policies; i++)
		if (e->policies[i].conf.peer_id == sa->peer_id && e->policies[i].conf.clone == IKE_CLONE_NONE) {
			pol = &e->policies[i];
			sa->first = (struct ike_child_key){ .policy_id = pol->conf.id, .ah = ike_policy_first_ah(pol) };
		}
	return pol;
}

int ike_auth_start(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	const struct ike_policy *pol = first_policy(e, sa);
	static struct auth_out auth;
	struct id_buf id;
	int rc;

	if (!p || local_id(p, sa, &id) < 0)
		return -IKE_E_BAD_PARAM;
	rc = auth_make(e, sa, p, &id, &auth);
	if (rc < 0)
		return rc;
	ike_out_begin(e, sa, IKE_AUTH, false, sa->next_msg_id++);
	auth_payloads(e, p, IKE_PL_IDI, &id, &auth, !other_sa_with(e, sa));
	if (pol) {
		rc = ike_child_offer(e, sa, pol, &sa->first, false, ike_child_spi(e, sa, &sa->first));
		if (rc < 0)
			return rc;
	}
	return ike_out_send(e, sa, now_ms, true, REQ_AUTH);
}

/* ---- the child SA: choose (responder) ---- */

/* A clone policy's child is for one host: the narrowed selectors of its cloned side all name the same single
 * address. That host into key; false when they do not. */
static bool clone_host_of(const struct ike_child_conf *c, const struct ike_ts_conf *ts_i, size_t n_i,
	const struct ike_ts_conf *ts_r, size_t n_r, struct ike_child_key *key)
{
	/* The initiator's TSi is our remote side: a clone dst policy here answers a clone src one there. */
	const struct ike_ts_conf *ts = c->clone == IKE_CLONE_DST ? ts_i : ts_r;
	size_t n = c->clone == IKE_CLONE_DST ? n_i : n_r, len;

	if (c->clone == IKE_CLONE_NONE)
		return true;
	len = ts[0].family == 4 ? 4 : 16;
	for (size_t i = 0; i < n; i++)
		if (ts[i].family != ts[0].family || memcmp(ts[i].lo, ts[i].hi, len) || memcmp(ts[i].lo, ts[0].lo, len))
			return false;
	key->host_family = ts[0].family;
	memcpy(key->host, ts[0].lo, len);
	return true;
}

/* The first of the peer's policies whose selectors meet the request's (for a clone policy: one host's); its
 * narrowed selectors in ts_i/ts_r, the child's policy and host in key. */
static const struct ike_policy *policy_for(struct ike_engine *e, const struct ike_sa *sa, struct ike_ts_conf *ts_i,
	size_t *n_i, struct ike_ts_conf *ts_r, size_t *n_r, struct ike_child_key *key)
{
	const struct ike_ts *ti, *tr;
	size_t nti = ike_ts_from_msg(&e->msg, IKE_PL_TSI, &ti), ntr = ike_ts_from_msg(&e->msg, IKE_PL_TSR, &tr);

	for (size_t i = 0; i < e->n_policies; i++) {
		const struct ike_child_conf *c = &e->policies[i].conf;

		memset(key, 0, sizeof *key);
		if (c->peer_id == sa->peer_id &&
		    ike_ts_narrow(ti, nti, c->remote_ts, c->n_remote_ts, ts_i, n_i) == 0 &&
		    ike_ts_narrow(tr, ntr, c->local_ts, c->n_local_ts, ts_r, n_r) == 0 &&
		    clone_host_of(c, ts_i, *n_i, ts_r, *n_r, key)) {
			key->policy_id = c->id;
			return &e->policies[i];
		}
	}
	return NULL;
}

/* The protocol the request's proposals are for (RFC 7296 3.3.1: all proposals of a child SA name the same). */
static bool request_ah(const struct ike_msg *m)
{
	const struct ike_payload *pl = ike_msg_find(m, IKE_PL_SA, 0, 0);

	return pl && pl->u.sa.n_proposals && pl->u.sa.proposals[0].protocol == IKE_PROTO_AH;
}

/* The policy takes children of that protocol: ESP for esp, AH for ah, both for an AH+ESP bundle. */
static bool policy_takes(const struct ike_policy *pol, bool ah)
{
	return pol->conf.sa_type == IKE_SA_TYPE_AHESP || (pol->conf.sa_type == IKE_SA_TYPE_AH) == ah;
}

/* Answers the child part of a request (IKE_AUTH or CREATE_CHILD_SA) into e->inner; installs it.
 * Returns 0, or the notify type it answered with instead. */
/* PFS: our KE into e->inner and g^ir into e->gir from the peer's KE of the chosen group. 0 or a notify type. */
static uint16_t child_dh(struct ike_engine *e, const struct ike_payload *ke, const struct ike_choice *c,
	bool legacy, size_t *gir_len)
{
	struct ike_dh *dh = NULL;
	int kl, gl = -1;

	*gir_len = 0;
	if (!c->dh)
		return 0;
	if (!ke || ke->u.ke.group != c->dh)
		return IKE_N_INVALID_KE_PAYLOAD;
	if (ike_dh_new(c->dh, legacy, &dh) < 0)
		return IKE_N_NO_PROPOSAL_CHOSEN;
	kl = ike_dh_public(dh, e->ke_buf, sizeof e->ke_buf);
	if (kl >= 0)
		gl = ike_dh_shared(dh, ke->u.ke.data.p, ke->u.ke.data.len, e->gir, sizeof e->gir);
	ike_dh_free(dh);
	if (gl < 0)
		return IKE_N_INVALID_SYNTAX;
	ike_msg_add(&e->inner, IKE_PL_KE)->u.ke = (struct ike_ke){ c->dh, { e->ke_buf, (uint32_t)kl } };
	*gir_len = (size_t)gl;
	return 0;
}

uint16_t ike_child_answer(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool with_dh,
	const struct ike_payload *ke, const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
	const struct ike_child *replaces, struct ike_choice *chosen)
{
	size_t gir_len = 0, n_props;
	uint16_t err;
	const struct ike_peer *p = ike_sa_peer(e, sa);
	struct ike_ts_conf ts_i[IKE_MAX_TS_CONF], ts_r[IKE_MAX_TS_CONF];
	size_t n_i = 0, n_r = 0;
	struct ike_child_key key;
	const struct ike_policy *pol = policy_for(e, sa, ts_i, &n_i, ts_r, &n_r, &key);
	const struct ike_proposal_conf *props;
	bool transport = ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_USE_TRANSPORT_MODE, 0);
	uint8_t *spi = e->octets + sizeof e->octets - 4;
	uint32_t spi_in;

	memset(chosen, 0, sizeof *chosen);
	if (!pol)
		return IKE_N_TS_UNACCEPTABLE;
	key.ah = request_ah(&e->msg);
	if (!policy_takes(pol, key.ah))
		return IKE_N_NO_PROPOSAL_CHOSEN;   /* AH offered to an ESP policy or the reverse */
	/* A rekey replaces a child with one of the same policy, protocol and clone host: else an authenticated
	 * peer could retire one host's child (or the ESP half of a bundle) with another's selectors. */
	if (replaces && !ike_child_is(replaces, &key))
		return key.ah != replaces->ah ? IKE_N_NO_PROPOSAL_CHOSEN : IKE_N_TS_UNACCEPTABLE;
	uint32_t replaces_spi = replaces ? replaces->spi_in : 0;   /* establishing may move the children */
	props = ike_policy_props(pol, key.ah, &n_props);
	if (ike_proposal_choose(&e->msg, props, n_props, IKE_CHILD_PROTO(key.ah), p->conf.legacy_groups, with_dh,
		chosen) < 0)
		return IKE_N_NO_PROPOSAL_CHOSEN;
	err = child_dh(e, ke, chosen, p->conf.legacy_groups, &gir_len);
	if (err)
		return err;
	spi_in = ike_child_spi(e, sa, &key);
	if (!spi_in)
		return IKE_N_TEMPORARY_FAILURE;
	chosen->transport = transport && pol->conf.transport;
	if (ike_child_establish(e, now_ms, sa, pol, &key, chosen, spi_in, ts_i, n_i, ts_r, n_r,
		gir_len ? e->gir : NULL, gir_len, ni, ni_len, nr, nr_len, replaces_spi, false) < 0)
		return IKE_N_TEMPORARY_FAILURE;
	spi[0] = (uint8_t)(spi_in >> 24), spi[1] = (uint8_t)(spi_in >> 16), spi[2] = (uint8_t)(spi_in >> 8);
	spi[3] = (uint8_t)spi_in;
	if (chosen->transport)
		ike_out_notify(&e->inner, IKE_N_USE_TRANSPORT_MODE, 0, NULL, 0, NULL, 0);
	ike_choice_add(&e->inner, chosen, IKE_CHILD_PROTO(key.ah), spi, 4);
	ike_ts_payload_add(&e->inner, IKE_PL_TSI, ts_i, n_i);
	ike_ts_payload_add(&e->inner, IKE_PL_TSR, ts_r, n_r);
	return 0;
}

/* ---- responder ---- */

static void auth_fail_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const char *why)
{
	ike_out_begin(e, sa, IKE_AUTH, true, e->msg.msg_id);
	ike_out_notify(&e->inner, IKE_N_AUTHENTICATION_FAILED, 0, NULL, 0, NULL, 0);
	ike_out_send(e, sa, now_ms, true, REQ_NONE);
	ike_sa_fail(e, now_ms, sa, IKE_EV_AUTH_FAILED, why);
}

/* Several peers may answer at this address (or at %any): the initiator's IDi says which one it is talking to
 * (RFC 7296 2.15). A peer expecting exactly that identity beats one that takes any; one configured with the
 * initiator's address beats a %any one. NULL when no peer takes this identity. */
static const struct ike_peer *peer_by_idi(struct ike_engine *e, const struct ike_sa *sa, const struct ike_id *idi)
{
	const struct ike_peer *best = NULL;
	int best_score = -1;

	for (size_t i = 0; i < e->n_peers; i++) {
		const struct ike_peer *p = &e->peers[i];
		const char *want = p->conf.remote_id;
		bool exact = ike_addr_same(&p->conf.remote, &sa->remote);
		int score;

		if (!ike_addr_same(&p->conf.local, &sa->local) || (!exact && p->conf.remote.family) ||
		    !remote_id_ok(p, sa, idi))
			continue;
		score = (want[0] && strcmp(want, "%any") ? 2 : 0) + exact;
		if (score > best_score || (score == best_score && p->conf.id == sa->peer_id))
			best = p, best_score = score;
	}
	return best;
}

/*
 * The responder learns which peer it talks to only from IDi (peer_by_idi), after IKE_SA_INIT was answered with the
 * settings of the peer found by address (or the peer was changed since). What IKE_SA_INIT fixed must be what the
 * chosen peer would have agreed to, else a peer that requires strong crypto is reached over another's weaker suite:
 * - the IKE suite and DH group: one of its proposals has them (a legacy group only if it allows those);
 * - NAT traversal: a peer with nat_t off takes no SA that traverses a NAT, one with force_encap none without UDP
 *   encapsulation.
 * Otherwise the answer is AUTHENTICATION_FAILED: it ends the IKE SA (RFC 7296 2.21.2), where NO_PROPOSAL_CHOSEN in
 * IKE_AUTH refuses only the child. Left as negotiated, deliberately:
 * - fragmentation: announced to the initiator, which may fragment already; each fragment is protected by this
 *   SA's keys, so the chosen peer gets no weaker protection;
 * - the authentication method: auth_check verifies the chosen peer's own method and credentials (a PSK peer never
 *   takes a signature or the reverse); a CERTREQ or hash list IKE_SA_INIT did not carry can only fail it;
 * - NAT detection a peer with nat_t off skipped: the SA runs without encapsulation, which fails closed behind a NAT.
 * Lifetimes, DPD and NAT keepalives are read from the SA's peer when used, so they are the chosen peer's.
 * NULL when the peer takes the SA as IKE_SA_INIT made it, else why not.
 */
static const char *init_unacceptable(const struct ike_peer *p, const struct ike_sa *sa)
{
	if (!ike_proposals_allow(p->conf.ike, p->conf.n_ike, &sa->suite, sa->dh_group, p->conf.legacy_groups))
		return "its IKE proposals do not allow the suite IKE_SA_INIT chose";
	if (p->conf.no_nat_t && !p->conf.force_encap && (sa->nat_local || sa->nat_remote))
		return "NAT traversal is off for it and there is a NAT";
	if (p->conf.force_encap && !sa->encap)
		return "it wants UDP encapsulation, IKE_SA_INIT did not agree to it";
	return NULL;
}

void ike_auth_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	const struct ike_payload *idi = ike_msg_find(&e->msg, IKE_PL_IDI, 0, 0);
	static struct auth_out auth;
	struct ike_choice chosen;
	struct id_buf id;
	uint16_t child_err = 0;

	if (sa->initiator || sa->state != IKE_SA_AUTHENTICATING || !p) {
		ike_send_error(e, now_ms, sa, IKE_AUTH, IKE_N_INVALID_SYNTAX, NULL, 0);
		return;
	}
	if (idi && idi->u.id.data.len <= IKE_IDENT_MAX) {
		const struct ike_peer *q = peer_by_idi(e, sa, &idi->u.id);

		if (!q) {
			ike_log(e, 4, "IKE SA %llu: no peer takes the initiator's identity", (unsigned long long)sa->id);
			auth_fail_response(e, now_ms, sa, "no peer takes the initiator's identity");
			return;
		}
		if (q != p)
			ike_log(e, 6, "IKE SA %llu: the initiator's identity selects peer %u (not %u)",
				(unsigned long long)sa->id, q->conf.id, p->conf.id);
		sa->peer_id = q->conf.id;
		p = q;
	}
	const char *why = init_unacceptable(p, sa);

	if (why) {
		char text[160];

		ike_log(e, 4, "IKE SA %llu: peer %u refuses it: %s", (unsigned long long)sa->id, p->conf.id, why);
		snprintf(text, sizeof text, "peer %u: %s", p->conf.id, why);
		auth_fail_response(e, now_ms, sa, text);
		return;
	}
	if (auth_check(e, sa, p, IKE_PL_IDI) < 0 || local_id(p, sa, &id) < 0 ||
	    auth_make(e, sa, p, &id, &auth) < 0) {
		auth_fail_response(e, now_ms, sa, "the initiator's AUTH does not verify");
		return;
	}
	remember_ids(e, sa, &id, IKE_PL_IDI);
	if (ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_INITIAL_CONTACT, 0))
		initial_contact(e, now_ms, sa);
	ike_sa_established(e, now_ms, sa);
	ike_out_begin(e, sa, IKE_AUTH, true, e->msg.msg_id);
	auth_payloads(e, p, IKE_PL_IDR, &id, &auth, false);
	if (ike_msg_find(&e->msg, IKE_PL_SA, 0, 0))
		child_err = ike_child_answer(e, now_ms, sa, false, NULL, sa->ni, sa->ni_len, sa->nr, sa->nr_len, NULL,
			&chosen);
	if (child_err) {
		ike_out_notify(&e->inner, child_err, 0, NULL, 0, NULL, 0);
		ike_emit(e, IKE_EV_NEGOTIATION_FAILED, sa, 0, 0, 0, ike_notify_name(child_err));
	}
	ike_out_send(e, sa, now_ms, true, REQ_NONE);
}

/* ---- initiator ---- */

/* The child part of a response (IKE_AUTH or CREATE_CHILD_SA): accept and install, or report why not. */
int ike_child_accept(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool with_dh, const uint8_t *gir,
	size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len, uint32_t replaces)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	const struct ike_policy *pol = ike_policy_find(e, sa->req.child.policy_id);
	const struct ike_proposal_conf *props;
	size_t n_props;
	const struct ike_ts *ti, *tr;
	size_t nti = ike_ts_from_msg(&e->msg, IKE_PL_TSI, &ti), ntr = ike_ts_from_msg(&e->msg, IKE_PL_TSR, &tr);
	struct ike_ts_conf ts_i[IKE_MAX_TS_CONF], ts_r[IKE_MAX_TS_CONF];
	size_t n_i, n_r;
	struct ike_choice c;

	if (!pol || !p)
		return -IKE_E_NOT_FOUND;
	for (size_t i = 0; i < e->msg.n_payloads; i++) {
		const struct ike_payload *pl = &e->msg.payloads[i];

		if (pl->type == IKE_PL_NOTIFY && pl->u.notify.type < 16384)
			return pl->u.notify.type == IKE_N_TS_UNACCEPTABLE ? -IKE_E_TS_UNACCEPTABLE :
			       pl->u.notify.type == IKE_N_NO_PROPOSAL_CHOSEN ? -IKE_E_NO_PROPOSAL_CHOSEN : -IKE_E_STATE;
	}
	props = ike_policy_props(pol, sa->req.child.ah, &n_props);
	if (ike_proposal_accept(&e->msg, props, n_props, IKE_CHILD_PROTO(sa->req.child.ah), p->conf.legacy_groups,
		with_dh, &c) < 0 || c.spi_len != 4)
		return -IKE_E_NO_PROPOSAL_CHOSEN;
	if (!ike_ts_within(ti, nti, sa->req.ts_i, sa->req.n_ts_i) || !ike_ts_within(tr, ntr, sa->req.ts_r, sa->req.n_ts_r))
		return -IKE_E_TS_UNACCEPTABLE;
	/* RFC 7296 1.3.1: a responder that does not agree to transport mode answers without the notify. */
	c.transport = pol->conf.transport && ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_USE_TRANSPORT_MODE, 0);
	ike_ts_from_wire(ti, nti, ts_i, &n_i);
	ike_ts_from_wire(tr, ntr, ts_r, &n_r);
	return ike_child_establish(e, now_ms, sa, pol, &sa->req.child, &c, sa->req.spi_in, ts_i, n_i, ts_r, n_r, gir, gir_len, ni,
		ni_len, nr, nr_len, replaces, true);
}

void ike_auth_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	struct id_buf id;
	int rc;

	if (sa->req.kind != REQ_AUTH || !p)
		return;
	if (ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_AUTHENTICATION_FAILED, 0)) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_AUTH_FAILED, "the responder says AUTHENTICATION_FAILED");
		return;
	}
	if (auth_check(e, sa, p, IKE_PL_IDR) < 0) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_AUTH_FAILED, "the responder's AUTH does not verify");
		return;
	}
	if (local_id(p, sa, &id) == 0)
		remember_ids(e, sa, &id, IKE_PL_IDR);
	ike_sa_established(e, now_ms, sa);
	if (sa->req.child.policy_id) {
		rc = ike_child_accept(e, now_ms, sa, false, NULL, 0, sa->ni, sa->ni_len, sa->nr, sa->nr_len, 0);
		if (rc < 0) {
			char why[96];

			snprintf(why, sizeof why, "child SA for policy %u: %s", sa->req.child.policy_id, ike_strerror(rc));
			ike_emit(e, IKE_EV_NEGOTIATION_FAILED, sa, sa->req.child.policy_id, 0, 0, why);
		}
	}
	ike_req_done(sa);
}
