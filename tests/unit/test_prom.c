/* Unit tests for shared/prom.c: exact exposition text, number formatting, label
 * escaping and summaries from a histogram. */
#include <math.h>
#include <string.h>

#include "prom.h"

#include "unit.h"

/* Run one writer on a fresh buffer and compare the text exactly. */
#define EXPECT(want, ...)                                   \
	do {                                                \
		struct ls_buf b_;                           \
		ls_buf_init(&b_);                           \
		__VA_ARGS__;                                \
		CU_ASSERT_EQUAL(b_.oom, 0);                 \
		CU_ASSERT_PTR_NOT_NULL_FATAL(b_.data);      \
		CU_ASSERT_STRING_EQUAL(b_.data, want);      \
		ls_buf_free(&b_);                           \
	} while (0)

static void test_header(void)
{
	EXPECT("# HELP ls_packets_total Packets forwarded.\n# TYPE ls_packets_total counter\n",
	       ls_prom_header(&b_, "ls_packets_total", "counter", "Packets forwarded."));
	/* HELP escapes backslash and newline, not quotes. */
	EXPECT("# HELP g A \"q\" \\\\ b\\nc\n# TYPE g gauge\n",
	       ls_prom_header(&b_, "g", "gauge", "A \"q\" \\ b\nc"));
	EXPECT("# HELP g \n# TYPE g gauge\n", ls_prom_header(&b_, "g", "gauge", ""));
}

static void test_u64(void)
{
	EXPECT("ls_sessions 42\n", ls_prom_u64(&b_, "ls_sessions", NULL, 42));
	EXPECT("ls_sessions 0\n", ls_prom_u64(&b_, "ls_sessions", "", 0));
	EXPECT("x 18446744073709551615\n", ls_prom_u64(&b_, "x", NULL, UINT64_MAX));
	EXPECT("ls_drops_total{reason=\"bad_tag\"} 7\n",
	       ls_prom_u64(&b_, "ls_drops_total", "reason=\"bad_tag\"", 7));
}

static void test_f64(void)
{
	EXPECT("x 0\n", ls_prom_f64(&b_, "x", NULL, 0.0));
	EXPECT("x 0.5\n", ls_prom_f64(&b_, "x", NULL, 0.5));
	EXPECT("x 0.1\n", ls_prom_f64(&b_, "x", NULL, 0.1));
	EXPECT("x -2.25\n", ls_prom_f64(&b_, "x", NULL, -2.25));
	EXPECT("x 0.333333333\n", ls_prom_f64(&b_, "x", NULL, 1.0 / 3.0));
	EXPECT("x 1e-06\n", ls_prom_f64(&b_, "x", NULL, 1e-6));
	EXPECT("x 123456789\n", ls_prom_f64(&b_, "x", NULL, 123456789.0));
	EXPECT("x 1.23456789e+11\n", ls_prom_f64(&b_, "x", NULL, 123456789012.0));
	EXPECT("x NaN\n", ls_prom_f64(&b_, "x", NULL, NAN));
	EXPECT("x +Inf\n", ls_prom_f64(&b_, "x", NULL, INFINITY));
	EXPECT("x -Inf\n", ls_prom_f64(&b_, "x", NULL, -INFINITY));
	EXPECT("x{a=\"b\"} 1.5\n", ls_prom_f64(&b_, "x", "a=\"b\"", 1.5));
}

static void test_label(void)
{
	EXPECT("reason=\"bad_tag\"", ls_prom_label(&b_, "reason", "bad_tag"));
	EXPECT("k=\"\"", ls_prom_label(&b_, "k", ""));
	EXPECT("k=\"\"", ls_prom_label(&b_, "k", NULL));
	EXPECT("k=\"a\\\"b\\\\c\\nd\"", ls_prom_label(&b_, "k", "a\"b\\c\nd"));
	EXPECT("k=\"\\\\\\\\\\n\\n\\\"\"", ls_prom_label(&b_, "k", "\\\\\n\n\""));
	/* Other bytes, including UTF-8 and tabs, pass through. */
	EXPECT("k=\"caf\xc3\xa9\tx\"", ls_prom_label(&b_, "k", "caf\xc3\xa9\tx"));

	/* Labels compose with commas into a sample. */
	{
		struct ls_buf l, b;

		ls_buf_init(&l);
		ls_buf_init(&b);
		ls_prom_label(&l, "peer", "1.2.3.4:7777");
		ls_buf_append(&l, ",", 1);
		ls_prom_label(&l, "note", "say \"hi\"");
		ls_prom_u64(&b, "ls_rx_total", l.data, 9);
		CU_ASSERT_STRING_EQUAL(b.data,
				       "ls_rx_total{peer=\"1.2.3.4:7777\",note=\"say \\\"hi\\\"\"} 9\n");
		ls_buf_free(&l);
		ls_buf_free(&b);
	}
}

static void test_hist(void)
{
	struct ls_hist h;
	int i;

	/* 50 x 100 us, 40 x 200 us, 10 x 5 ms: the quantiles are the bucket bounds 103
	 * and 207 us, and 5119 us clamped to the 5000 us maximum. */
	ls_hist_init(&h);
	for (i = 0; i < 50; i++)
		ls_hist_add(&h, 100);
	for (i = 0; i < 40; i++)
		ls_hist_add(&h, 200);
	for (i = 0; i < 10; i++)
		ls_hist_add(&h, 5000);
	EXPECT("# HELP ls_rtt_seconds Round-trip time.\n"
	       "# TYPE ls_rtt_seconds summary\n"
	       "ls_rtt_seconds{quantile=\"0.5\"} 0.000103\n"
	       "ls_rtt_seconds{quantile=\"0.9\"} 0.000207\n"
	       "ls_rtt_seconds{quantile=\"0.99\"} 0.005\n"
	       "ls_rtt_seconds_sum 0.063\n"
	       "ls_rtt_seconds_count 100\n",
	       ls_prom_hist(&b_, "ls_rtt_seconds", "Round-trip time.", &h));

	/* No observations: NaN quantiles, as client libraries expose them. */
	ls_hist_init(&h);
	EXPECT("# HELP e E.\n"
	       "# TYPE e summary\n"
	       "e{quantile=\"0.5\"} NaN\n"
	       "e{quantile=\"0.9\"} NaN\n"
	       "e{quantile=\"0.99\"} NaN\n"
	       "e_sum 0\n"
	       "e_count 0\n",
	       ls_prom_hist(&b_, "e", "E.", &h));
}

static void test_appends(void)
{
	struct ls_buf b;

	/* Writers append; a whole exposition is their concatenation. */
	ls_buf_init(&b);
	ls_prom_header(&b, "a", "counter", "A.");
	ls_prom_u64(&b, "a", NULL, 1);
	ls_prom_header(&b, "b", "gauge", "B.");
	ls_prom_f64(&b, "b", NULL, 2.5);
	CU_ASSERT_STRING_EQUAL(b.data, "# HELP a A.\n# TYPE a counter\na 1\n"
				       "# HELP b B.\n# TYPE b gauge\nb 2.5\n");
	ls_buf_free(&b);
}

UNIT_MAIN("prom",
	  { "header", test_header },
	  { "u64", test_u64 },
	  { "f64", test_f64 },
	  { "label", test_label },
	  { "hist", test_hist },
	  { "appends", test_appends })
