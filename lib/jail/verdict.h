/* Why a jailed process ended, as only its parent can tell from its wait status: its seccomp
 * filter killed it (SIGSYS), a limit stopped it (the cgroup's OOM killer, RLIMIT_FSIZE), or it
 * died some other way. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* reason: "seccomp", "limit" or "vmm-died"; detail: a sentence for the caller. oom_kills is
 * memory.events' oom_kill count (-1 if unknown), memory_max_mib the limit (0: none). */
void jail_verdict(int wait_status, long long oom_kills, uint64_t memory_max_mib,
		  const char **reason, char *detail, size_t len);
