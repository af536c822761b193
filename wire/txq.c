/* txq.c: batched transmit on a port: frames written into a PACKET_TX_RING and sent by one send(), or sendmmsg(). */
#include <errno.h>
#include <endian.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "port.h"
#include "wire.h"

#define TXQ_SNDBUF (8 << 20)
#define TXQ_WAIT_TRIES 8             /* brief waits for buffer space before dropping */
#define TXQ_WAIT_NS 200000           /* 0.2 ms each */

/*
 * Ring geometry. A frame must hold TXQ_BUF bytes after its header. Blocks are
 * allocated by the kernel in powers of two pages, so a 32 KiB block with
 * three frames wastes 64 bytes, where one frame per 12 KiB block would waste
 * about a fifth.
 */
#define TXR_BLOCK (32u << 10)
#define TXR_PER_BLOCK 3u
#define TXR_FRAME ((TXR_BLOCK / TXR_PER_BLOCK) & ~(TPACKET_ALIGNMENT - 1u))
#define TXR_DATA TPACKET_ALIGN(sizeof(struct tpacket2_hdr))  /* where TPACKET_V2 takes a frame's data */
#define TXR_VNET sizeof(struct virtio_net_hdr)                /* which starts with a virtio_net_hdr, see ring_init */
#define TXR_ETH (TXR_DATA + TXR_VNET)                          /* then the Ethernet frame */
#define ETH_P_8021Q_ 0x8100

_Static_assert(TXR_FRAME - TXR_ETH >= TXQ_BUF, "a ring frame holds a whole slot");

/* ---- shared ---- */

int txq_init_fd(struct txq *q, struct port *p, int fd)
{
	memset(q, 0, sizeof *q);
	q->port = p;
	q->fd = fd;
	q->buf = malloc((size_t)TXQ_MAX * TXQ_BUF);
	if (!q->buf) {
		close(fd);
		q->fd = -1;
		return -XE_NOMEM;
	}
	/* The message array never changes shape: each message points at its own slot. */
	for (uint32_t i = 0; i < TXQ_MAX; i++) {
		q->iov[i].iov_base = q->buf + (size_t)i * TXQ_BUF;
		q->msg[i].msg_hdr.msg_iov = &q->iov[i];
		q->msg[i].msg_hdr.msg_iovlen = 1;
	}
	return 0;
}

/* Send-only: protocol 0 binds to the interface but subscribes to no frames. */
static int packet_socket(int ifindex, char *err, size_t errlen)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "AF_PACKET socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = ifindex };
	if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
		snprintf(err, errlen, "bind AF_PACKET to ifindex %d: %s", ifindex, strerror(errno));
		close(fd);
		return -1;
	}
	/* Both optional: the qdisc only adds latency for a wire, and a big buffer absorbs bursts. */
	int one = 1, sndbuf = TXQ_SNDBUF;
	(void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	return fd;
}

/* Full socket buffer: wait for room (EAGAIN) or let the device drain (ENOBUFS). */
static void wait_room(int fd, int err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	struct timespec ts = { 0, TXQ_WAIT_NS };
	(void)ppoll(&pfd, err == ENOBUFS ? 0 : 1, &ts, NULL);
}

static void count_tx(struct txq *q, uint32_t packets, uint64_t bytes, uint32_t errors)
{
	if (packets) {
		atomic_fetch_add_explicit(&q->port->st.tx_packets, packets, memory_order_relaxed);
		atomic_fetch_add_explicit(&q->port->st.tx_bytes, bytes, memory_order_relaxed);
	}
	if (errors)
		atomic_fetch_add_explicit(&q->port->st.tx_errors, errors, memory_order_relaxed);
}

/* ---- PACKET_TX_RING ---- */

static inline struct tpacket2_hdr *frame_hdr(const struct txq *q, uint32_t i)
{
	return (struct tpacket2_hdr *)(q->ring + (size_t)(i / TXR_PER_BLOCK) * TXR_BLOCK +
	                               (size_t)(i % TXR_PER_BLOCK) * TXR_FRAME);
}

/* The kernel writes a frame's status from any CPU (a transmitted frame's skb is freed in softirq). */
static inline uint32_t frame_status(const struct tpacket2_hdr *h)
{
	return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
}

/* Ours to write: the kernel neither waits to send it nor holds it (timestamp flags may come with AVAILABLE). */
static inline bool frame_free(const struct tpacket2_hdr *h)
{
	return (frame_status(h) & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT)) == 0;
}

/*
 * PACKET_LOSS: a frame the kernel refuses (one it cannot parse) is skipped
 * instead of stopping the ring at it until user space repairs it.
 *
 * PACKET_VNET_HDR: each frame starts with a virtio_net_hdr whose hdr_len
 * covers the whole frame, so send() copies every frame into the head of its
 * skb. Otherwise the kernel attaches the ring's pages to the skb (zero copy),
 * and a veth, or any path that queues the skb, must copy them into fresh pages
 * first (skb_orphan_frags in __dev_forward_skb): a page allocation and a
 * paged skb per frame, which measured slower here than the one copy.
 *
 * Returns 0 or a negative errno; on failure the socket may carry part of the
 * setup, so the caller starts over on a fresh one.
 */
static int ring_init(struct txq *q, struct port *p, int fd, uint32_t want)
{
	int v = TPACKET_V2, one = 1;
	uint32_t blocks = (want + TXR_PER_BLOCK - 1) / TXR_PER_BLOCK;
	struct tpacket_req req = { .tp_block_size = TXR_BLOCK, .tp_block_nr = blocks ? blocks : 1,
	                           .tp_frame_size = TXR_FRAME };

	req.tp_frame_nr = req.tp_block_nr * TXR_PER_BLOCK;
	memset(q, 0, sizeof *q);
	q->port = p;
	q->fd = fd;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0)
		return -errno;
	q->ring_len = (size_t)req.tp_block_nr * TXR_BLOCK;
	void *ring = mmap(NULL, q->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED)
		return -errno;
	q->ring = ring;
	q->buf = malloc(TXQ_BUF);  /* the spare slot */
	if (!q->buf) {
		munmap(q->ring, q->ring_len);
		q->ring = NULL;
		return -ENOMEM;
	}
	q->frames = req.tp_frame_nr;
	q->frame_size = TXR_FRAME;
	return 0;
}

/*
 * Would the device take this frame? With PACKET_VNET_HDR the kernel does not
 * check the MTU itself (an oversize frame would reach the driver), so this is
 * the check: against the interface's MTU as last read (port_refresh_mtu, with
 * the link state), the port's when it was never read.
 */
static bool frame_fits(const struct txq *q, const uint8_t *f, uint32_t len)
{
	uint32_t mtu = atomic_load_explicit(&q->port->dev_mtu, memory_order_relaxed);
	uint32_t max = (mtu ? mtu : q->port->mtu) + ETH_HLEN;

	if (len < ETH_HLEN || len > TXQ_BUF)
		return false;
	if (len <= max)
		return true;
	return len <= max + 4 && f[12] == ETH_P_8021Q_ >> 8 && f[13] == (ETH_P_8021Q_ & 0xff);
}

/*
 * After a send(): count the frames the kernel took (their status left
 * SEND_REQUEST; it takes them in ring order and stops at the first it cannot
 * send), and put into *refused how many of them it skipped (PACKET_LOSS). A
 * skipped frame looks like a sent one afterwards; only sent tells: what
 * send() returned, the bytes it transmitted, which leave skipped frames out.
 * One refusal is counted per shortfall, the least there was. With
 * PACKET_VNET_HDR the kernel skips only a frame it cannot parse (shorter than
 * an Ethernet header, longer than a ring frame), and frame_fits refuses those
 * at commit, so this is a net for the unforeseen; when send() fails after
 * taking frames (a later one got ENOBUFS) the sum is lost and they count as
 * sent. Either way each frame is counted once, sent or in tx_errors. Returns
 * the frames sent.
 */
static uint32_t ring_taken(struct txq *q, ssize_t sent, uint32_t *refused)
{
	uint32_t i = (q->head + q->frames - q->unsent) % q->frames, n = 0;
	uint64_t bytes = 0;

	*refused = 0;
	while (q->unsent) {
		const struct tpacket2_hdr *h = frame_hdr(q, i);

		if (frame_status(h) == TP_STATUS_SEND_REQUEST)
			break;
		bytes += h->tp_len - TXR_VNET;
		n++;
		q->unsent--;
		if (++i == q->frames)
			i = 0;
	}
	if (sent >= 0 && (uint64_t)sent < bytes) {
		*refused = 1;
		bytes = (uint64_t)sent;
	}
	count_tx(q, n - *refused, bytes, *refused);
	return n - *refused;
}

/* Give up on the frames the kernel has not taken: they become free again, and the kernel's next frame is ours. */
static uint32_t ring_drop_unsent(struct txq *q)
{
	uint32_t n = q->unsent;

	while (q->unsent) {
		q->head = q->head ? q->head - 1 : q->frames - 1;
		__atomic_store_n(&frame_hdr(q, q->head)->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELAXED);
		q->unsent--;
	}
	count_tx(q, 0, 0, n);
	return n;
}

static int ring_flush(struct txq *q)
{
	uint32_t done = 0, dropped = 0, waits = 0, refused;

	while (q->unsent) {
		ssize_t r = send(q->fd, NULL, 0, MSG_DONTWAIT);
		int e = r < 0 ? errno : 0;

		done += ring_taken(q, r, &refused);
		dropped += refused;
		if (!q->unsent)
			break;
		if (e == EINTR)
			continue;
		/* Stopped short without an error, or for want of buffer space: the kernel frees it as frames leave. */
		if ((e == 0 || e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) && waits++ < TXQ_WAIT_TRIES) {
			wait_room(q->fd, ENOBUFS);
			continue;
		}
		dropped += ring_drop_unsent(q);  /* still no room, or the device refuses (down, gone) */
	}
	return dropped ? -XE_TX_FAILED : (int)done;
}

/*
 * The next frame is still the kernel's: the ring is full. Hand it everything
 * committed, then wait briefly for the oldest frame to come back.
 */
static bool ring_reclaim(struct txq *q)
{
	ring_flush(q);
	for (uint32_t waits = 0; !frame_free(frame_hdr(q, q->head)); waits++) {
		if (waits == TXQ_WAIT_TRIES)
			return false;
		/*
		 * A plain sleep: POLLOUT only says the socket buffer has room. The
		 * frame comes back when its skb is freed, often by the softirq
		 * this thread makes way for.
		 */
		wait_room(q->fd, ENOBUFS);
	}
	return true;
}

/*
 * The head frame, or the spare when it stays the kernel's. A second call
 * before the spare's commit (esp_decap_slot, then deliver_red) only looks
 * again: the frame already waited for the ring, and one more wait per packet
 * would stall its thread twice as long while its capture ring fills.
 */
static uint8_t *ring_slot(struct txq *q)
{
	struct tpacket2_hdr *h = frame_hdr(q, q->head);

	if (q->on_spare)
		q->on_spare = !frame_free(h);
	else
		q->on_spare = !frame_free(h) && !ring_reclaim(q);
	if (q->on_spare)
		return q->buf;
	return (uint8_t *)frame_hdr(q, q->head) + TXR_ETH;
}

static void ring_commit(struct txq *q, uint32_t len)
{
	struct tpacket2_hdr *h = frame_hdr(q, q->head);
	struct virtio_net_hdr *vh = (struct virtio_net_hdr *)((uint8_t *)h + TXR_DATA);

	if (q->on_spare || !frame_fits(q, (const uint8_t *)h + TXR_ETH, len)) {
		q->on_spare = false;
		count_tx(q, 0, 0, 1);
		return;
	}
	/* No offload asked for; the "header" is the whole frame, for the kernel to copy (see ring_init). */
	memset(vh, 0, sizeof *vh);
	vh->hdr_len = htole16((uint16_t)len);
	h->tp_len = len + TXR_VNET;
	/* Release: the frame's data and length are in place before the kernel can see it ready. */
	__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	if (++q->head == q->frames)
		q->head = 0;
	q->unsent++;
}

/* ---- the queue ---- */

/* Says once per process which transmit path the ports use (and why not the ring). */
static void log_path(const struct port *p, uint32_t frames, int ring_err)
{
	static atomic_int said_ring, said_mmsg;

	if (!ring_err && !atomic_exchange(&said_ring, 1))
		wlog(WLOG_INFO, "transmit: PACKET_TX_RING, %u frames of %u bytes per queue (%s)", frames, TXR_FRAME,
		     p->ifname);
	else if (ring_err && !atomic_exchange(&said_mmsg, 1))
		wlog(WLOG_WARN, "transmit: no PACKET_TX_RING on %s (%s): sending with sendmmsg", p->ifname,
		     strerror(-ring_err));
}

int txq_init(struct txq *q, struct port *p, uint32_t ring_frames, char *err, size_t errlen)
{
	int fd = packet_socket(p->ifindex, err, errlen), rc;

	if (fd >= 0) {
		rc = ring_init(q, p, fd, ring_frames);
		log_path(p, q->frames, rc);
		if (rc == 0)
			return 0;
		free(q->buf);
		close(fd);
		fd = packet_socket(p->ifindex, err, errlen);
	}
	if (fd < 0) {
		memset(q, 0, sizeof *q);
		q->fd = -1;
		return -XE_IO;
	}
	rc = txq_init_fd(q, p, fd);
	if (rc < 0)
		snprintf(err, errlen, "%s: out of memory for transmit slots", p->ifname);
	return rc;
}

void txq_destroy(struct txq *q)
{
	/* A queue that never got its slots never got a socket either (a zeroed one holds fd 0). */
	if (q->buf && q->fd >= 0)
		close(q->fd);
	if (q->ring)
		munmap(q->ring, q->ring_len);
	q->ring = NULL;
	q->fd = -1;
	free(q->buf);
	q->buf = NULL;
	q->n = 0;
	q->unsent = 0;
}

uint8_t *txq_slot(struct txq *q)
{
	if (q->ring)
		return ring_slot(q);
	if (q->n == TXQ_MAX)
		txq_flush(q);
	return q->buf + (size_t)q->n * TXQ_BUF;
}

void txq_commit(struct txq *q, uint32_t len)
{
	if (q->ring) {
		ring_commit(q, len);
		return;
	}
	if (q->n == TXQ_MAX || len == 0 || len > TXQ_BUF) {
		count_tx(q, 0, 0, 1);
		return;
	}
	q->iov[q->n++].iov_len = len;
}

void txq_push(struct txq *q, const uint8_t *frame, uint32_t len)
{
	if (len == 0 || len > TXQ_BUF) {
		count_tx(q, 0, 0, 1);
		return;
	}
	memcpy(txq_slot(q), frame, len);
	txq_commit(q, len);
}

static void count_sent(struct txq *q, uint32_t from, uint32_t n)
{
	uint64_t bytes = 0;
	for (uint32_t i = from; i < from + n; i++)
		bytes += q->iov[i].iov_len;
	count_tx(q, n, bytes, 0);
}

static int mmsg_flush(struct txq *q)
{
	uint32_t done = 0, failed = 0, waits = 0;
	while (done + failed < q->n) {
		uint32_t at = done + failed;
		int r = sendmmsg(q->fd, &q->msg[at], q->n - at, MSG_DONTWAIT);
		if (r > 0) {
			count_sent(q, at, (uint32_t)r);
			done += (uint32_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			if (waits++ < TXQ_WAIT_TRIES) {
				wait_room(q->fd, errno);
				continue;
			}
			failed += q->n - at;  /* still no room: drop the rest */
			break;
		}
		failed++;  /* this frame is refused (e.g. EMSGSIZE): skip it, send the rest */
	}
	if (failed)
		count_tx(q, 0, 0, failed);
	q->n = 0;
	return failed ? -XE_TX_FAILED : (int)done;
}

int txq_flush(struct txq *q)
{
	return q->ring ? ring_flush(q) : mmsg_flush(q);
}
