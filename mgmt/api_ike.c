/* api_ike.c: /api/v1/ike-sas — the IKE SAs of the engine: list, initiate, rekey, terminate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitwd.h"
#include "ike/ike.h"

void ike_sas_list(struct req *r)
{
	json_t *items = ike_driver_sa_list(r->d);

	reply_json(r, 200, json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)json_array_size(items)));
}

/* Engine refusals as problems: a missing SA is 404, a busy or wrong state 409. */
static void reply_ike_error(struct req *r, int rc, const char *field)
{
	int status = rc == -IKE_E_NOT_FOUND ? 404 : rc == -IKE_E_BUSY || rc == -IKE_E_STATE ? 409 : 500;

	reply_problem(r, status, ike_err_name(rc), field, "%s", ike_strerror(rc));
}

static int64_t sa_id_param(struct req *r)
{
	char *end;
	unsigned long long v = strtoull(r->params[0], &end, 10);

	if (!r->params[0][0] || *end || v == 0) {
		reply_problem(r, 404, "NOT_FOUND", "id", "no IKE SA %s", r->params[0]);
		return -1;
	}
	return (int64_t)v;
}

/* {"peer": name or id}: bring up its IKE SA and the child SAs of its policies. 202: it runs in the background. */
void ike_sas_initiate(struct req *r)
{
	static const char *const fields[] = { "peer", NULL };
	struct db_peer p;
	json_t *v;
	char obj[48];
	int rc;

	if (req_body_object(r, fields))
		return;
	if (!(v = json_object_get(r->body, "peer"))) {
		reply_problem(r, 422, "MISSING_FIELD", "peer", "required (a peer's name or id)");
		return;
	}
	if (peer_ref_resolve(r, v, "peer", &p))
		return;
	if ((rc = ike_driver_initiate(r->d, (uint32_t)p.id)) < 0) {
		reply_ike_error(r, rc, "peer");
		return;
	}
	snprintf(obj, sizeof obj, "peer/%lld", (long long)p.id);
	audit(r, "ike.initiate", obj, json_pack("{s:s}", "name", p.name));
	reply_json(r, 202, json_pack("{s:I, s:s, s:s}", "peer_id", (json_int_t)p.id, "peer", p.name, "status",
	                             "initiating"));
}

/* {} rekeys the IKE SA; {"spi_in": n} one of its child SAs. */
void ike_sas_rekey(struct req *r)
{
	static const char *const fields[] = { "spi_in", NULL };
	int64_t id = sa_id_param(r);
	json_t *v;
	json_int_t spi = 0;
	char obj[48];
	int rc;

	if (id < 0)
		return;
	if (r->body && req_body_object(r, fields))
		return;
	v = r->body ? json_object_get(r->body, "spi_in") : NULL;
	if (v && (!json_is_integer(v) || (spi = json_integer_value(v)) < 256 || spi > UINT32_MAX)) {
		reply_problem(r, 422, "BAD_FIELD", "spi_in", "the inbound SPI of one of its child SAs");
		return;
	}
	if ((rc = ike_driver_rekey(r->d, (uint64_t)id, (uint32_t)spi)) < 0) {
		reply_ike_error(r, rc, spi ? "spi_in" : "id");
		return;
	}
	snprintf(obj, sizeof obj, "ike-sa/%lld", (long long)id);
	audit(r, "ike.rekey", obj, spi ? json_pack("{s:I}", "spi_in", spi) : NULL);
	reply_json(r, 202, json_pack("{s:I, s:s}", "id", (json_int_t)id, "status", "rekeying"));
}

void ike_sas_terminate(struct req *r)
{
	int64_t id = sa_id_param(r);
	char obj[48];
	int rc;

	if (id < 0)
		return;
	if ((rc = ike_driver_terminate(r->d, (uint64_t)id)) < 0) {
		reply_ike_error(r, rc, "id");
		return;
	}
	snprintf(obj, sizeof obj, "ike-sa/%lld", (long long)id);
	audit(r, "ike.terminate", obj, NULL);
	reply_json(r, 202, json_pack("{s:I, s:s}", "id", (json_int_t)id, "status", "deleting"));
}
