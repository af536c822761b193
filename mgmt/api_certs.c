/* api_certs.c: /api/v1/certificates — X.509 certificates for IKE (private keys write-only) and chain checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bitwd.h"
#include "ike/ike.h"

static bool has_key(struct bitwd *d, int64_t id)
{
	uint8_t *k = NULL;
	size_t len = 0;

	if (db_cert_key_get(d->db, id, &k, &len) < 0)
		return false;
	db_secret_free(k, len);
	return true;
}

static json_t *cert_json(struct bitwd *d, const struct db_cert *c, bool with_pem)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:b, s:I, s:b, s:I}", "id", (json_int_t)c->id, "name", c->name,
	                      "subject", c->subject, "is_ca", c->is_ca, "not_after", (json_int_t)c->not_after,
	                      "has_key", has_key(d, c->id), "created", (json_int_t)c->created);

	if (o && with_pem && c->pem)
		json_object_set_new(o, "pem", json_string(c->pem));
	return o;
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

/* What the list shows: subject (RFC 2253), expiry, whether it may sign others. */
static void describe(X509 *x, struct db_cert *c)
{
	BIO *b = BIO_new(BIO_s_mem());
	const ASN1_TIME *na = X509_get0_notAfter(x);
	struct tm tm;
	int n;

	if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_read(b, c->subject, (int)sizeof c->subject - 1)) > 0)
		c->subject[n] = '\0';
	BIO_free(b);
	if (na && ASN1_TIME_to_tm(na, &tm) == 1)
		c->not_after = (int64_t)timegm(&tm);
	c->is_ca = X509_check_ca(x) > 0;
}

/* The key must be a PEM private key matching the certificate; 0, or -1 after replying 422 naming "key". */
static int check_key(struct req *r, X509 *x, const char *key)
{
	BIO *b = BIO_new_mem_buf(key, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	int ok = k && X509_check_private_key(x, k) == 1;

	EVP_PKEY_free(k);
	BIO_free(b);
	if (!ok)
		reply_problem(r, 422, "BAD_FIELD", "key", "not an unencrypted PEM private key of this certificate");
	return ok ? 0 : -1;
}

static void key_wipe(struct req *r)
{
	json_t *v = r->body ? json_object_get(r->body, "key") : NULL;

	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

void certs_create(struct req *r)
{
	static const char *const fields[] = { "name", "pem", "key", NULL };
	struct db_cert c = { 0 };
	json_t *name, *pem, *key;
	char obj[48], loc[64];
	X509 *x = NULL;
	int rc;

	if (req_body_object(r, fields))
		goto out;
	name = json_object_get(r->body, "name");
	pem = json_object_get(r->body, "pem");
	key = json_object_get(r->body, "key");
	if (!json_is_string(name) || json_string_length(name) >= sizeof c.name) {
		reply_problem(r, 422, name ? "BAD_FIELD" : "MISSING_FIELD", "name", "1 to 63 characters");
		goto out;
	}
	if (!json_is_string(pem) || !(x = pem_cert(json_string_value(pem)))) {
		reply_problem(r, 422, pem ? "BAD_FIELD" : "MISSING_FIELD", "pem", "a PEM X.509 certificate");
		goto out;
	}
	if (key && (!json_is_string(key) || check_key(r, x, json_string_value(key)))) {
		if (!json_is_string(key))
			reply_problem(r, 422, "BAD_FIELD", "key", "a PEM private key");
		goto out;
	}
	snprintf(c.name, sizeof c.name, "%s", json_string_value(name));
	c.pem = (char *)json_string_value(pem);
	describe(x, &c);
	if ((rc = db_begin(r->d->db)) || (rc = db_cert_insert(r->d->db, &c, key ? json_string_value(key) : NULL))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		goto out;
	}
	snprintf(obj, sizeof obj, "certificate/%lld", (long long)c.id);
	audit(r, "certificate.create", obj, json_pack("{s:s, s:s, s:b}", "name", c.name, "subject", c.subject,
	                                              "with_key", key != NULL));
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		goto out;
	}
	ike_driver_reload(r->d);
	snprintf(loc, sizeof loc, "/api/v1/certificates/%lld", (long long)c.id);
	reply_header(r, "Location", loc);
	reply_json(r, 201, cert_json(r->d, &c, false));
out:
	X509_free(x);
	key_wipe(r);
}

void certs_list(struct req *r)
{
	struct db_cert *all = NULL;
	json_t *items = json_array();
	int n = db_cert_list(r->d->db, &all);

	if (n < 0) {
		json_decref(items);
		reply_db_error(r, n);
		return;
	}
	for (int i = 0; i < n; i++) {
		json_array_append_new(items, cert_json(r->d, &all[i], false));
		db_cert_free(&all[i]);
	}
	free(all);
	reply_json(r, 200, json_pack("{s:o, s:i}", "items", items, "total", n));
}

static int cert_param(struct req *r, struct db_cert *c)
{
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0)
		return -1;
	if ((rc = db_cert_get(r->d->db, id, c))) {
		reply_db_error(r, rc);
		return -1;
	}
	return 0;
}

void certs_get(struct req *r)
{
	struct db_cert c;

	if (cert_param(r, &c))
		return;
	reply_json(r, 200, cert_json(r->d, &c, true));
	db_cert_free(&c);
}

/* A peer that authenticates with it (or trusts it) keeps it: 409 naming the peer. */
void certs_delete(struct req *r)
{
	struct db_peer *peers = NULL;
	struct db_cert c;
	int64_t total = 0;
	char obj[48];
	int n, rc;

	if (cert_param(r, &c))
		return;
	n = db_peer_count(r->d->db, &total) == 0 ? db_peer_list(r->d->db, 0, total, &peers) : 0;
	for (int i = 0; i < n; i++) {
		if (peers[i].cert_id == c.id || peers[i].ca_id == c.id) {
			reply_problem(r, 409, "IN_USE", "certificate", "peer %s uses %s; change it first",
			              peers[i].name, c.name);
			free(peers);
			db_cert_free(&c);
			return;
		}
	}
	free(peers);
	if ((rc = db_begin(r->d->db)) || (rc = db_cert_delete(r->d->db, c.id))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		db_cert_free(&c);
		return;
	}
	snprintf(obj, sizeof obj, "certificate/%lld", (long long)c.id);
	audit(r, "certificate.delete", obj, json_pack("{s:s}", "name", c.name));
	db_cert_free(&c);
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		return;
	}
	ike_driver_reload(r->d);
	reply_no_content(r);
}

/* Every CA certificate stored, concatenated: the trust store of a check (and of peers without their own "ca"). */
char *certs_ca_bundle(struct bitwd *d)
{
	struct db_cert *all = NULL;
	int n = db_cert_list(d->db, &all);
	size_t len = 0;
	char *out = NULL;

	for (int i = 0; i < n; i++) {
		if (all[i].is_ca && all[i].pem) {
			size_t l = strlen(all[i].pem);
			char *t = realloc(out, len + l + 2);

			if (t) {
				out = t;
				memcpy(out + len, all[i].pem, l);
				len += l;
				out[len++] = '\n';
				out[len] = '\0';
			}
		}
		db_cert_free(&all[i]);
	}
	free(all);
	return out;
}

/* Checks the certificate against the CA certificates stored here, at the current time. */
void certs_verify(struct req *r)
{
	struct ike_castore *store = NULL;
	struct db_cert c;
	char err[160] = "", *bundle;
	unsigned char *der = NULL;
	X509 *x;
	int len, rc;

	if (cert_param(r, &c))
		return;
	x = pem_cert(c.pem);
	len = x ? i2d_X509(x, &der) : -1;
	bundle = certs_ca_bundle(r->d);
	if (len <= 0) {
		rc = -IKE_E_CERT_INVALID;
	} else if (!bundle) {
		rc = -IKE_E_CERT_UNKNOWN_CA;
		snprintf(err, sizeof err, "no CA certificate is stored");
	} else if ((rc = ike_castore_new(bundle, NULL, &store, err, sizeof err)) == 0) {
		rc = ike_cert_verify(store, der, (size_t)len, NULL, NULL, 0, (int64_t)time(NULL));
	}
	reply_json(r, 200, json_pack("{s:I, s:s, s:b, s:s, s:s}", "id", (json_int_t)c.id, "name", c.name, "valid",
	                             rc == 0, "code", rc == 0 ? "OK" : ike_err_name(rc), "reason",
	                             rc == 0 ? "the chain verifies against the stored CAs" : err[0] ? err
	                                                                                       : ike_strerror(rc)));
	if (store)
		ike_castore_free(store);
	OPENSSL_free(der);
	X509_free(x);
	free(bundle);
	db_cert_free(&c);
}
