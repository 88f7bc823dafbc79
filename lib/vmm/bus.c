#include "bus.h"

#include <errno.h>
#include <string.h>

int bus_register(struct bus *b, uint64_t base, uint64_t size, bus_access_fn fn, void *opaque)
{
	if (size == 0 || base + size < base)
		return -EINVAL;
	for (unsigned i = 0; i < b->nranges; i++) {
		const struct bus_range *r = &b->ranges[i];
		if (base < r->base + r->size && r->base < base + size)
			return -EEXIST;
	}
	if (b->nranges == BUS_MAX_RANGES)
		return -ENOSPC;
	b->ranges[b->nranges++] = (struct bus_range){ base, size, fn, opaque };
	return 0;
}

int bus_dispatch(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, int is_write)
{
	for (unsigned i = 0; i < b->nranges; i++) {
		const struct bus_range *r = &b->ranges[i];
		if (addr >= r->base && addr - r->base < r->size) {
			r->access(r->opaque, addr - r->base, data, len, is_write);
			return 0;
		}
	}
	if (!is_write)
		memset(data, 0xff, len);
	return -ENOENT;
}
