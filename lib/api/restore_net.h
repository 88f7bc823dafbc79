/* The network of a sandbox restored from a snapshot whose machine had one (a fork's child, a
 * resumed or restored copy): a network of its own (a new lease, namespace, tap and DNS guard),
 * with the policy the snapshot recorded unless the config gives one, and, once its agent
 * answers, its guest moved onto it (the guest still has the address, MAC and gateway of the
 * machine it was saved from). */
#pragma once
#include <jansson.h>

#include "internal.h"
#include "net_host.h"
#include "snapshot/manifest.h"

/* Makes the host side for sandbox sb from manifest m (a snapshot in dir) and the library's
 * record of the network beside it, and gives the VMM config's "net" object and the guest's
 * spec ("ADDR/30,GATEWAY,DNS,GATEWAY_MAC") in spec. A manifest without a network and a config
 * asking for one is SBX_ENOTSUP (a device cannot be added to a running guest), as is a guest
 * without the agent; without either network, *net stays NULL. SBX code with the message in
 * cfg->err; the caller releases h's fds and takes the host side down either way. */
int restore_net_prepare(sbx_config *cfg, sbx_sandbox *sb, const struct snap_manifest *m,
			const char *dir, struct net_host *h, json_t **net, char *spec,
			size_t spec_len);
/* Moves the ready guest onto its new network (the agent's "net" op): address, route,
 * gateway, resolver, and the MAC h gave it. SBX code with the message in cfg->err. */
int restore_net_guest(sbx_config *cfg, sbx_sandbox *sb, const struct net_host *h,
		      const char *spec);
