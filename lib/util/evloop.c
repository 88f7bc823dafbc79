#define _GNU_SOURCE
#include "evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io.h"

struct evloop_watch {
	int fd;
	evloop_fn fn;
	void *opaque;
	struct evloop_watch *next;
};

struct evloop {
	int epfd;
	int stop_fd;
	int pause_fd;
	struct evloop_watch *watches;
	struct evloop_watch pause_watch; /* marks the pause eventfd's events */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pause_wanted, parked;
};

int evloop_new(struct evloop **out)
{
	struct evloop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->pause_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.ptr = NULL; /* NULL marks the stop eventfd */
	if (l->epfd < 0 || l->stop_fd < 0 || l->pause_fd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_fd, &ev) < 0) {
		int err = -errno;
		evloop_free(l);
		return err;
	}
	ev.data.ptr = &l->pause_watch;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->pause_fd, &ev) < 0) {
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
	if (l->pause_fd >= 0)
		close(l->pause_fd);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
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

/* The loop thread, asked to pause: says it is parked and waits until resumed. */
static void evloop_park(struct evloop *l)
{
	uint64_t n;

	if (read(l->pause_fd, &n, sizeof(n)) < 0) {
		/* Already drained by an earlier wake-up: the flag below decides. */
	}
	pthread_mutex_lock(&l->lock);
	if (l->pause_wanted) {
		l->parked = 1;
		pthread_cond_broadcast(&l->cond);
		while (l->pause_wanted)
			pthread_cond_wait(&l->cond, &l->lock);
		l->parked = 0;
	}
	pthread_mutex_unlock(&l->lock);
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
			if (w == &l->pause_watch)
				evloop_park(l);
			else
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

int evloop_pause(struct evloop *l, int timeout_ms)
{
	struct timespec until = realtime_after(timeout_ms);
	uint64_t one = 1;
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	l->pause_wanted = 1;
	if (write(l->pause_fd, &one, sizeof(one)) < 0) {
		/* A full counter wakes the loop just the same. */
	}
	while (!l->parked && rc == 0)
		rc = pthread_cond_timedwait(&l->cond, &l->lock, &until);
	if (!l->parked) {
		l->pause_wanted = 0;
		rc = -ETIMEDOUT;
	} else {
		rc = 0;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void evloop_resume(struct evloop *l)
{
	pthread_mutex_lock(&l->lock);
	l->pause_wanted = 0;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}
