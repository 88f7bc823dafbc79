/* The library's side of the VMM's jail: what the VMM is told, the report it sends back, the
 * probe behind sbx_host_isolation, and removing a sandbox's cgroup when it is destroyed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "state_dir.h"
#include "util/io.h"

#define PROBE_TIMEOUT_MS 30000
#define CGROUP_KILL_WAIT_MS 2000
/* Threads of the VMM besides one per vCPU: its main thread and its device thread; the default
 * leaves room for more devices and libraries' helpers. */
#define SBX_VMM_BASE_TASKS 2
#define SBX_VMM_DEFAULT_EXTRA_TASKS 16

const char *sbx_protection_name(unsigned protection)
{
	switch (protection) {
#define SBX_PROT_NAME_(name, bit, label)                                                          \
	case SBX_PROT_##name:                                                                      \
		return label;
		SBX_PROTECTION_MAP(SBX_PROT_NAME_)
#undef SBX_PROT_NAME_
	}
	return "unknown";
}

static const char *cgroup_parent(const sbx_config *cfg)
{
	const char *env = getenv("SANDBOX_CGROUP_PARENT");

	if (cfg->cgroup_parent)
		return cfg->cgroup_parent;
	return env && *env ? env : SBX_CGROUP_DEFAULT_PARENT;
}

int sandbox_cgroup_path(const sbx_config *cfg, const char *id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", cgroup_parent(cfg), id);

	return n > 0 && (size_t)n < len ? SBX_OK : SBX_EINVAL;
}

json_t *jail_config_json(const sbx_config *cfg, const char *id, unsigned vcpus, unsigned memory_mib,
			 unsigned allow)
{
	char cgroup[4096];
	unsigned pids = cfg->pids_max ? cfg->pids_max
				      : vcpus + SBX_VMM_BASE_TASKS + SBX_VMM_DEFAULT_EXTRA_TASKS;

	if (sandbox_cgroup_path(cfg, id, cgroup, sizeof(cgroup)) != SBX_OK)
		return NULL;
	return json_pack("{s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I}", "uid",
			 (json_int_t)cfg->jail_uid, "gid", (json_int_t)cfg->jail_gid, "cgroup", cgroup,
			 "memory_max_mib", (json_int_t)memory_mib + SBX_VMM_MEMORY_OVERHEAD_MIB,
			 "pids_max", (json_int_t)pids, "cpu_quota_pct", (json_int_t)cfg->cpu_quota_pct,
			 "allow_degraded", (json_int_t)allow, "ttl_s", (json_int_t)config_ttl_left(cfg));
}

int sandbox_jail_check(sbx_config *cfg, unsigned vcpus)
{
	if (cfg->pids_max && cfg->pids_max < vcpus + SBX_VMM_BASE_TASKS)
		return sbx_fail(cfg->err, SBX_EINVAL,
				"pids limit %u is below what %u vCPUs need (%u)", cfg->pids_max,
				vcpus, vcpus + SBX_VMM_BASE_TASKS);
	if (cfg->cpu_quota_pct > (vcpus + 1) * 100)
		return sbx_fail(
		    cfg->err, SBX_ERANGE,
		    "CPU quota %u%% is more than %u vCPUs and the devices can use (%u%%)",
		    cfg->cpu_quota_pct, vcpus, (vcpus + 1) * 100);
	return SBX_OK;
}

int sandbox_cgroup_record(const char *dir, const char *path, char *err)
{
	char file[4200];
	int fd, n = (int)strlen(path);

	snprintf(file, sizeof(file), "%s/cgroup", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, path, (size_t)n) != n) {
		int rc = sbx_fail(err, SBX_EIO, "%s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	return SBX_OK;
}

/* A cgroup with processes left (the VMM's monitor was killed, and the VMM dies by its parent-
 * death signal a moment later) is emptied through cgroup.kill, then removed. */
static void cgroup_remove_path(const char *path)
{
	int64_t deadline = deadline_after(CGROUP_KILL_WAIT_MS);
	char kill_file[4200];
	int fd;

	if (rmdir(path) == 0 || errno != EBUSY)
		return;
	snprintf(kill_file, sizeof(kill_file), "%s/cgroup.kill", path);
	fd = open(kill_file, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) {
			/* An old kernel without cgroup.kill: the VMM still dies with its monitor.
			 */
		}
		close(fd);
	}
	while (rmdir(path) < 0 && errno == EBUSY && clock_ms() < deadline)
		usleep(10000);
}

void sandbox_cgroup_remove(const char *dir, const char *id)
{
	char file[4200], path[4096];
	const char *base;
	ssize_t n;
	int fd;

	snprintf(file, sizeof(file), "%s/cgroup", dir);
	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, path, sizeof(path) - 1);
	close(fd);
	if (n <= 0)
		return;
	path[n] = 0;
	/* Only ever this sandbox's own cgroup. */
	base = strrchr(path, '/');
	if (path[0] != '/' || !base || strcmp(base + 1, id) != 0 || strstr(path, "/../"))
		return;
	cgroup_remove_path(path);
}

/* Reads events until the probe's report, an error, or the end. */
static int probe_read(sbx_config *cfg, int fd, json_t **isolation)
{
	struct jsonl_reader reader;
	int64_t deadline = deadline_after(PROBE_TIMEOUT_MS);

	jsonl_reader_init(&reader, fd);
	for (;;) {
		const char *event = NULL, *message = "unknown VMM error";
		int64_t left = deadline - clock_ms();
		json_t *msg;
		int rc = jsonl_read(&reader, left < 0 ? 0 : (int)left, &msg);

		if (rc == -ETIMEDOUT)
			return sbx_fail(cfg->err, SBX_EVMM,
					"the VMM's probe did not answer in %d s",
					PROBE_TIMEOUT_MS / 1000);
		if (rc <= 0)
			return sbx_fail(cfg->err, SBX_EVMM,
					"the VMM's probe ended without a report");
		json_unpack(msg, "{s:s}", "event", &event);
		if (event && strcmp(event, "probe") == 0 &&
		    json_unpack(msg, "{s:O}", "isolation", isolation) == 0) {
			json_decref(msg);
			return SBX_OK;
		}
		if (event && strcmp(event, "error") == 0) {
			json_unpack(msg, "{s?s}", "message", &message);
			rc = sbx_fail(cfg->err, SBX_EVMM, "the VMM's probe failed: %s", message);
			json_decref(msg);
			return rc;
		}
		json_decref(msg);
	}
}

static int host_isolation(sbx_config *cfg, unsigned *available, char **report)
{
	unsigned char rnd[8];
	char id[32], cgroup[4096], *dir = NULL, *text = NULL;
	json_t *msg = NULL, *isolation = NULL, *applied;
	pid_t pid = 0;
	int fd = -1, rc;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return sbx_fail(cfg->err, SBX_EIO, "getrandom: %s", strerror(errno));
	strcpy(id, "probe-");
	for (int i = 0; i < 8; i++)
		sprintf(id + 6 + 2 * i, "%02x", rnd[i]);
	rc = state_dir_make(cfg->state_dir, id, &dir, cfg->err);
	if (rc != SBX_OK)
		return rc;
	rc = sandbox_cgroup_path(cfg, id, cgroup, sizeof(cgroup));
	if (rc == SBX_OK)
		rc = sandbox_cgroup_record(dir, cgroup, cfg->err);
	if (rc == SBX_OK) {
		msg =
		    json_pack("{s:b, s:s, s:o}", "probe", 1, "state_dir", dir, "jail",
			      jail_config_json(cfg, id, cfg->vcpus, cfg->memory_mib, SBX_PROT_ALL));
		rc = msg ? vmm_spawn(cfg, dir, NULL, 0, &pid, &fd)
			 : sbx_fail(cfg->err, SBX_ENOMEM, "no memory");
	}
	if (rc == SBX_OK && jsonl_write(fd, msg) < 0)
		rc = sbx_fail(cfg->err, SBX_EVMM, "the VMM exited before reading its config");
	if (rc == SBX_OK)
		rc = probe_read(cfg, fd, &isolation);
	if (fd >= 0)
		close(fd);
	if (pid > 0) {
		if (rc != SBX_OK)
			kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	sandbox_cgroup_remove(dir, id);
	state_dir_remove(dir);
	free(dir);
	json_decref(msg);
	applied = json_object_get(isolation, "applied");
	if (rc == SBX_OK && (!json_is_integer(applied) ||
			     (report && !(text = json_dumps(isolation, JSON_COMPACT)))))
		rc = sbx_fail(cfg->err, SBX_EPROTO, "the VMM's probe report is malformed");
	if (rc == SBX_OK) {
		*available = (unsigned)json_integer_value(applied);
		if (report)
			*report = text;
	}
	json_decref(isolation);
	return rc;
}

int sbx_host_isolation(sbx_config *cfg, unsigned *available, char **report)
{
	sbx_config *own = NULL;
	int rc;

	if (!available)
		return SBX_EINVAL;
	if (!cfg && !(cfg = own = sbx_config_new()))
		return SBX_ENOMEM;
	rc = host_isolation(cfg, available, report);
	sbx_config_free(own);
	return rc;
}

int sbx_sandbox_isolation(sbx_sandbox *sb, unsigned *applied, char **report)
{
	char path[4200];
	json_t *j;

	if (!sb || !applied)
		return SBX_EINVAL;
	if (sb->isolation) {
		j = json_loads(sb->isolation, 0, NULL);
	} else {
		snprintf(path, sizeof(path), "%s/isolation.json", sb->dir);
		j = json_load_file(path, 0, NULL);
	}
	if (!j || !json_is_integer(json_object_get(j, "applied"))) {
		json_decref(j);
		return sandbox_error(sb, SBX_ESTATE, "no isolation report: the VMM never started");
	}
	if (report && !(*report = json_dumps(j, JSON_COMPACT))) {
		json_decref(j);
		return SBX_ENOMEM;
	}
	*applied = (unsigned)json_integer_value(json_object_get(j, "applied"));
	json_decref(j);
	return SBX_OK;
}
