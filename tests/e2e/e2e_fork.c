/* End-to-end: templates and fork, on one guest booted once.
 *
 * Needs root and mkfs.xfs (the emulated KVM host has them): the state directory, and with it
 * the template directory, lives on an XFS loop mount (reflinks). The guest is the
 * code-interpreter rootfs (SANDBOX_CODE_ROOTFS, a copy made by tests/e2e/prepare) with 1 GiB.
 *
 * Checks: a template built from it (boot, warm-up imports, snapshot) is listed; a sandbox made
 * from it runs a cell at once with numpy already imported and has its own hostname; ten forked
 * children see a variable and a file of the parent, and their writes reach neither the parent
 * nor each other; os.urandom differs everywhere; each child's clock is the host's; the PSS of
 * all VMMs grows by far less than ten copies of the memory; the children's rootfs share
 * extents; removing the template, and destroying the sandboxes, leaves nothing behind. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "e2e_common.h"
#include "e2e_snaputil.h"
#include "testing.h"

#define BASE "/tmp/sbx-fork-e2e"
#define XFS BASE "/xfs"
#define STATE XFS "/state"
#define MEMORY_MIB 1024
#define CHILDREN 10
#define TEMPLATE "ci-e2e"

static struct e2e_env env;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(const char *rootfs)
{
	if (geteuid() != 0) {
		fprintf(stderr, "e2e_fork: needs root (loop mounts); run through run-e2e\n");
		return -1;
	}
	setenv("PATH", "/usr/sbin:/sbin:/usr/bin:/bin", 1);
	unsetenv("SANDBOX_TEMPLATE_DIR");
	e2e_sh("umount -q " XFS " 2>/dev/null; rm -rf " BASE);
	if (e2e_sh("mkdir -p " XFS) || e2e_sh("modprobe -q loop; modprobe -q xfs; true") ||
	    e2e_sh("truncate -s 12G " BASE "/xfs.img && mkfs.xfs -q -m reflink=1 " BASE
		   "/xfs.img") ||
	    e2e_sh("mount -o loop " BASE "/xfs.img " XFS) ||
	    e2e_sh("cp --sparse=always %s " XFS "/rootfs.img", rootfs) ||
	    e2e_sh("mkdir -m 700 " STATE)) {
		fprintf(stderr, "e2e_fork: the XFS loop mount could not be set up\n");
		return -1;
	}
	return 0;
}

static sbx_config *config(void)
{
	sbx_config *cfg = sbx_config_new();

	if (!cfg || sbx_config_set_state_dir(cfg, STATE) ||
	    sbx_config_set_kernel(cfg, env.kernel) ||
	    sbx_config_set_initramfs(cfg, env.initramfs) ||
	    sbx_config_add_disk(cfg, XFS "/rootfs.img", 0) || sbx_config_set_vcpus(cfg, 2) ||
	    sbx_config_set_memory_mib(cfg, MEMORY_MIB)) {
		fprintf(stderr, "e2e_fork: config\n");
		exit(1);
	}
	return cfg;
}

static void progress(void *user, const char *step)
{
	printf("template build: [%6.1f s] %s\n", now() - *(double *)user, step);
	fflush(stdout);
}

/* Proportional set size of the VMMs of sbs, in KiB. */
static long long pss_kib(sbx_sandbox **sbs, int n)
{
	long long total = 0;

	for (int i = 0; i < n; i++) {
		char path[64], line[256];
		long long kib;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", sbx_sandbox_vmm_pid(sbs[i]));
		f = fopen(path, "re");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "Pss: %lld kB", &kib) == 1)
				total += kib;
		if (f)
			fclose(f);
	}
	return total;
}

static int hostname_is_own(sbx_sandbox *sb)
{
	char want[64];

	snprintf(want, sizeof(want), "'sbx-%.12s'", sbx_sandbox_id(sb));
	return e2e_py_is(sb, "import socket\nsocket.gethostname()", want);
}

/* When the sandbox's time to live runs out (<dir>/expires, wall clock); 0 for none. */
static long long expires(sbx_sandbox *sb)
{
	char path[512];
	long long t = -1;
	FILE *f;

	snprintf(path, sizeof(path), STATE "/%s/expires", sbx_sandbox_id(sb));
	f = fopen(path, "re");
	if (f && fscanf(f, "%lld", &t) != 1)
		t = -1;
	if (f)
		fclose(f);
	return t;
}

/* With a time to live of an hour, which a fork's children inherit what is left of. */
static sbx_sandbox *from_template(void)
{
	sbx_config *cfg = config();
	sbx_sandbox *sb = NULL;
	double t0 = now();
	int rc = sbx_config_set_ttl(cfg, 3600) ?: sbx_sandbox_create_from_template(cfg, TEMPLATE, &sb);

	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "create from template: %s\n", sbx_config_last_error(cfg));
	else
		printf("created from the template in %.2f s\n", now() - t0);
	sbx_config_free(cfg);
	return sb;
}

static void test_template_build(void)
{
	sbx_config *cfg = config();
	char *names = NULL;
	double t0 = now();
	int rc = sbx_template_build(cfg, TEMPLATE, "import numpy, pandas, matplotlib.pyplot",
				    progress, &t0);

	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "template build: %s\n", sbx_config_last_error(cfg));
	CHECK_EQ(sbx_template_build(cfg, TEMPLATE, NULL, NULL, NULL), SBX_ESTATE);
	CHECK_EQ(sbx_template_build(cfg, "../x", NULL, NULL, NULL), SBX_EINVAL);
	CHECK_EQ(sbx_template_list(cfg, &names), SBX_OK);
	CHECK(names && !strcmp(names, TEMPLATE "\n"));
	sbx_free(names);
	sbx_config_free(cfg);
}

/* The children see the parent's state; then each writes its own, seen by nobody else. */
static void test_children(sbx_sandbox *p, sbx_sandbox **c)
{
	char *seen[CHILDREN + 1];
	unsigned total, shared;

	for (int i = 0; i < CHILDREN; i++) {
		char code[128], want[32], disk[600];

		CHECK(e2e_py_is(c[i], "x", "42"));
		CHECK(e2e_py_is(c[i], "open('/root/f').read()", "'parent'"));
		CHECK(hostname_is_own(c[i]));
		CHECK(e2e_check_clock(c[i], "fork"));
		snprintf(code, sizeof(code), "x = %d\nopen('/root/f', 'w').write('child%d')\nx", i,
			 i);
		snprintf(want, sizeof(want), "%d", i);
		CHECK(e2e_py_is(c[i], code, want));
		snprintf(disk, sizeof(disk), STATE "/%s/disk-0.img", sbx_sandbox_id(c[i]));
		e2e_extents(disk, &total, &shared);
		if (i == 0)
			printf("child rootfs: %u extents, %u shared\n", total, shared);
		CHECK(total > 0 && shared > 0);
	}
	CHECK(e2e_py_is(p, "x", "42"));
	CHECK(e2e_py_is(p, "open('/root/f').read()", "'parent'"));
	for (int i = 0; i < CHILDREN; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%d", i);
		CHECK(e2e_py_is(c[i], "x", want));
		snprintf(want, sizeof(want), "'child%d'", i);
		CHECK(e2e_py_is(c[i], "open('/root/f').read()", want));
	}
	/* Fresh entropy: 16 random bytes differ between the parent and every child. */
	for (int i = 0; i <= CHILDREN; i++)
		seen[i] = e2e_py(i ? c[i - 1] : p, "import os\nos.urandom(16).hex()");
	printf("os.urandom(16): parent %s, child 0 %s\n", seen[0], seen[1]);
	for (int i = 0; i <= CHILDREN; i++) {
		CHECK(strlen(seen[i]) == 34);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(seen[i], seen[j]) != 0);
	}
	for (int i = 0; i <= CHILDREN; i++)
		free(seen[i]);
}

static void test_fork(sbx_sandbox *p)
{
	sbx_sandbox *all[CHILDREN + 1] = {p}, **c = all + 1;
	long long before, after;
	double t0;
	int vmms = e2e_vmm_count(), rc;

	CHECK(e2e_py_is(p, "x = 42\nopen('/root/f', 'w').write('parent')\nx", "42"));
	CHECK_EQ(sbx_sandbox_fork(p, NULL, 0, c), SBX_ERANGE);
	before = pss_kib(all, 1);
	t0 = now();
	rc = sbx_sandbox_fork(p, NULL, CHILDREN, c);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "fork: %s\n", sbx_sandbox_last_error(p));
		return;
	}
	printf("forked %d children in %.2f s (%.2f s a child)\n", CHILDREN, now() - t0,
	       (now() - t0) / CHILDREN);
	CHECK_EQ(e2e_vmm_count(), vmms + 2 * CHILDREN); /* each child: its monitor and its VMM */
	/* No child outlives its parent's time to live: each ends when the parent does. */
	for (int i = 0; i < CHILDREN; i++)
		CHECK(expires(p) > 0 && expires(c[i]) == expires(p));
	test_children(p, c);
	after = pss_kib(all, CHILDREN + 1);
	printf("PSS of the VMMs, parent and %d children of %d MiB: %.1f MiB before the fork, "
	       "%.1f MiB after the checks: grew by %.1f MiB (ten private copies: %d MiB)\n",
	       CHILDREN, MEMORY_MIB, before / 1024.0, after / 1024.0, (after - before) / 1024.0,
	       CHILDREN * MEMORY_MIB);
	CHECK(before > 0 && after - before < (long long)CHILDREN * MEMORY_MIB * 1024 / 5);
	for (int i = 0; i < CHILDREN; i++)
		sbx_sandbox_destroy(c[i]);
	CHECK_EQ(e2e_vmm_count(), vmms);
}

int main(void)
{
	const char *code_rootfs = getenv("SANDBOX_CODE_ROOTFS");
	sbx_config *cfg;
	sbx_sandbox *p;
	char *names = NULL;
	int vmms;

	e2e_env_load(&env);
	if (!code_rootfs || access(code_rootfs, R_OK) != 0) {
		fprintf(stderr, "e2e_fork: SANDBOX_CODE_ROOTFS is not set or not readable "
				"(tests/e2e/prepare makes it)\n");
		return 1;
	}
	if (setup(code_rootfs) < 0)
		return 1;
	vmms = e2e_vmm_count();
	test_template_build();
	p = from_template();
	if (p) {
		double t0 = now();
		CHECK(e2e_py_is(p, "import sys\n'numpy' in sys.modules", "True"));
		printf("first cell after create-from-template: %.2f s\n", now() - t0);
		CHECK(hostname_is_own(p));
		test_fork(p);
	}
	sbx_sandbox_destroy(p);
	cfg = config();
	CHECK_EQ(sbx_template_remove(cfg, TEMPLATE), SBX_OK);
	CHECK_EQ(sbx_template_remove(cfg, TEMPLATE), SBX_ENOENT);
	CHECK_EQ(sbx_template_list(cfg, &names), SBX_OK);
	CHECK(names && !*names);
	sbx_free(names);
	sbx_config_free(cfg);
	CHECK_EQ(e2e_vmm_count(), vmms);
	e2e_sh("umount " XFS "; rm -rf " BASE);
	return testing_summary();
}
