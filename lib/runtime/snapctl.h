/* The snapshot side of the command socket (control_server.h, docs/snapshot.md "Protocol"). The
 * jailed VMM can open no file, so the library creates the snapshot's memory and state files and
 * passes them with the command; it clones the disks itself while the guest stays paused, then
 * lets the guest go on or stops it. */
#pragma once
#include <jansson.h>

#include "machine.h"

/* {"cmd": "snapshot"} with two fds (memory file, state file, both new and empty): pauses the
 * guest, writes both files and answers {"ok": true, "disks": [...], "memory_bytes": N, ...}
 * with the guest left paused (*paused set; machine_resume or machine_stop end that). A failed
 * snapshot answers {"ok": false, ...} and the guest runs on. Main thread only. */
json_t *snapctl_snapshot(struct machine *m, const int *fds, unsigned nfds, int *paused);
