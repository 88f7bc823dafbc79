#include "vmm_config.h"

#include <errno.h>
#include <stdio.h>
#include <sandbox.h>
#include <stdlib.h>
#include <string.h>

#include "net/packet.h"
#include "virtio/net.h"

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
	c->vsock_cid = (unsigned long long)cid;
	return 0;
}

static int vmm_config_ip(const char *s, uint32_t *ip)
{
	return pkt_ipv4_parse(s, strlen(s), ip);
}

/* The optional "net" object; the policy itself is checked when the machine installs it. */
static int vmm_config_parse_net(json_t *net, struct vmm_config *c, char *err, size_t errlen)
{
	const char *mac, *guest, *gateway;
	json_error_t jerr;
	struct vmm_net *n = &c->net;

	n->tap_fd = n->dns_fd = -1;
	if (!net || json_is_null(net))
		return 0;
	if (json_unpack_ex(net, &jerr, 0, "{s:i, s:s, s:s, s:s, s?i, s?b, s:o}", "tap_fd",
			   &n->tap_fd, "mac", &mac, "guest_ip", &guest, "gateway_ip", &gateway,
			   "dns_fd", &n->dns_fd, "admit_private", &n->admit_private, "policy",
			   &n->policy) < 0) {
		snprintf(err, errlen, "config: net: %s", jerr.text);
		return -EINVAL;
	}
	if (n->tap_fd < 0 || virtio_net_mac_parse(mac, n->mac) < 0 ||
	    vmm_config_ip(guest, &n->guest_ip) < 0 || vmm_config_ip(gateway, &n->gateway_ip) < 0 ||
	    !json_is_object(n->policy)) {
		snprintf(err, errlen, "config: net: bad tap fd, MAC or address");
		n->tap_fd = n->dns_fd = -1;
		return -EINVAL;
	}
	return 0;
}

static int vmm_config_parse_jail(json_t *jail, struct vmm_jail *j, char *err, size_t errlen)
{
	json_error_t jerr;
	json_int_t uid = -1, gid = -1, mem = 0, pids = 0, cpu = 0, allow = 0, ttl = 0;

	if (json_unpack_ex(jail, &jerr, 0, "{s:I, s:I, s?s, s?I, s?I, s?I, s?I, s?I}", "uid", &uid,
			   "gid", &gid, "cgroup", &j->cgroup, "memory_max_mib", &mem, "pids_max",
			   &pids, "cpu_quota_pct", &cpu, "allow_degraded", &allow, "ttl_s",
			   &ttl) < 0) {
		snprintf(err, errlen, "config: jail: %s", jerr.text);
		return -EINVAL;
	}
	if (uid <= 0 || uid > 0xfffffffeLL || gid <= 0 || gid > 0xfffffffeLL || mem < 0 ||
	    mem > (1 << 21) || pids < 0 || pids > (1 << 22) || cpu < 0 || cpu > 100000 ||
	    allow < 0 || allow > SBX_PROT_ALL || ttl < 0 || ttl > SBX_TTL_MAX_S) {
		snprintf(err, errlen, "config: jail: a value is out of range");
		return -EINVAL;
	}
	j->uid = (unsigned)uid;
	j->gid = (unsigned)gid;
	j->memory_max_mib = (unsigned long long)mem;
	j->pids_max = (unsigned)pids;
	j->cpu_quota_pct = (unsigned)cpu;
	j->allow_degraded = (unsigned)allow;
	j->ttl_s = (unsigned)ttl;
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
	c->net.tap_fd = -1;
	c->agent = 1;
	if (json_unpack(msg, "{s:b}", "probe", &probe) == 0 && probe)
		return vmm_config_parse_probe(msg, c, err, errlen);
	c->agent = 1;
	if (json_unpack_ex(msg, &jerr, 0, "{s?s, s?s, s?s, s?s, s?b}", "restore", &c->restore_dir,
			   "id", &c->id, "kernel", &c->kernel, "initramfs", &c->initramfs, "agent",
			   &c->agent) < 0 ||
	    json_unpack_ex(msg, &jerr, 0, "{s?s, s:s, s:i, s:I, s:o}", "cmdline", &c->cmdline,
			   "console_log", &c->console_log, "vcpus", &vcpus, "memory_mib", &mib,
			   "disks", &disks) < 0) {
		snprintf(err, errlen, "config: %s", jerr.text);
		return -EINVAL;
	}
	if (!c->restore_dir && (!c->kernel || !c->initramfs || !c->cmdline)) {
		snprintf(err, errlen, "config: kernel, initramfs and cmdline are required to boot");
		return -EINVAL;
	}
	if (c->restore_dir && c->restore_dir[0] != '/') {
		snprintf(err, errlen, "config: restore directory is not absolute");
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
	if (json_unpack_ex(msg, &jerr, 0, "{s:s, s?b, s?s}", "state_dir", &c->state_dir,
			   "detached", &c->detached, "control", &c->control_path) < 0) {
		snprintf(err, errlen, "config: %s", jerr.text);
		return -EINVAL;
	}
	if (vmm_config_parse_jail(json_object_get(msg, "jail"), &c->jail, err, errlen) < 0 ||
	    vmm_config_parse_vsock(json_object_get(msg, "vsock"), c, err, errlen) < 0 ||
	    vmm_config_parse_net(json_object_get(msg, "net"), c, err, errlen) < 0)
		return -EINVAL;
	if (c->ndisks + (c->vsock_uds != NULL) + (c->net.tap_fd >= 0) > VMM_MAX_VIRTIO) {
		snprintf(err, errlen, "config: %u disks, vsock and net need more than %d interrupts",
			 c->ndisks, VMM_MAX_VIRTIO);
		return -EINVAL;
	}
	return 0;
}
