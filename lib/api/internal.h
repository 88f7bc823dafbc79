/* Library internals shared by the files of lib/api. */
#pragma once
#include <sandbox.h>
#include <stdarg.h>
#include <sys/types.h>

#include "util/jsonl.h"

#define SBX_MAX_DISKS 8
#define SBX_ERRMSG_MAX 512

struct sbx_disk {
	char *path;
	int read_only;
};

struct sbx_config {
	char *kernel, *initramfs, *kernel_args, *init_command, *state_dir, *vmm_path;
	struct sbx_disk disks[SBX_MAX_DISKS];
	unsigned ndisks;
	unsigned vcpus;
	unsigned memory_mib;
	char err[SBX_ERRMSG_MAX];
};

/* Records "message" in buf and returns code, so error paths read `return sbx_fail(...)`. */
__attribute__((format(printf, 3, 4))) int sbx_fail(char *buf, int code, const char *fmt, ...);
/* Maps an error name sent by the VMM ("EKERNEL") back to its code; SBX_EVMM if unknown. */
int sbx_err_from_name(const char *name);
/* strdup that reports failure as SBX_ENOMEM; replaces *dst (freeing the old value). */
int sbx_set_string(char **dst, const char *src);
