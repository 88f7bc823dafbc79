#include "vsock_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vsock_packet.h"

_Static_assert((VSOCK_HASH_BUCKETS & (VSOCK_HASH_BUCKETS - 1)) == 0, "buckets: a power of two");

void vsock_conns_init(struct vsock_conns *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = VSOCK_MAX_CONNS; i-- > 0;) {
		t->slots[i].fd = -1;
		t->slots[i].hnext = t->free_list;
		t->free_list = &t->slots[i];
	}
}

struct vsock_conn *vsock_conn_alloc(struct vsock_conns *t)
{
	struct vsock_conn *c = t->free_list;
	uint32_t gen;

	if (!c)
		return NULL;
	t->free_list = c->hnext;
	t->count++;
	gen = c->gen;
	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->fd = -1;
	c->writable = 1;
	return c;
}

static unsigned vsock_conn_bucket(uint32_t guest_port, uint32_t host_port)
{
	/* Host ports count up from 1 << 30 and guest ports are ephemeral: a multiplicative mix
	 * spreads both. */
	uint64_t k = ((uint64_t)guest_port << 32 | host_port) * 0x9E3779B97F4A7C15ULL;

	return (unsigned)(k >> 32) & (VSOCK_HASH_BUCKETS - 1);
}

void vsock_conn_hash(struct vsock_conns *t, struct vsock_conn *c)
{
	unsigned b = vsock_conn_bucket(c->guest_port, c->host_port);

	c->hnext = t->buckets[b];
	t->buckets[b] = c;
}

struct vsock_conn *vsock_conn_find(struct vsock_conns *t, uint32_t guest_port,
				   uint32_t host_port)
{
	struct vsock_conn *c = t->buckets[vsock_conn_bucket(guest_port, host_port)];

	while (c && (c->guest_port != guest_port || c->host_port != host_port))
		c = c->hnext;
	return c;
}

static void vsock_conn_unhash(struct vsock_conns *t, struct vsock_conn *c)
{
	struct vsock_conn **p = &t->buckets[vsock_conn_bucket(c->guest_port, c->host_port)];

	while (*p && *p != c)
		p = &(*p)->hnext;
	if (*p)
		*p = c->hnext;
}

void vsock_conn_ready_push(struct vsock_conns *t, struct vsock_conn *c)
{
	if (c->queued)
		return;
	c->queued = 1;
	c->rnext = NULL;
	c->rprev = t->ready_tail;
	if (t->ready_tail)
		t->ready_tail->rnext = c;
	else
		t->ready_head = c;
	t->ready_tail = c;
}

static void vsock_conn_ready_remove(struct vsock_conns *t, struct vsock_conn *c)
{
	if (!c->queued)
		return;
	if (c->rprev)
		c->rprev->rnext = c->rnext;
	else
		t->ready_head = c->rnext;
	if (c->rnext)
		c->rnext->rprev = c->rprev;
	else
		t->ready_tail = c->rprev;
	c->queued = 0;
}

struct vsock_conn *vsock_conn_ready_pop(struct vsock_conns *t)
{
	struct vsock_conn *c = t->ready_head;

	if (c)
		vsock_conn_ready_remove(t, c);
	return c;
}

void vsock_conn_release(struct vsock_conns *t, struct vsock_conn *c)
{
	/* A HANDSHAKE connection was never hashed: unhash finds nothing then. */
	vsock_conn_unhash(t, c);
	vsock_conn_ready_remove(t, c);
	free(c->buf);
	c->buf = NULL;
	c->state = VSOCK_CONN_FREE;
	c->gen++;
	c->hnext = t->free_list;
	t->free_list = c;
	t->count--;
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
	/* Unsigned arithmetic: both counters wrap at 2^32, as the spec intends. */
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

int vsock_conn_window_fits(const struct vsock_conn *c, uint32_t len)
{
	/* The guest may only count on the fwd_cnt we told it; rx_cnt - fwd_cnt_sent never exceeds
	 * the window for a guest that kept to it, so this cannot wrap. */
	return (uint64_t)(c->rx_cnt - c->fwd_cnt_sent) + len <= VSOCK_BUF_ALLOC;
}

void vsock_conn_check_credit(struct vsock_conn *c)
{
	uint32_t unannounced = c->fwd_cnt - c->fwd_cnt_sent;
	uint32_t guest_free = VSOCK_BUF_ALLOC - (c->rx_cnt - c->fwd_cnt_sent);

	if (unannounced && (unannounced >= VSOCK_BUF_ALLOC / 2 || guest_free < VSOCK_MAX_PAYLOAD))
		c->pend |= VSOCK_PEND_CREDIT_UPDATE;
}

int vsock_conn_buf_put(struct vsock_conn *c, const struct iovec *iov, unsigned n, size_t len)
{
	uint32_t tail;

	if (!c->buf) {
		c->buf = malloc(VSOCK_BUF_ALLOC);
		if (!c->buf)
			return -ENOMEM;
	}
	tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
	for (unsigned i = 0; i < n && len > 0; i++) {
		const uint8_t *src = iov[i].iov_base;
		size_t left = iov[i].iov_len < len ? iov[i].iov_len : len;

		len -= left;
		while (left > 0) {
			size_t room = VSOCK_BUF_ALLOC - tail;
			size_t chunk = room < left ? room : left;

			memcpy(c->buf + tail, src, chunk);
			src += chunk;
			left -= chunk;
			c->buf_len += (uint32_t)chunk;
			tail = (tail + (uint32_t)chunk) % VSOCK_BUF_ALLOC;
		}
	}
	return 0;
}

unsigned vsock_conn_buf_peek(const struct vsock_conn *c, struct iovec iov[2])
{
	uint32_t first = VSOCK_BUF_ALLOC - c->buf_head;

	if (c->buf_len == 0)
		return 0;
	iov[0].iov_base = c->buf + c->buf_head;
	if (c->buf_len <= first) {
		iov[0].iov_len = c->buf_len;
		return 1;
	}
	iov[0].iov_len = first;
	iov[1].iov_base = c->buf;
	iov[1].iov_len = c->buf_len - first;
	return 2;
}

void vsock_conn_buf_consume(struct vsock_conn *c, size_t n)
{
	c->buf_head = (c->buf_head + (uint32_t)n) % VSOCK_BUF_ALLOC;
	c->buf_len -= (uint32_t)n;
	if (c->buf_len == 0)
		c->buf_head = 0;
}
