/* The sandbox's egress policy, enforced per frame in the virtio-net TX path before anything
 * leaves the VMM (docs/networking.md has the full rules).
 *
 * Modes: "none" (nothing leaves), "all" (every well-formed IPv4 or ARP frame of the guest's own
 * addresses), "allow" (an allowlist of IPv4 CIDR[:port] rules and domain names). Domains are let
 * through by our own DNS server: it answers only names on the list and admits the IPv4 addresses
 * it answered with, for their TTL. Whatever the mode:
 * - frames the packet parser refuses (malformed, IPv6, VLAN-tagged, other ethertypes) are denied;
 * - a frame whose source MAC or IP is not the guest's is denied (when those are configured);
 * - UDP to the resolver address, port 53, is EGRESS_LOCAL: the VMM's DNS server takes it, it never
 *   reaches the backend.
 * In "allow" mode, also: ARP only for the gateway's or the resolver's address; fragments and
 * packets with IP options are denied (a non-first fragment has no ports to check, a first one
 * may be cut inside its TCP header, and the guest, with PMTU discovery, never needs to send
 * either); TCP or UDP to port 53 anywhere but our resolver only through a rule that names port 53
 * explicitly; then a rule or a live DNS admission must cover the destination.
 *
 * Rules: "10.0.0.0/8" (any protocol to that network), "192.168.1.5:8080" (TCP and UDP to that
 * port of that host; a rule with a port never matches ICMP), "1.2.3.4/32:53". Strict syntax:
 * dotted quads without leading zeros, host bits clear, prefix 0 to 32, port 1 to 65535.
 * Domains: "example.com" (exactly that name) and "*.example.com" (any name below it, not the name
 * itself); case-insensitive, a trailing dot ignored; letters, digits, '-' and '_' only; no port.
 *
 * Admissions: an address answered for an allowed name is admitted for the record's TTL, clamped
 * to [ttl_min_s, ttl_max_s]; while packets to it are let through it stays admitted at least
 * idle_grace_s past the last one, so a long transfer outlives a short TTL (the guest could
 * re-resolve the name for the same effect anyway). Addresses in private, loopback, link-local,
 * multicast and reserved ranges are never admitted from DNS unless admit_private is set: an
 * allowed domain must not be able to point the guest at the host's neighbourhood (DNS
 * rebinding); explicit rules can still open those.
 *
 * Every denial is counted per reason and written to a bounded ring of records (destination,
 * protocol, reason, time), readable with a cursor; the VMM's log gets at most
 * EGRESS_LOG_PER_S lines a second and a count of the rest.
 *
 * Threads: one mutex guards the policy, the admissions and the counters. The TX path takes it
 * once per frame for a short decision (a linear pass over the rules, a hash lookup for
 * admissions); replacing the policy from another thread swaps a pointer under it, so every frame
 * is decided entirely by the old policy or entirely by the new one. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "packet.h"

#define EGRESS_MAX_RULES 1024
#define EGRESS_MAX_DOMAINS 1024
#define EGRESS_MAX_ADMITTED 1024 /* live (ip, name) admissions; the soonest to expire goes first */
#define EGRESS_LOG_SIZE 256      /* denial records kept */
#define EGRESS_LOG_PER_S 10      /* denial lines a second in the VMM's log */

#define EGRESS_TTL_MIN_S 30
#define EGRESS_TTL_MAX_S 86400
#define EGRESS_IDLE_GRACE_S 300

enum egress_mode { EGRESS_MODE_NONE, EGRESS_MODE_ALL, EGRESS_MODE_ALLOW };

enum egress_verdict {
	EGRESS_DENY,
	EGRESS_PASS,  /* write it to the backend */
	EGRESS_LOCAL, /* for the VMM's own DNS server (UDP to resolver_ip:53) */
};

enum egress_reason {
	EGRESS_R_NONE,        /* not denied */
	EGRESS_R_MALFORMED,   /* the packet parser refused the frame */
	EGRESS_R_PROTOCOL,    /* IPv6, a VLAN tag, another ethertype: the guest is IPv4 only */
	EGRESS_R_MODE_NONE,   /* policy "none" */
	EGRESS_R_SPOOFED,     /* source MAC or IP is not the guest's */
	EGRESS_R_ARP,         /* ARP for an address other than the gateway's or the resolver's */
	EGRESS_R_FRAGMENT,
	EGRESS_R_IP_OPTIONS,
	EGRESS_R_DNS,         /* DNS to another server than ours, or over TCP */
	EGRESS_R_NOT_ALLOWED, /* no rule and no live admission covers the destination */
	EGRESS_R_DNS_NAME,    /* our DNS server refused a name the policy does not allow */
	EGRESS_R_COUNT
};

/* The sandbox's addresses, fixed for its life. Zero fields are not checked (MAC, guest IP) or
 * not served (gateway: no ARP; resolver: no DNS server, port 53 denied). Tuning fields at 0 take
 * the EGRESS_* defaults. */
struct egress_config {
	uint8_t guest_mac[PKT_MAC_LEN];
	uint32_t guest_ip, gateway_ip, resolver_ip; /* host order */
	uint32_t ttl_min_s, ttl_max_s, idle_grace_s;
	int admit_private;
	int quiet; /* no lines in the VMM's log (the records and counters are kept) */
};

struct egress_denial {
	uint64_t seq;       /* 0, 1, 2, ... over the sandbox's life */
	uint64_t time_ms;   /* the now_ms of the decision: CLOCK_MONOTONIC, as vmm.log's stamps */
	uint8_t reason;     /* enum egress_reason */
	uint8_t proto;      /* IP protocol; 0 for ARP and frames that did not parse */
	uint16_t ethertype;
	uint32_t dst_ip;    /* host order; for ARP the address asked for */
	uint16_t dst_port;  /* TCP and UDP; 0 otherwise */
	char name[DNS_NAME_TEXT_MAX + 1]; /* EGRESS_R_DNS_NAME: the name asked for; else "" */
};

/* What a denial stopped, as logs and the denial log name it: "tcp", "udp", "icmp", "ip",
 * "dns" (a name asked of our DNS server), "arp", "frame". */
const char *egress_denial_proto(const struct egress_denial *d);

struct egress_stats {
	uint64_t passed, local, denied;
	uint64_t by_reason[EGRESS_R_COUNT];
	uint64_t admissions;      /* addresses admitted (or refreshed) from DNS answers */
	uint64_t refused_private; /* DNS answers in special ranges not admitted */
	size_t admitted_now;      /* entries in the table, expired ones not yet purged included */
};

struct egress;
struct egress_policy;

/* The policy starts as "none". -EINVAL for a config that makes no sense (min TTL above max),
 * -ENOMEM. */
int egress_new(const struct egress_config *cfg, struct egress **out);
void egress_free(struct egress *e);

/* A policy under construction: fill it, then hand it to egress_set_policy. */
struct egress_policy *egress_policy_new(enum egress_mode mode);
/* One rule or domain, syntax above. -EINVAL when the entry is neither (or the mode is not
 * "allow"), -E2BIG when the list is full, -ENOMEM. */
int egress_policy_add(struct egress_policy *p, const char *entry);
void egress_policy_free(struct egress_policy *p);
/* "none", "all" or "allow"; -EINVAL otherwise. */
int egress_mode_parse(const char *s, enum egress_mode *out);

/* Installs p (which e now owns) in place of the current policy: the next frame is decided by it.
 * Admissions for names p does not allow are dropped (all of them unless p is "allow"). Any
 * thread. */
void egress_set_policy(struct egress *e, struct egress_policy *p);

/* Parses frame, decides, counts, and records a denial. The TX path's one call. */
enum egress_verdict egress_check(struct egress *e, const uint8_t *frame, size_t len,
				 uint64_t now_ms);
/* The decision alone for an already parsed frame (parse_err from pkt_parse): nothing is counted
 * or recorded, though a pass to an admitted address refreshes it. *why gets the reason
 * (EGRESS_R_NONE unless denied). */
enum egress_verdict egress_decide(struct egress *e, const struct pkt_info *pi,
				  enum pkt_error parse_err, uint64_t now_ms, enum egress_reason *why);

/* Whether our DNS server may answer `name` (text form, any case, no trailing dot needed): any
 * name under "all", none under "none", the listed ones under "allow". */
int egress_name_allowed(struct egress *e, const char *name);
/* Counts and records a name our DNS server refused. */
void egress_deny_name(struct egress *e, const char *name, uint64_t now_ms);
/* Admits ip for ttl_s seconds as an answer for name. Returns 1 when admitted (or extended), 0 when
 * not: not in "allow" mode, name no longer allowed, a special address. */
int egress_admit(struct egress *e, const char *name, uint32_t ip, uint32_t ttl_s,
		 uint64_t now_ms);

void egress_get_stats(struct egress *e, struct egress_stats *out);
/* Copies up to max denial records, oldest first, starting at sequence number *cursor (0 for the
 * first call), and moves *cursor past them. Records overwritten before they were read are skipped:
 * *lost (if not NULL) gets how many. Returns the number copied. */
size_t egress_log_read(struct egress *e, uint64_t *cursor, struct egress_denial *out, size_t max,
		       uint64_t *lost);
const char *egress_reason_name(enum egress_reason r);

/* CLOCK_MONOTONIC in milliseconds: the now_ms the VMM passes. */
uint64_t egress_now_ms(void);

/* The two entry syntaxes, for validating configuration early. */
int egress_cidr_parse(const char *s, uint32_t *net, uint8_t *prefix, uint16_t *port);
/* Normalises a domain entry into out (lowercase, no trailing dot, no "*." prefix: *wildcard says
 * whether there was one). */
int egress_domain_parse(const char *s, char out[DNS_NAME_TEXT_MAX + 1], int *wildcard);
