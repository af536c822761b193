/* pkt.h: addresses, frame parsing, checksums and the IP-level helpers of the wire. */
#ifndef BITW_PKT_H
#define BITW_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETH_HLEN_ 14
#define ETHERTYPE_IPV4_ 0x0800
#define ETHERTYPE_ARP_ 0x0806
#define ETHERTYPE_IPV6_ 0x86dd
#define ETHERTYPE_8021Q_ 0x8100
#define ETHERTYPE_8021AD_ 0x88a8
#define ETHERTYPE_QINQ_OLD_ 0x9100  /* pre-802.1ad stacked tags */

/* IP protocol and IPv6 next-header numbers (IANA) the wire reads or writes. */
#define NH_HOP 0             /* IPv6 hop-by-hop options */
#define IPPROTO_ICMP_ 1
#define NH_IPV4 4            /* IPv4 in IP: a tunnel's inner packet */
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define NH_IPV6 41
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define IPPROTO_ESP_ 50
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define NH_DUMMY 59          /* no next header: ESP's dummy packets (RFC 4303 2.6) */
#define NH_DSTOPTS 60
#define IPPROTO_SCTP_ 132
#define IPPROTO_UDPLITE_ 136

/* Network byte order, from and to unaligned buffers. */
static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, v >> 16);
	wr16(p + 2, v & 0xffff);
}

/* Largest frame the wire handles (jumbo frames included). */
#define PKT_MAX 9216

/* An IPv4 or IPv6 address; IPv4 lives in a[0..3], the rest is zero. */
struct bw_addr {
	uint8_t family; /* 4, 6, or 0 for none */
	uint8_t a[16];
};

/* What the classifier and the forwarding code need to know of a frame. */
struct pkt_info {
	uint16_t ethertype;
	uint16_t l3_off;   /* IP header offset in the frame */
	uint16_t l4_off;   /* upper-layer header offset; 0 if not present (non-first fragment) */
	uint8_t family;    /* 4, 6, 0 for not IP */
	uint8_t proto;     /* upper-layer protocol, after IPv6 extension headers (AH included) */
	uint8_t frag;      /* PKT_FRAG_* */
	uint8_t df;        /* IPv4 DF bit set */
	uint8_t tos;       /* DSCP+ECN (v4 TOS, v6 traffic class) */
	uint8_t ttl;       /* TTL / hop limit */
	uint16_t sport;    /* TCP/UDP/SCTP ports; ICMP type in sport, code in dport */
	uint16_t dport;
	uint32_t ip_len;   /* IP packet length per its header (<= captured - l3_off) */
	struct bw_addr src, dst;
	uint16_t ah_off;   /* offset of the (first) AH header, 0 = none or not in this fragment; IPv6's walk goes past it */
};

enum {
	PKT_FRAG_NONE = 0,
	PKT_FRAG_FIRST = 1,  /* offset 0, more fragments */
	PKT_FRAG_OTHER = 2,  /* offset != 0 */
};

/*
 * Parse an Ethernet frame. Validates the IP header (version, lengths, IPv4
 * header checksum not required) and walks IPv6 extension headers.
 * Returns 0 for IP (pi->family 4/6), 0 with family 0 for a non-IP frame,
 * -XE_MALFORMED_PACKET for a truncated or inconsistent IP packet.
 */
int pkt_parse(const uint8_t *frame, uint32_t len, struct pkt_info *pi);

/*
 * The IPv6 extension-header chain (RFC 8200 4), one header at a time:
 * hop-by-hop, routing, fragment, destination options and AH. Offsets count
 * from the start of the IPv6 header. Start with ipv6_walk_start; each
 * ipv6_walk_step moves past the header named by nh.
 */
struct ipv6_walk {
	uint32_t off;    /* where the header named by nh starts */
	uint32_t nh_at;  /* the next-header byte that names it (6: the fixed header's) */
	uint8_t nh;      /* its type */
};

static inline void ipv6_walk_start(const uint8_t *ip, struct ipv6_walk *w)
{
	w->off = 40;
	w->nh_at = 6;
	w->nh = ip[6];
}

/*
 * Step past the extension header w->nh at w->off, the packet ending at end:
 * 1, 0 when w->nh is not an extension header (upper layer, ESP, no next
 * header, unknown; w unchanged), -XE_MALFORMED_PACKET when the header does
 * not fit before end. A fragment header is always 8 bytes (its second byte
 * is reserved, not a length); AH's length counts 4-byte words less two.
 */
int ipv6_walk_step(const uint8_t *ip, uint32_t end, struct ipv6_walk *w);

/* Offset of the AH header in pi's IP packet (from the IP header), 0 when the frame has none to read. */
static inline uint32_t pkt_ah_at(const struct pkt_info *pi)
{
	return pi->ah_off ? (uint32_t)(pi->ah_off - pi->l3_off) : 0;
}

/* Address helpers. */
bool bw_addr_eq(const struct bw_addr *a, const struct bw_addr *b);
/* A hash of the address (its family's bytes) mixed into seed, for open-addressed tables. */
uint64_t bw_addr_hash(const struct bw_addr *a, uint64_t seed);
int bw_addr_parse(const char *s, struct bw_addr *out);          /* 0 or -XE_BAD_PARAM */
const char *bw_addr_str(const struct bw_addr *a, char *buf, size_t len);
/* Is `a` inside `net`/`plen`? */
bool bw_addr_in_prefix(const struct bw_addr *a, const struct bw_addr *net, uint8_t plen);

/*
 * Internet checksum pieces (RFC 1071), one's-complement arithmetic. Sums are
 * host numbers of big-endian 16-bit words, chainable (only the last piece may
 * have odd length); csum_fold returns the complemented checksum as a host
 * number: store it with htons(). E.g. UDP over IPv4:
 *   htons(csum_fold(csum_partial(udp, len, csum_pseudo(&src, &dst, 17, len))))
 */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
uint16_t csum_fold(uint32_t sum);
/* Pseudo-header sum for TCP/UDP/ICMPv6 of an IPv4 or IPv6 packet. */
uint32_t csum_pseudo(const struct bw_addr *src, const struct bw_addr *dst, uint8_t proto, uint32_t l4_len);
/* Fill the IPv4 header checksum of the header at ip. */
void ipv4_set_csum(uint8_t *ip);
/*
 * Frames captured from a veth peer may carry CHECKSUM_PARTIAL TCP/UDP
 * checksums (only the pseudo-header sum is in the field). Complete such a
 * checksum in place so the frame can leave on a wire; a complete checksum is
 * left alone. Cheap: a full pass only when the field looks partial.
 */
void csum_complete_partial(uint8_t *frame, const struct pkt_info *pi);

#endif
