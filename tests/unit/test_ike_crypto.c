/* test_ike_crypto.c: IKEv2 DH, PRF/prf+, SKEYSEED, SK_x, KEYMAT, PSK AUTH and SK payloads vs independent values. */
#include "check.h"
#include "crypto.h"
#include "ike_vectors.h"
#include "wire/wire.h"

#define LEN(a) (sizeof(a))

/* Fixed private keys a and b: each side's KE data equals the independent value, and both sides get the same
 * secret, equal to the independent one. */
static void dh_fixed(const char *name, uint16_t group, const uint8_t *priv_a, size_t priv_len,
	const uint8_t *priv_b, const uint8_t *pub_a, const uint8_t *pub_b, const uint8_t *shared)
{
	struct ike_dh *a = NULL, *b = NULL;
	uint8_t pub[IKE_DH_PUB_MAX], s_ab[IKE_DH_PUB_MAX], s_ba[IKE_DH_PUB_MAX];
	size_t plen = ike_dh_public_len(group), slen = ike_dh_shared_len(group);

	CHECK_EQ(ike_dh_new_fixed(group, priv_a, priv_len, &a), 0, "%s: key a from a fixed private value", name);
	CHECK_EQ(ike_dh_new_fixed(group, priv_b, priv_len, &b), 0, "%s: key b from a fixed private value", name);
	if (!a || !b)
		goto out;
	CHECK_EQ(ike_dh_public(a, pub, sizeof pub), (int)plen, "%s: KE data has the group's fixed length", name);
	CHECK_MEM(pub, pub_a, plen, "%s: a's KE data is the independent public value", name);
	CHECK_EQ(ike_dh_public(b, pub, sizeof pub), (int)plen, "%s: b's KE data length", name);
	CHECK_MEM(pub, pub_b, plen, "%s: b's KE data is the independent public value", name);
	CHECK_EQ(ike_dh_shared(a, pub_b, plen, s_ab, sizeof s_ab), (int)slen, "%s: a derives g^ir", name);
	CHECK_EQ(ike_dh_shared(b, pub_a, plen, s_ba, sizeof s_ba), (int)slen, "%s: b derives g^ir", name);
	CHECK_MEM(s_ab, shared, slen, "%s: a's g^ir equals the independent value", name);
	CHECK_MEM(s_ba, shared, slen, "%s: b's g^ir equals the independent value", name);
out:
	ike_dh_free(a);
	ike_dh_free(b);
}

/* Random ephemeral keys for every group: both directions agree and the lengths are the RFC's. */
static void dh_random(uint16_t group, bool legacy, size_t want_pub, size_t want_shared)
{
	struct ike_dh *a = NULL, *b = NULL;
	uint8_t pa[IKE_DH_PUB_MAX], pb[IKE_DH_PUB_MAX], sa[IKE_DH_PUB_MAX], sb[IKE_DH_PUB_MAX];

	CHECK_EQ(ike_dh_public_len(group), want_pub, "group %u: KE data length", group);
	CHECK_EQ(ike_dh_shared_len(group), want_shared, "group %u: shared secret length", group);
	CHECK_EQ(ike_dh_new(group, legacy, &a), 0, "group %u: ephemeral key a", group);
	CHECK_EQ(ike_dh_new(group, legacy, &b), 0, "group %u: ephemeral key b", group);
	if (!a || !b)
		goto out;
	CHECK_EQ(ike_dh_group(a), group, "group %u: the key knows its group", group);
	int na = ike_dh_public(a, pa, sizeof pa), nb = ike_dh_public(b, pb, sizeof pb);
	CHECK(na == (int)want_pub && nb == (int)want_pub, "group %u: public values have the fixed length", group);
	int ka = ike_dh_shared(a, pb, want_pub, sa, sizeof sa), kb = ike_dh_shared(b, pa, want_pub, sb, sizeof sb);
	CHECK(ka == (int)want_shared && kb == (int)want_shared && memcmp(sa, sb, want_shared) == 0,
		"group %u: both sides derive the same secret", group);
out:
	ike_dh_free(a);
	ike_dh_free(b);
}

static void test_dh(void)
{
	dh_fixed("MODP 2048", IKE_DH_MODP2048, v_modp2048_priv_a, 32, v_modp2048_priv_b,
		v_modp2048_pub_a, v_modp2048_pub_b, v_modp2048_shared);
	dh_fixed("MODP 3072", IKE_DH_MODP3072, v_modp3072_priv_a, 32, v_modp3072_priv_b,
		v_modp3072_pub_a, v_modp3072_pub_b, v_modp3072_shared);
	dh_fixed("ECP 256", IKE_DH_ECP256, v_ecp256_priv_a, 32, v_ecp256_priv_b,
		v_ecp256_pub_a, v_ecp256_pub_b, v_ecp256_shared);
	dh_fixed("ECP 384", IKE_DH_ECP384, v_ecp384_priv_a, 48, v_ecp384_priv_b,
		v_ecp384_pub_a, v_ecp384_pub_b, v_ecp384_shared);
	dh_fixed("ECP 521", IKE_DH_ECP521, v_ecp521_priv_a, 66, v_ecp521_priv_b,
		v_ecp521_pub_a, v_ecp521_pub_b, v_ecp521_shared);
	dh_fixed("Curve25519", IKE_DH_CURVE25519, v_x25519_priv_a, 32, v_x25519_priv_b,
		v_x25519_pub_a, v_x25519_pub_b, v_x25519_shared);
	dh_fixed("Curve448", IKE_DH_CURVE448, v_x448_priv_a, 56, v_x448_priv_b,
		v_x448_pub_a, v_x448_pub_b, v_x448_shared);

	dh_random(IKE_DH_MODP2048, false, 256, 256);
	dh_random(IKE_DH_MODP3072, false, 384, 384);
	dh_random(IKE_DH_MODP4096, false, 512, 512);
	dh_random(IKE_DH_MODP6144, false, 768, 768);
	dh_random(IKE_DH_MODP8192, false, 1024, 1024);
	dh_random(IKE_DH_ECP256, false, 64, 32);
	dh_random(IKE_DH_ECP384, false, 96, 48);
	dh_random(IKE_DH_ECP521, false, 132, 66);
	dh_random(IKE_DH_CURVE25519, false, 32, 32);
	dh_random(IKE_DH_CURVE448, false, 56, 56);
	dh_random(IKE_DH_MODP768, true, 96, 96);
	dh_random(IKE_DH_MODP1024, true, 128, 128);
	dh_random(IKE_DH_MODP1536, true, 192, 192);
}

static void test_dh_refusals(void)
{
	struct ike_dh *dh = NULL;

	CHECK_EQ(ike_dh_new(IKE_DH_MODP1024, false, &dh), -XE_NOT_SUPPORTED, "MODP 1024 refused without legacy");
	CHECK(dh == NULL, "no key is returned when refused");
	CHECK_EQ(ike_dh_new(IKE_DH_MODP768, false, &dh), -XE_NOT_SUPPORTED, "MODP 768 refused without legacy");
	CHECK_EQ(ike_dh_new(IKE_DH_MODP1536, false, &dh), -XE_NOT_SUPPORTED, "MODP 1536 refused without legacy");
	CHECK_EQ(ike_dh_new(22, true, &dh), -XE_NOT_SUPPORTED, "group 22 (MODP with subgroup) unknown");
	CHECK(!ike_dh_supported(IKE_DH_MODP1024, false) && ike_dh_supported(IKE_DH_MODP1024, true) &&
		ike_dh_supported(IKE_DH_CURVE25519, false), "ike_dh_supported follows the legacy flag");
}

/* Peer values a careful responder must reject before using them. */
static void test_dh_bad_peer(void)
{
	struct ike_dh *m = NULL, *e = NULL, *x = NULL;
	uint8_t bad[256], out[256];

	ike_dh_new_fixed(IKE_DH_MODP2048, v_modp2048_priv_a, 32, &m);
	ike_dh_new_fixed(IKE_DH_ECP256, v_ecp256_priv_a, 32, &e);
	ike_dh_new_fixed(IKE_DH_CURVE25519, v_x25519_priv_a, 32, &x);
	if (!m || !e || !x) {
		CHECK(0, "fixed keys for the rejection tests");
		goto out;
	}
	memset(bad, 0, sizeof bad);
	CHECK(ike_dh_shared(m, bad, 256, out, sizeof out) < 0, "MODP: y = 0 rejected");
	bad[255] = 1;
	CHECK(ike_dh_shared(m, bad, 256, out, sizeof out) < 0, "MODP: y = 1 rejected");
	memcpy(bad, v_modp2048_p, 256);
	CHECK(ike_dh_shared(m, bad, 256, out, sizeof out) < 0, "MODP: y = p rejected");
	bad[255] -= 1;
	CHECK(ike_dh_shared(m, bad, 256, out, sizeof out) < 0, "MODP: y = p-1 rejected");
	memset(bad, 0xff, sizeof bad);
	CHECK(ike_dh_shared(m, bad, 256, out, sizeof out) < 0, "MODP: y > p rejected");
	CHECK(ike_dh_shared(m, v_modp2048_pub_b, 255, out, sizeof out) < 0, "MODP: short KE data rejected");
	CHECK(ike_dh_shared(m, v_modp2048_pub_b, 256, out, 255) < 0, "MODP: short output buffer refused");

	CHECK(ike_dh_shared(e, v_ecp256_off_curve, 64, out, sizeof out) < 0, "ECP 256: point off the curve rejected");
	memset(bad, 0, 64);
	CHECK(ike_dh_shared(e, bad, 64, out, sizeof out) < 0, "ECP 256: (0,0) rejected");
	CHECK(ike_dh_shared(e, v_ecp256_pub_b, 63, out, sizeof out) < 0, "ECP 256: short KE data rejected");
	CHECK(ike_dh_shared(e, v_ecp384_pub_b, 96, out, sizeof out) < 0, "ECP 256: a P-384 point rejected");

	memset(bad, 0, 32);
	CHECK(ike_dh_shared(x, bad, 32, out, sizeof out) < 0, "Curve25519: all-zero (small order) point rejected");
	CHECK(ike_dh_shared(x, v_x25519_pub_b, 31, out, sizeof out) < 0, "Curve25519: short KE data rejected");
	CHECK_EQ(ike_dh_shared(x, v_x25519_pub_b, 32, out, sizeof out), 32, "Curve25519: the good value still works");
out:
	ike_dh_free(m);
	ike_dh_free(e);
	ike_dh_free(x);
}

static void test_prf_plus(void)
{
	/* prf+ of more than one block, and refusing more than 255 blocks. */
	uint8_t a[100], b[40];
	struct ike_bytes seed = { v_ni, 32 };

	CHECK_EQ(ike_prf_plus(IKE_PRF_HMAC_SHA1, v_nr, 32, &seed, 1, a, sizeof a), 0, "prf+ 100 bytes of SHA1");
	CHECK_EQ(ike_prf_plus(IKE_PRF_HMAC_SHA1, v_nr, 32, &seed, 1, b, sizeof b), 0, "prf+ 40 bytes");
	CHECK_MEM(a, b, sizeof b, "prf+ output is a prefix-stable stream");
	uint8_t big[255 * 20 + 1];
	CHECK_EQ(ike_prf_plus(IKE_PRF_HMAC_SHA1, v_nr, 32, &seed, 1, big, sizeof big), -XE_BAD_PARAM,
		"prf+ refuses more than 255 blocks");
	CHECK_EQ(ike_prf_plus(99, v_nr, 32, &seed, 1, b, sizeof b), -XE_NOT_SUPPORTED, "unknown PRF refused");
	CHECK_EQ(ike_prf_len(IKE_PRF_HMAC_SHA2_384), 48, "PRF SHA2-384 output length");
}

struct suite_vec {
	const char *name;
	struct ike_suite s;
	const uint8_t *gir;
	size_t gir_len;
	const uint8_t *skeyseed, *d, *ai, *ar, *ei, *er, *pi, *pr;
	size_t prf_len, integ_len, encr_len;
};

static void check_ike_keys(const struct suite_vec *v)
{
	uint8_t skeyseed[IKE_PRF_MAX];
	struct ike_sa_keys k;

	CHECK_EQ(ike_skeyseed(v->s.prf, v_ni, 32, v_nr, 32, v->gir, v->gir_len, skeyseed), (int)v->prf_len,
		"%s: SKEYSEED length", v->name);
	CHECK_MEM(skeyseed, v->skeyseed, v->prf_len, "%s: SKEYSEED = prf(Ni | Nr, g^ir)", v->name);
	CHECK_EQ(ike_sa_keys_derive(&v->s, skeyseed, v->prf_len, v_ni, 32, v_nr, 32, v_spi_i, v_spi_r, &k), 0,
		"%s: SK_* derived", v->name);
	CHECK(k.prf_len == v->prf_len && k.integ_len == v->integ_len && k.encr_len == v->encr_len,
		"%s: key lengths from the transforms", v->name);
	CHECK_MEM(k.sk_d, v->d, v->prf_len, "%s: SK_d", v->name);
	if (v->integ_len) {
		CHECK_MEM(k.sk_ai, v->ai, v->integ_len, "%s: SK_ai", v->name);
		CHECK_MEM(k.sk_ar, v->ar, v->integ_len, "%s: SK_ar", v->name);
	}
	CHECK_MEM(k.sk_ei, v->ei, v->encr_len, "%s: SK_ei", v->name);
	CHECK_MEM(k.sk_er, v->er, v->encr_len, "%s: SK_er", v->name);
	CHECK_MEM(k.sk_pi, v->pi, v->prf_len, "%s: SK_pi", v->name);
	CHECK_MEM(k.sk_pr, v->pr, v->prf_len, "%s: SK_pr", v->name);
	ike_sa_keys_wipe(&k);
	static const uint8_t zero[sizeof k];
	CHECK_MEM(&k, zero, sizeof k, "%s: wiped keys are zero", v->name);
}

static void test_ike_keys(void)
{
	const struct suite_vec vecs[] = {
		{ "AES-CBC-256/SHA2-256/PRF-SHA2-256/MODP-2048",
			{ IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128, IKE_PRF_HMAC_SHA2_256 },
			v_modp2048_shared, 256, v_cbc256_sha256_skeyseed, v_cbc256_sha256_sk_d, v_cbc256_sha256_sk_ai,
			v_cbc256_sha256_sk_ar, v_cbc256_sha256_sk_ei, v_cbc256_sha256_sk_er, v_cbc256_sha256_sk_pi,
			v_cbc256_sha256_sk_pr, 32, 32, 32 },
		{ "AES-GCM-16-256/PRF-SHA2-384/X25519",
			{ IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_384 },
			v_x25519_shared, 32, v_gcm256_sha384_skeyseed, v_gcm256_sha384_sk_d, NULL, NULL,
			v_gcm256_sha384_sk_ei, v_gcm256_sha384_sk_er, v_gcm256_sha384_sk_pi, v_gcm256_sha384_sk_pr,
			48, 0, 36 },
		{ "AES-CBC-128/SHA1-96/PRF-SHA1/MODP-2048",
			{ IKE_ENCR_AES_CBC, 128, IKE_INTEG_HMAC_SHA1_96, IKE_PRF_HMAC_SHA1 },
			v_modp2048_shared, 256, v_cbc128_sha1_skeyseed, v_cbc128_sha1_sk_d, v_cbc128_sha1_sk_ai,
			v_cbc128_sha1_sk_ar, v_cbc128_sha1_sk_ei, v_cbc128_sha1_sk_er, v_cbc128_sha1_sk_pi,
			v_cbc128_sha1_sk_pr, 20, 20, 16 },
		{ "ChaCha20-Poly1305/PRF-SHA2-512/X25519",
			{ IKE_ENCR_CHACHA20_POLY1305, 0, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_512 },
			v_x25519_shared, 32, v_chacha_sha512_skeyseed, v_chacha_sha512_sk_d, NULL, NULL,
			v_chacha_sha512_sk_ei, v_chacha_sha512_sk_er, v_chacha_sha512_sk_pi, v_chacha_sha512_sk_pr,
			64, 0, 36 },
	};
	for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
		check_ike_keys(&vecs[i]);

	struct ike_sa_keys k;
	const struct ike_suite no_integ = { IKE_ENCR_AES_CBC, 256, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_256 };
	const struct ike_suite aead_integ = { IKE_ENCR_AES_GCM_16, 128, IKE_INTEG_HMAC_SHA2_256_128,
		IKE_PRF_HMAC_SHA2_256 };
	const struct ike_suite bad_bits = { IKE_ENCR_AES_CBC, 192 + 1, IKE_INTEG_HMAC_SHA2_256_128, IKE_PRF_HMAC_SHA2_256 };
	CHECK_EQ(ike_sa_keys_derive(&no_integ, v_ni, 32, v_ni, 32, v_nr, 32, v_spi_i, v_spi_r, &k), -XE_NOT_SUPPORTED,
		"CBC without an integrity transform refused");
	CHECK_EQ(ike_sa_keys_derive(&aead_integ, v_ni, 32, v_ni, 32, v_nr, 32, v_spi_i, v_spi_r, &k),
		-XE_NOT_SUPPORTED, "AEAD with an integrity transform refused");
	CHECK_EQ(ike_sa_keys_derive(&bad_bits, v_ni, 32, v_ni, 32, v_nr, 32, v_spi_i, v_spi_r, &k),
		-XE_NOT_SUPPORTED, "odd AES key length refused");
}

static void test_rekey_and_child(void)
{
	uint8_t skeyseed[IKE_PRF_MAX];
	struct ike_child_keys c;

	CHECK_EQ(ike_skeyseed_rekey(IKE_PRF_HMAC_SHA2_256, v_cbc256_sha256_sk_d, 32, v_x25519_shared, 32,
		v_ni2, sizeof v_ni2, v_nr2, sizeof v_nr2, skeyseed), 32, "rekey SKEYSEED length");
	CHECK_MEM(skeyseed, v_rekey_skeyseed, 32, "rekey SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr)");

	const struct ike_suite gcm = { IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, 0 };
	CHECK_EQ(ike_child_keys_derive(IKE_PRF_HMAC_SHA2_384, v_gcm256_sha384_sk_d, 48, &gcm, NULL, 0,
		v_ni2, sizeof v_ni2, v_nr2, sizeof v_nr2, &c), 0, "child KEYMAT without PFS");
	CHECK(c.encr_len == 36 && c.integ_len == 0, "AES-GCM-256 child: 32-byte key + 4-byte salt, no integrity key");
	CHECK_MEM(c.encr_i, v_child_gcm_encr_i, 36, "child (no PFS): initiator->responder key first");
	CHECK_MEM(c.encr_r, v_child_gcm_encr_r, 36, "child (no PFS): responder->initiator key");

	const struct ike_suite cbc = { IKE_ENCR_AES_CBC, 128, IKE_INTEG_HMAC_SHA2_256_128, 0 };
	CHECK_EQ(ike_child_keys_derive(IKE_PRF_HMAC_SHA2_256, v_cbc256_sha256_sk_d, 32, &cbc, v_modp2048_shared, 256,
		v_ni2, sizeof v_ni2, v_nr2, sizeof v_nr2, &c), 0, "child KEYMAT with PFS");
	CHECK(c.encr_len == 16 && c.integ_len == 32, "AES-CBC-128 + SHA2-256 child key lengths");
	CHECK_MEM(c.encr_i, v_child_pfs_encr_i, 16, "child (PFS): encr i->r");
	CHECK_MEM(c.integ_i, v_child_pfs_integ_i, 32, "child (PFS): integ i->r");
	CHECK_MEM(c.encr_r, v_child_pfs_encr_r, 16, "child (PFS): encr r->i");
	CHECK_MEM(c.integ_r, v_child_pfs_integ_r, 32, "child (PFS): integ r->i");
	ike_child_keys_wipe(&c);
	CHECK(c.encr_len == 0 && c.integ_i[0] == 0, "wiped child keys are zero");
}

static void test_auth_psk(void)
{
	uint8_t octets[256], auth[IKE_PRF_MAX];
	int n = ike_signed_octets(IKE_PRF_HMAC_SHA2_256, v_auth_msg1, sizeof v_auth_msg1, v_nr, 32,
		v_cbc256_sha256_sk_pi, 32, v_auth_idi, sizeof v_auth_idi, octets, sizeof octets);

	CHECK_EQ(n, (int)sizeof v_auth_octets, "signed octets: message | NonceR | prf(SK_pi, IDi') length");
	CHECK_MEM(octets, v_auth_octets, sizeof v_auth_octets, "signed octets equal the independent construction");
	CHECK_EQ(ike_signed_octets(IKE_PRF_HMAC_SHA2_256, v_auth_msg1, sizeof v_auth_msg1, v_nr, 32,
		v_cbc256_sha256_sk_pi, 32, v_auth_idi, sizeof v_auth_idi, octets, 100), -XE_BAD_PARAM,
		"signed octets refuse a short buffer");
	CHECK_EQ(ike_auth_psk(IKE_PRF_HMAC_SHA2_256, v_auth_psk, sizeof v_auth_psk, v_auth_octets,
		sizeof v_auth_octets, auth), 32, "PSK AUTH length");
	CHECK_MEM(auth, v_auth_value, 32, "PSK AUTH = prf(prf(PSK, \"Key Pad for IKEv2\"), octets)");
	CHECK_EQ(ike_auth_psk_verify(IKE_PRF_HMAC_SHA2_256, v_auth_psk, sizeof v_auth_psk, v_auth_octets,
		sizeof v_auth_octets, v_auth_value, 32), 0, "PSK AUTH verifies");
	CHECK_EQ(ike_auth_psk_verify(IKE_PRF_HMAC_SHA2_256, (const uint8_t *)"wrong", 5, v_auth_octets,
		sizeof v_auth_octets, v_auth_value, 32), -XE_ESP_DIGEST_MISMATCH, "a wrong PSK fails AUTH");
	CHECK_EQ(ike_auth_psk_verify(IKE_PRF_HMAC_SHA2_256, v_auth_psk, sizeof v_auth_psk, v_auth_octets,
		sizeof v_auth_octets, v_auth_value, 31), -XE_ESP_DIGEST_MISMATCH, "a truncated AUTH fails");
}

/* The first 32 bytes (IKE header + SK payload header) of a vector message: what the engine hands in. */
static size_t sk_start(uint8_t *msg, const uint8_t *vec)
{
	memcpy(msg, vec, 32);
	return 28;
}

static struct ike_sk *sk_for(const struct ike_suite *s, const uint8_t *ekey, size_t elen, const uint8_t *akey,
	size_t alen)
{
	struct ike_sk *sk = NULL;
	CHECK_EQ(ike_sk_new(s, ekey, elen, akey, alen, &sk), 0, "SK context for encr %u", s->encr);
	return sk;
}

/* AEAD: with the IV counter at 1 our message is byte for byte the independent one; it decrypts; any flipped bit
 * anywhere (header in the AAD, IV, ciphertext, ICV) is refused. */
static void sk_aead(const char *name, const struct ike_suite *s, const uint8_t *key, const uint8_t *vec, size_t vlen)
{
	uint8_t msg[256], plain[256];
	struct ike_sk *sk = sk_for(s, key, 36, NULL, 0);
	if (!sk)
		return;
	size_t off = sk_start(msg, vec);
	CHECK_EQ(ike_sk_overhead(sk, sizeof v_sk_inner), 8 + 1 + 16, "%s: overhead IV + pad length + ICV", name);
	ike_sk_set_iv_counter(sk, 1);
	CHECK_EQ(ike_sk_encrypt(sk, msg, sizeof msg, off, v_sk_inner, sizeof v_sk_inner), (int)vlen,
		"%s: encrypted message length", name);
	CHECK_MEM(msg, vec, vlen, "%s: encrypted message equals the independent one", name);
	CHECK_EQ(ike_sk_decrypt(sk, vec, vlen, off, plain, sizeof plain), (int)sizeof v_sk_inner,
		"%s: independent message decrypts", name);
	CHECK_MEM(plain, v_sk_inner, sizeof v_sk_inner, "%s: to the inner payloads", name);
	int bad = 0;
	for (size_t i = 0; i < vlen; i++) {
		memcpy(msg, vec, vlen);
		msg[i] ^= 0x01;
		int rc = ike_sk_decrypt(sk, msg, vlen, off, plain, sizeof plain);
		bad += rc >= 0;
	}
	CHECK_EQ(bad, 0, "%s: every single-bit change is rejected", name);
	memcpy(msg, vec, vlen);
	msg[40] ^= 0x80;
	CHECK_EQ(ike_sk_decrypt(sk, msg, vlen, off, plain, sizeof plain), -XE_ESP_DIGEST_MISMATCH,
		"%s: tampered ciphertext fails the ICV", name);
	CHECK_EQ(ike_sk_decrypt(sk, vec, vlen - 1, off, plain, sizeof plain), -XE_MALFORMED_PACKET,
		"%s: truncated message refused as malformed", name);
	/* The next message gets the next IV. */
	ike_sk_encrypt(sk, msg, sizeof msg, sk_start(msg, vec), v_sk_inner, sizeof v_sk_inner);
	CHECK(msg[39] == 2 && memcmp(msg + 32, "\0\0\0\0\0\0\0", 7) == 0, "%s: IVs count up", name);
	ike_sk_free(sk);
}

static void test_sk(void)
{
	const struct ike_suite gcm = { IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_384 };
	const struct ike_suite chacha = { IKE_ENCR_CHACHA20_POLY1305, 256, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_512 };
	const struct ike_suite cbc = { IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128, IKE_PRF_HMAC_SHA2_256 };

	sk_aead("AES-GCM-16-256", &gcm, v_gcm256_sha384_sk_ei, v_sk_gcm256_sha384_msg, sizeof v_sk_gcm256_sha384_msg);
	sk_aead("ChaCha20-Poly1305", &chacha, v_chacha_sha512_sk_ei, v_sk_chacha_sha512_msg,
		sizeof v_sk_chacha_sha512_msg);

	/* Two contexts on one key (an engine bug, but a costly one for GCM) do not start on the same IV. */
	struct ike_sk *g1 = sk_for(&gcm, v_gcm256_sha384_sk_ei, 36, NULL, 0);
	struct ike_sk *g2 = sk_for(&gcm, v_gcm256_sha384_sk_ei, 36, NULL, 0);
	uint8_t m1[256], m2[256];
	if (g1 && g2) {
		ike_sk_encrypt(g1, m1, sizeof m1, sk_start(m1, v_sk_gcm256_sha384_msg), v_sk_inner, 8);
		ike_sk_encrypt(g2, m2, sizeof m2, sk_start(m2, v_sk_gcm256_sha384_msg), v_sk_inner, 8);
		CHECK(memcmp(m1 + 32, m2 + 32, 8) != 0 && !(m1[32] & 0x80),
			"AEAD IV counters start at random values below 2^63");
	}
	ike_sk_free(g1);
	ike_sk_free(g2);

	/* CBC: decrypt the independent message (its IV is fixed), then round trips of every length 0..37. */
	uint8_t msg[256], plain[256];
	const uint8_t *vec = v_sk_cbc256_sha256_msg;
	size_t vlen = sizeof v_sk_cbc256_sha256_msg;
	struct ike_sk *sk = sk_for(&cbc, v_cbc256_sha256_sk_ei, 32, v_cbc256_sha256_sk_ai, 32);
	if (!sk)
		return;
	CHECK_EQ(ike_sk_decrypt(sk, vec, vlen, 28, plain, sizeof plain), (int)sizeof v_sk_inner,
		"AES-CBC-256: independent message decrypts");
	CHECK_MEM(plain, v_sk_inner, sizeof v_sk_inner, "AES-CBC-256: to the inner payloads");
	int ok = 0, sized = 0;
	for (size_t n = 0; n <= sizeof v_sk_inner; n++) {
		size_t off = sk_start(msg, vec);
		int len = ike_sk_encrypt(sk, msg, sizeof msg, off, v_sk_inner, n);
		sized += len == (int)(32 + ike_sk_overhead(sk, n) + n) && (len - 32 - 16 - 16) % 16 == 0;
		ok += len > 0 && ike_sk_decrypt(sk, msg, (size_t)len, off, plain, sizeof plain) == (int)n &&
			memcmp(plain, v_sk_inner, n) == 0;
	}
	CHECK_EQ(sized, 38, "AES-CBC-256: padded to whole blocks, lengths as announced");
	CHECK_EQ(ok, 38, "AES-CBC-256: round trips of 0..37 bytes");
	int bad = 0;
	for (size_t i = 0; i < vlen; i++) {
		memcpy(msg, vec, vlen);
		msg[i] ^= 0x01;
		bad += ike_sk_decrypt(sk, msg, vlen, 28, plain, sizeof plain) >= 0;
	}
	CHECK_EQ(bad, 0, "AES-CBC-256: every single-bit change is rejected");
	memcpy(msg, vec, vlen);
	msg[60] ^= 1;
	CHECK_EQ(ike_sk_decrypt(sk, msg, vlen, 28, plain, sizeof plain), -XE_ESP_DIGEST_MISMATCH,
		"AES-CBC-256: tampered ciphertext fails the ICV");
	CHECK_EQ(ike_sk_decrypt(sk, vec, vlen, 28, plain, 10), -XE_MALFORMED_PACKET,
		"AES-CBC-256: a short output buffer is refused");
	/* Two encryptions of the same payload differ: the CBC IV is fresh each time. */
	uint8_t msg2[256];
	ike_sk_encrypt(sk, msg, sizeof msg, sk_start(msg, vec), v_sk_inner, 16);
	ike_sk_encrypt(sk, msg2, sizeof msg2, sk_start(msg2, vec), v_sk_inner, 16);
	CHECK(memcmp(msg + 32, msg2 + 32, 16) != 0, "AES-CBC-256: a fresh IV per message");
	CHECK_EQ(ike_sk_encrypt(sk, msg, 60, 28, v_sk_inner, 37), -XE_BAD_PARAM, "encrypt refuses a short buffer");
	ike_sk_free(sk);

	CHECK_EQ(ike_sk_new(&cbc, v_cbc256_sha256_sk_ei, 16, v_cbc256_sha256_sk_ai, 32, &sk), -XE_BAD_PARAM,
		"SK context refuses a key of the wrong length");
}

/* RFC 7383 fragments: the 8-byte SKF header is authenticated like the SK header. */
static void test_skf(void)
{
	const struct ike_suite gcm = { IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_384 };
	const uint8_t *vec = v_skf_gcm256_msg;
	size_t vlen = sizeof v_skf_gcm256_msg;
	uint8_t msg[256], plain[256];
	struct ike_sk *sk = sk_for(&gcm, v_gcm256_sha384_sk_ei, 36, NULL, 0);

	if (!sk)
		return;
	memcpy(msg, vec, 36);
	ike_sk_set_iv_counter(sk, 1);
	CHECK_EQ(ike_skf_encrypt(sk, msg, sizeof msg, 28, v_sk_inner, sizeof v_sk_inner), (int)vlen, "SKF: length");
	CHECK_MEM(msg, vec, vlen, "SKF: fragment equals the independent one");
	CHECK_EQ(ike_skf_decrypt(sk, vec, vlen, 28, plain, sizeof plain), (int)sizeof v_sk_inner, "SKF: decrypts");
	CHECK_MEM(plain, v_sk_inner, sizeof v_sk_inner, "SKF: to the fragment's data");
	memcpy(msg, vec, vlen);
	msg[33] = 1;
	CHECK_EQ(ike_skf_decrypt(sk, msg, vlen, 28, plain, sizeof plain), -XE_ESP_DIGEST_MISMATCH,
		"SKF: a changed fragment number is rejected");
	CHECK(ike_sk_decrypt(sk, vec, vlen, 28, plain, sizeof plain) < 0, "SKF: not readable as a plain SK payload");
	ike_sk_free(sk);
}

/* The initiator's outbound context pairs with the responder's inbound one and vice versa, and not with its own. */
static void test_sk_pair(void)
{
	const struct ike_suite suite = { IKE_ENCR_AES_CBC, 128, IKE_INTEG_HMAC_SHA1_96, IKE_PRF_HMAC_SHA1 };
	struct ike_sa_keys k;
	struct ike_sk *i_out = NULL, *i_in = NULL, *r_out = NULL, *r_in = NULL;
	uint8_t msg[256], plain[256];

	ike_sa_keys_derive(&suite, v_cbc128_sha1_skeyseed, 20, v_ni, 32, v_nr, 32, v_spi_i, v_spi_r, &k);
	CHECK_EQ(ike_sk_pair_new(&suite, &k, true, &i_out, &i_in), 0, "initiator's SK contexts");
	CHECK_EQ(ike_sk_pair_new(&suite, &k, false, &r_out, &r_in), 0, "responder's SK contexts");
	if (!i_out || !r_out)
		goto out;
	int n = ike_sk_encrypt(i_out, msg, sizeof msg, sk_start(msg, v_sk_cbc256_sha256_msg), v_sk_inner, 20);
	CHECK_EQ(ike_sk_decrypt(r_in, msg, (size_t)n, 28, plain, sizeof plain), 20, "responder reads the initiator");
	CHECK_EQ(ike_sk_decrypt(i_in, msg, (size_t)n, 28, plain, sizeof plain), -XE_ESP_DIGEST_MISMATCH,
		"the initiator's inbound keys are not its outbound ones");
	n = ike_sk_encrypt(r_out, msg, sizeof msg, sk_start(msg, v_sk_cbc256_sha256_msg), v_sk_inner, 33);
	CHECK_EQ(ike_sk_decrypt(i_in, msg, (size_t)n, 28, plain, sizeof plain), 33, "initiator reads the responder");
	CHECK(ike_sk_overhead(r_out, 33) == 16 + 14 + 1 + 12 && n == 28 + 4 + 16 + 48 + 12,
		"AES-CBC-128/HMAC-SHA1-96: IV, 3 blocks, 12-byte ICV");

	/* AES-GCM-16-128: 16-byte key + salt from the same prf+ stream, and a round trip. */
	const struct ike_suite gcm128 = { IKE_ENCR_AES_GCM_16, 128, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA1 };
	struct ike_sa_keys k2;
	struct ike_sk *g_out = NULL, *g_in = NULL;
	ike_sa_keys_derive(&gcm128, v_cbc128_sha1_skeyseed, 20, v_ni, 32, v_nr, 32, v_spi_i, v_spi_r, &k2);
	CHECK(k2.encr_len == 20 && memcmp(k2.sk_ei, v_cbc128_sha1_sk_ai, 20) == 0,
		"AES-GCM-128: SK_ei is 20 bytes, taken right after SK_d (no SK_a*)");
	CHECK_EQ(ike_sk_pair_new(&gcm128, &k2, true, &g_out, &g_in), 0, "AES-GCM-128 SK contexts");
	if (!g_out)
		goto out;
	ike_sk_free(r_out);
	ike_sk_free(r_in);
	ike_sk_pair_new(&gcm128, &k2, false, &r_out, &r_in);
	n = ike_sk_encrypt(g_out, msg, sizeof msg, sk_start(msg, v_sk_cbc256_sha256_msg), v_sk_inner, 37);
	CHECK_EQ(ike_sk_decrypt(r_in, msg, (size_t)n, 28, plain, sizeof plain), 37, "AES-GCM-128 round trip");
	ike_sk_free(g_out);
	ike_sk_free(g_in);
	ike_sa_keys_wipe(&k2);
out:
	ike_sk_free(i_out);
	ike_sk_free(i_in);
	ike_sk_free(r_out);
	ike_sk_free(r_in);
	ike_sa_keys_wipe(&k);
}

/* Arbitrary bytes as SK messages and KE data: refused, never a crash or a leak (run under ASan/UBSan). */
static void test_garbage(void)
{
	const struct ike_suite gcm = { IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, IKE_PRF_HMAC_SHA2_384 };
	const struct ike_suite cbc = { IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128, IKE_PRF_HMAC_SHA2_256 };
	struct ike_sk *a = NULL, *c = NULL;
	struct ike_dh *dh[3] = { NULL, NULL, NULL };
	uint8_t msg[300], plain[300], out[256];
	uint32_t x = 12345;
	int accepted = 0;

	ike_sk_new(&gcm, v_gcm256_sha384_sk_ei, 36, NULL, 0, &a);
	ike_sk_new(&cbc, v_cbc256_sha256_sk_ei, 32, v_cbc256_sha256_sk_ai, 32, &c);
	ike_dh_new_fixed(IKE_DH_MODP2048, v_modp2048_priv_a, 32, &dh[0]);
	ike_dh_new_fixed(IKE_DH_ECP256, v_ecp256_priv_a, 32, &dh[1]);
	ike_dh_new_fixed(IKE_DH_CURVE25519, v_x25519_priv_a, 32, &dh[2]);
	if (!a || !c || !dh[0] || !dh[1] || !dh[2]) {
		CHECK(0, "contexts for the garbage test");
		goto out;
	}
	for (int i = 0; i < 3000; i++) {
		for (size_t j = 0; j < sizeof msg; j++) {
			x = x * 1103515245u + 12345u;
			msg[j] = (uint8_t)(x >> 16);
		}
		size_t len = msg[0] + (size_t)(msg[1] & 1) * 44, off = msg[2] % 64;
		/* Lengths that agree with the buffer, so the checks past them are reached too. */
		if (i & 1 && len >= 32) {
			msg[24] = 0, msg[25] = 0, msg[26] = (uint8_t)(len >> 8), msg[27] = (uint8_t)len;
			off = 28;
			msg[30] = (uint8_t)((len - 28) >> 8), msg[31] = (uint8_t)(len - 28);
		}
		accepted += ike_sk_decrypt(i & 2 ? a : c, msg, len, off, plain, sizeof plain) >= 0;
		/* Random x||y is never on P-256; random MODP values and X25519 strings may well be valid ones. */
		if (i % 10 == 0)
			accepted += ike_dh_shared(dh[1], msg, 64, out, sizeof out) >= 0;
		if (i % 100 == 0) {
			ike_dh_shared(dh[0], msg, 256, out, sizeof out);
			ike_dh_shared(dh[2], msg, 32, out, sizeof out);
		}
	}
	CHECK_EQ(accepted, 0, "random SK messages and random P-256 KE data are all refused");
out:
	ike_sk_free(a);
	ike_sk_free(c);
	for (int i = 0; i < 3; i++)
		ike_dh_free(dh[i]);
}

int main(void)
{
	test_dh();
	test_dh_refusals();
	test_dh_bad_peer();
	test_prf_plus();
	test_ike_keys();
	test_rekey_and_child();
	test_auth_psk();
	test_sk();
	test_skf();
	test_sk_pair();
	test_garbage();
	return check_done();
}
