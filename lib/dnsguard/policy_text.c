#define _GNU_SOURCE
#include "policy_text.h"

#include <errno.h>
#include <string.h>

int policy_text_parse(char *text, struct egress_policy **out)
{
	size_t len = strlen(text), end_len = strlen(POLICY_TEXT_END "\n");
	char *save = NULL, *line;
	struct egress_policy *p;
	enum egress_mode mode;
	int rc;

	if (len < end_len || strcmp(text + len - end_len, POLICY_TEXT_END "\n") != 0 ||
	    (len > end_len && text[len - end_len - 1] != '\n'))
		return -EINVAL;
	text[len - end_len] = 0;
	line = strtok_r(text, "\n", &save);
	if (!line || egress_mode_parse(line, &mode) < 0)
		return -EINVAL;
	p = egress_policy_new(mode);
	if (!p)
		return -ENOMEM;
	rc = 0;
	while (rc == 0 && (line = strtok_r(NULL, "\n", &save)))
		rc = egress_policy_add(p, line);
	if (rc < 0) {
		egress_policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}
