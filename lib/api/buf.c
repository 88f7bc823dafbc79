#include <stdlib.h>
#include <string.h>

#include "internal.h"

int sbx_buf_append(struct sbx_buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;
		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return SBX_ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
	return SBX_OK;
}

const char *sbx_buf_view(const struct sbx_buf *b, size_t *len)
{
	if (len)
		*len = b ? b->len : 0;
	return b && b->data ? b->data : "";
}
