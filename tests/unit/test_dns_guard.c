/* The DNS guard's logic (what the trusted relay outside the VMM lets upstream and admits): only
 * allowed names go out, rebuilt under the guard's own ids; only an answer with a pending query's
 * id and question admits, and only public addresses (unless admit_private), TTLs clamped, the
 * VMM's id put back; forged, late, repeated and malformed datagrams admit nothing; a policy
 * change stops names at once; random input (ASan/UBSan). */
#define _GNU_SOURCE
#include <string.h>

#include "net/dns_guard.h"
#include "net_frames.h"
#include "testing.h"

#define PUBLIC_A 0xcb007107  /* 203.0.113.7 */
#define PUBLIC_B 0xc6336402  /* 198.51.100.2 */
#define PRIVATE 0x0a010203   /* 10.1.2.3 */

/* Installs p at now_ms; what it keeps in kept[0..*n] (if wanted). */
static enum dns_guard_change set_policy(struct dns_guard *g, struct egress_policy *p,
					uint64_t now_ms, struct dns_a *kept, size_t *n)
{
	struct dns_a out[DNS_GUARD_ADMITTED_MAX];
	size_t n_out;

	return dns_guard_set_policy(g, p, now_ms, kept ? kept : out, n ? n : &n_out);
}

static struct egress_policy *allow_list(const char *const *entries)
{
	struct egress_policy *p = egress_policy_new(EGRESS_MODE_ALLOW);

	for (size_t i = 0; entries[i]; i++)
		CHECK_EQ(egress_policy_add(p, entries[i]), 0);
	return p;
}

static struct dns_guard *guard(int admit_private, const char *const *entries)
{
	struct egress_policy *p = egress_policy_new(entries ? EGRESS_MODE_ALLOW : EGRESS_MODE_ALL);
	struct dns_guard *g = NULL;

	CHECK_EQ(dns_guard_new(admit_private, &g), 0);
	for (size_t i = 0; entries && entries[i]; i++)
		CHECK_EQ(egress_policy_add(p, entries[i]), 0);
	CHECK_EQ(set_policy(g, p, 0, NULL, NULL), DNS_GUARD_KEEP);
	return g;
}

/* The VMM's query for name under id, as the guard sends it upstream (in up, *up_len); 1 if it
 * went out. */
struct upstream {
	uint8_t msg[DNS_GUARD_QUERY_MAX];
	size_t len;
};

static int ask(struct dns_guard *g, uint16_t id, const char *name, uint64_t now,
	       struct upstream *up)
{
	uint8_t q[600];
	size_t qlen = nf_dns_query(q, id, name, 1, 0);

	return dns_guard_query(g, q, qlen, now, up->msg, sizeof(up->msg), &up->len);
}

static const char *const allow[] = { "example.com", "*.pythonhosted.org", "192.0.2.0/24",
				     NULL };

static void test_names(void)
{
	struct dns_guard *g = guard(0, allow);
	struct dns_guard_stats st;
	struct upstream up, up2;

	CHECK_EQ(ask(g, 1, "example.com", 0, &up), 1);
	/* Not the VMM's id: the guard's own, and a fresh one each time. */
	CHECK_EQ(ask(g, 1, "example.com", 0, &up2), 1);
	CHECK(nf_get16(up.msg) != nf_get16(up2.msg) || nf_get16(up.msg) != 1);
	CHECK_EQ(ask(g, 2, "EXAMPLE.com", 0, &up), 1);
	CHECK_EQ(ask(g, 3, "files.pythonhosted.org", 0, &up), 1);
	CHECK_EQ(ask(g, 4, "pythonhosted.org", 0, &up), 0);
	CHECK_EQ(ask(g, 5, "evil.com", 0, &up), 0);
	CHECK_EQ(ask(g, 6, "www.example.com", 0, &up), 0);
	/* An address entry is no name. */
	CHECK_EQ(ask(g, 7, "192.0.2.1", 0, &up), 0);
	dns_guard_get_stats(g, &st);
	CHECK_EQ(st.forwarded, 4);
	CHECK_EQ(st.refused, 4);
	dns_guard_free(g);
}

static void test_answers(int admit_private)
{
	struct dns_guard *g = guard(admit_private, allow);
	uint32_t ips[3] = { PUBLIC_A, PRIVATE, PUBLIC_B };
	struct dns_a a[DNS_MAX_A];
	struct upstream up;
	uint8_t ans[1200];
	size_t alen, n = 99;

	CHECK_EQ(ask(g, 0x4242, "example.com", 1000, &up), 1);
	alen = nf_dns_answer(ans, up.msg, up.len, 0, ips, 3, 5);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 1100, a, &n), 1);
	CHECK_EQ(nf_get16(ans), 0x4242); /* the VMM's id, back */
	CHECK_EQ(n, admit_private ? 3 : 2);
	CHECK_EQ(a[0].ip, PUBLIC_A);
	CHECK_EQ(a[0].ttl, EGRESS_TTL_MIN_S); /* 5 s is clamped up */
	CHECK_EQ(a[n - 1].ip, PUBLIC_B);
	/* Answered: the same datagram again admits nothing. */
	alen = nf_dns_answer(ans, up.msg, up.len, 0, ips, 3, 5);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 1200, a, &n), 0);
	CHECK_EQ(n, 0);
	/* A long TTL is clamped down. */
	CHECK_EQ(ask(g, 0x4242, "example.com", 2000, &up), 1);
	alen = nf_dns_answer(ans, up.msg, up.len, 0, ips, 1, 1u << 30);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 2100, a, &n), 1);
	CHECK_EQ(n, 1);
	CHECK_EQ(a[0].ttl, EGRESS_TTL_MAX_S);
	dns_guard_free(g);
}

/* Only the answer to the question asked, under the guard's id, in time. */
static void test_forged(void)
{
	struct dns_guard *g = guard(0, allow);
	uint32_t ip = PUBLIC_A;
	struct dns_a a[DNS_MAX_A];
	struct upstream up, other;
	uint8_t q[600], ans[1200];
	size_t qlen, alen, n;

	CHECK_EQ(ask(g, 0x1111, "example.com", 0, &up), 1);
	/* The VMM's id instead of the guard's. */
	qlen = nf_dns_query(q, 0x1111, "example.com", 1, 0);
	alen = nf_dns_answer(ans, q, qlen, 0, &ip, 1, 60);
	if (nf_get16(up.msg) != 0x1111)
		CHECK_EQ(dns_guard_reply(g, ans, alen, 10, a, &n), 0);
	/* The guard's id, another question (a name the guest was not allowed). */
	qlen = nf_dns_query(q, nf_get16(up.msg), "evil.com", 1, 0);
	alen = nf_dns_answer(ans, q, qlen, 0, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 20, a, &n), 0);
	CHECK_EQ(n, 0);
	/* The query still waits for its real answer. */
	alen = nf_dns_answer(ans, up.msg, up.len, 0, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 30, a, &n), 1);
	CHECK_EQ(n, 1);
	/* Too late. */
	CHECK_EQ(ask(g, 0x1111, "example.com", 100, &up), 1);
	alen = nf_dns_answer(ans, up.msg, up.len, 0, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 100 + DNS_PENDING_TIMEOUT_MS, a, &n), 0);
	/* Two queries with one VMM id: each answer matches its own question. */
	CHECK_EQ(ask(g, 0x2222, "example.com", 200, &up), 1);
	CHECK_EQ(ask(g, 0x2222, "files.pythonhosted.org", 210, &other), 1);
	alen = nf_dns_answer(ans, other.msg, other.len, 0, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 220, a, &n), 1);
	CHECK_EQ(nf_get16(ans), 0x2222);
	alen = nf_dns_answer(ans, up.msg, up.len, 0, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 230, a, &n), 1);
	/* An error answer admits nothing but is passed on. */
	CHECK_EQ(ask(g, 0x3333, "example.com", 300, &up), 1);
	alen = nf_dns_answer(ans, up.msg, up.len, 3, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 310, a, &n), 1);
	CHECK_EQ(n, 0);
	dns_guard_free(g);
}

/* A policy without the name refuses its queries, and admits nothing from an answer to one
 * asked before; "all" forwards every name and admits nothing (nothing needs admitting). */
static void test_policy_change(void)
{
	struct dns_guard *g = guard(0, allow);
	uint32_t ip = PUBLIC_A;
	struct dns_a a[DNS_MAX_A];
	struct upstream up;
	uint8_t ans[1200];
	size_t alen, n;

	CHECK_EQ(ask(g, 7, "example.com", 0, &up), 1);
	CHECK_EQ(set_policy(g, egress_policy_new(EGRESS_MODE_NONE), 5, NULL, NULL),
		 DNS_GUARD_KEEP); /* nothing was admitted: nothing to take back */
	alen = nf_dns_answer(ans, up.msg, up.len, 0, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 10, a, &n), 1);
	CHECK_EQ(n, 0);
	CHECK_EQ(ask(g, 7, "example.com", 20, &up), 0);
	CHECK_EQ(set_policy(g, egress_policy_new(EGRESS_MODE_ALL), 25, NULL, NULL),
		 DNS_GUARD_KEEP);
	CHECK_EQ(ask(g, 7, "example.com", 30, &up), 1);
	alen = nf_dns_answer(ans, up.msg, up.len, 0, &ip, 1, 60);
	CHECK_EQ(dns_guard_reply(g, ans, alen, 40, a, &n), 1);
	CHECK_EQ(n, 0);
	dns_guard_free(g);
}

/* The VMM asks for name and upstream answers with ips for ttl seconds, at now_ms: how many
 * addresses the guard admitted, -1 when the query or the answer was refused. */
static int answered(struct dns_guard *g, const char *name, uint64_t now_ms, const uint32_t *ips,
		    size_t n_ips, uint32_t ttl)
{
	struct dns_a a[DNS_MAX_A];
	struct upstream up;
	uint8_t ans[1200];
	size_t alen, n;

	if (!ask(g, 1, name, now_ms, &up))
		return -1;
	alen = nf_dns_answer(ans, up.msg, up.len, 0, ips, n_ips, ttl);
	return dns_guard_reply(g, ans, alen, now_ms, a, &n) ? (int)n : -1;
}

static const char *const both[] = { "example.com", "*.pythonhosted.org", NULL };

/* A guard that admitted A and B for example.com (600 s) and B for files.pythonhosted.org
 * (60 s), at 0. */
static struct dns_guard *guard_admitted(void)
{
	static const uint32_t ex[2] = { PUBLIC_A, PUBLIC_B }, py = PUBLIC_B;
	struct dns_guard *g = guard(0, both);

	CHECK_EQ(answered(g, "example.com", 0, ex, 2, 600), 2);
	CHECK_EQ(answered(g, "files.pythonhosted.org", 0, &py, 1, 60), 1);
	return g;
}

/* A name taken off the list: the sets are rebuilt with what names still allowed admitted, each
 * address once with its longest time left (an address the removed name admitted too stays);
 * an expired admission keeps only its idle grace (ttl 0). When the guard had to forget
 * admissions, it cannot tell: the sets are emptied. */
static void test_revoke(void)
{
	static const char *const one[] = { "*.pythonhosted.org", NULL };
	static const char *const other[] = { "example.com", NULL };
	struct dns_guard *g = guard_admitted();
	struct dns_a kept[DNS_GUARD_ADMITTED_MAX];
	size_t n;

	/* The same list again changes nothing. */
	CHECK_EQ(set_policy(g, allow_list(both), 1000, kept, &n), DNS_GUARD_KEEP);
	/* example.com goes: only B stays, for pythonhosted.org's 60 s, 10 of them gone. */
	CHECK_EQ(set_policy(g, allow_list(one), 10000, kept, &n), DNS_GUARD_REBUILD);
	CHECK_EQ(n, 1);
	CHECK_EQ(kept[0].ip, PUBLIC_B);
	CHECK_EQ(kept[0].ttl, 50);
	/* Past its TTL: it keeps only its idle grace. */
	CHECK_EQ(set_policy(g, allow_list(both), 120000, kept, &n), DNS_GUARD_KEEP);
	CHECK_EQ(set_policy(g, egress_policy_new(EGRESS_MODE_NONE), 130000, kept, &n),
		 DNS_GUARD_REBUILD);
	CHECK_EQ(n, 0);
	dns_guard_free(g);

	/* pythonhosted.org goes: A and B stay (example.com admitted both), B for 600 s now. */
	g = guard_admitted();
	CHECK_EQ(set_policy(g, allow_list(other), 0, kept, &n), DNS_GUARD_REBUILD);
	CHECK_EQ(n, 2);
	CHECK(kept[0].ttl == 600 && kept[1].ttl == 600);
	CHECK(kept[0].ip != kept[1].ip);
	dns_guard_free(g);

	/* More admissions than it remembers: a later revocation cannot be exact. */
	g = guard(0, both);
	for (uint32_t i = 0; i <= DNS_GUARD_ADMITTED_MAX; i++) {
		uint32_t ip = PUBLIC_A + i;

		CHECK_EQ(answered(g, "example.com", 0, &ip, 1, 60), 1);
	}
	CHECK_EQ(set_policy(g, allow_list(one), 0, kept, &n), DNS_GUARD_EMPTY);
	dns_guard_free(g);
}

static uint64_t rng_state = 0x6a09e667f3bcc908ULL;

static uint8_t rnd8(void)
{
	return (uint8_t)testing_rand(&rng_state);
}

/* Every cut of a query and an answer, a response posing as a query, and random datagrams both
 * ways: refused or dropped, never admitting, never crashing. */
static void test_malformed(void)
{
	struct dns_guard *g = guard(0, allow);
	uint32_t ip = PUBLIC_A;
	struct dns_a a[DNS_MAX_A];
	struct upstream up, junk_up;
	uint8_t q[600], ans[1200], cut[1200], junk[600];
	size_t qlen = nf_dns_query(q, 9, "example.com", 1, 1232), alen, n;
	int admitted = 0, forwarded = 0;

	for (size_t i = 0; i < qlen; i++)
		forwarded += dns_guard_query(g, q, i, 0, up.msg, sizeof(up.msg), &up.len);
	CHECK_EQ(forwarded, 0);
	CHECK_EQ(dns_guard_query(g, q, qlen, 0, up.msg, sizeof(up.msg), &up.len), 1);
	alen = nf_dns_answer(ans, up.msg, up.len, 0, &ip, 1, 60);
	/* A response is no query. */
	CHECK_EQ(dns_guard_query(g, ans, alen, 0, junk_up.msg, sizeof(junk_up.msg), &junk_up.len),
		 0);
	for (size_t i = 0; i < alen; i++) {
		memcpy(cut, ans, i);
		admitted += dns_guard_reply(g, cut, i, 0, a, &n) && n;
	}
	CHECK_EQ(admitted, 0);
	for (int i = 0; i < 20000; i++) {
		size_t len = rnd8() % sizeof(junk);

		for (size_t j = 0; j < len; j++)
			junk[j] = rnd8();
		/* Half with the pending id: the parser must do the rest. */
		if ((i & 1) && len >= 2)
			memcpy(junk, up.msg, 2);
		forwarded += dns_guard_query(g, junk, len, 0, junk_up.msg, sizeof(junk_up.msg),
					     &junk_up.len);
		admitted += dns_guard_reply(g, junk, len, 0, a, &n) && n;
	}
	CHECK_EQ(admitted, 0);
	printf("random queries let through: %d of 20000\n", forwarded);
	/* The real answer still works. */
	CHECK_EQ(dns_guard_reply(g, ans, alen, 0, a, &n), 1);
	CHECK_EQ(n, 1);
	dns_guard_free(g);
}

int main(void)
{
	test_names();
	test_answers(0);
	test_answers(1);
	test_forged();
	test_policy_change();
	test_revoke();
	test_malformed();
	return TEST_SUMMARY();
}
