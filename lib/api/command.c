/* The library's side of the VMM's command socket, <sandbox dir>/control.sock
 * (lib/runtime/control_server.h): one JSON line per command, one JSON line back. Used by the
 * network calls and by snapshots, from any process of the sandbox's owner. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "util/io.h"

#define SBX_COMMAND_TIMEOUT_MS 5000

int sandbox_command_connect(sbx_sandbox *sb)
{
	struct sockaddr_un sa;
	int fd;

	if (unix_addr(&sa, sb->dir, "control.sock") < 0)
		return sandbox_error(sb, SBX_EINVAL, "control socket path too long");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sandbox_error(sb, SBX_EIO, "socket failed");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		char msg[SBX_ERRMSG_MAX];
		snprintf(msg, sizeof(msg), "%s: %s (is the sandbox running?)", sa.sun_path,
			 strerror(errno));
		close(fd);
		return sandbox_error(sb, SBX_ESTATE, msg);
	}
	return fd;
}

int sandbox_command_on(sbx_sandbox *sb, int fd, json_t *req, const int *fds, unsigned nfds,
		       int timeout_ms, json_t **reply)
{
	struct jsonl_reader *r = malloc(sizeof(*r));
	const char *code = "EPROTO", *message = "malformed answer";
	json_t *msg = NULL;
	int rc, ok = 0;

	if (!r || !req) {
		free(r);
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	}
	jsonl_reader_init(r, fd);
	rc = jsonl_write_fds(fd, req, fds, nfds);
	if (rc == 0)
		rc = jsonl_read(r, timeout_ms, &msg);
	free(r);
	if (rc == -EMSGSIZE)
		return sandbox_error(sb, SBX_ERANGE, "the command is larger than the VMM takes");
	if (rc == -ETIMEDOUT)
		return sandbox_error(sb, SBX_ETIMEDOUT, "the VMM did not answer");
	if (rc != 1)
		return sandbox_error(sb, rc == 0 || rc == -EPIPE ? SBX_ESTATE : SBX_EPROTO,
				     "the VMM closed its command socket");
	if (json_unpack(msg, "{s:b}", "ok", &ok) == 0 && ok) {
		*reply = msg;
		return SBX_OK;
	}
	json_unpack(msg, "{s?s, s?s}", "code", &code, "message", &message);
	rc = sandbox_error(sb, sbx_err_from_name(code), message);
	json_decref(msg);
	return rc;
}

int sandbox_command(sbx_sandbox *sb, json_t *req, json_t **reply)
{
	int fd = sandbox_command_connect(sb), rc;

	if (fd < 0)
		return fd;
	rc = sandbox_command_on(sb, fd, req, NULL, 0, SBX_COMMAND_TIMEOUT_MS, reply);
	close(fd);
	return rc;
}
