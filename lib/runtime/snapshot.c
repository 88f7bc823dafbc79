#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices/serial.h"
#include "machine.h"
#include "snapshot/format.h"
#include "snapshot/manifest.h"
#include "util/io.h"
#include "util/log.h"
#include "virtio/blk.h"

#define SNAP_XSAVE_MAX (1u << 20)
#define SNAP_CPUID_MAX 256
#define SNAP_MSRS_MAX 4096

struct snapshot_restore {
	struct snap_reader rd;
	struct snap_manifest man;
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------- saving */

static void save_vcpu(struct snap_writer *w, unsigned i, const struct vcpu_state *s)
{
	snap_writer_add(w, SNAP_SEC_VCPU_CPUID, i, s->cpuid, s->cpuid_size);
	snap_writer_add(w, SNAP_SEC_VCPU_MP_STATE, i, &s->mp_state, sizeof(s->mp_state));
	snap_writer_add(w, SNAP_SEC_VCPU_REGS, i, &s->regs, sizeof(s->regs));
	snap_writer_add(w, SNAP_SEC_VCPU_SREGS, i, &s->sregs, sizeof(s->sregs));
	snap_writer_add(w, SNAP_SEC_VCPU_XSAVE, i, s->xsave, s->xsave_size);
	snap_writer_add(w, SNAP_SEC_VCPU_XCRS, i, &s->xcrs, sizeof(s->xcrs));
	snap_writer_add(w, SNAP_SEC_VCPU_DEBUGREGS, i, &s->debugregs, sizeof(s->debugregs));
	snap_writer_add(w, SNAP_SEC_VCPU_LAPIC, i, &s->lapic, sizeof(s->lapic));
	snap_writer_add(w, SNAP_SEC_VCPU_MSRS, i, s->msrs, s->msrs_size);
	snap_writer_add(w, SNAP_SEC_VCPU_EVENTS, i, &s->events, sizeof(s->events));
	snap_writer_add(w, SNAP_SEC_VCPU_TSC_KHZ, i, &s->tsc_khz, sizeof(s->tsc_khz));
}

/* The clock first: it is what stood still the moment the vCPUs did. */
static int save_vm(struct machine *m, struct snap_writer *w, char *err, size_t errlen)
{
	struct snap_clock clock;
	struct kvm_pit_state2 pit;
	struct kvm_irqchip chip;
	int rc = kvm_vm_get_clock(&m->vm, &clock.clock_ns);

	clock.host_realtime_ns = realtime_ns();
	if (rc < 0) {
		snprintf(err, errlen, "KVM_GET_CLOCK: %s", strerror(-rc));
		return rc;
	}
	snap_writer_add(w, SNAP_SEC_CLOCK, 0, &clock, sizeof(clock));
	for (unsigned i = 0; i < KVM_VM_IRQCHIPS; i++) {
		rc = kvm_vm_get_irqchip(&m->vm, i, &chip);
		if (rc < 0) {
			snprintf(err, errlen, "KVM_GET_IRQCHIP %u: %s", i, strerror(-rc));
			return rc;
		}
		snap_writer_add(w, SNAP_SEC_IRQCHIP, i, &chip, sizeof(chip));
	}
	rc = kvm_vm_get_pit(&m->vm, &pit);
	if (rc < 0) {
		snprintf(err, errlen, "KVM_GET_PIT2: %s", strerror(-rc));
		return rc;
	}
	snap_writer_add(w, SNAP_SEC_PIT, 0, &pit, sizeof(pit));
	for (unsigned i = 0; i < m->cfg->vcpus; i++) {
		struct vcpu_state s;

		rc = vcpu_save(&m->vcpus[i], &m->vm, &s);
		if (rc < 0) {
			snprintf(err, errlen, "vCPU %u state: %s", i, strerror(-rc));
			return rc;
		}
		save_vcpu(w, i, &s);
		vcpu_state_free(&s);
	}
	return 0;
}

static void save_devices(struct machine *m, struct snap_writer *w)
{
	struct virtio_mmio_state vs;
	struct serial_state ss;

	for (unsigned i = 0; i < m->nvirtio; i++) {
		virtio_mmio_save(&m->virtio[i], &vs);
		snap_writer_add(w, SNAP_SEC_VIRTIO, i, &vs, sizeof(vs));
	}
	serial_save(m->serial, &ss);
	snap_writer_add(w, SNAP_SEC_SERIAL, 0, &ss, sizeof(ss));
}

/* Each disk as the manifest records it, and as the answer tells the library, which clones the
 * writable ones into the snapshot while the guest stays paused: a read-only disk stays where it
 * is (the guest cannot have changed it), named with its size and mtime so a changed image is
 * noticed at restore; a writable one becomes disk-N.img of the snapshot. */
static int save_disks(struct machine *m, json_t *disks, json_t *answer, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->cfg->ndisks; i++) {
		const char *path = m->disk_paths[i];
		int ro = m->cfg->disks[i].read_only;
		char name[32];
		struct stat st;

		if (fstat(virtio_blk_fd(m->virtio[i].dev), &st) < 0) {
			snprintf(err, errlen, "disk %u: %s", i, strerror(errno));
			return -errno;
		}
		if (ro && st.st_nlink == 0) {
			snprintf(err, errlen, "disk %u (%s) was deleted; it cannot be referenced",
				 i, path);
			return -ENOENT;
		}
		snprintf(name, sizeof(name), "disk-%u.img", i);
		json_array_append_new(
		    disks, ro ? json_pack("{s:b, s:s, s:I, s:I}", "read_only", 1, "path", path,
					  "size", (json_int_t)st.st_size, "mtime_ns",
					  (json_int_t)st.st_mtim.tv_sec * 1000000000LL +
					      st.st_mtim.tv_nsec)
			      : json_pack("{s:b, s:s, s:I}", "read_only", 0, "file", name, "size",
					  (json_int_t)st.st_size));
		json_array_append_new(answer,
				      json_pack("{s:i, s:s, s:b, s:s*}", "index", (int)i, "path",
						path, "read_only", ro, "file", ro ? NULL : name));
	}
	return 0;
}

static json_t *manifest_build(struct machine *m, json_t *disks)
{
	const struct vmm_config *c = m->cfg;
	json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:O, s:b, s:I}", "id", c->id ? c->id : "",
			      "vcpus", (int)c->vcpus, "memory_mib", (json_int_t)c->memory_mib,
			      "memory_size", (json_int_t)m->mem.total, "disks", disks, "agent",
			      c->agent, "host_realtime_ns", (json_int_t)realtime_ns());

	if (!j)
		return NULL;
	if (c->vsock_uds)
		json_object_set_new(j, "vsock",
				    json_pack("{s:I}", "cid", (json_int_t)c->vsock_cid));
	if (c->kernel)
		json_object_set_new(j, "kernel", json_string(c->kernel));
	if (c->initramfs)
		json_object_set_new(j, "initramfs", json_string(c->initramfs));
	if (c->cmdline)
		json_object_set_new(j, "cmdline", json_string(c->cmdline));
	if (m->egress && json_object_set_new(j, "net", json_true()) < 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int snapshot_prepare(struct machine *m, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->cfg->ndisks; i++) {
		m->disk_paths[i] = realpath(m->cfg->disks[i].path, NULL);
		if (!m->disk_paths[i]) {
			snprintf(err, errlen, "disk %s: %s", m->cfg->disks[i].path,
				 strerror(errno));
			return -errno;
		}
	}
	/* Only RAM mapped from a memory file needs it: which pages are private copies. */
	if (m->mem.kind == GUEST_MEM_FILE) {
		m->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (m->pagemap_fd < 0) {
			snprintf(err, errlen, "/proc/self/pagemap: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

int snapshot_write(struct machine *m, int mem_fd, int state_fd, json_t **result, char *err,
		   size_t errlen)
{
	json_t *disks = json_array(), *answer = json_array(), *manifest = NULL;
	double t0 = monotonic_s(), t_state, t_mem;
	char *text = NULL;
	struct snap_writer w;
	uint64_t written = 0;
	int rc;

	snap_writer_init(&w);
	rc = save_vm(m, &w, err, errlen);
	if (rc < 0)
		goto out;
	save_devices(m, &w);
	rc = save_disks(m, disks, answer, err, errlen);
	if (rc < 0)
		goto out;
	t_state = monotonic_s();
	rc = guest_mem_save(&m->mem, mem_fd, m->pagemap_fd, &written);
	if (rc < 0) {
		snprintf(err, errlen, "memory file: %s", strerror(-rc));
		goto out;
	}
	t_mem = monotonic_s();
	manifest = manifest_build(m, disks);
	text = manifest ? json_dumps(manifest, JSON_COMPACT) : NULL;
	if (!text) {
		rc = -ENOMEM;
		snprintf(err, errlen, "building the manifest: out of memory");
		goto out;
	}
	snap_writer_add(&w, SNAP_SEC_MANIFEST, 0, text, strlen(text));
	rc = snap_writer_finish(&w);
	if (rc < 0) {
		snprintf(err, errlen, "building the state file: %s", strerror(-rc));
		goto out;
	}
	rc = write_all(state_fd, w.buf, w.len);
	if (rc == 0 && fsync(state_fd) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "state file: %s", strerror(-rc));
		goto out;
	}
	*result = json_pack("{s:I, s:I, s:f, s:f, s:f, s:O}", "memory_bytes", (json_int_t)written,
			    "state_bytes", (json_int_t)w.len, "state_s", t_state - t0, "memory_s",
			    t_mem - t_state, "total_s", monotonic_s() - t0, "disks", answer);
	if (!*result) {
		rc = -ENOMEM;
		snprintf(err, errlen, "the answer: out of memory");
	}
out:
	free(text);
	json_decref(manifest);
	json_decref(disks);
	json_decref(answer);
	snap_writer_free(&w);
	return rc;
}

/* ---------------------------------------------------------------- restoring */

static int load_bad(char *err, size_t errlen, const char *dir, const char *what)
{
	snprintf(err, errlen, "snapshot %s: %s", dir, what);
	return -EBADMSG;
}

/* The library built the config from the same manifest, so a difference means a corrupt or
 * swapped state file. */
static int load_check_config(const struct snap_manifest *man, const struct vmm_config *c, char *err,
			     size_t errlen)
{
	if (man->vcpus != c->vcpus || man->memory_mib != c->memory_mib ||
	    man->ndisks != c->ndisks || (man->vsock_cid != 0) != (c->vsock_uds != NULL) ||
	    man->net != (c->net.tap_fd >= 0) ||
	    (c->vsock_uds && man->vsock_cid != c->vsock_cid))
		return load_bad(err, errlen, c->restore_dir,
				"the machine it describes is not the one configured");
	for (unsigned i = 0; i < man->ndisks; i++)
		if (man->disks[i].read_only != c->disks[i].read_only)
			return load_bad(err, errlen, c->restore_dir,
					"a disk's read-only flag differs from the config");
	return 0;
}

static int load_memory(struct machine *m, const struct snap_manifest *man, char *err, size_t errlen)
{
	const char *dir = m->cfg->restore_dir;
	char path[PATH_MAX], msg[PATH_MAX + 128];
	struct stat st;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, SNAP_MEMORY_FILE);
	rc = guest_mem_map_file(&m->mem, path, man->memory_size);
	if (rc == -EINVAL && stat(path, &st) == 0) {
		snprintf(msg, sizeof(msg), "memory file %s is truncated: %lld of %llu bytes", path,
			 (long long)st.st_size, (unsigned long long)man->memory_size);
		return load_bad(err, errlen, dir, msg);
	}
	if (rc < 0)
		snprintf(err, errlen, "snapshot %s: memory file %s: %s", dir, path, strerror(-rc));
	return rc;
}

int snapshot_load(struct machine *m, char *err, size_t errlen)
{
	const char *dir = m->cfg->restore_dir;
	struct snapshot_restore *r = calloc(1, sizeof(*r));
	const struct snap_section *s;
	char path[PATH_MAX], msg[512];
	int rc;

	if (!r)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", dir, SNAP_STATE_FILE);
	rc = snap_read_file(path, &r->rd, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "snapshot %s: %s", dir, msg);
		if (rc == -EPROTONOSUPPORT || rc == -EFBIG)
			rc = -EBADMSG;
		goto fail;
	}
	s = snap_find(&r->rd, SNAP_SEC_MANIFEST, 0);
	rc = s ? snap_manifest_parse(s->data, s->size, &r->man, msg, sizeof(msg)) : -EBADMSG;
	if (rc < 0) {
		rc = load_bad(err, errlen, dir, s ? msg : "no manifest");
		goto fail;
	}
	rc = load_check_config(&r->man, m->cfg, err, errlen);
	if (rc == 0)
		rc = load_memory(m, &r->man, err, errlen);
	if (rc < 0)
		goto fail;
	m->restore = r;
	return 0;
fail:
	snap_manifest_free(&r->man);
	snap_reader_free(&r->rd);
	free(r);
	return rc;
}

/* A section whose size a count inside it determines: header plus count entries exactly. */
static const struct snap_section *load_array(const struct snapshot_restore *r, uint32_t type,
					     unsigned i, size_t head, size_t entry, size_t max,
					     char *msg, size_t msglen)
{
	const struct snap_section *s = snap_find(&r->rd, type, i);
	uint32_t count;

	if (!s || s->size < head) {
		snprintf(msg, msglen, "%s section for %u missing or short", snap_section_name(type),
			 i);
		return NULL;
	}
	memcpy(&count, s->data, sizeof(count)); /* nent / nmsrs lead both structures */
	if (count > max || s->size != head + (uint64_t)count * entry) {
		snprintf(msg, msglen, "%s section for %u: %u entries in %llu bytes",
			 snap_section_name(type), i, count, (unsigned long long)s->size);
		return NULL;
	}
	return s;
}

/* The saved XSAVE area is copied into one at least as large as this host's, zero-padded. */
static int load_xsave(struct machine *m, unsigned i, struct vcpu_state *st, char *msg,
		      size_t msglen)
{
	const struct snap_section *s = snap_find(&m->restore->rd, SNAP_SEC_VCPU_XSAVE, i);
	size_t size;

	if (!s || s->size < sizeof(struct kvm_xsave) || s->size > SNAP_XSAVE_MAX) {
		snprintf(msg, msglen, "XSAVE section for %u missing or of a bad size", i);
		return -EBADMSG;
	}
	size = s->size > m->vm.xsave_size ? s->size : m->vm.xsave_size;
	st->xsave = calloc(1, size);
	if (!st->xsave)
		return -ENOMEM;
	memcpy(st->xsave, s->data, s->size);
	st->xsave_size = size;
	return 0;
}

static int load_vcpu_state(struct machine *m, unsigned i, struct vcpu_state *st, char *msg,
			   size_t msglen)
{
	const struct snapshot_restore *r = m->restore;
	const struct snap_section *cpuid, *msrs;
	int rc;

	memset(st, 0, sizeof(*st));
	cpuid = load_array(r, SNAP_SEC_VCPU_CPUID, i, sizeof(struct kvm_cpuid2),
			   sizeof(struct kvm_cpuid_entry2), SNAP_CPUID_MAX, msg, msglen);
	msrs = cpuid ? load_array(r, SNAP_SEC_VCPU_MSRS, i, sizeof(struct kvm_msrs),
				  sizeof(struct kvm_msr_entry), SNAP_MSRS_MAX, msg, msglen)
		     : NULL;
	if (!cpuid || !msrs)
		return -EBADMSG;
	if ((rc = snap_get(&r->rd, SNAP_SEC_VCPU_MP_STATE, i, &st->mp_state, sizeof(st->mp_state),
			   msg, msglen)) < 0 ||
	    (rc = snap_get(&r->rd, SNAP_SEC_VCPU_REGS, i, &st->regs, sizeof(st->regs), msg,
			   msglen)) < 0 ||
	    (rc = snap_get(&r->rd, SNAP_SEC_VCPU_SREGS, i, &st->sregs, sizeof(st->sregs), msg,
			   msglen)) < 0 ||
	    (rc = snap_get(&r->rd, SNAP_SEC_VCPU_XCRS, i, &st->xcrs, sizeof(st->xcrs), msg,
			   msglen)) < 0 ||
	    (rc = snap_get(&r->rd, SNAP_SEC_VCPU_DEBUGREGS, i, &st->debugregs,
			   sizeof(st->debugregs), msg, msglen)) < 0 ||
	    (rc = snap_get(&r->rd, SNAP_SEC_VCPU_LAPIC, i, &st->lapic, sizeof(st->lapic), msg,
			   msglen)) < 0 ||
	    (rc = snap_get(&r->rd, SNAP_SEC_VCPU_EVENTS, i, &st->events, sizeof(st->events), msg,
			   msglen)) < 0 ||
	    (rc = snap_get(&r->rd, SNAP_SEC_VCPU_TSC_KHZ, i, &st->tsc_khz, sizeof(st->tsc_khz), msg,
			   msglen)) < 0)
		return -EBADMSG;
	st->cpuid = malloc(cpuid->size);
	st->msrs = malloc(msrs->size);
	if (!st->cpuid || !st->msrs)
		return -ENOMEM;
	memcpy(st->cpuid, cpuid->data, cpuid->size);
	memcpy(st->msrs, msrs->data, msrs->size);
	st->cpuid_size = cpuid->size;
	st->msrs_size = msrs->size;
	return load_xsave(m, i, st, msg, msglen);
}

static int apply_vcpus(struct machine *m, char *err, size_t errlen)
{
	char msg[256];
	int rc = 0;

	for (unsigned i = 0; i < m->cfg->vcpus && rc == 0; i++) {
		struct vcpu_state st;

		rc = load_vcpu_state(m, i, &st, msg, sizeof(msg));
		if (rc < 0)
			rc = load_bad(err, errlen, m->cfg->restore_dir, msg);
		else
			rc = vcpu_restore(&m->vcpus[i], &st, err, errlen);
		vcpu_state_free(&st);
	}
	return rc;
}

/* PIC and IOAPIC before the vCPUs' LAPICs are fed anything, and the PIT. */
static int apply_vm(struct machine *m, char *err, size_t errlen)
{
	const struct snap_reader *rd = &m->restore->rd;
	struct kvm_pit_state2 pit;
	struct kvm_irqchip chip;
	char msg[256];
	int rc;

	for (unsigned i = 0; i < KVM_VM_IRQCHIPS; i++) {
		if (snap_get(rd, SNAP_SEC_IRQCHIP, i, &chip, sizeof(chip), msg, sizeof(msg)) < 0 ||
		    chip.chip_id != i)
			return load_bad(err, errlen, m->cfg->restore_dir, "irqchip state missing");
		rc = kvm_vm_set_irqchip(&m->vm, &chip);
		if (rc < 0) {
			snprintf(err, errlen, "KVM_SET_IRQCHIP %u: %s", i, strerror(-rc));
			return rc;
		}
	}
	if (snap_get(rd, SNAP_SEC_PIT, 0, &pit, sizeof(pit), msg, sizeof(msg)) < 0)
		return load_bad(err, errlen, m->cfg->restore_dir, msg);
	rc = kvm_vm_set_pit(&m->vm, &pit);
	if (rc < 0)
		snprintf(err, errlen, "KVM_SET_PIT2: %s", strerror(-rc));
	return rc;
}

static int apply_devices(struct machine *m, char *err, size_t errlen)
{
	const struct snap_reader *rd = &m->restore->rd;
	struct virtio_mmio_state vs;
	struct serial_state ss;
	char msg[256];
	int rc;

	for (unsigned i = 0; i < m->nvirtio; i++) {
		if (snap_get(rd, SNAP_SEC_VIRTIO, i, &vs, sizeof(vs), msg, sizeof(msg)) < 0)
			return load_bad(err, errlen, m->cfg->restore_dir, msg);
		rc = virtio_mmio_restore(&m->virtio[i], &vs);
		if (rc < 0) {
			snprintf(msg, sizeof(msg), "%s (device %u): %s", m->virtio[i].ops->name, i,
				 rc == -EIO ? "would not activate"
					    : "state does not fit the device");
			return load_bad(err, errlen, m->cfg->restore_dir, msg);
		}
	}
	if (snap_get(rd, SNAP_SEC_SERIAL, 0, &ss, sizeof(ss), msg, sizeof(msg)) < 0 ||
	    serial_restore(m->serial, &ss) < 0)
		return load_bad(err, errlen, m->cfg->restore_dir, "serial port state");
	/* KVM's idea of the line is not in the irqchip state: assert it again if it was high. */
	if (ss.irq_level)
		kvm_vm_irq_line(&m->vm, SERIAL_COM1_IRQ, 1);
	return 0;
}

/* kvmclock goes back exactly where it stood: the guest's monotonic clock does not count the time
 * the snapshot lay on disk (as with QEMU and Firecracker). Moving it forward by that time would
 * make the guest convert a delta of hours in one step, which overflows the timekeeping of a
 * kvm-clock guest after about 18 minutes; the wall clock is set by the agent instead (the
 * library's "settime" after restore). KVMCLOCK_CTRL keeps the watchdogs quiet. */
static int apply_clock(struct machine *m, char *err, size_t errlen)
{
	struct snap_clock clock;
	char msg[256];
	int rc;

	if (snap_get(&m->restore->rd, SNAP_SEC_CLOCK, 0, &clock, sizeof(clock), msg, sizeof(msg)) <
	    0)
		return load_bad(err, errlen, m->cfg->restore_dir, msg);
	rc = kvm_vm_set_clock(&m->vm, clock.clock_ns);
	if (rc < 0) {
		snprintf(err, errlen, "KVM_SET_CLOCK: %s", strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < m->cfg->vcpus; i++)
		vcpu_clock_paused(&m->vcpus[i]);
	return 0;
}

int snapshot_apply(struct machine *m, char *err, size_t errlen)
{
	char line[PATH_MAX + 64];
	int rc = apply_vm(m, err, errlen);

	if (rc == 0)
		rc = apply_vcpus(m, err, errlen);
	if (rc == 0)
		rc = apply_devices(m, err, errlen);
	if (rc == 0)
		rc = apply_clock(m, err, errlen);
	if (rc == 0) {
		int n = snprintf(line, sizeof(line), "[sandbox-vmm: restored from %s]\n",
				 m->cfg->restore_dir);
		if (write(m->console_fd, line, (size_t)n) < 0)
			vmm_log("console log: %m");
	}
	snap_manifest_free(&m->restore->man);
	snap_reader_free(&m->restore->rd);
	free(m->restore);
	m->restore = NULL;
	return rc;
}
