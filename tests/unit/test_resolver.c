/* The sandbox's DNS server logic: allowed names forwarded under a fresh id and answered with the
 * guest's id after their addresses were admitted; other names refused on the spot and recorded;
 * malformed queries, stray or forged upstream replies, timeouts, a full pending table, oversized
 * answers; every cut of a query frame and random upstream datagrams (ASan). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/resolver.h"
#include "net_frames.h"
#include "testing.h"

#define GUEST_IP 0x0a00020f
#define GATEWAY_IP 0x0a000202
#define RESOLVER_IP 0x0a000203

static const uint8_t GUEST_MAC[6] = { 0x02, 0x53, 0x42, 0x58, 0x00, 0x01 };
static const uint8_t GW_MAC[6] = { 0x02, 0x53, 0x42, 0x58, 0x00, 0xfe };

static uint64_t rng_state = 0xbb67ae8584caa73bULL;

static uint32_t rnd(void)
{
	return testing_rand(&rng_state);
}

struct env {
	struct egress *e;
	struct resolver *r;
	uint8_t out[RESOLVER_FRAME_MAX];
	size_t out_len;
};

static void env_init(struct env *v, const char *const *entries)
{
	struct egress_config cfg = {
		.guest_ip = GUEST_IP,
		.gateway_ip = GATEWAY_IP,
		.resolver_ip = RESOLVER_IP,
		.quiet = 1,
	};
	struct egress_policy *p = egress_policy_new(entries ? EGRESS_MODE_ALLOW : EGRESS_MODE_ALL);

	memset(v, 0, sizeof(*v));
	memcpy(cfg.guest_mac, GUEST_MAC, 6);
	CHECK_EQ(egress_new(&cfg, &v->e), 0);
	for (size_t i = 0; entries && entries[i]; i++)
		CHECK_EQ(egress_policy_add(p, entries[i]), 0);
	egress_set_policy(v->e, p);
	CHECK_EQ(resolver_new(v->e, &v->r), 0);
}

static void env_fini(struct env *v)
{
	resolver_free(v->r);
	egress_free(v->e);
}

/* The guest's query as a frame to the resolver, from port 40000. */
static size_t query_frame(uint8_t *f, uint16_t id, const char *name, int opt)
{
	struct nf_addr s = { .ip = GUEST_IP, .port = 40000 }, d = { .ip = RESOLVER_IP, .port = 53 };
	uint8_t m[600];
	size_t n = nf_dns_query(m, id, name, 1, opt);

	memcpy(s.mac, GUEST_MAC, 6);
	memcpy(d.mac, GW_MAC, 6);
	return nf_udp(f, &s, &d, m, n);
}

/* Checks a frame for the guest: from the resolver's MAC, IP and port 53, to the guest's port
 * 40000, checksums right. Returns the DNS message inside (and its length). */
static const uint8_t *guest_answer(const struct env *v, size_t *len)
{
	const uint8_t *f = v->out;

	CHECK(v->out_len >= 42 + 12);
	if (v->out_len < 42 + 12)
		return NULL;
	CHECK(memcmp(f, GUEST_MAC, 6) == 0);
	CHECK(memcmp(f + 6, GW_MAC, 6) == 0);
	CHECK_EQ(nf_get16(f + 12), 0x0800);
	CHECK_EQ(nf_sum(f + 14, 20, 0), 0xffff);
	CHECK_EQ(nf_get16(f + 16), v->out_len - 14);
	CHECK_EQ(f[23], 17);
	CHECK_EQ(nf_get16(f + 26) << 16 | nf_get16(f + 28), RESOLVER_IP);
	CHECK_EQ((uint32_t)(nf_get16(f + 30) << 16 | nf_get16(f + 32)), GUEST_IP);
	CHECK_EQ(nf_get16(f + 34), 53);
	CHECK_EQ(nf_get16(f + 36), 40000);
	CHECK(nf_udp_csum_ok(f, v->out_len));
	*len = v->out_len - 42;
	return f + 42;
}

static enum egress_verdict tcp_to(struct env *v, uint32_t ip, uint64_t now)
{
	struct nf_addr s = { .ip = GUEST_IP, .port = 50000 }, d = { .ip = ip, .port = 443 };
	uint8_t f[128];
	size_t len;

	memcpy(s.mac, GUEST_MAC, 6);
	memcpy(d.mac, GW_MAC, 6);
	len = nf_tcp(f, &s, &d, 0x02);
	return egress_check(v->e, f, len, now);
}

static void test_forward_and_answer(void)
{
	static const char *const entries[] = { "example.com", "*.pypi.org", NULL };
	const uint32_t ips[2] = { 0x5db8d822, 0x97650ddf };
	struct resolver_stats st;
	struct env v;
	uint8_t f[600], fwd[600], ans[600];
	size_t flen, fwd_len, ans_len, mlen;
	const uint8_t *m;
	uint16_t up_id;

	env_init(&v, entries);
	flen = query_frame(f, 0x1234, "Files.PyPI.org", 0);
	CHECK_EQ(egress_check(v.e, f, flen, 1000), EGRESS_LOCAL);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1000, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_FORWARD);
	/* Our own query: a new id, RD, the question as the guest wrote it, nothing else. */
	CHECK_EQ(v.out_len, flen - 42);
	memcpy(fwd, v.out, v.out_len);
	fwd_len = v.out_len;
	up_id = nf_get16(fwd);
	CHECK(memcmp(fwd + 2, f + 44, fwd_len - 2) == 0);
	CHECK(tcp_to(&v, ips[0], 1000) == EGRESS_DENY);

	/* The answer admits its addresses first, then goes to the guest with the guest's id. */
	ans_len = nf_dns_answer(ans, fwd, fwd_len, 0, ips, 2, 300);
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 1100, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_REPLY);
	m = guest_answer(&v, &mlen);
	CHECK_EQ(mlen, ans_len);
	if (m) {
		CHECK_EQ(nf_get16(m), 0x1234);
		CHECK(memcmp(m + 2, ans + 2, ans_len - 2) == 0);
	}
	CHECK_EQ(tcp_to(&v, ips[0], 1200), EGRESS_PASS);
	CHECK_EQ(tcp_to(&v, ips[1], 1200), EGRESS_PASS);
	/* TTL 300 s from 1.1 s, and the grace after the packet at 1.2 s: 301.2 s is the end. */
	CHECK_EQ(tcp_to(&v, ips[1], 1200 + EGRESS_IDLE_GRACE_S * 1000 - 1), EGRESS_PASS);
	CHECK_EQ(tcp_to(&v, ips[0], 1200 + EGRESS_IDLE_GRACE_S * 1000), EGRESS_DENY);
	/* The same answer again is stray now. */
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 1200, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	(void)up_id;

	/* EDNS: the guest's size travels (clamped); an NXDOMAIN from upstream passes unchanged. */
	flen = query_frame(f, 0x4321, "example.com", 4096);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 2000, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_FORWARD);
	CHECK_EQ(v.out_len, flen - 42);
	CHECK_EQ(nf_get16(v.out + v.out_len - 11 + 3), 1232);
	memcpy(fwd, v.out, v.out_len);
	ans_len = nf_dns_answer(ans, fwd, v.out_len, 3, NULL, 0, 0);
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 2100, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_REPLY);
	m = guest_answer(&v, &mlen);
	if (m) {
		CHECK_EQ(nf_get16(m), 0x4321);
		CHECK_EQ(m[3] & 0xf, 3);
	}
	resolver_get_stats(v.r, &st);
	CHECK_EQ(st.queries, 2);
	CHECK_EQ(st.forwarded, 2);
	CHECK_EQ(st.answered, 2);
	CHECK_EQ(st.refused, 0);
	env_fini(&v);
}

static void test_refused(void)
{
	static const char *const entries[] = { "example.com", NULL };
	struct egress_denial d[4];
	struct egress_stats est;
	struct resolver_stats st;
	uint64_t cursor = 0;
	struct env v;
	uint8_t f[600];
	const uint8_t *m;
	size_t flen, mlen;

	env_init(&v, entries);
	flen = query_frame(f, 0x9999, "www.example.com", 0);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 5000, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_REPLY);
	m = guest_answer(&v, &mlen);
	if (m) {
		CHECK_EQ(mlen, flen - 42);
		CHECK_EQ(nf_get16(m), 0x9999);
		CHECK_EQ(m[2], 0x81);
		CHECK_EQ(m[3], 0x83); /* RA, NXDOMAIN */
		CHECK(memcmp(m + 4, "\0\1\0\0\0\0\0\0", 8) == 0);
		CHECK(memcmp(m + 12, f + 42 + 12, mlen - 12) == 0);
	}
	/* Recorded as a denial, with the name. */
	CHECK_EQ(egress_log_read(v.e, &cursor, d, 4, NULL), 1);
	CHECK_EQ(d[0].reason, EGRESS_R_DNS_NAME);
	CHECK(strcmp(d[0].name, "www.example.com") == 0);
	CHECK_EQ(d[0].time_ms, 5000);
	egress_get_stats(v.e, &est);
	CHECK_EQ(est.by_reason[EGRESS_R_DNS_NAME], 1);

	/* A name with bytes outside the hostname set: refused in every mode. */
	{
		uint8_t q[64];
		size_t n = nf_dns_query(q, 1, "example.com", 1, 0);
		struct nf_addr s = { .ip = GUEST_IP, .port = 40000 },
			       dd = { .ip = RESOLVER_IP, .port = 53 };

		q[12 + 3] = '/';
		memcpy(s.mac, GUEST_MAC, 6);
		memcpy(dd.mac, GW_MAC, 6);
		flen = nf_udp(f, &s, &dd, q, n);
		CHECK_EQ(resolver_guest_frame(v.r, f, flen, 5000, v.out, sizeof(v.out), &v.out_len),
			 RESOLVER_REPLY);
		m = guest_answer(&v, &mlen);
		if (m)
			CHECK_EQ(m[3] & 0xf, 3);
	}
	resolver_get_stats(v.r, &st);
	CHECK_EQ(st.refused, 2);
	CHECK_EQ(st.forwarded, 0);
	env_fini(&v);
}

static void test_malformed_queries(void)
{
	struct resolver_stats st;
	struct env v;
	uint8_t f[600], q[600];
	const uint8_t *m;
	size_t flen, mlen, n;
	struct nf_addr s = { .ip = GUEST_IP, .port = 40000 }, d = { .ip = RESOLVER_IP, .port = 53 };

	memcpy(s.mac, GUEST_MAC, 6);
	memcpy(d.mac, GW_MAC, 6);
	env_init(&v, NULL);
	/* Opcode STATUS: NOTIMP, header only. */
	n = nf_dns_query(q, 0x0102, "example.com", 1, 0);
	q[2] |= 0x10;
	flen = nf_udp(f, &s, &d, q, n);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_REPLY);
	m = guest_answer(&v, &mlen);
	CHECK_EQ(mlen, 12);
	if (m) {
		CHECK_EQ(nf_get16(m), 0x0102);
		CHECK_EQ(m[3] & 0xf, 4);
	}
	/* A response sent to us, a runt, an empty datagram: nothing goes back. */
	n = nf_dns_query(q, 1, "example.com", 1, 0);
	q[2] |= 0x80;
	flen = nf_udp(f, &s, &d, q, n);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	CHECK_EQ(v.out_len, 0);
	flen = nf_udp(f, &s, &d, q, 11);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	flen = nf_udp(f, &s, &d, q, 0);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	/* Not a UDP datagram to port 53 at all; to a broadcast MAC (we would answer from it). */
	d.port = 54;
	n = nf_dns_query(q, 1, "example.com", 1, 0);
	flen = nf_udp(f, &s, &d, q, n);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	d.port = 53;
	memset(d.mac, 0xff, 6);
	flen = nf_udp(f, &s, &d, q, n);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	memcpy(d.mac, GW_MAC, 6);

	/* Every cut of a good query frame: dropped or answered with an error, never forwarded. */
	flen = query_frame(f, 0x0707, "cut.example.com", 1232);
	for (size_t cut = 0; cut < flen; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		enum resolver_action a;

		memcpy(copy, f, cut);
		a = resolver_guest_frame(v.r, copy, cut, 1, v.out, sizeof(v.out), &v.out_len);
		CHECK(a != RESOLVER_FORWARD);
		free(copy);
	}
	/* Well-formed frames carrying a cut message: answered with an error or dropped. */
	n = nf_dns_query(q, 0x0707, "cut.example.com", 1, 1232);
	for (size_t keep = 0; keep < n; keep++) {
		flen = nf_udp(f, &s, &d, q, keep);
		CHECK(resolver_guest_frame(v.r, f, flen, 1, v.out, sizeof(v.out), &v.out_len) !=
		      RESOLVER_FORWARD);
	}
	/* Too small an output buffer: nothing, not an overflow. */
	flen = query_frame(f, 0x0808, "example.com", 0);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1, v.out, 20, &v.out_len), RESOLVER_DROP);
	resolver_get_stats(v.r, &st);
	CHECK(st.dropped >= 5);
	CHECK(st.errors >= 1);
	env_fini(&v);
}

/* Upstream datagrams that do not answer what we asked leave the query pending. */
static void test_forged_replies(void)
{
	static const char *const entries[] = { "example.com", NULL };
	const uint32_t good = 0x5db8d822, evil = 0x06060606;
	struct env v;
	uint8_t f[600], fwd[600], ans[600];
	size_t flen, fwd_len, ans_len;

	env_init(&v, entries);
	flen = query_frame(f, 0x1111, "example.com", 0);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1000, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_FORWARD);
	memcpy(fwd, v.out, v.out_len);
	fwd_len = v.out_len;

	/* Wrong id. */
	ans_len = nf_dns_answer(ans, fwd, fwd_len, 0, &evil, 1, 60);
	nf_put16(ans, (uint16_t)(nf_get16(fwd) + 1));
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 1001, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	/* Right id, another question. */
	ans_len = nf_dns_answer(ans, fwd, fwd_len, 0, &evil, 1, 60);
	ans[12 + 1] = 'X';
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 1002, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	/* Right id and question, broken record. */
	ans_len = nf_dns_answer(ans, fwd, fwd_len, 0, &evil, 1, 60);
	ans[ans_len - 5] = 5;
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 1003, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	/* Short junk. */
	CHECK_EQ(resolver_upstream_reply(v.r, ans, 5, 1004, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	CHECK_EQ(tcp_to(&v, evil, 1005), EGRESS_DENY);
	/* The real answer still matches. */
	ans_len = nf_dns_answer(ans, fwd, fwd_len, 0, &good, 1, 60);
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 1006, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_REPLY);
	CHECK_EQ(tcp_to(&v, good, 1007), EGRESS_PASS);
	CHECK_EQ(tcp_to(&v, evil, 1007), EGRESS_DENY);

	/* A private address in an answer: passed on, not admitted. */
	flen = query_frame(f, 0x2222, "example.com", 0);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 2000, v.out, sizeof(v.out), &v.out_len),
		 RESOLVER_FORWARD);
	{
		const uint32_t priv = 0xa9fea9fe;

		ans_len = nf_dns_answer(ans, v.out, v.out_len, 0, &priv, 1, 60);
		CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 2001, v.out, sizeof(v.out),
						 &v.out_len),
			 RESOLVER_REPLY);
		CHECK_EQ(tcp_to(&v, priv, 2002), EGRESS_DENY);
	}
	env_fini(&v);
}

static void test_timeouts_and_limits(void)
{
	const uint32_t ip = 0x5db8d822;
	struct resolver_stats st;
	struct env v;
	uint8_t f[600], fwd[DNS_PENDING_MAX + 8][600], ans[2048];
	size_t flen, ans_len, mlen, fwd_len[DNS_PENDING_MAX + 8];
	char name[32];
	const uint8_t *m;

	env_init(&v, NULL);
	/* An answer after the timeout finds nothing. */
	flen = query_frame(f, 1, "slow.example", 0);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 1000, fwd[0], 600, &v.out_len),
		 RESOLVER_FORWARD);
	ans_len = nf_dns_answer(ans, fwd[0], v.out_len, 0, &ip, 1, 60);
	CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 1000 + DNS_PENDING_TIMEOUT_MS, v.out,
					 sizeof(v.out), &v.out_len),
		 RESOLVER_DROP);
	resolver_get_stats(v.r, &st);
	CHECK_EQ(st.expired, 1);

	/* More queries in flight than slots: the oldest give way; the newest all answer. */
	for (int i = 0; i < DNS_PENDING_MAX + 8; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		flen = query_frame(f, (uint16_t)(100 + i), name, 0);
		CHECK_EQ(resolver_guest_frame(v.r, f, flen, 2000 + (uint64_t)i, fwd[i], 600,
					      &fwd_len[i]),
			 RESOLVER_FORWARD);
	}
	resolver_get_stats(v.r, &st);
	CHECK_EQ(st.expired, 1 + 8);
	for (int i = 0; i < DNS_PENDING_MAX + 8; i++) {
		enum resolver_action a;

		ans_len = nf_dns_answer(ans, fwd[i], fwd_len[i], 0, &ip, 1, 60);
		a = resolver_upstream_reply(v.r, ans, ans_len, 3000, v.out, sizeof(v.out),
					    &v.out_len);
		CHECK_EQ(a, i < 8 ? RESOLVER_DROP : RESOLVER_REPLY);
		if (a == RESOLVER_REPLY) {
			m = guest_answer(&v, &mlen);
			if (m)
				CHECK_EQ(nf_get16(m), 100 + i);
		}
	}

	/* Larger than the guest can take (512 bytes without EDNS): SERVFAIL instead. */
	flen = query_frame(f, 0x0b0b, "big.example", 0);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 4000, fwd[0], 600, &v.out_len),
		 RESOLVER_FORWARD);
	{
		uint32_t many[40];

		for (int i = 0; i < 40; i++)
			many[i] = 0x5db8d800u + (uint32_t)i;
		ans_len = nf_dns_answer(ans, fwd[0], v.out_len, 0, many, 40, 60);
		CHECK(ans_len > 512);
		CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 4001, v.out, sizeof(v.out),
						 &v.out_len),
			 RESOLVER_REPLY);
		m = guest_answer(&v, &mlen);
		if (m) {
			CHECK_EQ(nf_get16(m), 0x0b0b);
			CHECK_EQ(m[3] & 0xf, 2);
			CHECK_EQ(mlen, flen - 42);
		}
	}
	/* With EDNS 1232 the same answer fits. */
	flen = query_frame(f, 0x0c0c, "big.example", 1232);
	CHECK_EQ(resolver_guest_frame(v.r, f, flen, 5000, fwd[0], 600, &v.out_len),
		 RESOLVER_FORWARD);
	{
		uint32_t many[40];

		for (int i = 0; i < 40; i++)
			many[i] = 0x5db8d800u + (uint32_t)i;
		ans_len = nf_dns_answer(ans, fwd[0], v.out_len, 0, many, 40, 60);
		CHECK_EQ(resolver_upstream_reply(v.r, ans, ans_len, 5001, v.out, sizeof(v.out),
						 &v.out_len),
			 RESOLVER_REPLY);
		m = guest_answer(&v, &mlen);
		CHECK_EQ(mlen, ans_len);
	}
	env_fini(&v);
}

/* Random upstream datagrams carrying a pending id: no crash, no admission of junk. */
static void test_fuzz_upstream(void)
{
	static const char *const entries[] = { "example.com", NULL };
	struct env v;
	uint8_t f[600], fwd[600], base[600], buf[700];
	size_t flen, fwd_len = 0, base_len = 0;
	unsigned replies = 0;
	const uint32_t ip = 0x5db8d822;

	env_init(&v, entries);
	for (unsigned round = 0; round < 50000; round++) {
		size_t len;
		uint8_t *copy;

		if (round % 64 == 0) {
			flen = query_frame(f, (uint16_t)round, "example.com", 0);
			resolver_guest_frame(v.r, f, flen, 1000, fwd, sizeof(fwd), &fwd_len);
			base_len = nf_dns_answer(base, fwd, fwd_len, 0, &ip, 1, 60);
		}
		if (round % 2) {
			len = rnd() % 200;
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd();
			if (len >= 2)
				memcpy(buf, fwd, 2);
		} else {
			unsigned flips = 1 + rnd() % 3;

			len = base_len;
			memcpy(buf, base, len);
			for (unsigned k = 0; k < flips; k++)
				buf[2 + rnd() % (len - 2)] = (uint8_t)rnd();
			if (rnd() % 4 == 0)
				len = rnd() % (base_len + 1);
		}
		copy = malloc(len ? len : 1);
		memcpy(copy, buf, len);
		if (resolver_upstream_reply(v.r, copy, len, 1000, v.out, sizeof(v.out),
					    &v.out_len) == RESOLVER_REPLY) {
			size_t mlen;

			replies++;
			CHECK(guest_answer(&v, &mlen) != NULL);
		}
		free(copy);
	}
	CHECK(replies > 0);
	env_fini(&v);
}

int main(void)
{
	test_forward_and_answer();
	test_refused();
	test_malformed_queries();
	test_forged_replies();
	test_timeouts_and_limits();
	test_fuzz_upstream();
	return TEST_SUMMARY();
}
