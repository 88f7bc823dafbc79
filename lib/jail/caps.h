/* Who the VMM runs as: an unprivileged uid/gid when started as root, no capabilities at all
 * (effective, permitted, inheritable, ambient and bounding), and no_new_privs. */
#pragma once
#include <sys/types.h>
#include "jail.h"

/* Call before the root changes: libcap-ng learns the last capability from /proc. */
void jail_caps_prepare(void);
/* As root: switches to uid/gid (no supplementary groups) and drops every capability; as
 * anyone else: keeps the ids and drops what capabilities it has. Then sets no_new_privs.
 * Reports SBX_PROT_UNPRIV_USER, SBX_PROT_NO_CAPS and SBX_PROT_NO_NEW_PRIVS, checked against
 * what the kernel says afterwards. 0, or -errno of the first step that failed. */
int jail_drop_privileges(uid_t uid, gid_t gid, struct jail_report *r);
