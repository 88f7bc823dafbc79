/* The agent's table of the processes it started: deadlines (one watchdog thread kills a
 * process group when its timeout passes, whatever its connection's thread is doing), signals
 * from "kill", and the exit status of background processes kept until a "wait" collects it.
 *
 * Each process's group is signalled only while its leader is unreaped: a reaped pid (and so its
 * group id) may be reused. Whoever waits for a process therefore marks it exited (proc_exited)
 * before reaping it. Nothing here uses SIGCHLD or waits for any child but its own. */
#pragma once
#include <stdint.h>
#include <sys/types.h>

#define PROC_MAX_BACKGROUND 1024 /* running or not yet waited for */

struct proc;

struct proc_status {
	int status; /* as from waitpid */
	int timed_out;
	int64_t duration_ms;
};

/* Starts the watchdog thread. 0 or -errno. */
int proc_init(void);
/* A foreground process (its connection's thread reaps it). timeout_ms 0: none. NULL: ENOMEM. */
struct proc *proc_add(pid_t pid, int64_t start_ms, int64_t timeout_ms);
/* The process is a zombie: stop signalling its group. Returns whether its timeout killed it. */
int proc_exited(struct proc *p);
/* Forgets a foreground process (after proc_exited and waitpid). */
void proc_remove(struct proc *p);
/* A background process: registered and reaped by a thread of its own. 0, -EAGAIN (too many
 * background processes), -ENOMEM or -errno; on failure the caller still owns the child. */
int proc_add_background(pid_t pid, int64_t start_ms, int64_t timeout_ms);
/* Sends sig to the group of one of our running processes. 0, -ESRCH or -errno. */
int proc_kill(pid_t pid, int sig);
/* Waits for background process pid to end, collects its status (it is then forgotten). Gives
 * up if client_fd becomes readable (the client went away or broke protocol). timeout_ms 0:
 * none. 0, -ESRCH (not one of our background processes), -ETIMEDOUT, -ECONNRESET. */
int proc_wait(pid_t pid, int64_t timeout_ms, int client_fd, struct proc_status *out);
