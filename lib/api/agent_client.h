/* One request to the guest agent: a connection through the VMM's vsock bridge
 * (<sandbox dir>/vsock.sock, "CONNECT 1024"), the request frame, then the answer's frames. */
#pragma once
#include <jansson.h>

#include "agent/proto.h"

struct agent_call {
	int fd;
	struct frame_reader *reader;
};

/* Connects and sends req (a JSON object; "v" is added). SBX code, message in err. */
int agent_call_open(const char *sandbox_dir, json_t *req, struct agent_call *c, char *err);
/* Next frame of the answer. SBX_OK, SBX_EPROTO (malformed, or the agent hung up before its
 * final event), SBX_ETIMEDOUT. */
int agent_call_next(struct agent_call *c, int timeout_ms, struct frame *f, char *err);
void agent_call_close(struct agent_call *c);
/* The SBX code and message of an {"event":"error"} answer. */
int agent_error(json_t *event, char *err);
/* Reads frames until the final event and returns it (new reference) in *event: SBX_OK for a
 * "result" or "exit", the mapped code for an "error". Data frames are refused as SBX_EPROTO. */
int agent_call_finish(struct agent_call *c, int timeout_ms, json_t **event, char *err);
/* open + finish + close for requests whose answer is one event. */
int agent_request(const char *sandbox_dir, json_t *req, int timeout_ms, json_t **event,
		  char *err);
