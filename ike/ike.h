/* ike.h: the IKEv2 engine's exported interface (sans-I/O: fed datagrams and time, answers through callbacks). */
#ifndef BITW_IKE_H
#define BITW_IKE_H

#include <stdbool.h>
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
	X(IKE_E_NOT_SUPPORTED, "algorithm, key type or identity type not supported") \
	X(IKE_E_CERT_INVALID, "certificate, key or CRL cannot be parsed") \
	X(IKE_E_CERT_EXPIRED, "certificate expired") \
	X(IKE_E_CERT_NOT_YET_VALID, "certificate not yet valid") \
	X(IKE_E_CERT_UNKNOWN_CA, "certificate not issued by a trusted CA") \
	X(IKE_E_CERT_REVOKED, "certificate revoked") \
	X(IKE_E_CERT_CRL, "no valid CRL for a certificate of the chain (revocation status unknown)") \
	X(IKE_E_CERT_BAD_SIGNATURE, "certificate or CRL signature does not verify") \
	X(IKE_E_AUTH_FAILED, "AUTH payload does not verify") \
	X(IKE_E_ID_MISMATCH, "identity does not match the configuration or the certificate") \
	X(IKE_E_NOMEM, "out of memory") \
	X(IKE_E_NOT_FOUND, "no such peer, policy, IKE SA or child SA") \
	X(IKE_E_STATE, "not possible in the SA's current state") \
	X(IKE_E_BUSY, "an exchange is already outstanding") \
	X(IKE_E_NO_PROPOSAL_CHOSEN, "no proposal acceptable to both sides") \
	X(IKE_E_INVALID_KE_PAYLOAD, "the peer wants another key exchange group") \
	X(IKE_E_TS_UNACCEPTABLE, "traffic selectors unacceptable") \
	X(IKE_E_CRYPTO, "a cryptographic operation failed (bad ICV, key exchange)") \
	X(IKE_E_TIMEOUT, "the peer did not answer") \
	X(IKE_E_LIMIT, "a configured bound was reached (half-open SAs, SAs, children)") \
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
	IKE_ENCR_3DES = 3,                   /* child SAs only, legacy (RFC 2451; no key length attribute) */
	IKE_ENCR_AES_CBC = 12,               /* key length attribute 128/256 */
	IKE_ENCR_AES_CTR = 13,               /* child SAs only (RFC 3686): key || 4-byte nonce */
	IKE_ENCR_AES_CCM_8 = 14,             /* child SAs only (RFC 4309, 8/12/16-byte ICV): key || 3-byte salt */
	IKE_ENCR_AES_CCM_12 = 15,
	IKE_ENCR_AES_CCM_16 = 16,
	IKE_ENCR_AES_GCM_16 = 20,            /* RFC 5282, 16-byte ICV */
	IKE_ENCR_NULL_AUTH_AES_GMAC = 21,    /* child SAs only (RFC 4543, integrity only): key || 4-byte salt */
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
	IKE_INTEG_HMAC_MD5_96 = 1,           /* child SAs only, legacy (RFC 2403) */
	IKE_INTEG_HMAC_SHA1_96 = 2,
	IKE_INTEG_AES_XCBC_96 = 5,           /* child SAs only (RFC 3566) */
	IKE_INTEG_HMAC_SHA2_256_128 = 12,
	IKE_INTEG_HMAC_SHA2_384_192 = 13,
	IKE_INTEG_HMAC_SHA2_512_256 = 14,
	IKE_INTEG_AES_128_GMAC = 18,         /* AH only (RFC 4543): key || 4-byte salt */
	IKE_INTEG_AES_256_GMAC = 20,
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

/* ---- certificates, identities, fragments (ike/cert.c, ike/frag.c, ike/keyexport.c; owner: ikecert) ---- */

/* Identities (RFC 7296 3.5). Text forms: "198.51.100.1", "2001:db8::1", "gw.example.org" (FQDN), "a@example.org"
 * (RFC 822), "C=CH, O=Example, CN=gw" (DER DN; also "/C=CH/O=x" is NOT accepted: commas only), "%any" (matches
 * every received identity; never sent). A prefix forces the type like strongSwan: "fqdn:", "email:", "dn:",
 * "ipv4:", "ipv6:". FQDN and RFC 822 identities may start with "*" ("*.example.org", "*@example.org") to match
 * a whole domain when used as the expected remote identity. */
#define IKE_IDENT_MAX 512
#define IKE_ID_ANY 0               /* ike_ident.type of "%any" */
struct ike_ident {
	uint8_t type;                  /* IKE_ID_* (msg.h) or IKE_ID_ANY */
	uint16_t len;
	uint8_t data[IKE_IDENT_MAX];   /* the ID payload's Identification Data (after type and 3 reserved bytes) */
};
/* 0 or -IKE_E_BAD_PARAM (unparseable text, e.g. a DN with an unknown attribute). */
int ike_id_parse(const char *text, struct ike_ident *out);
/* The same from a received ID payload; 0 or -IKE_E_INVALID_SYNTAX (wrong address length, empty) /
 * -IKE_E_NOT_SUPPORTED (type we do not speak). */
int ike_id_from_payload(uint8_t type, const uint8_t *data, size_t len, struct ike_ident *out);
/* Readable text for logs and REST ("198.51.100.1", "C=CH, O=Example, CN=gw", non-printable bytes escaped);
 * returns what snprintf would. */
int ike_id_format(const struct ike_ident *id, char *buf, size_t len);
/* A received identity is the one configured: %any matches all, DNs compare as names (case, spacing and string
 * types do not matter), FQDN/RFC 822 case-insensitively (with the "*" wildcard above), addresses bytewise. */
bool ike_id_match(const struct ike_ident *conf, const struct ike_ident *received);
/* The certificate (DER) vouches for the identity: a DN must be its subject, anything else one of its
 * subjectAltNames (IP address, DNS name, rfc822Name). 0, -IKE_E_ID_MISMATCH or -IKE_E_CERT_INVALID. */
int ike_id_matches_cert(const struct ike_ident *id, const uint8_t *cert_der, size_t cert_len);

struct ike_castore;                /* below */

/* Our credentials: an end-entity certificate (first in cert_pem), optional intermediates after it, and its
 * private key (RSA or ECDSA P-256/384/521; PEM, PKCS#8 or traditional, unencrypted). The key is wiped on free. */
struct ike_cred;
/* 0 or -IKE_E_CERT_INVALID / -IKE_E_NOT_SUPPORTED with err naming the problem ("key does not match certificate"). */
int ike_cred_new(const char *cert_pem, const char *key_pem, struct ike_cred **out, char *err, size_t err_len);
void ike_cred_free(struct ike_cred *c);
/* Certificates of our chain, 0 = the end entity, for CERT payloads (encoding IKE_CERT_X509_SIG, DER as is). */
size_t ike_cred_chain_len(const struct ike_cred *c);
int ike_cred_cert(const struct ike_cred *c, size_t i, const uint8_t **der, size_t *len);
/* Our certificate's subject as a DN identity (the default local identity when none is configured). */
int ike_cred_subject(const struct ike_cred *c, struct ike_ident *out);
/* A received CERTREQ body (SHA-1 hashes of CA SubjectPublicKeyInfos) names a CA of our chain: one of our
 * intermediates, or a CA in `store` (may be NULL) that issued our chain's top. An empty CERTREQ matches. */
bool ike_cred_certreq_match(const struct ike_cred *c, const struct ike_castore *store, const uint8_t *certreq,
	size_t len);

/* Trusted CAs (PEM, several concatenated) and optional CRLs (PEM; once any are given, every certificate of a chain
 * must be covered by a CRL of its issuer: fail closed). */
struct ike_castore;
int ike_castore_new(const char *ca_pem, const char *crl_pem, struct ike_castore **out, char *err, size_t err_len);
void ike_castore_free(struct ike_castore *s);
/* CERTREQ body: SHA-1 of each CA's SubjectPublicKeyInfo, concatenated. Returns its length or -IKE_E_NOSPACE. */
int ike_castore_certreq(const struct ike_castore *s, uint8_t *out, size_t cap);
/* Validates a received end entity (DER) with untrusted intermediates (DER, e.g. further CERT payloads) against the
 * store at time `now` (seconds since 1970). 0 or -IKE_E_CERT_EXPIRED, _NOT_YET_VALID, _UNKNOWN_CA, _REVOKED,
 * _CRL (CRLs configured but none valid for a certificate), _BAD_SIGNATURE, _INVALID. */
int ike_cert_verify(const struct ike_castore *s, const uint8_t *ee_der, size_t ee_len,
	const uint8_t *const *chain_der, const size_t *chain_len, size_t n_chain, int64_t now);

#define IKE_CERT_X509_SIG 4        /* CERT/CERTREQ encoding "X.509 Certificate - Signature" */

/* AUTH methods (RFC 7296 3.8, RFC 4754, RFC 7427). */
enum ike_auth_method {
	IKE_AUTH_METHOD_RSA = 1,       /* RSASSA-PKCS1-v1_5 with SHA-1 */
	IKE_AUTH_METHOD_PSK = 2,
	IKE_AUTH_METHOD_ECDSA_256 = 9, /* P-256 with SHA-256 */
	IKE_AUTH_METHOD_ECDSA_384 = 10,
	IKE_AUTH_METHOD_ECDSA_521 = 11,
	IKE_AUTH_METHOD_DIGSIG = 14,   /* RFC 7427: AlgorithmIdentifier + signature */
};
/* RFC 7427 hash algorithm identifiers, the contents of SIGNATURE_HASH_ALGORITHMS (2 bytes each). */
enum ike_hash_id { IKE_HASH_SHA1 = 1, IKE_HASH_SHA2_256 = 2, IKE_HASH_SHA2_384 = 3, IKE_HASH_SHA2_512 = 4 };
#define IKE_HASH_BIT(id) (1u << (id))
/* Our SIGNATURE_HASH_ALGORITHMS notify data (SHA2-256/384/512). Its length or -IKE_E_NOSPACE. */
int ike_sighash_notify(uint8_t *out, size_t cap);
/* A received one as a set of IKE_HASH_BIT()s (unknown values ignored; odd length: 0). */
uint32_t ike_sighash_parse(const uint8_t *data, size_t len);

/* Largest AUTH data we produce (RSA 8192 bits + AlgorithmIdentifier). */
#define IKE_AUTH_SIG_MAX 1200
/* AUTH payload for our key over `octets` (ike_signed_octets). peer_hashes: the peer's SIGNATURE_HASH_ALGORITHMS
 * (0: none received, then the classic method of the key type is used: RSA/SHA-1 or ECDSA 9/10/11). With RFC 7427
 * the hash is the strongest both support (ECDSA: the curve's own hash when the peer has it); RSA keys sign
 * PKCS#1 v1.5 unless `pss`. Writes the method and returns the AUTH data length or -IKE_E_*. */
int ike_auth_sign(const struct ike_cred *c, uint32_t peer_hashes, bool pss, const uint8_t *octets,
	size_t octets_len, uint8_t *method, uint8_t *out, size_t cap);
/* Checks a received AUTH (method 1, 9/10/11 or 14) with the public key of the peer's certificate (DER, already
 * validated with ike_cert_verify). 0, -IKE_E_AUTH_FAILED, -IKE_E_NOT_SUPPORTED or -IKE_E_CERT_INVALID. */
int ike_auth_verify(const uint8_t *cert_der, size_t cert_len, uint8_t method, const uint8_t *auth, size_t auth_len,
	const uint8_t *octets, size_t octets_len);

/* IKE fragmentation (RFC 7383). max_msg is the largest IKE message (UDP payload without the non-ESP marker) a
 * fragment may be: for IPv4 path MTU 1500 that is 1500 - 20 - 8 - (4 if on port 4500). */
struct ike_sk;                     /* ike/crypto.h: one direction's cipher state */
#define IKE_FRAG_MAX 64            /* fragments per message we send or accept */
/* hdr: the 28-byte IKE header to send (SPIs, exchange, flags, message ID; length and next payload are set here).
 * inner: the encoded inner payloads, first: the first one's type. Writes the fragments back to back into out
 * (each a complete datagram with one SKF payload), their lengths into frag_len[]; returns how many or -IKE_E_*. */
int ike_frag_split(struct ike_sk *sk, const uint8_t *hdr, uint8_t first, const uint8_t *inner, size_t inner_len,
	size_t max_msg, uint8_t *out, size_t cap, size_t *frag_len, size_t max_frags);

/* Reassembly of one message's fragments; each is authenticated and decrypted on arrival (so forged ones cannot
 * evict real ones), duplicates are ignored, a higher Total Fragments restarts it (the sender re-fragmented smaller),
 * a lower one is ignored. */
struct ike_defrag;
int ike_defrag_new(size_t max_frags, size_t max_total, uint64_t timeout_ms, struct ike_defrag **out);
void ike_defrag_free(struct ike_defrag *d);
/* Feeds a received datagram whose last payload is SKF, already known to belong to the expected message ID (a
 * different message ID or a timed-out partial message discards what was collected). Returns 0 (stored or ignored,
 * more needed), the inner payloads' length once complete (copied to out, first inner payload type in *first;
 * the state is then reset), or -IKE_E_TOO_MANY (bounds), -IKE_E_INVALID_SYNTAX, -XE_ESP_DIGEST_MISMATCH (forged). */
int ike_defrag_add(struct ike_defrag *d, struct ike_sk *sk, const uint8_t *msg, size_t len, uint64_t now_ms,
	uint8_t *out, size_t cap, uint8_t *first);
/* A partial message is waiting and when it expires (UINT64_MAX: none), for the caller's timers. */
uint64_t ike_defrag_deadline(const struct ike_defrag *d);
void ike_defrag_reset(struct ike_defrag *d);

/* Wireshark key export (admin-only, off by default: the lines carry keys). One line each, no newline; returns
 * what snprintf would or -IKE_E_NOT_SUPPORTED for an algorithm Wireshark has no name for.
 * esp_sa UAT (Preferences > Protocols > ESP > ESP SAs): "IPv4","src","dst","0xSPI","encr","0xkey","auth","0xkey".
 * family 4|6; spi host order; ekey with the AEAD salt; akey NULL with an AEAD. */
int ike_keyexport_esp_sa(char *buf, size_t len, uint8_t family, const uint8_t *src, const uint8_t *dst,
	uint32_t spi, uint16_t encr, uint16_t key_bits, const uint8_t *ekey, size_t ekey_len, uint16_t integ,
	const uint8_t *akey, size_t akey_len);
/* ikev2_decryption_table UAT: SPIi,SPIr,SK_ei,SK_er,"encr",SK_ai,SK_ar,"integ": the byte fields bare hex (Wireshark
 * refuses them quoted), empty SK_a* with an AEAD; SK_e* with the AEAD salt. No ChaCha20 (Wireshark has none). */
struct ike_sa_keys;                /* ike/crypto.h */
int ike_keyexport_ikev2(char *buf, size_t len, const uint8_t *spi_i, const uint8_t *spi_r, uint16_t encr,
	uint16_t key_bits, uint16_t integ, const struct ike_sa_keys *keys);

/* ---- end certificates, identities, fragments ---- */

/* ---- ikeeng: the engine (ike/engine.c, sa.c, init.c, auth.c, child.c, info.c, proposal.c, ts.c) ----
 *
 * One struct ike_engine per bitwd owns every IKE SA. It has no sockets and no clock: the caller feeds datagrams
 * (ike_input), kernel ACQUIREs (ike_acquire), expiry from the wire (ike_sa_expire), operator commands and the
 * time (now_ms, any monotonic millisecond clock), calls ike_tick at ike_next_deadline, and the engine answers
 * through struct ike_callbacks (datagrams to send, child SAs to install/delete, events). Calls are not
 * reentrant: callbacks must not call back into the engine. All functions return 0 or -IKE_E_*. */

struct ike_engine;

/* An outer endpoint: family 4 or 6 (0 = any, only in ike_peer_conf.remote of a respond-only peer), port in
 * host order (500, or 4500 once NAT-T floated), addr network order (4 or 16 bytes used). */
struct ike_addr {
	uint8_t family;
	uint16_t port;
	uint8_t addr[16];
};

/* One proposal: every algorithm of each type is acceptable (strongSwan's "aes256gcm16-aes128gcm16-prfsha384-
 * curve25519-ecp256"); our preference is the order. Child proposals: no PRF; dh non-empty = PFS; esn lists
 * 0 (no ESN) and/or 1 (ESN), empty = no ESN only. */
#define IKE_PROP_MAX_ALGS 8
struct ike_proposal_conf {
	uint8_t n_encr, n_integ, n_prf, n_dh, n_esn;
	struct { uint16_t id, key_bits; } encr[IKE_PROP_MAX_ALGS];   /* IKE_ENCR_*, 128/256 (AES), 256 (ChaCha) */
	uint16_t integ[IKE_PROP_MAX_ALGS];  /* IKE_INTEG_*; none with AEADs */
	uint16_t prf[IKE_PROP_MAX_ALGS];    /* IKE_PRF_*; IKE proposals only (AEAD: required; else defaults from integ) */
	uint16_t dh[IKE_PROP_MAX_ALGS];     /* IKE_DH_* */
	uint8_t esn[2];
};

/* strongSwan-style proposal strings so operators copy configs across: "aes256gcm16-prfsha384-curve25519,
 * aes256-sha256-modp3072" (IKE), "aes256gcm16-curve25519" (ESP with PFS), "aes256-sha256", "chacha20poly1305-esn".
 * Tokens: aes128 aes256 aes128gcm16 aes256gcm16 (also aes*gcm = gcm16) chacha20poly1305, sha1 sha256 sha384 sha512
 * (integrity; in IKE proposals also the PRF unless prf* is given), prfsha1 prfsha256 prfsha384 prfsha512,
 * modp768 modp1024 modp1536 (only with legacy) modp2048..modp8192 ecp256 ecp384 ecp521 curve25519 x25519
 * curve448 x448, esn noesn. Child proposals only (the wire has them; IKE messages never use them): aes128ctr
 * aes256ctr (RFC 3686, with an integrity algorithm), aes128ccm8/12/16 aes256ccm8/12/16 (also ccm64/96/128, ccm =
 * ccm16; RFC 4309), aes128gmac aes256gmac (RFC 4543, integrity-only ESP: no integrity token), aesxcbc (RFC 3566),
 * and with legacy only 3des and md5 (HMAC-MD5-96). legacy also admits modp768/1024/1536. Returns the number of
 * proposals written (<= max) or -IKE_E_BAD_PARAM with err naming the bad token ("unknown algorithm 'aes999'",
 * "proposal 2 has no encryption", "'3des' is a legacy algorithm"). */
int ike_proposals_parse(const char *text, bool child, bool legacy, struct ike_proposal_conf *out, size_t max,
	char *err, size_t err_len);
/* AH child proposals (protocol 2): integrity only, "sha256-sha1", "aesxcbc", "aes128gmac"/"aes256gmac" (AH's
 * AES-GMAC integrity 18/20), PFS groups and esn as for ESP; no encryption token. */
int ike_ah_proposals_parse(const char *text, bool legacy, struct ike_proposal_conf *out, size_t max, char *err,
	size_t err_len);
/* The inverse, for REST: "aes256gcm16-prfsha384-curve25519". Returns what snprintf would. */
int ike_proposal_format(const struct ike_proposal_conf *p, bool child, char *buf, size_t len);

enum ike_auth_kind { IKE_AUTH_PSK = 1, IKE_AUTH_PUBKEY = 2 };
enum ike_dpd_action { IKE_DPD_CLEAR = 0, IKE_DPD_HOLD = 1, IKE_DPD_RESTART = 2 };
enum ike_start { IKE_START_NEVER = 0, IKE_START_TRAFFIC = 1, IKE_START_ALWAYS = 2 };

#define IKE_MAX_PROPOSAL_CONF 8
#define IKE_MAX_TS_CONF 8

/* One IKE remote. Pointers are read during ike_peer_set only (the engine copies; secrets are wiped on delete). */
struct ike_peer_conf {
	uint32_t id;                        /* non-zero, the caller's key (bitwd: the peer's database id) */
	char name[64];
	struct ike_addr local;              /* bitw's black address; port 500 (the engine floats to 4500) */
	struct ike_addr remote;             /* port 500, or 4500 with force_encap; family 0 = any (respond only) */
	char local_id[256], remote_id[256]; /* "198.51.100.1", "2001:db8::1", "gw.example.org", "a@b", "CN=x,O=y",
	                                       remote "%any"; empty = our/their address */
	uint8_t auth;                       /* enum ike_auth_kind, both directions */
	const uint8_t *psk;
	size_t psk_len;
	const char *cert_pem, *key_pem, *ca_pem, *crl_pem; /* PUBKEY: ours (+ chain), our key, trusted CAs, CRLs */
	struct ike_proposal_conf ike[IKE_MAX_PROPOSAL_CONF]; /* n_ike = 0: the engine's defaults */
	size_t n_ike;
	uint32_t ike_lifetime_s;            /* hard; 0 = 86400 */
	uint32_t ike_rekey_margin_s;        /* rekey this long before (minus up to 10% jitter); 0 = lifetime/10 */
	uint32_t dpd_interval_s;            /* 0: no liveness checks */
	uint8_t dpd_action;                 /* enum ike_dpd_action */
	uint32_t dpd_timeout_s;             /* a liveness check unanswered this long means dead; 0 = the engine's
	                                       ike_engine_conf.dpd_timeout_ms */
	bool force_encap;                   /* UDP 4500 and ESP-in-UDP even without NAT */
	bool no_nat_t;                      /* no NAT traversal: no NAT_DETECTION notifies sent or heeded, so no
	                                       move to 4500 (unless force_encap) */
	uint16_t nat_keepalive_s;           /* for its UDP-encapsulated child SAs (ike_child_sa); 0 = the caller's */
	bool fragmentation;                 /* RFC 7383: announce and use */
	bool legacy_groups;                 /* accept MODP 768/1024/1536 */
	uint8_t start;                      /* enum ike_start */
};

/* A traffic selector range: family 4|6, proto 0 = any, ports host order (0..65535 = any), addresses network order. */
struct ike_ts_conf {
	uint8_t family, proto;
	uint16_t port_lo, port_hi;
	uint8_t lo[16], hi[16];
};

/* What a policy's child SAs protect with (the seed's SA types): ESP, AH, or an AH+ESP bundle, negotiated as two
 * child SAs over the same selectors (RFC 7296 has no multi-protocol proposal), ESP first, each side's inbound SPI
 * the same for both. */
enum ike_sa_type { IKE_SA_TYPE_ESP = 0, IKE_SA_TYPE_AH = 1, IKE_SA_TYPE_AHESP = 2 };
/* Policy cloning: one child SA pair per host of the local (src, red side) or remote (dst) selector. */
enum ike_clone { IKE_CLONE_NONE = 0, IKE_CLONE_SRC = 1, IKE_CLONE_DST = 2 };

/* One policy keyed by a peer: its child SAs, keyed by (policy, clone host, protocol). */
struct ike_child_conf {
	uint32_t id;                        /* non-zero: the policy's id */
	char name[64];
	uint32_t peer_id;
	struct ike_ts_conf local_ts[IKE_MAX_TS_CONF], remote_ts[IKE_MAX_TS_CONF];
	size_t n_local_ts, n_remote_ts;
	struct ike_proposal_conf esp[IKE_MAX_PROPOSAL_CONF]; /* n_esp = 0: the engine's defaults (no PFS) */
	size_t n_esp;
	struct ike_proposal_conf ah[IKE_MAX_PROPOSAL_CONF];  /* AH (protocol 2) proposals: integrity only,
	                                       ike_ah_proposals_parse; n_ah = 0: HMAC-SHA2-256 */
	size_t n_ah;
	uint8_t sa_type;                    /* enum ike_sa_type */
	uint8_t clone;                      /* enum ike_clone; tunnel mode only */
	bool transport;                     /* USE_TRANSPORT_MODE */
	uint32_t lifetime_s;                /* hard; 0 = 3600 */
	uint32_t rekey_margin_s;            /* 0 = lifetime/10 */
	uint64_t lifetime_bytes, lifetime_packets; /* hard, enforced by the wire (soft = 90%); 0 = none */
	uint32_t replay_window;
};

/* What child_install is asked to install. The responder of a child rekey gets IKE_INSTALL_IN first and the same
 * SA again with IKE_INSTALL_OUT once the initiator surely has the new pair (the old one is being deleted), so it
 * never sends on an SA the initiator cannot read yet (RFC 7296 2.8). */
enum ike_install { IKE_INSTALL_BOTH = 0, IKE_INSTALL_IN = 1, IKE_INSTALL_OUT = 2 };

/* Handed to child_install: both directions of one child SA. */
struct ike_child_sa {
	uint8_t install;                    /* enum ike_install: which directions to install now */
	uint64_t ike_sa_id;
	uint32_t peer_id, child_id;         /* child_id = the policy's id */
	uint32_t spi_in, spi_out;           /* host order */
	uint32_t replaces_spi_in;           /* a rekey: the old pair (spi_in) stays until child_delete; 0 = new */
	uint16_t encr, key_bits, integ;     /* IKE_ENCR_*, IKE_INTEG_* (NONE with AEADs) */
	bool esn, transport, encap;         /* encap: ESP in UDP 4500 (RFC 3948) between local and remote */
	uint16_t nat_keepalive_s;           /* encap: the peer's ike_peer_conf.nat_keepalive_s */
	bool ah;                            /* AH: encr = 0, no encryption key */
	bool bundle;                        /* one of an AH+ESP bundle: the other has the same spi_in */
	uint8_t clone_family;               /* a clone policy's child: the host it serves (4|6; 0 = none) */
	uint8_t clone_host[16];
	struct ike_addr local, remote;      /* outer endpoints; ports meaningful when encap */
	uint8_t key_in[36], key_out[36];    /* encryption key || salt/nonce from KEYMAT (4 bytes GCM, GMAC, ChaCha,
	                                       CTR; 3 bytes CCM), encr_len bytes */
	uint8_t integ_in[64], integ_out[64]; /* integ_len bytes */
	uint8_t encr_len, integ_len;
	struct ike_ts_conf local_ts[IKE_MAX_TS_CONF], remote_ts[IKE_MAX_TS_CONF]; /* as negotiated (narrowed) */
	size_t n_local_ts, n_remote_ts;
	uint32_t lifetime_s;                /* hard; the engine deletes it then (it rekeys before) */
	uint64_t lifetime_bytes, lifetime_packets;
	uint32_t replay_window;
};

enum ike_event_kind {
	IKE_EV_SA_UP = 1,                   /* IKE SA established */
	IKE_EV_SA_DOWN,                     /* IKE SA gone (deleted, expired, failed) */
	IKE_EV_CHILD_UP,
	IKE_EV_CHILD_DOWN,
	IKE_EV_REKEYED,                     /* child (spi_* = the new pair) or IKE SA (ike_sa_id = the new one) */
	IKE_EV_DPD_DEAD,
	IKE_EV_AUTH_FAILED,
	IKE_EV_NEGOTIATION_FAILED,          /* text says why: no proposal, TS unacceptable, timeout, ... */
	IKE_EV_STATE,                       /* any other IKE SA state change */
	IKE_EV_KEYS,                        /* only with ike_engine_conf.keyexport: text = a Wireshark key line */
};

/* For SSE and logs; no secrets (except IKE_EV_KEYS, which is off by default). Valid during the callback only. */
struct ike_event {
	uint8_t kind;                       /* enum ike_event_kind */
	uint64_t ike_sa_id;
	uint32_t peer_id, child_id, spi_in, spi_out;
	const char *text;
};

/* Log levels are syslog's (3 error, 4 warning, 6 info, 7 debug: the decoded trace of each message in and out).
 * send: when src or dst port is 4500 the caller adds the non-ESP marker (the wire does, for IKE_SEND). */
struct ike_callbacks {
	void *ctx;
	void (*send)(void *ctx, const struct ike_addr *src, const struct ike_addr *dst, const uint8_t *msg, size_t len);
	int (*spi_alloc)(void *ctx, uint32_t *spi);     /* an unused inbound SPI (CTL_GET_SPI); 0 or negative */
	int (*child_install)(void *ctx, const struct ike_child_sa *sa); /* 0 or negative (the child is then deleted) */
	void (*child_delete)(void *ctx, uint32_t spi_in, uint32_t spi_out, bool ah); /* ah: the AH child of that SPI */
	void (*event)(void *ctx, const struct ike_event *ev);
	void (*random)(void *ctx, uint8_t *buf, size_t len); /* NULL = RAND_bytes; tests make it deterministic */
	void (*log)(void *ctx, int level, const char *text);  /* NULL = silent */
	int64_t (*wall_clock)(void *ctx);   /* seconds since 1970 for certificate dates; NULL = time(NULL) */
};

struct ike_engine_conf {
	uint32_t half_open_cookie_threshold; /* demand cookies above this many half-open SAs; 0 = 64 */
	uint32_t max_half_open;              /* refuse new IKE_SA_INITs above this; 0 = 4096 */
	uint32_t max_sas;                    /* all IKE SAs; 0 = 65536 */
	uint32_t retransmit_base_ms;         /* first retransmission; doubles each time; 0 = 1000 */
	uint32_t retransmit_tries;           /* give up after this many retransmissions; 0 = 5 */
	uint32_t dpd_timeout_ms;             /* a liveness check unanswered this long means dead (sent 4 times
	                                      * evenly over it, not on the back-off above); 0 = 10000 */
	bool keyexport;                      /* Wireshark key lines as IKE_EV_KEYS; admin-only, off by default */
	uint8_t log_level;                   /* log callbacks up to this syslog level only (6: no debug trace,
	                                      * which is not even formatted then); 0 = all */
};

int ike_engine_new(const struct ike_engine_conf *conf, const struct ike_callbacks *cb, struct ike_engine **out);
void ike_engine_free(struct ike_engine *e);  /* wipes everything; sends nothing, deletes no child (the caller does) */

int ike_peer_set(struct ike_engine *e, uint64_t now_ms, const struct ike_peer_conf *p); /* add or replace; live
                                                SAs stay; start = ALWAYS initiates now */
int ike_peer_del(struct ike_engine *e, uint64_t now_ms, uint32_t peer_id); /* deletes its SAs (sends DELETE) */
int ike_child_set(struct ike_engine *e, uint64_t now_ms, const struct ike_child_conf *c); /* add or replace */
int ike_child_del(struct ike_engine *e, uint64_t now_ms, uint32_t child_id); /* deletes its child SAs */

/* A datagram for us. Datagrams on 4500 arrive with the non-ESP marker already stripped; ports say which. */
void ike_input(struct ike_engine *e, uint64_t now_ms, const struct ike_addr *src, const struct ike_addr *dst,
	const uint8_t *msg, size_t len);
/* Traffic for policy child_id without an SA: negotiate it (IKE SA first if needed). src/dst: the packet's
 * addresses (family 4|6, network order), sent as the first traffic selectors (RFC 7296 §2.9). clone_host (same
 * family; NULL for a policy without cloning): the host of a clone policy the SA is for; the child's selectors are
 * narrowed to it (-IKE_E_TS_UNACCEPTABLE when it lies outside the policy). An AH+ESP policy brings up both. */
int ike_acquire(struct ike_engine *e, uint64_t now_ms, uint32_t child_id, const uint8_t *src, const uint8_t *dst,
	uint8_t family, const uint8_t *clone_host);
/* The wire's byte/packet lifetime for the child with inbound SPI spi_in: soft = rekey, hard = delete. */
int ike_sa_expire(struct ike_engine *e, uint64_t now_ms, uint32_t spi_in, bool hard);
/* Operator commands. ike_initiate brings up the peer's IKE SA and the child SAs of its policies. */
int ike_initiate(struct ike_engine *e, uint64_t now_ms, uint32_t peer_id);
int ike_rekey(struct ike_engine *e, uint64_t now_ms, uint64_t ike_sa_id, uint32_t spi_in /* 0 = the IKE SA */);
int ike_terminate(struct ike_engine *e, uint64_t now_ms, uint64_t ike_sa_id);
/* Timers: retransmissions, rekeying, DPD, expiry, half-open reaping. Call at ike_next_deadline (early is fine). */
void ike_tick(struct ike_engine *e, uint64_t now_ms);
uint64_t ike_next_deadline(struct ike_engine *e); /* absolute ms; UINT64_MAX when idle; cached until the next
                                                    * call of the functions above */

/* Introspection for REST. */
enum ike_sa_state {
	IKE_SA_CONNECTING = 1,              /* IKE_SA_INIT outstanding */
	IKE_SA_AUTHENTICATING,              /* IKE_AUTH outstanding */
	IKE_SA_ESTABLISHED,
	IKE_SA_REKEYING,                    /* established, an IKE SA rekey outstanding */
	IKE_SA_DELETING,                    /* our DELETE outstanding */
};
#define IKE_INFO_MAX_CHILDREN 16
struct ike_child_info {
	uint32_t child_id, spi_in, spi_out;
	bool encap, transport, ah;
	uint8_t clone_family, clone_host[16]; /* a clone policy's child: its host */
	char algs[64];                      /* "aes256gcm16-curve25519" */
	uint64_t established_ms, rekey_at_ms, expire_at_ms;
};
struct ike_sa_info {
	uint64_t id;
	uint32_t peer_id;
	uint8_t state;                      /* enum ike_sa_state */
	const char *state_name;             /* "ESTABLISHED" */
	bool initiator, nat_local, nat_remote;
	struct ike_addr local, remote;
	uint8_t spi_i[8], spi_r[8];
	char algs[96];                      /* "aes256gcm16-prfsha384-curve25519" */
	char local_id[256], remote_id[256]; /* the identities IKE_AUTH authenticated (ike_id_format); "" before */
	uint64_t established_ms, rekey_at_ms, expire_at_ms;
	size_t n_children;                  /* all of them; the first IKE_INFO_MAX_CHILDREN are in children[] */
	struct ike_child_info children[IKE_INFO_MAX_CHILDREN];
};
/* Fills up to max entries; returns how many IKE SAs there are. */
size_t ike_sa_list(const struct ike_engine *e, struct ike_sa_info *out, size_t max);
const char *ike_sa_state_name(uint8_t state);

/* ---- end ikeeng ---- */

#endif
