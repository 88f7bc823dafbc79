/* The control channel's framing: good messages, split reads, and hostile input. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testing.h"
#include "util/jsonl.h"

static struct jsonl_reader reader;

static int feed(int fd, const char *s, size_t n)
{
	return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* fds passed with a line (the snapshot command): received by a reader that takes them, the
 * surplus of a hostile sender closed, never kept; a plain reader drops them. */
static void test_fds(void)
{
	int sv[2], fds[IO_MAX_FDS + 2], got[IO_MAX_FDS], pipe_fds[2];
	json_t *msg = NULL, *out = json_pack("{s:s}", "cmd", "snapshot");
	unsigned n;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(pipe(pipe_fds), 0);
	jsonl_reader_init_fds(&reader, sv[0]);
	CHECK_EQ(jsonl_write_fds(sv[1], out, pipe_fds, 1), 0);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
	CHECK(json_equal(msg, out));
	json_decref(msg);
	n = jsonl_reader_take_fds(&reader, got);
	CHECK_EQ(n, 1);
	CHECK(n == 1 && write(pipe_fds[1], "x", 1) == 1 && read(got[0], fds, 1) == 1);
	if (n == 1)
		close(got[0]);
	CHECK_EQ(jsonl_reader_take_fds(&reader, got), 0);

	/* More than IO_MAX_FDS: refused by the sender; a raw sendmsg of many is cut to the most. */
	for (int i = 0; i < IO_MAX_FDS + 2; i++)
		fds[i] = pipe_fds[0];
	CHECK_EQ(jsonl_write_fds(sv[1], out, fds, IO_MAX_FDS + 1), -EINVAL);
	CHECK_EQ(jsonl_write_fds(sv[1], out, fds, IO_MAX_FDS), 0);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
	json_decref(msg);
	CHECK_EQ(jsonl_reader_take_fds(&reader, got), IO_MAX_FDS);
	for (int i = 0; i < IO_MAX_FDS; i++)
		close(got[i]);
	{
		char control[CMSG_SPACE(sizeof(fds))] = {0}, line[] = "{}\n";
		struct iovec iov = {line, 3};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
				    .msg_controllen = sizeof(control)};
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(c), fds, sizeof(fds));
		CHECK_EQ(sendmsg(sv[1], &mh, 0), 3);
		CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
		json_decref(msg);
		n = jsonl_reader_take_fds(&reader, got);
		CHECK(n <= IO_MAX_FDS);
		for (unsigned i = 0; i < n; i++)
			close(got[i]);
	}

	/* A reader that takes none: the fds are dropped by the kernel with the bytes. */
	jsonl_reader_init(&reader, sv[0]);
	CHECK_EQ(jsonl_write_fds(sv[1], out, pipe_fds, 1), 0);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
	json_decref(msg);
	CHECK_EQ(reader.nfds, 0);
	json_decref(out);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	int sv[2];
	json_t *msg = NULL, *out;
	char *big;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	jsonl_reader_init(&reader, sv[0]);

	/* A round trip, then a message split over two writes, then two in one write. */
	out = json_pack("{s:s, s:i}", "event", "ready", "n", 7);
	CHECK_EQ(jsonl_write(sv[1], out), 0);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
	CHECK(json_equal(msg, out));
	json_decref(msg);
	json_decref(out);
	CHECK(feed(sv[1], "{\"a\":", 5));
	CHECK_EQ(jsonl_read(&reader, 50, &msg), -ETIMEDOUT);
	CHECK(feed(sv[1], "1}\n{\"b\":2}\n", 11));
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
	CHECK_EQ(json_integer_value(json_object_get(msg, "a")), 1);
	json_decref(msg);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
	CHECK_EQ(json_integer_value(json_object_get(msg, "b")), 2);
	json_decref(msg);

	/* Timeout 0 reads a line that is already on the socket (the VMM's control loop polls, then
	 * reads with 0) and says ETIMEDOUT only once nothing is left. */
	CHECK(feed(sv[1], "{\"c\":3}\n", 8));
	CHECK_EQ(jsonl_read(&reader, 0, &msg), 1);
	CHECK_EQ(json_integer_value(json_object_get(msg, "c")), 3);
	json_decref(msg);
	CHECK_EQ(jsonl_read(&reader, 0, &msg), -ETIMEDOUT);

	/* Garbage, a JSON value that is not an object, an empty line: each refused, the stream
	 * goes on. */
	CHECK(feed(sv[1], "not json\n[1,2]\n\n{\"ok\":true}\n", 28));
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), -EPROTO);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), -EPROTO);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), -EPROTO);
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 1);
	CHECK(json_is_true(json_object_get(msg, "ok")));
	json_decref(msg);

	/* A line longer than the buffer is a protocol error, not an overflow. */
	big = malloc(JSONL_MAX_LINE + 100);
	memset(big, 'x', JSONL_MAX_LINE + 100);
	CHECK(feed(sv[1], big, JSONL_MAX_LINE + 100));
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), -EPROTO);
	free(big);

	/* Peer gone: 0. */
	jsonl_reader_init(&reader, sv[0]);
	close(sv[1]);
	while (jsonl_read(&reader, 1000, &msg) == -EPROTO)
		;
	CHECK_EQ(jsonl_read(&reader, 1000, &msg), 0);
	close(sv[0]);
	test_fds();
	return TEST_SUMMARY();
}
