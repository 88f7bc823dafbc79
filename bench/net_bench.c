/* What a network costs a sandbox: sandboxes with and without one, alternately, each timed from
 * sbx_sandbox_create's call to its return (the library's host side: lease, namespace, veth, tap,
 * addresses, routes, NAT, then the VMM's spawn) and to a ready agent. Prints medians and the
 * difference. Root; runs in a network namespace of its own, so the host's network is untouched.
 *
 *   bench-net [-n ROUNDS]      paths from SANDBOX_KERNEL, SANDBOX_INITRAMFS, SANDBOX_ROOTFS
 *   bench-net -f FAKE_VMM [-n ROUNDS]
 *                              the host side alone: create and destroy with tests/net/fake-vmm as
 *                              the VMM (no guest, no KVM), so the network's own cost stands out
 * Inside an emulated KVM host absolute figures are not performance figures; compare the two. */
#define _GNU_SOURCE
#include <sandbox.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"

#define READY_TIMEOUT_MS 300000
#define MAX_ROUNDS 200

static int host_only;

static sbx_config *bench_config(int net)
{
	sbx_config *cfg = bench_config_env("bench-net");

	if (net) {
		sbx_net_policy *p = sbx_net_policy_new(SBX_NET_NONE);
		sbx_config_set_net_policy(cfg, p);
		sbx_net_policy_free(p);
	}
	return cfg;
}

/* One sandbox: seconds to create's return and to ready (to destroy's return for host_only). */
static void one(int net, double *create_s, double *ready_s)
{
	sbx_config *cfg = bench_config(net);
	sbx_sandbox *sb = NULL;
	double t0 = bench_now();
	int rc = sbx_sandbox_create(cfg, &sb);

	*create_s = bench_now() - t0;
	if (host_only && rc == SBX_OK) {
		t0 = bench_now();
		sbx_sandbox_destroy(sb);
		*ready_s = bench_now() - t0;
		sbx_config_free(cfg);
		return;
	}
	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(sb, READY_TIMEOUT_MS);
	*ready_s = bench_now() - t0;
	if (rc != SBX_OK) {
		fprintf(stderr, "bench-net: %s: %s %s\n", sbx_err_name(rc),
			sbx_config_last_error(cfg), sb ? sbx_sandbox_last_error(sb) : "");
		exit(1);
	}
	sbx_sandbox_destroy(sb);
	sbx_config_free(cfg);
}

int main(int argc, char **argv)
{
	double create[2][MAX_ROUNDS], ready[2][MAX_ROUNDS], c[2], r[2];
	int rounds = 5, opt;

	while ((opt = getopt(argc, argv, "n:f:")) != -1) {
		if (opt == 'n') {
			rounds = atoi(optarg);
		} else if (opt == 'f') {
			/* Any regular files do for the stand-in: it boots nothing. */
			host_only = 1;
			setenv("SANDBOX_VMM", optarg, 1);
			setenv("SANDBOX_KERNEL", optarg, 0);
			setenv("SANDBOX_INITRAMFS", optarg, 0);
			setenv("SANDBOX_ROOTFS", optarg, 0);
		} else {
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS)
		return 2;
	if (unshare(CLONE_NEWNET) < 0) {
		perror("bench-net: a network namespace of its own (root?)");
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		for (int net = 0; net < 2; net++) {
			one(net, &create[net][i], &ready[net][i]);
			if (!host_only)
				printf("round %d %-10s create %7.1f ms  ready %6.2f s\n", i + 1,
				       net ? "network" : "no network", create[net][i] * 1e3,
				       ready[net][i]);
		}
	}
	for (int net = 0; net < 2; net++) {
		c[net] = bench_median(create[net], rounds);
		r[net] = bench_median(ready[net], rounds);
	}
	printf("median create: %.1f ms without a network, %.1f ms with one (+%.1f ms)\n",
	       c[0] * 1e3, c[1] * 1e3, (c[1] - c[0]) * 1e3);
	if (host_only)
		printf("median destroy: %.1f ms without a network, %.1f ms with one (+%.1f ms)\n",
		       r[0] * 1e3, r[1] * 1e3, (r[1] - r[0]) * 1e3);
	else
		printf("median ready:  %.2f s without, %.2f s with (ratio %.3f)\n", r[0], r[1],
		       r[1] / r[0]);
	return 0;
}
