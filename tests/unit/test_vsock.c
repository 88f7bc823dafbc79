/* virtio-vsock driven as in the VMM: the device runs in its own evloop thread, queue kicks arrive
 * there through eventfds (as KVM's ioeventfds would), while this thread plays both the guest
 * (registers through virtio_mmio_access, rings in a fake guest memory, a small vsock stack with
 * credit accounting) and the host clients on the Unix socket. Every wait has a deadline. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "testing.h"
#include "util/evloop.h"
#include "virtio/mmio.h"
#include "virtio/virtio_ids.h"
#include "virtio/vsock.h"
#include "virtio/vsock_packet.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the test writes rings natively");

#define CID 42
#define MEM_SIZE (8ULL << 20)
#define DEV_WINDOW (256 * 1024) /* the device's buf_alloc */
#define G_BUF (64 * 1024)       /* the guest's buf_alloc */
#define HDR 44

#define QN_RX 128
#define QN_TX 64
#define QN_EV 8
#define RX_BUFS (QN_RX / 2) /* two descriptors each at most */
#define RX_DATA 4096        /* payload room per rx buffer, as Linux gives */
#define TX_SLOTS (QN_TX / 4) /* four descriptors each at most */
#define TX_SLOT_SIZE 0x11000
#define RX_BASE 0x100000ULL
#define RX_STRIDE 0x1100ULL
#define TX_BASE 0x200000ULL
#define EV_BASE 0x400000ULL

#define TC_MAX 260
#define WAIT_S 10.0

#define ALL_STATUS                                                                                 \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct hdr) == HDR, "header layout");

struct drv_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

/* One connection as the guest sees it, and the host client bridged to it (if any). */
struct tconn {
	int used;
	uint32_t gport, hport;
	int requested, responded, rst, shut;
	unsigned credit_updates, credit_requests;
	uint32_t dev_buf_alloc, dev_fwd_cnt; /* the device's credit, from its last header */
	uint32_t tx_cnt;                     /* bytes the guest sent */
	uint32_t rx_cnt, fwd_cnt, fwd_told;  /* received, consumed, and consumed as told */
	int hold;                            /* the guest application reads nothing */
	int owe_update;
	struct buf g_in; /* bytes the guest received */

	int fd; /* host client, -1 when none */
	const uint8_t *h_out;
	size_t h_out_len, h_out_off;
	int h_noread, h_eof;
	struct buf h_in;
};

struct kick {
	struct virtio_mmio *t;
	unsigned q;
	int fd;
};

struct gq {
	uint64_t base;
	uint16_t size, avail_idx, used_seen;
};

struct guest {
	uint8_t *mem;
	struct guest_mem gm;
	struct virtio_mmio t;
	struct vsock *v;
	struct evloop *loop;
	pthread_t thread;
	int irq_fd, treset_fd;
	struct kick kicks[3];
	struct gq q[3];
	char dir[64], path[96];

	int rx_paused;
	int slot_busy[TX_SLOTS];
	unsigned tx_done;

	struct tconn tc[TC_MAX];
	struct tconn *last_req;
	unsigned requests, orphan_rst, bad_pkts, violations, events, rx_bad_returned;
	uint32_t orphan_gport, orphan_hport, last_event;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 7 + i * 13 + (i >> 11));
}

static void buf_add(struct buf *b, const void *p, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

/* ---- the guest's registers and rings ---- */

static uint32_t rd(struct guest *g, uint64_t off)
{
	uint32_t v;

	virtio_mmio_access(&g->t, off, (uint8_t *)&v, 4, 0);
	return v;
}

static void wr(struct guest *g, uint64_t off, uint32_t v)
{
	virtio_mmio_access(&g->t, off, (uint8_t *)&v, 4, 1);
}

static struct drv_desc *q_desc(struct guest *g, unsigned q, unsigned i)
{
	return (struct drv_desc *)(g->mem + g->q[q].base) + i;
}

static uint16_t *q_avail(struct guest *g, unsigned q)
{
	return (uint16_t *)(g->mem + g->q[q].base + 0x1000);
}

static uint16_t q_used_idx(struct guest *g, unsigned q)
{
	return __atomic_load_n((uint16_t *)(g->mem + g->q[q].base + 0x2000) + 1, __ATOMIC_ACQUIRE);
}

static uint32_t *q_used_elem(struct guest *g, unsigned q, uint16_t k)
{
	return (uint32_t *)(g->mem + g->q[q].base + 0x2004) + 2 * (k % g->q[q].size);
}

static void q_submit(struct guest *g, unsigned q, uint16_t head)
{
	struct gq *gq = &g->q[q];

	q_avail(g, q)[2 + gq->avail_idx % gq->size] = head;
	gq->avail_idx++;
	__atomic_store_n(&q_avail(g, q)[1], gq->avail_idx, __ATOMIC_RELEASE);
}

static void q_kick(struct guest *g, unsigned q)
{
	uint64_t one = 1;

	CHECK_EQ(write(g->kicks[q].fd, &one, sizeof(one)), sizeof(one));
}

static uint64_t rx_buf_gpa(unsigned k)
{
	return RX_BASE + k * RX_STRIDE;
}

/* Even buffers are laid out as Linux 6.1 does (header and data in two descriptors), odd ones as
 * one descriptor. */
static void rx_post(struct guest *g, unsigned k)
{
	if (k % 2 == 0) {
		*q_desc(g, 0, 2 * k) = (struct drv_desc){ rx_buf_gpa(k), HDR,
							  VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
							  (uint16_t)(2 * k + 1) };
		*q_desc(g, 0, 2 * k + 1) =
			(struct drv_desc){ rx_buf_gpa(k) + 64, RX_DATA, VIRTQ_DESC_F_WRITE, 0 };
	} else {
		*q_desc(g, 0, 2 * k) =
			(struct drv_desc){ rx_buf_gpa(k), HDR + RX_DATA, VIRTQ_DESC_F_WRITE, 0 };
	}
	q_submit(g, 0, (uint16_t)(2 * k));
}

static void g_queue(struct guest *g, unsigned q, uint16_t size)
{
	uint64_t base = g->q[q].base;

	wr(g, VIRTIO_MMIO_REG_QUEUE_SEL, q);
	CHECK_EQ(rd(g, VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 256);
	wr(g, VIRTIO_MMIO_REG_QUEUE_NUM, size);
	wr(g, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, (uint32_t)base);
	wr(g, VIRTIO_MMIO_REG_QUEUE_DESC_HIGH, 0);
	wr(g, VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, (uint32_t)base + 0x1000);
	wr(g, VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH, 0);
	wr(g, VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, (uint32_t)base + 0x2000);
	wr(g, VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH, 0);
	wr(g, VIRTIO_MMIO_REG_QUEUE_READY, 1);
	CHECK_EQ(rd(g, VIRTIO_MMIO_REG_QUEUE_READY), 1);
}

static void g_forget(struct guest *g)
{
	for (unsigned i = 0; i < TC_MAX; i++) {
		struct tconn *tc = &g->tc[i];

		if (tc->fd >= 0)
			close(tc->fd);
		free(tc->g_in.p);
		free(tc->h_in.p);
		memset(tc, 0, sizeof(*tc));
		tc->fd = -1;
	}
	g->last_req = NULL;
}

/* Driver start-up (spec 3.1.1), then every rx and event buffer posted and kicked. */
static void g_bringup(struct guest *g)
{
	const uint16_t sizes[3] = { QN_RX, QN_TX, QN_EV };

	wr(g, VIRTIO_MMIO_REG_STATUS, 0);
	g_forget(g);
	memset(g->mem, 0, RX_BASE);
	memset(g->slot_busy, 0, sizeof(g->slot_busy));
	for (unsigned q = 0; q < 3; q++)
		g->q[q] = (struct gq){ .base = 0x10000ULL * (q + 1), .size = sizes[q] };
	wr(g, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(g, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(g, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 0);
	wr(g, VIRTIO_MMIO_REG_DRIVER_FEATURES, 0);
	wr(g, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 1);
	wr(g, VIRTIO_MMIO_REG_DRIVER_FEATURES, 1); /* VIRTIO_F_VERSION_1 */
	wr(g, VIRTIO_MMIO_REG_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK(rd(g, VIRTIO_MMIO_REG_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++)
		g_queue(g, q, sizes[q]);
	for (unsigned k = 0; k < RX_BUFS; k++)
		rx_post(g, k);
	for (unsigned k = 0; k < QN_EV; k++) {
		*q_desc(g, 2, k) = (struct drv_desc){ EV_BASE + 16 * k, 8, VIRTQ_DESC_F_WRITE, 0 };
		q_submit(g, 2, (uint16_t)k);
	}
	wr(g, VIRTIO_MMIO_REG_STATUS, ALL_STATUS);
	CHECK_EQ(rd(g, VIRTIO_MMIO_REG_STATUS), ALL_STATUS);
	q_kick(g, 0);
	q_kick(g, 2);
}

/* ---- the guest's vsock stack ---- */

static struct tconn *tc_find(struct guest *g, uint32_t gport, uint32_t hport)
{
	for (unsigned i = 0; i < TC_MAX; i++)
		if (g->tc[i].used && g->tc[i].gport == gport && g->tc[i].hport == hport)
			return &g->tc[i];
	return NULL;
}

static struct tconn *tc_new(struct guest *g, uint32_t gport, uint32_t hport)
{
	for (unsigned i = 0; i < TC_MAX; i++) {
		struct tconn *tc = &g->tc[i];

		if (!tc->used) {
			free(tc->g_in.p);
			free(tc->h_in.p);
			memset(tc, 0, sizeof(*tc));
			tc->used = 1;
			tc->fd = -1;
			tc->gport = gport;
			tc->hport = hport;
			return tc;
		}
	}
	abort();
}

static void g_dispatch(struct guest *g, const struct hdr *h, const uint8_t *payload)
{
	struct tconn *tc = tc_find(g, h->dst_port, h->src_port);

	if (h->src_cid != VSOCK_HOST_CID || h->dst_cid != CID || h->type != VSOCK_TYPE_STREAM)
		g->bad_pkts++;
	if (!tc && h->op == VSOCK_OP_REQUEST) {
		tc = tc_new(g, h->dst_port, h->src_port);
		tc->requested = 1;
		g->requests++;
		g->last_req = tc;
	} else if (!tc) {
		if (h->op == VSOCK_OP_RST) {
			g->orphan_rst++;
			g->orphan_gport = h->dst_port;
			g->orphan_hport = h->src_port;
		} else {
			g->bad_pkts++;
		}
		return;
	}
	tc->dev_buf_alloc = h->buf_alloc;
	tc->dev_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		tc->responded = 1;
		break;
	case VSOCK_OP_RST:
		tc->rst = 1;
		break;
	case VSOCK_OP_SHUTDOWN:
		tc->shut |= (int)h->flags;
		break;
	case VSOCK_OP_RW:
		buf_add(&tc->g_in, payload, h->len);
		tc->rx_cnt += h->len;
		/* The device may never have more in flight than the window we last told it. */
		if (tc->rx_cnt - tc->fwd_told > G_BUF)
			g->violations++;
		if (!tc->hold)
			tc->fwd_cnt = tc->rx_cnt;
		if (tc->fwd_cnt - tc->fwd_told >= G_BUF / 2)
			tc->owe_update = 1;
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		tc->credit_updates++;
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		tc->credit_requests++;
		tc->owe_update = 1;
		break;
	}
}

static void g_rx_process(struct guest *g)
{
	int posted = 0;

	while (g->q[0].used_seen != q_used_idx(g, 0)) {
		uint32_t *e = q_used_elem(g, 0, g->q[0].used_seen++);
		uint32_t id = e[0], len = e[1];
		unsigned k = id / 2;
		struct hdr h;
		const uint8_t *payload;

		/* Odd ids are the unusable buffers test_hostile posts: back empty, not reposted. */
		if (id % 2 || k >= RX_BUFS) {
			if (id % 2 && len == 0)
				g->rx_bad_returned++;
			else
				g->bad_pkts++;
			continue;
		}
		memcpy(&h, g->mem + rx_buf_gpa(k), HDR);
		payload = g->mem + rx_buf_gpa(k) + (k % 2 == 0 ? 64 : HDR);
		if (len != HDR + h.len || h.len > RX_DATA)
			g->bad_pkts++;
		else
			g_dispatch(g, &h, payload);
		rx_post(g, k);
		posted = 1;
	}
	if (posted)
		q_kick(g, 0);
}

static void g_event_process(struct guest *g)
{
	while (g->q[2].used_seen != q_used_idx(g, 2)) {
		uint32_t *e = q_used_elem(g, 2, g->q[2].used_seen++);

		CHECK_EQ(e[1], 4);
		memcpy(&g->last_event, g->mem + EV_BASE + 16 * e[0], 4);
		g->events++;
	}
}

static void g_reap_tx(struct guest *g)
{
	while (g->q[1].used_seen != q_used_idx(g, 1)) {
		uint32_t *e = q_used_elem(g, 1, g->q[1].used_seen++);

		CHECK_EQ(e[1], 0);
		if (e[0] % 4 == 0 && e[0] / 4 < TX_SLOTS)
			g->slot_busy[e[0] / 4] = 0;
		g->tx_done++;
	}
}

static int g_free_slot(struct guest *g)
{
	for (int s = 0; s < TX_SLOTS; s++)
		if (!g->slot_busy[s])
			return s;
	return -1;
}

/* Puts header and payload, back to back, into a tx slot split into segments of the given
 * lengths (0 allowed), and kicks. Returns 0 when no slot is free. */
static int g_tx_try(struct guest *g, const struct hdr *h, const void *payload, size_t plen,
		    const unsigned *segs, unsigned nsegs)
{
	int s = g_free_slot(g);
	uint64_t gpa, off = 0;

	if (s < 0)
		return 0;
	gpa = TX_BASE + (uint64_t)s * TX_SLOT_SIZE;
	memcpy(g->mem + gpa, h, HDR);
	if (plen)
		memcpy(g->mem + gpa + HDR, payload, plen);
	for (unsigned i = 0; i < nsegs; i++) {
		*q_desc(g, 1, 4 * s + i) = (struct drv_desc){
			gpa + off, segs[i], i + 1 < nsegs ? VIRTQ_DESC_F_NEXT : 0,
			(uint16_t)(4 * s + i + 1) };
		off += segs[i];
	}
	g->slot_busy[s] = 1;
	q_submit(g, 1, (uint16_t)(4 * s));
	q_kick(g, 1);
	return 1;
}

static struct hdr g_hdr(struct tconn *tc, uint16_t op, uint32_t len)
{
	struct hdr h = { CID, VSOCK_HOST_CID, tc->gport, tc->hport, len, VSOCK_TYPE_STREAM, op,
			 0,   G_BUF, tc->fwd_cnt };

	tc->fwd_told = tc->fwd_cnt;
	tc->owe_update = 0;
	return h;
}

static void g_send_owed(struct guest *g)
{
	for (unsigned i = 0; i < TC_MAX; i++) {
		struct tconn *tc = &g->tc[i];
		struct hdr h;
		unsigned seg = HDR;

		if (!tc->used || !tc->owe_update || g_free_slot(g) < 0)
			continue;
		h = g_hdr(tc, VSOCK_OP_CREDIT_UPDATE, 0);
		g_tx_try(g, &h, NULL, 0, &seg, 1);
	}
}

static void g_pump(struct guest *g)
{
	uint8_t tmp[65536];

	for (unsigned i = 0; i < TC_MAX; i++) {
		struct tconn *tc = &g->tc[i];
		ssize_t n;

		if (!tc->used || tc->fd < 0)
			continue;
		while (tc->h_out_off < tc->h_out_len) {
			n = send(tc->fd, tc->h_out + tc->h_out_off, tc->h_out_len - tc->h_out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n <= 0)
				break;
			tc->h_out_off += (size_t)n;
		}
		while (!tc->h_noread && !tc->h_eof) {
			n = recv(tc->fd, tmp, sizeof(tmp), MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0)
				tc->h_eof = 1;
			else
				buf_add(&tc->h_in, tmp, (size_t)n);
		}
	}
}

static void g_step(struct guest *g)
{
	g_reap_tx(g);
	if (!g->rx_paused)
		g_rx_process(g);
	g_event_process(g);
	g_send_owed(g);
	g_pump(g);
}

/* Sleeps until the device raises an interrupt or a client socket is ready, at most 10 ms. */
static void g_sleep(struct guest *g)
{
	struct pollfd pfd[1 + TC_MAX];
	unsigned n = 0;
	uint64_t count;

	pfd[n++] = (struct pollfd){ g->irq_fd, POLLIN, 0 };
	for (unsigned i = 0; i < TC_MAX; i++) {
		struct tconn *tc = &g->tc[i];

		short ev = (short)((tc->h_noread || tc->h_eof ? 0 : POLLIN) |
				   (tc->h_out_off < tc->h_out_len ? POLLOUT : 0));

		if (tc->used && tc->fd >= 0 && ev)
			pfd[n++] = (struct pollfd){ tc->fd, ev, 0 };
	}
	if (poll(pfd, n, 10) > 0 && (pfd[0].revents & POLLIN))
		CHECK_EQ(read(g->irq_fd, &count, sizeof(count)), sizeof(count));
}

#define WAIT_UNTIL(g, cond)                                                                        \
	({                                                                                         \
		double end_ = now() + WAIT_S;                                                      \
		int ok_ = 0;                                                                       \
		for (;;) {                                                                         \
			g_step(g);                                                                 \
			if (cond) {                                                                \
				ok_ = 1;                                                           \
				break;                                                             \
			}                                                                          \
			if (now() > end_)                                                          \
				break;                                                             \
			g_sleep(g);                                                                \
		}                                                                                  \
		ok_;                                                                               \
	})

static int g_tx_idle(struct guest *g)
{
	return g_free_slot(g) >= 0 && g->q[1].used_seen == g->q[1].avail_idx;
}

/* Sends one packet (waiting for a free slot) and waits until the device has taken it. */
static void g_tx_raw(struct guest *g, const struct hdr *h, const void *payload, size_t plen,
		     const unsigned *segs, unsigned nsegs)
{
	CHECK(WAIT_UNTIL(g, g_free_slot(g) >= 0));
	CHECK(g_tx_try(g, h, payload, plen, segs, nsegs));
	CHECK(WAIT_UNTIL(g, g_tx_idle(g)));
}

static void g_tx(struct guest *g, struct tconn *tc, uint16_t op, uint32_t flags, const void *data,
		 uint32_t len)
{
	struct hdr h = g_hdr(tc, op, len);
	unsigned segs[2] = { HDR, len };

	h.flags = flags;
	if (op == VSOCK_OP_RW)
		tc->tx_cnt += len;
	g_tx_raw(g, &h, data, len, segs, len ? 2 : 1);
}

static uint32_t dev_credit(const struct tconn *tc)
{
	return tc->dev_buf_alloc - (tc->tx_cnt - tc->dev_fwd_cnt);
}

/* Sends data as RW packets of at most 4 KiB within the device's credit. Returns the bytes sent;
 * short when the credit stayed at 0 for a while (stall_s). */
static size_t g_send_data(struct guest *g, struct tconn *tc, const uint8_t *data, size_t len,
			  double stall_s)
{
	size_t off = 0;

	while (off < len) {
		double end = now() + stall_s;
		uint32_t chunk;

		while (dev_credit(tc) == 0 && now() < end) {
			g_step(g);
			if (dev_credit(tc) == 0)
				g_sleep(g);
		}
		if (dev_credit(tc) == 0)
			break;
		chunk = dev_credit(tc) < 4096 ? dev_credit(tc) : 4096;
		if (chunk > len - off)
			chunk = (uint32_t)(len - off);
		g_tx(g, tc, VSOCK_OP_RW, 0, data + off, chunk);
		off += chunk;
	}
	return off;
}

/* ---- host clients ---- */

static int client_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		CHECK(0);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void client_say(int fd, const char *s)
{
	CHECK_EQ(send(fd, s, strlen(s), MSG_NOSIGNAL), strlen(s));
}

/* Reads one line byte by byte (nothing after it), or returns -1 at EOF or after the deadline. */
static int client_line(int fd, char *line, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, (int)(WAIT_S * 1000)) != 1 || recv(fd, line + n, 1, 0) != 1)
			return -1;
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	return (int)n;
}

/* Whether the peer closed: EOF (or a reset) within the deadline, with no bytes before it. */
static int client_eof(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;

	if (poll(&p, 1, (int)(WAIT_S * 1000)) != 1)
		return 0;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* A host client connects to guest port `port`; the guest accepts. Returns the connection. */
static struct tconn *tc_open(struct guest *g, uint32_t port)
{
	unsigned before = g->requests;
	char cmd[32], line[32], want[32];
	struct tconn *tc;
	int fd = client_connect(g->path);

	snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port);
	client_say(fd, cmd);
	if (!WAIT_UNTIL(g, g->requests > before)) {
		CHECK(0);
		close(fd);
		return NULL;
	}
	tc = g->last_req;
	CHECK_EQ(tc->gport, port);
	CHECK(tc->hport >= 1u << 30);
	CHECK_EQ(tc->dev_buf_alloc, DEV_WINDOW);
	g_tx(g, tc, VSOCK_OP_RESPONSE, 0, NULL, 0);
	snprintf(want, sizeof(want), "OK %u\n", tc->hport);
	CHECK(client_line(fd, line, sizeof(line)) > 0 && strcmp(line, want) == 0);
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	tc->fd = fd;
	return tc;
}

/* The guest forgets a finished connection: its packets now match nothing on either side. */
static void tc_forget(struct tconn *tc)
{
	tc->used = 0;
	if (tc->fd >= 0)
		close(tc->fd);
	tc->fd = -1;
}

static int h_has(struct tconn *tc, const void *data, size_t len)
{
	return tc->h_in.len >= len && memcmp(tc->h_in.p, data, len) == 0;
}

static int g_has(struct tconn *tc, const void *data, size_t len)
{
	return tc->g_in.len >= len && memcmp(tc->g_in.p, data, len) == 0;
}

/* After this the device has handled everything sent before: a CREDIT_REQUEST is answered in
 * order. */
static void g_sync(struct guest *g, struct tconn *tc)
{
	unsigned before = tc->credit_updates;

	g_tx(g, tc, VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0);
	CHECK(WAIT_UNTIL(g, tc->credit_updates > before));
}

/* ---- the cases ---- */

static void test_registers(struct guest *g)
{
	uint64_t cid = 0;

	CHECK_EQ(rd(g, VIRTIO_MMIO_REG_DEVICE_ID), VIRTIO_ID_VSOCK);
	wr(g, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 0);
	CHECK_EQ(rd(g, VIRTIO_MMIO_REG_DEVICE_FEATURES), 0);
	wr(g, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 1);
	CHECK_EQ(rd(g, VIRTIO_MMIO_REG_DEVICE_FEATURES), 1);
	virtio_mmio_access(&g->t, VIRTIO_MMIO_REG_CONFIG, (uint8_t *)&cid, 8, 0);
	CHECK_EQ(cid, CID);
	cid = 0xffffffff;
	virtio_mmio_access(&g->t, VIRTIO_MMIO_REG_CONFIG + 4, (uint8_t *)&cid, 4, 0);
	CHECK_EQ(cid, 0);
	virtio_mmio_access(&g->t, VIRTIO_MMIO_REG_CONFIG, (uint8_t *)&cid, 8, 1);
	virtio_mmio_access(&g->t, VIRTIO_MMIO_REG_CONFIG, (uint8_t *)&cid, 4, 0);
	CHECK_EQ(cid, CID);
	for (unsigned q = 0; q < 4; q++) {
		wr(g, VIRTIO_MMIO_REG_QUEUE_SEL, q);
		CHECK_EQ(rd(g, VIRTIO_MMIO_REG_QUEUE_NUM_MAX), q < 3 ? 256 : 0);
	}
}

static void test_new_errors(struct guest *g)
{
	char longpath[120];
	struct vsock *v = NULL;

	CHECK_EQ(vsock_new(2, "/tmp/x", g->loop, &v), -EINVAL);
	CHECK_EQ(vsock_new(1ULL << 32, "/tmp/x", g->loop, &v), -EINVAL);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	CHECK_EQ(vsock_new(CID, longpath, g->loop, &v), -ENAMETOOLONG);
	CHECK_EQ(vsock_new(CID, g->path, g->loop, &v), -EADDRINUSE);
	CHECK(v == NULL);
}

/* A client that connects before the driver is up waits for it; then bytes flow both ways. */
static void test_early_client_and_echo(struct guest *g)
{
	char line[32], want[32];
	struct tconn *tc;
	int fd = client_connect(g->path);

	client_say(fd, "CONNECT 1024\nearly bytes");
	g_bringup(g);
	CHECK(WAIT_UNTIL(g, g->requests == 1));
	tc = g->last_req;
	if (!tc) {
		close(fd);
		return;
	}
	CHECK_EQ(tc->gport, 1024);
	CHECK(tc->hport >= 1u << 30);
	CHECK_EQ(g->bad_pkts, 0);
	g_tx(g, tc, VSOCK_OP_RESPONSE, 0, NULL, 0);
	snprintf(want, sizeof(want), "OK %u\n", tc->hport);
	CHECK(client_line(fd, line, sizeof(line)) > 0 && strcmp(line, want) == 0);
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	tc->fd = fd;
	/* The bytes that followed the CONNECT line reach the guest first. */
	CHECK(WAIT_UNTIL(g, tc->g_in.len >= 11));
	CHECK(g_has(tc, "early bytes", 11));
	client_say(fd, "hello");
	CHECK(WAIT_UNTIL(g, tc->g_in.len >= 16));
	CHECK(g_has(tc, "early byteshello", 16));
	g_tx(g, tc, VSOCK_OP_RW, 0, "world!", 6);
	CHECK(WAIT_UNTIL(g, tc->h_in.len >= 6));
	CHECK(h_has(tc, "world!", 6));
	CHECK_EQ(g->violations, 0);
	CHECK_EQ(g->bad_pkts, 0);
}

/* 1 MiB each way: the guest's 64 KiB window makes it send CREDIT_UPDATEs, the device's 256 KiB
 * window makes the device send them. */
static void test_bulk(struct guest *g)
{
	const size_t len = 1 << 20;
	uint8_t *up = malloc(len), *down = malloc(len);
	struct tconn *tc = tc_open(g, 1025);

	if (!tc || !up || !down)
		goto out;
	fill(up, len, 1);
	fill(down, len, 2);
	/* One way at a time, so that no RW packet carries the other side's credit. */
	tc->h_out = up;
	tc->h_out_len = len;
	CHECK(WAIT_UNTIL(g, tc->g_in.len >= len));
	CHECK_EQ(tc->g_in.len, len);
	CHECK(g_has(tc, up, len));
	CHECK_EQ(tc->credit_updates, 0);
	CHECK_EQ(g_send_data(g, tc, down, len, WAIT_S), len);
	CHECK(WAIT_UNTIL(g, tc->h_in.len >= len));
	CHECK_EQ(tc->h_in.len, len);
	CHECK(h_has(tc, down, len));
	/* 1 MiB through a 256 KiB window: at least one update per half window consumed. */
	CHECK(tc->credit_updates >= 3);
	CHECK_EQ(g->violations, 0);
	CHECK_EQ(g->bad_pkts, 0);
out:
	free(up);
	free(down);
}

/* A client that does not read: the device buffers exactly its window, then the guest is out of
 * credit; once the client reads, credit comes back. Then a guest that ignores the credit gets
 * its connection reset. */
static void test_slow_client(struct guest *g)
{
	const size_t len = 4 * DEV_WINDOW;
	uint8_t *data = malloc(len + 1);
	uint64_t drops = vsock_dropped(g->v);
	struct tconn *tc = tc_open(g, 1026);

	if (!tc || !data)
		goto out;
	fill(data, len + 1, 3);
	/* Stop reading; what the socket itself holds is unknown, so fill it first. */
	tc->h_noread = 1;
	{
		size_t sent = g_send_data(g, tc, data, len, 0.5);

		CHECK(sent >= DEV_WINDOW && sent < len);
		CHECK_EQ(dev_credit(tc), 0);
		tc->h_noread = 0;
		CHECK_EQ(g_send_data(g, tc, data + sent, len - sent, WAIT_S), len - sent);
	}
	CHECK(WAIT_UNTIL(g, tc->h_in.len >= len));
	CHECK(h_has(tc, data, len));

	/* Now beyond the window: the device was told nothing, yet gets window + 1 bytes. */
	tc->h_noread = 1;
	{
		size_t sent = g_send_data(g, tc, data, len, 0.5);
		struct hdr h = g_hdr(tc, VSOCK_OP_RW, 1);
		unsigned segs[2] = { HDR, 1 };

		CHECK(sent < len);
		g_tx_raw(g, &h, data, 1, segs, 2);
	}
	CHECK(WAIT_UNTIL(g, tc->rst));
	CHECK_EQ(vsock_dropped(g->v), drops + 1);
	tc->h_noread = 0;
	CHECK(WAIT_UNTIL(g, tc->h_eof));
out:
	free(data);
}

static void test_shutdown(struct guest *g)
{
	struct tconn *a = tc_open(g, 1030), *b = tc_open(g, 1031), *c = tc_open(g, 1032);
	unsigned rst_before;

	if (!a || !b || !c)
		return;
	/* Client half-close: SHUTDOWN(SEND) to the guest; the other way still works. */
	client_say(a->fd, "last words");
	CHECK_EQ(shutdown(a->fd, SHUT_WR), 0);
	CHECK(WAIT_UNTIL(g, a->shut & VSOCK_SHUTDOWN_SEND));
	CHECK_EQ(a->shut, VSOCK_SHUTDOWN_SEND);
	CHECK(g_has(a, "last words", 10));
	g_tx(g, a, VSOCK_OP_RW, 0, "reply", 5);
	/* The guest closes: the client gets the reply, then EOF; the guest gets an RST. */
	g_tx(g, a, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, NULL, 0);
	CHECK(WAIT_UNTIL(g, a->h_eof && a->rst));
	CHECK_EQ(a->h_in.len, 5);
	CHECK(h_has(a, "reply", 5));
	/* Gone: a packet for it is answered with an RST. */
	tc_forget(a);
	rst_before = g->orphan_rst;
	g_tx(g, a, VSOCK_OP_RW, 0, "x", 1);
	CHECK(WAIT_UNTIL(g, g->orphan_rst > rst_before));
	CHECK_EQ(g->orphan_gport, a->gport);
	CHECK_EQ(g->orphan_hport, a->hport);

	/* Client full close: SHUTDOWN(RCV|SEND); the guest answers RST and the connection is
	 * gone. */
	close(b->fd);
	b->fd = -1;
	CHECK(WAIT_UNTIL(g, b->shut == VSOCK_SHUTDOWN_BOTH));
	g_tx(g, b, VSOCK_OP_RST, 0, NULL, 0);
	CHECK(!b->rst);
	tc_forget(b);
	rst_before = g->orphan_rst;
	g_tx(g, b, VSOCK_OP_RW, 0, "x", 1);
	CHECK(WAIT_UNTIL(g, g->orphan_rst > rst_before));

	/* The guest's SHUTDOWN(SEND) is EOF for the client, which can still send. */
	g_tx(g, c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);
	CHECK(WAIT_UNTIL(g, c->h_eof));
	client_say(c->fd, "still here");
	CHECK(WAIT_UNTIL(g, c->g_in.len >= 10));
	CHECK(g_has(c, "still here", 10));
	/* The guest's RST ends it at once: the client's socket is closed under it. */
	g_tx(g, c, VSOCK_OP_RST, 0, NULL, 0);
	CHECK(WAIT_UNTIL(g, send(c->fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
				    errno == EPIPE));
	CHECK(!c->rst);
	tc_forget(c);
	CHECK_EQ(g->bad_pkts, 0);
}

/* Nobody listens on that guest port: the guest answers RST, the client sees EOF before any OK. */
static void test_refused(struct guest *g)
{
	unsigned before = g->requests;
	int fd = client_connect(g->path);

	client_say(fd, "CONNECT 2000\n");
	CHECK(WAIT_UNTIL(g, g->requests > before));
	if (g->last_req)
		g_tx(g, g->last_req, VSOCK_OP_RST, 0, NULL, 0);
	CHECK(client_eof(fd));
	close(fd);
}

/* A client that hangs up before the guest answers: the guest's half-open connection is reset. */
static void test_client_gone_early(struct guest *g)
{
	unsigned before = g->requests;
	int fd = client_connect(g->path);
	struct tconn *tc;

	client_say(fd, "CONNECT 1090\n");
	CHECK(WAIT_UNTIL(g, g->requests > before));
	tc = g->last_req;
	close(fd);
	if (tc)
		CHECK(WAIT_UNTIL(g, tc->rst));
}

/* Bad first lines are refused without bothering the guest; a good one still works after. */
static void test_bad_lines(struct guest *g)
{
	static const char *const lines[] = {
		"HELLO\n",        "CONNECT\n",        "CONNECT abc\n",   "CONNECT 4294967296\n",
		"CONNECT -1\n",   "connect 1024\n",   "CONNECT 12 \n",   "CONNECT  12\n",
		"CONNECT 1024\r\n", "\n",
		"CONNECT 18446744073709552640\n", /* 2^64 + 1024: must not wrap to 1024 */
		"CONNECT 000000000000000000000000000001\n", /* no newline within the limit */
	};
	unsigned before = g->requests;
	int fd;

	for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int eof;

		fd = client_connect(g->path);
		client_say(fd, lines[i]);
		eof = client_eof(fd);
		CHECK(eof);
		if (!eof)
			fprintf(stderr, "  bad line not refused: %s", lines[i]);
		close(fd);
	}
	/* Half a line, then EOF. */
	fd = client_connect(g->path);
	client_say(fd, "CONNECT 10");
	CHECK_EQ(shutdown(fd, SHUT_WR), 0);
	CHECK(client_eof(fd));
	close(fd);
	CHECK(tc_open(g, 1040) != NULL);
	CHECK_EQ(g->requests, before + 1);
}

/* Answers each connection whose client bytes arrived; returns how many were answered. */
static int many_echo(struct guest *g, struct tconn **tcs, int n)
{
	char cmd[32];
	int done = 0;

	for (int i = 0; i < n; i++) {
		struct tconn *tc = tcs[i];

		if (!tc || tc->tx_cnt) {
			done++;
			continue;
		}
		snprintf(cmd, sizeof(cmd), "client %d", i);
		if (tc->g_in.len == strlen(cmd)) {
			CHECK(g_has(tc, cmd, strlen(cmd)));
			cmd[0] = 'C';
			g_tx(g, tc, VSOCK_OP_RW, 0, cmd, (uint32_t)strlen(cmd));
		}
	}
	return done;
}

/* 200 clients at once, each with its own bytes both ways. */
static void test_many(struct guest *g)
{
	enum { N = 200 };
	static int fds[N];
	char cmd[32], line[32];
	unsigned before = g->requests;
	struct tconn *tcs[N] = { 0 };

	for (int i = 0; i < N; i++) {
		fds[i] = client_connect(g->path);
		snprintf(cmd, sizeof(cmd), "CONNECT %u\n", 3000 + i);
		client_say(fds[i], cmd);
	}
	CHECK(WAIT_UNTIL(g, g->requests == before + N));
	for (unsigned i = 0; i < TC_MAX; i++) {
		struct tconn *tc = &g->tc[i];

		if (tc->used && tc->requested && tc->gport >= 3000 && tc->gport < 3000 + N)
			g_tx(g, tc, VSOCK_OP_RESPONSE, 0, NULL, 0);
	}
	for (int i = 0; i < N; i++) {
		unsigned hport = 0;

		CHECK(client_line(fds[i], line, sizeof(line)) > 0 &&
		      sscanf(line, "OK %u\n", &hport) == 1);
		tcs[i] = tc_find(g, 3000 + i, hport);
		CHECK(tcs[i] != NULL);
		if (!tcs[i]) {
			close(fds[i]);
			continue;
		}
		CHECK(fcntl(fds[i], F_SETFL, O_NONBLOCK) == 0);
		tcs[i]->fd = fds[i];
		snprintf(cmd, sizeof(cmd), "client %d", i);
		client_say(fds[i], cmd);
	}
	/* The guest echoes every connection's bytes back, capitalised. */
	CHECK(WAIT_UNTIL(g, many_echo(g, tcs, N) == N));
	for (int i = 0; i < N; i++) {
		snprintf(cmd, sizeof(cmd), "Client %d", i);
		if (tcs[i])
			CHECK(WAIT_UNTIL(g, h_has(tcs[i], cmd, strlen(cmd))));
	}
	/* All clients leave; every connection is shut towards the guest, which resets them. */
	for (int i = 0; i < N; i++) {
		if (!tcs[i])
			continue;
		close(tcs[i]->fd);
		tcs[i]->fd = -1;
	}
	for (int i = 0; i < N; i++) {
		if (!tcs[i])
			continue;
		CHECK(WAIT_UNTIL(g, tcs[i]->shut == VSOCK_SHUTDOWN_BOTH));
		g_tx(g, tcs[i], VSOCK_OP_RST, 0, NULL, 0);
		tc_forget(tcs[i]);
	}
	CHECK_EQ(g->violations, 0);
	CHECK_EQ(g->bad_pkts, 0);
}

/* Each hostile packet is dropped without an answer, counted once, and the good connection goes
 * on; a packet for no connection gets an RST. */
static void test_hostile(struct guest *g)
{
	static uint8_t big[VSOCK_MAX_PAYLOAD + 1];
	struct tconn *tc = tc_open(g, 1050);
	uint64_t drops = vsock_dropped(g->v);
	unsigned rst_before = g->orphan_rst, n_bad = 0;
	struct hdr h;
	unsigned two[2] = { HDR, 10 }, one[1] = { HDR };

	if (!tc)
		return;
#define BAD(field, value, payload, plen, segs, nsegs)                                              \
	do {                                                                                       \
		h = g_hdr(tc, VSOCK_OP_RW, plen);                                                  \
		h.field = value;                                                                   \
		g_tx_raw(g, &h, payload, plen, segs, nsegs);                                       \
		n_bad++;                                                                           \
		g_sync(g, tc);                                                                     \
		CHECK_EQ(vsock_dropped(g->v), drops + n_bad);                                      \
		CHECK_EQ(g->orphan_rst, rst_before);                                               \
		CHECK(!tc->rst);                                                                   \
	} while (0)

	BAD(src_cid, CID + 1, "0123456789", 10, two, 2);
	BAD(src_cid, CID | 1ULL << 32, "0123456789", 10, two, 2);
	BAD(dst_cid, 3, "0123456789", 10, two, 2);
	BAD(dst_cid, VSOCK_HOST_CID | 1ULL << 32, "0123456789", 10, two, 2);
	BAD(type, 2, "0123456789", 10, two, 2);
	BAD(op, 0, NULL, 0, one, 1);
	BAD(op, 8, NULL, 0, one, 1);
	BAD(op, 0xffff, NULL, 0, one, 1);
	/* len says more, or less, than the buffer holds. */
	BAD(len, 100, "0123456789", 10, two, 2);
	BAD(len, 4, "0123456789", 10, two, 2);
	BAD(len, 0xffffffff, "0123456789", 10, two, 2);
	/* A payload on an op that takes none. */
	BAD(op, VSOCK_OP_CREDIT_UPDATE, "0123456789", 10, two, 2);
	/* 64 KiB + 1. */
	{
		unsigned segs[2] = { HDR, sizeof(big) };

		BAD(len, sizeof(big), big, sizeof(big), segs, 2);
	}
	/* Shorter than a header. */
	{
		unsigned segs[1] = { 20 };

		BAD(op, VSOCK_OP_RW, NULL, 0, segs, 1);
	}
	CHECK_EQ(g->bad_pkts, 0);
#undef BAD

	/* rx buffers that cannot carry a packet (a bare header, a zero-length descriptor) come back
	 * empty; the first is counted. Descriptors 3 and 7 are free: buffers 1 and 3 use one. */
	*q_desc(g, 0, 3) = (struct drv_desc){ EV_BASE + 0x1000, HDR, VIRTQ_DESC_F_WRITE, 0 };
	*q_desc(g, 0, 7) = (struct drv_desc){ EV_BASE + 0x2000, 0, VIRTQ_DESC_F_WRITE, 0 };
	q_submit(g, 0, 3);
	q_submit(g, 0, 7);
	q_kick(g, 0);
	for (unsigned i = 0; i < RX_BUFS + 2 && g->rx_bad_returned < 2; i++)
		g_sync(g, tc);
	CHECK_EQ(g->rx_bad_returned, 2);
	CHECK_EQ(vsock_dropped(g->v), drops + ++n_bad);
	CHECK_EQ(g->bad_pkts, 0);

	/* The header split over three descriptors, the payload sharing the third, and a
	 * zero-length descriptor in the middle: all fine. */
	{
		unsigned segs[4] = { 10, 0, 20, 14 + 8 };

		h = g_hdr(tc, VSOCK_OP_RW, 8);
		tc->tx_cnt += 8;
		g_tx_raw(g, &h, "split-ok", 8, segs, 4);
		CHECK(WAIT_UNTIL(g, tc->h_in.len >= 8));
		CHECK(h_has(tc, "split-ok", 8));
	}
	/* A chain of zero-length descriptors only: handed back by the queue, nothing else. */
	{
		unsigned segs[2] = { 0, 0 };

		h = g_hdr(tc, VSOCK_OP_RW, 0);
		g_tx_raw(g, &h, NULL, 0, segs, 2);
	}
	/* A packet for no connection, and a REQUEST to a host port nobody serves: RST each. */
	{
		struct tconn ghost = { .gport = 777, .hport = 1u << 30 | 12345 };

		h = g_hdr(&ghost, VSOCK_OP_RW, 3);
		g_tx_raw(g, &h, "abc", 3, (unsigned[]){ HDR, 3 }, 2);
		CHECK(WAIT_UNTIL(g, g->orphan_rst == rst_before + 1));
		CHECK_EQ(g->orphan_gport, 777);
		CHECK_EQ(g->orphan_hport, 1u << 30 | 12345);
		ghost.hport = 9;
		h = g_hdr(&ghost, VSOCK_OP_REQUEST, 0);
		g_tx_raw(g, &h, NULL, 0, one, 1);
		CHECK(WAIT_UNTIL(g, g->orphan_rst == rst_before + 2));
		CHECK_EQ(g->orphan_hport, 9);
		/* An RST for no connection is not answered. */
		h = g_hdr(&ghost, VSOCK_OP_RST, 0);
		g_tx_raw(g, &h, NULL, 0, one, 1);
	}
	g_sync(g, tc);
	CHECK_EQ(g->orphan_rst, rst_before + 2);
	CHECK_EQ(vsock_dropped(g->v), drops + n_bad);

	/* The good connection is intact both ways. */
	g_tx(g, tc, VSOCK_OP_RW, 0, "still-good", 10);
	client_say(tc->fd, "me too");
	CHECK(WAIT_UNTIL(g, tc->h_in.len >= 18 && tc->g_in.len >= 6));
	CHECK(h_has(tc, "split-okstill-good", 18));
	CHECK(g_has(tc, "me too", 6));
	CHECK(!tc->rst);

	/* Protocol breaches on a live connection reset it: data before RESPONSE, a second
	 * REQUEST. */
	{
		unsigned before = g->requests;
		int fd = client_connect(g->path);
		struct tconn *bad;

		client_say(fd, "CONNECT 1051\n");
		CHECK(WAIT_UNTIL(g, g->requests > before));
		bad = g->last_req;
		g_tx(g, bad, VSOCK_OP_RW, 0, "early", 5);
		CHECK(WAIT_UNTIL(g, bad->rst));
		CHECK(client_eof(fd));
		close(fd);
	}
	g_tx(g, tc, VSOCK_OP_REQUEST, 0, NULL, 0);
	CHECK(WAIT_UNTIL(g, tc->rst && tc->h_eof));
}

/* The guest connects to the host: bridged to "<path>_<port>" when something listens there. */
static void test_guest_connect(struct guest *g)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	unsigned rst_before = g->orphan_rst;
	struct tconn *tc, *none;
	int lfd, fd;
	char got[8] = { 0 };

	CHECK(snprintf(a.sun_path, sizeof(a.sun_path), "%s_5000", g->path) <
	      (int)sizeof(a.sun_path));
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 4) == 0);

	tc = tc_new(g, 40000, 5000);
	g_tx(g, tc, VSOCK_OP_REQUEST, 0, NULL, 0);
	CHECK(WAIT_UNTIL(g, tc->responded));
	CHECK_EQ(tc->dev_buf_alloc, DEV_WINDOW);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(fd >= 0);
	g_tx(g, tc, VSOCK_OP_RW, 0, "ping", 4);
	CHECK_EQ(recv(fd, got, 4, MSG_WAITALL), 4);
	CHECK(memcmp(got, "ping", 4) == 0);
	CHECK_EQ(send(fd, "pong", 4, MSG_NOSIGNAL), 4);
	CHECK(WAIT_UNTIL(g, tc->g_in.len >= 4));
	CHECK(g_has(tc, "pong", 4));
	g_tx(g, tc, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, NULL, 0);
	CHECK(WAIT_UNTIL(g, tc->rst));
	CHECK(client_eof(fd));
	close(fd);

	/* Nobody on port 5001. */
	none = tc_new(g, 40001, 5001);
	g_tx(g, none, VSOCK_OP_REQUEST, 0, NULL, 0);
	CHECK(WAIT_UNTIL(g, none->rst));
	CHECK(!none->responded);
	CHECK_EQ(g->orphan_rst, rst_before);
	close(lfd);
	unlink(a.sun_path);
}

/* REQUESTs to unknown ports while the guest reads no rx buffers: refusals wait for rx buffers
 * (64 posted, 64 in the device's RST ring), then the device stops taking tx packets; none is
 * lost once the guest reads again. */
static void test_request_flood(struct guest *g)
{
	enum { N = 200 };
	unsigned rst_before = g->orphan_rst, sent = 0, done_before;
	struct tconn ghost = { .gport = 50000, .hport = 7000 };
	double end;

	CHECK(WAIT_UNTIL(g, g_tx_idle(g)));
	done_before = g->tx_done;
	g->rx_paused = 1;
	end = now() + 1.0;
	while (sent < N && now() < end) {
		struct hdr h = g_hdr(&ghost, VSOCK_OP_REQUEST, 0);
		unsigned one[1] = { HDR };

		g_step(g);
		if (g_tx_try(g, &h, NULL, 0, one, 1)) {
			sent++;
			ghost.gport++;
		} else {
			g_sleep(g);
		}
	}
	g_step(g);
	CHECK_EQ(g->tx_done - done_before, 2 * 64);
	CHECK_EQ(g->orphan_rst, rst_before);
	g->rx_paused = 0;
	while (sent < N) {
		struct hdr h = g_hdr(&ghost, VSOCK_OP_REQUEST, 0);
		unsigned one[1] = { HDR };

		g_tx_raw(g, &h, NULL, 0, one, 1);
		sent++;
		ghost.gport++;
	}
	CHECK(WAIT_UNTIL(g, g->orphan_rst == rst_before + N));
	CHECK_EQ(g->orphan_rst, rst_before + N);
	CHECK(tc_open(g, 1060) != NULL);
}

/* vsock_send_transport_reset, run on the device thread: the event reaches the guest and every
 * connection is gone. */
static void test_transport_reset(struct guest *g)
{
	struct tconn *a = tc_open(g, 1070), *b = tc_open(g, 1071);
	unsigned events = g->events, rst_before = g->orphan_rst;
	uint64_t one = 1;

	if (!a || !b)
		return;
	CHECK_EQ(write(g->treset_fd, &one, sizeof(one)), sizeof(one));
	CHECK(WAIT_UNTIL(g, g->events == events + 1));
	CHECK_EQ(g->last_event, VSOCK_EVENT_TRANSPORT_RESET);
	CHECK(WAIT_UNTIL(g, a->h_eof && b->h_eof));
	/* The guest, told of the reset, forgets its connections; the device already did. */
	tc_forget(a);
	tc_forget(b);
	g_tx(g, a, VSOCK_OP_RW, 0, "x", 1);
	CHECK(WAIT_UNTIL(g, g->orphan_rst == rst_before + 1));
	CHECK(tc_open(g, 1072) != NULL);
}

/* The driver resets the device: the guest's connections end for their clients; a client whose
 * REQUEST never went out is served by the next driver. */
static void test_device_reset(struct guest *g)
{
	struct tconn *a = tc_open(g, 1080);
	char line[32], want[32];
	unsigned before;
	int fd, afd;

	if (!a)
		return;
	g->rx_paused = 1;
	afd = dup(a->fd);
	wr(g, VIRTIO_MMIO_REG_STATUS, 0);
	CHECK(client_eof(afd));
	close(afd);
	/* The driver is down: this one waits. */
	fd = client_connect(g->path);
	client_say(fd, "CONNECT 1081\n");
	g->rx_paused = 0;
	g_bringup(g);
	before = g->requests;
	CHECK(WAIT_UNTIL(g, g->requests == before + 1));
	if (g->last_req) {
		CHECK_EQ(g->last_req->gport, 1081);
		g_tx(g, g->last_req, VSOCK_OP_RESPONSE, 0, NULL, 0);
		snprintf(want, sizeof(want), "OK %u\n", g->last_req->hport);
		CHECK(client_line(fd, line, sizeof(line)) > 0 && strcmp(line, want) == 0);
	}
	close(fd);
}

/* ---- set-up ---- */

static void on_kick(void *opaque, uint32_t events)
{
	struct kick *k = opaque;
	uint64_t n;

	if (read(k->fd, &n, sizeof(n)) == sizeof(n))
		virtio_mmio_kick(k->t, k->q);
}

static void on_treset(void *opaque, uint32_t events)
{
	struct guest *g = opaque;
	uint64_t n;

	if (read(g->treset_fd, &n, sizeof(n)) == sizeof(n))
		vsock_send_transport_reset(g->v);
}

static void *device_thread(void *arg)
{
	struct guest *g = arg;

	CHECK_EQ(evloop_run(g->loop), 0);
	return NULL;
}

static int g_init(struct guest *g)
{
	int rc = 0;

	memset(g, 0, sizeof(*g));
	for (unsigned i = 0; i < TC_MAX; i++)
		g->tc[i].fd = -1;
	snprintf(g->dir, sizeof(g->dir), "/tmp/sbx-vsock-XXXXXX");
	if (!mkdtemp(g->dir))
		return -errno;
	snprintf(g->path, sizeof(g->path), "%s/vsock.sock", g->dir);
	g->mem = calloc(1, MEM_SIZE);
	g->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	g->treset_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!g->mem || g->irq_fd < 0 || g->treset_fd < 0 || evloop_new(&g->loop) < 0)
		return -ENOMEM;
	guest_mem_init_buffer(&g->gm, g->mem, MEM_SIZE);
	rc = vsock_new(CID, g->path, g->loop, &g->v);
	if (rc < 0)
		return rc;
	virtio_mmio_init(&g->t, &vsock_ops, g->v, &g->gm, 0xd0000000, 16, g->irq_fd);
	for (unsigned q = 0; q < 3; q++) {
		g->kicks[q] = (struct kick){ &g->t, q, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
		rc = rc ?: evloop_add(g->loop, g->kicks[q].fd, EPOLLIN, on_kick, &g->kicks[q]);
	}
	rc = rc ?: evloop_add(g->loop, g->treset_fd, EPOLLIN, on_treset, g);
	return rc ?: -pthread_create(&g->thread, NULL, device_thread, g);
}

static void g_fini(struct guest *g)
{
	evloop_stop(g->loop);
	pthread_join(g->thread, NULL);
	g_forget(g);
	vsock_ops.free(g->v);
	virtio_mmio_destroy(&g->t);
	evloop_free(g->loop);
	for (unsigned q = 0; q < 3; q++)
		close(g->kicks[q].fd);
	close(g->irq_fd);
	close(g->treset_fd);
	free(g->mem);
	CHECK_EQ(access(g->path, F_OK), -1); /* the device removed its socket */
	CHECK_EQ(rmdir(g->dir), 0);
}

int main(void)
{
	static struct guest g;
	int rc = g_init(&g);

	CHECK_EQ(rc, 0);
	if (rc < 0)
		return TEST_SUMMARY();
	test_registers(&g);
	test_new_errors(&g);
	test_early_client_and_echo(&g);
	test_bulk(&g);
	test_slow_client(&g);
	test_shutdown(&g);
	test_refused(&g);
	test_client_gone_early(&g);
	test_bad_lines(&g);
	test_many(&g);
	test_hostile(&g);
	test_guest_connect(&g);
	test_request_flood(&g);
	test_transport_reset(&g);
	test_device_reset(&g);
	g_fini(&g);
	return TEST_SUMMARY();
}
