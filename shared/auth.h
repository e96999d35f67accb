/* Packet authentication (AES-128-CMAC truncated to 8 bytes, through nettle) and the
 * anti-replay window over the 16-bit sequence numbers, extended to 64 bits. */
#ifndef LS_AUTH_H
#define LS_AUTH_H

#include <nettle/cmac.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LS_KEY_LEN 16

struct ls_mac {
	struct cmac_aes128_ctx ctx;
};
void ls_mac_init(struct ls_mac *m, const uint8_t key[LS_KEY_LEN]);
/* Tag over data[0..len): the first 8 bytes of the CMAC. */
void ls_mac_tag(struct ls_mac *m, const uint8_t *data, size_t len, uint8_t tag[8]);
/* Constant-time check of an 8-byte tag. */
bool ls_mac_verify(struct ls_mac *m, const uint8_t *data, size_t len, const uint8_t tag[8]);
/* The whole 16-byte CMAC: the PRF of key derivation and of the proxy's cookies. */
void ls_mac_full(struct ls_mac *m, const uint8_t *data, size_t len, uint8_t out[16]);
/* Constant-time comparison of n bytes. */
bool ls_bytes_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* Bytes from the kernel's CSPRNG (getrandom, else /dev/urandom); -1 when neither
 * answers, and then nothing must be sent that relies on them. */
int ls_random_bytes(void *out, size_t len);

/* A keyed PRF (AES-128-CMAC under a key drawn from the kernel's CSPRNG at start):
 * every value on the wire that an attacker must not guess comes from it or from
 * ls_random_bytes, never from a plain generator whose outputs reveal its state. */
struct ls_prf {
	struct ls_mac mac;
	uint64_t counter;
};
int ls_prf_init(struct ls_prf *p);
/* The next 64 unpredictable bits (a counter through the PRF: no system call). */
uint64_t ls_prf_next(struct ls_prf *p);

/* Extend a 16-bit seq to 64 bits: the value nearest to `top` (the highest seen). */
uint64_t ls_seq_extend(uint64_t top, uint16_t seq);

#define LS_REPLAY_WINDOW 1024 /* bits; far below 2^15 so extension stays unambiguous */
struct ls_replay {
	uint64_t top;   /* highest accepted extended seq */
	uint64_t bits[LS_REPLAY_WINDOW / 64];
	bool any;       /* something was accepted */
};
void ls_replay_init(struct ls_replay *r);
/* Would seq be fresh? Sets *ext to its extended value. Does not record it. */
bool ls_replay_check(const struct ls_replay *r, uint16_t seq, uint64_t *ext);
/* Was ext accepted already (within the window)? A repeat, as opposed to a packet too
 * old to tell. */
bool ls_replay_seen(const struct ls_replay *r, uint64_t ext);
/* Record ext as seen (after the packet proved authentic). Returns true when ext is
 * newer than anything before (the condition for roaming). */
bool ls_replay_accept(struct ls_replay *r, uint64_t ext);

#endif
