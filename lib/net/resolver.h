/* The sandbox's DNS server, without its socket: what to do with a guest's query frame (the ones
 * egress_check marks EGRESS_LOCAL) and with a datagram from the upstream resolver. The caller
 * owns the I/O: it sends RESOLVER_FORWARD messages to the upstream server (over a connected UDP
 * socket) and injects RESOLVER_REPLY frames into the guest's RX queue (virtio_net_inject).
 *
 * A query for a name the policy does not allow is answered at once with NXDOMAIN and recorded
 * as a denial (egress_deny_name); a malformed one gets FORMERR/NOTIMP/REFUSED when its header is
 * readable and nothing otherwise. An allowed query is forwarded under a fresh random id as a
 * query we build ourselves from the parsed question (nothing else the guest wrote goes out). The
 * upstream answer must carry that id and question; its A records for the name (through CNAMEs)
 * are admitted by the egress policy before the answer, with the guest's id, goes to the guest.
 * Queries unanswered after DNS_PENDING_TIMEOUT_MS are forgotten (the guest's resolver retries);
 * with DNS_PENDING_MAX in flight, a new one displaces the oldest. DNS over TCP is not served.
 *
 * Device thread only: no locks of its own (the egress calls take the egress lock). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "dns_pending.h"
#include "egress.h"
#include "packet.h"

/* A DNS answer in one Ethernet frame at MTU 1500: what out buffers should hold. */
#define RESOLVER_MSG_MAX (1500 - PKT_IP_HLEN - PKT_UDP_HLEN)
#define RESOLVER_FRAME_MAX (PKT_ETH_HLEN + 1500)

enum resolver_action {
	RESOLVER_DROP,    /* nothing to send */
	RESOLVER_REPLY,   /* out holds an Ethernet frame for the guest */
	RESOLVER_FORWARD, /* out holds a DNS message for the upstream server */
};

struct resolver_stats {
	uint64_t queries;   /* guest queries that parsed */
	uint64_t refused;   /* names not allowed */
	uint64_t errors;    /* malformed queries answered with an error code */
	uint64_t forwarded;
	uint64_t answered;  /* upstream answers passed to the guest */
	uint64_t dropped;   /* guest frames and upstream datagrams thrown away */
	uint64_t expired;   /* forwarded queries never answered, or displaced */
};

struct resolver;

int resolver_new(struct egress *e, struct resolver **out);
void resolver_free(struct resolver *r);

/* A frame from the guest (UDP to the resolver, port 53). out gets a frame for the guest or a
 * message for upstream; cap should be RESOLVER_FRAME_MAX. */
enum resolver_action resolver_guest_frame(struct resolver *r, const uint8_t *frame, size_t len,
					  uint64_t now_ms, uint8_t *out, size_t cap,
					  size_t *out_len);
/* A datagram from the upstream server. RESOLVER_REPLY (out: the frame for the guest) when it
 * answers a pending query; RESOLVER_DROP otherwise, the query still pending if it did not match. */
enum resolver_action resolver_upstream_reply(struct resolver *r, const uint8_t *msg, size_t len,
					     uint64_t now_ms, uint8_t *out, size_t cap,
					     size_t *out_len);
/* Forgets queries past their deadline (the two calls above do it too). */
void resolver_expire(struct resolver *r, uint64_t now_ms);
void resolver_get_stats(const struct resolver *r, struct resolver_stats *out);
