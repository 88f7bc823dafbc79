#define _GNU_SOURCE
#include "blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mmio.h"
#include "virtio_ids.h"

#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (VIRTQ_MAX_SEGS - 2) /* the header and status take one segment each */

struct virtio_blk {
	int fd;
	int read_only;
	uint64_t capacity; /* 512-byte sectors */
	char serial[VIRTIO_BLK_ID_BYTES]; /* zero-padded, not terminated when full */
	struct virtio_mmio *t; /* set while the driver runs the device (activate to reset) */
	struct virtq_req req;
	struct iovec data[VIRTQ_MAX_SEGS]; /* the data part of req, for preadv/pwritev */
};

/* Config space (spec 5.2.4) up to blk_size; later fields belong to features we do not offer. */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
};

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

_Static_assert(sizeof(struct virtio_blk_config) == 24, "config layout");
_Static_assert(sizeof(struct virtio_blk_req_hdr) == 16, "request header layout");

static void blk_free(void *dev)
{
	struct virtio_blk *b = dev;

	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

int virtio_blk_open(const char *path, int read_only, const char *serial, struct virtio_blk **out)
{
	struct virtio_blk *b;
	off_t size;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->read_only = !!read_only;
	b->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0)
		goto fail;
	/* lseek rather than fstat: st_size is 0 for block devices. */
	size = lseek(b->fd, 0, SEEK_END);
	if (size < 0)
		goto fail;
	b->capacity = (uint64_t)size / VIRTIO_BLK_SECTOR_SIZE;
	if (serial)
		memcpy(b->serial, serial, strnlen(serial, sizeof(b->serial)));
	*out = b;
	return 0;
fail:
	err = -errno;
	blk_free(b);
	return err;
}

int virtio_blk_fd(const struct virtio_blk *b)
{
	return b->fd;
}

static uint64_t blk_features(void *dev)
{
	struct virtio_blk *b = dev;
	uint64_t f = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH;

	return b->read_only ? f | VIRTIO_BLK_F_RO : f;
}

static void blk_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = dev;
	struct virtio_blk_config c = {
		.capacity = htole64(b->capacity),
		.seg_max = htole32(BLK_SEG_MAX),
		.blk_size = htole32(VIRTIO_BLK_SECTOR_SIZE),
	};
	uint64_t n;

	memset(data, 0, len);
	if (offset >= sizeof(c))
		return;
	n = sizeof(c) - offset < len ? sizeof(c) - offset : len;
	memcpy(data, (const uint8_t *)&c + offset, n);
}

static void blk_config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	/* Every field we expose is read-only (no VIRTIO_BLK_F_CONFIG_WCE). */
}

static int blk_activate(void *dev, struct virtio_mmio *t)
{
	struct virtio_blk *b = dev;

	b->t = t;
	return 0;
}

static void blk_reset(void *dev)
{
	struct virtio_blk *b = dev;

	b->t = NULL;
}

/* Transfers all of iov at file offset off, resuming after short transfers. *done counts the bytes
 * moved even on failure. Consumes iov. */
static int blk_io(int fd, struct iovec *iov, unsigned n, uint64_t off, int is_write, uint64_t *done)
{
	while (n > 0) {
		ssize_t ret = is_write ? pwritev(fd, iov, (int)n, (off_t)off)
				       : preadv(fd, iov, (int)n, (off_t)off);
		size_t left;

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		/* End of file: the image shrank under us. */
		if (ret == 0)
			return -EIO;
		*done += (uint64_t)ret;
		off += (uint64_t)ret;
		left = (size_t)ret;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* Whole sectors, all inside the disk; written so that no guest value can overflow it. */
static int blk_range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
	if (len % VIRTIO_BLK_SECTOR_SIZE)
		return 0;
	return sector <= b->capacity && len / VIRTIO_BLK_SECTOR_SIZE <= b->capacity - sector;
}

static uint8_t blk_read(struct virtio_blk *b, const struct virtq_req *r, uint64_t sector,
			uint64_t *written)
{
	uint64_t len = r->in_len - 1; /* all writable bytes but the status */
	unsigned n;

	if (!blk_range_ok(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	n = virtq_iov_slice(r->iov + r->n_out, r->n_in, 0, len, b->data);
	if (blk_io(b->fd, b->data, n, sector * VIRTIO_BLK_SECTOR_SIZE, 0, written) < 0)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_write(struct virtio_blk *b, const struct virtq_req *r, uint64_t sector)
{
	const uint64_t hdr = sizeof(struct virtio_blk_req_hdr);
	uint64_t len = r->out_len - hdr, done = 0;
	unsigned n;

	if (b->read_only || !blk_range_ok(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	/* The data may start inside the header's segment. */
	n = virtq_iov_slice(r->iov, r->n_out, hdr, len, b->data);
	if (blk_io(b->fd, b->data, n, sector * VIRTIO_BLK_SECTOR_SIZE, 1, &done) < 0)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_get_id(struct virtio_blk *b, const struct virtq_req *r, uint64_t *written)
{
	uint64_t room = r->in_len - 1;
	size_t n = room < sizeof(b->serial) ? room : sizeof(b->serial);

	*written = virtq_req_write(r, 0, b->serial, n);
	return VIRTIO_BLK_S_OK;
}

/* Serves one request and writes its status; returns the used length (data + status). */
static uint32_t blk_serve(struct virtio_blk *b, const struct virtq_req *r)
{
	struct virtio_blk_req_hdr h;
	uint64_t written = 0;
	uint8_t status;

	/* Nowhere to put a status: nothing can be reported, the buffer just goes back. */
	if (r->in_len == 0)
		return 0;
	if (virtq_req_read(r, 0, &h, sizeof(h)) != sizeof(h)) {
		status = VIRTIO_BLK_S_IOERR;
	} else {
		switch (le32toh(h.type)) {
		case VIRTIO_BLK_T_IN:
			status = blk_read(b, r, le64toh(h.sector), &written);
			break;
		case VIRTIO_BLK_T_OUT:
			status = blk_write(b, r, le64toh(h.sector));
			break;
		case VIRTIO_BLK_T_FLUSH:
			status = fdatasync(b->fd) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
			break;
		case VIRTIO_BLK_T_GET_ID:
			status = blk_get_id(b, r, &written);
			break;
		default:
			status = VIRTIO_BLK_S_UNSUPP;
			break;
		}
	}
	virtq_req_write(r, r->in_len - 1, &status, 1);
	/* written < in_len, and in_len fits 32 bits (checked by virtq_pop). */
	return (uint32_t)(written + 1);
}

static void blk_queue_notify(void *dev, unsigned qi)
{
	struct virtio_blk *b = dev;
	struct virtq *q = b->t ? virtio_mmio_queue(b->t, qi) : NULL;
	int ret, completed = 0;

	if (!q)
		return;
	while ((ret = virtio_mmio_pop(b->t, q, &b->req)) != 0) {
		/* A rejected chain (-EINVAL) was already completed by virtq_pop. */
		if (ret > 0)
			virtq_push(q, b->req.head, blk_serve(b, &b->req));
		completed = 1;
	}
	if (completed)
		virtio_mmio_notify_used(b->t, qi);
}

const struct virtio_dev_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.queue_max_size = BLK_QUEUE_SIZE,
	.features = blk_features,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.free = blk_free,
};
