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

/* Strings point into the JSON object, which must outlive the config. */
struct vmm_config {
	/* kernel, initramfs and cmdline are required for a boot; for a restore they are only
	 * carried into the next snapshot's manifest (NULL if absent). */
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
	const char *id;          /* the sandbox's id, for snapshot manifests (may be NULL) */
	int agent;               /* the guest runs the agent ("agent", default 1) */
	const char *restore_dir; /* "restore": resume the snapshot in this directory, not boot */
};

/* 0, or -EINVAL with a message in err (the library validated already; this guards the VMM). */
int vmm_config_parse(json_t *msg, struct vmm_config *c, char *err, size_t errlen);
