/* bzImage header checks against hostile headers, and a real load of Debian's kernel into a
 * buffer-backed guest memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"
#include "vmm/boot.h"

static void valid_header(uint8_t *h)
{
	uint64_t pref = 0x1000000;
	uint32_t init_size = 0x3000000, cmdline_size = 2047;

	memset(h, 0, 2048);
	h[0x1fe] = 0x55;
	h[0x1ff] = 0xaa;
	memcpy(h + 0x202, "HdrS", 4);
	h[0x201] = 0x6a; /* header ends at 0x26c */
	h[0x206] = 0x0f;
	h[0x207] = 0x02; /* protocol 2.15 */
	h[0x1f1] = 27;
	h[0x236] = 0x7f;
	memcpy(h + 0x258, &pref, 8);
	memcpy(h + 0x260, &init_size, 4);
	memcpy(h + 0x238, &cmdline_size, 4);
}

static void test_headers(void)
{
	uint8_t h[2048];
	struct bzimage_info bz;
	const char *why = NULL;
	uint64_t bad_pref = 0xfffffffffffff000ULL;

	valid_header(h);
	CHECK_EQ(bzimage_parse(h, sizeof(h), &bz, &why), 0);
	CHECK_EQ(bz.setup_size, 28 * 512);
	CHECK_EQ(bz.pref_address, 0x1000000);

	CHECK_EQ(bzimage_parse(h, 512, &bz, &why), -ENOEXEC); /* truncated */
	valid_header(h);
	memcpy(h + 0x202, "HdrX", 4);
	CHECK_EQ(bzimage_parse(h, sizeof(h), &bz, &why), -ENOEXEC);
	CHECK(why && strstr(why, "bzImage"));
	valid_header(h);
	h[0x236] = 0; /* no 64-bit entry */
	CHECK_EQ(bzimage_parse(h, sizeof(h), &bz, &why), -ENOEXEC);
	valid_header(h);
	h[0x207] = 0x01; /* protocol 1.x */
	CHECK_EQ(bzimage_parse(h, sizeof(h), &bz, &why), -ENOEXEC);
	valid_header(h);
	memcpy(h + 0x258, &bad_pref, 8);
	CHECK_EQ(bzimage_parse(h, sizeof(h), &bz, &why), -ENOEXEC);
	valid_header(h);
	memset(h + 0x260, 0, 4); /* init_size 0 */
	CHECK_EQ(bzimage_parse(h, sizeof(h), &bz, &why), -ENOEXEC);
}

/* Loads the installed guest kernel; a missing kernel is a failure (setup installs it). */
static void test_real_kernel(void)
{
	uint64_t size = 256ull << 20;
	void *buf = calloc(1, size);
	struct guest_mem m;
	struct boot_entry e;
	struct boot_config c = { NULL, NULL, "console=ttyS0", 0xe0000 };
	char err[256] = "";
	glob_t g;
	uint8_t *zp;

	CHECK(glob("/boot/vmlinuz-*-cloud-amd64", 0, NULL, &g) == 0 && g.gl_pathc > 0);
	if (g.gl_pathc == 0) {
		fprintf(stderr, "no /boot/vmlinuz-*-cloud-amd64: install linux-image-cloud-amd64\n");
		free(buf);
		return;
	}
	c.kernel_path = g.gl_pathv[0];
	guest_mem_init_buffer(&m, buf, size);
	CHECK_EQ(boot_load_linux(&m, &c, &e, err, sizeof(err)), 0);
	CHECK_EQ(e.rip, 0x1000200);
	CHECK_EQ(e.rsi, BOOT_ZERO_PAGE_ADDR);
	zp = guest_mem_ptr(&m, BOOT_ZERO_PAGE_ADDR, 4096);
	CHECK(memcmp(zp + 0x202, "HdrS", 4) == 0);
	CHECK_EQ(zp[0x1e8], 3); /* e820: low RAM, BIOS hole, high RAM */
	CHECK(strcmp((char *)guest_mem_ptr(&m, BOOT_CMDLINE_ADDR, 14), "console=ttyS0") == 0);

	/* Too little memory to decompress: a clear error. */
	guest_mem_init_buffer(&m, buf, 32ull << 20);
	CHECK_EQ(boot_load_linux(&m, &c, &e, err, sizeof(err)), -E2BIG);
	CHECK(strstr(err, "MiB") != NULL);
	/* Not a kernel. */
	c.kernel_path = "/etc/hostname";
	CHECK_EQ(boot_load_linux(&m, &c, &e, err, sizeof(err)), -ENOEXEC);
	c.kernel_path = "/nonexistent";
	CHECK_EQ(boot_load_linux(&m, &c, &e, err, sizeof(err)), -ENOENT);
	globfree(&g);
	free(buf);
}

int main(void)
{
	test_headers();
	test_real_kernel();
	return TEST_SUMMARY();
}
