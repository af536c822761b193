/* sandbox.h: dropping root for a service user and bitw-wire's syscall filter (privdrop.c, seccomp.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Capability bits (CAP_* numbers of linux/capability.h) a process may keep across the drop. */
#define SANDBOX_CAP_NET_ADMIN 12
#define SANDBOX_CAP_NET_RAW 13
#define SANDBOX_CAPS_WIRE ((UINT64_C(1) << SANDBOX_CAP_NET_ADMIN) | (UINT64_C(1) << SANDBOX_CAP_NET_RAW))

/*
 * Become USER (its uid, primary gid and groups) keeping only the capabilities in
 * keep_caps, bounding set included, and set no_new_privs. Call it in the only
 * thread, after everything that needs root is open: capabilities are per thread.
 * Verifies the result: -XE_BAD_PARAM for an unknown user, -XE_IO (err says why)
 * if a step fails or anything is left over.
 * Not started as root: succeeds only if already USER (nothing to drop).
 */
int sandbox_drop_user(const char *user, uint64_t keep_caps, char *err, size_t errlen);

/* Hand PATH (e.g. the control socket made as root) to USER, so it can still remove it. */
int sandbox_give_path(const char *user, const char *path, char *err, size_t errlen);

/* The capabilities of the calling thread, effective and permitted, as CAP_* bit masks. */
int sandbox_caps(uint64_t *effective, uint64_t *permitted);

/*
 * Install bitw-wire's seccomp filter: only the syscalls of its loops (and of the
 * sanitizers when built with them) are allowed; socket() only for AF_INET and
 * AF_UNIX datagram sockets (interface ioctls, sd_notify), others get EPERM,
 * and clone() only for threads; anything else kills the process with
 * SIGSYS after its SIGSYS handler wrote the syscall's number to stderr.
 * Call before the data threads start; they inherit it.
 */
int sandbox_seccomp_wire(char *err, size_t errlen);

/*
 * Test hook: after the sandbox is in place, make a refused and then a forbidden
 * syscall. Returns only if the filter let one through: 3 if socket(AF_INET,
 * SOCK_STREAM) worked, 4 if execve returned; a working filter kills the process.
 */
int sandbox_selftest_forbidden(void);
