/* test_port.c: a real port on a veth pair in a private network namespace: offloads off and restored, rx, tx, link state. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "port.h"
#include "wire.h"

/*
 * The namespace is unshared by this process alone, so the veth pair vanishes
 * with it whatever happens to the test: nothing to clean up, nothing touched
 * outside.
 */
static bool private_netns(void)
{
	if (unshare(CLONE_NEWNET) != 0)
		return false;
	/* No IPv6 chatter (DAD, MLD) on the pair: the only frames are the test's. */
	return system("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1 && "
	              "ip link add bw0 mtu 9500 type veth peer name bw1 mtu 9500 && "
	              "ip link set bw0 up && ip link set bw1 up") == 0;
}

static int ethtool_value(const char *ifname, uint32_t cmd, uint32_t set, bool do_set)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ethtool_value ev = { .cmd = cmd, .data = set };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	int rc = ioctl(s, SIOCETHTOOL, &ifr);
	close(s);
	if (rc < 0)
		return -1;
	return do_set ? 0 : (int)ev.data;
}

static int get_off(const char *ifname, uint32_t cmd)
{
	return ethtool_value(ifname, cmd, 0, false);
}

static int raw_socket(const char *ifname)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
	                           .sll_ifindex = (int)if_nametoindex(ifname) };
	if (fd < 0 || bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0)
		return -1;
	return fd;
}

static uint32_t make_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], uint8_t marker)
{
	static const uint8_t src[6] = { 0x02, 0, 0, 0, 0, 0x42 };
	memset(f, marker, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88, f[13] = 0xb5;  /* IEEE local experimental ethertype */
	return len;
}

struct seen {
	uint32_t n, len;
	uint8_t first[16], last;
};

static void on_frame(void *ctx, uint8_t *frame, uint32_t len)
{
	struct seen *s = ctx;
	if (len < 14 || frame[12] != 0x88 || frame[13] != 0xb5)
		return;  /* not one of the test's frames */
	s->n++;
	s->len = len;
	memcpy(s->first, frame, len < 16 ? len : 16);
	s->last = frame[len - 1];
	frame[len - 1] ^= 0xff;  /* the ring slot is writable in place */
}

/* Read until one of the test's frames arrives; returns how many arrived. */
static int rx_wait(struct port *p, struct seen *s)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	for (int i = 0; i < 20 && s->n == 0; i++) {
		if (port_rx_batch(p, 64, on_frame, s) < 0)
			break;
		if (s->n == 0)
			poll(&pfd, 1, 50);
	}
	return (int)s->n;
}

static void test_offloads_and_identity(struct port *p)
{
	CHECK_EQ(get_off("bw0", ETHTOOL_GGRO), 0, "GRO off while the port is open");
	CHECK(get_off("bw0", ETHTOOL_GGSO) == 0 && get_off("bw0", ETHTOOL_GTSO) == 0, "GSO and TSO off while open");
	CHECK_EQ(p->ifindex, if_nametoindex("bw0"), "ifindex read");
	CHECK_EQ(p->mtu, 9500, "MTU read from the interface");
	CHECK(p->fd >= 0, "pollable descriptor");
	CHECK(p->mac[0] != 0 || p->mac[5] != 0, "MAC read");
	CHECK(port_link_up(p), "link is up");
}

static void test_rx(struct port *p, int peer)
{
	uint8_t f[9400];
	struct seen s = { 0 };
	uint32_t n = make_frame(f, 100, p->mac, 0x5a);
	ssize_t sent = send(peer, f, n, 0);
	int got = rx_wait(p, &s);
	CHECK(sent == 100 && got == 1 && s.n == 1, "a frame sent by the peer is received");
	CHECK(s.len == 100 && memcmp(s.first, f, 14) == 0 && s.last == 0x5a, "whole and unchanged");
	CHECK_EQ(atomic_load(&p->st.rx_packets), 1, "rx packets counted");
	CHECK_EQ(atomic_load(&p->st.rx_bytes), 100, "rx bytes counted");

	/* Larger than PKT_MAX (a super-frame): handed up whole, so the caller can segment it. */
	n = make_frame(f, sizeof f, p->mac, 0x33);
	sent = send(peer, f, n, 0);
	memset(&s, 0, sizeof s);
	got = rx_wait(p, &s);
	CHECK(sent == (ssize_t)sizeof f && got == 1 && s.len == sizeof f, "a 9400-byte frame is handed up whole (%u)", s.len);
}

static void test_tx(struct port *p, int peer)
{
	struct txq q;
	char err[256] = "";
	int rc = txq_init(&q, p, TXQ_RING_CTL, err, sizeof err);
	CHECK_EQ(rc, 0, "txq on the port (%s)", err);
	if (rc)
		return;
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0x99 };
	uint8_t f[200];
	for (int i = 0; i < 3; i++) {
		make_frame(f, sizeof f, dst, (uint8_t)(0x10 + i));
		txq_push(&q, f, sizeof f);
	}
	CHECK_EQ(txq_flush(&q), 3, "three frames sent in one flush");
	int ok = 0;
	for (int i = 0; i < 3; i++) {
		uint8_t got[300];
		struct pollfd pfd = { .fd = peer, .events = POLLIN };
		poll(&pfd, 1, 500);
		ssize_t n = recv(peer, got, sizeof got, MSG_DONTWAIT);
		ok += n == 200 && memcmp(got, dst, 6) == 0 && got[199] == 0x10 + i;
	}
	CHECK_EQ(ok, 3, "the peer receives them whole and in order");
	CHECK(atomic_load(&p->st.tx_packets) == 3 && atomic_load(&p->st.tx_bytes) == 600, "tx counted on the port");

	struct seen s = { 0 };
	usleep(50000);
	port_rx_batch(p, 64, on_frame, &s);
	CHECK_EQ(s.n, 0, "our own transmissions are not captured back");
	txq_destroy(&q);

	/* Through the qdisc (as when bypass is refused) the capture taps see outgoing frames too. */
	int own = raw_socket("bw0");
	make_frame(f, sizeof f, dst, 0x77);
	ssize_t n = send(own, f, sizeof f, 0);
	usleep(50000);
	port_rx_batch(p, 64, on_frame, &s);
	CHECK(n == (ssize_t)sizeof f && s.n == 0,
	      "frames leaving the port are never captured as input");
	uint8_t got[300];
	recv(peer, got, sizeof got, MSG_DONTWAIT);
	close(own);
}

/* Frame i of the ring test: its length and every byte follow from i. */
static uint32_t seq_frame(uint8_t *f, uint32_t i)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0x98 };
	uint32_t len = 60 + (i * 37) % 1441;
	make_frame(f, len, dst, 0);
	for (uint32_t k = 14; k < len; k++)
		f[k] = (uint8_t)(i * 7 + k);
	memcpy(f + 14, &i, sizeof i);
	return len;
}

/* Read the peer's queue: how many of frames from..to-1 arrived whole and in order (stops at the first wrong one). */
static uint32_t read_seq(int peer, uint32_t from, uint32_t to)
{
	uint8_t want[1600], got[1600];
	uint32_t i = from;
	struct pollfd pfd = { .fd = peer, .events = POLLIN };
	while (i < to && poll(&pfd, 1, 500) > 0) {
		ssize_t n = recv(peer, got, sizeof got, MSG_DONTWAIT);
		if (n < 14 || got[12] != 0x88 || got[13] != 0xb5 || got[5] != 0x98)
			continue;  /* not one of these frames */
		uint32_t len = seq_frame(want, i);
		if ((uint32_t)n != len || memcmp(got, want, len) != 0)
			break;
		i++;
	}
	return i - from;
}

/* The ring frame header behind a slot txq_slot handed out (TPACKET_V2 header, then a virtio_net_hdr). */
static struct tpacket2_hdr *slot_hdr(uint8_t *slot)
{
	return (struct tpacket2_hdr *)(slot - TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) -
	                               sizeof(struct virtio_net_hdr));
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * The kernel still holds the next frame (as when the device cannot keep up):
 * txq_slot waits briefly, then hands out the spare, whose frame is dropped and
 * counted. Asked again before that commit (esp_decap_slot then deliver_red),
 * it waits no more; once the frame comes back, the ring is used again.
 */
static void test_ring_full(struct txq *q, struct port *p, int peer)
{
	uint8_t f[1600];
	uint64_t er0 = atomic_load(&p->st.tx_errors), pk0 = atomic_load(&p->st.tx_packets);
	uint8_t *head = txq_slot(q);
	struct tpacket2_hdr *h = slot_hdr(head);
	struct timespec t0;
	double first, again = 1e9;

	__atomic_store_n(&h->tp_status, TP_STATUS_SENDING, __ATOMIC_RELEASE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint8_t *spare = txq_slot(q);
	first = elapsed_ms(&t0);
	CHECK(spare != head && q->on_spare, "a full ring hands out the spare slot");
	CHECK(first >= 1.5, "after waiting for the ring (%.2f ms)", first);
	for (int i = 0; i < 3; i++) {  /* the least of three: the machine may preempt any one */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		uint8_t *s2 = txq_slot(q);
		double ms = elapsed_ms(&t0);
		again = ms < again ? ms : again;
		CHECK(s2 == spare, "asked again before the commit: the same spare");
	}
	CHECK(again < 1.0, "without waiting again (%.3f ms, %.2f the first time)", again, first);
	uint32_t len = seq_frame(f, 1002);
	memcpy(spare, f, len);
	txq_commit(q, len);
	CHECK(atomic_load(&p->st.tx_errors) - er0 == 1 && atomic_load(&p->st.tx_packets) == pk0,
	      "the spare's frame is dropped and counted in tx_errors");
	CHECK_EQ(txq_flush(q), 0, "nothing to send");

	/* The spare again, then the frame comes back before the commit: the ring frame, to copy the spare into. */
	spare = txq_slot(q);
	memcpy(spare, f, len);
	__atomic_store_n(&h->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
	uint8_t *slot = txq_slot(q);
	CHECK(spare == q->buf && slot == head && !q->on_spare, "the ring frame once the kernel gives it back");
	memcpy(slot, spare, len);
	txq_commit(q, len);
	CHECK_EQ(txq_flush(q), 1, "the next frame is sent");
	CHECK_EQ(read_seq(peer, 1002, 1003), 1, "and arrives whole");
	CHECK(atomic_load(&p->st.tx_errors) - er0 == 1 && atomic_load(&p->st.tx_packets) - pk0 == 1,
	      "counted once, as sent");
}

/* The device goes down with frames committed: they are dropped and counted, and the ring works on when it is up. */
static void test_ring_link_down(struct txq *q, struct port *p, int peer)
{
	uint8_t f[1600];
	uint64_t er0 = atomic_load(&p->st.tx_errors), pk0 = atomic_load(&p->st.tx_packets);
	uint32_t head = q->head;

	for (uint32_t i = 0; i < 3; i++) {
		uint32_t len = seq_frame(f, 2000 + i);
		txq_push(q, f, len);
	}
	system("ip link set bw0 down");
	CHECK_EQ(txq_flush(q), -XE_TX_FAILED, "a flush on a device that is down fails");
	CHECK(atomic_load(&p->st.tx_errors) - er0 == 3 && atomic_load(&p->st.tx_packets) == pk0,
	      "its three frames are counted in tx_errors");
	CHECK(q->unsent == 0 && q->head == head, "the ring is rewound to where they started");
	system("ip link set bw0 up");
	for (int i = 0; i < 40 && !port_link_up(p); i++)
		usleep(50000);
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t len = seq_frame(f, 1003 + i);
		txq_push(q, f, len);
	}
	CHECK_EQ(txq_flush(q), 3, "up again, the ring sends");
	CHECK_EQ(read_seq(peer, 1003, 1006), 3, "the frames after it arrive whole and in order");
	CHECK(atomic_load(&p->st.tx_errors) - er0 == 3 && atomic_load(&p->st.tx_packets) - pk0 == 3, "counted as sent");
}

/*
 * The device's MTU changes while the queue runs: refreshed with the link
 * state, the ring refuses what no longer fits and takes what fits now (frames
 * up to MTU + 14 bytes, + 18 with an 802.1Q tag).
 */
static void test_ring_mtu_change(struct txq *q, struct port *p, int peer)
{
	uint8_t f[1600];
	uint64_t er0 = atomic_load(&p->st.tx_errors), pk0 = atomic_load(&p->st.tx_packets);

	system("ip link set bw0 mtu 1058");
	port_refresh_mtu(p);
	CHECK_EQ(atomic_load(&p->dev_mtu), 1058, "the port reads the device's new MTU");
	uint32_t len2 = seq_frame(f, 1040);
	CHECK_EQ(len2, 1058 + ETH_HLEN + 2, "test frame of MTU + 16 bytes (%u)", len2);
	txq_push(q, f, len2);
	CHECK_EQ(atomic_load(&p->st.tx_errors) - er0, 1, "untagged, it is refused and counted");
	f[5] = 0x97;  /* not one of the sequence: read_seq passes over it */
	f[12] = 0x81, f[13] = 0x00;
	txq_push(q, f, len2);
	uint32_t len = seq_frame(f, 1001);  /* 1058 + 14 bytes */
	txq_push(q, f, len);
	CHECK_EQ(txq_flush(q), 2, "802.1Q-tagged, it is sent, and so is a frame of MTU + 14 bytes");
	CHECK(atomic_load(&p->st.tx_errors) - er0 == 1 && atomic_load(&p->st.tx_packets) - pk0 == 2,
	      "counted as sent");
	CHECK_EQ(read_seq(peer, 1001, 1002), 1, "the untagged one arrives whole");

	/* Raised again: the same queue takes the frame it refused. */
	system("ip link set bw0 mtu 9500");
	port_refresh_mtu(p);
	len2 = seq_frame(f, 1040);
	txq_push(q, f, len2);
	CHECK_EQ(txq_flush(q), 1, "the MTU raised, the frame of 1058 + 16 bytes is sent");
	CHECK_EQ(read_seq(peer, 1040, 1041), 1, "and arrives");
	CHECK_EQ(atomic_load(&p->st.tx_errors) - er0, 1, "no more errors");
}

static void test_tx_ring(struct port *p, int peer)
{
	struct txq q;
	char err[256] = "";
	uint8_t f[1600];
	int big = 64 << 20;
	CHECK_EQ(txq_init(&q, p, TXQ_RING_CTL, err, sizeof err), 0, "txq with a ring (%s)", err);
	CHECK(q.ring != NULL && q.frames >= TXQ_RING_CTL && q.frames < 2 * TXQ_RING_CTL,
	      "a veth port gets a PACKET_TX_RING of about the size asked (%u frames)", q.frames);
	if (!q.ring) {
		txq_destroy(&q);
		return;
	}
	setsockopt(peer, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
	uint64_t pk0 = atomic_load(&p->st.tx_packets), by0 = atomic_load(&p->st.tx_bytes);
	uint64_t er0 = atomic_load(&p->st.tx_errors), bytes = 0;

	/*
	 * 1000 frames through a ring of about 66, in bursts larger than the ring
	 * (txq_slot flushes by itself), read only after the last one: every
	 * ring frame is rewritten about 15 times while the frames sent from it
	 * wait in the peer's socket queue. They must arrive as they were written.
	 */
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t len = seq_frame(f, i);
		bytes += len;
		txq_push(&q, f, len);
		if (i % 100 == 99)
			txq_flush(&q);
	}
	CHECK_EQ(read_seq(peer, 0, 1000), 1000, "1000 frames through the ring arrive whole and in order, "
	         "though their ring frames were reused while they were queued at the peer");
	CHECK(atomic_load(&p->st.tx_packets) - pk0 == 1000 && atomic_load(&p->st.tx_bytes) - by0 == bytes &&
	      atomic_load(&p->st.tx_errors) == er0, "tx packets and bytes counted exactly, no errors");

	/* Frames the device would refuse are refused at commit, counted, and hold nothing up. */
	uint32_t mtu = atomic_load(&p->dev_mtu);
	CHECK_EQ(mtu, 9500, "the port knows the device's MTU");
	uint8_t *slot = txq_slot(&q);
	make_frame(slot, mtu + ETH_HLEN + 1, (const uint8_t[6]){ 0x02, 0, 0, 0, 0, 0x97 }, 1);
	txq_commit(&q, mtu + ETH_HLEN + 1);
	slot = txq_slot(&q);
	make_frame(slot, 10, (const uint8_t[6]){ 0x02, 0, 0, 0, 0, 0x97 }, 1);
	txq_commit(&q, 10);
	CHECK_EQ(atomic_load(&p->st.tx_errors) - er0, 2, "a frame longer than the MTU and a 10-byte one are counted "
	         "as tx errors");
	uint32_t len = seq_frame(f, 1000);
	txq_push(&q, f, len);
	CHECK_EQ(txq_flush(&q), 1, "the next frame is sent");
	CHECK_EQ(read_seq(peer, 1000, 1001), 1, "and arrives");

	test_ring_full(&q, p, peer);
	test_ring_link_down(&q, p, peer);
	test_ring_mtu_change(&q, p, peer);
	txq_destroy(&q);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root for a network namespace\n");
		return 0;
	}
	if (!private_netns()) {
		printf("1..0 # SKIP cannot create a network namespace with a veth pair\n");
		return 0;
	}
	/* Start from offloads on, so turning them off and back is visible. */
	ethtool_value("bw0", ETHTOOL_SGRO, 1, true);
	ethtool_value("bw0", ETHTOOL_SGSO, 1, true);
	ethtool_value("bw0", ETHTOOL_STSO, 1, true);
	bool gro_was_on = get_off("bw0", ETHTOOL_GGRO) == 1;
	bool tso_was_on = get_off("bw0", ETHTOOL_GTSO) == 1;

	struct port p;
	char err[256] = "";
	CHECK_EQ(port_open(&p, "bw-missing", 0, err, sizeof err), -XE_IO, "a missing interface is an error");
	CHECK(strstr(err, "bw-missing") != NULL, "naming the interface: %s", err);

	err[0] = 0;
	int rc = port_open(&p, "bw0", 0, err, sizeof err);
	CHECK_EQ(rc, 0, "port_open on a veth (%s)", err);
	if (rc)
		return check_done();
	int peer = raw_socket("bw1");
	CHECK(peer >= 0, "raw socket on the peer");
	test_offloads_and_identity(&p);
	test_rx(&p, peer);
	test_tx(&p, peer);
	test_tx_ring(&p, peer);

	system("ip link set bw1 down");
	usleep(100000);
	CHECK(!port_link_up(&p), "link down when the peer goes down");

	port_close(&p);
	CHECK(gro_was_on && get_off("bw0", ETHTOOL_GGRO) == 1, "GRO restored on close");
	CHECK(tso_was_on && get_off("bw0", ETHTOOL_GTSO) == 1, "TSO restored on close");

	struct port q;
	rc = port_open(&q, "bw0", 1400, err, sizeof err);
	CHECK(rc == 0 && q.mtu == 1400, "MTU override");
	if (rc == 0)
		port_close(&q);
	close(peer);
	return check_done();
}
