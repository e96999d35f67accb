/* Unit tests for shared/httpd.c: the route lookup (404, 405 with Allow, parameters),
 * body checks (400 for bad JSON, unknown members, wrong types, missing members), the
 * error body, static path safety, content types and the token compare. */
#include <string.h>

#include "httpd.h"

#include "unit.h"

static enum ls_rc h_any(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)ctx;
	(void)req;
	(void)rep;
	return LS_RC_OK;
}

static const struct ls_httpd_key failover_keys[] = {
	{ "to", LS_HTTPD_STRING, false },
	{ NULL, 0, false },
};
static const struct ls_httpd_key add_keys[] = {
	{ "name", LS_HTTPD_STRING, true },
	{ "address", LS_HTTPD_STRING, true },
	{ "probe_ms", LS_HTTPD_INT, false },
	{ "weight", LS_HTTPD_NUMBER | LS_HTTPD_NULL, false },
	{ "tags", LS_HTTPD_ARRAY, false },
	{ "enabled", LS_HTTPD_BOOL, false },
	{ NULL, 0, false },
};

static const struct ls_httpd_route routes[] = {
	{ "GET", "/status", h_any, NULL, NULL, false },
	{ "GET", "/proxies", h_any, NULL, NULL, false },
	{ "POST", "/proxies", h_any, add_keys, NULL, false },
	{ "GET", "/proxies/{name}", h_any, NULL, NULL, false },
	{ "DELETE", "/proxies/{name}", h_any, NULL, NULL, false },
	{ "POST", "/failover", h_any, failover_keys, NULL, false },
	{ "GET", "/nodes/{node}/legs/{leg}", h_any, NULL, NULL, false },
	{ NULL, NULL, NULL, NULL, NULL, false },
};

static enum ls_httpd_match look(const char *method, const char *path,
				const struct ls_httpd_route **r, struct ls_httpd_req *req,
				char *allow)
{
	memset(req, 0, sizeof(*req));
	*r = NULL;
	return ls_httpd_lookup(routes, method, path, r, req, allow, 64);
}

static void test_lookup_exact(void)
{
	const struct ls_httpd_route *r;
	struct ls_httpd_req req;
	char allow[64];

	CU_ASSERT_EQUAL(look("GET", "/status", &r, &req, allow), LS_HTTPD_MATCH_OK);
	CU_ASSERT_PTR_EQUAL(r, &routes[0]);
	CU_ASSERT_EQUAL(req.nparams, 0);
	CU_ASSERT_EQUAL(look("POST", "/proxies", &r, &req, allow), LS_HTTPD_MATCH_OK);
	CU_ASSERT_PTR_EQUAL(r, &routes[2]);
	/* HEAD is served by the GET route. */
	CU_ASSERT_EQUAL(look("HEAD", "/status", &r, &req, allow), LS_HTTPD_MATCH_OK);
	CU_ASSERT_PTR_EQUAL(r, &routes[0]);
}

static void test_lookup_params(void)
{
	const struct ls_httpd_route *r;
	struct ls_httpd_req req;
	char allow[64];

	CU_ASSERT_EQUAL(look("GET", "/proxies/eu-1", &r, &req, allow), LS_HTTPD_MATCH_OK);
	CU_ASSERT_PTR_EQUAL(r, &routes[3]);
	CU_ASSERT_EQUAL(req.nparams, 1);
	CU_ASSERT_STRING_EQUAL(req.params[0].value, "eu-1");
	CU_ASSERT_EQUAL(strncmp(req.params[0].name, "name}", 5), 0);
	CU_ASSERT_EQUAL(look("DELETE", "/proxies/b", &r, &req, allow), LS_HTTPD_MATCH_OK);
	CU_ASSERT_PTR_EQUAL(r, &routes[4]);
	CU_ASSERT_EQUAL(look("GET", "/nodes/a/legs/server", &r, &req, allow), LS_HTTPD_MATCH_OK);
	CU_ASSERT_EQUAL(req.nparams, 2);
	CU_ASSERT_STRING_EQUAL(req.params[0].value, "a");
	CU_ASSERT_STRING_EQUAL(req.params[1].value, "server");
}

static void test_lookup_404(void)
{
	const struct ls_httpd_route *r;
	struct ls_httpd_req req;
	char allow[64];

	CU_ASSERT_EQUAL(look("GET", "/nope", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_PTR_NULL(r);
	/* A parameter is one non-empty segment: no empty name, no extra segment. */
	CU_ASSERT_EQUAL(look("GET", "/proxies/", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "/proxies/a/b", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "/status/", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "/statusx", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "/stat", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "status", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	/* A name too long for the parameter buffer is no name we hold. */
	char longp[300] = "/proxies/";
	memset(longp + 9, 'x', 200);
	longp[209] = '\0';
	CU_ASSERT_EQUAL(look("GET", longp, &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
}

static void test_lookup_405(void)
{
	const struct ls_httpd_route *r;
	struct ls_httpd_req req;
	char allow[64];

	CU_ASSERT_EQUAL(look("DELETE", "/status", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
	CU_ASSERT_STRING_EQUAL(allow, "GET");
	CU_ASSERT_EQUAL(look("PUT", "/proxies", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
	CU_ASSERT_STRING_EQUAL(allow, "GET, POST");
	CU_ASSERT_EQUAL(look("POST", "/proxies/a", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
	CU_ASSERT_STRING_EQUAL(allow, "GET, DELETE");
	CU_ASSERT_EQUAL(look("GET", "/failover", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
	CU_ASSERT_STRING_EQUAL(allow, "POST");
	CU_ASSERT_EQUAL(look("get", "/status", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
}

static enum ls_rc check(const struct ls_httpd_key *keys, const char *body, json_t **out,
			char *msg)
{
	msg[0] = '\0';
	return ls_httpd_check_body(keys, body, body ? strlen(body) : 0, out, msg, 256);
}

static void test_body_ok(void)
{
	json_t *o;
	char msg[256];

	CU_ASSERT_EQUAL(check(failover_keys, NULL, &o, msg), LS_RC_OK);
	CU_ASSERT(json_is_object(o) && json_object_size(o) == 0);
	json_decref(o);
	CU_ASSERT_EQUAL(check(failover_keys, " \r\n", &o, msg), LS_RC_OK);
	json_decref(o);
	CU_ASSERT_EQUAL(check(failover_keys, "{\"to\":\"b\"}", &o, msg), LS_RC_OK);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "to")), "b");
	json_decref(o);
	CU_ASSERT_EQUAL(check(add_keys,
			      "{\"name\":\"a\",\"address\":\"1.2.3.4:5\",\"probe_ms\":50,"
			      "\"weight\":null,\"tags\":[],\"enabled\":true}",
			      &o, msg),
			LS_RC_OK);
	json_decref(o);
	CU_ASSERT_EQUAL(check(add_keys, "{\"name\":\"a\",\"address\":\"x\",\"weight\":1}", &o,
			      msg),
			LS_RC_OK);
	json_decref(o);
	/* NUMBER takes an integer as well as a real. */
	CU_ASSERT_EQUAL(check(add_keys, "{\"name\":\"a\",\"address\":\"x\",\"weight\":0.5}", &o,
			      msg),
			LS_RC_OK);
	json_decref(o);
}

static void test_body_400(void)
{
	json_t *o;
	char msg[256];

	CU_ASSERT_EQUAL(check(failover_keys, "{\"to\":", &o, msg), LS_RC_BAD_JSON);
	CU_ASSERT_PTR_NULL(o);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not JSON"));
	CU_ASSERT_EQUAL(check(failover_keys, "\xff\xfe", &o, msg), LS_RC_BAD_JSON);
	CU_ASSERT_EQUAL(check(failover_keys, "{\"to\":\"a\",\"to\":\"b\"}", &o, msg),
			LS_RC_BAD_JSON);
	CU_ASSERT_EQUAL(check(failover_keys, "[\"b\"]", &o, msg), LS_RC_BAD_REQUEST);
	CU_ASSERT_EQUAL(check(failover_keys, "\"b\"", &o, msg), LS_RC_BAD_REQUEST);
	CU_ASSERT_EQUAL(check(failover_keys, "{\"too\":\"b\"}", &o, msg), LS_RC_BAD_REQUEST);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "unknown member \"too\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "\"to\""));
	CU_ASSERT_EQUAL(check(failover_keys, "{\"to\":5}", &o, msg), LS_RC_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "must be a string"));
	CU_ASSERT_EQUAL(check(failover_keys, "{\"to\":null}", &o, msg), LS_RC_INVALID);
	CU_ASSERT_EQUAL(check(add_keys, "{\"name\":\"a\"}", &o, msg), LS_RC_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "\"address\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "required"));
	CU_ASSERT_EQUAL(check(add_keys, "{\"name\":\"a\",\"address\":\"x\",\"probe_ms\":1.5}",
			      &o, msg),
			LS_RC_INVALID);
	CU_ASSERT_EQUAL(check(add_keys, "{\"name\":\"a\",\"address\":\"x\",\"enabled\":1}", &o,
			      msg),
			LS_RC_INVALID);
	CU_ASSERT_EQUAL(check(add_keys, "{\"name\":\"a\",\"address\":\"x\",\"tags\":{}}", &o,
			      msg),
			LS_RC_INVALID);
	/* A route without keys takes no body at all. */
	CU_ASSERT_EQUAL(check(NULL, "{}", &o, msg), LS_RC_BAD_REQUEST);
	CU_ASSERT_EQUAL(check(NULL, "", &o, msg), LS_RC_OK);
	json_decref(o);
}

static void test_error_body(void)
{
	char *t = ls_httpd_error_body(LS_RC_CONFLICT, "b is down");
	json_t *o = json_loads(t, 0, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(json_object_size(o), 1);
	json_t *e = json_object_get(o, "error");
	CU_ASSERT_EQUAL(json_object_size(e), 2);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "code")), "conflict");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "message")), "b is down");
	json_decref(o);
	free(t);
	/* A message with quotes and control bytes stays valid JSON. */
	t = ls_httpd_error_body(LS_RC_BAD_REQUEST, "say \"hi\"\n\t\\");
	o = json_loads(t, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL(o);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(o, "error"),
								  "message")),
			       "say \"hi\"\n\t\\");
	json_decref(o);
	free(t);
}

static void test_static_paths(void)
{
	CU_ASSERT(ls_httpd_static_path_ok("/"));
	CU_ASSERT(ls_httpd_static_path_ok("/index.html"));
	CU_ASSERT(ls_httpd_static_path_ok("/node_modules/uplot/dist/uPlot.iife.min.js"));
	CU_ASSERT(ls_httpd_static_path_ok("/css/"));
	CU_ASSERT(!ls_httpd_static_path_ok("/../etc/passwd"));
	CU_ASSERT(!ls_httpd_static_path_ok("/a/../../etc/passwd"));
	CU_ASSERT(!ls_httpd_static_path_ok("/a/.."));
	CU_ASSERT(!ls_httpd_static_path_ok("/.git/config"));
	CU_ASSERT(!ls_httpd_static_path_ok("/a//b"));
	CU_ASSERT(!ls_httpd_static_path_ok("/a\\..\\b"));
	CU_ASSERT(!ls_httpd_static_path_ok("/a\nb"));
	CU_ASSERT(!ls_httpd_static_path_ok("relative"));
	CU_ASSERT(!ls_httpd_static_path_ok(""));
}

static void test_content_types(void)
{
	CU_ASSERT_STRING_EQUAL(ls_httpd_content_type("/index.html"), "text/html; charset=utf-8");
	CU_ASSERT_STRING_EQUAL(ls_httpd_content_type("/a/app.js"),
			       "text/javascript; charset=utf-8");
	CU_ASSERT_STRING_EQUAL(ls_httpd_content_type("/x.CSS"), "text/css; charset=utf-8");
	CU_ASSERT_STRING_EQUAL(ls_httpd_content_type("/i.svg"), "image/svg+xml");
	CU_ASSERT_STRING_EQUAL(ls_httpd_content_type("/d.json"), "application/json");
	CU_ASSERT_STRING_EQUAL(ls_httpd_content_type("/noext"), "application/octet-stream");
	CU_ASSERT_STRING_EQUAL(ls_httpd_content_type("/dir.js/file"), "application/octet-stream");
}

static void test_token(void)
{
	CU_ASSERT(ls_httpd_token_ok("Bearer s3cret", "s3cret"));
	CU_ASSERT(ls_httpd_token_ok("bearer s3cret", "s3cret"));
	CU_ASSERT(!ls_httpd_token_ok("Bearer s3cre", "s3cret"));
	CU_ASSERT(!ls_httpd_token_ok("Bearer s3cretX", "s3cret"));
	CU_ASSERT(!ls_httpd_token_ok("Bearer ", "s3cret"));
	CU_ASSERT(!ls_httpd_token_ok("Basic s3cret", "s3cret"));
	CU_ASSERT(!ls_httpd_token_ok("s3cret", "s3cret"));
	CU_ASSERT(!ls_httpd_token_ok(NULL, "s3cret"));
}

UNIT_MAIN("httpd",
	  { "lookup: exact paths, HEAD as GET", test_lookup_exact },
	  { "lookup: {param} segments", test_lookup_params },
	  { "lookup: 404", test_lookup_404 },
	  { "lookup: 405 and Allow", test_lookup_405 },
	  { "body: accepted shapes", test_body_ok },
	  { "body: 400 for bad JSON, unknown members, types, missing", test_body_400 },
	  { "error body", test_error_body },
	  { "static path safety", test_static_paths },
	  { "content types", test_content_types },
	  { "bearer token", test_token })
