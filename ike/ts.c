/* ts.c: traffic selectors: narrowing (responder), checking narrowed ones (initiator), TS payloads. */
#include <string.h>

#include "engine.h"

static uint8_t family_of(uint8_t ts_type)
{
	return ts_type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 6;
}

static void ts_to_conf(const struct ike_ts *t, struct ike_ts_conf *c)
{
	memset(c, 0, sizeof *c);
	c->family = family_of(t->type);
	c->proto = t->ip_proto;
	c->port_lo = t->start_port;
	c->port_hi = t->end_port;
	memcpy(c->lo, t->start, ike_addr_len(c->family));
	memcpy(c->hi, t->end, ike_addr_len(c->family));
}

void ike_ts_from_wire(const struct ike_ts *in, size_t n, struct ike_ts_conf *out, size_t *n_out)
{
	*n_out = 0;
	for (size_t i = 0; i < n && *n_out < IKE_MAX_TS_CONF; i++)
		ts_to_conf(&in[i], &out[(*n_out)++]);
}

/* a ∩ b into out; false when empty. */
static bool ts_intersect(const struct ike_ts_conf *a, const struct ike_ts_conf *b, struct ike_ts_conf *out)
{
	size_t n = ike_addr_len(a->family);

	if (a->family != b->family || (a->proto && b->proto && a->proto != b->proto))
		return false;
	memset(out, 0, sizeof *out);
	out->family = a->family;
	out->proto = a->proto ? a->proto : b->proto;
	out->port_lo = a->port_lo > b->port_lo ? a->port_lo : b->port_lo;
	out->port_hi = a->port_hi < b->port_hi ? a->port_hi : b->port_hi;
	memcpy(out->lo, memcmp(a->lo, b->lo, n) > 0 ? a->lo : b->lo, n);
	memcpy(out->hi, memcmp(a->hi, b->hi, n) < 0 ? a->hi : b->hi, n);
	return out->port_lo <= out->port_hi && memcmp(out->lo, out->hi, n) <= 0;
}

static bool ts_inside(const struct ike_ts_conf *in, const struct ike_ts_conf *out)
{
	size_t n = ike_addr_len(in->family);

	return in->family == out->family && (!out->proto || out->proto == in->proto) &&
	       in->port_lo >= out->port_lo && in->port_hi <= out->port_hi &&
	       memcmp(in->lo, out->lo, n) >= 0 && memcmp(in->hi, out->hi, n) <= 0;
}

static bool ts_dup(const struct ike_ts_conf *list, size_t n, const struct ike_ts_conf *t)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&list[i], t, sizeof *t) == 0)
			return true;
	return false;
}

int ike_ts_narrow(const struct ike_ts *theirs, size_t n_theirs, const struct ike_ts_conf *ours, size_t n_ours,
	struct ike_ts_conf *out, size_t *n_out)
{
	*n_out = 0;
	for (size_t i = 0; i < n_theirs; i++) {
		struct ike_ts_conf t, x;

		ts_to_conf(&theirs[i], &t);
		for (size_t j = 0; j < n_ours && *n_out < IKE_MAX_TS_CONF; j++)
			if (ts_intersect(&t, &ours[j], &x) && !ts_dup(out, *n_out, &x))
				out[(*n_out)++] = x;
	}
	return *n_out ? 0 : -IKE_E_TS_UNACCEPTABLE;
}

bool ike_ts_within(const struct ike_ts *got, size_t n_got, const struct ike_ts_conf *ours, size_t n_ours)
{
	if (!n_got)
		return false;
	for (size_t i = 0; i < n_got; i++) {
		struct ike_ts_conf t;
		bool ok = false;

		ts_to_conf(&got[i], &t);
		for (size_t j = 0; j < n_ours && !ok; j++)
			ok = ts_inside(&t, &ours[j]);
		if (!ok)
			return false;
	}
	return true;
}

int ike_ts_payload_add(struct ike_msg *m, uint8_t type, const struct ike_ts_conf *ts, size_t n)
{
	struct ike_payload *pl = ike_msg_add(m, type);

	if (!pl || m->n_ts_used + n > IKE_MAX_TS)
		return -IKE_E_TOO_MANY;
	pl->u.ts.ts = &m->ts_pool[m->n_ts_used];
	for (size_t i = 0; i < n; i++) {
		struct ike_ts *t = &m->ts_pool[m->n_ts_used++];

		memset(t, 0, sizeof *t);
		t->type = ts[i].family == 4 ? IKE_TS_IPV4_ADDR_RANGE : IKE_TS_IPV6_ADDR_RANGE;
		t->ip_proto = ts[i].proto;
		t->start_port = ts[i].port_lo;
		t->end_port = ts[i].port_hi;
		memcpy(t->start, ts[i].lo, ike_addr_len(ts[i].family));
		memcpy(t->end, ts[i].hi, ike_addr_len(ts[i].family));
		pl->u.ts.n_ts++;
	}
	return 0;
}

size_t ike_ts_from_msg(const struct ike_msg *m, uint8_t type, const struct ike_ts **out)
{
	const struct ike_payload *pl = ike_msg_find(m, type, 0, 0);

	*out = pl ? pl->u.ts.ts : NULL;
	return pl ? pl->u.ts.n_ts : 0;
}

size_t ike_ts_to_host(const struct ike_ts_conf *ts, size_t n, const struct ike_child_key *host, struct ike_ts_conf *out,
	size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < max; i++) {
		struct ike_ts_conf h = ts[i];

		if (host) {
			if (host->host_family != ts[i].family)
				continue;
			memcpy(h.lo, host->host, ike_addr_len(h.family));
			memcpy(h.hi, host->host, ike_addr_len(h.family));
			if (!ts_inside(&h, &ts[i]))
				continue;
		}
		out[k++] = h;
	}
	return k;
}
