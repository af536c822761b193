/* db.c: opening and migrating the database, the statement cache, transactions and error mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db_int.h"

#define DB_APP_ID 0x62697477   /* "bitw": marks the file as ours */
#define DB_BUSY_MS 5000

static const char *const db_err_text[] = {
#define DB_TEXT_(name, text) text,
	DB_ERR_LIST(DB_TEXT_)
#undef DB_TEXT_
};

const char *db_strerror(int code)
{
	if (code < 0)
		code = -code;
	if (code >= DB_E__COUNT)
		return "unknown error";
	return db_err_text[code];
}

const char *db_errmsg(const struct db *db) { return db->msg; }
const char *db_errfield(const struct db *db) { return db->field; }

void db_clear_err(struct db *db)
{
	db->msg[0] = 0;
	db->field[0] = 0;
}

int db_fail(struct db *db, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(db->field, sizeof db->field, "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(db->msg, sizeof db->msg, fmt, ap);
	va_end(ap);
	return -code;
}

/* "UNIQUE constraint failed: sas.spi, sas.direction" -> "spi": the first column SQLite names. */
static void field_after_colon(const char *msg, char *field, size_t len)
{
	const char *p = strstr(msg, "failed: ");
	size_t n;

	field[0] = 0;
	if (!p)
		return;
	p += strlen("failed: ");
	n = strcspn(p, ", ");
	const char *dot = memchr(p, '.', n);
	if (dot) {
		n -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	snprintf(field, len, "%.*s", (int)n, p);
}

static int map_constraint(struct db *db, int xrc, const char *msg)
{
	int code = DB_E_INVALID;

	switch (xrc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		code = DB_E_CONFLICT;
		break;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		code = DB_E_REFERENCE;
		break;
	case SQLITE_CONSTRAINT_TRIGGER:
		/* Our triggers say "field: why". */
		snprintf(db->field, sizeof db->field, "%.*s", (int)strcspn(msg, ":"), msg);
		snprintf(db->msg, sizeof db->msg, "%s", msg);
		return -DB_E_INVALID;
	default:
		break;
	}
	field_after_colon(msg, db->field, sizeof db->field);
	if (db->field[0])
		snprintf(db->msg, sizeof db->msg, "%s: %s", db->field, db_strerror(code));
	else
		snprintf(db->msg, sizeof db->msg, "%s", msg);
	return -code;
}

int db_fail_sqlite(struct db *db, int rc)
{
	int xrc = sqlite3_extended_errcode(db->h);
	const char *msg = sqlite3_errmsg(db->h);

	db_clear_err(db);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return map_constraint(db, xrc, msg);
	snprintf(db->msg, sizeof db->msg, "%s", msg);
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -DB_E_NOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -DB_E_BUSY;
	case SQLITE_TOOBIG:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
		return -DB_E_INVALID;
	default:
		return -DB_E_IO;
	}
}

static size_t slot_of(const char *sql)
{
	uintptr_t p = (uintptr_t)sql;

	return (size_t)((p >> 3) ^ (p >> 11)) & (DB_STMT_SLOTS - 1);
}

int db_prep(struct db *db, const char *sql, sqlite3_stmt **st)
{
	size_t i = slot_of(sql);

	for (size_t n = 0; n < DB_STMT_SLOTS; n++, i = (i + 1) & (DB_STMT_SLOTS - 1)) {
		struct db_stmt_slot *s = &db->cache[i];
		if (s->sql == sql) {
			sqlite3_reset(s->st);
			sqlite3_clear_bindings(s->st);
			*st = s->st;
			return 0;
		}
		if (!s->sql) {
			int rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL);
			if (rc != SQLITE_OK)
				return db_fail_sqlite(db, rc);
			s->sql = sql;
			*st = s->st;
			return 0;
		}
	}
	return db_fail(db, DB_E_NOMEM, NULL, "statement cache full");
}

int db_step(struct db *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	rc = db_fail_sqlite(db, rc);
	sqlite3_reset(st);
	return rc;
}

int db_run(struct db *db, sqlite3_stmt *st)
{
	int rc;

	while ((rc = db_step(db, st)) == 1)
		;
	return rc;
}

int db_run_one(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = db_run(db, st);

	if (rc == 0 && sqlite3_changes(db->h) == 0)
		rc = db_fail(db, DB_E_NOT_FOUND, NULL, "%s not found", what);
	return rc;
}

int db_scalar(struct db *db, sqlite3_stmt *st, int64_t *out)
{
	int rc = db_step(db, st);

	if (rc == 1) {
		*out = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	return rc < 0 ? rc : db_fail(db, DB_E_IO, NULL, "query returned no row");
}

void *db_grow(struct db *db, sqlite3_stmt *st, void *arr, size_t *cap, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 16;
	void *t = realloc(arr, ncap * elem);

	if (!t) {
		sqlite3_reset(st);
		free(arr);
		db_fail(db, DB_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	*cap = ncap;
	return t;
}

int db_delete_id(struct db *db, const char *sql, int64_t id, const char *what)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, sql, &st)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		rc = db_run_one(db, st, what);
	}
	return db_w_end(db, own, rc);
}

int db_read_one(struct db *db, sqlite3_stmt *st, db_row_fn fn, void *out, const char *what)
{
	int rc = db_step(db, st);

	if (rc == 1) {
		fn(st, out);
		sqlite3_reset(st);
		return 0;
	}
	return rc < 0 ? rc : db_fail(db, DB_E_NOT_FOUND, NULL, "%s not found", what);
}

int db_read_all(struct db *db, sqlite3_stmt *st, db_row_fn fn, size_t elem, void **out)
{
	char *arr = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*out = NULL;
	while ((rc = db_step(db, st)) == 1) {
		if (n == cap && !(arr = db_grow(db, st, arr, &cap, elem)))
			return -DB_E_NOMEM;
		fn(st, arr + n++ * elem);
	}
	if (rc < 0) {
		free(arr);
		return rc;
	}
	*out = arr;
	return (int)n;
}

static int run_sql(struct db *db, const char *sql)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, sql, &st);

	return rc ? rc : db_run(db, st);
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT dbw";
static const char SQL_RELEASE[] = "RELEASE dbw";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO dbw";

bool db_in_txn(const struct db *db) { return !sqlite3_get_autocommit(db->h); }

int db_begin(struct db *db)
{
	if (db_in_txn(db))
		return db_fail(db, DB_E_TXN, NULL, "a transaction is already open");
	int rc = run_sql(db, SQL_BEGIN);
	db->user_txn = rc == 0;
	return rc;
}

int db_commit(struct db *db)
{
	if (!db->user_txn)
		return db_fail(db, DB_E_TXN, NULL, "no transaction open");
	int rc = run_sql(db, SQL_COMMIT);
	if (rc) {
		/* Keep nothing half done: a failed COMMIT leaves the transaction open. */
		if (db_in_txn(db))
			run_sql(db, SQL_ROLLBACK);
	}
	db->user_txn = 0;
	return rc;
}

int db_rollback(struct db *db)
{
	if (!db->user_txn)
		return db_fail(db, DB_E_TXN, NULL, "no transaction open");
	db->user_txn = 0;
	return db_in_txn(db) ? run_sql(db, SQL_ROLLBACK) : 0;
}

int db_w_begin(struct db *db, int *own)
{
	*own = !db_in_txn(db);
	db_clear_err(db);
	/*
	 * Some errors (disk full, I/O) make SQLite roll the whole transaction
	 * back by itself; carrying on in autocommit would break all-or-nothing.
	 */
	if (db->user_txn && *own)
		return db_fail(db, DB_E_TXN, NULL, "the transaction was rolled back by an earlier error");
	return run_sql(db, *own ? SQL_BEGIN : SQL_SAVEPOINT);
}

int db_w_end(struct db *db, int own, int rc)
{
	/* Keep the first error's message: undoing must not overwrite why. */
	char msg[sizeof db->msg], field[sizeof db->field];

	if (rc >= 0) {
		int c = run_sql(db, own ? SQL_COMMIT : SQL_RELEASE);
		if (c == 0)
			return rc;
		rc = c;
	}
	memcpy(msg, db->msg, sizeof msg);
	memcpy(field, db->field, sizeof field);
	if (own) {
		if (db_in_txn(db))
			run_sql(db, SQL_ROLLBACK);
	} else {
		run_sql(db, SQL_ROLLBACK_TO);
		run_sql(db, SQL_RELEASE);
	}
	memcpy(db->msg, msg, sizeof msg);
	memcpy(db->field, field, sizeof field);
	return rc;
}

int db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

int db_bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
	if (!s || !*s)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

void db_col_text(sqlite3_stmt *st, int i, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

char *db_col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

int64_t db_now(void)
{
	return (int64_t)time(NULL);
}

bool db_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == n;
}

/* ---- opening ---- */

/*
 * Creating the file ourselves with 0600 makes its mode independent of the
 * umask; SQLite gives the -wal and -shm files the mode of the database file.
 * An existing file readable by others is tightened: it holds secrets.
 */
static int create_private(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -DB_E_IO;
	}
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0077) && fchmod(fd, 0600) != 0) {
		snprintf(err, errlen, "%s: cannot make it private: %s", path, strerror(errno));
		close(fd);
		return -DB_E_IO;
	}
	close(fd);
	return 0;
}

static int pragma_int(struct db *db, const char *sql, int *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_fail_sqlite(db, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*out = 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : db_fail_sqlite(db, rc);
}

static int pragma_text(struct db *db, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_fail_sqlite(db, rc);
	out[0] = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		db_col_text(st, 0, out, len);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : db_fail_sqlite(db, rc);
}

static int exec_sql(struct db *db, const char *sql)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_fail_sqlite(db, rc);
}

/*
 * synchronous=NORMAL in WAL mode: a commit survives a crash of the process
 * (the WAL is in the OS page cache) but the last commits before a power loss
 * may roll back; the database itself stays consistent either way. FULL would
 * cost an fsync per write for that last window, which bitwd does not need:
 * it re-pushes state from the database on every start.
 */
static int configure(struct db *db)
{
	char mode[16];
	int v = 0, rc;

	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, DB_BUSY_MS);
	sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	if ((rc = exec_sql(db, "PRAGMA journal_mode=WAL")))
		return rc;
	/* Some file systems cannot do WAL and SQLite then quietly keeps a rollback journal. */
	if ((rc = pragma_text(db, "PRAGMA journal_mode", mode, sizeof mode)))
		return rc;
	if (strcmp(mode, "wal") != 0)
		return db_fail(db, DB_E_IO, NULL, "cannot use WAL mode here (journal_mode is %s)", mode);
	/* Deleted secrets (keys, PSKs) are overwritten in the file, not just unlinked. */
	if ((rc = exec_sql(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON")))
		return rc;
	if ((rc = pragma_int(db, "PRAGMA foreign_keys", &v)))
		return rc;
	if (v != 1)
		return db_fail(db, DB_E_IO, NULL, "foreign keys cannot be enabled");
	return 0;
}

static int migrate_one(struct db *db, int to)
{
	char sql[64];
	int v = 0, rc;

	if ((rc = exec_sql(db, "BEGIN IMMEDIATE")))
		return rc;
	/* Another process may have migrated between our check and our lock. */
	rc = pragma_int(db, "PRAGMA user_version", &v);
	if (rc == 0 && v < to) {
		snprintf(sql, sizeof sql, "PRAGMA user_version=%d", to);
		rc = exec_sql(db, db_migrations[to - 1]);
		if (rc == 0)
			rc = exec_sql(db, sql);
	}
	if (rc == 0)
		rc = exec_sql(db, "COMMIT");
	if (rc)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int migrate(struct db *db, char *err, size_t errlen)
{
	int v = 0, app = 0, rc;

	if ((rc = pragma_int(db, "PRAGMA application_id", &app)))
		return rc;
	if ((rc = pragma_int(db, "PRAGMA user_version", &v)))
		return rc;
	if (app != 0 && app != DB_APP_ID) {
		snprintf(err, errlen, "not a bitw database (application_id %#x)", (unsigned)app);
		return -DB_E_INVALID;
	}
	if (v > DB_SCHEMA_VERSION) {
		snprintf(err, errlen,
		         "database schema version %d is newer than this program knows (%d): use a newer bitwd",
		         v, DB_SCHEMA_VERSION);
		return -DB_E_TOO_NEW;
	}
	for (int to = v + 1; to <= db_migration_count; to++) {
		if ((rc = migrate_one(db, to))) {
			snprintf(err, errlen, "migration %d failed: %s", to, db->msg);
			return rc;
		}
	}
	return 0;
}

int db_open(const char *path, struct db **out, char *err, size_t errlen)
{
	struct db *db;
	int rc;

	*out = NULL;
	if (errlen)
		err[0] = 0;
	if ((rc = create_private(path, err, errlen)))
		return rc;
	db = calloc(1, sizeof *db);
	if (!db) {
		snprintf(err, errlen, "out of memory");
		return -DB_E_NOMEM;
	}
	rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
		rc = db->h ? db_fail_sqlite(db, rc) : -DB_E_NOMEM;
		db_close(db);
		return rc;
	}
	rc = configure(db);
	if (rc)
		snprintf(err, errlen, "%s: %s", path, db->msg);
	else
		rc = migrate(db, err, errlen);
	if (rc) {
		db_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < DB_STMT_SLOTS; i++)
		if (db->cache[i].st)
			sqlite3_finalize(db->cache[i].st);
	sqlite3_close(db->h);
	free(db);
}

int db_schema_version(struct db *db)
{
	int v = 0, rc = pragma_int(db, "PRAGMA user_version", &v);

	return rc ? rc : v;
}

int db_integrity_check(struct db *db)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db->h, "PRAGMA integrity_check", -1, &st, NULL);
	int ok = 0;

	if (rc != SQLITE_OK)
		return db_fail_sqlite(db, rc);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		ok = t && strcmp((const char *)t, "ok") == 0;
		if (!ok)
			db_fail(db, DB_E_IO, NULL, "integrity check: %s", t ? (const char *)t : "?");
	}
	sqlite3_finalize(st);
	return ok ? 0 : -DB_E_IO;
}
