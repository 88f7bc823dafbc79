/* Split virtqueue: ring setup checks, well-formed chains and every hostile chain shape we know
 * of. After each hostile chain the same queue must still serve a good request. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "testing.h"
#include "virtio/queue.h"
#include "virtio/virtio_ids.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the test writes rings natively");

#define MEM_SIZE (1ULL << 20)
#define DESC_GPA 0x1000ULL
#define AVAIL_GPA 0x5000ULL
#define USED_GPA 0x6000ULL
#define DATA_GPA 0x10000ULL
#define OUT_GPA (DATA_GPA + 0x1000)
#define QSIZE 512 /* above VIRTQ_MAX_SEGS, so the segment limit is what stops long chains */

/* The driver's side: the ring layout written from the spec, independently of queue.c. */
struct drv_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct drv {
	uint8_t *buf;
	struct guest_mem mem;
	struct virtq q;
	uint16_t size;
	uint16_t avail_idx;
};

static struct virtq_req req;

static struct drv_desc *drv_desc(struct drv *d, unsigned i)
{
	return (struct drv_desc *)(d->buf + DESC_GPA) + i;
}

static void drv_set(struct drv *d, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	struct drv_desc *desc = drv_desc(d, i);

	*desc = (struct drv_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static uint16_t *drv_avail(struct drv *d)
{
	return (uint16_t *)(d->buf + AVAIL_GPA); /* flags, idx, ring[size], used_event */
}

static uint16_t *drv_used_idx(struct drv *d)
{
	return (uint16_t *)(d->buf + USED_GPA) + 1;
}

static uint32_t *drv_used_elem(struct drv *d, uint16_t k)
{
	return (uint32_t *)(d->buf + USED_GPA + 4) + 2 * (k % d->size); /* id, len */
}

static void drv_submit(struct drv *d, uint16_t head)
{
	drv_avail(d)[2 + d->avail_idx % d->size] = head;
	d->avail_idx++;
	__atomic_store_n(&drv_avail(d)[1], d->avail_idx, __ATOMIC_RELEASE);
}

static int drv_start(struct drv *d, uint8_t *buf, uint64_t mem_size, uint16_t size)
{
	memset(buf, 0, DATA_GPA);
	d->buf = buf;
	d->size = size;
	d->avail_idx = 0;
	guest_mem_init_buffer(&d->mem, buf, mem_size);
	return virtq_setup(&d->q, &d->mem, size, DESC_GPA, AVAIL_GPA, USED_GPA);
}

/* A two-segment request (100 readable bytes, 200 writable) served and completed. */
static void good_request(struct drv *d, const char *after)
{
	uint8_t in[100], out[200];
	uint16_t used = *drv_used_idx(d);
	int failed = testing_failed;

	for (unsigned i = 0; i < sizeof(in); i++)
		d->buf[DATA_GPA + i] = (uint8_t)(i * 3 + 1);
	memset(out, 0x5a, sizeof(out));
	drv_set(d, 0, DATA_GPA, sizeof(in), VIRTQ_DESC_F_NEXT, 1);
	drv_set(d, 1, OUT_GPA, sizeof(out), VIRTQ_DESC_F_WRITE, 0);
	drv_submit(d, 0);

	CHECK_EQ(virtq_pop(&d->q, &req), 1);
	CHECK_EQ(req.head, 0);
	CHECK_EQ(req.n_out, 1);
	CHECK_EQ(req.n_in, 1);
	CHECK_EQ(req.out_len, sizeof(in));
	CHECK_EQ(req.in_len, sizeof(out));
	CHECK(req.iov[0].iov_base == d->buf + DATA_GPA);
	CHECK(req.iov[1].iov_base == d->buf + OUT_GPA);
	CHECK_EQ(virtq_req_read(&req, 0, in, sizeof(in)), sizeof(in));
	CHECK(memcmp(in, d->buf + DATA_GPA, sizeof(in)) == 0);
	CHECK_EQ(virtq_req_write(&req, 0, out, sizeof(out)), sizeof(out));
	CHECK(memcmp(d->buf + OUT_GPA, out, sizeof(out)) == 0);
	virtq_push(&d->q, req.head, sizeof(out));
	CHECK_EQ(*drv_used_idx(d), (uint16_t)(used + 1));
	CHECK_EQ(drv_used_elem(d, used)[0], 0);
	CHECK_EQ(drv_used_elem(d, used)[1], sizeof(out));
	CHECK_EQ(virtq_pop(&d->q, &req), 0);
	if (testing_failed != failed)
		fprintf(stderr, "  good request after: %s\n", after);
}

/* Submits head, expects the chain to be refused and (for an in-range head) handed back with
 * length 0, then checks the queue still works. */
static void expect_rejected(struct drv *d, uint16_t head, const char *what)
{
	uint16_t used = *drv_used_idx(d);
	int failed = testing_failed;

	drv_submit(d, head);
	CHECK_EQ(virtq_pop(&d->q, &req), -EINVAL);
	if (head < d->size) {
		CHECK_EQ(*drv_used_idx(d), (uint16_t)(used + 1));
		CHECK_EQ(drv_used_elem(d, used)[0], head);
		CHECK_EQ(drv_used_elem(d, used)[1], 0);
	} else {
		CHECK_EQ(*drv_used_idx(d), used);
	}
	CHECK_EQ(virtq_pop(&d->q, &req), 0);
	if (testing_failed != failed)
		fprintf(stderr, "  hostile case: %s\n", what);
	good_request(d, what);
}

static void test_setup(uint8_t *buf)
{
	struct guest_mem mem;
	struct virtq q;

	guest_mem_init_buffer(&mem, buf, MEM_SIZE);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(q.ready, 1);
	CHECK_EQ(virtq_setup(&q, &mem, 1, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(virtq_setup(&q, &mem, VIRTQ_MAX_SIZE, DESC_GPA, AVAIL_GPA, USED_GPA), 0);

	/* Sizes: zero, not a power of two, a power of two above the maximum. */
	CHECK_EQ(virtq_setup(&q, &mem, 0, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(q.ready, 0);
	CHECK_EQ(virtq_setup(&q, &mem, 3, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, 768, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, 2 * VIRTQ_MAX_SIZE, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);

	/* Alignment: desc 16, avail 2, used 4. */
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA + 8, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, AVAIL_GPA + 1, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA + 2), -EINVAL);

	/* Each ring exactly at the end of memory fits; one unit further (for avail and used: the
	 * event-index tail alone) does not. */
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, MEM_SIZE - 16 * QSIZE, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, MEM_SIZE - 16 * QSIZE + 16, AVAIL_GPA, USED_GPA),
		 -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, MEM_SIZE - (6 + 2 * QSIZE), USED_GPA), 0);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, MEM_SIZE - (4 + 2 * QSIZE), USED_GPA),
		 -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, AVAIL_GPA, MEM_SIZE - (8 + 8 * QSIZE)), 0);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, AVAIL_GPA, MEM_SIZE - (4 + 8 * QSIZE)),
		 -EINVAL);

	/* Far outside, and addresses where gpa + length wraps. */
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, MEM_SIZE, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, 0xfffffffffffff000ULL, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, 0xfffffffffffffffeULL, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, AVAIL_GPA, 0xfffffffffffffffcULL), -EINVAL);

	/* A refused setup leaves a previously armed queue unready. */
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(virtq_setup(&q, &mem, QSIZE, DESC_GPA + 1, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(q.ready, 0);
	CHECK_EQ(virtq_pop(&q, &req), 0);
}

static void test_hostile_chains(uint8_t *buf)
{
	struct drv d;
	unsigned i;

	CHECK_EQ(drv_start(&d, buf, MEM_SIZE, QSIZE), 0);
	CHECK_EQ(virtq_pop(&d.q, &req), 0);
	good_request(&d, "start");

	drv_set(&d, 10, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 11);
	drv_set(&d, 11, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 10);
	expect_rejected(&d, 10, "loop a->b->a");

	drv_set(&d, 12, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 12);
	expect_rejected(&d, 12, "self loop");

	drv_set(&d, 13, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
	expect_rejected(&d, 13, "next index == size");
	drv_set(&d, 13, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0xffff);
	expect_rejected(&d, 13, "next index 0xffff");

	expect_rejected(&d, QSIZE + 5, "head index beyond size");
	expect_rejected(&d, 0xffff, "head index 0xffff");

	drv_set(&d, 14, MEM_SIZE, 16, 0, 0);
	expect_rejected(&d, 14, "address past the end of memory");
	drv_set(&d, 14, MEM_SIZE - 8, 16, 0, 0);
	expect_rejected(&d, 14, "range straddling the end of memory");
	drv_set(&d, 14, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	expect_rejected(&d, 14, "address + length wrapping past 2^64");
	drv_set(&d, 14, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 15);
	drv_set(&d, 15, ~0ULL, 1, VIRTQ_DESC_F_WRITE, 0);
	expect_rejected(&d, 14, "second segment at the last address");

	drv_set(&d, 16, DATA_GPA, 0, VIRTQ_DESC_F_NEXT, 17);
	drv_set(&d, 17, OUT_GPA, 0, VIRTQ_DESC_F_WRITE, 0);
	expect_rejected(&d, 16, "zero total length");

	drv_set(&d, 18, DATA_GPA, 0xffffffff, 0, 0);
	expect_rejected(&d, 18, "length 0xffffffff");

	drv_set(&d, 20, OUT_GPA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 21);
	drv_set(&d, 21, DATA_GPA, 16, 0, 0);
	expect_rejected(&d, 20, "writable before readable");
	drv_set(&d, 20, OUT_GPA, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 21);
	expect_rejected(&d, 20, "empty writable before readable");

	drv_set(&d, 22, DATA_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_rejected(&d, 22, "indirect head");
	drv_set(&d, 22, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 23);
	drv_set(&d, 23, DATA_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	expect_rejected(&d, 22, "indirect inside a chain");

	/* Chains of VIRTQ_MAX_SEGS descriptors are fine, one more is refused. */
	for (i = 0; i < VIRTQ_MAX_SEGS + 1; i++)
		drv_set(&d, 100 + i, DATA_GPA + i, 1, VIRTQ_DESC_F_NEXT, (uint16_t)(101 + i));
	drv_desc(&d, 100 + VIRTQ_MAX_SEGS - 1)->flags = 0;
	drv_submit(&d, 100);
	CHECK_EQ(virtq_pop(&d.q, &req), 1);
	CHECK_EQ(req.n_out, VIRTQ_MAX_SEGS);
	CHECK_EQ(req.out_len, VIRTQ_MAX_SEGS);
	virtq_push(&d.q, req.head, 0);
	drv_desc(&d, 100 + VIRTQ_MAX_SEGS - 1)->flags = VIRTQ_DESC_F_NEXT;
	drv_desc(&d, 100 + VIRTQ_MAX_SEGS)->flags = 0;
	expect_rejected(&d, 100, "chain of VIRTQ_MAX_SEGS + 1");

	/* The avail index more than a ring ahead: the queue is broken, nothing is consumed. */
	__atomic_store_n(&drv_avail(&d)[1], (uint16_t)(d.avail_idx + QSIZE + 1), __ATOMIC_RELEASE);
	i = *drv_used_idx(&d);
	CHECK_EQ(virtq_pop(&d.q, &req), -EIO);
	CHECK_EQ(virtq_pop(&d.q, &req), -EIO);
	CHECK_EQ(*drv_used_idx(&d), i);
	__atomic_store_n(&drv_avail(&d)[1], d.avail_idx, __ATOMIC_RELEASE);
	CHECK_EQ(virtq_pop(&d.q, &req), 0);
	good_request(&d, "avail index jump");

	/* Exactly a full ring pending is legitimate. */
	drv_set(&d, 30, DATA_GPA, 8, 0, 0);
	for (i = 0; i < QSIZE; i++)
		drv_submit(&d, 30);
	for (i = 0; i < QSIZE; i++) {
		if (virtq_pop(&d.q, &req) != 1)
			break;
		virtq_push(&d.q, req.head, 0);
	}
	CHECK_EQ(i, QSIZE);
	CHECK_EQ(virtq_pop(&d.q, &req), 0);
	good_request(&d, "full ring");
}

/* Zero-length segments are skipped (not even translated); the copy helpers stay inside the
 * right kind of segment and cross segment boundaries. */
static void test_segments(uint8_t *buf)
{
	uint8_t got[32], pattern[16], zeros[16] = { 0 };
	struct drv d;

	CHECK_EQ(drv_start(&d, buf, MEM_SIZE, 8), 0);
	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(0xa0 + i);
	memcpy(buf + DATA_GPA, pattern, 5);
	memcpy(buf + DATA_GPA + 0x100, pattern + 5, 7);
	memcpy(buf + DATA_GPA + 0x200, pattern + 12, 4);
	memset(buf + OUT_GPA, 0, 0x200);
	drv_set(&d, 0, DATA_GPA, 5, VIRTQ_DESC_F_NEXT, 1);
	drv_set(&d, 1, 0xdead000000000000ULL, 0, VIRTQ_DESC_F_NEXT, 2);
	drv_set(&d, 2, DATA_GPA + 0x100, 7, VIRTQ_DESC_F_NEXT, 3);
	drv_set(&d, 3, DATA_GPA + 0x200, 4, VIRTQ_DESC_F_NEXT, 4);
	drv_set(&d, 4, OUT_GPA, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 5);
	drv_set(&d, 5, OUT_GPA + 0x100, 6, VIRTQ_DESC_F_WRITE, 0);
	drv_submit(&d, 0);

	CHECK_EQ(virtq_pop(&d.q, &req), 1);
	CHECK_EQ(req.n_out, 3);
	CHECK_EQ(req.n_in, 2);
	CHECK_EQ(req.out_len, 16);
	CHECK_EQ(req.in_len, 9);
	CHECK_EQ(virtq_req_read(&req, 3, got, 10), 10);
	CHECK(memcmp(got, pattern + 3, 10) == 0);
	CHECK_EQ(virtq_req_read(&req, 10, got, sizeof(got)), 6);
	CHECK(memcmp(got, pattern + 10, 6) == 0);
	CHECK_EQ(virtq_req_read(&req, 16, got, 1), 0);
	CHECK_EQ(virtq_req_write(&req, 2, pattern, 5), 5);
	CHECK_EQ(buf[OUT_GPA + 2], pattern[0]);
	CHECK(memcmp(buf + OUT_GPA + 0x100, pattern + 1, 4) == 0);
	CHECK_EQ(virtq_req_write(&req, 7, pattern, 8), 2);
	CHECK_EQ(virtq_req_write(&req, 9, pattern, 1), 0);
	CHECK(memcmp(buf + OUT_GPA + 0x106, zeros, 16) == 0);
	/* The readable segments were not written through. */
	CHECK(memcmp(buf + DATA_GPA, pattern, 5) == 0);
	virtq_push(&d.q, req.head, 9);
	CHECK_EQ(*drv_used_idx(&d), 1);
	CHECK_EQ(drv_used_elem(&d, 0)[1], 9);
}

/* Indices run freely over 16 bits; ring slots are taken modulo the size. */
static void test_index_wrap(uint8_t *buf)
{
	struct drv d;

	CHECK_EQ(drv_start(&d, buf, MEM_SIZE, 4), 0);
	d.q.last_avail = d.q.used_idx = 0xfffe;
	d.avail_idx = 0xfffe;
	*drv_used_idx(&d) = 0xfffe;
	for (unsigned i = 0; i < 6; i++)
		good_request(&d, "index wrap");
	CHECK_EQ(*drv_used_idx(&d), 4);
	CHECK_EQ(d.q.last_avail, 4);
}

static void test_notify_flag(uint8_t *buf)
{
	struct drv d;

	CHECK_EQ(drv_start(&d, buf, MEM_SIZE, 8), 0);
	CHECK_EQ(virtq_should_notify(&d.q), 1);
	drv_avail(&d)[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	CHECK_EQ(virtq_should_notify(&d.q), 0);
}

/* The sum of segment lengths must fit the 32-bit used length. Needs guest memory above 4 GiB,
 * reserved but never touched beyond the rings. */
static void test_total_overflow(void)
{
	const uint64_t size = (4ULL << 30) + (1 << 20);
	uint8_t *big = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct drv d;

	CHECK(big != MAP_FAILED);
	if (big == MAP_FAILED)
		return;
	CHECK_EQ(drv_start(&d, big, size, 8), 0);
	drv_set(&d, 0, DATA_GPA, 0xffffffff, 0, 0);
	drv_submit(&d, 0);
	CHECK_EQ(virtq_pop(&d.q, &req), 1);
	CHECK_EQ(req.out_len, 0xffffffffULL);
	virtq_push(&d.q, req.head, 0);

	drv_set(&d, 0, DATA_GPA, 0xffffffff, VIRTQ_DESC_F_NEXT, 1);
	drv_set(&d, 1, DATA_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	expect_rejected(&d, 0, "total length 2^32");
	munmap(big, size);
}

int main(void)
{
	uint8_t *buf = malloc(MEM_SIZE);

	CHECK(buf != NULL);
	if (!buf)
		return TEST_SUMMARY();
	test_setup(buf);
	test_hostile_chains(buf);
	test_segments(buf);
	test_index_wrap(buf);
	test_notify_flag(buf);
	test_total_overflow();
	free(buf);
	return TEST_SUMMARY();
}
