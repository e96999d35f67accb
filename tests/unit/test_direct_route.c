/* Unit tests for controller/direct_route.c: the direct-or-relayed rule (relay only when
 * it saves [direct] gain_ms or the direct path loses more than max_loss) and the quiet
 * time before a switch between them, on a controller state built by hand. */

#include "../../controller/controller.h"

#include <stdlib.h>
#include <string.h>

#include "unit.h"

enum { A = 0, D = 1 };

static struct ctrl *make(double a_ms, double d_ms)
{
	struct ctrl *c = calloc(1, sizeof(*c));

	ctrl_conf_defaults(&c->conf);
	c->conf.direct_quiet_ms = 1000;
	c->fo.active = -1;
	c->fo.backup = -1;
	snprintf(c->nodes.n[A].conf.name, NODE_NAME_MAX, "a");
	snprintf(c->nodes.n[D].conf.name, NODE_NAME_MAX, "direct");
	c->nodes.n[D].conf.direct = true;
	for (int i = 0; i < 2; i++) {
		c->nodes.n[i].used = true;
		c->nodes.n[i].score.usable = c->nodes.n[i].score.known = true;
		c->nodes.n[i].score.score_us = (i == A ? a_ms : d_ms) * 1000;
	}
	return c;
}

static struct select_decision keep(void)
{
	return (struct select_decision){ .reason = SELECT_KEEP, .choose = -1 };
}

static void test_relay_only_when_it_pays(void)
{
	struct ctrl *c = make(20, 25); /* a saves 5 ms: not enough */
	struct select_decision d = { .reason = SELECT_INITIAL, .choose = A };

	CU_ASSERT_EQUAL(droute_slot(c), D);
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, D);
	CU_ASSERT_TRUE(c->droute.want_direct);
	CU_ASSERT_PTR_NOT_NULL(strstr(c->droute.why, "no relayed route saves 10 ms"));
	free(c);

	c = make(14, 25); /* a saves 11 ms */
	d = (struct select_decision){ .reason = SELECT_INITIAL, .choose = D };
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, A);
	CU_ASSERT_PTR_NOT_NULL(strstr(c->droute.why, "relayed: a saves 11.0 ms"));
	free(c);

	/* The direct path loses 2 in 64: relayed, however fast direct is. */
	c = make(30, 5);
	for (unsigned i = 0; i < DROUTE_OUTCOMES; i++)
		c->droute.outcome[i] = i >= 2;
	c->droute.n_out = DROUTE_OUTCOMES;
	d = (struct select_decision){ .reason = SELECT_INITIAL, .choose = D };
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, A);
	CU_ASSERT_PTR_NOT_NULL(strstr(c->droute.why, "the direct path loses 3.12%"));
	free(c);

	/* Unusable direct: relayed. */
	c = make(30, 5);
	c->nodes.n[D].score.usable = false;
	d = (struct select_decision){ .reason = SELECT_INITIAL, .choose = D };
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, A);
	free(c);
}

static void test_switch_waits_for_quiet(void)
{
	struct ctrl *c = make(20, 25);
	struct select_decision d = keep();
	uint64_t now = 100000000;

	c->fo.active = A; /* relayed now, direct wanted */
	/* The counters last grew at `now`, and were still 0.3 s later. */
	c->droute.last_game_us = now;
	c->droute.quiet_until_us = now + 300000;
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	CU_ASSERT_TRUE(c->droute.holding);
	CU_ASSERT_EQUAL(c->droute.holds, 1);
	/* Still 0.9 s: the same hold, not a second one. */
	d = keep();
	c->droute.quiet_until_us = now + 900000;
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	CU_ASSERT_EQUAL(c->droute.holds, 1);
	/* Quiet for the whole quiet_ms: the switch goes. */
	d = keep();
	c->droute.quiet_until_us = now + 1100000;
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, D);
	CU_ASSERT_EQUAL(d.reason, SELECT_BETTER);
	CU_ASSERT_FALSE(c->droute.holding);

	/* A dead active route is left at once, quiet or not. */
	d = (struct select_decision){ .reason = SELECT_DOWN, .choose = D };
	c->droute.last_game_us = c->droute.quiet_until_us;
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, D);
	free(c);
}

static void test_selection_never_crosses_the_line(void)
{
	struct ctrl *c = make(20, 25);
	struct select_decision d = { .reason = SELECT_BETTER, .choose = A };

	/* On direct, wanted: selection's "a is better" does not move it. */
	c->fo.active = D;
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	CU_ASSERT_EQUAL(d.reason, SELECT_KEEP);
	free(c);

	/* Relayed and relayed wanted: a move to direct by score is no selection's call. */
	c = make(5, 25);
	c->fo.active = A;
	d = (struct select_decision){ .reason = SELECT_BETTER, .choose = D };
	droute_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	free(c);
}

UNIT_MAIN("direct_route",
	  { "relay only when it saves gain_ms or direct loses", test_relay_only_when_it_pays },
	  { "a switch between direct and relayed waits for quiet", test_switch_waits_for_quiet },
	  { "selection never crosses between direct and relayed", test_selection_never_crosses_the_line })
