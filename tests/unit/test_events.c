/* test_events.c: bitwd's event backlog and fan-out (mgmt/events.c) against recording streams. */
#include "mgmt/events.h"

#include <stdarg.h>

#include "check.h"

/* What http.c would send: recorded per stream, and a stream can be made to have gone away. */
struct stream {
	int sent;
	bool closed;
	char last_event[48];
	char last_data[256];
	uint64_t last_id;
};

int stream_send(struct stream *s, const char *event, const char *data, uint64_t id)
{
	if (s->closed)
		return -1;
	s->sent++;
	snprintf(s->last_event, sizeof s->last_event, "%s", event);
	snprintf(s->last_data, sizeof s->last_data, "%s", data);
	s->last_id = id;
	return 0;
}

void mlog(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static void publish_n(struct bitwd *d, const char *type, int n)
{
	for (int i = 0; i < n; i++)
		events_publish(d, type, json_pack("{s:i}", "n", i));
}

/* As wirelink delivers them: the payload stays the caller's. */
static void from_wire(struct bitwd *d, uint16_t type, json_t *payload)
{
	events_from_wire(d, type, payload);
	json_decref(payload);
}

static void test_backlog_ring(void)
{
	struct bitwd d = { .ev = events_new(4) };

	CHECK(d.ev != NULL, "events_new");
	publish_n(&d, "policy.changed", 6);
	CHECK_EQ(events_backlog_count(d.ev), 4, "the backlog keeps only its capacity");
	CHECK_EQ(events_at(d.ev, 0)->id, 3, "the oldest events were dropped first");
	CHECK_EQ(events_at(d.ev, 3)->id, 6, "ids increase by one per event");
	CHECK_EQ(events_last_id(d.ev), 6, "last id");
	CHECK_EQ(events_published(d.ev), 6, "published counts every event, dropped or not");
	CHECK(!strcmp(events_at(d.ev, 3)->data, "{\"n\":5}"), "data is the payload as compact JSON");
	CHECK(events_at(d.ev, 3)->time_ms > 1600000000000ull, "events carry wall-clock time");
	CHECK_EQ(events_first_after(d.ev, 0), 0, "after 0: the whole backlog");
	CHECK_EQ(events_first_after(d.ev, 4), 2, "after 4: from id 5");
	CHECK_EQ(events_first_after(d.ev, 6), 4, "after the newest: nothing");
	CHECK_EQ(events_first_after(d.ev, 99), 4, "after an id from the future: nothing");
	CHECK(events_at(d.ev, 4) == NULL, "no item past the end");
	events_free(d.ev);
}

static void test_filters(void)
{
	CHECK(events_type_matches(NULL, "acquire"), "no filter matches all");
	CHECK(events_type_matches("", "acquire"), "empty filter matches all");
	CHECK(events_type_matches("acquire", "acquire"), "exact type");
	CHECK(!events_type_matches("acquire", "acquired"), "exact means exact, not a prefix");
	CHECK(!events_type_matches("acquired", "acquire"), "a longer name does not match");
	CHECK(events_type_matches("port.state,acquire", "acquire"), "second of a list");
	CHECK(events_type_matches("sa.*", "sa.soft_expire"), "family with *");
	CHECK(events_type_matches("sa.", "sa.hard_expire"), "family with a trailing dot");
	CHECK(!events_type_matches("sa.*", "saw.x"), "a family is a dotted prefix");
	CHECK(!events_type_matches("sa", "sa.soft_expire"), "no dot, no family");
	CHECK(events_type_matches("*", "anything"), "* matches all");
	CHECK(!events_type_matches(",", "acquire"), "empty list items match nothing");
}

static void test_fan_out(void)
{
	struct bitwd d = { .ev = events_new(16) };
	struct stream all = { 0 }, sa = { 0 }, gone = { 0 };

	CHECK_EQ(events_subscribe(d.ev, &all, NULL), 0, "subscribe to all");
	CHECK_EQ(events_subscribe(d.ev, &sa, "sa.*"), 0, "subscribe to SA events");
	CHECK_EQ(events_subscribe(d.ev, &gone, ""), 0, "subscribe a third");
	CHECK_EQ(events_streams(d.ev), 3, "three streams");

	from_wire(&d, CTL_EV_SA_SOFT_EXPIRE,
	                 json_pack("{s:i,s:s,s:s}", "spi", 4097, "direction", "out", "policy", "a-to-b"));
	CHECK_EQ(all.sent, 1, "every stream gets an event");
	CHECK_EQ(sa.sent, 1, "a filtered stream gets the events it asked for");
	CHECK(!strcmp(sa.last_event, "sa.soft_expire"), "SA_SOFT_EXPIRE is sa.soft_expire (%s)", sa.last_event);
	CHECK(strstr(sa.last_data, "\"spi\":4097") != NULL, "the wire's payload is the data (%s)", sa.last_data);
	CHECK_EQ(sa.last_id, 1, "the SSE id is the event id");

	gone.closed = true;
	from_wire(&d, CTL_EV_IF_STATE, json_pack("{s:s,s:b}", "port", "red", "up", 0));
	CHECK(!strcmp(all.last_event, "port.state"), "IF_STATE is port.state");
	CHECK_EQ(sa.sent, 1, "a filtered stream does not get other types");
	CHECK_EQ(events_streams(d.ev), 2, "a stream that closed is forgotten");

	events_unsubscribe(d.ev, &sa);
	from_wire(&d, CTL_EV_SA_HARD_EXPIRE, json_pack("{s:i}", "spi", 1));
	CHECK_EQ(sa.sent, 1, "an unsubscribed stream gets nothing more");
	CHECK(!strcmp(all.last_event, "sa.hard_expire"), "SA_HARD_EXPIRE is sa.hard_expire");
	from_wire(&d, CTL_EV_ACQUIRE, json_pack("{s:s}", "policy", "a-to-b"));
	CHECK(!strcmp(all.last_event, "acquire"), "ACQUIRE is acquire");
	from_wire(&d, CTL_EV_IKE_RECV, NULL);
	CHECK_EQ(all.sent, 4, "IKE datagrams are not events");
	CHECK_EQ(events_last_id(d.ev), 4, "and take no id");
	from_wire(&d, CTL_EV_IF_STATE, json_string("not an object"));
	CHECK_EQ(events_last_id(d.ev), 5, "a payload that is not an object still makes an event");
	CHECK(!strcmp(all.last_data, "{}"), "with empty data");
	events_free(d.ev);
}

static void test_no_events(void)
{
	struct bitwd d = { 0 };

	events_publish(&d, "config.changed", json_object());  /* before events_new: dropped, not a crash */
	events_publish(NULL, "config.changed", json_object());
	CHECK_EQ(events_backlog_count(NULL), 0, "no backlog without events");
	CHECK(events_at(NULL, 0) == NULL, "nothing at 0");
	CHECK_EQ(events_first_after(NULL, 0), 0, "first after on nothing");
	events_free(NULL);
}

int main(void)
{
	test_backlog_ring();
	test_filters();
	test_fan_out();
	test_no_events();
	return check_done();
}
