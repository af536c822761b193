/* test_db.c: the management database: file mode, migrations, every object's CRUD and constraints, secrets, crash safety. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "db.h"

static char dir[64];

static const char *path_in(const char *name)
{
	static char buf[4][128];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

static struct db *open_ok(const char *name)
{
	char err[256];
	struct db *db = NULL;
	int rc = db_open(path_in(name), &db, err, sizeof err);

	if (rc)
		printf("# db_open %s: %s\n", name, err);
	return db;
}

/* Raw SQL on the file, for what the API must not offer: forging a newer schema, peeking at storage. */
static void raw_exec(const char *name, const char *sql)
{
	sqlite3 *h;

	sqlite3_open(path_in(name), &h);
	sqlite3_exec(h, sql, NULL, NULL, NULL);
	sqlite3_close(h);
}

static long long raw_count(const char *name, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long long n = -1;

	sqlite3_open(path_in(name), &h);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Whether the bytes occur in the database file or its WAL. */
static bool file_contains(const char *name, const void *needle, size_t n)
{
	char wal[160];
	const char *files[2] = {path_in(name), wal};
	static char buf[8 << 20];
	bool found = false;

	snprintf(wal, sizeof wal, "%s-wal", path_in(name));
	for (int f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "rb");
		if (!fp)
			continue;
		size_t len = fread(buf, 1, sizeof buf, fp);
		fclose(fp);
		if (len >= n && memmem(buf, len, needle, n))
			found = true;
	}
	return found;
}

static void make_policy(struct db_policy *p, const char *name, const char *action, int prio)
{
	db_policy_init(p);
	snprintf(p->name, sizeof p->name, "%s", name);
	snprintf(p->action, sizeof p->action, "%s", action);
	p->priority = prio;
	if (!strcmp(action, "protect"))
		strcpy(p->peer, "198.51.100.10");
}

static void make_sa(struct db_sa *sa, struct db_sa_keys *k, uint32_t spi, const char *dir_, const char *policy)
{
	db_sa_init(sa);
	sa->spi = spi;
	snprintf(sa->direction, sizeof sa->direction, "%s", dir_);
	snprintf(sa->policy, sizeof sa->policy, "%s", policy);
	strcpy(sa->enc, "aes-gcm-256");
	memset(k, 0, sizeof *k);
	for (size_t i = 0; i < 36; i++)
		k->enc_key[i] = (uint8_t)(0xa0 + i);
	k->enc_key_len = 36;
}

/* ---- opening, file mode, migrations ---- */

static void test_open_mode_and_migrations(void)
{
	struct stat sb;
	char err[256], val[64];
	struct db *db;
	mode_t old = umask(0);   /* the file must be private whatever the umask says */

	db = open_ok("a.db");
	umask(old);
	CHECK(db != NULL, "db_open creates a new database");
	if (!db)
		return;
	CHECK(stat(path_in("a.db"), &sb) == 0 && (sb.st_mode & 0777) == 0600, "database file is created 0600 under umask 0");
	CHECK_EQ(db_schema_version(db), DB_SCHEMA_VERSION, "migrations bring the schema to the newest version");
	CHECK_EQ(db_setting_set(db, "hostname", "box1"), 0, "a setting is stored");
	CHECK(stat(path_in("a.db-wal"), &sb) == 0 && (sb.st_mode & 0777) == 0600, "WAL file exists (WAL mode) and is 0600 too");
	db_close(db);

	db = open_ok("a.db");
	CHECK(db != NULL, "reopening an up-to-date database works");
	if (!db)
		return;
	CHECK_EQ(db_schema_version(db), DB_SCHEMA_VERSION, "reopening does not change the version");
	CHECK(db_setting_get(db, "hostname", val, sizeof val) == 0 && !strcmp(val, "box1"),
	      "data survives a reopen (migrations are not re-run)");
	CHECK_EQ(db_integrity_check(db), 0, "integrity check ok");
	db_close(db);

	/* An existing file others can read is tightened: it holds keys. */
	chmod(path_in("a.db"), 0644);
	db = open_ok("a.db");
	CHECK(db && stat(path_in("a.db"), &sb) == 0 && (sb.st_mode & 0777) == 0600, "an existing 0644 file is made 0600");
	db_close(db);

	raw_exec("a.db", "PRAGMA user_version = 99");
	db = (struct db *)1;
	int rc = db_open(path_in("a.db"), &db, err, sizeof err);
	CHECK_EQ(rc, -DB_E_TOO_NEW, "a schema newer than the code is refused");
	CHECK(db == NULL && strstr(err, "newer") && strstr(err, "99"), "with a message saying so: %s", err);

	raw_exec("other.db", "CREATE TABLE t (x); PRAGMA application_id = 1234");
	rc = db_open(path_in("other.db"), &db, err, sizeof err);
	CHECK(rc < 0 && strstr(err, "not a bitw database"), "another application's SQLite file is refused: %s", err);

	/* A migration that fails half way leaves nothing of itself behind. */
	raw_exec("partial.db", "CREATE TABLE audit (x)");
	rc = db_open(path_in("partial.db"), &db, err, sizeof err);
	CHECK(rc < 0 && strstr(err, "migration 1 failed"), "a failing migration is reported: %s", err);
	CHECK(raw_count("partial.db", "SELECT count(*) FROM sqlite_master WHERE name = 'policies'") == 0 &&
	      raw_count("partial.db", "PRAGMA user_version") == 0,
	      "its earlier statements are rolled back and the version is unchanged");

	rc = db_open("/nonexistent-dir/x.db", &db, err, sizeof err);
	CHECK(rc == -DB_E_IO && strstr(err, "/nonexistent-dir/x.db"), "an unopenable path is an I/O error naming the path");
}

/* A database made by migration 1 alone (an installation before the new algorithms) keeps its SAs. */
extern const char *const db_migrations[];

static void test_migration_3(void)
{
	static char sql[65536];
	struct db_sa sa, got;
	struct db_sa_keys k, kg;
	struct db_policy p;
	struct db *db;

	snprintf(sql, sizeof sql, "BEGIN; %s PRAGMA user_version = 1; COMMIT;"
	         "INSERT INTO policies (id, name, position, action, peer, created, updated)"
	         " VALUES (1, 'old', 0, 'protect', '192.0.2.9', 1, 1);"
	         "INSERT INTO sas (id, spi, direction, policy_id, enc, integ, created)"
	         " VALUES (7, 4660, 'out', 1, 'aes-cbc-128', 'hmac-sha1-96', 1);"
	         "INSERT INTO sa_keys VALUES (7, x'000102030405060708090a0b0c0d0e0f', zeroblob(20));",
	         db_migrations[0]);
	raw_exec("v1.db", sql);
	CHECK_EQ(raw_count("v1.db", "PRAGMA user_version"), 1, "a version-1 database is made by migration 1 alone");
	db = open_ok("v1.db");
	CHECK(db && db_schema_version(db) == DB_SCHEMA_VERSION, "it is migrated to the newest version");
	if (!db)
		return;
	CHECK(db_sa_get(db, 7, &got) == 0 && got.spi == 4660 && !strcmp(got.enc, "aes-cbc-128") &&
	      !strcmp(got.integ, "hmac-sha1-96") && !strcmp(got.policy, "old"), "its SA is still there");
	CHECK(db_sa_keys_get(db, 7, &kg) == 0 && kg.enc_key_len == 16 && kg.enc_key[15] == 15 &&
	      kg.integ_key_len == 20, "with its keys");
	make_sa(&sa, &k, 0x2002, "in", "old");
	strcpy(sa.enc, "aes-ccm16-128");
	k.enc_key_len = 19;
	CHECK_EQ(db_sa_insert(db, &sa, &k), 0, "an aes-ccm16-128 SA can be stored after migration 3");
	strcpy(sa.enc, "aes-ctr-256");
	strcpy(sa.integ, "aes-xcbc-96");
	sa.spi = 0x2003;
	k.enc_key_len = 36;
	k.integ_key_len = 16;
	CHECK_EQ(db_sa_insert(db, &sa, &k), 0, "and an aes-ctr-256/aes-xcbc-96 one");
	strcpy(sa.integ, "none");
	sa.spi = 0x2004;
	k.integ_key_len = 0;
	CHECK(db_sa_insert(db, &sa, &k) < 0 && !strcmp(db_errfield(db), "integ"), "CTR without integrity is refused");
	CHECK(db_policy_get(db, 1, &p) == 0, "the policy is there");
	strcpy(p.action, "bypass");
	CHECK(db_policy_update(db, &p) < 0 && !strcmp(db_errfield(db), "action"),
	      "the policy with SAs still cannot stop being protect (trigger made again)");
	CHECK_EQ(db_sa_delete(db, 7), 0, "deleting the old SA works");
	CHECK_EQ(raw_count("v1.db", "SELECT count(*) FROM sa_keys WHERE sa_id = 7"), 0, "and its keys go with it");
	CHECK_EQ(db_integrity_check(db), 0, "integrity check ok");
	db_close(db);
}

/* ---- policies ---- */

static void test_policies(struct db *db)
{
	struct db_policy p, q, *list = NULL;
	int64_t count = 0;
	int n;

	make_policy(&p, "a-to-b", "protect", 3);
	strcpy(p.src, "198.18.1.0/24");
	strcpy(p.dst, "198.18.2.0/24");
	CHECK_EQ(db_policy_insert(db, &p), 0, "insert a protect policy");
	CHECK(p.id > 0 && p.position == 0, "it gets an id and the first position");
	make_policy(&q, "to-router", "bypass", 1);
	strcpy(q.dst, "198.18.1.1");
	CHECK_EQ(db_policy_insert(db, &q), 0, "insert a bypass policy");
	CHECK_EQ(q.position, 1, "appended after the first");
	make_policy(&q, "no-telnet", "discard", 2);
	strcpy(q.protocol, "tcp");
	strcpy(q.dst_port, "23");
	q.id = 40;
	CHECK_EQ(db_policy_insert(db, &q), 0, "insert with an explicit id");
	CHECK_EQ(q.id, 40, "the explicit id is kept");

	CHECK_EQ(db_policy_get(db, p.id, &q), 0, "get by id");
	CHECK(!strcmp(q.name, "a-to-b") && !strcmp(q.action, "protect") && q.priority == 3 &&
	      !strcmp(q.src, "198.18.1.0/24") && !strcmp(q.peer, "198.51.100.10") && !strcmp(q.direction, "both") &&
	      !strcmp(q.mode, "tunnel") && q.mss_clamp && !strcmp(q.src_port, "any") && q.created > 0,
	      "every field reads back, with the schema defaults");
	CHECK_EQ(db_policy_get_by_name(db, "no-telnet", &q), 0, "get by name");
	CHECK(!strcmp(q.protocol, "tcp") && !strcmp(q.dst_port, "23") && q.peer[0] == 0, "protocol, port, no peer");

	n = db_policy_list(db, 0, 0, &list);
	CHECK_EQ(n, 3, "list returns all policies");
	CHECK(n == 3 && !strcmp(list[0].name, "to-router") && !strcmp(list[1].name, "no-telnet") &&
	      !strcmp(list[2].name, "a-to-b"), "in SPD order: priority first");
	free(list);
	n = db_policy_list(db, 1, 1, &list);
	CHECK(n == 1 && !strcmp(list[0].name, "no-telnet"), "offset/limit page through the list");
	free(list);

	CHECK_EQ(db_policy_get_by_name(db, "no-telnet", &q), 0, "get for update");
	q.priority = 6;
	strcpy(q.name, "no-telnet-2");
	q.mss_clamp = false;
	q.position = -1;
	CHECK_EQ(db_policy_update(db, &q), 0, "update all fields");
	CHECK(db_policy_get(db, 40, &q) == 0 && q.priority == 6 && !strcmp(q.name, "no-telnet-2") && !q.mss_clamp,
	      "update is visible");
	CHECK_EQ(q.position, 2, "position -1 in an update keeps the position");
	q.id = 12345;
	CHECK_EQ(db_policy_update(db, &q), -DB_E_NOT_FOUND, "update of a missing id: not found");
	CHECK_EQ(db_policy_delete(db, 40), 0, "delete");
	CHECK_EQ(db_policy_get(db, 40, &q), -DB_E_NOT_FOUND, "deleted policy is gone");
	CHECK_EQ(db_policy_delete(db, 40), -DB_E_NOT_FOUND, "deleting twice: not found");
	CHECK(db_policy_count(db, &count) == 0 && count == 2, "count");
}

static void expect_policy_error(struct db *db, struct db_policy *p, int code, const char *field, const char *what)
{
	int rc = db_policy_insert(db, p);

	CHECK(rc == -code && !strcmp(db_errfield(db), field), "%s: %s (got %d, field \"%s\", \"%s\")", what,
	      db_strerror(code), rc, db_errfield(db), db_errmsg(db));
}

static void test_policy_constraints(struct db *db)
{
	struct db_policy p;
	int64_t before = 0, after = 0;

	db_policy_count(db, &before);
	make_policy(&p, "a-to-b", "bypass", 4);
	expect_policy_error(db, &p, DB_E_CONFLICT, "name", "duplicate name");
	make_policy(&p, "x1", "encrypt", 4);
	expect_policy_error(db, &p, DB_E_INVALID, "action", "unknown action");
	make_policy(&p, "x2", "bypass", 8);
	expect_policy_error(db, &p, DB_E_INVALID, "priority", "priority 8");
	make_policy(&p, "x3", "bypass", 0);
	expect_policy_error(db, &p, DB_E_INVALID, "priority", "priority 0");
	make_policy(&p, "x4", "protect", 4);
	p.peer[0] = 0;
	expect_policy_error(db, &p, DB_E_INVALID, "peer", "protect without a peer");
	make_policy(&p, "bad name", "bypass", 4);
	expect_policy_error(db, &p, DB_E_INVALID, "name", "name with a space");
	make_policy(&p, "", "bypass", 4);
	expect_policy_error(db, &p, DB_E_INVALID, "name", "empty name");
	make_policy(&p, "x5", "bypass", 4);
	strcpy(p.protocol, "300");
	expect_policy_error(db, &p, DB_E_INVALID, "protocol", "protocol 300");
	make_policy(&p, "x6", "bypass", 4);
	strcpy(p.direction, "sideways");
	expect_policy_error(db, &p, DB_E_INVALID, "direction", "unknown direction");
	make_policy(&p, "x7", "bypass", 4);
	strcpy(p.dst_port, "http");
	expect_policy_error(db, &p, DB_E_INVALID, "dst_port", "port by name");
	make_policy(&p, "x8", "bypass", 4);
	strcpy(p.mode, "beet");
	expect_policy_error(db, &p, DB_E_INVALID, "mode", "unknown mode");
	db_policy_count(db, &after);
	CHECK_EQ(after, before, "no rejected policy was stored");

	make_policy(&p, "x9", "bypass", 4);
	strcpy(p.protocol, "47");
	CHECK_EQ(db_policy_insert(db, &p), 0, "protocol by number is accepted");
	db_policy_delete(db, p.id);
}

static void test_reorder(struct db *db)
{
	struct db_policy a, b, c, *list = NULL;
	int n;

	make_policy(&a, "r-a", "bypass", 5);
	make_policy(&b, "r-b", "bypass", 5);
	make_policy(&c, "r-c", "bypass", 5);
	db_policy_insert(db, &a);
	db_policy_insert(db, &b);
	db_policy_insert(db, &c);

	n = db_policy_list(db, 0, 0, &list);
	int64_t *ids = calloc((size_t)n + 1, sizeof *ids);
	/* Move r-c to the front of everything, keep the rest in their order. */
	ids[0] = c.id;
	for (int i = 0, k = 1; i < n; i++)
		if (list[i].id != c.id)
			ids[k++] = list[i].id;
	free(list);
	CHECK_EQ(db_policy_reorder(db, ids, (size_t)n), 0, "reorder with every id once");
	n = db_policy_list(db, 0, 0, &list);
	int ia = -1, ib = -1, ic = -1;
	for (int i = 0; i < n; i++) {
		if (list[i].id == a.id)
			ia = i;
		if (list[i].id == b.id)
			ib = i;
		if (list[i].id == c.id)
			ic = i;
	}
	CHECK(ic < ia && ia < ib, "within priority 5 the new order holds: r-c, r-a, r-b");
	CHECK(db_policy_get(db, c.id, &c) == 0 && c.position == 0, "position is the index in the new order");
	free(list);

	CHECK_EQ(db_policy_reorder(db, ids, (size_t)n - 1), -DB_E_INVALID, "an order missing a policy is refused");
	CHECK(!strcmp(db_errfield(db), "order"), "naming the field \"order\"");
	ids[1] = ids[0];
	CHECK_EQ(db_policy_reorder(db, ids, (size_t)n), -DB_E_INVALID, "an order naming a policy twice is refused");
	ids[1] = 999999;
	CHECK_EQ(db_policy_reorder(db, ids, (size_t)n), -DB_E_NOT_FOUND, "an order with an unknown id is refused");
	CHECK(db_policy_get(db, c.id, &c) == 0 && c.position == 0, "a refused reorder changes nothing");
	free(ids);
	db_policy_delete(db, a.id);
	db_policy_delete(db, b.id);
	db_policy_delete(db, c.id);
}

/* ---- SAs and keys ---- */

static void expect_sa_error(struct db *db, struct db_sa *sa, const struct db_sa_keys *k, int code, const char *field,
                            const char *what)
{
	int rc = db_sa_insert(db, sa, k);

	CHECK(rc == -code && !strcmp(db_errfield(db), field), "%s: %s (got %d, field \"%s\", \"%s\")", what,
	      db_strerror(code), rc, db_errfield(db), db_errmsg(db));
}

static void test_sas(struct db *db)
{
	struct db_policy p, byp;
	struct db_sa sa, sa2, got, *list = NULL;
	struct db_sa_keys k, k2, kg;
	int64_t count = 0;
	int n;

	make_policy(&p, "sa-pol", "protect", 4);
	db_policy_insert(db, &p);
	make_policy(&byp, "sa-bypass", "bypass", 4);
	db_policy_insert(db, &byp);

	make_sa(&sa, &k, 0x1001, "out", "sa-pol");
	sa.soft.bytes = 1000;
	sa.hard.bytes = 2000;
	sa.esn = true;
	CHECK_EQ(db_sa_insert(db, &sa, &k), 0, "insert an SA with its keys");
	CHECK(sa.id > 0 && sa.policy_id == p.id, "it gets an id and the policy's id");
	CHECK_EQ(db_sa_get(db, sa.id, &got), 0, "get it");
	CHECK(got.spi == 0x1001 && !strcmp(got.direction, "out") && !strcmp(got.policy, "sa-pol") &&
	      !strcmp(got.enc, "aes-gcm-256") && !strcmp(got.integ, "none") && !strcmp(got.encap, "none") &&
	      got.encap_sport == 4500 && got.replay_window == -1 && got.esn && got.soft.bytes == 1000 &&
	      got.hard.bytes == 2000 && got.peer[0] == 0, "fields read back, peer defaulted, window = default");
	CHECK(memmem(&got, sizeof got, k.enc_key, 8) == NULL, "the struct from get carries no key bytes");
	CHECK_EQ(db_sa_keys_get(db, sa.id, &kg), 0, "keys are read through db_sa_keys_get");
	CHECK(kg.enc_key_len == 36 && memcmp(kg.enc_key, k.enc_key, 36) == 0 && kg.integ_key_len == 0,
	      "and are exactly what was stored");
	db_sa_keys_wipe(&kg);
	CHECK(kg.enc_key_len == 0 && kg.enc_key[0] == 0, "db_sa_keys_wipe clears them");

	make_sa(&sa2, &k2, 0x1001, "in", "sa-pol");
	db_sa_init(&sa2);
	sa2.spi = 0x1001;
	strcpy(sa2.direction, "in");
	sa2.policy_id = p.id;   /* by id instead of name */
	strcpy(sa2.enc, "aes-cbc-128");
	strcpy(sa2.integ, "hmac-sha256-128");
	strcpy(sa2.peer, "198.51.100.99");
	sa2.replay_window = 0;
	k2.enc_key_len = 16;
	k2.integ_key_len = 32;
	memset(k2.integ_key, 0x5c, 32);
	CHECK_EQ(db_sa_insert(db, &sa2, &k2), 0, "same SPI in the other direction is fine (CBC + HMAC)");
	CHECK(db_sa_get_spi(db, 0x1001, "in", NULL, &got) == 0 && got.id == sa2.id && got.replay_window == 0,
	      "get by SPI and direction; window 0 (off) kept apart from default");

	n = db_sa_list(db, NULL, 0, 0, &list);
	CHECK_EQ(n, 2, "list all SAs");
	bool leak = false;
	for (int i = 0; list && i < n; i++)
		if (memmem(&list[i], sizeof list[i], k.enc_key, 8) || memmem(&list[i], sizeof list[i], k2.integ_key, 8))
			leak = true;
	CHECK(!leak, "no key bytes in any listed struct");
	free(list);
	struct db_sa_filter f = {.direction = "in"};
	n = db_sa_list(db, &f, 0, 0, &list);
	CHECK(n == 1 && list[0].id == sa2.id, "filter by direction");
	free(list);
	f = (struct db_sa_filter){.peer = "198.51.100.10"};
	n = db_sa_list(db, &f, 0, 0, &list);
	CHECK(n == 1 && list[0].id == sa.id, "filter by peer matches the policy's peer when the SA has none");
	free(list);
	f = (struct db_sa_filter){.policy_id = p.id};
	CHECK(db_sa_count(db, &f, &count) == 0 && count == 2, "count by policy");
	n = db_sa_list(db, &f, 1, 5, &list);
	CHECK(n == 1 && list[0].id == sa2.id, "offset skips the first");
	free(list);

	/* Updates: keys kept unless given, and must still fit. */
	got = sa;
	db_sa_get(db, sa.id, &got);
	got.hard.seconds = 3600;
	got.policy[0] = 0;
	CHECK_EQ(db_sa_update(db, &got, NULL), 0, "update without new keys");
	CHECK(db_sa_keys_get(db, sa.id, &kg) == 0 && memcmp(kg.enc_key, k.enc_key, 36) == 0, "keys unchanged");
	db_sa_keys_wipe(&kg);
	strcpy(got.enc, "aes-gcm-128");
	CHECK(db_sa_update(db, &got, NULL) == -DB_E_INVALID && !strcmp(db_errfield(db), "enc_key"),
	      "changing the algorithm without a key of the new length is refused");
	k.enc_key_len = 20;
	k.enc_key[0] = 0x11;
	CHECK_EQ(db_sa_update(db, &got, &k), 0, "with a fitting key it is accepted");
	CHECK(db_sa_keys_get(db, sa.id, &kg) == 0 && kg.enc_key_len == 20 && kg.enc_key[0] == 0x11, "new key stored");
	db_sa_keys_wipe(&kg);
	k.enc_key_len = 36;

	/* Constraints. */
	make_sa(&got, &kg, 0x1001, "out", "sa-pol");
	expect_sa_error(db, &got, &kg, DB_E_CONFLICT, "spi", "duplicate SPI and direction");
	make_sa(&got, &kg, 0x2001, "out", "nope");
	expect_sa_error(db, &got, &kg, DB_E_REFERENCE, "policy", "SA naming a missing policy");
	make_sa(&got, &kg, 0x2001, "out", "");
	got.policy_id = 987654;
	expect_sa_error(db, &got, &kg, DB_E_REFERENCE, "policy", "SA with a missing policy id");
	make_sa(&got, &kg, 0x2001, "out", "sa-bypass");
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "policy", "SA for a bypass policy");
	make_sa(&got, &kg, 255, "out", "sa-pol");
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "spi", "SPI 255 (reserved)");
	make_sa(&got, &kg, 0x2001, "both", "sa-pol");
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "direction", "SA direction both");
	make_sa(&got, &kg, 0x2001, "out", "sa-pol");
	strcpy(got.enc, "aes-xts");
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "enc", "unknown cipher");
	make_sa(&got, &kg, 0x2001, "out", "sa-pol");
	strcpy(got.integ, "hmac-sha256-128");
	kg.integ_key_len = 32;
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "integ", "AEAD with an integrity algorithm");
	make_sa(&got, &kg, 0x2001, "out", "sa-pol");
	kg.enc_key_len = 32;
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "enc_key", "AES-GCM-256 key without its salt");
	CHECK(strstr(db_errmsg(db), "36") != NULL, "the message says the length needed: %s", db_errmsg(db));
	make_sa(&got, &kg, 0x2001, "out", "sa-pol");
	got.soft.packets = 10;
	got.hard.packets = 10;
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "lifetime", "soft lifetime not below hard");
	make_sa(&got, &kg, 0x2001, "out", "sa-pol");
	got.replay_window = 32;
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "replay_window", "replay window 32");
	make_sa(&got, &kg, 0x2001, "out", "sa-pol");
	strcpy(got.encap, "tcp");
	expect_sa_error(db, &got, &kg, DB_E_INVALID, "encap", "unknown encapsulation");
	f = (struct db_sa_filter){0};
	CHECK(db_sa_count(db, &f, &count) == 0 && count == 2, "no rejected SA was stored");

	/* A policy with SAs stays protect. */
	db_policy_get(db, p.id, &byp);
	strcpy(byp.action, "bypass");
	CHECK(db_policy_update(db, &byp) == -DB_E_INVALID && !strcmp(db_errfield(db), "action"),
	      "a protect policy with SAs cannot become bypass (%s)", db_errmsg(db));

	/* Delete by SPI, then the policy: its SAs and keys go with it. */
	CHECK_EQ(db_sa_delete_spi(db, 0x1001, "in", "esp"), 0, "delete by SPI");
	CHECK_EQ(db_sa_get(db, sa2.id, &got), -DB_E_NOT_FOUND, "gone");
	CHECK_EQ(db_sa_keys_get(db, sa2.id, &kg), -DB_E_NOT_FOUND, "and its keys with it");
	CHECK_EQ(db_policy_delete(db, p.id), 0, "delete the policy");
	CHECK_EQ(db_sa_get(db, sa.id, &got), -DB_E_NOT_FOUND, "its SA is deleted by cascade");
	CHECK_EQ(db_sa_keys_get(db, sa.id, &kg), -DB_E_NOT_FOUND, "and so are the SA's keys");
	db_policy_delete(db, byp.id);
}

static void test_sa_flush(struct db *db)
{
	struct db_policy p1, p2;
	struct db_sa sa;
	struct db_sa_keys k;
	int64_t count = 0;

	make_policy(&p1, "fl-1", "protect", 4);
	make_policy(&p2, "fl-2", "protect", 4);
	db_policy_insert(db, &p1);
	db_policy_insert(db, &p2);
	for (uint32_t i = 0; i < 3; i++) {
		make_sa(&sa, &k, 0x3000 + i, "out", "fl-1");
		db_sa_insert(db, &sa, &k);
		make_sa(&sa, &k, 0x4000 + i, "out", "fl-2");
		db_sa_insert(db, &sa, &k);
	}
	CHECK_EQ(db_sa_flush(db, p1.id), 3, "flush one policy's SAs: 3 removed");
	CHECK(db_sa_count(db, NULL, &count) == 0 && count == 3, "the other policy's SAs stay");
	CHECK_EQ(db_sa_flush(db, 0), 3, "flush all");
	CHECK(db_sa_count(db, NULL, &count) == 0 && count == 0, "none left");
	db_policy_delete(db, p1.id);
	db_policy_delete(db, p2.id);
}

/* An AH SA: integrity only, HMAC-SHA2-256. */
static void make_ah_sa(struct db_sa *sa, struct db_sa_keys *k, uint32_t spi, const char *dir_, const char *policy)
{
	make_sa(sa, k, spi, dir_, policy);
	strcpy(sa->protocol, "ah");
	strcpy(sa->enc, "null");
	strcpy(sa->integ, "hmac-sha256-128");
	k->enc_key_len = 0;
	k->integ_key_len = 32;
	memset(k->integ_key, 0x3c, 32);
}

/* Issue 7: SA types, AH SAs keyed apart from ESP ones by protocol, cloning. */
static void test_ah_bundle_clone(struct db *db)
{
	struct db_policy esp, ah, both, got;
	struct db_sa s_esp, s_ah, s_bad, g;
	struct db_sa_keys k;

	make_policy(&esp, "t7-esp", "protect", 4);
	make_policy(&ah, "t7-ah", "protect", 4);
	strcpy(ah.sa_type, "ah");
	strcpy(ah.ah_proposals, "sha256");
	make_policy(&both, "t7-ahesp", "protect", 4);
	strcpy(both.sa_type, "ahesp");
	strcpy(both.clone, "dst");
	CHECK(db_policy_insert(db, &esp) == 0 && db_policy_insert(db, &ah) == 0 && db_policy_insert(db, &both) == 0,
	      "policies of each sa_type");
	CHECK(db_policy_get(db, esp.id, &got) == 0 && !strcmp(got.sa_type, "esp") && !strcmp(got.clone, "none"),
	      "a policy that does not say is esp, clone none");
	CHECK(db_policy_get(db, both.id, &got) == 0 && !strcmp(got.sa_type, "ahesp") && !strcmp(got.clone, "dst"),
	      "sa_type and clone read back");
	CHECK(db_policy_get(db, ah.id, &got) == 0 && !strcmp(got.ah_proposals, "sha256"), "ah_proposals read back");
	strcpy(got.sa_type, "gre");
	CHECK(db_policy_update(db, &got) == -DB_E_INVALID && !strcmp(db_errfield(db), "sa_type"), "sa_type gre refused");

	/* a bundle's inbound ESP and AH SAs share one SPI: the SAD is keyed by (SPI, protocol) */
	make_sa(&s_esp, &k, 0x7000, "in", "t7-ahesp");
	strcpy(s_esp.clone_host, "198.18.2.9");
	CHECK_EQ(db_sa_insert(db, &s_esp, &k), 0, "an ESP SA of the bundle policy, with its clone host");
	make_ah_sa(&s_ah, &k, 0x7000, "in", "t7-ahesp");
	CHECK_EQ(db_sa_insert(db, &s_ah, &k), 0, "an AH SA with the same SPI and direction");
	CHECK(db_sa_get_spi(db, 0x7000, "in", "ah", &g) == 0 && g.id == s_ah.id && !strcmp(g.protocol, "ah") &&
	      !strcmp(g.enc, "null"), "get by SPI, direction and protocol: the AH one");
	CHECK(db_sa_get_spi(db, 0x7000, "in", NULL, &g) == 0 && g.id == s_esp.id && !strcmp(g.clone_host, "198.18.2.9"),
	      "protocol NULL: the ESP one, clone_host read back");
	make_ah_sa(&s_bad, &k, 0x7000, "in", "t7-ahesp");
	expect_sa_error(db, &s_bad, &k, DB_E_CONFLICT, "spi", "a second AH SA with that SPI");

	make_sa(&s_bad, &k, 0x7001, "out", "t7-ah");
	expect_sa_error(db, &s_bad, &k, DB_E_INVALID, "protocol", "an ESP SA on an ah policy");
	make_ah_sa(&s_bad, &k, 0x7001, "out", "t7-esp");
	expect_sa_error(db, &s_bad, &k, DB_E_INVALID, "protocol", "an AH SA on an esp policy");
	make_ah_sa(&s_bad, &k, 0x7001, "out", "t7-ah");
	strcpy(s_bad.encap, "udp");
	expect_sa_error(db, &s_bad, &k, DB_E_INVALID, "encap", "a UDP-encapsulated AH SA");
	make_ah_sa(&s_bad, &k, 0x7001, "out", "t7-ah");
	CHECK_EQ(db_sa_insert(db, &s_bad, &k), 0, "an AH SA on an ah policy");
	CHECK(db_policy_get(db, ah.id, &got) == 0, "read the ah policy");
	strcpy(got.sa_type, "esp");
	CHECK(db_policy_update(db, &got) == -DB_E_INVALID && !strcmp(db_errfield(db), "sa_type"),
	      "an ah policy with an AH SA cannot become esp");
	strcpy(got.sa_type, "ahesp");
	CHECK_EQ(db_policy_update(db, &got), 0, "but it can become ahesp");
	CHECK_EQ(db_sa_delete_spi(db, 0x7000, "in", "ah"), 0, "delete by SPI, direction and protocol");
	CHECK(db_sa_get_spi(db, 0x7000, "in", "esp", &g) == 0, "the ESP SA of that SPI stays");
	db_policy_delete(db, esp.id);
	db_policy_delete(db, ah.id);
	db_policy_delete(db, both.id);
}

/* ---- transactions ---- */

static void test_transactions(struct db *db)
{
	struct db_policy p, q;
	struct db_audit a = {0};
	struct db_audit_filter af = {.action = "policy.create"};
	int64_t n = 0;

	CHECK_EQ(db_begin(db), 0, "begin");
	CHECK_EQ(db_begin(db), -DB_E_TXN, "begin inside a transaction is refused");
	make_policy(&p, "tx-1", "bypass", 4);
	CHECK_EQ(db_policy_insert(db, &p), 0, "first step of an import");
	make_policy(&q, "tx-1", "discard", 4);
	CHECK_EQ(db_policy_insert(db, &q), -DB_E_CONFLICT, "second step fails");
	CHECK(db_in_txn(db), "the failed step left the transaction open");
	CHECK_EQ(db_policy_get_by_name(db, "tx-1", &q), 0, "the first step is still there inside it");
	CHECK_EQ(db_rollback(db), 0, "rollback");
	CHECK_EQ(db_policy_get_by_name(db, "tx-1", &q), -DB_E_NOT_FOUND, "after rollback nothing of the import remains");

	/* A change and its audit entry commit together. */
	CHECK_EQ(db_begin(db), 0, "begin");
	make_policy(&p, "tx-2", "bypass", 4);
	db_policy_insert(db, &p);
	strcpy(a.user, "admin");
	strcpy(a.action, "policy.create");
	strcpy(a.object, "policy/tx-2");
	a.detail = "{\"priority\":4}";
	CHECK_EQ(db_audit_add(db, &a), 0, "audit entry in the same transaction");
	CHECK_EQ(db_commit(db), 0, "commit");
	CHECK(db_policy_get_by_name(db, "tx-2", &q) == 0 && db_audit_count(db, &af, &n) == 0 && n == 1,
	      "both the change and its audit entry are stored");
	CHECK_EQ(db_commit(db), -DB_E_TXN, "commit without begin is refused");

	/* Rolled back together too. */
	db_begin(db);
	db_policy_delete(db, p.id);
	a.id = 0;
	db_audit_add(db, &a);
	db_rollback(db);
	CHECK(db_policy_get(db, p.id, &q) == 0 && db_audit_count(db, &af, &n) == 0 && n == 1,
	      "rolled back: the policy is back and there is no audit entry for the delete");
	db_policy_delete(db, p.id);

	/* A single call is atomic: a port with one bad address keeps its old addresses. */
	struct db_port port = {.role = "black", .interface = "b-blk", .mtu = 1500, .naddr = 1};
	strcpy(port.addresses[0], "192.0.2.10/24");
	db_port_set(db, &port);
	strcpy(port.addresses[1], "x");
	port.naddr = 2;
	strcpy(port.interface, "changed");
	CHECK(db_port_set(db, &port) == -DB_E_INVALID && !strcmp(db_errfield(db), "addresses[1]"),
	      "a port with a bad second address is refused, naming it (%s)", db_errfield(db));
	CHECK(db_port_get(db, "black", &port) == 0 && port.naddr == 1 && !strcmp(port.interface, "b-blk"),
	      "and the stored port is unchanged");
}

/* ---- passwords, users, tokens, sessions ---- */

static void test_passwords(void)
{
	char h1[DB_PWHASH_LEN], h2[DB_PWHASH_LEN], bad[DB_PWHASH_LEN];

	CHECK_EQ(db_password_hash("correct horse", h1), 0, "hash a password");
	CHECK(!strncmp(h1, "$scrypt$ln=15,r=8,p=1$", 22), "self-describing scrypt string: %s", h1);
	CHECK(strstr(h1, "correct") == NULL, "the password is not in it");
	CHECK_EQ(db_password_verify("correct horse", h1), 0, "the right password verifies");
	CHECK_EQ(db_password_verify("correct horsf", h1), -DB_E_AUTH, "a wrong one does not");
	CHECK_EQ(db_password_verify("", h1), -DB_E_AUTH, "nor an empty one");
	db_password_hash("correct horse", h2);
	CHECK(strcmp(h1, h2) != 0, "salted: the same password hashes differently each time");
	CHECK_EQ(db_password_hash("", h2), -DB_E_INVALID, "an empty password is refused");
	snprintf(bad, sizeof bad, "%s", h1);
	bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
	CHECK_EQ(db_password_verify("correct horse", bad), -DB_E_AUTH, "a tampered hash does not verify");
	snprintf(bad, sizeof bad, "$scrypt$ln=30,r=8,p=1$%s", strchr(h1 + 9, '$') + 1);
	CHECK_EQ(db_password_verify("correct horse", bad), -DB_E_AUTH, "absurd cost parameters are refused, not run");
	CHECK_EQ(db_password_verify("x", "plaintext"), -DB_E_AUTH, "a non-hash is refused");
}

/* A login as bitwd makes it (db_user_login_hash, then db_password_verify): 0, or -DB_E_AUTH for any failure. */
static int login(struct db *db, const char *name, const char *password, struct db_user *out)
{
	char hash[DB_PWHASH_LEN];
	int rc = db_user_login_hash(db, name, out, hash);

	if (rc)
		return rc;
	rc = db_password_verify(password, hash);
	if (rc || !out->id || out->disabled) {
		memset(out, 0, sizeof *out);
		return -DB_E_AUTH;
	}
	return 0;
}

static void test_users_tokens_sessions(struct db *db)
{
	struct db_user admin = {.name = "admin", .role = "admin"}, ro = {.name = "viewer", .role = "readonly"}, u, *ul;
	struct db_token tok, t2, *tl;
	char token[DB_TOKEN_LEN], token2[DB_TOKEN_LEN], sid[DB_SESSION_LEN];
	int n;

	CHECK_EQ(db_user_insert(db, &admin, "s3cret-admin"), 0, "create the admin");
	CHECK_EQ(db_user_insert(db, &ro, "s3cret-viewer"), 0, "create a read-only user");
	u = (struct db_user){.name = "admin", .role = "readonly"};
	CHECK(db_user_insert(db, &u, "x") == -DB_E_CONFLICT && !strcmp(db_errfield(db), "name"), "duplicate user name");
	u = (struct db_user){.name = "eve", .role = "root"};
	CHECK(db_user_insert(db, &u, "x") == -DB_E_INVALID && !strcmp(db_errfield(db), "role"), "unknown role");
	u = (struct db_user){.name = "eve", .role = "admin"};
	CHECK(db_user_insert(db, &u, "") == -DB_E_INVALID && !strcmp(db_errfield(db), "password"), "empty password");
	CHECK(!file_contains("main.db", "s3cret-admin", 12), "the password is not stored in the file");

	CHECK(login(db, "admin", "s3cret-admin", &u) == 0 && u.id == admin.id && !strcmp(u.role, "admin"),
	      "login with the right password");
	CHECK_EQ(login(db, "admin", "s3cret-viewer", &u), -DB_E_AUTH, "wrong password: auth error");
	CHECK_EQ(login(db, "mallory", "s3cret-admin", &u), -DB_E_AUTH, "unknown user: the same error");
	CHECK_EQ(db_user_set_password(db, ro.id, "new-pass"), 0, "change a password");
	CHECK(login(db, "viewer", "new-pass", &u) == 0 && !strcmp(u.role, "readonly"), "the new one works");
	CHECK_EQ(login(db, "viewer", "s3cret-viewer", &u), -DB_E_AUTH, "the old one does not");

	n = db_user_list(db, &ul);
	CHECK(n == 2 && !strcmp(ul[0].name, "admin") && !strcmp(ul[1].name, "viewer"), "list users");
	free(ul);

	/* Tokens. */
	CHECK_EQ(db_token_create(db, ro.id, "ci", 0, token, &tok), 0, "create a token");
	CHECK(strlen(token) == DB_TOKEN_LEN - 1 && !strncmp(token, "bitw_", 5), "recognisable, 48 characters: %.9s...",
	      token);
	CHECK(!file_contains("main.db", token, strlen(token)), "the token itself is not stored, only its hash");
	CHECK(db_token_verify(db, token, &t2, &u) == 0 && t2.id == tok.id && u.id == ro.id && !strcmp(u.role, "readonly"),
	      "the token verifies and names its user and role");
	CHECK(t2.last_used > 0, "last_used is recorded");
	snprintf(token2, sizeof token2, "%s", token);
	token2[10] = token2[10] == 'a' ? 'b' : 'a';
	CHECK_EQ(db_token_verify(db, token2, &t2, &u), -DB_E_AUTH, "a token one character off does not");
	CHECK_EQ(db_token_verify(db, "bitw_short", &t2, &u), -DB_E_AUTH, "a malformed token does not");
	CHECK(db_token_create(db, ro.id, "ci", 0, token2, &t2) == -DB_E_CONFLICT, "token names are unique per user");
	CHECK_EQ(db_token_create(db, ro.id, "old", 1000, token2, &t2), 0, "create a token that expired long ago");
	CHECK_EQ(db_token_verify(db, token2, &t2, &u), -DB_E_AUTH, "an expired token does not verify");
	n = db_token_list(db, ro.id, &tl);
	CHECK(n == 2 && !strcmp(tl[0].name, "ci"), "list the user's tokens");
	free(tl);
	CHECK_EQ(db_token_create(db, 99999, "x", 0, token2, &t2), -DB_E_REFERENCE, "a token for a missing user");

	/* Sessions. */
	CHECK_EQ(db_session_create(db, admin.id, 3600, sid), 0, "create a session");
	CHECK(db_session_check(db, sid, &u) == 0 && u.id == admin.id, "the session id authenticates its user");
	CHECK(!file_contains("main.db", sid, strlen(sid)), "the session id is stored hashed");
	CHECK_EQ(db_session_delete(db, sid), 0, "logout");
	CHECK_EQ(db_session_check(db, sid, &u), -DB_E_AUTH, "the session is gone");
	CHECK_EQ(db_session_create(db, admin.id, -1, sid), 0, "an already-expired session");
	CHECK_EQ(db_session_check(db, sid, &u), -DB_E_AUTH, "expired sessions do not authenticate");
	CHECK_EQ(db_session_purge(db), 1, "purge removes the expired session");

	/* Disabling and deleting. */
	u = ro;
	u.disabled = true;
	CHECK_EQ(db_user_update(db, &u), 0, "disable the read-only user");
	CHECK_EQ(db_token_verify(db, token, &t2, &u), -DB_E_AUTH, "a disabled user's token no longer verifies");
	CHECK_EQ(login(db, "viewer", "new-pass", &u), -DB_E_AUTH, "nor does their password");
	u = admin;
	u.disabled = true;
	CHECK(db_user_update(db, &u) == -DB_E_INVALID && !strcmp(db_errfield(db), "role"),
	      "the last enabled admin cannot be disabled");
	CHECK(db_user_delete(db, admin.id) == -DB_E_INVALID, "nor deleted");
	CHECK_EQ(db_user_delete(db, ro.id), 0, "delete the read-only user");
	n = db_token_list(db, ro.id, &tl);
	CHECK_EQ(n, 0, "their tokens went with them");
	free(tl);
}

/* ---- audit ---- */

static void test_audit(struct db *db)
{
	struct db_audit a, *list;
	struct db_audit_filter f = {.user = "pager"};
	int64_t count = 0;
	bool desc = true, disjoint = true;
	int64_t seen[30] = {0};
	int ns = 0, n;

	for (int i = 0; i < 25; i++) {
		a = (struct db_audit){.time = 1700000000 + i};
		strcpy(a.user, i % 5 ? "pager" : "other");
		strcpy(a.action, "sa.create");
		snprintf(a.object, sizeof a.object, "sa/%d", i);
		strcpy(a.remote, "127.0.0.1");
		db_audit_add(db, &a);
	}
	CHECK(db_audit_count(db, &f, &count) == 0 && count == 20, "count with a user filter");
	for (int64_t off = 0; off < 30; off += 8) {
		n = db_audit_list(db, &f, off, 8, &list);
		for (int i = 0; i < n; i++) {
			if (i && list[i].id >= list[i - 1].id)
				desc = false;
			for (int j = 0; j < ns; j++)
				if (seen[j] == list[i].id)
					disjoint = false;
			if (ns < 30)
				seen[ns++] = list[i].id;
		}
		if (off == 0)
			CHECK(n == 8 && !strcmp(list[0].object, "sa/24") && !strcmp(list[0].detail, "{}") &&
			      !strcmp(list[0].remote, "127.0.0.1"), "first page: newest first, detail defaults to {}");
		db_audit_free_list(list, (size_t)(n > 0 ? n : 0));
	}
	CHECK(ns == 20 && desc && disjoint, "pages of 8 cover all 20 entries once, newest first");
	f = (struct db_audit_filter){.user = "pager", .since = 1700000010, .until = 1700000020};
	CHECK(db_audit_count(db, &f, &count) == 0 && count == 8, "time window filter (since <= t < until)");

	a = (struct db_audit){0};
	strcpy(a.action, "x");
	a.detail = "{not json";
	CHECK(db_audit_add(db, &a) == -DB_E_INVALID && !strcmp(db_errfield(db), "detail"), "detail must be JSON");
	a.detail = NULL;
	a.action[0] = 0;
	CHECK(db_audit_add(db, &a) == -DB_E_INVALID && !strcmp(db_errfield(db), "action"), "action is required");
}

/* ---- settings, ports, peers, certificates ---- */

static int count_settings(void *ctx, const char *k, const char *v)
{
	(void)k;
	(void)v;
	++*(int *)ctx;
	return 0;
}

static void test_settings_ports(struct db *db)
{
	char val[64];
	int n = 0;
	struct db_port p = {.role = "red", .interface = "a-red", .router_mac = "02:00:00:00:00:01", .naddr = 1}, g;

	CHECK_EQ(db_setting_set(db, "default_action", "discard"), 0, "set a setting");
	CHECK_EQ(db_setting_set(db, "nat_keepalive", "20"), 0, "set another");
	CHECK_EQ(db_setting_set(db, "default_action", "bypass"), 0, "overwrite it");
	CHECK(db_setting_get(db, "default_action", val, sizeof val) == 0 && !strcmp(val, "bypass"), "read it back");
	db_setting_foreach(db, count_settings, &n);
	CHECK(n >= 2, "foreach visits the settings");
	char small[4];
	CHECK(db_setting_get(db, "default_action", small, sizeof small) == -DB_E_INVALID,
	      "a value that does not fit the buffer is an error, not silently cut");
	CHECK_EQ(db_setting_delete(db, "default_action"), 0, "delete it");
	CHECK_EQ(db_setting_get(db, "default_action", val, sizeof val), -DB_E_NOT_FOUND, "gone");
	CHECK_EQ(db_setting_set(db, "", "x"), -DB_E_INVALID, "empty key refused");

	strcpy(p.addresses[0], "198.18.1.2/24");
	CHECK_EQ(db_port_set(db, &p), 0, "store the red port");
	CHECK(db_port_get(db, "red", &g) == 0 && !strcmp(g.interface, "a-red") && g.naddr == 1 &&
	      !strcmp(g.addresses[0], "198.18.1.2/24") && !strcmp(g.router_mac, "02:00:00:00:00:01"), "read it back");
	CHECK(db_port_get(db, "black", &g) == 0 && g.naddr == 1, "black port from before");
	strcpy(g.addresses[1], "2001:db8:a::10/64");
	g.naddr = 2;
	strcpy(g.gateway4, "192.0.2.1");
	strcpy(g.gateway6, "2001:db8:a::1");
	CHECK_EQ(db_port_set(db, &g), 0, "replace black with two addresses and gateways");
	CHECK(db_port_get(db, "black", &g) == 0 && g.naddr == 2 && !strcmp(g.addresses[1], "2001:db8:a::10/64") &&
	      !strcmp(g.gateway4, "192.0.2.1") && !strcmp(g.gateway6, "2001:db8:a::1"), "read back");
	strcpy(p.router_mac, "zz:00:00:00:00:01");
	CHECK(db_port_set(db, &p) == -DB_E_INVALID && !strcmp(db_errfield(db), "router_mac"), "bad MAC refused");
	p.router_mac[0] = 0;
	strcpy(p.role, "green");
	CHECK(db_port_set(db, &p) == -DB_E_INVALID && !strcmp(db_errfield(db), "role"), "unknown port role refused");
	CHECK_EQ(db_port_delete(db, "red"), 0, "delete the red port");
	CHECK_EQ(db_port_get(db, "red", &g), -DB_E_NOT_FOUND, "gone");
}

static void test_peers_certs(struct db *db)
{
	struct db_peer p, g, *list;
	struct db_cert c = {.name = "ca", .is_ca = true, .subject = "CN=bitw test CA", .not_after = 2000000000}, cg;
	const uint8_t psk[] = "a pre-shared key of decent length";
	uint8_t *got;
	size_t len;
	int n;

	db_peer_init(&p);
	strcpy(p.name, "site-b");
	strcpy(p.address, "198.51.100.10");
	strcpy(p.remote_id, "site-b.example");
	CHECK_EQ(db_peer_insert(db, &p), 0, "insert a peer");
	CHECK(db_peer_get(db, p.id, &g) == 0 && !strcmp(g.address, "198.51.100.10") && !strcmp(g.auth, "psk") &&
	      !strcmp(g.start_action, "trap") && g.dpd_interval == 30 && g.nat_t, "read it back with defaults");
	CHECK_EQ(db_peer_psk_set(db, p.id, psk, sizeof psk - 1), 0, "set its PSK");
	CHECK(db_peer_psk_get(db, p.id, &got, &len) == 0 && len == sizeof psk - 1 && !memcmp(got, psk, len),
	      "the PSK reads back only through db_peer_psk_get");
	db_secret_free(got, len);
	CHECK(memmem(&g, sizeof g, psk, 8) == NULL, "the peer struct has no PSK");
	g.dpd_interval = 10;
	strcpy(g.start_action, "start");
	CHECK(db_peer_update(db, &g) == 0 && db_peer_get_by_name(db, "site-b", &g) == 0 && g.dpd_interval == 10,
	      "update a peer");
	strcpy(g.start_action, "sometimes");
	CHECK(db_peer_update(db, &g) == -DB_E_INVALID && !strcmp(db_errfield(db), "start_action"), "bad start_action");
	db_peer_init(&g);
	strcpy(g.name, "site-c");
	strcpy(g.address, "203.0.113.5");
	strcpy(g.auth, "password");
	CHECK(db_peer_insert(db, &g) == -DB_E_INVALID && !strcmp(db_errfield(db), "auth"), "bad auth method");
	n = db_peer_list(db, 0, 0, &list);
	CHECK(n == 1 && !strcmp(list[0].name, "site-b"), "list peers");
	free(list);
	CHECK_EQ(db_peer_delete(db, p.id), 0, "delete the peer");
	CHECK_EQ(db_peer_psk_get(db, p.id, &got, &len), -DB_E_NOT_FOUND, "its PSK went with it");

	c.pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	CHECK_EQ(db_cert_insert(db, &c, "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"), 0,
	         "insert a certificate with its key");
	CHECK(db_cert_get_by_name(db, "ca", &cg) == 0 && cg.is_ca && !strcmp(cg.pem, c.pem) &&
	      !strcmp(cg.subject, "CN=bitw test CA") && cg.not_after == 2000000000, "read it back");
	db_cert_free(&cg);
	CHECK(db_cert_key_get(db, c.id, &got, &len) == 0 && strstr((char *)got, "secret"), "its key, on request only");
	db_secret_free(got, len);
	c.pem = "not a pem";
	c.name[0] = 'x';
	CHECK(db_cert_insert(db, &c, NULL) == -DB_E_INVALID && !strcmp(db_errfield(db), "pem"), "non-PEM refused");
	CHECK_EQ(db_cert_delete(db, 1), 0, "delete the certificate");
	CHECK_EQ(db_cert_key_get(db, 1, &got, &len), -DB_E_NOT_FOUND, "its key went with it");
}

/* ---- crash consistency ---- */

static void crash_child(int wfd)
{
	struct db *db = open_ok("crash.db");
	struct db_policy p;
	struct db_audit a = {0};

	if (!db)
		_exit(1);
	strcpy(a.action, "policy.create");
	for (int i = 0;; i++) {
		make_policy(&p, "x", "bypass", 1 + i % 7);
		snprintf(p.name, sizeof p.name, "crash-%d", i);
		if (db_begin(db) || db_policy_insert(db, &p) || db_audit_add(db, &a) || db_commit(db))
			_exit(2);
		/* Reported only once committed: everything the parent hears of must survive. */
		if (write(wfd, &p.id, sizeof p.id) != (ssize_t)sizeof p.id)
			_exit(3);
	}
}

static void test_crash(void)
{
	int fds[2];
	int64_t ids[100000];
	size_t n = 0;
	int status = 0;

	if (pipe(fds) != 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		crash_child(fds[1]);
	}
	close(fds[1]);
	/* Kill it mid-stream, after a good number of commits. */
	while (n < 300) {
		ssize_t r = read(fds[0], &ids[n], sizeof ids[0]);
		if (r != (ssize_t)sizeof ids[0])
			break;
		n++;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	while (n < sizeof ids / sizeof ids[0] && read(fds[0], &ids[n], sizeof ids[0]) == (ssize_t)sizeof ids[0])
		n++;
	close(fds[0]);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the writer was killed by SIGKILL");
	CHECK(n >= 300, "it had reported %zu commits", n);

	struct db *db = open_ok("crash.db");
	CHECK(db != NULL, "the database reopens after the crash");
	if (!db)
		return;
	CHECK_EQ(db_integrity_check(db), 0, "PRAGMA integrity_check = ok");
	size_t missing = 0;
	struct db_policy p;
	for (size_t i = 0; i < n; i++)
		if (db_policy_get(db, ids[i], &p) != 0)
			missing++;
	CHECK_EQ(missing, 0, "every reported commit is present (%zu)", n);
	int64_t pols = 0, audits = 0;
	db_policy_count(db, &pols);
	db_audit_count(db, NULL, &audits);
	CHECK(pols == audits && (size_t)pols >= n && (size_t)pols <= n + 1,
	      "each policy has its audit entry; at most the one unreported commit more (%lld)", (long long)pols);
	db_close(db);
}

static void cleanup(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlink(path_in(e->d_name));
	if (d)
		closedir(d);
	rmdir(dir);
}

int main(void)
{
	struct db *db;

	snprintf(dir, sizeof dir, "/tmp/test_db.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	setvbuf(stdout, NULL, _IONBF, 0);   /* fork: no duplicated buffered output */

	test_open_mode_and_migrations();
	test_migration_3();
	db = open_ok("main.db");
	CHECK(db != NULL, "open the main test database");
	if (db) {
		test_policies(db);
		test_policy_constraints(db);
		test_reorder(db);
		test_sas(db);
		test_sa_flush(db);
		test_ah_bundle_clone(db);
		test_transactions(db);
		test_passwords();
		test_users_tokens_sessions(db);
		test_audit(db);
		test_settings_ports(db);
		test_peers_certs(db);
		db_close(db);
	}
	test_crash();
	CHECK(raw_count("main.db", "SELECT count(*) FROM sa_keys") == 0,
	      "no orphaned SA keys remain after all the deletes");
	cleanup();
	return check_done();
}
