/* The egress policy: rule and domain syntax with bad inputs, decisions for every mode and kind of
 * frame, DNS admissions with TTL expiry and the in-use grace (time passed in), the admission table
 * against a reference model, the denial log ring and its wrap, and a policy replaced while
 * another thread decides packets. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "net/egress.h"
#include "net_frames.h"
#include "testing.h"

#define GUEST_IP 0x0a00020f    /* 10.0.2.15 */
#define GATEWAY_IP 0x0a000202  /* 10.0.2.2 */
#define RESOLVER_IP 0x0a000203 /* 10.0.2.3 */

static const uint8_t GUEST_MAC[6] = { 0x02, 0x53, 0x42, 0x58, 0x00, 0x01 };
static const uint8_t GW_MAC[6] = { 0x02, 0x53, 0x42, 0x58, 0x00, 0xfe };

static uint64_t rng_state = 0x6a09e667f3bcc909ULL;

static uint32_t rnd(void)
{
	return testing_rand(&rng_state);
}

static struct egress *new_egress(uint32_t grace_s, int admit_private)
{
	struct egress_config cfg = {
		.guest_ip = GUEST_IP,
		.gateway_ip = GATEWAY_IP,
		.resolver_ip = RESOLVER_IP,
		.ttl_min_s = 1,
		.ttl_max_s = 3600,
		.idle_grace_s = grace_s,
		.admit_private = admit_private,
		.quiet = 1,
	};
	struct egress *e = NULL;

	memcpy(cfg.guest_mac, GUEST_MAC, 6);
	CHECK_EQ(egress_new(&cfg, &e), 0);
	return e;
}

static struct egress_policy *policy(enum egress_mode mode, const char *const *entries)
{
	struct egress_policy *p = egress_policy_new(mode);

	CHECK(p != NULL);
	for (size_t i = 0; entries && entries[i]; i++)
		CHECK_EQ(egress_policy_add(p, entries[i]), 0);
	return p;
}

static struct nf_addr guest(uint16_t port)
{
	struct nf_addr a = { .ip = GUEST_IP, .port = port };

	memcpy(a.mac, GUEST_MAC, 6);
	return a;
}

static struct nf_addr dest(uint32_t ip, uint16_t port)
{
	struct nf_addr a = { .ip = ip, .port = port };

	memcpy(a.mac, GW_MAC, 6);
	return a;
}

/* A frame of kind 'u' (UDP), 't' (TCP SYN) or 'i' (ICMP) from the guest to ip:port. */
static size_t frame_to(uint8_t *f, char kind, uint32_t ip, uint16_t port)
{
	struct nf_addr s = guest(40000), d = dest(ip, port);

	switch (kind) {
	case 'u':
		return nf_udp(f, &s, &d, "hello", 5);
	case 't':
		return nf_tcp(f, &s, &d, 0x02);
	default:
		return nf_icmp(f, &s, &d);
	}
}

static enum egress_verdict check_to(struct egress *e, char kind, uint32_t ip, uint16_t port,
				    uint64_t now)
{
	uint8_t f[256];
	size_t len = frame_to(f, kind, ip, port);

	return egress_check(e, f, len, now);
}

/* The reason recorded for the last denial. */
static enum egress_reason last_reason(struct egress *e)
{
	struct egress_denial d[EGRESS_LOG_SIZE];
	uint64_t cursor = 0;
	size_t n = egress_log_read(e, &cursor, d, EGRESS_LOG_SIZE, NULL);

	return n ? (enum egress_reason)d[n - 1].reason : EGRESS_R_NONE;
}

#define EXPECT(e, kind, ip, port, now, verdict, reason)                                            \
	do {                                                                                       \
		uint64_t before_ = 0;                                                              \
		struct egress_stats st_;                                                           \
		egress_get_stats(e, &st_);                                                         \
		before_ = st_.denied;                                                              \
		CHECK_EQ(check_to(e, kind, ip, port, now), verdict);                               \
		egress_get_stats(e, &st_);                                                         \
		CHECK_EQ(st_.denied, before_ + ((verdict) == EGRESS_DENY));                        \
		if ((verdict) == EGRESS_DENY)                                                      \
			CHECK_EQ(last_reason(e), reason);                                          \
	} while (0)

static void test_cidr_syntax(void)
{
	static const struct {
		const char *s;
		uint32_t net;
		uint8_t prefix;
		uint16_t port;
	} good[] = {
		{ "10.0.0.0/8", 0x0a000000, 8, 0 },
		{ "192.168.1.5:8080", 0xc0a80105, 32, 8080 },
		{ "1.2.3.4/32:53", 0x01020304, 32, 53 },
		{ "0.0.0.0/0", 0, 0, 0 },
		{ "0.0.0.0/0:443", 0, 0, 443 },
		{ "255.255.255.255", 0xffffffff, 32, 0 },
		{ "1.2.3.4:65535", 0x01020304, 32, 65535 },
		{ "172.16.0.0/12:1", 0xac100000, 12, 1 },
	};
	static const char *const bad[] = {
		"", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1",
		"256.0.0.0", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4:0", "1.2.3.4:65536",
		"1.2.3.4:", "1.2.3.4:+80", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4/8:80x", "1.2.3.4::80",
		"1.2.3.4/32/32", "1.2.3.4:080", "1.2.3.4/32:99999999999", "1.2.3.4/3a", "/8", ":80",
		"1.2.3.4:80/32", "0x01.2.3.4",
	};
	uint32_t net;
	uint8_t prefix;
	uint16_t port;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ(egress_cidr_parse(good[i].s, &net, &prefix, &port), 0);
		CHECK_EQ(net, good[i].net);
		CHECK_EQ(prefix, good[i].prefix);
		CHECK_EQ(port, good[i].port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = egress_cidr_parse(bad[i], &net, &prefix, &port);

		CHECK_EQ(rc, -EINVAL);
		if (rc != -EINVAL)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
	}
}

static void test_domain_syntax(void)
{
	static const char *const bad[] = {
		"", ".", "*", "*.", "a..b", ".a", "ex ample.com", "example.com:443", "1.2.3",
		"*.*.example.com", "a*.example.com", "example.123", "exam/ple.com", "..", "a.b..",
		"*example.com", "é.com", "a.b.c\n",
	};
	char out[DNS_NAME_TEXT_MAX + 1], longname[300];
	int wild;

	CHECK_EQ(egress_domain_parse("example.com", out, &wild), 0);
	CHECK(strcmp(out, "example.com") == 0 && !wild);
	CHECK_EQ(egress_domain_parse("Example.COM.", out, &wild), 0);
	CHECK(strcmp(out, "example.com") == 0 && !wild);
	CHECK_EQ(egress_domain_parse("*.PyPI.org", out, &wild), 0);
	CHECK(strcmp(out, "pypi.org") == 0 && wild);
	CHECK_EQ(egress_domain_parse("_dmarc.a-b.example", out, &wild), 0);
	CHECK_EQ(egress_domain_parse("localhost", out, &wild), 0);
	CHECK_EQ(egress_domain_parse("1.2.3.example", out, &wild), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = egress_domain_parse(bad[i], out, &wild);

		CHECK_EQ(rc, -EINVAL);
		if (rc != -EINVAL)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
	}
	/* A 63-byte label is fine, 64 is not; 253 bytes of name are fine, 254 are not. */
	memset(longname, 'a', 63);
	strcpy(longname + 63, ".com");
	CHECK_EQ(egress_domain_parse(longname, out, &wild), 0);
	memset(longname, 'a', 64);
	strcpy(longname + 64, ".com");
	CHECK_EQ(egress_domain_parse(longname, out, &wild), -EINVAL);
	for (int extra = 0; extra < 2; extra++) {
		size_t n = 0;

		for (int l = 0; l < 3; l++) {
			memset(longname + n, 'b', 63);
			n += 63;
			longname[n++] = '.';
		}
		memset(longname + n, 'c', 61 + (size_t)extra);
		n += 61 + (size_t)extra;
		longname[n] = '\0';
		CHECK_EQ(strlen(longname), 253 + (size_t)extra);
		CHECK_EQ(egress_domain_parse(longname, out, &wild), extra ? -EINVAL : 0);
	}
}

static void test_policy_building(void)
{
	struct egress_policy *p;
	enum egress_mode m;
	char entry[32];

	CHECK_EQ(egress_mode_parse("none", &m), 0);
	CHECK_EQ(m, EGRESS_MODE_NONE);
	CHECK_EQ(egress_mode_parse("all", &m), 0);
	CHECK_EQ(m, EGRESS_MODE_ALL);
	CHECK_EQ(egress_mode_parse("allow", &m), 0);
	CHECK_EQ(m, EGRESS_MODE_ALLOW);
	CHECK_EQ(egress_mode_parse("ALL", &m), -EINVAL);
	CHECK_EQ(egress_mode_parse("", &m), -EINVAL);

	/* Entries only make sense in "allow". */
	p = egress_policy_new(EGRESS_MODE_ALL);
	CHECK_EQ(egress_policy_add(p, "10.0.0.0/8"), -EINVAL);
	egress_policy_free(p);
	p = egress_policy_new(EGRESS_MODE_ALLOW);
	CHECK_EQ(egress_policy_add(p, "10.0.0.0/33"), -EINVAL);
	CHECK_EQ(egress_policy_add(p, "example.com:443"), -EINVAL);
	CHECK_EQ(egress_policy_add(p, "1.2.3.4.5"), -EINVAL);
	for (int i = 0; i < EGRESS_MAX_RULES; i++) {
		snprintf(entry, sizeof(entry), "11.%d.%d.0/24", i / 256, i % 256);
		CHECK_EQ(egress_policy_add(p, entry), 0);
	}
	CHECK_EQ(egress_policy_add(p, "12.0.0.0/8"), -E2BIG);
	for (int i = 0; i < EGRESS_MAX_DOMAINS; i++) {
		snprintf(entry, sizeof(entry), "d%d.example", i);
		CHECK_EQ(egress_policy_add(p, entry), 0);
	}
	CHECK_EQ(egress_policy_add(p, "one-more.example"), -E2BIG);
	egress_policy_free(p);
	egress_policy_free(NULL);
	egress_free(NULL);
	for (int r = 0; r <= EGRESS_R_COUNT; r++)
		CHECK(egress_reason_name((enum egress_reason)r) != NULL);
}

static void test_bad_config(void)
{
	struct egress_config cfg = { .ttl_min_s = 100, .ttl_max_s = 10 };
	struct egress *e = (struct egress *)1;

	CHECK_EQ(egress_new(&cfg, &e), -EINVAL);
	CHECK(e == (struct egress *)1);
}

static void test_mode_none_and_all(void)
{
	struct egress *e = new_egress(0, 0);
	uint8_t f[256];
	size_t len;

	/* New: "none". Nothing at all leaves, ARP and DNS included. */
	EXPECT(e, 'u', 0x08080808, 53, 1, EGRESS_DENY, EGRESS_R_MODE_NONE);
	EXPECT(e, 'u', RESOLVER_IP, 53, 1, EGRESS_DENY, EGRESS_R_MODE_NONE);
	len = nf_arp(f, GUEST_MAC, GUEST_IP, GATEWAY_IP, 1);
	CHECK_EQ(egress_check(e, f, len, 1), EGRESS_DENY);
	CHECK(!egress_name_allowed(e, "example.com"));

	egress_set_policy(e, policy(EGRESS_MODE_ALL, NULL));
	EXPECT(e, 'u', 0x08080808, 53, 2, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', 0x5db8d822, 443, 2, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 'i', 0x01010101, 0, 2, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', GATEWAY_IP, 22, 2, EGRESS_PASS, EGRESS_R_NONE);
	/* Our DNS server takes UDP to the resolver in every mode but "none"; TCP DNS passes. */
	EXPECT(e, 'u', RESOLVER_IP, 53, 2, EGRESS_LOCAL, EGRESS_R_NONE);
	EXPECT(e, 't', RESOLVER_IP, 53, 2, EGRESS_PASS, EGRESS_R_NONE);
	CHECK(egress_name_allowed(e, "anything.example"));
	CHECK(!egress_name_allowed(e, ""));
	len = nf_arp(f, GUEST_MAC, GUEST_IP, 0x0a000299, 1);
	CHECK_EQ(egress_check(e, f, len, 2), EGRESS_PASS);
	/* Fragments pass in "all" (no port to check). */
	{
		struct nf_addr s = guest(1), d = dest(0x08080808, 1);

		len = nf_ip(f, &s, &d, 17, 0x2000, 5, 8);
		CHECK_EQ(egress_check(e, f, len, 2), EGRESS_PASS);
	}

	/* Whatever the mode: spoofed sources, IPv6, malformed frames. */
	{
		struct nf_addr s = guest(1), d = dest(0x08080808, 53);

		s.ip = GUEST_IP + 1;
		len = nf_udp(f, &s, &d, "x", 1);
		CHECK_EQ(egress_check(e, f, len, 3), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_SPOOFED);
		s = guest(1);
		s.mac[5] ^= 1;
		len = nf_udp(f, &s, &d, "x", 1);
		CHECK_EQ(egress_check(e, f, len, 3), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_SPOOFED);
		len = nf_arp(f, GUEST_MAC, GUEST_IP + 1, GATEWAY_IP, 1);
		CHECK_EQ(egress_check(e, f, len, 3), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_SPOOFED);
		len = nf_arp(f, GUEST_MAC, GUEST_IP, GATEWAY_IP, 1);
		f[14 + 8] ^= 1; /* sender hardware address */
		CHECK_EQ(egress_check(e, f, len, 3), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_SPOOFED);
		s = guest(1);
		len = nf_udp(f, &s, &d, "x", 1);
		nf_put16(f + 12, 0x86dd);
		CHECK_EQ(egress_check(e, f, len, 3), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_PROTOCOL);
		nf_put16(f + 12, 0x8100);
		CHECK_EQ(egress_check(e, f, len, 3), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_PROTOCOL);
		len = nf_udp(f, &s, &d, "x", 1);
		CHECK_EQ(egress_check(e, f, len - 1, 3), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_MALFORMED);
		CHECK_EQ(egress_check(e, f, 3, 3), EGRESS_DENY);
		CHECK_EQ(egress_check(e, f, 0, 3), EGRESS_DENY);
	}
	egress_free(e);
}

static void test_mode_allow(void)
{
	static const char *const entries[] = {
		"93.184.216.0/24", "1.1.1.1:443", "9.9.9.9/32:53", "10.0.2.2:8080",
		"example.com",     "*.pypi.org",  NULL,
	};
	struct egress *e = new_egress(0, 0);
	uint8_t f[256];
	size_t len;

	egress_set_policy(e, policy(EGRESS_MODE_ALLOW, entries));
	/* Portless rule: any protocol, any port, to the network. */
	EXPECT(e, 't', 0x5db8d822, 80, 1, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 'u', 0x5db8d8ff, 9999, 1, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 'i', 0x5db8d801, 0, 1, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', 0x5db8d922, 80, 1, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	/* Rule with a port: TCP and UDP to that port only, never ICMP. */
	EXPECT(e, 't', 0x01010101, 443, 1, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 'u', 0x01010101, 443, 1, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', 0x01010101, 80, 1, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	EXPECT(e, 'i', 0x01010101, 0, 1, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	EXPECT(e, 't', 0x01010102, 443, 1, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	EXPECT(e, 't', GATEWAY_IP, 8080, 1, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', GATEWAY_IP, 22, 1, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	/* DNS: ours over UDP; another server only by a rule naming port 53; never over TCP to
	 * ours; a portless rule does not open port 53. */
	EXPECT(e, 'u', RESOLVER_IP, 53, 1, EGRESS_LOCAL, EGRESS_R_NONE);
	EXPECT(e, 't', RESOLVER_IP, 53, 1, EGRESS_DENY, EGRESS_R_DNS);
	EXPECT(e, 'u', 0x08080808, 53, 1, EGRESS_DENY, EGRESS_R_DNS);
	EXPECT(e, 't', 0x08080808, 53, 1, EGRESS_DENY, EGRESS_R_DNS);
	EXPECT(e, 'u', 0x09090909, 53, 1, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 'u', 0x5db8d822, 53, 1, EGRESS_DENY, EGRESS_R_DNS);
	EXPECT(e, 'u', RESOLVER_IP, 5353, 1, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	/* DHCP is not used: broadcast to port 67 is just another destination. */
	EXPECT(e, 'u', 0xffffffff, 67, 1, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	/* ARP: for the gateway and the resolver only. */
	len = nf_arp(f, GUEST_MAC, GUEST_IP, GATEWAY_IP, 1);
	CHECK_EQ(egress_check(e, f, len, 1), EGRESS_PASS);
	len = nf_arp(f, GUEST_MAC, GUEST_IP, GATEWAY_IP, 2);
	CHECK_EQ(egress_check(e, f, len, 1), EGRESS_PASS);
	len = nf_arp(f, GUEST_MAC, GUEST_IP, RESOLVER_IP, 1);
	CHECK_EQ(egress_check(e, f, len, 1), EGRESS_PASS);
	len = nf_arp(f, GUEST_MAC, GUEST_IP, 0x0a000299, 1);
	CHECK_EQ(egress_check(e, f, len, 1), EGRESS_DENY);
	CHECK_EQ(last_reason(e), EGRESS_R_ARP);
	/* Fragments and IP options, even to an allowed network. */
	{
		struct nf_addr s = guest(1), d = dest(0x5db8d822, 80);

		len = nf_ip(f, &s, &d, 6, 0x2000, 5, 20);
		CHECK_EQ(egress_check(e, f, len, 1), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_FRAGMENT);
		len = nf_ip(f, &s, &d, 6, 0x0001, 5, 20);
		CHECK_EQ(egress_check(e, f, len, 1), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_FRAGMENT);
		len = nf_ip(f, &s, &d, 47, 0, 6, 4);
		CHECK_EQ(egress_check(e, f, len, 1), EGRESS_DENY);
		CHECK_EQ(last_reason(e), EGRESS_R_IP_OPTIONS);
		/* Another IP protocol to a portless rule's network: allowed. */
		len = nf_ip(f, &s, &d, 47, 0, 5, 4);
		CHECK_EQ(egress_check(e, f, len, 1), EGRESS_PASS);
	}

	/* Names. */
	CHECK(egress_name_allowed(e, "example.com"));
	CHECK(egress_name_allowed(e, "EXAMPLE.com."));
	CHECK(!egress_name_allowed(e, "www.example.com"));
	CHECK(!egress_name_allowed(e, "xexample.com"));
	CHECK(egress_name_allowed(e, "files.pypi.org"));
	CHECK(egress_name_allowed(e, "a.b.Pypi.ORG"));
	CHECK(!egress_name_allowed(e, "pypi.org"));
	CHECK(!egress_name_allowed(e, "xpypi.org"));
	CHECK(!egress_name_allowed(e, "pypi.org.evil.com"));
	CHECK(!egress_name_allowed(e, ".pypi.org"));
	CHECK(!egress_name_allowed(e, "."));
	CHECK(!egress_name_allowed(e, ""));
	egress_free(e);
}

static void test_admissions(void)
{
	static const char *const entries[] = { "*.pypi.org", "example.com", NULL };
	struct egress *e = new_egress(5, 0);
	const uint32_t cdn = 0x97650ddf; /* 151.101.13.223 */
	struct egress_stats st;

	egress_set_policy(e, policy(EGRESS_MODE_ALLOW, entries));
	EXPECT(e, 't', cdn, 443, 1000, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	/* Admitted for its TTL: 60 s from t=1 s. */
	CHECK_EQ(egress_admit(e, "files.pypi.org", cdn, 60, 1000), 1);
	EXPECT(e, 't', cdn, 443, 1000, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 'u', cdn, 4433, 1000, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 'i', cdn, 0, 30000, EGRESS_PASS, EGRESS_R_NONE);
	/* An admission does not open DNS to that address. */
	EXPECT(e, 'u', cdn, 53, 30000, EGRESS_DENY, EGRESS_R_DNS);
	/* In use near the end: kept 5 s past each packet. */
	EXPECT(e, 't', cdn, 443, 60000, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', cdn, 443, 64000, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', cdn, 443, 68999, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', cdn, 443, 73998, EGRESS_PASS, EGRESS_R_NONE);
	/* Idle past the grace: gone, and a denial does not bring it back. */
	EXPECT(e, 't', cdn, 443, 79000, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	EXPECT(e, 't', cdn, 443, 79001, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	/* Without traffic the TTL is all there is: live until its last millisecond. */
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d821, 10, 100000), 1);
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d822, 10, 100000), 1);
	EXPECT(e, 't', 0x5db8d821, 443, 109999, EGRESS_PASS, EGRESS_R_NONE);
	EXPECT(e, 't', 0x5db8d822, 443, 110000, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	/* TTL 0 takes the minimum (1 s here), a huge one the maximum (1 h). */
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d823, 0, 200000), 1);
	EXPECT(e, 't', 0x5db8d823, 443, 200999, EGRESS_PASS, EGRESS_R_NONE);
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d824, 0xffffffff, 200000), 1);
	CHECK_EQ(check_to(e, 't', 0x5db8d824, 443, 200000 + 3600000 - 1), EGRESS_PASS);
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d825, 0xffffffff, 200000), 1);
	CHECK_EQ(check_to(e, 't', 0x5db8d825, 443, 200000 + 3600000), EGRESS_DENY);
	/* A shorter TTL later does not cut a longer one short. */
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d826, 100, 300000), 1);
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d826, 1, 300000), 1);
	CHECK_EQ(check_to(e, 't', 0x5db8d826, 443, 350000), EGRESS_PASS);

	/* Not admitted: a name the policy does not allow, special addresses. */
	CHECK_EQ(egress_admit(e, "evil.com", 0x06060606, 60, 1000), 0);
	CHECK_EQ(egress_admit(e, "pypi.org", 0x06060606, 60, 1000), 0);
	EXPECT(e, 't', 0x06060606, 443, 1000, EGRESS_DENY, EGRESS_R_NOT_ALLOWED);
	static const uint32_t special[] = {
		0x0a000001, 0x7f000001, 0xa9fea9fe, 0xac100001, 0xac1fffff, 0xc0a80101, 0x00000000,
		0xe0000001, 0xffffffff, 0x64400001, 0xc6120001, 0xc0000001, GATEWAY_IP,
	};
	egress_get_stats(e, &st);
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		CHECK_EQ(egress_admit(e, "example.com", special[i], 60, 1000), 0);
		CHECK_EQ(check_to(e, 't', special[i], 443, 1000), EGRESS_DENY);
	}
	{
		struct egress_stats st2;

		egress_get_stats(e, &st2);
		CHECK_EQ(st2.refused_private,
			 st.refused_private + sizeof(special) / sizeof(special[0]));
	}
	/* Just outside the ranges: admitted. */
	CHECK_EQ(egress_admit(e, "example.com", 0xac200001, 60, 1000), 1);  /* 172.32.0.1 */
	CHECK_EQ(egress_admit(e, "example.com", 0x0b000001, 60, 1000), 1);  /* 11.0.0.1 */
	CHECK_EQ(egress_admit(e, "example.com", 0xa9ff0001, 60, 1000), 1);  /* 169.255.0.1 */
	egress_free(e);

	/* admit_private lets them in. */
	e = new_egress(0, 1);
	egress_set_policy(e, policy(EGRESS_MODE_ALLOW, entries));
	CHECK_EQ(egress_admit(e, "example.com", 0x0a000001, 60, 1000), 1);
	CHECK_EQ(check_to(e, 't', 0x0a000001, 443, 1000), EGRESS_PASS);
	/* Not in "all" or "none": nothing to admit for. */
	egress_set_policy(e, policy(EGRESS_MODE_ALL, NULL));
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d822, 60, 1000), 0);
	egress_get_stats(e, &st);
	CHECK_EQ(st.admitted_now, 0); /* the switch to "all" dropped the old admission */
	egress_free(e);
}

/* Replacing the policy keeps admissions whose name is still allowed and drops the others. */
static void test_policy_replacement(void)
{
	static const char *const both[] = { "*.pypi.org", "example.com", NULL };
	static const char *const one[] = { "*.pypi.org", "203.0.113.0/24", NULL };
	struct egress *e = new_egress(0, 0);
	struct egress_stats st;

	egress_set_policy(e, policy(EGRESS_MODE_ALLOW, both));
	CHECK_EQ(egress_admit(e, "files.pypi.org", 0x97650ddf, 600, 1000), 1);
	CHECK_EQ(egress_admit(e, "example.com", 0x5db8d822, 600, 1000), 1);
	/* One address serving both names. */
	CHECK_EQ(egress_admit(e, "example.com", 0x97650de0, 600, 1000), 1);
	CHECK_EQ(egress_admit(e, "x.pypi.org", 0x97650de0, 600, 1000), 1);
	egress_get_stats(e, &st);
	CHECK_EQ(st.admitted_now, 4);
	egress_set_policy(e, policy(EGRESS_MODE_ALLOW, one));
	egress_get_stats(e, &st);
	CHECK_EQ(st.admitted_now, 2);
	CHECK_EQ(check_to(e, 't', 0x97650ddf, 443, 2000), EGRESS_PASS);
	CHECK_EQ(check_to(e, 't', 0x5db8d822, 443, 2000), EGRESS_DENY);
	CHECK_EQ(check_to(e, 't', 0x97650de0, 443, 2000), EGRESS_PASS);
	CHECK_EQ(check_to(e, 't', 0xcb007101, 443, 2000), EGRESS_PASS);
	CHECK(!egress_name_allowed(e, "example.com"));
	egress_set_policy(e, policy(EGRESS_MODE_NONE, NULL));
	egress_get_stats(e, &st);
	CHECK_EQ(st.admitted_now, 0);
	CHECK_EQ(check_to(e, 't', 0x97650ddf, 443, 2000), EGRESS_DENY);
	egress_free(e);
}

/* The admission table against a plain reference: random admissions under two names, packets at
 * random addresses, the policy dropping one name now and then (deletions with backward shift),
 * more keys than the table holds (purges of expired entries when it is full). */
#define MODEL_IPS 1000
static uint64_t model_exp[2][MODEL_IPS];

static void test_admission_model(void)
{
	static const char *const two[] = { "*.a.example", "*.b.example", NULL };
	static const char *const only_a[] = { "*.a.example", NULL };
	static const char *const names[2] = { "x.a.example", "y.b.example" };
	struct egress *e = new_egress(1, 0);
	uint64_t now = 1000;
	int b_allowed = 1;
	unsigned passes = 0, denials = 0;
	struct egress_stats st;
	size_t max_seen = 0;

	memset(model_exp, 0, sizeof(model_exp));
	egress_set_policy(e, policy(EGRESS_MODE_ALLOW, two));
	for (unsigned step = 0; step < 60000; step++) {
		unsigned op = rnd() % 100, k = rnd() % MODEL_IPS;
		/* Public addresses spread over the hash: 20.x.y.z. */
		uint32_t ip = 0x14000000u | (k * 2654435u & 0xffffff);

		now += rnd() % 20;
		if (op < 40) {
			unsigned which = rnd() % 2, ttl = 1 + rnd() % 20;
			int want = which == 0 || b_allowed;

			CHECK_EQ(egress_admit(e, names[which], ip, ttl, now), want);
			if (want && model_exp[which][k] < now + ttl * 1000ULL)
				model_exp[which][k] = now + ttl * 1000ULL;
			egress_get_stats(e, &st);
			if (st.admitted_now > max_seen)
				max_seen = st.admitted_now;
		} else if (op < 99) {
			int live = model_exp[0][k] > now || model_exp[1][k] > now;
			enum egress_verdict v = check_to(e, 't', ip, 443, now);

			CHECK_EQ(v, live ? EGRESS_PASS : EGRESS_DENY);
			if (v != (live ? EGRESS_PASS : EGRESS_DENY))
				break;
			for (int w = 0; live && w < 2; w++)
				if (model_exp[w][k] > now && model_exp[w][k] < now + 1000)
					model_exp[w][k] = now + 1000;
			passes += live;
			denials += !live;
		} else {
			b_allowed = !b_allowed;
			egress_set_policy(e, policy(EGRESS_MODE_ALLOW, b_allowed ? two : only_a));
			if (!b_allowed)
				memset(model_exp[1], 0, sizeof(model_exp[1]));
		}
	}
	/* Both outcomes must have been common, and the table must have filled up (so purging
	 * expired entries ran), or the model checked little. */
	printf("admission model: %u passes, %u denials, table peak %zu\n", passes, denials,
	       max_seen);
	CHECK(passes > 5000 && denials > 5000);
	CHECK_EQ(max_seen, EGRESS_MAX_ADMITTED);
	egress_free(e);
}

/* A full table makes room: expired entries first, then the one expiring soonest. */
static void test_admission_limits(void)
{
	static const char *const entries[] = { "example.com", NULL };
	struct egress *e = new_egress(1, 0);
	struct egress_stats st;
	const uint32_t base = 0x14000000;

	egress_set_policy(e, policy(EGRESS_MODE_ALLOW, entries));
	for (uint32_t i = 0; i < EGRESS_MAX_ADMITTED; i++)
		CHECK_EQ(egress_admit(e, "example.com", base + i * 77, 100 + i, 1000), 1);
	egress_get_stats(e, &st);
	CHECK_EQ(st.admitted_now, EGRESS_MAX_ADMITTED);
	CHECK_EQ(egress_admit(e, "example.com", 0x15000000, 5000, 1000), 1);
	egress_get_stats(e, &st);
	CHECK_EQ(st.admitted_now, EGRESS_MAX_ADMITTED);
	CHECK_EQ(check_to(e, 't', base, 443, 2000), EGRESS_DENY);
	for (uint32_t i = 1; i < EGRESS_MAX_ADMITTED; i++)
		if (check_to(e, 't', base + i * 77, 443, 2000) != EGRESS_PASS) {
			CHECK(0);
			break;
		}
	CHECK_EQ(check_to(e, 't', 0x15000000, 443, 2000), EGRESS_PASS);
	/* Much later everything but the newest has expired: one admission purges them all. */
	CHECK_EQ(egress_admit(e, "example.com", 0x16000000, 10, 2000000), 1);
	egress_get_stats(e, &st);
	CHECK_EQ(st.admitted_now, 2);
	CHECK_EQ(check_to(e, 't', 0x15000000, 443, 2000000), EGRESS_PASS);
	CHECK_EQ(check_to(e, 't', 0x16000000, 443, 2000000), EGRESS_PASS);
	egress_free(e);
}

static void test_log(void)
{
	struct egress_denial d[EGRESS_LOG_SIZE + 10];
	struct egress *e = new_egress(0, 0);
	struct egress_stats st;
	uint64_t cursor = 0, lost = 99;
	size_t n;

	CHECK_EQ(egress_log_read(e, &cursor, d, 10, &lost), 0);
	CHECK_EQ(lost, 0);
	CHECK_EQ(cursor, 0);
	/* A denial's record: destination, protocol, reason, the time given. */
	CHECK_EQ(check_to(e, 'u', 0x08080404, 5353, 4242), EGRESS_DENY);
	CHECK_EQ(egress_log_read(e, &cursor, d, 10, &lost), 1);
	CHECK_EQ(d[0].seq, 0);
	CHECK_EQ(d[0].time_ms, 4242);
	CHECK_EQ(d[0].dst_ip, 0x08080404);
	CHECK_EQ(d[0].dst_port, 5353);
	CHECK_EQ(d[0].proto, 17);
	CHECK_EQ(d[0].ethertype, 0x0800);
	CHECK_EQ(d[0].reason, EGRESS_R_MODE_NONE);
	CHECK_EQ(d[0].name[0], '\0');
	CHECK_EQ(cursor, 1);
	egress_deny_name(e, "evil.example", 5000);
	CHECK_EQ(egress_log_read(e, &cursor, d, 10, &lost), 1);
	CHECK_EQ(d[0].reason, EGRESS_R_DNS_NAME);
	CHECK(strcmp(d[0].name, "evil.example") == 0);
	CHECK_EQ(d[0].dst_ip, RESOLVER_IP);
	CHECK_EQ(d[0].dst_port, 53);

	/* 300 more: the ring keeps the last 256; a reader behind learns how many it missed. */
	for (unsigned i = 0; i < 300; i++)
		check_to(e, 't', 0x08080000 + i, (uint16_t)(1000 + i), 6000 + i);
	cursor = 0;
	n = egress_log_read(e, &cursor, d, EGRESS_LOG_SIZE + 10, &lost);
	CHECK_EQ(n, EGRESS_LOG_SIZE);
	CHECK_EQ(lost, 302 - EGRESS_LOG_SIZE);
	CHECK_EQ(d[0].seq, 302 - EGRESS_LOG_SIZE);
	CHECK_EQ(d[n - 1].seq, 301);
	CHECK_EQ(d[n - 1].dst_ip, 0x08080000 + 299);
	CHECK_EQ(d[n - 1].dst_port, 1299);
	CHECK_EQ(d[n - 1].time_ms, 6299);
	for (size_t i = 1; i < n; i++)
		CHECK_EQ(d[i].seq, d[i - 1].seq + 1);
	CHECK_EQ(cursor, 302);
	CHECK_EQ(egress_log_read(e, &cursor, d, 10, &lost), 0);
	CHECK_EQ(lost, 0);
	/* Small reads walk forward without loss; a cursor from the future resets. */
	for (unsigned i = 0; i < 5; i++)
		check_to(e, 't', 0x09000000 + i, 1, 7000);
	CHECK_EQ(egress_log_read(e, &cursor, d, 2, &lost), 2);
	CHECK_EQ(d[0].seq, 302);
	CHECK_EQ(egress_log_read(e, &cursor, d, 2, NULL), 2);
	CHECK_EQ(d[1].seq, 305);
	CHECK_EQ(egress_log_read(e, &cursor, d, 2, &lost), 1);
	CHECK_EQ(cursor, 307);
	cursor = 1000000;
	CHECK_EQ(egress_log_read(e, &cursor, d, 2, &lost), 0);
	CHECK_EQ(cursor, 307);
	egress_get_stats(e, &st);
	CHECK_EQ(st.denied, 307);
	CHECK_EQ(st.by_reason[EGRESS_R_MODE_NONE], 306);
	CHECK_EQ(st.by_reason[EGRESS_R_DNS_NAME], 1);
	CHECK_EQ(st.passed, 0);
	egress_free(e);
}

/* The VMM's log lines are rate-limited; this only exercises the path (its output is stderr). */
static void test_log_lines(void)
{
	struct egress_config cfg = { .guest_ip = GUEST_IP };
	struct egress *e = NULL;

	CHECK_EQ(egress_new(&cfg, &e), 0);
	for (unsigned i = 0; i < 100; i++)
		check_to(e, 't', 0x08080808, 443, 1000 + i);
	egress_deny_name(e, "late.example", 2500);
	egress_free(e);
}

struct race {
	struct egress *e;
	int stop;
	unsigned checks;
	unsigned bad;
};

static void *race_checker(void *arg)
{
	struct race *r = arg;
	uint8_t f[256];
	size_t len = frame_to(f, 't', 0x01010101, 443);

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		enum egress_verdict v = egress_check(r->e, f, len, 1000);

		if (v != EGRESS_PASS && v != EGRESS_DENY)
			r->bad++;
		r->checks++;
	}
	return NULL;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	struct egress_denial d[64];
	uint64_t cursor = 0, lost, prev_seq = 0;
	int first = 1;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		size_t n = egress_log_read(r->e, &cursor, d, 64, &lost);

		for (size_t i = 0; i < n; i++) {
			if (!first && d[i].seq <= prev_seq)
				r->bad++;
			prev_seq = d[i].seq;
			first = 0;
		}
	}
	return NULL;
}

/* Policies replaced while another thread decides packets: every frame is judged by a whole
 * policy, old ones are freed safely (ASan), and the counters add up. */
static void test_concurrent_replacement(void)
{
	static const char *const allow[] = { "1.1.1.1:443", "*.example.com", NULL };
	struct race r = { .e = new_egress(0, 0) };
	struct egress_stats st;
	pthread_t checker, reader;

	CHECK_EQ(pthread_create(&checker, NULL, race_checker, &r), 0);
	CHECK_EQ(pthread_create(&reader, NULL, race_reader, &r), 0);
	for (int i = 0; i < 3000; i++) {
		switch (i % 3) {
		case 0:
			egress_set_policy(r.e, policy(EGRESS_MODE_ALLOW, allow));
			egress_admit(r.e, "a.example.com", 0x02020202, 60, 1000);
			break;
		case 1:
			egress_set_policy(r.e, policy(EGRESS_MODE_NONE, NULL));
			break;
		default:
			egress_set_policy(r.e, policy(EGRESS_MODE_ALL, NULL));
			break;
		}
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(checker, NULL);
	pthread_join(reader, NULL);
	egress_get_stats(r.e, &st);
	CHECK_EQ(r.bad, 0);
	CHECK(r.checks > 0);
	CHECK_EQ(st.passed + st.denied + st.local, r.checks);
	CHECK_EQ(st.by_reason[EGRESS_R_MODE_NONE], st.denied);
	egress_free(r.e);
}

int main(void)
{
	test_cidr_syntax();
	test_domain_syntax();
	test_policy_building();
	test_bad_config();
	test_mode_none_and_all();
	test_mode_allow();
	test_admissions();
	test_policy_replacement();
	test_admission_model();
	test_admission_limits();
	test_log();
	test_log_lines();
	test_concurrent_replacement();
	return TEST_SUMMARY();
}
