/* engine.c: the engine object: configuration (peers, policies), callbacks' helpers, logging and events. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "engine.h"
#include "sa.h"

void ike_log(struct ike_engine *e, int level, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (!ike_log_on(e, level))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	e->cb.log(e->cb.ctx, level, text);
}

void ike_random(struct ike_engine *e, uint8_t *buf, size_t len)
{
	if (e->cb.random)
		e->cb.random(e->cb.ctx, buf, len);
	else if (RAND_bytes(buf, (int)len) != 1)
		memset(buf, 0, len); /* never happens with OpenSSL 3's default DRBG; zero SPIs are refused later */
}

void ike_emit(struct ike_engine *e, uint8_t kind, const struct ike_sa *sa, uint32_t child_id, uint32_t spi_in,
	uint32_t spi_out, const char *text)
{
	struct ike_event ev = {
		.kind = kind, .ike_sa_id = sa ? sa->id : 0, .peer_id = sa ? sa->peer_id : 0,
		.child_id = child_id, .spi_in = spi_in, .spi_out = spi_out, .text = text ? text : "",
	};

	if (e->cb.event)
		e->cb.event(e->cb.ctx, &ev);
}

int ike_engine_new(const struct ike_engine_conf *conf, const struct ike_callbacks *cb, struct ike_engine **out)
{
	struct ike_engine *e;

	*out = NULL;
	if (!cb || !cb->send)
		return -IKE_E_BAD_PARAM;
	e = calloc(1, sizeof *e);
	if (!e)
		return -IKE_E_NOMEM;
	if (conf)
		e->conf = *conf;
	if (!e->conf.half_open_cookie_threshold)
		e->conf.half_open_cookie_threshold = 64;
	if (!e->conf.max_half_open)
		e->conf.max_half_open = 4096;
	if (!e->conf.max_sas)
		e->conf.max_sas = 65536;
	if (!e->conf.retransmit_base_ms)
		e->conf.retransmit_base_ms = 1000;
	if (!e->conf.retransmit_tries)
		e->conf.retransmit_tries = 5;
	if (!e->conf.dpd_timeout_ms)
		e->conf.dpd_timeout_ms = 10000;
	e->cb = *cb;
	e->next_sa_id = 1;
	e->deadline_stale = true;
	ike_random(e, e->cookie_secret, sizeof e->cookie_secret);
	ike_index_init(e);
	*out = e;
	return 0;
}

void ike_engine_set_out_hook(struct ike_engine *e, ike_out_hook *fn, void *ctx)
{
	e->out_hook = fn;
	e->out_hook_ctx = ctx;
}

static void peer_wipe(struct ike_peer *p)
{
	ike_cred_free(p->cred);
	ike_castore_free(p->cas);
	if (p->psk) {
		OPENSSL_cleanse(p->psk, p->conf.psk_len);
		free(p->psk);
	}
	for (size_t i = 0; i < 4; i++) {
		if (p->pems[i]) {
			OPENSSL_cleanse(p->pems[i], strlen(p->pems[i]));
			free(p->pems[i]);
		}
	}
	OPENSSL_cleanse(p, sizeof *p);
}

void ike_engine_free(struct ike_engine *e)
{
	if (!e)
		return;
	while (e->sas)
		ike_sa_free(e, e->sas);
	ike_index_free(e);
	for (size_t i = 0; i < e->n_peers; i++)
		peer_wipe(&e->peers[i]);
	free(e->peers);
	free(e->policies);
	OPENSSL_cleanse(e, sizeof *e);
	free(e);
}

struct ike_peer *ike_peer_find(struct ike_engine *e, uint32_t id)
{
	for (size_t i = 0; i < e->n_peers; i++)
		if (e->peers[i].conf.id == id)
			return &e->peers[i];
	return NULL;
}

struct ike_policy *ike_policy_find(struct ike_engine *e, uint32_t id)
{
	for (size_t i = 0; i < e->n_policies; i++)
		if (e->policies[i].conf.id == id)
			return &e->policies[i];
	return NULL;
}

static char *dup_str(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = -IKE_E_NOMEM;
	return d;
}

/* Certificate authentication: our credentials and the CA store, parsed once here. */
static int pubkey_creds(struct ike_peer *p)
{
	char err[128];

	if (!p->conf.cert_pem || !p->conf.key_pem || !p->conf.ca_pem)
		return -IKE_E_BAD_PARAM;
	if (ike_cred_new(p->conf.cert_pem, p->conf.key_pem, &p->cred, err, sizeof err) < 0 ||
	    ike_castore_new(p->conf.ca_pem, p->conf.crl_pem, &p->cas, err, sizeof err) < 0)
		return -IKE_E_BAD_PARAM;
	return 0;
}

/* The copy the engine keeps: secrets and PEMs in its own memory. */
static int peer_copy(struct ike_peer *dst, const struct ike_peer_conf *p)
{
	int rc = 0;

	memset(dst, 0, sizeof *dst);
	dst->conf = *p;
	dst->conf.name[sizeof dst->conf.name - 1] = '\0';
	dst->conf.local_id[sizeof dst->conf.local_id - 1] = '\0';
	dst->conf.remote_id[sizeof dst->conf.remote_id - 1] = '\0';
	if (p->psk && p->psk_len) {
		dst->psk = malloc(p->psk_len);
		if (!dst->psk)
			return -IKE_E_NOMEM;
		memcpy(dst->psk, p->psk, p->psk_len);
	} else {
		dst->conf.psk_len = 0;
	}
	dst->conf.psk = dst->psk;
	dst->pems[0] = dup_str(p->cert_pem, &rc);
	dst->pems[1] = dup_str(p->key_pem, &rc);
	dst->pems[2] = dup_str(p->ca_pem, &rc);
	dst->pems[3] = dup_str(p->crl_pem, &rc);
	dst->conf.cert_pem = dst->pems[0];
	dst->conf.key_pem = dst->pems[1];
	dst->conf.ca_pem = dst->pems[2];
	dst->conf.crl_pem = dst->pems[3];
	if (rc == 0 && p->auth == IKE_AUTH_PUBKEY)
		rc = pubkey_creds(dst);
	return rc;
}

static int peer_conf_check(const struct ike_peer_conf *p)
{
	if (!p->id || (p->auth != IKE_AUTH_PSK && p->auth != IKE_AUTH_PUBKEY) || p->n_ike > IKE_MAX_PROPOSAL_CONF)
		return -IKE_E_BAD_PARAM;
	if (p->auth == IKE_AUTH_PSK && !p->psk_len)
		return -IKE_E_BAD_PARAM;
	if ((p->local.family != 4 && p->local.family != 6) || (p->remote.family && p->remote.family != p->local.family))
		return -IKE_E_BAD_PARAM;
	if (p->start == IKE_START_ALWAYS && !p->remote.family)
		return -IKE_E_BAD_PARAM;
	return 0;
}

static bool peer_has_policy(const struct ike_engine *e, uint32_t peer_id)
{
	for (size_t i = 0; i < e->n_policies; i++)
		if (e->policies[i].conf.peer_id == peer_id)
			return true;
	return false;
}

int ike_peer_set(struct ike_engine *e, uint64_t now_ms, const struct ike_peer_conf *p)
{
	struct ike_peer *old, fresh;
	int rc = peer_conf_check(p);

	e->deadline_stale = true;
	if (rc < 0)
		return rc;
	rc = peer_copy(&fresh, p);
	if (rc < 0) {
		peer_wipe(&fresh);
		return rc;
	}
	old = ike_peer_find(e, p->id);
	if (old) {
		peer_wipe(old);
	} else {
		struct ike_peer *grown = realloc(e->peers, (e->n_peers + 1) * sizeof *grown);

		if (!grown) {
			peer_wipe(&fresh);
			return -IKE_E_NOMEM;
		}
		e->peers = grown;
		old = &e->peers[e->n_peers++];
	}
	*old = fresh;
	/* Without a policy yet there is nothing to carry: the first ike_child_set starts it, its child in IKE_AUTH
	 * (a peer is configured before the policies that name it, so starting here would come up childless). */
	if (old->conf.start == IKE_START_ALWAYS && !ike_sa_find_peer(e, p->id) && peer_has_policy(e, p->id))
		return ike_initiate(e, now_ms, p->id);
	return 0;
}

int ike_peer_del(struct ike_engine *e, uint64_t now_ms, uint32_t peer_id)
{
	struct ike_peer *p = ike_peer_find(e, peer_id);

	e->deadline_stale = true;
	if (!p)
		return -IKE_E_NOT_FOUND;
	for (struct ike_sa *sa = e->sas, *next; sa; sa = next) {
		next = sa->next;
		if (sa->peer_id == peer_id)
			ike_sa_terminate(e, now_ms, sa, true);
	}
	peer_wipe(p);
	*p = e->peers[--e->n_peers];
	return 0;
}

static int ts_conf_check(const struct ike_ts_conf *ts, size_t n)
{
	if (n > IKE_MAX_TS_CONF)
		return -IKE_E_BAD_PARAM;
	for (size_t i = 0; i < n; i++)
		if ((ts[i].family != 4 && ts[i].family != 6) || ts[i].port_lo > ts[i].port_hi ||
		    memcmp(ts[i].lo, ts[i].hi, ts[i].family == 4 ? 4 : 16) > 0)
			return -IKE_E_BAD_PARAM;
	return 0;
}

int ike_child_set(struct ike_engine *e, uint64_t now_ms, const struct ike_child_conf *c)
{
	struct ike_policy *pol;
	const struct ike_peer *peer;
	bool fresh;

	e->deadline_stale = true;
	for (size_t i = 0; i < c->n_esp && i < IKE_MAX_PROPOSAL_CONF; i++)
		if (c->esp[i].n_encr == 0)
			return -IKE_E_BAD_PARAM;  /* ESP proposals need a cipher */
	for (size_t i = 0; i < c->n_ah && i < IKE_MAX_PROPOSAL_CONF; i++)
		if (c->ah[i].n_encr != 0)
			return -IKE_E_BAD_PARAM;  /* AH proposals authenticate only */
	if (c->sa_type > IKE_SA_TYPE_AHESP || c->clone > IKE_CLONE_DST || (c->clone && c->transport))
		return -IKE_E_BAD_PARAM;
	if (!c->id || !c->peer_id || c->n_esp > IKE_MAX_PROPOSAL_CONF || c->n_ah > IKE_MAX_PROPOSAL_CONF ||
	    !c->n_local_ts || !c->n_remote_ts ||
	    ts_conf_check(c->local_ts, c->n_local_ts) < 0 || ts_conf_check(c->remote_ts, c->n_remote_ts) < 0)
		return -IKE_E_BAD_PARAM;
	pol = ike_policy_find(e, c->id);
	fresh = !pol;
	if (!pol) {
		struct ike_policy *grown = realloc(e->policies, (e->n_policies + 1) * sizeof *grown);

		if (!grown)
			return -IKE_E_NOMEM;
		e->policies = grown;
		pol = &e->policies[e->n_policies++];
	}
	pol->conf = *c;
	pol->conf.name[sizeof pol->conf.name - 1] = '\0';
	/* A new policy of a peer that starts at start-up comes up now: in the IKE_AUTH of a new IKE SA, or queued
	 * for a CREATE_CHILD_SA on the one there is. */
	peer = ike_peer_find(e, c->peer_id);
	if (fresh && peer && peer->conf.start == IKE_START_ALWAYS) {
		int rc = ike_initiate(e, now_ms, c->peer_id);

		if (rc < 0)   /* the policy is stored all the same; the next start-up or ACQUIRE tries again */
			ike_log(e, 4, "peer %u: starting for policy %u: %s", c->peer_id, c->id, ike_strerror(rc));
	}
	return 0;
}

int ike_child_del(struct ike_engine *e, uint64_t now_ms, uint32_t child_id)
{
	struct ike_policy *pol = ike_policy_find(e, child_id);

	e->deadline_stale = true;
	if (!pol)
		return -IKE_E_NOT_FOUND;
	for (struct ike_sa *sa = e->sas; sa; sa = sa->next)
		ike_sa_delete_policy_children(e, now_ms, sa, child_id);
	*pol = e->policies[--e->n_policies];
	return 0;
}

const char *ike_sa_state_name(uint8_t state)
{
	static const char *const names[] = {
		[IKE_SA_CONNECTING] = "CONNECTING", [IKE_SA_AUTHENTICATING] = "AUTHENTICATING",
		[IKE_SA_ESTABLISHED] = "ESTABLISHED", [IKE_SA_REKEYING] = "REKEYING", [IKE_SA_DELETING] = "DELETING",
	};

	return state < sizeof names / sizeof names[0] && names[state] ? names[state] : "?";
}
