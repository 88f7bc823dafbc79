#define _GNU_SOURCE
#include "netctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int netctl_policy_from_json(json_t *j, struct egress_policy **out, char *err, size_t errlen)
{
	const char *mode_name = NULL;
	json_t *list = NULL, *item;
	struct egress_policy *check, *p;
	enum egress_mode mode;
	size_t i;
	int rc = 0;

	if (json_unpack(j, "{s:s, s?o}", "mode", &mode_name, "allow", &list) < 0 ||
	    egress_mode_parse(mode_name, &mode) < 0 || (list && !json_is_array(list))) {
		snprintf(err, errlen,
			 "policy: a mode of none, all or allow, and a list of entries");
		return -EINVAL;
	}
	/* Every entry is checked as an "allow" entry, whatever the mode. */
	check = egress_policy_new(EGRESS_MODE_ALLOW);
	if (!check)
		return -ENOMEM;
	json_array_foreach(list, i, item)
	{
		const char *entry = json_string_value(item);

		rc = entry ? egress_policy_add(check, entry) : -EINVAL;
		if (rc < 0) {
			snprintf(
			    err, errlen, "policy: entry %s: %s", entry ? entry : "(not a string)",
			    rc == -E2BIG ? "too many entries" : "neither CIDR[:port] nor a domain");
			egress_policy_free(check);
			return rc;
		}
	}
	if (mode == EGRESS_MODE_ALLOW) {
		*out = check;
		return 0;
	}
	egress_policy_free(check);
	p = egress_policy_new(mode);
	if (!p)
		return -ENOMEM;
	*out = p;
	return 0;
}

/* The record's CLOCK_MONOTONIC stamp as wall-clock seconds. */
static double netctl_wall_time(uint64_t mono_ms)
{
	struct timespec now;
	double age = (double)(egress_now_ms() - mono_ms) / 1000.0;

	clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9 - age;
}

json_t *netctl_log_json(struct egress *e, uint64_t cursor, size_t max)
{
	struct egress_denial *d = calloc(max ? max : 1, sizeof(*d));
	json_t *list = json_array(), *msg = NULL;
	struct egress_stats st;
	uint64_t lost = 0;
	size_t n;

	if (!d || !list)
		goto out;
	n = egress_log_read(e, &cursor, d, max, &lost);
	egress_get_stats(e, &st);
	for (size_t i = 0; i < n; i++) {
		char ip[16];
		const char *dst =
		    d[i].reason == EGRESS_R_DNS_NAME ? d[i].name : pkt_ipv4_format(d[i].dst_ip, ip);
		/* Names reached us from the guest: json_pack refuses bytes that are not UTF-8, so
		 * they were checked to be a DNS name's letters before they were recorded. */
		json_t *rec =
		    json_pack("{s:I, s:f, s:s, s:s, s:s, s:i}", "seq", (json_int_t)d[i].seq, "time",
			      netctl_wall_time(d[i].time_ms), "reason",
			      egress_reason_name((enum egress_reason)d[i].reason), "proto",
			      egress_denial_proto(&d[i]), "dst", dst, "port",
			      d[i].reason == EGRESS_R_DNS_NAME ? 0 : (int)d[i].dst_port);
		if (json_array_append_new(list, rec) < 0)
			goto out;
	}
	msg = json_pack("{s:O, s:I, s:I, s:I}", "denials", list, "next", (json_int_t)cursor, "lost",
			(json_int_t)lost, "denied", (json_int_t)st.denied);
out:
	json_decref(list);
	free(d);
	return msg;
}
