/* ike/frag.c: RFC 7383 IKE fragmentation: splitting a message into SKF datagrams and bounded reassembly. */
#include "crypto.h"
#include "msg.h"

/* Stubs until the implementation lands. */
int ike_frag_split(struct ike_sk *sk, const uint8_t *hdr, uint8_t first, const uint8_t *inner, size_t inner_len,
	size_t max_msg, uint8_t *out, size_t cap, size_t *frag_len, size_t max_frags)
{ (void)sk; (void)hdr; (void)first; (void)inner; (void)inner_len; (void)max_msg; (void)out; (void)cap; (void)frag_len; (void)max_frags; return -IKE_E_NOT_SUPPORTED; }
int ike_defrag_new(size_t max_frags, size_t max_total, uint64_t timeout_ms, struct ike_defrag **out)
{ (void)max_frags; (void)max_total; (void)timeout_ms; *out = NULL; return -IKE_E_NOT_SUPPORTED; }
void ike_defrag_free(struct ike_defrag *d) { (void)d; }
int ike_defrag_add(struct ike_defrag *d, struct ike_sk *sk, const uint8_t *msg, size_t len, uint64_t now_ms,
	uint8_t *out, size_t cap, uint8_t *first)
{ (void)d; (void)sk; (void)msg; (void)len; (void)now_ms; (void)out; (void)cap; (void)first; return -IKE_E_NOT_SUPPORTED; }
uint64_t ike_defrag_deadline(const struct ike_defrag *d) { (void)d; return UINT64_MAX; }
void ike_defrag_reset(struct ike_defrag *d) { (void)d; }
