#include "io.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : clock_ms() + timeout_ms;
}

/* One recvmsg; fds that came with the bytes are appended to fds (up to max; any more are
 * closed, never left open unseen). */
static ssize_t recv_with_fds(int fd, void *buf, size_t len, int *fds, unsigned *nfds, unsigned max)
{
	char control[CMSG_SPACE(IO_MAX_FDS * sizeof(int))];
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control,
			    .msg_controllen = sizeof(control)};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t count;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < max)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	return n;
}

ssize_t recv_until(int fd, void *buf, size_t len, int64_t deadline, int *fds, unsigned *nfds,
		   unsigned max)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t wait = deadline < 0 ? -1 : deadline - clock_ms();
		ssize_t n;
		int ready;

		/* A deadline that has come still gets one look (poll with 0, as for timeout 0):
		 * what is already readable is read, never waited for. */
		if (deadline >= 0 && wait < 0)
			wait = 0;
		ready = poll(&p, 1, (int)wait);
		if (ready < 0 && errno != EINTR)
			return -errno;
		if (ready == 0 && deadline >= 0)
			return -ETIMEDOUT;
		if (ready <= 0)
			continue; /* interrupted */
		n = fds ? recv_with_fds(fd, buf, len, fds, nfds, max) : read(fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

struct timespec realtime_after(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

ssize_t read_until(int fd, void *buf, size_t len, int64_t deadline)
{
	return recv_until(fd, buf, len, deadline, NULL, NULL, 0);
}

int send_with_fds(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	char control[CMSG_SPACE(IO_MAX_FDS * sizeof(int))] = {0};
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > IO_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int unix_addr(struct sockaddr_un *sa, const char *dir, const char *name)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);
	return n >= 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : -ENAMETOOLONG;
}
