/* The snapshot state file (docs/snapshot.md): a header, then sections, each with its own CRC32C.
 * Guest memory is not in it: it is the raw file SNAP_MEMORY_FILE beside it, mapped lazily on
 * restore, so it carries no checksum (checking it would read it all up front).
 *
 *   header   48 bytes: magic "SBXSNAP\n", version, header size, file size, section count,
 *            flags (0), CRC32C of the header (its crc field as 0)
 *   section  24-byte header {type, instance, size, crc, reserved 0} and `size` payload bytes,
 *            padded with zeros to a multiple of 8; crc covers the section header (crc as 0) and
 *            the payload
 *
 * All integers little-endian. The parser trusts nothing: a file cut at any length, any flipped
 * bit, or a version it does not know is an error with a message, never a crash. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "SBXSNAP\n"
#define SNAP_VERSION 1
#define SNAP_STATE_FILE "state"
#define SNAP_MEMORY_FILE "memory"
/* The state file is read whole; even 64 vCPUs need a small fraction of this. */
#define SNAP_STATE_MAX (64u << 20)

struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size;
	uint32_t nsections;
	uint32_t flags;
	uint32_t reserved[3];
	uint32_t crc;
};

struct snap_section_header {
	uint32_t type;
	uint32_t instance;
	uint64_t size;
	uint32_t crc;
	uint32_t reserved;
};

_Static_assert(sizeof(struct snap_header) == 48, "snapshot header layout");
_Static_assert(sizeof(struct snap_section_header) == 24, "section header layout");

/* Section types. Never renumbered; a reader ignores types it does not know. The instance is the
 * vCPU index for SNAP_SEC_VCPU_*, the chip for IRQCHIP (0 PIC master, 1 PIC slave, 2 IOAPIC),
 * the device index (config order) for VIRTIO, else 0. KVM structures are stored as the KVM API
 * defines them (x86-64 layout). */
enum snap_section_type {
	SNAP_SEC_MANIFEST = 1, /* JSON: the machine, its memory and disks (snapshot/manifest.h) */
	SNAP_SEC_VCPU_CPUID = 16, /* struct kvm_cpuid2 + entries */
	SNAP_SEC_VCPU_MP_STATE,	  /* struct kvm_mp_state */
	SNAP_SEC_VCPU_REGS,	  /* struct kvm_regs */
	SNAP_SEC_VCPU_SREGS,	  /* struct kvm_sregs */
	SNAP_SEC_VCPU_XSAVE,	  /* struct kvm_xsave, or the larger KVM_GET_XSAVE2 area */
	SNAP_SEC_VCPU_XCRS,	  /* struct kvm_xcrs */
	SNAP_SEC_VCPU_DEBUGREGS,  /* struct kvm_debugregs */
	SNAP_SEC_VCPU_LAPIC,	  /* struct kvm_lapic_state */
	SNAP_SEC_VCPU_MSRS,	  /* struct kvm_msrs + entries */
	SNAP_SEC_VCPU_EVENTS,	  /* struct kvm_vcpu_events */
	SNAP_SEC_VCPU_TSC_KHZ,	  /* uint32_t */
	SNAP_SEC_IRQCHIP = 48,	  /* struct kvm_irqchip */
	SNAP_SEC_PIT,		  /* struct kvm_pit_state2 */
	SNAP_SEC_CLOCK,		  /* struct snap_clock */
	SNAP_SEC_VIRTIO = 64,	  /* struct virtio_mmio_state (virtio/mmio.h) */
	SNAP_SEC_SERIAL,	  /* struct serial_state (devices/serial.h) */
};

/* kvmclock as KVM_GET_CLOCK gave it, and the host's CLOCK_REALTIME read right after. */
struct snap_clock {
	uint64_t clock_ns;
	uint64_t host_realtime_ns;
};

/* ------------------------------------------------------------------ writer */

/* Builds a state file in memory. Errors stick: check once, at snap_writer_finish. */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t nsections;
	int err;
};

void snap_writer_init(struct snap_writer *w);
void snap_writer_add(struct snap_writer *w, uint32_t type, uint32_t instance, const void *data,
		     size_t len);
/* Completes the header. 0, or -ENOMEM (-EFBIG past SNAP_STATE_MAX) if any add failed. The
 * file's bytes are then w->buf[0..w->len). */
int snap_writer_finish(struct snap_writer *w);
void snap_writer_free(struct snap_writer *w);

/* ------------------------------------------------------------------ reader */

struct snap_section {
	uint32_t type, instance;
	const uint8_t *data;
	uint64_t size;
};

struct snap_reader {
	uint8_t *owned; /* the file's bytes when read by snap_read_file */
	struct snap_section *sections;
	uint32_t nsections;
};

/* Validates buf (header, every section's bounds and CRC, nothing after the last) and indexes
 * its sections, which point into buf. 0; -EBADMSG (not a snapshot, truncated, corrupt) or
 * -EPROTONOSUPPORT (another format version), with the reason in err; -ENOMEM. */
int snap_parse(const void *buf, size_t len, struct snap_reader *r, char *err, size_t errlen);
/* Reads the file at path whole and parses it; -ENOENT, -EFBIG and -errno of the read besides. */
int snap_read_file(const char *path, struct snap_reader *r, char *err, size_t errlen);
void snap_reader_free(struct snap_reader *r);
/* The first section of that type and instance, or NULL. */
const struct snap_section *snap_find(const struct snap_reader *r, uint32_t type, uint32_t instance);
/* Copies a section of exactly `size` bytes into out. 0; -ENOENT when absent, -EBADMSG when
 * its size differs; err says which. */
int snap_get(const struct snap_reader *r, uint32_t type, uint32_t instance, void *out, size_t size,
	     char *err, size_t errlen);
/* Static name of a section type for messages ("vCPU registers"). */
const char *snap_section_name(uint32_t type);
