/* transport.c: transport mode for a host behind bitw: ESP or AH goes between the host's IP headers and its payload. */
#include <string.h>

#include "sa.h"
#include "wire.h"

/*
 * Where ESP or AH goes in the host's IP packet, and which next-header byte
 * then names it. IPv6 keeps in front what routers and intermediate
 * destinations read: hop-by-hop, routing, and destination options followed
 * by a routing header; destination options for the final destination come
 * after (RFC 4302 3.1.1). A fragment is refused: transport mode protects
 * whole datagrams (RFC 4302 3.3.4), and so is an already protected packet.
 */
static int split_point(const uint8_t *ip, uint32_t ip_len, int family, uint32_t *split, uint32_t *nh_at)
{
	struct ipv6_walk w, before;

	if (family == 4) {
		*split = (ip[0] & 15u) * 4u;
		*nh_at = 9;
		return 0;
	}
	ipv6_walk_start(ip, &w);
	for (;;) {
		if (w.nh == NH_FRAGMENT || w.nh == IPPROTO_ESP_ || w.nh == IPPROTO_AH_)
			return -XE_NOT_SUPPORTED;
		if (w.nh != NH_HOP && w.nh != NH_ROUTING && w.nh != NH_DSTOPTS)
			break;
		before = w;
		if (ipv6_walk_step(ip, ip_len, &w) < 0)
			return -XE_MALFORMED_PACKET;
		if (before.nh == NH_DSTOPTS && w.nh != NH_ROUTING) {
			w = before;
			break;
		}
	}
	*split = w.off;
	*nh_at = w.nh_at;
	return 0;
}

/* The next-header byte that names the header at split (IPv6: the last extension header before it). */
static int nh_byte_before(const uint8_t *ip, uint32_t ip_len, int family, uint32_t split, uint32_t *nh_at)
{
	struct ipv6_walk w;

	if (family == 4) {
		*nh_at = 9;
		return 0;
	}
	ipv6_walk_start(ip, &w);
	while (w.off < split)
		if (ipv6_walk_step(ip, ip_len, &w) <= 0)
			return -XE_MALFORMED_PACKET;
	*nh_at = w.nh_at;
	return w.off == split ? 0 : -XE_MALFORMED_PACKET;
}

/* Lengths and next header of the host's IP packet after ESP or AH went in or came out. */
static void ip_fix(uint8_t *ip, int family, uint32_t hlen, uint32_t payload_len, uint32_t nh_at, uint8_t proto)
{
	ip[nh_at] = proto;
	if (family == 4) {
		wr16(ip + 2, hlen + payload_len);
		ipv4_set_csum(ip);
	} else {
		wr16(ip + 4, hlen - 40 + payload_len);
	}
}

/*
 * The host's packet with ESP (esp), AH (ah) or both after its IP headers: a
 * bundle is IP | AH | ESP | payload (RFC 4301 4.5: ESP inside, AH outside),
 * so ESP is built first, in place after the room for AH.
 */
static int encap(struct sa *esp, struct sa *ah, uint8_t *out, uint32_t cap, const uint8_t *frame,
                 const struct pkt_info *pi)
{
	const uint8_t *ip = frame + pi->l3_off;
	uint32_t split, nh_at, hdr, body, ah_len;
	uint8_t nh;
	int n, rc;

	if (!pi->family || pi->frag != PKT_FRAG_NONE)
		return -XE_NOT_SUPPORTED;
	if ((rc = split_point(ip, pi->ip_len, pi->family, &split, &nh_at)) < 0)
		return rc;
	hdr = pi->l3_off + split;
	body = pi->ip_len - split;
	nh = ip[nh_at];
	ah_len = ah ? ah_hdr_len(ah, pi->family) : 0;
	if (cap <= hdr + ah_len)
		return -XE_MTU_EXCEEDED;
	if (!esp) {
		if (cap - hdr - ah_len < body)
			return -XE_MTU_EXCEEDED;
		memcpy(out + hdr + ah_len, ip + split, body);
		n = (int)body;
	} else if ((n = esp_encap(esp, out + hdr + ah_len, cap - hdr - ah_len, ip + split, body, nh)) < 0) {
		return n;
	}
	memcpy(out, frame, hdr);
	ip_fix(out + pi->l3_off, pi->family, split, ah_len + (uint32_t)n, nh_at, ah ? IPPROTO_AH_ : IPPROTO_ESP_);
	/* AH's ICV covers the finished IP header, so it is computed last. */
	if (ah && (rc = ah_encap(ah, out + pi->l3_off, split + ah_len + (uint32_t)n, split,
	                         esp ? IPPROTO_ESP_ : nh)) < 0)
		return rc;
	return (int)(hdr + ah_len) + n;
}

int transport_encap(struct sa *sa, uint8_t *out, uint32_t cap, const uint8_t *frame, const struct pkt_info *pi)
{
	bool ah = sa->conf.proto == PROTO_AH;

	return encap(ah ? NULL : sa, ah ? sa : NULL, out, cap, frame, pi);
}

int transport_encap_bundle(struct sa *esp, struct sa *ah, uint8_t *out, uint32_t cap, const uint8_t *frame,
                           const struct pkt_info *pi)
{
	return encap(esp, ah, out, cap, frame, pi);
}

/* Offset of the ESP or AH header in the IP packet: pkt_parse stops at ESP; IPv6's walk goes past AH. */
static uint32_t protected_at(const struct pkt_info *pi, bool ah)
{
	if (ah)
		return pkt_ah_at(pi);
	return pi->l4_off ? (uint32_t)(pi->l4_off - pi->l3_off) : 0;
}

int transport_decap(struct sa *sa, uint8_t *frame, const struct pkt_info *pi, uint8_t **out, uint32_t *out_len)
{
	bool ah = sa->conf.proto == PROTO_AH;
	uint8_t *ip = frame + pi->l3_off, *inner, nh;
	uint32_t split = protected_at(pi, ah), hdr = pi->l3_off + split, nh_at, inner_len;
	int rc;

	if (!split || pi->frag != PKT_FRAG_NONE || (rc = nh_byte_before(ip, pi->ip_len, pi->family, split, &nh_at)) < 0 ||
	    ip[nh_at] != (ah ? IPPROTO_AH_ : IPPROTO_ESP_))
		return -XE_MALFORMED_PACKET;
	rc = ah ? ah_decap(sa, ip, pi->ip_len, split, &inner, &inner_len, &nh)
	        : esp_decap(sa, ip + split, pi->ip_len - split, &inner, &inner_len, &nh);
	if (rc < 0)
		return rc;
	if (nh == NH_DUMMY)
		return -XE_DUMMY_PACKET;
	/* The host's headers move up to meet the payload where the ESP header and IV (or AH) were. */
	memmove(inner - hdr, frame, hdr);
	*out = inner - hdr;
	ip_fix(*out + pi->l3_off, pi->family, split, inner_len, nh_at, nh);
	*out_len = hdr + inner_len;
	return 0;
}
