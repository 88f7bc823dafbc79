/* A policy as the library sends it to the DNS guard over its control socket: the mode on the
 * first line, then one allowlist entry a line, then POLICY_TEXT_END alone on the last line (so a
 * text cut short, whose last entry may be a shortened name, is never taken). */
#pragma once
#include "net/egress.h"

#define POLICY_TEXT_END "#end" /* no entry can be this: '#' is in neither syntax */

/* Parses text (NUL-terminated; its newlines are overwritten) into a new policy (*out). 0,
 * -EINVAL when a line is not a mode or an entry or the end line is missing, -E2BIG (too many
 * entries), -ENOMEM. */
int policy_text_parse(char *text, struct egress_policy **out);
