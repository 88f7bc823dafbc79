#define _GNU_SOURCE
#include "vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"

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
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
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
