/* Resource limits of the VMM process itself: no core dumps (they would hold guest memory), a
 * bounded number of fds and bounded file sizes. */
#pragma once
#include <stdint.h>
#include "jail.h"

struct jail_rlimits {
	uint64_t nofile; /* open fds */
	uint64_t fsize;  /* bytes any file may grow to (disks, the console log) */
};

/* Applies them, and makes the process non-dumpable. Reports SBX_PROT_RLIMITS; 0 or -errno. */
int jail_set_rlimits(const struct jail_rlimits *l, struct jail_report *r);
