/* sandbox net: the egress policy of a running sandbox, and its denial log. */
#define _GNU_SOURCE
#include <sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void net_usage(void)
{
	fprintf(stderr, "usage: sandbox net set ID none|all|allow:LIST\n"
			"       sandbox net allow ID ENTRY...\n"
			"       sandbox net deny ID [ENTRY...]\n"
			"       sandbox net show ID\n"
			"       sandbox net log ID [--json]\n");
}

static int net_fail(sbx_sandbox *sb, const char *what, int rc)
{
	fprintf(stderr, "sandbox net %s: %s: %s\n", what, sbx_err_name(rc),
		sbx_sandbox_last_error(sb));
	return 1;
}

static int net_print_policy(const sbx_net_policy *p)
{
	char *text = NULL;

	if (sbx_net_policy_format(p, &text) != SBX_OK)
		return 1;
	printf("%s\n", text);
	sbx_free(text);
	return 0;
}

/* allow: the entries join the policy in force, which becomes "allow". deny: they leave it; with
 * no entries the policy becomes "none" (its list is kept for a later allow). */
static int net_edit(sbx_sandbox *sb, const char *op, int argc, char **argv)
{
	sbx_net_policy *p = NULL;
	int rc = sbx_sandbox_get_net_policy(sb, &p), allow = strcmp(op, "allow") == 0;

	if (rc != SBX_OK)
		return net_fail(sb, op, rc);
	if (allow)
		sbx_net_policy_set_mode(p, SBX_NET_ALLOW);
	else if (argc == 0)
		sbx_net_policy_set_mode(p, SBX_NET_NONE);
	for (int i = 0; i < argc; i++) {
		rc = allow ? sbx_net_policy_add(p, argv[i]) : sbx_net_policy_remove(p, argv[i]);
		if (rc == SBX_ENOENT) {
			fprintf(stderr, "sandbox net deny: %s is not in the policy\n", argv[i]);
		} else if (rc != SBX_OK) {
			fprintf(stderr, "sandbox net %s: %s: not CIDR[:PORT] nor a domain name\n",
				op, argv[i]);
			sbx_net_policy_free(p);
			return 2;
		}
	}
	rc = sbx_sandbox_set_net_policy(sb, p);
	if (rc == SBX_OK)
		net_print_policy(p);
	sbx_net_policy_free(p);
	return rc == SBX_OK ? 0 : net_fail(sb, op, rc);
}

static int net_set(sbx_sandbox *sb, const char *text)
{
	sbx_net_policy *p = policy_parse_or_complain(text);
	int rc;

	if (!p)
		return 2;
	rc = sbx_sandbox_set_net_policy(sb, p);
	sbx_net_policy_free(p);
	return rc == SBX_OK ? 0 : net_fail(sb, "set", rc);
}

static void net_print_time(double t, char *out, size_t len)
{
	time_t secs = (time_t)t;
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + strlen(out), len - strlen(out), ".%03dZ", (int)((t - (double)secs) * 1000));
}

static int net_log(sbx_sandbox *sb, int json)
{
	sbx_net_log *l = NULL;
	int rc = sbx_sandbox_net_log(sb, 0, &l);

	if (rc != SBX_OK)
		return net_fail(sb, "log", rc);
	if (json)
		printf("{\"total\": %llu, \"lost\": %llu, \"denials\": [", sbx_net_log_total(l),
		       sbx_net_log_lost(l));
	for (size_t i = 0; i < sbx_net_log_count(l); i++) {
		char when[64], dst[300];
		int port = sbx_net_log_port(l, i);

		net_print_time(sbx_net_log_time(l, i), when, sizeof(when));
		/* Destinations are addresses or DNS names: nothing to escape in either. */
		if (json) {
			printf("%s\n  {\"time\": \"%s\", \"protocol\": \"%s\", \"destination\": "
			       "\"%s\", "
			       "\"port\": %d, \"reason\": \"%s\"}",
			       i ? "," : "", when, sbx_net_log_protocol(l, i),
			       sbx_net_log_destination(l, i), port, sbx_net_log_reason(l, i));
			continue;
		}
		snprintf(dst, sizeof(dst), port ? "%s:%d" : "%s", sbx_net_log_destination(l, i),
			 port);
		printf("%s %-5s %-21s %s\n", when, sbx_net_log_protocol(l, i), dst,
		       sbx_net_log_reason(l, i));
	}
	if (json)
		printf("\n]}\n");
	else
		printf("%llu denied in all%s\n", sbx_net_log_total(l),
		       sbx_net_log_lost(l) ? " (older records overwritten)" : "");
	sbx_net_log_free(l);
	return 0;
}

int cmd_net(int argc, char **argv)
{
	const char *op = argc >= 3 ? argv[1] : "";
	sbx_sandbox *sb;
	int rc;

	if (!((!strcmp(op, "set") && argc == 4) || (!strcmp(op, "allow") && argc >= 4) ||
	      !strcmp(op, "deny") || (!strcmp(op, "show") && argc == 3) ||
	      (!strcmp(op, "log") && (argc == 3 || (argc == 4 && !strcmp(argv[3], "--json")))))) {
		net_usage();
		return 2;
	}
	sb = attach_or_complain(argv[2]);
	if (!sb)
		return 1;
	if (!strcmp(op, "set")) {
		rc = net_set(sb, argv[3]);
	} else if (!strcmp(op, "show")) {
		sbx_net_policy *p = NULL;
		rc = sbx_sandbox_get_net_policy(sb, &p);
		rc = rc == SBX_OK ? net_print_policy(p) : net_fail(sb, "show", rc);
		sbx_net_policy_free(p);
	} else if (!strcmp(op, "log")) {
		rc = net_log(sb, argc == 4);
	} else {
		rc = net_edit(sb, op, argc - 3, argv + 3);
	}
	sbx_sandbox_close(sb);
	return rc;
}
