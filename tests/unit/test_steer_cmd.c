/* Unit tests for shared/steer_cmd.c: the argument check every steering server runs
 * before a handler, the words it uses, `help`, and the soundness of both dataplanes'
 * tables. */
#include <stdio.h>
#include <string.h>

#include "steer_cmd.h"

#include "unit.h"

static const char *const colours[] = { "red", "green", "blue", NULL };
static const struct ls_steer_arg args[] = {
	{ .key = "n", .types = LS_SA_INT, .required = true, .min = 1, .max = 10, .help = "n" },
	{ .key = "s", .types = LS_SA_STRING | LS_SA_NULL, .min = 2, .max = 4, .help = "s" },
	{ .key = "c", .types = LS_SA_STRING, .choices = colours, .help = "c" },
	{ .key = "b", .types = LS_SA_BOOL, .help = "b" },
	{ .key = "l", .types = LS_SA_STRINGS, .min = 1, .max = 2, .help = "l" },
	{ .key = "any", .types = LS_SA_INT | LS_SA_STRING, .help = "any" },
	{ NULL },
};
static const struct ls_steer_def defs[] = {
	{ "t", args, "a test command" },
	{ "none", NULL, "takes nothing" },
	LS_STEER_CMD_BUILTINS,
	{ NULL, NULL, NULL },
};

/* Check a request given as JSON text; msg gets the message. */
static enum ls_rc check(const char *def, const char *text, char *msg)
{
	json_t *req = json_loads(text, JSON_ALLOW_NUL, NULL);
	enum ls_rc rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	msg[0] = '\0';
	rc = ls_steer_cmd_check(ls_steer_cmd_find(defs, def), req, msg, 256);
	json_decref(req);
	return rc;
}

#define OK(def, text) CU_ASSERT_EQUAL(check(def, text, msg), LS_RC_OK)
#define BAD(def, text, want)                                                  \
	do {                                                                  \
		CU_ASSERT_EQUAL(check(def, text, msg), LS_RC_INVALID);        \
		if (!strstr(msg, want))                                       \
			fprintf(stderr, "\n  got '%s', want '%s'\n", msg, want); \
		CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));                    \
	} while (0)

static void test_check(void)
{
	char msg[256];

	OK("t", "{\"n\":1}");
	OK("t", "{\"id\":\"anything\",\"cmd\":\"t\",\"n\":10,\"s\":null,\"c\":\"blue\",\"b\":false,"
		"\"l\":[\"x\",\"y\"],\"any\":\"x\"}");
	OK("t", "{\"n\":5,\"s\":\"abcd\",\"any\":-3}");
	OK("none", "{\"id\":7,\"cmd\":\"none\"}");

	BAD("t", "{}", "n is missing (an integer in 1..10: n)");
	BAD("t", "{\"n\":null}", "n must be an integer in 1..10");
	BAD("t", "{\"n\":0}", "n must be an integer in 1..10");
	BAD("t", "{\"n\":11}", "n must be an integer in 1..10");
	BAD("t", "{\"n\":1.0}", "n must be an integer");
	BAD("t", "{\"n\":\"1\"}", "n must be an integer");
	BAD("t", "{\"n\":true}", "n must be");
	BAD("t", "{\"n\":1,\"s\":\"a\"}", "s must be a string of 2 to 4 bytes, or null");
	BAD("t", "{\"n\":1,\"s\":\"abcde\"}", "s must be");
	BAD("t", "{\"n\":1,\"s\":\"a\\u0000b\"}", "s must be"); /* a NUL inside */
	BAD("t", "{\"n\":1,\"c\":\"pink\"}", "c must be \"red\", \"green\" or \"blue\"");
	BAD("t", "{\"n\":1,\"b\":0}", "b must be true or false");
	BAD("t", "{\"n\":1,\"l\":[]}", "l must be an array of 1 to 2 strings");
	BAD("t", "{\"n\":1,\"l\":[\"a\",\"b\",\"c\"]}", "l must be");
	BAD("t", "{\"n\":1,\"l\":[1]}", "l must be");
	BAD("t", "{\"n\":1,\"l\":\"a\"}", "l must be");
	BAD("t", "{\"n\":1,\"any\":{}}", "any must be a string, or an integer");
	BAD("t", "{\"n\":1,\"nn\":1}", "unknown argument 'nn' (t takes: n, s, c, b, l, any)");
	BAD("none", "{\"x\":1}", "unknown argument 'x' (none takes none)");
	BAD("help", "{\"command\":1}", "command must be a string");
}

static void test_describe(void)
{
	char buf[160];
	static const struct ls_steer_arg many = {
		.key = "m", .types = LS_SA_INT | LS_SA_BOOL | LS_SA_NULL, .min = 0, .max = 3
	};

	ls_steer_cmd_describe(&many, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "an integer in 0..3, true or false, or null");
	ls_steer_cmd_describe(&args[0], buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "an integer in 1..10");
	ls_steer_cmd_describe(&args[4], buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "an array of 1 to 2 strings");
	/* A short buffer is cut, never overrun. */
	ls_steer_cmd_describe(&args[2], buf, 6);
	CU_ASSERT_EQUAL(strlen(buf), 5);
}

static void test_help(void)
{
	json_t *h = ls_steer_cmd_help(defs, NULL), *cmds = json_object_get(h, "commands");

	CU_ASSERT_EQUAL(json_array_size(cmds), 4);
	json_t *t = json_array_get(cmds, 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(t, "cmd")), "t");
	json_t *n = json_array_get(json_object_get(t, "args"), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(n, "key")), "n");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(n, "type")), "an integer in 1..10");
	CU_ASSERT(json_is_true(json_object_get(n, "required")));
	json_decref(h);
	h = ls_steer_cmd_help(defs, "none");
	CU_ASSERT_EQUAL(json_array_size(json_object_get(h, "commands")), 1);
	json_decref(h);
	CU_ASSERT_PTR_NULL(ls_steer_cmd_help(defs, "nothing"));
}

/* The real tables: every command and argument documented, no name twice, the
 * built-ins present, ranges sane. */
static void check_table(const struct ls_steer_def *t)
{
	bool help = false, sub = false;

	for (const struct ls_steer_def *d = t; d->name; d++) {
		CU_ASSERT(d->help && d->help[0]);
		CU_ASSERT_PTR_EQUAL(ls_steer_cmd_find(t, d->name), d);
		help |= strcmp(d->name, LS_STEER_CMD_HELP) == 0;
		sub |= strcmp(d->name, LS_STEER_CMD_SUBSCRIBE) == 0;
		for (const struct ls_steer_arg *a = d->args; a && a->key; a++) {
			CU_ASSERT(a->help && a->help[0]);
			CU_ASSERT(a->types != 0);
			CU_ASSERT(a->min <= a->max);
			CU_ASSERT(strcmp(a->key, "id") != 0 && strcmp(a->key, "cmd") != 0);
			for (const struct ls_steer_arg *b = d->args; b != a; b++)
				CU_ASSERT(strcmp(a->key, b->key) != 0);
		}
	}
	CU_ASSERT(help && sub);
}

static void test_tables(void)
{
	char msg[256];
	json_t *req;

	check_table(ls_steer_cmd_proxy);
	check_table(ls_steer_cmd_client);
	/* A session_add as the agent sends it fits; a misspelt key does not. */
	req = json_pack("{s:s,s:i,s:s,s:[s],s:n}", "cmd", "session_add", "session_id", 7, "key",
			"000102030405060708090a0b0c0d0e0f", "destinations", "192.0.2.1:7777", "fec");
	CU_ASSERT_EQUAL(ls_steer_cmd_check(ls_steer_cmd_find(ls_steer_cmd_proxy, "session_add"),
					   req, msg, sizeof(msg)), LS_RC_OK);
	json_object_set_new(req, "destination", json_string("x"));
	CU_ASSERT_EQUAL(ls_steer_cmd_check(ls_steer_cmd_find(ls_steer_cmd_proxy, "session_add"),
					   req, msg, sizeof(msg)), LS_RC_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "unknown argument 'destination'"));
	json_decref(req);
}

UNIT_MAIN("steer_cmd",
	  { "check", test_check },
	  { "describe", test_describe },
	  { "help", test_help },
	  { "the dataplanes' tables", test_tables })
