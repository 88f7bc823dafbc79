#define _GNU_SOURCE
#include "kvm_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_CPUID_MAX_ENTRIES 256
#define KVM_MSR_LIST_MAX 1024
/* Intel needs these three pages for real-mode emulation; they sit just below the BIOS area,
 * inside the MMIO hole, never in guest RAM. */
#define KVM_TSS_ADDR 0xfffbd000

int kvm_vm_create(struct kvm_vm *vm, const char **why)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int err;

	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = -1;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		*why = "open /dev/kvm";
		return -errno;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		*why = "KVM API version is not 12";
		err = -ENOTSUP;
		goto fail;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0) {
		*why = "KVM_GET_VCPU_MMAP_SIZE";
		goto fail_errno;
	}
	vm->cpuid = calloc(1, sizeof(*vm->cpuid) +
				      KVM_CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (!vm->cpuid) {
		err = -ENOMEM;
		*why = "allocating CPUID";
		goto fail;
	}
	vm->cpuid->nent = KVM_CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0) {
		*why = "KVM_GET_SUPPORTED_CPUID";
		goto fail_errno;
	}
	vm->msrs = calloc(1, sizeof(*vm->msrs) + KVM_MSR_LIST_MAX * sizeof(uint32_t));
	if (!vm->msrs) {
		err = -ENOMEM;
		*why = "allocating the MSR list";
		goto fail;
	}
	vm->msrs->nmsrs = KVM_MSR_LIST_MAX;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, vm->msrs) < 0) {
		*why = "KVM_GET_MSR_INDEX_LIST";
		goto fail_errno;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		*why = "KVM_CREATE_VM";
		goto fail_errno;
	}
	if (ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0) {
		*why = "KVM without XSAVE state (KVM_CAP_XSAVE)";
		err = -ENOTSUP;
		goto fail;
	}
	/* Larger than struct kvm_xsave when the host has AMX-sized state. */
	err = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vm->has_xsave2 = err > 0;
	vm->xsave_size = err > (int)sizeof(struct kvm_xsave) ? (unsigned)err
							     : (unsigned)sizeof(struct kvm_xsave);
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		*why = "KVM_SET_TSS_ADDR";
		goto fail_errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		*why = "KVM_CREATE_IRQCHIP";
		goto fail_errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		*why = "KVM_CREATE_PIT2";
		goto fail_errno;
	}
	return 0;
fail_errno:
	err = -errno;
fail:
	kvm_vm_destroy(vm);
	return err;
}

void kvm_vm_destroy(struct kvm_vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->cpuid);
	free(vm->msrs);
	vm->cpuid = NULL;
	vm->msrs = NULL;
	vm->vm_fd = vm->kvm_fd = -1;
}

int kvm_vm_map_memory(struct kvm_vm *vm, const struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = mem->regions[i].gpa,
			.memory_size = mem->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return -errno;
	}
	return 0;
}

int kvm_vm_irqfd(struct kvm_vm *vm, uint32_t gsi)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct kvm_irqfd req = { .gsi = gsi };

	if (fd < 0)
		return -errno;
	req.fd = (uint32_t)fd;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int kvm_vm_ioeventfd(struct kvm_vm *vm, uint64_t addr, uint32_t match)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct kvm_ioeventfd req = {
		.datamatch = match, .addr = addr, .len = 4, .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};

	if (fd < 0)
		return -errno;
	req.fd = fd;
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &req) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int kvm_vm_irq_line(struct kvm_vm *vm, uint32_t irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = (uint32_t)level };
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

int kvm_vm_get_irqchip(struct kvm_vm *vm, unsigned chip, struct kvm_irqchip *out)
{
	memset(out, 0, sizeof(*out));
	out->chip_id = chip;
	return ioctl(vm->vm_fd, KVM_GET_IRQCHIP, out) < 0 ? -errno : 0;
}

int kvm_vm_set_irqchip(struct kvm_vm *vm, const struct kvm_irqchip *chip)
{
	return ioctl(vm->vm_fd, KVM_SET_IRQCHIP, chip) < 0 ? -errno : 0;
}

int kvm_vm_get_pit(struct kvm_vm *vm, struct kvm_pit_state2 *out)
{
	memset(out, 0, sizeof(*out));
	return ioctl(vm->vm_fd, KVM_GET_PIT2, out) < 0 ? -errno : 0;
}

int kvm_vm_set_pit(struct kvm_vm *vm, const struct kvm_pit_state2 *pit)
{
	return ioctl(vm->vm_fd, KVM_SET_PIT2, pit) < 0 ? -errno : 0;
}

int kvm_vm_get_clock(struct kvm_vm *vm, uint64_t *ns)
{
	struct kvm_clock_data c = { 0 };

	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &c) < 0)
		return -errno;
	*ns = c.clock;
	return 0;
}

int kvm_vm_set_clock(struct kvm_vm *vm, uint64_t ns)
{
	struct kvm_clock_data c = { .clock = ns };

	return ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0 ? -errno : 0;
}
