/* sandbox fork ID -n N: N detached children of a running sandbox, their ids one a line. */
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_fork(int argc, char **argv)
{
	sbx_sandbox *sb, *children[SBX_FORK_MAX];
	sbx_config *cfg;
	char *end = NULL;
	unsigned long n = 0;
	int rc;

	if (argc == 4 && !strcmp(argv[2], "-n"))
		n = strtoul(argv[3], &end, 10);
	if (!end || *end || n < 1 || n > SBX_FORK_MAX) {
		fprintf(stderr, "usage: sandbox fork ID -n N   (N from 1 to %d)\n", SBX_FORK_MAX);
		return 2;
	}
	sb = attach_or_complain(argv[1]);
	cfg = sbx_config_new();
	if (!sb || !cfg || sbx_config_set_detached(cfg, 1) != SBX_OK) {
		sbx_sandbox_close(sb);
		sbx_config_free(cfg);
		return 1;
	}
	rc = sbx_sandbox_fork(sb, cfg, (unsigned)n, children);
	if (rc != SBX_OK)
		fprintf(stderr, "sandbox: %s: %s\n", sbx_err_name(rc), sbx_sandbox_last_error(sb));
	for (unsigned long i = 0; rc == SBX_OK && i < n; i++) {
		printf("%s\n", sbx_sandbox_id(children[i]));
		sbx_sandbox_close(children[i]);
	}
	sbx_sandbox_close(sb);
	sbx_config_free(cfg);
	return rc == SBX_OK ? 0 : 1;
}
