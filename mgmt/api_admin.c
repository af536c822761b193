/* api_admin.c: REST for the box's administrative state: secure, bypass all, drop all. */
#include "bitwd.h"

#include <string.h>

static const char *const admin_fields[] = { "state", NULL };

void admin_state_get(struct req *r)
{
	reply_json(r, 200, json_pack("{s:s}", "state", admin_state_name(conf_admin_state(r->d))));
}

/* The state is options.admin_state: stored with the options, so export and import carry it. */
void admin_state_put(struct req *r)
{
	const char *want, *was;
	json_t *opt;
	int rc, st = -1;

	if (req_body_object(r, admin_fields) < 0)
		return;
	want = json_string_value(json_object_get(r->body, "state"));
	for (int i = ADMIN_SECURE; want && i <= ADMIN_DROP; i++)
		if (strcmp(want, admin_state_name((uint8_t)i)) == 0)
			st = i;
	if (st < 0) {
		reply_problem(r, 422, want ? "BAD_FIELD" : "MISSING_FIELD", "state",
		              "must be \"secure\", \"bypass\" (all traffic in clear) or \"drop\" (nothing passes)");
		return;
	}
	was = admin_state_name(conf_admin_state(r->d));
	if (change_begin(r))
		return;
	opt = conf_options_raw(r->d);
	json_object_set_new(opt, "admin_state", json_string(want));
	rc = conf_options_store(r->d, opt);
	json_decref(opt);
	if (rc < 0) {
		reply_db_error(r, rc);
		change_abort(r);
		return;
	}
	change_finish(r, 200, json_pack("{s:s}", "state", want), "admin_state.update", "admin-state",
	              json_pack("{s:s, s:s}", "state", want, "previous", was));
}
