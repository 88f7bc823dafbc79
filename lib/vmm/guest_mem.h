/* Guest physical memory: the one place that turns guest addresses into host pointers. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

enum guest_mem_kind {
	GUEST_MEM_BUFFER, /* a caller's buffer (unit tests) */
	GUEST_MEM_MEMFD,  /* fresh RAM: a memfd mapped shared */
	GUEST_MEM_FILE,   /* restored RAM: a snapshot's memory file mapped private */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nregions;
	uint64_t total;  /* bytes of RAM over all regions */
	uint8_t *base;   /* start of the host mapping (one mapping backs all regions) */
	int fd;          /* the memfd or memory file behind the mapping, -1 for a buffer */
	enum guest_mem_kind kind;
};

/* Below 4 GiB, RAM stops here; the hole above holds MMIO devices, IOAPIC and LAPIC. */
#define GUEST_MEM_LOW_LIMIT 0xC0000000ULL
#define GUEST_MEM_HIGH_START 0x100000000ULL

/* Creates memfd-backed guest RAM of `size` bytes laid out around the MMIO hole. -errno on failure. */
int guest_mem_create(struct guest_mem *m, uint64_t size);
/* Guest RAM of `size` bytes from a snapshot's memory file, mapped MAP_PRIVATE: nothing is read
 * up front, pages come from the file as the guest touches them and a write copies the page, so
 * the file is never changed and many VMs can map it at once. -EINVAL when the file is shorter
 * than size (a touch past its end would be SIGBUS), else -errno. */
int guest_mem_map_file(struct guest_mem *m, const char *path, uint64_t size);
/* Writes guest RAM into the empty file fd, laid out as the host mapping (the file's offset of a
 * byte = its offset from m->base), page-aligned and sparse: zero pages become holes. RAM from a
 * memory file is cloned from it (reflink where possible) and then only the pages the guest
 * wrote are written, as pagemap_fd (/proc/self/pagemap, opened beforehand; unused for memfd RAM)
 * tells. The memory must not change meanwhile (vCPUs and devices paused). *written gets the
 * bytes of data written. -errno. */
int guest_mem_save(const struct guest_mem *m, int fd, int pagemap_fd, uint64_t *written);
/* Wraps a caller-owned buffer as one region at gpa 0 (unit tests). */
void guest_mem_init_buffer(struct guest_mem *m, void *buf, uint64_t size);
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) when the whole range lies inside one RAM region, else NULL.
 * len 0 is valid only for an address inside a region. Overflow-safe for any guest value. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
