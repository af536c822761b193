/* test_neigh.c: the neighbour cache (learning, expiry, bounded queues, retries, lock-free lookups) and the batched txq. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "port.h"
#include "wire.h"

static struct bw_addr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct bw_addr x = { .family = 4, .a = { a, b, c, d } };
	return x;
}

static struct bw_addr ip6_host(uint16_t host)
{
	struct bw_addr x = { .family = 6, .a = { 0x20, 0x01, 0x0d, 0xb8, [14] = (uint8_t)(host >> 8), [15] = (uint8_t)host } };
	return x;
}

static const uint8_t mac_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };

static void test_learn_lookup(void)
{
	struct neigh_table *t = neigh_new(16, 300, 4);
	CHECK(t != NULL, "neigh_new");
	struct bw_addr a = ip4(192, 0, 2, 1), b = ip6_host(1), unknown = ip4(192, 0, 2, 99);
	uint8_t mac[6];

	CHECK(!neigh_lookup(t, &a, mac, 1000), "nothing known before learning");
	neigh_update(t, &a, mac_a, 1000, NULL);
	neigh_update(t, &b, mac_b, 1000, NULL);
	CHECK(neigh_lookup(t, &a, mac, 1001) && memcmp(mac, mac_a, 6) == 0, "IPv4 neighbour learned");
	CHECK(neigh_lookup(t, &b, mac, 1001) && memcmp(mac, mac_b, 6) == 0, "IPv6 neighbour learned");
	CHECK(!neigh_lookup(t, &unknown, mac, 1001), "unknown address not found");

	struct bw_addr stray = a;
	stray.a[7] = 0x55;  /* bytes past an IPv4 address are not part of it */
	CHECK(neigh_lookup(t, &stray, mac, 1001), "IPv4 key ignores bytes past a[3]");

	neigh_update(t, &a, mac_b, 2000, NULL);
	CHECK(neigh_lookup(t, &a, mac, 2001) && memcmp(mac, mac_b, 6) == 0, "a new MAC replaces the old one");

	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct bw_addr c = ip4(192, 0, 2, 3);
	neigh_update(t, &c, bcast, 2000, NULL);
	CHECK(!neigh_lookup(t, &c, mac, 2001), "a broadcast MAC is never learned");

	struct bw_addr d = ip4(192, 0, 2, 4);
	CHECK_EQ(neigh_confirm(t, &d, mac_a, 2000, NULL), NEIGH_UNKNOWN, "confirm of an unknown address");
	CHECK(!neigh_lookup(t, &d, mac, 2001), "confirm does not create entries");
	CHECK_EQ(neigh_confirm(t, &a, mac_a, 2000, NULL), NEIGH_REFRESHED, "confirm refreshes a known entry");
	neigh_free(t);
}

static void test_timeout(void)
{
	struct neigh_table *t = neigh_new(16, 10, 4);
	struct bw_addr a = ip4(192, 0, 2, 1);
	uint8_t mac[6], frame[64] = { 0 };
	neigh_update(t, &a, mac_a, 5000, NULL);
	CHECK(neigh_lookup(t, &a, mac, 5000 + 9999), "valid just before the timeout");
	CHECK(!neigh_lookup(t, &a, mac, 5000 + 10000), "expired at the timeout");
	CHECK_EQ(neigh_enqueue(t, &a, frame, sizeof frame, 15000), 1, "an expired entry is solicited again");
	neigh_update(t, &a, mac_a, 15500, NULL);
	CHECK(neigh_lookup(t, &a, mac, 16000), "the answer makes it valid again");
	neigh_free(t);
}

static int solicits;
static struct bw_addr last_solicit;
static void count_solicit(void *ctx, const struct bw_addr *ip)
{
	(void)ctx;
	solicits++;
	last_solicit = *ip;
}

static void test_tick(void)
{
	struct neigh_table *t = neigh_new(16, 10, 4);
	struct bw_addr a = ip4(192, 0, 2, 1), b = ip4(192, 0, 2, 2);
	uint8_t frame[64] = { 0 }, mac[6];
	uint64_t dropped = 99;

	CHECK_EQ(neigh_enqueue(t, &a, frame, sizeof frame, 0), 1, "first frame: solicit now");
	CHECK_EQ(neigh_enqueue(t, &a, frame, sizeof frame, 500), 0, "not again within a second");
	CHECK_EQ(neigh_enqueue(t, &a, frame, sizeof frame, 1000), 1, "again after a second");
	solicits = 0;
	neigh_tick(t, 1500, count_solicit, NULL, &dropped);
	CHECK(solicits == 0 && dropped == 0, "tick: no retry within a second of the last one");
	neigh_tick(t, 2000, count_solicit, NULL, &dropped);
	neigh_tick(t, 3000, count_solicit, NULL, &dropped);
	CHECK_EQ(solicits, 2, "tick retries once a second");
	CHECK(bw_addr_eq(&last_solicit, &a), "the retry is for the unresolved address");
	neigh_tick(t, 4000, count_solicit, NULL, &dropped);
	CHECK_EQ(solicits, 2, "no more than 3 retries");
	CHECK_EQ(dropped, 3, "the queue of a never-resolved address is dropped and counted");
	CHECK_EQ(neigh_enqueue(t, &a, frame, sizeof frame, 4100), 1, "the next frame starts over");

	neigh_free(t);

	/* A resolved entry in use is refreshed before it expires; an idle one is left to expire. */
	t = neigh_new(16, 10, 4);
	struct bw_addr idle = ip4(192, 0, 2, 3);
	neigh_update(t, &idle, mac_a, 10000, NULL);
	neigh_update(t, &b, mac_b, 10000, NULL);
	solicits = 0;
	neigh_tick(t, 14000, count_solicit, NULL, &dropped);
	CHECK_EQ(solicits, 0, "no refresh far from expiry");
	CHECK(neigh_lookup(t, &b, mac, 16000), "entry in use");
	neigh_tick(t, 16000, count_solicit, NULL, &dropped);
	CHECK(solicits == 1 && bw_addr_eq(&last_solicit, &b), "an entry in use is refreshed before it expires");
	CHECK(neigh_lookup(t, &b, mac, 16001), "and stays usable meanwhile");
	neigh_tick(t, 20000, count_solicit, NULL, &dropped);
	CHECK(!neigh_lookup(t, &b, mac, 20000), "unanswered, it expires on time");
	neigh_free(t);
}

static void test_queue_limits(void)
{
	struct neigh_table *t = neigh_new(100, 300, 4);
	struct bw_addr a = ip4(192, 0, 2, 1);
	uint8_t frame[64] = { 0 };
	for (int i = 0; i < 4; i++)
		neigh_enqueue(t, &a, frame, sizeof frame, 0);
	CHECK_EQ(neigh_enqueue(t, &a, frame, sizeof frame, 0), -XE_NEIGH_UNRESOLVED, "5th frame over a queue of 4 refused");
	uint8_t big[TXQ_BUF + 1] = { 0 };
	struct bw_addr b = ip4(192, 0, 2, 2);
	CHECK(neigh_enqueue(t, &b, big, sizeof big, 0) < 0, "a frame larger than a slot is refused");
	neigh_free(t);

	/* 100 entries * 8 frames exceed the shared pool: it has a limit of its own. */
	t = neigh_new(100, 300, 8);
	int queued = 0, refused = 0;
	for (int h = 1; h <= 100; h++) {
		struct bw_addr x = ip4(198, 18, 0, (uint8_t)h);
		for (int i = 0; i < 8; i++) {
			int rc = neigh_enqueue(t, &x, frame, sizeof frame, 0);
			if (rc >= 0)
				queued++;
			else
				refused += rc == -XE_NEIGH_UNRESOLVED;
		}
	}
	CHECK(queued > 0 && queued < 800 && refused == 800 - queued, "shared pool bounds the queued frames (%d queued)", queued);
	neigh_free(t);

	t = neigh_new(2, 300, 4);
	struct bw_addr x1 = ip4(192, 0, 2, 1), x2 = ip4(192, 0, 2, 2), x3 = ip4(192, 0, 2, 3);
	uint8_t mac[6];
	neigh_update(t, &x1, mac_a, 0, NULL);
	neigh_update(t, &x2, mac_a, 0, NULL);
	neigh_update(t, &x3, mac_a, 0, NULL);
	CHECK(!neigh_lookup(t, &x3, mac, 1), "a full table learns nothing new");
	CHECK_EQ(neigh_enqueue(t, &x3, frame, sizeof frame, 0), -XE_NEIGH_UNRESOLVED, "nor queues for a new address");
	CHECK(neigh_lookup(t, &x1, mac, 1), "but keeps what it has");
	neigh_free(t);
}

static void test_flush_queued(void)
{
	int sv[2];
	int rc = socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	CHECK_EQ(rc, 0, "socketpair");
	struct port p;
	memset(&p, 0, sizeof p);
	struct txq q;
	CHECK_EQ(txq_init_fd(&q, &p, sv[0]), 0, "txq over a socketpair");

	struct neigh_table *t = neigh_new(16, 300, 8);
	struct bw_addr a = ip6_host(7);
	uint8_t frame[100];
	for (int i = 0; i < 3; i++) {
		memset(frame, 0, 6);                        /* destination to be filled */
		memset(frame + 6, 0xee, sizeof frame - 6);
		frame[20] = (uint8_t)i;                     /* order marker */
		rc = neigh_enqueue(t, &a, frame, (uint32_t)(sizeof frame - (size_t)i), 10);
		CHECK_EQ(rc, i == 0 ? 1 : 0, "frame %d queued", i);
	}
	CHECK_EQ(neigh_confirm(t, &a, mac_b, 20, &q), NEIGH_RESOLVED, "the answer resolves a pending entry");
	CHECK_EQ(q.n, 3, "three queued frames pushed to tx");
	CHECK_EQ(txq_flush(&q), 3, "flush sends three frames");

	int ok = 0;
	for (int i = 0; i < 3; i++) {
		uint8_t got[200];
		ssize_t n = recv(sv[1], got, sizeof got, MSG_DONTWAIT);
		ok += n == (ssize_t)(sizeof frame - (size_t)i) && memcmp(got, mac_b, 6) == 0 && got[20] == i &&
		      got[6] == 0xee && got[50] == 0xee;
	}
	CHECK_EQ(ok, 3, "frames leave in order, whole, with the learned destination MAC");
	CHECK_EQ(atomic_load(&p.st.tx_packets), 3, "port counts tx packets");
	CHECK_EQ(atomic_load(&p.st.tx_bytes), 100 + 99 + 98, "port counts tx bytes");
	uint8_t mac[6];
	CHECK(neigh_lookup(t, &a, mac, 30) && memcmp(mac, mac_b, 6) == 0, "and the entry is resolved");
	neigh_free(t);
	txq_destroy(&q);
	close(sv[1]);
}

static void test_txq(void)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	struct port p;
	memset(&p, 0, sizeof p);
	struct txq q;
	txq_init_fd(&q, &p, sv[0]);

	uint8_t f[60] = { 1, 2, 3 };
	for (int i = 0; i < TXQ_MAX + 5; i++) {
		f[59] = (uint8_t)i;
		txq_push(&q, f, sizeof f);
	}
	CHECK_EQ(q.n, 5, "a full queue flushes itself before taking more");
	CHECK_EQ(atomic_load(&p.st.tx_packets), TXQ_MAX, "the full batch went out");
	uint8_t *slot = txq_slot(&q);
	memcpy(slot, f, sizeof f);
	slot[59] = 0xaa;
	txq_commit(&q, sizeof f);
	CHECK_EQ(txq_flush(&q), 6, "flush sends the rest");
	int in_order = 0;
	for (int i = 0; i < TXQ_MAX + 6; i++) {
		uint8_t got[100];
		ssize_t n = recv(sv[1], got, sizeof got, MSG_DONTWAIT);
		in_order += n == 60 && got[59] == (i < TXQ_MAX + 5 ? (uint8_t)i : 0xaa);
	}
	CHECK_EQ(in_order, TXQ_MAX + 6, "every frame arrived once, in order");
	CHECK_EQ(txq_flush(&q), 0, "an empty flush sends nothing");

	/* A receiver that never reads: the flush gives up quickly and counts what it dropped. */
	int failed = 0;
	for (int round = 0; round < 40 && !failed; round++) {
		for (int i = 0; i < TXQ_MAX; i++)
			txq_push(&q, f, sizeof f);
		failed = txq_flush(&q) == -XE_TX_FAILED;
	}
	CHECK(failed, "flush reports -XE_TX_FAILED when the socket stays full");
	CHECK(atomic_load(&p.st.tx_errors) > 0, "dropped frames are counted in tx_errors");
	CHECK_EQ(q.n, 0, "the queue is empty after a failed flush");
	txq_destroy(&q);
	close(sv[1]);
}

/* Readers check every MAC they see is one the writer wrote whole: bytes 1..5 all equal. */
#define RACE_ADDRS 64
static _Atomic int race_stop;
static _Atomic long race_torn, race_hits;

static void *race_reader(void *arg)
{
	struct neigh_table *t = arg;
	long hits = 0, torn = 0;
	while (!atomic_load(&race_stop)) {
		for (int h = 0; h < RACE_ADDRS; h++) {
			struct bw_addr a = h & 1 ? ip6_host((uint16_t)h) : ip4(198, 18, 1, (uint8_t)h);
			uint8_t mac[6];
			if (!neigh_lookup(t, &a, mac, 1000))
				continue;
			hits++;
			torn += mac[0] != 0x02 || mac[1] != mac[2] || mac[2] != mac[3] || mac[3] != mac[4] ||
			        mac[4] != mac[5] || (mac[1] & 0x7f) != h;
		}
	}
	atomic_fetch_add(&race_hits, hits);
	atomic_fetch_add(&race_torn, torn);
	return NULL;
}

static void *race_writer(void *arg)
{
	struct neigh_table *t = arg;
	/* Entries are created while the readers probe, then rewritten with other MACs. */
	for (int round = 0; round < 3000; round++) {
		for (int h = 0; h < RACE_ADDRS; h++) {
			struct bw_addr a = h & 1 ? ip6_host((uint16_t)h) : ip4(198, 18, 1, (uint8_t)h);
			uint8_t v = (uint8_t)(h | (round & 1) << 7);
			uint8_t mac[6] = { 0x02, v, v, v, v, v };
			neigh_update(t, &a, mac, 1000, NULL);
		}
	}
	atomic_store(&race_stop, 1);
	return NULL;
}

static void test_concurrent(void)
{
	struct neigh_table *t = neigh_new(RACE_ADDRS, 300, 4);
	pthread_t r1, r2, w;
	pthread_create(&r1, NULL, race_reader, t);
	pthread_create(&r2, NULL, race_reader, t);
	pthread_create(&w, NULL, race_writer, t);
	pthread_join(w, NULL);
	pthread_join(r1, NULL);
	pthread_join(r2, NULL);
	CHECK(atomic_load(&race_hits) > 0, "readers found entries while they were being learned (%ld)", atomic_load(&race_hits));
	CHECK_EQ(atomic_load(&race_torn), 0, "no torn or misattributed MAC seen by concurrent lookups");
	neigh_free(t);
}

struct walk_seen {
	int n, resolved;
};
static void walk_count(void *ctx, const struct bw_addr *ip, const uint8_t mac[6], bool resolved)
{
	struct walk_seen *w = ctx;
	(void)ip;
	(void)mac;
	w->n++;
	w->resolved += resolved;
}

static void test_walk(void)
{
	struct neigh_table *t = neigh_new(16, 10, 4);
	struct bw_addr a = ip4(192, 0, 2, 1), b = ip4(192, 0, 2, 2);
	uint8_t frame[64] = { 0 };
	neigh_update(t, &a, mac_a, 0, NULL);
	neigh_enqueue(t, &b, frame, sizeof frame, 0);
	struct walk_seen w = { 0, 0 };
	neigh_walk(t, walk_count, &w);
	CHECK(w.n == 2 && w.resolved == 1, "walk lists resolved and pending entries");
	neigh_tick(t, 10000, NULL, NULL, NULL);
	w.n = w.resolved = 0;
	neigh_walk(t, walk_count, &w);
	CHECK(w.n == 2 && w.resolved == 0, "tick marks expired entries unresolved");
	neigh_free(t);
}

/* What lets the red learner skip the lock: confirmed recently, with the same MAC. */
static void test_confirmed_since(void)
{
	struct neigh_table *t = neigh_new(16, 300, 4);
	struct bw_addr a = ip4(198, 18, 1, 10), other = ip4(198, 18, 1, 11);

	CHECK(!neigh_confirmed_since(t, &a, mac_a, 0), "unknown: not confirmed");
	neigh_update(t, &a, mac_a, 5000, NULL);
	CHECK(neigh_confirmed_since(t, &a, mac_a, 4500), "learned at 5000: confirmed since 4500");
	CHECK(!neigh_confirmed_since(t, &a, mac_a, 5500), "but not since 5500: time to refresh");
	CHECK(!neigh_confirmed_since(t, &a, mac_b, 4500), "another MAC for the address is news");
	CHECK(!neigh_confirmed_since(t, &other, mac_a, 0), "another address is not confirmed");
	neigh_update(t, &a, mac_a, 6000, NULL);
	CHECK(neigh_confirmed_since(t, &a, mac_a, 5500), "a refresh moves the confirmation");
	neigh_free(t);
}

int main(void)
{
	test_learn_lookup();
	test_confirmed_since();
	test_timeout();
	test_tick();
	test_queue_limits();
	test_flush_queued();
	test_txq();
	test_concurrent();
	test_walk();
	return check_done();
}
