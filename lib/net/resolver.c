#define _GNU_SOURCE
#include "resolver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DNS_PORT 53

/* Beside each pending query (the guest's, with the guest's id): where its answer goes, and from
 * where. */
struct resolver_route {
	struct pkt_udp_addr guest, server;
};

struct resolver {
	struct egress *e;
	struct dns_pending_table pending;
	struct resolver_route route[DNS_PENDING_MAX];
	struct resolver_stats stats;
};

int resolver_new(struct egress *e, struct resolver **out)
{
	struct resolver *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->e = e;
	*out = r;
	return 0;
}

void resolver_free(struct resolver *r)
{
	free(r);
}

void resolver_get_stats(const struct resolver *r, struct resolver_stats *out)
{
	*out = r->stats;
	out->expired = r->pending.expired;
}

void resolver_expire(struct resolver *r, uint64_t now_ms)
{
	dns_pending_expire(&r->pending, now_ms);
}

static enum resolver_action resolver_answer(const struct pkt_udp_addr *from,
					    const struct pkt_udp_addr *to, const uint8_t *msg,
					    size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	*out_len = pkt_build_udp(out, cap, from, to, msg, len);
	return *out_len ? RESOLVER_REPLY : RESOLVER_DROP;
}

enum resolver_action resolver_guest_frame(struct resolver *r, const uint8_t *frame, size_t len,
					  uint64_t now_ms, uint8_t *out, size_t cap,
					  size_t *out_len)
{
	struct pkt_udp_addr guest, server;
	struct dns_pending *p;
	struct dns_query q;
	struct pkt_info pi;
	uint8_t msg[DNS_HDR_LEN + DNS_NAME_WIRE_MAX + 4];
	size_t n;
	int rc;

	*out_len = 0;
	resolver_expire(r, now_ms);
	/* egress_check sent it here, but this is a separate entry point: check again. Our answer
	 * goes out from the MAC the guest addressed, which must be a unicast one. */
	if (pkt_parse(frame, len, &pi) != PKT_OK || pi.ethertype != PKT_ETHERTYPE_IPV4 || !pi.l4 ||
	    pi.proto != PKT_PROTO_UDP || pi.dst_port != DNS_PORT || (pi.dst_mac[0] & 1)) {
		r->stats.dropped++;
		return RESOLVER_DROP;
	}
	memcpy(guest.mac, pi.src_mac, PKT_MAC_LEN);
	guest.ip = pi.src_ip;
	guest.port = pi.src_port;
	memcpy(server.mac, pi.dst_mac, PKT_MAC_LEN);
	server.ip = pi.dst_ip;
	server.port = DNS_PORT;

	rc = dns_parse_query(frame + pi.payload_off, pi.payload_len, &q);
	if (rc < 0) {
		r->stats.dropped++;
		return RESOLVER_DROP;
	}
	if (rc > 0) {
		r->stats.errors++;
		n = dns_build_error(&q, (uint8_t)rc, msg, sizeof(msg));
		return resolver_answer(&server, &guest, msg, n, out, cap, out_len);
	}
	r->stats.queries++;
	if (q.name.unsafe || !egress_name_allowed(r->e, q.name.text)) {
		r->stats.refused++;
		egress_deny_name(r->e, q.name.text, now_ms);
		n = dns_build_error(&q, DNS_RCODE_NXDOMAIN, msg, sizeof(msg));
		return resolver_answer(&server, &guest, msg, n, out, cap, out_len);
	}

	p = dns_pending_slot(&r->pending, now_ms);
	*out_len = dns_build_query(&q, p->id, out, cap);
	if (!*out_len) {
		r->stats.dropped++;
		return RESOLVER_DROP;
	}
	p->used = 1;
	p->q = q;
	r->route[p - r->pending.slot] = (struct resolver_route){ guest, server };
	r->stats.forwarded++;
	return RESOLVER_FORWARD;
}

enum resolver_action resolver_upstream_reply(struct resolver *r, const uint8_t *msg, size_t len,
					     uint64_t now_ms, uint8_t *out, size_t cap,
					     size_t *out_len)
{
	struct resolver_route *to;
	struct dns_pending *p;
	struct dns_query asked;
	struct dns_reply reply;
	uint8_t err[DNS_HDR_LEN + DNS_NAME_WIRE_MAX + 4], copy[RESOLVER_MSG_MAX];
	size_t limit, n;

	*out_len = 0;
	resolver_expire(r, now_ms);
	p = len >= DNS_HDR_LEN ? dns_pending_find(&r->pending, (uint16_t)(msg[0] << 8 | msg[1]))
			       : NULL;
	if (!p) {
		r->stats.dropped++;
		return RESOLVER_DROP;
	}
	to = &r->route[p - r->pending.slot];
	asked = p->q;
	asked.id = p->id;
	/* Not an answer to our question: leave the query pending for the real one. */
	if (dns_parse_reply(msg, len, &asked, &reply) < 0) {
		r->stats.dropped++;
		return RESOLVER_DROP;
	}
	/* Admitted before the guest sees the answer, so its first packet finds the address. */
	for (size_t i = 0; i < reply.n_a; i++)
		egress_admit(r->e, p->q.name.text, reply.a[i].ip, reply.a[i].ttl, now_ms);
	p->used = 0;
	r->stats.answered++;

	/* What the guest can take: 512 bytes without EDNS, its EDNS size otherwise, one frame at
	 * most. An upstream that ignores the limit gets the guest a SERVFAIL. */
	limit = p->q.edns_size ? p->q.edns_size : DNS_UDP_CLASSIC;
	if (limit > RESOLVER_MSG_MAX)
		limit = RESOLVER_MSG_MAX;
	if (len > limit) {
		n = dns_build_error(&p->q, DNS_RCODE_SERVFAIL, err, sizeof(err));
		return resolver_answer(&to->server, &to->guest, err, n, out, cap, out_len);
	}
	/* The guest's id goes back before the checksum is computed over it. */
	memcpy(copy, msg, len);
	dns_set_id(copy, len, p->q.id);
	return resolver_answer(&to->server, &to->guest, copy, len, out, cap, out_len);
}
