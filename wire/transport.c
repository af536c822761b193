/* transport.c: ESP transport mode for a host behind bitw: the ESP header goes between the host's IP header and its payload. */
#include <string.h>

#include "sa.h"
#include "spd.h"
#include "wire.h"

#define IPPROTO_ESP_ 50
#define NH_DUMMY 59

/*
 * The IPv6 header chain is kept only when it is the fixed header alone: an
 * extension header before ESP would need its own next-header field rewritten
 * and its length re-counted; no such packet is protected, none is guessed at.
 */
static bool header_fits(const struct pkt_info *pi)
{
	return pi->l4_off && pi->frag == PKT_FRAG_NONE && (pi->family == 4 || pi->l4_off - pi->l3_off == 40);
}

/* Length and protocol of the host's IP header after ESP went in or came out. */
static void ip_fix(uint8_t *ip, int family, uint32_t hlen, uint32_t payload_len, uint8_t proto)
{
	if (family == 4) {
		wr16(ip + 2, hlen + payload_len);
		ip[9] = proto;
		ipv4_set_csum(ip);
	} else {
		wr16(ip + 4, payload_len);
		ip[6] = proto;
	}
}

int transport_encap(struct sa *sa, uint8_t *out, uint32_t cap, const uint8_t *frame, const struct pkt_info *pi)
{
	uint32_t hdr = pi->l4_off, iph = (uint32_t)(pi->l4_off - pi->l3_off);
	int n;

	if (!header_fits(pi))
		return -XE_NOT_SUPPORTED;
	if (cap <= hdr)
		return -XE_MTU_EXCEEDED;
	n = esp_encap(sa, out + hdr, cap - hdr, frame + hdr, pi->ip_len - iph, pi->proto);
	if (n < 0)
		return n;
	memcpy(out, frame, hdr);
	ip_fix(out + pi->l3_off, pi->family, iph, (uint32_t)n, IPPROTO_ESP_);
	return (int)hdr + n;
}

int transport_decap(struct sa *sa, uint8_t *frame, const struct pkt_info *pi, uint8_t **out, uint32_t *out_len)
{
	uint32_t hdr = pi->l4_off, iph = (uint32_t)(pi->l4_off - pi->l3_off), inner_len;
	uint8_t *inner, nh;
	int rc;

	if (!header_fits(pi) || pi->proto != IPPROTO_ESP_)
		return -XE_MALFORMED_PACKET;
	rc = esp_decap(sa, frame + hdr, pi->ip_len - iph, &inner, &inner_len, &nh);
	if (rc < 0)
		return rc;
	if (nh == NH_DUMMY)
		return -XE_DUMMY_PACKET;
	/* The host's headers move up to meet the payload where the ESP header and IV were. */
	memmove(inner - hdr, frame, hdr);
	*out = inner - hdr;
	ip_fix(*out + pi->l3_off, pi->family, iph, inner_len, nh);
	*out_len = hdr + inner_len;
	return 0;
}

/* A scan of the policies: only asked for UDP 500/4500 not addressed to bitw itself, never per protected packet. */
bool transport_is_host(const struct spd *spd, const struct bw_addr *addr)
{
	uint32_t n = spd ? spd_count(spd) : 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct policy_conf *p = &spd_at(spd, i)->conf;

		if (p->action == ACT_PROTECT && p->mode == MODE_TRANSPORT && p->sel.src.family == addr->family &&
		    !memcmp(p->sel.src.lo, addr->a, addr->family == 4 ? 4 : 16))
			return true;
	}
	return false;
}
