/* Number arguments of the CLI: anything but a whole, in-range number is a usage error, never a
 * silent zero. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int parse_uint(const char *opt, const char *text, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (end == text || *end || *text == '-' || errno || v > max) {
		fprintf(stderr, "sandbox: --%s %s: not a whole number from 0 to %u\n", opt, text, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int parse_seconds_ms(const char *opt, const char *text, unsigned *ms)
{
	char *end;
	double seconds = strtod(text, &end);

	if (end == text || *end || !(seconds >= 0 && seconds <= 86400)) {
		fprintf(stderr, "sandbox: --%s %s: not a number of seconds up to a day\n", opt, text);
		return -1;
	}
	*ms = (unsigned)(seconds * 1000);
	return 0;
}
