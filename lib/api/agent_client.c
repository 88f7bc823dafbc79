#define _GNU_SOURCE
#include "agent_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "util/io.h"

#define AGENT_CONNECT_TIMEOUT_MS 10000

/* The bridge answers "OK <port>\n" once the guest accepted, or closes the socket. */
static int bridge_handshake(int fd, char *err)
{
	char line[64];
	size_t len = 0;
	int64_t deadline = deadline_after(AGENT_CONNECT_TIMEOUT_MS);
	int n = snprintf(line, sizeof(line), "CONNECT %d\n", AGENT_VSOCK_PORT);

	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n)
		return sbx_fail(err, SBX_EGUEST, "vsock bridge: %s", strerror(errno));
	/* Byte by byte: nothing after the newline may be consumed, it belongs to the agent. */
	while (len < sizeof(line) - 1) {
		ssize_t r = read_until(fd, line + len, 1, deadline);
		if (r <= 0)
			return sbx_fail(err, r == -ETIMEDOUT ? SBX_ETIMEDOUT : SBX_EGUEST,
					"guest agent not reachable on vsock port %d", AGENT_VSOCK_PORT);
		if (line[len++] == '\n')
			break;
	}
	line[len] = 0;
	if (strncmp(line, "OK ", 3) != 0)
		return sbx_fail(err, SBX_EPROTO, "vsock bridge answered: %.40s", line);
	return SBX_OK;
}

int agent_call_open(const char *sandbox_dir, json_t *req, struct agent_call *c, char *err)
{
	struct sockaddr_un sa;
	int rc;

	c->fd = -1; /* callers close the call whether or not it opened */
	c->reader = NULL;
	if (unix_addr(&sa, sandbox_dir, "vsock.sock") < 0)
		return sbx_fail(err, SBX_EINVAL, "sandbox directory path too long for a socket");
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return sbx_fail(err, SBX_EIO, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = sbx_fail(err, SBX_ESTATE, "%s: %s (is the sandbox running?)", sa.sun_path,
			      strerror(errno));
		goto fail;
	}
	rc = bridge_handshake(c->fd, err);
	if (rc != SBX_OK)
		goto fail;
	c->reader = malloc(sizeof(*c->reader));
	if (!c->reader) {
		rc = sbx_fail(err, SBX_ENOMEM, "out of memory");
		goto fail;
	}
	frame_reader_init(c->reader, c->fd);
	json_object_set_new(req, "v", json_integer(AGENT_PROTO_VERSION));
	rc = frame_write_json(c->fd, req);
	if (rc == -EMSGSIZE) {
		rc = sbx_fail(err, SBX_EINVAL, "request larger than %u bytes", FRAME_MAX_JSON);
		goto fail;
	}
	if (rc < 0) {
		rc = sbx_fail(err, rc == -ENOMEM ? SBX_ENOMEM : SBX_EGUEST,
			      "sending to the agent: %s", strerror(-rc));
		goto fail;
	}
	return SBX_OK;
fail:
	agent_call_close(c);
	return rc;
}

int agent_call_next(struct agent_call *c, int timeout_ms, struct frame *f, char *err)
{
	int rc = frame_read(c->reader, timeout_ms, f);

	if (rc == 1)
		return SBX_OK;
	if (rc == -ETIMEDOUT)
		return sbx_fail(err, SBX_ETIMEDOUT, "no answer from the agent in %d ms", timeout_ms);
	return sbx_fail(err, SBX_EPROTO, "agent connection: %s",
			rc == 0 ? "closed before the answer ended" : strerror(-rc));
}

void agent_call_close(struct agent_call *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->reader);
	c->fd = -1;
	c->reader = NULL;
}

int agent_error(json_t *event, char *err)
{
	static const struct {
		const char *name;
		int code;
	} map[] = { { "ENOENT", SBX_ENOENT }, { "ENOTDIR", SBX_ENOENT }, { "EACCES", SBX_EPERM },
		    { "EPERM", SBX_EPERM },   { "EROFS", SBX_EPERM },     { "EINVAL", SBX_EINVAL },
		    { "ETIMEDOUT", SBX_ETIMEDOUT }, { "EPROTO", SBX_EPROTO } };
	const char *name = "EIO", *message = "agent error";

	json_unpack(event, "{s?s, s?s}", "code", &name, "message", &message);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, name) == 0)
			return sbx_fail(err, map[i].code, "%s (%s)", message, name);
	return sbx_fail(err, SBX_EIO, "%s (%s)", message, name);
}

int agent_call_finish(struct agent_call *c, int timeout_ms, json_t **event, char *err)
{
	const char *kind = NULL;
	struct frame f;
	json_t *ev;
	int rc = agent_call_next(c, timeout_ms, &f, err);

	if (rc != SBX_OK)
		return rc;
	ev = frame_json(&f);
	if (!ev || json_unpack(ev, "{s:s}", "event", &kind) < 0) {
		json_decref(ev);
		return sbx_fail(err, SBX_EPROTO, "agent sent an unexpected frame (type %u)", f.type);
	}
	if (strcmp(kind, "error") == 0) {
		rc = agent_error(ev, err);
		json_decref(ev);
		return rc;
	}
	*event = ev;
	return SBX_OK;
}

int agent_request(const char *sandbox_dir, json_t *req, int timeout_ms, json_t **event,
		  char *err)
{
	struct agent_call c;
	int rc = agent_call_open(sandbox_dir, req, &c, err);

	if (rc == SBX_OK)
		rc = agent_call_finish(&c, timeout_ms, event, err);
	agent_call_close(&c);
	return rc;
}
