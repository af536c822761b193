/* stats.c: the wire's counters, live SAD and running configuration as JSON for the control socket. */
#include "wire_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

static uint64_t ld(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static json_t *port_json(struct port *p, const char *mac_fmt_buf)
{
	return json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "interface", p->ifname, "mac", mac_fmt_buf,
	                 "mtu", (int)p->mtu, "rx_packets", (json_int_t)ld(&p->st.rx_packets), "rx_bytes",
	                 (json_int_t)ld(&p->st.rx_bytes), "tx_packets", (json_int_t)ld(&p->st.tx_packets), "tx_bytes",
	                 (json_int_t)ld(&p->st.tx_bytes), "tx_errors", (json_int_t)ld(&p->st.tx_errors), "ring_drops",
	                 (json_int_t)ld(&p->st.ring_drops), "rx_superframes", (json_int_t)ld(&p->st.rx_superframes),
	                 "rx_copies_dropped", (json_int_t)ld(&p->st.rx_copies_dropped), "link", port_link_up(p));
}

static const char *mac_str(const uint8_t *m, char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

static const char *const action_names[] = { "discard", "bypass", "protect" };
static const char *const state_names[] = { "mature", "dying", "dead" };

static json_t *policies_json(const struct snapshot *s)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; i < spd_count(s->spd); i++) {
		const struct spd_policy *p = spd_at(s->spd, i);
		struct pol_stats *st = p->stats;

		json_array_append_new(arr, json_pack("{s:I,s:s,s:i,s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "id",
		                                     (json_int_t)p->conf.id, "name", p->conf.name, "priority",
		                                     p->conf.priority, "action", action_names[p->conf.action % 3],
		                                     "out_packets", (json_int_t)(st ? ld(&st->packets[0]) : 0), "out_bytes",
		                                     (json_int_t)(st ? ld(&st->bytes[0]) : 0), "in_packets",
		                                     (json_int_t)(st ? ld(&st->packets[1]) : 0), "in_bytes",
		                                     (json_int_t)(st ? ld(&st->bytes[1]) : 0), "drops",
		                                     (json_int_t)(st ? ld(&st->drops[0]) + ld(&st->drops[1]) : 0),
		                                     "has_sa", p->conf.action == ACT_PROTECT && s->out_sa[p->index] != NULL));
	}
	return arr;
}

static json_t *sa_counters(struct sa *sa, json_t *o)
{
	json_object_set_new(o, "packets", json_integer((json_int_t)ld(&sa->st.packets)));
	json_object_set_new(o, "bytes", json_integer((json_int_t)ld(&sa->st.bytes)));
	json_object_set_new(o, "errors", json_integer((json_int_t)ld(&sa->st.errors)));
	json_object_set_new(o, "replay_drops", json_integer((json_int_t)ld(&sa->st.replay_drops)));
	json_object_set_new(o, "auth_drops", json_integer((json_int_t)ld(&sa->st.auth_drops)));
	json_object_set_new(o, "dummy_packets", json_integer((json_int_t)ld(&sa->st.dummies)));
	json_object_set_new(o, "state", json_string(state_names[atomic_load(&sa->state) % 3]));
	json_object_set_new(o, "age", json_integer((json_int_t)(now_s() - sa->created)));
	return o;
}

static json_t *sas_json(struct wire *w, bool full)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; i < w->nsas; i++) {
		struct sa *sa = w->sas[i];
		json_t *o = full ? sa_to_json(&sa->conf)
		                 : json_pack("{s:I,s:s,s:s,s:s}", "spi", (json_int_t)sa->conf.spi, "direction",
		                             sa->conf.dir == DIR_IN ? "in" : "out", "protocol",
		                             sa->conf.proto == PROTO_AH ? "ah" : "esp", "policy", sa->conf.policy);

		json_array_append_new(arr, sa_counters(sa, o));
	}
	return arr;
}

static json_t *drops_json(struct wire *w)
{
	json_t *o = json_object();

	for (int r = XE_MALFORMED_PACKET; r < XE__COUNT; r++)
		json_object_set_new(o, xe_name(r),
		                    json_integer((json_int_t)(ld(&w->wk[0].drops.by_reason[r]) +
		                                              ld(&w->wk[1].drops.by_reason[r]))));
	return o;
}

static void neigh_one(void *ctx, const struct bw_addr *ip, const uint8_t mac[6], bool resolved)
{
	char a[64], m[32];

	json_array_append_new(ctx, json_pack("{s:s,s:s?,s:b}", "address", bw_addr_str(ip, a, sizeof a), "mac",
	                                     resolved ? mac_str(mac, m, sizeof m) : NULL, "resolved", resolved));
}

json_t *wire_stats_json(struct wire *w)
{
	const struct snapshot *s = atomic_load(&w->snap);
	char m1[32], m2[32];
	json_t *nr = json_array(), *nb = json_array();

	neigh_walk(w->neigh_red, neigh_one, nr);
	neigh_walk(w->neigh_black, neigh_one, nb);
	return json_pack("{s:s,s:{s:o,s:o},s:o,s:o,s:o,s:{s:o,s:o}}", "admin_state", admin_state_name(s->opt.admin_state),
	                 "ports", "red",
	                 port_json(&w->red, mac_str(w->red.mac, m1, sizeof m1)), "black",
	                 port_json(&w->black, mac_str(w->black.mac, m2, sizeof m2)), "policies", policies_json(s), "sas",
	                 sas_json(w, false), "drops", drops_json(w), "neighbours", "red", nr, "black", nb);
}

json_t *wire_sa_list_json(struct wire *w)
{
	return json_pack("{s:o}", "sas", sas_json(w, true));
}

json_t *wire_config_json(struct wire *w)
{
	struct wire_config c = w->cfg;
	json_t *j;

	c.sa = calloc(w->nsas + 1, sizeof *c.sa);
	if (!c.sa)
		return NULL;
	for (uint32_t i = 0; i < w->nsas; i++)
		c.sa[i] = w->sas[i]->conf;
	c.nsa = w->nsas;
	j = config_to_json(&c);  /* keys are never written out */
	OPENSSL_cleanse(c.sa, w->nsas * sizeof *c.sa);
	free(c.sa);
	return j;
}
