/* port.h: the two packet ports (libpcap receive, batched transmit), neighbour caches, ARP and ND. */
#ifndef BITW_PORT_H
#define BITW_PORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "config.h"
#include "pkt.h"

/*
 * Receive counters have one writer, the thread that reads the port; transmit
 * counters have several (both data threads and the control thread send on a
 * port). They live on separate cache lines so the writers do not share one.
 */
struct port_stats {
	_Alignas(64) _Atomic uint64_t rx_packets, rx_bytes;
	_Atomic uint64_t ring_drops;   /* capture ring overflows, copied from port_ring_drops by the reading thread */
	_Atomic uint64_t rx_superframes;  /* frames larger than a ring slot, read whole from the socket */
	_Atomic uint64_t rx_copies_dropped;  /* whole copies that found no slot (should stay 0) */
	_Alignas(64) _Atomic uint64_t tx_packets, tx_bytes;
	_Atomic uint64_t tx_errors;
};

struct pcap;

struct port {
	char ifname[IF_NAMESIZE];
	int ifindex;
	uint8_t mac[6];          /* the MAC we use: the interface's, or our own (port_use_own_mac) */
	uint32_t mtu;            /* IP MTU of the port */
	/*
	 * The interface's own MTU, which bounds the frames sent on it (the
	 * transmit ring checks it: the kernel does not, see txq.c); 0 = unknown.
	 * Written by the control thread (port_refresh_mtu), read per frame.
	 */
	_Atomic uint32_t dev_mtu;
	struct pcap *pcap;       /* pcap_t */
	int fd;                  /* pollable descriptor of the capture */
	int saved_gro, saved_lro, saved_gso, saved_tso;  /* offload settings to restore; -1 = unknown */
	uint8_t *whole;          /* PORT_WHOLE_MAX bytes: a super-frame read whole (see port_rx_batch) */
	uint32_t whole_len;      /* a frame held in whole, waiting for its ring slot; 0 = none */
	uint32_t empty_batches;  /* batches in a row that found the ring empty */
	struct port_stats st;
};

/*
 * Open a port: promiscuous, immediate mode, inbound direction only (we never
 * see our own transmissions), a large ring buffer, non-blocking. Turns GRO and
 * LRO (and GSO/TSO) off and remembers the old settings. mtu_override 0 = read
 * the interface's MTU.
 */
int port_open(struct port *p, const char *ifname, uint32_t mtu_override, char *err, size_t errlen);
void port_close(struct port *p);  /* restores offloads */

typedef void (*port_rx_fn)(void *ctx, uint8_t *frame, uint32_t len);
/*
 * Hand up to max received frames to fn (from the capture ring). The frame
 * may be modified in place by fn. Ring slots are sized for the MTU (cheap
 * for the common case); a larger frame (a GSO/TSO super-frame) is cut in
 * its slot, and the kernel queues a whole copy on the socket as well
 * (PACKET_COPY_THRESH): fn gets that copy, in the slot's place in the
 * stream. Returns the number handled, 0 when none is waiting, or -XE_IO.
 */
int port_rx_batch(struct port *p, int max, port_rx_fn fn, void *ctx);
/*
 * Use a MAC of our own on the port instead of the interface's (locally
 * administered, derived from it), so frames sent to us are not also routed
 * by the box's kernel.
 */
void port_use_own_mac(struct port *p);
/* Carrier: the interface is up and running (for IF_STATE events). */
bool port_link_up(const struct port *p);
/* Re-read the interface's MTU into dev_mtu (it may change while we run); kept as it was when unreadable. */
void port_refresh_mtu(struct port *p);
/*
 * Frames the kernel dropped because the capture ring was full, since the port
 * was opened. Reads pcap's state: call it from the thread that reads the port
 * (between batches). 0 or -XE_IO.
 */
int port_ring_drops(struct port *p, uint64_t *drops);

/*
 * Capture length: a whole 64 KiB IP packet plus its Ethernet header, so that a
 * GRO/GSO super-frame arrives whole and can be segmented instead of lost.
 */
#define PORT_SNAPLEN (65535 + 14 + 4)
/* Room for a whole super-frame with its 802.1Q tag put back. */
#define PORT_WHOLE_MAX (PORT_SNAPLEN + 4)

#define TXQ_MAX 64
#define TXQ_BUF (PKT_MAX + 256)
/* Transmit ring sizes (frames of TXQ_BUF bytes): a data thread's queue, and the control thread's. */
#define TXQ_RING_DATA 256
#define TXQ_RING_CTL 64

/*
 * A transmit queue on a port, private to one thread. On a real port it is a
 * PACKET_TX_RING: frames are written straight into the ring, shared with the
 * kernel, and one send() hands every frame committed since the last flush to
 * the kernel, which transmits them from the ring (no copy from user space,
 * no per-frame message). Where the kernel refuses a ring, and over
 * txq_init_fd, frames are written into preallocated slots and sent together
 * with one sendmmsg().
 */
struct txq {
	struct port *port;
	int fd;
	uint32_t n;              /* sendmmsg: frames queued */
	struct mmsghdr msg[TXQ_MAX];
	struct iovec iov[TXQ_MAX];
	uint8_t *buf;            /* sendmmsg: TXQ_MAX * TXQ_BUF bytes; ring: one spare slot (see txq_slot) */
	/* PACKET_TX_RING (ring != NULL) */
	uint8_t *ring;
	size_t ring_len;
	uint32_t frames, frame_size;
	uint32_t head;           /* the frame txq_slot hands out next */
	uint32_t unsent;         /* committed frames the kernel has not taken yet, the ones before head */
	/*
	 * txq_slot handed out the spare slot (the ring was full: its commit is
	 * dropped). Until that commit, txq_slot waits no more: it hands out the
	 * head frame if it came back meanwhile, else the spare again.
	 */
	bool on_spare;
};

/*
 * A queue on port p with a transmit ring of about ring_frames frames
 * (TXQ_RING_DATA, TXQ_RING_CTL; sendmmsg when the kernel refuses a ring).
 * Call it before the syscall filter is installed (it maps the ring).
 */
int txq_init(struct txq *q, struct port *p, uint32_t ring_frames, char *err, size_t errlen);
/*
 * A queue over an existing datagram socket (tests use one end of a unix
 * SOCK_DGRAM socketpair and read back what was sent): always sendmmsg.
 * Takes ownership of fd; p only receives the tx counters. 0 or -XE_NOMEM.
 */
int txq_init_fd(struct txq *q, struct port *p, int fd);
/* Frees the slots and closes the socket; frames still queued are not sent. */
void txq_destroy(struct txq *q);
/*
 * Room for the next frame (TXQ_BUF bytes), writable until txq_commit. With a
 * ring: the next ring frame; when the kernel still holds it, the queue is
 * flushed and waited on briefly, and if it stays full the slot returned is a
 * spare whose commit is dropped and counted in tx_errors. Called again before
 * that commit, it does not wait again: the same slot, or the head frame if it
 * has come back (the caller copies the frame over from the spare). With
 * sendmmsg: flushes first when the queue is full.
 */
uint8_t *txq_slot(struct txq *q);
/* Queue the frame written into the last slot. */
void txq_commit(struct txq *q, uint32_t len);
/* Copy a whole frame into a slot and commit it. */
void txq_push(struct txq *q, const uint8_t *frame, uint32_t len);
/*
 * Send everything queued (one send() on a ring, sendmmsg otherwise; a full
 * socket buffer is waited for briefly, then the rest is dropped). Returns the
 * frames sent, or -XE_TX_FAILED when any frame was dropped (each one is
 * counted in the port's tx_errors). The queue is empty afterwards either way.
 */
int txq_flush(struct txq *q);

/*
 * Neighbour cache: IP -> MAC for one port, with timeouts and a small queue of
 * frames per unresolved address. Lookups are lock-free (the data threads call
 * them per packet); learning and queueing take an internal lock.
 */
struct neigh_table;

struct neigh_table *neigh_new(uint32_t capacity, uint32_t timeout_s, uint32_t queue_per_entry);
void neigh_free(struct neigh_table *t);
bool neigh_lookup(struct neigh_table *t, const struct bw_addr *ip, uint8_t mac[6], uint64_t now_ms);
/* Lock-free: is ip resolved to mac, learned or confirmed at since_ms or later? (lets learners skip the lock) */
bool neigh_confirmed_since(struct neigh_table *t, const struct bw_addr *ip, const uint8_t mac[6], uint64_t since_ms);
/*
 * Learn or refresh ip -> mac. Frames queued for ip are pushed to tx with
 * their destination MAC filled in (tx may be NULL: they stay queued); the
 * caller flushes tx as after any batch. A full table learns nothing new.
 */
void neigh_update(struct neigh_table *t, const struct bw_addr *ip, const uint8_t mac[6], uint64_t now_ms,
                  struct txq *tx);
/*
 * Like neigh_update, but only for an address already in the table (gratuitous
 * ARP, unsolicited NA: never create entries from frames not meant for us).
 */
enum { NEIGH_UNKNOWN = 0, NEIGH_REFRESHED = 1, NEIGH_RESOLVED = 2 /* was waiting for this answer */ };
int neigh_confirm(struct neigh_table *t, const struct bw_addr *ip, const uint8_t mac[6], uint64_t now_ms,
                  struct txq *tx);
/*
 * Queue a whole frame (Ethernet header included, destination MAC to be filled)
 * until ip resolves. Returns 1 when a solicitation should go out now (new entry
 * or retry due), 0 when queued, -XE_NEIGH_UNRESOLVED when the queue is full
 * (the frame is dropped; the caller counts it).
 */
int neigh_enqueue(struct neigh_table *t, const struct bw_addr *ip, const uint8_t *frame, uint32_t len,
                  uint64_t now_ms);
/*
 * Housekeeping from the control thread, about once a second: expire stale
 * entries, drop the queues of addresses that never resolved (stores how many
 * frames were dropped in *dropped, which may be NULL), and call solicit for
 * entries due a retry (at most 3 solicitations, a second apart) or due a
 * refresh (resolved, in use, and close to expiry).
 */
void neigh_tick(struct neigh_table *t, uint64_t now_ms, void (*solicit)(void *ctx, const struct bw_addr *ip),
                void *ctx, uint64_t *dropped);
/* For STATS: call fn for every entry. */
void neigh_walk(struct neigh_table *t, void (*fn)(void *ctx, const struct bw_addr *ip, const uint8_t mac[6],
                                                  bool resolved), void *ctx);

/* Our side of ARP and ND on a port. */
struct l2_self {
	const struct port_conf *pc;  /* our addresses on this port */
	const uint8_t *mac;          /* the MAC we answer with */
	struct neigh_table *neigh;
	struct txq *tx;              /* where answers go (same port) */
};

/*
 * An ARP frame arrived. Requests for our addresses are answered; senders of
 * requests and replies addressed to us are learned. Returns true when the
 * frame was for us (do not bridge it), false otherwise. Replies to our probes
 * (target 0.0.0.0, our MAC) are consumed when we were asking for the sender;
 * other ARP only refreshes entries already in the table. Answers and frames
 * released from the neighbour queue are pushed to s->tx; the caller flushes.
 */
bool arp_input(const struct l2_self *s, const uint8_t *frame, uint32_t len, uint64_t now_ms);
/* The same for ICMPv6 neighbour solicitation/advertisement (pi parsed). */
bool nd_input(const struct l2_self *s, const uint8_t *frame, uint32_t len, const struct pkt_info *pi,
              uint64_t now_ms);
/*
 * Build a who-has for target into buf (>= 64 bytes). sip NULL makes an RFC
 * 5227 probe (sender address 0.0.0.0). Returns the frame length (60: padded
 * to the Ethernet minimum).
 */
uint32_t arp_build_request(uint8_t *buf, const uint8_t smac[6], const struct bw_addr *sip,
                           const struct bw_addr *target);
/*
 * Neighbour solicitation to the solicited-node multicast address, with our
 * source link-layer option; sip NULL = unspecified source and no option (the
 * answer then goes to all-nodes). buf >= 86 bytes. Returns the frame length.
 */
uint32_t nd_build_solicit(uint8_t *buf, const uint8_t smac[6], const struct bw_addr *sip,
                          const struct bw_addr *target);

#endif
