#define _GNU_SOURCE
#include "control_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "netctl.h"
#include "snapctl.h"
#include "util/jsonl.h"
#include "util/log.h"

/* A client that does not read its answer for this long loses it (the main thread must go on). */
#define CONTROL_SEND_TIMEOUT_MS 1000
/* Denial records per net_log answer: 256 records with long names would not fit one line. */
#define CONTROL_LOG_MAX 64

struct control_client {
	int fd; /* -1: free slot */
	struct jsonl_reader *reader;
};

struct control_server {
	int listen_fd;
	struct control_client clients[CONTROL_SERVER_MAX_CLIENTS];
	/* The client whose snapshot holds the guest paused, or NULL. */
	struct control_client *pauser;
};

int control_server_open(const char *path, struct control_server **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct control_server *s;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (int i = 0; i < CONTROL_SERVER_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(s->listen_fd, CONTROL_SERVER_MAX_CLIENTS) < 0) {
		rc = -errno;
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

size_t control_server_pollfds(const struct control_server *s, struct pollfd *p)
{
	size_t n = 0;

	p[n++] = (struct pollfd){s->listen_fd, POLLIN, 0};
	for (int i = 0; i < CONTROL_SERVER_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			p[n++] = (struct pollfd){s->clients[i].fd, POLLIN, 0};
	return n;
}

/* A client that leaves while its snapshot holds the guest lets it go on: the library failed or
 * died between the snapshot and its resume. */
static void control_client_close(struct control_server *s, struct control_client *c,
				 struct machine *m)
{
	if (s->pauser == c) {
		vmm_log("the snapshot's client left: the guest runs on");
		machine_resume(m);
		s->pauser = NULL;
	}
	jsonl_reader_close_fds(c->reader);
	close(c->fd);
	free(c->reader);
	c->fd = -1;
	c->reader = NULL;
}

static void control_accept(struct control_server *s)
{
	struct timeval tv = {0, CONTROL_SEND_TIMEOUT_MS * 1000};
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < CONTROL_SERVER_MAX_CLIENTS; i++) {
		struct control_client *c = &s->clients[i];

		if (c->fd >= 0)
			continue;
		c->reader = malloc(sizeof(*c->reader));
		if (!c->reader)
			break;
		c->fd = fd;
		jsonl_reader_init_fds(c->reader, fd);
		return;
	}
	close(fd); /* full: the client sees the end at once rather than waiting */
}

static json_t *control_error(const char *code, const char *message)
{
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "message", message);
}

static json_t *control_net_log(struct machine *m, json_t *req)
{
	json_int_t cursor = 0, max = CONTROL_LOG_MAX;
	json_t *reply;

	if (json_unpack(req, "{s?I, s?I}", "cursor", &cursor, "max", &max) < 0 || cursor < 0 ||
	    max < 0)
		return control_error("EINVAL", "net_log: cursor and max are counts");
	if (max > CONTROL_LOG_MAX)
		max = CONTROL_LOG_MAX;
	reply = netctl_log_json(m->egress, (uint64_t)cursor, (size_t)max);
	if (!reply)
		return control_error("ENOMEM", "out of memory");
	json_object_set_new(reply, "ok", json_true());
	return reply;
}

/* snapshot, and resume or hibernate by the client that took it. *stop: stop the machine once
 * the answer is sent. */
static json_t *control_snapshot_cmd(struct control_server *s, struct control_client *c,
				    struct machine *m, const char *cmd, int *stop)
{
	int fds[IO_MAX_FDS], paused = 0;
	unsigned nfds = jsonl_reader_take_fds(c->reader, fds);
	json_t *reply;

	if (strcmp(cmd, "snapshot") == 0) {
		reply = s->pauser ? control_error("ESTATE", "a snapshot is in progress")
				  : snapctl_snapshot(m, fds, nfds, &paused);
		if (!s->pauser && paused)
			s->pauser = c;
	} else if (s->pauser != c) {
		reply = control_error("ESTATE", "no snapshot of this connection holds the guest");
	} else {
		s->pauser = NULL;
		if (strcmp(cmd, "hibernate") == 0)
			*stop = 1;
		else
			machine_resume(m);
		reply = json_pack("{s:b}", "ok", 1);
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	return reply;
}

static json_t *control_dispatch(struct control_server *s, struct control_client *c,
				struct machine *m, json_t *req, int *stop)
{
	const char *cmd = NULL;
	json_t *policy = NULL;
	char err[512];
	int rc;

	if (json_unpack(req, "{s:s}", "cmd", &cmd) < 0)
		return control_error("EINVAL", "no command");
	if (strcmp(cmd, "snapshot") == 0 || strcmp(cmd, "resume") == 0 ||
	    strcmp(cmd, "hibernate") == 0)
		return control_snapshot_cmd(s, c, m, cmd, stop);
	if (strncmp(cmd, "net_", 4) == 0 && !m->egress)
		return control_error("ESTATE", "this sandbox was created without a network");
	if (strcmp(cmd, "net_policy") == 0) {
		if (json_unpack(req, "{s:o}", "policy", &policy) < 0)
			return control_error("EINVAL", "net_policy: no policy");
		rc = machine_net_set_policy(m, policy, err, sizeof(err));
		if (rc < 0)
			return control_error(rc == -ENOMEM ? "ENOMEM" : "EINVAL", err);
		return json_pack("{s:b}", "ok", 1);
	}
	if (strcmp(cmd, "net_policy_get") == 0)
		return json_pack("{s:b, s:O}", "ok", 1, "policy", m->policy);
	if (strcmp(cmd, "net_log") == 0)
		return control_net_log(m, req);
	return control_error("EINVAL", "unknown command");
}

/* Answers every whole line the client has sent; 0 while it stays, -1 once it is gone. fds that
 * came with a command not taking any are closed. */
static int control_client_serve(struct control_server *s, struct control_client *c,
				struct machine *m)
{
	json_t *req, *reply;
	int rc, stop = 0;

	while ((rc = jsonl_read(c->reader, 0, &req)) == 1) {
		reply = control_dispatch(s, c, m, req, &stop);
		json_decref(req);
		jsonl_reader_close_fds(c->reader);
		rc = reply ? jsonl_write(c->fd, reply) : -ENOMEM;
		json_decref(reply);
		if (stop)
			machine_stop(m, "stopped", "hibernated");
		if (rc < 0)
			return -1;
	}
	return rc == -ETIMEDOUT ? 0 : -1;
}

void control_server_serve(struct control_server *s, const struct pollfd *p, size_t n,
			  struct machine *m)
{
	/* The clients in p are the busy slots in slot order, as control_server_pollfds put them. */
	size_t k = 1;

	for (int i = 0; i < CONTROL_SERVER_MAX_CLIENTS && k < n; i++) {
		struct control_client *c = &s->clients[i];

		if (c->fd < 0 || p[k].fd != c->fd)
			continue;
		if (p[k].revents && control_client_serve(s, c, m) < 0)
			control_client_close(s, c, m);
		k++;
	}
	if (n && p[0].revents)
		control_accept(s);
}
