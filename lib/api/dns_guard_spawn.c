/* Starts a networked sandbox's DNS guard (lib/dnsguard/main.c), the trusted relay between the
 * VMM's DNS server and the upstream that admits what allowed names resolve to in the policy's
 * second layer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define GUARD_VMM_FD 3
#define GUARD_UPSTREAM_FD 4

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

/* fd copied above the guard's fds, so no dup2 of the spawn lands on a source still to be read. */
static int dns_guard_fd_above(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, GUARD_UPSTREAM_FD + 1);
}

int dns_guard_spawn(const char *dir, const char *table, const char *upstream, int admit_private,
		    int *dns_fd, char *err)
{
	const char *guard = dns_guard_path();
	char policy[PATH_MAX], log[PATH_MAX];
	char *argv[] = { (char *)guard, "--table", (char *)table, "--policy", policy, "--upstream",
			 (char *)upstream, admit_private ? "--admit-private" : NULL, NULL };
	posix_spawn_file_actions_t fa;
	int pair[2], vmm_end, guard_end, upstream_fd, rc, status = 0;
	pid_t pid;

	snprintf(policy, sizeof(policy), "%s/policy", dir);
	snprintf(log, sizeof(log), "%s/dns-guard.log", dir);
	if (access(guard, X_OK) < 0)
		return sbx_fail(err, SBX_EVMM, "DNS guard %s: %s", guard, strerror(errno));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		return sbx_fail(err, SBX_EIO, "socketpair: %s", strerror(errno));
	vmm_end = pair[0];
	guard_end = dns_guard_fd_above(pair[1]);
	close(pair[1]);
	upstream_fd = dns_guard_fd_above(*dns_fd);
	if (guard_end < 0 || upstream_fd < 0) {
		rc = sbx_fail(err, SBX_EIO, "duplicating the DNS guard's fds: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, guard_end, GUARD_VMM_FD);
	posix_spawn_file_actions_adddup2(&fa, upstream_fd, GUARD_UPSTREAM_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, GUARD_UPSTREAM_FD + 1);
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
	 * ignores SIGCHLD: then the kernel did, and its status is lost). */
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
	if (guard_end >= 0)
		close(guard_end);
	if (upstream_fd >= 0)
		close(upstream_fd);
	if (vmm_end >= 0)
		close(vmm_end);
	return rc;
}
