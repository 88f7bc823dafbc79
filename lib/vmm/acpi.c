/* Table layouts follow ACPI 6.5 chapter 5.2. Fixed-layout tables are packed structs filled field
 * by field with explicit little-endian conversion and copied out whole; variable parts (MADT
 * entries, XSDT pointers, the DSDT's AML) are appended byte-wise by the AML writer's buffer. */
#include "acpi.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "aml.h"
#include "guest_mem.h"

#define ACPI_OEM_ID "SBXVMM"
#define ACPI_CREATOR_ID "SBXV"
#define ACPI_TABLE_ALIGN 16

/* The PC's COM1, which the VMM's 8250 emulates. */
#define ACPI_COM1_PORT 0x3F8
#define ACPI_COM1_PORTS 8
#define ACPI_COM1_GSI 4

/* Device names "V000".."VFFF" bound how many virtio-mmio devices the DSDT can name. */
#define ACPI_MAX_MMIO_DEVS 4096

#define FADT_REVISION 6
#define FADT_MINOR_REVISION 5
#define FADT_F_PWR_BUTTON (1u << 4) /* set: no fixed-feature power button */
#define FADT_F_SLP_BUTTON (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
/* IA-PC boot architecture flags. LEGACY_DEVICES and 8042 stay clear: there is no keyboard
 * controller, so Linux skips probing the i8042 ports, and COM1 is described in the DSDT rather
 * than assumed. No VGA to probe, and no CMOS RTC (wall time comes from kvmclock), so Linux does
 * not register rtc_cmos and touch ports 0x70/0x71 for nothing. */
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

#define MADT_REVISION 5
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_LAPIC_NMI 4
#define MADT_LAPIC_ENABLED 1
#define MADT_ALL_PROCESSORS 0xFF

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header layout");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP layout");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT layout");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT layout");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT layout");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT layout");

/* Where the next table goes; tables are only ever appended. */
struct acpi_area {
	struct guest_mem *m;
	uint64_t next;
};

static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

static uint64_t acpi_align(uint64_t v)
{
	return (v + ACPI_TABLE_ALIGN - 1) & ~(uint64_t)(ACPI_TABLE_ALIGN - 1);
}

static int acpi_place(struct acpi_area *ar, const uint8_t *p, size_t len, uint64_t *gpa)
{
	uint8_t *host;

	if (ar->next > ACPI_AREA_END || len > ACPI_AREA_END - ar->next)
		return -ENOSPC;
	host = guest_mem_ptr(ar->m, ar->next, len);
	if (!host)
		return -EINVAL;
	memcpy(host, p, len);
	*gpa = ar->next;
	ar->next = acpi_align(ar->next + len);
	return 0;
}

/* Every table starts with room for its header, which acpi_install fills in once the length is
 * known. */
static void acpi_table_begin(struct aml *t)
{
	static const struct acpi_header zero;

	aml_init(t);
	aml_append(t, &zero, sizeof(zero));
}

static int acpi_install(struct acpi_area *ar, struct aml *t, const char *sig, uint8_t revision,
			uint64_t *gpa)
{
	struct acpi_header h;

	if (t->err)
		return t->err;
	if (t->len > ACPI_AREA_END - ACPI_RSDP_ADDR)
		return -ENOSPC;
	memset(&h, 0, sizeof(h));
	memcpy(h.signature, sig, sizeof(h.signature));
	h.length = htole32((uint32_t)t->len);
	h.revision = revision;
	memcpy(h.oem_id, ACPI_OEM_ID, sizeof(h.oem_id));
	/* "SBX" plus the signature, blank-padded: "SBXDSDT ", "SBXAPIC " ... */
	memset(h.oem_table_id, ' ', sizeof(h.oem_table_id));
	memcpy(h.oem_table_id, "SBX", 3);
	memcpy(h.oem_table_id + 3, sig, 4);
	h.oem_revision = htole32(1);
	memcpy(h.creator_id, ACPI_CREATOR_ID, sizeof(h.creator_id));
	h.creator_revision = htole32(1);
	memcpy(t->buf, &h, sizeof(h));
	t->buf[offsetof(struct acpi_header, checksum)] = acpi_checksum(t->buf, t->len);
	return acpi_place(ar, t->buf, t->len, gpa);
}

/* Name(_CRS, ResourceTemplate() { <resource>, Interrupt(ResourceConsumer, Edge, ActiveHigh,
 * Exclusive) { gsi } }), the resource being written by the caller between begin and end. */
static size_t acpi_crs_begin(struct aml *t)
{
	aml_name(t, "_CRS");
	return aml_restemplate_begin(t);
}

static void acpi_crs_end(struct aml *t, size_t mark, uint32_t gsi)
{
	aml_res_ext_irq(t, AML_IRQ_CONSUMER | AML_IRQ_EDGE, gsi);
	aml_restemplate_end(t, mark);
}

static void acpi_dsdt_com1(struct aml *t)
{
	size_t dev, crs;

	dev = aml_device_begin(t, "COM1");
	aml_name(t, "_HID");
	aml_eisaid(t, "PNP0501");
	aml_name(t, "_UID");
	aml_int(t, 0);
	crs = acpi_crs_begin(t);
	aml_res_io(t, ACPI_COM1_PORT, ACPI_COM1_PORT, 1, ACPI_COM1_PORTS);
	acpi_crs_end(t, crs, ACPI_COM1_GSI);
	aml_pkg_end(t, dev);
}

/* Linux's virtio_mmio driver matches _HID "LNRO0005" and takes the first memory and interrupt
 * resources of _CRS. */
static void acpi_dsdt_virtio(struct aml *t, const struct acpi_mmio_dev *d, unsigned idx)
{
	char name[12];
	size_t dev, crs;

	snprintf(name, sizeof(name), "V%03X", idx);
	dev = aml_device_begin(t, name);
	aml_name(t, "_HID");
	aml_string(t, "LNRO0005");
	aml_name(t, "_UID");
	aml_int(t, idx);
	crs = acpi_crs_begin(t);
	aml_res_memory32_fixed(t, AML_RES_READWRITE, (uint32_t)d->base, d->size);
	acpi_crs_end(t, crs, d->gsi);
	aml_pkg_end(t, dev);
}

static int acpi_build_dsdt(struct acpi_area *ar, const struct acpi_config *c, uint64_t *gpa)
{
	struct aml t;
	size_t pkg, scope;
	int rc;

	acpi_table_begin(&t);
	/* \_S5_ { SLP_TYPa, SLP_TYPb, reserved, reserved }: with it Linux registers ACPI power-off,
	 * which on hardware-reduced ACPI writes SLP_TYPa and SLP_EN to SLEEP_CONTROL_REG. */
	aml_name(&t, "_S5_");
	pkg = aml_package_begin(&t, 4);
	aml_int(&t, ACPI_S5_SLP_TYP);
	aml_int(&t, ACPI_S5_SLP_TYP);
	aml_int(&t, 0);
	aml_int(&t, 0);
	aml_pkg_end(&t, pkg);

	scope = aml_scope_begin(&t, "\\_SB_");
	acpi_dsdt_com1(&t);
	for (unsigned i = 0; i < c->ndevs; i++)
		acpi_dsdt_virtio(&t, &c->devs[i], i);
	aml_pkg_end(&t, scope);

	rc = acpi_install(ar, &t, "DSDT", 2, gpa); /* revision 2: 64-bit AML integers */
	aml_free(&t);
	return rc;
}

static struct acpi_gas acpi_io_gas(uint16_t port)
{
	return (struct acpi_gas){
	    .space_id = GAS_SYSTEM_IO,
	    .bit_width = 8,
	    .access_size = GAS_ACCESS_BYTE,
	    .address = htole64(port),
	};
}

static int acpi_build_fadt(struct acpi_area *ar, const struct acpi_config *c, uint64_t dsdt,
			   uint64_t *gpa)
{
	struct acpi_fadt f;
	struct aml t;
	int rc;

	memset(&f, 0, sizeof(f));
	/* Both DSDT pointers, equal, so neither old nor new parsers complain. */
	f.dsdt = htole32((uint32_t)dsdt);
	f.x_dsdt = htole64(dsdt);
	f.iapc_boot_arch = htole16(IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_NOT_PRESENT);
	f.flags = htole32(FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON |
			  FADT_F_SLP_BUTTON);
	f.reset_reg = acpi_io_gas(c->reset_port);
	f.reset_value = c->reset_value;
	f.minor_version = FADT_MINOR_REVISION;
	f.sleep_control_reg = acpi_io_gas(c->sleep_ctl_port);
	f.sleep_status_reg = acpi_io_gas(c->sleep_sts_port);
	memcpy(f.hypervisor_vendor_id, ACPI_OEM_ID, sizeof(ACPI_OEM_ID) - 1);

	aml_init(&t);
	aml_append(&t, &f, sizeof(f));
	rc = acpi_install(ar, &t, "FACP", FADT_REVISION, gpa);
	aml_free(&t);
	return rc;
}

static int acpi_build_madt(struct acpi_area *ar, const struct acpi_config *c, uint64_t *gpa)
{
	struct aml t;
	int rc;

	acpi_table_begin(&t);
	aml_le(&t, ACPI_LAPIC_ADDR, 4);
	aml_le(&t, 0, 4); /* no PCAT_COMPAT: there is no 8259 pair to mask */
	for (unsigned i = 0; i < c->ncpus; i++) {
		aml_byte(&t, MADT_LAPIC);
		aml_byte(&t, 8);
		aml_byte(&t, (uint8_t)i); /* ACPI processor UID */
		aml_byte(&t, (uint8_t)i); /* APIC id */
		aml_le(&t, MADT_LAPIC_ENABLED, 4);
	}
	aml_byte(&t, MADT_IOAPIC);
	aml_byte(&t, 12);
	aml_byte(&t, (uint8_t)c->ncpus); /* IOAPIC id, after the LAPICs */
	aml_byte(&t, 0);
	aml_le(&t, ACPI_IOAPIC_ADDR, 4);
	aml_le(&t, 0, 4); /* GSI base */
	/* LINT1 of every processor is the NMI input, as on PCs. */
	aml_byte(&t, MADT_LAPIC_NMI);
	aml_byte(&t, 6);
	aml_byte(&t, MADT_ALL_PROCESSORS);
	aml_le(&t, 0, 2); /* polarity and trigger as the bus defines */
	aml_byte(&t, 1);

	rc = acpi_install(ar, &t, "APIC", MADT_REVISION, gpa);
	aml_free(&t);
	return rc;
}

static int acpi_build_xsdt(struct acpi_area *ar, uint64_t fadt, uint64_t madt, uint64_t *gpa)
{
	struct aml t;
	int rc;

	acpi_table_begin(&t);
	aml_le(&t, fadt, 8);
	aml_le(&t, madt, 8);
	rc = acpi_install(ar, &t, "XSDT", 1, gpa);
	aml_free(&t);
	return rc;
}

static int acpi_write_rsdp(struct guest_mem *m, uint64_t xsdt)
{
	struct acpi_rsdp r;
	uint8_t *host = guest_mem_ptr(m, ACPI_RSDP_ADDR, sizeof(r));

	if (!host)
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", sizeof(r.signature));
	memcpy(r.oem_id, ACPI_OEM_ID, sizeof(r.oem_id));
	r.revision = 2;
	r.length = htole32(sizeof(r));
	r.xsdt_address = htole64(xsdt); /* no RSDT: the XSDT is all a 64-bit guest reads */
	r.checksum = acpi_checksum((const uint8_t *)&r, offsetof(struct acpi_rsdp, length));
	r.extended_checksum = acpi_checksum((const uint8_t *)&r, sizeof(r));
	memcpy(host, &r, sizeof(r));
	return 0;
}

static int acpi_check_config(const struct acpi_config *c)
{
	if (c->ncpus == 0 || c->ncpus > ACPI_MAX_CPUS)
		return -EINVAL;
	if (!c->sleep_ctl_port || !c->sleep_sts_port || !c->reset_port)
		return -EINVAL;
	if (c->ndevs > ACPI_MAX_MMIO_DEVS)
		return -ENOSPC;
	if (c->ndevs && !c->devs)
		return -EINVAL;
	for (unsigned i = 0; i < c->ndevs; i++) {
		const struct acpi_mmio_dev *d = &c->devs[i];

		if (d->size == 0 || d->base > 0x100000000ULL - d->size)
			return -EINVAL;
		if (d->gsi >= ACPI_IOAPIC_PINS)
			return -EINVAL;
	}
	return 0;
}

int acpi_build(struct guest_mem *m, const struct acpi_config *c)
{
	struct acpi_area ar = {m, acpi_align(ACPI_RSDP_ADDR + sizeof(struct acpi_rsdp))};
	uint64_t dsdt, fadt, madt, xsdt;
	uint8_t *area;
	int rc;

	rc = acpi_check_config(c);
	if (rc)
		return rc;
	area = guest_mem_ptr(m, ACPI_RSDP_ADDR, ACPI_AREA_END - ACPI_RSDP_ADDR);
	if (!area)
		return -EINVAL;
	/* Nothing stale may look like a table to a guest scanning for "RSD PTR ". */
	memset(area, 0, ACPI_AREA_END - ACPI_RSDP_ADDR);

	rc = acpi_build_dsdt(&ar, c, &dsdt);
	if (!rc)
		rc = acpi_build_fadt(&ar, c, dsdt, &fadt);
	if (!rc)
		rc = acpi_build_madt(&ar, c, &madt);
	if (!rc)
		rc = acpi_build_xsdt(&ar, fadt, madt, &xsdt);
	if (!rc)
		rc = acpi_write_rsdp(m, xsdt);
	return rc;
}
