/* test_arp.c: ARP and IPv6 ND on a port: answers for our addresses, learning, requests and solicitations, bad frames. */
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "port.h"
#include "wire.h"

static const uint8_t our_mac[6] = { 0x02, 0xb1, 0x70, 0x00, 0x00, 0x01 };
static const uint8_t host_mac[6] = { 0x02, 0x00, 0x5e, 0x00, 0x00, 0x07 };
static const uint8_t host_mac2[6] = { 0x02, 0x00, 0x5e, 0x00, 0x00, 0x08 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static const uint8_t our4[4] = { 192, 0, 2, 10 }, host4[4] = { 192, 0, 2, 1 }, other4[4] = { 192, 0, 2, 20 };
static const uint8_t our6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 };
static const uint8_t host6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x01 };
static const uint8_t other6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x20 };
static const uint8_t unspec6[16];
static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };

/* The test's own RFC 1071 sum, so checksums are not checked with the code under test. */
static uint16_t ref_csum(const uint8_t *src, const uint8_t *dst, const uint8_t *icmp, uint32_t len)
{
	uint32_t sum = 0;
	for (int i = 0; i < 16; i += 2)
		sum += (uint32_t)(src[i] << 8 | src[i + 1]) + (uint32_t)(dst[i] << 8 | dst[i + 1]);
	sum += len + 58;
	for (uint32_t i = 0; i < len; i += 2)
		sum += (uint32_t)(icmp[i] << 8 | (i + 1 < len ? icmp[i + 1] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

struct rig {
	int sv[2];
	struct port port;
	struct txq tx;
	struct port_conf pc;
	struct neigh_table *neigh;
	struct l2_self self;
};

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof *r);
	socketpair(AF_UNIX, SOCK_DGRAM, 0, r->sv);
	txq_init_fd(&r->tx, &r->port, r->sv[0]);
	r->pc.addr[0].family = 4;
	memcpy(r->pc.addr[0].a, our4, 4);
	r->pc.addr[1].family = 6;
	memcpy(r->pc.addr[1].a, our6, 16);
	r->pc.naddr = 2;
	r->neigh = neigh_new(64, 300, 4);
	r->self = (struct l2_self){ .pc = &r->pc, .mac = our_mac, .neigh = r->neigh, .tx = &r->tx };
}

static void rig_free(struct rig *r)
{
	neigh_free(r->neigh);
	txq_destroy(&r->tx);
	close(r->sv[1]);
}

/* Flush what the code under test queued and read back one frame; returns its length or -1. */
static int rig_sent(struct rig *r, uint8_t *buf, size_t size)
{
	txq_flush(&r->tx);
	return (int)recv(r->sv[1], buf, size, MSG_DONTWAIT);
}

static bool learned(struct rig *r, int family, const uint8_t *ip, const uint8_t mac[6])
{
	struct bw_addr a = { .family = (uint8_t)family };
	memcpy(a.a, ip, family == 4 ? 4 : 16);
	uint8_t got[6];
	return neigh_lookup(r->neigh, &a, got, 1000) && memcmp(got, mac, 6) == 0;
}

static uint32_t arp_frame(uint8_t *f, const uint8_t *edst, uint16_t op, const uint8_t *sha, const uint8_t *spa,
                          const uint8_t *tha, const uint8_t *tpa)
{
	memset(f, 0, 60);
	memcpy(f, edst, 6);
	memcpy(f + 6, sha, 6);
	f[12] = 0x08, f[13] = 0x06;
	uint8_t *a = f + 14;
	a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = (uint8_t)op;
	memcpy(a + 8, sha, 6);
	memcpy(a + 14, spa, 4);
	memcpy(a + 18, tha, 6);
	memcpy(a + 24, tpa, 4);
	return 60;
}

static void test_arp_request_for_us(void)
{
	struct rig r;
	rig_init(&r);
	uint8_t f[60], got[128];
	static const uint8_t zero[6];
	arp_frame(f, bcast, 1, host_mac, host4, zero, our4);
	CHECK_EQ(arp_input(&r.self, f, 42, 1000), 1, "ARP request for our address is consumed");
	static const uint8_t want[60] = {
		0x02, 0x00, 0x5e, 0x00, 0x00, 0x07, 0x02, 0xb1, 0x70, 0x00, 0x00, 0x01, 0x08, 0x06,
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
		0x02, 0xb1, 0x70, 0x00, 0x00, 0x01, 192, 0, 2, 10,
		0x02, 0x00, 0x5e, 0x00, 0x00, 0x07, 192, 0, 2, 1,
	};
	int n = rig_sent(&r, got, sizeof got);
	CHECK_EQ(n, 60, "one reply, padded to the Ethernet minimum");
	CHECK_MEM(got, want, 60, "reply bytes: unicast to the asker, is-at our MAC for our address");
	CHECK(learned(&r, 4, host4, host_mac), "the asker is learned");

	/* RFC 5227 probe for our address: defended, nothing learned from 0.0.0.0. */
	static const uint8_t any4[4];
	arp_frame(f, bcast, 1, host_mac2, any4, zero, our4);
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 1, "probe for our address is consumed");
	n = rig_sent(&r, got, sizeof got);
	CHECK(n == 60 && memcmp(got, host_mac2, 6) == 0 && got[21] == 2 && memcmp(got + 38, any4, 4) == 0,
	      "probe answered to the prober's MAC with target 0.0.0.0");
	rig_free(&r);
}

static void test_arp_not_for_us(void)
{
	struct rig r;
	rig_init(&r);
	uint8_t f[60], got[128];
	static const uint8_t zero[6];
	arp_frame(f, bcast, 1, host_mac, host4, zero, other4);
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "request for someone else is not consumed (bridged)");
	CHECK_EQ(rig_sent(&r, got, sizeof got), -1, "and nothing is sent");
	CHECK(!learned(&r, 4, host4, host_mac), "nor does it create a neighbour");

	/* Gratuitous ARP refreshes a known entry but creates none. */
	struct bw_addr h = { .family = 4 };
	memcpy(h.a, host4, 4);
	neigh_update(r.neigh, &h, host_mac, 500, NULL);
	arp_frame(f, bcast, 1, host_mac2, host4, zero, host4);
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "gratuitous ARP is bridged");
	CHECK(learned(&r, 4, host4, host_mac2), "and updates the known neighbour's MAC");
	arp_frame(f, bcast, 2, host_mac2, other4, zero, other4);
	arp_input(&r.self, f, 60, 1000);
	CHECK(!learned(&r, 4, other4, host_mac2), "gratuitous ARP of an unknown address creates nothing");
	rig_free(&r);
}

static void test_arp_reply_learns(void)
{
	struct rig r;
	rig_init(&r);
	uint8_t f[60], got[128], queued[80];
	struct bw_addr h = { .family = 4 };
	memcpy(h.a, host4, 4);
	memset(queued, 0x11, sizeof queued);
	memset(queued, 0, 6);
	CHECK_EQ(neigh_enqueue(r.neigh, &h, queued, sizeof queued, 900), 1, "a frame waits for the neighbour");

	arp_frame(f, our_mac, 2, host_mac, host4, our_mac, our4);
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 1, "reply to our address is consumed");
	CHECK(learned(&r, 4, host4, host_mac), "reply teaches the neighbour table");
	int n = rig_sent(&r, got, sizeof got);
	CHECK(n == 80 && memcmp(got, host_mac, 6) == 0 && got[6] == 0x11, "the waiting frame leaves with the learned MAC");

	/* Replies to RFC 5227 probes: target 0.0.0.0 and our MAC. */
	static const uint8_t any4[4], probed[4] = { 198, 18, 0, 5 }, stranger[4] = { 198, 18, 0, 6 };
	struct bw_addr p = { .family = 4 };
	memcpy(p.a, probed, 4);
	neigh_enqueue(r.neigh, &p, queued, sizeof queued, 900);
	arp_frame(f, our_mac, 2, host_mac2, probed, our_mac, any4);
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 1, "answer to our probe is consumed");
	CHECK(learned(&r, 4, probed, host_mac2), "and resolves the probed address");
	arp_frame(f, our_mac, 2, host_mac2, stranger, our_mac, any4);
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "an answer to a probe we did not send is not ours");
	CHECK(!learned(&r, 4, stranger, host_mac2), "and teaches nothing");
	rig_free(&r);
}

static void test_arp_malformed(void)
{
	struct rig r;
	rig_init(&r);
	uint8_t f[60], got[128];
	static const uint8_t zero[6], mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
	arp_frame(f, bcast, 1, host_mac, host4, zero, our4);
	int consumed = 0;
	for (uint32_t len = 0; len < 42; len++)
		consumed += arp_input(&r.self, f, len, 1000);
	CHECK_EQ(consumed, 0, "truncated ARP (every length below 42) is never consumed");
	f[18] = 8;
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "hardware length 8 is not Ethernet ARP");
	f[18] = 6, f[16] = 0x86, f[17] = 0xdd;
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "protocol type other than IPv4 ignored");
	f[16] = 0x08, f[17] = 0x00, f[21] = 3;
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "opcode 3 (RARP) ignored");
	arp_frame(f, bcast, 1, mcast, host4, zero, our4);
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "a multicast sender MAC is never answered");
	arp_frame(f, bcast, 1, host_mac, host4, zero, our4);
	f[13] = 0x00;
	CHECK_EQ(arp_input(&r.self, f, 60, 1000), 0, "not an ARP ethertype");
	CHECK_EQ(rig_sent(&r, got, sizeof got), -1, "nothing was sent for any of them");
	CHECK(!learned(&r, 4, host4, host_mac), "nothing was learned");
	rig_free(&r);
}

static void test_arp_build(void)
{
	uint8_t buf[64];
	struct bw_addr sip = { .family = 4, .a = { 192, 0, 2, 10 } }, tgt = { .family = 4, .a = { 192, 0, 2, 1 } };
	uint32_t n = arp_build_request(buf, our_mac, &sip, &tgt);
	static const uint8_t want[42] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0xb1, 0x70, 0x00, 0x00, 0x01, 0x08, 0x06,
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
		0x02, 0xb1, 0x70, 0x00, 0x00, 0x01, 192, 0, 2, 10,
		0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
	};
	CHECK_EQ(n, 60, "request is a minimum-size frame");
	CHECK_MEM(buf, want, 42, "who-has 192.0.2.1 tell 192.0.2.10, broadcast");
	n = arp_build_request(buf, our_mac, NULL, &tgt);
	CHECK(n == 60 && memcmp(buf + 28, "\0\0\0\0", 4) == 0 && memcmp(buf + 38, tgt.a, 4) == 0,
	      "probe: sender address 0.0.0.0 (RFC 5227)");
}

/* An NS or NA, checksummed by the test's own routine. Returns the frame length. */
static uint32_t nd_frame(uint8_t *f, const uint8_t *edst, const uint8_t *esrc, const uint8_t *src, const uint8_t *dst,
                         uint8_t hlim, uint8_t type, uint8_t flags, const uint8_t *target, uint8_t opt,
                         const uint8_t *lla)
{
	uint32_t icmp_len = 24 + (opt ? 8 : 0);
	memset(f, 0, 14 + 40 + icmp_len);
	memcpy(f, edst, 6);
	memcpy(f + 6, esrc, 6);
	f[12] = 0x86, f[13] = 0xdd;
	uint8_t *ip = f + 14, *icmp = ip + 40;
	ip[0] = 0x60, ip[5] = (uint8_t)icmp_len, ip[6] = 58, ip[7] = hlim;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	icmp[0] = type, icmp[4] = flags;
	memcpy(icmp + 8, target, 16);
	if (opt) {
		icmp[24] = opt, icmp[25] = 1;
		memcpy(icmp + 26, lla, 6);
	}
	uint16_t c = ref_csum(src, dst, icmp, icmp_len);
	icmp[2] = (uint8_t)(c >> 8), icmp[3] = (uint8_t)c;
	return 14 + 40 + icmp_len;
}

static bool nd_feed(struct rig *r, const uint8_t *f, uint32_t len)
{
	struct pkt_info pi;
	memset(&pi, 0, sizeof pi);
	if (pkt_parse(f, len, &pi) != 0 || pi.family != 6)
		return false;
	return nd_input(&r->self, f, len, &pi, 1000);
}

static const uint8_t snm_our[16] = { 0xff, 0x02, [11] = 1, [12] = 0xff, [15] = 0x10 };
static const uint8_t snm_mac_our[6] = { 0x33, 0x33, 0xff, 0, 0, 0x10 };

static void test_ns_for_us(void)
{
	struct rig r;
	rig_init(&r);
	uint8_t f[128], got[256];
	uint32_t n = nd_frame(f, snm_mac_our, host_mac, host6, snm_our, 255, 135, 0, our6, 1, host_mac);
	CHECK_EQ(nd_feed(&r, f, n), 1, "NS for our address is consumed");
	int len = rig_sent(&r, got, sizeof got);
	CHECK_EQ(len, 14 + 40 + 32, "one NA with a target link-layer option");
	const uint8_t *ip = got + 14, *icmp = got + 54;
	CHECK(memcmp(got, host_mac, 6) == 0 && memcmp(got + 6, our_mac, 6) == 0 && got[12] == 0x86 && got[13] == 0xdd,
	      "NA goes to the solicitor's MAC from ours");
	CHECK(ip[0] == 0x60 && ip[4] == 0 && ip[5] == 32 && ip[6] == 58 && ip[7] == 255, "IPv6 header: 32 bytes ICMPv6, hop limit 255");
	CHECK(memcmp(ip + 8, our6, 16) == 0 && memcmp(ip + 24, host6, 16) == 0, "from our address to the solicitor");
	CHECK(icmp[0] == 136 && icmp[1] == 0 && icmp[4] == 0x60 && memcmp(icmp + 8, our6, 16) == 0,
	      "NA for our address with solicited and override flags, not router");
	CHECK(icmp[24] == 2 && icmp[25] == 1 && memcmp(icmp + 26, our_mac, 6) == 0, "target link-layer option is our MAC");
	uint8_t copy[32];
	memcpy(copy, icmp, 32);
	copy[2] = copy[3] = 0;
	uint16_t c = ref_csum(ip + 8, ip + 24, copy, 32);
	CHECK(icmp[2] == (c >> 8) && icmp[3] == (c & 0xff), "ICMPv6 checksum verifies");
	CHECK(learned(&r, 6, host6, host_mac), "solicitor learned from its source link-layer option");

	/* DAD for our address from an unspecified source: defend to all-nodes, S clear. */
	n = nd_frame(f, snm_mac_our, host_mac2, unspec6, snm_our, 255, 135, 0, our6, 0, NULL);
	CHECK_EQ(nd_feed(&r, f, n), 1, "DAD probe for our address is consumed");
	len = rig_sent(&r, got, sizeof got);
	static const uint8_t allnodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	CHECK(len == 86 && memcmp(got, allnodes_mac, 6) == 0 && memcmp(got + 14 + 24, all_nodes, 16) == 0 &&
	      got[54 + 4] == 0x20, "DAD answered to all-nodes with override only");

	/* A unicast NS without the option (NUD) is answered to the frame's source MAC. */
	n = nd_frame(f, our_mac, host_mac2, other6, our6, 255, 135, 0, our6, 0, NULL);
	CHECK_EQ(nd_feed(&r, f, n), 1, "unicast NS without link-layer option consumed");
	len = rig_sent(&r, got, sizeof got);
	CHECK(len == 86 && memcmp(got, host_mac2, 6) == 0 && memcmp(got + 14 + 24, other6, 16) == 0, "answered to its source");
	rig_free(&r);
}

static void test_nd_rejects(void)
{
	struct rig r;
	rig_init(&r);
	uint8_t f[128], got[256];
	uint32_t n = nd_frame(f, snm_mac_our, host_mac, host6, snm_our, 64, 135, 0, our6, 1, host_mac);
	CHECK_EQ(nd_feed(&r, f, n), 0, "NS with hop limit 64 (routed) is rejected");
	n = nd_frame(f, snm_mac_our, host_mac, host6, snm_our, 255, 135, 0, our6, 1, host_mac);
	f[54 + 3] ^= 1;
	CHECK_EQ(nd_feed(&r, f, n), 0, "NS with a bad checksum is rejected");
	n = nd_frame(f, snm_mac_our, host_mac, host6, snm_our, 255, 135, 0, other6, 1, host_mac);
	CHECK_EQ(nd_feed(&r, f, n), 0, "NS for another address is not ours");
	n = nd_frame(f, snm_mac_our, host_mac, host6, snm_our, 255, 135, 0, our6, 1, host_mac);
	f[54 + 25] = 0;  /* option length 0 is invalid (RFC 4861 4.6) */
	uint16_t c = ref_csum(host6, snm_our, f + 54, 32);
	f[54 + 2] = 0, f[54 + 3] = 0;
	c = ref_csum(host6, snm_our, f + 54, 32);
	f[54 + 2] = (uint8_t)(c >> 8), f[54 + 3] = (uint8_t)c;
	CHECK_EQ(nd_feed(&r, f, n), 0, "NS with a zero-length option is rejected");
	n = nd_frame(f, snm_mac_our, host_mac, unspec6, snm_our, 255, 135, 0, our6, 1, host_mac);
	CHECK_EQ(nd_feed(&r, f, n), 0, "DAD probe carrying a link-layer option is invalid");

	/* Truncated: a 16-byte ICMPv6 body claiming to be an NS. */
	n = nd_frame(f, snm_mac_our, host_mac, host6, snm_our, 255, 135, 0, our6, 0, NULL);
	f[14 + 5] = 16;
	uint8_t trunc[16];
	memcpy(trunc, f + 54, 16);
	trunc[2] = trunc[3] = 0;
	c = ref_csum(host6, snm_our, trunc, 16);
	f[54 + 2] = (uint8_t)(c >> 8), f[54 + 3] = (uint8_t)c;
	CHECK_EQ(nd_feed(&r, f, 14 + 40 + 16), 0, "truncated NS is rejected");
	struct pkt_info pi;
	memset(&pi, 0, sizeof pi);
	n = nd_frame(f, snm_mac_our, host_mac, host6, snm_our, 255, 135, 0, our6, 1, host_mac);
	pkt_parse(f, n, &pi);
	CHECK_EQ(nd_input(&r.self, f, n - 20, &pi, 1000), 0, "frame shorter than its parsed IP length is rejected");
	CHECK_EQ(rig_sent(&r, got, sizeof got), -1, "nothing was sent for any of them");
	CHECK(!learned(&r, 6, host6, host_mac), "nothing was learned");
	rig_free(&r);
}

static void test_na_learns(void)
{
	struct rig r;
	rig_init(&r);
	uint8_t f[128], queued[90];
	struct bw_addr h = { .family = 6 };
	memcpy(h.a, host6, 16);
	memset(queued, 0x22, sizeof queued);
	neigh_enqueue(r.neigh, &h, queued, sizeof queued, 900);
	uint32_t n = nd_frame(f, our_mac, host_mac, host6, our6, 255, 136, 0x60, host6, 2, host_mac);
	CHECK_EQ(nd_feed(&r, f, n), 1, "NA to our address is consumed");
	CHECK(learned(&r, 6, host6, host_mac), "and teaches the neighbour table");
	uint8_t got[256];
	int len = rig_sent(&r, got, sizeof got);
	CHECK(len == 90 && memcmp(got, host_mac, 6) == 0, "the waiting frame leaves with the learned MAC");

	static const uint8_t allnodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	n = nd_frame(f, allnodes_mac, host_mac2, other6, all_nodes, 255, 136, 0x20, other6, 2, host_mac2);
	CHECK_EQ(nd_feed(&r, f, n), 0, "unsolicited NA about a stranger is bridged");
	CHECK(!learned(&r, 6, other6, host_mac2), "and creates nothing");

	/* The answer to our unspecified-source probe comes to all-nodes with S clear. */
	struct bw_addr o = { .family = 6 };
	memcpy(o.a, other6, 16);
	neigh_enqueue(r.neigh, &o, queued, sizeof queued, 900);
	CHECK_EQ(nd_feed(&r, f, n), 1, "NA for an address we are resolving is consumed");
	CHECK(learned(&r, 6, other6, host_mac2), "and resolves it");
	n = nd_frame(f, allnodes_mac, host_mac, host6, all_nodes, 255, 136, 0x60, host6, 2, host_mac2);
	CHECK_EQ(nd_feed(&r, f, n), 0, "solicited NA to multicast is invalid (RFC 4861 7.1.2)");
	CHECK(learned(&r, 6, host6, host_mac), "and changes nothing");
	rig_free(&r);
}

static void test_ns_build(void)
{
	uint8_t buf[128];
	struct bw_addr sip = { .family = 6 }, tgt = { .family = 6 };
	memcpy(sip.a, our6, 16);
	memcpy(tgt.a, host6, 16);
	tgt.a[13] = 0xab, tgt.a[14] = 0xcd;
	uint32_t n = nd_build_solicit(buf, our_mac, &sip, &tgt);
	static const uint8_t snm[16] = { 0xff, 0x02, [11] = 1, [12] = 0xff, [13] = 0xab, [14] = 0xcd, [15] = 0x01 };
	static const uint8_t dmac[6] = { 0x33, 0x33, 0xff, 0xab, 0xcd, 0x01 };
	CHECK_EQ(n, 14 + 40 + 32, "NS with source link-layer option");
	CHECK(memcmp(buf, dmac, 6) == 0 && memcmp(buf + 6, our_mac, 6) == 0, "to the solicited-node multicast MAC");
	CHECK(buf[14 + 7] == 255 && memcmp(buf + 14 + 8, our6, 16) == 0 && memcmp(buf + 14 + 24, snm, 16) == 0,
	      "from our address to ff02::1:ffab:cd01, hop limit 255");
	const uint8_t *icmp = buf + 54;
	CHECK(icmp[0] == 135 && memcmp(icmp + 8, tgt.a, 16) == 0 && icmp[24] == 1 && icmp[25] == 1 &&
	      memcmp(icmp + 26, our_mac, 6) == 0, "NS for the target with our link-layer address");
	uint8_t copy[32];
	memcpy(copy, icmp, 32);
	copy[2] = copy[3] = 0;
	uint16_t c = ref_csum(buf + 22, buf + 38, copy, 32);
	CHECK(icmp[2] == (c >> 8) && icmp[3] == (c & 0xff), "NS checksum verifies");

	n = nd_build_solicit(buf, our_mac, NULL, &tgt);
	CHECK(n == 14 + 40 + 24 && memcmp(buf + 22, unspec6, 16) == 0 && buf[14 + 5] == 24,
	      "unspecified source: no link-layer option");
	memcpy(copy, buf + 54, 24);
	copy[2] = copy[3] = 0;
	c = ref_csum(buf + 22, buf + 38, copy, 24);
	CHECK(buf[56] == (c >> 8) && buf[57] == (c & 0xff), "probe checksum verifies");

	/* What we send is what a neighbour that owns the target answers. */
	struct rig r;
	rig_init(&r);
	memcpy(r.pc.addr[1].a, tgt.a, 16);
	n = nd_build_solicit(buf, host_mac, &sip, &tgt);
	CHECK_EQ(nd_feed(&r, buf, n), 1, "our NS is accepted by our own ND input");
	uint8_t got[256];
	CHECK_EQ(rig_sent(&r, got, sizeof got), 86, "and answered");
	rig_free(&r);
}

int main(void)
{
	test_arp_request_for_us();
	test_arp_not_for_us();
	test_arp_reply_learns();
	test_arp_malformed();
	test_arp_build();
	test_ns_for_us();
	test_nd_rejects();
	test_na_learns();
	test_ns_build();
	return check_done();
}
