/* peer.c: IKE peers with their PSKs, and certificates with their private keys; secrets read only on request. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db_int.h"

/* ---- peers ---- */

#define PEER_COLS \
	"id, name, address, local_id, remote_id, auth, ike_proposals, esp_proposals, ike_lifetime, child_lifetime," \
	" rekey_margin, dpd_interval, dpd_action, nat_t, nat_force_encap, nat_keepalive, start_action, created," \
	" local, fragmentation, cert_id, ca_id, dpd_timeout"

static const char SQL_PEER_INSERT[] =
	"INSERT INTO peers (" PEER_COLS ") VALUES (NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
	" ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23) RETURNING id";
static const char SQL_PEER_UPDATE[] =
	"UPDATE peers SET name = ?2, address = ?3, local_id = ?4, remote_id = ?5, auth = ?6, ike_proposals = ?7,"
	" esp_proposals = ?8, ike_lifetime = ?9, child_lifetime = ?10, rekey_margin = ?11, dpd_interval = ?12,"
	" dpd_action = ?13, nat_t = ?14, nat_force_encap = ?15, nat_keepalive = ?16, start_action = ?17,"
	" local = ?19, fragmentation = ?20, cert_id = ?21, ca_id = ?22, dpd_timeout = ?23 WHERE id = ?1";
static const char SQL_PEER_COUNT[] = "SELECT count(*) FROM peers";
static const char SQL_PEER_DELETE[] = "DELETE FROM peers WHERE id = ?1";
static const char SQL_PEER_GET[] = "SELECT " PEER_COLS " FROM peers WHERE id = ?1";
static const char SQL_PEER_GET_NAME[] = "SELECT " PEER_COLS " FROM peers WHERE name = ?1";
static const char SQL_PEER_LIST[] = "SELECT " PEER_COLS " FROM peers ORDER BY id LIMIT ?2 OFFSET ?1";
static const char SQL_PSK_PUT[] =
	"INSERT INTO peer_secrets (peer_id, psk) VALUES (?1, ?2) ON CONFLICT (peer_id) DO UPDATE SET psk = excluded.psk";
static const char SQL_PSK_GET[] = "SELECT psk FROM peer_secrets WHERE peer_id = ?1";

void db_peer_init(struct db_peer *p)
{
	memset(p, 0, sizeof *p);
	strcpy(p->auth, "psk");
	strcpy(p->ike_proposals, "default");
	strcpy(p->esp_proposals, "default");
	p->ike_lifetime = 14400;
	p->child_lifetime = 3600;
	p->rekey_margin = 540;
	p->dpd_interval = 30;
	strcpy(p->dpd_action, "restart");
	p->dpd_timeout = 10;
	p->nat_t = true;
	p->nat_keepalive = 20;
	strcpy(p->start_action, "trap");
	p->fragmentation = true;
}

static void bind_opt_id(sqlite3_stmt *st, int i, int64_t id)
{
	if (id > 0)
		sqlite3_bind_int64(st, i, id);
	else
		sqlite3_bind_null(st, i);
}

static void bind_peer(sqlite3_stmt *st, const struct db_peer *p)
{
	db_bind_text(st, 2, p->name);
	db_bind_text(st, 3, p->address);
	db_bind_text(st, 4, p->local_id);
	db_bind_text(st, 5, p->remote_id);
	db_bind_text(st, 6, p->auth);
	db_bind_text(st, 7, p->ike_proposals);
	db_bind_text(st, 8, p->esp_proposals);
	sqlite3_bind_int64(st, 9, p->ike_lifetime);
	sqlite3_bind_int64(st, 10, p->child_lifetime);
	sqlite3_bind_int64(st, 11, p->rekey_margin);
	sqlite3_bind_int64(st, 12, p->dpd_interval);
	db_bind_text(st, 13, p->dpd_action);
	sqlite3_bind_int(st, 14, p->nat_t);
	sqlite3_bind_int(st, 15, p->nat_force_encap);
	sqlite3_bind_int64(st, 16, p->nat_keepalive);
	db_bind_text(st, 17, p->start_action);
	db_bind_text(st, 19, p->local);
	sqlite3_bind_int(st, 20, p->fragmentation);
	bind_opt_id(st, 21, p->cert_id);
	bind_opt_id(st, 22, p->ca_id);
	sqlite3_bind_int64(st, 23, p->dpd_timeout);
}

static void read_peer(sqlite3_stmt *st, struct db_peer *p)
{
	p->id = sqlite3_column_int64(st, 0);
	db_col_text(st, 1, p->name, sizeof p->name);
	db_col_text(st, 2, p->address, sizeof p->address);
	db_col_text(st, 3, p->local_id, sizeof p->local_id);
	db_col_text(st, 4, p->remote_id, sizeof p->remote_id);
	db_col_text(st, 5, p->auth, sizeof p->auth);
	db_col_text(st, 6, p->ike_proposals, sizeof p->ike_proposals);
	db_col_text(st, 7, p->esp_proposals, sizeof p->esp_proposals);
	p->ike_lifetime = sqlite3_column_int64(st, 8);
	p->child_lifetime = sqlite3_column_int64(st, 9);
	p->rekey_margin = sqlite3_column_int64(st, 10);
	p->dpd_interval = sqlite3_column_int64(st, 11);
	db_col_text(st, 12, p->dpd_action, sizeof p->dpd_action);
	p->nat_t = sqlite3_column_int(st, 13) != 0;
	p->nat_force_encap = sqlite3_column_int(st, 14) != 0;
	p->nat_keepalive = sqlite3_column_int64(st, 15);
	db_col_text(st, 16, p->start_action, sizeof p->start_action);
	p->created = sqlite3_column_int64(st, 17);
	db_col_text(st, 18, p->local, sizeof p->local);
	p->fragmentation = sqlite3_column_int(st, 19) != 0;
	p->cert_id = sqlite3_column_int64(st, 20);
	p->ca_id = sqlite3_column_int64(st, 21);
	p->dpd_timeout = sqlite3_column_int64(st, 22);
}

int db_peer_count(struct db *db, int64_t *count)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_PEER_COUNT, &st);

	return rc ? rc : db_scalar(db, st, count);
}

int db_peer_insert(struct db *db, struct db_peer *p)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_PEER_INSERT, &st)) == 0) {
		p->created = db_now();
		bind_peer(st, p);
		sqlite3_bind_int64(st, 18, p->created);
		rc = db_step(db, st);
		if (rc == 1) {
			p->id = sqlite3_column_int64(st, 0);
			rc = db_run(db, st);
		} else if (rc == 0) {
			rc = db_fail(db, DB_E_IO, NULL, "insert returned no row");
		}
	}
	return db_w_end(db, own, rc);
}

int db_peer_update(struct db *db, const struct db_peer *p)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_PEER_UPDATE, &st)) == 0) {
		sqlite3_bind_int64(st, 1, p->id);
		bind_peer(st, p);
		rc = db_run_one(db, st, "peer");
	}
	return db_w_end(db, own, rc);
}


int db_peer_delete(struct db *db, int64_t id)
{
	return db_delete_id(db, SQL_PEER_DELETE, id, "peer");
}

static void peer_row(sqlite3_stmt *st, void *out)
{
	read_peer(st, out);
}

static int peer_one(struct db *db, sqlite3_stmt *st, struct db_peer *out)
{
	return db_read_one(db, st, peer_row, out, "peer");
}

int db_peer_get(struct db *db, int64_t id, struct db_peer *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_PEER_GET, &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return peer_one(db, st, out);
}

int db_peer_get_by_name(struct db *db, const char *name, struct db_peer *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_PEER_GET_NAME, &st);

	if (rc)
		return rc;
	db_bind_text(st, 1, name);
	return peer_one(db, st, out);
}

int db_peer_list(struct db *db, int64_t offset, int64_t limit, struct db_peer **out)
{
	sqlite3_stmt *st;
	void *arr;
	int rc = db_prep(db, SQL_PEER_LIST, &st);

	*out = NULL;
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, offset < 0 ? 0 : offset);
	sqlite3_bind_int64(st, 2, limit <= 0 ? -1 : limit);
	rc = db_read_all(db, st, peer_row, sizeof **out, &arr);
	*out = arr;
	return rc;
}

/* Writes a secret blob keyed by its owner's id; the caller's bytes are bound without a copy. */
static int put_secret(struct db *db, const char *sql, int64_t id, const void *p, size_t len, const char *field)
{
	sqlite3_stmt *st;
	int own, rc;

	if (!p || len == 0 || len > 65536)
		return db_fail(db, DB_E_INVALID, field, "%s: empty or too long", field);
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, sql, &st)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_blob(st, 2, p, (int)len, SQLITE_STATIC);
		rc = db_run(db, st);
		sqlite3_clear_bindings(st);
	}
	return db_w_end(db, own, rc);
}

static int get_secret(struct db *db, const char *sql, int64_t id, uint8_t **out, size_t *len)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, sql, &st);

	*out = NULL;
	*len = 0;
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	rc = db_step(db, st);
	if (rc != 1)
		return rc < 0 ? rc : db_fail(db, DB_E_NOT_FOUND, NULL, "secret not found");
	size_t n = (size_t)sqlite3_column_bytes(st, 0);
	/* One spare NUL byte so a PEM key can be handed to text parsers as is. */
	uint8_t *p = malloc(n + 1);
	if (!p) {
		sqlite3_reset(st);
		return db_fail(db, DB_E_NOMEM, NULL, "out of memory");
	}
	if (n)
		memcpy(p, sqlite3_column_blob(st, 0), n);
	p[n] = 0;
	sqlite3_reset(st);
	*out = p;
	*len = n;
	return 0;
}

void db_secret_free(uint8_t *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len + 1);
	free(p);
}

int db_peer_psk_set(struct db *db, int64_t peer_id, const uint8_t *psk, size_t len)
{
	if (len > 1024)
		return db_fail(db, DB_E_INVALID, "psk", "psk: at most 1024 bytes");
	return put_secret(db, SQL_PSK_PUT, peer_id, psk, len, "psk");
}

int db_peer_psk_get(struct db *db, int64_t peer_id, uint8_t **out, size_t *len)
{
	return get_secret(db, SQL_PSK_GET, peer_id, out, len);
}

/* ---- certificates ---- */

#define CERT_COLS "id, name, pem, is_ca, subject, not_after, created"

static const char SQL_CERT_INSERT[] =
	"INSERT INTO certificates (name, pem, is_ca, subject, not_after, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	" RETURNING id";
static const char SQL_CERT_DELETE[] = "DELETE FROM certificates WHERE id = ?1";
static const char SQL_CERT_GET[] = "SELECT " CERT_COLS " FROM certificates WHERE id = ?1";
static const char SQL_CERT_GET_NAME[] = "SELECT " CERT_COLS " FROM certificates WHERE name = ?1";
static const char SQL_CERT_LIST[] = "SELECT " CERT_COLS " FROM certificates ORDER BY id";
static const char SQL_CERT_KEY_PUT[] =
	"INSERT INTO cert_keys (cert_id, key_pem) VALUES (?1, ?2)"
	" ON CONFLICT (cert_id) DO UPDATE SET key_pem = excluded.key_pem";
static const char SQL_CERT_KEY_GET[] = "SELECT key_pem FROM cert_keys WHERE cert_id = ?1";

static int read_cert(struct db *db, sqlite3_stmt *st, struct db_cert *c)
{
	c->id = sqlite3_column_int64(st, 0);
	db_col_text(st, 1, c->name, sizeof c->name);
	c->pem = db_col_strdup(st, 2);
	c->is_ca = sqlite3_column_int(st, 3) != 0;
	db_col_text(st, 4, c->subject, sizeof c->subject);
	c->not_after = sqlite3_column_int64(st, 5);
	c->created = sqlite3_column_int64(st, 6);
	return c->pem ? 0 : db_fail(db, DB_E_NOMEM, NULL, "out of memory");
}

void db_cert_free(struct db_cert *c)
{
	free(c->pem);
	c->pem = NULL;
}

int db_cert_insert(struct db *db, struct db_cert *c, const char *key_pem)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_CERT_INSERT, &st)) == 0) {
		c->created = db_now();
		db_bind_text(st, 1, c->name);
		db_bind_text(st, 2, c->pem);
		sqlite3_bind_int(st, 3, c->is_ca);
		db_bind_text(st, 4, c->subject);
		sqlite3_bind_int64(st, 5, c->not_after);
		sqlite3_bind_int64(st, 6, c->created);
		rc = db_step(db, st);
		if (rc == 1) {
			c->id = sqlite3_column_int64(st, 0);
			rc = db_run(db, st);
		} else if (rc == 0) {
			rc = db_fail(db, DB_E_IO, NULL, "insert returned no row");
		}
	}
	if (rc == 0 && key_pem)
		rc = put_secret(db, SQL_CERT_KEY_PUT, c->id, key_pem, strlen(key_pem), "key");
	return db_w_end(db, own, rc);
}

int db_cert_delete(struct db *db, int64_t id)
{
	return db_delete_id(db, SQL_CERT_DELETE, id, "certificate");
}

static int cert_one(struct db *db, sqlite3_stmt *st, struct db_cert *out)
{
	int rc = db_step(db, st);

	memset(out, 0, sizeof *out);
	if (rc == 1) {
		rc = read_cert(db, st, out);
		sqlite3_reset(st);
		return rc;
	}
	return rc < 0 ? rc : db_fail(db, DB_E_NOT_FOUND, NULL, "certificate not found");
}

int db_cert_get(struct db *db, int64_t id, struct db_cert *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_CERT_GET, &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return cert_one(db, st, out);
}

int db_cert_get_by_name(struct db *db, const char *name, struct db_cert *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_CERT_GET_NAME, &st);

	if (rc)
		return rc;
	db_bind_text(st, 1, name);
	return cert_one(db, st, out);
}

int db_cert_list(struct db *db, struct db_cert **out)
{
	struct db_cert *arr = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_CERT_LIST, &st);

	*out = NULL;
	if (rc)
		return rc;
	while ((rc = db_step(db, st)) == 1) {
		if (n == cap) {
			struct db_cert *t = realloc(arr, (cap ? cap * 2 : 16) * sizeof *t);
			if (!t) {
				rc = db_fail(db, DB_E_NOMEM, NULL, "out of memory");
				break;
			}
			arr = t;
			cap = cap ? cap * 2 : 16;
		}
		if ((rc = read_cert(db, st, &arr[n])))
			break;
		n++;
	}
	if (rc < 0) {
		sqlite3_reset(st);
		for (size_t i = 0; i < n; i++)
			db_cert_free(&arr[i]);
		free(arr);
		return rc;
	}
	*out = arr;
	return (int)n;
}

int db_cert_key_get(struct db *db, int64_t cert_id, uint8_t **out, size_t *len)
{
	return get_secret(db, SQL_CERT_KEY_GET, cert_id, out, len);
}
