/* The guest the snapshot and template benchmarks boot, from the environment. */
#pragma once
#include <sandbox.h>

/* A config with SANDBOX_KERNEL, SANDBOX_INITRAMFS and SANDBOX_ROOTFS (read-only); exits with a
 * message naming prog if one is unset. */
sbx_config *bench_guest_config(const char *prog);
