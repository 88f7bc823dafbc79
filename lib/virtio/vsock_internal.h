/* What the two halves of the vsock device share: vsock.c (virtqueues and the stream protocol) and
 * vsock_host.c (the Unix sockets). Device thread only, except where a field says otherwise. */
#pragma once
#include <stdint.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "mmio.h"
#include "queue.h"
#include "vsock.h"
#include "vsock_conn.h"
#include "vsock_packet.h"

/* RSTs owed for packets that match no connection. When it is full the device stops taking tx
 * packets until the guest gives rx buffers, so refusals are never lost and never pile up. */
#define VSOCK_RST_RING 64

struct vsock_rst {
	uint32_t guest_port, host_port;
};

struct vsock {
	uint64_t guest_cid;
	char uds_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct evloop *loop;
	int loop_added;
	/* Our own epoll set (listener, clients, wake_fd), one fd in the device loop: we dispatch
	 * its events ourselves, so a connection closed mid-batch is never called back. */
	int epfd;
	int listen_fd;
	int listen_bound;   /* we created uds_path and remove it at the end */
	int listen_paused;  /* accept hit a resource limit; resumed when a client closes */
	int wake_fd;        /* eventfd: activate and reset, from a vCPU thread */

	struct virtio_mmio *t;   /* set by the first activate (vCPU thread): atomic */
	unsigned reset_epoch;    /* bumped by reset (vCPU thread): atomic */
	unsigned seen_epoch;     /* the last reset the device thread acted on */

	struct vsock_conns conns;
	uint32_t next_port;

	struct vsock_rst rst[VSOCK_RST_RING];
	unsigned rst_head, rst_count;
	int event_pending;

	struct virtq_req tx_req, ev_req;
	/* An rx buffer popped but not filled yet (a client had nothing to read after all): used
	 * for the next packet instead of being handed back empty. */
	struct virtq_req rx_req;
	int rx_held;
	struct iovec iov[VIRTQ_MAX_SEGS];

	uint64_t drops; /* atomic */
	uint8_t drop_logged[VSOCK_DROP_KINDS];
	uint8_t full_logged;
};

/* vsock.c: connection life cycle and scheduling. */
void vsock_count_drop(struct vsock *v, enum vsock_drop why);
/* Queues c on the ready list if it owes the guest anything (asking for credit if it is blocked). */
void vsock_conn_schedule(struct vsock *v, struct vsock_conn *c);
/* Closes the client socket and frees the slot, without telling the guest. */
void vsock_conn_free(struct vsock *v, struct vsock_conn *c);
/* Ends c abortively: an RST if the guest knows c, else just frees it. */
void vsock_conn_drop(struct vsock *v, struct vsock_conn *c);
/* The host side will no longer do `flags` (VSOCK_SHUTDOWN_*): see vsock.h's close rules. */
void vsock_conn_host_shut(struct vsock *v, struct vsock_conn *c, uint8_t flags);
/* After the guest shut a direction or the client's buffer drained: EOF for the client once
 * nothing waits for it, and RST once the guest has shut both ways. */
void vsock_conn_settle(struct vsock *v, struct vsock_conn *c);
/* A host client asked for guest port `port`: allocate our port and owe the guest a REQUEST. */
void vsock_conn_connect_guest(struct vsock *v, struct vsock_conn *c, uint32_t port);
/* Acts on a reset of the device by the driver, if one happened since the last call. */
void vsock_sync(struct vsock *v);
/* Asks the transport for a run of queue_notify when there is something to send the guest. */
void vsock_kick(struct vsock *v);

/* vsock_host.c: the Unix sockets. */
int vsock_host_open(struct vsock *v);
void vsock_host_shutdown(struct vsock *v);
void vsock_host_wake(struct vsock *v);
/* Connects c to "<uds_path>_<port>" for a guest-initiated connection. */
int vsock_host_connect(struct vsock *v, struct vsock_conn *c, uint32_t port);
void vsock_host_close(struct vsock *v, struct vsock_conn *c);
/* Reads client bytes straight into r's writable segments after the header, as far as the guest's
 * credit goes. Returns the count; 0 when there was nothing (EOF and errors are acted on here). */
uint32_t vsock_host_recv(struct vsock *v, struct vsock_conn *c, const struct virtq_req *r);
/* Passes len payload bytes of the guest request r to the client, buffering what it cannot take.
 * -ENOMEM when the buffer cannot be had. */
int vsock_host_send(struct vsock *v, struct vsock_conn *c, const struct virtq_req *r, uint32_t len);
/* Writes "OK <host port>\n" to a client whose connection the guest accepted. */
int vsock_host_send_ok(struct vsock_conn *c);
