/* End-to-end: snapshot, restore, hibernate and resume, on one guest booted once.
 *
 * Needs root, loop devices, mkfs.xfs and mkfs.ext4 (the emulated KVM host has them): the state
 * and snapshot directories live on an XFS loop mount (mkfs.xfs -m reflink=1, a sparse file in
 * /tmp), where disk clones share extents, and on an ext4 one, where they must be copied. The
 * guest is the minbase+python3 rootfs, copied to the XFS mount and used writable, 2 vCPUs.
 *
 * Checks: a Python variable set before a snapshot is there after a restore, also in several
 * sandboxes restored at once while the original runs on and changes; a hibernated sandbox
 * resumes under its id with its state; a restored sandbox can be snapshotted again; the guest
 * clock is within a second of the host's after restore and resume; disk clones share extents on
 * XFS (FIEMAP) and are copies on ext4, as the info says; a truncated memory file, a corrupted
 * state file, another format version and a missing rootfs each give a clear error and leave
 * nothing running. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e_common.h"
#include "e2e_snaputil.h"
#include "testing.h"

#define BOOT_TIMEOUT_MS (300 * 1000)
#define BASE "/tmp/sbx-snapshot-e2e"
#define XFS BASE "/xfs"
#define EXT4 BASE "/ext4"
#define MEMORY_MIB 384

static struct e2e_env env;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The two loop mounts and a writable copy of the rootfs on XFS. */
static int setup(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "e2e_snapshot: needs root (loop mounts); run through run-e2e\n");
		return -1;
	}
	setenv("PATH", "/usr/sbin:/sbin:/usr/bin:/bin", 1);
	e2e_sh("umount -q " XFS " 2>/dev/null; umount -q " EXT4 " 2>/dev/null; rm -rf " BASE);
	if (e2e_sh("mkdir -p " XFS " " EXT4) ||
	    e2e_sh("modprobe -q loop; modprobe -q xfs; modprobe -q ext4; true") ||
	    e2e_sh("truncate -s 8G " BASE "/xfs.img && mkfs.xfs -q -m reflink=1 " BASE "/xfs.img") ||
	    e2e_sh("mount -o loop " BASE "/xfs.img " XFS) ||
	    e2e_sh("truncate -s 4G " BASE "/ext4.img && mkfs.ext4 -q -F " BASE "/ext4.img") ||
	    e2e_sh("mount -o loop " BASE "/ext4.img " EXT4) ||
	    e2e_sh("cp --sparse=always %s " XFS "/rootfs.img", env.rootfs) ||
	    e2e_sh("mkdir -m 700 " XFS "/state " EXT4 "/state")) {
		fprintf(stderr, "e2e_snapshot: the XFS and ext4 loop mounts could not be set up "
				"(needs mkfs.xfs, mkfs.ext4, the loop, xfs and ext4 modules)\n");
		return -1;
	}
	return 0;
}

static void teardown(void)
{
	e2e_sh("umount " XFS "; umount " EXT4 "; rm -rf " BASE);
}

static int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static sbx_config *config_for(const char *state_dir)
{
	sbx_config *cfg = sbx_config_new();

	if (!cfg || sbx_config_set_state_dir(cfg, state_dir)) {
		fprintf(stderr, "e2e_snapshot: config\n");
		exit(1);
	}
	return cfg;
}

static void print_info(const char *what, const sbx_snapshot_info *i)
{
	printf("%s: %.3f s, memory %.1f MiB, %d copied\n%s", what, sbx_snapshot_info_seconds(i),
	       (double)sbx_snapshot_info_memory_bytes(i) / (1 << 20),
	       sbx_snapshot_info_disks_copied(i), sbx_snapshot_info_disks(i));
}

/* A restored sandbox is jailed as a created one: its VMM has no capabilities, no_new_privs and
 * a seccomp filter. */
static int check_jailed(sbx_sandbox *sb, const char *what)
{
	char path[64], line[256];
	int cap = 0, nnp = 0, seccomp = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", sbx_sandbox_vmm_pid(sb));
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		cap += !strcmp(line, "CapEff:\t0000000000000000\n");
		nnp += !strcmp(line, "NoNewPrivs:\t1\n");
		seccomp += !strcmp(line, "Seccomp:\t2\n");
	}
	if (f)
		fclose(f);
	printf("%s VMM %d: CapEff 0 %s, NoNewPrivs 1 %s, Seccomp 2 %s\n", what,
	       sbx_sandbox_vmm_pid(sb), cap ? "yes" : "NO", nnp ? "yes" : "NO",
	       seccomp ? "yes" : "NO");
	return cap && nnp && seccomp;
}

static sbx_sandbox *restore(const char *state_dir, const char *dir, int resume)
{
	sbx_config *cfg = config_for(state_dir);
	sbx_sandbox *sb = NULL;
	double t0 = now();
	int rc = resume ? sbx_sandbox_resume(cfg, dir, &sb) : sbx_sandbox_restore(cfg, dir, &sb);

	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "%s %s: %s\n", resume ? "resume" : "restore", dir,
			sbx_config_last_error(cfg));
	else
		printf("%s from %s in %.2f s: %s\n", resume ? "resumed" : "restored", dir,
		       now() - t0, sbx_sandbox_id(sb));
	sbx_config_free(cfg);
	return sb;
}

/* The original keeps running and changes; restores see the value of the snapshot. */
static void test_snapshot_restore(sbx_sandbox *a)
{
	sbx_snapshot_info *info = NULL;
	sbx_sandbox *b, *c;
	unsigned total, shared;
	double t0 = now();
	int rc;

	CHECK(e2e_py_is(a, "x = 42\nx", "42"));
	rc = sbx_sandbox_snapshot(a, XFS "/snap1", &info);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "snapshot: %s\n", sbx_sandbox_last_error(a));
		return;
	}
	printf("snapshot call took %.2f s\n", now() - t0);
	print_info("snapshot on XFS", info);
	CHECK_EQ(sbx_snapshot_info_disks_copied(info), 0);
	CHECK(e2e_contains(sbx_snapshot_info_disks(info), "disk 0: reflink"));
	sbx_snapshot_info_free(info);
	e2e_extents(XFS "/snap1/disk-0.img", &total, &shared);
	printf("snapshot rootfs: %u extents, %u shared\n", total, shared);
	CHECK(total > 0 && shared == total);

	CHECK(e2e_py_is(a, "x += 1\nx", "43"));
	b = restore(XFS "/state", XFS "/snap1", 0);
	c = restore(XFS "/state", XFS "/snap1", 0);
	if (b && c) {
		CHECK(strcmp(sbx_sandbox_id(b), sbx_sandbox_id(a)) != 0);
		CHECK(strcmp(sbx_sandbox_id(b), sbx_sandbox_id(c)) != 0);
		CHECK(e2e_py_is(b, "x", "42"));
		CHECK(e2e_py_is(c, "x", "42"));
		CHECK(e2e_py_is(c, "x = 7\nx", "7"));
		CHECK(e2e_py_is(b, "x", "42"));
		CHECK(e2e_check_clock(b, "restore"));
		CHECK(check_jailed(b, "restored"));
		print_info("restore on XFS", sbx_sandbox_restore_info(b));
		CHECK(e2e_contains(sbx_snapshot_info_disks(sbx_sandbox_restore_info(b)),
				   "disk 0: reflink"));
		{
			char disk[600];
			snprintf(disk, sizeof(disk), XFS "/state/%s/disk-0.img", sbx_sandbox_id(b));
			e2e_extents(disk, &total, &shared);
			printf("restored rootfs: %u extents, %u shared\n", total, shared);
			CHECK(total > 0 && shared > 0);
		}
	}
	CHECK(e2e_py_is(a, "x", "43"));
	sbx_sandbox_destroy(c);

	/* A restored sandbox (memory mapped from a file) snapshotted again, and restored. */
	if (b) {
		CHECK(e2e_py_is(b, "y = x * 2\ny", "84"));
		rc = sbx_sandbox_snapshot(b, XFS "/snap2", &info);
		CHECK_EQ(rc, SBX_OK);
		if (rc == SBX_OK)
			print_info("snapshot of a restored sandbox", info);
		else
			fprintf(stderr, "snapshot 2: %s\n", sbx_sandbox_last_error(b));
		sbx_snapshot_info_free(info);
		info = NULL;
		sbx_sandbox_destroy(b);
		c = restore(XFS "/state", XFS "/snap2", 0);
		if (c)
			CHECK(e2e_py_is(c, "(x, y)", "(42, 84)"));
		sbx_sandbox_destroy(c);
	}
}

/* Copy fallback: XFS to ext4 is cross-device, and ext4 to ext4 has no reflink at all. */
static void test_ext4(sbx_sandbox *a)
{
	sbx_snapshot_info *info = NULL;
	sbx_sandbox *b;
	int rc = sbx_sandbox_snapshot(a, EXT4 "/snap", &info);

	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "snapshot to ext4: %s\n", sbx_sandbox_last_error(a));
		return;
	}
	print_info("snapshot to ext4", info);
	CHECK_EQ(sbx_snapshot_info_disks_copied(info), 1);
	CHECK(e2e_contains(sbx_snapshot_info_disks(info), "disk 0: copy (no reflink"));
	sbx_snapshot_info_free(info);
	b = restore(EXT4 "/state", EXT4 "/snap", 0);
	if (b) {
		const sbx_snapshot_info *ri = sbx_sandbox_restore_info(b);
		print_info("restore on ext4", ri);
		CHECK_EQ(sbx_snapshot_info_disks_copied(ri), 1);
		CHECK(e2e_contains(sbx_snapshot_info_disks(ri),
				   "copy (no reflink: Operation not supported)"));
		CHECK(e2e_py_is(b, "x", "43"));
	}
	sbx_sandbox_destroy(b);
	e2e_sh("rm -rf " EXT4 "/snap");
}

/* Bitwise CRC32C, as the format's header checksum (lib/snapshot/crc32c.c). */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

/* Restoring a broken copy of snap1 fails with code and a message containing want, and leaves
 * no process and no sandbox directory behind. */
static void expect_restore_error(const char *dir, int code, const char *want)
{
	sbx_config *cfg = config_for(XFS "/state");
	sbx_sandbox *sb = NULL;
	int vmms = e2e_vmm_count(), dirs = dir_entries(XFS "/state");
	int rc = sbx_sandbox_restore(cfg, dir, &sb);

	printf("restore %s: %s: %s\n", dir, sbx_err_name(rc), sbx_config_last_error(cfg));
	CHECK_EQ(rc, code);
	CHECK(e2e_contains(sbx_config_last_error(cfg), want));
	CHECK(sb == NULL);
	CHECK_EQ(e2e_vmm_count(), vmms);
	CHECK_EQ(dir_entries(XFS "/state"), dirs);
	sbx_config_free(cfg);
}

static void test_bad_snapshots(void)
{
	int fd;

	e2e_sh("cp -a --reflink=always " XFS "/snap1 " XFS "/bad-mem && "
	   "truncate -s 100M " XFS "/bad-mem/memory");
	expect_restore_error(XFS "/bad-mem", SBX_ESNAPSHOT, "is truncated");

	e2e_sh("cp -a --reflink=always " XFS "/snap1 " XFS "/bad-state");
	fd = open(XFS "/bad-state/state", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		uint8_t b;
		off_t at = lseek(fd, 0, SEEK_END) / 2;
		CHECK(pread(fd, &b, 1, at) == 1);
		b ^= 0x10;
		CHECK(pwrite(fd, &b, 1, at) == 1);
		close(fd);
	}
	expect_restore_error(XFS "/bad-state", SBX_ESNAPSHOT, "checksum mismatch");

	e2e_sh("cp -a --reflink=always " XFS "/snap1 " XFS "/bad-version");
	fd = open(XFS "/bad-version/state", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		uint8_t h[48];
		uint32_t version = 99, crc = 0;
		CHECK(pread(fd, h, sizeof(h), 0) == sizeof(h));
		memcpy(h + 8, &version, 4);
		memcpy(h + 44, &crc, 4);
		crc = crc32c(h, sizeof(h));
		memcpy(h + 44, &crc, 4);
		CHECK(pwrite(fd, h, sizeof(h), 0) == sizeof(h));
		close(fd);
	}
	expect_restore_error(XFS "/bad-version", SBX_ESNAPSHOT,
			     "format version 99; this libsandbox reads version 1");

	e2e_sh("cp -a --reflink=always " XFS "/snap1 " XFS "/bad-disk && rm " XFS
	   "/bad-disk/disk-0.img");
	expect_restore_error(XFS "/bad-disk", SBX_ENOENT, "rootfs (disk 0)");

	expect_restore_error(XFS "/no-such-snapshot", SBX_ENOENT, "No such file");

	/* A machine saved without a network device cannot be given one: a config asking for a
	 * network is refused, naming the reason. */
	{
		sbx_config *cfg = config_for(XFS "/state");
		sbx_net_policy *p = sbx_net_policy_new(SBX_NET_NONE);
		sbx_sandbox *sb = NULL;
		int rc;

		CHECK_EQ(sbx_config_set_net_policy(cfg, p), SBX_OK);
		rc = sbx_sandbox_restore(cfg, XFS "/snap1", &sb);
		printf("restore with a network: %s: %s\n", sbx_err_name(rc),
		       sbx_config_last_error(cfg));
		CHECK_EQ(rc, SBX_ENOTSUP);
		CHECK(e2e_contains(sbx_config_last_error(cfg), "no network device"));
		CHECK(sb == NULL);
		sbx_net_policy_free(p);
		sbx_config_free(cfg);
	}
	e2e_sh("rm -rf " XFS "/bad-mem " XFS "/bad-state " XFS "/bad-version " XFS "/bad-disk");
}

/* Hibernate: the sandbox stops; resume brings it back under its id, from another handle. */
static void test_hibernate(sbx_sandbox **pa)
{
	sbx_sandbox *a = *pa, *r;
	sbx_snapshot_info *info = NULL;
	char id[64];
	int pid = sbx_sandbox_vmm_pid(a), rc, reason = -1;

	snprintf(id, sizeof(id), "%s", sbx_sandbox_id(a));
	CHECK(e2e_py_is(a, "import os\nos.environ['STAGE'] = 'hibernated'\nx", "43"));
	rc = sbx_sandbox_hibernate(a, XFS "/hib", &info);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "hibernate: %s\n", sbx_sandbox_last_error(a));
		return;
	}
	print_info("hibernate", info);
	sbx_snapshot_info_free(info);
	CHECK_EQ(sbx_sandbox_wait_exit(a, 1000, &reason), SBX_OK);
	CHECK_EQ(reason, SBX_EXIT_STOPPED);
	CHECK(kill(pid, 0) < 0);
	/* Still there: its directory, until destroyed; a resume under its id waits for that. */
	r = NULL;
	{
		sbx_config *cfg = config_for(XFS "/state");
		CHECK_EQ(sbx_sandbox_resume(cfg, XFS "/hib", &r), SBX_ESTATE);
		sbx_config_free(cfg);
	}
	sbx_sandbox_destroy(a);
	*pa = NULL;
	r = restore(XFS "/state", XFS "/hib", 1);
	if (!r)
		return;
	CHECK(!strcmp(sbx_sandbox_id(r), id));
	CHECK(e2e_py_is(r, "(x, os.environ['STAGE'])", "(43, 'hibernated')"));
	CHECK(e2e_check_clock(r, "resume"));
	CHECK(check_jailed(r, "resumed"));
	*pa = r;
}

int main(void)
{
	sbx_sandbox *a = NULL;
	sbx_config *cfg;
	double t0 = now();
	int rc, vmms;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	e2e_env_load(&env);
	if (setup() < 0)
		return 1;
	vmms = e2e_vmm_count();
	cfg = config_for(XFS "/state");
	if (sbx_config_set_kernel(cfg, env.kernel) ||
	    sbx_config_set_initramfs(cfg, env.initramfs) ||
	    sbx_config_add_disk(cfg, XFS "/rootfs.img", 0) || sbx_config_set_vcpus(cfg, 2) ||
	    sbx_config_set_memory_mib(cfg, MEMORY_MIB)) {
		fprintf(stderr, "config: %s\n", sbx_config_last_error(cfg));
		return 1;
	}
	rc = sbx_sandbox_create(cfg, &a);
	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(a, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	printf("cold boot to a ready agent: %.2f s\n", now() - t0);
	if (rc == SBX_OK) {
		test_snapshot_restore(a);
		test_ext4(a);
		test_bad_snapshots();
		test_hibernate(&a);
	} else {
		fprintf(stderr, "not ready: %s\n",
			a ? sbx_sandbox_last_error(a) : sbx_config_last_error(cfg));
	}
	if (testing_failed && a)
		e2e_dump_console(a);
	sbx_sandbox_destroy(a);
	sbx_config_free(cfg);
	CHECK_EQ(e2e_vmm_count(), vmms);
	teardown();
	return TEST_SUMMARY();
}
