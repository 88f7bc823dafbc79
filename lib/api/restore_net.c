#include "restore_net.h"

#include <stdio.h>
#include <string.h>

#include "agent_client.h"
#include "net_record.h"
#include "virtio/net.h"

#define NET_OP_TIMEOUT_MS 10000

int restore_net_prepare(sbx_config *cfg, sbx_sandbox *sb, const struct snap_manifest *m,
			const char *dir, struct net_host *h, json_t **net, char *spec,
			size_t spec_len)
{
	struct net_want want = { cfg->net_policy, NULL, cfg->net_admit_private };
	struct net_record rec;
	char word[128];
	int rc;

	*net = NULL;
	if (!m->net && cfg->net_policy)
		return sbx_fail(cfg->err, SBX_ENOTSUP,
				"snapshot %s: its machine has no network device, and a restored "
				"guest cannot be given one",
				dir);
	if (!m->net)
		return SBX_OK;
	/* Only the agent can move the guest onto its new addresses. */
	if (!m->agent)
		return sbx_fail(cfg->err, SBX_ENOTSUP,
				"snapshot %s: a guest without the agent cannot be restored with a "
				"network",
				dir);
	rc = net_record_read(dir, &rec, cfg->err);
	if (rc != SBX_OK)
		return rc == SBX_ENOENT ? sbx_fail(cfg->err, SBX_ESNAPSHOT,
						   "snapshot %s: no record of its network", dir)
					: rc;
	want.dns = rec.dns[0] ? rec.dns : NULL;
	if (!want.policy) {
		want.policy = rec.policy;
		want.admit_private = rec.admit_private;
	}
	rc = net_sandbox_prepare(cfg, &want, sb->dir, sb->id, VMM_TAP_FD, VMM_DNS_FD, h, net, word,
				 sizeof(word));
	net_record_clear(&rec);
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
