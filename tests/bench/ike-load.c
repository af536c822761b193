/* ike-load: an IKEv2 load initiator built on the sans-I/O engine; sets up IKE_SA + CHILD_SA pairs over UDP and
 * prints the rate as one JSON line (tests/bench/ike-bench drives it; not a test). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ike.h"

/* Each peer is one IKE SA we bring up once; its state tells the scheduler when it is done. */
enum peer_state { P_IDLE, P_RUNNING, P_UP, P_FAILED };

struct load {
	struct ike_engine *e;
	int sock500, sock4500;
	struct ike_addr local;
	uint32_t n, started, up, failed, running;
	uint8_t *state;                 /* per peer (index = peer id - 1) */
	uint32_t next_spi;
	uint64_t installs;
	int verbose;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void to_sockaddr(const struct ike_addr *a, struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(a->port);
	memcpy(&sin->sin_addr, a->addr, 4);
}

static void cb_send(void *ctx, const struct ike_addr *src, const struct ike_addr *dst, const uint8_t *msg, size_t len)
{
	struct load *l = ctx;
	struct sockaddr_in sin;
	uint8_t buf[65536];
	to_sockaddr(dst, &sin);
	if (src->port == 4500) {
		/* RFC 3948: IKE on 4500 carries the four-byte non-ESP marker. */
		if (len + 4 > sizeof(buf))
			return;
		memset(buf, 0, 4);
		memcpy(buf + 4, msg, len);
		if (sendto(l->sock4500, buf, len + 4, 0, (struct sockaddr *)&sin, sizeof(sin)) < 0 && l->verbose)
			perror("ike-load: sendto 4500");
	} else if (sendto(l->sock500, msg, len, 0, (struct sockaddr *)&sin, sizeof(sin)) < 0 && l->verbose) {
		perror("ike-load: sendto 500");
	}
}

static int cb_spi_alloc(void *ctx, uint32_t *spi)
{
	struct load *l = ctx;
	*spi = l->next_spi++;
	return 0;
}

static int cb_child_install(void *ctx, const struct ike_child_sa *sa)
{
	struct load *l = ctx;
	(void)sa;
	l->installs++;           /* nothing carries traffic here: the count is enough */
	return 0;
}

static void cb_child_delete(void *ctx, uint32_t spi_in, uint32_t spi_out, bool ah)
{
	(void)ctx; (void)spi_in; (void)spi_out; (void)ah;
}

static void finish(struct load *l, uint32_t peer_id, enum peer_state st)
{
	if (peer_id == 0 || peer_id > l->n || l->state[peer_id - 1] != P_RUNNING)
		return;
	l->state[peer_id - 1] = (uint8_t)st;
	l->running--;
	if (st == P_UP)
		l->up++;
	else
		l->failed++;
}

static void cb_event(void *ctx, const struct ike_event *ev)
{
	struct load *l = ctx;
	switch (ev->kind) {
	case IKE_EV_CHILD_UP:
		finish(l, ev->peer_id, P_UP);
		break;
	case IKE_EV_AUTH_FAILED:
	case IKE_EV_NEGOTIATION_FAILED:
	case IKE_EV_SA_DOWN:
		if (l->verbose)
			fprintf(stderr, "ike-load: peer %u failed: %s\n", ev->peer_id, ev->text ? ev->text : "");
		finish(l, ev->peer_id, P_FAILED);
		break;
	default:
		break;
	}
}

static void cb_log(void *ctx, int level, const char *text)
{
	struct load *l = ctx;
	if (l->verbose > 1 || (l->verbose && level <= 4))
		fprintf(stderr, "ike-load: %s\n", text);
}

static int udp_socket(const struct ike_addr *a, uint16_t port)
{
	struct sockaddr_in sin;
	struct ike_addr b = *a;
	int one = 1, size = 4 << 20;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	b.port = port;
	to_sockaddr(&b, &sin);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* Drains one socket into the engine. */
static void receive(struct load *l, int s, uint16_t port)
{
	uint8_t buf[65536];
	for (;;) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&sin, &sl);
		if (n < 0)
			return;
		struct ike_addr src = { .family = 4, .port = ntohs(sin.sin_port) };
		struct ike_addr dst = l->local;
		memcpy(src.addr, &sin.sin_addr, 4);
		dst.port = port;
		const uint8_t *msg = buf;
		size_t len = (size_t)n;
		if (port == 4500) {
			if (len < 4 || memcmp(buf, "\0\0\0\0", 4) != 0)
				continue;           /* ESP or a keepalive, not IKE */
			msg += 4;
			len -= 4;
		}
		ike_input(l->e, now_ms(), &src, &dst, msg, len);
	}
}

static int parse_addr(const char *text, struct ike_addr *a, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = 4;
	a->port = port;
	return inet_pton(AF_INET, text, a->addr) == 1 ? 0 : -1;
}

static int parse_prefix(const char *text, struct ike_ts_conf *ts)
{
	char buf[64];
	const char *slash = strchr(text, '/');
	int bits = slash ? atoi(slash + 1) : 32;
	uint32_t a, mask;
	snprintf(buf, sizeof(buf), "%.*s", slash ? (int)(slash - text) : (int)strlen(text), text);
	memset(ts, 0, sizeof(*ts));
	ts->family = 4;
	ts->port_hi = 65535;
	if (inet_pton(AF_INET, buf, &a) != 1 || bits < 0 || bits > 32)
		return -1;
	mask = bits ? htonl(~0u << (32 - bits)) : 0;
	uint32_t lo = a & mask, hi = a | ~mask;
	memcpy(ts->lo, &lo, 4);
	memcpy(ts->hi, &hi, 4);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: ike-load --local ADDR --remote ADDR --psk-file FILE [--sas N] [--concurrency C]\n"
		"  [--ike PROPOSALS] [--esp PROPOSALS] [--remote-ts PREFIX] [--remote-id ID] [--timeout S] [-v]\n"
		"Each IKE SA i uses identity load-i.bench.test and the traffic selector 198.18.x.y/32 (x.y from i)\n"
		"against --remote-ts; prints {\"sas\", \"up\", \"failed\", \"seconds\", \"rate\", \"cpu_s\"}.\n");
}

static int load_psk(const char *path, uint8_t *psk, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(psk, 1, cap, f);
	fclose(f);
	while (n && (psk[n - 1] == '\n' || psk[n - 1] == '\r'))
		n--;
	*len = n;
	return n ? 0 : -1;
}

static int configure(struct load *l, const struct ike_addr *remote, const char *remote_id, const uint8_t *psk,
	size_t psk_len, const char *ike, const char *esp, const struct ike_ts_conf *remote_ts)
{
	char err[128];
	struct ike_peer_conf *p = calloc(1, sizeof(*p));
	struct ike_child_conf *c = calloc(1, sizeof(*c));
	int rc = -1;
	if (!p || !c)
		goto out;
	int n = ike_proposals_parse(ike, false, false, p->ike, IKE_MAX_PROPOSAL_CONF, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "ike-load: --ike: %s\n", err);
		goto out;
	}
	p->n_ike = (size_t)n;
	n = ike_proposals_parse(esp, true, false, c->esp, IKE_MAX_PROPOSAL_CONF, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "ike-load: --esp: %s\n", err);
		goto out;
	}
	c->n_esp = (size_t)n;
	for (uint32_t i = 0; i < l->n; i++) {
		p->id = i + 1;
		snprintf(p->name, sizeof(p->name), "load-%u", i + 1);
		p->local = l->local;
		p->remote = *remote;
		snprintf(p->local_id, sizeof(p->local_id), "load-%u.bench.test", i + 1);
		snprintf(p->remote_id, sizeof(p->remote_id), "%s", remote_id);
		p->auth = IKE_AUTH_PSK;
		p->psk = psk;
		p->psk_len = psk_len;
		p->start = IKE_START_NEVER;
		if ((rc = ike_peer_set(l->e, now_ms(), p)) < 0) {
			fprintf(stderr, "ike-load: peer %u: %s\n", i + 1, ike_strerror(rc));
			goto out;
		}
		c->id = i + 1;
		c->peer_id = i + 1;
		snprintf(c->name, sizeof(c->name), "load-%u", i + 1);
		/* A selector of its own per SA, as many sites behind one concentrator would have. */
		uint32_t host = htonl(0xc6120000u + 1 + i);   /* 198.18.0.0/15 */
		memset(&c->local_ts[0], 0, sizeof(c->local_ts[0]));
		c->local_ts[0].family = 4;
		c->local_ts[0].port_hi = 65535;
		memcpy(c->local_ts[0].lo, &host, 4);
		memcpy(c->local_ts[0].hi, &host, 4);
		c->n_local_ts = 1;
		c->remote_ts[0] = *remote_ts;
		c->n_remote_ts = 1;
		if ((rc = ike_child_set(l->e, now_ms(), c)) < 0) {
			fprintf(stderr, "ike-load: policy %u: %s\n", i + 1, ike_strerror(rc));
			goto out;
		}
	}
	rc = 0;
out:
	free(p);
	free(c);
	return rc;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		ru.ru_stime.tv_usec / 1e6;
}

/* Keeps `conc` initiations in flight until every peer is up or failed, or the deadline passes. */
static void run(struct load *l, uint32_t conc, uint64_t deadline)
{
	struct pollfd pfd[2] = { { .fd = l->sock500, .events = POLLIN }, { .fd = l->sock4500, .events = POLLIN } };
	while (l->up + l->failed < l->n && now_ms() < deadline) {
		while (l->running < conc && l->started < l->n) {
			uint32_t id = ++l->started;
			l->state[id - 1] = P_RUNNING;
			l->running++;
			int rc = ike_initiate(l->e, now_ms(), id);
			if (rc < 0) {
				if (l->verbose)
					fprintf(stderr, "ike-load: initiate %u: %s\n", id, ike_strerror(rc));
				finish(l, id, P_FAILED);
			}
		}
		uint64_t t = now_ms(), next = ike_next_deadline(l->e);
		int wait = next <= t ? 0 : next - t > 100 ? 100 : (int)(next - t);
		if (poll(pfd, 2, wait) > 0) {
			if (pfd[0].revents & POLLIN)
				receive(l, l->sock500, 500);
			if (pfd[1].revents & POLLIN)
				receive(l, l->sock4500, 4500);
		}
		if (ike_next_deadline(l->e) <= now_ms())
			ike_tick(l->e, now_ms());
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "local", required_argument, NULL, 'l' }, { "remote", required_argument, NULL, 'r' },
		{ "psk-file", required_argument, NULL, 'p' }, { "sas", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' }, { "ike", required_argument, NULL, 'i' },
		{ "esp", required_argument, NULL, 'e' }, { "remote-ts", required_argument, NULL, 't' },
		{ "remote-id", required_argument, NULL, 'd' }, { "timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' }, { NULL, 0, NULL, 0 },
	};
	const char *local = NULL, *remote = NULL, *pskfile = NULL, *ike = "aes256gcm16-prfsha256-curve25519";
	const char *esp = "aes256gcm16", *rts = "203.0.113.0/24", *remote_id = NULL;
	uint32_t n = 1000, conc = 16, timeout = 120;
	struct load l = { .sock500 = -1, .sock4500 = -1, .next_spi = 0xc0000000u };
	int o;
	while ((o = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (o) {
		case 'l': local = optarg; break;
		case 'r': remote = optarg; break;
		case 'p': pskfile = optarg; break;
		case 'n': n = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'c': conc = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': ike = optarg; break;
		case 'e': esp = optarg; break;
		case 't': rts = optarg; break;
		case 'd': remote_id = optarg; break;
		case 'T': timeout = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'v': l.verbose++; break;
		default: usage(); return 2;
		}
	}
	struct ike_addr raddr;
	struct ike_ts_conf remote_ts;
	uint8_t psk[256];
	size_t psk_len = 0;
	if (!local || !remote || !pskfile || n == 0 || n > 100000 || conc == 0 ||
	    parse_addr(local, &l.local, 500) < 0 || parse_addr(remote, &raddr, 500) < 0 ||
	    parse_prefix(rts, &remote_ts) < 0) {
		usage();
		return 2;
	}
	if (load_psk(pskfile, psk, sizeof(psk), &psk_len) < 0) {
		fprintf(stderr, "ike-load: cannot read a PSK from %s\n", pskfile);
		return 2;
	}
	l.n = n;
	l.state = calloc(n, 1);
	l.sock500 = udp_socket(&l.local, 500);
	l.sock4500 = udp_socket(&l.local, 4500);
	if (!l.state || l.sock500 < 0 || l.sock4500 < 0) {
		fprintf(stderr, "ike-load: cannot bind %s:500/4500: %s\n", local, strerror(errno));
		return 1;
	}
	struct ike_callbacks cb = {
		.ctx = &l, .send = cb_send, .spi_alloc = cb_spi_alloc, .child_install = cb_child_install,
		.child_delete = cb_child_delete, .event = cb_event, .log = l.verbose ? cb_log : NULL,
	};
	/* The initiator must never be what limits the rate: no cookies or limits of its own in the way, and no
	 * message trace formatted unless it is printed. */
	struct ike_engine_conf conf = { .half_open_cookie_threshold = 1u << 30, .max_half_open = 1u << 30,
		.max_sas = 1u << 30, .retransmit_base_ms = 2000, .retransmit_tries = 3,
		.log_level = l.verbose > 1 ? 7 : 4 };
	int rc = ike_engine_new(&conf, &cb, &l.e);
	if (rc < 0) {
		fprintf(stderr, "ike-load: engine: %s\n", ike_strerror(rc));
		return 1;
	}
	rc = configure(&l, &raddr, remote_id ? remote_id : remote, psk, psk_len, ike, esp, &remote_ts);
	memset(psk, 0, sizeof(psk));
	if (rc < 0)
		return 1;
	double cpu0 = cpu_seconds();
	uint64_t t0 = now_ms();
	run(&l, conc, t0 + (uint64_t)timeout * 1000u);
	double secs = (double)(now_ms() - t0) / 1000.0;
	printf("{\"sas\": %u, \"up\": %u, \"failed\": %u, \"unfinished\": %u, \"child_installs\": %llu, "
		"\"seconds\": %.3f, \"rate\": %.1f, \"cpu_s\": %.2f}\n", n, l.up, l.failed, n - l.up - l.failed,
		(unsigned long long)l.installs, secs, secs > 0 ? l.up / secs : 0.0, cpu_seconds() - cpu0);
	ike_engine_free(l.e);
	close(l.sock500);
	close(l.sock4500);
	free(l.state);
	return l.up == n ? 0 : 1;
}
