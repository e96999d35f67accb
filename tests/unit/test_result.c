/* Unit tests for shared/result.c: every code's string and HTTP status. */
#include <string.h>

#include "result.h"

#include "unit.h"

static const struct {
	enum ls_rc rc;
	const char *code;
	int http;
} want[] = {
	{ LS_RC_OK, "ok", 200 },
	{ LS_RC_BAD_JSON, "bad_json", 400 },
	{ LS_RC_BAD_REQUEST, "bad_request", 400 },
	{ LS_RC_UNKNOWN_COMMAND, "unknown_command", 404 },
	{ LS_RC_INVALID, "invalid", 400 },
	{ LS_RC_NOT_FOUND, "not_found", 404 },
	{ LS_RC_EXISTS, "exists", 409 },
	{ LS_RC_CONFLICT, "conflict", 409 },
	{ LS_RC_FULL, "full", 503 },
	{ LS_RC_TOO_LONG, "too_long", 413 },
	{ LS_RC_METHOD, "method_not_allowed", 405 },
	{ LS_RC_NOT_READY, "not_ready", 503 },
	{ LS_RC_INTERNAL, "internal", 500 },
	{ LS_RC_UNAUTHORIZED, "unauthorized", 401 },
	{ LS_RC_FORBIDDEN, "forbidden", 403 },
	{ LS_RC_TIMEOUT, "timeout", 504 },
};

static void test_table(void)
{
	size_t i;

	CU_ASSERT_EQUAL(sizeof(want) / sizeof(want[0]), LS_RC__COUNT);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_STRING_EQUAL(ls_rc_code(want[i].rc), want[i].code);
		CU_ASSERT_EQUAL(ls_rc_http_status(want[i].rc), want[i].http);
	}
}

static void test_distinct(void)
{
	int i, j;

	/* Clients switch on the code, so no two may share one. */
	for (i = 0; i < LS_RC__COUNT; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(ls_rc_code((enum ls_rc)i));
		for (j = 0; j < i; j++)
			CU_ASSERT(strcmp(ls_rc_code((enum ls_rc)i), ls_rc_code((enum ls_rc)j)) != 0);
	}
}

static void test_from_code(void)
{
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CU_ASSERT_EQUAL(ls_rc_from_code(want[i].code), want[i].rc);
	/* A code from a newer peer, or none, is an error all the same. */
	CU_ASSERT_EQUAL(ls_rc_from_code("brand_new_code"), LS_RC_INTERNAL);
	CU_ASSERT_EQUAL(ls_rc_from_code(""), LS_RC_INTERNAL);
	CU_ASSERT_EQUAL(ls_rc_from_code(NULL), LS_RC_INTERNAL);
}

static void test_out_of_range(void)
{
	CU_ASSERT_STRING_EQUAL(ls_rc_code(LS_RC__COUNT), "internal");
	CU_ASSERT_EQUAL(ls_rc_http_status(LS_RC__COUNT), 500);
	CU_ASSERT_STRING_EQUAL(ls_rc_code((enum ls_rc)-1), "internal");
	CU_ASSERT_EQUAL(ls_rc_http_status((enum ls_rc)-1), 500);
	CU_ASSERT_STRING_EQUAL(ls_rc_code((enum ls_rc)1000), "internal");
}

UNIT_MAIN("result",
	  { "table", test_table },
	  { "distinct", test_distinct },
	  { "from code", test_from_code },
	  { "out of range", test_out_of_range })
