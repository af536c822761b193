/* api_policies.c: /api/v1/policies — the SPD over REST: list, create, get, replace, delete, reorder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitwd.h"
#include "ike/ike.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static int paging(struct req *r, int64_t *offset, int64_t *limit)
{
	if (req_query_int(r, "offset", 0, 0, INT64_MAX, offset) ||
	    req_query_int(r, "limit", LIST_DEFAULT, 1, LIST_MAX, limit))
		return -1;
	return 0;
}

static json_t *page(json_t *items, int64_t total, int64_t offset, int64_t limit)
{
	return json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total, "offset",
	                 (json_int_t)offset, "limit", (json_int_t)limit);
}

/* A policy as REST shows it: the wire's schema plus its IKE keying (which the wire never sees). */
static json_t *policy_json(struct req *r, const struct db_policy *p)
{
	json_t *o = policy_row_to_json(p);
	struct db_peer peer;

	if (o && p->ike_peer_id > 0 && db_peer_get(r->d->db, p->ike_peer_id, &peer) == 0) {
		json_object_set_new(o, "ike_peer", json_string(peer.name));
		json_object_set_new(o, "esp_proposals", json_string(p->esp_proposals));
		if (strcmp(p->sa_type, "esp") != 0)
			json_object_set_new(o, "ah_proposals", json_string(p->ah_proposals));
		json_object_set_new(o, "child_lifetime", json_integer(p->child_lifetime));
	}
	return o;
}

/* The whole SPD in evaluation order as a JSON array, or NULL after replying. */
static json_t *policy_array(struct req *r, int64_t offset, int64_t limit)
{
	struct db_policy *rows = NULL;
	json_t *items = json_array();
	int n = db_policy_list(r->d->db, offset, limit, &rows);

	if (n < 0) {
		json_decref(items);
		reply_db_error(r, n);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		json_array_append_new(items, policy_json(r, &rows[i]));
	free(rows);
	return items;
}

void policies_list(struct req *r)
{
	int64_t offset, limit, total = 0;
	json_t *items;
	int rc;

	if (paging(r, &offset, &limit))
		return;
	if ((rc = db_policy_count(r->d->db, &total))) {
		reply_db_error(r, rc);
		return;
	}
	if (!(items = policy_array(r, offset, limit)))
		return;
	reply_json(r, 200, page(items, total, offset, limit));
}

static int body_is_object(struct req *r)
{
	if (r->body && json_is_object(r->body))
		return 0;
	reply_problem(r, 400, "BAD_JSON", NULL, "the body must be a JSON object");
	return -1;
}

static const char *const ike_keys[] = { "ike_peer", "esp_proposals", "ah_proposals", "child_lifetime" };

/* "ah_proposals" ("" = the default, HMAC-SHA2-256): AH integrity proposals for a policy whose SAs include AH. */
static int ah_proposals_from_body(struct req *r, struct db_policy *row)
{
	json_t *ah = json_object_get(r->body, "ah_proposals");
	struct ike_proposal_conf p[IKE_MAX_PROPOSAL_CONF];
	const char *t = json_string_value(ah);
	char err[160] = "";

	if (!ah)
		return 0;
	if (!t || json_string_length(ah) >= sizeof row->ah_proposals ||
	    (t[0] && strcmp(t, "default") && ike_ah_proposals_parse(t, conf_legacy_algorithms(r->d), p,
	                                                           IKE_MAX_PROPOSAL_CONF, err, sizeof err) <= 0)) {
		reply_problem(r, 422, "BAD_FIELD", "ah_proposals", "%s",
		              err[0] ? err : "a proposal list like \"sha256-curve25519\"");
		return -1;
	}
	if (t[0] && strcmp(row->sa_type, "ah") && strcmp(row->sa_type, "ahesp")) {
		reply_problem(r, 422, "BAD_FIELD", "ah_proposals", "only for a policy with sa_type ah or ahesp");
		return -1;
	}
	snprintf(row->ah_proposals, sizeof row->ah_proposals, "%s", t);
	return 0;
}

/* "ike_peer" (name or id; null = manual keys), "esp_proposals" ("" = the peer's), "child_lifetime" (0 = the peer's). */
static int ike_keying_from_body(struct req *r, struct db_policy *row)
{
	json_t *peer = json_object_get(r->body, "ike_peer"), *esp = json_object_get(r->body, "esp_proposals");
	json_t *life = json_object_get(r->body, "child_lifetime");
	struct ike_proposal_conf p[IKE_MAX_PROPOSAL_CONF];
	struct db_peer pr;
	char err[160] = "";

	if (peer && !json_is_null(peer)) {
		if (peer_ref_resolve(r, peer, "ike_peer", &pr))
			return -1;
		if (strcmp(row->action, "protect") != 0) {
			reply_problem(r, 422, "BAD_FIELD", "ike_peer", "only a protect policy is keyed by IKE");
			return -1;
		}
		row->ike_peer_id = pr.id;
	}
	if (esp) {
		const char *t = json_string_value(esp);

		if (!t || json_string_length(esp) >= sizeof row->esp_proposals ||
		    (t[0] && strcmp(t, "default") && ike_proposals_parse(t, true, conf_legacy_algorithms(r->d), p,
		                                                        IKE_MAX_PROPOSAL_CONF, err, sizeof err) <= 0)) {
			reply_problem(r, 422, "BAD_FIELD", "esp_proposals", "%s",
			              err[0] ? err : "a proposal list like \"aes256gcm16-curve25519\"");
			return -1;
		}
		snprintf(row->esp_proposals, sizeof row->esp_proposals, "%s", t);
	}
	if (life) {
		if (!json_is_integer(life) || json_integer_value(life) < 0 || json_integer_value(life) > 7 * 86400) {
			reply_problem(r, 422, "BAD_FIELD", "child_lifetime", "seconds, 0 (the peer's) to 604800");
			return -1;
		}
		row->child_lifetime = json_integer_value(life);
	}
	return ah_proposals_from_body(r, row);
}

/* The body checked by the wire's parser and turned into a row; -1 after replying 422. */
static int policy_from_body(struct req *r, struct db_policy *row)
{
	char err[256] = "";

	json_t *wire_part;
	int rc;

	if (body_is_object(r))
		return -1;
	if (!(wire_part = json_copy(r->body))) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < sizeof ike_keys / sizeof ike_keys[0]; i++)
		json_object_del(wire_part, ike_keys[i]);
	rc = policy_json_to_row(wire_part, row, err, sizeof err);
	json_decref(wire_part);
	if (rc) {
		reply_parse_error(r, err);
		return -1;
	}
	return ike_keying_from_body(r, row);
}

static void object_name(char *buf, size_t len, int64_t id)
{
	snprintf(buf, len, "policy/%lld", (long long)id);
}

/* Reads the row back (ids, positions assigned by the db) and finishes the change with it. */
static void finish_with_row(struct req *r, int status, int64_t id, const char *action)
{
	struct db_policy row;
	char obj[48], loc[64];
	int rc = db_policy_get(r->d->db, id, &row);
	json_t *body;

	if (rc) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	body = policy_json(r, &row);
	object_name(obj, sizeof obj, id);
	if (status == 201) {
		snprintf(loc, sizeof loc, "/api/v1/policies/%lld", (long long)id);
		reply_header(r, "Location", loc);
	}
	change_finish(r, status, body, action, obj, json_deep_copy(body));
}

void policies_create(struct req *r)
{
	struct db_policy row;
	int rc;

	if (policy_from_body(r, &row) || change_begin(r))
		return;
	if ((rc = db_policy_insert(r->d->db, &row))) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	finish_with_row(r, 201, row.id, "policy.create");
}

void policies_get(struct req *r)
{
	struct db_policy row;
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0)
		return;
	if ((rc = db_policy_get(r->d->db, id, &row))) {
		reply_db_error(r, rc);
		return;
	}
	reply_json(r, 200, policy_json(r, &row));
}

static const char *clone_of(const struct db_policy *p)
{
	return p->clone[0] ? p->clone : "none";
}

/*
 * A clone policy's SAs each serve one host of its cloned selector, other
 * policies' SAs none: changing clone would strand every SA it has. Refused
 * here so the client hears "clone", not a path into the whole configuration.
 */
static int clone_change_ok(struct req *r, const struct db_policy *old, const struct db_policy *row)
{
	struct db_sa_filter f = { 0 };
	int64_t n = 0;
	int rc;

	if (!strcmp(clone_of(old), clone_of(row)))
		return 0;
	f.policy_id = old->id;
	if ((rc = db_sa_count(r->d->db, &f, &n))) {
		reply_db_error(r, rc);
		return -1;
	}
	if (n > 0) {
		reply_problem(r, 422, "BAD_FIELD", "clone", "the policy has %lld SA%s made for clone %s; delete %s first",
		              (long long)n, n == 1 ? "" : "s", clone_of(old), n == 1 ? "it" : "them");
		return -1;
	}
	return 0;
}

/* The policy field a change must have touched for an SA to stop fitting, from the wire's complaint about the SA. */
static const char *changed_field(const struct db_policy *row, const char *err)
{
	if (!strncmp(err, "clone_host:", 11))
		return clone_of(row);
	if (strstr(err, "tfc_pad"))
		return "tfc_pad";
	if (strstr(err, "dummy_interval_ms"))
		return "dummy_interval_ms";
	return "sa_type";
}

/*
 * An SA as the wire's parser reads it, for checking it against its policy:
 * the keys are zeros of the stored lengths, since the check is about the
 * policy and no secret needs copying for it.
 */
static json_t *sa_for_check(struct req *r, const struct db_sa *sa)
{
	struct db_sa_keys k;
	char hex[2 * (sizeof k.enc_key > sizeof k.integ_key ? sizeof k.enc_key : sizeof k.integ_key) + 1];
	json_t *j = sa_row_to_json(r->d, sa);

	if (!j || db_sa_keys_get(r->d->db, sa->id, &k)) {
		json_decref(j);
		return NULL;
	}
	memset(hex, '0', sizeof hex - 1);
	if (k.enc_key_len)
		json_object_set_new(j, "enc_key", json_stringn(hex, 2 * k.enc_key_len));
	if (k.integ_key_len)
		json_object_set_new(j, "integ_key", json_stringn(hex, 2 * k.integ_key_len));
	db_sa_keys_wipe(&k);
	return j;
}

/*
 * The policy's manual SAs must still fit it as stored after the change:
 * refused here so the client hears the policy's field it changed (src or dst
 * of a clone policy, sa_type, tfc_pad), with the SA that no longer fits, not a path
 * into the whole configuration.
 */
static int sas_still_fit(struct req *r, const struct db_policy *row)
{
	struct db_sa_filter f = { .policy_id = row->id };
	struct db_sa *sas = NULL;
	char err[256];
	int n = db_sa_list(r->d->db, &f, 0, 0, &sas), rc = 0;

	if (n < 0) {
		reply_db_error(r, n);
		return -1;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		const struct db_sa *sa = &sas[i];
		json_t *j = sa_for_check(r, sa);
		const char *why;

		rc = j ? sa_fits_policy(j, row, err, sizeof err) : -XE_NOMEM;
		json_decref(j);
		if (rc == 0)
			continue;
		if (rc != -XE_BAD_PARAM) {   /* not the request's fault */
			mlog(0, "api: checking SA %lld against policy \"%s\": %s", (long long)sa->id, row->name,
			     rc == -XE_NOMEM ? "out of memory" : err);
			reply_problem(r, 500, "INTERNAL", NULL, "%s", rc == -XE_NOMEM ? "out of memory" : err);
			break;
		}
		why = strstr(err, ": ") ? strstr(err, ": ") + 2 : err;
		if (!strncmp(err, "clone_host:", 11))
			reply_problem(r, 422, "BAD_FIELD", clone_of(row),
			              "SA %lld (SPI 0x%08x %s) serves host %s, outside the new %s selector; change or delete "
			              "it first", (long long)sa->id, (unsigned)sa->spi, sa->direction, sa->clone_host,
			              clone_of(row));
		else
			reply_problem(r, 422, "BAD_FIELD", changed_field(row, err),
			              "SA %lld (SPI 0x%08x %s, %s) would no longer fit: %s; change or delete it first",
			              (long long)sa->id, (unsigned)sa->spi, sa->direction, sa->protocol, why);
	}
	free(sas);
	return rc ? -1 : 0;
}

/* PUT replaces every field; the id is the path's, and the position is kept unless "order" is given. */
void policies_put(struct req *r)
{
	struct db_policy row, old;
	int64_t id = req_param_id(r, 0);
	int rc;

	if (id < 0)
		return;
	if ((rc = db_policy_get(r->d->db, id, &old))) {
		reply_db_error(r, rc);
		return;
	}
	if (policy_from_body(r, &row))
		return;
	if (row.id && row.id != id) {
		reply_problem(r, 422, "BAD_FIELD", "id", "%lld differs from the policy in the path (%lld)",
		              (long long)row.id, (long long)id);
		return;
	}
	row.id = id;
	if (clone_change_ok(r, &old, &row) || change_begin(r))
		return;
	if ((rc = db_policy_update(r->d->db, &row)) || (rc = db_policy_get(r->d->db, id, &row))) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	if (sas_still_fit(r, &row)) {
		change_abort(r);
		return;
	}
	finish_with_row(r, 200, id, "policy.update");
}

/* Deleting a policy deletes its SAs (the db cascades); the reply says how many went with it. */
void policies_delete(struct req *r)
{
	struct db_sa_filter f = { 0 };
	struct db_policy row;
	int64_t id = req_param_id(r, 0), nsas = 0;
	char obj[48];
	int rc;

	if (id < 0)
		return;
	if ((rc = db_policy_get(r->d->db, id, &row))) {
		reply_db_error(r, rc);
		return;
	}
	if (change_begin(r))
		return;
	f.policy_id = id;
	if ((rc = db_sa_count(r->d->db, &f, &nsas)) || (rc = db_policy_delete(r->d->db, id))) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	object_name(obj, sizeof obj, id);
	change_finish(r, 200, json_pack("{s:I, s:I}", "id", (json_int_t)id, "deleted_sas", (json_int_t)nsas),
	              "policy.delete", obj, json_pack("{s:s, s:I}", "name", row.name, "deleted_sas", (json_int_t)nsas));
}

/*
 * {"ids": [...]} lists every policy exactly once in its new order. Checked
 * here, before the transaction, so each mistake is a 422 naming "ids".
 */
static int reorder_ids(struct req *r, int64_t **ids_out, size_t *n_out)
{
	static const char *const allowed[] = { "ids", NULL };
	json_t *arr, *v;
	int64_t total = 0, *ids;
	size_t i, n;
	int rc;

	if (req_body_object(r, allowed))
		return -1;
	arr = json_object_get(r->body, "ids");
	if (!json_is_array(arr)) {
		reply_problem(r, 422, arr ? "BAD_FIELD" : "MISSING_FIELD", "ids", "expected an array of policy ids");
		return -1;
	}
	if ((rc = db_policy_count(r->d->db, &total))) {
		reply_db_error(r, rc);
		return -1;
	}
	n = json_array_size(arr);
	if ((int64_t)n != total) {
		reply_problem(r, 422, "BAD_FIELD", "ids", "lists %zu policies, there are %lld: name each once", n,
		              (long long)total);
		return -1;
	}
	if (!(ids = calloc(n ? n : 1, sizeof *ids))) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return -1;
	}
	json_array_foreach(arr, i, v) {
		struct db_policy p;

		ids[i] = json_is_integer(v) ? json_integer_value(v) : 0;
		for (size_t j = 0; ids[i] > 0 && j < i; j++)
			if (ids[j] == ids[i])
				ids[i] = -ids[i];
		if (ids[i] <= 0 || db_policy_get(r->d->db, ids[i], &p)) {
			reply_problem(r, 422, "BAD_FIELD", "ids", "ids[%zu]: %s", i,
			              ids[i] < 0 ? "named twice" : "not the id of a policy");
			free(ids);
			return -1;
		}
	}
	*ids_out = ids;
	*n_out = n;
	return 0;
}

void policies_reorder(struct req *r)
{
	int64_t *ids = NULL, total = 0;
	size_t n = 0;
	json_t *items, *detail;
	int rc;

	if (reorder_ids(r, &ids, &n))
		return;
	if (change_begin(r)) {
		free(ids);
		return;
	}
	rc = db_policy_reorder(r->d->db, ids, n);
	detail = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(detail, json_integer(ids[i]));
	free(ids);
	if (rc || (rc = db_policy_count(r->d->db, &total))) {
		json_decref(detail);
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	if (!(items = policy_array(r, 0, 0))) {
		json_decref(detail);
		change_abort(r);
		return;
	}
	change_finish(r, 200, page(items, total, 0, total), "policy.reorder", "policies",
	              json_pack("{s:o}", "ids", detail));
}
