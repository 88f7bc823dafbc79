#include <sandbox.h>
const char *sbx_version(void) { return "0.1.0"; }
