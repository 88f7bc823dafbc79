/* Address-range dispatch for trapped MMIO and port I/O accesses from vCPU threads. */
#pragma once
#include <pthread.h>
#include <stdint.h>

/* Access of `len` (1, 2, 4 or 8) bytes at `offset` inside the device's range. For a read the
 * handler fills data[0..len); for a write it consumes it. Called from vCPU threads. */
typedef void (*bus_access_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      int is_write);

struct bus_range {
	uint64_t base;
	uint64_t size;
	bus_access_fn access;
	void *opaque;
};

#define BUS_MAX_RANGES 32

struct bus {
	struct bus_range ranges[BUS_MAX_RANGES];
	unsigned nranges;
};

/* -EEXIST on overlap, -ENOSPC when full. Register everything before vCPUs start. */
int bus_register(struct bus *b, uint64_t base, uint64_t size, bus_access_fn fn, void *opaque);
/* Dispatches one access; returns 0 if a device claimed it. Unclaimed reads yield all ones. */
int bus_dispatch(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, int is_write);
