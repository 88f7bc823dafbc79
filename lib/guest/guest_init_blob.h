/* The static guest init (guest/init.c), embedded at build time by guest/CMakeLists.txt. Hidden
 * inside libsandbox (the library is built with -fvisibility=hidden), never exported. */
#pragma once

extern const unsigned char sbx_guest_init[];
extern const unsigned long sbx_guest_init_len;
