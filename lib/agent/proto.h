/* The agent protocol: framing shared by the library (client) and the guest agent (server).
 * docs/agent-protocol.md is the specification; this is its one implementation of the framing.
 *
 * Every frame: an 8-byte header, then `len` payload bytes.
 *   u32 len   (little-endian) payload bytes, <= FRAME_MAX_PAYLOAD (JSON: <= FRAME_MAX_JSON)
 *   u8  type  enum frame_type
 *   u8  flags FRAME_F_EOF on the last data frame of a stream
 *   u16 zero  reserved, must be 0
 * Control messages are JSON objects in FRAME_JSON frames; stdin, stdout, stderr and file bytes
 * travel raw in their own frame types, never inside JSON strings. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_PROTO_VERSION 1
#define AGENT_VSOCK_PORT 1024

#define FRAME_HDR_SIZE 8
#define FRAME_MAX_PAYLOAD (1u << 20)
#define FRAME_MAX_JSON (64u << 10)
#define FRAME_F_EOF 0x01
/* A code interpreter result carries at most this many representations (docs/code-interpreter.md). */
#define RESULT_MAX_FORMATS 16

enum frame_type {
	FRAME_JSON = 1,   /* control: a JSON object */
	FRAME_STDIN = 2,  /* client -> agent: bytes for the process's stdin */
	FRAME_STDOUT = 3, /* agent -> client */
	FRAME_STDERR = 4, /* agent -> client */
	FRAME_FILE = 5,   /* file contents, either direction */
};

struct frame {
	uint8_t type;
	uint8_t flags;
	uint32_t len;
	uint8_t *payload; /* points into the reader's buffer; valid until the next frame_read */
};

struct frame_reader {
	int fd;
	size_t len;                                  /* bytes buffered */
	size_t consumed;                             /* bytes of the last frame, dropped on the next read */
	uint8_t buf[FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD];
};

void frame_reader_init(struct frame_reader *r, int fd);
/* Next frame into *f. 1: a frame; 0: clean EOF at a frame boundary; -EPROTO: a malformed header
 * (unknown type, reserved bits, oversized length, JSON too long) or EOF inside a frame;
 * -ETIMEDOUT after timeout_ms (-1: no limit); -errno from the socket. */
int frame_read(struct frame_reader *r, int timeout_ms, struct frame *f);
/* Checks an 8-byte header; fills type/flags/len. 0 or -EPROTO. */
int frame_header_parse(const uint8_t hdr[FRAME_HDR_SIZE], struct frame *f);
/* Writes one frame with a single writev (MSG_NOSIGNAL semantics: EPIPE, never SIGPIPE).
 * -EINVAL for an oversized payload, -errno otherwise. */
int frame_write(int fd, uint8_t type, uint8_t flags, const void *payload, uint32_t len);
int frame_write_json(int fd, const json_t *msg);
/* A whole buffer as a stream of data frames of `type` (at most FRAME_MAX_PAYLOAD each), the last
 * with FRAME_F_EOF; an empty buffer is one empty EOF frame. 0 or -errno. */
int frame_write_stream(int fd, uint8_t type, const void *data, size_t len);
/* The JSON object in a FRAME_JSON frame: new reference, or NULL (not JSON, not an object). */
json_t *frame_json(const struct frame *f);
