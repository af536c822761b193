/* selector.c: the text forms of address/port/protocol selectors, and matching a packet against a selector. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "spd.h"
#include "wire.h"

/* Longest text form we accept: two IPv6 addresses and a separator. */
#define SEL_TEXT_MAX (2 * INET6_ADDRSTRLEN + 2)

static int fail(const char **why, const char *text)
{
	if (why)
		*why = text;
	return -XE_BAD_PARAM;
}

/* A plain address; the family follows from the text (IPv6 always has a ':'). */
static int addr_parse(const char *s, uint8_t *family, uint8_t a[16])
{
	memset(a, 0, 16);
	if (strchr(s, ':')) {
		*family = 6;
		return inet_pton(AF_INET6, s, a) == 1 ? 0 : -XE_BAD_PARAM;
	}
	*family = 4;
	return inet_pton(AF_INET, s, a) == 1 ? 0 : -XE_BAD_PARAM;
}

static unsigned family_bits(uint8_t family)
{
	return family == 4 ? 32 : 128;
}

/* Digits only, no sign, no spaces: strtoul alone would accept " +12". */
static int uint_parse(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9' || strlen(s) > 10)
		return -XE_BAD_PARAM;
	*out = strtoul(s, &end, 10);
	return (*end || *out > max) ? -XE_BAD_PARAM : 0;
}

/* "/24" or, for IPv4, "/255.255.255.0" (which must be contiguous). */
static int plen_parse(const char *s, uint8_t family, unsigned *plen, const char **why)
{
	unsigned long n;

	if (strchr(s, '.')) {
		uint8_t m[4];
		uint32_t mask, inv;

		if (family != 4 || inet_pton(AF_INET, s, m) != 1)
			return fail(why, "bad netmask");
		mask = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
		inv = ~mask;
		if (inv & (inv + 1))
			return fail(why, "netmask is not contiguous");
		*plen = (unsigned)__builtin_popcount(mask);
		return 0;
	}
	if (uint_parse(s, 255, &n) || n > family_bits(family))
		return fail(why, family == 4 ? "bad prefix length (0-32)" : "bad prefix length (0-128)");
	*plen = (unsigned)n;
	return 0;
}

/* hi = lo with every bit after plen set; host bits in lo are an error. */
static int prefix_to_range(struct sel_addr *out, unsigned plen, const char **why)
{
	unsigned nbytes = family_bits(out->family) / 8;

	memcpy(out->hi, out->lo, 16);
	for (unsigned i = 0; i < nbytes; i++) {
		unsigned keep = plen >= (i + 1) * 8 ? 8 : plen > i * 8 ? plen - i * 8 : 0;
		uint8_t host = (uint8_t)(0xffu >> keep);

		if (out->lo[i] & host)
			return fail(why, "host bits set in prefix");
		out->hi[i] |= host;
	}
	return 0;
}

static int any_parse(const char *s, struct sel_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!strcmp(s, "any")) {
		out->family = 4;
		memset(out->hi, 0xff, 4);
		return 0;
	}
	if (!strcmp(s, "any6")) {
		out->family = 6;
		memset(out->hi, 0xff, 16);
		return 0;
	}
	return -XE_BAD_PARAM;
}

int sel_addr_parse_why(const char *s, struct sel_addr *out, const char **why)
{
	char buf[SEL_TEXT_MAX];
	char *sep;
	uint8_t fam2;

	if (!s || strlen(s) >= sizeof(buf))
		return fail(why, "not an address selector");
	if (!any_parse(s, out))
		return 0;
	strcpy(buf, s);
	memset(out, 0, sizeof(*out));
	if ((sep = strchr(buf, '-'))) {
		*sep = 0;
		if (addr_parse(buf, &out->family, out->lo) || addr_parse(sep + 1, &fam2, out->hi))
			return fail(why, "bad address in range");
		if (fam2 != out->family)
			return fail(why, "range mixes IPv4 and IPv6");
		if (memcmp(out->lo, out->hi, 16) > 0)
			return fail(why, "range start is after its end");
		return 0;
	}
	if ((sep = strchr(buf, '/'))) {
		unsigned plen;

		*sep = 0;
		if (addr_parse(buf, &out->family, out->lo))
			return fail(why, "bad address in prefix");
		if (plen_parse(sep + 1, out->family, &plen, why))
			return -XE_BAD_PARAM;
		return prefix_to_range(out, plen, why);
	}
	if (addr_parse(buf, &out->family, out->lo))
		return fail(why, "not an address, prefix, range, any or any6");
	memcpy(out->hi, out->lo, 16);
	return 0;
}

int sel_addr_parse(const char *s, struct sel_addr *out)
{
	return sel_addr_parse_why(s, out, NULL);
}

int sel_port_parse(const char *s, struct sel_port *out)
{
	char buf[16];
	char *sep;
	unsigned long lo, hi;

	if (!s || strlen(s) >= sizeof(buf))
		return -XE_BAD_PARAM;
	if (!strcmp(s, "any")) {
		out->lo = 0;
		out->hi = 65535;
		return 0;
	}
	strcpy(buf, s);
	if ((sep = strchr(buf, '-'))) {
		*sep = 0;
		if (uint_parse(buf, 65535, &lo) || uint_parse(sep + 1, 65535, &hi) || lo > hi)
			return -XE_BAD_PARAM;
	} else {
		if (uint_parse(buf, 65535, &lo))
			return -XE_BAD_PARAM;
		hi = lo;
	}
	out->lo = (uint16_t)lo;
	out->hi = (uint16_t)hi;
	return 0;
}

static const struct { const char *name; int16_t proto; } proto_names[] = {
	{ "any", PROTO_ANY }, { "icmp", 1 }, { "tcp", 6 }, { "udp", 17 },
	{ "icmp6", 58 }, { "ipv6-icmp", 58 }, { "sctp", 132 },
};

int sel_proto_parse(const char *s, int16_t *out)
{
	unsigned long n;

	if (!s)
		return -XE_BAD_PARAM;
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++) {
		if (!strcmp(s, proto_names[i].name)) {
			*out = proto_names[i].proto;
			return 0;
		}
	}
	if (uint_parse(s, 255, &n))
		return -XE_BAD_PARAM;
	*out = (int16_t)n;
	return 0;
}

/* The prefix length if [lo, hi] is exactly one prefix, else -1. */
static int range_plen(const struct sel_addr *a)
{
	unsigned bits = family_bits(a->family);

	for (unsigned plen = 0; plen <= bits; plen++) {
		struct sel_addr p = *a;

		if (!prefix_to_range(&p, plen, NULL) && !memcmp(p.hi, a->hi, 16))
			return (int)plen;
	}
	return -1;
}

const char *sel_addr_str(const struct sel_addr *a, char *buf, size_t len)
{
	int af = a->family == 4 ? AF_INET : AF_INET6;
	char lo[INET6_ADDRSTRLEN], hi[INET6_ADDRSTRLEN];
	int plen;

	if (a->family != 4 && a->family != 6) {
		snprintf(buf, len, "?");
		return buf;
	}
	inet_ntop(af, a->lo, lo, sizeof(lo));
	inet_ntop(af, a->hi, hi, sizeof(hi));
	plen = range_plen(a);
	if (plen == 0)
		snprintf(buf, len, "%s", a->family == 4 ? "any" : "any6");
	else if (plen == (int)family_bits(a->family))
		snprintf(buf, len, "%s", lo);
	else if (plen > 0)
		snprintf(buf, len, "%s/%d", lo, plen);
	else
		snprintf(buf, len, "%s-%s", lo, hi);
	return buf;
}

static bool addr_in(const struct sel_addr *s, const struct bw_addr *a)
{
	return memcmp(a->a, s->lo, 16) >= 0 && memcmp(a->a, s->hi, 16) <= 0;
}

static bool port_in(const struct sel_port *s, uint16_t p)
{
	return p >= s->lo && p <= s->hi;
}

static bool port_any(const struct sel_port *s)
{
	return s->lo == 0 && s->hi == 65535;
}

/*
 * Inbound packets are matched against the mirror image of the selector,
 * ports included, except ICMP type/code: they describe the message, not an
 * endpoint, so swapping them would be meaningless.
 *
 * A non-first fragment carries no upper-layer header, so its ports are
 * unknown: it matches only selectors whose ports are both any (RFC 4301 §7
 * simplified: no fragment state is kept to classify later fragments).
 */
bool selector_match(const struct selector *s, int dir, const struct pkt_info *pi)
{
	bool in = dir == DIR_IN;
	const struct sel_addr *for_src = in ? &s->dst : &s->src;
	const struct sel_addr *for_dst = in ? &s->src : &s->dst;
	const struct sel_port *for_sport = &s->sport, *for_dport = &s->dport;

	if (pi->family != s->src.family)
		return false;
	if (s->proto != PROTO_ANY && s->proto != pi->proto)
		return false;
	if (!addr_in(for_src, &pi->src) || !addr_in(for_dst, &pi->dst))
		return false;
	if (pi->l4_off == 0)
		return port_any(&s->sport) && port_any(&s->dport);
	if (in && pi->proto != 1 && pi->proto != 58) {
		for_sport = &s->dport;
		for_dport = &s->sport;
	}
	return port_in(for_sport, pi->sport) && port_in(for_dport, pi->dport);
}
