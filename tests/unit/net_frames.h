/* Ethernet frames for the network tests, written from the RFCs independently of lib/net/packet.c
 * so that the code under test is not checked against itself. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct nf_addr {
	uint8_t mac[6];
	uint32_t ip; /* host order */
	uint16_t port;
};

static inline void nf_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nf_put32(uint8_t *p, uint32_t v)
{
	nf_put16(p, (uint16_t)(v >> 16));
	nf_put16(p + 2, (uint16_t)v);
}

static inline uint16_t nf_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* RFC 1071 sum, folded, not complemented. */
static inline uint16_t nf_sum(const uint8_t *p, size_t len, uint32_t start)
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

/* Ethernet + IPv4 (ihl_words, NOP options past 5) with a correct header checksum; l4len bytes of
 * layer 4 are the caller's. Returns the frame length. */
static inline size_t nf_ip(uint8_t *f, const struct nf_addr *s, const struct nf_addr *d,
			   uint8_t proto, uint16_t frag, unsigned ihl_words, size_t l4len)
{
	uint8_t *ip = f + 14;
	size_t ihl = ihl_words * 4;

	memcpy(f, d->mac, 6);
	memcpy(f + 6, s->mac, 6);
	nf_put16(f + 12, 0x0800);
	memset(ip, 0, ihl);
	ip[0] = (uint8_t)(0x40 | ihl_words);
	nf_put16(ip + 2, (uint16_t)(ihl + l4len));
	nf_put16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = proto;
	nf_put32(ip + 12, s->ip);
	nf_put32(ip + 16, d->ip);
	for (size_t i = 20; i < ihl; i++)
		ip[i] = 1;
	nf_put16(ip + 10, (uint16_t)~nf_sum(ip, ihl, 0));
	return 14 + ihl + l4len;
}

static inline size_t nf_udp(uint8_t *f, const struct nf_addr *s, const struct nf_addr *d,
			    const void *payload, size_t len)
{
	size_t flen = nf_ip(f, s, d, 17, 0x4000, 5, 8 + len);
	uint8_t *u = f + 34, pseudo[12];
	uint16_t sum;

	nf_put16(u, s->port);
	nf_put16(u + 2, d->port);
	nf_put16(u + 4, (uint16_t)(8 + len));
	nf_put16(u + 6, 0);
	memcpy(u + 8, payload, len);
	nf_put32(pseudo, s->ip);
	nf_put32(pseudo + 4, d->ip);
	pseudo[8] = 0;
	pseudo[9] = 17;
	nf_put16(pseudo + 10, (uint16_t)(8 + len));
	sum = (uint16_t)~nf_sum(u, 8 + len, nf_sum(pseudo, 12, 0));
	nf_put16(u + 6, sum ? sum : 0xffff);
	return flen;
}

/* Whether a UDP frame's checksum verifies (pseudo-header included). */
static inline int nf_udp_csum_ok(const uint8_t *f, size_t len)
{
	uint8_t pseudo[12];
	size_t ulen;

	if (len < 42)
		return 0;
	ulen = nf_get16(f + 38);
	memcpy(pseudo, f + 26, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	nf_put16(pseudo + 10, (uint16_t)ulen);
	return ulen + 34 <= len && nf_sum(f + 34, ulen, nf_sum(pseudo, 12, 0)) == 0xffff;
}

static inline size_t nf_tcp(uint8_t *f, const struct nf_addr *s, const struct nf_addr *d,
			    uint8_t flags)
{
	size_t flen = nf_ip(f, s, d, 6, 0x4000, 5, 20);
	uint8_t *t = f + 34;

	memset(t, 0, 20);
	nf_put16(t, s->port);
	nf_put16(t + 2, d->port);
	t[12] = 5 << 4;
	t[13] = flags;
	return flen;
}

static inline size_t nf_icmp(uint8_t *f, const struct nf_addr *s, const struct nf_addr *d)
{
	size_t flen = nf_ip(f, s, d, 1, 0, 5, 8);

	memset(f + 34, 0, 8);
	f[34] = 8;
	return flen;
}

static inline size_t nf_arp(uint8_t *f, const uint8_t sha[6], uint32_t spa, uint32_t tpa,
			    uint16_t op)
{
	uint8_t *a = f + 14;

	memset(f, 0xff, 6);
	memcpy(f + 6, sha, 6);
	nf_put16(f + 12, 0x0806);
	nf_put16(a, 1);
	nf_put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	nf_put16(a + 6, op);
	memcpy(a + 8, sha, 6);
	nf_put32(a + 14, spa);
	memset(a + 18, 0, 6);
	nf_put32(a + 24, tpa);
	return 42;
}

/* A DNS message: header, one question, optionally an OPT. */
static inline size_t nf_dns_query(uint8_t *m, uint16_t id, const char *name, uint16_t qtype, int opt)
{
	size_t n = 12;

	memset(m, 0, 12);
	nf_put16(m, id);
	nf_put16(m + 2, 0x0100);
	nf_put16(m + 4, 1);
	nf_put16(m + 10, opt ? 1 : 0);
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		m[n++] = (uint8_t)l;
		memcpy(m + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	m[n++] = 0;
	nf_put16(m + n, qtype);
	nf_put16(m + n + 2, 1);
	n += 4;
	if (opt) {
		m[n] = 0;
		nf_put16(m + n + 1, 41);
		nf_put16(m + n + 3, (uint16_t)opt);
		memset(m + n + 5, 0, 6);
		n += 11;
	}
	return n;
}

/* An upstream answer to the forwarded query in q (its question echoed) with A records. */
static inline size_t nf_dns_answer(uint8_t *m, const uint8_t *q, size_t qlen, uint8_t rcode,
			 const uint32_t *ips, size_t n_ips, uint32_t ttl)
{
	size_t n = qlen;

	/* The question ends where an OPT (if any) begins: count back from the header's ARCOUNT. */
	if (q[11])
		n -= 11;
	memcpy(m, q, n);
	m[2] = 0x81;
	m[3] = (uint8_t)(0x80 | rcode);
	nf_put16(m + 6, (uint16_t)n_ips);
	nf_put16(m + 10, 0);
	for (size_t i = 0; i < n_ips; i++) {
		nf_put16(m + n, 0xc00c);
		nf_put16(m + n + 2, 1);
		nf_put16(m + n + 4, 1);
		nf_put32(m + n + 6, ttl);
		nf_put16(m + n + 10, 4);
		nf_put32(m + n + 12, ips[i]);
		n += 16;
	}
	return n;
}
