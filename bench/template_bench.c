/* Templates and fork against cold boot, in one run: median cold boot to a ready agent, median
 * create-from-template (to a ready agent with the clock set and the CRNG reseeded), their
 * ratio, median fork time per child, and QEMU microvm restoring a migration file of the same
 * kernel (bench/qemu-peer-restore) for comparison.
 *
 *   bench-template [-n ROUNDS] [-c CHILDREN]   paths from SANDBOX_KERNEL, SANDBOX_INITRAMFS,
 *                                              SANDBOX_ROOTFS (used read-only)
 * The template goes to $SANDBOX_TEMPLATE_DIR, else a fresh directory in $TMPDIR (default /tmp),
 * and is removed at the end. QEMU is skipped, saying so, without qemu-system-x86_64. Inside an
 * emulated KVM host absolute figures are not performance figures; compare the ratios. */
#define _GNU_SOURCE
#include "stats.h"
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 300000
#define MAX_ROUNDS 64
#define NAME "bench"

static void die(const char *what, int rc, const char *msg)
{
	fprintf(stderr, "bench-template: %s: %s: %s\n", what, sbx_err_name(rc), msg);
	exit(1);
}

static double cold_boot(sbx_config *cfg)
{
	double t0 = bench_now();
	sbx_sandbox *sb = NULL;
	int rc = sbx_sandbox_create(cfg, &sb);

	if (rc != SBX_OK)
		die("create", rc, sbx_config_last_error(cfg));
	rc = sbx_sandbox_wait_ready(sb, READY_TIMEOUT_MS);
	if (rc != SBX_OK)
		die("boot", rc, sbx_sandbox_last_error(sb));
	t0 = bench_now() - t0;
	sbx_sandbox_destroy(sb);
	return t0;
}

static sbx_sandbox *from_template(sbx_config *cfg, double *seconds)
{
	double t0 = bench_now();
	sbx_sandbox *sb = NULL;
	int rc = sbx_sandbox_create_from_template(cfg, NAME, &sb);

	if (rc != SBX_OK)
		die("create from template", rc, sbx_config_last_error(cfg));
	*seconds = bench_now() - t0;
	return sb;
}

static double fork_per_child(sbx_sandbox *sb, unsigned n)
{
	sbx_sandbox *c[SBX_FORK_MAX];
	double t0 = bench_now();
	int rc = sbx_sandbox_fork(sb, NULL, n, c);

	if (rc != SBX_OK)
		die("fork", rc, sbx_sandbox_last_error(sb));
	t0 = (bench_now() - t0) / n;
	for (unsigned i = 0; i < n; i++)
		sbx_sandbox_destroy(c[i]);
	return t0;
}

/* The QEMU peer, through the script beside this program's sources; its last line. */
static void qemu_peer(int rounds)
{
	char cmd[1024];

	if (system("command -v qemu-system-x86_64 >/dev/null") != 0) {
		printf("qemu microvm: SKIPPED (no qemu-system-x86_64; apt-get install "
		       "qemu-system-x86)\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "%s %d | tail -1", BENCH_QEMU_PEER, rounds);
	fflush(stdout);
	if (system(cmd) != 0)
		printf("qemu microvm: the peer script failed (see above)\n");
}

int main(int argc, char **argv)
{
	double boot[MAX_ROUNDS], create[MAX_ROUNDS], forks[MAX_ROUNDS], b, t;
	char tmpl[4096] = "";
	unsigned children = 4;
	int rounds = 5, opt, rc;
	sbx_config *cfg = bench_config_env("bench-template");
	sbx_sandbox *sb;

	while ((opt = getopt(argc, argv, "n:c:")) != -1) {
		if (opt == 'n')
			rounds = atoi(optarg);
		else if (opt == 'c')
			children = (unsigned)atoi(optarg);
		else
			return 2;
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || children < 1 || children > SBX_FORK_MAX) {
		fprintf(stderr, "usage: bench-template [-n 1..%d] [-c 1..%d]\n", MAX_ROUNDS,
			SBX_FORK_MAX);
		return 2;
	}
	if (!getenv("SANDBOX_TEMPLATE_DIR")) {
		snprintf(tmpl, sizeof(tmpl), "%s/bench-template-XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(tmpl))
			die("mkdtemp", SBX_EIO, tmpl);
		setenv("SANDBOX_TEMPLATE_DIR", tmpl, 1);
	}
	for (int i = 0; i < rounds; i++) {
		boot[i] = cold_boot(cfg);
		printf("cold boot %d: %.3f s\n", i + 1, boot[i]);
	}
	rc = sbx_template_build(cfg, NAME, NULL, NULL, NULL);
	if (rc != SBX_OK)
		die("template build", rc, sbx_config_last_error(cfg));
	for (int i = 0; i < rounds; i++) {
		sb = from_template(cfg, &create[i]);
		forks[i] = fork_per_child(sb, children);
		printf("create from template %d: %.3f s; fork of %u: %.3f s a child\n", i + 1,
		       create[i], children, forks[i]);
		sbx_sandbox_destroy(sb);
	}
	sbx_template_remove(cfg, NAME);
	if (tmpl[0])
		rmdir(tmpl);
	b = bench_median(boot, rounds);
	t = bench_median(create, rounds);
	printf("median of %d: cold boot %.3f s, create from template %.3f s, template/boot %.3f, "
	       "fork %.3f s a child (%u children)\n",
	       rounds, b, t, t / b, bench_median(forks, rounds), children);
	qemu_peer(rounds);
	sbx_config_free(cfg);
	return 0;
}
