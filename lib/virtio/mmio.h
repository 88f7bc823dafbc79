/* virtio-mmio transport, version 2 (virtio 1.x, "modern" only). */
#pragma once
#include <pthread.h>
#include <stdint.h>
#include "queue.h"
#include "virtio_dev.h"

#define VIRTIO_MMIO_WINDOW 0x200 /* register window size we map per device */
#define VIRTIO_MMIO_MAX_QUEUES 8
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050 /* register offset the VMM attaches ioeventfds to */

#define VIRTIO_MMIO_INT_VRING 0x1
#define VIRTIO_MMIO_INT_CONFIG 0x2

/* One queue's registers as the driver wrote them, and the ring they armed. */
struct virtio_mmio_queue {
	uint16_t num;
	uint32_t desc_lo, desc_hi, avail_lo, avail_hi, used_lo, used_hi;
	struct virtq vq;
};

/* Locking: `lock` guards the registers and interrupt state; the device's features, config_read,
 * config_write, activate and reset run under it and must not call back into the transport
 * (virtio_mmio_queue excepted). `notify_lock` is taken before `lock` and serialises queue_notify
 * with the writes that change queue state (Status, QueueReady), so a reset never pulls a ring
 * from under a request in flight. queue_notify runs without `lock` because the device calls
 * back into virtio_mmio_notify_used, which takes it. */
struct virtio_mmio {
	pthread_mutex_t lock;
	pthread_mutex_t notify_lock;
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct guest_mem *mem;
	uint64_t base;
	uint32_t gsi;
	int irq_fd; /* eventfd wired to the guest interrupt (KVM irqfd); written to raise it */

	uint32_t status;
	uint32_t device_features_sel, driver_features_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t interrupt_status;
	uint32_t config_generation;
	struct virtio_mmio_queue queues[VIRTIO_MMIO_MAX_QUEUES];
};

/* A transport's state for a snapshot (fixed layout, stored as is). Queue addresses are the
 * registers as the driver wrote them, so a queue being set up is restored as far as it got. */
struct virtio_mmio_queue_state {
	uint16_t num;
	uint16_t ready;
	uint16_t last_avail;
	uint16_t used_idx;
	uint32_t reserved;
	uint32_t reserved2;
	uint64_t desc, avail, used;
};

struct virtio_mmio_state {
	uint32_t device_id;
	uint32_t nqueues;
	uint32_t status;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint64_t driver_features;
	uint32_t interrupt_status;
	uint32_t config_generation;
	struct virtio_mmio_queue_state queues[VIRTIO_MMIO_MAX_QUEUES];
};

_Static_assert(sizeof(struct virtio_mmio_queue_state) == 40, "queue state layout");
_Static_assert(sizeof(struct virtio_mmio_state) == 40 + 40 * VIRTIO_MMIO_MAX_QUEUES,
	       "transport state layout");

/* irq_fd is owned by the caller. */
void virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
		      const struct guest_mem *mem, uint64_t base, uint32_t gsi, int irq_fd);
/* Does not free the device: whoever opened it calls ops->free. */
void virtio_mmio_destroy(struct virtio_mmio *t);

/* bus_access_fn for the register window (opaque = struct virtio_mmio *). A QueueNotify write that
 * arrives here (no ioeventfd attached) is handled as virtio_mmio_kick. */
void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write);

/* The VMM's ioeventfd handler for queue q: runs the device's queue_notify, serialised with
 * resets, once DRIVER_OK is set and unless the device needs a reset. Out-of-range q is ignored. */
void virtio_mmio_kick(struct virtio_mmio *t, unsigned q);

/* For the device: the queue q of this transport (NULL if q is out of range or not ready).
 * Only valid inside activate or queue_notify, where the transport keeps queue state still. */
struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q);
/* Device finished pushing to queue q: raise the used-buffer interrupt if the driver wants one. */
void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned q);
/* Device config changed: bump the generation, raise the config interrupt. */
void virtio_mmio_notify_config(struct virtio_mmio *t);
/* Device hit an error it cannot recover from (e.g. a broken avail index): set
 * DEVICE_NEEDS_RESET and raise the config interrupt so the driver resets it. */
void virtio_mmio_set_needs_reset(struct virtio_mmio *t);
/* Snapshot, with the vCPUs and the device thread paused: lets the device hand back buffers in
 * flight (ops->quiesce), then records the registers and ring positions. */
void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s);
/* Restore into a fresh transport whose device thread has not started: checks the state against
 * this device and guest memory (-EINVAL: another device, a queue too large, rings outside RAM),
 * re-arms the queues, activates the device if the driver had, then calls ops->restored.
 * -EIO when the device refuses to activate. */
int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *s);
/* After a restore, once the device thread runs: raises the interrupt again if the guest had
 * not acknowledged it yet (the interrupt line itself is not part of the state). */
void virtio_mmio_restart(struct virtio_mmio *t);

/* virtq_pop for a device of this transport: a broken ring (-EIO) marks the device as needing a
 * reset and reads as empty, so device loops only tell requests (1), rejected chains (-EINVAL,
 * already completed) and the end (0) apart. */
int virtio_mmio_pop(struct virtio_mmio *t, struct virtq *q, struct virtq_req *r);
