/* tls.c: bitwd's HTTPS certificate and key: the configured PEM files, or a self-signed pair made on first start. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bitwd.h"

#define PEM_MAX (256 * 1024)
#define CERT_DAYS 730

/* Reads a whole PEM file (NUL-terminated, malloc'd); 0, or -1 with err set. */
static int read_pem(const char *path, char **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *buf = malloc(PEM_MAX + 1);
	size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
	fclose(f);
	if (!buf || n == 0 || n > PEM_MAX) {
		snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory" : n ? "too large" : "empty");
		if (buf)
			OPENSSL_cleanse(buf, n > PEM_MAX ? PEM_MAX + 1 : n);
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Certificate and key must parse and belong together, or MHD fails later with less to say. */
static int check_pair(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	int rc = 0;
	if (!x) {
		snprintf(err, errlen, "the TLS certificate is not a PEM X.509 certificate");
		rc = -1;
	} else if (!k) {
		snprintf(err, errlen, "the TLS key is not an unencrypted PEM private key");
		rc = -1;
	} else if (X509_check_private_key(x, k) != 1) {
		snprintf(err, errlen, "the TLS key does not belong to the certificate");
		rc = -1;
	} else if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		mlog(1, "the TLS certificate has expired; browsers and clients will refuse it");
	}
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	return rc;
}

static int load_pair(const char *cert, const char *key, char **cert_pem, char **key_pem, char *err, size_t errlen)
{
	if (read_pem(cert, cert_pem, err, errlen) < 0)
		return -1;
	if (read_pem(key, key_pem, err, errlen) < 0 || check_pair(*cert_pem, *key_pem, err, errlen) < 0) {
		free(*cert_pem);
		free_secret(*key_pem);
		*cert_pem = *key_pem = NULL;
		return -1;
	}
	return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return -1;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* "IP:127.0.0.1,DNS:localhost"; an unspecified address (0.0.0.0, ::) names no IP. */
static void san_for(const char *addr, char *out, size_t len)
{
	struct in6_addr a6;
	struct in_addr a4;
	bool any = (inet_pton(AF_INET, addr, &a4) == 1 && a4.s_addr == 0) ||
	           (inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6));
	bool ip = inet_pton(AF_INET, addr, &a4) == 1 || inet_pton(AF_INET6, addr, &a6) == 1;
	if (ip && !any)
		snprintf(out, len, "IP:%s,DNS:localhost", addr);
	else
		snprintf(out, len, "DNS:localhost");
}

static X509 *make_cert(EVP_PKEY *key, const char *listen_addr)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	char san[128];
	san_for(listen_addr, san, sizeof san);
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
	bool ok = x && bn && name && X509_set_version(x, X509_VERSION_3) &&
		BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&   /* positive, at most 16 bytes */
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
		X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&      /* tolerate a peer's clock a little behind */
		X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) &&
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"bitw", -1, -1, 0) &&
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bitwd", -1, -1, 0) &&
		X509_set_issuer_name(x, name) && X509_set_pubkey(x, key) &&
		add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
		add_ext(x, NID_key_usage, "critical,digitalSignature") == 0 &&
		add_ext(x, NID_ext_key_usage, "serverAuth") == 0 &&
		add_ext(x, NID_subject_key_identifier, "hash") == 0 &&
		add_ext(x, NID_subject_alt_name, san) == 0 &&
		X509_sign(x, key, EVP_sha256()) > 0;
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* PEM text of a certificate or a private key, malloc'd. */
static char *to_pem(X509 *x, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_secmem());
	if (!b)
		return NULL;
	int ok = x ? PEM_write_bio_X509(b, x) : PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = ok && n > 0 ? malloc((size_t)n + 1) : NULL;
	if (out) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(b);   /* secure memory: wiped on free */
	return out;
}

/* Writes a new file (never over an old one) with the given mode. */
static int write_new(const char *path, const char *text, mode_t mode, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static int create_pair(const char *cert, const char *key, const char *listen_addr, char **cert_pem,
                       char **key_pem, char *err, size_t errlen)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = k ? make_cert(k, listen_addr) : NULL;
	*cert_pem = x ? to_pem(x, NULL) : NULL;
	*key_pem = x ? to_pem(NULL, k) : NULL;
	X509_free(x);
	EVP_PKEY_free(k);
	if (!*cert_pem || !*key_pem) {
		snprintf(err, errlen, "cannot generate a TLS certificate");
		goto fail;
	}
	/* the key first: a certificate without its key would block the next start */
	if (write_new(key, *key_pem, 0600, err, errlen) < 0)
		goto fail;
	if (write_new(cert, *cert_pem, 0644, err, errlen) < 0) {
		unlink(key);
		goto fail;
	}
	mlog(2, "made a self-signed TLS certificate %s (valid %d days)", cert, CERT_DAYS);
	return 0;
fail:
	free(*cert_pem);
	free_secret(*key_pem);
	*cert_pem = *key_pem = NULL;
	return -1;
}

int tls_load_or_create(const struct bitwd_opts *o, char **cert_pem, char **key_pem, char *err, size_t errlen)
{
	*cert_pem = *key_pem = NULL;
	if (o->tls_cert || o->tls_key) {
		if (!o->tls_cert || !o->tls_key) {
			snprintf(err, errlen, "--tls-cert and --tls-key go together");
			return -1;
		}
		return load_pair(o->tls_cert, o->tls_key, cert_pem, key_pem, err, errlen);
	}
	/* beside the database: the one directory that is ours and private */
	const char *slash = strrchr(o->db_path, '/');
	int dirlen = slash ? (int)(slash - o->db_path) : 1;
	const char *dir = slash ? o->db_path : ".";
	if (slash == o->db_path)
		dirlen = 0;   /* "/bitw.db": the root directory */
	char cert[4096], key[4096];
	snprintf(cert, sizeof cert, "%.*s/bitwd.crt", dirlen, dir);
	snprintf(key, sizeof key, "%.*s/bitwd.key", dirlen, dir);
	bool have_cert = access(cert, F_OK) == 0, have_key = access(key, F_OK) == 0;
	if (have_cert && have_key)
		return load_pair(cert, key, cert_pem, key_pem, err, errlen);
	if (have_cert != have_key) {
		snprintf(err, errlen, "%s exists without %s; remove it to have a new pair made", have_cert ? cert : key,
		         have_cert ? key : cert);
		return -1;
	}
	return create_pair(cert, key, o->listen_addr, cert_pem, key_pem, err, errlen);
}
