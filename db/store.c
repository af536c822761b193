/* store.c: settings, the two ports with their addresses and gateways, and the audit log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

/* ---- settings ---- */

static const char SQL_SET_GET[] = "SELECT value FROM settings WHERE key = ?1";
static const char SQL_SET_PUT[] =
	"INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
static const char SQL_SET_DEL[] = "DELETE FROM settings WHERE key = ?1";
static const char SQL_SET_ALL[] = "SELECT key, value FROM settings ORDER BY key";

int db_setting_get(struct db *db, const char *key, char *val, size_t len)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_SET_GET, &st);

	if (rc)
		return rc;
	db_bind_text(st, 1, key);
	rc = db_step(db, st);
	if (rc != 1)
		return rc < 0 ? rc : db_fail(db, DB_E_NOT_FOUND, "key", "setting not found");
	const unsigned char *t = sqlite3_column_text(st, 0);
	size_t n = (size_t)sqlite3_column_bytes(st, 0);
	if (n >= len) {
		sqlite3_reset(st);
		return db_fail(db, DB_E_INVALID, "value", "value longer than the buffer (%zu bytes)", n);
	}
	memcpy(val, t ? (const char *)t : "", n + 1);
	sqlite3_reset(st);
	return 0;
}

static int write_kv(struct db *db, const char *sql, const char *key, const char *val, bool one)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, sql, &st)) == 0) {
		db_bind_text(st, 1, key);
		if (val)
			db_bind_text(st, 2, val);
		rc = one ? db_run_one(db, st, "setting") : db_run(db, st);
	}
	return db_w_end(db, own, rc);
}

int db_setting_set(struct db *db, const char *key, const char *val)
{
	return write_kv(db, SQL_SET_PUT, key, val ? val : "", false);
}

int db_setting_delete(struct db *db, const char *key)
{
	return write_kv(db, SQL_SET_DEL, key, NULL, true);
}

int db_setting_foreach(struct db *db, int (*fn)(void *ctx, const char *key, const char *val), void *ctx)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_SET_ALL, &st);

	if (rc)
		return rc;
	while ((rc = db_step(db, st)) == 1) {
		if (fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1))) {
			sqlite3_reset(st);
			return 0;
		}
	}
	return rc;
}

/* ---- ports ---- */

static const char SQL_PORT_GET[] = "SELECT interface, mtu, router_mac FROM ports WHERE role = ?1";
static const char SQL_PORT_ADDRS[] = "SELECT address FROM addresses WHERE port = ?1 ORDER BY id";
static const char SQL_PORT_GWS[] = "SELECT family, address FROM gateways WHERE port = ?1";
static const char SQL_PORT_PUT[] =
	"INSERT INTO ports (role, interface, mtu, router_mac) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (role)"
	" DO UPDATE SET interface = excluded.interface, mtu = excluded.mtu, router_mac = excluded.router_mac";
static const char SQL_PORT_DEL_ADDRS[] = "DELETE FROM addresses WHERE port = ?1";
static const char SQL_PORT_DEL_GWS[] = "DELETE FROM gateways WHERE port = ?1";
static const char SQL_PORT_ADD_ADDR[] = "INSERT INTO addresses (port, address) VALUES (?1, ?2)";
static const char SQL_PORT_ADD_GW[] = "INSERT INTO gateways (port, family, address) VALUES (?1, ?2, ?3)";
static const char SQL_PORT_DEL[] = "DELETE FROM ports WHERE role = ?1";

static int port_children(struct db *db, const char *role, struct db_port *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_PORT_ADDRS, &st);

	if (rc)
		return rc;
	db_bind_text(st, 1, role);
	while ((rc = db_step(db, st)) == 1)
		if (out->naddr < DB_PORT_ADDRS)
			db_col_text(st, 0, out->addresses[out->naddr++], DB_ADDR_LEN);
	if (rc < 0 || (rc = db_prep(db, SQL_PORT_GWS, &st)))
		return rc;
	db_bind_text(st, 1, role);
	while ((rc = db_step(db, st)) == 1) {
		int fam = sqlite3_column_int(st, 0);
		db_col_text(st, 1, fam == 6 ? out->gateway6 : out->gateway4, DB_ADDR_LEN);
	}
	return rc;
}

int db_port_get(struct db *db, const char *role, struct db_port *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_PORT_GET, &st);

	memset(out, 0, sizeof *out);
	if (rc)
		return rc;
	db_bind_text(st, 1, role);
	rc = db_step(db, st);
	if (rc != 1)
		return rc < 0 ? rc : db_fail(db, DB_E_NOT_FOUND, "role", "port not found");
	snprintf(out->role, sizeof out->role, "%s", role);
	db_col_text(st, 0, out->interface, sizeof out->interface);
	out->mtu = (uint32_t)sqlite3_column_int64(st, 1);
	db_col_text(st, 2, out->router_mac, sizeof out->router_mac);
	sqlite3_reset(st);
	return port_children(db, role, out);
}

static int run_role(struct db *db, const char *sql, const char *role)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, sql, &st);

	if (rc)
		return rc;
	db_bind_text(st, 1, role);
	return db_run(db, st);
}

static int add_gw(struct db *db, const char *role, int family, const char *addr)
{
	sqlite3_stmt *st;
	int rc;

	if (!addr[0])
		return 0;
	if ((rc = db_prep(db, SQL_PORT_ADD_GW, &st)))
		return rc;
	db_bind_text(st, 1, role);
	sqlite3_bind_int(st, 2, family);
	db_bind_text(st, 3, addr);
	rc = db_run(db, st);
	if (rc && !strcmp(db->field, "address"))
		snprintf(db->field, sizeof db->field, "gateway%d", family);
	return rc;
}

static int port_put(struct db *db, const struct db_port *p)
{
	sqlite3_stmt *st;
	int rc;

	if (p->naddr > DB_PORT_ADDRS)
		return db_fail(db, DB_E_INVALID, "addresses", "addresses: at most %d", DB_PORT_ADDRS);
	if ((rc = db_prep(db, SQL_PORT_PUT, &st)))
		return rc;
	db_bind_text(st, 1, p->role);
	db_bind_text(st, 2, p->interface);
	sqlite3_bind_int64(st, 3, p->mtu);
	db_bind_text(st, 4, p->router_mac);
	if ((rc = db_run(db, st)))
		return rc;
	if ((rc = run_role(db, SQL_PORT_DEL_ADDRS, p->role)) || (rc = run_role(db, SQL_PORT_DEL_GWS, p->role)))
		return rc;
	for (unsigned i = 0; i < p->naddr; i++) {
		if ((rc = db_prep(db, SQL_PORT_ADD_ADDR, &st)))
			return rc;
		db_bind_text(st, 1, p->role);
		db_bind_text(st, 2, p->addresses[i]);
		if ((rc = db_run(db, st))) {
			if (!strcmp(db->field, "address"))
				snprintf(db->field, sizeof db->field, "addresses[%u]", i);
			return rc;
		}
	}
	if ((rc = add_gw(db, p->role, 4, p->gateway4)))
		return rc;
	return add_gw(db, p->role, 6, p->gateway6);
}

int db_port_set(struct db *db, const struct db_port *p)
{
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	return db_w_end(db, own, port_put(db, p));
}

int db_port_delete(struct db *db, const char *role)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_PORT_DEL, &st)) == 0) {
		db_bind_text(st, 1, role);
		rc = db_run_one(db, st, "port");
	}
	return db_w_end(db, own, rc);
}

/* ---- audit ---- */

#define AUDIT_FILTER \
	" WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR action = ?2) AND (?3 = 0 OR time >= ?3)" \
	" AND (?4 = 0 OR time < ?4)"

static const char SQL_AUDIT_ADD[] =
	"INSERT INTO audit (time, user, action, object, detail, remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	" RETURNING id";
static const char SQL_AUDIT_LIST[] =
	"SELECT id, time, user, action, object, detail, remote FROM audit" AUDIT_FILTER
	" ORDER BY id DESC LIMIT ?6 OFFSET ?5";
static const char SQL_AUDIT_COUNT[] = "SELECT count(*) FROM audit" AUDIT_FILTER;

int db_audit_add(struct db *db, struct db_audit *a)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if (!a->time)
		a->time = db_now();
	if ((rc = db_prep(db, SQL_AUDIT_ADD, &st)) == 0) {
		sqlite3_bind_int64(st, 1, a->time);
		db_bind_text(st, 2, a->user);
		db_bind_text(st, 3, a->action);
		db_bind_text(st, 4, a->object);
		db_bind_text(st, 5, a->detail ? a->detail : "{}");
		db_bind_text(st, 6, a->remote);
		rc = db_step(db, st);
		if (rc == 1) {
			a->id = sqlite3_column_int64(st, 0);
			rc = db_run(db, st);
		} else if (rc == 0) {
			rc = db_fail(db, DB_E_IO, NULL, "insert returned no row");
		}
	}
	return db_w_end(db, own, rc);
}

static void bind_audit_filter(sqlite3_stmt *st, const struct db_audit_filter *f)
{
	sqlite3_bind_int64(st, 3, f ? f->since : 0);
	sqlite3_bind_int64(st, 4, f ? f->until : 0);
	if (!f)
		return;
	db_bind_opt_text(st, 1, f->user);
	db_bind_opt_text(st, 2, f->action);
}

void db_audit_free_list(struct db_audit *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		free(a[i].detail);
	free(a);
}

int db_audit_list(struct db *db, const struct db_audit_filter *f, int64_t offset, int64_t limit,
                  struct db_audit **out)
{
	struct db_audit *arr = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_AUDIT_LIST, &st);

	*out = NULL;
	if (rc)
		return rc;
	bind_audit_filter(st, f);
	sqlite3_bind_int64(st, 5, offset < 0 ? 0 : offset);
	sqlite3_bind_int64(st, 6, limit <= 0 ? -1 : limit);
	while ((rc = db_step(db, st)) == 1) {
		if (n == cap) {
			struct db_audit *t = realloc(arr, (cap ? cap * 2 : 16) * sizeof *t);
			if (!t) {
				sqlite3_reset(st);
				db_audit_free_list(arr, n);
				return db_fail(db, DB_E_NOMEM, NULL, "out of memory");
			}
			arr = t;
			cap = cap ? cap * 2 : 16;
		}
		struct db_audit *a = &arr[n++];
		a->id = sqlite3_column_int64(st, 0);
		a->time = sqlite3_column_int64(st, 1);
		db_col_text(st, 2, a->user, sizeof a->user);
		db_col_text(st, 3, a->action, sizeof a->action);
		db_col_text(st, 4, a->object, sizeof a->object);
		a->detail = db_col_strdup(st, 5);
		db_col_text(st, 6, a->remote, sizeof a->remote);
		if (!a->detail) {
			sqlite3_reset(st);
			db_audit_free_list(arr, n);
			return db_fail(db, DB_E_NOMEM, NULL, "out of memory");
		}
	}
	if (rc < 0) {
		db_audit_free_list(arr, n);
		return rc;
	}
	*out = arr;
	return (int)n;
}

int db_audit_count(struct db *db, const struct db_audit_filter *f, int64_t *count)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_AUDIT_COUNT, &st);

	if (rc)
		return rc;
	bind_audit_filter(st, f);
	return db_scalar(db, st, count);
}
