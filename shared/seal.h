/* Sealing a tunnel datagram (headers in front of the payload, the AUTH tag behind it,
 * docs/protocol.md 1.3) and sending a block's parity (1.2): written once, used by the
 * client and the proxy. No allocation, no I/O: callers bring buffers and queue. */
#ifndef LS_SEAL_H
#define LS_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "proto.h"

/* Room callers leave in front of a payload for the largest headers. */
#define LS_SEAL_HEADROOM (LS_HDR_LEN + LS_FEC_EXT_LEN + LS_AUTH_ID_LEN)

/* Who seals: a session's id, token and the key of its current lifetime, or mac NULL
 * for an unauthenticated session (token 0, no AUTH). */
struct ls_seal {
	struct ls_mac *mac;
	uint8_t token;
	uint32_t session_id;
};

/* h brings version, flags (AUTH is set or cleared here), seq, ts_us, addresses and FEC
 * fields; the payload lies at buf + ls_hdr_len(h) already. Writes the headers at buf
 * and the tag after the payload. Returns the datagram's length. */
size_t ls_seal_at(const struct ls_seal *k, struct ls_hdr *h, uint8_t *buf, size_t payload_len);

/* The same for a payload with LS_SEAL_HEADROOM bytes of room in front of it (and
 * LS_TAG_LEN behind): *start is where the datagram begins. */
size_t ls_seal_in_place(const struct ls_seal *k, struct ls_hdr *h, uint8_t *payload,
			size_t payload_len, uint8_t **start);

/* Where parity goes: a slot of LS_SEAL_HEADROOM + LS_FEC_SHARD_MAX + LS_TAG_LEN bytes
 * for one datagram of wire_len bytes, or NULL when it may not be sent (the caller has
 * counted why); then the sealed datagram to queue. */
struct ls_parity_sink {
	uint8_t *(*slot)(void *ctx, size_t wire_len);
	void (*queue)(void *ctx, uint8_t *start, size_t len);
	void *ctx;
};

/* Parity rows first_row .. first_row+count-1 of a closed block (shard j of the call is
 * len bytes at shards + j * LS_FEC_SHARD_MAX): version 2 datagrams carrying the flow's
 * addresses (src/dst of addrs), each taking seq *next_seq++. Returns the parity
 * packets queued. */
int ls_parity_send(const struct ls_seal *k, const struct ls_hdr *addrs, uint16_t *next_seq,
		   uint32_t ts, const uint8_t *shards, size_t len, uint16_t block, uint8_t fec_k,
		   uint8_t first_row, int count, const struct ls_parity_sink *sink);

#endif
