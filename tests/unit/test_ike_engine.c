/* test_ike_engine.c: the IKEv2 engine: proposal strings, then two engines talking in memory through every exchange. */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "ike/engine.h"   /* inside the engine: its SA index, its out hook (a misbehaving peer) */
#include "ike/ike.h"
#include "ike/msg.h"
#include "ike/sa.h"    /* ike_sa_find_id: which of two colliding rekeys the nonces make redundant */

static void test_proposals(void)
{
	struct ike_proposal_conf p[8];
	char err[128], text[128];
	int n;

	n = ike_proposals_parse("aes256gcm16-prfsha384-curve25519, aes256-sha256-modp3072", false, false, p, 8, err,
		sizeof err);
	CHECK_EQ(n, 2, "two IKE proposals (%s)", err);
	CHECK(p[0].n_encr == 1 && p[0].encr[0].id == IKE_ENCR_AES_GCM_16 && p[0].encr[0].key_bits == 256 &&
	      p[0].n_integ == 0 && p[0].n_prf == 1 && p[0].prf[0] == IKE_PRF_HMAC_SHA2_384 &&
	      p[0].n_dh == 1 && p[0].dh[0] == IKE_DH_CURVE25519, "GCM-256, PRF SHA-384, Curve25519");
	CHECK(p[1].encr[0].id == IKE_ENCR_AES_CBC && p[1].integ[0] == IKE_INTEG_HMAC_SHA2_256_128 &&
	      p[1].n_prf == 1 && p[1].prf[0] == IKE_PRF_HMAC_SHA2_256 && p[1].dh[0] == IKE_DH_MODP3072,
	      "CBC-256, SHA-256 as integrity and PRF, MODP 3072");
	ike_proposal_format(&p[1], false, text, sizeof text);
	CHECK(strcmp(text, "aes256-sha256-prfsha256-modp3072") == 0, "formatted back: %s", text);
	n = ike_proposals_parse("aes256gcm16-curve25519", true, false, p, 8, err, sizeof err);
	CHECK(n == 1 && p[0].n_dh == 1 && p[0].n_esn == 1 && p[0].esn[0] == 0, "ESP proposal with PFS, no ESN");
	n = ike_proposals_parse("chacha20poly1305-esn", true, false, p, 8, err, sizeof err);
	CHECK(n == 1 && p[0].encr[0].id == IKE_ENCR_CHACHA20_POLY1305 && p[0].esn[0] == 1, "ChaCha20-Poly1305 with ESN");
	ike_proposal_format(&p[0], true, text, sizeof text);
	CHECK(strcmp(text, "chacha20poly1305-esn") == 0, "formatted back: %s", text);
	n = ike_proposals_parse("aes256-sha256-modp3072,aes999-sha256", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "'aes999'") && strstr(err, "proposal 2"), "bad token named: %s", err);
	n = ike_proposals_parse("aes256-sha256-modp1024", false, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "legacy"), "legacy group refused: %s", err);
	CHECK_EQ(ike_proposals_parse("aes256-sha256-modp1024", false, true, p, 8, err, sizeof err), 1,
		"legacy group when enabled");
	n = ike_proposals_parse("aes256gcm16-curve25519", false, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "PRF"), "AEAD IKE proposal needs a PRF: %s", err);
	n = ike_proposals_parse("aes256gcm16-sha256-prfsha256-x25519", false, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "AEAD"), "AEAD with integrity refused: %s", err);
	n = ike_proposals_parse("aes256-prfsha256-curve25519", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "prfsha256"), "PRF in an ESP proposal refused: %s", err);
	CHECK_EQ(ike_proposals_parse("", false, false, p, 8, err, sizeof err), -IKE_E_BAD_PARAM, "empty refused");

	n = ike_proposals_parse("aes128ctr-aesxcbc,aes256ccm8,aes128ccm16-esn,aes256gmac", true, false, p, 8, err,
		sizeof err);
	CHECK(n == 4 && p[0].encr[0].id == IKE_ENCR_AES_CTR && p[0].encr[0].key_bits == 128 &&
	      p[0].integ[0] == IKE_INTEG_AES_XCBC_96 && p[1].encr[0].id == IKE_ENCR_AES_CCM_8 &&
	      p[1].encr[0].key_bits == 256 && p[1].n_integ == 0 && p[2].encr[0].id == IKE_ENCR_AES_CCM_16 &&
	      p[3].encr[0].id == IKE_ENCR_NULL_AUTH_AES_GMAC && p[3].n_integ == 0,
	      "ESP: AES-CTR + AES-XCBC, CCM-8/16, GMAC (%s)", err);
	ike_proposal_format(&p[0], true, text, sizeof text);
	CHECK(strcmp(text, "aes128ctr-aesxcbc") == 0, "formatted back: %s", text);
	n = ike_proposals_parse("aes256ccm128,aes128ccm96,aes128ccm64,aes128ccm", true, false, p, 8, err, sizeof err);
	CHECK(n == 4 && p[0].encr[0].id == IKE_ENCR_AES_CCM_16 && p[1].encr[0].id == IKE_ENCR_AES_CCM_12 &&
	      p[2].encr[0].id == IKE_ENCR_AES_CCM_8 && p[3].encr[0].id == IKE_ENCR_AES_CCM_16,
	      "strongSwan's CCM aliases (ICV bits; plain ccm = 16 bytes)");
	n = ike_proposals_parse("aes128ctr", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "integrity"), "CTR needs an integrity algorithm: %s", err);
	n = ike_proposals_parse("aes128gmac-sha256", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM, "GMAC takes no integrity algorithm: %s", err);
	n = ike_proposals_parse("3des-sha1", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "'3des'") && strstr(err, "legacy"), "3DES refused without legacy: %s",
	      err);
	n = ike_proposals_parse("aes128-md5", true, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "'md5'") && strstr(err, "legacy"), "MD5 refused without legacy: %s",
	      err);
	n = ike_proposals_parse("3des-md5", true, true, p, 8, err, sizeof err);
	CHECK(n == 1 && p[0].encr[0].id == IKE_ENCR_3DES && p[0].integ[0] == IKE_INTEG_HMAC_MD5_96,
	      "3DES + HMAC-MD5-96 with legacy (%s)", err);
	ike_proposal_format(&p[0], true, text, sizeof text);
	CHECK(strcmp(text, "3des-md5") == 0, "formatted back: %s", text);
	n = ike_proposals_parse("aes128ctr-sha256-prfsha256-curve25519", false, false, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "aes128ctr"), "CTR is for child SAs only: %s", err);
	n = ike_proposals_parse("aes256-aesxcbc-prfsha256-curve25519", false, true, p, 8, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "aesxcbc"), "XCBC is for child SAs only: %s", err);
}


/* ---- two engines in memory ---- */

#define MAX_Q 64
#define MAX_CHILD 16

struct dgram {
	struct ike_addr src, dst;
	uint8_t data[4096];
	size_t len;
};

struct side {
	const char *name;
	struct ike_engine *e;
	uint8_t addr[4];
	struct ike_child_sa child[MAX_CHILD];
	size_t n_child, installs, deletes, out_installs;
	uint32_t next_spi;
	int ev[16];                         /* counts per IKE_EV_* */
	char last_text[128];
	uint64_t dead_ms;                   /* when IKE_EV_DPD_DEAD came */
	uint64_t rnd;
	size_t sent_no_proposal;            /* messages sent with a NO_PROPOSAL_CHOSEN notify (from the decoded trace) */
};

static struct dgram q[MAX_Q];
static size_t q_len;
static size_t sent_total;
static struct side A, B, C;                 /* C: a second initiator, only where a test makes it */
static uint64_t now;

static void cb_send(void *ctx, const struct ike_addr *src, const struct ike_addr *dst, const uint8_t *msg, size_t len)
{
	(void)ctx;
	sent_total++;
	if (q_len == MAX_Q || len > sizeof q[0].data)
		return;
	q[q_len].src = *src;
	q[q_len].dst = *dst;
	memcpy(q[q_len].data, msg, len);
	q[q_len++].len = len;
}

static int cb_spi(void *ctx, uint32_t *spi)
{
	struct side *s = ctx;

	*spi = s->next_spi++;
	return 0;
}

static int cb_install(void *ctx, const struct ike_child_sa *sa)
{
	struct side *s = ctx;

	if (sa->install == IKE_INSTALL_OUT) {  /* the outbound half of a pair already installed inbound */
		s->out_installs++;
		for (size_t i = 0; i < s->n_child; i++)
			if (s->child[i].spi_in == sa->spi_in && s->child[i].install == IKE_INSTALL_IN)
				s->child[i].install = IKE_INSTALL_BOTH;
		return 0;
	}
	s->installs++;
	if (s->n_child == MAX_CHILD)
		return -1;
	s->child[s->n_child++] = *sa;
	return 0;
}

static void cb_delete(void *ctx, uint32_t spi_in, uint32_t spi_out, bool ah)
{
	struct side *s = ctx;

	s->deletes++;
	for (size_t i = 0; i < s->n_child; i++) {
		if (s->child[i].spi_in == spi_in && s->child[i].spi_out == spi_out && s->child[i].ah == ah) {
			s->child[i] = s->child[--s->n_child];
			return;
		}
	}
}

static void cb_event(void *ctx, const struct ike_event *ev)
{
	struct side *s = ctx;

	if (ev->kind < 16)
		s->ev[ev->kind]++;
	if (ev->kind == IKE_EV_DPD_DEAD)
		s->dead_ms = now;
	snprintf(s->last_text, sizeof s->last_text, "%s", ev->text);
}

/* Deterministic randomness per side (xorshift), so runs repeat. */
static void cb_random(void *ctx, uint8_t *buf, size_t len)
{
	struct side *s = ctx;

	for (size_t i = 0; i < len; i++) {
		s->rnd ^= s->rnd << 13;
		s->rnd ^= s->rnd >> 7;
		s->rnd ^= s->rnd << 17;
		buf[i] = (uint8_t)s->rnd;
	}
}

static int verbose;

static void cb_log(void *ctx, int level, const char *text)
{
	struct side *s = ctx;

	if (level == 7 && !strncmp(text, "send", 4) && strstr(text, "N NO_PROPOSAL_CHOSEN (14)"))
		s->sent_no_proposal++;
	if (verbose || level <= 3)
		printf("# [%s] %d %s\n", s->name, level, text);
}

static struct ike_addr addr_of(const struct side *s, uint16_t port)
{
	struct ike_addr a = { .family = 4, .port = port };

	memcpy(a.addr, s->addr, 4);
	return a;
}

static struct ike_ts_conf ts4(const char *lo, const char *hi)
{
	struct ike_ts_conf t = { .family = 4, .port_hi = 65535 };
	unsigned a, b, c, d;

	sscanf(lo, "%u.%u.%u.%u", &a, &b, &c, &d);
	t.lo[0] = (uint8_t)a, t.lo[1] = (uint8_t)b, t.lo[2] = (uint8_t)c, t.lo[3] = (uint8_t)d;
	sscanf(hi, "%u.%u.%u.%u", &a, &b, &c, &d);
	t.hi[0] = (uint8_t)a, t.hi[1] = (uint8_t)b, t.hi[2] = (uint8_t)c, t.hi[3] = (uint8_t)d;
	return t;
}

struct setup {
	const char *psk_a, *psk_b;
	const char *ike_a, *ike_b, *esp_a, *esp_b;
	struct ike_ts_conf b_local, b_remote; /* B's policy; A's is 192.0.2.0/24 <-> 203.0.113.0/24 */
	bool force_encap, transport_a, transport_b;
	uint32_t dpd_s, dpd_timeout_s;
	bool no_nat_t;                      /* both peers: NAT traversal off */
	uint16_t nat_keepalive_s;           /* both peers */
	uint8_t dpd_action;
	uint32_t cookie_threshold;
	uint8_t start_a;                  /* A's peer: enum ike_start */
	const char *cert_a, *key_a, *cert_b, *key_b, *ca; /* certificate authentication when set */
	const char *id_a, *id_b;            /* local identities */
	const char *expect_b;               /* A's remote_id */
	bool frag;                          /* RFC 7383 on both */
	bool default_retransmit;            /* the engine's own schedule instead of the quick one below */
	bool legacy_a, legacy_b;            /* ESP proposals parsed with legacy algorithms allowed */
	bool ah_a, ah_b;                    /* AH children: esp_* are AH proposals */
	uint8_t type_a, type_b;             /* enum ike_sa_type (AHESP: esp_* for ESP, default AH) */
	uint8_t clone_a, clone_b;           /* enum ike_clone */
	struct ike_ts_conf a_local;         /* A's local selector instead of 192.0.2.0/24 */
};

static void side_init(struct side *s, const char *name, uint8_t last, uint32_t spi_base, const struct setup *st)
{
	struct ike_callbacks cb = { .ctx = s, .send = cb_send, .spi_alloc = cb_spi, .child_install = cb_install,
		.child_delete = cb_delete, .event = cb_event, .random = cb_random, .log = cb_log };
	struct ike_engine_conf conf = { .retransmit_base_ms = st->default_retransmit ? 0 : 500,
		.retransmit_tries = st->default_retransmit ? 0 : 3,
		.half_open_cookie_threshold = st->cookie_threshold };

	memset(s, 0, sizeof *s);
	s->name = name;
	s->addr[0] = 198, s->addr[1] = 51, s->addr[2] = 100, s->addr[3] = last;
	s->next_spi = spi_base;
	s->rnd = 0x9e3779b97f4a7c15ull ^ last;
	CHECK_EQ(ike_engine_new(&conf, &cb, &s->e), 0, "%s: engine created", name);
}

static void peer_conf(struct side *s, struct side *other, const char *psk, const char *ike, const struct setup *st)
{
	struct ike_peer_conf p = { .id = 7, .auth = IKE_AUTH_PSK, .psk = (const uint8_t *)psk, .psk_len = strlen(psk),
		.force_encap = st->force_encap, .dpd_interval_s = st->dpd_s, .dpd_action = st->dpd_action,
		.dpd_timeout_s = st->dpd_timeout_s, .no_nat_t = st->no_nat_t, .nat_keepalive_s = st->nat_keepalive_s };
	char err[128];

	snprintf(p.name, sizeof p.name, "to-%s", other->name);
	if (s == &A)
		p.start = st->start_a;
	p.fragmentation = st->frag;
	if (st->ca) {
		p.auth = IKE_AUTH_PUBKEY;
		p.cert_pem = s == &A ? st->cert_a : st->cert_b;
		p.key_pem = s == &A ? st->key_a : st->key_b;
		p.ca_pem = st->ca;
	}
	if ((s == &A ? st->id_a : st->id_b))
		snprintf(p.local_id, sizeof p.local_id, "%s", s == &A ? st->id_a : st->id_b);
	if (s == &A && st->expect_b)
		snprintf(p.remote_id, sizeof p.remote_id, "%s", st->expect_b);
	p.local = addr_of(s, 500);
	p.remote = addr_of(other, 500);
	if (ike) {
		int n = ike_proposals_parse(ike, false, false, p.ike, 8, err, sizeof err);

		p.n_ike = n > 0 ? (size_t)n : 0;
	}
	CHECK_EQ(ike_peer_set(s->e, now, &p), 0, "%s: peer set", s->name);
}

static bool policy_ah;                  /* the next policy_conf sets AH children */
static uint8_t policy_type, policy_clone; /* ... or this enum ike_sa_type (AH+ESP: esp is ESP, AH defaults); clone */

static void policy_conf(struct side *s, struct ike_ts_conf local, struct ike_ts_conf remote, const char *esp,
	bool transport, bool legacy)
{
	struct ike_child_conf c = { .id = 70, .peer_id = 7, .n_local_ts = 1, .n_remote_ts = 1, .transport = transport,
		.lifetime_s = 3600, .rekey_margin_s = 300, .sa_type = policy_ah ? IKE_SA_TYPE_AH : IKE_SA_TYPE_ESP };
	char err[128];

	c.local_ts[0] = local;
	c.remote_ts[0] = remote;
	if (policy_type)
		c.sa_type = policy_type;
	c.clone = policy_clone;
	if (esp) {
		int n = policy_ah ? ike_ah_proposals_parse(esp, legacy, c.ah, 8, err, sizeof err) :
			ike_proposals_parse(esp, true, legacy, c.esp, 8, err, sizeof err);

		CHECK(n > 0, "%s: %s proposals '%s' (%s)", s->name, policy_ah ? "AH" : "ESP", esp, err);
		*(policy_ah ? &c.n_ah : &c.n_esp) = n > 0 ? (size_t)n : 0;
	}
	CHECK_EQ(ike_child_set(s->e, now, &c), 0, "%s: policy set", s->name);
}

static void setup(const struct setup *st)
{
	struct ike_ts_conf net_a = ts4("192.0.2.0", "192.0.2.255"), net_b = ts4("203.0.113.0", "203.0.113.255");

	now = 1000000;
	q_len = 0;
	side_init(&A, "A", 1, 0xa0000001, st);
	side_init(&B, "B", 2, 0xb0000001, st);
	peer_conf(&A, &B, st->psk_a ? st->psk_a : "correct horse", st->ike_a, st);
	peer_conf(&B, &A, st->psk_b ? st->psk_b : "correct horse", st->ike_b, st);
	policy_ah = st->ah_a;
	policy_type = st->type_a, policy_clone = st->clone_a;
	policy_conf(&A, st->a_local.family ? st->a_local : net_a, net_b, st->esp_a, st->transport_a, st->legacy_a);
	policy_ah = st->ah_b;
	policy_type = st->type_b, policy_clone = st->clone_b;
	policy_conf(&B, st->b_local.family ? st->b_local : net_b, st->b_remote.family ? st->b_remote : net_a, st->esp_b,
		st->transport_b, st->legacy_b);
	policy_ah = false;
	policy_type = policy_clone = 0;
}

static void teardown(void)
{
	ike_engine_free(A.e);
	ike_engine_free(B.e);
	A.e = B.e = NULL;
}

static struct side *side_at(const struct ike_addr *a)
{
	return !memcmp(a->addr, A.addr, 4) ? &A : !memcmp(a->addr, B.addr, 4) ? &B :
	       C.e && !memcmp(a->addr, C.addr, 4) ? &C : NULL;
}

/* Delivers queued datagrams (and what they cause) until quiet. drop(i) drops the i-th delivery, dup duplicates. */
static size_t deliveries;
static bool (*drop_fn)(size_t n, const struct dgram *d);
static bool (*dup_fn)(size_t n, const struct dgram *d);

static void pump(void)
{
	static struct dgram d;

	while (q_len) {
		struct side *to;

		d = q[0];
		memmove(q, q + 1, --q_len * sizeof q[0]);
		to = side_at(&d.dst);
		deliveries++;
		if (!to || (drop_fn && drop_fn(deliveries, &d)))
			continue;
		ike_input(to->e, now, &d.src, &d.dst, d.data, d.len);
		if (dup_fn && dup_fn(deliveries, &d))
			ike_input(to->e, now, &d.src, &d.dst, d.data, d.len);
	}
}

/* Advances the clock to the engines' next deadline (bounded), ticking and pumping. */
static void run_until(uint64_t until)
{
	pump();
	while (now < until) {
		uint64_t da = ike_next_deadline(A.e), db = ike_next_deadline(B.e), d = da < db ? da : db;

		if (C.e && ike_next_deadline(C.e) < d)
			d = ike_next_deadline(C.e);
		if (d > until)
			d = until;
		if (d > now)
			now = d;
		ike_tick(A.e, now);
		ike_tick(B.e, now);
		if (C.e)
			ike_tick(C.e, now);
		pump();
		if (d == until)
			break;
	}
}

static size_t sa_count(struct side *s, uint8_t state)
{
	struct ike_sa_info info[4];
	size_t n = ike_sa_list(s->e, info, 4), k = 0;

	for (size_t i = 0; i < n && i < 4; i++)
		k += info[i].state == state;
	return k;
}

static bool children_pair(void)
{
	if (A.n_child != 1 || B.n_child != 1)
		return false;
	return A.child[0].spi_in == B.child[0].spi_out && A.child[0].spi_out == B.child[0].spi_in &&
	       !memcmp(A.child[0].key_out, B.child[0].key_in, A.child[0].encr_len) &&
	       !memcmp(A.child[0].key_in, B.child[0].key_out, A.child[0].encr_len) &&
	       A.child[0].encr_len == B.child[0].encr_len && A.child[0].encr_len > 0 &&
	       !memcmp(A.child[0].integ_out, B.child[0].integ_in, A.child[0].integ_len);
}

static void test_basic(void)
{
	setup(&(struct setup){ 0 });
	CHECK_EQ(ike_initiate(A.e, now, 7), 0, "A initiates");
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&B, IKE_SA_ESTABLISHED) == 1, "IKE SA up on both");
	CHECK(A.ev[IKE_EV_SA_UP] == 1 && B.ev[IKE_EV_SA_UP] == 1 && A.ev[IKE_EV_CHILD_UP] == 1 &&
	      B.ev[IKE_EV_CHILD_UP] == 1, "SA_UP and CHILD_UP events on both");
	CHECK(children_pair(), "one child SA each, SPIs and keys mirror each other");
	CHECK(A.child[0].encr == IKE_ENCR_AES_GCM_16 && A.child[0].key_bits == 256 && A.child[0].encr_len == 36,
	      "default ESP proposal: AES-GCM-256 (key + salt)");
	CHECK(!A.child[0].encap && A.child[0].remote.port == 500, "no NAT: plain ESP");
	CHECK(A.child[0].n_local_ts == 1 && A.child[0].local_ts[0].lo[0] == 192 && A.child[0].remote_ts[0].lo[0] == 203 &&
	      B.child[0].local_ts[0].lo[0] == 203, "selectors as configured, mirrored");
	CHECK_EQ(ike_terminate(A.e, now, 1), 0, "A terminates");
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 0 && sa_count(&B, IKE_SA_ESTABLISHED) == 0 &&
	      ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0, "DELETE: no IKE SA left on either side");
	CHECK(A.n_child == 0 && B.n_child == 0 && A.ev[IKE_EV_SA_DOWN] == 1 && B.ev[IKE_EV_SA_DOWN] == 1,
	      "children deleted through the callback, SA_DOWN on both");
	teardown();
}

/* A peer that starts at start-up is configured before the policy naming it, and bitwd's REST lets time pass in
 * between: nothing starts without a policy, and the policy brings the SA up with its child in IKE_AUTH (before,
 * the IKE SA came up at once without a child and the policy never got one). */
static void test_start_always(void)
{
	struct setup st = { .start_a = IKE_START_ALWAYS };
	struct ike_ts_conf net_a = ts4("192.0.2.0", "192.0.2.255"), net_b = ts4("203.0.113.0", "203.0.113.255");

	now = 1000000;
	q_len = 0;
	side_init(&A, "A", 1, 0xa0000001, &st);
	side_init(&B, "B", 2, 0xb0000001, &st);
	peer_conf(&B, &A, "correct horse", NULL, &st);
	policy_conf(&B, net_b, net_a, NULL, false, false);
	peer_conf(&A, &B, "correct horse", NULL, &st);
	run_until(now + 1000);
	CHECK(ike_sa_list(A.e, NULL, 0) == 0 && q_len == 0, "start ALWAYS without a policy: nothing starts yet");
	policy_conf(&A, net_a, net_b, NULL, false, false);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&B, IKE_SA_ESTABLISHED) == 1,
	      "start ALWAYS: the policy brought the IKE SA up without ike_initiate");
	CHECK(A.ev[IKE_EV_CHILD_UP] == 1 && B.ev[IKE_EV_CHILD_UP] == 1 && children_pair(),
	      "start ALWAYS: its child SA came up with it");
	teardown();
}

static bool drop_first(size_t n, const struct dgram *d)
{
	(void)d;
	return n == 1;
}

/* The 4th delivery is B's IKE_AUTH response. */
static bool drop_fourth(size_t n, const struct dgram *d)
{
	(void)d;
	return n == 4;
}

static bool dup_all(size_t n, const struct dgram *d)
{
	(void)n;
	(void)d;
	return true;
}

static bool drop_all(size_t n, const struct dgram *d)
{
	(void)n;
	(void)d;
	return true;
}

static void test_lost_and_duplicated(void)
{
	size_t sent;

	setup(&(struct setup){ 0 });
	deliveries = 0;
	drop_fn = drop_first;
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_CONNECTING) == 1 && ike_sa_list(B.e, NULL, 0) == 0, "IKE_SA_INIT lost: A waits");
	run_until(now + 600);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && children_pair(), "retransmitted after 500 ms: up");
	teardown();

	setup(&(struct setup){ 0 });
	deliveries = 0;
	drop_fn = drop_fourth;
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&B, IKE_SA_ESTABLISHED) == 1 && sa_count(&A, IKE_SA_AUTHENTICATING) == 1,
	      "IKE_AUTH response lost: B is up, A waits");
	run_until(now + 600);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && children_pair() && B.installs == 1,
	      "A retransmits, B answers from its cache without installing a second child");
	teardown();

	setup(&(struct setup){ 0 });
	drop_fn = NULL;
	dup_fn = dup_all;
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&B, IKE_SA_ESTABLISHED) == 1 && children_pair() &&
	      A.installs == 1 && B.installs == 1 && ike_sa_list(B.e, NULL, 0) == 1,
	      "every message twice: one IKE SA and one child each");
	dup_fn = NULL;
	teardown();

	/* A silent peer: retransmissions back off (500, 1000, 2000 ms) then give up. */
	setup(&(struct setup){ 0 });
	drop_fn = drop_all;
	sent_total = 0;
	ike_initiate(A.e, now, 7);
	run_until(now + 3400);
	sent = sent_total;
	CHECK_EQ(sent, 3, "three sends in 3.4 s (the first, +500 ms, +1000 ms)");
	run_until(now + 30000);
	CHECK(sent_total == 4 && ike_sa_list(A.e, NULL, 0) == 0 && A.ev[IKE_EV_NEGOTIATION_FAILED] == 1,
	      "gave up after 3 retransmissions: SA gone, NEGOTIATION_FAILED");
	drop_fn = NULL;
	teardown();
}

static void test_failures(void)
{
	setup(&(struct setup){ .psk_b = "wrong horse" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(A.ev[IKE_EV_AUTH_FAILED] == 1 && B.ev[IKE_EV_AUTH_FAILED] == 1, "wrong PSK: AUTH_FAILED on both sides");
	CHECK(ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0 && A.installs == 0 && B.installs == 0,
	      "no SA, no child left");
	teardown();

	setup(&(struct setup){ .ike_a = "aes128-sha256-modp2048", .ike_b = "aes256gcm16-prfsha256-curve25519" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(A.ev[IKE_EV_NEGOTIATION_FAILED] == 1 && strstr(A.last_text, "NO_PROPOSAL_CHOSEN") &&
	      ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0, "IKE: NO_PROPOSAL_CHOSEN (%s)",
	      A.last_text);
	teardown();

	setup(&(struct setup){ .esp_a = "aes128-sha1", .esp_b = "aes256gcm16" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.installs == 0 &&
	      A.ev[IKE_EV_NEGOTIATION_FAILED] == 1 && strstr(A.last_text, "proposal"),
	      "ESP: IKE SA up, child refused with NO_PROPOSAL_CHOSEN (%s)", A.last_text);
	teardown();

	setup(&(struct setup){ .b_local = ts4("10.0.0.0", "10.0.0.255") });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.installs == 0 &&
	      strstr(A.last_text, "selectors"), "disjoint selectors: TS_UNACCEPTABLE (%s)", A.last_text);
	teardown();
}

static void test_negotiation(void)
{
	setup(&(struct setup){ .b_local = ts4("203.0.113.16", "203.0.113.31") });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && A.child[0].remote_ts[0].lo[3] == 16 && A.child[0].remote_ts[0].hi[3] == 31 &&
	      A.child[0].local_ts[0].hi[3] == 255, "B narrows TSr to 203.0.113.16/28, A accepts it");
	teardown();

	setup(&(struct setup){ .ike_a = "aes256gcm16-prfsha256-curve25519-ecp256",
		.ike_b = "aes256gcm16-prfsha256-ecp256" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && children_pair(), "INVALID_KE_PAYLOAD: A retries with ECP-256");
	teardown();

	setup(&(struct setup){ .ike_a = "aes256-sha256-modp3072", .esp_a = "aes256gcm16,aes256-sha256",
		.esp_b = "aes256-sha256,aes256gcm16" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && A.child[0].encr == IKE_ENCR_AES_CBC && A.child[0].integ == IKE_INTEG_HMAC_SHA2_256_128 &&
	      A.child[0].integ_len == 32 && A.child[0].encr_len == 32, "CBC+SHA-256: B, the responder, takes its own first choice");
	teardown();

	setup(&(struct setup){ .force_encap = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && A.child[0].encap && B.child[0].encap && A.child[0].remote.port == 4500 &&
	      B.child[0].remote.port == 4500, "force_encap: IKE_AUTH on 4500, children ESP-in-UDP");
	teardown();

	setup(&(struct setup){ .transport_a = true, .transport_b = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && A.child[0].transport && B.child[0].transport, "USE_TRANSPORT_MODE agreed");
	teardown();

	setup(&(struct setup){ .transport_a = false, .transport_b = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && !A.child[0].transport && !B.child[0].transport, "tunnel requested: tunnel mode");
	teardown();
}

/* One child negotiated with these ESP proposals on both sides: algorithms and KEYMAT lengths as the RFCs say. */
static void child_algs(const char *esp_a, const char *esp_b, bool legacy, uint16_t encr, uint16_t bits, uint16_t integ,
	size_t encr_len, size_t integ_len, const char *what)
{
	struct ike_sa_info info;

	setup(&(struct setup){ .esp_a = esp_a, .esp_b = esp_b, .legacy_a = legacy, .legacy_b = legacy });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && A.child[0].encr == encr && B.child[0].encr == encr && A.child[0].key_bits == bits &&
	      A.child[0].integ == integ && B.child[0].integ == integ && A.child[0].encr_len == encr_len &&
	      A.child[0].integ_len == integ_len && B.child[0].integ_len == integ_len &&
	      !memcmp(A.child[0].integ_in, B.child[0].integ_out, integ_len), "%s: keys %zu+%zu bytes, both sides agree",
	      what, encr_len, integ_len);
	CHECK(ike_sa_list(A.e, &info, 1) == 1 && info.n_children == 1, "%s: listed as %s", what,
	      info.children[0].algs);
	teardown();
}

static void test_child_algorithms(void)
{
	/* RFC 3686 5.1: key || 4-byte nonce; RFC 3566: 16-byte XCBC key */
	child_algs("aes128ctr-aesxcbc", "aes128ctr-aesxcbc", false, IKE_ENCR_AES_CTR, 128, IKE_INTEG_AES_XCBC_96, 20,
		16, "AES-CTR-128 + AES-XCBC-96");
	child_algs("aes256ctr-sha256", "aes256ctr-sha256", false, IKE_ENCR_AES_CTR, 256, IKE_INTEG_HMAC_SHA2_256_128,
		36, 32, "AES-CTR-256 + HMAC-SHA2-256");
	/* RFC 4309 7.1: key || 3-byte salt, no integrity transform */
	child_algs("aes128ccm16", "aes128ccm16", false, IKE_ENCR_AES_CCM_16, 128, IKE_INTEG_NONE, 19, 0,
		"AES-CCM-16-128");
	child_algs("aes256ccm8", "aes256gcm16,aes256ccm8", false, IKE_ENCR_AES_CCM_8, 256, IKE_INTEG_NONE, 35, 0,
		"AES-CCM-8-256 (B also has GCM)");
	child_algs("aes128ccm12", "aes128ccm12", false, IKE_ENCR_AES_CCM_12, 128, IKE_INTEG_NONE, 19, 0,
		"AES-CCM-12-128");
	/* RFC 4543 8.1: key || 4-byte salt, integrity only */
	child_algs("aes128gmac", "aes128gmac", false, IKE_ENCR_NULL_AUTH_AES_GMAC, 128, IKE_INTEG_NONE, 20, 0,
		"AES-GMAC-128");
	child_algs("3des-md5", "3des-md5", true, IKE_ENCR_3DES, 192, IKE_INTEG_HMAC_MD5_96, 24, 16,
		"legacy 3DES + HMAC-MD5-96");
	child_algs("aes256-sha256,aes128-md5", "aes128-md5,aes256-sha256", true, IKE_ENCR_AES_CBC, 128,
		IKE_INTEG_HMAC_MD5_96, 16, 16, "responder's first choice among shared ones");

	/* Nothing shared: the child is refused with NO_PROPOSAL_CHOSEN (the IKE SA stays). */
	setup(&(struct setup){ .esp_a = "aes128ccm16", .esp_b = "aes128ccm8" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.installs == 0 &&
	      B.sent_no_proposal == 1 && strstr(A.last_text, "no proposal"), "CCM-16 vs CCM-8: NO_PROPOSAL_CHOSEN (%s)",
	      A.last_text);
	teardown();
	setup(&(struct setup){ .esp_a = "aes128ctr-sha256", .esp_b = "aes256ctr-sha256" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.sent_no_proposal == 1,
	      "CTR-128 vs CTR-256 (key length attribute): NO_PROPOSAL_CHOSEN (%s)", A.last_text);
	teardown();
	/* A legacy initiator against a box without legacy (defaults): 3DES is not taken. */
	setup(&(struct setup){ .esp_a = "3des-md5", .legacy_a = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.sent_no_proposal == 1,
	      "3DES offered to a responder without legacy: NO_PROPOSAL_CHOSEN (%s)", A.last_text);
	teardown();
}

/* One AH child on each side, mirrored: SPIs and integrity keys (AH has no encryption key). */
static bool ah_pair(void)
{
	return A.n_child == 1 && B.n_child == 1 && A.child[0].ah && B.child[0].ah && A.child[0].encr == 0 &&
	       A.child[0].encr_len == 0 && A.child[0].spi_in == B.child[0].spi_out &&
	       A.child[0].spi_out == B.child[0].spi_in && A.child[0].integ_len == B.child[0].integ_len &&
	       !memcmp(A.child[0].integ_out, B.child[0].integ_in, A.child[0].integ_len) &&
	       !memcmp(A.child[0].integ_in, B.child[0].integ_out, A.child[0].integ_len);
}

static void test_ah(void)
{
	struct ike_proposal_conf p[4];
	char err[128], text[64];
	int n = ike_ah_proposals_parse("sha256-sha1,aesxcbc,aes256gmac", false, p, 4, err, sizeof err);

	CHECK(n == 3 && p[0].n_encr == 0 && p[0].integ[0] == IKE_INTEG_HMAC_SHA2_256_128 &&
	      p[1].integ[0] == IKE_INTEG_AES_XCBC_96 && p[2].n_encr == 0 && p[2].integ[0] == IKE_INTEG_AES_256_GMAC,
	      "AH proposals: HMAC, XCBC, AES-GMAC as AH integrity 20 (%s)", err);
	ike_proposal_format(&p[2], true, text, sizeof text);
	CHECK(!strcmp(text, "aes256gmac"), "formatted back: %s", text);
	n = ike_ah_proposals_parse("aes256gcm16", false, p, 4, err, sizeof err);
	CHECK(n == -IKE_E_BAD_PARAM && strstr(err, "AH"), "a cipher in an AH proposal refused: %s", err);
	CHECK(ike_proposals_parse("sha256", true, false, p, 4, err, sizeof err) == -IKE_E_BAD_PARAM,
	      "an ESP proposal still needs a cipher: %s", err);

	setup(&(struct setup){ .esp_a = "sha512,sha256", .esp_b = "sha256", .ah_a = true, .ah_b = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(ah_pair() && A.child[0].integ == IKE_INTEG_HMAC_SHA2_256_128 && A.child[0].integ_len == 32,
	      "AH child SA negotiated: the responder's HMAC-SHA2-256, 32-byte keys");
	ike_child_del(A.e, now, 70);
	run_until(now + 100);
	CHECK(A.n_child == 0 && B.n_child == 0 && A.deletes == 1 && B.deletes == 1,
	      "the AH child is deleted on both sides (DELETE for protocol AH)");
	teardown();

	setup(&(struct setup){ .esp_a = "aes128gmac", .esp_b = "aes128gmac", .ah_a = true, .ah_b = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(ah_pair() && A.child[0].integ == IKE_INTEG_AES_128_GMAC && A.child[0].integ_len == 20,
	      "AH with AES-128-GMAC: key || 4-byte salt (RFC 4543)");
	teardown();

	setup(&(struct setup){ .ah_b = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.installs == 0 && B.sent_no_proposal == 1,
	      "ESP offered to an AH policy: NO_PROPOSAL_CHOSEN (%s)", A.last_text);
	teardown();
}

static void test_dpd(void)
{
	struct ike_sa_info info;

	setup(&(struct setup){ .dpd_s = 30 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	sent_total = 0;
	run_until(now + 31000);
	CHECK(sent_total >= 2 && sa_count(&A, IKE_SA_ESTABLISHED) == 1, "idle 30 s: a liveness check, answered");
	drop_fn = drop_all;
	run_until(now + 40000);
	CHECK(A.ev[IKE_EV_DPD_DEAD] == 1 && A.n_child == 0 && ike_sa_list(A.e, &info, 1) == 0,
	      "peer gone: DPD_DEAD, SA and child cleared");
	drop_fn = NULL;
	teardown();

	setup(&(struct setup){ .dpd_s = 30, .dpd_action = IKE_DPD_RESTART });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	drop_fn = drop_all;
	run_until(now + 40000);
	drop_fn = NULL;
	run_until(now + 10000);
	CHECK(A.ev[IKE_EV_DPD_DEAD] == 1 && sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.n_child == 1,
	      "dpd_action restart: A builds a new IKE SA and child");
	teardown();

	/* The engine's default back-off (1 s doubling, 5 retransmissions) would take 63 s to give up; a liveness
	 * check is sent 4 times over dpd_timeout (10 s) instead. */
	setup(&(struct setup){ .dpd_s = 2, .default_retransmit = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	{
		uint64_t t0 = now;

		drop_fn = drop_all;
		sent_total = 0;
		run_until(now + 30000);
		drop_fn = NULL;
		CHECK(A.ev[IKE_EV_DPD_DEAD] == 1 && A.dead_ms >= t0 + 11500 && A.dead_ms <= t0 + 12200,
		      "default schedule: dead 2 s + 10 s after the last answer (%.1f s)",
		      (double)(A.dead_ms - t0) / 1000);
	}
	teardown();

	/* The peer's own dpd_timeout (4 s) instead of the engine's 10 s. */
	setup(&(struct setup){ .dpd_s = 2, .dpd_timeout_s = 4, .default_retransmit = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	{
		uint64_t t0 = now;

		drop_fn = drop_all;
		run_until(now + 30000);
		drop_fn = NULL;
		CHECK(A.ev[IKE_EV_DPD_DEAD] == 1 && A.dead_ms >= t0 + 5500 && A.dead_ms <= t0 + 6200,
		      "per-peer dpd_timeout 4 s: dead 2 s + 4 s after the last answer (%.1f s)",
		      (double)(A.dead_ms - t0) / 1000);
	}
	teardown();
}

static bool drop_after_first(size_t n, const struct dgram *d)
{
	(void)d;
	return n > 1;
}

static void test_cookies(void)
{
	struct ike_engine *old;

	setup(&(struct setup){ .cookie_threshold = 1 });
	/* A's first IKE_SA_INIT reaches B, the answer is lost: B holds one half-open SA, its threshold. */
	ike_initiate(A.e, now, 7);
	deliveries = 0;
	drop_fn = drop_after_first;
	pump();
	drop_fn = NULL;
	old = A.e;
	side_init(&A, "A", 1, 0xa0000001, &(struct setup){ 0 });
	ike_engine_free(old);
	A.rnd ^= 0x5555;
	peer_conf(&A, &B, "correct horse", NULL, &(struct setup){ 0 });
	policy_conf(&A, ts4("192.0.2.0", "192.0.2.255"), ts4("203.0.113.0", "203.0.113.255"), NULL, false, false);
	deliveries = 0;
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(deliveries == 6, "over the threshold: INIT, COOKIE, INIT with cookie, response, AUTH, response (%zu)",
	      deliveries);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&B, IKE_SA_ESTABLISHED) == 1 && children_pair(),
	      "the cookie was returned and accepted: up");
	run_until(now + 31000);
	CHECK(ike_sa_list(B.e, NULL, 0) == 1, "the stale half-open SA is reaped after 30 s");
	teardown();
}

static uint64_t sa_id(struct side *s)
{
	struct ike_sa_info info[4];

	return ike_sa_list(s->e, info, 4) >= 1 ? info[0].id : 0;
}

static bool pairs_mirror(void)
{
	size_t matched = 0;

	for (size_t i = 0; i < A.n_child; i++)
		for (size_t j = 0; j < B.n_child; j++)
			matched += A.child[i].spi_in == B.child[j].spi_out && A.child[i].spi_out == B.child[j].spi_in &&
				   A.child[i].ah == B.child[j].ah &&
				   !memcmp(A.child[i].integ_out, B.child[j].integ_in, A.child[i].integ_len) &&
				   !memcmp(A.child[i].key_out, B.child[j].key_in, A.child[i].encr_len) &&
				   !memcmp(A.child[i].key_in, B.child[j].key_out, A.child[i].encr_len);
	return matched == A.n_child && A.n_child == B.n_child;
}

static void second_policy(struct side *s, bool a)
{
	struct ike_ts_conf l = a ? ts4("198.18.1.0", "198.18.1.255") : ts4("198.18.2.0", "198.18.2.255");
	struct ike_ts_conf r = a ? ts4("198.18.2.0", "198.18.2.255") : ts4("198.18.1.0", "198.18.1.255");
	struct ike_child_conf c = { .id = 71, .peer_id = 7, .n_local_ts = 1, .n_remote_ts = 1, .lifetime_s = 3600 };

	c.local_ts[0] = l;
	c.remote_ts[0] = r;
	CHECK_EQ(ike_child_set(s->e, now, &c), 0, "%s: second policy", s->name);
}

static void test_create_child(void)
{
	uint32_t old_in;

	setup(&(struct setup){ 0 });
	second_policy(&A, true);
	second_policy(&B, false);
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(A.n_child == 2 && B.n_child == 2 && pairs_mirror(), "second policy: a child through CREATE_CHILD_SA");
	teardown();

	setup(&(struct setup){ 0 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	old_in = A.child[0].spi_in;
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), old_in), 0, "A rekeys the child");
	run_until(now + 100);
	CHECK(A.n_child == 2 && B.n_child == 2 && A.installs == 2 && B.installs == 2 && pairs_mirror() &&
	      A.child[1].replaces_spi_in == old_in, "make-before-break: the new pair is installed beside the old one");
	CHECK(A.ev[IKE_EV_REKEYED] == 1 && B.ev[IKE_EV_REKEYED] == 1, "REKEYED on both");
	CHECK(A.child[1].install == IKE_INSTALL_BOTH && B.child[1].install == IKE_INSTALL_IN && !B.out_installs,
	      "the responder sends on the old pair until the initiator surely has the new one (inbound only)");
	run_until(now + 3000);
	CHECK(A.n_child == 1 && B.n_child == 1 && pairs_mirror() && A.child[0].spi_in != old_in,
	      "after the grace period the old pair is deleted on both sides");
	CHECK(B.child[0].install == IKE_INSTALL_BOTH && B.out_installs == 1 && !A.out_installs,
	      "the responder's outbound SA went in with the initiator's DELETE of the old pair");
	CHECK_EQ(ike_rekey(B.e, now, sa_id(&B), B.child[0].spi_in), 0, "B, the IKE responder, rekeys the child");
	run_until(now + 3000);
	CHECK(A.n_child == 1 && B.n_child == 1 && pairs_mirror() && A.installs == 3, "rekeyed from the other side too");
	teardown();

	setup(&(struct setup){ .esp_a = "aes256gcm16-curve25519-ecp256", .esp_b = "aes256gcm16-ecp256" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair(), "PFS policies: first child without KE (IKE_AUTH)");
	ike_rekey(A.e, now, sa_id(&A), A.child[0].spi_in);
	run_until(now + 3000);
	CHECK(A.n_child == 1 && pairs_mirror() && A.installs == 2 && B.installs == 2,
	      "PFS rekey: INVALID_KE_PAYLOAD, retried with ECP-256, keys agree");
	teardown();

	/* Both rekey the same child at once: one new pair survives. */
	setup(&(struct setup){ 0 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	ike_rekey(A.e, now, sa_id(&A), A.child[0].spi_in);
	ike_rekey(B.e, now, sa_id(&B), B.child[0].spi_in);
	ike_tick(A.e, now);
	ike_tick(B.e, now);
	run_until(now + 20000);
	CHECK(A.n_child == 1 && B.n_child == 1 && pairs_mirror() && A.installs == 3 && B.installs == 3,
	      "collision: two new pairs made, the redundant one and the old one deleted (%zu/%zu)", A.n_child, B.n_child);
	teardown();

	/* Lifetimes: rekeyed before the hour is over, never without an SA. */
	setup(&(struct setup){ 0 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	run_until(now + 3 * 3600 * 1000ull);
	CHECK(A.n_child == 1 && B.n_child == 1 && pairs_mirror() && A.installs >= 4 && A.ev[IKE_EV_CHILD_DOWN] >= 3,
	      "three hours: rekeyed each hour (%zu installs), one pair at a time", A.installs);
	teardown();
}


static const struct ike_child_sa *child_of(const struct side *s, bool ah, uint8_t host_last)
{
	for (size_t i = 0; i < s->n_child; i++)
		if (s->child[i].ah == ah && (!host_last || (s->child[i].clone_family == 4 &&
		                                            s->child[i].clone_host[3] == host_last)))
			return &s->child[i];
	return NULL;
}

static const uint8_t host10[4] = { 192, 0, 2, 10 }, host11[4] = { 192, 0, 2, 11 }, host200[4] = { 192, 0, 2, 200 };
static const uint8_t far5[4] = { 203, 0, 113, 5 };

/* Clone policies (clone src on A, dst on B): one child pair per host behind A, each narrowed to its host. */
static void test_clone(void)
{
	const struct ike_child_sa *a10, *a11, *b10, *b11;
	uint32_t old;

	setup(&(struct setup){ .clone_a = IKE_CLONE_SRC, .clone_b = IKE_CLONE_DST });
	CHECK_EQ(ike_acquire(A.e, now, 70, host10, far5, 4, host10), 0, "A: ACQUIRE for host .10");
	run_until(now + 100);
	CHECK_EQ(ike_acquire(A.e, now, 70, host11, far5, 4, host11), 0, "A: ACQUIRE for host .11 (IKE SA up)");
	run_until(now + 100);
	a10 = child_of(&A, false, 10), a11 = child_of(&A, false, 11);
	b10 = child_of(&B, false, 10), b11 = child_of(&B, false, 11);
	CHECK(A.n_child == 2 && B.n_child == 2 && a10 && a11 && b10 && b11 && pairs_mirror(),
	      "two child pairs, one per host, on both sides (clone_host set on each)");
	CHECK(a10 && b10 && a10->spi_in == b10->spi_out && a10->spi_out == b10->spi_in && a11 && a10->spi_in != a11->spi_in,
	      "each host's pair has its own SPIs, mirrored between the two sides");
	CHECK(a10 && a10->n_local_ts >= 1 && !memcmp(a10->local_ts[a10->n_local_ts - 1].lo, host10, 4) &&
	      !memcmp(a10->local_ts[a10->n_local_ts - 1].hi, host10, 4) && a10->remote_ts[a10->n_remote_ts - 1].lo[3] == 0 &&
	      a10->remote_ts[a10->n_remote_ts - 1].hi[3] == 255, "A's selectors: the host <-> the whole remote net");
	CHECK(b11 && b11->n_remote_ts == 1 && !memcmp(b11->remote_ts[0].lo, host11, 4) &&
	      !memcmp(b11->remote_ts[0].hi, host11, 4), "B maps the narrowed TSi onto its clone dst policy's host");
	CHECK_EQ(ike_acquire(A.e, now, 70, host10, far5, 4, host10), 0, "a repeated ACQUIRE for a host with an SA");
	CHECK_EQ(ike_acquire(A.e, now, 70, (const uint8_t[4]){ 198, 18, 0, 1 }, far5, 4,
		(const uint8_t[4]){ 198, 18, 0, 1 }), -IKE_E_TS_UNACCEPTABLE, "a host outside the policy is refused");
	CHECK_EQ(ike_acquire(A.e, now, 70, host10, far5, 4, NULL), -IKE_E_BAD_PARAM,
		"a clone policy's ACQUIRE needs the host");
	run_until(now + 100);
	CHECK(A.installs == 2 && B.installs == 2, "nothing more negotiated");
	old = a10->spi_in;
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), old), 0, "A rekeys host .10's child");
	run_until(now + 3000);
	a10 = child_of(&A, false, 10), b10 = child_of(&B, false, 10);
	CHECK(A.n_child == 2 && pairs_mirror() && a10 && a10->spi_in != old && b10 && b10->spi_out == a10->spi_in &&
	      child_of(&A, false, 11), "rekeyed for the same host; the other host's pair untouched");
	teardown();

	/* B's clone policy covers only 192.0.2.0/25: a host above it is TS_UNACCEPTABLE. */
	setup(&(struct setup){ .clone_a = IKE_CLONE_SRC, .clone_b = IKE_CLONE_DST,
		.b_remote = ts4("192.0.2.0", "192.0.2.127") });
	ike_acquire(A.e, now, 70, host200, far5, 4, host200);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.installs == 0 &&
	      strstr(A.last_text, "traffic selectors"), "clone host outside the responder's policy: TS_UNACCEPTABLE (%s)",
	      A.last_text);
	ike_acquire(A.e, now, 70, host10, far5, 4, host10);
	run_until(now + 100);
	CHECK(A.installs == 1 && B.installs == 1 && child_of(&B, false, 10), "a host inside it is keyed");
	teardown();

	/* A responder with a clone policy cannot key a whole subnet: it needs one host. */
	setup(&(struct setup){ .clone_b = IKE_CLONE_DST });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.installs == 0 &&
	      strstr(A.last_text, "traffic selectors"), "the whole net offered to a clone policy: TS_UNACCEPTABLE (%s)",
	      A.last_text);
	teardown();
}

static bool bundle_of(const struct side *s)
{
	const struct ike_child_sa *esp = child_of(s, false, 0), *ah = child_of(s, true, 0);

	return s->n_child == 2 && esp && ah && esp->spi_in == ah->spi_in && esp->bundle && ah->bundle &&
	       esp->encr_len > 0 && ah->encr == 0 && ah->integ_len > 0;
}

/* AH+ESP bundles: two children over the same selectors, one inbound SPI per side for both. */
static void test_bundle(void)
{
	uint32_t old;

	setup(&(struct setup){ .type_a = IKE_SA_TYPE_AHESP, .type_b = IKE_SA_TYPE_AHESP });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(bundle_of(&A) && bundle_of(&B) && pairs_mirror(),
	      "ESP (IKE_AUTH) then AH (CREATE_CHILD_SA): each side's inbound SPI shared by both, keys mirrored");
	CHECK(A.installs == 2 && B.installs == 2 && child_of(&A, true, 0)->spi_out == child_of(&B, true, 0)->spi_in &&
	      child_of(&A, true, 0)->integ == IKE_INTEG_HMAC_SHA2_256_128, "AH child: HMAC-SHA2-256 by default");
	old = A.child[0].spi_in;
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), old), 0, "A rekeys the ESP half");
	run_until(now + 100);
	CHECK(A.installs == 4 && B.installs == 4, "the AH half is rekeyed with it");
	run_until(now + 3000);
	CHECK(bundle_of(&A) && bundle_of(&B) && pairs_mirror() && A.child[0].spi_in != old,
	      "after the grace period: one new bundle, the old one deleted on both sides");
	old = child_of(&B, true, 0)->spi_in;
	CHECK_EQ(ike_sa_expire(B.e, now, old, false), 0, "B's wire: the bundle's soft expiry");
	run_until(now + 3000);
	CHECK(bundle_of(&A) && bundle_of(&B) && pairs_mirror() && B.installs == 6 && B.child[0].spi_in != old,
	      "rekeyed as one from the IKE responder's side");
	CHECK_EQ(ike_sa_expire(A.e, now, A.child[0].spi_in, true), 0, "A's wire: hard expiry of one half");
	run_until(now + 100);
	CHECK(A.n_child == 0 && B.n_child == 0, "a bundle goes as one: both halves deleted on both sides");
	teardown();

	/* RFC 7296 has no multi-protocol proposal: an AH+ESP initiator against an ESP-only responder gets ESP only. */
	setup(&(struct setup){ .type_a = IKE_SA_TYPE_AHESP });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(A.n_child == 1 && B.n_child == 1 && !A.child[0].ah && B.sent_no_proposal == 1,
	      "AH offered to an ESP policy: NO_PROPOSAL_CHOSEN for the AH half (%s)", A.last_text);
	teardown();
	setup(&(struct setup){ .ah_a = true });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && A.installs == 0 && B.installs == 0 && B.sent_no_proposal == 1 &&
	      strstr(A.last_text, "no proposal"), "AH offered to an ESP policy: NO_PROPOSAL_CHOSEN (%s)", A.last_text);
	teardown();

	/* A clone AH+ESP policy: a bundle per host. */
	setup(&(struct setup){ .type_a = IKE_SA_TYPE_AHESP, .type_b = IKE_SA_TYPE_AHESP, .clone_a = IKE_CLONE_SRC,
		.clone_b = IKE_CLONE_DST });
	ike_acquire(A.e, now, 70, host10, far5, 4, host10);
	run_until(now + 100);
	ike_acquire(A.e, now, 70, host11, far5, 4, host11);
	run_until(now + 100);
	CHECK(A.n_child == 4 && B.n_child == 4 && pairs_mirror() && child_of(&A, true, 10) && child_of(&A, true, 11) &&
	      child_of(&A, true, 10)->spi_in == child_of(&A, false, 10)->spi_in &&
	      child_of(&B, true, 11)->spi_in == child_of(&B, false, 11)->spi_in &&
	      child_of(&A, true, 10)->spi_in != child_of(&A, true, 11)->spi_in, "clone + bundle: an ESP+AH pair per host");
	teardown();
}

/* ---- a malicious (authenticated) peer's CREATE_CHILD_SA: A's next REKEY_SA notify rewritten ---- */

static struct forge {
	bool armed;
	uint8_t proto;                      /* 0: as built */
	uint32_t spi;                       /* 0: as built */
	uint8_t spi_buf[4];
	uint16_t b_error;                   /* the last error notify B answered a CREATE_CHILD_SA with */
} forge;

static void forge_rekey_sa(void *ctx, struct ike_msg *out, struct ike_msg *inner)
{
	(void)ctx;
	for (size_t i = 0; forge.armed && out->exchange == IKE_CREATE_CHILD_SA && i < inner->n_payloads; i++) {
		struct ike_notify *n = &inner->payloads[i].u.notify;

		if (inner->payloads[i].type != IKE_PL_NOTIFY || n->type != IKE_N_REKEY_SA)
			continue;
		if (forge.proto)
			n->protocol = forge.proto;
		if (forge.spi) {
			forge.spi_buf[0] = (uint8_t)(forge.spi >> 24), forge.spi_buf[1] = (uint8_t)(forge.spi >> 16);
			forge.spi_buf[2] = (uint8_t)(forge.spi >> 8), forge.spi_buf[3] = (uint8_t)forge.spi;
			n->spi = (struct ike_span){ forge.spi_buf, 4 };
		}
		forge.armed = false;
	}
}

static void record_error(void *ctx, struct ike_msg *out, struct ike_msg *inner)
{
	(void)ctx;
	for (size_t i = 0; out->exchange == IKE_CREATE_CHILD_SA && i < inner->n_payloads; i++)
		if (inner->payloads[i].type == IKE_PL_NOTIFY && inner->payloads[i].u.notify.type < 16384)
			forge.b_error = inner->payloads[i].u.notify.type;
}

/* A rekeys child rekey_in, its REKEY_SA rewritten to name protocol proto / SPI spi instead. */
static void forged_rekey(uint32_t rekey_in, uint8_t proto, uint32_t spi)
{
	forge = (struct forge){ .armed = true, .proto = proto, .spi = spi };
	ike_engine_set_out_hook(A.e, forge_rekey_sa, NULL);
	ike_engine_set_out_hook(B.e, record_error, NULL);
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), rekey_in), 0, "A rekeys child %08x (forged REKEY_SA)", rekey_in);
	ike_tick(A.e, now);
	pump();
	ike_engine_set_out_hook(A.e, NULL, NULL);
	ike_engine_set_out_hook(B.e, NULL, NULL);
}

/* Each side still has the child whose inbound SPI on A is a_in, both halves installed, and nothing new. */
static bool still_there(uint32_t a_in, bool ah, size_t installs_a, size_t installs_b)
{
	const struct ike_child_sa *a = NULL, *b = NULL;

	for (size_t i = 0; i < A.n_child; i++)
		if (A.child[i].spi_in == a_in && A.child[i].ah == ah)
			a = &A.child[i];
	for (size_t i = 0; a && i < B.n_child; i++)
		if (B.child[i].spi_in == a->spi_out && B.child[i].spi_out == a_in && B.child[i].ah == ah)
			b = &B.child[i];
	return a && b && b->install == IKE_INSTALL_BOTH && A.installs == installs_a && B.installs == installs_b &&
	       !A.ev[IKE_EV_CHILD_DOWN] && !B.ev[IKE_EV_CHILD_DOWN];
}

/* A child rekey must replace a child of the same policy, protocol and clone host, and REKEY_SA must name ESP or
 * AH: else an authenticated peer could retire another child (another host's, the other half of a bundle) with
 * selectors of its own. Each refusal leaves the victim installed and usable. */
static void test_forged_rekey(void)
{
	const struct ike_child_sa *c70, *c71;
	uint32_t victim;

	/* REKEY_SA for the IKE protocol (or anything but ESP/AH): INVALID_SYNTAX. */
	setup(&(struct setup){ 0 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	victim = A.child[0].spi_in;
	forged_rekey(victim, IKE_PROTO_IKE, 0);
	CHECK(forge.b_error == IKE_N_INVALID_SYNTAX && still_there(victim, false, 1, 1) && A.ev[IKE_EV_REKEYED] == 0,
	      "REKEY_SA naming protocol IKE: INVALID_SYNTAX, the child stays (B answered %u)", forge.b_error);
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), victim), 0, "and it can be rekeyed for real");
	run_until(now + 3000);
	CHECK(A.n_child == 1 && pairs_mirror() && A.child[0].spi_in != victim && A.installs == 2, "rekeyed");
	teardown();

	/* REKEY_SA names policy 71's child, the selectors are policy 70's: TS_UNACCEPTABLE. */
	setup(&(struct setup){ 0 });
	second_policy(&A, true);
	second_policy(&B, false);
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	c70 = c71 = NULL;
	for (size_t i = 0; i < A.n_child; i++)
		*(A.child[i].local_ts[0].lo[0] == 192 ? &c70 : &c71) = &A.child[i];
	CHECK(A.n_child == 2 && c70 && c71 && pairs_mirror(), "two policies, a child each");
	if (!c70 || !c71) {
		teardown();
		return;
	}
	victim = c71->spi_in;
	forged_rekey(c70->spi_in, 0, victim);
	CHECK(forge.b_error == IKE_N_TS_UNACCEPTABLE && still_there(victim, false, 2, 2) && A.n_child == 2 &&
	      B.n_child == 2, "policy 70's selectors rekeying policy 71's child: TS_UNACCEPTABLE, both children stay "
	      "(B answered %u)", forge.b_error);
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), victim), 0, "policy 71's child is rekeyed for real");
	run_until(now + 3000);
	CHECK(A.n_child == 2 && pairs_mirror() && A.installs == 3, "and works (keys mirror)");
	teardown();

	/* Clone policies: REKEY_SA names host .11's child, the selectors are host .10's: TS_UNACCEPTABLE. */
	setup(&(struct setup){ .clone_a = IKE_CLONE_SRC, .clone_b = IKE_CLONE_DST });
	ike_acquire(A.e, now, 70, host10, far5, 4, host10);
	run_until(now + 100);
	ike_acquire(A.e, now, 70, host11, far5, 4, host11);
	run_until(now + 100);
	CHECK(A.n_child == 2 && child_of(&A, false, 10) && child_of(&A, false, 11), "a child per host");
	if (!child_of(&A, false, 10) || !child_of(&A, false, 11)) {
		teardown();
		return;
	}
	victim = child_of(&A, false, 11)->spi_in;
	forged_rekey(child_of(&A, false, 10)->spi_in, 0, victim);
	CHECK(forge.b_error == IKE_N_TS_UNACCEPTABLE && still_there(victim, false, 2, 2) && B.n_child == 2 &&
	      child_of(&B, false, 11) && child_of(&B, false, 11)->spi_out == victim,
	      "host .10's selectors rekeying host .11's child: TS_UNACCEPTABLE, .11's child stays (B answered %u)",
	      forge.b_error);
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), victim), 0, "host .11's child is rekeyed for real");
	run_until(now + 3000);
	CHECK(A.n_child == 2 && pairs_mirror() && child_of(&A, false, 11) && child_of(&A, false, 11)->spi_in != victim,
	      "and works");
	teardown();

	/* An AH+ESP bundle: REKEY_SA names the AH half, the proposals are ESP: NO_PROPOSAL_CHOSEN. */
	setup(&(struct setup){ .type_a = IKE_SA_TYPE_AHESP, .type_b = IKE_SA_TYPE_AHESP });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(bundle_of(&A) && bundle_of(&B), "a bundle");
	if (!bundle_of(&A)) {
		teardown();
		return;
	}
	victim = child_of(&A, true, 0)->spi_in;
	forged_rekey(child_of(&A, false, 0)->spi_in, IKE_PROTO_AH, 0);
	CHECK(forge.b_error == IKE_N_NO_PROPOSAL_CHOSEN && still_there(victim, true, 2, 2) &&
	      still_there(victim, false, 2, 2), "ESP proposals rekeying the AH half: NO_PROPOSAL_CHOSEN, the bundle "
	      "stays (B answered %u)", forge.b_error);
	run_until(now + 30000);
	CHECK(bundle_of(&A) && bundle_of(&B) && pairs_mirror() && child_of(&A, true, 0)->spi_in != victim,
	      "and is rekeyed for real later, as one");
	teardown();
}

/* Both rekey the IKE SA at once (RFC 7296 2.8.2): both exchanges complete at once, no retry; the exchange with the
 * lowest nonce made the redundant SA and its initiator deletes it; the other new SA keeps the child. */
static void ike_ike_rekey_collisions(void)
{
	struct ike_sa_info a[4], b[4];
	int wins_a = 0, wins_b = 0;
	size_t installs = A.installs;

	for (int round = 0; round < 8; round++) {
		uint64_t old = sa_id(&A), down = (uint64_t)A.ev[IKE_EV_CHILD_DOWN];

		ike_rekey(A.e, now, old, 0);
		ike_rekey(B.e, now, sa_id(&B), 0);
		ike_tick(A.e, now);
		ike_tick(B.e, now);
		run_until(now + 100);
		CHECK(ike_sa_list(A.e, a, 4) == 1 && ike_sa_list(B.e, b, 4) == 1 && a[0].id != old &&
		      a[0].state == IKE_SA_ESTABLISHED && b[0].state == IKE_SA_ESTABLISHED,
		      "round %d: simultaneous IKE SA rekey settled at once: one new IKE SA each, old and redundant gone",
		      round);
		CHECK(!memcmp(a[0].spi_i, b[0].spi_i, 8) && !memcmp(a[0].spi_r, b[0].spi_r, 8) &&
		      a[0].initiator != b[0].initiator, "round %d: both kept the same one of the two new SAs", round);
		CHECK(a[0].n_children == 1 && b[0].n_children == 1 && A.n_child == 1 && children_pair() &&
		      A.installs == installs && (uint64_t)A.ev[IKE_EV_CHILD_DOWN] == down,
		      "round %d: the child moved to the survivor untouched", round);
		wins_a += a[0].initiator;
		wins_b += b[0].initiator;
	}
	CHECK(wins_a > 0 && wins_b > 0, "each side's exchange won some rounds (A %d, B %d)", wins_a, wins_b);
	CHECK_EQ(ike_rekey(A.e, now, sa_id(&A), A.child[0].spi_in), 0, "a child rekey on the survivor");
	run_until(now + 3000);
	CHECK(A.n_child == 1 && pairs_mirror() && A.installs == installs + 1, "works: the surviving SA's keys agree");

	/* Only B sees the collision: B's request is lost, A's rekey completes and A deletes the old SA, on which B's
	 * own rekey is outstanding: B's child goes to A's new SA, B does not retry. */
	drop_fn = drop_first;
	deliveries = 0;
	ike_rekey(B.e, now, sa_id(&B), 0);
	ike_rekey(A.e, now, sa_id(&A), 0);
	ike_tick(B.e, now);
	ike_tick(A.e, now);
	run_until(now + 100);
	drop_fn = NULL;
	CHECK(ike_sa_list(A.e, a, 4) == 1 && ike_sa_list(B.e, b, 4) == 1 && a[0].initiator && !b[0].initiator &&
	      !memcmp(a[0].spi_i, b[0].spi_i, 8) && b[0].n_children == 1 && B.n_child == 1 && children_pair(),
	      "one-sided collision: A's new SA holds the child on both sides");
	run_until(now + 30000);
	CHECK(ike_sa_list(A.e, NULL, 0) == 1 && ike_sa_list(B.e, NULL, 0) == 1 && A.installs == installs + 1,
	      "and nothing retries or is left over");
}

/* The queued datagram to side to that is a response (or a request), or q_len. */
static size_t queued(const struct side *to, bool response)
{
	for (size_t i = 0; i < q_len; i++)
		if (side_at(&q[i].dst) == to && q[i].len > 19 && !!(q[i].data[19] & IKE_FLAG_R) == response)
			return i;
	return q_len;
}

/* Delivers queued datagram i before the others. */
static void deliver(size_t i)
{
	static struct dgram d;

	if (i >= q_len)
		return;
	d = q[i];
	memmove(q + i, q + i + 1, (--q_len - i) * sizeof q[0]);
	ike_input(side_at(&d.dst)->e, now, &d.src, &d.dst, d.data, d.len);
}

/* Both rekey the IKE SA; A's completes first and A refuses B's on the old SA it is deleting. B would hand its
 * children to A's new SA (RFC 7296 2.8.2's special case), but that SA is going already (B's operator terminated
 * it): they must not go into an SA being deleted. */
static void ike_rekey_refused_successor_going(void)
{
	struct ike_sa_info b[4];
	const struct ike_sa_info *on_old = NULL, *on_theirs = NULL;
	uint64_t old_b, theirs = 0;
	size_t n;

	ike_rekey(A.e, now, sa_id(&A), 0);
	ike_rekey(B.e, now, old_b = sa_id(&B), 0);
	ike_tick(A.e, now);
	ike_tick(B.e, now);
	CHECK(q_len == 2, "both sent their IKE SA rekey (%zu queued)", q_len);
	deliver(queued(&B, false));             /* A's rekey: B answers, and makes A's new SA */
	deliver(queued(&A, true));              /* A's rekey completes: A deletes the old SA */
	deliver(queued(&A, false));             /* B's rekey on the old SA: refused (TEMPORARY_FAILURE) */
	n = ike_sa_list(B.e, b, 4);
	for (size_t i = 0; i < n && i < 4; i++)
		if (b[i].id != old_b)
			theirs = b[i].id;
	CHECK(n == 2 && theirs && ike_terminate(B.e, now, theirs) == 0, "B's operator terminates A's new IKE SA");
	deliver(queued(&B, true));              /* the refusal */
	n = ike_sa_list(B.e, b, 4);
	for (size_t i = 0; i < n && i < 4; i++)
		*(b[i].id == old_b ? &on_old : &on_theirs) = &b[i];
	CHECK(n == 2 && on_old && on_theirs && on_old->n_children == 1 && on_theirs->n_children == 0 &&
	      !strcmp(on_theirs->state_name, "DELETING"), "the child stays on B's old IKE SA, none goes to A's new "
	      "one being deleted (old: %zu children, A's new: %zu)", on_old ? on_old->n_children : 0,
	      on_theirs ? on_theirs->n_children : 0);
	CHECK(B.ev[IKE_EV_REKEYED] == 0, "B reports no rekey");
	run_until(now + 30000);
	CHECK(ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0 && A.n_child == 0 && B.n_child == 0 &&
	      A.ev[IKE_EV_CHILD_DOWN] == 1 && B.ev[IKE_EV_CHILD_DOWN] == 1 && B.ev[IKE_EV_REKEYED] == 0,
	      "then both DELETEs end everything, on both sides alike: the child down once each, B never reported "
	      "a rekey into an SA it was deleting (B: %d REKEYED)", B.ev[IKE_EV_REKEYED]);
}

/* The IKE SA of side s other than old, inside the engine. */
static struct ike_sa *other_sa(const struct side *s, uint64_t old)
{
	struct ike_sa_info info[4];
	size_t n = ike_sa_list(s->e, info, 4);

	for (size_t i = 0; i < n && i < 4; i++)
		if (info[i].id != old)
			return ike_sa_find_id(s->e, info[i].id);
	return NULL;
}

/* The lower of the two nonces of the exchange that made sa. */
static const uint8_t *low_nonce(const struct ike_sa *sa, size_t *len)
{
	bool ni_lower = ike_nonce_cmp(sa->ni, sa->ni_len, sa->nr, sa->nr_len) < 0;

	*len = ni_lower ? sa->ni_len : sa->nr_len;
	return ni_lower ? sa->ni : sa->nr;
}

/* Both rekey the IKE SA and both exchanges complete (RFC 7296 2.8.2), but the side whose new SA the nonces make
 * redundant (X) has already terminated the other's new SA. The other side (Y) orders the nonces alike: it keeps its
 * new SA, deletes the old one and waits for X to delete X's new SA. X must delete it too, not keep it: else X holds
 * an IKE SA with the child that Y no longer has. */
static void ike_rekey_resolved_successor_going(void)
{
	struct side *x, *y;
	struct ike_sa *new_a, *new_b;
	const uint8_t *lo_a, *lo_b;
	size_t len_a, len_b;
	uint64_t old_a = sa_id(&A), old_b = sa_id(&B);

	ike_rekey(A.e, now, old_a, 0);
	ike_rekey(B.e, now, old_b, 0);
	ike_tick(A.e, now);
	ike_tick(B.e, now);
	deliver(queued(&B, false));             /* A's rekey: B answers, and makes A's new SA */
	deliver(queued(&A, false));             /* B's rekey: A answers, and makes B's new SA */
	new_a = other_sa(&B, old_b);            /* made by A's exchange */
	new_b = other_sa(&A, old_a);
	CHECK(new_a && new_b && q_len == 2, "both answered the other's rekey (%zu queued)", q_len);
	if (!new_a || !new_b)
		return;
	lo_a = low_nonce(new_a, &len_a);
	lo_b = low_nonce(new_b, &len_b);
	x = ike_nonce_cmp(lo_a, len_a, lo_b, len_b) < 0 ? &A : &B;
	y = x == &A ? &B : &A;
	CHECK(ike_terminate(x->e, now, x == &A ? new_b->id : new_a->id) == 0,
	      "%s (whose new SA is redundant) terminates %s's new IKE SA", x->name, y->name);
	deliver(queued(x, true));               /* x's rekey completes: the collision is resolved */
	CHECK(sa_count(x, IKE_SA_ESTABLISHED) == 0 && x->ev[IKE_EV_REKEYED] == 0,
	      "%s keeps none of the new IKE SAs (%zu established) and reports no rekey", x->name,
	      sa_count(x, IKE_SA_ESTABLISHED));
	run_until(now + 100);
	CHECK(ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0 && A.n_child == 0 && B.n_child == 0,
	      "both sides end alike: no IKE SA, no child (A %zu/%zu, B %zu/%zu)", ike_sa_list(A.e, NULL, 0), A.n_child,
	      ike_sa_list(B.e, NULL, 0), B.n_child);
	run_until(now + 30000);
	CHECK(ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0 && A.n_child == 0 && B.n_child == 0,
	      "and stay so");
}

static void test_ike_rekey(void)
{
	uint64_t old;
	struct ike_sa_info info[2];

	setup(&(struct setup){ 0 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	old = sa_id(&A);
	CHECK_EQ(ike_rekey(A.e, now, old, 0), 0, "A rekeys the IKE SA");
	run_until(now + 100);
	CHECK(ike_sa_list(A.e, info, 2) == 1 && info[0].id != old && info[0].state == IKE_SA_ESTABLISHED &&
	      info[0].n_children == 1 && ike_sa_list(B.e, NULL, 0) == 1, "one new IKE SA each, the child moved to it");
	CHECK(A.installs == 1 && B.installs == 1 && A.n_child == 1 && children_pair(), "the child SA was not touched");
	CHECK_EQ(ike_rekey(A.e, now, info[0].id, A.child[0].spi_in), 0, "a child rekey on the new IKE SA");
	run_until(now + 3000);
	CHECK(A.n_child == 1 && pairs_mirror() && A.installs == 2, "works: the new IKE SA's keys agree");
	CHECK_EQ(ike_rekey(B.e, now, sa_id(&B), 0), 0, "B rekeys the IKE SA");
	run_until(now + 100);
	CHECK(ike_sa_list(A.e, info, 2) == 1 && ike_sa_list(B.e, NULL, 0) == 1 && A.n_child == 1,
	      "rekeyed from the responder's side too");
	ike_ike_rekey_collisions();
	ike_terminate(A.e, now, sa_id(&A));
	run_until(now + 100);
	CHECK(ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0 && B.n_child == 0,
	      "DELETE on the rekeyed SA ends everything");
	teardown();

	setup(&(struct setup){ 0 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	ike_rekey_refused_successor_going();
	teardown();

	setup(&(struct setup){ 0 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	ike_rekey_resolved_successor_going();
	teardown();
}

/* ---- certificates, made here with OpenSSL ---- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
}

static X509 *mkcert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"bitw test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(cn[0] + cn[1]));
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	add_ext(x, issuer, NID_basic_constraints, issuer ? "CA:FALSE" : "critical,CA:TRUE");
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (!issuer)
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (san)
		add_ext(x, issuer, NID_subject_alt_name, san);
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

static char *pem_of(X509 *x, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	if (x)
		PEM_write_bio_X509(b, x);
	else
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static void test_certificates(void)
{
	EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ka = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *kb = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *k_other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca = mkcert("test CA", ca_key, NULL, NULL, NULL);
	X509 *other_ca = mkcert("other CA", k_other, NULL, NULL, NULL);
	X509 *ca_ = ca, *a = mkcert("moon", ka, ca_, ca_key, "DNS:moon.example.org");
	X509 *b = mkcert("sun", kb, ca, ca_key, "DNS:sun.example.org");
	char *ca_pem = pem_of(ca, NULL), *other_pem = pem_of(other_ca, NULL);
	char *a_pem = pem_of(a, NULL), *b_pem = pem_of(b, NULL), *ka_pem = pem_of(NULL, ka), *kb_pem = pem_of(NULL, kb);

	setup(&(struct setup){ .ca = ca_pem, .cert_a = a_pem, .key_a = ka_pem, .cert_b = b_pem, .key_b = kb_pem,
		.id_a = "moon.example.org", .id_b = "sun.example.org", .expect_b = "sun.example.org" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&B, IKE_SA_ESTABLISHED) == 1 && children_pair(),
	      "X.509: RSA initiator and ECDSA P-384 responder authenticate each other (RFC 7427)");
	teardown();

	setup(&(struct setup){ .ca = ca_pem, .cert_a = a_pem, .key_a = ka_pem, .cert_b = b_pem, .key_b = kb_pem });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && children_pair(), "X.509 with the subject DNs as identities");
	teardown();

	setup(&(struct setup){ .ca = ca_pem, .cert_a = a_pem, .key_a = ka_pem, .cert_b = b_pem, .key_b = kb_pem,
		.id_a = "moon.example.org", .id_b = "sun.example.org", .expect_b = "mars.example.org" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(A.ev[IKE_EV_AUTH_FAILED] == 1 && A.installs == 0, "the responder is not who A expects: AUTH_FAILED");
	teardown();

	setup(&(struct setup){ .ca = ca_pem, .cert_a = a_pem, .key_a = ka_pem, .cert_b = b_pem, .key_b = kb_pem,
		.id_a = "moon.example.org", .id_b = "mars.example.org" });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(A.ev[IKE_EV_AUTH_FAILED] == 1 && A.installs == 0, "an identity the certificate does not name: refused");
	teardown();

	/* A sends its chain (certificate and CA): IKE_AUTH outgrows 1280 bytes and goes in fragments. */
	{
		char *chain = malloc(strlen(a_pem) + strlen(ca_pem) + 1);
		size_t whole;

		strcpy(chain, a_pem);
		strcat(chain, ca_pem);
		setup(&(struct setup){ .ca = ca_pem, .cert_a = chain, .key_a = ka_pem, .cert_b = b_pem, .key_b = kb_pem });
		sent_total = 0;
		ike_initiate(A.e, now, 7);
		run_until(now + 100);
		whole = sent_total;
		CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && whole == 4, "a chain of two without fragmentation: 4 datagrams");
		teardown();
		setup(&(struct setup){ .ca = ca_pem, .cert_a = chain, .key_a = ka_pem, .cert_b = b_pem, .key_b = kb_pem,
			.frag = true });
		sent_total = 0;
		ike_initiate(A.e, now, 7);
		run_until(now + 100);
		CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&B, IKE_SA_ESTABLISHED) == 1 && children_pair() &&
		      sent_total > whole, "IKEV2_FRAGMENTATION_SUPPORTED: IKE_AUTH sent as SKF fragments (%zu datagrams), "
		      "reassembled", sent_total);
		teardown();
		free(chain);
	}

	/* B trusts another CA only. */
	{
		struct setup st = { .ca = ca_pem, .cert_a = a_pem, .key_a = ka_pem, .cert_b = b_pem, .key_b = kb_pem };
		struct ike_peer_conf p = { .id = 7, .auth = IKE_AUTH_PUBKEY, .cert_pem = b_pem, .key_pem = kb_pem,
			.ca_pem = other_pem };

		setup(&st);
		p.local = addr_of(&B, 500);
		p.remote = addr_of(&A, 500);
		CHECK_EQ(ike_peer_set(B.e, now, &p), 0, "B now trusts only another CA");
		ike_initiate(A.e, now, 7);
		run_until(now + 100);
		CHECK(B.ev[IKE_EV_AUTH_FAILED] == 1 && A.ev[IKE_EV_AUTH_FAILED] == 1 && B.installs == 0,
		      "unknown CA: AUTHENTICATION_FAILED");
		teardown();
	}
	free(ca_pem), free(other_pem), free(a_pem), free(b_pem), free(ka_pem), free(kb_pem);
	X509_free(ca), X509_free(other_ca), X509_free(a), X509_free(b);
	EVP_PKEY_free(ca_key), EVP_PKEY_free(ka), EVP_PKEY_free(kb), EVP_PKEY_free(k_other);
}

/* An initiator with identity id at side s, to B, with A's selectors; a fresh engine (a restarted host). */
static void initiator_as(struct side *s, const char *name, uint8_t last, const char *id)
{
	struct ike_peer_conf p = { .id = 7, .auth = IKE_AUTH_PSK, .psk = (const uint8_t *)"correct horse",
		.psk_len = 13 };

	side_init(s, name, last, (uint32_t)last << 28 | 1, &(struct setup){ 0 });
	s->rnd ^= (uint64_t)now;
	snprintf(p.name, sizeof p.name, "to-B");
	snprintf(p.local_id, sizeof p.local_id, "%s", id);
	p.local = addr_of(s, 500);
	p.remote = addr_of(&B, 500);
	CHECK_EQ(ike_peer_set(s->e, now, &p), 0, "%s: peer set as %s", name, id);
	policy_conf(s, ts4("192.0.2.0", "192.0.2.255"), ts4("203.0.113.0", "203.0.113.255"), NULL, false, false);
}

/* RFC 7296 2.4: INITIAL_CONTACT replaces the SAs between the same two identities, not every SA of a %any
 * responder's peer (before, each new road warrior dropped all the others: 1 of 300 SAs left in the bench). */
static void test_initial_contact(void)
{
	struct ike_peer_conf any = { .id = 7, .auth = IKE_AUTH_PSK, .psk = (const uint8_t *)"correct horse",
		.psk_len = 13 };
	struct ike_engine *old;

	setup(&(struct setup){ .id_a = "alice.example.org" });
	snprintf(any.name, sizeof any.name, "anyone");
	snprintf(any.remote_id, sizeof any.remote_id, "%%any");
	any.local = addr_of(&B, 500);
	CHECK_EQ(ike_peer_set(B.e, now, &any), 0, "B: a %%any responder peer");
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	initiator_as(&C, "C", 3, "carol.example.org");
	ike_initiate(C.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&C, IKE_SA_ESTABLISHED) == 1,
	      "alice and carol both have their IKE SA");
	CHECK(sa_count(&B, IKE_SA_ESTABLISHED) == 2 && B.ev[IKE_EV_SA_DOWN] == 0 && B.n_child == 2,
	      "B keeps both: carol's INITIAL_CONTACT did not drop alice's SA (%zu up, %d down)",
	      sa_count(&B, IKE_SA_ESTABLISHED), B.ev[IKE_EV_SA_DOWN]);
	/* alice restarts: a new engine with nothing in it, so its IKE_AUTH carries INITIAL_CONTACT */
	old = A.e;
	A.e = NULL;
	ike_engine_free(old);
	initiator_as(&A, "A", 1, "alice.example.org");
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(sa_count(&A, IKE_SA_ESTABLISHED) == 1 && sa_count(&B, IKE_SA_ESTABLISHED) == 2 &&
	      B.ev[IKE_EV_SA_DOWN] == 1,
	      "alice again: her old SA on B is replaced, carol's stays (%zu up, %d down)",
	      sa_count(&B, IKE_SA_ESTABLISHED), B.ev[IKE_EV_SA_DOWN]);
	CHECK(B.n_child == 2 && sa_count(&C, IKE_SA_ESTABLISHED) == 1, "B: one child each for alice and carol");
	ike_engine_free(C.e);
	C.e = NULL;
	teardown();
}

/* Two peers at one address: the initiator's IDi picks the one with its identity and secret (RFC 7296 2.15);
 * an identity no peer takes is refused with AUTHENTICATION_FAILED. */
static void test_peer_by_identity(void)
{
	struct ike_peer_conf carol = { .id = 8, .auth = IKE_AUTH_PSK, .psk = (const uint8_t *)"carol's own secret",
		.psk_len = 18 };
	struct ike_child_conf pol = { .id = 80, .peer_id = 8, .n_local_ts = 1, .n_remote_ts = 1, .lifetime_s = 3600 };
	struct ike_sa_info info[2];

	setup(&(struct setup){ .id_a = "carol.example.org", .psk_a = "carol's own secret" });
	snprintf(carol.name, sizeof carol.name, "carol");
	snprintf(carol.remote_id, sizeof carol.remote_id, "carol.example.org");
	carol.local = addr_of(&B, 500);
	carol.remote = addr_of(&A, 500);
	CHECK_EQ(ike_peer_set(B.e, now, &carol), 0, "B: a second peer at A's address, for carol");
	pol.local_ts[0] = ts4("203.0.113.0", "203.0.113.255");
	pol.remote_ts[0] = ts4("192.0.2.0", "192.0.2.255");
	CHECK_EQ(ike_child_set(B.e, now, &pol), 0, "B: carol's policy");
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(ike_sa_list(B.e, info, 2) == 1 && info[0].state == IKE_SA_ESTABLISHED && info[0].peer_id == 8 &&
	      !strcmp(info[0].remote_id, "carol.example.org") && sa_count(&A, IKE_SA_ESTABLISHED) == 1,
	      "B chose carol's peer by her IDi, and her secret verified (peer %u, '%s')", info[0].peer_id,
	      info[0].remote_id);
	CHECK(B.n_child == 1 && children_pair(), "carol's child SA is up");
	teardown();

	setup(&(struct setup){ .id_a = "mallory.example.org", .psk_a = "carol's own secret" });
	CHECK_EQ(ike_peer_set(B.e, now, &carol), 0, "B: carol's peer");
	snprintf(carol.remote_id, sizeof carol.remote_id, "alice.example.org");
	carol.id = 7;
	CHECK_EQ(ike_peer_set(B.e, now, &carol), 0, "B: peer 7 now only for alice");
	ike_initiate(A.e, now, 7);
	run_until(now + 5000);
	CHECK(ike_sa_list(B.e, NULL, 0) == 0 && ike_sa_list(A.e, NULL, 0) == 0 && A.ev[IKE_EV_AUTH_FAILED] == 1 &&
	      B.ev[IKE_EV_AUTH_FAILED] == 1, "an identity no peer at that address takes: AUTHENTICATION_FAILED");
	teardown();
}

/* B: carol's peer (id 8, her identity and secret) beside peer 7 at A's address, with ike proposals and a policy. */
static void carol_at_b(const char *ike, bool no_nat_t, bool force_encap, uint32_t ike_lifetime_s)
{
	struct ike_peer_conf carol = { .id = 8, .auth = IKE_AUTH_PSK, .psk = (const uint8_t *)"carol's own secret",
		.psk_len = 18, .no_nat_t = no_nat_t, .force_encap = force_encap, .ike_lifetime_s = ike_lifetime_s };
	struct ike_child_conf pol = { .id = 80, .peer_id = 8, .n_local_ts = 1, .n_remote_ts = 1, .lifetime_s = 3600 };
	char err[128];
	int n = ike_proposals_parse(ike, false, false, carol.ike, 8, err, sizeof err);

	CHECK(n > 0, "carol's IKE proposals '%s' (%s)", ike, err);
	carol.n_ike = n > 0 ? (size_t)n : 0;
	snprintf(carol.name, sizeof carol.name, "carol");
	snprintf(carol.remote_id, sizeof carol.remote_id, "carol.example.org");
	carol.local = addr_of(&B, 500);
	carol.remote = addr_of(&A, 500);
	CHECK_EQ(ike_peer_set(B.e, now, &carol), 0, "B: carol's peer beside peer 7 at A's address");
	pol.local_ts[0] = ts4("203.0.113.0", "203.0.113.255");
	pol.remote_ts[0] = ts4("192.0.2.0", "192.0.2.255");
	CHECK_EQ(ike_child_set(B.e, now, &pol), 0, "B: carol's policy");
}

/* carol's IKE_AUTH was refused: no IKE SA and no child anywhere, AUTHENTICATION_FAILED on both sides. */
static bool refused_for(const char *why)
{
	return ike_sa_list(A.e, NULL, 0) == 0 && ike_sa_list(B.e, NULL, 0) == 0 && A.ev[IKE_EV_AUTH_FAILED] == 1 &&
	       B.ev[IKE_EV_AUTH_FAILED] == 1 && A.installs == 0 && B.installs == 0 && strstr(B.last_text, why);
}

/* IKE_SA_INIT is answered with the settings of the peer found by address (7); IDi then picks carol's (8). What
 * IKE_SA_INIT chose must suit carol's peer too: else her strong suite would be reached over peer 7's weak one. */
static void test_peer_switch_init(void)
{
	const char *strong = "aes256gcm16-prfsha384-ecp384", *weak = "aes128-sha256-modp2048";
	struct ike_sa_info info[2];

	setup(&(struct setup){ .id_a = "carol.example.org", .psk_a = "carol's own secret", .ike_a = weak,
		.ike_b = "aes128-sha256-modp2048,aes256gcm16-prfsha384-ecp384" });
	carol_at_b(strong, false, false, 0);
	ike_initiate(A.e, now, 7);
	run_until(now + 5000);
	CHECK(refused_for("suite"), "carol's peer takes only %s: the weak suite peer 7 chose is refused with "
	      "AUTHENTICATION_FAILED, no SA (B: '%s', %zu SAs)", strong, B.last_text, ike_sa_list(B.e, NULL, 0));
	teardown();

	setup(&(struct setup){ .id_a = "carol.example.org", .psk_a = "carol's own secret", .ike_a = strong,
		.ike_b = "aes128-sha256-modp2048,aes256gcm16-prfsha384-ecp384" });
	carol_at_b(strong, false, false, 7200);
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(ike_sa_list(B.e, info, 2) == 1 && info[0].peer_id == 8 && !strcmp(info[0].algs, strong) &&
	      B.n_child == 1 && children_pair(), "a suite both peers allow: carol's SA comes up (%s, peer %u)",
	      info[0].algs, info[0].peer_id);
	CHECK(info[0].expire_at_ms - info[0].established_ms == 7200 * 1000ull,
	      "its lifetime is carol's peer's, not peer 7's default (%llu ms)",
	      (unsigned long long)(info[0].expire_at_ms - info[0].established_ms));
	teardown();

	/* A forces encapsulation (a NAT to B): carol's peer has NAT traversal off. */
	setup(&(struct setup){ .id_a = "carol.example.org", .psk_a = "carol's own secret", .force_encap = true });
	carol_at_b("aes256gcm16-prfsha256-curve25519", true, false, 0);
	ike_initiate(A.e, now, 7);
	run_until(now + 5000);
	CHECK(refused_for("NAT"), "carol's peer has nat_t off, the SA traverses a NAT: refused ('%s')", B.last_text);
	teardown();

	setup(&(struct setup){ .id_a = "carol.example.org", .psk_a = "carol's own secret" });
	carol_at_b("aes256gcm16-prfsha256-curve25519", false, true, 0);
	ike_initiate(A.e, now, 7);
	run_until(now + 5000);
	CHECK(refused_for("encapsulation"), "carol's peer forces UDP encapsulation, IKE_SA_INIT agreed plain: refused "
	      "('%s')", B.last_text);
	teardown();
}

/* The peer's NAT-T settings: nat_t off sends no NAT detection; nat_keepalive goes to its UDP child SAs. */
static void test_nat_options(void)
{
	static struct ike_msg m;

	setup(&(struct setup){ .force_encap = true, .nat_keepalive_s = 7 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && A.child[0].encap && A.child[0].nat_keepalive_s == 7 && B.child[0].nat_keepalive_s == 7,
	      "the peer's nat_keepalive reaches its UDP-encapsulated child SAs (%u)", A.child[0].nat_keepalive_s);
	teardown();

	setup(&(struct setup){ .nat_keepalive_s = 7 });
	ike_initiate(A.e, now, 7);
	run_until(now + 100);
	CHECK(children_pair() && !A.child[0].encap && !A.child[0].nat_keepalive_s, "no keepalive on plain ESP");
	teardown();

	setup(&(struct setup){ .no_nat_t = true });
	ike_initiate(A.e, now, 7);
	CHECK(q_len == 1 && ike_msg_decode(&m, q[0].data, q[0].len) == 0 && m.exchange == IKE_SA_INIT &&
	      !ike_msg_find(&m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_SOURCE_IP, 0) &&
	      !ike_msg_find(&m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_DESTINATION_IP, 0),
	      "nat_t off: IKE_SA_INIT carries no NAT_DETECTION notifies");
	run_until(now + 100);
	CHECK(children_pair() && !A.child[0].encap && !B.child[0].encap, "and the SAs come up as plain ESP");
	teardown();
}

/* The SA index is keyed with a PRF: SPIs a peer picks to differ only where a weak mix ignores them (the high bytes)
 * still spread over the buckets, and each SA is found in the chain of its SPI. */
static void test_index_spread(void)
{
	enum { N = 512 };
	static struct ike_sa sas[N];
	size_t longest = 0, found = 0;

	setup(&(struct setup){ 0 });
	for (size_t i = 0; i < N; i++) {
		sas[i] = (struct ike_sa){ .initiator = false };
		sas[i].spi_i[5] = (uint8_t)(i >> 8), sas[i].spi_i[6] = (uint8_t)i, sas[i].spi_i[7] = 0x5a;
		sas[i].spi_i[0] = 1;
		ike_sa_index(B.e, &sas[i]);
	}
	for (size_t b = 0; b <= B.e->idx[IKE_IDX_SPI_I].mask; b++) {
		size_t n = 0;

		for (struct ike_sa *sa = B.e->idx[IKE_IDX_SPI_I].b[b]; sa; sa = sa->idx_next[IKE_IDX_SPI_I])
			n++;
		longest = n > longest ? n : longest;
	}
	for (size_t i = 0; i < N; i++)
		for (struct ike_sa *sa = ike_sa_chain_spi_i(B.e, sas[i].spi_i); sa; sa = sa->idx_next[IKE_IDX_SPI_I])
			found += sa == &sas[i];
	CHECK(B.e->idx[IKE_IDX_SPI_I].n == N && longest <= 16 && found == N,
	      "%d SPIs differing only in their high bytes: the longest chain holds %zu of them, each found (%zu)", N,
	      longest, found);
	for (size_t i = 0; i < N; i++)
		ike_sa_unindex(B.e, &sas[i]);
	teardown();
}

/* The index hash is SipHash-2-4 (no OpenSSL call that could fail per message, or be missing in a FIPS-only
 * provider): the paper's test vector, and OpenSSL's SIPHASH under a random key for every length to 64 bytes and
 * every split of the key into two pieces, where OpenSSL has it. */
static void test_index_hash(void)
{
	uint8_t msg[64], key[16], out[8];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	size_t size = 8, n, bad = 0, tried = 0;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end() };
	uint64_t want;

	setup(&(struct setup){ 0 });
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)i;
	A.e->idx_key[0] = 0x0706050403020100ull, A.e->idx_key[1] = 0x0f0e0d0c0b0a0908ull;
	CHECK(ike_index_hash(A.e, msg, 15, NULL, 0) == 0xa129ca6149be45e5ull && ike_index_hash(A.e, msg, 8, msg + 8, 7) ==
	      0xa129ca6149be45e5ull, "SipHash-2-4 of 00..0e under key 00..0f: a129ca6149be45e5, in one piece or two");
	if (!ctx) {
		CHECK(1, "# SKIP OpenSSL has no SIPHASH here: compared with the test vector only");
	}
	for (size_t len = 0; ctx && len <= sizeof msg; len++) {
		RAND_bytes(key, sizeof key);
		RAND_bytes(msg, sizeof msg);
		A.e->idx_key[0] = A.e->idx_key[1] = 0;
		for (int i = 7; i >= 0; i--)    /* SipHash reads its key little-endian */
			A.e->idx_key[0] = A.e->idx_key[0] << 8 | key[i], A.e->idx_key[1] = A.e->idx_key[1] << 8 | key[8 + i];
		n = 0;
		if (EVP_MAC_init(ctx, key, sizeof key, params) != 1 || EVP_MAC_update(ctx, msg, len) != 1 ||
		    EVP_MAC_final(ctx, out, &n, sizeof out) != 1 || n != 8) {
			bad++;
			continue;
		}
		want = 0;
		for (int i = 7; i >= 0; i--)
			want = want << 8 | out[i];
		for (size_t cut = 0; cut <= len; cut++, tried++)
			bad += ike_index_hash(A.e, msg, cut, msg + cut, len - cut) != want;
	}
	if (ctx)
		CHECK(bad == 0 && tried > 0, "the index hash equals OpenSSL's SIPHASH (%zu of %zu differ)", bad, tried);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	teardown();
}

int main(int argc, char **argv)
{
	verbose = argc > 1 && !strcmp(argv[1], "-v");
	test_proposals();
	test_index_hash();
	test_index_spread();
	test_basic();
	test_start_always();
	test_lost_and_duplicated();
	test_failures();
	test_negotiation();
	test_child_algorithms();
	test_ah();
	test_dpd();
	test_cookies();
	test_initial_contact();
	test_peer_by_identity();
	test_peer_switch_init();
	test_nat_options();
	test_create_child();
	test_ike_rekey();
	test_clone();
	test_bundle();
	test_forged_rekey();
	test_certificates();
	return check_done();
}
