#define _GNU_SOURCE
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the format is written natively");

#define SNAP_ALIGN 8
#define PAD8(n) (((n) + (SNAP_ALIGN - 1)) & ~(uint64_t)(SNAP_ALIGN - 1))

static uint32_t header_crc(const struct snap_header *h)
{
	struct snap_header copy = *h;

	copy.crc = 0;
	return crc32c(0, &copy, sizeof(copy));
}

static uint32_t section_crc(const struct snap_section_header *sh, const void *data)
{
	struct snap_section_header copy = *sh;

	copy.crc = 0;
	return crc32c(crc32c(0, &copy, sizeof(copy)), data, sh->size);
}

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	/* Room for the header, filled in by finish. */
	w->len = sizeof(struct snap_header);
	w->cap = 64 * 1024;
	w->buf = calloc(1, w->cap);
	if (!w->buf)
		w->err = -ENOMEM;
}

static int snap_writer_reserve(struct snap_writer *w, size_t more)
{
	size_t cap = w->cap;
	uint8_t *bigger;

	if (w->len + more > SNAP_STATE_MAX)
		return -EFBIG;
	while (cap < w->len + more)
		cap *= 2;
	if (cap == w->cap)
		return 0;
	bigger = realloc(w->buf, cap);
	if (!bigger)
		return -ENOMEM;
	memset(bigger + w->cap, 0, cap - w->cap);
	w->buf = bigger;
	w->cap = cap;
	return 0;
}

void snap_writer_add(struct snap_writer *w, uint32_t type, uint32_t instance, const void *data,
		     size_t len)
{
	struct snap_section_header sh = {.type = type, .instance = instance, .size = len};
	int rc;

	if (w->err)
		return;
	rc = snap_writer_reserve(w, sizeof(sh) + PAD8(len));
	if (rc < 0) {
		w->err = rc;
		return;
	}
	sh.crc = section_crc(&sh, data);
	memcpy(w->buf + w->len, &sh, sizeof(sh));
	if (len)
		memcpy(w->buf + w->len + sizeof(sh), data, len);
	/* The padding is already zero: the buffer is zeroed as it grows. */
	w->len += sizeof(sh) + PAD8(len);
	w->nsections++;
}

int snap_writer_finish(struct snap_writer *w)
{
	struct snap_header h = {.version = SNAP_VERSION, .header_size = sizeof(h)};

	if (w->err)
		return w->err;
	memcpy(h.magic, SNAP_MAGIC, sizeof(h.magic));
	h.file_size = w->len;
	h.nsections = w->nsections;
	h.crc = header_crc(&h);
	memcpy(w->buf, &h, sizeof(h));
	return 0;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static int snap_bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int snap_bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* Magic, then version (another version may lay out everything else differently), then the rest
 * of the header. */
static int snap_check_header(const uint8_t *buf, size_t len, struct snap_header *h, char *err,
			     size_t errlen)
{
	if (len < sizeof(h->magic) || memcmp(buf, SNAP_MAGIC, sizeof(h->magic)) != 0)
		return snap_bad(err, errlen, "not a libsandbox snapshot (no magic)");
	if (len < sizeof(*h))
		return snap_bad(err, errlen, "truncated: %zu bytes, the header alone is %zu", len,
				sizeof(*h));
	memcpy(h, buf, sizeof(*h));
	if (h->version != SNAP_VERSION) {
		snprintf(err, errlen, "format version %u; this libsandbox reads version %u",
			 h->version, SNAP_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (h->crc != header_crc(h))
		return snap_bad(err, errlen, "header checksum mismatch");
	if (h->header_size != sizeof(*h) || h->flags != 0)
		return snap_bad(err, errlen, "header size %u or flags %#x not understood",
				h->header_size, h->flags);
	if (h->file_size != len)
		return snap_bad(err, errlen, "%s: %zu bytes, the header says %llu",
				len < h->file_size ? "truncated" : "trailing data", len,
				(unsigned long long)h->file_size);
	/* Each section takes at least its header: a count the file cannot hold is corrupt. */
	if (h->nsections > (len - sizeof(*h)) / sizeof(struct snap_section_header))
		return snap_bad(err, errlen, "section count %u does not fit the file",
				h->nsections);
	return 0;
}

/* The padding is outside the CRC, so it is checked to be what the writer put there. */
static int padding_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int snap_parse(const void *data, size_t len, struct snap_reader *r, char *err, size_t errlen)
{
	const uint8_t *buf = data;
	struct snap_header h;
	size_t off;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = snap_check_header(buf, len, &h, err, errlen);
	if (rc < 0)
		return rc;
	r->sections = calloc(h.nsections ? h.nsections : 1, sizeof(*r->sections));
	if (!r->sections)
		return -ENOMEM;
	off = sizeof(h);
	for (uint32_t i = 0; i < h.nsections; i++) {
		struct snap_section_header sh;

		if (len - off < sizeof(sh)) {
			rc = snap_bad(err, errlen, "section %u: header past the end", i);
			goto fail;
		}
		memcpy(&sh, buf + off, sizeof(sh));
		off += sizeof(sh);
		/* PAD8 of a size near 2^64 would wrap: compare before padding. */
		if (sh.size > len - off || PAD8(sh.size) > len - off) {
			rc = snap_bad(err, errlen, "section %u (%s): %llu bytes past the end", i,
				      snap_section_name(sh.type), (unsigned long long)sh.size);
			goto fail;
		}
		if (sh.reserved != 0 || sh.crc != section_crc(&sh, buf + off) ||
		    !padding_zero(buf + off + sh.size, PAD8(sh.size) - sh.size)) {
			rc = snap_bad(err, errlen, "section %u (%s, %u): checksum mismatch", i,
				      snap_section_name(sh.type), sh.instance);
			goto fail;
		}
		r->sections[i] = (struct snap_section){sh.type, sh.instance, buf + off, sh.size};
		off += PAD8(sh.size);
	}
	if (off != len) {
		rc = snap_bad(err, errlen, "%zu bytes after the last section", len - off);
		goto fail;
	}
	r->nsections = h.nsections;
	return 0;
fail:
	free(r->sections);
	r->sections = NULL;
	return rc;
}

int snap_read_file(const char *path, struct snap_reader *r, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, rc;

	memset(r, 0, sizeof(*r));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SNAP_STATE_MAX) {
		rc = -EFBIG;
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path,
			 SNAP_STATE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	rc = snap_parse(buf, got, r, err, errlen);
	if (rc == 0) {
		r->owned = buf;
		buf = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

void snap_reader_free(struct snap_reader *r)
{
	free(r->sections);
	free(r->owned);
	memset(r, 0, sizeof(*r));
}

const struct snap_section *snap_find(const struct snap_reader *r, uint32_t type, uint32_t instance)
{
	for (uint32_t i = 0; i < r->nsections; i++)
		if (r->sections[i].type == type && r->sections[i].instance == instance)
			return &r->sections[i];
	return NULL;
}

int snap_get(const struct snap_reader *r, uint32_t type, uint32_t instance, void *out, size_t size,
	     char *err, size_t errlen)
{
	const struct snap_section *s = snap_find(r, type, instance);

	if (!s) {
		snprintf(err, errlen, "no %s section for %u", snap_section_name(type), instance);
		return -ENOENT;
	}
	if (s->size != size)
		return snap_bad(err, errlen, "%s section for %u: %llu bytes, expected %zu",
				snap_section_name(type), instance, (unsigned long long)s->size,
				size);
	memcpy(out, s->data, size);
	return 0;
}

const char *snap_section_name(uint32_t type)
{
	switch (type) {
	case SNAP_SEC_MANIFEST:
		return "manifest";
	case SNAP_SEC_VCPU_CPUID:
		return "vCPU CPUID";
	case SNAP_SEC_VCPU_MP_STATE:
		return "vCPU MP state";
	case SNAP_SEC_VCPU_REGS:
		return "vCPU registers";
	case SNAP_SEC_VCPU_SREGS:
		return "vCPU special registers";
	case SNAP_SEC_VCPU_XSAVE:
		return "vCPU XSAVE";
	case SNAP_SEC_VCPU_XCRS:
		return "vCPU XCRs";
	case SNAP_SEC_VCPU_DEBUGREGS:
		return "vCPU debug registers";
	case SNAP_SEC_VCPU_LAPIC:
		return "vCPU LAPIC";
	case SNAP_SEC_VCPU_MSRS:
		return "vCPU MSRs";
	case SNAP_SEC_VCPU_EVENTS:
		return "vCPU events";
	case SNAP_SEC_VCPU_TSC_KHZ:
		return "vCPU TSC rate";
	case SNAP_SEC_IRQCHIP:
		return "irqchip";
	case SNAP_SEC_PIT:
		return "PIT";
	case SNAP_SEC_CLOCK:
		return "clock";
	case SNAP_SEC_VIRTIO:
		return "virtio device";
	case SNAP_SEC_SERIAL:
		return "serial port";
	default:
		return "unknown";
	}
}
