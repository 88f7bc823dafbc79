/* End-to-end: the code interpreter on the code-interpreter template, one guest booted once.
 * Paths from the environment as e2e_agent, plus SANDBOX_CODE_ROOTFS: a writable copy of the
 * template's image (tests/e2e/prepare makes it). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e_common.h"
#include "testing.h"

#define BOOT_TIMEOUT_MS (240 * 1000)
/* Generous: first imports and JVM start-up run under nested emulation. */
#define CELL_TIMEOUT_MS (600 * 1000)

static sbx_sandbox *sb;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs a cell (in context ctx, else the default context of lang). NULL on an API failure,
 * which is CHECKed. */
static sbx_execution *cell_with(const char *lang, const char *ctx, const char *code,
				unsigned timeout_ms, sbx_code_opts *o)
{
	sbx_execution *e = NULL;
	double t0 = now();
	int rc;

	if (lang)
		sbx_code_opts_set_language(o, lang);
	if (ctx)
		sbx_code_opts_set_context(o, ctx);
	sbx_code_opts_set_timeout_ms(o, timeout_ms ? timeout_ms : CELL_TIMEOUT_MS);
	rc = sbx_run_code(sb, code, o, &e);
	CHECK_EQ(rc, SBX_OK);
	if (rc != SBX_OK)
		fprintf(stderr, "run_code %s: %s\n", code, sbx_sandbox_last_error(sb));
	else if (sbx_execution_error_name(e))
		printf("[%s %.2f s] error %s: %s\n", lang ? lang : ctx, now() - t0,
		       sbx_execution_error_name(e), sbx_execution_error_value(e));
	else
		printf("[%s %.2f s] ok\n", lang ? lang : ctx, now() - t0);
	return e;
}

static sbx_execution *cell(const char *lang, const char *ctx, const char *code)
{
	sbx_code_opts *o = sbx_code_opts_new();
	sbx_execution *e = cell_with(lang, ctx, code, 0, o);

	sbx_code_opts_free(o);
	return e;
}

/* The main (trailing expression) result's text/plain, or NULL. */
static const char *main_text(const sbx_execution *e)
{
	for (size_t i = 0; i < sbx_execution_result_count(e); i++)
		if (sbx_result_is_main(sbx_execution_result(e, i)))
			return sbx_result_data(sbx_execution_result(e, i), "text/plain", NULL);
	return NULL;
}

static int text_is(const sbx_execution *e, const char *want)
{
	const char *got = main_text(e);

	if (!got || strcmp(got, want))
		fprintf(stderr, "  main result: got \"%s\", want \"%s\"\n", got ? got : "(none)", want);
	return got && !strcmp(got, want);
}

static int no_error(const sbx_execution *e)
{
	return e && !sbx_execution_error_name(e);
}

static void test_python_state(void)
{
	sbx_execution *e;
	char *other = NULL;

	e = cell("python", NULL, "x = 42");
	CHECK(no_error(e) && sbx_execution_result_count(e) == 0);
	sbx_execution_free(e);
	e = cell("python", NULL, "x");
	CHECK(no_error(e) && text_is(e, "42"));
	CHECK(e && !strncmp(sbx_execution_context(e), "default-python", 14));
	sbx_execution_free(e);

	/* Another context does not see x. */
	CHECK_EQ(sbx_context_create(sb, "python", NULL, &other), SBX_OK);
	e = cell(NULL, other, "x");
	CHECK(e && sbx_execution_error_name(e) && !strcmp(sbx_execution_error_name(e), "NameError"));
	sbx_execution_free(e);

	e = cell(NULL, other, "items = [1, 2]");
	CHECK(no_error(e));
	sbx_execution_free(e);
	e = cell(NULL, other, "items.append(3)\nitems");
	CHECK(no_error(e) && text_is(e, "[1, 2, 3]"));
	CHECK(e && sbx_execution_count(e) == 3);
	sbx_execution_free(e);

	/* Restart empties it; destroy removes it. */
	CHECK_EQ(sbx_context_restart(sb, other), SBX_OK);
	e = cell(NULL, other, "items");
	CHECK(e && sbx_execution_error_name(e) && !strcmp(sbx_execution_error_name(e), "NameError"));
	sbx_execution_free(e);
	CHECK_EQ(sbx_context_destroy(sb, other), SBX_OK);
	e = NULL;
	CHECK_EQ(sbx_run_code(sb, "1", NULL, &e), SBX_OK); /* NULL opts: default python */
	CHECK(no_error(e) && text_is(e, "1"));
	sbx_execution_free(e);
	{
		sbx_code_opts *o = sbx_code_opts_new();
		sbx_code_opts_set_context(o, other);
		CHECK_EQ(sbx_run_code(sb, "1", o, &e), SBX_ENOENT);
		sbx_code_opts_set_language(o, "cobol");
		sbx_code_opts_set_context(o, "default-python");
		CHECK_EQ(sbx_run_code(sb, "1", o, &e), SBX_EINVAL);
		printf("unknown language: %s\n", sbx_sandbox_last_error(sb));
		sbx_code_opts_free(o);
	}
	sbx_free(other);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_python_rich(void)
{
	static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	const unsigned char *png = NULL;
	const char *html = NULL;
	size_t len = 0;
	sbx_execution *e;

	e = cell("python", NULL,
		 "import numpy as np\n"
		 "import matplotlib.pyplot as plt\n"
		 "t = np.linspace(0, 2 * np.pi, 200)\n"
		 "fig = plt.figure(figsize=(6, 4), dpi=100)\n"
		 "plt.plot(t, np.sin(t), label='sin')\n"
		 "plt.plot(t, np.cos(t), label='cos')\n"
		 "plt.legend()\n"
		 "plt.show()\n");
	for (size_t i = 0; e && i < sbx_execution_result_count(e) && !png; i++)
		png = sbx_result_data(sbx_execution_result(e, i), "image/png", &len);
	CHECK(no_error(e));
	CHECK(png && len > 24 && !memcmp(png, png_sig, 8) && !memcmp(png + 12, "IHDR", 4));
	if (png && len > 24) {
		printf("figure: %zu bytes of PNG, %ux%u\n", len, be32(png + 16), be32(png + 20));
		CHECK_EQ(be32(png + 16), 600);
		CHECK_EQ(be32(png + 20), 400);
	}
	sbx_execution_free(e);

	e = cell("python", NULL,
		 "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})");
	for (size_t i = 0; e && i < sbx_execution_result_count(e); i++)
		if (sbx_result_is_main(sbx_execution_result(e, i)))
			html = sbx_result_data(sbx_execution_result(e, i), "text/html", NULL);
	CHECK(no_error(e) && html && strstr(html, "<table") && strstr(html, "</table>"));
	sbx_execution_free(e);

	/* _repr_html_ of any object, display() of one that is not the trailing value. */
	e = cell("python", NULL,
		 "class Card:\n"
		 "    def _repr_html_(self): return '<b>card</b>'\n"
		 "display(Card())\n"
		 "'after'");
	CHECK(no_error(e) && sbx_execution_result_count(e) == 2);
	if (e && sbx_execution_result_count(e) == 2) {
		const sbx_result *shown = sbx_execution_result(e, 0);
		const char *h = sbx_result_data(shown, "text/html", NULL);
		CHECK(!sbx_result_is_main(shown) && h && !strcmp(h, "<b>card</b>"));
		CHECK(text_is(e, "'after'"));
	}
	sbx_execution_free(e);
}

static void test_python_errors(void)
{
	sbx_execution *e;
	const char *tb;

	e = cell("python", NULL, "print(undefined_variable)");
	CHECK(e && sbx_execution_error_name(e) && !strcmp(sbx_execution_error_name(e), "NameError"));
	tb = e ? sbx_execution_error_traceback(e) : NULL;
	CHECK(tb && strstr(tb, "undefined_variable") && strstr(tb, "Traceback"));
	if (tb)
		printf("traceback:\n%s", tb);
	sbx_execution_free(e);
	e = cell("python", NULL, "x + 1");
	CHECK(no_error(e) && text_is(e, "43"));
	sbx_execution_free(e);

	e = cell("python", NULL, "def broken(:\n  pass");
	CHECK(e && sbx_execution_error_name(e) && !strcmp(sbx_execution_error_name(e), "SyntaxError"));
	sbx_execution_free(e);
}

struct stream_log {
	double first_at;
	size_t bytes;
};

static void on_output(void *user, int stream, const char *data, size_t len)
{
	struct stream_log *l = user;

	(void)data;
	if (stream == SBX_STDOUT && !l->bytes)
		l->first_at = now();
	if (stream == SBX_STDOUT)
		l->bytes += len;
}

static void test_streaming(void)
{
	struct stream_log log = {0, 0};
	sbx_code_opts *o = sbx_code_opts_new();
	sbx_execution *e;
	double end;

	sbx_code_opts_set_output_fn(o, on_output, &log);
	e = cell_with("python", NULL,
		      "import time\nfor i in range(5):\n    print('line', i)\n    time.sleep(1)\n", 0, o);
	end = now();
	CHECK(no_error(e));
	CHECK(e && !strcmp(sbx_execution_stdout(e, NULL), "line 0\nline 1\nline 2\nline 3\nline 4\n"));
	CHECK_EQ(log.bytes, 35);
	/* The first line came while the cell still had four seconds of sleeping to do. */
	printf("first line %.2f s before the end of the cell\n", end - log.first_at);
	CHECK(log.bytes && end - log.first_at > 2.5);
	sbx_execution_free(e);
	sbx_code_opts_free(o);
}

static void test_interrupt(void)
{
	sbx_code_opts *o = sbx_code_opts_new();
	sbx_execution *e;

	e = cell("python", NULL, "kept = 'still here'");
	sbx_execution_free(e);
	e = cell_with("python", NULL, "while True:\n    pass\n", 3000, o);
	CHECK(e && sbx_execution_timed_out(e));
	CHECK(e && sbx_execution_error_name(e) &&
	      !strcmp(sbx_execution_error_name(e), "KeyboardInterrupt"));
	CHECK(e && !sbx_execution_restarted(e));
	sbx_execution_free(e);
	e = cell("python", NULL, "kept");
	CHECK(no_error(e) && text_is(e, "'still here'"));
	CHECK(e && !sbx_execution_restarted(e));
	sbx_execution_free(e);

	/* A kernel that dies takes its state; the next cell gets a fresh one and says so. */
	e = cell("python", NULL, "import os\nos._exit(3)");
	CHECK(e && sbx_execution_error_name(e) &&
	      !strcmp(sbx_execution_error_name(e), "ContextDied") &&
	      strstr(sbx_execution_error_value(e), "status 3"));
	sbx_execution_free(e);
	e = cell("python", NULL, "'kept' in dir()");
	CHECK(no_error(e) && text_is(e, "False") && sbx_execution_restarted(e));
	CHECK(e && sbx_execution_count(e) == 1);
	sbx_execution_free(e);
	e = cell("python", NULL, "x = 42");
	sbx_execution_free(e);
	sbx_code_opts_free(o);
}

static void test_languages(void)
{
	sbx_execution *e;

	e = cell("javascript", NULL, "let n = 20;\nconsole.log('js says', n + 1);");
	CHECK(no_error(e) && !strcmp(sbx_execution_stdout(e, NULL), "js says 21\n"));
	sbx_execution_free(e);
	e = cell("javascript", NULL, "n * 2");
	CHECK(no_error(e) && text_is(e, "40"));
	sbx_execution_free(e);
	e = cell("javascript", NULL, "await new Promise(r => setTimeout(() => r(n + 1), 50))");
	CHECK(no_error(e) && text_is(e, "21"));
	sbx_execution_free(e);
	e = cell("javascript", NULL, "null.x");
	CHECK(e && sbx_execution_error_name(e) && !strcmp(sbx_execution_error_name(e), "TypeError"));
	sbx_execution_free(e);

	e = cell("typescript", NULL,
		 "function greet(name: string): string { return `Hello, ${name}!`; }\n"
		 "console.log(greet('TypeScript'));");
	CHECK(no_error(e) && !strcmp(sbx_execution_stdout(e, NULL), "Hello, TypeScript!\n"));
	sbx_execution_free(e);

	e = cell("bash", NULL, "cd /tmp\nGREETING=kept\nshout() { echo \"${1^^}\"; }");
	CHECK(no_error(e));
	sbx_execution_free(e);
	e = cell("bash", NULL, "echo \"$PWD $GREETING\"; shout hi");
	CHECK(no_error(e) && !strcmp(sbx_execution_stdout(e, NULL), "/tmp kept\nHI\n"));
	sbx_execution_free(e);
	{
		sbx_code_opts *o = sbx_code_opts_new();
		e = cell_with("bash", NULL, "spin() { while :; do :; done; }\nspin", 2000, o);
		CHECK(e && sbx_execution_timed_out(e) && sbx_execution_error_name(e) &&
		      !strcmp(sbx_execution_error_name(e), "Interrupted"));
		sbx_execution_free(e);
		sbx_code_opts_free(o);
	}
	e = cell("bash", NULL, "echo \"$GREETING\"");
	CHECK(no_error(e) && !strcmp(sbx_execution_stdout(e, NULL), "kept\n"));
	sbx_execution_free(e);
	e = cell("bash", NULL, "false");
	CHECK(e && sbx_execution_error_name(e) && !strcmp(sbx_execution_error_name(e), "CommandFailed"));
	sbx_execution_free(e);

	e = cell("go", NULL,
		 "package main\n\nimport \"fmt\"\n\nfunc main() {\n"
		 "\tsum := 0\n\tfor i := 1; i <= 100; i++ {\n\t\tsum += i\n\t}\n"
		 "\tfmt.Println(\"sum:\", sum)\n}\n");
	CHECK(no_error(e) && !strcmp(sbx_execution_stdout(e, NULL), "sum: 5050\n"));
	sbx_execution_free(e);
	e = cell("go", NULL, "package main\nfunc main() { undefined() }\n");
	CHECK(e && sbx_execution_error_name(e) &&
	      !strcmp(sbx_execution_error_name(e), "CompilationError"));
	sbx_execution_free(e);

	e = cell("java", NULL, "int a = 10;");
	CHECK(no_error(e));
	sbx_execution_free(e);
	e = cell("java", NULL, "a + 5");
	CHECK(no_error(e) && text_is(e, "15"));
	sbx_execution_free(e);
	e = cell("java", NULL, "System.out.println(\"java \" + (a * 2));");
	CHECK(no_error(e) && !strcmp(sbx_execution_stdout(e, NULL), "java 20\n"));
	sbx_execution_free(e);
}

static void test_context_list(void)
{
	sbx_contexts *l = NULL;
	int python = 0, java = 0;

	CHECK_EQ(sbx_context_list(sb, &l), SBX_OK);
	for (size_t i = 0; i < sbx_contexts_count(l); i++) {
		printf("context %s %s %s\n", sbx_contexts_id(l, i), sbx_contexts_language(l, i),
		       sbx_contexts_cwd(l, i));
		python += !strcmp(sbx_contexts_id(l, i), "default-python");
		java += !strcmp(sbx_contexts_language(l, i), "java");
	}
	CHECK(python == 1 && java == 1);
	sbx_contexts_free(l);
}

int main(void)
{
	const char *rootfs = getenv("SANDBOX_CODE_ROOTFS");
	struct e2e_env env;
	sbx_config *cfg;
	double t0 = now();
	int rc;

	signal(SIGPIPE, SIG_IGN);
	e2e_env_load(&env);
	if (!rootfs || !*rootfs) {
		fprintf(stderr, "e2e_code: SANDBOX_CODE_ROOTFS is not set (tests/e2e/prepare)\n");
		return 1;
	}
	cfg = sbx_config_new();
	if (!cfg || sbx_config_set_kernel(cfg, env.kernel) ||
	    sbx_config_set_initramfs(cfg, env.initramfs) || sbx_config_add_disk(cfg, rootfs, 0) ||
	    sbx_config_set_vcpus(cfg, 1) || sbx_config_set_memory_mib(cfg, 1536)) {
		fprintf(stderr, "config: %s\n", sbx_config_last_error(cfg));
		return 1;
	}
	rc = sbx_sandbox_create(cfg, &sb);
	CHECK_EQ(rc, SBX_OK);
	if (rc == SBX_OK)
		rc = sbx_sandbox_wait_ready(sb, BOOT_TIMEOUT_MS);
	CHECK_EQ(rc, SBX_OK);
	printf("agent ready after %.2f s\n", now() - t0);
	if (rc == SBX_OK) {
		test_python_state();
		test_python_errors();
		test_streaming();
		test_interrupt();
		test_python_rich();
		test_languages();
		test_context_list();
	} else {
		fprintf(stderr, "not ready: %s\n", sb ? sbx_sandbox_last_error(sb) : sbx_config_last_error(cfg));
	}
	if (testing_failed && sb)
		e2e_dump_console(sb);
	sbx_sandbox_destroy(sb);
	sbx_config_free(cfg);
	return TEST_SUMMARY();
}
