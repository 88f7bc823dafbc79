#define _GNU_SOURCE
#include "queue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "virtio_ids.h"

/* Ring layouts of the split virtqueue (spec 2.6), all little-endian. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* size entries, then avail_event */
};

_Static_assert(sizeof(struct virtq_desc) == 16, "descriptor layout");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "used element layout");

/* The guest may rewrite any of these while we look: every field is loaded exactly once into a
 * local, and only the local is checked and used. */
static inline uint16_t load16(const uint16_t *p, int order)
{
	return le16toh(__atomic_load_n(p, order));
}

static void virtq_desc_load(const struct virtq *q, uint16_t i, struct virtq_desc *d)
{
	const struct virtq_desc *g = &q->desc[i];

	d->addr = le64toh(__atomic_load_n(&g->addr, __ATOMIC_RELAXED));
	d->len = le32toh(__atomic_load_n(&g->len, __ATOMIC_RELAXED));
	d->flags = load16(&g->flags, __ATOMIC_RELAXED);
	d->next = load16(&g->next, __ATOMIC_RELAXED);
}

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

int virtq_setup(struct virtq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc_gpa,
		uint64_t avail_gpa, uint64_t used_gpa)
{
	/* Each ring's full extent, including the event-index tail we never use. */
	uint64_t desc_len = 16ULL * size, avail_len = 6 + 2ULL * size, used_len = 6 + 8ULL * size;
	void *desc, *avail, *used;

	virtq_reset(q);
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
		return -EINVAL;
	desc = guest_mem_ptr(mem, desc_gpa, desc_len);
	avail = guest_mem_ptr(mem, avail_gpa, avail_len);
	used = guest_mem_ptr(mem, used_gpa, used_len);
	if (!desc || !avail || !used)
		return -EINVAL;

	q->mem = mem;
	q->size = size;
	q->desc_gpa = desc_gpa;
	q->avail_gpa = avail_gpa;
	q->used_gpa = used_gpa;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->ready = 1;
	return 0;
}

/* Walks the chain at head into r. Every index, address, length and the chain's shape are checked
 * here so that devices only ever see host iovecs inside guest RAM. */
static int virtq_walk(const struct virtq *q, uint16_t head, struct virtq_req *r)
{
	unsigned max = q->size < VIRTQ_MAX_SEGS ? q->size : VIRTQ_MAX_SEGS;
	unsigned count = 0;
	uint16_t i = head;
	int seen_write = 0;

	r->head = head;
	r->n_out = r->n_in = 0;
	r->out_len = r->in_len = 0;
	for (;;) {
		struct virtq_desc d;
		void *p;

		/* At most min(size, VIRTQ_MAX_SEGS) descriptors: that ends every loop and keeps
		 * r->iov in bounds. */
		if (i >= q->size || ++count > max)
			return -EINVAL;
		virtq_desc_load(q, i, &d);
		/* Never offered (VIRTIO_F_INDIRECT_DESC), so a driver using it is hostile. */
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return -EINVAL;
		if (d.flags & VIRTQ_DESC_F_WRITE)
			seen_write = 1;
		else if (seen_write)
			return -EINVAL;
		if (d.len) {
			p = guest_mem_ptr(q->mem, d.addr, d.len);
			if (!p)
				return -EINVAL;
			r->iov[r->n_out + r->n_in].iov_base = p;
			r->iov[r->n_out + r->n_in].iov_len = d.len;
			if (d.flags & VIRTQ_DESC_F_WRITE) {
				r->n_in++;
				r->in_len += d.len;
			} else {
				r->n_out++;
				r->out_len += d.len;
			}
			/* Used lengths are 32 bits: a larger chain cannot be reported back. */
			if (r->out_len + r->in_len > UINT32_MAX)
				return -EINVAL;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		i = d.next;
	}
	return r->out_len + r->in_len == 0 ? -EINVAL : 0;
}

int virtq_pop(struct virtq *q, struct virtq_req *r)
{
	uint16_t avail_idx, pending, head;
	int err;

	if (!q->ready)
		return 0;
	/* Acquire: the ring entries and descriptors written before idx are visible after it. */
	avail_idx = load16(&q->avail->idx, __ATOMIC_ACQUIRE);
	pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size)
		return -EIO;
	head = load16(&q->avail->ring[q->last_avail % q->size], __ATOMIC_RELAXED);
	q->last_avail++;
	err = virtq_walk(q, head, r);
	if (err < 0) {
		/* Give the buffer back so the driver does not wait on it forever; a head out of
		 * range names no buffer the driver could recognise. */
		if (head < q->size)
			virtq_push(q, head, 0);
		return err;
	}
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	struct virtq_used_elem *e = &q->used->ring[q->used_idx % q->size];

	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
	q->used_idx++;
	/* Release: the element is visible before the index that publishes it. */
	__atomic_store_n(&q->used->idx, htole16(q->used_idx), __ATOMIC_RELEASE);
}

int virtq_should_notify(const struct virtq *q)
{
	/* Order the used->idx store before reading the driver's flags (spec 2.6.7.2), or we could
	 * miss a driver that re-enabled interrupts after seeing the old index. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(load16(&q->avail->flags, __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

static size_t virtq_iov_copy(const struct iovec *iov, unsigned n, size_t offset, uint8_t *buf,
			     size_t len, int to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint8_t *seg = iov[i].iov_base;
		size_t chunk;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		chunk = iov[i].iov_len - offset;
		if (chunk > len - done)
			chunk = len - done;
		if (to_iov)
			memcpy(seg + offset, buf + done, chunk);
		else
			memcpy(buf + done, seg + offset, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

size_t virtq_req_read(const struct virtq_req *r, size_t offset, void *dst, size_t len)
{
	return virtq_iov_copy(r->iov, r->n_out, offset, dst, len, 0);
}

size_t virtq_req_write(const struct virtq_req *r, size_t offset, const void *src, size_t len)
{
	return virtq_iov_copy(r->iov + r->n_out, r->n_in, offset, (uint8_t *)src, len, 1);
}

unsigned virtq_iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
			 struct iovec *dst)
{
	unsigned out = 0;

	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t chunk;

		if (off >= src[i].iov_len) {
			off -= src[i].iov_len;
			continue;
		}
		chunk = src[i].iov_len - off < len ? src[i].iov_len - off : len;
		dst[out].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[out++].iov_len = chunk;
		len -= chunk;
		off = 0;
	}
	return out;
}
