/* list, stat, remove, mkdir, rename. Symlinks are reported, never followed (stat and list use
 * lstat; a recursive remove deletes a link, not what it points to, and walks directories with
 * openat(O_NOFOLLOW) so a path swapped for a link mid-walk cannot lead it elsewhere). "mode" in
 * answers is the permission bits (st_mode & 07777), as "mode" in requests; "type" says the rest. */
#define _GNU_SOURCE
#include "agent.h"
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper trees than this are refused rather than holding one descriptor per level. */
#define REMOVE_MAX_DEPTH 256
/* Room left in a JSON frame for the rest of the list result. */
#define LIST_RESERVE 256

const char *fs_type_name(mode_t mode)
{
	if (S_ISREG(mode))
		return "file";
	if (S_ISDIR(mode))
		return "dir";
	if (S_ISLNK(mode))
		return "symlink";
	return "other";
}

static json_t *stat_json(const struct stat *st)
{
	return json_pack("{s:s, s:I, s:i, s:I}", "type", fs_type_name(st->st_mode), "size",
			 (json_int_t)st->st_size, "mode", (int)(st->st_mode & 07777), "mtime",
			 (json_int_t)st->st_mtim.tv_sec);
}

static int mkdir_one(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	/* Something is there: fine if it is (or links to) a directory. */
	if (stat(path, &st) < 0)
		return -EEXIST;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int fs_mkdirs(const char *path, mode_t mode)
{
	char *copy = strdup(path), *p;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (p = copy + 1; *p && !rc; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = 0;
		rc = mkdir_one(copy, 0755);
		*p = '/';
	}
	if (!rc)
		rc = mkdir_one(copy, mode);
	free(copy);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in d, sorted, NULL-terminated; NULL on ENOMEM (errno set). */
static char **list_names(DIR *d, size_t *count)
{
	size_t n = 0, cap = 64;
	char **names = malloc(cap * sizeof(*names)), **grown;
	struct dirent *e;

	if (!names)
		return NULL;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n + 1 >= cap) {
			grown = realloc(names, (cap *= 2) * sizeof(*names));
			if (!grown)
				goto nomem;
			names = grown;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto nomem;
		n++;
	}
	names[n] = NULL;
	qsort(names, n, sizeof(*names), name_cmp);
	*count = n;
	return names;
nomem:
	while (n)
		free(names[--n]);
	free(names);
	errno = ENOMEM;
	return NULL;
}

/* One JSON frame holds the answer, so a directory too big for it gets the entries that fit
 * (in name order) with "truncated": true and "total". */
void op_list(struct conn *c)
{
	json_t *entries = json_array(), *e;
	size_t n = 0, used = LIST_RESERVE, i;
	const char *path;
	char **names = NULL;
	struct stat st;
	DIR *d = NULL;
	int truncated = 0;

	if (arg_string(c, "path", 1, &path) < 0)
		goto out;
	d = opendir(path);
	if (!d || !(names = list_names(d, &n)) || !entries) {
		reply_errno(c, entries ? errno : ENOMEM, "list", path);
		goto out;
	}
	for (i = 0; i < n; i++) {
		char *text;
		size_t len;

		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* removed meanwhile */
		e = stat_json(&st);
		if (!e || json_object_set_new(e, "name", json_string_lossy(names[i])) < 0)
			goto nomem;
		text = json_dumps(e, JSON_COMPACT);
		len = text ? strlen(text) + 1 : 0;
		free(text);
		if (!len) {
			json_decref(e);
			goto nomem;
		}
		if (used + len > FRAME_MAX_JSON) {
			json_decref(e);
			truncated = 1;
			break;
		}
		used += len;
		if (json_array_append_new(entries, e) < 0)
			goto nomem;
	}
	e = json_pack("{s:O}", "entries", entries);
	if (e && truncated) {
		json_object_set_new(e, "truncated", json_true());
		json_object_set_new(e, "total", json_integer((json_int_t)n));
	}
	reply_result(c, e);
	goto out;
nomem:
	reply_errno(c, ENOMEM, "list", path);
out:
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	json_decref(entries);
}

void op_stat(struct conn *c)
{
	const char *path;
	struct stat st;

	if (arg_string(c, "path", 1, &path) < 0)
		return;
	if (lstat(path, &st) < 0)
		reply_errno(c, errno, "stat", path);
	else
		reply_result(c, stat_json(&st));
}

struct remove_walk {
	char path[PATH_MAX]; /* of the entry being removed, for the message */
	size_t len;
};

/* Empties the directory name (relative to parent) and removes it. 0 or -errno; w->path then
 * names the entry that failed. */
static int remove_tree(struct remove_walk *w, int parent, const char *name, int depth)
{
	size_t len = w->len, nlen = strlen(name);
	struct dirent *e;
	int fd, rc = 0;
	DIR *d;

	if (len + nlen + 2 < sizeof(w->path)) {
		w->path[len] = '/';
		memcpy(w->path + len + 1, name, nlen + 1);
		w->len = len + 1 + nlen;
	}
	if (depth > REMOVE_MAX_DEPTH)
		return -ELOOP;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (!rc && (e = readdir(d))) {
		struct stat st;
		int is_dir = e->d_type == DT_DIR;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_type == DT_UNKNOWN)
			is_dir = fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				 S_ISDIR(st.st_mode);
		if (is_dir) {
			rc = remove_tree(w, fd, e->d_name, depth + 1);
		} else if (unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT) {
			rc = -errno;
			snprintf(w->path + w->len, sizeof(w->path) - w->len, "/%s", e->d_name);
		}
	}
	closedir(d);
	if (!rc && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -errno;
	if (!rc)
		w->len = len;
	w->path[w->len] = 0;
	return rc;
}

void op_remove(struct conn *c)
{
	struct remove_walk *w;
	const char *path;
	struct stat st;
	int recursive, rc;

	if (arg_string(c, "path", 1, &path) < 0 || arg_bool(c, "recursive", 0, &recursive) < 0)
		return;
	if (lstat(path, &st) < 0) {
		reply_errno(c, errno, "remove", path);
		return;
	}
	if (!S_ISDIR(st.st_mode))
		rc = unlink(path) < 0 ? -errno : 0;
	else if (!recursive)
		rc = rmdir(path) < 0 ? -errno : 0;
	else if (!(w = calloc(1, sizeof(*w))))
		rc = -ENOMEM;
	else {
		/* The walk starts from the path as given; w->path collects below it. */
		rc = remove_tree(w, AT_FDCWD, path, 0);
		if (rc < 0)
			reply_errno(c, rc, "remove", w->path[0] == '/' ? w->path + 1 : w->path);
		else
			reply_result(c, NULL);
		free(w);
		return;
	}
	if (rc < 0)
		reply_errno(c, rc, "remove", path);
	else
		reply_result(c, NULL);
}

void op_mkdir(struct conn *c)
{
	const char *path;
	long long mode;
	int parents, rc;

	if (arg_string(c, "path", 1, &path) < 0 || arg_int(c, "mode", 0755, 0, 07777, &mode) < 0 ||
	    arg_bool(c, "parents", 0, &parents) < 0)
		return;
	if (parents)
		rc = fs_mkdirs(path, (mode_t)mode);
	else
		rc = mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
	if (rc < 0)
		reply_errno(c, rc, "mkdir", path);
	else
		reply_result(c, NULL);
}

void op_rename(struct conn *c)
{
	char cut1[AGENT_MSG_PATH_MAX + 8], cut2[AGENT_MSG_PATH_MAX + 8], ebuf[128];
	const char *from, *to;
	int err;

	if (arg_string(c, "from", 1, &from) < 0 || arg_string(c, "to", 1, &to) < 0)
		return;
	if (rename(from, to) == 0) {
		reply_result(c, NULL);
		return;
	}
	err = errno;
	reply_error(c, err, "rename %s to %s: %s", msg_path(from, cut1, sizeof(cut1)),
		    msg_path(to, cut2, sizeof(cut2)), strerror_r(err, ebuf, sizeof(ebuf)));
}
