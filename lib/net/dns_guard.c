#include "dns_guard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dns_guard_admission {
	uint32_t ip;
	uint64_t expiry_ms;
	char name[DNS_NAME_TEXT_MAX + 1];
};

struct dns_guard {
	struct egress *policy; /* the names allowed, and the admission rules */
	struct dns_pending_table pending;
	struct dns_guard_stats stats;
	struct dns_guard_admission *admitted; /* DNS_GUARD_ADMITTED_MAX, oldest first */
	size_t n_admitted;
	int forgot; /* an admission was dropped to make room: revocations are no longer exact */
};

int dns_guard_new(int admit_private, struct dns_guard **out)
{
	struct egress_config cfg = { .admit_private = admit_private, .quiet = 1 };
	struct dns_guard *g = calloc(1, sizeof(*g));
	int rc;

	if (!g)
		return -ENOMEM;
	g->admitted = calloc(DNS_GUARD_ADMITTED_MAX, sizeof(*g->admitted));
	rc = g->admitted ? egress_new(&cfg, &g->policy) : -ENOMEM;
	if (rc < 0) {
		free(g->admitted);
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
	free(g->admitted);
	free(g);
}

enum dns_guard_change dns_guard_set_policy(struct dns_guard *g, struct egress_policy *p,
					   uint64_t now_ms, struct dns_a *kept, size_t *n_kept)
{
	struct dns_guard_admission *a = g->admitted;
	size_t n = 0, dropped = 0;

	egress_set_policy(g->policy, p);
	*n_kept = 0;
	for (size_t i = 0; i < g->n_admitted; i++) {
		if (!egress_name_allowed(g->policy, a[i].name)) {
			dropped++;
			continue;
		}
		a[n++] = a[i];
	}
	g->n_admitted = n;
	if (!dropped)
		return DNS_GUARD_KEEP;
	if (g->forgot)
		return DNS_GUARD_EMPTY;
	/* Each address once, for the longest admission it still has. */
	for (size_t i = 0; i < n; i++) {
		uint32_t ttl = a[i].expiry_ms > now_ms ? (uint32_t)((a[i].expiry_ms - now_ms + 999) / 1000)
						       : 0;
		size_t k = 0;

		while (k < *n_kept && kept[k].ip != a[i].ip)
			k++;
		if (k == *n_kept)
			kept[(*n_kept)++] = (struct dns_a){ a[i].ip, ttl };
		else if (kept[k].ttl < ttl)
			kept[k].ttl = ttl;
	}
	return DNS_GUARD_REBUILD;
}

/* Remembers that ip was admitted for name until expiry_ms (the oldest memory goes when full). */
static void dns_guard_remember(struct dns_guard *g, uint32_t ip, const char *name,
			       uint64_t expiry_ms)
{
	struct dns_guard_admission *a = g->admitted;

	for (size_t i = 0; i < g->n_admitted; i++) {
		if (a[i].ip == ip && dns_name_equal(a[i].name, name)) {
			if (a[i].expiry_ms < expiry_ms)
				a[i].expiry_ms = expiry_ms;
			return;
		}
	}
	if (g->n_admitted == DNS_GUARD_ADMITTED_MAX) {
		memmove(a, a + 1, (DNS_GUARD_ADMITTED_MAX - 1) * sizeof(*a));
		g->n_admitted--;
		g->forgot = 1;
	}
	a[g->n_admitted].ip = ip;
	a[g->n_admitted].expiry_ms = expiry_ms;
	snprintf(a[g->n_admitted].name, sizeof(a->name), "%s", name);
	g->n_admitted++;
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
		dns_guard_remember(g, reply.a[i].ip, p->q.name.text,
				   now_ms + (uint64_t)admit[*n_admit - 1].ttl * 1000);
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
