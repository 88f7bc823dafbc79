/* JSON strings from bytes that may not be UTF-8 (file names, program output): invalid bytes
 * become U+FFFD, so anything can travel in JSON. Shared by the agent and the library. */
#pragma once
#include <jansson.h>
#include <stddef.h>

/* New reference, or NULL when out of memory. s may contain NULs. */
json_t *json_stringn_lossy(const char *s, size_t len);
json_t *json_string_lossy(const char *s);
