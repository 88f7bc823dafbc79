/* context_create, context_list, context_restart, context_destroy (docs/code-interpreter.md). */
#define _GNU_SOURCE
#include "agent.h"
#include "context.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

const struct language *language_or_reply(struct conn *c, const char *name)
{
	const struct language *l = language_find(name);
	char names[256];

	if (!l) {
		language_names(names, sizeof(names));
		reply_error(c, EINVAL, "unknown language \"%.64s\" (known: %s)", name, names);
	}
	return l;
}

/* Built under run_lock: a restart elsewhere replaces ctx->version. */
static json_t *context_json(struct context *ctx)
{
	json_t *j;

	pthread_mutex_lock(&ctx->run_lock);
	j = json_pack("{s:s, s:s, s:o, s:s?}", "id", ctx->id, "language", ctx->lang->name, "cwd",
			 json_string_lossy(ctx->cwd), "version", ctx->version);
	pthread_mutex_unlock(&ctx->run_lock);
	return j;
}

void op_context_create(struct conn *c)
{
	json_t *env = json_object_get(c->req, "env"), *v;
	const char *lang_name, *cwd, *key;
	const struct language *l;
	struct context *ctx;
	char err[1024];
	int rc;

	if (arg_string(c, "language", 0, &lang_name) < 0 || arg_string(c, "cwd", 0, &cwd) < 0)
		return;
	l = language_or_reply(c, lang_name ? lang_name : "python");
	if (!l)
		return;
	if (json_is_null(env))
		env = NULL;
	if (env && !json_is_object(env)) {
		reply_error(c, EINVAL, "field \"env\": expected an object of strings");
		return;
	}
	json_object_foreach(env, key, v)
		if (!*key || strchr(key, '=') || !json_is_string(v)) {
			reply_error(c, EINVAL, "field \"env\": bad entry \"%.64s\"", key);
			return;
		}
	rc = context_create(l, cwd ? cwd : "/root", env, &ctx, err, sizeof(err));
	if (rc < 0) {
		reply_error(c, -rc, "%s", err);
		return;
	}
	reply_result(c, context_json(ctx));
	context_put(ctx);
}

void op_context_list(struct conn *c)
{
	reply_result(c, json_pack("{s:o}", "contexts", contexts_list()));
}

/* The context named by the request's "id", with an error sent if there is none. */
static struct context *context_arg(struct conn *c)
{
	struct context *ctx;
	const char *id;

	if (arg_string(c, "id", 1, &id) < 0)
		return NULL;
	ctx = context_get(id);
	if (!ctx)
		reply_error(c, ENOENT, "no context \"%.64s\"", id);
	return ctx;
}

void op_context_restart(struct conn *c)
{
	struct context *ctx = context_arg(c);
	char err[1024];
	int rc;

	if (!ctx)
		return;
	/* Killed first, so a cell wedged in it ends and lets go of the kernel. */
	kernel_signal(ctx, SIGKILL);
	pthread_mutex_lock(&ctx->run_lock);
	rc = kernel_start(ctx, err, sizeof(err));
	pthread_mutex_unlock(&ctx->run_lock);
	if (rc < 0)
		reply_error(c, -rc, "%s", err);
	else
		reply_result(c, context_json(ctx));
	context_put(ctx);
}

void op_context_destroy(struct conn *c)
{
	const char *id;

	if (arg_string(c, "id", 1, &id) < 0)
		return;
	if (context_destroy(id) < 0)
		reply_error(c, ENOENT, "no context \"%.64s\"", id);
	else
		reply_result(c, NULL);
}
