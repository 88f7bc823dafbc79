#include "io.h"

#include <errno.h>
#include <poll.h>
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

ssize_t read_until(int fd, void *buf, size_t len, int64_t deadline)
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
		n = read(fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
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
