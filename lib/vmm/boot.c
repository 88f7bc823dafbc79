#define _GNU_SOURCE
#include "boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Offsets into the zero page (struct boot_params) and its embedded setup header. */
#define BP_ACPI_RSDP 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_START 0x1f1
#define BP_SETUP_SECTS 0x1f1
#define BP_BOOT_FLAG 0x1fe
#define BP_HEADER_MAGIC 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_HEAP_END_PTR 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define STARTUP_64_OFFSET 0x200 /* startup_64 sits 0x200 past the protected-mode kernel's start */

#define E820_RAM 1
#define E820_RESERVED 2

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v)); /* x86-64 only: host and guest are both little-endian */
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

int bzimage_parse(const uint8_t *hdr, size_t len, struct bzimage_info *info, const char **why)
{
	unsigned sects;

	if (len < 1024) {
		*why = "file too short for a kernel";
		return -ENOEXEC;
	}
	if (get16(hdr + BP_BOOT_FLAG) != 0xaa55 || memcmp(hdr + BP_HEADER_MAGIC, "HdrS", 4) != 0) {
		*why = "not a bzImage (no boot-sector signature or HdrS magic)";
		return -ENOEXEC;
	}
	info->version = get16(hdr + BP_VERSION);
	if (info->version < 0x020c) {
		*why = "boot protocol older than 2.12 (no 64-bit entry)";
		return -ENOEXEC;
	}
	if (!(get16(hdr + BP_XLOADFLAGS) & XLF_KERNEL_64)) {
		*why = "kernel has no 64-bit entry point (XLF_KERNEL_64 unset)";
		return -ENOEXEC;
	}
	sects = hdr[BP_SETUP_SECTS] ? hdr[BP_SETUP_SECTS] : 4;
	info->setup_size = (sects + 1) * 512;
	info->header_end = 0x202 + hdr[0x201];
	if (info->header_end > len || info->header_end <= BP_HDR_START) {
		*why = "setup header length out of range";
		return -ENOEXEC;
	}
	memcpy(&info->pref_address, hdr + BP_PREF_ADDRESS, 8);
	info->init_size = get32(hdr + BP_INIT_SIZE);
	info->initrd_addr_max = get32(hdr + BP_INITRD_ADDR_MAX);
	info->cmdline_size = get32(hdr + BP_CMDLINE_SIZE);
	if (info->pref_address < BOOT_HIGH_START || info->pref_address > GUEST_MEM_LOW_LIMIT ||
	    info->init_size == 0) {
		*why = "preferred load address or init size out of range";
		return -ENOEXEC;
	}
	return 0;
}

/* Reads [off, off+len) of fd straight into guest memory at gpa. */
static int read_into_guest(struct guest_mem *m, int fd, off_t off, uint64_t gpa, uint64_t len)
{
	uint8_t *dst = guest_mem_ptr(m, gpa, len);

	if (!dst)
		return -E2BIG;
	while (len) {
		ssize_t n = pread(fd, dst, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		dst += n;
		off += n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Identity map of the first 4 GiB with 2 MiB pages: covers the kernel, zero page, command line
 * and initrd wherever they landed. */
static void boot_page_tables(struct guest_mem *m)
{
	uint8_t *pml4 = guest_mem_ptr(m, BOOT_PML4_ADDR, 4096);
	uint8_t *pdpt = guest_mem_ptr(m, BOOT_PDPT_ADDR, 4096);
	uint8_t *pd = guest_mem_ptr(m, BOOT_PD_ADDR, 4 * 4096);

	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	put64(pml4, BOOT_PDPT_ADDR | 0x3); /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		put64(pdpt + i * 8, (BOOT_PD_ADDR + i * 4096) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		put64(pd + i * 8, (i << 21) | 0x83); /* present, writable, 2 MiB page */
}

/* Flat 64-bit code, flat data, and a TSS descriptor (VM entry on Intel wants a usable TR). */
static void boot_gdt(struct guest_mem *m)
{
	static const uint64_t gdt[] = {
		0,
		0,
		0x00af9b000000ffffULL, /* 0x10: code, long mode */
		0x00cf93000000ffffULL, /* 0x18: data */
		0x00008b0000000fffULL, /* 0x20: busy 64-bit TSS at 0 (never used) */
	};
	memcpy(guest_mem_ptr(m, BOOT_GDT_ADDR, sizeof(gdt)), gdt, sizeof(gdt));
}

static void e820_add(uint8_t *zp, uint64_t start, uint64_t size, uint32_t type)
{
	uint8_t n = zp[BP_E820_ENTRIES];
	uint8_t *e = zp + BP_E820_TABLE + 20 * n;

	put64(e, start);
	put64(e + 8, size);
	put32(e + 16, type);
	zp[BP_E820_ENTRIES] = n + 1;
}

static void boot_e820(const struct guest_mem *m, uint8_t *zp)
{
	e820_add(zp, 0, BOOT_EBDA_START, E820_RAM);
	e820_add(zp, BOOT_BIOS_START, BOOT_HIGH_START - BOOT_BIOS_START, E820_RESERVED);
	e820_add(zp, BOOT_HIGH_START, m->regions[0].size - BOOT_HIGH_START, E820_RAM);
	if (m->nregions > 1)
		e820_add(zp, m->regions[1].gpa, m->regions[1].size, E820_RAM);
}

static int boot_initrd(struct guest_mem *m, const struct boot_config *c,
		       const struct bzimage_info *bz, uint8_t *zp, char *err, size_t errlen)
{
	uint64_t kernel_end = bz->pref_address + bz->init_size, top, addr;
	struct stat st;
	int fd, rc;

	fd = open(c->initrd_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "initramfs %s: %s", c->initrd_path, strerror(errno));
		goto out;
	}
	top = m->regions[0].size;
	if (top > (uint64_t)bz->initrd_addr_max + 1)
		top = (uint64_t)bz->initrd_addr_max + 1;
	addr = ((top - (uint64_t)st.st_size) & ~0xfffULL);
	if ((uint64_t)st.st_size > top || addr < kernel_end) {
		rc = -E2BIG;
		snprintf(err, errlen, "initramfs %s (%lld bytes) does not fit in guest memory",
			 c->initrd_path, (long long)st.st_size);
		goto out;
	}
	rc = read_into_guest(m, fd, 0, addr, (uint64_t)st.st_size);
	if (rc < 0) {
		snprintf(err, errlen, "initramfs %s: %s", c->initrd_path, strerror(-rc));
		goto out;
	}
	put32(zp + BP_RAMDISK_IMAGE, (uint32_t)addr);
	put32(zp + BP_RAMDISK_SIZE, (uint32_t)st.st_size);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int boot_load_linux(struct guest_mem *m, const struct boot_config *c, struct boot_entry *e,
		    char *err, size_t errlen)
{
	uint8_t hdr[1024 * 2];
	struct bzimage_info bz;
	const char *why;
	struct stat st;
	uint8_t *zp;
	size_t cmdlen = strlen(c->cmdline);
	ssize_t n;
	int fd, rc;

	fd = open(c->kernel_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "kernel %s: %s", c->kernel_path, strerror(errno));
		goto out;
	}
	n = pread(fd, hdr, sizeof(hdr), 0);
	rc = bzimage_parse(hdr, n > 0 ? (size_t)n : 0, &bz, &why);
	if (rc < 0) {
		snprintf(err, errlen, "kernel %s: %s", c->kernel_path, why);
		goto out;
	}
	if ((uint64_t)st.st_size <= bz.setup_size) {
		rc = -ENOEXEC;
		snprintf(err, errlen, "kernel %s: truncated after its setup code", c->kernel_path);
		goto out;
	}
	if (bz.pref_address + bz.init_size > m->regions[0].size) {
		rc = -E2BIG;
		snprintf(err, errlen, "kernel %s needs %llu MiB of guest memory to decompress",
			 c->kernel_path, (unsigned long long)((bz.pref_address + bz.init_size) >> 20) + 1);
		goto out;
	}
	if (cmdlen >= BOOT_CMDLINE_MAX || cmdlen > bz.cmdline_size) {
		rc = -EINVAL;
		snprintf(err, errlen, "kernel command line too long (%zu bytes, limit %u)", cmdlen,
			 bz.cmdline_size);
		goto out;
	}
	rc = read_into_guest(m, fd, bz.setup_size, bz.pref_address,
			     (uint64_t)st.st_size - bz.setup_size);
	if (rc < 0) {
		snprintf(err, errlen, "kernel %s: %s", c->kernel_path, strerror(-rc));
		goto out;
	}

	zp = guest_mem_ptr(m, BOOT_ZERO_PAGE_ADDR, 4096);
	memset(zp, 0, 4096);
	memcpy(zp + BP_HDR_START, hdr + BP_HDR_START, bz.header_end - BP_HDR_START);
	zp[BP_TYPE_OF_LOADER] = 0xff; /* undefined loader id */
	zp[BP_LOADFLAGS] |= LOADFLAG_LOADED_HIGH | LOADFLAG_CAN_USE_HEAP;
	put16(zp + BP_HEAP_END_PTR, 0xfe00);
	memcpy(guest_mem_ptr(m, BOOT_CMDLINE_ADDR, cmdlen + 1), c->cmdline, cmdlen + 1);
	put32(zp + BP_CMD_LINE_PTR, BOOT_CMDLINE_ADDR);
	put64(zp + BP_ACPI_RSDP, c->rsdp_addr);
	boot_e820(m, zp);
	if (c->initrd_path) {
		rc = boot_initrd(m, c, &bz, zp, err, errlen);
		if (rc < 0)
			goto out;
	}
	boot_page_tables(m);
	boot_gdt(m);
	*e = (struct boot_entry){
		.rip = bz.pref_address + STARTUP_64_OFFSET,
		.rsi = BOOT_ZERO_PAGE_ADDR,
		.rsp = BOOT_STACK_TOP,
	};
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
