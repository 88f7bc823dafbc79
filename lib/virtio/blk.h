/* virtio-blk backed by a host file: read, write, flush, get-id; optionally read-only. */
#pragma once
#include "virtio_dev.h"

struct virtio_blk;

/* Opens path (O_RDWR, or O_RDONLY when read_only) with O_CLOEXEC. serial: up to 20 bytes returned
 * by GET_ID. -errno on failure (the message naming the file is the caller's job). */
int virtio_blk_open(const char *path, int read_only, const char *serial, struct virtio_blk **out);
extern const struct virtio_dev_ops virtio_blk_ops;
/* The image's fd, for snapshots (cloned while the device is paused). */
int virtio_blk_fd(const struct virtio_blk *b);
