/* The trusted half of the sandbox's DNS, outside the jailed VMM (sandbox-dns-guard): it sits
 * between the VMM's DNS server and the upstream resolver, lets through only queries for names
 * the policy allows, and says which addresses each real upstream answer admits, so that the
 * policy's second layer (nftables on the host, which the VMM cannot touch) admits exactly those.
 * Nothing the VMM sends is believed: a compromised VMM can ask only for allowed names, and only
 * an answer to a query it let through, carrying that query's id and question, admits anything,
 * under the same rules as the VMM's own (egress_admit: the name still allowed, no special
 * ranges unless admit_private, the TTL clamped). Nothing here does I/O. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "dns_pending.h"
#include "egress.h"

/* The largest query dns_guard_query builds: header, a name, type and class, an OPT record. */
#define DNS_GUARD_QUERY_MAX (DNS_HDR_LEN + DNS_NAME_WIRE_MAX + 4 + 11)

struct dns_guard_stats {
	uint64_t forwarded; /* queries let through */
	uint64_t refused;   /* queries for names the policy does not allow */
	uint64_t dropped;   /* malformed queries, datagrams answering nothing pending */
	uint64_t answered;  /* answers passed back */
	uint64_t admitted;  /* addresses admitted from them */
};

struct dns_guard;

/* Admissions the guard remembers (address and name), to take back exactly those of a name a new
 * policy drops. */
#define DNS_GUARD_ADMITTED_MAX 1024

/* What a new policy asks of the second layer's sets. */
enum dns_guard_change {
	DNS_GUARD_KEEP,    /* no name it admitted for was taken off: nothing */
	DNS_GUARD_REBUILD, /* empty them, then admit again what dns_guard_set_policy kept */
	DNS_GUARD_EMPTY,   /* empty them: it forgot admissions to make room, so it cannot tell */
};

/* The policy starts as "none". 0, -ENOMEM. */
int dns_guard_new(int admit_private, struct dns_guard **out);
void dns_guard_free(struct dns_guard *g);
/* Replaces the policy (g owns p). When a name it admitted addresses for is no longer allowed,
 * the addresses still admitted for names that are go in kept (DNS_GUARD_ADMITTED_MAX of room;
 * *n_kept how many; ttl: seconds left of their admission, 0 when only their idle grace may
 * hold them open) and DNS_GUARD_REBUILD is returned. */
enum dns_guard_change dns_guard_set_policy(struct dns_guard *g, struct egress_policy *p,
					   uint64_t now_ms, struct dns_a *kept, size_t *n_kept);

/* A query the VMM wants sent upstream: 1 when out (cap: at least DNS_GUARD_QUERY_MAX) holds
 * the query to send, rebuilt from the parsed question under an id of the guard's own
 * (dns_build_query: nothing else the VMM wrote goes out, and the VMM cannot choose the id an
 * off-path forger would have to guess); 0 to drop it (not a standard query with one question,
 * or a name the policy does not allow). */
int dns_guard_query(struct dns_guard *g, const uint8_t *msg, size_t len, uint64_t now_ms,
		    uint8_t *out, size_t cap, size_t *out_len);
/* A datagram from upstream: 1 when it answers a pending query (msg, its id set back to the
 * VMM's, is to be passed on; admit gets the addresses it admits, their TTLs clamped as the VMM
 * clamps them, *n_admit how many), 0 to drop it (the query, if any, stays pending for the real
 * answer). */
int dns_guard_reply(struct dns_guard *g, uint8_t *msg, size_t len, uint64_t now_ms,
		    struct dns_a admit[DNS_MAX_A], size_t *n_admit);
void dns_guard_get_stats(const struct dns_guard *g, struct dns_guard_stats *out);
