#define _GNU_SOURCE
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/i8042.h"
#include "devices/power.h"
#include "devices/serial.h"
#include "jail/seccomp.h"
#include "net/resolver.h"
#include "netctl.h"
#include "snapshot.h"
#include "util/io.h"
#include "util/log.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/vsock.h"
#include "vmm/acpi.h"

/* virtio-mmio windows from 0xd0000000, one page apart; their interrupts on IOAPIC pins 16+,
 * clear of the ISA range. */
#define MMIO_DEV_BASE 0xd0000000ULL
#define MMIO_DEV_STRIDE 0x1000
#define MMIO_DEV_GSI_BASE 16

#define READY_MARKER "sandbox-init: ready"
/* The guest decides how much it prints: past this the console log takes no more, so a guest
 * cannot fill the host's disk, nor the memory of sbx_sandbox_console, which reads it whole. */
#define CONSOLE_LOG_MAX (16ULL << 20)
#define CONSOLE_LOG_CUT "\n[sandbox-vmm: console log full, further output dropped]\n"
/* Interrupts a vCPU's KVM_RUN for machine_pause; vCPU threads take it with an empty handler.
 * The control thread's seccomp filter allows sending exactly this one. */
#define MACHINE_KICK_SIGNAL JAIL_KICK_SIGNAL

static void machine_vcpu_hold(void *ctx, struct vcpu *v);

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void machine_stop(struct machine *m, const char *reason, const char *detail)
{
	/* The first stop wins; a second vCPU reaching here waits for the process to exit. */
	if (__atomic_exchange_n(&m->stopping, 1, __ATOMIC_SEQ_CST)) {
		for (;;)
			pause();
	}
	if (m->serial)
		serial_flush(m->serial);
	m->events.stopped(m->events.ctx, reason, detail);
}

static void machine_on_vcpu_stop(void *ctx, enum vcpu_stop why, const char *detail)
{
	static const char *const names[] = {
		[VCPU_STOP_POWEROFF] = "poweroff", [VCPU_STOP_RESET] = "reboot",
		[VCPU_STOP_CRASH] = "crash",
	};
	machine_stop(ctx, names[why], detail);
}

static void machine_on_power(void *ctx, int event)
{
	machine_stop(ctx, event == POWER_EVENT_OFF ? "poweroff" : "reboot",
		     event == POWER_EVENT_OFF ? "ACPI power-off" : "the guest reset the machine");
}

static void machine_console_write(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a full disk loses console text, never the guest */
		off += (size_t)n;
	}
}

/* Console bytes go to the log, up to CONSOLE_LOG_MAX; the first line starting with the init's
 * ready marker is the guest's "up" signal, whether or not the log still takes it. */
static void machine_on_console(void *ctx, const uint8_t *buf, size_t len)
{
	struct machine *m = ctx;
	struct stat st;

	/* Only a regular file grows; a pipe or a terminal takes whatever it is given. */
	if (fstat(m->console_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		machine_console_write(m->console_fd, buf, len);
	} else if ((uint64_t)st.st_size < CONSOLE_LOG_MAX) {
		uint64_t room = CONSOLE_LOG_MAX - (uint64_t)st.st_size;

		machine_console_write(m->console_fd, buf, len < room ? len : (size_t)room);
		if (len >= room)
			machine_console_write(m->console_fd, (const uint8_t *)CONSOLE_LOG_CUT,
					      sizeof(CONSOLE_LOG_CUT) - 1);
	}
	for (size_t i = 0; i < len && !m->ready_reported; i++) {
		if (buf[i] == '\n') {
			if (m->line_len >= sizeof(READY_MARKER) - 1 &&
			    memcmp(m->line, READY_MARKER, sizeof(READY_MARKER) - 1) == 0) {
				m->ready_reported = 1;
				m->events.ready(m->events.ctx, now_seconds() - m->start_time);
			}
			m->line_len = 0;
		} else if (m->line_len < sizeof(m->line)) {
			m->line[m->line_len++] = (char)buf[i];
		}
	}
}

static void machine_serial_irq(void *ctx, int level)
{
	struct machine *m = ctx;
	kvm_vm_irq_line(&m->vm, SERIAL_COM1_IRQ, level);
}

struct queue_kick {
	struct virtio_mmio *t;
	unsigned q;
	int fd;
};

static void machine_on_kick(void *opaque, uint32_t events)
{
	struct queue_kick *k = opaque;
	uint64_t n;

	if (read(k->fd, &n, sizeof(n)) == sizeof(n))
		virtio_mmio_kick(k->t, k->q);
}

/* The next virtio-mmio device: its transport, MMIO window, interrupt (irqfd) and one ioeventfd
 * per queue, whose kicks run on the device thread. dev is freed if it never got a transport. */
static int machine_add_virtio(struct machine *m, const struct virtio_dev_ops *ops, void *dev,
			      const char *what, char *err, size_t errlen)
{
	unsigned idx = m->nvirtio;
	uint64_t base = MMIO_DEV_BASE + (uint64_t)idx * MMIO_DEV_STRIDE;
	uint32_t gsi = MMIO_DEV_GSI_BASE + idx;
	struct virtio_mmio *t = &m->virtio[idx];
	int rc, irq_fd;

	if (idx == VMM_MAX_VIRTIO) {
		ops->free(dev);
		snprintf(err, errlen, "%s: more than %d virtio devices", what, VMM_MAX_VIRTIO);
		return -E2BIG;
	}
	irq_fd = kvm_vm_irqfd(&m->vm, gsi);
	if (irq_fd < 0) {
		ops->free(dev);
		snprintf(err, errlen, "%s: KVM_IRQFD: %s", what, strerror(-irq_fd));
		return irq_fd;
	}
	virtio_mmio_init(t, ops, dev, &m->mem, base, gsi, irq_fd);
	m->nvirtio++;
	rc = bus_register(&m->mmio, base, MMIO_DEV_STRIDE, virtio_mmio_access, t);
	for (unsigned q = 0; rc == 0 && q < ops->num_queues; q++) {
		struct queue_kick *k = calloc(1, sizeof(*k));
		if (!k) {
			rc = -ENOMEM;
			break;
		}
		k->t = t;
		k->q = q;
		k->fd = kvm_vm_ioeventfd(&m->vm, base + VIRTIO_MMIO_QUEUE_NOTIFY, q);
		rc = k->fd < 0 ? k->fd : evloop_add(m->devloop, k->fd, EPOLLIN, machine_on_kick, k);
		if (rc == 0 && m->nkicks < MACHINE_MAX_KICKS)
			m->kick_fds[m->nkicks++] = k->fd;
	}
	if (rc < 0)
		snprintf(err, errlen, "%s: wiring the device: %s", what, strerror(-rc));
	return rc;
}

static int machine_add_disk(struct machine *m, const struct vmm_disk *d, char *err, size_t errlen)
{
	struct virtio_blk *blk;
	char serial[21], what[4200];
	int rc;

	snprintf(serial, sizeof(serial), "sbx-disk-%u", m->nvirtio);
	rc = virtio_blk_open(d->path, d->read_only, serial, &blk);
	if (rc < 0) {
		snprintf(err, errlen, "disk %s: %s", d->path, strerror(-rc));
		return rc;
	}
	snprintf(what, sizeof(what), "disk %s", d->path);
	return machine_add_virtio(m, &virtio_blk_ops, blk, what, err, errlen);
}

/* Guest vsock bridged to Unix sockets at cfg->vsock_uds; its sockets live in the device loop. */
static int machine_add_vsock(struct machine *m, char *err, size_t errlen)
{
	struct vsock *v;
	int rc = vsock_new(m->cfg->vsock_cid, m->cfg->vsock_uds, m->devloop, &v);

	if (rc < 0) {
		snprintf(err, errlen, "vsock %s: %s", m->cfg->vsock_uds, strerror(-rc));
		return rc;
	}
	rc = machine_add_virtio(m, &vsock_ops, v, "vsock", err, errlen);
	if (rc == 0)
		m->vsock = v;
	return rc;
}

int machine_net_set_policy(struct machine *m, json_t *policy, char *err, size_t errlen)
{
	struct egress_policy *p;
	int rc;

	if (!m->egress) {
		snprintf(err, errlen, "this sandbox has no network");
		return -ENODEV;
	}
	rc = netctl_policy_from_json(policy, &p, err, errlen);
	if (rc < 0)
		return rc;
#ifdef SBX_TEST_HOOKS
	/* Test builds: SANDBOX_VMM_TEST_TRIGGER=egress-open leaves this layer open (the policy is
	 * still kept and reported), so e2e/net can see the host's second layer work alone. */
	if (getenv("SANDBOX_VMM_TEST_TRIGGER") &&
	    strcmp(getenv("SANDBOX_VMM_TEST_TRIGGER"), "egress-open") == 0) {
		struct egress_policy *open = egress_policy_new(EGRESS_MODE_ALL);
		if (open) {
			egress_policy_free(p);
			p = open;
			vmm_log("net: TEST HOOK egress-open: this filter lets everything out");
		}
	}
#endif
	egress_set_policy(m->egress, p);
	json_decref(m->policy);
	m->policy = json_deep_copy(policy);
	vmm_log("net: policy %s with %zu entries", json_string_value(json_object_get(policy, "mode")),
		json_array_size(json_object_get(policy, "allow")));
	return 0;
}

/* Device thread: a guest query for our DNS server (EGRESS_LOCAL) is answered at once or sent
 * upstream. */
static void machine_on_dns_query(void *user, const uint8_t *frame, size_t len)
{
	struct machine *m = user;
	uint8_t out[RESOLVER_FRAME_MAX];
	size_t n = 0;

	switch (resolver_guest_frame(m->resolver, frame, len, egress_now_ms(), out, sizeof(out), &n)) {
	case RESOLVER_REPLY:
		virtio_net_inject(m->net, out, n);
		break;
	case RESOLVER_FORWARD:
		/* No upstream, or none reachable now: the guest's resolver times out and retries,
		 * as with a lost datagram. */
		if (m->dns_fd >= 0 && send(m->dns_fd, out, n, MSG_DONTWAIT) < 0)
			vmm_log("net: DNS upstream: %s", strerror(errno));
		break;
	case RESOLVER_DROP:
		break;
	}
}

/* Device thread: the upstream DNS server's answers, through the DNS guard. A guard that is gone
 * (the relay hung up) is no longer polled: allowed names then fail, as with no upstream. */
static void machine_on_dns_reply(void *opaque, uint32_t events)
{
	struct machine *m = opaque;
	uint8_t msg[4096], out[RESOLVER_FRAME_MAX];

	for (;;) {
		ssize_t got = recv(m->dns_fd, msg, sizeof(msg), MSG_DONTWAIT | MSG_TRUNC);
		size_t n = 0;

		if (got < 0 && errno == EINTR)
			continue;
		if (got == 0 || (got < 0 && errno != EAGAIN)) {
			vmm_log("net: the DNS guard is gone");
			evloop_del(m->devloop, m->dns_fd);
			return;
		}
		if (got < 0)
			return;
		if ((size_t)got > sizeof(msg))
			continue;
		if (resolver_upstream_reply(m->resolver, msg, (size_t)got, egress_now_ms(), out,
					    sizeof(out), &n) == RESOLVER_REPLY)
			virtio_net_inject(m->net, out, n);
	}
}

/* The relay to the DNS guard, which the library started outside the jail: the VMM's own network
 * namespace has no route, and what upstream answers must be seen by a process the guest cannot
 * reach (it admits the addresses in the second layer). */
static int machine_dns_upstream(struct machine *m, char *err, size_t errlen)
{
	int rc;

	m->dns_fd = m->cfg->net.dns_fd;
	rc = evloop_add(m->devloop, m->dns_fd, EPOLLIN, machine_on_dns_reply, m);
	if (rc < 0)
		snprintf(err, errlen, "DNS upstream socket: %s", strerror(-rc));
	return rc;
}

/* virtio-net over the tap the library made, with the egress policy and our DNS server, which
 * answers at the gateway's address. */
static int machine_add_net(struct machine *m, char *err, size_t errlen)
{
	const struct vmm_net *c = &m->cfg->net;
	struct egress_config ec = { .guest_ip = c->guest_ip, .gateway_ip = c->gateway_ip,
				    .resolver_ip = c->gateway_ip, .admit_private = c->admit_private };
	struct virtio_net_config nc = { .backend_fd = c->tap_fd, .local = machine_on_dns_query,
					.local_user = m };
	int rc;

	memcpy(ec.guest_mac, c->mac, sizeof(ec.guest_mac));
	memcpy(nc.mac, c->mac, sizeof(nc.mac));
	rc = egress_new(&ec, &m->egress);
	if (rc < 0) {
		close(c->tap_fd);
		snprintf(err, errlen, "egress policy: %s", strerror(-rc));
		return rc;
	}
	rc = machine_net_set_policy(m, c->policy, err, errlen);
	if (rc == 0 && (rc = resolver_new(m->egress, &m->resolver)) < 0)
		snprintf(err, errlen, "DNS server: %s", strerror(-rc));
	if (rc == 0 && c->dns_fd >= 0)
		rc = machine_dns_upstream(m, err, errlen);
	if (rc < 0) {
		close(c->tap_fd);
		return rc;
	}
	nc.egress = m->egress;
	rc = virtio_net_new(&nc, m->devloop, &m->net);
	if (rc < 0) {
		snprintf(err, errlen, "virtio-net: %s", strerror(-rc));
		return rc;
	}
	return machine_add_virtio(m, &virtio_net_ops, m->net, "net", err, errlen);
}

static int machine_acpi(struct machine *m, char *err, size_t errlen)
{
	struct acpi_mmio_dev devs[VMM_MAX_VIRTIO];
	struct acpi_config c = {
		.ncpus = m->cfg->vcpus, .devs = devs, .ndevs = m->nvirtio,
		.sleep_ctl_port = POWER_SLEEP_CTL_PORT, .sleep_sts_port = POWER_SLEEP_STS_PORT,
		.reset_port = POWER_RESET_PORT, .reset_value = POWER_RESET_VALUE,
	};
	int rc;

	for (unsigned i = 0; i < m->nvirtio; i++)
		devs[i] = (struct acpi_mmio_dev){ m->virtio[i].base, MMIO_DEV_STRIDE,
						  m->virtio[i].gsi };
	rc = acpi_build(&m->mem, &c);
	if (rc < 0)
		snprintf(err, errlen, "building ACPI tables: %s", strerror(-rc));
	return rc;
}

/* Registers, stack and page tables for the kernel's 64-bit entry, on vCPU 0. */
static int machine_boot(struct machine *m, char *err, size_t errlen)
{
	struct boot_config bc = { m->cfg->kernel, m->cfg->initramfs, m->cfg->cmdline,
				  ACPI_RSDP_ADDR };
	struct boot_entry entry;
	int rc = boot_load_linux(&m->mem, &bc, &entry, err, errlen);

	if (rc < 0)
		return rc;
	rc = vcpu_setup_boot(&m->vcpus[0], &entry);
	if (rc < 0)
		snprintf(err, errlen, "boot vCPU registers: %s", strerror(-rc));
	return rc;
}

static int machine_legacy_devices(struct machine *m, char *err, size_t errlen)
{
	int rc = serial_new(machine_on_console, machine_serial_irq, m, &m->serial);

	if (rc == 0)
		rc = bus_register(&m->pio, SERIAL_COM1_PORT, SERIAL_PORT_COUNT, serial_access, m->serial);
	if (rc == 0)
		rc = power_new(machine_on_power, m, &m->power);
	if (rc == 0)
		rc = bus_register(&m->pio, POWER_PORT_BASE, POWER_PORT_COUNT, power_access, m->power);
	if (rc == 0)
		rc = bus_register(&m->pio, I8042_COMMAND_PORT, 1, i8042_access, m->power);
	if (rc < 0)
		snprintf(err, errlen, "legacy devices: %s", strerror(-rc));
	return rc;
}

int machine_build(struct machine *m, const struct vmm_config *cfg,
		  const struct machine_events *ev, char *err, size_t errlen)
{
	const char *why = "";
	int rc;

	memset(m, 0, sizeof(*m));
	m->dns_fd = -1;
	m->pagemap_fd = -1;
	m->cfg = cfg;
	m->events = *ev;
	m->start_time = now_seconds();
	pthread_mutex_init(&m->pause_lock, NULL);
	pthread_cond_init(&m->pause_cond, NULL);
	m->console_fd = open(cfg->console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (m->console_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "console log %s: %s", cfg->console_log, strerror(errno));
		return rc;
	}
	if (cfg->restore_dir) {
		rc = snapshot_load(m, err, errlen);
		if (rc < 0)
			return rc;
	} else {
		rc = guest_mem_create(&m->mem, cfg->memory_mib << 20);
		if (rc < 0) {
			snprintf(err, errlen, "guest memory (%llu MiB): %s", cfg->memory_mib,
				 strerror(-rc));
			return rc;
		}
	}
	rc = kvm_vm_create(&m->vm, &why);
	if (rc == 0)
		rc = kvm_vm_map_memory(&m->vm, &m->mem);
	if (rc < 0) {
		snprintf(err, errlen, "KVM: %s: %s", why, strerror(-rc));
		return rc;
	}
	rc = evloop_new(&m->devloop);
	if (rc < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		rc = machine_add_disk(m, &cfg->disks[i], err, errlen);
		if (rc < 0)
			return rc;
	}
	if (cfg->vsock_uds) {
		rc = machine_add_vsock(m, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (cfg->net.tap_fd >= 0) {
		rc = machine_add_net(m, err, errlen);
		if (rc < 0)
			return rc;
	}
	rc = machine_legacy_devices(m, err, errlen);
	/* A restored guest has its ACPI tables and kernel in the memory it brings. */
	if (rc == 0 && !cfg->restore_dir)
		rc = machine_acpi(m, err, errlen);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < cfg->vcpus; i++) {
		rc = vcpu_create(&m->vm, i, cfg->vcpus, &m->vcpus[i]);
		if (rc < 0) {
			snprintf(err, errlen, "vCPU %u: %s", i, strerror(-rc));
			return rc;
		}
	}
	rc = cfg->restore_dir ? snapshot_apply(m, err, errlen) : machine_boot(m, err, errlen);
	if (rc == 0)
		rc = snapshot_prepare(m, err, errlen);
	m->vcpu_env = (struct vcpu_env){ &m->pio, &m->mmio, machine_on_vcpu_stop,
					 machine_vcpu_hold, m };
	for (unsigned i = 0; i < cfg->vcpus; i++)
		m->vcpus[i].env = &m->vcpu_env;
	return rc;
}

/* Reports this thread's start to machine_start and waits for the verdict. A thread that may
 * not run the guest blocks until the process exits. */
static void machine_thread_enter(struct machine *m, enum machine_thread kind)
{
	int rc = m->events.thread_start ? m->events.thread_start(m->events.ctx, kind) : 0;
	int go;

	pthread_mutex_lock(&m->start_lock);
	if (rc < 0 && !m->threads_rc)
		m->threads_rc = rc;
	m->threads_up++;
	pthread_cond_broadcast(&m->start_cond);
	while (!m->gate)
		pthread_cond_wait(&m->start_cond, &m->start_lock);
	go = m->gate > 0;
	pthread_mutex_unlock(&m->start_lock);
	while (!go)
		pause();
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct machine *m = v->env->ctx;
	unsigned id = v->id;
	sigset_t kick;
	int rc;

	sigemptyset(&kick);
	sigaddset(&kick, MACHINE_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	machine_thread_enter(m, MACHINE_THREAD_VCPU);
	rc = vcpu_run(v, v->env);
	if (rc < 0) {
		char detail[96];
		snprintf(detail, sizeof(detail), "KVM_RUN on vCPU %u: %s", id, strerror(-rc));
		machine_stop(m, "crash", detail);
	}
	return NULL;
}

static void *device_thread(void *arg)
{
	struct machine *m = arg;
	int rc;

	machine_thread_enter(m, MACHINE_THREAD_DEVICE);
	rc = evloop_run(m->devloop);
	if (rc < 0)
		machine_stop(m, "crash", "device event loop failed");
	return NULL;
}

static void machine_kick_handler(int sig)
{
	/* Only there to make KVM_RUN return EINTR. */
}

/* A restored machine: the kicks and interrupts that were in flight when the snapshot was taken
 * are not part of it, so every queue is looked at once and pending interrupts raised again.
 * Spurious ones are harmless; lost ones would stall the guest's driver. */
static void machine_restart_devices(struct machine *m)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < m->nvirtio; i++)
		virtio_mmio_restart(&m->virtio[i]);
	for (unsigned i = 0; i < m->nkicks; i++)
		if (write(m->kick_fds[i], &one, sizeof(one)) < 0)
			vmm_log("replaying a queue kick: %m");
}

int machine_start(struct machine *m, char *err, size_t errlen)
{
	struct sigaction sa = { .sa_handler = machine_kick_handler };
	sigset_t all, old;
	unsigned created = 0;
	int rc;

	pthread_mutex_init(&m->start_lock, NULL);
	pthread_cond_init(&m->start_cond, NULL);
	/* No SA_RESTART: the point is the EINTR. */
	sigemptyset(&sa.sa_mask);
	sigaction(MACHINE_KICK_SIGNAL, &sa, NULL);
	/* Device and vCPU threads take no signals (vCPUs only the kick); the main thread handles
	 * them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&m->dev_thread, NULL, device_thread, m);
	created += rc == 0;
	for (unsigned i = 0; rc == 0 && i < m->cfg->vcpus; i++) {
		rc = pthread_create(&m->vcpu_threads[i], NULL, vcpu_thread, &m->vcpus[i]);
		created += rc == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&m->start_lock);
	while (m->threads_up < created)
		pthread_cond_wait(&m->start_cond, &m->start_lock);
	m->gate = rc == 0 && m->threads_rc == 0 ? 1 : -1;
	pthread_cond_broadcast(&m->start_cond);
	pthread_mutex_unlock(&m->start_lock);
	if (rc != 0) {
		snprintf(err, errlen, "starting threads: %s", strerror(rc));
		return -rc;
	}
	if (m->threads_rc < 0) {
		snprintf(err, errlen, "setting up threads: %s", strerror(-m->threads_rc));
		return m->threads_rc;
	}
	if (m->cfg->restore_dir) {
		machine_restart_devices(m);
		m->ready_reported = 1;
		m->events.ready(m->events.ctx, now_seconds() - m->start_time);
	}
	return 0;
}

/* vCPU thread, KVM_RUN interrupted: held here while a snapshot is taken. immediate_exit is
 * cleared first, whatever the reason for the EINTR, or KVM_RUN would return at once forever. */
static void machine_vcpu_hold(void *ctx, struct vcpu *v)
{
	struct machine *m = ctx;

	vcpu_kick_done(v);
	pthread_mutex_lock(&m->pause_lock);
	if (m->pause_wanted) {
		m->vcpus_held++;
		pthread_cond_broadcast(&m->pause_cond);
		while (m->pause_wanted)
			pthread_cond_wait(&m->pause_cond, &m->pause_lock);
		m->vcpus_held--;
	}
	pthread_mutex_unlock(&m->pause_lock);
}

static void machine_release_vcpus(struct machine *m)
{
	pthread_mutex_lock(&m->pause_lock);
	m->pause_wanted = 0;
	pthread_cond_broadcast(&m->pause_cond);
	pthread_mutex_unlock(&m->pause_lock);
}

int machine_pause(struct machine *m, int timeout_ms)
{
	struct timespec until = realtime_after(timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&m->pause_lock);
	m->pause_wanted = 1;
	pthread_mutex_unlock(&m->pause_lock);
	/* The flag is set before the kicks: a vCPU that clears immediate_exit then sees it. */
	for (unsigned i = 0; i < m->cfg->vcpus; i++)
		vcpu_kick(&m->vcpus[i], m->vcpu_threads[i], MACHINE_KICK_SIGNAL);
	pthread_mutex_lock(&m->pause_lock);
	while (m->vcpus_held < m->cfg->vcpus && rc == 0)
		rc = pthread_cond_timedwait(&m->pause_cond, &m->pause_lock, &until);
	rc = m->vcpus_held < m->cfg->vcpus ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&m->pause_lock);
	/* vCPUs first: held, they cannot kick queues or reset devices, and none is left waiting
	 * for the device thread. */
	if (rc == 0)
		rc = evloop_pause(m->devloop, timeout_ms);
	if (rc < 0)
		machine_release_vcpus(m);
	return rc;
}

void machine_resume(struct machine *m)
{
	evloop_resume(m->devloop);
	machine_release_vcpus(m);
}
