#define _GNU_SOURCE
#include "vsock_packet.h"

#include <endian.h>
#include <string.h>

/* The header exactly as it travels, little-endian and packed. */
struct vsock_wire_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vsock_wire_hdr) == VSOCK_HDR_SIZE, "vsock header layout");

const char *vsock_drop_name(enum vsock_drop why)
{
	static const char *const names[VSOCK_DROP_KINDS] = {
		[VSOCK_DROP_NONE] = "accepted",
		[VSOCK_DROP_SHORT_HDR] = "packet shorter than its header",
		[VSOCK_DROP_SRC_CID] = "source CID is not the guest's",
		[VSOCK_DROP_DST_CID] = "destination CID is not the host",
		[VSOCK_DROP_TYPE] = "socket type is not stream",
		[VSOCK_DROP_OP] = "unknown op",
		[VSOCK_DROP_TOO_LONG] = "payload above 64 KiB",
		[VSOCK_DROP_LEN] = "header len does not match the buffer",
		[VSOCK_DROP_CREDIT] = "guest sent more than the credit we gave",
		[VSOCK_DROP_RX_BUF] = "rx buffer too small for a header and data",
	};

	return why < VSOCK_DROP_KINDS ? names[why] : "?";
}

enum vsock_drop vsock_pkt_parse(const struct virtq_req *r, uint64_t guest_cid,
				struct vsock_pkt *p)
{
	struct vsock_wire_hdr h;

	/* One copy out of guest memory: the guest can rewrite the buffer while we look. */
	if (virtq_req_read(r, 0, &h, sizeof(h)) != sizeof(h))
		return VSOCK_DROP_SHORT_HDR;
	p->src_cid = le64toh(h.src_cid);
	p->dst_cid = le64toh(h.dst_cid);
	p->src_port = le32toh(h.src_port);
	p->dst_port = le32toh(h.dst_port);
	p->len = le32toh(h.len);
	p->type = le16toh(h.type);
	p->op = le16toh(h.op);
	p->flags = le32toh(h.flags);
	p->buf_alloc = le32toh(h.buf_alloc);
	p->fwd_cnt = le32toh(h.fwd_cnt);

	if (p->src_cid != guest_cid)
		return VSOCK_DROP_SRC_CID;
	if (p->dst_cid != VSOCK_HOST_CID)
		return VSOCK_DROP_DST_CID;
	if (p->type != VSOCK_TYPE_STREAM)
		return VSOCK_DROP_TYPE;
	if (p->op < VSOCK_OP_REQUEST || p->op > VSOCK_OP_CREDIT_REQUEST)
		return VSOCK_DROP_OP;
	if (p->len > VSOCK_MAX_PAYLOAD)
		return VSOCK_DROP_TOO_LONG;
	if (p->len != r->out_len - VSOCK_HDR_SIZE || (p->len && p->op != VSOCK_OP_RW))
		return VSOCK_DROP_LEN;
	return VSOCK_DROP_NONE;
}

void vsock_pkt_write(const struct virtq_req *r, const struct vsock_pkt *p)
{
	struct vsock_wire_hdr h = {
		.src_cid = htole64(p->src_cid),
		.dst_cid = htole64(p->dst_cid),
		.src_port = htole32(p->src_port),
		.dst_port = htole32(p->dst_port),
		.len = htole32(p->len),
		.type = htole16(p->type),
		.op = htole16(p->op),
		.flags = htole32(p->flags),
		.buf_alloc = htole32(p->buf_alloc),
		.fwd_cnt = htole32(p->fwd_cnt),
	};

	virtq_req_write(r, 0, &h, sizeof(h));
}
