/* Helpers the CLI's command files share (cli/sandbox.c has main and most commands). */
#pragma once
#include <sandbox.h>
#include <stddef.h>

/* A handle on sandbox id in the default state directory; prints why not and gives NULL. */
sbx_sandbox *attach_or_complain(const char *id);
/* sbx_output_fn that copies to our stdout or stderr. */
void stream_output(void *user, int stream, const char *data, size_t len);
/* All of stdin into *data (malloc'd, not NUL-terminated). 0 or -1. */
int slurp_stdin(char **data, size_t *len);

/* A policy from the CLI's syntax ("none", "all", "allow:LIST"); prints why not and gives NULL. */
sbx_net_policy *policy_parse_or_complain(const char *text);

/* cli/args.c: the value of option --opt: 0, or -1 having said why text is not a whole number up
 * to max / a number of seconds (fractions allowed) up to a day. */
int parse_uint(const char *opt, const char *text, unsigned max, unsigned *out);
int parse_seconds_ms(const char *opt, const char *text, unsigned *ms);

/* cli/net.c */
int cmd_net(int argc, char **argv);

/* cli/code.c */
int cmd_run_code(int argc, char **argv);
int cmd_context(int argc, char **argv);

/* Seven disks in all (the library's limit), the first being the rootfs. */
#define MAX_EXTRA_DISKS 6

/* The options of boot and create (cli/sandbox.c). */
struct boot_opts {
	char kernel[4096], initramfs[4096];
	const char *rootfs, *exec, *kernel_args;
	const char *net, *net_dns, *net_mac, *net_pool;
	int net_admit_private;
	const char *disks[MAX_EXTRA_DISKS];
	unsigned ndisks, cpus, memory, cpu_quota, pids, allow_degraded, ttl;
	int timeout_s;
};

/* Parses boot OPTIONS (0, or 2 after a usage message) and applies them to cfg (an SBX code,
 * printed). */
int boot_parse(int argc, char **argv, struct boot_opts *o);
int boot_configure(sbx_config *cfg, struct boot_opts *o);

/* cli/fork.c */
int cmd_fork(int argc, char **argv);

/* cli/template.c */
int cmd_template(int argc, char **argv);
int cmd_create_from_template(const char *name);
