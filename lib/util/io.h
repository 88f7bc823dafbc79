/* Reading with a deadline, for the line and frame readers of the control and agent channels, and
 * passing fds over Unix sockets. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t clock_ms(void);
/* The deadline for a timeout in ms from now; -1 (no deadline) for a negative timeout. */
int64_t deadline_after(int timeout_ms);
/* CLOCK_REALTIME timeout_ms (>= 0) from now, for pthread_cond_timedwait. */
struct timespec realtime_after(int timeout_ms);
/* One read of up to len bytes once fd is readable, retrying EINTR/EAGAIN. Returns bytes read,
 * 0 at EOF, -ETIMEDOUT once the deadline (from deadline_after) passes with nothing readable
 * (timeout 0 reads what is ready without waiting), -errno otherwise. */
ssize_t read_until(int fd, void *buf, size_t len, int64_t deadline);
/* Most fds one message carries (SCM_RIGHTS). */
#define IO_MAX_FDS 4
/* read_until on a socket, with the fds that arrive with the bytes appended to fds[*nfds...]
 * (up to max in all; extra ones are closed). */
ssize_t recv_until(int fd, void *buf, size_t len, int64_t deadline, int *fds, unsigned *nfds,
		   unsigned max);
/* Sends len bytes with nfds (at most IO_MAX_FDS) fds in one sendmsg (MSG_NOSIGNAL). The bytes
 * must fit the socket's buffer: a short send is -EIO. 0 or -errno. */
int send_with_fds(int fd, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Writes all len bytes, retrying short writes and EINTR. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
struct sockaddr_un;
/* The address of the Unix socket dir/name. 0, or -ENAMETOOLONG when it does not fit. */
int unix_addr(struct sockaddr_un *sa, const char *dir, const char *name);
