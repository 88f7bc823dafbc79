/* An 8250/16550A UART, the guest's console: enough of the chip that Linux's 8250 driver probes
 * a 16550A, transmits under interrupts and receives what the host injects.
 *
 * Threading: every entry point takes the device's mutex, and the output and set_irq callbacks
 * run with it held, so interrupt level changes and console bytes reach the VMM in the order
 * the guest caused them. The callbacks must not call back into this device. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SERIAL_COM1_PORT 0x3F8
#define SERIAL_PORT_COUNT 8
#define SERIAL_COM1_IRQ 4
#define SERIAL_RX_FIFO 64  /* deeper than the 16550A's 16 bytes: fewer drops of host input */
#define SERIAL_TX_LINE 256 /* output is handed on per line, or when this much piles up */

struct serial;

/* Transmitted bytes, in order, a line or SERIAL_TX_LINE bytes at a time. */
typedef void (*serial_output_fn)(void *ctx, const uint8_t *buf, size_t len);
/* The interrupt line changed: 1 asserted, 0 deasserted; called only on a change. The line is
 * gated by MCR.OUT2 as on PC boards (Linux sets OUT2 when it uses the interrupt) and is off in
 * loopback mode, where OUT2 does not reach the pin. */
typedef void (*serial_irq_fn)(void *ctx, int level);

/* Allocates a UART in its reset state. 0, -EINVAL for a NULL callback, or -ENOMEM. */
int serial_new(serial_output_fn output, serial_irq_fn set_irq, void *ctx, struct serial **out);
/* Frees without flushing (call serial_flush first to keep a partial line); NULL is fine. */
void serial_free(struct serial *s);

/* bus_access_fn for [SERIAL_COM1_PORT, +SERIAL_PORT_COUNT). Only single-byte accesses count:
 * wider reads give all ones and wider writes are ignored. */
void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write);

/* Host input for the guest: queues what fits in the receive FIFO and returns how many bytes
 * were taken; the caller drops or retries the rest. */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);
/* Hands any partial output line to the output callback now. */
void serial_flush(struct serial *s);

/* The UART's registers for a snapshot (fixed layout, stored as is). */
struct serial_state {
	uint8_t ier, fcr, lcr, mcr, msr, scr, dll, dlm;
	uint8_t thre_pending, irq_level, rx_head, rx_count;
	uint32_t reserved;
	uint8_t rx[SERIAL_RX_FIFO];
};
_Static_assert(sizeof(struct serial_state) == 16 + SERIAL_RX_FIFO, "serial state layout");

/* Flushes pending output, then records the registers. */
void serial_save(struct serial *s, struct serial_state *st);
/* Sets the registers of a fresh UART; -EINVAL for impossible FIFO positions. The interrupt
 * level is taken as saved, without calling set_irq: the caller re-asserts the line. */
int serial_restore(struct serial *s, const struct serial_state *st);
