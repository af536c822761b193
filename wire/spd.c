/* spd.c: compiling policies into evaluation order and a classifier that finds the first matching policy fast. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spd.h"
#include "wire.h"

/*
 * The classifier. Lookups by direction (out, in) and family (4, 6) each
 * have their own table. A policy is keyed by the range the packet's
 * destination must fall in (sel.dst outbound, sel.src inbound: the mirror)
 * or, when that range is wide, by the source range; policies wide in both
 * go to a short list scanned always. Each key space is cut into elementary
 * segments at every range boundary, and each segment lists the policies
 * covering it in evaluation order. A lookup binary-searches the two segment
 * arrays and walks the three candidate lists merged by index: the first
 * candidate that matches is exactly what a linear scan would find, since
 * every policy that can match is a candidate and lists are in scan order.
 */

/* A policy covering more segments than this is "wide" for that key. */
#define WIDE_SEGS 64

struct key128 {
	uint64_t hi, lo;
};

struct seg_index {
	struct key128 *bound;   /* sorted segment starts; bound[0] is 0 */
	uint32_t nseg;
	uint32_t *off;          /* nseg + 1 offsets into list */
	uint32_t *list;         /* policy indices, ascending within a segment */
};

struct cls {
	struct seg_index by_dst, by_src;  /* keyed by the packet's dst / src */
	uint32_t *wide;
	uint32_t nwide;
};

struct id_ent {
	uint32_t id, index;
};

struct spd {
	uint64_t gen;
	uint32_t n;
	struct spd_policy *pol;   /* evaluation order */
	struct id_ent *by_id;     /* sorted by id */
	struct cls cls[2][2];     /* [DIR_OUT: 0, DIR_IN: 1][IPv4: 0, IPv6: 1] */
	struct bw_addr *hosts;    /* transport hosts, open-addressed (family 0: empty); NULL: none */
	uint32_t hosts_mask;      /* slots - 1 */
};

static _Atomic uint64_t spd_gen_next = 1;

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static struct key128 key_of(uint8_t family, const uint8_t a[16])
{
	struct key128 k = { 0, 0 };

	if (family == 4)
		k.lo = (uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 | (uint64_t)a[2] << 8 | a[3];
	else {
		k.hi = be64(a);
		k.lo = be64(a + 8);
	}
	return k;
}

static int key_cmp(struct key128 a, struct key128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	return a.lo < b.lo ? -1 : a.lo > b.lo;
}

static int key_cmp_v(const void *a, const void *b)
{
	return key_cmp(*(const struct key128 *)a, *(const struct key128 *)b);
}

/* k + 1; false when k is the largest address of its family. */
static bool key_next(uint8_t family, struct key128 k, struct key128 *out)
{
	if (family == 4) {
		if (k.lo == 0xffffffffu)
			return false;
		out->hi = 0;
		out->lo = k.lo + 1;
		return true;
	}
	if (k.hi == UINT64_MAX && k.lo == UINT64_MAX)
		return false;
	out->lo = k.lo + 1;
	out->hi = k.hi + (out->lo == 0);
	return true;
}

/* The segment holding k: the last bound <= k. */
static uint32_t seg_of(const struct seg_index *x, struct key128 k)
{
	uint32_t lo = 0, hi = x->nseg;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (key_cmp(x->bound[mid], k) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void seg_free(struct seg_index *x)
{
	free(x->bound);
	free(x->off);
	free(x->list);
	memset(x, 0, sizeof(*x));
}

static const struct sel_addr *pol_key(const struct spd_policy *p, int d, bool by_dst)
{
	/* Outbound the packet's dst meets sel.dst; inbound, the mirror. */
	return (d == 0) == by_dst ? &p->conf.sel.dst : &p->conf.sel.src;
}

/* Segment boundaries of every candidate's range. */
static int seg_bounds(struct seg_index *x, const struct spd *spd, const uint32_t *cand, uint32_t n,
                      int d, bool by_dst, uint8_t family)
{
	uint32_t nb = 1;

	x->bound = calloc(2 * (size_t)n + 1, sizeof(*x->bound));
	if (!x->bound)
		return -XE_NOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const struct sel_addr *r = pol_key(&spd->pol[cand[i]], d, by_dst);

		x->bound[nb++] = key_of(family, r->lo);
		if (key_next(family, key_of(family, r->hi), &x->bound[nb]))
			nb++;
	}
	qsort(x->bound, nb, sizeof(*x->bound), key_cmp_v);
	x->nseg = 1;
	for (uint32_t i = 1; i < nb; i++)
		if (key_cmp(x->bound[i], x->bound[x->nseg - 1]))
			x->bound[x->nseg++] = x->bound[i];
	return 0;
}

static void seg_span(const struct seg_index *x, const struct sel_addr *r, uint8_t family, uint32_t *s0, uint32_t *s1)
{
	*s0 = seg_of(x, key_of(family, r->lo));
	*s1 = seg_of(x, key_of(family, r->hi));
}

/* Fill the per-segment lists with the candidates assigned to this index (where[i]). */
static int seg_fill(struct seg_index *x, const struct spd *spd, const uint32_t *cand, const uint8_t *where,
                    uint8_t mine, uint32_t n, int d, bool by_dst, uint8_t family)
{
	uint32_t *fillpos;
	size_t total = 0;

	x->off = calloc((size_t)x->nseg + 1, sizeof(*x->off));
	if (!x->off)
		return -XE_NOMEM;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t s0, s1;

			if (where[i] != mine)
				continue;
			seg_span(x, pol_key(&spd->pol[cand[i]], d, by_dst), family, &s0, &s1);
			for (uint32_t s = s0; s <= s1; s++) {
				if (pass == 0)
					x->off[s + 1]++;
				else
					x->list[fillpos[s]++] = cand[i];
			}
		}
		if (pass == 1)
			break;
		for (uint32_t s = 0; s < x->nseg; s++)
			x->off[s + 1] += x->off[s];
		total = x->off[x->nseg];
		x->list = malloc((total ? total : 1) * sizeof(*x->list));
		fillpos = malloc((size_t)x->nseg * sizeof(*fillpos));
		if (!x->list || !fillpos) {
			free(fillpos);
			return -XE_NOMEM;
		}
		memcpy(fillpos, x->off, (size_t)x->nseg * sizeof(*fillpos));
	}
	free(fillpos);
	return 0;
}

enum { IN_DST = 0, IN_SRC = 1, IN_WIDE = 2 };

/* Put each candidate where it covers fewest segments, or in the wide list. */
static void cls_assign(struct cls *c, const struct spd *spd, const uint32_t *cand, uint8_t *where, uint32_t n,
                       int d, uint8_t family)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t a0, a1, b0, b1, wd, ws;

		seg_span(&c->by_dst, pol_key(&spd->pol[cand[i]], d, true), family, &a0, &a1);
		seg_span(&c->by_src, pol_key(&spd->pol[cand[i]], d, false), family, &b0, &b1);
		wd = a1 - a0 + 1;
		ws = b1 - b0 + 1;
		if (wd <= WIDE_SEGS && wd <= ws)
			where[i] = IN_DST;
		else if (ws <= WIDE_SEGS)
			where[i] = IN_SRC;
		else
			where[i] = IN_WIDE;
	}
}

static int cls_build(struct cls *c, const struct spd *spd, int d, uint8_t family)
{
	uint32_t *cand = malloc(((size_t)spd->n + 1) * sizeof(*cand));
	uint8_t *where = malloc((size_t)spd->n + 1);
	uint32_t n = 0;
	int rc = -XE_NOMEM;

	if (!cand || !where)
		goto out;
	for (uint32_t i = 0; i < spd->n; i++) {
		const struct policy_conf *p = &spd->pol[i].conf;

		if ((p->dir & (d == 0 ? DIR_OUT : DIR_IN)) && p->sel.src.family == family)
			cand[n++] = i;
	}
	if ((rc = seg_bounds(&c->by_dst, spd, cand, n, d, true, family)) ||
	    (rc = seg_bounds(&c->by_src, spd, cand, n, d, false, family)))
		goto out;
	cls_assign(c, spd, cand, where, n, d, family);
	if ((rc = seg_fill(&c->by_dst, spd, cand, where, IN_DST, n, d, true, family)) ||
	    (rc = seg_fill(&c->by_src, spd, cand, where, IN_SRC, n, d, false, family)))
		goto out;
	rc = -XE_NOMEM;
	if (!(c->wide = malloc(((size_t)n + 1) * sizeof(*c->wide))))
		goto out;
	for (uint32_t i = 0; i < n; i++)
		if (where[i] == IN_WIDE)
			c->wide[c->nwide++] = cand[i];
	rc = 0;
out:
	free(cand);
	free(where);
	return rc;
}

static void cls_free(struct cls *c)
{
	seg_free(&c->by_dst);
	seg_free(&c->by_src);
	free(c->wide);
	memset(c, 0, sizeof(*c));
}

void spd_free(struct spd *spd)
{
	if (!spd)
		return;
	for (int d = 0; d < 2; d++)
		for (int f = 0; f < 2; f++)
			cls_free(&spd->cls[d][f]);
	free(spd->pol);
	free(spd->by_id);
	free(spd->hosts);
	free(spd);
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -XE_BAD_PARAM;
}

/* Checks of one policy that the classifier relies on. */
static int policy_check(const struct policy_conf *p, char *err, size_t errlen)
{
	if (!p->name[0] || !memchr(p->name, 0, sizeof(p->name)))
		return fail(err, errlen, "policy id %u: no name", p->id);
	if (p->priority < 1 || p->priority > 7)
		return fail(err, errlen, "policy \"%s\": priority %u out of range 1..7", p->name, p->priority);
	if (p->action > ACT_PROTECT)
		return fail(err, errlen, "policy \"%s\": bad action %u", p->name, p->action);
	if (p->dir < DIR_OUT || p->dir > DIR_BOTH)
		return fail(err, errlen, "policy \"%s\": bad direction %u", p->name, p->dir);
	if ((p->sel.src.family != 4 && p->sel.src.family != 6) || p->sel.src.family != p->sel.dst.family)
		return fail(err, errlen, "policy \"%s\": src and dst must be of the same address family", p->name);
	if (p->action == ACT_PROTECT && p->peer.family != 4 && p->peer.family != 6)
		return fail(err, errlen, "policy \"%s\": a protect policy needs a peer", p->name);
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	const struct id_ent *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

struct order_ent {
	const struct policy_conf *conf;
	struct pol_stats *stats;
	uint32_t pos;
};

static int order_cmp(const void *a, const void *b)
{
	const struct order_ent *x = a, *y = b;

	if (x->conf->priority != y->conf->priority)
		return x->conf->priority < y->conf->priority ? -1 : 1;
	if (x->conf->order != y->conf->order)
		return x->conf->order < y->conf->order ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Policies into evaluation order, and the id index (which finds duplicate ids). */
static int spd_order(struct spd *spd, const struct policy_conf *conf, struct pol_stats *const *stats,
                     char *err, size_t errlen)
{
	struct order_ent *ord = calloc((size_t)spd->n + 1, sizeof(*ord));

	if (!ord)
		return -XE_NOMEM;
	for (uint32_t i = 0; i < spd->n; i++)
		ord[i] = (struct order_ent){ &conf[i], stats ? stats[i] : NULL, i };
	qsort(ord, spd->n, sizeof(*ord), order_cmp);
	for (uint32_t i = 0; i < spd->n; i++) {
		spd->pol[i] = (struct spd_policy){ *ord[i].conf, i, ord[i].stats };
		spd->by_id[i] = (struct id_ent){ ord[i].conf->id, i };
	}
	free(ord);
	qsort(spd->by_id, spd->n, sizeof(*spd->by_id), id_cmp);
	for (uint32_t i = 1; i < spd->n; i++)
		if (spd->by_id[i].id == spd->by_id[i - 1].id)
			return fail(err, errlen, "policy \"%s\": duplicate id %u",
			            spd->pol[spd->by_id[i].index].conf.name, spd->by_id[i].id);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct policy_conf *const *)a)->name, (*(const struct policy_conf *const *)b)->name);
}

static int names_unique(const struct policy_conf *conf, uint32_t n, char *err, size_t errlen)
{
	const struct policy_conf **v = malloc(((size_t)n + 1) * sizeof(*v));
	int rc = 0;

	if (!v)
		return -XE_NOMEM;
	for (uint32_t i = 0; i < n; i++)
		v[i] = &conf[i];
	qsort(v, n, sizeof(*v), name_cmp);
	for (uint32_t i = 1; i < n && !rc; i++)
		if (!strcmp(v[i]->name, v[i - 1]->name))
			rc = fail(err, errlen, "policy \"%s\": duplicate name", v[i]->name);
	free(v);
	return rc;
}

static bool is_transport_host(const struct policy_conf *p)
{
	return p->action == ACT_PROTECT && p->mode == MODE_TRANSPORT && (p->sel.src.family == 4 || p->sel.src.family == 6);
}

static uint32_t host_slot(const struct spd *spd, const struct bw_addr *a)
{
	return (uint32_t)bw_addr_hash(a, 0x9e3779b97f4a7c15ull) & spd->hosts_mask;
}

/* The transport hosts in a table at least twice their number, so a probe ends at an empty slot soon. */
static int hosts_build(struct spd *spd)
{
	uint32_t n = 0, slots = 4;

	for (uint32_t i = 0; i < spd->n; i++)
		n += is_transport_host(&spd->pol[i].conf);
	if (!n)
		return 0;
	while (slots < 2ull * n)
		slots <<= 1;
	if (!(spd->hosts = calloc(slots, sizeof *spd->hosts)))
		return -XE_NOMEM;
	spd->hosts_mask = slots - 1;
	for (uint32_t i = 0; i < spd->n; i++) {
		const struct sel_addr *src = &spd->pol[i].conf.sel.src;
		struct bw_addr a = { .family = src->family };
		uint32_t h;

		if (!is_transport_host(&spd->pol[i].conf))
			continue;
		memcpy(a.a, src->lo, src->family == 4 ? 4 : 16);
		for (h = host_slot(spd, &a); spd->hosts[h].family && !bw_addr_eq(&spd->hosts[h], &a);)
			h = (h + 1) & spd->hosts_mask;
		spd->hosts[h] = a;
	}
	return 0;
}

bool spd_transport_host(const struct spd *spd, const struct bw_addr *addr)
{
	if (!spd || !spd->hosts || (addr->family != 4 && addr->family != 6))
		return false;
	for (uint32_t h = host_slot(spd, addr);; h = (h + 1) & spd->hosts_mask) {
		if (!spd->hosts[h].family)
			return false;
		if (bw_addr_eq(&spd->hosts[h], addr))
			return true;
	}
}

struct spd *spd_build(const struct policy_conf *conf, struct pol_stats *const *stats, uint32_t n,
                      char *err, size_t errlen)
{
	struct spd *spd;
	int rc = 0;

	for (uint32_t i = 0; i < n && !rc; i++)
		rc = policy_check(&conf[i], err, errlen);
	if (rc || names_unique(conf, n, err, errlen))
		return NULL;
	spd = calloc(1, sizeof(*spd));
	if (!spd)
		goto nomem;
	spd->n = n;
	spd->gen = atomic_fetch_add(&spd_gen_next, 1);
	spd->pol = calloc((size_t)n + 1, sizeof(*spd->pol));
	spd->by_id = calloc((size_t)n + 1, sizeof(*spd->by_id));
	if (!spd->pol || !spd->by_id)
		goto nomem;
	if ((rc = spd_order(spd, conf, stats, err, errlen)) == -XE_NOMEM)
		goto nomem;
	for (int d = 0; d < 2 && !rc; d++)
		for (int f = 0; f < 2 && !rc; f++)
			if ((rc = cls_build(&spd->cls[d][f], spd, d, f ? 6 : 4)))
				goto nomem;
	if (!rc && hosts_build(spd) < 0)
		goto nomem;
	if (rc) {
		spd_free(spd);
		return NULL;
	}
	return spd;
nomem:
	if (err && errlen)
		snprintf(err, errlen, "out of memory building the SPD");
	spd_free(spd);
	return NULL;
}

uint32_t spd_count(const struct spd *spd)
{
	return spd ? spd->n : 0;
}

uint64_t spd_generation(const struct spd *spd)
{
	return spd ? spd->gen : 0;
}

const struct spd_policy *spd_at(const struct spd *spd, uint32_t i)
{
	return spd && i < spd->n ? &spd->pol[i] : NULL;
}

const struct spd_policy *spd_by_id(const struct spd *spd, uint32_t id)
{
	uint32_t lo = 0, hi = spd ? spd->n : 0;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (spd->by_id[mid].id == id)
			return &spd->pol[spd->by_id[mid].index];
		if (spd->by_id[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const uint32_t *seg_list(const struct seg_index *x, struct key128 k, const uint32_t **end)
{
	uint32_t s = seg_of(x, k);

	*end = x->list + x->off[s + 1];
	return x->list + x->off[s];
}

const struct spd_policy *spd_lookup(const struct spd *spd, int dir, const struct pkt_info *pi)
{
	const struct cls *c;
	const uint32_t *p[3], *e[3];

	if (!spd || (pi->family != 4 && pi->family != 6) || (dir != DIR_OUT && dir != DIR_IN))
		return NULL;
	c = &spd->cls[dir == DIR_IN][pi->family == 6];
	if (!c->by_dst.nseg)
		return NULL;
	p[0] = seg_list(&c->by_dst, key_of(pi->family, pi->dst.a), &e[0]);
	p[1] = seg_list(&c->by_src, key_of(pi->family, pi->src.a), &e[1]);
	p[2] = c->wide;
	e[2] = c->wide + c->nwide;
	for (;;) {
		int best = -1;

		for (int i = 0; i < 3; i++)
			if (p[i] < e[i] && (best < 0 || *p[i] < *p[best]))
				best = i;
		if (best < 0)
			return NULL;
		if (selector_match(&spd->pol[*p[best]].conf.sel, dir, pi))
			return &spd->pol[*p[best]];
		p[best]++;
	}
}
