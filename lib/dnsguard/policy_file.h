/* The policy file the library keeps in the sandbox's directory for the DNS guard (<dir>/policy):
 * the mode on the first line, then one allowlist entry a line, replaced whole (rename) at every
 * change. */
#pragma once
#include "net/egress.h"

/* Reads path into a new policy (*out). 0, -errno when it cannot be read, -EINVAL when a line is
 * not a mode or an entry. */
int policy_file_read(const char *path, struct egress_policy **out);
