/* virtio-net: the device ops, the two queues, the backend and the injection queue. */
#define _GNU_SOURCE
#include "net.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mmio.h"
#include "util/evloop.h"
#include "util/log.h"
#include "virtio_ids.h"

/* Tags in our epoll set. */
#define NET_TAG_BACKEND 1
#define NET_TAG_WAKE 2
/* Reads from the backend land here first, so the true length of any frame is known (a tap's
 * largest, MTU 65535, included) before a guest buffer is chosen for it. */
#define NET_RX_BOUNCE (65536 + 64)

/* The header in front of every frame (VERSION_1 layout: num_buffers always present). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == VIRTIO_NET_HDR_LEN, "virtio_net_hdr layout");

/* Config space (spec 5.1.4) up to mtu; max_virtqueue_pairs belongs to MQ, which we do not offer,
 * and reads as 1. */
struct virtio_net_config_space {
	uint8_t mac[PKT_MAC_LEN];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_net_config_space) == 12, "virtio-net config layout");

/* What gets logged once and counted ever after. */
enum net_drop {
	NET_DROP_TX_CHAIN,
	NET_DROP_TX_WRITABLE,
	NET_DROP_TX_SIZE,
	NET_DROP_TX_OFFLOAD,
	NET_DROP_TX_BACKEND,
	NET_DROP_RX_BUFFER,
	NET_DROP_RX_TOO_BIG,
	NET_DROP_RX_RUNT,
	NET_DROP_INJECT_FULL,
	NET_DROP_KINDS
};

static const char *const net_drop_names[NET_DROP_KINDS] = {
	[NET_DROP_TX_CHAIN] = "malformed TX chain",
	[NET_DROP_TX_WRITABLE] = "TX chain with writable descriptors",
	[NET_DROP_TX_SIZE] = "TX frame shorter than its headers or above the MTU",
	[NET_DROP_TX_OFFLOAD] = "TX header asks for an offload we never offered",
	[NET_DROP_TX_BACKEND] = "backend refused a frame",
	[NET_DROP_RX_BUFFER] = "unusable RX buffer",
	[NET_DROP_RX_TOO_BIG] = "frame larger than the guest's RX buffer",
	[NET_DROP_RX_RUNT] = "backend frame shorter than an Ethernet header",
	[NET_DROP_INJECT_FULL] = "injection queue full",
};

struct net_inject {
	size_t len;
	uint8_t data[VIRTIO_NET_RX_FRAME_MAX];
};

struct virtio_net {
	uint8_t mac[PKT_MAC_LEN];
	int backend_fd;
	struct egress *egress;
	virtio_net_local_fn local;
	void *local_user;

	struct evloop *loop;
	int loop_added;
	int epfd, wake_fd;
	uint32_t backend_events; /* what epfd watches the backend for now */
	int rx_poll;             /* want EPOLLIN: the guest has RX buffers and the driver is up */
	int tx_poll;             /* want EPOLLOUT: a frame waits for room in the backend */
	int backend_dead;

	struct virtio_mmio *t;  /* set by activate (vCPU thread): atomic */
	unsigned reset_epoch;   /* bumped by reset (vCPU thread): atomic */
	unsigned seen_epoch;
	unsigned notify_runs;   /* queue_notify calls: tells whether a kick reached the device */
	int tx_more;            /* the last TX run stopped at its budget */

	struct virtq_req tx_req, rx_req;
	int tx_blocked;         /* tx_req's frame (in tx_buf) passed the filter; the backend was full */
	size_t tx_len;
	int rx_held;            /* rx_req was popped and waits for a frame that fits */
	uint8_t tx_buf[VIRTIO_NET_HDR_LEN + VIRTIO_NET_TX_FRAME_MAX];
	uint8_t *rx_buf;        /* NET_RX_BOUNCE bytes */
	size_t rx_len;

	pthread_mutex_t inject_lock;
	struct net_inject inject[VIRTIO_NET_INJECT_MAX];
	unsigned inject_head, inject_count;

	struct virtio_net_stats stats; /* atomic adds */
	uint8_t logged[NET_DROP_KINDS];
};

_Static_assert(sizeof(struct virtio_net_stats) % sizeof(uint64_t) == 0, "stats are all uint64_t");

#define NET_COUNT(n, field, v) __atomic_fetch_add(&(n)->stats.field, (v), __ATOMIC_RELAXED)

/* Device thread, or any thread for NET_DROP_INJECT_FULL: the once-flag is only a log filter. */
static void net_drop(struct virtio_net *n, enum net_drop why)
{
	if (!__atomic_exchange_n(&n->logged[why], 1, __ATOMIC_RELAXED))
		vmm_log("virtio-net: %s (further ones only counted)", net_drop_names[why]);
}

void virtio_net_get_stats(const struct virtio_net *n, struct virtio_net_stats *out)
{
	const uint64_t *src = (const uint64_t *)&n->stats;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void net_wake(struct virtio_net *n)
{
	uint64_t one = 1;
	ssize_t r = write(n->wake_fd, &one, sizeof(one));

	(void)r; /* a full counter still wakes the loop */
}

/* Watches the backend for what rx_poll and tx_poll ask. Device thread. */
static void net_backend_update(struct virtio_net *n)
{
	struct epoll_event ev = { .data.u64 = NET_TAG_BACKEND };

	ev.events = (n->rx_poll ? EPOLLIN : 0) | (n->tx_poll ? EPOLLOUT : 0);
	if (n->backend_dead || ev.events == n->backend_events)
		return;
	if (epoll_ctl(n->epfd, EPOLL_CTL_MOD, n->backend_fd, &ev) < 0) {
		vmm_log("virtio-net: watching the backend: %m");
		return;
	}
	n->backend_events = ev.events;
}

/* Out of the epoll set for good: hang-ups and errors are reported whatever the event mask, so
 * a dead backend left in it would wake the thread forever. */
static void net_backend_dead(struct virtio_net *n, const char *why)
{
	vmm_log("virtio-net: %s; no more frames through the backend", why);
	n->backend_dead = 1;
	epoll_ctl(n->epfd, EPOLL_CTL_DEL, n->backend_fd, NULL);
}

static void net_inject_flush(struct virtio_net *n)
{
	pthread_mutex_lock(&n->inject_lock);
	n->inject_count = 0;
	pthread_mutex_unlock(&n->inject_lock);
}

/* Acts on a reset of the device by the driver: whatever was popped from the old rings is gone. */
static void net_sync(struct virtio_net *n)
{
	unsigned epoch = __atomic_load_n(&n->reset_epoch, __ATOMIC_ACQUIRE);

	if (epoch == n->seen_epoch)
		return;
	n->seen_epoch = epoch;
	n->rx_held = 0;
	n->tx_more = 0;
	n->tx_blocked = 0;
	n->tx_poll = 0;
	net_backend_update(n);
	net_inject_flush(n);
}

/* ---- TX ---- */

/* Writes the frame in tx_buf. 0 when it is done with (written, or dropped on a hard error),
 * -EAGAIN when the backend has no room: the caller keeps the chain and waits for EPOLLOUT. */
static int net_tx_write(struct virtio_net *n)
{
	ssize_t w;

	do
		w = write(n->backend_fd, n->tx_buf + VIRTIO_NET_HDR_LEN, n->tx_len);
	while (w < 0 && errno == EINTR);
	if (w < 0 && (errno == EAGAIN || errno == ENOBUFS) && !n->backend_dead)
		return -EAGAIN;
	if (w != (ssize_t)n->tx_len) {
		net_drop(n, NET_DROP_TX_BACKEND);
		NET_COUNT(n, tx_backend_errors, 1);
		return 0;
	}
	NET_COUNT(n, tx_frames, 1);
	NET_COUNT(n, tx_bytes, n->tx_len);
	return 0;
}

/* Checks one TX chain and sends its frame where the policy says. 0, or -EAGAIN as above. */
static int net_tx_one(struct virtio_net *n, const struct virtq_req *r)
{
	struct virtio_net_hdr h;

	if (r->n_in) {
		net_drop(n, NET_DROP_TX_WRITABLE);
		NET_COUNT(n, tx_dropped, 1);
		return 0;
	}
	if (r->out_len < VIRTIO_NET_HDR_LEN + PKT_ETH_HLEN ||
	    r->out_len > VIRTIO_NET_HDR_LEN + VIRTIO_NET_TX_FRAME_MAX) {
		net_drop(n, NET_DROP_TX_SIZE);
		NET_COUNT(n, tx_dropped, 1);
		return 0;
	}
	/* One copy: what the filter checks is exactly what is written, whatever the guest does to
	 * its buffer meanwhile. */
	n->tx_len = virtq_req_read(r, 0, n->tx_buf, r->out_len) - VIRTIO_NET_HDR_LEN;
	memcpy(&h, n->tx_buf, sizeof(h));
	if (h.flags || h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		net_drop(n, NET_DROP_TX_OFFLOAD);
		NET_COUNT(n, tx_dropped, 1);
		return 0;
	}
	switch (egress_check(n->egress, n->tx_buf + VIRTIO_NET_HDR_LEN, n->tx_len,
			     egress_now_ms())) {
	case EGRESS_PASS:
		return net_tx_write(n);
	case EGRESS_LOCAL:
		NET_COUNT(n, tx_local, 1);
		if (n->local)
			n->local(n->local_user, n->tx_buf + VIRTIO_NET_HDR_LEN, n->tx_len);
		return 0;
	case EGRESS_DENY:
		NET_COUNT(n, tx_denied, 1);
		return 0;
	}
	return 0;
}

static void net_tx_run(struct virtio_net *n)
{
	struct virtq *q = virtio_mmio_queue(n->t, VIRTIO_NET_QUEUE_TX);
	unsigned done = 0;
	int ret;

	n->tx_more = 0;
	if (!q) {
		n->tx_poll = 0;
		net_backend_update(n);
		return;
	}
	/* A frame that found the backend full goes first, already judged by the policy. */
	if (n->tx_blocked) {
		if (net_tx_write(n) == -EAGAIN)
			goto blocked;
		n->tx_blocked = 0;
		virtq_push(q, n->tx_req.head, 0);
		done++;
	}
	while (done < VIRTIO_NET_TX_BUDGET && (ret = virtio_mmio_pop(n->t, q, &n->tx_req)) != 0) {
		/* A rejected chain (-EINVAL) was already completed by virtq_pop. */
		if (ret < 0) {
			done++;
			net_drop(n, NET_DROP_TX_CHAIN);
			NET_COUNT(n, tx_dropped, 1);
			continue;
		}
		if (net_tx_one(n, &n->tx_req) == -EAGAIN) {
			n->tx_blocked = 1;
			goto blocked;
		}
		virtq_push(q, n->tx_req.head, 0);
		done++;
	}
	n->tx_poll = 0;
	net_backend_update(n);
	if (done)
		virtio_mmio_notify_used(n->t, VIRTIO_NET_QUEUE_TX);
	if (done == VIRTIO_NET_TX_BUDGET) {
		/* More may wait: continue on the loop's next turn, after the other fds. */
		n->tx_more = 1;
		NET_COUNT(n, tx_yields, 1);
		net_wake(n);
	}
	return;
blocked:
	/* The chain stays with us, so the guest sees its ring fill up and stops: flow control. */
	NET_COUNT(n, tx_blocked, 1);
	n->tx_poll = 1;
	net_backend_update(n);
	if (done)
		virtio_mmio_notify_used(n->t, VIRTIO_NET_QUEUE_TX);
}

/* ---- RX ---- */

/* Takes the next frame into rx_buf: 1 when there is one, 0 when none waits, -1 when a bad one was
 * thrown away (it counts against the budget like a good one). */
static int net_rx_next(struct virtio_net *n)
{
	ssize_t got;
	int injected = 0;

	pthread_mutex_lock(&n->inject_lock);
	if (n->inject_count) {
		struct net_inject *f = &n->inject[n->inject_head];

		memcpy(n->rx_buf, f->data, f->len);
		n->rx_len = f->len;
		n->inject_head = (n->inject_head + 1) % VIRTIO_NET_INJECT_MAX;
		n->inject_count--;
		injected = 1;
	}
	pthread_mutex_unlock(&n->inject_lock);
	if (injected)
		return 1;
	if (n->backend_dead)
		return 0;
	do
		got = read(n->backend_fd, n->rx_buf, NET_RX_BOUNCE);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		/* Anything but "nothing now" means the tap is gone: polling it would spin. */
		if (errno != EAGAIN)
			net_backend_dead(n, "reading the backend failed");
		return 0;
	}
	if ((size_t)got < PKT_ETH_HLEN) {
		net_drop(n, NET_DROP_RX_RUNT);
		NET_COUNT(n, rx_dropped, 1);
		return -1;
	}
	if ((size_t)got > VIRTIO_NET_RX_FRAME_MAX) {
		net_drop(n, NET_DROP_RX_TOO_BIG);
		NET_COUNT(n, rx_too_big, 1);
		return -1;
	}
	n->rx_len = (size_t)got;
	return 1;
}

/* Holds the next usable RX chain in rx_req: 1, or 0 when the ring is empty. *pushed is set when
 * unusable chains went back to the driver. */
static int net_rx_buffer(struct virtio_net *n, struct virtq *q, int *pushed)
{
	while (!n->rx_held) {
		int ret = virtio_mmio_pop(n->t, q, &n->rx_req);

		if (ret == 0)
			return 0;
		if (ret > 0 && !n->rx_req.n_out && n->rx_req.in_len >= VIRTIO_NET_HDR_LEN) {
			n->rx_held = 1;
			break;
		}
		/* Readable descriptors, or no room for even the header: back unused. A rejected
		 * chain (-EINVAL) was already completed by virtq_pop. */
		if (ret > 0)
			virtq_push(q, n->rx_req.head, 0);
		*pushed = 1;
		net_drop(n, NET_DROP_RX_BUFFER);
		NET_COUNT(n, rx_bad_buffers, 1);
	}
	return 1;
}

static void net_rx_run(struct virtio_net *n)
{
	struct virtq *q = virtio_mmio_queue(n->t, VIRTIO_NET_QUEUE_RX);
	const struct virtio_net_hdr h = { .num_buffers = htole16(1) };
	int pushed = 0, starved = 0, got;
	unsigned i;

	/* No RX queue (the driver may disable it at any time): nothing to poll for. */
	if (!q) {
		n->rx_poll = 0;
		net_backend_update(n);
		return;
	}
	/* A buffer first, then a frame: without buffers, frames stay where they are (the backend's
	 * queue, the injection queue) instead of being taken and held. */
	for (i = 0; i < VIRTIO_NET_RX_BUDGET; i++) {
		if (!net_rx_buffer(n, q, &pushed)) {
			starved = 1;
			break;
		}
		got = net_rx_next(n);
		if (got == 0)
			break;
		if (got < 0)
			continue;
		if (VIRTIO_NET_HDR_LEN + n->rx_len > n->rx_req.in_len) {
			/* No merging of buffers: the frame is lost, the chain waits for the next. */
			net_drop(n, NET_DROP_RX_TOO_BIG);
			NET_COUNT(n, rx_too_big, 1);
			continue;
		}
		virtq_req_write(&n->rx_req, 0, &h, sizeof(h));
		virtq_req_write(&n->rx_req, VIRTIO_NET_HDR_LEN, n->rx_buf, n->rx_len);
		/* in_len fits 32 bits (virtq_pop checks), and the frame fits in_len. */
		virtq_push(q, n->rx_req.head, (uint32_t)(VIRTIO_NET_HDR_LEN + n->rx_len));
		n->rx_held = 0;
		pushed = 1;
		NET_COUNT(n, rx_frames, 1);
		NET_COUNT(n, rx_bytes, n->rx_len);
	}
	if (pushed)
		virtio_mmio_notify_used(n->t, VIRTIO_NET_QUEUE_RX);
	/* No buffers: stop polling until the guest kicks the RX queue with new ones. */
	if (starved && n->rx_poll)
		NET_COUNT(n, rx_starved, 1);
	n->rx_poll = !starved;
	net_backend_update(n);
	if (i == VIRTIO_NET_RX_BUDGET)
		net_wake(n);
}

/* ---- device ops ---- */

static void net_queue_notify(void *dev, unsigned qi)
{
	struct virtio_net *n = dev;
	int injected;

	n->notify_runs++;
	net_sync(n);
	if (qi == VIRTIO_NET_QUEUE_TX) {
		net_tx_run(n);
		/* The local callback may have queued an answer. */
		pthread_mutex_lock(&n->inject_lock);
		injected = n->inject_count > 0;
		pthread_mutex_unlock(&n->inject_lock);
		if (!injected)
			return;
	}
	net_rx_run(n);
}

/* Device thread: the backend has frames or room, or the wake eventfd fired (activate, reset, an
 * injected frame, a run that stopped at its budget). The rings are only touched through
 * virtio_mmio_kick, which serialises with resets and does nothing while the driver is not up. */
static void net_on_events(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	struct virtio_mmio *t = __atomic_load_n(&n->t, __ATOMIC_ACQUIRE);
	struct epoll_event evs[2];
	int k = epoll_wait(n->epfd, evs, 2, 0), woken = 0, readable = 0, writable = 0;
	unsigned runs = n->notify_runs;
	uint64_t count;

	for (int i = 0; i < k; i++) {
		if (evs[i].data.u64 == NET_TAG_WAKE) {
			woken = read(n->wake_fd, &count, sizeof(count)) == sizeof(count);
		} else if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
			net_backend_dead(n, "the backend hung up");
		} else {
			readable = !!(evs[i].events & EPOLLIN);
			writable = !!(evs[i].events & EPOLLOUT);
		}
	}
	/* Nothing ready any more: a queue kick earlier in this loop turn already ran the device
	 * and took what the backend had. That says nothing of the driver; what to watch stays. */
	if (!woken && !readable && !writable)
		return;
	if (t && (writable || (woken && (n->tx_more || n->tx_blocked))))
		virtio_mmio_kick(t, VIRTIO_NET_QUEUE_TX);
	if (t && (woken || readable))
		virtio_mmio_kick(t, VIRTIO_NET_QUEUE_RX);
	/* The driver is not running (not yet, resetting, or needs a reset): watch nothing, or a
	 * level-triggered backend would spin; the next activate wakes us. */
	if (n->notify_runs == runs) {
		n->rx_poll = 0;
		n->tx_poll = 0;
		net_backend_update(n);
	}
}

static uint64_t net_features(void *dev)
{
	return VIRTIO_NET_F_MAC | VIRTIO_NET_F_MTU;
}

static void net_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = dev;
	struct virtio_net_config_space c = {
		.status = htole16(VIRTIO_NET_S_LINK_UP),
		.max_virtqueue_pairs = htole16(1),
		.mtu = htole16(VIRTIO_NET_MTU),
	};

	memcpy(c.mac, n->mac, PKT_MAC_LEN);
	memset(data, 0, len);
	if (offset >= sizeof(c))
		return;
	memcpy(data, (const uint8_t *)&c + offset,
	       sizeof(c) - offset < len ? sizeof(c) - offset : len);
}

static void net_config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	/* The MAC is read-only in virtio 1.x (no CTRL_MAC_ADDR), and so is the rest. */
}

static int net_activate(void *dev, struct virtio_mmio *t)
{
	struct virtio_net *n = dev;

	__atomic_store_n(&n->t, t, __ATOMIC_RELEASE);
	net_wake(n);
	return 0;
}

/* vCPU thread: the device thread forgets what it holds from the old rings (net_sync) before it
 * next touches one, which cannot happen before this returns (the transport holds notify_lock). */
static void net_reset(void *dev)
{
	struct virtio_net *n = dev;

	__atomic_fetch_add(&n->reset_epoch, 1, __ATOMIC_RELEASE);
	net_wake(n);
}

static void net_free(void *dev)
{
	struct virtio_net *n = dev;

	if (!n)
		return;
	if (n->loop_added)
		evloop_del(n->loop, n->epfd);
	if (n->epfd >= 0)
		close(n->epfd);
	if (n->wake_fd >= 0)
		close(n->wake_fd);
	if (n->backend_fd >= 0)
		close(n->backend_fd);
	pthread_mutex_destroy(&n->inject_lock);
	free(n->rx_buf);
	free(n);
}

int virtio_net_inject(struct virtio_net *n, const uint8_t *frame, size_t len)
{
	struct net_inject *f;

	if (len < PKT_ETH_HLEN || len > VIRTIO_NET_RX_FRAME_MAX)
		return -EMSGSIZE;
	pthread_mutex_lock(&n->inject_lock);
	if (n->inject_count == VIRTIO_NET_INJECT_MAX) {
		pthread_mutex_unlock(&n->inject_lock);
		net_drop(n, NET_DROP_INJECT_FULL);
		NET_COUNT(n, inject_refused, 1);
		return -ENOSPC;
	}
	f = &n->inject[(n->inject_head + n->inject_count) % VIRTIO_NET_INJECT_MAX];
	memcpy(f->data, frame, len);
	f->len = len;
	n->inject_count++;
	pthread_mutex_unlock(&n->inject_lock);
	net_wake(n);
	return 0;
}

static int net_open(struct virtio_net *n)
{
	struct epoll_event ev = { .events = 0, .data.u64 = NET_TAG_BACKEND };
	int flags = fcntl(n->backend_fd, F_GETFL);

	if (flags < 0 || fcntl(n->backend_fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	n->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->epfd < 0 || n->wake_fd < 0)
		return -errno;
	/* Registered idle: polling starts once the driver is up (activate wakes us). */
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->backend_fd, &ev) < 0)
		return -errno;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = NET_TAG_WAKE };
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->wake_fd, &ev) < 0)
		return -errno;
	return 0;
}

int virtio_net_new(const struct virtio_net_config *cfg, struct evloop *loop,
		   struct virtio_net **out)
{
	struct virtio_net *n;
	int rc;

	if (!cfg->egress || cfg->backend_fd < 0 || !virtio_net_mac_ok(cfg->mac)) {
		if (cfg->backend_fd >= 0)
			close(cfg->backend_fd);
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		close(cfg->backend_fd);
		return -ENOMEM;
	}
	memcpy(n->mac, cfg->mac, PKT_MAC_LEN);
	n->backend_fd = cfg->backend_fd;
	n->egress = cfg->egress;
	n->local = cfg->local;
	n->local_user = cfg->local_user;
	n->loop = loop;
	n->epfd = n->wake_fd = -1;
	pthread_mutex_init(&n->inject_lock, NULL);
	n->rx_buf = malloc(NET_RX_BOUNCE);
	rc = n->rx_buf ? net_open(n) : -ENOMEM;
	if (rc == 0)
		rc = evloop_add(loop, n->epfd, EPOLLIN, net_on_events, n);
	if (rc < 0) {
		net_free(n);
		return rc;
	}
	n->loop_added = 1;
	*out = n;
	return 0;
}

/* Snapshot, the device thread paused: a held RX buffer and a TX frame that waited for room in
 * the backend go back to their rings (the frame is popped and judged again when the device runs
 * on), so the saved indices cover completed chains only. Frames waiting for injection are not
 * saved: to the guest, packets lost. */
static void net_quiesce(void *dev)
{
	struct virtio_net *n = dev;
	struct virtio_mmio *t = __atomic_load_n(&n->t, __ATOMIC_ACQUIRE);
	struct virtq *rx = t ? virtio_mmio_queue(t, VIRTIO_NET_QUEUE_RX) : NULL;
	struct virtq *tx = t ? virtio_mmio_queue(t, VIRTIO_NET_QUEUE_TX) : NULL;

	if (n->rx_held && rx) {
		virtq_unpop(rx);
		n->rx_held = 0;
	}
	if (n->tx_blocked && tx) {
		virtq_unpop(tx);
		n->tx_blocked = 0;
	}
}

const struct virtio_dev_ops virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max_size = VIRTIO_NET_QUEUE_SIZE,
	.features = net_features,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.free = net_free,
	.quiesce = net_quiesce,
};
