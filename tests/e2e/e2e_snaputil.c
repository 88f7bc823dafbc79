/* Helpers of the end-to-end programs that restore snapshots (see e2e_snaputil.h). */
#define _GNU_SOURCE
#include "e2e_snaputil.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Processes named sandbox-vmm: what is left running. */
int e2e_vmm_count(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char path[300], comm[64] = "";
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "re");
		if (f && fgets(comm, sizeof(comm), f) && !strncmp(comm, "sandbox-vmm", 11))
			n++;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

/* Extents of a file and how many of them are shared with another file (reflinks). */
void e2e_extents(const char *path, unsigned *total, unsigned *shared)
{
	struct fiemap *fm = calloc(1, sizeof(*fm) + 512 * sizeof(struct fiemap_extent));
	uint64_t start = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), last = 0;

	*total = *shared = 0;
	while (fd >= 0 && !last) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = ~0ULL - start;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = 512;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0 || fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *x = &fm->fm_extents[i];
			(*total)++;
			*shared += !!(x->fe_flags & FIEMAP_EXTENT_SHARED);
			last = !!(x->fe_flags & FIEMAP_EXTENT_LAST);
			start = x->fe_logical + x->fe_length;
		}
	}
	if (fd >= 0)
		close(fd);
	free(fm);
}

/* The trailing expression's text/plain of a Python cell, malloc'd ("" on failure). */
char *e2e_py(sbx_sandbox *sb, const char *code)
{
	sbx_code_opts *o = sbx_code_opts_new();
	sbx_execution *e = NULL;
	char *text = NULL;
	int rc;

	sbx_code_opts_set_timeout_ms(o, E2E_CELL_TIMEOUT_MS);
	rc = sbx_run_code(sb, code, o, &e);
	if (rc != SBX_OK)
		fprintf(stderr, "run_code %s: %s: %s\n", code, sbx_err_name(rc),
			sbx_sandbox_last_error(sb));
	else if (sbx_execution_error_name(e))
		fprintf(stderr, "run_code %s: %s: %s\n", code, sbx_execution_error_name(e),
			sbx_execution_error_value(e));
	for (size_t i = 0; e && i < sbx_execution_result_count(e) && !text; i++)
		if (sbx_result_is_main(sbx_execution_result(e, i)))
			text =
			    strdup(sbx_result_data(sbx_execution_result(e, i), "text/plain", NULL));
	sbx_execution_free(e);
	sbx_code_opts_free(o);
	return text ? text : strdup("");
}

int e2e_py_is(sbx_sandbox *sb, const char *code, const char *want)
{
	char *got = e2e_py(sb, code);
	int same = !strcmp(got, want);

	if (!same)
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", code, got, want);
	free(got);
	return same;
}

static double ts_s(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/* The guest's wall clock must fall between the host's just before and just after it was read,
 * give or take a second. */
int e2e_check_clock(sbx_sandbox *sb, const char *when)
{
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	struct timespec before, after;
	double guest = 0;

	sbx_exec_opts_set_shell(o, "date +%s.%N");
	clock_gettime(CLOCK_REALTIME, &before);
	if (sbx_exec(sb, o, &r) == SBX_OK)
		guest = atof(sbx_exec_result_stdout(r, NULL));
	clock_gettime(CLOCK_REALTIME, &after);
	sbx_exec_result_free(r);
	sbx_exec_opts_free(o);
	printf("guest clock after %s: %.3f s after the host's before the exec, %.3f s before "
	       "its after (the exec took %.3f s)\n",
	       when, guest - ts_s(&before), ts_s(&after) - guest, ts_s(&after) - ts_s(&before));
	return guest > ts_s(&before) - 1.0 && guest < ts_s(&after) + 1.0;
}
