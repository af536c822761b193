/* wire.h: what bitw-wire exports: the control protocol and the error codes. */
#ifndef BITW_WIRE_H
#define BITW_WIRE_H

#include <stdint.h>

/*
 * Control channel between bitwd and bitw-wire: a SOCK_SEQPACKET unix socket.
 * Every message is one datagram: struct ctl_hdr, then `len` bytes of payload.
 * Payloads are JSON objects (the same schema as the configuration file and
 * the REST API, so there is one description of a policy or an SA), except
 * IKE_SEND/IKE_RECV, whose payload is struct ctl_ike_dgram then the datagram.
 *
 * A request (flags without CTL_F_REPLY/CTL_F_EVENT) gets exactly one reply
 * with the same type and seq, CTL_F_REPLY set, and status 0 or a negative
 * XE_* code; an error reply carries {"error": "...", "field": "..."}.
 * Events are sent by bitw-wire unprompted with CTL_F_EVENT and seq 0.
 */

#define CTL_DEFAULT_PATH "/run/bitw/wire.sock"
#define CTL_MAX_MSG      (1u << 20)  /* whole datagram, header included */
#define CTL_VERSION      1

enum ctl_type {
	CTL_HELLO = 1,        /* {"version":1} -> {"version":1,"name":"bitw-wire",...} */
	CTL_SPD_SET,          /* {"policies":[...], "default_action":...} whole table */
	CTL_SA_ADD,           /* {"sa": {...}} or {"sas": [...]}; "origin":"ike" for SAs bitwd's IKE keyed;
	                         an SA of a clone policy carries "clone_host": "addr" (the host it serves) */
	CTL_SA_DEL,           /* {"spi": n, "direction": "in"|"out", "protocol": "esp"|"ah"}: an SA is named by
	                         (SPI, direction, protocol), since an AH+ESP bundle's inbound AH and ESP SAs
	                         share one SPI; without "protocol" the SAs of both protocols with that SPI
	                         and direction go */
	CTL_SA_FLUSH,         /* {} or {"policy": "name"} */
	CTL_GET_SPI,          /* {} -> {"spi": n} an unused inbound SPI, reserved; {"count": 1..64} -> also
	                       * {"spis": [n, ...]} that many. Each is free for both protocols: the inbound
	                       * SAD is keyed by (SPI, protocol), so one SPI serves both SAs of an AH+ESP
	                       * bundle (SA_ADD them one by one, in any order); a reservation ends with the
	                       * first inbound SA added under it */
	CTL_INITIAL_CONTACT,  /* {"peer": "addr"}: drop every SA to that peer */
	CTL_STATS,            /* {} -> ports, policies, sas, drops */
	CTL_IKE_SEND,         /* struct ctl_ike_dgram + datagram */
	CTL_CONFIG_GET,       /* {} -> the running configuration, keys redacted */
	CTL_SA_LIST,          /* {} -> {"sas":[...]} live SAD, keys redacted */
	CTL_CONFIG_SET,       /* a whole configuration document (ports, options, policies, manual SAs)
	                         applied atomically like SIGHUP: unchanged SAs keep their state; it replaces
	                         manual SAs only: IKE SAs stay while their policy (name, id, mode) does */

	CTL_EV_ACQUIRE = 64,  /* {"policy": name, "policy_id": n, "src":..., "dst":..., "peer":...}; a clone
	                         policy's adds "clone_host": the host (src or dst per its clone) without an SA;
	                         at most one a second per policy, or per host of a clone policy */
	CTL_EV_SA_SOFT_EXPIRE,/* {"spi": n, "dir": ..., "reason": "bytes"|...} */
	CTL_EV_SA_HARD_EXPIRE,
	CTL_EV_IKE_RECV,      /* struct ctl_ike_dgram + datagram */
	CTL_EV_IF_STATE,      /* {"port": "red"|"black", "up": bool} */
};

enum {
	CTL_F_REPLY = 1u << 0,
	CTL_F_EVENT = 1u << 1,
};

struct ctl_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t seq;
	uint32_t len;     /* payload bytes after this header */
	int32_t status;   /* replies: 0 or -XE_* */
};

struct ctl_ike_dgram {
	uint8_t family;   /* 4 or 6 */
	uint8_t pad[3];
	uint16_t sport;   /* host byte order */
	uint16_t dport;
	uint8_t src[16];  /* IPv4 in the first 4 bytes */
	uint8_t dst[16];
};

/*
 * Error and drop-reason codes. Negative values are returned by functions and
 * carried in ctl_hdr.status; the same codes index the per-reason drop
 * counters. Names follow the seeds' error table.
 */
#define XE_LIST(X) \
	X(XE_OK, "ok") \
	X(XE_NOMEM, "out of memory") \
	X(XE_BAD_PARAM, "bad parameter") \
	X(XE_NOT_SUPPORTED, "not supported") \
	X(XE_SA_NOT_FOUND, "SA not found") \
	X(XE_SA_EXISTS, "SA already exists") \
	X(XE_POLICY_NOT_FOUND, "policy not found") \
	X(XE_BAD_MESSAGE, "malformed control message") \
	X(XE_IO, "I/O error") \
	X(XE_MALFORMED_PACKET, "malformed packet") \
	X(XE_NO_POLICY, "no policy matched (default discard)") \
	X(XE_POLICY_DISCARD, "policy action discard") \
	X(XE_NO_SA, "no SA for protect policy") \
	X(XE_ACQUIRE_QUEUE_FULL, "acquire queue full") \
	X(XE_BAD_ESP_SPI, "unknown ESP SPI") \
	X(XE_BAD_SEQUENCE_NUMBER, "replayed or too old sequence number") \
	X(XE_SEQUENCE_OVERFLOW, "sequence number space exhausted") \
	X(XE_ESP_DIGEST_MISMATCH, "ESP integrity check failed") \
	X(XE_ESP_BAD_PADDING, "ESP padding invalid") \
	X(XE_INBOUND_POLICY_FAILURE, "inner packet outside the SA's selectors") \
	X(XE_INBOUND_EXPECTED_SECURE_PACKET, "cleartext packet matched a protect policy") \
	X(XE_MTU_EXCEEDED, "packet exceeds MTU") \
	X(XE_SA_EXPIRED, "SA hard lifetime reached") \
	X(XE_NEIGH_UNRESOLVED, "next hop unresolved, queue full") \
	X(XE_NO_ROUTE, "no next hop for destination") \
	X(XE_FRAG_FAILED, "reassembly failed or timed out") \
	X(XE_TX_FAILED, "transmit failed") \
	X(XE_TOO_BIG, "frame larger than the port can carry") \
	X(XE_NON_IP_BLOCKED, "non-IP frame, bridging disabled") \
	X(XE_NOT_FOR_US, "frame not addressed to us") \
	X(XE_DUMMY_PACKET, "dummy ESP packet (next header 59)") \
	X(XE_TAGGED_IP_BLOCKED, "IP inside an 802.1Q/802.1ad tag (never classified), dropped") \
	X(XE_ADMIN_DROP, "administrative state drop (drop all)") \
	X(XE_ECN_CE_NOT_ECT, "outer ECN CE over a not-ECT inner packet (RFC 6040 4.2)") \
	X(XE_AH_DIGEST_MISMATCH, "AH integrity check failed") \
	X(XE_BAD_AH_SPI, "unknown AH SPI") \
	X(XE__COUNT, "")

#define XE_ENUM_(name, text) name,
enum xe { XE_LIST(XE_ENUM_) };
#undef XE_ENUM_

/* "XE_BAD_ESP_SPI" for XE_BAD_ESP_SPI or -XE_BAD_ESP_SPI. */
const char *xe_name(int code);
/* A sentence for a person. */
const char *xe_text(int code);

/*
 * The configuration schema is part of what the wire exports: bitwd validates
 * REST bodies with the same parser bitw-wire uses, so both agree on every rule.
 */
#include "config.h"

#endif
