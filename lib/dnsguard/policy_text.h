/* A policy as the library sends it to the DNS guard over its control socket: the mode on the
 * first line, then one allowlist entry a line. */
#pragma once
#include "net/egress.h"

/* Parses text (NUL-terminated; its newlines are overwritten) into a new policy (*out). 0,
 * -EINVAL when a line is not a mode or an entry, -E2BIG (too many entries), -ENOMEM. */
int policy_text_parse(char *text, struct egress_policy **out);
