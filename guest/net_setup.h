/* The guest's network interface as the host configures it, shared by the init (at boot, from
 * sbx.net=) and the agent (a restored copy moved onto its own network, the "net" op). The spec:
 *   ADDR/PREFIX,GATEWAY,DNS,GATEWAY_MAC   e.g. 10.200.0.2/30,10.200.0.1,10.200.0.1,02:..:..
 * No ARP ever crosses the link (the gateway's MAC is a permanent entry), and the resolver file
 * is the one bound over /etc/resolv.conf at boot. */
#pragma once
#include <netinet/in.h>

#define NET_IF "eth0"
#define NET_RESOLV "/run/sandbox-resolv.conf"

struct net_config {
	struct in_addr addr, mask, gateway, dns;
	unsigned char gateway_mac[6];
};

/* 0, or -1 when spec is not ADDR/PREFIX,GATEWAY,DNS,MAC (prefix 1 to 30). */
int net_config_parse(const char *spec, struct net_config *n);
/* On socket fd: NET_IF's address and netmask (replacing any), up, the gateway's permanent ARP
 * entry and the default route through it. NULL, or the step that failed (errno set). */
const char *net_config_apply(int fd, const struct net_config *n);
/* NET_RESOLV names the DNS server: 0, or -1 (errno set). */
int net_resolv_write(struct in_addr dns);
