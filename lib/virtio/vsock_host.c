/* The host half of the vsock device: the Unix listener, the "CONNECT <port>" handshake, client
 * socket events, and moving bytes between client sockets and guest buffers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "vsock_internal.h"

/* Tags in our epoll set: a connection is its slot index (low half) and generation (high half). */
#define VSOCK_TAG_LISTENER 0xffffffffu
#define VSOCK_TAG_WAKE 0xfffffffeu

#define VSOCK_LISTEN_BACKLOG 128
/* Longer than "CONNECT 4294967295\n" (19 bytes) with room to spare; a longer line is refused. */
#define VSOCK_LINE_MAX 32
/* Edge-triggered: readiness is kept in the connection, so pausing a client (no credit, no rx
 * buffers) costs no epoll_ctl, which matters with hundreds of connections. */
#define VSOCK_CLIENT_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

static int vsock_host_watch(struct vsock *v, struct vsock_conn *c)
{
	struct epoll_event ev = { .events = VSOCK_CLIENT_EVENTS };

	ev.data.u64 = (uint64_t)c->gen << 32 | (uint32_t)(c - v->conns.slots);
	return epoll_ctl(v->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

static void vsock_host_listen_ctl(struct vsock *v, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = VSOCK_TAG_LISTENER };

	if (epoll_ctl(v->epfd, EPOLL_CTL_MOD, v->listen_fd, &ev) < 0)
		vmm_log("vsock: watching the listener: %m");
}

void vsock_host_close(struct vsock *v, struct vsock_conn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (v->listen_paused) {
		v->listen_paused = 0;
		vsock_host_listen_ctl(v, EPOLLIN);
	}
}

static void vsock_host_accept(struct vsock *v)
{
	for (;;) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of fds or memory: the level-triggered listener would spin, so it
			 * sleeps until a client closes. */
			if (errno != EAGAIN) {
				vmm_log("vsock: accept on %s: %m; pausing the listener",
					v->uds_path);
				v->listen_paused = 1;
				vsock_host_listen_ctl(v, 0);
			}
			return;
		}
		c = vsock_conn_alloc(&v->conns);
		if (!c) {
			if (!v->full_logged)
				vmm_log("vsock: %d connections open; refusing clients",
					VSOCK_MAX_CONNS);
			v->full_logged = 1;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = VSOCK_CONN_HANDSHAKE;
		if (vsock_host_watch(v, c) < 0) {
			vmm_log("vsock: watching a client: %m");
			vsock_conn_free(v, c);
		}
	}
}

/* "CONNECT <port>" with a plain decimal port that fits 32 bits, nothing else. */
static int vsock_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char prefix[] = "CONNECT ";
	const size_t plen = sizeof(prefix) - 1;
	uint64_t val = 0;

	if (len <= plen || len - plen > 10 || memcmp(line, prefix, plen) != 0)
		return -EINVAL;
	for (size_t i = plen; i < len; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		val = val * 10 + (uint64_t)(line[i] - '0');
	}
	if (val > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)val;
	return 0;
}

/* Reads the client's first line. It is only peeked until complete, then exactly the line is
 * consumed: whatever follows is stream data for the guest and stays in the socket. */
static void vsock_host_handshake(struct vsock *v, struct vsock_conn *c)
{
	char line[VSOCK_LINE_MAX];
	ssize_t n, want;
	uint32_t port;
	char *nl;

	do
		n = recv(c->fd, line, sizeof(line), MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0)
		goto refuse;
	nl = memchr(line, '\n', (size_t)n);
	if (!nl) {
		if (n == sizeof(line) || c->rdhup || c->hup)
			goto refuse;
		return;
	}
	want = nl - line + 1;
	if (recv(c->fd, line, (size_t)want, 0) != want)
		goto refuse;
	if (vsock_parse_connect(line, (size_t)want - 1, &port) < 0)
		goto refuse;
	vsock_conn_connect_guest(v, c, port);
	return;
refuse:
	vsock_conn_free(v, c);
}

static ssize_t vsock_host_sendv(int fd, struct iovec *iov, unsigned n)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };
	ssize_t w;

	/* MSG_NOSIGNAL: a client that went away is an EPIPE to handle, not a signal. */
	do
		w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	return w;
}

/* Writes buffered guest bytes to the client while it takes them. */
static void vsock_host_flush(struct vsock *v, struct vsock_conn *c)
{
	struct iovec iov[2];

	while (c->buf_len && c->writable) {
		ssize_t w = vsock_host_sendv(c->fd, iov, vsock_conn_buf_peek(c, iov));

		if (w < 0) {
			if (errno == EAGAIN) {
				c->writable = 0;
				break;
			}
			vsock_conn_host_shut(v, c, VSOCK_SHUTDOWN_RCV);
			return;
		}
		vsock_conn_buf_consume(c, (size_t)w);
		c->fwd_cnt += (uint32_t)w;
	}
	vsock_conn_check_credit(c);
	vsock_conn_settle(v, c);
}

int vsock_host_send(struct vsock *v, struct vsock_conn *c, const struct virtq_req *r, uint32_t len)
{
	size_t done = 0;
	unsigned n;

	c->rx_cnt += len;
	/* Nobody to give it to: it counts as passed on, so the window stays sane until the guest
	 * acts on our SHUTDOWN. */
	if (c->host_shut & VSOCK_SHUTDOWN_RCV) {
		c->fwd_cnt += len;
		return 0;
	}
	/* Straight from guest memory into the socket, unless older bytes are still waiting. */
	if (!c->buf_len && c->writable) {
		ssize_t w;

		n = virtq_iov_slice(r->iov, r->n_out, VSOCK_HDR_SIZE, len, v->iov);
		w = vsock_host_sendv(c->fd, v->iov, n);
		if (w < 0 && errno != EAGAIN) {
			c->fwd_cnt += len;
			vsock_conn_host_shut(v, c, VSOCK_SHUTDOWN_RCV);
			return 0;
		}
		if (w < 0)
			c->writable = 0;
		done = w > 0 ? (size_t)w : 0;
		c->fwd_cnt += (uint32_t)done;
	}
	if (done < len) {
		n = virtq_iov_slice(r->iov, r->n_out, VSOCK_HDR_SIZE + done, len - done, v->iov);
		if (vsock_conn_buf_put(c, v->iov, n, len - done) < 0)
			return -ENOMEM;
	}
	vsock_conn_check_credit(c);
	return 0;
}

uint32_t vsock_host_recv(struct vsock *v, struct vsock_conn *c, const struct virtq_req *r)
{
	uint64_t room = r->in_len - VSOCK_HDR_SIZE;
	uint32_t want = vsock_conn_peer_credit(c);
	ssize_t got;
	unsigned n;

	if (want > VSOCK_MAX_PAYLOAD)
		want = VSOCK_MAX_PAYLOAD;
	if (want > room)
		want = (uint32_t)room;
	n = virtq_iov_slice(r->iov + r->n_out, r->n_in, VSOCK_HDR_SIZE, want, v->iov);
	do
		got = readv(c->fd, v->iov, (int)n);
	while (got < 0 && errno == EINTR);
	if (got > 0)
		return (uint32_t)got;
	c->readable = 0;
	/* EOF, or the client broke the connection: it will send nothing more. */
	if (got == 0 || errno != EAGAIN)
		vsock_conn_host_shut(v, c, VSOCK_SHUTDOWN_SEND |
						   (c->hup || got < 0 ? VSOCK_SHUTDOWN_RCV : 0));
	return 0;
}

int vsock_host_send_ok(struct vsock_conn *c)
{
	char line[24];
	int len = snprintf(line, sizeof(line), "OK %u\n", c->host_port);

	/* The first bytes on a fresh socket: short only if the client is gone. */
	return send(c->fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) == len ? 0 : -EPIPE;
}

int vsock_host_connect(struct vsock *v, struct vsock_conn *c, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, rc;

	/* vsock_new made sure the longest suffix fits; this only reassures the compiler. */
	if (snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", v->uds_path, port) >=
	    (int)sizeof(a.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix connect completes at once or fails (EAGAIN: the listener's backlog is full). */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	c->fd = fd;
	rc = vsock_host_watch(v, c);
	if (rc < 0)
		vsock_host_close(v, c);
	return rc;
}

static void vsock_host_event(struct vsock *v, struct vsock_conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if (events & EPOLLRDHUP)
		c->rdhup = 1;
	if (events & (EPOLLHUP | EPOLLERR))
		c->hup = 1;
	if (events & EPOLLOUT)
		c->writable = 1;

	switch (c->state) {
	case VSOCK_CONN_HANDSHAKE:
		vsock_host_handshake(v, c);
		return;
	case VSOCK_CONN_CONNECTING:
		/* A half-close is fine (the client may wait for "OK"); a hang-up is not. */
		if (c->hup)
			vsock_conn_drop(v, c);
		return;
	case VSOCK_CONN_ESTABLISHED:
		if (c->hup) {
			/* It can take nothing more; and if the guest reads no more either, nothing
			 * more will be read from it. */
			vsock_conn_host_shut(v, c, VSOCK_SHUTDOWN_RCV |
						   (c->guest_shut & VSOCK_SHUTDOWN_RCV ?
							    VSOCK_SHUTDOWN_SEND : 0));
		} else if (c->buf_len && c->writable) {
			vsock_host_flush(v, c);
		}
		vsock_conn_schedule(v, c);
		return;
	default:
		return;
	}
}

static void vsock_host_on_events(void *opaque, uint32_t events)
{
	struct vsock *v = opaque;
	struct epoll_event evs[64];
	int n = epoll_wait(v->epfd, evs, 64, 0);

	for (int i = 0; i < n; i++) {
		uint32_t idx = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
		struct vsock_conn *c;
		uint64_t count;

		if (idx == VSOCK_TAG_WAKE) {
			if (read(v->wake_fd, &count, sizeof(count)) == sizeof(count))
				vsock_sync(v);
		} else if (idx == VSOCK_TAG_LISTENER) {
			vsock_host_accept(v);
		} else if (idx < VSOCK_MAX_CONNS) {
			/* Stale if the connection was closed or the slot reused earlier in
			 * this batch. */
			c = &v->conns.slots[idx];
			if (c->state != VSOCK_CONN_FREE && c->gen == gen && c->fd >= 0)
				vsock_host_event(v, c, evs[i].events);
		}
	}
	vsock_kick(v);
}

void vsock_host_wake(struct vsock *v)
{
	uint64_t one = 1;
	ssize_t r = write(v->wake_fd, &one, sizeof(one));

	(void)r; /* a full counter still wakes the loop */
}

int vsock_host_open(struct vsock *v)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	int rc;

	memcpy(a.sun_path, v->uds_path, sizeof(a.sun_path));
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	v->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->epfd < 0 || v->wake_fd < 0 || v->listen_fd < 0)
		return -errno;
	if (bind(v->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	v->listen_bound = 1;
	if (listen(v->listen_fd, VSOCK_LISTEN_BACKLOG) < 0)
		return -errno;
	ev.data.u64 = VSOCK_TAG_LISTENER;
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listen_fd, &ev) < 0)
		return -errno;
	ev.data.u64 = VSOCK_TAG_WAKE;
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->wake_fd, &ev) < 0)
		return -errno;
	rc = evloop_add(v->loop, v->epfd, EPOLLIN, vsock_host_on_events, v);
	if (rc == 0)
		v->loop_added = 1;
	return rc;
}

void vsock_host_shutdown(struct vsock *v)
{
	if (v->loop_added)
		evloop_del(v->loop, v->epfd);
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->listen_bound)
		unlink(v->uds_path);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	if (v->epfd >= 0)
		close(v->epfd);
}
