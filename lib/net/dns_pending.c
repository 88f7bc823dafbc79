#include "dns_pending.h"

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
	return p;
}
