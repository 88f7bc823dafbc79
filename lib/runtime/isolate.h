/* Jailing the VMM, in the order that works. The spawned process becomes the monitor: it makes
 * the sandbox's cgroup and new namespaces, then forks the VMM into them (a pid namespace takes
 * effect at a fork) and moves it into the cgroup. The VMM builds its machine while it can still
 * open files (/dev/kvm, kernel, initramfs, disks, console log, its vsock listener), then
 * pivot_roots into its own directory, sets rlimits, drops to the jail ids and every capability,
 * sets no_new_privs, and each of its threads installs its role's seccomp filter before touching
 * the guest. The monitor drops its privileges too, waits for the VMM and reports how it ended:
 * only a parent sees that a seccomp filter or the OOM killer took it. */
#pragma once
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "jail/jail.h"
#include "jail/seccomp.h"
#include "vmm_config.h"

struct isolate {
	const struct vmm_config *cfg;
	struct jail_report report;
	unsigned unshared;           /* namespaces made (SBX_PROT_*_NS) */
	int userns;                  /* not root: they live in a user namespace of our own */
	pid_t monitor_pid, vmm_pid;  /* as the library's pid namespace sees them */
	int status_fd;               /* VMM: the pipe to the monitor, -1 before the fork */
	int log_only;                /* seccomp logs instead of killing (debugging) */
	uid_t uid;                   /* what the VMM runs as, once isolate_enter is done */
	gid_t gid;
	struct jail_filter filters[JAIL_ROLE_COUNT];
	pthread_mutex_t lock;        /* threads record their filter's failure */
	char thread_err[256];
};

/* In the spawned process. Returns 0 in the VMM; the monitor's side never returns. With nothing
 * forked and a message in err: -EPERM when a protection is missing that the config does not
 * allow to be, -EIO for any other failure. The cgroup, if made, is left to the library. */
int isolate_start(struct isolate *iso, const struct vmm_config *cfg, int control_fd, char *err,
		  size_t errlen);
/* VMM, before isolate_enter (libseccomp still sees the whole system): compiles the filters. */
int isolate_build_filters(struct isolate *iso, char *err, size_t errlen);
/* VMM, once the machine is built: pivot_root, rlimits (fsize: the largest file it may grow),
 * ids, capabilities, no_new_privs. -EPERM with the first missing protection the config does
 * not allow to be missing in err. */
int isolate_enter(struct isolate *iso, uint64_t fsize, char *err, size_t errlen);
/* On each machine thread (machine_events.thread_start) and, with JAIL_ROLE_CONTROL, on the main
 * thread once the machine runs: installs the role's filter. */
int isolate_thread(struct isolate *iso, enum jail_role role);
/* After every thread installed its filter: reports seccomp and checks it is allowed if missing;
 * err gets the first thread failure. */
int isolate_finish(struct isolate *iso, char *err, size_t errlen);
/* The report for the started or probe event, with "cgroup", "uid" and "gid". */
json_t *isolate_json(const struct isolate *iso);
/* VMM: tells the monitor how it ends ("exit REASON DETAIL" or "fail CODE"). */
void isolate_tell_monitor(struct isolate *iso, const char *what, const char *detail);
/* -EPERM with a message if a protection in prots is missing and not allowed to be. */
int isolate_check(const struct isolate *iso, unsigned prots, char *err, size_t errlen);
