/* bitwd.h: the management daemon's shared state and the interfaces between its parts (private to mgmt/). */
#ifndef BITW_BITWD_H
#define BITW_BITWD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "db/db.h"
#include "wire/wire.h"

struct MHD_Daemon;
struct MHD_Connection;

/* ---- options (flags; see bitwd --help) ---- */
struct bitwd_opts {
	const char *db_path;          /* --db (default /var/lib/bitw/bitw.db) */
	const char *wire_socket;      /* --wire-socket (default CTL_DEFAULT_PATH) */
	const char *listen_addr;      /* --listen (default 127.0.0.1) */
	uint16_t port;                /* --port (default 8443; 8080 with --http) */
	bool plain_http;              /* --http: no TLS, allowed only on a loopback address */
	const char *tls_cert, *tls_key;  /* --tls-cert/--tls-key; default: generated on first start into the db dir */
	const char *admin_password_file; /* --admin-password-file: first start creates "admin" with it */
	const char *web_root;         /* --web-root: static files for the UI (issue 5), may be NULL */
	int session_ttl;              /* seconds (default 3600) */
	int sse_heartbeat_ms;         /* --sse-heartbeat: idle event streams get a comment this often (15 s) */
	int log_level;
	const char *user;             /* --user: started as root, run as this user after start-up */
	bool ike_keylog;              /* --ike-keylog: IKE/ESP keys in Wireshark's formats to ike-keys.log (0600) */
};

struct wirelink;
struct events;
struct ike_driver;
struct ctl_ike_dgram;

/* The daemon: one reactor thread owns all of this; nothing here is locked. */
struct bitwd {
	struct bitwd_opts opt;
	struct db *db;
	struct wirelink *wl;
	struct events *ev;
	struct ike_driver *ike;
	struct MHD_Daemon *mhd;
	bool dirty;                   /* the wire has not acknowledged the stored configuration yet */
	int admin_state;              /* as last acknowledged by the wire: a change is logged loudly */
	uint64_t requests;            /* requests answered (http.c counts, /stats and /metrics show) */
	uint64_t started_ms;
	volatile int stop;
};

uint64_t bitwd_now_ms(void);
void mlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  /* levels as wire/log.h */

/* ---- HTTP: requests, routes, replies (http.c) ---- */

enum role { ROLE_NONE = 0, ROLE_READONLY = 1, ROLE_ADMIN = 2 };

#define REQ_MAX_PARAMS 4
#define BODY_MAX (1u << 20)     /* larger bodies get 413 */

struct req {
	struct bitwd *d;
	struct MHD_Connection *conn;
	const char *method;           /* "GET", "POST", ... */
	const char *path;
	char params[REQ_MAX_PARAMS][128];  /* captures of {x} in the route pattern, in order */
	int nparams;
	json_t *body;                 /* parsed JSON body (object or array), NULL if none */
	const char *raw_body;         /* the body as received (for routes with ROUTE_RAW) */
	size_t raw_len;
	/* who is asking (filled by auth before the handler runs) */
	struct db_user user;
	int role;                     /* enum role */
	bool via_token, via_session;
	char remote[64];              /* client address */
	/* the answer (set through the reply_* helpers) */
	int status;
	json_t *resp;
	char *resp_text;
	size_t resp_len;              /* resp_text's length when it may hold NULs (static files); 0 = strlen */
	const char *resp_ctype;
	char resp_headers[4][2][256];
	int nheaders;
	bool stream;                  /* SSE: see stream_* below */
	bool web;                     /* a web UI file: the UI's CSP and revalidated caching instead of the API's */
	uint64_t reply_at_ms;         /* 0, or hold the reply until then (bitwd_now_ms) without blocking others */
};

/*
 * Slow work (checking a password) off the reactor: work(arg) runs on bitwd's
 * worker thread while the request's connection is suspended, then
 * finish(r, arg, ran) replies from the reactor (ran is false when bitwd
 * stopped first: the work never ran). -1 when too much of that kind waits
 * already. Each kind has its own capacity; account changes run first.
 */
enum job_kind { JOB_LOGIN, JOB_ACCOUNT, JOB_KINDS };
typedef void (*req_work_fn)(void *arg);
typedef void (*req_finish_fn)(struct req *r, void *arg, bool ran);
int req_offload(struct req *r, enum job_kind kind, req_work_fn work, req_finish_fn finish, void *arg);

typedef void (*route_fn)(struct req *r);

enum {
	ROUTE_PUBLIC = 1u << 0,       /* no authentication (only /health and /login) */
	ROUTE_RAW = 1u << 1,          /* body is not JSON (config import accepts JSON too; metrics has none) */
	ROUTE_NO_CSRF = 1u << 2,      /* exempt from the cookie-session CSRF header check */
};

struct route {
	const char *method;
	const char *pattern;          /* "/api/v1/policies/{id}" */
	route_fn fn;
	int min_role;                 /* ROLE_READONLY or ROLE_ADMIN */
	unsigned flags;
};

/* Every route, in routes.c. */
extern const struct route api_routes[];
extern const size_t api_routes_count;

/* The handlers, one api_*.c per resource. */
void health_get(struct req *r);
void openapi_get(struct req *r);
void auth_login(struct req *r);
void auth_logout(struct req *r);
void auth_whoami(struct req *r);
void users_list(struct req *r);
void users_create(struct req *r);
void users_get(struct req *r);
void users_update(struct req *r);
void users_delete(struct req *r);
void tokens_list(struct req *r);
void tokens_create(struct req *r);
void tokens_delete(struct req *r);
void audit_list(struct req *r);
void ports_list(struct req *r);
void ports_get(struct req *r);
void ports_put(struct req *r);
void options_get(struct req *r);
void options_put(struct req *r);
void admin_state_get(struct req *r);
void admin_state_put(struct req *r);
void config_get(struct req *r);
void config_put(struct req *r);
void policies_list(struct req *r);
void policies_create(struct req *r);
void policies_get(struct req *r);
void policies_put(struct req *r);
void policies_delete(struct req *r);
void policies_reorder(struct req *r);
void sas_list(struct req *r);
void sas_create(struct req *r);
void sas_get(struct req *r);
void sas_delete(struct req *r);
void sas_flush(struct req *r);
void sad_list(struct req *r);
void stats_get(struct req *r);
void metrics_get(struct req *r);
void events_stream(struct req *r);
void events_backlog(struct req *r);

/* Replies. Each handler calls exactly one of these. body/text are stolen. */
void reply_json(struct req *r, int status, json_t *body);
void reply_text(struct req *r, int status, const char *ctype, char *text);
void reply_no_content(struct req *r);
/* application/problem+json: {type, title, status, detail, code, field}. */
void reply_problem(struct req *r, int status, const char *code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* 4xx/5xx from a db error code (-DB_E_*), naming db_errfield() */
void reply_db_error(struct req *r, int rc);
void reply_header(struct req *r, const char *name, const char *value);

/* Query string helpers: 0 on success, -1 after replying 400 naming the parameter. */
const char *req_query(struct req *r, const char *key);
int req_query_int(struct req *r, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out);
/* Path capture i as a positive integer id: -1 after replying 404/400. */
int64_t req_param_id(struct req *r, int i);
/* Body must be a JSON object with only the given fields (NULL-terminated); -1 after replying 400/415/422. */
int req_body_object(struct req *r, const char *const *allowed);

/* Record who changed what (in the same transaction as the change when one is open). */
void audit(struct req *r, const char *action, const char *object, json_t *detail /* stolen, may be NULL */);

/* Server-Sent Events: the handler turns the request into a stream; events.c feeds it. */
struct stream;
struct stream *reply_stream(struct req *r);                /* 200 text/event-stream, kept open */
int stream_send(struct stream *s, const char *event, const char *data, uint64_t id);  /* -1 when closed */

int http_start(struct bitwd *d, char *err, size_t errlen); /* MHD in external-poll mode (epoll fd) */
void http_stop(struct bitwd *d);
int http_fd(struct bitwd *d);                               /* to poll for POLLIN */
int64_t http_timeout_ms(struct bitwd *d);                   /* -1 = none */
void http_run(struct bitwd *d);                             /* serve whatever is ready */

/* The web UI's static files from --web-root (static.c). */
void static_init(struct bitwd *d);          /* resolve the root once; a missing one only disables the UI */
bool static_wants(const struct req *r);     /* a GET/HEAD outside /api/ and /metrics while a UI is served */
void static_serve(struct req *r);           /* 200 (304 on a matching ETag) or 404; never outside the root */

/* TLS material: load or create (self-signed, ECDSA P-256, SAN = listen address) PEM cert and key (tls.c). */
int tls_load_or_create(const struct bitwd_opts *o, char **cert_pem, char **key_pem, char *err, size_t errlen);

/* ---- authentication (auth.c) ---- */

/* Fills r->user/role from "Authorization: Bearer" or the session cookie; -1 after replying 401/403. */
int auth_request(struct req *r, int min_role, unsigned route_flags);
/* First start: create "admin" from --admin-password-file or an interactive prompt; never a default password. */
int auth_bootstrap(struct bitwd *d, char *err, size_t errlen);
/* Helpers shared by auth.c and api_auth.c/api_users.c. */
#define AUTH_COOKIE "bitw_session"
#define AUTH_CSRF_HEADER "X-Bitw-CSRF"
#define AUTH_CSRF_LEN 65          /* hex HMAC-SHA256 + NUL */
#define AUTH_PASSWORD_MIN 12
int auth_role_of(const char *role_name);                    /* "admin"/"readonly" -> enum role, else ROLE_NONE */
const char *auth_session_id(struct req *r);                 /* the session cookie's value, NULL if none */
int auth_csrf_token(const char *sid, char out[AUTH_CSRF_LEN]);  /* HMAC(server secret, sid) as hex; 0 or -1 */
void auth_wipe(void);                                       /* forget the server secret (at exit) */

/* ---- the link to bitw-wire (wirelink.c) ---- */

typedef void (*wire_event_fn)(struct bitwd *d, uint16_t type, json_t *payload /* borrowed */);

struct wirelink *wirelink_new(struct bitwd *d, const char *path, wire_event_fn on_event);
void wirelink_free(struct wirelink *wl);
int wirelink_fd(struct wirelink *wl);          /* -1 while disconnected */
void wirelink_handle(struct wirelink *wl);     /* the fd is readable: events, replies */
void wirelink_tick(struct wirelink *wl);       /* reconnects with back-off; pushes the whole state after (re)connecting */
bool wirelink_up(const struct wirelink *wl);
/*
 * Synchronous request (the wire answers in milliseconds): returns the reply
 * status (0 or -XE_*), -XE_IO when not connected or on timeout. *reply gets
 * the reply payload (caller decrefs) when reply is not NULL. Events arriving
 * meanwhile are queued and delivered after the reply.
 */
int wirelink_request(struct wirelink *wl, uint16_t type, json_t *payload, json_t **reply, int timeout_ms);
/*
 * Sends an SA_ADD without waiting: its reply comes to on_event as type
 * CTL_SA_ADD {"seq", "status", "error"}, and is never dropped (events are,
 * when too many wait); none within 10 s comes as status -XE_IO (the real one
 * is then ignored). At most WIRE_ASYNC_MAX are sent whose reply has not been
 * delivered yet; beyond that, and for other types, -XE_NOT_SUPPORTED (send
 * synchronously). 0 or -XE_*.
 */
#define WIRE_ASYNC_MAX 64
int wirelink_request_async(struct wirelink *wl, uint16_t type, json_t *payload, uint32_t *seq);
uint64_t wirelink_events_dropped(const struct wirelink *wl); /* events lost to a full queue since start */
/*
 * An inbound SPI the wire reserved (CTL_GET_SPI), from a pool reserved a few
 * at a time; a different wire process (a restart) gets a fresh pool. 0, -XE_IO
 * (no wire), -XE_BAD_MESSAGE (the wire gave none), or another -XE_*.
 */
int wirelink_spi_alloc(struct wirelink *wl, uint32_t *spi);
/* One IKE datagram out through the wire's black address (CTL_IKE_SEND): 0 or -XE_*. */
int wirelink_ike_send(struct wirelink *wl, const struct ctl_ike_dgram *dg, const uint8_t *data, size_t len);
/* The interface the running wire was started with for "red"/"black"; "" while disconnected. */
const char *wirelink_ifname(const struct wirelink *wl, const char *role);

/* ---- IKE: the engine (ike/) driven from the reactor (ike_driver.c) ---- */

int ike_driver_start(struct bitwd *d, char *err, size_t errlen);  /* engine + peers/policies from the db */
void ike_driver_stop(struct bitwd *d);        /* wipes; the wire keeps its SAs until their lifetime/next push */
int ike_driver_reload(struct bitwd *d);       /* peers and keyed policies from the db after a change */
void ike_driver_tick(struct bitwd *d);        /* the engine's timers */
int64_t ike_driver_timeout_ms(struct bitwd *d); /* until the next engine deadline; -1 = none */
void ike_driver_wire_event(struct bitwd *d, uint16_t type, json_t *payload);  /* ACQUIRE, SA expiry */
void ike_driver_recv(struct bitwd *d, const struct ctl_ike_dgram *dg, const uint8_t *data, size_t len);
void ike_driver_resync(struct bitwd *d);      /* the wire took the stored configuration: reinstall child SAs */
json_t *ike_driver_sa_list(struct bitwd *d);  /* for GET /ike-sas */
int ike_driver_initiate(struct bitwd *d, uint32_t peer_id);      /* 0 or -IKE_E_* */
int ike_driver_rekey(struct bitwd *d, uint64_t ike_sa_id, uint32_t spi_in);
int ike_driver_terminate(struct bitwd *d, uint64_t ike_sa_id);
const char *ike_driver_strerror(int rc);

void peers_list(struct req *r);
void peers_create(struct req *r);
void peers_get(struct req *r);
void peers_put(struct req *r);
void peers_delete(struct req *r);
void ike_sas_list(struct req *r);
void ike_sas_initiate(struct req *r);
void ike_sas_rekey(struct req *r);
void ike_sas_terminate(struct req *r);
void certs_list(struct req *r);
void certs_create(struct req *r);
void certs_get(struct req *r);
void certs_delete(struct req *r);
void certs_verify(struct req *r);
/* Every stored CA certificate's PEM, concatenated (malloc'd), or NULL when there is none. */
char *certs_ca_bundle(struct bitwd *d);
/* A peer from its name or id in a JSON value: 0, or -1 after replying 422 naming field. */
int peer_ref_resolve(struct req *r, json_t *v, const char *field, struct db_peer *out);

/* ---- configuration: database <-> the wire's JSON schema (confmap.c) ---- */

/*
 * The whole configuration from the database as the wire's schema:
 * with_keys for pushing to bitw-wire, without for export.
 */
json_t *conf_export(struct bitwd *d, bool with_keys);
/* Import a whole document: validated with the wire's parser first, then stored in one transaction. */
int conf_import(struct bitwd *d, json_t *doc, char *err, size_t errlen, char *field, size_t fieldlen);
/* Push the stored configuration to bitw-wire (CONFIG_SET); sets/clears d->dirty. 0, or -XE_* */
int conf_push(struct bitwd *d);
/*
 * A REST change: begin a transaction, let the handler write rows, then
 * change_finish validates the whole resulting configuration with the wire's
 * parser (422 naming the field and rollback if it fails), records the audit
 * entry, commits, pushes to bitw-wire and replies: `status` with `body` when
 * the wire acknowledged, 503 NOT_APPLIED ("stored; applied when bitw-wire is
 * back") when it is not connected (d->dirty stays set and the push is retried).
 */
int change_begin(struct req *r);   /* -1 after replying 503 */
void change_finish(struct req *r, int status, json_t *body, const char *action, const char *object,
                   json_t *detail);
void change_abort(struct req *r);  /* roll back; the handler has replied */
/* A whole document checked by the wire's parser: 0 with *cfg filled (config_free it), or -XE_BAD_PARAM naming field. */
int conf_check(json_t *doc, struct wire_config *cfg, char *err, size_t errlen, char *field, size_t fieldlen);
/*
 * Before conf_check: SAs given without keys (as exports write them) get the
 * stored keys of the SA with the same SPI and direction and the same
 * algorithms; any other SA without keys is refused naming sas[i].enc_key.
 * The copied keys are in doc: wipe them with json_wipe_sa_keys.
 */
int conf_keep_keys(struct bitwd *d, json_t *doc, char *err, size_t errlen, char *field, size_t fieldlen);
/* Inside an open transaction: replace everything stored by a document conf_check accepted (ids/order from cfg). */
int conf_import_rows(struct bitwd *d, json_t *doc, const struct wire_config *cfg, char *err, size_t errlen,
                     char *field, size_t fieldlen);
/* A port between the schema's object and its row (shapes only: the wire's parser checks values). */
json_t *port_row_to_json(const struct db_port *p);
int port_json_to_row(json_t *j, const char *role, struct db_port *out, char *err, size_t errlen);
/* Store the options object (settings key "options", compact JSON); NULL removes it (all defaults). -DB_E_* */
int conf_options_store(struct bitwd *d, json_t *options);
/* The stored options object as the client gave it (a new empty object if none): the caller owns it. */
json_t *conf_options_raw(struct bitwd *d);
/* options.legacy_algorithms is on (3DES, HMAC-MD5-96 and the legacy MODP groups may be negotiated by IKE). */
bool conf_legacy_algorithms(struct bitwd *d);
/* The stored administrative state (enum admin_state of wire/config.h); secure when unset or unreadable. */
int conf_admin_state(struct bitwd *d);

/* One object between REST JSON and the database row (convert.c). */
json_t *policy_row_to_json(const struct db_policy *p);
int policy_json_to_row(json_t *j, struct db_policy *out, char *err, size_t errlen);
json_t *sa_row_to_json(struct bitwd *d, const struct db_sa *s);   /* no keys */
int sa_json_to_row(json_t *j, struct db_sa *out, struct db_sa_keys *keys, char *err, size_t errlen);
/*
 * The SA (its REST body) fits the policy it names: a protocol the policy's
 * sa_type uses, AH's limits, clone_host inside a clone policy's selector.
 * 0; -XE_BAD_PARAM when the SA does not fit, "field: problem" in err naming
 * the SA's field; any other -XE_* is the server's fault (out of memory, the
 * stored policy no longer parses; err says which): a 500, not a 422.
 */
int sa_fits_policy(json_t *sa, const struct db_policy *p, char *err, size_t errlen);
/* 422 from a parser message "field: problem": UNKNOWN_FIELD, MISSING_FIELD or BAD_FIELD, naming the field. */
void reply_parse_error(struct req *r, const char *err);
/* The same with the field already apart: the detail is the message alone. */
void reply_field_problem(struct req *r, const char *field, const char *msg);
/* Overwrite enc_key/integ_key strings of an SA object (request bodies) before they are freed. */
void json_wipe_sa_keys(json_t *sa);

/* ---- events: the SSE fan-out with a backlog (events.c) ---- */

struct events *events_new(size_t backlog);
void events_free(struct events *ev);
/* Publish an event to every stream and the backlog ("policy.changed", {...}); payload stolen. */
void events_publish(struct bitwd *d, const char *type, json_t *payload);
/* From bitw-wire: ACQUIRE, SA expiry, IF_STATE become events. */
void events_from_wire(struct bitwd *d, uint16_t type, json_t *payload);

#endif
