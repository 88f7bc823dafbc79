/* One KVM vCPU: x86 setup for the 64-bit Linux entry, and the run loop that forwards trapped
 * port I/O and MMIO to the buses. */
#pragma once
#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "boot.h"
#include "bus.h"
#include "kvm_vm.h"

enum vcpu_stop {
	VCPU_STOP_POWEROFF = 1,
	VCPU_STOP_RESET = 2,
	VCPU_STOP_CRASH = 3,
};

struct vcpu;

/* What a vCPU thread needs from the machine around it. */
struct vcpu_env {
	const struct bus *pio;
	const struct bus *mmio;
	/* The guest stopped the machine; called once per vCPU that sees it, from that vCPU's thread. */
	void (*on_stop)(void *ctx, enum vcpu_stop why, const char *detail);
	/* KVM_RUN returned EINTR (a kick): every I/O the vCPU had started is complete and its state
	 * is consistent, so this is where it may be held for a snapshot. Optional. */
	void (*on_kick)(void *ctx, struct vcpu *v);
	void *ctx;
};

struct vcpu {
	int fd;
	unsigned id;
	struct kvm_run *run;
	int run_size;
	const struct vcpu_env *env; /* set by the machine before the vCPU runs */
};

/* Creates vCPU `id` of `ncpus` with the VM's supported CPUID (patched with its APIC id) and its
 * LAPIC LINT0/LINT1 wired as ExtINT/NMI. */
int vcpu_create(struct kvm_vm *vm, unsigned id, unsigned ncpus, struct vcpu *out);
void vcpu_destroy(struct vcpu *v);
/* Long mode, flat segments, paging on the boot page tables, %rip/%rsi from e. BSP only: the
 * others wait in KVM for the guest's INIT/SIPI. */
int vcpu_setup_boot(struct vcpu *v, const struct boot_entry *e);
/* Runs until the guest stops the machine (then returns 0 after env->on_stop) or KVM fails
 * (-errno). */
int vcpu_run(struct vcpu *v, const struct vcpu_env *env);
/* From another thread: makes the vCPU's current or next KVM_RUN return EINTR as soon as the
 * I/O it is in is complete (KVM's immediate_exit), and interrupts it with `signal`, which the
 * vCPU thread must take with a handler. vcpu_kick_done clears immediate_exit again (vCPU thread). */
void vcpu_kick(struct vcpu *v, pthread_t thread, int signal);
void vcpu_kick_done(struct vcpu *v);

/* Everything KVM keeps of a vCPU, for snapshots. */
struct vcpu_state {
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	uint32_t tsc_khz;
	struct kvm_cpuid2 *cpuid; /* the CPUID the guest saw */
	size_t cpuid_size;
	struct kvm_xsave *xsave;  /* vm->xsave_size bytes */
	size_t xsave_size;
	struct kvm_msrs *msrs;    /* every MSR of vm->msrs that KVM would give */
	size_t msrs_size;
};

/* Reads the state of a vCPU that is not running (held in on_kick, or never run). -errno. */
int vcpu_save(struct vcpu *v, const struct kvm_vm *vm, struct vcpu_state *s);
/* Sets a saved state on a fresh vCPU, in the order KVM needs (CPUID, MP state, special
 * registers, registers, XSAVE, XCRs, debug registers, LAPIC before the MSRs so TSC-deadline
 * sticks, MSRs, events). -errno with the failing step in err. MSRs KVM refuses are logged and
 * skipped. */
int vcpu_restore(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen);
/* Tells the guest's kvmclock it was paused (soft-lockup and RCU watchdogs then do not fire
 * for the time it stood still). Best effort, after the VM clock is set. */
void vcpu_clock_paused(struct vcpu *v);
void vcpu_state_free(struct vcpu_state *s);
