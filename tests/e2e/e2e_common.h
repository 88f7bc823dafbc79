/* Shared by the end-to-end programs: paths from the environment and a config that boots the
 * test rootfs. */
#pragma once
#include <sandbox.h>

struct e2e_env {
	const char *kernel, *initramfs, *rootfs, *workdir;
};

/* Reads SANDBOX_KERNEL, SANDBOX_INITRAMFS, SANDBOX_ROOTFS and SANDBOX_E2E_WORKDIR; exits with a
 * loud message if one is missing (never a silent pass). */
void e2e_env_load(struct e2e_env *e);
/* A config for the test guest: kernel, initramfs, the rootfs read-only, vcpus, memory. */
sbx_config *e2e_config(const struct e2e_env *e, unsigned vcpus, unsigned memory_mib);
/* The same booting another rootfs image, writable (a copy the test made: never e->rootfs). */
sbx_config *e2e_config_writable(const struct e2e_env *e, const char *rootfs, unsigned vcpus,
				unsigned memory_mib);
/* Prints the console of sb to stderr (after a failure). */
void e2e_dump_console(sbx_sandbox *sb);
/* 1 if text contains needle. */
int e2e_contains(const char *text, const char *needle);
/* Runs a shell command made from fmt; its exit status (128 if it did not exit). */
__attribute__((format(printf, 1, 2))) int e2e_sh(const char *fmt, ...);
/* Runs a shell command made from fmt; its stdout (first 64 KiB), NUL-terminated; free it. */
__attribute__((format(printf, 1, 2))) char *e2e_sh_out(const char *fmt, ...);
