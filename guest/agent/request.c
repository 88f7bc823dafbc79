/* One connection, one request: read the request frame, check it, dispatch on "op", and the reply
 * helpers every operation uses. A framing error closes the connection without a word (the spec's
 * "protocol error"); a frame that is well formed but not a valid request gets error EPROTO. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_read_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t agent_now_ms(void)
{
	return clock_read_ms(CLOCK_MONOTONIC);
}

int64_t agent_uptime_ms(void)
{
	return clock_read_ms(CLOCK_BOOTTIME);
}

int reply_json(struct conn *c, json_t *msg)
{
	int rc;

	if (!msg)
		return -ENOMEM;
	rc = frame_write_json(c->fd, msg);
	json_decref(msg);
	return rc;
}

int reply_result(struct conn *c, json_t *fields)
{
	json_t *msg = json_pack("{s:s}", "event", "result");

	if (msg && fields)
		json_object_update(msg, fields);
	json_decref(fields);
	return reply_json(c, msg);
}

int reply_error(struct conn *c, int err, const char *fmt, ...)
{
	char text[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return reply_json(c, json_pack("{s:s, s:s, s:o}", "event", "error", "code", errno_name(err),
				       "message", json_string_lossy(text)));
}

int reply_errno(struct conn *c, int err, const char *what, const char *path)
{
	char cut[AGENT_MSG_PATH_MAX + 8], ebuf[128];

	if (err < 0)
		err = -err;
	return reply_error(c, err, "%s %s: %s", what, msg_path(path, cut, sizeof(cut)),
			   strerror_r(err, ebuf, sizeof(ebuf)));
}

const char *msg_path(const char *path, char *buf, size_t len)
{
	size_t n = strlen(path);

	if (n <= AGENT_MSG_PATH_MAX || len < AGENT_MSG_PATH_MAX + 4)
		return path;
	n = AGENT_MSG_PATH_MAX;
	while (n && ((unsigned char)path[n] & 0xc0) == 0x80)
		n--; /* not inside a multi-byte character */
	memcpy(buf, path, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

/* Absent and null both mean "not given". */
static json_t *arg_get(struct conn *c, const char *key)
{
	json_t *v = json_object_get(c->req, key);

	return json_is_null(v) ? NULL : v;
}

int arg_string(struct conn *c, const char *key, int required, const char **out)
{
	json_t *v = arg_get(c, key);

	if (!v && !required) {
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v) || (required && !*json_string_value(v))) {
		reply_error(c, EINVAL, "field \"%s\": %s", key,
			    v ? "expected a non-empty string" : "required");
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int arg_bool(struct conn *c, const char *key, int def, int *out)
{
	json_t *v = arg_get(c, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v)) {
		reply_error(c, EINVAL, "field \"%s\": expected true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

int arg_int(struct conn *c, const char *key, long long def, long long min, long long max,
	    long long *out)
{
	json_t *v = arg_get(c, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		reply_error(c, EINVAL, "field \"%s\": expected an integer from %lld to %lld", key,
			    min, max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static void op_hello(struct conn *c)
{
	reply_result(c, json_pack("{s:s, s:i, s:I}", "agent", AGENT_NAME, "version",
				  AGENT_PROTO_VERSION, "uptime_ms", (json_int_t)agent_uptime_ms()));
}

/* Sets the guest's wall clock: after a restore it stands where it stood at the snapshot (the
 * host library sends its own time). The answer says how far off the clock was. */
static void op_settime(struct conn *c)
{
	struct timespec before, ts;
	long long ns;

	if (arg_int(c, "realtime_ns", -1, 0, LLONG_MAX, &ns) < 0)
		return;
	if (ns < 0) {
		reply_error(c, EINVAL, "field \"realtime_ns\": required");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &before);
	ts.tv_sec = (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
		reply_errno(c, errno, "clock_settime", "CLOCK_REALTIME");
		return;
	}
	reply_result(c, json_pack("{s:I}", "previous_ns",
				  (json_int_t)before.tv_sec * 1000000000LL + before.tv_nsec));
}

static const struct {
	const char *name;
	void (*run)(struct conn *c);
} ops[] = {
    {"hello", op_hello},   {"exec", op_exec},	{"wait", op_wait},     {"kill", op_kill},
    {"write", op_write},   {"read", op_read},	{"list", op_list},     {"stat", op_stat},
    {"remove", op_remove}, {"mkdir", op_mkdir}, {"rename", op_rename},
    {"run_code", op_run_code}, {"context_create", op_context_create},
    {"context_list", op_context_list}, {"context_restart", op_context_restart},
    {"context_destroy", op_context_destroy}, {"settime", op_settime},
    {"reseed", op_reseed}, {"net", op_net},
};

static void request_dispatch(struct conn *c)
{
	json_t *v = json_object_get(c->req, "v");
	const char *op = json_string_value(json_object_get(c->req, "op"));

	if (!json_is_integer(v) || json_integer_value(v) != AGENT_PROTO_VERSION) {
		reply_error(c, EPROTO, "unsupported protocol version (this agent speaks %d)",
			    AGENT_PROTO_VERSION);
		return;
	}
	if (!op) {
		reply_error(c, EPROTO, "request without \"op\"");
		return;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!strcmp(ops[i].name, op)) {
			ops[i].run(c);
			return;
		}
	}
	reply_error(c, EPROTO, "unknown op \"%.64s\"", op);
}

/* After the final event: a client may still be sending (stdin for a process that has exited,
 * the rest of an upload that failed). Closing with its bytes unread would reset the connection,
 * and some transports then drop the final event too; so close our side, then read and discard
 * until the client closes, for a moment at most. */
static void conn_linger(struct conn *c)
{
	int64_t deadline = agent_now_ms() + AGENT_LINGER_MS;
	struct pollfd p = {c->fd, POLLIN, 0};
	int64_t left;

	if (shutdown(c->fd, SHUT_WR) < 0)
		return;
	while ((left = deadline - agent_now_ms()) > 0 && poll(&p, 1, (int)left) > 0)
		if (read(c->fd, c->rd->buf, sizeof(c->rd->buf)) <= 0)
			break;
}

void conn_serve(int fd)
{
	struct conn c = {.fd = fd};
	struct frame f;

	c.rd = malloc(sizeof(*c.rd));
	if (!c.rd)
		goto out;
	frame_reader_init(c.rd, fd);
	/* Anything but a JSON frame first, EOF or silence: nothing worth answering. */
	if (frame_read(c.rd, AGENT_REQUEST_TIMEOUT_MS, &f) <= 0 || f.type != FRAME_JSON)
		goto out;
	c.req = frame_json(&f);
	if (!c.req) {
		reply_error(&c, EPROTO, "the request is not a JSON object");
		goto out;
	}
	request_dispatch(&c);
	conn_linger(&c);
out:
	json_decref(c.req);
	free(c.rd);
	close(fd);
}
