/* db.h: the management database (SQLite): schema, migrations and the typed access layer; no SQL outside db/. */
#ifndef BITW_DB_H
#define BITW_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every function returns 0 (or a count) on success and a negative DB_E_* code
 * on failure. The handle keeps a message and, when SQLite names one, the
 * offending field (column or constraint name) for the last error: that is what
 * the REST layer reports as "field". Messages never contain values, so they
 * never contain secrets.
 */
#define DB_ERR_LIST(X) \
	X(DB_OK, "ok") \
	X(DB_E_IO, "database I/O error") \
	X(DB_E_NOMEM, "out of memory") \
	X(DB_E_INVALID, "invalid value") \
	X(DB_E_CONFLICT, "already exists") \
	X(DB_E_NOT_FOUND, "not found") \
	X(DB_E_REFERENCE, "refers to a missing object") \
	X(DB_E_TOO_NEW, "database schema newer than this program") \
	X(DB_E_BUSY, "database busy") \
	X(DB_E_AUTH, "authentication failed") \
	X(DB_E_TXN, "transaction misuse") \
	X(DB_E__COUNT, "")

#define DB_ENUM_(name, text) name,
enum db_err { DB_ERR_LIST(DB_ENUM_) };
#undef DB_ENUM_

struct db;

#define DB_SCHEMA_VERSION 6   /* the newest migration this code knows */

const char *db_strerror(int code);          /* text for DB_E_x or -DB_E_x */
const char *db_errmsg(const struct db *db);   /* last error, "" if none */
const char *db_errfield(const struct db *db); /* field of the last error, "" if unknown */

/*
 * Opens (creating with mode 0600) and migrates the database. A schema newer
 * than DB_SCHEMA_VERSION is refused with -DB_E_TOO_NEW. err gets a sentence.
 */
int db_open(const char *path, struct db **out, char *err, size_t errlen);
void db_close(struct db *db);
int db_schema_version(struct db *db);       /* PRAGMA user_version */
int db_integrity_check(struct db *db);      /* 0 when PRAGMA integrity_check says ok */

/*
 * Transactions. Every write below runs in its own transaction, or as a
 * savepoint inside the caller's db_begin ... db_commit, so a multi-step change
 * (config import, a change and its audit entry) is all or nothing. A failed
 * step inside db_begin undoes only that step; the caller then decides to
 * db_rollback the whole.
 */
int db_begin(struct db *db);
int db_commit(struct db *db);
int db_rollback(struct db *db);
bool db_in_txn(const struct db *db);

/* ---- settings: key/value text ---- */
#define DB_KEY_LEN 64
/* -DB_E_NOT_FOUND; -DB_E_INVALID when the value does not fit in len (values are at most 4096 bytes). */
int db_setting_get(struct db *db, const char *key, char *val, size_t len);
int db_setting_set(struct db *db, const char *key, const char *val);
int db_setting_delete(struct db *db, const char *key);
/* Calls fn for each setting in key order; stops early when fn returns non-zero. */
int db_setting_foreach(struct db *db, int (*fn)(void *ctx, const char *key, const char *val), void *ctx);

/* ---- ports: red and black, with their addresses and gateways ---- */
#define DB_PORT_ADDRS 8
#define DB_ADDR_LEN 64      /* an address or prefix as text */
struct db_port {
	char role[8];                            /* "red" | "black" */
	char interface[16];
	uint32_t mtu;                            /* 0 = the interface's */
	char router_mac[18];                     /* "" = learn */
	char addresses[DB_PORT_ADDRS][DB_ADDR_LEN]; /* "192.0.2.10/24" */
	unsigned naddr;
	char gateway4[DB_ADDR_LEN], gateway6[DB_ADDR_LEN];  /* "" = none */
};
int db_port_get(struct db *db, const char *role, struct db_port *out);
int db_port_set(struct db *db, const struct db_port *p);   /* replaces the port and its addresses */
int db_port_delete(struct db *db, const char *role);

/* ---- policies (SPD) ---- */
#define DB_NAME_LEN 64
#define DB_SEL_LEN 96
struct db_policy {
	int64_t id;             /* 0 on insert = assign */
	char name[DB_NAME_LEN];
	int priority;           /* 1 (highest) .. 7 */
	int64_t position;       /* "order": ties within a priority; -1 on insert = last */
	char action[8];         /* protect | bypass | discard */
	char direction[8];      /* out | in | both */
	char src[DB_SEL_LEN], dst[DB_SEL_LEN];   /* selector text as in the JSON schema */
	char src_port[16], dst_port[16];         /* any | n | a-b */
	char protocol[8];       /* any | tcp | udp | icmp | icmp6 | sctp | 0..255 */
	char mode[12];          /* tunnel | transport */
	char peer[DB_ADDR_LEN]; /* "" = none (required for protect) */
	bool mss_clamp;
	/* IKE keying: the peer that negotiates this policy's SAs (0 = manual keys) */
	int64_t ike_peer_id;
	char esp_proposals[256];   /* "" = the peer's */
	int64_t child_lifetime;    /* seconds; 0 = the peer's */
	/* options applied to the policy's SAs (protect only; docs/config.md) */
	bool ecn, pad_check, icv_96;
	char df[8];                /* clear | set | copy */
	int tfc_pad;               /* 0..1024 */
	int64_t dummy_interval_ms; /* 0 or 10..3600000 */
	char sa_type[8];           /* esp | ah | ahesp (an AH+ESP bundle): the protocols of its SAs */
	char ah_proposals[256];    /* IKE: "" = the default AH proposal */
	char clone[8];             /* none | src | dst: an SA pair per source/destination host (tunnel) */
	int64_t created, updated;  /* unix seconds, filled by the db */
};
/* A policy with the schema's defaults (priority 4, both, any, tunnel, mss_clamp, esp, clone none). */
void db_policy_init(struct db_policy *p);
int db_policy_insert(struct db *db, struct db_policy *p);          /* fills id, position */
int db_policy_update(struct db *db, const struct db_policy *p);    /* by id; all fields (position -1 = keep) */
int db_policy_delete(struct db *db, int64_t id);                   /* cascades to its SAs */
int db_policy_get(struct db *db, int64_t id, struct db_policy *out);
int db_policy_get_by_name(struct db *db, const char *name, struct db_policy *out);
/* In SPD order (priority, position, id). *out is malloc'd (free()); returns the count. */
int db_policy_list(struct db *db, int64_t offset, int64_t limit, struct db_policy **out);
/* ids: every policy exactly once, in the new order; positions become 0..n-1. */
int db_policy_reorder(struct db *db, const int64_t *ids, size_t n);
int db_policy_count(struct db *db, int64_t *count);

/*
 * ---- manual SAs; their keys live apart and are read only by db_sa_keys_get ----
 * Keys are bound without copies and wiped by db_sa_keys_wipe; deleted rows are
 * overwritten in the file (secure_delete). SQLite's own page cache is beyond
 * our reach: freed pages there may still hold key bytes until reused.
 */
struct db_lifetime {
	int64_t seconds, bytes, packets;   /* 0 = no limit */
};
struct db_sa {
	int64_t id;
	uint32_t spi;           /* 256 .. 0xffffffff */
	char direction[4];      /* in | out */
	int64_t policy_id;      /* on insert: used when policy is "" */
	char policy[DB_NAME_LEN];  /* the policy's name; on insert resolved to policy_id */
	char peer[DB_ADDR_LEN], local[DB_ADDR_LEN];  /* "" = default */
	char encap[8];          /* none | udp */
	uint16_t encap_sport, encap_dport;
	char enc[24], integ[24];
	char protocol[4];       /* esp | ah; fits the policy's sa_type */
	char clone_host[DB_ADDR_LEN];  /* clone policies: the host the SA serves; "" = none */
	int32_t replay_window;  /* -1 = the configured default; 0 = off; 64..4096 */
	bool esn;
	struct db_lifetime soft, hard;
	int64_t created;
};
struct db_sa_keys {
	uint8_t enc_key[36];    /* key then salt for AEAD */
	size_t enc_key_len;
	uint8_t integ_key[64];
	size_t integ_key_len;
};
struct db_sa_filter {
	int64_t policy_id;      /* 0 = any */
	const char *direction;  /* NULL = any */
	const char *peer;       /* NULL = any */
};
void db_sa_init(struct db_sa *sa);   /* defaults: esp, encap none/4500/4500, integ none, window -1 */
/* Checks key lengths against enc/integ (DB_E_INVALID, field enc_key/integ_key). */
int db_sa_insert(struct db *db, struct db_sa *sa, const struct db_sa_keys *keys);
/* By id; keys NULL keeps the stored ones (which must still fit the algorithms). */
int db_sa_update(struct db *db, const struct db_sa *sa, const struct db_sa_keys *keys);
int db_sa_delete(struct db *db, int64_t id);
/* SAs are keyed by (spi, direction, protocol); protocol NULL = esp. */
int db_sa_delete_spi(struct db *db, uint32_t spi, const char *direction, const char *protocol);
int db_sa_flush(struct db *db, int64_t policy_id);   /* 0 = all; returns how many */
int db_sa_get(struct db *db, int64_t id, struct db_sa *out);
int db_sa_get_spi(struct db *db, uint32_t spi, const char *direction, const char *protocol, struct db_sa *out);
int db_sa_list(struct db *db, const struct db_sa_filter *f, int64_t offset, int64_t limit, struct db_sa **out);
int db_sa_count(struct db *db, const struct db_sa_filter *f, int64_t *count);
int db_sa_keys_get(struct db *db, int64_t sa_id, struct db_sa_keys *out);
void db_sa_keys_wipe(struct db_sa_keys *k);   /* OPENSSL_cleanse */

/* ---- IKE peers; the PSK lives apart and is read only by db_peer_psk_get ---- */
struct db_peer {
	int64_t id;
	char name[DB_NAME_LEN];
	char address[256];      /* address or DNS name of the remote gateway */
	char local_id[256], remote_id[256];   /* "" = the address */
	char auth[8];           /* psk | pubkey */
	char ike_proposals[256], esp_proposals[256];   /* "default" or a proposal list */
	int64_t ike_lifetime, child_lifetime, rekey_margin;   /* seconds */
	int64_t dpd_interval;   /* seconds; 0 = off */
	char dpd_action[8];     /* clear | hold | restart */
	int64_t dpd_timeout;    /* seconds a liveness check may go unanswered before the peer counts as dead */
	bool nat_t;             /* allow NAT traversal */
	bool nat_force_encap;   /* always UDP-encapsulate */
	int64_t nat_keepalive;  /* seconds; 0 = off */
	char start_action[8];   /* start | trap | none (REST: always | traffic | never) */
	char local[DB_ADDR_LEN]; /* our black address toward it; "" = the first of the remote's family */
	bool fragmentation;     /* RFC 7383 */
	int64_t cert_id, ca_id; /* pubkey: our certificate (with key) and the CA that signs theirs; 0 = none */
	int64_t created;
};
void db_peer_init(struct db_peer *p);
int db_peer_insert(struct db *db, struct db_peer *p);
int db_peer_update(struct db *db, const struct db_peer *p);
int db_peer_delete(struct db *db, int64_t id);
int db_peer_get(struct db *db, int64_t id, struct db_peer *out);
int db_peer_get_by_name(struct db *db, const char *name, struct db_peer *out);
int db_peer_list(struct db *db, int64_t offset, int64_t limit, struct db_peer **out);
int db_peer_count(struct db *db, int64_t *count);
int db_peer_psk_set(struct db *db, int64_t peer_id, const uint8_t *psk, size_t len);
/* *out is malloc'd; free with db_secret_free (wipes). */
int db_peer_psk_get(struct db *db, int64_t peer_id, uint8_t **out, size_t *len);

/* ---- certificates; private keys live apart in cert_keys ---- */
struct db_cert {
	int64_t id;
	char name[DB_NAME_LEN];
	char *pem;              /* malloc'd by get/list; free with db_cert_free */
	bool is_ca;
	char subject[256];
	int64_t not_after;      /* unix seconds */
	int64_t created;
};
/* key_pem may be NULL (a CA or a peer's certificate). */
int db_cert_insert(struct db *db, struct db_cert *c, const char *key_pem);
int db_cert_delete(struct db *db, int64_t id);
int db_cert_get(struct db *db, int64_t id, struct db_cert *out);
int db_cert_get_by_name(struct db *db, const char *name, struct db_cert *out);
int db_cert_list(struct db *db, struct db_cert **out);  /* free each with db_cert_free, then the array */
void db_cert_free(struct db_cert *c);
int db_cert_key_get(struct db *db, int64_t cert_id, uint8_t **out, size_t *len);  /* db_secret_free */
void db_secret_free(uint8_t *p, size_t len);

/* ---- users, passwords, API tokens, sessions ---- */
struct db_user {
	int64_t id;
	char name[DB_NAME_LEN];
	char role[12];          /* admin | readonly */
	int64_t created;
	bool disabled;
};
#define DB_PWHASH_LEN 160
/* "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>"; salted, slow (OpenSSL EVP_KDF). */
int db_password_hash(const char *password, char out[DB_PWHASH_LEN]);
int db_password_verify(const char *password, const char *hash);   /* 0 or -DB_E_AUTH */

int db_user_insert(struct db *db, struct db_user *u, const char *password);
int db_user_update(struct db *db, const struct db_user *u);        /* role, disabled, name */
int db_user_set_password(struct db *db, int64_t id, const char *password);
/* The same with a hash db_password_hash made beforehand (on another thread: it is slow on purpose). */
int db_user_insert_hashed(struct db *db, struct db_user *u, const char *hash);
int db_user_set_password_hashed(struct db *db, int64_t id, const char *hash);
int db_user_delete(struct db *db, int64_t id);                     /* and its tokens and sessions */
int db_user_get(struct db *db, int64_t id, struct db_user *out);
int db_user_get_by_name(struct db *db, const char *name, struct db_user *out);
int db_user_list(struct db *db, struct db_user **out);
int db_user_count(struct db *db, int64_t *count);
/*
 * A password login in two halves, so the slow one can run on another thread:
 * the user (id 0 when unknown) and the hash to check against (a decoy for an
 * unknown user, so each costs the same); then db_password_verify, which needs
 * no db. The login succeeds when that says 0 and the user has an id and is enabled.
 */
int db_user_login_hash(struct db *db, const char *name, struct db_user *out, char hash[DB_PWHASH_LEN]);

#define DB_TOKEN_PREFIX "bitw_"
#define DB_TOKEN_LEN 49         /* prefix + base64url(32 bytes) + NUL */
struct db_token {
	int64_t id;
	int64_t user_id;
	char name[DB_NAME_LEN];
	int64_t created, expires, last_used;   /* expires 0 = never; last_used 0 = never */
};
/* The token text is returned once in token_out; only its SHA-256 is stored. */
int db_token_create(struct db *db, int64_t user_id, const char *name, int64_t expires,
                    char token_out[DB_TOKEN_LEN], struct db_token *out);
/* A valid, unexpired token of an enabled user: fills tok and user, updates last_used. */
int db_token_verify(struct db *db, const char *token, struct db_token *tok, struct db_user *user);
int db_token_delete(struct db *db, int64_t id);
int db_token_list(struct db *db, int64_t user_id, struct db_token **out);   /* user_id 0 = all */

#define DB_SESSION_LEN 49
int db_session_create(struct db *db, int64_t user_id, int64_t ttl_seconds, char sid_out[DB_SESSION_LEN]);
int db_session_check(struct db *db, const char *sid, struct db_user *user);  /* -DB_E_AUTH when unknown/expired */
int db_session_delete(struct db *db, const char *sid);
int db_session_purge(struct db *db);   /* removes expired sessions; returns how many */
/* Ends every session of a user but keep_sid (NULL = all), as after a password change; returns how many. */
int db_session_delete_user(struct db *db, int64_t user_id, const char *keep_sid);

/* ---- audit log ---- */
struct db_audit {
	int64_t id;
	int64_t time;           /* unix seconds; 0 on insert = now */
	char user[DB_NAME_LEN];
	char action[64];        /* "policy.create", "login.failed", ... */
	char object[128];       /* "policy/a-to-b" */
	char *detail;           /* JSON text (no secrets!); malloc'd by list, NULL on insert = {} */
	char remote[64];        /* client address */
};
struct db_audit_filter {
	const char *user;       /* NULL = any */
	const char *action;     /* NULL = any */
	int64_t since, until;   /* 0 = unbounded; since <= time < until */
};
/* Call inside the transaction of the change it records (db_begin ... db_commit). */
int db_audit_add(struct db *db, struct db_audit *a);
/* Newest first. Free with db_audit_free_list. */
int db_audit_list(struct db *db, const struct db_audit_filter *f, int64_t offset, int64_t limit,
                  struct db_audit **out);
int db_audit_count(struct db *db, const struct db_audit_filter *f, int64_t *count);
void db_audit_free_list(struct db_audit *a, size_t n);

#endif
