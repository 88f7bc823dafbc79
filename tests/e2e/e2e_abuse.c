/* End-to-end: guest abuse stays inside. A bystander sandbox B (1 vCPU, 128 MiB) stays up while
 * an attacker A (2 vCPUs, 256 MiB, a pids limit, a writable copy of the rootfs) runs a fork
 * bomb, allocates four times its memory, spins every vCPU and runs rm -rf / --no-preserve-root.
 * Each runs in the background while the test looks from outside once a second: the emulated
 * host must stay responsive (a 100 ms sleep wakes on time, /bin/true spawns and is reaped
 * quickly) and B must answer `echo ok` within seconds. A's VMM stays inside its cgroup (no task
 * or OOM kill there: the guest kernel deals with its own processes) and the files outside A are
 * untouched. Then a sandbox whose cgroup memory limit is tightened below what its guest goes on
 * to touch is stopped by the host's OOM killer and reports SBX_EXIT_LIMIT naming the memory
 * limit, and a sandbox spinning past its time to live reports SBX_EXIT_TTL. Nothing is left.
 * Root, in the emulated KVM host (paths of the guest from the environment, as e2e_jail). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_common.h"
#include "testing.h"

#define BOOT_TIMEOUT_MS (240 * 1000)
#define HOST_SLOW_S 2.0 /* a host probe slower than this: the host is not responsive */
#define B_SLOW_S 5.0	/* B answers echo within this, whatever A does */
#define A_VCPUS 2
#define A_MEMORY_MIB 256
#define A_PIDS_MAX 12
/* Room left above the limited sandbox's usage: far less than its hog touches. */
#define LIMIT_MARGIN_MIB 32

extern char **environ;

static struct e2e_env env;
static char state[256], scratch[256];
static sbx_sandbox *bystander, *attacker;
static double boot_s; /* how long A and B took to boot side by side */

/* The worst figures seen from outside during one abuse. */
struct outside {
	int looks, b_failed;
	double late, spawn, b; /* seconds: sleep overshoot, spawn of /bin/true, B's echo */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double max2(double a, double b)
{
	return a > b ? a : b;
}

/* Runs a shell command in sb; its result (NULL if it could not run; rc in *rc if asked). */
static sbx_exec_result *run(sbx_sandbox *sb, const char *shell, unsigned timeout_ms, int *rc)
{
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	int got;

	sbx_exec_opts_set_shell(o, shell);
	sbx_exec_opts_set_timeout_ms(o, timeout_ms);
	got = sbx_exec(sb, o, &r);
	sbx_exec_opts_free(o);
	if (rc)
		*rc = got;
	return got == SBX_OK ? r : NULL;
}

/* Whether sb answers `echo ok` correctly; the time it took in *seconds. */
static int answers(sbx_sandbox *sb, double *seconds)
{
	double t0 = now();
	sbx_exec_result *r = run(sb, "echo ok", 30 * 1000, NULL);
	int ok = r && strcmp(sbx_exec_result_stdout(r, NULL), "ok\n") == 0;

	*seconds = now() - t0;
	sbx_exec_result_free(r);
	return ok;
}

/* The host, from this process: how late a 100 ms sleep wakes, and how long /bin/true takes to
 * spawn, run and be reaped (a hogged CPU or a stalled fork shows in both). */
static void look_outside(struct outside *f)
{
	struct timespec ts = {0, 100 * 1000 * 1000};
	char *argv[] = {"true", NULL};
	double t0 = now(), spawn, b;
	pid_t pid;
	int st = -1;

	nanosleep(&ts, NULL);
	f->late = max2(f->late, now() - t0 - 0.1);
	t0 = now();
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &st, 0);
	spawn = st == 0 ? now() - t0 : 1e9;
	f->spawn = max2(f->spawn, spawn);
	f->b_failed += !answers(bystander, &b);
	f->b = max2(f->b, b);
	f->looks++;
}

static void check_outside(const char *what, const struct outside *f)
{
	printf("%s: %d looks from outside; host: sleep late by %.0f ms, /bin/true in %.0f ms at "
	       "worst; B: echo in %.2f s at worst, %d failed\n",
	       what, f->looks, f->late * 1000, f->spawn * 1000, f->b, f->b_failed);
	CHECK(f->looks > 0);
	CHECK(f->late < HOST_SLOW_S);
	CHECK(f->spawn < HOST_SLOW_S);
	CHECK_EQ(f->b_failed, 0);
	CHECK(f->b < B_SLOW_S);
}

/* The number shell prints in sb (-1 if it did not run to its end within 10 s). */
static long sample(sbx_sandbox *sb, const char *shell)
{
	sbx_exec_result *r = run(sb, shell, 10 * 1000, NULL);
	long n = r && sbx_exec_result_signal(r) == 0 && !sbx_exec_result_timed_out(r)
		     ? strtol(sbx_exec_result_stdout(r, NULL), NULL, 10)
		     : -1;

	sbx_exec_result_free(r);
	return n;
}

/* The guest's tasks (processes and threads, its kernel's included): /proc/loadavg's "R/TOTAL",
 * read by A's agent itself, so it works while the guest cannot fork. -1 if unread. */
static long guest_tasks(void)
{
	char *text = NULL, *slash;
	long n = -1;

	if (sbx_file_read(attacker, "/proc/loadavg", (void **)&text, NULL) == SBX_OK &&
	    (slash = strchr(text, '/')))
		n = strtol(slash + 1, NULL, 10);
	sbx_free(text);
	return n;
}

/* Runs shell in A in the background (its process group killed after timeout_ms) and looks from
 * outside until it ends. *peak gets the most tasks A's guest had meanwhile. The result: free
 * it. */
static sbx_exec_result *abuse(const char *what, const char *shell, unsigned timeout_ms, long *peak)
{
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	struct outside f = {0};
	double t0 = now();
	int pid = 0, rc;

	*peak = guest_tasks();
	printf("== %s: %s (A's guest has %ld tasks)\n", what, shell, *peak);
	sbx_exec_opts_set_shell(o, shell);
	sbx_exec_opts_set_timeout_ms(o, timeout_ms);
	rc = sbx_exec_background(attacker, o, NULL, NULL, &pid);
	sbx_exec_opts_free(o);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "%s: %s\n", what, sbx_sandbox_last_error(attacker));
		return NULL;
	}
	do {
		long n = guest_tasks();

		*peak = n > *peak ? n : *peak;
		look_outside(&f);
	} while ((rc = sbx_process_wait(attacker, pid, 1000, &r)) == SBX_ETIMEDOUT);
	CHECK_EQ(rc, SBX_OK);
	if (r)
		printf("%s: ended after %.1f s: exit %d, signal %d, timed out %d; A's guest had up "
		       "to %ld tasks\n",
		       what, now() - t0, sbx_exec_result_exit_code(r), sbx_exec_result_signal(r),
		       sbx_exec_result_timed_out(r), *peak);
	check_outside(what, &f);
	return r;
}

/* The sandbox's cgroup, from its isolation report, in buf. */
static void cgroup_of(sbx_sandbox *sb, char *buf, size_t len)
{
	char *report = NULL;
	unsigned applied = 0;
	json_t *j;

	buf[0] = 0;
	if (sbx_sandbox_isolation(sb, &applied, &report) != SBX_OK)
		return;
	j = json_loads(report, 0, NULL);
	if (json_string_value(json_object_get(j, "cgroup")))
		snprintf(buf, len, "%s", json_string_value(json_object_get(j, "cgroup")));
	json_decref(j);
	sbx_free(report);
}

/* A number from cgroup file name: its value, or that of line key (-1 if none). */
static long long cg_read(const char *cg, const char *name, const char *key)
{
	char path[4400], k[64];
	long long v = -1, x;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg, name);
	f = fopen(path, "re");
	if (f && !key && fscanf(f, "%lld", &x) == 1)
		v = x;
	while (f && key && fscanf(f, "%63s %lld", k, &x) == 2)
		if (strcmp(k, key) == 0)
			v = x;
	if (f)
		fclose(f);
	return v;
}

/* A's VMM after an abuse: as many tasks as at the start (a guest's processes are not host
 * tasks), never at its pids limit, no OOM kill in its cgroup, memory below its limit. */
static void check_attacker_cgroup(const char *cg, long long tasks)
{
	long long pids = cg_read(cg, "pids.current", NULL),
		  mem = cg_read(cg, "memory.current", NULL);
	long long max = cg_read(cg, "memory.max", NULL), peak = cg_read(cg, "memory.peak", NULL);

	printf("A's cgroup: %lld tasks (pids.max %lld, reached %lld times), memory %lld MiB, peak "
	       "%lld MiB, max %lld MiB, OOM kills %lld\n",
	       pids, cg_read(cg, "pids.max", NULL), cg_read(cg, "pids.events", "max"), mem >> 20,
	       peak >> 20, max >> 20, cg_read(cg, "memory.events", "oom_kill"));
	CHECK_EQ(pids, tasks);
	CHECK_EQ(cg_read(cg, "pids.events", "max"), 0);
	CHECK_EQ(cg_read(cg, "memory.events", "oom_kill"), 0);
	CHECK(mem > 0 && mem < max);
}

/* A answers again within 60 s (what an abuse left may take a while to die). */
static void check_attacker_answers(const char *after)
{
	double t0 = now(), t = 0;
	int ok = 0;

	while (!ok && now() - t0 < 60)
		if (!(ok = answers(attacker, &t)))
			sleep(1);
	printf("A after the %s: %s after %.1f s\n", after, ok ? "answers" : "does NOT answer",
	       now() - t0);
	CHECK(ok);
}

/* CPU seconds the process has used (all its threads: the vCPUs' guest time included). */
static double cpu_seconds(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long utime = 0, stime = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
		       &stime);
	if (f)
		fclose(f);
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void test_fork_bomb(const char *cg, long long tasks)
{
	/* The bomb's processes exit as they fork, its first at once; the agent kills a group at
	 * the timeout only while its leader lives, so the leader is a sleep the guest's OOM killer
	 * will not choose (-1000), beside the bomb (back to 0, killable as usual). */
	const char *bomb = "echo -1000 > /proc/self/oom_score_adj; "
			   "(echo 0 > /proc/self/oom_score_adj; exec bash -c ':(){ :|:& };:') & "
			   "exec sleep 3600";
	const char *count = "cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^bash$'";
	long before = guest_tasks(), peak;
	sbx_exec_result *r = abuse("fork bomb", bomb, 20 * 1000, &peak);

	CHECK(r && sbx_exec_result_timed_out(r));
	CHECK(before > 0 && peak > before + 100); /* it did bomb */
	sbx_exec_result_free(r);
	check_attacker_answers("fork bomb");
	/* The group kill took every one (init reaps them a moment later). */
	for (int i = 0; i < 30 && sample(attacker, count) != 0; i++)
		sleep(1);
	CHECK_EQ(sample(attacker, count), 0);
	check_attacker_cgroup(cg, tasks);
}

static void test_allocation(const char *cg, long long tasks)
{
	char shell[256];
	sbx_exec_result *r;
	long peak;

	/* In 16 MiB pieces, each written: one huge request would just be refused. */
	snprintf(shell, sizeof(shell),
		 "exec python3 -c 'x = [b\"\\x01\" * (16 << 20) for i in range(%d)]; "
		 "print(\"survived\")'",
		 4 * A_MEMORY_MIB / 16);
	r = abuse("allocate 4x guest memory", shell, 300 * 1000, &peak);
	CHECK(r && sbx_exec_result_signal(r) == SIGKILL && !sbx_exec_result_timed_out(r));
	sbx_exec_result_free(r);
	check_attacker_answers("allocation");
	/* The guest's own OOM killer chose it; the host's did not touch A's VMM. */
	CHECK(sample(attacker, "dmesg | grep -c 'Killed process .*(python3)'") >= 1);
	check_attacker_cgroup(cg, tasks);
}

static void test_spin(const char *cg, long long tasks)
{
	int vmm = sbx_sandbox_vmm_pid(attacker);
	double t0 = now(), cpu0 = cpu_seconds(vmm), share;
	sbx_exec_result *r;
	long peak;

	CHECK_EQ(sample(attacker, "nproc"), A_VCPUS);
	r = abuse("a loop on every vCPU",
		  "for i in $(seq $(nproc)); do (while :; do :; done) & done; wait", 20 * 1000,
		  &peak);
	share = (cpu_seconds(vmm) - cpu0) / (now() - t0);
	printf("A's VMM used %.2f CPUs meanwhile\n", share);
	CHECK(share > 0.5); /* the loops did spin (an idle guest uses next to nothing) */
	CHECK(r && sbx_exec_result_timed_out(r));
	sbx_exec_result_free(r);
	check_attacker_answers("loops");
	check_attacker_cgroup(cg, tasks);
}

/* Size and mtime of path, as text, to compare before and after. */
static void file_id(const char *path, char *buf, size_t len)
{
	struct stat st;

	if (stat(path, &st) < 0)
		snprintf(buf, len, "%s: %s", path, strerror(errno));
	else
		snprintf(buf, len, "%s: %lld bytes, mtime %lld.%09ld", path, (long long)st.st_size,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void test_rm_rf(const char *cg, long long tasks, const char *image)
{
	const char *outside[] = {env.kernel, env.initramfs, env.rootfs};
	const char *ls = "ls /usr/bin | wc -l";
	char before[3][600], after[600], canary[4400], *text = NULL;
	long b_files = sample(bystander, ls), b_after, peak;
	struct stat img0 = {0}, img1 = {0};
	sbx_exec_result *r;
	int rc, fd;

	snprintf(canary, sizeof(canary), "%s/canary", env.workdir);
	fd = open(canary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "still here\n", 11) == 11);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 3; i++)
		file_id(outside[i], before[i], sizeof(before[i]));
	CHECK_EQ(stat(image, &img0), 0);
	r = abuse("rm -rf /", "rm -rf / --no-preserve-root", 600 * 1000, &peak);
	CHECK(r && !sbx_exec_result_timed_out(r));
	sbx_exec_result_free(r);
	/* A's agent still answers: its files are gone, so nothing runs (not even /dev/null is
	 * left for an exec's stdin). */
	run(attacker, "echo ok", 10 * 1000, &rc);
	printf("A after rm -rf: exec says %s: %s\n", sbx_err_name(rc),
	       sbx_sandbox_last_error(attacker));
	CHECK(rc != SBX_OK);
	CHECK_EQ(sbx_file_stat(attacker, "/usr", NULL, NULL, NULL, NULL), SBX_ENOENT);
	CHECK_EQ(sbx_file_stat(attacker, "/bin/sh", NULL, NULL, NULL, NULL), SBX_ENOENT);
	check_attacker_cgroup(cg, tasks);
	/* Outside: the shared files unchanged, A's own image still its size; B's rootfs whole. */
	for (int i = 0; i < 3; i++) {
		file_id(outside[i], after, sizeof(after));
		printf("%s\n", after);
		if (strcmp(before[i], after) != 0)
			fprintf(stderr, "changed: was %s\n", before[i]);
		CHECK(strcmp(before[i], after) == 0);
	}
	CHECK(stat(image, &img1) == 0 && img1.st_size == img0.st_size);
	printf("A's image: %lld bytes before, %lld after\n", (long long)img0.st_size,
	       (long long)img1.st_size);
	CHECK(access(canary, F_OK) == 0);
	text = e2e_sh_out("cat %s", canary);
	CHECK(text && strcmp(text, "still here\n") == 0);
	free(text);
	unlink(canary);
	b_after = sample(bystander, ls);
	printf("B: %ld files in /usr/bin before, %ld after\n", b_files, b_after);
	CHECK(b_files > 10 && b_after == b_files);
}

static sbx_sandbox *create(sbx_config *cfg, const char *what)
{
	sbx_sandbox *sb = NULL;
	int rc = sbx_sandbox_create(cfg, &sb);

	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "%s: create: %s\n", what, sbx_config_last_error(cfg));
	sbx_config_free(cfg);
	return sb;
}

static int ready(sbx_sandbox *sb, const char *what, double t0)
{
	int rc = sb ? sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS) : SBX_EINVAL;

	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK) {
		printf("%s ready after %.1f s\n", what, now() - t0);
	} else if (sb) {
		fprintf(stderr, "%s: not ready: %s\n", what, sbx_sandbox_last_error(sb));
		e2e_dump_console(sb);
	}
	return rc == SBX_OK;
}

/* The attacker: booted from its own copy of the rootfs, which rm -rf may destroy. */
static void test_attacker(double t0)
{
	char image[300], cg[4096];
	sbx_config *cfg;
	long long tasks;

	snprintf(image, sizeof(image), "%s/rootfs.img", scratch);
	CHECK_EQ(e2e_sh("cp --sparse=always %s %s", env.rootfs, image), 0);
	cfg = e2e_config_writable(&env, image, A_VCPUS, A_MEMORY_MIB);
	sbx_config_set_state_dir(cfg, state);
	CHECK_EQ(sbx_config_set_pids_max(cfg, A_PIDS_MAX), SBX_OK);
	attacker = create(cfg, "A");
	if (!ready(attacker, "A", t0) || !ready(bystander, "B", t0))
		return;
	boot_s = now() - t0;
	cgroup_of(attacker, cg, sizeof(cg));
	CHECK(cg[0] == '/');
	tasks = cg_read(cg, "pids.current", NULL);
	CHECK(tasks > A_VCPUS && tasks <= A_PIDS_MAX);
	test_fork_bomb(cg, tasks);
	test_allocation(cg, tasks);
	test_spin(cg, tasks);
	test_rm_rf(cg, tasks, image);
	sbx_sandbox_destroy(attacker);
	attacker = NULL;
	unlink(image);
}

/* A limit: the sandbox's memory.max, tightened (as root, as an operator would) to just above
 * what its VMM uses once booted, so the guest's next hundred MiB cannot fit. The library's own
 * limit (guest memory plus SBX_VMM_MEMORY_OVERHEAD_MIB) is one a guest cannot reach. */
static void test_limit(sbx_sandbox *sb)
{
	char cg[4096], path[4200], named[64];
	long long used, limit, was;
	double t0 = now();
	int rc, reason = -1;

	cgroup_of(sb, cg, sizeof(cg));
	used = cg_read(cg, "memory.current", NULL);
	was = cg_read(cg, "memory.max", NULL);
	limit = used + ((long long)LIMIT_MARGIN_MIB << 20);
	snprintf(path, sizeof(path), "%s/memory.max", cg);
	CHECK(used > 0 && e2e_sh("echo %lld > %s", limit, path) == 0);
	printf("== limit: memory.max %lld MiB (was %lld MiB), VMM using %lld MiB\n", limit >> 20,
	       was >> 20, used >> 20);
	run(sb, "exec python3 -c 'x = [b\"\\x01\" * (16 << 20) for i in range(12)]; print(\"ok\")'",
	    120 * 1000, &rc);
	CHECK(rc != SBX_OK); /* the guest went with its VMM */
	CHECK_EQ(sbx_sandbox_wait_exit(sb, 60 * 1000, &reason), SBX_OK);
	printf("limit: ended after %.1f s: reason %d: %s (host OOM kills %lld)\n", now() - t0,
	       reason, sbx_sandbox_last_error(sb), cg_read(cg, "memory.events", "oom_kill"));
	CHECK_EQ(reason, SBX_EXIT_LIMIT);
	CHECK(e2e_contains(sbx_sandbox_last_error(sb), "memory limit"));
	snprintf(named, sizeof(named), "memory.max (%lld MiB)", limit >> 20);
	CHECK(e2e_contains(sbx_sandbox_last_error(sb), named)); /* the limit in force */
	CHECK(cg_read(cg, "memory.events", "oom_kill") >= 1);
}

/* The TTL: a sandbox spinning when its time to live runs out is stopped all the same. */
static void test_ttl(sbx_sandbox *sb, double created, unsigned ttl)
{
	double ended;
	int reason = -1;

	CHECK_EQ(sbx_sandbox_wait_exit(sb, (int)(ttl + 60) * 1000, &reason), SBX_OK);
	ended = now() - created;
	printf("== TTL of %u s: ended %.1f s after create: reason %d: %s\n", ttl, ended, reason,
	       sbx_sandbox_last_error(sb));
	CHECK_EQ(reason, SBX_EXIT_TTL);
	CHECK(e2e_contains(sbx_sandbox_last_error(sb), "time to live"));
	CHECK(ended >= ttl && ended < ttl + 15);
}

static void test_stopped(void)
{
	sbx_config *lcfg = e2e_config(&env, 1, A_MEMORY_MIB), *tcfg = e2e_config(&env, 1, 128);
	sbx_sandbox *limited, *timed;
	/* Long enough to boot (two at once, as A and B did) and spin; short enough not to wait. */
	unsigned ttl = 2 * (unsigned)boot_s + 20;
	double t0 = now();
	int pid = 0;

	sbx_config_set_state_dir(lcfg, state);
	sbx_config_set_state_dir(tcfg, state);
	CHECK_EQ(sbx_config_set_ttl(tcfg, ttl), SBX_OK);
	timed = create(tcfg, "TTL");
	limited = create(lcfg, "limit");
	if (ready(timed, "TTL sandbox", t0)) {
		sbx_exec_opts *o = sbx_exec_opts_new();
		sbx_exec_opts_set_shell(o, "while :; do :; done");
		CHECK_EQ(sbx_exec_background(timed, o, NULL, NULL, &pid), SBX_OK);
		printf("TTL sandbox spinning %.1f s after create\n", now() - t0);
		CHECK(pid > 0 && now() - t0 < ttl);
		sbx_exec_opts_free(o);
	}
	if (ready(limited, "limit sandbox", t0))
		test_limit(limited);
	if (timed)
		test_ttl(timed, t0, ttl);
	sbx_sandbox_destroy(limited);
	sbx_sandbox_destroy(timed);
}

int main(void)
{
	double t0 = now();
	sbx_config *cfg;
	struct outside f = {0};
	char *vmms;

	signal(SIGPIPE, SIG_IGN);
	e2e_env_load(&env);
	if (geteuid() != 0) {
		fprintf(stderr, "e2e_abuse: must run as root (the emulated host runs it so)\n");
		return 1;
	}
	/* Unix sockets and A's rootfs: on the emulated host's tmpfs, never on the 9p share. */
	snprintf(state, sizeof(state), "/tmp/e2e-state-abuse-%d", (int)getpid());
	snprintf(scratch, sizeof(scratch), "/tmp/e2e-abuse-%d", (int)getpid());
	CHECK_EQ(mkdir(scratch, 0700), 0);
	cfg = e2e_config(&env, 1, 128);
	sbx_config_set_state_dir(cfg, state);
	bystander = create(cfg, "B");
	if (bystander)
		test_attacker(t0);
	sbx_sandbox_destroy(attacker);
	if (bystander) {
		test_stopped();
		look_outside(&f);
		check_outside("at the end", &f);
	}
	if (testing_failed && bystander)
		e2e_dump_console(bystander);
	sbx_sandbox_destroy(bystander);
	/* Nothing left: no VMM, no sandbox directory or cgroup, no child of ours. */
	vmms = e2e_sh_out("cat /proc/[0-9]*/stat 2>/dev/null | grep -c '(sandbox-vmm) [^Z]'");
	CHECK(vmms && atoi(vmms) == 0);
	free(vmms);
	CHECK_EQ(rmdir(state), 0);
	CHECK_EQ(e2e_sh("[ -z \"$(find /sys/fs/cgroup/libsandbox -mindepth 1 -type d)\" ]"), 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	rmdir(scratch);
	printf("e2e_abuse: %.0f s in all\n", now() - t0);
	return TEST_SUMMARY();
}
