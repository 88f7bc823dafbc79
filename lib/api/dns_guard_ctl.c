/* A networked sandbox's DNS guard (lib/dnsguard/main.c), from the library's side: starting it
 * (the trusted relay between the VMM's DNS server and the upstream, which admits what allowed
 * names resolve to in the policy's second layer), and telling it each policy over its control
 * socket, <dir>/guard.sock, which the library makes and hands it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsguard/policy_text.h"
#include "internal.h"
#include "util/io.h"

#define GUARD_VMM_FD 3
#define GUARD_UPSTREAM_FD 4
#define GUARD_CONTROL_FD 5
#define GUARD_SOCKET "guard.sock"
#define GUARD_ANSWER_TIMEOUT_S 5

extern char **environ;

/* $SANDBOX_DNS_GUARD, installed, or the build tree's (tests run before install). */
static const char *dns_guard_path(void)
{
	const char *env = getenv("SANDBOX_DNS_GUARD");

	if (env && *env)
		return env;
	return access(SBX_DNS_GUARD_INSTALLED_PATH, X_OK) == 0 ? SBX_DNS_GUARD_INSTALLED_PATH
							       : SBX_DNS_GUARD_BUILD_PATH;
}

/* The control socket, listening, above the guard's fds (so no dup2 of the spawn lands on a
 * source still to be read). */
static int dns_guard_listen(const char *dir, char *err)
{
	struct sockaddr_un a;
	int fd, high;

	if (unix_addr(&a, dir, GUARD_SOCKET) < 0)
		return sbx_fail(err, SBX_EINVAL, "%s: path too long for a Unix socket", dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* 0600: the VMM, which sees the sandbox's directory, must not reach it (nor any process
	 * but ours: the guard checks the peer's uid again). */
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(a.sun_path, 0600) < 0 ||
	    listen(fd, 4) < 0) {
		int rc = sbx_fail(err, SBX_EIO, "%s: %s", a.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	high = fcntl(fd, F_DUPFD_CLOEXEC, GUARD_CONTROL_FD + 1);
	close(fd);
	return high >= 0 ? high : sbx_fail(err, SBX_EIO, "fcntl: %s", strerror(errno));
}

int dns_guard_spawn(const char *dir, const char *table, const char *upstream, int admit_private,
		    unsigned uid, unsigned gid, int *dns_fd, char *err)
{
	const char *guard = dns_guard_path();
	char log[PATH_MAX], uid_text[16], gid_text[16];
	char *argv[] = { (char *)guard, "--table", (char *)table, "--upstream", (char *)upstream,
			 "--uid", uid_text, "--gid", gid_text,
			 admit_private ? "--admit-private" : NULL, NULL };
	posix_spawn_file_actions_t fa;
	int pair[2], vmm_end, guard_end, upstream_fd, control_fd, rc, status = 0;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/dns-guard.log", dir);
	snprintf(uid_text, sizeof(uid_text), "%u", uid);
	snprintf(gid_text, sizeof(gid_text), "%u", gid);
	if (access(guard, X_OK) < 0)
		return sbx_fail(err, SBX_EVMM, "DNS guard %s: %s", guard, strerror(errno));
	control_fd = dns_guard_listen(dir, err);
	if (control_fd < 0)
		return control_fd;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		close(control_fd);
		return sbx_fail(err, SBX_EIO, "socketpair: %s", strerror(errno));
	}
	vmm_end = pair[0];
	guard_end = fcntl(pair[1], F_DUPFD_CLOEXEC, GUARD_CONTROL_FD + 1);
	close(pair[1]);
	upstream_fd = fcntl(*dns_fd, F_DUPFD_CLOEXEC, GUARD_CONTROL_FD + 1);
	if (guard_end < 0 || upstream_fd < 0) {
		rc = sbx_fail(err, SBX_EIO, "duplicating the DNS guard's fds: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, guard_end, GUARD_VMM_FD);
	posix_spawn_file_actions_adddup2(&fa, upstream_fd, GUARD_UPSTREAM_FD);
	posix_spawn_file_actions_adddup2(&fa, control_fd, GUARD_CONTROL_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, GUARD_CONTROL_FD + 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	rc = posix_spawn(&pid, guard, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		rc = sbx_fail(err, SBX_EVMM, "spawning %s: %s", guard, strerror(rc));
		goto out;
	}
	/* It forks itself away at once: only its first process is ours to reap (unless the caller
	 * ignores SIGCHLD: then the kernel did, and its status is lost). Whether the guard serves
	 * is known when it takes its first policy (dns_guard_send_policy). */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = sbx_fail(err, SBX_EVMM, "DNS guard %s did not start (see %s)", guard, log);
		goto out;
	}
	close(*dns_fd);
	*dns_fd = vmm_end;
	vmm_end = -1;
	rc = SBX_OK;
out:
	close(control_fd);
	if (guard_end >= 0)
		close(guard_end);
	if (upstream_fd >= 0)
		close(upstream_fd);
	if (vmm_end >= 0)
		close(vmm_end);
	return rc;
}

/* The policy as the guard reads it (lib/dnsguard/policy_text.h). */
static char *dns_guard_policy_text(const sbx_net_policy *p, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	int bad;

	if (!f)
		return NULL;
	bad = fprintf(f, "%s\n", net_mode_name(p->mode)) < 0;
	for (size_t i = 0; i < p->n; i++)
		bad |= fprintf(f, "%s\n", p->entries[i]) < 0;
	bad |= fputs(POLICY_TEXT_END "\n", f) < 0; /* the text is whole */
	if (fclose(f) != 0 || bad) {
		free(text);
		return NULL;
	}
	return text;
}

int dns_guard_send_policy(const char *dir, const sbx_net_policy *p, char *err)
{
	struct timeval tv = { GUARD_ANSWER_TIMEOUT_S, 0 };
	struct sockaddr_un a;
	char answer[512] = "", *text;
	size_t len = 0, done = 0;
	ssize_t n = 0;
	int fd, rc = SBX_OK;

	if (unix_addr(&a, dir, GUARD_SOCKET) < 0 || access(a.sun_path, F_OK) < 0)
		return SBX_OK; /* no upstream, no guard */
	text = dns_guard_policy_text(p, &len);
	if (!text)
		return sbx_fail(err, SBX_ENOMEM, "out of memory");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Before connect too: a guard that stopped would leave it waiting on a full backlog. */
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = sbx_fail(err, SBX_EIO,
			      "the DNS guard is not running (%s; see %s/dns-guard.log)",
			      strerror(errno), dir);
		goto out;
	}
	while (done < len && (n = send(fd, text + done, len - done, MSG_NOSIGNAL)) > 0)
		done += (size_t)n;
	shutdown(fd, SHUT_WR);
	n = done == len ? recv(fd, answer, sizeof(answer) - 1, 0) : -1;
	answer[n > 0 ? n : 0] = 0;
	if (strcmp(answer, "ok\n") != 0)
		rc = sbx_fail(err, SBX_EIO, "the DNS guard did not take the policy: %s",
			      answer[0] ? answer : "no answer");
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}
