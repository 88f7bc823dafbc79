/* The contract between the virtio-mmio transport and a device model (blk, net, vsock). */
#pragma once
#include <stdint.h>

struct virtio_mmio;

struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;      /* VIRTIO_ID_* */
	unsigned num_queues;
	uint16_t queue_max_size; /* QueueNumMax reported for every queue */
	/* Feature bits the device offers; the transport adds VIRTIO_F_VERSION_1. */
	uint64_t (*features)(void *dev);
	/* Device-specific config space (register offset 0x100 and up), bounds-checked by the device:
	 * reads outside fill zeros, writes outside are ignored. */
	void (*config_read)(void *dev, uint32_t offset, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t offset, const uint8_t *data, uint32_t len);
	/* DRIVER_OK was set and every ready queue is validated. Non-zero fails the device
	 * (status DEVICE_NEEDS_RESET). */
	int (*activate)(void *dev, struct virtio_mmio *t);
	/* The driver kicked queue q. Called from the device thread, never concurrently for one
	 * device. The device pops, serves and pushes, then calls virtio_mmio_notify_used(). */
	void (*queue_notify)(void *dev, unsigned q);
	/* The driver wrote 0 to Status: forget negotiated state. */
	void (*reset)(void *dev);
	void (*free)(void *dev);
	/* Snapshot, with the vCPUs and the device thread paused: give back any buffer popped but
	 * not completed (virtq_unpop), so the saved ring indices cover finished work only; the
	 * device pops it again when it runs on. Optional. */
	void (*quiesce)(void *dev);
	/* Restore: the transport's registers and rings were reinstated (activate ran if the
	 * driver was up) and the device thread has not started. Optional. */
	void (*restored)(void *dev);
};
