/* info.c: INFORMATIONAL exchanges: DELETE of IKE and child SAs, liveness checks (DPD), error responses. */
#include <string.h>

#include "sa.h"

void ike_send_error(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint8_t exchange, uint16_t notify,
	const uint8_t *data, size_t len)
{
	ike_out_begin(e, sa, exchange, true, e->msg.msg_id);
	ike_out_notify(sa->sk_out ? &e->inner : &e->out, notify, 0, NULL, 0, data, len);
	ike_out_send(e, sa, now_ms, sa->sk_out != NULL, REQ_NONE);
}

int ike_info_send_delete(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, const struct ike_child *c)
{
	uint8_t *spi = e->octets;
	struct ike_payload *pl;

	if (sa->req.kind)
		return -IKE_E_BUSY;
	ike_out_begin(e, sa, IKE_INFORMATIONAL, false, sa->next_msg_id++);
	pl = ike_msg_add(&e->inner, IKE_PL_DELETE);
	if (c) {
		/* The peer removes its side of the pair on this DELETE: a successor must send by then. */
		ike_child_send_on_successor(e, sa, c->spi_in);
		spi[0] = (uint8_t)(c->spi_in >> 24), spi[1] = (uint8_t)(c->spi_in >> 16);
		spi[2] = (uint8_t)(c->spi_in >> 8), spi[3] = (uint8_t)c->spi_in;
		pl->u.del = (struct ike_delete){ .protocol = c->ah ? IKE_PROTO_AH : IKE_PROTO_ESP, .spi_size = 4,
			.n_spis = 1, .spis = spi };
		sa->req.spi_in = c->spi_in;
		sa->req.child.ah = c->ah;
	} else {
		pl->u.del = (struct ike_delete){ .protocol = IKE_PROTO_IKE };
	}
	return ike_out_send(e, sa, now_ms, true, c ? REQ_DELETE_CHILD : REQ_DELETE_IKE);
}

int ike_info_send_dpd(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	if (sa->req.kind)
		return -IKE_E_BUSY;
	ike_out_begin(e, sa, IKE_INFORMATIONAL, false, sa->next_msg_id++);
	return ike_out_send(e, sa, now_ms, true, REQ_DPD);
}

/* The peer deletes child SAs: we remove ours and name our inbound SPIs in the answer. */
static void delete_children(struct ike_engine *e, struct ike_sa *sa, const struct ike_delete *d, uint8_t *ours,
	uint16_t *n_ours)
{
	for (uint16_t i = 0; i < d->n_spis && *n_ours < 256; i++) {
		const uint8_t *p = d->spis + (size_t)i * 4;
		struct ike_child *c = ike_child_find_out(sa, ike_get32(p), d->protocol == IKE_PROTO_AH), *mate;

		if (!c)
			continue;
		/* Both ended it at once (a collision): our own DELETE is outstanding, answering is enough. */
		memcpy(ours + (size_t)*n_ours * 4, (uint8_t[4]){ (uint8_t)(c->spi_in >> 24), (uint8_t)(c->spi_in >> 16),
			(uint8_t)(c->spi_in >> 8), (uint8_t)c->spi_in }, 4);
		(*n_ours)++;
		mate = c->state == CHILD_ACTIVE ? ike_child_partner(e, sa, c) : NULL;
		if (mate && mate->state == CHILD_ACTIVE) {   /* a bundle goes as one: we delete its other half */
			mate->state = CHILD_DELETING;
			mate->delete_at_ms = 1;
		}
		ike_child_remove(e, sa, c, "deleted by the peer");
	}
}

void ike_info_request(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	uint8_t *ours[2] = { e->octets, e->octets + 1024 };  /* our SPIs of deleted ESP, AH children (256 each) */
	uint16_t n_ours[2] = { 0, 0 };
	bool delete_ike = false;

	for (size_t i = 0; i < e->msg.n_payloads; i++) {
		const struct ike_payload *pl = &e->msg.payloads[i];
		int ah;

		if (pl->type != IKE_PL_DELETE)
			continue;
		ah = pl->u.del.protocol == IKE_PROTO_AH;
		if (pl->u.del.protocol == IKE_PROTO_IKE)
			delete_ike = true;
		else if ((ah || pl->u.del.protocol == IKE_PROTO_ESP) && pl->u.del.spi_size == 4)
			delete_children(e, sa, &pl->u.del, ours[ah], &n_ours[ah]);
	}
	ike_out_begin(e, sa, IKE_INFORMATIONAL, true, e->msg.msg_id);
	for (int ah = 0; ah < 2 && !delete_ike; ah++)
		if (n_ours[ah])
			ike_msg_add(&e->inner, IKE_PL_DELETE)->u.del = (struct ike_delete){
				.protocol = ah ? IKE_PROTO_AH : IKE_PROTO_ESP, .spi_size = 4, .n_spis = n_ours[ah],
				.spis = ours[ah] };
	ike_out_send(e, sa, now_ms, true, REQ_NONE);
	if (delete_ike)
		ike_sa_fail(e, now_ms, sa, IKE_EV_SA_DOWN, "deleted by the peer");
}

void ike_info_response(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa)
{
	struct ike_child *c;

	switch (sa->req.kind) {
	case REQ_DELETE_IKE:
		ike_sa_fail(e, now_ms, sa, IKE_EV_SA_DOWN, "deleted");
		return;
	case REQ_DELETE_CHILD:
		c = ike_child_find_proto(sa, sa->req.spi_in, sa->req.child.ah);
		if (c)
			ike_child_remove(e, sa, c, "deleted");
		break;
	default:
		break;
	}
	ike_req_done(sa);
}
