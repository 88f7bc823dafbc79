/* New namespaces for the VMM: mount, IPC, UTS and network for the calling process, pid for the
 * children it forks next (a pid namespace takes effect at the next fork). */
#pragma once
#include "jail.h"

/* For a caller that is not root: a user namespace of its own in which it keeps its ids (mapped
 * to themselves) and holds the capabilities the other namespaces and the pivot need; they,
 * like everything it does, still only reach what its ids may. 0 or -errno (e.g. unprivileged
 * user namespaces disabled, or we are in a chroot). */
int jail_unshare_user(void);
/* Unshares each namespace in `want` (SBX_PROT_*_NS bits) on its own, so the report names the
 * one that failed and why (in_userns: after jail_unshare_user, which the report mentions). PID_NS
 * is reported as pending: the child confirms it. Returns the bits that were unshared. */
unsigned jail_unshare(unsigned want, int in_userns, struct jail_report *r);
/* In the first child after jail_unshare, given what it returned: confirms the pid namespace
 * (we are its pid 1) in r. */
void jail_confirm_pid_ns(struct jail_report *r, unsigned unshared);
/* A cgroup namespace rooted at the cgroup the process is in now, so it cannot name others.
 * Best effort: 0 or -errno. */
int jail_unshare_cgroup(void);
