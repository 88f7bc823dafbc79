/* write and read: file contents streamed in FILE frames of at most 1 MiB, so neither end holds
 * a whole file in memory.
 *
 * write goes to a temporary file beside the target (".sbx-write-XXXXXX" in the same directory,
 * so the final rename cannot cross filesystems) and is renamed over the target at EOF; any error
 * unlinks it, so a failed write leaves nothing behind. No fsync: the guest's disks live and die
 * with the sandbox, and the rename already gives readers all or nothing. Renaming replaces a
 * symlink at the target rather than writing through it. */
#define _GNU_SOURCE
#include "files.h"
#include "agent.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens the temporary file for path; fills *tmp (to free). -errno on failure. */
static int write_open_temp(const char *path, mode_t mode, int mkdirs, char **tmp)
{
	char *copy = strdup(path), *dir;
	struct stat st;
	int fd, rc;

	*tmp = NULL;
	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	if (mkdirs && (rc = fs_mkdirs(dir, 0755)) < 0)
		goto fail;
	/* Fail before the upload rather than at the rename. */
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto fail;
	}
	if (asprintf(tmp, "%s/.sbx-write-XXXXXX", dir) < 0) {
		*tmp = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (fchmod(fd, mode) < 0) {
		rc = -errno;
		close(fd);
		unlink(*tmp);
		goto fail;
	}
	free(copy);
	return fd;
fail:
	free(*tmp);
	*tmp = NULL;
	free(copy);
	return rc;
}

void op_write(struct conn *c)
{
	long long mode, bytes = 0;
	const char *path;
	char *tmp = NULL;
	struct frame f;
	int mkdirs, fd, rc, err = 0;

	if (arg_string(c, "path", 1, &path) < 0 || arg_int(c, "mode", 0644, 0, 07777, &mode) < 0 ||
	    arg_bool(c, "mkdirs", 0, &mkdirs) < 0)
		return;
	fd = write_open_temp(path, (mode_t)mode, mkdirs, &tmp);
	if (fd < 0)
		err = fd;
	/* After an error the upload is still read to its end, so the client, which sends it all
	 * before reading, gets the error event rather than a reset connection. */
	for (;;) {
		rc = frame_read(c->rd, AGENT_IDLE_TIMEOUT_MS, &f);
		if (rc == -ETIMEDOUT) {
			reply_error(c, ETIMEDOUT, "write: no data from the client for %d s",
				    AGENT_IDLE_TIMEOUT_MS / 1000);
			goto fail;
		}
		if (rc <= 0 || f.type != FRAME_FILE)
			goto fail; /* gone or a protocol error: no answer */
		if (!err)
			err = write_all(fd, f.payload, f.len);
		bytes += f.len;
		if (f.flags & FRAME_F_EOF)
			break;
	}
	if (fd >= 0) {
		if (close(fd) < 0 && !err)
			err = -errno;
		fd = -1;
	}
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		reply_errno(c, err, "write", path);
		goto fail;
	}
	reply_result(c, json_pack("{s:I}", "bytes", (json_int_t)bytes));
	free(tmp);
	return;
fail:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
}

/* Fills buf to want bytes, or fewer at end of file. Bytes read or -errno. */
static ssize_t read_fill(int fd, uint8_t *buf, size_t have, size_t want)
{
	while (have < want) {
		ssize_t n = read(fd, buf + have, want - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		have += (size_t)n;
	}
	return (ssize_t)have;
}

/* Frames of FRAME_MAX_PAYLOAD; one byte more is read ahead so the last frame, and only the
 * last, carries EOF (an empty file is one empty EOF frame). */
static void read_stream(struct conn *c, int fd, const char *path)
{
	uint8_t *buf = malloc(FRAME_MAX_PAYLOAD + 1);
	long long bytes = 0;
	ssize_t have = 0;

	if (!buf) {
		reply_errno(c, ENOMEM, "read", path);
		return;
	}
	for (;;) {
		have = read_fill(fd, buf, (size_t)have, FRAME_MAX_PAYLOAD + 1);
		if (have < 0) {
			reply_errno(c, (int)have, "read", path);
			break;
		}
		if (have <= (ssize_t)FRAME_MAX_PAYLOAD) {
			if (frame_write(c->fd, FRAME_FILE, FRAME_F_EOF, buf, (uint32_t)have) == 0)
				reply_result(
				    c, json_pack("{s:I}", "bytes", (json_int_t)(bytes + have)));
			break;
		}
		if (frame_write(c->fd, FRAME_FILE, 0, buf, FRAME_MAX_PAYLOAD) < 0)
			break;
		bytes += FRAME_MAX_PAYLOAD;
		buf[0] = buf[FRAME_MAX_PAYLOAD];
		have = 1;
	}
	free(buf);
}

void op_read(struct conn *c)
{
	const char *path;
	struct stat st;
	int fd, err;

	if (arg_string(c, "path", 1, &path) < 0)
		return;
	/* Non-blocking: a FIFO without a writer would block the open, and one whose writer stays
	 * silent each read, with nothing to notice the client leaving. Regular files ignore it;
	 * a FIFO or device with nothing to give ends the read with EAGAIN. */
	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		reply_errno(c, errno, "open", path);
		return;
	}
	err = fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
	if (err) {
		reply_errno(c, err, "read", path);
		close(fd);
		return;
	}
	if (reply_json(c, json_pack("{s:s, s:I}", "event", "started", "size",
				    (json_int_t)st.st_size)) == 0)
		read_stream(c, fd, path);
	close(fd);
}
