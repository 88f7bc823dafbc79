/* sandbox-vmm: the process that runs one sandbox's VM. Spawned by libsandbox with a connected
 * control socket; reads its config as the first message, reports "started", "ready" and "exit"
 * events, obeys "stop" and SIGTERM. It exits when the guest stops, or when the control channel
 * closes unless the sandbox is detached. Its last act is the exit record <dir>/exit
 * ("REASON DETAIL"), which processes that attached later read.
 *
 * Any process of the sandbox's owner may also connect to <dir>/control.sock: one JSON request
 * line, one JSON answer line. {"cmd":"snapshot","dir":D,"stop":B} writes a snapshot into the
 * empty directory D (docs/snapshot.md) and answers {"ok":true,...details} or {"ok":false,
 * "code":C,"message":M}; with "stop" the VMM then exits (hibernation). */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "machine.h"
#include "snapshot.h"
#include "util/host_probe.h"
#include "util/jsonl.h"
#include "vmm_config.h"

#define CONFIG_TIMEOUT_MS 10000
#define CONTROL_SOCKET "control.sock"
#define CONTROL_REQUEST_TIMEOUT_MS 5000
/* Held vCPUs only wait for the I/O they are in; a guest that takes longer is stuck. */
#define SNAPSHOT_PAUSE_TIMEOUT_MS 5000

static struct {
	int fd;
	pthread_mutex_t lock;
	const char *state_dir;
	int listen_fd; /* <state_dir>/control.sock */
	char listen_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} control = { -1, PTHREAD_MUTEX_INITIALIZER, NULL, -1, "" };

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
	case EBADMSG:
	case EPROTONOSUPPORT: return "ESNAPSHOT";
	case EIO:
	case ENOSPC:
	case EDQUOT:
	case EROFS:
	case EEXIST: return "EIO";
	case ETIMEDOUT: return "ETIMEDOUT";
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
	if (control.listen_path[0])
		unlink(control.listen_path);
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

/* The socket other processes reach the VMM through; without it the sandbox still runs, but
 * cannot be snapshotted. */
static void control_listen(const char *state_dir)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if ((size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", state_dir, CONTROL_SOCKET) >=
	    sizeof(a.sun_path)) {
		fprintf(stderr, "sandbox-vmm: state directory too long for %s\n", CONTROL_SOCKET);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
		fprintf(stderr, "sandbox-vmm: %s: %s\n", a.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	memcpy(control.listen_path, a.sun_path, sizeof(a.sun_path));
	control.listen_fd = fd;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *control_error(int err, const char *message)
{
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", errno_to_code(err), "message",
			 message);
}

/* Pauses the guest, writes the snapshot, and lets the guest go on, unless *stop is set (then
 * it stays held until the process exits). */
static json_t *control_snapshot(struct machine *m, json_t *req, int *stop)
{
	const char *dir = NULL;
	json_t *result = NULL;
	double t0 = monotonic_s(), t_held;
	struct stat st = { .st_mode = S_IFDIR };
	char err[1024];
	int rc;

	if (json_unpack(req, "{s:s, s?b}", "dir", &dir, "stop", stop) < 0 || dir[0] != '/')
		return control_error(EINVAL, "snapshot: \"dir\" must be an absolute path");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, sizeof(err), "snapshot directory %s: %s", dir,
			 S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
		return control_error(ENOENT, err);
	}
	rc = machine_pause(m, SNAPSHOT_PAUSE_TIMEOUT_MS);
	if (rc < 0)
		return control_error(ETIMEDOUT, "the guest did not pause within 5 s");
	t_held = monotonic_s();
	rc = snapshot_write(m, dir, &result, err, sizeof(err));
	if (rc < 0 || !*stop)
		machine_resume(m);
	if (rc < 0) {
		*stop = 0;
		return control_error(-rc, err);
	}
	json_object_set_new(result, "ok", json_true());
	json_object_set_new(result, "pause_s", json_real(t_held - t0));
	json_object_set_new(result, "paused_s", json_real(monotonic_s() - t_held));
	return result;
}

/* One request from a client of control.sock, answered; the connection then closes. */
static void control_serve_client(struct machine *m, int fd)
{
	static struct jsonl_reader reader;
	json_t *req = NULL, *reply;
	const char *cmd = NULL;
	int stop = 0;

	jsonl_reader_init(&reader, fd);
	if (jsonl_read(&reader, CONTROL_REQUEST_TIMEOUT_MS, &req) != 1) {
		close(fd);
		return;
	}
	json_unpack(req, "{s:s}", "cmd", &cmd);
	if (cmd && strcmp(cmd, "snapshot") == 0)
		reply = control_snapshot(m, req, &stop);
	else
		reply = control_error(EINVAL, "unknown command");
	if (!reply || jsonl_write(fd, reply) < 0)
		fprintf(stderr, "sandbox-vmm: answering a control request failed\n");
	json_decref(reply);
	json_decref(req);
	close(fd);
	if (stop)
		machine_stop(m, "stopped", "hibernated");
}

static void control_accept(struct machine *m)
{
	int fd = accept4(control.listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd >= 0)
		control_serve_client(m, fd);
}

/* Serves the control channel, control.sock and termination signals until the machine stops. */
static void __attribute__((noreturn)) control_loop(struct machine *m, struct jsonl_reader *reader,
						   const sigset_t *term, int detached)
{
	int sfd = signalfd(-1, term, SFD_CLOEXEC);

	for (;;) {
		struct pollfd p[3] = { { sfd, POLLIN, 0 },
				       { control.listen_fd, POLLIN, 0 },
				       { control.fd, POLLIN, 0 } };
		json_t *msg;
		const char *cmd;
		int rc;

		/* A negative fd is skipped by poll. */
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			machine_stop(m, "crash", "poll on the control channel failed");
		if (p[0].revents)
			machine_stop(m, "stopped", "terminated by a signal");
		if (p[1].revents)
			control_accept(m);
		if (!p[2].revents)
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
	control_listen(cfg.state_dir);
	if (machine_start(&m, err, sizeof(err)) < 0)
		fail("EVMM", err);
	/* A creator that gave up waiting has removed the sandbox: a detached VMM must not live on
	 * without its directory, unseen. */
	if (control_send(json_pack("{s:s, s:i}", "event", "started", "pid", (int)getpid())) < 0)
		machine_stop(&m, "stopped", "the creator left before the start was reported");
	control_loop(&m, &reader, &term, cfg.detached);
}
