/* The guest half of the vsock device: device ops, the three virtqueues and the stream protocol
 * (spec 5.10.6). The host half (Unix sockets) is vsock_host.c. */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"
#include "virtio_ids.h"
#include "vsock_internal.h"

#define VSOCK_QUEUE_SIZE 256
/* Ports we connect from; Linux guests take theirs below this, so the two never meet. */
#define VSOCK_FIRST_LOCAL_PORT (1u << 30)

void vsock_count_drop(struct vsock *v, enum vsock_drop why)
{
	__atomic_fetch_add(&v->drops, 1, __ATOMIC_RELAXED);
	/* Once per kind: a hostile guest must not be able to flood the log. */
	if (!v->drop_logged[why])
		vmm_log("vsock: dropped a guest packet: %s (further ones only counted)",
			vsock_drop_name(why));
	v->drop_logged[why] = 1;
}

uint64_t vsock_dropped(const struct vsock *v)
{
	return __atomic_load_n(&v->drops, __ATOMIC_RELAXED);
}

/* The client may have bytes for the guest, and both ends still want the stream that way. */
static int vsock_conn_has_input(const struct vsock_conn *c)
{
	return c->state == VSOCK_CONN_ESTABLISHED && c->fd >= 0 && c->readable &&
	       !(c->host_shut & VSOCK_SHUTDOWN_SEND) && !(c->guest_shut & VSOCK_SHUTDOWN_RCV);
}

static int vsock_conn_may_send_data(const struct vsock_conn *c)
{
	return vsock_conn_has_input(c) && vsock_conn_peer_credit(c) > 0;
}

void vsock_conn_schedule(struct vsock *v, struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_FREE)
		return;
	/* Data waits but the guest gave no credit: ask once (spec 5.10.6.3); the guest's answer,
	 * or any packet it sends, carries new credit. */
	if (vsock_conn_has_input(c) && vsock_conn_peer_credit(c) == 0 && !c->credit_requested) {
		c->pend |= VSOCK_PEND_CREDIT_REQUEST;
		c->credit_requested = 1;
	}
	if (c->pend || c->host_shut != c->host_shut_sent || vsock_conn_may_send_data(c))
		vsock_conn_ready_push(&v->conns, c);
}

void vsock_conn_free(struct vsock *v, struct vsock_conn *c)
{
	vsock_host_close(v, c);
	vsock_conn_release(&v->conns, c);
}

/* Ends c with an RST, sent as soon as the guest gives an rx buffer; the slot lives until then so
 * the RST cannot be lost. */
static void vsock_conn_reset(struct vsock *v, struct vsock_conn *c)
{
	vsock_host_close(v, c);
	c->state = VSOCK_CONN_RESETTING;
	c->pend = VSOCK_PEND_RST;
	vsock_conn_ready_push(&v->conns, c);
}

void vsock_conn_drop(struct vsock *v, struct vsock_conn *c)
{
	if (c->known)
		vsock_conn_reset(v, c);
	else
		vsock_conn_free(v, c);
}

void vsock_conn_settle(struct vsock *v, struct vsock_conn *c)
{
	if (c->state != VSOCK_CONN_ESTABLISHED || c->buf_len)
		return;
	if ((c->guest_shut & VSOCK_SHUTDOWN_SEND) && c->fd >= 0 && !c->shut_wr) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr = 1;
	}
	if (c->guest_shut == VSOCK_SHUTDOWN_BOTH)
		vsock_conn_reset(v, c);
}

void vsock_conn_host_shut(struct vsock *v, struct vsock_conn *c, uint8_t flags)
{
	c->host_shut |= flags;
	if (flags & VSOCK_SHUTDOWN_RCV) {
		/* What waited for the client is lost; counting it as passed on keeps the guest's
		 * window moving until it acts on our SHUTDOWN. */
		c->fwd_cnt += c->buf_len;
		c->buf_len = 0;
		c->buf_head = 0;
	}
	if (c->host_shut == VSOCK_SHUTDOWN_BOTH)
		vsock_host_close(v, c);
	vsock_conn_settle(v, c);
}

static uint32_t vsock_alloc_port(struct vsock *v, uint32_t guest_port)
{
	for (;;) {
		uint32_t port = v->next_port++;

		if (v->next_port == 0)
			v->next_port = VSOCK_FIRST_LOCAL_PORT;
		/* Ends: the table holds far fewer connections than the port range. */
		if (!vsock_conn_find(&v->conns, guest_port, port))
			return port;
	}
}

void vsock_conn_connect_guest(struct vsock *v, struct vsock_conn *c, uint32_t port)
{
	c->guest_port = port;
	c->host_port = vsock_alloc_port(v, port);
	c->state = VSOCK_CONN_CONNECTING;
	c->pend = VSOCK_PEND_REQUEST;
	/* Stream bytes may have followed the CONNECT line. */
	c->readable = 1;
	vsock_conn_hash(&v->conns, c);
	vsock_conn_schedule(v, c);
}

/* Drops every connection, or only those the guest knew about: after a device reset it remembers
 * none of them, while clients whose REQUEST was not sent yet can wait for the new driver. */
static void vsock_drop_conns(struct vsock *v, int only_known)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns.slots[i];

		if (c->state != VSOCK_CONN_FREE && (c->known || !only_known))
			vsock_conn_free(v, c);
	}
	v->rst_count = 0;
}

void vsock_sync(struct vsock *v)
{
	unsigned epoch = __atomic_load_n(&v->reset_epoch, __ATOMIC_ACQUIRE);

	if (epoch == v->seen_epoch)
		return;
	v->seen_epoch = epoch;
	v->rx_held = 0;
	v->event_pending = 0;
	vsock_drop_conns(v, 1);
}

void vsock_kick(struct vsock *v)
{
	struct virtio_mmio *t = __atomic_load_n(&v->t, __ATOMIC_ACQUIRE);

	/* The transport runs queue_notify only while the driver is up, serialised with resets. */
	if (t && (v->conns.ready_head || v->rst_count))
		virtio_mmio_kick(t, VSOCK_QUEUE_RX);
}

static void vsock_rst_push(struct vsock *v, uint32_t guest_port, uint32_t host_port)
{
	struct vsock_rst *e = &v->rst[(v->rst_head + v->rst_count) % VSOCK_RST_RING];

	e->guest_port = guest_port;
	e->host_port = host_port;
	v->rst_count++;
}

/* A guest connecting to host port P: bridged to "<uds>_<P>" when something listens there. */
static int vsock_guest_connect(struct vsock *v, const struct vsock_pkt *p)
{
	struct vsock_conn *c = vsock_conn_alloc(&v->conns);

	if (!c)
		return -ENOSPC;
	c->guest_port = p->src_port;
	c->host_port = p->dst_port;
	if (vsock_host_connect(v, c, p->dst_port) < 0) {
		vsock_conn_release(&v->conns, c);
		return -ECONNREFUSED;
	}
	c->state = VSOCK_CONN_ESTABLISHED;
	c->known = 1;
	c->readable = 1;
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	c->pend = VSOCK_PEND_RESPONSE;
	vsock_conn_hash(&v->conns, c);
	vsock_conn_schedule(v, c);
	return 0;
}

static void vsock_conn_guest_data(struct vsock *v, struct vsock_conn *c,
				  const struct virtq_req *r, uint32_t len)
{
	/* Beyond the credit we gave: the stream cannot be kept whole, so it ends. */
	if (!vsock_conn_window_fits(c, len)) {
		vsock_count_drop(v, VSOCK_DROP_CREDIT);
		vsock_conn_drop(v, c);
		return;
	}
	if (vsock_host_send(v, c, r, len) < 0)
		vsock_conn_drop(v, c);
}

static void vsock_conn_guest_shutdown(struct vsock *v, struct vsock_conn *c, uint32_t flags)
{
	c->guest_shut |= (uint8_t)(flags & VSOCK_SHUTDOWN_BOTH);
	if ((c->guest_shut & VSOCK_SHUTDOWN_RCV) && c->fd >= 0) {
		/* The client's writes now fail instead of piling up unread. */
		shutdown(c->fd, SHUT_RD);
		if (c->hup)
			vsock_conn_host_shut(v, c, VSOCK_SHUTDOWN_SEND);
	}
	vsock_conn_settle(v, c);
}

/* A well-formed packet for a connection the guest knows. Any protocol breach resets it. */
static void vsock_conn_guest_packet(struct vsock *v, struct vsock_conn *c,
				    const struct virtq_req *r, const struct vsock_pkt *p)
{
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	if (vsock_conn_peer_credit(c) > 0)
		c->credit_requested = 0;
	if (p->op == VSOCK_OP_RST) {
		vsock_conn_free(v, c);
		return;
	}
	if (c->state == VSOCK_CONN_CONNECTING) {
		if (p->op != VSOCK_OP_RESPONSE || vsock_host_send_ok(c) < 0) {
			vsock_conn_drop(v, c);
			return;
		}
		c->state = VSOCK_CONN_ESTABLISHED;
	} else {
		switch (p->op) {
		case VSOCK_OP_SHUTDOWN:
			vsock_conn_guest_shutdown(v, c, p->flags);
			break;
		case VSOCK_OP_RW:
			if (c->guest_shut & VSOCK_SHUTDOWN_SEND)
				vsock_conn_drop(v, c);
			else
				vsock_conn_guest_data(v, c, r, p->len);
			break;
		case VSOCK_OP_CREDIT_UPDATE:
			break;
		case VSOCK_OP_CREDIT_REQUEST:
			c->pend |= VSOCK_PEND_CREDIT_UPDATE;
			break;
		default: /* REQUEST or RESPONSE on a live connection */
			vsock_conn_drop(v, c);
			break;
		}
	}
	vsock_conn_schedule(v, c);
}

static void vsock_tx_packet(struct vsock *v, const struct virtq_req *r)
{
	struct vsock_pkt p;
	enum vsock_drop why = vsock_pkt_parse(r, v->guest_cid, &p);
	struct vsock_conn *c;

	if (why != VSOCK_DROP_NONE) {
		vsock_count_drop(v, why);
		return;
	}
	c = vsock_conn_find(&v->conns, p.src_port, p.dst_port);
	if (c && c->known && c->state != VSOCK_CONN_RESETTING) {
		vsock_conn_guest_packet(v, c, r, &p);
		return;
	}
	/* Our RST is on its way; the guest's own ends the connection just as well. */
	if (c && c->state == VSOCK_CONN_RESETTING) {
		if (p.op == VSOCK_OP_RST)
			vsock_conn_free(v, c);
		return;
	}
	/* No connection the guest could know of. A new one keeps state only if a host socket
	 * accepted it; anything else gets an RST (never an RST for an RST). */
	if (p.op == VSOCK_OP_RST)
		return;
	if (!c && p.op == VSOCK_OP_REQUEST && vsock_guest_connect(v, &p) == 0)
		return;
	vsock_rst_push(v, p.src_port, p.dst_port);
}

/* Takes guest tx packets until the ring is empty; returns 1 if it stopped early because the RST
 * ring is full (refusals must wait for rx buffers). */
static int vsock_tx_process(struct vsock *v)
{
	struct virtq *q = virtio_mmio_queue(v->t, VSOCK_QUEUE_TX);
	int ret, completed = 0, blocked = 0;

	if (!q)
		return 0;
	for (;;) {
		if (v->rst_count == VSOCK_RST_RING) {
			blocked = 1;
			break;
		}
		ret = virtio_mmio_pop(v->t, q, &v->tx_req);
		if (ret == 0)
			break;
		/* A rejected chain (-EINVAL) was already completed by virtq_pop. */
		if (ret > 0) {
			vsock_tx_packet(v, &v->tx_req);
			virtq_push(q, v->tx_req.head, 0);
		}
		completed = 1;
	}
	if (completed)
		virtio_mmio_notify_used(v->t, VSOCK_QUEUE_TX);
	return blocked;
}

static void vsock_pkt_init(struct vsock *v, struct vsock_pkt *p, uint32_t guest_port,
			   uint32_t host_port, uint16_t op)
{
	*p = (struct vsock_pkt){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = v->guest_cid,
		.src_port = host_port,
		.dst_port = guest_port,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
	};
}

static uint32_t vsock_emit_rst(struct vsock *v, const struct virtq_req *r)
{
	struct vsock_rst *e = &v->rst[v->rst_head];
	struct vsock_pkt p;

	vsock_pkt_init(v, &p, e->guest_port, e->host_port, VSOCK_OP_RST);
	vsock_pkt_write(r, &p);
	v->rst_head = (v->rst_head + 1) % VSOCK_RST_RING;
	v->rst_count--;
	return VSOCK_HDR_SIZE;
}

/* Writes c's next packet into r, most urgent first; data goes before SHUTDOWN so that the guest
 * gets every byte before the end of the stream. Returns the used length, 0 if c had nothing. */
static uint32_t vsock_conn_emit(struct vsock *v, struct vsock_conn *c, const struct virtq_req *r)
{
	struct vsock_pkt p;
	uint8_t pend = c->pend;

	vsock_pkt_init(v, &p, c->guest_port, c->host_port, 0);
	if (pend & VSOCK_PEND_RST) {
		p.op = VSOCK_OP_RST;
		vsock_pkt_write(r, &p);
		vsock_conn_free(v, c);
		return VSOCK_HDR_SIZE;
	}
	if (pend & VSOCK_PEND_REQUEST) {
		p.op = VSOCK_OP_REQUEST;
		c->known = 1;
		c->pend &= (uint8_t)~VSOCK_PEND_REQUEST;
	} else if (pend & VSOCK_PEND_RESPONSE) {
		p.op = VSOCK_OP_RESPONSE;
		c->pend &= (uint8_t)~VSOCK_PEND_RESPONSE;
	} else if (vsock_conn_may_send_data(c)) {
		p.len = vsock_host_recv(v, c, r);
		if (!p.len)
			return 0;
		p.op = VSOCK_OP_RW;
		c->tx_cnt += p.len;
	} else if (c->host_shut != c->host_shut_sent) {
		p.op = VSOCK_OP_SHUTDOWN;
		p.flags = c->host_shut;
		c->host_shut_sent = c->host_shut;
	} else if (pend & VSOCK_PEND_CREDIT_UPDATE) {
		p.op = VSOCK_OP_CREDIT_UPDATE;
	} else if (pend & VSOCK_PEND_CREDIT_REQUEST) {
		p.op = VSOCK_OP_CREDIT_REQUEST;
		c->pend &= (uint8_t)~VSOCK_PEND_CREDIT_REQUEST;
	} else {
		return 0;
	}
	/* Every packet carries our credit, so it also answers any owed CREDIT_UPDATE. */
	p.buf_alloc = VSOCK_BUF_ALLOC;
	p.fwd_cnt = c->fwd_cnt;
	c->fwd_cnt_sent = c->fwd_cnt;
	c->pend &= (uint8_t)~VSOCK_PEND_CREDIT_UPDATE;
	vsock_pkt_write(r, &p);
	return VSOCK_HDR_SIZE + p.len;
}

/* Fills guest rx buffers with owed RSTs and with the ready connections' packets, one packet per
 * connection per turn. */
static void vsock_rx_fill(struct vsock *v)
{
	struct virtq *q = virtio_mmio_queue(v->t, VSOCK_QUEUE_RX);
	int pushed = 0;

	if (!q)
		return;
	while (v->rst_count || v->conns.ready_head) {
		struct virtq_req *r = &v->rx_req;
		struct vsock_conn *c;
		uint32_t used;

		if (!v->rx_held) {
			int ret = virtio_mmio_pop(v->t, q, r);

			if (ret == 0)
				break;
			pushed = 1;
			if (ret < 0)
				continue;
			/* Room for a header and at least one byte, or it could carry no data. */
			if (r->in_len <= VSOCK_HDR_SIZE) {
				vsock_count_drop(v, VSOCK_DROP_RX_BUF);
				virtq_push(q, r->head, 0);
				continue;
			}
			v->rx_held = 1;
		}
		if (v->rst_count) {
			used = vsock_emit_rst(v, r);
		} else {
			c = vsock_conn_ready_pop(&v->conns);
			used = vsock_conn_emit(v, c, r);
			vsock_conn_schedule(v, c);
		}
		if (used) {
			/* used <= in_len, which virtq_pop keeps within 32 bits. */
			virtq_push(q, r->head, used);
			v->rx_held = 0;
			pushed = 1;
		}
	}
	if (pushed)
		virtio_mmio_notify_used(v->t, VSOCK_QUEUE_RX);
}

static void vsock_event_fill(struct vsock *v)
{
	struct virtq *q = virtio_mmio_queue(v->t, VSOCK_QUEUE_EVENT);
	uint32_t id = htole32(VSOCK_EVENT_TRANSPORT_RESET);
	int pushed = 0;

	while (q && v->event_pending) {
		int ret = virtio_mmio_pop(v->t, q, &v->ev_req);

		if (ret == 0)
			break;
		pushed = 1;
		if (ret < 0)
			continue;
		if (v->ev_req.in_len < sizeof(id)) {
			virtq_push(q, v->ev_req.head, 0);
			continue;
		}
		virtq_req_write(&v->ev_req, 0, &id, sizeof(id));
		virtq_push(q, v->ev_req.head, sizeof(id));
		v->event_pending = 0;
	}
	if (pushed)
		virtio_mmio_notify_used(v->t, VSOCK_QUEUE_EVENT);
}

static void vsock_queue_notify(void *dev, unsigned qi)
{
	struct vsock *v = dev;
	int blocked;

	vsock_sync(v);
	if (qi == VSOCK_QUEUE_EVENT) {
		vsock_event_fill(v);
		return;
	}
	/* New rx buffers may unblock tx (full RST ring) and new tx packets may owe rx packets. */
	do {
		blocked = vsock_tx_process(v);
		vsock_rx_fill(v);
	} while (blocked && v->rst_count < VSOCK_RST_RING);
}

void vsock_send_transport_reset(struct vsock *v)
{
	struct virtio_mmio *t = __atomic_load_n(&v->t, __ATOMIC_ACQUIRE);

	vsock_drop_conns(v, 0);
	v->event_pending = 1;
	if (t)
		virtio_mmio_kick(t, VSOCK_QUEUE_EVENT);
}

static uint64_t vsock_features(void *dev)
{
	return 0; /* VIRTIO_F_VERSION_1, which the transport adds, and stream sockets only */
}

static void vsock_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct vsock *v = dev;
	uint64_t cid = htole64(v->guest_cid);

	memset(data, 0, len);
	if (offset >= sizeof(cid))
		return;
	memcpy(data, (const uint8_t *)&cid + offset,
	       sizeof(cid) - offset < len ? sizeof(cid) - offset : len);
}

static void vsock_config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	/* guest_cid is read-only. */
}

/* vCPU thread, under the transport lock: publish the transport, let the device thread send what
 * waited for the driver. */
static int vsock_activate(void *dev, struct virtio_mmio *t)
{
	struct vsock *v = dev;

	__atomic_store_n(&v->t, t, __ATOMIC_RELEASE);
	vsock_host_wake(v);
	return 0;
}

/* vCPU thread: the device thread drops the guest's connections (vsock_sync) before it next
 * touches a ring, which cannot happen before this returns (the transport holds notify_lock). */
static void vsock_reset(void *dev)
{
	struct vsock *v = dev;

	__atomic_fetch_add(&v->reset_epoch, 1, __ATOMIC_RELEASE);
	vsock_host_wake(v);
}

/* The device thread is paused: an rx buffer held for a client with nothing to read goes back
 * to the ring, so the snapshot's indices cover completed buffers only. */
static void vsock_quiesce(void *dev)
{
	struct vsock *v = dev;
	struct virtio_mmio *t = __atomic_load_n(&v->t, __ATOMIC_ACQUIRE);
	struct virtq *q = t ? virtio_mmio_queue(t, VSOCK_QUEUE_RX) : NULL;

	if (v->rx_held && q) {
		virtq_unpop(q);
		v->rx_held = 0;
	}
}

/* Restored from a snapshot: no host connection survived, so the guest must drop its own
 * (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET; listening sockets stay). Sent on the first kick of the
 * event queue, which the VMM replays once the device thread runs. */
static void vsock_restored(void *dev)
{
	struct vsock *v = dev;

	v->event_pending = 1;
}

static void vsock_free(void *dev)
{
	struct vsock *v = dev;

	if (!v)
		return;
	vsock_drop_conns(v, 0);
	vsock_host_shutdown(v);
	free(v);
}

int vsock_new(uint64_t guest_cid, const char *uds_path, struct evloop *loop, struct vsock **out)
{
	struct vsock *v;
	int rc;

	/* 0-2 are reserved and VMADDR_CID_ANY is -1U; Linux keeps CIDs in 32 bits. */
	if (guest_cid < 3 || guest_cid > 0xfffffffeULL)
		return -EINVAL;
	if (strlen(uds_path) + sizeof("_4294967295") > sizeof(v->uds_path))
		return -ENAMETOOLONG;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->guest_cid = guest_cid;
	strcpy(v->uds_path, uds_path);
	v->loop = loop;
	v->epfd = v->listen_fd = v->wake_fd = -1;
	v->next_port = VSOCK_FIRST_LOCAL_PORT;
	vsock_conns_init(&v->conns);
	rc = vsock_host_open(v);
	if (rc < 0) {
		vsock_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = 3,
	.queue_max_size = VSOCK_QUEUE_SIZE,
	.features = vsock_features,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
	.activate = vsock_activate,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_reset,
	.free = vsock_free,
	.quiesce = vsock_quiesce,
	.restored = vsock_restored,
};
