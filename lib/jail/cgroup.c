#define _GNU_SOURCE
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define CGROUP_PATH_MAX 4096

int cgroup_parse_event(const char *text, const char *key, uint64_t *value)
{
	size_t klen = strlen(key);

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
		char *end;
		if (strncmp(line, key, klen) != 0 || line[klen] != ' ')
			continue;
		errno = 0;
		*value = strtoull(line + klen + 1, &end, 10);
		if (errno || end == line + klen + 1 || (*end && *end != '\n'))
			return -EINVAL;
		return 0;
	}
	return -ENOENT;
}

int cgroup_parse_value(const char *text, uint64_t *value)
{
	char *end;

	if (strcmp(text, "max\n") == 0 || strcmp(text, "max") == 0)
		return -ENOENT;
	errno = 0;
	*value = strtoull(text, &end, 10);
	if (errno || end == text || (*end && strcmp(end, "\n") != 0))
		return -EINVAL;
	return 0;
}

int cgroup_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		p += strspn(p, " \n");
		if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '\n' || p[n] == 0))
			return 1;
		p += strcspn(p, " \n");
	}
	return 0;
}

void cgroup_cpu_max(unsigned pct, char *buf, size_t len)
{
	if (pct == 0)
		snprintf(buf, len, "max %u", CGROUP_CPU_PERIOD_US);
	else
		snprintf(buf, len, "%llu %u", (unsigned long long)pct * CGROUP_CPU_PERIOD_US / 100,
			 CGROUP_CPU_PERIOD_US);
}

static int cgroup_read_file(int dirfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static int cgroup_write_file(int dirfd, const char *name, const char *value)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? (int)n : (size_t)n == len ? 0 : -EIO;
}

int cgroup_read_event(int fd, const char *key, uint64_t *value)
{
	char buf[1024];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = 0;
	return cgroup_parse_event(buf, key, value);
}

int cgroup_read_value(int fd, uint64_t *value)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = 0;
	return cgroup_parse_value(buf, value);
}

static int cgroup_fail(struct jail_report *r, int err, const char *fmt, const char *path,
		       const char *extra)
{
	char what[300];

	snprintf(what, sizeof(what), fmt, path, extra);
	jail_report_set(r, SBX_PROT_CGROUP, 0, "%s: %s%s", what, strerror(err),
			(err == EACCES || err == EPERM) && geteuid() != 0
			    ? " (not root: delegate a cgroup v2 subtree and set it as the parent)"
			    : "");
	return -err;
}

/* The first `len` bytes of path as a path of their own ("/" for none). */
static const char *cgroup_prefix(const char *path, size_t len, char *buf)
{
	if (len == 0)
		return "/";
	memcpy(buf, path, len);
	buf[len] = 0;
	return buf;
}

/* Creates the parent's missing components; the nearest existing ancestor must be on cgroup2.
 * *root_len gets the length of the prefix of parent that is the cgroup2 mount's root. */
static int cgroup_make_parent(const char *parent, size_t *root_len, struct jail_report *r)
{
	char buf[CGROUP_PATH_MAX];
	size_t len = strlen(parent), have = len, root;
	struct statfs sf;
	struct stat st, up;

	while (stat(cgroup_prefix(parent, have, buf), &st) < 0) {
		if (errno != ENOENT || have == 0)
			return cgroup_fail(r, errno, "%s%s", buf, "");
		while (have > 0 && parent[--have] != '/')
			;
	}
	if (statfs(buf, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		jail_report_set(r, SBX_PROT_CGROUP, 0,
				"%s is not on a cgroup v2 mount (a v1 or hybrid hierarchy?)", buf);
		return -ENOTSUP;
	}
	/* The mount's root: the highest ancestor on the same device. */
	for (root = have; root > 0;) {
		size_t up_len = root;
		while (up_len > 0 && parent[--up_len] != '/')
			;
		if (stat(cgroup_prefix(parent, up_len, buf), &up) < 0 || up.st_dev != st.st_dev)
			break;
		root = up_len;
	}
	*root_len = root;
	for (size_t at = have + 1; at <= len; at++) {
		if (at < len && parent[at] != '/')
			continue;
		if (mkdir(cgroup_prefix(parent, at, buf), 0755) < 0 && errno != EEXIST)
			return cgroup_fail(r, errno, "creating %s%s", buf, "");
	}
	return 0;
}

/* Enables one directory's missing controllers in its cgroup.subtree_control. */
static int cgroup_enable_dir(const char *dir, const char *const *want, size_t nwant,
			     struct jail_report *r)
{
	char avail[512], enabled[512], line[128] = "";
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), rc = dfd < 0 ? -errno : 0;

	if (rc == 0)
		rc = cgroup_read_file(dfd, "cgroup.controllers", avail, sizeof(avail));
	if (rc == 0)
		rc = cgroup_read_file(dfd, "cgroup.subtree_control", enabled, sizeof(enabled));
	for (size_t i = 0; rc == 0 && i < nwant; i++) {
		if (cgroup_list_has(enabled, want[i]))
			continue;
		if (!cgroup_list_has(avail, want[i])) {
			jail_report_set(r, SBX_PROT_CGROUP, 0,
					"controller %s is not available in %s", want[i], dir);
			rc = -ENOTSUP;
			break;
		}
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "+%s ", want[i]);
	}
	if (rc == 0 && line[0])
		rc = cgroup_write_file(dfd, "cgroup.subtree_control", line);
	if (rc == -EBUSY)
		cgroup_fail(r, EBUSY, "enabling controllers in %s%s", dir,
			    " (it holds processes: choose a parent that holds none)");
	else if (rc < 0 && rc != -ENOTSUP)
		cgroup_fail(r, -rc, "enabling controllers in %s%s", dir, "");
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* Controllers are enabled from the mount's root down to the parent: that is what makes their
 * files appear in the sandbox's cgroup. */
static int cgroup_enable(const char *parent, size_t root_len, const char *const *want,
			 size_t nwant, struct jail_report *r)
{
	char buf[CGROUP_PATH_MAX];
	size_t len = strlen(parent);

	for (size_t at = root_len; at <= len; at++) {
		if (at < len && parent[at] != '/')
			continue;
		int rc = cgroup_enable_dir(cgroup_prefix(parent, at, buf), want, nwant, r);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int cgroup_write_limits(int dfd, const struct cgroup_limits *l, struct jail_cgroup *cg)
{
	char value[64];
	int rc = 0;

	if (l->memory_max) {
		snprintf(value, sizeof(value), "%" PRIu64, l->memory_max);
		rc = cgroup_write_file(dfd, "memory.max", value);
		/* Without swap accounting there is no such file, and nothing to limit. */
		if (rc == 0 && cgroup_write_file(dfd, "memory.swap.max", "0") == -EACCES)
			rc = -EACCES;
	}
	if (rc == 0 && l->pids_max) {
		snprintf(value, sizeof(value), "%u", l->pids_max);
		rc = cgroup_write_file(dfd, "pids.max", value);
	}
	if (rc == 0 && l->cpu_quota_pct) {
		cgroup_cpu_max(l->cpu_quota_pct, value, sizeof(value));
		rc = cgroup_write_file(dfd, "cpu.max", value);
	}
	snprintf(cg->summary, sizeof(cg->summary), "memory.max %llu MiB, pids.max %u, cpu.max %s",
		 (unsigned long long)(l->memory_max >> 20), l->pids_max,
		 l->cpu_quota_pct ? value : "max");
	if (!l->memory_max)
		snprintf(cg->summary, sizeof(cg->summary), "no limits");
	return rc;
}

static int cgroup_open_files(int dfd, const struct cgroup_limits *l, struct jail_cgroup *cg)
{
	cg->procs_fd = openat(dfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (cg->procs_fd < 0)
		return -errno;
	if (l->memory_max) {
		cg->memory_events_fd = openat(dfd, "memory.events", O_RDONLY | O_CLOEXEC);
		if (cg->memory_events_fd < 0)
			return -errno;
		cg->memory_max_fd = openat(dfd, "memory.max", O_RDONLY | O_CLOEXEC);
		if (cg->memory_max_fd < 0)
			return -errno;
	}
	return 0;
}

int cgroup_create(const char *path, const struct cgroup_limits *l, struct jail_cgroup *cg,
		  struct jail_report *r)
{
	const char *want[3];
	char parent[CGROUP_PATH_MAX], rel[CGROUP_PATH_MAX];
	size_t nwant = 0, root_len = 0;
	char *slash;
	int rc, dfd;

	cg->procs_fd = cg->memory_events_fd = cg->memory_max_fd = -1;
	if (jail_path_relative(path, rel, sizeof(rel)) < 0 || strlen(path) >= sizeof(parent) ||
	    !strchr(rel, '/')) {
		jail_report_set(r, SBX_PROT_CGROUP, 0, "%s: not a plain absolute path", path);
		return -EINVAL;
	}
	strcpy(parent, path);
	slash = strrchr(parent, '/');
	*slash = 0;
	if (l->memory_max)
		want[nwant++] = "memory";
	if (l->pids_max)
		want[nwant++] = "pids";
	if (l->cpu_quota_pct)
		want[nwant++] = "cpu";
	rc = cgroup_make_parent(parent, &root_len, r);
	if (rc == 0)
		rc = cgroup_enable(parent, root_len, want, nwant, r);
	if (rc < 0)
		return rc;
	if (mkdir(path, 0755) < 0)
		return cgroup_fail(r, errno, "creating %s%s", path, "");
	dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	rc = dfd < 0 ? -errno : cgroup_write_limits(dfd, l, cg);
	if (rc == 0)
		rc = cgroup_open_files(dfd, l, cg);
	if (dfd >= 0)
		close(dfd);
	if (rc < 0) {
		cgroup_fail(r, -rc, "setting limits in %s%s", path, "");
		cgroup_close(cg);
		rmdir(path);
		return rc;
	}
	jail_report_set(r, SBX_PROT_CGROUP, 0, "%s created; the VMM is not in it yet", path);
	return 0;
}

int cgroup_add(struct jail_cgroup *cg, const char *path, pid_t pid, struct jail_report *r)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);

	if (write(cg->procs_fd, buf, (size_t)n) != n)
		return cgroup_fail(r, errno, "moving the VMM into %s%s", path, "");
	jail_report_set(r, SBX_PROT_CGROUP, 1, "%s: %s", path, cg->summary);
	return 0;
}

void cgroup_close(struct jail_cgroup *cg)
{
	int *fds[] = { &cg->procs_fd, &cg->memory_events_fd, &cg->memory_max_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}
