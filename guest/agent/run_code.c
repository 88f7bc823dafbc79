/* run_code: one cell in a context (docs/code-interpreter.md). The code arrives in FILE frames
 * and goes to a file whose path is the kernel's request; then one poll loop forwards the
 * kernel's stdout and stderr as they come, turns its result events into display events with the
 * representations in FILE frames (binary ones decoded from the kernel's base64), and watches the
 * deadline, the kernel's life and the client. A timeout interrupts the cell (SIGINT to the
 * kernel's group), keeping the context; a kernel deaf to that for INTERRUPT_GRACE_MS is killed,
 * and the context starts afresh on its next cell. A client that goes away, or stops reading for
 * CLIENT_SEND_TIMEOUT_S, is dropped and its cell interrupted the same way. */
#define _GNU_SOURCE
#include "agent.h"
#include "context.h"
#include "files.h"
#include "util/base64.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define CELLS_DIR "/run/sandbox-agent/cells"
#define CELL_MAX (16u << 20)
#define INTERRUPT_GRACE_MS 10000
/* Output still in the pipes after "done" (a child of the cell writing on) is not waited for. */
#define CELL_DRAIN_MAX (1u << 20)
/* Error texts are cut to these, and the traceback further until the final event fits a frame. */
#define ERROR_VALUE_MAX (8u << 10)
#define ERROR_TRACEBACK_MAX (40u << 10)
/* A blocked send to the client delays the deadline checks at most this long. */
#define CLIENT_SEND_TIMEOUT_S 5

struct cell {
	struct conn *c;
	struct context *ctx;
	char *buf; /* AGENT_PIPE_CHUNK bytes */
	int client_ok;
	json_t *error;
	int done, died, timed_out, interrupted;
	const char *kill_reason; /* why we killed the kernel, NULL if we did not */
	int64_t deadline, grace_deadline; /* -1: none */
};

/* Receives the code's FILE frames into a new file under CELLS_DIR; *path to free and unlink. */
static int cell_receive(struct conn *c, char **path)
{
	static atomic_uint seq;
	size_t total = 0;
	struct frame f;
	int fd, rc;

	rc = fs_mkdirs(CELLS_DIR, 0755);
	if (rc < 0 ||
	    asprintf(path, "%s/cell-%d-%u", CELLS_DIR, (int)getpid(), atomic_fetch_add(&seq, 1)) < 0) {
		*path = NULL;
		reply_errno(c, rc < 0 ? rc : -ENOMEM, "create", CELLS_DIR);
		return -1;
	}
	/* Readable by kernels that run as other users. */
	fd = open(*path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		reply_errno(c, errno, "create", *path);
		return -1;
	}
	for (;;) {
		rc = frame_read(c->rd, AGENT_REQUEST_TIMEOUT_MS, &f);
		if (rc <= 0 || f.type != FRAME_FILE) {
			if (rc == 1 || rc == -EPROTO)
				reply_error(c, EPROTO, "run_code: expected the code in FILE frames");
			rc = -1;
			break;
		}
		total += f.len;
		if (total > CELL_MAX) {
			reply_error(c, EFBIG, "run_code: code longer than %u bytes", CELL_MAX);
			rc = -1;
			break;
		}
		if ((rc = write_all(fd, f.payload, f.len)) < 0) {
			reply_errno(c, rc, "write", *path);
			rc = -1;
			break;
		}
		if (f.flags & FRAME_F_EOF) {
			rc = 0;
			break;
		}
	}
	close(fd);
	return rc;
}

/* A kernel's result event -> {"event":"display","main":b,"formats":[{"mime","bytes"}...]} and
 * each representation's bytes in FILE frames, in that order. Values that are not strings,
 * base64 that does not decode and formats past RESULT_MAX_FORMATS are dropped. */
static int send_display(struct conn *c, json_t *ev)
{
	json_t *data = json_object_get(ev, "data"), *formats = json_array(), *v;
	const char *mime;
	size_t n = json_object_size(data), i = 0;
	unsigned char **bytes = calloc(n ? n : 1, sizeof(*bytes));
	size_t *lens = calloc(n ? n : 1, sizeof(*lens));
	int rc = -ENOMEM;

	if (!formats || !bytes || !lens)
		goto out;
	json_object_foreach(data, mime, v) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);

		if (!s || i == RESULT_MAX_FORMATS)
			continue;
		if (!(bytes[i] = malloc(len + 1)))
			goto out;
		if (base64_mime(mime)) {
			if (base64_decode(s, len, bytes[i], &lens[i]) < 0) {
				free(bytes[i]);
				bytes[i] = NULL;
				continue;
			}
		} else {
			memcpy(bytes[i], s, len);
			lens[i] = len;
		}
		json_array_append_new(formats, json_pack("{s:s, s:I}", "mime", mime, "bytes",
							 (json_int_t)lens[i]));
		i++;
	}
	rc = reply_json(c, json_pack("{s:s, s:b, s:O}", "event", "display", "main",
				     json_is_true(json_object_get(ev, "main")), "formats", formats));
	for (size_t k = 0; rc == 0 && k < i; k++)
		rc = frame_write_stream(c->fd, FRAME_FILE, bytes[k], lens[k]);
out:
	for (size_t k = 0; k < n && bytes; k++)
		free(bytes[k]);
	free(bytes);
	free(lens);
	json_decref(formats);
	return rc;
}

static json_t *cut_string(json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!s)
		return json_string("");
	if (n > max)
		for (n = max; n && ((unsigned char)s[n] & 0xc0) == 0x80; n--)
			; /* back to a character boundary */
	return json_stringn(s, n);
}

static json_t *error_make(const char *name, const char *value, const char *traceback)
{
	return json_pack("{s:s, s:s, s:s}", "name", name, "value", value, "traceback", traceback);
}

/* The kernel's own error event, cut to fit. */
static void cell_error_set(struct cell *s, json_t *ev)
{
	json_decref(s->error);
	s->error = json_pack("{s:o, s:o, s:o}", "name",
			     cut_string(json_object_get(ev, "name"), 256), "value",
			     cut_string(json_object_get(ev, "value"), ERROR_VALUE_MAX), "traceback",
			     cut_string(json_object_get(ev, "traceback"), ERROR_TRACEBACK_MAX));
}

static void cell_interrupt(struct cell *s)
{
	kernel_signal(s->ctx, SIGINT);
	s->interrupted = 1;
	s->grace_deadline = agent_now_ms() + INTERRUPT_GRACE_MS;
}

static void cell_kill(struct cell *s, const char *reason)
{
	kernel_signal(s->ctx, SIGKILL);
	if (!s->kill_reason)
		s->kill_reason = reason;
}

/* The client is gone (or stopped reading): nobody wants the rest of this cell. */
static void cell_client_lost(struct cell *s)
{
	s->client_ok = 0;
	if (!s->interrupted)
		cell_interrupt(s);
}

static void cell_events(struct cell *s)
{
	json_t *ev;
	int rc;

	while ((ev = kernel_event_next(s->ctx, &rc))) {
		const char *type = json_string_value(json_object_get(ev, "type"));

		if (type && !strcmp(type, "result") && s->client_ok) {
			if (send_display(s->c, ev) < 0)
				cell_client_lost(s);
		} else if (type && !strcmp(type, "error")) {
			cell_error_set(s, ev);
		} else if (type && !strcmp(type, "done")) {
			s->done = 1;
		}
		json_decref(ev);
		if (s->done)
			return;
	}
	/* A kernel that breaks the protocol cannot be trusted with the next cell. */
	if (rc < 0)
		cell_kill(s, "sent an event that is not a JSON object");
}

static void cell_forward(struct cell *s, int *fd, uint8_t type, size_t max)
{
	size_t total = 0;
	ssize_t n;

	while (total < max && (n = kernel_pipe_read(fd, s->buf, AGENT_PIPE_CHUNK)) > 0) {
		total += (size_t)n;
		if (s->client_ok && frame_write(s->c->fd, type, 0, s->buf, (uint32_t)n) < 0)
			cell_client_lost(s);
	}
}

static int poll_timeout(const struct cell *s)
{
	int64_t now = agent_now_ms(), t = s->grace_deadline >= 0 ? s->grace_deadline : s->deadline;

	if (t < 0)
		return -1;
	return t <= now ? 0 : (int)(t - now > 60000 ? 60000 : t - now);
}

static void cell_loop(struct cell *s)
{
	struct context *ctx = s->ctx;

	while (!s->done && !s->died) {
		struct pollfd p[5] = {{ctx->out_fd, POLLIN, 0},
				      {ctx->err_fd, POLLIN, 0},
				      {ctx->ev_fd, POLLIN, 0},
				      {ctx->pidfd, POLLIN, 0},
				      {s->client_ok ? s->c->fd : -1, POLLIN, 0}};
		int64_t now = agent_now_ms();
		int rc;

		if (s->grace_deadline >= 0 && now >= s->grace_deadline && !s->kill_reason)
			cell_kill(s, "did not stop within 10 s of its interrupt");
		else if (s->deadline >= 0 && now >= s->deadline && !s->interrupted) {
			s->timed_out = 1;
			cell_interrupt(s);
		}
		if (poll(p, 5, s->kill_reason ? -1 : poll_timeout(s)) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			cell_forward(s, &ctx->out_fd, FRAME_STDOUT, AGENT_PIPE_CHUNK);
		if (p[1].revents)
			cell_forward(s, &ctx->err_fd, FRAME_STDERR, AGENT_PIPE_CHUNK);
		if (p[2].revents) {
			rc = kernel_events_read(ctx);
			cell_events(s);
			if (rc == -E2BIG)
				cell_kill(s, "sent an event line longer than 64 MiB");
			if (rc < 0 && !s->done) {
				/* End of file: the kernel is gone, or closed its events pipe. */
				cell_kill(s, rc == -EPIPE ? NULL : "broke its events pipe");
				s->died = 1;
			}
		}
		if (p[3].revents && !p[2].revents && !s->done)
			s->died = 1;
		/* A client sends nothing after its code: this is its going away. */
		if (p[4].revents)
			cell_client_lost(s);
	}
	cell_forward(s, &ctx->out_fd, FRAME_STDOUT, CELL_DRAIN_MAX);
	cell_forward(s, &ctx->err_fd, FRAME_STDERR, CELL_DRAIN_MAX);
}

/* The error of a cell whose kernel died; the context restarts on its next cell. */
static void cell_error_died(struct cell *s)
{
	int status = kernel_reap(s->ctx); /* kills first: never waits for a live kernel */
	const char *name = s->ctx->lang->name;
	char value[256];

	if (s->kill_reason)
		snprintf(value, sizeof(value), "the %s kernel %s and was killed", name,
			 s->kill_reason);
	else if (WIFSIGNALED(status))
		snprintf(value, sizeof(value), "the %s kernel was killed by signal %d", name,
			 WTERMSIG(status));
	else
		snprintf(value, sizeof(value), "the %s kernel exited with status %d", name,
			 WEXITSTATUS(status));
	snprintf(value + strlen(value), sizeof(value) - strlen(value),
		 "; the context starts afresh on its next cell");
	json_decref(s->error);
	s->error = error_make(s->kill_reason ? "ContextKilled" : "ContextDied", value, "");
	kernel_stop(s->ctx);
}

/* Output and events left from before this cell (a thread of an earlier cell) are dropped. */
static void cell_discard_stale(struct cell *s)
{
	int rc;
	json_t *ev;

	s->client_ok = 0;
	cell_forward(s, &s->ctx->out_fd, FRAME_STDOUT, CELL_DRAIN_MAX);
	cell_forward(s, &s->ctx->err_fd, FRAME_STDERR, CELL_DRAIN_MAX);
	while (kernel_events_read(s->ctx) > 0)
		;
	while ((ev = kernel_event_next(s->ctx, &rc)) || rc < 0)
		json_decref(ev);
	s->client_ok = 1;
}

/* Whether the client left while the cell waited for its context. */
static int client_gone(struct conn *c)
{
	struct pollfd p = {c->fd, POLLIN, 0};

	return poll(&p, 1, 0) != 0;
}

/* Sends the final event, halving the traceback until it fits a frame (escaping can make the
 * text up to six times longer in JSON). */
static void cell_reply(struct cell *s, json_t *fields)
{
	json_t *tb = json_object_get(s->error, "traceback");

	while (json_dumpb(fields, NULL, 0, 0) > FRAME_MAX_JSON - 512 && json_string_length(tb)) {
		json_object_set_new(s->error, "traceback", cut_string(tb, json_string_length(tb) / 2));
		tb = json_object_get(s->error, "traceback");
	}
	reply_result(s->c, fields);
}

static void cell_run(struct cell *s, const char *path, long long timeout_ms)
{
	struct timeval send_timeout = {CLIENT_SEND_TIMEOUT_S, 0};
	struct context *ctx = s->ctx;
	int64_t start;
	int restarted = 0, count;
	char err[1024];

	pthread_mutex_lock(&ctx->run_lock);
	if (!context_listed(ctx) || client_gone(s->c)) {
		pthread_mutex_unlock(&ctx->run_lock);
		reply_error(s->c, ENOENT, "context %s was destroyed", ctx->id);
		return;
	}
	if (ctx->pid <= 0) {
		if (kernel_start(ctx, err, sizeof(err)) < 0) {
			pthread_mutex_unlock(&ctx->run_lock);
			reply_error(s->c, EIO, "%s", err);
			return;
		}
		restarted = 1;
	}
	cell_discard_stale(s);
	setsockopt(s->c->fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
	count = atomic_fetch_add(&ctx->execution_count, 1) + 1;
	start = agent_now_ms();
	s->deadline = timeout_ms ? start + timeout_ms : -1;
	if (write_all(ctx->req_fd, path, strlen(path)) < 0 || write_all(ctx->req_fd, "\n", 1) < 0) {
		cell_kill(s, "does not read its requests");
		s->died = 1;
	} else {
		cell_loop(s);
	}
	if (s->died)
		cell_error_died(s);
	pthread_mutex_unlock(&ctx->run_lock);
	if (s->client_ok)
		cell_reply(s, json_pack("{s:s, s:s, s:i, s:I, s:b, s:b, s:O?}", "context", ctx->id,
					"language", ctx->lang->name, "execution_count", count,
					"duration_ms", (json_int_t)(agent_now_ms() - start),
					"timed_out", s->timed_out, "restarted", restarted, "error",
					s->error));
}

/* The context named by "context", or the default one of "language" (python if neither). */
static struct context *cell_context(struct conn *c)
{
	const char *id, *lang_name;
	const struct language *l = NULL;
	struct context *ctx;
	char err[1024];
	int rc;

	if (arg_string(c, "context", 0, &id) < 0 || arg_string(c, "language", 0, &lang_name) < 0)
		return NULL;
	if (lang_name && !(l = language_or_reply(c, lang_name)))
		return NULL;
	if (id) {
		ctx = context_get(id);
		if (!ctx)
			reply_error(c, ENOENT, "no context \"%.64s\"", id);
		else if (l && l != ctx->lang) {
			reply_error(c, EINVAL, "context %s is %s, not %s", ctx->id, ctx->lang->name,
				    l->name);
			context_put(ctx);
			ctx = NULL;
		}
		return ctx;
	}
	rc = context_default(l ? l : language_find("python"), &ctx, err, sizeof(err));
	if (rc < 0) {
		reply_error(c, -rc, "%s", err);
		return NULL;
	}
	return ctx;
}

void op_run_code(struct conn *c)
{
	struct cell s = {.c = c, .deadline = -1, .grace_deadline = -1};
	long long timeout_ms;
	char *path = NULL;

	if (arg_int(c, "timeout_ms", 0, 0, INT64_MAX / 4, &timeout_ms) < 0 ||
	    cell_receive(c, &path) < 0)
		goto out;
	s.ctx = cell_context(c);
	if (!s.ctx)
		goto out;
	s.buf = malloc(AGENT_PIPE_CHUNK);
	if (!s.buf)
		reply_error(c, ENOMEM, "out of memory");
	else
		cell_run(&s, path, timeout_ms);
	context_put(s.ctx);
out:
	if (path)
		unlink(path);
	free(path);
	free(s.buf);
	json_decref(s.error);
}
