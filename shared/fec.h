/* Forward error correction: systematic k data + m parity over GF(2^8) (docs/protocol.md
 * 1.2). Parity row j, column i is (k ^ i) / ((k + j) ^ i) in GF(2^8) with polynomial
 * 0x11d: a Cauchy matrix with its columns scaled so that row 0 is all ones, so m = 1 is
 * plain XOR and every k x k submatrix of [I; P] is invertible (MDS). Reed-Solomon
 * arithmetic runs through ISA-L.
 *
 * A block carries one flow (one game socket to one server): a recovered packet takes
 * the addresses of the flow. Nothing here allocates after init. */
#ifndef LS_FEC_H
#define LS_FEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* A block's time limit unless set: about one frame at 60 Hz. */
#define LS_FEC_BLOCK_US_DEFAULT 16000u
#define LS_FEC_SHARD_MAX (2 + LS_MAX_PAYLOAD) /* u16 length + payload */
/* The largest payload a block carries: its shard, and so the block's parity payload,
 * is 2 bytes longer and must itself fit in LS_MAX_PAYLOAD. A longer data packet is
 * sent as version 1, outside any block (see ls_fec_enc_add). */
#define LS_FEC_MAX_DATA (LS_MAX_PAYLOAD - 2)

struct ls_fec_params {
	uint8_t k;         /* data packets per block, 1..LS_FEC_MAX_K; 0 = FEC off */
	uint8_t m;         /* parity packets per full block, 0..LS_FEC_MAX_M */
	uint32_t block_us; /* a block closes this long after its first packet */
	/* Parity packets of each full block held back to leave right after the flow's
	 * next data packet (or block_us after the block closed, if none comes), 0..m-1:
	 * a loss burst that takes a block's last packets then rarely takes all of its
	 * parity too. A recovery that needs them comes one packet interval later. */
	uint8_t spread;
};

/* "off", "K:M", "K:M:MS" (block time in ms) or "K:M:MS:S" (S = spread). Return 0 or
 * -1 with a message. */
int ls_fec_params_parse(const char *s, struct ls_fec_params *p, char *err, size_t errlen);
void ls_fec_params_fmt(const struct ls_fec_params *p, char *buf, size_t len);

/* The most parity a block closed with n < k data packets gets: ceil(m * n / k), at
 * least 1 when m > 0. The encoder gives a short block the whole part of m * n / k plus
 * what earlier short blocks left owing (docs/protocol.md 1.2). */
uint8_t ls_fec_parity_for(const struct ls_fec_params *p, uint8_t n);
/* How many of those are held back (spread): spread scaled like the parity count, and
 * always fewer than it, so every block sends some parity at once. */
uint8_t ls_fec_spread_for(const struct ls_fec_params *p, uint8_t n);

/* Element (row j, column i) of the parity matrix of a block of k data packets:
 * (k ^ i) / ((k + j) ^ i). For tests and tools; 0 when out of range. */
uint8_t ls_fec_coef(uint8_t k, uint8_t j, uint8_t i);

/* ---- sender ---- */
struct ls_fec_enc {
	struct ls_fec_params p;
	uint16_t block;       /* number of the open block */
	uint8_t n;            /* data packets in it so far */
	uint16_t maxlen;      /* longest shard so far */
	uint64_t opened_us;   /* when its first packet left */
	uint64_t last_us;     /* when its latest packet left */
	uint8_t *data;        /* LS_FEC_MAX_K shards of LS_FEC_SHARD_MAX */
	uint8_t *parity;      /* LS_FEC_MAX_M shards */
	unsigned char *gftbls; /* ISA-L tables for the current (n, m') */
	uint8_t tbl_n, tbl_m; /* the (n, m') gftbls holds; 0 = none */
	struct ls_fec_params next; /* parameters for the next block (ls_fec_enc_set) */
	/* Parity held back (spread) from the last closed block: rows held_row and on,
	 * still in the parity buffer; held_go once a data packet has left since. */
	uint8_t held_n, held_row, held_k;
	uint16_t held_block, held_len;
	bool held_go;
	uint64_t held_due_us;
	/* parity_sent counts every parity packet computed (held ones included);
	 * held_dropped those lost because a block closed before the caller took them. */
	uint64_t parity_sent, blocks, held_dropped;
	int16_t parity_owed; /* parity short blocks left owing, in 1/k packet */
};
int ls_fec_enc_init(struct ls_fec_enc *e, const struct ls_fec_params *p);
void ls_fec_enc_free(struct ls_fec_enc *e);
/* The same on the heap: NULL when memory or ISA-L is missing; delete takes NULL. */
struct ls_fec_enc *ls_fec_enc_new(const struct ls_fec_params *p);
void ls_fec_enc_delete(struct ls_fec_enc *e);
/* Change k, m or block time; takes effect at the next block. */
void ls_fec_enc_set(struct ls_fec_enc *e, const struct ls_fec_params *p);
/* Record a data packet's payload; fill the FEC fields the packet must carry (block,
 * index, and k: 0, or k when this packet fills the block). Returns true when the block
 * is now full and ls_fec_enc_close must be called to emit parity. With FEC off (k = 0)
 * or a payload longer than LS_FEC_MAX_DATA the packet joins no block: h->version is set
 * to LS_VER_PLAIN, the FEC fields to 0, and false is returned. (If a full block is not
 * closed, the next add starts a new block and that block's parity is never sent.) */
bool ls_fec_enc_add(struct ls_fec_enc *e, const uint8_t *payload, size_t len, uint64_t now_us,
		    struct ls_hdr *h);
/* True when the open block holds data and its time is up. */
bool ls_fec_enc_due(const struct ls_fec_enc *e, uint64_t now_us);
/* The earliest of the open block's deadline and that of parity held back (spread),
 * or 0 when neither is pending: the time to call ls_fec_enc_due/_take_held again. */
uint64_t ls_fec_enc_deadline(const struct ls_fec_enc *e);
/* Close the open block: compute its parity. Returns the number of parity packets to
 * send now (0 if the block was empty); parity shard j is at *shards + j *
 * LS_FEC_SHARD_MAX, *len bytes long; the header fields for parity j are block = *block,
 * index = k + j, k = *k. The shards stay valid until the next ls_fec_enc_close. With
 * spread, the block's last parity rows are held for ls_fec_enc_take_held. */
int ls_fec_enc_close(struct ls_fec_enc *e, const uint8_t **shards, size_t *len,
		     uint16_t *block, uint8_t *k);
/* Parity held back from the last closed block that is due now: a data packet has been
 * added since it closed, or its time (block_us after the close) has come. Returns the
 * count, 0 when none is due; shard j is at *shards + j * LS_FEC_SHARD_MAX, *len bytes,
 * with header fields block = *block, index = *k + *row + j, k = *k. Valid until the
 * next ls_fec_enc_close.
 *
 * The order that puts held parity where it helps: after each data packet is sent,
 * take the held parity and send it, then, if ls_fec_enc_add returned true, close the
 * block and send its parity; on the timer at ls_fec_enc_deadline, close the block if
 * it is due and take held parity. (A block closed while parity is still held drops
 * that parity, counted in held_dropped.) */
int ls_fec_enc_take_held(struct ls_fec_enc *e, uint64_t now_us, const uint8_t **shards,
			 size_t *len, uint16_t *block, uint8_t *k, uint8_t *row);

/* ---- receiver ---- */
/* Blocks tracked at once per flow (a power of two): what a forgotten block delivered is
 * remembered while it is among the newest 32, so that a copy coming late over a slower
 * path (docs/protocol.md 1.9) after its recovery is known for a duplicate. */
#define LS_FEC_DEC_BLOCKS 32
#define LS_FEC_DEC_POOL   48  /* shard buffers per decoder: a 32-packet block's sources
				* plus 16 rebuilt shards always fit */
#define LS_FEC_DEC_CACHE  64  /* decode-table cache entries per decoder */
#define LS_FEC_DEC_TIMEOUT_DEFAULT 100000 /* us, when ls_fec_dec_init is given 0 */
/* With several paths (docs/protocol.md 1.9) parity may come over a slower one than the
 * data: blocks are kept this long instead. */
#define LS_FEC_DEC_TIMEOUT_PATHS 300000
struct ls_fec_dec_block;
struct ls_fec_dec {
	struct ls_fec_dec_block *blocks; /* LS_FEC_DEC_BLOCKS */
	uint32_t timeout_us;             /* forget an unsolvable block after this */
	void *cache;                     /* decode tables per loss pattern */
	uint8_t *pool;                   /* LS_FEC_DEC_POOL shards of LS_FEC_SHARD_MAX */
	uint8_t free_shards[LS_FEC_DEC_POOL]; /* stack of free pool indices */
	uint8_t nfree;
	bool started;                    /* newest is meaningful */
	uint16_t newest;                 /* newest block number seen */
	/* recovered: data packets rebuilt and delivered; lost_blocks: blocks forgotten
	 * with data known missing; duplicates: a data or parity packet seen before (also
	 * an original arriving after its recovery); late: a packet for a block already
	 * forgotten; corrupt: a packet that is malformed or contradicts its block (k,
	 * parity length), or a rebuilt packet whose length is impossible. */
	uint64_t recovered, lost_blocks, duplicates, late, corrupt;
};
/* payload is only valid during the call; the callback must not re-enter the decoder. */
typedef void (*ls_fec_deliver_fn)(void *ctx, const uint8_t *payload, size_t len);
/* timeout_us 0 means LS_FEC_DEC_TIMEOUT_DEFAULT. Returns 0, or -1 when out of memory.
 * About 86 KiB per decoder: the shard pool (69 KiB) and the table cache (17 KiB). */
int ls_fec_dec_init(struct ls_fec_dec *d, uint32_t timeout_us);
void ls_fec_dec_free(struct ls_fec_dec *d);
/* The same on the heap: NULL when memory or ISA-L is missing; delete takes NULL. */
struct ls_fec_dec *ls_fec_dec_new(uint32_t timeout_us);
void ls_fec_dec_delete(struct ls_fec_dec *d);
/* Feed a version-2 data or parity packet. A data packet is delivered at once through
 * deliver unless it was already delivered (or recovered); when the block becomes
 * solvable, the missing data packets are delivered too. Never delivers twice. Returns
 * the number of packets delivered by this call.
 *
 * A packet for a block more than LS_FEC_DEC_BLOCKS - 1 behind the newest, or for one
 * already forgotten (timed out or evicted), counts as late: parity is dropped, data is delivered (unless this decoder still remembers
 * delivering it), since dropping real data would be worse than the rare duplicate a
 * very late copy could cause. When nothing is being tracked any more (every block has
 * timed out), any block number starts afresh, so a restarted sender is not mistaken
 * for a late one. Blocks that have timed out are retired here too, so polling
 * ls_fec_dec_expire only makes the accounting timelier. A version-1 packet has no FEC
 * fields and is delivered as is; a KEEPALIVE or FIN packet is ignored. */
int ls_fec_dec_add(struct ls_fec_dec *d, const struct ls_hdr *h, const uint8_t *payload,
		   size_t len, uint64_t now_us, ls_fec_deliver_fn deliver, void *ctx);
/* Drop blocks older than the timeout (counting those with data missing as lost). */
void ls_fec_dec_expire(struct ls_fec_dec *d, uint64_t now_us);

#endif
