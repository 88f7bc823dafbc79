/* What every benchmark here needs: a monotonic clock, medians, and the guest from the
 * environment. */
#pragma once
#include <sandbox.h>

/* CLOCK_MONOTONIC in seconds. */
double bench_now(void);
/* Median of v[0..n) (sorts v). */
double bench_median(double *v, int n);
/* A config booting SANDBOX_KERNEL and SANDBOX_INITRAMFS with SANDBOX_ROOTFS read-only; exits
 * with a usage line naming prog when they are not set. */
sbx_config *bench_config_env(const char *prog);
