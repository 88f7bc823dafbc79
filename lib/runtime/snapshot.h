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
/* Before the jail (the machine built): what a snapshot needs later and cannot open then, the
 * disks' absolute paths and, for RAM mapped from a memory file, /proc/self/pagemap. -errno. */
int snapshot_prepare(struct machine *m, char *err, size_t errlen);
/* Writes a snapshot of the paused machine (machine_pause) into the empty files mem_fd and
 * state_fd, which the library created and passed (the jailed VMM opens nothing): the memory,
 * then the state file with its manifest, each synced. The disks are not copied here: *result
 * (JSON: memory_bytes, timings, and "disks": [{index, path, read_only, file}]) tells the
 * library which to clone into the snapshot while the guest stays paused. -errno with a
 * message; the caller's files are then to be removed by the library. */
int snapshot_write(struct machine *m, int mem_fd, int state_fd, json_t **result, char *err,
		   size_t errlen);
