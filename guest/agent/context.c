#define _GNU_SOURCE
#include "context.h"
#include "agent.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KERNEL_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define KERNEL_PATH_DIRS 6
/* How much of a failed kernel's stderr an error message quotes. */
#define STDERR_TAIL 1024

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
/* Serializes creating a language's default context, so two first cells make one (one lock per
 * language: a JVM starting must not hold up a first Python cell). */
static pthread_mutex_t default_lock[LANGUAGES_MAX] = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
};
static struct context *table[CONTEXT_MAX];

int contexts_init(void)
{
	return kernels_install();
}

static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

static void context_free(struct context *ctx)
{
	kernel_stop(ctx);
	pthread_mutex_destroy(&ctx->run_lock);
	pthread_mutex_destroy(&ctx->pid_lock);
	strv_free(ctx->envp);
	free(ctx->cwd);
	free(ctx->version);
	free(ctx->ev_buf);
	free(ctx);
}

/* The kernel's environment: a base every kernel expects, then the caller's (which wins). */
static char **context_env(json_t *env)
{
	static const char *const base[][2] = {
	    {"PATH", KERNEL_PATH}, {"HOME", "/root"},	 {"TERM", "dumb"},
	    {"LANG", "C.UTF-8"},   {"MPLBACKEND", "Agg"}, {"PYTHONUNBUFFERED", "1"},
	};
	size_t nbase = sizeof(base) / sizeof(base[0]), n = 0;
	char **envp = calloc(nbase + json_object_size(env) + 1, sizeof(char *));
	const char *key;
	json_t *v;

	if (!envp)
		return NULL;
	for (size_t i = 0; i < nbase; i++)
		if (!json_object_get(env, base[i][0]) &&
		    asprintf(&envp[n++], "%s=%s", base[i][0], base[i][1]) < 0)
			goto fail;
	json_object_foreach(env, key, v)
		if (asprintf(&envp[n++], "%s=%s", key, json_string_value(v)) < 0)
			goto fail;
	return envp;
fail:
	envp[n - 1] = NULL;
	strv_free(envp);
	return NULL;
}

static struct context *context_new(const struct language *l, const char *cwd, json_t *env,
				   const char *id)
{
	struct context *ctx = calloc(1, sizeof(*ctx));
	unsigned char rnd[6];

	if (!ctx)
		return NULL;
	ctx->lang = l;
	ctx->pidfd = ctx->req_fd = ctx->ev_fd = ctx->out_fd = ctx->err_fd = -1;
	pthread_mutex_init(&ctx->run_lock, NULL);
	pthread_mutex_init(&ctx->pid_lock, NULL);
	if (id) {
		snprintf(ctx->id, sizeof(ctx->id), "%s", id);
	} else {
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			goto fail;
		snprintf(ctx->id, sizeof(ctx->id), "%s-%02x%02x%02x%02x%02x%02x", l->name, rnd[0],
			 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	}
	ctx->cwd = strdup(cwd);
	ctx->envp = context_env(env);
	if (!ctx->cwd || !ctx->envp)
		goto fail;
	return ctx;
fail:
	context_free(ctx);
	return NULL;
}

/* Lists ctx, taking the caller's reference as the table's plus one more for the caller. */
static int context_list_add(struct context *ctx)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < CONTEXT_MAX; i++)
		if (!table[i]) {
			table[i] = ctx;
			ctx->listed = 1;
			ctx->refs = 2;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&table_lock);
	return rc;
}

static int table_full(void)
{
	int used = 0;

	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < CONTEXT_MAX; i++)
		used += table[i] != NULL;
	pthread_mutex_unlock(&table_lock);
	return used == CONTEXT_MAX;
}

static int context_start_new(const struct language *l, const char *cwd, json_t *env,
			     const char *id, struct context **out, char *err, size_t errlen)
{
	struct context *ctx;
	int rc;

	/* Checked again when listing; this spares a start that could only fail. */
	if (table_full()) {
		snprintf(err, errlen, "%d contexts exist already; destroy one first", CONTEXT_MAX);
		return -EAGAIN;
	}
	ctx = context_new(l, cwd, env, id);
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&ctx->run_lock);
	rc = kernel_start(ctx, err, errlen);
	pthread_mutex_unlock(&ctx->run_lock);
	if (rc == 0 && (rc = context_list_add(ctx)) < 0)
		snprintf(err, errlen, "%d contexts exist already; destroy one first", CONTEXT_MAX);
	if (rc < 0) {
		context_free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

int context_create(const struct language *l, const char *cwd, json_t *env, struct context **out,
		   char *err, size_t errlen)
{
	return context_start_new(l, cwd, env, NULL, out, err, errlen);
}

int context_default(const struct language *l, struct context **out, char *err, size_t errlen)
{
	char id[CONTEXT_ID_MAX];
	int rc = 0;

	snprintf(id, sizeof(id), "default-%s", l->name);
	pthread_mutex_lock(&default_lock[language_index(l)]);
	*out = context_get(id);
	if (!*out)
		rc = context_start_new(l, "/root", NULL, id, out, err, errlen);
	pthread_mutex_unlock(&default_lock[language_index(l)]);
	return rc;
}

int context_listed(struct context *ctx)
{
	int listed;

	pthread_mutex_lock(&table_lock);
	listed = ctx->listed;
	pthread_mutex_unlock(&table_lock);
	return listed;
}

struct context *context_get(const char *id)
{
	struct context *found = NULL;

	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < CONTEXT_MAX; i++)
		if (table[i] && !strcmp(table[i]->id, id)) {
			found = table[i];
			found->refs++;
			break;
		}
	pthread_mutex_unlock(&table_lock);
	return found;
}

void context_put(struct context *ctx)
{
	int last;

	if (!ctx)
		return;
	pthread_mutex_lock(&table_lock);
	last = --ctx->refs == 0;
	pthread_mutex_unlock(&table_lock);
	if (last)
		context_free(ctx);
}

int context_destroy(const char *id)
{
	struct context *ctx = NULL;

	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < CONTEXT_MAX; i++)
		if (table[i] && !strcmp(table[i]->id, id)) {
			ctx = table[i];
			table[i] = NULL;
			ctx->listed = 0;
			break;
		}
	pthread_mutex_unlock(&table_lock);
	if (!ctx)
		return -ENOENT;
	/* A cell running in it sees its kernel die and ends; the last reference frees it. */
	kernel_signal(ctx, SIGKILL);
	context_put(ctx);
	return 0;
}

json_t *contexts_list(void)
{
	json_t *list = json_array();

	pthread_mutex_lock(&table_lock);
	for (int i = 0; list && i < CONTEXT_MAX; i++) {
		struct context *c = table[i];

		if (c)
			json_array_append_new(
			    list, json_pack("{s:s, s:s, s:o, s:i}", "id", c->id, "language",
					    c->lang->name, "cwd", json_string_lossy(c->cwd),
					    "execution_count", atomic_load(&c->execution_count)));
	}
	pthread_mutex_unlock(&table_lock);
	return list;
}

/* The group, and the leader through its pidfd too: a kernel that left its group is still hit. */
static void kernel_signal_locked(struct context *ctx, int sig)
{
	if (ctx->pid <= 0)
		return;
	kill(-ctx->pid, sig);
	if (ctx->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, ctx->pidfd, sig, NULL, 0);
}

void kernel_signal(struct context *ctx, int sig)
{
	pthread_mutex_lock(&ctx->pid_lock);
	kernel_signal_locked(ctx, sig);
	pthread_mutex_unlock(&ctx->pid_lock);
}

static void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int kernel_reap(struct context *ctx)
{
	int status = 0;

	pthread_mutex_lock(&ctx->pid_lock);
	kernel_signal_locked(ctx, SIGKILL);
	/* Reaped under the lock (never before the kill, so this cannot block on a live kernel):
	 * nobody signals the pid once it may be reused. */
	while (ctx->pid > 0 && waitpid(ctx->pid, &status, 0) < 0 && errno == EINTR)
		;
	ctx->pid = 0;
	pthread_mutex_unlock(&ctx->pid_lock);
	return status;
}

void kernel_stop(struct context *ctx)
{
	kernel_reap(ctx);
	fd_close(&ctx->pidfd);
	fd_close(&ctx->req_fd);
	fd_close(&ctx->ev_fd);
	fd_close(&ctx->out_fd);
	fd_close(&ctx->err_fd);
	ctx->ev_len = 0;
	/* One large image must not pin its buffer for the context's whole life. */
	free(ctx->ev_buf);
	ctx->ev_buf = NULL;
	ctx->ev_cap = 0;
}

int kernel_events_read(struct context *ctx)
{
	ssize_t n;

	if (ctx->ev_cap - ctx->ev_len < 65536) {
		size_t cap = ctx->ev_cap ? ctx->ev_cap * 2 : 65536 * 2;
		char *p;

		if (cap > CONTEXT_EVENT_MAX + 65536)
			return -E2BIG;
		p = realloc(ctx->ev_buf, cap);
		if (!p)
			return -ENOMEM;
		ctx->ev_buf = p;
		ctx->ev_cap = cap;
	}
	n = read(ctx->ev_fd, ctx->ev_buf + ctx->ev_len, ctx->ev_cap - ctx->ev_len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -EPIPE;
	ctx->ev_len += (size_t)n;
	return 1;
}

json_t *kernel_event_next(struct context *ctx, int *rc)
{
	char *nl = ctx->ev_len ? memchr(ctx->ev_buf, '\n', ctx->ev_len) : NULL;
	size_t line;
	json_t *ev;

	*rc = 0;
	if (!nl)
		return NULL;
	line = (size_t)(nl - ctx->ev_buf);
	ev = json_loadb(ctx->ev_buf, line, JSON_REJECT_DUPLICATES, NULL);
	memmove(ctx->ev_buf, nl + 1, ctx->ev_len - line - 1);
	ctx->ev_len -= line + 1;
	if (!json_is_object(ev)) {
		json_decref(ev);
		*rc = -EPROTO;
		return NULL;
	}
	return ev;
}

ssize_t kernel_pipe_read(int *fd, void *buf, size_t len)
{
	ssize_t n;

	if (*fd < 0)
		return 0;
	n = read(*fd, buf, len);
	if (n == 0) {
		close(*fd);
		*fd = -1;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : n;
}

/* Our ends of the four pipes; the child's ends in child[] (stdout, stderr, requests, events). */
static int kernel_pipes(struct context *ctx, int child[4])
{
	int p[4][2];
	int n;

	for (n = 0; n < 4; n++)
		if (pipe2(p[n], O_CLOEXEC) < 0)
			goto fail;
	ctx->out_fd = p[0][0], child[0] = p[0][1];
	ctx->err_fd = p[1][0], child[1] = p[1][1];
	child[2] = p[2][0], ctx->req_fd = p[2][1];
	ctx->ev_fd = p[3][0], child[3] = p[3][1];
	/* None of our ends may block the agent: a kernel that stops reading its requests gets a
	 * failed write, not a hung connection thread. */
	for (int i = 0; i < 4; i++) {
		int fd = i == 0 ? ctx->out_fd : i == 1 ? ctx->err_fd : i == 2 ? ctx->ev_fd : ctx->req_fd;

		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	return 0;
fail:
	while (n--) {
		close(p[n][0]);
		close(p[n][1]);
	}
	return -errno;
}

/* Keeps the last STDERR_TAIL bytes the kernel wrote to stderr, for a start-up failure's message. */
static void stderr_tail_read(int *fd, char *tail, size_t *len)
{
	char buf[4096];
	ssize_t n;

	while ((n = kernel_pipe_read(fd, buf, sizeof(buf))) > 0) {
		size_t keep = (size_t)n > STDERR_TAIL ? STDERR_TAIL : (size_t)n;
		size_t drop = *len + keep > STDERR_TAIL ? *len + keep - STDERR_TAIL : 0;

		memmove(tail, tail + drop, *len - drop);
		*len -= drop;
		memcpy(tail + *len, buf + n - keep, keep);
		*len += keep;
	}
}

static void discard(int *fd)
{
	char buf[4096];

	while (kernel_pipe_read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Waits for {"type":"ready"}; the kernel's output meanwhile is dropped (stderr's tail kept). */
static int kernel_wait_ready(struct context *ctx, char *err, size_t errlen)
{
	int64_t deadline = agent_now_ms() + CONTEXT_START_TIMEOUT_MS;
	char tail[STDERR_TAIL + 1];
	size_t tail_len = 0;
	int rc = 0;

	for (;;) {
		struct pollfd p[4] = {{ctx->ev_fd, POLLIN, 0},
				      {ctx->err_fd, POLLIN, 0},
				      {ctx->out_fd, POLLIN, 0},
				      {ctx->pidfd, POLLIN, 0}};
		int64_t left = deadline - agent_now_ms();
		json_t *ev;

		while ((ev = kernel_event_next(ctx, &rc))) {
			const char *type = json_string_value(json_object_get(ev, "type"));
			const char *version = json_string_value(json_object_get(ev, "version"));

			if (type && !strcmp(type, "ready")) {
				free(ctx->version);
				ctx->version = version ? strdup(version) : NULL;
				json_decref(ev);
				return 0;
			}
			json_decref(ev);
		}
		if (rc < 0)
			break;
		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(p, 4, (int)left) < 0 && errno != EINTR) {
			rc = -errno;
			snprintf(err, errlen, "poll: %s", strerror(-rc));
			return rc;
		}
		if (p[1].revents)
			stderr_tail_read(&ctx->err_fd, tail, &tail_len);
		if (p[2].revents)
			discard(&ctx->out_fd);
		if (p[0].revents && (rc = kernel_events_read(ctx)) < 0)
			break;
		if (p[3].revents && !p[0].revents) {
			rc = -EPIPE;
			break;
		}
	}
	stderr_tail_read(&ctx->err_fd, tail, &tail_len);
	tail[tail_len] = 0;
	snprintf(err, errlen, "the %s kernel %s%s%s", ctx->lang->name,
		 rc == -ETIMEDOUT ? "did not start in time"
		 : rc == -EPIPE	  ? "exited while starting"
				  : "sent a malformed event while starting",
		 tail_len ? ": " : "", tail);
	return rc == -ETIMEDOUT ? rc : -EIO;
}

/* Where execvp would look for the kernel's program, in KERNEL_PATH order. */
static void kernel_candidates(const char *prog, char store[KERNEL_PATH_DIRS][256],
			      char *cand[KERNEL_PATH_DIRS + 1])
{
	const char *p = KERNEL_PATH;

	for (int i = 0; i < KERNEL_PATH_DIRS; i++) {
		size_t len = strcspn(p, ":");

		snprintf(store[i], 256, "%.*s/%s", (int)len, p, prog);
		cand[i] = store[i];
		p += len + (p[len] == ':');
	}
	cand[KERNEL_PATH_DIRS] = NULL;
}

int kernel_start(struct context *ctx, char *err, size_t errlen)
{
	char store[1024], *argv[LANGUAGE_ARGV_MAX + 1];
	char cand_store[KERNEL_PATH_DIRS][256], *cand[KERNEL_PATH_DIRS + 1];
	int child[4], null, rc;
	struct spawn_failure why;
	struct spawn_args a;
	pid_t pid;

	kernel_stop(ctx);
	if (language_argv(ctx->lang, store, sizeof(store), argv) < 0) {
		snprintf(err, errlen, "kernel command line too long");
		return -ENAMETOOLONG;
	}
	kernel_candidates(argv[0], cand_store, cand);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || kernel_pipes(ctx, child) < 0) {
		rc = -errno;
		snprintf(err, errlen, "pipes for the %s kernel: %s", ctx->lang->name, strerror(-rc));
		if (null >= 0)
			close(null);
		kernel_stop(ctx);
		return rc;
	}
	a = (struct spawn_args){
	    .argv = argv,
	    .envp = ctx->envp,
	    .candidates = cand,
	    .cwd = ctx->cwd,
	    .stdin_fd = null,
	    .stdout_fd = child[0],
	    .stderr_fd = child[1],
	    .extra_fds = &child[2],
	    .n_extra = 2,
	};
	rc = spawn_process(&a, &pid, &why);
	close(null);
	for (int i = 0; i < 4; i++)
		close(child[i]);
	if (rc < 0) {
		if (why.step == SPAWN_EXEC && why.err == ENOENT)
			snprintf(err, errlen, "%s contexts need %s, which this sandbox lacks (%s not found)",
				 ctx->lang->name, ctx->lang->needs, argv[0]);
		else
			snprintf(err, errlen, "%s %s: %s", spawn_step_name(why.step),
				 why.step == SPAWN_CHDIR ? ctx->cwd : argv[0], strerror(why.err));
		kernel_stop(ctx);
		return rc;
	}
	pthread_mutex_lock(&ctx->pid_lock);
	ctx->pid = pid;
	ctx->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	pthread_mutex_unlock(&ctx->pid_lock);
	if (ctx->pidfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "pidfd of the %s kernel: %s", ctx->lang->name, strerror(-rc));
		kernel_stop(ctx);
		return rc;
	}
	atomic_store(&ctx->execution_count, 0);
	rc = kernel_wait_ready(ctx, err, errlen);
	if (rc < 0)
		kernel_stop(ctx);
	return rc;
}
