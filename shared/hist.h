/* A fixed-size log-linear latency histogram in microseconds (no allocation):
 * exact below 32 us, then 16 sub-buckets per power of two (under 6.25% error). */
#ifndef LS_HIST_H
#define LS_HIST_H

#include <stdint.h>

#define LS_HIST_SUB 16
#define LS_HIST_BUCKETS (32 + 27 * LS_HIST_SUB) /* up to 2^32 us */

struct ls_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	uint32_t b[LS_HIST_BUCKETS];
};
void ls_hist_init(struct ls_hist *h);
void ls_hist_add(struct ls_hist *h, uint64_t us);
/* Value at quantile q in [0,1] (bucket upper bound, clamped to [min,max]); 0 if empty. */
uint64_t ls_hist_quantile(const struct ls_hist *h, double q);
double ls_hist_mean(const struct ls_hist *h);
/* Samples at most us (whole buckets: those whose every value is <= us). */
uint64_t ls_hist_count_le(const struct ls_hist *h, uint64_t us);
void ls_hist_merge(struct ls_hist *into, const struct ls_hist *from);

#endif
