/* proposal.c: strongSwan-style proposal strings to struct ike_proposal_conf and back. */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "engine.h"

enum tok_kind { T_ENCR, T_INTEG, T_PRF, T_DH, T_ESN };

enum { F_CHILD = 1, F_LEGACY = 2 };   /* child SAs only (the wire has it, our IKE SK code not); legacy: opt-in */

struct tok {
	const char *name;
	uint8_t kind;
	uint16_t id, bits;
	uint8_t flags;
};

/* Names as strongSwan spells them (and the aliases it accepts), in the order format() prefers. */
static const struct tok toks[] = {
	{ "aes128", T_ENCR, IKE_ENCR_AES_CBC, 128, 0 },
	{ "aes256", T_ENCR, IKE_ENCR_AES_CBC, 256, 0 },
	{ "aes128gcm16", T_ENCR, IKE_ENCR_AES_GCM_16, 128, 0 },
	{ "aes256gcm16", T_ENCR, IKE_ENCR_AES_GCM_16, 256, 0 },
	{ "aes128gcm128", T_ENCR, IKE_ENCR_AES_GCM_16, 128, 0 },
	{ "aes256gcm128", T_ENCR, IKE_ENCR_AES_GCM_16, 256, 0 },
	{ "aes128gcm", T_ENCR, IKE_ENCR_AES_GCM_16, 128, 0 },
	{ "aes256gcm", T_ENCR, IKE_ENCR_AES_GCM_16, 256, 0 },
	{ "chacha20poly1305", T_ENCR, IKE_ENCR_CHACHA20_POLY1305, 256, 0 },
	{ "aes128ctr", T_ENCR, IKE_ENCR_AES_CTR, 128, F_CHILD },
	{ "aes256ctr", T_ENCR, IKE_ENCR_AES_CTR, 256, F_CHILD },
	{ "aes128ccm8", T_ENCR, IKE_ENCR_AES_CCM_8, 128, F_CHILD },
	{ "aes128ccm12", T_ENCR, IKE_ENCR_AES_CCM_12, 128, F_CHILD },
	{ "aes128ccm16", T_ENCR, IKE_ENCR_AES_CCM_16, 128, F_CHILD },
	{ "aes256ccm8", T_ENCR, IKE_ENCR_AES_CCM_8, 256, F_CHILD },
	{ "aes256ccm12", T_ENCR, IKE_ENCR_AES_CCM_12, 256, F_CHILD },
	{ "aes256ccm16", T_ENCR, IKE_ENCR_AES_CCM_16, 256, F_CHILD },
	{ "aes128ccm64", T_ENCR, IKE_ENCR_AES_CCM_8, 128, F_CHILD },
	{ "aes128ccm96", T_ENCR, IKE_ENCR_AES_CCM_12, 128, F_CHILD },
	{ "aes128ccm128", T_ENCR, IKE_ENCR_AES_CCM_16, 128, F_CHILD },
	{ "aes256ccm64", T_ENCR, IKE_ENCR_AES_CCM_8, 256, F_CHILD },
	{ "aes256ccm96", T_ENCR, IKE_ENCR_AES_CCM_12, 256, F_CHILD },
	{ "aes256ccm128", T_ENCR, IKE_ENCR_AES_CCM_16, 256, F_CHILD },
	{ "aes128ccm", T_ENCR, IKE_ENCR_AES_CCM_16, 128, F_CHILD },
	{ "aes256ccm", T_ENCR, IKE_ENCR_AES_CCM_16, 256, F_CHILD },
	{ "aes128gmac", T_ENCR, IKE_ENCR_NULL_AUTH_AES_GMAC, 128, F_CHILD },
	{ "aes256gmac", T_ENCR, IKE_ENCR_NULL_AUTH_AES_GMAC, 256, F_CHILD },
	{ "3des", T_ENCR, IKE_ENCR_3DES, 192, F_CHILD | F_LEGACY },
	{ "sha1", T_INTEG, IKE_INTEG_HMAC_SHA1_96, 0, 0 },
	{ "sha256", T_INTEG, IKE_INTEG_HMAC_SHA2_256_128, 0, 0 },
	{ "sha384", T_INTEG, IKE_INTEG_HMAC_SHA2_384_192, 0, 0 },
	{ "sha512", T_INTEG, IKE_INTEG_HMAC_SHA2_512_256, 0, 0 },
	{ "sha2_256", T_INTEG, IKE_INTEG_HMAC_SHA2_256_128, 0, 0 },
	{ "sha2_384", T_INTEG, IKE_INTEG_HMAC_SHA2_384_192, 0, 0 },
	{ "sha2_512", T_INTEG, IKE_INTEG_HMAC_SHA2_512_256, 0, 0 },
	{ "aesxcbc", T_INTEG, IKE_INTEG_AES_XCBC_96, 0, F_CHILD },
	{ "md5", T_INTEG, IKE_INTEG_HMAC_MD5_96, 0, F_CHILD | F_LEGACY },
	/* only reached by format(): in AH proposals the gmac tokens above become these */
	{ "aes128gmac", T_INTEG, IKE_INTEG_AES_128_GMAC, 0, F_CHILD },
	{ "aes256gmac", T_INTEG, IKE_INTEG_AES_256_GMAC, 0, F_CHILD },
	{ "prfsha1", T_PRF, IKE_PRF_HMAC_SHA1, 0, 0 },
	{ "prfsha256", T_PRF, IKE_PRF_HMAC_SHA2_256, 0, 0 },
	{ "prfsha384", T_PRF, IKE_PRF_HMAC_SHA2_384, 0, 0 },
	{ "prfsha512", T_PRF, IKE_PRF_HMAC_SHA2_512, 0, 0 },
	{ "modp768", T_DH, IKE_DH_MODP768, 0, 0 },
	{ "modp1024", T_DH, IKE_DH_MODP1024, 0, 0 },
	{ "modp1536", T_DH, IKE_DH_MODP1536, 0, 0 },
	{ "modp2048", T_DH, IKE_DH_MODP2048, 0, 0 },
	{ "modp3072", T_DH, IKE_DH_MODP3072, 0, 0 },
	{ "modp4096", T_DH, IKE_DH_MODP4096, 0, 0 },
	{ "modp6144", T_DH, IKE_DH_MODP6144, 0, 0 },
	{ "modp8192", T_DH, IKE_DH_MODP8192, 0, 0 },
	{ "ecp256", T_DH, IKE_DH_ECP256, 0, 0 },
	{ "ecp384", T_DH, IKE_DH_ECP384, 0, 0 },
	{ "ecp521", T_DH, IKE_DH_ECP521, 0, 0 },
	{ "curve25519", T_DH, IKE_DH_CURVE25519, 0, 0 },
	{ "x25519", T_DH, IKE_DH_CURVE25519, 0, 0 },
	{ "curve448", T_DH, IKE_DH_CURVE448, 0, 0 },
	{ "x448", T_DH, IKE_DH_CURVE448, 0, 0 },
	{ "noesn", T_ESN, 0, 0, 0 },
	{ "esn", T_ESN, 1, 0, 0 },
};

static const struct tok *tok_find(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
		if (strlen(toks[i].name) == len && strncmp(toks[i].name, s, len) == 0)
			return &toks[i];
	return NULL;
}

static const char *tok_name(uint8_t kind, uint16_t id, uint16_t bits)
{
	for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
		if (toks[i].kind == kind && toks[i].id == id && (kind != T_ENCR || toks[i].bits == bits))
			return toks[i].name;
	return "?";
}

static uint16_t prf_for_integ(uint16_t integ)
{
	switch (integ) {
	case IKE_INTEG_HMAC_SHA1_96: return IKE_PRF_HMAC_SHA1;
	case IKE_INTEG_HMAC_SHA2_384_192: return IKE_PRF_HMAC_SHA2_384;
	case IKE_INTEG_HMAC_SHA2_512_256: return IKE_PRF_HMAC_SHA2_512;
	default: return IKE_PRF_HMAC_SHA2_256;
	}
}

static int add_u16(uint16_t *arr, uint8_t *n, uint16_t v)
{
	for (uint8_t i = 0; i < *n; i++)
		if (arr[i] == v)
			return 0;
	if (*n >= IKE_PROP_MAX_ALGS)
		return -IKE_E_TOO_MANY;
	arr[(*n)++] = v;
	return 0;
}

static int add_tok(struct ike_proposal_conf *p, const struct tok *t, bool child, bool legacy)
{
	if ((t->flags & F_CHILD) && !child)
		return -IKE_E_BAD_PARAM;
	if ((t->flags & F_LEGACY) && !legacy)
		return -IKE_E_NOT_SUPPORTED;
	switch (t->kind) {
	case T_ENCR:
		if (p->n_encr >= IKE_PROP_MAX_ALGS)
			return -IKE_E_TOO_MANY;
		p->encr[p->n_encr].id = t->id;
		p->encr[p->n_encr++].key_bits = t->bits;
		return 0;
	case T_INTEG:
		return add_u16(p->integ, &p->n_integ, t->id);
	case T_PRF:
		return child ? -IKE_E_BAD_PARAM : add_u16(p->prf, &p->n_prf, t->id);
	case T_DH:
		return add_u16(p->dh, &p->n_dh, t->id);
	default:
		if (!child)
			return -IKE_E_BAD_PARAM;
		if (p->n_esn < 2 && (p->n_esn == 0 || p->esn[0] != t->id))
			p->esn[p->n_esn++] = (uint8_t)t->id;
		return 0;
	}
}

static bool has_aead(const struct ike_proposal_conf *p, bool *mixed)
{
	bool aead = false, plain = false;

	for (uint8_t i = 0; i < p->n_encr; i++)
		*(ike_encr_is_aead(p->encr[i].id) ? &aead : &plain) = true;
	*mixed = aead && plain;
	return aead;
}

static int check_one(struct ike_proposal_conf *p, bool child, bool ah, bool legacy, int num, char *err,
	size_t err_len)
{
	bool mixed, aead = has_aead(p, &mixed);

	if (!p->n_encr && !(ah && p->n_integ))
		return snprintf(err, err_len, "proposal %d has no encryption algorithm", num), -IKE_E_BAD_PARAM;
	if (mixed)
		return snprintf(err, err_len, "proposal %d mixes AEAD and non-AEAD encryption", num), -IKE_E_BAD_PARAM;
	if (aead && p->n_integ)
		return snprintf(err, err_len, "proposal %d: an AEAD takes no integrity algorithm", num), -IKE_E_BAD_PARAM;
	if (!aead && !p->n_integ)
		return snprintf(err, err_len, "proposal %d has no integrity algorithm", num), -IKE_E_BAD_PARAM;
	if (!child && !p->n_prf)
		return snprintf(err, err_len, "proposal %d has no PRF (add prfsha256...)", num), -IKE_E_BAD_PARAM;
	if (!child && !p->n_dh)
		return snprintf(err, err_len, "proposal %d has no key exchange group", num), -IKE_E_BAD_PARAM;
	for (uint8_t i = 0; i < p->n_dh; i++)
		if (!ike_dh_supported(p->dh[i], legacy))
			return snprintf(err, err_len, "proposal %d: group '%s' is legacy (not enabled)", num,
				tok_name(T_DH, p->dh[i], 0)), -IKE_E_BAD_PARAM;
	if (child && !p->n_esn)
		p->esn[p->n_esn++] = 0;
	return 0;
}

static int parse_one(const char *s, size_t len, bool child, bool ah, bool legacy, struct ike_proposal_conf *p,
	int num, char *err, size_t err_len)
{
	const char *end = s + len;

	memset(p, 0, sizeof *p);
	while (s < end) {
		const char *dash = memchr(s, '-', (size_t)(end - s));
		size_t n = (size_t)((dash ? dash : end) - s);
		const struct tok *t = tok_find(s, n);
		int rc = t ? add_tok(p, t, child, legacy) : -IKE_E_BAD_PARAM;

		if (rc == -IKE_E_NOT_SUPPORTED)
			return snprintf(err, err_len, "proposal %d: '%s' is a legacy algorithm (not enabled: "
				"options.legacy_algorithms)", num, t->name), -IKE_E_BAD_PARAM;
		if (rc < 0)
			return snprintf(err, err_len, "%s algorithm '%.*s' in proposal %d",
				rc == -IKE_E_TOO_MANY ? "too many of" : t ? "misplaced" : "unknown", (int)(n > 40 ? 40 : n),
				s, num), -IKE_E_BAD_PARAM;
		s += n + (dash ? 1 : 0);
	}
	/* As in strongSwan: without prf* tokens, the integrity algorithms name the PRFs too. */
	if (!child && !p->n_prf)
		for (uint8_t i = 0; i < p->n_integ; i++)
			add_u16(p->prf, &p->n_prf, prf_for_integ(p->integ[i]));
	return check_one(p, child, ah, legacy, num, err, err_len);
}

static int parse_list(const char *text, bool child, bool ah, bool legacy, struct ike_proposal_conf *out,
	size_t max, char *err, size_t err_len)
{
	size_t n = 0;

	if (err_len)
		err[0] = '\0';
	if (!text)
		return snprintf(err, err_len, "no proposal"), -IKE_E_BAD_PARAM;
	while (*text) {
		const char *comma = strchr(text, ',');
		size_t len;
		int rc;

		while (*text == ' ')
			text++;
		len = comma ? (size_t)(comma - text) : strlen(text);
		while (len && text[len - 1] == ' ')
			len--;
		if (n >= max)
			return snprintf(err, err_len, "more than %zu proposals", max), -IKE_E_BAD_PARAM;
		rc = parse_one(text, len, child, ah, legacy, &out[n], (int)n + 1, err, err_len);
		if (rc < 0)
			return rc;
		n++;
		if (!comma)
			break;
		text = comma + 1;
	}
	if (!n)
		return snprintf(err, err_len, "no proposal"), -IKE_E_BAD_PARAM;
	return (int)n;
}

int ike_proposals_parse(const char *text, bool child, bool legacy, struct ike_proposal_conf *out, size_t max,
	char *err, size_t err_len)
{
	return parse_list(text, child, false, legacy, out, max, err, err_len);
}

/* GMAC named in an AH proposal is AH's AES-GMAC integrity (18/20), not ESP's null-cipher GMAC. */
static int ah_one(struct ike_proposal_conf *p, int num, char *err, size_t err_len)
{
	for (uint8_t i = 0; i < p->n_encr; i++) {
		if (p->encr[i].id != IKE_ENCR_NULL_AUTH_AES_GMAC)
			return snprintf(err, err_len, "AH proposal %d has an encryption algorithm (AH only authenticates)",
				num), -IKE_E_BAD_PARAM;
		if (add_u16(p->integ, &p->n_integ, p->encr[i].key_bits == 128 ? IKE_INTEG_AES_128_GMAC :
			IKE_INTEG_AES_256_GMAC) < 0)
			return snprintf(err, err_len, "too many algorithms in AH proposal %d", num), -IKE_E_BAD_PARAM;
	}
	p->n_encr = 0;
	if (!p->n_integ)
		return snprintf(err, err_len, "AH proposal %d has no integrity algorithm", num), -IKE_E_BAD_PARAM;
	return 0;
}

int ike_ah_proposals_parse(const char *text, bool legacy, struct ike_proposal_conf *out, size_t max, char *err,
	size_t err_len)
{
	int n = parse_list(text, true, true, legacy, out, max, err, err_len);

	for (int i = 0; i < n; i++) {
		int rc = ah_one(&out[i], i + 1, err, err_len);

		if (rc < 0)
			return rc;
	}
	return n;
}

static size_t put(char *buf, size_t len, size_t at, const char *name)
{
	int w = snprintf(at < len ? buf + at : NULL, at < len ? len - at : 0, "%s%s", at ? "-" : "", name);

	return at + (w > 0 ? (size_t)w : 0);
}

int ike_proposal_format(const struct ike_proposal_conf *p, bool child, char *buf, size_t len)
{
	size_t at = 0;

	if (len)
		buf[0] = '\0';
	for (uint8_t i = 0; i < p->n_encr; i++)
		at = put(buf, len, at, tok_name(T_ENCR, p->encr[i].id, p->encr[i].key_bits));
	for (uint8_t i = 0; i < p->n_integ; i++)
		at = put(buf, len, at, tok_name(T_INTEG, p->integ[i], 0));
	for (uint8_t i = 0; !child && i < p->n_prf; i++)
		at = put(buf, len, at, tok_name(T_PRF, p->prf[i], 0));
	for (uint8_t i = 0; i < p->n_dh; i++)
		at = put(buf, len, at, tok_name(T_DH, p->dh[i], 0));
	if (child && p->n_esn == 1 && p->esn[0] == 1)
		at = put(buf, len, at, "esn");
	return (int)at;
}

/* ---- offering, choosing, answering ---- */

static const struct ike_proposal_conf def_ike[] = {
	{ .n_encr = 1, .encr = { { IKE_ENCR_AES_GCM_16, 256 } }, .n_prf = 1, .prf = { IKE_PRF_HMAC_SHA2_256 },
	  .n_dh = 2, .dh = { IKE_DH_CURVE25519, IKE_DH_ECP256 } },
	{ .n_encr = 1, .encr = { { IKE_ENCR_AES_CBC, 256 } }, .n_integ = 1, .integ = { IKE_INTEG_HMAC_SHA2_256_128 },
	  .n_prf = 1, .prf = { IKE_PRF_HMAC_SHA2_256 }, .n_dh = 2, .dh = { IKE_DH_MODP3072, IKE_DH_MODP2048 } },
};
static const struct ike_proposal_conf def_esp[] = {
	{ .n_encr = 1, .encr = { { IKE_ENCR_AES_GCM_16, 256 } }, .n_esn = 1 },
	{ .n_encr = 1, .encr = { { IKE_ENCR_AES_CBC, 256 } }, .n_integ = 1, .integ = { IKE_INTEG_HMAC_SHA2_256_128 },
	  .n_esn = 1 },
};

static const struct ike_proposal_conf def_ah[] = {
	{ .n_integ = 1, .integ = { IKE_INTEG_HMAC_SHA2_256_128 }, .n_esn = 1 },
};

static const struct ike_proposal_conf *defaults(uint8_t protocol, size_t *n)
{
	if (protocol == IKE_PROTO_IKE)
		return ike_default_ike(n);
	if (protocol == IKE_PROTO_AH) {
		*n = sizeof def_ah / sizeof def_ah[0];
		return def_ah;
	}
	return ike_default_esp(n);
}

const struct ike_proposal_conf *ike_default_ike(size_t *n)
{
	*n = sizeof def_ike / sizeof def_ike[0];
	return def_ike;
}

const struct ike_proposal_conf *ike_default_esp(size_t *n)
{
	*n = sizeof def_esp / sizeof def_esp[0];
	return def_esp;
}

uint16_t ike_proposals_first_dh(const struct ike_proposal_conf *confs, size_t n, bool child)
{
	if (!n && !child)
		confs = ike_default_ike(&n);
	for (size_t i = 0; i < n; i++)
		if (confs[i].n_dh)
			return confs[i].dh[0];
	return 0;
}

bool ike_proposals_have_dh(const struct ike_proposal_conf *confs, size_t n, uint16_t group)
{
	if (!n)
		confs = ike_default_ike(&n);
	for (size_t i = 0; i < n; i++)
		for (uint8_t j = 0; j < confs[i].n_dh; j++)
			if (confs[i].dh[j] == group)
				return true;
	return false;
}

static bool has_u16(const uint16_t *arr, uint8_t n, uint16_t v)
{
	for (uint8_t i = 0; i < n; i++)
		if (arr[i] == v)
			return true;
	return false;
}

/* One proposal of confs has every algorithm of the IKE suite and group (as proposal_match: an AEAD needs no
 * integrity algorithm). */
bool ike_proposals_allow(const struct ike_proposal_conf *confs, size_t n, const struct ike_suite *suite,
	uint16_t dh, bool legacy)
{
	if (!n)
		confs = ike_default_ike(&n);
	if (!ike_dh_supported(dh, legacy))
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct ike_proposal_conf *c = &confs[i];
		bool encr = false;

		for (uint8_t j = 0; j < c->n_encr; j++)
			encr |= c->encr[j].id == suite->encr && c->encr[j].key_bits == suite->key_bits;
		if (encr && has_u16(c->prf, c->n_prf, suite->prf) && has_u16(c->dh, c->n_dh, dh) &&
		    (ike_encr_is_aead(suite->encr) || has_u16(c->integ, c->n_integ, suite->integ)))
			return true;
	}
	return false;
}

static struct ike_transform *tr_next(struct ike_msg *m)
{
	return m->n_transforms_used < IKE_MAX_TRANSFORMS ? &m->transform_pool[m->n_transforms_used++] : NULL;
}

static int tr_add(struct ike_msg *m, struct ike_proposal *p, uint8_t type, uint16_t id, uint16_t key_len)
{
	struct ike_transform *t = tr_next(m);

	if (!t)
		return -IKE_E_TOO_MANY;
	*t = (struct ike_transform){ .type = type, .id = id, .key_len = key_len };
	if (!p->n_transforms)
		p->transforms = t;
	p->n_transforms++;
	return 0;
}

/* RFC 7296 3.3.5: the Key Length attribute only for ciphers with variable key lengths (not ChaCha20, not 3DES). */
static uint16_t key_len_attr(uint16_t encr, uint16_t bits)
{
	return encr == IKE_ENCR_CHACHA20_POLY1305 || encr == IKE_ENCR_3DES ? 0 : bits;
}

static int proposal_fill(struct ike_msg *m, struct ike_proposal *p, const struct ike_proposal_conf *c,
	uint8_t protocol, bool with_dh)
{
	int rc = 0;

	for (uint8_t i = 0; i < c->n_encr && !rc; i++)
		rc = tr_add(m, p, IKE_TR_ENCR, c->encr[i].id, key_len_attr(c->encr[i].id, c->encr[i].key_bits));
	for (uint8_t i = 0; protocol == IKE_PROTO_IKE && i < c->n_prf && !rc; i++)
		rc = tr_add(m, p, IKE_TR_PRF, c->prf[i], 0);
	for (uint8_t i = 0; i < c->n_integ && !rc; i++)
		rc = tr_add(m, p, IKE_TR_INTEG, c->integ[i], 0);
	for (uint8_t i = 0; with_dh && i < c->n_dh && !rc; i++)
		rc = tr_add(m, p, IKE_TR_DH, c->dh[i], 0);
	for (uint8_t i = 0; protocol != IKE_PROTO_IKE && i < c->n_esn && !rc; i++)
		rc = tr_add(m, p, IKE_TR_ESN, c->esn[i], 0);
	if (protocol != IKE_PROTO_IKE && !c->n_esn && !rc)
		rc = tr_add(m, p, IKE_TR_ESN, 0, 0);
	return rc;
}

int ike_sa_payload_add(struct ike_msg *m, const struct ike_proposal_conf *confs, size_t n, uint8_t protocol,
	const uint8_t *spi, size_t spi_len, bool with_dh)
{
	struct ike_payload *pl;

	if (!n)
		confs = defaults(protocol, &n);
	pl = ike_msg_add(m, IKE_PL_SA);
	if (!pl || m->n_proposals_used + n > IKE_MAX_PROPOSALS)
		return -IKE_E_TOO_MANY;
	pl->u.sa.proposals = &m->proposal_pool[m->n_proposals_used];
	for (size_t i = 0; i < n; i++) {
		struct ike_proposal *p = &m->proposal_pool[m->n_proposals_used++];
		int rc;

		*p = (struct ike_proposal){ .num = (uint8_t)(i + 1), .protocol = protocol,
			.spi = { spi, (uint32_t)spi_len } };
		rc = proposal_fill(m, p, &confs[i], protocol, with_dh);
		if (rc < 0)
			return rc;
		pl->u.sa.n_proposals++;
	}
	return 0;
}

/* Our first algorithm of a type that their proposal also has; 0 when none. AEAD-free types say "none" too. */
static bool tr_has(const struct ike_proposal *p, uint8_t type, uint16_t id, uint16_t key_len)
{
	for (uint8_t i = 0; i < p->n_transforms; i++) {
		const struct ike_transform *t = &p->transforms[i];

		if (t->type == type && t->id == id && !t->unknown_attr && t->key_len == key_len)
			return true;
	}
	return false;
}

static size_t tr_count(const struct ike_proposal *p, uint8_t type)
{
	size_t n = 0;

	for (uint8_t i = 0; i < p->n_transforms; i++)
		n += p->transforms[i].type == type;
	return n;
}

static bool pick_u16(const struct ike_proposal *p, uint8_t type, const uint16_t *ours, uint8_t n, uint16_t *out)
{
	for (uint8_t i = 0; i < n; i++) {
		if (tr_has(p, type, ours[i], 0)) {
			*out = ours[i];
			return true;
		}
	}
	return false;
}

static bool pick_encr(const struct ike_proposal *p, const struct ike_proposal_conf *c, struct ike_choice *out)
{
	for (uint8_t i = 0; i < c->n_encr; i++) {
		if (tr_has(p, IKE_TR_ENCR, c->encr[i].id, key_len_attr(c->encr[i].id, c->encr[i].key_bits))) {
			out->suite.encr = c->encr[i].id;
			out->suite.key_bits = c->encr[i].key_bits;
			return true;
		}
	}
	return false;
}

static bool pick_integ(const struct ike_proposal *p, const struct ike_proposal_conf *c, struct ike_choice *out)
{
	if (ike_encr_is_aead(out->suite.encr)) {
		out->suite.integ = IKE_INTEG_NONE;
		return !tr_count(p, IKE_TR_INTEG) || tr_has(p, IKE_TR_INTEG, IKE_INTEG_NONE, 0);
	}
	return pick_u16(p, IKE_TR_INTEG, c->integ, c->n_integ, &out->suite.integ);
}

static bool pick_dh(const struct ike_proposal *p, const struct ike_proposal_conf *c, bool legacy,
	struct ike_choice *out)
{
	out->dh = IKE_DH_NONE;
	if (!c->n_dh)
		return !tr_count(p, IKE_TR_DH) || tr_has(p, IKE_TR_DH, IKE_DH_NONE, 0);
	if (!pick_u16(p, IKE_TR_DH, c->dh, c->n_dh, &out->dh))
		return false;
	return ike_dh_supported(out->dh, legacy);
}

static bool pick_esn(const struct ike_proposal *p, const struct ike_proposal_conf *c, struct ike_choice *out)
{
	static const uint8_t no_esn = 0;
	const uint8_t *esn = c->n_esn ? c->esn : &no_esn;
	uint8_t n = c->n_esn ? c->n_esn : 1;

	for (uint8_t i = 0; i < n; i++) {
		if (tr_has(p, IKE_TR_ESN, esn[i], 0) || (!esn[i] && !tr_count(p, IKE_TR_ESN))) {
			out->esn = esn[i];
			return true;
		}
	}
	return false;
}

static bool proposal_match(const struct ike_proposal *p, const struct ike_proposal_conf *c, uint8_t protocol,
	bool legacy, bool with_dh, struct ike_choice *out)
{
	size_t want_spi = protocol == IKE_PROTO_IKE ? 0 : 4;

	memset(out, 0, sizeof *out);
	if (p->protocol != protocol || (p->spi.len != want_spi && !(protocol == IKE_PROTO_IKE && p->spi.len == 8)))
		return false;
	if (protocol == IKE_PROTO_AH) {
		if (tr_count(p, IKE_TR_ENCR) || !pick_u16(p, IKE_TR_INTEG, c->integ, c->n_integ, &out->suite.integ))
			return false;
	} else if (!c->n_encr || !pick_encr(p, c, out) || !pick_integ(p, c, out)) {
		return false;
	}
	if (protocol == IKE_PROTO_IKE && !pick_u16(p, IKE_TR_PRF, c->prf, c->n_prf, &out->suite.prf))
		return false;
	if (with_dh && !pick_dh(p, c, legacy, out))
		return false;
	if (protocol != IKE_PROTO_IKE && !pick_esn(p, c, out))
		return false;
	out->num = p->num;
	out->spi_len = (uint8_t)p->spi.len;
	memcpy(out->spi, p->spi.p, p->spi.len);
	return true;
}

static const struct ike_sa_payload *sa_payload(const struct ike_msg *m)
{
	const struct ike_payload *pl = ike_msg_find(m, IKE_PL_SA, 0, 0);

	return pl ? &pl->u.sa : NULL;
}

int ike_proposal_choose(const struct ike_msg *m, const struct ike_proposal_conf *confs, size_t n, uint8_t protocol,
	bool legacy, bool with_dh, struct ike_choice *out)
{
	const struct ike_sa_payload *sa = sa_payload(m);

	if (!n)
		confs = defaults(protocol, &n);
	for (size_t i = 0; sa && i < n; i++)
		for (uint8_t j = 0; j < sa->n_proposals; j++)
			if (proposal_match(&sa->proposals[j], &confs[i], protocol, legacy, with_dh, out))
				return 0;
	return -IKE_E_NO_PROPOSAL_CHOSEN;
}

int ike_proposal_accept(const struct ike_msg *m, const struct ike_proposal_conf *confs, size_t n, uint8_t protocol,
	bool legacy, bool with_dh, struct ike_choice *out)
{
	const struct ike_sa_payload *sa = sa_payload(m);

	if (!sa || sa->n_proposals != 1)
		return -IKE_E_NO_PROPOSAL_CHOSEN;
	for (uint8_t t = IKE_TR_ENCR; t <= IKE_TR_ESN; t++)
		if (tr_count(&sa->proposals[0], t) > 1)
			return -IKE_E_NO_PROPOSAL_CHOSEN;
	return ike_proposal_choose(m, confs, n, protocol, legacy, with_dh, out);
}

int ike_choice_add(struct ike_msg *m, const struct ike_choice *c, uint8_t protocol, const uint8_t *spi,
	size_t spi_len)
{
	struct ike_proposal_conf one = { .n_encr = c->suite.encr ? 1 : 0,
		.encr = { { c->suite.encr, c->suite.key_bits } } };
	int rc;

	if (c->suite.integ)
		one.integ[one.n_integ++] = c->suite.integ;
	if (protocol == IKE_PROTO_IKE)
		one.prf[one.n_prf++] = c->suite.prf;
	if (c->dh)
		one.dh[one.n_dh++] = c->dh;
	one.esn[one.n_esn++] = c->esn;
	rc = ike_sa_payload_add(m, &one, 1, protocol, spi, spi_len, true);
	if (rc == 0)
		m->proposal_pool[m->n_proposals_used - 1].num = c->num;
	return rc;
}

int ike_choice_format(const struct ike_choice *c, bool child, char *buf, size_t len)
{
	struct ike_proposal_conf one = { .n_encr = c->suite.encr ? 1 : 0,
		.encr = { { c->suite.encr, c->suite.key_bits } } };

	if (c->suite.integ)
		one.integ[one.n_integ++] = c->suite.integ;
	if (!child)
		one.prf[one.n_prf++] = c->suite.prf;
	if (c->dh)
		one.dh[one.n_dh++] = c->dh;
	one.esn[one.n_esn++] = c->esn;
	return ike_proposal_format(&one, child, buf, len);
}
