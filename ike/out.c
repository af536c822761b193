/* out.c: building, encrypting, sending and keeping outgoing messages; the debug trace of messages in and out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "engine.h"

void ike_trace(struct ike_engine *e, const char *dir, const struct ike_msg *m, const struct ike_addr *peer)
{
	static char text[16384];
	char addr[64] = "?";

	if (!ike_log_on(e, 7))
		return;
	if (peer && peer->family)
		inet_ntop(peer->family == 4 ? AF_INET : AF_INET6, peer->addr, addr, sizeof addr);
	ike_msg_dump(m, text, sizeof text);
	ike_log(e, 7, "%s %s:%u %s #%u\n%s", dir, addr, peer ? peer->port : 0, ike_exchange_name(m->exchange) ?
		ike_exchange_name(m->exchange) : "?", m->msg_id, text);
}

static void msg_header(struct ike_msg *m, const struct ike_sa *sa, uint8_t exchange, bool response,
	uint32_t msg_id)
{
	memset(m, 0, sizeof *m);
	memcpy(m->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(m->spi_r, sa->spi_r, IKE_SPI_LEN);
	m->version = 0x20;
	m->exchange = exchange;
	m->flags = (uint8_t)((sa->initiator ? IKE_FLAG_I : 0) | (response ? IKE_FLAG_R : 0));
	m->msg_id = msg_id;
}

void ike_out_begin(struct ike_engine *e, const struct ike_sa *sa, uint8_t exchange, bool response, uint32_t msg_id)
{
	msg_header(&e->out, sa, exchange, response, msg_id);
	msg_header(&e->inner, sa, exchange, response, msg_id);
}

struct ike_payload *ike_out_notify(struct ike_msg *m, uint16_t type, uint8_t proto, const uint8_t *spi,
	size_t spi_len, const uint8_t *data, size_t len)
{
	struct ike_payload *pl = ike_msg_add(m, IKE_PL_NOTIFY);

	if (pl)
		pl->u.notify = (struct ike_notify){ .protocol = proto, .type = type, .spi = { spi, (uint32_t)spi_len },
			.data = { data, (uint32_t)len } };
	return pl;
}

/* RFC 7383: the largest IKE message a fragment may be on this path. */
static size_t frag_max(const struct ike_sa *sa)
{
	return IKE_FRAG_MSG_MAX - (sa->remote.family == 4 ? 20 : 40) - 8 - (sa->remote.port == 4500 ? 4 : 0);
}

/* The encrypted message as fragments into e->buf; their count, or negative. */
static int fragment(struct ike_engine *e, struct ike_sa *sa, size_t plain_len, uint16_t *frag_len)
{
	size_t lens[IKE_FRAG_SEND_MAX];
	uint8_t hdr[IKE_HDR_LEN];
	int n;

	e->out.n_payloads = 0;
	if (ike_msg_encode(&e->out, hdr, sizeof hdr) != IKE_HDR_LEN)
		return -IKE_E_NOSPACE;
	n = ike_frag_split(sa->sk_out, hdr, e->inner.n_payloads ? e->inner.payloads[0].type : 0, e->plain, plain_len,
		frag_max(sa), e->buf, sizeof e->buf, lens, IKE_FRAG_SEND_MAX);
	for (int i = 0; i < n; i++)
		frag_len[i] = (uint16_t)lens[i];
	return n;
}

/* Returns the total length; *n_frags is 0 for one datagram. */
static int encode(struct ike_engine *e, struct ike_sa *sa, bool sk, uint16_t *frag_len, uint8_t *n_frags)
{
	int len, plain_len = 0;
	struct ike_payload *pl;

	*n_frags = 0;
	if (!sk)
		return ike_msg_encode(&e->out, e->buf, sizeof e->buf);
	if (e->inner.n_payloads)
		plain_len = ike_payloads_encode(e->inner.payloads, e->inner.n_payloads, e->plain, sizeof e->plain);
	if (plain_len < 0)
		return plain_len;
	if (sa->peer_frag && e->out.exchange != IKE_SA_INIT &&
	    IKE_HDR_LEN + 4 + ike_sk_overhead(sa->sk_out, (size_t)plain_len) + (size_t)plain_len > frag_max(sa)) {
		int n = fragment(e, sa, (size_t)plain_len, frag_len), total = 0;

		if (n < 0)
			return n;
		*n_frags = (uint8_t)n;
		for (int i = 0; i < n; i++)
			total += frag_len[i];
		return total;
	}
	pl = ike_msg_add(&e->out, IKE_PL_SK);
	if (!pl)
		return -IKE_E_TOO_MANY;
	pl->u.sk.next_inner = e->inner.n_payloads ? e->inner.payloads[0].type : 0;
	len = ike_msg_encode(&e->out, e->buf, sizeof e->buf);
	if (len < 0)
		return len;
	len = ike_sk_encrypt(sa->sk_out, e->buf, sizeof e->buf, (size_t)len - IKE_GENERIC_HDR_LEN, e->plain,
		(size_t)plain_len);
	return len < 0 ? -IKE_E_CRYPTO : len;
}

static int keep(uint8_t **buf, size_t *cap, const uint8_t *msg, size_t len)
{
	if (*cap < len) {
		uint8_t *grown = realloc(*buf, len);

		if (!grown)
			return -IKE_E_NOMEM;
		*buf = grown;
		*cap = len;
	}
	memcpy(*buf, msg, len);
	return 0;
}

static void send_datagrams(struct ike_engine *e, struct ike_sa *sa, const uint8_t *buf, size_t len,
	const uint16_t *frag_len, size_t n_frags)
{
	if (!n_frags) {
		e->cb.send(e->cb.ctx, &sa->local, &sa->remote, buf, len);
		return;
	}
	for (size_t i = 0; i < n_frags; buf += frag_len[i], i++)
		e->cb.send(e->cb.ctx, &sa->local, &sa->remote, buf, frag_len[i]);
}

int ike_out_send(struct ike_engine *e, struct ike_sa *sa, uint64_t now_ms, bool sk, uint8_t req_kind)
{
	bool response = e->out.flags & IKE_FLAG_R;
	uint16_t frag_len[IKE_FRAG_SEND_MAX];
	uint8_t n_frags;
	int len, rc;

	if (e->out_hook)
		e->out_hook(e->out_hook_ctx, &e->out, &e->inner);
	len = encode(e, sa, sk, frag_len, &n_frags);

	if (len < 0) {
		ike_log(e, 3, "IKE SA %llu: cannot build %s: %s", (unsigned long long)sa->id,
			ike_exchange_name(e->out.exchange), ike_strerror(len));
		return len;
	}
	ike_trace(e, sk ? "send (decrypted)" : "send", sk ? &e->inner : &e->out, &sa->remote);
	if (response) {
		rc = keep(&sa->resp, &sa->resp_cap, e->buf, (size_t)len);
		sa->resp_len = rc ? 0 : (size_t)len;
		sa->have_resp = !rc;
		sa->resp_n_frags = n_frags;
		memcpy(sa->resp_frag_len, frag_len, sizeof frag_len);
	} else {
		rc = keep(&sa->req.buf, &sa->req.cap, e->buf, (size_t)len);
		if (rc)
			return rc;
		sa->req.len = (size_t)len;
		sa->req.n_frags = n_frags;
		memcpy(sa->req.frag_len, frag_len, sizeof frag_len);
		sa->req.kind = req_kind;
		sa->req.msg_id = e->out.msg_id;
		sa->req.tries = 0;
		/* a dead peer should be noticed soon after dpd_interval, not after the whole back-off */
		sa->req.next_ms = now_ms + (req_kind == REQ_DPD ? ike_dpd_step_ms(e, sa) :
						e->conf.retransmit_base_ms);
	}
	if (n_frags)
		ike_log(e, 7, "IKE SA %llu: sent as %u fragments", (unsigned long long)sa->id, n_frags);
	send_datagrams(e, sa, e->buf, (size_t)len, frag_len, n_frags);
	return 0;
}

void ike_out_resend(struct ike_engine *e, struct ike_sa *sa, const uint8_t *buf, size_t len,
	const uint16_t *frag_len, size_t n_frags)
{
	ike_log(e, 7, "IKE SA %llu: resending %zu bytes", (unsigned long long)sa->id, len);
	send_datagrams(e, sa, buf, len, frag_len, n_frags);
}

void ike_out_send_stateless(struct ike_engine *e, const struct ike_addr *src, const struct ike_addr *dst)
{
	int len = ike_msg_encode(&e->out, e->buf, sizeof e->buf);

	if (len < 0)
		return;
	ike_trace(e, "send", &e->out, dst);
	e->cb.send(e->cb.ctx, src, dst, e->buf, (size_t)len);
}
