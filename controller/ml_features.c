/* The 11 features and the target, from a probe history or a live health report. See
 * ml_features.h; the table below is the documentation of record (docs/ml.md copies
 * it for users). */
#include "ml_features.h"

#include <math.h>

static const struct ml_feature_info features_info[ML_NFEAT] = {
	[ML_F_CURRENT_MS] = { "current_latency_ms", "ms",
		"the route's smoothed RTT (RFC 6298 SRTT, gain 1/8) of the client's keepalives "
		"over the last 10 s, plus the node's leg to the game server once its agent reports it",
		"none: a node without an answered probe in 10 s gets no prediction and is ranked "
		"as nearest ranks it" },
	[ML_F_P50_MS] = { "historical_p50_ms", "ms",
		"the median RTT of the probes answered in the health history window (120 s)",
		"the current latency" },
	[ML_F_P95_MS] = { "historical_p95_ms", "ms",
		"the p95 RTT of the probes answered in the health history window (120 s)",
		"the current latency" },
	[ML_F_JITTER_MS] = { "jitter_ms", "ms",
		"the mean deviation of consecutive RTTs (RFC 3550 form, gain 1/16) over the window",
		"0" },
	[ML_F_HOPS] = { "hop_count", "hops",
		"the node's `hops` in the controller's configuration", "-1 (unknown)" },
	[ML_F_HOUR] = { "time_of_day", "hour 0-23", "the controller's local clock",
		"always known" },
	[ML_F_DOW] = { "day_of_week", "0-6, Monday 0", "the controller's local clock",
		"always known" },
	[ML_F_AS_PATH] = { "bgp_as_path_len", "ASes",
		"the node's `as_path_len` in the controller's configuration", "-1 (unknown)" },
	[ML_F_LOSS] = { "packet_loss", "fraction 0-1",
		"the share of probes unanswered in the window (both directions together)", "0" },
	[ML_F_LOAD] = { "proxy_load", "0-1",
		"the load the node's agent last reported (SERVER_INFO)", "-1 (unknown)" },
	[ML_F_DISTANCE_KM] = { "geographic_distance_km", "km",
		"the node's `distance_km` in the controller's configuration", "-1 (unknown)" },
};

const struct ml_feature_info *ml_features_info(unsigned f)
{
	return f < ML_NFEAT ? &features_info[f] : NULL;
}

const char *ml_features_name(unsigned f)
{
	return f < ML_NFEAT ? features_info[f].name : "?";
}

void ml_features_window_default(struct ml_window *w)
{
	w->history_s = 120;
	w->current_s = 10;
	w->horizon_s = 30;
	w->min_future = 10;
}

double ml_features_quantile(double *v, size_t n, double q)
{
	size_t r = (size_t)ceil(q * (double)n);
	long k = r ? (long)r - 1 : 0, l = 0, m = (long)n - 1;

	if (k > m)
		k = m;
	/* Wirth's selection: O(n) expected, in place. */
	while (l < m) {
		double pivot = v[k];
		long i = l, j = m;

		do {
			while (v[i] < pivot)
				i++;
			while (pivot < v[j])
				j--;
			if (i <= j) {
				double t = v[i];

				v[i] = v[j];
				v[j] = t;
				i++;
				j--;
			}
		} while (i <= j);
		if (j < k)
			l = i;
		if (k < i)
			m = j;
	}
	return v[k];
}

static double features_clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* A static fact or a load: clamped when known, ML_UNKNOWN when not. */
static double features_opt(double v, double hi)
{
	return isfinite(v) && v >= 0 ? features_clamp(v, 0, hi) : ML_UNKNOWN;
}

static void features_clock(double week_s, double x[ML_NFEAT])
{
	double w = fmod(week_s, 7 * 86400.0);

	if (w < 0)
		w += 7 * 86400.0;
	x[ML_F_DOW] = features_clamp(floor(w / 86400.0), 0, 6);
	x[ML_F_HOUR] = features_clamp(floor(fmod(w, 86400.0) / 3600.0), 0, 23);
}

double ml_features_week_s(time_t t)
{
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return 0;
	return ((tm.tm_wday + 6) % 7) * 86400.0 + tm.tm_hour * 3600.0 + tm.tm_min * 60.0 + tm.tm_sec;
}

#define FEAT_MAX_MS 10000.0
#define FEAT_MAX_HOPS 255.0
#define FEAT_MAX_AS 64.0
#define FEAT_MAX_KM 20038.0 /* half the Earth's circumference */

int ml_features_at(const struct ml_series *s, size_t i, const struct ml_window *w,
		   double x[ML_NFEAT], double *scratch, size_t scratch_n)
{
	double ti = s->t[i];
	size_t h0 = i, c0 = i, m = 0, sent, lost = 0;
	double srtt = NAN, jit = 0, prev = NAN;

	while (h0 > 0 && s->t[h0 - 1] > ti - w->history_s && i - (h0 - 1) < scratch_n)
		h0--;
	while (c0 > h0 && s->t[c0 - 1] > ti - w->current_s)
		c0--;
	for (size_t k = h0; k <= i; k++) {
		double r = s->rtt_ms[k];

		if (!isfinite(r)) {
			lost++;
			continue;
		}
		scratch[m++] = r;
		if (isfinite(prev))
			jit += (fabs(r - prev) - jit) / 16.0;
		prev = r;
		if (k >= c0)
			srtt = isfinite(srtt) ? srtt + (r - srtt) / 8.0 : r;
	}
	if (!isfinite(srtt))
		return -1;
	sent = i - h0 + 1;
	x[ML_F_CURRENT_MS] = features_clamp(srtt, 0, FEAT_MAX_MS);
	x[ML_F_P95_MS] = features_clamp(ml_features_quantile(scratch, m, 0.95), 0, FEAT_MAX_MS);
	x[ML_F_P50_MS] = features_clamp(ml_features_quantile(scratch, m, 0.50), 0, FEAT_MAX_MS);
	x[ML_F_JITTER_MS] = features_clamp(jit, 0, FEAT_MAX_MS);
	x[ML_F_LOSS] = (double)lost / (double)sent;
	x[ML_F_LOAD] = features_opt(s->load ? s->load[i] : NAN, 1.0);
	x[ML_F_HOPS] = features_opt(s->hops, FEAT_MAX_HOPS);
	x[ML_F_AS_PATH] = features_opt(s->as_path_len, FEAT_MAX_AS);
	x[ML_F_DISTANCE_KM] = features_opt(s->distance_km, FEAT_MAX_KM);
	features_clock(s->week_s0 + ti, x);
	return 0;
}

int ml_features_target(const struct ml_series *s, size_t i, const struct ml_window *w,
		       double *y, double *scratch, size_t scratch_n)
{
	double end = s->t[i] + w->horizon_s;
	size_t m = 0, k = i + 1;

	for (; k < s->n && s->t[k] <= end && m < scratch_n; k++)
		if (isfinite(s->rtt_ms[k]))
			scratch[m++] = s->rtt_ms[k];
	/* A history that stops before the horizon does not know the future. */
	if (k >= s->n && (s->n == 0 || s->t[s->n - 1] < end))
		return -1;
	if (m < w->min_future || m == 0)
		return -1;
	*y = ml_features_quantile(scratch, m, 0.95);
	return 0;
}

int ml_features_build(const struct ml_obs *o, double x[ML_NFEAT])
{
	if (!isfinite(o->current_ms) || o->current_ms < 0)
		return -1;
	double cur = features_clamp(o->current_ms, 0, FEAT_MAX_MS);

	x[ML_F_CURRENT_MS] = cur;
	x[ML_F_P50_MS] = isfinite(o->p50_ms) && o->p50_ms >= 0 ?
		features_clamp(o->p50_ms, 0, FEAT_MAX_MS) : cur;
	x[ML_F_P95_MS] = isfinite(o->p95_ms) && o->p95_ms >= 0 ?
		features_clamp(o->p95_ms, 0, FEAT_MAX_MS) : cur;
	x[ML_F_JITTER_MS] = isfinite(o->jitter_ms) && o->jitter_ms >= 0 ?
		features_clamp(o->jitter_ms, 0, FEAT_MAX_MS) : 0;
	x[ML_F_LOSS] = isfinite(o->loss) ? features_clamp(o->loss, 0, 1) : 0;
	x[ML_F_LOAD] = features_opt(o->load, 1.0);
	x[ML_F_HOPS] = features_opt(o->hops, FEAT_MAX_HOPS);
	x[ML_F_AS_PATH] = features_opt(o->as_path_len, FEAT_MAX_AS);
	x[ML_F_DISTANCE_KM] = features_opt(o->distance_km, FEAT_MAX_KM);
	features_clock(ml_features_week_s(o->now), x);
	return 0;
}
