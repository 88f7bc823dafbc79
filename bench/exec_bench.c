/* The agent's hot paths, in one run: median cold boot to a ready agent, median round trip of
 * exec("true") over many runs, and file write/read throughput through the agent.
 *
 *   bench-exec [-b BOOTS] [-n EXECS] [-m FILE_MIB]   paths from SANDBOX_KERNEL,
 *                                                    SANDBOX_INITRAMFS, SANDBOX_ROOTFS
 * Inside an emulated KVM host absolute figures are not performance figures; compare ratios. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sandbox.h>
#include "stats.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 300000
#define FILE_ROUNDS 3

static sbx_sandbox *boot(sbx_config *cfg, double *seconds)
{
	sbx_sandbox *sb = NULL;
	double t0 = bench_now();
	int rc = sbx_sandbox_create(cfg, &sb);

	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(sb, READY_TIMEOUT_MS);
	*seconds = bench_now() - t0;
	if (rc != SBX_OK) {
		fprintf(stderr, "boot: %s: %s %s\n", sbx_err_name(rc), sbx_config_last_error(cfg),
			sb ? sbx_sandbox_last_error(sb) : "");
		exit(1);
	}
	return sb;
}

/* MB/s of writing then reading back `mib` MiB through a host file. */
static void file_throughput(sbx_sandbox *sb, unsigned mib, double *write_mbs, double *read_mbs)
{
	char path[] = "/tmp/bench-exec-XXXXXX";
	static char block[1 << 20];
	int fd = mkstemp(path);
	double t0;

	memset(block, 0x5a, sizeof(block));
	for (unsigned i = 0; i < mib; i++)
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
			exit(1);
	lseek(fd, 0, SEEK_SET);
	t0 = bench_now();
	if (sbx_file_write_fd(sb, "/tmp/bench.bin", fd, 0644) != SBX_OK)
		exit(1);
	*write_mbs = mib * 1.048576 / (bench_now() - t0);
	ftruncate(fd, 0);
	lseek(fd, 0, SEEK_SET);
	t0 = bench_now();
	if (sbx_file_read_fd(sb, "/tmp/bench.bin", fd) != SBX_OK)
		exit(1);
	*read_mbs = mib * 1.048576 / (bench_now() - t0);
	close(fd);
	unlink(path);
}

int main(int argc, char **argv)
{
	int boots = 3, execs = 1000, c;
	unsigned mib = 64;
	double boot_s[32], *rtt, wr[FILE_ROUNDS], rd[FILE_ROUNDS];
	const char *true_argv[] = { "true", NULL };
	sbx_config *cfg = bench_config_env("bench-exec");
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_sandbox *sb;

	sbx_config_set_memory_mib(cfg, 1024);
	while ((c = getopt(argc, argv, "b:n:m:")) != -1) {
		if (c == 'b')
			boots = atoi(optarg);
		else if (c == 'n')
			execs = atoi(optarg);
		else if (c == 'm')
			mib = (unsigned)atoi(optarg);
		else
			return 2;
	}
	if (boots < 1 || boots > 32 || execs < 1 || mib < 1)
		return 2;
	for (int i = 0; i < boots; i++) {
		sb = boot(cfg, &boot_s[i]);
		printf("boot %d: %.3f s to a ready agent\n", i + 1, boot_s[i]);
		if (i < boots - 1)
			sbx_sandbox_destroy(sb);
	}
	/* The last guest stays up for the exec and file figures. */
	rtt = calloc((size_t)execs, sizeof(*rtt));
	sbx_exec_opts_set_argv(o, true_argv);
	for (int i = 0; i < execs; i++) {
		sbx_exec_result *r = NULL;
		double t0 = bench_now();
		if (sbx_exec(sb, o, &r) != SBX_OK || sbx_exec_result_exit_code(r) != 0) {
			fprintf(stderr, "exec true failed: %s\n", sbx_sandbox_last_error(sb));
			return 1;
		}
		rtt[i] = bench_now() - t0;
		sbx_exec_result_free(r);
	}
	for (int i = 0; i < FILE_ROUNDS; i++)
		file_throughput(sb, mib, &wr[i], &rd[i]);
	double boot_med = bench_median(boot_s, boots), rtt_med = bench_median(rtt, execs);
	printf("cold boot to ready agent, median of %d: %.3f s\n", boots, boot_med);
	printf("exec true round trip, median of %d: %.2f ms (%.5f of a cold boot)\n", execs,
	       rtt_med * 1e3, rtt_med / boot_med);
	printf("file write %u MiB, median of %d: %.1f MB/s; read: %.1f MB/s\n", mib, FILE_ROUNDS,
	       bench_median(wr, FILE_ROUNDS), bench_median(rd, FILE_ROUNDS));
	sbx_sandbox_destroy(sb);
	sbx_exec_opts_free(o);
	sbx_config_free(cfg);
	free(rtt);
	return 0;
}
