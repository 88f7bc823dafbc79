/* ACPI tables for a hardware-reduced x86-64 microVM: RSDP, XSDT, FADT, MADT and a DSDT that
 * describes COM1 and the virtio-mmio devices. Debian's kernel has no MP-table parser and no
 * virtio_mmio.device= support, so this is how it learns about CPUs, interrupts and devices. */
#pragma once
#include <stdint.h>

struct guest_mem;

struct acpi_mmio_dev {
	uint64_t base; /* base + size must stay below 4 GiB (Memory32Fixed) */
	uint32_t size;
	uint32_t gsi; /* IOAPIC input, below ACPI_IOAPIC_PINS */
};

struct acpi_config {
	unsigned ncpus;			  /* LAPIC ids 0..ncpus-1, 1..ACPI_MAX_CPUS */
	const struct acpi_mmio_dev *devs; /* virtio-mmio devices */
	unsigned ndevs;
	uint16_t sleep_ctl_port, sleep_sts_port; /* FADT SLEEP_CONTROL_REG / SLEEP_STATUS_REG */
	uint16_t reset_port;			 /* FADT RESET_REG, 1 byte in I/O space */
	uint8_t reset_value;
};

#define ACPI_RSDP_ADDR 0xE0000
#define ACPI_AREA_END 0x100000

#define ACPI_LAPIC_ADDR 0xFEE00000u
#define ACPI_IOAPIC_ADDR 0xFEC00000u
#define ACPI_IOAPIC_PINS 24 /* KVM's in-kernel IOAPIC */
/* xAPIC ids are 8 bits, 0xFF is broadcast, and the IOAPIC takes the id after the last CPU. */
#define ACPI_MAX_CPUS 254

/* SLP_TYP the DSDT's \_S5_ package gives for soft-off: the guest powers off by writing
 * (ACPI_S5_SLP_TYP << 2) | ACPI_SLP_EN to the sleep control register. */
#define ACPI_S5_SLP_TYP 5
#define ACPI_SLP_EN 0x20
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK 0x1C

/* Writes the RSDP at ACPI_RSDP_ADDR and the other tables after it, all inside
 * [ACPI_RSDP_ADDR, ACPI_AREA_END), which this call owns and clears first. Returns 0, -EINVAL for
 * a bad config or guest RAM that does not cover the area, -ENOSPC when the tables do not fit,
 * -ENOMEM. */
int acpi_build(struct guest_mem *m, const struct acpi_config *c);
