/* Starting one process: fork, set it up (process group, directory, credentials, stdio, signals),
 * exec. Everything the child does between fork and exec is async-signal-safe (the agent is
 * threaded), and a failure in the child comes back to the parent as the step and errno. */
#pragma once
#include "users.h"

#include <sys/types.h>

enum spawn_step {
	SPAWN_OK,
	SPAWN_CHDIR,
	SPAWN_SETGROUPS,
	SPAWN_SETGID,
	SPAWN_SETUID,
	SPAWN_OPEN_STDOUT,
	SPAWN_OPEN_STDERR,
	SPAWN_STDIO,
	SPAWN_EXEC,
	SPAWN_FORK, /* in the parent */
};

struct spawn_args {
	char *const *argv;
	char *const *envp;
	char *const *candidates; /* paths to execve in turn, as execvp would (NULL-terminated) */
	const char *cwd;
	const struct user *user;	       /* NULL: keep the agent's credentials */
	int stdin_fd, stdout_fd, stderr_fd;    /* become 0, 1, 2; -1: see the paths */
	const int *extra_fds;		       /* become 3, 4, ... (n_extra of them) */
	int n_extra;
	const char *stdout_path, *stderr_path; /* opened by the child, as the user, in cwd */
};

struct spawn_failure {
	enum spawn_step step;
	int err;
};

/* Raises the agent's own descriptor limit (soft to hard): up to AGENT_MAX_CONNS connections
 * with a few descriptors each, and an eventfd per background process, exceed the usual 1024.
 * Children get the limit they would have had back. Call once, before any spawn_process. */
void spawn_init(void);
/* 0 with *pid set once the child has exec'd (it leads a new process group whose id is its pid),
 * or -errno with *why saying which step failed (the child is reaped). */
int spawn_process(const struct spawn_args *a, pid_t *pid, struct spawn_failure *why);
const char *spawn_step_name(enum spawn_step step);
