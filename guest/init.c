/*
 * sandbox-init: PID 1 of the project's initramfs. Built static with musl and embedded in
 * libsandbox, so a sandbox needs no separate init file.
 *
 * Loads the virtio modules listed in /lib/modules/order, mounts the root disk named on the kernel
 * command line, switches into it, reports "sandbox-init: ready" on the console (the VMM waits for
 * that line), and either runs one shell command and powers off, or stays up reaping orphans.
 *
 * Kernel command line (read from /proc/cmdline; dotted names are not passed to init as argv):
 *   sbx.root=DEV         root block device, default /dev/vda
 *   sbx.rootfstype=FS    default ext4
 *   sbx.rootflags=OPTS   filesystem options (mount(2) data), default none
 *   sbx.ro=1             mount the root read-only
 *   sbx.cmd=BASE64       a command for /bin/sh -c, base64 (standard alphabet)
 *
 * PID 1 must never return: the kernel panics when init exits. Every fatal path ends in power-off,
 * which the host sees as the guest stopping rather than as a hang.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "sandbox-init: "
#define NEWROOT "/newroot"
#define MODULES_DIR "/lib/modules"
#define ROOT_WAIT_MS 10000
#define ROOT_POLL_MS 5
#define CMDLINE_MAX 4096 /* x86 COMMAND_LINE_SIZE is 2048 */

struct options {
	const char *root;
	const char *fstype;
	const char *flags;
	int read_only;
	char *cmd; /* decoded, or NULL */
};

/* One write(2) per message, so lines from the init never interleave with the kernel's or the
 * command's output mid-line. */
static void say(const char *fmt, ...)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), PREFIX);
	va_list ap;

	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDOUT_FILENO, buf, (size_t)n) < 0) {
		/* Nowhere else to report to. */
	}
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

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes standard base64 in place (the output is never longer than the input). Padding is
 * optional; anything else outside the alphabet is an error, so a mangled command is refused
 * rather than run half-decoded. */
static int b64_decode(char *s)
{
	unsigned acc = 0, bits = 0;
	char *out = s;
	const char *in = s;

	for (; *in && *in != '='; in++) {
		int v = b64_value((unsigned char)*in);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*out++ = (char)((acc >> bits) & 0xff);
		}
	}
	while (*in == '=')
		in++;
	if (*in || bits >= 6)
		return -EINVAL; /* data after padding, or a dangling 6-bit group */
	*out = 0;
	return 0;
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
	}
	if (o->cmd && b64_decode(o->cmd) < 0)
		fatal("sbx.cmd is not valid base64", EINVAL);
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
	mount_or_warn("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	/* Always a tmpfs: writable even on a read-only root, and gone with the sandbox. */
	mount_or_warn("tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (sethostname("sandbox", 7) < 0)
		say("warning: sethostname: %s", strerror(errno));
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

/* Reaps everything (orphans re-parent to us) until the command itself exits. */
static _Noreturn void run_command(const char *cmd)
{
	pid_t child = fork(), pid;
	int status;

	if (child < 0)
		fatal("fork", errno);
	if (child == 0)
		exec_command(cmd);
	for (;;) {
		pid = waitpid(-1, &status, 0);
		if (pid == child)
			break;
		if (pid < 0 && errno != EINTR)
			fatal("waitpid", errno);
	}
	if (WIFEXITED(status))
		say("command exit=%d", WEXITSTATUS(status));
	else
		say("command signal=%d", WTERMSIG(status));
	shutdown_after_command();
}

/* A blocking waitpid(-1) returns at once with ECHILD while we have no children, so sleep on
 * SIGCHLD instead. Blocked, it stays pending even for PID 1, which the kernel otherwise spares
 * default-action signals. */
static _Noreturn void reap_forever(void)
{
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		sigwaitinfo(&chld, NULL);
	}
}

int main(void)
{
	struct options o = {.root = "/dev/vda", .fstype = "ext4", .flags = NULL};

	mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_or_die("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	load_modules();
	parse_cmdline(&o);
	switch_root(&o);
	report_ready();
	if (o.cmd)
		run_command(o.cmd);
	reap_forever();
}
