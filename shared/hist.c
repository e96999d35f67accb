/* A fixed-size log-linear latency histogram in microseconds (no allocation):
 * exact below 32 us, then 16 sub-buckets per power of two (under 6.25% error). */
#include "hist.h"

#include <string.h>

/* Bucket of a value: v itself below 32; above, the exponent picks a group of 16 and
 * the four bits after the leading one pick the sub-bucket. */
static unsigned bucket_of(uint64_t v)
{
	unsigned e;

	if (v < 32)
		return (unsigned)v;
	if (v >> 32)
		return LS_HIST_BUCKETS - 1;
	e = 63u - (unsigned)__builtin_clzll(v); /* 5..31 */
	return 32u + (e - 5u) * LS_HIST_SUB + (unsigned)((v >> (e - 4u)) & (LS_HIST_SUB - 1));
}

/* Largest value below 2^32 that lands in bucket i. The last bucket also holds the
 * clamped values from 2^32 up (over 71 minutes, never a real latency); they report
 * 2^32 - 1 unless max is smaller. */
static uint64_t bucket_upper(unsigned i)
{
	unsigned e, sub;

	if (i < 32)
		return i;
	e = 5u + (i - 32u) / LS_HIST_SUB;
	sub = (i - 32u) % LS_HIST_SUB;
	return ((uint64_t)(LS_HIST_SUB + sub + 1) << (e - 4u)) - 1;
}

void ls_hist_init(struct ls_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void ls_hist_add(struct ls_hist *h, uint64_t us)
{
	unsigned i = bucket_of(us);

	/* Testing count rather than seeding min with UINT64_MAX keeps a zeroed struct a
	 * valid empty histogram. */
	if (h->count == 0 || us < h->min)
		h->min = us;
	if (h->count == 0 || us > h->max)
		h->max = us;
	h->count++;
	h->sum = us > UINT64_MAX - h->sum ? UINT64_MAX : h->sum + us;
	if (h->b[i] != UINT32_MAX)
		h->b[i]++;
}

uint64_t ls_hist_quantile(const struct ls_hist *h, double q)
{
	uint64_t rank, seen = 0;
	double r;
	unsigned i;

	if (h->count == 0)
		return 0;
	if (!(q > 0)) /* also NaN */
		return h->min;
	if (q >= 1)
		return h->max;
	/* The q-th sample is the ceil(q*count)-th smallest, counted from 1. */
	r = q * (double)h->count;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (i = 0; i < LS_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = bucket_upper(i);

			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	/* Only reached when saturated buckets undercount: the sample is the largest. */
	return h->max;
}

double ls_hist_mean(const struct ls_hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

uint64_t ls_hist_count_le(const struct ls_hist *h, uint64_t us)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < LS_HIST_BUCKETS && bucket_upper(i) <= us; i++)
		n += h->b[i];
	return n;
}

void ls_hist_merge(struct ls_hist *into, const struct ls_hist *from)
{
	unsigned i;

	if (from->count == 0)
		return;
	if (into->count == 0 || from->min < into->min)
		into->min = from->min;
	if (into->count == 0 || from->max > into->max)
		into->max = from->max;
	into->count += from->count;
	into->sum = from->sum > UINT64_MAX - into->sum ? UINT64_MAX : into->sum + from->sum;
	for (i = 0; i < LS_HIST_BUCKETS; i++) {
		uint64_t s = (uint64_t)into->b[i] + from->b[i];

		into->b[i] = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
	}
}
