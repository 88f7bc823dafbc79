#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define SBX_DEFAULT_MEMORY_MIB 512
#define SBX_MIN_MEMORY_MIB 128
#define SBX_MAX_MEMORY_MIB 262144
#define SBX_MAX_VCPUS 64

sbx_config *sbx_config_new(void)
{
	sbx_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg) {
		cfg->vcpus = 1;
		cfg->memory_mib = SBX_DEFAULT_MEMORY_MIB;
		cfg->jail_uid = SBX_JAIL_DEFAULT_ID;
		cfg->jail_gid = SBX_JAIL_DEFAULT_ID;
	}
	return cfg;
}

void sbx_config_free(sbx_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->kernel);
	free(cfg->initramfs);
	free(cfg->kernel_args);
	free(cfg->init_command);
	free(cfg->state_dir);
	free(cfg->vmm_path);
	free(cfg->cgroup_parent);
	net_config_free(cfg);
	for (unsigned i = 0; i < cfg->ndisks; i++)
		free(cfg->disks[i].path);
	free(cfg);
}

const char *sbx_config_last_error(const sbx_config *cfg)
{
	return cfg ? cfg->err : "no config";
}

int sbx_set_string(char **dst, const char *src)
{
	char *copy = NULL;

	if (src && !(copy = strdup(src)))
		return SBX_ENOMEM;
	free(*dst);
	*dst = copy;
	return SBX_OK;
}

/* A setter for a path option: non-empty, and copied. */
static int config_set_path(sbx_config *cfg, char **field, const char *what, const char *path)
{
	if (!cfg)
		return SBX_EINVAL;
	if (!path || !*path)
		return sbx_fail(cfg->err, SBX_EINVAL, "%s: empty path", what);
	return sbx_set_string(field, path);
}

int sbx_config_set_kernel(sbx_config *cfg, const char *path)
{
	return config_set_path(cfg, &cfg->kernel, "kernel", path);
}

int sbx_config_set_initramfs(sbx_config *cfg, const char *path)
{
	return config_set_path(cfg, &cfg->initramfs, "initramfs", path);
}

int sbx_config_set_state_dir(sbx_config *cfg, const char *path)
{
	return config_set_path(cfg, &cfg->state_dir, "state directory", path);
}

int sbx_config_set_vmm_path(sbx_config *cfg, const char *path)
{
	return config_set_path(cfg, &cfg->vmm_path, "VMM path", path);
}

int sbx_config_add_disk(sbx_config *cfg, const char *path, int read_only)
{
	int rc;

	if (!cfg)
		return SBX_EINVAL;
	if (cfg->ndisks == SBX_MAX_DISKS)
		return sbx_fail(cfg->err, SBX_ERANGE, "at most %d disks", SBX_MAX_DISKS);
	rc = config_set_path(cfg, &cfg->disks[cfg->ndisks].path, "disk", path);
	if (rc == SBX_OK)
		cfg->disks[cfg->ndisks++].read_only = read_only != 0;
	return rc;
}

int sbx_config_set_vcpus(sbx_config *cfg, unsigned vcpus)
{
	if (!cfg)
		return SBX_EINVAL;
	if (vcpus < 1 || vcpus > SBX_MAX_VCPUS)
		return sbx_fail(cfg->err, SBX_ERANGE, "vCPUs: %u is outside 1..%d", vcpus,
				SBX_MAX_VCPUS);
	cfg->vcpus = vcpus;
	return SBX_OK;
}

int sbx_config_set_memory_mib(sbx_config *cfg, unsigned mib)
{
	if (!cfg)
		return SBX_EINVAL;
	if (mib < SBX_MIN_MEMORY_MIB || mib > SBX_MAX_MEMORY_MIB)
		return sbx_fail(cfg->err, SBX_ERANGE, "memory: %u MiB is outside %d..%d MiB", mib,
				SBX_MIN_MEMORY_MIB, SBX_MAX_MEMORY_MIB);
	cfg->memory_mib = mib;
	return SBX_OK;
}

int sbx_config_set_detached(sbx_config *cfg, int detached)
{
	if (!cfg)
		return SBX_EINVAL;
	cfg->detached = detached != 0;
	return SBX_OK;
}

int sbx_config_set_kernel_args(sbx_config *cfg, const char *args)
{
	return cfg ? sbx_set_string(&cfg->kernel_args, args) : SBX_EINVAL;
}

int sbx_config_set_init_command(sbx_config *cfg, const char *command)
{
	return cfg ? sbx_set_string(&cfg->init_command, command) : SBX_EINVAL;
}

int sbx_config_set_allow_degraded(sbx_config *cfg, unsigned protections)
{
	if (!cfg)
		return SBX_EINVAL;
	if (protections & ~(unsigned)SBX_PROT_ALL)
		return sbx_fail(cfg->err, SBX_EINVAL,
				"allow degraded: unknown protection bits 0x%x",
				protections & ~(unsigned)SBX_PROT_ALL);
	cfg->allow_degraded = protections;
	return SBX_OK;
}

int sbx_config_set_cpu_quota(sbx_config *cfg, unsigned percent)
{
	if (!cfg)
		return SBX_EINVAL;
	/* The bound for the vCPUs actually configured is checked at create. */
	if (percent > (SBX_MAX_VCPUS + 1) * 100)
		return sbx_fail(cfg->err, SBX_ERANGE, "CPU quota: %u%% is more than %d%%", percent,
				(SBX_MAX_VCPUS + 1) * 100);
	cfg->cpu_quota_pct = percent;
	return SBX_OK;
}

int sbx_config_set_ttl(sbx_config *cfg, unsigned seconds)
{
	if (!cfg)
		return SBX_EINVAL;
	if (seconds > SBX_TTL_MAX_S)
		return sbx_fail(cfg->err, SBX_ERANGE, "time to live: %u s is more than %u s", seconds,
				SBX_TTL_MAX_S);
	cfg->ttl_s = seconds;
	return SBX_OK;
}

long long config_ttl_expires(const sbx_config *cfg)
{
	long long own = cfg->ttl_s ? (long long)time(NULL) + cfg->ttl_s : 0;

	if (cfg->ttl_deadline && (!own || cfg->ttl_deadline < own))
		return cfg->ttl_deadline;
	return own;
}

unsigned config_ttl_left(const sbx_config *cfg)
{
	long long end = config_ttl_expires(cfg), left = end - (long long)time(NULL);

	if (!end)
		return 0;
	return left > 1 ? (unsigned)left : 1;
}

int sbx_config_set_pids_max(sbx_config *cfg, unsigned pids)
{
	if (!cfg)
		return SBX_EINVAL;
	if (pids > 1u << 22)
		return sbx_fail(cfg->err, SBX_ERANGE, "pids limit: %u is more than %u", pids,
				1u << 22);
	cfg->pids_max = pids;
	return SBX_OK;
}

int sbx_config_set_cgroup_parent(sbx_config *cfg, const char *path)
{
	if (!cfg)
		return SBX_EINVAL;
	if (!path || path[0] != '/' || path[1] == 0)
		return sbx_fail(cfg->err, SBX_EINVAL, "cgroup parent: not an absolute path");
	return sbx_set_string(&cfg->cgroup_parent, path);
}

int sbx_config_set_jail_user(sbx_config *cfg, unsigned uid, unsigned gid)
{
	if (!cfg)
		return SBX_EINVAL;
	if (uid == 0 || gid == 0 || uid == (unsigned)-1 || gid == (unsigned)-1)
		return sbx_fail(cfg->err, SBX_EINVAL, "jail user: %u/%u is root or invalid", uid,
				gid);
	cfg->jail_uid = uid;
	cfg->jail_gid = gid;
	return SBX_OK;
}
