/* sandbox-agent: the in-guest server of docs/agent-protocol.md. Declarations shared by its
 * files: main.c (listening, a thread per connection), request.c (reading and dispatching the
 * request, replies), exec.c + spawn.c + proc.c (processes), files.c + fsops.c (files), users.c
 * and errname.c. */
#pragma once
#include "agent/proto.h"
#include "util/json_lossy.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_NAME "sandbox-agent"
#define AGENT_MAX_CONNS 256
/* How long a client may stay silent where the agent waits for it: before its request, and
 * between the frames of a file it uploads. A process that runs long is no silence. */
#define AGENT_REQUEST_TIMEOUT_MS (60 * 1000)
#define AGENT_IDLE_TIMEOUT_MS (5 * 60 * 1000)
/* After the final event, how long the client's leftover bytes are read and dropped. */
#define AGENT_LINGER_MS 1000
/* STDOUT/STDERR frames carry what one read of the pipe gave, at most this much. */
#define AGENT_PIPE_CHUNK (64u << 10)
/* The error messages name paths; cut long ones so an event always fits a JSON frame. */
#define AGENT_MSG_PATH_MAX 1024

/* One client connection: the socket, its frame reader (1 MiB buffer, on the heap) and the
 * request, which lives until the connection closes. */
struct conn {
	int fd;
	struct frame_reader *rd;
	json_t *req;
};

/* request.c */
void conn_serve(int fd);
/* Sends msg (a reference is stolen). 0 or -errno. */
int reply_json(struct conn *c, json_t *msg);
/* {"event":"result", ...fields}; fields (stolen) may be NULL. */
int reply_result(struct conn *c, json_t *fields);
/* {"event":"error","code":errno_name(err),"message":...}. */
int reply_error(struct conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The usual message: "<what> <path>: <strerror(err)>", the path cut to AGENT_MSG_PATH_MAX. */
int reply_errno(struct conn *c, int err, const char *what, const char *path);
/* Request fields. Absent or null: the default (or -1 with an EINVAL error sent, if required).
 * A value of the wrong type or out of range: an EINVAL error is sent and -1 returned. */
int arg_string(struct conn *c, const char *key, int required, const char **out);
int arg_bool(struct conn *c, const char *key, int def, int *out);
int arg_int(struct conn *c, const char *key, long long def, long long min, long long max,
	    long long *out);
/* A path for a message: at most AGENT_MSG_PATH_MAX bytes, cut on a UTF-8 boundary. */
const char *msg_path(const char *path, char *buf, size_t len);
/* CLOCK_MONOTONIC and CLOCK_BOOTTIME in ms. */
int64_t agent_now_ms(void);
int64_t agent_uptime_ms(void);

/* errname.c: "ENOENT" for ENOENT; "EIO" for anything not in the table. */
const char *errno_name(int err);

/* The operations; each sends the final event itself. */
void op_exec(struct conn *c);
void op_wait(struct conn *c);
void op_kill(struct conn *c);
void op_write(struct conn *c);
void op_read(struct conn *c);
void op_list(struct conn *c);
void op_stat(struct conn *c);
void op_remove(struct conn *c);
void op_mkdir(struct conn *c);
void op_rename(struct conn *c);
/* The code interpreter (docs/code-interpreter.md). */
void op_run_code(struct conn *c);
void op_context_create(struct conn *c);
void op_context_list(struct conn *c);
void op_context_restart(struct conn *c);
void op_context_destroy(struct conn *c);
struct language;
/* The language called name, or NULL with an EINVAL error (listing the known ones) sent. */
const struct language *language_or_reply(struct conn *c, const char *name);
/* reseed.c */
void op_reseed(struct conn *c);
/* net.c */
void op_net(struct conn *c);
