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
	case LS_PE_FLAGS: return "contradictory flags";
	case LS_PE_OVERSIZE: return "datagram too large";
	case LS_PE_KIND: return "keepalive of unknown kind";
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

	if (len > LS_MAX_RELAY_DATAGRAM)
		return LS_PE_OVERSIZE;
	if (len < LS_HDR_LEN)
		return LS_PE_SHORT;
	h->version = buf[0] >> 4;
	h->flags = buf[0] & 0x0f;
	if (h->version != LS_VER_PLAIN && h->version != LS_VER_FEC && h->version != LS_VER_RELAY)
		return LS_PE_VERSION;
	if (h->version != LS_VER_RELAY && len > LS_MAX_DATAGRAM)
		return LS_PE_OVERSIZE;
	/* A relay hop carries data only, always authenticated: its control packets
	 * (keepalive, FIN, handshake) are version 1. */
	if (h->version == LS_VER_RELAY && h->flags != LS_F_AUTH)
		return LS_PE_FLAGS;
	/* A handshake is always authenticated and never a keepalive or FIN too. */
	if ((h->flags & (LS_F_KEEPALIVE | LS_F_FIN)) == (LS_F_KEEPALIVE | LS_F_FIN) ||
	    ((h->flags & LS_F_HANDSHAKE) &&
	     (h->flags & (LS_F_KEEPALIVE | LS_F_FIN | LS_F_AUTH)) != LS_F_AUTH))
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
		if (!(h->flags & (LS_F_KEEPALIVE | LS_F_FIN | LS_F_HANDSHAKE)) &&
		    !fec_valid(h->fec_index, h->fec_k))
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
	/* The same limit with and without AUTH: the headers never make room for more. A
	 * relay hop's payload is a whole tunnel datagram. */
	if (out->payload_len > (h->version == LS_VER_RELAY ? LS_MAX_DATAGRAM : LS_MAX_PAYLOAD))
		return LS_PE_OVERSIZE;
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
	h->src_port = (uint16_t)(ka->burst << 8 | (ka->role & 0x0f) << 4 | (ka->kind & 0x0f));
	if (ka->kind == LS_KA_REPLY)
		h->dst_port = ka->path_rx;
	else
		h->dst_port = (uint16_t)(ka->fec_k << 8 | ka->fec_m);
}

int ls_keepalive_from_hdr(const struct ls_hdr *h, struct ls_keepalive *ka)
{
	ka->rx_count = h->src_ip;
	ka->rx_highest = h->dst_ip;
	ka->burst = (uint8_t)(h->src_port >> 8);
	ka->kind = (uint8_t)(h->src_port & 0x0f);
	ka->role = (uint8_t)((h->src_port >> 4) & 0x0f);
	ka->fec_k = ka->fec_m = 0;
	ka->path_rx = 0;
	if (ka->kind > LS_KA_REPLY || ka->role > LS_ROLE_MAX ||
	    (ka->kind == LS_KA_REPLY && ka->role))
		return LS_PE_KIND;
	if (ka->kind == LS_KA_REPLY) {
		/* A reply asks nothing: those two bytes count the request's path. */
		ka->path_rx = h->dst_port;
		return LS_PE_OK;
	}
	ka->fec_k = (uint8_t)(h->dst_port >> 8);
	ka->fec_m = (uint8_t)h->dst_port;
	if ((ka->fec_k > LS_FEC_MAX_K && ka->fec_k != LS_KA_FEC_AUTO) || ka->fec_m > LS_FEC_MAX_M)
		return LS_PE_FEC_RANGE;
	return LS_PE_OK;
}

void ls_handshake_to_hdr(const struct ls_handshake *hs, struct ls_hdr *h)
{
	h->src_ip = (uint32_t)(hs->value >> 32);
	h->dst_ip = (uint32_t)hs->value;
	h->src_port = (uint16_t)(hs->kind << 8);
	h->dst_port = 0;
}

int ls_handshake_from_hdr(const struct ls_hdr *h, struct ls_handshake *hs)
{
	hs->value = (uint64_t)h->src_ip << 32 | h->dst_ip;
	hs->kind = (uint8_t)(h->src_port >> 8);
	if (hs->kind > LS_HS_ACK || (h->src_port & 0xff) || h->dst_port)
		return LS_PE_KIND;
	return LS_PE_OK;
}

void ls_rx_note(struct ls_rx_count *r, uint64_t ext)
{
	r->count++;
	if (!r->any) {
		r->top = ext;
		r->any = true;
		return;
	}
	if (ext > r->top) {
		uint64_t gap = ext - r->top - 1;

		if (gap) {
			r->gap_lost = gap > UINT32_MAX - r->gap_lost ? UINT32_MAX
								    : r->gap_lost + (uint32_t)gap;
			r->gap_runs++;
		}
		r->top = ext;
	} else if (r->gap_lost) {
		/* A reordered packet fills a hole that was counted as lost. */
		r->gap_lost--;
	}
}

void ls_rx_report(struct ls_rx_count *r, struct ls_keepalive *ka)
{
	uint64_t b = 0;

	ka->rx_count = r->count;
	ka->rx_highest = (uint32_t)r->top;
	if (r->gap_lost && r->gap_runs) {
		b = ((uint64_t)r->gap_lost * 16 + r->gap_runs / 2) / r->gap_runs;
		/* Reordered packets may have shrunk a run below one lost packet. */
		b = b < 16 ? 16 : (b > 255 ? 255 : b);
	}
	ka->burst = (uint8_t)b;
	r->gap_lost = 0;
	r->gap_runs = 0;
}

bool ls_rx_growth(struct ls_rx_base *b, const struct ls_keepalive *ka, uint32_t *expected,
		  uint32_t *received)
{
	int32_t e = (int32_t)(ka->rx_highest - b->highest);
	int32_t r = (int32_t)(ka->rx_count - b->count);
	bool ok = b->any && e > 0;

	if (ok) {
		*expected = (uint32_t)e;
		*received = r < 0 ? 0 : (r > e ? (uint32_t)e : (uint32_t)r);
	}
	b->any = true;
	b->highest = ka->rx_highest;
	b->count = ka->rx_count;
	return ok;
}
