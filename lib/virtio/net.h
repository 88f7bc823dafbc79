/* virtio-net (virtio 1.1 §5.1, device id 1): one RX and one TX queue over a host backend fd (a
 * tap device), every guest frame checked by the egress policy before it leaves.
 *
 * Features: VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC (the MAC in config space) and VIRTIO_NET_F_MTU
 * (1500). Nothing else, on purpose: no checksum offload (CSUM, GUEST_CSUM) and no segmentation
 * offload (HOST_TSO*, GUEST_TSO*, UFO), so every frame the guest sends is a whole, final
 * Ethernet frame with its checksums computed, at most MTU + 14 bytes, which the egress filter
 * can check as it will go out; no mergeable RX buffers (MRG_RXBUF), so each RX chain holds one
 * whole frame; no control queue, no multiqueue, no STATUS (the link is always up), no event
 * index. The 12-byte virtio_net_hdr (VERSION_1 layout) precedes every frame on both queues: on
 * TX it must be all zero in flags and gso_type (anything else is a driver using an offload we
 * never offered, and the frame is dropped); on RX we write zeros and num_buffers 1.
 *
 * Backend: an fd carrying one Ethernet frame per read or write and no header: a tap opened with
 * IFF_TAP | IFF_NO_PI and without IFF_VNET_HDR (no offloads, so a vnet header would carry nothing),
 * or in tests one end of a SOCK_DGRAM socketpair. The device makes it non-blocking and owns it.
 *
 * TX: each chain is copied once out of guest memory (the guest cannot change the frame between
 * the check and the write), its header checked and stripped, the frame passed to egress_check,
 * and written to the backend only on EGRESS_PASS; EGRESS_LOCAL frames go to the local callback
 * (the VMM's DNS server), denied ones nowhere. When the backend is full (EAGAIN) the chain is
 * held, unanswered, until the backend is writable again: the guest's ring fills and its driver
 * stops the queue (a tap never pushes back, but a socket backend does). Other write errors drop
 * the frame and count it. Chains with writable descriptors, too short for a header and an
 * Ethernet header, or longer than the MTU allows are dropped and counted.
 *
 * RX: frames come from the injection queue (virtio_net_inject: frames the VMM makes, such as DNS
 * answers), then from the backend, into guest RX chains, one frame per chain. A frame larger
 * than the chain (or than MTU + 18 bytes) is dropped and counted; the chain waits for the next
 * frame. An RX chain with readable descriptors, or too short for the header, goes back unused.
 * When the guest has no RX buffers left the device stops polling the backend (frames wait in
 * the tap's queue, which drops when full) until the guest kicks the RX queue.
 *
 * Work per run is bounded: at most VIRTIO_NET_TX_BUDGET TX chains and VIRTIO_NET_RX_BUDGET RX
 * frames, after which the device yields to the event loop and continues on its next turn, so a
 * guest flooding its TX ring cannot starve the other devices of the thread.
 *
 * Threading: as vsock. The device thread runs queue_notify (kicks need ioeventfds so they arrive
 * there), the backend and its wake-up eventfd (in an epoll set of its own, one fd in the device
 * loop). activate and reset come from a vCPU thread and only touch an atomic pointer, an atomic
 * reset count and the eventfd. virtio_net_inject and virtio_net_get_stats are safe from any
 * thread. A broken ring marks the device DEVICE_NEEDS_RESET (virtio_mmio_pop); until the driver
 * resets it nothing is polled. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../net/egress.h"
#include "../net/packet.h"
#include "virtio_dev.h"

#define VIRTIO_NET_QUEUE_RX 0
#define VIRTIO_NET_QUEUE_TX 1
#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_MTU 1500
#define VIRTIO_NET_HDR_LEN 12
/* Largest frame the guest may send: MTU plus the Ethernet header (no VLAN tags). */
#define VIRTIO_NET_TX_FRAME_MAX (VIRTIO_NET_MTU + PKT_ETH_HLEN)
/* Largest frame handed to the guest: what Linux's small RX buffers hold (one VLAN tag). */
#define VIRTIO_NET_RX_FRAME_MAX (VIRTIO_NET_MTU + PKT_ETH_HLEN + 4)
#define VIRTIO_NET_TX_BUDGET 128
#define VIRTIO_NET_RX_BUDGET 128
/* Frames of the VMM's own waiting for RX buffers; more are refused. */
#define VIRTIO_NET_INJECT_MAX 64

struct evloop;
struct virtio_net;

/* Gets EGRESS_LOCAL frames on the device thread; frame is valid during the call only. It may call
 * virtio_net_inject (the answer is delivered after the current run). */
typedef void (*virtio_net_local_fn)(void *user, const uint8_t *frame, size_t len);

struct virtio_net_config {
	uint8_t mac[PKT_MAC_LEN];
	int backend_fd;         /* taken over: closed by ops->free, and by virtio_net_new on failure */
	struct egress *egress;  /* required; not owned, must outlive the device */
	virtio_net_local_fn local; /* NULL: EGRESS_LOCAL frames are dropped */
	void *local_user;
};

struct virtio_net_stats {
	uint64_t tx_frames, tx_bytes; /* written to the backend */
	uint64_t tx_denied;           /* refused by the egress policy */
	uint64_t tx_local;            /* handed to the local callback */
	uint64_t tx_dropped;          /* hostile or unusable chains and headers */
	uint64_t tx_backend_errors;   /* the backend failed to take an allowed frame */
	uint64_t tx_blocked;          /* times the backend was full and TX waited for it */
	uint64_t tx_yields;           /* runs that stopped at the budget */
	uint64_t rx_frames, rx_bytes; /* delivered to the guest */
	uint64_t rx_too_big;          /* frames larger than the RX chain or the limit */
	uint64_t rx_dropped;          /* runt frames from the backend */
	uint64_t rx_bad_buffers;      /* RX chains returned unused */
	uint64_t rx_starved;          /* times polling stopped for lack of RX buffers */
	uint64_t inject_refused;      /* virtio_net_inject calls that found the queue full */
};

/* Registers the backend with loop, whose thread must be the device thread. -EINVAL without an
 * egress policy, a backend, or with a multicast or zero MAC; else -errno. */
int virtio_net_new(const struct virtio_net_config *cfg, struct evloop *loop,
		   struct virtio_net **out);
extern const struct virtio_dev_ops virtio_net_ops;

/* Queues a frame for the guest's RX queue; any thread. -EMSGSIZE for a frame shorter than an
 * Ethernet header or above VIRTIO_NET_RX_FRAME_MAX, -ENOSPC when VIRTIO_NET_INJECT_MAX wait. The
 * queue is emptied when the driver resets the device. */
int virtio_net_inject(struct virtio_net *n, const uint8_t *frame, size_t len);

void virtio_net_get_stats(const struct virtio_net *n, struct virtio_net_stats *out);

/* MAC addresses (lib/virtio/net_mac.c, which the library links alone). */
/* Unicast and not all zero: what a NIC of ours may have. */
int virtio_net_mac_ok(const uint8_t mac[PKT_MAC_LEN]);
/* "02:00:5e:10:00:01" (two hex digits per byte, ':' between) into mac. -EINVAL for anything else,
 * and for a multicast or all-zero address. */
int virtio_net_mac_parse(const char *s, uint8_t mac[PKT_MAC_LEN]);
/* A stable, locally administered unicast MAC derived from a sandbox id (FNV-1a: 46 bits of it). */
void virtio_net_mac_from_id(const char *id, uint8_t mac[PKT_MAC_LEN]);
/* The "02:00:5e:10:00:01" form of mac (17 characters and a NUL). */
void virtio_net_mac_format(const uint8_t mac[PKT_MAC_LEN], char out[18]);
