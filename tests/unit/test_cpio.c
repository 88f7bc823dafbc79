/* The newc writer, checked by an independent reader written here from the format description
 * (and by GNU cpio when it is installed), plus its error paths. */
#define _GNU_SOURCE
#include "testing.h"
#include "util/cpio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct entry {
	char name[256];
	unsigned long ino, mode, nlink, size, rmaj, rmin;
	const unsigned char *data;
};

static unsigned long hex8(const unsigned char *p)
{
	char buf[9];

	memcpy(buf, p, 8);
	buf[8] = 0;
	return strtoul(buf, NULL, 16);
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Parses one entry at *off; returns 0, or -1 on a malformed archive (counted as a failure). */
static int read_entry(const unsigned char *buf, size_t len, size_t *off, struct entry *e)
{
	size_t o = *off, namesize, name_end, data_end;

	if (o % 4 || len - o < 110 || memcmp(buf + o, "070701", 6))
		return -1;
	e->ino = hex8(buf + o + 6);
	e->mode = hex8(buf + o + 14);
	e->nlink = hex8(buf + o + 38);
	e->size = hex8(buf + o + 54);
	e->rmaj = hex8(buf + o + 78);
	e->rmin = hex8(buf + o + 86);
	namesize = hex8(buf + o + 94);
	if (hex8(buf + o + 22) || hex8(buf + o + 30) || hex8(buf + o + 102))
		return -1; /* uid, gid, check must be 0 */
	name_end = o + 110 + namesize;
	if (namesize == 0 || namesize > sizeof(e->name) || name_end > len || buf[name_end - 1])
		return -1;
	memcpy(e->name, buf + o + 110, namesize);
	o = (name_end + 3) & ~(size_t)3;
	if (o > len || !all_zero(buf + name_end, o - name_end))
		return -1;
	e->data = buf + o;
	data_end = o + e->size;
	if (data_end > len)
		return -1;
	o = (data_end + 3) & ~(size_t)3;
	if (o > len || !all_zero(buf + data_end, o - data_end))
		return -1;
	*off = o;
	return 0;
}

static unsigned char *slurp(int fd, size_t *len)
{
	struct stat st;
	unsigned char *buf;

	if (fstat(fd, &st) < 0)
		return NULL;
	buf = malloc((size_t)st.st_size + 1);
	if (buf && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return buf;
}

static void check_entry(const unsigned char *buf, size_t len, size_t *off, const char *name,
			unsigned long mode, const void *data, size_t size)
{
	struct entry e;

	CHECK_EQ(read_entry(buf, len, off, &e), 0);
	CHECK(strcmp(e.name, name) == 0);
	CHECK_EQ(e.mode, mode);
	CHECK_EQ(e.size, size);
	if (data && e.size == size)
		CHECK(memcmp(e.data, data, size) == 0);
}

/* A host file of odd length, so its data needs padding. */
static void make_host_file(char *path, unsigned char *content, size_t len)
{
	int fd = mkstemp(path);

	for (size_t i = 0; i < len; i++)
		content[i] = (unsigned char)(i * 7 + 3);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, content, len), (long long)len);
	close(fd);
}

static void test_roundtrip(void)
{
	static const char small[] = "hello, initramfs\n"; /* 17 bytes: padded by 3 */
	unsigned char big[70001];
	char host_path[] = "/tmp/test_cpio.XXXXXX";
	struct cpio_writer w;
	unsigned char *buf;
	size_t len = 0, off = 0;
	struct entry e;
	int fd = memfd_create("cpio", MFD_CLOEXEC);

	make_host_file(host_path, big, sizeof(big));
	CHECK(fd >= 0);
	cpio_writer_init(&w, fd);
	CHECK_EQ(cpio_add_dir(&w, "dev", 0755), 0);
	CHECK_EQ(cpio_add_chardev(&w, "dev/console", 0600, 5, 1), 0);
	CHECK_EQ(cpio_add_file(&w, "init", 0755, small, strlen(small)), 0);
	CHECK_EQ(cpio_add_file(&w, "empty", 0644, NULL, 0), 0);
	CHECK_EQ(cpio_add_dir(&w, "lib", 0755), 0);
	CHECK_EQ(cpio_add_file_from_path(&w, "lib/big.ko", 0644, host_path), 0);
	CHECK_EQ(cpio_finish(&w), 0);

	buf = slurp(fd, &len);
	CHECK(buf != NULL);
	if (!buf)
		return;
	CHECK_EQ(len % 4, 0);
	check_entry(buf, len, &off, "dev", S_IFDIR | 0755, NULL, 0);
	CHECK_EQ(read_entry(buf, len, &off, &e), 0);
	CHECK(strcmp(e.name, "dev/console") == 0);
	CHECK_EQ(e.mode, S_IFCHR | 0600);
	CHECK_EQ(e.rmaj, 5);
	CHECK_EQ(e.rmin, 1);
	CHECK_EQ(e.size, 0);
	check_entry(buf, len, &off, "init", S_IFREG | 0755, small, strlen(small));
	check_entry(buf, len, &off, "empty", S_IFREG | 0644, NULL, 0);
	check_entry(buf, len, &off, "lib", S_IFDIR | 0755, NULL, 0);
	check_entry(buf, len, &off, "lib/big.ko", S_IFREG | 0644, big, sizeof(big));
	CHECK_EQ(read_entry(buf, len, &off, &e), 0);
	CHECK(strcmp(e.name, "TRAILER!!!") == 0);
	CHECK_EQ(e.size, 0);
	CHECK_EQ(off, len); /* nothing after the trailer */
	free(buf);
	close(fd);
	unlink(host_path);
}

/* Every inode number differs: the kernel would hard-link entries that share one. */
static void test_unique_inodes(void)
{
	struct cpio_writer w;
	unsigned char *buf;
	size_t len = 0, off = 0;
	struct entry a, b;
	int fd = memfd_create("cpio", MFD_CLOEXEC);

	cpio_writer_init(&w, fd);
	cpio_add_file(&w, "a", 0644, "x", 1);
	cpio_add_file(&w, "b", 0644, "y", 1);
	CHECK_EQ(cpio_finish(&w), 0);
	buf = slurp(fd, &len);
	if (buf && read_entry(buf, len, &off, &a) == 0 && read_entry(buf, len, &off, &b) == 0)
		CHECK(a.ino != b.ino && a.ino != 0);
	else
		CHECK(!"archive did not parse");
	free(buf);
	close(fd);
}

static void test_errors(void)
{
	struct cpio_writer w;
	int fd = memfd_create("cpio", MFD_CLOEXEC);
	int rofd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	cpio_writer_init(&w, fd);
	CHECK_EQ(cpio_add_dir(&w, "", 0755), -EINVAL);
	cpio_writer_init(&w, fd);
	CHECK_EQ(cpio_add_file(&w, "f", 0100644, "x", 1), -EINVAL); /* type bits are not ours */
	cpio_writer_init(&w, fd);
	CHECK_EQ(cpio_add_file_from_path(&w, "f", 0644, "/tmp"), -EINVAL);
	cpio_writer_init(&w, fd);
	CHECK_EQ(cpio_add_file_from_path(&w, "f", 0644, "/nonexistent/x.ko"), -ENOENT);
	/* Sticky: a later good entry does not hide the lost one. */
	CHECK_EQ(cpio_add_dir(&w, "d", 0755), -ENOENT);
	CHECK_EQ(cpio_finish(&w), -ENOENT);

	cpio_writer_init(&w, rofd);
	CHECK_EQ(cpio_add_dir(&w, "d", 0755), -EBADF);
	CHECK_EQ(cpio_finish(&w), -EBADF);
	close(rofd);
	close(fd);
}

/* GNU cpio agrees with our reader on the listing, when it is installed. */
static void test_gnu_cpio(void)
{
	char path[] = "/tmp/test_cpio_gnu.XXXXXX", cmd[256], out[4096];
	struct cpio_writer w;
	size_t n;
	FILE *p;
	int fd;

	if (access("/usr/bin/cpio", X_OK) != 0) {
		printf("GNU cpio not installed; skipping its check\n");
		return;
	}
	fd = mkstemp(path);
	CHECK(fd >= 0);
	cpio_writer_init(&w, fd);
	cpio_add_dir(&w, "dev", 0755);
	cpio_add_chardev(&w, "dev/console", 0600, 5, 1);
	cpio_add_file(&w, "init", 0755, "abcde", 5);
	CHECK_EQ(cpio_finish(&w), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "cpio -itv --quiet < %s 2>&1", path);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	if (!p)
		return;
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	CHECK_EQ(pclose(p), 0);
	CHECK(strstr(out, "drwxr-xr-x") && strstr(out, " dev\n"));
	CHECK(strstr(out, "crw-------") && strstr(out, "5,   1") && strstr(out, " dev/console\n"));
	CHECK(strstr(out, "-rwxr-xr-x") && strstr(out, " 5 ") && strstr(out, " init\n"));
	unlink(path);
}

int main(void)
{
	test_roundtrip();
	test_unique_inodes();
	test_errors();
	test_gnu_cpio();
	return TEST_SUMMARY();
}
