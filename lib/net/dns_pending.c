#define _GNU_SOURCE
#include "dns_pending.h"

#include <sys/random.h>
#include <time.h>

void dns_pending_expire(struct dns_pending_table *t, uint64_t now_ms)
{
	for (unsigned i = 0; i < DNS_PENDING_MAX; i++) {
		if (t->slot[i].used && t->slot[i].deadline_ms <= now_ms) {
			t->slot[i].used = 0;
			t->expired++;
		}
	}
}

struct dns_pending *dns_pending_find(struct dns_pending_table *t, uint16_t id)
{
	for (unsigned i = 0; i < DNS_PENDING_MAX; i++)
		if (t->slot[i].used && t->slot[i].id == id)
			return &t->slot[i];
	return NULL;
}

/* Ids that go upstream must be unpredictable: a guessable one lets an off-path sender forge
 * answers that admit addresses. */
static uint16_t dns_pending_random_id(struct dns_pending_table *t)
{
	uint16_t id;
	struct timespec ts;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) == sizeof(id))
		return id;
	if (!t->rng) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)t;
	}
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return (uint16_t)(t->rng >> 16);
}

struct dns_pending *dns_pending_slot(struct dns_pending_table *t, uint64_t now_ms)
{
	struct dns_pending *p = &t->slot[0];

	for (unsigned i = 0; i < DNS_PENDING_MAX && p->used; i++)
		if (!t->slot[i].used || t->slot[i].deadline_ms < p->deadline_ms)
			p = &t->slot[i];
	if (p->used)
		t->expired++;
	p->used = 0;
	p->deadline_ms = now_ms + DNS_PENDING_TIMEOUT_MS;
	do
		p->id = dns_pending_random_id(t);
	while (dns_pending_find(t, p->id));
	return p;
}
