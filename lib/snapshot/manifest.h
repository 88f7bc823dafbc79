/* The manifest section of a snapshot (JSON): what machine to rebuild, where its memory and disks
 * are. Written by the VMM, read by the library (to prepare a restore) and by the VMM (to check
 * the machine it builds against it). docs/snapshot.md lists the fields. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAX_DISKS 8
#define SNAP_MAX_VCPUS 64
#define SNAP_MIN_MEMORY_MIB 64
#define SNAP_MAX_MEMORY_MIB (1ULL << 20)

struct snap_disk {
	/* Exactly one of the two: a copy inside the snapshot directory (a plain file name), or
	 * a read-only image left where it was (an absolute path). */
	const char *file;
	const char *path;
	int read_only;
	uint64_t size;
	int64_t mtime_ns; /* of path: a changed image no longer matches the memory */
};

struct snap_manifest {
	json_t *json; /* owns every string below */
	const char *id;
	unsigned vcpus;
	uint64_t memory_mib;
	uint64_t memory_size; /* bytes of guest RAM, and so of SNAP_MEMORY_FILE */
	struct snap_disk disks[SNAP_MAX_DISKS];
	unsigned ndisks;
	uint64_t vsock_cid;	  /* 0: no vsock device */
	int agent;		  /* the guest runs the agent: it is ready once the agent answers */
	int64_t host_realtime_ns; /* when the snapshot was taken */
	const char *kernel, *initramfs, *cmdline; /* what the guest booted, for the record */
	/* The machine has a virtio-net device. What its network is (policy, upstream) is the
	 * library's record beside the manifest (lib/api/net_record.h), never the VMM's word. */
	int net;
};

/* Parses and checks the JSON text of a manifest section. 0 or -EBADMSG with err set. */
int snap_manifest_parse(const void *data, size_t len, struct snap_manifest *m, char *err,
			size_t errlen);
void snap_manifest_free(struct snap_manifest *m);
/* Whether name can be a file inside the snapshot directory: no '/', not "." or "..". */
int snap_file_name_ok(const char *name);
