/* wirelink.c: bitwd's client of bitw-wire's control socket: connect with back-off, requests, events, resync. */
#include "bitwd.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "wire/ctl.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 1000   /* a restarted wire is found within a second (resync promised in < 5 s) */
#define HELLO_TIMEOUT_MS 2000
#define DIRTY_RETRY_MS 2000
#define EVQ_MAX 256               /* events held while a request waits for its reply */
/*
 * The queue also holds the replies to asynchronous requests, never more than
 * WIRE_ASYNC_MAX of them (a request's slot is freed when its reply is
 * delivered, not when it arrives): they are never dropped to make room for
 * events (a lost SA_ADD refusal would leave a child up without its SAs).
 */
#define QUEUE_SIZE (EVQ_MAX + WIRE_ASYNC_MAX)
#define SPI_POOL 32               /* inbound SPIs reserved at the wire ahead of use */
#define SPI_TIMEOUT_MS 2000
#define ASYNC_TIMEOUT_MS 10000    /* an asynchronous request unanswered this long counts as refused */

struct queued_event {
	uint16_t type;
	json_t *payload;
	uint8_t *dgram;               /* IKE_RECV: struct ctl_ike_dgram then the datagram (malloc'd) */
	uint32_t dgram_len;
	uint32_t seq;                 /* a reply's: its slot in async[] is freed on delivery */
};

/* An asynchronous request from when it is sent until its reply has been delivered. */
struct async_slot {
	uint32_t seq;
	uint64_t deadline_ms;         /* no reply by then: a refusal is made up (ASYNC_TIMEOUT_MS) */
	bool queued;                  /* its reply (or the made-up one) waits in the queue */
};

struct wirelink {
	struct bitwd *d;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	wire_event_fn on_event;
	int fd;                       /* -1 while disconnected */
	bool up;                      /* HELLO answered */
	uint32_t seq;
	uint64_t next_try_ms;
	int backoff_ms;
	uint64_t next_push_ms;
	bool down_logged;             /* "not reachable" said once per outage */
	int last_push_rc;             /* to log a rejected push once, not on every retry */
	uint8_t *rx;                  /* one datagram (CTL_MAX_MSG) */
	struct queued_event q[QUEUE_SIZE];
	size_t q_head, q_len;
	size_t q_events;              /* entries of q that are events, not replies (at most EVQ_MAX) */
	uint64_t events_dropped;
	struct async_slot async[WIRE_ASYNC_MAX]; /* sent, reply not delivered yet */
	size_t nasync;
	bool delivering;
	bool fresh;                   /* connected, the stored configuration not yet taken: a resync follows */
	char ifname[2][IF_NAMESIZE];  /* the interfaces the running wire was started with: red, black */
	json_int_t wire_pid;          /* the process HELLO named: its reservations are the pool's */
	uint32_t spi_pool[SPI_POOL];  /* reserved by that process, not used yet */
	size_t nspi;
	bool spi_one_at_a_time;       /* that process refused GET_SPI {"count"} (an older wire) */
};

static const char *role_name(int i)
{
	return i == 0 ? "red" : "black";
}

struct wirelink *wirelink_new(struct bitwd *d, const char *path, wire_event_fn on_event)
{
	struct wirelink *wl = calloc(1, sizeof *wl);

	if (!wl)
		return NULL;
	wl->rx = malloc(CTL_MAX_MSG);
	if (!wl->rx || strlen(path) >= sizeof wl->path) {
		free(wl->rx);
		free(wl);
		return NULL;
	}
	memcpy(wl->path, path, strlen(path) + 1);
	wl->d = d;
	wl->on_event = on_event;
	wl->fd = -1;
	wl->backoff_ms = BACKOFF_MIN_MS;
	return wl;
}

static void event_free(struct queued_event *e)
{
	json_decref(e->payload);
	free(e->dgram);
}

static void queue_clear(struct wirelink *wl)
{
	while (wl->q_len) {
		event_free(&wl->q[wl->q_head]);
		wl->q_head = (wl->q_head + 1) % QUEUE_SIZE;
		wl->q_len--;
	}
	wl->q_events = 0;
}

void wirelink_free(struct wirelink *wl)
{
	if (!wl)
		return;
	if (wl->fd >= 0)
		close(wl->fd);
	queue_clear(wl);
	free(wl->rx);
	free(wl);
}

int wirelink_fd(struct wirelink *wl)
{
	return wl ? wl->fd : -1;
}

bool wirelink_up(const struct wirelink *wl)
{
	return wl && wl->fd >= 0 && wl->up;
}

const char *wirelink_ifname(const struct wirelink *wl, const char *role)
{
	if (!wirelink_up(wl))
		return "";
	return wl->ifname[strcmp(role, "red") == 0 ? 0 : 1];
}

/* The requests still waiting for a reply lose it with the connection; replies already queued stay theirs. */
static void async_forget_unanswered(struct wirelink *wl)
{
	for (size_t i = 0; i < wl->nasync;) {
		if (wl->async[i].queued)
			i++;
		else
			wl->async[i] = wl->async[--wl->nasync];
	}
}

static struct async_slot *async_find(struct wirelink *wl, uint32_t seq)
{
	for (size_t i = 0; i < wl->nasync; i++)
		if (wl->async[i].seq == seq)
			return &wl->async[i];
	return NULL;
}

static void async_release(struct wirelink *wl, uint32_t seq)
{
	struct async_slot *a = async_find(wl, seq);

	if (a)
		*a = wl->async[--wl->nasync];
}

static void link_down(struct wirelink *wl, const char *why)
{
	if (wl->fd < 0)
		return;
	if (wl->up)
		mlog(1, "wire: lost bitw-wire at %s: %s", wl->path, why);
	close(wl->fd);
	wl->fd = -1;
	wl->up = false;
	wl->down_logged = true;   /* the loss was said; retries stay quiet */
	wl->backoff_ms = BACKOFF_MIN_MS;
	wl->next_try_ms = bitwd_now_ms() + BACKOFF_MIN_MS;
	wl->ifname[0][0] = wl->ifname[1][0] = '\0';
	async_forget_unanswered(wl);
}

uint64_t wirelink_events_dropped(const struct wirelink *wl)
{
	return wl ? wl->events_dropped : 0;
}

/* ---- events ---- */

/* A reply to an asynchronous request, queued among the events (type CTL_SA_ADD without a datagram). */
static bool is_reply(const struct queued_event *e)
{
	return e->type == CTL_SA_ADD && !e->dgram;
}

/* Losing the oldest event is better than blocking the request that is waiting; replies stay. */
static void drop_oldest_event(struct wirelink *wl)
{
	for (size_t i = 0; i < wl->q_len; i++) {
		size_t at = (wl->q_head + i) % QUEUE_SIZE;

		if (is_reply(&wl->q[at]))
			continue;
		event_free(&wl->q[at]);
		for (size_t j = i; j > 0; j--)   /* the older entries move up one */
			wl->q[(wl->q_head + j) % QUEUE_SIZE] = wl->q[(wl->q_head + j - 1) % QUEUE_SIZE];
		wl->q_head = (wl->q_head + 1) % QUEUE_SIZE;
		wl->q_len--;
		wl->q_events--;
		if (wl->events_dropped++ == 0)
			mlog(1, "wire: event queue full, dropping the oldest events (counted in /stats)");
		return;
	}
}

static void queue_push(struct wirelink *wl, uint16_t type, json_t *payload, uint8_t *dgram, uint32_t dgram_len,
                       uint32_t seq)
{
	struct queued_event e = { type, payload, dgram, dgram_len, seq };

	if (!is_reply(&e) && wl->q_events == EVQ_MAX)
		drop_oldest_event(wl);
	if (wl->q_len == QUEUE_SIZE) {   /* cannot happen: queued replies hold async slots, WIRE_ASYNC_MAX at most */
		mlog(0, "wire: event queue full of replies; %s lost", ctl_type_name(type));
		wl->events_dropped++;
		event_free(&e);
		return;
	}
	wl->q[(wl->q_head + wl->q_len) % QUEUE_SIZE] = e;
	wl->q_len++;
	wl->q_events += !is_reply(&e);
}

/*
 * Hands queued events over in arrival order; an event handler may itself make
 * requests. IKE datagrams are queued like the rest so the IKE engine is never
 * entered while one of its own callbacks waits for a reply.
 */
static void queue_deliver(struct wirelink *wl)
{
	if (wl->delivering)
		return;
	wl->delivering = true;
	while (wl->q_len) {
		struct queued_event e = wl->q[wl->q_head];

		wl->q_head = (wl->q_head + 1) % QUEUE_SIZE;
		wl->q_len--;
		wl->q_events -= !is_reply(&e);
		if (is_reply(&e))
			async_release(wl, e.seq);   /* before the handler, which may send the next one */
		if (e.dgram && e.dgram_len >= sizeof(struct ctl_ike_dgram)) {
			struct ctl_ike_dgram dg;

			memcpy(&dg, e.dgram, sizeof dg);
			ike_driver_recv(wl->d, &dg, e.dgram + sizeof dg, e.dgram_len - sizeof dg);
		} else if (wl->on_event) {
			wl->on_event(wl->d, e.type, e.payload);
		}
		event_free(&e);
	}
	wl->delivering = false;
}

/* An event datagram: JSON events, and IKE_RECV (binary) for the IKE driver, are queued. */
static void take_event(struct wirelink *wl, const struct ctl_hdr *h, const uint8_t *payload)
{
	json_t *j;

	if (h->type == CTL_EV_IKE_RECV) {
		uint8_t *copy = h->len >= sizeof(struct ctl_ike_dgram) ? malloc(h->len) : NULL;

		if (copy) {
			memcpy(copy, payload, h->len);
			queue_push(wl, h->type, NULL, copy, h->len, 0);
		}
		return;
	}
	j = h->len ? json_loadb((const char *)payload, h->len, 0, NULL) : json_object();
	if (!json_is_object(j)) {
		mlog(1, "wire: %s event with a malformed payload ignored", ctl_type_name(h->type));
		json_decref(j);
		return;
	}
	mlog(3, "wire: <- event %s len %" PRIu32, ctl_type_name(h->type), h->len);
	queue_push(wl, h->type, j, NULL, 0, 0);
}

/* An asynchronous request's reply {"seq", "status", ...} into the queue; its slot is marked so. 0 or -XE_NOMEM. */
static int queue_reply(struct wirelink *wl, struct async_slot *a, json_t *j /* taken */, int32_t status)
{
	uint32_t seq = a->seq;

	if (!j || json_object_set_new(j, "seq", json_integer(seq)) < 0 ||
	    json_object_set_new(j, "status", json_integer(status)) < 0) {
		json_decref(j);
		return -XE_NOMEM;
	}
	a->queued = true;
	queue_push(wl, CTL_SA_ADD, j, NULL, 0, seq);
	return 0;
}

/*
 * A reply that never comes would hold its slot (and the caller's) until the
 * link drops: after ASYNC_TIMEOUT_MS it is refused here (-XE_IO), and the real
 * one, should it come, is ignored as late.
 */
static void async_expire(struct wirelink *wl, uint64_t now)
{
	for (size_t i = 0; i < wl->nasync; i++) {
		struct async_slot *a = &wl->async[i];
		char why[64];

		if (a->queued || now < a->deadline_ms)
			continue;
		snprintf(why, sizeof why, "no reply from bitw-wire within %d s", ASYNC_TIMEOUT_MS / 1000);
		(void)queue_reply(wl, a, json_pack("{s:s}", "error", why), -XE_IO);
	}
}

/*
 * A reply nobody waits for: IKE_SEND's (bitwd does not wait for them), an
 * asynchronous SA_ADD's (queued like an event, type CTL_SA_ADD, payload
 * {"seq", "status", "error"}, for the IKE driver), or one whose request timed out.
 */
static void take_late_reply(struct wirelink *wl, const struct ctl_hdr *h, const uint8_t *payload)
{
	struct async_slot *a;
	json_t *j;

	if (h->type == CTL_IKE_SEND) {
		if (h->status < 0)
			mlog(3, "wire: sending an IKE datagram: %s", xe_name(h->status));
		return;
	}
	a = h->type == CTL_SA_ADD ? async_find(wl, h->seq) : NULL;
	if (!a || a->queued) {
		mlog(3, "wire: <- late reply %s seq %" PRIu32 " ignored", ctl_type_name(h->type), h->seq);
		return;
	}
	j = h->len ? json_loadb((const char *)payload, h->len, 0, NULL) : json_object();
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	(void)queue_reply(wl, a, j, h->status);   /* out of memory: it times out instead */
}

/* ---- datagrams ---- */

/*
 * One datagram into wl->rx without blocking: its length, 0 when none is
 * waiting, -1 after the link went down.
 */
static ssize_t recv_one(struct wirelink *wl, struct ctl_hdr *h)
{
	for (;;) {
		ssize_t n = recv(wl->fd, wl->rx, CTL_MAX_MSG, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			link_down(wl, n == 0 ? "connection closed" : strerror(errno));
			return -1;
		}
		if ((size_t)n < sizeof *h)
			continue;   /* a runt: nothing to learn from it */
		memcpy(h, wl->rx, sizeof *h);
		if (h->len > (size_t)n - sizeof *h)
			h->len = (uint32_t)((size_t)n - sizeof *h);
		return n;
	}
}

void wirelink_handle(struct wirelink *wl)
{
	struct ctl_hdr h;

	if (!wl)
		return;
	while (wl->fd >= 0 && recv_one(wl, &h) > 0) {
		if (h.flags & CTL_F_EVENT)
			take_event(wl, &h, wl->rx + sizeof h);
		else
			take_late_reply(wl, &h, wl->rx + sizeof h);
	}
	queue_deliver(wl);
}

static int send_bytes(struct wirelink *wl, uint16_t type, const void *buf, size_t len, uint32_t seq, uint64_t deadline)
{
	struct ctl_hdr h = { .type = type, .seq = seq, .len = (uint32_t)len };
	struct iovec iov[2] = { { &h, sizeof h }, { (void *)buf, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };

	if (len + sizeof h > CTL_MAX_MSG)
		return -XE_NOMEM;
	for (;;) {
		struct pollfd pf = { .fd = wl->fd, .events = POLLOUT };
		uint64_t now = bitwd_now_ms();

		if (sendmsg(wl->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if ((errno != EAGAIN && errno != EWOULDBLOCK) || now >= deadline) {
			mlog(1, "wire: sending %s: %s", ctl_type_name(type), strerror(errno));
			return -XE_IO;
		}
		(void)poll(&pf, 1, (int)(deadline - now));
	}
}

/* Serialised straight into one buffer (json_dumpb), so a payload with keys leaves no stray copies to wipe. */
static int send_request(struct wirelink *wl, uint16_t type, json_t *payload, uint32_t seq, uint64_t deadline)
{
	json_t *empty = payload ? NULL : json_object();
	json_t *p = payload ? payload : empty;
	size_t len = json_dumpb(p, NULL, 0, JSON_COMPACT);
	char *buf = len ? malloc(len) : NULL;
	int rc = -XE_NOMEM;

	if (buf && json_dumpb(p, buf, len, JSON_COMPACT) == len)
		rc = send_bytes(wl, type, buf, len, seq, deadline);
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	json_decref(empty);
	return rc;
}

/* Waits for the reply to seq; events meanwhile are queued. Status, or -XE_IO on timeout or loss. */
static int await_reply(struct wirelink *wl, uint16_t type, uint32_t seq, uint64_t deadline, json_t **reply)
{
	struct ctl_hdr h;

	while (wl->fd >= 0) {
		struct pollfd pf = { .fd = wl->fd, .events = POLLIN };
		uint64_t now = bitwd_now_ms();
		ssize_t n;

		if (now >= deadline) {
			mlog(1, "wire: %s seq %" PRIu32 " timed out", ctl_type_name(type), seq);
			return -XE_IO;
		}
		if (poll(&pf, 1, (int)(deadline - now)) <= 0)
			continue;
		while ((n = recv_one(wl, &h)) > 0) {
			if (h.flags & CTL_F_EVENT) {
				take_event(wl, &h, wl->rx + sizeof h);
				continue;
			}
			if (!(h.flags & CTL_F_REPLY))
				continue;
			if (h.seq != seq || h.type != type) {
				take_late_reply(wl, &h, wl->rx + sizeof h);
				continue;
			}
			mlog(3, "wire: <- %s seq %" PRIu32 " %s", ctl_type_name(type), seq, xe_name(h.status));
			if (reply) {
				*reply = h.len ? json_loadb((const char *)wl->rx + sizeof h, h.len, 0, NULL) : json_object();
				if (!*reply && h.status == 0)
					return -XE_BAD_MESSAGE;
			}
			return h.status > 0 ? -XE_BAD_MESSAGE : h.status;
		}
	}
	return -XE_IO;
}

static int request(struct wirelink *wl, uint16_t type, json_t *payload, json_t **reply, int timeout_ms)
{
	uint64_t deadline = bitwd_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
	uint32_t seq = ++wl->seq;
	int rc;

	if (reply)
		*reply = NULL;
	if (wl->fd < 0)
		return -XE_IO;
	mlog(3, "wire: -> %s seq %" PRIu32, ctl_type_name(type), seq);
	rc = send_request(wl, type, payload, seq, deadline);
	if (rc == 0)
		rc = await_reply(wl, type, seq, deadline, reply);
	return rc;
}

int wirelink_ike_send(struct wirelink *wl, const struct ctl_ike_dgram *dg, const uint8_t *data, size_t len)
{
	uint64_t deadline = bitwd_now_ms() + 1000;
	uint32_t seq;
	uint8_t *buf;
	int rc;

	if (!wirelink_up(wl))
		return -XE_IO;
	if (!(buf = malloc(sizeof *dg + len)))
		return -XE_NOMEM;
	memcpy(buf, dg, sizeof *dg);
	memcpy(buf + sizeof *dg, data, len);
	seq = ++wl->seq;
	rc = send_bytes(wl, CTL_IKE_SEND, buf, sizeof *dg + len, seq, deadline);
	free(buf);
	/*
	 * Not waiting for the reply: the wire serves its socket in order, so an SA
	 * added before goes in first, and a lost datagram is the peer's to
	 * retransmit. Waiting cost a round trip to the wire's thread per message
	 * (on a busy machine, a scheduling delay each). The reply comes as a late
	 * one (wirelink_handle).
	 */
	return rc;
}

int wirelink_request_async(struct wirelink *wl, uint16_t type, json_t *payload, uint32_t *seq)
{
	int rc;

	if (!wirelink_up(wl))
		return -XE_IO;
	if (type != CTL_SA_ADD || wl->nasync == WIRE_ASYNC_MAX)
		return -XE_NOT_SUPPORTED;   /* only SA_ADD's reply is handed on; a caller waits instead */
	*seq = ++wl->seq;
	mlog(3, "wire: -> %s seq %" PRIu32 " (reply as an event)", ctl_type_name(type), *seq);
	rc = send_request(wl, type, payload, *seq, bitwd_now_ms() + 1000);
	if (rc == 0)
		wl->async[wl->nasync++] = (struct async_slot){ *seq, bitwd_now_ms() + ASYNC_TIMEOUT_MS, false };
	return rc;
}

int wirelink_request(struct wirelink *wl, uint16_t type, json_t *payload, json_t **reply, int timeout_ms)
{
	if (reply)
		*reply = NULL;
	if (!wirelink_up(wl))
		return -XE_IO;
	return request(wl, type, payload, reply, timeout_ms);
}

/* ---- SPIs ---- */

/*
 * An older wire refuses "count" as a field it does not know (its control
 * socket's field check); any other refusal is this request's, not the form's.
 */
static bool count_unknown(json_t *reply)
{
	const char *why = json_string_value(json_object_get(reply, "error"));

	return why && strncmp(why, "count: unknown field", 20) == 0;
}

/* One GET_SPI: SPI_POOL of them, or one from a wire that does not take "count". */
static int spi_fill(struct wirelink *wl)
{
	json_t *req = wl->spi_one_at_a_time ? json_object() : json_pack("{s:i}", "count", SPI_POOL);
	json_t *reply = NULL, *list, *v;
	int rc = req ? request(wl, CTL_GET_SPI, req, &reply, SPI_TIMEOUT_MS) : -XE_NOMEM;
	size_t i;

	json_decref(req);
	if (rc == -XE_BAD_PARAM && !wl->spi_one_at_a_time && count_unknown(reply)) {
		mlog(1, "wire: bitw-wire does not know GET_SPI's count; reserving one SPI at a time");
		json_decref(reply);
		wl->spi_one_at_a_time = true;
		return spi_fill(wl);
	}
	list = rc == 0 ? json_object_get(reply, "spis") : NULL;
	json_array_foreach(list, i, v) {
		json_int_t s = json_integer_value(v);

		if (s >= 256 && s <= UINT32_MAX && wl->nspi < SPI_POOL)
			wl->spi_pool[wl->nspi++] = (uint32_t)s;
	}
	if (rc == 0 && !list) {   /* an answer to one, whatever was asked */
		json_int_t s = json_integer_value(json_object_get(reply, "spi"));

		if (s >= 256 && s <= UINT32_MAX)
			wl->spi_pool[wl->nspi++] = (uint32_t)s;
	}
	json_decref(reply);
	return rc < 0 ? rc : wl->nspi ? 0 : -XE_BAD_MESSAGE;
}

/*
 * A round trip per child SA cost a wake-up of the wire's thread each (on a
 * busy machine a scheduling delay), so SPIs are reserved SPI_POOL at a time.
 */
int wirelink_spi_alloc(struct wirelink *wl, uint32_t *spi)
{
	int rc;

	if (!wirelink_up(wl))
		return -XE_IO;
	if (!wl->nspi && (rc = spi_fill(wl)) < 0)
		return rc;
	*spi = wl->spi_pool[--wl->nspi];
	return 0;
}

/* ---- connecting ---- */

static int open_socket(struct wirelink *wl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int big = (int)CTL_MAX_MSG * 2;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, wl->path, strlen(wl->path) + 1);
	/* A unix connect completes at once or fails (EAGAIN: backlog full): either way no waiting. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	/* A whole configuration goes out as one datagram. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	return fd;
}

/* The interfaces the wire runs with: a pushed configuration must name the same ones. */
static void learn_interfaces(struct wirelink *wl)
{
	json_t *cfg = NULL;

	if (request(wl, CTL_CONFIG_GET, NULL, &cfg, HELLO_TIMEOUT_MS) == 0) {
		json_t *ports = json_object_get(cfg, "ports");

		for (int i = 0; i < 2; i++) {
			const char *s = json_string_value(json_object_get(json_object_get(ports, role_name(i)), "interface"));

			snprintf(wl->ifname[i], sizeof wl->ifname[i], "%s", s ? s : "");
		}
	}
	json_decref(cfg);
}

static int say_hello(struct wirelink *wl)
{
	json_t *hello = json_pack("{s:i, s:s}", "version", CTL_VERSION, "name", "bitwd");
	json_t *reply = NULL;
	int rc = hello ? request(wl, CTL_HELLO, hello, &reply, HELLO_TIMEOUT_MS) : -XE_NOMEM;

	json_decref(hello);
	if (rc == 0) {
		json_int_t v = json_integer_value(json_object_get(reply, "version"));
		json_int_t pid = json_integer_value(json_object_get(reply, "pid"));

		if (v != CTL_VERSION)
			mlog(1, "wire: bitw-wire speaks control protocol %lld, we speak %d", (long long)v, CTL_VERSION);
		mlog(2, "wire: connected to bitw-wire at %s (pid %lld)", wl->path, (long long)pid);
		/* Another process (a restarted wire) holds none of the old reservations, and may speak otherwise. */
		if (!pid || pid != wl->wire_pid) {
			wl->nspi = 0;
			wl->spi_one_at_a_time = false;
		}
		wl->wire_pid = pid;
	}
	json_decref(reply);
	return rc;
}

static void try_connect(struct wirelink *wl, uint64_t now)
{
	int fd = open_socket(wl);

	if (fd < 0) {
		if (!wl->down_logged)
			mlog(1, "wire: bitw-wire not reachable at %s: %s; retrying", wl->path, strerror(-fd));
		wl->down_logged = true;
		wl->next_try_ms = now + (uint64_t)wl->backoff_ms;
		wl->backoff_ms = wl->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wl->backoff_ms * 2;
		return;
	}
	wl->fd = fd;
	if (say_hello(wl) < 0) {
		if (wl->fd >= 0) {
			close(wl->fd);
			wl->fd = -1;
		}
		wl->next_try_ms = now + (uint64_t)wl->backoff_ms;
		return;
	}
	wl->up = true;
	wl->down_logged = false;
	wl->backoff_ms = BACKOFF_MIN_MS;
	learn_interfaces(wl);
	/* A fresh link may be a restarted wire: it gets the whole stored configuration. */
	wl->last_push_rc = 0;
	wl->d->dirty = true;
	wl->fresh = true;
	wl->next_push_ms = 0;
}

static void push_if_dirty(struct wirelink *wl, uint64_t now)
{
	int rc;

	if (!wl->d->dirty || now < wl->next_push_ms)
		return;
	wl->next_push_ms = now + DIRTY_RETRY_MS;
	rc = conf_push(wl->d);
	if (rc == 0 && wl->last_push_rc != 0)
		mlog(2, "wire: stored configuration applied");
	else if (rc < 0 && rc != -XE_IO && rc != wl->last_push_rc)
		mlog(0, "wire: bitw-wire rejected the stored configuration: %s", xe_name(rc));
	wl->last_push_rc = rc;
	/* The wire may have restarted: SAs that IKE negotiated are not in the stored configuration. */
	if (rc == 0 && wl->fresh) {
		wl->fresh = false;
		ike_driver_resync(wl->d);
	}
}

void wirelink_tick(struct wirelink *wl)
{
	uint64_t now;

	if (!wl)
		return;
	now = bitwd_now_ms();
	if (wl->fd < 0 && now >= wl->next_try_ms)
		try_connect(wl, now);
	if (wirelink_up(wl))
		push_if_dirty(wl, now);
	async_expire(wl, now);
	queue_deliver(wl);
}
