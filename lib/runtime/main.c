/* sandbox-vmm: the process that runs one sandbox's VM. Spawned by libsandbox with a connected
 * control socket; reads its config as the first message, reports "started", "ready" and "exit"
 * events, obeys "stop". It exits when the guest stops or the control channel closes, so a
 * sandbox never outlives the process that made it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"
#include "util/host_probe.h"
#include "util/jsonl.h"
#include "vmm_config.h"

#define CONFIG_TIMEOUT_MS 10000

static struct {
	int fd;
	pthread_mutex_t lock;
} control = { -1, PTHREAD_MUTEX_INITIALIZER };

static void control_send(json_t *msg)
{
	pthread_mutex_lock(&control.lock);
	if (msg)
		jsonl_write(control.fd, msg);
	pthread_mutex_unlock(&control.lock);
	json_decref(msg);
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

static void __attribute__((noreturn)) on_stopped(void *ctx, const char *reason,
						 const char *detail)
{
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

int main(int argc, char **argv)
{
	static struct jsonl_reader reader;
	static struct machine m;
	struct machine_events ev = { on_ready, on_stopped, NULL };
	struct vmm_config cfg;
	char err[512];
	json_t *msg = NULL, *config;
	const char *cmd;
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
	check_host();
	rc = machine_build(&m, &cfg, &ev, err, sizeof(err));
	if (rc < 0)
		fail(errno_to_code(-rc), err);
	if (machine_start(&m, err, sizeof(err)) < 0)
		fail("EVMM", err);
	control_send(json_pack("{s:s, s:i}", "event", "started", "pid", (int)getpid()));

	while ((rc = jsonl_read(&reader, -1, &msg)) == 1) {
		if (json_unpack(msg, "{s:s}", "cmd", &cmd) == 0 && strcmp(cmd, "stop") == 0)
			machine_stop(&m, "stopped", "stopped by the caller");
		json_decref(msg);
	}
	machine_stop(&m, "stopped", rc == 0 ? "control channel closed" : "control channel broken");
}
