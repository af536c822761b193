/* ip.h: IP-level work of the wire: ICMP errors, MSS clamping, fragmentation, reassembly, segmentation. */
#ifndef BITW_IP_H
#define BITW_IP_H

#include <stdbool.h>
#include <stdint.h>

#include "pkt.h"

/*
 * ICMPv4 fragmentation-needed (type 3 code 4) or ICMPv6 packet-too-big
 * answering the packet in frame (as received), carrying mtu. The answer is a
 * whole Ethernet frame written to out: destination MAC = the frame's source,
 * source MAC = smac, IP source = src (our address), as much of the original
 * as the RFCs allow. Returns the frame length, 0 if no ICMP may be sent (the
 * original is itself an ICMP error, a fragment other than the first, or from
 * an unspecified/multicast source).
 */
uint32_t icmp_build_too_big(uint8_t *out, uint32_t cap, const uint8_t *frame, const struct pkt_info *pi,
                            uint32_t mtu, const uint8_t smac[6], const struct bw_addr *src);
/* Echo reply for an echo request addressed to us, whole frame into out; 0 if not an echo request. */
uint32_t icmp_build_echo_reply(uint8_t *out, uint32_t cap, const uint8_t *frame, const struct pkt_info *pi,
                               const uint8_t smac[6]);

/*
 * Lower the MSS option of a TCP SYN to mss (checksum fixed up incrementally,
 * so complete a CHECKSUM_PARTIAL field first with csum_complete_partial).
 * True if changed; a SYN without the option or with malformed options is left alone.
 */
bool tcp_mss_clamp(uint8_t *frame, const struct pkt_info *pi, uint16_t mss);

/*
 * Fragment an IP packet (IPv4 or IPv6, at ip, len bytes) so that each piece
 * fits mtu. Iterator: each call writes the next fragment (IP header included)
 * at out and returns its length; 0 when done; -XE_MTU_EXCEEDED if it cannot
 * be done (IPv4 DF set, or mtu too small). *state starts at 0. IPv6 uses ident
 * for the Fragment header. A packet that fits comes out whole, once.
 */
int ip_fragment_next(const uint8_t *ip, uint32_t len, uint32_t mtu, uint32_t ident, uint32_t *state,
                     uint8_t *out, uint32_t cap);

/*
 * Reassembly of fragments addressed to us, bounded in memory and time. One
 * per thread; all memory is allocated in reasm_new.
 */
struct reasm;
struct reasm *reasm_new(uint32_t mem_max, uint32_t timeout_ms);
void reasm_free(struct reasm *r);
/*
 * Feed one fragment (IP packet at ip, len bytes, pi from pkt_parse with the
 * frame's offsets). Returns 1 when a packet is complete (*out points to it,
 * valid until the next call), 0 when the fragment was kept, or a negative XE_*
 * when it was dropped: -XE_FRAG_FAILED (overlap, datagram beyond PKT_MAX; the
 * whole datagram goes), -XE_MALFORMED_PACKET, -XE_NOMEM (every slot busy).
 * An IPv4 packet that is no fragment at all comes straight back (1, *out = ip).
 */
int reasm_input(struct reasm *r, const uint8_t *ip, uint32_t len, const struct pkt_info *pi, uint64_t now_ms,
                const uint8_t **out, uint32_t *out_len);
/* Drop incomplete packets older than the timeout; returns how many. */
uint32_t reasm_expire(struct reasm *r, uint64_t now_ms);

/*
 * A frame larger than the port MTU (a GRO/GSO super-frame): split it into
 * frames that fit. TCP is segmented at the MSS the MTU allows (sequence
 * numbers, flags, IP ids and checksums fixed); other IPv4 is fragmented unless
 * DF; the rest is refused. Iterator as ip_fragment_next, whole Ethernet
 * frames in and out.
 */
int gso_segment_next(const uint8_t *frame, uint32_t len, const struct pkt_info *pi, uint32_t mtu,
                     uint32_t *state, uint8_t *out, uint32_t cap);

#endif
