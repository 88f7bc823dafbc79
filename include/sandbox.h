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
	X(EPROTO, -14, "protocol error")

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
 * /dev/vdb, ... read_only non-zero makes the device read-only to the guest. At most 8. */
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
/* The sandbox-vmm executable to spawn. Default: $SANDBOX_VMM, else the installed one. */
SBX_API int sbx_config_set_vmm_path(sbx_config *cfg, const char *path);

/* --------------------------------------------------------------- sandbox */

typedef struct sbx_sandbox sbx_sandbox;

enum sbx_exit_reason {
	SBX_EXIT_NONE = 0,     /* still running */
	SBX_EXIT_POWEROFF = 1, /* the guest powered off */
	SBX_EXIT_REBOOT = 2,   /* the guest asked for a reboot (a sandbox does not reboot) */
	SBX_EXIT_STOPPED = 3,  /* stopped by sbx_sandbox_stop */
	SBX_EXIT_CRASH = 4,    /* the guest crashed (triple fault, KVM internal error) */
	SBX_EXIT_VMM_DIED = 5, /* the VMM process died (killed, or failed) */
};

/* Validates cfg, spawns the VMM process and starts the guest; returns without waiting for the
 * guest to boot. The config may be freed afterwards. Errors: SBX_EINVAL, SBX_ENOENT (kernel,
 * initramfs or disk missing), SBX_EKERNEL, SBX_ENOKVM, SBX_ENOHWVIRT, SBX_EVMM, SBX_ENOMEM; the
 * message is in sbx_config_last_error(cfg). Nothing is left behind on failure. */
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
/* The sandbox's id (unique on this host). Owned by the handle. */
SBX_API const char *sbx_sandbox_id(const sbx_sandbox *sb);
/* Process id of the VMM (for monitoring). */
SBX_API int sbx_sandbox_vmm_pid(const sbx_sandbox *sb);
SBX_API const char *sbx_sandbox_last_error(const sbx_sandbox *sb);

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
