/* End-to-end: exec and files through the guest agent, on one guest booted once.
 * Usage: e2e_agent (paths from the environment, as e2e_boot). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e_common.h"
#include "testing.h"

#define BOOT_TIMEOUT_MS (240 * 1000)
#define BIG_OUTPUT 10000000
#define BIG_FILE (100u << 20)

static sbx_sandbox *sb;
static struct e2e_env env;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs a shell command; returns the result (NULL on an API failure, which is CHECKed). */
static sbx_exec_result *run(const char *cmd, unsigned timeout_ms, const void *in, size_t in_len)
{
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	int rc;

	sbx_exec_opts_set_shell(o, cmd);
	if (timeout_ms)
		sbx_exec_opts_set_timeout_ms(o, timeout_ms);
	if (in)
		sbx_exec_opts_set_stdin(o, in, in_len);
	rc = sbx_exec(sb, o, &r);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "exec %s: %s\n", cmd, sbx_sandbox_last_error(sb));
	sbx_exec_opts_free(o);
	return r;
}

static void test_basics(void)
{
	static const char bin[] = "\x00\x01\xfe\xff binary";
	const char *utf8 = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x90\x8d\n";
	sbx_exec_result *r;
	size_t len;
	const char *out;

	r = run("echo hello", 0, NULL, 0);
	CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), "hello\n") == 0);
	CHECK_EQ(sbx_exec_result_exit_code(r), 0);
	sbx_exec_result_free(r);

	r = run("exit 3", 0, NULL, 0);
	CHECK_EQ(sbx_exec_result_exit_code(r), 3);
	CHECK_EQ(sbx_exec_result_signal(r), 0);
	sbx_exec_result_free(r);

	r = run("kill -9 $$", 0, NULL, 0);
	CHECK_EQ(sbx_exec_result_signal(r), 9);
	CHECK_EQ(sbx_exec_result_exit_code(r), -1);
	sbx_exec_result_free(r);

	r = run("echo to-out; echo to-err >&2", 0, NULL, 0);
	CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), "to-out\n") == 0);
	CHECK(r && strcmp(sbx_exec_result_stderr(r, NULL), "to-err\n") == 0);
	sbx_exec_result_free(r);

	r = run("printf '\\000\\001\\376\\377 binary'", 0, NULL, 0);
	out = sbx_exec_result_stdout(r, &len);
	CHECK_EQ(len, sizeof(bin) - 1);
	CHECK(memcmp(out, bin, sizeof(bin) - 1) == 0);
	sbx_exec_result_free(r);

	r = run("cat", 0, utf8, strlen(utf8)); /* stdin in, UTF-8 out */
	CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), utf8) == 0);
	sbx_exec_result_free(r);

	r = run("cat", 0, bin, sizeof(bin) - 1); /* binary stdin */
	out = sbx_exec_result_stdout(r, &len);
	CHECK(len == sizeof(bin) - 1 && memcmp(out, bin, len) == 0);
	sbx_exec_result_free(r);

	/* user, cwd and env reach the command. */
	{
		sbx_exec_opts *o = sbx_exec_opts_new();
		sbx_exec_opts_set_shell(o, "echo $(id -u) $(pwd) $GREETING");
		sbx_exec_opts_set_user(o, "nobody");
		sbx_exec_opts_set_cwd(o, "/tmp");
		sbx_exec_opts_add_env(o, "GREETING", "hi there");
		CHECK_EQ(sbx_exec(sb, o, &r), SBX_OK);
		CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), "65534 /tmp hi there\n") == 0);
		sbx_exec_result_free(r);
		sbx_exec_opts_free(o);
	}

	/* argv form: no shell involved; a missing program is an error, not an exit code. */
	{
		const char *argv[] = { "printf", "%s|", "a b", "c", NULL }, *missing[] = {
			"/no/such/program", NULL };
		sbx_exec_opts *o = sbx_exec_opts_new();
		sbx_exec_opts_set_argv(o, argv);
		CHECK_EQ(sbx_exec(sb, o, &r), SBX_OK);
		CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), "a b|c|") == 0);
		sbx_exec_result_free(r);
		r = NULL;
		sbx_exec_opts_set_argv(o, missing);
		CHECK_EQ(sbx_exec(sb, o, &r), SBX_ENOENT);
		CHECK(r == NULL);
		sbx_exec_opts_free(o);
	}
}

static void test_big_output(void)
{
	sbx_exec_result *r = run("yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 10000000", 0,
				 NULL, 0);
	const char *line = "0123456789abcdefghijklmnopqrstuvwxyz\n";
	size_t len, bad = 0;
	const char *out = sbx_exec_result_stdout(r, &len);

	CHECK_EQ(len, BIG_OUTPUT);
	for (size_t i = 0; i < len; i++)
		bad += out[i] != line[i % 37];
	CHECK_EQ(bad, 0);
	sbx_exec_result_free(r);
}

static void test_timeout(void)
{
	double t0 = now();
	sbx_exec_result *r = run("while true; do :; done", 2000, NULL, 0);

	printf("timeout: came back after %.2f s\n", now() - t0);
	CHECK_EQ(sbx_exec_result_timed_out(r), 1);
	CHECK_EQ(sbx_exec_result_signal(r), 9);
	sbx_exec_result_free(r);
	r = run("echo still-here", 0, NULL, 0);
	CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), "still-here\n") == 0);
	sbx_exec_result_free(r);
}

struct worker {
	int id, ok;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	for (int j = 0; j < 5; j++) {
		char cmd[64], want[64];
		sbx_exec_opts *o = sbx_exec_opts_new();
		sbx_exec_result *r = NULL;
		snprintf(cmd, sizeof(cmd), "sleep 0.2; echo worker-%d-%d", w->id, j);
		snprintf(want, sizeof(want), "worker-%d-%d\n", w->id, j);
		sbx_exec_opts_set_shell(o, cmd);
		if (sbx_exec(sb, o, &r) == SBX_OK && strcmp(sbx_exec_result_stdout(r, NULL), want) == 0)
			w->ok++;
		sbx_exec_result_free(r);
		sbx_exec_opts_free(o);
	}
	return NULL;
}

static void test_concurrency(void)
{
	struct worker w[4];
	pthread_t t[4];
	double t0 = now();

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ i, 0 };
		pthread_create(&t[i], NULL, worker_run, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].ok, 5);
	}
	printf("20 execs from 4 threads: %.2f s\n", now() - t0);
}

static void test_background(void)
{
	sbx_exec_opts *o = sbx_exec_opts_new();
	sbx_exec_result *r = NULL;
	int pid = 0;

	sbx_exec_opts_set_shell(o, "sleep 0.5; echo bg-done");
	CHECK_EQ(sbx_exec_background(sb, o, "/tmp/bg.out", NULL, &pid), SBX_OK);
	CHECK(pid > 1);
	CHECK_EQ(sbx_process_wait(sb, pid, 10000, &r), SBX_OK);
	CHECK_EQ(sbx_exec_result_exit_code(r), 0);
	sbx_exec_result_free(r);
	r = run("cat /tmp/bg.out", 0, NULL, 0);
	CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), "bg-done\n") == 0);
	sbx_exec_result_free(r);
	r = NULL;

	sbx_exec_opts_set_shell(o, "sleep 100");
	CHECK_EQ(sbx_exec_background(sb, o, NULL, NULL, &pid), SBX_OK);
	CHECK_EQ(sbx_process_wait(sb, pid, 200, &r), SBX_ETIMEDOUT);
	CHECK_EQ(sbx_process_kill(sb, pid, SIGTERM), SBX_OK);
	CHECK_EQ(sbx_process_wait(sb, pid, 10000, &r), SBX_OK);
	CHECK_EQ(sbx_exec_result_signal(r), SIGTERM);
	sbx_exec_result_free(r);
	sbx_exec_opts_free(o);
}

/* sha256sum of a host file, via coreutils. */
static void host_sha256(const char *path, char out[65])
{
	char cmd[4200];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	p = popen(cmd, "r");
	out[0] = 0;
	if (p) {
		if (fscanf(p, "%64s", out) != 1)
			out[0] = 0;
		pclose(p);
	}
}

static void test_files(void)
{
	char src[4096], back[4096], want[65], got[65], *data = NULL;
	unsigned char buf[1 << 16];
	sbx_exec_result *r;
	unsigned long long size = 0;
	size_t len = 0;
	sbx_dir *d = NULL;
	double t0;
	int fd, type = 0, found = 0;

	snprintf(src, sizeof(src), "%s/big.bin", env.workdir);
	snprintf(back, sizeof(back), "%s/big.back", env.workdir);
	fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	srand(7);
	for (size_t off = 0; off < BIG_FILE; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (unsigned char)rand();
		CHECK(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	}
	close(fd);
	host_sha256(src, want);

	fd = open(src, O_RDONLY | O_CLOEXEC);
	t0 = now();
	CHECK_EQ(sbx_file_write_fd(sb, "/tmp/deep/er/big.bin", fd, 0600), SBX_OK);
	printf("100 MiB written in %.2f s\n", now() - t0);
	close(fd);
	fd = open(back, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	t0 = now();
	CHECK_EQ(sbx_file_read_fd(sb, "/tmp/deep/er/big.bin", fd), SBX_OK);
	printf("100 MiB read in %.2f s\n", now() - t0);
	close(fd);
	host_sha256(back, got);
	CHECK(want[0] && strcmp(want, got) == 0);
	r = run("sha256sum /tmp/deep/er/big.bin; stat -c %a /tmp/deep/er/big.bin", 0, NULL, 0);
	CHECK(r && strncmp(sbx_exec_result_stdout(r, NULL), want, 64) == 0);
	CHECK(r && strstr(sbx_exec_result_stdout(r, NULL), "\n600\n") != NULL);
	sbx_exec_result_free(r);
	unlink(src);
	unlink(back);

	CHECK_EQ(sbx_file_stat(sb, "/tmp/deep/er/big.bin", &type, &size, NULL, NULL), SBX_OK);
	CHECK_EQ(type, SBX_FILE_REGULAR);
	CHECK_EQ(size, BIG_FILE);
	CHECK_EQ(sbx_file_write(sb, "/tmp/small.txt", "small\n", 6, 0644), SBX_OK);
	CHECK_EQ(sbx_file_read(sb, "/tmp/small.txt", (void **)&data, &len), SBX_OK);
	CHECK(len == 6 && data && memcmp(data, "small\n", 6) == 0);
	sbx_free(data);
	CHECK_EQ(sbx_file_mkdir(sb, "/tmp/a/b", 0755, 1), SBX_OK);
	CHECK_EQ(sbx_file_rename(sb, "/tmp/small.txt", "/tmp/a/b/moved.txt"), SBX_OK);
	CHECK_EQ(sbx_file_list(sb, "/tmp/a/b", &d), SBX_OK);
	for (size_t i = 0; i < sbx_dir_count(d); i++)
		found += strcmp(sbx_dir_name(d, i), "moved.txt") == 0 &&
			 sbx_dir_type(d, i) == SBX_FILE_REGULAR && sbx_dir_size(d, i) == 6;
	CHECK_EQ(found, 1);
	sbx_dir_free(d);
	CHECK_EQ(sbx_file_remove(sb, "/tmp/a", 1), SBX_OK);
	CHECK_EQ(sbx_file_stat(sb, "/tmp/a", NULL, NULL, NULL, NULL), SBX_ENOENT);
	CHECK_EQ(sbx_file_remove(sb, "/tmp/deep", 1), SBX_OK);

	/* Clear errors: a missing file, and a path on the read-only rootfs. */
	data = NULL;
	CHECK_EQ(sbx_file_read(sb, "/no/such/file", (void **)&data, &len), SBX_ENOENT);
	CHECK(data == NULL);
	printf("missing file: %s\n", sbx_sandbox_last_error(sb));
	CHECK(strstr(sbx_sandbox_last_error(sb), "/no/such/file") != NULL);
	CHECK_EQ(sbx_file_write(sb, "/usr/forbidden.txt", "x", 1, 0644), SBX_EPERM);
	printf("read-only path: %s\n", sbx_sandbox_last_error(sb));
	CHECK(strstr(sbx_sandbox_last_error(sb), "EROFS") != NULL);
}

/* Without a policy in its config a sandbox has no network, and no policy to change. */
static void test_no_network(void)
{
	sbx_net_policy *p = sbx_net_policy_new(SBX_NET_ALL);
	sbx_net_log *l = NULL;
	sbx_exec_result *r = run("ls /sys/class/net", 0, NULL, 0);

	CHECK(r && strcmp(sbx_exec_result_stdout(r, NULL), "lo\n") == 0);
	sbx_exec_result_free(r);
	CHECK_EQ(sbx_sandbox_set_net_policy(sb, p), SBX_ESTATE);
	printf("no network: %s\n", sbx_sandbox_last_error(sb));
	CHECK(strstr(sbx_sandbox_last_error(sb), "without a network") != NULL);
	CHECK_EQ(sbx_sandbox_net_log(sb, 0, &l), SBX_ESTATE);
	CHECK(l == NULL);
	sbx_net_policy_free(p);
}

int main(void)
{
	sbx_config *cfg;
	double t0 = now();
	int rc;

	signal(SIGPIPE, SIG_IGN);
	e2e_env_load(&env);
	cfg = e2e_config(&env, 2, 1024);
	rc = sbx_sandbox_create(cfg, &sb);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK) {
		fprintf(stderr, "create: %s\n", sbx_config_last_error(cfg));
		return TEST_SUMMARY();
	}
	rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	printf("agent ready after %.2f s\n", now() - t0);
	if (rc == SBX_OK) {
		test_basics();
		test_big_output();
		test_timeout();
		test_concurrency();
		test_background();
		test_files();
		test_no_network();
	} else {
		fprintf(stderr, "not ready: %s\n", sbx_sandbox_last_error(sb));
	}
	if (testing_failed)
		e2e_dump_console(sb);
	sbx_sandbox_destroy(sb);
	sbx_config_free(cfg);
	return TEST_SUMMARY();
}
