#define _GNU_SOURCE
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define R_VCPU (1u << JAIL_ROLE_VCPU)
#define R_DEVICE (1u << JAIL_ROLE_DEVICE)
#define R_CONTROL (1u << JAIL_ROLE_CONTROL)
#define R_MONITOR (1u << JAIL_ROLE_MONITOR)
#define R_GUARD (1u << JAIL_ROLE_DNS_GUARD)
#define R_VMM (R_VCPU | R_DEVICE | R_CONTROL)
#define R_ALL (R_VMM | R_MONITOR | R_GUARD)

/* Syscalls allowed whatever their arguments. glibc's share (malloc, locks, clocks, thread and
 * process exit, logging to stderr) goes to everyone; the rest to the roles whose code makes
 * them: the vCPU thread runs the port I/O and MMIO handlers (console, power, virtio registers;
 * every queue notify arrives through an ioeventfd, so device work never runs there), and
 * machine_stop may run on any thread of the VMM (console flush, exit event, exit). */
static const struct {
	int nr;
	unsigned roles;
} jail_plain[] = {
	{ SCMP_SYS(brk), R_ALL },
	{ SCMP_SYS(munmap), R_ALL },
	{ SCMP_SYS(mremap), R_ALL },
	{ SCMP_SYS(madvise), R_ALL },
	{ SCMP_SYS(futex), R_ALL },
	{ SCMP_SYS(clock_gettime), R_ALL },
	{ SCMP_SYS(clock_nanosleep), R_ALL },
	{ SCMP_SYS(nanosleep), R_ALL },
	{ SCMP_SYS(gettid), R_ALL },
	{ SCMP_SYS(getpid), R_ALL },
	{ SCMP_SYS(sched_yield), R_ALL },
	{ SCMP_SYS(sched_getaffinity), R_ALL },
	{ SCMP_SYS(getrandom), R_ALL },
	{ SCMP_SYS(rt_sigprocmask), R_ALL },
	{ SCMP_SYS(rt_sigreturn), R_ALL },
	{ SCMP_SYS(restart_syscall), R_ALL },
	{ SCMP_SYS(rseq), R_ALL },
	{ SCMP_SYS(sigaltstack), R_ALL }, /* the sanitizers' runtime, in the unit tests */
	{ SCMP_SYS(exit), R_ALL },
	{ SCMP_SYS(exit_group), R_ALL },
	{ SCMP_SYS(write), R_ALL },
	{ SCMP_SYS(writev), R_ALL },
	{ SCMP_SYS(sendto), R_ALL }, /* events on the control channel */
	{ SCMP_SYS(fstat), R_VMM },  /* the console log's size */
	{ SCMP_SYS(newfstatat), R_VMM },
	{ SCMP_SYS(pause), R_VMM },  /* a second machine_stop waits for the first */
	{ SCMP_SYS(read), R_DEVICE | R_CONTROL | R_MONITOR | R_GUARD },
	{ SCMP_SYS(close), R_DEVICE | R_CONTROL | R_MONITOR | R_GUARD },
	{ SCMP_SYS(poll), R_CONTROL | R_MONITOR | R_GUARD },
	{ SCMP_SYS(ppoll), R_CONTROL | R_MONITOR | R_GUARD },
	{ SCMP_SYS(pselect6), R_GUARD }, /* libmnl's wait for netlink answers */
	{ SCMP_SYS(readv), R_DEVICE },
	{ SCMP_SYS(pread64), R_DEVICE | R_MONITOR | R_CONTROL },
	{ SCMP_SYS(preadv), R_DEVICE },
	{ SCMP_SYS(pwrite64), R_DEVICE | R_CONTROL },
	{ SCMP_SYS(pwritev), R_DEVICE },
	{ SCMP_SYS(fdatasync), R_DEVICE },
	{ SCMP_SYS(fsync), R_DEVICE | R_CONTROL },
	{ SCMP_SYS(lseek), R_DEVICE | R_MONITOR | R_CONTROL | R_GUARD },
	{ SCMP_SYS(epoll_wait), R_DEVICE },
	{ SCMP_SYS(epoll_pwait), R_DEVICE },
	{ SCMP_SYS(epoll_ctl), R_DEVICE },
	{ SCMP_SYS(accept4), R_DEVICE | R_CONTROL | R_GUARD }, /* control.sock, guard.sock */
	{ SCMP_SYS(setsockopt), R_CONTROL | R_GUARD }, /* send timeouts; netlink buffers */
	{ SCMP_SYS(getsockopt), R_GUARD },
	{ SCMP_SYS(getsockname), R_GUARD },
	{ SCMP_SYS(connect), R_DEVICE }, /* guest connections to <uds>_<port> */
	{ SCMP_SYS(recvfrom), R_DEVICE | R_GUARD },
	{ SCMP_SYS(recvmsg), R_DEVICE | R_CONTROL | R_GUARD }, /* R_CONTROL: a snapshot's fds */
	{ SCMP_SYS(sendmsg), R_DEVICE | R_GUARD },
	{ SCMP_SYS(shutdown), R_DEVICE },
	{ SCMP_SYS(wait4), R_MONITOR },
	/* A snapshot, written by the control thread into the files the library passed: memory
	 * pages (pwrite, holes punched), the state file, a restored guest's memory file cloned
	 * (FICLONE, below, else copy_file_range or pread/pwrite), pagemap read (pread; opened
	 * before the jail). */
	{ SCMP_SYS(ftruncate), R_CONTROL },
	{ SCMP_SYS(fallocate), R_CONTROL },
	{ SCMP_SYS(copy_file_range), R_CONTROL },
	{ SCMP_SYS(waitid), R_MONITOR },
};

/* The control thread reads the state of the paused machine for a snapshot (lib/runtime/
 * snapshot.c): of each vCPU, of the VM, and clones a memory file. */
static const unsigned long jail_snapshot_ioctls[] = {
	KVM_GET_MP_STATE, KVM_GET_REGS,	 KVM_GET_SREGS,	   KVM_GET_XSAVE,
	KVM_GET_XSAVE2,	  KVM_GET_XCRS,	 KVM_GET_DEBUGREGS, KVM_GET_LAPIC,
	KVM_GET_VCPU_EVENTS, KVM_GET_TSC_KHZ, KVM_GET_CPUID2, KVM_GET_MSRS,
	KVM_GET_CLOCK,	  KVM_GET_IRQCHIP, KVM_GET_PIT2,	   FICLONE,
};

/* Path lookups fail instead of killing: nothing in the jail is worth opening (the DNS guard
 * opens no file either), and a library probing a file it can do without (glibc's CPU count,
 * say) carries on. */
static const int jail_denied[] = { SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2) };

const char *jail_role_name(enum jail_role role)
{
	static const char *const names[] = {
		[JAIL_ROLE_VCPU] = "vcpu", [JAIL_ROLE_DEVICE] = "device",
		[JAIL_ROLE_CONTROL] = "control", [JAIL_ROLE_MONITOR] = "monitor",
		[JAIL_ROLE_DNS_GUARD] = "dns-guard",
	};
	return role < JAIL_ROLE_COUNT ? names[role] : "unknown";
}

/* Rules that look at arguments. */
static int jail_seccomp_arg_rules(scmp_filter_ctx ctx, enum jail_role role,
				  const struct jail_seccomp_args *a, unsigned *n)
{
	int rc;

	/* No new executable memory, ever. */
	rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
			      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* abort() on any thread: SIGABRT to ourselves, reported as a crash, not as seccomp. */
	rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
				    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)a->self_pid),
				    SCMP_A2(SCMP_CMP_EQ, SIGABRT));
	*n += 3;
	if (rc == 0 && role == JAIL_ROLE_VCPU) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, KVM_RUN));
		/* The serial port's interrupt line. */
		rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					    SCMP_A1(SCMP_CMP_EQ, KVM_IRQ_LINE));
		*n += 1;
	}
	if (rc == 0 && role == JAIL_ROLE_CONTROL) {
		for (size_t i = 0; rc == 0 && i < sizeof(jail_snapshot_ioctls) / sizeof(long); i++)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					      SCMP_A1(SCMP_CMP_EQ, jail_snapshot_ioctls[i]));
		/* Kicking the vCPU threads out of KVM_RUN to pause them (machine_pause). */
		rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
					    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)a->self_pid),
					    SCMP_A2(SCMP_CMP_EQ, JAIL_KICK_SIGNAL));
		*n += 2;
	}
	if (rc == 0 && role == JAIL_ROLE_DEVICE) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
		*n += 1;
	}
	/* The guard talks netlink to nf_tables only (libnftables reopens its socket after an
	 * overrun, setting it non-blocking); fcntl never arms O_ASYNC, whose signals an
	 * F_SETOWN could aim at any process. */
	if (rc == 0 && role == JAIL_ROLE_DNS_GUARD) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
				      SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
				      SCMP_A2(SCMP_CMP_EQ, NETLINK_NETFILTER));
		rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
					    SCMP_A1(SCMP_CMP_EQ, F_GETFL));
		rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
					    SCMP_A1(SCMP_CMP_EQ, F_GETFD));
		rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
					    SCMP_A1(SCMP_CMP_EQ, F_SETFD));
		rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 2,
					    SCMP_A1(SCMP_CMP_EQ, F_SETFL),
					    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, 0));
		*n += 2;
	}
	if (rc == 0 && role == JAIL_ROLE_MONITOR) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 2,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)a->child_pid),
				      SCMP_A1(SCMP_CMP_EQ, SIGTERM));
		rc = rc ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 2,
					    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)a->child_pid),
					    SCMP_A1(SCMP_CMP_EQ, SIGKILL));
		*n += 1;
	}
	return rc;
}

/* libseccomp 2.5 exports a program only to an fd: through a memfd into memory. */
static int jail_seccomp_export(scmp_filter_ctx ctx, struct jail_filter *out)
{
	int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC), rc;
	struct stat st;
	void *buf = NULL;

	if (fd < 0)
		return -errno;
	rc = seccomp_export_bpf(ctx, fd);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	if (rc == 0 && (st.st_size == 0 || st.st_size % sizeof(struct sock_filter) ||
			st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		rc = -EINVAL;
	if (rc == 0 && !(buf = malloc((size_t)st.st_size)))
		rc = -ENOMEM;
	if (rc == 0 && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
		rc = -EIO;
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	out->prog.filter = buf;
	out->prog.len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	return 0;
}

int jail_seccomp_build(enum jail_role role, const struct jail_seccomp_args *a,
		       struct jail_filter *out)
{
	scmp_filter_ctx ctx;
	unsigned n = 0;
	int rc = 0;

	if (role >= JAIL_ROLE_COUNT)
		return -EINVAL;
	ctx = seccomp_init(a->log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; rc == 0 && i < sizeof(jail_plain) / sizeof(jail_plain[0]); i++) {
		if (!(jail_plain[i].roles & (1u << role)))
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, jail_plain[i].nr, 0);
		n++;
	}
	for (size_t i = 0; rc == 0 && i < sizeof(jail_denied) / sizeof(jail_denied[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), jail_denied[i], 0);
	if (rc == 0)
		rc = jail_seccomp_arg_rules(ctx, role, a, &n);
	/* We set no_new_privs ourselves, and report it. */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc == 0)
		rc = jail_seccomp_export(ctx, out);
	seccomp_release(ctx);
	if (rc == 0)
		out->nrules = n;
	return rc;
}

int jail_seccomp_install(const struct jail_filter *f)
{
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f->prog) < 0 ? -errno : 0;
}

void jail_seccomp_free(struct jail_filter *f)
{
	free(f->prog.filter);
	f->prog.filter = NULL;
	f->prog.len = 0;
}
