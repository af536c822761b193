/* ctl.h: the control socket server inside bitw-wire (framing, JSON requests, events). */
#ifndef BITW_CTL_H
#define BITW_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct wire;
struct json_t;

#define CTL_MAX_CLIENTS 8

/*
 * SAs over the socket are named by (SPI, direction, protocol), as the
 * inbound SAD is keyed: an AH+ESP bundle's inbound AH and ESP SAs share one
 * SPI. GET_SPI therefore reserves an SPI free for both protocols, which
 * serves either SA or the pair; SA_ADD takes the pair's SAs one at a time in
 * any order (the bundle fails closed until it is whole); SA_DEL names the
 * protocol, or without one removes both. Events and STATS say "protocol".
 */
struct ctl_server;

/* Listen on path (an existing stale socket is replaced); mode 0660. */
struct ctl_server *ctl_server_new(const char *path, struct wire *w, char *err, size_t errlen);
void ctl_server_free(struct ctl_server *s);
/* Descriptors to poll (listener and clients); returns the count written (<= max). */
int ctl_server_fds(struct ctl_server *s, int *fds, int max);
/* Serve whatever is ready on fd without blocking. */
void ctl_server_handle(struct ctl_server *s, int fd);
/* Send an event to every connected client (payload consumed/decref'd). */
void ctl_server_event(struct ctl_server *s, uint16_t type, struct json_t *payload);
void ctl_server_ike_recv(struct ctl_server *s, const struct ctl_ike_dgram *d, const uint8_t *data, uint32_t len);
/* Events not delivered because a client's socket buffer was full (for stats). */
uint64_t ctl_server_events_lost(const struct ctl_server *s);

/* "SPD_SET", "ACQUIRE", ...: for logs and clients; inline so a client need not link the server. */
static inline const char *ctl_type_name(uint16_t type)
{
	switch (type) {
	case CTL_HELLO: return "HELLO";
	case CTL_SPD_SET: return "SPD_SET";
	case CTL_SA_ADD: return "SA_ADD";
	case CTL_SA_DEL: return "SA_DEL";
	case CTL_SA_FLUSH: return "SA_FLUSH";
	case CTL_GET_SPI: return "GET_SPI";
	case CTL_INITIAL_CONTACT: return "INITIAL_CONTACT";
	case CTL_STATS: return "STATS";
	case CTL_IKE_SEND: return "IKE_SEND";
	case CTL_CONFIG_GET: return "CONFIG_GET";
	case CTL_SA_LIST: return "SA_LIST";
	case CTL_CONFIG_SET: return "CONFIG_SET";
	case CTL_EV_ACQUIRE: return "ACQUIRE";
	case CTL_EV_SA_SOFT_EXPIRE: return "SA_SOFT_EXPIRE";
	case CTL_EV_SA_HARD_EXPIRE: return "SA_HARD_EXPIRE";
	case CTL_EV_IKE_RECV: return "IKE_RECV";
	case CTL_EV_IF_STATE: return "IF_STATE";
	default: return "UNKNOWN";
	}
}

#endif
