/* Snapshot and restore against cold boot, in one run: median cold boot to a ready agent and to
 * the first Python cell's answer, median snapshot time (the call, and how long the guest stood
 * paused), and median restore to the first cell's answer (a cell in a context made before the
 * snapshot, so it needs nothing but the restored memory).
 *
 *   bench-snapshot [-b BOOTS] [-s SNAPSHOTS] [-r RESTORES]   paths from SANDBOX_KERNEL,
 *                                        SANDBOX_INITRAMFS, SANDBOX_ROOTFS; snapshots go to
 *                                        $TMPDIR (default /tmp)
 * The rootfs is used read-only, so snapshots reference it and copy no disk. Inside an emulated
 * KVM host absolute figures are not performance figures; compare the ratios. */
#define _GNU_SOURCE
#include "guest.h"
#include "stats.h"
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 300000
#define MAX_ROUNDS 64

static void die(const char *what, int rc, const char *msg)
{
	fprintf(stderr, "bench-snapshot: %s: %s: %s\n", what, sbx_err_name(rc), msg);
	exit(1);
}

/* Runs a cell and checks its value. */
static void cell(sbx_sandbox *sb, const char *code, const char *want)
{
	sbx_execution *e = NULL;
	const char *got = NULL;
	int rc = sbx_run_code(sb, code, NULL, &e);

	if (rc != SBX_OK)
		die("run_code", rc, sbx_sandbox_last_error(sb));
	for (size_t i = 0; i < sbx_execution_result_count(e) && !got; i++)
		if (sbx_result_is_main(sbx_execution_result(e, i)))
			got = sbx_result_data(sbx_execution_result(e, i), "text/plain", NULL);
	if (!got || strcmp(got, want))
		die("run_code", SBX_EGUEST, "unexpected value");
	sbx_execution_free(e);
}

int main(int argc, char **argv)
{
	double boot[MAX_ROUNDS], boot_cell[MAX_ROUNDS], snap[MAX_ROUNDS], paused[MAX_ROUNDS];
	double restore[MAX_ROUNDS], restore_cell[MAX_ROUNDS];
	int boots = 3, snaps = 3, restores = 5, c;
	const char *tmp = getenv("TMPDIR");
	char base[4096], dir[4200];
	sbx_config *cfg = bench_guest_config("bench-snapshot");
	sbx_sandbox *sb = NULL;

	while ((c = getopt(argc, argv, "b:s:r:")) != -1) {
		int n = atoi(optarg);
		if (n < 1 || n > MAX_ROUNDS) {
			fprintf(stderr, "bench-snapshot: counts are 1..%d\n", MAX_ROUNDS);
			return 2;
		}
		if (c == 'b')
			boots = n;
		else if (c == 's')
			snaps = n;
		else if (c == 'r')
			restores = n;
		else
			return 2;
	}
	snprintf(base, sizeof(base), "%s/bench-snapshot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	for (int i = 0; i < boots; i++) {
		double t0 = bench_now();
		int rc = sbx_sandbox_create(cfg, &sb);

		if (rc == SBX_OK)
			rc = sbx_sandbox_wait_ready(sb, READY_TIMEOUT_MS);
		if (rc != SBX_OK)
			die("cold boot", rc,
			    sb ? sbx_sandbox_last_error(sb) : sbx_config_last_error(cfg));
		boot[i] = bench_now() - t0;
		cell(sb, "x = 42\nx", "42");
		boot_cell[i] = bench_now() - t0;
		printf("cold boot %d: ready %.3f s, first cell %.3f s\n", i + 1, boot[i],
		       boot_cell[i]);
		if (i + 1 < boots)
			sbx_sandbox_destroy(sb);
	}
	for (int i = 0; i < snaps; i++) {
		sbx_snapshot_info *info = NULL;
		double t0 = bench_now();
		int rc;

		snprintf(dir, sizeof(dir), "%s/snap-%d", base, i);
		rc = sbx_sandbox_snapshot(sb, dir, &info);
		if (rc != SBX_OK)
			die("snapshot", rc, sbx_sandbox_last_error(sb));
		snap[i] = bench_now() - t0;
		paused[i] = sbx_snapshot_info_seconds(info);
		printf("snapshot %d: %.3f s (guest paused %.3f s), %.1f MiB of memory written\n",
		       i + 1, snap[i], paused[i],
		       (double)sbx_snapshot_info_memory_bytes(info) / (1 << 20));
		sbx_snapshot_info_free(info);
	}
	sbx_sandbox_destroy(sb);
	snprintf(dir, sizeof(dir), "%s/snap-0", base);
	for (int i = 0; i < restores; i++) {
		double t0 = bench_now();
		int rc = sbx_sandbox_restore(cfg, dir, &sb);

		if (rc != SBX_OK)
			die("restore", rc, sbx_config_last_error(cfg));
		restore[i] = bench_now() - t0;
		cell(sb, "x", "42");
		restore_cell[i] = bench_now() - t0;
		printf("restore %d: ready %.3f s, first cell %.3f s\n", i + 1, restore[i],
		       restore_cell[i]);
		sbx_sandbox_destroy(sb);
	}
	{
		double b = bench_median(boot, boots), bc = bench_median(boot_cell, boots);
		double r = bench_median(restore, restores),
		       rc = bench_median(restore_cell, restores);

		printf("median cold boot to ready agent:      %.3f s (%d runs)\n", b, boots);
		printf("median cold boot to first cell:       %.3f s\n", bc);
		printf(
		    "median snapshot call:                 %.3f s, guest paused %.3f s (%d runs)\n",
		    bench_median(snap, snaps), bench_median(paused, snaps), snaps);
		printf("median restore to ready agent:        %.3f s (%d runs)\n", r, restores);
		printf("median restore to first cell:         %.3f s\n", rc);
		printf("ratio restore-to-first-cell / cold-boot-to-ready: %.3f\n", rc / b);
		printf("ratio restore-to-first-cell / cold-boot-to-first-cell: %.3f\n", rc / bc);
	}
	snprintf(dir, sizeof(dir), "rm -rf '%s'", base);
	if (system(dir) != 0)
		fprintf(stderr, "bench-snapshot: could not remove %s\n", base);
	sbx_config_free(cfg);
	return 0;
}
