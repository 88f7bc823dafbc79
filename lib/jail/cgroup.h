/* A cgroup v2 per sandbox: <parent>/<sandbox id> with memory.max (the guest's memory and the
 * VMM's own), memory.swap.max 0, pids.max and cpu.max. The monitor creates it and moves the VMM
 * in before the VMM drops its privileges; the library removes it when the sandbox is destroyed.
 * Only fds are kept: the jailed processes cannot name cgroup files. */
#pragma once
#include <stdint.h>
#include <sys/types.h>
#include "jail.h"

#define CGROUP_CPU_PERIOD_US 100000

struct cgroup_limits {
	uint64_t memory_max; /* bytes; 0: no memory limit */
	unsigned pids_max;   /* 0: no pids limit */
	unsigned cpu_quota_pct; /* percent of one CPU; 0: no quota */
};

struct jail_cgroup {
	int procs_fd;          /* cgroup.procs, for moving the VMM in */
	int memory_events_fd;  /* memory.events (the OOM kills), -1 without a memory limit */
	int memory_max_fd;     /* memory.max (the limit in force: root may change it), likewise */
	char summary[160];     /* "memory.max 704 MiB, pids.max 17, cpu.max max" */
};

/* Makes the cgroup at `path` (absolute, its parent on a cgroup v2 mount; the parent is created
 * and the needed controllers enabled down to it) and writes the limits. On failure records why
 * under SBX_PROT_CGROUP, removes what it made and returns -errno. */
int cgroup_create(const char *path, const struct cgroup_limits *l, struct jail_cgroup *cg,
		  struct jail_report *r);
/* Moves pid into the cgroup and reports SBX_PROT_CGROUP applied. 0 or -errno. */
int cgroup_add(struct jail_cgroup *cg, const char *path, pid_t pid, struct jail_report *r);
void cgroup_close(struct jail_cgroup *cg);
/* The value of `key` in a flat-keyed cgroup file read from fd (from its start). 0 or -errno. */
int cgroup_read_event(int fd, const char *key, uint64_t *value);
/* The number in a single-value cgroup file read from fd (memory.max); -ENOENT for "max". */
int cgroup_read_value(int fd, uint64_t *value);

/* Pure helpers, for the above and the unit tests. */
/* Value of `key` in "key value\n" lines; -ENOENT if absent, -EINVAL if malformed. */
int cgroup_parse_event(const char *text, const char *key, uint64_t *value);
/* A single-value file's "N\n"; -ENOENT for "max\n" (no limit), -EINVAL if malformed. */
int cgroup_parse_value(const char *text, uint64_t *value);
/* 1 if the space-separated list (cgroup.controllers, cgroup.subtree_control) names `name`. */
int cgroup_list_has(const char *list, const char *name);
/* cpu.max's content for a quota in percent of one CPU ("150000 100000", or "max 100000"). */
void cgroup_cpu_max(unsigned pct, char *buf, size_t len);
