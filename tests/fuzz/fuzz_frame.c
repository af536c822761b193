/* fuzz_frame.c: every frame parser of the wire: Ethernet/IP, ICMP builders, MSS clamp, segmentation, fragmentation. */
#include <stdlib.h>
#include <string.h>

#include "ip.h"
#include "pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[PKT_MAX + 256];
	struct pkt_info pi;
	uint8_t *frame;
	uint32_t state = 0;
	const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct bw_addr src = { .family = 4, .a = { 192, 0, 2, 1 } };

	if (size > PKT_MAX)
		return 0;
	/* An exact-size copy so the sanitizer sees any read past the end. */
	frame = malloc(size ? size : 1);
	if (!frame)
		return 0;
	memcpy(frame, data, size);
	if (pkt_parse(frame, (uint32_t)size, &pi) == 0 && pi.family) {
		csum_complete_partial(frame, &pi);
		icmp_build_too_big(out, sizeof out, frame, &pi, 1280, mac, &src);
		icmp_build_echo_reply(out, sizeof out, frame, &pi, mac);
		tcp_mss_clamp(frame, &pi, 536);
		for (int i = 0; i < 64 && gso_segment_next(frame, (uint32_t)size, &pi, 576, &state, out, sizeof out) > 0; i++)
			;
		state = 0;
		for (int i = 0; i < 64 && ip_fragment_next(frame + pi.l3_off, pi.ip_len, 576, 7, &state, out,
		                                           sizeof out) > 0; i++)
			;
	}
	free(frame);
	return 0;
}
