/* Helpers of the end-to-end programs that restore snapshots (e2e_snapshot, e2e_fork). */
#pragma once
#include <sandbox.h>

#include "e2e_common.h"

#define E2E_CELL_TIMEOUT_MS (300 * 1000)

/* Processes named sandbox-vmm: what is left running. */
int e2e_vmm_count(void);
/* Extents of a file and how many of them are shared with another file (reflinks), by FIEMAP. */
void e2e_extents(const char *path, unsigned *total, unsigned *shared);
/* The trailing expression's text/plain of a Python cell, malloc'd ("" on failure, printed). */
char *e2e_py(sbx_sandbox *sb, const char *code);
/* Whether the cell's text/plain is want (the difference printed). */
int e2e_py_is(sbx_sandbox *sb, const char *code, const char *want);
/* The guest's wall clock lies between the host's before and after reading it, give or take a
 * second (printed, with when). */
int e2e_check_clock(sbx_sandbox *sb, const char *when);
