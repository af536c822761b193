/* api_config.c: REST for the ports, the options and the whole configuration (export and atomic import). */
#include "bitwd.h"

#include <stdio.h>
#include <string.h>

#define ERR_LEN 512

/* The handlers routes.c names. */
void ports_list(struct req *r);
void ports_get(struct req *r);
void ports_put(struct req *r);
void options_get(struct req *r);
void options_put(struct req *r);
void config_get(struct req *r);
void config_put(struct req *r);

static const char *const port_fields[] = {
	"interface", "mtu", "addresses", "gateway4", "gateway6", "router_mac", NULL
};
static const char *const option_fields[] = {
	"default_action", "bridge_non_ip", "nat_keepalive", "neigh_timeout", "neigh_queue",
	"acquire_queue", "frag_timeout_ms", "frag_mem", "replay_window", "legacy_algorithms",
	"admin_state", "black_interface_mac", NULL
};
static const char *const config_fields[] = { "ports", "options", "policies", "sas", NULL };

/* The stored configuration as the wire's parser shows it (defaults filled in), or NULL after replying 500. */
static json_t *export_or_fail(struct req *r)
{
	json_t *doc = conf_export(r->d, false);

	if (!doc)
		reply_problem(r, 500, "INTERNAL", NULL, "cannot read the configuration");
	return doc;
}

/* One section of the export ("ports", "red"), copied; NULL after replying. */
static json_t *export_part(struct req *r, const char *a, const char *b)
{
	json_t *doc = export_or_fail(r), *part;

	if (!doc)
		return NULL;
	part = json_object_get(doc, a);
	if (b)
		part = json_object_get(part, b);
	part = part ? json_deep_copy(part) : json_object();
	json_decref(doc);
	return part;
}

/* "red" or "black" from the path; NULL after replying 404. */
static const char *port_role(struct req *r)
{
	const char *role = r->params[0];

	if (r->nparams < 1 || (strcmp(role, "red") != 0 && strcmp(role, "black") != 0)) {
		reply_problem(r, 404, "NOT_FOUND", "role", "no port \"%.32s\": ports are red and black", role);
		return NULL;
	}
	return role;
}

/*
 * A section checked alone by the wire's parser, wrapped as in a whole
 * document; errors name the field inside the section ("mtu", not
 * "ports.red.mtu"), as the client wrote it. -1 after replying 422.
 */
static int check_section(struct req *r, json_t *wrapped, const char *prefix)
{
	struct wire_config cfg;
	char err[ERR_LEN];
	size_t plen = strlen(prefix);

	if (!wrapped) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return -1;
	}
	if (config_from_json(wrapped, &cfg, err, sizeof err) == 0) {
		config_free(&cfg);
		json_decref(wrapped);
		return 0;
	}
	json_decref(wrapped);
	reply_parse_error(r, strncmp(err, prefix, plen) == 0 && err[plen] == '.' ? err + plen + 1 : err);
	return -1;
}

/* The wire cannot swap its packet ports while running: say so instead of storing what it will refuse. */
static int interface_conflict(struct req *r, const char *role, json_t *port)
{
	const char *running = wirelink_ifname(r->d->wl, role);
	const char *want = json_string_value(json_object_get(port, "interface"));

	if (!running[0] || !want || !want[0] || strcmp(running, want) == 0)
		return 0;
	reply_problem(r, 409, "CONFLICT", "interface",
	              "%s port: bitw-wire runs on \"%s\"; restart bitw-wire to change interfaces", role, running);
	return -1;
}

void ports_list(struct req *r)
{
	json_t *ports = export_part(r, "ports", NULL);

	if (ports)
		reply_json(r, 200, ports);
}

void ports_get(struct req *r)
{
	const char *role = port_role(r);
	json_t *port = role ? export_part(r, "ports", role) : NULL;

	if (port)
		reply_json(r, 200, port);
}

/*
 * A port written without "interface" keeps the one stored, else the one
 * bitw-wire runs; with neither there is nothing to name, and the client is
 * told which field to add (the database would only say "invalid").
 */
static int port_interface_default(struct req *r, const char *role, struct db_port *row)
{
	struct db_port stored;
	const char *running = wirelink_ifname(r->d->wl, role);

	if (db_port_get(r->d->db, role, &stored) == 0 && stored.interface[0])
		snprintf(row->interface, sizeof row->interface, "%s", stored.interface);
	else if (running[0])
		snprintf(row->interface, sizeof row->interface, "%s", running);
	if (row->interface[0])
		return 0;
	reply_problem(r, 422, "MISSING_FIELD", "interface", "required: no interface is stored for the %s port and "
	              "bitw-wire is not connected to say which one it runs", role);
	return -1;
}

void ports_put(struct req *r)
{
	const char *role = port_role(r);
	char err[ERR_LEN], object[32];
	struct db_port row;
	json_t *body;
	int rc;

	if (!role || req_body_object(r, port_fields) < 0 ||
	    check_section(r, json_pack("{s:{s:O}}", "ports", role, r->body), role[0] == 'r' ? "ports.red" : "ports.black") ||
	    interface_conflict(r, role, r->body))
		return;
	if (port_json_to_row(r->body, role, &row, err, sizeof err) < 0) {
		reply_parse_error(r, err);
		return;
	}
	if (!row.interface[0] && port_interface_default(r, role, &row) < 0)
		return;
	if (change_begin(r))
		return;
	if ((rc = db_port_set(r->d->db, &row)) < 0) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	if (!(body = export_part(r, "ports", role))) {
		change_abort(r);
		return;
	}
	snprintf(object, sizeof object, "port/%.16s", role);
	change_finish(r, 200, body, "port.update", object, port_row_to_json(&row));
}

void options_get(struct req *r)
{
	json_t *opt = export_part(r, "options", NULL);

	if (opt)
		reply_json(r, 200, opt);
}

/*
 * PUT /options replaces the options, but the administrative state has its own
 * resource with its own audit entry and warnings: a body that doesn't name it
 * keeps the stored one rather than silently returning the box to secure (or,
 * from a stale copy, to bypass).
 */
static void keep_admin_state(struct bitwd *d, json_t *body)
{
	json_t *opt;

	if (json_object_get(body, "admin_state"))
		return;
	opt = conf_options_raw(d);
	if (opt && json_object_get(opt, "admin_state"))
		json_object_set(body, "admin_state", json_object_get(opt, "admin_state"));
	json_decref(opt);
}

void options_put(struct req *r)
{
	json_t *body;
	int rc;

	if (req_body_object(r, option_fields) < 0 ||
	    check_section(r, json_pack("{s:O}", "options", r->body), "options") || change_begin(r))
		return;
	keep_admin_state(r->d, r->body);
	if ((rc = conf_options_store(r->d, r->body)) < 0) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	if (!(body = export_part(r, "options", NULL))) {
		change_abort(r);
		return;
	}
	change_finish(r, 200, body, "options.update", "options", json_deep_copy(r->body));
}

void config_get(struct req *r)
{
	json_t *doc = export_or_fail(r);

	if (!doc)
		return;
	reply_header(r, "Content-Disposition", "attachment; filename=bitw-config.json");
	reply_json(r, 200, doc);
}

static int import_conflicts(struct req *r, json_t *doc)
{
	json_t *ports = json_object_get(doc, "ports");

	return interface_conflict(r, "red", json_object_get(ports, "red")) ||
	       interface_conflict(r, "black", json_object_get(ports, "black"));
}

/* All or nothing: checked whole by the wire's parser, then stored in one transaction, then pushed. */
static void config_import_req(struct req *r)
{
	char err[ERR_LEN], field[128];
	struct wire_config cfg;
	json_t *body, *detail;
	int rc;

	if (req_body_object(r, config_fields) < 0)
		return;
	if (conf_keep_keys(r->d, r->body, err, sizeof err, field, sizeof field) < 0 ||
	    conf_check(r->body, &cfg, err, sizeof err, field, sizeof field) < 0) {
		reply_field_problem(r, field, err);
		return;
	}
	detail = json_pack("{s:i, s:i}", "policies", (int)cfg.npol, "sas", (int)cfg.nsa);
	if (import_conflicts(r, r->body) || change_begin(r)) {
		config_free(&cfg);
		json_decref(detail);
		return;
	}
	rc = conf_import_rows(r->d, r->body, &cfg, err, sizeof err, field, sizeof field);
	config_free(&cfg);
	if (rc < 0) {
		reply_problem(r, rc == -DB_E_CONFLICT ? 409 : 422, rc == -DB_E_CONFLICT ? "CONFLICT" : "BAD_FIELD", field,
		              "%s", err);
		change_abort(r);
		json_decref(detail);
		return;
	}
	if (!(body = export_or_fail(r))) {
		change_abort(r);
		json_decref(detail);
		return;
	}
	change_finish(r, 200, body, "config.import", "config", detail);
}

void config_put(struct req *r)
{
	json_t *sa;
	size_t i;

	config_import_req(r);
	/* The body carried keys; http.c frees it, so overwrite them now. */
	json_array_foreach(json_object_get(r->body, "sas"), i, sa)
		json_wipe_sa_keys(sa);
}
