/* pcapfwd: the bench's second reference, a libpcap forwarder between two ports without crypto (not a test). */
/* SPDX-License-Identifier: ISC */
/*
 * It does what bitw-wire's dataplane does minus policy and ESP: the same
 * capture (libpcap, promiscuous, immediate, inbound only, a 32 MiB ring),
 * batches of 64 from poll() on, one thread per direction, the same software
 * completion of CHECKSUM_PARTIAL frames (wire/csum.c, after wire/pkt.c's
 * parse), and the cheapest transmit a forwarder has: a PACKET_TX_RING with
 * the qdisc bypassed, one kick per batch, and each frame copied by the kernel
 * into its skb, as bitw-wire's ring does (wire/txq.c). --tx lend lends the
 * ring's pages to the skbs instead (zero copy, which a veth undoes by copying
 * them into fresh pages per frame); --tx sendmmsg copies into 64 buffers sent
 * by one sendmmsg(). Its figure is the ceiling of that mechanism here.
 *
 *   pcapfwd [--tx ring|lend|sendmmsg] PORT_A PORT_B
 *
 * Prints "pcapfwd: ready" once both directions run, and its counters on
 * SIGINT or SIGTERM. The bench turns offloads off on the ports itself.
 */
#include <endian.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pkt.h"

/* As bitw-wire (wire/port.c, wire/port.h, wire/fwd.c, wire/txq.c), so only the work between differs. */
#define CAPTURE_RING_BYTES (32 << 20)
#define SNAPLEN (65535 + 14 + 4)
#define RX_BATCH 64
#define RX_ROUNDS 16
#define TX_BYTES (8 << 20)   /* sendmmsg's socket buffer */
#define TX_RING_FRAMES 256   /* about bitw-wire's per data queue: 66-258 measured alike there, 1026 worse */
#define TX_WAIT_TRIES 8
#define TX_WAIT_NS 200000
/* A frame's room beyond the MTU: Ethernet header and one VLAN tag. */
#define L2_ROOM 18
#define TX_BLOCK_BYTES (64 << 10)
/* Where TPACKET_V2 takes a frame's data without PACKET_TX_HAS_OFF: right after the aligned header. */
#define TX_DATA TPACKET_ALIGN(sizeof(struct tpacket2_hdr))
#define TX_VNET sizeof(struct virtio_net_hdr)

enum tx_kind { TX_RING, TX_LEND, TX_MMSG };

struct tx {
	enum tx_kind kind;
	int fd;
	uint32_t slot_bytes;   /* largest frame a slot holds */
	/* TX_RING, TX_LEND */
	uint32_t vnet;         /* bytes of virtio_net_hdr before each frame: TX_VNET with TX_RING, else 0 */
	uint8_t *ring;
	size_t ring_bytes;
	uint32_t frame_size, nframes, head;
	/* TX_MMSG */
	uint8_t *buf;
	struct mmsghdr msg[RX_BATCH];
	struct iovec iov[RX_BATCH];
	uint32_t queued;
};

struct direction {
	const char *from, *to;
	pcap_t *in;
	int in_fd;
	struct tx tx;
	pthread_t thread;
	uint64_t forwarded, tx_dropped;
};

static atomic_bool stopping;

static int iface_mtu(const char *ifname)
{
	struct ifreq ifr;
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	if (sock < 0)
		return -1;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	rc = ioctl(sock, SIOCGIFMTU, &ifr);
	close(sock);
	return rc < 0 ? -1 : ifr.ifr_mtu;
}

static pcap_t *capture_open(const char *ifname)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_create(ifname, ebuf);

	if (!p) {
		fprintf(stderr, "pcapfwd: %s: %s\n", ifname, ebuf);
		return NULL;
	}
	if (pcap_set_snaplen(p, SNAPLEN) || pcap_set_promisc(p, 1) || pcap_set_immediate_mode(p, 1) ||
	    pcap_set_buffer_size(p, CAPTURE_RING_BYTES) || pcap_activate(p) < 0 ||
	    pcap_setdirection(p, PCAP_D_IN) < 0 || pcap_setnonblock(p, 1, ebuf) < 0) {
		fprintf(stderr, "pcapfwd: %s: %s\n", ifname, *ebuf ? ebuf : pcap_geterr(p));
		pcap_close(p);
		return NULL;
	}
	return p;
}

/* The slot size for TPACKET_V2: header and frame, rounded up to a power of two so slots tile the blocks. */
static uint32_t ring_frame_size(uint32_t data_bytes)
{
	uint32_t need = (uint32_t)TX_DATA + data_bytes, size = TPACKET_ALIGNMENT;

	while (size < need)
		size <<= 1;
	return size;
}

/*
 * PACKET_LOSS: a frame the kernel refuses is skipped and its slot freed,
 * rather than stopping the ring. PACKET_VNET_HDR (TX_RING): each frame starts
 * with a virtio_net_hdr whose hdr_len is the whole frame, so the kernel copies
 * it into the head of its skb instead of attaching the ring's page, which a
 * veth would copy into a fresh page anyway (skb_orphan_frags).
 */
static int tx_ring_setup(struct tx *t)
{
	int version = TPACKET_V2, one = 1;
	uint32_t block = TX_BLOCK_BYTES, per_block;

	t->vnet = t->kind == TX_RING ? TX_VNET : 0;
	t->frame_size = ring_frame_size(t->vnet + t->slot_bytes);
	if (block < t->frame_size)
		block = t->frame_size;
	per_block = block / t->frame_size;
	struct tpacket_req req = {
		.tp_block_size = block, .tp_block_nr = (TX_RING_FRAMES + per_block - 1) / per_block,
		.tp_frame_size = t->frame_size,
	};
	req.tp_frame_nr = req.tp_block_nr * per_block;
	t->nframes = req.tp_frame_nr;
	if (setsockopt(t->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0 ||
	    setsockopt(t->fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0 ||
	    (t->vnet && setsockopt(t->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) ||
	    setsockopt(t->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0)
		return -1;
	t->ring_bytes = (size_t)block * req.tp_block_nr;
	t->ring = mmap(NULL, t->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	return t->ring == MAP_FAILED ? -1 : 0;
}

static int tx_mmsg_setup(struct tx *t)
{
	int sndbuf = TX_BYTES;

	if (setsockopt(t->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
		(void)setsockopt(t->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	t->buf = malloc((size_t)RX_BATCH * t->slot_bytes);
	if (!t->buf)
		return -1;
	for (uint32_t i = 0; i < RX_BATCH; i++) {
		t->iov[i].iov_base = t->buf + (size_t)i * t->slot_bytes;
		t->msg[i].msg_hdr.msg_iov = &t->iov[i];
		t->msg[i].msg_hdr.msg_iovlen = 1;
	}
	return 0;
}

/* A send-only packet socket on ifname (protocol 0: it subscribes to no frames), the qdisc bypassed. */
static int tx_open(struct tx *t, enum tx_kind kind, const char *ifname)
{
	int one = 1, mtu = iface_mtu(ifname);
	unsigned ifindex = if_nametoindex(ifname);

	memset(t, 0, sizeof *t);
	t->kind = kind;
	t->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (t->fd < 0 || mtu <= 0 || !ifindex)
		goto fail;
	t->slot_bytes = (uint32_t)mtu + L2_ROOM;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = (int)ifindex };
	if (setsockopt(t->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0 ||
	    (kind == TX_MMSG ? tx_mmsg_setup(t) : tx_ring_setup(t)) < 0 ||
	    bind(t->fd, (struct sockaddr *)&sll, sizeof sll) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "pcapfwd: transmit on %s: %s\n", ifname, strerror(errno));
	return -1;
}

static void tx_wait_room(const struct tx *t, int err)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLOUT };
	struct timespec ts = { 0, TX_WAIT_NS };

	(void)ppoll(&pfd, err == ENOBUFS ? 0 : 1, &ts, NULL);
}

static struct tpacket2_hdr *ring_slot(const struct tx *t)
{
	return (struct tpacket2_hdr *)(void *)(t->ring + (size_t)(t->head % t->nframes) * t->frame_size);
}

/* The kernel hands slots back in order when their skbs are freed: wait a little for the next one. */
static bool ring_slot_free(struct direction *d, struct tpacket2_hdr *h)
{
	for (int tries = 0; tries < TX_WAIT_TRIES; tries++) {
		if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) == TP_STATUS_AVAILABLE)
			return true;
		(void)send(d->tx.fd, NULL, 0, MSG_DONTWAIT);
		tx_wait_room(&d->tx, EAGAIN);
	}
	return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) == TP_STATUS_AVAILABLE;
}

static void ring_put(struct direction *d, const uint8_t *frame, uint32_t len)
{
	struct tpacket2_hdr *h = ring_slot(&d->tx);

	if (!ring_slot_free(d, h)) {
		d->tx_dropped++;
		return;
	}
	uint8_t *data = (uint8_t *)h + TX_DATA;

	if (d->tx.vnet) {
		/* No offload asked for; the "header" is the whole frame, for the kernel to copy. */
		struct virtio_net_hdr *vh = (struct virtio_net_hdr *)(void *)data;

		memset(vh, 0, sizeof *vh);
		vh->hdr_len = htole16((uint16_t)len);
	}
	memcpy(data + d->tx.vnet, frame, len);
	h->tp_len = d->tx.vnet + len;
	__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	d->tx.head++;
	d->forwarded++;
}

static void mmsg_flush(struct direction *d)
{
	struct tx *t = &d->tx;
	uint32_t done = 0, waits = 0;

	while (done < t->queued) {
		int r = sendmmsg(t->fd, &t->msg[done], t->queued - done, MSG_DONTWAIT);

		if (r > 0) {
			done += (uint32_t)r;
			d->forwarded += (uint64_t)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r < 0 && (errno == EAGAIN || errno == ENOBUFS) && waits++ < TX_WAIT_TRIES) {
			tx_wait_room(t, errno);
		} else {
			d->tx_dropped += t->queued - done;
			break;
		}
	}
	t->queued = 0;
}

static void mmsg_put(struct direction *d, const uint8_t *frame, uint32_t len)
{
	struct tx *t = &d->tx;

	if (t->queued == RX_BATCH)
		mmsg_flush(d);
	memcpy(t->iov[t->queued].iov_base, frame, len);
	t->iov[t->queued++].iov_len = len;
}

/* One kick per batch: the ring's frames go out in one send(), the queued ones in one sendmmsg(). */
static void tx_kick(struct direction *d)
{
	if (d->tx.kind == TX_MMSG)
		mmsg_flush(d);
	else
		(void)send(d->tx.fd, NULL, 0, MSG_DONTWAIT);
}

static void forward_one(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct direction *d = (struct direction *)(void *)user;
	/* The capture ring is mapped writable and the slot is ours until we return, as in bitw-wire. */
	uint8_t *frame = (uint8_t *)(uintptr_t)bytes;
	struct pkt_info pi;

	if (h->caplen != h->len || h->caplen > d->tx.slot_bytes) {
		d->tx_dropped++;
		return;
	}
	if (pkt_parse(frame, h->caplen, &pi) == 0 && pi.family)
		csum_complete_partial(frame, &pi);
	if (d->tx.kind == TX_MMSG)
		mmsg_put(d, frame, h->caplen);
	else
		ring_put(d, frame, h->caplen);
}

static void *direction_main(void *arg)
{
	struct direction *d = arg;
	struct pollfd pfd = { .fd = d->in_fd, .events = POLLIN };

	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		(void)poll(&pfd, 1, 100);
		for (int round = 0; round < RX_ROUNDS; round++) {
			int n = pcap_dispatch(d->in, RX_BATCH, forward_one, (u_char *)d);

			tx_kick(d);
			if (n < RX_BATCH)
				break;
		}
	}
	return NULL;
}

static void report(const struct direction *d)
{
	struct pcap_stat ps = { 0 };

	(void)pcap_stats(d->in, &ps);
	fprintf(stderr, "pcapfwd: %s -> %s: %llu forwarded, %llu not sent, %u capture ring drops\n", d->from, d->to,
	        (unsigned long long)d->forwarded, (unsigned long long)d->tx_dropped, ps.ps_drop);
}

static int usage(void)
{
	fprintf(stderr, "usage: pcapfwd [--tx ring|lend|sendmmsg] PORT_A PORT_B\n");
	return 2;
}

int main(int argc, char **argv)
{
	enum tx_kind kind = TX_RING;
	int at = 1;

	if (argc == 5 && !strcmp(argv[1], "--tx")) {
		if (!strcmp(argv[2], "sendmmsg"))
			kind = TX_MMSG;
		else if (!strcmp(argv[2], "lend"))
			kind = TX_LEND;
		else if (strcmp(argv[2], "ring"))
			return usage();
		at = 3;
	} else if (argc != 3) {
		return usage();
	}

	static struct direction dirs[2];
	pcap_t *a = capture_open(argv[at]), *b = a ? capture_open(argv[at + 1]) : NULL;
	if (!b)
		return 1;
	dirs[0] = (struct direction){ .from = argv[at], .to = argv[at + 1], .in = a };
	dirs[1] = (struct direction){ .from = argv[at + 1], .to = argv[at], .in = b };

	/* Only the main thread takes the stop signals; the data threads see `stopping` within a poll timeout. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	for (int i = 0; i < 2; i++) {
		dirs[i].in_fd = pcap_get_selectable_fd(dirs[i].in);
		if (dirs[i].in_fd < 0 || tx_open(&dirs[i].tx, kind, dirs[i].to) < 0)
			return 1;
	}
	for (int i = 0; i < 2; i++) {
		if (pthread_create(&dirs[i].thread, NULL, direction_main, &dirs[i]) != 0) {
			fprintf(stderr, "pcapfwd: cannot start a thread\n");
			return 1;
		}
	}
	static const char *const tx_names[] = {
		[TX_RING] = "PACKET_TX_RING, copied", [TX_LEND] = "PACKET_TX_RING, lent", [TX_MMSG] = "sendmmsg",
	};
	fprintf(stderr, "pcapfwd: ready (transmit by %s)\n", tx_names[kind]);

	int sig;
	(void)sigwait(&stop_signals, &sig);
	atomic_store(&stopping, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(dirs[i].thread, NULL);
		report(&dirs[i]);
		pcap_close(dirs[i].in);
		if (dirs[i].tx.ring)
			munmap(dirs[i].tx.ring, dirs[i].tx.ring_bytes);
		free(dirs[i].tx.buf);
		close(dirs[i].tx.fd);
	}
	return 0;
}
