/* sandbox-agent: the in-guest server of docs/agent-protocol.md. The guest init (guest/init.c)
 * starts it after switching to the root disk and restarts it if it dies. It listens on vsock
 * port 1024 and serves each connection (one request) on a thread of its own, at most
 * AGENT_MAX_CONNS at once; further connections wait in the listen backlog until one ends.
 *
 *   sandbox-agent               listen on AF_VSOCK port 1024 (in the guest)
 *   sandbox-agent --unix PATH   listen on a Unix socket instead: for testing and debugging the
 *                               agent on any Linux machine, where vsock may be unavailable
 *
 * It reports on stdout (the guest console) only that it is listening, and fatal errors. */
#define _GNU_SOURCE
#include "agent.h"
#include "console_line.h"
#include "context.h"
#include "proc.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <linux/vm_sockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_BACKLOG 128
#define CONN_STACK_SIZE (256u << 10)
#define ACCEPT_MAX_FAILURES 600 /* in a row, 100 ms apart */

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_freed = PTHREAD_COND_INITIALIZER;
static int conn_count;

/* One write per line, so it never interleaves with the console's other writers mid-line. */
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_line(AGENT_NAME ": ", fmt, ap);
	va_end(ap);
}

static int listen_vsock(void)
{
	struct sockaddr_vm a = {
	    .svm_family = AF_VSOCK,
	    .svm_port = AGENT_VSOCK_PORT,
	    .svm_cid = VMADDR_CID_ANY,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		say("error: vsock socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		say("error: vsock port %d: %s", AGENT_VSOCK_PORT, strerror(errno));
		close(fd);
		return -1;
	}
	say("listening on vsock port %d", AGENT_VSOCK_PORT);
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		say("error: %s: %s", path, strerror(ENAMETOOLONG));
		return -1;
	}
	strcpy(a.sun_path, path);
	/* A socket left by an earlier run; never anything else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		say("error: unix socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	say("listening on unix socket %s", path);
	return fd;
}

static void *conn_thread(void *arg)
{
	conn_serve((int)(intptr_t)arg);
	pthread_mutex_lock(&conn_lock);
	conn_count--;
	pthread_cond_signal(&conn_freed);
	pthread_mutex_unlock(&conn_lock);
	return NULL;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static _Noreturn void serve(int lfd)
{
	pthread_attr_t attr;
	int fd, rc, failures = 0;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CONN_STACK_SIZE);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		pthread_mutex_lock(&conn_lock);
		while (conn_count >= AGENT_MAX_CONNS)
			pthread_cond_wait(&conn_freed, &conn_lock);
		pthread_mutex_unlock(&conn_lock);

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of something (EMFILE, ENOMEM): let connections finish. A listener
			 * that keeps failing is broken: exit, and the init starts a fresh agent. */
			if (++failures == ACCEPT_MAX_FAILURES) {
				say("error: accept: %s; exiting", strerror(errno));
				exit(1);
			}
			pause_ms(100);
			continue;
		}
		failures = 0;
		pthread_mutex_lock(&conn_lock);
		conn_count++;
		pthread_mutex_unlock(&conn_lock);
		rc = pthread_create(&t, &attr, conn_thread, (void *)(intptr_t)fd);
		if (rc) {
			close(fd);
			pthread_mutex_lock(&conn_lock);
			conn_count--;
			pthread_mutex_unlock(&conn_lock);
			pause_ms(100);
		}
	}
}

/* The agent writes to sockets and pipes whose far end may vanish, and its children must not
 * inherit its fds: make sure 0..2 exist so no socket ever lands there and becomes someone's
 * stdio. */
static void stdio_ensure(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= STDERR_FILENO)
		;
	if (fd > STDERR_FILENO)
		close(fd);
}

/* When the guest runs out of memory, the code it runs should be killed, not the agent. Children
 * go back to 0 (spawn.c). Not fatal: without privilege (--unix tests) it simply fails. */
static void oom_protect(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, "-1000", 5) < 0) {
		/* Unprivileged: keep the default. */
	}
	close(fd);
}

int main(int argc, char **argv)
{
	const char *unix_path = NULL;
	int lfd, rc;

	if (argc == 3 && !strcmp(argv[1], "--unix")) {
		unix_path = argv[2];
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s [--unix PATH]\n", argv[0]);
		return 2;
	}
	/* Started with fexecve, the kernel names us after the descriptor ("3"); ps should say. */
	prctl(PR_SET_NAME, AGENT_NAME);
	stdio_ensure();
	oom_protect();
	/* A thread per connection would otherwise grow up to 8 malloc arenas per CPU, each kept
	 * around; the agent's allocations are few and short-lived, and guest memory is not. */
	mallopt(M_ARENA_MAX, 2);
	signal(SIGPIPE, SIG_IGN);
	/* Modes in requests are taken as given; children get the usual 022 back (spawn.c). */
	umask(0);
	json_object_seed(0);
	spawn_init();
	rc = proc_init();
	if (rc < 0) {
		say("error: watchdog thread: %s", strerror(-rc));
		return 1;
	}
	/* Not fatal: without the kernels only the code interpreter fails (with this reason). */
	rc = contexts_init();
	if (rc < 0)
		say("warning: installing the code interpreter's kernels: %s", strerror(-rc));
	lfd = unix_path ? listen_unix(unix_path) : listen_vsock();
	if (lfd < 0)
		return 1;
	/* Relative paths in requests are relative to /. */
	if (chdir("/") < 0)
		say("warning: chdir /: %s", strerror(errno));
	serve(lfd);
}
