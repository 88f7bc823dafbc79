#define _GNU_SOURCE
#include "guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file_clone.h"

#define PAGE_SIZE 4096ULL
/* /proc/self/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE_OR_SHARED (1ULL << 61)
#define PM_BATCH 4096 /* pagemap entries read at once */

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
	m->kind = GUEST_MEM_MEMFD;
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

int guest_mem_map_file(struct guest_mem *m, const char *path, uint64_t size)
{
	struct stat st;
	int fd, err;
	void *p;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size) {
		close(fd);
		return -EINVAL;
	}
	/* Private and writable on a read-only fd: the guest's writes go to copies, never the file. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	guest_mem_layout(m, p, size);
	m->fd = fd;
	m->kind = GUEST_MEM_FILE;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE_SIZE / sizeof(*w); i++)
		if (w[i])
			return 0;
	return 1;
}

static int pwrite_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Writes the non-zero pages of [off, end) of the mapping to fd at the same offsets, in runs. */
static int save_range(const struct guest_mem *m, int fd, uint64_t off, uint64_t end,
		      uint64_t *written)
{
	uint64_t run = off;
	int rc;

	for (uint64_t p = off; p <= end; p += PAGE_SIZE) {
		if (p < end && !page_is_zero(m->base + p))
			continue;
		if (p > run) {
			rc = pwrite_all(fd, m->base + run, p - run, run);
			if (rc < 0)
				return rc;
			*written += p - run;
		}
		run = p + PAGE_SIZE;
	}
	return 0;
}

/* Fresh RAM: only the memfd's data ranges (pages the guest ever touched) can hold anything. */
static int save_memfd(const struct guest_mem *m, int fd, uint64_t *written)
{
	uint64_t off = 0;
	int rc;

	while (off < m->total) {
		off_t data = lseek(m->fd, (off_t)off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return -errno;
		hole = lseek(m->fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > m->total)
			hole = (off_t)m->total;
		rc = save_range(m, fd, (uint64_t)data & ~(PAGE_SIZE - 1), (uint64_t)hole, written);
		if (rc < 0)
			return rc;
		off = (uint64_t)hole;
	}
	return 0;
}

/* A private page the guest wrote differs from the base file: its bytes, or a hole if zero. */
static int save_dirty_page(const struct guest_mem *m, int fd, uint64_t off, uint64_t *written)
{
	if (!page_is_zero(m->base + off)) {
		*written += PAGE_SIZE;
		return pwrite_all(fd, m->base + off, PAGE_SIZE, off);
	}
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)PAGE_SIZE) == 0)
		return 0;
	return pwrite_all(fd, (const uint8_t[PAGE_SIZE]){ 0 }, PAGE_SIZE, off);
}

/* Restored RAM: the new file starts as a clone of the base file; pagemap tells which pages are
 * private copies (present or swapped, and not the file's page), which are then written. */
static int save_file(const struct guest_mem *m, int fd, int pmfd, uint64_t *written)
{
	uint64_t *pm = malloc(PM_BATCH * sizeof(*pm)), npages = m->total / PAGE_SIZE;
	int how, why, rc;

	if (!pm)
		return -ENOMEM;
	if (pmfd < 0) {
		free(pm);
		return -EBADF;
	}
	rc = file_clone_fd(m->fd, fd, &how, &why);
	if (rc == 0 && ftruncate(fd, (off_t)m->total) < 0)
		rc = -errno;
	for (uint64_t first = 0; rc == 0 && first < npages; first += PM_BATCH) {
		uint64_t n = npages - first < PM_BATCH ? npages - first : PM_BATCH;
		uint64_t at = ((uintptr_t)m->base / PAGE_SIZE + first) * sizeof(*pm);
		ssize_t got = pread(pmfd, pm, n * sizeof(*pm), (off_t)at);

		if (got != (ssize_t)(n * sizeof(*pm))) {
			rc = got < 0 ? -errno : -EIO;
			break;
		}
		for (uint64_t i = 0; rc == 0 && i < n; i++)
			if ((pm[i] & (PM_PRESENT | PM_SWAPPED)) && !(pm[i] & PM_FILE_OR_SHARED))
				rc = save_dirty_page(m, fd, (first + i) * PAGE_SIZE, written);
	}
	free(pm);
	return rc;
}

int guest_mem_save(const struct guest_mem *m, int fd, int pagemap_fd, uint64_t *written)
{
	int rc;

	*written = 0;
	if (m->kind == GUEST_MEM_BUFFER)
		return -EINVAL;
	if (m->kind == GUEST_MEM_MEMFD) {
		rc = ftruncate(fd, (off_t)m->total) < 0 ? -errno : 0;
		if (rc == 0)
			rc = save_memfd(m, fd, written);
	} else {
		rc = save_file(m, fd, pagemap_fd, written);
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	return rc;
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
