/* lightspeed-controller: a node's health, as measured along the path game packets take.
 * Results come in (an RTT sample per answered keepalive, the dataplane's count of
 * keepalives missed in a row); out comes a report: RTT p50/p95 over a sliding window,
 * jitter, loss both ways, and a state that flips only after N consecutive results of
 * the same kind (hysteresis). Health only reports: selection decides, failover acts.
 * Nothing here does I/O, logs or allocates: a transition is noted for the caller to
 * log once. */
#ifndef LS_CTRL_HEALTH_H
#define LS_CTRL_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

enum health_state { HEALTH_UNKNOWN, HEALTH_HEALTHY, HEALTH_DEGRADED, HEALTH_DOWN };
/* "unknown", "healthy", "degraded", "down". */
const char *health_state_name(enum health_state s);

struct health_conf {
	uint32_t window_ms;      /* the sliding window of p50/p95 */
	uint32_t recent_ms;      /* the recent median that selection scores */
	uint32_t up_after;       /* consecutive answered probes that end `down`, or good
	                            ones that end `degraded` */
	uint32_t down_after;     /* consecutive lost probes that make a node `down` */
	uint32_t degrade_after;  /* consecutive bad probes that make it `degraded` */
	double degraded_loss;    /* a probe is bad when either direction loses more */
	uint32_t degraded_rtt_ms; /* ... or when its RTT is above this (0: no limit) */
};
void health_conf_defaults(struct health_conf *c);

/* Samples kept: a 10 s window of the active route's 30 ms keepalives fits (333). */
#define HEALTH_SAMPLES 512

struct health_sample {
	uint64_t t_us;
	uint32_t rtt_us;
};

struct health {
	struct health_sample ring[HEALTH_SAMPLES];
	unsigned head, n;         /* the newest is ring[(head + n - 1) % SAMPLES] */

	int64_t jitter_us;        /* latest reported; -1 unknown */
	double loss_up, loss_down; /* latest reported, smoothed by the dataplane; -1 unknown */

	enum health_state state;
	uint64_t since_us;        /* when the state began */
	uint32_t run_good, run_bad, run_lost, run_answered;
	uint32_t missed;          /* the dataplane's last count of misses in a row */
	uint64_t samples_total, lost_total;
	uint32_t flips;

	/* A transition not yet taken by the caller (health_take_transition). */
	bool changed;
	enum health_state from;
	char why[64];
};

void health_init(struct health *h, uint64_t now_us);

/* An answered keepalive: its RTT and the route's measurements at that moment (jitter
 * -1 and losses < 0 when not measured yet). */
void health_sample(struct health *h, const struct health_conf *c, uint64_t now_us,
		   uint32_t rtt_us, int64_t jitter_us, double loss_up, double loss_down);
/* The dataplane's count of keepalives unanswered in a row (it resets with a reply):
 * its growth is that many lost probes. */
void health_missed(struct health *h, const struct health_conf *c, uint64_t now_us,
		   uint32_t missed);

struct health_report {
	enum health_state state;
	uint64_t since_us;
	int64_t rtt_p50_us, rtt_p95_us; /* over the window; -1 without samples */
	int64_t rtt_recent_us;          /* median over recent_ms; -1 without samples */
	int64_t rtt_min_us;             /* over the window; -1 without samples */
	int64_t jitter_us;
	double loss_up, loss_down;
	uint32_t window_samples;
	uint32_t missed;
	uint64_t samples_total, lost_total;
	uint32_t flips;
	int64_t last_sample_age_us;     /* -1 without samples */
};
void health_report(const struct health *h, const struct health_conf *c, uint64_t now_us,
		   struct health_report *out);

/* The state's last transition, once: true with from, to and a reason ("3 probes
 * lost") when one happened since the previous call. */
bool health_take_transition(struct health *h, enum health_state *from, enum health_state *to,
			    const char **why);

/* Read access to the samples within the last `ms` (oldest first), for selectors that
 * look at history (ML): returns the count copied into out (at most max). */
unsigned health_samples(const struct health *h, uint64_t now_us, uint32_t ms,
			struct health_sample *out, unsigned max);

#endif
