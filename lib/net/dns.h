/* DNS messages (RFC 1035) as the sandbox's own DNS server needs them: parse a guest's query,
 * answer it with an error, build the query we forward upstream, and read the upstream reply's
 * A records with their TTLs. Nothing here does I/O.
 *
 * Every message is untrusted: the guest writes queries, and replies come off the network. Names
 * are decompressed with these rules, each a rejection (-EINVAL) when broken:
 * - a compression pointer must point strictly before the start of the label run it ends (the
 *   name's own start, or the previous pointer's target), and not into the 12-byte header: every
 *   jump goes backwards, so loops are impossible and the work is bounded by the message length;
 * - label lengths 64 to 191 (the 0x40 and 0x80 label types) are refused;
 * - the name's wire form, decompressed, is at most 255 bytes (so its text at most 253);
 * - every byte read lies inside the message.
 * A name whose labels hold anything but letters, digits, '-' and '_' is read but marked unsafe:
 * it can match no policy entry, and the text form uses '?' for such bytes. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define DNS_HDR_LEN 12
#define DNS_NAME_WIRE_MAX 255
#define DNS_NAME_TEXT_MAX 253
/* The classic UDP limit, and the EDNS size we ask upstream for at most (the DNS flag day 2020
 * value, which stays below a 1500-byte MTU). */
#define DNS_UDP_CLASSIC 512
#define DNS_UDP_EDNS_MAX 1232

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_OPT 41
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP 4
#define DNS_RCODE_REFUSED 5

/* A records taken from one reply at most; more are ignored (not admitted). */
#define DNS_MAX_A 32
/* CNAME hops followed from the question's name. */
#define DNS_MAX_CNAME_HOPS 8

struct dns_name {
	char text[DNS_NAME_TEXT_MAX + 1]; /* labels joined by '.', no trailing dot, "" for the root */
	uint8_t wire[DNS_NAME_WIRE_MAX];  /* uncompressed, ending with the zero label */
	size_t wire_len;
	int unsafe;
};

/* Reads the possibly compressed name at msg[off]. *next gets the offset just after the name as it
 * is stored at off (after the first pointer, if any). 0 or -EINVAL. */
int dns_name_read(const uint8_t *msg, size_t len, size_t off, struct dns_name *out, size_t *next);

/* Case-insensitive equality of two names' text forms (ASCII letters only fold). */
int dns_name_equal(const char *a, const char *b);

struct dns_query {
	uint16_t id;
	uint16_t flags;       /* as received: opcode and RD are echoed in answers */
	int has_question;     /* 0 when the header was all we could read */
	struct dns_name name;
	uint16_t qtype, qclass;
	uint16_t edns_size;   /* the guest's EDNS UDP size, 0 without an OPT record */
};

/* Parses a query. Returns 0 for a well-formed standard query with one IN question (q filled);
 * a positive DNS_RCODE_* when the header is readable but the query is not one we serve (q->id and
 * q->flags filled, has_question 0: answer with dns_build_error); -EINVAL when there is nothing to
 * answer (shorter than a header, or a response: a server never answers responses).
 * Served: QR 0, opcode QUERY, QDCOUNT 1, no answer or authority records, at most one additional
 * record which must be a well-formed OPT, no bytes after it, class IN. */
int dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q);

/* An answer to q with rcode and no records: q's id, QR, q's opcode and RD, RA, and q's question
 * when it has one. Returns the length written into out, 0 when cap is too small. */
size_t dns_build_error(const struct dns_query *q, uint8_t rcode, uint8_t *out, size_t cap);

/* The query we send upstream for q's question under id: RD set, the question's wire bytes as the
 * guest wrote them (its letter case kept), and an OPT record only if the guest sent one, its size
 * clamped to [DNS_UDP_CLASSIC, DNS_UDP_EDNS_MAX] and no options. Nothing else the guest wrote
 * travels on. Returns the length, 0 when cap is too small or q has no question. */
size_t dns_build_query(const struct dns_query *q, uint16_t id, uint8_t *out, size_t cap);

struct dns_a {
	uint32_t ip;  /* host order */
	uint32_t ttl; /* seconds; values with the top bit set read as 0 (RFC 2181 8) */
};

struct dns_reply {
	uint16_t id;
	uint8_t rcode;
	uint8_t truncated; /* TC */
	size_t n_a;
	struct dns_a a[DNS_MAX_A];
};

/* Checks that msg answers `asked` (the query as sent upstream: same id, a response to a standard
 * query, the same single question) and reads its answer section. Only A records (class IN, 4-byte
 * data) owned by the question's name, or by a name it reaches through CNAME records of the
 * answer (at most DNS_MAX_CNAME_HOPS hops), are returned; with an rcode other than NOERROR none
 * are. Every answer record must be well-formed (bounds, A data of 4 bytes, CNAME data holding
 * exactly one name); the authority and additional sections are not read. 0 or -EINVAL. */
int dns_parse_reply(const uint8_t *msg, size_t len, const struct dns_query *asked,
		    struct dns_reply *r);

/* Rewrites the message's id (len must be at least DNS_HDR_LEN; shorter is left alone). */
void dns_set_id(uint8_t *msg, size_t len, uint16_t id);
