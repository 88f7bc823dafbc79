#define _GNU_SOURCE
#include "egress.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define DNS_PORT 53
/* Open addressing, kept at most half full. */
#define ADMIT_SLOTS (2 * EGRESS_MAX_ADMITTED)
#define ADMIT_BITS 11
_Static_assert(ADMIT_SLOTS == 1 << ADMIT_BITS, "admission table size");

struct egress_rule {
	uint32_t net, mask;
	uint16_t port; /* 0: any protocol, any port */
};

struct egress_domain {
	char name[DNS_NAME_TEXT_MAX + 1];
	int wildcard;
};

struct egress_policy {
	enum egress_mode mode;
	size_t n_rules, n_domains;
	struct egress_rule *rules;
	struct egress_domain *domains;
};

/* One address admitted as an answer for one name (an address may serve several names). */
struct egress_admit {
	uint32_t ip;
	uint8_t used;
	uint64_t expiry_ms;
	char *name;
};

struct egress {
	pthread_mutex_t lock;
	struct egress_config cfg;
	struct egress_policy *policy;

	struct egress_admit admit[ADMIT_SLOTS];
	size_t n_admit;

	struct egress_stats stats;
	struct egress_denial log[EGRESS_LOG_SIZE];
	uint64_t log_seq; /* records ever written; the newest is log_seq - 1 */
	uint64_t log_window_ms;
	unsigned log_lines;
	uint64_t log_suppressed;
};

uint64_t egress_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *egress_reason_name(enum egress_reason r)
{
	static const char *const names[EGRESS_R_COUNT] = {
		[EGRESS_R_NONE] = "allowed",
		[EGRESS_R_MALFORMED] = "malformed frame",
		[EGRESS_R_PROTOCOL] = "not IPv4 or ARP",
		[EGRESS_R_MODE_NONE] = "policy none",
		[EGRESS_R_SPOOFED] = "source address is not the guest's",
		[EGRESS_R_ARP] = "ARP for an address other than the gateway",
		[EGRESS_R_FRAGMENT] = "IP fragment",
		[EGRESS_R_IP_OPTIONS] = "IP options",
		[EGRESS_R_DNS] = "DNS to another server",
		[EGRESS_R_NOT_ALLOWED] = "destination not allowed",
		[EGRESS_R_DNS_NAME] = "DNS name not allowed",
	};

	return r < EGRESS_R_COUNT ? names[r] : "?";
}

/* ---- parsing policy entries ---- */

/* A decimal number of 1 to `max_digits` digits without a leading zero (bar "0" itself), at most
 * max. */
static int egress_parse_uint(const char *s, size_t len, unsigned max_digits, unsigned long max,
			     unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0 || len > max_digits || (len > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static uint32_t egress_mask(uint8_t prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

int egress_cidr_parse(const char *s, uint32_t *net, uint8_t *prefix, uint16_t *port)
{
	const char *colon = strchr(s, ':'), *end = colon ? colon : s + strlen(s);
	const char *slash = memchr(s, '/', (size_t)(end - s));
	unsigned long pfx = 32, prt = 0;
	uint32_t ip;

	if (pkt_ipv4_parse(s, (size_t)((slash ? slash : end) - s), &ip) < 0)
		return -EINVAL;
	if (slash && egress_parse_uint(slash + 1, (size_t)(end - slash - 1), 2, 32, &pfx) < 0)
		return -EINVAL;
	if (colon && (egress_parse_uint(colon + 1, strlen(colon + 1), 5, 65535, &prt) < 0 ||
		      prt == 0))
		return -EINVAL;
	/* Host bits set are most likely a typo for another network: refused, not masked. */
	if (ip & ~egress_mask((uint8_t)pfx))
		return -EINVAL;
	*net = ip;
	*prefix = (uint8_t)pfx;
	*port = (uint16_t)prt;
	return 0;
}

int egress_domain_parse(const char *s, char out[DNS_NAME_TEXT_MAX + 1], int *wildcard)
{
	size_t len = strlen(s), label = 0, n = 0;
	int numeric = 1;

	*wildcard = 0;
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		*wildcard = 1;
		s += 2;
		len -= 2;
	}
	if (len && s[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_TEXT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
			numeric = 1;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
			   c == '_' || (c >= '0' && c <= '9')) {
			if (++label > 63)
				return -EINVAL;
			if (c < '0' || c > '9')
				numeric = 0;
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
		} else {
			return -EINVAL;
		}
		out[n++] = c;
	}
	/* An empty last label ("a..") or an all-digit one: no top-level domain is numeric, so
	 * "1.2.3.4.5" is a mistyped address, not a name. */
	if (label == 0 || numeric)
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

/* A dotted quad starts it, optionally followed by a prefix or port: an address rule. */
static int egress_looks_like_ip(const char *s)
{
	size_t i = 0;

	while (s[i] && s[i] != '/' && s[i] != ':') {
		if ((s[i] < '0' || s[i] > '9') && s[i] != '.')
			return 0;
		i++;
	}
	return i > 0;
}

struct egress_policy *egress_policy_new(enum egress_mode mode)
{
	struct egress_policy *p = calloc(1, sizeof(*p));

	if (p)
		p->mode = mode;
	return p;
}

void egress_policy_free(struct egress_policy *p)
{
	if (!p)
		return;
	free(p->rules);
	free(p->domains);
	free(p);
}

int egress_policy_add(struct egress_policy *p, const char *entry)
{
	if (p->mode != EGRESS_MODE_ALLOW)
		return -EINVAL;
	if (egress_looks_like_ip(entry)) {
		struct egress_rule r;
		uint8_t prefix;

		if (egress_cidr_parse(entry, &r.net, &prefix, &r.port) < 0)
			return -EINVAL;
		r.mask = egress_mask(prefix);
		if (p->n_rules == EGRESS_MAX_RULES)
			return -E2BIG;
		if (!p->rules) {
			p->rules = calloc(EGRESS_MAX_RULES, sizeof(*p->rules));
			if (!p->rules)
				return -ENOMEM;
		}
		p->rules[p->n_rules++] = r;
	} else {
		struct egress_domain d;

		if (egress_domain_parse(entry, d.name, &d.wildcard) < 0)
			return -EINVAL;
		if (p->n_domains == EGRESS_MAX_DOMAINS)
			return -E2BIG;
		if (!p->domains) {
			p->domains = calloc(EGRESS_MAX_DOMAINS, sizeof(*p->domains));
			if (!p->domains)
				return -ENOMEM;
		}
		p->domains[p->n_domains++] = d;
	}
	return 0;
}

int egress_mode_parse(const char *s, enum egress_mode *out)
{
	if (strcmp(s, "none") == 0)
		*out = EGRESS_MODE_NONE;
	else if (strcmp(s, "all") == 0)
		*out = EGRESS_MODE_ALL;
	else if (strcmp(s, "allow") == 0)
		*out = EGRESS_MODE_ALLOW;
	else
		return -EINVAL;
	return 0;
}

/* ---- names ---- */

static int egress_domain_match(const struct egress_domain *d, const char *name, size_t len)
{
	size_t dl = strlen(d->name);

	if (!d->wildcard)
		return len == dl && dns_name_equal(name, d->name);
	/* Below the domain: "x.<domain>", at least one label more. */
	return len > dl + 1 && name[len - dl - 1] == '.' && dns_name_equal(name + len - dl, d->name);
}

static int egress_policy_allows_name(const struct egress_policy *p, const char *name)
{
	char trimmed[DNS_NAME_TEXT_MAX + 1];
	size_t len = strlen(name);

	if (len && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_TEXT_MAX)
		return 0;
	switch (p->mode) {
	case EGRESS_MODE_ALL:
		return 1;
	case EGRESS_MODE_ALLOW:
		/* The matchers compare up to the terminator: without the trailing dot. */
		memcpy(trimmed, name, len);
		trimmed[len] = '\0';
		for (size_t i = 0; i < p->n_domains; i++)
			if (egress_domain_match(&p->domains[i], trimmed, len))
				return 1;
		return 0;
	default:
		return 0;
	}
}

/* ---- admissions: linear probing keyed by address ---- */

static size_t egress_admit_home(uint32_t ip)
{
	return (size_t)((ip * 2654435761u) >> (32 - ADMIT_BITS));
}

/* Backward-shift deletion: later entries of the probe run move up, so lookups never need
 * tombstones. */
static void egress_admit_delete(struct egress *e, size_t i)
{
	const size_t mask = ADMIT_SLOTS - 1;
	size_t j = i;

	free(e->admit[i].name);
	e->n_admit--;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!e->admit[j].used)
			break;
		k = egress_admit_home(e->admit[j].ip);
		/* Entry j may fill the hole at i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		e->admit[i] = e->admit[j];
		i = j;
	}
	memset(&e->admit[i], 0, sizeof(e->admit[i]));
}

/* Whether an admission for name still stands under policy p: only "allow" admits anything. */
static int egress_admit_stands(const struct egress_policy *p, const char *name)
{
	return p->mode == EGRESS_MODE_ALLOW && egress_policy_allows_name(p, name);
}

/* Drops expired entries, and with policy p, entries p would not have admitted. */
static void egress_admit_purge(struct egress *e, uint64_t now_ms, const struct egress_policy *p)
{
	for (size_t i = 0; i < ADMIT_SLOTS;) {
		struct egress_admit *a = &e->admit[i];

		/* Deleting pulls a later entry into slot i: look at i again. */
		if (a->used && (a->expiry_ms <= now_ms || (p && !egress_admit_stands(p, a->name))))
			egress_admit_delete(e, i);
		else
			i++;
	}
}

static int egress_admitted(struct egress *e, uint32_t ip, uint64_t now_ms)
{
	uint64_t until = now_ms + (uint64_t)e->cfg.idle_grace_s * 1000;
	int found = 0;

	for (size_t i = egress_admit_home(ip); e->admit[i].used; i = (i + 1) & (ADMIT_SLOTS - 1)) {
		struct egress_admit *a = &e->admit[i];

		if (a->ip != ip || a->expiry_ms <= now_ms)
			continue;
		/* In use: keep it at least the grace period past this packet. */
		if (a->expiry_ms < until)
			a->expiry_ms = until;
		found = 1;
	}
	return found;
}

static int egress_special_ip(uint32_t ip)
{
	static const struct {
		uint32_t net;
		uint8_t prefix;
	} ranges[] = {
		{ 0x00000000, 8 },  /* "this" network */
		{ 0x0a000000, 8 },  /* private */
		{ 0x64400000, 10 }, /* carrier-grade NAT */
		{ 0x7f000000, 8 },  /* loopback */
		{ 0xa9fe0000, 16 }, /* link-local, cloud metadata */
		{ 0xac100000, 12 }, /* private */
		{ 0xc0000000, 24 }, /* IETF protocol assignments */
		{ 0xc0a80000, 16 }, /* private */
		{ 0xc6120000, 15 }, /* benchmarking */
		{ 0xe0000000, 4 },  /* multicast */
		{ 0xf0000000, 4 },  /* reserved, broadcast */
	};

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if ((ip & egress_mask(ranges[i].prefix)) == ranges[i].net)
			return 1;
	return 0;
}

/* The entry expiring first, to make room. */
static void egress_admit_evict(struct egress *e)
{
	size_t victim = ADMIT_SLOTS;

	for (size_t i = 0; i < ADMIT_SLOTS; i++)
		if (e->admit[i].used &&
		    (victim == ADMIT_SLOTS || e->admit[i].expiry_ms < e->admit[victim].expiry_ms))
			victim = i;
	if (victim < ADMIT_SLOTS)
		egress_admit_delete(e, victim);
}

int egress_admit(struct egress *e, const char *name, uint32_t ip, uint32_t ttl_s,
		 uint64_t now_ms)
{
	uint64_t expiry;
	size_t i;
	char *copy;
	int ret = 0;

	if (ttl_s < e->cfg.ttl_min_s)
		ttl_s = e->cfg.ttl_min_s;
	if (ttl_s > e->cfg.ttl_max_s)
		ttl_s = e->cfg.ttl_max_s;
	expiry = now_ms + (uint64_t)ttl_s * 1000;
	pthread_mutex_lock(&e->lock);
	/* The policy may have changed since the query was let through. */
	if (!egress_admit_stands(e->policy, name))
		goto out;
	if (egress_special_ip(ip) && !e->cfg.admit_private) {
		e->stats.refused_private++;
		goto out;
	}
	for (i = egress_admit_home(ip); e->admit[i].used; i = (i + 1) & (ADMIT_SLOTS - 1)) {
		struct egress_admit *a = &e->admit[i];

		if (a->ip == ip && dns_name_equal(a->name, name)) {
			if (a->expiry_ms < expiry)
				a->expiry_ms = expiry;
			e->stats.admissions++;
			ret = 1;
			goto out;
		}
	}
	if (e->n_admit >= EGRESS_MAX_ADMITTED)
		egress_admit_purge(e, now_ms, NULL);
	if (e->n_admit >= EGRESS_MAX_ADMITTED)
		egress_admit_evict(e);
	copy = strdup(name);
	if (!copy)
		goto out;
	/* Deletions may have moved entries: find the free slot afresh. */
	for (i = egress_admit_home(ip); e->admit[i].used; i = (i + 1) & (ADMIT_SLOTS - 1))
		;
	e->admit[i] = (struct egress_admit){ .ip = ip, .used = 1, .expiry_ms = expiry, .name = copy };
	e->n_admit++;
	e->stats.admissions++;
	ret = 1;
out:
	pthread_mutex_unlock(&e->lock);
	return ret;
}

/* ---- life cycle ---- */

int egress_new(const struct egress_config *cfg, struct egress **out)
{
	struct egress *e;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	if (!e->cfg.ttl_min_s)
		e->cfg.ttl_min_s = EGRESS_TTL_MIN_S;
	if (!e->cfg.ttl_max_s)
		e->cfg.ttl_max_s = EGRESS_TTL_MAX_S;
	if (!e->cfg.idle_grace_s)
		e->cfg.idle_grace_s = EGRESS_IDLE_GRACE_S;
	e->policy = egress_policy_new(EGRESS_MODE_NONE);
	if (e->cfg.ttl_min_s > e->cfg.ttl_max_s || !e->policy) {
		int err = e->policy ? -EINVAL : -ENOMEM;

		egress_policy_free(e->policy);
		free(e);
		return err;
	}
	pthread_mutex_init(&e->lock, NULL);
	*out = e;
	return 0;
}

void egress_free(struct egress *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < ADMIT_SLOTS; i++)
		free(e->admit[i].name);
	egress_policy_free(e->policy);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void egress_set_policy(struct egress *e, struct egress_policy *p)
{
	struct egress_policy *old;

	pthread_mutex_lock(&e->lock);
	old = e->policy;
	e->policy = p;
	/* Only the names are checked (now_ms 0 expires nothing): time is the packets' business. */
	egress_admit_purge(e, 0, p);
	pthread_mutex_unlock(&e->lock);
	egress_policy_free(old);
}

/* ---- decisions ---- */

static int egress_mac_set(const uint8_t *mac)
{
	static const uint8_t zero[PKT_MAC_LEN];

	return memcmp(mac, zero, PKT_MAC_LEN) != 0;
}

static int egress_rule_match(const struct egress_policy *p, const struct pkt_info *pi,
			     int need_port)
{
	int ported = pi->l4 && (pi->proto == PKT_PROTO_TCP || pi->proto == PKT_PROTO_UDP);

	for (size_t i = 0; i < p->n_rules; i++) {
		const struct egress_rule *r = &p->rules[i];

		if ((pi->dst_ip & r->mask) != r->net)
			continue;
		if (r->port ? ported && r->port == pi->dst_port : !need_port)
			return 1;
	}
	return 0;
}

static enum egress_reason egress_decide_arp(struct egress *e, const struct pkt_info *pi)
{
	if (egress_mac_set(e->cfg.guest_mac) && memcmp(pi->arp_sha, e->cfg.guest_mac, PKT_MAC_LEN))
		return EGRESS_R_SPOOFED;
	if (e->cfg.guest_ip && pi->src_ip != e->cfg.guest_ip)
		return EGRESS_R_SPOOFED;
	if (e->policy->mode == EGRESS_MODE_ALL)
		return EGRESS_R_NONE;
	if ((e->cfg.gateway_ip && pi->dst_ip == e->cfg.gateway_ip) ||
	    (e->cfg.resolver_ip && pi->dst_ip == e->cfg.resolver_ip))
		return EGRESS_R_NONE;
	return EGRESS_R_ARP;
}

/* "allow" mode, for an IPv4 packet from the guest that is not for our DNS server. */
static enum egress_reason egress_decide_allow(struct egress *e, const struct pkt_info *pi,
					      uint64_t now_ms)
{
	int dns = pi->l4 && (pi->proto == PKT_PROTO_TCP || pi->proto == PKT_PROTO_UDP) &&
		  pi->dst_port == DNS_PORT;

	if (pi->frag)
		return EGRESS_R_FRAGMENT;
	if (pi->ip_options)
		return EGRESS_R_IP_OPTIONS;
	/* No DNS server but ours, unless a rule names port 53 outright. */
	if (dns) {
		if (pi->dst_ip == e->cfg.resolver_ip && e->cfg.resolver_ip)
			return EGRESS_R_DNS;
		return egress_rule_match(e->policy, pi, 1) ? EGRESS_R_NONE : EGRESS_R_DNS;
	}
	if (egress_rule_match(e->policy, pi, 0) || egress_admitted(e, pi->dst_ip, now_ms))
		return EGRESS_R_NONE;
	return EGRESS_R_NOT_ALLOWED;
}

/* Caller holds e->lock. */
static enum egress_verdict egress_decide_locked(struct egress *e, const struct pkt_info *pi,
						enum pkt_error err, uint64_t now_ms,
						enum egress_reason *why)
{
	*why = EGRESS_R_NONE;
	if (err != PKT_OK) {
		*why = err == PKT_E_IPV6 || err == PKT_E_VLAN || err == PKT_E_ETHERTYPE
			       ? EGRESS_R_PROTOCOL
			       : EGRESS_R_MALFORMED;
		return EGRESS_DENY;
	}
	if (e->policy->mode == EGRESS_MODE_NONE) {
		*why = EGRESS_R_MODE_NONE;
		return EGRESS_DENY;
	}
	if (egress_mac_set(e->cfg.guest_mac) && memcmp(pi->src_mac, e->cfg.guest_mac, PKT_MAC_LEN)) {
		*why = EGRESS_R_SPOOFED;
		return EGRESS_DENY;
	}
	if (pi->ethertype == PKT_ETHERTYPE_ARP) {
		*why = egress_decide_arp(e, pi);
		return *why == EGRESS_R_NONE ? EGRESS_PASS : EGRESS_DENY;
	}
	if (e->cfg.guest_ip && pi->src_ip != e->cfg.guest_ip) {
		*why = EGRESS_R_SPOOFED;
		return EGRESS_DENY;
	}
	if (e->cfg.resolver_ip && pi->dst_ip == e->cfg.resolver_ip && pi->l4 &&
	    pi->proto == PKT_PROTO_UDP && pi->dst_port == DNS_PORT)
		return EGRESS_LOCAL;
	if (e->policy->mode == EGRESS_MODE_ALL)
		return EGRESS_PASS;
	*why = egress_decide_allow(e, pi, now_ms);
	return *why == EGRESS_R_NONE ? EGRESS_PASS : EGRESS_DENY;
}

enum egress_verdict egress_decide(struct egress *e, const struct pkt_info *pi,
				  enum pkt_error parse_err, uint64_t now_ms, enum egress_reason *why)
{
	enum egress_verdict v;

	pthread_mutex_lock(&e->lock);
	v = egress_decide_locked(e, pi, parse_err, now_ms, why);
	pthread_mutex_unlock(&e->lock);
	return v;
}

/* ---- denials ---- */

const char *egress_denial_proto(const struct egress_denial *d)
{
	if (d->reason == EGRESS_R_DNS_NAME)
		return "dns";
	if (d->ethertype == PKT_ETHERTYPE_ARP)
		return "arp";
	switch (d->proto) {
	case PKT_PROTO_TCP:
		return "tcp";
	case PKT_PROTO_UDP:
		return "udp";
	case PKT_PROTO_ICMP:
		return "icmp";
	default:
		return d->ethertype == PKT_ETHERTYPE_IPV4 ? "ip" : "frame";
	}
}

/* At most EGRESS_LOG_PER_S lines a second: a guest must not be able to flood the log. Caller
 * holds e->lock. */
static void egress_log_line(struct egress *e, const struct egress_denial *d)
{
	char ip[16];

	if (e->cfg.quiet)
		return;
	if (d->time_ms - e->log_window_ms >= 1000 || d->time_ms < e->log_window_ms) {
		if (e->log_suppressed)
			vmm_log("egress: %llu more denials not logged",
				(unsigned long long)e->log_suppressed);
		e->log_window_ms = d->time_ms;
		e->log_lines = 0;
		e->log_suppressed = 0;
	}
	if (e->log_lines >= EGRESS_LOG_PER_S) {
		e->log_suppressed++;
		return;
	}
	e->log_lines++;
	if (d->reason == EGRESS_R_DNS_NAME)
		vmm_log("egress: denied DNS name %s (at %llu ms)", d->name,
			(unsigned long long)d->time_ms);
	else
		vmm_log("egress: denied %s to %s port %u: %s (at %llu ms)", egress_denial_proto(d),
			pkt_ipv4_format(d->dst_ip, ip), d->dst_port,
			egress_reason_name((enum egress_reason)d->reason),
			(unsigned long long)d->time_ms);
}

/* Caller holds e->lock. */
static void egress_record(struct egress *e, const struct pkt_info *pi, enum egress_reason why,
			  const char *name, uint64_t now_ms)
{
	struct egress_denial *d = &e->log[e->log_seq % EGRESS_LOG_SIZE];

	e->stats.denied++;
	e->stats.by_reason[why]++;
	memset(d, 0, sizeof(*d));
	d->seq = e->log_seq++;
	d->time_ms = now_ms;
	d->reason = (uint8_t)why;
	d->ethertype = pi->ethertype;
	d->dst_ip = pi->dst_ip;
	if (pi->ethertype == PKT_ETHERTYPE_IPV4) {
		d->proto = pi->proto;
		d->dst_port = pi->dst_port;
	}
	if (name)
		snprintf(d->name, sizeof(d->name), "%s", name);
	egress_log_line(e, d);
}

enum egress_verdict egress_check(struct egress *e, const uint8_t *frame, size_t len,
				 uint64_t now_ms)
{
	struct pkt_info pi;
	enum pkt_error err = pkt_parse(frame, len, &pi);
	enum egress_reason why;
	enum egress_verdict v;

	pthread_mutex_lock(&e->lock);
	v = egress_decide_locked(e, &pi, err, now_ms, &why);
	if (v == EGRESS_PASS)
		e->stats.passed++;
	else if (v == EGRESS_LOCAL)
		e->stats.local++;
	else
		egress_record(e, &pi, why, NULL, now_ms);
	pthread_mutex_unlock(&e->lock);
	return v;
}

int egress_name_allowed(struct egress *e, const char *name)
{
	int ok;

	pthread_mutex_lock(&e->lock);
	ok = egress_policy_allows_name(e->policy, name);
	pthread_mutex_unlock(&e->lock);
	return ok;
}

void egress_deny_name(struct egress *e, const char *name, uint64_t now_ms)
{
	struct pkt_info pi = {
		.ethertype = PKT_ETHERTYPE_IPV4,
		.proto = PKT_PROTO_UDP,
		.dst_ip = e->cfg.resolver_ip,
		.dst_port = DNS_PORT,
	};

	pthread_mutex_lock(&e->lock);
	egress_record(e, &pi, EGRESS_R_DNS_NAME, name, now_ms);
	pthread_mutex_unlock(&e->lock);
}

void egress_get_stats(struct egress *e, struct egress_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->stats;
	out->admitted_now = e->n_admit;
	pthread_mutex_unlock(&e->lock);
}

size_t egress_log_read(struct egress *e, uint64_t *cursor, struct egress_denial *out, size_t max,
		       uint64_t *lost)
{
	uint64_t first, start;
	size_t n = 0;

	pthread_mutex_lock(&e->lock);
	first = e->log_seq > EGRESS_LOG_SIZE ? e->log_seq - EGRESS_LOG_SIZE : 0;
	start = *cursor < first ? first : *cursor;
	if (lost)
		*lost = start - (*cursor < start ? *cursor : start);
	for (uint64_t s = start; s < e->log_seq && n < max; s++)
		out[n++] = e->log[s % EGRESS_LOG_SIZE];
	/* A cursor from the future (not ours) starts over at the present. */
	*cursor = start > e->log_seq ? e->log_seq : start + n;
	pthread_mutex_unlock(&e->lock);
	return n;
}
