/* ACPI hardware-reduced sleep and reset registers on port I/O: how the guest powers off and
 * reboots. acpi_build() gets the same port numbers for the FADT. */
#pragma once
#include <stdint.h>

/* Three consecutive ports no PC device uses. Not 0x3C0: that is the VGA attribute controller,
 * and a stray VGA probe must not be able to power the machine off. */
#define POWER_PORT_BASE 0x600
#define POWER_PORT_COUNT 3
#define POWER_SLEEP_CTL_PORT (POWER_PORT_BASE + 0) /* FADT SLEEP_CONTROL_REG */
#define POWER_SLEEP_STS_PORT (POWER_PORT_BASE + 1) /* FADT SLEEP_STATUS_REG */
#define POWER_RESET_PORT (POWER_PORT_BASE + 2)	   /* FADT RESET_REG */
#define POWER_RESET_VALUE 1			   /* FADT RESET_VALUE */

enum {
	POWER_EVENT_OFF = 1,   /* SLP_EN written with SLP_TYP of \_S5_ */
	POWER_EVENT_RESET = 2, /* POWER_RESET_VALUE written to the reset port */
};

/* Stateless, so it needs no lock: on_event runs on the vCPU thread that made the access, with
 * no lock of this device held, and may stop the machine without returning. */
struct power_dev {
	void (*on_event)(void *ctx, int event);
	void *ctx;
};

/* Allocates a device with its callback; free with power_free. 0 or -ENOMEM. */
int power_new(void (*on_event)(void *ctx, int event), void *ctx, struct power_dev **out);
void power_free(struct power_dev *p);

/* bus_access_fn for [POWER_PORT_BASE, +POWER_PORT_COUNT). Only single-byte accesses count:
 * they read 0 (WAK_STS never sets, the guest is not meant to come back); wider reads give all
 * ones and wider writes are ignored. */
void power_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write);
