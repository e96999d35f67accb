/* Unit tests for shared/hist.c: bucket error bound, quantiles on known distributions,
 * clamping, mean and merge. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "util.h"

#include "unit.h"

/* A small deterministic generator so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ceil() without libm, which the unit link line does not include. */
static uint64_t ceil_u64(double x)
{
	uint64_t r = (uint64_t)x;

	return (double)r < x ? r + 1 : r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The quantile a histogram reports must be the exact one or above it by less than
 * 1/16 (the sub-bucket width), and exact below 32. */
static int within_bound(uint64_t exact, uint64_t got)
{
	if (exact < 32)
		return got == exact;
	return got >= exact && got - exact < exact / 16 + 1;
}

static void test_empty(void)
{
	struct ls_hist h;

	ls_hist_init(&h);
	CU_ASSERT_EQUAL(h.count, 0);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.0), 0);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.5), 0);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 1.0), 0);
	CU_ASSERT_EQUAL(ls_hist_mean(&h), 0.0);
}

static void test_single(void)
{
	struct ls_hist h;

	ls_hist_init(&h);
	ls_hist_add(&h, 12345);
	CU_ASSERT_EQUAL(h.count, 1);
	CU_ASSERT_EQUAL(h.min, 12345);
	CU_ASSERT_EQUAL(h.max, 12345);
	/* Clamped to [min, max], a single sample is reported exactly. */
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.0), 12345);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.5), 12345);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.99), 12345);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 1.0), 12345);
	CU_ASSERT_DOUBLE_EQUAL(ls_hist_mean(&h), 12345.0, 1e-9);
}

static void test_exact_small(void)
{
	struct ls_hist h;
	uint64_t v;

	ls_hist_init(&h);
	for (v = 0; v < 32; v++)
		ls_hist_add(&h, v);
	CU_ASSERT_EQUAL(h.count, 32);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.0), 0);
	/* The q-th sample is the ceil(q*n)-th smallest: 16th of 32 is 15. */
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.5), 15);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.25), 7);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.26), 8);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.01), 0);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.99), 31);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 1.0), 31);
	CU_ASSERT_DOUBLE_EQUAL(ls_hist_mean(&h), 15.5, 1e-9);
}

/* Report the bucket upper bound of v: with 0 and a huge sample around it, the median
 * is v's bucket and the clamp does not interfere. */
static uint64_t upper_of(uint64_t v)
{
	struct ls_hist h;

	ls_hist_init(&h);
	ls_hist_add(&h, 0);
	ls_hist_add(&h, v);
	ls_hist_add(&h, (uint64_t)1 << 40);
	return ls_hist_quantile(&h, 0.5);
}

static void test_bucket_bound(void)
{
	uint64_t v, prev = 0, bad = 0;
	unsigned e;
	int d;

	for (v = 0; v < 200000; v++) {
		uint64_t u = upper_of(v);

		if (!within_bound(v, u) || u < prev)
			bad++;
		prev = u;
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Around every power of two up to 2^32. */
	for (e = 5; e <= 32; e++) {
		for (d = -40; d <= 40; d++) {
			v = ((uint64_t)1 << e) + (uint64_t)(int64_t)d;
			if (v >= (uint64_t)1 << 32)
				continue;
			if (!within_bound(v, upper_of(v)))
				bad++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(upper_of(32), 33);
	CU_ASSERT_EQUAL(upper_of(47), 47);
	CU_ASSERT_EQUAL(upper_of(64), 67);
	CU_ASSERT_EQUAL(upper_of(100), 103);
	CU_ASSERT_EQUAL(upper_of(0xffffffffu), 0xffffffffu);
}

static void test_uniform(void)
{
	static const double qs[] = { 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999 };
	struct ls_hist h;
	uint64_t v, n = 100000;
	size_t i;

	ls_hist_init(&h);
	for (v = 1; v <= n; v++)
		ls_hist_add(&h, v);
	for (i = 0; i < LS_ARRAY_LEN(qs); i++) {
		uint64_t exact = ceil_u64(qs[i] * (double)n);

		CU_ASSERT(within_bound(exact, ls_hist_quantile(&h, qs[i])));
	}
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0), 1);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 1), n);
	CU_ASSERT_DOUBLE_EQUAL(ls_hist_mean(&h), 50000.5, 1e-6);
	CU_ASSERT_EQUAL(h.sum, n * (n + 1) / 2);
}

/* Log-spread random values, as latencies are: every quantile within the bound of the
 * exact one from the sorted samples. */
static void test_random_logspread(void)
{
	static const double qs[] = { 0.0001, 0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999 };
	enum { N = 100000 };
	uint64_t *vals = malloc(N * sizeof(*vals));
	struct ls_hist h;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vals);
	ls_hist_init(&h);
	for (i = 0; i < N; i++) {
		vals[i] = rng() % ((uint64_t)1 << (rng() % 31 + 1));
		ls_hist_add(&h, vals[i]);
	}
	qsort(vals, N, sizeof(*vals), cmp_u64);
	CU_ASSERT_EQUAL(h.min, vals[0]);
	CU_ASSERT_EQUAL(h.max, vals[N - 1]);
	for (i = 0; i < LS_ARRAY_LEN(qs); i++) {
		size_t rank = (size_t)ceil_u64(qs[i] * N);
		uint64_t got = ls_hist_quantile(&h, qs[i]);

		CU_ASSERT(within_bound(vals[rank - 1], got));
	}
	free(vals);
}

static void test_edges(void)
{
	struct ls_hist h;

	ls_hist_init(&h);
	ls_hist_add(&h, 500);
	ls_hist_add(&h, 1000);
	ls_hist_add(&h, 70000);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.0), 500);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, -1.0), 500);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, NAN), 500);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 1.0), 70000);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 2.0), 70000);
	/* The last sample's bucket bound (73727) is clamped to max. */
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.9), 70000);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.34), 1023);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.33), 511);
}

static void test_clamp_huge(void)
{
	struct ls_hist h;

	ls_hist_init(&h);
	ls_hist_add(&h, 1);
	ls_hist_add(&h, (uint64_t)1 << 40);
	ls_hist_add(&h, UINT64_MAX);
	CU_ASSERT_EQUAL(h.count, 3);
	CU_ASSERT_EQUAL(h.max, UINT64_MAX);
	CU_ASSERT_EQUAL(h.b[LS_HIST_BUCKETS - 1], 2);
	CU_ASSERT_EQUAL(h.sum, UINT64_MAX); /* saturates */
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.3), 1);
	/* Past 2^32 a quantile reads as the last bucket's bound. */
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 0.5), 0xffffffffu);
	CU_ASSERT_EQUAL(ls_hist_quantile(&h, 1.0), UINT64_MAX);
}

static void test_merge(void)
{
	struct ls_hist a, b, all, empty, copy;
	int i;

	ls_hist_init(&a);
	ls_hist_init(&b);
	ls_hist_init(&all);
	ls_hist_init(&empty);
	for (i = 0; i < 50000; i++) {
		uint64_t v = rng() % ((uint64_t)1 << (rng() % 34));

		ls_hist_add(i % 3 ? &a : &b, v);
		ls_hist_add(&all, v);
	}
	copy = b;
	ls_hist_merge(&a, &b);
	CU_ASSERT_EQUAL(memcmp(&copy, &b, sizeof(b)), 0); /* source untouched */
	CU_ASSERT_EQUAL(memcmp(&a, &all, sizeof(a)), 0);

	/* Merging an empty one changes nothing; merging into a zeroed one copies. */
	ls_hist_merge(&a, &empty);
	CU_ASSERT_EQUAL(memcmp(&a, &all, sizeof(a)), 0);
	memset(&empty, 0, sizeof(empty));
	ls_hist_merge(&empty, &all);
	CU_ASSERT_EQUAL(memcmp(&empty, &all, sizeof(all)), 0);
	CU_ASSERT_EQUAL(ls_hist_quantile(&empty, 0.5), ls_hist_quantile(&all, 0.5));

	/* min and max come from whichever side holds them. */
	ls_hist_init(&a);
	ls_hist_init(&b);
	ls_hist_add(&a, 100);
	ls_hist_add(&b, 5);
	ls_hist_add(&b, 7000);
	ls_hist_merge(&a, &b);
	CU_ASSERT_EQUAL(a.count, 3);
	CU_ASSERT_EQUAL(a.min, 5);
	CU_ASSERT_EQUAL(a.max, 7000);
	CU_ASSERT_EQUAL(a.sum, 7105);
}

static void test_zeroed_struct(void)
{
	struct ls_hist h;

	/* A zeroed struct (e.g. calloc'd) is an empty histogram too. */
	memset(&h, 0, sizeof(h));
	ls_hist_add(&h, 40);
	ls_hist_add(&h, 30);
	CU_ASSERT_EQUAL(h.min, 30);
	CU_ASSERT_EQUAL(h.max, 40);
}

UNIT_MAIN("hist",
	  { "empty", test_empty },
	  { "single", test_single },
	  { "exact below 32", test_exact_small },
	  { "bucket bound", test_bucket_bound },
	  { "uniform", test_uniform },
	  { "random log-spread", test_random_logspread },
	  { "edges", test_edges },
	  { "clamp huge", test_clamp_huge },
	  { "merge", test_merge },
	  { "zeroed struct", test_zeroed_struct })
