#define _GNU_SOURCE
#include "monitor.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jail/caps.h"
#include "jail/cgroup.h"
#include "jail/seccomp.h"
#include "jail/verdict.h"
#include "util/jsonl.h"

#define MONITOR_STATUS_MAX 1024

/* The monitor is jailed like the VMM, though nothing untrusted reaches it but the VMM's status
 * line. Failures are logged: what the sandbox has is the VMM's report. */
static void monitor_lock_down(struct monitor *mon)
{
	struct jail_seccomp_args a = { .self_pid = getpid(), .child_pid = mon->vmm,
				       .log_only = mon->log_only };
	struct jail_report r = { 0 };
	struct jail_filter f = { 0 };
	int rc;

	if (jail_drop_privileges(mon->uid, mon->gid, &r) < 0)
		fprintf(stderr, "sandbox-vmm: monitor: %s; %s\n",
			jail_report_detail(&r, SBX_PROT_UNPRIV_USER),
			jail_report_detail(&r, SBX_PROT_NO_CAPS));
	rc = jail_seccomp_build(JAIL_ROLE_MONITOR, &a, &f);
	if (rc == 0)
		rc = jail_seccomp_install(&f);
	if (rc < 0)
		fprintf(stderr, "sandbox-vmm: monitor: seccomp: %s\n", strerror(-rc));
	jail_seccomp_free(&f);
}

static int64_t monitor_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Collects the VMM's status lines until it closes the pipe (it exited); SIGTERM, SIGINT and
 * SIGHUP sent to us are passed on to it, which stops it cleanly. At the sandbox's time to live
 * the VMM is killed outright (the guest is not asked: it is not trusted to stop) and *expired
 * set. */
static size_t monitor_wait(struct monitor *mon, int sfd, char *buf, size_t cap, int *expired)
{
	int64_t deadline = mon->ttl_s ? monitor_now_ms() + (int64_t)mon->ttl_s * 1000 : -1;
	size_t len = 0;

	for (;;) {
		struct pollfd p[2] = { { mon->status_fd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		struct signalfd_siginfo si;
		int timeout = -1;
		ssize_t n;

		if (deadline >= 0 && !*expired) {
			int64_t left = deadline - monitor_now_ms();
			if (left <= 0) {
				kill(mon->vmm, SIGKILL);
				*expired = 1;
			} else {
				timeout = left > INT_MAX ? INT_MAX : (int)left;
			}
		}
		if (poll(p, sfd >= 0 ? 2 : 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return len; /* should not happen; wait for the VMM below */
		}
		if (sfd >= 0 && (p[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si))
			kill(mon->vmm, SIGTERM);
		if (!p[0].revents)
			continue;
		n = read(mon->status_fd, buf + len, len < cap - 1 ? cap - 1 - len : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			len = 0; /* a flood: only what follows counts */
	}
	buf[len] = 0;
	return len;
}

/* The VMM's last status line: "exit REASON DETAIL" (it sent the exit event itself) or "fail
 * CODE" (it sent an error event). Anything else is none. */
static const char *monitor_last_line(char *buf)
{
	char *line = buf, *nl;

	while ((nl = strchr(line, '\n')) && nl[1])
		line = nl + 1;
	if (nl)
		*nl = 0;
	for (char *c = line; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?'; /* it goes into a file and JSON: printable ASCII only */
	if (strncmp(line, "exit ", 5) == 0 || strncmp(line, "fail ", 5) == 0)
		return line;
	return NULL;
}

void monitor_run(struct monitor *mon)
{
	char buf[MONITOR_STATUS_MAX], record[600], detail[256];
	const char *line, *reason = NULL;
	long long oom = -1;
	uint64_t oom_kills, max;
	sigset_t term;
	int status = 0, sfd, expired = 0;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigaddset(&term, SIGHUP);
	sfd = signalfd(-1, &term, SFD_CLOEXEC);
	monitor_lock_down(mon);
	monitor_wait(mon, sfd, buf, sizeof(buf), &expired);
	while (waitpid(mon->vmm, &status, 0) < 0 && errno == EINTR)
		;
	line = monitor_last_line(buf);
	if (expired) {
		reason = "ttl";
		snprintf(detail, sizeof(detail), "its time to live of %u s ran out", mon->ttl_s);
		snprintf(record, sizeof(record), "%s %s\n", reason, detail);
	} else if (line && line[0] == 'e') {
		snprintf(record, sizeof(record), "%s\n", line + 5);
	} else if (line) {
		snprintf(record, sizeof(record), "crash the VMM failed to start (%s)\n", line + 5);
	} else {
		if (mon->memory_events_fd >= 0 &&
		    cgroup_read_event(mon->memory_events_fd, "oom_kill", &oom_kills) == 0)
			oom = (long long)oom_kills;
		/* The limit in force when it struck: root may have changed it since the start. */
		if (mon->memory_max_fd < 0 || cgroup_read_value(mon->memory_max_fd, &max) < 0)
			max = mon->memory_max_mib << 20;
		jail_verdict(status, oom, max >> 20, &reason, detail, sizeof(detail));
		snprintf(record, sizeof(record), "%s %s\n", reason, detail);
		fprintf(stderr, "sandbox-vmm: %s\n", detail);
	}
	if (write(mon->exit_fd, record, strlen(record)) < 0)
		fprintf(stderr, "sandbox-vmm: writing the exit record: %s\n", strerror(errno));
	if (reason) {
		json_t *ev = json_pack("{s:s, s:s, s:s}", "event", "exit", "reason", reason,
				       "detail", detail);
		if (ev)
			jsonl_write(mon->control_fd, ev);
		json_decref(ev);
	}
	_exit(0);
}
