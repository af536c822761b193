/* esp_kat.c: esp-kat, ESP (or AH) from fixed inputs and back, so an independent implementation can check us byte for byte. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pkt.h"
#include "sa.h"
#include "wire.h"

#define MAX_PKT 10000

static void usage(void)
{
	fprintf(stderr,
	        "usage: esp-kat encap --enc ALG --integ ALG [--enc-key HEX] [--integ-key HEX] --spi N --seq N\n"
	        "                     [--iv HEX] [--nh N] [--esn] --inner HEX\n"
	        "       esp-kat decap --enc ALG --integ ALG [--enc-key HEX] [--integ-key HEX] --spi N [--seq N]\n"
	        "                     [--esn] --esp HEX\n"
	        "encap prints the ESP packet (SPI .. ICV) in hex; decap prints the inner packet in hex and\n"
	        "'nh N', or the XE_* error name and exits 1. decap --seq N: the receiver has seen N-1\n"
	        "(with --esn this places the window so the high half of N is inferred).\n"
	        "enc and integ: the names of docs/config.md\n"
	        "--ah N: AH (enc null) with the AH header at byte N of the IP packet; encap's --inner and\n"
	        "decap's --esp are then the whole outer IP packet, encap prints it with AH filled in.\n"
	        "--transport: transport mode (with --ah 0: AH; --seq is the packet's): encap's --inner is the\n"
	        "host's IP packet and encap prints it with ESP/AH inserted; decap prints the host's packet.\n");
	exit(2);
}

static int name_index(int (*from_name)(const char *), const char *s)
{
	int i = from_name(s);

	if (i >= 0)
		return i;
	fprintf(stderr, "esp-kat: unknown algorithm %s\n", s);
	usage();
	return -1;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Returns the byte count; exits on bad hex or too much of it. */
static size_t parse_hex(const char *s, uint8_t *out, size_t cap, const char *what)
{
	size_t len = strlen(s), n = len / 2;

	if (len % 2 != 0 || n > cap)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n;
bad:
	fprintf(stderr, "esp-kat: %s: bad hex or longer than %zu bytes\n", what, cap);
	exit(2);
}

static uint64_t parse_num(const char *s, uint64_t max, const char *what)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*s == '\0' || *end != '\0' || v > max) {
		fprintf(stderr, "esp-kat: %s: bad number %s\n", what, s);
		exit(2);
	}
	return v;
}

static void print_hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

struct args {
	struct sa_conf conf;
	uint64_t seq;
	uint8_t iv[16];
	size_t iv_len;
	int has_iv;
	uint8_t nh;
	uint8_t data[MAX_PKT];
	size_t data_len;
	int has_data;
	uint32_t ah_off;  /* AH: where its header starts in the IP packet */
	int transport;    /* the host's packet in, transport.c's work out */
};

static void parse_args(int argc, char **argv, struct args *a, int decap)
{
	static const struct option opts[] = {
		{ "enc", required_argument, NULL, 'e' }, { "integ", required_argument, NULL, 'i' },
		{ "enc-key", required_argument, NULL, 'k' }, { "integ-key", required_argument, NULL, 'K' },
		{ "spi", required_argument, NULL, 's' }, { "seq", required_argument, NULL, 'q' },
		{ "iv", required_argument, NULL, 'v' }, { "nh", required_argument, NULL, 'n' },
		{ "esn", no_argument, NULL, 'E' }, { "inner", required_argument, NULL, 'I' },
		{ "esp", required_argument, NULL, 'P' }, { "ah", required_argument, NULL, 'A' },
		{ "transport", no_argument, NULL, 'T' }, { NULL, 0, NULL, 0 },
	};
	int c;

	a->nh = 4;
	a->conf.replay_window = 64;
	a->conf.dir = decap ? DIR_IN : DIR_OUT;
	a->conf.enc = ENC__COUNT;
	a->conf.integ = INTEG__COUNT;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': a->conf.enc = (uint8_t)name_index(enc_from_name, optarg); break;
		case 'i': a->conf.integ = (uint8_t)name_index(integ_from_name, optarg); break;
		case 'k':
			a->conf.enc_key_len = (uint8_t)parse_hex(optarg, a->conf.enc_key, sizeof(a->conf.enc_key), "enc-key");
			break;
		case 'K':
			a->conf.integ_key_len =
			    (uint8_t)parse_hex(optarg, a->conf.integ_key, sizeof(a->conf.integ_key), "integ-key");
			break;
		case 's': a->conf.spi = (uint32_t)parse_num(optarg, UINT32_MAX, "spi"); break;
		case 'q': a->seq = parse_num(optarg, UINT64_MAX, "seq"); break;
		case 'v':
			a->iv_len = parse_hex(optarg, a->iv, sizeof(a->iv), "iv");
			a->has_iv = 1;
			break;
		case 'n': a->nh = (uint8_t)parse_num(optarg, 255, "nh"); break;
		case 'E': a->conf.esn = 1; break;
		case 'T':
			a->transport = 1;
			a->conf.mode = MODE_TRANSPORT;
			break;
		case 'A':
			a->conf.proto = PROTO_AH;
			a->ah_off = (uint32_t)parse_num(optarg, MAX_PKT, "ah");
			break;
		case 'I':
		case 'P':
			a->data_len = parse_hex(optarg, a->data, sizeof(a->data), c == 'I' ? "inner" : "esp");
			a->has_data = decap ? c == 'P' : c == 'I';
			break;
		default: usage();
		}
	}
	if (optind != argc || a->conf.enc == ENC__COUNT || a->conf.integ == INTEG__COUNT || !a->has_data)
		usage();
}

/* An Ethernet frame around the IP packet in a, parsed as the data threads parse it. */
static uint32_t frame_of(const struct args *a, uint8_t *frame, struct pkt_info *pi)
{
	memset(frame, 0, 14);
	frame[12] = a->data[0] >> 4 == 6 ? 0x86 : 0x08;
	frame[13] = a->data[0] >> 4 == 6 ? 0xdd : 0x00;
	memcpy(frame + 14, a->data, a->data_len);
	return pkt_parse(frame, (uint32_t)a->data_len + 14, pi) < 0 ? 0 : (uint32_t)a->data_len + 14;
}

static int do_transport(struct sa *sa, struct args *a, int decap)
{
	static uint8_t frame[MAX_PKT + 14], out[MAX_PKT + 512];
	struct pkt_info pi;
	uint32_t len = 0;
	uint8_t *back;
	int rc = -XE_MALFORMED_PACKET;

	if (frame_of(a, frame, &pi) == 0) {
		printf("XE_MALFORMED_PACKET\n");
		return 1;
	}
	if (decap) {
		if (a->seq > 1)
			replay_update(&sa->replay, a->seq - 1);
		rc = transport_decap(sa, frame, &pi, &back, &len);
	} else {
		sa->seq = a->seq - 1;
		back = out;
		rc = transport_encap(sa, out, sizeof(out), frame, &pi);
		len = rc > 0 ? (uint32_t)rc : 0;
	}
	if (rc < 0) {
		printf("%s\n", xe_name(rc));
		return 1;
	}
	print_hex(back + 14, len - 14);
	return 0;
}

static int do_encap(struct sa *sa, const struct args *a)
{
	static uint8_t out[MAX_PKT + 256];
	int len;

	if (sa->conf.proto == PROTO_AH) {
		memcpy(out, a->data, a->data_len);
		len = ah_encap_fixed(sa, out, (uint32_t)a->data_len, a->ah_off, a->nh, a->seq);
		if (len < 0) {
			printf("%s\n", xe_name(len));
			return 1;
		}
		print_hex(out, a->data_len);
		return 0;
	}
	if (a->has_iv && a->iv_len != sa->iv_len) {
		fprintf(stderr, "esp-kat: this cipher takes a %u-byte IV\n", sa->iv_len);
		return 2;
	}
	len = esp_encap_fixed(sa, out, sizeof(out), a->data, (uint32_t)a->data_len, a->nh, a->seq,
	                      a->has_iv ? a->iv : NULL);
	if (len < 0) {
		printf("%s\n", xe_name(len));
		return 1;
	}
	print_hex(out, (size_t)len);
	return 0;
}

static int do_decap(struct sa *sa, struct args *a)
{
	uint8_t *inner, nh;
	uint32_t inner_len;
	int rc;

	if (a->seq > 1)
		replay_update(&sa->replay, a->seq - 1);
	if (sa->conf.proto == PROTO_AH)
		rc = ah_decap(sa, a->data, (uint32_t)a->data_len, a->ah_off, &inner, &inner_len, &nh);
	else
		rc = esp_decap(sa, a->data, (uint32_t)a->data_len, &inner, &inner_len, &nh);
	if (rc < 0) {
		printf("%s\n", xe_name(rc));
		return 1;
	}
	print_hex(inner, inner_len);
	printf("nh %u\n", nh);
	return 0;
}

int main(int argc, char **argv)
{
	static struct args a;
	struct sa *sa;
	char err[256];
	int decap, rc;

	if (argc < 2 || (strcmp(argv[1], "encap") != 0 && strcmp(argv[1], "decap") != 0))
		usage();
	decap = strcmp(argv[1], "decap") == 0;
	parse_args(argc - 1, argv + 1, &a, decap);
	rc = sa_create(&a.conf, &sa, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "esp-kat: %s (%s)\n", err, xe_name(rc));
		return 2;
	}
	rc = a.transport ? do_transport(sa, &a, decap) : decap ? do_decap(sa, &a) : do_encap(sa, &a);
	sa_destroy(sa);
	return rc;
}
