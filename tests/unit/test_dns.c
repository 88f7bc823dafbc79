/* The DNS message code: name decompression against loops, forward and out-of-bounds pointers,
 * bad label lengths and overlong names; queries and replies cut at every byte; replies with
 * CNAME chains, bad records and mismatched questions; and a few hundred thousand random and
 * mutated messages. Every input sits in a heap block of exactly its length (ASan). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"
#include "testing.h"

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint32_t rnd(void)
{
	return testing_rand(&rng_state);
}

/* A message under construction. */
struct msg {
	uint8_t b[4096];
	size_t len;
};

static void m_u8(struct msg *m, uint8_t v)
{
	m->b[m->len++] = v;
}

static void m_u16(struct msg *m, uint16_t v)
{
	m_u8(m, (uint8_t)(v >> 8));
	m_u8(m, (uint8_t)v);
}

static void m_u32(struct msg *m, uint32_t v)
{
	m_u16(m, (uint16_t)(v >> 16));
	m_u16(m, (uint16_t)v);
}

static void m_hdr(struct msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
		  uint16_t ar)
{
	m->len = 0;
	m_u16(m, id);
	m_u16(m, flags);
	m_u16(m, qd);
	m_u16(m, an);
	m_u16(m, ns);
	m_u16(m, ar);
}

/* "a.b.c" as uncompressed labels with the zero label. Returns its offset. */
static size_t m_name(struct msg *m, const char *text)
{
	size_t at = m->len;

	while (*text) {
		const char *dot = strchr(text, '.');
		size_t n = dot ? (size_t)(dot - text) : strlen(text);

		m_u8(m, (uint8_t)n);
		memcpy(m->b + m->len, text, n);
		m->len += n;
		text += n + (dot ? 1 : 0);
	}
	m_u8(m, 0);
	return at;
}

static void m_ptr(struct msg *m, size_t target)
{
	m_u16(m, (uint16_t)(0xc000 | target));
}

static void m_query(struct msg *m, uint16_t id, const char *name, uint16_t qtype, int opt_size)
{
	m_hdr(m, id, 0x0100, 1, 0, 0, opt_size ? 1 : 0);
	m_name(m, name);
	m_u16(m, qtype);
	m_u16(m, DNS_CLASS_IN);
	if (opt_size) {
		m_u8(m, 0);
		m_u16(m, DNS_TYPE_OPT);
		m_u16(m, (uint16_t)opt_size);
		m_u32(m, 0);
		m_u16(m, 0);
	}
}

/* Header and question of a reply to `name`; answers follow with m_rr_*. */
static void m_reply(struct msg *m, uint16_t id, uint16_t rcode, const char *name, uint16_t an)
{
	m_hdr(m, id, (uint16_t)(0x8180 | rcode), 1, an, 0, 0);
	m_name(m, name);
	m_u16(m, DNS_TYPE_A);
	m_u16(m, DNS_CLASS_IN);
}

/* A record owned by a name at `owner` (a pointer) or written out (owner_text). */
static void m_owner(struct msg *m, size_t owner, const char *owner_text)
{
	if (owner_text)
		m_name(m, owner_text);
	else
		m_ptr(m, owner);
}

static void m_rr_a(struct msg *m, size_t owner, const char *owner_text, uint32_t ttl, uint32_t ip)
{
	m_owner(m, owner, owner_text);
	m_u16(m, DNS_TYPE_A);
	m_u16(m, DNS_CLASS_IN);
	m_u32(m, ttl);
	m_u16(m, 4);
	m_u32(m, ip);
}

/* A CNAME whose target is written out; returns the target's offset. */
static size_t m_rr_cname(struct msg *m, size_t owner, const char *owner_text, const char *target)
{
	size_t rdlen_at, at;

	m_owner(m, owner, owner_text);
	m_u16(m, DNS_TYPE_CNAME);
	m_u16(m, DNS_CLASS_IN);
	m_u32(m, 60);
	rdlen_at = m->len;
	m_u16(m, 0);
	at = m_name(m, target);
	m->b[rdlen_at] = (uint8_t)((m->len - at) >> 8);
	m->b[rdlen_at + 1] = (uint8_t)(m->len - at);
	return at;
}

/* Heap copies of exactly len bytes, so reading past the end is an ASan error. */
static int name_exact(const uint8_t *b, size_t len, size_t off, struct dns_name *n, size_t *next)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	memcpy(c, b, len);
	rc = dns_name_read(c, len, off, n, next);
	free(c);
	return rc;
}

static int query_exact(const uint8_t *b, size_t len, struct dns_query *q)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	memcpy(c, b, len);
	rc = dns_parse_query(c, len, q);
	free(c);
	return rc;
}

static int reply_exact(const uint8_t *b, size_t len, const struct dns_query *asked,
		       struct dns_reply *r)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	memcpy(c, b, len);
	rc = dns_parse_reply(c, len, asked, r);
	free(c);
	return rc;
}

static void test_names(void)
{
	struct msg m;
	struct dns_name n;
	size_t next = 0, a, b;

	/* Plain, then compressed: "www" + pointer to "example.com" earlier in the message. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	a = m_name(&m, "example.com");
	CHECK_EQ(name_exact(m.b, m.len, a, &n, &next), 0);
	CHECK(strcmp(n.text, "example.com") == 0);
	CHECK_EQ(n.wire_len, 13);
	CHECK_EQ(next, m.len);
	CHECK(!n.unsafe);
	b = m.len;
	m_u8(&m, 3);
	memcpy(m.b + m.len, "WwW", 3);
	m.len += 3;
	m_ptr(&m, a + 8); /* "com" */
	CHECK_EQ(name_exact(m.b, m.len, b, &n, &next), 0);
	CHECK(strcmp(n.text, "WwW.com") == 0);
	CHECK_EQ(next, m.len);
	CHECK(memcmp(n.wire, "\3WwW\3com\0", 9) == 0);
	CHECK_EQ(n.wire_len, 9);
	/* A pointer to a pointer, going back each time. */
	b = m.len;
	m_u8(&m, 1);
	m_u8(&m, 'x');
	m_ptr(&m, b - 2 - 4); /* the "WwW" name above, which itself points further back */
	CHECK_EQ(name_exact(m.b, m.len, b, &n, &next), 0);
	CHECK(strcmp(n.text, "x.WwW.com") == 0);

	/* The root name. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_u8(&m, 0);
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), 0);
	CHECK(strcmp(n.text, "") == 0);
	CHECK_EQ(n.wire_len, 1);
	CHECK_EQ(next, 13);

	/* Unsafe bytes: read, flagged, shown as '?' (a NUL byte cannot end the text early). */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_u8(&m, 4);
	memcpy(m.b + m.len, "a.\0b", 4);
	m.len += 4;
	m_u8(&m, 0);
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), 0);
	CHECK(n.unsafe);
	CHECK(strcmp(n.text, "a??b") == 0);
}

static void test_name_attacks(void)
{
	struct msg m;
	struct dns_name n;
	size_t next = 99, at;

	/* A pointer to itself. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_ptr(&m, 12);
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	/* Two pointers pointing at each other. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_ptr(&m, 14);
	m_ptr(&m, 12);
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	CHECK_EQ(name_exact(m.b, m.len, 14, &n, &next), -EINVAL);
	/* A label run that returns to its own start: each pointer lands before itself, yet the
	 * walk would cycle. The run starts at 12, so its pointer must target below 12. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_name(&m, "ab");
	m.len--; /* no zero label: the pointer follows */
	m_ptr(&m, 12);
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	/* A longer cycle through three runs. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_u8(&m, 1), m_u8(&m, 'a'), m_ptr(&m, 20);    /* 12: a -> 20 */
	m_u8(&m, 1), m_u8(&m, 'b'), m_ptr(&m, 12);    /* 16: b -> 12 */
	m_u8(&m, 1), m_u8(&m, 'c'), m_ptr(&m, 16);    /* 20: c -> 16 */
	CHECK_EQ(name_exact(m.b, m.len, 20, &n, &next), -EINVAL);
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	/* Forward pointers, even to a valid name. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_ptr(&m, 14);
	m_name(&m, "example.com");
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	/* Beyond the message, and into the header. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_name(&m, "a");
	m_ptr(&m, 0x3fff);
	CHECK_EQ(name_exact(m.b, m.len, 15, &n, &next), -EINVAL);
	m.len -= 2;
	m_ptr(&m, 4);
	CHECK_EQ(name_exact(m.b, m.len, 15, &n, &next), -EINVAL);
	/* A pointer cut in half at the end of the message. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_u8(&m, 0xc0);
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	/* Label types 0x40 and 0x80, i.e. lengths 64 to 191. */
	for (unsigned len = 64; len < 192; len++) {
		m_hdr(&m, 1, 0, 0, 0, 0, 0);
		m_u8(&m, (uint8_t)len);
		memset(m.b + m.len, 'a', 200);
		m.len += 200;
		m_u8(&m, 0);
		CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	}
	/* A label running past the end; a name with no end. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_u8(&m, 10);
	memcpy(m.b + m.len, "abc", 3);
	m.len += 3;
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_u8(&m, 3);
	memcpy(m.b + m.len, "abc", 3);
	m.len += 3;
	CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), -EINVAL);
	/* Offset at or past the end. */
	CHECK_EQ(name_exact(m.b, m.len, m.len, &n, &next), -EINVAL);
	CHECK_EQ(name_exact(m.b, m.len, m.len + 100, &n, &next), -EINVAL);
	CHECK_EQ(next, 99); /* untouched by failures */

	/* 255 bytes of wire name is the limit: 3 labels of 63 and one of 61 fit (253 chars of
	 * text), one byte more does not. */
	for (int extra = 0; extra < 2; extra++) {
		m_hdr(&m, 1, 0, 0, 0, 0, 0);
		for (int l = 0; l < 4; l++) {
			unsigned ll = l < 3 ? 63 : 61 + (unsigned)extra;

			m_u8(&m, (uint8_t)ll);
			memset(m.b + m.len, 'a' + l, ll);
			m.len += ll;
		}
		m_u8(&m, 0);
		CHECK_EQ(name_exact(m.b, m.len, 12, &n, &next), extra ? -EINVAL : 0);
		if (!extra) {
			CHECK_EQ(n.wire_len, 255);
			CHECK_EQ(strlen(n.text), 253);
		}
	}
	/* Too long only once decompressed: 200 bytes of labels pointing back to 100 more. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	at = m.len;
	for (int l = 0; l < 2; l++) {
		m_u8(&m, 49);
		memset(m.b + m.len, 'q', 49);
		m.len += 49;
	}
	m_u8(&m, 0);
	{
		size_t second = m.len;

		for (int l = 0; l < 4; l++) {
			m_u8(&m, 49);
			memset(m.b + m.len, 'r', 49);
			m.len += 49;
		}
		m_ptr(&m, at);
		CHECK_EQ(name_exact(m.b, m.len, at, &n, &next), 0);
		CHECK_EQ(name_exact(m.b, m.len, second, &n, &next), -EINVAL);
	}
	/* A long chain of pointers, each two bytes back: bounded work, then a valid name. */
	m_hdr(&m, 1, 0, 0, 0, 0, 0);
	m_name(&m, "z");
	at = 12;
	for (int i = 0; i < 1000; i++) {
		size_t here = m.len;

		m_ptr(&m, at);
		at = here;
	}
	CHECK_EQ(name_exact(m.b, m.len, at, &n, &next), 0);
	CHECK(strcmp(n.text, "z") == 0);
	CHECK_EQ(next, at + 2);
	CHECK(dns_name_equal("ExAmPle.COM", "example.com"));
	CHECK(!dns_name_equal("example.co", "example.com"));
	CHECK(!dns_name_equal("example.com", "example.co"));
}

static void test_query(void)
{
	struct msg m;
	struct dns_query q;

	m_query(&m, 0xbeef, "Files.PythonHosted.org", DNS_TYPE_A, 0);
	CHECK_EQ(query_exact(m.b, m.len, &q), 0);
	CHECK_EQ(q.id, 0xbeef);
	CHECK(q.has_question);
	CHECK(strcmp(q.name.text, "Files.PythonHosted.org") == 0);
	CHECK_EQ(q.qtype, DNS_TYPE_A);
	CHECK_EQ(q.qclass, DNS_CLASS_IN);
	CHECK_EQ(q.edns_size, 0);
	/* Every cut is refused: nothing below a header, FORMERR above. */
	for (size_t cut = 0; cut < m.len; cut++) {
		int rc = query_exact(m.b, cut, &q);

		CHECK_EQ(rc, cut < 12 ? -EINVAL : DNS_RCODE_FORMERR);
	}

	m_query(&m, 7, "example.com", 28, 4096);
	CHECK_EQ(query_exact(m.b, m.len, &q), 0);
	CHECK_EQ(q.edns_size, 4096);
	CHECK_EQ(q.qtype, 28);
	for (size_t cut = 12; cut < m.len; cut++)
		CHECK_EQ(query_exact(m.b, cut, &q), DNS_RCODE_FORMERR);
	m_query(&m, 7, "example.com", 1, 100);
	CHECK_EQ(query_exact(m.b, m.len, &q), 0);
	CHECK_EQ(q.edns_size, 512);

	/* A response is never answered; other opcodes, counts and classes get an rcode. */
	m_query(&m, 7, "example.com", 1, 0);
	m.b[2] |= 0x80;
	CHECK_EQ(query_exact(m.b, m.len, &q), -EINVAL);
	m_query(&m, 7, "example.com", 1, 0);
	m.b[2] |= 0x10; /* opcode 2, STATUS */
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_NOTIMP);
	CHECK_EQ(q.id, 7);
	CHECK(!q.has_question);
	for (int field = 4; field <= 10; field += 2) {
		m_query(&m, 7, "example.com", 1, 0);
		m.b[field + 1] = field == 4 ? 2 : (field == 10 ? 2 : 1);
		CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_FORMERR);
	}
	m_query(&m, 7, "example.com", 1, 0);
	m.b[5] = 0;
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_FORMERR);
	m_query(&m, 7, "example.com", 1, 0);
	m.b[m.len - 1] = 3; /* class CH */
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_REFUSED);
	/* A trailing byte. */
	m_query(&m, 7, "example.com", 1, 0);
	m_u8(&m, 0);
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_FORMERR);
	/* An additional record that is not OPT, an OPT with a non-root owner, an OPT whose data
	 * runs past the end. */
	m_query(&m, 7, "example.com", 1, 1232);
	m.b[m.len - 10] = 0; /* the OPT's type becomes A */
	m.b[m.len - 9] = 1;
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_FORMERR);
	m_query(&m, 7, "example.com", 1, 0);
	m.b[11] = 1;
	m_name(&m, "x");
	m_u16(&m, DNS_TYPE_OPT);
	m_u16(&m, 512);
	m_u32(&m, 0);
	m_u16(&m, 0);
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_FORMERR);
	m_query(&m, 7, "example.com", 1, 1232);
	m.b[m.len - 1] = 4;
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_FORMERR);
	m_u32(&m, 0);
	CHECK_EQ(query_exact(m.b, m.len, &q), 0);
	/* A question name pointing into the header. */
	m_hdr(&m, 7, 0x0100, 1, 0, 0, 0);
	m_ptr(&m, 0);
	m_u16(&m, 1);
	m_u16(&m, 1);
	CHECK_EQ(query_exact(m.b, m.len, &q), DNS_RCODE_FORMERR);
}

static void test_build(void)
{
	struct msg m;
	struct dns_query q, back;
	uint8_t out[600];
	size_t n;

	m_query(&m, 0x1234, "Api.Example.com", DNS_TYPE_A, 0);
	CHECK_EQ(dns_parse_query(m.b, m.len, &q), 0);
	n = dns_build_error(&q, DNS_RCODE_NXDOMAIN, out, sizeof(out));
	CHECK_EQ(n, m.len);
	CHECK_EQ(out[0], 0x12);
	CHECK_EQ(out[1], 0x34);
	CHECK_EQ(out[2], 0x81); /* QR, RD */
	CHECK_EQ(out[3], 0x83); /* RA, NXDOMAIN */
	CHECK(memcmp(out + 4, "\0\1\0\0\0\0\0\0", 8) == 0);
	CHECK(memcmp(out + 12, m.b + 12, m.len - 12) == 0); /* the question, case and all */
	CHECK_EQ(dns_build_error(&q, DNS_RCODE_NXDOMAIN, out, m.len - 1), 0);

	/* Header only, for a query whose question could not be read. */
	m_query(&m, 0x5555, "example.com", 1, 0);
	m.b[5] = 2;
	CHECK_EQ(dns_parse_query(m.b, m.len, &q), DNS_RCODE_FORMERR);
	n = dns_build_error(&q, DNS_RCODE_FORMERR, out, sizeof(out));
	CHECK_EQ(n, 12);
	CHECK_EQ(out[3], 0x81);
	CHECK_EQ(out[5], 0);
	CHECK_EQ(dns_build_query(&q, 1, out, sizeof(out)), 0);

	/* The forwarded query: our id, RD, the question as written, and an OPT only if the guest
	 * sent one (its size clamped). */
	m_query(&m, 0x1111, "Api.Example.com", DNS_TYPE_A, 0);
	CHECK_EQ(dns_parse_query(m.b, m.len, &q), 0);
	n = dns_build_query(&q, 0xabcd, out, sizeof(out));
	CHECK_EQ(n, m.len);
	CHECK_EQ(out[0], 0xab);
	CHECK_EQ(out[1], 0xcd);
	CHECK(memcmp(out + 2, m.b + 2, m.len - 2) == 0);
	CHECK_EQ(dns_parse_query(out, n, &back), 0);
	CHECK(strcmp(back.name.text, "Api.Example.com") == 0);
	m_query(&m, 0x1111, "example.com", DNS_TYPE_A, 65000);
	CHECK_EQ(dns_parse_query(m.b, m.len, &q), 0);
	n = dns_build_query(&q, 2, out, sizeof(out));
	CHECK_EQ(dns_parse_query(out, n, &back), 0);
	CHECK_EQ(back.edns_size, DNS_UDP_EDNS_MAX);
	CHECK_EQ(dns_build_query(&q, 2, out, n - 1), 0);
	CHECK_EQ(dns_build_query(&q, 2, out, 5), 0);

	dns_set_id(out, n, 0x4242);
	CHECK_EQ(out[0], 0x42);
	out[0] = 9;
	dns_set_id(out, 11, 0x4242);
	CHECK_EQ(out[0], 9);
}

static struct dns_query asked_for(const char *name, uint16_t id)
{
	struct msg m;
	struct dns_query q;

	m_query(&m, id, name, DNS_TYPE_A, 0);
	CHECK_EQ(dns_parse_query(m.b, m.len, &q), 0);
	return q;
}

static void test_reply(void)
{
	struct dns_query q = asked_for("www.example.com", 0x7777);
	struct dns_reply r;
	struct msg m;
	size_t c1, c2;

	/* Two A records for the name (compressed owner), one for another name (not taken). */
	m_reply(&m, 0x7777, 0, "WWW.example.com", 3);
	m_rr_a(&m, 12, NULL, 300, 0x5db8d822);
	m_rr_a(&m, 0, "other.example.com", 300, 0x01020304);
	m_rr_a(&m, 12, NULL, 0x80000001, 0x5db8d823);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), 0);
	CHECK_EQ(r.id, 0x7777);
	CHECK_EQ(r.rcode, 0);
	CHECK_EQ(r.n_a, 2);
	CHECK_EQ(r.a[0].ip, 0x5db8d822);
	CHECK_EQ(r.a[0].ttl, 300);
	CHECK_EQ(r.a[1].ip, 0x5db8d823);
	CHECK_EQ(r.a[1].ttl, 0); /* top bit set */
	/* Cut anywhere: refused, nothing returned. */
	for (size_t cut = 0; cut < m.len; cut++) {
		CHECK_EQ(reply_exact(m.b, cut, &q, &r), -EINVAL);
		CHECK_EQ(r.n_a, 0);
	}

	/* A CNAME chain given backwards: www -> edge.cdn.net -> e1.cdn.net, A for e1. */
	m_reply(&m, 0x7777, 0, "www.example.com", 4);
	m_rr_a(&m, 0, "e1.cdn.net", 20, 0x0b0b0b0b);
	m_rr_a(&m, 0, "unrelated.net", 20, 0x0c0c0c0c);
	c1 = m_rr_cname(&m, 12, NULL, "edge.cdn.net");
	c2 = m_rr_cname(&m, c1, NULL, "e1.cdn.net");
	(void)c2;
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), 0);
	CHECK_EQ(r.n_a, 1);
	CHECK_EQ(r.a[0].ip, 0x0b0b0b0b);
	for (size_t cut = 0; cut < m.len; cut++)
		CHECK_EQ(reply_exact(m.b, cut, &q, &r), -EINVAL);

	/* A CNAME loop ends; a chain longer than the hop limit stops at the limit. */
	m_reply(&m, 0x7777, 0, "www.example.com", 3);
	c1 = m_rr_cname(&m, 12, NULL, "a.net");
	m_rr_cname(&m, c1, NULL, "www.example.com");
	m_rr_a(&m, c1, NULL, 5, 0x0d0d0d0d);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), 0);
	CHECK_EQ(r.n_a, 1);
	m_reply(&m, 0x7777, 0, "www.example.com", DNS_MAX_CNAME_HOPS + 3);
	{
		size_t owner = 12;
		char name[16];

		for (int h = 0; h < DNS_MAX_CNAME_HOPS + 1; h++) {
			snprintf(name, sizeof(name), "h%d.net", h);
			owner = m_rr_cname(&m, owner, NULL, name);
			if (h == DNS_MAX_CNAME_HOPS - 1)
				m_rr_a(&m, owner, NULL, 5, 0x0e0e0e01);
		}
		m_rr_a(&m, owner, NULL, 5, 0x0e0e0e02);
	}
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), 0);
	CHECK_EQ(r.n_a, 1);
	CHECK_EQ(r.a[0].ip, 0x0e0e0e01);

	/* More A records than we take. */
	m_reply(&m, 0x7777, 0, "www.example.com", DNS_MAX_A + 8);
	for (uint32_t i = 0; i < DNS_MAX_A + 8; i++)
		m_rr_a(&m, 12, NULL, 60, 0x08080000 + i);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), 0);
	CHECK_EQ(r.n_a, DNS_MAX_A);

	/* Not our answer: id, question name, type, or not a response. */
	m_reply(&m, 0x7778, 0, "www.example.com", 1);
	m_rr_a(&m, 12, NULL, 60, 1);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	m_reply(&m, 0x7777, 0, "www.example.org", 1);
	m_rr_a(&m, 12, NULL, 60, 1);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	m_reply(&m, 0x7777, 0, "www.example.com", 0);
	m.b[m.len - 3] = 28; /* qtype AAAA */
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	m_reply(&m, 0x7777, 0, "www.example.com", 0);
	m.b[2] &= 0x7f;
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	m_reply(&m, 0x7777, 0, "www.example.com", 0);
	m.b[5] = 2;
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);

	/* An error rcode: valid, nothing taken (the records are not even read). */
	m_reply(&m, 0x7777, DNS_RCODE_NXDOMAIN, "www.example.com", 5);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), 0);
	CHECK_EQ(r.rcode, DNS_RCODE_NXDOMAIN);
	CHECK_EQ(r.n_a, 0);

	/* Broken records: A of 5 bytes, rdlength past the end, CNAME data with a trailing byte,
	 * an unrelated record with a looping owner name. */
	m_reply(&m, 0x7777, 0, "www.example.com", 1);
	m_rr_a(&m, 12, NULL, 60, 1);
	m.b[m.len - 5] = 5;
	m_u8(&m, 0);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	m_reply(&m, 0x7777, 0, "www.example.com", 1);
	m_rr_a(&m, 12, NULL, 60, 1);
	m.b[m.len - 5] = 200;
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	m_reply(&m, 0x7777, 0, "www.example.com", 1);
	m_rr_cname(&m, 12, NULL, "x.net");
	m.b[m.len - 8] += 1; /* rdlength one more than the name */
	m_u8(&m, 0);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	m_reply(&m, 0x7777, 0, "www.example.com", 2);
	m_rr_a(&m, 12, NULL, 60, 0x09090909);
	m_ptr(&m, m.len);
	m_u16(&m, 16);
	m_u16(&m, 1);
	m_u32(&m, 0);
	m_u16(&m, 0);
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
	CHECK_EQ(r.n_a, 0);

	/* Other record types and classes are skipped, their data unread; authority and additional
	 * sections are not looked at. */
	m_reply(&m, 0x7777, 0, "www.example.com", 3);
	m_owner(&m, 12, NULL);
	m_u16(&m, 16);
	m_u16(&m, 1);
	m_u32(&m, 5);
	m_u16(&m, 3);
	m_u8(&m, 2), m_u8(&m, 'h'), m_u8(&m, 'i');
	m_owner(&m, 12, NULL);
	m_u16(&m, DNS_TYPE_A);
	m_u16(&m, 3); /* class CH: not taken even though it is A */
	m_u32(&m, 5);
	m_u16(&m, 4);
	m_u32(&m, 0x0f0f0f0f);
	m_rr_a(&m, 12, NULL, 7, 0x10101010);
	m.b[9] = 5; /* NSCOUNT: junk after the answers is not read */
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), 0);
	CHECK_EQ(r.n_a, 1);
	CHECK_EQ(r.a[0].ip, 0x10101010);
	CHECK_EQ(r.a[0].ttl, 7);

	/* The question we asked must exist. */
	q.has_question = 0;
	CHECK_EQ(reply_exact(m.b, m.len, &q, &r), -EINVAL);
}

static unsigned fuzz_queries, fuzz_replies, fuzz_addrs, fuzz_names;

static void fuzz_one(const uint8_t *b, size_t len, const struct dns_query *asked)
{
	struct dns_query q;
	struct dns_reply r;
	struct dns_name n;
	size_t next;
	int rc;

	rc = query_exact(b, len, &q);
	CHECK(rc == 0 || rc == -EINVAL || (rc >= 1 && rc <= 5));
	if (rc == 0) {
		struct dns_query back;
		uint8_t out[600];
		size_t k;

		fuzz_queries++;
		CHECK(q.name.wire_len <= DNS_NAME_WIRE_MAX && strlen(q.name.text) <= 253);
		/* What we build from it parses back to the same question. */
		k = dns_build_query(&q, 1, out, sizeof(out));
		CHECK(k > 0);
		CHECK_EQ(dns_parse_query(out, k, &back), 0);
		CHECK(dns_name_equal(back.name.text, q.name.text));
	}
	rc = reply_exact(b, len, asked, &r);
	CHECK(rc == 0 || rc == -EINVAL);
	CHECK(r.n_a <= DNS_MAX_A);
	fuzz_replies += rc == 0;
	fuzz_addrs += r.n_a > 0;
	if (len > 12) {
		size_t off = 12 + rnd() % (len - 12);

		if (name_exact(b, len, off, &n, &next) == 0) {
			fuzz_names++;
			CHECK(n.wire_len <= DNS_NAME_WIRE_MAX);
			CHECK(next > off && next <= len);
		}
	}
}

static void test_fuzz(void)
{
	enum { ROUNDS = 200000 };
	struct dns_query asked = asked_for("www.example.com", 0x7777);
	struct msg seeds[4], m;
	size_t c1;

	m_query(&seeds[0], 0x7777, "www.example.com", DNS_TYPE_A, 1232);
	m_reply(&seeds[1], 0x7777, 0, "www.example.com", 3);
	m_rr_a(&seeds[1], 12, NULL, 300, 0x5db8d822);
	c1 = m_rr_cname(&seeds[1], 12, NULL, "edge.cdn.net");
	m_rr_a(&seeds[1], c1, NULL, 20, 0x0b0b0b0b);
	m_query(&seeds[2], 1, "a.b.c.d.e.f.g", 16, 0);
	m_reply(&seeds[3], 0x7777, 0, "www.example.com", 2);
	m_rr_a(&seeds[3], 12, NULL, 1, 1);
	m_rr_a(&seeds[3], 0, "www.example.com", 2, 2);

	for (unsigned round = 0; round < ROUNDS; round++) {
		if (round % 4 == 0) {
			/* Noise with compression-pointer bytes sprinkled in. */
			m.len = rnd() % 300;
			for (size_t i = 0; i < m.len; i++)
				m.b[i] = rnd() % 5 == 0 ? (uint8_t)(0xc0 | (rnd() & 1)) : (uint8_t)rnd();
			if (m.len >= 12 && (rnd() & 1)) {
				m.b[4] = 0;
				m.b[5] = 1;
				m.b[6] = 0;
				m.b[7] = (uint8_t)(rnd() % 4);
			}
		} else {
			const struct msg *s = &seeds[rnd() % 4];
			unsigned flips = 1 + rnd() % 3;

			m = *s;
			for (unsigned k = 0; k < flips; k++) {
				size_t at = rnd() % m.len;

				/* Pointers and lengths are where the parser can go wrong. */
				switch (rnd() % 3) {
				case 0:
					m.b[at] = (uint8_t)rnd();
					break;
				case 1:
					m.b[at] = (uint8_t)(0xc0 | (rnd() % 2));
					if (at + 1 < m.len)
						m.b[at + 1] = (uint8_t)(rnd() % (m.len + 8));
					break;
				default:
					m.b[at] = (uint8_t)(rnd() % 70);
					break;
				}
			}
			if (rnd() % 3 == 0)
				m.len = rnd() % (s->len + 1);
		}
		fuzz_one(m.b, m.len, &asked);
	}
	/* The mutations must keep reaching the accepting paths, or the deep code went untested. */
	printf("fuzz: %u queries, %u replies (%u with addresses), %u names accepted of %u\n",
	       fuzz_queries, fuzz_replies, fuzz_addrs, fuzz_names, ROUNDS);
	CHECK(fuzz_queries > ROUNDS / 50 && fuzz_addrs > ROUNDS / 50 && fuzz_names > ROUNDS / 50);
}

int main(void)
{
	test_names();
	test_name_attacks();
	test_query();
	test_build();
	test_reply();
	test_fuzz();
	return TEST_SUMMARY();
}
