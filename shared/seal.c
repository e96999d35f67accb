/* Sealing datagrams and sending parity (docs/protocol.md 1.2, 1.3). */
#include "seal.h"

#include <string.h>

#include "fec.h"

size_t ls_seal_at(const struct ls_seal *k, struct ls_hdr *h, uint8_t *buf, size_t payload_len)
{
	size_t n;

	if (k->mac) {
		h->flags |= LS_F_AUTH;
		h->token = k->token;
		h->session_id = k->session_id;
	} else {
		h->flags &= (uint8_t)~LS_F_AUTH;
		h->token = 0;
		h->session_id = 0;
	}
	n = ls_hdr_encode(h, buf) + payload_len;
	if (k->mac) {
		ls_mac_tag(k->mac, buf, n, buf + n);
		n += LS_TAG_LEN;
	}
	return n;
}

size_t ls_seal_in_place(const struct ls_seal *k, struct ls_hdr *h, uint8_t *payload,
			size_t payload_len, uint8_t **start)
{
	uint8_t flags = k->mac ? (uint8_t)(h->flags | LS_F_AUTH) : (uint8_t)(h->flags & ~LS_F_AUTH);

	*start = payload - ls_hdr_len(h->version, flags);
	return ls_seal_at(k, h, *start, payload_len);
}

int ls_parity_send(const struct ls_seal *k, const struct ls_hdr *addrs, uint16_t *next_seq,
		   uint32_t ts, const uint8_t *shards, size_t len, uint16_t block, uint8_t fec_k,
		   uint8_t first_row, int count, const struct ls_parity_sink *sink)
{
	size_t wire = ls_hdr_len(LS_VER_FEC, k->mac ? LS_F_AUTH : 0) + len +
		      (k->mac ? LS_TAG_LEN : 0);
	int sent = 0;

	for (int j = 0; j < count; j++) {
		struct ls_hdr h = {
			.version = LS_VER_FEC,
			.ts_us = ts,
			.src_ip = addrs->src_ip,
			.src_port = addrs->src_port,
			.dst_ip = addrs->dst_ip,
			.dst_port = addrs->dst_port,
			.fec_block = block,
			.fec_index = (uint8_t)(fec_k + first_row + j),
			.fec_k = fec_k,
		};
		uint8_t *slot = sink->slot(sink->ctx, wire), *start;
		size_t n;

		if (!slot)
			continue;
		h.seq = (*next_seq)++;
		memcpy(slot + LS_SEAL_HEADROOM, shards + (size_t)j * LS_FEC_SHARD_MAX, len);
		n = ls_seal_in_place(k, &h, slot + LS_SEAL_HEADROOM, len, &start);
		sink->queue(sink->ctx, start, n);
		sent++;
	}
	return sent;
}
