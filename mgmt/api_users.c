/* api_users.c: /users (admins manage accounts, anyone their own password) and /tokens (bearer tokens for scripts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "bitwd.h"

void users_list(struct req *r);
void users_create(struct req *r);
void users_get(struct req *r);
void users_update(struct req *r);
void users_delete(struct req *r);
void tokens_list(struct req *r);
void tokens_create(struct req *r);
void tokens_delete(struct req *r);

#define TOKEN_LIFETIME_MAX (10 * 366 * 86400LL)

/* The password hash never leaves the database layer, so this is all a user is to the API. */
static json_t *user_json(const struct db_user *u)
{
	return json_pack("{s:I, s:s, s:s, s:b, s:I}", "id", (json_int_t)u->id, "name", u->name, "role", u->role,
	                 "disabled", u->disabled, "created", (json_int_t)u->created);
}

static int page_params(struct req *r, int64_t *offset, int64_t *limit)
{
	if (req_query_int(r, "offset", 0, 0, INT64_MAX, offset) != 0 ||
	    req_query_int(r, "limit", 100, 1, 1000, limit) != 0)
		return -1;
	return 0;
}

static json_t *page(json_t *items, int64_t total, int64_t offset, int64_t limit)
{
	return json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total, "offset",
	                 (json_int_t)offset, "limit", (json_int_t)limit);
}

static void object_name(char *buf, size_t len, const char *kind, int64_t id)
{
	snprintf(buf, len, "%s/%lld", kind, (long long)id);
}

/* A password the API accepts: long enough to resist guessing between the rate limits. */
static int check_password(struct req *r, json_t *pw)
{
	const char *s = json_string_value(pw);

	if (!s) {
		reply_problem(r, 422, "BAD_FIELD", "password", "a string");
		return -1;
	}
	if (strlen(s) < AUTH_PASSWORD_MIN || strlen(s) > 1024) {
		reply_problem(r, 422, "BAD_FIELD", "password", "%d to 1024 characters", AUTH_PASSWORD_MIN);
		return -1;
	}
	return 0;
}

static int check_role(struct req *r, json_t *role)
{
	if (!json_is_string(role) || auth_role_of(json_string_value(role)) == ROLE_NONE) {
		reply_problem(r, 422, "BAD_FIELD", "role", "\"admin\" or \"readonly\"");
		return -1;
	}
	return 0;
}

/* The database refuses to remove or demote the last enabled admin; that is a conflict, not bad input. */
static void reply_user_db_error(struct req *r, int rc)
{
	if (rc == -DB_E_INVALID && strcmp(db_errfield(r->d->db), "role") == 0)
		reply_problem(r, 409, "CONFLICT", "role", "the last enabled admin cannot be removed, demoted or disabled");
	else
		reply_db_error(r, rc);
}

/* Replies first: rolling back would overwrite the database's message and field. */
static void fail_txn(struct req *r, int rc)
{
	reply_user_db_error(r, rc);
	if (db_in_txn(r->d->db))
		db_rollback(r->d->db);
}

/* ---- users ---- */

void users_list(struct req *r)
{
	struct db_user *users = NULL;
	int64_t offset, limit;
	int n;

	if (page_params(r, &offset, &limit) != 0)
		return;
	if ((n = db_user_list(r->d->db, &users)) < 0) {
		reply_db_error(r, n);
		return;
	}
	json_t *items = json_array();
	for (int64_t i = offset; i < n && i < offset + limit; i++)
		json_array_append_new(items, user_json(&users[i]));
	free(users);
	reply_json(r, 200, page(items, n, offset, limit));
}

/*
 * Hashing a password (scrypt) is slow on purpose: it runs on the worker
 * thread, as a login's check does, and the change is made when it is done.
 */
struct pw_job {
	const char *password;    /* the request body's string: alive until the finish */
	struct db_user u;        /* the user to create or change */
	char hash[DB_PWHASH_LEN];
	int rc;
};

static void pw_hash_work(void *arg)
{
	struct pw_job *j = arg;

	j->rc = db_password_hash(j->password, j->hash);
}

static void pw_job_free(struct pw_job *j)
{
	OPENSSL_cleanse(j, sizeof *j);
	free(j);
}

/* -1 after replying (503 BUSY when the worker has too much to do). */
static int pw_offload(struct req *r, const char *password, const struct db_user *u, req_finish_fn finish)
{
	struct pw_job *j = calloc(1, sizeof *j);

	if (!j) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return -1;
	}
	j->password = password;
	j->u = *u;
	if (req_offload(r, JOB_ACCOUNT, pw_hash_work, finish, j) < 0) {
		reply_header(r, "Retry-After", "1");
		reply_problem(r, 503, "BUSY", NULL, "too many password checks at once; try again");
		pw_job_free(j);
		return -1;
	}
	return 0;
}

/* True after replying when the hash was not made. */
static bool pw_failed(struct req *r, const struct pw_job *j, bool ran)
{
	if (!ran)
		reply_problem(r, 503, "INTERNAL", NULL, "bitwd is stopping");
	else if (j->rc == -DB_E_INVALID)
		reply_problem(r, 422, "BAD_FIELD", "password", "not a password bitwd can store");
	else if (j->rc)
		reply_problem(r, 500, "INTERNAL", NULL, "password hashing failed");
	return !ran || j->rc;
}

static void user_created(struct req *r, void *arg, bool ran)
{
	struct pw_job *j = arg;
	struct db_user *u = &j->u;
	char object[32], where[64];
	int rc;

	if (pw_failed(r, j, ran))
		goto out;
	if ((rc = db_begin(r->d->db)) || (rc = db_user_insert_hashed(r->d->db, u, j->hash))) {
		fail_txn(r, rc);
		goto out;
	}
	object_name(object, sizeof object, "user", u->id);
	audit(r, "user.create", object, json_pack("{s:s, s:s}", "name", u->name, "role", u->role));
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		goto out;
	}
	snprintf(where, sizeof where, "/api/v1/users/%lld", (long long)u->id);
	reply_header(r, "Location", where);
	reply_json(r, 201, user_json(u));
out:
	pw_job_free(j);
}

void users_create(struct req *r)
{
	static const char *const fields[] = { "name", "password", "role", NULL };
	struct db_user u = { .role = "readonly" };
	json_t *name, *pw, *role;

	if (req_body_object(r, fields) != 0)
		return;
	name = json_object_get(r->body, "name");
	pw = json_object_get(r->body, "password");
	role = json_object_get(r->body, "role");
	if (!name || !pw) {
		reply_problem(r, 422, "MISSING_FIELD", name ? "password" : "name", "required");
		return;
	}
	if (!json_is_string(name) || json_string_length(name) >= sizeof u.name) {
		reply_problem(r, 422, "BAD_FIELD", "name", "a string of at most %zu characters", sizeof u.name - 1);
		return;
	}
	if (check_password(r, pw) != 0 || (role && check_role(r, role) != 0))
		return;
	snprintf(u.name, sizeof u.name, "%s", json_string_value(name));
	if (role)
		snprintf(u.role, sizeof u.role, "%s", json_string_value(role));
	pw_offload(r, json_string_value(pw), &u, user_created);
}

void users_get(struct req *r)
{
	struct db_user u;
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0)
		return;
	if ((rc = db_user_get(r->d->db, id, &u))) {
		reply_db_error(r, rc);
		return;
	}
	reply_json(r, 200, user_json(&u));
}

/* Read-only users may only change their own password; everything else is for admins. */
static bool may_update(const struct req *r, int64_t id)
{
	if (r->role >= ROLE_ADMIN)
		return true;
	return id == r->user.id && !json_object_get(r->body, "role") && !json_object_get(r->body, "disabled");
}

/* Applies the PATCH inside the open transaction; detail lists what changed (never the password). */
static int apply_update(struct req *r, struct db_user *u, const char *hash, json_t *detail)
{
	json_t *role = json_object_get(r->body, "role"), *dis = json_object_get(r->body, "disabled");
	const char *keep;
	int rc;

	/*
	 * Read again inside the transaction: u was read before the password was
	 * hashed on the worker thread, and a role or disabled change made
	 * meanwhile must not be undone by writing that copy back.
	 */
	if ((rc = db_user_get(r->d->db, u->id, u)))
		return rc;
	if (role || dis) {
		if (role)
			snprintf(u->role, sizeof u->role, "%s", json_string_value(role));
		if (dis)
			u->disabled = json_is_true(dis);
		if ((rc = db_user_update(r->d->db, u)))
			return rc;
		if (role)
			json_object_set(detail, "role", role);
		if (dis)
			json_object_set(detail, "disabled", dis);
	}
	if (hash) {
		if ((rc = db_user_set_password_hashed(r->d->db, u->id, hash)))
			return rc;
		json_object_set_new(detail, "password", json_string("changed"));
		/* whoever knew the old password is logged out; the session making the change stays, tokens too */
		keep = u->id == r->user.id && r->via_session ? auth_session_id(r) : NULL;
		if ((rc = db_session_delete_user(r->d->db, u->id, keep)) < 0)
			return rc;
		json_object_set_new(detail, "sessions_ended", json_integer(rc));
	}
	return 0;
}

/* The PATCH with the new password's hash (NULL: no new password), in one transaction with its audit entry. */
static void update_user(struct req *r, struct db_user *u, const char *hash)
{
	json_t *detail = json_object();
	char object[32];
	int rc;

	if ((rc = db_begin(r->d->db)) || (rc = apply_update(r, u, hash, detail))) {
		json_decref(detail);
		fail_txn(r, rc);
		return;
	}
	object_name(object, sizeof object, "user", u->id);
	audit(r, "user.update", object, detail);
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		return;
	}
	reply_json(r, 200, user_json(u));
}

static void user_updated(struct req *r, void *arg, bool ran)
{
	struct pw_job *j = arg;

	if (!pw_failed(r, j, ran))
		update_user(r, &j->u, j->hash);
	pw_job_free(j);
}

void users_update(struct req *r)
{
	static const char *const fields[] = { "role", "disabled", "password", NULL };
	struct db_user u;
	json_t *dis, *pw, *role;
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0 || req_body_object(r, fields) != 0)
		return;
	if (!may_update(r, id)) {
		reply_problem(r, 403, "FORBIDDEN", NULL, "only admins change other users, roles and the disabled flag");
		return;
	}
	role = json_object_get(r->body, "role");
	dis = json_object_get(r->body, "disabled");
	pw = json_object_get(r->body, "password");
	if ((role && check_role(r, role) != 0) || (pw && check_password(r, pw) != 0))
		return;
	if (dis && !json_is_boolean(dis)) {
		reply_problem(r, 422, "BAD_FIELD", "disabled", "true or false");
		return;
	}
	if ((rc = db_user_get(r->d->db, id, &u))) {
		reply_db_error(r, rc);
		return;
	}
	if (pw)
		pw_offload(r, json_string_value(pw), &u, user_updated);
	else
		update_user(r, &u, NULL);
}

void users_delete(struct req *r)
{
	struct db_user u;
	char object[32];
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0)
		return;
	if ((rc = db_user_get(r->d->db, id, &u))) {
		reply_db_error(r, rc);
		return;
	}
	if ((rc = db_begin(r->d->db)) || (rc = db_user_delete(r->d->db, id))) {
		fail_txn(r, rc);
		return;
	}
	object_name(object, sizeof object, "user", id);
	audit(r, "user.delete", object, json_pack("{s:s}", "name", u.name));
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		return;
	}
	reply_no_content(r);
}

/* ---- tokens ---- */

static json_t *token_json(const struct db_token *t, const char *owner)
{
	json_t *j = json_pack("{s:I, s:s, s:I, s:I, s:I, s:I}", "id", (json_int_t)t->id, "name", t->name, "user_id",
	                      (json_int_t)t->user_id, "created", (json_int_t)t->created, "expires",
	                      (json_int_t)t->expires, "last_used", (json_int_t)t->last_used);

	if (owner)
		json_object_set_new(j, "user", json_string(owner));
	return j;
}

static const char *owner_name(const struct db_user *users, int n, int64_t id)
{
	for (int i = 0; i < n; i++)
		if (users[i].id == id)
			return users[i].name;
	return NULL;
}

void tokens_list(struct req *r)
{
	const char *all = req_query(r, "all");
	bool everyone = all && strcmp(all, "0") != 0 && strcmp(all, "false") != 0;
	struct db_token *toks = NULL;
	struct db_user *users = NULL;
	int64_t offset, limit;
	int n, nusers;

	if (everyone && r->role < ROLE_ADMIN) {
		reply_problem(r, 403, "FORBIDDEN", "all", "only admins list everyone's tokens");
		return;
	}
	if (page_params(r, &offset, &limit) != 0)
		return;
	if ((n = db_token_list(r->d->db, everyone ? 0 : r->user.id, &toks)) < 0 ||
	    (nusers = db_user_list(r->d->db, &users)) < 0) {
		free(toks);
		reply_db_error(r, n < 0 ? n : nusers);
		return;
	}
	json_t *items = json_array();
	for (int64_t i = offset; i < n && i < offset + limit; i++)
		json_array_append_new(items, token_json(&toks[i], owner_name(users, nusers, toks[i].user_id)));
	free(toks);
	free(users);
	reply_json(r, 200, page(items, n, offset, limit));
}

static int token_expiry(struct req *r, int64_t *expires)
{
	json_t *in = json_object_get(r->body, "expires_in");

	*expires = 0;
	if (!in || json_is_null(in))
		return 0;
	if (!json_is_integer(in) || json_integer_value(in) < 1 || json_integer_value(in) > TOKEN_LIFETIME_MAX) {
		reply_problem(r, 422, "BAD_FIELD", "expires_in", "seconds, 1 to %lld",
		              (long long)TOKEN_LIFETIME_MAX);
		return -1;
	}
	*expires = (int64_t)time(NULL) + json_integer_value(in);
	return 0;
}

void tokens_create(struct req *r)
{
	static const char *const fields[] = { "name", "expires_in", NULL };
	char secret[DB_TOKEN_LEN], object[32];
	struct db_token t;
	json_t *name;
	int64_t expires;
	int rc;

	if (req_body_object(r, fields) != 0)
		return;
	name = json_object_get(r->body, "name");
	if (!name) {
		reply_problem(r, 422, "MISSING_FIELD", "name", "required");
		return;
	}
	if (!json_is_string(name) || json_string_length(name) >= sizeof t.name) {
		reply_problem(r, 422, "BAD_FIELD", "name", "a string of at most %zu characters", sizeof t.name - 1);
		return;
	}
	if (token_expiry(r, &expires) != 0)
		return;
	if ((rc = db_begin(r->d->db)) ||
	    (rc = db_token_create(r->d->db, r->user.id, json_string_value(name), expires, secret, &t))) {
		if (rc == -DB_E_CONFLICT)
			reply_problem(r, 409, "CONFLICT", "name", "you have a token of that name already");
		else
			reply_db_error(r, rc);
		if (db_in_txn(r->d->db))
			db_rollback(r->d->db);
		return;
	}
	object_name(object, sizeof object, "token", t.id);
	audit(r, "token.create", object, json_pack("{s:s, s:I}", "name", t.name, "expires", (json_int_t)expires));
	if ((rc = db_commit(r->d->db))) {
		OPENSSL_cleanse(secret, sizeof secret);
		reply_db_error(r, rc);
		return;
	}
	/* The only time the token text is ever shown. */
	reply_json(r, 201, json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)t.id, "name", t.name, "token", secret,
	                             "expires", (json_int_t)t.expires));
	OPENSSL_cleanse(secret, sizeof secret);
}

/* Owner of token id, or 0 when it does not exist. */
static int64_t token_owner(struct req *r, int64_t id, char *name, size_t len)
{
	struct db_token *toks = NULL;
	int64_t owner = 0;
	int n = db_token_list(r->d->db, 0, &toks);

	for (int i = 0; i < n; i++)
		if (toks[i].id == id) {
			owner = toks[i].user_id;
			snprintf(name, len, "%s", toks[i].name);
		}
	free(toks);
	return owner;
}

void tokens_delete(struct req *r)
{
	char name[DB_NAME_LEN], object[32];
	int64_t id = req_param_id(r, 0), owner;
	int rc;

	if (id < 0)
		return;
	owner = token_owner(r, id, name, sizeof name);
	/* Someone else's token does not exist as far as a non-admin can tell. */
	if (!owner || (owner != r->user.id && r->role < ROLE_ADMIN)) {
		reply_problem(r, 404, "NOT_FOUND", NULL, "no token %lld", (long long)id);
		return;
	}
	if ((rc = db_begin(r->d->db)) || (rc = db_token_delete(r->d->db, id))) {
		fail_txn(r, rc);
		return;
	}
	object_name(object, sizeof object, "token", id);
	audit(r, "token.delete", object, json_pack("{s:s, s:I}", "name", name, "user_id", (json_int_t)owner));
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		return;
	}
	reply_no_content(r);
}
