/* Unit tests for the controller's REST route table (controller/api.c) as shared/httpd
 * looks it up: every path of api/openapi.yaml found with its method, 404 for other
 * paths, 405 with the Allow list for other methods, 400 for bodies that do not fit
 * (bad JSON, unknown key, wrong type, missing required); and the dataplane's route
 * objects read field by field, hostile ones refused (controller/dplink.c). */

#include "../../controller/controller.h"

#include <string.h>

#include "httpd.h"
#include "unit.h"

const struct ls_httpd_route *api_route_table(void);

static enum ls_httpd_match look(const char *method, const char *path,
				const struct ls_httpd_route **r, struct ls_httpd_req *req, char *allow)
{
	memset(req, 0, sizeof(*req));
	return ls_httpd_lookup(api_route_table(), method, path, r, req, allow, 64);
}

static void test_every_endpoint(void)
{
	static const char *const ep[][2] = {
		{ "GET", "/health" },      { "GET", "/status" },        { "GET", "/routes" },
		{ "GET", "/proxies" },     { "POST", "/proxies" },      { "GET", "/proxies/a" },
		{ "DELETE", "/proxies/a" }, { "POST", "/failover" },    { "GET", "/failovers" },
		{ "GET", "/stats" },       { "GET", "/events" },        { "GET", "/metrics" },
	};
	const struct ls_httpd_route *r;
	struct ls_httpd_req req;
	char allow[64];

	for (size_t i = 0; i < sizeof(ep) / sizeof(ep[0]); i++) {
		CU_ASSERT_EQUAL(look(ep[i][0], ep[i][1], &r, &req, allow), LS_HTTPD_MATCH_OK);
		CU_ASSERT_PTR_NOT_NULL(r);
	}
	look("GET", "/proxies/eu-west.1", &r, &req, allow);
	CU_ASSERT_EQUAL(req.nparams, 1);
	CU_ASSERT_STRING_EQUAL(req.params[0].value, "eu-west.1");
	CU_ASSERT_TRUE(look("GET", "/events", &r, &req, allow) == LS_HTTPD_MATCH_OK && r->sse);
}

static void test_404_405(void)
{
	const struct ls_httpd_route *r;
	struct ls_httpd_req req;
	char allow[64];

	CU_ASSERT_EQUAL(look("GET", "/nope", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "/proxies/a/b", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("GET", "/routes/", &r, &req, allow), LS_HTTPD_MATCH_NO_PATH);
	CU_ASSERT_EQUAL(look("PUT", "/proxies", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
	CU_ASSERT_PTR_NOT_NULL(strstr(allow, "GET"));
	CU_ASSERT_PTR_NOT_NULL(strstr(allow, "POST"));
	CU_ASSERT_EQUAL(look("GET", "/failover", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
	CU_ASSERT_STRING_EQUAL(allow, "POST");
	CU_ASSERT_EQUAL(look("POST", "/proxies/a", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
	CU_ASSERT_PTR_NOT_NULL(strstr(allow, "DELETE"));
	CU_ASSERT_EQUAL(look("DELETE", "/routes", &r, &req, allow), LS_HTTPD_MATCH_NO_METHOD);
}

static enum ls_rc body(const char *method, const char *path, const char *text)
{
	const struct ls_httpd_route *r;
	struct ls_httpd_req req;
	char allow[64], msg[256];
	json_t *out = NULL;
	enum ls_rc rc;

	CU_ASSERT_EQUAL_FATAL(look(method, path, &r, &req, allow), LS_HTTPD_MATCH_OK);
	rc = ls_httpd_check_body(r->keys, text, strlen(text), &out, msg, sizeof(msg));
	json_decref(out);
	return rc;
}

static void test_400(void)
{
	CU_ASSERT_EQUAL(body("POST", "/failover", ""), LS_RC_OK);
	CU_ASSERT_EQUAL(body("POST", "/failover", "{\"to\":\"b\"}"), LS_RC_OK);
	CU_ASSERT_EQUAL(body("POST", "/failover", "{\"to\":"), LS_RC_BAD_JSON);
	CU_ASSERT_EQUAL(body("POST", "/failover", "[1]"), LS_RC_BAD_REQUEST);
	CU_ASSERT_EQUAL(body("POST", "/failover", "{\"too\":\"b\"}"), LS_RC_BAD_REQUEST);
	CU_ASSERT_EQUAL(body("POST", "/failover", "{\"to\":5}"), LS_RC_INVALID);
	CU_ASSERT_EQUAL(body("POST", "/proxies", "{\"name\":\"a\",\"address\":\"1.2.3.4:5\"}"), LS_RC_OK);
	CU_ASSERT_EQUAL(body("POST", "/proxies", "{\"name\":\"a\"}"), LS_RC_INVALID);
	CU_ASSERT_EQUAL(body("POST", "/proxies",
			     "{\"name\":\"a\",\"address\":\"1.2.3.4:5\",\"session_id\":\"7\"}"),
			LS_RC_INVALID);
	CU_ASSERT_EQUAL(body("POST", "/proxies",
			     "{\"name\":\"a\",\"address\":\"1.2.3.4:5\",\"colour\":1}"),
			LS_RC_BAD_REQUEST);
	/* Routes that take no body refuse one. */
	CU_ASSERT_NOT_EQUAL(body("GET", "/routes", "{\"x\":1}"), LS_RC_OK);
}

static void test_parse_route(void)
{
	char name[NODE_NAME_MAX];
	struct node_dp dp;
	json_error_t je;
	json_t *o;

	o = json_loads("{\"name\":\"b\",\"proxy\":\"127.0.0.1:4434\",\"session_id\":7,\"auth\":true,"
		       "\"probe_ms\":250,\"active\":false,\"backup\":true,\"state\":\"up\",\"rtt_us\":15000,"
		       "\"rtt_min_us\":14000,\"jitter_us\":300,\"loss_up\":0.01,\"loss_down\":null,"
		       "\"missed\":2,\"keepalives_sent\":100,\"replies\":98,\"last_rx_ms\":40,\"flips\":1}",
		       0, &je);
	CU_ASSERT_EQUAL(dplink_parse_route(o, name, &dp), 0);
	CU_ASSERT_STRING_EQUAL(name, "b");
	CU_ASSERT_STRING_EQUAL(dp.proxy, "127.0.0.1:4434");
	CU_ASSERT_EQUAL(dp.session_id, 7);
	CU_ASSERT_TRUE(dp.auth);
	CU_ASSERT_EQUAL(dp.rtt_us, 15000);
	CU_ASSERT_DOUBLE_EQUAL(dp.loss_up, 0.01, 1e-9);
	CU_ASSERT(dp.loss_down < 0);
	CU_ASSERT_EQUAL(dp.missed, 2);
	CU_ASSERT_EQUAL(dp.last_rx_ms, 40);
	/* Measurements not taken yet are null: accepted as unknown. */
	json_object_set_new(o, "rtt_us", json_null());
	json_object_set_new(o, "last_rx_ms", json_null());
	json_object_set_new(o, "session_id", json_null());
	CU_ASSERT_EQUAL(dplink_parse_route(o, name, &dp), 0);
	CU_ASSERT_EQUAL(dp.rtt_us, -1);
	CU_ASSERT_EQUAL(dp.session_id, -1);

	/* Hostile or broken fields: the whole object is refused. */
	static const char *const bad[][2] = {
		{ "name", "\"bad name\"" }, { "name", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" },
		{ "name", "5" },            { "proxy", "\"somewhere\"" },
		{ "proxy", "\"1.2.3.4:0\"" }, { "state", "\"sideways\"" },
		{ "rtt_us", "\"fast\"" },   { "rtt_us", "-5" },
		{ "loss_up", "1.5" },       { "loss_down", "-0.1" },
		{ "missed", "-1" },         { "missed", "1.5" },
		{ "session_id", "99999999999" }, { "probe_ms", "9999999" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *c = json_deep_copy(o);
		json_object_set_new(c, bad[i][0], json_loads(bad[i][1], JSON_DECODE_ANY, &je));
		CU_ASSERT_EQUAL(dplink_parse_route(c, name, &dp), -1);
		json_decref(c);
	}
	json_t *c = json_deep_copy(o);
	json_object_del(c, "name");
	CU_ASSERT_EQUAL(dplink_parse_route(c, name, &dp), -1);
	json_decref(c);
	CU_ASSERT_EQUAL(dplink_parse_route(json_integer(3), name, &dp), -1);
	json_decref(o);
}

UNIT_MAIN("api_routes",
	  { "every endpoint of the contract", test_every_endpoint },
	  { "404 and 405 with Allow", test_404_405 },
	  { "400 from the body checks", test_400 },
	  { "dataplane route objects", test_parse_route })
