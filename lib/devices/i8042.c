#include "i8042.h"

#include <string.h>

#include "power.h"

#define I8042_CMD_PULSE_RESET 0xfe

void i8042_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write)
{
	struct power_dev *p = opaque;

	if (!is_write) {
		memset(data, 0, len); /* output buffer empty, input buffer empty */
		return;
	}
	if (len == 1 && data[0] == I8042_CMD_PULSE_RESET)
		p->on_event(p->ctx, POWER_EVENT_RESET);
}
