/* The snapshot state file and its manifest: round trips, and every hostile input we can think
 * of: a file cut at every length, every bit flipped, another version, lying sizes and counts,
 * malformed manifests. Each input sits in a heap buffer of exactly its length, so ASan catches a
 * parser that reads one byte too far. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/crc32c.h"
#include "snapshot/format.h"
#include "snapshot/manifest.h"
#include "testing.h"

static const char manifest_json[] =
    "{\"id\":\"0123456789abcdef0123456789abcdef\",\"vcpus\":2,\"memory_mib\":512,"
    "\"memory_size\":536870912,\"agent\":true,\"host_realtime_ns\":1700000000000000000,"
    "\"disks\":[{\"file\":\"disk-0.img\",\"read_only\":false,\"size\":1048576},"
    "{\"path\":\"/images/data.img\",\"read_only\":true,\"size\":4096,\"mtime_ns\":5}],"
    "\"vsock\":{\"cid\":3},\"kernel\":\"/boot/vmlinuz\",\"cmdline\":\"console=ttyS0\","
    "\"net\":true}";

/* A state file with sections of awkward sizes (0, 1, 7, 8, 9 bytes) around the manifest. */
static void build_sample(struct snap_writer *w)
{
	static const uint8_t bytes[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

	snap_writer_init(w);
	snap_writer_add(w, SNAP_SEC_MANIFEST, 0, manifest_json, strlen(manifest_json));
	snap_writer_add(w, SNAP_SEC_VCPU_REGS, 0, bytes, 0);
	snap_writer_add(w, SNAP_SEC_VCPU_REGS, 1, bytes, 1);
	snap_writer_add(w, SNAP_SEC_VCPU_SREGS, 0, bytes, 7);
	snap_writer_add(w, SNAP_SEC_VCPU_SREGS, 1, bytes, 8);
	snap_writer_add(w, SNAP_SEC_SERIAL, 0, bytes, 9);
}

/* Parses a private copy of exactly len bytes. */
static int parse_copy(const uint8_t *src, size_t len, char *err, size_t errlen)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct snap_reader r;
	int rc;

	memcpy(copy, src, len);
	err[0] = 0;
	rc = snap_parse(copy, len, &r, err, errlen);
	if (rc == 0)
		snap_reader_free(&r);
	free(copy);
	return rc;
}

static void test_crc32c(void)
{
	CHECK_EQ(crc32c(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ(crc32c(0, "", 0), 0);
	/* Continuing is the same as one pass. */
	CHECK_EQ(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

static void test_round_trip(void)
{
	struct snap_writer w;
	struct snap_reader r;
	const struct snap_section *s;
	uint8_t one[1], nine[9];
	char err[256];

	build_sample(&w);
	CHECK_EQ(snap_writer_finish(&w), 0);
	CHECK_EQ(w.len % 8, 0);
	CHECK_EQ(snap_parse(w.buf, w.len, &r, err, sizeof(err)), 0);
	CHECK_EQ(r.nsections, 6);
	s = snap_find(&r, SNAP_SEC_MANIFEST, 0);
	CHECK(s && s->size == strlen(manifest_json) && !memcmp(s->data, manifest_json, s->size));
	CHECK(snap_find(&r, SNAP_SEC_VCPU_REGS, 0) &&
	      snap_find(&r, SNAP_SEC_VCPU_REGS, 0)->size == 0);
	CHECK(snap_find(&r, SNAP_SEC_PIT, 0) == NULL);
	CHECK_EQ(snap_get(&r, SNAP_SEC_VCPU_REGS, 1, one, 1, err, sizeof(err)), 0);
	CHECK_EQ(one[0], 1);
	CHECK_EQ(snap_get(&r, SNAP_SEC_SERIAL, 0, nine, 9, err, sizeof(err)), 0);
	CHECK_EQ(nine[8], 9);
	/* A size that is not what the caller's structure needs, and an absent section. */
	CHECK_EQ(snap_get(&r, SNAP_SEC_SERIAL, 0, nine, 8, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "9 bytes, expected 8") != NULL);
	CHECK_EQ(snap_get(&r, SNAP_SEC_CLOCK, 0, nine, 8, err, sizeof(err)), -ENOENT);
	snap_reader_free(&r);
	snap_writer_free(&w);

	/* No sections at all is a valid (if useless) file. */
	snap_writer_init(&w);
	CHECK_EQ(snap_writer_finish(&w), 0);
	CHECK_EQ(snap_parse(w.buf, w.len, &r, err, sizeof(err)), 0);
	CHECK_EQ(r.nsections, 0);
	snap_reader_free(&r);
	snap_writer_free(&w);
}

static void test_truncations(void)
{
	struct snap_writer w;
	char err[256];
	int all_failed = 1, all_explained = 1;

	build_sample(&w);
	snap_writer_finish(&w);
	for (size_t len = 0; len < w.len; len++) {
		int rc = parse_copy(w.buf, len, err, sizeof(err));

		if (rc != -EBADMSG) {
			fprintf(stderr, "truncated to %zu bytes: %d\n", len, rc);
			all_failed = 0;
		}
		all_explained &= err[0] != 0;
	}
	CHECK(all_failed);
	CHECK(all_explained);
	CHECK_EQ(parse_copy(w.buf, 100, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "truncated") != NULL);
	CHECK_EQ(parse_copy(w.buf, 3, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "not a libsandbox snapshot") != NULL);
	snap_writer_free(&w);
}

static void test_bit_flips(void)
{
	struct snap_writer w;
	char err[256];
	unsigned undetected = 0;

	build_sample(&w);
	snap_writer_finish(&w);
	for (size_t i = 0; i < w.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			w.buf[i] ^= (uint8_t)(1u << bit);
			rc = parse_copy(w.buf, w.len, err, sizeof(err));
			w.buf[i] ^= (uint8_t)(1u << bit);
			/* A flipped version field is reported as another version. */
			if (rc != -EBADMSG && rc != -EPROTONOSUPPORT) {
				fprintf(stderr, "byte %zu bit %d: %d\n", i, bit, rc);
				undetected++;
			}
		}
	}
	CHECK_EQ(undetected, 0);
	/* Trailing bytes after a valid file. */
	{
		uint8_t *longer = calloc(1, w.len + 8);
		memcpy(longer, w.buf, w.len);
		CHECK_EQ(parse_copy(longer, w.len + 8, err, sizeof(err)), -EBADMSG);
		CHECK(strstr(err, "trailing") != NULL);
		free(longer);
	}
	snap_writer_free(&w);
}

static void refresh_header_crc(uint8_t *buf)
{
	struct snap_header h;

	memcpy(&h, buf, sizeof(h));
	h.crc = 0;
	h.crc = crc32c(0, &h, sizeof(h));
	memcpy(buf, &h, sizeof(h));
}

static void test_version_and_lies(void)
{
	struct snap_writer w;
	struct snap_header h;
	struct snap_section_header sh;
	char err[256];

	build_sample(&w);
	snap_writer_finish(&w);

	/* Another version, with a valid header checksum: a clear mismatch, not "corrupt". */
	memcpy(&h, w.buf, sizeof(h));
	h.version = SNAP_VERSION + 1;
	memcpy(w.buf, &h, sizeof(h));
	refresh_header_crc(w.buf);
	CHECK_EQ(parse_copy(w.buf, w.len, err, sizeof(err)), -EPROTONOSUPPORT);
	CHECK(strstr(err, "version 2") && strstr(err, "reads version 1"));
	h.version = SNAP_VERSION;
	memcpy(w.buf, &h, sizeof(h));
	refresh_header_crc(w.buf);
	CHECK_EQ(parse_copy(w.buf, w.len, err, sizeof(err)), 0);

	/* A section count the file cannot hold. */
	h.nsections = 0xffffffffu;
	memcpy(w.buf, &h, sizeof(h));
	refresh_header_crc(w.buf);
	CHECK_EQ(parse_copy(w.buf, w.len, err, sizeof(err)), -EBADMSG);
	/* One section more than there is. */
	h.nsections = 7;
	memcpy(w.buf, &h, sizeof(h));
	refresh_header_crc(w.buf);
	CHECK_EQ(parse_copy(w.buf, w.len, err, sizeof(err)), -EBADMSG);
	/* One fewer: the last one is trailing data. */
	h.nsections = 5;
	memcpy(w.buf, &h, sizeof(h));
	refresh_header_crc(w.buf);
	CHECK_EQ(parse_copy(w.buf, w.len, err, sizeof(err)), -EBADMSG);
	h.nsections = 6;
	memcpy(w.buf, &h, sizeof(h));
	refresh_header_crc(w.buf);

	/* Section sizes that would wrap the padding or run past the end. */
	for (int k = 0; k < 3; k++) {
		static const uint64_t sizes[] = {UINT64_MAX, UINT64_MAX - 6, 1ULL << 40};
		memcpy(&sh, w.buf + sizeof(h), sizeof(sh));
		uint64_t good = sh.size;
		sh.size = sizes[k];
		memcpy(w.buf + sizeof(h), &sh, sizeof(sh));
		CHECK_EQ(parse_copy(w.buf, w.len, err, sizeof(err)), -EBADMSG);
		sh.size = good;
		memcpy(w.buf + sizeof(h), &sh, sizeof(sh));
	}
	CHECK_EQ(parse_copy(w.buf, w.len, err, sizeof(err)), 0);
	snap_writer_free(&w);
}

static void test_manifest(void)
{
	struct snap_manifest m;
	char err[256];
	size_t len = strlen(manifest_json);
	int all_failed = 1;

	CHECK_EQ(snap_manifest_parse(manifest_json, len, &m, err, sizeof(err)), 0);
	CHECK_EQ(m.vcpus, 2);
	CHECK_EQ(m.memory_size, 536870912ULL);
	CHECK_EQ(m.ndisks, 2);
	CHECK(m.disks[0].file && !strcmp(m.disks[0].file, "disk-0.img") && !m.disks[0].path);
	CHECK(m.disks[1].path && !strcmp(m.disks[1].path, "/images/data.img"));
	CHECK_EQ(m.disks[1].read_only, 1);
	CHECK_EQ(m.disks[1].mtime_ns, 5);
	CHECK_EQ(m.vsock_cid, 3);
	CHECK_EQ(m.agent, 1);
	CHECK(m.id && strlen(m.id) == 32);
	CHECK_EQ(m.net, 1);
	snap_manifest_free(&m);

	/* Cut anywhere, it is not a manifest. */
	for (size_t i = 0; i < len; i++) {
		char *copy = malloc(i ? i : 1);
		memcpy(copy, manifest_json, i);
		if (snap_manifest_parse(copy, i, &m, err, sizeof(err)) != -EBADMSG)
			all_failed = 0;
		free(copy);
	}
	CHECK(all_failed);

	static const char *const bad[] = {
	    "[]",
	    "{\"id\":\"x\",\"vcpus\":0,\"memory_mib\":512,\"memory_size\":536870912,\"agent\":true,"
	    "\"host_realtime_ns\":1,\"disks\":[]}",
	    "{\"id\":\"x\",\"vcpus\":1,\"memory_mib\":512,\"memory_size\":4096,\"agent\":true,"
	    "\"host_realtime_ns\":1,\"disks\":[]}",
	    "{\"id\":\"x\",\"vcpus\":1,\"memory_mib\":512,\"memory_size\":536870912,\"agent\":true,"
	    "\"host_realtime_ns\":1,\"disks\":[{\"file\":\"../etc/passwd\",\"read_only\":false,"
	    "\"size\":1}]}",
	    "{\"id\":\"x\",\"vcpus\":1,\"memory_mib\":512,\"memory_size\":536870912,\"agent\":true,"
	    "\"host_realtime_ns\":1,\"disks\":[{\"path\":\"relative.img\",\"read_only\":true,"
	    "\"size\":1}]}",
	    "{\"id\":\"x\",\"vcpus\":1,\"memory_mib\":512,\"memory_size\":536870912,\"agent\":true,"
	    "\"host_realtime_ns\":1,\"disks\":[{\"file\":\"a\",\"path\":\"/b\",\"read_only\":true,"
	    "\"size\":1}]}",
	    "{\"id\":\"x\",\"vcpus\":1,\"memory_mib\":512,\"memory_size\":536870912,\"agent\":true,"
	    "\"host_realtime_ns\":1,\"disks\":[],\"vsock\":{\"cid\":2}}",
	    "{\"id\":\"x\",\"id\":\"y\",\"vcpus\":1,\"memory_mib\":512,\"memory_size\":536870912,"
	    "\"agent\":true,\"host_realtime_ns\":1,\"disks\":[]}",
	    "{\"vcpus\":1,\"memory_mib\":512,\"memory_size\":536870912,\"agent\":true,"
	    "\"host_realtime_ns\":1,\"disks\":[]}",
	    /* net says whether there is a device, nothing more. */
	    "{\"id\":\"x\",\"vcpus\":1,\"memory_mib\":512,\"memory_size\":536870912,"
	    "\"agent\":true,\"host_realtime_ns\":1,\"disks\":[],"
	    "\"net\":{\"policy\":{\"mode\":\"all\"}}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECK_EQ(snap_manifest_parse(bad[i], strlen(bad[i]), &m, err, sizeof(err)),
			 -EBADMSG);
		CHECK(err[0] != 0);
	}
	CHECK(snap_file_name_ok("disk-0.img") && !snap_file_name_ok("..") &&
	      !snap_file_name_ok("a/b") && !snap_file_name_ok(""));
}

int main(void)
{
	test_crc32c();
	test_round_trip();
	test_truncations();
	test_bit_flips();
	test_version_and_lies();
	test_manifest();
	return TEST_SUMMARY();
}
