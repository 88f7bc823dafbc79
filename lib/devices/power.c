#include "power.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../vmm/acpi.h"

int power_new(void (*on_event)(void *ctx, int event), void *ctx, struct power_dev **out)
{
	struct power_dev *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->on_event = on_event;
	p->ctx = ctx;
	*out = p;
	return 0;
}

void power_free(struct power_dev *p)
{
	free(p);
}

void power_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write)
{
	struct power_dev *p = opaque;
	uint8_t v;

	if (!is_write) {
		/* Sleep status reads 0: after writing the sleep control register Linux polls
		 * for WAK_STS, and spinning there is what we want until the VMM stops. */
		memset(data, len == 1 ? 0 : 0xff, len);
		return;
	}
	if (len != 1)
		return;
	v = data[0];
	switch (POWER_PORT_BASE + offset) {
	case POWER_SLEEP_CTL_PORT:
		/* Only soft-off is offered (\_S5_); any other sleep type is refused by ignoring
		 * it, as hardware would for a state it does not implement. */
		if ((v & ACPI_SLP_EN) &&
		    (v & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT == ACPI_S5_SLP_TYP)
			p->on_event(p->ctx, POWER_EVENT_OFF);
		break;
	case POWER_RESET_PORT:
		if (v == POWER_RESET_VALUE)
			p->on_event(p->ctx, POWER_EVENT_RESET);
		break;
	default:
		break; /* sleep status is write-1-to-clear, and nothing ever sets it */
	}
}
