/* The KVM VM: /dev/kvm, the VM fd, in-kernel irqchip and PIT, memory slots, irqfd, ioeventfd. */
#pragma once
#include <stdint.h>
#include "guest_mem.h"

struct kvm_cpuid2;
struct kvm_msr_list;
struct kvm_irqchip;
struct kvm_pit_state2;

struct kvm_vm {
	int kvm_fd;
	int vm_fd;
	int run_size;              /* bytes of each vCPU's kvm_run mapping */
	struct kvm_cpuid2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID, patched per vCPU before use */
	struct kvm_msr_list *msrs; /* KVM_GET_MSR_INDEX_LIST: the MSRs a snapshot saves */
	unsigned xsave_size;       /* bytes of KVM_GET_XSAVE2's area, or of struct kvm_xsave */
	int has_xsave2;
};

/* Opens /dev/kvm, checks the API version, creates the VM with irqchip (PIC + IOAPIC) and PIT.
 * On failure *why gets a static description of the step that failed. */
int kvm_vm_create(struct kvm_vm *vm, const char **why);
void kvm_vm_destroy(struct kvm_vm *vm);
/* One memory slot per guest RAM region. */
int kvm_vm_map_memory(struct kvm_vm *vm, const struct guest_mem *mem);
/* Returns an eventfd whose writes inject an edge on gsi. */
int kvm_vm_irqfd(struct kvm_vm *vm, uint32_t gsi);
/* Returns an eventfd signalled when the guest writes the 4-byte value `match` at MMIO addr. */
int kvm_vm_ioeventfd(struct kvm_vm *vm, uint64_t addr, uint32_t match);
/* Sets an irqchip input line (ISA devices such as the serial port). */
int kvm_vm_irq_line(struct kvm_vm *vm, uint32_t irq, int level);

/* Snapshot state of the VM (not of its vCPUs), -errno on failure. chip: 0 PIC master, 1 PIC
 * slave, 2 IOAPIC. The clock is kvmclock in ns (KVM_GET_CLOCK / KVM_SET_CLOCK). */
#define KVM_VM_IRQCHIPS 3
int kvm_vm_get_irqchip(struct kvm_vm *vm, unsigned chip, struct kvm_irqchip *out);
int kvm_vm_set_irqchip(struct kvm_vm *vm, const struct kvm_irqchip *chip);
int kvm_vm_get_pit(struct kvm_vm *vm, struct kvm_pit_state2 *out);
int kvm_vm_set_pit(struct kvm_vm *vm, const struct kvm_pit_state2 *pit);
int kvm_vm_get_clock(struct kvm_vm *vm, uint64_t *ns);
int kvm_vm_set_clock(struct kvm_vm *vm, uint64_t ns);
