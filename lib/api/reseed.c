/* Every copy restored from one snapshot starts with the same CRNG state: without this, each
 * would hand out the same os.urandom() bytes (docs/snapshot.md, "Fork"). */
#define _GNU_SOURCE
#include "reseed.h"

#include <stdio.h>
#include <sys/random.h>

#include "agent_client.h"

#define RESEED_BYTES 64
#define RESEED_TIMEOUT_MS 10000

int sandbox_reseed(sbx_sandbox *sb, char *err)
{
	unsigned char rnd[RESEED_BYTES];
	char hex[2 * RESEED_BYTES + 1], host[32];
	json_t *req, *ev = NULL;
	int rc;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return sbx_fail(err, SBX_EIO, "getrandom failed");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	/* The first 12 hex digits of the id: unique enough on one host, short for prompts. */
	snprintf(host, sizeof(host), "sbx-%.12s", sb->id);
	req = json_pack("{s:s, s:s, s:s}", "op", "reseed", "entropy", hex, "hostname", host);
	if (!req)
		return sbx_fail(err, SBX_ENOMEM, "out of memory");
	rc = agent_request(sb->dir, req, RESEED_TIMEOUT_MS, &ev, err);
	json_decref(req);
	json_decref(ev);
	if (rc != SBX_OK) {
		char why[SBX_ERRMSG_MAX];
		snprintf(why, sizeof(why), "%s", err);
		return sbx_fail(err, rc, "giving the guest fresh entropy and its hostname: %s",
				why);
	}
	return SBX_OK;
}
