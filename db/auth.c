/* auth.c: users with scrypt password hashes, API tokens and web sessions stored only as SHA-256 hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "db_int.h"

/* scrypt at N = 2^15, r = 8, p = 1: 32 MiB and ~0.1 s per guess (RFC 7914 interactive-login figures). */
#define PW_LN 15
#define PW_R 8
#define PW_P 1
#define PW_SALT 16
#define PW_KEY 32
#define PW_MAX 1024         /* longer passwords are refused, not truncated */
#define LAST_USED_GRANULE 60  /* seconds: a token used often is not rewritten on every request */

/* ---- encodings and digests ---- */

static const char b64url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t db_b64url(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6 && o + 1 < outlen) {
			bits -= 6;
			out[o++] = b64url_alpha[(acc >> bits) & 63];
		}
	}
	if (bits > 0 && o + 1 < outlen)
		out[o++] = b64url_alpha[(acc << (6 - bits)) & 63];
	if (outlen)
		out[o] = 0;
	return o;
}

/* Decodes unpadded base64url; returns the byte count or -1. */
static int b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		const char *p = in[i] ? strchr(b64url_alpha, in[i]) : NULL;
		if (!p)
			return -1;
		acc = (acc << 6) | (uint32_t)(p - b64url_alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == outlen)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (int)o;
}

int db_random(uint8_t *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -DB_E_IO;
}

int db_sha256(const void *data, size_t n, uint8_t out[32])
{
	unsigned int len = 0;

	return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -DB_E_IO;
}

/* ---- passwords ---- */

static int scrypt(const char *pw, const uint8_t *salt, size_t saltlen, unsigned ln, unsigned r, unsigned p,
                  uint8_t *out, size_t outlen)
{
	uint64_t n = (uint64_t)1 << ln;
	/* OpenSSL's default ceiling (32 MiB) is just below what N=2^15, r=8 needs. */
	uint64_t maxmem = 128u * r * (n + p + 2) + (1u << 20);
	uint32_t r32 = r, p32 = p;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, strlen(pw)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_construct_end(),
	};
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int ok = ctx && EVP_KDF_derive(ctx, out, outlen, params) == 1;

	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -DB_E_IO;
}

int db_password_hash(const char *password, char out[DB_PWHASH_LEN])
{
	uint8_t salt[PW_SALT], key[PW_KEY];
	char s64[32], k64[48];
	int rc;

	out[0] = 0;
	if (!password || !*password || strlen(password) > PW_MAX)
		return -DB_E_INVALID;
	if ((rc = db_random(salt, sizeof salt)))
		return rc;
	rc = scrypt(password, salt, sizeof salt, PW_LN, PW_R, PW_P, key, sizeof key);
	if (rc == 0) {
		db_b64url(salt, sizeof salt, s64, sizeof s64);
		db_b64url(key, sizeof key, k64, sizeof k64);
		snprintf(out, DB_PWHASH_LEN, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", PW_LN, PW_R, PW_P, s64, k64);
	}
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

/* Parameters are bounded so a tampered hash cannot make a login take minutes or gigabytes. */
int db_password_verify(const char *password, const char *hash)
{
	unsigned ln, r, p;
	int off = 0;
	uint8_t salt[64], want[64], got[64];
	int saltlen, keylen, rc = -DB_E_AUTH;

	if (!password || !hash || strlen(password) > PW_MAX)
		return -DB_E_AUTH;
	if (sscanf(hash, "$scrypt$ln=%u,r=%u,p=%u$%n", &ln, &r, &p, &off) != 3 || off == 0)
		return -DB_E_AUTH;
	if (ln < 10 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16)
		return -DB_E_AUTH;
	const char *s = hash + off, *d = strchr(s, '$');
	if (!d)
		return -DB_E_AUTH;
	saltlen = b64url_decode(s, (size_t)(d - s), salt, sizeof salt);
	keylen = b64url_decode(d + 1, strlen(d + 1), want, sizeof want);
	if (saltlen < 8 || keylen < 16)
		return -DB_E_AUTH;
	if (scrypt(password, salt, (size_t)saltlen, ln, r, p, got, (size_t)keylen) == 0 &&
	    CRYPTO_memcmp(got, want, (size_t)keylen) == 0)
		rc = 0;
	OPENSSL_cleanse(got, sizeof got);
	return rc;
}

/* ---- users ---- */

#define USER_COLS "u.id, u.name, u.role, u.created, u.disabled"

static const char SQL_USER_INSERT[] =
	"INSERT INTO users (name, role, password_hash, created, disabled) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
static const char SQL_USER_UPDATE[] = "UPDATE users SET name = ?2, role = ?3, disabled = ?4 WHERE id = ?1";
static const char SQL_USER_SET_PW[] = "UPDATE users SET password_hash = ?2 WHERE id = ?1";
static const char SQL_USER_DELETE[] = "DELETE FROM users WHERE id = ?1";
static const char SQL_USER_GET[] = "SELECT " USER_COLS " FROM users u WHERE u.id = ?1";
static const char SQL_USER_GET_NAME[] = "SELECT " USER_COLS " FROM users u WHERE u.name = ?1";
static const char SQL_USER_LIST[] = "SELECT " USER_COLS " FROM users u ORDER BY u.id";
static const char SQL_USER_COUNT[] = "SELECT count(*) FROM users";
static const char SQL_USER_HASH[] = "SELECT " USER_COLS ", u.password_hash FROM users u WHERE u.name = ?1";

static void read_user(sqlite3_stmt *st, int c, struct db_user *u)
{
	u->id = sqlite3_column_int64(st, c);
	db_col_text(st, c + 1, u->name, sizeof u->name);
	db_col_text(st, c + 2, u->role, sizeof u->role);
	u->created = sqlite3_column_int64(st, c + 3);
	u->disabled = sqlite3_column_int(st, c + 4) != 0;
}

static int hash_or_fail(struct db *db, const char *password, char hash[DB_PWHASH_LEN])
{
	int rc = db_password_hash(password, hash);

	if (rc == -DB_E_INVALID)
		return db_fail(db, DB_E_INVALID, "password", "password: 1 to %d characters", PW_MAX);
	if (rc)
		return db_fail(db, -rc, "password", "password hashing failed");
	return 0;
}

int db_user_insert(struct db *db, struct db_user *u, const char *password)
{
	char hash[DB_PWHASH_LEN];
	int rc;

	db_clear_err(db);
	if ((rc = hash_or_fail(db, password, hash)))
		return rc;
	return db_user_insert_hashed(db, u, hash);
}

int db_user_insert_hashed(struct db *db, struct db_user *u, const char *hash)
{
	sqlite3_stmt *st;
	int own, rc;

	db_clear_err(db);
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, SQL_USER_INSERT, &st)) == 0) {
		u->created = db_now();
		db_bind_text(st, 1, u->name);
		db_bind_text(st, 2, u->role);
		db_bind_text(st, 3, hash);
		sqlite3_bind_int64(st, 4, u->created);
		sqlite3_bind_int(st, 5, u->disabled);
		rc = db_step(db, st);
		if (rc == 1) {
			u->id = sqlite3_column_int64(st, 0);
			rc = db_run(db, st);
		} else if (rc == 0) {
			rc = db_fail(db, DB_E_IO, NULL, "insert returned no row");
		}
	}
	return db_w_end(db, own, rc);
}

int db_user_update(struct db *db, const struct db_user *u)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_USER_UPDATE, &st)) == 0) {
		sqlite3_bind_int64(st, 1, u->id);
		db_bind_text(st, 2, u->name);
		db_bind_text(st, 3, u->role);
		sqlite3_bind_int(st, 4, u->disabled);
		rc = db_run_one(db, st, "user");
	}
	return db_w_end(db, own, rc);
}

int db_user_set_password(struct db *db, int64_t id, const char *password)
{
	char hash[DB_PWHASH_LEN];
	int rc;

	db_clear_err(db);
	if ((rc = hash_or_fail(db, password, hash)))
		return rc;
	return db_user_set_password_hashed(db, id, hash);
}

int db_user_set_password_hashed(struct db *db, int64_t id, const char *hash)
{
	sqlite3_stmt *st;
	int own, rc;

	db_clear_err(db);
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, SQL_USER_SET_PW, &st)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		db_bind_text(st, 2, hash);
		rc = db_run_one(db, st, "user");
	}
	return db_w_end(db, own, rc);
}


int db_user_delete(struct db *db, int64_t id)
{
	return db_delete_id(db, SQL_USER_DELETE, id, "user");
}

static void user_row(sqlite3_stmt *st, void *out)
{
	read_user(st, 0, out);
}

static int user_one(struct db *db, sqlite3_stmt *st, struct db_user *out)
{
	return db_read_one(db, st, user_row, out, "user");
}

int db_user_get(struct db *db, int64_t id, struct db_user *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_USER_GET, &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return user_one(db, st, out);
}

int db_user_get_by_name(struct db *db, const char *name, struct db_user *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_USER_GET_NAME, &st);

	if (rc)
		return rc;
	db_bind_text(st, 1, name);
	return user_one(db, st, out);
}

int db_user_list(struct db *db, struct db_user **out)
{
	sqlite3_stmt *st;
	void *arr;
	int rc = db_prep(db, SQL_USER_LIST, &st);

	*out = NULL;
	if (rc)
		return rc;
	rc = db_read_all(db, st, user_row, sizeof **out, &arr);
	*out = arr;
	return rc;
}

int db_user_count(struct db *db, int64_t *count)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_USER_COUNT, &st);

	return rc ? rc : db_scalar(db, st, count);
}

/* A hash of a password nobody has, so an unknown user costs as much as a wrong password. */
static const char *decoy_hash(void)
{
	static char decoy[DB_PWHASH_LEN];

	if (!decoy[0])
		db_password_hash("decoy password for unknown users", decoy);
	return decoy;
}

int db_user_login_hash(struct db *db, const char *name, struct db_user *out, char hash[DB_PWHASH_LEN])
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_USER_HASH, &st), found;

	memset(out, 0, sizeof *out);
	if (rc)
		return rc;
	db_bind_text(st, 1, name);
	found = db_step(db, st);
	if (found < 0)
		return found;
	if (found) {
		read_user(st, 0, out);
		db_col_text(st, 5, hash, DB_PWHASH_LEN);
		sqlite3_reset(st);
	} else {
		snprintf(hash, DB_PWHASH_LEN, "%s", decoy_hash());
	}
	return 0;
}

/* ---- API tokens ---- */

#define TOKEN_COLS "t.id, t.user_id, t.name, t.created, t.expires, t.last_used"

static const char SQL_TOKEN_INSERT[] =
	"INSERT INTO tokens (user_id, name, hash, created, expires) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
static const char SQL_TOKEN_FIND[] =
	"SELECT " TOKEN_COLS ", " USER_COLS " FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1";
static const char SQL_TOKEN_USED[] = "UPDATE tokens SET last_used = ?2 WHERE id = ?1";
static const char SQL_TOKEN_DELETE[] = "DELETE FROM tokens WHERE id = ?1";
static const char SQL_TOKEN_LIST[] =
	"SELECT " TOKEN_COLS " FROM tokens t WHERE ?1 = 0 OR t.user_id = ?1 ORDER BY t.id";

static void read_token(sqlite3_stmt *st, struct db_token *t)
{
	t->id = sqlite3_column_int64(st, 0);
	t->user_id = sqlite3_column_int64(st, 1);
	db_col_text(st, 2, t->name, sizeof t->name);
	t->created = sqlite3_column_int64(st, 3);
	t->expires = sqlite3_column_int64(st, 4);
	t->last_used = sqlite3_column_int64(st, 5);
}

/* prefix + base64url of 32 random bytes into text; its SHA-256 into hash. */
static int new_secret(const char *prefix, char *text, size_t len, uint8_t hash[32])
{
	uint8_t raw[32];
	size_t pl = strlen(prefix);
	int rc = db_random(raw, sizeof raw);

	if (rc == 0) {
		memcpy(text, prefix, pl);
		db_b64url(raw, sizeof raw, text + pl, len - pl);
		rc = db_sha256(text, strlen(text), hash);
	}
	OPENSSL_cleanse(raw, sizeof raw);
	return rc;
}

int db_token_create(struct db *db, int64_t user_id, const char *name, int64_t expires,
                    char token_out[DB_TOKEN_LEN], struct db_token *out)
{
	uint8_t hash[32];
	sqlite3_stmt *st;
	int own, rc;

	token_out[0] = 0;
	db_clear_err(db);
	if ((rc = new_secret(DB_TOKEN_PREFIX, token_out, DB_TOKEN_LEN, hash)))
		return db_fail(db, -rc, NULL, "no randomness for a token");
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, SQL_TOKEN_INSERT, &st)) == 0) {
		memset(out, 0, sizeof *out);
		out->user_id = user_id;
		snprintf(out->name, sizeof out->name, "%s", name);
		out->created = db_now();
		out->expires = expires;
		sqlite3_bind_int64(st, 1, user_id);
		db_bind_text(st, 2, name);
		sqlite3_bind_blob(st, 3, hash, sizeof hash, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, out->created);
		sqlite3_bind_int64(st, 5, expires);
		rc = db_step(db, st);
		if (rc == 1) {
			out->id = sqlite3_column_int64(st, 0);
			rc = db_run(db, st);
		} else if (rc == 0) {
			rc = db_fail(db, DB_E_IO, NULL, "insert returned no row");
		}
	}
	rc = db_w_end(db, own, rc);
	if (rc)
		OPENSSL_cleanse(token_out, DB_TOKEN_LEN);
	return rc;
}

static int touch_token(struct db *db, struct db_token *t, int64_t now)
{
	sqlite3_stmt *st;
	int own, rc;

	if (now - t->last_used < LAST_USED_GRANULE)
		return 0;
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, SQL_TOKEN_USED, &st)) == 0) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_int64(st, 2, now);
		rc = db_run(db, st);
	}
	if (rc == 0)
		t->last_used = now;
	return db_w_end(db, own, rc);
}

int db_token_verify(struct db *db, const char *token, struct db_token *tok, struct db_user *user)
{
	uint8_t hash[32];
	sqlite3_stmt *st;
	int64_t now = db_now();
	int rc;

	db_clear_err(db);
	if (!token || strlen(token) != DB_TOKEN_LEN - 1 || strncmp(token, DB_TOKEN_PREFIX, 5) != 0 ||
	    db_sha256(token, strlen(token), hash) != 0)
		return db_fail(db, DB_E_AUTH, NULL, "invalid token");
	if ((rc = db_prep(db, SQL_TOKEN_FIND, &st)))
		return rc;
	sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_TRANSIENT);
	rc = db_step(db, st);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return db_fail(db, DB_E_AUTH, NULL, "invalid token");
	read_token(st, tok);
	read_user(st, 6, user);
	sqlite3_reset(st);
	if ((tok->expires && tok->expires <= now) || user->disabled)
		return db_fail(db, DB_E_AUTH, NULL, "token expired or user disabled");
	return touch_token(db, tok, now);
}

int db_token_delete(struct db *db, int64_t id)
{
	return db_delete_id(db, SQL_TOKEN_DELETE, id, "token");
}

static void token_row(sqlite3_stmt *st, void *out)
{
	read_token(st, out);
}

int db_token_list(struct db *db, int64_t user_id, struct db_token **out)
{
	sqlite3_stmt *st;
	void *arr;
	int rc = db_prep(db, SQL_TOKEN_LIST, &st);

	*out = NULL;
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, user_id);
	rc = db_read_all(db, st, token_row, sizeof **out, &arr);
	*out = arr;
	return rc;
}

/* ---- web sessions: the cookie value is the secret, the table has its hash ---- */

static const char SQL_SESSION_INSERT[] =
	"INSERT INTO sessions (id, user_id, created, expires) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_SESSION_FIND[] =
	"SELECT " USER_COLS " FROM sessions s JOIN users u ON u.id = s.user_id"
	" WHERE s.id = ?1 AND s.expires > ?2 AND u.disabled = 0";
static const char SQL_SESSION_DELETE[] = "DELETE FROM sessions WHERE id = ?1";
static const char SQL_SESSION_PURGE[] = "DELETE FROM sessions WHERE expires <= ?1";
static const char SQL_SESSION_DELETE_USER[] = "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2";

int db_session_create(struct db *db, int64_t user_id, int64_t ttl_seconds, char sid_out[DB_SESSION_LEN])
{
	uint8_t hash[32];
	sqlite3_stmt *st;
	int64_t now = db_now();
	int own, rc;

	sid_out[0] = 0;
	db_clear_err(db);
	if ((rc = new_secret("", sid_out, DB_SESSION_LEN, hash)))
		return db_fail(db, -rc, NULL, "no randomness for a session");
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, SQL_SESSION_INSERT, &st)) == 0) {
		sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, user_id);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, now + ttl_seconds);
		rc = db_run(db, st);
	}
	rc = db_w_end(db, own, rc);
	if (rc)
		OPENSSL_cleanse(sid_out, DB_SESSION_LEN);
	return rc;
}

int db_session_check(struct db *db, const char *sid, struct db_user *user)
{
	uint8_t hash[32];
	sqlite3_stmt *st;
	int rc;

	db_clear_err(db);
	if (!sid || strlen(sid) != 43 || db_sha256(sid, 43, hash) != 0)
		return db_fail(db, DB_E_AUTH, NULL, "invalid session");
	if ((rc = db_prep(db, SQL_SESSION_FIND, &st)))
		return rc;
	sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, db_now());
	rc = db_step(db, st);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return db_fail(db, DB_E_AUTH, NULL, "invalid or expired session");
	read_user(st, 0, user);
	sqlite3_reset(st);
	return 0;
}

int db_session_delete(struct db *db, const char *sid)
{
	uint8_t hash[32];
	sqlite3_stmt *st;
	int own, rc;

	if (!sid || db_sha256(sid, strlen(sid), hash) != 0)
		return db_fail(db, DB_E_NOT_FOUND, NULL, "session not found");
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, SQL_SESSION_DELETE, &st)) == 0) {
		sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_TRANSIENT);
		rc = db_run_one(db, st, "session");
	}
	return db_w_end(db, own, rc);
}

int db_session_delete_user(struct db *db, int64_t user_id, const char *keep_sid)
{
	uint8_t hash[32];
	sqlite3_stmt *st;
	int own, rc;

	db_clear_err(db);
	if (keep_sid && db_sha256(keep_sid, strlen(keep_sid), hash) != 0)
		return db_fail(db, DB_E_IO, NULL, "cannot hash the session id");
	if ((rc = db_w_begin(db, &own)))
		return rc;
	if ((rc = db_prep(db, SQL_SESSION_DELETE_USER, &st)) == 0) {
		sqlite3_bind_int64(st, 1, user_id);
		if (keep_sid)
			sqlite3_bind_blob(st, 2, hash, sizeof hash, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(st, 2);
		rc = db_run(db, st);
		if (rc == 0)
			rc = sqlite3_changes(db->h);
	}
	return db_w_end(db, own, rc);
}

int db_session_purge(struct db *db)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_SESSION_PURGE, &st)) == 0) {
		sqlite3_bind_int64(st, 1, db_now());
		rc = db_run(db, st);
		if (rc == 0)
			rc = sqlite3_changes(db->h);
	}
	return db_w_end(db, own, rc);
}
