/* fork + execve with a report pipe (see spawn.h). posix_spawn cannot chdir or switch credentials
 * portably, so this is the classic fork: the child only makes system calls until execve, and
 * writes {step, errno} to an O_CLOEXEC pipe if one fails; a pipe closed without a word means the
 * exec happened. */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

const char *spawn_step_name(enum spawn_step step)
{
	switch (step) {
	case SPAWN_OK:
		return "spawn";
	case SPAWN_CHDIR:
		return "chdir";
	case SPAWN_SETGROUPS:
		return "setgroups";
	case SPAWN_SETGID:
		return "setgid";
	case SPAWN_SETUID:
		return "setuid";
	case SPAWN_OPEN_STDOUT:
		return "open stdout_path";
	case SPAWN_OPEN_STDERR:
		return "open stderr_path";
	case SPAWN_STDIO:
		return "set up stdio for";
	case SPAWN_EXEC:
		return "exec";
	case SPAWN_FORK:
		return "fork for";
	}
	return "spawn";
}

static struct rlimit spawn_nofile; /* the limit the agent started with; rlim_cur 0: unknown */

void spawn_init(void)
{
	struct rlimit raised;

	if (getrlimit(RLIMIT_NOFILE, &spawn_nofile) < 0) {
		spawn_nofile.rlim_cur = 0;
		return;
	}
	raised = spawn_nofile;
	raised.rlim_cur = raised.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &raised) < 0)
		spawn_nofile.rlim_cur = 0; /* unchanged: nothing to give back */
}

static _Noreturn void child_fail(int report, enum spawn_step step, int err)
{
	struct spawn_failure f = {step, err};

	if (write(report, &f, sizeof(f)) < 0) {
		/* The parent then sees a child that exited 127 without exec'ing: still an error. */
	}
	_exit(127);
}

/* Non-blocking open so a FIFO without a reader fails (ENXIO) rather than stalling the child
 * before exec; other children's report pipes would stay open meanwhile. */
static int child_open_output(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0644);

	if (fd >= 0 && fcntl(fd, F_SETFL, 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The agent protects itself from the OOM killer (main.c); its children must not inherit that.
 * Before the credentials change, which leaves /proc/self owned by root. */
static void child_oom_reset(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, "0", 1) < 0) {
		/* Nothing better to do. */
	}
	close(fd);
}

static void child_credentials(int report, const struct user *u)
{
	/* Raw system calls: the kernel sets credentials per thread, and the child has one thread;
	 * the libc wrappers would try to broadcast to threads that only exist in the parent. */
	if (syscall(SYS_setgroups, (long)u->ngroups, u->groups) < 0)
		child_fail(report, SPAWN_SETGROUPS, errno);
	if (syscall(SYS_setresgid, (long)u->gid, (long)u->gid, (long)u->gid) < 0)
		child_fail(report, SPAWN_SETGID, errno);
	if (syscall(SYS_setresuid, (long)u->uid, (long)u->uid, (long)u->uid) < 0)
		child_fail(report, SPAWN_SETUID, errno);
}

#define SPAWN_MAX_FDS 8

/* fds 0..2 from the arguments, then the extra ones as 3, 4, ... */
static void child_stdio(int report, const struct spawn_args *a)
{
	int fd[SPAWN_MAX_FDS] = {a->stdin_fd, a->stdout_fd, a->stderr_fd};
	int n = 3 + a->n_extra;

	if (a->n_extra < 0 || n > SPAWN_MAX_FDS)
		child_fail(report, SPAWN_STDIO, EINVAL);
	for (int i = 0; i < a->n_extra; i++)
		fd[3 + i] = a->extra_fds[i];
	if (a->stdout_path && (fd[1] = child_open_output(a->stdout_path)) < 0)
		child_fail(report, SPAWN_OPEN_STDOUT, errno);
	if (a->stderr_path) {
		/* One file for both: one open, or the two O_TRUNC offsets would overwrite each
		 * other. */
		if (a->stdout_path && !strcmp(a->stdout_path, a->stderr_path))
			fd[2] = fd[1];
		else if ((fd[2] = child_open_output(a->stderr_path)) < 0)
			child_fail(report, SPAWN_OPEN_STDERR, errno);
	}
	/* Move sources out of 0..n-1 first so one dup2 cannot clobber another's source. */
	for (int i = 0; i < n; i++)
		if (fd[i] < n && (fd[i] = fcntl(fd[i], F_DUPFD_CLOEXEC, n)) < 0)
			child_fail(report, SPAWN_STDIO, errno);
	for (int i = 0; i < n; i++)
		if (dup2(fd[i], i) < 0)
			child_fail(report, SPAWN_STDIO, errno);
}

static _Noreturn void spawn_child(const struct spawn_args *a, int report)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	int err = ENOENT, eacces = 0;
	sigset_t none;

	setpgid(0, 0);
	child_oom_reset();
	if (chdir(a->cwd) < 0)
		child_fail(report, SPAWN_CHDIR, errno);
	if (a->user)
		child_credentials(report, a->user);
	child_stdio(report, a);
	/* Ignored signals survive exec: the agent ignores SIGPIPE (a pipeline expects the default)
	 * and may itself have been started with SIGINT ignored (a kernel's interrupt). */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP: EINVAL, harmless */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(022);
	/* A plain system call (limits are per process): programs that select() or close every fd
	 * up to the limit expect the usual one. */
	if (spawn_nofile.rlim_cur)
		setrlimit(RLIMIT_NOFILE, &spawn_nofile);
	for (char *const *p = a->candidates; *p; p++) {
		execve(*p, a->argv, a->envp);
		err = errno;
		if (err == EACCES)
			eacces = 1;
		else if (err != ENOENT && err != ENOTDIR)
			break; /* a real failure of an existing file (ENOEXEC, ETXTBSY, ...) */
	}
	child_fail(report, SPAWN_EXEC, eacces && (err == ENOENT || err == ENOTDIR) ? EACCES : err);
}

int spawn_process(const struct spawn_args *a, pid_t *pid, struct spawn_failure *why)
{
	struct spawn_failure f;
	int report[2];
	ssize_t n;
	pid_t child;

	if (pipe2(report, O_CLOEXEC) < 0) {
		*why = (struct spawn_failure){SPAWN_FORK, errno};
		return -why->err;
	}
	child = fork();
	if (child < 0) {
		*why = (struct spawn_failure){SPAWN_FORK, errno};
		close(report[0]);
		close(report[1]);
		return -why->err;
	}
	if (child == 0) {
		close(report[0]);
		spawn_child(a, report[1]);
	}
	close(report[1]);
	/* Both sides set the group, so it exists whichever runs first; after the exec the
	 * parent's call fails with EACCES, harmlessly. */
	setpgid(child, child);
	do
		n = read(report[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == 0) {
		*pid = child;
		return 0;
	}
	if (n != sizeof(f))
		f = (struct spawn_failure){SPAWN_EXEC, n < 0 ? errno : EIO};
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	*why = f;
	return -f.err;
}
