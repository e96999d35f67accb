/* lightspeed-client: the steering commands and events (docs/protocol.md 3.2). Control
 * path only: this is where JSON is built, never on the packet path. */
#include "client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "prom.h"
#include "util.h"

/* ---- JSON views of the state ------------------------------------------------- */

static json_t *addr_json(const struct sockaddr_in *a)
{
	char buf[LS_ADDRSTRLEN];

	return json_string(ls_addr_fmt(a, buf));
}

/* Measurements not taken yet are null, not a misleading 0. */
static json_t *opt_int(bool have, json_int_t v)
{
	return have ? json_integer(v) : json_null();
}

static json_t *opt_ratio(double v)
{
	return v >= 0 ? json_real(v) : json_null();
}

static json_t *measure_json(const struct client_route *r, json_t *o)
{
	json_object_set_new(o, "jitter_us", opt_int(r->jitter_any, r->jitter16 >> 4));
	json_object_set_new(o, "loss_up", opt_ratio(r->loss_up));
	json_object_set_new(o, "loss_down", opt_ratio(r->loss_down));
	return o;
}

/* What status and stats show without an active route: nothing measured. */
static struct client_route no_route;

static const struct client_route *shown(const struct client *c)
{
	return c->cur ? c->cur : &no_route;
}

static json_t *status_json(const struct client *c)
{
	const struct client_route *r = shown(c);
	json_t *o = json_object();
	char fec[32];

	json_object_set_new(o, "route", c->cur ? json_string(r->name) : json_null());
	json_object_set_new(o, "proxy", c->cur ? addr_json(&r->proxy) : json_null());
	json_object_set_new(o, "game_server", addr_json(&c->game_server));
	json_object_set_new(o, "local", addr_json(&c->listen));
	json_object_set_new(o, "session_id", opt_int(r->keyed, r->session_id));
	json_object_set_new(o, "auth", json_boolean(r->keyed));
	json_object_set_new(o, "path", json_string(client_path_name(r->path)));
	json_object_set_new(o, "rtt_us", opt_int(r->srtt_us >= 0, r->srtt_us));
	measure_json(r, o);
	json_object_set_new(o, "flows", json_integer(c->n_flows));
	json_object_set_new(o, "keepalive_ms", json_integer(c->conf.keepalive_ms));
	dp_fec_fmt(&c->fec.set, fec, sizeof(fec));
	json_object_set_new(o, "fec", json_string(fec));
	json_object_set_new(o, "fec_up", dp_fec_params_json(&c->fec.up));
	json_object_set_new(o, "mode", json_string(c->capm ? "capture" : "redirect"));
	json_object_set_new(o, "capture", client_capture_mode_json(c));
	return o;
}

/* One table for the counters, so JSON and Prometheus cannot disagree. */
static const struct {
	const char *name;
	size_t offset;
	const char *help;
} counter_table[] = {
#define C(n, h) { #n, offsetof(struct client_counters, n), h }
	C(game_rx_packets, "Datagrams received from game sockets."),
	C(game_rx_bytes, "Bytes received from game sockets."),
	C(tunnel_tx_packets, "Datagrams sent into the tunnel."),
	C(tunnel_tx_bytes, "Bytes sent into the tunnel."),
	C(tunnel_rx_packets, "Datagrams received from the tunnel."),
	C(tunnel_rx_bytes, "Bytes received from the tunnel."),
	C(delivered_packets, "Datagrams delivered to game sockets."),
	C(delivered_bytes, "Bytes delivered to game sockets."),
	C(keepalives_sent, "Keepalive requests sent."),
	C(keepalive_replies, "Keepalive replies matched to a request."),
	C(route_changes, "Routes set by steering."),
#undef C
};

static uint64_t counter(const struct client *c, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)&c->ctr + counter_table[i].offset, sizeof(v));
	return v;
}

static json_t *stats_json(const struct client *c)
{
	const struct ls_hist *h = &shown(c)->rtt;
	json_t *o = json_object(), *drops = json_object();
	struct dp_fec_counters fec;

	for (size_t i = 0; i < LS_ARRAY_LEN(counter_table); i++)
		json_object_set_new(o, counter_table[i].name, json_integer((json_int_t)counter(c, i)));
	json_object_set_new(o, "rtt",
			    json_pack("{s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)h->count,
				      "min_us", (json_int_t)(h->count ? h->min : 0),
				      "p50_us", (json_int_t)ls_hist_quantile(h, 0.5),
				      "p99_us", (json_int_t)ls_hist_quantile(h, 0.99),
				      "max_us", (json_int_t)(h->count ? h->max : 0)));
	for (int i = 0; i < LS_DROP__COUNT; i++)
		if (ls_drop_counted_by((enum ls_drop)i, LS_DROP_CLIENT))
			json_object_set_new(drops, ls_drop_names[i],
					    json_integer((json_int_t)c->ctr.drops[i]));
	json_object_set_new(o, "drops", drops);
	client_fec_counters(c, &fec);
	json_object_set_new(o, "fec", dp_fec_counters_json(&fec));
	/* Where lost events are counted (docs/protocol.md 3). */
	json_object_set_new(o, "steering", ls_steer_stats_json(c->steer));
	return o;
}

/* The Prometheus text (malloc'd), or NULL when out of memory. */
static char *stats_prometheus(const struct client *c)
{
	const struct client_route *r = shown(c);
	struct dp_fec_counters fec;
	struct ls_buf b;
	char name[96];

	ls_buf_init(&b);
	for (size_t i = 0; i < LS_ARRAY_LEN(counter_table); i++) {
		snprintf(name, sizeof(name), "lightspeed_client_%s_total", counter_table[i].name);
		ls_prom_header(&b, name, "counter", counter_table[i].help);
		ls_prom_u64(&b, name, NULL, counter(c, i));
	}
	ls_prom_header(&b, "lightspeed_client_drops_total", "counter",
		       "Datagrams dropped, by reason.");
	for (int i = 0; i < LS_DROP__COUNT; i++) {
		struct ls_buf label;
		if (!ls_drop_counted_by((enum ls_drop)i, LS_DROP_CLIENT))
			continue;
		ls_buf_init(&label);
		ls_prom_label(&label, "reason", ls_drop_names[i]);
		ls_prom_u64(&b, "lightspeed_client_drops_total", label.data, c->ctr.drops[i]);
		ls_buf_free(&label);
	}
	client_fec_counters(c, &fec);
	dp_fec_counters_prom(&b, "lightspeed_client", &fec);
	ls_prom_header(&b, "lightspeed_client_fec_up_data_packets", "gauge",
		       "Data packets per FEC block towards the proxy (0: FEC off).");
	ls_prom_u64(&b, "lightspeed_client_fec_up_data_packets", NULL, c->fec.up.k);
	ls_prom_header(&b, "lightspeed_client_fec_up_parity_packets", "gauge",
		       "Parity packets per full FEC block towards the proxy.");
	ls_prom_u64(&b, "lightspeed_client_fec_up_parity_packets", NULL, c->fec.up.m);
	ls_prom_hist(&b, "lightspeed_client_rtt_seconds",
		     "Keepalive round-trip time on the current route.", &r->rtt);
	ls_prom_header(&b, "lightspeed_client_path_up", "gauge",
		       "1 when the current route's proxy answers.");
	ls_prom_u64(&b, "lightspeed_client_path_up", NULL, r->path == CL_PATH_UP);
	ls_steer_stats_prom(c->steer, &b, "lightspeed_client");
	ls_prom_header(&b, "lightspeed_client_flows", "gauge", "Game sockets in the flow table.");
	ls_prom_u64(&b, "lightspeed_client_flows", NULL, c->n_flows);
	/* Measurements not taken yet are left out rather than reported as zero. */
	if (r->jitter_any) {
		ls_prom_header(&b, "lightspeed_client_jitter_seconds", "gauge",
			       "Interarrival jitter from the proxy (RFC 3550).");
		ls_prom_f64(&b, "lightspeed_client_jitter_seconds", NULL,
			    (double)(r->jitter16 >> 4) / 1e6);
	}
	if (r->loss_up >= 0) {
		ls_prom_header(&b, "lightspeed_client_loss_up_ratio", "gauge",
			       "Smoothed loss towards the proxy.");
		ls_prom_f64(&b, "lightspeed_client_loss_up_ratio", NULL, r->loss_up);
	}
	if (r->loss_down >= 0) {
		ls_prom_header(&b, "lightspeed_client_loss_down_ratio", "gauge",
			       "Smoothed loss from the proxy.");
		ls_prom_f64(&b, "lightspeed_client_loss_down_ratio", NULL, r->loss_down);
	}
	if (b.oom) {
		ls_buf_free(&b);
		return NULL;
	}
	return b.data ? b.data : strdup("");
}

/* ---- commands ---------------------------------------------------------------- */

static enum ls_rc cmd_status(void *ctx, struct ls_steer_call *call)
{
	call->result = status_json(ctx);
	return LS_RC_OK;
}

static enum ls_rc cmd_stats(void *ctx, struct ls_steer_call *call)
{
	int text = ls_steer_text_format(call);

	if (text < 0)
		return LS_RC_INVALID;
	if (text)
		return ls_steer_answer_text(call, stats_prometheus(ctx));
	call->result = stats_json(ctx);
	return LS_RC_OK;
}

/* An "ip:port" argument the client can send to. */
static enum ls_rc addr_arg(const struct client *c, struct ls_steer_call *call, const char *name,
			   struct sockaddr_in *out)
{
	const char *s = json_string_value(json_object_get(call->req, name));
	char err[128];
	const char *bad;

	/* Numeric only: a name lookup would stall the packet loop. */
	if (ls_hostport_parse(s, out, false, false, err, sizeof(err)) < 0)
		return ls_steer_fail(call, LS_RC_INVALID, "%s: %s", name, err);
	bad = client_addr_unusable(out);
	if (bad)
		return ls_steer_fail(call, LS_RC_INVALID, "%s: '%.32s' is %s", name, s, bad);
	if (out->sin_port == c->listen.sin_port &&
	    (out->sin_addr.s_addr == c->listen.sin_addr.s_addr ||
	     (c->listen.sin_addr.s_addr == htonl(INADDR_ANY) &&
	      (ntohl(out->sin_addr.s_addr) >> 24) == 127)))
		return ls_steer_fail(call, LS_RC_INVALID,
				     "%s: '%.32s' is the client's own local address", name, s);
	return LS_RC_OK;
}

/* Measurements of a route, as the routes command and events show them. */
static json_t *route_json(const struct client *c, const struct client_route *r, uint64_t now)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "proxy", addr_json(&r->proxy));
	json_object_set_new(o, "session_id", opt_int(r->keyed, r->session_id));
	json_object_set_new(o, "auth", json_boolean(r->keyed));
	json_object_set_new(o, "probe_ms", json_integer(r->probe_ms));
	json_object_set_new(o, "active", json_boolean(r == c->cur));
	json_object_set_new(o, "backup", json_boolean(r == c->backup));
	json_object_set_new(o, "state", json_string(client_route_state_name(r->path)));
	json_object_set_new(o, "rtt_us", opt_int(r->srtt_us >= 0, r->srtt_us));
	json_object_set_new(o, "rtt_min_us", opt_int(r->rtt_min_us >= 0, r->rtt_min_us));
	measure_json(r, o);
	json_object_set_new(o, "missed", json_integer(r->missed));
	json_object_set_new(o, "keepalives_sent", json_integer((json_int_t)r->keepalives_sent));
	json_object_set_new(o, "replies", json_integer((json_int_t)r->replies));
	json_object_set_new(o, "last_rx_ms",
			    opt_int(r->last_rx_us != 0, (json_int_t)((now - r->last_rx_us) / 1000)));
	json_object_set_new(o, "flips", json_integer(r->flips));
	return o;
}

static json_t *name_or_null(const struct client_route *r)
{
	return r ? json_string(r->name) : json_null();
}

static json_t *routes_json(const struct client *c)
{
	json_t *list = json_array();
	uint64_t now = ls_now_us();

	for (unsigned i = 0; i < CL_MAX_ROUTES; i++)
		if (c->routes[i].used)
			json_array_append_new(list, route_json(c, &c->routes[i], now));
	return json_pack("{s:o,s:o,s:o}", "active", name_or_null(c->cur), "backup",
			 name_or_null(c->backup), "routes", list);
}

/* session_id + key: both or neither; into *sid and key (NULL for neither). */
static enum ls_rc session_args(struct ls_steer_call *call, uint32_t *sid, uint8_t *key,
			       const uint8_t **keyp)
{
	/* null reads as absent, so that a status's session_id can be handed back. */
	json_t *jsid = json_object_get(call->req, "session_id");
	const char *key_hex = json_string_value(json_object_get(call->req, "key"));

	if (json_is_null(jsid))
		jsid = NULL;
	if (!jsid != !key_hex)
		return ls_steer_fail(call, LS_RC_INVALID,
				     "session_id and key go together (both or neither)");
	if (key_hex && ls_hex_decode(key_hex, key, LS_KEY_LEN) < 0)
		return ls_steer_fail(call, LS_RC_INVALID, "key must be a string of %d hex digits",
				     2 * LS_KEY_LEN);
	*sid = jsid ? (uint32_t)json_integer_value(jsid) : 0;
	*keyp = key_hex ? key : NULL;
	return LS_RC_OK;
}

static enum ls_rc name_arg(struct ls_steer_call *call, const char **name)
{
	*name = json_string_value(json_object_get(call->req, "name"));
	if (!client_route_name_ok(*name))
		return ls_steer_fail(call, LS_RC_INVALID,
				     "name must be 1 to %d characters of A-Z a-z 0-9 . _ -",
				     CL_ROUTE_NAME_MAX);
	return LS_RC_OK;
}

static enum ls_rc cmd_set_route(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	struct sockaddr_in proxy, game;
	bool by_name = json_is_string(json_object_get(call->req, "name"));
	bool has_proxy = json_is_string(json_object_get(call->req, "proxy"));
	bool game_set = json_is_string(json_object_get(call->req, "game_server"));
	uint8_t key[LS_KEY_LEN];
	const uint8_t *keyp;
	uint32_t sid;
	enum ls_rc rc;

	if (by_name == has_proxy)
		return ls_steer_fail(call, LS_RC_INVALID,
				     "give either name (a route of the table) or proxy "
				     "(\"ip:port\", the route \"manual\")");
	if (by_name) {
		const char *name;
		struct client_route *r;

		if (json_object_get(call->req, "session_id") || json_object_get(call->req, "key"))
			return ls_steer_fail(call, LS_RC_INVALID,
					     "session_id and key belong to route_add, not to "
					     "set_route by name");
		if ((rc = name_arg(call, &name)) != LS_RC_OK)
			return rc;
		r = client_table_find(c, name);
		if (!r)
			return ls_steer_fail(call, LS_RC_NOT_FOUND, "no route named '%s'", name);
		if (game_set && (rc = addr_arg(c, call, "game_server", &game)) != LS_RC_OK)
			return rc;
		if (game_set && (game.sin_addr.s_addr != c->game_server.sin_addr.s_addr ||
				 game.sin_port != c->game_server.sin_port)) {
			if (c->up_route)
				client_fec_close_all(c, c->up_route, ls_now_us());
			c->game_server = game;
		}
		client_switch(c, r, "steer", ls_now_us());
		call->result = status_json(c);
		return LS_RC_OK;
	}
	if ((rc = addr_arg(c, call, "proxy", &proxy)) != LS_RC_OK)
		return rc;
	if ((rc = session_args(call, &sid, key, &keyp)) != LS_RC_OK)
		return rc;
	if (game_set && (rc = addr_arg(c, call, "game_server", &game)) != LS_RC_OK)
		return rc;
	client_set_route(c, &proxy, sid, keyp, game_set ? &game : NULL, &rc);
	memset(key, 0, sizeof(key));
	if (rc == LS_RC_CONFLICT)
		return ls_steer_fail(call, rc, "another route already runs this session to this "
				     "proxy: set_route it by name");
	if (rc != LS_RC_OK)
		return ls_steer_fail(call, rc, "%d routes: the table is full (route_del one)",
				     CL_MAX_ROUTES);
	call->result = status_json(c);
	return LS_RC_OK;
}

static enum ls_rc cmd_route_add(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	struct sockaddr_in proxy;
	json_t *jprobe = json_object_get(call->req, "probe_ms");
	uint32_t probe = json_is_integer(jprobe) ? (uint32_t)json_integer_value(jprobe)
						 : CL_PROBE_DEFAULT_MS;
	bool replace = json_is_true(json_object_get(call->req, "replace"));
	struct client_route *r;
	uint8_t key[LS_KEY_LEN];
	const uint8_t *keyp;
	const char *name;
	uint32_t sid;
	enum ls_rc rc;

	if ((rc = name_arg(call, &name)) != LS_RC_OK ||
	    (rc = addr_arg(c, call, "proxy", &proxy)) != LS_RC_OK ||
	    (rc = session_args(call, &sid, key, &keyp)) != LS_RC_OK)
		return rc;
	rc = client_table_add(c, name, &proxy, sid, keyp, probe, replace, &r);
	memset(key, 0, sizeof(key));
	if (rc == LS_RC_EXISTS)
		return ls_steer_fail(call, rc, "a route named '%s' exists (replace:true to change it)",
				     name);
	if (rc == LS_RC_FULL)
		return ls_steer_fail(call, rc, "%d routes: the table is full (route_del one)",
				     CL_MAX_ROUTES);
	if (rc == LS_RC_CONFLICT)
		return ls_steer_fail(call, rc, "route '%s' already runs session %u to this proxy "
				     "(two routes of one session would take its lifetime from "
				     "each other)", r->name, sid);
	call->result = route_json(c, r, ls_now_us());
	return LS_RC_OK;
}

static enum ls_rc cmd_route_del(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	const char *name;
	enum ls_rc rc;

	if ((rc = name_arg(call, &name)) != LS_RC_OK)
		return rc;
	rc = client_table_del(c, name);
	if (rc == LS_RC_NOT_FOUND)
		return ls_steer_fail(call, rc, "no route named '%s'", name);
	if (rc == LS_RC_CONFLICT)
		return ls_steer_fail(call, rc, "'%s' is the active route: set_route another first",
				     name);
	call->result = json_pack("{s:s}", "name", name);
	return LS_RC_OK;
}

static enum ls_rc cmd_routes(void *ctx, struct ls_steer_call *call)
{
	call->result = routes_json(ctx);
	return LS_RC_OK;
}

static enum ls_rc cmd_arm_backup(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	json_t *jn = json_object_get(call->req, "name");
	const char *name = NULL;
	enum ls_rc rc;

	if (!json_is_null(jn) && (rc = name_arg(call, &name)) != LS_RC_OK)
		return rc;
	rc = client_table_arm(c, name);
	if (rc == LS_RC_NOT_FOUND)
		return ls_steer_fail(call, rc, "no route named '%s'", name);
	if (rc == LS_RC_CONFLICT)
		return ls_steer_fail(call, rc, "'%s' is the active route, not a backup", name);
	call->result = json_pack("{s:o}", "backup", name_or_null(c->backup));
	return LS_RC_OK;
}

static enum ls_rc cmd_set_fec(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	struct dp_fec_setting s;
	const char *v = json_string_value(json_object_get(call->req, "fec"));
	char err[160];

	if (dp_fec_parse(v, &s, err, sizeof(err)) < 0)
		return ls_steer_fail(call, LS_RC_INVALID, "fec: %s", err);
	client_fec_set(c, &s);
	/* The proxy hears the new downstream ask now, not an interval later. */
	client_send_keepalive(c, c->cur, ls_now_us());
	ls_info("fec: %s", v);
	call->result = status_json(c);
	return LS_RC_OK;
}

static enum ls_rc cmd_set_game(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	const char *game = json_string_value(json_object_get(call->req, "game"));
	json_t *jpid = json_object_get(call->req, "pid");
	pid_t pid = json_is_integer(jpid) ? (pid_t)json_integer_value(jpid) : 0;
	char msg[256] = "";
	bool applied;
	enum ls_rc rc = client_capture_mode_set_game(c, game, pid, &applied, msg, sizeof(msg));

	if (rc != LS_RC_OK)
		return ls_steer_fail(call, rc, "%s", msg);
	call->result = json_pack("{s:s?,s:b,s:s?,s:o}", "game", game, "applied", applied, "note",
				 msg[0] ? msg : NULL, "capture", client_capture_mode_json(c));
	return LS_RC_OK;
}

static enum ls_rc cmd_capture_route(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	const char *server = json_string_value(json_object_get(call->req, "server"));
	const char *name = json_string_value(json_object_get(call->req, "name"));
	char msg[160];
	enum ls_rc rc = client_capture_mode_assign(c, server, name, msg, sizeof(msg));

	if (rc != LS_RC_OK)
		return ls_steer_fail(call, rc, "%s", msg);
	call->result = client_capture_mode_json(c);
	return LS_RC_OK;
}

/* The commands' definitions are ls_steer_cmd_client (shared/steer_cmd.c). */
static const struct ls_steer_handler client_handlers[] = {
	{ "status", cmd_status },
	{ "stats", cmd_stats },
	{ "set_route", cmd_set_route },
	{ "set_fec", cmd_set_fec },
	{ "route_add", cmd_route_add },
	{ "route_del", cmd_route_del },
	{ "routes", cmd_routes },
	{ "arm_backup", cmd_arm_backup },
	{ "set_game", cmd_set_game },
	{ "capture_route", cmd_capture_route },
	{ NULL, NULL },
};

int client_ctl_open(struct client *c, char *err, size_t errlen)
{
	client_route_init(&no_route, &c->listen, 0, NULL, 0, 0);
	c->steer = ls_steer_open(c->conf.socket, 0660, ls_steer_cmd_client, client_handlers, c,
				 err, errlen);
	return c->steer ? 0 : -1;
}

/* ---- events -------------------------------------------------------------------- */

static bool subscribed(const struct client *c)
{
	return c->steer && ls_steer_has_subscribers(c->steer);
}

static void route_events(struct client *c, struct client_route *r)
{
	bool current = r == c->cur;
	char buf[LS_ADDRSTRLEN];
	bool subs;

	/* Called after every batch: nothing is formatted unless something happened. */
	if (!r->ev_fin && !r->ev_path && !r->n_ev_rtt && !r->ev_life && !r->ev_silent)
		return;
	subs = subscribed(c);
	ls_addr_fmt(&r->proxy, buf);
	if (r->ev_fin)
		ls_warn("route %s: proxy %s sent FIN%s", r->name, buf,
			current ? ": route down, still probing it" : "");
	if (r->ev_silent)
		ls_info("route %s: proxy %s went silent: handshaking (it may have restarted, or "
			"the session been added again)", r->name, buf);
	if (r->ev_life)
		ls_debug("route %s: proxy %s: session %u, lifetime %u began", r->name, buf,
			 r->session_id, r->handshakes);
	if (r->ev_path) {
		if (!current)
			ls_debug("route %s: %s -> %s", r->name, buf, client_path_name(r->path));
		else if (r->path == CL_PATH_DOWN)
			ls_warn("path %s -> down", buf);
		else if (r->path == CL_PATH_DEGRADED)
			ls_warn("path %s -> degraded: keepalives are answered but the game packets "
				"the proxy sends are dropped here (see stats drops)", buf);
		else
			ls_info("path %s -> %s", buf, client_path_name(r->path));
		if (subs && current)
			ls_steer_publish(c->steer, "path",
					 json_pack("{s:s,s:s}", "state", client_path_name(r->path),
						   "proxy", buf));
		const char *st = client_route_state_name(r->path);
		const char *was = client_route_state_name(r->reported);
		if (subs && strcmp(st, was) != 0)
			ls_steer_publish(c->steer, "route_state",
					 json_pack("{s:s,s:s,s:s,s:i}", "name", r->name, "state", st,
						   "previous", was, "missed", (int)r->missed));
		r->reported = r->path;
	}
	for (unsigned i = 0; subs && i < r->n_ev_rtt; i++) {
		if (current)
			ls_steer_publish(c->steer, "rtt",
					 measure_json(r, json_pack("{s:I}", "rtt_us",
								   (json_int_t)r->ev_rtt[i])));
		ls_steer_publish(c->steer, "route_sample",
				 measure_json(r, json_pack("{s:s,s:I}", "name", r->name, "rtt_us",
							   (json_int_t)r->ev_rtt[i])));
	}
	r->ev_fin = false;
	r->ev_path = false;
	r->ev_life = false;
	r->ev_silent = false;
	r->n_ev_rtt = 0;
}

void client_ctl_route_events(struct client *c)
{
	for (unsigned i = 0; i < CL_MAX_ROUTES; i++)
		if (c->routes[i].used)
			route_events(c, &c->routes[i]);
	if (c->gap_ready && c->gap_to) {
		client_ctl_gap_event(c, c->gap_to, c->gap_us);
		c->gap_to = NULL;
		c->gap_ready = false;
	}
}

void client_ctl_route_changed(struct client *c)
{
	const struct client_route *r = c->cur;
	char buf[LS_ADDRSTRLEN];

	if (!r)
		return;
	ls_addr_fmt(&r->proxy, buf);
	if (r->keyed)
		ls_info("route %s: proxy %s, session %u", r->name, buf, r->session_id);
	else
		ls_info("route %s: proxy %s, unauthenticated", r->name, buf);
	if (subscribed(c))
		ls_steer_publish(c->steer, "route",
				 json_pack("{s:s,s:o}", "proxy", buf, "session_id",
					   opt_int(r->keyed, r->session_id)));
}

void client_ctl_switch_event(struct client *c, const struct client_route *from,
			     const struct client_route *to, const char *reason)
{
	if (strcmp(reason, "failover") == 0)
		ls_warn("failover: route %s missed %u keepalives in a row: switched to the armed "
			"backup %s", from ? from->name : "-", from ? from->missed : 0,
			to ? to->name : "-");
	if (subscribed(c))
		ls_steer_publish(c->steer, "switch",
				 json_pack("{s:o,s:o,s:s,s:o}", "from", name_or_null(from), "to",
					   name_or_null(to), "reason", reason, "last_rx_us",
					   opt_int(c->last_delivered_us != 0,
						   (json_int_t)c->last_delivered_us)));
}

void client_ctl_gap_event(struct client *c, const struct client_route *to, uint64_t gap_us)
{
	ls_debug("route %s: first game packet %llu us after the last one before the switch",
		 to->name, (unsigned long long)gap_us);
	if (subscribed(c))
		ls_steer_publish(c->steer, "switch_gap",
				 json_pack("{s:s,s:I}", "to", to->name, "gap_us", (json_int_t)gap_us));
}

void client_ctl_backup_event(struct client *c)
{
	if (subscribed(c))
		ls_steer_publish(c->steer, "backup",
				 json_pack("{s:o}", "name", name_or_null(c->backup)));
}

void client_ctl_counters_event(struct client *c)
{
	if (subscribed(c))
		ls_steer_publish(c->steer, "counters", stats_json(c));
}
