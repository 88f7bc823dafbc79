/* sandbox-vmm: the process that runs one sandbox's VM. Spawned by libsandbox with a connected
 * control socket; reads its config as the first message, jails itself (isolate.c: the spawned
 * process stays outside as the monitor, the VMM proper is its child in new namespaces),
 * reports "started", "ready" and "exit" events, obeys "stop" and SIGTERM, and serves commands
 * from any process on <dir>/control.sock (control_server.h). It exits when the guest stops, or
 * when the control channel closes unless the sandbox is detached. The monitor's last act is the
 * exit record <dir>/exit ("REASON DETAIL", empty while running), which processes that attached
 * later read. A probe config only tries the jail and reports. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "control_server.h"
#include "errcode.h"
#include "isolate.h"
#include "machine.h"
#include "util/host_probe.h"
#include "util/jsonl.h"
#include "vmm_config.h"

#define CONFIG_TIMEOUT_MS 10000

/* The console log never grows past this (machine.c stops at 16 MiB and appends one line). */
#define CONSOLE_FILE_MAX (17ULL << 20)

static struct {
	int fd;
	pthread_mutex_t lock;
} control = { -1, PTHREAD_MUTEX_INITIALIZER };

static struct isolate iso = { .status_fd = -1 };

/* 0, or -errno when the message could not be sent (the library is gone). */
static int control_send(json_t *msg)
{
	int rc = -ENOMEM;

	pthread_mutex_lock(&control.lock);
	if (msg)
		rc = jsonl_write(control.fd, msg);
	pthread_mutex_unlock(&control.lock);
	json_decref(msg);
	return rc;
}

/* Reports a failure before the guest ran and exits. code is an SBX error name. */
static void __attribute__((noreturn)) fail(const char *code, const char *message)
{
	fprintf(stderr, "sandbox-vmm: %s: %s\n", code, message);
	control_send(json_pack("{s:s, s:s, s:s}", "event", "error", "code", code, "message",
			       message));
	isolate_tell_monitor(&iso, "fail", code);
	exit(1);
}

static void on_ready(void *ctx, double seconds)
{
	control_send(json_pack("{s:s, s:f}", "event", "ready", "seconds", seconds));
}

static void __attribute__((noreturn)) on_stopped(void *ctx, const char *reason,
						 const char *detail)
{
	char line[400];

	/* The monitor writes the exit record once we are gone. */
	snprintf(line, sizeof(line), "%s %s", reason, detail);
	isolate_tell_monitor(&iso, "exit", line);
	control_send(json_pack("{s:s, s:s, s:s}", "event", "exit", "reason", reason, "detail",
			       detail));
	/* Exiting the process releases the VM, its memory and every device fd at once. */
	_exit(0);
}

static int on_thread_start(void *ctx, enum machine_thread kind)
{
	return isolate_thread(&iso,
			      kind == MACHINE_THREAD_VCPU ? JAIL_ROLE_VCPU : JAIL_ROLE_DEVICE);
}

/* RLIMIT_FSIZE: room for the console log, the largest disk and a snapshot's memory file (as
 * large as guest RAM); none for a block device, whose size is not a file's. */
static uint64_t max_file_size(const struct vmm_config *cfg)
{
	uint64_t max =
	    CONSOLE_FILE_MAX > cfg->memory_mib << 20 ? CONSOLE_FILE_MAX : cfg->memory_mib << 20;
	struct stat st;

	for (unsigned i = 0; i < cfg->ndisks; i++) {
		if (stat(cfg->disks[i].path, &st) < 0 || !S_ISREG(st.st_mode))
			return RLIM_INFINITY;
		if ((uint64_t)st.st_size > max)
			max = (uint64_t)st.st_size;
	}
	return max;
}

/* The host must run unmodified guests: refuse up front rather than hang in KVM's emulator. */
static void check_host(void)
{
	char detail[256];

	switch (host_probe(detail, sizeof(detail))) {
	case HOST_NO_KVM: fail("ENOKVM", detail);
	case HOST_KVM_PARAVIRT_ONLY: fail("ENOHWVIRT", detail);
	}
}

/* A detached VMM leaves the creator's process tree: the creator reaps the first process at
 * once, and the VMM is reparented instead of becoming the creator's zombie. Before any thread. */
static void detach_from_creator(void)
{
	pid_t pid = fork();

	if (pid < 0)
		fail("EVMM", "fork for detaching failed");
	if (pid > 0)
		_exit(0);
	setsid();
}

/* Serves the control channel, the command socket (if any) and termination signals until the
 * machine stops. */
static void __attribute__((noreturn)) control_loop(struct machine *m, struct jsonl_reader *reader,
						   struct control_server *server, int sfd,
						   int detached)
{
	for (;;) {
		/* poll skips the channel's entry once its fd is -1 (a detached sandbox's creator
		 * left). */
		struct pollfd p[2 + CONTROL_SERVER_MAX_FDS] = { { sfd, POLLIN, 0 },
								{ control.fd, POLLIN, 0 } };
		size_t nserver = server ? control_server_pollfds(server, p + 2) : 0;
		json_t *msg;
		const char *cmd;
		int rc;

		if (poll(p, 2 + nserver, -1) < 0) {
			if (errno == EINTR)
				continue;
			machine_stop(m, "crash", "poll on the control channel failed");
		}
		if (p[0].revents)
			machine_stop(m, "stopped", "terminated by a signal");
		if (server)
			control_server_serve(server, p + 2, nserver, m);
		if (!p[1].revents)
			continue;
		while ((rc = jsonl_read(reader, 0, &msg)) == 1) {
			if (json_unpack(msg, "{s:s}", "cmd", &cmd) == 0 && strcmp(cmd, "stop") == 0)
				machine_stop(m, "stopped", "stopped by the caller");
			json_decref(msg);
		}
		if (rc == -ETIMEDOUT)
			continue;
		if (!detached)
			machine_stop(m, "stopped",
				     rc == 0 ? "control channel closed" : "control channel broken");
		pthread_mutex_lock(&control.lock);
		close(control.fd);
		control.fd = -1; /* detached: the sandbox lives on without its creator */
		pthread_mutex_unlock(&control.lock);
	}
}

#ifdef SBX_TEST_HOOKS
/* Test builds only (SBX_TEST_HOOKS): SANDBOX_VMM_TEST_TRIGGER in the VMM's environment makes the
 * jailed VMM misbehave once it runs. "seccomp": a system call no allowlist has (ptrace), which
 * its filter answers by killing it. "memory": allocate until the cgroup's memory limit stops
 * it (only with one). Either ends this sandbox and nothing else. */
static void test_trigger(void)
{
	const char *t = getenv("SANDBOX_VMM_TEST_TRIGGER");

	if (!t)
		return;
	fprintf(stderr, "sandbox-vmm: test trigger %s\n", t);
	if (strcmp(t, "seccomp") == 0)
		syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
	if (strcmp(t, "memory") == 0 && (iso.report.applied & SBX_PROT_CGROUP) &&
	    iso.cfg->jail.memory_max_mib) {
		for (;;) {
			char *p = malloc(16 << 20);
			if (!p)
				break;
			memset(p, 0x5a, 16 << 20);
		}
	}
}
#else
static void test_trigger(void)
{
}
#endif

/* A probe tries every step of the jail without a machine, reports, and ends. */
static void __attribute__((noreturn)) probe(void)
{
	char err[512];

	isolate_enter(&iso, CONSOLE_FILE_MAX, err, sizeof(err));
	isolate_thread(&iso, JAIL_ROLE_CONTROL);
	isolate_finish(&iso, err, sizeof(err));
	control_send(json_pack("{s:s, s:o*}", "event", "probe", "isolation", isolate_json(&iso)));
	isolate_tell_monitor(&iso, "exit", "stopped probe done");
	_exit(0);
}

/* Builds, jails and starts the machine; fails (exits) on any error. */
static void start(struct machine *m, const struct vmm_config *cfg, struct machine_events *ev,
		  struct control_server **server)
{
	char err[512];
	int rc;

	if (isolate_build_filters(&iso, err, sizeof(err)) < 0)
		fail("EISOLATION", err);
	if (cfg->probe)
		probe();
	rc = machine_build(m, cfg, ev, err, sizeof(err));
	if (rc < 0)
		fail(vmm_errcode(-rc), err);
	/* Bound while the state directory can still be written. */
	if (cfg->control_path && (rc = control_server_open(cfg->control_path, server)) < 0) {
		snprintf(err, sizeof(err), "command socket %s: %s", cfg->control_path, strerror(-rc));
		fail("EIO", err);
	}
	if (isolate_enter(&iso, max_file_size(cfg), err, sizeof(err)) < 0)
		fail("EISOLATION", err);
	rc = machine_start(m, err, sizeof(err));
	if (rc == -EAGAIN && cfg->jail.pids_max)
		snprintf(err + strlen(err), sizeof(err) - strlen(err), " (pids.max is %u)",
			 cfg->jail.pids_max);
	if (rc < 0 && iso.thread_err[0])
		fail("EISOLATION", iso.thread_err);
	if (rc < 0)
		fail("EVMM", err);
	isolate_thread(&iso, JAIL_ROLE_CONTROL);
	if (isolate_finish(&iso, err, sizeof(err)) < 0)
		fail("EISOLATION", err);
}

int main(int argc, char **argv)
{
	static struct jsonl_reader reader;
	static struct machine m;
	struct machine_events ev = { on_ready, on_stopped, NULL, on_thread_start };
	struct control_server *server = NULL;
	struct vmm_config cfg;
	sigset_t term;
	char err[512];
	json_t *config;
	int rc, sfd;

	if (argc != 3 || strcmp(argv[1], "--control-fd") != 0) {
		fprintf(stderr, "usage: sandbox-vmm --control-fd FD (started by libsandbox)\n");
		return 2;
	}
	control.fd = atoi(argv[2]);
	jsonl_reader_init(&reader, control.fd);
	if (jsonl_read(&reader, CONFIG_TIMEOUT_MS, &config) != 1)
		fail("EPROTO", "no config received on the control channel");
	if (vmm_config_parse(config, &cfg, err, sizeof(err)) < 0)
		fail("EINVAL", err);
	if (!cfg.probe)
		check_host();
	if (cfg.detached)
		detach_from_creator();
	/* Termination signals are read from a signalfd by the control loop (the monitor's, in the
	 * monitor); every thread the machine starts inherits them blocked. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigaddset(&term, SIGHUP);
	sigprocmask(SIG_BLOCK, &term, NULL);
	rc = isolate_start(&iso, &cfg, control.fd, err, sizeof(err));
	if (rc < 0)
		fail(rc == -EPERM ? "EISOLATION" : "EVMM", err);
	/* Made before the control thread's seccomp filter, which has no signalfd. */
	sfd = signalfd(-1, &term, SFD_CLOEXEC);
	start(&m, &cfg, &ev, &server);
	/* A creator that gave up waiting has removed the sandbox: a detached VMM must not live on
	 * without its directory, unseen. */
	if (control_send(json_pack("{s:s, s:i, s:i, s:o*}", "event", "started", "pid",
				   (int)iso.monitor_pid, "vmm_pid", (int)iso.vmm_pid, "isolation",
				   isolate_json(&iso))) < 0)
		machine_stop(&m, "stopped", "the creator left before the start was reported");
	test_trigger();
	control_loop(&m, &reader, server, sfd, cfg.detached);
}
