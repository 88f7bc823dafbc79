/* What the jail costs: cold boots with the jailed VMM against a VMM without a jail (built from
 * an older tree), same library, kernel, initramfs and rootfs, interleaved in one run. Prints
 * medians of sbx_sandbox_create (spawn to "started": building the machine, and jailing it) and
 * of create to ready, their ratios, and the resident memory of the monitor process the jail
 * adds.
 *
 *   bench-jail -b BASELINE_VMM [-n ROUNDS]   paths from SANDBOX_KERNEL, SANDBOX_INITRAMFS,
 *                                            SANDBOX_ROOTFS; the jailed VMM from SANDBOX_VMM
 * A baseline VMM ignores the config's "jail" object and reports no isolation. Run it where
 * guests run (tests/harness/run-e2e); absolute times in an emulated host are not performance
 * figures, the ratios are. */
#define _GNU_SOURCE
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"

#define BOOT_TIMEOUT_MS 300000
#define MEMORY_MIB 512
#define MAX_ROUNDS 64

struct sample {
	double create, ready;
	long monitor_kib;
	unsigned isolation;
};

static long rss_kib(int pid)
{
	char path[64], line[256];
	long total = 0, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld", &v) == 1 || sscanf(line, "RssFile: %ld", &v) == 1)
			total += v;
	fclose(f);
	return total;
}

static int parent_of(int pid)
{
	char path[64], buf[512], *p;
	int ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 2, "%*c %d", &ppid);
	if (f)
		fclose(f);
	return ppid;
}

static int boot(sbx_config *cfg, const char *vmm, struct sample *s)
{
	sbx_sandbox *sb = NULL;
	double t0 = bench_now();
	int rc;

	sbx_config_set_vmm_path(cfg, vmm);
	rc = sbx_sandbox_create(cfg, &sb);
	s->create = bench_now() - t0;
	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	s->ready = bench_now() - t0;
	if (rc != SBX_OK) {
		fprintf(stderr, "%s: %s: %s %s\n", vmm, sbx_err_name(rc),
			sbx_config_last_error(cfg), sb ? sbx_sandbox_last_error(sb) : "");
	} else {
		int vmm_pid = sbx_sandbox_vmm_pid(sb), parent = parent_of(vmm_pid);
		/* The baseline VMM is our child itself; the jailed one has its monitor between. */
		s->monitor_kib = parent == getpid() ? 0 : rss_kib(parent);
		s->isolation = 0;
		sbx_sandbox_isolation(sb, &s->isolation, NULL);
	}
	sbx_sandbox_destroy(sb);
	return rc;
}

int main(int argc, char **argv)
{
	const char *kernel = getenv("SANDBOX_KERNEL"), *initramfs = getenv("SANDBOX_INITRAMFS");
	const char *rootfs = getenv("SANDBOX_ROOTFS"), *jailed = getenv("SANDBOX_VMM");
	const char *baseline = NULL;
	double jc[MAX_ROUNDS], jr[MAX_ROUNDS], bc[MAX_ROUNDS], br[MAX_ROUNDS], mon[MAX_ROUNDS];
	sbx_config *cfg = sbx_config_new();
	int rounds = 5, c;

	while ((c = getopt(argc, argv, "n:b:")) != -1) {
		if (c == 'n')
			rounds = atoi(optarg);
		else if (c == 'b')
			baseline = optarg;
		else
			return 2;
	}
	if (!kernel || !initramfs || !rootfs || !jailed || !baseline || rounds < 1 ||
	    rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: bench-jail -b BASELINE_VMM [-n 1..%d] with SANDBOX_KERNEL, "
				"SANDBOX_INITRAMFS, SANDBOX_ROOTFS and SANDBOX_VMM set\n",
			MAX_ROUNDS);
		return 2;
	}
	sbx_config_set_kernel(cfg, kernel);
	sbx_config_set_initramfs(cfg, initramfs);
	sbx_config_add_disk(cfg, rootfs, 1);
	sbx_config_set_kernel_args(cfg, "sbx.ro=1");
	sbx_config_set_memory_mib(cfg, MEMORY_MIB);
	/* Interleaved, so drift in the machine's load hits both alike. */
	for (int i = 0; i < rounds; i++) {
		struct sample j = { 0 }, b = { 0 };
		if (boot(cfg, jailed, &j) != SBX_OK || boot(cfg, baseline, &b) != SBX_OK)
			return 1;
		printf("round %d: jailed create %.3f s ready %.3f s (isolation 0x%x, monitor %ld "
		       "KiB); baseline create %.3f s ready %.3f s\n",
		       i + 1, j.create, j.ready, j.isolation, j.monitor_kib, b.create, b.ready);
		fflush(stdout);
		jc[i] = j.create;
		jr[i] = j.ready;
		bc[i] = b.create;
		br[i] = b.ready;
		mon[i] = (double)j.monitor_kib;
	}
	double mjc = bench_median(jc, rounds), mbc = bench_median(bc, rounds);
	double mjr = bench_median(jr, rounds), mbr = bench_median(br, rounds);
	printf("median of %d: create jailed %.3f s, baseline %.3f s (ratio %.2f, +%.0f ms); "
	       "create to ready jailed %.3f s, baseline %.3f s (ratio %.2f)\n",
	       rounds, mjc, mbc, mjc / mbc, (mjc - mbc) * 1000, mjr, mbr, mjr / mbr);
	printf("monitor process RSS, median: %.0f KiB\n", bench_median(mon, rounds));
	sbx_config_free(cfg);
	return 0;
}
