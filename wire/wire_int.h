/* wire_int.h: the bitw-wire process state and the operations the control socket drives. */
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
 * thread, never modified after publication. SAs are shared between
 * snapshots; their mutable per-packet state belongs to one data thread.
 */
struct snapshot {
	uint64_t gen;
	struct spd *spd;
	struct sad *sad;               /* inbound SPI -> SA */
	struct sa **out_sa;            /* by policy evaluation index: newest outbound SA or NULL */
	struct sa **in_sa_all;         /* every inbound SA (for NAT keepalive, stats) */
	uint32_t n_in;
	struct sa **out_sa_all;
	uint32_t n_out;
	struct wire_options opt;
};

/* Drop counters by reason, one array per data thread. */
struct drop_stats {
	_Atomic uint64_t by_reason[XE__COUNT];
};

enum { TH_OUT = 0, TH_IN = 1 };  /* red->black, black->red */

struct wire;

/* One data thread: owns its transmit queues, flow cache and scratch buffers. */
struct worker {
	struct wire *w;
	int dir;                       /* TH_OUT or TH_IN */
	pthread_t thread;
	struct txq tx_red, tx_black;
	struct flow_cache *fc;
	struct reasm *reasm;           /* TH_IN: outer fragments for us */
	_Atomic uint64_t quiescent;    /* last snapshot gen seen at a batch boundary */
	_Atomic uint8_t idle;          /* blocked in poll: holds no snapshot */
	struct drop_stats drops;
	uint8_t scratch[TXQ_BUF * 2];
	uint32_t ip_ident;
};

struct wire {
	struct wire_config cfg;        /* running configuration (control thread) */
	char config_path[4096];
	struct port red, black;
	struct neigh_table *neigh_red, *neigh_black;
	_Atomic uint64_t router_mac;   /* learned red router MAC (low 48 bits), 0 = unknown */
	_Atomic(struct snapshot *) snap;
	struct worker wk[2];
	struct ctl_server *ctl;
	_Atomic int stop;
	int wake_fd[2];                /* eventfd per worker to interrupt poll */
	/* SA registry owned by the control thread */
	struct sa **sas;
	uint32_t nsas, cap_sas;
	struct pol_stats **pstats;     /* parallel to cfg.pol */
	uint64_t gen;
};

/* Operations behind the control socket; all run on the control thread. */
int wire_spd_set(struct wire *w, struct policy_conf *pol, uint32_t n, int default_action, char *err, size_t errlen);
int wire_sa_add(struct wire *w, const struct sa_conf *sa, uint32_t n, char *err, size_t errlen);
int wire_sa_del(struct wire *w, uint32_t spi, int dir);
int wire_sa_flush(struct wire *w, const char *policy);
int wire_get_spi(struct wire *w, uint32_t *spi);
int wire_initial_contact(struct wire *w, const struct bw_addr *peer);
struct json_t *wire_stats_json(struct wire *w);
struct json_t *wire_sa_list_json(struct wire *w);
struct json_t *wire_config_json(struct wire *w);
int wire_ike_send(struct wire *w, const struct ctl_ike_dgram *d, const uint8_t *data, uint32_t len);

uint64_t now_ms(void);

#endif
