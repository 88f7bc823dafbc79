/* The packet parser of the TX path: well-formed frames of every kind it accepts, each one cut at
 * every length, broken length fields, and a few hundred thousand random and mutated frames. Every
 * input sits in a heap block of exactly its length, so ASan sees any read past it. The frames are
 * built here from the RFCs, independently of packet.c's builder, whose output is checked too. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/packet.h"
#include "testing.h"

static const uint8_t GUEST_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t GW_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe };
#define GUEST_IP 0x0a00020f /* 10.0.2.15 */
#define DST_IP 0xc6336407   /* 198.51.100.7 */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	return testing_rand(&rng_state);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* RFC 1071, written out again: the sum over 16-bit big-endian words, folded. */
static uint16_t ref_sum(const uint8_t *p, size_t len, uint32_t start)
{
	uint32_t s = start;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Ethernet + IPv4 header (IHL words) with the right checksum; l4len bytes of layer 4 follow. */
static size_t ip_frame(uint8_t *f, unsigned ihl_words, uint8_t proto, uint16_t frag,
		       size_t l4len)
{
	uint8_t *ip = f + 14;
	size_t ihl = ihl_words * 4;

	memcpy(f, GW_MAC, 6);
	memcpy(f + 6, GUEST_MAC, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, ihl);
	ip[0] = (uint8_t)(0x40 | ihl_words);
	put16(ip + 2, (uint16_t)(ihl + l4len));
	put16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, GUEST_IP);
	put32(ip + 16, DST_IP);
	for (size_t i = 20; i < ihl; i++)
		ip[i] = 1; /* NOP options */
	put16(ip + 10, (uint16_t)~ref_sum(ip, ihl, 0));
	return 14 + ihl + l4len;
}

static void ip_fix_csum(uint8_t *f)
{
	uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;

	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~ref_sum(ip, ihl, 0));
}

static size_t udp_frame(uint8_t *f, uint16_t dport, size_t payload)
{
	size_t len = ip_frame(f, 5, PKT_PROTO_UDP, 0x4000, 8 + payload);
	uint8_t *u = f + 34;

	put16(u, 40000);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + payload));
	put16(u + 6, 0);
	for (size_t i = 0; i < payload; i++)
		u[8 + i] = (uint8_t)i;
	return len;
}

static size_t tcp_frame(uint8_t *f, unsigned ihl_words, unsigned doff_words, size_t payload)
{
	size_t ihl = ihl_words * 4, hl = doff_words * 4;
	size_t len = ip_frame(f, ihl_words, PKT_PROTO_TCP, 0x4000, hl + payload);
	uint8_t *t = f + 14 + ihl;

	memset(t, 0, hl + payload);
	put16(t, 51000);
	put16(t + 2, 443);
	put32(t + 4, 12345);
	t[12] = (uint8_t)(doff_words << 4);
	t[13] = 0x02; /* SYN */
	for (size_t i = 20; i < hl; i++)
		t[i] = 1; /* NOP options */
	return len;
}

static size_t icmp_frame(uint8_t *f, size_t body)
{
	size_t len = ip_frame(f, 5, PKT_PROTO_ICMP, 0, 8 + body);

	memset(f + 34, 0, 8 + body);
	f[34] = 8; /* echo request */
	return len;
}

static size_t arp_frame(uint8_t *f, uint16_t op, uint32_t tpa)
{
	uint8_t *a = f + 14;

	memset(f, 0xff, 6);
	memcpy(f + 6, GUEST_MAC, 6);
	put16(f + 12, 0x0806);
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, GUEST_MAC, 6);
	put32(a + 14, GUEST_IP);
	memset(a + 18, 0, 6);
	put32(a + 24, tpa);
	return 42;
}

/* Parses a heap copy of exactly len bytes. */
static enum pkt_error parse_exact(const uint8_t *f, size_t len, struct pkt_info *pi)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum pkt_error e;

	memcpy(copy, f, len);
	e = pkt_parse(copy, len, pi);
	free(copy);
	return e;
}

static void test_csum(void)
{
	/* RFC 1071 section 3's example: the sum is ddf2, so the checksum is its complement. */
	static const uint8_t data[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint8_t odd[3] = { 0x12, 0x34, 0x56 };

	CHECK_EQ(pkt_csum(data, sizeof(data), 0), (uint16_t)~0xddf2);
	CHECK_EQ(pkt_csum(odd, 3, 0), (uint16_t)~ref_sum(odd, 3, 0));
	CHECK_EQ(pkt_csum(NULL, 0, 0), 0xffff);
}

static void test_valid(void)
{
	uint8_t f[2048] = { 0 };
	struct pkt_info pi;
	size_t len;

	len = udp_frame(f, 53, 30);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK_EQ(pi.ethertype, PKT_ETHERTYPE_IPV4);
	CHECK_EQ(pi.proto, PKT_PROTO_UDP);
	CHECK(memcmp(pi.src_mac, GUEST_MAC, 6) == 0 && memcmp(pi.dst_mac, GW_MAC, 6) == 0);
	CHECK_EQ(pi.src_ip, GUEST_IP);
	CHECK_EQ(pi.dst_ip, DST_IP);
	CHECK_EQ(pi.src_port, 40000);
	CHECK_EQ(pi.dst_port, 53);
	CHECK(pi.l4 && !pi.frag && !pi.ip_options);
	CHECK_EQ(pi.payload_off, 42);
	CHECK_EQ(pi.payload_len, 30);

	/* Ethernet padding after the datagram is ignored. */
	memset(f + len, 0xee, 20);
	CHECK_EQ(parse_exact(f, len + 20, &pi), PKT_OK);
	CHECK_EQ(pi.payload_len, 30);

	len = tcp_frame(f, 5, 5, 100);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK_EQ(pi.proto, PKT_PROTO_TCP);
	CHECK_EQ(pi.dst_port, 443);
	CHECK_EQ(pi.tcp_flags, 0x02);
	CHECK_EQ(pi.payload_off, 54);
	CHECK_EQ(pi.payload_len, 100);

	/* IP options and TCP options, both at their maximum size. */
	len = tcp_frame(f, 15, 15, 0);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK(pi.ip_options && pi.l4);
	CHECK_EQ(pi.payload_off, 14 + 60 + 60);
	CHECK_EQ(pi.payload_len, 0);

	len = icmp_frame(f, 56);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK_EQ(pi.proto, PKT_PROTO_ICMP);
	CHECK_EQ(pi.icmp_type, 8);
	CHECK_EQ(pi.dst_port, 0);
	CHECK_EQ(pi.payload_len, 56);

	/* Another IP protocol (GRE): addresses, no ports, no layer-4 parse. */
	len = ip_frame(f, 5, 47, 0, 4);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK_EQ(pi.proto, 47);
	CHECK(!pi.l4);
	CHECK_EQ(pi.dst_ip, DST_IP);

	len = arp_frame(f, PKT_ARP_REQUEST, 0x0a000202);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK_EQ(pi.ethertype, PKT_ETHERTYPE_ARP);
	CHECK_EQ(pi.arp_op, PKT_ARP_REQUEST);
	CHECK_EQ(pi.src_ip, GUEST_IP);
	CHECK_EQ(pi.dst_ip, 0x0a000202);
	CHECK(memcmp(pi.arp_sha, GUEST_MAC, 6) == 0);
	/* Padded to the 60-byte Ethernet minimum, as many stacks send it. */
	memset(f + len, 0, 18);
	CHECK_EQ(parse_exact(f, 60, &pi), PKT_OK);
	len = arp_frame(f, PKT_ARP_REPLY, 0x0a000202);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
}

/* Every proper prefix of a well-formed frame is refused. */
static void check_prefixes(const uint8_t *f, size_t len, const char *what)
{
	struct pkt_info pi;
	int failed = testing_failed;

	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	for (size_t cut = 0; cut < len; cut++) {
		enum pkt_error e = parse_exact(f, cut, &pi);

		CHECK(e != PKT_OK);
		if (e == PKT_OK)
			fprintf(stderr, "  %s accepted at %zu of %zu bytes\n", what, cut, len);
	}
	if (testing_failed != failed)
		fprintf(stderr, "  prefixes of %s\n", what);
}

static void test_truncation(void)
{
	uint8_t f[2048] = { 0 };

	check_prefixes(f, udp_frame(f, 53, 17), "udp");
	check_prefixes(f, udp_frame(f, 9, 0), "empty udp");
	check_prefixes(f, tcp_frame(f, 5, 5, 0), "tcp");
	check_prefixes(f, tcp_frame(f, 7, 10, 33), "tcp with options");
	check_prefixes(f, icmp_frame(f, 0), "icmp");
	check_prefixes(f, arp_frame(f, PKT_ARP_REQUEST, 1), "arp");
	check_prefixes(f, ip_frame(f, 5, 47, 0, 0), "bare ip");
}

static void test_bad_ip(void)
{
	uint8_t f[2048] = { 0 };
	struct pkt_info pi;
	size_t len;

	/* IHL 0 to 4 words: below the fixed header. */
	for (unsigned ihl = 0; ihl < 5; ihl++) {
		len = udp_frame(f, 53, 8);
		f[14] = (uint8_t)(0x40 | ihl);
		ip_fix_csum(f);
		CHECK_EQ(parse_exact(f, len, &pi), PKT_E_IP_IHL);
	}
	/* IHL beyond the total length (15 words, 36 bytes of datagram). */
	len = udp_frame(f, 53, 8);
	f[14] = 0x4f;
	memset(f + len, 0, 60);
	CHECK_EQ(parse_exact(f, len + 60, &pi), PKT_E_IP_IHL);
	/* Total length beyond the frame, by one and by a lot. */
	len = udp_frame(f, 53, 8);
	put16(f + 16, (uint16_t)(len - 14 + 1));
	ip_fix_csum(f);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_IP_LEN);
	put16(f + 16, 0xffff);
	ip_fix_csum(f);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_IP_LEN);
	/* Total length below the header. */
	put16(f + 16, 19);
	ip_fix_csum(f);
	CHECK(parse_exact(f, len, &pi) != PKT_OK);
	put16(f + 16, 0);
	ip_fix_csum(f);
	CHECK(parse_exact(f, len, &pi) != PKT_OK);
	/* Total length shorter than the frame is padding, and the UDP length must then follow. */
	len = udp_frame(f, 53, 8);
	put16(f + 16, (uint16_t)(len - 14 - 4));
	ip_fix_csum(f);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_UDP);
	/* Every single-bit flip of the header breaks the checksum (or the version/IHL first). */
	for (unsigned bit = 0; bit < 160; bit++) {
		len = udp_frame(f, 53, 8);
		if (bit / 8 == 10 || bit / 8 == 11)
			continue; /* flipping the checksum itself is covered by the others */
		f[14 + bit / 8] ^= (uint8_t)(1 << (bit % 8));
		CHECK(parse_exact(f, len, &pi) != PKT_OK);
	}
	len = udp_frame(f, 53, 8);
	f[24] ^= 1;
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_IP_CSUM);
	/* Version 6 (or anything but 4) in an IPv4 ethertype. */
	len = udp_frame(f, 53, 8);
	f[14] = 0x65;
	ip_fix_csum(f);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_IP_VERSION);
}

static void test_bad_l4(void)
{
	uint8_t f[2048] = { 0 };
	struct pkt_info pi;
	size_t len;

	/* TCP data offset below 5 words, and beyond the segment. */
	for (unsigned doff = 0; doff < 5; doff++) {
		len = tcp_frame(f, 5, 5, 10);
		f[34 + 12] = (uint8_t)(doff << 4);
		CHECK_EQ(parse_exact(f, len, &pi), PKT_E_TCP);
	}
	len = tcp_frame(f, 5, 5, 10);
	f[34 + 12] = 0xf0; /* 60 bytes of header in a 30-byte segment */
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_TCP);
	/* A TCP segment shorter than 20 bytes. */
	len = ip_frame(f, 5, PKT_PROTO_TCP, 0, 19);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_SHORT);

	/* UDP length field: smaller, larger, below the header, zero. */
	static const uint16_t bad_udp[] = { 15, 17, 7, 0, 0xffff };
	for (size_t i = 0; i < sizeof(bad_udp) / sizeof(bad_udp[0]); i++) {
		len = udp_frame(f, 53, 8);
		put16(f + 34 + 4, bad_udp[i]);
		CHECK_EQ(parse_exact(f, len, &pi), PKT_E_UDP);
	}
	len = ip_frame(f, 5, PKT_PROTO_UDP, 0, 7);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_SHORT);
	len = ip_frame(f, 5, PKT_PROTO_ICMP, 0, 7);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_ICMP);
}

static void test_fragments(void)
{
	uint8_t f[2048] = { 0 };
	struct pkt_info pi;
	size_t len;

	/* First fragment (MF): reported, its ports not read even though they are there. */
	len = udp_frame(f, 53, 8);
	put16(f + 20, 0x2000);
	ip_fix_csum(f);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK(pi.frag && !pi.l4);
	CHECK_EQ(pi.dst_port, 0);
	CHECK_EQ(pi.dst_ip, DST_IP);
	/* Later fragment: an offset, garbage where a header would be. */
	len = ip_frame(f, 5, PKT_PROTO_TCP, 0x0010, 3);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK(pi.frag && !pi.l4);
	/* Last fragment: offset, MF clear. DF alone is not a fragment. */
	len = ip_frame(f, 5, PKT_PROTO_UDP, 0x1fff, 0);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK(pi.frag);
	len = udp_frame(f, 53, 8);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK(!pi.frag);
}

static void test_ethertypes(void)
{
	uint8_t f[2048] = { 0 };
	struct pkt_info pi;
	size_t len = udp_frame(f, 53, 8);

	put16(f + 12, 0x8100);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_VLAN);
	put16(f + 12, 0x88a8);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_VLAN);
	put16(f + 12, 0x86dd);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_IPV6);
	put16(f + 12, 0x0040); /* an 802.3 length */
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_ETHERTYPE);
	put16(f + 12, 0x88cc); /* LLDP */
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_ETHERTYPE);

	/* ARP that is not IPv4 over Ethernet, or an op we do not know. */
	len = arp_frame(f, PKT_ARP_REQUEST, 1);
	put16(f + 14, 6);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_ARP);
	len = arp_frame(f, PKT_ARP_REQUEST, 1);
	put16(f + 16, 0x86dd);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_ARP);
	len = arp_frame(f, PKT_ARP_REQUEST, 1);
	f[18] = 8;
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_ARP);
	len = arp_frame(f, PKT_ARP_REQUEST, 1);
	f[19] = 16;
	CHECK_EQ(parse_exact(f, len, &pi), PKT_E_ARP);
	for (uint16_t op = 0; op < 10; op++) {
		len = arp_frame(f, op, 1);
		CHECK_EQ(parse_exact(f, len, &pi) == PKT_OK, op == 1 || op == 2);
	}
	for (int e = 0; e <= PKT_E_COUNT; e++)
		CHECK(pkt_error_name((enum pkt_error)e) != NULL);
}

/* Independent checks of a frame the parser accepted. */
static void check_accepted(const uint8_t *f, size_t len, const struct pkt_info *pi)
{
	CHECK(pi->payload_off + pi->payload_len <= len);
	if (pi->ethertype == PKT_ETHERTYPE_IPV4) {
		size_t ihl = (size_t)(f[14] & 0xf) * 4, total = (size_t)(f[16] << 8 | f[17]);

		CHECK(ihl >= 20 && ihl <= total && 14 + total <= len);
		CHECK_EQ(ref_sum(f + 14, ihl, 0), 0xffff);
		if (pi->l4)
			CHECK(pi->payload_off >= 14 + ihl + 8 && pi->payload_off <= 14 + total);
	} else {
		CHECK_EQ(pi->ethertype, PKT_ETHERTYPE_ARP);
		CHECK(len >= 42);
	}
}

static void test_fuzz(void)
{
	enum { ROUNDS = 300000 };
	uint8_t seed[6][2048], buf[2048];
	size_t seed_len[6];
	unsigned accepted = 0;
	struct pkt_info pi;

	seed_len[0] = udp_frame(seed[0], 53, 40);
	seed_len[1] = tcp_frame(seed[1], 6, 8, 64);
	seed_len[2] = icmp_frame(seed[2], 16);
	seed_len[3] = arp_frame(seed[3], PKT_ARP_REPLY, 0x0a000202);
	seed_len[4] = ip_frame(seed[4], 5, PKT_PROTO_UDP, 0x2000, 12);
	seed_len[5] = udp_frame(seed[5], 443, 1400);

	for (unsigned round = 0; round < ROUNDS; round++) {
		size_t len;

		if (round % 4 == 0) {
			/* Pure noise, with a plausible ethertype half the time. */
			len = rnd() % 200;
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd();
			if (len >= 14 && (rnd() & 1)) {
				put16(buf + 12, rnd() & 1 ? 0x0800 : 0x0806);
				buf[14] = (uint8_t)(0x40 | (rnd() & 0xf));
			}
		} else {
			/* A mutated real frame: flipped bytes, then a new length, sometimes with
			 * the IP checksum fixed so the mutation reaches the deeper layers. */
			unsigned s = rnd() % 6, flips = 1 + rnd() % 4;

			len = seed_len[s];
			memcpy(buf, seed[s], len);
			for (unsigned k = 0; k < flips; k++)
				buf[rnd() % len] = (uint8_t)rnd();
			if (rnd() % 3 == 0)
				len = rnd() % (seed_len[s] + 32);
			if (len >= 34 && seed[s][13] == 0x00 && (rnd() & 1) &&
			    (size_t)(buf[14] & 0xf) * 4 + 14 <= len)
				ip_fix_csum(buf);
		}
		if (parse_exact(buf, len, &pi) == PKT_OK) {
			accepted++;
			check_accepted(buf, len, &pi);
		}
	}
	/* The mutations must reach acceptance often, or the deep paths went untested. */
	CHECK(accepted > ROUNDS / 20);
	printf("fuzz: %u of %u frames accepted\n", accepted, ROUNDS);
}

static void test_build_udp(void)
{
	struct pkt_udp_addr src = { .ip = 0x0a000203, .port = 53 };
	struct pkt_udp_addr dst = { .ip = GUEST_IP, .port = 40000 };
	uint8_t payload[100], f[256], pseudo[12];
	struct pkt_info pi;
	size_t len;

	memcpy(src.mac, GW_MAC, 6);
	memcpy(dst.mac, GUEST_MAC, 6);
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 3);
	len = pkt_build_udp(f, sizeof(f), &src, &dst, payload, 99);
	CHECK_EQ(len, 14 + 20 + 8 + 99);
	CHECK_EQ(parse_exact(f, len, &pi), PKT_OK);
	CHECK(memcmp(pi.src_mac, GW_MAC, 6) == 0 && memcmp(pi.dst_mac, GUEST_MAC, 6) == 0);
	CHECK_EQ(pi.src_ip, 0x0a000203);
	CHECK_EQ(pi.dst_ip, GUEST_IP);
	CHECK_EQ(pi.src_port, 53);
	CHECK_EQ(pi.dst_port, 40000);
	CHECK_EQ(pi.payload_len, 99);
	CHECK(memcmp(f + pi.payload_off, payload, 99) == 0);
	/* The UDP checksum verifies over the pseudo-header (odd length included). */
	put32(pseudo, src.ip);
	put32(pseudo + 4, dst.ip);
	pseudo[8] = 0;
	pseudo[9] = 17;
	put16(pseudo + 10, 8 + 99);
	CHECK(f[40] != 0 || f[41] != 0);
	CHECK_EQ(ref_sum(f + 34, 8 + 99, ref_sum(pseudo, 12, 0)), 0xffff);
	/* Too small a buffer, and a payload no datagram can hold. */
	CHECK_EQ(pkt_build_udp(f, len - 1, &src, &dst, payload, 99), 0);
	CHECK_EQ(pkt_build_udp(f, sizeof(f), &src, &dst, payload, 65535 - 28 + 1), 0);
}

static void test_ipv4_strings(void)
{
	static const char *const bad[] = {
		"", "1", "1.2.3", "1.2.3.4.", ".1.2.3", "1..2.3", "256.1.1.1", "1.2.3.256",
		"01.2.3.4", "1.2.3.04", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "0x1.2.3.4", "1.2.3.4x",
		"1234.1.1.1", "1.2.3.4.5", "+1.2.3.4",
	};
	uint32_t ip = 7;
	char out[16];

	CHECK_EQ(pkt_ipv4_parse("10.0.2.15", 9, &ip), 0);
	CHECK_EQ(ip, GUEST_IP);
	CHECK_EQ(pkt_ipv4_parse("0.0.0.0", 7, &ip), 0);
	CHECK_EQ(ip, 0);
	CHECK_EQ(pkt_ipv4_parse("255.255.255.255", 15, &ip), 0);
	CHECK_EQ(ip, 0xffffffffu);
	/* The length bounds the parse: a longer string's prefix is a whole address. */
	CHECK_EQ(pkt_ipv4_parse("1.2.3.4/8", 7, &ip), 0);
	CHECK_EQ(ip, 0x01020304);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ip = 7;
		CHECK_EQ(pkt_ipv4_parse(bad[i], strlen(bad[i]), &ip), -EINVAL);
		CHECK_EQ(ip, 7);
	}
	CHECK(strcmp(pkt_ipv4_format(0xc0a80101, out), "192.168.1.1") == 0);
	CHECK(strcmp(pkt_ipv4_format(0xffffffff, out), "255.255.255.255") == 0);
}

int main(void)
{
	test_csum();
	test_valid();
	test_truncation();
	test_bad_ip();
	test_bad_l4();
	test_fragments();
	test_ethertypes();
	test_build_udp();
	test_ipv4_strings();
	test_fuzz();
	return TEST_SUMMARY();
}
