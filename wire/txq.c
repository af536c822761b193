/* txq.c: batched transmit on a port: frames collected in preallocated slots and sent with one sendmmsg(). */
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "port.h"
#include "wire.h"

#define TXQ_SNDBUF (8 << 20)
#define TXQ_WAIT_TRIES 8             /* brief waits for buffer space before dropping */
#define TXQ_WAIT_NS 200000           /* 0.2 ms each */

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

int txq_init(struct txq *q, struct port *p, char *err, size_t errlen)
{
	int fd = packet_socket(p->ifindex, err, errlen);
	if (fd < 0) {
		memset(q, 0, sizeof *q);
		q->fd = -1;
		return -XE_IO;
	}
	int rc = txq_init_fd(q, p, fd);
	if (rc < 0)
		snprintf(err, errlen, "%s: out of memory for transmit slots", p->ifname);
	return rc;
}

void txq_destroy(struct txq *q)
{
	/* A queue that never got its slots never got a socket either (a zeroed one holds fd 0). */
	if (q->buf && q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	free(q->buf);
	q->buf = NULL;
	q->n = 0;
}

uint8_t *txq_slot(struct txq *q)
{
	if (q->n == TXQ_MAX)
		txq_flush(q);
	return q->buf + (size_t)q->n * TXQ_BUF;
}

void txq_commit(struct txq *q, uint32_t len)
{
	if (q->n == TXQ_MAX || len == 0 || len > TXQ_BUF) {
		atomic_fetch_add_explicit(&q->port->st.tx_errors, 1, memory_order_relaxed);
		return;
	}
	q->iov[q->n++].iov_len = len;
}

void txq_push(struct txq *q, const uint8_t *frame, uint32_t len)
{
	if (len == 0 || len > TXQ_BUF) {
		atomic_fetch_add_explicit(&q->port->st.tx_errors, 1, memory_order_relaxed);
		return;
	}
	memcpy(txq_slot(q), frame, len);
	txq_commit(q, len);
}

/* Full socket buffer: wait for room (EAGAIN) or let the device drain (ENOBUFS). */
static void wait_room(int fd, int err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	struct timespec ts = { 0, TXQ_WAIT_NS };
	(void)ppoll(&pfd, err == ENOBUFS ? 0 : 1, &ts, NULL);
}

static void count_sent(struct txq *q, uint32_t from, uint32_t n)
{
	uint64_t bytes = 0;
	for (uint32_t i = from; i < from + n; i++)
		bytes += q->iov[i].iov_len;
	atomic_fetch_add_explicit(&q->port->st.tx_packets, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&q->port->st.tx_bytes, bytes, memory_order_relaxed);
}

int txq_flush(struct txq *q)
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
		atomic_fetch_add_explicit(&q->port->st.tx_errors, failed, memory_order_relaxed);
	q->n = 0;
	return failed ? -XE_TX_FAILED : (int)done;
}
