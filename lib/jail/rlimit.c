#define _GNU_SOURCE
#include "rlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int jail_set_rlimits(const struct jail_rlimits *l, struct jail_report *r)
{
	const struct {
		int resource;
		const char *name;
		uint64_t value;
	} limits[] = {
		{ RLIMIT_CORE, "RLIMIT_CORE", 0 },
		{ RLIMIT_NOFILE, "RLIMIT_NOFILE", l->nofile },
		{ RLIMIT_FSIZE, "RLIMIT_FSIZE", l->fsize },
	};

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit rl = { (rlim_t)limits[i].value, (rlim_t)limits[i].value };

		if (setrlimit(limits[i].resource, &rl) < 0) {
			int err = errno;
			jail_report_set(r, SBX_PROT_RLIMITS, 0, "%s %llu: %s", limits[i].name,
					(unsigned long long)limits[i].value, strerror(err));
			return -err;
		}
	}
	/* Also keeps other processes of the jail uid from ptracing it or reading its memory. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		int err = errno;
		jail_report_set(r, SBX_PROT_RLIMITS, 0, "PR_SET_DUMPABLE: %s", strerror(err));
		return -err;
	}
	jail_report_set(r, SBX_PROT_RLIMITS, 1, "core 0, nofile %llu, fsize %llu MiB, not dumpable",
			(unsigned long long)l->nofile, (unsigned long long)(l->fsize >> 20));
	return 0;
}
