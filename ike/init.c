/* init.c: IKE_SA_INIT as initiator and responder: proposals, key exchange, nonces, NAT detection, cookies. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "sa.h"

/* NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | port). */
static void nat_hash(const uint8_t *spi_i, const uint8_t *spi_r, const struct ike_addr *a, uint8_t out[20])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t port[2] = { (uint8_t)(a->port >> 8), (uint8_t)a->port };
	unsigned int len = 20;

	memset(out, 0, 20);
	if (!ctx)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(ctx, spi_i, 8) == 1 &&
	    EVP_DigestUpdate(ctx, spi_r, 8) == 1 && EVP_DigestUpdate(ctx, a->addr, a->family == 4 ? 4 : 16) == 1 &&
	    EVP_DigestUpdate(ctx, port, 2) == 1)
		EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
}

static uint8_t nat_src[20], nat_dst[20];

/* Our NAT_D notifies. force_encap sends a source hash that cannot match, as strongSwan does, so both sides float. */
static void add_nat_notifies(struct ike_msg *m, const struct ike_sa *sa, bool force)
{
	nat_hash(m->spi_i, m->spi_r, &sa->local, nat_src);
	if (force)
		nat_src[0] ^= 0xff;
	nat_hash(m->spi_i, m->spi_r, &sa->remote, nat_dst);
	ike_out_notify(m, IKE_N_NAT_DETECTION_SOURCE_IP, 0, NULL, 0, nat_src, 20);
	ike_out_notify(m, IKE_N_NAT_DETECTION_DESTINATION_IP, 0, NULL, 0, nat_dst, 20);
}

/* Compares the peer's NAT_D hashes with the addresses the datagram really had. */
static void detect_nat(struct ike_engine *e, struct ike_sa *sa, const struct ike_msg *m, const struct ike_addr *src,
	const struct ike_addr *dst)
{
	const struct ike_payload *d = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_DESTINATION_IP, 0);
	uint8_t h[20];
	bool src_match = false;

	if (!d && !ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_SOURCE_IP, 0))
		return;
	nat_hash(m->spi_i, m->spi_r, src, h);
	for (const struct ike_payload *s = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_SOURCE_IP, 0); s;
	     s = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_NAT_DETECTION_SOURCE_IP, (size_t)(s - m->payloads) + 1))
		src_match |= s->u.notify.data.len == 20 && memcmp(s->u.notify.data.p, h, 20) == 0;
	nat_hash(m->spi_i, m->spi_r, dst, h);
	sa->nat_remote = !src_match;
	sa->nat_local = !d || d->u.notify.data.len != 20 || memcmp(d->u.notify.data.p, h, 20) != 0;
	if (sa->nat_local || sa->nat_remote)
		ike_log(e, 6, "IKE SA %llu: NAT detected (%s%s)", (unsigned long long)sa->id,
			sa->nat_local ? "we are behind one" : "",
			!sa->nat_remote ? "" : sa->nat_local ? ", the peer is behind one" : "the peer is behind one");
}

static int keep_copy(uint8_t **dst, size_t *dst_len, const uint8_t *src, size_t len)
{
	free(*dst);
	*dst = malloc(len ? len : 1);
	if (!*dst)
		return -IKE_E_NOMEM;
	memcpy(*dst, src, len);
	*dst_len = len;
	return 0;
}

/* SKEYSEED and SK_* from the peer's KE, then the SK cipher states. */
static int derive_keys(struct ike_sa *sa, const struct ike_ke *ke)
{
	uint8_t gir[IKE_DH_PUB_MAX], skeyseed[IKE_PRF_MAX];
	int gl, sl, rc;

	gl = ike_dh_shared(sa->dh, ke->data.p, ke->data.len, gir, sizeof gir);
	if (gl < 0)
		return -IKE_E_INVALID_SYNTAX;
	sl = ike_skeyseed(sa->suite.prf, sa->ni, sa->ni_len, sa->nr, sa->nr_len, gir, (size_t)gl, skeyseed);
	rc = sl < 0 ? -IKE_E_CRYPTO : ike_sa_keys_derive(&sa->suite, skeyseed, (size_t)sl, sa->ni, sa->ni_len,
		sa->nr, sa->nr_len, sa->spi_i, sa->spi_r, &sa->keys);
	if (rc == 0)
		rc = ike_sk_pair_new(&sa->suite, &sa->keys, sa->initiator, &sa->sk_out, &sa->sk_in);
	OPENSSL_cleanse(gir, sizeof gir);
	OPENSSL_cleanse(skeyseed, sizeof skeyseed);
	ike_dh_free(sa->dh);
	sa->dh = NULL;
	return rc < 0 ? -IKE_E_CRYPTO : 0;
}

void ike_random_spi(struct ike_engine *e, uint8_t spi[IKE_SPI_LEN])
{
	static const uint8_t zero[IKE_SPI_LEN];
	uint8_t fresh[IKE_SPI_LEN];

	do
		ike_random(e, fresh, IKE_SPI_LEN);
	while (memcmp(fresh, zero, IKE_SPI_LEN) == 0 || ike_sa_by_our_spi(e, fresh));
	memcpy(spi, fresh, IKE_SPI_LEN);
}

/* A rekeyed IKE SA's keys: SKEYSEED = prf_old(SK_d_old, g^ir | Ni | Nr), then SK_* with the new SPIs. */
int ike_rekey_keys(struct ike_sa *old, struct ike_sa *sa, const uint8_t *gir, size_t gir_len)
{
	uint8_t skeyseed[IKE_PRF_MAX];
	int sl, rc;

	sl = ike_skeyseed_rekey(old->suite.prf, old->keys.sk_d, old->keys.prf_len, gir, gir_len, sa->ni, sa->ni_len,
		sa->nr, sa->nr_len, skeyseed);
	rc = sl < 0 ? sl : ike_sa_keys_derive(&sa->suite, skeyseed, (size_t)sl, sa->ni, sa->ni_len, sa->nr, sa->nr_len,
		sa->spi_i, sa->spi_r, &sa->keys);
	if (rc == 0)
		rc = ike_sk_pair_new(&sa->suite, &sa->keys, sa->initiator, &sa->sk_out, &sa->sk_in);
	OPENSSL_cleanse(skeyseed, sizeof skeyseed);
	return rc < 0 ? -IKE_E_CRYPTO : 0;
}

/* Certificate authentication: our SIGNATURE_HASH_ALGORITHMS and, when asked, a CERTREQ naming our CAs. */
void ike_init_auth_notifies(struct ike_engine *e, const struct ike_peer *p, bool certreq)
{
	static uint8_t hashes[16], cas[20 * 64];
	int n;

	if (p->conf.auth != IKE_AUTH_PUBKEY)
		return;
	n = ike_sighash_notify(hashes, sizeof hashes);
	if (n > 0 && !certreq)
		ike_out_notify(&e->out, IKE_N_SIGNATURE_HASH_ALGORITHMS, 0, NULL, 0, hashes, (size_t)n);
	n = certreq && p->cas ? ike_castore_certreq(p->cas, cas, sizeof cas) : -1;
	if (n >= 0)
		ike_msg_add(certreq ? &e->inner : &e->out, IKE_PL_CERTREQ)->u.cert =
			(struct ike_cert){ IKE_CERT_X509_SIG, { cas, (uint32_t)n } };
}

static uint32_t peer_hashes(const struct ike_msg *m)
{
	const struct ike_payload *n = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_SIGNATURE_HASH_ALGORITHMS, 0);

	return n ? ike_sighash_parse(n->u.notify.data.p, n->u.notify.data.len) : 0;
}

/* ---- initiator ---- */

int ike_init_start(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	uint8_t ke[IKE_DH_PUB_MAX];
	int kl;

	if (!p)
		return -IKE_E_NOT_FOUND;
	static const uint8_t zero[IKE_SPI_LEN];

	if (!memcmp(sa->spi_i, zero, IKE_SPI_LEN))
		ike_random_spi(e, sa->spi_i);
	memset(sa->spi_r, 0, IKE_SPI_LEN);
	ike_sa_index(e, sa);
	if (!sa->dh_group)
		sa->dh_group = ike_proposals_first_dh(p->conf.ike, p->conf.n_ike, false);
	if (!sa->dh && ike_dh_new(sa->dh_group, p->conf.legacy_groups, &sa->dh) < 0)
		return -IKE_E_NOT_SUPPORTED;
	if (!sa->ni_len) {
		sa->ni_len = IKE_NONCE_LEN;
		ike_random(e, sa->ni, sa->ni_len);
	}
	kl = ike_dh_public(sa->dh, ke, sizeof ke);
	if (kl < 0)
		return -IKE_E_CRYPTO;
	ike_out_begin(e, sa, IKE_SA_INIT, false, 0);
	if (sa->cookie_len)
		ike_out_notify(&e->out, IKE_N_COOKIE, 0, NULL, 0, sa->cookie, sa->cookie_len);
	ike_sa_payload_add(&e->out, p->conf.ike, p->conf.n_ike, IKE_PROTO_IKE, NULL, 0, true);
	ike_msg_add(&e->out, IKE_PL_KE)->u.ke = (struct ike_ke){ sa->dh_group, { ke, (uint32_t)kl } };
	ike_msg_add(&e->out, IKE_PL_NONCE)->u.nonce = (struct ike_span){ sa->ni, (uint32_t)sa->ni_len };
	if (!p->conf.no_nat_t || p->conf.force_encap)
		add_nat_notifies(&e->out, sa, p->conf.force_encap);
	if (p->conf.fragmentation)
		ike_out_notify(&e->out, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED, 0, NULL, 0, NULL, 0);
	ike_init_auth_notifies(e, p, false);
	sa->state = IKE_SA_CONNECTING;
	sa->next_msg_id = 1;
	return ike_out_send(e, sa, now_ms, false, REQ_INIT);
}

/* Error notifies and retries (COOKIE, INVALID_KE_PAYLOAD). True when the response was one of those. */
static bool init_response_notify(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	const struct ike_msg *m = &e->msg;
	const struct ike_peer *p = ike_sa_peer(e, sa);
	const struct ike_payload *n = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_COOKIE, 0);

	if (n && n->u.notify.data.len >= 1 && n->u.notify.data.len <= sizeof sa->cookie && !sa->cookie_len) {
		memcpy(sa->cookie, n->u.notify.data.p, n->u.notify.data.len);
		sa->cookie_len = n->u.notify.data.len;
		ike_req_done(sa);
		if (ike_init_start(e, now_ms, sa) < 0)
			ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, "cannot retry with the cookie");
		return true;
	}
	n = ike_msg_find(m, IKE_PL_NOTIFY, IKE_N_INVALID_KE_PAYLOAD, 0);
	if (n && n->u.notify.data.len == 2) {
		uint16_t g = (uint16_t)(n->u.notify.data.p[0] << 8 | n->u.notify.data.p[1]);

		if (g == sa->dh_group || !ike_proposals_have_dh(p->conf.ike, p->conf.n_ike, g)) {
			ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, "INVALID_KE_PAYLOAD for a group we do not offer");
			return true;
		}
		ike_log(e, 6, "IKE SA %llu: peer wants DH group %u, retrying", (unsigned long long)sa->id, g);
		ike_dh_free(sa->dh);
		sa->dh = NULL;
		sa->dh_group = g;
		ike_req_done(sa);
		if (ike_init_start(e, now_ms, sa) < 0)
			ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, "cannot retry with the peer's group");
		return true;
	}
	for (size_t i = 0; i < m->n_payloads; i++) {
		const struct ike_payload *pl = &m->payloads[i];

		if (pl->type == IKE_PL_NOTIFY && pl->u.notify.type < 16384) {
			const char *name = ike_notify_name(pl->u.notify.type);

			ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, name ? name : "error notify");
			return true;
		}
	}
	return false;
}

static int init_response_accept(struct ike_engine *e, struct ike_sa *sa, const uint8_t *raw, size_t len)
{
	const struct ike_msg *m = &e->msg;
	const struct ike_peer *p = ike_sa_peer(e, sa);
	const struct ike_payload *ke = ike_msg_find(m, IKE_PL_KE, 0, 0), *nr = ike_msg_find(m, IKE_PL_NONCE, 0, 0);
	static const uint8_t zero[IKE_SPI_LEN];
	struct ike_choice c;
	int rc;

	rc = ike_proposal_accept(m, p->conf.ike, p->conf.n_ike, IKE_PROTO_IKE, p->conf.legacy_groups, true, &c);
	if (rc < 0)
		return rc;
	if (!ke || !nr || ke->u.ke.group != sa->dh_group || c.dh != sa->dh_group || !memcmp(m->spi_r, zero, 8) ||
	    nr->u.nonce.len < IKE_NONCE_MIN || nr->u.nonce.len > IKE_NONCE_MAX)
		return -IKE_E_INVALID_SYNTAX;
	sa->suite = c.suite;
	memcpy(sa->spi_r, m->spi_r, IKE_SPI_LEN);
	memcpy(sa->nr, nr->u.nonce.p, nr->u.nonce.len);
	sa->nr_len = nr->u.nonce.len;
	rc = derive_keys(sa, &ke->u.ke);
	if (rc == 0)
		rc = keep_copy(&sa->init_req, &sa->init_req_len, sa->req.buf, sa->req.len);
	if (rc == 0)
		rc = keep_copy(&sa->init_resp, &sa->init_resp_len, raw, len);
	return rc;
}

void ike_init_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const uint8_t *raw, size_t len)
{
	const struct ike_peer *p = ike_sa_peer(e, sa);
	int rc;

	ike_trace(e, "recv", &e->msg, &sa->remote);
	if (!p || init_response_notify(e, now_ms, sa))
		return;
	rc = init_response_accept(e, sa, raw, len);
	if (rc < 0) {
		ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, ike_strerror(rc));
		return;
	}
	if (!p->conf.no_nat_t)
		detect_nat(e, sa, &e->msg, &sa->remote, &sa->local);
	sa->peer_frag = ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED, 0) &&
		p->conf.fragmentation;
	sa->peer_hashes = peer_hashes(&e->msg);
	if (sa->nat_local || sa->nat_remote || p->conf.force_encap) {
		sa->encap = true;
		sa->local.port = 4500;
		sa->remote.port = 4500;
	}
	ike_req_done(sa);
	sa->state = IKE_SA_AUTHENTICATING;
	if (ike_auth_start(e, now_ms, sa) < 0)
		ike_sa_fail(e, now_ms, sa, IKE_EV_NEGOTIATION_FAILED, "cannot build IKE_AUTH");
}

/* ---- responder ---- */

static void init_error(struct ike_engine *e, const struct ike_addr *src, const struct ike_addr *dst, uint16_t type,
	const uint8_t *data, size_t len)
{
	struct ike_sa tmp = { .initiator = false };

	memcpy(tmp.spi_i, e->msg.spi_i, IKE_SPI_LEN);
	ike_out_begin(e, &tmp, IKE_SA_INIT, true, 0);
	ike_out_notify(&e->out, type, 0, NULL, 0, data, len);
	ike_out_send_stateless(e, dst, src);
}

static const struct ike_peer *peer_for(struct ike_engine *e, const struct ike_addr *src, const struct ike_addr *dst)
{
	const struct ike_peer *any = NULL;

	for (size_t i = 0; i < e->n_peers; i++) {
		const struct ike_peer_conf *c = &e->peers[i].conf;

		if (!ike_addr_same(&c->local, dst))
			continue;
		if (ike_addr_same(&c->remote, src))
			return &e->peers[i];
		if (!c->remote.family && !any)
			any = &e->peers[i];
	}
	return any;
}

/* RFC 7296 2.6: Cookie = version | SHA-256(Ni | IPi | SPIi | secret). */
static void make_cookie(struct ike_engine *e, const struct ike_span *ni, const struct ike_addr *src,
	const uint8_t *spi_i, uint8_t out[33])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 32;

	memset(out, 0, 33);
	if (!ctx)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, ni->p, ni->len) == 1 &&
	    EVP_DigestUpdate(ctx, src->addr, src->family == 4 ? 4 : 16) == 1 &&
	    EVP_DigestUpdate(ctx, spi_i, 8) == 1 &&
	    EVP_DigestUpdate(ctx, e->cookie_secret, sizeof e->cookie_secret) == 1)
		EVP_DigestFinal_ex(ctx, out + 1, &len);
	EVP_MD_CTX_free(ctx);
}

/* Under load a request must carry our cookie; false when it did not (we answered with one). */
static bool cookie_ok(struct ike_engine *e, const struct ike_addr *src, const struct ike_addr *dst,
	const struct ike_span *ni)
{
	const struct ike_payload *n;
	uint8_t want[33];

	if (e->n_half_open < e->conf.half_open_cookie_threshold)
		return true;
	make_cookie(e, ni, src, e->msg.spi_i, want);
	n = ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_COOKIE, 0);
	if (n && n->u.notify.data.len == sizeof want && CRYPTO_memcmp(n->u.notify.data.p, want, sizeof want) == 0)
		return true;
	init_error(e, src, dst, IKE_N_COOKIE, want, sizeof want);
	return false;
}

static struct ike_sa *duplicate_init(struct ike_engine *e, const struct ike_addr *src)
{
	for (struct ike_sa *sa = ike_sa_chain_spi_i(e, e->msg.spi_i); sa; sa = sa->idx_next[IKE_IDX_SPI_I])
		if (!sa->initiator && !memcmp(sa->spi_i, e->msg.spi_i, IKE_SPI_LEN) &&
		    !memcmp(sa->remote.addr, src->addr, 16) && sa->init_req)
			return sa;
	return NULL;
}

/* Our IKE_SA_INIT response; ke is our public value (computed before derive_keys freed the DH state). */
static int init_respond(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_peer *p,
	const struct ike_choice *c, const uint8_t *ke, size_t kl)
{
	ike_out_begin(e, sa, IKE_SA_INIT, true, 0);
	ike_choice_add(&e->out, c, IKE_PROTO_IKE, NULL, 0);
	ike_msg_add(&e->out, IKE_PL_KE)->u.ke = (struct ike_ke){ sa->dh_group, { ke, (uint32_t)kl } };
	ike_msg_add(&e->out, IKE_PL_NONCE)->u.nonce = (struct ike_span){ sa->nr, (uint32_t)sa->nr_len };
	if (!p->conf.no_nat_t || p->conf.force_encap)
		add_nat_notifies(&e->out, sa, p->conf.force_encap);
	if (sa->peer_frag)
		ike_out_notify(&e->out, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED, 0, NULL, 0, NULL, 0);
	ike_init_auth_notifies(e, p, false);
	if (p->conf.auth == IKE_AUTH_PUBKEY && p->cas) {
		static uint8_t cas[20 * 64];
		int n = ike_castore_certreq(p->cas, cas, sizeof cas);

		if (n >= 0)
			ike_msg_add(&e->out, IKE_PL_CERTREQ)->u.cert =
				(struct ike_cert){ IKE_CERT_X509_SIG, { cas, (uint32_t)n } };
	}
	return ike_out_send(e, sa, now_ms, false, REQ_NONE);
}

/* Proposal, KE group and nonce of a request; a notify type to answer with, or 0 when acceptable. */
static uint16_t init_request_check(struct ike_engine *e, const struct ike_peer *p, struct ike_choice *c,
	const struct ike_payload **ke, const struct ike_payload **ni)
{
	const struct ike_msg *m = &e->msg;
	static const uint8_t zero[IKE_SPI_LEN];

	*ke = ike_msg_find(m, IKE_PL_KE, 0, 0);
	*ni = ike_msg_find(m, IKE_PL_NONCE, 0, 0);
	if (!*ke || !*ni || (*ni)->u.nonce.len < IKE_NONCE_MIN || (*ni)->u.nonce.len > IKE_NONCE_MAX ||
	    m->msg_id != 0 || !(m->flags & IKE_FLAG_I) || memcmp(m->spi_r, zero, 8) || !memcmp(m->spi_i, zero, 8))
		return IKE_N_INVALID_SYNTAX;
	if (ike_proposal_choose(m, p->conf.ike, p->conf.n_ike, IKE_PROTO_IKE, p->conf.legacy_groups, true, c) < 0)
		return IKE_N_NO_PROPOSAL_CHOSEN;
	if ((*ke)->u.ke.group != c->dh)
		return IKE_N_INVALID_KE_PAYLOAD;
	return 0;
}

static struct ike_sa *responder_sa(struct ike_engine *e, uint64_t now_ms, const struct ike_peer *p,
	const struct ike_choice *c, const struct ike_addr *src, const struct ike_addr *dst, const struct ike_span *ni)
{
	struct ike_sa *sa = ike_sa_new(e, now_ms, p, false);

	if (!sa)
		return NULL;
	memcpy(sa->spi_i, e->msg.spi_i, IKE_SPI_LEN);
	ike_random_spi(e, sa->spi_r);
	ike_sa_index(e, sa);
	sa->local = *dst;
	sa->remote = *src;
	sa->suite = c->suite;
	sa->dh_group = c->dh;
	memcpy(sa->ni, ni->p, ni->len);
	sa->ni_len = ni->len;
	sa->nr_len = IKE_NONCE_LEN;
	ike_random(e, sa->nr, sa->nr_len);
	sa->half_open = true;
	e->n_half_open++;
	sa->state = IKE_SA_AUTHENTICATING;
	sa->peer_msg_id = 1;
	sa->next_msg_id = 0;
	sa->delete_at_ms = now_ms + IKE_HALF_OPEN_MS;
	return sa;
}

static int init_request_sa(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_peer *p,
	const struct ike_choice *c, const struct ike_ke *peer_ke, const uint8_t *raw, size_t len)
{
	uint8_t ke[IKE_DH_PUB_MAX];
	int kl, rc;

	if (ike_dh_new(sa->dh_group, p->conf.legacy_groups, &sa->dh) < 0)
		return -IKE_E_CRYPTO;
	kl = ike_dh_public(sa->dh, ke, sizeof ke);
	if (kl < 0)
		return -IKE_E_CRYPTO;
	rc = derive_keys(sa, peer_ke);
	if (rc < 0)
		return rc;
	if (!p->conf.no_nat_t)
		detect_nat(e, sa, &e->msg, &sa->remote, &sa->local);
	sa->peer_frag = p->conf.fragmentation &&
		ike_msg_find(&e->msg, IKE_PL_NOTIFY, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED, 0);
	sa->peer_hashes = peer_hashes(&e->msg);
	sa->encap = sa->nat_local || sa->nat_remote || p->conf.force_encap || sa->local.port == 4500;
	rc = keep_copy(&sa->init_req, &sa->init_req_len, raw, len);
	if (rc == 0)
		rc = init_respond(e, now_ms, sa, p, c, ke, (size_t)kl);
	if (rc == 0)
		rc = keep_copy(&sa->init_resp, &sa->init_resp_len, sa->resp, sa->resp_len);
	return rc;
}

void ike_init_request(struct ike_engine *e, uint64_t now_ms, const struct ike_addr *src, const struct ike_addr *dst,
	const uint8_t *raw, size_t len)
{
	const struct ike_payload *ke, *ni;
	const struct ike_peer *p;
	struct ike_choice c;
	struct ike_sa *sa;
	uint16_t err;

	ike_trace(e, "recv", &e->msg, src);
	sa = duplicate_init(e, src);
	if (sa) {
		if (sa->have_resp && sa->peer_msg_id == 1)
			ike_out_resend(e, sa, sa->resp, sa->resp_len, NULL, 0);
		return;
	}
	p = peer_for(e, src, dst);
	if (!p || e->n_half_open >= e->conf.max_half_open) {
		ike_log(e, 6, "IKE_SA_INIT from port %u: %s, dropped", src->port, p ? "too many half-open SAs" :
			"no peer configured for this address");
		return;
	}
	err = init_request_check(e, p, &c, &ke, &ni);
	if (err == IKE_N_INVALID_KE_PAYLOAD) {
		uint8_t g[2] = { (uint8_t)(c.dh >> 8), (uint8_t)c.dh };

		init_error(e, src, dst, err, g, 2);
		return;
	}
	if (err) {
		ike_emit(e, IKE_EV_NEGOTIATION_FAILED, NULL, 0, 0, 0, ike_notify_name(err));
		init_error(e, src, dst, err, NULL, 0);
		return;
	}
	if (!cookie_ok(e, src, dst, &ni->u.nonce))
		return;
	sa = responder_sa(e, now_ms, p, &c, src, dst, &ni->u.nonce);
	if (!sa)
		return;
	if (init_request_sa(e, now_ms, sa, p, &c, &ke->u.ke, raw, len) < 0) {
		ike_log(e, 6, "IKE_SA_INIT from port %u: key exchange failed", src->port);
		ike_sa_free(e, sa);
	}
}
