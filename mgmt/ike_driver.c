/* ike_driver.c: bitwd's IKE driver: one sans-I/O engine fed from the reactor, the wire and the database. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bitwd.h"
#include "ike/ike.h"
#include "wire/config.h"
#include "wire/ctl.h"
#include "wire/log.h"

#define WIRE_TIMEOUT_MS 2000
#define ADDS_MAX WIRE_ASYNC_MAX /* SA_ADDs sent whose reply has not come back yet */

/*
 * The child SAs we installed, keys included: when bitw-wire restarts it comes
 * back with the stored (manual) configuration only, and these are put back.
 * The engine holds the same keys; this copy is wiped when the SA goes.
 */
struct installed {
	struct ike_child_sa sa;
	char policy[DB_NAME_LEN];
};

struct ike_driver {
	struct bitwd *d;
	struct ike_engine *e;
	uint32_t *peers, *children;   /* ids currently set in the engine */
	char (*child_names)[DB_NAME_LEN]; /* the policy name of children[i], for the wire without a query per SA */
	size_t npeers, nchildren;
	uint8_t *peer_start;          /* enum ike_start of peers[i] */
	struct installed *inst;
	size_t ninst, capinst;
	int keylog_fd;                /* -1 unless --ike-keylog */
	struct { uint32_t seq, spi_in; bool ah; } adds[ADDS_MAX]; /* SA_ADDs in flight (wire_add with seq) */
	size_t nadds;
};

static uint64_t now_ms(void)
{
	return bitwd_now_ms();
}

const char *ike_driver_strerror(int rc)
{
	return ike_strerror(rc);
}

/* ---- conversions ---- */

static int addr_parse(const char *s, struct ike_addr *out, uint16_t port)
{
	struct bw_addr a;

	memset(out, 0, sizeof *out);
	if (bw_addr_parse(s, &a) < 0)
		return -1;
	out->family = a.family;
	out->port = port;
	memcpy(out->addr, a.a, 16);
	return 0;
}

static const char *addr_text(const struct ike_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

/* Our black address of a family: the first one stored for the black port. */
static int black_address(struct bitwd *d, uint8_t family, struct ike_addr *out)
{
	struct db_port p;

	if (db_port_get(d->db, "black", &p) < 0)
		return -1;
	for (unsigned i = 0; i < p.naddr; i++) {
		char a[DB_ADDR_LEN], *slash;

		snprintf(a, sizeof a, "%s", p.addresses[i]);
		if ((slash = strchr(a, '/')))
			*slash = '\0';
		if (addr_parse(a, out, 500) == 0 && out->family == family)
			return 0;
	}
	return -1;
}

static uint8_t start_of(const char *db_start)
{
	if (!strcmp(db_start, "start"))
		return IKE_START_ALWAYS;
	if (!strcmp(db_start, "none"))
		return IKE_START_NEVER;
	return IKE_START_TRAFFIC;
}

static uint8_t dpd_of(const char *a)
{
	if (!strcmp(a, "clear"))
		return IKE_DPD_CLEAR;
	if (!strcmp(a, "hold"))
		return IKE_DPD_HOLD;
	return IKE_DPD_RESTART;
}

static uint32_t clamp_u32(int64_t v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static char *cert_pem(struct bitwd *d, int64_t id)
{
	struct db_cert c;
	char *pem;

	if (id <= 0 || db_cert_get(d->db, id, &c) < 0)
		return NULL;
	pem = c.pem;
	c.pem = NULL;
	db_cert_free(&c);
	return pem;
}

/* The engine copies what it is given; the secrets read here are wiped right after ike_peer_set. */
struct peer_secrets {
	uint8_t *psk;
	size_t psk_len;
	uint8_t *key;
	size_t key_len;
	char *key_pem, *cert, *ca;
};

static void secrets_free(struct peer_secrets *s)
{
	if (s->psk)
		db_secret_free(s->psk, s->psk_len);
	if (s->key_pem) {
		OPENSSL_cleanse(s->key_pem, s->key_len);
		free(s->key_pem);
	}
	if (s->key)
		db_secret_free(s->key, s->key_len);
	free(s->cert);
	free(s->ca);
	memset(s, 0, sizeof *s);
}

static int peer_conf(struct bitwd *d, const struct db_peer *row, struct ike_peer_conf *c, struct peer_secrets *s)
{
	char err[128];
	int n;

	memset(c, 0, sizeof *c);
	c->id = (uint32_t)row->id;
	snprintf(c->name, sizeof c->name, "%s", row->name);
	if (addr_parse(row->address, &c->remote, row->nat_force_encap ? 4500 : 500) < 0) {
		mlog(WLOG_WARN, "ike: peer %s: address %s is not an IP address; skipped", row->name, row->address);
		return -1;
	}
	if (row->local[0] ? addr_parse(row->local, &c->local, 500) < 0
	                  : black_address(d, c->remote.family, &c->local) < 0) {
		mlog(WLOG_WARN, "ike: peer %s: no local IPv%u address (peer.local or ports.black); skipped", row->name,
		     c->remote.family);
		return -1;
	}
	snprintf(c->local_id, sizeof c->local_id, "%s", row->local_id);
	snprintf(c->remote_id, sizeof c->remote_id, "%s", row->remote_id);
	if (!strcmp(row->auth, "pubkey")) {
		c->auth = IKE_AUTH_PUBKEY;
		s->cert = cert_pem(d, row->cert_id);
		s->ca = row->ca_id > 0 ? cert_pem(d, row->ca_id) : certs_ca_bundle(d);
		if (row->cert_id > 0 && db_cert_key_get(d->db, row->cert_id, &s->key, &s->key_len) == 0 &&
		    (s->key_pem = malloc(s->key_len + 1))) {
			memcpy(s->key_pem, s->key, s->key_len);
			s->key_pem[s->key_len] = '\0';
		}
		c->cert_pem = s->cert;
		c->key_pem = s->key_pem;
		c->ca_pem = s->ca;
	} else {
		c->auth = IKE_AUTH_PSK;
		if (db_peer_psk_get(d->db, row->id, &s->psk, &s->psk_len) < 0)
			mlog(WLOG_WARN, "ike: peer %s has no PSK yet: it cannot authenticate", row->name);
		c->psk = s->psk;
		c->psk_len = s->psk_len;
	}
	if (strcmp(row->ike_proposals, "default") != 0) {
		n = ike_proposals_parse(row->ike_proposals, false, false, c->ike, IKE_MAX_PROPOSAL_CONF, err, sizeof err);
		if (n < 0) {
			mlog(WLOG_WARN, "ike: peer %s: ike_proposals: %s; skipped", row->name, err);
			return -1;
		}
		c->n_ike = (size_t)n;
	}
	c->ike_lifetime_s = clamp_u32(row->ike_lifetime);
	c->ike_rekey_margin_s = row->rekey_margin < row->ike_lifetime ? clamp_u32(row->rekey_margin) : 0;
	c->dpd_interval_s = clamp_u32(row->dpd_interval);
	c->dpd_action = dpd_of(row->dpd_action);
	c->dpd_timeout_s = clamp_u32(row->dpd_timeout);
	c->force_encap = row->nat_force_encap;
	c->no_nat_t = !row->nat_t;
	c->nat_keepalive_s = (uint16_t)(row->nat_keepalive > 0 && row->nat_keepalive <= 3600 ? row->nat_keepalive : 0);
	c->fragmentation = row->fragmentation;
	c->start = start_of(row->start_action);
	return 0;
}

static void ts_of(const struct sel_addr *a, const struct sel_port *p, int16_t proto, struct ike_ts_conf *ts)
{
	memset(ts, 0, sizeof *ts);
	ts->family = a->family;
	ts->proto = proto == PROTO_ANY ? 0 : (uint8_t)proto;
	ts->port_lo = p->lo;
	ts->port_hi = p->hi;
	memcpy(ts->lo, a->lo, 16);
	memcpy(ts->hi, a->hi, 16);
}

static int child_conf(const struct db_policy *pol, const struct db_peer *peer, bool legacy, struct ike_child_conf *c,
	struct ike_addr *host)
{
	json_t *j = policy_row_to_json(pol);
	struct policy_conf pc;
	char err[256];
	const char *esp = pol->esp_proposals[0] ? pol->esp_proposals : peer->esp_proposals;
	int n;

	memset(c, 0, sizeof *c);
	n = j ? policy_from_json(j, &pc, err, sizeof err) : -1;
	json_decref(j);
	if (n < 0) {
		mlog(WLOG_WARN, "ike: policy %s: %s; not keyed", pol->name, j ? err : "out of memory");
		return -1;
	}
	c->id = (uint32_t)pol->id;
	snprintf(c->name, sizeof c->name, "%s", pol->name);
	c->peer_id = (uint32_t)peer->id;
	/* Selectors are written from the red side out: src is ours, dst theirs. */
	ts_of(&pc.sel.src, &pc.sel.sport, pc.sel.proto, &c->local_ts[0]);
	ts_of(&pc.sel.dst, &pc.sel.dport, pc.sel.proto, &c->remote_ts[0]);
	c->n_local_ts = c->n_remote_ts = 1;
	if (strcmp(esp, "default") != 0 && esp[0]) {
		n = ike_proposals_parse(esp, true, legacy, c->esp, IKE_MAX_PROPOSAL_CONF, err, sizeof err);
		if (n < 0) {
			mlog(WLOG_WARN, "ike: policy %s: esp_proposals: %s; not keyed", pol->name, err);
			return -1;
		}
		c->n_esp = (size_t)n;
	}
	c->transport = !strcmp(pol->mode, "transport");
	/* AH, or an AH+ESP bundle (two children over the same selectors, ESP first, one inbound SPI for both). */
	c->sa_type = !strcmp(pol->sa_type, "ah") ? IKE_SA_TYPE_AH :
	             !strcmp(pol->sa_type, "ahesp") ? IKE_SA_TYPE_AHESP : IKE_SA_TYPE_ESP;
	if (c->sa_type != IKE_SA_TYPE_ESP && pol->ah_proposals[0] && strcmp(pol->ah_proposals, "default") != 0) {
		n = ike_ah_proposals_parse(pol->ah_proposals, legacy, c->ah, IKE_MAX_PROPOSAL_CONF, err, sizeof err);
		if (n < 0) {
			mlog(WLOG_WARN, "ike: policy %s: ah_proposals: %s; not keyed", pol->name, err);
			return -1;
		}
		c->n_ah = (size_t)n;
	}
	/* A clone policy's children come up per host (the ACQUIRE's clone_host), each narrowed to it. */
	c->clone = pc.clone == CLONE_SRC ? IKE_CLONE_SRC : pc.clone == CLONE_DST ? IKE_CLONE_DST : IKE_CLONE_NONE;
	/* Transport mode: bitw speaks IKE as the host (its single src address), which is the SAs' local end. */
	memset(host, 0, sizeof *host);
	if (c->transport) {
		host->family = pc.sel.src.family;
		host->port = 500;
		memcpy(host->addr, pc.sel.src.lo, 16);
	}
	c->lifetime_s = clamp_u32(pol->child_lifetime ? pol->child_lifetime : peer->child_lifetime);
	c->rekey_margin_s = peer->rekey_margin < c->lifetime_s ? clamp_u32(peer->rekey_margin) : 0;
	return 0;
}

/* ---- the wire ---- */

/* The wire's names (docs/config.md); its key lengths match the engine's KEYMAT (key || salt or nonce). */
static const char *enc_of(const struct ike_child_sa *sa)
{
	bool b128 = sa->key_bits == 128;

	if (sa->ah)
		return "null";   /* AH: integrity only */
	switch (sa->encr) {
	case IKE_ENCR_AES_GCM_16: return b128 ? "aes-gcm-128" : "aes-gcm-256";
	case IKE_ENCR_CHACHA20_POLY1305: return "chacha20-poly1305";
	case IKE_ENCR_AES_CBC: return b128 ? "aes-cbc-128" : "aes-cbc-256";
	case IKE_ENCR_AES_CTR: return b128 ? "aes-ctr-128" : "aes-ctr-256";
	case IKE_ENCR_AES_CCM_8: return b128 ? "aes-ccm8-128" : "aes-ccm8-256";
	case IKE_ENCR_AES_CCM_12: return b128 ? "aes-ccm12-128" : "aes-ccm12-256";
	case IKE_ENCR_AES_CCM_16: return b128 ? "aes-ccm16-128" : "aes-ccm16-256";
	case IKE_ENCR_NULL_AUTH_AES_GMAC: return b128 ? "aes-gmac-128" : "aes-gmac-256";
	case IKE_ENCR_3DES: return "3des-cbc";
	default: return NULL;
	}
}

static const char *integ_of(uint16_t integ)
{
	switch (integ) {
	case IKE_INTEG_NONE: return "none";
	case IKE_INTEG_HMAC_SHA1_96: return "hmac-sha1-96";
	case IKE_INTEG_AES_XCBC_96: return "aes-xcbc-96";
	case IKE_INTEG_HMAC_MD5_96: return "hmac-md5-96";
	case IKE_INTEG_HMAC_SHA2_256_128: return "hmac-sha256-128";
	case IKE_INTEG_HMAC_SHA2_384_192: return "hmac-sha384-192";
	case IKE_INTEG_HMAC_SHA2_512_256: return "hmac-sha512-256";
	case IKE_INTEG_AES_128_GMAC: return "aes-gmac-128";   /* AH only (RFC 4543 §5) */
	case IKE_INTEG_AES_256_GMAC: return "aes-gmac-256";
	default: return NULL;
	}
}

static json_t *hex(const uint8_t *k, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char buf[2 * 64 + 1];

	for (size_t i = 0; i < len && i < 64; i++) {
		buf[2 * i] = digits[k[i] >> 4];
		buf[2 * i + 1] = digits[k[i] & 15];
	}
	buf[2 * (len < 64 ? len : 64)] = '\0';
	json_t *s = json_string(buf);
	OPENSSL_cleanse(buf, sizeof buf);
	return s;
}

static json_t *limits(uint64_t bytes, uint64_t packets)
{
	return json_pack("{s:i, s:I, s:I}", "seconds", 0, "bytes", (json_int_t)bytes, "packets", (json_int_t)packets);
}

/* One direction as CTL_SA_ADD takes it; encap ports are the packet's: inbound arrives at our port. */
static json_t *sa_json(const struct ike_child_sa *sa, const char *policy, bool in)
{
	char l[64], r[64];
	const char *integ = integ_of(sa->integ);
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:{s:o, s:o}}", "spi",
	                      (json_int_t)(in ? sa->spi_in : sa->spi_out), "direction", in ? "in" : "out", "policy",
	                      policy, "peer", addr_text(&sa->remote, r, sizeof r), "local",
	                      addr_text(&sa->local, l, sizeof l), "encap", sa->encap ? "udp" : "none", "enc",
	                      enc_of(sa), "integ", integ ? integ : "none", "esn", sa->esn, "lifetime", "soft",
	                      limits(sa->lifetime_bytes / 10 * 9, sa->lifetime_packets / 10 * 9), "hard",
	                      limits(sa->lifetime_bytes, sa->lifetime_packets));

	if (!o)
		return NULL;
	json_object_set_new(o, "origin", json_string("ike"));
	if (sa->ah) {
		json_object_set_new(o, "protocol", json_string("ah"));
	} else {
		json_object_set_new(o, "enc_key", hex(in ? sa->key_in : sa->key_out, sa->encr_len));
	}
	if (sa->clone_family) {
		struct ike_addr h = { .family = sa->clone_family };

		memcpy(h.addr, sa->clone_host, 16);
		json_object_set_new(o, "clone_host", json_string(addr_text(&h, l, sizeof l)));
	}
	if (sa->integ_len)
		json_object_set_new(o, "integ_key", hex(in ? sa->integ_in : sa->integ_out, sa->integ_len));
	if (sa->encap) {
		json_object_set_new(o, "encap_sport", json_integer(in ? sa->remote.port : sa->local.port));
		json_object_set_new(o, "encap_dport", json_integer(in ? sa->local.port : sa->remote.port));
		if (!in && sa->nat_keepalive_s)
			json_object_set_new(o, "nat_keepalive", json_integer(sa->nat_keepalive_s));
	}
	if (sa->replay_window)
		json_object_set_new(o, "replay_window", json_integer(sa->replay_window));
	return o;
}

/*
 * Both directions in one request, inbound first: the peer may send as soon as
 * it has its own. With seq NULL it waits for the reply: 0 or -XE_*. Otherwise it
 * only sends (*seq names the reply, see on_add_reply): the wire serves its
 * socket in order, so the SA is in before the IKE response that follows.
 */
static int wire_add(struct bitwd *d, const struct ike_child_sa *sa, const char *policy, uint32_t *seq)
{
	json_t *in, *out, *req = NULL;
	int rc = -XE_NOMEM;

	if (!enc_of(sa) || !integ_of(sa->integ)) {
		mlog(WLOG_ERR, "ike: child SA 0x%08" PRIx32 ": algorithms %u/%u have no wire equivalent", sa->spi_in,
		     sa->encr, sa->integ);
		return -XE_BAD_PARAM;
	}
	/* A rekey's responder adds the outbound SA later (enum ike_install). */
	in = sa->install != IKE_INSTALL_OUT ? sa_json(sa, policy, true) : NULL;
	out = sa->install != IKE_INSTALL_IN ? sa_json(sa, policy, false) : NULL;
	if ((in || sa->install == IKE_INSTALL_OUT) && (out || sa->install == IKE_INSTALL_IN) && (in || out))
		req = in && out ? json_pack("{s:[O, O]}", "sas", in, out) : json_pack("{s:[O]}", "sas", in ? in : out);
	if (req)
		rc = seq ? wirelink_request_async(d->wl, CTL_SA_ADD, req, seq)
		         : wirelink_request(d->wl, CTL_SA_ADD, req, NULL, WIRE_TIMEOUT_MS);
	json_wipe_sa_keys(in);
	json_wipe_sa_keys(out);
	json_decref(in);
	json_decref(out);
	json_decref(req);
	return rc;
}

/* The protocol is named: a bundle's AH and ESP halves share their SPIs, and one goes without the other. */
static void wire_del(struct bitwd *d, uint32_t spi, const char *dir, bool ah)
{
	json_t *req = json_pack("{s:I, s:s, s:s}", "spi", (json_int_t)spi, "direction", dir, "protocol",
	                        ah ? "ah" : "esp");
	int rc = wirelink_request(d->wl, CTL_SA_DEL, req, NULL, WIRE_TIMEOUT_MS);

	if (rc < 0 && rc != -XE_SA_NOT_FOUND)
		mlog(WLOG_WARN, "ike: removing SA 0x%08" PRIx32 " %s from the wire: %s", spi, dir, xe_name(rc));
	json_decref(req);
}

/* ---- engine callbacks ---- */

static void cb_send(void *ctx, const struct ike_addr *src, const struct ike_addr *dst, const uint8_t *msg, size_t len)
{
	struct ike_driver *k = ctx;
	struct ctl_ike_dgram dg = { .family = src->family, .sport = src->port, .dport = dst->port };
	int rc;

	memcpy(dg.src, src->addr, 16);
	memcpy(dg.dst, dst->addr, 16);
	rc = wirelink_ike_send(k->d->wl, &dg, msg, len);
	if (rc < 0)
		mlog(WLOG_DEBUG, "ike: sending %zu bytes: %s", len, xe_name(rc));
}

/* SPIs come from the wire, which reserves them (a pool per wire process: wirelink_spi_alloc). */
static int cb_spi_alloc(void *ctx, uint32_t *spi)
{
	struct ike_driver *k = ctx;
	int rc = wirelink_spi_alloc(k->d->wl, spi);

	return rc == 0 ? 0 : rc == -XE_BAD_MESSAGE ? -IKE_E_BAD_PARAM : -IKE_E_LIMIT;
}

static int remember(struct ike_driver *k, const struct ike_child_sa *sa, const char *policy)
{
	if (k->ninst == k->capinst) {
		size_t cap = k->capinst ? k->capinst * 2 : 16;
		struct installed *n = calloc(cap, sizeof *n);

		if (!n)
			return -1;
		if (k->ninst)
			memcpy(n, k->inst, k->ninst * sizeof *n);
		OPENSSL_cleanse(k->inst, k->capinst * sizeof *k->inst);
		free(k->inst);
		k->inst = n;
		k->capinst = cap;
	}
	k->inst[k->ninst].sa = *sa;
	snprintf(k->inst[k->ninst].policy, sizeof k->inst[k->ninst].policy, "%s", policy);
	k->ninst++;
	return 0;
}

static void forget(struct ike_driver *k, uint32_t spi_in, bool ah)
{
	for (size_t i = 0; i < k->ninst; i++) {
		if (k->inst[i].sa.spi_in != spi_in || k->inst[i].sa.ah != ah)
			continue;
		k->inst[i] = k->inst[--k->ninst];
		OPENSSL_cleanse(&k->inst[k->ninst], sizeof k->inst[k->ninst]);
		return;
	}
}

/* The name of a policy the engine has (set by the last reload), or NULL. */
static const char *child_name(const struct ike_driver *k, uint32_t id)
{
	for (size_t i = 0; i < k->nchildren; i++)
		if (k->children[i] == id)
			return k->child_names[i];
	return NULL;
}

static int cb_child_install(void *ctx, const struct ike_child_sa *sa)
{
	struct ike_driver *k = ctx;
	const char *name = child_name(k, sa->child_id);
	int rc;

	if (!name) {
		mlog(WLOG_WARN, "ike: child SA for policy %" PRIu32 ", which is gone", sa->child_id);
		return -IKE_E_NOT_FOUND;
	}
	/* Not waiting for the wire (a wake-up of its thread and a snapshot publish) unless too many are in flight. */
	if (k->nadds < ADDS_MAX) {
		uint32_t seq = 0;

		rc = wire_add(k->d, sa, name, &seq);
		if (rc == 0) {
			k->adds[k->nadds].seq = seq;
			k->adds[k->nadds].ah = sa->ah;
			k->adds[k->nadds++].spi_in = sa->spi_in;
		} else if (rc == -XE_NOT_SUPPORTED) {   /* the link has as many replies outstanding as it keeps */
			rc = wire_add(k->d, sa, name, NULL);
		}
	} else {
		rc = wire_add(k->d, sa, name, NULL);
	}
	if (rc < 0) {
		mlog(WLOG_ERR, "ike: installing child SA 0x%08" PRIx32 "/0x%08" PRIx32 " for %s: %s", sa->spi_in,
		     sa->spi_out, name, xe_name(rc));
		return rc == -XE_BAD_PARAM ? -IKE_E_NOT_SUPPORTED : -IKE_E_LIMIT;
	}
	if (sa->install == IKE_INSTALL_OUT) {
		/* the outbound half of a pair remembered with its inbound one: a wire restart now adds both */
		for (size_t i = 0; i < k->ninst; i++)
			if (k->inst[i].sa.spi_in == sa->spi_in && k->inst[i].sa.ah == sa->ah)
				k->inst[i].sa.install = IKE_INSTALL_BOTH;
		return 0;
	}
	if (remember(k, sa, name) < 0)
		mlog(WLOG_WARN, "ike: out of memory: SA 0x%08" PRIx32 " will not survive a wire restart", sa->spi_in);
	return 0;
}

static void cb_child_delete(void *ctx, uint32_t spi_in, uint32_t spi_out, bool ah)
{
	struct ike_driver *k = ctx;

	forget(k, spi_in, ah);
	wire_del(k->d, spi_in, "in", ah);
	wire_del(k->d, spi_out, "out", ah);
}

static const char *event_name(uint8_t kind)
{
	switch (kind) {
	case IKE_EV_SA_UP: return "ike.sa.up";
	case IKE_EV_SA_DOWN: return "ike.sa.down";
	case IKE_EV_CHILD_UP: return "ike.child.up";
	case IKE_EV_CHILD_DOWN: return "ike.child.down";
	case IKE_EV_REKEYED: return "ike.rekeyed";
	case IKE_EV_DPD_DEAD: return "ike.dpd.dead";
	case IKE_EV_AUTH_FAILED: return "ike.auth.failed";
	case IKE_EV_NEGOTIATION_FAILED: return "ike.negotiation.failed";
	case IKE_EV_STATE: return "ike.sa.state";
	default: return NULL;
	}
}

static void keylog(struct ike_driver *k, const char *line)
{
	size_t n = strlen(line);

	if (k->keylog_fd < 0 || !n)
		return;
	if (write(k->keylog_fd, line, n) < 0 || (line[n - 1] != '\n' && write(k->keylog_fd, "\n", 1) < 0))
		mlog(WLOG_WARN, "ike: key log: %s", strerror(errno));
}

/* One line per event; policy and SPIs only for the events about a child (an IKE SA event has none). */
static void log_event(const struct ike_event *ev, const char *name)
{
	char child[80] = "";

	if (ev->child_id)
		snprintf(child, sizeof child, " policy %" PRIu32, ev->child_id);
	if (ev->spi_in || ev->spi_out)
		snprintf(child + strlen(child), sizeof child - strlen(child), " SPIs 0x%08" PRIx32 "/0x%08" PRIx32,
			 ev->spi_in, ev->spi_out);
	mlog(ev->kind == IKE_EV_AUTH_FAILED || ev->kind == IKE_EV_NEGOTIATION_FAILED ? WLOG_WARN : WLOG_INFO,
	     "ike: %s: IKE SA %" PRIu64 " peer %" PRIu32 "%s%s%s", name, ev->ike_sa_id, ev->peer_id, child,
	     ev->text ? ": " : "", ev->text ? ev->text : "");
}

static void cb_event(void *ctx, const struct ike_event *ev)
{
	struct ike_driver *k = ctx;
	const char *name = event_name(ev->kind);
	json_t *o;

	if (ev->kind == IKE_EV_KEYS) {
		if (ev->text)
			keylog(k, ev->text);
		return;
	}
	if (!name)
		return;
	o = json_pack("{s:I, s:I}", "ike_sa", (json_int_t)ev->ike_sa_id, "peer_id", (json_int_t)ev->peer_id);
	if (ev->child_id)
		json_object_set_new(o, "policy_id", json_integer(ev->child_id));
	if (ev->spi_in || ev->spi_out) {
		json_object_set_new(o, "spi_in", json_integer(ev->spi_in));
		json_object_set_new(o, "spi_out", json_integer(ev->spi_out));
	}
	if (ev->text)
		json_object_set_new(o, "text", json_string(ev->text));
	log_event(ev, name);
	events_publish(k->d, name, o);
}

static void cb_log(void *ctx, int level, const char *text)
{
	(void)ctx;
	mlog(level <= 3 ? WLOG_ERR : level == 4 ? WLOG_WARN : level <= 6 ? WLOG_INFO : WLOG_DEBUG, "ike: %s", text);
}

/* ---- loading the configuration ---- */

static bool has_id(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

int ike_driver_reload(struct bitwd *d)
{
	struct ike_driver *k = d->ike;
	struct db_peer *peers = NULL;
	struct db_policy *pol = NULL;
	int64_t npeer_total = 0, npol_total = 0;
	uint32_t *new_peers = NULL, *new_children = NULL;
	char (*new_names)[DB_NAME_LEN] = NULL;
	uint8_t *new_start = NULL, *valid = NULL;
	struct ike_peer_conf *confs = NULL;
	struct peer_secrets *secrets = NULL;
	size_t *nkids = NULL;
	int *host_of = NULL;          /* per peer: the transport policy whose host is its local address, or -1 */
	size_t nnp = 0, nnc = 0;
	int np = -1, npol = -1, rc = -1;
	uint64_t now = now_ms();
	bool legacy;

	if (!k)
		return 0;
	if (db_peer_count(d->db, &npeer_total) == 0)
		np = db_peer_list(d->db, 0, npeer_total, &peers);
	if (db_policy_count(d->db, &npol_total) == 0)
		npol = db_policy_list(d->db, 0, npol_total, &pol);
	if (np < 0 || npol < 0)
		goto out;
	new_peers = calloc((size_t)np + 1, sizeof *new_peers);
	new_start = calloc((size_t)np + 1, 1);
	new_children = calloc((size_t)npol + 1, sizeof *new_children);
	new_names = calloc((size_t)npol + 1, sizeof *new_names);
	if (!new_peers || !new_start || !new_children || !new_names)
		goto out;
	/* Peers are checked first; a policy is handed over only when its peer is good. */
	confs = calloc((size_t)np + 1, sizeof *confs);
	secrets = calloc((size_t)np + 1, sizeof *secrets);
	valid = calloc((size_t)np + 1, 1);
	nkids = calloc((size_t)np + 1, sizeof *nkids);
	host_of = calloc((size_t)np + 1, sizeof *host_of);
	if (!confs || !secrets || !valid || !nkids || !host_of)
		goto out;
	for (int i = 0; i < np; i++)
		host_of[i] = -1;
	for (int i = 0; i < np; i++)
		valid[i] = peer_conf(d, &peers[i], &confs[i], &secrets[i]) == 0;
	legacy = conf_legacy_algorithms(d);
	for (int i = 0; i < npol; i++) {
		struct ike_child_conf c;
		struct ike_addr host;
		int j = 0;

		if (pol[i].ike_peer_id <= 0 || strcmp(pol[i].action, "protect") != 0)
			continue;
		while (j < np && !(peers[j].id == pol[i].ike_peer_id && valid[j]))
			j++;
		if (j == np || child_conf(&pol[i], &peers[j], legacy, &c, &host) < 0)
			continue;
		/*
		 * The peer's IKE SA speaks from one address: a transport policy's
		 * host becomes it, so a second host on the same peer cannot be.
		 */
		if (host.family && (host.family != confs[j].local.family ||
		                    ((peers[j].local[0] || host_of[j] >= 0) && memcmp(host.addr, confs[j].local.addr, 16)))) {
			/* a configured local is the reason even when an earlier policy's host matched it */
			if (host_of[j] >= 0 && !peers[j].local[0])
				mlog(WLOG_WARN, "ike: transport policy %s: peer %s speaks IKE for policy %s's host already (one "
				     "host per peer); not keyed", pol[i].name, peers[j].name, pol[host_of[j]].name);
			else
				mlog(WLOG_WARN, "ike: transport policy %s: peer %s must have the host's address as local (or "
				     "none); not keyed", pol[i].name, peers[j].name);
			continue;
		}
		if (host.family && host_of[j] < 0) {
			confs[j].local = host;
			host_of[j] = i;
		}
		int e = ike_child_set(k->e, now, &c);
		if (e < 0) {
			mlog(WLOG_WARN, "ike: policy %s: %s", pol[i].name, ike_strerror(e));
		} else {
			snprintf(new_names[nnc], sizeof new_names[nnc], "%s", pol[i].name);
			new_children[nnc++] = c.id;
			nkids[j]++;
		}
	}
	/*
	 * Policies go in before their peers: a start-always peer initiates as it
	 * is set and offers its policies in IKE_AUTH. One without any keyed
	 * policy waits (an IKE SA with nothing to carry is pointless) until a
	 * policy names it, when this runs again.
	 */
	for (int i = 0; i < np; i++) {
		uint8_t start = confs[i].start;
		int e;

		if (!valid[i])
			continue;
		if (start == IKE_START_ALWAYS && !nkids[i])
			confs[i].start = IKE_START_TRAFFIC;
		e = ike_peer_set(k->e, now, &confs[i]);
		if (e < 0)
			mlog(WLOG_WARN, "ike: peer %s: %s", peers[i].name, ike_strerror(e));
		else
			new_start[nnp] = confs[i].start, new_peers[nnp++] = confs[i].id;
	}
	/* Gone from the database: children first, then their peers (which sends DELETEs). */
	for (size_t i = 0; i < k->nchildren; i++)
		if (!has_id(new_children, nnc, k->children[i]))
			(void)ike_child_del(k->e, now, k->children[i]);
	for (size_t i = 0; i < k->npeers; i++)
		if (!has_id(new_peers, nnp, k->peers[i]))
			(void)ike_peer_del(k->e, now, k->peers[i]);
	free(k->peers);
	free(k->children);
	free(k->child_names);
	free(k->peer_start);
	k->peers = new_peers, k->npeers = nnp, k->peer_start = new_start;
	k->children = new_children, k->nchildren = nnc, k->child_names = new_names;
	new_peers = new_children = NULL;
	new_names = NULL;
	new_start = NULL;
	rc = 0;
out:
	for (int i = 0; secrets && i < np; i++)
		secrets_free(&secrets[i]);
	if (confs)
		OPENSSL_cleanse(confs, (size_t)np * sizeof *confs);
	free(confs);
	free(secrets);
	free(valid);
	free(nkids);
	free(host_of);
	free(new_peers);
	free(new_start);
	free(new_children);
	free(new_names);
	free(peers);
	free(pol);
	if (rc < 0)
		mlog(WLOG_ERR, "ike: cannot load peers and policies: %s", db_errmsg(d->db));
	return rc;
}

int ike_driver_start(struct bitwd *d, char *err, size_t errlen)
{
	/* Below debug, the engine does not format its message trace at all: it cost more than the crypto. */
	struct ike_engine_conf conf = {
		.keyexport = d->opt.ike_keylog,
		.log_level = d->opt.log_level >= WLOG_DEBUG ? 7 : d->opt.log_level == WLOG_INFO ? 6 :
		             d->opt.log_level == WLOG_WARN ? 4 : 3,
	};
	struct ike_driver *k = calloc(1, sizeof *k);
	struct ike_callbacks cb = {
		.send = cb_send, .spi_alloc = cb_spi_alloc, .child_install = cb_child_install,
		.child_delete = cb_child_delete, .event = cb_event, .log = cb_log,
	};
	int rc;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	k->d = d;
	k->keylog_fd = -1;
	cb.ctx = k;
	if (d->opt.ike_keylog) {
		char path[4096], *slash;

		snprintf(path, sizeof path, "%s", d->opt.db_path);
		slash = strrchr(path, '/');
		snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "ike-keys.log");
		k->keylog_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (k->keylog_fd < 0 || fchmod(k->keylog_fd, 0600) < 0) {
			snprintf(err, errlen, "--ike-keylog: %s: %s", path, strerror(errno));
			if (k->keylog_fd >= 0)
				close(k->keylog_fd);
			free(k);
			return -1;
		}
		mlog(WLOG_WARN, "ike: writing IKE and ESP keys to %s (--ike-keylog): anyone reading it can decrypt", path);
	}
	rc = ike_engine_new(&conf, &cb, &k->e);
	if (rc < 0) {
		snprintf(err, errlen, "IKE engine: %s", ike_strerror(rc));
		if (k->keylog_fd >= 0)
			close(k->keylog_fd);
		free(k);
		return -1;
	}
	d->ike = k;
	ike_driver_reload(d);
	return 0;
}

void ike_driver_stop(struct bitwd *d)
{
	struct ike_driver *k = d->ike;

	if (!k)
		return;
	ike_engine_free(k->e);
	OPENSSL_cleanse(k->inst, k->capinst * sizeof *k->inst);
	free(k->inst);
	free(k->peers);
	free(k->children);
	free(k->child_names);
	free(k->peer_start);
	if (k->keylog_fd >= 0)
		close(k->keylog_fd);
	free(k);
	d->ike = NULL;
}

/* ---- inputs ---- */

void ike_driver_tick(struct bitwd *d)
{
	if (d->ike && ike_next_deadline(d->ike->e) <= now_ms())
		ike_tick(d->ike->e, now_ms());
}

int64_t ike_driver_timeout_ms(struct bitwd *d)
{
	uint64_t dl, now = now_ms();

	if (!d->ike || (dl = ike_next_deadline(d->ike->e)) == UINT64_MAX)
		return -1;
	return dl <= now ? 0 : (int64_t)(dl - now);
}

void ike_driver_recv(struct bitwd *d, const struct ctl_ike_dgram *dg, const uint8_t *data, size_t len)
{
	struct ike_addr src = { .family = dg->family, .port = dg->sport }, dst = { .family = dg->family,
	                                                                           .port = dg->dport };

	if (!d->ike || (dg->family != 4 && dg->family != 6))
		return;
	memcpy(src.addr, dg->src, 16);
	memcpy(dst.addr, dg->dst, 16);
	ike_input(d->ike->e, now_ms(), &src, &dst, data, len);
}

static void on_acquire(struct bitwd *d, json_t *p)
{
	json_int_t id = json_integer_value(json_object_get(p, "policy_id"));
	const char *host_text = json_string_value(json_object_get(p, "clone_host"));
	struct ike_addr src, dst, host;
	int rc;

	if (id <= 0 || !has_id(d->ike->children, d->ike->nchildren, (uint32_t)id))
		return;   /* not keyed by IKE: the event is all there is */
	if (addr_parse(json_string_value(json_object_get(p, "src")) ? json_string_value(json_object_get(p, "src")) : "",
	               &src, 0) < 0 ||
	    addr_parse(json_string_value(json_object_get(p, "dst")) ? json_string_value(json_object_get(p, "dst")) : "",
	               &dst, 0) < 0 || src.family != dst.family)
		return;
	if (host_text && (addr_parse(host_text, &host, 0) < 0 || host.family != src.family))
		return;
	rc = ike_acquire(d->ike->e, now_ms(), (uint32_t)id, src.addr, dst.addr, src.family, host_text ? host.addr : NULL);
	if (rc < 0 && rc != -IKE_E_BUSY)
		mlog(WLOG_WARN, "ike: acquire for policy %lld: %s", (long long)id, ike_strerror(rc));
}

static void on_expire(struct bitwd *d, json_t *p, bool hard)
{
	json_int_t spi = json_integer_value(json_object_get(p, "spi"));
	const char *dir = json_string_value(json_object_get(p, "direction"));
	const char *proto = json_string_value(json_object_get(p, "protocol"));
	bool ours = false, ah = proto && !strcmp(proto, "ah");

	/* The engine knows a child by its inbound SPI; an outbound expiry maps through our table. */
	for (size_t i = 0; i < d->ike->ninst && !ours; i++) {
		const struct ike_child_sa *sa = &d->ike->inst[i].sa;

		if (proto && sa->ah != ah)
			continue;   /* an event without a protocol (an older wire) matches either */
		if (dir && !strcmp(dir, "out") ? sa->spi_out == (uint32_t)spi : sa->spi_in == (uint32_t)spi) {
			spi = sa->spi_in;
			ah = sa->ah;
			ours = true;
		}
	}
	if (ours) {
		if (hard)
			forget(d->ike, (uint32_t)spi, ah);
		(void)ike_sa_expire(d->ike->e, now_ms(), (uint32_t)spi, hard);
	}
}

/*
 * The reply to an SA_ADD sent without waiting. A refusal (or no reply in
 * time, which wirelink turns into one) takes the child down
 * in the engine (its IKE SA sends the DELETE): the peer has it, bitw-wire does
 * not, and traffic for it would only raise ACQUIREs.
 */
static void on_add_reply(struct bitwd *d, json_t *p)
{
	struct ike_driver *k = d->ike;
	json_int_t seq = json_integer_value(json_object_get(p, "seq"));
	json_int_t status = json_integer_value(json_object_get(p, "status"));
	const char *why = json_string_value(json_object_get(p, "error"));
	uint32_t spi_in = 0;
	bool ah = false;

	for (size_t i = 0; i < k->nadds && !spi_in; i++) {
		if (k->adds[i].seq != (uint32_t)seq)
			continue;
		spi_in = k->adds[i].spi_in;
		ah = k->adds[i].ah;
		k->adds[i] = k->adds[--k->nadds];
	}
	if (!spi_in || status >= 0)
		return;
	mlog(WLOG_ERR, "ike: bitw-wire did not take child SA 0x%08" PRIx32 ": %s (%s); deleting it", spi_in,
	     xe_name((int)status), why ? why : "");
	forget(k, spi_in, ah);
	(void)ike_sa_expire(k->e, now_ms(), spi_in, true);
}

void ike_driver_wire_event(struct bitwd *d, uint16_t type, json_t *payload)
{
	if (!d->ike)
		return;
	if (type == CTL_SA_ADD)
		on_add_reply(d, payload);
	else if (type == CTL_EV_ACQUIRE)
		on_acquire(d, payload);
	else if (type == CTL_EV_SA_SOFT_EXPIRE || type == CTL_EV_SA_HARD_EXPIRE)
		on_expire(d, payload, type == CTL_EV_SA_HARD_EXPIRE);
}

static bool peer_initiates(const struct ike_driver *k, uint32_t peer_id)
{
	for (size_t i = 0; i < k->npeers; i++)
		if (k->peers[i] == peer_id)
			return k->peer_start[i] != IKE_START_NEVER;
	return false;
}

/*
 * After a (re)connect the wire has the stored configuration. SAs it still
 * holds (a reconnect to the same process) answer SA_EXISTS and stay. Those
 * it lost (it restarted) go back in, but their outbound sequence numbers
 * start again at 1, which the peer's replay window refuses: their IKE SA is
 * restarted (DELETE, then a fresh IKE_SA_INIT unless the peer only
 * responds). Start-always peers without any IKE SA come up again.
 */
/* The IKE SA a child belongs to now: an IKE SA rekey moved it from the one that installed it. */
static uint64_t ike_sa_of_child(const struct ike_child_sa *sa, const struct ike_sa_info *all, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < all[i].n_children && j < IKE_INFO_MAX_CHILDREN; j++)
			if (all[i].children[j].spi_in == sa->spi_in)
				return all[i].id;
	return sa->ike_sa_id;
}

void ike_driver_resync(struct bitwd *d)
{
	struct ike_driver *k = d->ike;
	uint64_t *restart;
	uint32_t *restart_peer;
	size_t nrestart = 0, m;
	struct ike_sa_info *all;

	if (!k)
		return;
	k->nadds = 0;  /* their replies are lost with the old link; what they added is checked below */
	restart = calloc(k->ninst + 1, sizeof *restart);
	restart_peer = calloc(k->ninst + 1, sizeof *restart_peer);
	m = ike_sa_list(k->e, NULL, 0);
	all = m ? calloc(m, sizeof *all) : NULL;
	m = all ? ike_sa_list(k->e, all, m) : 0;
	for (size_t i = 0; restart && restart_peer && i < k->ninst; i++) {
		const struct ike_child_sa *sa = &k->inst[i].sa;
		int rc = wire_add(d, sa, k->inst[i].policy, NULL);
		uint64_t ike_sa = ike_sa_of_child(sa, all, m);
		bool known = false;

		if (rc == -XE_SA_EXISTS)
			continue;
		if (rc < 0)
			mlog(WLOG_WARN, "ike: reinstalling SA 0x%08" PRIx32 ": %s", sa->spi_in, xe_name(rc));
		for (size_t j = 0; j < nrestart; j++)
			known |= restart[j] == ike_sa;
		if (!known)
			restart_peer[nrestart] = sa->peer_id, restart[nrestart++] = ike_sa;
	}
	free(all);
	for (size_t i = 0; i < nrestart; i++) {
		mlog(WLOG_INFO, "ike: bitw-wire restarted: restarting IKE SA %" PRIu64 " (its child SAs' sequence "
		     "numbers started again)", restart[i]);
		(void)ike_terminate(k->e, now_ms(), restart[i]);
		if (peer_initiates(k, restart_peer[i]))
			(void)ike_initiate(k->e, now_ms(), restart_peer[i]);
	}
	free(restart);
	free(restart_peer);
	m = ike_sa_list(k->e, NULL, 0);
	all = m ? calloc(m, sizeof *all) : NULL;
	m = all ? ike_sa_list(k->e, all, m) : 0;
	for (size_t i = 0; i < k->npeers; i++) {
		bool up = false;

		for (size_t j = 0; j < m; j++)
			up |= all[j].peer_id == k->peers[i];
		if (k->peer_start[i] == IKE_START_ALWAYS && !up)
			(void)ike_initiate(k->e, now_ms(), k->peers[i]);
	}
	free(all);
}

/* ---- operator commands and introspection ---- */

int ike_driver_initiate(struct bitwd *d, uint32_t peer_id)
{
	if (!d->ike)
		return -IKE_E_STATE;
	if (!has_id(d->ike->peers, d->ike->npeers, peer_id))
		return -IKE_E_NOT_FOUND;
	return ike_initiate(d->ike->e, now_ms(), peer_id);
}

int ike_driver_rekey(struct bitwd *d, uint64_t ike_sa_id, uint32_t spi_in)
{
	return d->ike ? ike_rekey(d->ike->e, now_ms(), ike_sa_id, spi_in) : -IKE_E_STATE;
}

int ike_driver_terminate(struct bitwd *d, uint64_t ike_sa_id)
{
	return d->ike ? ike_terminate(d->ike->e, now_ms(), ike_sa_id) : -IKE_E_STATE;
}

static json_t *spi_hex(const uint8_t spi[8])
{
	char b[17];

	for (int i = 0; i < 8; i++)
		snprintf(b + 2 * i, 3, "%02x", spi[i]);
	return json_string(b);
}

/* Engine times are our monotonic clock: shown as seconds from now (negative = past) or as an age. */
static json_t *in_s(uint64_t at, uint64_t now)
{
	if (!at)
		return json_null();
	return json_integer(at >= now ? (json_int_t)((at - now) / 1000) : -(json_int_t)((now - at) / 1000));
}

static json_t *age_s(uint64_t since, uint64_t now)
{
	return since && since <= now ? json_integer((json_int_t)((now - since) / 1000)) : json_null();
}

static json_t *sa_info_json(struct bitwd *d, const struct ike_sa_info *s, uint64_t now)
{
	char l[64], r[64];
	struct db_peer peer;
	json_t *kids = json_array();
	json_t *o;

	for (size_t i = 0; i < s->n_children && i < IKE_INFO_MAX_CHILDREN; i++) {
		const struct ike_child_info *c = &s->children[i];

		struct ike_addr host = { .family = c->clone_family };
		char h[64];

		memcpy(host.addr, c->clone_host, 16);
		json_array_append_new(kids, json_pack("{s:I, s:I, s:I, s:b, s:b, s:s, s:o, s:s, s:o, s:o, s:o}",
		                                      "policy_id", (json_int_t)c->child_id, "spi_in", (json_int_t)c->spi_in,
		                                      "spi_out", (json_int_t)c->spi_out, "encap", c->encap, "transport",
		                                      c->transport, "protocol", c->ah ? "ah" : "esp", "clone_host",
		                                      c->clone_family ? json_string(addr_text(&host, h, sizeof h)) :
		                                                        json_null(),
		                                      "algorithms", c->algs, "age", age_s(c->established_ms, now),
		                                      "rekey_in", in_s(c->rekey_at_ms, now), "expire_in",
		                                      in_s(c->expire_at_ms, now)));
	}
	o = json_pack("{s:I, s:I, s:s, s:s, s:b, s:b, s:b, s:s, s:i, s:s, s:i, s:o, s:o, s:s, s:o, s:o, s:o, s:o}",
	              "id", (json_int_t)s->id, "peer_id", (json_int_t)s->peer_id, "peer", "", "state",
	              s->state_name ? s->state_name : ike_sa_state_name(s->state), "initiator", s->initiator,
	              "nat_local", s->nat_local, "nat_remote", s->nat_remote, "local", addr_text(&s->local, l, sizeof l),
	              "local_port", s->local.port, "remote", addr_text(&s->remote, r, sizeof r), "remote_port",
	              s->remote.port, "spi_i", spi_hex(s->spi_i), "spi_r", spi_hex(s->spi_r), "algorithms", s->algs,
	              "age", age_s(s->established_ms, now), "rekey_in", in_s(s->rekey_at_ms, now), "expire_in",
	              in_s(s->expire_at_ms, now), "child_sas", kids);
	if (o) {
		json_object_set_new(o, "local_id", json_string(s->local_id));
		json_object_set_new(o, "remote_id", json_string(s->remote_id));
	}
	if (o && db_peer_get(d->db, s->peer_id, &peer) == 0)
		json_object_set_new(o, "peer", json_string(peer.name));
	return o;
}

json_t *ike_driver_sa_list(struct bitwd *d)
{
	json_t *arr = json_array();
	struct ike_sa_info *all;
	size_t n;
	uint64_t now = now_ms();

	if (!d->ike || !arr)
		return arr;
	n = ike_sa_list(d->ike->e, NULL, 0);
	all = n ? calloc(n, sizeof *all) : NULL;
	n = all ? ike_sa_list(d->ike->e, all, n) : 0;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, sa_info_json(d, &all[i], now));
	free(all);
	return arr;
}
