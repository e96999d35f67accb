/* Unit tests for controller/failover.c: the cooldown after a switch, the limit on
 * switches per window (a dead route is still left), the backup kept armed (and never
 * a dead one), the dataplane's own switches adopted with their reason, and manual
 * failover's refusals. */

#include "../../controller/failover.h"

#include <string.h>

#include "unit.h"

#define MS 1000ull

static struct select_score sc(double ms)
{
	struct select_score s;

	memset(&s, 0, sizeof(s));
	s.usable = s.known = ms > 0;
	s.score_us = ms * 1000;
	return s;
}

static struct select_decision decide(int choose, enum select_reason why, int standby)
{
	struct select_decision d;

	memset(&d, 0, sizeof(d));
	d.choose = choose;
	d.reason = why;
	d.best = choose;
	d.standby = standby;
	d.challenger = -1;
	return d;
}

struct fx {
	struct failover f;
	struct failover_conf c;
	struct select_conf sc;
	struct select_score s[3];
};

static void fx_init(struct fx *x)
{
	failover_init(&x->f);
	failover_conf_defaults(&x->c);
	select_conf_defaults(&x->sc);
	x->s[0] = sc(20);
	x->s[1] = sc(30);
	x->s[2] = sc(40);
}

static unsigned step(struct fx *x, const struct select_decision *d, uint64_t t,
		     struct failover_action a[2], enum fo_hold *hold)
{
	uint64_t until;

	return failover_step(&x->f, &x->c, &x->sc, d, x->s, 3, t, a, hold, &until);
}

static void test_initial_then_arm(void)
{
	struct fx x;
	struct failover_action a[2];
	enum fo_hold hold;
	enum switch_reason why;
	struct select_decision d;

	fx_init(&x);
	d = decide(0, SELECT_INITIAL, 0);
	CU_ASSERT_EQUAL(step(&x, &d, 1000 * MS, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_SET_ROUTE);
	CU_ASSERT_EQUAL(a[0].slot, 0);
	CU_ASSERT_EQUAL(a[0].reason, SW_INITIAL);
	/* Pending: nothing more until the switch shows. */
	CU_ASSERT_EQUAL(step(&x, &d, 1010 * MS, a, &hold), 0);
	CU_ASSERT_EQUAL(hold, FO_HOLD_PENDING);
	CU_ASSERT_TRUE(failover_observe(&x.f, 0, -1, false, 1020 * MS, &why));
	CU_ASSERT_EQUAL(why, SW_INITIAL);
	/* The first route is no flap: no cooldown, no count. */
	CU_ASSERT_EQUAL(x.f.last_switch_us, 0);
	CU_ASSERT_EQUAL(x.f.n_recent, 0);
	/* Now the best standby is armed, once. */
	d = decide(-1, SELECT_KEEP, 1);
	CU_ASSERT_EQUAL(step(&x, &d, 1030 * MS, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_ARM);
	CU_ASSERT_EQUAL(a[0].slot, 1);
	CU_ASSERT_EQUAL(step(&x, &d, 1040 * MS, a, &hold), 0);
	failover_done(&x.f, FO_ARM, a[0].slot, true, 0, &why);
	CU_ASSERT_FALSE(failover_observe(&x.f, 0, 1, false, 1050 * MS, &why));
	CU_ASSERT_EQUAL(x.f.backup, 1);
	CU_ASSERT_EQUAL(step(&x, &d, 1060 * MS, a, &hold), 0);
}

static void test_backup_hysteresis_and_dead_backup(void)
{
	struct fx x;
	struct failover_action a[2];
	enum fo_hold hold;
	enum switch_reason why;
	struct select_decision d;

	fx_init(&x);
	failover_adopt(&x.f, 0, 1);
	/* Slot 2 edges past slot 1 by less than the margin: the armed one stays. */
	x.s[1] = sc(30);
	x.s[2] = sc(29);
	d = decide(-1, SELECT_KEEP, 2);
	CU_ASSERT_EQUAL(step(&x, &d, 1000 * MS, a, &hold), 0);
	/* By more than the margin (29 * 1.1 + 5 < 50): re-armed. */
	x.s[1] = sc(50);
	CU_ASSERT_EQUAL(step(&x, &d, 1100 * MS, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_ARM);
	CU_ASSERT_EQUAL(a[0].slot, 2);
	failover_done(&x.f, FO_ARM, 2, true, 0, &why);
	/* The armed backup dies and nothing else is usable: disarmed (never fail over
	 * to a dead node). */
	x.s[1] = sc(0);
	x.s[2] = sc(0);
	x.s[1].known = x.s[2].known = true; /* measured: down */
	d = decide(-1, SELECT_KEEP, -1);
	CU_ASSERT_EQUAL(step(&x, &d, 1200 * MS, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_ARM);
	CU_ASSERT_EQUAL(a[0].slot, -1);
	/* A failed arm request lets the next round try again. */
	failover_done(&x.f, FO_ARM, a[0].slot, false, 0, &why);
	CU_ASSERT_EQUAL(step(&x, &d, 1250 * MS, a, &hold), 1);
	/* An armed backup not measured yet (adopted by a controller that just started)
	 * is kept, even with nothing else usable. */
	failover_done(&x.f, FO_ARM, 1, true, 0, &why);
	x.f.backup = 1;
	x.s[1].known = false;
	CU_ASSERT_EQUAL(step(&x, &d, 1260 * MS, a, &hold), 0);
	x.s[1].known = true;
	failover_done(&x.f, FO_ARM, a[0].slot, false, 0, &why);
	CU_ASSERT_EQUAL(step(&x, &d, 1300 * MS, a, &hold), 1);
}

static void test_cooldown(void)
{
	struct fx x;
	struct failover_action a[2];
	enum fo_hold hold;
	enum switch_reason why;
	struct select_decision d;
	uint64_t until;

	fx_init(&x);
	failover_adopt(&x.f, 1, 0);
	/* The dataplane failed over by itself (1 -> 0)... */
	CU_ASSERT_TRUE(failover_observe(&x.f, 0, -1, true, 1000 * MS, &why));
	CU_ASSERT_EQUAL(why, SW_FAILOVER);
	/* ...so a better-score switch waits out the cooldown (10 s). */
	d = decide(2, SELECT_BETTER, 2);
	CU_ASSERT_EQUAL(failover_step(&x.f, &x.c, &x.sc, &d, x.s, 3, 5000 * MS, a, &hold, &until), 1);
	CU_ASSERT_EQUAL(hold, FO_HOLD_COOLDOWN);
	CU_ASSERT_EQUAL(until, 11000 * MS);
	/* (meanwhile the backup is kept armed) */
	CU_ASSERT_EQUAL(a[0].kind, FO_ARM);
	failover_done(&x.f, FO_ARM, 2, true, 0, &why);
	/* A dead route with a live backup armed: the dataplane gets a moment to fail over
	 * by itself... (slot 1 does not beat the armed backup by the margin, so no re-arm) */
	x.s[1] = sc(39);
	d = decide(1, SELECT_DOWN, 1);
	CU_ASSERT_EQUAL(failover_step(&x.f, &x.c, &x.sc, &d, x.s, 3, 5100 * MS, a, &hold, &until), 0);
	CU_ASSERT_EQUAL(hold, FO_HOLD_DATAPLANE);
	CU_ASSERT_EQUAL(until, 5100 * MS + FO_DATAPLANE_GRACE_US);
	/* ...then it is left, cooldown or not. */
	CU_ASSERT_EQUAL(step(&x, &d, 5100 * MS + FO_DATAPLANE_GRACE_US, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_SET_ROUTE);
	CU_ASSERT_EQUAL(a[0].reason, SW_RECOVERY);
	CU_ASSERT_TRUE(failover_observe(&x.f, 1, 2, false, 5200 * MS, &why));
	CU_ASSERT_EQUAL(why, SW_RECOVERY);
	/* After the cooldown the better switch goes. */
	d = decide(2, SELECT_BETTER, 2);
	CU_ASSERT_EQUAL(step(&x, &d, 15100 * MS, a, &hold), 0);
	/* (the initial route is no flap: it starts no cooldown) */
	CU_ASSERT_EQUAL(hold, FO_HOLD_COOLDOWN);
	CU_ASSERT_EQUAL(step(&x, &d, 15200 * MS, a, &hold), 1);
	CU_ASSERT_EQUAL(hold, FO_HOLD_NONE);
	CU_ASSERT_EQUAL(a[0].kind, FO_SET_ROUTE);
	CU_ASSERT_EQUAL(a[0].slot, 2);
	CU_ASSERT_EQUAL(a[0].reason, SW_SELECTION);
	CU_ASSERT_STRING_EQUAL(failover_reason_name(a[0].reason), "selection");
}

static void test_attempt_limit(void)
{
	struct fx x;
	struct failover_action a[2];
	enum fo_hold hold;
	enum switch_reason why;
	struct select_decision d;
	uint64_t t = 100000 * MS, until;

	fx_init(&x);
	x.c.cooldown_ms = 0;
	x.c.max_switches = 3;
	x.c.window_ms = 60000;
	failover_adopt(&x.f, 0, -1);
	/* Three switches for a better score within the window go... */
	for (int i = 0; i < 3; i++) {
		int to = (x.f.active + 1) % 2;
		d = decide(to, SELECT_BETTER, to);
		CU_ASSERT_EQUAL(step(&x, &d, t, a, &hold), 1);
		CU_ASSERT_EQUAL(a[0].kind, FO_SET_ROUTE);
		CU_ASSERT_TRUE(failover_observe(&x.f, to, -1, false, t, &why));
		CU_ASSERT_EQUAL(why, SW_SELECTION);
		t += 1000 * MS;
	}
	/* ...the fourth waits until the first leaves the window. */
	CU_ASSERT_EQUAL(x.f.active, 1);
	d = decide(0, SELECT_BETTER, 0);
	CU_ASSERT_EQUAL(failover_step(&x.f, &x.c, &x.sc, &d, x.s, 3, t, a, &hold, &until), 1);
	CU_ASSERT_EQUAL(hold, FO_HOLD_LIMIT);
	CU_ASSERT_EQUAL(a[0].kind, FO_ARM);
	CU_ASSERT_EQUAL(until, 100000 * MS + 60000 * MS);
	failover_done(&x.f, FO_ARM, a[0].slot, true, 0, &why);
	/* A dead route is still left (after the dataplane's grace: slot 0 is armed). */
	d = decide(0, SELECT_DOWN, 0);
	CU_ASSERT_EQUAL(step(&x, &d, t + 1, a, &hold), 0);
	CU_ASSERT_EQUAL(hold, FO_HOLD_DATAPLANE);
	CU_ASSERT_EQUAL(step(&x, &d, t + 1 + FO_DATAPLANE_GRACE_US, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_SET_ROUTE);
	CU_ASSERT_EQUAL(a[0].reason, SW_RECOVERY);
	failover_done(&x.f, FO_SET_ROUTE, a[0].slot, false, 0, &why);
	/* Once the window has moved on, better-score switches go again. */
	d = decide(0, SELECT_BETTER, 0);
	CU_ASSERT_EQUAL(step(&x, &d, 100000 * MS + 60000 * MS + 2 * FO_DATAPLANE_GRACE_US, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_SET_ROUTE);
}

static void test_observe_reasons(void)
{
	struct fx x;
	struct failover_action a[2];
	enum fo_hold hold;
	enum switch_reason why;
	struct select_decision d;

	fx_init(&x);
	failover_adopt(&x.f, 0, 1);
	/* Someone else steered the dataplane: adopted as external. */
	CU_ASSERT_TRUE(failover_observe(&x.f, 2, 1, false, 1000 * MS, &why));
	CU_ASSERT_EQUAL(why, SW_EXTERNAL);
	/* A switch of ours that failed leaves nothing pending. */
	d = decide(0, SELECT_DOWN, 0);
	CU_ASSERT_EQUAL(step(&x, &d, 2000 * MS, a, &hold), 1);
	failover_done(&x.f, FO_SET_ROUTE, a[0].slot, false, 0, &why);
	CU_ASSERT_EQUAL(x.f.pending_to, -1);
	/* A pending switch that never shows expires. */
	CU_ASSERT_EQUAL(step(&x, &d, 3000 * MS, a, &hold), 1);
	CU_ASSERT_EQUAL(step(&x, &d, 4000 * MS, a, &hold), 0);
	CU_ASSERT_EQUAL(hold, FO_HOLD_PENDING);
	CU_ASSERT_EQUAL(step(&x, &d, 7000 * MS, a, &hold), 1);
	CU_ASSERT_EQUAL(a[0].kind, FO_SET_ROUTE);
	/* Our switch confirmed by the answer first: recorded once, the event that
	 * follows is no second switch. */
	failover_adopt(&x.f, 0, 1);
	d = decide(1, SELECT_DOWN, 1);
	CU_ASSERT_EQUAL(step(&x, &d, 8000 * MS, a, &hold), 1);
	CU_ASSERT_TRUE(failover_done(&x.f, FO_SET_ROUTE, 1, true, 8001 * MS, &why));
	CU_ASSERT_EQUAL(why, SW_RECOVERY);
	CU_ASSERT_EQUAL(x.f.active, 1);
	CU_ASSERT_EQUAL(x.f.backup, -1);
	CU_ASSERT_FALSE(failover_observe(&x.f, 1, -1, false, 8002 * MS, &why));
	/* The event first, then the answer: also once. */
	d = decide(0, SELECT_DOWN, 0);
	CU_ASSERT_EQUAL(step(&x, &d, 9000 * MS, a, &hold), 1);
	CU_ASSERT_TRUE(failover_observe(&x.f, 0, -1, false, 9001 * MS, &why));
	CU_ASSERT_EQUAL(why, SW_RECOVERY);
	CU_ASSERT_FALSE(failover_done(&x.f, FO_SET_ROUTE, 0, true, 9002 * MS, &why));
	/* Forgetting the active slot's node. */
	failover_forget(&x.f, 0);
	CU_ASSERT_EQUAL(x.f.active, -1);
}

static void test_manual(void)
{
	struct fx x;
	struct failover_action a;
	enum switch_reason why;
	struct select_decision d;
	const char *names[3] = { "a", "b", "c" };
	char msg[128];

	fx_init(&x);
	failover_adopt(&x.f, 0, 1);
	d = decide(-1, SELECT_KEEP, 1);
	/* To the best standby. */
	CU_ASSERT_EQUAL(failover_manual(&x.f, &d, x.s, names, 3, -1, 1000 * MS, &a, msg, sizeof(msg)),
			LS_RC_OK);
	CU_ASSERT_EQUAL(a.kind, FO_SET_ROUTE);
	CU_ASSERT_EQUAL(a.slot, 1);
	CU_ASSERT_EQUAL(a.reason, SW_MANUAL);
	CU_ASSERT_TRUE(failover_observe(&x.f, 1, -1, false, 1100 * MS, &why));
	CU_ASSERT_EQUAL(why, SW_MANUAL);
	/* To a named node, even inside the cooldown. */
	CU_ASSERT_EQUAL(failover_manual(&x.f, &d, x.s, names, 3, 2, 1200 * MS, &a, msg, sizeof(msg)),
			LS_RC_OK);
	CU_ASSERT_EQUAL(a.slot, 2);
	failover_done(&x.f, FO_SET_ROUTE, a.slot, false, 0, &why);
	/* Refusals: already active, down, not measured, no standby. */
	CU_ASSERT_EQUAL(failover_manual(&x.f, &d, x.s, names, 3, 1, 1300 * MS, &a, msg, sizeof(msg)),
			LS_RC_CONFLICT);
	CU_ASSERT_STRING_EQUAL(msg, "b is already the active route");
	x.s[2] = sc(0);
	x.s[2].known = true;
	CU_ASSERT_EQUAL(failover_manual(&x.f, &d, x.s, names, 3, 2, 1300 * MS, &a, msg, sizeof(msg)),
			LS_RC_CONFLICT);
	CU_ASSERT_STRING_EQUAL(msg, "c is down: not a route to fail over to");
	x.s[2].known = false;
	CU_ASSERT_EQUAL(failover_manual(&x.f, &d, x.s, names, 3, 2, 1300 * MS, &a, msg, sizeof(msg)),
			LS_RC_CONFLICT);
	CU_ASSERT_STRING_EQUAL(msg, "c is not measured yet: not a route to fail over to");
	d.standby = -1;
	CU_ASSERT_EQUAL(failover_manual(&x.f, &d, x.s, names, 3, -1, 1300 * MS, &a, msg, sizeof(msg)),
			LS_RC_CONFLICT);
	names[2] = NULL;
	CU_ASSERT_EQUAL(failover_manual(&x.f, &d, x.s, names, 3, 2, 1300 * MS, &a, msg, sizeof(msg)),
			LS_RC_NOT_FOUND);
}

UNIT_MAIN("failover",
	  { "initial route, then the backup armed", test_initial_then_arm },
	  { "backup hysteresis, dead backup disarmed", test_backup_hysteresis_and_dead_backup },
	  { "cooldown", test_cooldown },
	  { "attempt limit", test_attempt_limit },
	  { "switch reasons observed", test_observe_reasons },
	  { "manual failover", test_manual })
