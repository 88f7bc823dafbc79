#define _GNU_SOURCE
#include "isolate.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/caps.h"
#include "jail/cgroup.h"
#include "jail/namespaces.h"
#include "jail/pivot.h"
#include "jail/rlimit.h"
#include "monitor.h"

#define ISOLATE_NAMESPACES                                                                         \
	(SBX_PROT_MOUNT_NS | SBX_PROT_PID_NS | SBX_PROT_IPC_NS | SBX_PROT_UTS_NS | SBX_PROT_NET_NS)
/* vsock's connections (VSOCK_MAX_CONNS) and every other fd the VMM holds. */
#define ISOLATE_NOFILE 1536

/* What the monitor tells the VMM once it is in its cgroup. */
struct isolate_go {
	int cgroup_rc; /* 0, -errno of moving it in, or 1: no cgroup */
	pid_t vmm_pid; /* the VMM's pid as the library sees it */
};

int isolate_check(const struct isolate *iso, unsigned prots, char *err, size_t errlen)
{
	unsigned missing = jail_report_first_missing(&iso->report,
						     prots & ~iso->cfg->jail.allow_degraded);

	if (!missing)
		return 0;
	snprintf(err, errlen, "isolation: %s is missing: %s (a sandbox may start without it only "
			      "if allowed: sbx_config_set_allow_degraded)",
		 jail_prot_name(missing), jail_report_detail(&iso->report, missing));
	return -EPERM;
}

static int isolate_cgroup(struct isolate *iso, struct jail_cgroup *cg)
{
	const struct vmm_jail *j = &iso->cfg->jail;
	struct cgroup_limits l = { j->memory_max_mib << 20, j->pids_max, j->cpu_quota_pct };

	cg->procs_fd = cg->memory_events_fd = cg->memory_max_fd = -1;
	if (!j->cgroup) {
		jail_report_set(&iso->report, SBX_PROT_CGROUP, 0, "no cgroup configured");
		return 0;
	}
	return cgroup_create(j->cgroup, &l, cg, &iso->report);
}

/* The state directory: the exit record, created empty now (the monitor cannot create files once
 * jailed), and search permission for the jail's group, so the VMM can still reach sockets a
 * host service grants it (guest connections to <dir>/vsock.sock_<port>). */
static int isolate_state_dir(struct isolate *iso, char *err, size_t errlen)
{
	const struct vmm_config *c = iso->cfg;
	int dfd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fd, e;

	if (dfd < 0) {
		e = errno;
		snprintf(err, errlen, "state directory %s: %s", c->state_dir, strerror(e));
		return -e;
	}
	fd = openat(dfd, "exit", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	e = errno;
	if (fd < 0)
		snprintf(err, errlen, "%s/exit: %s", c->state_dir, strerror(e));
	if (fd >= 0 && geteuid() == 0 &&
	    (fchown(dfd, (uid_t)-1, c->jail.gid) < 0 || fchmod(dfd, 0710) < 0))
		fprintf(stderr, "sandbox-vmm: %s: letting the jail group in: %s\n", c->state_dir,
			strerror(errno));
	close(dfd);
	return fd < 0 ? -e : fd;
}

/* The VMM's side of the fork: it dies with the monitor, and waits to be in its cgroup. */
static int isolate_child(struct isolate *iso, struct jail_cgroup *cg, int go_fd, char *err,
			 size_t errlen)
{
	struct isolate_go go;
	const char *cgroup = iso->cfg->jail.cgroup;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(go_fd, &go, sizeof(go)) != sizeof(go))
		_exit(1); /* the monitor is gone, and so must we be */
	close(go_fd);
	iso->vmm_pid = go.vmm_pid;
	if (go.cgroup_rc == 0) {
		jail_report_set(&iso->report, SBX_PROT_CGROUP, 1, "%s: %s", cgroup, cg->summary);
		jail_unshare_cgroup(); /* best effort: it could then not even name other cgroups */
	} else if (go.cgroup_rc < 0) {
		jail_report_set(&iso->report, SBX_PROT_CGROUP, 0, "moving the VMM into %s: %s",
				cgroup, strerror(-go.cgroup_rc));
	}
	cgroup_close(cg);
	jail_confirm_pid_ns(&iso->report, iso->unshared);
	return isolate_check(iso, SBX_PROT_PID_NS | SBX_PROT_CGROUP, err, errlen);
}

int isolate_start(struct isolate *iso, const struct vmm_config *cfg, int control_fd, char *err,
		  size_t errlen)
{
	struct jail_cgroup cg;
	struct monitor mon;
	struct isolate_go go = { 1, 0 };
	int status[2], gop[2], exit_fd;
	pid_t pid;

	memset(iso, 0, sizeof(*iso));
	iso->cfg = cfg;
	iso->status_fd = -1;
	iso->monitor_pid = getpid();
#ifdef SBX_TEST_HOOKS
	iso->log_only = getenv("SANDBOX_VMM_SECCOMP_LOG") != NULL;
#endif
	pthread_mutex_init(&iso->lock, NULL);
	jail_caps_prepare();
	if (isolate_cgroup(iso, &cg) < 0 && isolate_check(iso, SBX_PROT_CGROUP, err, errlen) < 0)
		return -EPERM;
	exit_fd = isolate_state_dir(iso, err, errlen);
	if (exit_fd < 0)
		goto fail_io;
	if (pipe2(status, O_CLOEXEC) < 0 || pipe2(gop, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail_io;
	}
	/* The VMM's pivot_root moves every process whose root and cwd are the old root, so the
	 * monitor, in the same mount namespace, ends up jailed with it. */
	if (chdir("/") < 0) {
		snprintf(err, errlen, "chdir /: %s", strerror(errno));
		goto fail_io;
	}
	/* Without root, a user namespace of our own makes the others possible. */
	if (geteuid() != 0) {
		int rc = jail_unshare_user();
		if (rc < 0)
			fprintf(stderr, "sandbox-vmm: no user namespace (%s): the other namespaces "
					"need root\n", strerror(-rc));
		iso->userns = rc == 0;
	}
	iso->unshared = jail_unshare(ISOLATE_NAMESPACES, iso->userns, &iso->report);
	if (isolate_check(iso, ISOLATE_NAMESPACES & ~SBX_PROT_PID_NS, err, errlen) < 0 ||
	    (!(iso->unshared & SBX_PROT_PID_NS) &&
	     isolate_check(iso, SBX_PROT_PID_NS, err, errlen) < 0))
		goto fail_refused;
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail_io;
	}
	if (pid == 0) {
		close(status[0]);
		close(gop[1]);
		close(exit_fd);
		iso->status_fd = status[1];
		return isolate_child(iso, &cg, gop[0], err, errlen);
	}
	close(status[1]);
	close(gop[0]);
	if (cg.procs_fd >= 0)
		go.cgroup_rc = cgroup_add(&cg, cfg->jail.cgroup, pid, &iso->report);
	go.vmm_pid = pid;
	if (write(gop[1], &go, sizeof(go)) != sizeof(go))
		fprintf(stderr, "sandbox-vmm: the VMM left before it was started\n");
	close(gop[1]);
	mon = (struct monitor){
		.vmm = pid, .status_fd = status[0], .control_fd = control_fd, .exit_fd = exit_fd,
		.memory_events_fd = cg.memory_events_fd, .memory_max_fd = cg.memory_max_fd,
		.memory_max_mib = cfg->jail.memory_max_mib,
		.uid = cfg->jail.uid, .gid = cfg->jail.gid, .log_only = iso->log_only,
		.ttl_s = cfg->jail.ttl_s,
	};
	if (cg.procs_fd >= 0)
		close(cg.procs_fd);
	monitor_run(&mon);
fail_io:
	cgroup_close(&cg);
	return -EIO;
fail_refused:
	cgroup_close(&cg);
	return -EPERM;
}

int isolate_build_filters(struct isolate *iso, char *err, size_t errlen)
{
	struct jail_seccomp_args a = { .self_pid = getpid(), .log_only = iso->log_only };

	for (int role = 0; role < JAIL_ROLE_COUNT; role++) {
		if (role == JAIL_ROLE_MONITOR || role == JAIL_ROLE_DNS_GUARD)
			continue;
		int rc = jail_seccomp_build(role, &a, &iso->filters[role]);
		if (rc < 0) {
			jail_report_set(&iso->report, SBX_PROT_SECCOMP, 0,
					"building the %s filter: %s", jail_role_name(role),
					strerror(-rc));
			if (isolate_check(iso, SBX_PROT_SECCOMP, err, errlen) < 0)
				return rc;
		}
	}
	return 0;
}

/* A change of ids clears the parent-death signal, so a VMM whose monitor was killed would run
 * on: armed again, and if the monitor died meanwhile (the status pipe has no reader) we go. */
static void isolate_rearm_parent_death(const struct isolate *iso)
{
	struct pollfd p = { iso->status_fd, 0, 0 };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
		_exit(1);
}

int isolate_enter(struct isolate *iso, uint64_t fsize, char *err, size_t errlen)
{
	const struct vmm_jail *j = &iso->cfg->jail;
	struct jail_rlimits rl = { ISOLATE_NOFILE, fsize };
	struct rlimit cur;

	if (iso->unshared & SBX_PROT_MOUNT_NS)
		jail_pivot(iso->cfg->state_dir, &iso->report);
	else
		jail_report_set(&iso->report, SBX_PROT_PIVOT_ROOT, 0,
				"needs a mount namespace of its own");
	/* Without root, the hard limit caps what we may ask for. */
	if (geteuid() != 0 && getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_max < rl.nofile)
		rl.nofile = cur.rlim_max;
	jail_set_rlimits(&rl, &iso->report);
	jail_drop_privileges(j->uid, j->gid, &iso->report);
	isolate_rearm_parent_death(iso);
	iso->uid = getuid();
	iso->gid = getgid();
	return isolate_check(iso, SBX_PROT_PIVOT_ROOT | SBX_PROT_RLIMITS | SBX_PROT_UNPRIV_USER |
					  SBX_PROT_NO_CAPS | SBX_PROT_NO_NEW_PRIVS,
			     err, errlen);
}

int isolate_thread(struct isolate *iso, enum jail_role role)
{
	const struct jail_filter *f = &iso->filters[role];
	int rc = f->prog.filter ? jail_seccomp_install(f) : -ENOEXEC;

	if (rc == 0)
		return 0;
	pthread_mutex_lock(&iso->lock);
	if (!iso->thread_err[0])
		snprintf(iso->thread_err, sizeof(iso->thread_err), "installing the %s filter: %s",
			 jail_role_name(role), rc == -ENOEXEC ? "it was not built" : strerror(-rc));
	pthread_mutex_unlock(&iso->lock);
	return iso->cfg->jail.allow_degraded & SBX_PROT_SECCOMP ? 0 : rc;
}

int isolate_finish(struct isolate *iso, char *err, size_t errlen)
{
	const struct jail_filter *f = iso->filters;

	if (iso->thread_err[0])
		jail_report_set(&iso->report, SBX_PROT_SECCOMP, 0, "%s", iso->thread_err);
	else if (iso->log_only)
		jail_report_set(&iso->report, SBX_PROT_SECCOMP, 0,
				"filters only log (SANDBOX_VMM_SECCOMP_LOG is set)");
	else if (!(iso->report.known & SBX_PROT_SECCOMP))
		jail_report_set(&iso->report, SBX_PROT_SECCOMP, 1,
				"per-thread allowlists (vcpu %u, device %u, control %u syscalls); "
				"anything else kills the VMM",
				f[JAIL_ROLE_VCPU].nrules, f[JAIL_ROLE_DEVICE].nrules,
				f[JAIL_ROLE_CONTROL].nrules);
	return isolate_check(iso, SBX_PROT_SECCOMP, err, errlen);
}

json_t *isolate_json(const struct isolate *iso)
{
	json_t *j = jail_report_json(&iso->report);

	if (!j)
		return NULL;
	json_object_set_new(j, "cgroup", (iso->report.applied & SBX_PROT_CGROUP)
						 ? json_string(iso->cfg->jail.cgroup)
						 : json_null());
	json_object_set_new(j, "uid", json_integer((json_int_t)iso->uid));
	json_object_set_new(j, "gid", json_integer((json_int_t)iso->gid));
	return j;
}

void isolate_tell_monitor(struct isolate *iso, const char *what, const char *detail)
{
	char line[512];
	int n;

	if (iso->status_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%s %s\n", what, detail);
	if (n >= (int)sizeof(line)) {
		n = (int)sizeof(line);
		line[n - 1] = '\n';
	}
	if (write(iso->status_fd, line, (size_t)n) != n)
		return; /* the monitor is gone: so are we, by our parent-death signal */
}
