/* ike/crypto.h: IKEv2 key exchange, PRFs, key derivation, PSK AUTH and SK payload protection (OpenSSL EVP). */
#ifndef BITW_IKE_CRYPTO_H
#define BITW_IKE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ike.h"

/* Largest values the derivations below produce, for callers' fixed buffers. */
#define IKE_PRF_MAX       64   /* HMAC-SHA2-512 output */
#define IKE_INTEG_KEY_MAX 64
#define IKE_ENCR_KEY_MAX  36   /* 32-byte key + 4-byte AEAD salt / CTR nonce */
#define IKE_DH_PUB_MAX    1024 /* MODP 8192 */

/* A byte range, so a PRF input can be the concatenation of several without copying. */
struct ike_bytes {
	const uint8_t *p;
	size_t len;
};

/* ---- Diffie-Hellman / ECDH (RFC 7296 3.4, RFC 3526, RFC 5903, RFC 8031) ---- */

struct ike_dh;

/* Fixed KE payload data length / shared secret length for a group; 0 if the group is unknown. */
size_t ike_dh_public_len(uint16_t group);
size_t ike_dh_shared_len(uint16_t group);
/* The group is supported (legacy MODP 768/1024/1536 only when legacy is set). */
bool ike_dh_supported(uint16_t group, bool legacy);

/* A fresh ephemeral key. -XE_NOT_SUPPORTED for unknown or (without legacy) legacy groups. */
int ike_dh_new(uint16_t group, bool legacy, struct ike_dh **out);
/* Test hook: a key from a fixed private value (big-endian for MODP/ECP, raw for X25519/X448). */
int ike_dh_new_fixed(uint16_t group, const uint8_t *priv, size_t priv_len, struct ike_dh **out);
uint16_t ike_dh_group(const struct ike_dh *dh);
/* Our KE data (MODP zero-padded to the modulus, ECP x||y): its length, or -XE_BAD_PARAM if cap is short. */
int ike_dh_public(const struct ike_dh *dh, uint8_t *out, size_t cap);
/* g^ir from the peer's KE data, after validating it (length; MODP 1 < y < p-1; ECP point on the curve).
 * MODP: padded to the modulus length; ECP: x only. Returns its length or -XE_*. */
int ike_dh_shared(const struct ike_dh *dh, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t cap);
/* Frees and wipes; NULL is fine. */
void ike_dh_free(struct ike_dh *dh);

/* ---- PRF and prf+ (RFC 7296 2.13) ---- */

/* Output length of a PRF transform, 0 if unknown. Its preferred key length is the same. */
size_t ike_prf_len(uint16_t prf);
/* out = prf(key, data[0] | data[1] | ...); returns the output length or -XE_*. */
int ike_prf(uint16_t prf, const uint8_t *key, size_t key_len,
	const struct ike_bytes *data, size_t n_data, uint8_t *out);
/* out[0..out_len) = prf+(key, seed[0] | ...); at most 255 PRF blocks. 0 or -XE_*. */
int ike_prf_plus(uint16_t prf, const uint8_t *key, size_t key_len,
	const struct ike_bytes *seed, size_t n_seed, uint8_t *out, size_t out_len);

/* ---- Transform key lengths ---- */

/* Keying material an encryption transform takes from prf+: key plus AEAD salt. 0 if unknown. */
size_t ike_encr_keymat_len(uint16_t encr, uint16_t key_bits);
/* AEADs and integrity-only GMAC take no integrity transform; CCM is one of them. */
bool ike_encr_is_aead(uint16_t encr);
bool ike_encr_is_ccm(uint16_t encr);
size_t ike_integ_key_len(uint16_t integ);
size_t ike_integ_icv_len(uint16_t integ);

/* ---- IKE SA keys (RFC 7296 2.14, 2.18) ---- */

struct ike_suite {
	uint16_t encr;     /* IKE_ENCR_* */
	uint16_t key_bits; /* 128/256 for AES; 256 for ChaCha20-Poly1305 (0 means the default) */
	uint16_t integ;    /* IKE_INTEG_*; IKE_INTEG_NONE with an AEAD */
	uint16_t prf;      /* IKE_PRF_* (unused for child SAs) */
};

struct ike_sa_keys {
	uint8_t sk_d[IKE_PRF_MAX], sk_ai[IKE_INTEG_KEY_MAX], sk_ar[IKE_INTEG_KEY_MAX];
	uint8_t sk_ei[IKE_ENCR_KEY_MAX], sk_er[IKE_ENCR_KEY_MAX];
	uint8_t sk_pi[IKE_PRF_MAX], sk_pr[IKE_PRF_MAX];
	uint8_t prf_len, integ_len, encr_len; /* lengths of sk_d/sk_p*, sk_a*, sk_e* (with salt) */
};

/* SKEYSEED = prf(Ni | Nr, g^ir); returns its length or -XE_*. */
int ike_skeyseed(uint16_t prf, const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
	const uint8_t *gir, size_t gir_len, uint8_t *skeyseed);
/* Rekeyed IKE SA: SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr), prf being the OLD IKE SA's PRF. */
int ike_skeyseed_rekey(uint16_t old_prf, const uint8_t *old_sk_d, size_t old_sk_d_len,
	const uint8_t *gir, size_t gir_len, const uint8_t *ni, size_t ni_len,
	const uint8_t *nr, size_t nr_len, uint8_t *skeyseed);
/* {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr). 0 or -XE_*. */
int ike_sa_keys_derive(const struct ike_suite *suite, const uint8_t *skeyseed, size_t skeyseed_len,
	const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
	const uint8_t spi_i[8], const uint8_t spi_r[8], struct ike_sa_keys *keys);
void ike_sa_keys_wipe(struct ike_sa_keys *keys);

/* ---- Child SA keys (RFC 7296 2.17) ---- */

struct ike_child_keys {
	uint8_t encr_i[IKE_ENCR_KEY_MAX], integ_i[IKE_INTEG_KEY_MAX]; /* initiator -> responder */
	uint8_t encr_r[IKE_ENCR_KEY_MAX], integ_r[IKE_INTEG_KEY_MAX]; /* responder -> initiator */
	uint8_t encr_len, integ_len;
};

/* KEYMAT = prf+(SK_d, [g^ir(new) |] Ni | Nr); gir may be NULL (no PFS). 0 or -XE_*. */
int ike_child_keys_derive(uint16_t prf, const uint8_t *sk_d, size_t sk_d_len, const struct ike_suite *esp,
	const uint8_t *gir, size_t gir_len, const uint8_t *ni, size_t ni_len,
	const uint8_t *nr, size_t nr_len, struct ike_child_keys *keys);
void ike_child_keys_wipe(struct ike_child_keys *keys);

/* ---- AUTH (RFC 7296 2.15) ---- */

/* Signed octets: message | peer's nonce | prf(SK_p, ID payload body). Length or -XE_BAD_PARAM if cap is short. */
int ike_signed_octets(uint16_t prf, const uint8_t *msg, size_t msg_len, const uint8_t *nonce, size_t nonce_len,
	const uint8_t *sk_p, size_t sk_p_len, const uint8_t *id_body, size_t id_len, uint8_t *out, size_t cap);
/* AUTH = prf(prf(PSK, "Key Pad for IKEv2"), signed octets); returns its length or -XE_*. */
int ike_auth_psk(uint16_t prf, const uint8_t *psk, size_t psk_len,
	const uint8_t *octets, size_t octets_len, uint8_t *auth);
/* Constant-time check of a received AUTH value: 0 or -XE_ESP_DIGEST_MISMATCH. */
int ike_auth_psk_verify(uint16_t prf, const uint8_t *psk, size_t psk_len,
	const uint8_t *octets, size_t octets_len, const uint8_t *auth, size_t auth_len);

/* ---- SK payload (RFC 7296 3.14, RFC 5282, RFC 7634) ---- */

/* One direction of an IKE SA: the cipher and integrity contexts are set up once, here. */
struct ike_sk;

/* encr_key holds key||salt for AEADs (ike_encr_keymat_len bytes); integ_key is ignored for AEADs. */
int ike_sk_new(const struct ike_suite *suite, const uint8_t *encr_key, size_t encr_len,
	const uint8_t *integ_key, size_t integ_len, struct ike_sk **out);
void ike_sk_free(struct ike_sk *sk);
/* Both directions of an IKE SA from its keys: we send with SK_ei/SK_ai as initiator, SK_er/SK_ar as responder. */
int ike_sk_pair_new(const struct ike_suite *suite, const struct ike_sa_keys *keys, bool initiator,
	struct ike_sk **out, struct ike_sk **in);
/* Bytes the SK payload adds after its generic header for plain_len bytes of inner payloads (IV, padding, ICV). */
size_t ike_sk_overhead(const struct ike_sk *sk, size_t plain_len);
/* msg[0..sk_off) is the IKE header and any cleartext payloads, msg[sk_off..+4) the SK payload header with its
 * next-payload set. Appends IV, ciphertext, padding and ICV, sets the SK payload and IKE header lengths.
 * Returns the message length or -XE_*. */
int ike_sk_encrypt(struct ike_sk *sk, uint8_t *msg, size_t cap, size_t sk_off, const uint8_t *plain, size_t plain_len);
/* Checks the ICV of msg[0..len) (SK payload at sk_off, last in the message) and decrypts the inner payloads
 * into plain. Returns their length or -XE_MALFORMED_PACKET / -XE_ESP_DIGEST_MISMATCH / -XE_ESP_BAD_PADDING. */
int ike_sk_decrypt(struct ike_sk *sk, const uint8_t *msg, size_t len, size_t sk_off, uint8_t *plain, size_t cap);
/* The same for an Encrypted Fragment (SKF, RFC 7383): its 8-byte header (generic header, Fragment Number, Total
 * Fragments; set by the caller) is at skf_off and, like the SK header, covered by the ICV/AAD. */
int ike_skf_encrypt(struct ike_sk *sk, uint8_t *msg, size_t cap, size_t skf_off, const uint8_t *plain,
	size_t plain_len);
int ike_skf_decrypt(struct ike_sk *sk, const uint8_t *msg, size_t len, size_t skf_off, uint8_t *plain, size_t cap);
/* Test hook: the next AEAD IV is this counter value (AEAD IVs count up from a random start, never reused). */
void ike_sk_set_iv_counter(struct ike_sk *sk, uint64_t next);

#endif
