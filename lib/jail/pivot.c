#define _GNU_SOURCE
#include "pivot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define JAIL_ROOT_OPTS "mode=0755,size=64k,nr_inodes=64"

/* mkdir -p of rel under dirfd, every component 0755 and owned by root: only a path. */
static int jail_mkdirs(int dirfd, char *rel)
{
	for (char *p = rel;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char c = *p;
		*p = 0;
		int rc = mkdirat(dirfd, rel, 0755);
		*p = c;
		if (rc < 0 && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
	}
}

static int jail_fail(struct jail_report *r, const char *step, int err)
{
	jail_report_set(r, SBX_PROT_PIVOT_ROOT, 0, "%s: %s", step, strerror(err));
	return -err;
}

int jail_pivot(const char *state_dir, struct jail_report *r)
{
	char rel[4096], target[8200];
	int tree, rootfd, rc;

	if (jail_path_relative(state_dir, rel, sizeof(rel)) < 0)
		return jail_fail(r, "state directory is not a plain absolute path", EINVAL);
	snprintf(target, sizeof(target), "%s/%s", state_dir, rel);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return jail_fail(r, "making mounts private", errno);
	/* A detached copy of the directory, taken before the new root hides it. */
	tree =
	    (int)syscall(SYS_open_tree, AT_FDCWD, state_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return jail_fail(r, "open_tree of the state directory", errno);
	/* The new root goes on the state directory's own path: it exists, and over it the mount
	 * is seen only in this namespace. */
	if (mount("sandbox-root", state_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  JAIL_ROOT_OPTS) < 0) {
		rc = jail_fail(r, "mounting the root tmpfs", errno);
		close(tree);
		return rc;
	}
	rootfd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	rc = rootfd < 0 ? -errno : jail_mkdirs(rootfd, rel);
	if (rootfd >= 0)
		close(rootfd);
	if (rc < 0) {
		close(tree);
		return jail_fail(r, "making the state directory's path", -rc);
	}
	rc = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
	close(tree);
	if (rc < 0)
		return jail_fail(r, "binding the state directory", errno);
	/* Nothing is written by path once jailed: both mounts read-only. */
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
		  MS_NOEXEC, NULL) < 0)
		return jail_fail(r, "making the state directory read-only", errno);
	if (mount(NULL, state_dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  JAIL_ROOT_OPTS) < 0)
		return jail_fail(r, "making the root read-only", errno);
	if (chdir(state_dir) < 0)
		return jail_fail(r, "chdir to the new root", errno);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return jail_fail(r, "pivot_root", errno);
	/* The old root sits on top of the new one: detach it, then stand in the new root. */
	if (umount2(".", MNT_DETACH) < 0)
		return jail_fail(r, "detaching the old root", errno);
	if (chdir("/") < 0)
		return jail_fail(r, "chdir /", errno);
	jail_report_set(r, SBX_PROT_PIVOT_ROOT, 1, "read-only tmpfs holding only %s (read-only)",
			state_dir);
	return 0;
}
