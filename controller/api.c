/* lightspeed-controller: the REST handlers (api/openapi.yaml) on shared/httpd's route
 * table. The server runs on the controller's libuv loop (shared/httpd drives
 * libmicrohttpd through its epoll fd), so a handler reads the controller's state
 * directly, without locks; the calls that change the dataplane wait for its answer
 * (milliseconds: it answers within its loop turn) so that what a handler returns is
 * what the dataplane did. Errors go through shared/result.h's one mapping. */
#include "controller.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "httpd.h"
#include "log.h"
#include "ml_api.h"
#include "prom.h"
#include "util.h"

/* ---- JSON pieces ----------------------------------------------------------------- */

static json_t *ms_or_null(int64_t us)
{
	return us >= 0 ? json_real((double)us / 1000.0) : json_null();
}

static json_t *ratio_or_null(double v)
{
	return v >= 0 ? json_real(v > 1 ? 1 : v) : json_null();
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static const char *slot_name(const struct ctrl *c, int slot)
{
	return slot >= 0 && slot < NODE_MAX && c->nodes.n[slot].used ? c->nodes.n[slot].conf.name :
								       NULL;
}

/* The whole way as scored: the path's recent RTT plus the node's leg when known. */
static int64_t path_rtt_us(const struct node *n)
{
	if (n->report.rtt_recent_us < 0)
		return -1;
	return n->report.rtt_recent_us + (n->server_leg_us > 0 ? n->server_leg_us : 0);
}

/* The measurements both a Node and a Candidate carry. */
static void measure_json(const struct ctrl *c, int slot, json_t *o)
{
	const struct node *n = &c->nodes.n[slot];
	const struct health_report *r = &n->report;

	/* A node whose agent's certificate is refused is down until trusted, whatever its
	 * path says. */
	json_object_set_new(o, "state", json_string(agents_refused(c, slot) ? "down"
								 : health_state_name(r->state)));
	json_object_set_new(o, "active", json_boolean(slot == c->fo.active));
	json_object_set_new(o, "backup", json_boolean(slot == c->fo.backup));
	json_object_set_new(o, "rtt_ms", ms_or_null(n->dp.present ? n->dp.rtt_us : -1));
	json_object_set_new(o, "rtt_p50_ms", ms_or_null(r->rtt_p50_us));
	json_object_set_new(o, "rtt_p95_ms", ms_or_null(r->rtt_p95_us));
	json_object_set_new(o, "jitter_ms", ms_or_null(r->jitter_us));
	json_object_set_new(o, "loss_up", ratio_or_null(r->loss_up));
	json_object_set_new(o, "loss_down", ratio_or_null(r->loss_down));
	json_object_set_new(o, "samples", json_integer(r->window_samples));
	json_object_set_new(o, "server_leg_ms", ms_or_null(n->server_leg_us));
	json_object_set_new(o, "path_rtt_ms", ms_or_null(path_rtt_us(n)));
	json_object_set_new(o, "score",
			    n->score.usable ? json_real(n->score.score_us / 1000.0) : json_null());
}

static json_t *node_json(const struct ctrl *c, int slot)
{
	const struct node *n = &c->nodes.n[slot];
	char addr[LS_ADDRSTRLEN];
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(n->conf.name));
	json_object_set_new(o, "address", json_string(ls_addr_fmt(&n->conf.addr, addr)));
	json_object_set_new(o, "source", json_string(node_source_name(n->conf.source)));
	json_object_set_new(o, "region",
			    n->conf.facts.region[0] ? json_string(n->conf.facts.region) : json_null());
	json_object_set_new(o, "auth", json_boolean(n->dp.present ? n->dp.auth : n->conf.key.set));
	measure_json(c, slot, o);
	json_object_set_new(o, "flips", json_integer(n->report.flips));
	json_object_set_new(o, "last_rx_ms", n->dp.present && n->dp.last_rx_ms >= 0 ?
						     json_integer(n->dp.last_rx_ms) :
						     json_null());
	json_object_set_new(o, "via", n->conf.via[0] ? json_string(n->conf.via) : json_null());
	json_object_set_new(o, "agent", agents_json(c, slot));
	return o;
}

static void fmt_time(int64_t wall_ms, char *buf, size_t len)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

/* A switch record as the API shows it. Someone else steering the dataplane is shown as
 * a manual switch, and the detail says by whom. */
json_t *api_switch_json(const struct switch_rec *r)
{
	static const char *const detail[SW__COUNT] = {
		[SW_INITIAL] = "the first route",
		[SW_SELECTION] = "a better node beat the margin for the whole window",
		[SW_RECOVERY] = "the active node was down and no backup had taken over",
		[SW_FAILOVER] = "the dataplane missed keepalives on the active node and switched to "
				"the armed backup by itself",
		[SW_MANUAL] = "requested through the API",
		[SW_EXTERNAL] = "steered by another client of the dataplane's socket",
	};
	char t[64];
	const char *reason = r->reason == SW_EXTERNAL ? "manual" : failover_reason_name(r->reason);

	fmt_time(r->wall_ms, t, sizeof(t));
	return json_pack("{s:s,s:o,s:s,s:s,s:s,s:o}", "time", t, "from",
			 r->from[0] ? json_string(r->from) : json_null(), "to", r->to, "reason", reason,
			 "detail", (unsigned)r->reason < SW__COUNT ? detail[r->reason] : "",
			 "gap_ms", ms_or_null(r->gap_us));
}

static json_t *last_switch_json(const struct ctrl *c)
{
	unsigned n = history_len(&c->hist);

	return n ? api_switch_json(history_at(&c->hist, n - 1)) : json_null();
}

json_t *api_decision_json(const char *kind, const char *node, const char *detail)
{
	struct timespec ts;
	char t[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	fmt_time((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, t, sizeof(t));
	return json_pack("{s:s,s:s,s:o,s:s}", "time", t, "kind", kind, "node", str_or_null(node),
			 "detail", detail);
}

/* Why the active node is the active one, in a sentence. */
static void why_sentence(const struct ctrl *c, char *buf, size_t len)
{
	const struct select_decision *d = &c->decision;
	int a = c->fo.active;
	const struct node *an = a >= 0 ? &c->nodes.n[a] : NULL;

	if (!dplink_connected(c->dp)) {
		snprintf(buf, len, "no dataplane connected: it keeps its last route");
	} else if (!an || !an->used) {
		snprintf(buf, len, d->best >= 0 ? "no route yet: %s is being set" : "no route yet: no node is usable",
			 slot_name(c, d->best));
	} else if (!an->score.usable) {
		snprintf(buf, len, "%s is %s%s", an->conf.name, an->score.why,
			 d->standby >= 0 ? "" : "; no usable standby to switch to");
	} else if (c->hold == FO_HOLD_COOLDOWN || c->hold == FO_HOLD_LIMIT) {
		uint64_t now = ls_now_us();
		snprintf(buf, len, "%s would win, but the %s holds for %.1f s", slot_name(c, d->choose),
			 c->hold == FO_HOLD_COOLDOWN ? "cooldown after the last switch" : "switch limit",
			 c->hold_until_us > now ? (double)(c->hold_until_us - now) / 1e6 : 0);
	} else if (d->challenger >= 0) {
		snprintf(buf, len, "%s beats it by the margin, for %.1f s of the %.1f s window",
			 slot_name(c, d->challenger), (double)d->beating_us / 1e6,
			 c->conf.select.hold_ms / 1000.0);
	} else if (d->best == a || d->best < 0) {
		snprintf(buf, len, "lowest score (%.1f ms)", an->score.score_us / 1000.0);
	} else {
		snprintf(buf, len, "%s scores %.1f ms, within the margin of %.1f ms", slot_name(c, d->best),
			 c->nodes.n[d->best].score.score_us / 1000.0, an->score.score_us / 1000.0);
	}
}

static json_t *why_json(const struct ctrl *c)
{
	const struct select_decision *d = &c->decision;
	char reason[256];
	int a = c->fo.active;
	json_t *ch = json_null();

	why_sentence(c, reason, sizeof(reason));
	if (d->challenger >= 0 && c->nodes.n[d->challenger].used)
		ch = json_pack("{s:s,s:f,s:f}", "name", c->nodes.n[d->challenger].conf.name, "score",
			       c->nodes.n[d->challenger].score.score_us / 1000.0, "since_s",
			       (double)d->beating_us / 1e6);
	return json_pack("{s:s,s:s,s:o,s:{s:f,s:f,s:f},s:o}", "strategy", c->sel.name, "reason", reason,
			 "score",
			 a >= 0 && c->nodes.n[a].used && c->nodes.n[a].score.usable ?
				 json_real(c->nodes.n[a].score.score_us / 1000.0) :
				 json_null(),
			 "margin", "ratio", c->conf.select.margin_ratio, "plus_ms", c->conf.select.margin_ms,
			 "window_s", c->conf.select.hold_ms / 1000.0, "challenger", ch);
}

static json_t *direct_json(const struct ctrl *c)
{
	enum icmp_state st;
	int64_t rtt = icmp_rtt_us(c->icmp, &st);
	int a = c->fo.active;
	int64_t path = a >= 0 && c->nodes.n[a].used ? path_rtt_us(&c->nodes.n[a]) : -1;
	json_t *gain = json_null(), *pct = json_null();

	if (rtt >= 0 && path >= 0) {
		gain = json_real((double)(rtt - path) / 1000.0);
		pct = rtt > 0 ? json_real(100.0 * (double)(rtt - path) / (double)rtt) : json_null();
	}
	json_t *o = json_pack("{s:s,s:o,s:o,s:o}", "state",
			      st == ICMP_MEASURED ? "measured" :
			      st == ICMP_UNKNOWN  ? "unknown" :
						    "unavailable",
			      "rtt_ms", ms_or_null(rtt), "gain_ms", gain, "gain_pct", pct);
	droute_json(c, o);
	return o;
}

static json_t *routes_json(const struct ctrl *c)
{
	json_t *cands = json_array();

	for (int i = 0; i < NODE_MAX; i++) {
		const struct node *n = &c->nodes.n[i];
		if (!n->used)
			continue;
		json_t *o = json_pack("{s:s}", "name", n->conf.name);
		measure_json(c, i, o);
		json_object_set_new(o, "explain", json_string(n->score.why));
		json_object_set_new(o, "prediction", ml_ctl_prediction_json(c, i));
		json_array_append_new(cands, o);
	}
	/* The client serves one game server; the list keeps room for more. */
	json_t *route = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "game_server",
				  str_or_null(dplink_game_server(c->dp)), "active",
				  str_or_null(slot_name(c, c->fo.active)), "backup",
				  str_or_null(slot_name(c, c->fo.backup)), "why", why_json(c), "direct",
				  direct_json(c), "candidates", cands);
	return json_pack("{s:s,s:o,s:b,s:[o]}", "strategy", c->sel.name, "ml", ml_ctl_routes_json(c),
			 "dataplane", dplink_connected(c->dp), "routes", route);
}

/* ---- handlers ------------------------------------------------------------------- */

static double uptime_s(const struct ctrl *c)
{
	return (double)(ls_now_us() - c->started_us) / 1e6;
}

static enum ls_rc h_health(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	bool up = dplink_connected(c->dp);

	(void)req;
	rep->status = up ? 200 : 503;
	rep->json = json_pack("{s:s,s:s,s:f,s:b}", "status", up ? "ok" : "not_ready", "version",
			      LS_VERSION, "uptime_s", uptime_s(c), "dataplane", up);
	return LS_RC_OK;
}

static enum ls_rc h_status(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	unsigned count[4] = { 0 }, total = 0;
	enum icmp_state st;

	(void)req;
	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used) {
			count[c->nodes.n[i].report.state]++;
			total++;
		}
	rep->json = json_pack(
		"{s:s,s:f,s:s,s:{s:b,s:s},s:o,s:o,s:o,s:{s:i,s:i,s:i,s:i,s:i},s:I,s:o,s:o}", "version",
		LS_VERSION, "uptime_s", uptime_s(c), "strategy", c->sel.name, "dataplane", "connected",
		dplink_connected(c->dp), "socket", c->conf.client_socket, "game_server",
		str_or_null(dplink_game_server(c->dp)), "active", str_or_null(slot_name(c, c->fo.active)),
		"backup", str_or_null(slot_name(c, c->fo.backup)), "nodes", "total", total, "healthy",
		count[HEALTH_HEALTHY], "degraded", count[HEALTH_DEGRADED], "down", count[HEALTH_DOWN],
		"unknown", count[HEALTH_UNKNOWN], "switches", (json_int_t)c->ctr.switches, "last_switch",
		last_switch_json(c), "direct_rtt_ms", ms_or_null(icmp_rtt_us(c->icmp, &st)));
	json_object_set_new(rep->json, "game", game_detect_json(c->games));
	json_object_set_new(rep->json, "warp", warp_json(c->warp));
	return LS_RC_OK;
}

/* POST /warp/compare: the user asks for a comparison with and without WARP. */
static enum ls_rc h_warp_compare(void *ctx, const struct ls_httpd_req *req,
				 struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	enum ls_rc rc;

	(void)req;
	rc = warp_compare(c->warp, rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK)
		return rc;
	rep->status = 202;
	rep->json = json_pack("{s:o}", "warp", warp_json(c->warp));
	return LS_RC_OK;
}

static enum ls_rc h_routes(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = routes_json(ctx);
	return LS_RC_OK;
}

static enum ls_rc h_proxies(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	json_t *arr = json_array();

	(void)req;
	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used)
			json_array_append_new(arr, node_json(c, i));
	rep->json = json_pack("{s:o}", "proxies", arr);
	return LS_RC_OK;
}

static int param_slot(const struct ctrl *c, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	const char *name = req->nparams ? req->params[0].value : "";
	int slot = node_find(&c->nodes, name);

	if (slot < 0)
		snprintf(rep->msg, sizeof(rep->msg), "no node named '%.40s' (GET /proxies lists them)",
			 name);
	return slot;
}

static enum ls_rc h_proxy(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	int slot = param_slot(c, req, rep);

	if (slot < 0)
		return LS_RC_NOT_FOUND;
	rep->json = node_json(c, slot);
	return LS_RC_OK;
}

static enum ls_rc h_proxy_add(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	json_t *b = req->body;
	const char *name = json_string_value(json_object_get(b, "name"));
	const char *addr = json_string_value(json_object_get(b, "address"));
	const char *key = json_string_value(json_object_get(b, "key"));
	const char *region = json_string_value(json_object_get(b, "region"));
	json_t *jsid = json_object_get(b, "session_id"), *jprobe = json_object_get(b, "probe_ms");
	struct node_conf nc;
	enum ls_rc rc;
	int slot;

	node_conf_init(&nc);
	nc.source = NODE_SRC_API;
	if (!name || !node_name_valid(name)) {
		snprintf(rep->msg, sizeof(rep->msg), "name: 1..31 characters of A-Z a-z 0-9 . _ -");
		return LS_RC_INVALID;
	}
	snprintf(nc.name, sizeof(nc.name), "%s", name);
	if (!addr || strlen(addr) >= sizeof(nc.address)) {
		snprintf(rep->msg, sizeof(rep->msg), "address: HOST:PORT of the node's tunnel");
		return LS_RC_INVALID;
	}
	snprintf(nc.address, sizeof(nc.address), "%s", addr);
	if (jsid) {
		json_int_t sid = json_integer_value(jsid);
		if (sid < 1 || sid > 0xffffffffll) {
			snprintf(rep->msg, sizeof(rep->msg), "session_id: an integer in 1..4294967295");
			return LS_RC_INVALID;
		}
		nc.session_id = (uint32_t)sid;
	}
	if (key) {
		if (ls_hex_decode(key, nc.key.b, NODE_KEY_LEN) < 0) {
			snprintf(rep->msg, sizeof(rep->msg), "key: %d hex digits", 2 * NODE_KEY_LEN);
			return LS_RC_INVALID;
		}
		nc.key.set = true;
	}
	if (jprobe) {
		json_int_t p = json_integer_value(jprobe);
		if (p < NODE_PROBE_MS_MIN || p > NODE_PROBE_MS_MAX) {
			snprintf(rep->msg, sizeof(rep->msg), "probe_ms: an integer in %d..%d",
				 NODE_PROBE_MS_MIN, NODE_PROBE_MS_MAX);
			return LS_RC_INVALID;
		}
		nc.probe_ms = (uint32_t)p;
	}
	if (region) {
		if (strlen(region) >= sizeof(nc.facts.region)) {
			snprintf(rep->msg, sizeof(rep->msg), "region: at most %zu characters",
				 sizeof(nc.facts.region) - 1);
			return LS_RC_INVALID;
		}
		snprintf(nc.facts.region, sizeof(nc.facts.region), "%s", region);
	}
	if (ctrl_conf_node_check(&nc, rep->msg, sizeof(rep->msg)) < 0)
		return LS_RC_INVALID;
	if (!dplink_connected(c->dp)) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "no client dataplane connected at %s: a node is added with its route",
			 c->conf.client_socket);
		return LS_RC_NOT_READY;
	}
	rc = ctrl_node_add(c, &nc, rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK)
		return rc;
	slot = node_find(&c->nodes, nc.name);
	rc = dplink_add_now(c->dp, slot, rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK) {
		node_remove(&c->nodes, slot);
		return rc;
	}
	ls_info("node %s: added through the API (%s)", nc.name, nc.address);
	ctrl_publish(c, "node", json_pack("{s:s,s:s}", "name", nc.name, "change", "added"));
	rep->status = 201;
	rep->json = node_json(c, slot);
	return LS_RC_OK;
}

static enum ls_rc h_proxy_del(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	int slot = param_slot(c, req, rep);
	char name[NODE_NAME_MAX];
	enum ls_rc rc;

	if (slot < 0)
		return LS_RC_NOT_FOUND;
	snprintf(name, sizeof(name), "%s", c->nodes.n[slot].conf.name);
	if (slot == c->fo.active) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "%s carries the active route: fail over first (POST /failover)", name);
		return LS_RC_CONFLICT;
	}
	rc = dplink_del_now(c->dp, name, rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK && rc != LS_RC_NOT_FOUND)
		return rc;
	failover_forget(&c->fo, slot);
	select_forget(&c->sel_state, slot);
	node_remove(&c->nodes, slot);
	ls_info("node %s: removed through the API", name);
	ctrl_publish(c, "node", json_pack("{s:s,s:s}", "name", name, "change", "removed"));
	rep->json = json_pack("{s:s}", "removed", name);
	ctrl_round(c);
	return LS_RC_OK;
}

/* lsctl trust NAME: accept the certificate the node's agent offered in place of the
 * one pinned at first use. */
static enum ls_rc h_proxy_trust(void *ctx, const struct ls_httpd_req *req,
				struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	int slot = param_slot(c, req, rep);
	enum ls_rc rc;

	if (slot < 0)
		return LS_RC_NOT_FOUND;
	rc = agents_trust(c, c->nodes.n[slot].conf.name, rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK)
		return rc;
	rep->json = node_json(c, slot);
	return LS_RC_OK;
}

static enum ls_rc h_failover(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	const char *to = json_string_value(json_object_get(req->body, "to"));
	const char *names[NODE_MAX];
	struct select_score s[NODE_MAX];
	struct failover_action a;
	unsigned before = history_len(&c->hist);
	int target = -1;
	enum ls_rc rc;

	if (!dplink_connected(c->dp)) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "no client dataplane connected at %s (is lightspeed-client running?)",
			 c->conf.client_socket);
		return LS_RC_NOT_READY;
	}
	if (to) {
		target = node_find(&c->nodes, to);
		if (target < 0) {
			snprintf(rep->msg, sizeof(rep->msg), "no node named '%.40s' (GET /proxies lists them)",
				 to);
			return LS_RC_NOT_FOUND;
		}
	}
	/* Decide on fresh measurements, not on the last tick's. */
	ctrl_round(c);
	ctrl_names(c, names);
	ctrl_scores(c, s);
	rc = failover_manual(&c->fo, &c->decision, s, names, NODE_MAX, target, ls_now_us(), &a,
			     rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK)
		return rc;
	rc = dplink_switch_now(c->dp, a.slot, rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK)
		return rc;
	if (history_len(&c->hist) == before) {
		snprintf(rep->msg, sizeof(rep->msg), "the dataplane took the route but no switch was seen");
		return LS_RC_INTERNAL;
	}
	rep->json = api_switch_json(history_at(&c->hist, history_len(&c->hist) - 1));
	return LS_RC_OK;
}

static enum ls_rc h_failovers(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	json_t *arr = json_array();

	(void)req;
	for (unsigned i = history_len(&c->hist); i-- > 0;)
		json_array_append_new(arr, api_switch_json(history_at(&c->hist, i)));
	rep->json = json_pack("{s:o}", "failovers", arr);
	return LS_RC_OK;
}

/* {k, m, block_ms[, spread]} from the dataplane's view, each an integer >= 0. */
/* POST /fec {"fec":SETTING}: the client's FEC for both directions, at once. */
static enum ls_rc h_fec(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	const char *fec = json_string_value(json_object_get(req->body, "fec"));
	enum ls_rc rc = dplink_set_fec_now(c->dp, fec, rep->msg, sizeof(rep->msg));

	if (rc != LS_RC_OK)
		return rc;
	rep->json = json_pack("{s:s}", "fec", fec);
	return LS_RC_OK;
}

static json_t *fec_dir(json_t *v)
{
	static const char *const keys[] = { "k", "m", "block_ms", "spread" };
	json_t *o;

	if (!json_is_object(v))
		return json_null();
	o = json_object();
	for (size_t i = 0; i < LS_ARRAY_LEN(keys); i++) {
		json_t *x = json_object_get(v, keys[i]);
		if (json_is_integer(x) && json_integer_value(x) >= 0)
			json_object_set(o, keys[i], x);
		else if (i < 3) {
			json_decref(o);
			return json_null();
		}
	}
	return o;
}

static json_int_t fec_count(json_t *stats, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(json_object_get(stats, "fec"), key));

	return v > 0 ? v : 0;
}

static enum ls_rc h_stats(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	struct ls_httpd_stats hs = { 0 };
	json_t *st = dplink_stats(c->dp), *status = dplink_status(c->dp);
	const char *fec = json_string_value(json_object_get(status, "fec"));

	(void)req;
	if (c->api)
		ls_httpd_get_stats(c->api, &hs);
	rep->json = json_pack(
		"{s:{s:f,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I},s:O*,s:{s:s,s:o,s:I,s:I,s:I}}",
		"controller", "uptime_s", uptime_s(c), "switches", (json_int_t)c->ctr.switches, "samples",
		(json_int_t)c->ctr.samples, "dataplane_connects", (json_int_t)c->ctr.dataplane_connects,
		"api", "requests", (json_int_t)hs.requests, "errors", (json_int_t)hs.errors,
		"auth_failures", (json_int_t)hs.auth_failures, "streams", (json_int_t)hs.streams,
		"events_sent", (json_int_t)hs.events_sent, "events_dropped", (json_int_t)hs.events_dropped,
		"dataplane", st, "fec", "setting", fec ? fec : "off", "up",
		fec_dir(json_object_get(status, "fec_up")), "rebuilt", fec_count(st, "recovered"),
		"lost_blocks", fec_count(st, "lost_blocks"), "parity_sent", fec_count(st, "parity_sent"));
	if (!st)
		json_object_set_new(rep->json, "dataplane", json_null());
	return LS_RC_OK;
}

static void prom_node(struct ls_buf *b, const char *metric, const char *name, double v)
{
	struct ls_buf l;

	ls_buf_init(&l);
	ls_prom_label(&l, "node", name);
	ls_prom_f64(b, metric, l.data, v);
	ls_buf_free(&l);
}

static enum ls_rc h_metrics(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	struct ls_buf b;
	enum icmp_state st;
	int64_t direct = icmp_rtt_us(c->icmp, &st);
	unsigned by_reason[SW__COUNT] = { 0 };

	(void)req;
	ls_buf_init(&b);
	ls_prom_header(&b, "lightspeed_controller_dataplane_connected", "gauge",
		       "1 while the client dataplane's steering socket is connected.");
	ls_prom_u64(&b, "lightspeed_controller_dataplane_connected", NULL, dplink_connected(c->dp));
	ls_prom_header(&b, "lightspeed_controller_nodes", "gauge", "Nodes in the table.");
	ls_prom_u64(&b, "lightspeed_controller_nodes", NULL, node_count(&c->nodes));
	ls_prom_header(&b, "lightspeed_controller_samples_total", "counter", "RTT samples taken in.");
	ls_prom_u64(&b, "lightspeed_controller_samples_total", NULL, c->ctr.samples);
	for (unsigned i = 0; i < history_len(&c->hist); i++)
		by_reason[history_at(&c->hist, i)->reason]++;
	ls_prom_header(&b, "lightspeed_controller_switches_recorded", "gauge",
		       "Switches in the kept history, by reason.");
	for (int r = 0; r < SW__COUNT; r++) {
		struct ls_buf l;
		ls_buf_init(&l);
		ls_prom_label(&l, "reason", failover_reason_name((enum switch_reason)r));
		ls_prom_u64(&b, "lightspeed_controller_switches_recorded", l.data, by_reason[r]);
		ls_buf_free(&l);
	}
	ls_prom_header(&b, "lightspeed_controller_switches_total", "counter", "Switches since start.");
	ls_prom_u64(&b, "lightspeed_controller_switches_total", NULL, c->ctr.switches);
	ls_prom_header(&b, "lightspeed_controller_node_up", "gauge",
		       "1 for a node that is healthy or degraded.");
	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used)
			prom_node(&b, "lightspeed_controller_node_up", c->nodes.n[i].conf.name,
				  c->nodes.n[i].report.state == HEALTH_HEALTHY ||
					  c->nodes.n[i].report.state == HEALTH_DEGRADED);
	ls_prom_header(&b, "lightspeed_controller_node_active", "gauge", "1 for the active node.");
	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used)
			prom_node(&b, "lightspeed_controller_node_active", c->nodes.n[i].conf.name,
				  i == c->fo.active);
	ls_prom_header(&b, "lightspeed_controller_node_rtt_p50_seconds", "gauge",
		       "Median path RTT over the window.");
	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used && c->nodes.n[i].report.rtt_p50_us >= 0)
			prom_node(&b, "lightspeed_controller_node_rtt_p50_seconds", c->nodes.n[i].conf.name,
				  c->nodes.n[i].report.rtt_p50_us / 1e6);
	ls_prom_header(&b, "lightspeed_controller_node_rtt_p95_seconds", "gauge",
		       "95th percentile path RTT over the window.");
	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used && c->nodes.n[i].report.rtt_p95_us >= 0)
			prom_node(&b, "lightspeed_controller_node_rtt_p95_seconds", c->nodes.n[i].conf.name,
				  c->nodes.n[i].report.rtt_p95_us / 1e6);
	if (direct >= 0) {
		ls_prom_header(&b, "lightspeed_controller_direct_rtt_seconds", "gauge",
			       "RTT of the direct path to the game server (ICMP echo).");
		ls_prom_f64(&b, "lightspeed_controller_direct_rtt_seconds", NULL, direct / 1e6);
	}
	if (b.oom) {
		ls_buf_free(&b);
		snprintf(rep->msg, sizeof(rep->msg), "out of memory");
		return LS_RC_INTERNAL;
	}
	rep->text = b.data ? b.data : strdup("");
	rep->text_len = b.len;
	rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return LS_RC_OK;
}

static enum ls_rc h_events(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = routes_json(ctx);
	return LS_RC_OK;
}

static const struct ls_httpd_key add_keys[] = {
	{ "name", LS_HTTPD_STRING, true },      { "address", LS_HTTPD_STRING, true },
	{ "session_id", LS_HTTPD_INT, false },  { "key", LS_HTTPD_STRING, false },
	{ "probe_ms", LS_HTTPD_INT, false },    { "region", LS_HTTPD_STRING, false },
	{ NULL, 0, false },
};
static const struct ls_httpd_key fec_keys[] = {
	{ "fec", LS_HTTPD_STRING, true },
	{ NULL, 0, false },
};
static const struct ls_httpd_key failover_keys[] = {
	{ "to", LS_HTTPD_STRING, false },
	{ NULL, 0, false },
};

static const struct ls_httpd_route api_routes[] = {
	{ "GET", "/health", h_health, NULL, NULL, false },
	{ "GET", "/status", h_status, NULL, NULL, false },
	{ "GET", "/routes", h_routes, NULL, NULL, false },
	{ "GET", "/proxies", h_proxies, NULL, NULL, false },
	{ "POST", "/proxies", h_proxy_add, add_keys, NULL, false },
	{ "GET", "/proxies/{name}", h_proxy, NULL, NULL, false },
	{ "DELETE", "/proxies/{name}", h_proxy_del, NULL, NULL, false },
	{ "POST", "/proxies/{name}/trust", h_proxy_trust, NULL, NULL, false },
	{ "POST", "/failover", h_failover, failover_keys, NULL, false },
	{ "GET", "/failovers", h_failovers, NULL, NULL, false },
	{ "GET", "/stats", h_stats, NULL, NULL, false },
	{ "POST", "/fec", h_fec, fec_keys, NULL, false },
	{ "GET", "/events", h_events, NULL, NULL, true },
	{ "GET", "/metrics", h_metrics, NULL, NULL, false },
	{ "POST", "/warp/compare", h_warp_compare, NULL, NULL, false },
	{ "GET", "/model", ml_api_model, NULL, NULL, false },
	{ "POST", "/model/train", ml_api_train, ml_api_train_keys, NULL, false },
	{ "POST", "/route/strategy", ml_api_strategy, ml_api_strategy_keys, NULL, false },
	{ "GET", "/samples", ml_api_samples, NULL, NULL, false },
	{ "GET", "/paths", paths_api_get, NULL, NULL, false },
	{ "POST", "/route/mode", paths_api_mode, paths_api_mode_keys, NULL, false },
	{ NULL, NULL, NULL, NULL, NULL, false },
};

/* The table itself, for the unit suite. */
const struct ls_httpd_route *api_route_table(void);
const struct ls_httpd_route *api_route_table(void)
{
	return api_routes;
}

bool api_streams(const struct ctrl *c)
{
	return (c->api && ls_httpd_streams(c->api)) || (c->dash && ls_httpd_streams(c->dash));
}

void ctrl_publish(struct ctrl *c, const char *event, json_t *data)
{
	if (c->dash && ls_httpd_streams(c->dash))
		ls_httpd_publish(c->dash, event, json_incref(data));
	if (c->api && ls_httpd_streams(c->api))
		ls_httpd_publish(c->api, event, json_incref(data));
	json_decref(data);
}

/* Where the dashboard's files are: the configured root, the installed ones, or the
 * web/ folder of the source tree this binary was built in (build/bin/..). */
static bool web_root_find(const struct ctrl *c, char *out, size_t len)
{
	char exe[1024], try[PATH_MAX + 64];
	ssize_t n;

	if (c->conf.web_root[0]) {
		snprintf(out, len, "%s", c->conf.web_root);
		return true;
	}
#ifdef LS_WEB_DIR
	snprintf(try, sizeof(try), "%s/index.html", LS_WEB_DIR);
	if (access(try, R_OK) == 0) {
		snprintf(out, len, "%s", LS_WEB_DIR);
		return true;
	}
#endif
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash || len < sizeof(exe) + 32)
		return false;
	*slash = '\0';
	static const char *const rel[] = { "/../../web", "/../share/lightspeed/web" };
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(try, sizeof(try), "%s%s/index.html", exe, rel[i]);
		if (access(try, R_OK) == 0) {
			snprintf(out, len, "%s%s", exe, rel[i]);
			return true;
		}
	}
	return false;
}

/* One server with the API's routes (and static files from root, when set), on the
 * controller's loop. NULL with a message in err. */
static struct ls_httpd *server_open(struct ctrl *c, const char *name, const char *listen,
				    const char *root, char *err, size_t errlen)
{
	struct ls_httpd_conf hc = {
		.name = name,
		.listen = listen,
		.token = c->conf.api_token[0] ? c->conf.api_token : NULL,
		.routes = api_routes,
		.ctx = c,
		.static_root = root,
	};
	struct ls_httpd *h = ls_httpd_open(&hc, err, errlen);

	if (h && ls_httpd_attach_uv(h, c->loop) < 0) {
		snprintf(err, errlen, "cannot drive the HTTP server from the loop");
		ls_httpd_close(h);
		h = NULL;
	}
	return h;
}

/* The dashboard: a second server with the API's routes (the page calls them on its own
 * origin: no cross-origin requests) and the files of web/. It is a convenience: when
 * it cannot start, the controller says why and runs without it. */
static void dash_open(struct ctrl *c)
{
	char root[PATH_MAX + 64], err[512];

	if (strcmp(c->conf.dashboard, "off") == 0)
		return;
	if (!web_root_find(c, root, sizeof(root))) {
		ls_warn("dashboard off: its files were not found (set --web-root DIR or web_root)");
		return;
	}
	c->dash = server_open(c, "dashboard", c->conf.dashboard, root, err, sizeof(err));
	if (!c->dash)
		ls_warn("dashboard off: %s", err);
	else
		ls_info("dashboard: http://%s/ (files from %s)", c->conf.dashboard, root);
}

int api_open(struct ctrl *c, char *err, size_t errlen)
{
	c->api = server_open(c, "REST API", c->conf.api, NULL, err, errlen);
	if (!c->api)
		return -1;
	dash_open(c);
	return 0;
}

void api_close(struct ctrl *c)
{
	if (c->api)
		ls_httpd_close(c->api);
	c->api = NULL;
	if (c->dash)
		ls_httpd_close(c->dash);
	c->dash = NULL;
}
