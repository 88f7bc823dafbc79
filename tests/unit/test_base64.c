/* base64 (kernel command line, kernels' images) and lossy JSON strings (program output). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"
#include "util/base64.h"
#include "util/json_lossy.h"

static int decodes_to(const char *in, const char *want, size_t want_len)
{
	unsigned char out[64];
	size_t n = 0;

	return base64_decode(in, strlen(in), out, &n) == 0 && n == want_len &&
	       !memcmp(out, want, want_len);
}

static int refused(const char *in)
{
	unsigned char out[64];
	size_t n = 0;

	return base64_decode(in, strlen(in), out, &n) == -EINVAL;
}

int main(void)
{
	unsigned char bytes[256], back[256];
	char enc[BASE64_ENCODED_LEN(256) + 1];
	size_t n;
	json_t *j;

	/* RFC 4648's vectors, padded and not. */
	base64_encode((const unsigned char *)"foobar", 6, enc);
	CHECK(!strcmp(enc, "Zm9vYmFy"));
	base64_encode((const unsigned char *)"fo", 2, enc);
	CHECK(!strcmp(enc, "Zm8="));
	base64_encode((const unsigned char *)"", 0, enc);
	CHECK(!strcmp(enc, ""));
	CHECK(decodes_to("Zm9vYg==", "foob", 4));
	CHECK(decodes_to("Zm9vYg", "foob", 4));
	CHECK(decodes_to("", "", 0));

	/* Every byte value, every length, round trip. */
	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= 256; len += 1) {
		base64_encode(bytes, len, enc);
		CHECK_EQ(strlen(enc), BASE64_ENCODED_LEN(len));
		CHECK(base64_decode(enc, strlen(enc), back, &n) == 0 && n == len &&
		      !memcmp(back, bytes, len));
	}

	/* Garbage is refused, not half-decoded. */
	CHECK(refused("Zm9v YmFy"));
	CHECK(refused("Zm9v\nYmFy"));
	CHECK(refused("Zg==Zg=="));
	CHECK(refused("Z"));
	CHECK(refused("Zm9vY"));
	CHECK(refused("Zm9v-_"));

	CHECK(base64_mime("image/png") && base64_mime("image/jpeg") && base64_mime("application/pdf"));
	CHECK(!base64_mime("image/svg+xml") && !base64_mime("text/html") &&
	      !base64_mime("application/json"));

	/* Lossy strings: valid UTF-8 kept, bad bytes (also a sequence cut by the length) replaced. */
	j = json_stringn_lossy("h\xc3\xa9llo", 6);
	CHECK(j && !strcmp(json_string_value(j), "h\xc3\xa9llo"));
	json_decref(j);
	j = json_stringn_lossy("a\xff" "b", 3);
	CHECK(j && !strcmp(json_string_value(j), "a\xef\xbf\xbd" "b"));
	json_decref(j);
	j = json_stringn_lossy("x\xe2\x9c", 3);
	CHECK(j && !strcmp(json_string_value(j), "x\xef\xbf\xbd\xef\xbf\xbd"));
	json_decref(j);
	j = json_stringn_lossy("a\0b", 3);
	CHECK(j && json_string_length(j) == 3);
	json_decref(j);
	j = json_stringn_lossy("\xed\xa0\x80", 3); /* a surrogate */
	CHECK(j && json_string_length(j) == 9);
	json_decref(j);
	return TEST_SUMMARY();
}
