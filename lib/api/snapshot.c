/* Snapshot, hibernate, restore and resume (docs/snapshot.md). The jailed VMM can open no file, so
 * the library makes the snapshot's directory and files and passes the memory and state files
 * with the "snapshot" command on <sandbox dir>/control.sock (any process of ours can reach it);
 * the VMM fills them and keeps the guest paused while the library clones the writable disks,
 * then the library tells it to resume or to stop. Restore checks a snapshot before it spawns
 * anything, clones its disks into the new sandbox's directory, starts a jailed VMM exactly as
 * create does, and sets the guest's clock once the agent answers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "internal.h"
#include "net_host.h"
#include "net_record.h"
#include "restore_net.h"
#include "snapshot/format.h"
#include "snapshot/manifest.h"
#include "state_dir.h"
#include "util/file_clone.h"
#include "util/io.h"

/* Copying a large disk where there is no reflink takes a while, under emulation more so. */
#define SNAPSHOT_TIMEOUT_MS (30 * 60 * 1000)
#define HIBERNATE_EXIT_MS 10000
/* resume and hibernate only release the held guest. */
#define SNAPSHOT_RELEASE_MS 10000
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

/* sandbox_error with a formatted message (paths may make it long: it is cut, not refused). */
static __attribute__((format(printf, 3, 4))) int snap_error(sbx_sandbox *sb, int code,
							    const char *fmt, ...)
{
	char msg[SBX_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sandbox_error(sb, code, msg);
}

/* The files a snapshot is made of, open or written so far, to remove if it fails. */
struct snapshot_out {
	char dir[PATH_MAX];
	int created; /* dir was made here */
	int mem_fd, state_fd;
	unsigned ndisks; /* disk-N.img written: 0..ndisks-1 */
};

static void snapshot_out_path(const struct snapshot_out *o, const char *name, char *path,
			      size_t len)
{
	snprintf(path, len, "%s/%s", o->dir, name);
}

static void snapshot_out_remove(struct snapshot_out *o)
{
	const char *names[] = {SNAP_MEMORY_FILE, SNAP_STATE_FILE ".tmp", SNAP_STATE_FILE,
			       NET_RECORD_FILE};
	char path[PATH_MAX + 32], name[32];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snapshot_out_path(o, names[i], path, sizeof(path));
		unlink(path);
	}
	for (unsigned i = 0; i < o->ndisks; i++) {
		snprintf(name, sizeof(name), "disk-%u.img", i);
		snapshot_out_path(o, name, path, sizeof(path));
		unlink(path);
	}
	if (o->created)
		rmdir(o->dir);
}

static int snapshot_out_open(sbx_sandbox *sb, struct snapshot_out *o)
{
	char mem[PATH_MAX + 32], state[PATH_MAX + 32];

	snapshot_out_path(o, SNAP_MEMORY_FILE, mem, sizeof(mem));
	snapshot_out_path(o, SNAP_STATE_FILE ".tmp", state, sizeof(state));
	o->mem_fd = open(mem, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	o->state_fd =
	    o->mem_fd < 0 ? -1 : open(state, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (o->state_fd >= 0)
		return SBX_OK;
	return snap_error(sb, SBX_EIO, "%s: %s", o->mem_fd < 0 ? mem : state, strerror(errno));
}

/* The writable disks the VMM named, cloned into the snapshot while the guest is paused. Each
 * entry is bounds-checked: the answer comes from a process that runs the guest. */
static int snapshot_clone_disks(sbx_sandbox *sb, json_t *reply, struct snapshot_out *o,
				sbx_snapshot_info *info)
{
	json_t *disks = json_object_get(reply, "disks"), *d;
	char to[PATH_MAX + 32], how_text[160], want[32];
	size_t k;

	if (!json_is_array(disks) || json_array_size(disks) > SBX_MAX_DISKS)
		return sandbox_error(sb, SBX_EPROTO, "the VMM named no disks");
	json_array_foreach(disks, k, d)
	{
		const char *path = NULL, *file = NULL;
		int index = -1, ro = 0, fd, how = 0, why = 0, rc;

		snprintf(want, sizeof(want), "disk-%zu.img", k);
		if (json_unpack(d, "{s:i, s:s, s:b, s?s}", "index", &index, "path", &path,
				"read_only", &ro, "file", &file) < 0 ||
		    index != (int)k || path[0] != '/' || (!ro && (!file || strcmp(file, want))))
			return sandbox_error(sb, SBX_EPROTO, "the VMM sent a malformed disk entry");
		if (ro) {
			info_disk(info, "disk %zu: reference %s (read-only)", k, path);
			continue;
		}
		snapshot_out_path(o, file, to, sizeof(to));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -errno : file_clone(fd, to, &how, &why);
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			return snap_error(sb, SBX_EIO, "disk %zu: cloning %s to %s: %s", k, path,
					  to, strerror(-rc));
		o->ndisks = (unsigned)k + 1;
		info_disk(info, "disk %zu: %s", k,
			  file_clone_describe(how, why, how_text, sizeof(how_text)));
		info->disks_copied += how == FILE_CLONE_COPY;
	}
	return SBX_OK;
}

/* A sandbox with a network: the library's record of it (policy, upstream), for restores. */
static int snapshot_net_record(sbx_sandbox *sb, struct snapshot_out *o)
{
	char err[SBX_ERRMSG_MAX];
	struct net_record rec;
	int rc = net_record_read(sb->dir, &rec, err);

	if (rc == SBX_ENOENT && !net_host_present(sb->dir))
		return SBX_OK;
	if (rc == SBX_OK)
		rc = net_record_write(o->dir, rec.policy, rec.dns, rec.admit_private, err);
	net_record_clear(&rec);
	return rc == SBX_OK ? SBX_OK : sandbox_error(sb, rc, err);
}

/* The state file appears under its name last: a snapshot with one is complete. */
static int snapshot_out_seal(sbx_sandbox *sb, struct snapshot_out *o)
{
	char from[PATH_MAX + 32], to[PATH_MAX + 32];
	int dfd;

	snapshot_out_path(o, SNAP_STATE_FILE ".tmp", from, sizeof(from));
	snapshot_out_path(o, SNAP_STATE_FILE, to, sizeof(to));
	if (rename(from, to) < 0)
		return snap_error(sb, SBX_EIO, "%s: %s", to, strerror(errno));
	dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return SBX_OK;
}

/* Snapshot on connection fd: the VMM writes the files and holds the guest; disks are cloned;
 * the guest goes on (or stops, for hibernate) only once the snapshot is whole. */
static int snapshot_take(sbx_sandbox *sb, int fd, struct snapshot_out *o, int stop,
			 sbx_snapshot_info *info)
{
	json_t *req = json_pack("{s:s}", "cmd", "snapshot"), *reply = NULL, *done = NULL;
	int fds[2] = {o->mem_fd, o->state_fd}, rc;
	double t0 = now_s(), pause_s = 0;

	rc = sandbox_command_on(sb, fd, req, fds, 2, SNAPSHOT_TIMEOUT_MS, &reply);
	json_decref(req);
	if (rc != SBX_OK)
		return rc;
	json_unpack(reply, "{s?F}", "pause_s", &pause_s);
	info->memory_bytes =
	    (unsigned long long)json_integer_value(json_object_get(reply, "memory_bytes"));
	rc = snapshot_clone_disks(sb, reply, o, info);
	json_decref(reply);
	if (rc == SBX_OK)
		rc = snapshot_net_record(sb, o);
	if (rc == SBX_OK)
		rc = snapshot_out_seal(sb, o);
	if (rc != SBX_OK)
		return rc; /* closing the connection lets the guest go on */
	req = json_pack("{s:s}", "cmd", stop ? "hibernate" : "resume");
	rc = sandbox_command_on(sb, fd, req, NULL, 0, SNAPSHOT_RELEASE_MS, &done);
	json_decref(req);
	json_decref(done);
	info->seconds = now_s() - t0 - pause_s;
	return rc;
}

static int snapshot_do(sbx_sandbox *sb, const char *dir, int stop, sbx_snapshot_info **info)
{
	struct snapshot_out o = {.mem_fd = -1, .state_fd = -1};
	sbx_snapshot_info *i;
	int rc, fd = -1, reason;

	if (!sb || !dir || !*dir)
		return SBX_EINVAL;
	if (sb->pid <= 0 || sb->exit_reason != SBX_EXIT_NONE || sandbox_process_gone(sb->pid))
		return sandbox_error(sb, SBX_ESTATE, "the sandbox is not running");
	if (!(i = info_new()))
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	rc = snapshot_dir_prepare(sb, dir, o.dir, &o.created);
	if (rc == SBX_OK)
		rc = snapshot_out_open(sb, &o);
	if (rc == SBX_OK && (fd = sandbox_command_connect(sb)) < 0)
		rc = fd;
	if (rc == SBX_OK)
		rc = snapshot_take(sb, fd, &o, stop, i);
	if (fd >= 0)
		close(fd);
	if (o.mem_fd >= 0)
		close(o.mem_fd);
	if (o.state_fd >= 0)
		close(o.state_fd);
	if (rc != SBX_OK) {
		if (o.dir[0])
			snapshot_out_remove(&o);
		sbx_snapshot_info_free(i);
		return rc;
	}
	if (stop)
		sbx_sandbox_wait_exit(sb, HIBERNATE_EXIT_MS, &reason);
	if (info)
		*info = i;
	else
		sbx_snapshot_info_free(i);
	return SBX_OK;
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

/* The VMM config of a restore: what every sandbox has (the jail included, sized for the
 * snapshot's machine), and the snapshot's machine instead of a kernel to boot. */
static json_t *restore_config_json(const sbx_config *cfg, const sbx_sandbox *sb,
				   const struct restore_src *src, json_t *disks)
{
	const struct snap_manifest *m = &src->man;
	json_t *msg = sandbox_vmm_json(cfg, sb, m->vcpus, (unsigned)m->memory_mib), *vsock;
	json_t *machine =
	    json_pack("{s:s, s:i, s:I, s:O, s:s*, s:s*, s:s*}", "restore", src->dir, "vcpus",
		      (int)m->vcpus, "memory_mib", (json_int_t)m->memory_mib, "disks", disks,
		      "kernel", m->kernel, "initramfs", m->initramfs, "cmdline", m->cmdline);

	if (!msg || !machine || json_object_update(msg, machine) < 0) {
		json_decref(msg);
		msg = NULL;
	}
	json_decref(machine);
	vsock = json_object_get(msg, "vsock");
	if (vsock && m->vsock_cid)
		json_object_set_new(vsock, "cid", json_integer((json_int_t)m->vsock_cid));
	else if (vsock)
		json_object_del(msg, "vsock");
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
	struct net_host net = {.tap_fd = -1, .dns_fd = -1};
	struct restore_src *src = calloc(1, sizeof(*src));
	sbx_snapshot_info *info = info_new();
	json_t *disks = json_array(), *msg = NULL, *net_json = NULL;
	char net_spec[128] = "";
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
		rc = sandbox_jail_check(cfg, src->man.vcpus);
	if (rc == SBX_OK)
		rc = sandbox_alloc(cfg, resume ? src->man.id : NULL, &sb);
	if (rc != SBX_OK)
		goto out;
	sb->wants_agent = src->man.agent;
	rc = restore_disks(cfg, sb, src, disks, info);
	if (rc == SBX_OK)
		rc = restore_net_prepare(cfg, sb, &src->man, src->dir, &net, &net_json, net_spec,
					 sizeof(net_spec));
	if (rc != SBX_OK)
		goto out;
	msg = restore_config_json(cfg, sb, src, disks);
	if (msg && net_json && json_object_set(msg, "net", net_json) < 0) {
		json_decref(msg);
		msg = NULL;
	}
	rc = msg ? sandbox_launch(sb, cfg, msg, &net)
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
		if (rc == SBX_OK && net_json)
			rc = restore_net_guest(cfg, sb, &net, net_spec);
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
	net_host_release_fds(&net);
	if (sb)
		sandbox_free(sb);
	json_decref(net_json);
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
