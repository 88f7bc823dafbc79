/* The VMM's jail, one step per file: namespaces.c (unshare), pivot.c (a root holding only the
 * sandbox's directory), caps.c (ids, capabilities, no_new_privs), rlimit.c, cgroup.c (cgroup v2
 * limits) and seccomp.c (an allowlist per thread role). Every step records in a jail_report
 * whether its protection is in force and, if not, exactly why; the runtime decides whether a
 * missing one is fatal. Protection bits are the public SBX_PROT_* values. */
#pragma once
#include <jansson.h>
#include <sandbox.h>
#include <stdarg.h>
#include <stddef.h>

#define JAIL_PROT_COUNT 12
#define JAIL_DETAIL_MAX 200

struct jail_report {
	unsigned applied; /* SBX_PROT_* bits in force */
	unsigned known;   /* bits some step has reported on, applied or not */
	char detail[JAIL_PROT_COUNT][JAIL_DETAIL_MAX];
};

/* Records protection `prot` (one SBX_PROT_* bit) as applied or missing, with why. */
__attribute__((format(printf, 4, 5))) void jail_report_set(struct jail_report *r, unsigned prot,
							   int applied, const char *fmt, ...);
/* The detail recorded for `prot`, "" if none. */
const char *jail_report_detail(const struct jail_report *r, unsigned prot);
/* Static name of a bit ("pid-ns"), "unknown" otherwise. */
const char *jail_prot_name(unsigned prot);
/* {"applied": BITS, "protections": [{"name", "applied", "detail"}, ...]} in bit order, every
 * protection listed (one no step reported on is missing, "not attempted"). NULL on ENOMEM. */
json_t *jail_report_json(const struct jail_report *r);
/* The first bit of `prots` that is missing from r, 0 if none. */
unsigned jail_report_first_missing(const struct jail_report *r, unsigned prots);
/* The relative form of an absolute path ("/run/x/ID" -> "run/x/ID") in out. -EINVAL unless it
 * is absolute and plain (no "." or ".." parts, no "//", no trailing "/"), -ENAMETOOLONG if out
 * is too small. */
int jail_path_relative(const char *path, char *out, size_t len);
