/* input.c: ike_input: decode, find the IKE SA, check message IDs (resending cached responses), decrypt, dispatch. */
#include <string.h>

#include "engine.h"

static struct ike_sa *lookup(struct ike_engine *e, const struct ike_msg *m)
{
	bool from_initiator = m->flags & IKE_FLAG_I;
	struct ike_sa *sa = ike_sa_by_our_spi(e, from_initiator ? m->spi_r : m->spi_i);

	/* The I flag names the original initiator: it must be the other side. */
	if (!sa || sa->initiator == from_initiator)
		return NULL;
	if (memcmp(from_initiator ? sa->spi_i : sa->spi_r, from_initiator ? m->spi_i : m->spi_r, IKE_SPI_LEN))
		return NULL;
	return sa;
}

/* Window size 1: the peer's next request, or a retransmission of the last one (answered from the cache). */
static bool request_fresh(struct ike_engine *e, struct ike_sa *sa, const struct ike_msg *m)
{
	if (m->msg_id == sa->peer_msg_id)
		return true;
	const struct ike_payload *last = m->n_payloads ? &m->payloads[m->n_payloads - 1] : NULL;

	/* A fragmented retransmission gets the response once, not once per fragment. */
	if (last && last->type == IKE_PL_SKF && last->u.sk.frag_num != 1)
		return false;
	if (m->msg_id + 1 == sa->peer_msg_id && sa->have_resp)
		ike_out_resend(e, sa, sa->resp, sa->resp_len, sa->resp_frag_len, sa->resp_n_frags);
	else
		ike_log(e, 7, "IKE SA %llu: request #%u outside the window (expect #%u), dropped",
			(unsigned long long)sa->id, m->msg_id, sa->peer_msg_id);
	return false;
}

#define IKE_INCOMPLETE 1                /* decrypt(): a fragment stored, the message is not whole yet */

/* RFC 7383: one fragment authenticated and kept; the whole message's inside once the last arrives. */
static int defragment(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const uint8_t *raw, size_t len)
{
	uint8_t first = 0;
	int n;

	if (!sa->defrag && ike_defrag_new(IKE_FRAG_MAX, IKE_MAX_MSG, 5000, &sa->defrag) < 0)
		return -IKE_E_NOMEM;
	n = ike_defrag_add(sa->defrag, sa->sk_in, raw, len, now_ms, e->in_plain, sizeof e->in_plain, &first);
	if (n == 0)
		return IKE_INCOMPLETE;
	if (n < 0)
		return n == -IKE_E_TOO_MANY || n == -IKE_E_INVALID_SYNTAX ? n : -IKE_E_CRYPTO;
	return ike_msg_decode_inner(&e->msg, first, e->in_plain, (size_t)n);
}

static int decrypt(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const uint8_t *raw, size_t len)
{
	struct ike_msg *m = &e->msg;
	const struct ike_payload *sk = m->n_payloads ? &m->payloads[m->n_payloads - 1] : NULL;
	int n;

	if (sk && sk->type == IKE_PL_SKF && sa->sk_in && sa->peer_frag)
		return defragment(e, now_ms, sa, raw, len);
	if (!sk || sk->type != IKE_PL_SK || !sa->sk_in)
		return -IKE_E_INVALID_SYNTAX;
	n = ike_sk_decrypt(sa->sk_in, raw, len, sk->off, e->in_plain, sizeof e->in_plain);
	if (n < 0)
		return -IKE_E_CRYPTO;
	return ike_msg_decode_inner(m, sk->u.sk.next_inner, e->in_plain, (size_t)n);
}

static void dispatch(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool response)
{
	switch (e->msg.exchange) {
	case IKE_AUTH:
		(response ? ike_auth_response : ike_auth_request)(e, now_ms, sa);
		break;
	case IKE_CREATE_CHILD_SA:
		(response ? ike_ccs_response : ike_ccs_request)(e, now_ms, sa);
		break;
	case IKE_INFORMATIONAL:
		(response ? ike_info_response : ike_info_request)(e, now_ms, sa);
		break;
	default:
		break;
	}
}

/* An authenticated message from a new address or port (NAT-T floated, or the NAT's mapping changed). */
static void follow_peer(struct ike_engine *e, struct ike_sa *sa, const struct ike_addr *src,
	const struct ike_addr *dst)
{
	if (memcmp(&sa->remote, src, sizeof *src) == 0)
		return;
	ike_log(e, 6, "IKE SA %llu: peer now at port %u", (unsigned long long)sa->id, src->port);
	sa->remote = *src;
	sa->local = *dst;
}

static void handle_sa_message(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_addr *src,
	const struct ike_addr *dst, const uint8_t *raw, size_t len)
{
	bool response = e->msg.flags & IKE_FLAG_R;
	int rc;

	if (response ? (!sa->req.kind || e->msg.msg_id != sa->req.msg_id) : !request_fresh(e, sa, &e->msg))
		return;
	rc = decrypt(e, now_ms, sa, raw, len);
	if (rc == IKE_INCOMPLETE)
		return;
	if (rc == -IKE_E_CRYPTO) {
		ike_log(e, 7, "IKE SA %llu: message #%u does not decrypt, dropped", (unsigned long long)sa->id,
			e->msg.msg_id);
		return;
	}
	ike_trace(e, "recv (decrypted)", &e->msg, src);
	sa->last_recv_ms = now_ms;
	if (!sa->initiator || sa->state != IKE_SA_CONNECTING)
		follow_peer(e, sa, src, dst);
	if (!response)
		sa->peer_msg_id++;
	if (rc < 0) {
		if (!response)
			ike_send_error(e, now_ms, sa, e->msg.exchange, IKE_N_INVALID_SYNTAX, NULL, 0);
		return;
	}
	dispatch(e, now_ms, sa, response);
}

void ike_input(struct ike_engine *e, uint64_t now_ms, const struct ike_addr *src, const struct ike_addr *dst,
	const uint8_t *msg, size_t len)
{
	struct ike_sa *sa;
	int rc;

	e->deadline_stale = true;
	if (!msg || len < IKE_HDR_LEN || len > IKE_MAX_MSG)
		return;
	rc = ike_msg_decode(&e->msg, msg, len);
	if (rc < 0) {
		ike_log(e, 7, "dropped a malformed IKE message (%zu bytes): %s", len, ike_strerror(rc));
		return;
	}
	if (e->msg.exchange == IKE_SA_INIT) {
		if (!(e->msg.flags & IKE_FLAG_R)) {
			ike_init_request(e, now_ms, src, dst, msg, len);
			return;
		}
		sa = lookup(e, &e->msg);
		if (!sa && (sa = ike_sa_by_our_spi(e, e->msg.spi_i)) && !sa->initiator)
			sa = NULL;
		if (sa && sa->state == IKE_SA_CONNECTING && sa->req.kind == REQ_INIT)
			ike_init_response(e, now_ms, sa, msg, len);
		return;
	}
	sa = lookup(e, &e->msg);
	if (!sa) {
		ike_log(e, 7, "%s #%u for an unknown IKE SA, dropped", ike_exchange_name(e->msg.exchange) ?
			ike_exchange_name(e->msg.exchange) : "?", e->msg.msg_id);
		return;
	}
	handle_sa_message(e, now_ms, sa, src, dst, msg, len);
}
