/* ike/crypto.c: IKEv2 DH/ECDH, PRF/prf+, SKEYSEED, SK_x keys, KEYMAT, PSK AUTH and SK payloads, over OpenSSL EVP. */
#include "crypto.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/ec.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "wire/wire.h"

/* ---------------------------------------------------------------- Diffie-Hellman */

enum dh_kind { DH_MODP, DH_ECP, DH_RAW };

struct dh_group {
	uint16_t id;
	enum dh_kind kind;
	bool legacy;
	uint16_t pub_len;   /* KE payload data */
	const char *name;   /* OpenSSL group name (MODP/ECP), NULL for RFC 2409 MODP OpenSSL does not name */
	BIGNUM *(*prime)(BIGNUM *);
	int raw_type;       /* EVP_PKEY_X25519/X448 */
};

static const struct dh_group dh_groups[] = {
	{ IKE_DH_MODP768, DH_MODP, true, 96, NULL, BN_get_rfc2409_prime_768, 0 },
	{ IKE_DH_MODP1024, DH_MODP, true, 128, NULL, BN_get_rfc2409_prime_1024, 0 },
	{ IKE_DH_MODP1536, DH_MODP, true, 192, "modp_1536", BN_get_rfc3526_prime_1536, 0 },
	{ IKE_DH_MODP2048, DH_MODP, false, 256, "modp_2048", BN_get_rfc3526_prime_2048, 0 },
	{ IKE_DH_MODP3072, DH_MODP, false, 384, "modp_3072", BN_get_rfc3526_prime_3072, 0 },
	{ IKE_DH_MODP4096, DH_MODP, false, 512, "modp_4096", BN_get_rfc3526_prime_4096, 0 },
	{ IKE_DH_MODP6144, DH_MODP, false, 768, "modp_6144", BN_get_rfc3526_prime_6144, 0 },
	{ IKE_DH_MODP8192, DH_MODP, false, 1024, "modp_8192", BN_get_rfc3526_prime_8192, 0 },
	{ IKE_DH_ECP256, DH_ECP, false, 64, "prime256v1", NULL, 0 },
	{ IKE_DH_ECP384, DH_ECP, false, 96, "secp384r1", NULL, 0 },
	{ IKE_DH_ECP521, DH_ECP, false, 132, "secp521r1", NULL, 0 },
	{ IKE_DH_CURVE25519, DH_RAW, false, 32, NULL, NULL, EVP_PKEY_X25519 },
	{ IKE_DH_CURVE448, DH_RAW, false, 56, NULL, NULL, EVP_PKEY_X448 },
};

struct ike_dh {
	const struct dh_group *g;
	EVP_PKEY *key;
	BIGNUM *p; /* MODP modulus, for the 1 < y < p-1 check */
};

static const struct dh_group *dh_group_find(uint16_t id)
{
	for (size_t i = 0; i < sizeof dh_groups / sizeof dh_groups[0]; i++)
		if (dh_groups[i].id == id)
			return &dh_groups[i];
	return NULL;
}

size_t ike_dh_public_len(uint16_t group)
{
	const struct dh_group *g = dh_group_find(group);
	return g ? g->pub_len : 0;
}

size_t ike_dh_shared_len(uint16_t group)
{
	const struct dh_group *g = dh_group_find(group);
	if (!g)
		return 0;
	return g->kind == DH_ECP ? g->pub_len / 2u : g->pub_len;
}

bool ike_dh_supported(uint16_t group, bool legacy)
{
	const struct dh_group *g = dh_group_find(group);
	return g && (legacy || !g->legacy);
}

/* OSSL_PARAM_free, wiping a private key first (OSSL_PARAM_clear_free is OpenSSL 3.2). */
static void params_free(OSSL_PARAM *params)
{
	OSSL_PARAM *priv = params ? OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PRIV_KEY) : NULL;
	if (priv && priv->data)
		OPENSSL_cleanse(priv->data, priv->data_size);
	OSSL_PARAM_free(params);
}

/* Domain parameters of a MODP/ECP group as an OSSL_PARAM list, with the key values given (priv; the public value
 * as a number for MODP, as an encoded point for ECP). Free with params_free: it may hold priv. */
static OSSL_PARAM *group_params(const struct ike_dh *dh, const BIGNUM *priv, const BIGNUM *modp_pub,
	const uint8_t *ec_pub, size_t ec_pub_len)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	BIGNUM *two = BN_new();
	int ok = b && two && BN_set_word(two, 2);

	/* OpenSSL names the RFC 3526 groups; the RFC 2409 ones (legacy 768/1024) go in as p and g. */
	if (ok && dh->g->name)
		ok = OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, dh->g->name, 0);
	else if (ok)
		ok = OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_FFC_P, dh->p) &&
			OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_FFC_G, two);
	if (ok && priv)
		ok = OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, priv);
	if (ok && modp_pub)
		ok = OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PUB_KEY, modp_pub);
	if (ok && ec_pub)
		ok = OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, ec_pub, ec_pub_len);
	if (ok)
		params = OSSL_PARAM_BLD_to_param(b);
	OSSL_PARAM_BLD_free(b);
	BN_free(two);
	return params;
}

/* An EVP_PKEY of the group built from params (selection: what they carry). */
static EVP_PKEY *pkey_fromdata(const struct ike_dh *dh, OSSL_PARAM *params, int selection)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, dh->g->kind == DH_MODP ? "DH" : "EC", NULL);
	EVP_PKEY *key = NULL;

	if (ctx && params && EVP_PKEY_fromdata_init(ctx) > 0)
		if (EVP_PKEY_fromdata(ctx, &key, selection, params) <= 0)
			key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

static int dh_alloc(uint16_t group, bool legacy, struct ike_dh **out)
{
	const struct dh_group *g = dh_group_find(group);
	struct ike_dh *dh;

	*out = NULL;
	if (!g || (g->legacy && !legacy))
		return -XE_NOT_SUPPORTED;
	dh = OPENSSL_zalloc(sizeof *dh);
	if (!dh)
		return -XE_NOMEM;
	dh->g = g;
	if (g->kind == DH_MODP && !(dh->p = g->prime(NULL))) {
		OPENSSL_free(dh);
		return -XE_NOMEM;
	}
	*out = dh;
	return 0;
}

static EVP_PKEY *dh_keygen(const struct ike_dh *dh)
{
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *ctx;

	if (dh->g->kind == DH_RAW) {
		ctx = EVP_PKEY_CTX_new_id(dh->g->raw_type, NULL);
		if (ctx && EVP_PKEY_keygen_init(ctx) > 0 && EVP_PKEY_keygen(ctx, &key) <= 0)
			key = NULL;
		EVP_PKEY_CTX_free(ctx);
		return key;
	}
	/* Generate from the group's domain parameters. */
	OSSL_PARAM *params = group_params(dh, NULL, NULL, NULL, 0);
	EVP_PKEY *domain = pkey_fromdata(dh, params, EVP_PKEY_KEY_PARAMETERS);
	params_free(params);
	if (!domain)
		return NULL;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, domain, NULL);
	if (ctx && EVP_PKEY_keygen_init(ctx) > 0 && EVP_PKEY_keygen(ctx, &key) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(domain);
	return key;
}

int ike_dh_new(uint16_t group, bool legacy, struct ike_dh **out)
{
	int rc = dh_alloc(group, legacy, out);
	if (rc < 0)
		return rc;
	(*out)->key = dh_keygen(*out);
	if (!(*out)->key) {
		ike_dh_free(*out);
		*out = NULL;
		return -XE_NOMEM;
	}
	return 0;
}

/* x*G as an uncompressed point (0x04||x||y); OpenSSL 3.0 does not derive it when importing a bare scalar. */
static size_t ec_public_point(const struct ike_dh *dh, const BIGNUM *priv, uint8_t *out, size_t cap, BN_CTX *bnctx)
{
	EC_GROUP *group = EC_GROUP_new_by_curve_name(OBJ_txt2nid(dh->g->name));
	EC_POINT *pt = group ? EC_POINT_new(group) : NULL;
	size_t n = 0;

	if (pt && EC_POINT_mul(group, pt, priv, NULL, NULL, bnctx))
		n = EC_POINT_point2oct(group, pt, POINT_CONVERSION_UNCOMPRESSED, out, cap, bnctx);
	EC_POINT_free(pt);
	EC_GROUP_free(group);
	return n;
}

/* A key pair from a fixed private value: MODP y = g^x mod p, ECP x*G. */
static EVP_PKEY *fixed_modp_or_ecp(const struct ike_dh *dh, BIGNUM *priv)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY *key = NULL;
	BN_CTX *bnctx = BN_CTX_new();

	if (!bnctx)
		return NULL;
	if (dh->g->kind == DH_MODP) {
		BIGNUM *pub = BN_new(), *two = BN_new();
		if (pub && two && BN_set_word(two, 2) && BN_mod_exp(pub, two, priv, dh->p, bnctx))
			params = group_params(dh, priv, pub, NULL, 0);
		BN_free(pub);
		BN_free(two);
	} else {
		uint8_t point[1 + 132];
		size_t n = ec_public_point(dh, priv, point, sizeof point, bnctx);
		if (n)
			params = group_params(dh, priv, NULL, point, n);
	}
	if (params)
		key = pkey_fromdata(dh, params, EVP_PKEY_KEYPAIR);
	params_free(params);
	BN_CTX_free(bnctx);
	return key;
}

int ike_dh_new_fixed(uint16_t group, const uint8_t *priv, size_t priv_len, struct ike_dh **out)
{
	int rc = dh_alloc(group, true, out);
	struct ike_dh *dh = *out;

	if (rc < 0)
		return rc;
	if (dh->g->kind == DH_RAW) {
		dh->key = EVP_PKEY_new_raw_private_key(dh->g->raw_type, NULL, priv, priv_len);
	} else {
		BIGNUM *x = BN_secure_new();
		if (x && BN_bin2bn(priv, (int)priv_len, x))
			dh->key = fixed_modp_or_ecp(dh, x);
		BN_clear_free(x);
	}
	if (!dh->key) {
		ike_dh_free(dh);
		*out = NULL;
		return -XE_BAD_PARAM;
	}
	return 0;
}

uint16_t ike_dh_group(const struct ike_dh *dh)
{
	return dh->g->id;
}

int ike_dh_public(const struct ike_dh *dh, uint8_t *out, size_t cap)
{
	size_t len = dh->g->pub_len;

	if (cap < len)
		return -XE_BAD_PARAM;
	if (dh->g->kind == DH_RAW) {
		size_t n = len;
		if (EVP_PKEY_get_raw_public_key(dh->key, out, &n) <= 0 || n != len)
			return -XE_NOMEM;
	} else if (dh->g->kind == DH_MODP) {
		BIGNUM *y = NULL;
		int ok = EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY, &y) > 0 &&
			BN_bn2binpad(y, out, (int)len) == (int)len;
		BN_free(y);
		if (!ok)
			return -XE_NOMEM;
	} else {
		/* RFC 5903: x || y, i.e. the uncompressed point without its 0x04. */
		uint8_t point[1 + 132];
		size_t n = 0;
		if (EVP_PKEY_get_octet_string_param(dh->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
				sizeof point, &n) <= 0 || n != len + 1 || point[0] != 0x04)
			return -XE_NOMEM;
		memcpy(out, point + 1, len);
	}
	return (int)len;
}

/* The peer's public value as a key of our group, or NULL if it is not a valid one. */
static EVP_PKEY *peer_key(const struct ike_dh *dh, const uint8_t *peer, size_t len)
{
	EVP_PKEY *key = NULL;

	if (len != dh->g->pub_len)
		return NULL;
	if (dh->g->kind == DH_RAW)
		return EVP_PKEY_new_raw_public_key(dh->g->raw_type, NULL, peer, len);
	if (dh->g->kind == DH_MODP) {
		/* RFC 7296 / SP 800-56A: 1 < y < p-1 (rejects 0, 1, p-1 and anything >= p). */
		BIGNUM *y = BN_bin2bn(peer, (int)len, NULL), *pm1 = BN_dup(dh->p);
		if (y && pm1 && BN_sub_word(pm1, 1) && BN_cmp(y, BN_value_one()) > 0 && BN_cmp(y, pm1) < 0) {
			OSSL_PARAM *params = group_params(dh, NULL, y, NULL, 0);
			key = pkey_fromdata(dh, params, EVP_PKEY_PUBLIC_KEY);
			params_free(params);
		}
		BN_free(y);
		BN_free(pm1);
		return key;
	}
	uint8_t point[1 + 132];
	point[0] = 0x04;
	memcpy(point + 1, peer, len);
	OSSL_PARAM *params = group_params(dh, NULL, NULL, point, len + 1);
	key = pkey_fromdata(dh, params, EVP_PKEY_PUBLIC_KEY);
	params_free(params);
	return key;
}

int ike_dh_shared(const struct ike_dh *dh, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t cap)
{
	size_t want = ike_dh_shared_len(dh->g->id), n = want;
	EVP_PKEY *pk = peer_key(dh, peer, peer_len);
	EVP_PKEY_CTX *ctx = NULL;
	int rc = -XE_BAD_PARAM;

	if (!pk) {
		ERR_clear_error();
		return -XE_BAD_PARAM;
	}
	if (cap < want)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, dh->key, NULL);
	/* validate = 1: OpenSSL's own public-key check (point on the curve, y^q = 1 for named MODP groups). */
	if (!ctx || EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer_ex(ctx, pk, 1) <= 0)
		goto out;
	if (dh->g->kind == DH_MODP && EVP_PKEY_CTX_set_dh_pad(ctx, 1) <= 0)
		goto out;
	/* X25519/X448: OpenSSL refuses an all-zero result (a small-order peer point), as RFC 8031 asks. */
	if (EVP_PKEY_derive(ctx, out, &n) <= 0 || n != want) {
		OPENSSL_cleanse(out, want);
		goto out;
	}
	rc = (int)n;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	/* A peer's bad value leaves OpenSSL errors queued; they are no concern of the next caller. */
	if (rc < 0)
		ERR_clear_error();
	return rc;
}

void ike_dh_free(struct ike_dh *dh)
{
	if (!dh)
		return;
	EVP_PKEY_free(dh->key);  /* OpenSSL clears private key material on free */
	BN_free(dh->p);
	OPENSSL_free(dh);
}

/* ---------------------------------------------------------------- PRF */

static const char *prf_digest(uint16_t prf)
{
	switch (prf) {
	case IKE_PRF_HMAC_SHA1: return "SHA1";
	case IKE_PRF_HMAC_SHA2_256: return "SHA256";
	case IKE_PRF_HMAC_SHA2_384: return "SHA384";
	case IKE_PRF_HMAC_SHA2_512: return "SHA512";
	default: return NULL;
	}
}

size_t ike_prf_len(uint16_t prf)
{
	switch (prf) {
	case IKE_PRF_HMAC_SHA1: return 20;
	case IKE_PRF_HMAC_SHA2_256: return 32;
	case IKE_PRF_HMAC_SHA2_384: return 48;
	case IKE_PRF_HMAC_SHA2_512: return 64;
	default: return 0;
	}
}

/* An HMAC context keyed with key, for digest; NULL on failure. */
static EVP_MAC_CTX *hmac_new(const char *digest, const uint8_t *key, size_t key_len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
		OSSL_PARAM_construct_end(),
	};
	static const uint8_t empty[1];

	EVP_MAC_free(mac);
	/* HMAC with an empty key is legal; OpenSSL wants a non-NULL pointer for it. */
	if (ctx && EVP_MAC_init(ctx, key_len ? key : empty, key_len, params) <= 0) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static int hmac_parts(EVP_MAC_CTX *ctx, const struct ike_bytes *data, size_t n, uint8_t *out, size_t out_cap)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		if (data[i].len && EVP_MAC_update(ctx, data[i].p, data[i].len) <= 0)
			return -XE_NOMEM;
	if (EVP_MAC_final(ctx, out, &len, out_cap) <= 0)
		return -XE_NOMEM;
	return (int)len;
}

int ike_prf(uint16_t prf, const uint8_t *key, size_t key_len,
	const struct ike_bytes *data, size_t n_data, uint8_t *out)
{
	const char *md = prf_digest(prf);
	if (!md)
		return -XE_NOT_SUPPORTED;
	EVP_MAC_CTX *ctx = hmac_new(md, key, key_len);
	if (!ctx)
		return -XE_NOMEM;
	int rc = hmac_parts(ctx, data, n_data, out, IKE_PRF_MAX);
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n); the output is T1 | T2 | ... truncated. */
int ike_prf_plus(uint16_t prf, const uint8_t *key, size_t key_len,
	const struct ike_bytes *seed, size_t n_seed, uint8_t *out, size_t out_len)
{
	const char *md = prf_digest(prf);
	size_t hlen = ike_prf_len(prf);
	uint8_t t[IKE_PRF_MAX], counter = 0;
	int rc = 0;

	if (!md)
		return -XE_NOT_SUPPORTED;
	if (out_len > 255 * hlen)
		return -XE_BAD_PARAM;
	EVP_MAC_CTX *ctx = hmac_new(md, key, key_len);
	if (!ctx)
		return -XE_NOMEM;
	for (size_t done = 0; done < out_len; done += hlen) {
		struct ike_bytes block[1 + 8 + 1];
		size_t n = 0;

		if (n_seed > 8) {
			rc = -XE_BAD_PARAM;
			break;
		}
		/* Re-initialising with a NULL key restarts the MAC under the same key. */
		if (counter > 0 && EVP_MAC_init(ctx, NULL, 0, NULL) <= 0) {
			rc = -XE_NOMEM;
			break;
		}
		counter++;
		if (counter > 1)
			block[n++] = (struct ike_bytes){ t, hlen };
		for (size_t i = 0; i < n_seed; i++)
			block[n++] = seed[i];
		block[n++] = (struct ike_bytes){ &counter, 1 };
		if ((rc = hmac_parts(ctx, block, n, t, sizeof t)) < 0)
			break;
		rc = 0;
		memcpy(out + done, t, out_len - done < hlen ? out_len - done : hlen);
	}
	if (rc < 0)
		OPENSSL_cleanse(out, out_len);
	OPENSSL_cleanse(t, sizeof t);
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* ---------------------------------------------------------------- transform lengths */

static uint16_t encr_key_bits(uint16_t encr, uint16_t key_bits)
{
	if (encr == IKE_ENCR_CHACHA20_POLY1305)
		return key_bits == 0 || key_bits == 256 ? 256 : 0;
	if (encr == IKE_ENCR_3DES)
		return key_bits == 0 || key_bits == 192 ? 192 : 0;
	if (encr == IKE_ENCR_AES_CBC || encr == IKE_ENCR_AES_GCM_16 || encr == IKE_ENCR_AES_CTR ||
		encr == IKE_ENCR_NULL_AUTH_AES_GMAC || ike_encr_is_ccm(encr))
		return key_bits == 128 || key_bits == 256 ? key_bits : 0;
	return 0;
}

bool ike_encr_is_ccm(uint16_t encr)
{
	return encr == IKE_ENCR_AES_CCM_8 || encr == IKE_ENCR_AES_CCM_12 || encr == IKE_ENCR_AES_CCM_16;
}

bool ike_encr_is_aead(uint16_t encr)
{
	return encr == IKE_ENCR_AES_GCM_16 || encr == IKE_ENCR_CHACHA20_POLY1305 || ike_encr_is_ccm(encr) ||
		encr == IKE_ENCR_NULL_AUTH_AES_GMAC;
}

/* Bytes of KEYMAT after the key: RFC 4106/4543/7634 salt 4, RFC 3686 nonce 4, RFC 4309 salt 3. */
static unsigned encr_salt_len(uint16_t encr)
{
	if (ike_encr_is_ccm(encr))
		return 3;
	return ike_encr_is_aead(encr) || encr == IKE_ENCR_AES_CTR ? 4 : 0;
}

size_t ike_encr_keymat_len(uint16_t encr, uint16_t key_bits)
{
	uint16_t bits = encr_key_bits(encr, key_bits);
	if (!bits)
		return 0;
	return bits / 8u + encr_salt_len(encr);
}

static const char *integ_digest(uint16_t integ)
{
	switch (integ) {
	case IKE_INTEG_HMAC_SHA1_96: return "SHA1";
	case IKE_INTEG_HMAC_SHA2_256_128: return "SHA256";
	case IKE_INTEG_HMAC_SHA2_384_192: return "SHA384";
	case IKE_INTEG_HMAC_SHA2_512_256: return "SHA512";
	default: return NULL;
	}
}

size_t ike_integ_key_len(uint16_t integ)
{
	switch (integ) {
	case IKE_INTEG_HMAC_MD5_96: return 16;
	case IKE_INTEG_HMAC_SHA1_96: return 20;
	case IKE_INTEG_AES_XCBC_96: return 16;
	case IKE_INTEG_AES_128_GMAC: return 20;
	case IKE_INTEG_AES_256_GMAC: return 36;
	case IKE_INTEG_HMAC_SHA2_256_128: return 32;
	case IKE_INTEG_HMAC_SHA2_384_192: return 48;
	case IKE_INTEG_HMAC_SHA2_512_256: return 64;
	default: return 0;
	}
}

size_t ike_integ_icv_len(uint16_t integ)
{
	switch (integ) {
	case IKE_INTEG_HMAC_MD5_96: return 12;
	case IKE_INTEG_HMAC_SHA1_96: return 12;
	case IKE_INTEG_AES_XCBC_96: return 12;
	case IKE_INTEG_AES_128_GMAC: return 16;
	case IKE_INTEG_AES_256_GMAC: return 16;
	case IKE_INTEG_HMAC_SHA2_256_128: return 16;
	case IKE_INTEG_HMAC_SHA2_384_192: return 24;
	case IKE_INTEG_HMAC_SHA2_512_256: return 32;
	default: return 0;
	}
}

/* Key lengths of a suite: AEADs take no integrity transform, other ciphers need one. */
static int suite_lengths(const struct ike_suite *s, size_t *encr_len, size_t *integ_len)
{
	*encr_len = ike_encr_keymat_len(s->encr, s->key_bits);
	*integ_len = ike_encr_is_aead(s->encr) ? 0 : ike_integ_key_len(s->integ);
	if (!s->encr)  /* AH: integrity keys only */
		return *integ_len ? 0 : -XE_NOT_SUPPORTED;
	if (!*encr_len || (ike_encr_is_aead(s->encr) ? s->integ != IKE_INTEG_NONE : !*integ_len))
		return -XE_NOT_SUPPORTED;
	return 0;
}

/* ---------------------------------------------------------------- IKE SA and child SA keys */

int ike_skeyseed(uint16_t prf, const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
	const uint8_t *gir, size_t gir_len, uint8_t *skeyseed)
{
	/* The key is Ni | Nr; concatenated here because HMAC takes its key in one piece. */
	uint8_t key[2 * 256];
	struct ike_bytes data = { gir, gir_len };
	int rc;

	if (ni_len > 256 || nr_len > 256)
		return -XE_BAD_PARAM;
	memcpy(key, ni, ni_len);
	memcpy(key + ni_len, nr, nr_len);
	rc = ike_prf(prf, key, ni_len + nr_len, &data, 1, skeyseed);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

int ike_skeyseed_rekey(uint16_t old_prf, const uint8_t *old_sk_d, size_t old_sk_d_len,
	const uint8_t *gir, size_t gir_len, const uint8_t *ni, size_t ni_len,
	const uint8_t *nr, size_t nr_len, uint8_t *skeyseed)
{
	struct ike_bytes data[] = { { gir, gir_len }, { ni, ni_len }, { nr, nr_len } };
	return ike_prf(old_prf, old_sk_d, old_sk_d_len, data, 3, skeyseed);
}

/* Hands out consecutive pieces of a KEYMAT buffer. */
static const uint8_t *take(const uint8_t **cur, size_t len)
{
	const uint8_t *p = *cur;
	*cur += len;
	return p;
}

int ike_sa_keys_derive(const struct ike_suite *suite, const uint8_t *skeyseed, size_t skeyseed_len,
	const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
	const uint8_t spi_i[8], const uint8_t spi_r[8], struct ike_sa_keys *keys)
{
	size_t prf_len = ike_prf_len(suite->prf), encr_len, integ_len;
	uint8_t keymat[3 * IKE_PRF_MAX + 2 * IKE_INTEG_KEY_MAX + 2 * IKE_ENCR_KEY_MAX];
	struct ike_bytes seed[] = { { ni, ni_len }, { nr, nr_len }, { spi_i, 8 }, { spi_r, 8 } };
	int rc = suite_lengths(suite, &encr_len, &integ_len);

	memset(keys, 0, sizeof *keys);
	if (rc < 0 || !prf_len)
		return -XE_NOT_SUPPORTED;
	size_t total = 3 * prf_len + 2 * integ_len + 2 * encr_len;
	rc = ike_prf_plus(suite->prf, skeyseed, skeyseed_len, seed, 4, keymat, total);
	if (rc == 0) {
		const uint8_t *cur = keymat;
		memcpy(keys->sk_d, take(&cur, prf_len), prf_len);
		memcpy(keys->sk_ai, take(&cur, integ_len), integ_len);
		memcpy(keys->sk_ar, take(&cur, integ_len), integ_len);
		memcpy(keys->sk_ei, take(&cur, encr_len), encr_len);
		memcpy(keys->sk_er, take(&cur, encr_len), encr_len);
		memcpy(keys->sk_pi, take(&cur, prf_len), prf_len);
		memcpy(keys->sk_pr, take(&cur, prf_len), prf_len);
		keys->prf_len = (uint8_t)prf_len;
		keys->integ_len = (uint8_t)integ_len;
		keys->encr_len = (uint8_t)encr_len;
	}
	OPENSSL_cleanse(keymat, sizeof keymat);
	return rc;
}

void ike_sa_keys_wipe(struct ike_sa_keys *keys)
{
	OPENSSL_cleanse(keys, sizeof *keys);
}

int ike_child_keys_derive(uint16_t prf, const uint8_t *sk_d, size_t sk_d_len, const struct ike_suite *esp,
	const uint8_t *gir, size_t gir_len, const uint8_t *ni, size_t ni_len,
	const uint8_t *nr, size_t nr_len, struct ike_child_keys *keys)
{
	size_t encr_len, integ_len;
	uint8_t keymat[2 * IKE_INTEG_KEY_MAX + 2 * IKE_ENCR_KEY_MAX];
	struct ike_bytes seed[] = { { gir, gir ? gir_len : 0 }, { ni, ni_len }, { nr, nr_len } };
	int rc = suite_lengths(esp, &encr_len, &integ_len);

	memset(keys, 0, sizeof *keys);
	if (rc < 0)
		return rc;
	/* RFC 7296 2.17: initiator-to-responder keys first, and within a direction encryption before integrity. */
	rc = ike_prf_plus(prf, sk_d, sk_d_len, seed, 3, keymat, 2 * (encr_len + integ_len));
	if (rc == 0) {
		const uint8_t *cur = keymat;
		memcpy(keys->encr_i, take(&cur, encr_len), encr_len);
		memcpy(keys->integ_i, take(&cur, integ_len), integ_len);
		memcpy(keys->encr_r, take(&cur, encr_len), encr_len);
		memcpy(keys->integ_r, take(&cur, integ_len), integ_len);
		keys->encr_len = (uint8_t)encr_len;
		keys->integ_len = (uint8_t)integ_len;
	}
	OPENSSL_cleanse(keymat, sizeof keymat);
	return rc;
}

void ike_child_keys_wipe(struct ike_child_keys *keys)
{
	OPENSSL_cleanse(keys, sizeof *keys);
}

/* ---------------------------------------------------------------- AUTH */

int ike_signed_octets(uint16_t prf, const uint8_t *msg, size_t msg_len, const uint8_t *nonce, size_t nonce_len,
	const uint8_t *sk_p, size_t sk_p_len, const uint8_t *id_body, size_t id_len, uint8_t *out, size_t cap)
{
	size_t plen = ike_prf_len(prf);
	struct ike_bytes id = { id_body, id_len };

	if (!plen)
		return -XE_NOT_SUPPORTED;
	if (cap < msg_len + nonce_len + plen || msg_len + nonce_len + plen > (size_t)INT32_MAX)
		return -XE_BAD_PARAM;
	memcpy(out, msg, msg_len);
	memcpy(out + msg_len, nonce, nonce_len);
	int rc = ike_prf(prf, sk_p, sk_p_len, &id, 1, out + msg_len + nonce_len);
	return rc < 0 ? rc : (int)(msg_len + nonce_len + plen);
}

int ike_auth_psk(uint16_t prf, const uint8_t *psk, size_t psk_len,
	const uint8_t *octets, size_t octets_len, uint8_t *auth)
{
	static const char pad[] = "Key Pad for IKEv2";  /* 17 octets, no NUL (RFC 7296 2.15) */
	struct ike_bytes pad_data = { (const uint8_t *)pad, sizeof pad - 1 }, data = { octets, octets_len };
	uint8_t inner[IKE_PRF_MAX];
	int rc = ike_prf(prf, psk, psk_len, &pad_data, 1, inner);

	if (rc >= 0)
		rc = ike_prf(prf, inner, (size_t)rc, &data, 1, auth);
	OPENSSL_cleanse(inner, sizeof inner);
	return rc;
}

int ike_auth_psk_verify(uint16_t prf, const uint8_t *psk, size_t psk_len,
	const uint8_t *octets, size_t octets_len, const uint8_t *auth, size_t auth_len)
{
	uint8_t want[IKE_PRF_MAX];
	int rc = ike_auth_psk(prf, psk, psk_len, octets, octets_len, want);

	if (rc >= 0)
		rc = (size_t)rc == auth_len && CRYPTO_memcmp(want, auth, auth_len) == 0 ? 0 : -XE_ESP_DIGEST_MISMATCH;
	OPENSSL_cleanse(want, sizeof want);
	return rc;
}

/* ---------------------------------------------------------------- SK payload */

#define IKE_HDR_LEN 28
#define SK_HDR_LEN 4
#define SKF_HDR_LEN 8   /* RFC 7383: generic header + Fragment Number + Total Fragments */

struct ike_sk {
	bool aead;
	uint8_t iv_len, block, icv_len;
	uint8_t salt[4];         /* AEAD nonce = salt | IV */
	uint64_t next_iv;        /* AEAD IVs count up from a random start below 2^63: unique per context, and two
	                          * contexts a caller mistakenly makes from one key will not start on the same IV */
	EVP_CIPHER_CTX *enc, *dec;
	EVP_MAC_CTX *mac;        /* HMAC keyed with SK_a, CBC only */
};

static const char *cipher_name(uint16_t encr, uint16_t bits)
{
	switch (encr) {
	case IKE_ENCR_AES_CBC: return bits == 128 ? "AES-128-CBC" : "AES-256-CBC";
	case IKE_ENCR_AES_GCM_16: return bits == 128 ? "AES-128-GCM" : "AES-256-GCM";
	case IKE_ENCR_CHACHA20_POLY1305: return "ChaCha20-Poly1305";
	default: return NULL;
	}
}

static EVP_CIPHER_CTX *cipher_ctx(EVP_CIPHER *cipher, const uint8_t *key, bool enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx && EVP_CipherInit_ex2(ctx, cipher, key, NULL, enc ? 1 : 0, NULL) > 0 &&
		EVP_CIPHER_CTX_set_padding(ctx, 0) > 0)
		return ctx;
	EVP_CIPHER_CTX_free(ctx);
	return NULL;
}

int ike_sk_new(const struct ike_suite *suite, const uint8_t *encr_key, size_t encr_len,
	const uint8_t *integ_key, size_t integ_len, struct ike_sk **out)
{
	size_t want_e, want_i;
	int rc = suite_lengths(suite, &want_e, &want_i);
	struct ike_sk *sk;

	*out = NULL;
	if (rc < 0)
		return rc;
	/* The child-only algorithms (CTR, CCM, GMAC, 3DES, MD5, XCBC) never protect IKE messages here. */
	if (!cipher_name(suite->encr, encr_key_bits(suite->encr, suite->key_bits)) ||
		(!ike_encr_is_aead(suite->encr) && !integ_digest(suite->integ)))
		return -XE_NOT_SUPPORTED;
	if (encr_len != want_e || integ_len != want_i)
		return -XE_BAD_PARAM;
	if (!(sk = OPENSSL_zalloc(sizeof *sk)))
		return -XE_NOMEM;
	uint16_t bits = encr_key_bits(suite->encr, suite->key_bits);
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, cipher_name(suite->encr, bits), NULL);
	sk->aead = ike_encr_is_aead(suite->encr);
	sk->iv_len = sk->aead ? 8 : 16;
	sk->block = sk->aead ? 1 : 16;
	sk->icv_len = (uint8_t)(sk->aead ? 16 : ike_integ_icv_len(suite->integ));
	bool iv_ok = !sk->aead || RAND_bytes((uint8_t *)&sk->next_iv, sizeof sk->next_iv) > 0;
	sk->next_iv >>= 1;
	if (sk->aead)
		memcpy(sk->salt, encr_key + bits / 8, 4);
	if (cipher) {
		sk->enc = cipher_ctx(cipher, encr_key, true);
		sk->dec = cipher_ctx(cipher, encr_key, false);
	}
	EVP_CIPHER_free(cipher);
	if (!sk->aead)
		sk->mac = hmac_new(integ_digest(suite->integ), integ_key, integ_len);
	if (!iv_ok || !sk->enc || !sk->dec || (!sk->aead && !sk->mac)) {
		ike_sk_free(sk);
		return -XE_NOMEM;
	}
	*out = sk;
	return 0;
}

void ike_sk_free(struct ike_sk *sk)
{
	if (!sk)
		return;
	/* The contexts wipe their key schedules when freed. */
	EVP_CIPHER_CTX_free(sk->enc);
	EVP_CIPHER_CTX_free(sk->dec);
	EVP_MAC_CTX_free(sk->mac);
	OPENSSL_clear_free(sk, sizeof *sk);
}

void ike_sk_set_iv_counter(struct ike_sk *sk, uint64_t next)
{
	sk->next_iv = next;
}

/* Padding so that inner payloads + padding + the pad-length octet fill whole cipher blocks. */
static size_t sk_pad_len(const struct ike_sk *sk, size_t plain_len)
{
	return (sk->block - (plain_len + 1) % sk->block) % sk->block;
}

size_t ike_sk_overhead(const struct ike_sk *sk, size_t plain_len)
{
	return sk->iv_len + sk_pad_len(sk, plain_len) + 1u + sk->icv_len;
}

static void put_be16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t get_be16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

static size_t get_be32(const uint8_t *p)
{
	return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

/* HMAC over msg[0..len) truncated to the ICV length. */
static int sk_icv(struct ike_sk *sk, const uint8_t *msg, size_t len, uint8_t *icv)
{
	uint8_t full[IKE_PRF_MAX];
	struct ike_bytes data = { msg, len };
	int rc = EVP_MAC_init(sk->mac, NULL, 0, NULL) > 0 ? hmac_parts(sk->mac, &data, 1, full, sizeof full) : -XE_NOMEM;

	if (rc >= 0)
		memcpy(icv, full, sk->icv_len);
	return rc < 0 ? rc : 0;
}

/* AES-GCM / ChaCha20-Poly1305 over buf in place with AAD; on encrypt writes the tag, on decrypt checks it. */
static int sk_aead(struct ike_sk *sk, bool enc, const uint8_t *iv, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, uint8_t *out, size_t len, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = enc ? sk->enc : sk->dec;
	uint8_t nonce[12];
	int n = 0, fin = 0;

	memcpy(nonce, sk->salt, 4);
	memcpy(nonce + 4, iv, 8);
	if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, enc ? 1 : 0, NULL) <= 0 ||
		EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) <= 0 ||
		(len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) <= 0))
		return -XE_NOMEM;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag) <= 0)
		return -XE_NOMEM;
	if (EVP_CipherFinal_ex(ctx, out + n, &fin) <= 0)
		return enc ? -XE_NOMEM : -XE_ESP_DIGEST_MISMATCH;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) <= 0)
		return -XE_NOMEM;
	return 0;
}

static int sk_cbc(struct ike_sk *sk, bool enc, const uint8_t *iv, const uint8_t *in, uint8_t *out, size_t len)
{
	EVP_CIPHER_CTX *ctx = enc ? sk->enc : sk->dec;
	int n = 0, fin = 0;

	if (EVP_CipherInit_ex2(ctx, NULL, NULL, iv, enc ? 1 : 0, NULL) <= 0 ||
		EVP_CipherUpdate(ctx, out, &n, in, (int)len) <= 0 || EVP_CipherFinal_ex(ctx, out + n, &fin) <= 0)
		return -XE_NOMEM;
	return 0;
}

/* Seals plain into the SK or SKF payload whose header (hdr bytes, all in the AAD) starts at sk_off. */
static int sk_seal(struct ike_sk *sk, uint8_t *msg, size_t cap, size_t sk_off, size_t hdr, const uint8_t *plain,
	size_t plain_len)
{
	size_t pad = sk_pad_len(sk, plain_len), enc_len = plain_len + pad + 1;
	size_t total = sk_off + hdr + sk->iv_len + enc_len + sk->icv_len;
	uint8_t *iv = msg + sk_off + hdr, *ct = iv + sk->iv_len, *icv = ct + enc_len;

	if (sk_off < IKE_HDR_LEN || total > cap || total > 0xffff + sk_off)
		return -XE_BAD_PARAM;
	memmove(ct, plain, plain_len);
	memset(ct + plain_len, 0, pad);
	ct[plain_len + pad] = (uint8_t)pad;
	put_be16(msg + sk_off + 2, total - sk_off);
	put_be32(msg + 24, total);
	if (sk->aead) {
		if (sk->next_iv == UINT64_MAX)
			return -XE_SEQUENCE_OVERFLOW;
		put_be32(iv, (size_t)(sk->next_iv >> 32));
		put_be32(iv + 4, (size_t)(sk->next_iv & 0xffffffffu));
		sk->next_iv++;
		return sk_aead(sk, true, iv, msg, sk_off + hdr, ct, ct, enc_len, icv) < 0 ? -XE_NOMEM : (int)total;
	}
	/* CBC needs an unpredictable IV (RFC 7296 3.14). */
	if (RAND_bytes(iv, sk->iv_len) <= 0 || sk_cbc(sk, true, iv, ct, ct, enc_len) < 0)
		return -XE_NOMEM;
	return sk_icv(sk, msg, total - sk->icv_len, icv) < 0 ? -XE_NOMEM : (int)total;
}

static int sk_open(struct ike_sk *sk, const uint8_t *msg, size_t len, size_t sk_off, size_t hdr, uint8_t *plain,
	size_t cap)
{
	size_t min = sk_off + hdr + sk->iv_len + 1 + sk->icv_len;
	int rc;

	if (sk_off < IKE_HDR_LEN || sk_off > len || len < min || get_be32(msg + 24) != len ||
		get_be16(msg + sk_off + 2) != len - sk_off)
		return -XE_MALFORMED_PACKET;
	const uint8_t *iv = msg + sk_off + hdr, *ct = iv + sk->iv_len;
	size_t enc_len = len - sk->icv_len - (size_t)(ct - msg);
	if (enc_len % sk->block || enc_len > cap)
		return -XE_MALFORMED_PACKET;
	if (sk->aead) {
		uint8_t tag[16];
		memcpy(tag, ct + enc_len, 16);
		rc = sk_aead(sk, false, iv, msg, sk_off + hdr, ct, plain, enc_len, tag);
	} else {
		/* Integrity first: nothing unauthenticated reaches the decryption. */
		uint8_t icv[32];
		rc = sk_icv(sk, msg, len - sk->icv_len, icv);
		if (rc == 0 && CRYPTO_memcmp(icv, ct + enc_len, sk->icv_len) != 0)
			rc = -XE_ESP_DIGEST_MISMATCH;
		if (rc == 0)
			rc = sk_cbc(sk, false, iv, ct, plain, enc_len);
	}
	if (rc == 0 && (size_t)plain[enc_len - 1] + 1 > enc_len)
		rc = -XE_ESP_BAD_PADDING;
	if (rc < 0) {
		OPENSSL_cleanse(plain, enc_len);
		ERR_clear_error();
		return rc;
	}
	return (int)(enc_len - plain[enc_len - 1] - 1);
}

int ike_sk_encrypt(struct ike_sk *sk, uint8_t *msg, size_t cap, size_t sk_off, const uint8_t *plain, size_t plain_len)
{
	return sk_seal(sk, msg, cap, sk_off, SK_HDR_LEN, plain, plain_len);
}

int ike_sk_decrypt(struct ike_sk *sk, const uint8_t *msg, size_t len, size_t sk_off, uint8_t *plain, size_t cap)
{
	return sk_open(sk, msg, len, sk_off, SK_HDR_LEN, plain, cap);
}

int ike_skf_encrypt(struct ike_sk *sk, uint8_t *msg, size_t cap, size_t skf_off, const uint8_t *plain, size_t plain_len)
{
	return sk_seal(sk, msg, cap, skf_off, SKF_HDR_LEN, plain, plain_len);
}

int ike_skf_decrypt(struct ike_sk *sk, const uint8_t *msg, size_t len, size_t skf_off, uint8_t *plain, size_t cap)
{
	return sk_open(sk, msg, len, skf_off, SKF_HDR_LEN, plain, cap);
}

int ike_sk_pair_new(const struct ike_suite *suite, const struct ike_sa_keys *keys, bool initiator,
	struct ike_sk **out, struct ike_sk **in)
{
	const uint8_t *e_out = initiator ? keys->sk_ei : keys->sk_er, *a_out = initiator ? keys->sk_ai : keys->sk_ar;
	const uint8_t *e_in = initiator ? keys->sk_er : keys->sk_ei, *a_in = initiator ? keys->sk_ar : keys->sk_ai;
	int rc = ike_sk_new(suite, e_out, keys->encr_len, a_out, keys->integ_len, out);

	*in = NULL;
	if (rc < 0)
		return rc;
	rc = ike_sk_new(suite, e_in, keys->encr_len, a_in, keys->integ_len, in);
	if (rc < 0) {
		ike_sk_free(*out);
		*out = NULL;
	}
	return rc;
}
