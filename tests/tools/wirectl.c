/* wirectl.c: bitw-wirectl, a small client of bitw-wire's control socket for tests and humans. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "ctl.h"
#include "wire.h"

enum { EXIT_REPLY_ERROR = 1, EXIT_NO_CONNECT = 2 };

static const char usage_text[] =
	"usage: bitw-wirectl [--socket PATH] [--timeout S] COMMAND ...\n"
	"  socket: --socket, else $BITW_WIRE_SOCK, else " CTL_DEFAULT_PATH "\n"
	"commands:\n"
	"  hello | stats | sa-list | config | get-spi\n"
	"  spd-set FILE|-          {\"policies\":[...],\"default_action\":...} or a bare array of policies\n"
	"  sa-add FILE|-           {\"sas\":[...]}, {\"sa\":{...}} or a bare array of SAs\n"
	"  sa-del SPI in|out\n"
	"  sa-flush [POLICY]\n"
	"  initial-contact ADDR\n"
	"  ike-send SRC SPORT DST DPORT HEX\n"
	"  raw TYPE JSON           TYPE is a name (SPD_SET) or a number; JSON is sent as given\n"
	"  events [--count N] [--timeout S]   one JSON line per event\n"
	"exit: 0 ok, 1 error reply (JSON on stderr) or timeout, 2 cannot connect\n";

struct client {
	int fd;
	uint32_t seq;
	double timeout;           /* seconds; < 0: wait forever */
	uint8_t *rx;              /* CTL_MAX_MSG */
};

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_REPLY_ERROR);
}

static double now_s_(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void client_connect(struct client *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int big = (int)CTL_MAX_MSG * 2;

	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "bitw-wirectl: socket path too long: %s\n", path);
		exit(EXIT_NO_CONNECT);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "bitw-wirectl: cannot connect to %s: %s\n", path, strerror(errno));
		exit(EXIT_NO_CONNECT);
	}
	/* Big SPD_SET/SA_ADD requests need room; the kernel caps this at wmem_max. */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	c->rx = malloc(CTL_MAX_MSG);
	if (!c->rx) {
		fprintf(stderr, "bitw-wirectl: out of memory\n");
		exit(EXIT_REPLY_ERROR);
	}
}

static void client_send(struct client *c, uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
	struct ctl_hdr h = { .type = type, .seq = ++c->seq, .len = (uint32_t)(alen + blen) };
	struct iovec iov[3] = { { &h, sizeof h }, { (void *)a, alen }, { (void *)b, blen } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3 };

	if (sendmsg(c->fd, &m, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "bitw-wirectl: send: %s\n", strerror(errno));
		exit(EXIT_REPLY_ERROR);
	}
}

/* One datagram before the deadline (< 0: none). Returns its length, 0 on timeout, -1 when the server hung up. */
static ssize_t client_recv(struct client *c, double deadline)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int ms = -1;
		ssize_t n;

		if (deadline >= 0) {
			double left = deadline - now_s_();

			if (left <= 0)
				return 0;
			ms = (int)(left * 1000) + 1;
		}
		if (poll(&p, 1, ms) < 0 && errno != EINTR)
			return -1;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(c->fd, c->rx, CTL_MAX_MSG, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if ((size_t)n >= sizeof(struct ctl_hdr))
			return n;
	}
}

static int out_flags(int fd)
{
	return isatty(fd) ? JSON_INDENT(2) : JSON_COMPACT;
}

static void print_json(FILE *f, json_t *j, int flags)
{
	char *s = json_dumps(j, flags | JSON_ENCODE_ANY);

	fprintf(f, "%s\n", s ? s : "null");
	fflush(f);
	free(s);
}

/* An error reply: {"status":"XE_...","error":...,"field":...} on stderr. */
static int print_error(const struct ctl_hdr *h, const uint8_t *payload)
{
	json_t *body = json_loadb((const char *)payload, h->len, 0, NULL);
	json_t *out = json_pack("{s:s}", "status", xe_name(h->status));

	if (json_is_object(body))
		json_object_update(out, body);
	else
		json_object_set_new(out, "error", json_string(xe_text(h->status)));
	print_json(stderr, out, out_flags(STDERR_FILENO));
	json_decref(body);
	json_decref(out);
	return EXIT_REPLY_ERROR;
}

static int print_reply(const struct ctl_hdr *h, const uint8_t *payload)
{
	json_t *body;

	if (h->status != 0)
		return print_error(h, payload);
	body = h->len ? json_loadb((const char *)payload, h->len, 0, NULL) : json_object();
	if (body)
		print_json(stdout, body, out_flags(STDOUT_FILENO));
	else
		printf("%.*s\n", (int)h->len, (const char *)payload);
	json_decref(body);
	return 0;
}

/* Send one request and wait for the reply with its seq; events that arrive meanwhile are skipped. */
static int request(struct client *c, uint16_t type, const void *payload, size_t len, int quiet)
{
	double deadline = c->timeout < 0 ? -1 : now_s_() + c->timeout;
	struct ctl_hdr h;
	ssize_t n;

	client_send(c, type, payload, len, NULL, 0);
	for (;;) {
		n = client_recv(c, deadline);
		if (n <= 0) {
			fprintf(stderr, "bitw-wirectl: %s: %s\n", ctl_type_name(type),
			        n == 0 ? "timed out waiting for the reply" : "connection closed");
			return EXIT_REPLY_ERROR;
		}
		memcpy(&h, c->rx, sizeof h);
		if ((h.flags & CTL_F_REPLY) && h.seq == c->seq)
			break;
	}
	if ((size_t)n - sizeof h < h.len)
		h.len = (uint32_t)((size_t)n - sizeof h);
	if (quiet && h.status == 0)
		return 0;
	return print_reply(&h, c->rx + sizeof h);
}

static int request_json(struct client *c, uint16_t type, json_t *payload)
{
	char *text = json_dumps(payload, JSON_COMPACT);
	int rc;

	json_decref(payload);
	if (!text) {
		fprintf(stderr, "bitw-wirectl: out of memory\n");
		return EXIT_REPLY_ERROR;
	}
	rc = request(c, type, text, strlen(text), 0);
	OPENSSL_cleanse(text, strlen(text));  /* SA_ADD payloads carry keys */
	free(text);
	return rc;
}

/* A whole file (or stdin for "-") as JSON; exits on error. */
static json_t *load_input(const char *path)
{
	json_error_t e;
	json_t *j = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &e) : json_load_file(path, 0, &e);

	if (!j) {
		fprintf(stderr, "bitw-wirectl: %s: line %d column %d: %s\n", path, e.line, e.column, e.text);
		exit(EXIT_REPLY_ERROR);
	}
	return j;
}

static int cmd_spd_set(struct client *c, char **a)
{
	json_t *j = load_input(a[0]);

	if (json_is_array(j))
		j = json_pack("{s:o}", "policies", j);
	return request_json(c, CTL_SPD_SET, j);
}

static int cmd_sa_add(struct client *c, char **a)
{
	json_t *j = load_input(a[0]);

	if (json_is_array(j))
		j = json_pack("{s:o}", "sas", j);
	else if (json_is_object(j) && json_object_get(j, "spi"))
		j = json_pack("{s:o}", "sa", j);
	return request_json(c, CTL_SA_ADD, j);
}

/* A decimal SPI goes as a number, anything else ("0x1001") as a string for the server to judge. */
static int cmd_sa_del(struct client *c, char **a)
{
	const char *spi = a[0];
	json_t *spi_j = spi[0] && strspn(spi, "0123456789") == strlen(spi) && strlen(spi) < 19
	                ? json_integer(strtoll(spi, NULL, 10)) : json_string(spi);

	return request_json(c, CTL_SA_DEL, json_pack("{s:o, s:s}", "spi", spi_j, "direction", a[1]));
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int parse_ip(const char *s, uint8_t *family, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1)
		*family = 4;
	else if (inet_pton(AF_INET6, s, out) == 1)
		*family = 6;
	else
		return -1;
	return 0;
}

static int parse_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			return -1;
		out[i] = (uint8_t)b;
	}
	*len = n / 2;
	return 0;
}

static int cmd_ike_send(struct client *c, char **a)
{
	struct ctl_ike_dgram d = { 0 };
	static uint8_t msg[sizeof d + 65536];
	uint8_t fam2;
	size_t len;

	if (parse_ip(a[0], &d.family, d.src) < 0 || parse_ip(a[2], &fam2, d.dst) < 0 || fam2 != d.family) {
		fprintf(stderr, "bitw-wirectl: ike-send: SRC and DST must be addresses of one family\n");
		return EXIT_REPLY_ERROR;
	}
	if (parse_port(a[1], &d.sport) < 0 || parse_port(a[3], &d.dport) < 0 ||
	    parse_hex(a[4], msg + sizeof d, sizeof msg - sizeof d, &len) < 0) {
		fprintf(stderr, "bitw-wirectl: ike-send: bad port or hex data\n");
		return EXIT_REPLY_ERROR;
	}
	memcpy(msg, &d, sizeof d);
	return request(c, CTL_IKE_SEND, msg, sizeof d + len, 0);
}

static int parse_type(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*s && !*end && v <= 0xffff)
		return (int)v;
	for (int t = 1; t < 256; t++)
		if (strcmp(ctl_type_name((uint16_t)t), "UNKNOWN") != 0 && strcasecmp(s, ctl_type_name((uint16_t)t)) == 0)
			return t;
	return -1;
}

static int cmd_raw(struct client *c, char **a)
{
	int t = parse_type(a[0]);

	if (t < 0) {
		fprintf(stderr, "bitw-wirectl: raw: unknown type %s\n", a[0]);
		return EXIT_REPLY_ERROR;
	}
	return request(c, (uint16_t)t, a[1], strlen(a[1]), 0);
}

static void hex_str(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

static json_t *ike_event_json(const uint8_t *p, uint32_t len)
{
	struct ctl_ike_dgram d;
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], *hex;
	int af;
	json_t *j;

	if (len < sizeof d)
		return json_pack("{s:s, s:s}", "event", "IKE_RECV", "error", "short payload");
	memcpy(&d, p, sizeof d);
	af = d.family == 6 ? AF_INET6 : AF_INET;
	inet_ntop(af, d.src, src, sizeof src);
	inet_ntop(af, d.dst, dst, sizeof dst);
	hex = malloc(2 * (len - sizeof d) + 1);
	if (!hex)
		return NULL;
	hex_str(p + sizeof d, len - sizeof d, hex);
	j = json_pack("{s:s, s:s, s:i, s:s, s:i, s:s}", "event", "IKE_RECV", "src", src, "sport", d.sport, "dst", dst,
	              "dport", d.dport, "data", hex);
	free(hex);
	return j;
}

static void print_event(const struct ctl_hdr *h, const uint8_t *p)
{
	json_t *j;

	if (h->type == CTL_EV_IKE_RECV) {
		j = ike_event_json(p, h->len);
	} else {
		json_t *body = json_loadb((const char *)p, h->len, 0, NULL);

		j = json_pack("{s:s}", "event", ctl_type_name(h->type));
		if (h->type == 0 || strcmp(ctl_type_name(h->type), "UNKNOWN") == 0)
			json_object_set_new(j, "type", json_integer(h->type));
		if (json_is_object(body))
			json_object_update(j, body);
		json_decref(body);
	}
	print_json(stdout, j, JSON_COMPACT);
	json_decref(j);
}

/* Events until count (0: unlimited) or the timeout; HELLO first so the server has us in its client list. */
static int cmd_events(struct client *c, long count)
{
	double deadline = c->timeout < 0 ? -1 : now_s_() + c->timeout;
	double hello_timeout = c->timeout;
	long seen = 0;

	c->timeout = c->timeout < 0 ? 10 : c->timeout;
	if (request(c, CTL_HELLO, "{}", 2, 1) != 0)
		return EXIT_REPLY_ERROR;
	c->timeout = hello_timeout;
	fprintf(stderr, "bitw-wirectl: listening for events\n");
	while (count == 0 || seen < count) {
		ssize_t n = client_recv(c, deadline);
		struct ctl_hdr h;

		if (n == 0)
			return count && seen < count ? EXIT_REPLY_ERROR : 0;
		if (n < 0) {
			fprintf(stderr, "bitw-wirectl: connection closed\n");
			return EXIT_REPLY_ERROR;
		}
		memcpy(&h, c->rx, sizeof h);
		if (!(h.flags & CTL_F_EVENT))
			continue;
		if ((size_t)n - sizeof h < h.len)
			h.len = (uint32_t)((size_t)n - sizeof h);
		print_event(&h, c->rx + sizeof h);
		seen++;
	}
	return 0;
}

static double parse_timeout(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (!*s || *end || v < 0)
		usage();
	return v;
}

static int request_text(struct client *c, uint16_t type, const char *text)
{
	return request(c, type, text, strlen(text), 0);
}

static int cmd_hello(struct client *c, char **a)
{
	return request_text(c, CTL_HELLO, "{\"version\":1,\"name\":\"bitw-wirectl\"}");
}

static int cmd_stats(struct client *c, char **a)
{
	return request_text(c, CTL_STATS, "{}");
}

static int cmd_sa_list(struct client *c, char **a)
{
	return request_text(c, CTL_SA_LIST, "{}");
}

static int cmd_config(struct client *c, char **a)
{
	return request_text(c, CTL_CONFIG_GET, "{}");
}

static int cmd_get_spi(struct client *c, char **a)
{
	return request_text(c, CTL_GET_SPI, "{}");
}

static int cmd_initial_contact(struct client *c, char **a)
{
	return request_json(c, CTL_INITIAL_CONTACT, json_pack("{s:s}", "peer", a[0]));
}

static int cmd_sa_flush(struct client *c, char **a)
{
	return request_json(c, CTL_SA_FLUSH, a[0] ? json_pack("{s:s}", "policy", a[0]) : json_object());
}

static const struct command {
	const char *name;
	int min_args, max_args;
	int (*fn)(struct client *c, char **args);
} commands[] = {
	{ "hello", 0, 0, cmd_hello },
	{ "stats", 0, 0, cmd_stats },
	{ "sa-list", 0, 0, cmd_sa_list },
	{ "config", 0, 0, cmd_config },
	{ "get-spi", 0, 0, cmd_get_spi },
	{ "spd-set", 1, 1, cmd_spd_set },
	{ "sa-add", 1, 1, cmd_sa_add },
	{ "sa-del", 2, 2, cmd_sa_del },
	{ "sa-flush", 0, 1, cmd_sa_flush },
	{ "initial-contact", 1, 1, cmd_initial_contact },
	{ "ike-send", 5, 5, cmd_ike_send },
	{ "raw", 2, 2, cmd_raw },
};

static int dispatch(struct client *c, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const struct command *cmd = &commands[i];

		if (strcmp(argv[0], cmd->name) != 0)
			continue;
		if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args)
			usage();
		return cmd->fn(c, argv + 1);  /* argv is NULL-terminated: a missing optional word is NULL */
	}
	usage();
	return EXIT_REPLY_ERROR;
}

/* "events" takes its own options (also accepted before the command). */
static int events_main(struct client *c, int argc, char **argv)
{
	long count = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			c->timeout = parse_timeout(argv[++i]);
		else
			usage();
	}
	if (count < 0)
		usage();
	return cmd_events(c, count);
}

int main(int argc, char **argv)
{
	struct client c = { .fd = -1, .timeout = -2 };
	const char *path = getenv("BITW_WIRE_SOCK");
	int i, rc;

	if (!path || !path[0])
		path = CTL_DEFAULT_PATH;
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			c.timeout = parse_timeout(argv[++i]);
		else
			usage();
	}
	if (i >= argc)
		usage();
	if (strcmp(argv[i], "events") == 0) {
		/* Events wait forever unless told otherwise; requests give up after 10 s. */
		if (c.timeout == -2)
			c.timeout = -1;
		client_connect(&c, path);
		rc = events_main(&c, argc - i, argv + i);
	} else {
		if (c.timeout == -2)
			c.timeout = 10;
		client_connect(&c, path);
		rc = dispatch(&c, argc - i, argv + i);
	}
	close(c.fd);
	free(c.rx);
	return rc;
}
