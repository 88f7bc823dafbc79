/* Snapshot, hibernate, restore and resume (docs/snapshot.md). The VMM writes snapshots (asked
 * through <sandbox dir>/control.sock, which any process of ours can reach) and rebuilds machines
 * from them; the library checks a snapshot before it spawns anything, clones its disks into the
 * new sandbox's directory, and sets the guest's clock once the agent answers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "internal.h"
#include "snapshot/format.h"
#include "snapshot/manifest.h"
#include "state_dir.h"
#include "util/file_clone.h"
#include "util/io.h"

/* Copying a large disk where there is no reflink takes a while, under emulation more so. */
#define SNAPSHOT_TIMEOUT_MS (30 * 60 * 1000)
#define HIBERNATE_EXIT_MS 10000
/* From the VMM's start to the agent's answer; restored guests need no boot. */
#define RESTORE_READY_MS (5 * 60 * 1000)
#define SETTIME_TIMEOUT_MS 10000

struct sbx_snapshot_info {
	double seconds;
	unsigned long long memory_bytes;
	int disks_copied;
	struct sbx_buf disks;
};

static sbx_snapshot_info *info_new(void)
{
	sbx_snapshot_info *i = calloc(1, sizeof(*i));

	if (i && sbx_buf_append(&i->disks, NULL, 0) != SBX_OK) {
		free(i);
		return NULL;
	}
	return i;
}

static __attribute__((format(printf, 2, 3))) void info_disk(sbx_snapshot_info *i, const char *fmt,
							    ...)
{
	char line[PATH_MAX + 128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	sbx_buf_append(&i->disks, line, (size_t)n);
}

void sbx_snapshot_info_free(sbx_snapshot_info *info)
{
	if (!info)
		return;
	free(info->disks.data);
	free(info);
}

double sbx_snapshot_info_seconds(const sbx_snapshot_info *info)
{
	return info ? info->seconds : 0;
}

unsigned long long sbx_snapshot_info_memory_bytes(const sbx_snapshot_info *info)
{
	return info ? info->memory_bytes : 0;
}

int sbx_snapshot_info_disks_copied(const sbx_snapshot_info *info)
{
	return info ? info->disks_copied : 0;
}

const char *sbx_snapshot_info_disks(const sbx_snapshot_info *info)
{
	return sbx_buf_view(info ? &info->disks : NULL, NULL);
}

const sbx_snapshot_info *sbx_sandbox_restore_info(const sbx_sandbox *sb)
{
	return sb ? sb->restore_info : NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ snapshot */

/* One request on <sandbox dir>/control.sock and its one-line answer. */
static int vmm_request(sbx_sandbox *sb, json_t *req, int timeout_ms, json_t **reply)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct jsonl_reader *reader = NULL;
	int fd, rc;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", sb->dir) >=
	    sizeof(sa.sun_path))
		return sandbox_error(sb, SBX_EINVAL, "sandbox directory too long for a socket");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sandbox_error(sb, SBX_EIO, "socket failed");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		char msg[SBX_ERRMSG_MAX];
		snprintf(msg, sizeof(msg), "%s: %s (is the sandbox running?)", sa.sun_path,
			 strerror(errno));
		close(fd);
		return sandbox_error(sb, SBX_ESTATE, msg);
	}
	rc = jsonl_write(fd, req) < 0 ? SBX_EVMM : SBX_OK;
	if (rc == SBX_OK && !(reader = malloc(sizeof(*reader))))
		rc = SBX_ENOMEM;
	if (rc == SBX_OK) {
		jsonl_reader_init(reader, fd);
		switch (jsonl_read(reader, timeout_ms, reply)) {
		case 1:
			break;
		case -ETIMEDOUT:
			rc = sandbox_error(sb, SBX_ETIMEDOUT, "the VMM did not answer in time");
			break;
		default:
			rc = sandbox_error(sb, SBX_EVMM,
					   "the VMM closed the control connection "
					   "without an answer (see its vmm.log)");
		}
	} else if (rc == SBX_EVMM) {
		sandbox_error(sb, rc, "the VMM closed the control connection");
	}
	free(reader);
	close(fd);
	return rc;
}

/* mkdir -p of dir's parents, mode 0700 where created. */
static void mkdir_parents(const char *dir)
{
	char *path = strdup(dir);

	for (char *p = path ? path + 1 : NULL; p && *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(path, 0700);
		*p = '/';
	}
	free(path);
}

/* dir is created (with its parents), or must be an empty directory; *abs gets its absolute
 * path (the VMM's working directory is not ours). */
static int snapshot_dir_prepare(sbx_sandbox *sb, const char *dir, char *abs, int *created)
{
	char msg[SBX_ERRMSG_MAX];
	struct dirent *e;
	DIR *d;
	int empty = 1;

	mkdir_parents(dir);
	*created = mkdir(dir, 0700) == 0;
	if (!*created && errno != EEXIST) {
		snprintf(msg, sizeof(msg), "snapshot directory %s: %s", dir, strerror(errno));
		return sandbox_error(sb, SBX_EIO, msg);
	}
	d = opendir(dir);
	if (!d) {
		snprintf(msg, sizeof(msg), "snapshot directory %s: %s", dir, strerror(errno));
		return sandbox_error(sb, SBX_EINVAL, msg);
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	if (!empty) {
		snprintf(msg, sizeof(msg), "snapshot directory %s is not empty", dir);
		return sandbox_error(sb, SBX_EINVAL, msg);
	}
	if (!realpath(dir, abs)) {
		snprintf(msg, sizeof(msg), "snapshot directory %s: %s", dir, strerror(errno));
		return sandbox_error(sb, SBX_EIO, msg);
	}
	return SBX_OK;
}

static sbx_snapshot_info *snapshot_info_from(json_t *reply)
{
	sbx_snapshot_info *i = info_new();
	json_t *disks = json_object_get(reply, "disks"), *d;
	size_t k;

	if (!i)
		return NULL;
	i->seconds = json_number_value(json_object_get(reply, "paused_s"));
	i->memory_bytes =
	    (unsigned long long)json_integer_value(json_object_get(reply, "memory_bytes"));
	json_array_foreach(disks, k, d)
	{
		const char *method = "?", *detail = "";
		int index = 0;

		json_unpack(d, "{s?i, s?s, s?s}", "index", &index, "method", &method, "detail",
			    &detail);
		if (!strcmp(method, "reference"))
			info_disk(i, "disk %d: reference %s (read-only)", index, detail);
		else
			info_disk(i, "disk %d: %s", index, detail);
		i->disks_copied += !strcmp(method, "copy");
	}
	return i;
}

static int snapshot_do(sbx_sandbox *sb, const char *dir, int stop, sbx_snapshot_info **info)
{
	char abs[PATH_MAX];
	json_t *req, *reply = NULL;
	const char *code = "EVMM", *message = "snapshot failed";
	int created = 0, ok = 0, rc, reason;

	if (!sb || !dir || !*dir)
		return SBX_EINVAL;
	if (sb->pid <= 0 || sb->exit_reason != SBX_EXIT_NONE || sandbox_process_gone(sb->pid))
		return sandbox_error(sb, SBX_ESTATE, "the sandbox is not running");
	rc = snapshot_dir_prepare(sb, dir, abs, &created);
	if (rc != SBX_OK)
		return rc;
	req = json_pack("{s:s, s:s, s:b}", "cmd", "snapshot", "dir", abs, "stop", stop);
	rc = req ? vmm_request(sb, req, SNAPSHOT_TIMEOUT_MS, &reply)
		 : sandbox_error(sb, SBX_EINVAL, "snapshot directory name is not UTF-8");
	json_decref(req);
	if (rc == SBX_OK && (json_unpack(reply, "{s:b}", "ok", &ok) < 0 || !ok)) {
		json_unpack(reply, "{s?s, s?s}", "code", &code, "message", &message);
		rc = sandbox_error(sb, sbx_err_from_name(code), message);
	}
	if (rc != SBX_OK) {
		json_decref(reply);
		if (created)
			rmdir(abs);
		return rc;
	}
	if (stop)
		sbx_sandbox_wait_exit(sb, HIBERNATE_EXIT_MS, &reason);
	if (info && !(*info = snapshot_info_from(reply)))
		rc = sandbox_error(sb, SBX_ENOMEM, "out of memory (the snapshot was written)");
	json_decref(reply);
	return rc;
}

int sbx_sandbox_snapshot(sbx_sandbox *sb, const char *dir, sbx_snapshot_info **info)
{
	return snapshot_do(sb, dir, 0, info);
}

int sbx_sandbox_hibernate(sbx_sandbox *sb, const char *dir, sbx_snapshot_info **info)
{
	return snapshot_do(sb, dir, 1, info);
}

/* ------------------------------------------------------------------- restore */

/* What restore reads from a snapshot directory before anything is spawned. */
struct restore_src {
	char dir[PATH_MAX];
	struct snap_reader rd;
	struct snap_manifest man;
};

static int restore_read(sbx_config *cfg, const char *dir, struct restore_src *src)
{
	const struct snap_section *s;
	char path[PATH_MAX + 16], msg[512];
	int rc;

	if (!realpath(dir, src->dir))
		return sbx_fail(cfg->err, errno == ENOENT ? SBX_ENOENT : SBX_EIO,
				"snapshot directory %s: %s", dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s", src->dir, SNAP_STATE_FILE);
	rc = snap_read_file(path, &src->rd, msg, sizeof(msg));
	if (rc == -ENOENT)
		return sbx_fail(cfg->err, SBX_ENOENT, "no snapshot in %s (no %s file)", src->dir,
				SNAP_STATE_FILE);
	if (rc == -ENOMEM)
		return sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
	if (rc < 0)
		return sbx_fail(cfg->err,
				rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -EFBIG
				    ? SBX_ESNAPSHOT
				    : SBX_EIO,
				"snapshot %s: %s", src->dir, msg);
	s = snap_find(&src->rd, SNAP_SEC_MANIFEST, 0);
	if (!s)
		return sbx_fail(cfg->err, SBX_ESNAPSHOT, "snapshot %s: no manifest", src->dir);
	if (snap_manifest_parse(s->data, s->size, &src->man, msg, sizeof(msg)) < 0)
		return sbx_fail(cfg->err, SBX_ESNAPSHOT, "snapshot %s: %s", src->dir, msg);
	return SBX_OK;
}

/* The files the state file refers to are all there and of the sizes it says. */
static int restore_check_files(sbx_config *cfg, const struct restore_src *src)
{
	const struct snap_manifest *m = &src->man;
	char path[PATH_MAX + 32];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", src->dir, SNAP_MEMORY_FILE);
	if (stat(path, &st) < 0)
		return sbx_fail(cfg->err, SBX_ENOENT, "snapshot %s: memory file %s: %s", src->dir,
				path, strerror(errno));
	if ((uint64_t)st.st_size < m->memory_size)
		return sbx_fail(cfg->err, SBX_ESNAPSHOT,
				"snapshot %s: memory file %s is truncated: %lld of %llu bytes",
				src->dir, path, (long long)st.st_size,
				(unsigned long long)m->memory_size);
	for (unsigned i = 0; i < m->ndisks; i++) {
		const struct snap_disk *d = &m->disks[i];
		const char *what = i == 0 ? "rootfs" : "disk";

		if (d->file)
			snprintf(path, sizeof(path), "%s/%s", src->dir, d->file);
		else
			snprintf(path, sizeof(path), "%s", d->path);
		if (stat(path, &st) < 0)
			return sbx_fail(cfg->err, errno == ENOENT ? SBX_ENOENT : SBX_EIO,
					"snapshot %s: %s (disk %u) %s: %s", src->dir, what, i, path,
					strerror(errno));
		if ((uint64_t)st.st_size != d->size ||
		    (d->path &&
		     st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != d->mtime_ns))
			return sbx_fail(cfg->err, SBX_ESNAPSHOT,
					"snapshot %s: %s (disk %u) %s %s since the snapshot",
					src->dir, what, i, path,
					d->file ? "is not the size it was" : "was changed");
	}
	return SBX_OK;
}

/* The snapshot's disk images as this sandbox will use them: writable ones cloned into its
 * directory (the snapshot's own copy stays untouched for further restores), read-only ones
 * where they are. Fills disks (the VMM config's array) and the info. */
static int restore_disks(sbx_config *cfg, sbx_sandbox *sb, const struct restore_src *src,
			 json_t *disks, sbx_snapshot_info *info)
{
	const struct snap_manifest *m = &src->man;
	char from[PATH_MAX + 32], to[PATH_MAX + 32], how_text[160];

	for (unsigned i = 0; i < m->ndisks; i++) {
		const struct snap_disk *d = &m->disks[i];
		int fd, how, why, rc;

		if (d->path) {
			info_disk(info, "disk %u: reference %s (read-only)", i, d->path);
			json_array_append_new(disks, json_pack("{s:s, s:b}", "path", d->path,
							       "read_only", d->read_only));
			continue;
		}
		snprintf(from, sizeof(from), "%s/%s", src->dir, d->file);
		snprintf(to, sizeof(to), "%s/disk-%u.img", sb->dir, i);
		fd = open(from, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -errno : file_clone(fd, to, &how, &why);
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			return sbx_fail(cfg->err, rc == -ENOENT ? SBX_ENOENT : SBX_EIO,
					"cloning %s to %s: %s", from, to, strerror(-rc));
		info_disk(info, "disk %u: %s", i,
			  file_clone_describe(how, why, how_text, sizeof(how_text)));
		info->disks_copied += how == FILE_CLONE_COPY;
		json_array_append_new(
		    disks, json_pack("{s:s, s:b}", "path", to, "read_only", d->read_only));
	}
	return SBX_OK;
}

static json_t *restore_config_json(const sbx_config *cfg, const sbx_sandbox *sb,
				   const struct restore_src *src, json_t *disks)
{
	const struct snap_manifest *m = &src->man;
	char console[PATH_MAX + 32], vsock[PATH_MAX + 32];
	json_t *msg;

	snprintf(console, sizeof(console), "%s/console.log", sb->dir);
	snprintf(vsock, sizeof(vsock), "%s/vsock.sock", sb->dir);
	msg = json_pack("{s:s, s:s, s:b, s:i, s:I, s:O, s:s, s:s, s:b}", "restore", src->dir, "id",
			sb->id, "agent", m->agent, "vcpus", (int)m->vcpus, "memory_mib",
			(json_int_t)m->memory_mib, "disks", disks, "console_log", console,
			"state_dir", sb->dir, "detached", cfg->detached);
	if (!msg)
		return NULL;
	if (m->vsock_cid)
		json_object_set_new(
		    msg, "vsock",
		    json_pack("{s:I, s:s}", "cid", (json_int_t)m->vsock_cid, "uds", vsock));
	if (m->kernel)
		json_object_set_new(msg, "kernel", json_string(m->kernel));
	if (m->initramfs)
		json_object_set_new(msg, "initramfs", json_string(m->initramfs));
	if (m->cmdline)
		json_object_set_new(msg, "cmdline", json_string(m->cmdline));
	return msg;
}

/* The guest's wall clock stood still since the snapshot: it gets the host's. */
static int restore_settime(sbx_config *cfg, sbx_sandbox *sb)
{
	struct timespec ts;
	json_t *req, *ev = NULL;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	req = json_pack("{s:s, s:I}", "op", "settime", "realtime_ns",
			(json_int_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	rc = agent_request(sb->dir, req, SETTIME_TIMEOUT_MS, &ev, cfg->err);
	json_decref(req);
	json_decref(ev);
	if (rc != SBX_OK)
		return sbx_fail(cfg->err, SBX_EGUEST,
				"setting the guest's clock after the restore: %s",
				sbx_strerror(rc));
	return SBX_OK;
}

/* For resume: the id the snapshot was taken under, if no sandbox has it now. */
static int restore_resume_id(sbx_config *cfg, const struct restore_src *src)
{
	const char *id = src->man.id;
	char base[4096], path[4200];
	int rc;

	if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
		return sbx_fail(cfg->err, SBX_ESNAPSHOT,
				"snapshot %s: no sandbox id to resume under", src->dir);
	rc = state_dir_base(cfg->state_dir, base, sizeof(base));
	if (rc != SBX_OK)
		return sbx_fail(cfg->err, rc, "state directory: %s", sbx_strerror(rc));
	snprintf(path, sizeof(path), "%s/%s", base, id);
	if (access(path, F_OK) == 0)
		return sbx_fail(cfg->err, SBX_ESTATE,
				"a sandbox with id %s exists; sbx_sandbox_restore makes a copy "
				"under a new id",
				id);
	return SBX_OK;
}

static int restore_do(sbx_config *cfg, const char *dir, int resume, sbx_sandbox **out)
{
	struct restore_src *src = calloc(1, sizeof(*src));
	sbx_snapshot_info *info = info_new();
	json_t *disks = json_array(), *msg = NULL;
	sbx_sandbox *sb = NULL;
	double t0 = now_s();
	int rc;

	if (!src || !info || !disks) {
		rc = sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = restore_read(cfg, dir, src);
	if (rc == SBX_OK)
		rc = restore_check_files(cfg, src);
	if (rc == SBX_OK && resume)
		rc = restore_resume_id(cfg, src);
	if (rc == SBX_OK)
		rc = sandbox_alloc(cfg, resume ? src->man.id : NULL, &sb);
	if (rc != SBX_OK)
		goto out;
	sb->wants_agent = src->man.agent;
	rc = restore_disks(cfg, sb, src, disks, info);
	if (rc != SBX_OK)
		goto out;
	msg = restore_config_json(cfg, sb, src, disks);
	rc = msg ? sandbox_launch(sb, cfg, msg)
		 : sbx_fail(cfg->err, SBX_EINVAL, "a path in the snapshot is not UTF-8");
	if (rc != SBX_OK)
		goto out;
	rc = sbx_sandbox_wait_ready(sb, RESTORE_READY_MS);
	if (rc != SBX_OK) {
		sbx_fail(cfg->err, rc, "%s", sbx_sandbox_last_error(sb));
		goto out;
	}
	if (sb->wants_agent) {
		rc = restore_settime(cfg, sb);
		if (rc != SBX_OK)
			goto out;
	}
	info->seconds = now_s() - t0;
	info->memory_bytes = src->man.memory_size;
	sb->restore_info = info;
	info = NULL;
	*out = sb;
	sb = NULL;
out:
	if (sb)
		sandbox_free(sb);
	json_decref(msg);
	json_decref(disks);
	sbx_snapshot_info_free(info);
	if (src) {
		snap_manifest_free(&src->man);
		snap_reader_free(&src->rd);
		free(src);
	}
	return rc;
}

/* Without a config, a default one carries the call (its message is lost with it). */
static int restore_entry(sbx_config *cfg, const char *dir, int resume, sbx_sandbox **out)
{
	sbx_config *own = NULL;
	int rc;

	if (!dir || !out)
		return SBX_EINVAL;
	if (!cfg && !(cfg = own = sbx_config_new()))
		return SBX_ENOMEM;
	rc = restore_do(cfg, dir, resume, out);
	sbx_config_free(own);
	return rc;
}

int sbx_sandbox_restore(sbx_config *cfg, const char *dir, sbx_sandbox **out)
{
	return restore_entry(cfg, dir, 0, out);
}

int sbx_sandbox_resume(sbx_config *cfg, const char *dir, sbx_sandbox **out)
{
	return restore_entry(cfg, dir, 1, out);
}
