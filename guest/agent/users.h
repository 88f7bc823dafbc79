/* Who a process runs as: a user name or number resolved through /etc/passwd and /etc/group,
 * read directly. The agent is linked statically, and glibc's getpwnam in a static binary would
 * need the NSS modules of the guest's libc at run time. */
#pragma once
#include <sys/types.h>

#define USER_MAX_GROUPS 64

struct user {
	uid_t uid;
	gid_t gid;
	char home[512];
	gid_t groups[USER_MAX_GROUPS]; /* supplementary, the primary group included */
	int ngroups;
};

/* spec: a name, or a decimal uid (a uid missing from /etc/passwd gets gid = uid, home "/").
 * 0; -ENOENT for an unknown name; -EINVAL for an empty spec; -errno reading /etc/passwd. */
int user_lookup(const char *spec, struct user *u);
/* The user the agent itself runs as (root in the guest). */
int user_self(struct user *u);
