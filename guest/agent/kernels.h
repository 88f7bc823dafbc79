/* The code interpreter's languages and their kernels (docs/code-interpreter.md): which program
 * runs a context of each language, and the kernel files embedded in the agent, written to
 * KERNELS_DIR when the agent starts. */
#pragma once
#include <stddef.h>

#define KERNELS_DIR "/run/sandbox-agent/kernels"
#define LANGUAGE_ARGV_MAX 8
#define LANGUAGES_MAX 8

/* A file of guest/kernels/, generated into the agent by guest/CMakeLists.txt. */
struct embedded_file {
	const char *name;
	const unsigned char *data;
	unsigned long len;
};
extern const struct embedded_file kernel_files[];
extern const unsigned kernel_files_count;

struct language {
	const char *name;
	const char *aliases[3];
	/* The kernel's command line; an element starting with '@' names a file of KERNELS_DIR. */
	const char *argv[LANGUAGE_ARGV_MAX];
	/* What a sandbox lacks when argv[0] is missing, for the error message. */
	const char *needs;
};

/* Writes the embedded kernels to KERNELS_DIR. 0 or -errno. */
int kernels_install(void);
/* The language called name (or one of its aliases); NULL if unknown. */
const struct language *language_find(const char *name);
/* "python, javascript, ..." (from the table) into buf, for error messages. */
void language_names(char *buf, size_t len);
/* The language's place in the table: 0 .. LANGUAGES_MAX - 1. */
unsigned language_index(const struct language *l);
/* The kernel's argv with '@' files resolved; NULL-terminated, in buf (strings in store). */
int language_argv(const struct language *l, char *store, size_t store_len,
		  char *argv[LANGUAGE_ARGV_MAX + 1]);
