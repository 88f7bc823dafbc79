/* End-to-end: a sandbox's network and its egress policy, on one guest booted once, the policy
 * changed live between the checks.
 *   e2e_net SANDBOX_CLI NET_SERVERS_PY   (paths of the guest from the environment, as e2e_agent)
 *
 * Runs as root in a network namespace of its own (so a direct run on a real host never touches
 * the host's own network), which plays the host: the library makes the sandbox's namespace, veth,
 * tap and NAT from there. The test's servers live in namespaces the test makes itself, and are
 * the only destinations any traffic goes to:
 *
 *   this test's namespace ("host")      uplink namespace              server namespace
 *   sbxt-up0 198.51.100.1/24 ======= up0 198.51.100.2/24
 *   route 203.0.113.0/24 via .2         srv0 203.0.113.1/24 ======= eth0 203.0.113.2,.3,.4,.5,.53
 *                                       (forwards; no route to          TCP 8080, 8081; UDP 9000;
 *                                        the sandbox pool: NAT or       DNS on .53: allowed.test
 *                                        nothing)                       -> .4, denied.test -> .5
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_common.h"
#include "testing.h"

#define BOOT_TIMEOUT_MS (300 * 1000)
#define SERVERS_LIFETIME_S 1800

static sbx_sandbox *sb;
static struct e2e_env env;
static const char *cli, *servers_py;
static char ns_up[64], ns_srv[64], logdir[256], state[256];

/* A note that stands out in the test's output. */
static void loud(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n*** e2e_net: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " ***\n\n");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs a shell command in the guest; returns its exit code (-1 when exec failed), its stdout in
 * *out if wanted. */
static int guest(const char *cmd, char **out)
{
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	int rc, code = -1;

	sbx_exec_opts_set_shell(o, cmd);
	sbx_exec_opts_set_timeout_ms(o, 60000);
	rc = sbx_exec(sb, o, &r);
	if (rc != SBX_OK)
		fprintf(stderr, "exec %s: %s\n", cmd, sbx_sandbox_last_error(sb));
	else
		code = sbx_exec_result_exit_code(r);
	if (out)
		*out = strdup(r ? sbx_exec_result_stdout(r, NULL) : "");
	printf("guest$ %s -> %d %s", cmd, code, r ? sbx_exec_result_stdout(r, NULL) : "\n");
	if (r && code != 0)
		printf("  stderr: %s", sbx_exec_result_stderr(r, NULL));
	sbx_exec_result_free(r);
	sbx_exec_opts_free(o);
	return code;
}

/* The guest's probe script: tcp HOST PORT TIMEOUT | udp HOST PORT DATA TIMEOUT | myip |
 * conn HOST PORT SECONDS (retrying) | resolve NAME | dnsq SERVER NAME TIMEOUT |
 * loop HOST PORT SECONDS | upload HOST PORT MIB TIMEOUT (prints what the sink counted). */
static const char probe_py[] =
    "import socket, struct, sys, time\n"
    "op, a = sys.argv[1], sys.argv[2:]\n"
    "if op == 'tcp':\n"
    "    s = socket.create_connection((a[0], int(a[1])), timeout=float(a[2]))\n"
    "    print(s.recv(200).decode().strip())\n"
    "elif op == 'udp':\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "    s.settimeout(float(a[3]))\n"
    "    s.sendto(a[2].encode(), (a[0], int(a[1])))\n"
    "    print(s.recv(200).decode())\n"
    "elif op == 'myip':\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "    s.connect(('203.0.113.2', 9))\n"
    "    print(s.getsockname()[0])\n"
    "elif op == 'conn':\n"
    "    end = time.time() + float(a[2])\n"
    "    while True:\n"
    "        try:\n"
    "            socket.create_connection((a[0], int(a[1])), timeout=1).close()\n"
    "            break\n"
    "        except OSError:\n"
    "            if time.time() > end:\n"
    "                raise\n"
    "            time.sleep(0.2)\n"
    "    print('connected')\n"
    "elif op == 'resolve':\n"
    "    print(socket.gethostbyname(a[0]))\n"
    "elif op == 'dnsq':\n"
    "    q = struct.pack('>HHHHHH', 0x1234, 0x100, 1, 0, 0, 0)\n"
    "    q += b''.join(bytes([len(l)]) + l.encode() for l in a[1].split('.')) + b'\\0'\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "    s.settimeout(float(a[2]))\n"
    "    s.sendto(q + struct.pack('>HH', 1, 1), (a[0], 53))\n"
    "    print(len(s.recv(600)), 'bytes of answer')\n"
    "elif op == 'loop':\n"
    "    end = time.time() + float(a[2])\n"
    "    while time.time() < end:\n"
    "        try:\n"
    "            socket.create_connection((a[0], int(a[1])), timeout=0.2).close()\n"
    "        except OSError:\n"
    "            pass\n"
    "        time.sleep(0.1)\n"
    "elif op == 'upload':\n"
    "    s = socket.create_connection((a[0], int(a[1])), timeout=float(a[3]))\n"
    "    for _ in range(int(a[2]) * 16):\n"
    "        s.sendall(b'u' * 65536)\n"
    "    s.shutdown(socket.SHUT_WR)\n"
    "    print(s.recv(100).decode().strip())\n";

static int probe(const char *args, char **out)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "python3 /tmp/probe.py %s", args);
	return guest(cmd, out);
}

static int set_policy(const char *text)
{
	sbx_net_policy *p = NULL;
	int rc = sbx_net_policy_parse(text, &p, NULL);

	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK)
		rc = sbx_sandbox_set_net_policy(sb, p);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "set %s: %s\n", text, sbx_sandbox_last_error(sb));
	sbx_net_policy_free(p);
	printf("policy now %s\n", text);
	return rc;
}

/* Whether the denial log has a record of proto to dst (port, or any port if 0) for reason. */
static int log_has(const char *proto, const char *dst, int port, const char *reason)
{
	sbx_net_log *l = NULL;
	int found = 0;

	if (sbx_sandbox_net_log(sb, 0, &l) != SBX_OK) {
		fprintf(stderr, "net log: %s\n", sbx_sandbox_last_error(sb));
		return 0;
	}
	for (size_t i = 0; i < sbx_net_log_count(l); i++)
		found |= strcmp(sbx_net_log_protocol(l, i), proto) == 0 &&
			 strcmp(sbx_net_log_destination(l, i), dst) == 0 &&
			 (!port || sbx_net_log_port(l, i) == port) &&
			 (!reason || strcmp(sbx_net_log_reason(l, i), reason) == 0) &&
			 sbx_net_log_time(l, i) > now() - 3600 &&
			 sbx_net_log_time(l, i) < now() + 1;
	if (!found)
		fprintf(stderr, "net log has no %s %s:%d (%s) among %zu records\n", proto, dst,
			port, reason ? reason : "any reason", sbx_net_log_count(l));
	sbx_net_log_free(l);
	return found;
}

static unsigned long long log_total(void)
{
	sbx_net_log *l = NULL;
	unsigned long long n = 0;

	if (sbx_sandbox_net_log(sb, 0, &l) == SBX_OK)
		n = sbx_net_log_total(l);
	sbx_net_log_free(l);
	return n;
}

/* ---- the test's own network ---- */

static int modules(void)
{
	static const char *const mods[] = {"tun",	    "veth",	"nf_tables",
					   "nft_chain_nat", "nft_masq", "nft_ct"};
	int ok = 1;

	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		if (e2e_sh("modprobe -q %s 2>/dev/null", mods[i]) != 0 &&
		    e2e_sh("grep -qw ^%s /proc/modules", mods[i]) != 0) {
			loud("IMPOSSIBLE HERE: kernel module %s cannot be loaded (modprobe %s "
			     "failed); "
			     "sandbox networking needs it",
			     mods[i], mods[i]);
			ok = 0;
		}
	}
	return ok;
}

static int test_net_up(void)
{
	int pid = getpid();

	snprintf(ns_up, sizeof(ns_up), "sbxt-up-%d", pid);
	snprintf(ns_srv, sizeof(ns_srv), "sbxt-srv-%d", pid);
	snprintf(logdir, sizeof(logdir), "/tmp/sbxt-net-%d", pid);
	mkdir(logdir, 0755);
	return e2e_sh("set -e; ip link set lo up;"
		  "ip netns add %1$s; ip netns add %2$s;"
		  "ip link add sbxt-up0 type veth peer name up0 netns %1$s;"
		  "ip addr add 198.51.100.1/24 dev sbxt-up0; ip link set sbxt-up0 up;"
		  "ip route add 203.0.113.0/24 via 198.51.100.2;"
		  "ip -n %1$s link set lo up; ip -n %1$s addr add 198.51.100.2/24 dev up0;"
		  "ip -n %1$s link set up0 up;"
		  "ip -n %1$s link add srv0 type veth peer name eth0 netns %2$s;"
		  "ip -n %1$s addr add 203.0.113.1/24 dev srv0; ip -n %1$s link set srv0 up;"
		  "ip netns exec %1$s sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward';"
		  "ip -n %2$s link set lo up; ip -n %2$s link set eth0 up;"
		  "for a in 2 3 4 5 53; do ip -n %2$s addr add 203.0.113.$a/24 dev eth0; done;"
		  "ip -n %2$s route add default via 203.0.113.1;"
		  "ip netns exec %2$s python3 %3$s %4$s %5$d 203.0.113.53 8080,8081 "
		  "allowed.test=203.0.113.4 denied.test=203.0.113.5 >%4$s/servers.out 2>&1 &"
		  "echo $! >%4$s/servers.pid;"
		  "for i in $(seq 100); do [ -e %4$s/ready ] && exit 0; sleep 0.1; done; exit 1",
		  ns_up, ns_srv, servers_py, logdir, SERVERS_LIFETIME_S);
}

static void test_net_down(void)
{
	/* ip netns exec execs the servers: the pid is theirs. */
	e2e_sh("kill $(cat %s/servers.pid) 2>/dev/null; ip netns del %s 2>/dev/null; "
	   "ip netns del %s 2>/dev/null",
	   logdir, ns_srv, ns_up);
}

/* Lines of the servers' log after time t that contain needle. */
static int events_after(double t, const char *needle, double *first, double *last)
{
	char path[300], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/events.log", logdir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		double when = atof(line);
		if (when <= t || !strstr(line, needle))
			continue;
		if (!n++ && first)
			*first = when;
		if (last)
			*last = when;
	}
	if (f)
		fclose(f);
	return n;
}

/* ---- the checks ---- */

static void test_none(void)
{
	char *out = NULL;
	double t0 = now();

	printf("== policy none\n");
	guest("cat /proc/net/route; ls /sys/class/net", &out);
	CHECK(e2e_contains(out, "eth0"));
	free(out);
	CHECK(probe("tcp 203.0.113.2 8080 2", NULL) != 0);
	CHECK(probe("udp 203.0.113.2 9000 probe-none 2", NULL) != 0);
	CHECK_EQ(events_after(t0, "probe-none", NULL, NULL), 0);
	CHECK_EQ(events_after(t0, "tcp ", NULL, NULL), 0);
	CHECK(log_has("tcp", "203.0.113.2", 8080, "policy none"));
	CHECK(log_has("udp", "203.0.113.2", 9000, "policy none"));
	/* Names do not resolve: not even our DNS server is reachable. */
	CHECK(probe("resolve allowed.test", NULL) != 0);
}

static void test_allow_address(void)
{
	char *out = NULL;
	double t0 = now();

	printf("== policy allow:203.0.113.2:8080\n");
	set_policy("allow:203.0.113.2:8080");
	CHECK_EQ(probe("tcp 203.0.113.2 8080 5", &out), 0);
	/* The server saw the host's uplink address: the guest's went through NAT. */
	CHECK(e2e_contains(out, "hello 203.0.113.2:8080 from 198.51.100.1"));
	free(out);
	CHECK(probe("tcp 203.0.113.2 8081 2", NULL) != 0);
	CHECK(probe("tcp 203.0.113.3 8080 2", NULL) != 0);
	CHECK(probe("udp 203.0.113.2 9000 probe-allow 2", NULL) != 0);
	CHECK_EQ(events_after(t0, "tcp 203.0.113.2:8080", NULL, NULL), 1);
	CHECK_EQ(events_after(t0, "8081", NULL, NULL), 0);
	CHECK_EQ(events_after(t0, "tcp 203.0.113.3", NULL, NULL), 0);
	CHECK(log_has("tcp", "203.0.113.2", 8081, "destination not allowed"));
	CHECK(log_has("tcp", "203.0.113.3", 8080, "destination not allowed"));
	CHECK(log_has("udp", "203.0.113.2", 9000, "destination not allowed"));
	/* The CLI edits the list in force. */
	out = e2e_sh_out("%s net allow %s 203.0.113.3:8080 Example.org && %s net show %s", cli,
		     sbx_sandbox_id(sb), cli, sbx_sandbox_id(sb));
	CHECK(strcmp(out, "allow:203.0.113.2:8080,203.0.113.3:8080,example.org\n"
			  "allow:203.0.113.2:8080,203.0.113.3:8080,example.org\n") == 0);
	free(out);
	out = e2e_sh_out("%s net deny %s 203.0.113.3:8080 example.org", cli, sbx_sandbox_id(sb));
	CHECK(strcmp(out, "allow:203.0.113.2:8080\n") == 0);
	free(out);
	CHECK(e2e_sh("%s net allow %s 1.2.3.4:99999 2>/dev/null", cli, sbx_sandbox_id(sb)) == 2);
}

/* A guest loop connects three times a second while the policy flips: the server's log (this
 * host's clock, like the test's) tells when connections started and stopped arriving, counted
 * from the moment the change was asked for. */
static void test_live_change(void)
{
	double t_allow, t_none, t_none_done, first = 0, last = 0, t_start;
	int pid = 0, n;

	printf("== live changes\n");
	set_policy("none");
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_opts_set_shell(o, "python3 /tmp/probe.py loop 203.0.113.2 8080 40");
	CHECK_EQ(sbx_exec_background(sb, o, NULL, NULL, &pid), SBX_OK);
	sbx_exec_opts_free(o);
	t_start = now();
	sleep(4); /* python starts, and its first tries are denied */
	CHECK_EQ(events_after(t_start, "tcp 203.0.113.2:8080", NULL, NULL), 0);
	t_allow = now();
	set_policy("allow:203.0.113.2:8080");
	sleep(4);
	t_none = now();
	set_policy("none");
	t_none_done = now();
	sleep(4);
	n = events_after(t_allow, "tcp 203.0.113.2:8080", &first, &last);
	printf("live change: %d connections; the first %.3f s after allow was asked for, the last "
	       "%.3f s after none was (which took %.3f s)\n",
	       n, first - t_allow, last - t_none, t_none_done - t_none);
	CHECK(n >= 3);
	CHECK(first > t_allow && first - t_allow < 1.0);
	/* A connection let through just before the change may be logged by the server a little
	 * after the call returned; none may come later than that. */
	CHECK(last < t_none_done + 0.5);
	CHECK(t_none_done - t_none < 1.0);
	CHECK_EQ(events_after(t_none_done + 0.5, "tcp 203.0.113.2:8080", NULL, NULL), 0);
	if (pid)
		sbx_process_kill(sb, pid, SIGKILL);
}

static void test_domains(void)
{
	char *out = NULL;
	double t0 = now();

	printf("== policy allow:allowed.test\n");
	CHECK_EQ(e2e_sh("%s net set %s allow:allowed.test", cli, sbx_sandbox_id(sb)), 0);
	CHECK_EQ(probe("resolve allowed.test", &out), 0);
	CHECK(e2e_contains(out, "203.0.113.4"));
	free(out);
	CHECK_EQ(probe("tcp allowed.test 8080 5", &out), 0);
	CHECK(e2e_contains(out, "hello 203.0.113.4:8080"));
	free(out);
	CHECK(probe("resolve denied.test", NULL) != 0);
	CHECK(probe("tcp 203.0.113.5 8080 2", NULL) != 0);
	/* Straight to the test's DNS server, around ours: denied. */
	CHECK(probe("dnsq 203.0.113.53 denied.test 2", NULL) != 0);
	CHECK_EQ(events_after(t0, "tcp 203.0.113.5", NULL, NULL), 0);
	CHECK(events_after(t0, "dns allowed.test 198.51.100.1", NULL, NULL) >= 1);
	CHECK_EQ(events_after(t0, "dns denied.test", NULL, NULL), 0);
	CHECK(log_has("dns", "denied.test", 0, "DNS name not allowed"));
	CHECK(log_has("tcp", "203.0.113.5", 8080, "destination not allowed"));
	CHECK(log_has("udp", "203.0.113.53", 53, "DNS to another server"));
}

static void test_all(void)
{
	char *out = NULL, *text = NULL;
	sbx_net_policy *p = NULL;

	printf("== policy all\n");
	set_policy("all");
	CHECK_EQ(sbx_sandbox_get_net_policy(sb, &p), SBX_OK);
	CHECK_EQ(sbx_net_policy_mode(p), SBX_NET_ALL);
	sbx_net_policy_free(p);
	CHECK_EQ(probe("tcp 203.0.113.3 8081 5", &out), 0);
	CHECK(e2e_contains(out, "hello 203.0.113.3:8081 from 198.51.100.1"));
	free(out);
	CHECK_EQ(probe("udp 203.0.113.2 9000 probe-all 5", &out), 0);
	CHECK(e2e_contains(out, "pong"));
	free(out);
	CHECK_EQ(probe("resolve denied.test", &out), 0);
	CHECK(e2e_contains(out, "203.0.113.5"));
	free(out);
	/* A bulk upload, thousands of frames each way: once, the backend went unwatched mid-stream
	 * and the ACKs stopped (tests/unit/test_virtio_net.c has the cause). */
	CHECK_EQ(probe("upload 203.0.113.2 9001 24 60", &out), 0);
	CHECK(e2e_contains(out, "25165824"));
	free(out);
	/* Never the host itself, nor through it, whatever the policy: a listener of this namespace
	 * on its uplink address stays out of reach. */
	e2e_sh("timeout 20 python3 -c 'import socket; s = socket.socket(); s.bind((\"0.0.0.0\", "
	   "8099)); "
	   "s.listen(); c, a = s.accept(); print(\"host reached from\", a)' &");
	sleep(1);
	CHECK(probe("tcp 198.51.100.1 8099 2", NULL) != 0);
	/* Nor does anything reach a server in the guest: the sandbox's namespace lets in only what
	 * answers the guest's own connections. */
	{
		char *ip = NULL;
		int pid = 0;
		sbx_exec_opts *o = sbx_exec_opts_new();

		probe("myip", &ip);
		ip[strcspn(ip, "\n")] = 0;
		sbx_exec_opts_set_shell(o, "python3 -m http.server 8000");
		CHECK_EQ(sbx_exec_background(sb, o, NULL, NULL, &pid), SBX_OK);
		sbx_exec_opts_free(o);
		CHECK_EQ(probe("conn 127.0.0.1 8000 30", NULL), 0); /* it listens */
		CHECK(e2e_sh("python3 -c 'import socket; socket.create_connection((\"%s\", 8000), 3)' "
			 "2>/dev/null",
			 ip) != 0);
		if (pid)
			sbx_process_kill(sb, pid, SIGKILL);
		free(ip);
	}
	/* The CLI: show and log. */
	out = e2e_sh_out("%s net show %s", cli, sbx_sandbox_id(sb));
	CHECK(strcmp(out, "all\n") == 0);
	free(out);
	out = e2e_sh_out("%s net log %s", cli, sbx_sandbox_id(sb));
	printf("sandbox net log:\n%s", out);
	CHECK(e2e_contains(out, "tcp   203.0.113.2:8081"));
	CHECK(e2e_contains(out, "dns   denied.test"));
	CHECK(e2e_contains(out, "denied in all"));
	free(out);
	out = e2e_sh_out("%s net log %s --json", cli, sbx_sandbox_id(sb));
	CHECK(e2e_contains(out, "\"destination\": \"203.0.113.53\", \"port\": 53"));
	free(out);
	free(text);
}

#ifdef SBX_TEST_HOOKS
/* The second layer alone: a sandbox whose VMM lets everything through and whose DNS server
 * forwards any name (a test-only hook), so only the host's rules of its policy and the DNS guard
 * stand between the guest and the servers. */
static void test_second_layer(void)
{
	sbx_config *cfg = e2e_config(&env, 1, 512);
	sbx_net_policy *none = sbx_net_policy_new(SBX_NET_NONE);
	sbx_sandbox *first = sb, *b = NULL;
	char *out = NULL;
	double t0 = now(), t_both;
	int rc;

	printf("== the second layer alone (the VMM's filter opened by a test hook)\n");
	CHECK_EQ(sbx_config_set_net_policy(cfg, none), SBX_OK);
	CHECK_EQ(sbx_config_set_net_dns(cfg, "203.0.113.53"), SBX_OK);
	setenv("SANDBOX_VMM_TEST_TRIGGER", "egress-open", 1);
	rc = sbx_sandbox_create(cfg, &b);
	unsetenv("SANDBOX_VMM_TEST_TRIGGER");
	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(b, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK &&
	    sbx_file_write(b, "/tmp/probe.py", probe_py, sizeof(probe_py) - 1, 0644) == SBX_OK) {
		sb = b;
		CHECK(probe("tcp 203.0.113.2 8080 3", NULL) != 0);
		set_policy("allow:203.0.113.2:8080");
		CHECK_EQ(probe("tcp 203.0.113.2 8080 5", &out), 0);
		CHECK(e2e_contains(out, "hello 203.0.113.2:8080"));
		free(out);
		CHECK(probe("tcp 203.0.113.2 8081 3", NULL) != 0);
		CHECK(probe("tcp 203.0.113.3 8080 3", NULL) != 0);
		set_policy("all");
		CHECK_EQ(probe("tcp 203.0.113.3 8081 5", NULL), 0);
		set_policy("none");
		CHECK(probe("tcp 203.0.113.3 8081 3", NULL) != 0);
		/* Names: the guard forwards only allowed ones, and only what their answers hold gets
		 * through the host's rules, from the moment they were answered. */
		set_policy("allow:allowed.test");
		CHECK(probe("tcp 203.0.113.4 8081 3", NULL) != 0);
		CHECK_EQ(probe("resolve allowed.test", &out), 0);
		CHECK(out && e2e_contains(out, "203.0.113.4"));
		free(out);
		CHECK_EQ(probe("tcp allowed.test 8081 5", &out), 0);
		CHECK(out && e2e_contains(out, "hello 203.0.113.4:8081"));
		free(out);
		CHECK(probe("resolve denied.test", NULL) != 0);
		CHECK(probe("tcp 203.0.113.5 8081 3", NULL) != 0);
		CHECK(probe("dnsq 203.0.113.53 denied.test 3", NULL) != 0);
		out = e2e_sh_out("cat %s/%s/dns-guard.log; nft list set ip $(sed -n 2p %s/%s/net) "
				 "admitted", state, sbx_sandbox_id(b), state, sbx_sandbox_id(b));
		printf("the DNS guard's log and set:\n%s", out);
		CHECK(e2e_contains(out, "203.0.113.4 timeout"));
		CHECK(!e2e_contains(out, "203.0.113.5"));
		free(out);
		/* Taking one name off the list closes its address only: the other's stays open
		 * (reached by address, not asked for again). */
		t_both = now();
		set_policy("allow:allowed.test,denied.test");
		CHECK_EQ(probe("resolve denied.test", NULL), 0);
		CHECK_EQ(probe("tcp 203.0.113.5 8081 5", NULL), 0);
		set_policy("allow:allowed.test");
		CHECK_EQ(probe("tcp 203.0.113.4 8081 5", NULL), 0);
		CHECK(probe("tcp 203.0.113.5 8081 3", NULL) != 0);
		/* Without names in the list nothing admitted stays open. */
		set_policy("allow:203.0.113.2:8080");
		CHECK(probe("tcp 203.0.113.4 8081 3", NULL) != 0);
		/* The servers saw only the connections made under all and to admitted addresses
		 * (.4 twice, .5 once), and the VMM denied nothing: the host's rules and the guard
		 * stopped the rest. */
		CHECK_EQ(events_after(t0, "8081", NULL, NULL), 4);
		CHECK_EQ(events_after(t0, "tcp 203.0.113.3", NULL, NULL), 1);
		CHECK_EQ(events_after(t0, "tcp 203.0.113.5", NULL, NULL), 1);
		/* denied.test reached the test's DNS server only once it was allowed. */
		CHECK_EQ(events_after(t0, "denied.test", NULL, NULL) -
			     events_after(t_both, "denied.test", NULL, NULL),
			 0);
		CHECK(events_after(t_both, "denied.test", NULL, NULL) >= 1);
		CHECK_EQ(log_total(), 0);
		sb = first;
	}
	if (testing_failed && b) {
		out = e2e_sh_out("cat %s/%s/dns-guard.log; dmesg | grep -i seccomp | tail -5", state,
				 sbx_sandbox_id(b));
		fprintf(stderr, "----- dns-guard.log, seccomp in dmesg -----\n%s", out);
		free(out);
	}
	sbx_sandbox_destroy(b);
	sbx_net_policy_free(none);
	sbx_config_free(cfg);
}
#endif

/* A fork of a sandbox with a network: each child gets a network of its own (address, MAC,
 * namespace, DNS guard) under the parent's policy, in both layers, and the parent answers on. */
static void test_fork(void)
{
	sbx_sandbox *c[2] = { NULL, NULL }, *parent = sb;
	char *pip = NULL, *pmac = NULL, *ip[2] = { NULL, NULL }, *mac[2] = { NULL, NULL }, *out;
	double t0;
	int rc;

	printf("== fork with a network\n");
	set_policy("allow:203.0.113.2:8080,allowed.test");
	CHECK_EQ(probe("myip", &pip), 0);
	CHECK_EQ(guest("cat /sys/class/net/eth0/address", &pmac), 0);
	t0 = now();
	rc = sbx_sandbox_fork(sb, NULL, 2, c);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "fork: %s\n", sbx_sandbox_last_error(sb));
	else
		printf("forked 2 children, each with a network, in %.2f s\n", now() - t0);
	for (int i = 0; rc == SBX_OK && i < 2; i++) {
		sb = c[i];
		CHECK_EQ(probe("myip", &ip[i]), 0);
		CHECK_EQ(guest("cat /sys/class/net/eth0/address", &mac[i]), 0);
		CHECK(ip[i] && pip && strcmp(ip[i], pip) != 0);
		CHECK(mac[i] && pmac && strcmp(mac[i], pmac) != 0);
		CHECK_EQ(probe("tcp 203.0.113.2 8080 5", &out), 0);
		CHECK(out && e2e_contains(out, "hello 203.0.113.2:8080"));
		free(out);
		CHECK(probe("tcp 203.0.113.3 8080 2", NULL) != 0);
		CHECK(log_has("tcp", "203.0.113.3", 8080, "destination not allowed"));
		CHECK_EQ(probe("resolve allowed.test", &out), 0);
		CHECK(out && e2e_contains(out, "203.0.113.4"));
		free(out);
		CHECK_EQ(probe("tcp allowed.test 8081 5", NULL), 0);
		out = e2e_sh_out("%s net show %s", cli, sbx_sandbox_id(c[i]));
		CHECK(out && strcmp(out, "allow:203.0.113.2:8080,allowed.test\n") == 0);
		free(out);
	}
	CHECK(rc != SBX_OK || (ip[0] && ip[1] && strcmp(ip[0], ip[1]) != 0));
	CHECK(rc != SBX_OK || (mac[0] && mac[1] && strcmp(mac[0], mac[1]) != 0));
	sb = parent;
	CHECK_EQ(probe("tcp 203.0.113.2 8080 5", NULL), 0);
	for (int i = 0; i < 2; i++) {
		sbx_sandbox_destroy(c[i]);
		free(ip[i]);
		free(mac[i]);
	}
	free(pip);
	free(pmac);
}

/* Nothing of the sandbox's network is left once it is destroyed, its DNS guard included. */
static void test_destroyed(void)
{
	char *out;
	int left = 1;

	for (int i = 0; i < 50 && left; i++) {
		out = e2e_sh_out("ip -br link | grep -c ^sbx-; nft list tables | grep -c sbx_; "
			     "ls %s/net-leases | wc -l; pgrep -c -x sbx-dns-guard",
			     state);
		left = strcmp(out, "0\n0\n0\n0\n") != 0;
		if (left && i == 49)
			fprintf(stderr, "left after destroy (links, tables, leases, guards):\n%s",
				out);
		free(out);
		usleep(100000);
	}
	CHECK(!left);
}

int main(int argc, char **argv)
{
	sbx_config *cfg;
	sbx_net_policy *none = sbx_net_policy_new(SBX_NET_NONE);
	double t0;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: e2e_net SANDBOX_CLI NET_SERVERS_PY\n");
		return 2;
	}
	cli = argv[1];
	servers_py = argv[2];
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0); /* in order with stderr and the children's output */
	e2e_env_load(&env);
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0) {
		loud("needs root and a network namespace of its own (%s)", strerror(errno));
		return 1;
	}
	if (!modules())
		return 1;
	snprintf(state, sizeof(state), "/tmp/sbx-e2e-net-%d", (int)getpid());
	setenv("SANDBOX_STATE_DIR", state, 1); /* the CLI's too */
	if (test_net_up() != 0) {
		loud("could not build the test's network namespaces and servers");
		test_net_down();
		return 1;
	}
	cfg = e2e_config(&env, 1, 512);
	CHECK_EQ(sbx_config_set_net_policy(cfg, none), SBX_OK);
	CHECK_EQ(sbx_config_set_net_dns(cfg, "203.0.113.53"), SBX_OK);
	t0 = now();
	rc = sbx_sandbox_create(cfg, &sb);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "create: %s\n", sbx_config_last_error(cfg));
		test_net_down();
		return TEST_SUMMARY();
	}
	printf("create with a network returned after %.3f s\n", now() - t0);
	rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	printf("agent ready after %.2f s\n", now() - t0);
	if (rc == SBX_OK &&
	    sbx_file_write(sb, "/tmp/probe.py", probe_py, sizeof(probe_py) - 1, 0644) == SBX_OK) {
		test_none();
		test_allow_address();
		test_live_change();
		test_domains();
		test_all();
		test_fork();
		printf("denials in all: %llu\n", log_total());
#ifdef SBX_TEST_HOOKS
		test_second_layer();
#else
		loud("SBX_TEST_HOOKS is off: the second layer is not tested alone");
#endif
	} else {
		fprintf(stderr, "not ready: %s\n", sbx_sandbox_last_error(sb));
	}
	if (testing_failed) {
		char *vmm = e2e_sh_out("cat %s/%s/vmm.log", state, sbx_sandbox_id(sb));
		fprintf(stderr, "----- vmm.log -----\n%s", vmm);
		free(vmm);
		e2e_dump_console(sb);
	}
	sbx_sandbox_destroy(sb);
	test_destroyed();
	sbx_config_free(cfg);
	sbx_net_policy_free(none);
	test_net_down();
	return TEST_SUMMARY();
}
