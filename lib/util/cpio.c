#define _GNU_SOURCE
#include "cpio.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define CPIO_HEADER_LEN 110 /* "070701" and 13 fields of 8 hex digits */
#define CPIO_MAX_SIZE 0xffffffffu

struct cpio_entry {
	const char *name;
	uint32_t mode; /* file type and permission bits */
	uint32_t nlink;
	uint32_t size;
	uint32_t rdev_major, rdev_minor;
};

/* Records the first error so the writer stays failed: a later entry after a lost one would
 * produce an archive that parses but silently misses a file. */
static int cpio_fail(struct cpio_writer *w, int err)
{
	if (err < 0 && w->err == 0)
		w->err = err;
	return err;
}

/* Zero bytes that bring an offset up to the next multiple of 4. */
static int cpio_pad(struct cpio_writer *w, uint64_t len)
{
	static const char zeros[4];
	size_t pad = (4 - (len & 3)) & 3;

	return pad ? write_all(w->fd, zeros, pad) : 0;
}

static int cpio_check_args(struct cpio_writer *w, const char *name, unsigned mode)
{
	if (w->err)
		return w->err;
	if (!name || !*name || (mode & ~07777u))
		return cpio_fail(w, -EINVAL);
	return 0;
}

/* Header and padded name. Entries start 4-aligned: the previous data was padded, and the archive
 * starts at the fd's current offset, which the caller chose (normally 0). */
static int cpio_write_header(struct cpio_writer *w, const struct cpio_entry *e)
{
	char hdr[CPIO_HEADER_LEN + 1];
	size_t namesize = strlen(e->name) + 1;
	int err;

	if (namesize > CPIO_MAX_SIZE)
		return -ENAMETOOLONG;
	/* Owner root, mtime 0: the archive depends only on its inputs (reproducible). */
	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 w->next_ino++, e->mode, 0u, 0u, e->nlink, 0u, e->size, 0u, 0u, e->rdev_major,
		 e->rdev_minor, (unsigned)namesize, 0u);
	err = write_all(w->fd, hdr, CPIO_HEADER_LEN);
	if (!err)
		err = write_all(w->fd, e->name, namesize);
	if (!err)
		err = cpio_pad(w, CPIO_HEADER_LEN + namesize);
	return err;
}

void cpio_writer_init(struct cpio_writer *w, int fd)
{
	w->fd = fd;
	w->next_ino = 1; /* 0 is unusual and some readers treat it as "no inode" */
	w->err = 0;
}

int cpio_add_dir(struct cpio_writer *w, const char *name, unsigned mode)
{
	struct cpio_entry e = {.name = name, .mode = S_IFDIR | mode, .nlink = 2};
	int err = cpio_check_args(w, name, mode);

	if (err)
		return err;
	return cpio_fail(w, cpio_write_header(w, &e));
}

int cpio_add_file(struct cpio_writer *w, const char *name, unsigned mode, const void *data,
		  size_t len)
{
	struct cpio_entry e = {.name = name, .mode = S_IFREG | mode, .nlink = 1};
	int err = cpio_check_args(w, name, mode);

	if (err)
		return err;
	if (len > CPIO_MAX_SIZE)
		return cpio_fail(w, -EFBIG);
	e.size = (uint32_t)len;
	err = cpio_write_header(w, &e);
	if (!err)
		err = write_all(w->fd, data, len);
	if (!err)
		err = cpio_pad(w, len);
	return cpio_fail(w, err);
}

/* Copies exactly len bytes; the header already promised that many. */
static int cpio_copy_fd(int out, int in, uint64_t len)
{
	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = sendfile(out, in, NULL, chunk);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file shrank under us */
		len -= (uint64_t)n;
	}
	return 0;
}

int cpio_add_file_from_path(struct cpio_writer *w, const char *name, unsigned mode,
			    const char *host_path)
{
	struct cpio_entry e = {.name = name, .mode = S_IFREG | mode, .nlink = 1};
	struct stat st;
	int fd, err = cpio_check_args(w, name, mode);

	if (err)
		return err;
	fd = open(host_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cpio_fail(w, -errno);
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > CPIO_MAX_SIZE) {
		err = -EFBIG;
		goto out;
	}
	e.size = (uint32_t)st.st_size;
	err = cpio_write_header(w, &e);
	if (!err)
		err = cpio_copy_fd(w->fd, fd, e.size);
	if (!err)
		err = cpio_pad(w, e.size);
out:
	close(fd);
	return cpio_fail(w, err);
}

int cpio_add_chardev(struct cpio_writer *w, const char *name, unsigned mode, unsigned major,
		     unsigned minor)
{
	struct cpio_entry e = {.name = name,
			       .mode = S_IFCHR | mode,
			       .nlink = 1,
			       .rdev_major = major,
			       .rdev_minor = minor};
	int err = cpio_check_args(w, name, mode);

	if (err)
		return err;
	return cpio_fail(w, cpio_write_header(w, &e));
}

int cpio_finish(struct cpio_writer *w)
{
	struct cpio_entry e = {.name = "TRAILER!!!", .nlink = 1};

	if (w->err)
		return w->err;
	return cpio_fail(w, cpio_write_header(w, &e));
}
