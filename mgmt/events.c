/* events.c: what happened (wire events, configuration changes) kept in a ring backlog and fanned out to SSE streams. */
#include "events.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ev_sub {
	struct stream *s;
	char *filter;                 /* NULL = every type */
};

struct events {
	struct ev_item *ring;         /* ring[(first + i) % cap], i < count, oldest first */
	size_t cap, first, count;
	uint64_t last_id;             /* ids start at 1 and never repeat while bitwd runs */
	uint64_t published;
	struct ev_sub *subs;
	size_t nsubs, subcap;
};

struct events *events_new(size_t backlog)
{
	struct events *ev = calloc(1, sizeof *ev);

	if (!ev)
		return NULL;
	ev->cap = backlog ? backlog : 1;
	ev->ring = calloc(ev->cap, sizeof *ev->ring);
	if (!ev->ring) {
		free(ev);
		return NULL;
	}
	return ev;
}

static void item_clear(struct ev_item *it)
{
	json_decref(it->payload);
	free(it->data);
	memset(it, 0, sizeof *it);
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	for (size_t i = 0; i < ev->count; i++)
		item_clear(&ev->ring[(ev->first + i) % ev->cap]);
	for (size_t i = 0; i < ev->nsubs; i++)
		free(ev->subs[i].filter);
	free(ev->subs);
	free(ev->ring);
	free(ev);
}

/* "sa.*" and "sa." are prefixes; anything else names one type exactly. */
static bool token_matches(const char *tok, size_t n, const char *type)
{
	if (n && tok[n - 1] == '*')
		return strncmp(type, tok, n - 1) == 0;
	if (n && tok[n - 1] == '.')
		return strncmp(type, tok, n) == 0;
	return n && strlen(type) == n && strncmp(type, tok, n) == 0;
}

/*
 * A filter is a comma-separated list of types; "sa.*" (or "sa.") names a
 * family, so a dashboard can follow everything about SAs without knowing
 * every type that exists.
 */
bool events_type_matches(const char *filter, const char *type)
{
	const char *p = filter;

	if (!filter || !*filter)
		return true;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (token_matches(p, n, type))
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

static struct ev_item *ring_push(struct events *ev)
{
	struct ev_item *it;

	if (ev->count == ev->cap) {
		item_clear(&ev->ring[ev->first]);
		ev->first = (ev->first + 1) % ev->cap;
		ev->count--;
	}
	it = &ev->ring[(ev->first + ev->count) % ev->cap];
	ev->count++;
	return it;
}

static void sub_remove(struct events *ev, size_t i)
{
	free(ev->subs[i].filter);
	ev->subs[i] = ev->subs[--ev->nsubs];
}

/* Send one item to every stream that wants it; a stream that is gone is forgotten. */
static void fan_out(struct events *ev, const struct ev_item *it)
{
	for (size_t i = 0; i < ev->nsubs;) {
		if (!events_type_matches(ev->subs[i].filter, it->type)) {
			i++;
			continue;
		}
		if (stream_send(ev->subs[i].s, it->type, it->data, it->id) < 0)
			sub_remove(ev, i);
		else
			i++;
	}
}

/* Wall-clock time, for people reading the backlog (bitwd_now_ms is monotonic). */
static uint64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void events_publish(struct bitwd *d, const char *type, json_t *payload)
{
	struct events *ev = d ? d->ev : NULL;
	struct ev_item *it;
	char *data;

	if (!payload)
		payload = json_object();
	if (!ev || !type || !payload) {
		json_decref(payload);
		return;
	}
	/* Serialised once here, not once per stream. */
	data = json_dumps(payload, JSON_COMPACT);
	if (!data) {
		mlog(0, "events: cannot serialise a %s event", type);
		json_decref(payload);
		return;
	}
	it = ring_push(ev);
	it->id = ++ev->last_id;
	it->time_ms = unix_ms();
	snprintf(it->type, sizeof it->type, "%s", type);
	it->payload = payload;
	it->data = data;
	ev->published++;
	mlog(3, "event %llu %s", (unsigned long long)it->id, it->type);
	fan_out(ev, it);
}

void events_from_wire(struct bitwd *d, uint16_t type, json_t *payload)
{
	const char *name;

	switch (type) {
	case CTL_EV_ACQUIRE:
		name = "acquire";
		break;
	case CTL_EV_SA_SOFT_EXPIRE:
		name = "sa.soft_expire";
		break;
	case CTL_EV_SA_HARD_EXPIRE:
		name = "sa.hard_expire";
		break;
	case CTL_EV_IF_STATE:
		name = "port.state";
		break;
	default:
		return;  /* IKE_RECV belongs to the IKE engine, not to people watching */
	}
	events_publish(d, name, json_is_object(payload) ? json_deep_copy(payload) : json_object());
}

uint64_t events_published(const struct events *ev)
{
	return ev ? ev->published : 0;
}

uint64_t events_last_id(const struct events *ev)
{
	return ev ? ev->last_id : 0;
}

size_t events_backlog_count(const struct events *ev)
{
	return ev ? ev->count : 0;
}

const struct ev_item *events_at(const struct events *ev, size_t i)
{
	return ev && i < ev->count ? &ev->ring[(ev->first + i) % ev->cap] : NULL;
}

size_t events_first_after(const struct events *ev, uint64_t after)
{
	size_t lo = 0, hi = events_backlog_count(ev);

	/* ids increase along the ring, so a binary search finds the first one newer than `after` */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (events_at(ev, mid)->id <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int events_subscribe(struct events *ev, struct stream *s, const char *filter)
{
	struct ev_sub *n;

	if (!ev || !s)
		return -1;
	if (ev->nsubs == ev->subcap) {
		size_t cap = ev->subcap ? ev->subcap * 2 : 8;

		n = realloc(ev->subs, cap * sizeof *n);
		if (!n)
			return -1;
		ev->subs = n;
		ev->subcap = cap;
	}
	n = &ev->subs[ev->nsubs];
	n->s = s;
	n->filter = filter && *filter ? strdup(filter) : NULL;
	if (filter && *filter && !n->filter)
		return -1;
	ev->nsubs++;
	return 0;
}

void events_unsubscribe(struct events *ev, struct stream *s)
{
	for (size_t i = 0; ev && i < ev->nsubs; i++)
		if (ev->subs[i].s == s) {
			sub_remove(ev, i);
			return;
		}
}

size_t events_streams(const struct events *ev)
{
	return ev ? ev->nsubs : 0;
}
