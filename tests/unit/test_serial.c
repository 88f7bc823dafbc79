/* The 16550A: transmit path and line buffering, the THRE and receive interrupts and their
 * acknowledgement, OUT2 gating, loopback, the divisor latch, the probe Linux runs, and hostile
 * accesses. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "devices/serial.h"
#include "testing.h"

#define THR 0
#define RBR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static uint8_t out[1024];
static size_t out_len;
static unsigned out_calls;
static int irq;
static unsigned irq_calls;

static void on_output(void *ctx, const uint8_t *buf, size_t len)
{
	if (out_len + len <= sizeof(out)) {
		memcpy(out + out_len, buf, len);
		out_len += len;
	}
	out_calls++;
}

static void on_irq(void *ctx, int level)
{
	CHECK(level != irq); /* only changes are reported */
	irq = level;
	irq_calls++;
}

static void wr(struct serial *s, unsigned reg, uint8_t v)
{
	serial_access(s, reg, &v, 1, 1);
}

static uint8_t rd(struct serial *s, unsigned reg)
{
	uint8_t v = 0;

	serial_access(s, reg, &v, 1, 0);
	return v;
}

static struct serial *fresh(void)
{
	struct serial *s = NULL;

	out_len = 0;
	out_calls = 0;
	irq = 0;
	irq_calls = 0;
	CHECK_EQ(serial_new(on_output, on_irq, NULL, &s), 0);
	return s;
}

static void test_transmit(void)
{
	struct serial *s = fresh();
	const char *msg = "hello\nworld";

	CHECK_EQ(rd(s, LSR) & 0x60, 0x60); /* THRE | TEMT */
	for (const char *p = msg; *p; p++)
		wr(s, THR, (uint8_t)*p);
	/* The first line went out on '\n'; the rest waits for a flush. */
	CHECK_EQ(out_calls, 1);
	CHECK_EQ(out_len, 6);
	serial_flush(s);
	CHECK_EQ(out_calls, 2);
	CHECK_EQ(out_len, strlen(msg));
	CHECK(memcmp(out, msg, strlen(msg)) == 0);
	serial_flush(s);
	CHECK_EQ(out_calls, 2); /* nothing pending, no empty call */

	/* A long line is handed on in SERIAL_TX_LINE pieces. */
	for (unsigned i = 0; i < SERIAL_TX_LINE + 10; i++)
		wr(s, THR, 'x');
	CHECK_EQ(out_calls, 3);
	CHECK_EQ(out_len, strlen(msg) + SERIAL_TX_LINE);
	CHECK_EQ(irq_calls, 0); /* IER is 0: no interrupts */
	serial_free(s);
}

static void test_thre_irq(void)
{
	struct serial *s = fresh();

	CHECK_EQ(rd(s, IIR), 0x01);
	/* Without OUT2 the interrupt stays off the pin, but IIR still reports it. */
	wr(s, IER, 0x02);
	CHECK_EQ(irq, 0);
	CHECK_EQ(rd(s, IIR), 0x02);
	CHECK_EQ(rd(s, IIR), 0x01); /* that read acknowledged it */
	wr(s, IER, 0x00);

	wr(s, MCR, 0x08); /* OUT2 */
	wr(s, IER, 0x02);
	CHECK_EQ(irq, 1);
	CHECK_EQ(rd(s, IIR), 0x02);
	CHECK_EQ(irq, 0);
	CHECK_EQ(rd(s, IIR), 0x01);
	/* Writing THR transmits at once and raises THRE again. */
	wr(s, THR, 'a');
	CHECK_EQ(irq, 1);
	wr(s, THR, 'b');
	CHECK_EQ(irq, 1);
	CHECK_EQ(rd(s, IIR), 0x02);
	CHECK_EQ(irq, 0);
	/* Disabling THRI drops the line; enabling it again re-raises it (Linux's THRE test). */
	wr(s, THR, 'c');
	CHECK_EQ(irq, 1);
	wr(s, IER, 0x00);
	CHECK_EQ(irq, 0);
	wr(s, IER, 0x02);
	CHECK_EQ(irq, 1);
	/* Clearing OUT2 gates the line. */
	wr(s, MCR, 0x00);
	CHECK_EQ(irq, 0);
	wr(s, MCR, 0x08);
	CHECK_EQ(irq, 1);
	/* FIFO-enabled bits appear once FCR turns the FIFOs on. */
	wr(s, FCR, 0x01);
	CHECK_EQ(rd(s, IIR), 0xC2);
	CHECK_EQ(rd(s, IIR), 0xC1);
	CHECK_EQ(irq, 0);
	serial_free(s);
}

static void test_receive(void)
{
	struct serial *s = fresh();
	uint8_t big[100];

	wr(s, MCR, 0x08);
	wr(s, IER, 0x01);
	CHECK_EQ(irq, 0);
	CHECK_EQ(serial_input(s, (const uint8_t *)"ok", 2), 2);
	CHECK_EQ(irq, 1);
	CHECK_EQ(rd(s, LSR) & 0x01, 1);
	CHECK_EQ(rd(s, IIR), 0x04);
	CHECK_EQ(irq, 1); /* reading IIR does not acknowledge received data */
	CHECK_EQ(rd(s, RBR), 'o');
	CHECK_EQ(irq, 1);
	CHECK_EQ(rd(s, RBR), 'k');
	CHECK_EQ(irq, 0);
	CHECK_EQ(rd(s, LSR) & 0x01, 0);
	CHECK_EQ(rd(s, IIR), 0x01);

	/* Received data outranks THRE. */
	wr(s, IER, 0x03);
	CHECK_EQ(serial_input(s, (const uint8_t *)"z", 1), 1);
	CHECK_EQ(rd(s, IIR), 0x04);
	CHECK_EQ(rd(s, RBR), 'z');
	CHECK_EQ(rd(s, IIR), 0x02);
	CHECK_EQ(irq, 0);

	/* The FIFO holds SERIAL_RX_FIFO bytes; the rest is refused, and FCR can clear it. */
	memset(big, 'q', sizeof(big));
	CHECK_EQ(serial_input(s, big, sizeof(big)), SERIAL_RX_FIFO);
	CHECK_EQ(serial_input(s, big, 1), 0);
	CHECK_EQ(irq, 1);
	wr(s, FCR, 0x03);
	CHECK_EQ(rd(s, LSR) & 0x01, 0);
	CHECK_EQ(irq, 0);
	CHECK_EQ(rd(s, RBR), 0); /* empty FIFO */
	serial_free(s);
}

static void test_loopback(void)
{
	struct serial *s = fresh();

	/* Linux's probe: MCR = LOOP | RTS | OUT2 must show CTS | DCD in MSR. */
	wr(s, MCR, 0x1A);
	CHECK_EQ(rd(s, MSR) & 0xF0, 0x90);
	wr(s, MCR, 0x1F);
	CHECK_EQ(rd(s, MSR) & 0xF0, 0xF0);
	wr(s, MCR, 0x1B);
	CHECK_EQ(rd(s, MSR) & 0x04, 0x04); /* RI fell: trailing-edge delta */
	CHECK_EQ(rd(s, MSR) & 0x0F, 0);	   /* deltas clear on read */

	/* Bytes written come back as received data, not as output; no interrupt on the pin. */
	wr(s, IER, 0x01);
	wr(s, THR, 0x55);
	wr(s, THR, 0xAA);
	CHECK_EQ(out_len, 0);
	serial_flush(s);
	CHECK_EQ(out_calls, 0);
	CHECK_EQ(rd(s, IIR), 0x04);
	CHECK_EQ(irq, 0);
	CHECK_EQ(rd(s, RBR), 0x55);
	CHECK_EQ(rd(s, RBR), 0xAA);
	CHECK_EQ(rd(s, LSR) & 0x01, 0);

	/* Leaving loopback reconnects the terminal lines. */
	wr(s, MCR, 0x0B);
	CHECK_EQ(rd(s, MSR) & 0xF0, 0xB0);
	wr(s, THR, 'x');
	serial_flush(s);
	CHECK_EQ(out_len, 1);
	serial_free(s);
}

static void test_registers(void)
{
	struct serial *s = fresh();
	uint8_t wide[4] = {'w', 'w', 'w', 'w'};

	/* The divisor latch overlays RBR/THR and IER while DLAB is set. */
	wr(s, IER, 0x05);
	wr(s, LCR, 0x83);
	wr(s, DLL, 0x01);
	wr(s, DLM, 0x02);
	CHECK_EQ(rd(s, DLL), 0x01);
	CHECK_EQ(rd(s, DLM), 0x02);
	CHECK_EQ(rd(s, LCR), 0x83);
	CHECK_EQ(out_len, 0); /* the DLL write did not transmit */
	wr(s, LCR, 0x03);
	CHECK_EQ(rd(s, IER), 0x05);
	CHECK_EQ(rd(s, LCR), 0x03);
	wr(s, LCR, 0x83);
	CHECK_EQ(rd(s, DLL), 0x01);
	CHECK_EQ(rd(s, DLM), 0x02);
	wr(s, LCR, 0x03);

	/* IER keeps its low four bits only (Linux's XScale check reads bit 6 back). */
	wr(s, IER, 0xFF);
	CHECK_EQ(rd(s, IER), 0x0F);
	wr(s, IER, 0);
	wr(s, SCR, 0xA5);
	CHECK_EQ(rd(s, SCR), 0xA5);
	wr(s, MCR, 0xFF);
	CHECK_EQ(rd(s, MCR), 0x1F);
	wr(s, MCR, 0);
	/* No 64-byte FIFO (bit 5) even when asked: a 16550A, not a 16750. */
	wr(s, FCR, 0x21);
	CHECK_EQ(rd(s, IIR), 0xC1);
	/* LSR and MSR ignore writes. */
	wr(s, LSR, 0x00);
	CHECK_EQ(rd(s, LSR), 0x60);
	rd(s, MSR); /* clears the deltas the MCR writes above latched */
	wr(s, MSR, 0x00);
	CHECK_EQ(rd(s, MSR), 0xB0);

	/* Hostile accesses: wrong widths and offsets past the range do nothing. */
	serial_access(s, THR, wide, 4, 1);
	serial_access(s, 8, wide, 1, 1);
	serial_access(s, ~0ULL, wide, 1, 1);
	CHECK_EQ(out_len, 0);
	serial_flush(s);
	CHECK_EQ(out_calls, 0);
	serial_access(s, LSR, wide, 2, 0);
	CHECK_EQ(wide[0], 0xFF);
	CHECK_EQ(wide[1], 0xFF);
	wide[0] = 0;
	serial_access(s, 9, wide, 1, 0);
	CHECK_EQ(wide[0], 0xFF);
	serial_free(s);
	serial_free(NULL);
}

int main(void)
{
	struct serial *s = NULL;

	CHECK_EQ(serial_new(NULL, on_irq, NULL, &s), -EINVAL);
	CHECK(s == NULL);
	test_transmit();
	test_thre_irq();
	test_receive();
	test_loopback();
	test_registers();
	return TEST_SUMMARY();
}
