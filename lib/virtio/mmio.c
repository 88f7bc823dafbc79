#define _GNU_SOURCE
#include "mmio.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio_ids.h"

static unsigned mmio_num_queues(const struct virtio_mmio *t)
{
	return t->ops->num_queues < VIRTIO_MMIO_MAX_QUEUES ? t->ops->num_queues
							   : VIRTIO_MMIO_MAX_QUEUES;
}

/* The queue QueueSel points at, or NULL: QueueSel is whatever the guest wrote. */
static struct virtio_mmio_queue *mmio_sel_queue(struct virtio_mmio *t)
{
	return t->queue_sel < mmio_num_queues(t) ? &t->queues[t->queue_sel] : NULL;
}

/* Caller holds t->lock. */
static void mmio_raise(struct virtio_mmio *t, uint32_t why)
{
	uint64_t one = 1;

	t->interrupt_status |= why;
	if (t->irq_fd >= 0 && write(t->irq_fd, &one, sizeof(one)) != sizeof(one))
		vmm_log("virtio-mmio %s: raising irq %u: %m", t->ops->name, t->gsi);
}

/* Caller holds t->lock. */
static void mmio_needs_reset(struct virtio_mmio *t)
{
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	mmio_raise(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
		      const struct guest_mem *mem, uint64_t base, uint32_t gsi, int irq_fd)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->notify_lock, NULL);
	t->ops = ops;
	t->dev = dev;
	t->mem = mem;
	t->base = base;
	t->gsi = gsi;
	t->irq_fd = irq_fd;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	pthread_mutex_destroy(&t->notify_lock);
	pthread_mutex_destroy(&t->lock);
}

/* Status 0: back to the state after power-on, device included. Caller holds both locks. */
static void mmio_reset(struct virtio_mmio *t)
{
	t->ops->reset(t->dev);
	memset(t->queues, 0, sizeof(t->queues));
	t->status = 0;
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->driver_features = 0;
	t->queue_sel = 0;
	t->interrupt_status = 0;
}

static void mmio_write_status(struct virtio_mmio *t, uint32_t val)
{
	uint32_t old = t->status;

	if (val == 0) {
		mmio_reset(t);
		return;
	}
	/* DEVICE_NEEDS_RESET belongs to the device: only a reset clears it. */
	val = (val & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t offered = t->ops->features(t->dev) | VIRTIO_F_VERSION_1;

		/* Left unset, so the driver reads back that we refused (spec 3.1.1). */
		if (!(t->driver_features & VIRTIO_F_VERSION_1) || (t->driver_features & ~offered))
			val &= ~VIRTIO_STATUS_FEATURES_OK;
	}
	t->status = val;
	/* FEATURES_OK can only be stored with VERSION_1 negotiated, so it vouches for both. */
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(val & VIRTIO_STATUS_FEATURES_OK) || t->ops->activate(t->dev, t) != 0)
			mmio_needs_reset(t);
	}
}

static void mmio_write_queue_ready(struct virtio_mmio *t, uint32_t val)
{
	struct virtio_mmio_queue *q = mmio_sel_queue(t);
	uint64_t desc, avail, used;

	if (!q)
		return;
	if (val == 0) {
		virtq_reset(&q->vq);
		return;
	}
	if (val != 1 || q->vq.ready)
		return;
	desc = (uint64_t)q->desc_hi << 32 | q->desc_lo;
	avail = (uint64_t)q->avail_hi << 32 | q->avail_lo;
	used = (uint64_t)q->used_hi << 32 | q->used_lo;
	if (virtq_setup(&q->vq, t->mem, q->num, desc, avail, used) < 0)
		mmio_needs_reset(t);
}

/* Queue layout registers; ignored while the queue is live so the rings cannot move under it. */
static void mmio_write_queue_reg(struct virtio_mmio *t, uint64_t offset, uint32_t val)
{
	struct virtio_mmio_queue *q = mmio_sel_queue(t);
	uint16_t max = t->ops->queue_max_size;

	if (!q || q->vq.ready)
		return;
	switch (offset) {
	case VIRTIO_MMIO_REG_QUEUE_NUM:
		/* Too large is stored as 0, which setup refuses, rather than truncated. */
		q->num = val <= max ? (uint16_t)val : 0;
		break;
	case VIRTIO_MMIO_REG_QUEUE_DESC_LOW:
		q->desc_lo = val;
		break;
	case VIRTIO_MMIO_REG_QUEUE_DESC_HIGH:
		q->desc_hi = val;
		break;
	case VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW:
		q->avail_lo = val;
		break;
	case VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH:
		q->avail_hi = val;
		break;
	case VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW:
		q->used_lo = val;
		break;
	case VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH:
		q->used_hi = val;
		break;
	}
}

/* Caller holds t->lock (and notify_lock for Status and QueueReady). */
static void mmio_write_reg(struct virtio_mmio *t, uint64_t offset, uint32_t val)
{
	unsigned shift;

	switch (offset) {
	case VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL:
		t->device_features_sel = val;
		break;
	case VIRTIO_MMIO_REG_DRIVER_FEATURES:
		/* Features are frozen once accepted. */
		if (t->status & VIRTIO_STATUS_FEATURES_OK || t->driver_features_sel > 1)
			break;
		shift = 32 * t->driver_features_sel;
		t->driver_features &= ~(0xffffffffULL << shift);
		t->driver_features |= (uint64_t)val << shift;
		break;
	case VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL:
		t->driver_features_sel = val;
		break;
	case VIRTIO_MMIO_REG_QUEUE_SEL:
		t->queue_sel = val;
		break;
	case VIRTIO_MMIO_REG_QUEUE_READY:
		mmio_write_queue_ready(t, val);
		break;
	case VIRTIO_MMIO_REG_INTERRUPT_ACK:
		t->interrupt_status &= ~val;
		break;
	case VIRTIO_MMIO_REG_STATUS:
		mmio_write_status(t, val);
		break;
	default:
		mmio_write_queue_reg(t, offset, val);
		break;
	}
}

/* Caller holds t->lock. Write-only and unknown registers read as 0. */
static uint32_t mmio_read_reg(struct virtio_mmio *t, uint64_t offset)
{
	struct virtio_mmio_queue *q = mmio_sel_queue(t);
	uint64_t features;

	switch (offset) {
	case VIRTIO_MMIO_REG_MAGIC:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_REG_VERSION:
		return VIRTIO_MMIO_VERSION_MODERN;
	case VIRTIO_MMIO_REG_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_REG_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR_SBX;
	case VIRTIO_MMIO_REG_DEVICE_FEATURES:
		features = t->ops->features(t->dev) | VIRTIO_F_VERSION_1;
		if (t->device_features_sel > 1)
			return 0;
		return (uint32_t)(features >> (32 * t->device_features_sel));
	case VIRTIO_MMIO_REG_QUEUE_NUM_MAX:
		if (!q)
			return 0;
		return t->ops->queue_max_size < VIRTQ_MAX_SIZE ? t->ops->queue_max_size
							       : VIRTQ_MAX_SIZE;
	case VIRTIO_MMIO_REG_QUEUE_READY:
		return q ? (uint32_t)q->vq.ready : 0;
	case VIRTIO_MMIO_REG_INTERRUPT_STATUS:
		return t->interrupt_status;
	case VIRTIO_MMIO_REG_STATUS:
		return t->status;
	case VIRTIO_MMIO_REG_CONFIG_GENERATION:
		return t->config_generation;
	default:
		return 0;
	}
}

static void mmio_config_access(struct virtio_mmio *t, uint64_t offset, uint8_t *data, uint32_t len,
			       int is_write)
{
	const uint64_t size = VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_REG_CONFIG;
	int sized = len == 1 || len == 2 || len == 4 || len == 8;

	if (!sized || offset > size - len) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (is_write)
		t->ops->config_write(t->dev, (uint32_t)offset, data, len);
	else
		t->ops->config_read(t->dev, (uint32_t)offset, data, len);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write)
{
	struct virtio_mmio *t = opaque;
	uint32_t val;
	int queue_state;

	if (offset >= VIRTIO_MMIO_REG_CONFIG) {
		mmio_config_access(t, offset - VIRTIO_MMIO_REG_CONFIG, data, len, is_write);
		return;
	}
	if (len != 4 || (offset & 3)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write) {
		pthread_mutex_lock(&t->lock);
		val = htole32(mmio_read_reg(t, offset));
		pthread_mutex_unlock(&t->lock);
		memcpy(data, &val, sizeof(val));
		return;
	}
	memcpy(&val, data, sizeof(val));
	val = le32toh(val);
	if (offset == VIRTIO_MMIO_REG_QUEUE_NOTIFY) {
		virtio_mmio_kick(t, val);
		return;
	}
	/* Writes that can reset or arm queues wait for a running queue_notify to finish. */
	queue_state = offset == VIRTIO_MMIO_REG_STATUS || offset == VIRTIO_MMIO_REG_QUEUE_READY;
	if (queue_state)
		pthread_mutex_lock(&t->notify_lock);
	pthread_mutex_lock(&t->lock);
	mmio_write_reg(t, offset, val);
	pthread_mutex_unlock(&t->lock);
	if (queue_state)
		pthread_mutex_unlock(&t->notify_lock);
}

void virtio_mmio_kick(struct virtio_mmio *t, unsigned q)
{
	uint32_t status;

	if (q >= mmio_num_queues(t))
		return;
	pthread_mutex_lock(&t->notify_lock);
	pthread_mutex_lock(&t->lock);
	status = t->status;
	pthread_mutex_unlock(&t->lock);
	/* Not t->lock: the device calls back into virtio_mmio_notify_used. Status cannot change
	 * meanwhile, since changing it needs notify_lock. A device not (or no longer) running
	 * must not consume buffers. */
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
		t->ops->queue_notify(t->dev, q);
	pthread_mutex_unlock(&t->notify_lock);
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q)
{
	if (q >= mmio_num_queues(t) || !t->queues[q].vq.ready)
		return NULL;
	return &t->queues[q].vq;
}

void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned q)
{
	pthread_mutex_lock(&t->lock);
	if (q < mmio_num_queues(t) && t->queues[q].vq.ready &&
	    virtq_should_notify(&t->queues[q].vq))
		mmio_raise(t, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_notify_config(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	t->config_generation++;
	mmio_raise(t, VIRTIO_MMIO_INT_CONFIG);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_set_needs_reset(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	mmio_needs_reset(t);
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_pop(struct virtio_mmio *t, struct virtq *q, struct virtq_req *r)
{
	int ret = virtq_pop(q, r);

	if (ret == -EIO) {
		virtio_mmio_set_needs_reset(t);
		return 0;
	}
	return ret;
}

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s)
{
	unsigned n = mmio_num_queues(t);

	pthread_mutex_lock(&t->notify_lock);
	if (t->ops->quiesce)
		t->ops->quiesce(t->dev);
	pthread_mutex_lock(&t->lock);
	memset(s, 0, sizeof(*s));
	s->device_id = t->ops->device_id;
	s->nqueues = n;
	s->status = t->status;
	s->device_features_sel = t->device_features_sel;
	s->driver_features_sel = t->driver_features_sel;
	s->queue_sel = t->queue_sel;
	s->driver_features = t->driver_features;
	s->interrupt_status = t->interrupt_status;
	s->config_generation = t->config_generation;
	for (unsigned i = 0; i < n; i++) {
		const struct virtio_mmio_queue *q = &t->queues[i];
		struct virtio_mmio_queue_state *qs = &s->queues[i];

		qs->num = q->num;
		qs->ready = (uint16_t)q->vq.ready;
		qs->last_avail = q->vq.last_avail;
		qs->used_idx = q->vq.used_idx;
		qs->desc = (uint64_t)q->desc_hi << 32 | q->desc_lo;
		qs->avail = (uint64_t)q->avail_hi << 32 | q->avail_lo;
		qs->used = (uint64_t)q->used_hi << 32 | q->used_lo;
	}
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_unlock(&t->notify_lock);
}

static int mmio_restore_queue(struct virtio_mmio *t, struct virtio_mmio_queue *q,
			      const struct virtio_mmio_queue_state *qs)
{
	if (qs->num > t->ops->queue_max_size || qs->ready > 1)
		return -EINVAL;
	q->num = qs->num;
	q->desc_lo = (uint32_t)qs->desc;
	q->desc_hi = (uint32_t)(qs->desc >> 32);
	q->avail_lo = (uint32_t)qs->avail;
	q->avail_hi = (uint32_t)(qs->avail >> 32);
	q->used_lo = (uint32_t)qs->used;
	q->used_hi = (uint32_t)(qs->used >> 32);
	if (!qs->ready)
		return 0;
	if (virtq_setup(&q->vq, t->mem, qs->num, qs->desc, qs->avail, qs->used) < 0)
		return -EINVAL;
	q->vq.last_avail = qs->last_avail;
	q->vq.used_idx = qs->used_idx;
	return 0;
}

int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *s)
{
	unsigned n = mmio_num_queues(t);
	int rc = 0;

	if (s->device_id != t->ops->device_id || s->nqueues != n)
		return -EINVAL;
	pthread_mutex_lock(&t->notify_lock);
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < n && rc == 0; i++)
		rc = mmio_restore_queue(t, &t->queues[i], &s->queues[i]);
	if (rc == 0) {
		t->status = s->status;
		t->device_features_sel = s->device_features_sel;
		t->driver_features_sel = s->driver_features_sel;
		t->queue_sel = s->queue_sel;
		t->driver_features = s->driver_features;
		t->interrupt_status = s->interrupt_status;
		t->config_generation = s->config_generation;
		if ((t->status & VIRTIO_STATUS_DRIVER_OK) &&
		    !(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) && t->ops->activate(t->dev, t))
			rc = -EIO;
	}
	pthread_mutex_unlock(&t->lock);
	if (rc == 0 && t->ops->restored)
		t->ops->restored(t->dev);
	pthread_mutex_unlock(&t->notify_lock);
	if (rc < 0)
		memset(t->queues, 0, sizeof(t->queues));
	return rc;
}

void virtio_mmio_restart(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	if (t->interrupt_status)
		mmio_raise(t, 0);
	pthread_mutex_unlock(&t->lock);
}
