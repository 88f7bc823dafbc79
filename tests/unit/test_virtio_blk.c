/* virtio-blk over the virtio-mmio transport, driven through the register window the way a guest
 * driver would: handshake, feature negotiation, queue setup, requests kicked through QueueNotify.
 * The disk is a real temporary file whose contents are checked after every write. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "testing.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/virtio_ids.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the test writes rings natively");

#define MEM_SIZE (1ULL << 20)
#define QN 16
#define DESC_GPA 0x1000ULL
#define AVAIL_GPA 0x2000ULL
#define USED_GPA 0x3000ULL
#define HDR_GPA 0x8000ULL
#define STATUS_GPA 0x8100ULL
#define DATA_GPA 0x10000ULL
#define DATA2_GPA 0x20000ULL

#define SECTORS 128
#define FILE_SIZE (SECTORS * 512 + 100) /* the odd tail is not part of the disk */
#define SERIAL "sbx-serial-0001"

#define ALL_STATUS                                                                                 \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

struct drv_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct drv {
	uint8_t *buf;
	struct virtio_mmio *t;
	int efd;
	uint16_t avail_idx;
};

static uint8_t image[FILE_SIZE]; /* what the disk file must contain */

static uint32_t rd(struct drv *d, uint64_t off)
{
	uint32_t v;

	virtio_mmio_access(d->t, off, (uint8_t *)&v, 4, 0);
	return v;
}

static void wr(struct drv *d, uint64_t off, uint32_t v)
{
	virtio_mmio_access(d->t, off, (uint8_t *)&v, 4, 1);
}

static uint64_t cfg_read(struct drv *d, uint64_t off, uint32_t len)
{
	uint64_t v = 0x1111111111111111ULL;

	virtio_mmio_access(d->t, VIRTIO_MMIO_REG_CONFIG + off, (uint8_t *)&v, len, 0);
	return len == 8 ? v : v & ((1ULL << (8 * len)) - 1);
}

static void drv_set(struct drv *d, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	struct drv_desc *desc = (struct drv_desc *)(d->buf + DESC_GPA);

	desc[i] = (struct drv_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static uint16_t *drv_avail(struct drv *d)
{
	return (uint16_t *)(d->buf + AVAIL_GPA);
}

static uint16_t drv_used_idx(struct drv *d)
{
	return __atomic_load_n((uint16_t *)(d->buf + USED_GPA) + 1, __ATOMIC_ACQUIRE);
}

static uint32_t *drv_used_elem(struct drv *d, uint16_t k)
{
	return (uint32_t *)(d->buf + USED_GPA + 4) + 2 * (k % QN);
}

static void drv_submit(struct drv *d, uint16_t head)
{
	drv_avail(d)[2 + d->avail_idx % QN] = head;
	d->avail_idx++;
	__atomic_store_n(&drv_avail(d)[1], d->avail_idx, __ATOMIC_RELEASE);
}

/* Interrupts raised since the last call (the eventfd counter), 0 when none. */
static uint64_t irq_count(struct drv *d)
{
	uint64_t n;

	return read(d->efd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

/* Submits head and kicks queue 0 through the register; the request must be completed exactly
 * once. Returns its used length. */
static uint32_t drv_kick(struct drv *d, uint16_t head)
{
	uint16_t before = drv_used_idx(d);

	drv_submit(d, head);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NOTIFY, 0);
	CHECK_EQ(drv_used_idx(d), (uint16_t)(before + 1));
	if (drv_used_idx(d) != (uint16_t)(before + 1))
		return 0xdeadbeef;
	CHECK_EQ(drv_used_elem(d, before)[0], head);
	return drv_used_elem(d, before)[1];
}

static void put_hdr(struct drv *d, uint32_t type, uint64_t sector)
{
	uint32_t h[4] = { type, 0, (uint32_t)sector, (uint32_t)(sector >> 32) };

	memcpy(d->buf + HDR_GPA, h, sizeof(h));
}

/* Header, data (readable for OUT, writable otherwise, none when len is 0), status byte.
 * Returns the status the device wrote; *used gets the used length. */
static int simple_req(struct drv *d, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used)
{
	uint16_t data_flags = type == VIRTIO_BLK_T_OUT ? 0 : VIRTQ_DESC_F_WRITE;

	put_hdr(d, type, sector);
	drv_set(d, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	if (len) {
		drv_set(d, 1, DATA_GPA, len, data_flags | VIRTQ_DESC_F_NEXT, 2);
		drv_set(d, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		drv_set(d, 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	}
	d->buf[STATUS_GPA] = 0xff;
	*used = drv_kick(d, 0);
	return d->buf[STATUS_GPA];
}

static int file_matches(int fd)
{
	static uint8_t now[FILE_SIZE + 1];

	return pread(fd, now, sizeof(now), 0) == FILE_SIZE && memcmp(now, image, FILE_SIZE) == 0;
}

static uint64_t drv_device_features(struct drv *d)
{
	uint64_t f;

	wr(d, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 1);
	f = (uint64_t)rd(d, VIRTIO_MMIO_REG_DEVICE_FEATURES) << 32;
	wr(d, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 0);
	return f | rd(d, VIRTIO_MMIO_REG_DEVICE_FEATURES);
}

static void drv_write_features(struct drv *d, uint64_t f)
{
	wr(d, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 0);
	wr(d, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)f);
	wr(d, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 1);
	wr(d, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

/* Reset, acknowledge and accept `features`; returns the status read back. */
static uint32_t drv_negotiate(struct drv *d, uint64_t features)
{
	wr(d, VIRTIO_MMIO_REG_STATUS, 0);
	wr(d, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(d, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	drv_write_features(d, features);
	wr(d, VIRTIO_MMIO_REG_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return rd(d, VIRTIO_MMIO_REG_STATUS);
}

static void drv_queue_regs(struct drv *d, uint32_t num)
{
	wr(d, VIRTIO_MMIO_REG_QUEUE_SEL, 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NUM, num);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DESC_HIGH, 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH, 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH, 0);
}

/* The whole driver start-up sequence (spec 3.1.1); returns the device features. */
static uint64_t drv_bringup(struct drv *d)
{
	uint64_t f;

	memset(d->buf, 0, DATA_GPA);
	d->avail_idx = 0;
	wr(d, VIRTIO_MMIO_REG_STATUS, 0);
	f = drv_device_features(d);
	CHECK_EQ(drv_negotiate(d, f) & VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_FEATURES_OK);
	wr(d, VIRTIO_MMIO_REG_QUEUE_SEL, 0);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 256);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_READY), 0);
	drv_queue_regs(d, QN);
	wr(d, VIRTIO_MMIO_REG_QUEUE_READY, 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_READY), 1);
	wr(d, VIRTIO_MMIO_REG_STATUS, ALL_STATUS);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_STATUS), ALL_STATUS);
	irq_count(d);
	wr(d, VIRTIO_MMIO_REG_INTERRUPT_ACK, 3);
	return f;
}

static void test_registers(struct drv *d)
{
	uint8_t raw[8];

	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_MAGIC), 0x74726976);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_VERSION), 2);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_DEVICE_ID), VIRTIO_ID_BLOCK);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_VENDOR_ID), 0x53425831);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_STATUS), 0);

	/* Only aligned 32-bit register accesses count. */
	memset(raw, 0xee, sizeof(raw));
	virtio_mmio_access(d->t, VIRTIO_MMIO_REG_MAGIC + 1, raw, 4, 0);
	CHECK_EQ(raw[0] | raw[1] | raw[2] | raw[3], 0);
	memset(raw, 0xee, sizeof(raw));
	virtio_mmio_access(d->t, VIRTIO_MMIO_REG_MAGIC, raw, 2, 0);
	CHECK_EQ(raw[0] | raw[1], 0);
	memset(raw, 0xee, sizeof(raw));
	virtio_mmio_access(d->t, VIRTIO_MMIO_REG_MAGIC, raw, 8, 0);
	CHECK_EQ(raw[0] | raw[4] | raw[7], 0);
	raw[0] = VIRTIO_STATUS_ACKNOWLEDGE;
	virtio_mmio_access(d->t, VIRTIO_MMIO_REG_STATUS, raw, 1, 1);
	virtio_mmio_access(d->t, VIRTIO_MMIO_REG_STATUS + 1, raw, 4, 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_STATUS), 0);

	/* Queue selectors beyond the device's queues read as absent and take no writes. */
	wr(d, VIRTIO_MMIO_REG_QUEUE_SEL, 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_SEL, 0xffffffff);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NUM, QN);
	wr(d, VIRTIO_MMIO_REG_QUEUE_READY, 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_READY), 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_SEL, 0);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 256);
	CHECK(virtio_mmio_queue(d->t, 0) == NULL);
	CHECK(virtio_mmio_queue(d->t, 1) == NULL);

	/* Config space: capacity in sectors (the odd tail dropped), seg_max, blk_size. */
	CHECK_EQ(cfg_read(d, 0, 8), SECTORS);
	CHECK_EQ(cfg_read(d, 0, 4), SECTORS);
	CHECK_EQ(cfg_read(d, 4, 4), 0);
	CHECK_EQ(cfg_read(d, 1, 1), 0);
	CHECK_EQ(cfg_read(d, 0, 1), SECTORS);
	CHECK_EQ(cfg_read(d, 12, 4), VIRTQ_MAX_SEGS - 2);
	CHECK_EQ(cfg_read(d, 20, 4), 512);
	CHECK_EQ(cfg_read(d, 22, 4), 0);
	CHECK_EQ(cfg_read(d, 0xf8, 8), 0);
	CHECK_EQ(cfg_read(d, 0xfc, 8), 0);
	CHECK_EQ(cfg_read(d, 0, 3), 0);
	memset(raw, 0xff, sizeof(raw));
	virtio_mmio_access(d->t, VIRTIO_MMIO_REG_CONFIG, raw, 8, 1);
	CHECK_EQ(cfg_read(d, 0, 8), SECTORS);
}

static void test_negotiation(struct drv *d)
{
	uint64_t f = drv_device_features(d);

	CHECK_EQ(f & VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1);
	CHECK_EQ(f & VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_FLUSH);
	CHECK_EQ(f & VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_BLK_SIZE);
	CHECK_EQ(f & VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SEG_MAX);
	CHECK_EQ(f & VIRTIO_BLK_F_RO, 0);
	wr(d, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 2);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_DEVICE_FEATURES), 0);

	/* A legacy driver (no VERSION_1) and a driver taking an unoffered bit are refused. */
	CHECK_EQ(drv_negotiate(d, f & ~VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK, 0);
	CHECK_EQ(drv_negotiate(d, f | VIRTIO_BLK_F_SIZE_MAX) & VIRTIO_STATUS_FEATURES_OK, 0);
	CHECK_EQ(drv_negotiate(d, f) & VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_FEATURES_OK);
	/* Once accepted, features cannot change. */
	drv_write_features(d, 0);
	CHECK_EQ(d->t->driver_features, f);
	wr(d, VIRTIO_MMIO_REG_STATUS, 0);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_STATUS), 0);

	/* DRIVER_OK without FEATURES_OK: the device fails instead of starting. */
	irq_count(d);
	CHECK_EQ(drv_negotiate(d, 0) & VIRTIO_STATUS_FEATURES_OK, 0);
	wr(d, VIRTIO_MMIO_REG_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	CHECK(rd(d, VIRTIO_MMIO_REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(rd(d, VIRTIO_MMIO_REG_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK(irq_count(d) >= 1);
	/* Only a reset clears DEVICE_NEEDS_RESET, not a driver writing the bit as 0. */
	wr(d, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	CHECK(rd(d, VIRTIO_MMIO_REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	wr(d, VIRTIO_MMIO_REG_STATUS, 0);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_STATUS), 0);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_INTERRUPT_STATUS), 0);
}

/* Rings the device must refuse when the driver arms the queue. */
static void expect_bad_queue(struct drv *d, uint32_t num, uint32_t desc_lo, const char *what)
{
	int failed = testing_failed;

	CHECK_EQ(drv_negotiate(d, drv_device_features(d)) & VIRTIO_STATUS_FEATURES_OK,
		 VIRTIO_STATUS_FEATURES_OK);
	irq_count(d);
	drv_queue_regs(d, num);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, desc_lo);
	wr(d, VIRTIO_MMIO_REG_QUEUE_READY, 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_READY), 0);
	CHECK(rd(d, VIRTIO_MMIO_REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(irq_count(d) >= 1);
	wr(d, VIRTIO_MMIO_REG_STATUS, 0);
	if (testing_failed != failed)
		fprintf(stderr, "  bad queue: %s\n", what);
}

static void test_queue_setup(struct drv *d)
{
	expect_bad_queue(d, 3, (uint32_t)DESC_GPA, "size 3");
	expect_bad_queue(d, 512, (uint32_t)DESC_GPA, "size above QueueNumMax");
	expect_bad_queue(d, 0x10000 + QN, (uint32_t)DESC_GPA, "size truncating to a valid one");
	expect_bad_queue(d, QN, (uint32_t)DESC_GPA + 8, "misaligned descriptors");
	expect_bad_queue(d, QN, (uint32_t)MEM_SIZE, "descriptors outside memory");
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + (i >> 9));
}

static void test_io(struct drv *d, int fd)
{
	uint8_t pattern[2048], id[32];
	uint32_t used, h[4];

	drv_bringup(d);

	/* OUT four sectors at sector 4, then the interrupt and the file. */
	fill(pattern, sizeof(pattern), 0x40);
	memcpy(d->buf + DATA_GPA, pattern, sizeof(pattern));
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, 4, sizeof(pattern), &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 1);
	memcpy(image + 4 * 512, pattern, sizeof(pattern));
	CHECK(file_matches(fd));
	CHECK(irq_count(d) >= 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(d, VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_INTERRUPT_STATUS), 0);

	/* IN the same sectors into two writable segments. */
	memset(d->buf + DATA_GPA, 0, 0x4000);
	put_hdr(d, VIRTIO_BLK_T_IN, 4);
	drv_set(d, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	drv_set(d, 1, DATA_GPA, 1000, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	drv_set(d, 2, DATA2_GPA, 1048, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	drv_set(d, 3, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	d->buf[STATUS_GPA] = 0xff;
	CHECK_EQ(drv_kick(d, 0), 2049);
	CHECK_EQ(d->buf[STATUS_GPA], VIRTIO_BLK_S_OK);
	CHECK(memcmp(d->buf + DATA_GPA, pattern, 1000) == 0);
	CHECK(memcmp(d->buf + DATA2_GPA, pattern + 1000, 1048) == 0);

	/* IN with data and status sharing one segment: the status is the last byte. */
	memset(d->buf + DATA_GPA, 0xee, 513);
	put_hdr(d, VIRTIO_BLK_T_IN, 5);
	drv_set(d, 1, DATA_GPA, 513, VIRTQ_DESC_F_WRITE, 0);
	CHECK_EQ(drv_kick(d, 0), 513);
	CHECK(memcmp(d->buf + DATA_GPA, pattern + 512, 512) == 0);
	CHECK_EQ(d->buf[DATA_GPA + 512], VIRTIO_BLK_S_OK);

	/* OUT with the header split over two segments, the second also holding the data. */
	fill(pattern, 512, 0x77);
	h[0] = VIRTIO_BLK_T_OUT;
	h[1] = 0;
	h[2] = 10;
	h[3] = 0;
	memcpy(d->buf + HDR_GPA, h, 8);
	memcpy(d->buf + DATA_GPA, h + 2, 8);
	memcpy(d->buf + DATA_GPA + 8, pattern, 512);
	drv_set(d, 0, HDR_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	drv_set(d, 1, DATA_GPA, 8 + 512, VIRTQ_DESC_F_NEXT, 2);
	drv_set(d, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	d->buf[STATUS_GPA] = 0xff;
	CHECK_EQ(drv_kick(d, 0), 1);
	CHECK_EQ(d->buf[STATUS_GPA], VIRTIO_BLK_S_OK);
	memcpy(image + 10 * 512, pattern, 512);
	CHECK(file_matches(fd));

	/* The last sector is inside the disk. */
	fill(d->buf + DATA_GPA, 512, 0x99);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, SECTORS - 1, 512, &used), VIRTIO_BLK_S_OK);
	memcpy(image + (SECTORS - 1) * 512, d->buf + DATA_GPA, 512);
	CHECK(file_matches(fd));

	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_FLUSH, 0, 0, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 1);

	memset(d->buf + DATA_GPA, 0xee, 32);
	memset(id, 0, sizeof(id));
	memcpy(id, SERIAL, strlen(SERIAL));
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_GET_ID, 0, 20, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 21);
	CHECK(memcmp(d->buf + DATA_GPA, id, 20) == 0);
	memset(d->buf + DATA_GPA, 0xee, 32);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_GET_ID, 0, 8, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 9);
	CHECK(memcmp(d->buf + DATA_GPA, id, 8) == 0);
	CHECK_EQ(d->buf[DATA_GPA + 8], 0xee);
	memset(d->buf + DATA_GPA, 0xee, 32);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_GET_ID, 0, 32, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 21);
	CHECK(memcmp(d->buf + DATA_GPA, id, 20) == 0);
	CHECK_EQ(d->buf[DATA_GPA + 20], 0xee);

	CHECK_EQ(simple_req(d, 99, 0, 512, &used), VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(used, 1);
	CHECK(file_matches(fd));

	/* Layout writes to a live queue are ignored: re-arming it uses the old, valid layout. */
	wr(d, VIRTIO_MMIO_REG_QUEUE_NUM, 3);
	wr(d, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, (uint32_t)MEM_SIZE);
	wr(d, VIRTIO_MMIO_REG_QUEUE_READY, 0);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_READY), 0);
	memset(d->buf, 0, DATA_GPA);
	d->avail_idx = 0;
	wr(d, VIRTIO_MMIO_REG_QUEUE_READY, 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_READY), 1);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_STATUS), ALL_STATUS);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_FLUSH, 0, 0, &used), VIRTIO_BLK_S_OK);

	/* A kick naming a queue the device does not have is ignored. */
	used = drv_used_idx(d);
	drv_submit(d, 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NOTIFY, 1);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NOTIFY, 0xffffffff);
	CHECK_EQ(drv_used_idx(d), used);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NOTIFY, 0);
	CHECK_EQ(drv_used_idx(d), (uint16_t)(used + 1));
}

/* Requests the device must refuse; the file never changes. */
static void test_bad_requests(struct drv *d, int fd)
{
	uint32_t used;

	fill(d->buf + DATA_GPA, 4096, 0x13);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, SECTORS - 1, 1024, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(used, 1);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, SECTORS, 512, &used), VIRTIO_BLK_S_IOERR);
	/* sector * 512 wraps to 0 in 64 bits. */
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, 1ULL << 55, 512, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, ~0ULL, 512, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_IN, SECTORS - 1, 1024, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(used, 1);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_IN, 1ULL << 55, 512, &used), VIRTIO_BLK_S_IOERR);
	/* Partial sectors. */
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, 0, 100, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_IN, 0, 100, &used), VIRTIO_BLK_S_IOERR);
	CHECK(file_matches(fd));

	/* No writable byte for a status: handed back with length 0, nothing written. */
	put_hdr(d, VIRTIO_BLK_T_OUT, 0);
	drv_set(d, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	drv_set(d, 1, DATA_GPA, 512, 0, 0);
	CHECK_EQ(drv_kick(d, 0), 0);
	CHECK(file_matches(fd));

	/* A header shorter than 16 bytes. */
	put_hdr(d, VIRTIO_BLK_T_OUT, 0);
	drv_set(d, 0, HDR_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	drv_set(d, 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	d->buf[STATUS_GPA] = 0xff;
	CHECK_EQ(drv_kick(d, 0), 1);
	CHECK_EQ(d->buf[STATUS_GPA], VIRTIO_BLK_S_IOERR);

	/* A descriptor loop is refused by the queue and handed back with an interrupt, and the
	 * device goes on. */
	irq_count(d);
	drv_set(d, 5, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 6);
	drv_set(d, 6, STATUS_GPA, 1, VIRTQ_DESC_F_NEXT, 5);
	CHECK_EQ(drv_kick(d, 5), 0);
	CHECK_EQ(irq_count(d), 1);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_FLUSH, 0, 0, &used), VIRTIO_BLK_S_OK);
	CHECK(file_matches(fd));
}

static void test_interrupt_suppression(struct drv *d)
{
	uint32_t used;

	irq_count(d);
	drv_avail(d)[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_FLUSH, 0, 0, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(irq_count(d), 0);
	drv_avail(d)[0] = 0;
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_FLUSH, 0, 0, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(irq_count(d), 1);
}

/* A broken avail index stops the device until the driver resets it. */
static void test_broken_ring(struct drv *d)
{
	uint16_t used_idx = drv_used_idx(d);
	uint32_t used;

	irq_count(d);
	__atomic_store_n(&drv_avail(d)[1], (uint16_t)(d->avail_idx + QN + 1), __ATOMIC_RELEASE);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NOTIFY, 0);
	CHECK(rd(d, VIRTIO_MMIO_REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(rd(d, VIRTIO_MMIO_REG_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK(irq_count(d) >= 1);
	CHECK_EQ(drv_used_idx(d), used_idx);

	/* Even a sane request is left alone now. */
	__atomic_store_n(&drv_avail(d)[1], d->avail_idx, __ATOMIC_RELEASE);
	put_hdr(d, VIRTIO_BLK_T_FLUSH, 0);
	drv_set(d, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	drv_set(d, 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	drv_submit(d, 0);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NOTIFY, 0);
	CHECK_EQ(drv_used_idx(d), used_idx);

	/* Reset forgets the queue; kicks do nothing until the driver starts over. */
	wr(d, VIRTIO_MMIO_REG_STATUS, 0);
	CHECK_EQ(rd(d, VIRTIO_MMIO_REG_QUEUE_READY), 0);
	CHECK(virtio_mmio_queue(d->t, 0) == NULL);
	wr(d, VIRTIO_MMIO_REG_QUEUE_NOTIFY, 0);
	CHECK_EQ(drv_used_idx(d), used_idx);
	drv_bringup(d);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_FLUSH, 0, 0, &used), VIRTIO_BLK_S_OK);
}

static void test_read_only(struct drv *d, const char *path, int fd, struct guest_mem *mem)
{
	struct virtio_blk *dev = NULL;
	struct virtio_mmio t;
	uint8_t zeros[20] = { 0 };
	uint32_t used;

	CHECK_EQ(virtio_blk_open(path, 1, NULL, &dev), 0);
	if (!dev)
		return;
	virtio_mmio_init(&t, &virtio_blk_ops, dev, mem, 0xd0001000, 6, d->efd);
	d->t = &t;
	CHECK_EQ(drv_bringup(d) & VIRTIO_BLK_F_RO, VIRTIO_BLK_F_RO);

	fill(d->buf + DATA_GPA, 1024, 0x21);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_OUT, 0, 1024, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(used, 1);
	CHECK(file_matches(fd));
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_IN, 4, 512, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 513);
	CHECK(memcmp(d->buf + DATA_GPA, image + 4 * 512, 512) == 0);
	memset(d->buf + DATA_GPA, 0xee, 20);
	CHECK_EQ(simple_req(d, VIRTIO_BLK_T_GET_ID, 0, 20, &used), VIRTIO_BLK_S_OK);
	CHECK(memcmp(d->buf + DATA_GPA, zeros, 20) == 0);

	d->t = NULL;
	virtio_mmio_destroy(&t);
	virtio_blk_ops.free(dev);
}

static void run_tests(struct drv *d, const char *path, int fd)
{
	struct virtio_blk *dev = NULL;
	struct guest_mem mem;
	struct virtio_mmio t;

	fill(image, sizeof(image), 0x01);
	CHECK_EQ(pwrite(fd, image, sizeof(image), 0), sizeof(image));
	guest_mem_init_buffer(&mem, d->buf, MEM_SIZE);

	CHECK_EQ(virtio_blk_open("/nonexistent/disk.img", 0, NULL, &dev), -ENOENT);
	CHECK(dev == NULL);
	CHECK_EQ(virtio_blk_open(path, 0, SERIAL, &dev), 0);
	if (dev) {
		virtio_mmio_init(&t, &virtio_blk_ops, dev, &mem, 0xd0000000, 5, d->efd);
		d->t = &t;
		test_registers(d);
		test_negotiation(d);
		test_queue_setup(d);
		test_io(d, fd);
		test_bad_requests(d, fd);
		test_interrupt_suppression(d);
		test_broken_ring(d);
		d->t = NULL;
		virtio_mmio_destroy(&t);
		virtio_blk_ops.free(dev);
	}
	test_read_only(d, path, fd, &mem);
}

int main(void)
{
	char tmpl[] = "/tmp/sbx-virtio-blk-XXXXXX", path[64];
	struct drv d = { 0 };
	int fd;

	d.buf = calloc(1, MEM_SIZE);
	d.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fd = mkstemp(tmpl);
	CHECK(d.buf && d.efd >= 0 && fd >= 0);
	if (d.buf && d.efd >= 0 && fd >= 0) {
		/* Gone from /tmp at once, even if the test crashes; the device opens it by fd. */
		unlink(tmpl);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		run_tests(&d, path, fd);
	}
	if (fd >= 0)
		close(fd);
	if (d.efd >= 0)
		close(d.efd);
	free(d.buf);
	return TEST_SUMMARY();
}
