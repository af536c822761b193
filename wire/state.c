/* state.c: bitw-wire's state: SA registry, policy tables, RCU-style snapshots, and the control operations. */
#include "wire_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "log.h"

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t now_s(void)
{
	return now_ms() / 1000u;
}

/* ---- rings: one producer (a data thread), one consumer (the control thread) ---- */

int ring_init(struct ring *r)
{
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	r->slot = calloc(RING_SLOTS, sizeof *r->slot);
	return r->slot ? 0 : -XE_NOMEM;
}

void ring_free(struct ring *r)
{
	free(r->slot);
	r->slot = NULL;
}

struct ring_msg *ring_reserve(struct ring *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (head - tail >= RING_SLOTS)
		return NULL;
	return &r->slot[head % RING_SLOTS];
}

void ring_publish(struct ring *r)
{
	atomic_fetch_add_explicit(&r->head, 1, memory_order_release);
}

struct ring_msg *ring_peek(struct ring *r)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (atomic_load_explicit(&r->head, memory_order_acquire) == tail)
		return NULL;
	return &r->slot[tail % RING_SLOTS];
}

void ring_consume(struct ring *r)
{
	atomic_fetch_add_explicit(&r->tail, 1, memory_order_release);
}

/* ---- snapshots ---- */

static void snapshot_free(struct snapshot *s, bool free_spd)
{
	if (!s)
		return;
	if (free_spd)
		spd_free(s->spd);
	sad_free(s->sad);
	clone_index_free(s->clones);
	free(s->dummy_sas);
	free(s->out_sa);
	free(s->out_ah);
	free(s);
}

/* Wait until no data thread can still hold a snapshot older than gen. */
static void synchronize(struct wire *w, uint64_t gen)
{
	uint64_t one = 1, deadline = now_ms() + 2000;

	for (int k = 0; k < 2; k++) {
		struct worker *wk = &w->wk[k];

		if (wk->wake_fd >= 0 && write(wk->wake_fd, &one, sizeof one) < 0)
			wlog(WLOG_WARN, "wake worker: %s", strerror(errno));
		while (!atomic_load(&wk->idle) && atomic_load(&wk->quiescent) < gen) {
			struct timespec ts = { 0, 100000 };

			if (now_ms() > deadline) {
				/* A data thread stuck for seconds is a bug; leaking beats a use-after-free. */
				wlog(WLOG_ERR, "worker %d did not reach a quiescent state", k);
				return;
			}
			nanosleep(&ts, NULL);
		}
	}
}

/* The local port of an ESP-in-UDP SA: where its packets arrive (in) or leave from (out). */
static void snapshot_add_udp_port(struct snapshot *s, const struct sa *sa)
{
	uint16_t port = sa->conf.dir == DIR_IN ? sa->conf.encap_dport : sa->conf.encap_sport;

	if (sa->conf.encap != ENCAP_UDP)
		return;
	for (uint8_t i = 0; i < s->n_udp_ports; i++)
		if (s->udp_ports[i] == port)
			return;
	if (s->n_udp_ports < 8)
		s->udp_ports[s->n_udp_ports++] = port;
}

/* Dummy packets (RFC 4303 2.6) come from ESP tunnel SAs in use whose policy asks for them. */
static bool sends_dummies(const struct sa *sa)
{
	return sa && sa->conf.opts.dummy_ms && sa->conf.mode == MODE_TUNNEL && sa->conf.proto == PROTO_ESP;
}

/* The SAs that send dummy packets, so the outbound thread visits only those (max: out_sa's and clones' SAs). */
static int snapshot_dummies(struct snapshot *s, uint32_t max)
{
	uint32_t pos = 0;
	struct sa *sa;

	if (!(s->dummy_sas = calloc(max ? max : 1, sizeof *s->dummy_sas)))
		return -XE_NOMEM;
	for (uint32_t i = 0; i < spd_count(s->spd); i++)
		if (sends_dummies(s->out_sa[i]))
			s->dummy_sas[s->n_dummy++] = s->out_sa[i];
	while ((sa = clone_index_next(s->clones, &pos)) != NULL)
		if (sends_dummies(sa))
			s->dummy_sas[s->n_dummy++] = sa;
	return 0;
}

static struct snapshot *snapshot_build(struct wire *w, struct spd *spd, char *err, size_t errlen)
{
	struct snapshot *s = calloc(1, sizeof *s);
	uint32_t n = spd_count(spd), nin = 0, nout = 0, nah = 0;
	struct sa **in, **out, **outah;

	in = calloc(w->nsas ? w->nsas : 1, sizeof *in);
	out = calloc(w->nsas ? w->nsas : 1, sizeof *out);
	outah = calloc(w->nsas ? w->nsas : 1, sizeof *outah);
	if (!s || !in || !out || !outah)
		goto nomem;
	s->out_sa = calloc(n ? n : 1, sizeof *s->out_sa);
	s->out_ah = calloc(n ? n : 1, sizeof *s->out_ah);
	if (!s->out_sa || !s->out_ah)
		goto nomem;
	s->spd = spd;
	s->red = w->cfg.red;
	s->black = w->cfg.black;
	s->opt = w->cfg.opt;
	s->udp_ports[s->n_udp_ports++] = 4500;
	/* Registry order is install order, so the newest outbound SA of a policy wins (make-before-break). */
	for (uint32_t i = 0; i < w->nsas; i++) {
		struct sa *sa = w->sas[i];
		const struct spd_policy *p;

		if (atomic_load(&sa->state) == SA_DEAD)
			continue;
		snapshot_add_udp_port(s, sa);
		if (sa->conf.dir == DIR_IN) {
			in[nin++] = sa;
			continue;
		}
		p = spd_by_id(spd, sa->conf.policy_id);
		if (sa->conf.clone_host.family && p && p->conf.sa_type == SATYPE_AHESP && sa->conf.proto == PROTO_AH)
			outah[nah++] = sa;
		else if (sa->conf.clone_host.family)
			out[nout++] = sa;
		else if (p && p->conf.sa_type == SATYPE_AHESP && sa->conf.proto == PROTO_AH)
			s->out_ah[p->index] = sa;
		else if (p)
			s->out_sa[p->index] = sa;
	}
	s->sad = sad_build(in, nin);
	s->clones = clone_index_build(out, nout, outah, nah);
	free(in);
	free(out);
	free(outah);
	if (!s->sad || !s->clones || snapshot_dummies(s, n + nout) < 0) {
		snapshot_free(s, false);
		snprintf(err, errlen, "out of memory building the SAD");
		return NULL;
	}
	s->gen = ++w->gen;
	return s;
nomem:
	free(in);
	free(out);
	free(outah);
	if (s) {
		free(s->out_sa);
		free(s->out_ah);
	}
	free(s);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

/* Publish s; once no thread can see the old snapshot, free it (and its SPD if s has another). */
static void snapshot_publish(struct wire *w, struct snapshot *s)
{
	struct snapshot *old = atomic_exchange(&w->snap, s);

	synchronize(w, s->gen);
	if (old)
		snapshot_free(old, old->spd != s->spd);
}

static int republish(struct wire *w)
{
	char err[256];
	struct snapshot *cur = atomic_load(&w->snap);
	struct snapshot *s = snapshot_build(w, cur->spd, err, sizeof err);

	if (!s) {
		wlog(WLOG_ERR, "%s", err);
		return -XE_NOMEM;
	}
	snapshot_publish(w, s);
	return 0;
}

/* ---- the SA registry (control thread) ---- */

static int sas_reserve(struct wire *w, uint32_t extra)
{
	if (w->nsas + extra <= w->cap_sas)
		return 0;
	uint32_t cap = (w->nsas + extra) * 2 + 16;
	struct sa **n = realloc(w->sas, cap * sizeof *n);

	if (!n)
		return -XE_NOMEM;
	w->sas = n;
	w->cap_sas = cap;
	return 0;
}

/* An SA is named by (SPI, direction, protocol); proto -1 matches either protocol. */
static bool sa_named(const struct sa *sa, uint32_t spi, int dir, int proto)
{
	return sa->conf.spi == spi && sa->conf.dir == dir && (proto < 0 || sa->conf.proto == proto);
}

static struct sa *sa_find(struct wire *w, uint32_t spi, int dir, int proto)
{
	for (uint32_t i = 0; i < w->nsas; i++)
		if (sa_named(w->sas[i], spi, dir, proto))
			return w->sas[i];
	return NULL;
}

/* Remove the SAs for which drop[i] is set, after they can no longer be seen. */
static void sas_remove_marked(struct wire *w, const uint8_t *drop)
{
	struct sa **gone = calloc(w->nsas ? w->nsas : 1, sizeof *gone);
	uint32_t ngone = 0, j = 0;

	if (!gone) {
		wlog(WLOG_ERR, "out of memory removing SAs");
		return;
	}
	for (uint32_t i = 0; i < w->nsas; i++) {
		if (drop[i])
			gone[ngone++] = w->sas[i];
		else
			w->sas[j++] = w->sas[i];
	}
	w->nsas = j;
	if (ngone) {
		republish(w);
		for (uint32_t i = 0; i < ngone; i++)
			sa_destroy(gone[i]);
	}
	free(gone);
}

static bool sa_conf_same(const struct sa_conf *a, const struct sa_conf *b)
{
	return a->spi == b->spi && a->dir == b->dir && a->proto == b->proto && strcmp(a->policy, b->policy) == 0 &&
	       bw_addr_eq(&a->local, &b->local) && bw_addr_eq(&a->peer, &b->peer) && a->mode == b->mode &&
	       a->encap == b->encap && a->encap_sport == b->encap_sport && a->encap_dport == b->encap_dport &&
	       a->enc == b->enc && a->integ == b->integ && a->enc_key_len == b->enc_key_len &&
	       a->integ_key_len == b->integ_key_len &&
	       CRYPTO_memcmp(a->enc_key, b->enc_key, a->enc_key_len) == 0 &&
	       CRYPTO_memcmp(a->integ_key, b->integ_key, a->integ_key_len) == 0 &&
	       a->replay_window == b->replay_window && a->esn == b->esn &&
	       memcmp(&a->soft, &b->soft, sizeof a->soft) == 0 && memcmp(&a->hard, &b->hard, sizeof a->hard) == 0 &&
	       a->origin == b->origin;
}

/* ---- policy counters survive table replacement, matched by id ---- */

static bool pstats_is_current(const struct wire *w, const struct pol_stats *p)
{
	for (uint32_t j = 0; j < w->cfg.npol && w->pstats; j++)
		if (w->pstats[j] == p)
			return true;
	return false;
}

static void pstats_release(struct wire *w, struct pol_stats **st, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (st[i] && !pstats_is_current(w, st[i]))
			free(st[i]);
	free(st);
}

static struct pol_stats **pstats_for(struct wire *w, const struct policy_conf *pol, uint32_t n)
{
	struct pol_stats **st = calloc(n ? n : 1, sizeof *st);

	if (!st)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < w->cfg.npol && w->pstats; j++)
			if (w->cfg.pol[j].id == pol[i].id)
				st[i] = w->pstats[j];
		if (!st[i] && !(st[i] = calloc(1, sizeof *st[i]))) {
			pstats_release(w, st, n);
			return NULL;
		}
	}
	return st;
}

/* After the new table is published: free counters of policies that are gone. */
static void pstats_swap(struct wire *w, struct pol_stats **st, uint32_t n_new)
{
	for (uint32_t j = 0; j < w->cfg.npol && w->pstats; j++) {
		bool kept = false;

		for (uint32_t i = 0; i < n_new; i++)
			kept |= st[i] == w->pstats[j];
		if (!kept)
			free(w->pstats[j]);
	}
	free(w->pstats);
	w->pstats = st;
}

static struct policy_conf *policies_dup(const struct policy_conf *p, uint32_t n)
{
	struct policy_conf *d = malloc((n ? n : 1) * sizeof *d);

	if (d && n)
		memcpy(d, p, n * sizeof *d);
	return d;
}

/* ---- validation through the config module, so one set of rules applies everywhere ---- */

/*
 * Validate SAs `add` (n) against policies pol (npol) together with the SAs in
 * `keep`, as one configuration would be. Fills defaults into add[].
 */
static int validate_with(struct wire *w, const struct policy_conf *pol, uint32_t npol, struct sa_conf *add,
                         uint32_t n, const uint8_t *keep, char *err, size_t errlen)
{
	struct wire_config tmp = w->cfg;
	uint32_t nsa = 0;
	int rc;

	tmp.pol = (struct policy_conf *)pol;
	tmp.npol = npol;
	tmp.sa = calloc(w->nsas + n + 1, sizeof *tmp.sa);
	if (!tmp.sa)
		return -XE_NOMEM;
	for (uint32_t i = 0; i < w->nsas; i++)
		if (!keep || keep[i])
			tmp.sa[nsa++] = w->sas[i]->conf;
	if (n) /* SPD_SET validates the kept SAs alone, with add NULL: memcpy's pointers must not be */
		memcpy(tmp.sa + nsa, add, n * sizeof *add);
	tmp.nsa = nsa + n;
	rc = config_validate(&tmp, err, errlen);
	if (rc == 0 && n)
		memcpy(add, tmp.sa + nsa, n * sizeof *add);
	OPENSSL_cleanse(tmp.sa, (nsa + n) * sizeof *tmp.sa);
	free(tmp.sa);
	return rc;
}

/*
 * Validate SAs `add` (n) that join the registry, filling their defaults. The
 * SAs already in it were validated against the same policies and options when
 * they came in (wire_spd_set checks them again), so only the new ones are
 * resolved: checking the whole registry on every add made n adds cost O(n^2)
 * (2000 IKE child SAs: 12 s of the wire's CPU). Their SPIs are checked against
 * the registry by the caller (sa_find), among themselves here; an error names
 * the index in the request.
 */
static int validate_new(struct wire *w, struct sa_conf *add, uint32_t n, char *err, size_t errlen)
{
	struct wire_config tmp = w->cfg;

	tmp.sa = add;
	tmp.nsa = n;
	return config_validate(&tmp, err, errlen);
}

static int sas_create(const struct sa_conf *c, uint32_t n, struct sa **out, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < n; i++) {
		int rc = sa_create(&c[i], &out[i], err, errlen);

		if (rc < 0) {
			while (i--)
				sa_destroy(out[i]);
			return rc;
		}
		out[i]->created = now_s();
	}
	return 0;
}

/* ---- operations ---- */

/* Policies sent without an id keep the id of the running policy of the same name, or get a new one. */
static void assign_ids(const struct wire *w, struct policy_conf *pol, uint32_t n)
{
	uint32_t next = 0;

	for (uint32_t i = 0; i < w->cfg.npol; i++)
		next = w->cfg.pol[i].id > next ? w->cfg.pol[i].id : next;
	for (uint32_t i = 0; i < n; i++)
		next = pol[i].id > next ? pol[i].id : next;
	for (uint32_t i = 0; i < n; i++) {
		if (pol[i].id)
			continue;
		for (uint32_t j = 0; j < w->cfg.npol && !pol[i].id; j++)
			if (strcmp(w->cfg.pol[j].name, pol[i].name) == 0)
				pol[i].id = w->cfg.pol[j].id;
		for (uint32_t k = 0; k < n && pol[i].id; k++)
			if (k != i && pol[k].id == pol[i].id)
				pol[i].id = 0;  /* taken explicitly by another policy of the new table */
		if (!pol[i].id)
			pol[i].id = ++next;
	}
}

int wire_spd_set(struct wire *w, struct policy_conf *pol, uint32_t n, int default_action, char *err, size_t errlen)
{
	struct pol_stats **st;
	struct policy_conf *copy;
	struct spd *spd;
	struct snapshot *s;
	uint8_t *drop;
	int rc;

	drop = calloc(w->nsas + 1, 1);
	if (!drop)
		return -XE_NOMEM;
	assign_ids(w, pol, n);
	/* SAs stay only while the policy they serve keeps its name, id and protect action. */
	for (uint32_t i = 0; i < w->nsas; i++) {
		drop[i] = 1;
		for (uint32_t j = 0; j < n; j++)
			if (strcmp(pol[j].name, w->sas[i]->conf.policy) == 0 && pol[j].id == w->sas[i]->conf.policy_id &&
			    pol[j].action == ACT_PROTECT)
				drop[i] = 0;
	}
	for (uint32_t i = 0; i < w->nsas; i++)
		drop[i] = !drop[i];  /* validate_with wants "keep" */
	rc = validate_with(w, pol, n, NULL, 0, drop, err, errlen);
	for (uint32_t i = 0; i < w->nsas; i++)
		drop[i] = !drop[i];
	if (rc < 0)
		goto out;
	rc = -XE_NOMEM;
	st = pstats_for(w, pol, n);
	copy = policies_dup(pol, n);
	if (!st || !copy) {
		free(copy);
		if (st)
			pstats_release(w, st, n);
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	spd = spd_build(copy, st, n, err, errlen);
	if (!spd) {
		free(copy);
		pstats_release(w, st, n);
		rc = -XE_BAD_PARAM;
		goto out;
	}
	/* The old SPD stays in use until the new snapshot is out: no window without policy. */
	free(w->cfg.pol);
	w->cfg.pol = copy;
	pstats_swap(w, st, n);
	w->cfg.npol = n;
	if (default_action >= 0)
		w->cfg.opt.default_action = (uint8_t)default_action;
	s = snapshot_build(w, spd, err, errlen);
	if (!s) {
		/* Rare: keep running on the old snapshot; the table is stored and applied on the next change. */
		spd_free(spd);
		goto out;
	}
	snapshot_publish(w, s);
	sas_remove_marked(w, drop);
	wlog(WLOG_INFO, "policy table set: %u policies", n);
	rc = 0;
out:
	free(drop);
	return rc;
}

int wire_sa_add(struct wire *w, const struct sa_conf *sa, uint32_t n, char *err, size_t errlen)
{
	struct sa_conf *c = calloc(n ? n : 1, sizeof *c);
	struct sa **made = calloc(n ? n : 1, sizeof *made);
	int rc = -XE_NOMEM;

	if (!c || !made || sas_reserve(w, n) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(c, sa, n * sizeof *c);
	for (uint32_t i = 0; i < n; i++) {
		if (sa_find(w, c[i].spi, c[i].dir, c[i].proto)) {
			snprintf(err, errlen, "sas[%u].spi: SA 0x%08x %s %s already exists", i, c[i].spi,
			         c[i].dir == DIR_IN ? "in" : "out", c[i].proto == PROTO_AH ? "ah" : "esp");
			rc = -XE_SA_EXISTS;
			goto out;
		}
	}
	rc = validate_new(w, c, n, err, errlen);
	if (rc < 0)
		goto out;
	rc = sas_create(c, n, made, err, errlen);
	if (rc < 0)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		w->sas[w->nsas++] = made[i];
		for (uint32_t r = 0; r < w->nreserved; r++)
			if (made[i]->conf.dir == DIR_IN && w->reserved_spi[r] == made[i]->conf.spi)
				w->reserved_spi[r] = w->reserved_spi[--w->nreserved];
	}
	rc = republish(w);
	if (rc == 0)
		wlog(WLOG_INFO, "%u SA(s) added", n);
out:
	if (c)
		OPENSSL_cleanse(c, n * sizeof *c);
	free(c);
	free(made);
	return rc;
}

int wire_sa_del(struct wire *w, uint32_t spi, int dir, int proto)
{
	uint8_t *drop = calloc(w->nsas + 1, 1);
	int found = 0;

	if (!drop)
		return -XE_NOMEM;
	for (uint32_t i = 0; i < w->nsas; i++)
		if (sa_named(w->sas[i], spi, dir, proto))
			drop[i] = 1, found = 1;
	if (found)
		sas_remove_marked(w, drop);
	free(drop);
	return found ? 0 : -XE_SA_NOT_FOUND;
}

int wire_sa_flush(struct wire *w, const char *policy)
{
	uint8_t *drop = calloc(w->nsas + 1, 1);
	bool known = !policy;

	if (!drop)
		return -XE_NOMEM;
	for (uint32_t j = 0; policy && j < w->cfg.npol; j++)
		known |= strcmp(w->cfg.pol[j].name, policy) == 0;
	if (!known) {
		free(drop);
		return -XE_POLICY_NOT_FOUND;
	}
	for (uint32_t i = 0; i < w->nsas; i++)
		drop[i] = !policy || strcmp(w->sas[i]->conf.policy, policy) == 0;
	sas_remove_marked(w, drop);
	free(drop);
	return 0;
}

int wire_get_spi(struct wire *w, uint32_t *spi)
{
	uint32_t *r;

	for (int tries = 0; tries < 64; tries++) {
		uint32_t v;
		bool used = false;

		if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
			return -XE_IO;
		if (v < 256)
			continue;
		/* Free for both protocols: an AH+ESP bundle's inbound pair can share it. */
		used = sa_find(w, v, DIR_IN, -1) != NULL;
		for (uint32_t i = 0; i < w->nreserved; i++)
			used |= w->reserved_spi[i] == v;
		if (used)
			continue;
		r = realloc(w->reserved_spi, (w->nreserved + 1) * sizeof *r);
		if (!r)
			return -XE_NOMEM;
		w->reserved_spi = r;
		r[w->nreserved++] = v;
		*spi = v;
		return 0;
	}
	return -XE_IO;
}

int wire_initial_contact(struct wire *w, const struct bw_addr *peer)
{
	uint8_t *drop = calloc(w->nsas + 1, 1);
	uint32_t n = 0;

	if (!drop)
		return -XE_NOMEM;
	for (uint32_t i = 0; i < w->nsas; i++)
		if (bw_addr_eq(&w->sas[i]->conf.peer, peer))
			drop[i] = 1, n++;
	sas_remove_marked(w, drop);
	free(drop);
	wlog(WLOG_INFO, "initial contact: %u SA(s) dropped", n);
	return 0;
}

int wire_ike_send(struct wire *w, const struct ctl_ike_dgram *d, const uint8_t *data, uint32_t len)
{
	const struct snapshot *s = atomic_load(&w->snap);
	struct bw_addr src = { .family = d->family }, dst = { .family = d->family };
	const struct bw_addr *ours = black_source(s, d->family);
	bool zero = true;
	int rc;

	memcpy(src.a, d->src, d->family == 4 ? 4 : 16);
	memcpy(dst.a, d->dst, d->family == 4 ? 4 : 16);
	for (int i = 0; i < 16; i++)
		zero &= src.a[i] == 0;
	if (zero && ours)
		src = *ours;
	for (uint8_t i = 0; i < s->black.naddr; i++)
		if (bw_addr_eq(&s->black.addr[i], &src))
			goto ok;
	/* IKE for a transport-mode host goes out from the host's own address. */
	if (spd_transport_host(s->spd, &src))
		goto ok;
	return -XE_BAD_PARAM;
ok:
	rc = wire_send_udp(w, &w->ctl_tx_black, s, &src, d->sport, &dst, d->dport, data, len,
	                   d->sport == 4500 || d->dport == 4500);
	txq_flush(&w->ctl_tx_black);
	return rc;
}

/* ---- events from the data threads, lifetimes, neighbours, keepalives ---- */

static json_t *pkt_info_json(const struct pkt_info *pi)
{
	char a[64], b[64];

	return json_pack("{s:s,s:s,s:i,s:i,s:i}", "src", bw_addr_str(&pi->src, a, sizeof a), "dst",
	                 bw_addr_str(&pi->dst, b, sizeof b), "protocol", pi->proto, "src_port", pi->sport, "dst_port",
	                 pi->dport);
}

static void drain_ring(struct wire *w, struct ring *r)
{
	const struct snapshot *s = atomic_load(&w->snap);
	struct ring_msg *m;

	while ((m = ring_peek(r))) {
		if (m->type == CTL_EV_ACQUIRE) {
			const struct spd_policy *p = spd_by_id(s->spd, m->policy_id);
			json_t *ev = pkt_info_json(&m->pi);

			json_object_set_new(ev, "policy", json_string(p ? p->conf.name : ""));
			json_object_set_new(ev, "policy_id", json_integer(m->policy_id));
			if (p) {
				char a[64];

				const struct bw_addr *host = clone_value(p->conf.clone, DIR_OUT, &m->pi);

				json_object_set_new(ev, "peer", json_string(bw_addr_str(&p->conf.peer, a, sizeof a)));
				if (host)
					json_object_set_new(ev, "clone_host", json_string(bw_addr_str(host, a, sizeof a)));
			}
			wlog(WLOG_INFO, "acquire for policy %s", p ? p->conf.name : "?");
			ctl_server_event(w->ctl, CTL_EV_ACQUIRE, ev);
		} else if (m->type == CTL_EV_IKE_RECV) {
			ctl_server_ike_recv(w->ctl, &m->dg, m->data, m->len);
		}
		ring_consume(r);
	}
}

void wire_drain_events(struct wire *w)
{
	uint64_t v;

	if (read(w->ev_fd, &v, sizeof v) < 0 && errno != EAGAIN)
		wlog(WLOG_WARN, "event fd: %s", strerror(errno));
	drain_ring(w, &w->wk[TH_OUT].events);
	drain_ring(w, &w->wk[TH_IN].events);
}

static void sa_event(struct wire *w, const struct sa *sa, uint16_t type)
{
	json_t *ev = json_pack("{s:I,s:s,s:s,s:s}", "spi", (json_int_t)sa->conf.spi, "direction",
	                       sa->conf.dir == DIR_IN ? "in" : "out", "protocol", sa->conf.proto == PROTO_AH ? "ah" : "esp",
	                       "policy", sa->conf.policy);

	wlog(WLOG_INFO, "SA 0x%08x %s %s expired", sa->conf.spi, sa->conf.dir == DIR_IN ? "in" : "out",
	     type == CTL_EV_SA_SOFT_EXPIRE ? "soft" : "hard");
	ctl_server_event(w->ctl, type, ev);
}

static void lifetimes(struct wire *w)
{
	uint64_t now = now_s();
	uint8_t *drop = NULL;

	for (uint32_t i = 0; i < w->nsas; i++) {
		struct sa *sa = w->sas[i];

		if (now != w->last_tick_s)
			sa_tick(sa, now);
		if (atomic_exchange(&sa->soft_pending, 0))
			sa_event(w, sa, CTL_EV_SA_SOFT_EXPIRE);
		if (atomic_exchange(&sa->hard_pending, 0) || atomic_load(&sa->state) == SA_DEAD) {
			if (!drop && !(drop = calloc(w->nsas, 1)))
				break;
			if (!drop[i])
				sa_event(w, sa, CTL_EV_SA_HARD_EXPIRE);
			drop[i] = 1;
		}
	}
	w->last_tick_s = now;
	if (drop)
		sas_remove_marked(w, drop);
	free(drop);
}

struct solicit_ctx {
	struct wire *w;
	struct txq *tx;
	const struct port_conf *pc;
	const uint8_t *mac;
};

static void solicit(void *arg, const struct bw_addr *ip)
{
	struct solicit_ctx *c = arg;
	const struct bw_addr *sip = NULL;
	uint8_t *slot = txq_slot(c->tx);
	uint32_t len;

	for (uint8_t i = 0; i < c->pc->naddr; i++)
		if (c->pc->addr[i].family == ip->family)
			sip = &c->pc->addr[i];
	len = ip->family == 4 ? arp_build_request(slot, c->mac, sip, ip) : nd_build_solicit(slot, c->mac, sip, ip);
	txq_commit(c->tx, len);
}

static bool keepalive_due(const struct sa_conf *c)
{
	return c->dir == DIR_OUT && c->encap == ENCAP_UDP;
}

/* The NAT binding belongs to the address and port pair, not to the SA: one keepalive covers all SAs on it. */
static bool same_udp_ends(const struct sa_conf *a, const struct sa_conf *b)
{
	return bw_addr_eq(&a->local, &b->local) && bw_addr_eq(&a->peer, &b->peer) &&
	       a->encap_sport == b->encap_sport && a->encap_dport == b->encap_dport;
}

/* Each outbound UDP SA's ends get a keepalive every nat_keepalive seconds (the SA's own, else the option's); the
 * NAT binding belongs to the address and port pair, not to the SA: one keepalive restarts the wait of every SA on it. */
static void keepalives(struct wire *w, const struct snapshot *s, uint64_t now)
{
	static const uint8_t ka = 0xff;  /* RFC 3948 §2.3 */

	if (now - w->last_keepalive_ms < 1000)
		return;
	w->last_keepalive_ms = now;
	for (uint32_t i = 0; i < w->nsas; i++) {
		struct sa *sa = w->sas[i];
		const struct sa_conf *c = &sa->conf;
		uint64_t every = (uint64_t)(c->nat_keepalive ? c->nat_keepalive : s->opt.nat_keepalive) * 1000;

		if (!keepalive_due(c) || !every || now - sa->keepalive_ms < every)
			continue;
		wire_send_udp(w, &w->ctl_tx_black, s, &c->local, c->encap_sport, &c->peer, c->encap_dport, &ka, 1, 0);
		for (uint32_t j = 0; j < w->nsas; j++)
			if (keepalive_due(&w->sas[j]->conf) && same_udp_ends(&w->sas[j]->conf, c))
				w->sas[j]->keepalive_ms = now;
	}
}

static void link_state(struct wire *w)
{
	struct port *ports[2] = { &w->red, &w->black };
	static const char *const names[2] = { "red", "black" };

	for (int i = 0; i < 2; i++) {
		uint8_t up = port_link_up(ports[i]);

		port_refresh_mtu(ports[i]);  /* the transmit rings check frames against it */
		if (up == w->link_up[i])
			continue;
		w->link_up[i] = up;
		wlog(up ? WLOG_INFO : WLOG_WARN, "%s port %s is %s", names[i], ports[i]->ifname, up ? "up" : "down");
		ctl_server_event(w->ctl, CTL_EV_IF_STATE, json_pack("{s:s,s:s,s:b}", "port", names[i], "interface",
		                                                   ports[i]->ifname, "up", up));
	}
}

void wire_housekeeping(struct wire *w)
{
	const struct snapshot *s = atomic_load(&w->snap);
	uint64_t now = now_ms(), dropped = 0;
	struct solicit_ctx sb = { w, &w->ctl_tx_black, &s->black, w->black.mac };
	struct solicit_ctx sr = { w, &w->ctl_tx_red, &s->red, w->red.mac };

	wire_drain_events(w);
	lifetimes(w);
	s = atomic_load(&w->snap);  /* lifetimes may have republished */
	neigh_tick(w->neigh_black, now, solicit, &sb, &dropped);
	atomic_fetch_add(&w->wk[TH_OUT].drops.by_reason[XE_NEIGH_UNRESOLVED], dropped);
	dropped = 0;
	neigh_tick(w->neigh_red, now, solicit, &sr, &dropped);
	atomic_fetch_add(&w->wk[TH_IN].drops.by_reason[XE_NEIGH_UNRESOLVED], dropped);
	keepalives(w, s, now);
	link_state(w);
	txq_flush(&w->ctl_tx_black);
	txq_flush(&w->ctl_tx_red);
}

/* ---- set up and tear down ---- */

static int worker_init(struct wire *w, struct worker *wk, int dir, char *err, size_t errlen)
{
	wk->w = w;
	wk->dir = dir;
	wk->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	atomic_init(&wk->idle, 1);
	if (wk->wake_fd < 0 || txq_init(&wk->tx_red, &w->red, TXQ_RING_DATA, err, errlen) < 0 ||
	    txq_init(&wk->tx_black, &w->black, TXQ_RING_DATA, err, errlen) < 0)
		return -XE_IO;
	wk->fc = flow_cache_new(4096);
	wk->scratch = malloc(2 * TXQ_BUF);
	wk->acq = calloc(ACQ_SLOTS, sizeof *wk->acq);
	if (dir == TH_IN)
		wk->reasm = reasm_new(w->cfg.opt.frag_mem, w->cfg.opt.frag_timeout_ms);
	if (!wk->fc || !wk->scratch || !wk->acq || (dir == TH_IN && !wk->reasm) || ring_init(&wk->events) < 0) {
		snprintf(err, errlen, "out of memory");
		return -XE_NOMEM;
	}
	return 0;
}

static void worker_fini(struct worker *wk)
{
	txq_destroy(&wk->tx_red);
	txq_destroy(&wk->tx_black);
	flow_cache_free(wk->fc);
	reasm_free(wk->reasm);
	ring_free(&wk->events);
	free(wk->scratch);
	free(wk->acq);
	if (wk->wake_fd >= 0)
		close(wk->wake_fd);
}

static int install_config(struct wire *w, struct wire_config *cfg, char *err, size_t errlen)
{
	struct pol_stats **st;
	struct spd *spd;
	struct snapshot *s;
	struct sa **made;
	int rc;

	w->cfg.red = cfg->red;
	w->cfg.black = cfg->black;
	w->cfg.opt = cfg->opt;
	st = pstats_for(w, cfg->pol, cfg->npol);
	if (!st)
		return -XE_NOMEM;
	spd = spd_build(cfg->pol, st, cfg->npol, err, errlen);
	if (!spd) {
		pstats_release(w, st, cfg->npol);
		return -XE_BAD_PARAM;
	}
	made = calloc(cfg->nsa + 1, sizeof *made);
	if (!made || sas_reserve(w, cfg->nsa) < 0 || (rc = sas_create(cfg->sa, cfg->nsa, made, err, errlen)) < 0) {
		free(made);
		spd_free(spd);
		pstats_release(w, st, cfg->npol);
		return made ? -XE_BAD_PARAM : -XE_NOMEM;
	}
	for (uint32_t i = 0; i < cfg->nsa; i++)
		w->sas[w->nsas++] = made[i];
	free(made);
	w->cfg.pol = cfg->pol;
	w->cfg.npol = cfg->npol;
	cfg->pol = NULL;
	pstats_swap(w, st, w->cfg.npol);
	s = snapshot_build(w, spd, err, errlen);
	if (!s) {
		spd_free(spd);
		return -XE_NOMEM;
	}
	snapshot_publish(w, s);
	return 0;
}

int wire_init(struct wire *w, struct wire_config *cfg, char *err, size_t errlen)
{
	struct wire_options *o = &cfg->opt;
	int rc;

	w->wk[0].wake_fd = w->wk[1].wake_fd = -1;
	w->ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->ev_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -XE_IO;
	}
	if ((rc = port_open(&w->red, cfg->red.ifname, cfg->red.mtu, err, errlen)) < 0 ||
	    (rc = port_open(&w->black, cfg->black.ifname, cfg->black.mtu, err, errlen)) < 0)
		return rc;
	/*
	 * Black: every ESP packet is addressed to us. Red frames are for hosts
	 * beyond us, not for our MAC. Some switch port-security setups accept
	 * only the NIC's MAC: options.black_interface_mac keeps it.
	 */
	if (!o->black_interface_mac)
		port_use_own_mac(&w->black);
	/* IF_STATE reports changes: the state at start is the baseline, not an event. */
	w->link_up[0] = port_link_up(&w->red);
	w->link_up[1] = port_link_up(&w->black);
	w->neigh_red = neigh_new(4096, o->neigh_timeout, o->neigh_queue);
	w->neigh_black = neigh_new(1024, o->neigh_timeout, o->neigh_queue);
	if (!w->neigh_red || !w->neigh_black) {
		snprintf(err, errlen, "out of memory");
		return -XE_NOMEM;
	}
	w->cfg.opt = *o;  /* worker_init sizes the reassembly pool from it */
	if ((rc = worker_init(w, &w->wk[TH_OUT], TH_OUT, err, errlen)) < 0 ||
	    (rc = worker_init(w, &w->wk[TH_IN], TH_IN, err, errlen)) < 0 ||
	    (rc = txq_init(&w->ctl_tx_red, &w->red, TXQ_RING_CTL, err, errlen)) < 0 ||
	    (rc = txq_init(&w->ctl_tx_black, &w->black, TXQ_RING_CTL, err, errlen)) < 0)
		return rc;
	uint64_t mac = 0;

	for (int i = 0; i < 6; i++)
		mac = mac << 8 | cfg->red.router_mac[i];
	atomic_store(&w->router_mac, mac);
	admin_state_log(ADMIN_SECURE, o->admin_state);
	return install_config(w, cfg, err, errlen);
}

/*
 * SIGHUP: a whole new configuration. Everything is built before anything is
 * swapped, so a failure leaves the running configuration untouched. SAs whose
 * configuration did not change keep their state (sequence numbers, replay
 * windows), or the peer would drop our traffic as replayed.
 */
/*
 * An IKE-keyed SA outlives a configuration push while the policy it was
 * negotiated for is still there unchanged in name, id, action and mode (ids
 * are stable: the data threads read an SA's policy_id, so it is never rewritten).
 */
static bool ike_sa_policy_stays(const struct sa_conf *sa, const struct wire_config *cfg)
{
	for (uint32_t j = 0; j < cfg->npol; j++)
		if (cfg->pol[j].id == sa->policy_id && strcmp(cfg->pol[j].name, sa->policy) == 0)
			return cfg->pol[j].action == ACT_PROTECT && cfg->pol[j].mode == sa->mode;
	return false;
}

int wire_reload(struct wire *w, struct wire_config *cfg, char *err, size_t errlen)
{
	uint8_t *keep = calloc(w->nsas + 1, 1);
	uint8_t *is_new = calloc(cfg->nsa + 1, 1);
	struct sa **made = calloc(cfg->nsa + 1, sizeof *made);
	uint32_t *same = calloc(w->nsas + 1, sizeof *same);  /* kept SA k is cfg->sa[same[k] - 1] */
	struct pol_stats **st = NULL;
	struct spd *spd = NULL;
	struct snapshot *s;
	uint32_t j = 0;
	int rc = -XE_NOMEM;

	if (!keep || !is_new || !made || !same || sas_reserve(w, cfg->nsa) < 0)
		goto fail;
	if (strcmp(cfg->red.ifname, w->cfg.red.ifname) != 0 || strcmp(cfg->black.ifname, w->cfg.black.ifname) != 0) {
		snprintf(err, errlen, "ports: the interfaces cannot change while running; restart bitw-wire");
		rc = -XE_BAD_PARAM;
		goto fail;
	}
	for (uint32_t k = 0; k < w->nsas; k++)
		keep[k] = w->sas[k]->conf.origin == ORIGIN_IKE && ike_sa_policy_stays(&w->sas[k]->conf, cfg);
	for (uint32_t i = 0; i < cfg->nsa; i++) {
		is_new[i] = 1;
		for (uint32_t k = 0; k < w->nsas; k++) {
			if (w->sas[k]->conf.origin != ORIGIN_IKE && !keep[k] && sa_conf_same(&w->sas[k]->conf, &cfg->sa[i]))
				keep[k] = 1, is_new[i] = 0, same[k] = i + 1;
			else if (keep[k] && w->sas[k]->conf.origin == ORIGIN_IKE &&
			         sa_named(w->sas[k], cfg->sa[i].spi, cfg->sa[i].dir, cfg->sa[i].proto)) {
				snprintf(err, errlen, "sas[%u].spi: 0x%08x %s is in use by an IKE SA", i, cfg->sa[i].spi,
				         cfg->sa[i].dir == DIR_IN ? "in" : "out");
				rc = -XE_SA_EXISTS;
				goto fail;
			}
		}
		if (is_new[i] && (rc = sa_create(&cfg->sa[i], &made[i], err, errlen)) < 0)
			goto fail;
		if (made[i])
			made[i]->created = now_s();
	}
	st = pstats_for(w, cfg->pol, cfg->npol);
	spd = st ? spd_build(cfg->pol, st, cfg->npol, err, errlen) : NULL;
	if (!spd) {
		rc = st ? -XE_BAD_PARAM : -XE_NOMEM;
		goto fail;
	}
	/* Point of no return. */
	{
		struct sa **gone = calloc(w->nsas + 1, sizeof *gone);
		uint32_t ngone = 0;

		if (!gone) {
			spd_free(spd);
			goto fail;
		}
		for (uint32_t k = 0; k < w->nsas; k++) {
			/* read by the control thread only: a kept SA takes the new interval */
			if (same[k])
				w->sas[k]->conf.nat_keepalive = cfg->sa[same[k] - 1].nat_keepalive;
			if (keep[k])
				w->sas[j++] = w->sas[k];
			else
				gone[ngone++] = w->sas[k];
		}
		w->nsas = j;
		for (uint32_t i = 0; i < cfg->nsa; i++)
			if (made[i])
				w->sas[w->nsas++] = made[i];
		free(w->cfg.pol);
		w->cfg.pol = cfg->pol;
		cfg->pol = NULL;
		pstats_swap(w, st, cfg->npol);
		w->cfg.npol = cfg->npol;
		w->cfg.red = cfg->red;
		w->cfg.black = cfg->black;
		admin_state_log(w->cfg.opt.admin_state, cfg->opt.admin_state);
		if (cfg->opt.black_interface_mac != w->cfg.opt.black_interface_mac)
			wlog(WLOG_WARN, "options.black_interface_mac: the black port's MAC changes when bitw-wire restarts");
		w->cfg.opt = cfg->opt;
		s = snapshot_build(w, spd, err, errlen);
		if (s)
			snapshot_publish(w, s);
		else
			spd_free(spd);
		for (uint32_t k = 0; k < ngone; k++)
			sa_destroy(gone[k]);
		free(gone);
	}
	wlog(WLOG_INFO, "configuration reloaded: %u policies, %u SAs", w->cfg.npol, w->nsas);
	free(same);
	free(keep);
	free(is_new);
	free(made);
	return 0;
fail:
	for (uint32_t i = 0; made && i < cfg->nsa; i++)
		if (made[i])
			sa_destroy(made[i]);
	if (st)
		pstats_release(w, st, cfg->npol);
	free(same);
	free(keep);
	free(is_new);
	free(made);
	return rc;
}

void wire_fini(struct wire *w)
{
	struct snapshot *s = atomic_exchange(&w->snap, NULL);

	snapshot_free(s, true);
	for (uint32_t i = 0; i < w->nsas; i++)
		sa_destroy(w->sas[i]);
	free(w->sas);
	if (w->pstats)
		for (uint32_t j = 0; j < w->cfg.npol; j++)
			free(w->pstats[j]);
	free(w->pstats);
	free(w->reserved_spi);
	worker_fini(&w->wk[TH_OUT]);
	worker_fini(&w->wk[TH_IN]);
	txq_destroy(&w->ctl_tx_red);
	txq_destroy(&w->ctl_tx_black);
	neigh_free(w->neigh_red);
	neigh_free(w->neigh_black);
	port_close(&w->red);
	port_close(&w->black);
	if (w->ev_fd >= 0)
		close(w->ev_fd);
	config_free(&w->cfg);
}
