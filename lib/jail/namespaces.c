#define _GNU_SOURCE
#include "namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
	unsigned prot;
	int flag;
	const char *flag_name;
} jail_namespaces[] = {
	{ SBX_PROT_MOUNT_NS, CLONE_NEWNS, "CLONE_NEWNS" },
	{ SBX_PROT_IPC_NS, CLONE_NEWIPC, "CLONE_NEWIPC" },
	{ SBX_PROT_UTS_NS, CLONE_NEWUTS, "CLONE_NEWUTS" },
	{ SBX_PROT_NET_NS, CLONE_NEWNET, "CLONE_NEWNET" },
	{ SBX_PROT_PID_NS, CLONE_NEWPID, "CLONE_NEWPID" },
};

static int jail_write_proc(const char *file, const char *text)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC), rc = 0;
	ssize_t n = (ssize_t)strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)n) != n)
		rc = -errno;
	close(fd);
	return rc;
}

int jail_unshare_user(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int rc;

	if (unshare(CLONE_NEWUSER) < 0)
		return -errno;
	/* An unprivileged map needs setgroups denied first; ours maps only our own ids. */
	rc = jail_write_proc("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)uid, (unsigned)uid);
	if (rc == 0)
		rc = jail_write_proc("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)gid, (unsigned)gid);
	if (rc == 0)
		rc = jail_write_proc("/proc/self/gid_map", map);
	return rc;
}

static const char *why_denied(int err)
{
	if (err == EPERM && geteuid() != 0)
		return " (needs root, or a user namespace of our own)";
	if (err == ENOSPC)
		return " (the namespace limit in /proc/sys/user is reached)";
	return "";
}

unsigned jail_unshare(unsigned want, int in_userns, struct jail_report *r)
{
	const char *owner = in_userns ? " (in a user namespace of our own)" : "";
	unsigned done = 0;

	for (size_t i = 0; i < sizeof(jail_namespaces) / sizeof(jail_namespaces[0]); i++) {
		unsigned prot = jail_namespaces[i].prot;

		if (!(want & prot))
			continue;
		if (unshare(jail_namespaces[i].flag) < 0) {
			int err = errno;
			jail_report_set(r, prot, 0, "unshare(%s): %s%s",
					jail_namespaces[i].flag_name, strerror(err),
					why_denied(err));
			continue;
		}
		done |= prot;
		jail_report_set(r, prot, prot != SBX_PROT_PID_NS, "own namespace%s", owner);
	}
	if (done & SBX_PROT_PID_NS)
		jail_report_set(r, SBX_PROT_PID_NS, 0, "unshared; no process forked into it yet");
	if (done & SBX_PROT_NET_NS)
		jail_report_set(r, SBX_PROT_NET_NS, 1, "own namespace with no interface up%s",
				owner);
	return done;
}

void jail_confirm_pid_ns(struct jail_report *r, unsigned unshared)
{
	if (!(unshared & SBX_PROT_PID_NS))
		return; /* the failure stays as reported */
	if (getpid() == 1)
		jail_report_set(r, SBX_PROT_PID_NS, 1, "pid 1 of its own namespace");
	else
		jail_report_set(r, SBX_PROT_PID_NS, 0, "unshared, but this process is pid %d",
				(int)getpid());
}

int jail_unshare_cgroup(void)
{
	return unshare(CLONE_NEWCGROUP) < 0 ? -errno : 0;
}
