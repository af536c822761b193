/* ctl.h: the control socket server inside bitw-wire (framing, JSON requests, events). */
#ifndef BITW_CTL_H
#define BITW_CTL_H

#include <stdint.h>

#include "wire.h"

struct wire;
struct json_t;

#define CTL_MAX_CLIENTS 8

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

#endif
