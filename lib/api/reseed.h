/* A fresh identity for a guest restored from a shared snapshot (fork children, sandboxes made
 * from a template): new entropy for its CRNG and a hostname derived from its sandbox id. */
#pragma once
#include "internal.h"

/* Sends the agent's "reseed" op. SBX code, message in err. */
int sandbox_reseed(sbx_sandbox *sb, char *err);
