/* api_auth.c: POST /login (sessions, failed-login rate limit), POST /logout, GET /whoami. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "bitwd.h"

void auth_login(struct req *r);
void auth_logout(struct req *r);
void auth_whoami(struct req *r);

/*
 * ---- failed logins: more than RL_MAX in RL_WINDOW_MS per address or per user name -> 429 ----
 * An attempt counts as failed from when it starts (the check takes a while on
 * the worker thread: counting at the end let parallel attempts all pass the
 * limit); one that succeeds is taken back.
 */

#define RL_MAX 5
#define RL_WINDOW_MS (5u * 60u * 1000u)
#define RL_SLOTS 1024           /* bounded: an address spray evicts the stalest entries, never grows memory */
#define LOGIN_FAIL_FLOOR_MS 250 /* a failed login never answers sooner, whatever failed */

struct rl_entry {
	char key[DB_NAME_LEN + 8];  /* "a:<address>" or "u:<user name>" */
	uint64_t fail[RL_MAX];      /* ring of the newest failure times */
	unsigned next, n;
};

/* Single reactor thread: no locks. */
static struct rl_entry rl_table[RL_SLOTS];

static uint64_t rl_newest(const struct rl_entry *e)
{
	return e->n ? e->fail[(e->next + RL_MAX - 1) % RL_MAX] : 0;
}

static struct rl_entry *rl_find(const char *key, bool create)
{
	struct rl_entry *victim = &rl_table[0];

	for (size_t i = 0; i < RL_SLOTS; i++) {
		struct rl_entry *e = &rl_table[i];
		if (e->n && strcmp(e->key, key) == 0)
			return e;
		if (rl_newest(e) < rl_newest(victim))
			victim = e;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	snprintf(victim->key, sizeof victim->key, "%s", key);
	return victim;
}

/* Milliseconds until key may try again; 0 = now. */
static uint64_t rl_wait(const char *key, uint64_t now)
{
	struct rl_entry *e = rl_find(key, false);
	uint64_t oldest;

	if (!e || e->n < RL_MAX)
		return 0;
	oldest = e->fail[e->next];
	return oldest + RL_WINDOW_MS > now ? oldest + RL_WINDOW_MS - now : 0;
}

static void rl_fail(const char *key, uint64_t now)
{
	struct rl_entry *e = rl_find(key, true);

	e->fail[e->next] = now;
	e->next = (e->next + 1) % RL_MAX;
	if (e->n < RL_MAX)
		e->n++;
}

/* Takes back the attempt counted for key at time t (it succeeded, or its password was never checked). */
static void rl_refund(const char *key, uint64_t t)
{
	struct rl_entry *e = rl_find(key, false);
	uint64_t keep[RL_MAX];
	unsigned n = 0;
	bool found = false;

	if (!e)
		return;
	for (unsigned i = 0; i < e->n; i++) {
		uint64_t v = e->fail[(e->next + RL_MAX - e->n + i) % RL_MAX];

		if (!found && v == t)
			found = true;
		else
			keep[n++] = v;
	}
	if (!found)
		return;
	memcpy(e->fail, keep, n * sizeof keep[0]);
	e->n = n;
	e->next = n % RL_MAX;
}

static void rl_clear(const char *key)
{
	struct rl_entry *e = rl_find(key, false);

	if (e)
		memset(e, 0, sizeof *e);
}

static void rl_keys(const struct req *r, const char *user, char akey[], char ukey[], size_t len)
{
	snprintf(akey, len, "a:%s", r->remote);
	snprintf(ukey, len, "u:%.*s", DB_NAME_LEN - 1, user);
}

/* ---- login ---- */

static void set_session_cookie(struct req *r, const char *sid, int max_age)
{
	char cookie[256];

	snprintf(cookie, sizeof cookie, "%s=%s; HttpOnly;%s SameSite=Strict; Path=/; Max-Age=%d", AUTH_COOKIE, sid,
	         r->d->opt.plain_http ? "" : " Secure;", max_age);
	reply_header(r, "Set-Cookie", cookie);
	OPENSSL_cleanse(cookie, sizeof cookie);
}

static int session_ttl(const struct req *r)
{
	return r->d->opt.session_ttl > 0 ? r->d->opt.session_ttl : 3600;
}

/* Counted by the rate limit when it started. */
static void login_refused(struct req *r, const char *name, uint64_t start)
{
	audit(r, "login.failed", "login", json_pack("{s:s%}", "user", name, strnlen(name, DB_NAME_LEN - 1)));
	mlog(1, "failed login for \"%.*s\" from %s", DB_NAME_LEN - 1, name, r->remote);
	reply_problem(r, 401, "UNAUTHORIZED", NULL, "wrong user name or password");
	r->reply_at_ms = start + LOGIN_FAIL_FLOOR_MS;   /* http.c parks the connection; others are served */
}

static void login_limited(struct req *r, uint64_t wait_ms)
{
	char secs[24];

	snprintf(secs, sizeof secs, "%llu", (unsigned long long)((wait_ms + 999) / 1000));
	reply_header(r, "Retry-After", secs);
	reply_problem(r, 429, "RATE_LIMITED", NULL, "too many failed logins; try again in %s s", secs);
}

static void login_accepted(struct req *r, const struct db_user *u, const char *akey, const char *ukey, uint64_t start)
{
	char sid[DB_SESSION_LEN], csrf[AUTH_CSRF_LEN];
	int ttl = session_ttl(r), rc;

	rl_refund(akey, start);
	rl_clear(ukey);
	db_session_purge(r->d->db);
	if ((rc = db_session_create(r->d->db, u->id, ttl, sid))) {
		reply_db_error(r, rc);
		return;
	}
	if (auth_csrf_token(sid, csrf) != 0) {
		OPENSSL_cleanse(sid, sizeof sid);
		reply_problem(r, 500, "INTERNAL", NULL, "cannot derive the CSRF token");
		return;
	}
	r->user = *u;
	r->role = auth_role_of(u->role);
	r->via_session = true;
	char object[32];
	snprintf(object, sizeof object, "user/%lld", (long long)u->id);
	audit(r, "login", object, NULL);
	set_session_cookie(r, sid, ttl);
	OPENSSL_cleanse(sid, sizeof sid);
	reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:s}", "user", u->name, "role", u->role,
	                             "expires", (json_int_t)(time(NULL) + ttl), "csrf", csrf));
}

/* A password check in flight: scrypt is slow on purpose, so it runs on the worker thread, not the reactor. */
struct login_job {
	struct db_user u;
	char hash[DB_PWHASH_LEN];
	const char *password;   /* in the request body, which outlives the job */
	uint64_t start;
	int rc;
};

static void login_job_free(struct login_job *j)
{
	OPENSSL_cleanse(j, sizeof *j);
	free(j);
}

static void login_verify(void *arg)
{
	struct login_job *j = arg;

	j->rc = db_password_verify(j->password, j->hash);
}

static void login_verified(struct req *r, void *arg, bool ran)
{
	struct login_job *j = arg;
	const char *name = json_string_value(json_object_get(r->body, "user"));
	char akey[DB_NAME_LEN + 8], ukey[DB_NAME_LEN + 8];

	rl_keys(r, name, akey, ukey, sizeof akey);
	if (!ran) {
		rl_refund(akey, j->start);
		rl_refund(ukey, j->start);
		reply_problem(r, 503, "INTERNAL", NULL, "bitwd is stopping");
	} else if (j->rc == 0 && j->u.id && !j->u.disabled) {
		login_accepted(r, &j->u, akey, ukey, j->start);
	} else {
		login_refused(r, name, j->start);
	}
	login_job_free(j);
}

/* 0 when the check is under way; -1 after replying without checking the password. */
static int login_check(struct req *r, const char *name, const char *password, uint64_t start)
{
	struct login_job *j = calloc(1, sizeof *j);
	int rc;

	if (!j) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return -1;
	}
	j->password = password;
	j->start = start;
	if ((rc = db_user_login_hash(r->d->db, name, &j->u, j->hash)) < 0) {
		reply_db_error(r, rc);
		login_job_free(j);
		return -1;
	}
	if (req_offload(r, JOB_LOGIN, login_verify, login_verified, j) < 0) {
		reply_header(r, "Retry-After", "1");
		reply_problem(r, 503, "BUSY", NULL, "too many logins at once; try again");
		login_job_free(j);
		return -1;
	}
	return 0;
}

void auth_login(struct req *r)
{
	static const char *const fields[] = { "user", "password", NULL };
	uint64_t start = bitwd_now_ms(), wait;
	char akey[DB_NAME_LEN + 8], ukey[DB_NAME_LEN + 8];
	const char *name, *password;

	if (req_body_object(r, fields) != 0)
		return;
	name = json_string_value(json_object_get(r->body, "user"));
	password = json_string_value(json_object_get(r->body, "password"));
	if (!name || !*name) {
		reply_problem(r, 422, name ? "BAD_FIELD" : "MISSING_FIELD", "user", "a user name is required");
		return;
	}
	if (!password) {
		reply_problem(r, 422, "MISSING_FIELD", "password", "required");
		return;
	}
	rl_keys(r, name, akey, ukey, sizeof akey);
	wait = rl_wait(akey, start);
	if (rl_wait(ukey, start) > wait)
		wait = rl_wait(ukey, start);
	if (wait) {
		login_limited(r, wait);
		return;
	}
	rl_fail(akey, start);
	rl_fail(ukey, start);
	if (login_check(r, name, password, start) < 0) {
		rl_refund(akey, start);
		rl_refund(ukey, start);
	}
}

/* ---- logout, whoami ---- */

void auth_logout(struct req *r)
{
	const char *sid = auth_session_id(r);
	char object[32];

	if (r->via_session && sid) {
		db_session_delete(r->d->db, sid);
		set_session_cookie(r, "", 0);
	}
	snprintf(object, sizeof object, "user/%lld", (long long)r->user.id);
	audit(r, "logout", object, json_pack("{s:s}", "via", r->via_token ? "token" : "session"));
	reply_no_content(r);
}

void auth_whoami(struct req *r)
{
	json_t *me = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)r->user.id, "user", r->user.name, "role",
	                       r->user.role, "via", r->via_token ? "token" : "session");
	char csrf[AUTH_CSRF_LEN];

	if (r->via_session && auth_csrf_token(auth_session_id(r), csrf) == 0)
		json_object_set_new(me, "csrf", json_string(csrf));
	reply_json(r, 200, me);
}
