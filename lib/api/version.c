#include <stdlib.h>

#include "internal.h"

#define SBX_STR_(x) #x
#define SBX_STR(x) SBX_STR_(x)

const char *sbx_version(void)
{
	return SBX_STR(SBX_VERSION_MAJOR) "." SBX_STR(SBX_VERSION_MINOR) "." SBX_STR(
		SBX_VERSION_PATCH);
}

void sbx_free(void *p)
{
	free(p);
}
