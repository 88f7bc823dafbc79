/* What a snapshot is made of, without KVM: guest memory saved sparse and mapped back privately
 * (also saved again from a private mapping), disk images cloned with holes kept, the device
 * thread paused and resumed, the UART's and the virtio transport's state carried to fresh devices
 * (and refused when it does not fit). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices/serial.h"
#include "testing.h"
#include "util/evloop.h"
#include "util/file_clone.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/virtio_ids.h"
#include "vmm/guest_mem.h"

#define MEM (64ULL << 20)
#define PAGE 4096ULL

static char tmpdir[] = "/tmp/test_snapshot_io.XXXXXX";

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static int file_equals(const char *path, const uint8_t *want, uint64_t len)
{
	uint8_t *got = malloc(len);
	int fd = open(path, O_RDONLY | O_CLOEXEC), same;

	same = fd >= 0 && pread(fd, got, len, 0) == (ssize_t)len && !memcmp(got, want, len);
	if (fd >= 0)
		close(fd);
	free(got);
	return same;
}

static uint64_t file_blocks_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : ~0ULL;
}

/* guest_mem_save into a new file at path, as the VMM does into the one the library creates. */
static int save_to(const struct guest_mem *m, const char *path, int pagemap_fd, uint64_t *written)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), rc;

	if (fd < 0)
		return -errno;
	rc = guest_mem_save(m, fd, pagemap_fd, written);
	close(fd);
	return rc;
}

static void test_memory(void)
{
	struct guest_mem m, r;
	char first[256], second[256];
	uint64_t written = 0;
	struct stat st;
	uint8_t *copy;
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	path_in(first, sizeof(first), "memory-1");
	path_in(second, sizeof(second), "memory-2");
	CHECK_EQ(guest_mem_create(&m, MEM), 0);
	memset(m.base, 0xa5, PAGE);		    /* first page */
	memset(m.base + 10 * PAGE + 100, 0x11, 10); /* part of one page */
	memset(m.base + 20 * PAGE, 0, PAGE);	    /* touched, but zero: a hole */
	memset(m.base + MEM - PAGE, 0x5a, PAGE);    /* last page */
	CHECK_EQ(save_to(&m, first, -1, &written), 0);
	CHECK_EQ(written, 3 * PAGE);
	CHECK(stat(first, &st) == 0 && (uint64_t)st.st_size == MEM);
	CHECK(file_blocks_bytes(first) <= 16 * PAGE);
	CHECK(file_equals(first, m.base, MEM));
	CHECK_EQ(save_to(&m, first, -1, &written), -EEXIST);

	/* Mapped privately: the same bytes; writes stay in the mapping, never reach the file. */
	CHECK_EQ(guest_mem_map_file(&r, first, MEM), 0);
	CHECK_EQ(r.kind, GUEST_MEM_FILE);
	CHECK(!memcmp(r.base, m.base, MEM));
	copy = malloc(MEM);
	memcpy(copy, m.base, MEM);
	memset(r.base, 0, PAGE);		    /* a data page zeroed: must become zero */
	memset(r.base + 30 * PAGE, 0x77, 3 * PAGE); /* new data in a hole */
	r.base[MEM - 1] = 1;			    /* one byte of the last page */
	CHECK(file_equals(first, copy, MEM));
	/* Saved from the private mapping: a clone of the file with the written pages on top. */
	CHECK(pagemap >= 0);
	CHECK_EQ(save_to(&r, second, pagemap, &written), 0);
	CHECK_EQ(written, 4 * PAGE);
	CHECK(file_equals(second, r.base, MEM));
	guest_mem_destroy(&r);

	/* A memory file shorter than the memory it should hold is refused. */
	CHECK_EQ(truncate(second, MEM - PAGE), 0);
	CHECK_EQ(guest_mem_map_file(&r, second, MEM), -EINVAL);
	path_in(second, sizeof(second), "no-such-memory");
	CHECK_EQ(guest_mem_map_file(&r, second, MEM), -ENOENT);
	free(copy);
	close(pagemap);
	guest_mem_destroy(&m);
}

static void test_clone(void)
{
	char src[256], dst[256], text[128];
	uint8_t block[8192];
	int fd, how = 0, why = 0;

	path_in(src, sizeof(src), "image");
	path_in(dst, sizeof(dst), "image-clone");
	memset(block, 0x3c, sizeof(block));
	fd = open(src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, block, sizeof(block), 0), sizeof(block));
	CHECK_EQ(pwrite(fd, block, sizeof(block), 10 << 20), sizeof(block));
	CHECK_EQ(ftruncate(fd, 20 << 20), 0);
	CHECK_EQ(file_clone(fd, dst, &how, &why), 0);
	CHECK(how == FILE_CLONE_REFLINK || how == FILE_CLONE_COPY);
	printf("clone on %s: %s\n", tmpdir, file_clone_describe(how, why, text, sizeof(text)));
	{
		uint8_t *want = calloc(1, 20 << 20);
		memcpy(want, block, sizeof(block));
		memcpy(want + (10 << 20), block, sizeof(block));
		CHECK(file_equals(dst, want, 20 << 20));
		free(want);
	}
	/* The holes stay holes. */
	CHECK(file_blocks_bytes(dst) < (1 << 20));
	CHECK_EQ(file_clone(fd, dst, &how, &why), -EEXIST);
	close(fd);
}

struct loop_test {
	struct evloop *l;
	int efd;
	int count;
};

static void on_event(void *opaque, uint32_t events)
{
	struct loop_test *t = opaque;
	uint64_t n;

	if (read(t->efd, &n, sizeof(n)) == sizeof(n))
		__atomic_add_fetch(&t->count, 1, __ATOMIC_SEQ_CST);
}

static void *loop_thread(void *arg)
{
	struct loop_test *t = arg;

	evloop_run(t->l);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void test_evloop_pause(void)
{
	struct loop_test t = {0};
	uint64_t one = 1;
	pthread_t th;

	CHECK_EQ(evloop_new(&t.l), 0);
	t.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK_EQ(evloop_add(t.l, t.efd, EPOLLIN, on_event, &t), 0);
	pthread_create(&th, NULL, loop_thread, &t);
	CHECK_EQ(evloop_pause(t.l, 2000), 0);
	CHECK_EQ(write(t.efd, &one, sizeof(one)), sizeof(one));
	sleep_ms(50);
	CHECK_EQ(__atomic_load_n(&t.count, __ATOMIC_SEQ_CST), 0);
	evloop_resume(t.l);
	for (int i = 0; i < 200 && !__atomic_load_n(&t.count, __ATOMIC_SEQ_CST); i++)
		sleep_ms(5);
	CHECK_EQ(__atomic_load_n(&t.count, __ATOMIC_SEQ_CST), 1);
	/* Paused twice in a row works as well. */
	CHECK_EQ(evloop_pause(t.l, 2000), 0);
	evloop_resume(t.l);
	evloop_stop(t.l);
	pthread_join(th, NULL);
	evloop_free(t.l);
	close(t.efd);
}

static void serial_out(void *ctx, const uint8_t *buf, size_t len)
{
	*(size_t *)ctx += len;
}

static void serial_irq(void *ctx, int level)
{
}

static uint8_t uart(struct serial *s, unsigned reg, int write, uint8_t v)
{
	serial_access(s, reg, &v, 1, write);
	return v;
}

static void test_serial(void)
{
	struct serial *a, *b;
	struct serial_state st;
	size_t out = 0;

	CHECK_EQ(serial_new(serial_out, serial_irq, &out, &a), 0);
	CHECK_EQ(serial_new(serial_out, serial_irq, &out, &b), 0);
	uart(a, 3, 1, 0x03); /* LCR: 8N1 */
	uart(a, 7, 1, 0x42); /* scratch */
	uart(a, 1, 1, 0x01); /* IER: receive interrupts */
	uart(a, 0, 1, 'x');  /* a partial line, flushed by save */
	serial_input(a, (const uint8_t *)"ab", 2);
	serial_save(a, &st);
	CHECK_EQ(out, 1);
	CHECK_EQ(serial_restore(b, &st), 0);
	CHECK_EQ(uart(b, 3, 0, 0), 0x03);
	CHECK_EQ(uart(b, 7, 0, 0), 0x42);
	CHECK_EQ(uart(b, 1, 0, 0), 0x01);
	CHECK_EQ(uart(b, 0, 0, 0), 'a');
	CHECK_EQ(uart(b, 0, 0, 0), 'b');
	st.rx_count = 200;
	CHECK_EQ(serial_restore(b, &st), -EINVAL);
	serial_free(a);
	serial_free(b);
}

#define QN 16
#define DESC_GPA 0x1000ULL
#define AVAIL_GPA 0x2000ULL
#define USED_GPA 0x3000ULL

static void wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_access(t, off, (uint8_t *)&v, 4, 1);
}

static uint32_t rd(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v;

	virtio_mmio_access(t, off, (uint8_t *)&v, 4, 0);
	return v;
}

static void test_virtio_state(void)
{
	const uint32_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	struct virtio_mmio a, b;
	struct virtio_mmio_state s, bad;
	struct virtio_blk *blk_a, *blk_b;
	struct guest_mem mem;
	char disk[256];
	uint8_t *buf = calloc(1, 1 << 20);
	int fd;

	path_in(disk, sizeof(disk), "disk");
	fd = open(disk, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	close(fd);
	guest_mem_init_buffer(&mem, buf, 1 << 20);
	CHECK_EQ(virtio_blk_open(disk, 0, "s", &blk_a), 0);
	CHECK_EQ(virtio_blk_open(disk, 0, "s", &blk_b), 0);
	virtio_mmio_init(&a, &virtio_blk_ops, blk_a, &mem, 0, 16, -1);
	virtio_mmio_init(&b, &virtio_blk_ops, blk_b, &mem, 0, 16, -1);

	/* A driver's bring-up on a. */
	wr(&a, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(&a, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 1);
	wr(&a, VIRTIO_MMIO_REG_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(&a, VIRTIO_MMIO_REG_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	wr(&a, VIRTIO_MMIO_REG_QUEUE_SEL, 0);
	wr(&a, VIRTIO_MMIO_REG_QUEUE_NUM, QN);
	wr(&a, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, DESC_GPA);
	wr(&a, VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, AVAIL_GPA);
	wr(&a, VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, USED_GPA);
	wr(&a, VIRTIO_MMIO_REG_QUEUE_READY, 1);
	wr(&a, VIRTIO_MMIO_REG_STATUS, status);
	CHECK_EQ(rd(&a, VIRTIO_MMIO_REG_STATUS), status);
	a.queues[0].vq.last_avail = 7;
	a.queues[0].vq.used_idx = 7;
	a.interrupt_status = VIRTIO_MMIO_INT_VRING;

	virtio_mmio_save(&a, &s);
	CHECK_EQ(s.device_id, VIRTIO_ID_BLOCK);
	CHECK_EQ(s.nqueues, 1);
	CHECK_EQ(s.queues[0].num, QN);
	CHECK_EQ(s.queues[0].desc, DESC_GPA);

	/* Refused: another device's state, a ring outside memory, a queue too large. */
	bad = s;
	bad.device_id = VIRTIO_ID_VSOCK;
	CHECK_EQ(virtio_mmio_restore(&b, &bad), -EINVAL);
	bad = s;
	bad.queues[0].used = 1ULL << 40;
	CHECK_EQ(virtio_mmio_restore(&b, &bad), -EINVAL);
	CHECK_EQ(rd(&b, VIRTIO_MMIO_REG_QUEUE_READY), 0);
	bad = s;
	bad.queues[0].num = 4096;
	CHECK_EQ(virtio_mmio_restore(&b, &bad), -EINVAL);

	CHECK_EQ(virtio_mmio_restore(&b, &s), 0);
	CHECK_EQ(rd(&b, VIRTIO_MMIO_REG_STATUS), status);
	CHECK_EQ(rd(&b, VIRTIO_MMIO_REG_QUEUE_READY), 1);
	CHECK_EQ(rd(&b, VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	CHECK_EQ(b.queues[0].vq.last_avail, 7);
	CHECK_EQ(b.queues[0].vq.used_idx, 7);
	CHECK(virtio_mmio_queue(&b, 0) != NULL);

	virtio_mmio_destroy(&a);
	virtio_mmio_destroy(&b);
	virtio_blk_ops.free(blk_a);
	virtio_blk_ops.free(blk_b);
	free(buf);
}

int main(void)
{
	char cmd[300];
	int rc;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_memory();
	test_clone();
	test_evloop_pause();
	test_serial();
	test_virtio_state();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	rc = system(cmd);
	(void)rc;
	return TEST_SUMMARY();
}
