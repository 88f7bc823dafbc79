/*
 * libsandbox: KVM microVM sandboxes for untrusted code.
 *
 * Conventions, for every function below:
 *  - A fallible call returns 0 or a negative SBX_E* code. sbx_strerror() names the code;
 *    sbx_config_last_error() / sbx_sandbox_last_error() give the message with its context.
 *  - Out-parameters come last and are left untouched on failure.
 *  - What sbx_X_new / sbx_X_create returns is released by sbx_X_free / sbx_X_destroy;
 *    buffers the library returns are released with sbx_free(). Destructors accept NULL.
 *  - Handles are opaque. Options are set through typed setters, so adding one never changes a
 *    layout. Error codes are never renumbered.
 *  - The library never exits, installs no signal handlers, writes nothing to stderr, and opens
 *    every fd with O_CLOEXEC. Guest code never runs in the caller's address space: each sandbox
 *    is a separate VMM process.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SBX_VERSION_MAJOR 0
#define SBX_VERSION_MINOR 1
#define SBX_VERSION_PATCH 0

#if defined(SBX_BUILDING_LIBRARY)
#define SBX_API __attribute__((visibility("default")))
#else
#define SBX_API
#endif

/* ---------------------------------------------------------------- errors */

/* X(name, value, message). The one list behind the enum, sbx_strerror and sbx_err_name. */
#define SBX_ERROR_MAP(X)                                                                   \
	X(EINVAL, -1, "invalid argument")                                                  \
	X(ENOMEM, -2, "out of memory")                                                     \
	X(ENOENT, -3, "file not found")                                                    \
	X(EKERNEL, -4, "not a bootable kernel")                                            \
	X(ENOKVM, -5, "KVM is not available")                                              \
	X(ENOHWVIRT, -6, "KVM has no hardware virtualization (paravirtual-only)")          \
	X(EVMM, -7, "the VMM process failed")                                              \
	X(ETIMEDOUT, -8, "timed out")                                                      \
	X(ESTATE, -9, "operation not valid in the sandbox's current state")                \
	X(EIO, -10, "input/output error")                                                  \
	X(EGUEST, -11, "the guest failed")                                                 \
	X(EPERM, -12, "permission denied")                                                 \
	X(ERANGE, -13, "value out of the supported range")                                 \
	X(EPROTO, -14, "protocol error")                                                   \
	X(EISOLATION, -15, "a required isolation step could not be applied")             \
	X(ESNAPSHOT, -16, "the snapshot is corrupt, truncated or of another format version") \
	X(ENOTSUP, -17, "not supported for this sandbox")

enum sbx_error {
	SBX_OK = 0,
#define SBX_ERROR_ENUM_(name, value, msg) SBX_##name = value,
	SBX_ERROR_MAP(SBX_ERROR_ENUM_)
#undef SBX_ERROR_ENUM_
};

/* Static message for a code ("invalid argument"); never NULL. */
SBX_API const char *sbx_strerror(int code);
/* Static name of a code ("SBX_EINVAL"); never NULL. */
SBX_API const char *sbx_err_name(int code);

/* --------------------------------------------------------------- library */

/* "MAJOR.MINOR.PATCH" of the library actually loaded. Static string. */
SBX_API const char *sbx_version(void);
/* Releases a buffer the library returned. NULL is fine. */
SBX_API void sbx_free(void *p);

/* ------------------------------------------------------------------ host */

enum sbx_host_virt {
	SBX_HOST_NO_KVM = 0,            /* no usable /dev/kvm */
	SBX_HOST_KVM_PARAVIRT_ONLY = 1, /* KVM without vmx/svm (e.g. kvm_pvm): unmodified guests can't run */
	SBX_HOST_KVM_HW = 2,            /* KVM with hardware virtualization */
};

/* Probes what this host can run. *virt gets an sbx_host_virt; *detail (free with sbx_free) says
 * why, e.g. "kvm_pvm loaded; no vmx or svm in /proc/cpuinfo". Errors: SBX_ENOMEM. */
SBX_API int sbx_host_probe(int *virt, char **detail);

/* ---------------------------------------------------------------- config */

typedef struct sbx_config sbx_config;

/* A config with defaults: 1 vCPU, 512 MiB, no disks. NULL when out of memory. */
SBX_API sbx_config *sbx_config_new(void);
SBX_API void sbx_config_free(sbx_config *cfg);
/* Message for the last failure of a call taking this config (including sbx_sandbox_create). */
SBX_API const char *sbx_config_last_error(const sbx_config *cfg);

/* Guest kernel: a bzImage (e.g. /boot/vmlinuz-*-cloud-amd64). Checked at create. */
SBX_API int sbx_config_set_kernel(sbx_config *cfg, const char *path);
/* Initramfs (newc cpio, optionally compressed) holding the guest init; see sbx_initramfs_build. */
SBX_API int sbx_config_set_initramfs(sbx_config *cfg, const char *path);
/* Appends a virtio-blk disk backed by an image file: the first is /dev/vda (the rootfs), then
 * /dev/vdb, ... read_only non-zero makes the device read-only to the guest. At most 7 (6 with a
 * network: the VMM has 8 interrupts for virtio devices, and vsock takes one). */
SBX_API int sbx_config_add_disk(sbx_config *cfg, const char *path, int read_only);
/* vCPUs, 1..64. SBX_ERANGE otherwise. */
SBX_API int sbx_config_set_vcpus(sbx_config *cfg, unsigned vcpus);
/* Guest memory in MiB, 128..262144. SBX_ERANGE otherwise. */
SBX_API int sbx_config_set_memory_mib(sbx_config *cfg, unsigned mib);
/* Extra kernel command-line words appended to the defaults. */
SBX_API int sbx_config_set_kernel_args(sbx_config *cfg, const char *args);
/* A shell command the guest init runs (chrooted into the rootfs, /bin/sh -c) once it is ready;
 * its exit status goes to the console and the guest then powers off. NULL: stay up. */
SBX_API int sbx_config_set_init_command(sbx_config *cfg, const char *command);
/* The full kernel command line a sandbox made from cfg would boot with (our defaults, the init
 * command, then the extra args). Free with sbx_free. Errors: SBX_EINVAL, SBX_ENOMEM. */
SBX_API int sbx_config_kernel_cmdline(const sbx_config *cfg, char **cmdline);
/* Directory under which each sandbox keeps its state (control socket, console log).
 * Default: $SANDBOX_STATE_DIR, else /run/libsandbox when root, else $XDG_RUNTIME_DIR/libsandbox. */
SBX_API int sbx_config_set_state_dir(sbx_config *cfg, const char *path);
/* Detached (non-zero): the sandbox keeps running after the creating handle is closed or its
 * process exits, until sbx_sandbox_destroy (from any process, after sbx_sandbox_attach) or the
 * guest powers off. Default 0: the sandbox ends with the handle or process that made it. */
SBX_API int sbx_config_set_detached(sbx_config *cfg, int detached);
/* The sandbox-vmm executable to spawn. Default: $SANDBOX_VMM, else the installed one. */
SBX_API int sbx_config_set_vmm_path(sbx_config *cfg, const char *path);
/* Protections (SBX_PROT_* bits) the sandbox may start without when this host or caller cannot
 * apply them (e.g. not root, no cgroup v2 delegation); SBX_PROT_ALL takes what it can get.
 * Default 0: sbx_sandbox_create fails with SBX_EISOLATION, naming the step and why. */
SBX_API int sbx_config_set_allow_degraded(sbx_config *cfg, unsigned protections);
/* CPU time the VMM may use, in percent of one CPU per period (150: one and a half CPUs), through
 * the cgroup's cpu.max. 0 (default): no quota. At most 100 per vCPU plus 100; SBX_ERANGE else. */
SBX_API int sbx_config_set_cpu_quota(sbx_config *cfg, unsigned percent);
/* Most tasks (threads) the VMM may have, through the cgroup's pids.max. 0 (default): vCPUs + 18.
 * Fewer than vCPUs + 2 cannot start the machine: sbx_sandbox_create says so (SBX_EINVAL). */
SBX_API int sbx_config_set_pids_max(sbx_config *cfg, unsigned pids);
/* Time to live: the sandbox is stopped this many seconds after it was created (or restored),
 * whether or not anyone is attached; it ends with SBX_EXIT_TTL. Enforced by the VMM's monitor,
 * outside the jail and out of the guest's reach: the VMM is killed, not asked. 0 (default): no
 * limit. At most SBX_TTL_MAX_S; SBX_ERANGE else. The stopped sandbox's files and host resources
 * go at sbx_sandbox_destroy, or at the next sbx_gc (every create runs one). */
SBX_API int sbx_config_set_ttl(sbx_config *cfg, unsigned seconds);
#define SBX_TTL_MAX_S (366u * 24 * 3600)
/* Where sandbox cgroups are made: <path>/<sandbox id>, on a cgroup v2 mount. Default:
 * $SANDBOX_CGROUP_PARENT, else /sys/fs/cgroup/libsandbox. The memory limit is the guest's memory
 * plus SBX_VMM_MEMORY_OVERHEAD_MIB for the VMM itself. */
SBX_API int sbx_config_set_cgroup_parent(sbx_config *cfg, const char *path);
/* The unprivileged uid and gid the VMM runs as when the caller is root. Default 65534/65534
 * (nobody/nogroup). 0 is refused (SBX_EINVAL). A caller that is not root keeps its own ids. */
SBX_API int sbx_config_set_jail_user(sbx_config *cfg, unsigned uid, unsigned gid);
/* What the VMM may use besides guest memory: itself, and up to 256 MiB of vsock buffers when
 * host clients read slower than the guest writes. */
#define SBX_VMM_MEMORY_OVERHEAD_MIB 320

/* ------------------------------------------------------------- isolation */

/* The protections that jail each sandbox's VMM process, one bit each. X(name, bit, "label").
 * Every sandbox gets all of them unless the caller allowed some to be missing
 * (sbx_config_set_allow_degraded); sbx_sandbox_isolation says which a sandbox has. */
#define SBX_PROTECTION_MAP(X)                                                              \
	X(MOUNT_NS, 0, "mount-ns")      /* its own mount namespace */                       \
	X(PID_NS, 1, "pid-ns")          /* pid 1 of its own pid namespace */                \
	X(IPC_NS, 2, "ipc-ns")          /* its own System V IPC and POSIX queues */         \
	X(UTS_NS, 3, "uts-ns")          /* its own host name */                             \
	X(NET_NS, 4, "net-ns")          /* no network but its own empty namespace */        \
	X(PIVOT_ROOT, 5, "pivot-root")  /* its root holds only the sandbox's directory */   \
	X(UNPRIV_USER, 6, "unprivileged-user") /* not root: the jail uid/gid, or the caller's */ \
	X(NO_CAPS, 7, "no-capabilities") /* effective, permitted and bounding sets empty */  \
	X(NO_NEW_PRIVS, 8, "no-new-privs") /* PR_SET_NO_NEW_PRIVS */                         \
	X(SECCOMP, 9, "seccomp")        /* a syscall allowlist per thread role, kill on others */ \
	X(CGROUP, 10, "cgroup")         /* cgroup v2: memory (guest included), pids, CPU quota */ \
	X(RLIMITS, 11, "rlimits")       /* no core dumps, bounded fds and file sizes */

enum sbx_protection {
#define SBX_PROTECTION_ENUM_(name, bit, label) SBX_PROT_##name = 1u << (bit),
	SBX_PROTECTION_MAP(SBX_PROTECTION_ENUM_)
#undef SBX_PROTECTION_ENUM_
	SBX_PROT_ALL = (1u << 12) - 1,
};

/* Static name of one protection bit ("seccomp"); "unknown" for anything else. */
SBX_API const char *sbx_protection_name(unsigned protection);
/* Which protections a sandbox made from cfg (NULL: defaults) would get on this host, found by
 * the VMM trying each step for real without booting a guest. *available gets the bits that
 * work; *report (may be NULL; free with sbx_free) is JSON: {"applied": BITS, "protections":
 * [{"name": "cgroup", "applied": false, "detail": "why"}, ...]}. Errors: SBX_EVMM, SBX_ENOMEM,
 * SBX_EIO, SBX_EPERM (the state directory). */
SBX_API int sbx_host_isolation(sbx_config *cfg, unsigned *available, char **report);

/* --------------------------------------------------------------- sandbox */

typedef struct sbx_sandbox sbx_sandbox;

enum sbx_exit_reason {
	SBX_EXIT_NONE = 0,     /* still running */
	SBX_EXIT_POWEROFF = 1, /* the guest powered off */
	SBX_EXIT_REBOOT = 2,   /* the guest asked for a reboot (a sandbox does not reboot) */
	SBX_EXIT_STOPPED = 3,  /* stopped by sbx_sandbox_stop */
	SBX_EXIT_CRASH = 4,    /* the guest crashed (triple fault, KVM internal error) */
	SBX_EXIT_VMM_DIED = 5, /* the VMM process died (killed, or failed) */
	SBX_EXIT_SECCOMP = 6,  /* the VMM made a system call outside its allowlist and was killed */
	SBX_EXIT_LIMIT = 7,    /* a resource limit stopped the VMM (cgroup memory, file size) */
	SBX_EXIT_TTL = 8,      /* its time to live ran out (sbx_config_set_ttl) */
};

/* Removes what sandboxes that ended without a sbx_sandbox_destroy left behind (a VMM, monitor or
 * caller that was killed, a TTL that ran out with nobody attached): their cgroup, network
 * namespace leftovers (NAT table, address lease), state files and sockets. A sandbox counts as
 * ended once neither its VMM, its monitor, its creator's handle nor any attached handle holds
 * it (a lock on <dir>/lock, so a reused pid cannot fool it); running ones are never touched.
 * state_dir NULL: the default. *removed (may be NULL) gets how many sandboxes went, *report (may
 * be NULL; free with sbx_free) a line each. Every sbx_sandbox_create runs one on its state
 * directory. Errors: SBX_EINVAL, SBX_EIO, SBX_EPERM (the state directory). */
SBX_API int sbx_gc(const char *state_dir, unsigned *removed, char **report);

/* Validates cfg, spawns the VMM process, jails it and starts the guest; returns without waiting
 * for the guest to boot. The config may be freed afterwards. Errors: SBX_EINVAL, SBX_ENOENT
 * (kernel, initramfs or disk missing), SBX_EKERNEL, SBX_ENOKVM, SBX_ENOHWVIRT, SBX_EVMM,
 * SBX_ENOMEM, SBX_EIO or SBX_EPERM (the state directory), SBX_EISOLATION (a protection could not
 * be applied and was not allowed to be missing); the message is in sbx_config_last_error(cfg).
 * Nothing is left behind on failure. */
SBX_API int sbx_sandbox_create(sbx_config *cfg, sbx_sandbox **out);
/* Waits until the guest init reports ready, up to timeout_ms (-1: forever). Errors:
 * SBX_ETIMEDOUT, SBX_EGUEST (the guest stopped before it was ready; see the console). */
SBX_API int sbx_sandbox_wait_ready(sbx_sandbox *sb, int timeout_ms);
/* Waits until the guest stops, up to timeout_ms (-1: forever); *reason gets an sbx_exit_reason. */
SBX_API int sbx_sandbox_wait_exit(sbx_sandbox *sb, int timeout_ms, int *reason);
/* The console output so far (serial port), NUL-terminated; free with sbx_free. */
SBX_API int sbx_sandbox_console(sbx_sandbox *sb, char **text, size_t *len);
/* Seconds from VMM start to the ready report, as measured by the VMM; SBX_ESTATE before ready. */
SBX_API int sbx_sandbox_ready_time(sbx_sandbox *sb, double *seconds);
/* Stops the guest and its VMM process at once. The console stays readable until destroy. */
SBX_API int sbx_sandbox_stop(sbx_sandbox *sb);
/* Stops if needed, removes every file of the sandbox, frees the handle. NULL is fine. */
SBX_API void sbx_sandbox_destroy(sbx_sandbox *sb);
/* Frees the handle only: a detached sandbox keeps running (a non-detached one stops, as its
 * creator is gone). NULL is fine. */
SBX_API void sbx_sandbox_close(sbx_sandbox *sb);
/* A handle on a running sandbox made by another handle or process, found by id under state_dir
 * (NULL: the default state directory). exec, files, stop and destroy work on it; wait_exit and
 * the console too. Errors: SBX_ENOENT (no such sandbox), SBX_ESTATE (its VMM is gone), SBX_EPERM
 * (the default state directory in /tmp is not private to us). */
SBX_API int sbx_sandbox_attach(const char *state_dir, const char *id, sbx_sandbox **out);
/* The sandbox's id (unique on this host). Owned by the handle. */
SBX_API const char *sbx_sandbox_id(const sbx_sandbox *sb);
/* Process id of the VMM, the process that runs the guest (for monitoring), as this process's pid
 * namespace sees it. */
SBX_API int sbx_sandbox_vmm_pid(const sbx_sandbox *sb);
/* The protections the sandbox's VMM runs with: *applied gets SBX_PROT_* bits; *report (may be
 * NULL; free with sbx_free) the JSON described at sbx_host_isolation, plus "cgroup", "uid" and
 * "gid". Errors: SBX_ESTATE (no report: the VMM never started), SBX_ENOMEM. */
SBX_API int sbx_sandbox_isolation(sbx_sandbox *sb, unsigned *applied, char **report);
SBX_API const char *sbx_sandbox_last_error(const sbx_sandbox *sb);

/* ------------------------------------------------------------------ exec */

/* Runs commands in a ready sandbox through its guest agent. Each call uses its own connection,
 * so calls from many threads on one sandbox run concurrently. */

typedef struct sbx_exec_opts sbx_exec_opts;
typedef struct sbx_exec_result sbx_exec_result;

enum sbx_stream { SBX_STDOUT = 1, SBX_STDERR = 2 };
/* Receives output as the process produces it (stream: SBX_STDOUT or SBX_STDERR). Called on the
 * thread that called sbx_exec, before sbx_exec returns. */
typedef void (*sbx_output_fn)(void *user, int stream, const char *data, size_t len);

/* Options for one command; reusable. NULL when out of memory. */
SBX_API sbx_exec_opts *sbx_exec_opts_new(void);
SBX_API void sbx_exec_opts_free(sbx_exec_opts *o);
/* The command as a NULL-terminated argv (argv[0] looked up in PATH), or as a shell string run
 * with /bin/sh -c. The last of the two calls wins. */
SBX_API int sbx_exec_opts_set_argv(sbx_exec_opts *o, const char *const *argv);
SBX_API int sbx_exec_opts_set_shell(sbx_exec_opts *o, const char *command);
/* Adds NAME=VALUE to the environment (on top of PATH, HOME, TERM, LANG). */
SBX_API int sbx_exec_opts_add_env(sbx_exec_opts *o, const char *name, const char *value);
SBX_API int sbx_exec_opts_set_cwd(sbx_exec_opts *o, const char *dir);
/* A user name or numeric uid of the guest; default root. */
SBX_API int sbx_exec_opts_set_user(sbx_exec_opts *o, const char *user);
/* Bytes fed to the command's stdin (copied); without it stdin is /dev/null. */
SBX_API int sbx_exec_opts_set_stdin(sbx_exec_opts *o, const void *data, size_t len);
/* Kill the command's whole process group after timeout_ms (0: no limit). */
SBX_API int sbx_exec_opts_set_timeout_ms(sbx_exec_opts *o, unsigned timeout_ms);
/* Streams output to fn as it comes. */
SBX_API int sbx_exec_opts_set_output_fn(sbx_exec_opts *o, sbx_output_fn fn, void *user);
/* Whether the result keeps stdout and stderr (default 1; 0 when only the callback wants them). */
SBX_API int sbx_exec_opts_set_capture(sbx_exec_opts *o, int capture);

/* Runs the command to its end (or timeout). *result (free with sbx_exec_result_free) has the
 * exit code or signal, output and duration. A command that runs but fails is SBX_OK with its
 * exit code; errors are for what kept it from running or being watched: SBX_ENOENT (argv[0] not
 * found), SBX_ESTATE (sandbox not running), SBX_EGUEST, SBX_EPROTO, SBX_EINVAL. */
SBX_API int sbx_exec(sbx_sandbox *sb, const sbx_exec_opts *o, sbx_exec_result **result);
/* Exit code, or -1 if a signal ended the command. */
SBX_API int sbx_exec_result_exit_code(const sbx_exec_result *r);
/* The signal that ended the command, or 0. */
SBX_API int sbx_exec_result_signal(const sbx_exec_result *r);
/* 1 if the timeout killed it. */
SBX_API int sbx_exec_result_timed_out(const sbx_exec_result *r);
/* Wall time in the guest from start to exit, in seconds. */
SBX_API double sbx_exec_result_duration(const sbx_exec_result *r);
/* Captured output (NUL-terminated for convenience; may contain NULs: use *len). Owned by r. */
SBX_API const char *sbx_exec_result_stdout(const sbx_exec_result *r, size_t *len);
SBX_API const char *sbx_exec_result_stderr(const sbx_exec_result *r, size_t *len);
SBX_API void sbx_exec_result_free(sbx_exec_result *r);

/* Starts the command in the background and returns its guest pid at once. stdout and stderr
 * go to the guest files given (NULL: discarded). */
SBX_API int sbx_exec_background(sbx_sandbox *sb, const sbx_exec_opts *o, const char *stdout_path,
				const char *stderr_path, int *pid);
/* Waits up to timeout_ms (-1: forever) for a background command; *result as for sbx_exec, with
 * no output. SBX_ETIMEDOUT if it is still running. */
SBX_API int sbx_process_wait(sbx_sandbox *sb, int pid, int timeout_ms, sbx_exec_result **result);
/* Sends signal to the background command's process group. */
SBX_API int sbx_process_kill(sbx_sandbox *sb, int pid, int signal);

/* ----------------------------------------------------------------- files */

enum sbx_file_type { SBX_FILE_REGULAR = 1, SBX_FILE_DIR = 2, SBX_FILE_SYMLINK = 3, SBX_FILE_OTHER = 4 };

/* Writes a guest file from a host fd, streamed (never held whole in memory), creating parent
 * directories; the file appears complete or not at all. mode e.g. 0644. */
SBX_API int sbx_file_write_fd(sbx_sandbox *sb, const char *path, int fd, unsigned mode);
/* Writes a guest file from a buffer. */
SBX_API int sbx_file_write(sbx_sandbox *sb, const char *path, const void *data, size_t len,
			   unsigned mode);
/* Streams a guest file into a host fd. */
SBX_API int sbx_file_read_fd(sbx_sandbox *sb, const char *path, int fd);
/* Reads a whole guest file into *data (free with sbx_free; NUL-terminated extra byte). */
SBX_API int sbx_file_read(sbx_sandbox *sb, const char *path, void **data, size_t *len);
/* type (sbx_file_type), size, mode and mtime (seconds) of a guest path; NULL outs are skipped. */
SBX_API int sbx_file_stat(sbx_sandbox *sb, const char *path, int *type, unsigned long long *size,
			  unsigned *mode, long long *mtime);
SBX_API int sbx_file_remove(sbx_sandbox *sb, const char *path, int recursive);
SBX_API int sbx_file_mkdir(sbx_sandbox *sb, const char *path, unsigned mode, int parents);
SBX_API int sbx_file_rename(sbx_sandbox *sb, const char *from, const char *to);

typedef struct sbx_dir sbx_dir;
/* Lists a guest directory. Free with sbx_dir_free. */
SBX_API int sbx_file_list(sbx_sandbox *sb, const char *path, sbx_dir **dir);
SBX_API size_t sbx_dir_count(const sbx_dir *d);
/* Entry i's name (owned by d), type, size; NULL/0 when i is out of range. */
SBX_API const char *sbx_dir_name(const sbx_dir *d, size_t i);
SBX_API int sbx_dir_type(const sbx_dir *d, size_t i);
SBX_API unsigned long long sbx_dir_size(const sbx_dir *d, size_t i);
SBX_API void sbx_dir_free(sbx_dir *d);

/* ------------------------------------------------------ code interpreter */

/* Cells of code run in *contexts*: interpreters inside the guest that keep their state between
 * cells (docs/code-interpreter.md). Languages: "python", "javascript", "typescript", "bash",
 * "go" (no state between cells: each is its own program) and "java" (jshell). Every language
 * has a default context, created on its first cell. */

typedef struct sbx_code_opts sbx_code_opts;
typedef struct sbx_execution sbx_execution;
/* A rich result: one value in several representations (MIME type -> bytes). */
typedef struct sbx_result sbx_result;
/* Receives each result as the cell produces it, on the thread that called sbx_run_code; r is
 * valid during the call only. */
typedef void (*sbx_result_fn)(void *user, const sbx_result *r);

SBX_API sbx_code_opts *sbx_code_opts_new(void);
SBX_API void sbx_code_opts_free(sbx_code_opts *o);
/* The language of the default context to use (default "python"); ignored with a context. */
SBX_API int sbx_code_opts_set_language(sbx_code_opts *o, const char *language);
/* A context made with sbx_context_create. */
SBX_API int sbx_code_opts_set_context(sbx_code_opts *o, const char *context_id);
/* Interrupts the cell after timeout_ms (0: no limit); the context keeps its earlier state. */
SBX_API int sbx_code_opts_set_timeout_ms(sbx_code_opts *o, unsigned timeout_ms);
/* stdout and stderr as the cell writes them. */
SBX_API int sbx_code_opts_set_output_fn(sbx_code_opts *o, sbx_output_fn fn, void *user);
SBX_API int sbx_code_opts_set_result_fn(sbx_code_opts *o, sbx_result_fn fn, void *user);

/* Runs code (UTF-8) to its end. A cell that raises is SBX_OK with the error in *out; errors are
 * for what kept it from running: SBX_EINVAL (unknown language), SBX_ENOENT (no such context),
 * SBX_EIO (the language's kernel could not start: the message says why, e.g. not installed),
 * SBX_ESTATE, SBX_EGUEST, SBX_EPROTO. Free *out with sbx_execution_free. */
SBX_API int sbx_run_code(sbx_sandbox *sb, const char *code, const sbx_code_opts *o,
			 sbx_execution **out);
SBX_API size_t sbx_execution_result_count(const sbx_execution *e);
/* Result i (owned by e), or NULL. */
SBX_API const sbx_result *sbx_execution_result(const sbx_execution *e, size_t i);
/* The cell's output (NUL-terminated; may contain NULs: use *len), its first 64 MiB per stream;
 * the output callback sees all of it. Owned by e. At most 4096 results are kept. */
SBX_API const char *sbx_execution_stdout(const sbx_execution *e, size_t *len);
SBX_API const char *sbx_execution_stderr(const sbx_execution *e, size_t *len);
/* The cell's error (exception class name, message, traceback text); name is NULL when the cell
 * succeeded. An interrupted cell's error is the language's (Python: KeyboardInterrupt). */
SBX_API const char *sbx_execution_error_name(const sbx_execution *e);
SBX_API const char *sbx_execution_error_value(const sbx_execution *e);
SBX_API const char *sbx_execution_error_traceback(const sbx_execution *e);
/* The cell's number in its context (1, 2, ...). */
SBX_API int sbx_execution_count(const sbx_execution *e);
SBX_API double sbx_execution_duration(const sbx_execution *e);
/* 1 if the timeout interrupted the cell. */
SBX_API int sbx_execution_timed_out(const sbx_execution *e);
/* 1 if the context's kernel had died (or was killed) and was restarted empty for this cell. */
SBX_API int sbx_execution_restarted(const sbx_execution *e);
/* The id of the context the cell ran in. */
SBX_API const char *sbx_execution_context(const sbx_execution *e);
/* The whole execution as JSON (binary representations in base64), to free with sbx_free. */
SBX_API int sbx_execution_to_json(const sbx_execution *e, char **json);
SBX_API void sbx_execution_free(sbx_execution *e);

/* 1 for the value of the cell's trailing expression, 0 for what it displayed (a figure). */
SBX_API int sbx_result_is_main(const sbx_result *r);
SBX_API size_t sbx_result_format_count(const sbx_result *r);
/* MIME type of representation i ("text/plain", "text/html", "image/png", "image/svg+xml",
 * "application/json", ...), or NULL. */
SBX_API const char *sbx_result_format(const sbx_result *r, size_t i);
/* The bytes of the representation mime (NUL-terminated for convenience), NULL if absent. */
SBX_API const void *sbx_result_data(const sbx_result *r, const char *mime, size_t *len);

/* A new context of language (NULL: python) with working directory cwd (NULL: /root). *id is
 * its id, to free with sbx_free. Waits for the interpreter to start. */
SBX_API int sbx_context_create(sbx_sandbox *sb, const char *language, const char *cwd,
			       char **id);
typedef struct sbx_contexts sbx_contexts;
SBX_API int sbx_context_list(sbx_sandbox *sb, sbx_contexts **out);
SBX_API size_t sbx_contexts_count(const sbx_contexts *l);
/* Entry i's id, language and working directory (owned by l), NULL when out of range. */
SBX_API const char *sbx_contexts_id(const sbx_contexts *l, size_t i);
SBX_API const char *sbx_contexts_language(const sbx_contexts *l, size_t i);
SBX_API const char *sbx_contexts_cwd(const sbx_contexts *l, size_t i);
SBX_API void sbx_contexts_free(sbx_contexts *l);
/* Kills the context's interpreter (ending any cell in it) and starts it afresh, empty. */
SBX_API int sbx_context_restart(sbx_sandbox *sb, const char *id);
SBX_API int sbx_context_destroy(sbx_sandbox *sb, const char *id);

/* --------------------------------------------------------------- network */

/* A sandbox made from a config with a network policy has a network: its own network namespace,
 * a virtio-net device, and an egress policy the VMM enforces on every frame the guest sends
 * (docs/networking.md). Needs root (CAP_NET_ADMIN) and the tun, veth and nf_tables modules.
 * Without a policy in its config a sandbox has no network device at all: loopback only, and its
 * policy cannot be changed later (SBX_ESTATE).
 *
 * Policies: SBX_NET_NONE (nothing leaves; the guest's interface is configured but every frame
 * is dropped and recorded), SBX_NET_ALL (everything, through NAT on the host's uplink; never to
 * the host itself nor to other sandboxes), SBX_NET_ALLOW (what the entries allow: "10.0.0.0/8",
 * "1.2.3.4", "1.2.3.4:443" (TCP and UDP to that port), "example.com", "*.example.com"; names
 * resolve through the sandbox's own DNS server, which answers only listed names and lets the
 * guest reach the addresses it answered with, for their TTL). Every denial is counted and
 * recorded with its destination and time (sbx_sandbox_net_log). */

enum sbx_net_mode { SBX_NET_NONE = 0, SBX_NET_ALL = 1, SBX_NET_ALLOW = 2 };

typedef struct sbx_net_policy sbx_net_policy;

/* A policy of the given mode and no entries; NULL when out of memory or mode is not one of
 * sbx_net_mode. Free with sbx_net_policy_free. */
SBX_API sbx_net_policy *sbx_net_policy_new(int mode);
SBX_API void sbx_net_policy_free(sbx_net_policy *p);
/* Parses "none", "all", "allow" or "allow:ENTRY,ENTRY,..." (the CLI's syntax) into a new policy.
 * Errors: SBX_EINVAL (*bad, if not NULL, gets the offending part, to free with sbx_free). */
SBX_API int sbx_net_policy_parse(const char *text, sbx_net_policy **out, char **bad);
/* The text form of p ("allow:1.2.3.4:80,example.com"), to free with sbx_free. */
SBX_API int sbx_net_policy_format(const sbx_net_policy *p, char **text);
SBX_API int sbx_net_policy_set_mode(sbx_net_policy *p, int mode);
SBX_API int sbx_net_policy_mode(const sbx_net_policy *p);
/* Adds an entry (syntax above; names are kept in lower case). Entries are kept whatever the
 * mode and take effect in SBX_NET_ALLOW. Adding one twice keeps one. Errors: SBX_EINVAL (not an
 * entry), SBX_ERANGE (1024 addresses or 1024 names already). */
SBX_API int sbx_net_policy_add(sbx_net_policy *p, const char *entry);
/* Removes an entry as sbx_net_policy_add would have stored it. SBX_ENOENT if absent. */
SBX_API int sbx_net_policy_remove(sbx_net_policy *p, const char *entry);
SBX_API size_t sbx_net_policy_count(const sbx_net_policy *p);
/* Entry i (owned by p), or NULL. */
SBX_API const char *sbx_net_policy_entry(const sbx_net_policy *p, size_t i);

/* Gives sandboxes made from cfg a network with policy p (copied; the caller keeps p). NULL: no
 * network (the default). */
SBX_API int sbx_config_set_net_policy(sbx_config *cfg, const sbx_net_policy *p);
/* The guest's MAC, "02:xx:xx:xx:xx:xx" (unicast, non-zero). Default: derived from the id. */
SBX_API int sbx_config_set_net_mac(sbx_config *cfg, const char *mac);
/* The pool of addresses ("A.B.C.D/P", P from 8 to 29) that sandboxes take a /29 from, never one
 * in use on this host. Default: $SANDBOX_NET_POOL, else 10.200.0.0/16. */
SBX_API int sbx_config_set_net_pool(sbx_config *cfg, const char *cidr);
/* The DNS server ("IP" or "IP:PORT") the sandbox's DNS server forwards allowed names to.
 * Default: $SANDBOX_NET_DNS, else the first IPv4 nameserver of /etc/resolv.conf. */
SBX_API int sbx_config_set_net_dns(sbx_config *cfg, const char *server);
/* Non-zero: DNS answers in private, loopback and link-local ranges are admitted for allowed
 * names too. Default 0: an allowed name cannot point the guest at the host's neighbourhood. */
SBX_API int sbx_config_set_net_admit_private(sbx_config *cfg, int admit);

/* Replaces the policy of a running sandbox (any handle, attached ones too); it applies to the
 * next frame the guest sends. Errors: SBX_ESTATE (no network, or not running), SBX_EINVAL,
 * SBX_ERANGE (a policy of more than about 64 KiB of entries), SBX_ETIMEDOUT, SBX_EPROTO. */
SBX_API int sbx_sandbox_set_net_policy(sbx_sandbox *sb, const sbx_net_policy *p);
/* The policy in force, to free with sbx_net_policy_free. Errors as above. */
SBX_API int sbx_sandbox_get_net_policy(sbx_sandbox *sb, sbx_net_policy **out);

typedef struct sbx_net_log sbx_net_log;
/* The denials recorded from number `cursor` on (0: the oldest kept; the VMM keeps the last 256),
 * oldest first. Free with sbx_net_log_free. Errors as sbx_sandbox_set_net_policy. */
SBX_API int sbx_sandbox_net_log(sbx_sandbox *sb, unsigned long long cursor, sbx_net_log **out);
SBX_API size_t sbx_net_log_count(const sbx_net_log *l);
/* Denial i: when (seconds since the epoch), protocol ("tcp", "udp", "icmp", "ip", "arp",
 * "frame", or "dns" for a name our DNS server refused), destination (an IPv4 address, or the
 * name), port (0 without one), and why ("policy none", "destination not allowed", ...). Strings
 * are owned by l; out of range: 0 or NULL. */
SBX_API double sbx_net_log_time(const sbx_net_log *l, size_t i);
SBX_API const char *sbx_net_log_protocol(const sbx_net_log *l, size_t i);
SBX_API const char *sbx_net_log_destination(const sbx_net_log *l, size_t i);
SBX_API int sbx_net_log_port(const sbx_net_log *l, size_t i);
SBX_API const char *sbx_net_log_reason(const sbx_net_log *l, size_t i);
/* The cursor to pass next time for what comes after these. */
SBX_API unsigned long long sbx_net_log_next(const sbx_net_log *l);
/* Denials over the sandbox's life, and those overwritten before they were read. */
SBX_API unsigned long long sbx_net_log_total(const sbx_net_log *l);
SBX_API unsigned long long sbx_net_log_lost(const sbx_net_log *l);
SBX_API void sbx_net_log_free(sbx_net_log *l);

/* -------------------------------------------------------------- snapshot */

/* A sandbox saved to a directory (docs/snapshot.md): its memory as a raw file (mapped lazily,
 * copy-on-write, on restore), the state of its vCPUs and devices (versioned, checksummed), and
 * its writable disks (reflinked where the filesystem can, else copied; read-only disks are
 * referenced where they are). Restoring makes a new sandbox, so one snapshot can be restored
 * any number of times, at once, also while the original runs on. The guest's processes and
 * code contexts come back as they were; its connections to the host do not (the agent listens
 * again), and its wall clock is set to the host's. */

typedef struct sbx_snapshot_info sbx_snapshot_info;

/* Writes a snapshot of the running sandbox into dir (created with its parents, mode 0700; if it
 * exists it must be an empty directory). The guest is paused while it is written, then runs on. *info
 * (NULL to skip; free with sbx_snapshot_info_free) says how it went. Works on any handle,
 * attached ones included. Errors: SBX_ESTATE (not running), SBX_EINVAL (dir not empty),
 * SBX_EIO (writing failed, e.g. no space; dir is left empty), SBX_ETIMEDOUT (the guest did not
 * pause), SBX_EVMM. */
SBX_API int sbx_sandbox_snapshot(sbx_sandbox *sb, const char *dir, sbx_snapshot_info **info);
/* Snapshot, then stop: the sandbox ends (destroy or close its handle) and lives on in dir
 * until sbx_sandbox_resume, from this or any other process. Errors as sbx_sandbox_snapshot; on
 * an error the sandbox runs on. */
SBX_API int sbx_sandbox_hibernate(sbx_sandbox *sb, const char *dir, sbx_snapshot_info **info);
/* A new running sandbox (new id, its own state directory) from the snapshot in dir, which is
 * left as it was. Returns once the guest's agent answers and its wall clock is set. cfg (may
 * be NULL) gives the state directory, the VMM path and the detached flag; the machine (vCPUs,
 * memory, disks) is the snapshot's. A snapshot of a sandbox with a network is restored with a
 * network of its own (a new address and MAC; the guest is moved onto it before this returns)
 * under the snapshot's policy and DNS upstream, or the config's if it sets them. Errors:
 * SBX_ENOENT (no snapshot in dir, or a disk image it needs is gone), SBX_ESNAPSHOT (corrupt or
 * truncated files, another format version, a referenced disk image that changed), SBX_ENOTSUP
 * (cfg has a network policy but the snapshot's machine has no network device), SBX_ENOKVM,
 * SBX_ENOHWVIRT, SBX_EVMM, SBX_ETIMEDOUT, SBX_EGUEST; the message in sbx_config_last_error(cfg)
 * (pass a config to get it). Nothing is left behind or running on failure. */
SBX_API int sbx_sandbox_restore(sbx_config *cfg, const char *dir, sbx_sandbox **out);
/* sbx_sandbox_restore under the id the sandbox had when it was snapshotted (a hibernated one
 * comes back as itself). SBX_ESTATE if a sandbox with that id exists. */
SBX_API int sbx_sandbox_resume(sbx_config *cfg, const char *dir, sbx_sandbox **out);
/* How a restored sandbox was made (owned by sb), or NULL for one that was created. */
SBX_API const sbx_snapshot_info *sbx_sandbox_restore_info(const sbx_sandbox *sb);

/* Snapshot: seconds the guest stood paused. Restore: seconds from the call to the agent's
 * answer with the clock set. */
SBX_API double sbx_snapshot_info_seconds(const sbx_snapshot_info *info);
/* Snapshot: bytes of memory data written (pages never used and zero pages are holes).
 * Restore: bytes of guest memory mapped from the snapshot (read only as the guest touches it). */
SBX_API unsigned long long sbx_snapshot_info_memory_bytes(const sbx_snapshot_info *info);
/* How many disks were copied because the filesystem has no reflink (0: all were reflinked or,
 * read-only, referenced). */
SBX_API int sbx_snapshot_info_disks_copied(const sbx_snapshot_info *info);
/* What happened to each disk, a line each: "disk 0: reflink", "disk 0: copy (no reflink:
 * Operation not supported)", "disk 1: reference /images/data.img (read-only)". */
SBX_API const char *sbx_snapshot_info_disks(const sbx_snapshot_info *info);
SBX_API void sbx_snapshot_info_free(sbx_snapshot_info *info);

/* ------------------------------------------------------------------ fork */

/* Most children one sbx_sandbox_fork makes. */
#define SBX_FORK_MAX 64

/* n (1..SBX_FORK_MAX) new running sandboxes, each a copy of sb as it is now, in
 * children[0..n-1] (the caller's array; each handle freed as any other); sb runs on. A child
 * has its own id, fresh guest entropy (its CRNG reseeded), the host's wall clock, a hostname
 * "sbx-" + the first 12 characters of its id and, if sb has a network, a network of its own
 * (address, MAC, namespace) under sb's policy. Memory is shared copy-on-write (every child maps
 * one snapshot's memory file privately; the file is unlinked once all are running and lives as
 * long as one maps it), disks are reflinked (copied where the filesystem cannot). cfg (may be
 * NULL: the parent's state directory base and detached flag) is as for sbx_sandbox_restore;
 * whatever it says, no child outlives its parent's time to live.
 * Errors: SBX_ERANGE (n), SBX_ESTATE (its time to live has run out), those of
 * sbx_sandbox_snapshot and sbx_sandbox_restore; the message in
 * sbx_sandbox_last_error(sb). On failure no child is left and children is untouched. */
SBX_API int sbx_sandbox_fork(sbx_sandbox *sb, sbx_config *cfg, unsigned n,
			     sbx_sandbox **children);

/* ------------------------------------------------------------- templates */

/* A template is a snapshot of a booted and warmed sandbox kept under a name in the template
 * directory: $SANDBOX_TEMPLATE_DIR, else <state directory>/templates (so it is on the state
 * directory's filesystem and restored disks are reflinks). */

/* Called with each step of a build, for a progress display. */
typedef void (*sbx_progress_fn)(void *user, const char *step);

/* Boots a sandbox from cfg (kernel, initramfs, rootfs, vCPUs, memory; no init command), runs
 * warm_code (may be NULL) in its default Python context through sbx_run_code, and snapshots it
 * as template name (1..64 of A-Z a-z 0-9 . _ -). progress (may be NULL) hears each step. The
 * sandbox is destroyed afterwards. Errors: SBX_EINVAL (name), SBX_ESTATE (it exists), SBX_EGUEST
 * (warm_code raised), those of sbx_sandbox_create, sbx_run_code and sbx_sandbox_snapshot; the
 * message in sbx_config_last_error(cfg). Nothing is left behind on failure. */
SBX_API int sbx_template_build(sbx_config *cfg, const char *name, const char *warm_code,
			       sbx_progress_fn progress, void *user);
/* The names of the templates, one a line, in *names (free with sbx_free; "" when none). */
SBX_API int sbx_template_list(sbx_config *cfg, char **names);
/* Removes template name (sandboxes made from it run on). SBX_ENOENT if there is none. */
SBX_API int sbx_template_remove(sbx_config *cfg, const char *name);
/* sbx_sandbox_restore from template name, then the fresh identity a fork child gets (entropy,
 * hostname). Errors: SBX_ENOENT (no such template), those of sbx_sandbox_restore; the message
 * in sbx_config_last_error(cfg). */
SBX_API int sbx_sandbox_create_from_template(sbx_config *cfg, const char *name,
					     sbx_sandbox **out);

/* ---------------------------------------------------------------- guest */

/* Writes an initramfs (gzip-less newc cpio) holding the project's static guest init and the
 * virtio modules of kernel release `kernel_release` (found under modules_dir, default
 * /lib/modules). Errors: SBX_ENOENT (a module missing, named in *error), SBX_EIO.
 * *error (may be NULL) gets a message to free with sbx_free. */
SBX_API int sbx_initramfs_build(const char *kernel_release, const char *modules_dir,
				const char *out_path, char **error);

#ifdef __cplusplus
}
#endif
#endif
