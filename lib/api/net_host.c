#define _GNU_SOURCE
#include "net_host.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "net_record.h"
#include "net/egress.h"
#include "net/packet.h"
#include "virtio/net.h"

#define NET_POOL_DEFAULT "10.200.0.0/16"
#define NET_LEASE_DIR "net-leases"
#define NET_SLOT_PREFIX 29
#define NET_LINK_PREFIX 30
#define NET_TAP "tap0"
#define NET_VETH "veth0"

/* ---- the pool and its leases ---- */

static uint32_t net_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

int net_pool_parse(const char *pool, uint32_t *net, unsigned *prefix)
{
	const char *slash = strchr(pool, '/');
	char *end;
	unsigned long p;
	uint32_t ip;

	if (!slash || pkt_ipv4_parse(pool, (size_t)(slash - pool), &ip) < 0)
		return SBX_EINVAL;
	p = strtoul(slash + 1, &end, 10);
	if (*end || end == slash + 1 || p > NET_SLOT_PREFIX || p < 8 ||
	    (ip & ~net_mask((unsigned)p)))
		return SBX_EINVAL;
	*net = ip;
	*prefix = (unsigned)p;
	return SBX_OK;
}

/* Whether net/prefix overlaps the /29 at slot. */
static int net_overlaps(uint32_t slot, uint32_t net, unsigned prefix)
{
	unsigned common = prefix < NET_SLOT_PREFIX ? prefix : NET_SLOT_PREFIX;

	return (slot & net_mask(common)) == (net & net_mask(common));
}

static uint32_t net_addr_ipv4(struct nl_addr *a)
{
	uint32_t be = 0;

	if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4)
		memcpy(&be, nl_addr_get_binary_addr(a), 4);
	return ntohl(be);
}

/* Networks of this host (addresses with their prefixes, routes but the default ones) that a
 * slot must not overlap: another sandbox's, or the host's own. */
struct net_in_use {
	uint32_t *net;
	unsigned char *prefix;
	size_t n, cap;
};

static int net_in_use_add(struct net_in_use *u, uint32_t net, unsigned prefix)
{
	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 64;
		uint32_t *n = realloc(u->net, cap * sizeof(*n));
		unsigned char *p = n ? realloc(u->prefix, cap) : NULL;

		if (n)
			u->net = n;
		if (!p)
			return -ENOMEM;
		u->prefix = p;
		u->cap = cap;
	}
	u->net[u->n] = net;
	u->prefix[u->n++] = (unsigned char)prefix;
	return 0;
}

static int net_in_use_load(struct nl_sock *sk, struct net_in_use *u)
{
	struct nl_cache *addrs = NULL, *routes = NULL;
	struct nl_object *o;
	int rc = rtnl_addr_alloc_cache(sk, &addrs);

	if (rc == 0)
		rc = rtnl_route_alloc_cache(sk, AF_INET, 0, &routes);
	for (o = rc == 0 ? nl_cache_get_first(addrs) : NULL; o && rc == 0;
	     o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		if (rtnl_addr_get_family(a) == AF_INET)
			rc = net_in_use_add(u, net_addr_ipv4(rtnl_addr_get_local(a)),
					    (unsigned)rtnl_addr_get_prefixlen(a));
	}
	for (o = rc == 0 ? nl_cache_get_first(routes) : NULL; o && rc == 0;
	     o = nl_cache_get_next(o)) {
		struct nl_addr *dst = rtnl_route_get_dst((struct rtnl_route *)o);
		unsigned prefix = dst ? nl_addr_get_prefixlen(dst) : 0;
		if (prefix > 0)
			rc = net_in_use_add(u, net_addr_ipv4(dst), prefix);
	}
	nl_cache_free(addrs);
	nl_cache_free(routes);
	return rc;
}

static int net_slot_free_here(const struct net_in_use *u, uint32_t slot)
{
	for (size_t i = 0; i < u->n; i++)
		if (net_overlaps(slot, u->net[i], u->prefix[i]))
			return 0;
	return 1;
}

/* "sbx-" and the slot in hex: the host end of the veth. The NAT table's name is "sbx_" and the
 * same (nft names have no '-'). Other sandboxes' links are "sbx-*" to nft. */
static void net_ifname(uint32_t slot, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, "sbx-%08x", slot);
}

static void net_table(uint32_t slot, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, "sbx_%08x", slot);
}

/* Runs nft commands in one transaction. SBX_OK, or SBX_EIO with nft's message in err. */
static int net_nft(const char *cmds, char *err)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc = SBX_OK;

	if (!nft)
		return sbx_fail(err, SBX_ENOMEM, "libnftables: no context");
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	if (nft_run_cmd_from_buffer(nft, cmds) != 0) {
		const char *msg = nft_ctx_get_error_buffer(nft);
		rc = sbx_fail(err, SBX_EIO, "nftables: %.300s", msg && *msg ? msg : "failed");
	}
	nft_ctx_free(nft);
	return rc;
}

static void net_nat_delete(const char *table)
{
	char cmd[96], err[SBX_ERRMSG_MAX];

	snprintf(cmd, sizeof(cmd), "delete table ip %s\n", table);
	net_nft(cmd, err); /* already gone is fine */
}

/* A lease whose sandbox directory is gone was left by a process that died while destroying it:
 * its NAT table may be left too. Caller holds the pool lock. */
static int net_lease_stale(const char *base, const char *lease, uint32_t slot)
{
	char id[64] = "", path[4200], table[IFNAMSIZ], ifname[IFNAMSIZ];
	FILE *f = fopen(lease, "re");

	if (!f)
		return 0;
	if (!fgets(id, sizeof(id), f))
		id[0] = 0;
	fclose(f);
	id[strcspn(id, "\n")] = 0;
	if (!id[0] || strchr(id, '/'))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", base, id);
	if (access(path, F_OK) == 0)
		return 0;
	/* Table names are host-wide: with the slot's link up, a sandbox of another state directory
	 * took the slot since, and the table is its. */
	net_ifname(slot, ifname);
	if (if_nametoindex(ifname) == 0) {
		net_table(slot, table);
		net_nat_delete(table);
	}
	return unlink(lease) == 0;
}

/* Takes the first slot of the pool that has no lease and overlaps nothing on this host, under
 * the pool's lock (a lease file per slot, created O_EXCL, holding the sandbox's id). */
static int net_lease_take(struct nl_sock *sk, const char *base, const char *id, const char *pool,
			  uint32_t *slot_out, char *lease_out, size_t lease_len, char *err)
{
	struct net_in_use used = {0};
	char dir[4200], lock[4300];
	uint32_t net;
	unsigned prefix;
	int lock_fd, rc;

	if (!pool || !*pool)
		pool = getenv("SANDBOX_NET_POOL");
	if (!pool || !*pool)
		pool = NET_POOL_DEFAULT;
	if (net_pool_parse(pool, &net, &prefix) != SBX_OK)
		return sbx_fail(err, SBX_EINVAL, "network pool %s: not A.B.C.D/8..29", pool);
	snprintf(dir, sizeof(dir), "%s/" NET_LEASE_DIR, base);
	snprintf(lock, sizeof(lock), "%s/.lock", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, SBX_EIO, "%s: %s", dir, strerror(errno));
	lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
		rc = sbx_fail(err, SBX_EIO, "%s: %s", lock, strerror(errno));
		goto out;
	}
	rc = net_in_use_load(sk, &used);
	if (rc < 0) {
		rc = sbx_fail(err, SBX_EIO, "reading this host's addresses: %s", nl_geterror(rc));
		goto out;
	}
	rc = SBX_ERANGE;
	for (uint64_t i = 0; i < 1ULL << (NET_SLOT_PREFIX - prefix); i++) {
		uint32_t slot = net + (uint32_t)(i << (32 - NET_SLOT_PREFIX));
		char ip[16];
		int fd;

		if (!net_slot_free_here(&used, slot))
			continue;
		snprintf(lease_out, lease_len, "%s/%s", dir, pkt_ipv4_format(slot, ip));
		fd = open(lease_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST && net_lease_stale(base, lease_out, slot))
			fd = open(lease_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0 || dprintf(fd, "%s\n", id) < 0) {
			rc = sbx_fail(err, SBX_EIO, "lease %s: %s", lease_out, strerror(errno));
			if (fd >= 0) {
				close(fd);
				unlink(lease_out);
			}
			break;
		}
		close(fd);
		*slot_out = slot;
		rc = SBX_OK;
		break;
	}
	if (rc == SBX_ERANGE)
		sbx_fail(err, rc,
			 "network pool %s is exhausted or overlaps this host's networks (set "
			 "SANDBOX_NET_POOL or sbx_config_set_net_pool)",
			 pool);
out:
	free(used.net);
	free(used.prefix);
	if (lock_fd >= 0)
		close(lock_fd); /* and with it the lock */
	return rc;
}

/* ---- netlink helpers (sk is in the namespace they act in) ---- */

static struct nl_addr *net_nl_ipv4(uint32_t ip, unsigned prefix)
{
	uint32_t be = htonl(ip);
	struct nl_addr *a = nl_addr_build(AF_INET, &be, 4);

	if (a)
		nl_addr_set_prefixlen(a, (int)prefix);
	return a;
}

static int net_ifindex(struct nl_sock *sk, const char *name, int *index)
{
	struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(sk, 0, name, &link);

	if (rc == 0) {
		*index = rtnl_link_get_ifindex(link);
		rtnl_link_put(link);
	}
	return rc;
}

/* Sets the link up, with mac if given. */
static int net_link_up(struct nl_sock *sk, const char *name, const uint8_t *mac)
{
	struct rtnl_link *orig = NULL, *change = rtnl_link_alloc();
	struct nl_addr *addr = NULL;
	int rc = change ? rtnl_link_get_kernel(sk, 0, name, &orig) : -NLE_NOMEM;

	if (rc == 0 && mac) {
		addr = nl_addr_build(AF_LLC, mac, 6);
		if (!addr)
			rc = -NLE_NOMEM;
		else
			rtnl_link_set_addr(change, addr);
	}
	if (rc == 0) {
		rtnl_link_set_flags(change, IFF_UP);
		rc = rtnl_link_change(sk, orig, change, 0);
	}
	nl_addr_put(addr);
	rtnl_link_put(orig);
	rtnl_link_put(change);
	return rc;
}

static int net_addr_add(struct nl_sock *sk, int ifindex, uint32_t ip, unsigned prefix)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = net_nl_ipv4(ip, prefix);
	int rc = -NLE_NOMEM;

	if (a && local) {
		rtnl_addr_set_ifindex(a, ifindex);
		rc = rtnl_addr_set_local(a, local);
		if (rc == 0)
			rc = rtnl_addr_add(sk, a, 0);
	}
	nl_addr_put(local);
	rtnl_addr_put(a);
	return rc;
}

static int net_route_add(struct nl_sock *sk, uint32_t dst, unsigned prefix, uint32_t gw,
			 int ifindex)
{
	struct rtnl_route *r = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *d = net_nl_ipv4(dst, prefix), *g = net_nl_ipv4(gw, 32);
	int rc = -NLE_NOMEM;

	if (r && nh && d && g) {
		rtnl_route_set_family(r, AF_INET);
		rc = rtnl_route_set_dst(r, d);
		rtnl_route_nh_set_ifindex(nh, ifindex);
		rtnl_route_nh_set_gateway(nh, g);
		rtnl_route_add_nexthop(r, nh);
		nh = NULL; /* the route owns it now */
		if (rc == 0)
			rc = rtnl_route_add(sk, r, NLM_F_EXCL);
	}
	if (nh)
		rtnl_route_nh_free(nh);
	nl_addr_put(d);
	nl_addr_put(g);
	rtnl_route_put(r);
	return rc;
}

/* A permanent neighbour entry: no ARP on the link, either way. */
static int net_neigh_add(struct nl_sock *sk, int ifindex, uint32_t ip, const uint8_t mac[6])
{
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *dst = net_nl_ipv4(ip, 32), *ll = nl_addr_build(AF_LLC, mac, 6);
	int rc = -NLE_NOMEM;

	if (n && dst && ll) {
		rtnl_neigh_set_ifindex(n, ifindex);
		rc = rtnl_neigh_set_dst(n, dst);
		rtnl_neigh_set_lladdr(n, ll);
		rtnl_neigh_set_state(n, NUD_PERMANENT);
		if (rc == 0)
			rc = rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE);
	}
	nl_addr_put(dst);
	nl_addr_put(ll);
	rtnl_neigh_put(n);
	return rc;
}

/* Writes a sysctl of the calling thread's network namespace (/proc/sys/net resolves by the
 * opener's namespace). Missing files (no IPv6) are not an error. */
static int net_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (write(fd, value, strlen(value)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* ---- inside the sandbox's namespace ---- */

struct net_ns_job {
	const struct net_host *h;
	int host_ns_fd; /* the caller's namespace, where the veth's other end goes */
	int tap_fd;	/* out */
	int rc;
	char err[SBX_ERRMSG_MAX];
};

static int net_tap_open(struct net_ns_job *j)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return sbx_fail(j->err, errno == ENOENT ? SBX_ENOENT : SBX_EIO,
				"/dev/net/tun: %s (is the tun module loaded?)", strerror(errno));
	/* No IFF_VNET_HDR: the device negotiates no offloads (lib/virtio/net.h). */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), NET_TAP);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int rc = sbx_fail(j->err, SBX_EIO, "TUNSETIFF %s: %s", NET_TAP, strerror(errno));
		close(fd);
		return rc;
	}
	j->tap_fd = fd;
	return SBX_OK;
}

static int net_veth_add(struct nl_sock *sk, const struct net_ns_job *j)
{
	struct rtnl_link *link = rtnl_link_veth_alloc(), *peer;
	int rc;

	if (!link)
		return -NLE_NOMEM;
	peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(link, NET_VETH);
	rtnl_link_set_name(peer, j->h->ifname);
	rtnl_link_set_ns_fd(peer, j->host_ns_fd);
	rtnl_link_put(peer);
	rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_veth_release(link);
	return rc;
}

/* The second layer, whatever the VMM's filter lets out: the namespace forwards only the guest's
 * own address outwards, and inwards only what belongs to connections the guest opened (nothing
 * reaches a server in the guest, from the host or from anywhere that routes the pool through
 * it); nothing is for the namespace itself. Runs in the namespace's thread, so libnftables talks
 * to this namespace's nf_tables. */
static int net_ns_filter(struct net_ns_job *j)
{
	char cmds[1024], guest[16];
	int rc;

	pkt_ipv4_format(j->h->guest_ip, guest);
	snprintf(cmds, sizeof(cmds),
		 "add table ip sandbox\n"
		 "add chain ip sandbox forward { type filter hook forward priority filter; "
		 "policy drop; }\n"
		 "add rule ip sandbox forward iifname \"" NET_TAP "\" oifname \"" NET_VETH "\" "
		 "ip saddr %1$s accept\n"
		 "add rule ip sandbox forward iifname \"" NET_VETH "\" oifname \"" NET_TAP "\" "
		 "ip daddr %1$s ct state established,related accept\n"
		 "add chain ip sandbox input { type filter hook input priority filter; "
		 "policy drop; }\n",
		 guest);
	rc = net_nft(cmds, j->err);
	if (rc != SBX_OK) {
		char msg[SBX_ERRMSG_MAX];
		snprintf(msg, sizeof(msg), "%s", j->err);
		return sbx_fail(j->err, rc, "sandbox namespace: %.400s (is nft_ct loaded?)", msg);
	}
	return SBX_OK;
}

/* The namespace's side: the tap (the guest's gateway, which knows the guest's MAC for good), the
 * veth with its other end in the caller's namespace, the default route through it, forwarding. */
static int net_ns_configure(struct nl_sock *sk, struct net_ns_job *j)
{
	const struct net_host *h = j->h;
	const char *step = "veth";
	int rc, veth = 0, tap = 0;

	/* The guest is IPv4 only; no IPv6 chatter from this side either. */
	net_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	net_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	rc = net_veth_add(sk, j);
	if (rc == 0 && (rc = net_ifindex(sk, NET_VETH, &veth)) == 0 &&
	    (rc = net_ifindex(sk, NET_TAP, &tap)) == 0) {
		step = "addresses";
		rc = net_addr_add(sk, veth, h->peer_ip, NET_LINK_PREFIX);
	}
	if (rc == 0)
		rc = net_addr_add(sk, tap, h->gateway_ip, NET_LINK_PREFIX);
	if (rc == 0 && (step = "links up", rc = net_link_up(sk, NET_VETH, NULL)) == 0)
		rc = net_link_up(sk, NET_TAP, h->gateway_mac);
	if (rc == 0 && (step = "guest neighbour entry",
			rc = net_neigh_add(sk, tap, h->guest_ip, h->guest_mac)) == 0)
		rc = (step = "default route", net_route_add(sk, 0, 0, h->host_ip, veth));
	if (rc < 0)
		return sbx_fail(j->err, SBX_EIO, "sandbox namespace: %s: %s", step,
				nl_geterror(rc));
	rc = net_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
	if (rc < 0)
		return sbx_fail(j->err, SBX_EIO, "sandbox namespace: ip_forward: %s",
				strerror(-rc));
	return net_ns_filter(j);
}

/* A thread of its own enters a new network namespace (the caller's threads stay where they are),
 * makes everything there and ends; the tap's fd keeps the namespace alive. */
static void *net_ns_thread(void *arg)
{
	struct net_ns_job *j = arg;
	struct nl_sock *sk;
	int rc;

	if (unshare(CLONE_NEWNET) < 0) {
		j->rc = sbx_fail(j->err, errno == EPERM ? SBX_EPERM : SBX_EIO,
				 "new network namespace: %s (networking needs CAP_NET_ADMIN)",
				 strerror(errno));
		return NULL;
	}
	j->rc = net_tap_open(j);
	if (j->rc != SBX_OK)
		return NULL;
	sk = nl_socket_alloc();
	rc = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	j->rc = rc < 0 ? sbx_fail(j->err, SBX_EIO, "netlink: %s", nl_geterror(rc))
		       : net_ns_configure(sk, j);
	nl_socket_free(sk);
	if (j->rc != SBX_OK) {
		close(j->tap_fd); /* the namespace goes with it, and the veth with that */
		j->tap_fd = -1;
	}
	return NULL;
}

static int net_ns_make(struct net_host *h, char *err)
{
	struct net_ns_job j = {.h = h, .tap_fd = -1};
	pthread_t t;
	int rc;

	j.host_ns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (j.host_ns_fd < 0)
		return sbx_fail(err, SBX_EIO, "/proc/thread-self/ns/net: %s", strerror(errno));
	rc = pthread_create(&t, NULL, net_ns_thread, &j);
	if (rc == 0)
		pthread_join(t, NULL);
	close(j.host_ns_fd);
	if (rc != 0)
		return sbx_fail(err, SBX_EIO, "namespace thread: %s", strerror(rc));
	if (j.rc != SBX_OK)
		return sbx_fail(err, j.rc, "%s", j.err);
	h->tap_fd = j.tap_fd;
	return SBX_OK;
}

/* ---- the caller's side ---- */

/* The host's end: address, up, the route to the guest, forwarding, and NAT. Guest traffic is
 * masqueraded on its way out; the sandbox may not talk to the host itself (input) nor to other
 * sandboxes (forward to another sbx link), whatever its policy. */
static int net_host_configure(struct nl_sock *sk, const struct net_host *h, char *err)
{
	char cmds[1024], guest[16], path[128], table[IFNAMSIZ];
	const char *step = "host link";
	int rc, index = 0;

	rc = net_ifindex(sk, h->ifname, &index);
	if (rc == 0)
		rc = net_addr_add(sk, index, h->host_ip, NET_LINK_PREFIX);
	if (rc == 0)
		rc = net_link_up(sk, h->ifname, NULL);
	if (rc == 0)
		rc = (step = "route to the guest",
		      net_route_add(sk, h->subnet, NET_LINK_PREFIX, h->peer_ip, index));
	if (rc < 0)
		return sbx_fail(err, SBX_EIO, "%s %s: %s", step, h->ifname, nl_geterror(rc));
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", h->ifname);
	net_sysctl(path, "1");
	/* Forwarding is a host-wide switch: replies come in on the uplink. */
	rc = net_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
	if (rc < 0)
		return sbx_fail(err, SBX_EIO, "ip_forward: %s", strerror(-rc));
	net_table(h->subnet, table);
	snprintf(cmds, sizeof(cmds),
		 "add table ip %1$s\n"
		 "add chain ip %1$s postrouting { type nat hook postrouting priority srcnat; }\n"
		 "add rule ip %1$s postrouting ip saddr %3$s masquerade\n"
		 "add chain ip %1$s input { type filter hook input priority filter; }\n"
		 "add rule ip %1$s input iifname \"%2$s\" drop\n"
		 "add chain ip %1$s forward { type filter hook forward priority filter; }\n"
		 "add rule ip %1$s forward iifname \"%2$s\" oifname \"sbx-*\" drop\n",
		 table, h->ifname, pkt_ipv4_format(h->guest_ip, guest));
	return net_nft(cmds, err);
}

/* The gateway's MAC: derived from the id too, never the guest's. */
static void net_gateway_mac(const char *id, const uint8_t guest[6], uint8_t out[6])
{
	char seed[80];

	snprintf(seed, sizeof(seed), "%s/gateway", id);
	virtio_net_mac_from_id(seed, out);
	if (memcmp(out, guest, 6) == 0)
		out[5] ^= 1;
}

static int net_record(const char *dir, const char *lease, const char *table, char *err)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/net", dir);
	f = fopen(path, "we");
	if (!f || fprintf(f, "%s\n%s\n", lease, table) < 0 || fclose(f) != 0) {
		int rc = sbx_fail(err, SBX_EIO, "%s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return rc;
	}
	return SBX_OK;
}

int net_host_up(const char *base, const char *dir, const char *id, const char *pool,
		const uint8_t guest_mac[6], struct net_host *out, char *err)
{
	struct net_host h = {.tap_fd = -1, .dns_fd = -1};
	struct nl_sock *sk = nl_socket_alloc();
	char lease[4400];
	int rc = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;

	if (rc < 0) {
		nl_socket_free(sk);
		return sbx_fail(err, SBX_EIO, "netlink: %s", nl_geterror(rc));
	}
	rc = net_lease_take(sk, base, id, pool, &h.subnet, lease, sizeof(lease), err);
	if (rc != SBX_OK) {
		nl_socket_free(sk);
		return rc;
	}
	net_ifname(h.subnet, h.ifname);
	net_table(h.subnet, h.table);
	rc = net_record(dir, lease, h.table, err);
	if (rc != SBX_OK) {
		unlink(lease);
		nl_socket_free(sk);
		return rc;
	}
	h.gateway_ip = h.subnet + 1;
	h.guest_ip = h.subnet + 2;
	h.host_ip = h.subnet + 5;
	h.peer_ip = h.subnet + 6;
	memcpy(h.guest_mac, guest_mac, 6);
	net_gateway_mac(id, guest_mac, h.gateway_mac);
	rc = net_ns_make(&h, err);
	if (rc == SBX_OK)
		rc = net_host_configure(sk, &h, err);
	nl_socket_free(sk);
	if (rc != SBX_OK) {
		net_host_release_fds(&h);
		net_host_down(dir);
		return rc;
	}
	*out = h;
	return SBX_OK;
}

void net_host_release_fds(struct net_host *h)
{
	if (h->tap_fd >= 0)
		close(h->tap_fd);
	if (h->dns_fd >= 0)
		close(h->dns_fd);
	h->tap_fd = h->dns_fd = -1;
}

int net_host_present(const char *dir)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/net", dir);
	return access(path, F_OK) == 0;
}

void net_host_down(const char *dir)
{
	char path[4200], lease[4400] = "", table[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/net", dir);
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(lease, sizeof(lease), f) || !fgets(table, sizeof(table), f))
		lease[0] = table[0] = 0;
	fclose(f);
	lease[strcspn(lease, "\n")] = 0;
	table[strcspn(table, "\n")] = 0;
	/* The namespace and its links went with the VMM's tap; only these stay behind. */
	if (strncmp(table, "sbx_", 4) == 0)
		net_nat_delete(table);
	if (lease[0])
		unlink(lease);
	unlink(path);
}

unsigned net_host_gc(const char *base)
{
	char dir[4200], lock[4300], lease[4500];
	unsigned removed = 0;
	struct dirent *e;
	uint32_t slot;
	int lock_fd;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/" NET_LEASE_DIR, base);
	snprintf(lock, sizeof(lock), "%s/.lock", dir);
	d = opendir(dir);
	if (!d)
		return 0;
	lock_fd = open(lock, O_RDWR | O_CLOEXEC);
	if (lock_fd >= 0 && flock(lock_fd, LOCK_EX) == 0) {
		while ((e = readdir(d))) {
			if (pkt_ipv4_parse(e->d_name, strlen(e->d_name), &slot) < 0)
				continue;
			snprintf(lease, sizeof(lease), "%s/%s", dir, e->d_name);
			removed += (unsigned)net_lease_stale(base, lease, slot);
		}
	}
	if (lock_fd >= 0)
		close(lock_fd);
	closedir(d);
	return removed;
}

/* The rules of one entry: address and prefix, and the port on TCP and UDP when it has one.
 * Built from parsed numbers, never from the caller's text. A name makes none (*is_name). 1 if
 * writing failed. */
static int net_policy_entry_rules(FILE *out, const char *table, const char *ifname,
				  const char *entry, int *is_name)
{
	uint32_t net;
	uint8_t prefix;
	uint16_t port;
	char ip[16];

	*is_name = egress_cidr_parse(entry, &net, &prefix, &port) < 0;
	if (*is_name)
		return 0;
	pkt_ipv4_format(net, ip);
	if (!port)
		return fprintf(out, "add rule ip %s egress iifname \"%s\" ip daddr %s/%u accept\n",
			       table, ifname, ip, prefix) < 0;
	return fprintf(out,
		       "add rule ip %1$s egress iifname \"%2$s\" ip daddr %3$s/%4$u tcp dport %5$u "
		       "accept\n"
		       "add rule ip %1$s egress iifname \"%2$s\" ip daddr %3$s/%4$u udp dport %5$u "
		       "accept\n",
		       table, ifname, ip, prefix, port) < 0;
}

int net_host_apply_policy(const char *dir, const struct sbx_net_policy *p, char *err)
{
	char path[4200], lease[4400] = "", table[64] = "", ifname[64], *cmds = NULL;
	struct net_record rec;
	size_t len = 0;
	int names = 0, bad = 0, rc;
	FILE *f, *out;

	snprintf(path, sizeof(path), "%s/net", dir);
	f = fopen(path, "re");
	if (!f)
		return sbx_fail(err, SBX_ESTATE, "%s: %s", path, strerror(errno));
	if (!fgets(lease, sizeof(lease), f) || !fgets(table, sizeof(table), f))
		table[0] = 0;
	fclose(f);
	table[strcspn(table, "\n")] = 0;
	if (strncmp(table, "sbx_", 4) != 0 || strlen(table) != 12 ||
	    strspn(table + 4, "0123456789abcdef") != 8)
		return sbx_fail(err, SBX_EIO, "%s: no NAT table recorded", path);
	snprintf(ifname, sizeof(ifname), "sbx-%s", table + 4);
	rc = net_record_read(dir, &rec, err);
	if (rc != SBX_OK)
		return rc;
	/* The guard first: it answers a name taken off the list no more, and takes back the
	 * addresses only that name admitted, before the chain changes. */
	rc = dns_guard_send_policy(dir, p, err);
	if (rc != SBX_OK) {
		net_record_clear(&rec);
		return rc;
	}
	out = open_memstream(&cmds, &len);
	if (!out) {
		net_record_clear(&rec);
		return sbx_fail(err, SBX_ENOMEM, "out of memory");
	}
	/* Before the table's own forward chain; rewritten whole in one transaction. The sets hold
	 * what the DNS guard admitted (`admitted`, each address for its answer's TTL) and what was
	 * sent to lately (`recent`): an address in use stays open 5 minutes past its last packet,
	 * as in the VMM. */
	bad |= fprintf(out,
		       "add chain ip %1$s egress { type filter hook forward priority -1; }\n"
		       "flush chain ip %1$s egress\n"
		       "add set ip %1$s admitted { type ipv4_addr; flags timeout; }\n"
		       "add set ip %1$s recent { type ipv4_addr; flags dynamic,timeout; timeout %2$us; }\n",
		       table, EGRESS_IDLE_GRACE_S) < 0;
	for (size_t i = 0; p->mode == SBX_NET_ALLOW && i < p->n; i++) {
		int is_name;
		bad |= net_policy_entry_rules(out, table, ifname, p->entries[i], &is_name);
		names |= is_name;
	}
	/* Names open what the guard admitted, on any port but DNS's (only address entries, above,
	 * reach another DNS server). Without names nothing admitted stays. */
	if (names)
		bad |= fprintf(out,
			       "add rule ip %1$s egress iifname \"%2$s\" meta l4proto { tcp, udp } "
			       "th dport 53 drop\n"
			       "add rule ip %1$s egress iifname \"%2$s\" ip daddr @admitted "
			       "update @recent { ip daddr } accept\n"
			       "add rule ip %1$s egress iifname \"%2$s\" ip daddr @recent "
			       "update @recent { ip daddr } accept\n",
			       table, ifname) < 0;
	else
		bad |= fprintf(out, "flush set ip %1$s admitted\nflush set ip %1$s recent\n",
			       table) < 0;
	if (p->mode != SBX_NET_ALL)
		bad |= fprintf(out, "add rule ip %s egress iifname \"%s\" drop\n", table, ifname) < 0;
	bad |= fclose(out) != 0;
	rc = bad ? sbx_fail(err, SBX_ENOMEM, "out of memory") : net_nft(cmds, err);
	free(cmds);
	/* The record last: a change that failed on the way is compared with the old one again
	 * when it is retried (names it removed still flush the sets). */
	if (rc == SBX_OK)
		rc = net_record_write(dir, p, rec.dns, rec.admit_private, err);
	net_record_clear(&rec);
	return rc;
}
