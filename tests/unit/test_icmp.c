/* test_icmp.c: ICMP too-big errors, echo replies and TCP MSS clamping. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "frames.h"
#include "ip.h"
#include "wire.h"

static uint8_t f[2048], l4[2048], out[2048];
static FILE *hexlog; /* frames for an independent checksum check by scapy */

static void log_frame(const uint8_t *p, uint32_t n)
{
	if (!hexlog)
		return;
	for (uint32_t i = 0; i < n; i++)
		fprintf(hexlog, "%02x", p[i]);
	fputc('\n', hexlog);
}
static const uint8_t MY_MAC[6] = { 0x02, 0xbb, 0, 0, 0, 1 };

static uint32_t udp4(const char *src, const char *dst, uint32_t n, uint16_t frag)
{
	uint32_t len = build_ipv4(f, 17, src, dst, NULL, 0, l4, build_udp(l4, 4000, 5000, n), frag);
	ref_l4_set(f + 14);
	return len;
}

static uint32_t udp6(const char *src, const char *dst, uint32_t n)
{
	uint32_t len = build_ipv6(f, 17, src, dst, l4, build_udp(l4, 4000, 5000, n));
	ref_l4_set(f + 14);
	return len;
}

static void test_too_big_v4(void)
{
	struct pkt_info pi, po;
	struct bw_addr me;
	bw_addr_parse("192.0.2.254", &me);
	uint32_t len = udp4("198.18.0.10", "198.51.100.9", 1400 - 28, 0x4000);
	pkt_parse(f, len, &pi);
	uint32_t n = icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me);
	CHECK_EQ(n, 14 + 576, "v4 error is 576 bytes of IP");
	CHECK_MEM(out, MAC_HOST, 6, "sent back to the sender's MAC");
	CHECK_MEM(out + 6, MY_MAC, 6, "from our MAC");
	CHECK_EQ(pkt_parse(out, n, &po), 0, "the error parses");
	CHECK(po.family == 4 && po.proto == 1 && po.sport == 3 && po.dport == 4, "ICMP type 3 code 4");
	CHECK_EQ(po.ttl, 64, "TTL 64");
	CHECK(bw_addr_eq(&po.src, &me) && bw_addr_eq(&po.dst, &pi.src), "from us to the sender");
	CHECK(ref_ipv4_hdr_ok(out + 14), "IP header checksum");
	CHECK(ref_l4_ok(out + 14), "ICMP checksum");
	CHECK_EQ(get16(out + 34 + 6), 1380, "next-hop MTU");
	CHECK_EQ(get16(out + 34 + 4), 0, "unused field zero");
	CHECK_MEM(out + 42, f + 14, 576 - 28, "quotes the original from its IP header on");
	log_frame(out, n);

	len = udp4("198.18.0.10", "198.51.100.9", 60, 0x4000);
	pkt_parse(f, len, &pi);
	n = icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me);
	CHECK_EQ(n, 14 + 28 + 88, "a short original is quoted whole");
	CHECK(ref_l4_ok(out + 14) && ref_ipv4_hdr_ok(out + 14), "checksums of the short error");
	CHECK_EQ(icmp_build_too_big(out, 60, f, &pi, 1380, MY_MAC, &me), 0, "no room for the required quote: nothing");

	/* an echo request is a query: it may get an error */
	len = build_ipv4(f, 1, "198.18.0.10", "198.51.100.9", NULL, 0, (const uint8_t[]){ 8, 0, 0, 0, 0, 1, 0, 1 }, 8, 0x4000);
	pkt_parse(f, len, &pi);
	n = icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me);
	CHECK(n > 0, "echo request gets an error");
}

static void test_too_big_v6(void)
{
	struct pkt_info pi, po;
	struct bw_addr me;
	bw_addr_parse("2001:db8:ffff::1", &me);
	uint32_t len = udp6("2001:db8:1::10", "2001:db8:2::20", 1500 - 48);
	pkt_parse(f, len, &pi);
	uint32_t n = icmp_build_too_big(out, sizeof(out), f, &pi, 1400, MY_MAC, &me);
	CHECK_EQ(n, 14 + 1280, "v6 error fills the minimum MTU");
	CHECK_EQ(pkt_parse(out, n, &po), 0, "the v6 error parses");
	CHECK(po.family == 6 && po.proto == 58 && po.sport == 2 && po.dport == 0, "ICMPv6 type 2 code 0");
	CHECK_EQ(po.ttl, 64, "hop limit 64");
	CHECK(bw_addr_eq(&po.src, &me) && bw_addr_eq(&po.dst, &pi.src), "from us to the sender");
	CHECK_EQ(get32(out + 54 + 4), 1400, "MTU field");
	CHECK(ref_l4_ok(out + 14), "ICMPv6 checksum (with pseudo header)");
	CHECK_MEM(out + 62, f + 14, 1280 - 48, "quotes the original");
	CHECK_EQ(get16(out + 12), 0x86dd, "IPv6 ethertype");
	log_frame(out, n);
}

static void test_too_big_refused(void)
{
	struct pkt_info pi;
	struct bw_addr me, me6;
	bw_addr_parse("192.0.2.254", &me);
	bw_addr_parse("2001:db8:ffff::1", &me6);
	uint32_t len;

	len = build_ipv4(f, 1, "198.18.0.10", "198.51.100.9", NULL, 0, (const uint8_t[]){ 3, 1, 0, 0, 0, 0, 0, 0 }, 8, 0x4000);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me), 0, "no error about an ICMP error");
	len = build_ipv4(f, 1, "198.18.0.10", "198.51.100.9", NULL, 0, (const uint8_t[]){ 11, 0, 0, 0, 0, 0, 0, 0 }, 8, 0);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me), 0, "no error about time exceeded");
	len = build_ipv6(f, 58, "2001:db8:1::10", "2001:db8:2::20", (const uint8_t[]){ 1, 4, 0, 0, 0, 0, 0, 0 }, 8);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me6), 0, "no error about an ICMPv6 error");
	len = build_ipv4(f, 17, "198.18.0.10", "198.51.100.9", NULL, 0, l4, 200, 0x0000 | 100);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me), 0, "no error about a later fragment");
	len = udp4("198.18.0.10", "224.0.0.9", 100, 0x4000);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me), 0, "no error about multicast");
	len = udp4("198.18.0.10", "255.255.255.255", 100, 0x4000);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me), 0, "no error about broadcast");
	len = udp4("0.0.0.0", "198.51.100.9", 100, 0x4000);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me), 0, "no error to 0.0.0.0");
	len = udp4("198.18.0.10", "198.51.100.9", 100, 0x4000);
	memset(f, 0xff, 6);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1380, MY_MAC, &me), 0, "no error about a link broadcast");
	len = udp6("::", "2001:db8:2::20", 100);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1280, MY_MAC, &me6), 0, "no error to ::");
	len = udp6("2001:db8:1::10", "ff02::1", 100);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1280, MY_MAC, &me6), 0, "no error about v6 multicast");
	len = udp6("2001:db8:1::10", "2001:db8:2::20", 100);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_too_big(out, sizeof(out), f, &pi, 1280, MY_MAC, &me), 0, "no v4 source for a v6 error");
	uint32_t n = icmp_build_too_big(out, sizeof(out), f, &pi, 1280, MY_MAC, &me6);
	CHECK(n > 0, "but a v6 source works");
}

static void test_echo(void)
{
	struct pkt_info pi, po;
	uint8_t req[64] = { 8, 0, 0, 0, 0x12, 0x34, 0, 7 };
	for (int i = 8; i < 64; i++)
		req[i] = (uint8_t)i;
	uint32_t len = build_ipv4(f, 1, "198.18.0.10", "192.0.2.254", NULL, 0, req, 64, 0);
	ref_l4_set(f + 14);
	pkt_parse(f, len, &pi);
	uint32_t n = icmp_build_echo_reply(out, sizeof(out), f, &pi, MY_MAC);
	CHECK_EQ(n, len, "v4 echo reply as long as the request");
	CHECK_EQ(pkt_parse(out, n, &po), 0, "v4 reply parses");
	CHECK(po.proto == 1 && po.sport == 0 && po.dport == 0, "echo reply type 0");
	CHECK(bw_addr_eq(&po.src, &pi.dst) && bw_addr_eq(&po.dst, &pi.src), "addresses swapped");
	CHECK(memcmp(out, MAC_HOST, 6) == 0 && memcmp(out + 6, MY_MAC, 6) == 0, "MACs swapped");
	CHECK(ref_ipv4_hdr_ok(out + 14) && ref_l4_ok(out + 14), "v4 reply checksums");
	CHECK_MEM(out + 34 + 4, req + 4, 60, "id, sequence and data echoed");
	log_frame(out, n);

	memcpy(req, (const uint8_t[]){ 128, 0, 0, 0 }, 4);
	len = build_ipv6(f, 58, "2001:db8:1::10", "2001:db8:ffff::1", req, 64);
	ref_l4_set(f + 14);
	pkt_parse(f, len, &pi);
	n = icmp_build_echo_reply(out, sizeof(out), f, &pi, MY_MAC);
	CHECK_EQ(n, len, "v6 echo reply as long as the request");
	CHECK_EQ(pkt_parse(out, n, &po), 0, "v6 reply parses");
	CHECK(po.proto == 58 && po.sport == 129, "echo reply type 129");
	CHECK(bw_addr_eq(&po.src, &pi.dst) && bw_addr_eq(&po.dst, &pi.src), "v6 addresses swapped");
	CHECK(ref_l4_ok(out + 14), "v6 reply checksum");
	CHECK_MEM(out + 54 + 4, req + 4, 60, "v6 id, sequence and data echoed");
	log_frame(out, n);

	/* in place, as the wire does it */
	n = icmp_build_echo_reply(f, sizeof(f), f, &pi, MY_MAC);
	CHECK(n == len && memcmp(f, out, n) == 0, "in-place reply is the same");

	len = build_ipv4(f, 1, "198.18.0.10", "192.0.2.254", NULL, 0, (const uint8_t[]){ 0, 0, 0, 0, 0, 1, 0, 1 }, 8, 0);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_echo_reply(out, sizeof(out), f, &pi, MY_MAC), 0, "no reply to a reply");
	len = udp4("198.18.0.10", "192.0.2.254", 10, 0);
	pkt_parse(f, len, &pi);
	CHECK_EQ(icmp_build_echo_reply(out, sizeof(out), f, &pi, MY_MAC), 0, "no reply to UDP");
}

static uint32_t syn(int v6, const uint8_t *opt, uint32_t optlen, uint8_t flags)
{
	uint32_t n = build_tcp(l4, 40000, 443, 1000, flags, opt, optlen, 0);
	uint32_t len = v6 ? build_ipv6(f, 6, "2001:db8:1::10", "2001:db8:2::20", l4, n)
	                  : build_ipv4(f, 6, "198.18.0.10", "198.51.100.9", NULL, 0, l4, n, 0x4000);
	ref_l4_set(f + 14);
	return len;
}

static void test_mss(void)
{
	struct pkt_info pi;
	uint8_t before[256];
	bool clamped;
	const uint8_t linux_opts[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };
	uint32_t len = syn(0, linux_opts, 20, 0x02);
	pkt_parse(f, len, &pi);
	clamped = tcp_mss_clamp(f, &pi, 1360);
	CHECK(clamped, "SYN MSS 1460 clamped");
	CHECK_EQ(get16(f + 34 + 22), 1360, "MSS is now 1360");
	CHECK(ref_l4_ok(f + 14), "TCP checksum still valid");
	log_frame(f, len);

	const uint8_t odd_opts[8] = { 1, 2, 4, 0x23, 0x8c, 1, 1, 0 }; /* MSS 9100 at an odd offset */
	len = syn(1, odd_opts, 8, 0x12);
	pkt_parse(f, len, &pi);
	clamped = tcp_mss_clamp(f, &pi, 1220);
	CHECK(clamped, "v6 SYN-ACK clamped");
	CHECK_EQ(get16(f + 54 + 23), 1220, "MSS at an odd offset rewritten");
	CHECK(ref_l4_ok(f + 14), "TCP checksum valid after an odd-offset change");
	log_frame(f, len);

	len = syn(0, (const uint8_t[]){ 2, 4, 2, 0x18 }, 4, 0x02);
	pkt_parse(f, len, &pi);
	memcpy(before, f, len);
	clamped = tcp_mss_clamp(f, &pi, 1360);
	CHECK(!clamped, "MSS 536 is left alone");
	CHECK_MEM(before, f, len, "packet unchanged");

	len = syn(0, (const uint8_t[]){ 1, 1, 4, 2 }, 4, 0x02);
	pkt_parse(f, len, &pi);
	memcpy(before, f, len);
	clamped = tcp_mss_clamp(f, &pi, 1360);
	CHECK(!clamped, "SYN without MSS option: nothing added");
	CHECK(len == pi.ip_len + 14 && memcmp(before, f, len) == 0, "packet unchanged, not grown");

	len = syn(0, (const uint8_t[]){ 2, 4, 0x05, 0xb4 }, 4, 0x10);
	pkt_parse(f, len, &pi);
	clamped = tcp_mss_clamp(f, &pi, 1360);
	CHECK(!clamped, "not a SYN: left alone");

	len = syn(0, (const uint8_t[]){ 8, 0, 2, 4, 0x05, 0xb4, 0, 0 }, 8, 0x02);
	pkt_parse(f, len, &pi);
	memcpy(before, f, len);
	clamped = tcp_mss_clamp(f, &pi, 1360);
	CHECK(!clamped, "option length 0: malformed, left alone");
	CHECK_MEM(before, f, len, "malformed options: unchanged");
	len = syn(0, (const uint8_t[]){ 1, 1, 2, 5 }, 4, 0x02);
	pkt_parse(f, len, &pi);
	clamped = tcp_mss_clamp(f, &pi, 1360);
	CHECK(!clamped, "option running past the header: left alone");
	len = syn(0, (const uint8_t[]){ 2, 3, 0x05, 0xb4 }, 4, 0x02);
	pkt_parse(f, len, &pi);
	clamped = tcp_mss_clamp(f, &pi, 1360);
	CHECK(!clamped, "MSS option of wrong length: left alone");
}

/* scapy recomputes the IP and upper-layer checksums of what we built; they must not change. */
static const char SCAPY_CHECK[] =
	"import sys\n"
	"from scapy.all import Ether\n"
	"bad = n = 0\n"
	"for line in open(sys.argv[1]):\n"
	"    raw = bytes.fromhex(line.strip()); q = Ether(raw); n += 1\n"
	"    for layer in (q.payload, q.payload.payload):\n"
	"        for fld in ('chksum', 'cksum'):\n"
	"            if fld in layer.fields: delattr(layer, fld)\n"
	"    bad += bytes(q) != raw\n"
	"print(n, bad)\n";

static void check_with_scapy(const char *path)
{
	if (access("/usr/bin/python3", X_OK) != 0 ||
	    system("/usr/bin/python3 -c 'import scapy' 2>/dev/null") != 0) {
		CHECK(1, "scapy cross-check # SKIP no /usr/bin/python3 with scapy");
		return;
	}
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"$(cat <<'EOF'\n%sEOF\n)\" %s", SCAPY_CHECK, path);
	FILE *p = popen(cmd, "r");
	int n = -1, bad = -1;
	if (p) {
		if (fscanf(p, "%d %d", &n, &bad) != 2)
			n = -1;
		pclose(p);
	}
	CHECK(n == 6 && bad == 0, "scapy agrees with the checksums of %d frames (%d differ)", n, bad);
}

int main(void)
{
	char path[] = "/tmp/test_icmp_XXXXXX";
	int fd = mkstemp(path);
	hexlog = fd >= 0 ? fdopen(fd, "w") : NULL;
	test_too_big_v4();
	test_too_big_v6();
	test_too_big_refused();
	test_echo();
	test_mss();
	if (hexlog) {
		fclose(hexlog);
		check_with_scapy(path);
		unlink(path);
	}
	return check_done();
}
