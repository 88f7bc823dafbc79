/* The VMM's configuration as the library sends it (first line on the control channel). */
#pragma once
#include <jansson.h>
#include <stdint.h>

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
	unsigned ttl_s;             /* the monitor stops the VMM this long after the start; 0: never */
};

/* The optional network ("net" object): virtio-net over a tap the library made and passed as an
 * open fd, and the egress policy with its DNS server. tap_fd is -1 without one. */
struct vmm_net {
	int tap_fd;
	uint8_t mac[6];                 /* the guest's */
	uint32_t guest_ip, gateway_ip;  /* host order; the gateway is also the DNS server */
	/* The DNS guard's relay (SOCK_SEQPACKET, one DNS message a packet), which takes queries
	 * upstream and brings the answers; -1: no upstream (allowed names fail). */
	int dns_fd;
	int admit_private;              /* DNS answers in private ranges are admitted too */
	json_t *policy;                 /* {"mode": "none"|"all"|"allow", "allow": [ENTRY...]} */
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
	struct vmm_jail jail;
	int probe; /* only try the jail and report it ("probe" event); no machine */
	/* Where to listen for commands from any process ("control": PATH); NULL: nowhere. */
	const char *control_path;
	struct vmm_net net;
	const char *id;          /* the sandbox's id, for snapshot manifests (may be NULL) */
	int agent;               /* the guest runs the agent ("agent", default 1) */
	const char *restore_dir; /* "restore": resume the snapshot in this directory, not boot */
};

/* 0, or -EINVAL with a message in err (the library validated already; this guards the VMM).
 * A probe config ("probe": true) needs only "state_dir" and "jail". */
int vmm_config_parse(json_t *msg, struct vmm_config *c, char *err, size_t errlen);
