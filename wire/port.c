/* port.c: a packet port: libpcap capture of one interface, made to behave like a wire (no offloads). */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "counter.h"
#include "port.h"
#include "wire.h"

#define PORT_RING_BYTES (32 << 20)
/* Socket buffer for whole copies of super-frames: room for about a hundred 64 KiB frames. */
#define PORT_COPY_BYTES (8 << 20)
#define VLAN_OFF 12
#define VLAN_TAG_LEN 4
#define ETH_P_8021Q_ 0x8100
/* This many empty batches in a row while a copy waits means the copy lost its slot (see whole_discard_stale). */
#define STALE_BATCHES 64

static int ifreq_ioctl(int sock, const char *ifname, unsigned long req, struct ifreq *ifr)
{
	memset(ifr, 0, sizeof *ifr);
	snprintf(ifr->ifr_name, sizeof ifr->ifr_name, "%s", ifname);
	return ioctl(sock, req, ifr);
}

/* One ethtool get/set of a single value; -1 when the driver does not know it. */
static int ethtool_get(int sock, const char *ifname, uint32_t cmd)
{
	struct ifreq ifr;
	struct ethtool_value ev = { .cmd = cmd };
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	return ioctl(sock, SIOCETHTOOL, &ifr) < 0 ? -1 : (int)ev.data;
}

static int ethtool_set(int sock, const char *ifname, uint32_t cmd, uint32_t value)
{
	struct ifreq ifr;
	struct ethtool_value ev = { .cmd = cmd, .data = value };
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	return ioctl(sock, SIOCETHTOOL, &ifr);
}

/*
 * Turn one offload off. Returns what to restore: 1 when we turned it off,
 * 0 when it was already off, -1 when the driver cannot tell or refuses.
 */
static int offload_off(int sock, const char *ifname, uint32_t get, uint32_t set)
{
	int v = ethtool_get(sock, ifname, get);
	if (v <= 0)
		return v;
	return ethtool_set(sock, ifname, set, 0) < 0 ? -1 : 1;
}

/* LRO is a bit among the device flags rather than a value of its own. */
static int lro_off(int sock, const char *ifname)
{
	int flags = ethtool_get(sock, ifname, ETHTOOL_GFLAGS);
	if (flags < 0)
		return -1;
	if (!(flags & ETH_FLAG_LRO))
		return 0;
	return ethtool_set(sock, ifname, ETHTOOL_SFLAGS, (uint32_t)flags & ~(uint32_t)ETH_FLAG_LRO) < 0 ? -1 : 1;
}

static void offloads_off(struct port *p, int sock)
{
	p->saved_gro = offload_off(sock, p->ifname, ETHTOOL_GGRO, ETHTOOL_SGRO);
	p->saved_lro = lro_off(sock, p->ifname);
	p->saved_gso = offload_off(sock, p->ifname, ETHTOOL_GGSO, ETHTOOL_SGSO);
	p->saved_tso = offload_off(sock, p->ifname, ETHTOOL_GTSO, ETHTOOL_STSO);
}

static void offloads_restore(struct port *p, int sock)
{
	if (p->saved_tso == 1)
		(void)ethtool_set(sock, p->ifname, ETHTOOL_STSO, 1);
	if (p->saved_gso == 1)
		(void)ethtool_set(sock, p->ifname, ETHTOOL_SGSO, 1);
	if (p->saved_lro == 1) {
		int flags = ethtool_get(sock, p->ifname, ETHTOOL_GFLAGS);
		if (flags >= 0)
			(void)ethtool_set(sock, p->ifname, ETHTOOL_SFLAGS, (uint32_t)flags | ETH_FLAG_LRO);
	}
	if (p->saved_gro == 1)
		(void)ethtool_set(sock, p->ifname, ETHTOOL_SGRO, 1);
	p->saved_gro = p->saved_lro = p->saved_gso = p->saved_tso = -1;
}

/* ifindex, MAC and MTU of the interface. */
static int read_link(struct port *p, int sock, uint32_t mtu_override, char *err, size_t errlen)
{
	struct ifreq ifr;
	if (ifreq_ioctl(sock, p->ifname, SIOCGIFINDEX, &ifr) < 0) {
		snprintf(err, errlen, "%s: no such interface (%s)", p->ifname, strerror(errno));
		return -XE_IO;
	}
	p->ifindex = ifr.ifr_ifindex;
	if (ifreq_ioctl(sock, p->ifname, SIOCGIFHWADDR, &ifr) < 0 || ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		snprintf(err, errlen, "%s: not an Ethernet interface", p->ifname);
		return -XE_IO;
	}
	memcpy(p->mac, ifr.ifr_hwaddr.sa_data, 6);
	port_refresh_mtu(p);
	if (mtu_override) {
		p->mtu = mtu_override;
	} else if (ifreq_ioctl(sock, p->ifname, SIOCGIFMTU, &ifr) < 0) {
		snprintf(err, errlen, "%s: cannot read the MTU (%s)", p->ifname, strerror(errno));
		return -XE_IO;
	} else {
		p->mtu = (uint32_t)ifr.ifr_mtu;
	}
	return 0;
}

static int pcap_fail(struct port *p, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s", p->ifname, what, pcap_geterr(p->pcap));
	pcap_close(p->pcap);
	p->pcap = NULL;
	return -XE_IO;
}

/*
 * libpcap sizes the ring's slots from the MTU when no offload is on, which
 * is what keeps a 32 MiB ring at ~20k slots. A super-frame would be cut in
 * its slot: with PACKET_COPY_THRESH the kernel also queues the whole frame on
 * the socket, before the slot is handed to us, so both stay in order.
 */
static int superframe_copies_on(struct port *p, char *err, size_t errlen)
{
	int one = 1, bytes = PORT_COPY_BYTES;

	if (setsockopt(p->fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) < 0) {
		snprintf(err, errlen, "%s: PACKET_COPY_THRESH: %s", p->ifname, strerror(errno));
		pcap_close(p->pcap);
		p->pcap = NULL;
		return -XE_IO;
	}
	/* Beyond rmem_max needs CAP_NET_ADMIN, which opening the port already takes; else the default holds a few. */
	if (setsockopt(p->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
		(void)setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
	return 0;
}

static int capture_open(struct port *p, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	p->pcap = pcap_create(p->ifname, ebuf);
	if (!p->pcap) {
		snprintf(err, errlen, "%s: pcap_create: %s", p->ifname, ebuf);
		return -XE_IO;
	}
	if (pcap_set_snaplen(p->pcap, PORT_SNAPLEN) || pcap_set_promisc(p->pcap, 1) ||
	    pcap_set_immediate_mode(p->pcap, 1) || pcap_set_buffer_size(p->pcap, PORT_RING_BYTES))
		return pcap_fail(p, "pcap settings", err, errlen);
	int rc = pcap_activate(p->pcap);
	if (rc < 0)
		return pcap_fail(p, "pcap_activate", err, errlen);
	if (pcap_datalink(p->pcap) != DLT_EN10MB) {
		snprintf(err, errlen, "%s: not an Ethernet link", p->ifname);
		pcap_close(p->pcap);
		p->pcap = NULL;
		return -XE_IO;
	}
	/* Inbound only: our own transmissions must never come back as input. */
	if (pcap_setdirection(p->pcap, PCAP_D_IN) < 0)
		return pcap_fail(p, "pcap_setdirection", err, errlen);
	if (pcap_setnonblock(p->pcap, 1, ebuf) < 0)
		return pcap_fail(p, "pcap_setnonblock", err, errlen);
	p->fd = pcap_get_selectable_fd(p->pcap);
	if (p->fd < 0)
		return pcap_fail(p, "no selectable descriptor", err, errlen);
	return superframe_copies_on(p, err, errlen);
}

int port_open(struct port *p, const char *ifname, uint32_t mtu_override, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->fd = -1;
	p->saved_gro = p->saved_lro = p->saved_gso = p->saved_tso = -1;
	if (!ifname || !*ifname || strlen(ifname) >= sizeof p->ifname) {
		snprintf(err, errlen, "bad interface name");
		return -XE_BAD_PARAM;
	}
	snprintf(p->ifname, sizeof p->ifname, "%s", ifname);
	p->whole = malloc(PORT_WHOLE_MAX);
	if (!p->whole) {
		snprintf(err, errlen, "out of memory");
		return -XE_NOMEM;
	}

	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		free(p->whole);
		p->whole = NULL;
		return -XE_IO;
	}
	int rc = read_link(p, sock, mtu_override, err, errlen);
	if (rc == 0) {
		/* Before the capture starts, so no super-frame is built from what we will read. */
		offloads_off(p, sock);
		rc = capture_open(p, err, errlen);
		if (rc < 0)
			offloads_restore(p, sock);
	}
	close(sock);
	if (rc < 0) {
		free(p->whole);
		p->whole = NULL;
	}
	return rc;
}

void port_close(struct port *p)
{
	if (p->pcap)
		pcap_close(p->pcap);
	p->pcap = NULL;
	p->fd = -1;
	free(p->whole);
	p->whole = NULL;
	p->whole_len = 0;
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock >= 0) {
		offloads_restore(p, sock);
		close(sock);
	}
}

struct rx_call {
	struct port *p;
	port_rx_fn fn;
	void *ctx;
};

/*
 * Read the next whole copy from the socket into p->whole, with its VLAN tag
 * put back where libpcap puts it in the ring (so it compares with the slot).
 * Returns its length, or 0 when none is queued.
 */
static uint32_t whole_read(struct port *p)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} ctl;
	struct iovec iov = { p->whole, PORT_WHOLE_MAX - VLAN_TAG_LEN };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
	ssize_t n = recvmsg(p->fd, &mh, MSG_DONTWAIT);

	if (n <= 0 || mh.msg_flags & MSG_TRUNC)
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		struct tpacket_auxdata aux;

		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA || n < VLAN_OFF)
			continue;
		memcpy(&aux, CMSG_DATA(c), sizeof aux);
		if (!aux.tp_vlan_tci && !(aux.tp_status & TP_STATUS_VLAN_VALID))
			continue;
		uint16_t tpid = aux.tp_status & TP_STATUS_VLAN_TPID_VALID ? aux.tp_vlan_tpid : ETH_P_8021Q_;
		memmove(p->whole + VLAN_OFF + VLAN_TAG_LEN, p->whole + VLAN_OFF, (size_t)n - VLAN_OFF);
		wr16(p->whole + VLAN_OFF, tpid);
		wr16(p->whole + VLAN_OFF + 2, aux.tp_vlan_tci);
		n += VLAN_TAG_LEN;
	}
	return (uint32_t)n;
}

/*
 * The whole frame behind a cut slot. Copies queue in slot order, but a slot
 * gets none when the socket buffer is full: a copy that does not match is a
 * later slot's, so it is held for that one. Returns NULL when the slot has none.
 */
static uint8_t *whole_for_slot(struct port *p, const uint8_t *slot, uint32_t caplen, uint32_t len)
{
	uint32_t cmp = caplen < 128 ? caplen : 128;

	if (!p->whole_len)
		p->whole_len = whole_read(p);
	if (!p->whole_len || p->whole_len != len || memcmp(p->whole, slot, cmp) != 0)
		return NULL;
	p->whole_len = 0;
	return p->whole;
}

/*
 * A copy held while the ring stays empty has no slot coming (that cannot
 * happen by the ordering above, but a stuck copy would keep poll() readable
 * and the thread spinning): let it go.
 */
static void whole_discard_stale(struct port *p)
{
	if (++p->empty_batches < STALE_BATCHES)
		return;
	p->empty_batches = 0;
	if (p->whole_len || whole_read(p))
		stat_add(&p->st.rx_copies_dropped, 1);
	p->whole_len = 0;
}

static void rx_one(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct rx_call *c = (struct rx_call *)user;
	uint8_t *frame = (uint8_t *)(uintptr_t)bytes, *whole;
	uint32_t len = h->caplen;

	stat_add(&c->p->st.rx_packets, 1);
	stat_add(&c->p->st.rx_bytes, h->len);
	if (h->caplen < h->len && (whole = whole_for_slot(c->p, frame, h->caplen, h->len))) {
		stat_add(&c->p->st.rx_superframes, 1);
		frame = whole;
		len = h->len;
	}
	/*
	 * The ring is mapped writable and the slot goes back to the kernel only
	 * after this callback returns, so fn may rewrite the frame in place.
	 * A frame cut without a whole copy is handed up at its captured length.
	 */
	c->fn(c->ctx, frame, len);
}

int port_rx_batch(struct port *p, int max, port_rx_fn fn, void *ctx)
{
	struct rx_call c = { p, fn, ctx };
	int n = pcap_dispatch(p->pcap, max > 0 ? max : 1, rx_one, (u_char *)&c);
	if (n == PCAP_ERROR_BREAK)
		return 0;
	if (n == 0)
		whole_discard_stale(p);
	else if (n > 0)
		p->empty_batches = 0;
	return n < 0 ? -XE_IO : n;
}

/*
 * The interface's own MAC makes every frame sent to us PACKET_HOST for the
 * box's kernel, which has no address on the port: it routes each one
 * (a route lookup, a dst allocated and freed) only to drop it after our
 * capture took its copy, and that runs in the sender's context on every
 * ESP packet. A MAC the interface does not have makes the frames
 * PACKET_OTHERHOST, which the kernel drops at once; the port is promiscuous,
 * so the capture still sees them.
 */
void port_use_own_mac(struct port *p)
{
	/* Locally administered and unicast, one bit away from the interface's MAC. */
	if (p->mac[0] & 0x02)
		p->mac[0] ^= 0x04;
	else
		p->mac[0] |= 0x02;
}

bool port_link_up(const struct port *p)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return false;
	struct ifreq ifr;
	int rc = ifreq_ioctl(sock, p->ifname, SIOCGIFFLAGS, &ifr);
	close(sock);
	return rc == 0 && (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
}

void port_refresh_mtu(struct port *p)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;

	if (sock < 0)
		return;
	if (ifreq_ioctl(sock, p->ifname, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		atomic_store_explicit(&p->dev_mtu, (uint32_t)ifr.ifr_mtu, memory_order_relaxed);
	close(sock);
}

int port_ring_drops(struct port *p, uint64_t *drops)
{
	struct pcap_stat ps;
	if (!p->pcap || pcap_stats(p->pcap, &ps) < 0)
		return -XE_IO;
	*drops = ps.ps_drop;
	return 0;
}
