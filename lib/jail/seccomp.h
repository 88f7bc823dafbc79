/* A seccomp allowlist for each thread role of the VMM, and for the DNS guard beside it; any
 * other system call kills the whole process (SCMP_ACT_KILL_PROCESS), which the monitor reports
 * as a seccomp kill. Filters are built with libseccomp before the jail closes and installed by
 * each thread for itself once its setup is done: a vCPU thread before its first KVM_RUN, the
 * device thread before its first event, the control thread once the machine runs. */
#pragma once
#include <linux/filter.h>
#include <signal.h>
#include <sys/types.h>

enum jail_role {
	JAIL_ROLE_VCPU,    /* KVM_RUN, the exits it serves (port I/O, MMIO), the console */
	JAIL_ROLE_DEVICE,  /* the device event loop: disk I/O, vsock's Unix sockets, eventfds */
	JAIL_ROLE_CONTROL, /* the control channel and termination signals */
	JAIL_ROLE_MONITOR, /* the process outside that waits for the VMM and reports its end */
	JAIL_ROLE_DNS_GUARD, /* sandbox-dns-guard: its relay, the upstream, nftables by netlink */
	JAIL_ROLE_COUNT,
};

/* The signal the control thread may send the VMM's own threads: it interrupts a vCPU's KVM_RUN
 * so a snapshot can hold it. */
#define JAIL_KICK_SIGNAL SIGUSR1

struct jail_seccomp_args {
	pid_t self_pid;  /* this process's pid as it sees itself (abort() signals it) */
	pid_t child_pid; /* JAIL_ROLE_MONITOR: the VMM, which it may send SIGTERM and SIGKILL */
	int log_only;    /* log what would be killed instead (debugging; see the runtime) */
};

/* A compiled filter, ready for any thread to install. */
struct jail_filter {
	struct sock_fprog prog;
	unsigned nrules; /* syscalls allowed, for reports */
};

const char *jail_role_name(enum jail_role role);
/* Builds the role's filter. 0, or -errno (-ENOMEM, or libseccomp's failure). */
int jail_seccomp_build(enum jail_role role, const struct jail_seccomp_args *a,
		       struct jail_filter *out);
/* Installs f on the calling thread only (threads it creates later inherit it). Needs
 * no_new_privs (or CAP_SYS_ADMIN). 0 or -errno. */
int jail_seccomp_install(const struct jail_filter *f);
void jail_seccomp_free(struct jail_filter *f);
