/* What this host's KVM can run. Shared by the library (sbx_host_probe) and the VMM, which refuses
 * to start a guest that could only hang. */
#pragma once
#include <stddef.h>

/* Same values as enum sbx_host_virt. */
enum host_virt { HOST_NO_KVM = 0, HOST_KVM_PARAVIRT_ONLY = 1, HOST_KVM_HW = 2 };

/* Returns an enum host_virt and writes the reason into detail. */
int host_probe(char *detail, size_t len);
