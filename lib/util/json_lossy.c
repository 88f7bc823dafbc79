#include "json_lossy.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1 to 4, within avail bytes), or 0 if it is not one.
 * Overlong forms, surrogates and code points past U+10FFFF are invalid, as jansson holds them. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

json_t *json_stringn_lossy(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t out = 0, n;
	json_t *j;
	char *buf;

	j = json_stringn(s, len);
	if (j)
		return j;
	buf = malloc(len * 3 + 1); /* each bad byte becomes three */
	if (!buf)
		return NULL;
	while (p < end) {
		n = utf8_seq(p, (size_t)(end - p));
		if (n) {
			memcpy(buf + out, p, n);
			out += n;
			p += n;
		} else {
			memcpy(buf + out, "\xef\xbf\xbd", 3);
			out += 3;
			p++;
		}
	}
	j = json_stringn(buf, out);
	free(buf);
	return j;
}

json_t *json_string_lossy(const char *s)
{
	return json_stringn_lossy(s, strlen(s));
}
