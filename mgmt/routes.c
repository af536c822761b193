/* routes.c: every REST route of bitwd in one table: method, path, handler, who may call it. */
#include "bitwd.h"

#define RO ROLE_READONLY
#define RW ROLE_ADMIN

const struct route api_routes[] = {
	{ "GET", "/api/v1/health", health_get, ROLE_NONE, ROUTE_PUBLIC },
	{ "GET", "/api/v1/openapi.json", openapi_get, RO, 0 },
	{ "POST", "/api/v1/login", auth_login, ROLE_NONE, ROUTE_PUBLIC | ROUTE_NO_CSRF },
	{ "POST", "/api/v1/logout", auth_logout, RO, 0 },
	{ "GET", "/api/v1/whoami", auth_whoami, RO, 0 },
	{ "GET", "/api/v1/users", users_list, RW, 0 },
	{ "POST", "/api/v1/users", users_create, RW, 0 },
	{ "GET", "/api/v1/users/{id}", users_get, RW, 0 },
	{ "PATCH", "/api/v1/users/{id}", users_update, RO, 0 },  /* read-only users may change their own password */
	{ "DELETE", "/api/v1/users/{id}", users_delete, RW, 0 },
	{ "GET", "/api/v1/tokens", tokens_list, RO, 0 },
	{ "POST", "/api/v1/tokens", tokens_create, RO, 0 },      /* a token carries its owner's role */
	{ "DELETE", "/api/v1/tokens/{id}", tokens_delete, RO, 0 },
	{ "GET", "/api/v1/audit", audit_list, RW, 0 },
	{ "GET", "/api/v1/ports", ports_list, RO, 0 },
	{ "GET", "/api/v1/ports/{role}", ports_get, RO, 0 },
	{ "PUT", "/api/v1/ports/{role}", ports_put, RW, 0 },
	{ "GET", "/api/v1/options", options_get, RO, 0 },
	{ "PUT", "/api/v1/options", options_put, RW, 0 },
	{ "GET", "/api/v1/admin-state", admin_state_get, RO, 0 },
	{ "PUT", "/api/v1/admin-state", admin_state_put, RW, 0 },
	{ "GET", "/api/v1/config", config_get, RO, 0 },
	{ "PUT", "/api/v1/config", config_put, RW, 0 },
	{ "POST", "/api/v1/config", config_put, RW, 0 },
	{ "GET", "/api/v1/policies", policies_list, RO, 0 },
	{ "POST", "/api/v1/policies", policies_create, RW, 0 },
	{ "POST", "/api/v1/policies/reorder", policies_reorder, RW, 0 },
	{ "GET", "/api/v1/policies/{id}", policies_get, RO, 0 },
	{ "PUT", "/api/v1/policies/{id}", policies_put, RW, 0 },
	{ "DELETE", "/api/v1/policies/{id}", policies_delete, RW, 0 },
	{ "GET", "/api/v1/sas", sas_list, RO, 0 },
	{ "POST", "/api/v1/sas", sas_create, RW, 0 },
	{ "DELETE", "/api/v1/sas", sas_flush, RW, 0 },
	{ "GET", "/api/v1/sas/{id}", sas_get, RO, 0 },
	{ "DELETE", "/api/v1/sas/{id}", sas_delete, RW, 0 },
	{ "GET", "/api/v1/sad", sad_list, RO, 0 },
	{ "GET", "/api/v1/peers", peers_list, RO, 0 },
	{ "POST", "/api/v1/peers", peers_create, RW, 0 },
	{ "GET", "/api/v1/peers/{id}", peers_get, RO, 0 },
	{ "PUT", "/api/v1/peers/{id}", peers_put, RW, 0 },
	{ "DELETE", "/api/v1/peers/{id}", peers_delete, RW, 0 },
	{ "GET", "/api/v1/certificates", certs_list, RO, 0 },
	{ "POST", "/api/v1/certificates", certs_create, RW, 0 },
	{ "GET", "/api/v1/certificates/{id}", certs_get, RO, 0 },
	{ "DELETE", "/api/v1/certificates/{id}", certs_delete, RW, 0 },
	{ "POST", "/api/v1/certificates/{id}/verify", certs_verify, RO, 0 },
	{ "GET", "/api/v1/ike-sas", ike_sas_list, RO, 0 },
	{ "POST", "/api/v1/ike-sas", ike_sas_initiate, RW, 0 },
	{ "POST", "/api/v1/ike-sas/{id}/rekey", ike_sas_rekey, RW, 0 },
	{ "DELETE", "/api/v1/ike-sas/{id}", ike_sas_terminate, RW, 0 },
	{ "GET", "/api/v1/stats", stats_get, RO, 0 },
	{ "GET", "/metrics", metrics_get, RO, 0 },
	{ "GET", "/api/v1/events", events_stream, RO, 0 },
	{ "GET", "/api/v1/events/backlog", events_backlog, RO, 0 },
};

const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
