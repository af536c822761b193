/* api_health.c: the public liveness answer and the OpenAPI document of the whole API. */
#include <stdlib.h>
#include <string.h>

#include "bitwd.h"

#ifndef BITW_VERSION
#define BITW_VERSION "unknown"
#endif

/* Generated at build time by openapi/merge.py from the fragments (openapi_doc.c). */
extern const unsigned char bitwd_openapi_json[];
extern const size_t bitwd_openapi_json_len;

void health_get(struct req *r);
void openapi_get(struct req *r);

void health_get(struct req *r)
{
	struct bitwd *d = r->d;
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "status", "ok", "wire", wirelink_up(d->wl) ? "up" : "down",
	                      "version", BITW_VERSION, "uptime_s", (json_int_t)((bitwd_now_ms() - d->started_ms) / 1000),
	                      "admin_state", admin_state_name((uint8_t)conf_admin_state(d)));
	if (!j) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return;
	}
	reply_json(r, 200, j);
}

void openapi_get(struct req *r)
{
	char *doc = malloc(bitwd_openapi_json_len + 1);
	if (!doc) {
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return;
	}
	memcpy(doc, bitwd_openapi_json, bitwd_openapi_json_len);
	doc[bitwd_openapi_json_len] = '\0';
	reply_text(r, 200, "application/json", doc);
}
