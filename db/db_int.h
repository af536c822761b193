/* db_int.h: private to db/: the handle, the statement cache and the helpers every table file uses. */
#ifndef BITW_DB_INT_H
#define BITW_DB_INT_H

#include <sqlite3.h>

#include "db.h"

#define DB_STMT_SLOTS 256   /* power of two, well above the number of distinct statements */

struct db_stmt_slot {
	const char *sql;        /* identity is the string's address: each statement is one static string */
	sqlite3_stmt *st;
};

struct db {
	sqlite3 *h;
	int user_txn;           /* inside db_begin */
	char msg[256];
	char field[64];
	struct db_stmt_slot cache[DB_STMT_SLOTS];
};

/* The migrations, oldest first: migration i brings user_version from i to i+1. */
extern const char *const db_migrations[];
extern const int db_migration_count;

/*
 * A cached prepared statement for sql, reset and unbound, in *st. sql must be
 * a string with static storage: the cache is keyed by its address.
 */
int db_prep(struct db *db, const char *sql, sqlite3_stmt **st);
/* Steps a statement that returns no rows (or ignores them); resets it. */
int db_run(struct db *db, sqlite3_stmt *st);
/* Steps once: 1 = a row, 0 = done, negative = error (statement reset on 0/error). */
int db_step(struct db *db, sqlite3_stmt *st);
/* A one-row write: no row touched is -DB_E_NOT_FOUND ("<what> not found"). */
int db_run_one(struct db *db, sqlite3_stmt *st, const char *what);
/* The first column of the one row a query returns. */
int db_scalar(struct db *db, sqlite3_stmt *st, int64_t *out);
/*
 * Doubles a list being read from st; on failure frees arr, resets st, records
 * the error and returns NULL (the caller returns -DB_E_NOMEM).
 */
void *db_grow(struct db *db, sqlite3_stmt *st, void *arr, size_t *cap, size_t elem);

/* Deletes the row with id (bound as ?1) in a write scope of its own; none is -DB_E_NOT_FOUND. */
int db_delete_id(struct db *db, const char *sql, int64_t id, const char *what);

/* Reads the current row of a query into one struct: each table has its own. */
typedef void (*db_row_fn)(sqlite3_stmt *st, void *out);
/* The one row a bound query returns, read by fn; none is -DB_E_NOT_FOUND ("<what> not found"). */
int db_read_one(struct db *db, sqlite3_stmt *st, db_row_fn fn, void *out, const char *what);
/* Every row of a bound query, read by fn into a new array of elem-byte structs: the count, or negative. */
int db_read_all(struct db *db, sqlite3_stmt *st, db_row_fn fn, size_t elem, void **out);

/* Record an SQLite failure (rc from a call on db->h) and return its DB_E_ code, negative. */
int db_fail_sqlite(struct db *db, int rc);
/* Record our own failure; field may be NULL. Returns -code. */
int db_fail(struct db *db, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void db_clear_err(struct db *db);

/* Write scopes: a transaction of their own, or a savepoint inside the caller's. */
int db_w_begin(struct db *db, int *own);
int db_w_end(struct db *db, int own, int rc);   /* commits or undoes; returns rc (or the commit's error) */

/* Binding and reading. */
int db_bind_text(sqlite3_stmt *st, int i, const char *s);      /* "" binds "" */
int db_bind_opt_text(sqlite3_stmt *st, int i, const char *s);  /* NULL or "" binds NULL */
void db_col_text(sqlite3_stmt *st, int i, char *dst, size_t len);  /* NULL reads as "" */
char *db_col_strdup(sqlite3_stmt *st, int i);                  /* NULL reads as NULL */
int64_t db_now(void);

/* Names checked by the schema are also checked here so the error names the field before SQLite does. */
bool db_name_ok(const char *s);

/* Random bytes, SHA-256 and base64url for tokens and sessions. */
int db_random(uint8_t *buf, size_t n);
int db_sha256(const void *data, size_t n, uint8_t out[32]);
size_t db_b64url(const uint8_t *in, size_t n, char *out, size_t outlen);   /* no padding; returns length */

#endif
