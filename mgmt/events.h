/* events.h: the event backlog as api_stats.c reads it (private to events.c and api_stats.c). */
#ifndef BITW_EVENTS_H
#define BITW_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitwd.h"

struct ev_item {
	uint64_t id;
	uint64_t time_ms;             /* unix milliseconds */
	char type[48];
	json_t *payload;              /* owned */
	char *data;                   /* payload as compact JSON, what a stream is sent */
};

/* Backlog in id order, oldest first: i < events_backlog_count(). */
size_t events_backlog_count(const struct events *ev);
const struct ev_item *events_at(const struct events *ev, size_t i);
/* Index of the first backlog item with id > after (== count when none). */
size_t events_first_after(const struct events *ev, uint64_t after);
uint64_t events_last_id(const struct events *ev);
uint64_t events_published(const struct events *ev);
size_t events_streams(const struct events *ev);

/* A filter is "type[,type...]", where "sa.*" names a family; NULL or "" matches all. */
bool events_type_matches(const char *filter, const char *type);

/* Start sending new events to a stream (after its backlog was replayed); -1 on no memory. */
int events_subscribe(struct events *ev, struct stream *s, const char *filter);
/* Stop sending to a stream. Not needed when it closes: stream_send returning -1 already forgets it. */
void events_unsubscribe(struct events *ev, struct stream *s);

#endif
