/* A whole virtual machine: memory, KVM, boot, ACPI, serial console, power device, virtio disks,
 * vsock and net, vCPU threads and the device thread. The VMM process runs exactly one. */
#pragma once
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>

#include "vmm_config.h"
#include "util/evloop.h"
#include "virtio/mmio.h"
#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/kvm_vm.h"
#include "vmm/vcpu.h"

enum machine_thread { MACHINE_THREAD_VCPU, MACHINE_THREAD_DEVICE };

/* Where the machine's events go (the control channel). Called from any thread. */
struct machine_events {
	void (*ready)(void *ctx, double seconds);
	/* The machine stopped: reason is "poweroff", "reboot" or "crash". Must not return: the
	 * process exits, and with it the VM. */
	void (*stopped)(void *ctx, const char *reason, const char *detail);
	void *ctx;
	/* Optional: runs first on every vCPU and device thread (the jail installs its seccomp
	 * filter there). The guest runs only once every thread returned 0. */
	int (*thread_start)(void *ctx, enum machine_thread kind);
};

#define MACHINE_LINE_MAX 128
#define MACHINE_MAX_KICKS (VMM_MAX_VIRTIO * VIRTIO_MMIO_MAX_QUEUES)

struct snapshot_restore;

struct machine {
	const struct vmm_config *cfg;
	struct machine_events events;
	double start_time;

	struct guest_mem mem;
	struct kvm_vm vm;
	struct bus pio, mmio;
	struct vcpu vcpus[VMM_MAX_VCPUS];
	pthread_t vcpu_threads[VMM_MAX_VCPUS];
	struct vcpu_env vcpu_env;

	struct serial *serial;
	struct power_dev *power;
	int console_fd;
	char line[MACHINE_LINE_MAX]; /* start of the console line being written, to spot "ready" */
	size_t line_len;
	int ready_reported;

	struct virtio_mmio virtio[VMM_MAX_VIRTIO]; /* the disks in config order, vsock, net */
	unsigned nvirtio;
	struct vsock *vsock; /* NULL without one */
	/* The network, all NULL (dns_fd -1) without one: virtio-net, its egress policy, the DNS
	 * server and its relay to the upstream server through the DNS guard (device thread).
	 * policy is the JSON form of the policy in force, touched by the main thread only. */
	struct virtio_net *net;
	struct egress *egress;
	struct resolver *resolver;
	int dns_fd;
	json_t *policy;
	struct evloop *devloop;
	pthread_t dev_thread;
	int kick_fds[MACHINE_MAX_KICKS]; /* every queue's ioeventfd, to replay kicks on restore */
	unsigned nkicks;
	int stopping;

	/* Thread start-up: each thread reports to machine_start, then waits for its verdict. */
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	unsigned threads_up;
	int threads_rc; /* first failure of thread_start */
	int gate;       /* 0: wait, 1: run, -1: never run */

	/* Holding the vCPUs for a snapshot (machine_pause). */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	int pause_wanted;
	unsigned vcpus_held;

	struct snapshot_restore *restore; /* while restoring from cfg->restore_dir */
	/* What snapshots need and the jail would not let them open (snapshot_prepare). */
	char *disk_paths[VMM_MAX_DISKS]; /* absolute */
	int pagemap_fd;			 /* /proc/self/pagemap, -1 for memfd RAM */
};

/* Builds everything from the config and loads the kernel. -errno with a message in err:
 * -ENOENT (a file), -ENOEXEC (not a kernel), -E2BIG (does not fit), else a KVM failure. With
 * cfg->restore_dir it rebuilds the machine of that snapshot instead of booting: -EBADMSG then
 * for a snapshot that is corrupt, truncated, of another version or not for this config. */
int machine_build(struct machine *m, const struct vmm_config *cfg,
		  const struct machine_events *ev, char *err, size_t errlen);
/* Starts the device thread and the vCPU threads and returns once each has run thread_start;
 * the guest runs only if all of them (and every pthread_create) succeeded. */
int machine_start(struct machine *m, char *err, size_t errlen);
/* Replaces the egress policy (JSON wire form, see netctl.h) from the main thread: the next frame
 * is judged by it. -EINVAL with a message in err (the old policy stays), -ENOMEM. */
int machine_net_set_policy(struct machine *m, json_t *policy, char *err, size_t errlen);
/* Holds every vCPU (between instructions, its I/O complete) and then the device thread (between
 * callbacks, so no request is half served). -ETIMEDOUT if they did not stop within timeout_ms;
 * the machine then runs on. Main thread only. */
int machine_pause(struct machine *m, int timeout_ms);
void machine_resume(struct machine *m);
/* Stops the machine from outside (the "stop" command). Does not return. */
void machine_stop(struct machine *m, const char *reason, const char *detail);
