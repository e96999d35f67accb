/* Unit tests for shared/util.c: clock, strict number parsing, hex, ls_buf, nofile. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "util.h"

#include "unit.h"

static void test_now_us(void)
{
	struct timespec ts = { 0, 3000000 }; /* 3 ms */
	uint64_t a, b, c;

	a = ls_now_us();
	b = ls_now_us();
	CU_ASSERT(a > 0);
	CU_ASSERT(b >= a);
	nanosleep(&ts, NULL);
	c = ls_now_us();
	CU_ASSERT(c - b >= 3000);
	CU_ASSERT(c - b < 5000000);
}

static void test_parse_i64_ok(void)
{
	int64_t v = 0;

	CU_ASSERT_EQUAL(ls_parse_i64("0", INT64_MIN, INT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(ls_parse_i64("-5", -10, 10, &v), 0);
	CU_ASSERT_EQUAL(v, -5);
	CU_ASSERT_EQUAL(ls_parse_i64("10", -10, 10, &v), 0);
	CU_ASSERT_EQUAL(v, 10);
	CU_ASSERT_EQUAL(ls_parse_i64("-10", -10, 10, &v), 0);
	CU_ASSERT_EQUAL(v, -10);
	CU_ASSERT_EQUAL(ls_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, INT64_MAX);
	CU_ASSERT_EQUAL(ls_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, INT64_MIN);
	/* Base 10 only: a leading zero is a decimal digit, not octal. */
	CU_ASSERT_EQUAL(ls_parse_i64("010", 0, 100, &v), 0);
	CU_ASSERT_EQUAL(v, 10);
}

static void test_parse_i64_bad(void)
{
	static const char *const inval[] = { "", " 1", "1 ", "+1", "1a", "0x10", "-", "--1",
					     "- 1", "1.5", "1e3", "\t1", "1\n", "\xd9\xa3" };
	int64_t v = 77;
	size_t i;

	for (i = 0; i < LS_ARRAY_LEN(inval); i++) {
		errno = 0;
		CU_ASSERT_EQUAL(ls_parse_i64(inval[i], INT64_MIN, INT64_MAX, &v), -1);
		CU_ASSERT_EQUAL(errno, EINVAL);
	}
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_i64(NULL, 0, 1, &v), -1);
	CU_ASSERT_EQUAL(errno, EINVAL);

	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), -1);
	CU_ASSERT_EQUAL(errno, ERANGE);
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -1);
	CU_ASSERT_EQUAL(errno, ERANGE);
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_i64("11", -10, 10, &v), -1);
	CU_ASSERT_EQUAL(errno, ERANGE);
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_i64("-11", -10, 10, &v), -1);
	CU_ASSERT_EQUAL(errno, ERANGE);
	CU_ASSERT_EQUAL(v, 77); /* untouched on failure */
}

static void test_parse_u64(void)
{
	static const char *const inval[] = { "", " 1", "1 ", "+1", "-1", "-0", "1a", "0x10",
					     "1.0", "\n1" };
	uint64_t v = 0;
	size_t i;

	CU_ASSERT_EQUAL(ls_parse_u64("0", UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(ls_parse_u64("65535", 65535, &v), 0);
	CU_ASSERT_EQUAL(v, 65535);
	CU_ASSERT_EQUAL(ls_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX);

	v = 5;
	for (i = 0; i < LS_ARRAY_LEN(inval); i++) {
		errno = 0;
		CU_ASSERT_EQUAL(ls_parse_u64(inval[i], UINT64_MAX, &v), -1);
		CU_ASSERT_EQUAL(errno, EINVAL);
	}
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_u64(NULL, UINT64_MAX, &v), -1);
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_u64("18446744073709551616", UINT64_MAX, &v), -1);
	CU_ASSERT_EQUAL(errno, ERANGE);
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_u64("99999999999999999999999", UINT64_MAX, &v), -1);
	CU_ASSERT_EQUAL(errno, ERANGE);
	errno = 0;
	CU_ASSERT_EQUAL(ls_parse_u64("65536", 65535, &v), -1);
	CU_ASSERT_EQUAL(errno, ERANGE);
	CU_ASSERT_EQUAL(v, 5);
}

static void test_hex(void)
{
	uint8_t out[4] = { 1, 2, 3, 4 }, all[256], back[256];
	char txt[513];
	size_t i;

	CU_ASSERT_EQUAL(ls_hex_decode("00ff10Ab", out, 4), 0);
	CU_ASSERT(out[0] == 0x00 && out[1] == 0xff && out[2] == 0x10 && out[3] == 0xab);
	CU_ASSERT_EQUAL(ls_hex_decode("DEADBEEF", out, 4), 0);
	CU_ASSERT(out[0] == 0xde && out[1] == 0xad && out[2] == 0xbe && out[3] == 0xef);
	CU_ASSERT_EQUAL(ls_hex_decode("", out, 0), 0);

	/* Wrong length, either way, and any non-hex digit: nothing is written. */
	CU_ASSERT_EQUAL(ls_hex_decode("00ff10", out, 4), -1);
	CU_ASSERT_EQUAL(ls_hex_decode("00ff10ab00", out, 4), -1);
	CU_ASSERT_EQUAL(ls_hex_decode("00ff10a", out, 4), -1);
	CU_ASSERT_EQUAL(ls_hex_decode("00ff10ag", out, 4), -1);
	CU_ASSERT_EQUAL(ls_hex_decode("zz000000", out, 4), -1);
	CU_ASSERT_EQUAL(ls_hex_decode(" 0ff10ab", out, 4), -1);
	CU_ASSERT_EQUAL(ls_hex_decode("0x0ff10a", out, 4), -1);
	CU_ASSERT_EQUAL(ls_hex_decode(NULL, out, 4), -1);
	CU_ASSERT(out[0] == 0xde && out[1] == 0xad && out[2] == 0xbe && out[3] == 0xef);

	ls_hex_encode(out, 4, txt);
	CU_ASSERT_STRING_EQUAL(txt, "deadbeef");
	ls_hex_encode(out, 0, txt);
	CU_ASSERT_STRING_EQUAL(txt, "");

	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	ls_hex_encode(all, 256, txt);
	CU_ASSERT_EQUAL(strlen(txt), 512);
	CU_ASSERT_EQUAL(strncmp(txt, "000102", 6), 0);
	CU_ASSERT_STRING_EQUAL(txt + 506, "fdfeff");
	CU_ASSERT_EQUAL(ls_hex_decode(txt, back, 256), 0);
	CU_ASSERT_EQUAL(memcmp(all, back, 256), 0);
}

static void test_buf_basic(void)
{
	struct ls_buf b;

	ls_buf_init(&b);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(b.oom, 0);
	ls_buf_append(&b, "hello", 5);
	ls_buf_append(&b, ", ", 2);
	ls_buf_printf(&b, "%s %d", "world", 42);
	ls_buf_append(&b, "", 0);
	CU_ASSERT_EQUAL(b.len, 15);
	CU_ASSERT_STRING_EQUAL(b.data, "hello, world 42");
	CU_ASSERT_EQUAL(b.oom, 0);
	ls_buf_free(&b);
	CU_ASSERT_PTR_NULL(b.data);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(b.cap, 0);

	/* A printf as the very first operation (no storage yet). */
	ls_buf_printf(&b, "%05d", 7);
	CU_ASSERT_STRING_EQUAL(b.data, "00007");
	ls_buf_free(&b);
}

static void test_buf_grow(void)
{
	struct ls_buf b;
	char big[5000];
	size_t i;

	ls_buf_init(&b);
	for (i = 0; i < 10000; i++)
		ls_buf_printf(&b, "%zu,", i % 10);
	CU_ASSERT_EQUAL(b.len, 20000);
	CU_ASSERT_EQUAL(strlen(b.data), 20000);
	CU_ASSERT(b.cap > b.len);
	CU_ASSERT_EQUAL(strncmp(b.data, "0,1,2,", 6), 0);
	CU_ASSERT_EQUAL(strcmp(b.data + 19994, "7,8,9,"), 0);
	ls_buf_free(&b);

	/* One printf larger than the current capacity takes the second pass. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ls_buf_init(&b);
	ls_buf_append(&b, "a", 1);
	ls_buf_printf(&b, "[%s]", big);
	CU_ASSERT_EQUAL(b.len, 1 + 2 + 4999);
	CU_ASSERT_EQUAL(b.data[0], 'a');
	CU_ASSERT_EQUAL(b.data[1], '[');
	CU_ASSERT_EQUAL(b.data[b.len - 1], ']');
	CU_ASSERT_EQUAL(b.data[b.len], '\0');
	CU_ASSERT_EQUAL(b.oom, 0);
	ls_buf_free(&b);
}

static void test_buf_oom(void)
{
	struct ls_buf b;
	char src[4096];

	/* An impossible size fails like an allocation would: oom set, no crash, what
	 * fits kept as a prefix and later appends ignored. Only the bytes that fit are
	 * read from src, so a 4 KiB source is enough for the test. */
	memset(src, 'd', sizeof(src));
	ls_buf_init(&b);
	ls_buf_append(&b, "abc", 3);
	ls_buf_append(&b, src, SIZE_MAX - 1);
	CU_ASSERT_EQUAL(b.oom, 1);
	CU_ASSERT(b.len >= 3);
	CU_ASSERT(b.len < sizeof(src));
	CU_ASSERT_EQUAL(b.len, b.cap - 1);
	CU_ASSERT_EQUAL(strncmp(b.data, "abcddd", 6), 0);
	CU_ASSERT_EQUAL(b.data[b.len], '\0');
	{
		size_t len = b.len;

		ls_buf_append(&b, "x", 1);
		ls_buf_printf(&b, "%d", 1);
		CU_ASSERT_EQUAL(b.len, len);
	}
	ls_buf_free(&b);
	CU_ASSERT_EQUAL(b.oom, 0);

	/* The same on a buffer with no storage yet. */
	ls_buf_init(&b);
	ls_buf_append(&b, "x", SIZE_MAX);
	CU_ASSERT_EQUAL(b.oom, 1);
	CU_ASSERT_EQUAL(b.len, 0);
	ls_buf_free(&b);
}

static void test_raise_nofile(void)
{
	struct rlimit before, after;

	CU_ASSERT_EQUAL(getrlimit(RLIMIT_NOFILE, &before), 0);
	ls_raise_nofile();
	CU_ASSERT_EQUAL(getrlimit(RLIMIT_NOFILE, &after), 0);
	CU_ASSERT(after.rlim_cur >= before.rlim_cur);
	CU_ASSERT_EQUAL(after.rlim_max, before.rlim_max);
	if (before.rlim_max != RLIM_INFINITY)
		CU_ASSERT_EQUAL(after.rlim_cur, after.rlim_max);
	ls_raise_nofile(); /* idempotent */
	CU_ASSERT_EQUAL(getrlimit(RLIMIT_NOFILE, &before), 0);
	CU_ASSERT_EQUAL(before.rlim_cur, after.rlim_cur);
}

UNIT_MAIN("util",
	  { "now_us", test_now_us },
	  { "parse_i64 ok", test_parse_i64_ok },
	  { "parse_i64 bad", test_parse_i64_bad },
	  { "parse_u64", test_parse_u64 },
	  { "hex", test_hex },
	  { "buf basic", test_buf_basic },
	  { "buf grow", test_buf_grow },
	  { "buf oom", test_buf_oom },
	  { "raise_nofile", test_raise_nofile })
