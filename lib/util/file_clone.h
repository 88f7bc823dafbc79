/* Duplicating a disk or memory image: a reflink (FICLONE, extents shared until written) where
 * the filesystem has them (XFS with reflink=1, btrfs), else a copy that keeps the holes. */
#pragma once

enum file_clone_how {
	FILE_CLONE_REFLINK = 1,
	FILE_CLONE_COPY = 2,
};

/* Gives the empty, writable dst_fd the contents of src_fd. *how says which way; *why gets the
 * errno FICLONE failed with before the copy (0 for a reflink). 0 or -errno. */
int file_clone_fd(int src_fd, int dst_fd, int *how, int *why);
/* Creates dst (O_EXCL, mode 0600) as a clone of src_fd; on failure dst is removed. */
int file_clone(int src_fd, const char *dst, int *how, int *why);
/* "reflink", or "copy (no reflink: <strerror(why)>)" into buf; returns buf. */
const char *file_clone_describe(int how, int why, char *buf, unsigned long len);
