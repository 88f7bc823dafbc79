/* The "reseed" op: a guest restored from a snapshot (a fork child, a sandbox made from a
 * template) starts with the random-number state and hostname of the guest that was saved, so
 * every copy would draw the same "random" bytes. The host sends fresh entropy, which is credited
 * to the input pool and forced into the CRNG at once, and a hostname of the copy's own. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* 64 bytes (512 bits) is what the kernel's CRNG takes from the pool per reseed, and more. */
#define RESEED_MIN_BYTES 32
#define RESEED_MAX_BYTES 256

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes the "entropy" hex string into the buffer of e; its byte count, or -1. */
static int entropy_decode(const char *hex, struct rand_pool_info *e)
{
	size_t n = strlen(hex);
	unsigned char *out = (unsigned char *)e->buf;

	if (n % 2 || n / 2 < RESEED_MIN_BYTES || n / 2 > RESEED_MAX_BYTES)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* RNDADDENTROPY credits the bytes (needs CAP_SYS_ADMIN: the agent runs as root);
 * RNDRESEEDCRNG makes the CRNG take them now rather than at its next scheduled reseed. */
static int entropy_feed(struct rand_pool_info *e, const char **what)
{
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC), rc = 0;

	*what = "open";
	if (fd < 0)
		return errno;
	*what = "RNDADDENTROPY";
	if (ioctl(fd, RNDADDENTROPY, e) < 0)
		rc = errno;
	if (!rc) {
		*what = "RNDRESEEDCRNG";
		if (ioctl(fd, RNDRESEEDCRNG) < 0)
			rc = errno;
	}
	close(fd);
	return rc;
}

void op_reseed(struct conn *c)
{
	struct rand_pool_info *e = malloc(sizeof(*e) + RESEED_MAX_BYTES);
	const char *hex, *host, *what;
	int n, err;

	if (!e) {
		reply_errno(c, ENOMEM, "reseed", "");
		return;
	}
	if (arg_string(c, "entropy", 1, &hex) < 0 || arg_string(c, "hostname", 0, &host) < 0)
		goto out;
	n = entropy_decode(hex, e);
	if (n < 0) {
		reply_error(c, EINVAL,
			    "field \"entropy\": expected %d to %d bytes in lowercase hex",
			    RESEED_MIN_BYTES, RESEED_MAX_BYTES);
		goto out;
	}
	e->buf_size = n;
	e->entropy_count = n * 8;
	err = entropy_feed(e, &what);
	if (err) {
		reply_errno(c, err, what, "/dev/urandom");
		goto out;
	}
	if (host && sethostname(host, strlen(host)) < 0) {
		reply_errno(c, errno, "sethostname", host);
		goto out;
	}
	reply_result(c, json_pack("{s:i}", "bytes", n));
out:
	free(e);
}
