/* sbx_exec and background processes: one agent connection per call. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent_client.h"
#include "internal.h"

/* How long past its own timeout we wait for the agent to report a command's end. */
#define EXEC_GRACE_MS 30000
#define STDIN_CHUNK (256u << 10)

struct sbx_exec_opts {
	json_t *req; /* the request's fields as the setters left them */
	unsigned char *stdin_data;
	size_t stdin_len;
	int has_stdin;
	unsigned timeout_ms;
	sbx_output_fn fn;
	void *user;
	int capture;
};

struct sbx_exec_result {
	int exit_code, signal, timed_out;
	double duration;
	struct sbx_buf out, err;
};

sbx_exec_opts *sbx_exec_opts_new(void)
{
	sbx_exec_opts *o = calloc(1, sizeof(*o));

	if (o && !(o->req = json_object())) {
		free(o);
		return NULL;
	}
	if (o)
		o->capture = 1;
	return o;
}

void sbx_exec_opts_free(sbx_exec_opts *o)
{
	if (!o)
		return;
	json_decref(o->req);
	free(o->stdin_data);
	free(o);
}

/* Sets key to value (stolen). A NULL value is a string that is not UTF-8 (or out of memory),
 * refused as SBX_EINVAL like a bad argv. */
static int opts_set(sbx_exec_opts *o, const char *key, json_t *value)
{
	if (!o || !value) {
		json_decref(value);
		return SBX_EINVAL;
	}
	return json_object_set_new(o->req, key, value) == 0 ? SBX_OK : SBX_ENOMEM;
}

int sbx_exec_opts_set_argv(sbx_exec_opts *o, const char *const *argv)
{
	json_t *a;

	if (!o || !argv || !argv[0])
		return SBX_EINVAL;
	a = json_array();
	for (size_t i = 0; a && argv[i]; i++)
		if (json_array_append_new(a, json_string(argv[i])) < 0) {
			json_decref(a);
			return SBX_EINVAL; /* not UTF-8, or out of memory */
		}
	json_object_del(o->req, "shell");
	return opts_set(o, "argv", a);
}

int sbx_exec_opts_set_shell(sbx_exec_opts *o, const char *command)
{
	if (!o || !command)
		return SBX_EINVAL;
	json_object_del(o->req, "argv");
	return opts_set(o, "shell", json_string(command));
}

int sbx_exec_opts_add_env(sbx_exec_opts *o, const char *name, const char *value)
{
	json_t *env;

	if (!o || !name || !*name || strchr(name, '=') || !value)
		return SBX_EINVAL;
	env = json_object_get(o->req, "env");
	if (!env && opts_set(o, "env", json_object()) != SBX_OK)
		return SBX_ENOMEM;
	env = json_object_get(o->req, "env");
	return json_object_set_new(env, name, json_string(value)) == 0 ? SBX_OK : SBX_EINVAL;
}

int sbx_exec_opts_set_cwd(sbx_exec_opts *o, const char *dir)
{
	return dir ? opts_set(o, "cwd", json_string(dir)) : SBX_EINVAL;
}

int sbx_exec_opts_set_user(sbx_exec_opts *o, const char *user)
{
	return user ? opts_set(o, "user", json_string(user)) : SBX_EINVAL;
}

int sbx_exec_opts_set_stdin(sbx_exec_opts *o, const void *data, size_t len)
{
	unsigned char *copy;

	if (!o || (!data && len))
		return SBX_EINVAL;
	copy = malloc(len ? len : 1);
	if (!copy)
		return SBX_ENOMEM;
	if (len)
		memcpy(copy, data, len);
	free(o->stdin_data);
	o->stdin_data = copy;
	o->stdin_len = len;
	o->has_stdin = 1;
	return SBX_OK;
}

int sbx_exec_opts_set_timeout_ms(sbx_exec_opts *o, unsigned timeout_ms)
{
	if (!o)
		return SBX_EINVAL;
	o->timeout_ms = timeout_ms;
	return opts_set(o, "timeout_ms", json_integer(timeout_ms));
}

int sbx_exec_opts_set_output_fn(sbx_exec_opts *o, sbx_output_fn fn, void *user)
{
	if (!o)
		return SBX_EINVAL;
	o->fn = fn;
	o->user = user;
	return SBX_OK;
}

int sbx_exec_opts_set_capture(sbx_exec_opts *o, int capture)
{
	if (!o)
		return SBX_EINVAL;
	o->capture = capture != 0;
	return SBX_OK;
}

/* How long the library waits on the agent for a command limited to timeout_ms (0: no limit),
 * in int milliseconds without overflowing: -1 (forever) for no limit. */
static int exec_wait_ms(unsigned timeout_ms)
{
	int64_t ms = (int64_t)timeout_ms + EXEC_GRACE_MS;

	return timeout_ms == 0 ? -1 : ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Feeds stdin on its own thread, so a command that writes a lot before reading its input
 * cannot deadlock against us. */
struct stdin_feed {
	int fd;
	const sbx_exec_opts *o;
};

static void *stdin_feed_run(void *arg)
{
	struct stdin_feed *f = arg;
	size_t off = 0;

	while (off < f->o->stdin_len) {
		size_t n = f->o->stdin_len - off < STDIN_CHUNK ? f->o->stdin_len - off : STDIN_CHUNK;
		if (frame_write(f->fd, FRAME_STDIN, 0, f->o->stdin_data + off, (uint32_t)n) < 0)
			return NULL; /* the agent hung up; the reader sees why */
		off += n;
	}
	frame_write(f->fd, FRAME_STDIN, FRAME_F_EOF, NULL, 0);
	return NULL;
}

static void result_from_exit(sbx_exec_result *r, json_t *ev)
{
	json_t *code = json_object_get(ev, "exit_code"), *sig = json_object_get(ev, "signal");

	r->exit_code = json_is_integer(code) ? (int)json_integer_value(code) : -1;
	r->signal = json_is_integer(sig) ? (int)json_integer_value(sig) : 0;
	r->timed_out = json_is_true(json_object_get(ev, "timed_out"));
	r->duration = (double)json_integer_value(json_object_get(ev, "duration_ms")) / 1000.0;
}

/* Reads the answer of an exec: output frames, then the exit event. */
static int exec_collect(struct agent_call *c, const sbx_exec_opts *o, sbx_exec_result *r,
			char *err)
{
	int timeout = exec_wait_ms(o->timeout_ms);

	for (;;) {
		struct frame f;
		const char *event = NULL;
		json_t *ev;
		int rc = agent_call_next(c, timeout, &f, err);

		if (rc != SBX_OK)
			return rc;
		if (f.type == FRAME_STDOUT || f.type == FRAME_STDERR) {
			int stream = f.type == FRAME_STDOUT ? SBX_STDOUT : SBX_STDERR;
			if (o->fn && f.len)
				o->fn(o->user, stream, (const char *)f.payload, f.len);
			if (o->capture &&
			    sbx_buf_append(stream == SBX_STDOUT ? &r->out : &r->err, f.payload, f.len))
				return sbx_fail(err, SBX_ENOMEM, "out of memory for output");
			continue;
		}
		ev = frame_json(&f);
		if (!ev || json_unpack(ev, "{s:s}", "event", &event) < 0) {
			json_decref(ev);
			return sbx_fail(err, SBX_EPROTO, "unexpected frame type %u from the agent",
					f.type);
		}
		if (strcmp(event, "exit") == 0) {
			result_from_exit(r, ev);
			json_decref(ev);
			return SBX_OK;
		}
		rc = strcmp(event, "error") == 0 ? agent_error(ev, err) : SBX_OK;
		json_decref(ev);
		if (rc != SBX_OK)
			return rc;
		/* "started": nothing to do */
	}
}

static json_t *exec_request(const sbx_exec_opts *o, char *err, int *rc)
{
	json_t *req;

	if (!json_object_get(o->req, "argv") && !json_object_get(o->req, "shell")) {
		*rc = sbx_fail(err, SBX_EINVAL, "no command: set argv or a shell string");
		return NULL;
	}
	req = json_deep_copy(o->req);
	if (!req || json_object_set_new(req, "op", json_string("exec")) < 0) {
		json_decref(req);
		*rc = sbx_fail(err, SBX_ENOMEM, "out of memory");
		return NULL;
	}
	return req;
}

int sbx_exec(sbx_sandbox *sb, const sbx_exec_opts *o, sbx_exec_result **result)
{
	char err[SBX_ERRMSG_MAX];
	struct stdin_feed feed;
	struct agent_call c;
	pthread_t feeder;
	sbx_exec_result *r;
	json_t *req;
	int rc, feeding = 0;

	if (!sb || !o || !result)
		return SBX_EINVAL;
	req = exec_request(o, err, &rc);
	if (!req)
		return sandbox_error(sb, rc, err);
	json_object_set_new(req, "stdin", json_boolean(o->has_stdin));
	r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(req);
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	}
	rc = agent_call_open(sb->dir, req, &c, err);
	json_decref(req);
	if (rc == SBX_OK && o->has_stdin) {
		feed = (struct stdin_feed){ c.fd, o };
		feeding = pthread_create(&feeder, NULL, stdin_feed_run, &feed) == 0;
		if (!feeding)
			rc = sbx_fail(err, SBX_ENOMEM, "cannot start the stdin thread");
	}
	if (rc == SBX_OK)
		rc = exec_collect(&c, o, r, err);
	if (feeding) {
		shutdown(c.fd, SHUT_RDWR); /* unblocks the feeder if the command ignored its input */
		pthread_join(feeder, NULL);
	}
	agent_call_close(&c);
	if (rc != SBX_OK) {
		sbx_exec_result_free(r);
		return sandbox_error(sb, rc, err);
	}
	*result = r;
	return SBX_OK;
}

int sbx_exec_result_exit_code(const sbx_exec_result *r)
{
	return r ? r->exit_code : -1;
}

int sbx_exec_result_signal(const sbx_exec_result *r)
{
	return r ? r->signal : 0;
}

int sbx_exec_result_timed_out(const sbx_exec_result *r)
{
	return r ? r->timed_out : 0;
}

double sbx_exec_result_duration(const sbx_exec_result *r)
{
	return r ? r->duration : 0;
}

const char *sbx_exec_result_stdout(const sbx_exec_result *r, size_t *len)
{
	return sbx_buf_view(r ? &r->out : NULL, len);
}

const char *sbx_exec_result_stderr(const sbx_exec_result *r, size_t *len)
{
	return sbx_buf_view(r ? &r->err : NULL, len);
}

void sbx_exec_result_free(sbx_exec_result *r)
{
	if (!r)
		return;
	free(r->out.data);
	free(r->err.data);
	free(r);
}

int sbx_exec_background(sbx_sandbox *sb, const sbx_exec_opts *o, const char *stdout_path,
			const char *stderr_path, int *pid)
{
	char err[SBX_ERRMSG_MAX];
	json_t *req, *ev = NULL;
	int rc;

	if (!sb || !o || !pid || o->has_stdin)
		return SBX_EINVAL;
	req = exec_request(o, err, &rc);
	if (!req)
		return sandbox_error(sb, rc, err);
	json_object_set_new(req, "background", json_true());
	/* A path dropped here would send the output to /dev/null without a word. */
	if ((stdout_path && json_object_set_new(req, "stdout_path", json_string(stdout_path))) ||
	    (stderr_path && json_object_set_new(req, "stderr_path", json_string(stderr_path)))) {
		json_decref(req);
		return sandbox_error(sb, SBX_EINVAL, "output path is not UTF-8");
	}
	rc = agent_request(sb->dir, req, EXEC_GRACE_MS, &ev, err);
	json_decref(req);
	if (rc == SBX_OK && !json_is_integer(json_object_get(ev, "pid")))
		rc = sbx_fail(err, SBX_EPROTO, "agent gave no pid for the background command");
	if (rc == SBX_OK)
		*pid = (int)json_integer_value(json_object_get(ev, "pid"));
	json_decref(ev);
	return rc == SBX_OK ? SBX_OK : sandbox_error(sb, rc, err);
}

int sbx_process_wait(sbx_sandbox *sb, int pid, int timeout_ms, sbx_exec_result **result)
{
	char err[SBX_ERRMSG_MAX];
	sbx_exec_result *r;
	json_t *req, *ev = NULL;
	int rc, agent_ms;

	if (!sb || !result || pid <= 0)
		return SBX_EINVAL;
	/* The agent reads a timeout of 0 as no limit: a caller's 0 ("is it done?") becomes 1 ms. */
	agent_ms = timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 : timeout_ms;
	req = json_pack("{s:s, s:i, s:i}", "op", "wait", "pid", pid, "timeout_ms", agent_ms);
	rc = agent_request(sb->dir, req, timeout_ms < 0 ? -1 : exec_wait_ms((unsigned)agent_ms),
			   &ev, err);
	json_decref(req);
	if (rc != SBX_OK)
		return sandbox_error(sb, rc, err);
	r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(ev);
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	}
	result_from_exit(r, ev);
	json_decref(ev);
	*result = r;
	return SBX_OK;
}

int sbx_process_kill(sbx_sandbox *sb, int pid, int signal)
{
	char err[SBX_ERRMSG_MAX];
	json_t *req, *ev = NULL;
	int rc;

	if (!sb || pid <= 0 || signal < 0)
		return SBX_EINVAL;
	req = json_pack("{s:s, s:i, s:i}", "op", "kill", "pid", pid, "signal", signal);
	rc = agent_request(sb->dir, req, EXEC_GRACE_MS, &ev, err);
	json_decref(req);
	json_decref(ev);
	return rc == SBX_OK ? SBX_OK : sandbox_error(sb, rc, err);
}
