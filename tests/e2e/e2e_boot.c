/* End-to-end: cold boot of Debian's kernel in our VMM, virtio-blk read/write and read-only,
 * reboot, stop and bad input. Usage: e2e_boot lifecycle | disk | readonly | host-probe.
 * Each group boots at most one guest, so groups can run in separate emulated hosts. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_common.h"
#include "testing.h"

#define BOOT_TIMEOUT_MS (240 * 1000) /* a nested cold boot takes 25-45 s; leave room */
#define PATTERN "sandbox-pattern\n"
/* State directories hold Unix sockets, so they go to /tmp (a tmpfs inside the emulated host),
 * never to the 9p-shared work directory. */
#define PATTERN_BYTES (64u << 20)

static struct e2e_env env;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int make_image(const char *path, size_t size, int fill)
{
	char buf[65536];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	memset(buf, fill, sizeof(buf));
	for (size_t off = 0; off < size; off += sizeof(buf))
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			close(fd);
			return -1;
		}
	return close(fd);
}

/* FNV-1a, the checksum printed for the pattern. */
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* The image's first 64 MiB must be the pattern, byte for byte; the checksums are reported. */
static int pattern_matches(const char *path)
{
	static unsigned char buf[1 << 20], want[1 << 20];
	const size_t plen = sizeof(PATTERN) - 1;
	uint64_t got_h = 0xcbf29ce484222325ULL, want_h = got_h;
	size_t off, mismatch = SIZE_MAX;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)PATTERN[i % plen]; /* 1 MiB is a multiple of 16 */
	for (off = 0; off < PATTERN_BYTES; off += sizeof(buf)) {
		if (pread(fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf))
			break;
		if (mismatch == SIZE_MAX && memcmp(buf, want, sizeof(buf)) != 0)
			mismatch = off;
		got_h = fnv1a(got_h, buf, sizeof(buf));
		want_h = fnv1a(want_h, want, sizeof(want));
	}
	close(fd);
	printf("pattern: %zu MiB read, checksum image %016llx, expected %016llx, first differing "
	       "MiB at %zd\n", off >> 20, (unsigned long long)got_h, (unsigned long long)want_h,
	       mismatch == SIZE_MAX ? (ssize_t)-1 : (ssize_t)mismatch);
	return off == PATTERN_BYTES && mismatch == SIZE_MAX && got_h == want_h;
}

/* Boots cfg, waits for ready and power-off; returns the console (caller frees) or NULL. */
static char *boot_until_poweroff(sbx_config *cfg, const char *what)
{
	sbx_sandbox *sb = NULL;
	char *console = NULL;
	double t0 = now(), ready_s = -1;
	int rc, reason = -1;

	rc = sbx_sandbox_create(cfg, &sb);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "%s: create: %s\n", what, sbx_config_last_error(cfg));
		return NULL;
	}
	rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK) {
		sbx_sandbox_ready_time(sb, &ready_s);
		printf("%s: guest ready after %.2f s (wall %.2f s)\n", what, ready_s, now() - t0);
		rc = sbx_sandbox_wait_exit(sb, BOOT_TIMEOUT_MS, &reason);
		CHECK_EQ(rc, SBX_OK);
		CHECK_EQ(reason, SBX_EXIT_POWEROFF);
	} else {
		fprintf(stderr, "%s: not ready: %s\n", what, sbx_sandbox_last_error(sb));
	}
	sbx_sandbox_console(sb, &console, NULL);
	CHECK(e2e_contains(console, "sandbox-init: ready uptime="));
	if (testing_failed)
		e2e_dump_console(sb);
	sbx_sandbox_destroy(sb);
	return console;
}

static void test_disk_pattern(void)
{
	char img[4096], *console;
	sbx_config *cfg = e2e_config(&env, 1, 512);

	snprintf(img, sizeof(img), "%s/pattern.img", env.workdir);
	CHECK_EQ(make_image(img, PATTERN_BYTES, 0), 0);
	CHECK_EQ(sbx_config_add_disk(cfg, img, 0), SBX_OK);
	CHECK_EQ(sbx_config_set_init_command(
			 cfg, "yes sandbox-pattern | head -c 67108864 > /dev/vdb && sync && "
			      "echo cpus=$(grep -c ^processor /proc/cpuinfo)"),
		 SBX_OK);
	console = boot_until_poweroff(cfg, "1 vCPU, pattern disk");
	CHECK(e2e_contains(console, "cpus=1"));
	CHECK(e2e_contains(console, "sandbox-init: command exit=0"));
	CHECK(pattern_matches(img));
	free(console);
	unlink(img);
	sbx_config_free(cfg);
}

static void test_readonly_disk(void)
{
	static unsigned char before[1 << 20], after[1 << 20];
	char img[4096], *console;
	sbx_config *cfg = e2e_config(&env, 2, 512);
	int fd;

	snprintf(img, sizeof(img), "%s/readonly.img", env.workdir);
	CHECK_EQ(make_image(img, sizeof(before), 0x5a), 0);
	CHECK_EQ(sbx_config_add_disk(cfg, img, 1), SBX_OK);
	CHECK_EQ(sbx_config_set_init_command(
			 cfg, "if echo overwrite | dd of=/dev/vdb bs=512 count=1 conv=fsync 2>&1; "
			      "then echo WRITE-SUCCEEDED; else echo WRITE-FAILED; fi; "
			      "echo ro=$(cat /sys/block/vdb/ro) cpus=$(grep -c ^processor /proc/cpuinfo)"),
		 SBX_OK);
	console = boot_until_poweroff(cfg, "2 vCPUs, read-only disk");
	CHECK(e2e_contains(console, "WRITE-FAILED"));
	CHECK(!e2e_contains(console, "WRITE-SUCCEEDED"));
	CHECK(e2e_contains(console, "ro=1"));
	CHECK(e2e_contains(console, "cpus=2"));
	memset(before, 0x5a, sizeof(before));
	fd = open(img, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, after, sizeof(after)) == (ssize_t)sizeof(after));
	CHECK(memcmp(before, after, sizeof(after)) == 0);
	if (fd >= 0)
		close(fd);
	free(console);
	unlink(img);
	sbx_config_free(cfg);
}

static int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* A create that must fail fast with `want`, leaving no process and no file behind. */
static void expect_create_error(sbx_config *cfg, int want, const char *what, const char *state)
{
	sbx_sandbox *sb = NULL;
	double t0 = now();
	int rc = sbx_sandbox_create(cfg, &sb);

	printf("%s: %s: %s (%.2f s)\n", what, sbx_err_name(rc), sbx_config_last_error(cfg),
	       now() - t0);
	CHECK_EQ(rc, want);
	CHECK(sb == NULL);
	CHECK(now() - t0 < 10);
	CHECK(*sbx_config_last_error(cfg) != 0);
	CHECK_EQ(dir_entries(state), 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD); /* no VMM child left */
	sbx_sandbox_destroy(sb);
}

static void test_bad_input(void)
{
	char state[4096], notkernel[4096];
	sbx_config *cfg;

	snprintf(state, sizeof(state), "/tmp/e2e-state-bad-input-%d", (int)getpid());
	snprintf(notkernel, sizeof(notkernel), "%s/not-a-kernel", env.workdir);
	CHECK_EQ(make_image(notkernel, 1 << 16, 0x42), 0);

	cfg = e2e_config(&env, 1, 512);
	sbx_config_set_state_dir(cfg, state);
	sbx_config_set_kernel(cfg, "/nonexistent/vmlinuz");
	expect_create_error(cfg, SBX_ENOENT, "missing kernel", state);
	sbx_config_free(cfg);

	cfg = e2e_config(&env, 1, 512);
	sbx_config_set_state_dir(cfg, state);
	sbx_config_set_kernel(cfg, notkernel);
	expect_create_error(cfg, SBX_EKERNEL, "not a kernel", state);
	sbx_config_free(cfg);

	cfg = sbx_config_new();
	sbx_config_set_state_dir(cfg, state);
	sbx_config_set_kernel(cfg, env.kernel);
	sbx_config_set_initramfs(cfg, env.initramfs);
	sbx_config_add_disk(cfg, "/nonexistent/rootfs.img", 0);
	expect_create_error(cfg, SBX_ENOENT, "missing rootfs", state);
	CHECK(e2e_contains(sbx_config_last_error(cfg), "rootfs"));
	sbx_config_free(cfg);

	cfg = sbx_config_new();
	CHECK_EQ(sbx_config_set_memory_mib(cfg, 16), SBX_ERANGE);
	CHECK(e2e_contains(sbx_config_last_error(cfg), "16 MiB"));
	CHECK_EQ(sbx_config_set_vcpus(cfg, 0), SBX_ERANGE);
	CHECK(e2e_contains(sbx_config_last_error(cfg), "vCPUs"));
	sbx_config_free(cfg);
	unlink(notkernel);
	rmdir(state);
}

/* A guest that reboots is reported as such; the sandbox does not boot again. */
static void test_reboot(void)
{
	sbx_config *cfg = e2e_config(&env, 1, 512);
	sbx_sandbox *sb = NULL;
	int reason = -1;

	/* LINUX_REBOOT_CMD_RESTART through glibc's reboot(), straight from the command. */
	sbx_config_set_init_command(cfg, "python3 -c 'import ctypes; "
					 "ctypes.CDLL(None).reboot(0x01234567)'");
	CHECK_EQ(sbx_sandbox_create(cfg, &sb), SBX_OK);
	CHECK_EQ(sbx_sandbox_wait_exit(sb, BOOT_TIMEOUT_MS, &reason), SBX_OK);
	CHECK_EQ(reason, SBX_EXIT_REBOOT);
	if (reason != SBX_EXIT_REBOOT)
		e2e_dump_console(sb);
	sbx_sandbox_destroy(sb);
	sbx_config_free(cfg);
}

/* A guest left running is stopped on request: its VMM process and its files are gone. */
static void test_stop(void)
{
	char state[4096];
	sbx_config *cfg = e2e_config(&env, 1, 512);
	sbx_sandbox *sb = NULL;
	int reason = -1, pid;

	snprintf(state, sizeof(state), "/tmp/e2e-state-stop-%d", (int)getpid());
	sbx_config_set_state_dir(cfg, state);
	CHECK_EQ(sbx_sandbox_create(cfg, &sb), SBX_OK);
	CHECK_EQ(sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS), SBX_OK);
	pid = sbx_sandbox_vmm_pid(sb);
	CHECK(pid > 0 && kill(pid, 0) == 0);
	CHECK_EQ(dir_entries(state), 1);
	CHECK_EQ(sbx_sandbox_stop(sb), SBX_OK);
	CHECK_EQ(sbx_sandbox_wait_exit(sb, 1000, &reason), SBX_OK);
	CHECK_EQ(reason, SBX_EXIT_STOPPED);
	CHECK(kill(pid, 0) < 0 && errno == ESRCH);
	sbx_sandbox_destroy(sb);
	CHECK_EQ(dir_entries(state), 0);
	sbx_config_free(cfg);
	rmdir(state);
}

/* Outside the emulated host, on a paravirtual-only KVM: create must refuse, not hang. */
static int test_host_probe(void)
{
	char state[4096], *detail = NULL;
	int virt = -1;
	sbx_config *cfg;

	CHECK_EQ(sbx_host_probe(&virt, &detail), SBX_OK);
	printf("host probe: %d: %s\n", virt, detail);
	sbx_free(detail);
	if (virt == SBX_HOST_KVM_HW) {
		printf("SKIPPED: this host has hardware virtualization; the paravirtual-only refusal "
		       "cannot be exercised here\n");
		return 77;
	}
	snprintf(state, sizeof(state), "/tmp/e2e-state-probe-%d", (int)getpid());
	cfg = e2e_config(&env, 1, 512);
	sbx_config_set_state_dir(cfg, state);
	expect_create_error(cfg, virt == SBX_HOST_NO_KVM ? SBX_ENOKVM : SBX_ENOHWVIRT,
			    "paravirtual-only KVM", state);
	sbx_config_free(cfg);
	rmdir(state);
	return TEST_SUMMARY();
}

int main(int argc, char **argv)
{
	const char *group = argc > 1 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	e2e_env_load(&env);
	if (strcmp(group, "host-probe") == 0)
		return test_host_probe();
	if (strcmp(group, "lifecycle") == 0) {
		test_bad_input();
		test_reboot();
		test_stop();
	}
	else if (strcmp(group, "disk") == 0)
		test_disk_pattern();
	else if (strcmp(group, "readonly") == 0)
		test_readonly_disk();
	else {
		fprintf(stderr, "usage: e2e_boot lifecycle|disk|readonly|host-probe\n");
		return 2;
	}
	return TEST_SUMMARY();
}
