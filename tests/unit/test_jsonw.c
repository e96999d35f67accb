/* Unit tests for shared/jsonw.c: commas, nesting, escaping and the integer extremes,
 * each output read back by jansson. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "jsonw.h"

#include "unit.h"

static void test_shapes(void)
{
	struct ls_buf b;
	struct ls_jw w;

	ls_buf_init(&b);
	ls_jw_init(&w, &b);
	ls_jw_obj(&w);
	ls_jw_key(&w, "a");
	ls_jw_arr(&w);
	ls_jw_u64(&w, 1);
	ls_jw_obj(&w);
	ls_jw_end_obj(&w);
	ls_jw_arr(&w);
	ls_jw_end_arr(&w);
	ls_jw_null(&w);
	ls_jw_end_arr(&w);
	ls_jw_key(&w, "b");
	ls_jw_bool(&w, true);
	ls_jw_key(&w, "c");
	ls_jw_bool(&w, false);
	ls_jw_key(&w, "d");
	ls_jw_obj(&w);
	ls_jw_key(&w, "e");
	ls_jw_str(&w, "");
	ls_jw_end_obj(&w);
	ls_jw_end_obj(&w);
	CU_ASSERT_FALSE(b.oom);
	CU_ASSERT_STRING_EQUAL(b.data,
			       "{\"a\":[1,{},[],null],\"b\":true,\"c\":false,\"d\":{\"e\":\"\"}}");
	ls_buf_free(&b);
}

static void test_numbers_and_strings(void)
{
	static const char nasty[] = "q\"b\\s/\n\t\r\x01\x1f\x7f caf\xc3\xa9";
	struct ls_buf b;
	struct ls_jw w;
	json_error_t err;

	ls_buf_init(&b);
	ls_jw_init(&w, &b);
	ls_jw_arr(&w);
	ls_jw_u64(&w, 0);
	ls_jw_u64(&w, UINT64_MAX);
	ls_jw_i64(&w, INT64_MIN);
	ls_jw_i64(&w, -1);
	ls_jw_i64(&w, INT64_MAX);
	ls_jw_str(&w, nasty);
	ls_jw_end_arr(&w);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "[0,18446744073709551615,-9223372036854775808,-1,"));
	/* jansson takes integers up to INT64_MAX: read back from the third on. */
	char *tail = strstr(b.data, "-9223372036854775808");
	char text[256];
	snprintf(text, sizeof(text), "[%s", tail);
	json_t *v = json_loads(text, 0, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(json_integer_value(json_array_get(v, 0)), INT64_MIN);
	CU_ASSERT_EQUAL(json_integer_value(json_array_get(v, 1)), -1);
	CU_ASSERT_EQUAL(json_integer_value(json_array_get(v, 2)), INT64_MAX);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(v, 3)), nasty);
	json_decref(v);
	/* No raw control byte reaches the text. */
	for (const char *p = b.data; *p; p++)
		CU_ASSERT((unsigned char)*p >= 0x20);
	ls_buf_free(&b);
}

UNIT_MAIN("jsonw",
	  { "shapes and commas", test_shapes },
	  { "numbers and strings", test_numbers_and_strings })
