/* Loading a Linux bzImage for the 64-bit boot protocol (Documentation/x86/boot.rst): the
 * protected-mode kernel goes to its preferred address and decompresses itself; we enter
 * startup_64 in long mode with identity-mapped page tables and the zero page in %rsi. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "guest_mem.h"

/* Guest-physical layout of what we place below 1 MiB. */
#define BOOT_GDT_ADDR 0x500
#define BOOT_ZERO_PAGE_ADDR 0x7000
#define BOOT_STACK_TOP 0x8ff0
#define BOOT_PML4_ADDR 0x9000
#define BOOT_PDPT_ADDR 0xa000
#define BOOT_PD_ADDR 0xb000 /* four page directories: 2 MiB pages over the first 4 GiB */
#define BOOT_CMDLINE_ADDR 0x20000
#define BOOT_CMDLINE_MAX 4096
#define BOOT_EBDA_START 0x9fc00
#define BOOT_BIOS_START 0xe0000 /* reserved up to 1 MiB; ACPI tables live here */
#define BOOT_HIGH_START 0x100000

#define BOOT_SEL_CODE 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_TSS 0x20

/* What a bzImage's setup header says, after validation. */
struct bzimage_info {
	uint32_t setup_size;   /* bytes of real-mode setup (file offset of the kernel proper) */
	uint32_t header_end;   /* end offset of the setup header inside the first sector(s) */
	uint16_t version;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
};

/* Checks the setup header in the first `len` bytes of a file (at least 1024). 0 or -ENOEXEC
 * with *why naming the problem (static string). */
int bzimage_parse(const uint8_t *hdr, size_t len, struct bzimage_info *info, const char **why);

struct boot_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;
	uint64_t rsdp_addr;
};

/* Register state for the boot vCPU. */
struct boot_entry {
	uint64_t rip, rsi, rsp;
};

/* Loads kernel, initrd, command line, zero page (e820, RSDP), GDT and page tables into guest
 * memory. Errors: -ENOENT/-EACCES (file), -ENOEXEC (not a bzImage), -E2BIG (does not fit in
 * guest memory), -EINVAL (command line too long); err gets a message naming the file. */
int boot_load_linux(struct guest_mem *m, const struct boot_config *c, struct boot_entry *e,
		    char *err, size_t errlen);
