/* sa.h: IKE SA lifetime and lookup, shared by the exchange files. */
#ifndef BITW_IKE_SA_H
#define BITW_IKE_SA_H

#include "engine.h"

struct ike_sa *ike_sa_new(struct ike_engine *e, uint64_t now_ms, const struct ike_peer *peer, bool initiator);
void ike_sa_free(struct ike_engine *e, struct ike_sa *sa);
struct ike_sa *ike_sa_find_peer(struct ike_engine *e, uint32_t peer_id);
struct ike_sa *ike_sa_find_id(struct ike_engine *e, uint64_t id);
/* Deletes sa: with notify, an INFORMATIONAL DELETE first (sa lingers until answered or timed out). */
void ike_sa_terminate(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, bool notify);
void ike_sa_delete_policy_children(struct ike_engine *e, uint64_t now_ms, struct ike_sa *sa, uint32_t policy_id);

#endif
