/* ike.h: the IKEv2 engine's exported interface (sans-I/O: fed datagrams and time, answers through callbacks). */
#ifndef BITW_IKE_H
#define BITW_IKE_H

#include <stddef.h>
#include <stdint.h>

/* ---- K1: errors and the message codec (ike/msg.c; the codec's structs are in ike/msg.h) ---- */

/* Errors, returned negated like the wire's XE_*. Those named after an RFC 7296 notify map onto it
 * (ike_err_notify) so the engine can answer malformed input with the notify the RFC asks for. */
#define IKE_ERR_LIST(X) \
	X(IKE_OK, "ok") \
	X(IKE_E_INVALID_SYNTAX, "malformed message (lengths disagree, bad field)") \
	X(IKE_E_INVALID_MAJOR_VERSION, "IKE major version is not 2") \
	X(IKE_E_UNSUPPORTED_CRITICAL_PAYLOAD, "unknown payload marked critical") \
	X(IKE_E_TRUNCATED, "message shorter than its length field says") \
	X(IKE_E_TRAILING_DATA, "bytes after the message's last payload") \
	X(IKE_E_TOO_MANY, "more payloads, proposals, transforms or selectors than we accept") \
	X(IKE_E_NOSPACE, "output buffer too small") \
	X(IKE_E_BAD_PARAM, "bad parameter") \
	X(IKE_E__COUNT, "")

#define IKE_ERR_ENUM_(name, text) name,
enum ike_err { IKE_ERR_LIST(IKE_ERR_ENUM_) };
#undef IKE_ERR_ENUM_

/* "IKE_E_INVALID_SYNTAX" for IKE_E_INVALID_SYNTAX or its negation; "?" for anything else. */
const char *ike_err_name(int err);
/* A sentence for logs. */
const char *ike_strerror(int err);
/* The RFC 7296 notify type a peer should be sent for this error, or 0 when none applies. */
uint16_t ike_err_notify(int err);

/* ---- end K1 ---- */

/* ---- K2: transform IDs (IANA "IKEv2 Transform Type" values) used by key exchange and crypto (ike/crypto.c,
 * the functions themselves are in ike/crypto.h) ---- */

enum ike_encr_id {                       /* Transform type 1 */
	IKE_ENCR_AES_CBC = 12,               /* key length attribute 128/256 */
	IKE_ENCR_AES_GCM_16 = 20,            /* RFC 5282, 16-byte ICV */
	IKE_ENCR_CHACHA20_POLY1305 = 28,     /* RFC 7634 */
};
enum ike_prf_id {                        /* Transform type 2 */
	IKE_PRF_HMAC_SHA1 = 2,
	IKE_PRF_HMAC_SHA2_256 = 5,
	IKE_PRF_HMAC_SHA2_384 = 6,
	IKE_PRF_HMAC_SHA2_512 = 7,
};
enum ike_integ_id {                      /* Transform type 3 */
	IKE_INTEG_NONE = 0,
	IKE_INTEG_HMAC_SHA1_96 = 2,
	IKE_INTEG_HMAC_SHA2_256_128 = 12,
	IKE_INTEG_HMAC_SHA2_384_192 = 13,
	IKE_INTEG_HMAC_SHA2_512_256 = 14,
};
enum ike_dh_id {                         /* Transform type 4 */
	IKE_DH_NONE = 0,
	IKE_DH_MODP768 = 1,                  /* legacy: only when explicitly enabled */
	IKE_DH_MODP1024 = 2,                 /* legacy */
	IKE_DH_MODP1536 = 5,                 /* legacy */
	IKE_DH_MODP2048 = 14,
	IKE_DH_MODP3072 = 15,
	IKE_DH_MODP4096 = 16,
	IKE_DH_MODP6144 = 17,
	IKE_DH_MODP8192 = 18,
	IKE_DH_ECP256 = 19,
	IKE_DH_ECP384 = 20,
	IKE_DH_ECP521 = 21,
	IKE_DH_CURVE25519 = 31,
	IKE_DH_CURVE448 = 32,
};

/* ---- end K2 ---- */

#endif
