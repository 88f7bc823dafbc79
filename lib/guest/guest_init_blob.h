/* The static guest programs, embedded at build time by guest/CMakeLists.txt: the init
 * (guest/init.c, the initramfs's /init) and the agent (guest/agent/, the initramfs's /agent).
 * Hidden inside libsandbox (the library is built with -fvisibility=hidden), never exported. */
#pragma once

extern const unsigned char sbx_guest_init[];
extern const unsigned long sbx_guest_init_len;
extern const unsigned char sbx_guest_agent[];
extern const unsigned long sbx_guest_agent_len;
