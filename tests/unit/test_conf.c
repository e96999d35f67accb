/* Unit tests for the configuration loader (shared/conf.c): every value type, the
 * schema binding, exact error messages with positions, and a seeded fuzz loop. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#include "unit.h"

/* ---- the test schema ------------------------------------------------------------ */

#define MAX_ITEMS 3
#define MAX_ALLOW 4

struct item {
	char id[8];
	int64_t weight;
	bool on;
	struct ls_conf_at at;
};

struct server {
	char host[16];
	int64_t port;     /* 1..65535 */
	int64_t delta;    /* any int64 */
	uint64_t limit;   /* any non-negative */
	uint64_t workers; /* 1..64 */
	bool debug;
	char allow[MAX_ALLOW][16]; /* custom: array of strings */
	size_t nallow;
};

struct tconf {
	char title[32];
	int64_t level;
	bool verbose;
	char any[256]; /* custom: a rendering of whatever value was given */
	int at[8][2];  /* custom: line/col of the value and of its items */
	size_t nat;
	struct server server;
	struct item items[MAX_ITEMS];
	size_t nitems;
};

/* Render a value compactly ("i:1", "s:abc", "[b:true,f:0.5]") so tests can compare
 * what the parser produced. Truncates silently at the buffer's end. */
static void dump(const struct ls_cv *v, char *out, size_t len)
{
	size_t o = strlen(out);
	if (o + 1 >= len)
		return;
	switch (v->type) {
	case LS_CV_STRING: snprintf(out + o, len - o, "s:%s", v->u.s); break;
	case LS_CV_INT: snprintf(out + o, len - o, "i:%" PRId64, v->u.i); break;
	case LS_CV_FLOAT: snprintf(out + o, len - o, "f:%g", v->u.f); break;
	case LS_CV_BOOL: snprintf(out + o, len - o, "b:%s", v->u.b ? "true" : "false"); break;
	case LS_CV_ARRAY:
		snprintf(out + o, len - o, "[");
		for (size_t i = 0; i < v->u.arr.n; i++) {
			if (i)
				snprintf(out + strlen(out), len - strlen(out), ",");
			dump(&v->u.arr.items[i], out, len);
		}
		snprintf(out + strlen(out), len - strlen(out), "]");
		break;
	}
}

static int parse_any(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	char *out = dst;
	out[0] = '\0';
	dump(v, out, sizeof ((struct tconf *)0)->any);
	return 0;
}

static int parse_at(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct tconf *c = (struct tconf *)((char *)dst - offsetof(struct tconf, at));
	c->nat = 0;
	c->at[c->nat][0] = v->line;
	c->at[c->nat++][1] = v->col;
	for (size_t i = 0; v->type == LS_CV_ARRAY && i < v->u.arr.n && c->nat < 8; i++) {
		c->at[c->nat][0] = v->u.arr.items[i].line;
		c->at[c->nat++][1] = v->u.arr.items[i].col;
	}
	return 0;
}

/* An allowlist: an array of at most MAX_ALLOW short strings. */
static int parse_allow(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct server *s = (struct server *)((char *)dst - offsetof(struct server, allow));
	if (v->type != LS_CV_ARRAY) {
		snprintf(err, errlen, "'allow' must be an array of strings");
		return -1;
	}
	if (v->u.arr.n > MAX_ALLOW) {
		snprintf(err, errlen, "'allow' has too many entries (at most %d)", MAX_ALLOW);
		return -1;
	}
	for (size_t i = 0; i < v->u.arr.n; i++) {
		const struct ls_cv *e = &v->u.arr.items[i];
		if (e->type != LS_CV_STRING || strlen(e->u.s) >= sizeof s->allow[i]) {
			snprintf(err, errlen, "'allow' entry %zu must be a short string", i + 1);
			return -1;
		}
		strcpy(s->allow[i], e->u.s);
	}
	s->nallow = v->u.arr.n;
	return 0;
}

static void *add_item(void *conf, char *err, size_t errlen)
{
	struct tconf *c = conf;
	if (c->nitems == MAX_ITEMS) {
		snprintf(err, errlen, "at most %d [[item]] sections", MAX_ITEMS);
		return NULL;
	}
	struct item *it = &c->items[c->nitems++];
	memset(it, 0, sizeof *it);
	it->at = ls_conf_header_at();
	return it;
}

static const struct ls_conf_field root_fields[] = {
	{ "title", LS_CF_STRING, offsetof(struct tconf, title), sizeof ((struct tconf *)0)->title, 0, 0, NULL },
	{ "level", LS_CF_INT, offsetof(struct tconf, level), 0, 0, 0, NULL },
	{ "verbose", LS_CF_BOOL, offsetof(struct tconf, verbose), 0, 0, 0, NULL },
	{ "any", LS_CF_CUSTOM, offsetof(struct tconf, any), 0, 0, 0, parse_any },
	{ "at", LS_CF_CUSTOM, offsetof(struct tconf, at), 0, 0, 0, parse_at },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field server_fields[] = {
	{ "host", LS_CF_STRING, offsetof(struct server, host), sizeof ((struct server *)0)->host, 0, 0, NULL },
	{ "port", LS_CF_INT, offsetof(struct server, port), 0, 1, 65535, NULL },
	{ "delta", LS_CF_INT, offsetof(struct server, delta), 0, 0, 0, NULL },
	{ "limit", LS_CF_UINT, offsetof(struct server, limit), 0, 0, 0, NULL },
	{ "workers", LS_CF_UINT, offsetof(struct server, workers), 0, 1, 64, NULL },
	{ "debug", LS_CF_BOOL, offsetof(struct server, debug), 0, 0, 0, NULL },
	{ "allow", LS_CF_CUSTOM, offsetof(struct server, allow), 0, 0, 0, parse_allow },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field item_fields[] = {
	{ "id", LS_CF_STRING, offsetof(struct item, id), sizeof ((struct item *)0)->id, 0, 0, NULL },
	{ "weight", LS_CF_INT, offsetof(struct item, weight), 0, 0, 100, NULL },
	{ "on", LS_CF_BOOL, offsetof(struct item, on), 0, 0, 0, NULL },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_section schema[] = {
	{ "", root_fields, 0, NULL },
	{ "server", server_fields, offsetof(struct tconf, server), NULL },
	{ "item", item_fields, 0, add_item },
	{ NULL, NULL, 0, NULL },
};

static void defaults(struct tconf *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->title, "default");
	c->level = 7;
	c->verbose = true;
	strcpy(c->server.host, "localhost");
	c->server.port = 8080;
	c->server.delta = -3;
	c->server.limit = 1000;
	c->server.workers = 4;
}

static char err[512];

static int load(const char *text, struct tconf *c)
{
	defaults(c);
	int r = ls_conf_load_string(text, "t.toml", schema, c, err, sizeof err);
	if (r != 0)
		printf("\n    unexpected error: %s\n", err);
	return r;
}

/* Loading `text` must fail with exactly `want`. */
static void expect_err_at(const char *text, const char *want, int src_line)
{
	struct tconf c;
	defaults(&c);
	strcpy(err, "(unset)");
	int r = ls_conf_load_string(text, "t.toml", schema, &c, err, sizeof err);
	if (r != -1 || strcmp(err, want) != 0)
		printf("\n    test_conf.c:%d: r=%d\n      got:  %s\n      want: %s\n", src_line, r,
		       err, want);
	CU_ASSERT_EQUAL(r, -1);
	CU_ASSERT_STRING_EQUAL(err, want);
}
#define expect_err(text, want) expect_err_at(text, want, __LINE__)

/* ---- values --------------------------------------------------------------------- */

static void test_strings(void)
{
	struct tconf c;
	CU_ASSERT_EQUAL_FATAL(load("title = \"q\\\" b\\\\ n\\n t\\t r\\r\"", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "q\" b\\ n\n t\t r\r");
	CU_ASSERT_EQUAL_FATAL(load("title = \"\\u00e9\\u20ac\\U0001F600\\u0041\"", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "A");
	CU_ASSERT_EQUAL_FATAL(load("title = 'C:\\path\\no \"quotes\"'", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "C:\\path\\no \"quotes\"");
	CU_ASSERT_EQUAL_FATAL(load("title = \"\"", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "");
	CU_ASSERT_EQUAL_FATAL(load("title = 'tab\there # not a comment'", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "tab\there # not a comment");
	/* Raw UTF-8 passes through. */
	CU_ASSERT_EQUAL_FATAL(load("title = \"caf\xc3\xa9\"", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "caf\xc3\xa9");
	/* Exactly the capacity minus one fits. */
	CU_ASSERT_EQUAL_FATAL(load("[server]\nhost = \"0123456789abcde\"", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.server.host, "0123456789abcde");
	/* Quoted keys. */
	CU_ASSERT_EQUAL_FATAL(load("\"title\" = 'a'\n'level' = 2", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "a");
	CU_ASSERT_EQUAL(c.level, 2);
}

static void test_integers(void)
{
	struct tconf c;
	static const struct {
		const char *text;
		int64_t want;
	} cases[] = {
		{ "level = 0", 0 },
		{ "level = 42", 42 },
		{ "level = +7", 7 },
		{ "level = -42", -42 },
		{ "level = 1_000_000", 1000000 },
		{ "level = 0x1F", 31 },
		{ "level = 0xdead_beef", 0xdeadbeef },
		{ "level = 0x7fffffffffffffff", INT64_MAX },
		{ "level = 9223372036854775807", INT64_MAX },
		{ "level = -9223372036854775808", INT64_MIN },
		{ "level = -0", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(load(cases[i].text, &c), 0);
		CU_ASSERT_EQUAL(c.level, cases[i].want);
	}
	CU_ASSERT_EQUAL_FATAL(load("[server]\nport = 1\nlimit = 9223372036854775807\n"
				   "workers = 64\ndelta = -5",
				   &c),
			      0);
	CU_ASSERT_EQUAL(c.server.port, 1);
	CU_ASSERT_EQUAL(c.server.limit, (uint64_t)INT64_MAX);
	CU_ASSERT_EQUAL(c.server.workers, 64);
	CU_ASSERT_EQUAL(c.server.delta, -5);
	CU_ASSERT_EQUAL_FATAL(load("[server]\nport = 65535", &c), 0);
	CU_ASSERT_EQUAL(c.server.port, 65535);
}

static void test_floats_bools_any(void)
{
	struct tconf c;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "any = 0.5", "f:0.5" },
		{ "any = 1e3", "f:1000" },
		{ "any = -2.5", "f:-2.5" },
		{ "any = +1.5E-2", "f:0.015" },
		{ "any = 6.02e+23", "f:6.02e+23" },
		{ "any = 1_000.25", "f:1000.25" },
		{ "any = 0.0", "f:0" },
		{ "any = 1e-400", "f:0" }, /* underflow is not an error */
		{ "any = true", "b:true" },
		{ "any = false", "b:false" },
		{ "any = 12", "i:12" },
		{ "any = 'x'", "s:x" },
		{ "any = []", "[]" },
		{ "any = [1, \"a\", [true, 'b'], 2.5, ]", "[i:1,s:a,[b:true,s:b],f:2.5]" },
		{ "any = [[[[[[[[1]]]]]]]]", "[[[[[[[[i:1]]]]]]]]" }, /* 8 levels: the limit */
		{ "any=[1,2]#c", "[i:1,i:2]" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(load(cases[i].text, &c), 0);
		if (strcmp(c.any, cases[i].want) != 0)
			printf("\n    %s -> %s\n", cases[i].text, c.any);
		CU_ASSERT_STRING_EQUAL(c.any, cases[i].want);
	}
	CU_ASSERT_EQUAL_FATAL(load("verbose = false", &c), 0);
	CU_ASSERT_FALSE(c.verbose);
	CU_ASSERT_EQUAL_FATAL(load("[server]\ndebug = true", &c), 0);
	CU_ASSERT_TRUE(c.server.debug);
}

static void test_comments_blank_lines(void)
{
	struct tconf c;
	const char *text = "# a comment\n"
			   "\n"
			   "   \t\n"
			   "title = \"t\" # trailing comment\n"
			   "  level=3#tight\n"
			   "\r\n"
			   "verbose = false\r\n"
			   "[server] # header comment\n"
			   "# inside\n"
			   "port = 99\n"
			   "#last line without newline";
	CU_ASSERT_EQUAL_FATAL(load(text, &c), 0);
	CU_ASSERT_STRING_EQUAL(c.title, "t");
	CU_ASSERT_EQUAL(c.level, 3);
	CU_ASSERT_FALSE(c.verbose);
	CU_ASSERT_EQUAL(c.server.port, 99);
	CU_ASSERT_EQUAL(load("", &c), 0);
	CU_ASSERT_EQUAL(load("\n\n# only comments\n", &c), 0);
	CU_ASSERT_EQUAL(load("\xef\xbb\xbflevel = 1", &c), 0); /* byte order mark */
	CU_ASSERT_EQUAL(c.level, 1);
}

static void test_multiline_arrays(void)
{
	struct tconf c;
	const char *text = "[server]\n"
			   "allow = [\n"
			   "  \"alpha\",   # first\n"
			   "  # a comment line\n"
			   "\n"
			   "  'beta',\n"
			   "  \"gamma\" ,\n"
			   "]\n"
			   "port = 10\n";
	CU_ASSERT_EQUAL_FATAL(load(text, &c), 0);
	CU_ASSERT_EQUAL(c.server.nallow, 3);
	CU_ASSERT_STRING_EQUAL(c.server.allow[0], "alpha");
	CU_ASSERT_STRING_EQUAL(c.server.allow[1], "beta");
	CU_ASSERT_STRING_EQUAL(c.server.allow[2], "gamma");
	CU_ASSERT_EQUAL(c.server.port, 10);

	/* Positions of the value and its items, for custom parsers' messages. */
	CU_ASSERT_EQUAL_FATAL(load("\nat = [ 1,\n  \"two\",\n\t[3] ]", &c), 0);
	CU_ASSERT_EQUAL(c.nat, 4);
	CU_ASSERT(c.at[0][0] == 2 && c.at[0][1] == 6);
	CU_ASSERT(c.at[1][0] == 2 && c.at[1][1] == 8);
	CU_ASSERT(c.at[2][0] == 3 && c.at[2][1] == 3);
	CU_ASSERT(c.at[3][0] == 4 && c.at[3][1] == 2);
}

static void test_defaults_untouched(void)
{
	struct tconf c, want;
	defaults(&want);
	want.level = 3;
	CU_ASSERT_EQUAL_FATAL(load("level = 3\n[server]\n", &c), 0);
	CU_ASSERT_EQUAL(memcmp(&c, &want, sizeof c), 0);

	defaults(&want);
	CU_ASSERT_EQUAL_FATAL(load("# nothing\n", &c), 0);
	CU_ASSERT_EQUAL(memcmp(&c, &want, sizeof c), 0);
}

static void test_array_of_tables(void)
{
	struct tconf c;
	const char *text = "level = 1\n"
			   "[[item]]\n"
			   "id = \"a\"\n"
			   "weight = 10\n"
			   "[[item]]\n"
			   "id = \"b\"   # same keys again: a fresh element\n"
			   "on = true\n"
			   "[server]\n"
			   "port = 2\n"
			   "[[ item ]]\n"
			   "weight = 100\n";
	CU_ASSERT_EQUAL_FATAL(load(text, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c.nitems, 3);
	CU_ASSERT_STRING_EQUAL(c.items[0].id, "a");
	CU_ASSERT_EQUAL(c.items[0].weight, 10);
	CU_ASSERT_FALSE(c.items[0].on);
	CU_ASSERT_STRING_EQUAL(c.items[1].id, "b");
	CU_ASSERT_TRUE(c.items[1].on);
	CU_ASSERT_STRING_EQUAL(c.items[2].id, "");
	CU_ASSERT_EQUAL(c.items[2].weight, 100);
	CU_ASSERT_EQUAL(c.server.port, 2);
	CU_ASSERT_EQUAL(c.level, 1);
	/* Each element knows where its header stands, for checks made after loading. */
	CU_ASSERT_EQUAL(c.items[0].at.line, 2);
	CU_ASSERT_EQUAL(c.items[0].at.col, 1);
	CU_ASSERT_EQUAL(c.items[1].at.line, 5);
	CU_ASSERT_EQUAL(c.items[2].at.line, 10);
	CU_ASSERT_EQUAL(c.items[2].at.col, 1);
}

/* ---- errors --------------------------------------------------------------------- */

static void test_err_keys_sections(void)
{
	expect_err("[server]\nhost = \"a\"\nbogus = 1\n", "t.toml:3:1: unknown key 'bogus' in [server]");
	expect_err("  nope = 1", "t.toml:1:3: unknown key 'nope' at top level");
	expect_err("[[item]]\nport = 1", "t.toml:2:1: unknown key 'port' in [[item]]");
	expect_err("\"we\\nird\" = 1", "t.toml:1:1: unknown key 'we\\x0aird' at top level");
	expect_err("\n[foo]\n", "t.toml:2:1: unknown section [foo]");
	expect_err("  [[ foo ]]", "t.toml:1:3: unknown section [[foo]]");
	expect_err("[\"\"]", "t.toml:1:1: unknown section []");
	expect_err("level = 1\nverbose = true\nlevel = 2", "t.toml:3:1: duplicate key 'level'");
	expect_err("[server]\nport = 1\n'port' = 2", "t.toml:3:1: duplicate key 'port'");
	expect_err("[[item]]\nid = 'a'\nid = 'b'", "t.toml:3:1: duplicate key 'id'");
	expect_err("[server]\n[[item]]\n[server]", "t.toml:3:1: duplicate section [server]");
	expect_err("level 5", "t.toml:1:7: expected '=' after key 'level', found '5'");
	expect_err("level", "t.toml:1:6: expected '=' after key 'level', found end of file");
	expect_err("level\n= 5", "t.toml:1:6: expected '=' after key 'level', found end of line");
	expect_err("level: 5", "t.toml:1:6: expected '=' after key 'level', found ':'");
	expect_err("= 5", "t.toml:1:1: expected a key, found '='");
	expect_err("server.port = 1", "t.toml:1:1: dotted keys are not supported: 'server.port'");
	expect_err("[server.tls]",
		   "t.toml:1:1: dotted section names are not supported: [server.tls] (use one level)");
	expect_err("\n [[item.sub]]",
		   "t.toml:2:2: dotted section names are not supported: [[item.sub]] (use one level)");
	expect_err("[[server]]", "t.toml:1:1: 'server' is a table: write [server], not [[server]]");
	expect_err("[item]", "t.toml:1:1: 'item' is an array of tables: write [[item]], not [item]");
	expect_err("[]", "t.toml:1:2: expected a section name, found ']'");
	expect_err("[server", "t.toml:1:8: expected ']' to close the section header, found end of file");
	expect_err("[[item]\n", "t.toml:1:7: expected ']]' to close the section header, found ']'");
	expect_err("[server] x", "t.toml:1:10: expected end of line after the section header, found 'x'");
	expect_err("[[item]]\n[[item]]\n[[item]]\n[[item]]\n",
		   "t.toml:4:1: at most 3 [[item]] sections");
}

static void test_err_values(void)
{
	expect_err("[server]\nport = \"80\"", "t.toml:2:8: 'port' must be an integer, not a string");
	expect_err("verbose = 1", "t.toml:1:11: 'verbose' must be a boolean, not an integer");
	expect_err("title = [1]", "t.toml:1:9: 'title' must be a string, not an array");
	expect_err("level = 1.5", "t.toml:1:9: 'level' must be an integer, not a float");
	expect_err("[server]\nlimit = true", "t.toml:2:9: 'limit' must be an integer, not a boolean");
	expect_err("[server]\nport = 0", "t.toml:2:8: 'port' must be between 1 and 65535");
	expect_err("[server]\nport = 65536", "t.toml:2:8: 'port' must be between 1 and 65535");
	expect_err("[server]\nworkers = -1", "t.toml:2:11: 'workers' must be between 1 and 64");
	expect_err("[server]\nlimit = -1", "t.toml:2:9: 'limit' must not be negative");
	expect_err("[[item]]\nweight = 101", "t.toml:2:10: 'weight' must be between 0 and 100");
	expect_err("[server]\nhost = \"0123456789abcdef\"",
		   "t.toml:2:8: 'host' is too long (at most 15 characters)");
	expect_err("[server]\nallow = \"x\"", "t.toml:2:9: 'allow' must be an array of strings");
	expect_err("[server]\nallow = ['a', 2]", "t.toml:2:9: 'allow' entry 2 must be a short string");
	expect_err("level = 1 2", "t.toml:1:11: expected end of line after the value, found '2'");
	expect_err("title = \"a\" b", "t.toml:1:13: expected end of line after the value, found 'b'");
	expect_err("any = [1] ]", "t.toml:1:11: expected end of line after the value, found ']'");
	expect_err("level =", "t.toml:1:8: expected a value, found end of file");
	expect_err("level = # c", "t.toml:1:9: expected a value, found '#'");
	expect_err("title = hello", "t.toml:1:9: invalid value 'hello' (strings must be quoted)");
	expect_err("any = True", "t.toml:1:7: invalid value 'True' (strings must be quoted)");
	expect_err("any = {a = 1}", "t.toml:1:7: inline tables ({...}) are not supported");
}

static void test_err_strings(void)
{
	expect_err("title = \"abc\nlevel = 1", "t.toml:1:9: unterminated string");
	expect_err("\ntitle = \"abc", "t.toml:2:9: unterminated string");
	expect_err("title = 'abc", "t.toml:1:9: unterminated string");
	expect_err("title = \"abc\\", "t.toml:1:9: unterminated string");
	expect_err("title = \"abc\\\"\n", "t.toml:1:9: unterminated string");
	expect_err("any = [\"a\",\n  \"b]\n", "t.toml:2:3: unterminated string");
	expect_err("\"level = 1", "t.toml:1:1: unterminated string");
	expect_err("title = \"a\\qb\"", "t.toml:1:11: invalid escape '\\q' in string");
	expect_err("title = \"a\\ b\"", "t.toml:1:11: invalid escape in string: '\\' followed by ' '");
	expect_err("title = \"\\u12G4\"", "t.toml:1:10: invalid escape: \\u needs 4 hex digits");
	expect_err("title = \"\\u12\"", "t.toml:1:10: invalid escape: \\u needs 4 hex digits");
	expect_err("title = \"\\U0001F60\"", "t.toml:1:10: invalid escape: \\U needs 8 hex digits");
	expect_err("title = \"x\\u0000\"", "t.toml:1:11: invalid escape: \\u0000 is not allowed");
	expect_err("title = \"\\uD800\"", "t.toml:1:10: invalid escape: U+D800 is not a valid character");
	expect_err("title = \"\\U00110000\"", "t.toml:1:10: invalid escape: U+110000 is not a valid character");
	expect_err("title = \"a\x01\"", "t.toml:1:11: control character 0x01 in string (use an escape)");
	expect_err("title = 'a\rb'", "t.toml:1:11: control character 0x0d in string (use an escape)");
	expect_err("title = \"\"\"x\"\"\"", "t.toml:1:9: multi-line strings (\"\"\") are not supported");
	expect_err("title = '''x'''", "t.toml:1:9: multi-line strings (''') are not supported");
}

static void test_err_numbers_arrays(void)
{
	expect_err("level = 9223372036854775808",
		   "t.toml:1:9: integer 9223372036854775808 does not fit in 64 bits");
	expect_err("level = -9223372036854775809",
		   "t.toml:1:9: integer -9223372036854775809 does not fit in 64 bits");
	expect_err("level = 0x8000000000000000",
		   "t.toml:1:9: integer 0x8000000000000000 does not fit in 64 bits");
	expect_err("level = 99999999999999999999999999",
		   "t.toml:1:9: integer 99999999999999999999999999 does not fit in 64 bits");
	expect_err("any = 1e999", "t.toml:1:7: float 1e999 is out of range");
	expect_err("level = 1__0", "t.toml:1:9: invalid number '1__0'");
	expect_err("level = _1", "t.toml:1:9: invalid value '_1' (strings must be quoted)");
	expect_err("level = 1_", "t.toml:1:9: invalid number '1_'");
	expect_err("level = 012", "t.toml:1:9: leading zeros are not allowed in '012'");
	expect_err("level = 1.", "t.toml:1:9: invalid number '1.'");
	expect_err("level = .5", "t.toml:1:9: invalid number '.5'");
	expect_err("level = 1e", "t.toml:1:9: invalid number '1e'");
	expect_err("level = 12abc", "t.toml:1:9: invalid number '12abc'");
	expect_err("level = 0x", "t.toml:1:9: invalid number '0x'");
	expect_err("level = 0xZ1", "t.toml:1:9: invalid number '0xZ1'");
	expect_err("level = -0x1", "t.toml:1:9: hex integer '-0x1' may not have a sign");
	expect_err("level = 0b101", "t.toml:1:9: invalid number '0b101'");
	expect_err("level = -", "t.toml:1:9: invalid number '-'");
	expect_err("level = 1979-05-27", "t.toml:1:9: invalid number '1979-05-27'");
	expect_err("any = [1,\n2,\n", "t.toml:1:7: unterminated array");
	expect_err("any = [1 2]", "t.toml:1:10: expected ',' or ']' in array, found '2'");
	expect_err("any = [1,,2]", "t.toml:1:10: expected a value, found ','");
	expect_err("any = [,]", "t.toml:1:8: expected a value, found ','");
	expect_err("any = [[[[[[[[[1]]]]]]]]]",
		   "t.toml:1:15: arrays nested too deeply (at most 8 levels)");
}

/* ---- files ---------------------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void test_files(void)
{
	char dir[] = "/tmp/test_conf.XXXXXX", path[64], want[600];
	struct tconf c;
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/ok.toml", dir);

	const char ok[] = "level = 12\n[server]\nport = 443\n";
	write_file(path, ok, sizeof ok - 1);
	defaults(&c);
	CU_ASSERT_EQUAL(ls_conf_load_file(path, schema, &c, err, sizeof err), 0);
	CU_ASSERT_EQUAL(c.level, 12);
	CU_ASSERT_EQUAL(c.server.port, 443);

	/* Errors carry the path as the name. */
	const char bad[] = "level = 12\n[server]\nport = 0\n";
	write_file(path, bad, sizeof bad - 1);
	CU_ASSERT_EQUAL(ls_conf_load_file(path, schema, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:3:8: 'port' must be between 1 and 65535", path);
	CU_ASSERT_STRING_EQUAL(err, want);

	const char nul[] = "level = 1\nti\0tle = 'x'\n";
	write_file(path, nul, sizeof nul - 1);
	CU_ASSERT_EQUAL(ls_conf_load_file(path, schema, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:2:3: file contains a NUL byte", path);
	CU_ASSERT_STRING_EQUAL(err, want);

	/* 1 MiB exactly is accepted; one byte more is not. */
	size_t big = 1024 * 1024;
	char *data = malloc(big + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	memset(data, '#', big + 1);
	data[big - 1] = '\n';
	write_file(path, data, big);
	CU_ASSERT_EQUAL(ls_conf_load_file(path, schema, &c, err, sizeof err), 0);
	write_file(path, data, big + 1);
	CU_ASSERT_EQUAL(ls_conf_load_file(path, schema, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: file is too large (more than 1048576 bytes)", path);
	CU_ASSERT_STRING_EQUAL(err, want);
	free(data);
	unlink(path);

	snprintf(path, sizeof path, "%s/missing.toml", dir);
	CU_ASSERT_EQUAL(ls_conf_load_file(path, schema, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
	CU_ASSERT_STRING_EQUAL(err, want);

	/* A directory opens but cannot be read. */
	CU_ASSERT_EQUAL(ls_conf_load_file(dir, schema, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: %s", dir, strerror(EISDIR));
	CU_ASSERT_STRING_EQUAL(err, want);
	rmdir(dir);
}

/* ---- robustness ----------------------------------------------------------------- */

static void test_edge_inputs(void)
{
	struct tconf c;
	char small[12];

	/* A tiny or absent error buffer is never overrun. */
	defaults(&c);
	memset(small, 'x', sizeof small);
	CU_ASSERT_EQUAL(ls_conf_load_string("nope = 1", "t.toml", schema, &c, small, 8), -1);
	CU_ASSERT_STRING_EQUAL(small, "t.toml:");
	CU_ASSERT_EQUAL(small[8], 'x');
	CU_ASSERT_EQUAL(ls_conf_load_string("nope = 1", "t.toml", schema, &c, NULL, 0), -1);

	/* Huge lines: a long comment is fine, a long string is only too long, a long
	 * run of brackets stops at the nesting limit. */
	size_t n = 300000;
	char *text = malloc(n + 32);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	strcpy(text, "# ");
	memset(text + 2, 'c', n);
	strcpy(text + 2 + n, "\nlevel = 5");
	CU_ASSERT_EQUAL(load(text, &c), 0);
	CU_ASSERT_EQUAL(c.level, 5);

	strcpy(text, "title = \"");
	memset(text + 9, 'a', n);
	strcpy(text + 9 + n, "\"");
	expect_err(text, "t.toml:1:9: 'title' is too long (at most 31 characters)");

	strcpy(text, "any = ");
	memset(text + 6, '[', n);
	text[6 + n] = '\0';
	expect_err(text, "t.toml:1:15: arrays nested too deeply (at most 8 levels)");

	strcpy(text, "level = ");
	memset(text + 8, '1', n);
	text[8 + n] = '\0';
	expect_err(text, "t.toml:1:9: integer 1111111111111111111111111111111111111111... does not fit in 64 bits");

	memset(text, '\n', n);
	strcpy(text + n, "level");
	CU_ASSERT_EQUAL(ls_conf_load_string(text, "t.toml", schema, &c, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "t.toml:300001:6: expected '=' after key 'level', found end of file");
	free(text);

	/* A schema without a "" section rejects every top-level key. */
	static const struct ls_conf_section only_server[] = {
		{ "server", server_fields, offsetof(struct tconf, server), NULL },
		{ NULL, NULL, 0, NULL },
	};
	defaults(&c);
	CU_ASSERT_EQUAL(ls_conf_load_string("port = 1", "x", only_server, &c, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "x:1:1: unknown key 'port' at top level");
	CU_ASSERT_EQUAL(ls_conf_load_string("[server]\nport = 3", "x", only_server, &c, err,
					    sizeof err),
			0);
	CU_ASSERT_EQUAL(c.server.port, 3);
	CU_ASSERT_STRING_EQUAL(ls_cv_type_name(LS_CV_FLOAT), "float");
}

static const char *const dict[] = {
	"[", "]", "[[", "]]", "\"", "'", "=", " = ", "\n", "\r\n", "#", "\\", "\\u", "\\U0001",
	"0x", "1e", "_", ",", ".", "-", "+", "item", "server", "port", "host", "allow",
	"any", "at", "level", "title", "true", "false", "1", "65535", "99999999999999999999",
	"0.5", "[[item]]\n", "[server]\n", "any = [", "\t", " ", "{", "\x01", "\xff", "\xc3\xa9",
};

static const char seed_text[] = "title = \"seed \\u00e9\" # c\n"
				"level = -12\n"
				"any = [1, 'a', [true, 2.5e3], 0x10,]\n"
				"[server]\n"
				"host = 'h'\n"
				"port = 443\n"
				"allow = [\n  \"a\", # x\n  'b',\n]\n"
				"[[item]]\n"
				"id = \"i\"\n"
				"weight = 1_0\n";

/* Feed seeded random and mutated inputs: the loader must return 0 or -1, and every
 * error must start with the name and stay on one line. */
static void test_fuzz(void)
{
	enum { ROUNDS = 2000, MAX = 600 };
	char buf[MAX + 64];
	struct tconf c;
	int ok = 0, failed = 0;

	srand(20240601);
	CU_ASSERT_EQUAL(load(seed_text, &c), 0);
	for (int round = 0; round < ROUNDS; round++) {
		size_t n = 0;
		int mode = rand() % 3;
		if (mode == 0) { /* random bytes (never NUL: the text is a C string) */
			size_t len = (size_t)(rand() % 200);
			for (; n < len; n++)
				buf[n] = (char)(1 + rand() % 255);
		} else if (mode == 1) { /* random tokens */
			int count = rand() % 60;
			for (int k = 0; k < count; k++) {
				const char *t = dict[(size_t)rand() % (sizeof dict / sizeof dict[0])];
				size_t tl = strlen(t);
				if (n + tl >= MAX)
					break;
				memcpy(buf + n, t, tl);
				n += tl;
			}
		} else { /* the seed with a few edits */
			n = sizeof seed_text - 1;
			memcpy(buf, seed_text, n);
			int edits = 1 + rand() % 4;
			for (int e = 0; e < edits && n > 0; e++) {
				size_t at = (size_t)rand() % n;
				switch (rand() % 4) {
				case 0:
					buf[at] = (char)(1 + rand() % 255);
					break;
				case 1:
					memmove(buf + at, buf + at + 1, n - at - 1);
					n--;
					break;
				case 2:
					n = at; /* truncate */
					break;
				default: {
					const char *t = dict[(size_t)rand() % (sizeof dict / sizeof dict[0])];
					size_t tl = strlen(t);
					if (n + tl < MAX) {
						memmove(buf + at + tl, buf + at, n - at);
						memcpy(buf + at, t, tl);
						n += tl;
					}
				}
				}
			}
		}
		buf[n] = '\0';
		defaults(&c);
		err[0] = 'x';
		int r = ls_conf_load_string(buf, "fuzz.toml", schema, &c, err, sizeof err);
		CU_ASSERT(r == 0 || r == -1);
		if (r == 0) {
			ok++;
			CU_ASSERT_EQUAL(err[0], '\0');
		} else {
			failed++;
			CU_ASSERT_EQUAL(strncmp(err, "fuzz.toml:", 10), 0);
			CU_ASSERT_PTR_NULL(strchr(err, '\n'));
		}
	}
	/* Both outcomes must actually occur, or the loop tests little. */
	CU_ASSERT(ok > 50);
	CU_ASSERT(failed > 50);
}

UNIT_MAIN("conf",
	  { "strings and escapes", test_strings },
	  { "integers", test_integers },
	  { "floats, booleans, arrays", test_floats_bools_any },
	  { "comments and blank lines", test_comments_blank_lines },
	  { "multi-line arrays", test_multiline_arrays },
	  { "defaults untouched", test_defaults_untouched },
	  { "array of tables", test_array_of_tables },
	  { "errors: keys and sections", test_err_keys_sections },
	  { "errors: values", test_err_values },
	  { "errors: strings", test_err_strings },
	  { "errors: numbers and arrays", test_err_numbers_arrays },
	  { "files", test_files },
	  { "edge inputs", test_edge_inputs },
	  { "fuzz", test_fuzz })
