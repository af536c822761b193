/* api_sas.c: /api/v1/sas — manual SAs over REST: list, add, get, delete, flush; keys are write-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitwd.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

/* The config schema's SA object plus the db id that the REST paths use. */
static json_t *sa_rest_json(struct bitwd *d, const struct db_sa *s)
{
	json_t *o = sa_row_to_json(d, s);

	if (o)
		json_object_set_new(o, "id", json_integer(s->id));
	return o;
}

/* ?policy=NAME as a policy id (0 when absent); -1 after replying 404. */
static int64_t policy_query(struct req *r)
{
	const char *name = req_query(r, "policy");
	struct db_policy p;
	int rc;

	if (!name || !*name)
		return 0;
	if ((rc = db_policy_get_by_name(r->d->db, name, &p))) {
		if (rc == -DB_E_NOT_FOUND)
			reply_problem(r, 404, "NOT_FOUND", "policy", "no policy named \"%.63s\"", name);
		else
			reply_db_error(r, rc);
		return -1;
	}
	return p.id;
}

/* ?direction=in|out, NULL when absent; -1 after replying 400. */
static int direction_query(struct req *r, const char **out)
{
	const char *dir = req_query(r, "direction");

	*out = NULL;
	if (!dir || !*dir)
		return 0;
	if (strcmp(dir, "in") && strcmp(dir, "out")) {
		reply_problem(r, 400, "BAD_FIELD", "direction", "must be in or out");
		return -1;
	}
	*out = dir;
	return 0;
}

void sas_list(struct req *r)
{
	struct db_sa_filter f = { 0 };
	struct db_sa *rows = NULL;
	int64_t offset, limit, total = 0;
	json_t *items;
	int n, rc;

	if ((f.policy_id = policy_query(r)) < 0 || direction_query(r, &f.direction) ||
	    req_query_int(r, "offset", 0, 0, INT64_MAX, &offset) ||
	    req_query_int(r, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit))
		return;
	if ((rc = db_sa_count(r->d->db, &f, &total))) {
		reply_db_error(r, rc);
		return;
	}
	if ((n = db_sa_list(r->d->db, &f, offset, limit, &rows)) < 0) {
		reply_db_error(r, n);
		return;
	}
	items = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(items, sa_rest_json(r->d, &rows[i]));
	free(rows);
	reply_json(r, 200, json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total, "offset",
	                             (json_int_t)offset, "limit", (json_int_t)limit));
}

/*
 * The policy an SA serves must exist and protect, and the SA must fit it
 * (the wire's own checks: protocol, AH's limits, clone host): checked here so
 * the client hears the SA's own field, not a path into the whole configuration.
 */
static int policy_protects(struct req *r, const struct db_sa *sa)
{
	const char *name = sa->policy;
	struct db_policy p;
	char err[256];
	int rc = db_policy_get_by_name(r->d->db, name, &p);

	if (rc == -DB_E_NOT_FOUND) {
		reply_problem(r, 422, "BAD_FIELD", "policy", "no policy named \"%s\"", name);
		return -1;
	}
	if (rc) {
		reply_db_error(r, rc);
		return -1;
	}
	if (strcmp(p.action, "protect")) {
		reply_problem(r, 422, "BAD_FIELD", "policy", "\"%s\" is a %s policy; SAs serve protect policies",
		              name, p.action);
		return -1;
	}
	rc = sa_fits_policy(r->body, &p, err, sizeof err);
	if (rc == -XE_BAD_PARAM) {
		reply_parse_error(r, err);
		return -1;
	}
	if (rc) {
		mlog(0, "api: checking an SA against policy \"%s\": %s", name, err);
		reply_problem(r, 500, "INTERNAL", NULL, "%s", err);
		return -1;
	}
	return 0;
}

static void sa_create_row(struct req *r, struct db_sa *row, struct db_sa_keys *keys)
{
	char obj[48], loc[64];
	json_t *body, *detail;
	int rc;

	if (policy_protects(r, row) || change_begin(r))
		return;
	if ((rc = db_sa_insert(r->d->db, row, keys)) || (rc = db_sa_get(r->d->db, row->id, row))) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	body = sa_rest_json(r->d, row);
	detail = json_pack("{s:I, s:s, s:s, s:s}", "spi", (json_int_t)row->spi, "direction", row->direction, "protocol",
	                   row->protocol, "policy", row->policy);
	snprintf(obj, sizeof obj, "sa/%lld", (long long)row->id);
	snprintf(loc, sizeof loc, "/api/v1/sas/%lld", (long long)row->id);
	reply_header(r, "Location", loc);
	change_finish(r, 201, body, "sa.create", obj, detail);
}

void sas_create(struct req *r)
{
	struct db_sa row;
	struct db_sa_keys keys = { 0 };
	char err[256] = "";

	if (!r->body || !json_is_object(r->body)) {
		reply_problem(r, 400, "BAD_JSON", NULL, "the body must be a JSON object");
		return;
	}
	if (sa_json_to_row(r->body, &row, &keys, err, sizeof err))
		reply_parse_error(r, err);
	else
		sa_create_row(r, &row, &keys);
	db_sa_keys_wipe(&keys);
	json_wipe_sa_keys(r->body);
}

void sas_get(struct req *r)
{
	struct db_sa row;
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0)
		return;
	if ((rc = db_sa_get(r->d->db, id, &row))) {
		reply_db_error(r, rc);
		return;
	}
	reply_json(r, 200, sa_rest_json(r->d, &row));
}

void sas_delete(struct req *r)
{
	struct db_sa row;
	int64_t id = req_param_id(r, 0);
	char obj[48];
	int rc;

	if (id < 0)
		return;
	if ((rc = db_sa_get(r->d->db, id, &row))) {
		reply_db_error(r, rc);
		return;
	}
	if (change_begin(r))
		return;
	if ((rc = db_sa_delete(r->d->db, id))) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	snprintf(obj, sizeof obj, "sa/%lld", (long long)id);
	change_finish(r, 200, json_pack("{s:I, s:i}", "id", (json_int_t)id, "deleted", 1), "sa.delete", obj,
	              json_pack("{s:I, s:s, s:s}", "spi", (json_int_t)row.spi, "direction", row.direction, "policy",
	                        row.policy));
}

/* DELETE /sas: every manual SA, or those of ?policy=NAME. */
void sas_flush(struct req *r)
{
	const char *name = req_query(r, "policy");
	int64_t policy_id = policy_query(r);
	char obj[48];
	int n;

	if (policy_id < 0 || change_begin(r))
		return;
	if ((n = db_sa_flush(r->d->db, policy_id)) < 0) {
		reply_db_error(r, n);
		change_abort(r);
		return;
	}
	if (policy_id)
		snprintf(obj, sizeof obj, "policy/%lld/sas", (long long)policy_id);
	else
		snprintf(obj, sizeof obj, "sas");
	change_finish(r, 200, json_pack("{s:i}", "deleted", n), "sa.flush", obj,
	              policy_id ? json_pack("{s:s, s:i}", "policy", name, "deleted", n) : json_pack("{s:i}", "deleted", n));
}
