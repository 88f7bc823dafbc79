#include "vmm_config.h"

#include <errno.h>
#include <stdio.h>
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

int vmm_config_parse(json_t *msg, struct vmm_config *c, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *disks, *d;
	size_t i;
	int vcpus = 0;
	json_int_t mib = 0;

	memset(c, 0, sizeof(*c));
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
	if (json_unpack_ex(msg, &jerr, 0, "{s:s, s?b}", "state_dir", &c->state_dir, "detached",
			   &c->detached) < 0) {
		snprintf(err, errlen, "config: %s", jerr.text);
		return -EINVAL;
	}
	return vmm_config_parse_vsock(json_object_get(msg, "vsock"), c, err, errlen);
}
