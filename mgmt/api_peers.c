/* api_peers.c: /api/v1/peers — IKE remotes over REST (the PSK is write-only), loaded into the IKE engine on change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bitwd.h"
#include "ike/ike.h"

static const char *const peer_fields[] = {
	"id", "name", "address", "local", "local_id", "remote_id", "auth", "psk", "has_psk", "certificate", "ca",
	"ike_proposals", "esp_proposals", "ike_lifetime", "child_lifetime", "rekey_margin", "dpd_interval",
	"dpd_action", "dpd_timeout", "nat_t", "force_encap", "nat_keepalive", "fragmentation", "start", "created", NULL
};

/* The database keeps strongSwan's start_action words; the API says what they do. */
static const char *const start_names[][2] = { { "start", "always" }, { "trap", "traffic" }, { "none", "never" } };

static const char *start_api(const char *db)
{
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(start_names[i][0], db))
			return start_names[i][1];
	return db;
}

static json_t *cert_ref(struct bitwd *d, int64_t id)
{
	struct db_cert c;
	json_t *v;

	if (id <= 0 || db_cert_get(d->db, id, &c) < 0)
		return json_null();
	v = json_string(c.name);
	db_cert_free(&c);
	return v;
}

static json_t *peer_json(struct bitwd *d, const struct db_peer *p)
{
	uint8_t *psk = NULL;
	size_t psk_len = 0;
	bool has_psk = db_peer_psk_get(d->db, p->id, &psk, &psk_len) == 0;
	json_t *o;

	if (psk)
		db_secret_free(psk, psk_len);
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:b, s:b,"
	              " s:I, s:b, s:s, s:I, s:I}",
	              "id", (json_int_t)p->id, "name", p->name, "address", p->address, "local", p->local, "local_id",
	              p->local_id, "remote_id", p->remote_id, "auth", p->auth, "has_psk", has_psk, "certificate",
	              cert_ref(d, p->cert_id), "ca", cert_ref(d, p->ca_id), "ike_proposals", p->ike_proposals,
	              "esp_proposals", p->esp_proposals, "ike_lifetime", (json_int_t)p->ike_lifetime, "child_lifetime",
	              (json_int_t)p->child_lifetime, "rekey_margin", (json_int_t)p->rekey_margin, "dpd_interval",
	              (json_int_t)p->dpd_interval, "dpd_action", p->dpd_action, "nat_t", p->nat_t, "force_encap",
	              p->nat_force_encap, "nat_keepalive", (json_int_t)p->nat_keepalive, "fragmentation",
	              p->fragmentation, "start", start_api(p->start_action), "created", (json_int_t)p->created,
	              "dpd_timeout", (json_int_t)p->dpd_timeout);
	return o;
}

/* ---- parsing a body; each helper replies 422 naming the field and returns -1 ---- */

static int get_text(struct req *r, const char *key, char *dst, size_t len, bool required)
{
	json_t *v = json_object_get(r->body, key);

	if (!v) {
		if (!required)
			return 0;
		reply_problem(r, 422, "MISSING_FIELD", key, "required");
		return -1;
	}
	if (!json_is_string(v) || json_string_length(v) >= len) {
		reply_problem(r, 422, "BAD_FIELD", key, "a string of at most %zu characters", len - 1);
		return -1;
	}
	snprintf(dst, len, "%s", json_string_value(v));
	return 0;
}

static int get_int(struct req *r, const char *key, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(r->body, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		reply_problem(r, 422, "BAD_FIELD", key, "an integer in %lld..%lld", (long long)min,
		              (long long)max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static int get_bool(struct req *r, const char *key, bool *out)
{
	json_t *v = json_object_get(r->body, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		reply_problem(r, 422, "BAD_FIELD", key, "true or false");
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static int get_enum(struct req *r, const char *key, const char *const *names, char *dst, size_t len)
{
	json_t *v = json_object_get(r->body, key);

	if (!v)
		return 0;
	for (size_t i = 0; json_is_string(v) && names[i]; i++) {
		if (!strcmp(names[i], json_string_value(v))) {
			snprintf(dst, len, "%s", names[i]);
			return 0;
		}
	}
	reply_problem(r, 422, "BAD_FIELD", key, "one of %s%s%s%s%s", names[0], names[1] ? ", " : "",
	              names[1] ? names[1] : "", names[2] ? ", " : "", names[2] ? names[2] : "");
	return -1;
}

static int check_addr(struct req *r, const char *key, const char *s, bool may_be_empty)
{
	struct bw_addr a;

	if ((may_be_empty && !*s) || bw_addr_parse(s, &a) == 0)
		return 0;
	reply_problem(r, 422, "BAD_FIELD", key, "an IPv4 or IPv6 address");
	return -1;
}

static int check_proposals(struct req *r, const char *key, const char *text, bool child, bool may_be_empty)
{
	struct ike_proposal_conf p[IKE_MAX_PROPOSAL_CONF];
	char err[160] = "";

	if (!strcmp(text, "default") || (may_be_empty && !*text))
		return 0;
	/* Child SAs may use what the wire allows: 3DES and HMAC-MD5-96 with options.legacy_algorithms. */
	if (ike_proposals_parse(text, child, child && conf_legacy_algorithms(r->d), p, IKE_MAX_PROPOSAL_CONF, err,
	                        sizeof err) > 0)
		return 0;
	reply_problem(r, 422, "BAD_FIELD", key, "%s", err[0] ? err : "no proposal");
	return -1;
}

/* A certificate by name or id; with_key: it must have a private key (ours). */
static int get_cert(struct req *r, const char *key, bool with_key, int64_t *out)
{
	json_t *v = json_object_get(r->body, key);
	struct db_cert c;
	int rc;

	if (!v)
		return 0;
	if (json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v))
		rc = db_cert_get(r->d->db, json_integer_value(v), &c);
	else if (json_is_string(v))
		rc = db_cert_get_by_name(r->d->db, json_string_value(v), &c);
	else
		rc = -DB_E_INVALID;
	if (rc < 0) {
		reply_problem(r, 422, "BAD_FIELD", key, "no such certificate (give its name or id)");
		return -1;
	}
	*out = c.id;
	db_cert_free(&c);
	if (with_key) {
		uint8_t *k = NULL;
		size_t len = 0;

		if (db_cert_key_get(r->d->db, *out, &k, &len) < 0) {
			reply_problem(r, 422, "BAD_FIELD", key, "that certificate has no private key");
			return -1;
		}
		db_secret_free(k, len);
	}
	return 0;
}

static int get_start(struct req *r, char *dst, size_t len)
{
	static const char *const names[] = { "always", "traffic", "never", NULL };
	char api[8] = "";

	if (get_enum(r, "start", names, api, sizeof api))
		return -1;
	for (size_t i = 0; api[0] && i < 3; i++)
		if (!strcmp(start_names[i][1], api))
			snprintf(dst, len, "%s", start_names[i][0]);
	return 0;
}

/* The fields of a body onto p (create: defaults first; PUT: the stored row first, so omitted fields stay). */
static int peer_from_body(struct req *r, struct db_peer *p, bool create)
{
	static const char *const auths[] = { "psk", "pubkey", "rsa", "ecdsa", NULL };
	static const char *const dpd[] = { "clear", "hold", "restart", NULL };
	const int64_t day = 86400 * 7;

	if (req_body_object(r, peer_fields))
		return -1;
	if (get_text(r, "name", p->name, sizeof p->name, create) || get_text(r, "address", p->address,
	                                                                   sizeof p->address, create) ||
	    get_text(r, "local", p->local, sizeof p->local, false) ||
	    get_text(r, "local_id", p->local_id, sizeof p->local_id, false) ||
	    get_text(r, "remote_id", p->remote_id, sizeof p->remote_id, false) ||
	    get_enum(r, "auth", auths, p->auth, sizeof p->auth) ||
	    get_text(r, "ike_proposals", p->ike_proposals, sizeof p->ike_proposals, false) ||
	    get_text(r, "esp_proposals", p->esp_proposals, sizeof p->esp_proposals, false) ||
	    get_int(r, "ike_lifetime", 60, day, &p->ike_lifetime) ||
	    get_int(r, "child_lifetime", 60, day, &p->child_lifetime) ||
	    get_int(r, "rekey_margin", 0, day, &p->rekey_margin) || get_int(r, "dpd_interval", 0, 3600, &p->dpd_interval) ||
	    get_enum(r, "dpd_action", dpd, p->dpd_action, sizeof p->dpd_action) ||
	    get_int(r, "dpd_timeout", 1, 3600, &p->dpd_timeout) || get_bool(r, "nat_t", &p->nat_t) ||
	    get_bool(r, "force_encap", &p->nat_force_encap) || get_int(r, "nat_keepalive", 0, 3600, &p->nat_keepalive) ||
	    get_bool(r, "fragmentation", &p->fragmentation) || get_start(r, p->start_action, sizeof p->start_action) ||
	    get_cert(r, "certificate", true, &p->cert_id) || get_cert(r, "ca", false, &p->ca_id))
		return -1;
	if (check_addr(r, "address", p->address, false) || check_addr(r, "local", p->local, true) ||
	    check_proposals(r, "ike_proposals", p->ike_proposals, false, false) ||
	    check_proposals(r, "esp_proposals", p->esp_proposals, true, false))
		return -1;
	if (p->rekey_margin >= p->child_lifetime || p->rekey_margin >= p->ike_lifetime) {
		reply_problem(r, 422, "BAD_FIELD", "rekey_margin", "must be below ike_lifetime and "
		              "child_lifetime");
		return -1;
	}
	/* swanctl's words for public-key authentication are taken too; the key's type decides anyway. */
	if (!strcmp(p->auth, "rsa") || !strcmp(p->auth, "ecdsa"))
		snprintf(p->auth, sizeof p->auth, "pubkey");
	if (!strcmp(p->auth, "pubkey") && p->cert_id <= 0) {
		reply_problem(r, 422, "MISSING_FIELD", "certificate", "required with auth pubkey (ours, "
		              "with its private key)");
		return -1;
	}
	return 0;
}

/* The PSK of a body (write-only): 0 none given, 1 given (psk/len set), -1 after replying. */
static int psk_from_body(struct req *r, const char **psk, size_t *len)
{
	json_t *v = json_object_get(r->body, "psk");

	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) < 8 || json_string_length(v) > 1024) {
		reply_problem(r, 422, "BAD_FIELD", "psk", "a string of 8 to 1024 characters");
		return -1;
	}
	*psk = json_string_value(v);
	*len = json_string_length(v);
	return 1;
}

static void psk_wipe(struct req *r)
{
	json_t *v = json_object_get(r->body, "psk");

	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

static void object_name(char *buf, size_t len, int64_t id)
{
	snprintf(buf, len, "peer/%lld", (long long)id);
}

/* Stores the row (and PSK), audits and commits, then the engine learns it. */
static void peer_store(struct req *r, struct db_peer *p, bool create)
{
	const char *psk = NULL;
	size_t psk_len = 0;
	int has = psk_from_body(r, &psk, &psk_len), rc;
	char obj[48], loc[64];

	if (has < 0)
		goto wipe;
	if (create && has == 0 && !strcmp(p->auth, "psk")) {
		reply_problem(r, 422, "MISSING_FIELD", "psk", "required with auth psk");
		goto wipe;
	}
	if ((rc = db_begin(r->d->db)) || (rc = create ? db_peer_insert(r->d->db, p) : db_peer_update(r->d->db, p)) ||
	    (has && (rc = db_peer_psk_set(r->d->db, p->id, (const uint8_t *)psk, psk_len)))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		goto wipe;
	}
	object_name(obj, sizeof obj, p->id);
	audit(r, create ? "peer.create" : "peer.update", obj,
	      json_pack("{s:s, s:s, s:s, s:b}", "name", p->name, "address", p->address, "auth", p->auth, "psk_changed",
	                has == 1));
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		goto wipe;
	}
	psk_wipe(r);
	ike_driver_reload(r->d);
	events_publish(r->d, "peer.changed", json_pack("{s:s, s:I}", "action", create ? "create" : "update", "id",
	                                               (json_int_t)p->id));
	if (create) {
		snprintf(loc, sizeof loc, "/api/v1/peers/%lld", (long long)p->id);
		reply_header(r, "Location", loc);
	}
	reply_json(r, create ? 201 : 200, peer_json(r->d, p));
	return;
wipe:
	psk_wipe(r);
}

void peers_create(struct req *r)
{
	struct db_peer p;

	db_peer_init(&p);
	if (peer_from_body(r, &p, true)) {
		psk_wipe(r);
		return;
	}
	p.id = 0;
	peer_store(r, &p, true);
}

void peers_put(struct req *r)
{
	struct db_peer p;
	int64_t id = req_param_id(r, 0);
	json_t *body_id;
	int rc;

	if (id < 0) {
		psk_wipe(r);
		return;
	}
	if ((rc = db_peer_get(r->d->db, id, &p))) {
		reply_db_error(r, rc);
		psk_wipe(r);
		return;
	}
	if (peer_from_body(r, &p, false)) {
		psk_wipe(r);
		return;
	}
	body_id = json_object_get(r->body, "id");
	if (body_id && (!json_is_integer(body_id) || json_integer_value(body_id) != id)) {
		reply_problem(r, 422, "BAD_FIELD", "id", "differs from the peer in the path");
		psk_wipe(r);
		return;
	}
	p.id = id;
	peer_store(r, &p, false);
}

void peers_get(struct req *r)
{
	struct db_peer p;
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0)
		return;
	if ((rc = db_peer_get(r->d->db, id, &p))) {
		reply_db_error(r, rc);
		return;
	}
	reply_json(r, 200, peer_json(r->d, &p));
}

void peers_list(struct req *r)
{
	struct db_peer *rows = NULL;
	int64_t offset, limit, total = 0;
	json_t *items;
	int n;

	if (req_query_int(r, "offset", 0, 0, INT64_MAX, &offset) ||
	    req_query_int(r, "limit", 100, 1, 1000, &limit))
		return;
	if ((n = db_peer_count(r->d->db, &total)) < 0 || (n = db_peer_list(r->d->db, offset, limit, &rows)) < 0) {
		reply_db_error(r, n);
		return;
	}
	items = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(items, peer_json(r->d, &rows[i]));
	free(rows);
	reply_json(r, 200, json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total, "offset",
	                             (json_int_t)offset, "limit", (json_int_t)limit));
}

/* The name of a policy keyed by peer id, if any. */
static bool peer_user(struct req *r, int64_t id, char *name, size_t len)
{
	struct db_policy *pol = NULL;
	int64_t total = 0;
	int n = db_policy_count(r->d->db, &total) == 0 ? db_policy_list(r->d->db, 0, total, &pol) : 0;
	bool used = false;

	for (int i = 0; i < n && !used; i++)
		if (pol[i].ike_peer_id == id) {
			snprintf(name, len, "%s", pol[i].name);
			used = true;
		}
	free(pol);
	return used;
}

/* A peer that policies still use cannot go: 409 naming the policy. */
void peers_delete(struct req *r)
{
	char user[DB_NAME_LEN];
	struct db_peer p;
	int64_t id = req_param_id(r, 0);
	char obj[48];
	int rc;

	if (id < 0)
		return;
	if ((rc = db_peer_get(r->d->db, id, &p))) {
		reply_db_error(r, rc);
		return;
	}
	if (peer_user(r, id, user, sizeof user)) {
		reply_problem(r, 409, "IN_USE", "peer", "policy %s still uses %s; change it first", user, p.name);
		return;
	}
	if ((rc = db_begin(r->d->db)) || (rc = db_peer_delete(r->d->db, id))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		return;
	}
	object_name(obj, sizeof obj, id);
	audit(r, "peer.delete", obj, json_pack("{s:s}", "name", p.name));
	if ((rc = db_commit(r->d->db))) {
		reply_db_error(r, rc);
		db_rollback(r->d->db);
		return;
	}
	ike_driver_reload(r->d);
	events_publish(r->d, "peer.changed", json_pack("{s:s, s:I}", "action", "delete", "id", (json_int_t)id));
	reply_no_content(r);
}

int peer_ref_resolve(struct req *r, json_t *v, const char *field, struct db_peer *out)
{
	int rc;

	if (json_is_integer(v))
		rc = db_peer_get(r->d->db, json_integer_value(v), out);
	else if (json_is_string(v))
		rc = db_peer_get_by_name(r->d->db, json_string_value(v), out);
	else
		rc = -DB_E_INVALID;
	if (rc < 0) {
		reply_problem(r, 422, "BAD_FIELD", field, "no such peer (give its name or id)");
		return -1;
	}
	return 0;
}
