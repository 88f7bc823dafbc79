/* End-to-end: the jailed VMM, seen from the host as root. One guest boots; its VMM must have no
 * capabilities, no_new_privs, a seccomp filter on every thread, its own pid and mount
 * namespaces, a root holding only its own directory, an unprivileged uid, and a cgroup with the
 * configured limits that goes away with the sandbox. Then the test-only triggers: a forbidden
 * system call ends the sandbox with an error naming seccomp, and allocating past the memory
 * limit ends it with the limit named; a protection that cannot be applied refuses the start
 * unless allowed. Nothing is left running. The triggers need a VMM built with SBX_TEST_HOOKS. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_common.h"
#include "testing.h"

#define BOOT_TIMEOUT_MS (240 * 1000)
#define EXIT_TIMEOUT_MS (120 * 1000)
#define VCPUS 2
#define MEMORY_MIB 512
#define PIDS_MAX 12
#define CPU_QUOTA 150

static struct e2e_env env;
static char state[256];

/* The value of "Field:" in /proc/PID/status (or a task's), in buf; NULL if absent. */
static const char *proc_status(const char *path, const char *field, char *buf, size_t len)
{
	char line[512];
	size_t n = strlen(field);
	FILE *f = fopen(path, "re");
	const char *found = NULL;

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			snprintf(buf, len, "%s", line + n + 1 + strspn(line + n + 1, " \t"));
			buf[strcspn(buf, "\n")] = 0;
			found = buf;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

static int status_is(const char *path, const char *field, const char *want)
{
	char buf[128];
	const char *v = proc_status(path, field, buf, sizeof(buf));

	if (!v || strcmp(v, want) != 0) {
		fprintf(stderr, "%s: %s is %s, want %s\n", path, field, v ? v : "(absent)", want);
		return 0;
	}
	return 1;
}

/* CapEff 0, NoNewPrivs 1, Seccomp 2 for the process and each of its threads. */
static void check_locked_down(int pid, const char *who)
{
	char path[128], task[512];
	struct dirent *e;
	DIR *d;
	int threads = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	CHECK(status_is(path, "CapEff", "0000000000000000"));
	CHECK(status_is(path, "CapPrm", "0000000000000000"));
	CHECK(status_is(path, "CapBnd", "0000000000000000"));
	CHECK(status_is(path, "NoNewPrivs", "1"));
	CHECK(status_is(path, "Seccomp", "2"));
	CHECK(status_is(path, "Uid", "65534\t65534\t65534\t65534"));
	CHECK(status_is(path, "Gid", "65534\t65534\t65534\t65534"));
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(task, sizeof(task), "%s/%s/status", path, e->d_name);
		CHECK(status_is(task, "Seccomp", "2"));
		CHECK(status_is(task, "NoNewPrivs", "1"));
		threads++;
	}
	if (d)
		closedir(d);
	printf("%s %d: %d threads, each with CapEff 0, NoNewPrivs 1, Seccomp 2, uid 65534\n", who,
	       pid, threads);
}

static int same_ns(int pid, const char *ns)
{
	char a[128], b[128], la[128] = "", lb[128] = "";

	snprintf(a, sizeof(a), "/proc/%d/ns/%s", pid, ns);
	snprintf(b, sizeof(b), "/proc/self/ns/%s", ns);
	if (readlink(a, la, sizeof(la) - 1) < 0 || readlink(b, lb, sizeof(lb) - 1) < 0)
		return -1;
	return strcmp(la, lb) == 0;
}

static int entries(const char *dir, char *only, size_t len)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (only)
			snprintf(only, len, "%s", e->d_name);
		n++;
	}
	if (d)
		closedir(d);
	return d ? n : -1;
}

/* Its root, read through /proc/PID/root: each directory on the way to the sandbox's directory
 * holds exactly the next one, and nothing of the host is there. */
static void check_root(int pid, const char *dir)
{
	char root[64], path[8400], want[4096], only[256];
	const char *p = dir + 1;

	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	snprintf(path, sizeof(path), "%s", root);
	while (*p) {
		size_t n = strcspn(p, "/");
		snprintf(want, sizeof(want), "%.*s", (int)n, p);
		CHECK_EQ(entries(path, only, sizeof(only)), 1);
		CHECK(strcmp(only, want) == 0);
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", want);
		p += n + (p[n] == '/');
	}
	snprintf(path, sizeof(path), "%s%s/console.log", root, dir);
	CHECK(access(path, F_OK) == 0);
	snprintf(path, sizeof(path), "%s%s/vsock.sock", root, dir);
	CHECK(access(path, F_OK) == 0);
	snprintf(path, sizeof(path), "%s%s", root, env.rootfs);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/dev/kvm", root);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/proc/self", root);
	CHECK(access(path, F_OK) < 0);
	printf("root of %d: only %s\n", pid, dir);
}

static long long read_number(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "re");

	if (f && fscanf(f, "%lld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static int file_has_line(const char *path, const char *want)
{
	char line[256];
	int found = 0;
	FILE *f = fopen(path, "re");

	while (f && !found && fgets(line, sizeof(line), f))
		found = strncmp(line, want, strlen(want)) == 0;
	if (f)
		fclose(f);
	return found;
}

static void check_cgroup(const char *cg, int vmm_pid)
{
	char path[4200], pid[32];

	snprintf(path, sizeof(path), "%s/memory.max", cg);
	CHECK_EQ(read_number(path), (long long)(MEMORY_MIB + SBX_VMM_MEMORY_OVERHEAD_MIB) << 20);
	snprintf(path, sizeof(path), "%s/pids.max", cg);
	CHECK_EQ(read_number(path), PIDS_MAX);
	snprintf(path, sizeof(path), "%s/cpu.max", cg);
	CHECK(file_has_line(path, "150000 100000"));
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", vmm_pid);
	CHECK(file_has_line(path, pid));
	printf("cgroup %s: memory.max %d MiB, pids.max %d, cpu.max 150000 100000, holds %d\n", cg,
	       MEMORY_MIB + SBX_VMM_MEMORY_OVERHEAD_MIB, PIDS_MAX, vmm_pid);
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

static int gone(int pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int zombie = 0;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		zombie = p[2] == 'Z';
	if (f)
		fclose(f);
	return zombie;
}

/* Whether any fd of pid refers to the file at path (checked by device and inode). */
static int holds_file(int pid, const char *path)
{
	char dir[64], link[600];
	struct stat want, st;
	struct dirent *e;
	DIR *d;
	int found = 0;

	if (stat(path, &want) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((e = readdir(d)) && !found) {
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		found = e->d_name[0] != '.' && stat(link, &st) == 0 && st.st_dev == want.st_dev &&
			st.st_ino == want.st_ino;
	}
	closedir(d);
	return found;
}

static sbx_config *jail_config(void)
{
	sbx_config *cfg = e2e_config(&env, VCPUS, MEMORY_MIB);

	sbx_config_set_state_dir(cfg, state);
	CHECK_EQ(sbx_config_set_pids_max(cfg, PIDS_MAX), SBX_OK);
	CHECK_EQ(sbx_config_set_cpu_quota(cfg, CPU_QUOTA), SBX_OK);
	return cfg;
}

/* The cgroup named in the isolation report, in buf ("" if none). */
static void report_cgroup(const char *report, char *buf, size_t len)
{
	json_t *j = json_loads(report, 0, NULL);
	const char *cg = json_string_value(json_object_get(j, "cgroup"));

	snprintf(buf, len, "%s", cg ? cg : "");
	json_decref(j);
}

/* The guest: booted in full isolation, working, and gone without a trace when destroyed. */
static void test_jailed_guest(void)
{
	sbx_config *cfg = jail_config();
	sbx_sandbox *sb = NULL, *other = NULL;
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *res = NULL;
	const char *argv[] = { "echo", "jailed", NULL };
	char *report = NULL, dir[4096], cg[4096] = "";
	unsigned applied = 0, again = 0;
	/* A caller's fd without O_CLOEXEC must not reach the VMM. */
	const char *canary = "/tmp/e2e-jail-canary";
	int canary_fd = open(canary, O_RDWR | O_CREAT, 0600), vmm, monitor, rc;

	CHECK(canary_fd >= 0);
	rc = sbx_sandbox_create(cfg, &sb);
	close(canary_fd);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "create: %s\n", sbx_config_last_error(cfg));
		goto out;
	}
	rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "not ready: %s\n", sbx_sandbox_last_error(sb));
		e2e_dump_console(sb);
		goto out;
	}
	CHECK_EQ(sbx_sandbox_isolation(sb, &applied, &report), SBX_OK);
	CHECK_EQ(applied, SBX_PROT_ALL);
	printf("isolation: %s\n", report ? report : "(none)");
	snprintf(dir, sizeof(dir), "%s/%s", state, sbx_sandbox_id(sb));
	vmm = sbx_sandbox_vmm_pid(sb);
	monitor = parent_of(vmm);
	CHECK(vmm > 0 && monitor > 0 && monitor != getpid());
	check_locked_down(vmm, "VMM");
	check_locked_down(monitor, "monitor");
	CHECK_EQ(same_ns(vmm, "pid"), 0);
	CHECK_EQ(same_ns(vmm, "mnt"), 0);
	CHECK_EQ(same_ns(vmm, "net"), 0);
	CHECK_EQ(same_ns(vmm, "ipc"), 0);
	CHECK_EQ(same_ns(vmm, "uts"), 0);
	CHECK_EQ(holds_file(vmm, canary), 0);
	CHECK_EQ(holds_file(monitor, canary), 0);
	unlink(canary);
	check_root(vmm, dir);
	check_root(monitor, dir); /* it shares the VMM's mount namespace, and so its root */
	if (report)
		report_cgroup(report, cg, sizeof(cg));
	CHECK(cg[0] == '/');
	check_cgroup(cg, vmm);
	/* The guest still works through the jail: exec over vsock. */
	sbx_exec_opts_set_argv(o, argv);
	CHECK_EQ(sbx_exec(sb, o, &res), SBX_OK);
	CHECK(res && strcmp(sbx_exec_result_stdout(res, NULL), "jailed\n") == 0);
	/* Another handle sees the same report. */
	CHECK_EQ(sbx_sandbox_attach(state, sbx_sandbox_id(sb), &other), SBX_OK);
	CHECK_EQ(sbx_sandbox_isolation(other, &again, NULL), SBX_OK);
	CHECK_EQ(again, SBX_PROT_ALL);
	CHECK_EQ(sbx_sandbox_vmm_pid(other), vmm);
	sbx_sandbox_close(other);
	sbx_sandbox_destroy(sb);
	sb = NULL;
	CHECK(gone(vmm));
	CHECK(gone(monitor));
	CHECK(access(cg, F_OK) < 0 && errno == ENOENT);
	CHECK(access(dir, F_OK) < 0 && errno == ENOENT);
	printf("destroyed: VMM, monitor, cgroup and directory gone\n");
out:
	sbx_free(report);
	sbx_exec_result_free(res);
	sbx_exec_opts_free(o);
	sbx_sandbox_destroy(sb);
	sbx_config_free(cfg);
}

#ifdef SBX_TEST_HOOKS
/* A test trigger makes the jailed VMM misbehave; the sandbox ends with `want` and an error
 * naming `word`, and leaves nothing behind. */
static void test_trigger(const char *trigger, int want, const char *word, unsigned memory)
{
	sbx_config *cfg = e2e_config(&env, 1, memory);
	sbx_sandbox *sb = NULL;
	char *report = NULL, cg[4096] = "";
	unsigned applied = 0;
	int reason = -1, vmm, rc;

	sbx_config_set_state_dir(cfg, state);
	setenv("SANDBOX_VMM_TEST_TRIGGER", trigger, 1);
	rc = sbx_sandbox_create(cfg, &sb);
	unsetenv("SANDBOX_VMM_TEST_TRIGGER");
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "create: %s\n", sbx_config_last_error(cfg));
		sbx_config_free(cfg);
		return;
	}
	vmm = sbx_sandbox_vmm_pid(sb);
	if (sbx_sandbox_isolation(sb, &applied, &report) == SBX_OK)
		report_cgroup(report, cg, sizeof(cg));
	CHECK_EQ(sbx_sandbox_wait_exit(sb, EXIT_TIMEOUT_MS, &reason), SBX_OK);
	CHECK_EQ(reason, want);
	printf("trigger %s: exit reason %d: %s\n", trigger, reason, sbx_sandbox_last_error(sb));
	CHECK(e2e_contains(sbx_sandbox_last_error(sb), word));
	/* The ready wait says so too, not just "stopped". */
	CHECK_EQ(sbx_sandbox_wait_ready(sb, 1000), SBX_EGUEST);
	CHECK(e2e_contains(sbx_sandbox_last_error(sb), word));
	CHECK(gone(vmm));
	sbx_sandbox_destroy(sb);
	CHECK(cg[0] == '/' && access(cg, F_OK) < 0);
	sbx_free(report);
	sbx_config_free(cfg);
}
#endif

/* A protection that cannot be had refuses the start, naming it; allowed, the sandbox starts
 * and says what it lacks. */
static void test_degraded(void)
{
	sbx_config *cfg = e2e_config(&env, 1, MEMORY_MIB);
	sbx_sandbox *sb = NULL;
	char *report = NULL;
	unsigned applied = 0;
	int rc;

	sbx_config_set_state_dir(cfg, state);
	sbx_config_set_cgroup_parent(cfg, "/tmp/not-a-cgroup");
	rc = sbx_sandbox_create(cfg, &sb);
	CHECK_EQ(rc, SBX_EISOLATION);
	printf("refused: %s\n", sbx_config_last_error(cfg));
	CHECK(e2e_contains(sbx_config_last_error(cfg), "cgroup"));
	CHECK(e2e_contains(sbx_config_last_error(cfg), "not on a cgroup v2 mount"));
	CHECK_EQ(entries(state, NULL, 0), 0);
	CHECK_EQ(sbx_config_set_allow_degraded(cfg, SBX_PROT_CGROUP), SBX_OK);
	rc = sbx_sandbox_create(cfg, &sb);
	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK) {
		CHECK_EQ(sbx_sandbox_isolation(sb, &applied, &report), SBX_OK);
		CHECK_EQ(applied, SBX_PROT_ALL & ~SBX_PROT_CGROUP);
		CHECK(e2e_contains(report, "not on a cgroup v2 mount"));
		check_locked_down(sbx_sandbox_vmm_pid(sb), "degraded VMM");
	}
	sbx_sandbox_destroy(sb);
	CHECK_EQ(entries(state, NULL, 0), 0);
	sbx_free(report);
	sbx_config_free(cfg);
}

static void test_host_isolation(void)
{
	sbx_config *cfg = sbx_config_new();
	unsigned available = 0;
	char *report = NULL;

	sbx_config_set_state_dir(cfg, state);
	CHECK_EQ(sbx_host_isolation(cfg, &available, &report), SBX_OK);
	CHECK_EQ(available, SBX_PROT_ALL);
	CHECK(e2e_contains(report, "\"seccomp\""));
	CHECK_EQ(entries(state, NULL, 0), 0);
	sbx_free(report);
	sbx_config_free(cfg);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	e2e_env_load(&env);
	if (geteuid() != 0) {
		fprintf(stderr, "e2e_jail: must run as root (the emulated host runs it so)\n");
		return 1;
	}
	/* Unix sockets: on the emulated host's tmpfs, never on the 9p share. */
	snprintf(state, sizeof(state), "/tmp/e2e-state-jail-%d", (int)getpid());
	test_host_isolation();
	test_jailed_guest();
#ifdef SBX_TEST_HOOKS
	test_trigger("seccomp", SBX_EXIT_SECCOMP, "seccomp", 256);
	test_trigger("memory", SBX_EXIT_LIMIT, "memory limit", 128);
#else
	printf("SBX_TEST_HOOKS is off: the seccomp and memory-limit triggers are not tested\n");
#endif
	test_degraded();
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD); /* no VMM child left */
	rmdir(state);
	return TEST_SUMMARY();
}
