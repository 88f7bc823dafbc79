/* sbx_run_code: one "run_code" request (docs/code-interpreter.md). The code goes up in FILE
 * frames; the answer is STDOUT/STDERR frames, display events each followed by their
 * representations in FILE frames, and the final result event. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "agent_client.h"
#include "internal.h"
#include "util/base64.h"
#include "util/json_lossy.h"

/* Starting a kernel may take this long under emulation (the agent's own limit), plus slack. */
#define CODE_START_MS (330 * 1000)
/* Past an interrupt, the agent gives a kernel 10 s before it kills it. */
#define CODE_GRACE_MS 30000
/* What an execution keeps, so a cell printing forever cannot exhaust the caller's memory (the
 * callbacks still see everything). */
#define CODE_OUTPUT_KEEP (64u << 20)
#define CODE_RESULTS_KEEP 4096
#define CODE_RESULT_BYTES_MAX (256u << 20)

struct sbx_code_opts {
	char *language, *context;
	unsigned timeout_ms;
	sbx_output_fn output_fn;
	void *output_user;
	sbx_result_fn result_fn;
	void *result_user;
};

struct sbx_result {
	int main;
	size_t n;
	char *mime[RESULT_MAX_FORMATS];
	struct sbx_buf data[RESULT_MAX_FORMATS];
};

struct sbx_execution {
	struct sbx_buf out, err;
	sbx_result **results;
	size_t nresults;
	json_t *final; /* the agent's result event */
};

sbx_code_opts *sbx_code_opts_new(void)
{
	return calloc(1, sizeof(sbx_code_opts));
}

void sbx_code_opts_free(sbx_code_opts *o)
{
	if (!o)
		return;
	free(o->language);
	free(o->context);
	free(o);
}

int sbx_code_opts_set_language(sbx_code_opts *o, const char *language)
{
	return o && language ? sbx_set_string(&o->language, language) : SBX_EINVAL;
}

int sbx_code_opts_set_context(sbx_code_opts *o, const char *context_id)
{
	return o && context_id ? sbx_set_string(&o->context, context_id) : SBX_EINVAL;
}

int sbx_code_opts_set_timeout_ms(sbx_code_opts *o, unsigned timeout_ms)
{
	if (!o)
		return SBX_EINVAL;
	o->timeout_ms = timeout_ms;
	return SBX_OK;
}

int sbx_code_opts_set_output_fn(sbx_code_opts *o, sbx_output_fn fn, void *user)
{
	if (!o)
		return SBX_EINVAL;
	o->output_fn = fn;
	o->output_user = user;
	return SBX_OK;
}

int sbx_code_opts_set_result_fn(sbx_code_opts *o, sbx_result_fn fn, void *user)
{
	if (!o)
		return SBX_EINVAL;
	o->result_fn = fn;
	o->result_user = user;
	return SBX_OK;
}

static void result_free(sbx_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->mime[i]);
		free(r->data[i].data);
	}
	free(r);
}

void sbx_execution_free(sbx_execution *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nresults; i++)
		result_free(e->results[i]);
	free(e->results);
	free(e->out.data);
	free(e->err.data);
	json_decref(e->final);
	free(e);
}

/* A display event's representations: for each format, FILE frames up to one with EOF. */
static int result_read(struct agent_call *c, json_t *ev, int timeout, sbx_result **out,
		       char *err)
{
	json_t *formats = json_object_get(ev, "formats"), *fmt;
	sbx_result *r = calloc(1, sizeof(*r));
	size_t i;
	int rc = SBX_OK;

	if (!r)
		return sbx_fail(err, SBX_ENOMEM, "out of memory for a result");
	r->main = json_is_true(json_object_get(ev, "main"));
	if (!json_is_array(formats) || json_array_size(formats) > RESULT_MAX_FORMATS) {
		result_free(r);
		return sbx_fail(err, SBX_EPROTO, "display event without a valid format list");
	}
	json_array_foreach(formats, i, fmt) {
		const char *mime = json_string_value(json_object_get(fmt, "mime"));
		json_t *bytes = json_object_get(fmt, "bytes");
		json_int_t announced = json_integer_value(bytes);
		struct frame f;

		if (!mime || !json_is_integer(bytes) || announced < 0 ||
		    announced > CODE_RESULT_BYTES_MAX) {
			rc = sbx_fail(err, SBX_EPROTO, "bad display format");
			break;
		}
		if (!(r->mime[i] = strdup(mime))) {
			rc = sbx_fail(err, SBX_ENOMEM, "out of memory for a result");
			break;
		}
		r->n = i + 1;
		do {
			rc = agent_call_next(c, timeout, &f, err);
			if (rc == SBX_OK && f.type != FRAME_FILE)
				rc = sbx_fail(err, SBX_EPROTO, "expected a result's bytes, got frame type %u",
					      f.type);
			else if (rc == SBX_OK && r->data[i].len + f.len > (size_t)announced)
				rc = sbx_fail(err, SBX_EPROTO, "a result longer than announced");
			else if (rc == SBX_OK && sbx_buf_append(&r->data[i], f.payload, f.len))
				rc = sbx_fail(err, SBX_ENOMEM, "out of memory for a result");
		} while (rc == SBX_OK && !(f.flags & FRAME_F_EOF));
		if (rc == SBX_OK && r->data[i].len != (size_t)announced)
			rc = sbx_fail(err, SBX_EPROTO, "a result shorter than announced");
		if (rc != SBX_OK)
			break;
	}
	if (rc != SBX_OK) {
		result_free(r);
		return rc;
	}
	*out = r;
	return SBX_OK;
}

static int execution_add_result(sbx_execution *e, sbx_result *r)
{
	sbx_result **grown = realloc(e->results, (e->nresults + 1) * sizeof(*grown));

	if (!grown)
		return SBX_ENOMEM;
	e->results = grown;
	e->results[e->nresults++] = r;
	return SBX_OK;
}

static int code_collect(struct agent_call *c, const sbx_code_opts *o, sbx_execution *e,
			char *err)
{
	int64_t ms = (int64_t)o->timeout_ms + CODE_START_MS + CODE_GRACE_MS;
	int timeout = o->timeout_ms == 0 ? -1 : ms > INT_MAX ? INT_MAX : (int)ms;

	for (;;) {
		const char *event = NULL;
		struct frame f;
		sbx_result *r = NULL;
		json_t *ev;
		int rc = agent_call_next(c, timeout, &f, err);

		if (rc != SBX_OK)
			return rc;
		if (f.type == FRAME_STDOUT || f.type == FRAME_STDERR) {
			int stream = f.type == FRAME_STDOUT ? SBX_STDOUT : SBX_STDERR;

			if (o->output_fn && f.len)
				o->output_fn(o->output_user, stream, (const char *)f.payload, f.len);
			struct sbx_buf *keep = stream == SBX_STDOUT ? &e->out : &e->err;

			if (keep->len + f.len <= CODE_OUTPUT_KEEP &&
			    sbx_buf_append(keep, f.payload, f.len))
				return sbx_fail(err, SBX_ENOMEM, "out of memory for output");
			continue;
		}
		ev = frame_json(&f);
		if (!ev || json_unpack(ev, "{s:s}", "event", &event) < 0) {
			json_decref(ev);
			return sbx_fail(err, SBX_EPROTO, "unexpected frame type %u from the agent",
					f.type);
		}
		if (!strcmp(event, "display")) {
			rc = result_read(c, ev, timeout, &r, err);
			json_decref(ev);
			if (rc != SBX_OK)
				return rc;
			if (o->result_fn)
				o->result_fn(o->result_user, r);
			if (e->nresults == CODE_RESULTS_KEEP) {
				result_free(r);
			} else if (execution_add_result(e, r) != SBX_OK) {
				result_free(r);
				return sbx_fail(err, SBX_ENOMEM, "out of memory for a result");
			}
		} else if (!strcmp(event, "result")) {
			e->final = ev;
			return SBX_OK;
		} else {
			rc = !strcmp(event, "error") ? agent_error(ev, err)
						     : sbx_fail(err, SBX_EPROTO,
								"unexpected event \"%.32s\"", event);
			json_decref(ev);
			return rc;
		}
	}
}

int sbx_run_code(sbx_sandbox *sb, const char *code, const sbx_code_opts *o, sbx_execution **out)
{
	static const sbx_code_opts defaults;
	char err[SBX_ERRMSG_MAX];
	struct agent_call c;
	sbx_execution *e;
	json_t *req;
	int rc;

	if (!sb || !code || !out)
		return SBX_EINVAL;
	if (!o)
		o = &defaults;
	req = json_pack("{s:s, s:s?, s:s?, s:I}", "op", "run_code", "language", o->language,
			"context", o->context, "timeout_ms", (json_int_t)o->timeout_ms);
	e = calloc(1, sizeof(*e));
	if (!req || !e) {
		json_decref(req);
		free(e);
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	}
	rc = agent_call_open(sb->dir, req, &c, err);
	json_decref(req);
	if (rc == SBX_OK) {
		/* The agent reads the code before it answers; a failed send shows in the answer. */
		frame_write_stream(c.fd, FRAME_FILE, code, strlen(code));
		rc = code_collect(&c, o, e, err);
		agent_call_close(&c);
	}
	if (rc != SBX_OK) {
		sbx_execution_free(e);
		return sandbox_error(sb, rc, err);
	}
	*out = e;
	return SBX_OK;
}

size_t sbx_execution_result_count(const sbx_execution *e)
{
	return e ? e->nresults : 0;
}

const sbx_result *sbx_execution_result(const sbx_execution *e, size_t i)
{
	return e && i < e->nresults ? e->results[i] : NULL;
}

const char *sbx_execution_stdout(const sbx_execution *e, size_t *len)
{
	return sbx_buf_view(e ? &e->out : NULL, len);
}

const char *sbx_execution_stderr(const sbx_execution *e, size_t *len)
{
	return sbx_buf_view(e ? &e->err : NULL, len);
}

static const char *error_field(const sbx_execution *e, const char *key)
{
	json_t *error = e ? json_object_get(e->final, "error") : NULL;

	return json_string_value(json_object_get(error, key));
}

const char *sbx_execution_error_name(const sbx_execution *e)
{
	return error_field(e, "name");
}

const char *sbx_execution_error_value(const sbx_execution *e)
{
	return error_field(e, "value");
}

const char *sbx_execution_error_traceback(const sbx_execution *e)
{
	return error_field(e, "traceback");
}

int sbx_execution_count(const sbx_execution *e)
{
	return e ? (int)json_integer_value(json_object_get(e->final, "execution_count")) : 0;
}

double sbx_execution_duration(const sbx_execution *e)
{
	return e ? (double)json_integer_value(json_object_get(e->final, "duration_ms")) / 1000.0 : 0;
}

int sbx_execution_timed_out(const sbx_execution *e)
{
	return e && json_is_true(json_object_get(e->final, "timed_out"));
}

int sbx_execution_restarted(const sbx_execution *e)
{
	return e && json_is_true(json_object_get(e->final, "restarted"));
}

const char *sbx_execution_context(const sbx_execution *e)
{
	return e ? json_string_value(json_object_get(e->final, "context")) : NULL;
}

int sbx_result_is_main(const sbx_result *r)
{
	return r ? r->main : 0;
}

size_t sbx_result_format_count(const sbx_result *r)
{
	return r ? r->n : 0;
}

const char *sbx_result_format(const sbx_result *r, size_t i)
{
	return r && i < r->n ? r->mime[i] : NULL;
}

const void *sbx_result_data(const sbx_result *r, const char *mime, size_t *len)
{
	for (size_t i = 0; r && mime && i < r->n; i++)
		if (!strcmp(r->mime[i], mime))
			return sbx_buf_view(&r->data[i], len);
	return NULL;
}

/* Text representations as strings, the rest (images) in base64, as Jupyter does. */
static json_t *result_json(const sbx_result *r)
{
	json_t *data = json_object();

	for (size_t i = 0; data && i < r->n; i++) {
		const struct sbx_buf *b = &r->data[i];
		const char *bytes = sbx_buf_view(b, NULL);
		json_t *v = NULL;

		if (base64_mime(r->mime[i])) {
			char *enc = malloc(BASE64_ENCODED_LEN(b->len) + 1);

			if (enc) {
				base64_encode((const unsigned char *)bytes, b->len, enc);
				v = json_string(enc);
				free(enc);
			}
		} else {
			v = json_stringn_lossy(bytes, b->len);
		}
		json_object_set_new(data, r->mime[i], v);
	}
	return json_pack("{s:b, s:o}", "main", r->main, "data", data);
}

static json_t *buf_json(const struct sbx_buf *b)
{
	return json_stringn_lossy(sbx_buf_view(b, NULL), b->len);
}

int sbx_execution_to_json(const sbx_execution *e, char **json)
{
	json_t *doc, *results = json_array();

	if (!e || !json) {
		json_decref(results);
		return SBX_EINVAL;
	}
	for (size_t i = 0; results && i < e->nresults; i++)
		json_array_append_new(results, result_json(e->results[i]));
	doc = json_deep_copy(e->final);
	json_object_del(doc, "event");
	if (!doc || json_object_set_new(doc, "results", results) < 0 ||
	    json_object_set_new(doc, "stdout", buf_json(&e->out)) < 0 ||
	    json_object_set_new(doc, "stderr", buf_json(&e->err)) < 0) {
		json_decref(doc);
		return SBX_ENOMEM;
	}
	*json = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return *json ? SBX_OK : SBX_ENOMEM;
}
