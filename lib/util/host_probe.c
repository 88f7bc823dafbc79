#define _GNU_SOURCE
#include "host_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Looks for "vmx" or "svm" as whole words on the first flags line of /proc/cpuinfo. */
static const char *cpu_virt_flag(void)
{
	static char line[8192];
	const char *found = NULL;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		for (char *tok = strtok(strchr(line, ':'), " :\n"); tok; tok = strtok(NULL, " \n")) {
			if (strcmp(tok, "vmx") == 0 || strcmp(tok, "svm") == 0) {
				found = strcmp(tok, "vmx") == 0 ? "vmx" : "svm";
				break;
			}
		}
		break;
	}
	fclose(f);
	return found;
}

int host_probe(char *detail, size_t len)
{
	const char *flag;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(detail, len, "/dev/kvm: %s", strerror(errno));
		return HOST_NO_KVM;
	}
	close(fd);
	flag = cpu_virt_flag();
	if (flag) {
		snprintf(detail, len, "/dev/kvm usable; CPU has %s", flag);
		return HOST_KVM_HW;
	}
	snprintf(detail, len, "/dev/kvm present but the CPU has no vmx or svm%s: unmodified guests "
		 "cannot run (run the tests through the emulated KVM host)",
		 access("/sys/module/kvm_pvm", F_OK) == 0 ? " (kvm_pvm: paravirtual-only KVM)" : "");
	return HOST_KVM_PARAVIRT_ONLY;
}
