/* bitwd.c: the management daemon's main: flags, logging, start-up and the one reactor loop that owns all state. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <systemd/sd-daemon.h>

#include "bitwd.h"
#include "conffile.h"
#include "wire/log.h"
#include "wire/sandbox.h"

#define TICK_MS 200             /* the longest the loop sleeps: wirelink retries and heartbeats need turns */
#define EVENT_BACKLOG 1024

static int log_level = WLOG_INFO;

uint64_t bitwd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mlog(int level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	if (level > log_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* one write per line, so lines from a crash and a log do not interleave */
	fprintf(stderr, "bitwd: %s%s\n", prefix[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bitwd [options]\n"
		"The bitw management daemon: REST/JSON API over HTTPS, the configuration in SQLite,\n"
		"driving bitw-wire over its control socket.\n"
		"\n"
		"  --db PATH                 the database (default /var/lib/bitw/bitw.db; created 0600)\n"
		"  --wire-socket PATH        bitw-wire's control socket (default " CTL_DEFAULT_PATH ")\n"
		"  --listen ADDR             numeric IPv4/IPv6 address to serve on (default 127.0.0.1)\n"
		"  --port N                  TCP port (default 8443; 8080 with --http)\n"
		"  --http                    plain HTTP instead of HTTPS; refused unless ADDR is loopback\n"
		"  --tls-cert FILE --tls-key FILE\n"
		"                            PEM certificate and key to serve; without them a self-signed\n"
		"                            ECDSA P-256 certificate is made on first start and kept as\n"
		"                            bitwd.crt and bitwd.key (0600) beside the database\n"
		"  --admin-password-file FILE\n"
		"                            first start only: create user \"admin\" with the password in\n"
		"                            FILE (first line); without it bitwd asks on the terminal.\n"
		"                            There is no built-in default password.\n"
		"  --web-root DIR            the web UI's files (default " BITW_WEB_ROOT ");\n"
		"                            \"\" serves the API only\n"
		"  --session-ttl S           lifetime of a login session in seconds (default 3600)\n"
		"  --sse-heartbeat S         an idle event stream gets a comment every S seconds, so a\n"
		"                            client that vanished is noticed (default 15)\n"
		"  --log-level L             error, warn, info (default) or debug (shows control messages)\n"
		"  --user NAME               started as root: once the database, the key and the listening\n"
		"                            socket are open, run as NAME with no capabilities\n"
		"  --ike-keylog              append IKE and ESP keys in Wireshark's formats to ike-keys.log\n"
		"                            (mode 0600) beside the database: for debugging only\n"
		"  --config FILE             settings as \"key = value\" lines, keys named like these flags\n"
		"                            (\"http = yes\"); flags on the command line override them\n"
		"  -h, --help                this text\n"
		"\n"
		"SIGTERM or SIGINT stop bitwd cleanly; bitw-wire keeps forwarding meanwhile.\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || end == s || *s == '-' || v > max)
		return false;
	*out = v;
	return true;
}

static bool is_loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

static void list_routes(void)
{
	for (size_t i = 0; i < api_routes_count; i++)
		printf("%s %s\n", api_routes[i].method, api_routes[i].pattern);
}

/* 0 to run, 1 to exit successfully (help, route list), -1 on a bad flag. */
static int parse_flags(int argc, char **argv, struct bitwd_opts *o)
{
	enum { O_DB = 256, O_WIRE, O_LISTEN, O_PORT, O_HTTP, O_CERT, O_KEY, O_ADMINPW, O_WEB, O_TTL, O_LOG, O_ROUTES,
	       O_USER, O_CONFIG, O_KEYLOG, O_HEARTBEAT };
	static const struct option opts[] = {
		{ "db", required_argument, NULL, O_DB },
		{ "wire-socket", required_argument, NULL, O_WIRE },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "port", required_argument, NULL, O_PORT },
		{ "http", no_argument, NULL, O_HTTP },
		{ "tls-cert", required_argument, NULL, O_CERT },
		{ "tls-key", required_argument, NULL, O_KEY },
		{ "admin-password-file", required_argument, NULL, O_ADMINPW },
		{ "web-root", required_argument, NULL, O_WEB },
		{ "session-ttl", required_argument, NULL, O_TTL },
		{ "sse-heartbeat", required_argument, NULL, O_HEARTBEAT },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "list-routes", no_argument, NULL, O_ROUTES },   /* hidden: for the OpenAPI coverage test */
		{ "user", required_argument, NULL, O_USER },
		{ "config", required_argument, NULL, O_CONFIG },  /* read by conffile_argv before the flags */
		{ "ike-keylog", no_argument, NULL, O_KEYLOG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct bitwd_opts){
		.db_path = "/var/lib/bitw/bitw.db",
		.wire_socket = CTL_DEFAULT_PATH,
		.listen_addr = "127.0.0.1",
		.web_root = BITW_WEB_ROOT,
		.session_ttl = 3600,
		.sse_heartbeat_ms = 15000,
		.log_level = WLOG_INFO,
	};
	unsigned long v;
	int c;
	char err[512];
	if (!(argv = conffile_argv(argc, argv, opts, &argc, err, sizeof err))) {
		fprintf(stderr, "bitwd: %s\n", err);
		return -1;
	}
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_DB: o->db_path = optarg; break;
		case O_WIRE: o->wire_socket = optarg; break;
		case O_LISTEN: o->listen_addr = optarg; break;
		case O_PORT:
			if (!parse_uint(optarg, 65535, &v) || v == 0) {
				fprintf(stderr, "bitwd: --port %s: not a port number\n", optarg);
				return -1;
			}
			o->port = (uint16_t)v;
			break;
		case O_HTTP: o->plain_http = true; break;
		case O_CERT: o->tls_cert = optarg; break;
		case O_KEY: o->tls_key = optarg; break;
		case O_ADMINPW: o->admin_password_file = optarg; break;
		case O_WEB: o->web_root = optarg; break;
		case O_TTL:
			if (!parse_uint(optarg, 365L * 86400, &v) || v < 60) {
				fprintf(stderr, "bitwd: --session-ttl %s: seconds, 60 .. one year\n", optarg);
				return -1;
			}
			o->session_ttl = (int)v;
			break;
		case O_HEARTBEAT:
			if (!parse_uint(optarg, 3600, &v) || v == 0) {
				fprintf(stderr, "bitwd: --sse-heartbeat %s: seconds, 1 .. 3600\n", optarg);
				return -1;
			}
			o->sse_heartbeat_ms = (int)v * 1000;
			break;
		case O_LOG:
			o->log_level = wlog_level_parse(optarg);
			if (o->log_level < 0 && parse_uint(optarg, 3, &v))
				o->log_level = (int)v;
			if (o->log_level < 0) {
				fprintf(stderr, "bitwd: --log-level %s: error, warn, info or debug\n", optarg);
				return -1;
			}
			break;
		case O_ROUTES: list_routes(); return 1;
		case O_USER: o->user = optarg; break;
		case O_CONFIG: break;
		case O_KEYLOG: o->ike_keylog = true; break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bitwd: unexpected argument %s\n", argv[optind]);
		return -1;
	}
	if (!o->port)
		o->port = o->plain_http ? 8080 : 8443;
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "bitwd: --tls-cert and --tls-key go together\n");
		return -1;
	}
	if (o->plain_http && !is_loopback(o->listen_addr)) {
		fprintf(stderr, "bitwd: --http is allowed only on a loopback address, not %s\n", o->listen_addr);
		return -1;
	}
	if (o->plain_http && o->tls_cert) {
		fprintf(stderr, "bitwd: --http and --tls-cert contradict each other\n");
		return -1;
	}
	return 0;
}

/* SIGTERM/SIGINT/SIGHUP arrive on a descriptor the loop polls, so handlers never run amid state changes. */
static int signals_open(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);   /* a client gone mid-reply is an error code, not a death */
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void signals_read(struct bitwd *d, int fd)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			mlog(WLOG_INFO, "SIGHUP: nothing to reload");
			continue;
		}
		mlog(WLOG_INFO, "signal %u: stopping", si.ssi_signo);
		d->stop = 1;
	}
}

static int poll_timeout(struct bitwd *d)
{
	int64_t t = http_timeout_ms(d), ike = ike_driver_timeout_ms(d);
	if (ike >= 0 && (t < 0 || ike < t))
		t = ike;
	return t < 0 || t > TICK_MS ? TICK_MS : (int)t;
}

static void reactor(struct bitwd *d, int sigfd)
{
	uint64_t wd_usec = 0, wd_last = 0;

	/* Under systemd's WatchdogSec, the loop proves it is alive at twice the asked rate. */
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
	while (!d->stop) {
		int wfd = wirelink_fd(d->wl);
		struct pollfd pfd[3] = {
			{ .fd = http_fd(d), .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = wfd, .events = POLLIN },   /* poll ignores -1 */
		};
		int n = poll(pfd, 3, poll_timeout(d));
		if (n < 0 && errno != EINTR) {
			mlog(WLOG_ERR, "poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && pfd[1].revents)
			signals_read(d, sigfd);
		http_run(d);
		if (n > 0 && wfd >= 0 && pfd[2].revents && wirelink_fd(d->wl) == wfd)
			wirelink_handle(d->wl);
		wirelink_tick(d->wl);
		ike_driver_tick(d);
		if (wd_usec && bitwd_now_ms() - wd_last >= wd_usec / 2000) {
			sd_notify(0, "WATCHDOG=1");
			wd_last = bitwd_now_ms();
		}
	}
}

static void url_of(const struct bitwd_opts *o, char *out, size_t len)
{
	bool v6 = strchr(o->listen_addr, ':') != NULL;
	snprintf(out, len, "%s://%s%s%s:%u", o->plain_http ? "http" : "https", v6 ? "[" : "", o->listen_addr,
	         v6 ? "]" : "", o->port);
}

/* Wire events go to the SSE stream and to the IKE driver (ACQUIRE, SA expiry). */
static void wire_event(struct bitwd *d, uint16_t type, json_t *payload)
{
	events_from_wire(d, type, payload);
	ike_driver_wire_event(d, type, payload);
}

static int start(struct bitwd *d, char *err, size_t errlen)
{
	int rc = db_open(d->opt.db_path, &d->db, err, errlen);
	if (rc < 0)
		return -1;
	if (auth_bootstrap(d, err, errlen) < 0)
		return -1;
	d->ev = events_new(EVENT_BACKLOG);
	if (!d->ev) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	static_init(d);
	d->wl = wirelink_new(d, d->opt.wire_socket, wire_event);
	if (!d->wl) {
		snprintf(err, errlen, "cannot set up the link to bitw-wire at %s", d->opt.wire_socket);
		return -1;
	}
	if (ike_driver_start(d, err, errlen) < 0)
		return -1;
	return http_start(d, err, errlen);
}

/* Streams belong to http.c and events hold pointers to them: events go first. */
static void finish(struct bitwd *d)
{
	ike_driver_stop(d);
	if (d->wl)
		wirelink_free(d->wl);
	if (d->ev)
		events_free(d->ev);
	http_stop(d);
	if (d->db)
		db_close(d->db);
}

/* Everything that needs root is open; the database and its WAL files go to the user, who writes them from now on. */
static int drop_privileges(struct bitwd *d, char *err, size_t errlen)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(path, sizeof path, "%s%s", d->opt.db_path, suffix[i]);
		if (access(path, F_OK) == 0 && sandbox_give_path(d->opt.user, path, err, errlen) < 0)
			return -1;
	}
	if (sandbox_drop_user(d->opt.user, 0, err, errlen) < 0)
		return -1;
	mlog(WLOG_INFO, "running as %s (uid %u), no capabilities", d->opt.user, (unsigned)getuid());
	return 0;
}

int main(int argc, char **argv)
{
	static struct bitwd d;
	int rc = parse_flags(argc, argv, &d.opt);
	if (rc)
		return rc > 0 ? 0 : 2;
	log_level = d.opt.log_level;
	wlog_level_max = d.opt.log_level;
	d.started_ms = bitwd_now_ms();

	int sigfd = signals_open();
	if (sigfd < 0) {
		mlog(WLOG_ERR, "signalfd: %s", strerror(errno));
		return 1;
	}
	char err[512] = "";
	if (start(&d, err, sizeof err) < 0) {
		mlog(WLOG_ERR, "%s", *err ? err : "start-up failed");
		finish(&d);
		close(sigfd);
		return 1;
	}
	if (d.opt.user && drop_privileges(&d, err, sizeof err) < 0) {
		mlog(WLOG_ERR, "%s", err);
		finish(&d);
		close(sigfd);
		return 1;
	}
	char url[128];
	url_of(&d.opt, url, sizeof url);
	mlog(WLOG_INFO, "listening on %s", url);
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s", url);
	reactor(&d, sigfd);
	sd_notify(0, "STOPPING=1");
	finish(&d);
	close(sigfd);
	mlog(WLOG_INFO, "stopped");
	return 0;
}
