/* JSON messages, one per line, over a stream socket: the control channel between the library
 * and a VMM process. Each message is a JSON object on one line. */
#pragma once
#include <jansson.h>
#include <stddef.h>

#include "io.h"

#define JSONL_MAX_LINE 65536

struct jsonl_reader {
	int fd;
	size_t len;
	int take_fds; /* receive fds (SCM_RIGHTS) with the lines: jsonl_reader_take_fds */
	unsigned nfds;
	int fds[IO_MAX_FDS]; /* received, not yet taken */
	char buf[JSONL_MAX_LINE];
};

void jsonl_reader_init(struct jsonl_reader *r, int fd);
/* A reader that also receives the fds a peer sends with its lines (jsonl_write_fds). */
void jsonl_reader_init_fds(struct jsonl_reader *r, int fd);
/* Moves the fds received so far into fds (room for IO_MAX_FDS); returns how many. The reader
 * does not keep them: the caller closes them (jsonl_reader_close_fds closes those not taken). */
unsigned jsonl_reader_take_fds(struct jsonl_reader *r, int *fds);
void jsonl_reader_close_fds(struct jsonl_reader *r);
/* Next message into *out (caller json_decref's it). 1: got one; 0: the peer closed;
 * -ETIMEDOUT after timeout_ms (-1: wait forever); -EPROTO: a line that is too long or not a
 * JSON object; -errno otherwise. */
int jsonl_read(struct jsonl_reader *r, int timeout_ms, json_t **out);
/* Writes msg as one line with one send (MSG_NOSIGNAL). Does not take the reference. -EMSGSIZE
 * for a message longer than a reader takes (JSONL_MAX_LINE). */
int jsonl_write(int fd, const json_t *msg);
/* jsonl_write with nfds fds (at most IO_MAX_FDS) sent along (SCM_RIGHTS); they stay ours. */
int jsonl_write_fds(int fd, const json_t *msg, const int *fds, unsigned nfds);
