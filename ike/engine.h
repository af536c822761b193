/* engine.h: the engine's private state (peers, policies, IKE SAs, child SAs) shared by its files. */
#ifndef BITW_IKE_ENGINE_H
#define BITW_IKE_ENGINE_H

#include <string.h>

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
	struct ike_cred *cred;              /* IKE_AUTH_PUBKEY: our certificate chain and key */
	struct ike_castore *cas;            /* IKE_AUTH_PUBKEY: whom we trust */
};

struct ike_policy {
	struct ike_child_conf conf;
};

enum ike_child_state { CHILD_ACTIVE = 1, CHILD_REKEYED, CHILD_DELETING };

/* What a child SA is for: a policy, the host of a clone policy, the protocol. Policy 0 = none. */
struct ike_child_key {
	uint32_t policy_id;
	bool ah;                            /* AH (else ESP) */
	uint8_t host_family;                /* clone host: 4|6, 0 = not a clone child */
	uint8_t host[16];
};

struct ike_child {
	uint32_t policy_id;
	uint8_t host_family, host[16];      /* clone host, as in ike_child_key */
	uint8_t state;
	uint32_t spi_in, spi_out;
	struct ike_suite suite;
	uint16_t dh;
	bool esn, transport, encap, ah;
	struct ike_ts_conf local_ts[IKE_MAX_TS_CONF], remote_ts[IKE_MAX_TS_CONF];
	size_t n_local_ts, n_remote_ts;
	uint64_t established_ms, rekey_at_ms, expire_at_ms, delete_at_ms;
	struct ike_child_sa *out_later;     /* a rekey's responder: the outbound SA, installed when the old pair goes */
};

/* What our outstanding request was, so its response is understood. */
enum ike_req_kind {
	REQ_NONE = 0, REQ_INIT, REQ_AUTH, REQ_CHILD_NEW, REQ_CHILD_REKEY, REQ_IKE_REKEY, REQ_DELETE_IKE,
	REQ_DELETE_CHILD, REQ_DPD,
};

#define IKE_DPD_SENDS 4                   /* a liveness check and its retransmissions, over conf.dpd_timeout_ms */
#define IKE_FRAG_SEND_MAX 16              /* fragments of one message we send */
#define IKE_FRAG_MSG_MAX 1280            /* IP datagram size of our fragments, strongSwan's default */

struct ike_req {
	uint8_t kind;
	uint32_t msg_id;
	uint8_t *buf;
	size_t len, cap;
	uint16_t frag_len[IKE_FRAG_SEND_MAX];
	uint8_t n_frags;
	uint32_t tries;
	uint64_t next_ms;
	/* context for the response */
	struct ike_child_key child;         /* REQ_CHILD_*, REQ_AUTH: the child offered (policy 0: none) */
	uint32_t spi_in, old_spi_in;
	struct ike_dh *dh;
	uint8_t nonce[IKE_NONCE_LEN];
	struct ike_ts_conf ts_i[IKE_MAX_TS_CONF], ts_r[IKE_MAX_TS_CONF];
	size_t n_ts_i, n_ts_r;
	uint8_t new_spi[IKE_SPI_LEN];       /* REQ_IKE_REKEY: our SPI of the new IKE SA */
	uint16_t dh_group;                  /* the group of our KE (PFS, IKE rekey) */
};

/* The hash indexes over the IKE SAs (index.c). */
enum ike_sa_idx {
	IKE_IDX_OURS,                       /* our SPI: spi_i when we initiated, else spi_r */
	IKE_IDX_SPI_I,                      /* responder SAs by the initiator's SPI (a repeated IKE_SA_INIT) */
	IKE_IDX_IDENT,                      /* by the remote identity authenticated (INITIAL_CONTACT) */
	IKE_IDX_N
};

struct ike_sa_tab {
	struct ike_sa **b;                  /* chains through ike_sa.idx_next[which] */
	size_t mask;                        /* buckets - 1; 0 before the first SA */
	size_t n;
};

struct ike_sa {
	struct ike_sa *next, *prev;         /* e->sas, newest first */
	struct ike_sa *idx_next[IKE_IDX_N];
	uint64_t idx_hash[IKE_IDX_N];       /* the hash each index filed it under (its key may change later) */
	uint8_t idx_in;                     /* bit per index it is in */
	bool idx_unauth;                    /* counted in n_unauth_initiators */
	uint64_t id;
	uint32_t peer_id;
	uint8_t state;                      /* enum ike_sa_state */
	bool initiator;                     /* original initiator of this IKE SA */
	bool nat_local, nat_remote, encap, peer_frag, half_open;
	uint32_t peer_hashes;               /* SIGNATURE_HASH_ALGORITHMS the peer announced (IKE_HASH_BIT) */
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
	uint16_t resp_frag_len[IKE_FRAG_SEND_MAX];
	uint8_t resp_n_frags;
	struct ike_defrag *defrag;          /* RFC 7383 reassembly, made on the first fragment */
	bool have_resp;
	struct ike_child *children;
	size_t n_children, cap_children;
	struct ike_child_key first;         /* initiator: the child negotiated in IKE_AUTH */
	struct ike_ident local_ident, remote_ident; /* as authenticated in IKE_AUTH; remote_ident.len 0 before */
	struct {                            /* a child rekey collision (RFC 7296 2.8.1) */
		uint32_t old_spi_in, their_new_spi_in;
		uint8_t min_nonce[IKE_NONCE_MAX];  /* the lower nonce of the peer's exchange */
		size_t min_len;
	} coll;
	struct {                            /* an IKE SA rekey collision (RFC 7296 2.8.2), kept on the old SA */
		uint64_t theirs;                /* the new IKE SA the peer's exchange made (0: no collision) */
		uint8_t min_nonce[IKE_NONCE_MAX];  /* the lower nonce of the peer's exchange */
		size_t min_len;
	} ike_coll;
	struct ike_child_key pending[16];   /* children waiting for a CREATE_CHILD_SA once the SA is idle */
	size_t n_pending;
	uint8_t acq_src[16], acq_dst[16], acq_family;
	uint64_t created_ms, established_ms, rekey_at_ms, expire_at_ms, last_recv_ms, dpd_at_ms, delete_at_ms;
};

/* Tests only: sees each message of an SA before it is encoded (plain payloads, those inside SK), so a test engine
 * can act as a misbehaving authenticated peer. */
typedef void ike_out_hook(void *ctx, struct ike_msg *out, struct ike_msg *inner);

struct ike_engine {
	struct ike_engine_conf conf;
	struct ike_callbacks cb;
	ike_out_hook *out_hook;             /* NULL but in tests (ike_engine_set_out_hook) */
	void *out_hook_ctx;
	struct ike_peer *peers;
	size_t n_peers;
	struct ike_policy *policies;
	size_t n_policies;
	struct ike_sa *sas;
	size_t n_sas, n_half_open;
	struct ike_sa_tab idx[IKE_IDX_N];
	uint64_t idx_key[2];                /* SipHash-2-4 key of the index hashes, secret (index.c) */
	size_t n_unauth_initiators;         /* SAs we initiate whose peer has not authenticated yet */
	uint64_t deadline;                  /* ike_next_deadline's answer, valid unless deadline_stale */
	bool deadline_stale;                /* set by every entry point that can change a timer */
	uint64_t next_sa_id;
	uint8_t cookie_secret[32];
	uint8_t buf[IKE_MAX_MSG];           /* scratch for building one message */
	uint8_t plain[IKE_MAX_MSG];         /* scratch for one outgoing SK plaintext */
	uint8_t in_plain[IKE_MAX_MSG];      /* the decrypted inside of the message being handled */
	uint8_t octets[IKE_MAX_MSG + 1024]; /* AUTH's signed octets */
	uint8_t ke_buf[IKE_DH_PUB_MAX];     /* our KE payload data in CREATE_CHILD_SA */
	uint8_t gir[IKE_DH_PUB_MAX];        /* a CREATE_CHILD_SA's shared secret */
	struct ike_msg msg;                 /* the message being decoded */
	struct ike_msg out;                 /* the message being built: header and plain payloads */
	struct ike_msg inner;               /* ... and the payloads inside its SK */
};

/* A proposal chosen from a peer's SA payload. */
struct ike_choice {
	uint8_t num;
	struct ike_suite suite;
	uint16_t dh;
	uint8_t esn;
	uint8_t spi[IKE_SPI_LEN];           /* the peer's SPI from its proposal */
	uint8_t spi_len;
	bool transport;                     /* child SAs: USE_TRANSPORT_MODE agreed */
};

/* The bytes of an address of family 4|6 in our 16-byte arrays (any other family: all of them, the stricter). */
static inline size_t ike_addr_len(uint8_t family)
{
	return family == 4 ? 4 : 16;
}

/* A 32-bit SPI in network order. */
static inline uint32_t ike_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Same family and address; the port does not count. */
static inline bool ike_addr_same(const struct ike_addr *a, const struct ike_addr *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, ike_addr_len(a->family));
}

/* The IPsec protocol of a child SA (RFC 7296 3.3.1: one per child SA). */
#define IKE_CHILD_PROTO(ah) ((ah) ? IKE_PROTO_AH : IKE_PROTO_ESP)

/* index.c: ike_index_init keys the index hashes (cannot fail); ike_index_hash is SipHash-2-4 of a | b under that
 * key. ike_sa_index files sa under its current SPIs and identity (again after they change); the chains hold every
 * SA whose key hashed to that bucket, so callers compare the key themselves. */
void ike_index_init(struct ike_engine *e);
uint64_t ike_index_hash(const struct ike_engine *e, const void *a, size_t a_len, const void *b, size_t b_len);
void ike_sa_index(struct ike_engine *e, struct ike_sa *sa);
void ike_sa_unindex(struct ike_engine *e, struct ike_sa *sa);
void ike_index_free(struct ike_engine *e);
struct ike_sa *ike_sa_chain_spi_i(struct ike_engine *e, const uint8_t *spi_i);
struct ike_sa *ike_sa_chain_ident(struct ike_engine *e, const struct ike_ident *id);

/* engine.c */
void ike_engine_set_out_hook(struct ike_engine *e, ike_out_hook *fn, void *ctx);
static inline bool ike_log_on(const struct ike_engine *e, int level)
{
	return e->cb.log && (!e->conf.log_level || level <= e->conf.log_level);
}
void ike_log(struct ike_engine *e, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ike_random(struct ike_engine *e, uint8_t *buf, size_t len);
void ike_emit(struct ike_engine *e, uint8_t kind, const struct ike_sa *sa, uint32_t child_id, uint32_t spi_in,
	uint32_t spi_out, const char *text);
struct ike_peer *ike_peer_find(struct ike_engine *e, uint32_t id);
struct ike_policy *ike_policy_find(struct ike_engine *e, uint32_t id);


/* proposal.c */
/* Appends an SA payload offering confs (defaults when n is 0); with_dh false leaves out DH (child SAs in IKE_AUTH). */
int ike_sa_payload_add(struct ike_msg *m, const struct ike_proposal_conf *confs, size_t n, uint8_t protocol,
	const uint8_t *spi, size_t spi_len, bool with_dh);
/* Responder: the first of our proposals (our order) that one of theirs (their order) matches. with_dh false
 * ignores DH (IKE_AUTH). 0 or -IKE_E_NO_PROPOSAL_CHOSEN. */
int ike_proposal_choose(const struct ike_msg *m, const struct ike_proposal_conf *confs, size_t n, uint8_t protocol,
	bool legacy, bool with_dh, struct ike_choice *out);
/* Initiator: the responder's answer is exactly one proposal, one transform a type, within what we offered. */
int ike_proposal_accept(const struct ike_msg *m, const struct ike_proposal_conf *confs, size_t n, uint8_t protocol,
	bool legacy, bool with_dh, struct ike_choice *out);
/* Appends the SA payload answering with c, carrying our spi. */
int ike_choice_add(struct ike_msg *m, const struct ike_choice *c, uint8_t protocol, const uint8_t *spi,
	size_t spi_len);
/* "aes256gcm16-prfsha384-curve25519" */
int ike_choice_format(const struct ike_choice *c, bool child, char *buf, size_t len);
/* The first DH group we offer. */
uint16_t ike_proposals_first_dh(const struct ike_proposal_conf *confs, size_t n, bool child);
bool ike_proposals_have_dh(const struct ike_proposal_conf *confs, size_t n, uint16_t group);
/* The IKE proposals confs (defaults when n is 0) would have chosen this suite and group. */
bool ike_proposals_allow(const struct ike_proposal_conf *confs, size_t n, const struct ike_suite *suite,
	uint16_t dh, bool legacy);
const struct ike_proposal_conf *ike_default_ike(size_t *n);
const struct ike_proposal_conf *ike_default_esp(size_t *n);

/* out.c: building and sending messages. Plain payloads go to e->out, encrypted ones to e->inner. */
void ike_out_begin(struct ike_engine *e, const struct ike_sa *sa, uint8_t exchange, bool response, uint32_t msg_id);
struct ike_payload *ike_out_notify(struct ike_msg *m, uint16_t type, uint8_t proto, const uint8_t *spi,
	size_t spi_len, const uint8_t *data, size_t len);
/* Encodes (encrypting e->inner into SK when sk), sends, and keeps it: a request for retransmission (kind), a
 * response for duplicates. 0 or -IKE_E_*. */
int ike_out_send(struct ike_engine *e, struct ike_sa *sa, uint64_t now_ms, bool sk, uint8_t req_kind);
/* One answer outside any SA (errors to IKE_SA_INIT, cookies): sent, not kept. */
void ike_out_send_stateless(struct ike_engine *e, const struct ike_addr *src, const struct ike_addr *dst);
void ike_out_resend(struct ike_engine *e, struct ike_sa *sa, const uint8_t *buf, size_t len,
	const uint16_t *frag_len, size_t n_frags);
void ike_trace(struct ike_engine *e, const char *dir, const struct ike_msg *m, const struct ike_addr *peer);

/* ts.c */
/* Narrows their selectors to ours (responder): out = the non-empty intersections. 0 or -IKE_E_TS_UNACCEPTABLE. */
int ike_ts_narrow(const struct ike_ts *theirs, size_t n_theirs, const struct ike_ts_conf *ours, size_t n_ours,
	struct ike_ts_conf *out, size_t *n_out);
/* Initiator: every returned selector lies inside one we proposed. */
bool ike_ts_within(const struct ike_ts *got, size_t n_got, const struct ike_ts_conf *ours, size_t n_ours);
/* Appends a TS payload. */
int ike_ts_payload_add(struct ike_msg *m, uint8_t type, const struct ike_ts_conf *ts, size_t n);
/* The selectors of the first payload of this type, or 0 of them. */
size_t ike_ts_from_msg(const struct ike_msg *m, uint8_t type, const struct ike_ts **out);
void ike_ts_from_wire(const struct ike_ts *in, size_t n, struct ike_ts_conf *out, size_t *n_out);
/* Copies selectors into out (at most max); with host, only those containing the clone host, narrowed to it. */
size_t ike_ts_to_host(const struct ike_ts_conf *ts, size_t n, const struct ike_child_key *host, struct ike_ts_conf *out,
	size_t max);

/* init.c / auth.c / child.c / info.c: one handler per exchange and direction; m is decoded (and decrypted). */
void ike_init_request(struct ike_engine *e, uint64_t now_ms, const struct ike_addr *src, const struct ike_addr *dst,
	const uint8_t *raw, size_t len);
void ike_init_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const uint8_t *raw, size_t len);
int ike_init_start(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
int ike_auth_start(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
void ike_auth_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
void ike_auth_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
void ike_ccs_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
void ike_ccs_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
void ike_info_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
void ike_info_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
int ike_info_send_delete(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_child *c);
int ike_info_send_dpd(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
/* An error notify as a response to the peer's current request (encrypted when keys exist). */
void ike_send_error(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint8_t exchange, uint16_t notify,
	const uint8_t *data, size_t len);

/* auth.c: the child SA part of IKE_AUTH and CREATE_CHILD_SA */
int ike_child_offer(struct ike_engine *e, struct ike_sa *sa, const struct ike_policy *pol,
	const struct ike_child_key *key, bool with_dh, uint32_t spi_in);
uint16_t ike_child_answer(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool with_dh,
	const struct ike_payload *ke, const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
	const struct ike_child *replaces, struct ike_choice *chosen);
int ike_child_accept(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool with_dh, const uint8_t *gir,
	size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len, uint32_t replaces);
uint32_t ike_new_spi(struct ike_engine *e);

/* child.c */
/* The proposals of a policy for one protocol (defaults when *n is 0). */
const struct ike_proposal_conf *ike_policy_props(const struct ike_policy *pol, bool ah, size_t *n);
/* The first child a policy brings up: ESP, or AH for an AH-only policy. */
bool ike_policy_first_ah(const struct ike_policy *pol);
bool ike_child_key_eq(const struct ike_child_key *a, const struct ike_child_key *b);
bool ike_child_is(const struct ike_child *c, const struct ike_child_key *k);
void ike_child_key_of(const struct ike_child *c, struct ike_child_key *k);
/* An AH+ESP bundle: the other protocol's child of the same policy and host that has no partner of this protocol
 * yet (its inbound SPI is the one this one takes), or NULL. */
struct ike_child *ike_child_unpaired(struct ike_engine *e, struct ike_sa *sa, const struct ike_child_key *k);
/* The other child of c's bundle (same policy, host and inbound SPI, other protocol), or NULL. */
struct ike_child *ike_child_partner(struct ike_engine *e, struct ike_sa *sa, const struct ike_child *c);
/* An inbound SPI for a new child k: its bundle partner's, or a fresh one (0 when none is left). */
uint32_t ike_child_spi(struct ike_engine *e, struct ike_sa *sa, const struct ike_child_key *k);
struct ike_child *ike_child_add(struct ike_sa *sa);
/* By inbound SPI: any protocol (either half of a bundle), or the one of ah. */
struct ike_child *ike_child_find_in(struct ike_sa *sa, uint32_t spi_in);
struct ike_child *ike_child_find_proto(struct ike_sa *sa, uint32_t spi_in, bool ah);
/* By outbound SPI (the one the peer names in REKEY_SA and DELETE) and protocol. */
struct ike_child *ike_child_find_out(struct ike_sa *sa, uint32_t spi_out, bool ah);
/* Derives the keys, installs through the callback and records the child. gir NULL: no PFS. exch_initiator: we sent
 * this exchange's request (ni, ts_i are ours), whoever started the IKE SA. */
int ike_child_establish(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_policy *pol,
	const struct ike_child_key *key, const struct ike_choice *c, uint32_t spi_in, const struct ike_ts_conf *ts_i, size_t n_ts_i,
	const struct ike_ts_conf *ts_r, size_t n_ts_r, const uint8_t *gir, size_t gir_len, const uint8_t *ni,
	size_t ni_len, const uint8_t *nr, size_t nr_len, uint32_t replaces, bool exch_initiator);
void ike_child_remove(struct ike_engine *e, struct ike_sa *sa, struct ike_child *c, const char *why);
/* The old pair old_spi_in is going: the child that replaced it as a rekey's responder starts sending. */
void ike_child_send_on_successor(struct ike_engine *e, struct ike_sa *sa, uint32_t old_spi_in);
void ike_child_drop_out_later(struct ike_child *c);
/* Initiator: starts CREATE_CHILD_SA for a new child, when the SA is idle. */
int ike_ccs_start_new(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_child_key *key);
int ike_ccs_start_rekey(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, struct ike_child *c);
int ike_ccs_start_ike_rekey(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);

/* input.c */
struct ike_sa *ike_sa_by_our_spi(struct ike_engine *e, const uint8_t *spi);

/* ccs.c */
int ike_nonce_cmp(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len);
/* An old IKE SA going while a simultaneous rekey is unresolved: its children go to the peer's new SA. */
void ike_rekey_collision_adopt(struct ike_engine *e, struct ike_sa *old);

/* init.c */
void ike_init_auth_notifies(struct ike_engine *e, const struct ike_peer *p, bool certreq);
void ike_random_spi(struct ike_engine *e, uint8_t spi[IKE_SPI_LEN]);
int ike_rekey_keys(struct ike_sa *old, struct ike_sa *sa, const uint8_t *gir, size_t gir_len);

/* sa.c */
void ike_sa_inherit(const struct ike_sa *from, struct ike_sa *to);
void ike_sa_move_children(struct ike_sa *from, struct ike_sa *to);
void ike_req_done(struct ike_sa *sa);
void ike_sa_established(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa);
void ike_sa_fail(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint8_t ev, const char *why);
uint32_t ike_jitter(struct ike_engine *e, uint32_t margin_s);
const struct ike_peer *ike_sa_peer(struct ike_engine *e, const struct ike_sa *sa);
/* The interval between a liveness check's sends: the peer's dpd_timeout (or the engine's) over IKE_DPD_SENDS. */
uint64_t ike_dpd_step_ms(struct ike_engine *e, const struct ike_sa *sa);

#endif
