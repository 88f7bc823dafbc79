/* The process table, its watchdog, and background reapers (see proc.h). One mutex guards the
 * list; it is short (what a sandbox runs at once), so lookups are linear. */
#define _GNU_SOURCE
#include "proc.h"
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct proc {
	struct proc *next;
	pid_t pid;
	int background;
	int64_t start_ms;
	int64_t deadline_ms; /* -1: none */
	int exited;	     /* a zombie or reaped: its group is no longer ours to signal */
	int timed_out;
	/* Background only. */
	int done; /* status and end_ms are set */
	int status;
	int64_t end_ms;
	int collected; /* a wait reported it; freed once no waiter holds it */
	int waiters;
	int done_fd; /* eventfd, readable once done */
};

static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t proc_watch; /* CLOCK_MONOTONIC; signalled when a deadline is added */
static struct proc *procs;
static int proc_nbackground;

static int group_kill(pid_t pid, int sig)
{
	int rc = kill(-pid, sig) == 0 ? 0 : -errno;

	/* Before its own setpgid the child is not yet a group leader: signal it alone. And the
	 * leader may have moved itself to another group of the session (setpgid), leaving the
	 * rest behind: a SIGKILL (timeout, client gone) must still end it, or its connection waits
	 * for it forever. It is unreaped, so the pid is still ours. */
	if ((rc == -ESRCH || sig == SIGKILL) && kill(pid, sig) == 0)
		rc = 0;
	return rc;
}

static void proc_link(struct proc *p)
{
	p->next = procs;
	procs = p;
	if (p->deadline_ms >= 0)
		pthread_cond_signal(&proc_watch);
}

static void proc_unlink(struct proc *p)
{
	for (struct proc **pp = &procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void proc_free(struct proc *p)
{
	if (p->background) {
		proc_nbackground--;
		close(p->done_fd);
	}
	free(p);
}

static struct proc *proc_new(pid_t pid, int64_t start_ms, int64_t timeout_ms)
{
	struct proc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->pid = pid;
	p->start_ms = start_ms;
	p->deadline_ms = timeout_ms > 0 ? start_ms + timeout_ms : -1;
	p->done_fd = -1;
	return p;
}

/* Kills what is past its deadline; returns the next deadline, or -1. Under the lock. */
static int64_t proc_watch_once(int64_t now)
{
	int64_t next = -1;

	for (struct proc *p = procs; p; p = p->next) {
		if (p->exited || p->timed_out || p->deadline_ms < 0)
			continue;
		if (p->deadline_ms <= now) {
			group_kill(p->pid, SIGKILL);
			p->timed_out = 1;
		} else if (next < 0 || p->deadline_ms < next) {
			next = p->deadline_ms;
		}
	}
	return next;
}

static void *proc_watchdog(void *arg)
{
	pthread_mutex_lock(&proc_lock);
	for (;;) {
		int64_t next = proc_watch_once(agent_now_ms());
		struct timespec ts = {next / 1000, (next % 1000) * 1000000};

		if (next < 0)
			pthread_cond_wait(&proc_watch, &proc_lock);
		else
			pthread_cond_timedwait(&proc_watch, &proc_lock, &ts);
	}
	return arg;
}

int proc_init(void)
{
	pthread_condattr_t attr;
	pthread_t t;
	int rc;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&proc_watch, &attr);
	pthread_condattr_destroy(&attr);
	rc = pthread_create(&t, NULL, proc_watchdog, NULL);
	if (rc)
		return -rc;
	pthread_detach(t);
	return 0;
}

struct proc *proc_add(pid_t pid, int64_t start_ms, int64_t timeout_ms)
{
	struct proc *p = proc_new(pid, start_ms, timeout_ms);

	if (!p)
		return NULL;
	pthread_mutex_lock(&proc_lock);
	proc_link(p);
	pthread_mutex_unlock(&proc_lock);
	return p;
}

int proc_exited(struct proc *p)
{
	int timed_out;

	pthread_mutex_lock(&proc_lock);
	p->exited = 1;
	timed_out = p->timed_out;
	pthread_mutex_unlock(&proc_lock);
	return timed_out;
}

void proc_remove(struct proc *p)
{
	pthread_mutex_lock(&proc_lock);
	proc_unlink(p);
	pthread_mutex_unlock(&proc_lock);
	proc_free(p);
}

/* The reaper of one background process: wait without reaping, mark it exited, reap, publish. */
static void *proc_reaper(void *arg)
{
	struct proc *p = arg;
	int64_t end;
	siginfo_t si;
	int status = 0;

	while (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	end = agent_now_ms();
	proc_exited(p);
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&proc_lock);
	p->status = status;
	p->end_ms = end;
	p->done = 1;
	/* Under the lock: once done is visible a waiter may collect and free p. */
	eventfd_write(p->done_fd, 1);
	pthread_mutex_unlock(&proc_lock);
	return NULL;
}

int proc_add_background(pid_t pid, int64_t start_ms, int64_t timeout_ms)
{
	struct proc *p = proc_new(pid, start_ms, timeout_ms);
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (!p)
		return -ENOMEM;
	p->background = 1;
	p->done_fd = eventfd(0, EFD_CLOEXEC);
	if (p->done_fd < 0) {
		rc = -errno;
		free(p);
		return rc;
	}
	pthread_mutex_lock(&proc_lock);
	if (proc_nbackground >= PROC_MAX_BACKGROUND) {
		pthread_mutex_unlock(&proc_lock);
		close(p->done_fd);
		free(p);
		return -EAGAIN;
	}
	proc_nbackground++;
	proc_link(p);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, proc_reaper, p);
	pthread_attr_destroy(&attr);
	if (rc) {
		proc_unlink(p);
		proc_free(p);
	}
	pthread_mutex_unlock(&proc_lock);
	return -rc;
}

int proc_kill(pid_t pid, int sig)
{
	int rc = -ESRCH;

	pthread_mutex_lock(&proc_lock);
	for (struct proc *p = procs; p; p = p->next) {
		if (p->pid == pid && !p->exited) {
			rc = group_kill(pid, sig);
			break;
		}
	}
	pthread_mutex_unlock(&proc_lock);
	return rc;
}

/* Polls the done eventfd and the client. 0 done, -ETIMEDOUT, -ECONNRESET. */
static int proc_wait_poll(int done_fd, int client_fd, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd[2] = {{done_fd, POLLIN, 0}, {client_fd, POLLIN, 0}};
		int64_t left = deadline < 0 ? -1 : deadline - agent_now_ms();
		int n;

		if (deadline >= 0 && left <= 0)
			return -ETIMEDOUT;
		n = poll(pfd, 2, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if (pfd[0].revents)
			return 0;
		if (pfd[1].revents)
			return -ECONNRESET;
	}
}

int proc_wait(pid_t pid, int64_t timeout_ms, int client_fd, struct proc_status *out)
{
	int64_t deadline = timeout_ms > 0 ? agent_now_ms() + timeout_ms : -1;
	struct proc *p;
	int rc;

	pthread_mutex_lock(&proc_lock);
	for (p = procs; p; p = p->next)
		if (p->pid == pid && p->background && !p->collected)
			break;
	if (!p) {
		pthread_mutex_unlock(&proc_lock);
		return -ESRCH;
	}
	p->waiters++;
	pthread_mutex_unlock(&proc_lock);

	rc = proc_wait_poll(p->done_fd, client_fd, deadline);

	pthread_mutex_lock(&proc_lock);
	p->waiters--;
	if (rc == 0 && p->collected) {
		rc = -ESRCH; /* a concurrent wait reported it first */
	} else if (rc == 0) {
		out->status = p->status;
		out->timed_out = p->timed_out;
		out->duration_ms = p->end_ms - p->start_ms;
		p->collected = 1;
	}
	if (p->collected && !p->waiters) {
		proc_unlink(p);
		proc_free(p);
	}
	pthread_mutex_unlock(&proc_lock);
	return rc;
}
