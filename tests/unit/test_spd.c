/* test_spd.c: SPD evaluation order, lookups in both directions, the classifier against a linear scan, and the flow cache. */
#include <arpa/inet.h>
#include <time.h>

#include "check.h"
#include "config.h"
#include "spd.h"
#include "wire.h"

static void ip(uint8_t out[16], const char *s)
{
	memset(out, 0, 16);
	inet_pton(strchr(s, ':') ? AF_INET6 : AF_INET, s, out);
}

static struct policy_conf pol(uint32_t id, const char *name, int prio, int action, int dir, const char *src,
                              const char *dst, const char *proto, const char *sp, const char *dp)
{
	struct policy_conf p;

	memset(&p, 0, sizeof(p));
	p.id = id;
	snprintf(p.name, sizeof(p.name), "%s", name);
	p.priority = (uint8_t)prio;
	p.order = id;
	p.action = (uint8_t)action;
	p.dir = (uint8_t)dir;
	if (sel_addr_parse(src, &p.sel.src) || sel_addr_parse(dst, &p.sel.dst) ||
	    sel_proto_parse(proto, &p.sel.proto) || sel_port_parse(sp, &p.sel.sport) ||
	    sel_port_parse(dp, &p.sel.dport))
		printf("# bad test policy %s\n", name);
	if (action == ACT_PROTECT) {
		p.peer.family = 4;
		ip(p.peer.a, "198.51.100.10");
	}
	p.mss_clamp = 1;
	return p;
}

static struct pkt_info pkt(const char *src, const char *dst, uint8_t proto, uint16_t sport, uint16_t dport)
{
	struct pkt_info pi;

	memset(&pi, 0, sizeof(pi));
	pi.family = strchr(src, ':') ? 6 : 4;
	pi.src.family = pi.dst.family = pi.family;
	ip(pi.src.a, src);
	ip(pi.dst.a, dst);
	pi.proto = proto;
	pi.l3_off = 14;
	pi.l4_off = pi.family == 4 ? 34 : 54;
	pi.sport = sport;
	pi.dport = dport;
	return pi;
}

static const char *hit(const struct spd *spd, int dir, struct pkt_info pi)
{
	const struct spd_policy *p = spd_lookup(spd, dir, &pi);

	return p ? p->conf.name : "(none)";
}

#define LOOKUP_IS(spd, dir, pi, want, what) \
	do { const char *got_ = hit(spd, dir, pi); \
	     CHECK(!strcmp(got_, want), "%s: got %s, want %s", what, got_, want); } while (0)

static void test_priorities(void)
{
	struct policy_conf c[] = {
		pol(1, "a-to-b", 3, ACT_PROTECT, DIR_BOTH, "198.18.1.0/24", "198.18.2.0/24", "any", "any", "any"),
		pol(2, "to-router", 1, ACT_BYPASS, DIR_BOTH, "198.18.1.0/24", "198.18.2.1", "any", "any", "any"),
		pol(3, "no-telnet", 2, ACT_DISCARD, DIR_BOTH, "any", "any", "tcp", "any", "23"),
		pol(4, "late", 5, ACT_BYPASS, DIR_OUT, "any", "any", "any", "any", "any"),
		pol(5, "early", 5, ACT_DISCARD, DIR_OUT, "any", "any", "any", "any", "any"),
		pol(6, "v6", 4, ACT_BYPASS, DIR_BOTH, "2001:db8:1::/48", "2001:db8:2::/48", "udp", "1024-65535", "53"),
	};
	char err[256] = "";
	struct spd *spd;

	c[3].order = 9; /* "late" comes first in the list but has a higher order */
	c[4].order = 2;
	spd = spd_build(c, NULL, 6, err, sizeof(err));
	CHECK(spd != NULL, "spd builds: %s", err);
	if (!spd)
		return;
	CHECK_EQ(spd_count(spd), 6, "six policies");
	CHECK(!strcmp(spd_at(spd, 0)->conf.name, "to-router") && !strcmp(spd_at(spd, 1)->conf.name, "no-telnet") &&
	      !strcmp(spd_at(spd, 2)->conf.name, "a-to-b") && !strcmp(spd_at(spd, 3)->conf.name, "v6") &&
	      !strcmp(spd_at(spd, 4)->conf.name, "early") && !strcmp(spd_at(spd, 5)->conf.name, "late"),
	      "evaluation order: priority, then order");
	CHECK(spd_at(spd, 6) == NULL, "spd_at past the end is NULL");
	CHECK(spd_by_id(spd, 3) && !strcmp(spd_by_id(spd, 3)->conf.name, "no-telnet"), "spd_by_id finds id 3");
	CHECK(spd_by_id(spd, 3)->index == 1, "by-id entry knows its evaluation index");
	CHECK(spd_by_id(spd, 77) == NULL, "unknown id is NULL");

	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.2.1", 6, 1000, 80), "to-router",
	          "priority 1 bypass beats priority 3 protect");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.2.9", 6, 1000, 80), "a-to-b", "subnet to subnet: protect");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.2.9", 6, 1000, 23), "no-telnet",
	          "telnet discard (priority 2) beats protect (priority 3)");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.2.1", 6, 1000, 23), "to-router",
	          "priority 1 still beats telnet discard");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.7.5", "198.18.8.9", 17, 1, 2), "early",
	          "same priority: lower order wins though listed later");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.7.5", "198.18.8.9", 17, 1, 2), "(none)", "out-only policies never match inbound");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.2.9", "198.18.1.5", 6, 80, 1000), "a-to-b", "inbound matches the mirror image");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.2.1", "198.18.1.5", 6, 80, 1000), "to-router", "inbound mirror of the bypass");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.1.5", "198.18.2.9", 6, 1000, 80), "(none)",
	          "an outbound-shaped packet seen inbound matches nothing");
	LOOKUP_IS(spd, DIR_OUT, pkt("2001:db8:1::5", "2001:db8:2::9", 17, 5000, 53), "v6", "IPv6 udp 53 bypass");
	LOOKUP_IS(spd, DIR_IN, pkt("2001:db8:2::9", "2001:db8:1::5", 17, 53, 5000), "v6",
	          "IPv6 reply inbound: ports mirrored too");
	LOOKUP_IS(spd, DIR_OUT, pkt("2001:db8:1::5", "2001:db8:2::9", 17, 80, 53), "(none)", "source port out of range");
	LOOKUP_IS(spd, DIR_OUT, pkt("2001:db8:1::5", "2001:db8:2::9", 6, 5000, 53), "(none)", "IPv6 tcp: wrong protocol");
	spd_free(spd);
}

static void test_direction_and_fragments(void)
{
	struct policy_conf c[] = {
		pol(1, "out-web", 1, ACT_BYPASS, DIR_OUT, "198.18.1.0/24", "any", "tcp", "any", "80"),
		pol(2, "in-ssh", 1, ACT_BYPASS, DIR_IN, "198.18.1.10", "any", "tcp", "any", "22"),
		pol(3, "ping", 2, ACT_BYPASS, DIR_BOTH, "198.18.1.0/24", "198.18.9.0/24", "icmp", "8", "0"),
		pol(4, "rest", 7, ACT_PROTECT, DIR_BOTH, "198.18.1.0/24", "198.18.9.0/24", "any", "any", "any"),
	};
	char err[256] = "";
	struct spd *spd = spd_build(c, NULL, 4, err, sizeof(err));
	struct pkt_info frag;

	CHECK(spd != NULL, "spd builds: %s", err);
	if (!spd)
		return;
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.9.1", 6, 3333, 80), "out-web", "outbound web");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.9.1", "198.18.1.5", 6, 80, 3333), "rest", "out-only web is not used inbound");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.9.1", "198.18.1.10", 6, 5555, 22), "rest",
	          "in-only mirrored: packet sport (not dport) meets sel.dport, so ssh does not match");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.9.1", "198.18.1.10", 6, 22, 5555), "in-ssh", "in-only policy inbound");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.10", "198.18.9.1", 6, 22, 5555), "rest", "in-only policy not outbound");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.9.1", 1, 8, 0), "ping", "ICMP echo request type 8 code 0");
	LOOKUP_IS(spd, DIR_IN, pkt("198.18.9.1", "198.18.1.5", 1, 8, 0), "ping", "ICMP echo request inbound");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.9.1", 1, 0, 0), "rest", "ICMP echo reply is another type");
	LOOKUP_IS(spd, DIR_OUT, pkt("198.18.1.5", "198.18.9.1", 1, 8, 1), "rest", "ICMP code 1 is not code 0");
	frag = pkt("198.18.1.5", "198.18.9.1", 1, 8, 0);
	frag.l4_off = 0;
	frag.frag = PKT_FRAG_OTHER;
	LOOKUP_IS(spd, DIR_OUT, frag, "rest", "non-first ICMP fragment skips the type/code policy");
	frag.proto = 6;
	frag.dport = 80;
	LOOKUP_IS(spd, DIR_OUT, frag, "rest", "non-first TCP fragment skips the port 80 policy");
	spd_free(spd);
}

static void test_build_errors(void)
{
	struct policy_conf c[2];
	char err[256];

	c[0] = pol(1, "a", 1, ACT_BYPASS, DIR_BOTH, "any", "any", "any", "any", "any");
	c[1] = pol(1, "b", 1, ACT_BYPASS, DIR_BOTH, "any", "any", "any", "any", "any");
	err[0] = 0;
	CHECK(!spd_build(c, NULL, 2, err, sizeof(err)) && strstr(err, "duplicate id"), "duplicate id: %s", err);
	c[1] = pol(2, "a", 1, ACT_BYPASS, DIR_BOTH, "any", "any", "any", "any", "any");
	err[0] = 0;
	CHECK(!spd_build(c, NULL, 2, err, sizeof(err)) && strstr(err, "duplicate name"), "duplicate name: %s", err);
	c[1] = pol(2, "b", 1, ACT_BYPASS, DIR_BOTH, "any", "any6", "any", "any", "any");
	err[0] = 0;
	CHECK(!spd_build(c, NULL, 2, err, sizeof(err)) && strstr(err, "\"b\"") && strstr(err, "family"),
	      "family mismatch names the policy: %s", err);
	c[1] = pol(2, "b", 1, ACT_PROTECT, DIR_BOTH, "any", "any", "any", "any", "any");
	c[1].peer.family = 0;
	err[0] = 0;
	CHECK(!spd_build(c, NULL, 2, err, sizeof(err)) && strstr(err, "peer"), "protect without peer: %s", err);
	c[1] = pol(2, "b", 9, ACT_BYPASS, DIR_BOTH, "any", "any", "any", "any", "any");
	err[0] = 0;
	CHECK(!spd_build(c, NULL, 2, err, sizeof(err)) && strstr(err, "priority"), "priority 9: %s", err);
	{
		struct spd *empty = spd_build(NULL, NULL, 0, err, sizeof(err));
		struct pkt_info pi = pkt("198.18.1.1", "198.18.2.2", 6, 1, 2);

		CHECK(empty && spd_count(empty) == 0 && !spd_lookup(empty, DIR_OUT, &pi), "an empty SPD matches nothing");
		spd_free(empty);
	}
}

/* ---- randomised: the classifier must equal a linear scan ---- */

/* The transport hosts (single src of a transport protect policy) in a table built with the SPD. */
static void test_transport_hosts(void)
{
	enum { N = 300 };
	static struct policy_conf c[N + 3];
	char src[64], err[256] = "";
	struct bw_addr a;
	uint32_t found = 0;

	for (uint32_t i = 0; i < N; i++) {
		snprintf(src, sizeof src, "198.18.%u.%u", i / 200, i % 200 + 1);
		c[i] = pol(i + 1, "", 3, ACT_PROTECT, DIR_BOTH, src, "203.0.113.7", "any", "any", "any");
		snprintf(c[i].name, sizeof c[i].name, "t%u", i);
		c[i].mode = MODE_TRANSPORT;
		ip(c[i].peer.a, "203.0.113.7");
	}
	c[N] = pol(N + 1, "v6host", 3, ACT_PROTECT, DIR_BOTH, "2001:db8:1::10", "2001:db8:2::10", "any", "any", "any");
	c[N].mode = MODE_TRANSPORT;
	c[N].peer.family = 6;
	ip(c[N].peer.a, "2001:db8:2::10");
	c[N + 1] = pol(N + 2, "tunnel", 3, ACT_PROTECT, DIR_BOTH, "198.18.5.5", "198.18.6.0/24", "any", "any", "any");
	c[N + 2] = pol(N + 3, "bypass", 3, ACT_BYPASS, DIR_BOTH, "198.18.5.6", "any", "any", "any", "any");
	c[N + 2].mode = MODE_TRANSPORT;
	struct spd *spd = spd_build(c, NULL, N + 3, err, sizeof err);
	CHECK(spd != NULL, "transport policies build: %s", err);
	if (!spd)
		return;
	for (uint32_t i = 0; i < N; i++) {
		snprintf(src, sizeof src, "198.18.%u.%u", i / 200, i % 200 + 1);
		bw_addr_parse(src, &a);
		found += spd_transport_host(spd, &a);
	}
	CHECK_EQ(found, N, "each transport policy's host is a transport host");
	bw_addr_parse("2001:db8:1::10", &a);
	CHECK(spd_transport_host(spd, &a), "an IPv6 transport host");
	bw_addr_parse("198.18.1.201", &a);
	CHECK(!spd_transport_host(spd, &a), "an address next to them is not");
	bw_addr_parse("203.0.113.7", &a);
	CHECK(!spd_transport_host(spd, &a), "nor the peer");
	bw_addr_parse("198.18.5.5", &a);
	CHECK(!spd_transport_host(spd, &a), "nor a tunnel policy's source");
	bw_addr_parse("198.18.5.6", &a);
	CHECK(!spd_transport_host(spd, &a), "nor a bypass policy's");
	bw_addr_parse("198.18.0.1", &a), a.family = 6;  /* an IPv4 host's bytes read as IPv6 */
	CHECK(!spd_transport_host(spd, &a), "an IPv4 host's bytes under another family are not");
	spd_free(spd);
	spd = spd_build(c + N + 1, NULL, 2, err, sizeof err);
	bw_addr_parse("198.18.0.1", &a);
	CHECK(spd && !spd_transport_host(spd, &a), "an SPD without transport policies has no hosts");
	spd_free(spd);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

/* An address in a small space (so policies overlap), rarely outside it. */
static void rnd_addr(uint8_t family, uint8_t a[16])
{
	uint32_t v = rnd(20) ? rnd(1024) : rnd(0xffffffffu);

	memset(a, 0, 16);
	if (family == 4) {
		a[0] = 198;
		a[1] = 18;
		a[2] |= (uint8_t)(v >> 8);
		a[3] = (uint8_t)v;
		if (v > 1023)
			memcpy(a, &v, 4);
	} else {
		a[0] = 0x20;
		a[1] = 0x01;
		a[2] = 0x0d;
		a[3] = 0xb8;
		a[14] = (uint8_t)(v >> 8);
		a[15] = (uint8_t)v;
		if (v > 1023)
			memcpy(a + 4, &v, 4);
	}
}

static void rnd_sel_addr(uint8_t family, struct sel_addr *s)
{
	uint32_t form = rnd(10);
	unsigned bits = family == 4 ? 32 : 128;
	char text[100], buf[INET6_ADDRSTRLEN], buf2[INET6_ADDRSTRLEN];
	int af = family == 4 ? AF_INET : AF_INET6;
	uint8_t a[16], b[16];

	rnd_addr(family, a);
	rnd_addr(family, b);
	if (memcmp(a, b, 16) > 0) {
		uint8_t t[16];

		memcpy(t, a, 16);
		memcpy(a, b, 16);
		memcpy(b, t, 16);
	}
	inet_ntop(af, a, buf, sizeof(buf));
	inet_ntop(af, b, buf2, sizeof(buf2));
	if (form == 0) {
		snprintf(text, sizeof(text), "%s", family == 4 ? "any" : "any6");
	} else if (form < 3) {
		snprintf(text, sizeof(text), "%s", buf);
	} else if (form < 7) {
		unsigned plen = bits - rnd(11);

		/* clear host bits */
		for (unsigned i = plen; i < bits; i++)
			a[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
		inet_ntop(af, a, buf, sizeof(buf));
		snprintf(text, sizeof(text), "%s/%u", buf, plen);
	} else {
		snprintf(text, sizeof(text), "%s-%s", buf, buf2);
	}
	if (sel_addr_parse(text, s))
		printf("# random selector rejected: %s\n", text);
}

static void rnd_port(struct sel_port *p, bool any)
{
	uint32_t f = any ? 0 : rnd(3);

	p->lo = 0;
	p->hi = 65535;
	if (f == 1) {
		p->lo = p->hi = (uint16_t)rnd(40);
	} else if (f == 2) {
		p->lo = (uint16_t)rnd(40);
		p->hi = (uint16_t)(p->lo + rnd(20));
	}
}

static const uint8_t protos[] = { 6, 17, 1, 58, 50 };

static void rnd_policy(struct policy_conf *p, uint32_t i)
{
	uint8_t family = rnd(5) ? 4 : 6;
	bool any_proto = rnd(3) == 0;

	memset(p, 0, sizeof(*p));
	p->id = i + 1;
	snprintf(p->name, sizeof(p->name), "p%u", i);
	p->priority = (uint8_t)(1 + rnd(7));
	p->order = rnd(50);
	p->action = (uint8_t)rnd(3);
	p->dir = (uint8_t)(1 + rnd(3));
	rnd_sel_addr(family, &p->sel.src);
	rnd_sel_addr(family, &p->sel.dst);
	p->sel.proto = any_proto ? PROTO_ANY : protos[rnd(sizeof(protos))];
	rnd_port(&p->sel.sport, any_proto);
	rnd_port(&p->sel.dport, any_proto);
	p->peer.family = 4;
}

static void rnd_pkt(struct pkt_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	pi->family = rnd(5) ? 4 : 6;
	pi->src.family = pi->dst.family = pi->family;
	rnd_addr(pi->family, pi->src.a);
	rnd_addr(pi->family, pi->dst.a);
	pi->proto = protos[rnd(sizeof(protos))];
	pi->l4_off = rnd(20) ? 34 : 0;
	pi->sport = (uint16_t)rnd(60);
	pi->dport = (uint16_t)rnd(60);
}

static const struct spd_policy *linear_lookup(const struct spd *spd, int dir, const struct pkt_info *pi)
{
	for (uint32_t i = 0; i < spd_count(spd); i++) {
		const struct spd_policy *p = spd_at(spd, i);

		if ((p->conf.dir & dir) && selector_match(&p->conf.sel, dir, pi))
			return p;
	}
	return NULL;
}

static void test_random_equivalence(uint32_t npol, uint32_t npkt)
{
	struct policy_conf *c = calloc(npol, sizeof(*c));
	char err[256] = "";
	struct spd *spd;
	uint32_t mismatches = 0, matched = 0;

	for (uint32_t i = 0; i < npol; i++)
		rnd_policy(&c[i], i);
	spd = spd_build(c, NULL, npol, err, sizeof(err));
	CHECK(spd != NULL, "random SPD of %u policies builds: %s", npol, err);
	for (uint32_t i = 0; spd && i < npkt; i++) {
		struct pkt_info pi;
		int dir = rnd(2) ? DIR_OUT : DIR_IN;
		const struct spd_policy *want, *got;

		rnd_pkt(&pi);
		want = linear_lookup(spd, dir, &pi);
		got = spd_lookup(spd, dir, &pi);
		mismatches += want != got;
		matched += want != NULL;
	}
	CHECK_EQ(mismatches, 0, "classifier equals linear scan: %u policies, %u packets (%u matched something)",
	         npol, npkt, matched);
	CHECK(matched > 0, "the random packets match policies (%u of %u)", matched, npkt);
	spd_free(spd);
	free(c);
}

/* ---- flow cache ---- */

static void test_flow_cache(void)
{
	struct policy_conf c1[] = {
		pol(1, "old", 1, ACT_BYPASS, DIR_BOTH, "198.18.1.0/24", "198.18.2.0/24", "any", "any", "any"),
	};
	struct policy_conf c2[] = {
		pol(1, "new", 1, ACT_DISCARD, DIR_BOTH, "198.18.1.0/24", "198.18.2.0/24", "any", "any", "any"),
	};
	struct flow_cache *fc = flow_cache_new(1024);
	struct pkt_info pi = pkt("198.18.1.5", "198.18.2.9", 6, 1000, 80), other = pkt("198.18.1.5", "198.18.3.9", 6, 1, 2);
	struct spd *s1 = spd_build(c1, NULL, 1, NULL, 0), *s2;
	const struct spd_policy *p, *q;
	uint64_t hits, misses;

	CHECK(fc && s1, "cache and spd built");
	if (!fc || !s1)
		return;
	CHECK(flow_cache_new(1000) == NULL, "cache size must be a power of two");
	p = flow_cache_lookup(fc, s1, DIR_OUT, &pi);
	CHECK(p && !strcmp(p->conf.name, "old"), "first lookup finds the policy");
	/* CHECK evaluates its condition twice: look up outside it. */
	q = flow_cache_lookup(fc, s1, DIR_OUT, &pi);
	CHECK(q == p, "second lookup: same policy");
	q = flow_cache_lookup(fc, s1, DIR_OUT, &other);
	CHECK(q == NULL, "no-match result");
	q = flow_cache_lookup(fc, s1, DIR_OUT, &other);
	CHECK(q == NULL, "no-match result, cached");
	q = flow_cache_lookup(fc, s1, DIR_IN, &pi);
	CHECK(q == NULL, "direction is part of the key");
	flow_cache_stats(fc, &hits, &misses);
	CHECK(hits == 2 && misses == 3, "two hits, three misses (got %llu/%llu)", (unsigned long long)hits,
	      (unsigned long long)misses);
	pi.l4_off = 0;
	p = flow_cache_lookup(fc, s1, DIR_OUT, &pi);
	flow_cache_stats(fc, &hits, &misses);
	CHECK(p && misses == 4, "a non-first fragment of the flow is its own entry");
	pi.l4_off = 34;

	/* A new SPD, possibly at the old one's address, must not see old entries. */
	spd_free(s1);
	s2 = spd_build(c2, NULL, 1, NULL, 0);
	p = flow_cache_lookup(fc, s2, DIR_OUT, &pi);
	CHECK(p && !strcmp(p->conf.name, "new"), "after an SPD change the new policy is returned");
	CHECK(spd_generation(s2) != 0, "spd has a generation");
	spd_free(s2);
	flow_cache_free(fc);
}

/* ---- speed (printed, not asserted) ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);  /* CPU time: the machine is shared */
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Site-to-site shaped: n subnets behind peers, a few port rules on top, a catch-all at the bottom. */
static struct spd *bench_spd(uint32_t n)
{
	struct policy_conf *c = calloc(n, sizeof(*c));
	struct spd *spd;
	char dst[64];

	for (uint32_t i = 0; i < n; i++) {
		snprintf(dst, sizeof(dst), "198.19.%u.%u/28", (i / 16) % 256, (i % 16) * 16);
		c[i] = pol(i + 1, "x", 3, ACT_PROTECT, DIR_BOTH, "198.18.0.0/16", dst, "any", "any", "any");
		snprintf(c[i].name, sizeof(c[i].name), "site%u", i);
		if (i >= 4096) { /* beyond 198.19/16: IPv6 sites */
			c[i].sel.src = (struct sel_addr){ 0 };
			sel_addr_parse("2001:db8:1::/48", &c[i].sel.src);
			snprintf(dst, sizeof(dst), "2001:db8:2:%x::/64", i);
			sel_addr_parse(dst, &c[i].sel.dst);
		}
	}
	if (n > 3) {
		c[0] = pol(1, "dns", 1, ACT_BYPASS, DIR_BOTH, "any", "any", "udp", "any", "53");
		c[1] = pol(2, "telnet", 2, ACT_DISCARD, DIR_BOTH, "any", "any", "tcp", "any", "23");
		c[n - 1] = pol(n, "rest", 7, ACT_DISCARD, DIR_BOTH, "any", "any", "any", "any", "any");
	}
	spd = spd_build(c, NULL, n, NULL, 0);
	free(c);
	return spd;
}

static void bench(uint32_t n)
{
	struct spd *spd = bench_spd(n);
	enum { NPKT = 4096, ROUNDS = 100 };
	struct pkt_info *pk = calloc(NPKT, sizeof(*pk));
	struct flow_cache *fc = flow_cache_new(4096);
	volatile uintptr_t sink = 0;
	double t0, t_cls, t_lin, t_fc;
	uint32_t wrong = 0;

	CHECK(spd != NULL, "benchmark SPD of %u policies builds", n);
	if (!spd)
		return;
	for (uint32_t i = 0; i < NPKT; i++) {
		rnd_pkt(&pk[i]);
		pk[i].src.a[1] = 18;
		pk[i].dst.a[1] = 19;
		pk[i].dst.a[2] = (uint8_t)rnd(256);
		pk[i].proto = 6;
		pk[i].l4_off = 34;
	}
	t0 = now_s();
	for (int r = 0; r < ROUNDS; r++)
		for (uint32_t i = 0; i < NPKT; i++)
			sink += (uintptr_t)spd_lookup(spd, DIR_OUT, &pk[i]);
	t_cls = now_s() - t0;
	t0 = now_s();
	for (uint32_t i = 0; i < NPKT / 16; i++)
		sink += (uintptr_t)linear_lookup(spd, DIR_OUT, &pk[i]);
	t_lin = (now_s() - t0) * 16 * ROUNDS;
	t0 = now_s();
	for (int r = 0; r < ROUNDS; r++)
		for (uint32_t i = 0; i < NPKT; i++)
			sink += (uintptr_t)flow_cache_lookup(fc, spd, DIR_OUT, &pk[i]);
	t_fc = now_s() - t0;
	printf("# %5u policies: classifier %.3f M lookups/s, linear scan %.3f M/s, flow cache %.3f M/s (CPU time)\n", n,
	       NPKT * ROUNDS / t_cls / 1e6, NPKT * ROUNDS / t_lin / 1e6, NPKT * ROUNDS / t_fc / 1e6);
	for (uint32_t i = 0; i < NPKT / 16; i++)
		wrong += spd_lookup(spd, DIR_OUT, &pk[i]) != linear_lookup(spd, DIR_OUT, &pk[i]);
	(void)sink;
	CHECK_EQ(wrong, 0, "benchmark lookups agree with the linear scan (%u policies)", n);
	flow_cache_free(fc);
	free(pk);
	spd_free(spd);
}

int main(void)
{
	test_priorities();
	test_direction_and_fragments();
	test_build_errors();
	test_transport_hosts();
	test_random_equivalence(10, 20000);
	test_random_equivalence(300, 20000);
	test_random_equivalence(3000, 5000);
	test_flow_cache();
	bench(10);
	bench(10000);
	return check_done();
}
