#define _GNU_SOURCE
#include "packet.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define ARP_LEN 28
#define TCP_HLEN 20
#define ICMP_HLEN 8
#define IP_MF 0x2000
#define IP_OFFSET_MASK 0x1fff
#define IP_DF 0x4000
#define IP_MAX_LEN 65535

const char *pkt_error_name(enum pkt_error e)
{
	static const char *const names[PKT_E_COUNT] = {
		[PKT_OK] = "parsed",
		[PKT_E_SHORT] = "frame shorter than its headers",
		[PKT_E_VLAN] = "802.1Q/802.1ad tagged frame",
		[PKT_E_IPV6] = "IPv6",
		[PKT_E_ETHERTYPE] = "unsupported ethertype",
		[PKT_E_ARP] = "ARP that is not IPv4 over Ethernet",
		[PKT_E_IP_VERSION] = "IP version is not 4",
		[PKT_E_IP_IHL] = "bad IPv4 header length",
		[PKT_E_IP_LEN] = "bad IPv4 total length",
		[PKT_E_IP_CSUM] = "bad IPv4 header checksum",
		[PKT_E_TCP] = "bad TCP data offset",
		[PKT_E_UDP] = "UDP length does not match the IP payload",
		[PKT_E_ICMP] = "ICMP shorter than its header",
	};

	return e < PKT_E_COUNT ? names[e] : "?";
}

uint16_t pkt_csum(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t s = sum;

	for (; len >= 2; p += 2, len -= 2)
		s += rd16(p);
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static enum pkt_error pkt_parse_arp(const uint8_t *a, size_t len, struct pkt_info *pi)
{
	if (len < ARP_LEN)
		return PKT_E_SHORT;
	/* Ethernet hardware, IPv4 protocol, their address sizes: the only ARP the guest speaks. */
	if (rd16(a) != 1 || rd16(a + 2) != PKT_ETHERTYPE_IPV4 || a[4] != PKT_MAC_LEN || a[5] != 4)
		return PKT_E_ARP;
	pi->arp_op = rd16(a + 6);
	memcpy(pi->arp_sha, a + 8, PKT_MAC_LEN);
	pi->src_ip = rd32(a + 14);
	pi->dst_ip = rd32(a + 24);
	if (pi->arp_op != PKT_ARP_REQUEST && pi->arp_op != PKT_ARP_REPLY)
		return PKT_E_ARP;
	return PKT_OK;
}

/* The layer-4 header at l4 (len bytes of IP payload, which starts at frame offset off). */
static enum pkt_error pkt_parse_l4(const uint8_t *l4, size_t len, size_t off, struct pkt_info *pi)
{
	size_t hlen;

	switch (pi->proto) {
	case PKT_PROTO_TCP:
		if (len < TCP_HLEN)
			return PKT_E_SHORT;
		hlen = (size_t)(l4[12] >> 4) * 4;
		if (hlen < TCP_HLEN || hlen > len)
			return PKT_E_TCP;
		pi->src_port = rd16(l4);
		pi->dst_port = rd16(l4 + 2);
		pi->tcp_flags = l4[13];
		break;
	case PKT_PROTO_UDP:
		if (len < PKT_UDP_HLEN)
			return PKT_E_SHORT;
		/* Equal, not merely inside: bytes after the datagram would be bytes we never saw
		 * as part of it. */
		if (rd16(l4 + 4) != len)
			return PKT_E_UDP;
		pi->src_port = rd16(l4);
		pi->dst_port = rd16(l4 + 2);
		hlen = PKT_UDP_HLEN;
		break;
	case PKT_PROTO_ICMP:
		if (len < ICMP_HLEN)
			return PKT_E_ICMP;
		pi->icmp_type = l4[0];
		pi->icmp_code = l4[1];
		hlen = ICMP_HLEN;
		break;
	default:
		return PKT_OK;
	}
	pi->l4 = 1;
	pi->payload_off = off + hlen;
	pi->payload_len = len - hlen;
	return PKT_OK;
}

static enum pkt_error pkt_parse_ipv4(const uint8_t *ip, size_t len, size_t off,
				     struct pkt_info *pi)
{
	size_t ihl, total;
	uint16_t frag;

	if (len < PKT_IP_HLEN)
		return PKT_E_SHORT;
	if (ip[0] >> 4 != 4)
		return PKT_E_IP_VERSION;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	total = rd16(ip + 2);
	if (ihl < PKT_IP_HLEN)
		return PKT_E_IP_IHL;
	if (total > len)
		return PKT_E_IP_LEN;
	if (ihl > total)
		return PKT_E_IP_IHL;
	/* A correct header sums to zero with its own checksum in place. */
	if (pkt_csum(ip, ihl, 0) != 0)
		return PKT_E_IP_CSUM;
	frag = rd16(ip + 6);
	pi->proto = ip[9];
	pi->src_ip = rd32(ip + 12);
	pi->dst_ip = rd32(ip + 16);
	pi->ip_options = ihl > PKT_IP_HLEN;
	if (frag & (IP_MF | IP_OFFSET_MASK)) {
		pi->frag = 1;
		return PKT_OK;
	}
	return pkt_parse_l4(ip + ihl, total - ihl, off + ihl, pi);
}

enum pkt_error pkt_parse(const uint8_t *frame, size_t len, struct pkt_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	if (len < PKT_ETH_HLEN)
		return PKT_E_SHORT;
	memcpy(pi->dst_mac, frame, PKT_MAC_LEN);
	memcpy(pi->src_mac, frame + PKT_MAC_LEN, PKT_MAC_LEN);
	pi->ethertype = rd16(frame + 12);
	switch (pi->ethertype) {
	case PKT_ETHERTYPE_IPV4:
		return pkt_parse_ipv4(frame + PKT_ETH_HLEN, len - PKT_ETH_HLEN, PKT_ETH_HLEN, pi);
	case PKT_ETHERTYPE_ARP:
		return pkt_parse_arp(frame + PKT_ETH_HLEN, len - PKT_ETH_HLEN, pi);
	case PKT_ETHERTYPE_VLAN:
	case PKT_ETHERTYPE_QINQ:
		return PKT_E_VLAN;
	case PKT_ETHERTYPE_IPV6:
		return PKT_E_IPV6;
	default:
		return PKT_E_ETHERTYPE;
	}
}

size_t pkt_build_udp(uint8_t *out, size_t cap, const struct pkt_udp_addr *src,
		     const struct pkt_udp_addr *dst, const void *payload, size_t len)
{
	const size_t udp_len = PKT_UDP_HLEN + len, ip_len = PKT_IP_HLEN + udp_len;
	uint8_t *ip = out + PKT_ETH_HLEN, *udp = ip + PKT_IP_HLEN, pseudo[12];
	uint16_t sum;

	if (len > IP_MAX_LEN - PKT_IP_HLEN - PKT_UDP_HLEN || cap < PKT_ETH_HLEN + ip_len)
		return 0;
	memcpy(out, dst->mac, PKT_MAC_LEN);
	memcpy(out + PKT_MAC_LEN, src->mac, PKT_MAC_LEN);
	wr16(out + 12, PKT_ETHERTYPE_IPV4);

	memset(ip, 0, PKT_IP_HLEN);
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)ip_len);
	wr16(ip + 6, IP_DF);
	ip[8] = 64;
	ip[9] = PKT_PROTO_UDP;
	wr32(ip + 12, src->ip);
	wr32(ip + 16, dst->ip);
	wr16(ip + 10, pkt_csum(ip, PKT_IP_HLEN, 0));

	wr16(udp, src->port);
	wr16(udp + 2, dst->port);
	wr16(udp + 4, (uint16_t)udp_len);
	wr16(udp + 6, 0);
	memmove(udp + PKT_UDP_HLEN, payload, len);
	/* Pseudo-header, then the datagram; 0 is sent as 0xffff (0 means "no checksum"). */
	wr32(pseudo, src->ip);
	wr32(pseudo + 4, dst->ip);
	pseudo[8] = 0;
	pseudo[9] = PKT_PROTO_UDP;
	wr16(pseudo + 10, (uint16_t)udp_len);
	sum = (uint16_t)~pkt_csum(pseudo, sizeof(pseudo), 0);
	sum = pkt_csum(udp, udp_len, sum);
	wr16(udp + 6, sum ? sum : 0xffff);
	return PKT_ETH_HLEN + ip_len;
}

int pkt_ipv4_parse(const char *s, size_t len, uint32_t *ip)
{
	uint32_t val = 0;
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned octet = 0, digits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -EINVAL;
			i++;
		}
		while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			octet = octet * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		/* "0" alone is fine; "01" is not (octal in inet_aton). */
		if (digits == 0 || digits > 3 || octet > 255 || (digits > 1 && s[i - digits] == '0'))
			return -EINVAL;
		val = val << 8 | octet;
	}
	if (i != len)
		return -EINVAL;
	*ip = val;
	return 0;
}

char *pkt_ipv4_format(uint32_t ip, char *out)
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
	return out;
}
