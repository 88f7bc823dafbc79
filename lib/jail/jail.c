#define _GNU_SOURCE
#include "jail.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int prot_index(unsigned prot)
{
	for (int i = 0; i < JAIL_PROT_COUNT; i++)
		if (prot == 1u << i)
			return i;
	return -1;
}

const char *jail_prot_name(unsigned prot)
{
	switch (prot) {
#define JAIL_PROT_NAME_(name, bit, label)                                                          \
	case SBX_PROT_##name:                                                                      \
		return label;
		SBX_PROTECTION_MAP(JAIL_PROT_NAME_)
#undef JAIL_PROT_NAME_
	}
	return "unknown";
}

void jail_report_set(struct jail_report *r, unsigned prot, int applied, const char *fmt, ...)
{
	int i = prot_index(prot);
	va_list ap;

	if (i < 0)
		return;
	r->known |= prot;
	if (applied)
		r->applied |= prot;
	else
		r->applied &= ~prot;
	va_start(ap, fmt);
	vsnprintf(r->detail[i], sizeof(r->detail[i]), fmt, ap);
	va_end(ap);
}

const char *jail_report_detail(const struct jail_report *r, unsigned prot)
{
	int i = prot_index(prot);

	return i < 0 ? "" : r->detail[i];
}

unsigned jail_report_first_missing(const struct jail_report *r, unsigned prots)
{
	for (int i = 0; i < JAIL_PROT_COUNT; i++)
		if ((prots & (1u << i)) && !(r->applied & (1u << i)))
			return 1u << i;
	return 0;
}

json_t *jail_report_json(const struct jail_report *r)
{
	json_t *list = json_array();

	if (!list)
		return NULL;
	for (int i = 0; i < JAIL_PROT_COUNT; i++) {
		unsigned bit = 1u << i;
		const char *detail = (r->known & bit) ? r->detail[i] : "not attempted";
		json_t *p = json_pack("{s:s, s:b, s:s}", "name", jail_prot_name(bit), "applied",
				      (r->applied & bit) != 0, "detail", detail);
		if (json_array_append_new(list, p) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return json_pack("{s:i, s:o}", "applied", (int)r->applied, "protections", list);
}

int jail_path_relative(const char *path, char *out, size_t len)
{
	const char *p = path;

	if (!p || p[0] != '/' || p[1] == 0)
		return -EINVAL;
	for (const char *c = p + 1; *c;) {
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return -EINVAL;
		c = *end ? end + 1 : end;
		if (*end && !*c)
			return -EINVAL; /* trailing slash */
	}
	if (strlen(p + 1) >= len)
		return -ENAMETOOLONG;
	strcpy(out, p + 1);
	return 0;
}
