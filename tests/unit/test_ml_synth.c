/* Unit tests for controller/ml_synth.c: the same seed gives the same set, the region
 * profiles come out as the original design states them, the peak-hour, weekend, load
 * and loss effects are there, load leads latency (the future is partly predictable
 * from the present), and the scenario's fastest node does degrade. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../controller/ml_synth.h"

#include "unit.h"

static void test_same_seed_same_set(void)
{
	struct ml_synth_conf c;
	struct ml_data a, b, d;
	char err[256];

	ml_synth_conf_default(&c);
	c.seed = 5;
	CU_ASSERT_EQUAL_FATAL(ml_synth_dataset(&c, 2000, NULL, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(ml_synth_dataset(&c, 2000, NULL, &b, err, sizeof(err)), 0);
	c.seed = 6;
	CU_ASSERT_EQUAL_FATAL(ml_synth_dataset(&c, 2000, NULL, &d, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(a.n, 2000);
	CU_ASSERT_EQUAL(memcmp(a.x, b.x, a.n * ML_NFEAT * sizeof(double)), 0);
	CU_ASSERT_EQUAL(memcmp(a.y, b.y, a.n * sizeof(double)), 0);
	CU_ASSERT(memcmp(a.x, d.x, a.n * ML_NFEAT * sizeof(double)) != 0);
	/* Every row is in range; unknown facts are there but a minority. */
	int bad = 0, unknown_load = 0, unknown_hops = 0;
	for (size_t i = 0; i < a.n; i++) {
		const double *x = a.x + i * ML_NFEAT;

		bad += !(x[ML_F_CURRENT_MS] > 0 && x[ML_F_P50_MS] <= x[ML_F_P95_MS] &&
			 x[ML_F_LOSS] >= 0 && x[ML_F_LOSS] <= 1 && x[ML_F_HOUR] >= 0 &&
			 x[ML_F_HOUR] <= 23 && x[ML_F_DOW] >= 0 && x[ML_F_DOW] <= 6 && a.y[i] > 0);
		unknown_load += x[ML_F_LOAD] == ML_UNKNOWN;
		unknown_hops += x[ML_F_HOPS] == ML_UNKNOWN;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(unknown_load > 0 && unknown_load < (int)a.n / 2);
	CU_ASSERT(unknown_hops > 0 && unknown_hops < (int)a.n / 4);
	ml_data_free(&a);
	ml_data_free(&b);
	ml_data_free(&d);
}

/* Mean and standard deviation of the answered RTTs of `nodes` nodes of a region over
 * dur_s from week time w0, without surges. */
static void region_stats(unsigned region, double w0, double dur_s, int nodes, double *mean,
			 double *sd, double *load)
{
	struct ml_synth_conf c;
	struct ml_rng r;
	double s = 0, s2 = 0, sl = 0;
	size_t n = 0, nl = 0;
	const struct ml_synth_surge none = { 0, 0, 0 };

	ml_synth_conf_default(&c);
	ml_rng_seed(&r, 1000 + region);
	for (int k = 0; k < nodes; k++) {
		struct ml_synth_node node;
		struct ml_synth_trace tr;

		ml_synth_node_draw(&c, &r, region, &node);
		CU_ASSERT_EQUAL_FATAL(ml_synth_trace_run(&c, &r, &node, w0, dur_s, &none, &tr), 0);
		for (size_t i = 0; i < tr.n; i++) {
			sl += tr.true_load[i];
			nl++;
			if (isnan(tr.rtt_ms[i]))
				continue;
			s += tr.rtt_ms[i];
			s2 += (double)tr.rtt_ms[i] * tr.rtt_ms[i];
			n++;
		}
		ml_synth_trace_free(&tr);
	}
	*mean = s / n;
	*sd = sqrt(s2 / n - *mean * *mean);
	*load = sl / nl;
}

static void test_region_profiles(void)
{
	/* Off-peak on a weekday (Tuesday 3:00): the region's base and sigma. */
	for (unsigned reg = 0; reg < ML_REGION__COUNT; reg++) {
		const struct ml_region_profile *p = ml_synth_region(reg);
		double mean, sd, load;

		region_stats(reg, 86400 + 3 * 3600, 120, 400, &mean, &sd, &load);
		printf("\n    %s: mean %.1f ms (base %.0f), sd %.1f (sigma %.0f) ", p->name, mean,
		       p->base_ms, sd, p->sigma_ms);
		CU_ASSERT(fabs(mean - p->base_ms) < 0.15 * p->sigma_ms + 1);
		CU_ASSERT(sd > 0.85 * p->sigma_ms && sd < 1.15 * p->sigma_ms);
	}
	CU_ASSERT_STRING_EQUAL(ml_synth_region(ML_REGION_US_EAST)->name, "us-east");
	CU_ASSERT_EQUAL(ml_synth_region(ML_REGION_EU_WEST)->base_ms, 30);
	CU_ASSERT_EQUAL(ml_synth_region(ML_REGION_ASIA_SE)->sigma_ms, 15);
	CU_ASSERT_PTR_NULL(ml_synth_region(ML_REGION__COUNT));
}

static void test_peak_and_weekend(void)
{
	double quiet, half, full, weekend, sd, lq, lh, lf, lw;

	/* The same nodes (same seed) at Tuesday 3:00, 14:00, 21:00 and Saturday 3:00,
	 * each long enough (40 min) for the load to settle. */
	region_stats(ML_REGION_EU_WEST, 86400 + 3 * 3600 - 2400, 2400, 100, &quiet, &sd, &lq);
	region_stats(ML_REGION_EU_WEST, 86400 + 14 * 3600 - 2400, 2400, 100, &half, &sd, &lh);
	region_stats(ML_REGION_EU_WEST, 86400 + 21 * 3600 - 2400, 2400, 100, &full, &sd, &lf);
	region_stats(ML_REGION_EU_WEST, 5 * 86400 + 3 * 3600 - 2400, 2400, 100, &weekend, &sd, &lw);
	printf("\n    load %.2f %.2f %.2f, RTT %.1f %.1f %.1f, weekend %.1f ", lq, lh, lf, quiet,
	       half, full, weekend);
	CU_ASSERT(lq < lh && lh < lf);
	CU_ASSERT(quiet < half && half < full);
	CU_ASSERT(weekend > 1.05 * quiet && weekend < 1.15 * quiet);
}

/* Load leads latency: rows whose node is loaded well above what its latency shows see
 * their p95 rise over the next 30 s; rows of quiet nodes do not. */
static void test_load_leads_latency(void)
{
	struct ml_synth_conf c;
	struct ml_data d;
	char err[256];
	double up_sum = 0, quiet_sum = 0;
	int up_n = 0, quiet_n = 0;

	ml_synth_conf_default(&c);
	c.seed = 21;
	CU_ASSERT_EQUAL_FATAL(ml_synth_dataset(&c, 20000, NULL, &d, err, sizeof(err)), 0);
	for (size_t i = 0; i < d.n; i++) {
		const double *x = d.x + i * ML_NFEAT;
		double change = d.y[i] - x[ML_F_P95_MS];

		if (x[ML_F_LOAD] >= 0.85) {
			up_sum += change;
			up_n++;
		} else if (x[ML_F_LOAD] >= 0 && x[ML_F_LOAD] < 0.3) {
			quiet_sum += change;
			quiet_n++;
		}
	}
	printf("\n    p95 change over 30 s: loaded %.2f ms (%d rows), quiet %.2f ms (%d) ",
	       up_sum / up_n, up_n, quiet_sum / quiet_n, quiet_n);
	CU_ASSERT(up_n > 100 && quiet_n > 1000);
	CU_ASSERT(up_sum / up_n > 1.0);
	CU_ASSERT(fabs(quiet_sum / quiet_n) < 0.5);
	ml_data_free(&d);
}

static void test_scenario(void)
{
	struct ml_synth_conf c;
	int fastest = 0, degraded = 0, quiet_others = 0;

	ml_synth_conf_default(&c);
	for (uint32_t id = 0; id < 20; id++) {
		struct ml_synth_group g;
		double scratch[1024], x[ML_NFEAT];
		double before[3], after[3];

		CU_ASSERT_EQUAL_FATAL(ml_synth_group_scenario(&c, id, 3, 1200, &g), 0);
		CU_ASSERT_EQUAL(g.degrading, 0);
		CU_ASSERT(g.surge_start_s >= 300 && g.surge_start_s <= 420);
		size_t i0 = (size_t)((g.surge_start_s - 5) / c.tick_s);
		size_t i1 = (size_t)((g.surge_start_s + 480) / c.tick_s);
		for (unsigned n = 0; n < 3; n++) {
			CU_ASSERT_EQUAL_FATAL(ml_features_at(&g.tr[n].series, i0, &c.win, x, scratch,
							     1024), 0);
			before[n] = x[ML_F_P50_MS];
			CU_ASSERT_EQUAL_FATAL(ml_features_at(&g.tr[n].series, i1, &c.win, x, scratch,
							     1024), 0);
			after[n] = x[ML_F_P50_MS];
			CU_ASSERT(x[ML_F_LOAD] >= 0); /* scenario nodes report their load */
		}
		fastest += before[0] < before[1] && before[0] < before[2];
		degraded += after[0] > after[1] || after[0] > after[2];
		quiet_others += fabs(after[1] - before[1]) < 3 && fabs(after[2] - before[2]) < 3;
		ml_synth_group_free(&g);
	}
	CU_ASSERT(fastest >= 18);
	CU_ASSERT(degraded >= 18);
	CU_ASSERT(quiet_others >= 16);
}

UNIT_MAIN("ml_synth",
	  { "same seed, same set", test_same_seed_same_set },
	  { "region profiles", test_region_profiles },
	  { "peak hours and weekend", test_peak_and_weekend },
	  { "load leads latency", test_load_leads_latency },
	  { "scenario: the fastest node degrades", test_scenario })
