#define _GNU_SOURCE
#include "e2e_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *require_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "e2e: %s is not set: run through ctest (tests/CMakeLists.txt sets it)\n",
			name);
		exit(1);
	}
	return v;
}

void e2e_env_load(struct e2e_env *e)
{
	e->kernel = require_env("SANDBOX_KERNEL");
	e->initramfs = require_env("SANDBOX_INITRAMFS");
	e->rootfs = require_env("SANDBOX_ROOTFS");
	e->workdir = require_env("SANDBOX_E2E_WORKDIR");
}

static sbx_config *config_with(const struct e2e_env *e, const char *rootfs, int read_only,
			       unsigned vcpus, unsigned memory_mib)
{
	sbx_config *cfg = sbx_config_new();

	if (!cfg || sbx_config_set_kernel(cfg, e->kernel) ||
	    sbx_config_set_initramfs(cfg, e->initramfs) ||
	    sbx_config_add_disk(cfg, rootfs, read_only) ||
	    (read_only && sbx_config_set_kernel_args(cfg, "sbx.ro=1")) ||
	    sbx_config_set_vcpus(cfg, vcpus) || sbx_config_set_memory_mib(cfg, memory_mib)) {
		fprintf(stderr, "e2e: building the config failed: %s\n", sbx_config_last_error(cfg));
		exit(1);
	}
	return cfg;
}

sbx_config *e2e_config(const struct e2e_env *e, unsigned vcpus, unsigned memory_mib)
{
	/* The rootfs is shared by tests running side by side: read-only, mounted read-only. */
	return config_with(e, e->rootfs, 1, vcpus, memory_mib);
}

sbx_config *e2e_config_writable(const struct e2e_env *e, const char *rootfs, unsigned vcpus,
				unsigned memory_mib)
{
	return config_with(e, rootfs, 0, vcpus, memory_mib);
}

void e2e_dump_console(sbx_sandbox *sb)
{
	char *text = NULL;

	if (sbx_sandbox_console(sb, &text, NULL) == SBX_OK)
		fprintf(stderr, "----- guest console -----\n%s\n----- end of console -----\n", text);
	sbx_free(text);
}

int e2e_contains(const char *text, const char *needle)
{
	return text && strstr(text, needle) != NULL;
}

int e2e_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

char *e2e_sh_out(const char *fmt, ...)
{
	char cmd[4096], *buf = calloc(1, 65536);
	size_t n = 0;
	va_list ap;
	FILE *f;

	if (!buf)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (f) {
		n = fread(buf, 1, 65535, f);
		pclose(f);
	}
	buf[n] = 0;
	return buf;
}
