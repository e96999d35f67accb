/* Unit tests for controller/select.c and select_nearest.c: the nearest score (path
 * RTT, loss penalty, the node's leg to the game server), the margin (score * 1.1 +
 * 5 ms) and the hold window (a switch only when the challenger beat the margin for
 * the whole window, and never while the current route is not yet measured). */

#include "../../controller/select.h"

#include <math.h>
#include <string.h>

#include "unit.h"

#define MS 1000ull

static struct health_report rep(enum health_state st, int64_t recent_us, double up, double down)
{
	struct health_report r;

	memset(&r, 0, sizeof(r));
	r.state = st;
	r.rtt_recent_us = r.rtt_p50_us = r.rtt_p95_us = recent_us;
	r.loss_up = up;
	r.loss_down = down;
	return r;
}

static void score_one(struct selector *sel, struct health_report *r, int64_t leg,
		      struct select_score *out)
{
	struct node_facts f = { "", -1, -1, -1 };
	struct select_cand c = { "a", r, NULL, &f, leg, -1, false };

	sel->score(sel->self, &c, 1, 0, out);
}

static void test_nearest_score(void)
{
	struct select_nearest_conf nc;
	struct selector sel;
	struct health_report r;
	struct select_score s;

	select_nearest_defaults(&nc);
	sel = select_nearest(&nc);
	CU_ASSERT_STRING_EQUAL(sel.name, "nearest");

	r = rep(HEALTH_HEALTHY, 20000, -1, -1);
	score_one(&sel, &r, -1, &s);
	CU_ASSERT_TRUE(s.usable);
	CU_ASSERT_TRUE(s.known);
	CU_ASSERT_DOUBLE_EQUAL(s.score_us, 20000, 1e-6);
	CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "rtt 20.0 ms"));

	/* 2% up, 0% down: 2% round trip at 10 ms per % = +20 ms. */
	r = rep(HEALTH_DEGRADED, 20000, 0.02, 0);
	score_one(&sel, &r, -1, &s);
	CU_ASSERT_TRUE(s.usable);
	CU_ASSERT_DOUBLE_EQUAL(s.score_us, 40000, 1e-6);
	/* Both ways compound: 1 - 0.9 * 0.9 = 19%. */
	r = rep(HEALTH_HEALTHY, 10000, 0.1, 0.1);
	score_one(&sel, &r, -1, &s);
	CU_ASSERT_DOUBLE_EQUAL(s.score_us, 10000 + 19 * 10000, 1e-3);

	/* The node's leg to the game server joins the score when known. */
	r = rep(HEALTH_HEALTHY, 20000, 0, 0);
	score_one(&sel, &r, 7000, &s);
	CU_ASSERT_DOUBLE_EQUAL(s.score_us, 27000, 1e-6);
	CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "server leg 7.0 ms"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "= 27.0 ms"));
	nc.use_server_leg = false;
	score_one(&sel, &r, 7000, &s);
	CU_ASSERT_DOUBLE_EQUAL(s.score_us, 20000, 1e-6);
	/* The conf is read live (a reload writes into it). */
	nc.loss_penalty_ms = 0;
	r = rep(HEALTH_HEALTHY, 20000, 0.5, 0);
	score_one(&sel, &r, -1, &s);
	CU_ASSERT_DOUBLE_EQUAL(s.score_us, 20000, 1e-6);

	/* Down and unmeasured are never usable; down is known, unmeasured is not. */
	r = rep(HEALTH_DOWN, 20000, 0, 0);
	score_one(&sel, &r, -1, &s);
	CU_ASSERT_FALSE(s.usable);
	CU_ASSERT_TRUE(s.known);
	CU_ASSERT_STRING_EQUAL(s.why, "down");
	r = rep(HEALTH_UNKNOWN, 20000, 0, 0);
	score_one(&sel, &r, -1, &s);
	CU_ASSERT_FALSE(s.usable);
	CU_ASSERT_FALSE(s.known);
	/* Healthy but no sample in the recent window (a stalled feed). */
	r = rep(HEALTH_HEALTHY, -1, 0, 0);
	score_one(&sel, &r, -1, &s);
	CU_ASSERT_FALSE(s.usable);
}

static struct select_score sc(double ms)
{
	struct select_score s;

	memset(&s, 0, sizeof(s));
	s.usable = s.known = ms > 0;
	s.score_us = ms * 1000;
	return s;
}

static void test_margin(void)
{
	struct select_conf c;

	select_conf_defaults(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.margin_ratio, 1.1, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(c.margin_ms, 5, 1e-9);
	CU_ASSERT_EQUAL(c.hold_ms, 5000);
	/* 20 ms displaces a route only above 20 * 1.1 + 5 = 27 ms. */
	CU_ASSERT_FALSE(select_beats(&c, 20000, 27000));
	CU_ASSERT_TRUE(select_beats(&c, 20000, 27001));
	CU_ASSERT_FALSE(select_beats(&c, 20000, 22000));
	c.margin_ratio = 1.0;
	c.margin_ms = 0;
	CU_ASSERT_TRUE(select_beats(&c, 20000, 20001));
}

static void test_hold_window(void)
{
	struct select_conf c;
	struct select_state st = { .first_usable_us = 0 };
	struct select_decision d;
	struct select_score s[2];
	uint64_t t = 1000000 * MS;

	select_conf_defaults(&c);
	/* Current 0 at 40 ms; 1 at 20 ms beats 20 * 1.1 + 5 = 27 < 40. */
	s[0] = sc(40);
	s[1] = sc(20);
	select_decide(&st, &c, s, 2, 0, t, &d);
	CU_ASSERT_EQUAL(d.reason, SELECT_KEEP);
	CU_ASSERT_EQUAL(d.challenger, 1);
	CU_ASSERT_EQUAL(d.best, 1);
	CU_ASSERT_EQUAL(d.standby, 1);
	CU_ASSERT_DOUBLE_EQUAL(d.lead_us, 27000 - 40000, 1e-6);
	/* Still beating 4.9 s later: held. */
	select_decide(&st, &c, s, 2, 0, t + 4900 * MS, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	CU_ASSERT_EQUAL(d.beating_us, 4900 * MS);
	/* One round without the margin ends the streak... */
	s[0] = sc(26);
	select_decide(&st, &c, s, 2, 0, t + 4950 * MS, &d);
	CU_ASSERT_EQUAL(d.challenger, -1);
	CU_ASSERT(d.lead_us > 0);
	s[0] = sc(40);
	select_decide(&st, &c, s, 2, 0, t + 5000 * MS, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	CU_ASSERT_EQUAL(d.beating_us, 0);
	/* ...so the window starts again from there. */
	select_decide(&st, &c, s, 2, 0, t + 9999 * MS, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	select_decide(&st, &c, s, 2, 0, t + 10000 * MS, &d);
	CU_ASSERT_EQUAL(d.reason, SELECT_BETTER);
	CU_ASSERT_EQUAL(d.choose, 1);
	CU_ASSERT_STRING_EQUAL(select_reason_name(d.reason), "better");
	/* A shorter window, configured. */
	struct select_state st2 = { .first_usable_us = 0 };
	c.hold_ms = 0;
	select_decide(&st2, &c, s, 2, 0, t, &d);
	CU_ASSERT_EQUAL(d.choose, 1);
}

static void test_crossing_below_margin(void)
{
	struct select_conf c;
	struct select_state st = { .first_usable_us = 0 };
	struct select_decision d;
	struct select_score s[2];
	uint64_t t = 1000000 * MS;
	int switches = 0, cur = 0;

	select_conf_defaults(&c);
	/* Two routes whose RTTs cross every 2 s by less than the margin: never a switch. */
	for (unsigned i = 0; i < 600; i++) {
		bool phase = (i / 20) % 2;
		s[0] = sc(phase ? 24 : 20);
		s[1] = sc(phase ? 20 : 24);
		select_decide(&st, &c, s, 2, cur, t + i * 100 * MS, &d);
		if (d.choose >= 0) {
			cur = d.choose;
			switches++;
		}
	}
	CU_ASSERT_EQUAL(switches, 0);
}

static void test_best_of_sustained(void)
{
	struct select_conf c;
	struct select_state st = { .first_usable_us = 0 };
	struct select_decision d;
	struct select_score s[3];
	uint64_t t = 1000000 * MS;

	select_conf_defaults(&c);
	s[0] = sc(100);
	s[1] = sc(50);
	s[2] = sc(0); /* unusable */
	select_decide(&st, &c, s, 3, 0, t, &d);
	CU_ASSERT_EQUAL(d.challenger, 1);
	/* Slot 2 appears later, better still: its own streak starts then. */
	s[2] = sc(10);
	select_decide(&st, &c, s, 3, 0, t + 3000 * MS, &d);
	CU_ASSERT_EQUAL(d.challenger, 2);
	CU_ASSERT_EQUAL(d.beating_us, 0);
	/* At 5 s only slot 1 has held the whole window: it wins, not the newcomer. */
	select_decide(&st, &c, s, 3, 0, t + 5000 * MS, &d);
	CU_ASSERT_EQUAL(d.choose, 1);
	/* A forgotten slot (its node replaced) starts over. */
	select_forget(&st, 1);
	select_decide(&st, &c, s, 3, 0, t + 5100 * MS, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
}

static void test_initial_down_unknown(void)
{
	struct select_conf c;
	struct select_state st = { .first_usable_us = 0 };
	struct select_decision d;
	struct select_score s[3];

	select_conf_defaults(&c);
	s[0] = sc(30);
	s[1] = sc(20);
	s[2] = sc(0);
	/* No route yet: the best usable, at once. */
	select_decide(&st, &c, s, 3, -1, 1, &d);
	CU_ASSERT_EQUAL(d.reason, SELECT_INITIAL);
	CU_ASSERT_EQUAL(d.choose, 1);
	/* Current route down (known, unusable): the best, at once. */
	s[2].known = true;
	select_decide(&st, &c, s, 3, 2, 2, &d);
	CU_ASSERT_EQUAL(d.reason, SELECT_DOWN);
	CU_ASSERT_EQUAL(d.choose, 1);
	CU_ASSERT_EQUAL(d.standby, 1);
	/* Current route not measured yet (a controller just started): kept. */
	s[2].known = false;
	select_decide(&st, &c, s, 3, 2, 3, &d);
	CU_ASSERT_EQUAL(d.reason, SELECT_KEEP);
	CU_ASSERT_EQUAL(d.choose, -1);
	/* Nothing usable at all: stay (fail-static). */
	s[0] = sc(0);
	s[1] = sc(0);
	s[2].known = true;
	select_decide(&st, &c, s, 3, 2, 4, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	CU_ASSERT_EQUAL(d.best, -1);
	select_decide(&st, &c, s, 3, -1, 5, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
}

static void test_initial_wait(void)
{
	struct select_conf c;
	struct select_state st = { .first_usable_us = 0 };
	struct select_decision d;
	struct select_score s[3];
	uint64_t t = 1000000 * MS;

	select_conf_defaults(&c);
	CU_ASSERT_EQUAL(c.initial_wait_ms, 1500);
	/* Slot 0 measured, slot 1 (a slow standby) not yet, slot 2 empty. */
	s[0] = sc(40);
	s[1] = sc(0);
	s[0].present = s[1].present = true;
	s[2] = sc(0);
	select_decide(&st, &c, s, 3, -1, t, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	/* Slot 1 measured 800 ms later, and better: it is the first route. */
	s[1] = sc(20);
	s[1].present = true;
	select_decide(&st, &c, s, 3, -1, t + 800 * MS, &d);
	CU_ASSERT_EQUAL(d.reason, SELECT_INITIAL);
	CU_ASSERT_EQUAL(d.choose, 1);
	/* A candidate that never answers holds the first choice only for the wait. */
	struct select_state st2 = { .first_usable_us = 0 };
	s[1] = sc(0);
	s[1].present = true;
	select_decide(&st2, &c, s, 3, -1, t, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	select_decide(&st2, &c, s, 3, -1, t + 1499 * MS, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	select_decide(&st2, &c, s, 3, -1, t + 1500 * MS, &d);
	CU_ASSERT_EQUAL(d.choose, 0);
}

UNIT_MAIN("select",
	  { "initial choice waits for the candidates", test_initial_wait },
	  { "nearest score", test_nearest_score },
	  { "margin rule", test_margin },
	  { "hold window", test_hold_window },
	  { "crossing below the margin never switches", test_crossing_below_margin },
	  { "best of the sustained challengers", test_best_of_sustained },
	  { "initial, down and unmeasured routes", test_initial_down_unknown })
