/* The SBX error name ("ENOENT", "ESNAPSHOT", ...) the VMM reports for an internal -errno, in
 * "error" events and in command answers; the library maps it back (sbx_err_from_name). */
#pragma once

const char *vmm_errcode(int err);
