#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/host_probe.h"

int sbx_host_probe(int *virt, char **detail)
{
	char buf[256];
	int kind = host_probe(buf, sizeof(buf));

	if (detail) {
		char *d = strdup(buf);
		if (!d)
			return SBX_ENOMEM;
		*detail = d;
	}
	*virt = kind;
	return SBX_OK;
}
