/* sa.h: security associations at run time, ESP encapsulation and the anti-replay window. */
#ifndef BITW_SA_H
#define BITW_SA_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"

#define REPLAY_MAX 4096

/* RFC 4303 anti-replay window with ESN (appendix A2). */
struct replay {
	uint64_t top;                    /* highest sequence number accepted (64-bit) */
	uint32_t size;                   /* window in packets: 0 = no check */
	uint64_t bits[REPLAY_MAX / 64];  /* ring of seen flags */
};

void replay_init(struct replay *r, uint32_t size);
/*
 * Before verification: is seq (the low 32 bits on the wire) acceptable?
 * With esn, reconstructs the high bits (RFC 4303 A2.2) into *full.
 * Returns 0 or -XE_BAD_SEQUENCE_NUMBER. Does not change the window.
 */
int replay_check(const struct replay *r, uint32_t seq, bool esn, uint64_t *full);
/* After the ICV verified: mark full as seen and slide the window. */
void replay_update(struct replay *r, uint64_t full);

enum sa_state { SA_MATURE = 0, SA_DYING = 1 /* soft expired */, SA_DEAD = 2 /* hard expired */ };

struct sa_stats {
	_Atomic uint64_t packets, bytes, errors, replay_drops, auth_drops;
	_Atomic uint64_t dummies;  /* dummy packets (next header 59): sent (out SA) or discarded (in SA) */
};

struct evp_cipher_ctx_st;
struct evp_mac_ctx_st;

/*
 * A runtime SA. Outbound SAs are used only by the red->black thread and
 * inbound SAs only by the black->red thread, so seq and the replay window
 * need no locks. Crypto contexts are built once in sa_create.
 */
struct sa {
	struct sa_conf conf;
	uint16_t iv_len;      /* bytes of IV in each packet */
	uint16_t icv_len;     /* bytes of ICV */
	uint16_t block;       /* payload alignment (4 for AEAD/NULL, 16 for CBC) */
	uint64_t seq;         /* outbound: last sequence number sent */
	struct replay replay; /* inbound */
	_Atomic uint8_t state;        /* enum sa_state */
	_Atomic uint8_t soft_pending; /* set by the data thread, cleared by the control thread */
	_Atomic uint8_t hard_pending;
	uint64_t created;     /* CLOCK_MONOTONIC seconds */
	struct sa_stats st;
	uint64_t rng;         /* xorshift state: TFC and dummy sizes, dummy intervals (its data thread only) */
	uint64_t dummy_next;  /* outbound: when the next dummy packet is due, ms (0 = not scheduled) */
	uint64_t keepalive_ms; /* outbound udp, control thread: when its ends last got a NAT-T keepalive */
	void *crypto;         /* private to esp.c: EVP contexts, keys */
};

/* Build an SA: checks key lengths for the algorithms, prepares EVP contexts. */
int sa_create(const struct sa_conf *conf, struct sa **out, char *err, size_t errlen);
void sa_destroy(struct sa *sa);  /* wipes keys */
/* CLOCK_MONOTONIC in seconds: the clock of sa->created and sa_tick. */
uint64_t sa_clock_s(void);
/* Frees and wipes sa->crypto (esp.c's part of sa_destroy). */
void esp_crypto_free(struct sa *sa);
/*
 * Does this SA set its per-packet nonce as a cipher parameter rather than
 * through EVP_CipherInit_ex2 (AES-GCM, AES-GMAC, ChaCha20-Poly1305, when the
 * provider passed the self-check at sa_create)? For tests and STATS.
 */
bool esp_nonce_by_param(const struct sa *sa);

/* Bytes esp_encap adds around an inner packet of inner_len (header, IV, pad, trailer, ICV); for AH its header. */
uint32_t esp_overhead(const struct sa *sa, uint32_t inner_len);

/*
 * Outbound: write the ESP packet (SPI, sequence, IV, ciphertext of
 * inner + padding + pad length + next header, ICV) at out. out_cap is the room
 * available. inner either lies outside out's first out_cap bytes or exactly
 * where its ciphertext goes (out + 8 + sa->iv_len: encryption in place).
 * Takes the next sequence number. Returns the ESP length or a
 * negative XE_* (XE_SEQUENCE_OVERFLOW, XE_MTU_EXCEEDED for no room).
 * Allocates nothing.
 */
int esp_encap(struct sa *sa, uint8_t *out, uint32_t out_cap, const uint8_t *inner, uint32_t inner_len,
              uint8_t next_header);
/*
 * The same with tfc bytes of TFC padding (RFC 4303 2.7) between the inner
 * packet and the ESP padding: the receiver's inner IP length still says where
 * the packet ends. tfc <= TFC_PAD_MAX.
 */
int esp_encap_tfc(struct sa *sa, uint8_t *out, uint32_t out_cap, const uint8_t *inner, uint32_t inner_len,
                  uint8_t next_header, uint32_t tfc);
/* A cheap per-SA pseudo-random number (not for keys or IVs): sizes and intervals. */
uint32_t sa_random(struct sa *sa);
/*
 * The same with a caller-chosen IV and sequence number: known-answer tests
 * only. iv NULL makes one as esp_encap does; sa->seq is left alone.
 */
int esp_encap_fixed(struct sa *sa, uint8_t *out, uint32_t out_cap, const uint8_t *inner, uint32_t inner_len,
                    uint8_t next_header, uint64_t seq, const uint8_t *iv);

/*
 * Inbound: verify and decrypt the ESP packet at esp (esp_len bytes, SPI
 * already matched to sa) in place. Replay check before, window update after
 * verification. On success *inner points into esp, *inner_len and *next_header
 * are set, and the return is 0; otherwise -XE_BAD_SEQUENCE_NUMBER,
 * -XE_ESP_DIGEST_MISMATCH, -XE_ESP_BAD_PADDING or -XE_MALFORMED_PACKET.
 */
int esp_decap(struct sa *sa, uint8_t *esp, uint32_t esp_len, uint8_t **inner, uint32_t *inner_len,
              uint8_t *next_header);
/*
 * The same, but the plaintext (inner packet, TFC padding, ESP trailer) is
 * written to out (out_cap bytes, not overlapping esp) and esp is left as it
 * was: the receive path decrypts straight into a transmit slot instead of
 * copying the packet there afterwards. The inner packet starts at out.
 * Returns as esp_decap, -XE_MALFORMED_PACKET when the plaintext would not
 * fit. On failure out may hold unverified plaintext: never send it.
 */
int esp_decap_to(struct sa *sa, const uint8_t *esp, uint32_t esp_len, uint8_t *out, uint32_t out_cap,
                 uint32_t *inner_len, uint8_t *next_header);

/* The SA's integrity ICV (sa->icv_len bytes) over data, with the ESN high half appended when esn is on. */
int sa_integ_icv(const struct sa *sa, const uint8_t *data, uint32_t len, uint64_t seq, uint8_t *icv);

/* AH's AES-GMAC ICV (RFC 4543 5) over data under the 8-byte iv, with the ESN high half when esn is on. */
int sa_gmac_icv(const struct sa *sa, const uint8_t *iv, const uint8_t *data, uint32_t len, uint64_t seq,
                uint8_t *icv);

/*
 * AH (RFC 4302, ah.c), tunnel and transport mode. The AH header is 12 bytes + ICV, padded
 * to 4 (IPv4) or 8 (IPv6) bytes; AES-GMAC puts its 8-byte IV before the ICV. Outbound: ip holds the outer IP packet,
 * header complete (protocol 51, lengths), ah_len bytes reserved at ip + ah_off
 * and the inner packet after them; ah_encap takes the next sequence number and
 * fills the AH header and ICV, computed with the mutable fields zeroed.
 * Returns 0, -XE_SEQUENCE_OVERFLOW or -XE_NOT_SUPPORTED. Inbound: ah_decap
 * checks replay, verifies the ICV, updates the window; *inner points after
 * the AH header. Returns 0, -XE_BAD_SEQUENCE_NUMBER, -XE_AH_DIGEST_MISMATCH,
 * -XE_MALFORMED_PACKET or -XE_NOT_SUPPORTED (headers before AH over 1 KiB, an
 * IPv6 fragment header or unpredictable routing header before AH). IPv6
 * headers before AH count as at the final destination (RFC 4302 3.3.3.1.2).
 * Nothing is allocated.
 */
uint32_t ah_hdr_len(const struct sa *sa, int family);
int ah_encap(struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint8_t next_header);
/* The same with a given sequence number, sa->seq left alone: known-answer tests. */
int ah_encap_fixed(struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint8_t next_header, uint64_t seq);
int ah_decap(struct sa *sa, uint8_t *ip, uint32_t ip_len, uint32_t ah_off, uint8_t **inner, uint32_t *inner_len,
             uint8_t *next_header);

/*
 * Account a packet against the SA's lifetimes (called by the data thread).
 * Returns 0, or -XE_SA_EXPIRED when the hard limit is reached (the SA goes
 * to SA_DEAD and hard_pending is set); crossing a soft limit sets soft_pending.
 */
int sa_account(struct sa *sa, uint32_t bytes);
/* Time-based lifetimes, called by the control thread about once a second. */
void sa_tick(struct sa *sa, uint64_t now_s);

/*
 * SAD: (SPI, protocol) -> inbound SA, so an AH and an ESP SA may share an SPI
 * (an AH+ESP bundle's pair). Built by the control thread, read-only afterwards.
 */
struct sad;
struct sad *sad_build(struct sa *const *in_sas, uint32_t n);
void sad_free(struct sad *sad);  /* frees the table, not the SAs */
struct sa *sad_lookup(const struct sad *sad, uint32_t spi, uint32_t proto);  /* proto: enum sa_proto */
/*
 * The inbound ESP SA (spi) of an AH+ESP bundle whose AH SA ah verified the
 * packet around it: it must serve the same policy (and clone host). NULL with *why set to
 * XE_BAD_ESP_SPI (none) or XE_INBOUND_POLICY_FAILURE (another policy's or host's).
 */
struct sa *sad_bundle_esp(const struct sad *sad, const struct sa *ah, uint32_t spi, int *why);

/*
 * Clone policies (clone.c): their outbound SAs by (policy id, clone_host).
 * Built by the control thread from the live outbound SAs in install order
 * (SAs without clone_host are skipped; for one host the last wins), read-only
 * afterwards; a lookup allocates nothing. ah_sas are ahesp policies' AH SAs,
 * kept beside the same host's ESP SA. The lookup returns the host's SA (an
 * ahesp policy's ESP SA) and sets *ah to its AH SA; NULL: none yet.
 */
struct clone_index;
struct clone_index *clone_index_build(struct sa *const *out_sas, uint32_t n, struct sa *const *ah_sas, uint32_t nah);
void clone_index_free(struct clone_index *ci);
struct sa *clone_index_lookup(const struct clone_index *ci, uint32_t policy_id, const struct bw_addr *host,
                              struct sa **ah);
/* Each host's SA in turn: start with *pos = 0; NULL after the last. */
struct sa *clone_index_next(const struct clone_index *ci, uint32_t *pos);
/* The packet's clone value under a policy's clone mode seen in dir (DIR_OUT/DIR_IN); NULL for CLONE_NONE. */
const struct bw_addr *clone_value(uint8_t clone, int dir, const struct pkt_info *pi);
/*
 * Whether an inbound SA serving sa_host (family 0: none) may deliver this
 * inner packet under its policy's clone mode: a clone policy's SA carries
 * its own host's packets only, another policy's SA none with a host.
 */
bool clone_inbound_ok(uint8_t clone, const struct bw_addr *sa_host, const struct pkt_info *inner);
/* A hash of (policy, host): the clone index's and the per-host ACQUIRE rate limit's. */
uint64_t clone_key_hash(uint32_t policy_id, const struct bw_addr *host);

/*
 * Transport mode (transport.c), ESP or AH as the SA says. Outbound: the
 * host's whole frame at frame (parsed in pi) written to out with ESP or AH
 * after its IP header (IPv6: after hop-by-hop, routing and the destination
 * options before a routing header; RFC 4302 3.1.1, RFC 4303 3.1.1); the
 * frame's Ethernet and IP headers are kept, lengths, next header and
 * checksum fixed. Returns the new frame's length or -XE_* (-XE_NOT_SUPPORTED
 * for fragments). Inbound: ESP or AH addressed to the host verified (and
 * decrypted) in place and the host's packet restored; *out points into
 * frame. Returns 0 or -XE_* as esp_decap/ah_decap, -XE_DUMMY_PACKET for
 * next header 59.
 */
int transport_encap(struct sa *sa, uint8_t *out, uint32_t cap, const uint8_t *frame, const struct pkt_info *pi);
/* An AH+ESP bundle in transport mode: IP | AH | ESP | payload. */
int transport_encap_bundle(struct sa *esp, struct sa *ah, uint8_t *out, uint32_t cap, const uint8_t *frame,
                           const struct pkt_info *pi);
int transport_decap(struct sa *sa, uint8_t *frame, const struct pkt_info *pi, uint8_t **out, uint32_t *out_len);

#endif
