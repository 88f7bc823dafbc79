/* The library's host side of sandbox networks, without a guest: a stand-in VMM (fake-vmm) takes
 * the tap, so this runs in seconds anywhere it is root, in a network namespace of its own.
 * Leases avoid what the host uses and each other, a full pool refuses cleanly, destroy leaves
 * nothing, a stale lease is taken back, and the policy API checks its input.
 *   test_net_host FAKE_VMM      (exit 77, skipped, when not root or without the modules) */
#define _GNU_SOURCE
#include <errno.h>
#include <sandbox.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_common.h"
#include "testing.h"

static char state[128], vmm_log[160];
static const char *self;

static int sh_ok(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A config the stand-in VMM accepts: any regular files do for kernel, initramfs and disk. */
static sbx_config *config(const char *pool)
{
	sbx_config *cfg = sbx_config_new();
	sbx_net_policy *p = sbx_net_policy_new(SBX_NET_NONE);

	CHECK_EQ(sbx_config_set_kernel(cfg, self), SBX_OK);
	CHECK_EQ(sbx_config_set_initramfs(cfg, self), SBX_OK);
	CHECK_EQ(sbx_config_add_disk(cfg, self, 1), SBX_OK);
	CHECK_EQ(sbx_config_set_net_policy(cfg, p), SBX_OK);
	CHECK_EQ(sbx_config_set_net_pool(cfg, pool), SBX_OK);
	CHECK_EQ(sbx_config_set_net_dns(cfg, "192.0.2.53:5353"), SBX_OK);
	sbx_net_policy_free(p);
	return cfg;
}

/* A sandbox from cfg; NULL (the check failed, the error said) when it could not be made. */
static sbx_sandbox *create(sbx_config *cfg)
{
	sbx_sandbox *sb = NULL;
	int rc = sbx_sandbox_create(cfg, &sb);

	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "create: %s\n", sbx_config_last_error(cfg));
	return rc == SBX_OK ? sb : NULL;
}

static int contains(const char *text, const char *needle)
{
	int found = strstr(text, needle) != NULL;

	if (!found)
		fprintf(stderr, "no \"%s\" in:\n%s\n", needle, text);
	return found;
}

static void test_policy_api(void)
{
	sbx_net_policy *p = NULL;
	char *text = NULL, *bad = NULL;

	CHECK(sbx_net_policy_new(7) == NULL);
	CHECK_EQ(
	    sbx_net_policy_parse("allow:10.0.0.0/8,1.2.3.4:443,Example.COM.,*.x.org", &p, NULL),
	    SBX_OK);
	CHECK_EQ(sbx_net_policy_count(p), 4);
	CHECK_EQ(sbx_net_policy_format(p, &text), SBX_OK);
	CHECK(text && strcmp(text, "allow:10.0.0.0/8,1.2.3.4:443,example.com,*.x.org") == 0);
	sbx_free(text);
	CHECK_EQ(sbx_net_policy_add(p, "example.com"), SBX_OK); /* already there */
	CHECK_EQ(sbx_net_policy_count(p), 4);
	CHECK_EQ(sbx_net_policy_remove(p, "EXAMPLE.com"), SBX_OK);
	CHECK_EQ(sbx_net_policy_remove(p, "example.com"), SBX_ENOENT);
	CHECK_EQ(sbx_net_policy_add(p, "10.0.0.1/8"), SBX_EINVAL); /* host bits: a typo */
	CHECK_EQ(sbx_net_policy_add(p, "1.2.3.4:0"), SBX_EINVAL);
	CHECK_EQ(sbx_net_policy_add(p, "1.2.3.4.5"), SBX_EINVAL);
	CHECK_EQ(sbx_net_policy_add(p, "exa mple.com"), SBX_EINVAL);
	CHECK_EQ(sbx_net_policy_set_mode(p, 9), SBX_EINVAL);
	CHECK_EQ(sbx_net_policy_set_mode(p, SBX_NET_NONE), SBX_OK);
	CHECK_EQ(sbx_net_policy_format(p, &text), SBX_OK);
	CHECK(text && strcmp(text, "none:10.0.0.0/8,1.2.3.4:443,*.x.org") == 0);
	sbx_free(text);
	sbx_net_policy_free(p);
	p = NULL;
	CHECK_EQ(sbx_net_policy_parse("allow:1.2.3.4,no..pe", &p, &bad), SBX_EINVAL);
	CHECK(p == NULL && bad && strcmp(bad, "no..pe") == 0);
	sbx_free(bad);
	CHECK_EQ(sbx_net_policy_parse("all:1.2.3.4", &p, NULL), SBX_EINVAL);
	CHECK_EQ(sbx_net_policy_parse("some", &p, NULL), SBX_EINVAL);
	CHECK_EQ(sbx_net_policy_parse("none", &p, NULL), SBX_OK);
	CHECK_EQ(sbx_net_policy_mode(p), SBX_NET_NONE);
	sbx_net_policy_free(p);
	{
		sbx_config *cfg = sbx_config_new();
		CHECK_EQ(sbx_config_set_net_pool(cfg, "10.1.0.0/30"), SBX_EINVAL);
		CHECK_EQ(sbx_config_set_net_pool(cfg, "10.1.0.1/24"), SBX_EINVAL);
		CHECK_EQ(sbx_config_set_net_mac(cfg, "03:00:00:00:00:01"),
			 SBX_EINVAL); /* multicast */
		CHECK_EQ(sbx_config_set_net_dns(cfg, "1.2.3.4:99999"), SBX_EINVAL);
		sbx_config_free(cfg);
	}
}

/* The first /29 of the pool is taken by the host: the sandbox gets the second; a second
 * sandbox finds the pool full and leaves nothing behind. */
static void test_lease_and_teardown(void)
{
	sbx_config *cfg = config("10.77.0.0/28");
	sbx_sandbox *a = create(cfg), *b = NULL;
	char *out;
	int rc;

	if (!a) {
		sbx_config_free(cfg);
		return;
	}
	out = e2e_sh_out("ip -br addr show dev sbx-0a4d0008; ip route; nft list table ip sbx_0a4d0008; "
		     "cat %s/net-leases/10.77.0.8; cat %s; ps -o args= -C sbx-dns-guard; "
		     "echo record: $(cat %s/%s/network.json); "
		     "echo control socket mode $(stat -c %%a %s/%s/guard.sock); "
		     "grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "
		     "/proc/$(pgrep -x sbx-dns-guard)/status",
		     state, vmm_log, state, sbx_sandbox_id(a), state, sbx_sandbox_id(a));
	CHECK(contains(out, "10.77.0.13/30"));
	CHECK(contains(out, "10.77.0.8/30 via 10.77.0.14 dev sbx-0a4d0008"));
	CHECK(contains(out, "ip saddr 10.77.0.10 masquerade"));
	/* The policy's second layer: none drops whatever comes from the sandbox. */
	CHECK(contains(out, "chain egress"));
	CHECK(contains(out, "iifname \"sbx-0a4d0008\" drop"));
	CHECK(contains(out, sbx_sandbox_id(a)));
	CHECK(contains(out, "fd4 /dev/net/tun"));
	CHECK(contains(out, "sbx.net=10.77.0.10/30,10.77.0.9,10.77.0.9,"));
	CHECK(contains(out, "\"tap_fd\":4"));
	/* DNS goes through the guard, which got the upstream, the table and the jail's ids; the
	 * library's record of the network has the policy and the upstream. */
	CHECK(contains(out, "\"dns_fd\":5"));
	CHECK(contains(out, "--table sbx_0a4d0008 --upstream 192.0.2.53:5353 --uid "));
	CHECK(contains(out, "record: {\"policy\":{\"mode\":\"none\""));
	CHECK(contains(out, "\"dns\":\"192.0.2.53:5353\""));
	/* Its control socket: the library's alone (the VMM sees the directory). */
	CHECK(contains(out, "control socket mode 600\n"));
	/* The guard: not root, CAP_NET_ADMIN (bit 12) alone, nothing to gain by exec, seccomp. */
	CHECK(contains(out, "CapEff:\t0000000000001000"));
	CHECK(contains(out, "CapBnd:\t0000000000000000"));
	CHECK(contains(out, "NoNewPrivs:\t1"));
	CHECK(contains(out, "Seccomp:\t2"));
	CHECK(!contains(out, "Uid:\t0\t"));
	CHECK(contains(out, "set admitted"));
	CHECK(contains(out, "\"policy\":{\"mode\":\"none\""));
	/* Inside the sandbox's namespace, as the stand-in VMM found it through its tap. */
	CHECK(contains(out, "tap0             UNKNOWN        10.77.0.9/30"));
	CHECK(contains(out, "default via 10.77.0.13 dev veth0"));
	CHECK(contains(out, "10.77.0.10 dev tap0 lladdr "));
	CHECK(contains(out, "PERMANENT"));
	CHECK(contains(out, "iifname \"tap0\" oifname \"veth0\" ip saddr 10.77.0.10 accept"));
	CHECK(contains(out, "ip daddr 10.77.0.10 ct state established,related accept"));
	free(out);

	rc = sbx_sandbox_create(cfg, &b);
	CHECK_EQ(rc, SBX_ERANGE);
	CHECK(contains(sbx_config_last_error(cfg), "10.77.0.0/28 is exhausted"));
	/* The policy of a sandbox without a command socket (this stand-in has none). */
	{
		sbx_net_policy *p = sbx_net_policy_new(SBX_NET_ALL);
		CHECK_EQ(sbx_sandbox_set_net_policy(a, p), SBX_ESTATE);
		sbx_net_policy_free(p);
	}
	sbx_sandbox_destroy(a);
	for (int i = 0; i < 50; i++) {
		out = e2e_sh_out("ip -br link | grep -c ^sbx-; nft list tables | grep -c sbx_; "
			     "ls %s/net-leases | wc -l; ls %s | wc -l; pgrep -c -x sbx-dns-guard",
			     state, state);
		if (strcmp(out, "0\n0\n0\n1\n0\n") == 0 || i == 49)
			break;
		free(out);
		usleep(100000);
	}
	/* No link, table, lease, DNS guard; only net-leases itself. */
	CHECK(contains(out, "0\n0\n0\n1\n0\n"));
	free(out);
	sbx_config_free(cfg);
}

/* A policy too long for the VMM's config line is refused at create, and the network made for it
 * (lease, namespace, table) is undone. */
static void test_too_large(void)
{
	sbx_config *cfg = config("10.77.0.0/28");
	sbx_net_policy *p = sbx_net_policy_new(SBX_NET_ALLOW);
	sbx_sandbox *a = NULL;
	char name[300], *out;
	int rc, added = 0;

	/* 1000 names of 200 bytes: 200 KB of policy. */
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "%04d%0*d.%0*d.%0*d.example.org", i, 56, 0, 60, 0, 60,
			 0);
		added += sbx_net_policy_add(p, name) == SBX_OK;
	}
	CHECK_EQ(added, 1000);
	CHECK_EQ(sbx_config_set_net_policy(cfg, p), SBX_OK);
	rc = sbx_sandbox_create(cfg, &a);
	CHECK_EQ(rc, SBX_ERANGE);
	if (rc == SBX_OK)
		sbx_sandbox_destroy(a);
	CHECK(contains(sbx_config_last_error(cfg), "larger than the VMM takes"));
	out = e2e_sh_out("ip -br link | grep -c ^sbx-; nft list tables | grep -c sbx_; "
		     "ls %s/net-leases | wc -l; ls %s | wc -l",
		     state, state);
	CHECK(contains(out, "0\n0\n0\n1\n"));
	free(out);
	sbx_net_policy_free(p);
	sbx_config_free(cfg);
}

/* A lease whose sandbox directory is gone (its destroyer died) is taken back, with its table. */
static void test_stale_lease(void)
{
	sbx_config *cfg = config("10.77.0.0/28");
	sbx_sandbox *a = NULL;
	char cmd[512], *out;
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "echo 0123456789abcdef0123456789abcdef > %s/net-leases/10.77.0.8 && "
		 "nft add table ip sbx_0a4d0008",
		 state);
	CHECK(sh_ok(cmd));
	rc = sbx_sandbox_create(cfg, &a);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "create: %s\n", sbx_config_last_error(cfg));
	out = e2e_sh_out("cat %s/net-leases/10.77.0.8; nft list table ip sbx_0a4d0008", state);
	CHECK(rc == SBX_OK && contains(out, sbx_sandbox_id(a)));
	CHECK(contains(out, "masquerade"));
	free(out);
	sbx_sandbox_destroy(a);
	sbx_config_free(cfg);
}

/* A host without a DNS server (resolv.conf empty, in a mount namespace of our own): the sandbox
 * gets its network without an upstream, so without a DNS guard, and says so in its record. */
static void test_no_upstream(void)
{
	sbx_config *cfg = config("10.77.0.0/28");
	sbx_sandbox *a = NULL;
	char *out;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("/dev/null", "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0) {
		fprintf(stderr, "no mount namespace with an empty resolv.conf: %s\n",
			strerror(errno));
		CHECK(0);
		sbx_config_free(cfg);
		return;
	}
	CHECK_EQ(sbx_config_set_net_dns(cfg, NULL), SBX_OK);
	a = create(cfg);
	if (!a) {
		sbx_config_free(cfg);
		return;
	}
	out = e2e_sh_out("cat %s/%s/network.json; ls %s/%s", state, sbx_sandbox_id(a), state,
			 sbx_sandbox_id(a));
	CHECK(contains(out, "{\"policy\":{\"mode\":\"none\""));
	CHECK(!strstr(out, "\"dns\""));
	CHECK(!strstr(out, "guard.sock"));
	free(out);
	sbx_sandbox_destroy(a);
	sbx_config_free(cfg);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_net_host FAKE_VMM\n");
		return 2;
	}
	self = "/proc/self/exe";
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_policy_api();
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0) {
		printf("test_net_host: SKIPPED the host side: needs root (CAP_NET_ADMIN)\n");
		return testing_failed ? 1 : 77;
	}
	if (!sh_ok("modprobe -qa tun veth nf_tables nft_chain_nat nft_masq nft_ct 2>/dev/null; "
		   "test -c /dev/net/tun && nft list tables >/dev/null 2>&1 && "
		   "ip link add sbxt0 type veth peer name sbxt1 && "
		   "ip addr add 10.77.0.1/29 dev sbxt0 && ip link set lo up")) {
		printf("test_net_host: SKIPPED the host side: no tun, veth or nf_tables here\n");
		return testing_failed ? 1 : 77;
	}
	/* A symlink's target is no regular file to stat for: resolve it. */
	self = realpath("/proc/self/exe", NULL);
	snprintf(state, sizeof(state), "/tmp/sbx-test-net-host-%d", (int)getpid());
	snprintf(vmm_log, sizeof(vmm_log), "%s.vmm", state);
	setenv("SANDBOX_STATE_DIR", state, 1);
	setenv("SANDBOX_VMM", argv[1], 1);
	setenv("FAKE_VMM_LOG", vmm_log, 1);
	setenv("FAKE_VMM_NS_DUMP", "1", 1);
	test_lease_and_teardown();
	test_too_large();
	test_stale_lease();
	test_no_upstream();
	rmdir(state);
	unlink(vmm_log);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
		sh_ok(cmd);
	}
	return TEST_SUMMARY();
}
