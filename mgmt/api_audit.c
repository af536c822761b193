/* api_audit.c: GET /audit, who changed what and when, newest first, filtered and paginated. */
#include <stdlib.h>

#include "bitwd.h"

void audit_list(struct req *r);

static json_t *audit_json(const struct db_audit *a)
{
	json_t *detail = a->detail ? json_loads(a->detail, 0, NULL) : NULL;

	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:s}", "id", (json_int_t)a->id, "time", (json_int_t)a->time,
	                 "user", a->user, "action", a->action, "object", a->object, "detail",
	                 detail ? detail : json_object(), "remote", a->remote);
}

void audit_list(struct req *r)
{
	struct db_audit_filter f = { .user = req_query(r, "user"), .action = req_query(r, "action") };
	struct db_audit *rows = NULL;
	int64_t offset, limit, total;
	int n;

	if (req_query_int(r, "offset", 0, 0, INT64_MAX, &offset) != 0 ||
	    req_query_int(r, "limit", 100, 1, 1000, &limit) != 0 ||
	    req_query_int(r, "since", 0, 0, INT64_MAX, &f.since) != 0 ||
	    req_query_int(r, "until", 0, 0, INT64_MAX, &f.until) != 0)
		return;
	if ((n = db_audit_count(r->d->db, &f, &total)) < 0 ||
	    (n = db_audit_list(r->d->db, &f, offset, limit, &rows)) < 0) {
		reply_db_error(r, n);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(items, audit_json(&rows[i]));
	db_audit_free_list(rows, (size_t)n);
	reply_json(r, 200, json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total, "offset",
	                             (json_int_t)offset, "limit", (json_int_t)limit));
}
