/* proposal.c: strongSwan-style proposal strings to struct ike_proposal_conf and back. */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "engine.h"

enum tok_kind { T_ENCR, T_INTEG, T_PRF, T_DH, T_ESN };

struct tok {
	const char *name;
	uint8_t kind;
	uint16_t id, bits;
};

/* Names as strongSwan spells them (and the aliases it accepts), in the order format() prefers. */
static const struct tok toks[] = {
	{ "aes128", T_ENCR, IKE_ENCR_AES_CBC, 128 },
	{ "aes256", T_ENCR, IKE_ENCR_AES_CBC, 256 },
	{ "aes128gcm16", T_ENCR, IKE_ENCR_AES_GCM_16, 128 },
	{ "aes256gcm16", T_ENCR, IKE_ENCR_AES_GCM_16, 256 },
	{ "aes128gcm128", T_ENCR, IKE_ENCR_AES_GCM_16, 128 },
	{ "aes256gcm128", T_ENCR, IKE_ENCR_AES_GCM_16, 256 },
	{ "aes128gcm", T_ENCR, IKE_ENCR_AES_GCM_16, 128 },
	{ "aes256gcm", T_ENCR, IKE_ENCR_AES_GCM_16, 256 },
	{ "chacha20poly1305", T_ENCR, IKE_ENCR_CHACHA20_POLY1305, 256 },
	{ "sha1", T_INTEG, IKE_INTEG_HMAC_SHA1_96, 0 },
	{ "sha256", T_INTEG, IKE_INTEG_HMAC_SHA2_256_128, 0 },
	{ "sha384", T_INTEG, IKE_INTEG_HMAC_SHA2_384_192, 0 },
	{ "sha512", T_INTEG, IKE_INTEG_HMAC_SHA2_512_256, 0 },
	{ "sha2_256", T_INTEG, IKE_INTEG_HMAC_SHA2_256_128, 0 },
	{ "sha2_384", T_INTEG, IKE_INTEG_HMAC_SHA2_384_192, 0 },
	{ "sha2_512", T_INTEG, IKE_INTEG_HMAC_SHA2_512_256, 0 },
	{ "prfsha1", T_PRF, IKE_PRF_HMAC_SHA1, 0 },
	{ "prfsha256", T_PRF, IKE_PRF_HMAC_SHA2_256, 0 },
	{ "prfsha384", T_PRF, IKE_PRF_HMAC_SHA2_384, 0 },
	{ "prfsha512", T_PRF, IKE_PRF_HMAC_SHA2_512, 0 },
	{ "modp768", T_DH, IKE_DH_MODP768, 0 },
	{ "modp1024", T_DH, IKE_DH_MODP1024, 0 },
	{ "modp1536", T_DH, IKE_DH_MODP1536, 0 },
	{ "modp2048", T_DH, IKE_DH_MODP2048, 0 },
	{ "modp3072", T_DH, IKE_DH_MODP3072, 0 },
	{ "modp4096", T_DH, IKE_DH_MODP4096, 0 },
	{ "modp6144", T_DH, IKE_DH_MODP6144, 0 },
	{ "modp8192", T_DH, IKE_DH_MODP8192, 0 },
	{ "ecp256", T_DH, IKE_DH_ECP256, 0 },
	{ "ecp384", T_DH, IKE_DH_ECP384, 0 },
	{ "ecp521", T_DH, IKE_DH_ECP521, 0 },
	{ "curve25519", T_DH, IKE_DH_CURVE25519, 0 },
	{ "x25519", T_DH, IKE_DH_CURVE25519, 0 },
	{ "curve448", T_DH, IKE_DH_CURVE448, 0 },
	{ "x448", T_DH, IKE_DH_CURVE448, 0 },
	{ "noesn", T_ESN, 0, 0 },
	{ "esn", T_ESN, 1, 0 },
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

static int add_tok(struct ike_proposal_conf *p, const struct tok *t, bool child)
{
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

static int check_one(struct ike_proposal_conf *p, bool child, bool legacy, int num, char *err, size_t err_len)
{
	bool mixed, aead = has_aead(p, &mixed);

	if (!p->n_encr)
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

static int parse_one(const char *s, size_t len, bool child, bool legacy, struct ike_proposal_conf *p, int num,
	char *err, size_t err_len)
{
	const char *end = s + len;

	memset(p, 0, sizeof *p);
	while (s < end) {
		const char *dash = memchr(s, '-', (size_t)(end - s));
		size_t n = (size_t)((dash ? dash : end) - s);
		const struct tok *t = tok_find(s, n);
		int rc = t ? add_tok(p, t, child) : -IKE_E_BAD_PARAM;

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
	return check_one(p, child, legacy, num, err, err_len);
}

int ike_proposals_parse(const char *text, bool child, bool legacy, struct ike_proposal_conf *out, size_t max,
	char *err, size_t err_len)
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
		rc = parse_one(text, len, child, legacy, &out[n], (int)n + 1, err, err_len);
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
