/* sandbox template build|list|rm, and create --template. A build of a template the rootfs
 * builder knows (guest/templates/) first builds its rootfs (cached), then hands the boot to
 * sbx_template_build with the warm-up cell for that template. */
#define _GNU_SOURCE
#include <errno.h>
#include <sandbox.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "guest_defaults.h"

extern char **environ;

/* What a template is warmed with: the code interpreter's heavy imports, so a cell in a sandbox
 * made from it finds them loaded. */
static const char *warm_code_for(const char *name)
{
	if (!strcmp(name, "code-interpreter"))
		return "import numpy, pandas, matplotlib.pyplot";
	return NULL;
}

static void progress(void *user, const char *step)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	fprintf(stderr, "template: [%5.1f s] %s\n",
		(double)now.tv_sec + now.tv_nsec / 1e9 - *(double *)user, step);
}

/* build-rootfs --template name [--lite] -o out; its progress goes to our stderr. */
static int rootfs_build(const char *name, int lite, const char *out)
{
	const char *script = getenv("SANDBOX_BUILD_ROOTFS");
	char *argv[] = {"build-rootfs", "--template",		(char *)name, "-o",
			(char *)out,	lite ? "--lite" : NULL, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc;

	if (!script || !*script)
		script = SBX_BUILD_ROOTFS_PATH;
	/* Its one line on stdout (the cache path) joins its progress: our stdout stays clean. */
	rc = posix_spawn_file_actions_init(&fa);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	if (rc == 0)
		rc = posix_spawn(&pid, script, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "sandbox: %s: %s\n", script, strerror(rc));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "sandbox: building the rootfs of template %s failed\n", name);
		return -1;
	}
	return 0;
}

/* Takes --lite out of argv (boot_parse does not know it); whether it was there. */
static int take_lite(int *argc, char **argv)
{
	int found = 0, j = 0;

	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--lite"))
			found = 1;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	return found;
}

static int has_rootfs_arg(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "--rootfs", 8))
			return 1;
	return 0;
}

/* template build NAME [--lite] [boot OPTIONS] */
static int template_build(int argc, char **argv)
{
	char cache[4096], img[4400];
	struct timespec t0;
	struct boot_opts o;
	sbx_config *cfg;
	double start;
	int lite = take_lite(&argc, argv), built = 0, rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	start = (double)t0.tv_sec + t0.tv_nsec / 1e9;
	if (!has_rootfs_arg(argc, argv)) {
		if (guest_cache_dir(cache, sizeof(cache)) < 0)
			return 1;
		snprintf(img, sizeof(img), "%s/template-%s%s.img", cache, argv[1],
			 lite ? "-lite" : "");
		progress(&start, "building the rootfs (cached after the first build)");
		if (rootfs_build(argv[1], lite, img) < 0)
			return 1;
		setenv("SANDBOX_ROOTFS", img, 1);
		built = 1;
	}
	cfg = sbx_config_new();
	rc = cfg ? boot_parse(argc - 1, argv + 1, &o) : 1;
	if (rc == 0 && boot_configure(cfg, &o) != SBX_OK)
		rc = 1;
	if (rc == 0 &&
	    (rc = sbx_template_build(cfg, argv[1], warm_code_for(argv[1]), progress, &start))) {
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
		rc = 1;
	}
	/* The template has its own clone of the rootfs; this one was a reflink of the cache. */
	if (built)
		unlink(img);
	sbx_config_free(cfg);
	return rc;
}

static int template_list_or_rm(int argc, char **argv)
{
	sbx_config *cfg = sbx_config_new();
	char *names = NULL;
	int rc;

	if (!cfg)
		return 1;
	if (!strcmp(argv[0], "list"))
		rc = sbx_template_list(cfg, &names);
	else
		rc = sbx_template_remove(cfg, argv[1]);
	if (rc != SBX_OK)
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
	else if (names)
		fputs(names, stdout);
	sbx_free(names);
	sbx_config_free(cfg);
	return rc == SBX_OK ? 0 : 1;
}

int cmd_template(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "build"))
		return template_build(argc - 1, argv + 1);
	if ((argc == 2 && !strcmp(argv[1], "list")) || (argc == 3 && !strcmp(argv[1], "rm")))
		return template_list_or_rm(argc - 1, argv + 1);
	fprintf(stderr, "usage: sandbox template build NAME [--lite] [boot OPTIONS] | list | rm "
			"NAME\n");
	return 2;
}

int cmd_create_from_template(const char *name)
{
	sbx_config *cfg = sbx_config_new();
	sbx_sandbox *sb = NULL;
	int rc;

	if (!cfg || sbx_config_set_detached(cfg, 1) != SBX_OK) {
		sbx_config_free(cfg);
		return 1;
	}
	rc = sbx_sandbox_create_from_template(cfg, name, &sb);
	if (rc != SBX_OK)
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
	else
		printf("%s\n", sbx_sandbox_id(sb));
	sbx_sandbox_close(sb);
	sbx_config_free(cfg);
	return rc == SBX_OK ? 0 : 1;
}
