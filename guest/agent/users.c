/* /etc/passwd and /etc/group parsing, without NSS (see users.h). */
#define _GNU_SOURCE
#include "users.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PASSWD_PATH "/etc/passwd"
#define GROUP_PATH "/etc/group"

/* Splits line (modified in place) at ':' into at most max fields; returns how many. */
static int split_fields(char *line, char **field, int max)
{
	int n = 0;

	line[strcspn(line, "\n")] = 0;
	while (n < max) {
		field[n++] = line;
		line = strchr(line, ':');
		if (!line)
			break;
		*line++ = 0;
	}
	return n;
}

/* A decimal id that fits an id_t (and is not -1, which means "no change" to set*id). */
static int parse_id(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= UINT_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* Finds the passwd entry whose name (by_name) or uid matches. 1 found, 0 not, -errno. */
static int passwd_find(const char *name, uid_t uid, int by_name, struct user *u, char *uname,
		       size_t uname_len)
{
	FILE *fp = fopen(PASSWD_PATH, "re");
	char *line = NULL, *f[7];
	size_t cap = 0;
	int found = 0;

	if (!fp)
		return -errno;
	while (!found && getline(&line, &cap, fp) > 0) {
		unsigned id, gid;

		if (split_fields(line, f, 7) < 7 || parse_id(f[2], &id) || parse_id(f[3], &gid))
			continue;
		if (by_name ? strcmp(f[0], name) != 0 : id != uid)
			continue;
		u->uid = id;
		u->gid = gid;
		snprintf(u->home, sizeof(u->home), "%s", *f[5] ? f[5] : "/");
		snprintf(uname, uname_len, "%s", f[0]);
		found = 1;
	}
	free(line);
	fclose(fp);
	return found;
}

/* Supplementary groups as initgroups(3) would set them: the primary group, then every group
 * listing the user as a member. A missing /etc/group leaves just the primary one. */
static void groups_find(const char *uname, struct user *u)
{
	FILE *fp = fopen(GROUP_PATH, "re");
	char *line = NULL, *f[4], *member, *save;
	size_t cap = 0;

	u->groups[0] = u->gid;
	u->ngroups = 1;
	if (!fp || !*uname) {
		if (fp)
			fclose(fp);
		return;
	}
	while (u->ngroups < USER_MAX_GROUPS && getline(&line, &cap, fp) > 0) {
		unsigned gid;

		if (split_fields(line, f, 4) < 4 || parse_id(f[2], &gid) || gid == u->gid)
			continue;
		for (member = strtok_r(f[3], ",", &save); member;
		     member = strtok_r(NULL, ",", &save)) {
			if (!strcmp(member, uname)) {
				u->groups[u->ngroups++] = gid;
				break;
			}
		}
	}
	free(line);
	fclose(fp);
}

static int user_by_id(uid_t uid, struct user *u)
{
	char uname[256] = "";
	int rc = passwd_find(NULL, uid, 0, u, uname, sizeof(uname));

	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (rc <= 0) {
		/* Not in /etc/passwd (or none at all): a bare uid, as container runtimes allow. */
		u->uid = uid;
		u->gid = uid;
		snprintf(u->home, sizeof(u->home), "/");
	}
	groups_find(uname, u);
	return 0;
}

int user_lookup(const char *spec, struct user *u)
{
	char uname[256];
	unsigned id;
	int rc;

	if (!spec || !*spec)
		return -EINVAL;
	if (parse_id(spec, &id) == 0)
		return user_by_id(id, u);
	rc = passwd_find(spec, 0, 1, u, uname, sizeof(uname));
	if (rc <= 0)
		return rc == 0 ? -ENOENT : rc;
	groups_find(uname, u);
	return 0;
}

int user_self(struct user *u)
{
	return user_by_id(getuid(), u);
}
