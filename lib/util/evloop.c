#define _GNU_SOURCE
#include "evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct evloop_watch {
	int fd;
	evloop_fn fn;
	void *opaque;
	struct evloop_watch *next;
};

struct evloop {
	int epfd;
	int stop_fd;
	struct evloop_watch *watches;
};

int evloop_new(struct evloop **out)
{
	struct evloop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.ptr = NULL; /* NULL marks the stop eventfd */
	if (l->epfd < 0 || l->stop_fd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_fd, &ev) < 0) {
		int err = -errno;
		evloop_free(l);
		return err;
	}
	*out = l;
	return 0;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	while (l->watches) {
		struct evloop_watch *w = l->watches;
		l->watches = w->next;
		free(w);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	free(l);
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	struct evloop_watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = events };

	if (!w)
		return -ENOMEM;
	*w = (struct evloop_watch){ fd, fn, opaque, l->watches };
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;
		free(w);
		return err;
	}
	l->watches = w;
	return 0;
}

int evloop_del(struct evloop *l, int fd)
{
	for (struct evloop_watch **p = &l->watches; *p; p = &(*p)->next) {
		if ((*p)->fd == fd) {
			struct evloop_watch *w = *p;
			*p = w->next;
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			free(w);
			return 0;
		}
	}
	return -ENOENT;
}

int evloop_run(struct evloop *l)
{
	struct epoll_event evs[32];

	for (;;) {
		int n = epoll_wait(l->epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct evloop_watch *w = evs[i].data.ptr;
			if (!w)
				return 0;
			w->fn(w->opaque, evs[i].events);
		}
	}
}

void evloop_stop(struct evloop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->stop_fd, &one, sizeof(one));
	(void)r; /* a full counter already means "stop" */
}
