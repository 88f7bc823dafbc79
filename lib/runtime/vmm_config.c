#include "vmm_config.h"

#include <errno.h>
#include <stdio.h>
#include <sandbox.h>
#include <string.h>

/* The optional "vsock" object; absent or null means no vsock device. */
static int vmm_config_parse_vsock(json_t *vsock, struct vmm_config *c, char *err, size_t errlen)
{
	json_error_t jerr;
	json_int_t cid = 0;

	if (!vsock || json_is_null(vsock))
		return 0;
	if (json_unpack_ex(vsock, &jerr, 0, "{s:I, s:s}", "cid", &cid, "uds", &c->vsock_uds) < 0) {
		snprintf(err, errlen, "config: vsock: %s", jerr.text);
		return -EINVAL;
	}
	/* 0-2 are reserved, -1U is VMADDR_CID_ANY, and Linux keeps CIDs in 32 bits. */
	if (cid < 3 || cid > 0xfffffffeLL) {
		snprintf(err, errlen, "config: vsock cid %lld out of range", (long long)cid);
		return -EINVAL;
	}
	if (c->ndisks + 1 > VMM_MAX_VIRTIO) {
		snprintf(err, errlen, "config: %u disks and vsock need more than %d interrupts",
			 c->ndisks, VMM_MAX_VIRTIO);
		return -EINVAL;
	}
	c->vsock_cid = (unsigned long long)cid;
	return 0;
}

static int vmm_config_parse_jail(json_t *jail, struct vmm_jail *j, char *err, size_t errlen)
{
	json_error_t jerr;
	json_int_t uid = -1, gid = -1, mem = 0, pids = 0, cpu = 0, allow = 0;

	if (json_unpack_ex(jail, &jerr, 0, "{s:I, s:I, s?s, s?I, s?I, s?I, s?I}", "uid", &uid,
			   "gid", &gid, "cgroup", &j->cgroup, "memory_max_mib", &mem, "pids_max",
			   &pids, "cpu_quota_pct", &cpu, "allow_degraded", &allow) < 0) {
		snprintf(err, errlen, "config: jail: %s", jerr.text);
		return -EINVAL;
	}
	if (uid <= 0 || uid > 0xfffffffeLL || gid <= 0 || gid > 0xfffffffeLL || mem < 0 ||
	    mem > (1 << 21) || pids < 0 || pids > (1 << 22) || cpu < 0 || cpu > 100000 ||
	    allow < 0 || allow > SBX_PROT_ALL) {
		snprintf(err, errlen, "config: jail: a value is out of range");
		return -EINVAL;
	}
	j->uid = (unsigned)uid;
	j->gid = (unsigned)gid;
	j->memory_max_mib = (unsigned long long)mem;
	j->pids_max = (unsigned)pids;
	j->cpu_quota_pct = (unsigned)cpu;
	j->allow_degraded = (unsigned)allow;
	return 0;
}

/* A probe only needs to know where it would live and how it would be jailed. */
static int vmm_config_parse_probe(json_t *msg, struct vmm_config *c, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *jail;

	if (json_unpack_ex(msg, &jerr, 0, "{s:s, s:o}", "state_dir", &c->state_dir, "jail",
			   &jail) < 0) {
		snprintf(err, errlen, "config: %s", jerr.text);
		return -EINVAL;
	}
	c->probe = 1;
	return vmm_config_parse_jail(jail, &c->jail, err, errlen);
}

int vmm_config_parse(json_t *msg, struct vmm_config *c, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *disks, *d;
	size_t i;
	int vcpus = 0;
	json_int_t mib = 0;

	int probe = 0;

	memset(c, 0, sizeof(*c));
	if (json_unpack(msg, "{s:b}", "probe", &probe) == 0 && probe)
		return vmm_config_parse_probe(msg, c, err, errlen);
	if (json_unpack_ex(msg, &jerr, 0, "{s:s, s:s, s:s, s:s, s:i, s:I, s:o}", "kernel",
			   &c->kernel, "initramfs", &c->initramfs, "cmdline", &c->cmdline,
			   "console_log", &c->console_log, "vcpus", &vcpus, "memory_mib", &mib,
			   "disks", &disks) < 0) {
		snprintf(err, errlen, "config: %s", jerr.text);
		return -EINVAL;
	}
	if (vcpus < 1 || vcpus > VMM_MAX_VCPUS || mib < 64 || mib > (1 << 20) ||
	    !json_is_array(disks) || json_array_size(disks) > VMM_MAX_DISKS) {
		snprintf(err, errlen, "config: vcpus, memory or disks out of range");
		return -EINVAL;
	}
	c->vcpus = (unsigned)vcpus;
	c->memory_mib = (unsigned long long)mib;
	json_array_foreach(disks, i, d) {
		if (json_unpack(d, "{s:s, s:b}", "path", &c->disks[i].path, "read_only",
				&c->disks[i].read_only) < 0) {
			snprintf(err, errlen, "config: disk %zu malformed", i);
			return -EINVAL;
		}
	}
	c->ndisks = (unsigned)json_array_size(disks);
	if (json_unpack_ex(msg, &jerr, 0, "{s:s, s?b}", "state_dir", &c->state_dir, "detached",
			   &c->detached) < 0) {
		snprintf(err, errlen, "config: %s", jerr.text);
		return -EINVAL;
	}
	if (vmm_config_parse_jail(json_object_get(msg, "jail"), &c->jail, err, errlen) < 0)
		return -EINVAL;
	return vmm_config_parse_vsock(json_object_get(msg, "vsock"), c, err, errlen);
}
