/* Code interpreter contexts: each call one agent request (docs/code-interpreter.md). */
#include <stdlib.h>
#include <string.h>

#include "agent_client.h"
#include "internal.h"

/* A kernel may take the agent's five minutes to start under emulation; then some slack. */
#define CONTEXT_CALL_MS (330 * 1000)

struct sbx_contexts {
	json_t *contexts; /* the agent's array */
};

static int context_call(sbx_sandbox *sb, json_t *req, json_t **ev)
{
	char err[SBX_ERRMSG_MAX];
	int rc;

	if (!req)
		return sandbox_error(sb, SBX_EINVAL, "bad argument (not UTF-8?)");
	rc = agent_request(sb->dir, req, CONTEXT_CALL_MS, ev, err);
	json_decref(req);
	return rc == SBX_OK ? SBX_OK : sandbox_error(sb, rc, err);
}

int sbx_context_create(sbx_sandbox *sb, const char *language, const char *cwd, char **id)
{
	json_t *ev = NULL;
	const char *got;
	int rc;

	if (!sb || !id)
		return SBX_EINVAL;
	rc = context_call(sb, json_pack("{s:s, s:s?, s:s?}", "op", "context_create", "language",
					language, "cwd", cwd),
			  &ev);
	if (rc != SBX_OK)
		return rc;
	got = json_string_value(json_object_get(ev, "id"));
	if (!got)
		rc = sandbox_error(sb, SBX_EPROTO, "agent gave no context id");
	else if (!(*id = strdup(got)))
		rc = sandbox_error(sb, SBX_ENOMEM, "out of memory");
	json_decref(ev);
	return rc;
}

int sbx_context_list(sbx_sandbox *sb, sbx_contexts **out)
{
	sbx_contexts *l;
	json_t *ev = NULL;
	int rc;

	if (!sb || !out)
		return SBX_EINVAL;
	rc = context_call(sb, json_pack("{s:s}", "op", "context_list"), &ev);
	if (rc != SBX_OK)
		return rc;
	if (!json_is_array(json_object_get(ev, "contexts"))) {
		json_decref(ev);
		return sandbox_error(sb, SBX_EPROTO, "agent gave no context list");
	}
	l = malloc(sizeof(*l));
	if (!l) {
		json_decref(ev);
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	}
	l->contexts = json_incref(json_object_get(ev, "contexts"));
	json_decref(ev);
	*out = l;
	return SBX_OK;
}

size_t sbx_contexts_count(const sbx_contexts *l)
{
	return l ? json_array_size(l->contexts) : 0;
}

static const char *entry_field(const sbx_contexts *l, size_t i, const char *key)
{
	return l ? json_string_value(json_object_get(json_array_get(l->contexts, i), key)) : NULL;
}

const char *sbx_contexts_id(const sbx_contexts *l, size_t i)
{
	return entry_field(l, i, "id");
}

const char *sbx_contexts_language(const sbx_contexts *l, size_t i)
{
	return entry_field(l, i, "language");
}

const char *sbx_contexts_cwd(const sbx_contexts *l, size_t i)
{
	return entry_field(l, i, "cwd");
}

void sbx_contexts_free(sbx_contexts *l)
{
	if (!l)
		return;
	json_decref(l->contexts);
	free(l);
}

/* restart and destroy: a request naming the context, answered by one event. */
static int context_by_id(sbx_sandbox *sb, const char *op, const char *id)
{
	json_t *ev = NULL;
	int rc;

	if (!sb || !id)
		return SBX_EINVAL;
	rc = context_call(sb, json_pack("{s:s, s:s}", "op", op, "id", id), &ev);
	json_decref(ev);
	return rc;
}

int sbx_context_restart(sbx_sandbox *sb, const char *id)
{
	return context_by_id(sb, "context_restart", id);
}

int sbx_context_destroy(sbx_sandbox *sb, const char *id)
{
	return context_by_id(sb, "context_destroy", id);
}
