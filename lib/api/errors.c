#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *sbx_strerror(int code)
{
	switch (code) {
	case SBX_OK:
		return "success";
#define SBX_ERROR_MESSAGE_(name, value, msg)                                                       \
	case SBX_##name:                                                                           \
		return msg;
		SBX_ERROR_MAP(SBX_ERROR_MESSAGE_)
#undef SBX_ERROR_MESSAGE_
	}
	return "unknown error";
}

const char *sbx_err_name(int code)
{
	switch (code) {
	case SBX_OK:
		return "SBX_OK";
#define SBX_ERROR_NAME_(name, value, msg)                                                          \
	case SBX_##name:                                                                           \
		return "SBX_" #name;
		SBX_ERROR_MAP(SBX_ERROR_NAME_)
#undef SBX_ERROR_NAME_
	}
	return "SBX_UNKNOWN";
}

int sbx_err_from_name(const char *name)
{
#define SBX_ERROR_LOOKUP_(n, value, msg)                                                           \
	if (strcmp(name, #n) == 0)                                                                 \
		return value;
	SBX_ERROR_MAP(SBX_ERROR_LOOKUP_)
#undef SBX_ERROR_LOOKUP_
	return SBX_EVMM;
}

int sbx_fail(char *buf, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, SBX_ERRMSG_MAX, fmt, ap);
	va_end(ap);
	return code;
}
