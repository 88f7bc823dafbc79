/* One console line per write(2), shared by the guest init and the agent. */
#pragma once
#include <stdarg.h>

/* Writes "<prefix><formatted>\n" to stdout in a single write, so it never interleaves with the
 * console's other writers mid-line; truncated at 510 bytes. */
void console_line(const char *prefix, const char *fmt, va_list ap);
