/* Fork (docs/snapshot.md, "Fork"): a snapshot of the running parent, restored once per child,
 * then removed. Built on the public snapshot calls only. The children's memory is the
 * snapshot's memory file mapped MAP_PRIVATE by each child's VMM, so its pages are shared until
 * a child writes to them; the file is unlinked once every child runs, and the kernel keeps it
 * for as long as one of them maps it. Each child's rootfs is a reflink of the parent's. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "reseed.h"
#include "state_dir.h"

/* When the parent's time to live runs out (<dir>/expires, wall clock); 0: never. */
static long long fork_parent_expires(const sbx_sandbox *sb)
{
	char path[PATH_MAX + 16];
	long long expires = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/expires", sb->dir);
	f = fopen(path, "re");
	if (f && fscanf(f, "%lld", &expires) != 1)
		expires = 0;
	if (f)
		fclose(f);
	return expires > 0 ? expires : 0;
}

/* The config the children are restored with when the caller gives none: the parent's state
 * directory base and detached flag. */
static sbx_config *fork_default_config(const sbx_sandbox *sb)
{
	sbx_config *cfg = sbx_config_new();
	char base[PATH_MAX];

	snprintf(base, sizeof(base), "%s", sb->dir);
	if (cfg && (sbx_config_set_state_dir(cfg, dirname(base)) != SBX_OK ||
		    sbx_config_set_detached(cfg, sb->detached) != SBX_OK)) {
		sbx_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Restores and reseeds child i; on failure its message goes to the parent's last error. */
static int fork_child(sbx_sandbox *sb, sbx_config *cfg, const char *snap, sbx_sandbox **child)
{
	char msg[SBX_ERRMSG_MAX];
	int rc = sbx_sandbox_restore(cfg, snap, child);

	if (rc != SBX_OK) {
		snprintf(msg, sizeof(msg), "restoring a child: %s", sbx_config_last_error(cfg));
		return sandbox_error(sb, rc, msg);
	}
	rc = sandbox_reseed(*child, msg);
	if (rc != SBX_OK) {
		sbx_sandbox_destroy(*child);
		*child = NULL;
		return sandbox_error(sb, rc, msg);
	}
	return SBX_OK;
}

int sbx_sandbox_fork(sbx_sandbox *sb, sbx_config *cfg, unsigned n, sbx_sandbox **children)
{
	sbx_sandbox *made_sb[SBX_FORK_MAX];
	char snap[PATH_MAX];
	sbx_config *own = NULL;
	long long parent_end, saved_deadline;
	unsigned made = 0;
	int rc;

	if (!sb || !children)
		return SBX_EINVAL;
	if (n < 1 || n > SBX_FORK_MAX)
		return sandbox_error(sb, SBX_ERANGE, "a fork makes 1 to 64 children");
	parent_end = fork_parent_expires(sb);
	if (parent_end && parent_end <= (long long)time(NULL))
		return sandbox_error(sb, SBX_ESTATE, "its time to live has run out");
	if (!cfg && !(cfg = own = fork_default_config(sb)))
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	/* No child outlives the limit its parent was given, whatever the config says (which gets
	 * its own deadline back at the end). */
	saved_deadline = cfg->ttl_deadline;
	if (parent_end && (!cfg->ttl_deadline || parent_end < cfg->ttl_deadline))
		cfg->ttl_deadline = parent_end;
	/* Inside the parent's directory: private to us, and on the state directory's filesystem,
	 * where (by default) the children's disks are cloned to: reflinks where it has them. */
	if ((size_t)snprintf(snap, sizeof(snap), "%s/fork-XXXXXX", sb->dir) >= sizeof(snap) ||
	    !mkdtemp(snap)) {
		cfg->ttl_deadline = saved_deadline;
		sbx_config_free(own);
		return sandbox_error(sb, SBX_EIO, "cannot make the fork's snapshot directory");
	}
	rc = sbx_sandbox_snapshot(sb, snap, NULL);
	while (rc == SBX_OK && made < n) {
		sbx_sandbox *child = NULL;
		rc = fork_child(sb, cfg, snap, &child);
		if (rc == SBX_OK)
			made_sb[made++] = child;
	}
	state_dir_remove(snap);
	if (rc == SBX_OK)
		memcpy(children, made_sb, n * sizeof(*children));
	else
		while (made)
			sbx_sandbox_destroy(made_sb[--made]);
	cfg->ttl_deadline = saved_deadline;
	sbx_config_free(own);
	return rc;
}
