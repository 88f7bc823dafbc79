#define _GNU_SOURCE
#include "guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* RAM below the MMIO hole, then the rest from 4 GiB up; one host mapping covers both so the
 * regions' host pointers are contiguous and snapshots can later map one file. */
static void guest_mem_layout(struct guest_mem *m, uint8_t *base, uint64_t size)
{
	uint64_t low = size < GUEST_MEM_LOW_LIMIT ? size : GUEST_MEM_LOW_LIMIT;

	m->base = base;
	m->total = size;
	m->regions[0] = (struct guest_mem_region){ .gpa = 0, .size = low, .host = base };
	m->nregions = 1;
	if (size > low) {
		m->regions[1] = (struct guest_mem_region){
			.gpa = GUEST_MEM_HIGH_START, .size = size - low, .host = base + low
		};
		m->nregions = 2;
	}
}

int guest_mem_create(struct guest_mem *m, uint64_t size)
{
	int fd, err;
	void *p;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	fd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	madvise(p, size, MADV_MERGEABLE); /* best effort: KSM may share identical guest pages */
	guest_mem_layout(m, p, size);
	m->fd = fd;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

void guest_mem_init_buffer(struct guest_mem *m, void *buf, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->base = buf;
	m->total = size;
	m->regions[0] = (struct guest_mem_region){ .gpa = 0, .size = size, .host = buf };
	m->nregions = 1;
}

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->fd >= 0) {
		munmap(m->base, m->total);
		close(m->fd);
	}
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_mem_region *r = &m->regions[i];
		uint64_t off;

		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		off = gpa - r->gpa;
		if (len > r->size - off)
			return NULL;
		return r->host + off;
	}
	return NULL;
}
