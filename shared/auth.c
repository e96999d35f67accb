/* AES-128-CMAC tags and the anti-replay window (docs/protocol.md 1.3). */
#include "auth.h"

#include <string.h>

void ls_mac_init(struct ls_mac *m, const uint8_t key[LS_KEY_LEN])
{
	cmac_aes128_set_key(&m->ctx, key);
}

void ls_mac_tag(struct ls_mac *m, const uint8_t *data, size_t len, uint8_t tag[8])
{
	uint8_t full[CMAC128_DIGEST_SIZE];

	cmac_aes128_update(&m->ctx, len, data);
	/* digest() also resets the running state, so the context serves the next packet. */
	cmac_aes128_digest(&m->ctx, sizeof(full), full);
	memcpy(tag, full, 8);
}

bool ls_mac_verify(struct ls_mac *m, const uint8_t *data, size_t len, const uint8_t tag[8])
{
	uint8_t want[8];
	uint8_t diff = 0;

	ls_mac_tag(m, data, len, want);
	for (int i = 0; i < 8; i++)
		diff |= (uint8_t)(want[i] ^ tag[i]);
	return diff == 0;
}

uint64_t ls_seq_extend(uint64_t top, uint16_t seq)
{
	uint64_t cand = (top & ~(uint64_t)0xffff) | seq;

	/* Pick the candidate within 2^15 of top: one cycle up or down as needed. */
	if (cand + 0x8000 < top && cand + 0x10000 > cand)
		cand += 0x10000;
	else if (cand > top + 0x8000 && cand >= 0x10000)
		cand -= 0x10000;
	return cand;
}

void ls_replay_init(struct ls_replay *r)
{
	memset(r, 0, sizeof(*r));
}

static bool bit_get(const struct ls_replay *r, uint64_t ext)
{
	uint64_t i = ext % LS_REPLAY_WINDOW;
	return r->bits[i / 64] >> (i % 64) & 1;
}

static void bit_set(struct ls_replay *r, uint64_t ext, bool on)
{
	uint64_t i = ext % LS_REPLAY_WINDOW;
	if (on)
		r->bits[i / 64] |= (uint64_t)1 << (i % 64);
	else
		r->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

bool ls_replay_check(const struct ls_replay *r, uint16_t seq, uint64_t *ext)
{
	if (!r->any) {
		*ext = seq;
		return true;
	}
	*ext = ls_seq_extend(r->top, seq);
	if (*ext > r->top)
		return true;
	if (r->top - *ext >= LS_REPLAY_WINDOW)
		return false;
	return !bit_get(r, *ext);
}

bool ls_replay_accept(struct ls_replay *r, uint64_t ext)
{
	if (!r->any) {
		r->any = true;
		r->top = ext;
		memset(r->bits, 0, sizeof(r->bits));
		bit_set(r, ext, true);
		return true;
	}
	if (ext <= r->top) {
		bit_set(r, ext, true);
		return false;
	}
	/* Slide: clear the slots the window leaves behind (all of them on a big jump). */
	uint64_t gap = ext - r->top;
	if (gap >= LS_REPLAY_WINDOW)
		memset(r->bits, 0, sizeof(r->bits));
	else
		for (uint64_t s = r->top + 1; s < ext; s++)
			bit_set(r, s, false);
	r->top = ext;
	bit_set(r, ext, true);
	return true;
}
