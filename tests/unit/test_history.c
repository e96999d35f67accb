/* Unit tests for controller/history.c: the bounded ring, the gap filled in only for
 * the newest switch to that node, and the state file: saved atomically, loaded back,
 * a hand-edited or truncated file read as far as it makes sense. */

#include "../../controller/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static void test_ring_and_gap(void)
{
	struct history h;

	history_init(&h);
	CU_ASSERT_EQUAL(history_len(&h), 0);
	CU_ASSERT_PTR_NULL(history_at(&h, 0));
	CU_ASSERT_FALSE(history_set_gap(&h, "a", 5));
	history_add(&h, 1000, NULL, "a", SW_INITIAL);
	/* No packet came before the first route: no gap to speak of. */
	CU_ASSERT_FALSE(history_set_gap(&h, "a", 5351801));
	history_add(&h, 2000, "a", "b", SW_FAILOVER);
	CU_ASSERT_EQUAL(history_len(&h), 2);
	CU_ASSERT_STRING_EQUAL(history_at(&h, 0)->from, "");
	CU_ASSERT_EQUAL(history_at(&h, 1)->gap_us, -1);
	/* Only the newest switch, only to the node it went to, only once. */
	CU_ASSERT_FALSE(history_set_gap(&h, "a", 5));
	CU_ASSERT_TRUE(history_set_gap(&h, "b", 87000));
	CU_ASSERT_FALSE(history_set_gap(&h, "b", 1));
	CU_ASSERT_EQUAL(history_at(&h, 1)->gap_us, 87000);
	CU_ASSERT_EQUAL(history_at(&h, 1)->id, 2);
	/* Bounded: the oldest go first, ids go on. */
	for (int i = 0; i < HISTORY_MAX + 10; i++)
		history_add(&h, 3000 + i, "b", "a", SW_SELECTION);
	CU_ASSERT_EQUAL(history_len(&h), HISTORY_MAX);
	CU_ASSERT_EQUAL(history_at(&h, 0)->id, 2 + 10 + 1);
	CU_ASSERT_EQUAL(history_at(&h, HISTORY_MAX - 1)->id, 2 + HISTORY_MAX + 10);
	CU_ASSERT_STRING_EQUAL(failover_reason_name(SW_SELECTION), "selection");
	CU_ASSERT_EQUAL(failover_reason_parse("recovery"), SW_RECOVERY);
	CU_ASSERT_EQUAL(failover_reason_parse("nonsense"), -1);
}

static void test_save_load(void)
{
	char dir[] = "/tmp/ls-unit-hist-XXXXXX", path[64], err[256], cmd[96];
	struct history h, g;
	unsigned skipped;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/history.jsonl", dir);
	history_init(&g);
	/* No file yet: an empty history, no error. */
	CU_ASSERT_EQUAL(history_load(&g, path, &skipped, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(history_len(&g), 0);

	history_init(&h);
	history_add(&h, 1700000000123, NULL, "a", SW_INITIAL);
	history_add(&h, 1700000001000, "a", "b", SW_MANUAL)->gap_us = 42000;
	CU_ASSERT_EQUAL(history_save(&h, path, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(access(path, F_OK), 0);
	snprintf(cmd, sizeof(cmd), "%s.tmp", path);
	CU_ASSERT_NOT_EQUAL(access(cmd, F_OK), 0);

	CU_ASSERT_EQUAL(history_load(&g, path, &skipped, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(skipped, 0);
	CU_ASSERT_EQUAL(history_len(&g), 2);
	CU_ASSERT_EQUAL(history_at(&g, 0)->wall_ms, 1700000000123);
	CU_ASSERT_STRING_EQUAL(history_at(&g, 1)->to, "b");
	CU_ASSERT_EQUAL(history_at(&g, 1)->reason, SW_MANUAL);
	CU_ASSERT_EQUAL(history_at(&g, 1)->gap_us, 42000);
	/* Numbering goes on after what was loaded. */
	CU_ASSERT_EQUAL(history_add(&g, 1, "b", "a", SW_FAILOVER)->id, 3);

	/* Garbage, wrong types, unknown reasons, over-long names, a truncated last line:
	 * skipped and counted; the good lines stay. */
	f = fopen(path, "a");
	fputs("not json\n{\"id\":5}\n"
	      "{\"id\":6,\"wall_ms\":1,\"from\":\"a\",\"to\":\"b\",\"reason\":\"teleport\",\"gap_us\":1}\n"
	      "{\"id\":7,\"wall_ms\":1,\"from\":\"a\",\"to\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
	      "\"reason\":\"manual\",\"gap_us\":1}\n"
	      "{\"id\":8,\"wall_ms\":1,\"from\":\"a\",\"to\":\"\",\"reason\":\"manual\",\"gap_us\":1}\n"
	      "{\"id\":9,\"wall_ms\":2,\"from\":\"\",\"to\":\"c\",\"reason\":\"recovery\",\"gap_us\":-1}\n"
	      "{\"id\":10,\"wall_ms\":3,\"fr",
	      f);
	fclose(f);
	history_init(&g);
	CU_ASSERT_EQUAL(history_load(&g, path, &skipped, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(skipped, 6);
	CU_ASSERT_EQUAL(history_len(&g), 3);
	CU_ASSERT_STRING_EQUAL(history_at(&g, 2)->to, "c");
	CU_ASSERT_EQUAL(history_at(&g, 2)->gap_us, -1);
	CU_ASSERT_EQUAL(history_add(&g, 1, "c", "a", SW_FAILOVER)->id, 10);

	/* A directory that cannot be written: an error, not a crash. */
	CU_ASSERT_EQUAL(history_save(&h, "/nonexistent/dir/history.jsonl", err, sizeof(err)), -1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

UNIT_MAIN("history",
	  { "ring and gap", test_ring_and_gap },
	  { "save and load", test_save_load })
