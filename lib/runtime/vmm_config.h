/* The VMM's configuration as the library sends it (first line on the control channel). */
#pragma once
#include <jansson.h>

#define VMM_MAX_DISKS 8
/* virtio-mmio devices interrupt on IOAPIC pins 16 to 23: the disks and vsock share those 8. */
#define VMM_MAX_VIRTIO 8
#define VMM_MAX_VCPUS 64

struct vmm_disk {
	const char *path;
	int read_only;
};

/* How the VMM is jailed ("jail": {...}); see lib/jail and sbx_config_set_* in sandbox.h. */
struct vmm_jail {
	unsigned uid, gid;          /* the ids to run as when started as root */
	const char *cgroup;         /* the sandbox's cgroup path, NULL for none */
	unsigned long long memory_max_mib; /* memory.max, guest memory included; 0: none */
	unsigned pids_max;          /* 0: none */
	unsigned cpu_quota_pct;     /* 0: none */
	unsigned allow_degraded;    /* SBX_PROT_* bits that may be missing */
};

/* Strings point into the JSON object, which must outlive the config. */
struct vmm_config {
	const char *kernel, *initramfs, *cmdline, *console_log;
	unsigned vcpus;
	unsigned long long memory_mib;
	struct vmm_disk disks[VMM_MAX_DISKS];
	unsigned ndisks;
	const char *state_dir; /* the sandbox's directory: the exit record goes there */
	int detached;          /* keep running when the control channel closes */
	/* Optional virtio-vsock ("vsock": {"cid": N, "uds": PATH}); vsock_uds NULL without it. */
	unsigned long long vsock_cid;
	const char *vsock_uds;
	struct vmm_jail jail;
	int probe; /* only try the jail and report it ("probe" event); no machine */
};

/* 0, or -EINVAL with a message in err (the library validated already; this guards the VMM).
 * A probe config ("probe": true) needs only "state_dir" and "jail". */
int vmm_config_parse(json_t *msg, struct vmm_config *c, char *err, size_t errlen);
