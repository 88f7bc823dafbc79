/* The host side of a sandbox's network (docs/networking.md, "On the host"), made by the library
 * through libnl-route-3 and libnftables before it spawns the VMM:
 *
 *   caller's namespace ("host")          the sandbox's namespace          the VMM
 *   uplink <-NAT- sbx-XXXXXXXX S+5/30 ==veth== veth0 S+6/30
 *                                              tap0 S+1/30 (gateway) -- fd --> virtio-net
 *                                                                       guest eth0 S+2/30
 *
 * S is a /29 leased from a pool (10.200.0.0/16 by default) under <state base>/net-leases/. The
 * namespace has no name and no mount: the tap's fd, which the VMM holds, keeps it alive, so it and
 * its links vanish when the VMM exits, however it exits. What outlives the VMM is the lease file
 * and the NAT table `ip sbx_XXXXXXXX`; net_host_down removes them.
 *
 * Needs CAP_NET_ADMIN (root) and the tun, veth and nf_tables (nft_chain_nat, nft_masq, nft_ct)
 * modules. */
#pragma once
#include <net/if.h>
#include <stdint.h>

struct net_host {
	uint32_t subnet;	       /* S, host order */
	uint32_t guest_ip, gateway_ip; /* S+2, S+1 */
	uint32_t host_ip, peer_ip;     /* S+5 (the host's end), S+6 */
	uint8_t guest_mac[6], gateway_mac[6];
	char ifname[IFNAMSIZ]; /* host end of the veth: "sbx-" and S in hex */
	char table[IFNAMSIZ];  /* its nftables table: "sbx_" and S in hex */
	int tap_fd;	       /* O_CLOEXEC; -1 once handed over */
	/* The VMM's end of its relay to the DNS guard, which holds the upstream's UDP socket (made
	 * in the caller's namespace: the jailed VMM's own has no route). O_CLOEXEC; -1 without an
	 * upstream or once handed over. */
	int dns_fd;
};

/* Leases a /29 from pool ("A.B.C.D/P", P <= 29; NULL: $SANDBOX_NET_POOL or 10.200.0.0/16),
 * recording it in <dir>/net, then makes the namespace, veth, tap, addresses, routes and NAT. base
 * is the state directory holding dir. guest_mac is the guest's (virtio-net) MAC. On failure
 * everything made so far is undone. SBX code with the message in err. */
int net_host_up(const char *base, const char *dir, const char *id, const char *pool,
		const uint8_t guest_mac[6], struct net_host *out, char *err);
/* Removes the leases (and NAT tables) of sandboxes whose directory under base is gone; how many. */
unsigned net_host_gc(const char *base);
struct sbx_net_policy;
/* The policy's second layer, outside the VMM's reach: the library's record (net_record.h), the
 * DNS guard's policy (which names it answers), and a chain of the sandbox's table on the host
 * (nftables, forward hook, traffic from its veth) with the policy's mode and address entries,
 * and for names the addresses the guard admitted (set `admitted`), rewritten whole. The record
 * must exist (net_sandbox_prepare writes it). SBX code with the message in err. */
int net_host_apply_policy(const char *dir, const struct sbx_net_policy *p, char *err);
/* Closes the fds h still holds (the VMM has its own copies once spawned). */
void net_host_release_fds(struct net_host *h);
/* Whether the sandbox in dir has a network (<dir>/net, which net_host_up writes). */
int net_host_present(const char *dir);
/* Removes what the sandbox in dir left on the host: its NAT table and its lease. For sandboxes
 * without a network, and a second time, it does nothing. */
void net_host_down(const char *dir);
/* Checks a pool's syntax. SBX_OK or SBX_EINVAL. */
int net_pool_parse(const char *pool, uint32_t *net, unsigned *prefix);
