/* Unit tests for shared/ratelimit.c with a fake clock: rate and burst, unlimited,
 * time going backwards, huge gaps and exact integer refill. */

#include "ratelimit.h"

#include "unit.h"

/* Take single tokens until refused; return how many were taken. */
static unsigned drain(struct ls_bucket *b, uint64_t now)
{
	unsigned n = 0;

	while (n < 1000000 && ls_bucket_take(b, 1, now))
		n++;
	return n;
}

static void test_rate_burst(void)
{
	struct ls_bucket b;
	uint64_t t = 1000000;

	ls_bucket_init(&b, 10, 5, t);
	/* Starts full: the burst, then nothing. */
	CU_ASSERT_EQUAL(drain(&b, t), 5);
	/* 10/s: one token per 100 ms. */
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1, t + 99999));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1, t + 100000));
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1, t + 100000));
	t += 100000;
	CU_ASSERT_EQUAL(drain(&b, t + 300000), 3);
	t += 300000;
	/* A long pause refills to the burst, not beyond. */
	CU_ASSERT_EQUAL(drain(&b, t + 10000000), 5);
}

static void test_burst_default(void)
{
	struct ls_bucket b;

	/* burst 0 = one second's worth. */
	ls_bucket_init(&b, 50, 0, 0);
	CU_ASSERT_EQUAL(b.burst, 50);
	CU_ASSERT_EQUAL(drain(&b, 0), 50);
	CU_ASSERT_EQUAL(drain(&b, 1000000), 50);
}

static void test_take_n(void)
{
	struct ls_bucket b;

	ls_bucket_init(&b, 1000, 1500, 0);
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1000, 0));
	/* Too many: refused and nothing taken. */
	CU_ASSERT_FALSE(ls_bucket_take(&b, 501, 0));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 500, 0));
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1, 0));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 0, 0));
	/* More than the burst can never pass. */
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1501, 100000000));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1500, 100000000));
	CU_ASSERT_FALSE(ls_bucket_take(&b, UINT64_MAX, 200000000));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1500, 200000000));
}

static void test_unlimited(void)
{
	struct ls_bucket b;
	int i;

	ls_bucket_init(&b, 0, 0, 0);
	for (i = 0; i < 1000; i++)
		CU_ASSERT_TRUE(ls_bucket_take(&b, 1000000, 0));
	CU_ASSERT_TRUE(ls_bucket_take(&b, UINT64_MAX, 0));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1, UINT64_MAX));
	ls_bucket_init(&b, 0, 100, 5);
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1000, 0));
}

static void test_backwards(void)
{
	struct ls_bucket b;
	uint64_t t = 50000000;

	ls_bucket_init(&b, 10, 10, t);
	CU_ASSERT_EQUAL(drain(&b, t), 10);
	/* Earlier timestamps add nothing... */
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1, t - 1000000));
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1, 0));
	/* ...and do not move the reference point: 100 ms after t is one token, not the
	 * backward jump credited again. */
	CU_ASSERT_EQUAL(drain(&b, t + 100000), 1);
	CU_ASSERT_EQUAL(b.last_us, t + 100000);
}

static void test_huge_gap(void)
{
	struct ls_bucket b;

	ls_bucket_init(&b, 1000, 10, 0);
	CU_ASSERT_EQUAL(drain(&b, 0), 10);
	CU_ASSERT_EQUAL(drain(&b, UINT64_MAX), 10);
	CU_ASSERT_EQUAL(b.level, 0);

	/* A rate so high that rate * elapsed overflows 64 bits. */
	ls_bucket_init(&b, UINT64_MAX / 2, 3, 0);
	CU_ASSERT_EQUAL(drain(&b, 0), 3);
	CU_ASSERT_EQUAL(drain(&b, 1), 3);
	CU_ASSERT_EQUAL(drain(&b, 1ull << 40), 3);
	CU_ASSERT_EQUAL(drain(&b, UINT64_MAX), 3);

	/* A burst whose micro-token level would overflow is capped, not wrapped. */
	ls_bucket_init(&b, 1, UINT64_MAX, 0);
	CU_ASSERT(b.burst > 0);
	CU_ASSERT(b.level / 1000000 == b.burst);
	CU_ASSERT_TRUE(ls_bucket_take(&b, b.burst, 0));
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1, 0));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1, UINT64_MAX));
}

static void test_exact_refill(void)
{
	struct ls_bucket b;
	uint64_t t = 0;
	int i;

	/* 3/s is not a whole number of microseconds per token; integer micro-tokens keep
	 * it exact: 333333 us is 999999 micro-tokens, one more us makes the token. */
	ls_bucket_init(&b, 3, 1, t);
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1, t));
	CU_ASSERT_FALSE(ls_bucket_take(&b, 1, t + 333333));
	CU_ASSERT_TRUE(ls_bucket_take(&b, 1, t + 333334));

	/* Many tiny steps add up exactly as one big one: 3 tokens over a second. */
	ls_bucket_init(&b, 3, 5, 0);
	CU_ASSERT_EQUAL(drain(&b, 0), 5);
	for (i = 1; i <= 1000000; i += 7)
		(void)ls_bucket_take(&b, 0, (uint64_t)i);
	CU_ASSERT_EQUAL(drain(&b, 1000000), 3);
}

UNIT_MAIN("ratelimit",
	  { "rate and burst", test_rate_burst },
	  { "burst default", test_burst_default },
	  { "take n", test_take_n },
	  { "unlimited", test_unlimited },
	  { "backwards", test_backwards },
	  { "huge gap", test_huge_gap },
	  { "exact refill", test_exact_refill })
