/* Queries sent upstream and not yet answered, by the id they went out under: the sandbox's DNS
 * server (resolver.c) and the trusted relay outside the VMM (dns_guard.c) both match upstream
 * answers against them. A fixed table: at most DNS_PENDING_MAX in flight, a new one displaces
 * the oldest, and each is forgotten DNS_PENDING_TIMEOUT_MS after it went out (the guest's
 * resolver retries). */
#pragma once
#include <stdint.h>

#include "dns.h"

#define DNS_PENDING_MAX 64
#define DNS_PENDING_TIMEOUT_MS 5000

struct dns_pending {
	int used;
	uint16_t id; /* the id the query went upstream under */
	uint64_t deadline_ms;
	struct dns_query q;
};

struct dns_pending_table {
	struct dns_pending slot[DNS_PENDING_MAX];
	uint64_t expired; /* queries forgotten unanswered, or displaced */
	uint64_t rng;     /* fallback when getrandom cannot deliver */
};

/* Forgets queries past their deadline. */
void dns_pending_expire(struct dns_pending_table *t, uint64_t now_ms);
/* The pending query sent under id, or NULL. */
struct dns_pending *dns_pending_find(struct dns_pending_table *t, uint16_t id);
/* A slot for a query going out now, under a fresh id no pending query has (the caller fills q,
 * then sets used): a free one, or the oldest, whose query is given up. */
struct dns_pending *dns_pending_slot(struct dns_pending_table *t, uint64_t now_ms);
