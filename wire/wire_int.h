/* wire_int.h: the bitw-wire process state, its data threads and the operations the control socket drives. */
#ifndef BITW_WIRE_INT_H
#define BITW_WIRE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "ip.h"
#include "port.h"
#include "sa.h"
#include "spd.h"
#include "wire.h"

struct json_t;

/*
 * What the data threads read: replaced whole (RCU-style) by the control
 * thread and never modified after publication. SAs and policy counters are
 * shared between snapshots; an SA's per-packet state (sequence number,
 * replay window) belongs to exactly one data thread.
 */
struct snapshot {
	uint64_t gen;
	struct spd *spd;
	struct sad *sad;               /* inbound (SPI, protocol) -> SA */
	struct sa **out_sa;            /* by policy evaluation index: newest live outbound SA (an ahesp policy's ESP SA) */
	struct sa **out_ah;            /* by policy evaluation index: an ahesp policy's newest live outbound AH SA */
	struct clone_index *clones;    /* clone policies: (policy, host) -> newest live outbound SA */
	struct port_conf red, black;   /* our addresses and gateways */
	struct wire_options opt;
	uint16_t udp_ports[8];         /* our ESP-in-UDP ports: 4500 and those SAs name */
	uint8_t n_udp_ports;
	struct sa **dummy_sas;         /* the outbound SAs in use (out_sa, clones) that send dummy packets */
	uint32_t n_dummy;
};

/* Drop counters by reason; each data thread has its own. */
struct drop_stats {
	_Atomic uint64_t by_reason[XE__COUNT];
};

enum { TH_OUT = 0, TH_IN = 1 };  /* red->black, black->red */

/* A frame waiting for an SA (outbound) after an ACQUIRE. */
struct acq_slot {
	uint64_t key;                  /* its waiter (fwd.c acq_key); 0 = free */
	uint32_t policy_id;
	uint32_t len;
	uint64_t since_ms;
	uint8_t frame[TXQ_BUF];
};

#define ACQ_SLOTS 64
#define ACQ_RATE_SLOTS 256
#define ACQ_TIMEOUT_MS 5000

/*
 * The slot (of ACQ_SLOTS) a frame of waiter key may take: a free one, or
 * when all are taken the oldest of the waiter holding the most (it then
 * holds two more than key: the caller drops that frame); -1 when key
 * already holds per_waiter frames or is no worse off than the others.
 * A waiter is a policy, or one host of a clone policy.
 */
int acq_admit(const struct acq_slot *q, uint64_t key, uint32_t per_waiter);

/* Single-producer single-consumer ring from a data thread to the control thread. */
#define RING_SLOTS 64
struct ring_msg {
	uint16_t type;                 /* CTL_EV_ACQUIRE or CTL_EV_IKE_RECV */
	uint32_t policy_id;
	struct pkt_info pi;            /* ACQUIRE: the packet that triggered it */
	struct ctl_ike_dgram dg;       /* IKE_RECV */
	uint32_t len;
	uint8_t data[PKT_MAX];
};
struct ring {
	_Atomic uint32_t head, tail;
	struct ring_msg *slot;         /* RING_SLOTS, allocated once */
};

struct wire;

/* One data thread: owns its transmit queues, flow cache, scratch buffers and queues. */
struct worker {
	/*
	 * Each worker starts a cache line (and so ends one): the out thread
	 * writes ip_ident, near its end, per ESP packet, and without the
	 * alignment that line could also hold the next worker's w, which the
	 * in thread reads per packet.
	 */
	_Alignas(64) struct wire *w;
	int dir;                       /* TH_OUT or TH_IN */
	pthread_t thread;
	int wake_fd;                   /* eventfd: the control thread interrupts poll */
	struct txq tx_red, tx_black;
	struct flow_cache *fc;
	struct reasm *reasm;           /* TH_IN: outer fragments for us */
	const struct snapshot *snap;   /* the snapshot of the current batch */
	uint64_t now;                  /* ms, once per batch */
	_Atomic uint64_t quiescent;    /* last snapshot gen seen at a batch boundary */
	_Atomic uint8_t idle;          /* blocked in poll: holds no snapshot */
	struct drop_stats drops;
	struct ring events;            /* to the control thread */
	uint64_t acq_gen;              /* snapshot gen the acquire queue was last checked against */
	uint32_t acq_used;
	struct acq_slot *acq;          /* ACQ_SLOTS */
	uint64_t acq_rate_key[ACQ_RATE_SLOTS];  /* policy id, or clone_key_hash for clone policies */
	uint64_t acq_rate_ms[ACQ_RATE_SLOTS];
	uint16_t ip_ident;
	uint64_t dummy_gen, dummy_due; /* TH_OUT: snapshot gen and ms of the next dummy packet due */
	uint8_t *scratch;              /* 2 * TXQ_BUF: reassembly output, segments, fragments */
};

struct wire {
	struct wire_config cfg;        /* running configuration (control thread only) */
	char config_path[4096];
	struct port red, black;
	struct neigh_table *neigh_red, *neigh_black;
	_Atomic uint64_t router_mac;   /* learned red router MAC (low 48 bits), 0 = unknown */
	_Atomic(struct snapshot *) snap;
	struct worker wk[2];
	struct txq ctl_tx_red, ctl_tx_black;  /* the control thread's own transmit queues */
	int ev_fd;                     /* eventfd: a data thread has queued an event */
	struct ctl_server *ctl;
	_Atomic int stop;
	uint64_t gen;
	/* the SA registry, owned by the control thread */
	struct sa **sas;
	uint32_t nsas, cap_sas;
	struct pol_stats **pstats;     /* parallel to cfg.pol */
	uint32_t *reserved_spi;        /* from GET_SPI, not yet used */
	uint32_t nreserved;
	uint64_t last_keepalive_ms;
	uint64_t last_tick_s;
	uint8_t link_up[2];
};

/* state.c: set up, snapshots, and the operations behind the control socket (control thread). */
int wire_init(struct wire *w, struct wire_config *cfg, char *err, size_t errlen);
void wire_fini(struct wire *w);
int wire_reload(struct wire *w, struct wire_config *cfg, char *err, size_t errlen);
void wire_housekeeping(struct wire *w);   /* events, lifetimes, neighbours, keepalives */
void wire_drain_events(struct wire *w);
int wire_spd_set(struct wire *w, struct policy_conf *pol, uint32_t n, int default_action, char *err, size_t errlen);
int wire_sa_add(struct wire *w, const struct sa_conf *sa, uint32_t n, char *err, size_t errlen);
/* proto: enum sa_proto, or -1 for the SAs of either protocol with that SPI and direction. */
int wire_sa_del(struct wire *w, uint32_t spi, int dir, int proto);
int wire_sa_flush(struct wire *w, const char *policy);
int wire_get_spi(struct wire *w, uint32_t *spi);
int wire_initial_contact(struct wire *w, const struct bw_addr *peer);
int wire_ike_send(struct wire *w, const struct ctl_ike_dgram *d, const uint8_t *data, uint32_t len);

/* admin.c: a warning when the administrative state leaves secure, a note when it returns. */
void admin_state_log(uint8_t from, uint8_t to);

/* stats.c */
struct json_t *wire_stats_json(struct wire *w);
struct json_t *wire_sa_list_json(struct wire *w);
struct json_t *wire_config_json(struct wire *w);

/* fwd.c: the packet walk, run by the data threads. */
void *worker_main(void *arg);
/* Build an outer IP+UDP frame toward dst and send it on black (control thread: IKE, keepalives). */
int wire_send_udp(struct wire *w, struct txq *tx, const struct snapshot *s, const struct bw_addr *src, uint16_t sport,
                  const struct bw_addr *dst, uint16_t dport, const uint8_t *data, uint32_t len, int non_esp_marker);
/* Next hop on black for dst, per the snapshot's gateways; false if there is none. */
bool black_next_hop(const struct snapshot *s, const struct bw_addr *dst, struct bw_addr *nh);
const struct bw_addr *black_source(const struct snapshot *s, int family);

/* Rings between threads. */
int ring_init(struct ring *r);
void ring_free(struct ring *r);
struct ring_msg *ring_reserve(struct ring *r);  /* NULL when full */
void ring_publish(struct ring *r);
struct ring_msg *ring_peek(struct ring *r);     /* NULL when empty */
void ring_consume(struct ring *r);

uint64_t now_ms(void);
uint64_t now_s(void);

#endif
