/* The ML selector's inputs and target: the original design's 11 features, in its
 * order, and how each is computed from a node's probe history, so that training (on
 * synthetic or recorded histories) and prediction (on the live one) see the same
 * numbers.
 *
 * A feature that is not known (a node without an agent reports no load; hops, AS-path
 * length and distance come from the node's configuration and may be absent) is
 * ML_UNKNOWN, a value below every real one: the training data holds such rows too, so
 * the trees learn what to predict without it. The table in ml_features.c (and
 * docs/ml.md) says where each comes from and what stands in when it is unknown.
 *
 * The target is the p95 of the RTTs a node will answer over the next 30 s (what a
 * player feels), in milliseconds. No allocation here (the caller passes scratch). */
#ifndef LS_ML_FEATURES_H
#define LS_ML_FEATURES_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum ml_feature {
	ML_F_CURRENT_MS = 0, /* current_latency_ms */
	ML_F_P50_MS,         /* historical_p50_ms */
	ML_F_P95_MS,         /* historical_p95_ms */
	ML_F_JITTER_MS,      /* jitter_ms */
	ML_F_HOPS,           /* hop_count */
	ML_F_HOUR,           /* time_of_day, 0-23 */
	ML_F_DOW,            /* day_of_week, 0-6, Monday 0 */
	ML_F_AS_PATH,        /* bgp_as_path_len */
	ML_F_LOSS,           /* packet_loss, fraction */
	ML_F_LOAD,           /* proxy_load, 0-1 */
	ML_F_DISTANCE_KM,    /* geographic_distance_km */
	ML_NFEAT
};

#define ML_UNKNOWN (-1.0)

struct ml_feature_info {
	const char *name;    /* the original design's name */
	const char *unit;
	const char *source;  /* where the controller takes it from at run time */
	const char *unknown; /* what stands in when it is not known */
};
/* NULL for f >= ML_NFEAT. */
const struct ml_feature_info *ml_features_info(unsigned f);
const char *ml_features_name(unsigned f);

/* How a probe history becomes features and a target. */
struct ml_window {
	double history_s; /* p50, p95, jitter and loss over this much past (default 120) */
	double current_s; /* the smoothed RTT runs over this much past (default 10) */
	double horizon_s; /* the target covers this much future (default 30) */
	uint32_t min_future; /* fewer answered probes in the horizon: no target (default 10) */
};
void ml_features_window_default(struct ml_window *w);

/* One node's probe history: probe k sent at t[k] (seconds, increasing) answered in
 * rtt_ms[k] (NAN: lost); load[k] is the node's last reported load then (NAN: none).
 * The static facts are NAN when not known. */
struct ml_series {
	size_t n;
	const double *t;
	const float *rtt_ms;
	const float *load;
	double week_s0; /* local time at t = 0, in seconds since a Monday 00:00 */
	double hops, as_path_len, distance_km;
};

/* The features as the controller sees them just after probe i (probes up to and
 * including i). scratch holds as many doubles as probes fit in history_s. Return 0, or
 * -1 when no probe was answered in current_s (no current latency: no prediction). */
int ml_features_at(const struct ml_series *s, size_t i, const struct ml_window *w,
		   double x[ML_NFEAT], double *scratch, size_t scratch_n);
/* The target after probe i: the p95 of the RTTs answered in (t[i], t[i] + horizon_s].
 * Return 0, or -1 when fewer than min_future were answered (or the history ends). */
int ml_features_target(const struct ml_series *s, size_t i, const struct ml_window *w,
		       double *y, double *scratch, size_t scratch_n);

/* What a live health report gives (NAN: not known). */
struct ml_obs {
	double current_ms, p50_ms, p95_ms, jitter_ms, loss;
	double load;
	double hops, as_path_len, distance_km;
	time_t now; /* the hour and day come from the local clock */
};
/* Features from a live report, unknowns replaced as the table says and values clamped
 * to their ranges. Return 0, or -1 when the current latency is not known. */
int ml_features_build(const struct ml_obs *o, double x[ML_NFEAT]);

/* Local time t as seconds since the last Monday 00:00. */
double ml_features_week_s(time_t t);

/* The q-quantile (nearest rank: the smallest value with a share q at or below it) of
 * v[0..n), n > 0; reorders v. */
double ml_features_quantile(double *v, size_t n, double q);

#endif
