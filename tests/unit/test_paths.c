/* Unit tests for controller/paths.c: the client's route objects read path by path,
 * hostile ones refused (they come from a socket); which nodes are the file's; and the
 * hold on a better egress while a path to the active one works. */

#include "../../controller/controller.h"

#include <stdlib.h>
#include <string.h>

#include "unit.h"

static struct ctrl *make(void)
{
	struct ctrl *c = calloc(1, sizeof(*c));

	ctrl_conf_defaults(&c->conf);
	c->fo.active = c->fo.backup = -1;
	for (int i = 0; i < 2; i++) {
		c->nodes.n[i].used = true;
		c->nodes.n[i].added_us = 1 + (uint64_t)i;
		snprintf(c->nodes.n[i].conf.name, NODE_NAME_MAX, "%c", 'e' + i);
	}
	/* r1 reaches e only. */
	snprintf(c->conf.mp.relays[0].name, NODE_NAME_MAX, "r1");
	snprintf(c->conf.mp.relays[0].nodes.name[0], NODE_NAME_MAX, "e");
	c->conf.mp.relays[0].nodes.n = 1;
	c->conf.mp.n_relays = 1;
	return c;
}

static int take(struct ctrl *c, const char *text)
{
	json_error_t e;
	json_t *o = json_loads(text, 0, &e);
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	rc = paths_take(c, 0, o);
	json_decref(o);
	return rc;
}

#define ROUTE(paths) "{\"path_mode\":\"duplicate\",\"path_mode_in_use\":\"duplicate\",\"paths\":[" paths "]}"
#define PATH(name, state, extra) \
	"{\"name\":\"" name "\",\"state\":\"" state "\",\"relay\":null,\"data\":true,\"rtt_us\":900" extra "}"

static void test_route_objects(void)
{
	struct ctrl *c = make();

	CU_ASSERT_TRUE(paths_managed(c, 0));
	CU_ASSERT_FALSE(paths_managed(c, 1));
	CU_ASSERT_EQUAL(take(c, ROUTE(PATH("direct", "up", ",\"loss_up\":0.5,\"missed\":2") ","
					PATH("r1", "down", ",\"hop\":{\"rtt_us\":300}"))), 0);
	CU_ASSERT_EQUAL(c->paths.n[0].n, 2);
	CU_ASSERT_STRING_EQUAL(c->paths.n[0].seen[1].name, "r1");
	CU_ASSERT_EQUAL(c->paths.n[0].seen[1].hop_rtt_us, 300);
	CU_ASSERT_DOUBLE_EQUAL(c->paths.n[0].seen[0].loss_up, 0.5, 1e-9);
	CU_ASSERT_EQUAL(c->paths.n[0].seen[0].missed, 2);
	CU_ASSERT_STRING_EQUAL(c->paths.n[0].mode, "duplicate");
	/* No paths member (a client without multipath): nothing to take, no error. */
	CU_ASSERT_EQUAL(take(c, "{\"name\":\"e\"}"), 0);

	static const char *const hostile[] = {
		"{\"path_mode\":\"single\",\"path_mode_in_use\":\"single\",\"paths\":{}}",
		ROUTE(PATH("a", "up", "") "," PATH("b", "up", "") "," PATH("c", "up", "") ","
		      PATH("d", "up", "")),
		ROUTE(PATH("bad name", "up", "")),
		ROUTE(PATH("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "up", "")),
		ROUTE(PATH("r1", "sideways", "")),
		ROUTE(PATH("r1", "up", ",\"loss_up\":2")),
		ROUTE(PATH("r1", "up", ",\"loss_down\":\"x\"")),
		ROUTE(PATH("r1", "up", ",\"missed\":-1")),
		ROUTE(PATH("r1", "up", ",\"hop\":{\"rtt_us\":-5}")),
		"{\"path_mode_in_use\":\"single\",\"paths\":[]}",
		"{\"path_mode\":\"aaaaaaaaaaaaaaaaaaaaaaa\",\"path_mode_in_use\":\"single\",\"paths\":[]}",
		ROUTE("7"),
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		CU_ASSERT_EQUAL(take(c, hostile[i]), -1);
		/* What was taken before stays. */
		CU_ASSERT_EQUAL(c->paths.n[0].n, 2);
	}
	free(c);
}

static void test_egress_held_while_a_path_works(void)
{
	struct ctrl *c = make();
	struct select_decision d = { .reason = SELECT_BETTER, .choose = 1 };

	c->fo.active = 0;
	CU_ASSERT_EQUAL(take(c, ROUTE(PATH("r1", "up", ",\"loss_up\":0.0"))), 0);
	paths_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, -1);
	CU_ASSERT_TRUE(c->paths.egress_hold);
	CU_ASSERT_EQUAL(c->paths.egress_holds, 1);

	/* Its one path loses 30%: no path works, the better egress may take over. */
	d = (struct select_decision){ .reason = SELECT_BETTER, .choose = 1 };
	CU_ASSERT_EQUAL(take(c, ROUTE(PATH("r1", "up", ",\"loss_up\":0.3"))), 0);
	paths_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, 1);
	CU_ASSERT_FALSE(c->paths.egress_hold);

	/* A node without relays is not held: selection as ever. */
	c->fo.active = 1;
	d = (struct select_decision){ .reason = SELECT_BETTER, .choose = 0 };
	paths_filter(c, &d);
	CU_ASSERT_EQUAL(d.choose, 0);
	free(c);
}

UNIT_MAIN("paths",
	  { "route objects, hostile ones refused", test_route_objects },
	  { "a better egress held while a path works", test_egress_held_while_a_path_works })
