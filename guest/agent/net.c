/* The "net" op: a guest restored from a snapshot (a fork's child, a restored or resumed copy)
 * still has the address, MAC and gateway of the machine it was saved from, while the host gave
 * the copy a network of its own. The agent moves eth0 onto it: the new MAC first (the VMM drops
 * frames from any other; the change flushes the neighbour entries), the old default route,
 * then the address, the gateway's permanent ARP entry and the default route, and the resolver
 * file. Connections of
 * the old address are gone, as after any change of address. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_setup.h"

static const char *net_move(int fd, const unsigned char mac[6], const struct net_config *n)
{
	struct ifreq ifr = {0};
	struct rtentry rt = {0};
	struct sockaddr_in any = {.sin_family = AF_INET};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), NET_IF);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	if (ioctl(fd, SIOCSIFHWADDR, &ifr) < 0)
		return "SIOCSIFHWADDR";
	/* The old default route goes first: a new address equal to the old one (the same lease
	 * again) changes nothing and would leave it in place (ESRCH: there was none). */
	memcpy(&rt.rt_dst, &any, sizeof(any));
	memcpy(&rt.rt_genmask, &any, sizeof(any));
	rt.rt_dev = NET_IF;
	if (ioctl(fd, SIOCDELRT, &rt) < 0 && errno != ESRCH)
		return "SIOCDELRT";
	return net_config_apply(fd, n);
}

void op_net(struct conn *c)
{
	const char *spec, *mac_text, *failed;
	unsigned char mac[6];
	struct net_config n;
	int fd, used = 0;

	if (arg_string(c, "spec", 1, &spec) < 0 || arg_string(c, "mac", 1, &mac_text) < 0)
		return;
	if (net_config_parse(spec, &n) < 0 ||
	    sscanf(mac_text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx%n", &mac[0], &mac[1], &mac[2], &mac[3],
		   &mac[4], &mac[5], &used) != 6 ||
	    mac_text[used]) {
		reply_error(c, EINVAL, "expected \"spec\": ADDR/PREFIX,GATEWAY,DNS,MAC and \"mac\"");
		return;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		reply_errno(c, errno, "socket", NET_IF);
		return;
	}
	failed = net_move(fd, mac, &n);
	if (failed) {
		reply_errno(c, errno, failed, NET_IF);
		close(fd);
		return;
	}
	close(fd);
	if (net_resolv_write(n.dns) < 0) {
		reply_errno(c, errno, "write", NET_RESOLV);
		return;
	}
	reply_result(c, NULL);
}
