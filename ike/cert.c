/* ike/cert.c: identities, X.509 credentials and CA store, chain validation, RFC 7427 signature AUTH (OpenSSL). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "msg.h"

/* ---------------------------------------------------------------- identities */

static int id_set(struct ike_ident *out, uint8_t type, const void *data, size_t len)
{
	if (len == 0 || len > sizeof out->data)
		return -IKE_E_BAD_PARAM;
	out->type = type;
	out->len = (uint16_t)len;
	memcpy(out->data, data, len);
	return 0;
}

/* Attribute names people write that OpenSSL spells differently. */
static const char *dn_attr_name(const char *name)
{
	if (!strcasecmp(name, "E") || !strcasecmp(name, "email"))
		return "emailAddress";
	if (!strcasecmp(name, "SN") || !strcasecmp(name, "serialNumber"))
		return "serialNumber";
	return name;
}

/* One "attr=value" of a DN, with surrounding spaces trimmed; "\," inside the value is a comma. */
static int dn_add_rdn(X509_NAME *name, char *rdn)
{
	char *eq = strchr(rdn, '='), *attr = rdn, *val, *end;

	if (!eq)
		return -IKE_E_BAD_PARAM;
	*eq = '\0';
	val = eq + 1;
	while (isspace((unsigned char)*attr))
		attr++;
	for (end = eq; end > attr && isspace((unsigned char)end[-1]); end--)
		end[-1] = '\0';
	while (isspace((unsigned char)*val))
		val++;
	for (end = val + strlen(val); end > val && isspace((unsigned char)end[-1]); end--)
		end[-1] = '\0';
	if (!*attr || !*val)
		return -IKE_E_BAD_PARAM;
	int nid = OBJ_txt2nid(dn_attr_name(attr));
	if (nid == NID_undef && strlen(attr) <= 2) {   /* "cn", "o", "c": OpenSSL's short names are upper case */
		char up[3] = { 0 };
		for (size_t i = 0; attr[i]; i++)
			up[i] = (char)toupper((unsigned char)attr[i]);
		nid = OBJ_txt2nid(up);
	}
	if (nid == NID_undef)
		return -IKE_E_BAD_PARAM;
	/* Country is a PrintableString everywhere (RFC 5280); the rest UTF8String, as openssl req and strongSwan do. */
	if (!X509_NAME_add_entry_by_NID(name, nid, nid == NID_countryName ? V_ASN1_PRINTABLESTRING : MBSTRING_UTF8,
			(const unsigned char *)val, -1, -1, 0))
		return -IKE_E_BAD_PARAM;
	return 0;
}

static int dn_parse(const char *text, struct ike_ident *out)
{
	size_t n = strlen(text);
	char *buf = malloc(n + 1), *rdn;
	X509_NAME *name = X509_NAME_new();
	int rc = buf && name ? 0 : -IKE_E_BAD_PARAM;

	for (size_t i = 0, j = 0; rc == 0 && i <= n; i++) {
		if (text[i] == '\\' && text[i + 1] == ',') {
			buf[j++] = ',';
			i++;
		} else if (text[i] == ',' || text[i] == '\0') {
			buf[j] = '\0';
			rdn = buf;
			rc = dn_add_rdn(name, rdn);
			j = 0;
		} else {
			buf[j++] = text[i];
		}
	}
	if (rc == 0) {
		unsigned char *der = NULL;
		int len = i2d_X509_NAME(name, &der);
		rc = len > 0 ? id_set(out, IKE_ID_DER_ASN1_DN, der, (size_t)len) : -IKE_E_BAD_PARAM;
		OPENSSL_free(der);
	}
	X509_NAME_free(name);
	free(buf);
	return rc;
}

int ike_id_parse(const char *text, struct ike_ident *out)
{
	uint8_t addr[16];

	memset(out, 0, sizeof *out);
	if (!text || !*text)
		return -IKE_E_BAD_PARAM;
	if (!strcmp(text, "%any") || !strcmp(text, "%any6"))
		return 0;
	if (!strncasecmp(text, "ipv4:", 5))
		return inet_pton(AF_INET, text + 5, addr) == 1 ? id_set(out, IKE_ID_IPV4_ADDR, addr, 4) : -IKE_E_BAD_PARAM;
	if (!strncasecmp(text, "ipv6:", 5))
		return inet_pton(AF_INET6, text + 5, addr) == 1 ? id_set(out, IKE_ID_IPV6_ADDR, addr, 16) : -IKE_E_BAD_PARAM;
	if (!strncasecmp(text, "fqdn:", 5))
		return id_set(out, IKE_ID_FQDN, text + 5, strlen(text + 5));
	if (!strncasecmp(text, "email:", 6))
		return id_set(out, IKE_ID_RFC822_ADDR, text + 6, strlen(text + 6));
	if (!strncasecmp(text, "dn:", 3))
		return dn_parse(text + 3, out);
	if (inet_pton(AF_INET, text, addr) == 1)
		return id_set(out, IKE_ID_IPV4_ADDR, addr, 4);
	if (inet_pton(AF_INET6, text, addr) == 1)
		return id_set(out, IKE_ID_IPV6_ADDR, addr, 16);
	if (strchr(text, '='))
		return dn_parse(text, out);
	if (text[0] == '@')   /* strongSwan: "@name" is always an FQDN */
		return id_set(out, IKE_ID_FQDN, text + 1, strlen(text + 1));
	if (strchr(text, '@'))
		return id_set(out, IKE_ID_RFC822_ADDR, text, strlen(text));
	for (const char *c = text; *c; c++)
		if (isspace((unsigned char)*c) || !isprint((unsigned char)*c))
			return -IKE_E_BAD_PARAM;
	return id_set(out, IKE_ID_FQDN, text, strlen(text));
}

int ike_id_from_payload(uint8_t type, const uint8_t *data, size_t len, struct ike_ident *out)
{
	memset(out, 0, sizeof *out);
	switch (type) {
	case IKE_ID_IPV4_ADDR:
		if (len != 4)
			return -IKE_E_INVALID_SYNTAX;
		break;
	case IKE_ID_IPV6_ADDR:
		if (len != 16)
			return -IKE_E_INVALID_SYNTAX;
		break;
	case IKE_ID_FQDN:
	case IKE_ID_RFC822_ADDR:
	case IKE_ID_DER_ASN1_DN:
	case IKE_ID_KEY_ID:
		break;
	default:
		return -IKE_E_NOT_SUPPORTED;
	}
	if (len == 0)
		return -IKE_E_INVALID_SYNTAX;
	return len > sizeof out->data ? -IKE_E_TOO_MANY : id_set(out, type, data, len);
}

static X509_NAME *dn_decode(const struct ike_ident *id)
{
	const unsigned char *p = id->data;

	return id->type == IKE_ID_DER_ASN1_DN ? d2i_X509_NAME(NULL, &p, id->len) : NULL;
}

/* Text of a name as "C=CH, O=Example, CN=gw" (RFC 2253 escaping, UTF-8 kept, in the certificate's order). */
static int name_format(const X509_NAME *name, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	unsigned long flags = (ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_FN_SN |
		XN_FLAG_DUMP_UNKNOWN_FIELDS;
	char *text;
	int n = -1;

	if (bio && X509_NAME_print_ex(bio, name, 0, flags) >= 0) {
		long tl = BIO_get_mem_data(bio, &text);
		n = snprintf(buf, len, "%.*s", (int)tl, text);
	}
	BIO_free(bio);
	return n;
}

static int text_format(const uint8_t *p, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char tmp[5];
		int w = isprint(p[i]) && p[i] != '\\' ? snprintf(tmp, sizeof tmp, "%c", p[i])
			: snprintf(tmp, sizeof tmp, "\\x%02x", p[i]);
		if (o + (size_t)w < len)
			memcpy(buf + o, tmp, (size_t)w);
		o += (size_t)w;
	}
	if (len)
		buf[o < len ? o : len - 1] = '\0';
	return (int)o;
}

int ike_id_format(const struct ike_ident *id, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	switch (id->type) {
	case IKE_ID_ANY:
		return snprintf(buf, len, "%%any");
	case IKE_ID_IPV4_ADDR:
	case IKE_ID_IPV6_ADDR:
		inet_ntop(id->type == IKE_ID_IPV4_ADDR ? AF_INET : AF_INET6, id->data, addr, sizeof addr);
		return snprintf(buf, len, "%s", addr);
	case IKE_ID_FQDN:
	case IKE_ID_RFC822_ADDR:
		return text_format(id->data, id->len, buf, len);
	case IKE_ID_DER_ASN1_DN: {
		X509_NAME *name = dn_decode(id);
		int n = name ? name_format(name, buf, len) : -1;
		X509_NAME_free(name);
		if (n >= 0)
			return n;
		break;
	}
	default:
		break;
	}
	int n = snprintf(buf, len, "%s:", ike_id_type_name(id->type) ? ike_id_type_name(id->type) : "ID");
	for (size_t i = 0; i < id->len; i++)
		n += snprintf(n >= 0 && (size_t)n < len ? buf + n : NULL, n >= 0 && (size_t)n < len ? len - (size_t)n : 0,
			"%02x", id->data[i]);
	return n;
}

/* "*.example.org" matches "gw.example.org", "*@example.org" matches "a@example.org", "*" anything of the type. */
static bool text_match(const struct ike_ident *conf, const struct ike_ident *got)
{
	if (conf->data[0] == '*') {
		size_t suffix = conf->len - 1u;
		return got->len >= suffix && !strncasecmp((const char *)conf->data + 1,
			(const char *)got->data + got->len - suffix, suffix);
	}
	return conf->len == got->len && !strncasecmp((const char *)conf->data, (const char *)got->data, conf->len);
}

static bool dn_equal(const struct ike_ident *a, const struct ike_ident *b)
{
	X509_NAME *na = dn_decode(a), *nb = dn_decode(b);
	bool eq = na && nb && X509_NAME_cmp(na, nb) == 0;

	X509_NAME_free(na);
	X509_NAME_free(nb);
	return eq;
}

bool ike_id_match(const struct ike_ident *conf, const struct ike_ident *received)
{
	if (!conf || conf->type == IKE_ID_ANY)
		return true;
	if (!received || conf->type != received->type)
		return false;
	switch (conf->type) {
	case IKE_ID_FQDN:
	case IKE_ID_RFC822_ADDR:
		return text_match(conf, received);
	case IKE_ID_DER_ASN1_DN:
		return dn_equal(conf, received);
	default:
		return conf->len == received->len && !memcmp(conf->data, received->data, conf->len);
	}
}

static X509 *cert_decode(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;

	if (!der || len == 0 || len > INT32_MAX)
		return NULL;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (x && p != der + len) {   /* trailing bytes: not one certificate */
		X509_free(x);
		return NULL;
	}
	return x;
}

static bool san_has(X509 *x, const struct ike_ident *id)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; sans && !found && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const ASN1_STRING *s = NULL;
		bool text = true;

		if (gn->type == GEN_IPADD && (id->type == IKE_ID_IPV4_ADDR || id->type == IKE_ID_IPV6_ADDR)) {
			s = gn->d.iPAddress;
			text = false;
		} else if (gn->type == GEN_DNS && id->type == IKE_ID_FQDN) {
			s = gn->d.dNSName;
		} else if (gn->type == GEN_EMAIL && id->type == IKE_ID_RFC822_ADDR) {
			s = gn->d.rfc822Name;
		}
		if (!s || (size_t)ASN1_STRING_length(s) != id->len)
			continue;
		found = text ? !strncasecmp((const char *)ASN1_STRING_get0_data(s), (const char *)id->data, id->len)
			: !memcmp(ASN1_STRING_get0_data(s), id->data, id->len);
	}
	GENERAL_NAMES_free(sans);
	return found;
}

int ike_id_matches_cert(const struct ike_ident *id, const uint8_t *cert_der, size_t cert_len)
{
	X509 *x = cert_decode(cert_der, cert_len);
	bool ok = false;

	if (!x)
		return -IKE_E_CERT_INVALID;
	if (id->type == IKE_ID_DER_ASN1_DN) {
		X509_NAME *name = dn_decode(id);
		ok = name && X509_NAME_cmp(name, X509_get_subject_name(x)) == 0;
		X509_NAME_free(name);
	} else if (id->type != IKE_ID_ANY) {
		ok = san_has(x, id);
	}
	X509_free(x);
	return ok ? 0 : -IKE_E_ID_MISMATCH;
}

/* ---------------------------------------------------------------- PEM helpers */

static void set_err(char *err, size_t err_len, const char *what)
{
	if (err && err_len)
		snprintf(err, err_len, "%s", what);
}

/* Every certificate in a PEM text, in order; NULL when there is none or one is broken. */
static STACK_OF(X509) *pem_certs(const char *pem)
{
	BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *x;

	if (!bio || !certs)
		goto fail;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			goto fail;
		}
	/* The loop ends on "no start line" after the last one; anything else is a broken certificate. */
	unsigned long e = ERR_peek_last_error();
	if (sk_X509_num(certs) == 0 || (e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE))
		goto fail;
	ERR_clear_error();
	BIO_free(bio);
	return certs;
fail:
	ERR_clear_error();
	BIO_free(bio);
	sk_X509_pop_free(certs, X509_free);
	return NULL;
}

static int der_of(X509 *x, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509(x, &p);

	if (n <= 0)
		return -IKE_E_CERT_INVALID;
	*der = p;
	*len = (size_t)n;
	return 0;
}

/* SHA-1 of a certificate's DER SubjectPublicKeyInfo: the CERTREQ "CA" hash (RFC 7296 3.7). */
static int spki_sha1(X509 *x, uint8_t out[20])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	int rc = n > 0 && EVP_Digest(der, (size_t)n, out, NULL, EVP_sha1(), NULL) ? 0 : -IKE_E_CERT_INVALID;

	OPENSSL_free(der);
	return rc;
}

/* ---------------------------------------------------------------- credentials */

struct ike_cred {
	STACK_OF(X509) *chain;   /* 0: end entity */
	EVP_PKEY *key;
	size_t n;
	uint8_t *der[16];
	size_t der_len[16];
	int curve_nid;           /* EC keys */
};

static int key_kind(EVP_PKEY *key, int *curve_nid)
{
	char group[64];

	*curve_nid = NID_undef;
	if (EVP_PKEY_is_a(key, "RSA"))
		return EVP_PKEY_bits(key) >= 2048 ? 0 : -IKE_E_NOT_SUPPORTED;
	if (!EVP_PKEY_is_a(key, "EC") ||
			!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL))
		return -IKE_E_NOT_SUPPORTED;
	*curve_nid = OBJ_sn2nid(group);
	if (*curve_nid == NID_undef)
		*curve_nid = EC_curve_nist2nid(group);
	return *curve_nid == NID_X9_62_prime256v1 || *curve_nid == NID_secp384r1 || *curve_nid == NID_secp521r1 ? 0
		: -IKE_E_NOT_SUPPORTED;
}

int ike_cred_new(const char *cert_pem, const char *key_pem, struct ike_cred **out, char *err, size_t err_len)
{
	struct ike_cred *c = calloc(1, sizeof *c);
	BIO *bio = key_pem ? BIO_new_mem_buf(key_pem, -1) : NULL;
	int rc = -IKE_E_CERT_INVALID;

	*out = NULL;
	if (!c)
		goto done;
	c->chain = pem_certs(cert_pem);
	if (!c->chain) {
		set_err(err, err_len, "certificate: no PEM certificate, or one that cannot be parsed");
		goto done;
	}
	if ((size_t)sk_X509_num(c->chain) > sizeof c->der / sizeof c->der[0]) {
		set_err(err, err_len, "certificate: more than 16 certificates in the chain");
		goto done;
	}
	c->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	if (!c->key) {
		set_err(err, err_len, "private_key: no unencrypted PEM private key");
		goto done;
	}
	if ((rc = key_kind(c->key, &c->curve_nid)) < 0) {
		set_err(err, err_len, "private_key: not RSA (2048 bits or more) or ECDSA P-256/384/521");
		goto done;
	}
	rc = -IKE_E_CERT_INVALID;
	if (X509_check_private_key(sk_X509_value(c->chain, 0), c->key) != 1) {
		set_err(err, err_len, "private_key: does not match the certificate");
		goto done;
	}
	for (int i = 0; i < sk_X509_num(c->chain); i++, c->n++)
		if (der_of(sk_X509_value(c->chain, i), &c->der[i], &c->der_len[i]) < 0)
			goto done;
	rc = 0;
	*out = c;
	c = NULL;
done:
	ERR_clear_error();
	BIO_free(bio);
	ike_cred_free(c);
	return rc;
}

void ike_cred_free(struct ike_cred *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		OPENSSL_free(c->der[i]);
	sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);   /* OpenSSL clears private key material as it frees it */
	free(c);
}

size_t ike_cred_chain_len(const struct ike_cred *c)
{
	return c ? c->n : 0;
}

int ike_cred_cert(const struct ike_cred *c, size_t i, const uint8_t **der, size_t *len)
{
	if (!c || i >= c->n)
		return -IKE_E_BAD_PARAM;
	*der = c->der[i];
	*len = c->der_len[i];
	return 0;
}

int ike_cred_subject(const struct ike_cred *c, struct ike_ident *out)
{
	unsigned char *der = NULL;
	int n = i2d_X509_NAME(X509_get_subject_name(sk_X509_value(c->chain, 0)), &der);
	int rc = n > 0 ? id_set(out, IKE_ID_DER_ASN1_DN, der, (size_t)n) : -IKE_E_CERT_INVALID;

	OPENSSL_free(der);
	return rc;
}

static bool certreq_has(const uint8_t *certreq, size_t len, X509 *ca)
{
	uint8_t h[20];

	if (spki_sha1(ca, h) < 0)
		return false;
	for (size_t o = 0; o + 20 <= len; o += 20)
		if (!memcmp(certreq + o, h, 20))
			return true;
	return false;
}

/* ---------------------------------------------------------------- CA store */

struct ike_castore {
	X509_STORE *store;
	STACK_OF(X509) *cas;
	bool crls;
};

static int crls_load(struct ike_castore *s, const char *crl_pem)
{
	BIO *bio = BIO_new_mem_buf(crl_pem, -1);
	X509_CRL *crl;
	int n = 0;

	if (!bio)
		return -IKE_E_CERT_INVALID;
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL))) {
		int ok = X509_STORE_add_crl(s->store, crl);
		X509_CRL_free(crl);
		if (!ok)
			break;
		n++;
	}
	unsigned long e = ERR_peek_last_error();
	BIO_free(bio);
	ERR_clear_error();
	if (n == 0 || (e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE))
		return -IKE_E_CERT_INVALID;
	s->crls = true;
	return 0;
}

int ike_castore_new(const char *ca_pem, const char *crl_pem, struct ike_castore **out, char *err, size_t err_len)
{
	struct ike_castore *s = calloc(1, sizeof *s);
	int rc = -IKE_E_CERT_INVALID;

	*out = NULL;
	if (!s || !(s->store = X509_STORE_new()))
		goto fail;
	if (!(s->cas = pem_certs(ca_pem))) {
		set_err(err, err_len, "ca: no PEM certificate, or one that cannot be parsed");
		goto fail;
	}
	for (int i = 0; i < sk_X509_num(s->cas); i++)
		if (!X509_STORE_add_cert(s->store, sk_X509_value(s->cas, i))) {
			set_err(err, err_len, "ca: a CA certificate cannot be added (a duplicate?)");
			goto fail;
		}
	if (crl_pem && *crl_pem && crls_load(s, crl_pem) < 0) {
		set_err(err, err_len, "crl: no PEM CRL, or one that cannot be parsed");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	ERR_clear_error();
	ike_castore_free(s);
	return rc;
}

void ike_castore_free(struct ike_castore *s)
{
	if (!s)
		return;
	X509_STORE_free(s->store);
	sk_X509_pop_free(s->cas, X509_free);
	free(s);
}

int ike_castore_certreq(const struct ike_castore *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (int i = 0; i < sk_X509_num(s->cas); i++, n += 20) {
		if (n + 20 > cap)
			return -IKE_E_NOSPACE;
		if (spki_sha1(sk_X509_value(s->cas, i), out + n) < 0)
			return -IKE_E_CERT_INVALID;
	}
	return (int)n;
}

bool ike_cred_certreq_match(const struct ike_cred *c, const struct ike_castore *store, const uint8_t *certreq,
	size_t len)
{
	X509 *top = sk_X509_value(c->chain, (int)c->n - 1);

	if (len == 0)
		return true;
	for (size_t i = 1; i < c->n; i++)
		if (certreq_has(certreq, len, sk_X509_value(c->chain, (int)i)))
			return true;
	for (int i = 0; store && i < sk_X509_num(store->cas); i++) {
		X509 *ca = sk_X509_value(store->cas, i);
		if (X509_check_issued(ca, top) == X509_V_OK && certreq_has(certreq, len, ca))
			return true;
	}
	return false;
}

static int verify_err(int e)
{
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return -IKE_E_CERT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return -IKE_E_CERT_NOT_YET_VALID;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return -IKE_E_CERT_UNKNOWN_CA;
	case X509_V_ERR_CERT_REVOKED:
		return -IKE_E_CERT_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
		return -IKE_E_CERT_CRL;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
		return -IKE_E_CERT_BAD_SIGNATURE;
	default:
		return -IKE_E_CERT_INVALID;
	}
}

int ike_cert_verify(const struct ike_castore *s, const uint8_t *ee_der, size_t ee_len,
	const uint8_t *const *chain_der, const size_t *chain_len, size_t n_chain, int64_t now)
{
	X509 *ee = cert_decode(ee_der, ee_len);
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -IKE_E_CERT_INVALID;

	if (!s || !ee || !untrusted || !ctx)
		goto done;
	for (size_t i = 0; i < n_chain; i++) {
		X509 *x = cert_decode(chain_der[i], chain_len[i]);
		if (!x || !sk_X509_push(untrusted, x)) {
			X509_free(x);
			goto done;
		}
	}
	if (!X509_STORE_CTX_init(ctx, s->store, ee, untrusted))
		goto done;
	X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	if (s->crls)
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	rc = X509_verify_cert(ctx) == 1 ? 0 : verify_err(X509_STORE_CTX_get_error(ctx));
done:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(ee);
	return rc;
}

/* ---------------------------------------------------------------- RFC 7427 signatures */

int ike_sighash_notify(uint8_t *out, size_t cap)
{
	static const uint8_t ours[] = { 0, IKE_HASH_SHA2_256, 0, IKE_HASH_SHA2_384, 0, IKE_HASH_SHA2_512 };

	if (cap < sizeof ours)
		return -IKE_E_NOSPACE;
	memcpy(out, ours, sizeof ours);
	return (int)sizeof ours;
}

uint32_t ike_sighash_parse(const uint8_t *data, size_t len)
{
	uint32_t set = 0;

	if (len % 2)
		return 0;
	for (size_t i = 0; i < len; i += 2) {
		unsigned id = (unsigned)data[i] << 8 | data[i + 1];
		if (id >= IKE_HASH_SHA1 && id <= IKE_HASH_SHA2_512)
			set |= IKE_HASH_BIT(id);
	}
	return set;
}

static const EVP_MD *hash_md(unsigned id)
{
	switch (id) {
	case IKE_HASH_SHA1: return EVP_sha1();
	case IKE_HASH_SHA2_256: return EVP_sha256();
	case IKE_HASH_SHA2_384: return EVP_sha384();
	case IKE_HASH_SHA2_512: return EVP_sha512();
	default: return NULL;
	}
}

/* DER AlgorithmIdentifiers of RFC 7427 Appendix A, per key kind and hash. */
#define OID_RSA_PKCS1(last) 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, last, 0x05, 0x00
#define OID_ECDSA(last) 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, last
#define OID_SHA2(last) 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, last, 0x05, 0x00
/* RSASSA-PSS with hash = MGF1 hash = SHA-2 n, salt = hash length, trailer 1 (default, omitted). */
#define OID_PSS(last, salt) 0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, \
	0xa0, 0x0f, OID_SHA2(last), \
	0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, OID_SHA2(last), \
	0xa2, 0x03, 0x02, 0x01, salt

static const uint8_t aid_rsa[5][15] = {
	[IKE_HASH_SHA2_256] = { OID_RSA_PKCS1(0x0b) },
	[IKE_HASH_SHA2_384] = { OID_RSA_PKCS1(0x0c) },
	[IKE_HASH_SHA2_512] = { OID_RSA_PKCS1(0x0d) },
};
static const uint8_t aid_ecdsa[5][12] = {
	[IKE_HASH_SHA2_256] = { OID_ECDSA(0x02) },
	[IKE_HASH_SHA2_384] = { OID_ECDSA(0x03) },
	[IKE_HASH_SHA2_512] = { OID_ECDSA(0x04) },
};
static const uint8_t aid_pss[5][67] = {
	[IKE_HASH_SHA2_256] = { OID_PSS(0x01, 32) },
	[IKE_HASH_SHA2_384] = { OID_PSS(0x02, 48) },
	[IKE_HASH_SHA2_512] = { OID_PSS(0x03, 64) },
};

static unsigned curve_hash(int nid)
{
	return nid == NID_secp521r1 ? IKE_HASH_SHA2_512 : nid == NID_secp384r1 ? IKE_HASH_SHA2_384 : IKE_HASH_SHA2_256;
}

static size_t curve_bytes(int nid)
{
	return nid == NID_secp521r1 ? 66 : nid == NID_secp384r1 ? 48 : 32;
}

/* The hash to sign with under RFC 7427, 0 when we share none with the peer. */
static unsigned pick_hash(const struct ike_cred *c, uint32_t peer)
{
	if (c->curve_nid != NID_undef && (peer & IKE_HASH_BIT(curve_hash(c->curve_nid))))
		return curve_hash(c->curve_nid);
	for (unsigned h = IKE_HASH_SHA2_512; h >= IKE_HASH_SHA2_256; h--)
		if (peer & IKE_HASH_BIT(h))
			return h;
	return 0;
}

static int pkey_sign(EVP_PKEY *key, const EVP_MD *md, bool pss, const uint8_t *data, size_t len, uint8_t *sig,
	size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = ctx && EVP_DigestSignInit(ctx, &pctx, md, NULL, key) == 1;

	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
			EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0;
	ok = ok && EVP_DigestSign(ctx, sig, sig_len, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? 0 : -IKE_E_NOSPACE;
}

/* RFC 4754: ECDSA r || s, each padded to the curve's size, instead of the DER Ecdsa-Sig-Value. */
static int ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t n, uint8_t *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r, *s;
	int rc = -IKE_E_BAD_PARAM;

	if (sig) {
		ECDSA_SIG_get0(sig, &r, &s);
		if (BN_bn2binpad(r, out, (int)n) == (int)n && BN_bn2binpad(s, out + n, (int)n) == (int)n)
			rc = (int)(2 * n);
		ECDSA_SIG_free(sig);
	}
	return rc;
}

int ike_auth_sign(const struct ike_cred *c, uint32_t peer_hashes, bool pss, const uint8_t *octets,
	size_t octets_len, uint8_t *method, uint8_t *out, size_t cap)
{
	unsigned h = pick_hash(c, peer_hashes);
	bool ec = c->curve_nid != NID_undef;
	size_t sig_len = (size_t)EVP_PKEY_get_size(c->key);
	uint8_t sig[IKE_AUTH_SIG_MAX];
	int rc;

	if (sig_len > sizeof sig)
		return -IKE_E_NOT_SUPPORTED;
	if (h == 0) {
		/* Classic methods: RSA always with SHA-1 (RFC 7296), ECDSA with its curve's hash (RFC 4754). */
		if ((rc = pkey_sign(c->key, ec ? hash_md(curve_hash(c->curve_nid)) : EVP_sha1(), false, octets,
				octets_len, sig, &sig_len)) < 0)
			return rc;
		*method = !ec ? IKE_AUTH_METHOD_RSA : c->curve_nid == NID_secp521r1 ? IKE_AUTH_METHOD_ECDSA_521
			: c->curve_nid == NID_secp384r1 ? IKE_AUTH_METHOD_ECDSA_384 : IKE_AUTH_METHOD_ECDSA_256;
		if (ec) {
			size_t n = curve_bytes(c->curve_nid);
			if (cap < 2 * n)
				return -IKE_E_NOSPACE;
			return ecdsa_der_to_raw(sig, sig_len, n, out);
		}
		if (cap < sig_len)
			return -IKE_E_NOSPACE;
		memcpy(out, sig, sig_len);
		return (int)sig_len;
	}
	pss = pss && !ec;
	const uint8_t *aid = ec ? aid_ecdsa[h] : pss ? aid_pss[h] : aid_rsa[h];
	size_t aid_len = ec ? sizeof aid_ecdsa[h] : pss ? sizeof aid_pss[h] : sizeof aid_rsa[h];
	if ((rc = pkey_sign(c->key, hash_md(h), pss, octets, octets_len, sig, &sig_len)) < 0)
		return rc;
	if (cap < 1 + aid_len + sig_len)
		return -IKE_E_NOSPACE;
	out[0] = (uint8_t)aid_len;
	memcpy(out + 1, aid, aid_len);
	memcpy(out + 1 + aid_len, sig, sig_len);
	*method = IKE_AUTH_METHOD_DIGSIG;
	return (int)(1 + aid_len + sig_len);
}

/* How to check a signature: hash, and for RSA the padding (PSS with its MGF1 hash and salt length). */
struct sig_alg {
	const EVP_MD *md;
	bool ec, pss;
	const EVP_MD *mgf1;
	int salt;
};

static bool sha2_md(const EVP_MD *md)
{
	return md && (EVP_MD_is_a(md, "SHA256") || EVP_MD_is_a(md, "SHA384") || EVP_MD_is_a(md, "SHA512"));
}

static const EVP_MD *algor_md(const X509_ALGOR *a)
{
	return a ? EVP_get_digestbyobj(a->algorithm) : EVP_sha1();   /* absent: the RFC 4055 default */
}

/* MGF1's hash, from the parameter of the maskGenAlgorithm (itself an AlgorithmIdentifier). */
static const EVP_MD *mgf1_md(const X509_ALGOR *mgf)
{
	int ptype;
	const void *pval;
	const EVP_MD *md = NULL;

	X509_ALGOR_get0(NULL, &ptype, &pval, mgf);
	if (OBJ_obj2nid(mgf->algorithm) != NID_mgf1 || ptype != V_ASN1_SEQUENCE)
		return NULL;
	const unsigned char *p = ASN1_STRING_get0_data(pval);
	X509_ALGOR *h = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(pval));
	if (h)
		md = algor_md(h);
	X509_ALGOR_free(h);
	return md;
}

static int pss_params(const X509_ALGOR *alg, struct sig_alg *out)
{
	int ptype;
	const void *pval;
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE)
		return -IKE_E_NOT_SUPPORTED;
	const ASN1_STRING *seq = pval;
	const unsigned char *p = ASN1_STRING_get0_data(seq);
	RSA_PSS_PARAMS *pp = d2i_RSA_PSS_PARAMS(NULL, &p, ASN1_STRING_length(seq));
	int rc = -IKE_E_NOT_SUPPORTED;

	if (!pp)
		return rc;
	out->pss = true;
	out->md = algor_md(pp->hashAlgorithm);
	out->mgf1 = pp->maskGenAlgorithm ? mgf1_md(pp->maskGenAlgorithm) : EVP_sha1();
	out->salt = pp->saltLength ? (int)ASN1_INTEGER_get(pp->saltLength) : 20;
	if (sha2_md(out->md) && sha2_md(out->mgf1) && out->salt >= 0 &&
			(!pp->trailerField || ASN1_INTEGER_get(pp->trailerField) == 1))
		rc = 0;
	RSA_PSS_PARAMS_free(pp);
	return rc;
}

/* The AlgorithmIdentifier of a method 14 AUTH; SHA-1 is refused there (RFC 8247). */
static int sig_alg_parse(const uint8_t *der, size_t len, struct sig_alg *out)
{
	const unsigned char *p = der;
	X509_ALGOR *alg = d2i_X509_ALGOR(NULL, &p, (long)len);
	int rc = -IKE_E_NOT_SUPPORTED;

	memset(out, 0, sizeof *out);
	if (!alg || p != der + len) {
		X509_ALGOR_free(alg);
		return -IKE_E_AUTH_FAILED;
	}
	switch (OBJ_obj2nid(alg->algorithm)) {
	case NID_sha256WithRSAEncryption: out->md = EVP_sha256(); break;
	case NID_sha384WithRSAEncryption: out->md = EVP_sha384(); break;
	case NID_sha512WithRSAEncryption: out->md = EVP_sha512(); break;
	case NID_ecdsa_with_SHA256: out->md = EVP_sha256(); out->ec = true; break;
	case NID_ecdsa_with_SHA384: out->md = EVP_sha384(); out->ec = true; break;
	case NID_ecdsa_with_SHA512: out->md = EVP_sha512(); out->ec = true; break;
	case NID_rsassaPss:
		rc = pss_params(alg, out);
		X509_ALGOR_free(alg);
		return rc;
	default:
		break;
	}
	X509_ALGOR_free(alg);
	return out->md ? 0 : rc;
}

static int pkey_verify(EVP_PKEY *key, const struct sig_alg *a, const uint8_t *sig, size_t sig_len,
	const uint8_t *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, a->md, NULL, key) == 1;

	if (ok && a->pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, a->salt) > 0 &&
			EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, a->mgf1) > 0;
	ok = ok && EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? 0 : -IKE_E_AUTH_FAILED;
}

/* RFC 4754 r || s back into DER for OpenSSL. */
static int ecdsa_raw_to_der(const uint8_t *raw, size_t len, uint8_t *der, size_t cap)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL), *s = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);
	int n = -IKE_E_AUTH_FAILED;

	if (sig && r && s && ECDSA_SIG_set0(sig, r, s)) {
		r = s = NULL;
		if (i2d_ECDSA_SIG(sig, NULL) <= (int)cap) {
			unsigned char *p = der;
			n = i2d_ECDSA_SIG(sig, &p);
		}
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return n;
}

static int classic_alg(uint8_t method, int curve_nid, bool rsa, struct sig_alg *a, size_t *raw_len)
{
	memset(a, 0, sizeof *a);
	switch (method) {
	case IKE_AUTH_METHOD_RSA:
		a->md = EVP_sha1();
		return rsa ? 0 : -IKE_E_AUTH_FAILED;
	case IKE_AUTH_METHOD_ECDSA_256:
		a->md = EVP_sha256();
		*raw_len = 64;
		return curve_nid == NID_X9_62_prime256v1 ? 0 : -IKE_E_AUTH_FAILED;
	case IKE_AUTH_METHOD_ECDSA_384:
		a->md = EVP_sha384();
		*raw_len = 96;
		return curve_nid == NID_secp384r1 ? 0 : -IKE_E_AUTH_FAILED;
	case IKE_AUTH_METHOD_ECDSA_521:
		a->md = EVP_sha512();
		*raw_len = 132;
		return curve_nid == NID_secp521r1 ? 0 : -IKE_E_AUTH_FAILED;
	default:
		return -IKE_E_NOT_SUPPORTED;
	}
}

int ike_auth_verify(const uint8_t *cert_der, size_t cert_len, uint8_t method, const uint8_t *auth, size_t auth_len,
	const uint8_t *octets, size_t octets_len)
{
	X509 *x = cert_decode(cert_der, cert_len);
	EVP_PKEY *key = x ? X509_get0_pubkey(x) : NULL;
	struct sig_alg a;
	int curve_nid, rc;

	if (!key) {
		X509_free(x);
		ERR_clear_error();
		return -IKE_E_CERT_INVALID;
	}
	rc = key_kind(key, &curve_nid);
	bool rsa = rc == 0 && curve_nid == NID_undef;
	if (rc < 0) {
		/* an unsupported key type */
	} else if (method == IKE_AUTH_METHOD_DIGSIG) {
		size_t aid_len = auth_len ? auth[0] : 0;
		if (auth_len < 2 || 1 + aid_len >= auth_len)
			rc = -IKE_E_AUTH_FAILED;
		else if ((rc = sig_alg_parse(auth + 1, aid_len, &a)) == 0)
			rc = a.ec == !rsa ? pkey_verify(key, &a, auth + 1 + aid_len, auth_len - 1 - aid_len, octets,
				octets_len) : -IKE_E_AUTH_FAILED;
	} else {
		size_t raw_len = 0;
		uint8_t der[160];
		if ((rc = classic_alg(method, curve_nid, rsa, &a, &raw_len)) == 0) {
			if (!raw_len)
				rc = pkey_verify(key, &a, auth, auth_len, octets, octets_len);
			else if (auth_len != raw_len)
				rc = -IKE_E_AUTH_FAILED;
			else if ((rc = ecdsa_raw_to_der(auth, auth_len, der, sizeof der)) > 0)
				rc = pkey_verify(key, &a, der, (size_t)rc, octets, octets_len);
		}
	}
	X509_free(x);
	ERR_clear_error();
	return rc;
}
