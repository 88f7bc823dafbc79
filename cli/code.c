/* sandbox run-code and sandbox context: the code interpreter from the command line. */
#define _GNU_SOURCE
#include <getopt.h>
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Where the representations a terminal cannot show go, and how many have gone. */
struct saver {
	const char *dir;
	unsigned saved;
	int failed;
};

static const struct {
	const char *mime, *ext;
} saved_formats[] = {
	{ "image/png", "png" },
	{ "image/jpeg", "jpg" },
	{ "image/svg+xml", "svg" },
	{ "text/html", "html" },
};

/* A result: PNG, JPEG, SVG and HTML to files (paths printed), else its text. */
static void print_result(void *user, const sbx_result *r)
{
	struct saver *s = user;
	int saved_one = 0;
	const char *text;
	size_t len;

	for (size_t i = 0; i < sizeof(saved_formats) / sizeof(saved_formats[0]); i++) {
		const void *data = sbx_result_data(r, saved_formats[i].mime, &len);
		char path[4200];
		FILE *f;

		if (!data)
			continue;
		snprintf(path, sizeof(path), "%s/result-%u.%s", s->dir, ++s->saved,
			 saved_formats[i].ext);
		f = fopen(path, "we");
		if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
			fprintf(stderr, "sandbox run-code: cannot write %s\n", path);
			s->failed = 1;
			continue;
		}
		printf("[%s saved to %s]\n", saved_formats[i].mime, path);
		saved_one = 1;
	}
	text = sbx_result_data(r, "text/plain", &len);
	if (text && !saved_one) {
		fwrite(text, 1, len, stdout);
		if (!len || text[len - 1] != '\n')
			putchar('\n');
	}
	fflush(stdout);
}

static int run_code_print(const sbx_execution *e, int json)
{
	const char *name = sbx_execution_error_name(e);
	char *doc = NULL;

	if (json) {
		if (sbx_execution_to_json(e, &doc) != SBX_OK) {
			fprintf(stderr, "sandbox run-code: out of memory\n");
			return 125;
		}
		printf("%s\n", doc);
		sbx_free(doc);
	} else if (name) {
		const char *tb = sbx_execution_error_traceback(e);

		if (tb && *tb)
			fprintf(stderr, "%s%s", tb, tb[strlen(tb) - 1] == '\n' ? "" : "\n");
		else
			fprintf(stderr, "%s: %s\n", name, sbx_execution_error_value(e));
	}
	if (!json && sbx_execution_timed_out(e))
		fprintf(stderr, "sandbox run-code: timed out (interrupted)\n");
	return name ? 1 : 0;
}

int cmd_run_code(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "language", required_argument, 0, 'l' }, { "context", required_argument, 0, 'c' },
		{ "timeout", required_argument, 0, 't' },  { "json", no_argument, 0, 'j' },
		{ "out-dir", required_argument, 0, 'o' },  { 0, 0, 0, 0 },
	};
	sbx_code_opts *o = sbx_code_opts_new();
	struct saver saver = { ".", 0, 0 };
	sbx_execution *e = NULL;
	sbx_sandbox *sb = NULL;
	char *code = NULL;
	size_t len;
	unsigned ms;
	int c, json = 0, rc = SBX_OK, status;

	if (argc < 3 || !o) {
		fprintf(stderr, "usage: sandbox run-code ID [--language L] [--context C] "
				"[--timeout S] [--json] [--out-dir DIR] CODE|-\n");
		sbx_code_opts_free(o);
		return 2;
	}
	optind = 2; /* argv[1] is the id */
	while (rc == SBX_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': rc = sbx_code_opts_set_language(o, optarg); break;
		case 'c': rc = sbx_code_opts_set_context(o, optarg); break;
		case 't':
			rc = parse_seconds_ms("timeout", optarg, &ms)
				     ? SBX_EINVAL
				     : sbx_code_opts_set_timeout_ms(o, ms);
			break;
		case 'j': json = 1; break;
		case 'o': saver.dir = optarg; break;
		default: rc = SBX_EINVAL;
		}
	}
	if (rc != SBX_OK || optind != argc - 1) {
		fprintf(stderr, "sandbox run-code: bad arguments (one CODE, or - for stdin)\n");
		sbx_code_opts_free(o);
		return 2;
	}
	if (!strcmp(argv[optind], "-")) {
		if (slurp_stdin(&code, &len) < 0 || !(code = realloc(code, len + 1))) {
			fprintf(stderr, "sandbox run-code: cannot read the code from stdin\n");
			sbx_code_opts_free(o);
			return 125;
		}
		code[len] = 0;
	} else if (!(code = strdup(argv[optind]))) {
		sbx_code_opts_free(o);
		return 125;
	}
	/* With --json everything comes at the end, in one document. */
	if (!json) {
		sbx_code_opts_set_output_fn(o, stream_output, NULL);
		sbx_code_opts_set_result_fn(o, print_result, &saver);
	}
	sb = attach_or_complain(argv[1]);
	rc = sb ? sbx_run_code(sb, code, o, &e) : SBX_ESTATE;
	if (sb && rc != SBX_OK)
		fprintf(stderr, "sandbox run-code: %s: %s\n", sbx_err_name(rc),
			sbx_sandbox_last_error(sb));
	status = rc != SBX_OK ? 125 : run_code_print(e, json);
	if (status == 0 && saver.failed)
		status = 1;
	sbx_execution_free(e);
	sbx_code_opts_free(o);
	sbx_sandbox_close(sb);
	free(code);
	return status;
}

static int context_create(sbx_sandbox *sb, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "language", required_argument, 0, 'l' }, { "cwd", required_argument, 0, 'c' },
		{ 0, 0, 0, 0 },
	};
	const char *language = NULL, *cwd = NULL;
	char *id = NULL;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'l')
			language = optarg;
		else if (c == 'c')
			cwd = optarg;
		else
			return SBX_EINVAL;
	}
	rc = sbx_context_create(sb, language, cwd, &id);
	if (rc == SBX_OK)
		printf("%s\n", id);
	sbx_free(id);
	return rc;
}

static const char *or_unknown(const char *s)
{
	return s ? s : "?";
}

static int context_list(sbx_sandbox *sb)
{
	sbx_contexts *l = NULL;
	int rc = sbx_context_list(sb, &l);

	for (size_t i = 0; i < sbx_contexts_count(l); i++)
		printf("%-28s %-11s %s\n", or_unknown(sbx_contexts_id(l, i)),
		       or_unknown(sbx_contexts_language(l, i)), or_unknown(sbx_contexts_cwd(l, i)));
	sbx_contexts_free(l);
	return rc;
}

int cmd_context(int argc, char **argv)
{
	const char *op = argc >= 3 ? argv[2] : "";
	sbx_sandbox *sb;
	int rc;

	if (strcmp(op, "create") && strcmp(op, "list") &&
	    ((strcmp(op, "restart") && strcmp(op, "destroy")) || argc != 4)) {
		fprintf(stderr, "usage: sandbox context ID create [--language L] [--cwd DIR] | list | "
				"restart CONTEXT | destroy CONTEXT\n");
		return 2;
	}
	sb = attach_or_complain(argv[1]);
	if (!sb)
		return 1;
	if (!strcmp(op, "create"))
		rc = context_create(sb, argc - 2, argv + 2);
	else if (!strcmp(op, "list"))
		rc = context_list(sb);
	else if (!strcmp(op, "restart"))
		rc = sbx_context_restart(sb, argv[3]);
	else
		rc = sbx_context_destroy(sb, argv[3]);
	if (rc != SBX_OK)
		fprintf(stderr, "sandbox context %s: %s: %s\n", op, sbx_err_name(rc),
			sbx_sandbox_last_error(sb));
	sbx_sandbox_close(sb);
	return rc == SBX_OK ? 0 : 1;
}
