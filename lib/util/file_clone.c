#define _GNU_SOURCE
#include "file_clone.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define COPY_CHUNK (1u << 20)

/* [off, off+len) at the same offsets, by copy_file_range (which may share extents itself), or
 * by read and write where the kernel cannot (across filesystems, old kernels). */
static int copy_range(int src, int dst, off_t off, off_t len)
{
	off_t in = off, out = off;
	char *buf;
	int rc = 0;

	while (len > 0) {
		ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
			break;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the source shrank */
		len -= n;
	}
	if (len == 0)
		return 0;
	buf = malloc(COPY_CHUNK);
	if (!buf)
		return -ENOMEM;
	while (len > 0 && rc == 0) {
		size_t want = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
		ssize_t n = pread(src, buf, want, in), w = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		while (w < n) {
			ssize_t k = pwrite(dst, buf + w, (size_t)(n - w), out + w);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				rc = -errno;
				break;
			}
			w += k;
		}
		in += n;
		out += n;
		len -= n;
	}
	free(buf);
	return rc;
}

/* Data ranges only (SEEK_DATA/SEEK_HOLE), so a sparse image stays sparse. */
static int copy_sparse(int src, int dst)
{
	off_t size = lseek(src, 0, SEEK_END), off = 0;
	int rc;

	if (size < 0)
		return -errno;
	while (off < size) {
		off_t data = lseek(src, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0) {
			/* No hole support: everything is data. */
			data = off;
			hole = size;
		} else {
			hole = lseek(src, data, SEEK_HOLE);
			if (hole < 0)
				hole = size;
		}
		rc = copy_range(src, dst, data, hole - data);
		if (rc < 0)
			return rc;
		off = hole;
	}
	return ftruncate(dst, size) < 0 ? -errno : 0;
}

int file_clone_fd(int src_fd, int dst_fd, int *how, int *why)
{
	if (ioctl(dst_fd, FICLONE, src_fd) == 0) {
		*how = FILE_CLONE_REFLINK;
		*why = 0;
		return 0;
	}
	*why = errno;
	*how = FILE_CLONE_COPY;
	/* A failed FICLONE may have left nothing or a partial file: start from empty. */
	if (ftruncate(dst_fd, 0) < 0)
		return -errno;
	return copy_sparse(src_fd, dst_fd);
}

int file_clone(int src_fd, const char *dst, int *how, int *why)
{
	int fd = open(dst, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), rc;

	if (fd < 0)
		return -errno;
	rc = file_clone_fd(src_fd, fd, how, why);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		unlink(dst);
	return rc;
}

const char *file_clone_describe(int how, int why, char *buf, unsigned long len)
{
	if (how == FILE_CLONE_REFLINK)
		snprintf(buf, len, "reflink");
	else
		snprintf(buf, len, "copy (no reflink: %s)", strerror(why));
	return buf;
}
