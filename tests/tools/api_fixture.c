/* api_fixture: a test fixture, not the product. A real HTTP server built from
 * shared/httpd on a libuv loop that serves the REST API of api/openapi.yaml from canned
 * data (tests/tools/api_fixture.json), with just enough state for lsctl's tests
 * (failover swaps the active node, add/remove change the list) and test-only routes
 * under /fixture/ to publish events and flip a node's state. The e2e tests of
 * shared/httpd (limits, garbage, slow clients, streams, static files, tokens) and of
 * lsctl run against it; the controller serves the same contract for real. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "httpd.h"
#include "log.h"
#include "util.h"

struct fixture {
	json_t *data;         /* the canned world: version, nodes, failovers, ... */
	struct ls_httpd *h;
	uv_loop_t *loop;
	uint64_t start_us;
	unsigned long samples;
	unsigned seq;
};

static void now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *nodes(struct fixture *f)
{
	return json_object_get(f->data, "nodes");
}

static json_t *node_find(struct fixture *f, const char *name, size_t *index)
{
	size_t i;
	json_t *n;

	json_array_foreach(nodes(f), i, n) {
		if (strcmp(json_string_value(json_object_get(n, "name")), name) == 0) {
			if (index)
				*index = i;
			return n;
		}
	}
	return NULL;
}

/* The name of the node with flag ("active" or "backup") set, or NULL. */
static const char *node_with(struct fixture *f, const char *flag)
{
	size_t i;
	json_t *n;

	json_array_foreach(nodes(f), i, n)
		if (json_is_true(json_object_get(n, flag)))
			return json_string_value(json_object_get(n, "name"));
	return NULL;
}

static json_t *opt_str(const char *s)
{
	return s ? json_string(s) : json_null();
}

static double uptime_s(struct fixture *f)
{
	return (double)(ls_now_us() - f->start_us) / 1e6;
}

static enum ls_rc h_health(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;

	(void)req;
	rep->json = json_pack("{s:s,s:O,s:f,s:b}", "status", "ok", "version",
			      json_object_get(f->data, "version"), "uptime_s", uptime_s(f),
			      "dataplane", 1);
	return LS_RC_OK;
}

static json_t *last_switch(struct fixture *f)
{
	json_t *h = json_object_get(f->data, "failovers");

	return json_array_size(h) ? json_incref(json_array_get(h, 0)) : json_null();
}

static enum ls_rc h_status(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	int count[4] = { 0 };
	static const char *const states[4] = { "healthy", "degraded", "down", "unknown" };
	size_t i;
	json_t *n;

	(void)req;
	json_array_foreach(nodes(f), i, n) {
		const char *st = json_string_value(json_object_get(n, "state"));
		for (int k = 0; k < 4; k++)
			if (strcmp(st, states[k]) == 0)
				count[k]++;
	}
	rep->json = json_pack(
		"{s:O,s:f,s:O,s:{s:b,s:s},s:O,s:o,s:o,s:{s:i,s:i,s:i,s:i,s:i},s:i,s:o,s:O,s:O,s:O}",
		"version", json_object_get(f->data, "version"), "uptime_s", uptime_s(f),
		"strategy", json_object_get(f->data, "strategy"), "dataplane", "connected", 1,
		"socket", "/run/lightspeed/client.sock", "game_server",
		json_object_get(f->data, "game_server"), "active", opt_str(node_with(f, "active")),
		"backup", opt_str(node_with(f, "backup")), "nodes", "total",
		(int)json_array_size(nodes(f)), "healthy", count[0], "degraded", count[1], "down",
		count[2], "unknown", count[3], "switches",
		(int)json_array_size(json_object_get(f->data, "failovers")), "last_switch",
		last_switch(f), "direct_rtt_ms", json_object_get(f->data, "direct_rtt_ms"), "game",
		json_object_get(f->data, "game"), "warp", json_object_get(f->data, "warp"));
	return LS_RC_OK;
}

static json_t *routes_json(struct fixture *f)
{
	static const char *const keep[] = { "name", "state", "active", "backup", "rtt_ms",
					    "rtt_p50_ms", "rtt_p95_ms", "jitter_ms", "loss_up",
					    "loss_down", "samples", "server_leg_ms", "path_rtt_ms",
					    "score" };
	json_t *cands = json_array(), *n, *active = NULL;
	size_t i;

	json_array_foreach(nodes(f), i, n) {
		json_t *c = json_object();
		for (size_t k = 0; k < LS_ARRAY_LEN(keep); k++)
			json_object_set(c, keep[k], json_object_get(n, keep[k]));
		json_object_set_new(c, "explain", json_string("path RTT p50 plus loss penalty"));
		json_array_append_new(cands, c);
		if (json_is_true(json_object_get(n, "active")))
			active = n;
	}
	json_t *score = active ? json_object_get(active, "score") : NULL;
	json_t *direct = json_object_get(f->data, "direct_rtt_ms");
	json_t *path = active ? json_object_get(active, "path_rtt_ms") : NULL;
	json_t *gain = json_null(), *gain_pct = json_null();
	if (json_is_number(direct) && json_is_number(path)) {
		double g = json_number_value(direct) - json_number_value(path);
		json_decref(gain);
		json_decref(gain_pct);
		gain = json_real(g);
		gain_pct = json_real(100.0 * g / json_number_value(direct));
	}
	json_t *why = json_pack("{s:O,s:s,s:O,s:{s:f,s:f,s:f},s:n}", "strategy",
				json_object_get(f->data, "strategy"), "reason",
				active ? "lowest score" : "no node is up", "score",
				score ? score : json_null(), "margin", "ratio", 1.1, "plus_ms", 5.0,
				"window_s", 5.0, "challenger");
	json_t *gs = json_pack("{s:O,s:o,s:o,s:o,s:{s:s,s:O,s:o,s:o},s:o}", "game_server",
			       json_object_get(f->data, "game_server"), "active",
			       opt_str(node_with(f, "active")), "backup",
			       opt_str(node_with(f, "backup")), "why", why, "direct", "state",
			       json_is_number(direct) ? "measured" : "unknown", "rtt_ms", direct,
			       "gain_ms", gain, "gain_pct", gain_pct, "candidates", cands);
	return json_pack("{s:O,s:b,s:[o]}", "strategy", json_object_get(f->data, "strategy"),
			 "dataplane", 1, "routes", gs);
}

static enum ls_rc h_routes(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = routes_json(ctx);
	return LS_RC_OK;
}

static enum ls_rc h_proxies(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = json_pack("{s:O}", "proxies", nodes(ctx));
	return LS_RC_OK;
}

static enum ls_rc h_proxy(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	json_t *n = node_find(ctx, req->params[0].value, NULL);

	if (!n) {
		snprintf(rep->msg, sizeof(rep->msg), "no node named %s (see GET /proxies)",
			 req->params[0].value);
		return LS_RC_NOT_FOUND;
	}
	rep->json = json_incref(n);
	return LS_RC_OK;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 31)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static enum ls_rc h_add(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	const char *name = json_string_value(json_object_get(req->body, "name"));
	const char *addr = json_string_value(json_object_get(req->body, "address"));
	const char *region = json_string_value(json_object_get(req->body, "region"));

	if (!name_ok(name)) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "name must be 1-31 characters of A-Z a-z 0-9 . _ -");
		return LS_RC_INVALID;
	}
	if (!strchr(addr, ':')) {
		snprintf(rep->msg, sizeof(rep->msg), "address must be HOST:PORT, not %.60s", addr);
		return LS_RC_INVALID;
	}
	if (node_find(f, name, NULL)) {
		snprintf(rep->msg, sizeof(rep->msg), "a node named %s exists already", name);
		return LS_RC_EXISTS;
	}
	if (json_array_size(nodes(f)) >= 8) {
		snprintf(rep->msg, sizeof(rep->msg), "the route table is full (8 nodes)");
		return LS_RC_FULL;
	}
	json_t *n = json_pack("{s:s,s:s,s:s,s:o,s:s,s:b,s:b,s:b,s:n,s:n,s:n,s:n,s:n,s:n,s:i,"
			      "s:n,s:n,s:n,s:i,s:n,s:n,s:n}",
			      "name", name, "address", addr, "source", "api", "region",
			      opt_str(region), "state", "unknown", "active", 0, "backup", 0, "auth",
			      json_object_get(req->body, "session_id") != NULL, "rtt_ms",
			      "rtt_p50_ms", "rtt_p95_ms", "jitter_ms", "loss_up", "loss_down",
			      "samples", 0, "server_leg_ms", "path_rtt_ms", "score", "flips", 0,
			      "last_rx_ms", "via", "agent");
	json_array_append(nodes(f), n);
	ls_httpd_publish(f->h, "node", json_pack("{s:s,s:s}", "name", name, "change", "added"));
	rep->status = 201;
	rep->json = n;
	return LS_RC_OK;
}

static enum ls_rc h_remove(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	size_t i;
	json_t *n = node_find(f, req->params[0].value, &i);

	if (!n) {
		snprintf(rep->msg, sizeof(rep->msg), "no node named %s", req->params[0].value);
		return LS_RC_NOT_FOUND;
	}
	if (json_is_true(json_object_get(n, "active"))) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "%s carries the active route: fail over first (lsctl failover)",
			 req->params[0].value);
		return LS_RC_CONFLICT;
	}
	rep->json = json_pack("{s:s}", "removed", req->params[0].value);
	ls_httpd_publish(f->h, "node", json_pack("{s:s,s:s}", "name", req->params[0].value,
						 "change", "removed"));
	json_array_remove(nodes(f), i);
	return LS_RC_OK;
}

static enum ls_rc h_failover(void *ctx, const struct ls_httpd_req *req,
			     struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	const char *to = json_string_value(json_object_get(req->body, "to"));
	const char *from = node_with(f, "active");
	json_t *target;
	char when[32], detail[160];

	if (!to)
		to = node_with(f, "backup");
	if (!to) {
		snprintf(rep->msg, sizeof(rep->msg), "no standby to fail over to");
		return LS_RC_CONFLICT;
	}
	target = node_find(f, to, NULL);
	if (!target) {
		snprintf(rep->msg, sizeof(rep->msg), "no node named %s", to);
		return LS_RC_NOT_FOUND;
	}
	if (strcmp(json_string_value(json_object_get(target, "state")), "down") == 0) {
		snprintf(rep->msg, sizeof(rep->msg), "%s is down: refusing to fail over to it", to);
		return LS_RC_CONFLICT;
	}
	if (from && strcmp(from, to) == 0) {
		snprintf(rep->msg, sizeof(rep->msg), "%s is already the active node", to);
		return LS_RC_CONFLICT;
	}
	char from_copy[32] = "";
	if (from)
		snprintf(from_copy, sizeof(from_copy), "%s", from);
	size_t i;
	json_t *n;
	json_array_foreach(nodes(f), i, n) {
		const char *nm = json_string_value(json_object_get(n, "name"));
		json_object_set_new(n, "active", json_boolean(strcmp(nm, to) == 0));
		json_object_set_new(n, "backup", json_boolean(from && strcmp(nm, from_copy) == 0));
	}
	now_rfc3339(when, sizeof(when));
	snprintf(detail, sizeof(detail), "manual failover from %s to %s",
		 from ? from_copy : "none", to);
	json_t *sw = json_pack("{s:s,s:o,s:s,s:s,s:s,s:f}", "time", when, "from",
			       opt_str(from ? from_copy : NULL), "to", to, "reason", "manual",
			       "detail", detail, "gap_ms", 0.8);
	json_array_insert(json_object_get(f->data, "failovers"), 0, sw);
	ls_httpd_publish(f->h, "switch", json_incref(sw));
	ls_httpd_publish(f->h, "backup", json_pack("{s:o}", "name", opt_str(from ? from_copy : NULL)));
	rep->json = sw;
	return LS_RC_OK;
}

static enum ls_rc h_failovers(void *ctx, const struct ls_httpd_req *req,
			      struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;

	(void)req;
	rep->json = json_pack("{s:O}", "failovers", json_object_get(f->data, "failovers"));
	return LS_RC_OK;
}

static enum ls_rc h_stats(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	struct ls_httpd_stats st;

	(void)req;
	ls_httpd_get_stats(f->h, &st);
	rep->json = json_pack(
		"{s:{s:f,s:i,s:I,s:i},s:{s:I,s:I,s:I,s:I,s:I,s:I},"
		"s:{s:i,s:i,s:i},s:{s:s,s:{s:i,s:i,s:i,s:i},s:n,s:i,s:i,s:i}}",
		"controller", "uptime_s", uptime_s(f), "switches",
		(int)json_array_size(json_object_get(f->data, "failovers")), "samples",
		(json_int_t)f->samples, "dataplane_connects", 1, "api", "requests",
		(json_int_t)st.requests, "errors", (json_int_t)st.errors, "auth_failures",
		(json_int_t)st.auth_failures, "streams", (json_int_t)st.streams, "events_sent",
		(json_int_t)st.events_sent, "events_dropped", (json_int_t)st.events_dropped,
		"dataplane", "game_rx_packets", 6400, "delivered_packets", 6398,
		"keepalives_sent", 9000, "fec", "setting", "auto", "up", "k", 4, "m", 1,
		"block_ms", 10, "spread", 1, "down", "rebuilt", 17, "lost_blocks", 1, "parity_sent",
		1600);
	return LS_RC_OK;
}

static enum ls_rc h_events(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = routes_json(ctx);
	return LS_RC_OK;
}

static enum ls_rc h_metrics(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	struct ls_buf b;

	(void)req;
	ls_buf_init(&b);
	ls_buf_printf(&b, "# HELP lightspeed_controller_switches_total Route switches.\n"
			  "# TYPE lightspeed_controller_switches_total counter\n"
			  "lightspeed_controller_switches_total %zu\n",
		      json_array_size(json_object_get(f->data, "failovers")));
	rep->text = b.data;
	rep->text_len = b.len;
	rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return LS_RC_OK;
}

/* ---- test-only routes ---- */

static enum ls_rc h_publish(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	const char *ev = json_string_value(json_object_get(req->body, "event"));
	json_t *data = json_object_get(req->body, "data");
	json_int_t count = json_integer_value(json_object_get(req->body, "count"));

	if (count <= 0)
		count = 1;
	if (count > 100000)
		count = 100000;
	for (json_int_t i = 0; i < count; i++)
		ls_httpd_publish(f->h, ev, data ? json_incref(data) : NULL);
	rep->json = json_pack("{s:I,s:i}", "published", (json_int_t)count, "streams",
			      (int)ls_httpd_streams(f->h));
	return LS_RC_OK;
}

static enum ls_rc h_set_state(void *ctx, const struct ls_httpd_req *req,
			      struct ls_httpd_reply *rep)
{
	struct fixture *f = ctx;
	const char *name = json_string_value(json_object_get(req->body, "name"));
	const char *state = json_string_value(json_object_get(req->body, "state"));
	json_t *n = node_find(f, name, NULL);

	if (!n) {
		snprintf(rep->msg, sizeof(rep->msg), "no node named %s", name);
		return LS_RC_NOT_FOUND;
	}
	json_t *prev = json_incref(json_object_get(n, "state"));
	json_object_set_new(n, "state", json_string(state));
	ls_httpd_publish(f->h, "state", json_pack("{s:s,s:s,s:o,s:s}", "name", name, "state",
						  state, "previous", prev, "reason",
						  "set by the fixture"));
	rep->json = json_incref(n);
	return LS_RC_OK;
}

static const struct ls_httpd_key failover_keys[] = {
	{ "to", LS_HTTPD_STRING, false },
	{ NULL, 0, false },
};
static const struct ls_httpd_key add_keys[] = {
	{ "name", LS_HTTPD_STRING, true },
	{ "address", LS_HTTPD_STRING, true },
	{ "session_id", LS_HTTPD_INT, false },
	{ "key", LS_HTTPD_STRING, false },
	{ "probe_ms", LS_HTTPD_INT, false },
	{ "region", LS_HTTPD_STRING, false },
	{ NULL, 0, false },
};
static const struct ls_httpd_key publish_keys[] = {
	{ "event", LS_HTTPD_STRING, true },
	{ "data", LS_HTTPD_OBJECT, false },
	{ "count", LS_HTTPD_INT, false },
	{ NULL, 0, false },
};
static const struct ls_httpd_key state_keys[] = {
	{ "name", LS_HTTPD_STRING, true },
	{ "state", LS_HTTPD_STRING, true },
	{ NULL, 0, false },
};
static const char *const events_query[] = { "since", NULL };

static const struct ls_httpd_route routes[] = {
	{ "GET", "/health", h_health, NULL, NULL, false },
	{ "GET", "/status", h_status, NULL, NULL, false },
	{ "GET", "/routes", h_routes, NULL, NULL, false },
	{ "GET", "/proxies", h_proxies, NULL, NULL, false },
	{ "POST", "/proxies", h_add, add_keys, NULL, false },
	{ "GET", "/proxies/{name}", h_proxy, NULL, NULL, false },
	{ "DELETE", "/proxies/{name}", h_remove, NULL, NULL, false },
	{ "POST", "/failover", h_failover, failover_keys, NULL, false },
	{ "GET", "/failovers", h_failovers, NULL, NULL, false },
	{ "GET", "/stats", h_stats, NULL, NULL, false },
	{ "GET", "/events", h_events, NULL, events_query, true },
	{ "GET", "/metrics", h_metrics, NULL, NULL, false },
	{ "POST", "/fixture/publish", h_publish, publish_keys, NULL, false },
	{ "POST", "/fixture/state", h_set_state, state_keys, NULL, false },
	{ NULL, NULL, NULL, NULL, NULL, false },
};

/* A sample per node now and then, as the controller publishes them. */
static void on_sample(uv_timer_t *t)
{
	struct fixture *f = t->data;
	size_t i;
	json_t *n;

	json_array_foreach(nodes(f), i, n) {
		json_t *rtt = json_object_get(n, "rtt_ms");
		if (!json_is_number(rtt))
			continue;
		double v = json_number_value(rtt) + (double)(f->seq++ % 7) * 0.1;
		f->samples++;
		ls_httpd_publish(f->h, "sample",
				 json_pack("{s:O,s:f,s:O,s:O,s:O}", "name",
					   json_object_get(n, "name"), "rtt_ms", v, "jitter_ms",
					   json_object_get(n, "jitter_ms"), "loss_up",
					   json_object_get(n, "loss_up"), "loss_down",
					   json_object_get(n, "loss_down")));
	}
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	uv_stop(s->loop);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: api_fixture [--listen ADDR:PORT] [--data FILE] [--token T] [--static DIR]\n"
		"                   [--max-body BYTES] [--max-conns N] [--timeout S]\n"
		"                   [--sse-backlog BYTES] [--sample-ms MS]\n"
		"A test fixture: serves the REST API of api/openapi.yaml from canned data\n"
		"through shared/httpd. Prints \"listening on ADDR:PORT\" once ready.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data", required_argument, NULL, 'd' },
		{ "token", required_argument, NULL, 't' },
		{ "static", required_argument, NULL, 's' },
		{ "max-body", required_argument, NULL, 'b' },
		{ "max-conns", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "sse-backlog", required_argument, NULL, 'q' },
		{ "sample-ms", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ls_httpd_conf conf = { .name = "fixture API", .listen = "127.0.0.1:0",
				      .routes = routes };
	const char *data_path = "tests/tools/api_fixture.json";
	uint64_t v, sample_ms = 0;
	struct fixture f = { 0 };
	char err[256];
	int c;

	ls_log_init("api_fixture", LS_LOG_INFO);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': conf.listen = optarg; break;
		case 'd': data_path = optarg; break;
		case 't': conf.token = optarg; break;
		case 's': conf.static_root = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'b': case 'c': case 'T': case 'q': case 'S':
			if (ls_parse_u64(optarg, 1u << 30, &v) < 0) {
				fprintf(stderr, "api_fixture: bad number %s\n", optarg);
				return 2;
			}
			if (c == 'b') conf.max_body = v;
			if (c == 'c') conf.max_conns = (unsigned)v;
			if (c == 'T') conf.timeout_s = (unsigned)v;
			if (c == 'q') conf.sse_backlog = v;
			if (c == 'S') sample_ms = v;
			break;
		default: usage(stderr); return 2;
		}
	}
	json_error_t jerr;
	f.data = json_load_file(data_path, 0, &jerr);
	if (!f.data) {
		fprintf(stderr, "api_fixture: %s:%d: %s\n", data_path, jerr.line, jerr.text);
		return 1;
	}
	f.start_us = ls_now_us();
	f.loop = uv_default_loop();
	conf.ctx = &f;
	f.h = ls_httpd_open(&conf, err, sizeof(err));
	if (!f.h) {
		fprintf(stderr, "api_fixture: %s\n", err);
		return 1;
	}
	if (ls_httpd_attach_uv(f.h, f.loop) < 0) {
		fprintf(stderr, "api_fixture: cannot watch the server from the loop\n");
		return 1;
	}
	uv_signal_t sterm, sint;
	uv_signal_init(f.loop, &sterm);
	uv_signal_start(&sterm, on_signal, SIGTERM);
	uv_signal_init(f.loop, &sint);
	uv_signal_start(&sint, on_signal, SIGINT);
	uv_timer_t tick;
	uv_timer_init(f.loop, &tick);
	tick.data = &f;
	if (sample_ms)
		uv_timer_start(&tick, on_sample, sample_ms, sample_ms);
	signal(SIGPIPE, SIG_IGN);
	printf("listening on 127.0.0.1:%u\n", ls_httpd_port(f.h));
	fflush(stdout);

	uv_run(f.loop, UV_RUN_DEFAULT);

	ls_httpd_close(f.h);
	uv_close((uv_handle_t *)&sterm, NULL);
	uv_close((uv_handle_t *)&sint, NULL);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(f.loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(f.loop);
	json_decref(f.data);
	if (rc != 0) {
		fprintf(stderr, "api_fixture: the loop did not close cleanly (a handle leaked)\n");
		return 1;
	}
	return 0;
}
