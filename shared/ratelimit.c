/* Token bucket in integer arithmetic (no floating point on the packet path). */
#include "ratelimit.h"

#define MICRO 1000000u

/* The level holds tokens * 1e6, so a burst above this would overflow it. */
#define BURST_MAX (UINT64_MAX / MICRO)

void ls_bucket_init(struct ls_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_us)
{
	if (burst == 0)
		burst = rate;
	if (burst > BURST_MAX)
		burst = BURST_MAX;
	b->rate = rate;
	b->burst = burst;
	b->level = burst * MICRO;
	b->last_us = now_us;
}

bool ls_bucket_take(struct ls_bucket *b, uint64_t n, uint64_t now_us)
{
	uint64_t cap, need;

	if (b->rate == 0)
		return true;
	cap = b->burst * MICRO;
	/* A clock that steps back adds nothing and keeps last_us, so the same interval
	 * is not credited twice when time moves forward again. */
	if (now_us > b->last_us) {
		uint64_t elapsed = now_us - b->last_us;

		/* rate tokens/s over elapsed us is rate*elapsed micro-tokens. Past
		 * cap/rate us the bucket is full whatever it held; below, the product
		 * is at most cap, so a long idle gap cannot overflow it. */
		if (elapsed > cap / b->rate)
			b->level = cap;
		else if (b->level + elapsed * b->rate > cap)
			b->level = cap;
		else
			b->level += elapsed * b->rate;
		b->last_us = now_us;
	}
	if (n > BURST_MAX)
		return false;
	need = n * MICRO;
	if (b->level < need)
		return false;
	b->level -= need;
	return true;
}
