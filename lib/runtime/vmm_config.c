#include "vmm_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int vmm_config_parse(json_t *msg, struct vmm_config *c, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *disks, *d;
	size_t i;
	int vcpus = 0;
	json_int_t mib = 0;

	memset(c, 0, sizeof(*c));
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
	return 0;
}
