#define _GNU_SOURCE
#include "state_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* *shared is set for the /tmp fallback: a name any local user could have taken first. */
static int state_dir_default(char *buf, size_t len, int *shared)
{
	const char *env = getenv("SANDBOX_STATE_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		return snprintf(buf, len, "%s", env);
	if (geteuid() == 0)
		return snprintf(buf, len, "/run/libsandbox");
	if (xdg && *xdg)
		return snprintf(buf, len, "%s/libsandbox", xdg);
	*shared = 1;
	return snprintf(buf, len, "/tmp/libsandbox-%u", (unsigned)geteuid());
}

/* Whether a base in /tmp is the one we made: a real directory of ours, closed to others. In
 * anyone else's, they could swap our sandbox directory (and its agent socket) for theirs. */
static int state_dir_private(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 077) == 0;
}

static int state_dir_resolve(const char *base, char *buf, size_t len, int *shared)
{
	int n;

	*shared = 0;
	n = base ? snprintf(buf, len, "%s", base) : state_dir_default(buf, len, shared);
	return n > 0 && (size_t)n < len ? SBX_OK : SBX_EINVAL;
}

int state_dir_base(const char *base, char *buf, size_t len)
{
	int shared, rc = state_dir_resolve(base, buf, len, &shared);

	if (rc == SBX_OK && shared && access(buf, F_OK) == 0 && !state_dir_private(buf))
		return SBX_EPERM;
	return rc;
}

/* mkdir -p, each component 0700 when created by us. */
static int mkdir_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

int state_dir_make(const char *base, const char *id, char **dir, char *err)
{
	char buf[4096];
	int n, rc, shared;

	if (state_dir_resolve(base, buf, sizeof(buf), &shared) != SBX_OK)
		return sbx_fail(err, SBX_EINVAL, "state directory path too long");
	n = (int)strlen(buf);
	if ((size_t)n + strlen(id) + 64 >= sizeof(buf))
		return sbx_fail(err, SBX_EINVAL, "state directory path too long");
	rc = mkdir_parents(buf);
	if (rc < 0)
		return sbx_fail(err, SBX_EIO, "state directory %s: %s", buf, strerror(-rc));
	if (shared && !state_dir_private(buf))
		return sbx_fail(err, SBX_EPERM,
				"state directory %s is not a mode-0700 directory of ours; set "
				"SANDBOX_STATE_DIR or XDG_RUNTIME_DIR",
				buf);
	snprintf(buf + n, sizeof(buf) - (size_t)n, "/%s", id);
	if (mkdir(buf, 0700) < 0)
		return sbx_fail(err, SBX_EIO, "sandbox directory %s: %s", buf, strerror(errno));
	*dir = strdup(buf);
	if (!*dir) {
		rmdir(buf);
		return sbx_fail(err, SBX_ENOMEM, "out of memory");
	}
	return SBX_OK;
}

int state_dir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			/* A fork's snapshot a killed caller left (lib/api/fork.c): files only. */
			if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno == EISDIR) {
				char sub[4400];
				snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
				state_dir_remove(sub);
			}
		}
		closedir(d);
	}
	return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

static int state_dir_lock_open(const char *dir, int flags)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/lock", dir);
	/* Read-only: flock needs no more, and the VMM it is passed to gets no file to grow. */
	return open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags, 0600);
}

/* Whether the file fd locks is still <dir>/lock: a collector that took the lock between our open
 * and our flock has unlinked it (and removed the directory, or is about to). */
static int state_dir_lock_current(const char *dir, int fd)
{
	char path[4200];
	struct stat a, b;

	snprintf(path, sizeof(path), "%s/lock", dir);
	return fstat(fd, &a) == 0 && a.st_nlink > 0 && stat(path, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int state_dir_hold(const char *dir, int create, char *err)
{
	int fd = state_dir_lock_open(dir, create ? O_CREAT : 0);

	if (fd < 0 || flock(fd, LOCK_SH) < 0) {
		int rc = sbx_fail(err, SBX_EIO, "%s/lock: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (!state_dir_lock_current(dir, fd)) {
		close(fd);
		return sbx_fail(err, SBX_ESTATE, "%s was removed as ended meanwhile", dir);
	}
	return fd;
}

int state_dir_try_lock(const char *dir)
{
	int fd = state_dir_lock_open(dir, 0), e;

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno == EWOULDBLOCK ? EAGAIN : errno;
		close(fd);
		return -e;
	}
	return fd;
}
