/* A tiny AML byte-code writer (ACPI 6.x, chapters 19 and 20) for the DSDT, plus the resource
 * descriptors (chapter 6.4) that _CRS buffers hold.
 *
 * Errors are sticky: the first failure (-ENOMEM, -EINVAL for a malformed name, id or string,
 * -E2BIG for a package too long to encode) is kept in `err`, later calls do nothing, and the
 * caller checks once at the end. Objects with a PkgLength are written as a begin/end pair: the
 * begin call writes the opcode and returns a mark, the end call inserts the PkgLength in front
 * of everything written since, once the size is known. Pairs nest like the ASL they mirror. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int err;
};

/* Largest value a 4-byte PkgLength can carry (28 bits). */
#define AML_PKGLEN_MAX 0x0FFFFFFFu

void aml_init(struct aml *a);
/* Releases the buffer; safe on a zeroed or already freed writer. */
void aml_free(struct aml *a);

/* Raw bytes and little-endian integers of `n` (1..8) bytes: table headers and fields. */
void aml_append(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);
void aml_le(struct aml *a, uint64_t v, unsigned n);

/* Encodes `value` (which counts the PkgLength bytes themselves) into out; returns the number of
 * bytes used (1 to 4), or -E2BIG above AML_PKGLEN_MAX. */
int aml_pkglen_encode(uint32_t value, uint8_t out[4]);

/* Closes any begin call below: inserts the PkgLength of everything written since `mark`. */
void aml_pkg_end(struct aml *a, size_t mark);

/* NameString: "\\_SB_.COM1", "_HID", "^FOO"; segments of 1 to 4 characters are padded with '_'. */
void aml_name_string(struct aml *a, const char *path);
/* Integer constant with the shortest encoding: ZeroOp, OneOp, Byte/Word/DWord/QWord prefix. */
void aml_int(struct aml *a, uint64_t v);
/* String constant of ASCII characters 0x01..0x7F. */
void aml_string(struct aml *a, const char *s);
/* EISA compressed id ("PNP0501": three letters, four hex digits) as a DWord constant. */
void aml_eisaid(struct aml *a, const char *id);

/* Name(path, <object>): writes NameOp and the name; the caller writes the object next. */
void aml_name(struct aml *a, const char *path);
/* Scope(path) { ... }, Device(name) { ... }, Package(n) { ... }: each returns the mark for
 * aml_pkg_end. A package's n elements follow as integers, strings or nested packages. */
size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *name);
size_t aml_package_begin(struct aml *a, uint8_t nelems);

/* ResourceTemplate() { ... }: a Buffer of resource descriptors. The end call writes the End tag
 * (checksum 0, meaning "not checked") and the buffer size, then closes the buffer. */
size_t aml_restemplate_begin(struct aml *a);
void aml_restemplate_end(struct aml *a, size_t mark);

#define AML_RES_READWRITE 1
#define AML_RES_READONLY 0
void aml_res_memory32_fixed(struct aml *a, int rw, uint32_t base, uint32_t size);

/* Extended Interrupt descriptor flags (ACPI 6.4.3.6), combined with |. */
#define AML_IRQ_CONSUMER 0x01
#define AML_IRQ_EDGE 0x02
#define AML_IRQ_ACTIVE_LOW 0x04
#define AML_IRQ_SHARED 0x08
#define AML_IRQ_WAKE 0x10
/* One interrupt (a GSI on x86) with the flags above; level, active-high, exclusive when 0. */
void aml_res_ext_irq(struct aml *a, uint8_t flags, uint32_t gsi);
/* IO port descriptor with 16-bit decoding: ports [min..max] as bases, `len` ports each. */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
