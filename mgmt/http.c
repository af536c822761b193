/* http.c: bitwd's HTTP side: libmicrohttpd in external-poll mode, routing, request bodies, replies, SSE streams. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>
#include <stdatomic.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "bitwd.h"
#include "events.h"

#define STREAM_BUF_MAX (1u << 20)   /* a client this far behind is dropped rather than buffered without end */
#define CONN_TIMEOUT_S 60           /* above the heartbeat, so idle event streams stay open */
/*
 * Offloaded requests waiting or running, per kind; more get 503. Logins
 * (anyone may send them) cannot take the capacity of account changes, and
 * those run first: a login flood delays an admin's password change, never
 * refuses it.
 */
#define JOBS_LOGIN_MAX 16
#define JOBS_ACCOUNT_MAX 8
#define JOBS_MAX (JOBS_LOGIN_MAX > JOBS_ACCOUNT_MAX ? JOBS_LOGIN_MAX : JOBS_ACCOUNT_MAX)
#define JOB_POLL_MS 5               /* how often the reactor looks for finished work while some runs */

/* One SSE stream. Freed when both MHD (response done) and the owner (stream_send said -1) let go. */
struct stream {
	struct MHD_Connection *conn;
	char *buf;
	size_t len, cap;
	uint64_t last_ms;       /* last time anything was queued, for heartbeats */
	bool suspended;
	bool mhd_done;          /* MHD freed the response: the client is gone */
	bool owner_done;        /* stream_send returned -1 to its owner */
	bool overflow;          /* the client did not keep up */
	const struct req *pending;   /* the request it answers, until handed to MHD */
	struct stream *next;
};

/* A request while MHD delivers it: the handler's view (r) and how far the body has come. */
struct conn_req {
	struct req r;
	const struct route *rt;
	char *body;
	size_t len, cap;
	bool has_body;
	bool too_large;         /* the body passed BODY_MAX: the rest is read and dropped, then 413 */
	bool done;              /* a response was queued */
	bool held;              /* suspended until its work is done and r.reply_at_ms has come (hold_reply) */
	struct conn_req *next_held;
	req_work_fn work;       /* set while offloaded work is queued, runs or waits for its finish */
	req_finish_fn finish;
	void *arg;
	enum job_kind kind;
	atomic_bool work_done;  /* set by the worker thread */
};

/* The one worker thread and its queues (one per enum job_kind); the reactor collects results by polling work_done. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started, stop;
	struct job_queue {
		struct conn_req *q[JOBS_MAX];
		size_t head, n;
		size_t active;  /* offloaded and not finished, queued or not */
	} k[JOB_KINDS];
} W = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* There is one daemon per process; its private state lives here. */
static struct {
	struct bitwd *d;
	char *cert_pem, *key_pem;
	struct stream *streams;
	struct conn_req *held;   /* replies waiting for their time, connections suspended */
	bool tls;
	bool stopping;
} H;

/* ---- replies ---- */

static void stream_mhd_done(void *cls);

static struct stream *stream_pending(const struct req *r)
{
	for (struct stream *s = H.streams; s; s = s->next)
		if (s->pending == r)
			return s;
	return NULL;
}

/* A reply replaces any earlier one, an event stream included. */
static void reply_reset(struct req *r)
{
	if (r->stream) {
		struct stream *s = stream_pending(r);
		r->stream = false;
		if (s) {
			s->pending = NULL;
			stream_mhd_done(s);   /* never handed to MHD: as good as closed */
		}
	}
	json_decref(r->resp);
	r->resp = NULL;
	free(r->resp_text);
	r->resp_text = NULL;
	r->resp_len = 0;
	r->web = false;
}

void reply_json(struct req *r, int status, json_t *body)
{
	reply_reset(r);
	r->status = status;
	r->resp = body;
	r->resp_ctype = "application/json";
}

void reply_text(struct req *r, int status, const char *ctype, char *text)
{
	reply_reset(r);
	r->status = status;
	r->resp_text = text;
	r->resp_ctype = ctype;
}

void reply_no_content(struct req *r)
{
	reply_reset(r);
	r->status = MHD_HTTP_NO_CONTENT;
	r->resp_ctype = NULL;
}

void reply_problem(struct req *r, int status, const char *code, const char *field, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);

	const char *title = MHD_get_reason_phrase_for((unsigned)status);
	char type[96];
	snprintf(type, sizeof type, "urn:bitw:problem:%s", code);
	json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", title && *title ? title : code,
	                      "status", status, "detail", detail, "code", code);
	if (p && field && *field)
		json_object_set_new(p, "field", json_string(field));
	reply_json(r, status, p);
	r->resp_ctype = "application/problem+json";
}

void reply_db_error(struct req *r, int rc)
{
	struct db *db = r->d->db;
	const char *field = db_errfield(db);
	const char *msg = *db_errmsg(db) ? db_errmsg(db) : db_strerror(rc);
	size_t flen = field ? strlen(field) : 0;

	/* db's messages read "field: why"; the problem names the field in its own member, not again in detail */
	if (flen && !strncmp(msg, field, flen) && !strncmp(msg + flen, ": ", 2))
		msg += flen + 2;
	switch (rc < 0 ? -rc : rc) {
	case DB_E_INVALID:
		reply_problem(r, 422, "BAD_FIELD", field, "%s", msg);
		break;
	case DB_E_REFERENCE:
		reply_problem(r, 422, "BAD_FIELD", field, "%s", msg);
		break;
	case DB_E_CONFLICT:
		reply_problem(r, 409, "CONFLICT", field, "%s", msg);
		break;
	case DB_E_NOT_FOUND:
		reply_problem(r, 404, "NOT_FOUND", NULL, "%s", msg);
		break;
	case DB_E_AUTH:
		reply_problem(r, 401, "UNAUTHORIZED", NULL, "authentication failed");
		break;
	case DB_E_BUSY:
		reply_problem(r, 503, "INTERNAL", NULL, "database busy, try again");
		break;
	default:
		mlog(0, "database error: %s", msg);
		reply_problem(r, 500, "INTERNAL", NULL, "internal error");
		break;
	}
}

void reply_header(struct req *r, const char *name, const char *value)
{
	if (r->nheaders >= (int)(sizeof r->resp_headers / sizeof r->resp_headers[0])) {
		mlog(0, "too many reply headers on %s %s; dropping %s", r->method, r->path, name);
		return;
	}
	snprintf(r->resp_headers[r->nheaders][0], sizeof r->resp_headers[0][0], "%s", name);
	snprintf(r->resp_headers[r->nheaders][1], sizeof r->resp_headers[0][1], "%s", value);
	r->nheaders++;
}

/* ---- query string, path captures, body ---- */

const char *req_query(struct req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static bool parse_i64(const char *s, int64_t *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	*out = v;
	return true;
}

int req_query_int(struct req *r, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	const char *s = req_query(r, key);
	if (!s) {
		*out = def;
		return 0;
	}
	int64_t v;
	if (!parse_i64(s, &v)) {
		reply_problem(r, 400, "BAD_FIELD", key, "query parameter %s must be an integer", key);
		return -1;
	}
	if (v < min || v > max) {
		reply_problem(r, 400, "BAD_FIELD", key, "query parameter %s must be in %" PRId64 "..%" PRId64, key,
		              min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int64_t req_param_id(struct req *r, int i)
{
	int64_t v;
	if (i < 0 || i >= r->nparams || !parse_i64(r->params[i], &v) || v <= 0) {
		reply_problem(r, 404, "NOT_FOUND", NULL, "no such object");
		return -1;
	}
	return v;
}

int req_body_object(struct req *r, const char *const *allowed)
{
	if (!r->body) {
		reply_problem(r, 400, "BAD_JSON", NULL, "a JSON object body is required");
		return -1;
	}
	if (!json_is_object(r->body)) {
		reply_problem(r, 400, "BAD_JSON", NULL, "the body must be a JSON object");
		return -1;
	}
	if (!allowed)
		return 0;
	const char *key;
	json_t *v;
	json_object_foreach(r->body, key, v) {
		const char *const *a = allowed;
		while (*a && strcmp(*a, key) != 0)
			a++;
		if (!*a) {
			reply_problem(r, 422, "UNKNOWN_FIELD", key, "unknown field \"%s\"", key);
			return -1;
		}
	}
	return 0;
}

/* ---- audit ---- */

void audit(struct req *r, const char *action, const char *object, json_t *detail)
{
	struct db_audit a = { 0 };
	snprintf(a.user, sizeof a.user, "%s", r->user.name);
	snprintf(a.action, sizeof a.action, "%s", action);
	snprintf(a.object, sizeof a.object, "%s", object ? object : "");
	snprintf(a.remote, sizeof a.remote, "%s", r->remote);
	a.detail = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	int rc = db_audit_add(r->d->db, &a);
	if (rc < 0)
		mlog(0, "audit %s %s: %s", action, a.object, db_errmsg(r->d->db));
	free(a.detail);
}

/* ---- Server-Sent Events ---- */

static int stream_append(struct stream *s, const char *text, size_t n)
{
	if (s->len + n > STREAM_BUF_MAX) {
		s->overflow = true;
		return -1;
	}
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		while (cap < s->len + n)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b) {
			s->overflow = true;
			return -1;
		}
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, text, n);
	s->len += n;
	s->last_ms = bitwd_now_ms();
	return 0;
}

static void stream_wake(struct stream *s)
{
	if (s->suspended && !s->mhd_done) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	(void)pos;
	if (s->overflow || H.d->stop)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (s->len == 0) {
		/* nothing to say: park the connection until stream_send or a heartbeat wakes it */
		s->suspended = true;
		MHD_suspend_connection(s->conn);
		return 0;
	}
	size_t n = s->len < max ? s->len : max;
	memcpy(buf, s->buf, n);
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
	return (ssize_t)n;
}

static void stream_unlink_free(struct stream *s)
{
	for (struct stream **pp = &H.streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	free(s->buf);
	free(s);
}

static void stream_mhd_done(void *cls)
{
	struct stream *s = cls;
	s->mhd_done = true;
	s->conn = NULL;
	/* the client is gone: its subscription ends now, not at the next event (events are freed before a stop) */
	if (!s->owner_done && !H.stopping) {
		events_unsubscribe(H.d->ev, s);
		s->owner_done = true;
	}
	if (s->owner_done)
		stream_unlink_free(s);
}

struct stream *reply_stream(struct req *r)
{
	struct stream *s = calloc(1, sizeof *s);
	if (!s) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return NULL;
	}
	s->conn = r->conn;
	/* a first line at once, so the client sees the headers before the first event */
	static const char hello[] = "retry: 3000\n\n";
	stream_append(s, hello, sizeof hello - 1);
	s->next = H.streams;
	H.streams = s;
	reply_reset(r);
	s->pending = r;
	r->status = MHD_HTTP_OK;
	r->resp_ctype = "text/event-stream";
	r->stream = true;
	return s;
}

/* Appends "id/event/data" lines; a payload with newlines becomes several data: lines. */
int stream_send(struct stream *s, const char *event, const char *data, uint64_t id)
{
	if (!s)
		return -1;
	if (s->mhd_done || s->overflow) {
		s->owner_done = true;
		if (s->mhd_done)
			stream_unlink_free(s);
		return -1;
	}
	char head[160];
	int n = 0;
	if (id)
		n += snprintf(head + n, sizeof head - (size_t)n, "id: %" PRIu64 "\n", id);
	if (event && *event)
		n += snprintf(head + n, sizeof head - (size_t)n, "event: %.100s\n", event);
	int rc = stream_append(s, head, (size_t)n);
	const char *p = data ? data : "";
	do {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		rc |= stream_append(s, "data: ", 6);
		rc |= stream_append(s, p, len);
		rc |= stream_append(s, "\n", 1);
		p = nl ? nl + 1 : NULL;
	} while (p);
	rc |= stream_append(s, "\n", 1);
	stream_wake(s);  /* also when overflowing: the reader then ends the response */
	if (rc < 0) {
		mlog(1, "event stream dropped: the client does not keep up");
		s->owner_done = true;
		return -1;
	}
	return 0;
}

static void streams_heartbeat(void)
{
	uint64_t now = bitwd_now_ms(), every = H.d->opt.sse_heartbeat_ms > 0 ? (uint64_t)H.d->opt.sse_heartbeat_ms : 15000;
	for (struct stream *s = H.streams; s; s = s->next) {
		if (s->mhd_done || now - s->last_ms < every)
			continue;
		/* also how a vanished client is noticed: suspended connections see no disconnects */
		static const char ping[] = ": ping\n\n";
		stream_append(s, ping, sizeof ping - 1);
		stream_wake(s);
	}
}

/* ---- routing ---- */

/* Matches "/a/{x}/b" against a path, filling captures. */
static bool route_match(const char *pattern, const char *path, struct req *r)
{
	int np = 0;
	const char *p = pattern, *u = path;
	while (*p && *u) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			const char *ue = strchrnul(u, '/');
			size_t n = (size_t)(ue - u);
			if (!pe || n == 0 || n >= sizeof r->params[0] || np >= REQ_MAX_PARAMS)
				return false;
			memcpy(r->params[np], u, n);
			r->params[np][n] = '\0';
			np++;
			p = pe + 1;
			u = ue;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	if (*p || *u)
		return false;
	r->nparams = np;
	return true;
}

/* The route for method+path; else 405 naming the allowed methods, or 404. */
static const struct route *route_find(struct req *r)
{
	char allow[128] = "";
	const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct route *rt = &api_routes[i];
		if (!route_match(rt->pattern, r->path, r))
			continue;
		if (strcmp(rt->method, method) == 0)
			return rt;
		if (!strstr(allow, rt->method) && strlen(allow) + strlen(rt->method) + 3 < sizeof allow) {
			if (*allow)
				strcat(allow, ", ");
			strcat(allow, rt->method);
		}
	}
	r->nparams = 0;
	if (*allow) {
		reply_problem(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed here", r->method);
		reply_header(r, "Allow", allow);
	} else {
		reply_problem(r, 404, "NOT_FOUND", NULL, "no such resource");
	}
	return NULL;
}

/* ---- request life cycle ---- */

static void remote_of(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, len, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)len);
}

static bool is_json_ctype(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	static const char json[] = "application/json";
	if (strncasecmp(ct, json, sizeof json - 1) != 0)
		return false;
	ct += sizeof json - 1;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Checks made from the headers alone, before any body is read: route, auth, size, content type. */
static void request_head(struct conn_req *c)
{
	struct req *r = &c->r;
	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	int64_t n = 0;
	bool bad_length = cl && (!parse_i64(cl, &n) || n < 0);
	c->has_body = bad_length || n > 0 || (te && !cl);
	if (static_wants(r)) {
		static_serve(r);
		return;
	}
	c->rt = route_find(r);
	if (!c->rt)
		return;
	if (!(c->rt->flags & ROUTE_PUBLIC) && auth_request(r, c->rt->min_role, c->rt->flags) < 0)
		return;
	if (bad_length) {
		reply_problem(r, 400, "BAD_REQUEST", NULL, "bad Content-Length");
		return;
	}
	if (n > (int64_t)BODY_MAX) {
		reply_problem(r, 413, "TOO_LARGE", NULL, "the body is larger than %u bytes", BODY_MAX);
		return;
	}
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (c->has_body && !(c->rt->flags & ROUTE_RAW) && !is_json_ctype(ct)) {
		reply_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE", NULL, "the body must be application/json");
		return;
	}
}

/* The body is complete: parse it and run the handler. */
static void request_body_done(struct conn_req *c)
{
	struct req *r = &c->r;
	r->raw_body = c->body ? c->body : "";
	r->raw_len = c->len;
	if (c->len && !(c->rt->flags & ROUTE_RAW)) {
		json_error_t e;
		r->body = json_loadb(c->body, c->len, JSON_REJECT_DUPLICATES, &e);
		if (!r->body) {
			reply_problem(r, 400, "BAD_JSON", NULL, "malformed JSON at line %d, column %d: %s", e.line,
			              e.column, e.text);
			return;
		}
	}
	r->status = 0;
	c->rt->fn(r);
	if (!r->status && !c->work) {
		mlog(0, "%s %s: the handler gave no reply", r->method, r->path);
		reply_problem(r, 500, "INTERNAL", NULL, "internal error");
	}
}

/* The UI loads only its own files and talks only to this origin; API answers may load nothing at all. */
#define WEB_CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static void add_common_headers(struct MHD_Response *resp, const struct req *r)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* UI files may be cached but are revalidated (ETag), so an upgrade shows at the next load */
	MHD_add_response_header(resp, "Cache-Control", r->web ? "no-cache" : "no-store");
	MHD_add_response_header(resp, "Content-Security-Policy", r->web ? WEB_CSP : "default-src 'none'");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (H.tls)
		MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	if (r->resp_ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->resp_ctype);
	for (int i = 0; i < r->nheaders; i++)
		MHD_add_response_header(resp, r->resp_headers[i][0], r->resp_headers[i][1]);
}

static struct MHD_Response *response_build(struct conn_req *c)
{
	struct req *r = &c->r;
	struct stream *s = r->stream ? stream_pending(r) : NULL;
	if (s) {
		s->pending = NULL;   /* MHD owns this reference now */
		return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_mhd_done);
	}
	char *text = NULL;
	size_t len = 0;
	if (r->resp) {
		text = json_dumps(r->resp, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text)
			return NULL;
		len = strlen(text);
		text[len++] = '\n';   /* json_dumps leaves room: the NUL becomes a newline */
	} else if (r->resp_text) {
		text = r->resp_text;
		r->resp_text = NULL;
		len = r->resp_len ? r->resp_len : strlen(text);
	}
	if (!text)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result request_reply(struct conn_req *c)
{
	struct req *r = &c->r;
	struct MHD_Response *resp = response_build(c);
	c->done = true;
	if (!resp) {
		mlog(0, "%s %s: cannot build the response", r->method, r->path);
		return MHD_NO;
	}
	add_common_headers(resp, r);
	r->d->requests++;
	enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	mlog(3, "%s %s %s -> %d", r->remote, r->method, r->path, r->status);
	return ok;
}

/*
 * A reply that must not come sooner (a failed login): the connection is
 * suspended and resumed by http_run when its time comes, so the reactor
 * serves everyone else meanwhile instead of sleeping.
 */
static enum MHD_Result hold_reply(struct conn_req *c)
{
	c->held = true;
	c->next_held = H.held;
	H.held = c;
	MHD_suspend_connection(c->r.conn);
	return MHD_YES;
}

static void held_unlink(struct conn_req *c)
{
	for (struct conn_req **pp = &H.held; *pp; pp = &(*pp)->next_held) {
		if (*pp == c) {
			*pp = c->next_held;
			break;
		}
	}
	c->next_held = NULL;
}

static void *worker_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&W.mu);
	for (;;) {
		while (!W.stop && !W.k[JOB_ACCOUNT].n && !W.k[JOB_LOGIN].n)
			pthread_cond_wait(&W.cv, &W.mu);
		if (W.stop)
			break;
		struct job_queue *jq = W.k[JOB_ACCOUNT].n ? &W.k[JOB_ACCOUNT] : &W.k[JOB_LOGIN];
		struct conn_req *c = jq->q[jq->head];
		jq->head = (jq->head + 1) % JOBS_MAX;
		jq->n--;
		pthread_mutex_unlock(&W.mu);
		c->work(c->arg);
		atomic_store(&c->work_done, true);
		pthread_mutex_lock(&W.mu);
	}
	pthread_mutex_unlock(&W.mu);
	return NULL;
}

static size_t jobs_max(enum job_kind kind)
{
	return kind == JOB_LOGIN ? JOBS_LOGIN_MAX : JOBS_ACCOUNT_MAX;
}

int req_offload(struct req *r, enum job_kind kind, req_work_fn work, req_finish_fn finish, void *arg)
{
	struct conn_req *c = (struct conn_req *)(void *)r;   /* r is its first member */
	struct job_queue *jq = &W.k[kind];
	int rc = 0;

	if (jq->active >= jobs_max(kind))
		return -1;
	pthread_mutex_lock(&W.mu);
	if (!W.started && pthread_create(&W.thread, NULL, worker_main, NULL) != 0) {
		rc = -1;
	} else {
		W.started = true;
		c->work = work;
		c->finish = finish;
		c->arg = arg;
		c->kind = kind;
		atomic_store(&c->work_done, false);
		jq->q[(jq->head + jq->n) % JOBS_MAX] = c;
		jq->n++;
		jq->active++;
		pthread_cond_signal(&W.cv);
	}
	pthread_mutex_unlock(&W.mu);
	if (rc < 0)
		mlog(0, "cannot start the worker thread");
	return rc;
}

/* The work is over (or will never run): its finish replies, in the reactor. */
static void work_finish(struct conn_req *c, bool ran)
{
	req_finish_fn finish = c->finish;

	c->work = NULL;
	c->finish = NULL;
	W.k[c->kind].active--;
	finish(&c->r, c->arg, ran);
	if (!c->r.status)
		reply_problem(&c->r, 500, "INTERNAL", NULL, "internal error");
}

/* At stop: the thread ends after its current job; what it did not run is finished as not run. */
static void worker_stop(void)
{
	if (W.started) {
		pthread_mutex_lock(&W.mu);
		W.stop = true;
		pthread_cond_broadcast(&W.cv);
		pthread_mutex_unlock(&W.mu);
		pthread_join(W.thread, NULL);
		W.started = false;
	}
	for (struct conn_req *c = H.held; c; c = c->next_held)
		if (c->work)
			work_finish(c, atomic_load(&c->work_done));
	for (int i = 0; i < JOB_KINDS; i++)
		W.k[i].n = W.k[i].head = 0;
	W.stop = false;
}

/* Resumes the held connections whose work is done and time has come (all when stopping); MHD calls on_request. */
static void held_release(bool all)
{
	uint64_t now = bitwd_now_ms();
	struct conn_req **pp = &H.held;

	while (*pp) {
		struct conn_req *c = *pp;

		if (c->work && atomic_load(&c->work_done))
			work_finish(c, true);
		if (!all && (c->work || c->r.reply_at_ms > now)) {
			pp = &c->next_held;
			continue;
		}
		*pp = c->next_held;
		c->next_held = NULL;
		c->r.reply_at_ms = 0;
		MHD_resume_connection(c->r.conn);
	}
}

static struct conn_req *request_new(struct MHD_Connection *conn, const char *url, const char *method)
{
	struct conn_req *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->r.d = H.d;
	c->r.conn = conn;
	c->r.method = method;
	c->r.path = url;
	remote_of(conn, c->r.remote, sizeof c->r.remote);
	return c;
}

static int body_append(struct conn_req *c, const char *data, size_t n)
{
	if (c->len + n > BODY_MAX)
		return -1;
	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->len + n + 1)
			cap *= 2;
		char *b = realloc(c->body, cap);
		if (!b)
			return -1;
		c->body = b;
		c->cap = cap;
	}
	memcpy(c->body + c->len, data, n);
	c->len += n;
	c->body[c->len] = '\0';
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	struct conn_req *c = *con_cls;
	if (!c) {
		c = request_new(conn, url, method);
		if (!c)
			return MHD_NO;
		*con_cls = c;
		request_head(c);
		/* refuse a body before it is sent; without one, answering on the next call keeps the connection */
		return c->r.status && c->has_body ? request_reply(c) : MHD_YES;
	}
	if (c->done) {
		*upload_data_size = 0;   /* answered already; what is left of the body is ignored */
		return MHD_YES;
	}
	if (c->held) {
		if (c->r.reply_at_ms || c->work)   /* not released yet (MHD may call again while suspended) */
			return MHD_YES;
		c->held = false;
		return request_reply(c);
	}
	if (*upload_data_size) {
		if (!c->too_large && body_append(c, upload_data, *upload_data_size) < 0)
			c->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (c->too_large)
		reply_problem(&c->r, 413, "TOO_LARGE", NULL, "the body is larger than %u bytes", BODY_MAX);
	else if (!c->r.status)   /* not refused on the headers alone */
		request_body_done(c);
	if (c->work || c->r.reply_at_ms > bitwd_now_ms())
		return hold_reply(c);
	return request_reply(c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct conn_req *c = *con_cls;
	if (!c)
		return;
	if (c->held)
		held_unlink(c);
	json_decref(c->r.body);
	reply_reset(&c->r);
	if (c->body) {
		OPENSSL_cleanse(c->body, c->len);   /* bodies carry passwords and keys */
		free(c->body);
	}
	OPENSSL_cleanse(&c->r.user, sizeof c->r.user);
	free(c);
	*con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	mlog(3, "http: %s", msg);
}

/* ---- the daemon ---- */

static int listen_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss, bool *v6)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*v6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*v6 = true;
		return 0;
	}
	return -1;
}

int http_start(struct bitwd *d, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	bool v6;
	memset(&H, 0, sizeof H);
	H.d = d;
	if (listen_sockaddr(d->opt.listen_addr, d->opt.port, &ss, &v6) < 0) {
		snprintf(err, errlen, "--listen %s: not a numeric IPv4 or IPv6 address", d->opt.listen_addr);
		return -1;
	}
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (v6)
		flags |= MHD_USE_IPv6;
	H.tls = !d->opt.plain_http;
	if (H.tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "this libmicrohttpd has no TLS support; use --http on loopback");
			return -1;
		}
		if (tls_load_or_create(&d->opt, &H.cert_pem, &H.key_pem, err, errlen) < 0)
			return -1;
		flags |= MHD_USE_TLS;
	}
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, H.cert_pem },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, H.key_pem },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" },
		{ MHD_OPTION_END, 0, NULL },
	};
	d->mhd = MHD_start_daemon(flags, d->opt.port, NULL, NULL, on_request, d,
	                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
	                          MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)64,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
	                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	                          MHD_OPTION_ARRAY, H.tls ? tls_opts : &tls_opts[3],
	                          MHD_OPTION_END);
	if (!d->mhd) {
		snprintf(err, errlen, "cannot listen on %s port %u: %s", d->opt.listen_addr, d->opt.port,
		         errno ? strerror(errno) : "libmicrohttpd refused to start");
		http_stop(d);
		return -1;
	}
	return 0;
}

void http_stop(struct bitwd *d)
{
	if (d->mhd) {
		H.stopping = true;
		/* MHD must not be stopped with suspended connections */
		for (struct stream *s = H.streams; s; s = s->next)
			stream_wake(s);
		worker_stop();
		held_release(true);
		MHD_stop_daemon(d->mhd);
		d->mhd = NULL;
	}
	while (H.streams) {
		struct stream *s = H.streams;
		H.streams = s->next;
		free(s->buf);
		free(s);
	}
	free(H.cert_pem);
	if (H.key_pem) {
		OPENSSL_cleanse(H.key_pem, strlen(H.key_pem));
		free(H.key_pem);
	}
	H.cert_pem = H.key_pem = NULL;
}

int http_fd(struct bitwd *d)
{
	const union MHD_DaemonInfo *di = d->mhd ? MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	return di ? di->epoll_fd : -1;
}

int64_t http_timeout_ms(struct bitwd *d)
{
	MHD_UNSIGNED_LONG_LONG t;
	int64_t held = -1;
	uint64_t now = bitwd_now_ms();

	for (struct conn_req *c = H.held; c; c = c->next_held) {
		int64_t left = c->work ? JOB_POLL_MS : c->r.reply_at_ms > now ? (int64_t)(c->r.reply_at_ms - now) : 0;
		if (held < 0 || left < held)
			held = left;
	}
	if (!d->mhd || MHD_get_timeout(d->mhd, &t) != MHD_YES)
		return held;
	if (held >= 0 && (uint64_t)held < t)
		return held;
	return t > INT64_MAX ? INT64_MAX : (int64_t)t;
}

void http_run(struct bitwd *d)
{
	if (!d->mhd)
		return;
	streams_heartbeat();
	held_release(false);
	MHD_run(d->mhd);
}
