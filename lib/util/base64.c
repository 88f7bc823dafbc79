#include "base64.h"

#include <errno.h>
#include <string.h>

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);
		*out++ = base64_alphabet[v >> 18 & 63];
		*out++ = base64_alphabet[v >> 12 & 63];
		*out++ = i + 1 < len ? base64_alphabet[v >> 6 & 63] : '=';
		*out++ = i + 2 < len ? base64_alphabet[v & 63] : '=';
	}
	*out = 0;
}

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
	unsigned acc = 0, bits = 0;
	size_t i = 0, n = 0;

	for (; i < len && in[i] != '='; i++) {
		int v = base64_value((unsigned char)in[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	while (i < len && in[i] == '=')
		i++;
	if (i < len || bits >= 6)
		return -EINVAL;
	*outlen = n;
	return 0;
}

int base64_mime(const char *mime)
{
	return (!strncmp(mime, "image/", 6) && strcmp(mime, "image/svg+xml")) ||
	       !strcmp(mime, "application/pdf");
}
