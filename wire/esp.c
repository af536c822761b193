/* esp.c: RFC 4303 ESP encapsulation and decapsulation, with every cipher context built once per SA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "counter.h"
#include <openssl/params.h>
#include <openssl/rand.h>

#include "sa.h"
#include "wire.h"

#define ESP_HDR     8   /* SPI + sequence number */
#define AEAD_IV     8   /* RFC 4106/7634/4309/4543/3686 explicit IV */
#define SALT_MAX    4   /* salt (nonce) bytes at the end of the key */
#define AEAD_ICV    16
#define BLOCK_MAX   16
#define TRAILER_MAX (TFC_PAD_MAX + BLOCK_MAX - 1 + 2)
#define XCBC_ICV    12
#define AEAD_COPY_MAX 256  /* inner packets up to this size are sealed with their trailer in one update */

/*
 * NULL: plaintext + integ. AEAD: GCM/ChaCha20 (RFC 4106/7634). CBC: AES or
 * 3DES, + integ. CTR: RFC 3686, + integ. CCM: RFC 4309, one-shot AEAD.
 * GMAC: RFC 4543, everything authenticated, nothing encrypted.
 */
enum esp_kind { KIND_NULL, KIND_AEAD, KIND_CBC, KIND_CTR, KIND_CCM, KIND_GMAC };
enum mac_kind { MAC_NONE, MAC_HMAC, MAC_XCBC, MAC_GMAC };

struct esp_crypto {
	uint8_t kind, mac_kind;
	uint8_t salt_len;
	size_t nonce_param_len;     /* not 0: the nonce goes in as the "tlsivfixed" parameter of this length (set_nonce) */
	uint8_t salt[SALT_MAX];
	EVP_CIPHER_CTX *enc, *dec;  /* keyed once; per packet only the IV changes */
	EVP_CIPHER_CTX *ivgen;      /* CBC: AES-ECB under a random key turns a counter into IVs */
	uint64_t iv_counter;
	EVP_MAC_CTX *mac;           /* keyed HMAC, restarted per packet with the same key */
	EVP_CIPHER_CTX *xcbc;       /* RFC 3566: AES-CBC keyed with K1; K2/K3 below */
	EVP_CIPHER_CTX *gmac;       /* AH's AES-GMAC (RFC 4543 5): GCM with nothing to encrypt; salt in salt[] */
	uint8_t xcbc_k2[16], xcbc_k3[16];
};

/* What each algorithm needs: OpenSSL name, key bytes (salt included), and the shape of the packet. */
struct enc_alg {
	const char *name, *ossl;
	uint8_t kind, key_len, salt_len, iv_len, icv_len, block;
};

static const struct enc_alg enc_algs[ENC__COUNT] = {
	[ENC_NULL] = { "null", NULL, KIND_NULL, 0, 0, 0, 0, 4 },
	[ENC_AES_GCM_128] = { "aes-gcm-128", "AES-128-GCM", KIND_AEAD, 16 + 4, 4, AEAD_IV, AEAD_ICV, 4 },
	[ENC_AES_GCM_256] = { "aes-gcm-256", "AES-256-GCM", KIND_AEAD, 32 + 4, 4, AEAD_IV, AEAD_ICV, 4 },
	[ENC_CHACHA20_POLY1305] = { "chacha20-poly1305", "ChaCha20-Poly1305", KIND_AEAD, 32 + 4, 4, AEAD_IV,
	                            AEAD_ICV, 4 },
	[ENC_AES_CBC_128] = { "aes-cbc-128", "AES-128-CBC", KIND_CBC, 16, 0, 16, 0, 16 },
	[ENC_AES_CBC_256] = { "aes-cbc-256", "AES-256-CBC", KIND_CBC, 32, 0, 16, 0, 16 },
	[ENC_AES_CTR_128] = { "aes-ctr-128", "AES-128-CTR", KIND_CTR, 16 + 4, 4, AEAD_IV, 0, 4 },
	[ENC_AES_CTR_256] = { "aes-ctr-256", "AES-256-CTR", KIND_CTR, 32 + 4, 4, AEAD_IV, 0, 4 },
	[ENC_AES_CCM8_128] = { "aes-ccm8-128", "AES-128-CCM", KIND_CCM, 16 + 3, 3, AEAD_IV, 8, 4 },
	[ENC_AES_CCM8_256] = { "aes-ccm8-256", "AES-256-CCM", KIND_CCM, 32 + 3, 3, AEAD_IV, 8, 4 },
	[ENC_AES_CCM12_128] = { "aes-ccm12-128", "AES-128-CCM", KIND_CCM, 16 + 3, 3, AEAD_IV, 12, 4 },
	[ENC_AES_CCM12_256] = { "aes-ccm12-256", "AES-256-CCM", KIND_CCM, 32 + 3, 3, AEAD_IV, 12, 4 },
	[ENC_AES_CCM16_128] = { "aes-ccm16-128", "AES-128-CCM", KIND_CCM, 16 + 3, 3, AEAD_IV, 16, 4 },
	[ENC_AES_CCM16_256] = { "aes-ccm16-256", "AES-256-CCM", KIND_CCM, 32 + 3, 3, AEAD_IV, 16, 4 },
	[ENC_AES_GMAC_128] = { "aes-gmac-128", "AES-128-GCM", KIND_GMAC, 16 + 4, 4, AEAD_IV, AEAD_ICV, 4 },
	[ENC_AES_GMAC_256] = { "aes-gmac-256", "AES-256-GCM", KIND_GMAC, 32 + 4, 4, AEAD_IV, AEAD_ICV, 4 },
	[ENC_3DES_CBC] = { "3des-cbc", "DES-EDE3-CBC", KIND_CBC, 24, 0, 8, 0, 8 },
};

struct integ_alg {
	const char *name, *digest;  /* HMAC's digest, or GMAC's cipher */
	uint8_t mac_kind, key_len, icv_len;
};

static const struct integ_alg integ_algs[INTEG__COUNT] = {
	[INTEG_NONE] = { "none", NULL, MAC_NONE, 0, 0 },
	[INTEG_HMAC_SHA1_96] = { "hmac-sha1-96", "SHA1", MAC_HMAC, 20, 12 },
	[INTEG_HMAC_SHA256_128] = { "hmac-sha256-128", "SHA2-256", MAC_HMAC, 32, 16 },
	[INTEG_HMAC_SHA384_192] = { "hmac-sha384-192", "SHA2-384", MAC_HMAC, 48, 24 },
	[INTEG_HMAC_SHA512_256] = { "hmac-sha512-256", "SHA2-512", MAC_HMAC, 64, 32 },
	[INTEG_AES_XCBC_96] = { "aes-xcbc-96", NULL, MAC_XCBC, 16, XCBC_ICV },
	[INTEG_HMAC_MD5_96] = { "hmac-md5-96", "MD5", MAC_HMAC, 16, 12 },
	[INTEG_AES_GMAC_128] = { "aes-gmac-128", "AES-128-GCM", MAC_GMAC, 16 + SALT_MAX, AEAD_ICV },
	[INTEG_AES_GMAC_256] = { "aes-gmac-256", "AES-256-GCM", MAC_GMAC, 32 + SALT_MAX, AEAD_ICV },
};

static bool self_authenticating(uint8_t kind)
{
	return kind == KIND_AEAD || kind == KIND_CCM || kind == KIND_GMAC;
}

static void put64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)(v >> 32));
	wr32(p + 4, (uint32_t)v);
}

/* ---- set-up, once per SA ---- */

static int check_algs(const struct sa_conf *conf, char *err, size_t errlen)
{
	const struct enc_alg *e;
	const struct integ_alg *i;

	if (conf->enc >= ENC__COUNT || conf->integ >= INTEG__COUNT) {
		snprintf(err, errlen, "enc/integ: unknown algorithm");
		return -XE_BAD_PARAM;
	}
	e = &enc_algs[conf->enc];
	i = &integ_algs[conf->integ];
	if (conf->proto == PROTO_AH && (conf->enc != ENC_NULL || conf->integ == INTEG_NONE)) {
		snprintf(err, errlen, "enc: an AH SA takes enc null and an integrity algorithm");
		return -XE_BAD_PARAM;
	}
	if (conf->proto != PROTO_AH && i->mac_kind == MAC_GMAC) {
		snprintf(err, errlen, "integ: %s is for AH; ESP takes enc %s with integ none", i->name, i->name);
		return -XE_BAD_PARAM;
	}
	if (self_authenticating(e->kind) && conf->integ != INTEG_NONE) {
		snprintf(err, errlen, "integ: %s authenticates itself and takes integ none, not %s", e->name, i->name);
		return -XE_BAD_PARAM;
	}
	if (!self_authenticating(e->kind) && conf->integ == INTEG_NONE) {
		snprintf(err, errlen, "integ: %s needs an integrity algorithm", e->name);
		return -XE_BAD_PARAM;
	}
	if (conf->enc_key_len != e->key_len) {
		snprintf(err, errlen, "enc_key: %s needs %u bytes, got %u", e->name, e->key_len, conf->enc_key_len);
		return -XE_BAD_PARAM;
	}
	if (conf->integ_key_len != i->key_len) {
		snprintf(err, errlen, "integ_key: %s needs %u bytes, got %u", i->name, i->key_len, conf->integ_key_len);
		return -XE_BAD_PARAM;
	}
	if (conf->replay_window > REPLAY_MAX) {
		snprintf(err, errlen, "replay_window: at most %u", REPLAY_MAX);
		return -XE_BAD_PARAM;
	}
	return 0;
}

/*
 * Padding is switched off only where it means something (CBC, ECB): OpenSSL
 * re-applies a "no padding" setting on every per-packet IV change, which is
 * a parameter lookup by name that AEAD ciphers do not need. CCM fixes its
 * nonce and tag lengths here, once.
 */
static EVP_CIPHER_CTX *cipher_ctx(EVP_CIPHER *cipher, const uint8_t *key, int enc, bool block_mode,
                                  const struct enc_alg *ccm)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t nonce_len = ccm ? (size_t)ccm->salt_len + ccm->iv_len : 0;
	OSSL_PARAM params[3] = { OSSL_PARAM_END, OSSL_PARAM_END, OSSL_PARAM_END };

	if (ccm) {
		params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &nonce_len);
		params[1] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, ccm->icv_len);
	}
	if (ctx == NULL || !EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, enc, params) ||
	    !EVP_CipherInit_ex2(ctx, NULL, key, NULL, enc, NULL) ||
	    (block_mode && !EVP_CIPHER_CTX_set_padding(ctx, 0))) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * A new nonce on a keyed context. OpenSSL 3.0's EVP_CipherInit_ex2 asks the
 * provider for the IV length by name on every call (about 600 instructions
 * of OSSL_PARAM_locate and strcmp, twice per packet and SA pair). Two ciphers
 * take the whole 12-byte nonce as their "tlsivfixed" parameter instead, which
 * skips that lookup: AES-GCM with length -1 (the special case of
 * EVP_CTRL_GCM_SET_IV_FIXED that restores the whole IV), ChaCha20-Poly1305
 * with length 12 (it sets the nonce words of the ChaCha20 state; Poly1305 is
 * keyed afresh by the first update after a final, as after an init). The
 * expected tag, if any, goes in the same call. Every other cipher takes the
 * ordinary path.
 */
static bool set_nonce(const struct esp_crypto *c, EVP_CIPHER_CTX *ctx, int enc, uint8_t *nonce,
                      const OSSL_PARAM *tag)
{
	OSSL_PARAM p[3] = { OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, nonce, c->nonce_param_len),
	                    OSSL_PARAM_END, OSSL_PARAM_END };

	if (!c->nonce_param_len)
		return EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, enc, tag);
	if (tag != NULL)
		p[1] = tag[0];
	return EVP_CIPHER_CTX_set_params(ctx, p);
}

/*
 * Once per SA: the parameter path (nonce_len as in esp_crypto) must give the
 * same tag as EVP_CipherInit_ex2, twice in a row (what a message leaves
 * behind must not leak into the next), or it is not used.
 */
static size_t nonce_param_works(EVP_CIPHER_CTX *enc, size_t nonce_len)
{
	struct esp_crypto probe = { 0 };
	uint8_t nonce[12] = { 0x62, 0x69, 0x74, 0x77 }, tag[3][AEAD_ICV], aad[1] = { 0 }, text[17] = { 0 }, out[17];
	bool ok = true;
	int l;

	for (int i = 0; i < 3 && ok; i++) {
		OSSL_PARAM get[2] = { OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag[i], AEAD_ICV),
		                      OSSL_PARAM_END };

		probe.nonce_param_len = i == 0 ? 0 : nonce_len;
		ok = set_nonce(&probe, enc, 1, nonce, NULL) && EVP_EncryptUpdate(enc, NULL, &l, aad, 1) &&
		     EVP_EncryptUpdate(enc, out, &l, text, sizeof(text)) && EVP_EncryptFinal_ex(enc, aad, &l) &&
		     EVP_CIPHER_CTX_get_params(enc, get);
	}
	ok = ok && memcmp(tag[0], tag[1], AEAD_ICV) == 0 && memcmp(tag[0], tag[2], AEAD_ICV) == 0;
	OPENSSL_cleanse(tag, sizeof(tag));
	OPENSSL_cleanse(out, sizeof(out));
	ERR_clear_error();  /* a provider that refuses the parameter leaves an error behind */
	return ok ? nonce_len : 0;
}

static int setup_cipher(struct esp_crypto *c, const struct sa_conf *conf)
{
	const struct enc_alg *e = &enc_algs[conf->enc];
	const struct enc_alg *ccm = e->kind == KIND_CCM ? e : NULL;
	EVP_CIPHER *cipher;

	if (e->kind == KIND_NULL)
		return 0;
	cipher = EVP_CIPHER_fetch(NULL, e->ossl, NULL);
	if (cipher == NULL)
		return -XE_NOT_SUPPORTED;
	c->enc = cipher_ctx(cipher, conf->enc_key, 1, e->kind == KIND_CBC, ccm);
	c->dec = cipher_ctx(cipher, conf->enc_key, 0, e->kind == KIND_CBC, ccm);
	EVP_CIPHER_free(cipher);
	if (c->enc == NULL || c->dec == NULL)
		return -XE_NOMEM;
	c->salt_len = e->salt_len;
	memcpy(c->salt, conf->enc_key + e->key_len - e->salt_len, e->salt_len);
	if (strstr(e->ossl, "-GCM"))
		c->nonce_param_len = nonce_param_works(c->enc, (size_t)-1);
	else if (conf->enc == ENC_CHACHA20_POLY1305)
		c->nonce_param_len = nonce_param_works(c->enc, 12);
	return 0;
}

bool esp_nonce_by_param(const struct sa *sa)
{
	const struct esp_crypto *c = sa->crypto;

	return c != NULL && c->nonce_param_len != 0;
}

static int aes_ecb(const uint8_t *key, const uint8_t *in, uint8_t *out, size_t len)
{
	EVP_CIPHER *ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
	EVP_CIPHER_CTX *ctx = ecb ? cipher_ctx(ecb, key, 1, true, NULL) : NULL;
	int l = 0, ok = ctx && EVP_EncryptUpdate(ctx, out, &l, in, (int)len) && l == (int)len;

	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(ecb);
	return ok ? 0 : -XE_NOT_SUPPORTED;
}

/*
 * RFC 3602 wants CBC IVs the attacker cannot predict. Encrypting a counter
 * under a key nobody else knows gives that without a syscall per packet.
 */
static int setup_ivgen(struct esp_crypto *c)
{
	uint8_t key[16];
	EVP_CIPHER *ecb;
	int rc = 0;

	if (RAND_bytes(key, sizeof(key)) != 1)
		return -XE_IO;
	ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
	if (ecb == NULL)
		rc = -XE_NOT_SUPPORTED;
	else if ((c->ivgen = cipher_ctx(ecb, key, 1, true, NULL)) == NULL)
		rc = -XE_NOMEM;
	EVP_CIPHER_free(ecb);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* RFC 3566 2.1: K1, K2, K3 are the key's encryptions of 0x01.., 0x02.., 0x03..; the MAC is CBC under K1. */
static int setup_xcbc(struct esp_crypto *c, const uint8_t *key)
{
	uint8_t in[48], k[48];
	EVP_CIPHER *cbc;
	int rc;

	memset(in, 1, 16);
	memset(in + 16, 2, 16);
	memset(in + 32, 3, 16);
	if ((rc = aes_ecb(key, in, k, sizeof(k))) < 0)
		return rc;
	memcpy(c->xcbc_k2, k + 16, 16);
	memcpy(c->xcbc_k3, k + 32, 16);
	cbc = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
	c->xcbc = cbc ? cipher_ctx(cbc, k, 1, true, NULL) : NULL;
	EVP_CIPHER_free(cbc);
	OPENSSL_cleanse(k, sizeof(k));
	return c->xcbc ? 0 : -XE_NOT_SUPPORTED;
}

/* AH's GMAC: a GCM context keyed once; the salt is the key's last 4 bytes, as for ESP's GMAC. */
static int setup_gmac(struct esp_crypto *c, const struct integ_alg *i, const uint8_t *key, uint32_t key_len)
{
	EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, i->digest, NULL);

	c->gmac = gcm ? cipher_ctx(gcm, key, 1, false, NULL) : NULL;
	EVP_CIPHER_free(gcm);
	if (c->gmac == NULL)
		return -XE_NOT_SUPPORTED;
	c->salt_len = SALT_MAX;
	memcpy(c->salt, key + key_len - SALT_MAX, SALT_MAX);
	c->nonce_param_len = nonce_param_works(c->gmac, (size_t)-1);
	return 0;
}

static int setup_mac(struct esp_crypto *c, const struct sa_conf *conf)
{
	const struct integ_alg *i = &integ_algs[conf->integ];
	OSSL_PARAM params[2];
	EVP_MAC *hmac;

	c->mac_kind = i->mac_kind;
	if (i->mac_kind == MAC_NONE)
		return 0;
	if (i->mac_kind == MAC_XCBC)
		return setup_xcbc(c, conf->integ_key);
	if (i->mac_kind == MAC_GMAC)
		return setup_gmac(c, i, conf->integ_key, conf->integ_key_len);
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (hmac == NULL)
		return -XE_NOT_SUPPORTED;
	c->mac = EVP_MAC_CTX_new(hmac);
	EVP_MAC_free(hmac);
	if (c->mac == NULL)
		return -XE_NOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)i->digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(c->mac, conf->integ_key, conf->integ_key_len, params))
		return -XE_NOT_SUPPORTED;
	return 0;
}

void esp_crypto_free(struct sa *sa)
{
	struct esp_crypto *c = sa->crypto;

	if (c == NULL)
		return;
	/* The providers wipe key schedules when their contexts are freed. */
	EVP_CIPHER_CTX_free(c->enc);
	EVP_CIPHER_CTX_free(c->dec);
	EVP_CIPHER_CTX_free(c->ivgen);
	EVP_CIPHER_CTX_free(c->xcbc);
	EVP_CIPHER_CTX_free(c->gmac);
	EVP_MAC_CTX_free(c->mac);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
	sa->crypto = NULL;
}

static int setup_crypto(struct sa *sa)
{
	struct esp_crypto *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		return -XE_NOMEM;
	sa->crypto = c;
	c->kind = enc_algs[sa->conf.enc].kind;
	rc = setup_cipher(c, &sa->conf);
	if (rc == 0 && c->kind == KIND_CBC)
		rc = setup_ivgen(c);
	if (rc == 0)
		rc = setup_mac(c, &sa->conf);
	return rc;
}

int sa_create(const struct sa_conf *conf, struct sa **out, char *err, size_t errlen)
{
	const struct enc_alg *e;
	struct sa *sa;
	int rc;

	*out = NULL;
	rc = check_algs(conf, err, errlen);
	if (rc < 0)
		return rc;
	sa = calloc(1, sizeof(*sa));
	if (sa == NULL)
		return -XE_NOMEM;
	e = &enc_algs[conf->enc];
	sa->conf = *conf;
	sa->iv_len = e->iv_len;
	sa->icv_len = self_authenticating(e->kind) ? e->icv_len : integ_algs[conf->integ].icv_len;
	if (conf->opts.icv96 && sa->icv_len > 12 && integ_algs[conf->integ].mac_kind == MAC_HMAC)
		sa->icv_len = 12;  /* truncated HMAC-SHA2, as some peers configure it */
	if (RAND_bytes((uint8_t *)&sa->rng, sizeof(sa->rng)) != 1 || sa->rng == 0)
		sa->rng = (uint64_t)(uintptr_t)sa | 1;
	sa->block = conf->proto == PROTO_AH ? 1 : e->block;  /* AH has no trailer to pad */
	if (integ_algs[conf->integ].mac_kind == MAC_GMAC)
		sa->iv_len = AEAD_IV;  /* in AH's ICV field, before the tag */
	replay_init(&sa->replay, conf->replay_window);
	sa->created = sa_clock_s();
	rc = setup_crypto(sa);
	if (rc < 0) {
		snprintf(err, errlen, "enc: OpenSSL could not set up %s/%s", e->name, integ_algs[conf->integ].name);
		sa_destroy(sa);
		return rc;
	}
	*out = sa;
	return 0;
}

/* ---- per packet ---- */

static uint32_t pad_len(const struct sa *sa, uint32_t inner_len)
{
	return (0u - (inner_len + 2)) & (sa->block - 1u);  /* every block size is a power of 2: no division */
}

uint32_t esp_overhead(const struct sa *sa, uint32_t inner_len)
{
	if (sa->conf.proto == PROTO_AH)
		return ah_hdr_len(sa, sa->conf.peer.family);
	return ESP_HDR + sa->iv_len + pad_len(sa, inner_len) + 2 + sa->icv_len;
}

static int cbc_blocks(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len)
{
	uint8_t scratch[256];
	int l;

	for (size_t off = 0; off < len; off += sizeof(scratch)) {
		size_t n = len - off < sizeof(scratch) ? len - off : sizeof(scratch);

		if (!EVP_EncryptUpdate(ctx, scratch, &l, in + off, (int)n))
			return -1;
	}
	return 0;
}

/*
 * RFC 3566 over data || tail (tail: the ESN high half, 0 or 4 bytes). The
 * CBC context chains the blocks; the last one goes through it XORed with K2
 * (complete) or padded with 0x80 0.. and XORed with K3.
 */
static int xcbc_icv(struct esp_crypto *c, const uint8_t *data, uint32_t len, const uint8_t *tail,
                    uint32_t tail_len, uint8_t *icv)
{
	static const uint8_t zero_iv[16];
	uint32_t total = len + tail_len, body = total ? (total - 1) / 16 * 16 : 0;
	uint32_t direct = (body < len ? body : len) / 16 * 16, rest = total - direct;
	uint8_t buf[48] = { 0 }, last[16], out[16];
	const uint8_t *k = rest - (body - direct) == 16 ? c->xcbc_k2 : c->xcbc_k3;
	int l;

	memcpy(buf, data + direct, len - direct);
	memcpy(buf + len - direct, tail, tail_len);
	if (!EVP_CipherInit_ex2(c->xcbc, NULL, NULL, zero_iv, 1, NULL) || cbc_blocks(c->xcbc, data, direct) < 0 ||
	    cbc_blocks(c->xcbc, buf, body - direct) < 0)
		return -XE_ESP_DIGEST_MISMATCH;
	memcpy(last, buf + body - direct, 16);
	if (rest - (body - direct) < 16)
		last[rest - (body - direct)] = 0x80;
	for (int i = 0; i < 16; i++)
		last[i] ^= k[i];
	if (!EVP_EncryptUpdate(c->xcbc, out, &l, last, 16))
		return -XE_ESP_DIGEST_MISMATCH;
	memcpy(icv, out, XCBC_ICV);
	return 0;
}

/* The ICV over SPI..ciphertext (AH: the whole packet), then the ESN high half that is not on the wire (RFC 4303 3.3.2.1). */
int sa_integ_icv(const struct sa *sa, const uint8_t *data, uint32_t len, uint64_t seq, uint8_t *icv)
{
	struct esp_crypto *c = sa->crypto;
	uint8_t full[EVP_MAX_MD_SIZE], hi[4];
	size_t out_len;
	int ok;

	wr32(hi, (uint32_t)(seq >> 32));
	if (c->mac_kind == MAC_XCBC)
		return xcbc_icv(c, data, len, hi, sa->conf.esn ? 4 : 0, icv);
	ok = EVP_MAC_init(c->mac, NULL, 0, NULL) && EVP_MAC_update(c->mac, data, len) &&
	     (!sa->conf.esn || EVP_MAC_update(c->mac, hi, sizeof(hi))) &&
	     EVP_MAC_final(c->mac, full, &out_len, sizeof(full));
	if (ok)
		memcpy(icv, full, sa->icv_len);
	OPENSSL_cleanse(full, sizeof(full));
	return ok ? 0 : -XE_ESP_DIGEST_MISMATCH;
}

/* AH's AES-GMAC (RFC 4543 5): the packet (and the ESN high half) is all AAD under nonce salt || iv. */
int sa_gmac_icv(const struct sa *sa, const uint8_t *iv, const uint8_t *data, uint32_t len, uint64_t seq,
                uint8_t *icv)
{
	struct esp_crypto *c = sa->crypto;
	uint8_t nonce[SALT_MAX + AEAD_IV], hi[4], none[AEAD_ICV];
	OSSL_PARAM tag[2] = { OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, icv, sa->icv_len), OSSL_PARAM_END };
	int l;

	wr32(hi, (uint32_t)(seq >> 32));
	memcpy(nonce, c->salt, SALT_MAX);
	memcpy(nonce + SALT_MAX, iv, AEAD_IV);
	if (c->gmac == NULL || !set_nonce(c, c->gmac, 1, nonce, NULL) ||
	    !EVP_EncryptUpdate(c->gmac, NULL, &l, data, (int)len) ||
	    (sa->conf.esn && !EVP_EncryptUpdate(c->gmac, NULL, &l, hi, sizeof(hi))) ||
	    !EVP_EncryptFinal_ex(c->gmac, none, &l) || !EVP_CIPHER_CTX_get_params(c->gmac, tag))
		return -XE_AH_DIGEST_MISMATCH;
	return 0;
}

/* RFC 4106 5 / RFC 7634 2.2 / RFC 4309 5 / RFC 4543 3.3: AAD is SPI || seq, or SPI || seq high || seq low with ESN. */
static int aead_aad(const struct sa *sa, const uint8_t *esp, uint64_t seq, uint8_t *aad)
{
	if (!sa->conf.esn) {
		memcpy(aad, esp, ESP_HDR);
		return ESP_HDR;
	}
	memcpy(aad, esp, 4);
	put64(aad + 4, seq);
	return 12;
}

/* salt || IV, and for CTR (RFC 3686 4) the block counter starting at 1. */
static size_t make_nonce(const struct esp_crypto *c, const uint8_t *iv, uint8_t *nonce)
{
	memcpy(nonce, c->salt, c->salt_len);
	memcpy(nonce + c->salt_len, iv, AEAD_IV);
	if (c->kind != KIND_CTR)
		return c->salt_len + AEAD_IV;
	wr32(nonce + c->salt_len + AEAD_IV, 1);
	return 16;
}

static int aead_seal(struct sa *sa, uint8_t *esp, const uint8_t *inner, uint32_t inner_len, const uint8_t *trailer,
                     uint32_t trailer_len, uint64_t seq)
{
	struct esp_crypto *c = sa->crypto;
	uint8_t nonce[16], aad[12];
	uint8_t *ct = esp + ESP_HDR + AEAD_IV;
	int aad_len = aead_aad(sa, esp, seq, aad), l1 = 0, l2 = 0;
	bool ok;
	/* The tag is fetched by parameter, not EVP_CIPHER_CTX_ctrl, which rebuilds this array per call. */
	OSSL_PARAM tag[2] = { OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ct + inner_len + trailer_len,
	                                              sa->icv_len),
	                      OSSL_PARAM_END };

	/*
	 * A small inner packet (a TCP ACK) goes next to its trailer first, so one
	 * update seals both: a second update costs another pass through the
	 * provider and a partial block (about 230 instructions), more than the
	 * copy. A large one is not worth copying. In place, it is already there.
	 */
	if (inner_len <= AEAD_COPY_MAX) {
		memmove(ct, inner, inner_len);
		inner = ct;
	}
	make_nonce(c, esp + ESP_HDR, nonce);
	if (!set_nonce(c, c->enc, 1, nonce, NULL) || !EVP_EncryptUpdate(c->enc, NULL, &l1, aad, aad_len))
		return -XE_NOT_SUPPORTED;
	if (inner == ct) {
		memcpy(ct + inner_len, trailer, trailer_len);
		ok = EVP_EncryptUpdate(c->enc, ct, &l1, ct, (int)(inner_len + trailer_len));
	} else {
		ok = EVP_EncryptUpdate(c->enc, ct, &l1, inner, (int)inner_len) &&
		     EVP_EncryptUpdate(c->enc, ct + l1, &l2, trailer, (int)trailer_len);
		l1 += l2;
	}
	if (!ok || !EVP_EncryptFinal_ex(c->enc, ct + l1, &l2) || !EVP_CIPHER_CTX_get_params(c->enc, tag))
		return -XE_NOT_SUPPORTED;
	return 0;
}

/* CCM takes its plaintext in one piece and its length before the AAD (RFC 3610 2.2). */
static int ccm_seal(struct sa *sa, uint8_t *esp, const uint8_t *inner, uint32_t inner_len, const uint8_t *trailer,
                    uint32_t trailer_len, uint64_t seq)
{
	struct esp_crypto *c = sa->crypto;
	uint8_t nonce[16], aad[12];
	uint8_t *ct = esp + ESP_HDR + AEAD_IV;
	uint32_t pt_len = inner_len + trailer_len;
	int aad_len = aead_aad(sa, esp, seq, aad), l;
	OSSL_PARAM tag[2] = { OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ct + pt_len, sa->icv_len),
	                      OSSL_PARAM_END };

	memmove(ct, inner, inner_len);
	memcpy(ct + inner_len, trailer, trailer_len);
	make_nonce(c, esp + ESP_HDR, nonce);
	if (!EVP_CipherInit_ex2(c->enc, NULL, NULL, nonce, 1, NULL) ||
	    !EVP_EncryptUpdate(c->enc, NULL, &l, NULL, (int)pt_len) ||
	    !EVP_EncryptUpdate(c->enc, NULL, &l, aad, aad_len) || !EVP_EncryptUpdate(c->enc, ct, &l, ct, (int)pt_len) ||
	    !EVP_CIPHER_CTX_get_params(c->enc, tag))
		return -XE_NOT_SUPPORTED;
	return 0;
}

/* RFC 4543: the whole packet from SPI to the trailer is AAD; nothing is encrypted. */
static int gmac_tag(struct sa *sa, EVP_CIPHER_CTX *ctx, int enc, uint8_t *esp, uint32_t pt_len, uint64_t seq,
                    uint8_t *icv)
{
	struct esp_crypto *c = sa->crypto;
	uint8_t nonce[16], aad[12];
	int aad_len = aead_aad(sa, esp, seq, aad), l;
	OSSL_PARAM tag[2] = { OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, icv, sa->icv_len), OSSL_PARAM_END };

	make_nonce(c, esp + ESP_HDR, nonce);
	if (!set_nonce(c, ctx, enc, nonce, enc ? NULL : tag) ||
	    !EVP_CipherUpdate(ctx, NULL, &l, aad, aad_len) ||
	    !EVP_CipherUpdate(ctx, NULL, &l, esp + ESP_HDR, (int)(AEAD_IV + pt_len)) ||
	    EVP_CipherFinal_ex(ctx, nonce, &l) <= 0 || (enc && !EVP_CIPHER_CTX_get_params(ctx, tag)))
		return -XE_ESP_DIGEST_MISMATCH;
	return 0;
}

static int gmac_seal(struct sa *sa, uint8_t *esp, const uint8_t *inner, uint32_t inner_len, const uint8_t *trailer,
                     uint32_t trailer_len, uint64_t seq)
{
	uint8_t *pt = esp + ESP_HDR + AEAD_IV;

	memmove(pt, inner, inner_len);
	memcpy(pt + inner_len, trailer, trailer_len);
	return gmac_tag(sa, ((struct esp_crypto *)sa->crypto)->enc, 1, esp, inner_len + trailer_len, seq,
	                pt + inner_len + trailer_len) < 0 ? -XE_NOT_SUPPORTED : 0;
}

/* CBC and CTR: encrypt, then the ICV over SPI..ciphertext. */
static int cipher_seal(struct sa *sa, uint8_t *esp, const uint8_t *inner, uint32_t inner_len, const uint8_t *trailer,
                       uint32_t trailer_len, uint64_t seq, bool fixed_iv)
{
	struct esp_crypto *c = sa->crypto;
	uint32_t ct_len = inner_len + trailer_len;
	uint8_t *ct = esp + ESP_HDR + sa->iv_len, nonce[16];
	const uint8_t *iv = esp + ESP_HDR;
	int l0, l1, l2, l3;

	if (c->kind == KIND_CTR) {
		make_nonce(c, esp + ESP_HDR, nonce);
		iv = nonce;
	}
	/*
	 * CBC with a generated IV: the context chains on from the last packet and
	 * the secret block make_iv wrote is encrypted first, in place; what comes
	 * out, E(previous block xor secret), is the packet's IV, as unpredictable
	 * as the secret, and the rest chains on from it. No IV is set per packet
	 * (EVP_CipherInit_ex2 looks the IV length up by name in OpenSSL 3.0).
	 */
	if (c->kind == KIND_CBC && !fixed_iv) {
		if (!EVP_EncryptUpdate(c->enc, esp + ESP_HDR, &l0, esp + ESP_HDR, (int)sa->iv_len))
			return -XE_NOT_SUPPORTED;
	} else if (!EVP_CipherInit_ex2(c->enc, NULL, NULL, iv, 1, NULL)) {
		return -XE_NOT_SUPPORTED;
	}
	/* Two updates: the inner packet need not be copied next to its trailer first. */
	if (!EVP_EncryptUpdate(c->enc, ct, &l1, inner, (int)inner_len) ||
	    !EVP_EncryptUpdate(c->enc, ct + l1, &l2, trailer, (int)trailer_len) ||
	    !EVP_EncryptFinal_ex(c->enc, ct + l1 + l2, &l3)) {
		(void)EVP_CipherInit_ex2(c->enc, NULL, NULL, NULL, 1, NULL);  /* no half block left for the next packet */
		return -XE_NOT_SUPPORTED;
	}
	return sa_integ_icv(sa, esp, ESP_HDR + sa->iv_len + ct_len, seq, ct + ct_len);
}

static int null_seal(struct sa *sa, uint8_t *esp, const uint8_t *inner, uint32_t inner_len, const uint8_t *trailer,
                     uint32_t trailer_len, uint64_t seq)
{
	uint8_t *pt = esp + ESP_HDR;

	memmove(pt, inner, inner_len);
	memcpy(pt + inner_len, trailer, trailer_len);
	return sa_integ_icv(sa, esp, ESP_HDR + inner_len + trailer_len, seq, pt + inner_len + trailer_len);
}

static int make_iv(struct sa *sa, uint64_t seq, uint8_t *iv)
{
	struct esp_crypto *c = sa->crypto;
	uint8_t block[16] = { 0 }, out[16];
	int len;

	if (c->kind == KIND_CBC) {
		put64(block, ++c->iv_counter);
		if (!EVP_EncryptUpdate(c->ivgen, out, &len, block, sizeof(block)))
			return -XE_NOT_SUPPORTED;
		memcpy(iv, out, sa->iv_len);
	} else if (sa->iv_len) {
		put64(iv, seq);  /* RFC 4106 3.1, 3686 3, 4309 3.1, 4543 3.1: a counter is unique per key */
	}
	return 0;
}

uint32_t sa_random(struct sa *sa)
{
	uint64_t x = sa->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sa->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static int esp_build(struct sa *sa, uint8_t *out, uint32_t out_cap, const uint8_t *inner, uint32_t inner_len,
                     uint8_t next_header, uint64_t seq, const uint8_t *iv, uint32_t tfc)
{
	struct esp_crypto *c = sa->crypto;
	uint32_t pad = pad_len(sa, inner_len + tfc);
	uint64_t total = (uint64_t)inner_len + tfc + esp_overhead(sa, inner_len + tfc);
	uint8_t trailer[TRAILER_MAX], *t = trailer + tfc;
	int rc;

	if (total > out_cap || total > INT32_MAX || tfc > TFC_PAD_MAX)
		return -XE_MTU_EXCEEDED;
	memset(trailer, 0, tfc);
	for (uint32_t i = 0; i < pad; i++)
		t[i] = (uint8_t)(i + 1);  /* RFC 4303 2.4 default padding */
	t[pad] = (uint8_t)pad;
	t[pad + 1] = next_header;
	pad += tfc;  /* from here on the TFC bytes are part of what follows the inner packet */
	wr32(out, sa->conf.spi);
	wr32(out + 4, (uint32_t)seq);
	if (iv != NULL)
		memmove(out + ESP_HDR, iv, sa->iv_len);
	else if ((rc = make_iv(sa, seq, out + ESP_HDR)) < 0)
		return rc;
	switch (c->kind) {
	case KIND_AEAD: rc = aead_seal(sa, out, inner, inner_len, trailer, pad + 2, seq); break;
	case KIND_CCM: rc = ccm_seal(sa, out, inner, inner_len, trailer, pad + 2, seq); break;
	case KIND_GMAC: rc = gmac_seal(sa, out, inner, inner_len, trailer, pad + 2, seq); break;
	case KIND_CBC:
	case KIND_CTR: rc = cipher_seal(sa, out, inner, inner_len, trailer, pad + 2, seq, iv != NULL); break;
	default: rc = null_seal(sa, out, inner, inner_len, trailer, pad + 2, seq); break;
	}
	return rc < 0 ? rc : (int)total;
}

int esp_encap_fixed(struct sa *sa, uint8_t *out, uint32_t out_cap, const uint8_t *inner, uint32_t inner_len,
                    uint8_t next_header, uint64_t seq, const uint8_t *iv)
{
	return esp_build(sa, out, out_cap, inner, inner_len, next_header, seq, iv, 0);
}

int esp_encap(struct sa *sa, uint8_t *out, uint32_t out_cap, const uint8_t *inner, uint32_t inner_len,
              uint8_t next_header)
{
	return esp_encap_tfc(sa, out, out_cap, inner, inner_len, next_header, 0);
}

int esp_encap_tfc(struct sa *sa, uint8_t *out, uint32_t out_cap, const uint8_t *inner, uint32_t inner_len,
                  uint8_t next_header, uint32_t tfc)
{
	uint64_t limit = sa->conf.esn ? UINT64_MAX : UINT32_MAX;
	int rc;

	/* RFC 4303 3.3.3: never wrap; the SA must be replaced first. */
	if (sa->seq >= limit)
		return -XE_SEQUENCE_OVERFLOW;
	rc = esp_build(sa, out, out_cap, inner, inner_len, next_header, sa->seq + 1, NULL, tfc);
	if (rc >= 0)
		sa->seq++;
	return rc;
}

static int aead_open(struct sa *sa, uint8_t *esp, uint32_t ct_len, uint64_t seq, uint8_t *pt)
{
	struct esp_crypto *c = sa->crypto;
	uint8_t nonce[16], aad[12];
	uint8_t *ct = esp + ESP_HDR + AEAD_IV;
	int aad_len = aead_aad(sa, esp, seq, aad), l1, l2;
	/* The expected tag goes in with the nonce: one call into the provider instead of two. */
	OSSL_PARAM tag[2] = { OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ct + ct_len, sa->icv_len),
	                      OSSL_PARAM_END };

	make_nonce(c, esp + ESP_HDR, nonce);
	if (!set_nonce(c, c->dec, 0, nonce, tag))
		return -XE_ESP_DIGEST_MISMATCH;
	if (c->kind == KIND_CCM)  /* length first, then AAD, then everything in one call, which verifies */
		return EVP_DecryptUpdate(c->dec, NULL, &l1, NULL, (int)ct_len) &&
		               EVP_DecryptUpdate(c->dec, NULL, &l1, aad, aad_len) &&
		               EVP_DecryptUpdate(c->dec, pt, &l1, ct, (int)ct_len) > 0
		           ? 0
		           : -XE_ESP_DIGEST_MISMATCH;
	if (!EVP_DecryptUpdate(c->dec, NULL, &l1, aad, aad_len) ||
	    !EVP_DecryptUpdate(c->dec, pt, &l1, ct, (int)ct_len) ||
	    EVP_DecryptFinal_ex(c->dec, pt + l1, &l2) <= 0)
		return -XE_ESP_DIGEST_MISMATCH;
	return 0;
}

/* Verify before decrypting: a forged packet costs one MAC and no cipher work. */
static int mac_open(struct sa *sa, uint8_t *esp, uint32_t ct_len, uint64_t seq, uint8_t *pt)
{
	struct esp_crypto *c = sa->crypto;
	uint32_t signed_len = ESP_HDR + sa->iv_len + ct_len;
	uint8_t icv[EVP_MAX_MD_SIZE], *ct = esp + ESP_HDR + sa->iv_len, nonce[16], garbage[BLOCK_MAX];
	const uint8_t *iv = esp + ESP_HDR;
	int len;

	if (c->kind == KIND_GMAC) {
		if (gmac_tag(sa, c->dec, 0, esp, ct_len, seq, esp + signed_len) < 0)
			return -XE_ESP_DIGEST_MISMATCH;
	} else if (sa_integ_icv(sa, esp, signed_len, seq, icv) < 0 ||
	           CRYPTO_memcmp(icv, esp + signed_len, sa->icv_len) != 0) {
		return -XE_ESP_DIGEST_MISMATCH;
	}
	/*
	 * CBC: the IV block goes through the cipher before the ciphertext, so the
	 * context's IV need not be set (EVP_CipherInit_ex2 looks up the IV length
	 * by name in OpenSSL 3.0). Each plaintext block is D(C[i]) xor C[i-1],
	 * C[0] being the IV; only the IV's own block comes out as garbage. In
	 * place it lands over the IV, which nothing reads after decryption.
	 */
	if (c->kind == KIND_CBC && pt == ct)
		return EVP_DecryptUpdate(c->dec, esp + ESP_HDR, &len, esp + ESP_HDR, (int)(sa->iv_len + ct_len))
		           ? 0
		           : -XE_MALFORMED_PACKET;
	if (c->kind == KIND_CBC)
		return EVP_DecryptUpdate(c->dec, garbage, &len, iv, (int)sa->iv_len) &&
		               EVP_DecryptUpdate(c->dec, pt, &len, ct, (int)ct_len)
		           ? 0
		           : -XE_MALFORMED_PACKET;
	if (c->kind == KIND_CTR) {
		make_nonce(c, esp + ESP_HDR, nonce);
		iv = nonce;
		return EVP_CipherInit_ex2(c->dec, NULL, NULL, iv, 0, NULL) &&
		               EVP_DecryptUpdate(c->dec, pt, &len, ct, (int)ct_len)
		           ? 0
		           : -XE_MALFORMED_PACKET;
	}
	if (pt != ct)
		memcpy(pt, ct, ct_len);  /* NULL and GMAC encrypt nothing */
	return 0;
}

/* The trailer is authentic by now; its padding is still checked (RFC 4303 2.4) unless the policy says not to. */
static int check_trailer(const struct sa *sa, uint8_t *pt, uint32_t pt_len, uint32_t *inner_len)
{
	uint32_t pad = pt[pt_len - 2];
	uint8_t bad = 0;

	if (pad + 2 > pt_len)
		return -XE_MALFORMED_PACKET;
	for (uint32_t i = 0; i < pad && !sa->conf.opts.pad_nocheck; i++)
		bad |= (uint8_t)(pt[pt_len - 2 - pad + i] ^ (i + 1));
	if (bad)
		return -XE_ESP_BAD_PADDING;
	*inner_len = pt_len - 2 - pad;
	return 0;
}

/* Decrypt to pt: either esp + ESP_HDR + iv_len (in place) or a buffer of at least ct_len bytes that overlaps nothing. */
static int esp_open(struct sa *sa, uint8_t *esp, uint32_t esp_len, uint8_t *pt, uint32_t pt_cap, uint32_t *inner_len,
                    uint8_t *next_header)
{
	struct esp_crypto *c = sa->crypto;
	uint32_t head = ESP_HDR + sa->iv_len, ct_len;
	uint64_t seq;
	int rc;

	if (esp_len < head + 2u + sa->icv_len || esp_len > INT32_MAX) {
		stat_inc(&sa->st.errors);
		return -XE_MALFORMED_PACKET;
	}
	ct_len = esp_len - head - sa->icv_len;
	if (ct_len % (c->kind == KIND_CBC ? sa->block : 1u) != 0 || ct_len > pt_cap) {
		stat_inc(&sa->st.errors);
		return -XE_MALFORMED_PACKET;
	}
	rc = replay_check(&sa->replay, rd32(esp + 4), sa->conf.esn, &seq);
	if (rc < 0) {
		stat_inc(&sa->st.replay_drops);
		return rc;
	}
	rc = c->kind == KIND_AEAD || c->kind == KIND_CCM ? aead_open(sa, esp, ct_len, seq, pt)
	                                                 : mac_open(sa, esp, ct_len, seq, pt);
	if (rc == -XE_ESP_DIGEST_MISMATCH) {
		stat_inc(&sa->st.auth_drops);
		return rc;
	}
	if (rc == 0) {
		replay_update(&sa->replay, seq);
		rc = check_trailer(sa, pt, ct_len, inner_len);
	}
	if (rc < 0) {
		stat_inc(&sa->st.errors);
		return rc;
	}
	*next_header = pt[ct_len - 1];
	return 0;
}

int esp_decap(struct sa *sa, uint8_t *esp, uint32_t esp_len, uint8_t **inner, uint32_t *inner_len,
              uint8_t *next_header)
{
	uint8_t *pt = esp + ESP_HDR + sa->iv_len;
	int rc = esp_open(sa, esp, esp_len, pt, UINT32_MAX, inner_len, next_header);

	if (rc == 0)
		*inner = pt;
	return rc;
}

int esp_decap_to(struct sa *sa, const uint8_t *esp, uint32_t esp_len, uint8_t *out, uint32_t out_cap,
                 uint32_t *inner_len, uint8_t *next_header)
{
	/* Nothing is written to esp when out is elsewhere; only esp_decap decrypts in place. */
	return esp_open(sa, (uint8_t *)esp, esp_len, out, out_cap, inner_len, next_header);
}
