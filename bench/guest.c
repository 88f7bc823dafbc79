#include "guest.h"

#include <stdio.h>
#include <stdlib.h>

sbx_config *bench_guest_config(const char *prog)
{
	const char *kernel = getenv("SANDBOX_KERNEL"), *initramfs = getenv("SANDBOX_INITRAMFS");
	const char *rootfs = getenv("SANDBOX_ROOTFS");
	sbx_config *cfg = sbx_config_new();

	if (!kernel || !initramfs || !rootfs || !cfg) {
		fprintf(stderr, "%s: set SANDBOX_KERNEL, SANDBOX_INITRAMFS, SANDBOX_ROOTFS\n",
			prog);
		exit(2);
	}
	/* Read-only: snapshots reference the rootfs and copy no disk. */
	sbx_config_set_kernel(cfg, kernel);
	sbx_config_set_initramfs(cfg, initramfs);
	sbx_config_add_disk(cfg, rootfs, 1);
	sbx_config_set_kernel_args(cfg, "sbx.ro=1");
	return cfg;
}
