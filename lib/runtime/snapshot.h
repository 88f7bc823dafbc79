/* Snapshots of the running machine, and restores from them (docs/snapshot.md). The file format
 * is lib/snapshot/; this is what goes into it and how it comes back out. */
#pragma once
#include <jansson.h>
#include <stddef.h>

struct machine;

/* Restore, first step (machine_build, before KVM and the devices exist): reads and checks the
 * state file of cfg->restore_dir against the config and maps the memory file as guest RAM.
 * -ENOENT (a file missing), -EBADMSG (corrupt, truncated, another version, another machine). */
int snapshot_load(struct machine *m, char *err, size_t errlen);
/* Restore, last step (devices and vCPUs created, no thread started): puts the saved state into
 * KVM and the devices, and the guest clock where it stood. Frees what snapshot_load kept. */
int snapshot_apply(struct machine *m, char *err, size_t errlen);
/* Writes a snapshot of the paused machine (machine_pause) into the existing, empty directory
 * dir: the disks, the memory file, then the state file, each synced. On success *result gets a
 * JSON object describing what was written; on failure the files are removed. -errno. */
int snapshot_write(struct machine *m, const char *dir, json_t **result, char *err, size_t errlen);
