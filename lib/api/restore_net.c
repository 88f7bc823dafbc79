#include "restore_net.h"

#include <stdio.h>
#include <string.h>

#include "agent_client.h"
#include "virtio/net.h"

#define NET_OP_TIMEOUT_MS 10000

int restore_net_prepare(sbx_config *cfg, sbx_sandbox *sb, const struct snap_manifest *m,
			const char *dir, struct net_host *h, json_t **net, char *spec,
			size_t spec_len)
{
	struct net_want want = { cfg->net_policy, m->net_dns, cfg->net_admit_private };
	sbx_net_policy *recorded = NULL;
	char word[128];
	int rc;

	*net = NULL;
	if (!m->net_policy && cfg->net_policy)
		return sbx_fail(cfg->err, SBX_ENOTSUP,
				"snapshot %s: its machine has no network device, and a restored "
				"guest cannot be given one",
				dir);
	if (!m->net_policy)
		return SBX_OK;
	if (!want.policy) {
		if (net_policy_from_json(m->net_policy, &recorded) != SBX_OK)
			return sbx_fail(cfg->err, SBX_ESNAPSHOT,
					"snapshot %s: its network policy is malformed", dir);
		want.policy = recorded;
		want.admit_private = m->net_admit_private;
	}
	rc = net_sandbox_prepare(cfg, &want, sb->dir, sb->id, VMM_TAP_FD, VMM_DNS_FD, h, net, word,
				 sizeof(word));
	sbx_net_policy_free(recorded);
	/* The kernel command-line word's value ("sbx.net=..."), which the agent takes too. */
	if (rc == SBX_OK)
		snprintf(spec, spec_len, "%s", strchr(word, '=') + 1);
	return rc;
}

int restore_net_guest(sbx_config *cfg, sbx_sandbox *sb, const struct net_host *h,
		      const char *spec)
{
	char mac[18];
	json_t *req, *ev = NULL;
	int rc;

	virtio_net_mac_format(h->guest_mac, mac);
	req = json_pack("{s:s, s:s, s:s}", "op", "net", "spec", spec, "mac", mac);
	rc = agent_request(sb->dir, req, NET_OP_TIMEOUT_MS, &ev, cfg->err);
	json_decref(req);
	json_decref(ev);
	if (rc != SBX_OK)
		return sbx_fail(cfg->err, SBX_EGUEST,
				"moving the restored guest onto its network: %s", sbx_strerror(rc));
	return SBX_OK;
}
