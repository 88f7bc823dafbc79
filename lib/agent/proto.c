#define _GNU_SOURCE
#include "proto.h"
#include "util/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

void frame_reader_init(struct frame_reader *r, int fd)
{
	r->fd = fd;
	r->len = 0;
	r->consumed = 0;
}

int frame_header_parse(const uint8_t hdr[FRAME_HDR_SIZE], struct frame *f)
{
	uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		       (uint32_t)hdr[3] << 24;

	if (hdr[4] < FRAME_JSON || hdr[4] > FRAME_FILE || (hdr[5] & ~FRAME_F_EOF) || hdr[6] ||
	    hdr[7] || len > FRAME_MAX_PAYLOAD || (hdr[4] == FRAME_JSON && len > FRAME_MAX_JSON))
		return -EPROTO;
	f->type = hdr[4];
	f->flags = hdr[5];
	f->len = len;
	return 0;
}

/* Reads until at least `want` bytes are buffered. 1, 0 on EOF, or -errno. */
static int frame_fill(struct frame_reader *r, size_t want, int64_t deadline)
{
	while (r->len < want) {
		ssize_t n = read_until(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, deadline);
		if (n <= 0)
			return (int)n;
		r->len += (size_t)n;
	}
	return 1;
}

int frame_read(struct frame_reader *r, int timeout_ms, struct frame *f)
{
	int64_t deadline = deadline_after(timeout_ms);
	int rc;

	if (r->consumed) {
		r->len -= r->consumed;
		memmove(r->buf, r->buf + r->consumed, r->len);
		r->consumed = 0;
	}
	rc = frame_fill(r, FRAME_HDR_SIZE, deadline);
	if (rc <= 0)
		return rc == 0 && r->len ? -EPROTO : rc;
	if (frame_header_parse(r->buf, f) < 0)
		return -EPROTO;
	rc = frame_fill(r, FRAME_HDR_SIZE + f->len, deadline);
	if (rc <= 0)
		return rc == 0 ? -EPROTO : rc;
	f->payload = r->buf + FRAME_HDR_SIZE;
	r->consumed = FRAME_HDR_SIZE + f->len;
	return 1;
}

int frame_write(int fd, uint8_t type, uint8_t flags, const void *payload, uint32_t len)
{
	uint8_t hdr[FRAME_HDR_SIZE] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
					(uint8_t)(len >> 24), type, flags, 0, 0 };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t left = sizeof(hdr) + len;

	if (len > FRAME_MAX_PAYLOAD)
		return -EINVAL;
	while (left) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		left -= (size_t)n;
		/* Short write: advance the iovecs past what went out. */
		while (n > 0 && mh.msg_iovlen) {
			size_t step = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;
			mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (mh.msg_iov->iov_len == 0) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

int frame_write_json(int fd, const json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len;
	int rc;

	if (!s)
		return -ENOMEM;
	len = strlen(s);
	rc = len > FRAME_MAX_JSON ? -EMSGSIZE : frame_write(fd, FRAME_JSON, 0, s, (uint32_t)len);
	free(s);
	return rc;
}

json_t *frame_json(const struct frame *f)
{
	json_t *j;

	if (f->type != FRAME_JSON)
		return NULL;
	j = json_loadb((const char *)f->payload, f->len, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int frame_write_stream(int fd, uint8_t type, const void *data, size_t len)
{
	const uint8_t *p = data;

	do {
		uint32_t n = len > FRAME_MAX_PAYLOAD ? FRAME_MAX_PAYLOAD : (uint32_t)len;
		int rc = frame_write(fd, type, n == len ? FRAME_F_EOF : 0, p, n);

		if (rc < 0)
			return rc;
		p += n;
		len -= n;
	} while (len);
	return 0;
}
