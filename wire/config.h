/* config.h: the wire's configuration as plain data, read from the JSON schema (file or control socket). */
#ifndef BITW_CONFIG_H
#define BITW_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "pkt.h"

struct json_t;

enum pol_action { ACT_DISCARD = 0, ACT_BYPASS = 1, ACT_PROTECT = 2 };
enum pol_dir { DIR_OUT = 1, DIR_IN = 2, DIR_BOTH = 3 };  /* out = red -> black */
enum sa_mode { MODE_TUNNEL = 0, MODE_TRANSPORT = 1 };
enum sa_proto { PROTO_ESP = 0, PROTO_AH = 1 };        /* RFC 4303 ESP or RFC 4302 AH (integrity only) */
enum sa_encap { ENCAP_NONE = 0, ENCAP_UDP = 1 };         /* ESP or ESP-in-UDP (RFC 3948) */
/* Who keyed an SA: a configuration push replaces manual SAs only; IKE SAs stay while their policy does. */
enum sa_origin { ORIGIN_MANUAL = 0, ORIGIN_IKE = 1 };
/* The whole box: normal, or the seeds' maintenance states "bypass all" (clear text both ways) and "drop all". */
enum admin_state { ADMIN_SECURE = 0, ADMIN_BYPASS = 1, ADMIN_DROP = 2 };
/* Policy cloning: one SA pair per distinct source (or destination) host the policy covers. */
enum clone_mode { CLONE_NONE = 0, CLONE_SRC = 1, CLONE_DST = 2 };
/*
 * The protocols a protect policy's SAs use: ESP, AH, or the AH+ESP bundle (an
 * ESP SA and an AH SA per direction, RFC 4301 4.5). ESP and AH have the values
 * of enum sa_proto, so an SA fits a non-bundle policy when proto == sa_type.
 */
enum sa_type { SATYPE_ESP = PROTO_ESP, SATYPE_AH = PROTO_AH, SATYPE_AHESP = 2 };

enum sa_enc {
	ENC_NULL = 0,
	ENC_AES_GCM_128,        /* RFC 4106, 16-byte ICV; key + 4-byte salt */
	ENC_AES_GCM_256,
	ENC_CHACHA20_POLY1305,  /* RFC 7634; 32-byte key + 4-byte salt */
	ENC_AES_CBC_128,        /* RFC 3602 */
	ENC_AES_CBC_256,
	ENC_AES_CTR_128,        /* RFC 3686; key + 4-byte nonce; needs an integrity algorithm */
	ENC_AES_CTR_256,
	ENC_AES_CCM8_128,       /* RFC 4309, 8-byte ICV; key + 3-byte salt */
	ENC_AES_CCM8_256,
	ENC_AES_CCM12_128,      /* 12-byte ICV */
	ENC_AES_CCM12_256,
	ENC_AES_CCM16_128,      /* 16-byte ICV */
	ENC_AES_CCM16_256,
	ENC_AES_GMAC_128,       /* RFC 4543 ENCR_NULL_AUTH_AES_GMAC: integrity only; key + 4-byte salt */
	ENC_AES_GMAC_256,
	ENC_3DES_CBC,           /* RFC 2451; legacy: only with options.legacy_algorithms */
	ENC__COUNT
};

enum sa_integ {
	INTEG_NONE = 0,         /* only with AEAD ciphers */
	INTEG_HMAC_SHA1_96,     /* RFC 2404 */
	INTEG_HMAC_SHA256_128,  /* RFC 4868 */
	INTEG_HMAC_SHA384_192,
	INTEG_HMAC_SHA512_256,
	INTEG_AES_XCBC_96,      /* RFC 3566 */
	INTEG_HMAC_MD5_96,      /* RFC 2403; legacy: only with options.legacy_algorithms */
	INTEG_AES_GMAC_128,     /* RFC 4543 AH integrity (IKE 18/20): AH SAs only; key + 4-byte salt */
	INTEG_AES_GMAC_256,
	INTEG__COUNT
};

/*
 * An address selector, normalised to a range: a single address, a prefix and
 * an explicit range all become [lo, hi]. family 4 or 6; an "any" of a family
 * is the full range of that family.
 */
struct sel_addr {
	uint8_t family;
	uint8_t lo[16], hi[16];
};

struct sel_port {
	uint16_t lo, hi;        /* 0-65535 = any */
};

#define PROTO_ANY (-1)

/* Selectors are written from the outbound (red -> black) point of view. */
struct selector {
	struct sel_addr src, dst;
	struct sel_port sport, dport;
	int16_t proto;          /* PROTO_ANY or an IP protocol number */
};

#define NAME_MAX_ 64

enum df_mode { DF_CLEAR = 0, DF_SET = 1, DF_COPY = 2 };  /* the outer IPv4 header's DF bit */

#define TFC_PAD_MAX 1024

/*
 * Per-policy options applied to each of its SAs (sa_resolve copies them).
 * Zero is the default for each, so an SA built by hand behaves as before.
 */
struct sa_opts {
	uint8_t ecn_off;        /* 1: RFC 6040 compatibility mode (outer not-ECT, inner untouched); 0: normal mode */
	uint8_t df;             /* enum df_mode */
	uint8_t pad_nocheck;    /* 1: inbound ESP padding bytes are not checked to be 1, 2, 3... */
	uint8_t icv96;          /* HMAC-SHA2: ICV truncated to 96 bits */
	uint16_t tfc_pad;       /* tunnel, outbound: up to this many random TFC padding bytes (RFC 4303 2.7); 0 = off */
	uint32_t dummy_ms;      /* tunnel, outbound: mean interval of dummy packets (next header 59); 0 = off */
};

struct policy_conf {
	uint32_t id;            /* stable; from the config or assigned in order */
	char name[NAME_MAX_];
	uint8_t priority;       /* 1 (highest) .. 7 (lowest) */
	uint32_t order;         /* position in the list: ties within a priority */
	uint8_t action;         /* enum pol_action */
	uint8_t dir;            /* enum pol_dir; inbound matches the mirror image */
	struct selector sel;
	/* PROTECT only */
	uint8_t mode;           /* enum sa_mode */
	struct bw_addr peer;    /* remote gateway (tunnel endpoint) */
	uint8_t mss_clamp;      /* clamp TCP MSS of SYNs (default on) */
	uint8_t clone;          /* enum clone_mode: tunnel only; its SAs each carry a clone_host */
	uint8_t sa_type;        /* enum sa_type */
	struct sa_opts opts;    /* for its SAs */
};

struct sa_lifetime {
	uint64_t seconds, bytes, packets;  /* 0 = no limit */
};

struct sa_conf {
	uint32_t spi;
	uint8_t dir;            /* DIR_OUT or DIR_IN */
	char policy[NAME_MAX_]; /* the policy this SA serves */
	uint32_t policy_id;     /* resolved from the name */
	struct bw_addr local;   /* our tunnel endpoint; default: our black address of peer's family */
	struct bw_addr peer;    /* default: the policy's peer */
	uint8_t mode;           /* enum sa_mode */
	uint8_t proto;          /* enum sa_proto */
	uint8_t encap;          /* enum sa_encap */
	uint16_t encap_sport;   /* UDP ports for ESP-in-UDP (default 4500/4500) */
	uint16_t encap_dport;
	uint16_t nat_keepalive; /* outbound udp: seconds between NAT-T keepalives; 0 = options.nat_keepalive */
	uint8_t enc;            /* enum sa_enc */
	uint8_t integ;          /* enum sa_integ */
	uint8_t enc_key[36];    /* secret: never logged nor returned */
	uint8_t enc_key_len;
	uint8_t integ_key[64];  /* secret */
	uint8_t integ_key_len;
	uint16_t replay_window; /* packets; 0 = no replay check; 64..4096 */
	uint8_t esn;            /* 64-bit extended sequence numbers */
	struct sa_lifetime soft, hard;
	struct sa_opts opts;    /* from the policy (sa_resolve) */
	uint8_t origin;         /* enum sa_origin */
	/*
	 * Clone policies only: the host (outbound src or dst per the policy's
	 * clone, outbound point of view) this SA serves; family 0 = none.
	 */
	struct bw_addr clone_host;
};

#define PORT_MAX_ADDRS 8

struct port_conf {
	char ifname[IF_NAMESIZE];
	uint32_t mtu;                         /* 0 = the interface's MTU */
	struct bw_addr addr[PORT_MAX_ADDRS];  /* addresses bitw owns on this port */
	uint8_t plen[PORT_MAX_ADDRS];
	uint8_t naddr;
	struct bw_addr gw4, gw6;              /* default gateways (black); family 0 = none */
	uint8_t router_mac[6];                /* red: MAC hosts use as their router; 0 = learn */
};

struct wire_options {
	uint8_t default_action;   /* ACT_DISCARD (default) or ACT_BYPASS for unmatched IP */
	uint8_t bridge_non_ip;    /* bridge ARP/ND/other non-IP frames (default 1) */
	uint16_t nat_keepalive;   /* seconds between NAT-T keepalives on UDP SAs; 0 = off */
	uint32_t neigh_timeout;   /* seconds a resolved neighbour stays valid (default 300) */
	uint32_t neigh_queue;     /* frames queued per unresolved neighbour (default 8) */
	uint32_t acquire_queue;   /* frames queued per policy (clone: per host) waiting for an SA (default 8) */
	uint32_t frag_timeout_ms; /* reassembly timeout (default 5000) */
	uint32_t frag_mem;        /* reassembly memory bound in bytes (default 4 MiB) */
	uint16_t replay_window;   /* default replay window for SAs (default 1024) */
	uint8_t legacy_algorithms; /* allow 3des-cbc and hmac-md5-96 (default 0) */
	uint8_t admin_state;      /* enum admin_state (default secure) */
	uint8_t black_interface_mac; /* black sends from the interface's own MAC (default 0: a derived one); at start */
};

struct wire_config {
	struct port_conf red, black;
	struct wire_options opt;
	struct policy_conf *pol;  /* in file order */
	uint32_t npol;
	struct sa_conf *sa;
	uint32_t nsa;
};

/*
 * Parsing. Each returns 0 or -XE_BAD_PARAM and, on error, names the
 * offending field in err ("policies[2].src: bad prefix length 33").
 */
int config_load_file(const char *path, struct wire_config *out, char *err, size_t errlen);
int config_from_json(const struct json_t *root, struct wire_config *out, char *err, size_t errlen);
int policy_from_json(const struct json_t *obj, struct policy_conf *out, char *err, size_t errlen);
int sa_from_json(const struct json_t *obj, struct sa_conf *out, char *err, size_t errlen);
/*
 * A "policies" array as a whole: ids assigned (1, 2, ... skipping explicit
 * ones), order = index unless given, names and ids checked unique. *out is
 * malloc'd; errors name "policies[i].field". For CTL_SPD_SET.
 */
int policies_from_json(const struct json_t *arr, struct policy_conf **out, uint32_t *n, char *err, size_t errlen);
/*
 * sa_from_json leaves replay_window at this when the SA does not say; then
 * sa_resolve (or config_validate) puts the configured default in.
 */
#define SA_REPLAY_DEFAULT 0xffff
/*
 * Tie a parsed SA to its policy (by name; must be protect): fills policy_id,
 * mode, peer (default: the policy's), local (default: our first black
 * address of the peer's family; if given, must be one of them), the default
 * replay window, and checks keys against algorithms. For CTL_SA_ADD.
 */
int sa_resolve(struct sa_conf *sa, const struct policy_conf *pol, uint32_t npol, const struct port_conf *black,
               uint16_t default_replay, char *err, size_t errlen);
/*
 * The part of sa_resolve that needs only the SA and its policy: the protocol
 * against the policy's sa_type, AH's limits, clone_host inside the cloned
 * selector. Errors name the SA's own field ("clone_host: ..."). For bitwd,
 * which checks an SA before storing it.
 */
int sa_fits_policy_conf(const struct sa_conf *sa, const struct policy_conf *p, char *err, size_t errlen);
/* Cross-object checks: unique names/SPIs, SAs name existing policies, keys fit algorithms. */
int config_validate(struct wire_config *c, char *err, size_t errlen);
void config_free(struct wire_config *c);  /* wipes keys */
/* The i-th field name the parser accepts (any object), NULL past the end: keeps the docs honest. */
const char *config_field_at(size_t i);

/* Back to JSON (keys redacted), for CONFIG_GET and STATS. */
struct json_t *policy_to_json(const struct policy_conf *p);
struct json_t *sa_to_json(const struct sa_conf *s);  /* no keys */
struct json_t *config_to_json(const struct wire_config *c);

/* Selector text forms of the seeds. */
int sel_addr_parse(const char *s, struct sel_addr *out);   /* addr, prefix (/24 or /255.255.255.0), range a-b, any, any6 */
int sel_port_parse(const char *s, struct sel_port *out);   /* n, a-b, any */
int sel_proto_parse(const char *s, int16_t *out);          /* tcp, udp, icmp, icmp6, number, any */
const char *sel_addr_str(const struct sel_addr *a, char *buf, size_t len);
/* sel_addr_parse that also says why a form was rejected (*why: a static sentence). */
int sel_addr_parse_why(const char *s, struct sel_addr *out, const char **why);

const char *admin_state_name(uint8_t state);
const char *enc_name(uint8_t enc);
const char *integ_name(uint8_t integ);
int enc_from_name(const char *s);    /* -XE_BAD_PARAM if unknown */
/* Authenticates itself (AEAD, GMAC): the SA's integ must be none. */
bool enc_is_aead(uint8_t enc);
/* Weak algorithms an administrator must allow with options.legacy_algorithms. */
bool enc_is_legacy(uint8_t enc);
bool integ_is_legacy(uint8_t integ);
int integ_from_name(const char *s);

#endif
