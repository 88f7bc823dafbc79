/* sandbox: the command-line face of libsandbox. Each subcommand is a thin layer over the API. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <linux/fs.h>
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "guest_defaults.h"

static const char *const guest_modules[] = {
	"virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover",
	"virtio_net", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sandbox COMMAND [OPTIONS]\n"
		"  doctor                      what this host can run, and what is missing\n"
		"  boot [OPTIONS]              boot a microVM and stream its console\n"
		"      --kernel PATH           guest kernel (default: newest /boot/vmlinuz-*-cloud-amd64)\n"
		"      --initramfs PATH        default: built for that kernel\n"
		"      --rootfs IMG[:ro]       root disk (default $SANDBOX_ROOTFS); :ro mounts it read-only\n"
		"      --disk IMG[:ro]         another disk (repeatable)\n"
		"      --cpus N --memory MiB   default 1 and 512\n"
		"      --exec CMD              run CMD in the guest once it is up, then power off\n"
		"      --kernel-args ARGS      extra kernel command-line words\n"
		"      --timeout S             stop the guest after S seconds (default: none)\n"
		"      --cpu-quota PCT --pids N   cgroup limits: CPU in %% of one CPU, tasks\n"
		"      --ttl S                 stop the sandbox S seconds after it started, even\n"
		"                              with nobody attached (exit reason ttl)\n"
		"      --allow-degraded[=LIST] start even without these protections (names as\n"
		"                              `doctor` prints them, comma-separated; none: all)\n"
		"      --net none|all|allow:LIST   give the guest a network with this egress policy;\n"
		"                              LIST: CIDR[:PORT] and domain names, comma-separated\n"
		"      --net-dns IP[:PORT]     DNS server allowed names are resolved with\n"
		"      --net-mac MAC --net-pool CIDR --net-admit-private\n"
		"  create [boot OPTIONS]       start a detached sandbox, wait until ready, print its id\n"
		"  create --template NAME      the same, restored from a template instead of booted\n"
		"  template build NAME [--lite] [boot OPTIONS]   build the rootfs of NAME (unless\n"
		"                              --rootfs is given), boot, warm and snapshot it\n"
		"  template list | rm NAME     the templates ($SANDBOX_TEMPLATE_DIR, else\n"
		"                              <state dir>/templates)\n"
		"  fork ID -n N                N running copies of a sandbox, their ids one a line\n"
		"  exec ID [--timeout S] [--cwd DIR] [--user U] [--env K=V]... [--stdin] -- CMD [ARG...]\n"
		"  exec ID --shell 'CMD'        run a command; its output streams, its exit code is ours\n"
		"  files ID put LOCAL REMOTE | get REMOTE LOCAL | ls PATH | rm [-r] PATH | stat PATH\n"
		"  run-code ID [--language L] [--context C] [--timeout S] [--json] [--out-dir DIR] CODE|-\n"
		"                              run a cell in a code interpreter context; text results\n"
		"                              print, PNG/SVG/HTML results go to files whose paths print\n"
		"  context ID create [--language L] [--cwd DIR] | list | restart C | destroy C\n"
		"  net set ID none|all|allow:LIST   replace the egress policy of a running sandbox\n"
		"  net allow ID ENTRY...       add entries (the policy becomes allow)\n"
		"  net deny ID [ENTRY...]      remove entries; with none, the policy becomes none\n"
		"  net show ID                 print the policy in force\n"
		"  net log ID [--json]         the denials recorded: time, protocol, destination, why\n"
		"  destroy ID                  stop a sandbox and remove its files (also one that\n"
		"                              ended without a destroy)\n"
		"  gc [--state-dir D]          remove what ended sandboxes left (cgroups, network\n"
		"                              leftovers, files); every create does it too\n"
		"  isolation ID                the protections a running sandbox has\n"
		"  snapshot ID DIR             save a running sandbox into DIR (it runs on)\n"
		"  restore DIR                 start a new sandbox from a snapshot, print its id\n"
		"  hibernate ID DIR            save a sandbox into DIR and stop it\n"
		"  resume DIR                  start a hibernated sandbox again under its id\n"
		"  initramfs [--kernel PATH] -o OUT   write the guest initramfs\n"
		"  rootfs build [ARGS]         build a Debian rootfs image (see --help of the builder)\n"
		"  version\n");
}

/* Whether `dir` supports reflinks: clone one small file into another with FICLONE. */
static const char *reflink_support(const char *dir)
{
	char a[4200], b[4200];
	const char *verdict = "no (copies will be used)";
	int fa, fb;

	snprintf(a, sizeof(a), "%s/.reflink-probe-a", dir);
	snprintf(b, sizeof(b), "%s/.reflink-probe-b", dir);
	fa = open(a, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fb = open(b, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fa < 0 || fb < 0)
		verdict = "unknown (cannot write there)";
	else if (write(fa, "probe", 5) == 5 && ioctl(fb, FICLONE, fa) == 0)
		verdict = "yes";
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	unlink(a);
	unlink(b);
	return verdict;
}

/* Prints an isolation report (see sbx_host_isolation), one protection a line; the number of
 * missing ones, or -1 if the report cannot be read. */
static int print_isolation(const char *report, const char *yes, const char *no)
{
	json_t *j = json_loads(report, 0, NULL), *list = json_object_get(j, "protections"), *p;
	size_t i;
	int missing = 0;

	if (!json_is_array(list)) {
		json_decref(j);
		return -1;
	}
	json_array_foreach(list, i, p) {
		const char *name = "?", *detail = "";
		int applied = 0;
		json_unpack(p, "{s:s, s:b, s:s}", "name", &name, "applied", &applied, "detail",
			    &detail);
		printf("  %-18s %-9s %s\n", name, applied ? yes : no, detail);
		missing += !applied;
	}
	json_decref(j);
	return missing;
}

/* What a sandbox would get here, found by the VMM trying each step (sbx_host_isolation). */
static int doctor_isolation(void)
{
	sbx_config *cfg = sbx_config_new();
	unsigned available = 0;
	char *report = NULL;
	int rc = cfg ? sbx_host_isolation(cfg, &available, &report) : SBX_ENOMEM, missing;

	printf("isolation:  as %s%s\n", geteuid() == 0 ? "root" : "an unprivileged user",
	       rc == SBX_OK ? "" : " (probe failed)");
	if (rc != SBX_OK) {
		printf("  %s: %s\n", sbx_err_name(rc), cfg ? sbx_config_last_error(cfg) : "");
		sbx_config_free(cfg);
		return 1;
	}
	missing = print_isolation(report, "available", "MISSING");
	if (missing > 0)
		printf("  sandboxes refuse to start without these unless allowed "
		       "(sbx_config_set_allow_degraded, --allow-degraded)\n");
	sbx_free(report);
	sbx_config_free(cfg);
	return missing != 0;
}

/* Sandbox networks (--net) need root and these modules, loaded, loadable or built in. Optional:
 * a sandbox without a network needs none of it, so nothing here counts as a problem. */
static void doctor_network(void)
{
	static const char *const mods[] = { "tun", "veth", "nf_tables", "nft_chain_nat", "nft_masq",
					    "nft_ct" };
	char missing[256] = "", dir[400];
	struct utsname u;
	struct stat st;

	uname(&u);
	snprintf(dir, sizeof(dir), "/lib/modules/%s", u.release);
	if (stat(dir, &st) < 0) {
		printf("network:    %s; cannot tell which modules this kernel has (no %s)\n",
		       geteuid() ? "needs root" : "root", dir);
		return;
	}
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		char cmd[160];
		snprintf(cmd, sizeof(cmd), "test -d /sys/module/%s || modprobe -n -q %s 2>/dev/null",
			 mods[i], mods[i]);
		if (system(cmd) != 0)
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s",
				 mods[i]);
	}
	if (geteuid() != 0 || missing[0])
		printf("network:    unavailable (%s%s%s%s)\n", geteuid() ? "needs root" : "",
		       geteuid() && missing[0] ? "; " : "", missing[0] ? "missing modules:" : "",
		       missing);
	else
		printf("network:    available (root; tun, veth, nf_tables modules)\n");
}

static int cmd_doctor(void)
{
	static const char *const names[] = { "no KVM", "KVM, paravirtual only",
					     "KVM with hardware virtualization" };
	char kernel[4096], path[4300], cache[4096];
	const char *state = getenv("SANDBOX_STATE_DIR");
	char *detail = NULL;
	int virt = SBX_HOST_NO_KVM, problems = 0;

	sbx_host_probe(&virt, &detail);
	printf("libsandbox %s\n", sbx_version());
	printf("host:       %s: %s\n", names[virt], detail ? detail : "(probe failed)");
	problems += virt != SBX_HOST_KVM_HW;
	sbx_free(detail);
	if (guest_kernel_find(kernel, sizeof(kernel)) < 0) {
		printf("kernel:     none found (apt-get install linux-image-cloud-amd64)\n");
		problems++;
	} else {
		const char *release = guest_kernel_release(kernel);
		unsigned missing = 0;
		printf("kernel:     %s\n", kernel);
		for (size_t i = 0; i < sizeof(guest_modules) / sizeof(guest_modules[0]); i++) {
			char cmd[8600];
			snprintf(cmd, sizeof(cmd),
				 "find /lib/modules/%s -name '%s.ko' 2>/dev/null | grep -q .", release,
				 guest_modules[i]);
			if (system(cmd) != 0) {
				printf("  module %s: MISSING\n", guest_modules[i]);
				missing++;
			}
		}
		printf("modules:    %s in /lib/modules/%s\n", missing ? "some missing" : "all found",
		       release);
		problems += missing != 0;
	}
	doctor_network();
	if (!state || !*state)
		state = geteuid() == 0 ? "/run/libsandbox" : "/tmp";
	mkdir(state, 0700);
	printf("state dir:  %s (reflink: %s)\n", state, reflink_support(state));
	if (guest_cache_dir(cache, sizeof(cache)) == 0) {
		snprintf(path, sizeof(path), "%s", cache);
		printf("cache dir:  %s (reflink: %s)\n", path, reflink_support(path));
	}
	problems += doctor_isolation();
	printf("%s\n", problems ? "doctor: problems found (see above)" : "doctor: all good");
	return problems ? 1 : 0;
}

/* "seccomp,cgroup" to SBX_PROT_* bits; NULL (no list) is all of them. */
static int parse_protections(const char *list, unsigned *bits)
{
	char buf[512], *save = NULL;

	*bits = 0;
	if (!list) {
		*bits = SBX_PROT_ALL;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		unsigned bit = 0;
		for (unsigned b = 1; b & SBX_PROT_ALL; b <<= 1)
			if (strcmp(sbx_protection_name(b), name) == 0)
				bit = b;
		if (!bit) {
			fprintf(stderr, "sandbox: unknown protection %s (see `sandbox doctor`)\n",
				name);
			return 2;
		}
		*bits |= bit;
	}
	return 0;
}

int boot_parse(int argc, char **argv, struct boot_opts *o)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, 0, 'k' }, { "initramfs", required_argument, 0, 'i' },
		{ "rootfs", required_argument, 0, 'r' }, { "disk", required_argument, 0, 'd' },
		{ "cpus", required_argument, 0, 'c' },   { "memory", required_argument, 0, 'm' },
		{ "exec", required_argument, 0, 'e' },   { "kernel-args", required_argument, 0, 'a' },
		{ "timeout", required_argument, 0, 't' }, { "cpu-quota", required_argument, 0, 'q' },
		{ "pids", required_argument, 0, 'p' }, { "ttl", required_argument, 0, 'T' },
		{ "allow-degraded", optional_argument, 0, 'G' }, { "net", required_argument, 0, 'n' },
		{ "net-dns", required_argument, 0, 'D' }, { "net-mac", required_argument, 0, 'M' },
		{ "net-pool", required_argument, 0, 'P' },
		{ "net-admit-private", no_argument, 0, 'A' }, { 0, 0, 0, 0 },
	};
	unsigned timeout;
	int c;

	memset(o, 0, sizeof(*o));
	o->cpus = 1;
	o->memory = 512;
	o->timeout_s = -1;
	o->rootfs = getenv("SANDBOX_ROOTFS");
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': snprintf(o->kernel, sizeof(o->kernel), "%s", optarg); break;
		case 'i': snprintf(o->initramfs, sizeof(o->initramfs), "%s", optarg); break;
		case 'r': o->rootfs = optarg; break;
		case 'd':
			if (o->ndisks == MAX_EXTRA_DISKS) {
				fprintf(stderr, "sandbox: at most %d extra disks\n", MAX_EXTRA_DISKS);
				return 2;
			}
			o->disks[o->ndisks++] = optarg;
			break;
		case 'c':
			if (parse_uint("cpus", optarg, 1024, &o->cpus))
				return 2;
			break;
		case 'm':
			if (parse_uint("memory", optarg, 1u << 30, &o->memory))
				return 2;
			break;
		case 'e': o->exec = optarg; break;
		case 'a': o->kernel_args = optarg; break;
		case 't':
			if (parse_uint("timeout", optarg, INT_MAX, &timeout))
				return 2;
			o->timeout_s = (int)timeout;
			break;
		case 'q':
			if (parse_uint("cpu-quota", optarg, 1u << 20, &o->cpu_quota))
				return 2;
			break;
		case 'p':
			if (parse_uint("pids", optarg, 1u << 22, &o->pids))
				return 2;
			break;
		case 'T':
			if (parse_uint("ttl", optarg, SBX_TTL_MAX_S, &o->ttl))
				return 2;
			break;
		case 'G':
			if (parse_protections(optarg, &o->allow_degraded))
				return 2;
			break;
		case 'n': o->net = optarg; break;
		case 'D': o->net_dns = optarg; break;
		case 'M': o->net_mac = optarg; break;
		case 'P': o->net_pool = optarg; break;
		case 'A': o->net_admit_private = 1; break;
		default: usage(stderr); return 2;
		}
	}
	if (!o->rootfs) {
		fprintf(stderr, "sandbox: no rootfs: pass --rootfs IMG or set SANDBOX_ROOTFS "
				"(build one with `sandbox rootfs build -o IMG`)\n");
		return 2;
	}
	if (!o->net && (o->net_dns || o->net_mac || o->net_pool || o->net_admit_private)) {
		fprintf(stderr, "sandbox: --net-* options need --net\n");
		return 2;
	}
	if (!o->kernel[0] && guest_kernel_find(o->kernel, sizeof(o->kernel)) < 0) {
		fprintf(stderr, "sandbox: no guest kernel found; pass --kernel\n");
		return 2;
	}
	return 0;
}

/* "IMG" or "IMG:ro" */
static int add_disk_arg(sbx_config *cfg, const char *arg, int *ro)
{
	char path[4096];
	size_t n = strlen(arg);

	*ro = n > 3 && strcmp(arg + n - 3, ":ro") == 0;
	snprintf(path, sizeof(path), "%.*s", (int)(*ro ? n - 3 : n), arg);
	return sbx_config_add_disk(cfg, path, *ro);
}

/* Parses a policy argument, saying what is wrong with it. NULL on failure. */
sbx_net_policy *policy_parse_or_complain(const char *text)
{
	sbx_net_policy *p = NULL;
	char *bad = NULL;
	int rc = sbx_net_policy_parse(text, &p, &bad);

	if (rc != SBX_OK)
		fprintf(stderr,
			"sandbox: policy %s: %s is not none, all or allow:LIST of CIDR[:PORT] and "
			"domain names\n",
			text, bad ? bad : text);
	sbx_free(bad);
	return p;
}

static int net_configure(sbx_config *cfg, const struct boot_opts *o)
{
	sbx_net_policy *p = policy_parse_or_complain(o->net);
	int rc = p ? sbx_config_set_net_policy(cfg, p) : SBX_EINVAL;

	sbx_net_policy_free(p);
	if (rc == SBX_OK && o->net_dns) rc = sbx_config_set_net_dns(cfg, o->net_dns);
	if (rc == SBX_OK && o->net_mac) rc = sbx_config_set_net_mac(cfg, o->net_mac);
	if (rc == SBX_OK && o->net_pool) rc = sbx_config_set_net_pool(cfg, o->net_pool);
	if (rc == SBX_OK) rc = sbx_config_set_net_admit_private(cfg, o->net_admit_private);
	return rc;
}

/* Applies the boot options to a config; each failure prints the config's message. */
int boot_configure(sbx_config *cfg, struct boot_opts *o)
{
	char err[512], args[4200];
	int rc = SBX_OK, rootfs_ro = 0, ro;

	if (!o->initramfs[0]) {
		const char *env = getenv("SANDBOX_INITRAMFS");
		if (env && *env)
			snprintf(o->initramfs, sizeof(o->initramfs), "%s", env);
		else if ((rc = guest_initramfs_build(o->kernel, o->initramfs, sizeof(o->initramfs),
						     err, sizeof(err))) != SBX_OK) {
			fprintf(stderr, "sandbox: initramfs: %s\n", err);
			return rc;
		}
	}
	if (rc == SBX_OK) rc = sbx_config_set_kernel(cfg, o->kernel);
	if (rc == SBX_OK) rc = sbx_config_set_initramfs(cfg, o->initramfs);
	if (rc == SBX_OK) rc = add_disk_arg(cfg, o->rootfs, &rootfs_ro);
	for (unsigned i = 0; rc == SBX_OK && i < o->ndisks; i++)
		rc = add_disk_arg(cfg, o->disks[i], &ro);
	if (rc == SBX_OK && (o->kernel_args || rootfs_ro)) {
		/* A read-only root disk must also be mounted read-only by the init. */
		snprintf(args, sizeof(args), "%s%s%s", rootfs_ro ? "sbx.ro=1" : "",
			 rootfs_ro && o->kernel_args ? " " : "", o->kernel_args ? o->kernel_args : "");
		rc = sbx_config_set_kernel_args(cfg, args);
	}
	if (rc == SBX_OK) rc = sbx_config_set_vcpus(cfg, o->cpus);
	if (rc == SBX_OK) rc = sbx_config_set_memory_mib(cfg, o->memory);
	if (rc == SBX_OK && o->exec) rc = sbx_config_set_init_command(cfg, o->exec);
	if (rc == SBX_OK) rc = sbx_config_set_cpu_quota(cfg, o->cpu_quota);
	if (rc == SBX_OK) rc = sbx_config_set_pids_max(cfg, o->pids);
	if (rc == SBX_OK) rc = sbx_config_set_ttl(cfg, o->ttl);
	if (rc == SBX_OK) rc = sbx_config_set_allow_degraded(cfg, o->allow_degraded);
	if (rc == SBX_OK && o->net) rc = net_configure(cfg, o);
	if (rc != SBX_OK)
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
	return rc;
}

static const char *exit_reason_name(int reason)
{
	static const char *const names[] = { "running", "poweroff", "reboot", "stopped", "crash",
					     "vmm-died", "seccomp", "limit", "ttl" };
	return reason >= 0 && reason <= SBX_EXIT_TTL ? names[reason] : "unknown";
}

static int cmd_boot(int argc, char **argv)
{
	struct boot_opts o;
	sbx_config *cfg = sbx_config_new();
	sbx_sandbox *sb = NULL;
	char *console = NULL;
	int rc, reason = SBX_EXIT_NONE;
	double ready = 0;

	if (!cfg)
		return 1;
	rc = boot_parse(argc, argv, &o);
	if (rc == 0 && boot_configure(cfg, &o) != SBX_OK)
		rc = 1;
	if (rc == 0 && (rc = sbx_sandbox_create(cfg, &sb)) != SBX_OK) {
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
		rc = 1;
	}
	if (rc == 0) {
		fprintf(stderr, "sandbox: %s booting (VMM pid %d)\n", sbx_sandbox_id(sb),
			sbx_sandbox_vmm_pid(sb));
		rc = sbx_sandbox_wait_exit(sb, o.timeout_s < 0 ? -1 : o.timeout_s * 1000, &reason);
		if (rc == SBX_ETIMEDOUT)
			sbx_sandbox_stop(sb);
		if (sbx_sandbox_console(sb, &console, NULL) == SBX_OK)
			fputs(console, stdout);
		if (sbx_sandbox_ready_time(sb, &ready) == SBX_OK)
			fprintf(stderr, "sandbox: guest ready after %.3f s\n", ready);
		fprintf(stderr, "sandbox: guest stopped: %s%s%s\n",
			rc == SBX_ETIMEDOUT ? "timeout" : exit_reason_name(reason),
			*sbx_sandbox_last_error(sb) ? ": " : "", sbx_sandbox_last_error(sb));
		rc = rc == SBX_OK && reason == SBX_EXIT_POWEROFF ? 0 : 1;
	}
	sbx_free(console);
	sbx_sandbox_destroy(sb);
	sbx_config_free(cfg);
	return rc;
}

static int cmd_create(int argc, char **argv)
{
	struct boot_opts o;
	sbx_config *cfg = sbx_config_new();
	sbx_sandbox *sb = NULL;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "--template")) {
		sbx_config_free(cfg);
		return cmd_create_from_template(argv[2]);
	}
	if (!cfg)
		return 1;
	rc = boot_parse(argc, argv, &o);
	if (rc == 0 && (boot_configure(cfg, &o) != SBX_OK || sbx_config_set_detached(cfg, 1)))
		rc = 1;
	if (rc == 0 && (rc = sbx_sandbox_create(cfg, &sb)) != SBX_OK) {
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
		rc = 1;
	}
	if (rc == 0 && (rc = sbx_sandbox_wait_ready(sb, o.timeout_s < 0 ? 300000
									  : o.timeout_s * 1000))) {
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_sandbox_last_error(sb));
		sbx_sandbox_destroy(sb);
		sb = NULL;
		rc = 1;
	}
	if (rc == 0)
		printf("%s\n", sbx_sandbox_id(sb));
	sbx_sandbox_close(sb);
	sbx_config_free(cfg);
	return rc;
}

sbx_sandbox *attach_or_complain(const char *id)
{
	sbx_sandbox *sb = NULL;
	int rc = sbx_sandbox_attach(NULL, id, &sb);

	if (rc != SBX_OK)
		fprintf(stderr, "sandbox: %s: %s: %s\n", id, sbx_err_name(rc), sbx_strerror(rc));
	return rc == SBX_OK ? sb : NULL;
}

void stream_output(void *user, int stream, const char *data, size_t len)
{
	fwrite(data, 1, len, stream == SBX_STDOUT ? stdout : stderr);
	fflush(stream == SBX_STDOUT ? stdout : stderr);
}

/* Reads all of stdin for the command (it is sent before the command's output is read). */
int slurp_stdin(char **data, size_t *len)
{
	size_t cap = 65536;
	char *buf = malloc(cap), *bigger;
	ssize_t n = 0;

	*len = 0;
	while (buf && (n = read(0, buf + *len, cap - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break; /* a read error must not pass for the end of the input */
		*len += (size_t)n;
		if (*len == cap) {
			bigger = realloc(buf, cap *= 2);
			if (!bigger)
				break;
			buf = bigger;
		}
	}
	if (buf && n != 0) {
		free(buf);
		buf = NULL;
	}
	*data = buf;
	return buf ? 0 : -1;
}

static int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, 0, 't' }, { "cwd", required_argument, 0, 'c' },
		{ "user", required_argument, 0, 'u' },    { "env", required_argument, 0, 'e' },
		{ "stdin", no_argument, 0, 'i' },         { "shell", required_argument, 0, 's' },
		{ 0, 0, 0, 0 },
	};
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	sbx_sandbox *sb;
	char *in = NULL;
	size_t in_len;
	unsigned ms;
	int c, rc = SBX_OK, status;

	if (argc < 2 || !o) {
		usage(stderr);
		return 2;
	}
	optind = 2; /* argv[1] is the id */
	sbx_exec_opts_set_output_fn(o, stream_output, NULL);
	sbx_exec_opts_set_capture(o, 0);
	while (rc == SBX_OK && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		char *eq;
		switch (c) {
		case 't':
			rc = parse_seconds_ms("timeout", optarg, &ms)
				     ? SBX_EINVAL
				     : sbx_exec_opts_set_timeout_ms(o, ms);
			break;
		case 'c': rc = sbx_exec_opts_set_cwd(o, optarg); break;
		case 'u': rc = sbx_exec_opts_set_user(o, optarg); break;
		case 's': rc = sbx_exec_opts_set_shell(o, optarg); break;
		case 'e':
			eq = strchr(optarg, '=');
			if (!eq)
				rc = SBX_EINVAL;
			else {
				*eq = 0;
				rc = sbx_exec_opts_add_env(o, optarg, eq + 1);
			}
			break;
		case 'i':
			free(in);
			rc = slurp_stdin(&in, &in_len) == 0 ? sbx_exec_opts_set_stdin(o, in, in_len)
							    : SBX_ENOMEM;
			break;
		default: rc = SBX_EINVAL;
		}
	}
	if (rc == SBX_OK && optind < argc)
		rc = sbx_exec_opts_set_argv(o, (const char *const *)argv + optind);
	free(in);
	if (rc != SBX_OK) {
		fprintf(stderr, "sandbox exec: bad arguments (%s)\n", sbx_strerror(rc));
		sbx_exec_opts_free(o);
		return 2;
	}
	sb = attach_or_complain(argv[1]);
	rc = sb ? sbx_exec(sb, o, &r) : SBX_ESTATE;
	if (sb && rc != SBX_OK)
		fprintf(stderr, "sandbox exec: %s: %s\n", sbx_err_name(rc), sbx_sandbox_last_error(sb));
	status = rc != SBX_OK                    ? 125
		 : sbx_exec_result_timed_out(r) ? 124
		 : sbx_exec_result_signal(r)    ? 128 + sbx_exec_result_signal(r)
						: sbx_exec_result_exit_code(r);
	if (rc == SBX_OK && sbx_exec_result_timed_out(r))
		fprintf(stderr, "sandbox exec: timed out\n");
	sbx_exec_result_free(r);
	sbx_exec_opts_free(o);
	sbx_sandbox_close(sb);
	return status;
}

static const char *type_name(int type)
{
	static const char *const names[] = { "?", "file", "dir", "symlink", "other" };
	return type >= 0 && type <= SBX_FILE_OTHER ? names[type] : "?";
}

static int files_do(sbx_sandbox *sb, int argc, char **argv)
{
	const char *op = argv[0];
	int fd, rc;

	if (strcmp(op, "put") == 0 && argc == 3) {
		fd = strcmp(argv[1], "-") == 0 ? 0 : open(argv[1], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fprintf(stderr, "sandbox files: %s: %s\n", argv[1], strerror(errno)), 1;
		rc = sbx_file_write_fd(sb, argv[2], fd, 0644);
	} else if (strcmp(op, "get") == 0 && argc == 3) {
		fd = strcmp(argv[2], "-") == 0
			     ? 1
			     : open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fprintf(stderr, "sandbox files: %s: %s\n", argv[2], strerror(errno)), 1;
		rc = sbx_file_read_fd(sb, argv[1], fd);
	} else if (strcmp(op, "ls") == 0 && argc == 2) {
		sbx_dir *d = NULL;
		rc = sbx_file_list(sb, argv[1], &d);
		for (size_t i = 0; rc == SBX_OK && i < sbx_dir_count(d); i++)
			printf("%-7s %12llu %s\n", type_name(sbx_dir_type(d, i)), sbx_dir_size(d, i),
			       sbx_dir_name(d, i));
		sbx_dir_free(d);
	} else if (strcmp(op, "stat") == 0 && argc == 2) {
		unsigned long long size;
		unsigned mode;
		long long mtime;
		int type;
		rc = sbx_file_stat(sb, argv[1], &type, &size, &mode, &mtime);
		if (rc == SBX_OK)
			printf("%s %llu bytes mode %04o mtime %lld\n", type_name(type), size, mode & 07777,
			       mtime);
	} else if (strcmp(op, "rm") == 0 && (argc == 2 || (argc == 3 && !strcmp(argv[1], "-r")))) {
		rc = sbx_file_remove(sb, argv[argc - 1], argc == 3);
	} else {
		usage(stderr);
		return 2;
	}
	if (rc != SBX_OK)
		fprintf(stderr, "sandbox files: %s: %s\n", sbx_err_name(rc), sbx_sandbox_last_error(sb));
	return rc == SBX_OK ? 0 : 1;
}

static int cmd_files(int argc, char **argv)
{
	sbx_sandbox *sb;
	int rc;

	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	sb = attach_or_complain(argv[1]);
	if (!sb)
		return 1;
	rc = files_do(sb, argc - 2, argv + 2);
	sbx_sandbox_close(sb);
	return rc;
}

/* Prints what sbx_gc removed; 0, or 1 when it could not look. */
static int gc_run(const char *state_dir, unsigned *removed, char **report)
{
	int rc = sbx_gc(state_dir, removed, report);

	if (rc != SBX_OK)
		fprintf(stderr, "sandbox: gc: %s: %s\n", sbx_err_name(rc), sbx_strerror(rc));
	return rc != SBX_OK;
}

static int cmd_destroy(int argc, char **argv)
{
	sbx_sandbox *sb = NULL;
	char *report = NULL, line[64];
	int rc;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	rc = sbx_sandbox_attach(NULL, argv[1], &sb);
	if (rc == SBX_OK) {
		sbx_sandbox_destroy(sb);
		return 0;
	}
	if (rc != SBX_ESTATE) {
		fprintf(stderr, "sandbox: %s: %s: %s\n", argv[1], sbx_err_name(rc), sbx_strerror(rc));
		return 1;
	}
	/* It ended without a destroy (its VMM killed, its TTL out): collect what it left. */
	if (gc_run(NULL, NULL, &report))
		return 1;
	snprintf(line, sizeof(line), "%s: removed", argv[1]);
	rc = report && strstr(report, line) ? 0 : 1;
	if (rc)
		fprintf(stderr, "sandbox: %s has ended but is still held (an attached process?)\n",
			argv[1]);
	sbx_free(report);
	return rc;
}

static int cmd_gc(int argc, char **argv)
{
	const char *state_dir = NULL;
	char *report = NULL;
	unsigned removed = 0;

	if (argc == 3 && strcmp(argv[1], "--state-dir") == 0)
		state_dir = argv[2];
	else if (argc != 1) {
		usage(stderr);
		return 2;
	}
	if (gc_run(state_dir, &removed, &report))
		return 1;
	fputs(report ? report : "", stdout);
	printf("%u sandbox%s removed\n", removed, removed == 1 ? "" : "es");
	sbx_free(report);
	return 0;
}

static int cmd_isolation(int argc, char **argv)
{
	sbx_sandbox *sb;
	unsigned applied = 0;
	char *report = NULL;
	int rc;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	sb = attach_or_complain(argv[1]);
	if (!sb)
		return 1;
	rc = sbx_sandbox_isolation(sb, &applied, &report);
	if (rc == SBX_OK)
		rc = print_isolation(report, "yes", "MISSING") < 0 ? SBX_EPROTO : SBX_OK;
	else
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_sandbox_last_error(sb));
	sbx_free(report);
	sbx_sandbox_close(sb);
	return rc == SBX_OK ? 0 : 1;
}

static void print_snapshot_info(const char *what, const sbx_snapshot_info *info)
{
	fprintf(stderr, "sandbox: %s in %.3f s; memory %.1f MiB\n", what,
		sbx_snapshot_info_seconds(info),
		(double)sbx_snapshot_info_memory_bytes(info) / (1 << 20));
	fprintf(stderr, "%s", sbx_snapshot_info_disks(info));
}

/* snapshot ID DIR and hibernate ID DIR. */
static int cmd_snapshot(int argc, char **argv, int hibernate)
{
	sbx_snapshot_info *info = NULL;
	sbx_sandbox *sb;
	int rc;

	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	sb = attach_or_complain(argv[1]);
	if (!sb)
		return 1;
	rc = hibernate ? sbx_sandbox_hibernate(sb, argv[2], &info)
		       : sbx_sandbox_snapshot(sb, argv[2], &info);
	if (rc != SBX_OK) {
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_sandbox_last_error(sb));
		sbx_sandbox_close(sb);
		return 1;
	}
	print_snapshot_info(hibernate ? "hibernated (guest paused for the last time)"
				      : "snapshot written (guest paused)",
			    info);
	sbx_snapshot_info_free(info);
	/* Hibernated, the sandbox has stopped: its directory goes, the snapshot stays. */
	if (hibernate)
		sbx_sandbox_destroy(sb);
	else
		sbx_sandbox_close(sb);
	return 0;
}

/* restore DIR and resume DIR: a detached sandbox, its id on stdout. */
static int cmd_restore(int argc, char **argv, int resume)
{
	sbx_config *cfg = sbx_config_new();
	sbx_sandbox *sb = NULL;
	int rc;

	if (argc != 2) {
		usage(stderr);
		sbx_config_free(cfg);
		return 2;
	}
	if (!cfg || sbx_config_set_detached(cfg, 1) != SBX_OK)
		return 1;
	rc = resume ? sbx_sandbox_resume(cfg, argv[1], &sb) : sbx_sandbox_restore(cfg, argv[1], &sb);
	if (rc != SBX_OK) {
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
		sbx_config_free(cfg);
		return 1;
	}
	print_snapshot_info(resume ? "resumed" : "restored", sbx_sandbox_restore_info(sb));
	printf("%s\n", sbx_sandbox_id(sb));
	sbx_sandbox_close(sb);
	sbx_config_free(cfg);
	return 0;
}

static int cmd_initramfs(int argc, char **argv)
{
	char kernel[4096] = "", *err = NULL;
	const char *out = NULL;
	int c, rc;

	while ((c = getopt(argc, argv, "k:o:")) != -1) {
		if (c == 'k')
			snprintf(kernel, sizeof(kernel), "%s", optarg);
		else if (c == 'o')
			out = optarg;
		else
			return 2;
	}
	if (!out || (!kernel[0] && guest_kernel_find(kernel, sizeof(kernel)) < 0)) {
		fprintf(stderr, "usage: sandbox initramfs [-k KERNEL] -o OUT\n");
		return 2;
	}
	rc = sbx_initramfs_build(guest_kernel_release(kernel), NULL, out, &err);
	if (rc != SBX_OK)
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), err ? err : "");
	sbx_free(err);
	return rc == SBX_OK ? 0 : 1;
}

/* The rootfs builder is a shell script around debootstrap, installed beside the VMM. */
static int cmd_rootfs(int argc, char **argv)
{
	const char *script = getenv("SANDBOX_BUILD_ROOTFS");

	if (argc < 2 || strcmp(argv[1], "build") != 0) {
		fprintf(stderr, "usage: sandbox rootfs build [--packages \"A B\"] -o IMG\n");
		return 2;
	}
	if (!script || !*script)
		script = SBX_BUILD_ROOTFS_PATH;
	argv[1] = (char *)script;
	execv(script, argv + 1);
	fprintf(stderr, "sandbox: %s: %s\n", script, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "doctor") == 0)
		return cmd_doctor();
	if (strcmp(argv[1], "boot") == 0)
		return cmd_boot(argc - 1, argv + 1);
	if (strcmp(argv[1], "initramfs") == 0)
		return cmd_initramfs(argc - 1, argv + 1);
	if (strcmp(argv[1], "create") == 0)
		return cmd_create(argc - 1, argv + 1);
	if (strcmp(argv[1], "exec") == 0)
		return cmd_exec(argc - 1, argv + 1);
	if (strcmp(argv[1], "files") == 0)
		return cmd_files(argc - 1, argv + 1);
	if (strcmp(argv[1], "run-code") == 0)
		return cmd_run_code(argc - 1, argv + 1);
	if (strcmp(argv[1], "context") == 0)
		return cmd_context(argc - 1, argv + 1);
	if (strcmp(argv[1], "destroy") == 0)
		return cmd_destroy(argc - 1, argv + 1);
	if (strcmp(argv[1], "gc") == 0)
		return cmd_gc(argc - 1, argv + 1);
	if (strcmp(argv[1], "net") == 0)
		return cmd_net(argc - 1, argv + 1);
	if (strcmp(argv[1], "rootfs") == 0)
		return cmd_rootfs(argc - 1, argv + 1);
	if (strcmp(argv[1], "isolation") == 0)
		return cmd_isolation(argc - 1, argv + 1);
	if (strcmp(argv[1], "snapshot") == 0 || strcmp(argv[1], "hibernate") == 0)
		return cmd_snapshot(argc - 1, argv + 1, argv[1][0] == 'h');
	if (strcmp(argv[1], "restore") == 0 || strcmp(argv[1], "resume") == 0)
		return cmd_restore(argc - 1, argv + 1, strcmp(argv[1], "resume") == 0);
	if (strcmp(argv[1], "fork") == 0)
		return cmd_fork(argc - 1, argv + 1);
	if (strcmp(argv[1], "template") == 0)
		return cmd_template(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0) {
		printf("%s\n", sbx_version());
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sandbox: unknown command %s\n", argv[1]);
	usage(stderr);
	return 2;
}
