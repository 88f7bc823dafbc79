/* Split virtqueue (virtio 1.x). The only code that reads guest-controlled descriptor chains:
 * every address and length is checked here, devices only ever see validated iovecs. */
#pragma once
#include <stdint.h>
#include <sys/uio.h>
#include "../vmm/guest_mem.h"

#define VIRTQ_MAX_SIZE 1024
/* Longest chain a device accepts; longer chains are rejected as hostile. */
#define VIRTQ_MAX_SEGS 256

struct virtq {
	const struct guest_mem *mem;
	uint16_t size;       /* entries, a power of two <= VIRTQ_MAX_SIZE */
	uint16_t last_avail; /* next avail ring slot the device will read */
	uint16_t used_idx;   /* next used ring slot the device will write */
	int ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host pointers to the three rings, validated against guest memory at setup. */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
};

/* One popped request: readable (device reads, "out") segments first, then writable ("in"). */
struct virtq_req {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len;
	struct iovec iov[VIRTQ_MAX_SEGS]; /* iov[0..n_out) readable, iov[n_out..n_out+n_in) writable */
};

/* Validates size and ring addresses (alignment, inside guest memory) and arms the queue.
 * -EINVAL when anything is off; the queue stays unready. */
int virtq_setup(struct virtq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc_gpa,
		uint64_t avail_gpa, uint64_t used_gpa);
void virtq_reset(struct virtq *q);

/* Pops the next available chain into r. Returns 1 with a request, 0 when the ring is empty,
 * -EINVAL when the chain is hostile (loop, out of bounds, too long, writable before readable,
 * indirect, zero total length): that chain is consumed and completed with length 0 so the
 * driver gets its buffer back, and the next call continues with the following chain.
 * -EIO when the avail index itself is impossible (more than `size` ahead): the queue is broken. */
int virtq_pop(struct virtq *q, struct virtq_req *r);

/* Takes back the last pop, whose chain was not completed: the next pop returns it again. The
 * driver cannot have reused that avail slot, since the buffer is still out. */
void virtq_unpop(struct virtq *q);

/* Puts head on the used ring with `written` bytes written by the device. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* Whether the driver wants an interrupt now (honours VRING_AVAIL_F_NO_INTERRUPT). */
int virtq_should_notify(const struct virtq *q);

/* dst gets the part [off, off+len) of the segments src[0..n), as far as they reach. Returns the
 * number of iovecs written (at most n). Devices use it to pass guest buffers to preadv/writev. */
unsigned virtq_iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
			 struct iovec *dst);

/* Copy helpers over a request's segments, bounded by the segments' lengths: read copies from the
 * readable segments, write into the writable ones; offset counts from the first segment of that
 * kind. Return the number of bytes copied. */
size_t virtq_req_read(const struct virtq_req *r, size_t offset, void *dst, size_t len);
size_t virtq_req_write(const struct virtq_req *r, size_t offset, const void *src, size_t len);
