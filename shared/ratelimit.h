/* Token bucket in integer arithmetic (no floating point on the packet path). */
#ifndef LS_RATELIMIT_H
#define LS_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ls_bucket {
	uint64_t rate;    /* tokens per second; 0 = unlimited */
	uint64_t burst;   /* bucket size in tokens */
	uint64_t level;   /* tokens * 1e6 */
	uint64_t last_us;
};
/* A full bucket. burst 0 means one second's worth (rate). */
void ls_bucket_init(struct ls_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_us);
/* Take n tokens if there are enough; false (nothing taken) otherwise. */
bool ls_bucket_take(struct ls_bucket *b, uint64_t n, uint64_t now_us);

#endif
