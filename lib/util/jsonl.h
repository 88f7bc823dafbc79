/* JSON messages, one per line, over a stream socket: the control channel between the library
 * and a VMM process. Each message is a JSON object on one line. */
#pragma once
#include <jansson.h>
#include <stddef.h>

#define JSONL_MAX_LINE 65536

struct jsonl_reader {
	int fd;
	size_t len;
	char buf[JSONL_MAX_LINE];
};

void jsonl_reader_init(struct jsonl_reader *r, int fd);
/* Next message into *out (caller json_decref's it). 1: got one; 0: the peer closed;
 * -ETIMEDOUT after timeout_ms (-1: wait forever); -EPROTO: a line that is too long or not a
 * JSON object; -errno otherwise. */
int jsonl_read(struct jsonl_reader *r, int timeout_ms, json_t **out);
/* Writes msg as one line with one send (MSG_NOSIGNAL). Does not take the reference. -EMSGSIZE
 * for a message longer than a reader takes (JSONL_MAX_LINE). */
int jsonl_write(int fd, const json_t *msg);
