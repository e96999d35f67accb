/* AES-128-CMAC tags and the anti-replay window (docs/protocol.md 1.3). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

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

	ls_mac_tag(m, data, len, want);
	return ls_bytes_equal(want, tag, 8);
}

void ls_mac_full(struct ls_mac *m, const uint8_t *data, size_t len, uint8_t out[16])
{
	cmac_aes128_update(&m->ctx, len, data);
	cmac_aes128_digest(&m->ctx, CMAC128_DIGEST_SIZE, out);
}

bool ls_bytes_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)(a[i] ^ b[i]);
	return diff == 0;
}

int ls_random_bytes(void *out, size_t len)
{
	uint8_t *p = out;
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(p + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < len) {
		/* Kernels without getrandom still have the device. */
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		while (got < len) {
			ssize_t n = read(fd, p + got, len - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(fd);
	}
	return got == len ? 0 : -1;
}

int ls_prf_init(struct ls_prf *p)
{
	uint8_t key[LS_KEY_LEN];

	if (ls_random_bytes(key, sizeof(key)) < 0)
		return -1;
	ls_mac_init(&p->mac, key);
	memset(key, 0, sizeof(key));
	p->counter = 0;
	return 0;
}

uint64_t ls_prf_next(struct ls_prf *p)
{
	uint8_t in[9], out[16];
	uint64_t v = 0;

	/* Domain 0x00: counters; other users of the same key start with another byte. */
	in[0] = 0;
	for (int i = 0; i < 8; i++)
		in[1 + i] = (uint8_t)(p->counter >> (56 - 8 * i));
	p->counter++;
	ls_mac_full(&p->mac, in, sizeof(in), out);
	for (int i = 0; i < 8; i++)
		v = v << 8 | out[i];
	return v;
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

bool ls_replay_seen(const struct ls_replay *r, uint64_t ext)
{
	return r->any && ext <= r->top && r->top - ext < LS_REPLAY_WINDOW && bit_get(r, ext);
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
