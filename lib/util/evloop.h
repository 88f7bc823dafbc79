/* A small epoll loop for the device thread: fds with callbacks, stopped through an eventfd, and
 * paused between callbacks for a snapshot. */
#pragma once
#include <stdint.h>

struct evloop;
typedef void (*evloop_fn)(void *opaque, uint32_t events);

int evloop_new(struct evloop **out);
void evloop_free(struct evloop *l);
/* Watches fd for `events` (EPOLLIN...), calling fn(opaque, revents) from the loop thread. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque);
int evloop_del(struct evloop *l, int fd);
/* Runs until evloop_stop; returns 0, or -errno if epoll itself fails. */
int evloop_run(struct evloop *l);
/* Thread-safe and async-signal-safe. */
void evloop_stop(struct evloop *l);
/* From another thread: parks the loop thread between two callbacks and returns once it is
 * parked, or -ETIMEDOUT after timeout_ms (the loop is then left running). A loop that is not
 * running yet parks as soon as it starts. */
int evloop_pause(struct evloop *l, int timeout_ms);
/* Lets a paused loop go on. */
void evloop_resume(struct evloop *l);
