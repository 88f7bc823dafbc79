/* virtio-vsock connections: a fixed table of slots hashed by (guest port, host port), the list of
 * connections that owe the guest a packet, credit accounting both ways (spec 5.10.6.3), and the
 * bytes the guest sent that the host client has not taken yet. Device thread only. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Connections alive at once (host clients, guest-initiated, and those closing). */
#define VSOCK_MAX_CONNS 1024
#define VSOCK_HASH_BUCKETS 1024
/* The window we grant the guest per connection, and so the most we ever buffer for one client. */
#define VSOCK_BUF_ALLOC (256 * 1024)

enum vsock_conn_state {
	VSOCK_CONN_FREE,
	VSOCK_CONN_HANDSHAKE,  /* host client accepted, CONNECT line not read yet; not hashed */
	VSOCK_CONN_CONNECTING, /* REQUEST owed or sent to the guest, waiting for RESPONSE */
	VSOCK_CONN_ESTABLISHED,
	VSOCK_CONN_RESETTING,  /* only an RST is left to send, then the slot is freed */
};

/* Control packets a connection owes the guest (vsock_conn.pend). */
#define VSOCK_PEND_RST 0x01
#define VSOCK_PEND_REQUEST 0x02
#define VSOCK_PEND_RESPONSE 0x04
#define VSOCK_PEND_CREDIT_UPDATE 0x08
#define VSOCK_PEND_CREDIT_REQUEST 0x10

struct vsock_conn {
	struct vsock_conn *hnext;         /* hash chain, or the free list */
	struct vsock_conn *rnext, *rprev; /* ready list */
	uint32_t gen; /* bumped on release: stale epoll events carry the old one */
	int fd;       /* the Unix socket, -1 once the host side is finished */
	uint32_t guest_port, host_port;
	uint8_t state, pend;
	uint8_t guest_shut;     /* SHUTDOWN flags the guest sent */
	uint8_t host_shut;      /* what the host side will no longer do (same flags) */
	uint8_t host_shut_sent; /* the part of host_shut the guest has been told */
	uint8_t known;          /* the guest knows this connection: it gets an RST when dropped */
	uint8_t queued;         /* on the ready list */
	uint8_t readable, writable, hup, rdhup; /* socket readiness (edge-triggered, kept here) */
	uint8_t shut_wr;        /* the client was given EOF */
	uint8_t credit_requested;

	/* Guest to host, against our window: bytes received, bytes passed on (or dropped because
	 * the client is gone), and the fwd_cnt the guest last saw. */
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_sent;
	/* Host to guest, against the guest's window. */
	uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;

	/* Bytes from the guest the client could not take yet: a ring of VSOCK_BUF_ALLOC, allocated
	 * the first time the client is slow. */
	uint8_t *buf;
	uint32_t buf_head, buf_len;
};

struct vsock_conns {
	struct vsock_conn slots[VSOCK_MAX_CONNS];
	struct vsock_conn *buckets[VSOCK_HASH_BUCKETS];
	struct vsock_conn *free_list;
	struct vsock_conn *ready_head, *ready_tail;
	unsigned count;
};

void vsock_conns_init(struct vsock_conns *t);
/* A zeroed slot (fd -1, state FREE, not hashed), or NULL when the table is full. */
struct vsock_conn *vsock_conn_alloc(struct vsock_conns *t);
/* Unhashes, dequeues, frees the buffer and returns the slot. Does not close fd. */
void vsock_conn_release(struct vsock_conns *t, struct vsock_conn *c);

void vsock_conn_hash(struct vsock_conns *t, struct vsock_conn *c);
struct vsock_conn *vsock_conn_find(struct vsock_conns *t, uint32_t guest_port,
				   uint32_t host_port);

/* Ready list: FIFO, so connections take turns at the guest's rx buffers. */
void vsock_conn_ready_push(struct vsock_conns *t, struct vsock_conn *c);
struct vsock_conn *vsock_conn_ready_pop(struct vsock_conns *t);

/* Bytes we may still send the guest: its buf_alloc minus what it has not consumed. 0 when the
 * guest's counters make no sense (fwd_cnt ahead of what we sent). */
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);
/* Whether len more bytes from the guest stay inside the window it was last told about. */
int vsock_conn_window_fits(const struct vsock_conn *c, uint32_t len);
/* After fwd_cnt moved: owes the guest a CREDIT_UPDATE when half our window was consumed since it
 * last heard, or when it has less than one full packet of credit left (it may be blocked). */
void vsock_conn_check_credit(struct vsock_conn *c);

/* Appends len bytes from iov to the ring; the window check guarantees room. -ENOMEM if the ring
 * cannot be allocated. */
int vsock_conn_buf_put(struct vsock_conn *c, const struct iovec *iov, unsigned n, size_t len);
/* The buffered bytes as one or two iovecs; returns the count (0 when empty). */
unsigned vsock_conn_buf_peek(const struct vsock_conn *c, struct iovec iov[2]);
void vsock_conn_buf_consume(struct vsock_conn *c, size_t n);
