/* One direction's impairment state and the per-packet decision: lost, rate-dropped,
 * or passed with a send time (and perhaps duplicated or held back for reordering). */
#ifndef NS_IMPAIR_H
#define NS_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prng.h"
#include "spec.h"

/* The counters one direction reports. Every datagram received ends up exactly once in
 * sent, a loss or drop counter, or queued; a duplicate adds one to duplicated and then
 * ends up the same way: received + duplicated == sent + lost_random + lost_burst +
 * rate_dropped + queue_full + send_errors + queued. */
struct ns_counters {
	uint64_t received, sent;
	uint64_t lost_random, lost_burst;
	uint64_t duplicated, reordered, delayed;
	uint64_t rate_dropped, queue_full, send_errors;
	uint64_t bytes_received, bytes_sent;
	uint64_t queued; /* a gauge: packets waiting in the delay queue now */
	/* Dropped by the kernel on our receiving sockets (full buffer) before we saw
	 * them: not in received, so outside the balance above. */
	uint64_t socket_drops;
};

struct ns_dir {
	const char *name; /* "up" or "down" */
	struct ns_spec spec;
	uint64_t queue_limit; /* bytes, derived from spec */
	struct ls_prng rng;
	bool ge_bad;
	/* Rate limiter as a virtual clock: the time at which everything admitted so far
	 * has left the bottleneck, with the sub-nanosecond remainder kept exactly. */
	bool tb_started;
	uint64_t tb_v_ns, tb_v_rem;
	struct ns_counters c;
};

enum ns_fate { NS_PASS, NS_LOST_RANDOM, NS_LOST_BURST, NS_RATE_DROP };

struct ns_verdict {
	enum ns_fate fate;
	uint64_t t_ns; /* when to send it (NS_PASS) */
	bool dup;      /* send a second copy */
	bool hold;     /* hold it back until the next packet has gone */
};

void ns_dir_init(struct ns_dir *d, const char *name, uint64_t seed, uint64_t stream);
/* Replace the SPEC; the random stream continues, the burst and rate state restart. */
void ns_dir_set_spec(struct ns_dir *d, const struct ns_spec *s);
/* Decide a packet of len bytes arriving at now_ns; counts losses and rate drops. */
void ns_dir_decide(struct ns_dir *d, uint64_t now_ns, size_t len, struct ns_verdict *v);

#endif
