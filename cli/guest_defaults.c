#define _GNU_SOURCE
#include "guest_defaults.h"

#include <errno.h>
#include <glob.h>
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int newest_match(const char *pattern, char *path, size_t len)
{
	glob_t g;
	int rc = -ENOENT;

	/* glob sorts; for Debian's "6.1.0-N-flavour" names the last is not always the newest, so
	 * compare with strverscmp. */
	if (glob(pattern, 0, NULL, &g) == 0) {
		const char *best = NULL;
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (!best || strverscmp(g.gl_pathv[i], best) > 0)
				best = g.gl_pathv[i];
		snprintf(path, len, "%s", best);
		rc = 0;
	}
	globfree(&g);
	return rc;
}

int guest_kernel_find(char *path, size_t len)
{
	const char *env = getenv("SANDBOX_KERNEL");

	if (env && *env) {
		snprintf(path, len, "%s", env);
		return 0;
	}
	if (newest_match("/boot/vmlinuz-*-cloud-amd64", path, len) == 0)
		return 0;
	return newest_match("/boot/vmlinuz-*", path, len);
}

const char *guest_kernel_release(const char *kernel_path)
{
	const char *base = strrchr(kernel_path, '/');

	base = base ? base + 1 : kernel_path;
	return strncmp(base, "vmlinuz-", 8) == 0 ? base + 8 : base;
}

int guest_cache_dir(char *path, size_t len)
{
	const char *env = getenv("SANDBOX_CACHE_DIR"), *home = getenv("HOME");
	char cmd[4200];

	if (env && *env)
		snprintf(path, len, "%s", env);
	else
		snprintf(path, len, "%s/.cache/libsandbox", home && *home ? home : "/tmp");
	if (access(path, W_OK) == 0)
		return 0;
	snprintf(cmd, sizeof(cmd), "%s", path);
	for (char *p = cmd + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(cmd, 0755);
			*p = '/';
		}
	return mkdir(cmd, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

int guest_initramfs_build(const char *kernel_path, char *path, size_t len, char *err,
			   size_t errlen)
{
	const char *release = guest_kernel_release(kernel_path);
	char dir[4096], *msg = NULL;
	int rc;

	if (guest_cache_dir(dir, sizeof(dir)) < 0) {
		snprintf(err, errlen, "cache directory %s: %s", dir, strerror(errno));
		return SBX_EIO;
	}
	/* Rebuilt on every use (it takes milliseconds), so a new guest init never meets an old
	 * archive; the rename inside sbx_initramfs_build keeps concurrent users safe. */
	snprintf(path, len, "%s/initramfs-%s.cpio", dir, release);
	rc = sbx_initramfs_build(release, NULL, path, &msg);
	if (rc != SBX_OK)
		snprintf(err, errlen, "%s", msg ? msg : sbx_strerror(rc));
	sbx_free(msg);
	return rc;
}
