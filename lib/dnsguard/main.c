/* sandbox-dns-guard: the trusted relay between one sandbox's VMM and its upstream DNS server
 * (lib/net/dns_guard.h), and the writer of the addresses its answers admit into the policy's
 * second layer: the set `admitted` of the sandbox's nftables table on the host, which the
 * jailed VMM cannot reach. Spawned by the library in the caller's network namespace, before the
 * VMM, with:
 *   fd 3  its end of a SOCK_SEQPACKET pair whose other end is the VMM's DNS socket;
 *   fd 4  the upstream's UDP socket.
 * It leaves its spawner at once (the library reaps it, so no caller collects a zombie later),
 * keeps only CAP_NET_ADMIN, and exits when the VMM's end closes, however the VMM ended. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cap-ng.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/seccomp.h"
#include "net/dns_guard.h"
#include "net/packet.h"
#include "policy_file.h"

#define VMM_FD 3
#define UPSTREAM_FD 4
/* Lines of its log at most: what a flood from the VMM makes it say must not fill the host's
 * disk. */
#define GUARD_LOG_MAX 100

struct guard {
	struct dns_guard *dns;
	struct nft_ctx *nft;
	const char *table, *policy_path;
	struct stat policy_st; /* of the policy file last read */
	struct sockaddr_in upstream;
};

static void guard_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void guard_log(const char *fmt, ...)
{
	static unsigned lines;
	va_list ap;

	if (lines > GUARD_LOG_MAX)
		return;
	if (lines++ == GUARD_LOG_MAX) {
		fputs("sandbox-dns-guard: further messages left out\n", stderr);
		return;
	}
	fputs("sandbox-dns-guard: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Rereads the policy when its file was replaced. One that cannot be read leaves the old one
 * (the library writes it whole, so a half-written file is never seen). */
static void guard_policy_refresh(struct guard *g)
{
	struct egress_policy *p;
	struct stat st;
	int rc;

	if (stat(g->policy_path, &st) < 0 ||
	    (st.st_ino == g->policy_st.st_ino && st.st_mtim.tv_sec == g->policy_st.st_mtim.tv_sec &&
	     st.st_mtim.tv_nsec == g->policy_st.st_mtim.tv_nsec && st.st_size == g->policy_st.st_size))
		return;
	rc = policy_file_read(g->policy_path, &p);
	if (rc < 0) {
		guard_log("%s: %s", g->policy_path, strerror(-rc));
		return;
	}
	dns_guard_set_policy(g->dns, p);
	g->policy_st = st;
}

/* Admits the addresses in the second layer, each for its TTL (a later answer sets it anew), in
 * one transaction, before the answer reaches the VMM: the guest's first packet finds them. */
static void guard_admit(struct guard *g, const struct dns_a *a, size_t n)
{
	char *cmds = NULL, ip[16];
	size_t len = 0;
	FILE *out = open_memstream(&cmds, &len);

	if (!out || n == 0) {
		if (out)
			fclose(out);
		free(cmds);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		pkt_ipv4_format(a[i].ip, ip);
		fprintf(out,
			"add element ip %1$s admitted { %2$s timeout %3$us }\n"
			"delete element ip %1$s admitted { %2$s }\n"
			"add element ip %1$s admitted { %2$s timeout %3$us }\n",
			g->table, ip, a[i].ttl);
	}
	if (fclose(out) == 0 && nft_run_cmd_from_buffer(g->nft, cmds) != 0)
		guard_log("admitting %zu addresses: %s", n, nft_ctx_get_error_buffer(g->nft));
	free(cmds);
}

static void guard_from_vmm(struct guard *g, uint64_t now_ms, int *done)
{
	uint8_t msg[4096];
	ssize_t n = recv(VMM_FD, msg, sizeof(msg), MSG_DONTWAIT | MSG_TRUNC);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		*done = 1;
		return;
	}
	if (n < 0 || (size_t)n > sizeof(msg))
		return;
	guard_policy_refresh(g);
	if (dns_guard_query(g->dns, msg, (size_t)n, now_ms) &&
	    sendto(UPSTREAM_FD, msg, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&g->upstream,
		   sizeof(g->upstream)) < 0)
		guard_log("upstream: %s", strerror(errno));
}

static void guard_from_upstream(struct guard *g, uint64_t now_ms)
{
	struct dns_a admit[DNS_MAX_A];
	struct sockaddr_in from;
	socklen_t from_len = sizeof(from);
	uint8_t msg[4096];
	size_t n_admit;
	ssize_t n = recvfrom(UPSTREAM_FD, msg, sizeof(msg), MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)&from, &from_len);

	/* Only the upstream server's answers, and no more than a DNS message over UDP holds. */
	if (n < 0 || (size_t)n > sizeof(msg) || from_len != sizeof(from) ||
	    from.sin_addr.s_addr != g->upstream.sin_addr.s_addr ||
	    from.sin_port != g->upstream.sin_port)
		return;
	if (!dns_guard_reply(g->dns, msg, (size_t)n, now_ms, admit, &n_admit))
		return;
	guard_admit(g, admit, n_admit);
	if (send(VMM_FD, msg, (size_t)n, MSG_DONTWAIT) < 0)
		guard_log("to the VMM: %s", strerror(errno));
}

/* Keeps CAP_NET_ADMIN (nftables) and nothing else, for itself and anything it could run. */
static int guard_drop_privileges(void)
{
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
			 CAP_NET_ADMIN) < 0 ||
	    capng_apply(CAPNG_SELECT_ALL) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return 0;
}

/* Its seccomp allowlist (lib/jail/seccomp.c), once libnftables has read its files and opened
 * its netlink socket. */
static int guard_seccomp(void)
{
	struct jail_seccomp_args a = { .self_pid = getpid() };
	struct jail_filter f = { 0 };
	int rc = jail_seccomp_build(JAIL_ROLE_DNS_GUARD, &a, &f);

	if (rc == 0)
		rc = jail_seccomp_install(&f);
	jail_seccomp_free(&f);
	return rc;
}

static int guard_parse_args(int argc, char **argv, struct guard *g, int *admit_private)
{
	const char *upstream = NULL;
	char ip[16];
	unsigned port;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--admit-private") == 0)
			*admit_private = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--table") == 0)
			g->table = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--policy") == 0)
			g->policy_path = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--upstream") == 0)
			upstream = argv[++i];
		else
			return -1;
	}
	if (!g->table || !g->policy_path || !upstream ||
	    strspn(g->table, "sbx_0123456789abcdef") != strlen(g->table) ||
	    sscanf(upstream, "%15[0-9.]:%u", ip, &port) != 2 || port == 0 || port > 65535 ||
	    inet_pton(AF_INET, ip, &g->upstream.sin_addr) != 1)
		return -1;
	g->upstream.sin_family = AF_INET;
	g->upstream.sin_port = htons((uint16_t)port);
	return 0;
}

int main(int argc, char **argv)
{
	struct guard g = { 0 };
	int admit_private = 0, done = 0;
	pid_t pid;

	if (guard_parse_args(argc, argv, &g, &admit_private) < 0) {
		fprintf(stderr, "usage: sandbox-dns-guard --table sbx_HEX --policy FILE --upstream "
				"IP:PORT [--admit-private] (started by libsandbox)\n");
		return 2;
	}
	pid = fork();
	if (pid != 0)
		_exit(pid < 0 ? 1 : 0);
	setsid();
	prctl(PR_SET_NAME, "sbx-dns-guard");
	/* It reads what a hostile guest's VMM sends: never with more than it needs. */
	if (guard_drop_privileges() < 0) {
		guard_log("cannot drop its capabilities: not serving");
		return 1;
	}
	g.nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!g.nft || dns_guard_new(admit_private, &g.dns) < 0) {
		guard_log("out of memory");
		return 1;
	}
	nft_ctx_buffer_output(g.nft);
	nft_ctx_buffer_error(g.nft);
	if (guard_seccomp() < 0) {
		guard_log("cannot install its seccomp filter: not serving");
		return 1;
	}
	guard_policy_refresh(&g);
	while (!done) {
		struct pollfd p[2] = { { VMM_FD, POLLIN, 0 }, { UPSTREAM_FD, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			guard_from_vmm(&g, egress_now_ms(), &done);
		if (p[1].revents & POLLIN)
			guard_from_upstream(&g, egress_now_ms());
	}
	nft_ctx_free(g.nft);
	dns_guard_free(g.dns);
	return 0;
}
