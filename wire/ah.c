/* ah.c: RFC 4302 AH: the ICV over the whole IP packet with its mutable fields zeroed (tunnel and transport mode). */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "counter.h"
#include "sa.h"
#include "wire.h"

#define AH_FIXED 12u  /* next header, length, reserved, SPI, sequence number */
#define HDRS_MAX 1024  /* IP header, extension headers and AH that one packet may bring */

/* RFC 4302 2.2: the header ends on a 32-bit (IPv4) or 64-bit (IPv6) boundary. */
uint32_t ah_hdr_len(const struct sa *sa, int family)
{
	uint32_t align = family == 6 ? 8 : 4;

	/* AES-GMAC (RFC 4543 5) carries its 8-byte IV in front of the ICV. */
	return (AH_FIXED + sa->iv_len + sa->icv_len + align - 1) / align * align;
}

/* RFC 4302 A.1: options that do not change on the way are covered; the rest count as zeros. */
static bool ipv4_opt_immutable(uint8_t type)
{
	return type == 0 || type == 1 || type == 130 || type == 133 || type == 134 || type == 148 || type == 149;
}

/*
 * RFC 4302 3.3.3.1.1.1: with loose or strict source routing the destination
 * address is mutable but predictable: the receiver sees the route's last one.
 */
static void ipv4_route_final(uint8_t *ip, const uint8_t *opt, uint32_t len)
{
	if ((opt[0] == 131 || opt[0] == 137) && len >= 7 && opt[2] <= len)
		memcpy(ip + 16, opt + len - 4, 4);
}

static int zero_ipv4(uint8_t *ip, uint32_t ihl)
{
	ip[1] = 0;           /* DSCP/ECN */
	ip[6] = ip[7] = 0;   /* flags, fragment offset */
	ip[8] = 0;           /* TTL */
	ip[10] = ip[11] = 0; /* checksum */
	for (uint32_t off = 20; off < ihl;) {
		uint32_t len = ip[off] <= 1 ? 1 : off + 1 < ihl ? ip[off + 1] : 0;

		if (ip[off] == 0)
			break;
		if (len < 1 || off + len > ihl)
			return -XE_MALFORMED_PACKET;
		if (!ipv4_opt_immutable(ip[off])) {
			ipv4_route_final(ip, ip + off, len);
			memset(ip + off, 0, len);
		}
		off += len;
	}
	return 0;
}

/* RFC 8200 4.2: an option whose type has the 0x20 bit may change en route; its data counts as zeros. */
static int zero_ipv6_opts(uint8_t *h, uint32_t len)
{
	for (uint32_t off = 2; off < len;) {
		if (h[off] == 0) {  /* Pad1 */
			off++;
			continue;
		}
		if (off + 2 > len || off + 2 + h[off + 1] > len)
			return -XE_MALFORMED_PACKET;
		if (h[off] & 0x20)
			memset(h + off + 2, 0, h[off + 1]);
		off += 2u + h[off + 1];
	}
	return 0;
}

static void swap16(uint8_t *a, uint8_t *b)
{
	uint8_t t[16];

	memcpy(t, a, 16);
	memcpy(a, b, 16);
	memcpy(b, t, 16);
}

/*
 * RFC 4302 3.3.3.1.2.2: a routing header counts as it will be at the final
 * destination. Types 0 and 2 swap the destination with each remaining
 * address in turn; a segment routing header (RFC 8754) ends at its first
 * list entry. Other types with segments left cannot be predicted.
 */
static int routing_as_final(uint8_t *ip, uint8_t *rh, uint32_t len)
{
	uint32_t n = (len - 8) / 16, left = rh[3];

	if (left == 0)
		return 0;
	if (rh[2] == 0 || rh[2] == 2) {
		if (left > n)
			return -XE_MALFORMED_PACKET;
		for (uint32_t i = n - left; i < n; i++)
			swap16(ip + 24, rh + 8 + 16 * i);
	} else if (rh[2] == 4 && n >= 1) {
		memcpy(ip + 24, rh + 8, 16);
	} else {
		return -XE_NOT_SUPPORTED;
	}
	rh[3] = 0;
	return 0;
}

/* The fixed header's mutable fields, then each extension header before AH as the receiver will see it. */
static int zero_ipv6(uint8_t *ip, uint32_t ah_off)
{
	struct ipv6_walk w, at;

	ip[0] &= 0xf0;                 /* traffic class */
	ip[1] = ip[2] = ip[3] = 0;     /* traffic class, flow label */
	ip[7] = 0;                     /* hop limit */
	ipv6_walk_start(ip, &w);
	while (w.off < ah_off) {
		int rc;

		at = w;
		if (ipv6_walk_step(ip, ah_off, &w) <= 0)
			return -XE_MALFORMED_PACKET;
		if (at.nh == NH_HOP || at.nh == NH_DSTOPTS)
			rc = zero_ipv6_opts(ip + at.off, w.off - at.off);
		else if (at.nh == NH_ROUTING)
			rc = routing_as_final(ip, ip + at.off, w.off - at.off);
		else  /* a fragment header: the ICV is over the reassembled packet; anything else is unknown */
			rc = -XE_NOT_SUPPORTED;
		if (rc < 0)
			return rc;
	}
	return w.off == ah_off && w.nh == IPPROTO_AH_ ? 0 : -XE_MALFORMED_PACKET;
}

/*
 * The ICV over the packet as the receiver will see it with its mutable
 * fields and the ICV field zeroed (RFC 4302 3.3.3.1). The headers are
 * zeroed in place, so the MAC runs over one contiguous buffer, and put back.
 */
static int ah_icv(const struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint32_t ah_len,
                  uint64_t seq, uint8_t *icv)
{
	uint8_t saved[HDRS_MAX];
	uint32_t hdrs = ah_off + ah_len;
	int rc;

	if (hdrs > sizeof(saved) || hdrs > ip_len)
		return -XE_NOT_SUPPORTED;
	memcpy(saved, ip, hdrs);
	/* GMAC's IV stays: it is authenticated with the rest (RFC 4543 5); only the ICV counts as zeros. */
	memset(ip + ah_off + AH_FIXED + sa->iv_len, 0, ah_len - AH_FIXED - sa->iv_len);
	rc = (ip[0] >> 4) == 4 ? zero_ipv4(ip, (ip[0] & 15u) * 4u) : zero_ipv6(ip, ah_off);
	if (rc == 0 && sa->iv_len)
		rc = sa_gmac_icv(sa, ip + ah_off + AH_FIXED, ip, ip_len, seq, icv);
	else if (rc == 0)
		rc = sa_integ_icv(sa, ip, ip_len, seq, icv);
	memcpy(ip, saved, hdrs);
	return rc < 0 ? rc : 0;
}

static int ah_build(struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint8_t next_header, uint64_t seq)
{
	uint32_t ah_len = ah_hdr_len(sa, ip[0] >> 4 == 6 ? 6 : 4), icv_at = AH_FIXED + sa->iv_len;
	uint8_t *ah = ip + ah_off, icv[EVP_MAX_MD_SIZE];
	int rc;

	if (ah_off + ah_len > ip_len)
		return -XE_MTU_EXCEEDED;
	ah[0] = next_header;
	ah[1] = (uint8_t)(ah_len / 4 - 2);
	ah[2] = ah[3] = 0;
	wr32(ah + 4, sa->conf.spi);
	wr32(ah + 8, (uint32_t)seq);
	/* RFC 4543 3.1: a GMAC IV never repeats under one key; the sequence number never does either. */
	if (sa->iv_len) {
		wr32(ah + AH_FIXED, (uint32_t)(seq >> 32));
		wr32(ah + AH_FIXED + 4, (uint32_t)seq);
	}
	rc = ah_icv(sa, ip, ip_len, ah_off, ah_len, seq, icv);
	if (rc < 0)
		return rc;
	memset(ah + icv_at, 0, ah_len - icv_at);
	memcpy(ah + icv_at, icv, sa->icv_len);
	OPENSSL_cleanse(icv, sizeof(icv));
	return 0;
}

int ah_encap_fixed(struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint8_t next_header, uint64_t seq)
{
	return ah_build(sa, ip, ip_len, ah_off, next_header, seq);
}

int ah_encap(struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint8_t next_header)
{
	uint64_t limit = sa->conf.esn ? UINT64_MAX : UINT32_MAX;
	int rc;

	/* RFC 4302 3.3.2: the counter never wraps; the SA must be replaced first. */
	if (sa->seq >= limit)
		return -XE_SEQUENCE_OVERFLOW;
	rc = ah_build(sa, ip, ip_len, ah_off, next_header, sa->seq + 1);
	if (rc == 0)
		sa->seq++;
	return rc;
}

int ah_decap(struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint8_t **inner, uint32_t *inner_len,
             uint8_t *next_header)
{
	uint8_t *ah = ip + ah_off, icv[EVP_MAX_MD_SIZE];
	uint32_t ah_len;
	uint64_t seq;
	int rc;

	if (ah_off + AH_FIXED > ip_len ||
	    (ah_len = (ah[1] + 2u) * 4u) < AH_FIXED + (uint32_t)sa->iv_len + sa->icv_len ||
	    ah_off + ah_len > ip_len) {
		stat_inc(&sa->st.errors);
		return -XE_MALFORMED_PACKET;
	}
	rc = replay_check(&sa->replay, rd32(ah + 8), sa->conf.esn, &seq);
	if (rc < 0) {
		stat_inc(&sa->st.replay_drops);
		return rc;
	}
	rc = ah_icv(sa, ip, ip_len, ah_off, ah_len, seq, icv);
	if (rc == 0 && CRYPTO_memcmp(icv, ah + AH_FIXED + sa->iv_len, sa->icv_len) != 0) {
		stat_inc(&sa->st.auth_drops);
		return -XE_AH_DIGEST_MISMATCH;
	}
	if (rc < 0) {
		stat_inc(&sa->st.errors);
		return rc;
	}
	replay_update(&sa->replay, seq);
	*inner = ah + ah_len;
	*inner_len = ip_len - ah_off - ah_len;
	*next_header = ah[0];
	return 0;
}
