/* A writer of newc ("070701") cpio archives, the format the Linux kernel unpacks as an initramfs.
 * Entries are written straight to an fd as they are added; nothing is buffered in memory.
 * Every call returns 0 or -errno; after the first failure the writer stays failed and every later
 * call returns the same error, so a caller may check only cpio_finish(). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct cpio_writer {
	int fd;
	/* Unique per entry: the kernel hard-links entries with equal ino and nlink > 1. */
	uint32_t next_ino;
	int err; /* first error, sticky */
};

/* Starts an archive on fd (which the caller keeps owning). */
void cpio_writer_init(struct cpio_writer *w, int fd);
/* A directory entry. name is the path inside the archive, e.g. "dev" or "lib/modules";
 * parents must come first. mode holds permission bits only (e.g. 0755). */
int cpio_add_dir(struct cpio_writer *w, const char *name, unsigned mode);
/* A regular file with the given contents. -EFBIG beyond 4 GiB - 1 (the format's limit). */
int cpio_add_file(struct cpio_writer *w, const char *name, unsigned mode, const void *data,
		  size_t len);
/* A regular file copied from host_path, streamed. -EINVAL if host_path is not a regular file,
 * -EIO if it changes size while being copied. */
int cpio_add_file_from_path(struct cpio_writer *w, const char *name, unsigned mode,
			    const char *host_path);
/* A character device node, e.g. "dev/console", 0600, 5, 1. */
int cpio_add_chardev(struct cpio_writer *w, const char *name, unsigned mode, unsigned major,
		     unsigned minor);
/* Writes the TRAILER!!! entry that ends the archive. Returns the writer's first error, if any. */
int cpio_finish(struct cpio_writer *w);
