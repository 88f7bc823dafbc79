/* sandbox-vmm: the process that runs one sandbox's VM. Spawned by libsandbox with a connected
 * control socket; reads its config as the first message, reports "started", "ready" and "exit"
 * events, obeys "stop" and SIGTERM, and serves commands from any process on <dir>/control.sock
 * (control_server.h). It exits when the guest stops, or when the control channel
 * closes unless the sandbox is detached. Its last act is the exit record <dir>/exit
 * ("REASON DETAIL"), which processes that attached later read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "control_server.h"
#include "machine.h"
#include "util/host_probe.h"
#include "util/jsonl.h"
#include "vmm_config.h"

#define CONFIG_TIMEOUT_MS 10000

static struct {
	int fd;
	pthread_mutex_t lock;
	const char *state_dir;
} control = { -1, PTHREAD_MUTEX_INITIALIZER, NULL };

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
	exit(1);
}

static const char *errno_to_code(int err)
{
	switch (err) {
	case ENOENT: return "ENOENT";
	case EACCES:
	case EPERM: return "EPERM";
	case ENOEXEC: return "EKERNEL";
	case E2BIG: return "ERANGE";
	case ENOMEM: return "ENOMEM";
	case EINVAL: return "EINVAL";
	default: return "EVMM";
	}
}

static void on_ready(void *ctx, double seconds)
{
	control_send(json_pack("{s:s, s:f}", "event", "ready", "seconds", seconds));
}

/* For processes that attach later and have no control channel to hear the exit event on. */
static void write_exit_record(const char *reason, const char *detail)
{
	char path[4096], line[512];
	int fd, n;

	if (!control.state_dir)
		return;
	snprintf(path, sizeof(path), "%s/exit", control.state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	n = snprintf(line, sizeof(line), "%s %s\n", reason, detail);
	if (fd >= 0 && write(fd, line, (size_t)n) < 0)
		fprintf(stderr, "sandbox-vmm: writing %s failed\n", path);
	if (fd >= 0)
		close(fd);
}

static void __attribute__((noreturn)) on_stopped(void *ctx, const char *reason,
						 const char *detail)
{
	write_exit_record(reason, detail);
	control_send(json_pack("{s:s, s:s, s:s}", "event", "exit", "reason", reason, "detail",
			       detail));
	/* Exiting the process releases the VM, its memory and every device fd at once. */
	_exit(0);
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
						   struct control_server *server,
						   const sigset_t *term, int detached)
{
	int sfd = signalfd(-1, term, SFD_CLOEXEC);

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

int main(int argc, char **argv)
{
	static struct jsonl_reader reader;
	static struct machine m;
	struct machine_events ev = { on_ready, on_stopped, NULL };
	struct control_server *server = NULL;
	struct vmm_config cfg;
	sigset_t term;
	char err[512];
	json_t *config;
	int rc;

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
	control.state_dir = cfg.state_dir;
	check_host();
	if (cfg.detached)
		detach_from_creator();
	/* Termination signals are read from a signalfd by the control loop; every thread the
	 * machine starts inherits them blocked. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigaddset(&term, SIGHUP);
	sigprocmask(SIG_BLOCK, &term, NULL);
	rc = machine_build(&m, &cfg, &ev, err, sizeof(err));
	if (rc < 0)
		fail(errno_to_code(-rc), err);
	if (cfg.control_path && (rc = control_server_open(cfg.control_path, &server)) < 0) {
		snprintf(err, sizeof(err), "command socket %s: %s", cfg.control_path, strerror(-rc));
		fail("EIO", err);
	}
	if (machine_start(&m, err, sizeof(err)) < 0)
		fail("EVMM", err);
	/* A creator that gave up waiting has removed the sandbox: a detached VMM must not live on
	 * without its directory, unseen. */
	if (control_send(json_pack("{s:s, s:i}", "event", "started", "pid", (int)getpid())) < 0)
		machine_stop(&m, "stopped", "the creator left before the start was reported");
	control_loop(&m, &reader, server, &term, cfg.detached);
}
