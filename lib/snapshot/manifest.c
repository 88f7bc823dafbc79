#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int snap_file_name_ok(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

static int manifest_bad(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "manifest: %s", what);
	return -EBADMSG;
}

static int manifest_disk(json_t *d, struct snap_disk *disk, char *err, size_t errlen)
{
	json_int_t size = -1, mtime = 0;
	json_error_t jerr;

	if (json_unpack_ex(d, &jerr, 0, "{s?s, s?s, s:b, s:I, s?I}", "file", &disk->file, "path",
			   &disk->path, "read_only", &disk->read_only, "size", &size, "mtime_ns",
			   &mtime) < 0)
		return manifest_bad(err, errlen, jerr.text);
	if (!disk->file == !disk->path)
		return manifest_bad(err, errlen, "a disk needs exactly one of file and path");
	if (disk->file && !snap_file_name_ok(disk->file))
		return manifest_bad(err, errlen, "a disk file name is not a plain name");
	if (disk->path && disk->path[0] != '/')
		return manifest_bad(err, errlen, "a disk path is not absolute");
	if (size < 0)
		return manifest_bad(err, errlen, "a disk size is negative");
	disk->size = (uint64_t)size;
	disk->mtime_ns = mtime;
	return 0;
}

int snap_manifest_parse(const void *data, size_t len, struct snap_manifest *m, char *err,
			size_t errlen)
{
	json_int_t vcpus = 0, mib = 0, size = 0, cid = 0, realtime = 0;
	json_t *disks = NULL, *vsock = NULL, *net = NULL, *d;
	json_error_t jerr;
	size_t i;
	int rc;

	memset(m, 0, sizeof(*m));
	m->json = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!m->json || !json_is_object(m->json)) {
		snap_manifest_free(m);
		return manifest_bad(err, errlen, "not a JSON object");
	}
	if (json_unpack_ex(
		m->json, &jerr, 0, "{s:s, s:I, s:I, s:I, s:o, s?o, s:b, s:I, s?s, s?s, s?s, s?o}",
		"id", &m->id, "vcpus", &vcpus, "memory_mib", &mib, "memory_size", &size, "disks",
		&disks, "vsock", &vsock, "agent", &m->agent, "host_realtime_ns", &realtime,
		"kernel", &m->kernel, "initramfs", &m->initramfs, "cmdline", &m->cmdline, "net",
		&net) < 0) {
		rc = manifest_bad(err, errlen, jerr.text);
		goto fail;
	}
	if (vcpus < 1 || vcpus > SNAP_MAX_VCPUS || mib < SNAP_MIN_MEMORY_MIB ||
	    (uint64_t)mib > SNAP_MAX_MEMORY_MIB || size != mib * 1024 * 1024) {
		rc = manifest_bad(err, errlen, "vcpus or memory out of range");
		goto fail;
	}
	m->vcpus = (unsigned)vcpus;
	m->memory_mib = (uint64_t)mib;
	m->memory_size = (uint64_t)size;
	m->host_realtime_ns = realtime;
	if (!json_is_array(disks) || json_array_size(disks) > SNAP_MAX_DISKS) {
		rc = manifest_bad(err, errlen, "disks is not an array of at most 8");
		goto fail;
	}
	json_array_foreach(disks, i, d)
	{
		rc = manifest_disk(d, &m->disks[i], err, errlen);
		if (rc < 0)
			goto fail;
	}
	m->ndisks = (unsigned)json_array_size(disks);
	if (vsock && !json_is_null(vsock)) {
		if (json_unpack(vsock, "{s:I}", "cid", &cid) < 0 || cid < 3 || cid > 0xfffffffeLL) {
			rc = manifest_bad(err, errlen, "vsock cid missing or out of range");
			goto fail;
		}
		if (m->ndisks + 1 > SNAP_MAX_DISKS) {
			rc = manifest_bad(err, errlen, "too many devices");
			goto fail;
		}
		m->vsock_cid = (uint64_t)cid;
	}
	m->net = json_is_true(net);
	if ((net && !json_is_boolean(net)) ||
	    m->ndisks + (m->vsock_cid != 0) + (unsigned)m->net > SNAP_MAX_DISKS) {
		rc = manifest_bad(err, errlen, "net is not a boolean, or too many devices");
		goto fail;
	}
	return 0;
fail:
	snap_manifest_free(m);
	return rc;
}

void snap_manifest_free(struct snap_manifest *m)
{
	json_decref(m->json);
	memset(m, 0, sizeof(*m));
}
