/* Unit tests for controller/ml_data.c: rows, the split by history, the CSV round trip
 * and the refusal of malformed CSV with the line that is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../controller/ml_data.h"

#include "unit.h"

static void fill(struct ml_data *d, size_t n, unsigned groups)
{
	ml_data_init(d);
	for (size_t i = 0; i < n; i++) {
		double x[ML_NFEAT];

		for (unsigned j = 0; j < ML_NFEAT; j++)
			x[j] = (double)i * 0.1 + j - (j == ML_F_LOAD ? 1e6 : 0) + 1.0 / 3;
		CU_ASSERT_EQUAL_FATAL(ml_data_add(d, x, (double)i / 7, (uint32_t)(i % groups)), 0);
	}
}

static void test_split(void)
{
	struct ml_data d, tr, held;

	fill(&d, 5000, 100);
	CU_ASSERT_EQUAL_FATAL(ml_data_split(&d, 0.2, 42, &tr, &held), 0);
	CU_ASSERT_EQUAL(tr.n + held.n, d.n);
	CU_ASSERT(held.n > 500 && held.n < 1700);
	/* No history on both sides. */
	int both = 0;
	for (size_t i = 0; i < held.n; i++)
		for (size_t k = 0; k < tr.n; k++)
			if (tr.group[k] == held.group[i]) {
				both++;
				break;
			}
	CU_ASSERT_EQUAL(both, 0);
	/* The same seed, the same split; another seed, another. */
	struct ml_data tr2, held2;
	CU_ASSERT_EQUAL_FATAL(ml_data_split(&d, 0.2, 42, &tr2, &held2), 0);
	CU_ASSERT_EQUAL(held2.n, held.n);
	CU_ASSERT_EQUAL(memcmp(held2.y, held.y, held.n * sizeof(double)), 0);
	ml_data_free(&tr2);
	ml_data_free(&held2);
	CU_ASSERT_EQUAL_FATAL(ml_data_split(&d, 0.2, 43, &tr2, &held2), 0);
	CU_ASSERT(held2.n != held.n || memcmp(held2.y, held.y, held.n * sizeof(double)) != 0);
	ml_data_free(&tr2);
	ml_data_free(&held2);
	/* Append. */
	CU_ASSERT_EQUAL(ml_data_append(&tr, &held), 0);
	CU_ASSERT_EQUAL(tr.n, d.n);
	ml_data_free(&tr);
	ml_data_free(&held);
	ml_data_free(&d);
}

static char path[64];

static int write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void test_csv(void)
{
	struct ml_data d, back;
	char err[512];

	snprintf(path, sizeof(path), "/tmp/ls-test-ml-data-%ld.csv", (long)getpid());
	fill(&d, 300, 7);
	CU_ASSERT_EQUAL_FATAL(ml_data_write_csv(&d, path, err, sizeof(err)), 0);
	ml_data_init(&back);
	CU_ASSERT_EQUAL_FATAL(ml_data_read_csv(&back, path, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(back.n, d.n);
	/* %.17g: every double comes back exactly. */
	CU_ASSERT_EQUAL(memcmp(back.x, d.x, d.n * ML_NFEAT * sizeof(double)), 0);
	CU_ASSERT_EQUAL(memcmp(back.y, d.y, d.n * sizeof(double)), 0);
	CU_ASSERT_EQUAL(memcmp(back.group, d.group, d.n * sizeof(uint32_t)), 0);
	ml_data_free(&back);
	ml_data_free(&d);

	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "hello\n", ":1: not a training set" },
		{ "current_latency_ms,...\n1,2,3\n", ":2: 3 fields, want 13" },
		{ "current_latency_ms,...\n1,2,3,4,5,6,7,8,9,10,11,12,13,14\n", ":2: more than 13" },
		{ "current_latency_ms,...\n1,2,3,4,5,6,7,8,9,10,11,12,1.5\n", ":2: group" },
		{ "current_latency_ms,...\n1,2,3,4,5,6,7,8,9,10,11,12,3\n1,2,x,4,5,6,7,8,9,10,11,12,3\n",
		  ":3: field 3" },
		{ "current_latency_ms,...\n1,2,3,4,5,6,7,8,9,10,nan,12,3\n", ":2: field 11" },
		{ "current_latency_ms,...\n1,2,3,4,5,6,7,8,9,10,11,1e999,3\n", ":2: field 12" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(write_file(bad[i].text), 0);
		ml_data_init(&back);
		CU_ASSERT_EQUAL(ml_data_read_csv(&back, path, err, sizeof(err)), -1);
		if (!strstr(err, bad[i].want))
			fprintf(stderr, "case %zu: got \"%s\"\n", i, err);
		CU_ASSERT(strstr(err, bad[i].want) != NULL);
		ml_data_free(&back);
	}
	unlink(path);
	ml_data_init(&back);
	CU_ASSERT_EQUAL(ml_data_read_csv(&back, path, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, path) != NULL);
}

UNIT_MAIN("ml_data",
	  { "split by history", test_split },
	  { "CSV round trip and refusals", test_csv })
