/* test_wirelink.c: bitwd's link to bitw-wire (mgmt/wirelink.c) against a scripted wire on a socket of its own. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mgmt/bitwd.h"
#include "wire/ctl.h"

/* Events before and after the SA_ADD reply: more than the queue keeps, the reply among the oldest. */
#define EVENTS_BEFORE 10
#define EVENTS_AFTER 290

/* ---- what bitwd's other parts would do ---- */

void mlog(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static uint64_t clock_ahead_ms;   /* bitwd's clock runs this far ahead: a timeout without waiting it out */

uint64_t bitwd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + clock_ahead_ms;
}

int conf_push(struct bitwd *d)
{
	d->dirty = false;
	return 0;
}

void ike_driver_resync(struct bitwd *d)
{
	(void)d;
}

void ike_driver_recv(struct bitwd *d, const struct ctl_ike_dgram *dg, const uint8_t *data, size_t len)
{
	(void)d;
	(void)dg;
	(void)data;
	(void)len;
}

/* What the IKE driver is handed. */
static struct {
	int events;
	int replies;
	uint32_t reply_seq;
	json_int_t reply_status;
} got;

static void on_event(struct bitwd *d, uint16_t type, json_t *payload)
{
	(void)d;
	if (type == CTL_SA_ADD) {
		got.replies++;
		got.reply_seq = (uint32_t)json_integer_value(json_object_get(payload, "seq"));
		got.reply_status = json_integer_value(json_object_get(payload, "status"));
	} else {
		got.events++;
	}
}

/* ---- the scripted wire ---- */

/* One wire process: its pid (HELLO), whether it takes GET_SPI {"count"}, the SPIs it hands out. */
struct fake {
	int lfd;
	int fd;                   /* the accepted connection, -1 before */
	int pid;
	bool takes_count;
	uint32_t next_spi;
	int get_spi;              /* GET_SPI requests seen */
	bool refuse_count_once;   /* the next GET_SPI {"count"} is refused for another reason than the form */
	bool hold_adds;           /* SA_ADDs are answered (refused) only with the next STATS, before its reply */
	uint32_t held[2 * WIRE_ASYNC_MAX];
	int nheld;
};

static void put(int fd, uint16_t type, uint16_t flags, uint32_t seq, int32_t status, const char *json)
{
	struct ctl_hdr h = { .type = type, .flags = flags, .seq = seq, .len = (uint32_t)strlen(json), .status = status };
	struct iovec iov[2] = { { &h, sizeof h }, { (void *)json, strlen(json) } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };

	if (sendmsg(fd, &m, MSG_NOSIGNAL) < 0)
		perror("fake wire: sendmsg");
}

static char rx[65536];         /* the fake wire's last request's payload (one wire thread at a time) */

static int take(int fd, struct ctl_hdr *h)
{
	static uint8_t buf[sizeof rx + sizeof *h];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);

	if (n < (ssize_t)sizeof *h)
		return -1;
	memcpy(h, buf, sizeof *h);
	memcpy(rx, buf + sizeof *h, (size_t)n - sizeof *h);
	rx[(size_t)n - sizeof *h] = '\0';
	return 0;
}

/* GET_SPI: {"spi", "spis"} for a count; an older wire refuses the count as an unknown field. */
static void get_spi(struct fake *f, const struct ctl_hdr *h)
{
	json_t *req = json_loads(rx, 0, NULL), *reply;
	json_int_t n = json_integer_value(json_object_get(req, "count"));
	char *text;

	f->get_spi++;
	if (n && f->refuse_count_once) {
		f->refuse_count_once = false;
		put(f->fd, h->type, CTL_F_REPLY, h->seq, -XE_BAD_PARAM, "{\"error\":\"count: not now\"}");
		json_decref(req);
		return;
	}
	if (n && !f->takes_count) {
		put(f->fd, h->type, CTL_F_REPLY, h->seq, -XE_BAD_PARAM, "{\"error\":\"count: unknown field\"}");
		json_decref(req);
		return;
	}
	reply = json_pack("{s:I}", "spi", (json_int_t)f->next_spi);
	if (n) {
		json_t *all = json_array();

		for (json_int_t i = 0; i < n; i++)
			json_array_append_new(all, json_integer(f->next_spi++));
		json_object_set_new(reply, "spis", all);
	} else {
		f->next_spi++;
	}
	text = json_dumps(reply, JSON_COMPACT);
	put(f->fd, h->type, CTL_F_REPLY, h->seq, 0, text);
	free(text);
	json_decref(reply);
	json_decref(req);
}

/*
 * Answers HELLO and CONFIG_GET; an SA_ADD is refused, its reply sent between
 * two floods of events; STATS is answered after them.
 */
static void *fake_wire(void *arg)
{
	struct fake *f = arg;
	int fd = f->fd = accept(f->lfd, NULL, NULL);
	struct ctl_hdr h;
	char hello[64];

	snprintf(hello, sizeof hello, "{\"version\":1,\"pid\":%d}", f->pid);
	while (fd >= 0 && take(fd, &h) == 0) {
		if (h.type == CTL_HELLO) {
			put(fd, h.type, CTL_F_REPLY, h.seq, 0, hello);
		} else if (h.type == CTL_GET_SPI) {
			get_spi(f, &h);
		} else if (h.type == CTL_SA_ADD && f->hold_adds) {
			if (f->nheld < (int)(sizeof f->held / sizeof f->held[0]))
				f->held[f->nheld++] = h.seq;
		} else if (h.type == CTL_STATS && f->nheld) {
			for (int i = 0; i < f->nheld; i++)
				put(fd, CTL_SA_ADD, CTL_F_REPLY, f->held[i], -XE_SA_EXISTS, "{\"error\":\"spi: in use\"}");
			f->nheld = 0;
			put(fd, h.type, CTL_F_REPLY, h.seq, 0, "{}");
		} else if (h.type == CTL_SA_ADD) {
			for (int i = 0; i < EVENTS_BEFORE; i++)
				put(fd, CTL_EV_ACQUIRE, CTL_F_EVENT, 0, 0, "{\"policy_id\":0}");
			put(fd, h.type, CTL_F_REPLY, h.seq, -XE_SA_EXISTS, "{\"error\":\"spi: in use\"}");
			for (int i = 0; i < EVENTS_AFTER; i++)
				put(fd, CTL_EV_ACQUIRE, CTL_F_EVENT, 0, 0, "{\"policy_id\":0}");
		} else {
			put(fd, h.type, CTL_F_REPLY, h.seq, 0, "{}");
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Ticks the link until it is up (a reconnect waits out its back-off): true when it is. */
static bool wait_up(struct wirelink *wl)
{
	for (int i = 0; i < 500 && !wirelink_up(wl); i++) {
		wirelink_handle(wl);
		wirelink_tick(wl);
		if (!wirelink_up(wl))
			usleep(10000);
	}
	return wirelink_up(wl);
}

/* The wire process goes away (its connection closes) and another, given by f, takes its socket. */
static void restart_wire(struct wirelink *wl, struct fake *old, pthread_t *th, struct fake *f)
{
	shutdown(old->fd, SHUT_RDWR);
	pthread_join(*th, NULL);
	for (int i = 0; i < 100 && wirelink_up(wl); i++) {
		wirelink_handle(wl);
		usleep(1000);
	}
	pthread_create(th, NULL, fake_wire, f);
}

/*
 * The pool: reserved SPI_POOL at a time; kept over a reconnect to the same
 * process; a restarted wire's SPIs, not the old pool's; one at a time only
 * when the wire does not know the count.
 */
static void test_spi_pool(struct wirelink *wl, struct fake *a, pthread_t *th, struct fake *b)
{
	struct fake same = { .lfd = a->lfd, .fd = -1, .pid = a->pid, .takes_count = true, .next_spi = 0x3000 };
	uint32_t spi = 0, spi2 = 0;

	CHECK(wirelink_spi_alloc(wl, &spi) == 0 && wirelink_spi_alloc(wl, &spi2) == 0 && spi >= 0x1000 &&
	      spi < 0x1000 + 32 && spi2 != spi, "two SPIs the wire reserved (0x%x, 0x%x)", spi, spi2);
	CHECK_EQ(a->get_spi, 1, "from one GET_SPI with a count");
	restart_wire(wl, a, th, &same);
	CHECK(!wirelink_up(wl) && wait_up(wl), "reconnected to the same wire process (same pid)");
	CHECK(wirelink_spi_alloc(wl, &spi) == 0 && spi >= 0x1000 && spi < 0x1000 + 32 && same.get_spi == 0,
	      "its reservations are still used after the reconnect (0x%x, %d GET_SPI)", spi, same.get_spi);
	restart_wire(wl, &same, th, b);
	CHECK(!wirelink_up(wl) && wait_up(wl), "a restarted wire (another pid) is connected again");
	CHECK(wirelink_spi_alloc(wl, &spi) == 0 && spi == 0x5000,
	      "the next SPI is the new wire's, not the old pool's (0x%x)", spi);
	CHECK(wirelink_spi_alloc(wl, &spi2) == 0 && spi2 == 0x5001 && b->get_spi == 3,
	      "a wire that refuses the count reserves one SPI per GET_SPI (0x%x, %d requests)", spi2, b->get_spi);
}

/* A wire that knows the count but refuses one request for another reason keeps being asked for a pool. */
static void test_spi_refused_once(struct wirelink *wl, struct fake *old, pthread_t *th, struct fake *c)
{
	uint32_t spi = 0;
	int rc;

	restart_wire(wl, old, th, c);
	CHECK(wait_up(wl), "a wire (pid %d) that takes the count is connected", c->pid);
	c->refuse_count_once = true;
	rc = wirelink_spi_alloc(wl, &spi);
	CHECK_EQ(rc, -XE_BAD_PARAM, "its refusal of a GET_SPI is the caller's error");
	CHECK(wirelink_spi_alloc(wl, &spi) == 0 && wirelink_spi_alloc(wl, &spi) == 0 && c->get_spi == 2,
	      "the next GET_SPI asks for a pool again, which serves the next SPIs (%d requests)", c->get_spi);
}

/* Queued replies hold their slots until delivered; a reply that never comes is refused after 10 s. */
static void test_async_slots(struct wirelink *wl, struct fake *f)
{
	json_t *req = json_pack("{s:[]}", "sas");
	uint32_t seq = 0;
	int ok = 0, rc;

	f->hold_adds = true;
	for (int i = 0; i < WIRE_ASYNC_MAX; i++)
		ok += wirelink_request_async(wl, CTL_SA_ADD, req, &seq) == 0;
	CHECK_EQ(ok, WIRE_ASYNC_MAX, "WIRE_ASYNC_MAX SA_ADDs sent without waiting");
	CHECK(wirelink_request_async(wl, CTL_SA_ADD, req, &seq) == -XE_NOT_SUPPORTED, "one more is refused");
	/* The wire answers them all before the reply to a request that waits: the replies are queued. */
	CHECK_EQ(wirelink_request(wl, CTL_STATS, NULL, NULL, 5000), 0, "a request that waits is answered");
	rc = wirelink_request_async(wl, CTL_SA_ADD, req, &seq);
	CHECK_EQ(rc, -XE_NOT_SUPPORTED, "while their replies wait in the queue, still no slot is free");
	got.replies = 0;
	wirelink_handle(wl);
	CHECK_EQ(got.replies, WIRE_ASYNC_MAX, "all the replies are delivered");
	CHECK_EQ(got.reply_status, -XE_SA_EXISTS, "refusals, as the wire sent them");

	/* One the wire never answers. */
	got.replies = 0;
	CHECK_EQ(wirelink_request_async(wl, CTL_SA_ADD, req, &seq), 0, "then a slot is free again");
	wirelink_handle(wl);
	wirelink_tick(wl);
	CHECK_EQ(got.replies, 0, "an SA_ADD without a reply yet: nothing delivered");
	clock_ahead_ms += 10001;
	wirelink_tick(wl);
	CHECK(got.replies == 1 && got.reply_seq == seq && got.reply_status == -XE_IO,
	      "after 10 s it is delivered as refused (XE_IO): %d replies, seq %u, status %lld", got.replies,
	      got.reply_seq, (long long)got.reply_status);
	/* Its real reply comes late (with the next STATS) and is not delivered again. */
	CHECK_EQ(wirelink_request(wl, CTL_STATS, NULL, NULL, 5000), 0, "the wire answers it at last");
	wirelink_handle(wl);
	CHECK_EQ(got.replies, 1, "the late reply is ignored");
	ok = 0;
	for (int i = 0; i < WIRE_ASYNC_MAX; i++)
		ok += wirelink_request_async(wl, CTL_SA_ADD, req, &seq) == 0;
	CHECK_EQ(ok, WIRE_ASYNC_MAX, "and every slot is free");
	json_decref(req);
}

int main(void)
{
	char dir[] = "/tmp/bitw-wirelink-XXXXXX", path[128];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fake a = { .fd = -1, .pid = 1, .takes_count = true, .next_spi = 0x1000 };
	struct fake b = { .fd = -1, .pid = 2, .takes_count = false, .next_spi = 0x5000 };
	struct fake c = { .fd = -1, .pid = 3, .takes_count = true, .next_spi = 0x7000 };
	struct bitwd d = { 0 };
	struct wirelink *wl;
	pthread_t th;
	json_t *req;
	uint32_t seq = 0;
	int lfd, rc;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof path, "%s/wire.sock", dir);
	if (strlen(path) >= sizeof sa.sun_path)
		return 1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0)
		return 1;
	a.lfd = b.lfd = c.lfd = lfd;
	pthread_create(&th, NULL, fake_wire, &a);

	wl = wirelink_new(&d, path, on_event);
	d.wl = wl;
	wirelink_tick(wl);
	CHECK(wirelink_up(wl), "connected to the scripted wire");

	req = json_pack("{s:[]}", "sas");
	rc = wirelink_request_async(wl, CTL_SA_ADD, req, &seq);
	json_decref(req);
	CHECK_EQ(rc, 0, "an SA_ADD sent without waiting");
	CHECK(wirelink_request_async(wl, CTL_STATS, NULL, &seq) == -XE_NOT_SUPPORTED,
	      "only SA_ADD is sent without waiting (no one would take another's reply)");

	/* A request waits while the wire sends more events than the queue keeps, the SA_ADD refusal among them. */
	rc = wirelink_request(wl, CTL_STATS, NULL, NULL, 5000);
	CHECK_EQ(rc, 0, "the STATS request is answered");
	wirelink_handle(wl);
	CHECK_EQ(got.replies, 1, "the SA_ADD refusal reaches the IKE driver although events were dropped around it");
	CHECK(got.reply_seq == seq && got.reply_status == -XE_SA_EXISTS, "with its seq and status (%u, %lld)",
	      got.reply_seq, (long long)got.reply_status);
	CHECK_EQ(got.events, 256, "the newest 256 events are delivered");
	CHECK_EQ(wirelink_events_dropped(wl), EVENTS_BEFORE + EVENTS_AFTER - 256, "the others are counted as dropped");

	test_spi_pool(wl, &a, &th, &b);
	test_spi_refused_once(wl, &b, &th, &c);
	test_async_slots(wl, &c);
	shutdown(c.fd, SHUT_RDWR);
	pthread_join(th, NULL);
	wirelink_free(wl);
	close(lfd);
	unlink(path);
	rmdir(dir);
	return check_done();
}
