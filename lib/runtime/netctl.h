/* The VMM's side of the network commands: egress policies from their JSON form and denial records
 * into it. The wire form of a policy is {"mode": "none"|"all"|"allow", "allow": [ENTRY...]}; the
 * entries are kept whatever the mode, and enforced in "allow" mode only. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "net/egress.h"

/* A new egress policy for j. -EINVAL with the offending entry in err, -E2BIG, -ENOMEM. */
int netctl_policy_from_json(json_t *j, struct egress_policy **out, char *err, size_t errlen);
/* Up to max denial records from *cursor on, as
 * {"denials": [{"seq", "time", "reason", "proto", "dst", "port"}...], "next", "lost", "denied"}:
 * time in seconds since the epoch, proto "tcp", "udp", "icmp", "ip", "arp", "frame" or "dns" (a
 * refused name, in dst), next the cursor for the following call, denied the count of every
 * denial over the sandbox's life. NULL when out of memory. */
json_t *netctl_log_json(struct egress *e, uint64_t cursor, size_t max);
