/* Unit tests for controller/ml_features.c: quantiles against sorting, the features of a
 * probe history worked out by hand, the target, unknown values and clamping of a live
 * report, the clock features. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../controller/ml_features.h"
#include "../../controller/ml_rng.h"

#include "unit.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void test_quantile(void)
{
	struct ml_rng r;
	double v[257], s[257];
	const double qs[] = { 0, 0.01, 0.5, 0.9, 0.95, 0.99, 1 };
	int bad = 0;

	ml_rng_seed(&r, 1);
	for (size_t n = 1; n <= 257; n += 8) {
		for (size_t i = 0; i < n; i++)
			s[i] = floor(ml_rng_uniform(&r, 0, 20)); /* many ties */
		qsort(s, n, sizeof(*s), cmp);
		for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			size_t rank = (size_t)ceil(qs[k] * (double)n);

			for (size_t i = 0; i < n; i++)
				v[i] = s[(i * 7919) % n]; /* scrambled: 7919 is a prime above n */
			double got = ml_features_quantile(v, n, qs[k]);
			bad += got != s[rank ? rank - 1 : 0];
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	double one = 5;
	CU_ASSERT_EQUAL(ml_features_quantile(&one, 1, 0.95), 5);
}

/* 20 probes at 1 s: RTT 10, 11, ..., with probe 3 and 4 lost. */
enum { NP = 20 };
static double t[NP];
static float rtt[NP], load[NP];

static struct ml_series series(void)
{
	for (int i = 0; i < NP; i++) {
		t[i] = i;
		rtt[i] = (float)(10 + i);
		load[i] = 0.25f;
	}
	rtt[3] = rtt[4] = NAN;
	return (struct ml_series){ .n = NP, .t = t, .rtt_ms = rtt, .load = load,
				   .week_s0 = 2 * 86400 + 13 * 3600 + 3590, /* Wed 13:59:50 */
				   .hops = 12, .as_path_len = NAN, .distance_km = 800 };
}

static void test_features_at(void)
{
	struct ml_series s = series();
	struct ml_window w = { .history_s = 10, .current_s = 4, .horizon_s = 5, .min_future = 3 };
	double x[ML_NFEAT], scratch[64];

	/* After probe 9: history (-1, 9] holds probes 0..9 (3 and 4 lost). */
	CU_ASSERT_EQUAL_FATAL(ml_features_at(&s, 9, &w, x, scratch, 64), 0);
	/* Answered: 10 11 12 15 16 17 18 19; p95 rank ceil(7.6) = 8: 19; p50 rank 4: 15. */
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_P95_MS], 19, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_P50_MS], 15, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_LOSS], 0.2, 1e-12);
	/* SRTT over (5, 9]: probes 6..9, 16 17 18 19, gain 1/8 from the first. */
	double srtt = 16;
	srtt += (17 - srtt) / 8;
	srtt += (18 - srtt) / 8;
	srtt += (19 - srtt) / 8;
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_CURRENT_MS], srtt, 1e-9);
	/* Jitter over consecutive answered probes: steps 1 1 3 1 1 1 1. */
	double j = 0;
	const double steps[] = { 1, 1, 3, 1, 1, 1, 1 };
	for (int i = 0; i < 7; i++)
		j += (steps[i] - j) / 16;
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_JITTER_MS], j, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_LOAD], 0.25, 1e-7);
	CU_ASSERT_EQUAL(x[ML_F_HOPS], 12);
	CU_ASSERT_EQUAL(x[ML_F_AS_PATH], ML_UNKNOWN);
	CU_ASSERT_EQUAL(x[ML_F_DISTANCE_KM], 800);
	/* t0 is Wednesday 13:59:50: after 9 s still 13:59, Wednesday (Monday 0). */
	CU_ASSERT_EQUAL(x[ML_F_HOUR], 13);
	CU_ASSERT_EQUAL(x[ML_F_DOW], 2);
	CU_ASSERT_EQUAL_FATAL(ml_features_at(&s, 12, &w, x, scratch, 64), 0);
	CU_ASSERT_EQUAL(x[ML_F_HOUR], 14);

	/* A long outage: nothing answered within current_s, no features. */
	for (int i = 10; i < 15; i++)
		rtt[i] = NAN;
	CU_ASSERT_EQUAL(ml_features_at(&s, 14, &w, x, scratch, 64), -1);
	/* Scratch bounds the history: only the last 3 probes count. */
	s = series();
	CU_ASSERT_EQUAL_FATAL(ml_features_at(&s, 9, &w, x, scratch, 3), 0);
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_P50_MS], 18, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(x[ML_F_LOSS], 0, 1e-12);
	/* No agent: load unknown. */
	s.load = NULL;
	CU_ASSERT_EQUAL_FATAL(ml_features_at(&s, 9, &w, x, scratch, 64), 0);
	CU_ASSERT_EQUAL(x[ML_F_LOAD], ML_UNKNOWN);
}

static void test_target(void)
{
	struct ml_series s = series();
	struct ml_window w = { .history_s = 10, .current_s = 4, .horizon_s = 5, .min_future = 3 };
	double y, scratch[64];

	/* After probe 0: (0, 5] holds probes 1..5, answered 11 12 15; p95 is 15. */
	CU_ASSERT_EQUAL_FATAL(ml_features_target(&s, 0, &w, &y, scratch, 64), 0);
	CU_ASSERT_DOUBLE_EQUAL(y, 15, 1e-9);
	/* After probe 1: 2..6 answered 12 15 16. */
	CU_ASSERT_EQUAL_FATAL(ml_features_target(&s, 1, &w, &y, scratch, 64), 0);
	CU_ASSERT_DOUBLE_EQUAL(y, 16, 1e-9);
	/* Too few answered: after probe 0 with min_future 4. */
	w.min_future = 4;
	CU_ASSERT_EQUAL(ml_features_target(&s, 0, &w, &y, scratch, 64), -1);
	w.min_future = 3;
	/* The history ends before the horizon: no target. */
	CU_ASSERT_EQUAL(ml_features_target(&s, 16, &w, &y, scratch, 64), -1);
	CU_ASSERT_EQUAL(ml_features_target(&s, 14, &w, &y, scratch, 64), 0);
}

static void test_live(void)
{
	struct ml_obs o = { .current_ms = 30, .p50_ms = NAN, .p95_ms = NAN, .jitter_ms = NAN,
			    .loss = NAN, .load = NAN, .hops = NAN, .as_path_len = 5,
			    .distance_km = 1e9, .now = 0 };
	double x[ML_NFEAT];

	CU_ASSERT_EQUAL_FATAL(ml_features_build(&o, x), 0);
	CU_ASSERT_EQUAL(x[ML_F_CURRENT_MS], 30);
	CU_ASSERT_EQUAL(x[ML_F_P50_MS], 30);
	CU_ASSERT_EQUAL(x[ML_F_P95_MS], 30);
	CU_ASSERT_EQUAL(x[ML_F_JITTER_MS], 0);
	CU_ASSERT_EQUAL(x[ML_F_LOSS], 0);
	CU_ASSERT_EQUAL(x[ML_F_LOAD], ML_UNKNOWN);
	CU_ASSERT_EQUAL(x[ML_F_HOPS], ML_UNKNOWN);
	CU_ASSERT_EQUAL(x[ML_F_AS_PATH], 5);
	CU_ASSERT_EQUAL(x[ML_F_DISTANCE_KM], 20038); /* clamped to half the Earth */
	CU_ASSERT(x[ML_F_HOUR] >= 0 && x[ML_F_HOUR] <= 23);
	CU_ASSERT(x[ML_F_DOW] >= 0 && x[ML_F_DOW] <= 6);
	o.loss = 3;
	o.load = 1.5;
	o.p95_ms = -4;
	CU_ASSERT_EQUAL_FATAL(ml_features_build(&o, x), 0);
	CU_ASSERT_EQUAL(x[ML_F_LOSS], 1);
	CU_ASSERT_EQUAL(x[ML_F_LOAD], 1);
	CU_ASSERT_EQUAL(x[ML_F_P95_MS], 30);
	o.current_ms = NAN;
	CU_ASSERT_EQUAL(ml_features_build(&o, x), -1);
	o.current_ms = -1;
	CU_ASSERT_EQUAL(ml_features_build(&o, x), -1);
}

static void test_info(void)
{
	for (unsigned f = 0; f < ML_NFEAT; f++) {
		const struct ml_feature_info *i = ml_features_info(f);

		CU_ASSERT_PTR_NOT_NULL_FATAL(i);
		CU_ASSERT(strlen(i->name) > 0 && strlen(i->name) < 24);
		CU_ASSERT(strlen(i->source) > 0 && strlen(i->unknown) > 0);
	}
	CU_ASSERT_PTR_NULL(ml_features_info(ML_NFEAT));
	CU_ASSERT_STRING_EQUAL(ml_features_name(0), "current_latency_ms");
	CU_ASSERT_STRING_EQUAL(ml_features_name(10), "geographic_distance_km");
	/* Monday 0: 2024-01-01 was a Monday; noon UTC is a Monday in every zone within 11 h. */
	double w = ml_features_week_s(1704110400);
	CU_ASSERT(w >= 0 && w < 7 * 86400.0);
}

UNIT_MAIN("ml_features",
	  { "quantile against sorting", test_quantile },
	  { "features of a history", test_features_at },
	  { "target", test_target },
	  { "live report: unknowns and clamping", test_live },
	  { "feature table and clock", test_info })
