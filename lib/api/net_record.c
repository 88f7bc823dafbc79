#include "net_record.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int net_record_write(const char *dir, const sbx_net_policy *policy, const char *dns,
		     int admit_private, char *err)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 48];
	json_t *pj = net_policy_json(policy);
	json_t *j = pj ? json_pack("{s:o, s:s*, s:b}", "policy", pj, "dns",
				   dns && *dns ? dns : NULL, "admit_private", admit_private)
		       : NULL;
	int rc = SBX_OK;

	snprintf(path, sizeof(path), "%s/" NET_RECORD_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if (!j)
		return sbx_fail(err, SBX_ENOMEM, "out of memory");
	if (json_dump_file(j, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0) {
		rc = sbx_fail(err, SBX_EIO, "writing %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	json_decref(j);
	return rc;
}

int net_record_read(const char *dir, struct net_record *r, char *err)
{
	char path[PATH_MAX + 32];
	const char *dns = NULL;
	json_t *j, *policy = NULL;
	json_error_t jerr;
	int rc;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/" NET_RECORD_FILE, dir);
	if (access(path, F_OK) < 0)
		return sbx_fail(err, SBX_ENOENT, "%s: %s", path, strerror(errno));
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j || json_unpack(j, "{s:o, s?s, s:b}", "policy", &policy, "dns", &dns,
			      "admit_private", &r->admit_private) < 0 ||
	    (dns && strlen(dns) >= sizeof(r->dns))) {
		json_decref(j);
		return sbx_fail(err, SBX_ESNAPSHOT, "%s: not a network record", path);
	}
	snprintf(r->dns, sizeof(r->dns), "%s", dns ? dns : "");
	rc = net_policy_from_json(policy, &r->policy);
	json_decref(j);
	if (rc != SBX_OK)
		return sbx_fail(err, SBX_ESNAPSHOT, "%s: its policy is malformed", path);
	return SBX_OK;
}

void net_record_clear(struct net_record *r)
{
	sbx_net_policy_free(r->policy);
	r->policy = NULL;
}
