/* sa.c: manual SAs and their keys; keys are written here and read back only by db_sa_keys_get. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db_int.h"

#define SA_COLS \
	"s.id, s.spi, s.direction, s.policy_id, p.name, s.peer, s.local, s.encap, s.encap_sport, s.encap_dport," \
	" s.enc, s.integ, s.replay_window, s.esn, s.soft_seconds, s.soft_bytes, s.soft_packets, s.hard_seconds," \
	" s.hard_bytes, s.hard_packets, s.created, s.protocol, s.clone_host"
#define SA_FROM " FROM sas s JOIN policies p ON p.id = s.policy_id"
#define SA_FILTER \
	" WHERE (?1 IS NULL OR s.policy_id = ?1) AND (?2 IS NULL OR s.direction = ?2)" \
	" AND (?3 IS NULL OR coalesce(s.peer, p.peer) = ?3)"

static const char SQL_POLICY_ID[] = "SELECT id FROM policies WHERE name = ?1";
static const char SQL_INSERT[] =
	"INSERT INTO sas (spi, direction, policy_id, peer, local, encap, encap_sport, encap_dport, enc, integ,"
	" replay_window, esn, soft_seconds, soft_bytes, soft_packets, hard_seconds, hard_bytes, hard_packets,"
	" protocol, clone_host, created)"
	" VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?21, ?22, ?20)"
	" RETURNING id";
static const char SQL_UPDATE[] =
	"UPDATE sas SET spi = ?2, direction = ?3, policy_id = ?4, peer = ?5, local = ?6, encap = ?7,"
	" encap_sport = ?8, encap_dport = ?9, enc = ?10, integ = ?11, replay_window = ?12, esn = ?13,"
	" soft_seconds = ?14, soft_bytes = ?15, soft_packets = ?16, hard_seconds = ?17, hard_bytes = ?18,"
	" hard_packets = ?19, protocol = ?21, clone_host = ?22 WHERE id = ?1";
static const char SQL_KEYS_PUT[] =
	"INSERT INTO sa_keys (sa_id, enc_key, integ_key) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (sa_id) DO UPDATE SET enc_key = excluded.enc_key, integ_key = excluded.integ_key";
static const char SQL_KEYS_GET[] = "SELECT enc_key, integ_key FROM sa_keys WHERE sa_id = ?1";
static const char SQL_KEY_LENS[] = "SELECT length(enc_key), length(integ_key) FROM sa_keys WHERE sa_id = ?1";
static const char SQL_DELETE[] = "DELETE FROM sas WHERE id = ?1";
static const char SQL_DELETE_SPI[] = "DELETE FROM sas WHERE spi = ?1 AND direction = ?2 AND protocol = ?3";
static const char SQL_FLUSH[] = "DELETE FROM sas WHERE ?1 = 0 OR policy_id = ?1";
static const char SQL_GET[] = "SELECT " SA_COLS SA_FROM " WHERE s.id = ?1";
static const char SQL_GET_SPI[] =
	"SELECT " SA_COLS SA_FROM " WHERE s.spi = ?1 AND s.direction = ?2 AND s.protocol = ?3";
static const char SQL_LIST[] = "SELECT " SA_COLS SA_FROM SA_FILTER " ORDER BY s.id LIMIT ?5 OFFSET ?4";
static const char SQL_COUNT[] = "SELECT count(*)" SA_FROM SA_FILTER;

/* Key bytes each algorithm needs (GCM, GMAC, CTR: key + 4-byte salt; CCM: + 3); -1 = unknown, left to the schema's CHECK. */
static int enc_key_len(const char *enc)
{
	static const struct { const char *name; int len; } t[] = {
		{"null", 0}, {"aes-gcm-128", 20}, {"aes-gcm-256", 36}, {"chacha20-poly1305", 36},
		{"aes-cbc-128", 16}, {"aes-cbc-256", 32}, {"aes-ctr-128", 20}, {"aes-ctr-256", 36},
		{"aes-ccm8-128", 19}, {"aes-ccm8-256", 35}, {"aes-ccm12-128", 19}, {"aes-ccm12-256", 35},
		{"aes-ccm16-128", 19}, {"aes-ccm16-256", 35}, {"aes-gmac-128", 20}, {"aes-gmac-256", 36},
		{"3des-cbc", 24},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(enc, t[i].name) == 0)
			return t[i].len;
	return -1;
}

static int integ_key_len(const char *integ)
{
	static const struct { const char *name; int len; } t[] = {
		{"none", 0}, {"hmac-sha1-96", 20}, {"hmac-sha256-128", 32}, {"hmac-sha384-192", 48},
		{"hmac-sha512-256", 64}, {"aes-xcbc-96", 16}, {"hmac-md5-96", 16}, {"aes-gmac-128", 20},
		{"aes-gmac-256", 36},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(integ, t[i].name) == 0)
			return t[i].len;
	return -1;
}

static int check_key_lens(struct db *db, const struct db_sa *sa, size_t enc_len, size_t integ_len)
{
	int e = enc_key_len(sa->enc), i = integ_key_len(sa->integ);

	if (e >= 0 && (size_t)e != enc_len)
		return db_fail(db, DB_E_INVALID, "enc_key", "enc_key: %s needs %d bytes", sa->enc, e);
	if (i >= 0 && (size_t)i != integ_len)
		return db_fail(db, DB_E_INVALID, "integ_key", "integ_key: %s needs %d bytes", sa->integ, i);
	return 0;
}

void db_sa_init(struct db_sa *sa)
{
	memset(sa, 0, sizeof *sa);
	strcpy(sa->encap, "none");
	sa->encap_sport = 4500;
	sa->encap_dport = 4500;
	strcpy(sa->integ, "none");
	strcpy(sa->protocol, "esp");
	sa->replay_window = -1;
}

/* The policy an SA names: by name when given, else policy_id (checked by the foreign key). */
static int resolve_policy(struct db *db, const struct db_sa *sa, int64_t *id)
{
	sqlite3_stmt *st;
	int rc;

	*id = sa->policy_id;
	if (!sa->policy[0])
		return 0;
	if ((rc = db_prep(db, SQL_POLICY_ID, &st)))
		return rc;
	db_bind_text(st, 1, sa->policy);
	rc = db_step(db, st);
	if (rc == 0)
		return db_fail(db, DB_E_REFERENCE, "policy", "policy: no policy of that name");
	if (rc < 0)
		return rc;
	*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* The only reference an SA has is its policy: say so when the foreign key fails. */
static int name_policy_ref(struct db *db, int rc)
{
	if (rc == -DB_E_REFERENCE && !db->field[0])
		db_fail(db, DB_E_REFERENCE, "policy", "policy: no such policy");
	return rc;
}

static void bind_fields(sqlite3_stmt *st, const struct db_sa *sa, int64_t policy_id)
{
	sqlite3_bind_int64(st, 2, sa->spi);
	db_bind_text(st, 3, sa->direction);
	sqlite3_bind_int64(st, 4, policy_id);
	db_bind_opt_text(st, 5, sa->peer);
	db_bind_opt_text(st, 6, sa->local);
	db_bind_text(st, 7, sa->encap);
	sqlite3_bind_int(st, 8, sa->encap_sport);
	sqlite3_bind_int(st, 9, sa->encap_dport);
	db_bind_text(st, 10, sa->enc);
	db_bind_text(st, 11, sa->integ);
	if (sa->replay_window >= 0)
		sqlite3_bind_int(st, 12, sa->replay_window);
	else
		sqlite3_bind_null(st, 12);
	sqlite3_bind_int(st, 13, sa->esn);
	sqlite3_bind_int64(st, 14, sa->soft.seconds);
	sqlite3_bind_int64(st, 15, sa->soft.bytes);
	sqlite3_bind_int64(st, 16, sa->soft.packets);
	sqlite3_bind_int64(st, 17, sa->hard.seconds);
	sqlite3_bind_int64(st, 18, sa->hard.bytes);
	sqlite3_bind_int64(st, 19, sa->hard.packets);
	db_bind_text(st, 21, sa->protocol[0] ? sa->protocol : "esp");
	db_bind_opt_text(st, 22, sa->clone_host);
}

static void read_row(sqlite3_stmt *st, struct db_sa *sa)
{
	sa->id = sqlite3_column_int64(st, 0);
	sa->spi = (uint32_t)sqlite3_column_int64(st, 1);
	db_col_text(st, 2, sa->direction, sizeof sa->direction);
	sa->policy_id = sqlite3_column_int64(st, 3);
	db_col_text(st, 4, sa->policy, sizeof sa->policy);
	db_col_text(st, 5, sa->peer, sizeof sa->peer);
	db_col_text(st, 6, sa->local, sizeof sa->local);
	db_col_text(st, 7, sa->encap, sizeof sa->encap);
	sa->encap_sport = (uint16_t)sqlite3_column_int(st, 8);
	sa->encap_dport = (uint16_t)sqlite3_column_int(st, 9);
	db_col_text(st, 10, sa->enc, sizeof sa->enc);
	db_col_text(st, 11, sa->integ, sizeof sa->integ);
	sa->replay_window = sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 12);
	sa->esn = sqlite3_column_int(st, 13) != 0;
	sa->soft.seconds = sqlite3_column_int64(st, 14);
	sa->soft.bytes = sqlite3_column_int64(st, 15);
	sa->soft.packets = sqlite3_column_int64(st, 16);
	sa->hard.seconds = sqlite3_column_int64(st, 17);
	sa->hard.bytes = sqlite3_column_int64(st, 18);
	sa->hard.packets = sqlite3_column_int64(st, 19);
	sa->created = sqlite3_column_int64(st, 20);
	db_col_text(st, 21, sa->protocol, sizeof sa->protocol);
	db_col_text(st, 22, sa->clone_host, sizeof sa->clone_host);
}

static int put_keys(struct db *db, int64_t sa_id, const struct db_sa_keys *k)
{
	sqlite3_stmt *st;
	int rc;

	if (k->enc_key_len > sizeof k->enc_key || k->integ_key_len > sizeof k->integ_key)
		return db_fail(db, DB_E_INVALID, "enc_key", "key too long");
	if ((rc = db_prep(db, SQL_KEYS_PUT, &st)))
		return rc;
	sqlite3_bind_int64(st, 1, sa_id);
	/* SQLITE_STATIC: the caller's buffer outlives the step; no copy of the key is made. */
	sqlite3_bind_blob(st, 2, k->enc_key, (int)k->enc_key_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, k->integ_key, (int)k->integ_key_len, SQLITE_STATIC);
	rc = db_run(db, st);
	sqlite3_clear_bindings(st);
	return rc;
}

int db_sa_insert(struct db *db, struct db_sa *sa, const struct db_sa_keys *keys)
{
	static const struct db_sa_keys none;
	sqlite3_stmt *st;
	int64_t pid = 0;
	int own, rc;

	if (!keys)
		keys = &none;
	if ((rc = db_w_begin(db, &own)))
		return rc;
	rc = resolve_policy(db, sa, &pid);
	if (rc == 0)
		rc = check_key_lens(db, sa, keys->enc_key_len, keys->integ_key_len);
	if (rc == 0 && (rc = db_prep(db, SQL_INSERT, &st)) == 0) {
		bind_fields(st, sa, pid);
		sqlite3_bind_int64(st, 20, db_now());
		rc = db_step(db, st);
		if (rc == 1) {
			sa->id = sqlite3_column_int64(st, 0);
			sa->policy_id = pid;
			rc = db_run(db, st);
		} else if (rc == 0) {
			rc = db_fail(db, DB_E_IO, NULL, "insert returned no row");
		}
	}
	if (rc == 0)
		rc = put_keys(db, sa->id, keys);
	return db_w_end(db, own, name_policy_ref(db, rc));
}

static int stored_key_lens(struct db *db, int64_t id, size_t *enc, size_t *integ)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_KEY_LENS, &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	rc = db_step(db, st);
	if (rc != 1)
		return rc < 0 ? rc : db_fail(db, DB_E_NOT_FOUND, NULL, "SA not found");
	*enc = (size_t)sqlite3_column_int64(st, 0);
	*integ = (size_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return 0;
}

int db_sa_update(struct db *db, const struct db_sa *sa, const struct db_sa_keys *keys)
{
	sqlite3_stmt *st;
	int64_t pid = 0;
	size_t el = 0, il = 0;
	int own, rc;

	if ((rc = db_w_begin(db, &own)))
		return rc;
	rc = resolve_policy(db, sa, &pid);
	if (rc == 0 && keys) {
		el = keys->enc_key_len;
		il = keys->integ_key_len;
	} else if (rc == 0) {
		rc = stored_key_lens(db, sa->id, &el, &il);
	}
	if (rc == 0)
		rc = check_key_lens(db, sa, el, il);
	if (rc == 0 && (rc = db_prep(db, SQL_UPDATE, &st)) == 0) {
		sqlite3_bind_int64(st, 1, sa->id);
		bind_fields(st, sa, pid);
		rc = db_run_one(db, st, "SA");
	}
	if (rc == 0 && keys)
		rc = put_keys(db, sa->id, keys);
	return db_w_end(db, own, name_policy_ref(db, rc));
}

int db_sa_delete(struct db *db, int64_t id)
{
	return db_delete_id(db, SQL_DELETE, id, "SA");
}

int db_sa_delete_spi(struct db *db, uint32_t spi, const char *direction, const char *protocol)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_DELETE_SPI, &st)) == 0) {
		sqlite3_bind_int64(st, 1, spi);
		db_bind_text(st, 2, direction);
		db_bind_text(st, 3, protocol ? protocol : "esp");
		rc = db_run_one(db, st, "SA");
	}
	return db_w_end(db, own, rc);
}

int db_sa_flush(struct db *db, int64_t policy_id)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_FLUSH, &st)) == 0) {
		sqlite3_bind_int64(st, 1, policy_id);
		rc = db_run(db, st);
		if (rc == 0)
			rc = sqlite3_changes(db->h);
	}
	return db_w_end(db, own, rc);
}

static void sa_row(sqlite3_stmt *st, void *out)
{
	read_row(st, out);
}

static int get_one(struct db *db, sqlite3_stmt *st, struct db_sa *out)
{
	return db_read_one(db, st, sa_row, out, "SA");
}

int db_sa_get(struct db *db, int64_t id, struct db_sa *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_GET, &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return get_one(db, st, out);
}

int db_sa_get_spi(struct db *db, uint32_t spi, const char *direction, const char *protocol, struct db_sa *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_GET_SPI, &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, spi);
	db_bind_text(st, 2, direction);
	db_bind_text(st, 3, protocol ? protocol : "esp");
	return get_one(db, st, out);
}

static void bind_filter(sqlite3_stmt *st, const struct db_sa_filter *f)
{
	if (!f)
		return;
	if (f->policy_id > 0)
		sqlite3_bind_int64(st, 1, f->policy_id);
	db_bind_opt_text(st, 2, f->direction);
	db_bind_opt_text(st, 3, f->peer);
}

int db_sa_list(struct db *db, const struct db_sa_filter *f, int64_t offset, int64_t limit, struct db_sa **out)
{
	sqlite3_stmt *st;
	void *arr;
	int rc = db_prep(db, SQL_LIST, &st);

	*out = NULL;
	if (rc)
		return rc;
	bind_filter(st, f);
	sqlite3_bind_int64(st, 4, offset < 0 ? 0 : offset);
	sqlite3_bind_int64(st, 5, limit <= 0 ? -1 : limit);
	rc = db_read_all(db, st, sa_row, sizeof **out, &arr);
	*out = arr;
	return rc;
}

int db_sa_count(struct db *db, const struct db_sa_filter *f, int64_t *count)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_COUNT, &st);

	if (rc)
		return rc;
	bind_filter(st, f);
	return db_scalar(db, st, count);
}

int db_sa_keys_get(struct db *db, int64_t sa_id, struct db_sa_keys *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_KEYS_GET, &st);

	memset(out, 0, sizeof *out);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, sa_id);
	rc = db_step(db, st);
	if (rc != 1)
		return rc < 0 ? rc : db_fail(db, DB_E_NOT_FOUND, NULL, "SA not found");
	size_t el = (size_t)sqlite3_column_bytes(st, 0), il = (size_t)sqlite3_column_bytes(st, 1);
	if (el > sizeof out->enc_key || il > sizeof out->integ_key) {
		sqlite3_reset(st);
		return db_fail(db, DB_E_IO, NULL, "stored key too long");
	}
	if (el)
		memcpy(out->enc_key, sqlite3_column_blob(st, 0), el);
	if (il)
		memcpy(out->integ_key, sqlite3_column_blob(st, 1), il);
	out->enc_key_len = el;
	out->integ_key_len = il;
	sqlite3_reset(st);
	return 0;
}

void db_sa_keys_wipe(struct db_sa_keys *k)
{
	OPENSSL_cleanse(k, sizeof *k);
}
