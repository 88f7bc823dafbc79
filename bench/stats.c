#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

sbx_config *bench_config_env(const char *prog)
{
	const char *kernel = getenv("SANDBOX_KERNEL"), *initramfs = getenv("SANDBOX_INITRAMFS");
	const char *rootfs = getenv("SANDBOX_ROOTFS");
	sbx_config *cfg = sbx_config_new();

	if (!kernel || !initramfs || !rootfs || !cfg) {
		fprintf(stderr, "%s: set SANDBOX_KERNEL, SANDBOX_INITRAMFS, SANDBOX_ROOTFS\n", prog);
		exit(2);
	}
	sbx_config_set_kernel(cfg, kernel);
	sbx_config_set_initramfs(cfg, initramfs);
	sbx_config_add_disk(cfg, rootfs, 1);
	sbx_config_set_kernel_args(cfg, "sbx.ro=1");
	return cfg;
}
