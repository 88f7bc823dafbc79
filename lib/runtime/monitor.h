/* The monitor: the process the library spawned, parent of the jailed VMM. It holds no more
 * than it needs (the VMM's pid, the status pipe, the control channel, the pre-created exit
 * record, the cgroup's event files), drops to the jail ids with no capabilities and its own
 * seccomp filter, forwards termination signals to the VMM, and when the VMM is gone writes the
 * exit record and, if the VMM could not say why it ended, the exit event: a seccomp kill, a
 * limit, a crash. */
#pragma once
#include <stdint.h>
#include <sys/types.h>

struct monitor {
	pid_t vmm;              /* the VMM, as the monitor's pid namespace sees it */
	int status_fd;          /* read end of the VMM's status pipe */
	int control_fd;         /* the control channel, for the exit event */
	int exit_fd;            /* <state dir>/exit, created empty, written last */
	int memory_events_fd;   /* the cgroup's memory.events, -1 without */
	int memory_max_fd;      /* its memory.max, -1 without */
	uint64_t memory_max_mib; /* the limit it was given */
	uid_t uid;              /* ids to drop to when root */
	gid_t gid;
	int log_only;           /* seccomp logs instead of killing */
	unsigned ttl_s;         /* the VMM is killed this long after the monitor started; 0: never */
};

/* Never returns: exits once the VMM is gone and reported. */
void __attribute__((noreturn)) monitor_run(struct monitor *mon);
