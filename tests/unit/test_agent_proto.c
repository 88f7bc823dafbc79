/* The agent protocol's framing (lib/agent/proto.c): hostile frames give -EPROTO or NULL and never
 * touch memory they should not (this runs under ASan/UBSan); good frames round-trip over a
 * socketpair, whole or split across many reads, up to the 1 MiB maximum. */
#define _GNU_SOURCE
#include "agent/proto.h"
#include "testing.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void put_header(uint8_t *h, uint32_t len, uint8_t type, uint8_t flags, uint16_t rsv)
{
	h[0] = (uint8_t)len;
	h[1] = (uint8_t)(len >> 8);
	h[2] = (uint8_t)(len >> 16);
	h[3] = (uint8_t)(len >> 24);
	h[4] = type;
	h[5] = flags;
	h[6] = (uint8_t)rsv;
	h[7] = (uint8_t)(rsv >> 8);
}

static void write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* Feeds bytes to a fresh reader through a socketpair, closes the writing end, and returns what
 * the first frame_read gives. */
static int read_from_bytes(const void *bytes, size_t len, struct frame_reader *r, struct frame *f)
{
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	write_all(sv[1], bytes, len);
	close(sv[1]);
	frame_reader_init(r, sv[0]);
	rc = frame_read(r, 1000, f);
	close(sv[0]);
	return rc;
}

static void test_header_parse(void)
{
	uint8_t h[FRAME_HDR_SIZE];
	struct frame f;

	put_header(h, 5, FRAME_STDOUT, FRAME_F_EOF, 0);
	CHECK_EQ(frame_header_parse(h, &f), 0);
	CHECK_EQ(f.len, 5);
	CHECK_EQ(f.type, FRAME_STDOUT);
	CHECK_EQ(f.flags, FRAME_F_EOF);

	put_header(h, FRAME_MAX_PAYLOAD, FRAME_FILE, 0, 0);
	CHECK_EQ(frame_header_parse(h, &f), 0);
	put_header(h, FRAME_MAX_JSON, FRAME_JSON, 0, 0);
	CHECK_EQ(frame_header_parse(h, &f), 0);

	for (unsigned t = 0; t < 256; t++) {
		put_header(h, 0, (uint8_t)t, 0, 0);
		CHECK_EQ(frame_header_parse(h, &f),
			 t >= FRAME_JSON && t <= FRAME_FILE ? 0 : -EPROTO);
	}
	for (unsigned fl = 2; fl < 256; fl++) {
		put_header(h, 0, FRAME_FILE, (uint8_t)fl, 0);
		CHECK_EQ(frame_header_parse(h, &f), -EPROTO);
	}
	put_header(h, 0, FRAME_JSON, 0, 1);
	CHECK_EQ(frame_header_parse(h, &f), -EPROTO);
	put_header(h, 0, FRAME_JSON, 0, 0x100);
	CHECK_EQ(frame_header_parse(h, &f), -EPROTO);
	put_header(h, FRAME_MAX_PAYLOAD + 1, FRAME_FILE, 0, 0);
	CHECK_EQ(frame_header_parse(h, &f), -EPROTO);
	put_header(h, 0xffffffffu, FRAME_STDIN, 0, 0);
	CHECK_EQ(frame_header_parse(h, &f), -EPROTO);
	put_header(h, FRAME_MAX_JSON + 1, FRAME_JSON, 0, 0);
	CHECK_EQ(frame_header_parse(h, &f), -EPROTO);
}

static void test_malformed_streams(struct frame_reader *r)
{
	uint8_t buf[64];
	struct frame f;

	/* Clean EOF before any byte: 0, not an error. */
	CHECK_EQ(read_from_bytes("", 0, r, &f), 0);
	/* Truncated header. */
	put_header(buf, 3, FRAME_JSON, 0, 0);
	CHECK_EQ(read_from_bytes(buf, 5, r, &f), -EPROTO);
	CHECK_EQ(read_from_bytes(buf, 1, r, &f), -EPROTO);
	/* Truncated payload at EOF. */
	put_header(buf, 40, FRAME_FILE, 0, 0);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE + 10, r, &f), -EPROTO);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE, r, &f), -EPROTO);
	/* Oversized lengths: refused from the header alone, no payload needed. */
	put_header(buf, FRAME_MAX_PAYLOAD + 1, FRAME_FILE, 0, 0);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE, r, &f), -EPROTO);
	put_header(buf, FRAME_MAX_JSON + 1, FRAME_JSON, 0, 0);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE, r, &f), -EPROTO);
	/* Unknown types, flags, reserved bits. */
	put_header(buf, 0, 0, 0, 0);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE, r, &f), -EPROTO);
	put_header(buf, 0, FRAME_FILE + 1, 0, 0);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE, r, &f), -EPROTO);
	put_header(buf, 0, FRAME_STDIN, 0x80, 0);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE, r, &f), -EPROTO);
	put_header(buf, 0, FRAME_STDIN, 0, 0x8000);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE, r, &f), -EPROTO);
	/* A good frame, then garbage: the first is fine, the second an error. */
	put_header(buf, 2, FRAME_JSON, 0, 0);
	memcpy(buf + FRAME_HDR_SIZE, "{}", 2);
	memset(buf + FRAME_HDR_SIZE + 2, 0xff, 8);
	CHECK_EQ(read_from_bytes(buf, FRAME_HDR_SIZE + 10, r, &f), 1);
}

static json_t *json_of(struct frame_reader *r, const char *text, uint8_t type)
{
	uint8_t buf[256];
	size_t len = strlen(text);
	struct frame f;

	put_header(buf, (uint32_t)len, type, 0, 0);
	memcpy(buf + FRAME_HDR_SIZE, text, len);
	if (read_from_bytes(buf, FRAME_HDR_SIZE + len, r, &f) != 1)
		return (json_t *)-1;
	return frame_json(&f);
}

static void test_bad_json(struct frame_reader *r)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "}",
	    "[1,2,3]",
	    "[]",
	    "\"str\"",
	    "42",
	    "null",
	    "true",
	    "{\"a\":1}{\"b\":2}",
	    "{\"a\":1,\"a\":2}",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\xff\"}",
	    "{'a':1}",
	    "{\"a\":1,}",
	};
	json_t *j;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_of(r, bad[i], FRAME_JSON);
		CHECK(j == NULL);
		if (j && j != (json_t *)-1) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			json_decref(j);
		}
	}
	/* A valid object in a frame that is not JSON. */
	CHECK(json_of(r, "{\"a\":1}", FRAME_STDOUT) == NULL);
	j = json_of(r, " {\"v\":1, \"op\":\"hello\"} ", FRAME_JSON);
	CHECK(j && j != (json_t *)-1 && json_is_object(j));
	if (j && j != (json_t *)-1)
		json_decref(j);
}

static void test_write_limits(void)
{
	uint8_t byte = 0;
	int sv[2];
	json_t *big;
	char *s;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(frame_write(sv[0], FRAME_FILE, 0, &byte, FRAME_MAX_PAYLOAD + 1), -EINVAL);
	s = malloc(FRAME_MAX_JSON + 1);
	memset(s, 'x', FRAME_MAX_JSON);
	s[FRAME_MAX_JSON] = 0;
	big = json_pack("{s:s}", "k", s);
	CHECK_EQ(frame_write_json(sv[0], big), -EMSGSIZE);
	json_decref(big);
	free(s);
	/* A vanished peer: EPIPE, and no SIGPIPE killing the test. */
	close(sv[1]);
	CHECK_EQ(frame_write(sv[0], FRAME_STDOUT, 0, "x", 1), -EPIPE);
	close(sv[0]);
}

struct writer {
	int fd;
	const uint8_t *data;
	size_t len;
	size_t chunk; /* bytes per write, with a pause between: split reads */
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	struct timespec pause = {0, 200000};

	for (size_t off = 0; off < w->len; off += w->chunk) {
		size_t n = w->len - off < w->chunk ? w->len - off : w->chunk;

		write_all(w->fd, w->data + off, n);
		if (w->chunk == 1)
			nanosleep(&pause, NULL);
	}
	return NULL;
}

/* Builds a stream of frames into a buffer: JSON, empty EOF data, 1 MiB FILE, STDOUT. */
static size_t build_stream(uint8_t *out, const uint8_t *big)
{
	const char *json = "{\"v\":1,\"op\":\"exec\",\"argv\":[\"ls\"]}";
	size_t off = 0, jl = strlen(json);

	put_header(out + off, (uint32_t)jl, FRAME_JSON, 0, 0);
	memcpy(out + off + FRAME_HDR_SIZE, json, jl);
	off += FRAME_HDR_SIZE + jl;
	put_header(out + off, 0, FRAME_STDIN, FRAME_F_EOF, 0);
	off += FRAME_HDR_SIZE;
	put_header(out + off, FRAME_MAX_PAYLOAD, FRAME_FILE, FRAME_F_EOF, 0);
	memcpy(out + off + FRAME_HDR_SIZE, big, FRAME_MAX_PAYLOAD);
	off += FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD;
	put_header(out + off, 3, FRAME_STDOUT, 0, 0);
	memcpy(out + off + FRAME_HDR_SIZE, "abc", 3);
	return off + FRAME_HDR_SIZE + 3;
}

static void check_stream(struct frame_reader *r, const uint8_t *big)
{
	struct frame f;
	json_t *j;

	CHECK_EQ(frame_read(r, 5000, &f), 1);
	CHECK_EQ(f.type, FRAME_JSON);
	j = frame_json(&f);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "op")), "exec"));
	json_decref(j);
	CHECK_EQ(frame_read(r, 5000, &f), 1);
	CHECK(f.type == FRAME_STDIN && f.len == 0 && f.flags == FRAME_F_EOF);
	CHECK_EQ(frame_read(r, 5000, &f), 1);
	CHECK(f.type == FRAME_FILE && f.len == FRAME_MAX_PAYLOAD && f.flags == FRAME_F_EOF &&
	      !memcmp(f.payload, big, FRAME_MAX_PAYLOAD));
	CHECK_EQ(frame_read(r, 5000, &f), 1);
	CHECK(f.type == FRAME_STDOUT && f.len == 3 && !memcmp(f.payload, "abc", 3));
}

/* The same stream written in chunks of various sizes must read back identically. One byte at a
 * time (with pauses) only for its first 64 bytes: the JSON frame, the empty STDIN frame and the
 * start of the FILE frame, which then ends at EOF inside its payload: -EPROTO. */
static void test_roundtrip_split(struct frame_reader *r, const uint8_t *big)
{
	static const size_t chunks[] = {1 << 22, 65536, 4093, 7, 1};
	uint8_t *stream = malloc(4 * FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD + 128);
	size_t len = build_stream(stream, big);

	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct writer w = {
		    .data = stream, .len = chunks[i] == 1 ? 64 : len, .chunk = chunks[i]};
		struct frame f;
		pthread_t t;
		int sv[2];

		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		w.fd = sv[1];
		pthread_create(&t, NULL, writer_run, &w);
		frame_reader_init(r, sv[0]);
		if (chunks[i] == 1) {
			CHECK_EQ(frame_read(r, 5000, &f), 1);
			CHECK_EQ(f.type, FRAME_JSON);
			CHECK_EQ(frame_read(r, 5000, &f), 1);
			CHECK_EQ(f.type, FRAME_STDIN);
			pthread_join(t, NULL);
			close(sv[1]);
			CHECK_EQ(frame_read(r, 5000, &f), -EPROTO);
		} else {
			/* The writer blocks on the socket buffer until the reader drains it. */
			check_stream(r, big);
			pthread_join(t, NULL);
			close(sv[1]);
			CHECK_EQ(frame_read(r, 5000, &f), 0);
		}
		close(sv[0]);
	}
	free(stream);
}

/* frame_write -> frame_read, 1 MiB frames in both directions of a socketpair, concurrently
 * (a MiB exceeds the socket buffer, so the writer must run beside the reader). */
struct sender {
	int fd;
	const uint8_t *big;
};

static void *sender_run(void *arg)
{
	struct sender *s = arg;
	json_t *msg = json_pack("{s:s, s:i}", "event", "started", "pid", 42);

	frame_write_json(s->fd, msg);
	json_decref(msg);
	for (int i = 0; i < 4; i++)
		frame_write(s->fd, FRAME_FILE, i == 3 ? FRAME_F_EOF : 0, s->big, FRAME_MAX_PAYLOAD);
	frame_write(s->fd, FRAME_STDERR, FRAME_F_EOF, NULL, 0);
	return NULL;
}

static void test_roundtrip_write(struct frame_reader *r, const uint8_t *big)
{
	struct sender s = {.big = big};
	struct frame f;
	pthread_t t;
	json_t *j;
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	s.fd = sv[1];
	pthread_create(&t, NULL, sender_run, &s);
	frame_reader_init(r, sv[0]);
	CHECK_EQ(frame_read(r, 5000, &f), 1);
	j = frame_json(&f);
	CHECK(j && json_integer_value(json_object_get(j, "pid")) == 42);
	json_decref(j);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(frame_read(r, 5000, &f), 1);
		CHECK(f.type == FRAME_FILE && f.len == FRAME_MAX_PAYLOAD &&
		      f.flags == (i == 3 ? FRAME_F_EOF : 0) && !memcmp(f.payload, big, f.len));
	}
	CHECK_EQ(frame_read(r, 5000, &f), 1);
	CHECK(f.type == FRAME_STDERR && f.len == 0 && f.flags == FRAME_F_EOF);
	pthread_join(t, NULL);
	close(sv[1]);
	CHECK_EQ(frame_read(r, 5000, &f), 0);
	close(sv[0]);
}

/* A timeout inside a frame loses nothing: the next read resumes where the bytes stopped. The
 * agent relies on this (and on timeout 0 returning an already-buffered frame without reading). */
static void test_timeout_resume(struct frame_reader *r)
{
	uint8_t buf[32];
	struct frame f;
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	frame_reader_init(r, sv[0]);
	CHECK_EQ(frame_read(r, 20, &f), -ETIMEDOUT);
	put_header(buf, 4, FRAME_STDIN, 0, 0);
	memcpy(buf + FRAME_HDR_SIZE, "wxyz", 4);
	put_header(buf + 12, 1, FRAME_STDIN, FRAME_F_EOF, 0);
	buf[20] = '!';
	write_all(sv[1], buf, 5); /* half a header */
	CHECK_EQ(frame_read(r, 20, &f), -ETIMEDOUT);
	write_all(sv[1], buf + 5, 5); /* the header and half the payload */
	CHECK_EQ(frame_read(r, 20, &f), -ETIMEDOUT);
	CHECK_EQ(frame_read(r, 0, &f), -ETIMEDOUT);
	write_all(sv[1], buf + 10, 11); /* the rest, and all of the next frame */
	CHECK_EQ(frame_read(r, 1000, &f), 1);
	CHECK(f.type == FRAME_STDIN && f.len == 4 && !memcmp(f.payload, "wxyz", 4));
	/* Already buffered: timeout 0 still returns it. */
	CHECK_EQ(frame_read(r, 0, &f), 1);
	CHECK(f.len == 1 && f.flags == FRAME_F_EOF && f.payload[0] == '!');
	CHECK_EQ(frame_read(r, 0, &f), -ETIMEDOUT);
	close(sv[1]);
	CHECK_EQ(frame_read(r, 1000, &f), 0);
	close(sv[0]);
}

/* Random bytes, random mutations of a good stream: whatever comes back, no crash, no sanitizer
 * report, and every frame returned respects the limits. */
static void test_fuzz(struct frame_reader *r)
{
	uint8_t buf[512];
	unsigned seed = 12345;
	int bad = 0;

	for (int iter = 0; iter < 3000; iter++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof(buf));
		int sv[2], rc;
		struct frame f;

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		if (iter % 2 && len >= FRAME_HDR_SIZE) {
			/* Plausible headers get further into the reader. */
			put_header(buf, (uint32_t)(rand_r(&seed) % 600), (uint8_t)(1 + iter % 5),
				   (uint8_t)(rand_r(&seed) % 3 == 0), 0);
		}
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			continue;
		write_all(sv[1], buf, len);
		close(sv[1]);
		frame_reader_init(r, sv[0]);
		while ((rc = frame_read(r, 1000, &f)) == 1) {
			json_t *j = frame_json(&f);

			if (f.len > FRAME_MAX_PAYLOAD || f.type < FRAME_JSON || f.type > FRAME_FILE)
				bad++;
			json_decref(j);
		}
		if (rc != 0 && rc != -EPROTO)
			bad++;
		close(sv[0]);
	}
	CHECK_EQ(bad, 0);
}

int main(void)
{
	struct frame_reader *r = malloc(sizeof(*r));
	uint8_t *big = malloc(FRAME_MAX_PAYLOAD);

	/* SIGPIPE keeps its default: frame_write must not raise it (the test would die). */
	for (size_t i = 0; i < FRAME_MAX_PAYLOAD; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	test_header_parse();
	test_malformed_streams(r);
	test_bad_json(r);
	test_write_limits();
	test_roundtrip_split(r, big);
	test_roundtrip_write(r, big);
	test_timeout_resume(r);
	test_fuzz(r);
	free(big);
	free(r);
	return TEST_SUMMARY();
}
