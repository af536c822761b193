/* confmap.c: the whole configuration between the database and the wire's JSON schema; REST changes and pushes. */
#include "bitwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "wire/ctl.h"

#define PUSH_TIMEOUT_MS 10000
#define CONF_ERR_LEN 512

/*
 * Options live in the settings table as one JSON object under this key, as
 * the client gave them (after validation): absent fields keep the wire's
 * defaults, and export fills them in.
 */
#define OPTIONS_KEY "options"

static const char *const port_roles[] = { "red", "black" };

/* ---- secrets in JSON ---- */

/* jansson frees strings without wiping them: every key string of a document is overwritten first. */
static void doc_wipe_keys(json_t *doc)
{
	json_t *sa;
	size_t i;

	json_array_foreach(json_object_get(doc, "sas"), i, sa)
		json_wipe_sa_keys(sa);
}

static void doc_free(json_t *doc)
{
	doc_wipe_keys(doc);
	json_decref(doc);
}

static json_t *hex_key(const uint8_t *k, size_t len)
{
	char hex[2 * 64 + 1];
	json_t *j;

	for (size_t i = 0; i < len && i < 64; i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
	hex[2 * (len < 64 ? len : 64)] = '\0';
	j = json_string(hex);
	OPENSSL_cleanse(hex, sizeof hex);
	return j;
}

/* ---- ports ---- */

json_t *port_row_to_json(const struct db_port *p)
{
	json_t *o = json_object(), *addrs = json_array();

	if (!o || !addrs) {
		json_decref(o);
		json_decref(addrs);
		return NULL;
	}
	if (p->interface[0])
		json_object_set_new(o, "interface", json_string(p->interface));
	json_object_set_new(o, "mtu", json_integer(p->mtu));
	for (unsigned i = 0; i < p->naddr && i < DB_PORT_ADDRS; i++)
		json_array_append_new(addrs, json_string(p->addresses[i]));
	json_object_set_new(o, "addresses", addrs);
	if (p->gateway4[0])
		json_object_set_new(o, "gateway4", json_string(p->gateway4));
	if (p->gateway6[0])
		json_object_set_new(o, "gateway6", json_string(p->gateway6));
	if (p->router_mac[0])
		json_object_set_new(o, "router_mac", json_string(p->router_mac));
	return o;
}

static int copy_text(char *dst, size_t len, json_t *o, const char *key, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	dst[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= len) {
		snprintf(err, errlen, "%s: expected a string of at most %zu characters", key, len - 1);
		return -XE_BAD_PARAM;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* Only shapes are checked here: the values were (or will be) checked by the wire's parser. */
int port_json_to_row(json_t *j, const char *role, struct db_port *out, char *err, size_t errlen)
{
	json_t *mtu = json_object_get(j, "mtu"), *addrs = json_object_get(j, "addresses"), *a;
	size_t i;
	int rc;

	memset(out, 0, sizeof *out);
	snprintf(out->role, sizeof out->role, "%s", role);
	if (!json_is_object(j)) {
		snprintf(err, errlen, "expected an object");
		return -XE_BAD_PARAM;
	}
	if ((rc = copy_text(out->interface, sizeof out->interface, j, "interface", err, errlen)) ||
	    (rc = copy_text(out->router_mac, sizeof out->router_mac, j, "router_mac", err, errlen)) ||
	    (rc = copy_text(out->gateway4, sizeof out->gateway4, j, "gateway4", err, errlen)) ||
	    (rc = copy_text(out->gateway6, sizeof out->gateway6, j, "gateway6", err, errlen)))
		return rc;
	if (mtu && (!json_is_integer(mtu) || json_integer_value(mtu) < 0 || json_integer_value(mtu) > 65535)) {
		snprintf(err, errlen, "mtu: expected an integer 0..65535");
		return -XE_BAD_PARAM;
	}
	out->mtu = (uint32_t)json_integer_value(mtu);
	if (addrs && (!json_is_array(addrs) || json_array_size(addrs) > DB_PORT_ADDRS)) {
		snprintf(err, errlen, "addresses: expected an array of at most %d addresses", DB_PORT_ADDRS);
		return -XE_BAD_PARAM;
	}
	json_array_foreach(addrs, i, a) {
		if (!json_is_string(a) || json_string_length(a) >= DB_ADDR_LEN) {
			snprintf(err, errlen, "addresses[%zu]: expected an address/prefix-length string", i);
			return -XE_BAD_PARAM;
		}
		memcpy(out->addresses[i], json_string_value(a), json_string_length(a) + 1);
		out->naddr++;
	}
	return 0;
}

/* ---- options ---- */

int conf_options_store(struct bitwd *d, json_t *options)
{
	char *text;
	int rc;

	if (!options) {
		rc = db_setting_delete(d->db, OPTIONS_KEY);
		return rc == -DB_E_NOT_FOUND ? 0 : rc;
	}
	text = json_dumps(options, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return -DB_E_NOMEM;
	rc = db_setting_set(d->db, OPTIONS_KEY, text);
	free(text);
	return rc;
}

static json_t *options_load(struct bitwd *d)
{
	char text[4097];
	int rc = db_setting_get(d->db, OPTIONS_KEY, text, sizeof text);

	if (rc < 0)
		return NULL;
	return json_loads(text, 0, NULL);
}

json_t *conf_options_raw(struct bitwd *d)
{
	json_t *opt = options_load(d);

	if (json_is_object(opt))
		return opt;
	json_decref(opt);
	return json_object();
}

bool conf_legacy_algorithms(struct bitwd *d)
{
	json_t *opt = options_load(d);
	bool on = json_is_true(json_object_get(opt, "legacy_algorithms"));

	json_decref(opt);
	return on;
}

int conf_admin_state(struct bitwd *d)
{
	json_t *opt = options_load(d);
	const char *s = json_string_value(json_object_get(opt, "admin_state"));
	int st = ADMIN_SECURE;

	for (int i = ADMIN_SECURE; s && i <= ADMIN_DROP; i++)
		if (strcmp(s, admin_state_name((uint8_t)i)) == 0)
			st = i;
	json_decref(opt);
	return st;
}

/* ---- export ---- */

static int add_ports(struct bitwd *d, json_t *doc)
{
	json_t *ports = json_object();

	for (size_t i = 0; i < 2; i++) {
		struct db_port p;
		int rc = db_port_get(d->db, port_roles[i], &p);

		if (rc == -DB_E_NOT_FOUND)
			continue;
		if (rc < 0) {
			json_decref(ports);
			return rc;
		}
		json_object_set_new(ports, port_roles[i], port_row_to_json(&p));
	}
	json_object_set_new(doc, "ports", ports);
	return 0;
}

static int add_policies(struct bitwd *d, json_t *doc)
{
	json_t *arr = json_array();
	struct db_policy *pol = NULL;
	int64_t count = 0;
	int n = db_policy_count(d->db, &count);

	if (n >= 0)
		n = db_policy_list(d->db, 0, count, &pol);
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, policy_row_to_json(&pol[i]));
	free(pol);
	json_object_set_new(doc, "policies", arr);
	return n < 0 ? n : 0;
}

static int sa_add_keys(struct bitwd *d, const struct db_sa *s, json_t *o)
{
	struct db_sa_keys k;
	int rc = db_sa_keys_get(d->db, s->id, &k);

	if (rc < 0)
		return rc;
	if (k.enc_key_len)
		json_object_set_new(o, "enc_key", hex_key(k.enc_key, k.enc_key_len));
	if (k.integ_key_len)
		json_object_set_new(o, "integ_key", hex_key(k.integ_key, k.integ_key_len));
	db_sa_keys_wipe(&k);
	return 0;
}

static int add_sas(struct bitwd *d, json_t *doc, bool with_keys)
{
	struct db_sa_filter f = { 0 };
	json_t *arr = json_array();
	struct db_sa *sa = NULL;
	int64_t count = 0;
	int n = db_sa_count(d->db, &f, &count), rc = 0;

	json_object_set_new(doc, "sas", arr);
	if (n >= 0)
		n = db_sa_list(d->db, &f, 0, count, &sa);
	for (int i = 0; i < n && rc == 0; i++) {
		json_t *o = sa_row_to_json(d, &sa[i]);

		if (with_keys && o)
			rc = sa_add_keys(d, &sa[i], o);
		json_array_append_new(arr, o);
	}
	free(sa);
	return n < 0 ? n : rc;
}

/* The stored rows as a document, before the wire's parser filled in its defaults. */
static json_t *export_raw(struct bitwd *d, bool with_keys)
{
	json_t *doc = json_object(), *opt = options_load(d);

	if (!doc)
		return NULL;
	if (opt)
		json_object_set_new(doc, "options", opt);
	if (add_ports(d, doc) < 0 || add_policies(d, doc) < 0 || add_sas(d, doc, with_keys) < 0) {
		mlog(0, "config: export failed: %s", db_errmsg(d->db));
		doc_free(doc);
		return NULL;
	}
	return doc;
}

/*
 * An export without keys is what the wire's parser makes of the stored rows
 * (config_to_json): every default filled in, the same text CONFIG_GET of the
 * wire shows. Parsing needs the keys, so they are read and wiped again.
 */
json_t *conf_export(struct bitwd *d, bool with_keys)
{
	json_t *raw = export_raw(d, true), *out;
	struct wire_config cfg;
	char err[CONF_ERR_LEN];

	if (!raw || with_keys)
		return raw;
	if (config_from_json(raw, &cfg, err, sizeof err) < 0) {
		/* Only a database edited behind our back gets here; show it as stored. */
		mlog(1, "config: the stored configuration does not parse: %s", err);
		doc_free(raw);
		return export_raw(d, false);
	}
	out = config_to_json(&cfg);
	config_free(&cfg);
	doc_free(raw);
	return out;
}

/* ---- pushing to the wire ---- */

/* Ports stored without an interface mean "the one the wire runs with": the wire refuses to change them. */
static void fill_interfaces(struct bitwd *d, json_t *doc)
{
	json_t *ports = json_object_get(doc, "ports");

	for (size_t i = 0; i < 2 && ports; i++) {
		const char *running = wirelink_ifname(d->wl, port_roles[i]);
		json_t *p = json_object_get(ports, port_roles[i]);
		const char *have = json_string_value(json_object_get(p, "interface"));

		if (!running[0] || (have && have[0]))
			continue;
		if (!p) {
			p = json_object();
			json_object_set_new(ports, port_roles[i], p);
		}
		json_object_set_new(p, "interface", json_string(running));
	}
}

/* Bypass all protects nothing: said as a warning each time the wire takes it on, whoever asked. */
static void admin_state_applied(struct bitwd *d, json_t *doc)
{
	const char *s = json_string_value(json_object_get(json_object_get(doc, "options"), "admin_state"));
	int st = ADMIN_SECURE;

	for (int i = ADMIN_SECURE; s && i <= ADMIN_DROP; i++)
		if (strcmp(s, admin_state_name((uint8_t)i)) == 0)
			st = i;
	if (st == d->admin_state)
		return;
	if (st == ADMIN_BYPASS)
		mlog(1, "ADMINISTRATIVE STATE BYPASS: bitw-wire passes every packet between red and black IN CLEAR TEXT "
		        "until the state is secure again");
	else if (st == ADMIN_DROP)
		mlog(1, "administrative state drop: bitw-wire passes no packet between red and black");
	else
		mlog(2, "administrative state secure: policies are enforced again (was %s)",
		     admin_state_name((uint8_t)d->admin_state));
	d->admin_state = st;
}

static int push_doc(struct bitwd *d, json_t *doc, json_t **reply)
{
	int rc;

	*reply = NULL;
	fill_interfaces(d, doc);
	rc = d->wl ? wirelink_request(d->wl, CTL_CONFIG_SET, doc, reply, PUSH_TIMEOUT_MS) : -XE_IO;
	if (rc == 0) {
		d->dirty = false;
		admin_state_applied(d, doc);
	}
	else if (rc == -XE_IO)
		d->dirty = true;
	return rc;
}

int conf_push(struct bitwd *d)
{
	json_t *doc = conf_export(d, true), *reply = NULL;
	int rc;

	if (!doc)
		return -XE_NOMEM;
	rc = push_doc(d, doc, &reply);
	doc_free(doc);
	if (rc < 0 && rc != -XE_IO)
		mlog(1, "config: bitw-wire refused the configuration: %s",
		     json_string_value(json_object_get(reply, "error")) ? json_string_value(json_object_get(reply, "error"))
		                                                         : xe_text(rc));
	json_decref(reply);
	return rc;
}

/* ---- import ---- */

/* The length of a leading "field: " in a parser or database message (a path without spaces), else 0. */
static size_t field_len(const char *msg)
{
	const char *sep = strstr(msg, ": ");

	return sep && sep > msg && !memchr(msg, ' ', (size_t)(sep - msg)) ? (size_t)(sep - msg) : 0;
}

/* The field path in its own member, the message once and without it: "ports.red.mtu" and "too small". */
static void set_err(char *err, size_t errlen, char *field, size_t fieldlen, const char *prefix, const char *msg)
{
	size_t flen = field_len(msg);

	snprintf(err, errlen, "%s", flen ? msg + flen + 2 : msg);
	if (flen)
		snprintf(field, fieldlen, "%s%s%.*s", prefix, prefix[0] ? "." : "", (int)flen, msg);
	else
		snprintf(field, fieldlen, "%s", prefix);
}

static void set_db_err(struct bitwd *d, char *err, size_t errlen, char *field, size_t fieldlen, const char *prefix)
{
	const char *f = db_errfield(d->db);
	const char *m = db_errmsg(d->db);
	size_t flen = field_len(m);

	snprintf(err, errlen, "%s", !m[0] ? "database error" : flen ? m + flen + 2 : m);
	snprintf(field, fieldlen, "%s%s%s", prefix, f[0] ? "." : "", f);
}

/* "spi" as the schema takes it: an integer, or a decimal or 0x string; 0 when it is neither. */
static uint32_t spi_of(json_t *sa)
{
	json_t *v = json_object_get(sa, "spi");
	const char *s = json_string_value(v);
	unsigned long long n = 0;
	char *end = NULL;

	if (json_is_integer(v))
		return json_integer_value(v) > 0 && json_integer_value(v) <= UINT32_MAX ? (uint32_t)json_integer_value(v) : 0;
	if (s && *s) {
		n = strtoull(s, &end, 0);
		if (*end || n > UINT32_MAX)
			n = 0;
	}
	return (uint32_t)n;
}

/*
 * An SA given without keys (as every export writes it) means "the stored SA,
 * unchanged": its keys are copied into the document when the stored SA with
 * the same SPI and direction has the same algorithms. The copy is the
 * caller's to wipe (json_wipe_sa_keys), like keys a client sent.
 */
static int keep_sa_keys(struct bitwd *d, json_t *sa, size_t i, char *err, size_t errlen, char *field,
                        size_t fieldlen)
{
	const char *dir = json_string_value(json_object_get(sa, "direction")), *enc;
	const char *proto = json_string_value(json_object_get(sa, "protocol"));
	json_t *trial = NULL;
	struct db_sa stored, given;
	struct db_sa_keys k;
	char msg[CONF_ERR_LEN];
	bool same = false;

	if (!json_is_object(sa) || json_object_get(sa, "enc_key") || json_object_get(sa, "integ_key") || !dir ||
	    !spi_of(sa) || db_sa_get_spi(d->db, spi_of(sa), dir, proto ? proto : "esp", &stored) < 0 ||
	    db_sa_keys_get(d->db, stored.id, &k) < 0)
		goto refuse;
	/* the algorithms compared as the parser names them, so aliases and case do not matter */
	trial = json_deep_copy(sa);
	if (trial && k.enc_key_len)
		json_object_set_new(trial, "enc_key", hex_key(k.enc_key, k.enc_key_len));
	if (trial && k.integ_key_len)
		json_object_set_new(trial, "integ_key", hex_key(k.integ_key, k.integ_key_len));
	same = trial && sa_json_to_row(trial, &given, NULL, msg, sizeof msg) == 0 &&
	       strcmp(given.enc, stored.enc) == 0 && strcmp(given.integ, stored.integ) == 0;
	for (size_t j = 0; same && j < 2; j++) {
		const char *key = j ? "integ_key" : "enc_key";

		if (json_object_get(trial, key))   /* a copy: trial's strings are wiped below */
			json_object_set_new(sa, key, json_deep_copy(json_object_get(trial, key)));
	}
	json_wipe_sa_keys(trial);
	json_decref(trial);
	db_sa_keys_wipe(&k);
	if (same)
		return 0;
refuse:
	if (json_object_get(sa, "enc_key") || json_object_get(sa, "integ_key") || !json_is_object(sa))
		return 0;   /* keys given (or no SA at all): the parser judges it */
	enc = json_string_value(json_object_get(sa, "enc"));
	snprintf(field, fieldlen, "sas[%zu].%s", i, enc && strcmp(enc, "null") == 0 ? "integ_key" : "enc_key");
	snprintf(err, errlen, "missing: keys are write-only, so an SA without them must match a stored SA "
	         "(same spi, direction, protocol, enc and integ)");
	return -XE_BAD_PARAM;
}

int conf_keep_keys(struct bitwd *d, json_t *doc, char *err, size_t errlen, char *field, size_t fieldlen)
{
	json_t *sa;
	size_t i;
	int rc;

	field[0] = '\0';
	json_array_foreach(json_object_get(doc, "sas"), i, sa)
		if ((rc = keep_sa_keys(d, sa, i, err, errlen, field, fieldlen)) < 0)
			return rc;
	return 0;
}

int conf_check(json_t *doc, struct wire_config *cfg, char *err, size_t errlen, char *field, size_t fieldlen)
{
	char msg[CONF_ERR_LEN];
	int rc;

	field[0] = '\0';
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "the configuration must be a JSON object");
		return -XE_BAD_PARAM;
	}
	rc = config_from_json(doc, cfg, msg, sizeof msg);
	if (rc == 0 && (rc = config_validate(cfg, msg, sizeof msg)) < 0)
		config_free(cfg);
	if (rc < 0)
		set_err(err, errlen, field, fieldlen, "", msg);
	return rc;
}

/*
 * The document is the wire's configuration: it does not carry which IKE peer
 * keys a policy. An import keeps that by policy name, so an export imported
 * again leaves keyed policies keyed.
 */
struct ike_keying {
	char name[DB_NAME_LEN];
	int64_t ike_peer_id, child_lifetime;
	char esp_proposals[256], ah_proposals[256];
};
static struct ike_keying *kept_keying;
static int n_kept_keying;

static void keying_remember(const struct db_policy *pol, int n)
{
	free(kept_keying);
	n_kept_keying = 0;
	kept_keying = n > 0 ? calloc((size_t)n, sizeof *kept_keying) : NULL;
	for (int i = 0; kept_keying && i < n; i++) {
		if (pol[i].ike_peer_id <= 0)
			continue;
		struct ike_keying *k = &kept_keying[n_kept_keying++];
		snprintf(k->name, sizeof k->name, "%s", pol[i].name);
		k->ike_peer_id = pol[i].ike_peer_id;
		k->child_lifetime = pol[i].child_lifetime;
		snprintf(k->esp_proposals, sizeof k->esp_proposals, "%s", pol[i].esp_proposals);
		snprintf(k->ah_proposals, sizeof k->ah_proposals, "%s", pol[i].ah_proposals);
	}
}

static void keying_restore(struct db_policy *row)
{
	for (int i = 0; i < n_kept_keying; i++) {
		if (strcmp(kept_keying[i].name, row->name) != 0 || strcmp(row->action, "protect") != 0)
			continue;
		row->ike_peer_id = kept_keying[i].ike_peer_id;
		row->child_lifetime = kept_keying[i].child_lifetime;
		snprintf(row->esp_proposals, sizeof row->esp_proposals, "%s", kept_keying[i].esp_proposals);
		if (strcmp(row->sa_type, "esp") != 0)
			snprintf(row->ah_proposals, sizeof row->ah_proposals, "%s", kept_keying[i].ah_proposals);
	}
}

static int wipe_all(struct bitwd *d)
{
	struct db_policy *pol = NULL;
	int64_t count = 0;
	int n, rc = db_sa_flush(d->db, 0);

	if (rc >= 0)
		rc = db_policy_count(d->db, &count);
	n = rc >= 0 ? db_policy_list(d->db, 0, count, &pol) : rc;
	rc = n < 0 ? n : 0;
	keying_remember(pol, n);
	for (int i = 0; i < n && rc >= 0; i++)
		rc = db_policy_delete(d->db, pol[i].id);
	free(pol);
	for (size_t i = 0; i < 2 && rc >= 0; i++)
		if ((rc = db_port_delete(d->db, port_roles[i])) == -DB_E_NOT_FOUND)
			rc = 0;
	if (rc >= 0)
		rc = conf_options_store(d, NULL);
	return rc < 0 ? rc : 0;
}

static bool port_is_default(const struct db_port *p)
{
	return !p->mtu && !p->naddr && !p->gateway4[0] && !p->gateway6[0] && !p->router_mac[0];
}

static int import_ports(struct bitwd *d, json_t *doc, char *err, size_t errlen, char *field, size_t fieldlen)
{
	json_t *ports = json_object_get(doc, "ports");

	for (size_t i = 0; i < 2; i++) {
		json_t *p = json_object_get(ports, port_roles[i]);
		char prefix[32], msg[CONF_ERR_LEN];
		struct db_port row;
		int rc;

		if (!p)
			continue;
		snprintf(prefix, sizeof prefix, "ports.%s", port_roles[i]);
		if ((rc = port_json_to_row(p, port_roles[i], &row, msg, sizeof msg)) < 0) {
			set_err(err, errlen, field, fieldlen, prefix, msg);
			return rc;
		}
		if (!row.interface[0] && port_is_default(&row))
			continue;   /* as an export of a port never set writes it: nothing to store */
		if (!row.interface[0]) {
			set_err(err, errlen, field, fieldlen, prefix, "interface: required when the port has other settings");
			return -XE_BAD_PARAM;
		}
		if ((rc = db_port_set(d->db, &row)) < 0) {
			set_db_err(d, err, errlen, field, fieldlen, prefix);
			return rc;
		}
	}
	return 0;
}

/* Ids and order as the wire's parser assigned them, so the database and the wire agree on both. */
static int import_policies(struct bitwd *d, json_t *doc, const struct wire_config *cfg, char *err, size_t errlen,
                           char *field, size_t fieldlen)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(doc, "policies"), i, p) {
		char prefix[32], msg[CONF_ERR_LEN];
		struct db_policy row;
		int rc;

		snprintf(prefix, sizeof prefix, "policies[%zu]", i);
		if ((rc = policy_json_to_row(p, &row, msg, sizeof msg)) < 0) {
			set_err(err, errlen, field, fieldlen, prefix, msg);
			return rc;
		}
		if (i < cfg->npol) {
			row.id = cfg->pol[i].id;
			row.position = cfg->pol[i].order;
		}
		keying_restore(&row);
		if ((rc = db_policy_insert(d->db, &row)) < 0) {
			set_db_err(d, err, errlen, field, fieldlen, prefix);
			return rc;
		}
	}
	return 0;
}

static int import_sas(struct bitwd *d, json_t *doc, char *err, size_t errlen, char *field, size_t fieldlen)
{
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(doc, "sas"), i, s) {
		char prefix[32], msg[CONF_ERR_LEN];
		struct db_sa row;
		struct db_sa_keys keys;
		int rc;

		snprintf(prefix, sizeof prefix, "sas[%zu]", i);
		if ((rc = sa_json_to_row(s, &row, &keys, msg, sizeof msg)) < 0) {
			set_err(err, errlen, field, fieldlen, prefix, msg);
			return rc;
		}
		rc = db_sa_insert(d->db, &row, &keys);
		db_sa_keys_wipe(&keys);
		if (rc < 0) {
			set_db_err(d, err, errlen, field, fieldlen, prefix);
			return rc;
		}
	}
	return 0;
}

int conf_import_rows(struct bitwd *d, json_t *doc, const struct wire_config *cfg, char *err, size_t errlen,
                     char *field, size_t fieldlen)
{
	int rc;

	field[0] = '\0';
	if ((rc = wipe_all(d)) < 0) {
		set_db_err(d, err, errlen, field, fieldlen, "config");
		return rc;
	}
	if ((rc = import_ports(d, doc, err, errlen, field, fieldlen)) < 0)
		return rc;
	if (json_object_get(doc, "options") && (rc = conf_options_store(d, json_object_get(doc, "options"))) < 0) {
		set_db_err(d, err, errlen, field, fieldlen, "options");
		return rc;
	}
	rc = import_policies(d, doc, cfg, err, errlen, field, fieldlen);
	keying_remember(NULL, 0);
	if (rc < 0)
		return rc;
	return import_sas(d, doc, err, errlen, field, fieldlen);
}

int conf_import(struct bitwd *d, json_t *doc, char *err, size_t errlen, char *field, size_t fieldlen)
{
	struct wire_config cfg;
	int rc = conf_keep_keys(d, doc, err, errlen, field, fieldlen);

	if (rc == 0)
		rc = conf_check(doc, &cfg, err, errlen, field, fieldlen);
	if (rc < 0)
		return rc;
	rc = db_begin(d->db);
	if (rc == 0)
		rc = conf_import_rows(d, doc, &cfg, err, errlen, field, fieldlen);
	else
		snprintf(err, errlen, "database: %s", db_strerror(rc));
	config_free(&cfg);
	if (rc == 0)
		rc = db_commit(d->db);
	if (rc < 0) {
		if (db_in_txn(d->db))
			db_rollback(d->db);
		return rc;
	}
	(void)conf_push(d);   /* not applied now: d->dirty is set and the link retries */
	return 0;
}

/* ---- a REST change ---- */

int change_begin(struct req *r)
{
	int rc = db_begin(r->d->db);

	if (rc < 0) {
		reply_problem(r, 503, "INTERNAL", NULL, "cannot start a database transaction: %s", db_strerror(rc));
		return -1;
	}
	return 0;
}

void change_abort(struct req *r)
{
	if (db_in_txn(r->d->db))
		db_rollback(r->d->db);
}

/* The whole configuration as it will be after this change, checked by the parser the wire itself uses. */
static int change_validate(struct req *r, json_t *doc)
{
	struct wire_config cfg;
	char err[CONF_ERR_LEN];
	int rc = config_from_json(doc, &cfg, err, sizeof err);

	if (rc == 0) {
		rc = config_validate(&cfg, err, sizeof err);
		config_free(&cfg);
	}
	if (rc < 0)
		reply_parse_error(r, err);
	return rc;
}

static void reply_not_applied(struct req *r, json_t *body, int rc, json_t *wire_reply)
{
	if (rc == -XE_IO) {
		reply_problem(r, 503, "NOT_APPLIED", NULL, "applied when bitw-wire reconnects");
	} else {
		const char *e = json_string_value(json_object_get(wire_reply, "error"));
		const char *f = json_string_value(json_object_get(wire_reply, "field"));

		reply_problem(r, 409, "WIRE_REJECTED", f, "bitw-wire rejected the configuration (%s): %s", xe_name(rc),
		              e ? e : xe_text(rc));
	}
	if (r->resp) {
		json_object_set_new(r->resp, "stored", json_true());
		if (body)
			json_object_set(r->resp, "result", body);
	}
	json_decref(body);
}

/*
 * Commit first, then push: the database is the truth the wire is
 * resynchronised from whenever either side restarts. A change the wire
 * refuses therefore stays stored and the client is told so (409
 * WIRE_REJECTED, "stored": true) rather than it being silently lost; it also
 * means a client never sees a configuration that was applied but not kept.
 */
void change_finish(struct req *r, int status, json_t *body, const char *action, const char *object,
                   json_t *detail)
{
	struct bitwd *d = r->d;
	json_t *doc = conf_export(d, true), *wire_reply = NULL;
	char name[DB_NAME_LEN], policy[DB_NAME_LEN];
	int rc;

	if (!doc) {
		reply_problem(r, 500, "INTERNAL", NULL, "cannot read the configuration back");
		goto undo;
	}
	if (change_validate(r, doc) < 0)
		goto undo;
	/* the event names the object as people do (the policy's name, an SA's policy), so a log filtered by it finds it */
	snprintf(name, sizeof name, "%s", json_string_value(json_object_get(detail, "name")) ?
	         json_string_value(json_object_get(detail, "name")) : "");
	snprintf(policy, sizeof policy, "%s", json_string_value(json_object_get(detail, "policy")) ?
	         json_string_value(json_object_get(detail, "policy")) : "");
	audit(r, action, object, detail);
	detail = NULL;
	if ((rc = db_commit(d->db)) < 0) {
		reply_db_error(r, rc);
		goto undo;
	}
	rc = push_doc(d, doc, &wire_reply);
	doc_free(doc);
	ike_driver_reload(d);   /* policies keyed by IKE peers, and our black addresses, may have changed */
	events_publish(d, "config.changed", json_pack("{s:s?, s:s?, s:s?, s:s?, s:b}", "action", action, "object", object,
	                                              "name", name[0] ? name : NULL, "policy", policy[0] ? policy : NULL,
	                                              "applied", rc == 0));
	if (rc == 0 && !body && status == 204)
		reply_no_content(r);
	else if (rc == 0)
		reply_json(r, status, body ? body : json_object());
	else
		reply_not_applied(r, body, rc, wire_reply);
	json_decref(wire_reply);
	return;
undo:
	change_abort(r);
	doc_free(doc);
	json_decref(body);
	json_decref(detail);
}
