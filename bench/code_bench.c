/* The code interpreter's hot path, in one run: median round trip of the cell `1+1` in a warm
 * Python context, next to the median round trip of exec("true") on the same guest (the floor:
 * one agent connection and one process).
 *
 *   bench-code [-n CELLS]   paths from SANDBOX_KERNEL, SANDBOX_INITRAMFS, SANDBOX_ROOTFS
 * Inside an emulated KVM host absolute figures are not performance figures; compare ratios. */
#define _GNU_SOURCE
#include <sandbox.h>
#include "stats.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 300000

int main(int argc, char **argv)
{
	const char *kernel = getenv("SANDBOX_KERNEL"), *initramfs = getenv("SANDBOX_INITRAMFS");
	const char *rootfs = getenv("SANDBOX_ROOTFS"), *true_argv[] = { "true", NULL };
	sbx_config *cfg = sbx_config_new();
	sbx_exec_opts *xo = sbx_exec_opts_new();
	sbx_sandbox *sb = NULL;
	double *cell_rtt, *exec_rtt, t0, first = 0;
	int n = 500, c, rc;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n')
			return 2;
		n = atoi(optarg);
	}
	if (n < 1 || !kernel || !initramfs || !rootfs || !cfg || !xo) {
		fprintf(stderr, "bench-code: set SANDBOX_KERNEL, SANDBOX_INITRAMFS, SANDBOX_ROOTFS\n");
		return 2;
	}
	sbx_config_set_kernel(cfg, kernel);
	sbx_config_set_initramfs(cfg, initramfs);
	sbx_config_add_disk(cfg, rootfs, 1);
	sbx_config_set_kernel_args(cfg, "sbx.ro=1");
	sbx_config_set_memory_mib(cfg, 1024);
	rc = sbx_sandbox_create(cfg, &sb);
	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(sb, READY_TIMEOUT_MS);
	if (rc != SBX_OK) {
		fprintf(stderr, "boot: %s: %s\n", sbx_err_name(rc), sb ? sbx_sandbox_last_error(sb) : "");
		return 1;
	}
	cell_rtt = calloc((size_t)n, sizeof(double));
	exec_rtt = calloc((size_t)n, sizeof(double));
	sbx_exec_opts_set_argv(xo, true_argv);
	/* The first cell starts the default Python context: reported apart, not in the median. */
	for (int i = -1; i < n; i++) {
		sbx_execution *e = NULL;
		const char *text;

		t0 = bench_now();
		rc = sbx_run_code(sb, "1+1", NULL, &e);
		text = rc == SBX_OK && sbx_execution_result_count(e)
			       ? sbx_result_data(sbx_execution_result(e, 0), "text/plain", NULL)
			       : NULL;
		if (!text || strcmp(text, "2")) {
			fprintf(stderr, "1+1 failed: %s\n", sbx_sandbox_last_error(sb));
			return 1;
		}
		if (i < 0)
			first = bench_now() - t0;
		else
			cell_rtt[i] = bench_now() - t0;
		sbx_execution_free(e);
	}
	for (int i = 0; i < n; i++) {
		sbx_exec_result *r = NULL;

		t0 = bench_now();
		if (sbx_exec(sb, xo, &r) != SBX_OK || sbx_exec_result_exit_code(r) != 0) {
			fprintf(stderr, "exec true failed: %s\n", sbx_sandbox_last_error(sb));
			return 1;
		}
		exec_rtt[i] = bench_now() - t0;
		sbx_exec_result_free(r);
	}
	double cell_med = bench_median(cell_rtt, n), exec_med = bench_median(exec_rtt, n);
	printf("first cell (starts the Python context): %.3f s\n", first);
	printf("cell 1+1 round trip in a warm Python context, median of %d: %.2f ms\n", n,
	       cell_med * 1e3);
	printf("exec true round trip, median of %d: %.2f ms; cell/exec ratio %.2f\n", n,
	       exec_med * 1e3, cell_med / exec_med);
	sbx_sandbox_destroy(sb);
	sbx_exec_opts_free(xo);
	sbx_config_free(cfg);
	free(cell_rtt);
	free(exec_rtt);
	return 0;
}
