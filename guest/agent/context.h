/* Code interpreter contexts: a table of live kernels (docs/code-interpreter.md), each a process
 * of its own group with four pipes (stdout, stderr, requests, events). A context is shared by
 * the connections that use it through a reference count; run_lock lets one cell (or a restart)
 * use the kernel at a time. The kernel's pid is only signalled while unreaped (pid_lock), so a
 * reused pid is never hit. */
#pragma once
#include "kernels.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#define CONTEXT_MAX 64
#define CONTEXT_ID_MAX 48
/* Kernels start slowly under emulation (a JVM: tens of seconds); a start that takes longer than
 * this has failed. */
#define CONTEXT_START_TIMEOUT_MS (300 * 1000)
/* One event line from a kernel (a large image in base64) may be this long. */
#define CONTEXT_EVENT_MAX (64u << 20)

struct context {
	char id[CONTEXT_ID_MAX];
	const struct language *lang;
	char *cwd;
	char **envp;
	char *version; /* the kernel's, from its ready event */
	pthread_mutex_t run_lock;
	pthread_mutex_t pid_lock;
	pid_t pid; /* 0: no kernel (not started, or reaped) */
	int pidfd, req_fd, ev_fd, out_fd, err_fd;
	char *ev_buf; /* event bytes read but not yet a whole line */
	size_t ev_len, ev_cap;
	atomic_int execution_count; /* reset when a kernel starts */
	int refs; /* under the table's lock */
	int listed;
};

/* Writes the kernels out. 0 or -errno. */
int contexts_init(void);

/* Creates and starts a context (waits for its kernel's ready event) and lists it; *out holds a
 * reference. env (may be NULL) is an object of strings added to the kernel's environment.
 * 0 or -errno with a message in err. */
int context_create(const struct language *l, const char *cwd, json_t *env, struct context **out,
		   char *err, size_t errlen);
/* The default context of a language, created on first use. */
int context_default(const struct language *l, struct context **out, char *err, size_t errlen);
/* Whether ctx is still listed (not destroyed). */
int context_listed(struct context *ctx);
/* A reference to the listed context id, or NULL. */
struct context *context_get(const char *id);
void context_put(struct context *ctx);
/* Unlists the context and kills its kernel (a cell running in it ends); freed with the last
 * reference. -ENOENT if id is not listed. */
int context_destroy(const char *id);
/* [{"id","language","cwd","execution_count"}...] */
json_t *contexts_list(void);

/* With run_lock held: */
/* Starts the kernel and waits for ready. 0 or -errno with a message in err. */
int kernel_start(struct context *ctx, char *err, size_t errlen);
/* Kills the kernel (group and leader) and reaps it; its wait status. Safe without a kernel. */
int kernel_reap(struct context *ctx);
/* kernel_reap, then closes its pipes and frees its event buffer. */
void kernel_stop(struct context *ctx);
/* The next whole event line as JSON (new reference) from what has been read; NULL if none yet.
 * A line that is not a JSON object is -EPROTO in *rc. */
json_t *kernel_event_next(struct context *ctx, int *rc);
/* Reads what the events pipe has. 1: read something; 0: nothing now; -EPIPE at end of file;
 * -E2BIG for an overlong line; -errno. */
int kernel_events_read(struct context *ctx);

/* One read of a kernel's output pipe *fd; at end of file the pipe is closed and *fd set to -1
 * (so it is polled no more). Bytes read, 0 at EOF or when nothing is there, -1 on error. */
ssize_t kernel_pipe_read(int *fd, void *buf, size_t len);

/* Without run_lock (any thread): signals the kernel's group and leader, if there is a kernel. */
void kernel_signal(struct context *ctx, int sig);
