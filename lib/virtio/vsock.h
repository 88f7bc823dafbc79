/* virtio-vsock (virtio 1.1 §5.10, device id 19): stream sockets between the guest and host
 * processes, bridged to Unix sockets the way Firecracker does it.
 *
 * Host to guest: a process connects to the Unix socket at uds_path and writes "CONNECT <port>\n".
 * The device opens a vsock connection to guest port <port> from host CID 2 and a local port of
 * its own (1 << 30 and up); when the guest accepts, the client reads "OK <local port>\n" and the
 * socket then carries the stream both ways. A refused connection or a bad first line closes the
 * client's socket before any "OK". Guest to host: a guest connecting to CID 2 port P is bridged to
 * the Unix socket "<uds_path>_<P>" if something listens there, and refused (RST) otherwise.
 *
 * Threading: the device thread runs everything: queue kicks (ops->queue_notify, which requires
 * an ioeventfd on every queue so kicks arrive on that thread), the listener and client sockets
 * (registered in the same evloop), vsock_send_transport_reset. Only activate, reset and
 * config_read come from a vCPU thread; they touch nothing but an atomic pointer, an atomic reset
 * count and an eventfd that wakes the device thread, so the device needs no lock of its own.
 * Sockets never touch the rings directly: they ask for a run of queue_notify through
 * virtio_mmio_kick, which serialises it with resets. Before the driver is up, host clients are
 * accepted and their REQUEST waits until the guest gives rx buffers.
 *
 * Flow control: each connection grants the guest a window of VSOCK_BUF_ALLOC (256 KiB); bytes the
 * client cannot take yet wait in a per-connection ring of that size, and a guest exceeding the
 * window gets its connection reset. Towards the guest nothing is buffered: client bytes are read
 * straight into the guest's rx buffers, only as far as the guest's own credit allows.
 *
 * Closing: a client's EOF becomes SHUTDOWN(SEND); a client gone for good (hung up, or a write
 * failed) becomes SHUTDOWN(RCV|SEND) and its socket is closed. A guest SHUTDOWN(SEND) becomes EOF
 * for the client once the buffered bytes are out. A connection ends when the guest sends RST (at
 * once: bytes still buffered for the client are lost, as RST means), or when the guest has shut
 * both directions and every byte it sent reached the client (or the client is gone): the device
 * then sends RST. There are no timers: a guest that never finishes a connection only keeps its
 * own connection alive (Linux itself resets it 8 s after its close). A client that never sends its
 * CONNECT line holds one of the VSOCK_MAX_CONNS slots until it goes away.
 *
 * Hostile guest: every header field is checked (vsock_pkt_parse); a malformed packet is dropped
 * without an answer, counted (vsock_dropped) and logged once per kind. A well-formed packet for no
 * connection gets an RST, and so does a REQUEST to a host port nobody serves, with no state kept
 * (owed RSTs wait in a fixed ring; when it is full the device stops taking tx packets until the
 * guest gives rx buffers). A protocol breach on a connection (data before RESPONSE, a second
 * REQUEST, data after its own SHUTDOWN(SEND), more than the credit granted) resets it. */
#pragma once
#include <stdint.h>

#include "virtio_dev.h"

#define VSOCK_QUEUE_RX 0
#define VSOCK_QUEUE_TX 1
#define VSOCK_QUEUE_EVENT 2

struct evloop;
struct vsock;

/* Listens on uds_path (created here, must not exist; removed again by ops->free) and registers
 * with loop, whose thread must be the device thread. guest_cid: 3 to 0xfffffffe. -EINVAL for a
 * bad CID, -ENAMETOOLONG when "<uds_path>_<port>" would not fit a socket address, else -errno. */
int vsock_new(uint64_t guest_cid, const char *uds_path, struct evloop *loop, struct vsock **out);
extern const struct virtio_dev_ops vsock_ops;

/* Drops every connection (clients see EOF) and queues VIRTIO_VSOCK_EVENT_TRANSPORT_RESET for the
 * guest, delivered as soon as it has an event buffer. Device thread only, outside queue_notify. */
void vsock_send_transport_reset(struct vsock *v);

/* Guest packets and rx buffers dropped as malformed or hostile since creation (any thread). */
uint64_t vsock_dropped(const struct vsock *v);
