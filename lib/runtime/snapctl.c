#define _GNU_SOURCE
#include "snapctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "errcode.h"
#include "snapshot.h"

/* Held vCPUs only wait for the I/O they are in; a guest that takes longer is stuck. */
#define SNAPCTL_PAUSE_TIMEOUT_MS 5000

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *snapctl_error(int err, const char *message)
{
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", vmm_errcode(err), "message", message);
}

/* The library's files: two new, empty regular files. */
static int snapctl_files_ok(const int *fds, unsigned nfds)
{
	struct stat st;

	if (nfds != 2)
		return 0;
	for (unsigned i = 0; i < nfds; i++)
		if (fstat(fds[i], &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != 0)
			return 0;
	return 1;
}

json_t *snapctl_snapshot(struct machine *m, const int *fds, unsigned nfds, int *paused)
{
	double t0 = monotonic_s(), t_held;
	json_t *result = NULL;
	char err[1024];
	int rc;

	*paused = 0;
	if (!snapctl_files_ok(fds, nfds))
		return snapctl_error(EINVAL, "snapshot: needs the memory and state files, new and "
					     "empty, passed with the command");
	rc = machine_pause(m, SNAPCTL_PAUSE_TIMEOUT_MS);
	if (rc < 0)
		return snapctl_error(ETIMEDOUT, "the guest did not pause within 5 s");
	t_held = monotonic_s();
	rc = snapshot_write(m, fds[0], fds[1], &result, err, sizeof(err));
	if (rc < 0) {
		machine_resume(m);
		return snapctl_error(-rc, err);
	}
	*paused = 1;
	json_object_set_new(result, "ok", json_true());
	json_object_set_new(result, "pause_s", json_real(t_held - t0));
	json_object_set_new(result, "write_s", json_real(monotonic_s() - t_held));
	return result;
}
