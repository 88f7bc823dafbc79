/* sbx_initramfs_build: the guest's initramfs, a newc cpio holding the embedded static init, the
 * embedded guest agent (which the init starts from the root disk's side of the switch) and the
 * virtio modules Debian's cloud kernel lacks built in (see DESIGN.md, "Guest kernel"). */
#define _GNU_SOURCE
#include <sandbox.h>

#include "guest/guest_init_blob.h"
#include "util/cpio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Load order: each module after the ones it depends on, since the init has no modprobe. */
static const char *const initramfs_modules[] = {
    "virtio_ring",
    "virtio",
    "virtio_mmio",
    "virtio_blk",
    "failover",
    "net_failover",
    "virtio_net",
    "vsock",
    "vmw_vsock_virtio_transport_common",
    "vmw_vsock_virtio_transport",
};
#define INITRAMFS_NMODULES (sizeof(initramfs_modules) / sizeof(initramfs_modules[0]))
#define MODULES_WALK_DEPTH 16

struct module_paths {
	char *plain[INITRAMFS_NMODULES];      /* <name>.ko */
	char *compressed[INITRAMFS_NMODULES]; /* <name>.ko.{xz,zst,gz}, to name in the error */
};

static int initramfs_error(char **error, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (!error)
		return code;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	*error = msg;
	return code;
}

static int errno_to_sbx(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return SBX_ENOENT;
	case EACCES:
	case EPERM:
		return SBX_EPERM;
	case ENOMEM:
		return SBX_ENOMEM;
	default:
		return SBX_EIO;
	}
}

/* Index of the wanted module a file name stands for, or -1. *compressed tells a .ko.xz (etc.)
 * from a plain .ko. Module names treat '-' and '_' alike, so compare them alike. */
static int module_index(const char *file, int *compressed)
{
	static const char *const suffixes[] = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};
	size_t flen = strlen(file);

	for (size_t s = 0; s < sizeof(suffixes) / sizeof(suffixes[0]); s++) {
		size_t slen = strlen(suffixes[s]), nlen = flen - slen;

		if (flen <= slen || strcmp(file + nlen, suffixes[s]) != 0)
			continue;
		for (size_t m = 0; m < INITRAMFS_NMODULES; m++) {
			const char *want = initramfs_modules[m];
			size_t i = 0;

			if (strlen(want) != nlen)
				continue;
			while (i < nlen &&
			       (file[i] == want[i] || (file[i] == '-' && want[i] == '_')))
				i++;
			if (i == nlen) {
				*compressed = s > 0;
				return (int)m;
			}
		}
	}
	return -1;
}

/* Depth-first walk of path (a directory), noting where each wanted module lives. Errors inside
 * the tree (an unreadable subdirectory) are skipped: only a module we then miss matters. */
static int modules_walk(struct module_paths *mp, char *path, size_t pathlen, int depth)
{
	struct dirent *e;
	DIR *d;

	if (depth > MODULES_WALK_DEPTH)
		return 0;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t nlen = strlen(e->d_name);
		int compressed, idx, is_dir = e->d_type == DT_DIR;
		char **slot;

		if (e->d_name[0] == '.' || pathlen + 1 + nlen >= PATH_MAX)
			continue;
		path[pathlen] = '/';
		memcpy(path + pathlen + 1, e->d_name, nlen + 1);
		if (e->d_type == DT_UNKNOWN) {
			struct stat st;

			is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
		}
		if (is_dir) {
			modules_walk(mp, path, pathlen + 1 + nlen, depth + 1);
		} else if ((idx = module_index(e->d_name, &compressed)) >= 0) {
			slot = compressed ? &mp->compressed[idx] : &mp->plain[idx];
			if (!*slot && !(*slot = strdup(path))) {
				closedir(d);
				return -ENOMEM;
			}
		}
		path[pathlen] = 0;
	}
	closedir(d);
	return 0;
}

static void module_paths_free(struct module_paths *mp)
{
	for (size_t i = 0; i < INITRAMFS_NMODULES; i++) {
		free(mp->plain[i]);
		free(mp->compressed[i]);
	}
}

static int modules_find(struct module_paths *mp, const char *modules_dir, const char *release,
			char **error)
{
	char path[PATH_MAX];
	int n, err;

	n = snprintf(path, sizeof(path), "%s/%s/kernel", modules_dir, release);
	if (n < 0 || (size_t)n >= sizeof(path))
		return initramfs_error(error, SBX_EINVAL, "modules directory path too long");
	err = modules_walk(mp, path, (size_t)n, 0);
	if (err == -ENOMEM)
		return initramfs_error(error, SBX_ENOMEM, "out of memory");
	if (err < 0)
		return initramfs_error(error, errno_to_sbx(-err), "modules of kernel %s: %s: %s",
				       release, path, strerror(-err));
	for (size_t i = 0; i < INITRAMFS_NMODULES; i++) {
		if (mp->plain[i])
			continue;
		if (mp->compressed[i])
			return initramfs_error(error, SBX_ENOENT,
					       "module %s: only %s found; compressed modules are "
					       "not supported (decompress it to %s.ko)",
					       initramfs_modules[i], mp->compressed[i],
					       initramfs_modules[i]);
		return initramfs_error(error, SBX_ENOENT, "module %s: no %s.ko under %s",
				       initramfs_modules[i], initramfs_modules[i], path);
	}
	return 0;
}

/* Everything but the trailer. Paths are relative: the kernel unpacks them under its rootfs. */
static int initramfs_write(struct cpio_writer *w, const struct module_paths *mp, const char **bad)
{
	char name[64], order[512];
	size_t olen = 0;

	cpio_add_file(w, "init", 0755, sbx_guest_init, sbx_guest_init_len);
	cpio_add_file(w, "agent", 0755, sbx_guest_agent, sbx_guest_agent_len);
	/* With dev/console present, the kernel opens it as the init's stdin/stdout/stderr. */
	cpio_add_dir(w, "dev", 0755);
	cpio_add_chardev(w, "dev/console", 0600, 5, 1);
	cpio_add_dir(w, "proc", 0755);
	cpio_add_dir(w, "sys", 0755);
	cpio_add_dir(w, "newroot", 0755);
	cpio_add_dir(w, "lib", 0755);
	cpio_add_dir(w, "lib/modules", 0755);
	for (size_t i = 0; i < INITRAMFS_NMODULES; i++) {
		snprintf(name, sizeof(name), "lib/modules/%s.ko", initramfs_modules[i]);
		/* Name the module only if it failed, not an earlier entry (errors stick). */
		if (!w->err && cpio_add_file_from_path(w, name, 0644, mp->plain[i]) < 0)
			*bad = mp->plain[i];
		olen += (size_t)snprintf(order + olen, sizeof(order) - olen, "%s\n",
					 initramfs_modules[i]);
	}
	cpio_add_file(w, "lib/modules/order", 0644, order, olen);
	return cpio_finish(w);
}

SBX_API int sbx_initramfs_build(const char *kernel_release, const char *modules_dir,
				const char *out_path, char **error)
{
	struct module_paths mp = {0};
	struct cpio_writer w;
	const char *bad = NULL;
	char *tmp = NULL;
	int fd = -1, err, ret;

	if (!kernel_release || !*kernel_release || strchr(kernel_release, '/') || !out_path ||
	    !*out_path)
		return initramfs_error(error, SBX_EINVAL,
				       "kernel release and output path are required");
	if (!modules_dir)
		modules_dir = "/lib/modules";
	ret = modules_find(&mp, modules_dir, kernel_release, error);
	if (ret < 0)
		goto out;

	/* Built beside the target under a unique name and renamed over it: a failed build leaves
	 * nothing behind, a reader never sees half an archive, and concurrent builds of the same
	 * path (the CLI rebuilds on every use) never write into each other's file. */
	if (asprintf(&tmp, "%s.tmp.XXXXXX", out_path) < 0) {
		tmp = NULL;
		ret = initramfs_error(error, SBX_ENOMEM, "out of memory");
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = initramfs_error(error, errno_to_sbx(errno), "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0644) < 0) { /* mkostemp made it 0600; it is no secret */
		err = -errno;
	} else {
		cpio_writer_init(&w, fd);
		err = initramfs_write(&w, &mp, &bad);
	}
	if (!err && fdatasync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	fd = -1;
	if (err) {
		ret = initramfs_error(error, err == -ENOMEM ? SBX_ENOMEM : SBX_EIO,
				      "writing %s%s%s: %s", tmp, bad ? " from " : "",
				      bad ? bad : "", strerror(-err));
		goto fail_unlink;
	}
	if (rename(tmp, out_path) < 0) {
		ret = initramfs_error(error, errno_to_sbx(errno), "rename %s to %s: %s", tmp,
				      out_path, strerror(errno));
		goto fail_unlink;
	}
	ret = 0;
	goto out;

fail_unlink:
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	module_paths_free(&mp);
	return ret;
}
