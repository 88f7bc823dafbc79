/*
 * sandbox-init: PID 1 of the project's initramfs. Built static with musl and embedded in
 * libsandbox, so a sandbox needs no separate init file.
 *
 * Loads the virtio modules listed in /lib/modules/order, mounts the root disk named on the kernel
 * command line, switches into it, brings up the loopback interface, starts the guest agent
 * (sandbox-agent, the initramfs's /agent; restarted if it dies), reports "sandbox-init: ready" on
 * the console (the VMM waits for that line), and either runs one shell command and powers off, or
 * stays up reaping orphans.
 *
 * Kernel command line (read from /proc/cmdline; dotted names are not passed to init as argv):
 *   sbx.root=DEV         root block device, default /dev/vda
 *   sbx.rootfstype=FS    default ext4
 *   sbx.rootflags=OPTS   filesystem options (mount(2) data), default none
 *   sbx.ro=1             mount the root read-only
 *   sbx.cmd=BASE64       a command for /bin/sh -c, base64 (standard alphabet)
 *   sbx.net=ADDR/PREFIX,GATEWAY,DNS,GATEWAY_MAC
 *                        configure eth0 (virtio-net) with that address, a default route through
 *                        the gateway, whose MAC is given so the guest never ARPs for it, and
 *                        /etc/resolv.conf naming the DNS server; without it eth0 stays down
 *
 * PID 1 must never return: the kernel panics when init exits. Every fatal path ends in power-off,
 * which the host sees as the guest stopping rather than as a hang.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "console_line.h"
#include "net_setup.h"
#include "util/base64.h"

#define PREFIX "sandbox-init: "
#define NEWROOT "/newroot"
#define MODULES_DIR "/lib/modules"
#define ROOT_WAIT_MS 10000
#define ROOT_POLL_MS 5
#define CMDLINE_MAX 4096 /* x86 COMMAND_LINE_SIZE is 2048 */
#define AGENT_PATH "/agent"
#define AGENT_BACKOFF_MS 1000      /* before restarting an agent that died */
#define AGENT_BACKOFF_MAX_MS 30000 /* doubling while it keeps dying young */
#define AGENT_STABLE_MS 10000      /* an agent that ran this long resets the backoff */
#define BASE_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define NET_WAIT_MS 3000

struct options {
	const char *root;
	const char *fstype;
	const char *flags;
	int read_only;
	char *cmd; /* decoded, or NULL */
	const char *net; /* sbx.net's value, or NULL */
};

/* The guest agent. Its file lives in the initramfs, which is emptied and hidden by the switch to
 * the root disk, so it is opened before and executed from the descriptor (fexecve) ever after. */
struct agent {
	int fd;	/* -1: no agent */
	pid_t pid; /* 0 while not running */
	long long started_ms;
	long long restart_ms; /* when to start it again */
	long long backoff_ms;
};

/* One write(2) per message, so lines from the init never interleave with the kernel's or the
 * command's output mid-line. */
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_line(PREFIX, fmt, ap);
	va_end(ap);
}

static _Noreturn void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Power-off should not return. If it does, a reboot request still stops the VM (the VMM
	 * treats it as an exit); returning from PID 1 would only panic. */
	say("error: power off: %s", strerror(errno));
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static _Noreturn void fatal(const char *what, int err)
{
	say("error: %s: %s", what, strerror(err));
	power_off();
}

static void mount_or_die(const char *src, const char *target, const char *type, unsigned long flags,
			 const char *data)
{
	char what[256];

	if (mount(src, target, type, flags, data) == 0)
		return;
	snprintf(what, sizeof(what), "mount %s on %s", type ? type : src, target);
	fatal(what, errno);
}

/* The links udev would make and devtmpfs does not: bash's process substitution needs /dev/fd. */
static void dev_links(void)
{
	static const char *const links[][2] = {
	    {"/proc/self/fd", "/dev/fd"},
	    {"/proc/self/fd/0", "/dev/stdin"},
	    {"/proc/self/fd/1", "/dev/stdout"},
	    {"/proc/self/fd/2", "/dev/stderr"},
	};

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			say("warning: symlink %s: %s", links[i][1], strerror(errno));
}

/* Not fatal: a command may well run without /dev/pts or a tmpfs /tmp. */
static void mount_or_warn(const char *src, const char *target, const char *type,
			  unsigned long flags, const char *data)
{
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		say("warning: mkdir %s: %s", target, strerror(errno));
	if (mount(src, target, type, flags, data) < 0)
		say("warning: mount %s on %s: %s", type, target, strerror(errno));
}

static void load_module(const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), MODULES_DIR "/%s.ko", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("warning: module %s: open %s: %s", name, path, strerror(errno));
		return;
	}
	/* EEXIST: built in or already loaded, which is what we wanted. */
	if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
		say("warning: module %s: finit_module: %s", name, strerror(errno));
	close(fd);
}

/* The order file lists one module name per line, dependencies first (no modprobe here). */
static void load_modules(void)
{
	char buf[4096], *line, *save = NULL;
	ssize_t n;
	int fd = open(MODULES_DIR "/order", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		say("warning: %s/order: %s", MODULES_DIR, strerror(errno));
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		say("warning: %s/order: %s", MODULES_DIR, strerror(errno));
		return;
	}
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (*line)
			load_module(line);
}

/* Splits the command line into words in place, honouring the kernel's double quotes
 * (key="a b"), and picks out our keys. Values point into the static buffer. */
static void parse_cmdline(struct options *o)
{
	static char buf[CMDLINE_MAX];
	char *p = buf, *word, *out;
	ssize_t n;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fatal("open /proc/cmdline", errno);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		fatal("read /proc/cmdline", errno);
	close(fd);
	buf[n] = 0;

	while (*p) {
		int quoted = 0;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		word = out = p;
		for (; *p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '"')
				quoted = !quoted;
			else
				*out++ = *p;
		}
		if (*p)
			p++;
		*out = 0;

		if (!strncmp(word, "sbx.root=", 9))
			o->root = word + 9;
		else if (!strncmp(word, "sbx.rootfstype=", 15))
			o->fstype = word + 15;
		else if (!strncmp(word, "sbx.rootflags=", 14))
			o->flags = word + 14;
		else if (!strcmp(word, "sbx.ro=1"))
			o->read_only = 1;
		else if (!strncmp(word, "sbx.cmd=", 8))
			o->cmd = word + 8;
		else if (!strncmp(word, "sbx.net=", 8))
			o->net = word + 8;
	}
	if (o->cmd) {
		size_t len;

		if (base64_decode(o->cmd, strlen(o->cmd), (unsigned char *)o->cmd, &len) < 0)
			fatal("sbx.cmd is not valid base64", EINVAL);
		o->cmd[len] = 0;
	}
}

/* The disk appears asynchronously once virtio_blk has probed it. */
static void wait_for_root(const char *dev)
{
	struct timespec poll = {0, ROOT_POLL_MS * 1000000L};
	struct stat st;
	char what[256];

	for (int waited = 0; waited < ROOT_WAIT_MS; waited += ROOT_POLL_MS) {
		if (stat(dev, &st) == 0)
			return;
		nanosleep(&poll, NULL);
	}
	if (stat(dev, &st) == 0)
		return;
	snprintf(what, sizeof(what), "root device %s did not appear within %d s", dev,
		 ROOT_WAIT_MS / 1000);
	fatal(what, errno);
}

/* What we put in the initramfs is dead weight once we leave it; the initramfs is RAM that only
 * unlinking gives back (the rest is a few empty directories). */
static void free_initramfs(void)
{
	DIR *d = opendir(MODULES_DIR);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(MODULES_DIR);
	rmdir("/lib");
	unlink("/init");
	unlink(AGENT_PATH); /* its open descriptor keeps it */
}

static void move_to_newroot(const char *dir)
{
	char target[64];

	snprintf(target, sizeof(target), NEWROOT "%s", dir);
	/* Debian's rootfs has them; a hand-made one may not (and a read-only one can't). */
	mkdir(target, 0755);
	mount_or_die(dir, target, NULL, MS_MOVE, NULL);
}

/* switch_root as busybox does it: the initramfs cannot be unmounted, so the new root is moved
 * over it and we chroot into that. */
static void switch_root(const struct options *o)
{
	unsigned long flags = o->read_only ? MS_RDONLY : 0;
	char what[256];

	wait_for_root(o->root);
	if (mount(o->root, NEWROOT, o->fstype, flags, o->flags) < 0) {
		snprintf(what, sizeof(what), "mount %s (%s) on " NEWROOT, o->root, o->fstype);
		fatal(what, errno);
	}
	free_initramfs();
	move_to_newroot("/dev");
	move_to_newroot("/proc");
	move_to_newroot("/sys");
	if (chdir(NEWROOT) < 0)
		fatal("chdir " NEWROOT, errno);
	mount_or_die(".", "/", NULL, MS_MOVE, NULL);
	if (chroot(".") < 0)
		fatal("chroot", errno);
	if (chdir("/") < 0)
		fatal("chdir /", errno);

	mount_or_warn("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		      "gid=5,mode=620,ptmxmode=666");
	dev_links();
	mount_or_warn("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	/* Always a tmpfs: writable even on a read-only root, and gone with the sandbox. */
	mount_or_warn("tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	/* The agent's own files (code interpreter kernels, cells) live here. */
	mount_or_warn("run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	if (sethostname("sandbox", 7) < 0)
		say("warning: sethostname: %s", strerror(errno));
}

/* lo is down at boot; services in the guest (a language kernel, a local server the code starts)
 * expect 127.0.0.1. Bringing it up is enough: the kernel gives it 127.0.0.1/8 and ::1. */
static void loopback_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		say("warning: loopback: socket: %s", strerror(errno));
		return;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		say("warning: loopback: SIOCGIFFLAGS: %s", strerror(errno));
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			say("warning: loopback: SIOCSIFFLAGS: %s", strerror(errno));
	}
	close(fd);
}

/* The interface appears once virtio_net has probed the device, which loading it did. */
static int net_wait(void)
{
	struct timespec poll = {0, ROOT_POLL_MS * 1000000L};

	for (int waited = 0; waited < NET_WAIT_MS; waited += ROOT_POLL_MS) {
		if (access("/sys/class/net/" NET_IF, F_OK) == 0)
			return 0;
		nanosleep(&poll, NULL);
	}
	return -1;
}

/* /etc/resolv.conf names our DNS server: a file in /run bound over it, as the root may be
 * read-only. A root without one gets an empty one to bind over, if it is writable. */
static void net_resolv_conf(struct in_addr dns)
{
	int fd;

	if (net_resolv_write(dns) < 0) {
		say("warning: %s: %s", NET_RESOLV, strerror(errno));
		return;
	}
	if (access("/etc/resolv.conf", F_OK) < 0 &&
	    (fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0)
		close(fd);
	if (mount(NET_RESOLV, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
		say("warning: bind %s on /etc/resolv.conf: %s", NET_RESOLV, strerror(errno));
}

/* Not fatal: the sandbox still runs, without its network, and says why. */
static void net_up(const char *spec)
{
	struct net_config n;
	const char *failed;
	int fd;

	if (net_config_parse(spec, &n) < 0) {
		say("warning: sbx.net=%s: not ADDR/PREFIX,GATEWAY,DNS,MAC", spec);
		return;
	}
	if (net_wait() < 0) {
		say("warning: no %s after %d ms: no network", NET_IF, NET_WAIT_MS);
		return;
	}
	/* IPv4 only: the VMM drops IPv6, so the guest should not send any. */
	fd = open("/proc/sys/net/ipv6/conf/" NET_IF "/disable_ipv6", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			say("warning: disable_ipv6: %s", strerror(errno));
		close(fd);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	failed = fd < 0 ? "socket" : net_config_apply(fd, &n);
	if (failed)
		say("warning: %s: %s: %s", NET_IF, failed, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (!failed)
		net_resolv_conf(n.dns);
}

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Children start with the signal mask PID 1 sleeps with (SIGCHLD blocked) undone. */
static void child_signals_reset(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Opened while the initramfs is still our root. O_CLOEXEC is fine for fexecve of an ELF file:
 * execveat(fd, "", AT_EMPTY_PATH), which musl's fexecve uses, reads the file before the exec
 * closes the descriptor (only a "#!" script would need it to survive), and it keeps the agent's
 * descriptor from leaking into every other child. */
static void agent_open(struct agent *a)
{
	a->fd = open(AGENT_PATH, O_RDONLY | O_CLOEXEC);
	if (a->fd < 0)
		say("warning: %s: %s; no agent", AGENT_PATH, strerror(errno));
	a->backoff_ms = AGENT_BACKOFF_MS;
}

static void agent_start(struct agent *a)
{
	char *argv[] = {"sandbox-agent", NULL};
	char *envp[] = {BASE_PATH, NULL};
	pid_t pid;
	int fd;

	if (a->fd < 0 || a->pid)
		return;
	pid = fork();
	if (pid < 0) {
		say("warning: agent: fork: %s", strerror(errno));
		a->restart_ms = monotonic_ms() + a->backoff_ms;
		return;
	}
	if (pid == 0) {
		child_signals_reset();
		setsid();
		fd = open("/dev/null", O_RDONLY); /* stdin; stdout and stderr stay the console */
		if (fd >= 0 && fd != STDIN_FILENO) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		fexecve(a->fd, argv, envp);
		say("error: agent: exec: %s", strerror(errno));
		_exit(127);
	}
	a->pid = pid;
	a->started_ms = monotonic_ms();
}

static void agent_exited(struct agent *a, int status)
{
	long long now = monotonic_ms();

	if (now - a->started_ms >= AGENT_STABLE_MS)
		a->backoff_ms = AGENT_BACKOFF_MS;
	if (WIFSIGNALED(status))
		say("agent died (signal %d); restarting in %lld ms", WTERMSIG(status), a->backoff_ms);
	else
		say("agent exited (status %d); restarting in %lld ms", WEXITSTATUS(status),
		    a->backoff_ms);
	a->pid = 0;
	a->restart_ms = now + a->backoff_ms;
	/* Dying again right away doubles the wait, so a broken agent cannot flood the console. */
	a->backoff_ms = a->backoff_ms * 2 > AGENT_BACKOFF_MAX_MS ? AGENT_BACKOFF_MAX_MS
								   : a->backoff_ms * 2;
}

/* PID 1's loop: reaps every child (orphans re-parent to us), restarts the agent when it dies,
 * and returns cmd's wait status once cmd (if > 0) exits. A blocking waitpid(-1) returns at once
 * with ECHILD while we have no children, so sleep on SIGCHLD instead, blocked since main's start
 * so none is missed: blocked, it stays pending even for PID 1, which the kernel otherwise spares
 * default-action signals. */
static int supervise(struct agent *a, pid_t cmd)
{
	sigset_t chld;
	int status;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == cmd)
				return status;
			if (pid == a->pid)
				agent_exited(a, status);
		}
		if (a->fd >= 0 && !a->pid) {
			long long left = a->restart_ms - monotonic_ms();
			struct timespec ts = {left / 1000, (left % 1000) * 1000000};

			if (left <= 0) {
				agent_start(a);
				continue;
			}
			sigtimedwait(&chld, NULL, &ts);
		} else {
			sigwaitinfo(&chld, NULL);
		}
	}
}

/* /proc/uptime already has two decimals ("12.34 5.67"); pass the first field through. */
static void report_ready(void)
{
	char up[64] = "?";
	char line[128];
	ssize_t n = -1;
	int fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, up, sizeof(up) - 1);
		close(fd);
	}
	if (n > 0) {
		up[n] = 0;
		up[strcspn(up, " \n")] = 0;
	}
	n = snprintf(line, sizeof(line), PREFIX "ready uptime=%s\n", up);
	if (write(STDOUT_FILENO, line, (size_t)n) < 0) {
		/* Nowhere else to report to. */
	}
}

static _Noreturn void exec_command(const char *cmd)
{
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
	char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=/root", "TERM=dumb", NULL};
	int fd;

	child_signals_reset();
	setsid();
	fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: it becomes stdin */
	if (fd >= 0 && fd != STDIN_FILENO) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	if (chdir("/root") < 0 && chdir("/") < 0) {
		/* Already at /; nothing better to do. */
	}
	execve(argv[0], argv, envp);
	say("error: exec /bin/sh: %s", strerror(errno));
	_exit(127);
}

/* Leaves the root disk clean for its next user: without this the image keeps a journal to
 * replay, and a later read-only mount of it (sbx.ro=1 on a read-only disk) fails. Processes the
 * command left behind would hold files open for writing, so they go first. */
static _Noreturn void shutdown_after_command(void)
{
	kill(-1, SIGKILL); /* everyone but us */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	sync();
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0 && errno != EROFS)
		say("warning: remount / read-only: %s", strerror(errno));
	power_off();
}

/* Runs the command beside the agent, until the command itself exits. */
static _Noreturn void run_command(struct agent *a, const char *cmd)
{
	pid_t child = fork();
	int status;

	if (child < 0)
		fatal("fork", errno);
	if (child == 0)
		exec_command(cmd);
	status = supervise(a, child);
	if (WIFEXITED(status))
		say("command exit=%d", WEXITSTATUS(status));
	else
		say("command signal=%d", WTERMSIG(status));
	shutdown_after_command();
}

int main(void)
{
	struct options o = {.root = "/dev/vda", .fstype = "ext4", .flags = NULL};
	struct agent a = {.fd = -1};
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_or_die("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	load_modules();
	parse_cmdline(&o);
	agent_open(&a);
	switch_root(&o);
	loopback_up();
	if (o.net)
		net_up(o.net);
	agent_start(&a);
	report_ready();
	if (o.cmd)
		run_command(&a, o.cmd);
	supervise(&a, 0);
	power_off(); /* not reached: supervise(0) never returns */
}
