/* sandbox-dns-guard: the trusted relay between one sandbox's VMM and its upstream DNS server
 * (lib/net/dns_guard.h), and the writer of the addresses its answers admit into the policy's
 * second layer: the set `admitted` of the sandbox's nftables table on the host, which the
 * jailed VMM cannot reach. Spawned by the library in the caller's network namespace, before the
 * VMM, with:
 *   fd 3  its end of a SOCK_SEQPACKET pair whose other end is the VMM's DNS socket;
 *   fd 4  the upstream's UDP socket;
 *   fd 5  a listening Unix stream socket (<dir>/guard.sock) on which the library sends each
 *         policy (policy_text.h) and gets "ok" back once it is in force.
 * It leaves its spawner at once (the library reaps it, so no caller collects a zombie later),
 * becomes the jail's unprivileged uid keeping CAP_NET_ADMIN alone, installs its seccomp
 * allowlist, opens no file, and exits when the VMM's end closes, however the VMM ended. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jail/seccomp.h"
#include "net/dns_guard.h"
#include "net/packet.h"
#include "policy_text.h"

#define VMM_FD 3
#define UPSTREAM_FD 4
#define CONTROL_FD 5
/* Lines of its log at most: what a flood from the VMM makes it say must not fill the host's
 * disk. */
#define GUARD_LOG_MAX 100
/* A policy of 1024 rules and 1024 names of 253 bytes fits. */
#define GUARD_POLICY_MAX (512u << 10)
#define GUARD_CONTROL_TIMEOUT_S 2

struct guard {
	struct dns_guard *dns;
	struct nft_ctx *nft;
	const char *table;
	struct sockaddr_in upstream;
	uid_t owner; /* who may send policies: the uid that started it */
	char *policy_buf; /* GUARD_POLICY_MAX + 1 bytes */
	struct dns_a kept[DNS_GUARD_ADMITTED_MAX];
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

/* The policy on connection fd, read to its end of file within GUARD_CONTROL_TIMEOUT_S in all.
 * 0, or -EINVAL (too long, a NUL, cut short, too slow). */
static int guard_read_policy(struct guard *g, int fd, size_t *len)
{
	int64_t deadline = (int64_t)egress_now_ms() + GUARD_CONTROL_TIMEOUT_S * 1000;
	ssize_t n;

	*len = 0;
	for (;;) {
		int64_t left = deadline - (int64_t)egress_now_ms();
		struct pollfd p = { fd, POLLIN, 0 };

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -EINVAL;
		n = recv(fd, g->policy_buf + *len, GUARD_POLICY_MAX - *len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -EINVAL;
		if (n > 0)
			*len += (size_t)n;
		if (*len == GUARD_POLICY_MAX)
			return -EINVAL;
	}
	g->policy_buf[*len] = 0;
	return memchr(g->policy_buf, 0, *len) ? -EINVAL : 0;
}

/* Takes back, before the library hears the policy is in force, what a name no longer allowed
 * admitted: both sets are emptied, and what names still allowed admitted goes back in (with its
 * admission's time left, and a fresh idle grace, so their connections go on). Only flushes and
 * adds: one transaction. 0, or -EIO with nftables' complaint in why. */
static int guard_revoke(struct guard *g, enum dns_guard_change change, size_t n_kept, char *why,
			size_t why_len)
{
	char *cmds = NULL, ip[16];
	size_t len = 0;
	FILE *out;
	int rc = 0;

	if (change == DNS_GUARD_KEEP)
		return 0;
	out = open_memstream(&cmds, &len);
	if (!out)
		return -EIO;
	fprintf(out, "flush set ip %1$s admitted\nflush set ip %1$s recent\n", g->table);
	for (size_t i = 0; change == DNS_GUARD_REBUILD && i < n_kept; i++) {
		pkt_ipv4_format(g->kept[i].ip, ip);
		if (g->kept[i].ttl)
			fprintf(out, "add element ip %s admitted { %s timeout %us }\n", g->table, ip,
				g->kept[i].ttl);
		fprintf(out, "add element ip %s recent { %s }\n", g->table, ip);
	}
	if (fclose(out) != 0 || nft_run_cmd_from_buffer(g->nft, cmds) != 0) {
		snprintf(why, why_len, "taking back addresses: %s",
			 nft_ctx_get_error_buffer(g->nft));
		why[strcspn(why, "\n")] = 0;
		guard_log("%s", why);
		rc = -EIO;
	}
	free(cmds);
	return rc;
}

/* One policy from the library (and only from a process of the uid that started the guard:
 * the socket is 0600, and this checks again), parsed, installed, answered. A bad one changes
 * nothing and says why. */
static void guard_from_control(struct guard *g)
{
	struct egress_policy *p = NULL;
	struct ucred peer;
	socklen_t peer_len = sizeof(peer);
	size_t len, n_kept;
	char reply[512], why[400] = "";
	int fd = accept4(CONTROL_FD, NULL, NULL, SOCK_CLOEXEC), rc;

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) < 0 ||
	    peer.uid != g->owner) {
		guard_log("a policy from uid %u refused", (unsigned)peer.uid);
		close(fd);
		return;
	}
	rc = guard_read_policy(g, fd, &len);
	if (rc == 0)
		rc = policy_text_parse(g->policy_buf, &p);
	if (rc == 0) {
		enum dns_guard_change change =
		    dns_guard_set_policy(g->dns, p, egress_now_ms(), g->kept, &n_kept);

		rc = guard_revoke(g, change, n_kept, why, sizeof(why));
	}
	snprintf(reply, sizeof(reply), rc == 0 ? "ok\n" : "error: %s\n",
		 why[0] ? why : strerror(-rc));
	if (send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		guard_log("answering the library: %s", strerror(errno));
	close(fd);
}

/* Admits the addresses in the second layer, each for its TTL (a later answer sets it anew), in
 * one transaction, before the answer reaches the VMM: the guest's first packet finds them. */
static void guard_admit(struct guard *g, const struct dns_a *a, size_t n)
{
	char *cmds = NULL, ip[16];
	size_t len = 0;
	FILE *out;

	if (n == 0)
		return;
	out = open_memstream(&cmds, &len);
	if (!out)
		return;
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
	uint8_t msg[4096], out[DNS_GUARD_QUERY_MAX];
	ssize_t n = recv(VMM_FD, msg, sizeof(msg), MSG_DONTWAIT | MSG_TRUNC);
	size_t out_len;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		*done = 1;
		return;
	}
	if (n < 0 || (size_t)n > sizeof(msg))
		return;
	if (dns_guard_query(g->dns, msg, (size_t)n, now_ms, out, sizeof(out), &out_len) &&
	    sendto(UPSTREAM_FD, out, out_len, MSG_DONTWAIT, (struct sockaddr *)&g->upstream,
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
	if (send(VMM_FD, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		guard_log("to the VMM: %s", strerror(errno));
}

/* The jail's uid and gid, CAP_NET_ADMIN (nftables) and nothing else, no capability to gain by
 * exec: what it can do if the VMM's input ever took it over is write this host's nf_tables. */
static int guard_drop_privileges(uid_t uid, gid_t gid)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN) < 0 ||
	    capng_change_id((int)uid, (int)gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
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

static int guard_parse_args(int argc, char **argv, struct guard *g, int *admit_private,
			    unsigned *uid, unsigned *gid)
{
	const char *upstream = NULL;
	char ip[16], end;
	unsigned port;
	int ids = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--admit-private") == 0)
			*admit_private = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--table") == 0)
			g->table = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--upstream") == 0)
			upstream = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--uid") == 0)
			ids += sscanf(argv[++i], "%u%c", uid, &end) == 1;
		else if (i + 1 < argc && strcmp(argv[i], "--gid") == 0)
			ids += sscanf(argv[++i], "%u%c", gid, &end) == 1;
		else
			return -1;
	}
	if (!g->table || !upstream || ids != 2 || *uid == 0 ||
	    strspn(g->table, "sbx_0123456789abcdef") != strlen(g->table) ||
	    sscanf(upstream, "%15[0-9.]:%u%c", ip, &port, &end) != 2 || port == 0 ||
	    port > 65535 || inet_pton(AF_INET, ip, &g->upstream.sin_addr) != 1)
		return -1;
	g->upstream.sin_family = AF_INET;
	g->upstream.sin_port = htons((uint16_t)port);
	return 0;
}

static int guard_start(struct guard *g, int admit_private, unsigned uid, unsigned gid)
{
	prctl(PR_SET_NAME, "sbx-dns-guard");
	g->owner = getuid();
	/* A client that hung up must not end it; nor may one that connects and says nothing. */
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(CONTROL_FD, F_SETFL, O_NONBLOCK) < 0) {
		guard_log("control socket: %s", strerror(errno));
		return -1;
	}
	g->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	g->policy_buf = malloc(GUARD_POLICY_MAX + 1);
	if (!g->nft || !g->policy_buf || dns_guard_new(admit_private, &g->dns) < 0) {
		guard_log("out of memory");
		return -1;
	}
	nft_ctx_buffer_output(g->nft);
	nft_ctx_buffer_error(g->nft);
	/* It reads what a hostile guest's VMM sends: never with more than it needs. */
	if (guard_drop_privileges(uid, gid) < 0) {
		guard_log("cannot become uid %u keeping CAP_NET_ADMIN alone: not serving", uid);
		return -1;
	}
	if (guard_seccomp() < 0) {
		guard_log("cannot install its seccomp filter: not serving");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct guard g = { 0 };
	struct dns_guard_stats st;
	unsigned uid = 0, gid = 0;
	int admit_private = 0, done = 0;
	pid_t pid;

	if (guard_parse_args(argc, argv, &g, &admit_private, &uid, &gid) < 0) {
		fprintf(stderr, "usage: sandbox-dns-guard --table sbx_HEX --upstream IP:PORT "
				"--uid N --gid N [--admit-private] (started by libsandbox)\n");
		return 2;
	}
	pid = fork();
	if (pid != 0)
		_exit(pid < 0 ? 1 : 0);
	setsid();
	/* Until the library's first policy arrives: "none", no name goes out. */
	if (guard_start(&g, admit_private, uid, gid) < 0)
		return 1;
	while (!done) {
		struct pollfd p[3] = { { VMM_FD, POLLIN, 0 },
				       { UPSTREAM_FD, POLLIN, 0 },
				       { CONTROL_FD, POLLIN, 0 } };

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		/* Without its control socket it could take no policy: it stops serving. */
		if (p[2].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		if (p[2].revents & POLLIN)
			guard_from_control(&g);
		if (p[0].revents)
			guard_from_vmm(&g, egress_now_ms(), &done);
		/* An error (an ICMP answer to a query) is read off with the datagrams. */
		if (p[1].revents)
			guard_from_upstream(&g, egress_now_ms());
	}
	dns_guard_get_stats(g.dns, &st);
	guard_log("the VMM is gone; queries forwarded %llu, refused %llu, dropped %llu, answers "
		  "%llu, addresses admitted %llu",
		  (unsigned long long)st.forwarded, (unsigned long long)st.refused,
		  (unsigned long long)st.dropped, (unsigned long long)st.answered,
		  (unsigned long long)st.admitted);
	nft_ctx_free(g.nft);
	dns_guard_free(g.dns);
	free(g.policy_buf);
	return 0;
}
