/* Library internals shared by the files of lib/api. */
#pragma once
#include <sandbox.h>
#include <stdarg.h>
#include <pthread.h>
#include <sys/types.h>

#include <jansson.h>

#include "util/jsonl.h"

/* The VMM has 8 interrupt pins for virtio devices; vsock takes one. */
#define SBX_MAX_DISKS 7
#define SBX_ERRMSG_MAX 512

struct sbx_disk {
	char *path;
	int read_only;
};

#define SBX_JAIL_DEFAULT_ID 65534 /* nobody, nogroup */
#define SBX_CGROUP_DEFAULT_PARENT "/sys/fs/cgroup/libsandbox"

/* An egress policy as the API keeps it: the mode and the entries, as strings in their stored form
 * (lib/api/net.c). */
struct sbx_net_policy {
	int mode;
	char **entries;
	size_t n, cap;
};

struct sbx_config {
	char *kernel, *initramfs, *kernel_args, *init_command, *state_dir, *vmm_path;
	char *cgroup_parent;
	/* The network: none while net_policy is NULL. */
	struct sbx_net_policy *net_policy;
	char *net_mac, *net_pool, *net_dns;
	int net_admit_private;
	struct sbx_disk disks[SBX_MAX_DISKS];
	unsigned ndisks;
	unsigned vcpus;
	unsigned memory_mib;
	int detached;
	unsigned allow_degraded; /* SBX_PROT_* bits */
	unsigned cpu_quota_pct, pids_max;
	unsigned ttl_s;
	long long ttl_deadline; /* wall clock: a fork's children end by their parent's end; 0 */
	unsigned jail_uid, jail_gid;
	char err[SBX_ERRMSG_MAX];
};

struct sbx_sandbox {
	char id[33];
	char *dir;
	pid_t pid;          /* the process we spawned (or its detached child): the VMM's monitor */
	pid_t vmm_pid;      /* the jailed VMM that runs the guest, for monitoring */
	char *isolation;    /* the VMM's isolation report (JSON), NULL until started */
	int is_child; /* pid is our child (reap it); else a detached VMM we only signal */
	int detached;
	int ctl_fd;   /* control channel; -1 for an attached handle or once the VMM is gone */
	int lock_fd;  /* our hold on the liveness lock (state_dir.h), -1 without */
	struct jsonl_reader *reader;
	int ready;          /* the init printed its ready line */
	int wants_agent;    /* no init command: the sandbox is ready once its agent answers */
	int agent_up;
	double ready_seconds;
	int exit_reason;
	sbx_snapshot_info *restore_info; /* how it was restored, NULL if it was created */
	/* Guards err: exec and file calls may run on many threads at once. */
	pthread_mutex_t err_lock;
	char err[SBX_ERRMSG_MAX];
};

/* A growing byte buffer, always NUL-terminated past its data (output, whole-file reads). */
struct sbx_buf {
	char *data;
	size_t len, cap;
};

/* Appends len bytes (none: just makes sure data exists). SBX_OK or SBX_ENOMEM. */
int sbx_buf_append(struct sbx_buf *b, const void *data, size_t len);
/* The data ("" when none yet, or b is NULL) and its length in *len (may be NULL). */
const char *sbx_buf_view(const struct sbx_buf *b, size_t *len);

/* Records code and message as the sandbox's last error (thread-safe); returns code. */
int sandbox_error(sbx_sandbox *sb, int code, const char *message);
/* A handle with an id (NULL: a fresh random one), its state directory and its cgroup record, no
 * VMM yet. Create and restore both start here. */
int sandbox_alloc(sbx_config *cfg, const char *id, sbx_sandbox **out);
/* The VMM config's part every sandbox has, booted or restored: its id, files and sockets, the
 * detached and agent flags, and the "jail" object sized for vcpus and memory_mib. NULL on
 * ENOMEM. */
json_t *sandbox_vmm_json(const sbx_config *cfg, const sbx_sandbox *sb, unsigned vcpus,
			 unsigned memory_mib);
struct net_host;
/* Spawns the VMM (passing net's fds, which it then closes in ours), sends its config msg and
 * waits for it to report "started". SBX code with the message in cfg->err. */
int sandbox_launch(sbx_sandbox *sb, sbx_config *cfg, const json_t *msg, struct net_host *net);
/* Kills whatever is left of the sandbox, removes its files and frees the handle. */
void sandbox_free(sbx_sandbox *sb);
/* Whether the VMM process pid is gone (or a zombie). */
int sandbox_process_gone(pid_t pid);

/* lib/api/command.c: the VMM's command socket (<dir>/control.sock, lib/runtime/control_server.h).
 * A connection to it: the fd, or an SBX code with the sandbox's last error set. */
int sandbox_command_connect(sbx_sandbox *sb);
/* One command on connection fd, with nfds fds passed along (SCM_RIGHTS; they stay ours): sends
 * req, and on an "ok" answer gives it in *reply (caller json_decref's it). A failed answer
 * becomes its SBX code with its message as the sandbox's last error. */
int sandbox_command_on(sbx_sandbox *sb, int fd, json_t *req, const int *fds, unsigned nfds,
		       int timeout_ms, json_t **reply);
/* One command on a connection of its own, with the usual timeout (5 s). */
int sandbox_command(sbx_sandbox *sb, json_t *req, json_t **reply);

/* lib/api/net.c: the network part of a config, for create. */
void net_config_free(sbx_config *cfg);

/* lib/api/config.c: when the time to live of a VMM started now runs out (wall clock, the
 * earlier of now + ttl_s and ttl_deadline; 0: never), and how long that is (at least a
 * second; 0: no limit). */
unsigned config_ttl_left(const sbx_config *cfg);
long long config_ttl_expires(const sbx_config *cfg);
struct net_host;
/* What a sandbox's network is to be: its policy, its upstream DNS server ("IP:PORT"; NULL: the
 * config's, $SANDBOX_NET_DNS or the host's; a config's own wins over it) and admit_private. */
struct net_want {
	const struct sbx_net_policy *policy;
	const char *dns;
	int admit_private;
};
/* Makes the host side of the sandbox in dir (lib/api/net_host.h) and gives the VMM config's "net"
 * object (the tap to arrive as fd vmm_tap_fd, the relay to its DNS guard, if any, as
 * vmm_dns_fd) and the guest's kernel command-line word. SBX code with the message in cfg->err; the
 * caller closes h's fds (net_host_release_fds) and takes the host side down (net_host_down)
 * either way. */
int net_sandbox_prepare(sbx_config *cfg, const struct net_want *want, const char *dir,
			const char *id, int vmm_tap_fd, int vmm_dns_fd, struct net_host *h,
			json_t **net, char *word, size_t word_len);
/* "none", "all" or "allow". */
const char *net_mode_name(int mode);
/* A policy from its wire form; SBX_EPROTO when it is not one. */
int net_policy_from_json(json_t *j, struct sbx_net_policy **out);
/* The policy's wire form {"mode", "allow"}; NULL when out of memory. */
json_t *net_policy_json(const struct sbx_net_policy *p);

/* lib/api/gc.c: removes what dead sandboxes under base left (their cgroup, network and files)
 * and leases of gone ones; how many sandboxes in *removed, a line each in report (both may be
 * NULL). SBX_OK or SBX_EIO (base unreadable). */
int sandbox_gc(const char *base, unsigned *removed, struct sbx_buf *report);

/* Records "message" in buf and returns code, so error paths read `return sbx_fail(...)`. */
__attribute__((format(printf, 3, 4))) int sbx_fail(char *buf, int code, const char *fmt, ...);
/* lib/api/dns_guard_ctl.c: starts the DNS guard of the networked sandbox in dir, whose host
 * table is `table`, relaying to upstream ("IP:PORT") over *dns_fd (the upstream's UDP socket,
 * which it takes), as uid/gid: *dns_fd becomes the VMM's end of the relay. It serves no name
 * until its first policy. SBX code with the message in err (*dns_fd then untouched). */
int dns_guard_spawn(const char *dir, const char *table, const char *upstream, int admit_private,
		    unsigned uid, unsigned gid, int *dns_fd, char *err);
/* Gives the guard of the sandbox in dir policy p and waits until it is in force (SBX_OK at
 * once for a sandbox without a guard). SBX_EIO when the guard is gone or refuses it. */
int dns_guard_send_policy(const char *dir, const sbx_net_policy *p, char *err);
/* The VMM's fds: its control channel, then what vmm_spawn passes. */
#define VMM_CONTROL_FD 3
#define VMM_TAP_FD 4 /* the fds vmm_spawn passes follow the control fd */
#define VMM_DNS_FD 5
#define VMM_LOCK_FD 6 /* the liveness lock (state_dir.h): the VMM only keeps it */
/* Spawns the VMM for sandbox directory dir with its control channel on fd 3 (stderr to
 * <dir>/vmm.log) and pass_fds[i] (-1: none; each above 3 + npass) as its fd 4 + i. *pid and
 * *ctl_fd (ours) on success; SBX_* code with a message in cfg->err. */
int vmm_spawn(sbx_config *cfg, const char *dir, const int *pass_fds, unsigned npass, pid_t *pid,
	      int *ctl_fd);
/* The "jail" object of the VMM's config for sandbox `id` (its cgroup is <parent>/<id>); NULL
 * on ENOMEM. vcpus sizes pids.max, memory_mib memory.max; allow: SBX_PROT_* bits that may be
 * missing. */
json_t *jail_config_json(const sbx_config *cfg, const char *id, unsigned vcpus, unsigned memory_mib,
			 unsigned allow);
/* The cgroup path a sandbox `id` made from cfg uses, in buf. SBX_OK or SBX_EINVAL (too long). */
int sandbox_cgroup_path(const sbx_config *cfg, const char *id, char *buf, size_t len);
/* Refuses jail settings that cannot work with the rest of cfg for a machine of vcpus vCPUs
 * (SBX_EINVAL, SBX_ERANGE). */
int sandbox_jail_check(sbx_config *cfg, unsigned vcpus);
/* Writes <dir>/cgroup naming the cgroup, so whoever destroys the sandbox can remove it. */
int sandbox_cgroup_record(const char *dir, const char *path, char *err);
/* Removes the cgroup recorded in <dir>/cgroup (after killing anything left in it). */
void sandbox_cgroup_remove(const char *dir, const char *id);
/* Maps an error name sent by the VMM ("EKERNEL") back to its code; SBX_EVMM if unknown. */
int sbx_err_from_name(const char *name);
/* strdup that reports failure as SBX_ENOMEM; replaces *dst (freeing the old value). */
int sbx_set_string(char **dst, const char *src);
