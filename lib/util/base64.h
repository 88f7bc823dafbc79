/* Standard base64 (RFC 4648 alphabet, '=' padding). Shared by the library (kernel command line,
 * rich results in JSON), the guest init (sbx.cmd) and the agent (images from kernels). */
#pragma once
#include <stddef.h>

/* Characters base64_encode writes for len bytes, without the NUL. */
#define BASE64_ENCODED_LEN(len) (((len) + 2) / 3 * 4)

/* Writes BASE64_ENCODED_LEN(len) characters and a NUL to out. */
void base64_encode(const unsigned char *in, size_t len, char *out);
/* Decodes len characters into out (room for len * 3 / 4 bytes; out may equal in). Padding is
 * optional; any other character outside the alphabet, data after padding or a dangling 6-bit
 * group is -EINVAL, so mangled input is refused rather than half-decoded. 0 with *outlen set. */
int base64_decode(const char *in, size_t len, unsigned char *out, size_t *outlen);
/* Whether a rich result's representation of this MIME type travels in JSON as base64 (images
 * but SVG, PDF) rather than as text: one rule for the kernels' events and our JSON output. */
int base64_mime(const char *mime);
