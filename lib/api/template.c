/* Templates (docs/snapshot.md, "Templates"): a sandbox booted once, warmed by running code in
 * it, and snapshotted under a name; new sandboxes are restored from it instead of booting. A
 * template is a snapshot directory <template dir>/NAME, built as NAME.partial and renamed when
 * complete, so a listed template is always whole. Built on the public snapshot calls only. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "reseed.h"
#include "state_dir.h"

#define TEMPLATE_NAME_MAX 64
#define TEMPLATE_BOOT_MS (10 * 60 * 1000)
/* Importing numpy, pandas and matplotlib the first time, under emulation, takes minutes. */
#define TEMPLATE_WARM_MS (20 * 60 * 1000)
#define PARTIAL ".partial"

/* $SANDBOX_TEMPLATE_DIR, else <state directory base>/templates. */
static int template_base(sbx_config *cfg, char *buf, size_t len)
{
	const char *env = getenv("SANDBOX_TEMPLATE_DIR");
	char base[PATH_MAX];
	int rc;

	if (env && *env) {
		if ((size_t)snprintf(buf, len, "%s", env) >= len)
			return sbx_fail(cfg->err, SBX_EINVAL, "SANDBOX_TEMPLATE_DIR too long");
		return SBX_OK;
	}
	rc = state_dir_base(cfg->state_dir, base, sizeof(base));
	if (rc != SBX_OK)
		return sbx_fail(cfg->err, rc, "state directory: %s", sbx_strerror(rc));
	if ((size_t)snprintf(buf, len, "%s/templates", base) >= len)
		return sbx_fail(cfg->err, SBX_EINVAL, "state directory too long");
	return SBX_OK;
}

/* Names are one path component of [A-Za-z0-9._-], not starting with a dot. */
static int template_path(sbx_config *cfg, const char *name, const char *suffix, char *buf,
			 size_t len)
{
	char base[PATH_MAX];
	size_t n = name ? strlen(name) : 0;
	int rc;

	if (n == 0 || n > TEMPLATE_NAME_MAX || name[0] == '.' ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return sbx_fail(cfg->err, SBX_EINVAL,
				"template name \"%s\": 1 to %d of A-Z a-z 0-9 . _ -, not starting "
				"with a dot",
				name ? name : "", TEMPLATE_NAME_MAX);
	rc = template_base(cfg, base, sizeof(base));
	if (rc == SBX_OK && (size_t)snprintf(buf, len, "%s/%s%s", base, name, suffix) >= len)
		rc = sbx_fail(cfg->err, SBX_EINVAL, "template directory too long");
	return rc;
}

static void progress_say(sbx_progress_fn progress, void *user, const char *step)
{
	if (progress)
		progress(user, step);
}

/* Runs the warm-up cell; a cell that raises fails the build. */
static int template_warm(sbx_config *cfg, sbx_sandbox *sb, const char *code)
{
	sbx_code_opts *o = sbx_code_opts_new();
	sbx_execution *e = NULL;
	int rc = o ? sbx_code_opts_set_timeout_ms(o, TEMPLATE_WARM_MS) : SBX_ENOMEM;

	if (rc == SBX_OK)
		rc = sbx_run_code(sb, code, o, &e);
	if (rc != SBX_OK)
		sbx_fail(cfg->err, rc, "warming: %s", sbx_sandbox_last_error(sb));
	else if (sbx_execution_error_name(e))
		rc = sbx_fail(cfg->err, SBX_EGUEST, "warming: the cell raised %s: %s",
			      sbx_execution_error_name(e), sbx_execution_error_value(e));
	sbx_execution_free(e);
	sbx_code_opts_free(o);
	return rc;
}

int sbx_template_build(sbx_config *cfg, const char *name, const char *warm_code,
		       sbx_progress_fn progress, void *user)
{
	char dir[PATH_MAX], partial[PATH_MAX], msg[SBX_ERRMSG_MAX];
	sbx_sandbox *sb = NULL;
	struct stat st;
	int rc;

	if (!cfg)
		return SBX_EINVAL;
	rc = template_path(cfg, name, "", dir, sizeof(dir));
	if (rc == SBX_OK)
		rc = template_path(cfg, name, PARTIAL, partial, sizeof(partial));
	if (rc != SBX_OK)
		return rc;
	if (stat(dir, &st) == 0)
		return sbx_fail(cfg->err, SBX_ESTATE, "template %s exists in %s (remove it first)",
				name, dir);
	state_dir_remove(partial); /* what a build that died left */
	progress_say(progress, user, "booting the guest");
	rc = sbx_sandbox_create(cfg, &sb);
	if (rc != SBX_OK)
		return rc;
	rc = sbx_sandbox_wait_ready(sb, TEMPLATE_BOOT_MS);
	if (rc != SBX_OK)
		sbx_fail(cfg->err, rc, "booting: %s", sbx_sandbox_last_error(sb));
	if (rc == SBX_OK && warm_code) {
		progress_say(progress, user, "warming: running the warm-up code");
		rc = template_warm(cfg, sb, warm_code);
	}
	if (rc == SBX_OK) {
		progress_say(progress, user, "snapshotting");
		rc = sbx_sandbox_snapshot(sb, partial, NULL);
		if (rc != SBX_OK)
			sbx_fail(cfg->err, rc, "snapshot: %s", sbx_sandbox_last_error(sb));
	}
	sbx_sandbox_destroy(sb);
	if (rc == SBX_OK && rename(partial, dir) < 0)
		rc = sbx_fail(cfg->err, SBX_EIO, "renaming %s to %s: %s", partial, dir,
			      strerror(errno));
	if (rc != SBX_OK) {
		snprintf(msg, sizeof(msg), "%s", cfg->err);
		state_dir_remove(partial);
		sbx_fail(cfg->err, rc, "%s", msg);
		return rc;
	}
	progress_say(progress, user, "template ready");
	return SBX_OK;
}

int sbx_template_list(sbx_config *cfg, char **names)
{
	char base[PATH_MAX], state[PATH_MAX + 300];
	struct sbx_buf out = {0};
	struct dirent *e;
	DIR *d;
	int rc;

	if (!cfg || !names)
		return SBX_EINVAL;
	rc = template_base(cfg, base, sizeof(base));
	if (rc != SBX_OK)
		return rc;
	rc = sbx_buf_append(&out, NULL, 0);
	d = opendir(base);
	if (!d && errno != ENOENT)
		rc =
		    sbx_fail(cfg->err, SBX_EIO, "template directory %s: %s", base, strerror(errno));
	while (rc == SBX_OK && d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' ||
		    (n > strlen(PARTIAL) && !strcmp(e->d_name + n - strlen(PARTIAL), PARTIAL)))
			continue;
		snprintf(state, sizeof(state), "%s/%s/state", base, e->d_name);
		if (access(state, F_OK) != 0)
			continue;
		rc = sbx_buf_append(&out, e->d_name, n);
		if (rc == SBX_OK)
			rc = sbx_buf_append(&out, "\n", 1);
	}
	if (d)
		closedir(d);
	if (rc != SBX_OK) {
		free(out.data);
		return rc;
	}
	*names = out.data;
	return SBX_OK;
}

/* The directory of an existing template. */
static int template_existing(sbx_config *cfg, const char *name, char *dir, size_t len)
{
	int rc = template_path(cfg, name, "", dir, len);

	if (rc == SBX_OK && access(dir, F_OK) != 0)
		rc = sbx_fail(cfg->err, SBX_ENOENT, "no template %s (%s)", name, dir);
	return rc;
}

int sbx_template_remove(sbx_config *cfg, const char *name)
{
	char dir[PATH_MAX];
	int rc;

	if (!cfg)
		return SBX_EINVAL;
	rc = template_existing(cfg, name, dir, sizeof(dir));
	if (rc != SBX_OK)
		return rc;
	state_dir_remove(dir);
	if (access(dir, F_OK) == 0)
		return sbx_fail(cfg->err, SBX_EIO, "could not remove %s", dir);
	return SBX_OK;
}

int sbx_sandbox_create_from_template(sbx_config *cfg, const char *name, sbx_sandbox **out)
{
	char dir[PATH_MAX];
	sbx_sandbox *sb = NULL;
	int rc;

	if (!cfg || !out)
		return SBX_EINVAL;
	rc = template_existing(cfg, name, dir, sizeof(dir));
	if (rc != SBX_OK)
		return rc;
	rc = sbx_sandbox_restore(cfg, dir, &sb);
	if (rc != SBX_OK)
		return rc;
	rc = sandbox_reseed(sb, cfg->err);
	if (rc != SBX_OK) {
		sbx_sandbox_destroy(sb);
		return rc;
	}
	*out = sb;
	return SBX_OK;
}
