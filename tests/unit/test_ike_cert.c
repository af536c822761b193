/* test_ike_cert: identities, credentials, chain validation with dates and CRLs, RFC 7427 AUTH (checked against the
 * openssl CLI both ways), CERTREQ hashes. Every key and certificate is made here, at test time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "crypto.h"
#include "msg.h"

static char tmpdir[64];

/* ---- making keys, certificates and CRLs ---- */

static EVP_PKEY *key_rsa(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); }
static EVP_PKEY *key_ec(const char *curve) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve); }

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
}

static X509_NAME *name_of(const char *dn)
{
	struct ike_ident id;
	if (ike_id_parse(dn, &id) < 0)
		return NULL;
	const unsigned char *p = id.data;
	return d2i_X509_NAME(NULL, &p, id.len);
}

/* A certificate for `key` named `dn`, signed by issuer/issuer_key (self-signed when NULL), valid from now+from to
 * now+to seconds. */
static X509 *mkcert(const char *dn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca, long from, long to,
	const char *san, long serial)
{
	X509 *x = X509_new();
	X509_NAME *name = name_of(dn);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	add_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (ca)
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (san)
		add_ext(x, issuer, NID_subject_alt_name, san);
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

static char *pem_x509(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	PEM_write_bio_X509(b, x);
	long n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static char *pem_key(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	long n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static char *pem_crl(X509 *ca, EVP_PKEY *ca_key, long revoked_serial, long next_update)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_gmtime_adj(t, -3600);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, next_update);
	X509_CRL_set1_nextUpdate(crl, t);
	if (revoked_serial) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_INTEGER_set(s, revoked_serial);
		X509_REVOKED_set_serialNumber(r, s);
		X509_gmtime_adj(t, -60);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(s);
	}
	X509_CRL_sort(crl);
	X509_CRL_sign(crl, ca_key, EVP_sha256());
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	PEM_write_bio_X509_CRL(b, crl);
	long n = BIO_get_mem_data(b, &p);
	char *s = strndup(p, (size_t)n);
	BIO_free(b);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return s;
}

static size_t der(X509 *x, uint8_t *out)
{
	unsigned char *p = out;
	return (size_t)i2d_X509(x, &p);
}

static char *cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

/* ---- files for the openssl CLI ---- */

static const char *path(const char *name)
{
	static char buf[4][128];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
	return buf[i];
}

static void write_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path(name), "wb");
	fwrite(data, 1, len, f);
	fclose(f);
}

static size_t read_file(const char *name, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path(name), "rb");
	size_t n = f ? fread(buf, 1, cap, f) : 0;
	if (f)
		fclose(f);
	return n;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* ---- identities ---- */

static void test_identities(void)
{
	struct ike_ident id, other;
	char text[256];

	CHECK_EQ(ike_id_parse("198.51.100.1", &id), 0, "IPv4 identity parses");
	CHECK(id.type == IKE_ID_IPV4_ADDR && id.len == 4 && id.data[0] == 198 && id.data[3] == 1, "as ID_IPV4_ADDR 4 bytes");
	ike_id_format(&id, text, sizeof text);
	CHECK(!strcmp(text, "198.51.100.1"), "formats back: %s", text);
	CHECK_EQ(ike_id_parse("2001:db8::1", &id), 0, "IPv6 identity parses");
	CHECK(id.type == IKE_ID_IPV6_ADDR && id.len == 16 && id.data[15] == 1, "as ID_IPV6_ADDR");
	ike_id_format(&id, text, sizeof text);
	CHECK(!strcmp(text, "2001:db8::1"), "formats back: %s", text);
	CHECK_EQ(ike_id_parse("gw.example.org", &id), 0, "FQDN parses");
	CHECK(id.type == IKE_ID_FQDN && id.len == 14 && !memcmp(id.data, "gw.example.org", 14), "as ID_FQDN, no NUL");
	CHECK_EQ(ike_id_parse("@vpn", &id), 0, "@name parses");
	CHECK(id.type == IKE_ID_FQDN && id.len == 3, "as an FQDN without the @");
	CHECK_EQ(ike_id_parse("alice@example.org", &id), 0, "RFC 822 parses");
	CHECK(id.type == IKE_ID_RFC822_ADDR && id.len == 17, "as ID_RFC822_ADDR");
	CHECK_EQ(ike_id_parse("%any", &id), 0, "%%any parses");
	CHECK(id.type == IKE_ID_ANY, "as the wildcard");
	CHECK_EQ(ike_id_parse("C=CH, O=Example Org, CN=gw.example.org", &id), 0, "DN parses");
	CHECK(id.type == IKE_ID_DER_ASN1_DN && id.data[0] == 0x30, "as a DER SEQUENCE");
	ike_id_format(&id, text, sizeof text);
	CHECK(!strcmp(text, "C=CH, O=Example Org, CN=gw.example.org"), "formats back: %s", text);
	/* The DER is what openssl itself makes of the same name. */
	X509_NAME *n = X509_NAME_new();
	X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"CH", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Example Org", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"gw.example.org", -1, -1, 0);
	unsigned char *d = NULL;
	int dl = i2d_X509_NAME(n, &d);
	CHECK(dl == id.len && !memcmp(d, id.data, id.len), "DER equals OpenSSL's encoding of the name");
	OPENSSL_free(d);
	X509_NAME_free(n);

	CHECK_EQ(ike_id_parse("dn:CN=a\\, b", &other), 0, "an escaped comma stays in the value");
	ike_id_format(&other, text, sizeof text);
	CHECK(!strcmp(text, "CN=a\\, b"), "and is escaped when formatted: %s", text);
	CHECK_EQ(ike_id_parse("XX=1, CN=x", &other), -IKE_E_BAD_PARAM, "unknown DN attribute refused");
	CHECK_EQ(ike_id_parse("CN=", &other), -IKE_E_BAD_PARAM, "empty DN value refused");
	CHECK_EQ(ike_id_parse("", &other), -IKE_E_BAD_PARAM, "empty identity refused");
	CHECK_EQ(ike_id_parse("ipv4:300.1.1.1", &other), -IKE_E_BAD_PARAM, "bad forced IPv4 refused");
	CHECK_EQ(ike_id_parse("has space", &other), -IKE_E_BAD_PARAM, "FQDN with a space refused");

	/* Matching. */
	struct ike_ident any, conf, got;
	ike_id_parse("%any", &any);
	ike_id_parse("c=ch,o=example org,  cn=GW.example.org", &got);
	CHECK(ike_id_match(&id, &got), "DN matches regardless of case and spacing");
	CHECK(ike_id_match(&any, &got), "%%any matches a DN");
	ike_id_parse("C=CH, O=Example Org, CN=other", &got);
	CHECK(!ike_id_match(&id, &got), "a different CN does not match");
	ike_id_parse("CN=gw.example.org, O=Example Org, C=CH", &got);
	CHECK(!ike_id_match(&id, &got), "RDN order matters");
	ike_id_parse("*.example.org", &conf);
	ike_id_parse("GW.Example.org", &got);
	CHECK(ike_id_match(&conf, &got), "*.example.org matches GW.Example.org");
	ike_id_parse("example.org", &got);
	CHECK(!ike_id_match(&conf, &got), "but not example.org itself");
	ike_id_parse("*@example.org", &conf);
	ike_id_parse("bob@example.org", &got);
	CHECK(ike_id_match(&conf, &got), "*@example.org matches bob@example.org");
	ike_id_parse("fqdn:bob@example.org", &got);
	CHECK(!ike_id_match(&conf, &got), "types must agree");
	ike_id_parse("198.51.100.1", &conf);
	ike_id_parse("198.51.100.2", &got);
	CHECK(!ike_id_match(&conf, &got), "different addresses do not match");

	uint8_t v4[4] = { 192, 0, 2, 1 };
	CHECK_EQ(ike_id_from_payload(IKE_ID_IPV4_ADDR, v4, 3, &got), -IKE_E_INVALID_SYNTAX, "3-byte IPv4 ID refused");
	CHECK_EQ(ike_id_from_payload(IKE_ID_IPV4_ADDR, v4, 4, &got), 0, "4-byte IPv4 ID accepted");
	CHECK_EQ(ike_id_from_payload(IKE_ID_DER_ASN1_GN, v4, 4, &got), -IKE_E_NOT_SUPPORTED, "ID_DER_ASN1_GN not spoken");
	got.type = IKE_ID_KEY_ID;
	got.len = 2;
	got.data[0] = 0xab;
	got.data[1] = 0x01;
	ike_id_format(&got, text, sizeof text);
	CHECK(!strcmp(text, "KEY_ID:ab01"), "KEY_ID formats as hex: %s", text);
}

/* ---- the PKI every later test uses ---- */

static EVP_PKEY *ca_key, *ca2_key, *int_key, *rsa_key, *ec_key, *ec384_key, *ec521_key;
static X509 *ca, *ca2, *inter, *rsa_cert, *ec_cert, *ec384_cert, *ec521_cert, *expired, *future, *stranger, *revoked,
	*via_int, *forged;
static char *ca_pem, *ca2_pem;

static void make_pki(void)
{
	ca_key = key_ec("P-384");
	ca2_key = key_ec("P-256");
	int_key = key_ec("P-256");
	rsa_key = key_rsa();
	ec_key = key_ec("P-256");
	ec384_key = key_ec("P-384");
	ec521_key = key_ec("P-521");
	ca = mkcert("C=CH, O=bitw test, CN=Test Root CA", ca_key, NULL, NULL, true, -86400, 86400 * 30, NULL, 1);
	ca2 = mkcert("C=CH, O=elsewhere, CN=Other CA", ca2_key, NULL, NULL, true, -86400, 86400 * 30, NULL, 1);
	inter = mkcert("C=CH, O=bitw test, CN=Intermediate", int_key, ca, ca_key, true, -86400, 86400 * 30, NULL, 2);
	rsa_cert = mkcert("C=CH, O=bitw test, CN=rsa.example.org", rsa_key, ca, ca_key, false, -3600, 86400,
		"DNS:rsa.example.org,IP:198.51.100.1,email:rsa@example.org", 10);
	ec_cert = mkcert("C=CH, O=bitw test, CN=ec.example.org", ec_key, ca, ca_key, false, -3600, 86400,
		"DNS:ec.example.org,IP:2001:db8::1", 11);
	ec384_cert = mkcert("CN=ec384", ec384_key, ca, ca_key, false, -3600, 86400, NULL, 12);
	ec521_cert = mkcert("CN=ec521", ec521_key, ca, ca_key, false, -3600, 86400, NULL, 13);
	expired = mkcert("CN=expired", ec_key, ca, ca_key, false, -86400 * 3, -86400, NULL, 14);
	future = mkcert("CN=future", ec_key, ca, ca_key, false, 86400, 86400 * 3, NULL, 15);
	revoked = mkcert("CN=revoked", ec_key, ca, ca_key, false, -3600, 86400, NULL, 16);
	stranger = mkcert("CN=stranger", ec_key, ca2, ca2_key, false, -3600, 86400, NULL, 17);
	via_int = mkcert("CN=via-intermediate", ec_key, inter, int_key, false, -3600, 86400, "DNS:via.example.org", 18);
	/* Claims our CA as issuer, signed by another key. */
	forged = mkcert("CN=forged", ec_key, ca, ca2_key, false, -3600, 86400, NULL, 19);
	ca_pem = pem_x509(ca);
	ca2_pem = pem_x509(ca2);
}

static void test_credentials(void)
{
	struct ike_cred *c;
	char err[128] = "";
	char *cert = pem_x509(rsa_cert), *key = pem_key(rsa_key), *eckey = pem_key(ec_key);

	CHECK_EQ(ike_cred_new(cert, key, &c, err, sizeof err), 0, "RSA credential loads");
	CHECK_EQ(ike_cred_chain_len(c), 1, "one certificate");
	const uint8_t *d;
	size_t dl;
	uint8_t mine[4096];
	CHECK(ike_cred_cert(c, 0, &d, &dl) == 0 && dl == der(rsa_cert, mine) && !memcmp(d, mine, dl),
		"CERT payload data is the certificate's DER");
	struct ike_ident subj, want;
	ike_cred_subject(c, &subj);
	ike_id_parse("C=CH, O=bitw test, CN=rsa.example.org", &want);
	CHECK(ike_id_match(&want, &subj), "subject identity is the certificate's DN");
	ike_cred_free(c);

	CHECK_EQ(ike_cred_new(cert, eckey, &c, err, sizeof err), -IKE_E_CERT_INVALID, "a key of another certificate refused");
	CHECK(strstr(err, "does not match") != NULL, "error says so: %s", err);
	CHECK_EQ(ike_cred_new("garbage", key, &c, err, sizeof err), -IKE_E_CERT_INVALID, "no PEM certificate refused");
	CHECK(strstr(err, "certificate") != NULL, "error names the certificate: %s", err);
	CHECK_EQ(ike_cred_new(cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", &c, err,
		sizeof err), -IKE_E_CERT_INVALID, "broken key refused");
	CHECK(c == NULL, "and nothing handed out");

	char *via = pem_x509(via_int), *ip = pem_x509(inter), *chain = cat(via, ip);
	CHECK_EQ(ike_cred_new(chain, eckey, &c, err, sizeof err), 0, "credential with an intermediate loads");
	CHECK_EQ(ike_cred_chain_len(c), 2, "two certificates for CERT payloads");

	/* CERTREQ: the CA store's hashes are SHA-1 over each CA's SubjectPublicKeyInfo, as openssl computes it. */
	struct ike_castore *s, *s2;
	char *both = cat(ca_pem, ca2_pem);
	CHECK_EQ(ike_castore_new(both, NULL, &s, err, sizeof err), 0, "CA store with two CAs");
	uint8_t req[64];
	CHECK_EQ(ike_castore_certreq(s, req, sizeof req), 40, "CERTREQ holds two SHA-1 hashes");
	CHECK_EQ(ike_castore_certreq(s, req, 39), -IKE_E_NOSPACE, "short buffer refused");
	write_file("ca.pem", ca_pem, strlen(ca_pem));
	sh("openssl x509 -in %s -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha1 -binary > %s",
		path("ca.pem"), path("ca.sha1"));
	uint8_t h[20];
	CHECK(read_file("ca.sha1", h, sizeof h) == 20 && !memcmp(h, req, 20),
		"first hash equals `openssl pkey -pubin -outform DER | openssl dgst -sha1`");
	CHECK(ike_cred_certreq_match(c, s, req, 40), "a CERTREQ naming our root matches our chain");
	CHECK(!ike_cred_certreq_match(c, s, req + 20, 20), "one naming only the other CA does not");
	CHECK(ike_cred_certreq_match(c, NULL, req + 0, 0), "an empty CERTREQ matches");
	CHECK_EQ(ike_castore_new(ca2_pem, NULL, &s2, err, sizeof err), 0, "store of the other CA");
	uint8_t req_int[20];
	X509_pubkey_digest(inter, EVP_sha1(), req_int, NULL);   /* over the key bits: not what CERTREQ uses */
	CHECK(!ike_cred_certreq_match(c, s2, req_int, 20), "the key-bits hash (not the SPKI hash) does not match");
	ike_castore_free(s2);
	ike_castore_free(s);
	ike_cred_free(c);
	CHECK_EQ(ike_castore_new("nothing here", NULL, &s, err, sizeof err), -IKE_E_CERT_INVALID, "empty CA PEM refused");
	CHECK(s == NULL && strstr(err, "ca") != NULL, "error names the CA field: %s", err);
	free(both);
	free(via);
	free(ip);
	free(chain);
	free(cert);
	free(key);
	free(eckey);
}

static void test_id_vs_cert(void)
{
	uint8_t d[4096];
	size_t n = der(rsa_cert, d);
	struct ike_ident id;

	ike_id_parse("C=CH, O=bitw test, CN=rsa.example.org", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), 0, "DN identity = subject");
	ike_id_parse("rsa.example.org", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), 0, "FQDN identity in subjectAltName dNSName");
	ike_id_parse("198.51.100.1", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), 0, "IPv4 identity in subjectAltName iPAddress");
	ike_id_parse("rsa@example.org", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), 0, "RFC 822 identity in subjectAltName rfc822Name");
	ike_id_parse("198.51.100.2", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), -IKE_E_ID_MISMATCH, "another address does not");
	ike_id_parse("ec.example.org", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), -IKE_E_ID_MISMATCH, "another name does not");
	ike_id_parse("CN=rsa.example.org", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), -IKE_E_ID_MISMATCH, "a partial DN does not");
	n = der(ec_cert, d);
	ike_id_parse("2001:db8::1", &id);
	CHECK_EQ(ike_id_matches_cert(&id, d, n), 0, "IPv6 identity in subjectAltName");
	CHECK_EQ(ike_id_matches_cert(&id, d, n - 1), -IKE_E_CERT_INVALID, "truncated certificate refused");
}

static int verify(struct ike_castore *s, X509 *ee, X509 *chain)
{
	uint8_t a[4096], b[4096];
	size_t al = der(ee, a), bl = chain ? der(chain, b) : 0;
	const uint8_t *cd[1] = { b };
	return ike_cert_verify(s, a, al, cd, &bl, chain ? 1 : 0, (int64_t)time(NULL));
}

static void test_chain(void)
{
	struct ike_castore *s, *crl_s, *stale_s;
	char err[128];
	char *crl = pem_crl(ca, ca_key, 16, 86400), *stale = pem_crl(ca, ca_key, 0, -60);
	char *crl_int = pem_crl(inter, int_key, 0, 86400), *crls = cat(crl, crl_int);

	CHECK_EQ(ike_castore_new(ca_pem, NULL, &s, err, sizeof err), 0, "CA store loads");
	CHECK_EQ(verify(s, rsa_cert, NULL), 0, "RSA end entity issued by the CA verifies");
	CHECK_EQ(verify(s, ec_cert, NULL), 0, "ECDSA end entity verifies");
	CHECK_EQ(verify(s, expired, NULL), -IKE_E_CERT_EXPIRED, "expired certificate: IKE_E_CERT_EXPIRED");
	CHECK_EQ(verify(s, future, NULL), -IKE_E_CERT_NOT_YET_VALID, "not yet valid: IKE_E_CERT_NOT_YET_VALID");
	CHECK_EQ(verify(s, stranger, NULL), -IKE_E_CERT_UNKNOWN_CA, "another CA's certificate: IKE_E_CERT_UNKNOWN_CA");
	CHECK_EQ(verify(s, ca2, NULL), -IKE_E_CERT_UNKNOWN_CA, "a self-signed stranger: IKE_E_CERT_UNKNOWN_CA");
	CHECK_EQ(verify(s, forged, NULL), -IKE_E_CERT_BAD_SIGNATURE, "our CA's name, another key: IKE_E_CERT_BAD_SIGNATURE");
	CHECK_EQ(verify(s, via_int, inter), 0, "end entity under an intermediate sent along verifies");
	CHECK_EQ(verify(s, via_int, NULL), -IKE_E_CERT_UNKNOWN_CA, "without the intermediate it does not");
	CHECK_EQ(verify(s, revoked, NULL), 0, "without CRLs a revoked certificate is not known to be");
	int64_t later = (int64_t)time(NULL) + 86400 * 2;
	uint8_t a[4096];
	size_t al = der(rsa_cert, a);
	CHECK_EQ(ike_cert_verify(s, a, al, NULL, NULL, 0, later), -IKE_E_CERT_EXPIRED, "the caller's clock is used");
	CHECK_EQ(ike_cert_verify(s, a, al - 5, NULL, NULL, 0, later), -IKE_E_CERT_INVALID, "garbage: IKE_E_CERT_INVALID");

	CHECK_EQ(ike_castore_new(ca_pem, crls, &crl_s, err, sizeof err), 0, "CA store with CRLs loads");
	CHECK_EQ(verify(crl_s, revoked, NULL), -IKE_E_CERT_REVOKED, "revoked certificate: IKE_E_CERT_REVOKED");
	CHECK_EQ(verify(crl_s, rsa_cert, NULL), 0, "a good one still verifies with the CRL");
	CHECK_EQ(verify(crl_s, via_int, inter), 0, "and one under the intermediate (with its CRL)");
	CHECK_EQ(ike_castore_new(ca_pem, crl, &stale_s, err, sizeof err), 0, "store with only the root's CRL");
	CHECK_EQ(verify(stale_s, via_int, inter), -IKE_E_CERT_CRL, "intermediate's CRL missing: fails closed");
	ike_castore_free(stale_s);
	CHECK_EQ(ike_castore_new(ca_pem, stale, &stale_s, err, sizeof err), 0, "store with an outdated CRL");
	CHECK_EQ(verify(stale_s, rsa_cert, NULL), -IKE_E_CERT_CRL, "outdated CRL: fails closed with IKE_E_CERT_CRL");
	ike_castore_free(stale_s);
	CHECK_EQ(ike_castore_new(ca_pem, "not a crl", &stale_s, err, sizeof err), -IKE_E_CERT_INVALID, "bad CRL refused");
	CHECK(strstr(err, "crl") != NULL, "error names the CRL: %s", err);
	CHECK_EQ(ike_err_notify(-IKE_E_CERT_REVOKED), IKE_N_AUTHENTICATION_FAILED, "answered with AUTHENTICATION_FAILED");
	CHECK(!strcmp(ike_err_name(-IKE_E_CERT_EXPIRED), "IKE_E_CERT_EXPIRED"), "errors are named");
	ike_castore_free(crl_s);
	ike_castore_free(s);
	free(crl);
	free(stale);
	free(crl_int);
	free(crls);
}

/* ---- signatures ---- */

static const uint8_t octets[] = "IKE_SA_INIT message | Nr | prf(SK_pi, IDi') stands in for the signed octets";

static struct ike_cred *cred_of(X509 *x, EVP_PKEY *k)
{
	char *c = pem_x509(x), *kp = pem_key(k);
	struct ike_cred *cred;
	int rc = ike_cred_new(c, kp, &cred, NULL, 0);
	free(c);
	free(kp);
	return rc == 0 ? cred : NULL;
}

static void pubkey_file(X509 *x, const char *name)
{
	BIO *b = BIO_new_file(path(name), "w");
	PEM_write_bio_PUBKEY(b, X509_get0_pubkey(x));
	BIO_free(b);
}

/* Signs with our code, checks the result with ours and with `openssl dgst -verify`. */
static void sign_case(const char *what, X509 *x, EVP_PKEY *k, uint32_t peer, bool pss, uint8_t want_method,
	const char *dgst, const char *sigopt, const char *asn1_word)
{
	struct ike_cred *c = cred_of(x, k);
	uint8_t auth[IKE_AUTH_SIG_MAX], method = 0, d[4096];
	size_t dl = der(x, d);
	int n = ike_auth_sign(c, peer, pss, octets, sizeof octets, &method, auth, sizeof auth);

	CHECK(n > 0 && method == want_method, "%s: signed with method %u", what, method);
	CHECK_EQ(ike_auth_verify(d, dl, method, auth, (size_t)n, octets, sizeof octets), 0, "%s: verifies", what);
	auth[n - 3] ^= 1;
	CHECK_EQ(ike_auth_verify(d, dl, method, auth, (size_t)n, octets, sizeof octets), -IKE_E_AUTH_FAILED,
		"%s: a flipped bit fails", what);
	auth[n - 3] ^= 1;
	CHECK_EQ(ike_auth_verify(d, dl, method, auth, (size_t)n, octets, sizeof octets - 1), -IKE_E_AUTH_FAILED,
		"%s: other octets fail", what);
	if (method == IKE_AUTH_METHOD_DIGSIG) {
		size_t aid = auth[0];
		write_file("aid.der", auth + 1, aid);
		write_file("sig.bin", auth + 1 + aid, (size_t)n - 1 - aid);
		CHECK(sh("openssl asn1parse -inform DER -in %s | grep -q '%s'", path("aid.der"), asn1_word) == 0,
			"%s: openssl asn1parse reads the AlgorithmIdentifier and finds %s", what, asn1_word);
	} else {
		write_file("sig.bin", auth, (size_t)n);
	}
	write_file("octets.bin", octets, sizeof octets);
	pubkey_file(x, "pub.pem");
	if (dgst)
		CHECK(sh("openssl dgst -%s %s -verify %s -signature %s %s >/dev/null", dgst, sigopt, path("pub.pem"),
			path("sig.bin"), path("octets.bin")) == 0, "%s: `openssl dgst -%s -verify` accepts it", what, dgst);
	ike_cred_free(c);
}

/* The other way: `openssl dgst -sign` makes the signature, our verifier checks it inside a method 14 AUTH. */
static void cli_sign_case(const char *what, X509 *x, EVP_PKEY *k, const char *dgst, const char *sigopt,
	const uint8_t *aid, size_t aid_len)
{
	uint8_t auth[2048], d[4096];
	size_t dl = der(x, d);
	char *kp = pem_key(k);

	write_file("key.pem", kp, strlen(kp));
	free(kp);
	write_file("octets.bin", octets, sizeof octets);
	sh("openssl dgst -%s %s -sign %s -out %s %s", dgst, sigopt, path("key.pem"), path("cli.sig"), path("octets.bin"));
	auth[0] = (uint8_t)aid_len;
	memcpy(auth + 1, aid, aid_len);
	size_t sl = read_file("cli.sig", auth + 1 + aid_len, sizeof auth - 1 - aid_len);
	unlink(path("key.pem"));
	CHECK(sl > 0, "%s: openssl signed", what);
	CHECK_EQ(ike_auth_verify(d, dl, IKE_AUTH_METHOD_DIGSIG, auth, 1 + aid_len + sl, octets, sizeof octets), 0,
		"%s: our verifier accepts openssl's signature", what);
}

static void test_signatures(void)
{
	uint8_t n[16];
	const uint32_t all = IKE_HASH_BIT(IKE_HASH_SHA2_256) | IKE_HASH_BIT(IKE_HASH_SHA2_384) |
		IKE_HASH_BIT(IKE_HASH_SHA2_512);

	CHECK_EQ(ike_sighash_notify(n, sizeof n), 6, "SIGNATURE_HASH_ALGORITHMS: three hashes");
	CHECK(!memcmp(n, "\0\2\0\3\0\4", 6), "SHA2-256, SHA2-384, SHA2-512 (RFC 7427 ids 2, 3, 4)");
	CHECK_EQ(ike_sighash_parse(n, 6), all, "parses back");
	CHECK_EQ(ike_sighash_parse((const uint8_t *)"\0\1\0\5\0\2", 6), IKE_HASH_BIT(1) | IKE_HASH_BIT(2),
		"unknown ids (5 = Identity) ignored");
	CHECK_EQ(ike_sighash_parse(n, 5), 0, "odd length: nothing");

	sign_case("RSA PKCS#1 SHA-512", rsa_cert, rsa_key, all, false, IKE_AUTH_METHOD_DIGSIG, "sha512", "",
		"sha512WithRSAEncryption");
	sign_case("RSA PKCS#1 SHA-256", rsa_cert, rsa_key, IKE_HASH_BIT(IKE_HASH_SHA2_256), false,
		IKE_AUTH_METHOD_DIGSIG, "sha256", "", "sha256WithRSAEncryption");
	sign_case("RSA PKCS#1 SHA-384", rsa_cert, rsa_key, IKE_HASH_BIT(IKE_HASH_SHA2_384) | IKE_HASH_BIT(1), false,
		IKE_AUTH_METHOD_DIGSIG, "sha384", "", "sha384WithRSAEncryption");
	sign_case("RSASSA-PSS SHA-256", rsa_cert, rsa_key, IKE_HASH_BIT(IKE_HASH_SHA2_256), true,
		IKE_AUTH_METHOD_DIGSIG, "sha256", "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32", "rsassaPss");
	sign_case("RSASSA-PSS SHA-512", rsa_cert, rsa_key, all, true, IKE_AUTH_METHOD_DIGSIG, "sha512",
		"-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:64", "rsassaPss");
	sign_case("ECDSA P-256", ec_cert, ec_key, all, false, IKE_AUTH_METHOD_DIGSIG, "sha256", "", "ecdsa-with-SHA256");
	sign_case("ECDSA P-384", ec384_cert, ec384_key, all, false, IKE_AUTH_METHOD_DIGSIG, "sha384", "",
		"ecdsa-with-SHA384");
	sign_case("ECDSA P-521", ec521_cert, ec521_key, all, false, IKE_AUTH_METHOD_DIGSIG, "sha512", "",
		"ecdsa-with-SHA512");
	sign_case("ECDSA P-384, peer has only SHA-256", ec384_cert, ec384_key, IKE_HASH_BIT(IKE_HASH_SHA2_256), false,
		IKE_AUTH_METHOD_DIGSIG, "sha256", "", "ecdsa-with-SHA256");
	sign_case("classic RSA (no notify)", rsa_cert, rsa_key, 0, false, IKE_AUTH_METHOD_RSA, "sha1", "", NULL);
	sign_case("classic ECDSA P-256 (no notify)", ec_cert, ec_key, 0, false, IKE_AUTH_METHOD_ECDSA_256, NULL, "", NULL);
	sign_case("classic ECDSA P-521 (SHA-1 only)", ec521_cert, ec521_key, IKE_HASH_BIT(IKE_HASH_SHA1), false,
		IKE_AUTH_METHOD_ECDSA_521, NULL, "", NULL);

	/* RFC 7427 Appendix A, byte for byte. */
	static const uint8_t aid_pss256[] = { 0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
		0x0a, 0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
		0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
		0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01,
		0x20 };
	static const uint8_t aid_rsa256[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
		0x0b, 0x05, 0x00 };
	static const uint8_t aid_ec256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	static const uint8_t aid_ec384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 };
	static const uint8_t aid_sha1rsa[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
		0x05, 0x05, 0x00 };
	struct ike_cred *c = cred_of(rsa_cert, rsa_key);
	uint8_t auth[IKE_AUTH_SIG_MAX], method, d[4096];
	ike_auth_sign(c, IKE_HASH_BIT(IKE_HASH_SHA2_256), true, octets, sizeof octets, &method, auth, sizeof auth);
	CHECK(auth[0] == sizeof aid_pss256 && !memcmp(auth + 1, aid_pss256, sizeof aid_pss256),
		"PSS SHA-256 AlgorithmIdentifier is RFC 7427 A.4.3's");
	ike_auth_sign(c, IKE_HASH_BIT(IKE_HASH_SHA2_256), false, octets, sizeof octets, &method, auth, sizeof auth);
	CHECK(auth[0] == sizeof aid_rsa256 && !memcmp(auth + 1, aid_rsa256, sizeof aid_rsa256),
		"sha256WithRSAEncryption AlgorithmIdentifier is RFC 7427 A.1.2's");
	CHECK_EQ(ike_auth_sign(c, IKE_HASH_BIT(IKE_HASH_SHA2_256), false, octets, sizeof octets, &method, auth, 100),
		-IKE_E_NOSPACE, "short output refused");
	ike_cred_free(c);

	cli_sign_case("openssl RSA PKCS#1 SHA-256", rsa_cert, rsa_key, "sha256", "", aid_rsa256, sizeof aid_rsa256);
	cli_sign_case("openssl RSASSA-PSS SHA-256", rsa_cert, rsa_key, "sha256",
		"-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32", aid_pss256, sizeof aid_pss256);
	cli_sign_case("openssl ECDSA P-256 SHA-256", ec_cert, ec_key, "sha256", "", aid_ec256, sizeof aid_ec256);
	cli_sign_case("openssl ECDSA P-384 SHA-384", ec384_cert, ec384_key, "sha384", "", aid_ec384, sizeof aid_ec384);

	/* Refusals. */
	size_t dl = der(rsa_cert, d);
	write_file("octets.bin", octets, sizeof octets);
	char *kp = pem_key(rsa_key);
	write_file("key.pem", kp, strlen(kp));
	free(kp);
	sh("openssl dgst -sha1 -sign %s -out %s %s", path("key.pem"), path("cli.sig"), path("octets.bin"));
	unlink(path("key.pem"));
	auth[0] = sizeof aid_sha1rsa;
	memcpy(auth + 1, aid_sha1rsa, sizeof aid_sha1rsa);
	size_t sl = read_file("cli.sig", auth + 1 + sizeof aid_sha1rsa, 1024);
	CHECK_EQ(ike_auth_verify(d, dl, IKE_AUTH_METHOD_DIGSIG, auth, 1 + sizeof aid_sha1rsa + sl, octets, sizeof octets),
		-IKE_E_NOT_SUPPORTED, "method 14 with SHA-1 refused (RFC 8247)");
	CHECK_EQ(ike_auth_verify(d, dl, IKE_AUTH_METHOD_RSA, auth + 1 + sizeof aid_sha1rsa, sl, octets, sizeof octets), 0,
		"the same signature as classic method 1 (SHA-1) verifies");
	auth[0] = 200;
	CHECK_EQ(ike_auth_verify(d, dl, IKE_AUTH_METHOD_DIGSIG, auth, 20, octets, sizeof octets), -IKE_E_AUTH_FAILED,
		"AlgorithmIdentifier length past the end refused");
	uint8_t ec_auth[1 + sizeof aid_ec256 + 72];
	ec_auth[0] = sizeof aid_ec256;
	memcpy(ec_auth + 1, aid_ec256, sizeof aid_ec256);
	memset(ec_auth + 1 + sizeof aid_ec256, 0x30, 72);
	CHECK_EQ(ike_auth_verify(d, dl, IKE_AUTH_METHOD_DIGSIG, ec_auth, sizeof ec_auth, octets, sizeof octets),
		-IKE_E_AUTH_FAILED, "an ECDSA AlgorithmIdentifier with an RSA certificate fails");
	CHECK_EQ(ike_auth_verify(d, dl, IKE_AUTH_METHOD_ECDSA_256, ec_auth, 64, octets, sizeof octets), -IKE_E_AUTH_FAILED,
		"classic ECDSA with an RSA certificate fails");
	CHECK_EQ(ike_auth_verify(d, dl, IKE_AUTH_METHOD_PSK, ec_auth, 64, octets, sizeof octets), -IKE_E_NOT_SUPPORTED,
		"PSK is not a signature method");
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ike_cert.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	test_identities();
	make_pki();
	test_credentials();
	test_id_vs_cert();
	test_chain();
	test_signatures();
	sh("rm -rf %s", tmpdir);
	return check_done();
}
