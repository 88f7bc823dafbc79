/* The VMM's root: a read-only tmpfs holding nothing but the sandbox's own directory, bound at
 * the same path as on the host, so paths the VMM was given (its vsock socket prefix) still mean
 * the same files. Everything else it needs is opened before this step. */
#pragma once
#include "jail.h"

/* In a mount namespace of our own: makes every mount private (nothing propagates back to the
 * host), then pivot_roots into the new root and detaches the old one. state_dir is absolute.
 * Reports SBX_PROT_PIVOT_ROOT; 0 or -errno. */
int jail_pivot(const char *state_dir, struct jail_report *r);
