/* Ethernet frames as the guest sends them: a strict parser for what the egress filter needs to
 * see (ARP, IPv4 with TCP, UDP, ICMP) and a builder for the UDP frames the VMM itself sends the
 * guest (answers from its DNS server). Addresses and ports are in host byte order throughout.
 *
 * What the parser accepts (anything else is an error, and the egress filter drops it):
 * - Ethernet II without an 802.1Q tag: the guest has no VLANs, and a tag the filter skipped
 *   would be a frame the host reads differently from us.
 * - ARP for IPv4 over Ethernet (htype 1, ptype 0x0800, 6 and 4 byte addresses), request or reply.
 * - IPv4 with a correct header checksum, IHL of 5 to 15 and a total length that covers the header
 *   and lies inside the frame; bytes after the total length are Ethernet padding and ignored.
 *   Fragments are reported (frag), but their layer-4 header is not parsed: only the first has
 *   one, and it may be cut anywhere. IP options are reported (ip_options), not interpreted.
 * - TCP with a data offset of 5 to 15 words inside the IP payload; UDP whose length field equals
 *   the IP payload; ICMP of at least its 8-byte header. Other IP protocols are reported with
 *   their number and no ports. Layer-4 checksums are the receiver's business and not checked.
 * IPv6 is an error of its own (PKT_E_IPV6): the guest is IPv4 only. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define PKT_MAC_LEN 6
#define PKT_ETH_HLEN 14
#define PKT_IP_HLEN 20  /* without options */
#define PKT_UDP_HLEN 8

#define PKT_ETHERTYPE_IPV4 0x0800
#define PKT_ETHERTYPE_ARP 0x0806
#define PKT_ETHERTYPE_VLAN 0x8100
#define PKT_ETHERTYPE_QINQ 0x88a8
#define PKT_ETHERTYPE_IPV6 0x86dd

#define PKT_PROTO_ICMP 1
#define PKT_PROTO_TCP 6
#define PKT_PROTO_UDP 17

#define PKT_ARP_REQUEST 1
#define PKT_ARP_REPLY 2

/* Why a frame was refused; 0 is "parsed". */
enum pkt_error {
	PKT_OK,
	PKT_E_SHORT,     /* shorter than a header it announces */
	PKT_E_VLAN,      /* 802.1Q or 802.1ad tag */
	PKT_E_IPV6,
	PKT_E_ETHERTYPE, /* neither IPv4 nor ARP (nor a length field: 802.3 frames) */
	PKT_E_ARP,       /* not IPv4-over-Ethernet ARP, or an unknown op */
	PKT_E_IP_VERSION,
	PKT_E_IP_IHL,    /* below 5 words, or beyond the total length */
	PKT_E_IP_LEN,    /* total length below the header or beyond the frame */
	PKT_E_IP_CSUM,
	PKT_E_TCP,       /* data offset below 5 words or beyond the segment */
	PKT_E_UDP,       /* length field not equal to the IP payload */
	PKT_E_ICMP,      /* shorter than the ICMP header */
	PKT_E_COUNT
};

struct pkt_info {
	uint8_t dst_mac[PKT_MAC_LEN], src_mac[PKT_MAC_LEN];
	uint16_t ethertype;     /* PKT_ETHERTYPE_IPV4 or PKT_ETHERTYPE_ARP after a successful parse */

	/* ARP: sender and target protocol addresses in src_ip/dst_ip, and these. */
	uint16_t arp_op;
	uint8_t arp_sha[PKT_MAC_LEN];

	/* IPv4. */
	uint32_t src_ip, dst_ip;
	uint8_t proto;      /* IP protocol number */
	uint8_t frag;       /* a fragment (MF set or a non-zero offset): no layer-4 fields */
	uint8_t ip_options; /* IHL above 5 */
	uint8_t l4;         /* the layer-4 header below was parsed (TCP, UDP or ICMP, not a fragment) */
	uint16_t src_port, dst_port; /* TCP and UDP */
	uint8_t tcp_flags;
	uint8_t icmp_type, icmp_code;
	/* The layer-4 payload (UDP data, TCP data, ICMP body after its 8 bytes) inside the frame:
	 * always payload_off + payload_len <= the frame's length. */
	size_t payload_off, payload_len;
};

/* Parses frame[0..len) into pi (which is zeroed first). Returns PKT_OK or why it was refused;
 * on an error the fields parsed so far are left in pi (for logging) and nothing else. */
enum pkt_error pkt_parse(const uint8_t *frame, size_t len, struct pkt_info *pi);
const char *pkt_error_name(enum pkt_error e);

/* The Internet checksum (RFC 1071) of buf, folded and complemented, continuing from `sum`
 * (0 to start). */
uint16_t pkt_csum(const void *buf, size_t len, uint32_t sum);

/* An Ethernet + IPv4 + UDP frame carrying payload, both checksums filled in, into out. Returns
 * the frame's length, or 0 when it does not fit in cap or would exceed an IPv4 datagram. */
struct pkt_udp_addr {
	uint8_t mac[PKT_MAC_LEN];
	uint32_t ip;
	uint16_t port;
};
size_t pkt_build_udp(uint8_t *out, size_t cap, const struct pkt_udp_addr *src,
		     const struct pkt_udp_addr *dst, const void *payload, size_t len);

/* "a.b.c.d" into host order. Exactly four decimal parts of 0 to 255 without leading zeros (no
 * octal or hex guesses), nothing before or after: -EINVAL otherwise. */
int pkt_ipv4_parse(const char *s, size_t len, uint32_t *ip);
/* Dotted quad of ip into out (at least 16 bytes). Returns out. */
char *pkt_ipv4_format(uint32_t ip, char *out);
