/* The file API: each call one agent request; contents stream in frames of at most 1 MiB. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "internal.h"

#define FILE_CHUNK (1u << 20)
#define FILE_OP_TIMEOUT_MS 60000 /* per frame: a stalled guest fails the call, a slow one not */

/* Where written bytes come from: a host fd, or a buffer. */
struct source {
	int fd;
	const uint8_t *buf;
	size_t len, off;
};

static ssize_t source_read(struct source *s, uint8_t *dst, size_t cap)
{
	size_t n;

	if (s->fd >= 0) {
		ssize_t r;
		do
			r = read(s->fd, dst, cap);
		while (r < 0 && errno == EINTR);
		return r < 0 ? -errno : r;
	}
	n = s->len - s->off < cap ? s->len - s->off : cap;
	if (n) /* an empty write may come with a NULL buffer */
		memcpy(dst, s->buf + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static int file_write(sbx_sandbox *sb, const char *path, struct source *src, unsigned mode)
{
	char err[SBX_ERRMSG_MAX];
	struct agent_call c;
	json_t *ev = NULL, *req;
	uint8_t *chunk = NULL;
	int rc;

	if (!sb || !path)
		return SBX_EINVAL;
	req = json_pack("{s:s, s:s, s:i, s:b}", "op", "write", "path", path, "mode", (int)mode,
			"mkdirs", 1);
	rc = req ? agent_call_open(sb->dir, req, &c, err)
		 : sbx_fail(err, SBX_EINVAL, "path is not UTF-8");
	json_decref(req);
	if (rc != SBX_OK)
		return sandbox_error(sb, rc, err);
	chunk = malloc(FILE_CHUNK);
	if (!chunk)
		rc = sbx_fail(err, SBX_ENOMEM, "out of memory");
	while (rc == SBX_OK) {
		ssize_t n = source_read(src, chunk, FILE_CHUNK);
		if (n < 0) {
			rc = sbx_fail(err, SBX_EIO, "reading the host file: %s", strerror((int)-n));
			break;
		}
		/* A failed send usually means the agent refused the file: its answer says why. */
		if (frame_write(c.fd, FRAME_FILE, n == 0 ? FRAME_F_EOF : 0, chunk, (uint32_t)n) < 0 ||
		    n == 0)
			break;
	}
	if (rc == SBX_OK)
		rc = agent_call_finish(&c, FILE_OP_TIMEOUT_MS, &ev, err);
	json_decref(ev);
	free(chunk);
	agent_call_close(&c);
	return rc == SBX_OK ? SBX_OK : sandbox_error(sb, rc, err);
}

int sbx_file_write_fd(sbx_sandbox *sb, const char *path, int fd, unsigned mode)
{
	struct source s = { .fd = fd };

	return fd < 0 ? SBX_EINVAL : file_write(sb, path, &s, mode);
}

int sbx_file_write(sbx_sandbox *sb, const char *path, const void *data, size_t len,
		   unsigned mode)
{
	struct source s = { .fd = -1, .buf = data, .len = len };

	return !data && len ? SBX_EINVAL : file_write(sb, path, &s, mode);
}

/* Where read bytes go: a host fd, or a growing buffer. */
struct sink {
	int fd;
	struct sbx_buf buf;
};

/* write() to the caller's fd without ever raising SIGPIPE in the caller: send(MSG_NOSIGNAL) on
 * a socket; on a pipe, SIGPIPE blocked on this thread and one this write raised discarded. */
static ssize_t write_nosigpipe(int fd, const void *data, size_t len)
{
	static const struct timespec zero;
	sigset_t pipe_set, old, pending;
	ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
	int err, was_pending;

	if (n >= 0 || errno != ENOTSOCK)
		return n;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, data, len);
	err = errno;
	if (n < 0 && err == EPIPE && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return n;
}

static int sink_write(struct sink *s, const uint8_t *data, size_t len)
{
	if (s->fd >= 0) {
		while (len) {
			ssize_t n = write_nosigpipe(s->fd, data, len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			data += n;
			len -= (size_t)n;
		}
		return 0;
	}
	return sbx_buf_append(&s->buf, data, len) == SBX_OK ? 0 : -ENOMEM;
}

static int file_read(sbx_sandbox *sb, const char *path, struct sink *dst)
{
	char err[SBX_ERRMSG_MAX];
	struct agent_call c;
	json_t *req, *ev = NULL;
	int rc, eof = 0;

	if (!sb || !path)
		return SBX_EINVAL;
	req = json_pack("{s:s, s:s}", "op", "read", "path", path);
	rc = req ? agent_call_open(sb->dir, req, &c, err)
		 : sbx_fail(err, SBX_EINVAL, "path is not UTF-8");
	json_decref(req);
	if (rc != SBX_OK)
		return sandbox_error(sb, rc, err);
	/* "started", then FILE frames up to one flagged EOF, then the final event. */
	rc = agent_call_finish(&c, FILE_OP_TIMEOUT_MS, &ev, err);
	while (rc == SBX_OK && !eof) {
		struct frame f;
		rc = agent_call_next(&c, FILE_OP_TIMEOUT_MS, &f, err);
		if (rc != SBX_OK)
			break;
		if (f.type != FRAME_FILE) {
			json_t *bad = frame_json(&f);
			rc = bad ? agent_error(bad, err)
				 : sbx_fail(err, SBX_EPROTO, "unexpected frame %u", f.type);
			json_decref(bad);
			break;
		}
		rc = sink_write(dst, f.payload, f.len);
		if (rc < 0)
			rc = sbx_fail(err, rc == -ENOMEM ? SBX_ENOMEM : SBX_EIO,
				      "writing what was read: %s", strerror(-rc));
		eof = f.flags & FRAME_F_EOF;
	}
	json_decref(ev);
	ev = NULL;
	if (rc == SBX_OK)
		rc = agent_call_finish(&c, FILE_OP_TIMEOUT_MS, &ev, err);
	json_decref(ev);
	agent_call_close(&c);
	return rc == SBX_OK ? SBX_OK : sandbox_error(sb, rc, err);
}

int sbx_file_read_fd(sbx_sandbox *sb, const char *path, int fd)
{
	struct sink s = { .fd = fd };

	return fd < 0 ? SBX_EINVAL : file_read(sb, path, &s);
}

int sbx_file_read(sbx_sandbox *sb, const char *path, void **data, size_t *len)
{
	struct sink s = { .fd = -1 };
	int rc;

	if (!data)
		return SBX_EINVAL;
	rc = file_read(sb, path, &s);
	if (rc == SBX_OK) /* an empty file still gets a NUL-terminated buffer */
		rc = sbx_buf_append(&s.buf, NULL, 0);
	if (rc != SBX_OK) {
		free(s.buf.data);
		return rc;
	}
	*data = s.buf.data;
	if (len)
		*len = s.buf.len;
	return SBX_OK;
}

/* One request whose answer is a single event. */
static int file_simple(sbx_sandbox *sb, json_t *req, json_t **ev)
{
	char err[SBX_ERRMSG_MAX];
	json_t *local = NULL;
	int rc;

	if (!req)
		return SBX_EINVAL; /* a NULL path made json_pack fail */
	rc = agent_request(sb->dir, req, FILE_OP_TIMEOUT_MS, ev ? ev : &local, err);
	json_decref(req);
	json_decref(local);
	return rc == SBX_OK ? SBX_OK : sandbox_error(sb, rc, err);
}

static int file_type_from_name(const char *t)
{
	return !t ? SBX_FILE_OTHER
	       : strcmp(t, "file") == 0    ? SBX_FILE_REGULAR
	       : strcmp(t, "dir") == 0     ? SBX_FILE_DIR
	       : strcmp(t, "symlink") == 0 ? SBX_FILE_SYMLINK
					   : SBX_FILE_OTHER;
}

int sbx_file_stat(sbx_sandbox *sb, const char *path, int *type, unsigned long long *size,
		  unsigned *mode, long long *mtime)
{
	json_t *ev = NULL;
	int rc;

	if (!sb)
		return SBX_EINVAL;
	rc = file_simple(sb, json_pack("{s:s, s:s}", "op", "stat", "path", path), &ev);
	if (rc != SBX_OK)
		return rc;
	if (type)
		*type = file_type_from_name(json_string_value(json_object_get(ev, "type")));
	if (size)
		*size = (unsigned long long)json_integer_value(json_object_get(ev, "size"));
	if (mode)
		*mode = (unsigned)json_integer_value(json_object_get(ev, "mode"));
	if (mtime)
		*mtime = (long long)json_integer_value(json_object_get(ev, "mtime"));
	json_decref(ev);
	return SBX_OK;
}

int sbx_file_remove(sbx_sandbox *sb, const char *path, int recursive)
{
	return sb ? file_simple(sb, json_pack("{s:s, s:s, s:b}", "op", "remove", "path", path,
					      "recursive", recursive != 0),
				NULL)
		  : SBX_EINVAL;
}

int sbx_file_mkdir(sbx_sandbox *sb, const char *path, unsigned mode, int parents)
{
	return sb ? file_simple(sb, json_pack("{s:s, s:s, s:i, s:b}", "op", "mkdir", "path", path,
					      "mode", (int)mode, "parents", parents != 0),
				NULL)
		  : SBX_EINVAL;
}

int sbx_file_rename(sbx_sandbox *sb, const char *from, const char *to)
{
	return sb ? file_simple(sb, json_pack("{s:s, s:s, s:s}", "op", "rename", "from", from, "to",
					      to),
				NULL)
		  : SBX_EINVAL;
}

struct sbx_dir {
	json_t *entries;
};

int sbx_file_list(sbx_sandbox *sb, const char *path, sbx_dir **dir)
{
	json_t *ev = NULL;
	sbx_dir *d;
	int rc;

	if (!sb || !dir)
		return SBX_EINVAL;
	rc = file_simple(sb, json_pack("{s:s, s:s}", "op", "list", "path", path), &ev);
	if (rc != SBX_OK)
		return rc;
	d = malloc(sizeof(*d));
	if (!d || !json_is_array(json_object_get(ev, "entries"))) {
		rc = d ? sandbox_error(sb, SBX_EPROTO, "bad directory listing")
		       : sandbox_error(sb, SBX_ENOMEM, "out of memory");
		free(d);
		json_decref(ev);
		return rc;
	}
	d->entries = json_incref(json_object_get(ev, "entries"));
	json_decref(ev);
	*dir = d;
	return SBX_OK;
}

size_t sbx_dir_count(const sbx_dir *d)
{
	return d ? json_array_size(d->entries) : 0;
}

const char *sbx_dir_name(const sbx_dir *d, size_t i)
{
	return d ? json_string_value(json_object_get(json_array_get(d->entries, i), "name")) : NULL;
}

int sbx_dir_type(const sbx_dir *d, size_t i)
{
	return d && i < json_array_size(d->entries)
		       ? file_type_from_name(json_string_value(
				 json_object_get(json_array_get(d->entries, i), "type")))
		       : 0;
}

unsigned long long sbx_dir_size(const sbx_dir *d, size_t i)
{
	return d ? (unsigned long long)json_integer_value(
			   json_object_get(json_array_get(d->entries, i), "size"))
		 : 0;
}

void sbx_dir_free(sbx_dir *d)
{
	if (!d)
		return;
	json_decref(d->entries);
	free(d);
}
