/* exec, wait and kill. A foreground exec streams: one poll loop over the client socket (STDIN
 * frames, or its going away), the child's stdout and stderr pipes, its stdin pipe when there is
 * something to write, and a pidfd that says when it exited. Timeouts are the watchdog's
 * (proc.c), so a client that stops reading cannot keep a process past its deadline.
 *
 * End of stream from the client means it is gone, and the process group is killed: a client
 * keeps its side open until the final event (stdin ends with an EOF frame, not a shutdown).
 * The exit event follows the process's own exit: output still in its pipes is forwarded first,
 * but a background grandchild holding them open is not waited for. STDOUT/STDERR frames carry no
 * EOF flag; the exit event ends them. */
#define _GNU_SOURCE
#include "agent.h"
#include "proc.h"
#include "spawn.h"
#include "users.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* After the process exits, what is still in its pipes is forwarded; a grandchild that keeps
 * writing is not waited for, and at most this much more is taken from each pipe. */
#define EXEC_DRAIN_MAX (1u << 20)
/* A partial frame from the client is waited for this long before the loop serves the pipes. */
#define EXEC_PARTIAL_FRAME_MS 10

struct exec_req {
	const char **argv; /* strings owned by the request */
	char **envp;	   /* owned */
	char **candidates; /* owned */
	const char *cwd;
	struct user user;
	int has_user;
	int use_stdin;
	int background;
	long long timeout_ms;
	const char *stdout_path, *stderr_path;
};

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static void exec_req_free(struct exec_req *r)
{
	free(r->argv);
	strv_free(r->envp);
	strv_free(r->candidates);
}

static int exec_parse_argv(struct conn *c, struct exec_req *r)
{
	json_t *argv = json_object_get(c->req, "argv");
	const char *shell;
	size_t i, n;

	if (json_is_null(argv))
		argv = NULL;
	if (arg_string(c, "shell", 0, &shell) < 0)
		return -1;
	if (!argv == !shell) {
		reply_error(c, EINVAL, "exactly one of \"argv\" and \"shell\" is required");
		return -1;
	}
	if (shell) {
		r->argv = calloc(4, sizeof(*r->argv));
		if (!r->argv)
			goto nomem;
		r->argv[0] = "/bin/sh";
		r->argv[1] = "-c";
		r->argv[2] = shell;
		return 0;
	}
	n = json_array_size(argv);
	if (!json_is_array(argv) || n == 0 || !json_is_string(json_array_get(argv, 0)) ||
	    !*json_string_value(json_array_get(argv, 0)))
		goto bad;
	r->argv = calloc(n + 1, sizeof(*r->argv));
	if (!r->argv)
		goto nomem;
	for (i = 0; i < n; i++) {
		if (!json_is_string(json_array_get(argv, i)))
			goto bad;
		r->argv[i] = json_string_value(json_array_get(argv, i));
	}
	return 0;
bad:
	reply_error(c, EINVAL, "field \"argv\": expected a non-empty array of strings");
	return -1;
nomem:
	reply_error(c, ENOMEM, "out of memory");
	return -1;
}

static int env_add(char **envp, size_t *n, const char *key, const char *value)
{
	if (asprintf(&envp[*n], "%s=%s", key, value) < 0) {
		envp[*n] = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

/* The base environment, then "env" (which overrides a base variable of the same name). */
static int exec_parse_env(struct conn *c, struct exec_req *r)
{
	json_t *env = json_object_get(c->req, "env"), *v;
	const char *base[][2] = {
	    {"PATH", BASE_PATH},
	    {"HOME", r->user.home},
	    {"TERM", "dumb"},
	    {"LANG", "C.UTF-8"},
	};
	const char *key;
	size_t n = 0;

	if (json_is_null(env))
		env = NULL;
	if (env && !json_is_object(env)) {
		reply_error(c, EINVAL, "field \"env\": expected an object of strings");
		return -1;
	}
	for (void *it = json_object_iter(env); it; it = json_object_iter_next(env, it)) {
		key = json_object_iter_key(it);
		v = json_object_iter_value(it);
		if (!*key || strchr(key, '=') || !json_is_string(v)) {
			reply_error(c, EINVAL, "field \"env\": bad entry \"%.64s\"", key);
			return -1;
		}
	}
	r->envp = calloc(json_object_size(env) + 5, sizeof(*r->envp));
	if (!r->envp)
		goto nomem;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		if (!json_object_get(env, base[i][0]) &&
		    env_add(r->envp, &n, base[i][0], base[i][1]))
			goto nomem;
	for (void *it = json_object_iter(env); it; it = json_object_iter_next(env, it))
		if (env_add(r->envp, &n, json_object_iter_key(it),
			    json_string_value(json_object_iter_value(it))))
			goto nomem;
	return 0;
nomem:
	reply_error(c, ENOMEM, "out of memory");
	return -1;
}

/* Where execvp would look for argv[0], in order, searching the child's own PATH. Computed here
 * because the child may not allocate. */
static int exec_candidates(struct exec_req *r)
{
	const char *name = r->argv[0], *path = BASE_PATH;
	size_t n = 0, cap = 2;

	for (char **e = r->envp; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	if (strchr(name, '/')) {
		r->candidates = calloc(2, sizeof(char *));
		return r->candidates && (r->candidates[0] = strdup(name)) ? 0 : -ENOMEM;
	}
	for (const char *p = path; *p; p++)
		cap += *p == ':';
	r->candidates = calloc(cap, sizeof(char *));
	if (!r->candidates)
		return -ENOMEM;
	for (const char *p = path;; p++) {
		size_t len = strcspn(p, ":");

		/* An empty element means the current directory, as in execvp. */
		if (asprintf(&r->candidates[n], "%.*s%s%s", (int)len, p, len ? "/" : "", name) <
		    0) {
			r->candidates[n] = NULL;
			return -ENOMEM;
		}
		n++;
		p += len;
		if (!*p)
			break;
	}
	return 0;
}

static int exec_parse_user(struct conn *c, struct exec_req *r)
{
	json_t *v = json_object_get(c->req, "user");
	char num[32];
	const char *spec;
	int rc;

	if (json_is_null(v))
		v = NULL;
	if (!v) {
		/* No switch: the agent's own user, for HOME. */
		rc = user_self(&r->user);
		if (rc < 0)
			reply_errno(c, rc, "read", "/etc/passwd");
		return rc < 0 ? -1 : 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) < (json_int_t)UINT_MAX) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		spec = num;
	} else if (json_is_string(v) && *json_string_value(v)) {
		spec = json_string_value(v);
	} else {
		reply_error(c, EINVAL, "field \"user\": expected a user name or uid");
		return -1;
	}
	rc = user_lookup(spec, &r->user);
	if (rc == -ENOENT) {
		reply_error(c, EINVAL, "user \"%.256s\": not in /etc/passwd", spec);
		return -1;
	}
	if (rc < 0) {
		reply_errno(c, rc, "read", "/etc/passwd");
		return -1;
	}
	r->has_user = 1;
	return 0;
}

static int exec_parse(struct conn *c, struct exec_req *r)
{
	if (exec_parse_argv(c, r) < 0 || exec_parse_user(c, r) < 0 || exec_parse_env(c, r) < 0 ||
	    arg_string(c, "cwd", 0, &r->cwd) < 0 || arg_bool(c, "stdin", 0, &r->use_stdin) < 0 ||
	    arg_bool(c, "background", 0, &r->background) < 0 ||
	    arg_int(c, "timeout_ms", 0, 0, INT64_MAX / 4, &r->timeout_ms) < 0 ||
	    arg_string(c, "stdout_path", 0, &r->stdout_path) < 0 ||
	    arg_string(c, "stderr_path", 0, &r->stderr_path) < 0)
		return -1;
	if (!r->cwd || !*r->cwd)
		r->cwd = "/";
	if (r->background && r->use_stdin) {
		reply_error(c, EINVAL, "a background process cannot take \"stdin\"");
		return -1;
	}
	if (exec_candidates(r) < 0) {
		reply_error(c, ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}

static void exec_reply_spawn_error(struct conn *c, const struct exec_req *r,
				   const struct spawn_failure *why)
{
	const char *what = r->argv[0];

	if (why->step == SPAWN_CHDIR)
		what = r->cwd;
	else if (why->step == SPAWN_OPEN_STDOUT)
		what = r->stdout_path;
	else if (why->step == SPAWN_OPEN_STDERR)
		what = r->stderr_path;
	reply_errno(c, why->err, spawn_step_name(why->step), what);
}

static void exec_reply_exit(struct conn *c, int status, int timed_out, int64_t duration_ms)
{
	reply_json(c, json_pack("{s:s, s:o, s:o, s:b, s:I}", "event", "exit", "exit_code",
				WIFEXITED(status) ? json_integer(WEXITSTATUS(status)) : json_null(),
				"signal",
				WIFSIGNALED(status) ? json_integer(WTERMSIG(status)) : json_null(),
				"timed_out", timed_out, "duration_ms", (json_int_t)duration_ms));
}

/* The state of one foreground exec's streams. */
struct fg {
	struct conn *c;
	int out, err, in;    /* our pipe ends, -1 once closed */
	int stdin_open;	     /* the client may still send STDIN frames */
	int stdin_eof;	     /* close our stdin end once pend is written */
	const uint8_t *pend; /* STDIN bytes not yet written: in the frame reader's buffer, which
			      * stays put because no frame is read while any are pending */
	size_t pend_len;
	int client_ok;
	uint8_t *buf;
};

static void fg_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void fg_stdin_flush(struct fg *s)
{
	while (s->pend_len && s->in >= 0) {
		ssize_t n = write(s->in, s->pend, s->pend_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			fg_close(&s->in); /* EPIPE: the process closed its stdin; drop the rest */
			break;
		}
		s->pend += n;
		s->pend_len -= (size_t)n;
	}
	s->pend_len = 0;
	if (s->stdin_eof)
		fg_close(&s->in);
}

static void fg_client_frame(struct fg *s, int rc, const struct frame *f)
{
	if (rc <= 0 || f->type != FRAME_STDIN || !s->stdin_open) {
		/* Gone, broken, or a frame this request does not use: a protocol error. */
		s->client_ok = 0;
		return;
	}
	if (f->flags & FRAME_F_EOF) {
		s->stdin_open = 0;
		s->stdin_eof = 1;
	}
	s->pend = f->payload;
	s->pend_len = f->len;
	fg_stdin_flush(s);
}

/* Forwards one read's worth of a pipe. *fd becomes -1 at EOF. Returns bytes forwarded. */
static size_t fg_forward(struct fg *s, int *fd, uint8_t type)
{
	ssize_t n;

	do
		n = read(*fd, s->buf, AGENT_PIPE_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		fg_close(fd);
		return 0;
	}
	if (s->client_ok && frame_write(s->c->fd, type, 0, s->buf, (uint32_t)n) < 0)
		s->client_ok = 0;
	return (size_t)n;
}

/* Streams until the process exits (1) or the client is gone (0). */
static int fg_loop(struct fg *s, int pidfd)
{
	struct frame f;
	int rc;

	for (;;) {
		struct pollfd pfd[5];

		/* Frames already buffered would not wake poll. */
		while (s->client_ok && !s->pend_len &&
		       (rc = frame_read(s->c->rd, 0, &f)) != -ETIMEDOUT)
			fg_client_frame(s, rc, &f);
		if (!s->client_ok)
			return 0;
		/* While STDIN bytes wait for the pipe, no more frames are read: backpressure. */
		pfd[0] = (struct pollfd){s->c->fd, s->pend_len ? 0 : POLLIN, 0};
		pfd[1] = (struct pollfd){s->out, POLLIN, 0};
		pfd[2] = (struct pollfd){s->err, POLLIN, 0};
		pfd[3] = (struct pollfd){s->pend_len ? s->in : -1, POLLOUT, 0};
		pfd[4] = (struct pollfd){pidfd, POLLIN, 0};
		if (poll(pfd, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (pfd[1].revents)
			fg_forward(s, &s->out, FRAME_STDOUT);
		if (pfd[2].revents)
			fg_forward(s, &s->err, FRAME_STDERR);
		if (pfd[3].revents)
			fg_stdin_flush(s);
		if (pfd[0].revents & POLLIN) {
			rc = frame_read(s->c->rd, EXEC_PARTIAL_FRAME_MS, &f);
			if (rc != -ETIMEDOUT)
				fg_client_frame(s, rc, &f);
		} else if (pfd[0].revents) {
			s->client_ok = 0; /* POLLHUP or POLLERR */
		}
		if (!s->client_ok)
			return 0;
		if (pfd[4].revents)
			return 1;
	}
}

static void fg_drain(struct fg *s, int *fd, uint8_t type)
{
	size_t total = 0, n;

	while (*fd >= 0 && total < EXEC_DRAIN_MAX && (n = fg_forward(s, fd, type)) > 0)
		total += n;
}

static int pipe_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* The child's ends of the pipes, and ours. */
struct fg_pipes {
	int in[2], out[2], err[2];
};

static int fg_pipes_open(struct fg_pipes *p, int use_stdin)
{
	p->in[0] = p->in[1] = p->out[0] = p->out[1] = p->err[0] = p->err[1] = -1;
	if (use_stdin) {
		if (pipe2(p->in, O_CLOEXEC) < 0 || pipe_nonblock(p->in[1]) < 0)
			return -errno;
	} else if ((p->in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		return -errno;
	}
	if (pipe2(p->out, O_CLOEXEC) < 0 || pipe2(p->err, O_CLOEXEC) < 0 ||
	    pipe_nonblock(p->out[0]) < 0 || pipe_nonblock(p->err[0]) < 0)
		return -errno;
	return 0;
}

static void fg_pipes_close(struct fg_pipes *p)
{
	for (int i = 0; i < 2; i++) {
		fg_close(&p->in[i]);
		fg_close(&p->out[i]);
		fg_close(&p->err[i]);
	}
}

static void reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

/* Waits, without reaping, for the child to exit. */
static void wait_exit(int pidfd)
{
	struct pollfd p = {pidfd, POLLIN, 0};

	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
}

/* What both kinds of exec hand to spawn; a background one also names its output files. */
static struct spawn_args exec_spawn_args(const struct exec_req *r)
{
	return (struct spawn_args){
	    .argv = (char *const *)r->argv,
	    .envp = r->envp,
	    .candidates = r->candidates,
	    .cwd = r->cwd,
	    .user = r->has_user ? &r->user : NULL,
	    .stdout_path = r->background ? r->stdout_path : NULL,
	    .stderr_path = r->background ? r->stderr_path : NULL,
	};
}

static void exec_foreground(struct conn *c, struct exec_req *r)
{
	struct fg s = {.c = c, .out = -1, .err = -1, .in = -1, .client_ok = 1};
	struct spawn_failure why;
	struct fg_pipes p;
	struct spawn_args a = exec_spawn_args(r);
	int64_t start, end;
	struct proc *proc;
	int pidfd = -1, status = 0, exited, timed_out, rc;
	pid_t pid;

	s.buf = malloc(AGENT_PIPE_CHUNK);
	rc = s.buf ? fg_pipes_open(&p, r->use_stdin) : -ENOMEM;
	if (rc < 0) {
		if (s.buf)
			fg_pipes_close(&p);
		free(s.buf);
		reply_errno(c, rc, "pipes for", r->argv[0]);
		return;
	}
	a.stdin_fd = p.in[0];
	a.stdout_fd = p.out[1];
	a.stderr_fd = p.err[1];
	start = agent_now_ms();
	rc = spawn_process(&a, &pid, &why);
	/* Keep only our ends. */
	fg_close(&p.in[0]);
	fg_close(&p.out[1]);
	fg_close(&p.err[1]);
	s.in = p.in[1], s.out = p.out[0], s.err = p.err[0];
	p.in[1] = p.out[0] = p.err[0] = -1;
	if (rc < 0) {
		exec_reply_spawn_error(c, r, &why);
		goto out;
	}
	proc = proc_add(pid, start, r->timeout_ms);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (!proc || pidfd < 0) {
		rc = proc ? -errno : -ENOMEM;
		kill(-pid, SIGKILL);
		if (proc)
			proc_exited(proc);
		reap(pid, &status);
		if (proc)
			proc_remove(proc);
		reply_errno(c, rc, "watch", r->argv[0]);
		goto out;
	}
	s.stdin_open = r->use_stdin;
	if (reply_json(c, json_pack("{s:s, s:i}", "event", "started", "pid", (int)pid)) < 0)
		s.client_ok = 0;
	exited = s.client_ok && fg_loop(&s, pidfd);
	if (!exited) {
		/* The client went away (or broke the protocol): the whole group goes too. */
		proc_kill(pid, SIGKILL);
		wait_exit(pidfd);
	}
	end = agent_now_ms();
	fg_drain(&s, &s.out, FRAME_STDOUT);
	fg_drain(&s, &s.err, FRAME_STDERR);
	timed_out = proc_exited(proc);
	reap(pid, &status);
	proc_remove(proc);
	if (exited && s.client_ok)
		exec_reply_exit(c, status, timed_out, end - start);
out:
	if (pidfd >= 0)
		close(pidfd);
	fg_close(&s.in);
	fg_close(&s.out);
	fg_close(&s.err);
	free(s.buf);
}

static void exec_background(struct conn *c, struct exec_req *r)
{
	struct spawn_failure why;
	struct spawn_args a = exec_spawn_args(r);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), rc, status;
	int64_t start = agent_now_ms();
	pid_t pid;

	if (null < 0) {
		reply_errno(c, errno, "open", "/dev/null");
		return;
	}
	a.stdin_fd = a.stdout_fd = a.stderr_fd = null;
	rc = spawn_process(&a, &pid, &why);
	close(null);
	if (rc < 0) {
		exec_reply_spawn_error(c, r, &why);
		return;
	}
	rc = proc_add_background(pid, start, r->timeout_ms);
	if (rc < 0) {
		kill(-pid, SIGKILL);
		reap(pid, &status);
		if (rc == -EAGAIN)
			reply_error(c, EAGAIN, "%d background processes not yet waited for",
				    PROC_MAX_BACKGROUND);
		else
			reply_errno(c, rc, "watch", r->argv[0]);
		return;
	}
	reply_result(c, json_pack("{s:i}", "pid", (int)pid));
}

void op_exec(struct conn *c)
{
	struct exec_req r = {0};

	if (exec_parse(c, &r) == 0) {
		if (r.background)
			exec_background(c, &r);
		else
			exec_foreground(c, &r);
	}
	exec_req_free(&r);
}

void op_wait(struct conn *c)
{
	struct proc_status st;
	long long pid, timeout;
	int rc;

	if (arg_int(c, "pid", -1, 1, INT_MAX, &pid) < 0 ||
	    arg_int(c, "timeout_ms", 0, 0, INT64_MAX / 4, &timeout) < 0)
		return;
	if (pid < 0) {
		reply_error(c, EINVAL, "field \"pid\": required");
		return;
	}
	rc = proc_wait((pid_t)pid, timeout, c->fd, &st);
	if (rc == 0)
		exec_reply_exit(c, st.status, st.timed_out, st.duration_ms);
	else if (rc == -ESRCH)
		reply_error(c, ESRCH, "wait %lld: not a background process (or already waited for)",
			    pid);
	else if (rc == -ETIMEDOUT)
		reply_error(c, ETIMEDOUT, "wait %lld: still running after %lld ms", pid, timeout);
}

void op_kill(struct conn *c)
{
	long long pid, sig;
	char ebuf[128];
	int rc;

	if (arg_int(c, "pid", -1, 1, INT_MAX, &pid) < 0 ||
	    arg_int(c, "signal", SIGTERM, 0, SIGRTMAX, &sig) < 0)
		return;
	if (pid < 0) {
		reply_error(c, EINVAL, "field \"pid\": required");
		return;
	}
	rc = proc_kill((pid_t)pid, (int)sig);
	if (rc == -ESRCH)
		reply_error(c, ESRCH, "kill %lld: not a running process of this agent", pid);
	else if (rc < 0)
		reply_error(c, -rc, "kill %lld: %s", pid, strerror_r(-rc, ebuf, sizeof(ebuf)));
	else
		reply_result(c, NULL);
}
