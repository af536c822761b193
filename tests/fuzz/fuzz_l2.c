/* fuzz_l2.c: ARP and neighbour discovery input, answering through a transmit queue that goes nowhere. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "port.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct port port = { .mtu = 1500, .mac = { 2, 0, 0, 0, 0, 9 } };
	static struct port_conf pc;
	static struct txq tx;
	static struct neigh_table *nt;
	static int sink;
	struct l2_self self;
	struct pkt_info pi;
	uint8_t *frame;

	if (!nt) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
			return 0;
		sink = sv[1];
		shutdown(sink, SHUT_RD);
		txq_init_fd(&tx, &port, sv[0]);
		nt = neigh_new(64, 300, 4);
		bw_addr_parse("192.0.2.10", &pc.addr[0]);
		bw_addr_parse("2001:db8:a::10", &pc.addr[1]);
		pc.plen[0] = 24;
		pc.plen[1] = 64;
		pc.naddr = 2;
	}
	self = (struct l2_self){ &pc, port.mac, nt, &tx };
	frame = malloc(size ? size : 1);
	if (!frame)
		return 0;
	memcpy(frame, data, size);
	arp_input(&self, frame, (uint32_t)size, 1000);
	if (pkt_parse(frame, (uint32_t)size, &pi) == 0 && pi.family == 6)
		nd_input(&self, frame, (uint32_t)size, &pi, 1000);
	tx.n = 0;  /* nothing is sent: the answers only have to be built */
	free(frame);
	return 0;
}
