/* The VMM's command socket: any process of the sandbox's user connects to <dir>/control.sock
 * (the library does for attached handles and the CLI), sends one JSON line per command and reads
 * one JSON line back. Commands (docs/networking.md, "Control socket"; docs/snapshot.md,
 * "Protocol"):
 *   {"cmd": "net_policy", "policy": {...}}   replace the egress policy
 *   {"cmd": "net_policy_get"}                -> {"ok": true, "policy": {...}}
 *   {"cmd": "net_log", "cursor": N, "max": M} -> {"ok": true, "denials": [...], ...}
 *   {"cmd": "snapshot"} + memory and state fds -> {"ok": true, "disks": [...], ...}, guest paused
 *   {"cmd": "resume"} / {"cmd": "hibernate"}  after a snapshot, on its connection (snapctl.h)
 * Every reply has "ok"; a failed one also "code" (an SBX error name) and "message".
 * Served by the main thread, between the control channel and the signals. */
#pragma once
#include <poll.h>
#include <stddef.h>

#include "machine.h"

#define CONTROL_SERVER_MAX_CLIENTS 8
/* The listening socket and the clients: what the poll set gets. */
#define CONTROL_SERVER_MAX_FDS (1 + CONTROL_SERVER_MAX_CLIENTS)

struct control_server;

/* Listens on path (replacing nothing: the sandbox's directory is new). -errno. */
int control_server_open(const char *path, struct control_server **out);
/* Puts the server's fds into p (room for CONTROL_SERVER_MAX_FDS); returns how many. */
size_t control_server_pollfds(const struct control_server *s, struct pollfd *p);
/* Serves what poll reported on the fds control_server_pollfds gave (same order, same count). */
void control_server_serve(struct control_server *s, const struct pollfd *p, size_t n,
			  struct machine *m);
