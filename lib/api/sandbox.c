#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_client.h"
#include "internal.h"
#include "net_host.h"
#include "state_dir.h"
#include "util/base64.h"
#include "util/io.h"

/* Words every guest gets: our console, one UART, no PCI bus to probe, reboot on panic, and
 * reboot through the keyboard controller's reset line (with the default ACPI-first order the
 * guest stalled before touching any port; see the issue note). */
#define SBX_BASE_CMDLINE "console=ttyS0 8250.nr_uarts=1 pci=off panic=-1 reboot=k quiet"
#define SBX_SPAWN_TIMEOUT_MS 30000
#define SBX_STOP_TIMEOUT_MS 5000
#define SBX_MAX_DISKS_NET (SBX_MAX_DISKS - 1) /* the network takes a virtio interrupt too */
#define GUEST_CID 3 /* each sandbox is its own VM, so every guest can have the first free CID */
#define AGENT_RETRY_MS 20
#define AGENT_HELLO_MS 5000

extern char **environ;


static const char *vmm_path(const sbx_config *cfg)
{
	const char *env = getenv("SANDBOX_VMM");

	if (cfg->vmm_path)
		return cfg->vmm_path;
	if (env && *env)
		return env;
	/* Installed location first; the build tree's binary lets tests run before install. */
	return access(SBX_VMM_INSTALLED_PATH, X_OK) == 0 ? SBX_VMM_INSTALLED_PATH
							 : SBX_VMM_BUILD_PATH;
}

/* The kernel command line: our base words, the network's (if any), the init's command, then
 * the caller's extras. */
static char *config_cmdline(const sbx_config *cfg, const char *net_word)
{
	size_t cmd_len = cfg->init_command ? strlen(cfg->init_command) : 0;
	size_t size = sizeof(SBX_BASE_CMDLINE) + 16 + BASE64_ENCODED_LEN(cmd_len) +
		      (cfg->kernel_args ? strlen(cfg->kernel_args) + 1 : 0) +
		      (net_word ? strlen(net_word) + 1 : 0);
	char *line = malloc(size), *p;

	if (!line)
		return NULL;
	p = line + sprintf(line, "%s", SBX_BASE_CMDLINE);
	if (net_word)
		p += sprintf(p, " %s", net_word);
	if (cfg->init_command) {
		p += sprintf(p, " sbx.cmd=");
		base64_encode((const unsigned char *)cfg->init_command, cmd_len, p);
		p += strlen(p);
	}
	if (cfg->kernel_args)
		sprintf(p, " %s", cfg->kernel_args);
	return line;
}

int sbx_config_kernel_cmdline(const sbx_config *cfg, char **cmdline)
{
	char *line;

	if (!cfg || !cmdline)
		return SBX_EINVAL;
	line = config_cmdline(cfg, NULL);
	if (!line)
		return SBX_ENOMEM;
	*cmdline = line;
	return SBX_OK;
}

/* Checks a file the VMM will open and makes its path absolute: the jailed VMM opens it from
 * another working directory. */
static int check_file(sbx_config *cfg, const char *what, char **path)
{
	char abs[PATH_MAX];
	struct stat st;

	if (!*path)
		return sbx_fail(cfg->err, SBX_EINVAL, "no %s set", what);
	if (stat(*path, &st) < 0)
		return sbx_fail(cfg->err, errno == ENOENT ? SBX_ENOENT : SBX_EIO, "%s %s: %s", what,
				*path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return sbx_fail(cfg->err, SBX_EINVAL, "%s %s: not a regular file", what, *path);
	if ((*path)[0] == '/')
		return SBX_OK;
	if (!realpath(*path, abs))
		return sbx_fail(cfg->err, SBX_EIO, "%s %s: %s", what, *path, strerror(errno));
	return sbx_set_string(path, abs) == SBX_OK ? SBX_OK
						   : sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
}

static int config_check(sbx_config *cfg)
{
	int rc = check_file(cfg, "kernel", &cfg->kernel);

	if (rc == SBX_OK)
		rc = check_file(cfg, "initramfs", &cfg->initramfs);
	if (rc == SBX_OK && cfg->ndisks == 0)
		return sbx_fail(cfg->err, SBX_EINVAL, "no rootfs disk added");
	if (rc == SBX_OK && cfg->net_policy && cfg->ndisks > SBX_MAX_DISKS_NET)
		return sbx_fail(cfg->err, SBX_ERANGE, "at most %d disks with a network",
				SBX_MAX_DISKS_NET);
	for (unsigned i = 0; rc == SBX_OK && i < cfg->ndisks; i++)
		rc = check_file(cfg, i == 0 ? "rootfs" : "disk", &cfg->disks[i].path);
	return rc;
}

json_t *sandbox_vmm_json(const sbx_config *cfg, const sbx_sandbox *sb, unsigned vcpus,
			 unsigned memory_mib)
{
	char console[4096], vsock[4096], control[4096];

	snprintf(console, sizeof(console), "%s/console.log", sb->dir);
	snprintf(vsock, sizeof(vsock), "%s/vsock.sock", sb->dir);
	snprintf(control, sizeof(control), "%s/control.sock", sb->dir);
	return json_pack("{s:s, s:s, s:{s:i, s:s}, s:s, s:b, s:s, s:o, s:b}", "id", sb->id,
			 "console_log", console, "vsock", "cid", GUEST_CID, "uds", vsock,
			 "state_dir", sb->dir, "detached", cfg->detached, "control", control,
			 "jail",
			 jail_config_json(cfg, sb->id, vcpus, memory_mib, cfg->allow_degraded),
			 "agent", sb->wants_agent);
}

/* The VMM's config for a boot; net (the network's part, or NULL) is consumed. */
static json_t *config_to_json(const sbx_config *cfg, const sbx_sandbox *sb, const char *cmdline,
			      json_t *net)
{
	json_t *disks = json_array(), *msg = sandbox_vmm_json(cfg, sb, cfg->vcpus, cfg->memory_mib),
	       *boot;
	int ok = msg != NULL;

	/* A path that is not UTF-8 fails json_pack: refused, never a disk silently left out. */
	for (unsigned i = 0; ok && i < cfg->ndisks; i++)
		ok = json_array_append_new(disks,
					   json_pack("{s:s, s:b}", "path", cfg->disks[i].path,
						     "read_only", cfg->disks[i].read_only)) == 0;
	/* json_pack takes net even when it fails. */
	boot = json_pack("{s:s, s:s, s:s, s:i, s:i, s:O, s:o?}", "kernel", cfg->kernel, "initramfs",
			 cfg->initramfs, "cmdline", cmdline, "vcpus", (int)cfg->vcpus, "memory_mib",
			 (int)cfg->memory_mib, "disks", disks, "net", net);
	if (!ok || !boot || json_object_update(msg, boot) < 0) {
		json_decref(msg);
		msg = NULL;
	}
	json_decref(boot);
	json_decref(disks);
	return msg;
}

int vmm_spawn(sbx_config *cfg, const char *dir, const int *pass_fds, unsigned npass, pid_t *pid,
	      int *ctl_fd)
{
	posix_spawn_file_actions_t fa;
	char log[4096], fdarg[16];
	const char *vmm = vmm_path(cfg);
	char *argv[] = { (char *)vmm, "--control-fd", fdarg, NULL };
	int sv[2], rc;

	if (access(vmm, X_OK) < 0)
		return sbx_fail(cfg->err, SBX_EVMM, "VMM executable %s: %s", vmm, strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return sbx_fail(cfg->err, SBX_EIO, "socketpair: %s", strerror(errno));
	snprintf(log, sizeof(log), "%s/vmm.log", dir);
	snprintf(fdarg, sizeof(fdarg), "%d", VMM_CONTROL_FD);
	posix_spawn_file_actions_init(&fa);
	/* The control fd first: a caller with stdio closed gets sv[1] among fds 0-2, which the
	 * opens below replace. */
	posix_spawn_file_actions_adddup2(&fa, sv[1], VMM_CONTROL_FD);
	/* Nothing else of the caller's reaches the VMM: it runs next to a hostile guest. (A close
	 * of an fd that is not open is no error for posix_spawn.) */
	for (unsigned i = 0; i < npass; i++)
		if (pass_fds[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, pass_fds[i], VMM_CONTROL_FD + 1 + i);
		else
			posix_spawn_file_actions_addclose(&fa, VMM_CONTROL_FD + 1 + i);
	posix_spawn_file_actions_addclosefrom_np(&fa, VMM_CONTROL_FD + 1 + (int)npass);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	rc = posix_spawn(pid, vmm, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		*pid = 0;
		return sbx_fail(cfg->err, SBX_EVMM, "spawning %s: %s", vmm, strerror(rc));
	}
	*ctl_fd = sv[0];
	return SBX_OK;
}

/* Moves *fd (if open) above `floor`, where no dup2 of vmm_spawn lands on it. */
static int fd_move_above(int *fd, int floor, char *err)
{
	int moved;

	if (*fd < 0 || *fd > floor)
		return SBX_OK;
	moved = fcntl(*fd, F_DUPFD_CLOEXEC, floor + 1);
	if (moved < 0)
		return sbx_fail(err, SBX_EIO, "moving a network fd: %s", strerror(errno));
	close(*fd);
	*fd = moved;
	return SBX_OK;
}

/* The network's fds, if any, become the VMM's VMM_TAP_FD and VMM_DNS_FD, the liveness lock its
 * VMM_LOCK_FD. */
static int sandbox_spawn(sbx_sandbox *sb, sbx_config *cfg, struct net_host *net)
{
	int rc = fd_move_above(&net->tap_fd, VMM_LOCK_FD, cfg->err), pass[3];

	if (rc == SBX_OK)
		rc = fd_move_above(&net->dns_fd, VMM_LOCK_FD, cfg->err);
	if (rc == SBX_OK)
		rc = fd_move_above(&sb->lock_fd, VMM_LOCK_FD, cfg->err);
	if (rc != SBX_OK)
		return rc;
	pass[0] = net->tap_fd;
	pass[1] = net->dns_fd;
	pass[2] = sb->lock_fd;
	rc = vmm_spawn(cfg, sb->dir, pass, 3, &sb->pid, &sb->ctl_fd);

	if (rc != SBX_OK)
		return rc;
	sb->is_child = 1;
	jsonl_reader_init(sb->reader, sb->ctl_fd);
	return SBX_OK;
}

/* Sets the sandbox's last error under its lock (exec and file calls on other threads write it
 * too). Formatted aside first: an argument may point into sb->err. */
static __attribute__((format(printf, 3, 4))) int sandbox_fail(sbx_sandbox *sb, int code,
							      const char *fmt, ...)
{
	char msg[SBX_ERRMSG_MAX];
	va_list ap;

	pthread_mutex_lock(&sb->err_lock);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(sb->err, msg, sizeof(msg));
	pthread_mutex_unlock(&sb->err_lock);
	return code;
}

static int exit_reason_from_name(const char *name)
{
	static const struct {
		const char *name;
		int reason;
	} map[] = { { "poweroff", SBX_EXIT_POWEROFF }, { "reboot", SBX_EXIT_REBOOT },
		    { "stopped", SBX_EXIT_STOPPED },   { "crash", SBX_EXIT_CRASH },
		    { "vmm-died", SBX_EXIT_VMM_DIED }, { "seccomp", SBX_EXIT_SECCOMP },
		    { "limit", SBX_EXIT_LIMIT },       { "ttl", SBX_EXIT_TTL } };

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, name) == 0)
			return map[i].reason;
	return SBX_EXIT_CRASH;
}

/* Reasons the VMM's monitor gives when the VMM itself could not: the VMM, not the guest, ended. */
static int exit_reason_is_vmm(int reason)
{
	return reason == SBX_EXIT_SECCOMP || reason == SBX_EXIT_LIMIT ||
	       reason == SBX_EXIT_VMM_DIED;
}

/* The reason the VMM's monitor left in the exit record, for handles that never heard its exit
 * event; its detail becomes the last error. The record is empty while the VMM runs. */
static int exit_record_reason(sbx_sandbox *sb)
{
	char path[4096], line[512] = "", name[64] = "";
	int reason, detail = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/exit", sb->dir);
	f = fopen(path, "re");
	if (!f)
		return SBX_EXIT_VMM_DIED;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	if (sscanf(line, "%63s %n", name, &detail) < 1)
		return SBX_EXIT_VMM_DIED;
	reason = exit_reason_from_name(name);
	if (detail > 0 && line[detail])
		sandbox_fail(sb, 0, "%s stopped: %s", exit_reason_is_vmm(reason) ? "VMM" : "guest",
			     line + detail);
	return reason;
}

/* Whether the exit record says the VMM is gone (it exists, empty, while the VMM runs). */
static int exit_record_written(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_size > 0;
}

/* A process that is not ours is gone once it no longer exists or is a zombie. One we may not
 * signal belongs to another user: its pid was reused, so our VMM is gone too. */
int sandbox_process_gone(pid_t pid)
{
	char path[64], buf[256], *state;
	FILE *f;

	if (kill(pid, 0) < 0 && (errno == ESRCH || errno == EPERM))
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 1;
	state = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return state && state[1] == ' ' && state[2] == 'Z';
}

/* Waits for the VMM's monitor to be gone (it outlives the VMM): reaped if it is our child,
 * polled otherwise. */
static void sandbox_reap(sbx_sandbox *sb)
{
	if (sb->pid > 0 && sb->is_child) {
		while (waitpid(sb->pid, NULL, 0) < 0 && errno == EINTR)
			;
	} else if (sb->pid > 0) {
		while (!sandbox_process_gone(sb->pid))
			usleep(10000);
	}
	sb->pid = 0;
	sb->vmm_pid = 0;
	if (sb->exit_reason == SBX_EXIT_NONE)
		sb->exit_reason = exit_record_reason(sb);
}

/* Reads and applies one event from the VMM. Returns 1 after an event, 0 when the VMM is gone
 * (reaped), SBX_ETIMEDOUT, or SBX_EPROTO. */
static int sandbox_pump(sbx_sandbox *sb, int timeout_ms)
{
	const char *event = NULL, *s;
	json_t *msg;
	int rc;

	if (sb->ctl_fd < 0)
		return 0;
	rc = jsonl_read(sb->reader, timeout_ms, &msg);
	if (rc == -ETIMEDOUT)
		return SBX_ETIMEDOUT;
	if (rc <= 0) {
		/* EOF or garbage: either way this VMM can no longer be trusted to talk. */
		if (rc < 0)
			kill(sb->pid, SIGKILL);
		close(sb->ctl_fd);
		sb->ctl_fd = -1;
		sandbox_reap(sb);
		return rc < 0 ? SBX_EPROTO : 0;
	}
	json_unpack(msg, "{s:s}", "event", &event);
	if (!event) {
		rc = SBX_EPROTO;
	} else if (strcmp(event, "ready") == 0) {
		sb->ready = 1;
		json_unpack(msg, "{s:F}", "seconds", &sb->ready_seconds);
	} else if (strcmp(event, "exit") == 0 && json_unpack(msg, "{s:s}", "reason", &s) == 0) {
		sb->exit_reason = exit_reason_from_name(s);
		if (json_unpack(msg, "{s:s}", "detail", &s) == 0)
			sandbox_fail(sb, 0, "%s stopped: %s",
				     exit_reason_is_vmm(sb->exit_reason) ? "VMM" : "guest", s);
	} else if (strcmp(event, "error") == 0 && json_unpack(msg, "{s:s}", "message", &s) == 0) {
		sandbox_fail(sb, 0, "VMM: %s", s);
	}
	json_decref(msg);
	return rc < 0 ? rc : 1;
}

static void sandbox_release(sbx_sandbox *sb)
{
	if (sb->ctl_fd >= 0)
		close(sb->ctl_fd);
	if (sb->lock_fd >= 0)
		close(sb->lock_fd);
	free(sb->isolation);
	sbx_snapshot_info_free(sb->restore_info);
	free(sb->dir);
	free(sb->reader);
	pthread_mutex_destroy(&sb->err_lock);
	free(sb);
}

/* Kills whatever is left of the sandbox and removes its files: for failed creates and destroy. */
void sandbox_free(sbx_sandbox *sb)
{
	if (sb->pid > 0) {
		kill(sb->pid, SIGKILL);
		sandbox_reap(sb);
	}
	if (sb->dir) {
		sandbox_cgroup_remove(sb->dir, sb->id);
		net_host_down(sb->dir);
		state_dir_remove(sb->dir);
	}
	sandbox_release(sb);
}

int sandbox_error(sbx_sandbox *sb, int code, const char *message)
{
	return sandbox_fail(sb, code, "%s", message);
}

/* Writes a small file of the sandbox directory for processes that attach later. */
static int sandbox_write_file(sbx_config *cfg, const char *dir, const char *name,
			      const char *text)
{
	char path[4096];
	int fd, n = (int)strlen(text);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, (size_t)n) != n) {
		int rc = sbx_fail(cfg->err, SBX_EIO, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	return SBX_OK;
}

/* The "started" event. A detached VMM forked away from the process we spawned: reap that one,
 * follow its monitor by the pid it reported. The monitor's pid and the jailed VMM's go to
 * <dir>/vmm.pid, the isolation report to <dir>/isolation.json, for processes that attach. */
static int sandbox_adopt(sbx_sandbox *sb, json_t *started, sbx_config *cfg)
{
	json_t *isolation = NULL;
	char buf[32];
	int pid = 0, vmm_pid = 0, rc;

	json_unpack(started, "{s:i, s?i, s?o}", "pid", &pid, "vmm_pid", &vmm_pid, "isolation",
		    &isolation);
	if (pid <= 0)
		return sbx_fail(cfg->err, SBX_EPROTO, "VMM reported no pid");
	if (cfg->detached && pid != sb->pid) {
		while (waitpid(sb->pid, NULL, 0) < 0 && errno == EINTR)
			;
		sb->pid = pid;
		sb->is_child = 0;
	}
	sb->vmm_pid = vmm_pid > 0 ? vmm_pid : pid;
	sb->detached = cfg->detached;
	if (isolation && !(sb->isolation = json_dumps(isolation, JSON_COMPACT)))
		return sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
	snprintf(buf, sizeof(buf), "%d %d\n", pid, (int)sb->vmm_pid);
	rc = sandbox_write_file(cfg, sb->dir, "vmm.pid", buf);
	if (rc == SBX_OK && sb->isolation)
		rc = sandbox_write_file(cfg, sb->dir, "isolation.json", sb->isolation);
	/* When the TTL runs out (wall clock), for what inherits it: a fork's children. */
	snprintf(buf, sizeof(buf), "%lld\n", config_ttl_expires(cfg));
	if (rc == SBX_OK)
		rc = sandbox_write_file(cfg, sb->dir, "expires", buf);
	return rc;
}

/* Waits for the VMM's verdict on the config: "started", or an "error" event. */
static int sandbox_await_start(sbx_sandbox *sb, sbx_config *cfg)
{
	for (;;) {
		int code, rc;
		json_t *msg;
		const char *event = NULL;

		rc = jsonl_read(sb->reader, SBX_SPAWN_TIMEOUT_MS, &msg);
		if (rc == -ETIMEDOUT)
			return sbx_fail(cfg->err, SBX_EVMM, "VMM did not start within %d s",
					SBX_SPAWN_TIMEOUT_MS / 1000);
		if (rc <= 0)
			return sbx_fail(cfg->err, SBX_EVMM,
					"VMM exited before starting the guest (see %s/vmm.log)",
					sb->dir);
		json_unpack(msg, "{s:s}", "event", &event);
		/* A restored guest is ready the moment it starts. */
		if (event && strcmp(event, "ready") == 0) {
			sb->ready = 1;
			json_unpack(msg, "{s:F}", "seconds", &sb->ready_seconds);
		}
		if (event && strcmp(event, "started") == 0) {
			code = sandbox_adopt(sb, msg, cfg);
			json_decref(msg);
			return code;
		}
		if (event && strcmp(event, "error") == 0) {
			const char *name = "EVMM", *message = "unknown VMM error";
			json_unpack(msg, "{s?s, s?s}", "code", &name, "message", &message);
			code = sbx_err_from_name(name);
			sbx_fail(cfg->err, code, "%s", message);
			json_decref(msg);
			return code;
		}
		json_decref(msg);
	}
}

/* Every create collects what dead sandboxes left: a directory scan, a lock try each. Failures
 * are no reason to refuse the create. */
static void sandbox_gc_quick(const sbx_config *cfg)
{
	char base[4096];

	if (state_dir_base(cfg->state_dir, base, sizeof(base)) == SBX_OK)
		sandbox_gc(base, NULL, NULL);
}

int sandbox_alloc(sbx_config *cfg, const char *id, sbx_sandbox **out)
{
	unsigned char rnd[16];
	char cgroup[4096];
	sbx_sandbox *sb;
	int rc;

	sb = calloc(1, sizeof(*sb));
	if (!sb || !(sb->reader = malloc(sizeof(*sb->reader)))) {
		free(sb);
		return sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
	}
	sb->ctl_fd = sb->lock_fd = -1;
	pthread_mutex_init(&sb->err_lock, NULL);
	if (id) {
		snprintf(sb->id, sizeof(sb->id), "%s", id);
	} else if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		rc = sbx_fail(cfg->err, SBX_EIO, "getrandom: %s", strerror(errno));
		goto fail;
	} else {
		for (int i = 0; i < 16; i++)
			sprintf(sb->id + 2 * i, "%02x", rnd[i]);
	}
	rc = state_dir_make(cfg->state_dir, sb->id, &sb->dir, cfg->err);
	if (rc == SBX_OK && (sb->lock_fd = state_dir_hold(sb->dir, 1, cfg->err)) < 0)
		rc = sb->lock_fd;
	if (rc == SBX_OK && sandbox_cgroup_path(cfg, sb->id, cgroup, sizeof(cgroup)) != SBX_OK)
		rc = sbx_fail(cfg->err, SBX_EINVAL, "cgroup parent path too long");
	if (rc == SBX_OK)
		rc = sandbox_cgroup_record(sb->dir, cgroup, cfg->err);
	if (rc != SBX_OK)
		goto fail;
	*out = sb;
	return SBX_OK;
fail:
	sandbox_free(sb);
	return rc;
}

int sandbox_launch(sbx_sandbox *sb, sbx_config *cfg, const json_t *msg, struct net_host *net)
{
	int rc = sandbox_spawn(sb, cfg, net);

	net_host_release_fds(net); /* the VMM has them now, and with the tap the namespace */
	if (rc != SBX_OK)
		return rc;
	rc = jsonl_write(sb->ctl_fd, msg);
	if (rc == -EMSGSIZE)
		return sbx_fail(cfg->err, SBX_ERANGE,
				"the config is larger than the VMM takes (%d KiB; a long network "
				"policy?)",
				JSONL_MAX_LINE / 1024);
	if (rc < 0)
		return sbx_fail(cfg->err, SBX_EVMM, "VMM exited before reading its config (see %s)",
				sb->dir);
	return sandbox_await_start(sb, cfg);
}

int sbx_sandbox_create(sbx_config *cfg, sbx_sandbox **out)
{
	struct net_host net = {.tap_fd = -1, .dns_fd = -1};
	sbx_sandbox *sb;
	char *cmdline = NULL, net_word[128];
	json_t *msg = NULL, *net_json = NULL;
	int rc;

	if (!cfg || !out)
		return SBX_EINVAL;
	rc = config_check(cfg);
	if (rc == SBX_OK)
		rc = sandbox_jail_check(cfg, cfg->vcpus);
	if (rc == SBX_OK)
		sandbox_gc_quick(cfg);
	if (rc == SBX_OK)
		rc = sandbox_alloc(cfg, NULL, &sb);
	if (rc != SBX_OK)
		return rc;
	sb->wants_agent = cfg->init_command == NULL;
	if (cfg->net_policy) {
		struct net_want want = { cfg->net_policy, NULL, cfg->net_admit_private };

		rc = net_sandbox_prepare(cfg, &want, sb->dir, sb->id, VMM_TAP_FD, VMM_DNS_FD, &net,
					 &net_json, net_word, sizeof(net_word));
		if (rc != SBX_OK)
			goto fail;
	}
	cmdline = config_cmdline(cfg, net_json ? net_word : NULL);
	if (!cmdline) {
		rc = sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
		goto fail;
	}
	msg = config_to_json(cfg, sb, cmdline, net_json);
	net_json = NULL;
	if (!msg) {
		rc = sbx_fail(cfg->err, SBX_EINVAL,
			      "a path, the kernel args or the init command is not UTF-8");
		goto fail;
	}
	rc = sandbox_launch(sb, cfg, msg, &net);
	if (rc != SBX_OK)
		goto fail;
	json_decref(msg);
	free(cmdline);
	*out = sb;
	return SBX_OK;
fail:
	net_host_release_fds(&net);
	json_decref(net_json);
	json_decref(msg);
	free(cmdline);
	sandbox_free(sb);
	return rc;
}

/* The agent answers once it listens; until then the bridge refuses. Between tries the control
 * channel is read without waiting, so a guest that stops meanwhile ends the wait. */
static int sandbox_await_agent(sbx_sandbox *sb, int64_t deadline)
{
	char err[SBX_ERRMSG_MAX];

	for (;;) {
		int64_t left = deadline < 0 ? AGENT_HELLO_MS : deadline - clock_ms();
		int try_ms = left < 0 ? 0 : left < AGENT_HELLO_MS ? (int)left : AGENT_HELLO_MS;
		json_t *ev = NULL, *hello = json_pack("{s:s}", "op", "hello");
		int rc = agent_request(sb->dir, hello, try_ms, &ev, err);
		json_decref(hello);
		json_decref(ev);
		if (rc == SBX_OK)
			return SBX_OK;
		while (sb->ctl_fd >= 0 && sandbox_pump(sb, 0) == 1)
			;
		if (sb->exit_reason != SBX_EXIT_NONE || sb->ctl_fd < 0)
			return sandbox_fail(sb, SBX_EGUEST,
					    "guest stopped before its agent answered");
		if (deadline >= 0 && clock_ms() > deadline)
			return sandbox_fail(sb, SBX_ETIMEDOUT, "guest agent not answering: %s",
					    err);
		usleep(AGENT_RETRY_MS * 1000);
	}
}

int sbx_sandbox_wait_ready(sbx_sandbox *sb, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);

	if (!sb)
		return SBX_EINVAL;
	while (!sb->ready) {
		int rc, left = deadline < 0 ? -1 : (int)(deadline - clock_ms());
		if (sb->exit_reason != SBX_EXIT_NONE || sb->ctl_fd < 0)
			return sandbox_fail(sb, SBX_EGUEST,
					    "guest stopped before it was ready (%s; console in %s)",
					    sb->err[0] ? sb->err : "no detail", sb->dir);
		rc = sandbox_pump(sb, left < 0 && deadline >= 0 ? 0 : left);
		if (rc == SBX_ETIMEDOUT)
			return sandbox_fail(sb, SBX_ETIMEDOUT, "guest not ready after %d ms",
					    timeout_ms);
		if (rc < 0)
			return sandbox_fail(sb, rc, "control channel: %s", sbx_strerror(rc));
	}
	if (sb->wants_agent && !sb->agent_up) {
		int rc = sandbox_await_agent(sb, deadline);
		if (rc != SBX_OK)
			return rc;
		sb->agent_up = 1;
	}
	return SBX_OK;
}

int sbx_sandbox_wait_exit(sbx_sandbox *sb, int timeout_ms, int *reason)
{
	int64_t deadline = deadline_after(timeout_ms);

	if (!sb || !reason)
		return SBX_EINVAL;
	if (sb->ctl_fd < 0 && sb->pid > 0) {
		while (!sandbox_process_gone(sb->pid)) {
			if (deadline >= 0 && clock_ms() > deadline)
				return sandbox_fail(sb, SBX_ETIMEDOUT,
						    "guest still running after %d ms", timeout_ms);
			usleep(20000);
		}
		sandbox_reap(sb);
	}
	while (sb->ctl_fd >= 0) {
		/* One deadline for the whole wait: each event would otherwise restart it. */
		int64_t left = deadline < 0 ? -1 : deadline - clock_ms();
		int rc = sandbox_pump(sb, left < 0 && deadline >= 0 ? 0 : (int)left);
		if (rc == SBX_ETIMEDOUT)
			return sandbox_fail(sb, SBX_ETIMEDOUT, "guest still running after %d ms",
					    timeout_ms);
		if (rc < 0 && rc != SBX_EPROTO)
			return rc;
	}
	*reason = sb->exit_reason;
	return SBX_OK;
}

int sbx_sandbox_console(sbx_sandbox *sb, char **text, size_t *len)
{
	char path[4096];
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	if (!sb || !text)
		return SBX_EINVAL;
	snprintf(path, sizeof(path), "%s/console.log", sb->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int rc = sandbox_fail(sb, SBX_EIO, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	buf = malloc((size_t)st.st_size + 1);
	n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
	close(fd);
	if (n < 0) {
		int rc = buf ? SBX_EIO : SBX_ENOMEM;
		free(buf);
		return sandbox_fail(sb, rc, "reading %s", path);
	}
	buf[n] = 0;
	*text = buf;
	if (len)
		*len = (size_t)n;
	return SBX_OK;
}

int sbx_sandbox_ready_time(sbx_sandbox *sb, double *seconds)
{
	if (!sb || !seconds)
		return SBX_EINVAL;
	if (!sb->ready)
		return sandbox_fail(sb, SBX_ESTATE, "guest not ready yet");
	*seconds = sb->ready_seconds;
	return SBX_OK;
}

/* Without a control channel: SIGTERM (the VMM stops cleanly), SIGKILL if that is ignored. */
static void sandbox_terminate(sbx_sandbox *sb)
{
	int64_t deadline = deadline_after(SBX_STOP_TIMEOUT_MS);

	if (sb->pid <= 0)
		return;
	kill(sb->pid, SIGTERM);
	while (!sandbox_process_gone(sb->pid) && clock_ms() < deadline)
		usleep(10000);
	if (!sandbox_process_gone(sb->pid))
		kill(sb->pid, SIGKILL);
	sandbox_reap(sb);
}

int sbx_sandbox_stop(sbx_sandbox *sb)
{
	json_t *stop;
	int reason;

	if (!sb)
		return SBX_EINVAL;
	if (sb->ctl_fd < 0) {
		sandbox_terminate(sb);
		return SBX_OK;
	}
	stop = json_pack("{s:s}", "cmd", "stop");
	if (stop && jsonl_write(sb->ctl_fd, stop) == 0 &&
	    sbx_sandbox_wait_exit(sb, SBX_STOP_TIMEOUT_MS, &reason) == SBX_OK) {
		json_decref(stop);
		return SBX_OK;
	}
	json_decref(stop);
	/* The VMM did not answer: it is stopped the hard way. */
	kill(sb->pid, SIGKILL);
	close(sb->ctl_fd);
	sb->ctl_fd = -1;
	sandbox_reap(sb);
	sb->exit_reason = SBX_EXIT_STOPPED;
	return SBX_OK;
}

void sbx_sandbox_destroy(sbx_sandbox *sb)
{
	if (!sb)
		return;
	sbx_sandbox_stop(sb);
	sandbox_free(sb);
}

void sbx_sandbox_close(sbx_sandbox *sb)
{
	if (!sb)
		return;
	if (sb->is_child && !sb->detached) {
		sbx_sandbox_destroy(sb); /* it would end with our control channel anyway */
		return;
	}
	sandbox_release(sb);
}

/* Checks that the sandbox in base/id runs and gives its monitor's and VMM's pids. */
static int sandbox_find(const char *base, const char *id, int *pid, int *vmm_pid)
{
	char path[4300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/vmm.pid", base, id);
	f = fopen(path, "re");
	if (!f)
		return SBX_ENOENT;
	if (fscanf(f, "%d %d", pid, vmm_pid) < 1)
		*pid = 0;
	fclose(f);
	if (*pid <= 0 || sandbox_process_gone(*pid))
		return SBX_ESTATE;
	/* The monitor's last act is the exit record: with one, the pid may already be another
	 * process's, which stop and destroy must never signal. */
	snprintf(path, sizeof(path), "%s/%s/exit", base, id);
	return exit_record_written(path) ? SBX_ESTATE : SBX_OK;
}

int sbx_sandbox_attach(const char *state_dir, const char *id, sbx_sandbox **out)
{
	char base[4096], err[SBX_ERRMSG_MAX];
	sbx_sandbox *sb;
	int pid = 0, vmm_pid = 0, lock_fd, rc;

	if (!id || !*id || strchr(id, '/') || !out)
		return SBX_EINVAL;
	rc = state_dir_base(state_dir, base, sizeof(base));
	if (rc != SBX_OK)
		return rc;
	sb = calloc(1, sizeof(*sb));
	if (!sb || asprintf(&sb->dir, "%s/%s", base, id) < 0) {
		free(sb);
		return SBX_ENOMEM;
	}
	/* Held first: a collector cannot take the directory away while we look, nor after. */
	lock_fd = state_dir_hold(sb->dir, 0, err);
	rc = sandbox_find(base, id, &pid, &vmm_pid);
	if (rc != SBX_OK) {
		if (lock_fd >= 0)
			close(lock_fd);
		free(sb->dir);
		free(sb);
		return rc;
	}
	snprintf(sb->id, sizeof(sb->id), "%s", id);
	sb->pid = pid;
	sb->vmm_pid = vmm_pid > 0 ? vmm_pid : pid;
	sb->ctl_fd = -1;
	sb->lock_fd = lock_fd < 0 ? -1 : lock_fd;
	sb->ready = 1; /* its creator waited for it; an attacher finds out through its calls */
	sb->detached = 1;
	pthread_mutex_init(&sb->err_lock, NULL);
	*out = sb;
	return SBX_OK;
}

const char *sbx_sandbox_id(const sbx_sandbox *sb)
{
	return sb ? sb->id : "";
}

int sbx_sandbox_vmm_pid(const sbx_sandbox *sb)
{
	return sb ? (sb->vmm_pid > 0 ? sb->vmm_pid : sb->pid) : 0;
}

const char *sbx_sandbox_last_error(const sbx_sandbox *sb)
{
	return sb ? sb->err : "no sandbox";
}
