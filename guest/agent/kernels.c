#define _GNU_SOURCE
#include "kernels.h"
#include "files.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct language languages[] = {
    {"python", {"py", "python3"}, {"python3", "-u", "@python_kernel.py"}, "python3"},
    /* The JS kernel uses node's own parser and REPL rewriting (top-level await). */
    {"javascript", {"js", "node"}, {"node", "--expose-internals", "@js_kernel.js"}, "nodejs"},
    {"typescript", {"ts"}, {"node", "--expose-internals", "@js_kernel.js", "--typescript"},
     "nodejs and typescript"},
    {"bash", {"sh", "shell"}, {"bash", "--norc", "--noprofile", "@bash_kernel.sh"}, "bash"},
    {"go", {"golang"}, {"bash", "@go_kernel.sh"}, "golang"},
    /* Source-file launch compiles the kernel at start; C1 only and the serial collector start a
     * small JVM fastest. */
    {"java", {NULL}, {"java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "@JavaKernel.java"}, "a JDK"},
};
#define NLANGUAGES (sizeof(languages) / sizeof(languages[0]))
_Static_assert(NLANGUAGES <= LANGUAGES_MAX, "LANGUAGES_MAX too small");

const struct language *language_find(const char *name)
{
	for (size_t i = 0; i < NLANGUAGES; i++) {
		if (!strcmp(name, languages[i].name))
			return &languages[i];
		for (size_t a = 0; a < 3 && languages[i].aliases[a]; a++)
			if (!strcmp(name, languages[i].aliases[a]))
				return &languages[i];
	}
	return NULL;
}

void language_names(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NLANGUAGES && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 languages[i].name);
}

unsigned language_index(const struct language *l)
{
	return (unsigned)(l - languages);
}

int language_argv(const struct language *l, char *store, size_t store_len,
		  char *argv[LANGUAGE_ARGV_MAX + 1])
{
	size_t used = 0;
	int i;

	for (i = 0; i < LANGUAGE_ARGV_MAX && l->argv[i]; i++) {
		const char *a = l->argv[i];
		int n = a[0] == '@' ? snprintf(store + used, store_len - used, "%s/%s", KERNELS_DIR, a + 1)
				    : snprintf(store + used, store_len - used, "%s", a);

		if (n < 0 || (size_t)n >= store_len - used)
			return -ENAMETOOLONG;
		argv[i] = store + used;
		used += (size_t)n + 1;
	}
	argv[i] = NULL;
	return 0;
}

/* Written to a temporary name and renamed, so a kernel never starts from a half-written file. */
static int kernel_file_write(const struct embedded_file *f)
{
	char path[256], tmp[272];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", KERNELS_DIR, f->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, f->data, f->len);
	if (rc < 0) {
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(fd);
	return rename(tmp, path) < 0 ? -errno : 0;
}

int kernels_install(void)
{
	int rc = fs_mkdirs(KERNELS_DIR, 0755);

	for (unsigned i = 0; rc == 0 && i < kernel_files_count; i++)
		rc = kernel_file_write(&kernel_files[i]);
	return rc;
}
