/* Tunnel codec (docs/protocol.md section 1). */
#include "proto.h"

#include <string.h>

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

const char *ls_proto_strerror(int err)
{
	switch (err) {
	case LS_PE_OK: return "ok";
	case LS_PE_SHORT: return "shorter than its headers";
	case LS_PE_VERSION: return "unknown version";
	case LS_PE_FEC_RANGE: return "FEC extension out of range";
	case LS_PE_FLAGS: return "reserved or contradictory flags";
	case LS_PE_OVERSIZE: return "datagram too large";
	}
	return "unknown error";
}

size_t ls_hdr_len(uint8_t version, uint8_t flags)
{
	size_t n = LS_HDR_LEN;
	if (version == LS_VER_FEC)
		n += LS_FEC_EXT_LEN;
	if (flags & LS_F_AUTH)
		n += LS_AUTH_ID_LEN;
	return n;
}

/* Data: index < 32 (k = 0 while the block was open, else index < k); parity: k >= 1 and
 * index - k < 16. */
static int fec_valid(uint8_t index, uint8_t k)
{
	if (k > LS_FEC_MAX_K)
		return 0;
	if (k == 0 || index < k)
		return index < LS_FEC_MAX_K;
	return index - k < LS_FEC_MAX_M;
}

int ls_pkt_decode(const uint8_t *buf, size_t len, struct ls_pkt *out)
{
	struct ls_hdr *h = &out->h;

	if (len > LS_MAX_DATAGRAM)
		return LS_PE_OVERSIZE;
	if (len < LS_HDR_LEN)
		return LS_PE_SHORT;
	h->version = buf[0] >> 4;
	h->flags = buf[0] & 0x0f;
	if (h->version != LS_VER_PLAIN && h->version != LS_VER_FEC)
		return LS_PE_VERSION;
	if ((h->flags & LS_F_HANDSHAKE) ||
	    (h->flags & (LS_F_KEEPALIVE | LS_F_FIN)) == (LS_F_KEEPALIVE | LS_F_FIN))
		return LS_PE_FLAGS;
	h->token = buf[1];
	h->seq = get16(buf + 2);
	h->ts_us = get32(buf + 4);
	h->src_ip = get32(buf + 8);
	h->dst_ip = get32(buf + 12);
	h->src_port = get16(buf + 16);
	h->dst_port = get16(buf + 18);

	size_t off = LS_HDR_LEN;
	h->fec_block = 0;
	h->fec_index = 0;
	h->fec_k = 0;
	if (h->version == LS_VER_FEC) {
		if (len < off + LS_FEC_EXT_LEN)
			return LS_PE_SHORT;
		h->fec_block = get16(buf + off);
		h->fec_index = buf[off + 2];
		h->fec_k = buf[off + 3];
		off += LS_FEC_EXT_LEN;
		/* Control packets carry no block; their extension is ignored. */
		if (!(h->flags & (LS_F_KEEPALIVE | LS_F_FIN)) && !fec_valid(h->fec_index, h->fec_k))
			return LS_PE_FEC_RANGE;
	}

	size_t end = len;
	h->session_id = 0;
	out->tag = NULL;
	out->signed_len = 0;
	if (h->flags & LS_F_AUTH) {
		if (len < off + LS_AUTH_ID_LEN + LS_TAG_LEN)
			return LS_PE_SHORT;
		h->session_id = get32(buf + off);
		off += LS_AUTH_ID_LEN;
		end = len - LS_TAG_LEN;
		out->tag = buf + end;
		out->signed_len = end;
	}
	out->payload = buf + off;
	out->payload_len = end - off;
	return LS_PE_OK;
}

size_t ls_hdr_encode(const struct ls_hdr *h, uint8_t *buf)
{
	buf[0] = (uint8_t)(h->version << 4 | (h->flags & 0x0f));
	buf[1] = h->token;
	put16(buf + 2, h->seq);
	put32(buf + 4, h->ts_us);
	put32(buf + 8, h->src_ip);
	put32(buf + 12, h->dst_ip);
	put16(buf + 16, h->src_port);
	put16(buf + 18, h->dst_port);
	size_t off = LS_HDR_LEN;
	if (h->version == LS_VER_FEC) {
		put16(buf + off, h->fec_block);
		buf[off + 2] = h->fec_index;
		buf[off + 3] = h->fec_k;
		off += LS_FEC_EXT_LEN;
	}
	if (h->flags & LS_F_AUTH) {
		put32(buf + off, h->session_id);
		off += LS_AUTH_ID_LEN;
	}
	return off;
}

void ls_keepalive_to_hdr(const struct ls_keepalive *ka, struct ls_hdr *h)
{
	h->src_ip = ka->rx_count;
	h->dst_ip = ka->rx_highest;
	h->src_port = ka->kind;
	h->dst_port = ka->reserved;
}

void ls_keepalive_from_hdr(const struct ls_hdr *h, struct ls_keepalive *ka)
{
	ka->rx_count = h->src_ip;
	ka->rx_highest = h->dst_ip;
	ka->kind = h->src_port;
	ka->reserved = h->dst_port;
}
