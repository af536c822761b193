/* msg.h: the IKEv2 message codec (RFC 7296 §3, RFC 7383 SKF): decode into structs that point into the datagram, encode back. */
#ifndef BITW_IKE_MSG_H
#define BITW_IKE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "ike.h"

#define IKE_HDR_LEN 28
#define IKE_GENERIC_HDR_LEN 4

/* Bounds: a message beyond them is refused (IKE_E_TOO_MANY) rather than grown into; real peers stay well inside. */
#define IKE_MAX_PAYLOADS 48
#define IKE_MAX_PROPOSALS 32     /* per message, over all SA payloads */
#define IKE_MAX_TRANSFORMS 128   /* per message, over all proposals */
#define IKE_MAX_TS 32            /* per message, over TSi and TSr */

enum ike_exchange {
	IKE_SA_INIT = 34,
	IKE_AUTH = 35,
	IKE_CREATE_CHILD_SA = 36,
	IKE_INFORMATIONAL = 37,
};

/* Header flags (RFC 7296 §3.1). */
#define IKE_FLAG_I 0x08 /* sent by the original initiator */
#define IKE_FLAG_V 0x10 /* can speak a higher version */
#define IKE_FLAG_R 0x20 /* a response */

enum ike_payload_type {
	IKE_PL_NONE = 0,
	IKE_PL_SA = 33,
	IKE_PL_KE = 34,
	IKE_PL_IDI = 35,
	IKE_PL_IDR = 36,
	IKE_PL_CERT = 37,
	IKE_PL_CERTREQ = 38,
	IKE_PL_AUTH = 39,
	IKE_PL_NONCE = 40,
	IKE_PL_NOTIFY = 41,
	IKE_PL_DELETE = 42,
	IKE_PL_VENDOR = 43,
	IKE_PL_TSI = 44,
	IKE_PL_TSR = 45,
	IKE_PL_SK = 46,
	IKE_PL_CP = 47,
	IKE_PL_EAP = 48,
	IKE_PL_SKF = 53,
};

enum ike_protocol { IKE_PROTO_IKE = 1, IKE_PROTO_AH = 2, IKE_PROTO_ESP = 3 };

enum ike_transform_type {
	IKE_TR_ENCR = 1,
	IKE_TR_PRF = 2,
	IKE_TR_INTEG = 3,
	IKE_TR_DH = 4,
	IKE_TR_ESN = 5,
};

#define IKE_ATTR_KEY_LENGTH 14

enum ike_id_type {
	IKE_ID_IPV4_ADDR = 1,
	IKE_ID_FQDN = 2,
	IKE_ID_RFC822_ADDR = 3,
	IKE_ID_IPV6_ADDR = 5,
	IKE_ID_DER_ASN1_DN = 9,
	IKE_ID_DER_ASN1_GN = 10,
	IKE_ID_KEY_ID = 11,
};

enum ike_ts_type { IKE_TS_IPV4_ADDR_RANGE = 7, IKE_TS_IPV6_ADDR_RANGE = 8 };

#define IKE_NONCE_MIN 16
#define IKE_NONCE_MAX 256

/* Notify message types: RFC 7296 §3.10.1 and the extensions we speak. X(name, value). */
#define IKE_NOTIFY_LIST(X) \
	X(UNSUPPORTED_CRITICAL_PAYLOAD, 1) \
	X(INVALID_IKE_SPI, 4) \
	X(INVALID_MAJOR_VERSION, 5) \
	X(INVALID_SYNTAX, 7) \
	X(INVALID_MESSAGE_ID, 9) \
	X(INVALID_SPI, 11) \
	X(NO_PROPOSAL_CHOSEN, 14) \
	X(INVALID_KE_PAYLOAD, 17) \
	X(AUTHENTICATION_FAILED, 24) \
	X(SINGLE_PAIR_REQUIRED, 34) \
	X(NO_ADDITIONAL_SAS, 35) \
	X(INTERNAL_ADDRESS_FAILURE, 36) \
	X(FAILED_CP_REQUIRED, 37) \
	X(TS_UNACCEPTABLE, 38) \
	X(INVALID_SELECTORS, 39) \
	X(TEMPORARY_FAILURE, 43) \
	X(CHILD_SA_NOT_FOUND, 44) \
	X(INITIAL_CONTACT, 16384) \
	X(SET_WINDOW_SIZE, 16385) \
	X(ADDITIONAL_TS_POSSIBLE, 16386) \
	X(IPCOMP_SUPPORTED, 16387) \
	X(NAT_DETECTION_SOURCE_IP, 16388) \
	X(NAT_DETECTION_DESTINATION_IP, 16389) \
	X(COOKIE, 16390) \
	X(USE_TRANSPORT_MODE, 16391) \
	X(HTTP_CERT_LOOKUP_SUPPORTED, 16392) \
	X(REKEY_SA, 16393) \
	X(ESP_TFC_PADDING_NOT_SUPPORTED, 16394) \
	X(NON_FIRST_FRAGMENTS_ALSO, 16395) \
	X(MOBIKE_SUPPORTED, 16396) \
	X(IKEV2_FRAGMENTATION_SUPPORTED, 16430) \
	X(SIGNATURE_HASH_ALGORITHMS, 16431)

#define IKE_NOTIFY_ENUM_(name, value) IKE_N_##name = value,
enum ike_notify_type { IKE_NOTIFY_LIST(IKE_NOTIFY_ENUM_) };
#undef IKE_NOTIFY_ENUM_

/* Bytes somewhere: in the decoded datagram, or the caller's memory when encoding (uint32_t: IKE lengths fit). */
struct ike_span {
	const uint8_t *p;
	uint32_t len;
};

struct ike_transform {
	uint8_t type;        /* IKE_TR_* */
	uint16_t id;         /* algorithm, in the type's IANA registry */
	uint16_t key_len;    /* bits from the Key Length attribute, 0 when absent */
	uint8_t unknown_attr; /* it carried an attribute we do not know: RFC 7296 §3.3.6 says reject this transform */
};

struct ike_proposal {
	uint8_t num;
	uint8_t protocol;    /* IKE_PROTO_* */
	struct ike_span spi; /* 0, 4 or 8 bytes */
	uint8_t n_transforms;
	struct ike_transform *transforms;
};

struct ike_sa_payload {
	uint8_t n_proposals;
	struct ike_proposal *proposals;
};

struct ike_ke {
	uint16_t group;
	struct ike_span data;
};

/* IDi, IDr. */
struct ike_id {
	uint8_t type;        /* IKE_ID_* */
	struct ike_span data;
};

/* CERT, CERTREQ (for CERTREQ the data is a list of CA public key hashes). */
struct ike_cert {
	uint8_t encoding;
	struct ike_span data;
};

struct ike_auth {
	uint8_t method;
	struct ike_span data;
};

struct ike_notify {
	uint8_t protocol;    /* 0 when about the IKE SA */
	uint16_t type;       /* IKE_N_* */
	struct ike_span spi;
	struct ike_span data;
};

struct ike_delete {
	uint8_t protocol;
	uint8_t spi_size;    /* 0 for IKE, 4 for ESP/AH */
	uint16_t n_spis;
	const uint8_t *spis; /* n_spis * spi_size bytes, network order */
};

struct ike_ts {
	uint8_t type;        /* IKE_TS_* */
	uint8_t ip_proto;    /* 0: any */
	uint16_t start_port, end_port;
	uint8_t start[16], end[16]; /* 4 or 16 bytes used */
};

struct ike_ts_payload {
	uint8_t n_ts;
	struct ike_ts *ts;
};

/* SK and SKF: the codec frames them; the crypto engine (ike/crypto.h, struct ike_sk) protects them.
 * Receiving: SK is always last and `off` of its payload is the sk_off/skf_off ike_sk_decrypt/ike_skf_decrypt want;
 * ike_sk_payload_split shows IV, ciphertext and ICV for a suite's lengths. Sending: encode the message with an
 * empty body; the SK header is then the last 4 bytes (SKF: 8, with fragment number and total) and ike_sk_encrypt
 * appends the rest. `next_inner` is the type of the first payload inside (RFC 7383: 0 in all but fragment 1). */
struct ike_sk_payload {
	uint8_t next_inner;
	uint16_t frag_num, frag_total; /* SKF only (RFC 7383), both >= 1 */
	struct ike_span body;       /* decode: IV || ciphertext || ICV; encode: written as given */
	struct ike_span iv, ct, icv; /* filled by ike_sk_payload_split */
};

struct ike_payload {
	uint8_t type;        /* IKE_PL_* */
	uint8_t critical;    /* as received; when encoding, set for payloads the peer must understand */
	uint32_t off;        /* decode: offset of its generic header in the message (inner payloads: in the plaintext) */
	struct ike_span raw; /* decode: the body after the generic header; encode: used for CP, EAP, Vendor ID and types we do not model */
	union {
		struct ike_sa_payload sa;
		struct ike_ke ke;
		struct ike_id id;
		struct ike_cert cert;
		struct ike_auth auth;
		struct ike_span nonce;
		struct ike_notify notify;
		struct ike_delete del;
		struct ike_ts_payload ts;
		struct ike_sk_payload sk;
	} u;
};

struct ike_msg {
	uint8_t spi_i[8], spi_r[8];
	uint8_t version;     /* 0x20 */
	uint8_t exchange;    /* IKE_SA_INIT ... */
	uint8_t flags;       /* IKE_FLAG_* */
	uint32_t msg_id;
	uint32_t length;     /* decode: from the header (= the datagram's length) */
	uint8_t n_payloads;
	uint8_t n_skipped;   /* unknown non-critical payloads passed over */
	uint8_t bad_critical; /* after IKE_E_UNSUPPORTED_CRITICAL_PAYLOAD: its type, for the notify's data */
	struct ike_payload payloads[IKE_MAX_PAYLOADS];
	/* The decoder's arena: proposals, transforms and selectors of this message point in here. */
	uint8_t n_proposals_used, n_ts_used;
	uint16_t n_transforms_used;
	struct ike_proposal proposal_pool[IKE_MAX_PROPOSALS];
	struct ike_transform transform_pool[IKE_MAX_TRANSFORMS];
	struct ike_ts ts_pool[IKE_MAX_TS];
};

/* Decodes a whole datagram (no non-ESP marker) into m, which then points into buf: buf must outlive m.
 * Stops at SK/SKF (which must be last); decode the decrypted inside with ike_msg_decode_inner.
 * Returns 0 or -IKE_E_*. */
int ike_msg_decode(struct ike_msg *m, const uint8_t *buf, size_t len);

/* Decodes the plaintext of an SK payload (its padding already removed) and appends its payloads to m.
 * `first` is the SK payload's next_inner. buf must outlive m. */
int ike_msg_decode_inner(struct ike_msg *m, uint8_t first, const uint8_t *buf, size_t len);

/* Finds IV, ciphertext and ICV in an SK/SKF body for a suite with these lengths. 0 or -IKE_E_INVALID_SYNTAX. */
int ike_sk_payload_split(struct ike_sk_payload *sk, size_t iv_len, size_t icv_len);

/* Encodes m (header from m's fields, length computed; payloads chained in order). Returns the length or -IKE_E_*.
 * An SK payload is written as header + body: the crypto engine encodes the inner payloads with
 * ike_payloads_encode, encrypts them into a body, and the ICV is the body's last bytes. */
int ike_msg_encode(const struct ike_msg *m, uint8_t *out, size_t cap);

/* Encodes a chain of payloads (the last one's next payload is 0), e.g. the plaintext inside SK. Returns the length. */
int ike_payloads_encode(const struct ike_payload *pl, size_t n, uint8_t *out, size_t cap);

/* Appends a payload to m for encoding; returns it zeroed with its type set, or NULL when m is full. */
struct ike_payload *ike_msg_add(struct ike_msg *m, uint8_t type);

/* The first payload of this type (and for notifies, `notify` type; 0: any) from index `from` on, or NULL. */
const struct ike_payload *ike_msg_find(const struct ike_msg *m, uint8_t type, uint16_t notify, size_t from);

/* Writes a readable trace of m, one field per line; returns what snprintf would (the full length). */
int ike_msg_dump(const struct ike_msg *m, char *buf, size_t len);

/* Names for traces: "SA", "IKE_SA_INIT", "NAT_DETECTION_SOURCE_IP", "ENCR"...; NULL when unknown. */
const char *ike_payload_name(uint8_t type);
const char *ike_exchange_name(uint8_t exchange);
const char *ike_notify_name(uint16_t type);
const char *ike_transform_type_name(uint8_t type);
const char *ike_id_type_name(uint8_t type);

#endif
