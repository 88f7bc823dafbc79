/* One KVM vCPU: x86 setup for the 64-bit Linux entry, and the run loop that forwards trapped
 * port I/O and MMIO to the buses. */
#pragma once
#include <stdint.h>
#include "boot.h"
#include "bus.h"
#include "kvm_vm.h"

enum vcpu_stop {
	VCPU_STOP_POWEROFF = 1,
	VCPU_STOP_RESET = 2,
	VCPU_STOP_CRASH = 3,
};

/* What a vCPU thread needs from the machine around it. */
struct vcpu_env {
	const struct bus *pio;
	const struct bus *mmio;
	/* The guest stopped the machine; called once per vCPU that sees it, from that vCPU's thread. */
	void (*on_stop)(void *ctx, enum vcpu_stop why, const char *detail);
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
