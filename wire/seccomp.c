/* seccomp.c: bitw-wire's syscall allow-list as a classic BPF seccomp filter (no libseccomp). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "sandbox.h"
#include "wire.h"

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp.c: add this architecture's AUDIT_ARCH and check its syscall list"
#endif

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif

/*
 * What the control loop and the data threads call after start-up (found with
 * strace -f over the e2e tests): packet I/O, the control socket, config reloads
 * (reading the file), /sys counters, link state and offload restores (ioctl on
 * an AF_INET datagram socket), malloc, threads, signals and time.
 */
static const int allowed[] = {
	/* the data threads' calls first: every syscall walks this list in order */
#if defined(__x86_64__)
	SYS_poll,
#endif
	SYS_sendmmsg, SYS_recvfrom, SYS_sendto, SYS_futex,
	SYS_read, SYS_readv, SYS_pread64, SYS_write, SYS_writev, SYS_close, SYS_lseek,
	SYS_openat, SYS_newfstatat, SYS_fstat, SYS_statx, SYS_unlinkat, SYS_fcntl, SYS_ioctl,
	SYS_ppoll, SYS_pselect6, SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait,
	SYS_recvmsg, SYS_recvmmsg, SYS_sendmsg,
	SYS_accept4, SYS_getsockopt, SYS_setsockopt, SYS_getsockname, SYS_shutdown,
	SYS_mmap, SYS_munmap, SYS_mprotect, SYS_madvise, SYS_mremap, SYS_brk,
	SYS_set_robust_list, SYS_rseq, SYS_sched_yield, SYS_sched_getaffinity,
	SYS_clock_gettime, SYS_clock_nanosleep, SYS_nanosleep, SYS_gettimeofday, SYS_getrandom,
	SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_rt_sigaction, SYS_signalfd4, SYS_eventfd2,
	SYS_getpid, SYS_gettid, SYS_tgkill, SYS_prlimit64, SYS_uname, SYS_restart_syscall,
	SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getresuid, SYS_getresgid, SYS_getgroups,
	SYS_exit, SYS_exit_group,
	SYS_sysinfo, /* glibc's qsort asks for the memory size once an array passes 1 KiB (a large SA table) */
#if defined(__x86_64__)
	SYS_select, SYS_epoll_wait, SYS_open, SYS_stat, SYS_lstat, SYS_unlink, SYS_time,
#endif
#ifdef SANITIZED
	/*
	 * AddressSanitizer and LeakSanitizer: alternate signal stacks, reading
	 * /proc/self/maps, and the leak check at exit, which clones a tracer that
	 * stops and reads the threads (clone, ptrace, wait4, prctl).
	 */
	SYS_sigaltstack, SYS_readlinkat, SYS_getdents64, SYS_prctl, SYS_clone, SYS_ptrace, SYS_wait4,
	SYS_sched_setaffinity, SYS_pipe2, SYS_dup3, SYS_getppid, SYS_kill,
#if defined(__x86_64__)
	SYS_readlink, SYS_getdents, SYS_pipe, SYS_dup2, SYS_arch_prctl,
#endif
#endif
};

#define ALLOWED_MAX (sizeof allowed / sizeof allowed[0])
#define PROG_MAX (32 + 2 * ALLOWED_MAX)  /* fixed cases, then a test and a return per syscall */

#define STMT(code, k) ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, t, f) ((struct sock_filter)BPF_JUMP((code), (k), (t), (f)))
#define LD_NR STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG_LO(i) STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))  /* little-endian */
#define RET(v) STMT(BPF_RET | BPF_K, (v))
#define IF_EQ(k, t, f) JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))

/* Threads and sockets are allowed only in the forms bitw-wire uses; the rest is refused, not killed. */
static size_t special_cases(struct sock_filter *f, size_t n)
{
	/* clone3's flags are in memory a filter cannot read: ENOSYS makes glibc fall back to clone */
	f[n++] = IF_EQ(SYS_clone3, 0, 1);
	f[n++] = RET(SECCOMP_RET_ERRNO | ENOSYS);
#ifndef SANITIZED
	f[n++] = IF_EQ(SYS_clone, 0, 4);
	f[n++] = LD_ARG_LO(0);
	f[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1);
	f[n++] = RET(SECCOMP_RET_ALLOW);
	f[n++] = RET(SECCOMP_RET_ERRNO | EPERM);  /* a new process */
#endif
	/* AF_INET for interface ioctls, AF_UNIX for sd_notify: datagram sockets only */
	f[n++] = IF_EQ(SYS_socket, 0, 8);
	f[n++] = LD_ARG_LO(0);
	f[n++] = IF_EQ(AF_INET, 1, 0);
	f[n++] = IF_EQ(AF_UNIX, 0, 4);
	f[n++] = LD_ARG_LO(1);
	f[n++] = STMT(BPF_ALU | BPF_AND | BPF_K, 0xf);  /* the type without SOCK_CLOEXEC/SOCK_NONBLOCK */
	f[n++] = IF_EQ(SOCK_DGRAM, 0, 1);
	f[n++] = RET(SECCOMP_RET_ALLOW);
	f[n++] = RET(SECCOMP_RET_ERRNO | EPERM);
	return n;
}

static size_t build(struct sock_filter *f)
{
	size_t n = 0;

	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = IF_EQ(FILTER_ARCH, 1, 0);
	f[n++] = RET(SECCOMP_RET_KILL_PROCESS);
	f[n++] = LD_NR;
#if defined(__x86_64__)
	f[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000, 0, 1);  /* x32 ABI numbers */
	f[n++] = RET(SECCOMP_RET_KILL_PROCESS);
#endif
	n = special_cases(f, n);
	f[n++] = LD_NR;  /* the socket case left an argument in A */
	for (size_t i = 0; i < ALLOWED_MAX; i++) {
		f[n++] = IF_EQ((uint32_t)allowed[i], 0, 1);
		f[n++] = RET(SECCOMP_RET_ALLOW);
	}
	f[n++] = RET(SECCOMP_RET_TRAP);  /* sigsys_say_why, then death by SIGSYS */
	return n;
}

/* Digits of v at the end of buf (size n, at least 11 bytes); returns where they start. */
static char *decimal(char *buf, size_t n, uint32_t v)
{
	char *p = buf + n;

	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return p;
}

/*
 * A forbidden syscall: say which on stderr (the journal under systemd), the
 * only trace otherwise being "killed by SIGSYS", then die of SIGSYS as the
 * kernel's kill would. Only async-signal-safe calls the filter allows.
 */
static void sigsys_say_why(int sig, siginfo_t *si, void *ctx)
{
	static const char head[] = "bitw-wire: seccomp: forbidden system call ", tail[] = ", exiting\n";
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	char num[16], *p = decimal(num, sizeof num, (uint32_t)si->si_syscall);
	ssize_t ignored;

	(void)ctx;
	ignored = write(STDERR_FILENO, head, sizeof head - 1);
	ignored = write(STDERR_FILENO, p, (size_t)(num + sizeof num - p));
	ignored = write(STDERR_FILENO, tail, sizeof tail - 1);
	(void)ignored;
	sigaction(sig, &dfl, NULL);
	/* blocked inside this handler: delivered, with the default action, as it returns */
	syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
}

static int sigsys_handler_install(char *err, size_t errlen)
{
	struct sigaction sa = { .sa_sigaction = sigsys_say_why, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, errlen, "SIGSYS handler: %s", strerror(errno));
		return -XE_IO;
	}
	return 0;
}

int sandbox_seccomp_wire(char *err, size_t errlen)
{
	static struct sock_filter f[PROG_MAX];
	struct sock_fprog prog = { .len = (unsigned short)build(f), .filter = f };

	if (sigsys_handler_install(err, errlen) < 0)
		return -XE_IO;
	/* required for an unprivileged filter; it also keeps a later exec from gaining anything */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -XE_IO;
	}
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	/*
	 * systemd's SystemCallFilter=@system-service does not allow seccomp(2) itself,
	 * but allows prctl: the older call installs the same filter, on this thread
	 * only, which is enough while it is the only thread.
	 */
	if (rc < 0 && (errno == EPERM || errno == ENOSYS))
		rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp: %s", rc > 0 ? "another thread has a different filter" : strerror(errno));
		return -XE_IO;
	}
	return 0;
}

int sandbox_selftest_forbidden(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd >= 0 || errno != EPERM) {
		if (fd >= 0)
			close(fd);
		return 3;
	}
	char *const argv[] = { (char *)"true", NULL };
	execve("/bin/true", argv, argv + 1);
	return 4;
}
