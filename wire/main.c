/* main.c: bitw-wire: load the configuration, open the ports, run the data threads and the control loop. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "ctl.h"
#include "log.h"
#include "sandbox.h"
#include "wire_int.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: bitw-wire --config FILE [--ctl PATH] [--log-level error|warn|info|debug]\n"
	           "                 [--user NAME] [--no-seccomp]\n"
	           "\n"
	           "  --config FILE    the wire's configuration (JSON, see docs/config.md)\n"
	           "  --ctl PATH       control socket for bitwd (default %s)\n"
	           "  --log-level L    error, warn, info (default) or debug\n"
	           "  --user NAME      started as root: once the ports and the control socket are open,\n"
	           "                   run as NAME keeping only CAP_NET_RAW and CAP_NET_ADMIN\n"
	           "  --no-seccomp     do not install the syscall filter (for debugging)\n"
	           "\n"
	           "SIGHUP reloads FILE; a bad file is refused and the running configuration stays.\n",
	        CTL_DEFAULT_PATH);
}

static int load(const char *path, struct wire_config *cfg, char *err, size_t errlen)
{
	int rc = config_load_file(path, cfg, err, errlen);

	if (rc == 0 && (rc = config_validate(cfg, err, errlen)) < 0)
		config_free(cfg);
	return rc;
}

static void reload(struct wire *w)
{
	struct wire_config cfg = { 0 };
	char err[512];

	if (load(w->config_path, &cfg, err, sizeof err) < 0 || wire_reload(w, &cfg, err, sizeof err) < 0) {
		wlog(WLOG_ERR, "reload of %s refused, running configuration kept: %s", w->config_path, err);
		config_free(&cfg);
		return;
	}
	config_free(&cfg);
}

static int signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before the data threads start, so they inherit the mask and only signalfd sees these. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void run(struct wire *w, int sfd)
{
	uint64_t last = 0, wd_usec = 0, wd_last = 0;

	/* Under systemd's WatchdogSec, the control loop proves it is alive at twice the asked rate. */
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
	while (!atomic_load(&w->stop)) {
		struct pollfd pfd[2 + CTL_MAX_CLIENTS + 1];
		int fds[CTL_MAX_CLIENTS + 1], n = ctl_server_fds(w->ctl, fds, CTL_MAX_CLIENTS + 1);
		struct signalfd_siginfo si;

		pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = w->ev_fd, .events = POLLIN };
		for (int i = 0; i < n; i++)
			pfd[2 + i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(pfd, (nfds_t)(2 + n), 100) < 0 && errno != EINTR) {
			wlog(WLOG_ERR, "poll: %s", strerror(errno));
			break;
		}
		while (read(sfd, &si, sizeof si) == sizeof si) {
			if (si.ssi_signo == SIGHUP)
				reload(w);
			else
				atomic_store(&w->stop, 1);
		}
		if (pfd[1].revents)
			wire_drain_events(w);
		for (int i = 0; i < n; i++)
			if (pfd[2 + i].revents)
				ctl_server_handle(w->ctl, pfd[2 + i].fd);
		if (now_ms() - last >= 100) {
			wire_housekeeping(w);
			last = now_ms();
		}
		if (wd_usec && now_ms() - wd_last >= wd_usec / 2000) {
			sd_notify(0, "WATCHDOG=1");
			wd_last = now_ms();
		}
	}
}

struct sandbox_opts {
	const char *user;
	bool no_seccomp, selftest;
};

/* Everything that needs root is open: become the service user, then allow only the loops' syscalls. */
static int enter_sandbox(const struct sandbox_opts *o, const char *ctl, char *err, size_t errlen)
{
	if (o->user && (sandbox_give_path(o->user, ctl, err, errlen) < 0 ||
	                sandbox_drop_user(o->user, SANDBOX_CAPS_WIRE, err, errlen) < 0))
		return -1;
	if (!o->no_seccomp && sandbox_seccomp_wire(err, errlen) < 0)
		return -1;
	wlog(WLOG_INFO, "bitw-wire: running as uid %u%s", (unsigned)getuid(),
	     o->no_seccomp ? ", no syscall filter" : ", syscall filter on");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ctl", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "user", required_argument, NULL, 'u' },
		{ "no-seccomp", no_argument, NULL, 'S' },
		{ "selftest-forbidden-syscall", no_argument, NULL, 'F' },  /* hidden: tests/service */
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct wire w;  /* large: keep it off the stack */
	const char *config = NULL, *ctl = CTL_DEFAULT_PATH;
	struct wire_config cfg = { 0 };
	struct sandbox_opts sb = { 0 };
	char err[512];
	int c, sfd, rc = 1;

	while ((c = getopt_long(argc, argv, "c:s:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 's': ctl = optarg; break;
		case 'l':
			if ((wlog_level_max = wlog_level_parse(optarg)) < 0) {
				fprintf(stderr, "bitw-wire: --log-level: expected error, warn, info or debug\n");
				return 1;
			}
			break;
		case 'u': sb.user = optarg; break;
		case 'S': sb.no_seccomp = true; break;
		case 'F': sb.selftest = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!config || optind != argc) {
		usage(stderr);
		return 1;
	}
	if (load(config, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "bitw-wire: %s: %s\n", config, err);
		return 1;
	}
	snprintf(w.config_path, sizeof w.config_path, "%s", config);
	sfd = signals_fd();
	if (sfd < 0 || wire_init(&w, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "bitw-wire: %s\n", sfd < 0 ? strerror(errno) : err);
		goto out;
	}
	if (!(w.ctl = ctl_server_new(ctl, &w, err, sizeof err))) {
		fprintf(stderr, "bitw-wire: control socket %s: %s\n", ctl, err);
		goto out;
	}
	if (enter_sandbox(&sb, ctl, err, sizeof err) < 0) {
		fprintf(stderr, "bitw-wire: %s\n", err);
		goto out;
	}
	if (sb.selftest) {
		rc = sandbox_selftest_forbidden();
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		if ((errno = pthread_create(&w.wk[k].thread, NULL, worker_main, &w.wk[k])) != 0) {
			fprintf(stderr, "bitw-wire: thread: %s\n", strerror(errno));
			atomic_store(&w.stop, 1);
			if (k == 1)
				pthread_join(w.wk[0].thread, NULL);
			goto out;
		}
	}
	wlog(WLOG_INFO, "bitw-wire: ready: red %s, black %s, %u policies, %u SAs, control %s", w.red.ifname,
	     w.black.ifname, w.cfg.npol, w.nsas, ctl);
	sd_notifyf(0, "READY=1\nSTATUS=forwarding: red %s, black %s, %u policies, %u SAs", w.red.ifname,
	           w.black.ifname, w.cfg.npol, w.nsas);
	run(&w, sfd);
	sd_notify(0, "STOPPING=1");
	atomic_store(&w.stop, 1);
	for (int k = 0; k < 2; k++)
		pthread_join(w.wk[k].thread, NULL);
	wlog(WLOG_INFO, "bitw-wire: stopped");
	rc = 0;
out:
	config_free(&cfg);
	ctl_server_free(w.ctl);
	wire_fini(&w);
	if (sfd >= 0)
		close(sfd);
	return rc;
}
