/* Cold boot to the guest init's ready line: our VMM against QEMU microvm, same kernel,
 * initramfs and rootfs, in one run. Prints medians and their ratio, and each VMM's resident
 * memory without guest RAM (RssAnon + RssFile; guest RAM is shared memfd memory in both).
 *
 *   bench-boot [-n ROUNDS] [-q QEMU]      paths from SANDBOX_KERNEL, SANDBOX_INITRAMFS,
 *                                         SANDBOX_ROOTFS (as the e2e tests use them)
 * Run it where the guest can run: directly with hardware virtualization, else through
 * tests/harness/run-e2e. Absolute times inside an emulated host are not performance figures;
 * the ratio is. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sandbox.h>
#include "stats.h"
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_MARKER "sandbox-init: ready"
#define BOOT_TIMEOUT_MS 300000
#define MEMORY_MIB 512

extern char **environ;

struct sample {
	double seconds;
	long rss_kib;
};

/* RssAnon + RssFile of pid in KiB: the process's own memory, not the guest's shared RAM. */
static long rss_without_guest(int pid)
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

static int boot_ours(sbx_config *cfg, struct sample *s)
{
	sbx_sandbox *sb = NULL;
	double t0 = bench_now();
	int rc = sbx_sandbox_create(cfg, &sb);

	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	s->seconds = bench_now() - t0;
	if (rc == SBX_OK)
		s->rss_kib = rss_without_guest(sbx_sandbox_vmm_pid(sb));
	else
		fprintf(stderr, "ours: %s: %s %s\n", sbx_err_name(rc), sbx_config_last_error(cfg),
			sb ? sbx_sandbox_last_error(sb) : "");
	sbx_sandbox_destroy(sb);
	return rc;
}

/* Reads the child's console until the ready marker appears. */
static int wait_marker(int fd, int timeout_ms)
{
	static char buf[1 << 16];
	size_t len = 0;
	double deadline = bench_now() + timeout_ms / 1000.0;

	while (bench_now() < deadline) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = 0;
		if (strstr(buf, READY_MARKER))
			return 0;
		if (len > sizeof(buf) / 2) { /* keep the tail, where the marker may be starting */
			memmove(buf, buf + len - 256, 256);
			len = 256;
		}
	}
	return -1;
}

/* QEMU microvm with what our sandbox gets: same files, memory, vCPU and kernel command line. */
static int boot_qemu(const char *qemu, const char *kernel, const char *initramfs,
		     const char *rootfs, char *cmdline, struct sample *s)
{
	char mem[64], drive[4200], memsz[32];
	char *argv[] = { (char *)qemu, "-M", "microvm,memory-backend=mem", "-accel", "kvm", "-cpu",
			 "host", "-smp", "1", "-m", memsz, "-object", mem, "-nodefaults",
			 "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
			 "-kernel", (char *)kernel, "-initrd", (char *)initramfs, "-append",
			 cmdline, "-drive", drive, "-device",
			 "virtio-blk-device,drive=d0", NULL };
	posix_spawn_file_actions_t fa;
	int pipefd[2], rc;
	pid_t pid;
	double t0;

	snprintf(memsz, sizeof(memsz), "%d", MEMORY_MIB);
	snprintf(mem, sizeof(mem), "memory-backend-memfd,id=mem,size=%dM", MEMORY_MIB);
	snprintf(drive, sizeof(drive), "id=d0,file=%s,format=raw,if=none,readonly=on", rootfs);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	t0 = bench_now();
	rc = posix_spawn(&pid, qemu, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return -rc;
	}
	rc = wait_marker(pipefd[0], BOOT_TIMEOUT_MS);
	s->seconds = bench_now() - t0;
	s->rss_kib = rss_without_guest(pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pipefd[0]);
	if (rc < 0)
		fprintf(stderr, "qemu: no ready line\n");
	return rc;
}

int main(int argc, char **argv)
{
	const char *kernel = getenv("SANDBOX_KERNEL"), *initramfs = getenv("SANDBOX_INITRAMFS");
	const char *rootfs = getenv("SANDBOX_ROOTFS"), *qemu = "/usr/bin/qemu-system-x86_64";
	double ours[64], theirs[64], ours_rss[64], theirs_rss[64];
	sbx_config *cfg = sbx_config_new();
	char *cmdline = NULL;
	int rounds = 5, c;

	while ((c = getopt(argc, argv, "n:q:")) != -1) {
		if (c == 'n')
			rounds = atoi(optarg);
		else if (c == 'q')
			qemu = optarg;
		else
			return 2;
	}
	if (!kernel || !initramfs || !rootfs || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: bench-boot [-n 1..64] [-q QEMU] with SANDBOX_KERNEL, "
				"SANDBOX_INITRAMFS, SANDBOX_ROOTFS set\n");
		return 2;
	}
	sbx_config_set_kernel(cfg, kernel);
	sbx_config_set_initramfs(cfg, initramfs);
	sbx_config_add_disk(cfg, rootfs, 1);
	sbx_config_set_kernel_args(cfg, "sbx.ro=1");
	sbx_config_set_memory_mib(cfg, MEMORY_MIB);
	if (sbx_config_kernel_cmdline(cfg, &cmdline) != SBX_OK)
		return 1;
	printf("kernel command line: %s\n", cmdline);
	/* Interleaved, so drift in the machine's load hits both alike. */
	for (int i = 0; i < rounds; i++) {
		struct sample a = { 0, 0 }, b = { 0, 0 };
		if (boot_ours(cfg, &a) != SBX_OK ||
		    boot_qemu(qemu, kernel, initramfs, rootfs, cmdline, &b) < 0)
			return 1;
		printf("round %d: libsandbox %.3f s (%ld KiB), qemu microvm %.3f s (%ld KiB)\n", i + 1,
		       a.seconds, a.rss_kib, b.seconds, b.rss_kib);
		fflush(stdout);
		ours[i] = a.seconds;
		theirs[i] = b.seconds;
		ours_rss[i] = (double)a.rss_kib;
		theirs_rss[i] = (double)b.rss_kib;
	}
	double mo = bench_median(ours, rounds), mt = bench_median(theirs, rounds);
	printf("cold boot to ready, median of %d: libsandbox %.3f s, qemu microvm %.3f s, ratio "
	       "%.2f\n", rounds, mo, mt, mo / mt);
	printf("VMM RSS without guest RAM, median: libsandbox %.0f KiB, qemu microvm %.0f KiB\n",
	       bench_median(ours_rss, rounds), bench_median(theirs_rss, rounds));
	sbx_free(cmdline);
	sbx_config_free(cfg);
	return 0;
}
