#include "policy_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int policy_file_read(const char *path, struct egress_policy **out)
{
	char line[512];
	struct egress_policy *p = NULL;
	enum egress_mode mode;
	int rc = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		rc = -EINVAL;
	} else {
		line[strcspn(line, "\n")] = 0;
		rc = egress_mode_parse(line, &mode);
	}
	if (rc == 0 && !(p = egress_policy_new(mode)))
		rc = -ENOMEM;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		rc = egress_policy_add(p, line);
	}
	fclose(f);
	if (rc < 0) {
		egress_policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}
