/* The ML code's random draws, on the project's generator (shared/prng.h: the same
 * sequence for a seed on every machine), so that a forest trained or a data set
 * generated from a seed is the same on every run. */
#ifndef LS_ML_RNG_H
#define LS_ML_RNG_H

#include <math.h>
#include <stdint.h>

#include "prng.h"

struct ml_rng {
	struct ls_prng p;
};

static inline void ml_rng_seed(struct ml_rng *r, uint64_t seed)
{
	ls_prng_seed(&r->p, seed, 0);
}

static inline uint64_t ml_rng_next(struct ml_rng *r)
{
	return ls_prng_next(&r->p);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double ml_rng_unit(struct ml_rng *r)
{
	return ls_prng_unit(&r->p);
}

static inline double ml_rng_uniform(struct ml_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * ml_rng_unit(r);
}

/* Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift). */
static inline uint32_t ml_rng_below(struct ml_rng *r, uint32_t n)
{
	uint64_t m = (uint64_t)(uint32_t)(ml_rng_next(r) >> 32) * n;
	uint32_t lo = (uint32_t)m;

	if (lo < n) {
		uint32_t t = (uint32_t)-n % n;
		while (lo < t) {
			m = (uint64_t)(uint32_t)(ml_rng_next(r) >> 32) * n;
			lo = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

/* Standard normal (Box-Muller; one of the pair is dropped: simpler state, and the
 * generators here are not where the time goes). */
static inline double ml_rng_normal(struct ml_rng *r)
{
	double u = 1.0 - ml_rng_unit(r); /* (0, 1]: log() is finite */
	double v = ml_rng_unit(r);

	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Exponential with mean 1. */
static inline double ml_rng_exp(struct ml_rng *r)
{
	return -log(1.0 - ml_rng_unit(r));
}

#endif
