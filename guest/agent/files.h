/* Helpers shared by the file operations (files.c: write and read, streamed; fsops.c: the rest). */
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

/* mkdir -p: the missing directories of path, the last with mode, the ones above with 0755.
 * An existing directory at path is success. 0 or -errno. */
int fs_mkdirs(const char *path, mode_t mode);
/* "file", "dir", "symlink" or "other". */
const char *fs_type_name(mode_t mode);
