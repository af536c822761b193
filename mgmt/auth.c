/* auth.c: who is asking (bearer token or session cookie with CSRF check) and the first admin at first start. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bitwd.h"

#define SECRET_SETTING "auth.server_secret"
#define SECRET_LEN 32
#define PASSWORD_MAX 1024

/* Loaded once at start (auth_bootstrap); the reactor thread is the only reader. */
static uint8_t server_secret[SECRET_LEN];
static bool have_secret;

int auth_role_of(const char *role_name)
{
	if (role_name && strcmp(role_name, "admin") == 0)
		return ROLE_ADMIN;
	if (role_name && strcmp(role_name, "readonly") == 0)
		return ROLE_READONLY;
	return ROLE_NONE;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int unhex(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

void auth_wipe(void)
{
	OPENSSL_cleanse(server_secret, sizeof server_secret);
	have_secret = false;
}

int auth_csrf_token(const char *sid, char out[AUTH_CSRF_LEN])
{
	uint8_t mac[32];
	size_t len = 0;

	out[0] = 0;
	if (!have_secret || !sid)
		return -1;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, server_secret, sizeof server_secret,
	               (const unsigned char *)sid, strlen(sid), mac, sizeof mac, &len) || len != sizeof mac)
		return -1;
	hex(mac, sizeof mac, out);
	return 0;
}

/* The server secret keys the CSRF tokens; it survives restarts so sessions keep working. */
static int load_or_create_secret(struct db *db, char *err, size_t errlen)
{
	char text[2 * SECRET_LEN + 1];
	int rc = db_setting_get(db, SECRET_SETTING, text, sizeof text);

	static bool wipe_registered;

	/* Whoever starts us, the secret does not outlive the process in its memory. */
	if (!wipe_registered && atexit(auth_wipe) == 0)
		wipe_registered = true;
	if (rc == 0 && unhex(text, server_secret, sizeof server_secret) == 0) {
		have_secret = true;
		OPENSSL_cleanse(text, sizeof text);
		return 0;
	}
	if (rc != 0 && rc != -DB_E_NOT_FOUND && rc != -DB_E_INVALID) {
		snprintf(err, errlen, "reading the server secret: %s", db_errmsg(db));
		return -1;
	}
	if (RAND_bytes(server_secret, sizeof server_secret) != 1) {
		snprintf(err, errlen, "no randomness for the server secret");
		return -1;
	}
	hex(server_secret, sizeof server_secret, text);
	rc = db_setting_set(db, SECRET_SETTING, text);
	OPENSSL_cleanse(text, sizeof text);
	if (rc) {
		snprintf(err, errlen, "storing the server secret: %s", db_errmsg(db));
		return -1;
	}
	have_secret = true;
	return 0;
}

/* ---- per request ---- */

const char *auth_session_id(struct req *r)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, AUTH_COOKIE);
}

static void unauthorized(struct req *r, const char *why)
{
	reply_header(r, "WWW-Authenticate", "Bearer");
	reply_problem(r, 401, "UNAUTHORIZED", NULL, "%s", why);
}

static bool state_changing(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "OPTIONS") != 0;
}

/* 0 when the session's request carries the CSRF token derived from its id. */
static int check_csrf(struct req *r, const char *sid)
{
	const char *sent = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, AUTH_CSRF_HEADER);
	char want[AUTH_CSRF_LEN];
	int ok;

	if (!sent || strlen(sent) != AUTH_CSRF_LEN - 1 || auth_csrf_token(sid, want) != 0)
		return -1;
	ok = CRYPTO_memcmp(sent, want, AUTH_CSRF_LEN - 1) == 0;
	OPENSSL_cleanse(want, sizeof want);
	return ok ? 0 : -1;
}

/* Fills r->user from the bearer token; 1 = no bearer header, 0 = ok, -1 = replied. */
static int auth_bearer(struct req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	struct db_token tok;
	int rc;

	if (!h)
		return 1;
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		unauthorized(r, "only Bearer authorization is accepted");
		return -1;
	}
	h += 7;
	while (*h == ' ')
		h++;
	rc = db_token_verify(r->d->db, h, &tok, &r->user);
	if (rc == -DB_E_AUTH) {
		unauthorized(r, "invalid or expired token");
		return -1;
	}
	if (rc) {
		reply_db_error(r, rc);
		return -1;
	}
	r->via_token = true;
	return 0;
}

static int auth_cookie(struct req *r, unsigned route_flags)
{
	const char *sid = auth_session_id(r);
	int rc;

	if (!sid) {
		unauthorized(r, "authentication required");
		return -1;
	}
	rc = db_session_check(r->d->db, sid, &r->user);
	if (rc == -DB_E_AUTH) {
		unauthorized(r, "invalid or expired session");
		return -1;
	}
	if (rc) {
		reply_db_error(r, rc);
		return -1;
	}
	r->via_session = true;
	if (state_changing(r->method) && !(route_flags & ROUTE_NO_CSRF) && check_csrf(r, sid) != 0) {
		reply_problem(r, 403, "FORBIDDEN", AUTH_CSRF_HEADER, "missing or wrong %s header", AUTH_CSRF_HEADER);
		return -1;
	}
	return 0;
}

int auth_request(struct req *r, int min_role, unsigned route_flags)
{
	int rc = auth_bearer(r);

	if (rc == 1)
		rc = auth_cookie(r, route_flags);
	if (rc)
		goto refused;
	r->role = auth_role_of(r->user.role);
	if (r->user.disabled || r->role == ROLE_NONE) {
		unauthorized(r, "user disabled");
		goto refused;
	}
	if (r->role < min_role) {
		reply_problem(r, 403, "FORBIDDEN", NULL, "this needs the admin role");
		return -1;
	}
	return 0;
refused:
	/* Nothing of a refused caller may leak into the handler or the audit log. */
	memset(&r->user, 0, sizeof r->user);
	r->role = ROLE_NONE;
	r->via_token = r->via_session = false;
	return -1;
}

/* ---- first start ---- */

/* One line without its end; -1 when it does not fit. */
static int chomp(char *line, size_t len)
{
	size_t n = strlen(line);

	if (n == len - 1 && line[n - 1] != '\n')
		return -1;
	line[strcspn(line, "\r\n")] = 0;
	return 0;
}

static int password_from_file(const char *path, char *pw, size_t len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (!f) {
		snprintf(err, errlen, "--admin-password-file %s: %s", path, strerror(errno));
		return -1;
	}
	if (!fgets(pw, (int)len, f) || chomp(pw, len) != 0) {
		snprintf(err, errlen, "--admin-password-file %s: no password on its first line (at most %d characters)",
		         path, PASSWORD_MAX);
		rc = -1;
	}
	fclose(f);
	return rc;
}

static int prompt_line(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	int rc = 0;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
		return -1;
	if (!fgets(buf, (int)len, stdin) || chomp(buf, len) != 0)
		rc = -1;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return rc;
}

static int password_from_prompt(char *pw, size_t len, char *err, size_t errlen)
{
	char again[PASSWORD_MAX + 2];
	int rc = 0;

	fprintf(stderr, "bitwd: first start: choose the password of the user \"admin\" (at least %d characters).\n",
	        AUTH_PASSWORD_MIN);
	if (prompt_line("Password: ", pw, len) != 0 || prompt_line("Again: ", again, sizeof again) != 0) {
		snprintf(err, errlen, "no password read from the terminal");
		rc = -1;
	} else if (strcmp(pw, again) != 0) {
		snprintf(err, errlen, "the two passwords differ");
		rc = -1;
	}
	OPENSSL_cleanse(again, sizeof again);
	return rc;
}

static int create_admin(struct db *db, const char *pw, const char *source, char *err, size_t errlen)
{
	struct db_user u = { .role = "admin" };
	struct db_audit a = { .action = "user.bootstrap" };
	char detail[128];
	int rc;

	snprintf(u.name, sizeof u.name, "admin");
	if ((rc = db_begin(db)))
		goto fail;
	if ((rc = db_user_insert(db, &u, pw)))
		goto fail;
	snprintf(a.user, sizeof a.user, "bitwd");
	snprintf(a.object, sizeof a.object, "user/%lld", (long long)u.id);
	snprintf(detail, sizeof detail, "{\"name\":\"admin\",\"role\":\"admin\",\"source\":\"%s\"}", source);
	a.detail = detail;
	if ((rc = db_audit_add(db, &a)) || (rc = db_commit(db)))
		goto fail;
	mlog(2, "created the user \"admin\" (password from %s)", source);
	return 0;
fail:
	snprintf(err, errlen, "creating the user \"admin\": %s", db_errmsg(db));
	if (db_in_txn(db))
		db_rollback(db);
	return -1;
}

int auth_bootstrap(struct bitwd *d, char *err, size_t errlen)
{
	char pw[PASSWORD_MAX + 2];
	const char *source;
	int64_t users = 0;
	int rc;

	if (load_or_create_secret(d->db, err, errlen) != 0)
		return -1;
	if (db_user_count(d->db, &users) != 0) {
		snprintf(err, errlen, "counting users: %s", db_errmsg(d->db));
		return -1;
	}
	if (users > 0) {
		if (d->opt.admin_password_file)
			mlog(2, "users exist already: --admin-password-file is ignored");
		return 0;
	}
	if (d->opt.admin_password_file) {
		source = "file";
		rc = password_from_file(d->opt.admin_password_file, pw, sizeof pw, err, errlen);
	} else if (isatty(STDIN_FILENO)) {
		source = "prompt";
		rc = password_from_prompt(pw, sizeof pw, err, errlen);
	} else {
		snprintf(err, errlen, "no user exists yet: start bitwd once with --admin-password-file FILE "
		         "(its first line, at least %d characters, becomes the password of \"admin\"), "
		         "or on a terminal to be asked for it", AUTH_PASSWORD_MIN);
		return -1;
	}
	if (rc == 0 && strlen(pw) < AUTH_PASSWORD_MIN) {
		snprintf(err, errlen, "the admin password must have at least %d characters", AUTH_PASSWORD_MIN);
		rc = -1;
	}
	if (rc == 0)
		rc = create_admin(d->db, pw, source, err, errlen);
	OPENSSL_cleanse(pw, sizeof pw);
	return rc;
}
