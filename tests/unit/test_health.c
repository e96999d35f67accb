/* Unit tests for controller/health.c: hysteresis (a state flips only after N results
 * of one kind in a row, and each flip is reported once, with its reason), the sliding
 * window's quantiles, misses counted from the dataplane's running count. */

#include "../../controller/health.h"

#include <string.h>

#include "unit.h"

#define MS 1000ull

static struct health_conf conf(void)
{
	struct health_conf c;

	health_conf_defaults(&c);
	return c;
}

/* n good samples of rtt_us, one every 30 ms from *t. */
static void good(struct health *h, const struct health_conf *c, uint64_t *t, unsigned n,
		 uint32_t rtt_us)
{
	for (unsigned i = 0; i < n; i++) {
		*t += 30 * MS;
		health_sample(h, c, *t, rtt_us, 500, 0, 0);
	}
}

static void test_up_after_n(void)
{
	struct health_conf c = conf();
	struct health h;
	enum health_state from, to;
	const char *why;
	uint64_t t = 1000 * MS;

	health_init(&h, t);
	CU_ASSERT_EQUAL(h.state, HEALTH_UNKNOWN);
	good(&h, &c, &t, 2, 15000);
	CU_ASSERT_EQUAL(h.state, HEALTH_UNKNOWN);
	CU_ASSERT_FALSE(health_take_transition(&h, &from, &to, &why));
	good(&h, &c, &t, 1, 15000);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_EQUAL(from, HEALTH_UNKNOWN);
	CU_ASSERT_EQUAL(to, HEALTH_HEALTHY);
	CU_ASSERT_STRING_EQUAL(why, "3 probes answered");
	/* Reported once. */
	CU_ASSERT_FALSE(health_take_transition(&h, &from, &to, &why));
}

static void test_down_after_n_lost(void)
{
	struct health_conf c = conf();
	struct health h;
	enum health_state from, to;
	const char *why;
	uint64_t t = 1000 * MS;

	health_init(&h, t);
	good(&h, &c, &t, 5, 15000);
	health_take_transition(&h, &from, &to, &why);
	/* Two misses, then an answer: no flip, and the run starts over. */
	health_missed(&h, &c, t + 30 * MS, 1);
	health_missed(&h, &c, t + 60 * MS, 2);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	t += 90 * MS;
	health_sample(&h, &c, t, 15000, 500, 0, 0);
	health_missed(&h, &c, t + 30 * MS, 1);
	health_missed(&h, &c, t + 60 * MS, 2);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	CU_ASSERT_FALSE(health_take_transition(&h, &from, &to, &why));
	/* The same count reported again (a poll between two misses) is no new loss. */
	health_missed(&h, &c, t + 70 * MS, 2);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	health_missed(&h, &c, t + 90 * MS, 3);
	CU_ASSERT_EQUAL(h.state, HEALTH_DOWN);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_EQUAL(from, HEALTH_HEALTHY);
	CU_ASSERT_EQUAL(to, HEALTH_DOWN);
	CU_ASSERT_STRING_EQUAL(why, "3 probes lost");
	/* More misses: still down, nothing more to log. */
	health_missed(&h, &c, t + 120 * MS, 7);
	CU_ASSERT_FALSE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_EQUAL(h.lost_total, 2 + 2 + 1 + 4);
	/* A jump in the count (a poll that missed several at once) counts them all. */
	struct health h2;
	health_init(&h2, t);
	good(&h2, &c, &t, 3, 15000);
	health_missed(&h2, &c, t + 100 * MS, 4);
	CU_ASSERT_EQUAL(h2.state, HEALTH_DOWN);
	health_take_transition(&h2, &from, &to, &why);
	CU_ASSERT_STRING_EQUAL(why, "4 probes lost");
}

static void test_back_from_down(void)
{
	struct health_conf c = conf();
	struct health h;
	enum health_state from, to;
	const char *why;
	uint64_t t = 1000 * MS;

	health_init(&h, t);
	good(&h, &c, &t, 3, 15000);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	health_missed(&h, &c, t += 30 * MS, 3);
	CU_ASSERT_EQUAL(h.state, HEALTH_DOWN);
	/* A flicker of one answer between misses does not bring it back. */
	good(&h, &c, &t, 1, 15000);
	health_missed(&h, &c, t += 30 * MS, 1);
	good(&h, &c, &t, 2, 15000);
	CU_ASSERT_EQUAL(h.state, HEALTH_DOWN);
	good(&h, &c, &t, 1, 15000);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	/* Down and healthy again before the caller looked: it reports from where the
	 * caller last saw the node, so there is nothing to report; the flips count. */
	CU_ASSERT_FALSE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_EQUAL(h.flips, 3);
}

static void test_no_double_flip_report(void)
{
	struct health_conf c = conf();
	struct health h;
	enum health_state from, to;
	const char *why;
	uint64_t t = 1000 * MS;

	health_init(&h, t);
	good(&h, &c, &t, 3, 15000);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	/* Down and straight back: the caller sees a transition that ends where it
	 * started, which take_transition suppresses. */
	health_missed(&h, &c, t += 30 * MS, 3);
	good(&h, &c, &t, 3, 15000);
	CU_ASSERT_FALSE(health_take_transition(&h, &from, &to, &why));
	/* Down, looked at, then back: two lines. */
	health_missed(&h, &c, t += 30 * MS, 3);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_EQUAL(to, HEALTH_DOWN);
	good(&h, &c, &t, 3, 15000);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_EQUAL(from, HEALTH_DOWN);
	CU_ASSERT_EQUAL(to, HEALTH_HEALTHY);
	CU_ASSERT_STRING_EQUAL(why, "3 probes answered");
}

static void test_degraded_by_loss_and_rtt(void)
{
	struct health_conf c = conf();
	struct health h;
	enum health_state from, to;
	const char *why;
	uint64_t t = 1000 * MS;

	health_init(&h, t);
	good(&h, &c, &t, 3, 15000);
	health_take_transition(&h, &from, &to, &why);
	/* Loss above the limit on two probes, then a clean one: no flip. */
	health_sample(&h, &c, t += 30 * MS, 15000, 500, 0.10, 0);
	health_sample(&h, &c, t += 30 * MS, 15000, 500, 0.10, 0);
	health_sample(&h, &c, t += 30 * MS, 15000, 500, 0.0, 0);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	/* Three in a row (downstream this time). */
	for (int i = 0; i < 3; i++)
		health_sample(&h, &c, t += 30 * MS, 15000, 500, 0.0, 0.12);
	CU_ASSERT_EQUAL(h.state, HEALTH_DEGRADED);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_STRING_EQUAL(why, "3 probes with loss 12%");
	/* Loss at the limit is not above it: three good ones and it is healthy. */
	for (int i = 0; i < 3; i++)
		health_sample(&h, &c, t += 30 * MS, 15000, 500, 0.05, 0.05);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_STRING_EQUAL(why, "3 probes good");

	/* An RTT limit, when set. */
	c.degraded_rtt_ms = 100;
	for (int i = 0; i < 3; i++)
		health_sample(&h, &c, t += 30 * MS, 150000, 500, 0, 0);
	CU_ASSERT_EQUAL(h.state, HEALTH_DEGRADED);
	CU_ASSERT_TRUE(health_take_transition(&h, &from, &to, &why));
	CU_ASSERT_STRING_EQUAL(why, "3 probes over 100 ms");
	/* Lost while degraded: down. */
	health_missed(&h, &c, t += 30 * MS, 3);
	CU_ASSERT_EQUAL(h.state, HEALTH_DOWN);
	/* Back with bad probes: degraded, not healthy. */
	for (int i = 0; i < 3; i++)
		health_sample(&h, &c, t += 30 * MS, 150000, 500, 0, 0);
	CU_ASSERT_EQUAL(h.state, HEALTH_DEGRADED);
}

static void test_thresholds_configurable(void)
{
	struct health_conf c = conf();
	struct health h;
	uint64_t t = 1000 * MS;

	c.up_after = 1;
	c.down_after = 5;
	health_init(&h, t);
	good(&h, &c, &t, 1, 15000);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	health_missed(&h, &c, t += 30 * MS, 4);
	CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
	health_missed(&h, &c, t += 30 * MS, 5);
	CU_ASSERT_EQUAL(h.state, HEALTH_DOWN);
}

static void test_window_quantiles(void)
{
	struct health_conf c = conf();
	struct health h;
	struct health_report r;
	uint64_t t = 1000000 * MS;

	health_init(&h, t);
	health_report(&h, &c, t, &r);
	CU_ASSERT_EQUAL(r.rtt_p50_us, -1);
	CU_ASSERT_EQUAL(r.rtt_p95_us, -1);
	CU_ASSERT_EQUAL(r.rtt_recent_us, -1);
	CU_ASSERT_EQUAL(r.jitter_us, -1);
	CU_ASSERT(r.loss_up < 0);
	/* 100 samples 1..100 ms, 50 ms apart: 5 s. */
	for (unsigned i = 1; i <= 100; i++)
		health_sample(&h, &c, t + i * 50 * MS, i * 1000, 700, 0.01, 0.02);
	t += 100 * 50 * MS;
	health_report(&h, &c, t, &r);
	CU_ASSERT_EQUAL(r.window_samples, 100);
	CU_ASSERT_EQUAL(r.rtt_p50_us, 50000);
	CU_ASSERT_EQUAL(r.rtt_p95_us, 95000);
	CU_ASSERT_EQUAL(r.rtt_min_us, 1000);
	/* recent = last 2 s: samples 61..100, median 80. */
	CU_ASSERT_EQUAL(r.rtt_recent_us, 80000);
	CU_ASSERT_EQUAL(r.jitter_us, 700);
	CU_ASSERT_DOUBLE_EQUAL(r.loss_up, 0.01, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(r.loss_down, 0.02, 1e-9);
	CU_ASSERT_EQUAL(r.last_sample_age_us, 0);
	/* 8 s later the oldest 59 (older than 10 s) have left the window. */
	health_report(&h, &c, t + 8000 * MS, &r);
	CU_ASSERT_EQUAL(r.window_samples, 41);
	CU_ASSERT_EQUAL(r.rtt_p50_us, 80000);
	CU_ASSERT_EQUAL(r.rtt_recent_us, -1);
	CU_ASSERT_EQUAL(r.last_sample_age_us, 8000 * (int64_t)MS);
	/* Much later nothing is left; the state is not touched by time alone. */
	health_report(&h, &c, t + 60000 * MS, &r);
	CU_ASSERT_EQUAL(r.window_samples, 0);
	CU_ASSERT_EQUAL(r.rtt_p50_us, -1);
	CU_ASSERT_EQUAL(r.state, HEALTH_HEALTHY);
}

static void test_ring_overflow(void)
{
	struct health_conf c = conf();
	struct health h;
	struct health_report r;
	struct health_sample s[8];
	uint64_t t = 1000 * MS;

	health_init(&h, t);
	/* Three ring's worth at 1 ms: only the newest HEALTH_SAMPLES stay. */
	for (unsigned i = 0; i < 3 * HEALTH_SAMPLES; i++)
		health_sample(&h, &c, t + i * MS, i, -1, -1, -1);
	t += 3 * HEALTH_SAMPLES * MS;
	health_report(&h, &c, t, &r);
	CU_ASSERT_EQUAL(r.window_samples, HEALTH_SAMPLES);
	CU_ASSERT_EQUAL(r.rtt_min_us, 2 * HEALTH_SAMPLES);
	CU_ASSERT_EQUAL(r.samples_total, 3 * HEALTH_SAMPLES);
	/* Unreported measurements stay unknown. */
	CU_ASSERT_EQUAL(r.jitter_us, -1);
	/* History access: the newest ones, oldest first. */
	CU_ASSERT_EQUAL(health_samples(&h, t, 10000, s, 8), 8);
	CU_ASSERT_EQUAL(s[0].rtt_us, 3 * HEALTH_SAMPLES - 8);
	CU_ASSERT_EQUAL(s[7].rtt_us, 3 * HEALTH_SAMPLES - 1);
	CU_ASSERT_EQUAL(health_samples(&h, t, 3, s, 8), 3);
}

static void test_names(void)
{
	CU_ASSERT_STRING_EQUAL(health_state_name(HEALTH_UNKNOWN), "unknown");
	CU_ASSERT_STRING_EQUAL(health_state_name(HEALTH_HEALTHY), "healthy");
	CU_ASSERT_STRING_EQUAL(health_state_name(HEALTH_DEGRADED), "degraded");
	CU_ASSERT_STRING_EQUAL(health_state_name(HEALTH_DOWN), "down");
	CU_ASSERT_STRING_EQUAL(health_state_name((enum health_state)99), "unknown");
}

UNIT_MAIN("health",
	  { "up after N answers", test_up_after_n },
	  { "down after N lost in a row", test_down_after_n_lost },
	  { "back from down", test_back_from_down },
	  { "each transition reported once", test_no_double_flip_report },
	  { "degraded by loss and RTT", test_degraded_by_loss_and_rtt },
	  { "thresholds configurable", test_thresholds_configurable },
	  { "window quantiles", test_window_quantiles },
	  { "ring overflow and history", test_ring_overflow },
	  { "state names", test_names })
