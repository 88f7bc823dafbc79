#include "dns_guard.h"

#include <errno.h>
#include <stdlib.h>

struct dns_guard {
	struct egress *policy; /* the names allowed, and the admission rules */
	struct dns_pending_table pending;
	struct dns_guard_stats stats;
};

int dns_guard_new(int admit_private, struct dns_guard **out)
{
	struct egress_config cfg = { .admit_private = admit_private, .quiet = 1 };
	struct dns_guard *g = calloc(1, sizeof(*g));
	int rc;

	if (!g)
		return -ENOMEM;
	rc = egress_new(&cfg, &g->policy);
	if (rc < 0) {
		free(g);
		return rc;
	}
	*out = g;
	return 0;
}

void dns_guard_free(struct dns_guard *g)
{
	if (!g)
		return;
	egress_free(g->policy);
	free(g);
}

void dns_guard_set_policy(struct dns_guard *g, struct egress_policy *p)
{
	egress_set_policy(g->policy, p);
}

int dns_guard_query(struct dns_guard *g, const uint8_t *msg, size_t len, uint64_t now_ms,
		    uint8_t *out, size_t cap, size_t *out_len)
{
	struct dns_pending *p;
	struct dns_query q;

	*out_len = 0;
	dns_pending_expire(&g->pending, now_ms);
	if (dns_parse_query(msg, len, &q) != 0) {
		g->stats.dropped++;
		return 0;
	}
	if (q.name.unsafe || !egress_name_allowed(g->policy, q.name.text)) {
		g->stats.refused++;
		return 0;
	}
	p = dns_pending_slot(&g->pending, now_ms);
	*out_len = dns_build_query(&q, p->id, out, cap);
	if (!*out_len) {
		g->stats.dropped++;
		return 0;
	}
	p->q = q;
	p->used = 1;
	g->stats.forwarded++;
	return 1;
}

static uint32_t dns_guard_clamp_ttl(uint32_t ttl)
{
	return ttl < EGRESS_TTL_MIN_S ? EGRESS_TTL_MIN_S : ttl > EGRESS_TTL_MAX_S ? EGRESS_TTL_MAX_S
										  : ttl;
}

int dns_guard_reply(struct dns_guard *g, uint8_t *msg, size_t len, uint64_t now_ms,
		    struct dns_a admit[DNS_MAX_A], size_t *n_admit)
{
	struct dns_pending *p;
	struct dns_query asked;
	struct dns_reply reply;

	*n_admit = 0;
	dns_pending_expire(&g->pending, now_ms);
	p = len >= DNS_HDR_LEN ? dns_pending_find(&g->pending, (uint16_t)(msg[0] << 8 | msg[1]))
			       : NULL;
	if (p) {
		asked = p->q;
		asked.id = p->id;
	}
	if (!p || dns_parse_reply(msg, len, &asked, &reply) < 0) {
		g->stats.dropped++;
		return 0;
	}
	for (size_t i = 0; i < reply.n_a; i++) {
		if (!egress_admit(g->policy, p->q.name.text, reply.a[i].ip, reply.a[i].ttl, now_ms))
			continue;
		admit[*n_admit].ip = reply.a[i].ip;
		admit[*n_admit].ttl = dns_guard_clamp_ttl(reply.a[i].ttl);
		(*n_admit)++;
	}
	dns_set_id(msg, len, p->q.id);
	p->used = 0;
	g->stats.answered++;
	g->stats.admitted += *n_admit;
	return 1;
}

void dns_guard_get_stats(const struct dns_guard *g, struct dns_guard_stats *out)
{
	*out = g->stats;
}
