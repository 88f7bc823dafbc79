/* The library's own record of a sandbox's network, <dir>/network.json: the policy in force, the
 * upstream DNS server and admit_private. Written at create and at every policy change (by the
 * library, never the VMM), copied into a snapshot of the sandbox, and read back by a restore:
 * what a restored copy's network is made from must not come from the VMM, which a guest may
 * have taken over. */
#pragma once
#include "internal.h"

#define NET_RECORD_FILE "network.json"

struct net_record {
	sbx_net_policy *policy; /* owned */
	char dns[64];           /* "IP:PORT", "" for none */
	int admit_private;
};

/* Writes dir's record whole (a new file renamed over the old): policy, dns ("" or NULL: none),
 * admit_private. SBX code, message in err. */
int net_record_write(const char *dir, const sbx_net_policy *policy, const char *dns,
		     int admit_private, char *err);
/* Reads dir's record: SBX_OK, SBX_ENOENT (none), SBX_ESNAPSHOT (malformed). Free with
 * net_record_clear. */
int net_record_read(const char *dir, struct net_record *r, char *err);
void net_record_clear(struct net_record *r);
