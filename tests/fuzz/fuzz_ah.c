/* fuzz_ah.c: inbound AH (tunnel and transport) over arbitrary IPv4/IPv6 headers, some inputs re-signed so verification passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"
#include "sa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSA 3

static struct sa *make(uint8_t integ, uint8_t ilen, int dir)
{
	/* replay_window 0: every input reaches the mutable-field walk and the ICV, not just the first */
	struct sa_conf c = { .spi = 0x1001, .dir = (uint8_t)dir, .proto = PROTO_AH, .enc = ENC_NULL, .integ = integ,
	                     .integ_key_len = ilen, .mode = MODE_TRANSPORT };
	struct sa *sa = NULL;
	char err[128];

	memset(c.integ_key, 0x22, sizeof c.integ_key);
	c.peer.family = c.local.family = 4;
	return sa_create(&c, &sa, err, sizeof err) == 0 ? sa : NULL;
}

/*
 * Random bytes seldom make a header pkt_parse accepts: fix the version and
 * lengths, make IPv4 carry AH and steer IPv6's next headers towards the
 * extension headers AH's walk knows (hop-by-hop, routing, destination
 * options, fragment, AH), keeping their lengths from the input.
 */
static void shape(uint8_t *ip, uint32_t len, bool v6)
{
	static const uint8_t nhs[8] = { 0, 43, 60, 44, 51, 51, 58, 17 };
	uint32_t at = 6, off = 40;

	if (!v6) {
		if (len < 20)
			return;
		ip[0] = (uint8_t)(0x40 | (5 + (ip[0] & 15) % 11));
		wr16(ip + 2, len);
		ip[9] = 51;
		return;
	}
	if (len < 40)
		return;
	ip[0] = (uint8_t)(0x60 | (ip[0] & 15));
	wr16(ip + 4, len - 40);
	for (int n = 0; n < 5 && off + 2 <= len; n++) {
		uint8_t nh = nhs[ip[at] & 7];

		ip[at] = n == 0 || nh != 0 ? nh : 60;
		if (nh != 0 && nh != 43 && nh != 60 && nh != 44 && nh != 51)
			break;
		at = off;
		off += nh == 51 ? (ip[off + 1] + 2u) * 4u : nh == 44 ? 8u : (ip[off + 1] % 4 + 1u) * 8u;
		if (nh != 51 && nh != 44)
			ip[at + 1] %= 4;
	}
}

/*
 * data[0]: bit 0 IPv6, bits 1-2 the algorithm, bit 4 re-sign the AH header
 * first (so the restore path after a good ICV runs too), bit 5 transport
 * mode's decap instead of ah_decap, bit 6 leave the headers unshaped; the rest
 * is the IP packet.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sa *in[NSA], *out[NSA];
	static const uint8_t integ[NSA] = { INTEG_HMAC_SHA256_128, INTEG_AES_XCBC_96, INTEG_AES_GMAC_128 };
	static const uint8_t ilen[NSA] = { 32, 16, 20 };
	uint32_t len, ah_at, inner_len, out_len;
	uint8_t *frame, *inner, *back, nh, ctl;
	struct pkt_info pi;
	struct sa *sa;
	static unsigned long verified, tried;
	static int stats = -1;  /* FUZZ_AH_STATS=1: how many inputs got past the ICV, now and then on stderr */
	int rc = -1;

	if (stats < 0)
		stats = getenv("FUZZ_AH_STATS") != NULL;
	if (stats && tried && tried % 100000 == 0)
		fprintf(stderr, "# %lu of %lu AH inputs verified\n", verified, tried);
	if (!in[0])
		for (int i = 0; i < NSA; i++)
			in[i] = make(integ[i], ilen[i], DIR_IN), out[i] = make(integ[i], ilen[i], DIR_OUT);
	if (size < 2 || size > 9000)
		return 0;
	ctl = data[0];
	sa = in[(ctl >> 1 & 3) % NSA];
	len = (uint32_t)size - 1 + ETH_HLEN_;
	frame = calloc(1, len);
	if (!frame || !sa)
		goto done;
	wr16(frame + 12, ctl & 1 ? ETHERTYPE_IPV6_ : ETHERTYPE_IPV4_);
	memcpy(frame + ETH_HLEN_, data + 1, size - 1);
	if (!(ctl & 0x40))
		shape(frame + ETH_HLEN_, len - ETH_HLEN_, ctl & 1);
	if (pkt_parse(frame, len, &pi) < 0 || !pi.family)
		goto done;
	if (ctl & 0x10) {
		ah_at = pi.family == 6 ? pi.ah_off : pi.proto == 51 ? pi.l4_off : 0;
		if (!ah_at)
			goto done;
		ah_encap_fixed(out[(ctl >> 1 & 3) % NSA], frame + pi.l3_off, pi.ip_len, ah_at - pi.l3_off, frame[ah_at], 1);
		if (pkt_parse(frame, len, &pi) < 0 || !pi.family)
			goto done;
	}
	ah_at = pi.family == 6 ? pi.ah_off : pi.proto == 51 ? pi.l4_off : 0;
	if (ctl & 0x20)
		rc = transport_decap(sa, frame, &pi, &back, &out_len);
	else if (ah_at)
		rc = ah_decap(sa, frame + pi.l3_off, pi.ip_len, ah_at - pi.l3_off, &inner, &inner_len, &nh);
	if (stats)
		verified += rc == 0, tried++;
done:
	free(frame);
	return 0;
}
