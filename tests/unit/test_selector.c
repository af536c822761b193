/* test_selector.c: selector text forms (addresses, prefixes, ranges, ports, protocols) and matching packets against them. */
#include <arpa/inet.h>

#include "check.h"
#include "config.h"
#include "spd.h"
#include "wire.h"

static struct sel_addr A(const char *s)
{
	struct sel_addr a;

	memset(&a, 0xee, sizeof(a));
	if (sel_addr_parse(s, &a))
		printf("# unexpected parse failure: %s\n", s);
	return a;
}

static void ip(uint8_t out[16], const char *s)
{
	memset(out, 0, 16);
	inet_pton(strchr(s, ':') ? AF_INET6 : AF_INET, s, out);
}

static bool range_is(const struct sel_addr *a, int family, const char *lo, const char *hi)
{
	uint8_t l[16], h[16];

	ip(l, lo);
	ip(h, hi);
	return a->family == family && !memcmp(a->lo, l, 16) && !memcmp(a->hi, h, 16);
}

static void test_addr_forms(void)
{
	struct sel_addr a;
	char buf[128];

	a = A("198.18.1.5");
	CHECK(range_is(&a, 4, "198.18.1.5", "198.18.1.5"), "single IPv4 address is a one-address range");
	a = A("198.18.1.0/24");
	CHECK(range_is(&a, 4, "198.18.1.0", "198.18.1.255"), "/24 prefix");
	a = A("198.18.1.0/255.255.255.0");
	CHECK(range_is(&a, 4, "198.18.1.0", "198.18.1.255"), "/255.255.255.0 netmask form equals /24");
	a = A("198.18.0.0/255.254.0.0");
	CHECK(range_is(&a, 4, "198.18.0.0", "198.19.255.255"), "/255.254.0.0 netmask form equals /15");
	a = A("198.18.1.10-198.18.1.20");
	CHECK(range_is(&a, 4, "198.18.1.10", "198.18.1.20"), "explicit IPv4 range");
	a = A("any");
	CHECK(range_is(&a, 4, "0.0.0.0", "255.255.255.255"), "any is all of IPv4");
	a = A("any6");
	CHECK(range_is(&a, 6, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "any6 is all of IPv6");
	a = A("2001:db8::5");
	CHECK(range_is(&a, 6, "2001:db8::5", "2001:db8::5"), "single IPv6 address");
	a = A("2001:db8:1::/64");
	CHECK(range_is(&a, 6, "2001:db8:1::", "2001:db8:1::ffff:ffff:ffff:ffff"), "IPv6 /64 prefix");
	a = A("2001:db8::1-2001:db8::1:0");
	CHECK(range_is(&a, 6, "2001:db8::1", "2001:db8::1:0"), "IPv6 range");
	a = A("0.0.0.0/0");
	CHECK(range_is(&a, 4, "0.0.0.0", "255.255.255.255"), "0.0.0.0/0 is any");
	a = A("198.18.1.7/32");
	CHECK(range_is(&a, 4, "198.18.1.7", "198.18.1.7"), "/32 is one address");

	CHECK(!strcmp(sel_addr_str(&(struct sel_addr){ 0 }, buf, sizeof(buf)), "?"), "no family prints ?");
	a = A("198.18.1.0/255.255.255.0");
	CHECK(!strcmp(sel_addr_str(&a, buf, sizeof(buf)), "198.18.1.0/24"), "prefix printed as /24: %s", buf);
	a = A("198.18.1.10-198.18.1.20");
	CHECK(!strcmp(sel_addr_str(&a, buf, sizeof(buf)), "198.18.1.10-198.18.1.20"), "range printed: %s", buf);
	a = A("any6");
	CHECK(!strcmp(sel_addr_str(&a, buf, sizeof(buf)), "any6"), "any6 printed: %s", buf);
	a = A("any");
	CHECK(!strcmp(sel_addr_str(&a, buf, sizeof(buf)), "any"), "any printed: %s", buf);
	a = A("2001:db8::5");
	CHECK(!strcmp(sel_addr_str(&a, buf, sizeof(buf)), "2001:db8::5"), "single address printed: %s", buf);
	a = A("2001:db8:1::/48");
	CHECK(!strcmp(sel_addr_str(&a, buf, sizeof(buf)), "2001:db8:1::/48"), "v6 prefix printed: %s", buf);
}

static void test_addr_rejects(void)
{
	static const char *const bad[] = {
		"198.18.1.0/33", "10.0.0.300", "198.18.1.20-198.18.1.10", "198.18.1.1-2001:db8::1",
		"198.18.1.1/24", "2001:db8::1/64", "2001:db8::/129", "198.18.1.0/255.0.255.0",
		"198.18.1.0/", "198.18.1.0/-1", "198.18.1.0/ 24", "", "anyy", "ANY", " 198.18.1.1",
		"198.18.1", "2001:db8::/ffff::", "198.18.1.0/+24", "198.18.1.1-", "-198.18.1.1",
		"198.18.1.1-198.18.1.2-198.18.1.3", "2001:db8:::1",
	};
	struct sel_addr a;
	const char *why = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(sel_addr_parse(bad[i], &a), -XE_BAD_PARAM, "reject address selector \"%s\"", bad[i]);
	CHECK(sel_addr_parse_why("198.18.1.1/24", &a, &why) && why && strstr(why, "host bits"),
	      "host bits set is explained: %s", why ? why : "(null)");
	CHECK(sel_addr_parse_why("198.18.1.0/33", &a, &why) && why && strstr(why, "prefix length"),
	      "bad prefix length is explained: %s", why ? why : "(null)");
	CHECK(sel_addr_parse_why("198.18.1.1-2001:db8::1", &a, &why) && why && strstr(why, "IPv4 and IPv6"),
	      "mixed family range is explained: %s", why ? why : "(null)");
	CHECK(sel_addr_parse_why("198.18.1.9-198.18.1.1", &a, &why) && why && strstr(why, "after"),
	      "reversed range is explained: %s", why ? why : "(null)");
}

static void test_ports_protocols(void)
{
	struct sel_port p;
	int16_t proto;

	CHECK(!sel_port_parse("any", &p) && p.lo == 0 && p.hi == 65535, "port any is 0-65535");
	CHECK(!sel_port_parse("80", &p) && p.lo == 80 && p.hi == 80, "single port");
	CHECK(!sel_port_parse("1024-65535", &p) && p.lo == 1024 && p.hi == 65535, "port range");
	CHECK(!sel_port_parse("0", &p) && p.lo == 0 && p.hi == 0, "port 0");
	CHECK_EQ(sel_port_parse("70000", &p), -XE_BAD_PARAM, "port 70000 rejected");
	CHECK_EQ(sel_port_parse("65536", &p), -XE_BAD_PARAM, "port 65536 rejected");
	CHECK_EQ(sel_port_parse("90-80", &p), -XE_BAD_PARAM, "reversed port range rejected");
	CHECK_EQ(sel_port_parse("-1", &p), -XE_BAD_PARAM, "negative port rejected");
	CHECK_EQ(sel_port_parse("8o", &p), -XE_BAD_PARAM, "port with a letter rejected");
	CHECK_EQ(sel_port_parse("", &p), -XE_BAD_PARAM, "empty port rejected");
	CHECK_EQ(sel_port_parse("99999999999999999999", &p), -XE_BAD_PARAM, "huge port rejected");

	CHECK(!sel_proto_parse("any", &proto) && proto == PROTO_ANY, "protocol any");
	CHECK(!sel_proto_parse("tcp", &proto) && proto == 6, "tcp is 6");
	CHECK(!sel_proto_parse("udp", &proto) && proto == 17, "udp is 17");
	CHECK(!sel_proto_parse("icmp", &proto) && proto == 1, "icmp is 1");
	CHECK(!sel_proto_parse("icmp6", &proto) && proto == 58, "icmp6 is 58");
	CHECK(!sel_proto_parse("sctp", &proto) && proto == 132, "sctp is 132");
	CHECK(!sel_proto_parse("47", &proto) && proto == 47, "number 47");
	CHECK(!sel_proto_parse("0", &proto) && proto == 0, "number 0");
	CHECK_EQ(sel_proto_parse("256", &proto), -XE_BAD_PARAM, "protocol 256 rejected");
	CHECK_EQ(sel_proto_parse("gre", &proto), -XE_BAD_PARAM, "unknown protocol name rejected");
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

static struct selector sel(const char *src, const char *dst, const char *proto, const char *sp, const char *dp)
{
	struct selector s;

	s.src = A(src);
	s.dst = A(dst);
	sel_proto_parse(proto, &s.proto);
	sel_port_parse(sp, &s.sport);
	sel_port_parse(dp, &s.dport);
	return s;
}

static void test_match(void)
{
	struct selector s = sel("198.18.1.0/24", "198.18.2.0/24", "tcp", "any", "80");
	struct pkt_info pi = pkt("198.18.1.5", "198.18.2.9", 6, 40000, 80);
	struct pkt_info back = pkt("198.18.2.9", "198.18.1.5", 6, 80, 40000);

	CHECK(selector_match(&s, DIR_OUT, &pi), "outbound packet in both ranges, dport 80 matches");
	CHECK(!selector_match(&s, DIR_IN, &pi), "same packet inbound does not match (not mirrored)");
	CHECK(selector_match(&s, DIR_IN, &back), "the reply inbound matches the mirror image");
	CHECK(!selector_match(&s, DIR_OUT, &back), "the reply outbound does not match");
	pi.dport = 81;
	CHECK(!selector_match(&s, DIR_OUT, &pi), "wrong dport does not match");
	pi = pkt("198.18.1.5", "198.18.2.9", 17, 40000, 80);
	CHECK(!selector_match(&s, DIR_OUT, &pi), "wrong protocol does not match");
	pi = pkt("198.18.3.5", "198.18.2.9", 6, 40000, 80);
	CHECK(!selector_match(&s, DIR_OUT, &pi), "source outside the prefix does not match");

	s = sel("198.18.1.10-198.18.1.20", "any", "any", "any", "any");
	pi = pkt("198.18.1.10", "203.0.113.1", 50, 0, 0);
	CHECK(selector_match(&s, DIR_OUT, &pi), "range includes its start");
	pi = pkt("198.18.1.20", "203.0.113.1", 50, 0, 0);
	CHECK(selector_match(&s, DIR_OUT, &pi), "range includes its end");
	pi = pkt("198.18.1.21", "203.0.113.1", 50, 0, 0);
	CHECK(!selector_match(&s, DIR_OUT, &pi), "range excludes the next address");
	pi = pkt("2001:db8::1", "2001:db8::2", 6, 1, 2);
	CHECK(!selector_match(&s, DIR_OUT, &pi), "IPv6 packet never matches an IPv4 selector");
	s = sel("any6", "2001:db8:2::/48", "any", "any", "any");
	pi = pkt("2001:db8:1::1", "2001:db8:2:5::1", 17, 1, 2);
	CHECK(selector_match(&s, DIR_OUT, &pi), "IPv6 prefix matches");
	pi = pkt("198.18.1.1", "198.18.2.1", 17, 1, 2);
	CHECK(!selector_match(&s, DIR_OUT, &pi), "IPv4 packet never matches an IPv6 selector");

	/* ICMP: type in src_port, code in dst_port, never mirrored. */
	s = sel("any", "any", "icmp", "8", "0");
	pi = pkt("198.18.1.1", "198.18.2.1", 1, 8, 0);
	CHECK(selector_match(&s, DIR_OUT, &pi), "ICMP echo request (type 8 code 0) outbound");
	CHECK(selector_match(&s, DIR_IN, &pi), "ICMP type/code are not mirrored inbound");
	pi.sport = 0;
	CHECK(!selector_match(&s, DIR_OUT, &pi), "ICMP echo reply (type 0) does not match type 8");

	/* Non-first fragments have no ports. */
	s = sel("198.18.1.0/24", "198.18.2.0/24", "udp", "any", "53");
	pi = pkt("198.18.1.5", "198.18.2.9", 17, 0, 0);
	pi.l4_off = 0;
	pi.frag = PKT_FRAG_OTHER;
	CHECK(!selector_match(&s, DIR_OUT, &pi), "non-first fragment does not match a port selector");
	s = sel("198.18.1.0/24", "198.18.2.0/24", "udp", "any", "any");
	CHECK(selector_match(&s, DIR_OUT, &pi), "non-first fragment matches a selector with ports any");
	pi.sport = 53;
	pi.dport = 53;
	s = sel("198.18.1.0/24", "198.18.2.0/24", "udp", "0-65535", "53-53");
	CHECK(!selector_match(&s, DIR_OUT, &pi), "non-first fragment: stale port fields are ignored");
}

int main(void)
{
	test_addr_forms();
	test_addr_rejects();
	test_ports_protocols();
	test_match();
	return check_done();
}
