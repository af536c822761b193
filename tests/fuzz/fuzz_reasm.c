/* fuzz_reasm.c: reassembly fed a stream of fragments cut from the input (overlaps, lies about lengths). */
#include <stdlib.h>
#include <string.h>

#include "ip.h"
#include "pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reasm *r;
	uint64_t now = 0;

	if (!r)
		r = reasm_new(1u << 20, 1000);
	/* The input is a sequence of [len_hi len_lo frame...] records. */
	while (size >= 2) {
		size_t len = (size_t)(data[0] << 8 | data[1]);
		struct pkt_info pi;
		const uint8_t *whole;
		uint32_t whole_len;
		uint8_t *frame;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		frame = malloc(len ? len : 1);
		if (!frame)
			return 0;
		memcpy(frame, data, len);
		if (pkt_parse(frame, (uint32_t)len, &pi) == 0 && pi.family && pi.frag)
			reasm_input(r, frame + pi.l3_off, pi.ip_len, &pi, now, &whole, &whole_len);
		free(frame);
		data += len;
		size -= len;
		now += 100;
	}
	reasm_expire(r, now + 10000);
	return 0;
}
