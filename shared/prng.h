/* The project's own pseudo-random generator: xoshiro256** seeded through splitmix64.
 * Written here rather than taken from libc so that a seed means the same sequence on
 * every machine and libc, which is what makes a netsim run, a synthetic data set or a
 * trained forest reproducible. Not for secrets. */
#ifndef LS_PRNG_H
#define LS_PRNG_H

#include <stdint.h>

struct ls_prng {
	uint64_t s[4];
};

static inline uint64_t ls_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* One independent stream per (seed, stream) pair: the stream number is mixed into the
 * splitmix64 state so that "up" and "down" never share or overlap a sequence. */
static inline void ls_prng_seed(struct ls_prng *p, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03u);

	for (int i = 0; i < 4; i++)
		p->s[i] = ls_splitmix64(&x);
	/* The all-zero state is the one state xoshiro cannot leave. */
	if ((p->s[0] | p->s[1] | p->s[2] | p->s[3]) == 0)
		p->s[0] = 1;
}

static inline uint64_t ls_prng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t ls_prng_next(struct ls_prng *p)
{
	uint64_t *s = p->s;
	uint64_t r = ls_prng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = ls_prng_rotl(s[3], 45);
	return r;
}

/* A uniform double in [0, 1) from the top 53 bits. */
static inline double ls_prng_unit(struct ls_prng *p)
{
	return (double)(ls_prng_next(p) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
