#define _GNU_SOURCE
#include "net_setup.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int net_config_parse(const char *spec, struct net_config *n)
{
	char addr[16], gw[16], dns[16];
	unsigned prefix;
	unsigned char *m = n->gateway_mac;
	int used = 0;

	if (sscanf(spec, "%15[0-9.]/%u,%15[0-9.],%15[0-9.],%hhx:%hhx:%hhx:%hhx:%hhx:%hhx%n", addr,
		   &prefix, gw, dns, &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &used) != 10 ||
	    spec[used] || prefix < 1 || prefix > 30 || inet_pton(AF_INET, addr, &n->addr) != 1 ||
	    inet_pton(AF_INET, gw, &n->gateway) != 1 || inet_pton(AF_INET, dns, &n->dns) != 1)
		return -1;
	n->mask.s_addr = htonl(0xffffffffu << (32 - prefix));
	return 0;
}

static void net_sockaddr(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = a};

	memcpy(sa, &sin, sizeof(sin));
}

const char *net_config_apply(int fd, const struct net_config *n)
{
	struct ifreq ifr = {0};
	struct arpreq arp = {0};
	struct rtentry rt = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), NET_IF);
	net_sockaddr(&ifr.ifr_addr, n->addr);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		return "SIOCSIFADDR";
	net_sockaddr(&ifr.ifr_netmask, n->mask);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		return "SIOCSIFNETMASK";
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return "SIOCGIFFLAGS";
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return "SIOCSIFFLAGS";
	/* The gateway's MAC for good: no ARP leaves the guest, whatever the policy. */
	net_sockaddr(&arp.arp_pa, n->gateway);
	arp.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(arp.arp_ha.sa_data, n->gateway_mac, 6);
	arp.arp_flags = ATF_PERM | ATF_COM;
	snprintf(arp.arp_dev, sizeof(arp.arp_dev), NET_IF);
	if (ioctl(fd, SIOCSARP, &arp) < 0)
		return "SIOCSARP";
	net_sockaddr(&rt.rt_dst, (struct in_addr){0});
	net_sockaddr(&rt.rt_genmask, (struct in_addr){0});
	net_sockaddr(&rt.rt_gateway, n->gateway);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = NET_IF;
	if (ioctl(fd, SIOCADDRT, &rt) < 0)
		return "SIOCADDRT";
	return NULL;
}

int net_resolv_write(struct in_addr dns)
{
	char line[64], ip[16];
	int fd, n, ok;

	inet_ntop(AF_INET, &dns, ip, sizeof(ip));
	n = snprintf(line, sizeof(line), "nameserver %s\n", ip);
	fd = open(NET_RESOLV, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	ok = write(fd, line, (size_t)n) == n;
	close(fd);
	return ok ? 0 : -1;
}
