/* test_frag.c: IPv4/IPv6 fragmentation and bounded reassembly. */
#include <stdlib.h>

#include "check.h"
#include "frames.h"
#include "ip.h"
#include "wire.h"

#define MAXFRAGS 200

static uint8_t f[PKT_MAX + 64], l4[PKT_MAX];
static uint8_t frags[MAXFRAGS][PKT_MAX];
static uint32_t frag_len[MAXFRAGS];

/* An unfragmented UDP packet of ip_len bytes (IP header included), at f + 14. */
static uint32_t make_packet(int v6, uint32_t ip_len, const uint8_t *opt, uint32_t optlen)
{
	uint32_t hl = v6 ? 40 : 20 + optlen;
	uint32_t n = build_udp(l4, 7000, 4500, ip_len - hl - 8);
	if (v6)
		build_ipv6(f, 17, "2001:db8:1::1", "2001:db8:2::2", l4, n);
	else
		build_ipv4(f, 17, "192.0.2.1", "198.51.100.2", opt, optlen, l4, n, 0);
	ref_l4_set(f + 14);
	return ip_len;
}

/* Fragment f + 14 into frags[]; returns the count, or the error. */
static int fragment_all(uint32_t ip_len, uint32_t mtu, uint32_t ident)
{
	uint32_t state = 0;
	int n = 0, rc;
	while ((rc = ip_fragment_next(f + 14, ip_len, mtu, ident, &state, frags[n], PKT_MAX)) > 0) {
		frag_len[n++] = (uint32_t)rc;
		if (n == MAXFRAGS)
			return -1;
	}
	return rc < 0 ? rc : n;
}

/* Each fragment: fits, parses, checksummed, on the 8-byte grid, MF on all but the last. */
static bool fragments_well_formed(int n, uint32_t mtu, int v6)
{
	uint32_t expect_off = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *ip = frags[i];
		if (frag_len[i] > mtu || ip_total(ip) != frag_len[i])
			return false;
		uint32_t off, data;
		bool mf;
		if (v6) {
			if (ip[6] != 44 || ip[40] != 17 || get32(ip + 44) != 0xabcd1234)
				return false;
			off = get16(ip + 42) & 0xfff8;
			mf = ip[43] & 1;
			data = frag_len[i] - 48;
		} else {
			if (!ref_ipv4_hdr_ok(ip) || (ip[6] & 0x40))
				return false;
			off = (uint32_t)(get16(ip + 6) & 0x1fff) * 8;
			mf = ip[6] & 0x20;
			data = frag_len[i] - ip_hlen(ip);
		}
		if (off != expect_off || mf != (i < n - 1) || (mf && data % 8))
			return false;
		expect_off += data;
	}
	return true;
}

/* Feed frags in the given order; the return of the last call and the output. */
static int feed(struct reasm *r, const int *order, int n, uint64_t now, const uint8_t **out, uint32_t *out_len)
{
	int rc = -1;
	for (int k = 0; k < n; k++) {
		uint8_t frame[PKT_MAX + 14];
		int i = order[k];
		memcpy(frame + put_eth(frame, frags[i][0] >> 4 == 4 ? 0x0800 : 0x86dd), frags[i], frag_len[i]);
		struct pkt_info pi;
		if (pkt_parse(frame, 14 + frag_len[i], &pi) != 0)
			return -1000;
		rc = reasm_input(r, frame + 14, frag_len[i], &pi, now, out, out_len);
		if (rc == 1 && k != n - 1)
			return -2000; /* complete too early */
		if (rc < 0)
			return rc;
	}
	return rc;
}

static void orders(int n, int which, int *order)
{
	for (int i = 0; i < n; i++)
		order[i] = which == 1 ? n - 1 - i : i;
	if (which == 2)
		for (int i = n - 1; i > 0; i--) {
			int j = rand() % (i + 1), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
}

static void test_roundtrip(int v6)
{
	static const uint32_t sizes[] = { 1500, 2000, 4000, 8000, 9000 };
	static const uint32_t mtus[] = { 576, 1280, 1500, 4000 };
	struct reasm *r = reasm_new(4u << 20, 30000);
	int bad_frag = 0, bad_reasm = 0, count = 0;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (size_t m = 0; m < sizeof(mtus) / sizeof(mtus[0]); m++) {
			uint32_t len = make_packet(v6, sizes[s], NULL, 0);
			int n = fragment_all(len, mtus[m], 0xabcd1234);
			if (len <= mtus[m]) {
				if (n != 1 || memcmp(frags[0], f + 14, len) != 0)
					bad_frag++;
				continue;
			}
			uint32_t hl = v6 ? 48 : 20, room = mtus[m] - hl, rem = len - (v6 ? 40 : 20), want = 1;
			for (; rem > room; want++)
				rem -= room & ~7u;
			if ((uint32_t)n != want || !fragments_well_formed(n, mtus[m], v6))
				bad_frag++;
			for (int which = 0; which < 3; which++) {
				int order[MAXFRAGS];
				orders(n, which, order);
				const uint8_t *out = NULL;
				uint32_t out_len = 0;
				int rc = feed(r, order, n, 1000, &out, &out_len);
				if (rc != 1 || out_len != len || memcmp(out, f + 14, len) != 0)
					bad_reasm++;
				count++;
			}
		}
	CHECK_EQ(bad_frag, 0, "v%d: 1500..9000-byte packets at MTUs 576..4000: fragments fit and are well formed",
	         v6 ? 6 : 4);
	CHECK_EQ(bad_reasm, 0, "v%d: %d reassemblies in order, reversed and shuffled give the original", v6 ? 6 : 4,
	         count);
	reasm_free(r);
}

static void test_ipv4_options(void)
{
	/* router alert (copied), record route (not copied), end */
	const uint8_t opt[12] = { 0x94, 4, 0, 0, 7, 7, 4, 1, 2, 3, 4, 0 };
	uint32_t len = make_packet(0, 3000, opt, 12);
	int n = fragment_all(len, 1500, 0);
	CHECK(n == 3 && fragments_well_formed(n, 1500, 0), "v4 packet with options fragments");
	CHECK(ip_hlen(frags[0]) == 32 && memcmp(frags[0] + 20, opt, 12) == 0, "first fragment keeps every option");
	CHECK(ip_hlen(frags[1]) == 24 && memcmp(frags[1] + 20, opt, 4) == 0, "later fragments keep only copied ones");
	struct reasm *r = reasm_new(1u << 20, 30000);
	int order[3] = { 2, 0, 1 };
	const uint8_t *out;
	uint32_t out_len;
	int rc = feed(r, order, 3, 0, &out, &out_len);
	CHECK(rc == 1 && out_len == len && memcmp(out, f + 14, len) == 0, "reassembles with the first fragment's header");
	reasm_free(r);
}

static void test_refusals(void)
{
	uint32_t len = make_packet(0, 2000, NULL, 0);
	uint32_t state = 0;
	f[14 + 6] |= 0x40;
	ipv4_set_csum(f + 14);
	CHECK_EQ(ip_fragment_next(f + 14, len, 1500, 0, &state, frags[0], PKT_MAX), -XE_MTU_EXCEEDED,
	         "DF set: -XE_MTU_EXCEEDED");
	state = 0;
	CHECK_EQ(ip_fragment_next(f + 14, len, 2000, 0, &state, frags[0], PKT_MAX), 2000, "DF but fits: whole packet");
	CHECK_MEM(frags[0], f + 14, 2000, "unchanged");
	CHECK_EQ(ip_fragment_next(f + 14, len, 2000, 0, &state, frags[0], PKT_MAX), 0, "then done");
	len = make_packet(0, 2000, NULL, 0);
	state = 0;
	CHECK_EQ(ip_fragment_next(f + 14, len, 27, 0, &state, frags[0], PKT_MAX), -XE_MTU_EXCEEDED,
	         "MTU below header + 8: refused");
	len = make_packet(1, 2000, NULL, 0);
	state = 0;
	CHECK_EQ(ip_fragment_next(f + 14, len, 55, 0, &state, frags[0], PKT_MAX), -XE_MTU_EXCEEDED,
	         "v6 MTU below header + fragment header + 8: refused");
}

static void test_overlap_and_dups(void)
{
	const uint8_t *out;
	uint32_t out_len;
	struct reasm *r = reasm_new(1u << 20, 30000);
	uint32_t len = make_packet(0, 4000, NULL, 0);
	int n = fragment_all(len, 1500, 0);
	int order[3] = { 0, 0, 1 };
	CHECK_EQ(feed(r, order, 3, 0, &out, &out_len), 0, "identical duplicate tolerated");
	order[0] = 2;
	int rc = feed(r, order, 1, 0, &out, &out_len);
	CHECK(rc == 1 && out_len == len && memcmp(out, f + 14, len) == 0, "completes after a duplicate");

	/* second fragment re-cut to start 8 bytes early: an overlap */
	order[0] = 0;
	CHECK_EQ(feed(r, order, 1, 0, &out, &out_len), 0, "first kept");
	uint8_t *ip = frags[1];
	uint32_t off = (uint32_t)(get16(ip + 6) & 0x1fff);
	uint8_t saved[PKT_MAX];
	memcpy(saved, ip, frag_len[1]);
	memmove(ip + 28, ip + 20, frag_len[1] - 20);
	memcpy(ip + 20, frags[0] + frag_len[0] - 8, 8);
	put16(ip + 6, 0x2000 | (off - 1));
	put16(ip + 2, frag_len[1] + 8);
	ipv4_set_csum(ip);
	frag_len[1] += 8;
	order[0] = 1;
	CHECK_EQ(feed(r, order, 1, 0, &out, &out_len), -XE_FRAG_FAILED, "overlapping fragment drops the datagram");
	frag_len[1] -= 8;
	memcpy(ip, saved, frag_len[1]);
	order[0] = 1;
	order[1] = 2;
	CHECK_EQ(feed(r, order, 2, 0, &out, &out_len), 0, "the rest never completes the dropped datagram");
	reasm_expire(r, 1u << 30);

	/* same range, different bytes */
	order[0] = 0;
	feed(r, order, 1, 0, &out, &out_len);
	frags[0][100] ^= 1;
	CHECK_EQ(feed(r, order, 1, 0, &out, &out_len), -XE_FRAG_FAILED, "same offsets, different data: dropped");
	frags[0][100] ^= 1;

	/* IPv6, RFC 5722 */
	len = make_packet(1, 4000, NULL, 0);
	n = fragment_all(len, 1500, 0xabcd1234);
	CHECK_EQ(n, 3, "v6 three fragments");
	order[0] = 1;
	feed(r, order, 1, 0, &out, &out_len);
	ip = frags[2];
	put16(ip + 42, (get16(ip + 42) - 8) & 0xfff8);
	CHECK_EQ(feed(r, (const int[]){ 2 }, 1, 0, &out, &out_len), -XE_FRAG_FAILED, "v6 overlap drops the datagram");

	/* a datagram that would end beyond PKT_MAX */
	len = make_packet(0, 1004, NULL, 0);
	ip = f + 14;
	put16(ip + 6, 0x2000 | (PKT_MAX / 8 - 10));
	ipv4_set_csum(ip);
	struct pkt_info pi;
	pkt_parse(f, 14 + len, &pi);
	CHECK_EQ(reasm_input(r, ip, len, &pi, 0, &out, &out_len), -XE_FRAG_FAILED, "beyond PKT_MAX: dropped");
	put16(ip + 6, 0x2000);
	put16(ip + 2, 1001);
	ipv4_set_csum(ip);
	pkt_parse(f, 14 + 1001, &pi);
	CHECK_EQ(reasm_input(r, ip, 1001, &pi, 0, &out, &out_len), -XE_MALFORMED_PACKET,
	         "non-last fragment off the 8-byte grid: dropped");
	reasm_free(r);
}

static void test_timeout_and_bound(void)
{
	const uint8_t *out;
	uint32_t out_len;
	struct reasm *r = reasm_new(1u << 20, 5000);
	uint32_t len = make_packet(0, 3000, NULL, 0);
	int n = fragment_all(len, 1500, 0);
	CHECK_EQ(n, 3, "three fragments");
	CHECK_EQ(feed(r, (const int[]){ 0, 1 }, 2, 1000, &out, &out_len), 0, "two of three kept");
	CHECK_EQ(reasm_expire(r, 5999), 0, "not expired before the timeout");
	CHECK_EQ(reasm_expire(r, 6000), 1, "expired at the timeout");
	CHECK_EQ(feed(r, (const int[]){ 2 }, 1, 6001, &out, &out_len), 0, "last fragment alone does not complete");
	CHECK_EQ(feed(r, (const int[]){ 0, 1 }, 2, 12000, &out, &out_len), 0,
	         "a stale slot is recycled on lookup, not completed");
	reasm_free(r);

	/* A flood of incomplete datagrams cannot take more than mem_max. */
	uint32_t mem_max = 10 * PKT_MAX + 5000;
	r = reasm_new(mem_max, 5000);
	int kept = 0, refused = 0;
	for (uint32_t id = 0; id < 1000; id++) {
		uint8_t *ip = frags[0];
		put16(ip + 4, id);
		ipv4_set_csum(ip);
		uint8_t frame[1600];
		memcpy(frame + put_eth(frame, 0x0800), ip, frag_len[0]);
		struct pkt_info pi;
		pkt_parse(frame, 14 + frag_len[0], &pi);
		int rc = reasm_input(r, frame + 14, frag_len[0], &pi, 100, &out, &out_len);
		kept += rc == 0;
		refused += rc == -XE_NOMEM;
	}
	CHECK(kept >= 1 && (uint32_t)kept * PKT_MAX <= mem_max, "flood: only %d datagrams held within mem_max", kept);
	CHECK_EQ(refused, 1000 - kept, "the rest refused with -XE_NOMEM");
	CHECK_EQ(reasm_expire(r, 5100), (uint32_t)kept, "all expire");
	fragment_all(len, 1500, 0);
	CHECK_EQ(feed(r, (const int[]){ 2, 1, 0 }, 3, 5200, &out, &out_len), 1, "reassembly works again after the flood");
	reasm_free(r);
}

static void test_interleaved_v6(void)
{
	static uint8_t a[MAXFRAGS][PKT_MAX];
	static uint32_t alen[MAXFRAGS];
	uint8_t orig_a[PKT_MAX];
	uint32_t len = make_packet(1, 5000, NULL, 0);
	memcpy(orig_a, f + 14, len);
	int na = fragment_all(len, 1280, 1);
	memcpy(a, frags, sizeof(a[0]) * (size_t)na);
	memcpy(alen, frag_len, sizeof(alen[0]) * (size_t)na);
	f[14 + 48 + 100] ^= 0x55; /* a second datagram that differs */
	ref_l4_set(f + 14);
	int nb = fragment_all(len, 1280, 2);
	struct reasm *r = reasm_new(1u << 20, 5000);
	int complete = 0, good = 0;
	for (int i = 0; i < (na > nb ? na : nb); i++) {
		for (int which = 0; which < 2; which++) {
			uint8_t *ip = which ? frags[i] : a[i];
			uint32_t l = which ? frag_len[i] : alen[i];
			if (i >= (which ? nb : na))
				continue;
			uint8_t frame[PKT_MAX + 14];
			memcpy(frame + put_eth(frame, 0x86dd), ip, l);
			struct pkt_info pi;
			pkt_parse(frame, 14 + l, &pi);
			const uint8_t *out;
			uint32_t out_len;
			if (reasm_input(r, frame + 14, l, &pi, 0, &out, &out_len) == 1) {
				complete++;
				good += out_len == len && memcmp(out, which ? f + 14 : orig_a, len) == 0;
			}
		}
	}
	CHECK(complete == 2 && good == 2, "two interleaved v6 datagrams told apart by their ident");
	reasm_free(r);
}

int main(void)
{
	srand(42);
	test_roundtrip(0);
	test_roundtrip(1);
	test_ipv4_options();
	test_refusals();
	test_overlap_and_dups();
	test_timeout_and_bound();
	test_interleaved_v6();
	return check_done();
}
