/* engine.h: the engine's private state (peers, policies, IKE SAs, child SAs) shared by its files. */
#ifndef BITW_IKE_ENGINE_H
#define BITW_IKE_ENGINE_H

#include "crypto.h"
#include "ike.h"
#include "msg.h"

#define IKE_MAX_MSG 65535
#define IKE_SPI_LEN 8
#define IKE_NONCE_LEN 32
#define IKE_HALF_OPEN_MS 30000          /* a responder's SA that has not authenticated by then is dropped */
#define IKE_OLD_CHILD_GRACE_MS 2000     /* after a child rekey the old pair lives this long for packets in flight */
#define IKE_DELETE_WAIT_MS 10000

struct ike_peer {
	struct ike_peer_conf conf;          /* psk and the PEMs point into the copies below */
	uint8_t *psk;
	char *pems[4];
};

struct ike_policy {
	struct ike_child_conf conf;
};

enum ike_child_state { CHILD_ACTIVE = 1, CHILD_REKEYED, CHILD_DELETING };

struct ike_child {
	uint32_t policy_id;
	uint8_t state;
	uint32_t spi_in, spi_out;
	struct ike_suite suite;
	uint16_t dh;
	bool esn, transport, encap;
	struct ike_ts_conf local_ts[IKE_MAX_TS_CONF], remote_ts[IKE_MAX_TS_CONF];
	size_t n_local_ts, n_remote_ts;
	uint64_t established_ms, rekey_at_ms, expire_at_ms, delete_at_ms;
};

/* What our outstanding request was, so its response is understood. */
enum ike_req_kind {
	REQ_NONE = 0, REQ_INIT, REQ_AUTH, REQ_CHILD_NEW, REQ_CHILD_REKEY, REQ_IKE_REKEY, REQ_DELETE_IKE,
	REQ_DELETE_CHILD, REQ_DPD,
};

struct ike_req {
	uint8_t kind;
	uint32_t msg_id;
	uint8_t *buf;
	size_t len, cap;
	uint32_t tries;
	uint64_t next_ms;
	/* context for the response */
	uint32_t policy_id, spi_in, old_spi_in;
	struct ike_dh *dh;
	uint8_t nonce[IKE_NONCE_LEN];
	struct ike_ts_conf ts_i[IKE_MAX_TS_CONF], ts_r[IKE_MAX_TS_CONF];
	size_t n_ts_i, n_ts_r;
	struct ike_sa *new_sa;              /* REQ_IKE_REKEY: the SA being made */
};

struct ike_sa {
	struct ike_sa *next;
	uint64_t id;
	uint32_t peer_id;
	uint8_t state;                      /* enum ike_sa_state */
	bool initiator;                     /* original initiator of this IKE SA */
	bool nat_local, nat_remote, encap, peer_frag, dead;
	uint8_t spi_i[IKE_SPI_LEN], spi_r[IKE_SPI_LEN];
	struct ike_addr local, remote;
	struct ike_suite suite;
	uint16_t dh_group;
	struct ike_sa_keys keys;
	struct ike_sk *sk_out, *sk_in;
	uint8_t ni[IKE_NONCE_MAX], nr[IKE_NONCE_MAX];
	size_t ni_len, nr_len;
	uint8_t *init_req, *init_resp;      /* the IKE_SA_INIT messages, for AUTH's signed octets */
	size_t init_req_len, init_resp_len;
	struct ike_dh *dh;
	uint8_t cookie[64];
	size_t cookie_len;
	uint32_t next_msg_id;               /* our next request */
	uint32_t peer_msg_id;               /* the peer's next request */
	struct ike_req req;
	uint8_t *resp;                      /* the response to the peer's last request, resent on duplicates */
	size_t resp_len, resp_cap;
	bool have_resp;
	struct ike_child *children;
	size_t n_children, cap_children;
	uint32_t first_policy;              /* initiator: the child negotiated in IKE_AUTH */
	uint8_t acq_src[16], acq_dst[16], acq_family;
	uint64_t created_ms, established_ms, rekey_at_ms, expire_at_ms, last_recv_ms, dpd_at_ms, delete_at_ms;
};

struct ike_engine {
	struct ike_engine_conf conf;
	struct ike_callbacks cb;
	struct ike_peer *peers;
	size_t n_peers;
	struct ike_policy *policies;
	size_t n_policies;
	struct ike_sa *sas;
	size_t n_sas, n_half_open;
	uint64_t next_sa_id;
	uint8_t cookie_secret[32];
	uint8_t buf[IKE_MAX_MSG];           /* scratch for building one message */
	uint8_t plain[IKE_MAX_MSG];         /* scratch for one SK plaintext */
	struct ike_msg msg;                 /* the message being decoded */
	struct ike_msg out;                 /* the message being built */
};

/* engine.c */
void ike_log(struct ike_engine *e, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ike_random(struct ike_engine *e, uint8_t *buf, size_t len);
void ike_emit(struct ike_engine *e, uint8_t kind, const struct ike_sa *sa, uint32_t child_id, uint32_t spi_in,
	uint32_t spi_out, const char *text);
struct ike_peer *ike_peer_find(struct ike_engine *e, uint32_t id);
struct ike_policy *ike_policy_find(struct ike_engine *e, uint32_t id);

#endif
