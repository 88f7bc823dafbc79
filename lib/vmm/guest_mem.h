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

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nregions;
	uint64_t total;  /* bytes of RAM over all regions */
	uint8_t *base;   /* start of the host mapping (one mapping backs all regions) */
	int fd;          /* memfd behind the mapping, -1 when the memory is a plain buffer */
};

/* Below 4 GiB, RAM stops here; the hole above holds MMIO devices, IOAPIC and LAPIC. */
#define GUEST_MEM_LOW_LIMIT 0xC0000000ULL
#define GUEST_MEM_HIGH_START 0x100000000ULL

/* Creates memfd-backed guest RAM of `size` bytes laid out around the MMIO hole. -errno on failure. */
int guest_mem_create(struct guest_mem *m, uint64_t size);
/* Wraps a caller-owned buffer as one region at gpa 0 (unit tests). */
void guest_mem_init_buffer(struct guest_mem *m, void *buf, uint64_t size);
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) when the whole range lies inside one RAM region, else NULL.
 * len 0 is valid only for an address inside a region. Overflow-safe for any guest value. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
