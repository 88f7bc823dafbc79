/* Register behaviour after the National Semiconductor PC16550D data sheet. */
#include "serial.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Register offsets; 0 and 1 are the divisor latch while LCR.DLAB is set. */
#define UART_RX 0 /* read: receive buffer; write: transmit holding */
#define UART_IER 1
#define UART_IIR 2 /* read: interrupt identification; write: FIFO control */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI 0x01
#define UART_IER_THRI 0x02
#define UART_IER_MSI 0x08
#define UART_IER_MASK 0x0F /* upper bits read 0 on a 16550A; Linux checks that */

#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_ID_MASK 0x0F
#define UART_IIR_FIFO_ENABLED 0xC0

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_KEPT 0xC9 /* enable, DMA mode, trigger level; the clear bits self-reset */

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1F

#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_DELTA 0x0F
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

struct serial {
	pthread_mutex_t lock;
	serial_output_fn output;
	serial_irq_fn set_irq;
	void *ctx;

	uint8_t ier, fcr, lcr, mcr, msr, scr, dll, dlm;
	int thre_pending; /* THR-empty interrupt not yet acknowledged by an IIR read */
	int irq_level;	  /* last level given to set_irq */

	uint8_t rx[SERIAL_RX_FIFO];
	unsigned rx_head, rx_count;
	uint8_t tx[SERIAL_TX_LINE];
	size_t tx_len;
};

/* Modem lines as the guest sees them: in loopback the MCR outputs feed back, otherwise a
 * terminal is always attached and ready. */
static uint8_t serial_modem_lines(const struct serial *s)
{
	uint8_t m = s->mcr;

	if (!(m & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	return (m & UART_MCR_RTS ? UART_MSR_CTS : 0) | (m & UART_MCR_DTR ? UART_MSR_DSR : 0) |
	       (m & UART_MCR_OUT1 ? UART_MSR_RI : 0) | (m & UART_MCR_OUT2 ? UART_MSR_DCD : 0);
}

/* Latches the delta bits for lines that changed; RI only counts on its trailing edge. */
static void serial_update_msr(struct serial *s)
{
	uint8_t old = s->msr, lines = serial_modem_lines(s);
	uint8_t changed = (old ^ lines) & 0xF0;
	uint8_t delta = (changed >> 4) & (UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);

	if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI))
		delta |= UART_MSR_TERI;
	s->msr = lines | (old & UART_MSR_DELTA) | delta;
}

/* Highest-priority pending source that IER enables (line status errors never happen here). */
static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = s->fcr & UART_FCR_ENABLE ? UART_IIR_FIFO_ENABLED : 0;

	if ((s->ier & UART_IER_RDI) && s->rx_count)
		return fifo | UART_IIR_RDI;
	if ((s->ier & UART_IER_THRI) && s->thre_pending)
		return fifo | UART_IIR_THRI;
	if ((s->ier & UART_IER_MSI) && (s->msr & UART_MSR_DELTA))
		return fifo | UART_IIR_MSI;
	return fifo | UART_IIR_NO_INT;
}

static void serial_update_irq(struct serial *s)
{
	int level = (serial_iir(s) & UART_IIR_ID_MASK) != UART_IIR_NO_INT &&
		    (s->mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) == UART_MCR_OUT2;

	if (level != s->irq_level) {
		s->irq_level = level;
		s->set_irq(s->ctx, level);
	}
}

static void serial_flush_locked(struct serial *s)
{
	if (s->tx_len)
		s->output(s->ctx, s->tx, s->tx_len);
	s->tx_len = 0;
}

static void serial_rx_push(struct serial *s, uint8_t b)
{
	if (s->rx_count == SERIAL_RX_FIFO)
		return;
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO] = b;
	s->rx_count++;
}

static uint8_t serial_rx_pop(struct serial *s)
{
	uint8_t b;

	if (!s->rx_count)
		return 0;
	b = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
	s->rx_count--;
	return b;
}

/* Transmission is instantaneous, so the holding register is empty again at once and THRE
 * re-arms: the next interrupt asks the driver for more. */
static void serial_tx(struct serial *s, uint8_t b)
{
	if (s->mcr & UART_MCR_LOOP) {
		serial_rx_push(s, b);
	} else {
		s->tx[s->tx_len++] = b;
		if (b == '\n' || s->tx_len == SERIAL_TX_LINE)
			serial_flush_locked(s);
	}
	s->thre_pending = 1;
}

static void serial_write_ier(struct serial *s, uint8_t v)
{
	uint8_t old = s->ier;

	s->ier = v & UART_IER_MASK;
	/* Enabling THRI while the transmitter is idle raises THRE at once, as real 16550s do;
	 * Linux tests for this at startup and falls back to polling without it. */
	if ((s->ier & UART_IER_THRI) && !(old & UART_IER_THRI))
		s->thre_pending = 1;
}

static void serial_write_fcr(struct serial *s, uint8_t v)
{
	/* Switching the FIFOs on or off empties them, as does the receive-clear bit. Nothing
	 * waits to be transmitted, so the transmit-clear bit has nothing to do. */
	if (((v ^ s->fcr) & UART_FCR_ENABLE) || (v & UART_FCR_CLEAR_RCVR)) {
		s->rx_head = 0;
		s->rx_count = 0;
	}
	s->fcr = v & UART_FCR_KEPT;
}

static void serial_write(struct serial *s, uint64_t offset, uint8_t v)
{
	int dlab = s->lcr & UART_LCR_DLAB;

	switch (offset) {
	case UART_RX:
		if (dlab)
			s->dll = v;
		else
			serial_tx(s, v);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = v;
		else
			serial_write_ier(s, v);
		break;
	case UART_IIR:
		serial_write_fcr(s, v);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & UART_MCR_MASK;
		serial_update_msr(s);
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

static uint8_t serial_read(struct serial *s, uint64_t offset)
{
	int dlab = s->lcr & UART_LCR_DLAB;
	uint8_t v;

	switch (offset) {
	case UART_RX:
		return dlab ? s->dll : serial_rx_pop(s);
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR:
		v = serial_iir(s);
		/* Reading IIR acknowledges THRE when that is what it reports. */
		if ((v & UART_IIR_ID_MASK) == UART_IIR_THRI)
			s->thre_pending = 0;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0);
	case UART_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~UART_MSR_DELTA;
		return v;
	case UART_SCR:
		return s->scr;
	default:
		return 0xff;
	}
}

void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write)
{
	struct serial *s = opaque;

	if (len != 1 || offset >= SERIAL_PORT_COUNT) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (is_write)
		serial_write(s, offset, data[0]);
	else
		data[0] = serial_read(s, offset);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_RX_FIFO - s->rx_count;
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		serial_rx_push(s, buf[i]);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_flush(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	serial_flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_save(struct serial *s, struct serial_state *st)
{
	pthread_mutex_lock(&s->lock);
	serial_flush_locked(s);
	memset(st, 0, sizeof(*st));
	st->ier = s->ier;
	st->fcr = s->fcr;
	st->lcr = s->lcr;
	st->mcr = s->mcr;
	st->msr = s->msr;
	st->scr = s->scr;
	st->dll = s->dll;
	st->dlm = s->dlm;
	st->thre_pending = (uint8_t)s->thre_pending;
	st->irq_level = (uint8_t)s->irq_level;
	st->rx_head = (uint8_t)s->rx_head;
	st->rx_count = (uint8_t)s->rx_count;
	memcpy(st->rx, s->rx, sizeof(st->rx));
	pthread_mutex_unlock(&s->lock);
}

int serial_restore(struct serial *s, const struct serial_state *st)
{
	if (st->rx_head >= SERIAL_RX_FIFO || st->rx_count > SERIAL_RX_FIFO ||
	    st->thre_pending > 1 || st->irq_level > 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = st->ier & UART_IER_MASK;
	s->fcr = st->fcr & UART_FCR_KEPT;
	s->lcr = st->lcr;
	s->mcr = st->mcr & UART_MCR_MASK;
	s->msr = st->msr;
	s->scr = st->scr;
	s->dll = st->dll;
	s->dlm = st->dlm;
	s->thre_pending = st->thre_pending;
	s->irq_level = st->irq_level;
	s->rx_head = st->rx_head;
	s->rx_count = st->rx_count;
	memcpy(s->rx, st->rx, sizeof(s->rx));
	s->tx_len = 0;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int serial_new(serial_output_fn output, serial_irq_fn set_irq, void *ctx, struct serial **out)
{
	struct serial *s;
	int rc;

	if (!output || !set_irq)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = pthread_mutex_init(&s->lock, NULL);
	if (rc) {
		free(s);
		return -rc;
	}
	s->output = output;
	s->set_irq = set_irq;
	s->ctx = ctx;
	s->msr = serial_modem_lines(s);
	*out = s;
	return 0;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}
