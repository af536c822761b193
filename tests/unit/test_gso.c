/* test_gso.c: splitting GRO/GSO super-frames into frames that fit the port MTU. */
#include <stdlib.h>

#include "check.h"
#include "frames.h"
#include "ip.h"
#include "wire.h"

#define BIG (14 + 40 + 65535)

static uint8_t f[BIG], l4[BIG], seg[PKT_MAX], stream[BIG];
static const uint8_t TS_OPTS[12] = { 1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6 };

/* A TCP super-frame: payload bytes of pattern, flags, its checksum left partial as Linux does. */
static uint32_t tcp_super(int v6, uint32_t payload, uint8_t flags)
{
	uint32_t n = build_tcp(l4, 40000, 5201, 0xfffff000u, flags, TS_OPTS, 12, payload);
	uint32_t len = v6 ? build_ipv6(f, 6, "2001:db8:1::1", "2001:db8:2::2", l4, n)
	                  : build_ipv4(f, 6, "198.18.0.1", "198.18.1.1", NULL, 0, l4, n, 0x4000);
	uint8_t *ip = f + 14;
	put16(ip + ip_hlen(ip) + 16, ref_pseudo(ip, 6, n)); /* CHECKSUM_PARTIAL */
	return len;
}

static void check_tcp_super(int v6, uint32_t mtu)
{
	uint32_t len = tcp_super(v6, 65535 - (v6 ? 0 : 20) - 32, 0x80 | 0x10 | 0x08 | 0x01); /* CWR ACK PSH FIN */
	struct pkt_info pi;
	CHECK_EQ(pkt_parse(f, len, &pi), 0, "v%d 64 KB TCP super-frame parses", v6 ? 6 : 4);
	uint32_t hl = v6 ? 40 : 20, mss = mtu - hl - 32, payload = pi.ip_len - hl - 32;
	uint32_t state = 0, got = 0, nseg = 0, too_big = 0, bad_csum = 0, bad_seq = 0, bad_flags = 0, bad_id = 0;
	int rc;
	while ((rc = gso_segment_next(f, len, &pi, mtu, &state, seg, sizeof(seg))) > 0) {
		uint8_t *ip = seg + 14;
		uint32_t ip_len = ip_total(ip), data = ip_len - hl - 32;
		if ((uint32_t)rc != 14 + ip_len || ip_len > mtu || (data != mss && got + data != payload))
			too_big++;
		if (!ref_l4_ok(ip) || (!v6 && !ref_ipv4_hdr_ok(ip)))
			bad_csum++;
		uint8_t *th = ip + hl;
		if (get32(th + 4) != 0xfffff000u + got) /* wraps through zero on the way */
			bad_seq++;
		bool first = nseg == 0, last = got + data == payload;
		if ((th[13] & 0x80) != (first ? 0x80 : 0) || (th[13] & 0x09) != (last ? 0x09 : 0) || !(th[13] & 0x10))
			bad_flags++;
		if (!v6 && (get16(ip + 4) != (uint16_t)(0x1234 + nseg) || !(ip[6] & 0x40)))
			bad_id++;
		if (memcmp(th + 20, TS_OPTS, 12) != 0)
			bad_flags++;
		memcpy(stream + got, th + 32, data);
		got += data;
		nseg++;
	}
	CHECK_EQ(rc, 0, "v%d segmentation ends cleanly", v6 ? 6 : 4);
	CHECK_EQ(nseg, (payload + mss - 1) / mss, "v%d at MTU %u: %u segments of MSS %u", v6 ? 6 : 4, mtu, nseg, mss);
	CHECK_EQ(too_big, 0, "every segment fits the MTU and carries a full MSS but the last");
	CHECK_EQ(bad_csum, 0, "every segment has complete, valid checksums");
	CHECK_EQ(bad_seq, 0, "sequence numbers advance by the bytes sent");
	CHECK_EQ(bad_flags, 0, "CWR on the first only, FIN/PSH on the last only, options kept");
	if (!v6)
		CHECK_EQ(bad_id, 0, "IPv4 ids count up, DF kept");
	CHECK(got == payload && memcmp(stream, f + 14 + hl + 32, payload) == 0, "segments rebuild the byte stream");
}

static void test_udp(void)
{
	struct pkt_info pi;
	uint32_t n = build_udp(l4, 4000, 5000, 8972); /* within what reasm accepts (PKT_MAX) */
	uint32_t len = build_ipv4(f, 17, "198.18.0.1", "198.18.1.1", NULL, 0, l4, n, 0);
	uint8_t orig[BIG];
	ref_l4_set(f + 14);
	memcpy(orig, f + 14, len - 14);
	put16(f + 14 + 20 + 6, ref_pseudo(f + 14, 17, n)); /* partial, as a veth hands it over */
	pkt_parse(f, len, &pi);

	struct reasm *r = reasm_new(1u << 20, 1000);
	uint32_t state = 0, nfrag = 0, too_big = 0;
	int rc, done = 0;
	const uint8_t *out = NULL;
	uint32_t out_len = 0;
	while ((rc = gso_segment_next(f, len, &pi, 1500, &state, seg, sizeof(seg))) > 0) {
		struct pkt_info fp;
		nfrag++;
		if (rc > 14 + 1500 || pkt_parse(seg, (uint32_t)rc, &fp) != 0 || !ref_ipv4_hdr_ok(seg + 14))
			too_big++;
		if (reasm_input(r, seg + 14, (uint32_t)rc - 14, &fp, 0, &out, &out_len) == 1)
			done = 1;
	}
	CHECK_EQ(rc, 0, "UDP super-frame: fragmentation ends cleanly");
	CHECK_EQ(nfrag, 7, "9000-byte UDP at MTU 1500: 7 fragments");
	CHECK_EQ(too_big, 0, "each fragment fits and has a valid header");
	CHECK(done && out_len == len - 14 && memcmp(out, orig, out_len) == 0,
	      "fragments reassemble to the datagram with its checksum completed");
	CHECK(done && ref_l4_ok(out), "reassembled UDP checksum valid");
	reasm_free(r);

	f[14 + 6] |= 0x40;
	ipv4_set_csum(f + 14);
	pkt_parse(f, len, &pi);
	state = 0;
	CHECK_EQ(gso_segment_next(f, len, &pi, 1500, &state, seg, sizeof(seg)), -XE_TOO_BIG, "v4 UDP with DF refused");

	len = build_ipv6(f, 17, "2001:db8:1::1", "2001:db8:2::2", l4, n);
	pkt_parse(f, len, &pi);
	state = 0;
	CHECK_EQ(gso_segment_next(f, len, &pi, 1500, &state, seg, sizeof(seg)), -XE_TOO_BIG, "v6 UDP super-frame refused");
}

static void test_small(void)
{
	struct pkt_info pi;
	uint32_t len = tcp_super(0, 1000, 0x18);
	pkt_parse(f, len, &pi);
	uint32_t state = 0;
	int rc = gso_segment_next(f, len, &pi, 1500, &state, seg, sizeof(seg));
	CHECK(rc == (int)len && memcmp(seg, f, len) == 0, "a frame that fits passes whole");
	CHECK_EQ(gso_segment_next(f, len, &pi, 1500, &state, seg, sizeof(seg)), 0, "and only once");
	state = 0;
	CHECK_EQ(gso_segment_next(f, len, &pi, 50, &state, seg, sizeof(seg)), -XE_TOO_BIG,
	         "an MTU below the TCP/IP headers is refused");
}

int main(void)
{
	check_tcp_super(0, 1500);
	check_tcp_super(1, 1500);
	check_tcp_super(0, 9000);
	check_tcp_super(1, 1280);
	test_udp();
	test_small();
	return check_done();
}
