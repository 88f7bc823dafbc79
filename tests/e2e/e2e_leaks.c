/* End-to-end: nothing outlives a sandbox, and a sandbox does not outlive its time to live.
 *   - TTL: a detached sandbox nobody is attached to stops when its time to live runs out, with
 *     SBX_EXIT_TTL and a last error that says so; sbx_gc then removes what it left.
 *   - 200 create/destroy cycles (every tenth with a network), 5 where the VMM is killed with
 *     SIGKILL in the middle of an exec, one where its monitor is, and one where the caller is:
 *     the host's network namespaces, links, NAT tables, sandbox cgroups, VMM and DNS guard
 *     processes, this process's open fds and the state directory's files are exactly as before.
 * Root, in the emulated KVM host (paths of the guest from the environment, as e2e_agent). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_common.h"
#include "testing.h"

#define CYCLES 200
#define KILLED_MID_EXEC 5
#define TTL_S 8
#define BOOT_TIMEOUT_MS (240 * 1000)
#define CGROUP_PARENT "/sys/fs/cgroup/libsandbox"

static struct e2e_env env;
static char state[256];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sbx_config *config(int net)
{
	sbx_config *cfg = e2e_config(&env, 1, 256);

	sbx_config_set_state_dir(cfg, state);
	if (net) {
		sbx_net_policy *p = sbx_net_policy_new(SBX_NET_NONE);
		CHECK_EQ(sbx_config_set_net_policy(cfg, p), SBX_OK);
		/* An upstream, so each sandbox has its DNS guard too. */
		CHECK_EQ(sbx_config_set_net_dns(cfg, "192.0.2.53"), SBX_OK);
		sbx_net_policy_free(p);
	}
	return cfg;
}

/* This process's open fds, one a line (a shell would show its own). */
static void own_fds(char *buf, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;
	char link[300], target[256];

	buf[0] = 0;
	while (d && (e = readdir(d))) {
		ssize_t t;
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		t = readlink(link, target, sizeof(target) - 1);
		target[t < 0 ? 0 : t] = 0;
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s %s\n", e->d_name, target);
	}
	if (d)
		closedir(d);
}

/* Everything a sandbox could leave on the host, as text. */
static char *host_state(void)
{
	char *netns = e2e_sh_out("for p in /proc/[0-9]*; do readlink $p/ns/net; done 2>/dev/null | "
				 "sort -u");
	char *links = e2e_sh_out("ls /sys/class/net | sort");
	char *tables = e2e_sh_out("nft list tables 2>&1 | sort");
	char *cgroups = e2e_sh_out("find " CGROUP_PARENT " -mindepth 1 -type d 2>/dev/null | sort");
	char *vmms = e2e_sh_out("for p in /proc/[0-9]*; do cat $p/stat 2>/dev/null; echo; done | "
				"grep -c '(sandbox-vmm) [^Z]\\|(sbx-dns-guard) [^Z]'");
	char *files = e2e_sh_out("find %s 2>/dev/null | sort", state);
	char fds[8192], *text = NULL;

	own_fds(fds, sizeof(fds));
	if (asprintf(&text,
		     "network namespaces:\n%slinks:\n%snft tables:\n%scgroups:\n%s"
		     "VMM and DNS guard processes: "
		     "%sfds:\n%sstate files:\n%s",
		     netns, links, tables, cgroups, vmms, fds, files) < 0)
		text = NULL;
	free(netns);
	free(links);
	free(tables);
	free(cgroups);
	free(vmms);
	free(files);
	return text;
}

/* Runs sbx_gc until the sandbox id is removed (its VMM may take a moment to go); 1 if it was. */
static int gc_until_removed(const char *id, double seconds)
{
	double end = now() + seconds;
	int found = 0;

	while (!found && now() < end) {
		char *report = NULL;
		unsigned removed = 0;

		CHECK_EQ(sbx_gc(state, &removed, &report), SBX_OK);
		found = report && strstr(report, id) != NULL;
		if (found)
			printf("gc: %s", report);
		sbx_free(report);
		if (!found)
			usleep(200 * 1000);
	}
	return found;
}

static void test_ttl(void)
{
	sbx_config *cfg = config(0);
	sbx_sandbox *sb = NULL;
	char id[64] = "";
	double t0 = now(), ended;
	int reason = 0;

	printf("== TTL of %d s, nobody attached\n", TTL_S);
	sbx_config_set_detached(cfg, 1);
	CHECK_EQ(sbx_config_set_ttl(cfg, SBX_TTL_MAX_S + 1), SBX_ERANGE);
	CHECK_EQ(sbx_config_set_ttl(cfg, TTL_S), SBX_OK);
	CHECK_EQ(sbx_sandbox_create(cfg, &sb), SBX_OK);
	if (!sb) {
		fprintf(stderr, "create: %s\n", sbx_config_last_error(cfg));
		sbx_config_free(cfg);
		return;
	}
	snprintf(id, sizeof(id), "%s", sbx_sandbox_id(sb));
	sbx_sandbox_close(sb); /* detached: it runs on without us */
	sleep(TTL_S / 2);
	CHECK_EQ(sbx_sandbox_attach(state, id, &sb), SBX_OK);
	if (sb) {
		CHECK_EQ(sbx_sandbox_wait_exit(sb, 60 * 1000, &reason), SBX_OK);
		ended = now() - t0;
		printf("ended after %.1f s: reason %d, %s\n", ended, reason,
		       sbx_sandbox_last_error(sb));
		CHECK_EQ(reason, SBX_EXIT_TTL);
		CHECK(e2e_contains(sbx_sandbox_last_error(sb), "time to live"));
		CHECK(ended >= TTL_S && ended < TTL_S + 15);
		sbx_sandbox_close(sb);
	}
	CHECK(gc_until_removed(id, 10));
	sbx_config_free(cfg);
}

static void test_cycles(void)
{
	double t0 = now();
	int done = 0;

	printf("== %d create/destroy cycles\n", CYCLES);
	for (int i = 0; i < CYCLES; i++) {
		sbx_config *cfg = config(i % 10 == 0);
		sbx_sandbox *sb = NULL;
		int rc = sbx_sandbox_create(cfg, &sb);

		if (rc != SBX_OK) {
			fprintf(stderr, "cycle %d: create: %s: %s\n", i, sbx_err_name(rc),
				sbx_config_last_error(cfg));
			sbx_config_free(cfg);
			break;
		}
		sbx_sandbox_destroy(sb);
		sbx_config_free(cfg);
		done++;
	}
	CHECK_EQ(done, CYCLES);
	printf("%d cycles in %.1f s (%.0f ms each)\n", done, now() - t0,
	       done ? (now() - t0) * 1000 / done : 0);
}

/* The VMM killed while an exec runs: the exec's caller hears of it, the handle reports the VMM
 * died, and destroy still removes everything. */
static void test_kill_mid_exec(int round)
{
	sbx_config *cfg = config(round % 2);
	sbx_sandbox *sb = NULL;
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	int pid = 0, reason = 0, rc;

	printf("== VMM killed mid-exec, round %d%s\n", round + 1, round % 2 ? " (network)" : "");
	rc = sbx_sandbox_create(cfg, &sb);
	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK) {
		sbx_exec_opts_set_shell(o, "sleep 100");
		CHECK_EQ(sbx_exec_background(sb, o, NULL, NULL, &pid), SBX_OK);
		CHECK_EQ(kill(sbx_sandbox_vmm_pid(sb), SIGKILL), 0);
		sbx_exec_opts_set_shell(o, "true");
		CHECK(sbx_exec(sb, o, &r) != SBX_OK);
		sbx_exec_result_free(r);
		CHECK_EQ(sbx_sandbox_wait_exit(sb, 30 * 1000, &reason), SBX_OK);
		CHECK_EQ(reason, SBX_EXIT_VMM_DIED);
	}
	sbx_sandbox_destroy(sb);
	sbx_exec_opts_free(o);
	sbx_config_free(cfg);
}

/* The monitor killed: the VMM goes with it (parent-death signal), and sbx_gc (here through the
 * CLI's destroy of the ended sandbox) removes what they left. */
static void test_kill_monitor(const char *cli)
{
	sbx_config *cfg = config(1);
	sbx_sandbox *sb = NULL;
	char path[512], id[64] = "";
	int monitor = 0, vmm = 0;
	FILE *f;

	printf("== monitor killed\n");
	sbx_config_set_detached(cfg, 1);
	CHECK_EQ(sbx_sandbox_create(cfg, &sb), SBX_OK);
	if (!sb) {
		sbx_config_free(cfg);
		return;
	}
	snprintf(id, sizeof(id), "%s", sbx_sandbox_id(sb));
	snprintf(path, sizeof(path), "%s/%s/vmm.pid", state, id);
	f = fopen(path, "re");
	CHECK(f && fscanf(f, "%d %d", &monitor, &vmm) == 2);
	if (f)
		fclose(f);
	sbx_sandbox_close(sb);
	CHECK(monitor > 0 && kill(monitor, SIGKILL) == 0);
	for (int i = 0; i < 50 && vmm > 0 && kill(vmm, 0) == 0; i++)
		usleep(100 * 1000);
	CHECK(vmm > 0 && kill(vmm, 0) < 0);
	CHECK_EQ(e2e_sh("SANDBOX_STATE_DIR=%s %s destroy %s", state, cli, id), 0);
	sbx_config_free(cfg);
}

/* The caller killed: a child creates a sandbox with a network and is killed with SIGKILL; its
 * VMM stops with the channel, and sbx_gc removes the rest. */
static void test_kill_caller(void)
{
	char id[64] = "";
	int p[2];
	pid_t child;

	printf("== caller killed\n");
	CHECK_EQ(pipe(p), 0);
	child = fork();
	if (child == 0) {
		sbx_config *cfg = config(1);
		sbx_sandbox *sb = NULL;

		close(p[0]);
		if (sbx_sandbox_create(cfg, &sb) == SBX_OK)
			dprintf(p[1], "%s", sbx_sandbox_id(sb));
		close(p[1]);
		pause();
		_exit(0);
	}
	close(p[1]);
	CHECK(read(p[0], id, sizeof(id) - 1) == 32);
	close(p[0]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK(id[0] && gc_until_removed(id, 30));
}

int main(int argc, char **argv)
{
	char *before, *after;

	e2e_env_load(&env);
	if (argc != 2 || geteuid() != 0) {
		fprintf(stderr, "usage (as root): e2e_leaks SANDBOX_CLI\n");
		return 1;
	}
	/* Unix sockets: on the emulated host's tmpfs, never on the 9p share. */
	snprintf(state, sizeof(state), "/tmp/e2e-state-leaks-%d", (int)getpid());
	e2e_sh("modprobe -a tun veth nf_tables nft_chain_nat nft_masq nft_ct 2>/dev/null");
	/* What the first sandbox makes once for all (the cgroup parent, the lease directory). */
	for (int net = 0; net < 2; net++) {
		sbx_config *cfg = config(net);
		sbx_sandbox *sb = NULL;
		if (sbx_sandbox_create(cfg, &sb) != SBX_OK) {
			fprintf(stderr, "e2e_leaks: cannot create: %s\n", sbx_config_last_error(cfg));
			return 1;
		}
		sbx_sandbox_destroy(sb);
		sbx_config_free(cfg);
	}
	before = host_state();
	printf("before:\n%s", before);
	test_ttl();
	test_cycles();
	for (int i = 0; i < KILLED_MID_EXEC; i++)
		test_kill_mid_exec(i);
	test_kill_monitor(argv[1]);
	test_kill_caller();
	after = host_state();
	CHECK(before && after && strcmp(before, after) == 0);
	if (before && after && strcmp(before, after) != 0)
		fprintf(stderr, "host state differs; after:\n%s", after);
	free(before);
	free(after);
	return TEST_SUMMARY();
}
