/* privdrop.c: switch a daemon started as root to its service user, keeping only the capabilities it names. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "sandbox.h"
#include "wire.h"

static int fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, errno ? strerror(errno) : "left over");
	return -XE_IO;
}

int sandbox_caps(uint64_t *effective, uint64_t *permitted)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -XE_IO;
	*effective = data[0].effective | (uint64_t)data[1].effective << 32;
	*permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
	return 0;
}

/* Effective = permitted = keep; nothing inheritable, so nothing passes to a program it might run. */
static int caps_set(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {
		{ .effective = (uint32_t)keep, .permitted = (uint32_t)keep },
		{ .effective = (uint32_t)(keep >> 32), .permitted = (uint32_t)(keep >> 32) },
	};

	return (int)syscall(SYS_capset, &hdr, data);
}

/* The bounding set limits what any later exec could gain; dropping needs CAP_SETPCAP, so it goes first. */
static int bounding_drop(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++) {
		if (keep & (UINT64_C(1) << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return errno == EINVAL ? 0 : -1;  /* EINVAL: past the kernel's last capability */
	}
	return 0;
}

static bool bounding_clean(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			return true;
		if (r > 0 && !(keep & (UINT64_C(1) << cap)))
			return false;
	}
	return true;
}

/* Trust nothing the calls above reported: read back ids, groups and capabilities, and try to regain root. */
static int verify(uid_t uid, gid_t gid, uint64_t keep, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[64];
	uint64_t eff, prm;
	int ng = getgroups(64, groups);

	errno = 0;
	if (getresuid(&ru, &eu, &su) < 0 || ru != uid || eu != uid || su != uid)
		return fail(err, errlen, "uid check");
	if (getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid || sg != gid)
		return fail(err, errlen, "gid check");
	for (int i = 0; i < ng; i++)
		if (groups[i] == 0)
			return fail(err, errlen, "group root kept");
	if (ng < 0 || sandbox_caps(&eff, &prm) < 0 || eff != keep || prm != keep)
		return fail(err, errlen, "capability check");
	if (!bounding_clean(keep))
		return fail(err, errlen, "bounding set check");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return fail(err, errlen, "no_new_privs check");
	if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0) {
		errno = 0;
		return fail(err, errlen, "root could be regained");
	}
	return 0;
}

static int switch_ids(const struct passwd *pw, uint64_t keep, char *err, size_t errlen)
{
	if (bounding_drop(keep) < 0)
		return fail(err, errlen, "dropping the bounding set");
	if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, "PR_SET_KEEPCAPS");
	if (initgroups(pw->pw_name, pw->pw_gid) < 0)
		return fail(err, errlen, "initgroups");
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0)
		return fail(err, errlen, "setresgid");
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return fail(err, errlen, "setresuid");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return fail(err, errlen, "PR_SET_KEEPCAPS");
	/* setresuid left the kept ones permitted only; ambient ones would survive an exec, so none */
	if (caps_set(keep) < 0)
		return fail(err, errlen, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(err, errlen, "clearing ambient capabilities");
	return 0;
}

int sandbox_give_path(const char *user, const char *path, char *err, size_t errlen)
{
	const struct passwd *pw = getpwnam(user);

	if (!pw) {
		snprintf(err, errlen, "--user %s: no such user", user);
		return -XE_BAD_PARAM;
	}
	if (geteuid() == 0 && chown(path, pw->pw_uid, pw->pw_gid) < 0) {
		snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
		return -XE_IO;
	}
	return 0;
}

int sandbox_drop_user(const char *user, uint64_t keep_caps, char *err, size_t errlen)
{
	errno = 0;
	const struct passwd *pw = getpwnam(user);

	if (!pw) {
		snprintf(err, errlen, "--user %s: no such user", user);
		return -XE_BAD_PARAM;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "--user %s: that is root; name an unprivileged user", user);
		return -XE_BAD_PARAM;
	}
	if (geteuid() != 0) {
		if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
			return 0;  /* already that user, e.g. started by a service manager: nothing to drop */
		snprintf(err, errlen, "--user %s: not started as root or as %s", user, user);
		return -XE_BAD_PARAM;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	int rc = switch_ids(pw, keep_caps, err, errlen);

	if (rc < 0)
		return rc;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, "PR_SET_NO_NEW_PRIVS");
	return verify(uid, gid, keep_caps, err, errlen);
}
