/* AML encodings follow ACPI 6.5 section 20.2 (grammar) and 6.4 (resource descriptors). */
#include "aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_QWORD_PREFIX 0x0E
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_DUAL_NAME_PREFIX 0x2E
#define AML_MULTI_NAME_PREFIX 0x2F
#define AML_EXT_OP_PREFIX 0x5B
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_PREFIX '^'
#define AML_NULL_NAME 0x00

/* Resource descriptor tags: small items carry their length in the tag byte. */
#define RES_IO_TAG 0x47	     /* small item 0x08, 7 bytes */
#define RES_END_TAG 0x79     /* small item 0x0F, 1 byte */
#define RES_MEM32_FIXED 0x86 /* large item, 9 bytes */
#define RES_EXT_IRQ 0x89     /* large item, 6 bytes with one interrupt */

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

/* Keeps the first error: it is the one that explains the rest. */
static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static int aml_reserve(struct aml *a, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (a->err)
		return a->err;
	if (n <= a->cap - a->len)
		return 0;
	if (n > SIZE_MAX / 2 - a->len) {
		aml_fail(a, -ENOMEM);
		return a->err;
	}
	cap = a->cap ? a->cap : 256;
	while (cap - a->len < n)
		cap *= 2;
	p = realloc(a->buf, cap);
	if (!p) {
		aml_fail(a, -ENOMEM);
		return a->err;
	}
	a->buf = p;
	a->cap = cap;
	return 0;
}

void aml_append(struct aml *a, const void *p, size_t n)
{
	if (n == 0 || aml_reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_append(a, &b, 1);
}

void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];

	if (n > sizeof(b)) {
		aml_fail(a, -EINVAL);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_append(a, b, n);
}

static void aml_insert(struct aml *a, size_t pos, const uint8_t *p, size_t n)
{
	if (aml_reserve(a, n))
		return;
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, p, n);
	a->len += n;
}

/* Marks come from this writer, but a mismatched pair must not move memory out of bounds. */
static int aml_mark_ok(struct aml *a, size_t mark)
{
	if (a->err)
		return 0;
	if (mark > a->len) {
		aml_fail(a, -EINVAL);
		return 0;
	}
	return 1;
}

/* Largest value a PkgLength of 1, 2, 3, 4 bytes holds: 6 bits, then 4 + 8 per extra byte. */
static const uint32_t pkglen_limit[4] = {0x3F, 0xFFF, 0xFFFFF, AML_PKGLEN_MAX};

int aml_pkglen_encode(uint32_t value, uint8_t out[4])
{
	int n = 1;

	if (value > AML_PKGLEN_MAX)
		return -E2BIG;
	while (value > pkglen_limit[n - 1])
		n++;
	if (n == 1) {
		out[0] = (uint8_t)value;
		return 1;
	}
	/* Lead byte: count of following bytes in bits 7-6, the low nibble in bits 3-0. */
	out[0] = (uint8_t)(((n - 1) << 6) | (value & 0x0F));
	for (int i = 1; i < n; i++)
		out[i] = (uint8_t)(value >> (4 + 8 * (i - 1)));
	return n;
}

void aml_pkg_end(struct aml *a, size_t mark)
{
	uint8_t enc[4];
	size_t body;
	int n = 1;

	if (!aml_mark_ok(a, mark))
		return;
	body = a->len - mark;
	if (body > AML_PKGLEN_MAX - 4) {
		aml_fail(a, -E2BIG);
		return;
	}
	/* The PkgLength counts its own bytes, so its size depends on itself. */
	while (body + n > pkglen_limit[n - 1])
		n++;
	aml_pkglen_encode((uint32_t)(body + n), enc);
	aml_insert(a, mark, enc, (size_t)n);
}

static int aml_is_lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static int aml_is_name_char(char c)
{
	return aml_is_lead_char(c) || (c >= '0' && c <= '9');
}

static void aml_name_seg(struct aml *a, const char *s, size_t n)
{
	uint8_t seg[4] = {'_', '_', '_', '_'};

	if (n == 0 || n > 4 || !aml_is_lead_char(s[0])) {
		aml_fail(a, -EINVAL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!aml_is_name_char(s[i])) {
			aml_fail(a, -EINVAL);
			return;
		}
		seg[i] = (uint8_t)s[i];
	}
	aml_append(a, seg, sizeof(seg));
}

void aml_name_string(struct aml *a, const char *path)
{
	const char *p = path;
	size_t nseg = 1;

	if (*p == AML_ROOT_CHAR) {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == AML_PARENT_PREFIX) {
			aml_byte(a, AML_PARENT_PREFIX);
			p++;
		}
	}
	if (*p == '\0') {
		aml_byte(a, AML_NULL_NAME);
		return;
	}
	for (const char *q = p; *q; q++)
		nseg += *q == '.';
	if (nseg > 255) {
		aml_fail(a, -EINVAL);
		return;
	}
	if (nseg == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nseg > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nseg);
	}
	for (;;) {
		size_t n = strcspn(p, ".");

		aml_name_seg(a, p, n);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
}

/* Shortest encoding of an integer constant; returns its size (1 to 9 bytes). */
static size_t aml_int_encode(uint64_t v, uint8_t out[9])
{
	unsigned n;

	if (v <= 1) {
		out[0] = v ? AML_ONE_OP : AML_ZERO_OP;
		return 1;
	}
	if (v <= 0xFF) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xFFFF) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xFFFFFFFF) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (unsigned i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + n;
}

void aml_int(struct aml *a, uint64_t v)
{
	uint8_t enc[9];
	size_t n = aml_int_encode(v, enc);

	aml_append(a, enc, n);
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7F) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_append(a, s, strlen(s) + 1);
}

static int aml_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	int l[3], h[4];

	if (strlen(id) != 7)
		goto bad;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			goto bad;
		l[i] = id[i] - '@'; /* 5-bit letters, 'A' is 1 */
	}
	for (int i = 0; i < 4; i++) {
		h[i] = aml_hex_digit(id[3 + i]);
		if (h[i] < 0)
			goto bad;
	}
	/* Stored in byte order: letters packed big-endian into two bytes, then the product id. */
	aml_byte(a, AML_DWORD_PREFIX);
	aml_byte(a, (uint8_t)((l[0] << 2) | (l[1] >> 3)));
	aml_byte(a, (uint8_t)(((l[1] & 7) << 5) | l[2]));
	aml_byte(a, (uint8_t)((h[0] << 4) | h[1]));
	aml_byte(a, (uint8_t)((h[2] << 4) | h[3]));
	return;
bad:
	aml_fail(a, -EINVAL);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_name_string(a, path);
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	size_t mark;

	aml_byte(a, AML_SCOPE_OP);
	mark = a->len;
	aml_name_string(a, path);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	mark = a->len;
	aml_name_string(a, name);
	return mark;
}

size_t aml_package_begin(struct aml *a, uint8_t nelems)
{
	size_t mark;

	aml_byte(a, AML_PACKAGE_OP);
	mark = a->len;
	aml_byte(a, nelems);
	return mark;
}

size_t aml_restemplate_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return a->len;
}

void aml_restemplate_end(struct aml *a, size_t mark)
{
	uint8_t size[9];
	size_t n;

	aml_byte(a, RES_END_TAG);
	aml_byte(a, 0);
	if (!aml_mark_ok(a, mark))
		return;
	/* BufferSize precedes the bytes it counts, so it goes in once they are all written. */
	n = aml_int_encode(a->len - mark, size);
	aml_insert(a, mark, size, n);
	aml_pkg_end(a, mark);
}

void aml_res_memory32_fixed(struct aml *a, int rw, uint32_t base, uint32_t size)
{
	aml_byte(a, RES_MEM32_FIXED);
	aml_le(a, 9, 2);
	aml_byte(a, rw ? 1 : 0);
	aml_le(a, base, 4);
	aml_le(a, size, 4);
}

void aml_res_ext_irq(struct aml *a, uint8_t flags, uint32_t gsi)
{
	aml_byte(a, RES_EXT_IRQ);
	aml_le(a, 6, 2);
	aml_byte(a, flags);
	aml_byte(a, 1); /* interrupt table length */
	aml_le(a, gsi, 4);
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(a, RES_IO_TAG);
	aml_byte(a, 1); /* decodes 16 address bits */
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml_byte(a, align);
	aml_byte(a, len);
}
