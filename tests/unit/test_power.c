/* The ACPI sleep/reset register device: only the exact power-off and reset writes act. */
#include <stdint.h>
#include <string.h>

#include "devices/power.h"
#include "testing.h"
#include "vmm/bus.h"

static int events[8];
static unsigned nevents;

static void on_event(void *ctx, int event)
{
	CHECK(ctx == &nevents);
	if (nevents < 8)
		events[nevents] = event;
	nevents++;
}

static void out8(struct bus *b, uint16_t port, uint8_t v)
{
	CHECK_EQ(bus_dispatch(b, port, &v, 1, 1), 0);
}

static uint8_t in8(struct bus *b, uint16_t port)
{
	uint8_t v = 0x5A;

	CHECK_EQ(bus_dispatch(b, port, &v, 1, 0), 0);
	return v;
}

int main(void)
{
	struct power_dev *p = NULL;
	struct bus b;
	uint8_t wide[4] = {0x34, 0x34, 0x34, 0x34};

	memset(&b, 0, sizeof(b));
	CHECK_EQ(power_new(on_event, &nevents, &p), 0);
	if (!p)
		return TEST_SUMMARY();
	CHECK_EQ(bus_register(&b, POWER_PORT_BASE, POWER_PORT_COUNT, power_access, p), 0);

	/* Not power-off: SLP_EN without S5's type, S5's type without SLP_EN, other states,
	 * WAK_STS clearing on the status port, junk to the reset port. */
	out8(&b, POWER_SLEEP_CTL_PORT, 0x20);
	out8(&b, POWER_SLEEP_CTL_PORT, 0x14);
	out8(&b, POWER_SLEEP_CTL_PORT, 0x2C);
	out8(&b, POWER_SLEEP_CTL_PORT, 0x3C);
	out8(&b, POWER_SLEEP_CTL_PORT, 0xFF & ~0x20);
	out8(&b, POWER_SLEEP_STS_PORT, 0x80);
	out8(&b, POWER_SLEEP_STS_PORT, 0x34);
	out8(&b, POWER_RESET_PORT, 0);
	out8(&b, POWER_RESET_PORT, 0x34);
	/* Wider accesses are ignored even when their first byte would act. */
	CHECK_EQ(bus_dispatch(&b, POWER_SLEEP_CTL_PORT, wide, 2, 1), 0);
	CHECK_EQ(bus_dispatch(&b, POWER_SLEEP_CTL_PORT, wide, 4, 1), 0);
	CHECK_EQ(nevents, 0);

	CHECK_EQ(in8(&b, POWER_SLEEP_STS_PORT), 0);
	CHECK_EQ(in8(&b, POWER_SLEEP_CTL_PORT), 0);
	CHECK_EQ(in8(&b, POWER_RESET_PORT), 0);

	/* Linux's hardware-reduced power-off: (SLP_TYP 5 << 2) | SLP_EN. Bits outside SLP_TYP
	 * and SLP_EN do not matter. */
	out8(&b, POWER_SLEEP_CTL_PORT, 0x34);
	CHECK_EQ(nevents, 1);
	CHECK_EQ(events[0], POWER_EVENT_OFF);
	out8(&b, POWER_SLEEP_CTL_PORT, 0x34 | 0x80 | 0x01);
	CHECK_EQ(nevents, 2);
	CHECK_EQ(events[1], POWER_EVENT_OFF);

	out8(&b, POWER_RESET_PORT, POWER_RESET_VALUE);
	CHECK_EQ(nevents, 3);
	CHECK_EQ(events[2], POWER_EVENT_RESET);

	power_free(p);
	power_free(NULL);
	return TEST_SUMMARY();
}
