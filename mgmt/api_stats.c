/* api_stats.c: counters (/stats, /metrics), the live SAD, and the event stream and backlog. */
#include "bitwd.h"
#include "events.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

/* Handlers named in routes.c. */
void stats_get(struct req *r);
void metrics_get(struct req *r);
void sad_list(struct req *r);
void events_stream(struct req *r);
void events_backlog(struct req *r);

#define WIRE_TIMEOUT_MS 2000
#define LIST_DEFAULT 100
#define LIST_MAX 1000

/* ---- asking the wire ---- */

/* The reply of a payload-less request, or -XE_IO when the wire is not there. */
static int wire_ask(struct bitwd *d, uint16_t type, json_t **reply)
{
	json_t *req;
	int rc;

	*reply = NULL;
	if (!d->wl || !wirelink_up(d->wl))
		return -XE_IO;
	req = json_object();
	rc = wirelink_request(d->wl, type, req, reply, WIRE_TIMEOUT_MS);
	json_decref(req);
	if (rc == 0 && !json_is_object(*reply))
		rc = -XE_BAD_MESSAGE;
	if (rc) {
		json_decref(*reply);
		*reply = NULL;
	}
	return rc;
}

static void reply_wire_error(struct req *r, int rc)
{
	if (rc == -XE_IO)
		reply_problem(r, 503, "WIRE_DOWN", NULL, "bitw-wire is not connected");
	else
		reply_problem(r, 502, "WIRE_REJECTED", NULL, "bitw-wire answered %s", xe_name(rc));
}

/* ---- bitwd's own counters ---- */

static int64_t logins_failed(struct bitwd *d)
{
	/* started_ms is monotonic; the audit log keeps unix seconds */
	int64_t up_s = (int64_t)((bitwd_now_ms() - d->started_ms) / 1000);
	struct db_audit_filter f = { .action = "login.failed", .since = (int64_t)time(NULL) - up_s - 1 };
	int64_t n = 0;

	if (!d->db || db_audit_count(d->db, &f, &n) < 0)
		return 0;
	return n;
}

static json_t *bitwd_counters(struct bitwd *d)
{
	uint64_t now = bitwd_now_ms();

	return json_pack("{s:I,s:I,s:I,s:I,s:i,s:b,s:I}", "uptime_s",
	                 (json_int_t)(now > d->started_ms ? (now - d->started_ms) / 1000 : 0), "requests",
	                 (json_int_t)d->requests, "logins_failed", (json_int_t)logins_failed(d), "events_published",
	                 (json_int_t)events_published(d->ev), "event_streams", (int)events_streams(d->ev), "dirty",
	                 d->dirty, "wire_events_dropped", (json_int_t)wirelink_events_dropped(d->wl));
}

void stats_get(struct req *r)
{
	json_t *out = NULL;
	int rc = wire_ask(r->d, CTL_STATS, &out);

	/* A wire that is down is a fact to report, not a failure of this request. */
	if (rc && rc != -XE_IO)
		mlog(1, "stats: bitw-wire answered %s", xe_name(rc));
	if (!out)
		out = json_object();
	json_object_set_new(out, "wire", json_string(rc == 0 ? "up" : "down"));
	json_object_set_new(out, "bitwd", bitwd_counters(r->d));
	reply_json(r, 200, out);
}

/* ---- /metrics: Prometheus text format 0.0.4 ---- */

/* Label values escape backslash, double quote and newline; nothing else needs it. */
static void put_label(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s=\"", name);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample; labels are name/value pairs ending with NULL. */
static void sample(FILE *f, const char *name, json_int_t v, ...)
{
	va_list ap;
	const char *k;
	bool first = true;

	fputs(name, f);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *))) {
		fputc(first ? '{' : ',', f);
		put_label(f, k, va_arg(ap, const char *));
		first = false;
	}
	va_end(ap);
	fprintf(f, "%s %" JSON_INTEGER_FORMAT "\n", first ? "" : "}", v);
}

static json_int_t num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void port_metrics(FILE *f, json_t *ports)
{
	static const struct { const char *key, *metric, *help; } m[] = {
		{ "rx_packets", "bitw_port_rx_packets_total", "Frames received on the port." },
		{ "rx_bytes", "bitw_port_rx_bytes_total", "Bytes received on the port." },
		{ "tx_packets", "bitw_port_tx_packets_total", "Frames sent on the port." },
		{ "tx_bytes", "bitw_port_tx_bytes_total", "Bytes sent on the port." },
		{ "tx_errors", "bitw_port_tx_errors_total", "Frames the port failed to send." },
	};
	static const char *const names[] = { "red", "black" };

	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		family(f, m[i].metric, "counter", m[i].help);
		for (size_t p = 0; p < 2; p++) {
			json_t *o = json_object_get(ports, names[p]);

			if (o)
				sample(f, m[i].metric, num(o, m[i].key), "port", names[p], "interface", str(o, "interface"),
				       NULL);
		}
	}
	family(f, "bitw_port_up", "gauge", "1 when the port's link is up.");
	for (size_t p = 0; p < 2; p++) {
		json_t *o = json_object_get(ports, names[p]);

		if (o)
			sample(f, "bitw_port_up", json_is_true(json_object_get(o, "link")), "port", names[p], "interface",
			       str(o, "interface"), NULL);
	}
}

static void policy_metrics(FILE *f, json_t *pols)
{
	static const char *const dirs[] = { "out", "in" };
	static const char *const pk[] = { "out_packets", "in_packets" }, *const bk[] = { "out_bytes", "in_bytes" };
	size_t i;
	json_t *p;

	family(f, "bitw_policy_packets_total", "counter", "Packets that matched the policy.");
	json_array_foreach(pols, i, p)
		for (int d = 0; d < 2; d++)
			sample(f, "bitw_policy_packets_total", num(p, pk[d]), "policy", str(p, "name"), "direction", dirs[d],
			       NULL);
	family(f, "bitw_policy_bytes_total", "counter", "Bytes of the packets that matched the policy.");
	json_array_foreach(pols, i, p)
		for (int d = 0; d < 2; d++)
			sample(f, "bitw_policy_bytes_total", num(p, bk[d]), "policy", str(p, "name"), "direction", dirs[d],
			       NULL);
	family(f, "bitw_policy_drops_total", "counter", "Packets that matched the policy and were dropped.");
	json_array_foreach(pols, i, p)
		sample(f, "bitw_policy_drops_total", num(p, "drops"), "policy", str(p, "name"), NULL);
}

static void sa_metrics(FILE *f, json_t *sas)
{
	static const struct { const char *key, *metric, *help; } m[] = {
		{ "packets", "bitw_sa_packets_total", "Packets processed by the SA." },
		{ "bytes", "bitw_sa_bytes_total", "Bytes processed by the SA." },
		{ "errors", "bitw_sa_errors_total", "Packets the SA failed to process." },
		{ "replay_drops", "bitw_sa_replay_drops_total", "Inbound packets dropped by the replay window." },
		{ "auth_drops", "bitw_sa_auth_drops_total", "Inbound packets that failed the integrity check." },
	};
	size_t i;
	json_t *s;
	char spi[24];

	for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
		family(f, m[k].metric, "counter", m[k].help);
		json_array_foreach(sas, i, s) {
			snprintf(spi, sizeof spi, "%" JSON_INTEGER_FORMAT, num(s, "spi"));
			sample(f, m[k].metric, num(s, m[k].key), "spi", spi, "direction", str(s, "direction"), "policy",
			       str(s, "policy"), NULL);
		}
	}
}

static void drop_metrics(FILE *f, json_t *drops)
{
	const char *reason;
	json_t *v;

	family(f, "bitw_drops_total", "counter", "Packets dropped by the wire, by reason.");
	json_object_foreach(drops, reason, v)
		sample(f, "bitw_drops_total", json_integer_value(v), "reason", reason, NULL);
}

static void bitwd_metrics(FILE *f, struct bitwd *d)
{
	family(f, "bitwd_http_requests_total", "counter", "Requests bitwd answered.");
	sample(f, "bitwd_http_requests_total", (json_int_t)d->requests, NULL);
	family(f, "bitwd_logins_failed_total", "counter", "Failed logins since bitwd started.");
	sample(f, "bitwd_logins_failed_total", logins_failed(d), NULL);
	family(f, "bitwd_events_published_total", "counter", "Events published since bitwd started.");
	sample(f, "bitwd_events_published_total", (json_int_t)events_published(d->ev), NULL);
	family(f, "bitwd_config_dirty", "gauge", "1 while the stored configuration is not applied on the wire.");
	sample(f, "bitwd_config_dirty", d->dirty, NULL);
	family(f, "bitwd_wire_events_dropped_total", "counter", "Events from bitw-wire lost to a full queue.");
	sample(f, "bitwd_wire_events_dropped_total", (json_int_t)wirelink_events_dropped(d->wl), NULL);
}

void metrics_get(struct req *r)
{
	json_t *st = NULL;
	int rc = wire_ask(r->d, CTL_STATS, &st);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		json_decref(st);
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return;
	}
	family(f, "bitw_wire_up", "gauge", "1 when bitwd is connected to bitw-wire.");
	sample(f, "bitw_wire_up", rc == 0, NULL);
	if (st) {
		port_metrics(f, json_object_get(st, "ports"));
		policy_metrics(f, json_object_get(st, "policies"));
		sa_metrics(f, json_object_get(st, "sas"));
		drop_metrics(f, json_object_get(st, "drops"));
	}
	bitwd_metrics(f, r->d);
	json_decref(st);
	if (fclose(f) != 0) {
		free(text);
		reply_problem(r, 500, "INTERNAL", NULL, "out of memory");
		return;
	}
	reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

/* ---- /sad: the live SAD ---- */

/* 0 with offset/limit, -1 after replying 400. */
static int paging(struct req *r, int64_t *offset, int64_t *limit)
{
	if (req_query_int(r, "offset", 0, 0, INT64_MAX, offset) < 0)
		return -1;
	return req_query_int(r, "limit", LIST_DEFAULT, 1, LIST_MAX, limit);
}

static json_t *page(json_t *items, int64_t total, int64_t offset, int64_t limit)
{
	return json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "offset",
	                 (json_int_t)offset, "limit", (json_int_t)limit);
}

static bool sa_wanted(json_t *sa, const char *policy, const char *dir)
{
	return (!policy || !strcmp(str(sa, "policy"), policy)) && (!dir || !strcmp(str(sa, "direction"), dir));
}

void sad_list(struct req *r)
{
	const char *policy = req_query(r, "policy"), *dir = req_query(r, "direction");
	int64_t offset, limit, total = 0;
	json_t *reply, *items, *sa;
	size_t i;
	int rc;

	if (paging(r, &offset, &limit) < 0)
		return;
	if (dir && strcmp(dir, "in") && strcmp(dir, "out")) {
		reply_problem(r, 400, "BAD_FIELD", "direction", "direction is \"in\" or \"out\"");
		return;
	}
	rc = wire_ask(r->d, CTL_SA_LIST, &reply);
	if (rc) {
		reply_wire_error(r, rc);
		return;
	}
	items = json_array();
	json_array_foreach(json_object_get(reply, "sas"), i, sa) {
		if (!sa_wanted(sa, policy, dir))
			continue;
		if (total >= offset && total - offset < limit)
			json_array_append(items, sa);
		total++;
	}
	json_decref(reply);
	reply_json(r, 200, page(items, total, offset, limit));
}

/* ---- events: the SSE stream and the backlog ---- */

static json_t *item_json(const struct ev_item *it)
{
	return json_pack("{s:I,s:s,s:I,s:O}", "id", (json_int_t)it->id, "type", it->type, "time_ms",
	                 (json_int_t)it->time_ms, "data", it->payload);
}

/* Where a client resumes: ?after= wins over the Last-Event-ID header an EventSource sends on reconnect. */
static int resume_point(struct req *r, uint64_t *after)
{
	const char *hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
	int64_t v = 0;

	if (req_query(r, "after"))
		return req_query_int(r, "after", 0, 0, INT64_MAX, &v) < 0 ? -1 : (*after = (uint64_t)v, 0);
	*after = UINT64_MAX;  /* neither: only what happens from now on */
	if (hdr && *hdr) {
		char *end;
		unsigned long long id = strtoull(hdr, &end, 10);

		/* A malformed id is ignored rather than refused: the stream still works, without a replay. */
		if (*end == '\0' && hdr[0] != '-')
			*after = id;
	}
	return 0;
}

void events_stream(struct req *r)
{
	struct events *ev = r->d->ev;
	const char *filter = req_query(r, "type");
	struct stream *s;
	uint64_t after;

	if (resume_point(r, &after) < 0)
		return;
	if (!ev) {
		reply_problem(r, 503, "INTERNAL", NULL, "events are not available");
		return;
	}
	s = reply_stream(r);
	if (!s)
		return;
	for (size_t i = events_first_after(ev, after); i < events_backlog_count(ev); i++) {
		const struct ev_item *it = events_at(ev, i);

		if (events_type_matches(filter, it->type) && stream_send(s, it->type, it->data, it->id) < 0)
			return;
	}
	if (events_subscribe(ev, s, filter) < 0)
		mlog(0, "events: no memory for a new stream");
}

void events_backlog(struct req *r)
{
	struct events *ev = r->d->ev;
	const char *filter = req_query(r, "type");
	int64_t after, limit, total = 0;
	json_t *items = json_array();

	if (req_query_int(r, "after", 0, 0, INT64_MAX, &after) < 0 ||
	    req_query_int(r, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit) < 0) {
		json_decref(items);
		return;
	}
	for (size_t i = events_first_after(ev, (uint64_t)after); i < events_backlog_count(ev); i++) {
		const struct ev_item *it = events_at(ev, i);

		if (!events_type_matches(filter, it->type))
			continue;
		if (total++ < limit)
			json_array_append_new(items, item_json(it));
	}
	reply_json(r, 200,
	           json_pack("{s:o,s:I,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "after",
	                     (json_int_t)after, "limit", (json_int_t)limit, "last_id",
	                     (json_int_t)events_last_id(ev)));
}
