/* Where sandboxes keep their files: <base>/<id>/ with console.log, vmm.log and sockets. */
#pragma once
#include <stddef.h>

/* The base directory: base itself, or the default described below. SBX_OK, SBX_EINVAL (too
 * long), or SBX_EPERM (the /tmp fallback exists but is not a private directory of ours). */
int state_dir_base(const char *base, char *buf, size_t len);
/* Creates <base>/<id> (mode 0700, base created if missing). base NULL: $SANDBOX_STATE_DIR, else
 * /run/libsandbox for root, else $XDG_RUNTIME_DIR/libsandbox, else /tmp/libsandbox-<uid>.
 * *dir gets the malloc'd path. SBX_* code with the message in err. */
int state_dir_make(const char *base, const char *id, char **dir, char *err);
/* Removes a sandbox directory, the files in it and the directories of files in it (a fork's
 * snapshot). 0 (gone), or -errno. */
int state_dir_remove(const char *dir);
/* The sandbox's liveness lock, <dir>/lock, held shared (flock) by whoever keeps the sandbox:
 * its creator's handle, the VMM and its monitor (they inherit the creator's fd) and attached
 * handles. It is free only once all of them are gone, however they ended, and a reused pid
 * cannot fake it. state_dir_hold takes it (create: makes the file): the fd, or an SBX_* code
 * (negative) with the message in err. */
int state_dir_hold(const char *dir, int create, char *err);
/* Takes the lock exclusively without waiting, for removing a dead sandbox: the fd (keep it while
 * removing), -EAGAIN (someone holds it), -ENOENT (no lock file), or another -errno. */
int state_dir_try_lock(const char *dir);
