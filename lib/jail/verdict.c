#define _GNU_SOURCE
#include "verdict.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

void jail_verdict(int wait_status, long long oom_kills, uint64_t memory_max_mib,
		  const char **reason, char *detail, size_t len)
{
	int sig = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;

	if (sig == SIGSYS) {
		*reason = "seccomp";
		snprintf(detail, len, "seccomp killed the VMM: it made a system call outside its "
				      "thread's allowlist (SIGSYS)");
	} else if (sig == SIGKILL && oom_kills > 0) {
		*reason = "limit";
		snprintf(detail, len, "memory limit: the VMM reached its cgroup's memory.max "
				      "(%llu MiB) and the OOM killer stopped it",
			 (unsigned long long)memory_max_mib);
	} else if (sig == SIGXFSZ) {
		*reason = "limit";
		snprintf(detail, len, "file size limit: the VMM grew a file past its RLIMIT_FSIZE");
	} else if (sig == SIGXCPU) {
		*reason = "limit";
		snprintf(detail, len, "CPU time limit: the VMM passed its RLIMIT_CPU");
	} else if (sig) {
		*reason = "vmm-died";
		snprintf(detail, len, "the VMM was killed by signal %d (%s)", sig, strsignal(sig));
	} else {
		*reason = "vmm-died";
		snprintf(detail, len, "the VMM exited with status %d without reporting why",
			 WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
	}
}
