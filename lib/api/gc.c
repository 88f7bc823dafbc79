/* Garbage collection: what sandboxes whose VMM and creator are both gone left behind. A sandbox
 * is dead once nobody holds its liveness lock (state_dir.h): its VMM and monitor hold it for
 * their lives, its creator while it creates, so a killed VMM, a killed monitor and a killed
 * caller all free it, and a reused pid cannot fake it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "net_host.h"
#include "state_dir.h"

/* A directory without a lock file is one being made right now (the lock follows the mkdir at
 * once), unless it is older than this. */
#define GC_UNLOCKED_GRACE_S 60

static int gc_is_sandbox_id(const char *name)
{
	size_t n = strspn(name, "0123456789abcdef");

	return n == 32 && name[n] == 0;
}

/* Whether the sandbox in dir is dead; *lock_fd holds its lock then (or -1 without a lock). */
static int gc_dead(const char *dir, int *lock_fd)
{
	struct stat st;
	int fd = state_dir_try_lock(dir);

	*lock_fd = -1;
	if (fd >= 0) {
		*lock_fd = fd;
		return 1;
	}
	if (fd != -ENOENT || stat(dir, &st) < 0)
		return 0;
	return time(NULL) - st.st_mtime > GC_UNLOCKED_GRACE_S;
}

/* What the exit record says, for the report ("" while empty or missing). */
static void gc_exit_record(const char *dir, char *buf, size_t len)
{
	char path[4300];
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "%s/exit", dir);
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

int sandbox_gc(const char *base, unsigned *removed, struct sbx_buf *report)
{
	char dir[4200], line[4600], record[512];
	struct dirent *e;
	unsigned n = 0, leases;
	DIR *d = opendir(base);
	int lock_fd, rc;

	if (!d)
		return errno == ENOENT ? SBX_OK : SBX_EIO;
	while ((e = readdir(d))) {
		if (!gc_is_sandbox_id(e->d_name))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", base, e->d_name);
		if (!gc_dead(dir, &lock_fd))
			continue;
		gc_exit_record(dir, record, sizeof(record));
		/* The cgroup first: anything left in it is killed before its files go. */
		sandbox_cgroup_remove(dir, e->d_name);
		net_host_down(dir);
		rc = state_dir_remove(dir);
		if (lock_fd >= 0)
			close(lock_fd);
		if (rc < 0) {
			snprintf(line, sizeof(line), "%s: could not remove: %s\n", e->d_name,
				 strerror(-rc));
			if (report && sbx_buf_append(report, line, strlen(line)) != SBX_OK)
				report = NULL;
			continue;
		}
		n++;
		snprintf(line, sizeof(line), "%s: removed (%s)\n", e->d_name,
			 record[0] ? record : "no exit record: its VMM was killed");
		if (report && sbx_buf_append(report, line, strlen(line)) != SBX_OK)
			report = NULL;
	}
	closedir(d);
	leases = net_host_gc(base);
	if (leases) {
		snprintf(line, sizeof(line), "%u network lease(s) of removed sandboxes freed\n",
			 leases);
		if (report)
			sbx_buf_append(report, line, strlen(line));
	}
	if (removed)
		*removed = n;
	return SBX_OK;
}

int sbx_gc(const char *state_dir, unsigned *removed, char **report)
{
	struct sbx_buf buf = { 0 };
	char base[4096];
	int rc = state_dir_base(state_dir, base, sizeof(base));

	if (report)
		*report = NULL;
	if (rc == SBX_OK)
		rc = sandbox_gc(base, removed, report ? &buf : NULL);
	if (rc == SBX_OK && report && sbx_buf_append(&buf, NULL, 0) == SBX_OK)
		*report = buf.data;
	else
		free(buf.data);
	return rc;
}
