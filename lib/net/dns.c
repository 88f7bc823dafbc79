#define _GNU_SOURCE
#include "dns.h"
#include "wire.h"

#include <errno.h>
#include <string.h>

#define DNS_QR 0x8000
#define DNS_OPCODE(flags) (((flags) >> 11) & 0xf)
#define DNS_TC 0x0200
#define DNS_RD 0x0100
#define DNS_RA 0x0080
#define DNS_RCODE(flags) ((flags) & 0xf)
#define DNS_PTR 0xc0
#define DNS_RR_FIXED 10 /* type, class, ttl, rdlength */

static int dns_safe_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int dns_name_read(const uint8_t *msg, size_t len, size_t off, struct dns_name *out, size_t *next)
{
	size_t p = off, seg_start = off, text = 0, after = 0;
	int jumped = 0;

	out->wire_len = 0;
	out->unsafe = 0;
	out->text[0] = '\0';
	for (;;) {
		uint8_t b;

		if (p >= len)
			return -EINVAL;
		b = msg[p];
		if ((b & DNS_PTR) == DNS_PTR) {
			size_t target;

			if (p + 1 >= len)
				return -EINVAL;
			target = (size_t)(b & ~DNS_PTR) << 8 | msg[p + 1];
			/* Strictly backwards from where this run of labels began: targets decrease
			 * with every jump, which ends loops of any length. */
			if (target >= seg_start || target < DNS_HDR_LEN)
				return -EINVAL;
			if (!jumped)
				after = p + 2;
			jumped = 1;
			seg_start = target;
			p = target;
			continue;
		}
		if (b & DNS_PTR) /* 0x40 and 0x80: extended and reserved label types */
			return -EINVAL;
		if (b == 0) {
			out->wire[out->wire_len++] = 0;
			break;
		}
		/* The label, and room left for the terminating zero label. */
		if (b > len - p - 1 || out->wire_len + 1 + b + 1 > DNS_NAME_WIRE_MAX)
			return -EINVAL;
		memcpy(out->wire + out->wire_len, msg + p, (size_t)b + 1);
		out->wire_len += (size_t)b + 1;
		if (text)
			out->text[text++] = '.';
		for (size_t i = 1; i <= b; i++) {
			uint8_t c = msg[p + i];

			if (!dns_safe_char(c)) {
				out->unsafe = 1;
				c = '?';
			}
			out->text[text++] = (char)c;
		}
		p += (size_t)b + 1;
	}
	out->text[text] = '\0';
	*next = jumped ? after : p + 1;
	return 0;
}

static char dns_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int dns_name_equal(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (dns_lower(*a) != dns_lower(*b))
			return 0;
	return *a == *b;
}

/* The OPT pseudo-record of a query: root owner, type 41, its rdata inside the message. Returns
 * the offset after it, or 0. */
static size_t dns_read_opt(const uint8_t *msg, size_t len, size_t off, uint16_t *udp_size)
{
	size_t rdlen;

	if (off >= len || msg[off] != 0 || len - off - 1 < DNS_RR_FIXED)
		return 0;
	off++;
	if (rd16(msg + off) != DNS_TYPE_OPT)
		return 0;
	*udp_size = rd16(msg + off + 2);
	rdlen = rd16(msg + off + 8);
	off += DNS_RR_FIXED;
	if (rdlen > len - off)
		return 0;
	return off + rdlen;
}

int dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q)
{
	uint16_t qd, an, ns, ar, udp_size = 0;
	size_t off;

	memset(q, 0, sizeof(*q));
	if (len < DNS_HDR_LEN)
		return -EINVAL;
	q->id = rd16(msg);
	q->flags = rd16(msg + 2);
	if (q->flags & DNS_QR)
		return -EINVAL;
	if (DNS_OPCODE(q->flags) != 0)
		return DNS_RCODE_NOTIMP;
	qd = rd16(msg + 4);
	an = rd16(msg + 6);
	ns = rd16(msg + 8);
	ar = rd16(msg + 10);
	if (qd != 1 || an != 0 || ns != 0 || ar > 1)
		return DNS_RCODE_FORMERR;
	if (dns_name_read(msg, len, DNS_HDR_LEN, &q->name, &off) < 0 || len - off < 4)
		return DNS_RCODE_FORMERR;
	q->qtype = rd16(msg + off);
	q->qclass = rd16(msg + off + 2);
	off += 4;
	if (ar == 1) {
		off = dns_read_opt(msg, len, off, &udp_size);
		if (!off)
			return DNS_RCODE_FORMERR;
		/* Sizes below 512 are treated as 512 (RFC 6891 6.2.5). */
		q->edns_size = udp_size < DNS_UDP_CLASSIC ? DNS_UDP_CLASSIC : udp_size;
	}
	if (off != len)
		return DNS_RCODE_FORMERR;
	if (q->qclass != DNS_CLASS_IN)
		return DNS_RCODE_REFUSED;
	q->has_question = 1;
	return 0;
}

/* Header plus, when q has one, its question. Returns the offset after them, 0 if cap is short. */
static size_t dns_put_head(const struct dns_query *q, uint16_t id, uint16_t flags, uint16_t ar,
			   uint8_t *out, size_t cap)
{
	size_t need = DNS_HDR_LEN + (q->has_question ? q->name.wire_len + 4 : 0);

	if (cap < need)
		return 0;
	wr16(out, id);
	wr16(out + 2, flags);
	wr16(out + 4, q->has_question ? 1 : 0);
	wr16(out + 6, 0);
	wr16(out + 8, 0);
	wr16(out + 10, ar);
	if (q->has_question) {
		memcpy(out + DNS_HDR_LEN, q->name.wire, q->name.wire_len);
		wr16(out + DNS_HDR_LEN + q->name.wire_len, q->qtype);
		wr16(out + DNS_HDR_LEN + q->name.wire_len + 2, q->qclass);
	}
	return need;
}

size_t dns_build_error(const struct dns_query *q, uint8_t rcode, uint8_t *out, size_t cap)
{
	uint16_t flags = DNS_QR | (q->flags & (0xf << 11)) | (q->flags & DNS_RD) | DNS_RA |
			 (rcode & 0xf);

	return dns_put_head(q, q->id, flags, 0, out, cap);
}

size_t dns_build_query(const struct dns_query *q, uint16_t id, uint8_t *out, size_t cap)
{
	static const size_t opt_len = 1 + DNS_RR_FIXED;
	uint16_t size = q->edns_size > DNS_UDP_EDNS_MAX ? DNS_UDP_EDNS_MAX : q->edns_size;
	size_t off;

	if (!q->has_question)
		return 0;
	off = dns_put_head(q, id, DNS_RD, q->edns_size ? 1 : 0, out, cap);
	if (!off || !q->edns_size)
		return off;
	if (cap - off < opt_len)
		return 0;
	memset(out + off, 0, opt_len);
	wr16(out + off + 1, DNS_TYPE_OPT);
	wr16(out + off + 3, size);
	return off + opt_len;
}

void dns_set_id(uint8_t *msg, size_t len, uint16_t id)
{
	if (len >= DNS_HDR_LEN)
		wr16(msg, id);
}

/* Names of the chain from the question through CNAMEs, as far as the answer section goes. */
struct dns_chain {
	size_t n;
	char names[DNS_MAX_CNAME_HOPS + 1][DNS_NAME_TEXT_MAX + 1];
};

static int dns_chain_has(const struct dns_chain *c, const struct dns_name *n)
{
	if (n->unsafe)
		return 0;
	for (size_t i = 0; i < c->n; i++)
		if (dns_name_equal(c->names[i], n->text))
			return 1;
	return 0;
}

/* One pass over the answer records. Extends the chain with CNAMEs whose owner is on it (when
 * collect_a is 0), or collects the A records owned by a name on it (when 1). Returns 1 if the
 * chain grew, 0 if not, -EINVAL on a malformed record. */
static int dns_answers_pass(const uint8_t *msg, size_t len, size_t off, unsigned count,
			    struct dns_chain *c, struct dns_reply *r, int collect_a)
{
	struct dns_name owner, target;
	int grew = 0;

	for (unsigned i = 0; i < count; i++) {
		uint16_t type, klass, rdlen;
		uint32_t ttl;
		size_t rdata, end;

		if (dns_name_read(msg, len, off, &owner, &off) < 0 || len - off < DNS_RR_FIXED)
			return -EINVAL;
		type = rd16(msg + off);
		klass = rd16(msg + off + 2);
		ttl = rd32(msg + off + 4);
		rdlen = rd16(msg + off + 8);
		rdata = off + DNS_RR_FIXED;
		if (rdlen > len - rdata)
			return -EINVAL;
		off = rdata + rdlen;
		if (klass != DNS_CLASS_IN)
			continue;
		if (type == DNS_TYPE_A) {
			if (rdlen != 4)
				return -EINVAL;
			if (collect_a && r->n_a < DNS_MAX_A && dns_chain_has(c, &owner)) {
				r->a[r->n_a].ip = rd32(msg + rdata);
				r->a[r->n_a].ttl = ttl & 0x80000000u ? 0 : ttl;
				r->n_a++;
			}
		} else if (type == DNS_TYPE_CNAME) {
			/* The target must fill the rdata exactly; it may point back into the
			 * message, which is why it is read against the whole message. */
			if (dns_name_read(msg, len, rdata, &target, &end) < 0 || end != off)
				return -EINVAL;
			if (!collect_a && c->n <= DNS_MAX_CNAME_HOPS && !target.unsafe &&
			    dns_chain_has(c, &owner) && !dns_chain_has(c, &target)) {
				memcpy(c->names[c->n++], target.text, sizeof(target.text));
				grew = 1;
			}
		}
	}
	return grew;
}

int dns_parse_reply(const uint8_t *msg, size_t len, const struct dns_query *asked,
		    struct dns_reply *r)
{
	struct dns_chain c = { 0 };
	struct dns_name qname;
	uint16_t flags, an;
	size_t off;
	int ret;

	memset(r, 0, sizeof(*r));
	if (len < DNS_HDR_LEN || !asked->has_question)
		return -EINVAL;
	r->id = rd16(msg);
	flags = rd16(msg + 2);
	if (r->id != asked->id || !(flags & DNS_QR) || DNS_OPCODE(flags) != 0 || rd16(msg + 4) != 1)
		return -EINVAL;
	r->rcode = (uint8_t)DNS_RCODE(flags);
	r->truncated = !!(flags & DNS_TC);
	an = rd16(msg + 6);
	if (dns_name_read(msg, len, DNS_HDR_LEN, &qname, &off) < 0 || len - off < 4)
		return -EINVAL;
	if (qname.unsafe || !dns_name_equal(qname.text, asked->name.text) ||
	    rd16(msg + off) != asked->qtype || rd16(msg + off + 2) != asked->qclass)
		return -EINVAL;
	off += 4;
	if (r->rcode != DNS_RCODE_NOERROR)
		return 0;

	memcpy(c.names[c.n++], qname.text, sizeof(qname.text));
	/* CNAMEs may come in any order: each pass adds the hops it can, until none is added. */
	do
		ret = dns_answers_pass(msg, len, off, an, &c, r, 0);
	while (ret > 0 && c.n <= DNS_MAX_CNAME_HOPS);
	if (ret >= 0)
		ret = dns_answers_pass(msg, len, off, an, &c, r, 1);
	if (ret < 0) {
		r->n_a = 0;
		return -EINVAL;
	}
	return 0;
}
