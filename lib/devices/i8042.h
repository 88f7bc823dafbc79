/* The one piece of a PC keyboard controller a microVM needs: the reset line. Linux falls back to
 * pulsing it (command 0xfe on port 0x64) when a reboot gets no further, after polling the status
 * port until the controller looks idle. */
#pragma once
#include <stdint.h>

#define I8042_COMMAND_PORT 0x64

struct power_dev;

/* bus_access_fn for the single port 0x64, opaque = the power device whose RESET event a
 * reset pulse raises. Status reads say "idle, nothing to read" so the guest never spins. */
void i8042_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write);
