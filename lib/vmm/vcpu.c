#define _GNU_SOURCE
#include "vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"

#define CPUID_MAX_ENTRIES 256
#define CPUID_HYPERVISOR (1u << 31) /* leaf 1 ECX */
#define CPUID_HTT (1u << 28)        /* leaf 1 EDX */

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

#define CR0_PE 0x1u
#define CR0_ET 0x10u
#define CR0_PG 0x80000000u
#define CR4_PAE 0x20u
#define EFER_LME 0x100u
#define EFER_LMA 0x400u

/* The guest sees which vCPU it runs on through its APIC id in CPUID. */
static int vcpu_set_cpuid(struct kvm_vm *vm, struct vcpu *v, unsigned ncpus)
{
	size_t size = sizeof(*vm->cpuid) + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = malloc(size);
	int rc = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, vm->cpuid, size);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (v->id << 24) | ((ncpus & 0xff) << 16);
			e->ecx |= CPUID_HYPERVISOR;
			if (ncpus > 1)
				e->edx |= CPUID_HTT;
			break;
		case 0xb:
		case 0x1f:
			e->edx = v->id; /* x2APIC id */
			break;
		}
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		rc = -errno;
	free(c);
	return rc;
}

static void lapic_set_lvt_mode(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, l->regs + reg, 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(l->regs + reg, &v, 4);
}

static int vcpu_set_lapic(struct vcpu *v)
{
	struct kvm_lapic_state l;

	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	lapic_set_lvt_mode(&l, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	lapic_set_lvt_mode(&l, APIC_LVT_LINT1, APIC_MODE_NMI);
	return ioctl(v->fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

int vcpu_create(struct kvm_vm *vm, unsigned id, unsigned ncpus, struct vcpu *out)
{
	struct vcpu v = { .id = id, .run_size = vm->run_size };
	int rc;

	v.fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v.fd < 0)
		return -errno;
	v.run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v.fd, 0);
	if (v.run == MAP_FAILED) {
		rc = -errno;
		v.run = NULL;
		goto fail;
	}
	rc = vcpu_set_cpuid(vm, &v, ncpus);
	if (rc == 0)
		rc = vcpu_set_lapic(&v);
	if (rc < 0)
		goto fail;
	*out = v;
	return 0;
fail:
	vcpu_destroy(&v);
	return rc;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static void segment_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.s = 1, .g = 1, .l = (uint8_t)code, .db = (uint8_t)!code,
	};
}

int vcpu_setup_boot(struct vcpu *v, const struct boot_entry *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 0x2, .rip = e->rip, .rsi = e->rsi, .rsp = e->rsp,
				 .rbp = e->rsp };
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	segment_flat(&sregs.cs, BOOT_SEL_CODE, 0xb, 1);
	segment_flat(&sregs.ds, BOOT_SEL_DATA, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){ .selector = BOOT_SEL_TSS, .limit = 0xfff, .type = 0xb,
					 .present = 1 };
	sregs.gdt.base = BOOT_GDT_ADDR;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
	sregs.cr3 = BOOT_PML4_ADDR;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0 ||
	    ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

/* Port I/O exit: `count` back-to-back accesses (string I/O) of `size` bytes each. */
static void vcpu_handle_io(struct vcpu *v, const struct vcpu_env *env)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	int is_write = r->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size)
		bus_dispatch(env->pio, r->io.port, data, r->io.size, is_write);
}

static const char *vcpu_event_name(uint32_t type)
{
	switch (type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN: return "shutdown";
	case KVM_SYSTEM_EVENT_RESET: return "reset";
	case KVM_SYSTEM_EVENT_CRASH: return "crash";
	default: return "unknown system event";
	}
}

int vcpu_run(struct vcpu *v, const struct vcpu_env *env)
{
	struct kvm_run *r = v->run;
	char detail[160];

	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			int err = errno;

			if (err == EINTR && env->on_kick)
				env->on_kick(env->ctx, v);
			if (err == EINTR || err == EAGAIN)
				continue;
			return -err;
		}
		switch (r->exit_reason) {
		case KVM_EXIT_IO:
			vcpu_handle_io(v, env);
			break;
		case KVM_EXIT_MMIO:
			if (r->mmio.len <= sizeof(r->mmio.data))
				bus_dispatch(env->mmio, r->mmio.phys_addr, r->mmio.data, r->mmio.len,
					     r->mmio.is_write);
			break;
		case KVM_EXIT_SHUTDOWN:
			env->on_stop(env->ctx, VCPU_STOP_CRASH, "triple fault");
			return 0;
		case KVM_EXIT_SYSTEM_EVENT:
			env->on_stop(env->ctx,
				     r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? VCPU_STOP_POWEROFF
				     : r->system_event.type == KVM_SYSTEM_EVENT_RESET  ? VCPU_STOP_RESET
										       : VCPU_STOP_CRASH,
				     vcpu_event_name(r->system_event.type));
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(detail, sizeof(detail), "VM entry failed (reason 0x%llx) on vCPU %u",
				 (unsigned long long)r->fail_entry.hardware_entry_failure_reason, v->id);
			env->on_stop(env->ctx, VCPU_STOP_CRASH, detail);
			return 0;
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(detail, sizeof(detail), "KVM internal error %u on vCPU %u",
				 r->internal.suberror, v->id);
			env->on_stop(env->ctx, VCPU_STOP_CRASH, detail);
			return 0;
		case KVM_EXIT_HLT:
			/* With the in-kernel LAPIC, HLT only exits when the guest halts for good. */
			env->on_stop(env->ctx, VCPU_STOP_CRASH, "vCPU halted with interrupts off");
			return 0;
		default:
			vmm_log("vcpu %u: unhandled exit reason %u", v->id, r->exit_reason);
			snprintf(detail, sizeof(detail), "unhandled KVM exit %u on vCPU %u",
				 r->exit_reason, v->id);
			env->on_stop(env->ctx, VCPU_STOP_CRASH, detail);
			return 0;
		}
	}
}

void vcpu_kick(struct vcpu *v, pthread_t thread, int signal)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(thread, signal);
}

void vcpu_kick_done(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

void vcpu_state_free(struct vcpu_state *s)
{
	free(s->cpuid);
	free(s->xsave);
	free(s->msrs);
	memset(s, 0, sizeof(*s));
}

/* KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it read: such an
 * MSR (one this CPU model lacks) is dropped from the list and the rest read again. */
static int vcpu_save_msrs(struct vcpu *v, const struct kvm_vm *vm, struct vcpu_state *s)
{
	uint32_t n = vm->msrs->nmsrs;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));

	if (!m)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		m->entries[i].index = vm->msrs->indices[i];
	for (;;) {
		int got;

		m->nmsrs = n;
		got = ioctl(v->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			free(m);
			return -errno;
		}
		if ((uint32_t)got >= n)
			break;
		memmove(&m->entries[got], &m->entries[got + 1],
			(n - (uint32_t)got - 1) * sizeof(m->entries[0]));
		n--;
	}
	s->msrs = m;
	s->msrs_size = sizeof(*m) + n * sizeof(struct kvm_msr_entry);
	return 0;
}

static int vcpu_save_cpuid(struct vcpu *v, struct vcpu_state *s)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));

	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(v->fd, KVM_GET_CPUID2, c) < 0) {
		int err = -errno;
		free(c);
		return err;
	}
	s->cpuid = c;
	s->cpuid_size = sizeof(*c) + c->nent * sizeof(c->entries[0]);
	return 0;
}

int vcpu_save(struct vcpu *v, const struct kvm_vm *vm, struct vcpu_state *s)
{
	int rc, khz;

	memset(s, 0, sizeof(*s));
	s->xsave_size = vm->xsave_size;
	s->xsave = calloc(1, s->xsave_size);
	if (!s->xsave)
		return -ENOMEM;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &s->mp_state) < 0 ||
	    ioctl(v->fd, KVM_GET_REGS, &s->regs) < 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &s->sregs) < 0 ||
	    ioctl(v->fd, vm->has_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave) < 0 ||
	    ioctl(v->fd, KVM_GET_XCRS, &s->xcrs) < 0 ||
	    ioctl(v->fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0 ||
	    ioctl(v->fd, KVM_GET_LAPIC, &s->lapic) < 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &s->events) < 0) {
		rc = -errno;
		goto fail;
	}
	khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	rc = vcpu_save_cpuid(v, s);
	if (rc == 0)
		rc = vcpu_save_msrs(v, vm, s);
	if (rc == 0)
		return 0;
fail:
	vcpu_state_free(s);
	return rc;
}

/* KVM_SET_MSRS also stops at the first MSR it refuses: that one is logged and skipped. */
static int vcpu_restore_msrs(struct vcpu *v, const struct kvm_msrs *saved)
{
	size_t size = sizeof(*saved) + saved->nmsrs * sizeof(saved->entries[0]);
	struct kvm_msrs *m = malloc(size);
	uint32_t done = 0;

	if (!m)
		return -ENOMEM;
	while (done < saved->nmsrs) {
		int set;

		m->nmsrs = saved->nmsrs - done;
		m->pad = 0;
		memcpy(m->entries, &saved->entries[done], m->nmsrs * sizeof(m->entries[0]));
		set = ioctl(v->fd, KVM_SET_MSRS, m);
		if (set < 0) {
			int err = -errno;
			free(m);
			return err;
		}
		done += (uint32_t)set;
		if (done < saved->nmsrs) {
			vmm_log("vcpu %u: KVM refused MSR %#x = %#llx; skipped", v->id,
				saved->entries[done].index,
				(unsigned long long)saved->entries[done].data);
			done++;
		}
	}
	free(m);
	return 0;
}

/* The step that failed, for the message. */
static int vcpu_step(int ok, const char *what, const char **failed)
{
	if (!ok && !*failed)
		*failed = what;
	return ok;
}

int vcpu_restore(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen)
{
	const char *failed = NULL;
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0), rc;

	/* A host with another TSC rate: the guest's clocks only keep time if KVM scales. */
	if (s->tsc_khz && khz > 0 && (uint32_t)khz != s->tsc_khz &&
	    ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0)
		vmm_log("vcpu %u: TSC at %d kHz, the snapshot's ran at %u kHz and KVM cannot scale "
			"(%m): guest time will drift",
			v->id, khz, s->tsc_khz);
	if (vcpu_step(ioctl(v->fd, KVM_SET_CPUID2, s->cpuid) == 0, "KVM_SET_CPUID2", &failed) &&
	    vcpu_step(ioctl(v->fd, KVM_SET_MP_STATE, &s->mp_state) == 0, "KVM_SET_MP_STATE",
		      &failed) &&
	    vcpu_step(ioctl(v->fd, KVM_SET_SREGS, &s->sregs) == 0, "KVM_SET_SREGS", &failed) &&
	    vcpu_step(ioctl(v->fd, KVM_SET_REGS, &s->regs) == 0, "KVM_SET_REGS", &failed) &&
	    vcpu_step(ioctl(v->fd, KVM_SET_XSAVE, s->xsave) == 0, "KVM_SET_XSAVE", &failed) &&
	    vcpu_step(ioctl(v->fd, KVM_SET_XCRS, &s->xcrs) == 0, "KVM_SET_XCRS", &failed) &&
	    vcpu_step(ioctl(v->fd, KVM_SET_DEBUGREGS, &s->debugregs) == 0, "KVM_SET_DEBUGREGS",
		      &failed) &&
	    vcpu_step(ioctl(v->fd, KVM_SET_LAPIC, &s->lapic) == 0, "KVM_SET_LAPIC", &failed)) {
		rc = vcpu_restore_msrs(v, s->msrs);
		if (rc < 0) {
			snprintf(err, errlen, "vCPU %u: KVM_SET_MSRS: %s", v->id, strerror(-rc));
			return rc;
		}
		if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &s->events) == 0)
			return 0;
		failed = "KVM_SET_VCPU_EVENTS";
	}
	rc = -errno;
	snprintf(err, errlen, "vCPU %u: %s: %s", v->id, failed, strerror(errno));
	return rc;
}

void vcpu_clock_paused(struct vcpu *v)
{
	/* EINVAL when the guest never enabled kvmclock: nothing to tell it then. */
	if (ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		vmm_log("vcpu %u: KVM_KVMCLOCK_CTRL: %m", v->id);
}
