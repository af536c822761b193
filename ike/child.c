/* child.c: child SAs: key derivation and installation, removal; CREATE_CHILD_SA (new, rekey, IKE SA rekey). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sa.h"

const struct ike_proposal_conf *ike_policy_props(const struct ike_policy *pol, bool ah, size_t *n)
{
	*n = ah ? pol->conf.n_ah : pol->conf.n_esp;
	return ah ? pol->conf.ah : pol->conf.esp;
}

bool ike_policy_first_ah(const struct ike_policy *pol)
{
	return pol->conf.sa_type == IKE_SA_TYPE_AH;
}

bool ike_child_key_eq(const struct ike_child_key *a, const struct ike_child_key *b)
{
	return a->policy_id == b->policy_id && a->ah == b->ah && a->host_family == b->host_family &&
	       (!a->host_family || !memcmp(a->host, b->host, ike_addr_len(a->host_family)));
}

bool ike_child_is(const struct ike_child *c, const struct ike_child_key *k)
{
	struct ike_child_key ck;

	ike_child_key_of(c, &ck);
	return ike_child_key_eq(&ck, k);
}

void ike_child_key_of(const struct ike_child *c, struct ike_child_key *k)
{
	memset(k, 0, sizeof *k);
	k->policy_id = c->policy_id;
	k->ah = c->ah;
	k->host_family = c->host_family;
	memcpy(k->host, c->host, sizeof k->host);
}

static bool in_bundle(struct ike_engine *e, uint32_t policy_id)
{
	const struct ike_policy *pol = ike_policy_find(e, policy_id);

	return pol && pol->conf.sa_type == IKE_SA_TYPE_AHESP;
}

struct ike_child *ike_child_unpaired(struct ike_engine *e, struct ike_sa *sa, const struct ike_child_key *k)
{
	struct ike_child_key other = *k;

	if (!in_bundle(e, k->policy_id))
		return NULL;
	other.ah = !k->ah;
	/* The newest first: after a rekey of one half, the new child is the one waiting for its partner. */
	for (size_t i = sa->n_children; i-- > 0;) {
		struct ike_child *c = &sa->children[i];
		bool paired = false;

		if (c->state != CHILD_ACTIVE || !ike_child_is(c, &other))
			continue;
		for (size_t j = 0; j < sa->n_children && !paired; j++)
			paired = ike_child_is(&sa->children[j], k) && sa->children[j].spi_in == c->spi_in;
		if (!paired)
			return c;
	}
	return NULL;
}

struct ike_child *ike_child_partner(struct ike_engine *e, struct ike_sa *sa, const struct ike_child *c)
{
	struct ike_child_key other;

	if (!in_bundle(e, c->policy_id))
		return NULL;
	ike_child_key_of(c, &other);
	other.ah = !c->ah;
	for (size_t i = 0; i < sa->n_children; i++)
		if (ike_child_is(&sa->children[i], &other) && sa->children[i].spi_in == c->spi_in)
			return &sa->children[i];
	return NULL;
}

uint32_t ike_child_spi(struct ike_engine *e, struct ike_sa *sa, const struct ike_child_key *k)
{
	const struct ike_child *mate = ike_child_unpaired(e, sa, k);

	return mate ? mate->spi_in : ike_new_spi(e);
}

struct ike_child *ike_child_add(struct ike_sa *sa)
{
	if (sa->n_children == sa->cap_children) {
		size_t cap = sa->cap_children ? sa->cap_children * 2 : 4;
		struct ike_child *grown;

		if (cap > 1024)
			return NULL;
		grown = realloc(sa->children, cap * sizeof *grown);
		if (!grown)
			return NULL;
		sa->children = grown;
		sa->cap_children = cap;
	}
	memset(&sa->children[sa->n_children], 0, sizeof sa->children[0]);
	return &sa->children[sa->n_children++];
}

struct ike_child *ike_child_find_proto(struct ike_sa *sa, uint32_t spi_in, bool ah)
{
	for (size_t i = 0; i < sa->n_children; i++)
		if (sa->children[i].spi_in == spi_in && sa->children[i].ah == ah)
			return &sa->children[i];
	return NULL;
}

struct ike_child *ike_child_find_out(struct ike_sa *sa, uint32_t spi_out, bool ah)
{
	for (size_t i = 0; i < sa->n_children; i++)
		if (sa->children[i].spi_out == spi_out && sa->children[i].ah == ah)
			return &sa->children[i];
	return NULL;
}

struct ike_child *ike_child_find_in(struct ike_sa *sa, uint32_t spi_in)
{
	for (size_t i = 0; i < sa->n_children; i++)
		if (sa->children[i].spi_in == spi_in)
			return &sa->children[i];
	return NULL;
}

static uint32_t spi_host(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void child_sa_keys(struct ike_child_sa *cs, const struct ike_child_keys *k, bool initiator)
{
	memcpy(cs->key_out, initiator ? k->encr_i : k->encr_r, k->encr_len);
	memcpy(cs->key_in, initiator ? k->encr_r : k->encr_i, k->encr_len);
	memcpy(cs->integ_out, initiator ? k->integ_i : k->integ_r, k->integ_len);
	memcpy(cs->integ_in, initiator ? k->integ_r : k->integ_i, k->integ_len);
	cs->encr_len = k->encr_len;
	cs->integ_len = k->integ_len;
}

static void child_sa_ts(struct ike_child_sa *cs, bool initiator, const struct ike_ts_conf *ts_i, size_t n_i,
	const struct ike_ts_conf *ts_r, size_t n_r)
{
	const struct ike_ts_conf *l = initiator ? ts_i : ts_r, *r = initiator ? ts_r : ts_i;

	cs->n_local_ts = initiator ? n_i : n_r;
	cs->n_remote_ts = initiator ? n_r : n_i;
	memcpy(cs->local_ts, l, cs->n_local_ts * sizeof *l);
	memcpy(cs->remote_ts, r, cs->n_remote_ts * sizeof *r);
}

static void export_keys(struct ike_engine *e, const struct ike_sa *sa, const struct ike_child_sa *cs)
{
	char line[512];

	if (!e->conf.keyexport)
		return;
	if (ike_keyexport_esp_sa(line, sizeof line, sa->local.family, sa->local.addr, sa->remote.addr, cs->spi_out,
		cs->encr, cs->key_bits, cs->key_out, cs->encr_len, cs->integ, cs->integ_len ? cs->integ_out : NULL,
		cs->integ_len) > 0)
		ike_emit(e, IKE_EV_KEYS, sa, cs->child_id, cs->spi_in, cs->spi_out, line);
	if (ike_keyexport_esp_sa(line, sizeof line, sa->local.family, sa->remote.addr, sa->local.addr, cs->spi_in,
		cs->encr, cs->key_bits, cs->key_in, cs->encr_len, cs->integ, cs->integ_len ? cs->integ_in : NULL,
		cs->integ_len) > 0)
		ike_emit(e, IKE_EV_KEYS, sa, cs->child_id, cs->spi_in, cs->spi_out, line);
	OPENSSL_cleanse(line, sizeof line);
}

static void child_record(struct ike_engine *e, uint64_t now_ms, struct ike_child *ch, const struct ike_policy *pol,
	const struct ike_child_key *key, const struct ike_choice *c, const struct ike_child_sa *cs)
{
	uint32_t life = pol->conf.lifetime_s ? pol->conf.lifetime_s : 3600;
	uint32_t margin = pol->conf.rekey_margin_s ? pol->conf.rekey_margin_s : life / 10;

	if (margin >= life)
		margin = life / 10;
	ch->policy_id = pol->conf.id;
	ch->host_family = key->host_family;
	memcpy(ch->host, key->host, sizeof ch->host);
	ch->state = CHILD_ACTIVE;
	ch->spi_in = cs->spi_in;
	ch->spi_out = cs->spi_out;
	ch->suite = c->suite;
	ch->dh = c->dh;
	ch->esn = c->esn;
	ch->transport = cs->transport;
	ch->ah = cs->ah;
	ch->encap = cs->encap;
	memcpy(ch->local_ts, cs->local_ts, sizeof ch->local_ts);
	memcpy(ch->remote_ts, cs->remote_ts, sizeof ch->remote_ts);
	ch->n_local_ts = cs->n_local_ts;
	ch->n_remote_ts = cs->n_remote_ts;
	ch->established_ms = now_ms;
	ch->expire_at_ms = now_ms + (uint64_t)life * 1000;
	ch->rekey_at_ms = now_ms + ((uint64_t)(life - margin) * 1000) - ike_jitter(e, margin);
}

int ike_child_establish(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_policy *pol,
	const struct ike_child_key *key, const struct ike_choice *c, uint32_t spi_in, const struct ike_ts_conf *ts_i, size_t n_i,
	const struct ike_ts_conf *ts_r, size_t n_r, const uint8_t *gir, size_t gir_len, const uint8_t *ni,
	size_t ni_len, const uint8_t *nr, size_t nr_len, uint32_t replaces, bool exch_initiator)
{
	struct ike_child_sa cs = {
		.ike_sa_id = sa->id, .peer_id = sa->peer_id, .child_id = pol->conf.id, .spi_in = spi_in,
		.spi_out = spi_host(c->spi), .replaces_spi_in = replaces, .encr = c->suite.encr,
		.key_bits = c->suite.key_bits, .integ = c->suite.integ, .esn = c->esn, .transport = c->transport,
		.encap = sa->encap, .ah = key->ah, .bundle = pol->conf.sa_type == IKE_SA_TYPE_AHESP,
		.clone_family = key->host_family, .local = sa->local, .remote = sa->remote, .lifetime_s = pol->conf.lifetime_s,
		.lifetime_bytes = pol->conf.lifetime_bytes, .lifetime_packets = pol->conf.lifetime_packets,
		.replay_window = pol->conf.replay_window,
	};
	struct ike_child_sa *out_later = NULL;
	struct ike_child_keys k;
	struct ike_child *ch;
	int rc;

	/* A rekey's responder: the initiator installs the new pair only once our response arrives. */
	if (replaces && !exch_initiator && (out_later = malloc(sizeof *out_later)))
		cs.install = IKE_INSTALL_IN;
	if (!cs.lifetime_s)
		cs.lifetime_s = 3600;
	memcpy(cs.clone_host, key->host, sizeof cs.clone_host);
	if (cs.encap && ike_sa_peer(e, sa))
		cs.nat_keepalive_s = ike_sa_peer(e, sa)->conf.nat_keepalive_s;
	rc = ike_child_keys_derive(sa->suite.prf, sa->keys.sk_d, sa->keys.prf_len, &c->suite, gir, gir_len, ni, ni_len,
		nr, nr_len, &k);
	if (rc < 0) {
		free(out_later);
		return -IKE_E_CRYPTO;
	}
	/* RFC 7296 2.17 and 1.3: KEYMAT's order and TSi/TSr follow the roles in this exchange (IKE_AUTH or
	 * CREATE_CHILD_SA), not who started the IKE SA: a rekey the IKE responder starts has them the other way. */
	child_sa_keys(&cs, &k, exch_initiator);
	ike_child_keys_wipe(&k);
	child_sa_ts(&cs, exch_initiator, ts_i, n_i, ts_r, n_r);
	ch = ike_child_add(sa);
	rc = !ch ? -IKE_E_LIMIT : e->cb.child_install ? e->cb.child_install(e->cb.ctx, &cs) : 0;
	if (rc == 0) {
		child_record(e, now_ms, ch, pol, key, c, &cs);
		export_keys(e, sa, &cs);
		if (out_later) {
			*out_later = cs;
			out_later->install = IKE_INSTALL_OUT;
			ch->out_later = out_later;
			out_later = NULL;
		}
	} else if (ch) {
		sa->n_children--;
	}
	free(out_later);
	OPENSSL_cleanse(&cs, sizeof cs);
	if (rc < 0) {
		ike_log(e, 3, "IKE SA %llu: installing the child SA for policy %u failed", (unsigned long long)sa->id,
			pol->conf.id);
		return rc < -IKE_E__COUNT ? -IKE_E_STATE : rc;
	}
	ike_log(e, 6, "IKE SA %llu: %s child SA for policy %u up, SPIs in %08x out %08x", (unsigned long long)sa->id,
		key->ah ? "AH" : "ESP", pol->conf.id, spi_in, spi_host(c->spi));
	ike_emit(e, replaces ? IKE_EV_REKEYED : IKE_EV_CHILD_UP, sa, pol->conf.id, spi_in, spi_host(c->spi), NULL);
	return 0;
}

void ike_child_drop_out_later(struct ike_child *c)
{
	if (!c->out_later)
		return;
	OPENSSL_cleanse(c->out_later, sizeof *c->out_later);
	free(c->out_later);
	c->out_later = NULL;
}

void ike_child_send_on_successor(struct ike_engine *e, struct ike_sa *sa, uint32_t old_spi_in)
{
	for (size_t i = 0; i < sa->n_children; i++) {
		struct ike_child *c = &sa->children[i];

		if (!c->out_later || c->out_later->replaces_spi_in != old_spi_in || c->state != CHILD_ACTIVE)
			continue;
		if (e->cb.child_install && e->cb.child_install(e->cb.ctx, c->out_later) < 0)
			ike_log(e, 3, "IKE SA %llu: installing the outbound SA %08x of policy %u failed",
				(unsigned long long)sa->id, c->spi_out, c->policy_id);
		else
			ike_log(e, 7, "IKE SA %llu: sending on the new child SA %08x", (unsigned long long)sa->id,
				c->spi_out);
		ike_child_drop_out_later(c);
	}
}

void ike_child_remove(struct ike_engine *e, struct ike_sa *sa, struct ike_child *c, const char *why)
{
	uint32_t policy = c->policy_id, in = c->spi_in, out = c->spi_out;

	ike_child_drop_out_later(c);
	ike_child_send_on_successor(e, sa, in);
	if (e->cb.child_delete)
		e->cb.child_delete(e->cb.ctx, in, out, c->ah);
	*c = sa->children[--sa->n_children];
	ike_log(e, 6, "IKE SA %llu: child SA %08x/%08x of policy %u removed (%s)", (unsigned long long)sa->id, in, out,
		policy, why);
	ike_emit(e, IKE_EV_CHILD_DOWN, sa, policy, in, out, why);
}

