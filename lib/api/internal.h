/* Library internals shared by the files of lib/api. */
#pragma once
#include <sandbox.h>
#include <stdarg.h>
#include <pthread.h>
#include <sys/types.h>

#include "util/jsonl.h"

/* The VMM has 8 interrupt pins for virtio devices; vsock takes one. */
#define SBX_MAX_DISKS 7
#define SBX_ERRMSG_MAX 512

struct sbx_disk {
	char *path;
	int read_only;
};

struct sbx_config {
	char *kernel, *initramfs, *kernel_args, *init_command, *state_dir, *vmm_path;
	struct sbx_disk disks[SBX_MAX_DISKS];
	unsigned ndisks;
	unsigned vcpus;
	unsigned memory_mib;
	int detached;
	char err[SBX_ERRMSG_MAX];
};

struct sbx_sandbox {
	char id[33];
	char *dir;
	pid_t pid;
	int is_child; /* pid is our child (reap it); else a detached VMM we only signal */
	int detached;
	int ctl_fd;   /* control channel; -1 for an attached handle or once the VMM is gone */
	struct jsonl_reader *reader;
	int ready;          /* the init printed its ready line */
	int wants_agent;    /* no init command: the sandbox is ready once its agent answers */
	int agent_up;
	double ready_seconds;
	int exit_reason;
	sbx_snapshot_info *restore_info; /* how it was restored, NULL if it was created */
	/* Guards err: exec and file calls may run on many threads at once. */
	pthread_mutex_t err_lock;
	char err[SBX_ERRMSG_MAX];
};

/* A growing byte buffer, always NUL-terminated past its data (output, whole-file reads). */
struct sbx_buf {
	char *data;
	size_t len, cap;
};

/* Appends len bytes (none: just makes sure data exists). SBX_OK or SBX_ENOMEM. */
int sbx_buf_append(struct sbx_buf *b, const void *data, size_t len);
/* The data ("" when none yet, or b is NULL) and its length in *len (may be NULL). */
const char *sbx_buf_view(const struct sbx_buf *b, size_t *len);

/* Records code and message as the sandbox's last error (thread-safe); returns code. */
int sandbox_error(sbx_sandbox *sb, int code, const char *message);
/* A handle with an id (NULL: a fresh random one) and its state directory, no VMM yet. */
int sandbox_alloc(sbx_config *cfg, const char *id, sbx_sandbox **out);
/* Spawns the VMM with its config msg and waits for it to report "started". */
int sandbox_launch(sbx_sandbox *sb, sbx_config *cfg, const json_t *msg);
/* Kills whatever is left of the sandbox, removes its files and frees the handle. */
void sandbox_free(sbx_sandbox *sb);
/* Whether the VMM process pid is gone (or a zombie). */
int sandbox_process_gone(pid_t pid);

/* Records "message" in buf and returns code, so error paths read `return sbx_fail(...)`. */
__attribute__((format(printf, 3, 4))) int sbx_fail(char *buf, int code, const char *fmt, ...);
/* Maps an error name sent by the VMM ("EKERNEL") back to its code; SBX_EVMM if unknown. */
int sbx_err_from_name(const char *name);
/* strdup that reports failure as SBX_ENOMEM; replaces *dst (freeing the old value). */
int sbx_set_string(char **dst, const char *src);
