/* ACPI tables and the AML writer: layout, checksums and pointers of every table, the DSDT's
 * content, PkgLength encoding at its size boundaries, bad configs, and a cross-check of the
 * tables with ACPICA's disassembler (iasl -d), which must be installed (Debian: acpica-tools). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/power.h"
#include "testing.h"
#include "vmm/acpi.h"
#include "vmm/aml.h"
#include "vmm/guest_mem.h"

#define MEM_SIZE (1u << 20)

extern char **environ;

static uint8_t *mem;
static struct guest_mem gm;

static const struct acpi_mmio_dev devs[3] = {
    {0xd0000000, 0x1000, 16},
    {0xd0001000, 0x1000, 17},
    {0xd0002000, 0x1000, 18},
};

static struct acpi_config base_config(void)
{
	return (struct acpi_config){
	    .ncpus = 2,
	    .devs = devs,
	    .ndevs = 3,
	    .sleep_ctl_port = POWER_SLEEP_CTL_PORT,
	    .sleep_sts_port = POWER_SLEEP_STS_PORT,
	    .reset_port = POWER_RESET_PORT,
	    .reset_value = POWER_RESET_VALUE,
	};
}

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static size_t count(const uint8_t *p, size_t len, const void *needle, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i + n <= len; i++)
		c += memcmp(p + i, needle, n) == 0;
	return c;
}

/* The table at gpa, checked for place, signature, length and checksum; NULL if any is wrong. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	CHECK(gpa >= ACPI_RSDP_ADDR && gpa + 36 <= ACPI_AREA_END);
	if (gpa < ACPI_RSDP_ADDR || gpa + 36 > ACPI_AREA_END)
		return NULL;
	t = mem + gpa;
	len = (uint32_t)rd(t + 4, 4);
	CHECK(memcmp(t, sig, 4) == 0);
	CHECK(len >= 36 && gpa + len <= ACPI_AREA_END);
	if (memcmp(t, sig, 4) != 0 || len < 36 || gpa + len > ACPI_AREA_END)
		return NULL;
	CHECK_EQ(sum(t, len), 0);
	CHECK(memcmp(t + 10, "SBXVMM", 6) == 0);
	return t;
}

static uint32_t tlen(const uint8_t *t)
{
	return (uint32_t)rd(t + 4, 4);
}

static int pkglen_decode(const uint8_t *p, uint32_t *v)
{
	int n = (p[0] >> 6) + 1;

	if (n == 1) {
		*v = p[0] & 0x3F;
		return 1;
	}
	if (p[0] & 0x30)
		return -1; /* bits 5-4 are reserved in a multi-byte PkgLength */
	*v = p[0] & 0x0F;
	for (int i = 1; i < n; i++)
		*v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	return n;
}

static void test_pkglen(void)
{
	static const struct {
		uint32_t value;
		int bytes;
	} cases[] = {
	    {0, 1},    {63, 1},	     {64, 2},	   {4095, 2},
	    {4096, 3}, {1048575, 3}, {1048576, 4}, {AML_PKGLEN_MAX, 4},
	};
	uint8_t enc[4];
	uint32_t v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = aml_pkglen_encode(cases[i].value, enc);

		CHECK_EQ(n, cases[i].bytes);
		CHECK_EQ(pkglen_decode(enc, &v), cases[i].bytes);
		CHECK_EQ(v, cases[i].value);
	}
	CHECK_EQ(aml_pkglen_encode(AML_PKGLEN_MAX + 1, enc), -E2BIG);
}

/* A PkgLength counts itself: a 62-byte body still fits a 1-byte length (63), a 63-byte body
 * needs 2 bytes (65), and likewise at the 2/3 and 3/4-byte edges. */
static void test_pkg_end(void)
{
	static const struct {
		size_t body;
		int bytes;
	} cases[] = {
	    {62, 1}, {63, 2}, {4093, 2}, {4094, 3}, {1048572, 3}, {1048573, 4},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aml a;
		uint32_t v = 0;
		size_t mark;
		uint8_t *body = calloc(1, cases[i].body);

		CHECK(body != NULL);
		if (!body)
			return;
		aml_init(&a);
		aml_byte(&a, 0x10);
		mark = a.len;
		aml_append(&a, body, cases[i].body);
		aml_pkg_end(&a, mark);
		CHECK_EQ(a.err, 0);
		if (a.err == 0) {
			CHECK_EQ(pkglen_decode(a.buf + 1, &v), cases[i].bytes);
			CHECK_EQ(v, cases[i].body + (size_t)cases[i].bytes);
			CHECK_EQ(a.len, 1 + v);
		}
		aml_free(&a);
		free(body);
	}
}

static void test_aml_encodings(void)
{
	/* clang-format off */
	static const uint8_t want[] = {
		0x00, 0x01, 0x0A, 0x02, 0x0A, 0xFF, 0x0B, 0x00, 0x01, 0x0C, 0x00, 0x00, 0x01, 0x00,
		0x0E, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,               /* integers */
		0x0C, 0x41, 0xD0, 0x05, 0x01,                                        /* PNP0501 */
		'\\', '_', 'S', 'B', '_', 0x2E, '_', 'S', 'B', '_', 'C', 'O', 'M', '1', /* names */
		0x2F, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_',
		0x0D, 'h', 'i', 0x00,
	};
	/* clang-format on */
	struct aml a;

	aml_init(&a);
	aml_int(&a, 0);
	aml_int(&a, 1);
	aml_int(&a, 2);
	aml_int(&a, 0xFF);
	aml_int(&a, 0x100);
	aml_int(&a, 0x10000);
	aml_int(&a, 0x100000000ULL);
	aml_eisaid(&a, "PNP0501");
	aml_name_string(&a, "\\_SB");
	aml_name_string(&a, "_SB.COM1");
	aml_name_string(&a, "A.B.C");
	aml_string(&a, "hi");
	CHECK_EQ(a.err, 0);
	CHECK_EQ(a.len, sizeof(want));
	CHECK(a.len == sizeof(want) && memcmp(a.buf, want, sizeof(want)) == 0);
	aml_free(&a);

	/* Malformed input sets a sticky -EINVAL. */
	static const char *const bad_names[] = {"", "1ABC", "ABCDE", "A..B", "a", "A."};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		aml_init(&a);
		aml_name_string(&a, bad_names[i]);
		if (bad_names[i][0] == '\0')
			CHECK_EQ(a.err, 0); /* the null name is valid */
		else
			CHECK_EQ(a.err, -EINVAL);
		aml_free(&a);
	}
	aml_init(&a);
	aml_eisaid(&a, "pnp0501");
	CHECK_EQ(a.err, -EINVAL);
	aml_int(&a, 5);
	CHECK_EQ(a.len, 0);
	aml_free(&a);
	aml_init(&a);
	aml_string(&a, "\xC3\xA9");
	CHECK_EQ(a.err, -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_pkg_end(&a, 5); /* a mark past the end must not move memory */
	CHECK_EQ(a.err, -EINVAL);
	aml_free(&a);
}

static void test_tables(void)
{
	struct acpi_config c = base_config();
	const uint8_t *rsdp = mem + ACPI_RSDP_ADDR, *xsdt, *fadt, *madt, *dsdt;
	static const uint8_t pnp0501[] = {0x0C, 0x41, 0xD0, 0x05, 0x01};
	unsigned lapics = 0, ioapics = 0, nmis = 0;

	memset(mem, 0xAA, MEM_SIZE); /* stale bytes must not survive in the area */
	CHECK_EQ(acpi_build(&gm, &c), 0);

	CHECK(memcmp(rsdp, "RSD PTR ", 8) == 0);
	CHECK_EQ(sum(rsdp, 20), 0);
	CHECK_EQ(sum(rsdp, 36), 0);
	CHECK_EQ(rsdp[15], 2);
	CHECK_EQ(rd(rsdp + 20, 4), 36);
	CHECK(memcmp(rsdp + 9, "SBXVMM", 6) == 0);

	xsdt = table(rd(rsdp + 24, 8), "XSDT");
	if (!xsdt)
		return;
	CHECK_EQ(tlen(xsdt), 36 + 2 * 8);
	fadt = table(rd(xsdt + 36, 8), "FACP");
	madt = table(rd(xsdt + 44, 8), "APIC");
	if (!fadt || !madt)
		return;

	/* FADT: revision 6, hardware-reduced, reset register, no fixed buttons. */
	CHECK_EQ(tlen(fadt), 276);
	CHECK_EQ(fadt[8], 6);
	CHECK_EQ(rd(fadt + 112, 4) & (1u << 20), 1u << 20);
	CHECK_EQ(rd(fadt + 112, 4) & (1u << 10), 1u << 10);
	CHECK_EQ(rd(fadt + 112, 4) & 0x30, 0x30);
	CHECK_EQ(rd(fadt + 109, 2) & (1u << 2), 1u << 2);
	CHECK_EQ(rd(fadt + 40, 4), rd(fadt + 140, 8));
	/* RESET_REG, SLEEP_CONTROL_REG, SLEEP_STATUS_REG: byte-wide System I/O registers. */
	static const struct {
		unsigned off;
		uint16_t port;
	} gas[] = {
	    {116, POWER_RESET_PORT}, {244, POWER_SLEEP_CTL_PORT}, {256, POWER_SLEEP_STS_PORT}};
	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ(fadt[gas[i].off], 1);
		CHECK_EQ(fadt[gas[i].off + 1], 8);
		CHECK_EQ(fadt[gas[i].off + 3], 1);
		CHECK_EQ(rd(fadt + gas[i].off + 4, 8), gas[i].port);
	}
	CHECK_EQ(fadt[128], POWER_RESET_VALUE);

	/* MADT: two enabled LAPICs 0 and 1, IOAPIC 2 at its address, one NMI entry. */
	CHECK_EQ(rd(madt + 36, 4), 0xFEE00000u);
	CHECK_EQ(rd(madt + 40, 4), 0);
	for (uint32_t off = 44; off < tlen(madt);) {
		const uint8_t *e = madt + off;

		CHECK(e[1] >= 2 && off + e[1] <= tlen(madt));
		if (e[1] < 2 || off + e[1] > tlen(madt))
			break;
		if (e[0] == 0) {
			CHECK_EQ(e[1], 8);
			CHECK_EQ(e[3], lapics);
			CHECK_EQ(rd(e + 4, 4) & 1, 1);
			lapics++;
		} else if (e[0] == 1) {
			CHECK_EQ(e[1], 12);
			CHECK_EQ(e[2], 2);
			CHECK_EQ(rd(e + 4, 4), 0xFEC00000u);
			CHECK_EQ(rd(e + 8, 4), 0);
			ioapics++;
		} else if (e[0] == 4) {
			CHECK_EQ(e[2], 0xFF);
			CHECK_EQ(e[5], 1);
			nmis++;
		}
		off += e[1];
	}
	CHECK_EQ(lapics, 2);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(nmis, 1);

	dsdt = table(rd(fadt + 140, 8), "DSDT");
	if (!dsdt)
		return;
	CHECK_EQ(dsdt[8], 2);
	CHECK_EQ(count(dsdt, tlen(dsdt), "LNRO0005", 8), 3);
	CHECK_EQ(count(dsdt, tlen(dsdt), "_S5_", 4), 1);
	CHECK_EQ(count(dsdt, tlen(dsdt), pnp0501, sizeof(pnp0501)), 1);
	/* Name(_S5_, Package(4) {5, 5, 0, 0}), then Scope(\_SB_) running to the table's end. */
	static const uint8_t s5[] = {
	    0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,
	};
	CHECK(memcmp(dsdt + 36, s5, sizeof(s5)) == 0);
	const uint8_t *scope = dsdt + 36 + sizeof(s5);
	uint32_t v = 0;
	int n;
	CHECK_EQ(scope[0], 0x10);
	n = pkglen_decode(scope + 1, &v);
	CHECK(n > 0);
	CHECK_EQ(36 + sizeof(s5) + 1 + v, tlen(dsdt));
	CHECK(memcmp(scope + 1 + n, "\\_SB_", 5) == 0);

	/* Every table sits inside the area, after the RSDP, without overlapping another. */
	const uint8_t *all[] = {dsdt, fadt, madt, xsdt};
	for (size_t i = 0; i < 4; i++) {
		CHECK(all[i] >= rsdp + 36);
		for (size_t j = 0; j < 4; j++)
			if (i != j)
				CHECK(all[i] + tlen(all[i]) <= all[j] ||
				      all[j] + tlen(all[j]) <= all[i]);
	}
}

static void test_bad_configs(void)
{
	struct acpi_config c = base_config();
	struct acpi_mmio_dev bad = devs[0], *many;
	struct guest_mem small;

	c.ncpus = 0;
	CHECK_EQ(acpi_build(&gm, &c), -EINVAL);
	c.ncpus = ACPI_MAX_CPUS + 1;
	CHECK_EQ(acpi_build(&gm, &c), -EINVAL);
	c = base_config();
	c.sleep_ctl_port = 0;
	CHECK_EQ(acpi_build(&gm, &c), -EINVAL);
	c = base_config();
	c.devs = &bad;
	c.ndevs = 1;
	bad.gsi = ACPI_IOAPIC_PINS;
	CHECK_EQ(acpi_build(&gm, &c), -EINVAL);
	bad = devs[0];
	bad.base = 0xFFFFF000;
	bad.size = 0x2000; /* crosses 4 GiB: Memory32Fixed cannot say that */
	CHECK_EQ(acpi_build(&gm, &c), -EINVAL);
	bad.size = 0;
	CHECK_EQ(acpi_build(&gm, &c), -EINVAL);

	/* Guest RAM that stops short of the area. */
	guest_mem_init_buffer(&small, mem, ACPI_AREA_END - 1);
	c = base_config();
	CHECK_EQ(acpi_build(&small, &c), -EINVAL);

	/* Too many devices: beyond what the DSDT can name, and beyond what 128 KiB holds. */
	many = calloc(10000, sizeof(*many));
	CHECK(many != NULL);
	if (!many)
		return;
	for (unsigned i = 0; i < 10000; i++)
		many[i] = (struct acpi_mmio_dev){0xd0000000 + i * 0x1000ULL, 0x1000, 16 + i % 8};
	c.devs = many;
	c.ndevs = 10000;
	CHECK_EQ(acpi_build(&gm, &c), -ENOSPC);
	c.ndevs = 3000;
	CHECK_EQ(acpi_build(&gm, &c), -ENOSPC);
	/* The largest ncpus still fits. */
	c = base_config();
	c.ncpus = ACPI_MAX_CPUS;
	CHECK_EQ(acpi_build(&gm, &c), 0);
	free(many);
}

/* Runs argv with stdout and stderr to log; returns the exit status, or -errno if it could not
 * start (ENOENT: not installed). */
static int run(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc, status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = n >= 0 ? calloc(1, (size_t)n + 1) : NULL;
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static size_t count_str(const char *hay, const char *needle)
{
	size_t c = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		c++;
	return c;
}

/* Disassembles one table with iasl; returns the .dsl text (caller frees) or NULL. */
static char *iasl_disassemble(const char *dir, const char *name, uint64_t gpa)
{
	char bin[512], dsl[512], log[512];
	char *argv[] = {"iasl", "-d", bin, NULL};
	char *out;
	FILE *f;
	int rc;

	snprintf(bin, sizeof(bin), "%s/%s.dat", dir, name);
	snprintf(dsl, sizeof(dsl), "%s/%s.dsl", dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", dir, name);
	f = fopen(bin, "w");
	CHECK(f != NULL);
	if (!f)
		return NULL;
	CHECK_EQ(fwrite(mem + gpa, 1, tlen(mem + gpa), f), tlen(mem + gpa));
	fclose(f);
	rc = run(argv, log);
	if (rc != 0)
		fprintf(stderr, "iasl -d %s gave %d; its output is in %s\n", bin, rc, log);
	CHECK_EQ(rc, 0);
	out = rc == 0 ? slurp(dsl) : NULL;
	CHECK(rc != 0 || out != NULL);
	unlink(bin);
	unlink(dsl);
	if (out)
		unlink(log);
	return out;
}

static void test_iasl(void)
{
	struct acpi_config c = base_config();
	char dir[] = "/tmp/test_acpi.XXXXXX", log[64];
	char *version[] = {"iasl", "-v", NULL};
	const uint8_t *rsdp = mem + ACPI_RSDP_ADDR;
	uint64_t xsdt, fadt, madt, dsdt;
	char *out;
	int rc;

	CHECK_EQ(acpi_build(&gm, &c), 0);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(log, sizeof(log), "%s/version.log", dir);
	rc = run(version, log);
	unlink(log);
	if (rc == -ENOENT) {
		fprintf(stderr, "FAIL: iasl not found; install acpica-tools (Debian) so the ACPI "
				"tables are cross-checked with ACPICA's disassembler\n");
		CHECK(rc != -ENOENT);
		rmdir(dir);
		return;
	}
	xsdt = rd(rsdp + 24, 8);
	fadt = rd(mem + xsdt + 36, 8);
	madt = rd(mem + xsdt + 44, 8);
	dsdt = rd(mem + fadt + 140, 8);

	out = iasl_disassemble(dir, "dsdt", dsdt);
	if (out) {
		/* ACPICA decoded every resource descriptor, not just raw buffers. */
		CHECK_EQ(count_str(out, "\"LNRO0005\""), 3);
		CHECK_EQ(count_str(out, "EisaId (\"PNP0501\")"), 1);
		CHECK_EQ(count_str(out, "ResourceTemplate ()"), 4);
		CHECK_EQ(count_str(out, "Memory32Fixed (ReadWrite,"), 3);
		CHECK_EQ(count_str(out, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive"),
			 4);
		CHECK_EQ(count_str(out, "IO (Decode16,"), 1);
		CHECK_EQ(count_str(out, "Name (_S5, Package"), 1);
		CHECK(strstr(out, "0xD0002000") != NULL);
		CHECK(strstr(out, "Incorrect checksum") == NULL);
		free(out);
	}
	static const char *const data_tables[] = {"facp", "apic", "xsdt"};
	const uint64_t addrs[] = {fadt, madt, xsdt};
	for (size_t i = 0; i < 3; i++) {
		out = iasl_disassemble(dir, data_tables[i], addrs[i]);
		if (!out)
			continue;
		CHECK(strstr(out, "Incorrect") == NULL);
		CHECK(strstr(out, "Invalid") == NULL);
		CHECK(strstr(out, "**** Unknown") == NULL);
		if (i == 0)
			CHECK(strstr(out, "Hardware Reduced (V5) : 1") != NULL);
		if (i == 1)
			CHECK_EQ(count_str(out, "Processor Enabled : 1"), 2);
		free(out);
	}
	rmdir(dir);
}

int main(void)
{
	mem = calloc(1, MEM_SIZE);
	if (!mem)
		return 1;
	guest_mem_init_buffer(&gm, mem, MEM_SIZE);
	test_pkglen();
	test_pkg_end();
	test_aml_encodings();
	test_tables();
	test_bad_configs();
	test_iasl();
	free(mem);
	return TEST_SUMMARY();
}
