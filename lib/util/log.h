/* Diagnostics of the VMM process go to its stderr, which the library keeps as vmm.log. */
#pragma once
__attribute__((format(printf, 1, 2))) void vmm_log(const char *fmt, ...);
