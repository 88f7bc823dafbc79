/* virtio-vsock wire format (virtio 1.1 §5.10.6): the packet header, its constants, and the checks
 * a guest-sent header passes before anything acts on it. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "queue.h"

#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1

#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7

#define VSOCK_SHUTDOWN_RCV 1  /* the sender will receive nothing more */
#define VSOCK_SHUTDOWN_SEND 2 /* the sender will send nothing more */
#define VSOCK_SHUTDOWN_BOTH 3

#define VSOCK_EVENT_TRANSPORT_RESET 0

/* Largest payload a packet may carry, as in Linux (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PAYLOAD (64 * 1024)
#define VSOCK_HDR_SIZE 44

/* A header in host byte order. */
struct vsock_pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

/* Why a guest packet (or rx buffer) was thrown away; 0 is "accepted". */
enum vsock_drop {
	VSOCK_DROP_NONE,
	VSOCK_DROP_SHORT_HDR,
	VSOCK_DROP_SRC_CID,
	VSOCK_DROP_DST_CID,
	VSOCK_DROP_TYPE,
	VSOCK_DROP_OP,
	VSOCK_DROP_TOO_LONG,
	VSOCK_DROP_LEN,
	VSOCK_DROP_CREDIT,
	VSOCK_DROP_RX_BUF,
	VSOCK_DROP_KINDS
};

const char *vsock_drop_name(enum vsock_drop why);

/* Reads the header of a guest tx request into p and checks every field: our guest's source CID,
 * the host as destination, a stream socket, a known op, a payload of at most VSOCK_MAX_PAYLOAD
 * that the readable part of the chain holds exactly, and no payload on ops that take none. */
enum vsock_drop vsock_pkt_parse(const struct virtq_req *r, uint64_t guest_cid,
				struct vsock_pkt *p);

/* Writes p at the start of the request's writable segments (the caller checked in_len). */
void vsock_pkt_write(const struct virtq_req *r, const struct vsock_pkt *p);

