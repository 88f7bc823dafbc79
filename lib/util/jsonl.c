#define _GNU_SOURCE
#include "jsonl.h"
#include "io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void jsonl_reader_init(struct jsonl_reader *r, int fd)
{
	r->fd = fd;
	r->len = 0;
	r->take_fds = 0;
	r->nfds = 0;
}

void jsonl_reader_init_fds(struct jsonl_reader *r, int fd)
{
	jsonl_reader_init(r, fd);
	r->take_fds = 1;
}

unsigned jsonl_reader_take_fds(struct jsonl_reader *r, int *fds)
{
	unsigned n = r->nfds;

	memcpy(fds, r->fds, n * sizeof(int));
	r->nfds = 0;
	return n;
}

void jsonl_reader_close_fds(struct jsonl_reader *r)
{
	for (unsigned i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	r->nfds = 0;
}

/* Parses and removes the first complete line from the buffer, if there is one. */
static int jsonl_take_line(struct jsonl_reader *r, json_t **out)
{
	char *nl = memchr(r->buf, '\n', r->len);
	size_t line_len;
	json_t *msg;

	if (!nl)
		return r->len == sizeof(r->buf) ? -EPROTO : 0;
	line_len = (size_t)(nl - r->buf);
	msg = json_loadb(r->buf, line_len, 0, NULL);
	r->len -= line_len + 1;
	memmove(r->buf, nl + 1, r->len);
	if (!msg || !json_is_object(msg)) {
		json_decref(msg);
		return -EPROTO;
	}
	*out = msg;
	return 1;
}

int jsonl_read(struct jsonl_reader *r, int timeout_ms, json_t **out)
{
	int64_t deadline = deadline_after(timeout_ms);

	for (;;) {
		int rc = jsonl_take_line(r, out);
		ssize_t n;

		if (rc != 0)
			return rc;
		n = r->take_fds
			? recv_until(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, deadline,
				     r->fds, &r->nfds, IO_MAX_FDS)
			: read_until(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, deadline);
		if (n <= 0)
			return (int)n;
		r->len += (size_t)n;
	}
}

int jsonl_write(int fd, const json_t *msg)
{
	return jsonl_write_fds(fd, msg, NULL, 0);
}

int jsonl_write_fds(int fd, const json_t *msg, const int *fds, unsigned nfds)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	int rc = 0;

	if (!s)
		return -ENOMEM;
	len = strlen(s);
	if (len >= JSONL_MAX_LINE) { /* no reader would take it */
		free(s);
		return -EMSGSIZE;
	}
	s[len++] = '\n'; /* replaces the NUL: json_dumps' buffer has room for it */
	if (nfds) {
		rc = send_with_fds(fd, s, len, fds, nfds);
		off = len;
	}
	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)n;
	}
	free(s);
	return rc;
}
