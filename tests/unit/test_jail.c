/* The VMM's jail without a guest: each role's seccomp filter allows what the role does and kills
 * the process for anything else; the monitor's verdicts; cgroup file parsing and path checks;
 * and, when run as root, namespaces, pivot_root, the drop to the jail ids and rlimits, each in a
 * child process that is thrown away. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jail/caps.h"
#include "jail/cgroup.h"
#include "jail/jail.h"
#include "jail/namespaces.h"
#include "jail/pivot.h"
#include "jail/rlimit.h"
#include "jail/seccomp.h"
#include "jail/verdict.h"
#include "testing.h"

/* Raw syscalls only once a filter is in: the sanitizers' interceptors make calls of their own. */
static void __attribute__((noreturn)) child_exit(int code)
{
	syscall(SYS_exit_group, code);
	__builtin_unreachable();
}

/* Runs fn in a child with the role's filter installed; returns its wait status. */
static int run_filtered(enum jail_role role, pid_t child_pid, void (*fn)(void))
{
	struct jail_seccomp_args a = { .self_pid = 0, .child_pid = child_pid };
	struct jail_filter f = { 0 };
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		a.self_pid = getpid();
		if (jail_seccomp_build(role, &a, &f) < 0 ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || jail_seccomp_install(&f) < 0)
			child_exit(99);
		fn();
		child_exit(0);
	}
	waitpid(pid, &status, 0);
	return status;
}

static int killed_by_seccomp(int status)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

static int exited_ok(int status)
{
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		fprintf(stderr, "child status 0x%x\n", status);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Everyone: the glibc basics, and no path lookup (EACCES, not a kill). */
static void do_basics(void)
{
	struct timespec ts;
	char c = 'x';

	if (syscall(SYS_getpid) <= 0 || syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) < 0)
		child_exit(1);
	if (syscall(SYS_write, 2, &c, 0) < 0)
		child_exit(2);
	void *p = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || syscall(SYS_munmap, p, 4096) < 0)
		child_exit(4);
}

/* Opening fails (the VMM's roles) rather than killing. */
static void do_open_denied(void)
{
	if (syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY) != -1 || errno != EACCES)
		child_exit(3);
}

static void do_ptrace(void)
{
	syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
}

static void do_exec_mmap(void)
{
	syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void do_execve(void)
{
	char *argv[] = { "/bin/true", NULL };
	syscall(SYS_execve, "/bin/true", argv, NULL);
}

static void do_kvm_run(void)
{
	/* Allowed request on a file that is no vCPU: the kernel says ENOTTY, seccomp says nothing.
	 */
	if (syscall(SYS_ioctl, 2, KVM_RUN, 0) != -1 || errno != ENOTTY)
		child_exit(5);
}

/* A snapshot's state read: the control role's, nobody else's. */
static void do_kvm_get_regs(void)
{
	struct kvm_regs regs;

	if (syscall(SYS_ioctl, 2, KVM_GET_REGS, &regs) != -1 || errno != ENOTTY)
		child_exit(8);
}

static void do_other_ioctl(void)
{
	syscall(SYS_ioctl, 2, KVM_CREATE_VM, 0);
}

static void do_read(void)
{
	char c;
	syscall(SYS_read, -1, &c, 1);
}

static void do_unix_socket(void)
{
	long fd = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || syscall(SYS_close, fd) < 0)
		child_exit(6);
}

static void do_netfilter_socket(void)
{
	long fd = syscall(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	if (fd < 0 || syscall(SYS_close, fd) < 0)
		child_exit(6);
}

static void do_route_socket(void)
{
	syscall(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
}

static void do_fcntl_nonblock(void)
{
	if (syscall(SYS_fcntl, 2, F_SETFL, O_NONBLOCK) < 0)
		child_exit(9);
}

static void do_fcntl_async(void)
{
	syscall(SYS_fcntl, 2, F_SETFL, O_ASYNC);
}

static void do_fcntl_setown(void)
{
	syscall(SYS_fcntl, 2, F_SETOWN, 1);
}

static void do_inet_socket(void)
{
	syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

static void do_abort(void)
{
	syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGABRT);
}

static pid_t sleeper;

static void do_kill_child(void)
{
	if (syscall(SYS_kill, sleeper, SIGTERM) < 0)
		child_exit(7);
}

static void do_kill_other(void)
{
	syscall(SYS_kill, 1, SIGTERM);
}

static void test_seccomp(void)
{
	struct jail_seccomp_args a = { .self_pid = getpid() };
	int status;

	for (int role = 0; role < JAIL_ROLE_COUNT; role++) {
		struct jail_filter f = { 0 };
		CHECK_EQ(jail_seccomp_build(role, &a, &f), 0);
		CHECK(f.prog.len > 10 && f.nrules > 10);
		jail_seccomp_free(&f);
		CHECK_EQ(exited_ok(run_filtered(role, 0, do_basics)), 1);
		CHECK_EQ(exited_ok(run_filtered(role, 0, do_open_denied)), 1);
		CHECK(killed_by_seccomp(run_filtered(role, 0, do_ptrace)));
		CHECK(killed_by_seccomp(run_filtered(role, 0, do_exec_mmap)));
		CHECK(killed_by_seccomp(run_filtered(role, 0, do_execve)));
		CHECK(killed_by_seccomp(run_filtered(role, 0, do_inet_socket)));
		/* abort() stays a crash by SIGABRT, not a seccomp kill */
		status = run_filtered(role, 0, do_abort);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	}
	CHECK(exited_ok(run_filtered(JAIL_ROLE_VCPU, 0, do_kvm_run)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_VCPU, 0, do_other_ioctl)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_DEVICE, 0, do_kvm_run)));
	CHECK(exited_ok(run_filtered(JAIL_ROLE_CONTROL, 0, do_kvm_get_regs)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_CONTROL, 0, do_other_ioctl)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_CONTROL, 0, do_kvm_run)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_VCPU, 0, do_kvm_get_regs)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_DEVICE, 0, do_kvm_get_regs)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_VCPU, 0, do_read)));
	CHECK(exited_ok(run_filtered(JAIL_ROLE_DEVICE, 0, do_read)));
	CHECK(exited_ok(run_filtered(JAIL_ROLE_DEVICE, 0, do_unix_socket)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_CONTROL, 0, do_unix_socket)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_VCPU, 0, do_unix_socket)));
	/* The DNS guard: nf_tables, no other socket, no O_ASYNC. */
	CHECK(exited_ok(run_filtered(JAIL_ROLE_DNS_GUARD, 0, do_netfilter_socket)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_DNS_GUARD, 0, do_route_socket)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_DNS_GUARD, 0, do_unix_socket)));
	CHECK(exited_ok(run_filtered(JAIL_ROLE_DNS_GUARD, 0, do_fcntl_nonblock)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_DNS_GUARD, 0, do_fcntl_async)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_DNS_GUARD, 0, do_fcntl_setown)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_DEVICE, 0, do_netfilter_socket)));

	sleeper = fork();
	if (sleeper == 0) {
		pause();
		_exit(0);
	}
	CHECK(exited_ok(run_filtered(JAIL_ROLE_MONITOR, sleeper, do_kill_child)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_MONITOR, sleeper, do_kill_other)));
	CHECK(killed_by_seccomp(run_filtered(JAIL_ROLE_CONTROL, sleeper, do_kill_child)));
	kill(sleeper, SIGKILL);
	waitpid(sleeper, NULL, 0);
	CHECK(strcmp(jail_role_name(JAIL_ROLE_VCPU), "vcpu") == 0);
	CHECK(strcmp(jail_role_name(JAIL_ROLE_COUNT), "unknown") == 0);
}

static void test_verdict(void)
{
	char detail[256];
	const char *reason = NULL;

	jail_verdict(SIGSYS, -1, 0, &reason, detail, sizeof(detail));
	CHECK(strcmp(reason, "seccomp") == 0 && strstr(detail, "seccomp") &&
	      strstr(detail, "SIGSYS"));
	jail_verdict(SIGKILL, 1, 704, &reason, detail, sizeof(detail));
	CHECK(strcmp(reason, "limit") == 0 && strstr(detail, "memory") &&
	      strstr(detail, "704 MiB"));
	jail_verdict(SIGKILL, 0, 704, &reason, detail, sizeof(detail));
	CHECK(strcmp(reason, "vmm-died") == 0 && strstr(detail, "signal 9"));
	jail_verdict(SIGKILL, -1, 0, &reason, detail, sizeof(detail));
	CHECK(strcmp(reason, "vmm-died") == 0);
	jail_verdict(SIGXFSZ, 0, 0, &reason, detail, sizeof(detail));
	CHECK(strcmp(reason, "limit") == 0 && strstr(detail, "RLIMIT_FSIZE"));
	jail_verdict(3 << 8, 0, 0, &reason, detail, sizeof(detail));
	CHECK(strcmp(reason, "vmm-died") == 0 && strstr(detail, "status 3"));
}

static void test_cgroup_parsing(void)
{
	const char *events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
	char buf[64];
	uint64_t v = 0;

	CHECK_EQ(cgroup_parse_event(events, "oom_kill", &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(cgroup_parse_event(events, "oom", &v), 0);
	CHECK_EQ(v, 2);
	CHECK_EQ(cgroup_parse_event(events, "max", &v), 0);
	CHECK_EQ(v, 12);
	CHECK_EQ(cgroup_parse_event(events, "oom_k", &v), -ENOENT);
	CHECK_EQ(cgroup_parse_event("", "max", &v), -ENOENT);
	CHECK_EQ(cgroup_parse_event("max x\n", "max", &v), -EINVAL);
	CHECK_EQ(cgroup_parse_event("max 1x\n", "max", &v), -EINVAL);
	CHECK_EQ(cgroup_parse_event("max \n", "max", &v), -EINVAL);
	CHECK_EQ(cgroup_parse_event("max 99999999999999999999999\n", "max", &v), -EINVAL);
	CHECK_EQ(cgroup_parse_event("max 7", "max", &v), 0); /* no final newline */
	CHECK_EQ(v, 7);
	CHECK_EQ(cgroup_parse_value("138412032\n", &v), 0);
	CHECK_EQ(v, 138412032);
	CHECK_EQ(cgroup_parse_value("max\n", &v), -ENOENT);
	CHECK_EQ(cgroup_parse_value("\n", &v), -EINVAL);
	CHECK_EQ(cgroup_parse_value("12 MiB\n", &v), -EINVAL);

	CHECK(cgroup_list_has("cpuset cpu io memory pids\n", "cpu"));
	CHECK(cgroup_list_has("cpuset cpu io memory pids\n", "pids"));
	CHECK(!cgroup_list_has("cpuset io memory\n", "cpu"));
	CHECK(!cgroup_list_has("", "memory"));
	CHECK(!cgroup_list_has("memoryx", "memory"));

	cgroup_cpu_max(150, buf, sizeof(buf));
	CHECK(strcmp(buf, "150000 100000") == 0);
	cgroup_cpu_max(0, buf, sizeof(buf));
	CHECK(strcmp(buf, "max 100000") == 0);
	cgroup_cpu_max(6500, buf, sizeof(buf));
	CHECK(strcmp(buf, "6500000 100000") == 0);
}

static void test_cgroup_refusals(void)
{
	struct cgroup_limits l = { 512ull << 20, 20, 0 };
	struct jail_report r = { 0 };
	struct jail_cgroup cg;
	char dir[] = "/tmp/test-jail-XXXXXX", path[128];

	CHECK_EQ(cgroup_create("relative/x", &l, &cg, &r), -EINVAL);
	CHECK(!(r.applied & SBX_PROT_CGROUP) && (r.known & SBX_PROT_CGROUP));
	CHECK_EQ(cgroup_create("/a/../b", &l, &cg, &r), -EINVAL);
	CHECK_EQ(cgroup_create("/", &l, &cg, &r), -EINVAL);
	CHECK_EQ(cgroup_create("/only", &l, &cg, &r), -EINVAL);
	CHECK(mkdtemp(dir) != NULL);
	/* Not a cgroup2 mount: refused with the place named, nothing made. */
	snprintf(path, sizeof(path), "%s/parent/sandbox", dir);
	CHECK_EQ(cgroup_create(path, &l, &cg, &r), -ENOTSUP);
	CHECK(strstr(jail_report_detail(&r, SBX_PROT_CGROUP), dir) != NULL);
	CHECK(strstr(jail_report_detail(&r, SBX_PROT_CGROUP), "cgroup v2") != NULL);
	snprintf(path, sizeof(path), "%s/parent", dir);
	CHECK(access(path, F_OK) < 0);
	CHECK(cg.procs_fd == -1 && cg.memory_events_fd == -1);
	rmdir(dir);
}

static void test_paths_and_report(void)
{
	struct jail_report r = { 0 };
	char out[64];
	json_t *j;

	CHECK_EQ(jail_path_relative("/run/libsandbox/abc", out, sizeof(out)), 0);
	CHECK(strcmp(out, "run/libsandbox/abc") == 0);
	CHECK_EQ(jail_path_relative("run/x", out, sizeof(out)), -EINVAL);
	CHECK_EQ(jail_path_relative("/", out, sizeof(out)), -EINVAL);
	CHECK_EQ(jail_path_relative("/a//b", out, sizeof(out)), -EINVAL);
	CHECK_EQ(jail_path_relative("/a/./b", out, sizeof(out)), -EINVAL);
	CHECK_EQ(jail_path_relative("/a/../b", out, sizeof(out)), -EINVAL);
	CHECK_EQ(jail_path_relative("/a/b/", out, sizeof(out)), -EINVAL);
	CHECK_EQ(jail_path_relative("/a/..b", out, sizeof(out)), 0);
	CHECK_EQ(jail_path_relative("/aaaaaaaaaa", out, 4), -ENAMETOOLONG);
	CHECK_EQ(jail_path_relative(NULL, out, sizeof(out)), -EINVAL);

	jail_report_set(&r, SBX_PROT_SECCOMP, 1, "on");
	jail_report_set(&r, SBX_PROT_CGROUP, 0, "no %s", "delegation");
	jail_report_set(&r, 3, 1, "not one bit: ignored");
	CHECK_EQ(r.applied, SBX_PROT_SECCOMP);
	CHECK_EQ(jail_report_first_missing(&r, SBX_PROT_SECCOMP | SBX_PROT_CGROUP),
		 SBX_PROT_CGROUP);
	CHECK_EQ(jail_report_first_missing(&r, SBX_PROT_SECCOMP), 0);
	CHECK(strcmp(jail_report_detail(&r, SBX_PROT_CGROUP), "no delegation") == 0);
	CHECK(strcmp(jail_prot_name(SBX_PROT_PIVOT_ROOT), "pivot-root") == 0);
	CHECK(strcmp(jail_prot_name(SBX_PROT_ALL), "unknown") == 0);
	j = jail_report_json(&r);
	CHECK(j && json_array_size(json_object_get(j, "protections")) == JAIL_PROT_COUNT);
	CHECK_EQ(json_integer_value(json_object_get(j, "applied")), SBX_PROT_SECCOMP);
	CHECK(strcmp(json_string_value(json_object_get(
			     json_array_get(json_object_get(j, "protections"), 0), "detail")),
		     "not attempted") == 0);
	json_decref(j);
}

/* Runs fn in a child and returns its exit status (0: all its checks held). */
static int in_child(int (*fn)(void))
{
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child_exit(fn());
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int child_namespaces(void)
{
	struct jail_report r = { 0 };
	unsigned done = jail_unshare(SBX_PROT_MOUNT_NS | SBX_PROT_PID_NS | SBX_PROT_NET_NS, 0, &r);
	int status = -1;
	pid_t pid;

	if (done != (SBX_PROT_MOUNT_NS | SBX_PROT_PID_NS | SBX_PROT_NET_NS) ||
	    (r.applied & SBX_PROT_PID_NS))
		return 1;
	pid = fork();
	if (pid == 0) {
		jail_confirm_pid_ns(&r, done);
		child_exit((r.applied & SBX_PROT_PID_NS) && getpid() == 1 ? 0 : 2);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

static char pivot_dir[64];

static int child_pivot(void)
{
	struct jail_report r = { 0 };
	struct dirent *e;
	char first[128];
	int n = 0;
	DIR *d;

	if (unshare(CLONE_NEWNS) < 0 || jail_pivot(pivot_dir, &r) < 0 ||
	    !(r.applied & SBX_PROT_PIVOT_ROOT))
		return 1;
	/* The root holds the state directory's path and nothing else; it and the root are
	 * read-only; the directory's own files are there. */
	d = opendir("/");
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	snprintf(first, sizeof(first), "/%s", pivot_dir + 1);
	*strchr(first + 1, '/') = 0;
	if (n != 1 || access(first, F_OK) < 0)
		return 2;
	if (access("/etc/passwd", F_OK) == 0 || access("/proc/self", F_OK) == 0)
		return 3;
	if (mkdir("/new", 0700) == 0 || errno != EROFS)
		return 4;
	snprintf(first, sizeof(first), "%s/marker", pivot_dir);
	if (access(first, F_OK) < 0)
		return 5;
	return open(first, O_WRONLY) < 0 && errno == EROFS ? 0 : 6;
}

static int child_drop(void)
{
	struct jail_report r = { 0 };
	struct jail_rlimits rl = { 256, 1 << 20 };
	struct rlimit got;

	jail_caps_prepare();
	if (jail_set_rlimits(&rl, &r) < 0 || getrlimit(RLIMIT_NOFILE, &got) < 0 ||
	    got.rlim_cur != 256 || getrlimit(RLIMIT_CORE, &got) < 0 || got.rlim_max != 0 ||
	    prctl(PR_GET_DUMPABLE) != 0)
		return 1;
	if (jail_drop_privileges(65534, 65534, &r) < 0)
		return 2;
	if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534 || getgroups(0, NULL) != 0)
		return 3;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 || prctl(PR_CAPBSET_READ, 0) != 0)
		return 4;
	if ((r.applied & (SBX_PROT_UNPRIV_USER | SBX_PROT_NO_CAPS | SBX_PROT_NO_NEW_PRIVS |
			  SBX_PROT_RLIMITS)) !=
	    (SBX_PROT_UNPRIV_USER | SBX_PROT_NO_CAPS | SBX_PROT_NO_NEW_PRIVS | SBX_PROT_RLIMITS))
		return 5;
	/* No way back. */
	return setuid(0) < 0 ? 0 : 6;
}

static void test_as_root(void)
{
	char marker[96];

	if (geteuid() != 0) {
		printf(
		    "not root: namespaces, pivot_root and the id drop are left to the e2e tests\n");
		return;
	}
	CHECK_EQ(in_child(child_namespaces), 0);
	snprintf(pivot_dir, sizeof(pivot_dir), "/tmp/test-jail-pivot-%d", (int)getpid());
	CHECK_EQ(mkdir(pivot_dir, 0700), 0);
	snprintf(marker, sizeof(marker), "%s/marker", pivot_dir);
	close(open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	CHECK_EQ(in_child(child_pivot), 0);
	unlink(marker);
	CHECK_EQ(rmdir(pivot_dir), 0); /* nothing was left mounted on the host */
	CHECK_EQ(in_child(child_drop), 0);
}

int main(void)
{
	test_seccomp();
	test_verdict();
	test_cgroup_parsing();
	test_cgroup_refusals();
	test_paths_and_report();
	test_as_root();
	return TEST_SUMMARY();
}
