#define _GNU_SOURCE
#include "caps.h"

#include <cap-ng.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

void jail_caps_prepare(void)
{
	capng_clear(CAPNG_SELECT_ALL);
}

/* What the kernel says: every set but the bounding one empty, and the bounding set too. */
static int jail_caps_empty(int *bounding_empty)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	*bounding_empty = 1;
	for (int c = 0; c <= CAP_LAST_CAP + 8; c++) {
		int in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (in < 0)
			break; /* past the kernel's last capability */
		if (in)
			*bounding_empty = 0;
	}
	return !(d[0].effective | d[1].effective | d[0].permitted | d[1].permitted |
		 d[0].inheritable | d[1].inheritable);
}

static void jail_report_ids(struct jail_report *r, int was_root)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	if (ru && eu && su && rg && eg && sg)
		jail_report_set(r, SBX_PROT_UNPRIV_USER, 1, "uid %u gid %u%s", (unsigned)eu,
				(unsigned)eg,
				was_root ? "" : " (the caller's: not started as root)");
	else
		jail_report_set(r, SBX_PROT_UNPRIV_USER, 0, "still uid %u gid %u", (unsigned)eu,
				(unsigned)eg);
}

int jail_drop_privileges(uid_t uid, gid_t gid, struct jail_report *r)
{
	int was_root = geteuid() == 0, rc = 0, empty, bounding_empty = 0;

	capng_clear(CAPNG_SELECT_ALL);
	if (was_root) {
		rc = capng_change_id((int)uid, (int)gid,
				     CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING |
					 CAPNG_CLEAR_AMBIENT);
		if (rc < 0)
			jail_report_set(r, SBX_PROT_UNPRIV_USER, 0,
					"capng_change_id(%u, %u) failed at step %d: %s",
					(unsigned)uid, (unsigned)gid, -rc, strerror(errno));
	} else {
		/* The bounding set needs CAP_SETPCAP, which we may hold in a user namespace. */
		capng_apply(CAPNG_SELECT_BOTH);
	}
	if (rc == 0)
		jail_report_ids(r, was_root);
	empty = jail_caps_empty(&bounding_empty);
	if (empty == 1)
		jail_report_set(r, SBX_PROT_NO_CAPS, 1, "no capabilities%s",
				bounding_empty ? ", bounding set empty"
					       : "; bounding set kept (needs CAP_SETPCAP), moot "
						 "with no_new_privs");
	else
		jail_report_set(r, SBX_PROT_NO_CAPS, 0, "capabilities remain%s",
				empty < 0 ? ": capget failed" : "");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		jail_report_set(r, SBX_PROT_NO_NEW_PRIVS, 0, "PR_SET_NO_NEW_PRIVS: %s",
				strerror(errno));
	else
		jail_report_set(r, SBX_PROT_NO_NEW_PRIVS, 1, "set");
	if (rc < 0)
		return -EPERM;
	return empty == 1 ? 0 : -EPERM;
}
