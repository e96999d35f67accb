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

static json_t *measure_json(const struct client_meas *m, json_t *o)
{
	json_object_set_new(o, "jitter_us", opt_int(m->jitter_any, m->jitter16 >> 4));
	json_object_set_new(o, "loss_up", opt_ratio(m->loss_up));
	json_object_set_new(o, "loss_down", opt_ratio(m->loss_down));
	return o;
}

/* What status and stats show without an active route: nothing measured. */
static struct client_route no_route;

static struct client_route *shown(const struct client *c)
{
	return c->cur ? c->cur : &no_route;
}

static json_t *status_json(const struct client *c)
{
	struct client_route *r = shown(c);
	const struct client_meas *m = client_route_view(r);
	json_t *o = json_object();
	char fec[32];

	json_object_set_new(o, "route", c->cur ? json_string(r->name) : json_null());
	json_object_set_new(o, "proxy", c->cur ? addr_json(&r->proxy) : json_null());
	json_object_set_new(o, "game_server", addr_json(&c->game_server));
	json_object_set_new(o, "local", addr_json(&c->listen));
	json_object_set_new(o, "session_id", opt_int(r->keyed, r->session_id));
	json_object_set_new(o, "auth", json_boolean(r->keyed));
	json_object_set_new(o, "path", json_string(client_path_name(m->state)));
	json_object_set_new(o, "rtt_us", opt_int(m->srtt_us >= 0, m->srtt_us));
	measure_json(m, o);
	json_object_set_new(o, "path_mode", json_string(client_mode_name(r->mode)));
	json_object_set_new(o, "path_mode_in_use",
			    json_string(client_mode_name(client_route_mode_now(r))));
	json_object_set_new(o, "data_path", c->cur && r->npaths ? json_string(r->paths[r->data_path].name)
							       : json_null());
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
	C(direct_tx_packets, "Datagrams the direct route sent to game servers."),
	C(direct_tx_bytes, "Bytes the direct route sent to game servers."),
	C(direct_rx_packets, "Datagrams the direct route received from game servers."),
	C(direct_rx_bytes, "Bytes the direct route received from game servers."),
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
	const struct ls_hist *h = &client_route_view(shown(c))->rtt;
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
	const struct client_meas *r = client_route_view(shown(c));
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
	ls_prom_u64(&b, "lightspeed_client_path_up", NULL, r->state == CL_PATH_UP);
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

/* One way's measurements into o. */
static json_t *meas_json(const struct client_meas *m, uint64_t now, json_t *o)
{
	json_object_set_new(o, "state", json_string(client_route_state_name(m->state)));
	json_object_set_new(o, "rtt_us", opt_int(m->srtt_us >= 0, m->srtt_us));
	json_object_set_new(o, "rtt_min_us", opt_int(m->rtt_min_us >= 0, m->rtt_min_us));
	measure_json(m, o);
	json_object_set_new(o, "missed", json_integer(m->missed));
	json_object_set_new(o, "keepalives_sent", json_integer((json_int_t)m->keepalives_sent));
	json_object_set_new(o, "replies", json_integer((json_int_t)m->replies));
	json_object_set_new(o, "last_rx_ms",
			    opt_int(m->last_rx_us != 0, (json_int_t)((now - m->last_rx_us) / 1000)));
	json_object_set_new(o, "flips", json_integer(m->flips));
	return o;
}

static const char *const role_names[] = {
	[LS_ROLE_ONLY] = "only", [LS_ROLE_DATA] = "data", [LS_ROLE_PARITY] = "parity",
	[LS_ROLE_PROBE] = "probe",
};

/* A route's paths (1.9): end to end through each, and each relay's own hop. */
static json_t *paths_json(struct client_route *r, uint64_t now)
{
	json_t *arr = json_array();

	for (unsigned i = 0; i < r->npaths; i++) {
		struct client_path *pa = &r->paths[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(pa->name));
		json_object_set_new(o, "relay", pa->relay ? addr_json(&pa->hop->proxy) : json_null());
		json_object_set_new(o, "grant_id", pa->relay ? json_integer(pa->hop->session_id)
							     : json_null());
		json_object_set_new(o, "next_hop", pa->relay ? addr_json(&pa->next_hop) : json_null());
		json_object_set_new(o, "role", json_string(role_names[pa->role <= LS_ROLE_MAX ? pa->role
											: 0]));
		json_object_set_new(o, "data", json_boolean(i == r->data_path));
		meas_json(client_route_pmeas(r, i), now, o);
		json_object_set_new(o, "sent", json_integer(pa->sent));
		json_object_set_new(o, "received", json_integer((json_int_t)pa->copies));
		json_object_set_new(o, "duplicates", json_integer((json_int_t)pa->duplicates));
		if (pa->relay) {
			json_t *hop = meas_json(&pa->hop->m, now, json_object());
			json_object_set_new(hop, "ready", json_boolean(client_route_ready(pa->hop, now)));
			json_object_set_new(hop, "handshakes", json_integer(pa->hop->handshakes));
			json_object_set_new(o, "hop", hop);
		} else {
			json_object_set_new(o, "hop", json_null());
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

/* Measurements of a route, as the routes command and events show them: as a whole
 * those of the path carrying its game packets (1.9), but `missed` and `state` are the
 * route's own (every path missing, every path down). */
static json_t *route_json(const struct client *c, struct client_route *r, uint64_t now)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "proxy", addr_json(r->direct ? &c->game_server : &r->proxy));
	json_object_set_new(o, "direct", json_boolean(r->direct));
	json_object_set_new(o, "session_id", opt_int(r->keyed, r->session_id));
	json_object_set_new(o, "auth", json_boolean(r->keyed));
	json_object_set_new(o, "probe_ms", json_integer(r->probe_ms));
	json_object_set_new(o, "active", json_boolean(r == c->cur));
	json_object_set_new(o, "backup", json_boolean(r == c->backup));
	meas_json(client_route_view(r), now, o);
	if (client_route_multipath(r)) {
		json_object_set_new(o, "state",
				    json_string(client_route_down(r) ? "down" :
						client_route_view(r)->state == CL_PATH_UNKNOWN ? "unknown" :
						"up"));
		json_object_set_new(o, "missed", json_integer(client_route_missed(r)));
	}
	json_object_set_new(o, "path_mode", json_string(client_mode_name(r->mode)));
	json_object_set_new(o, "path_mode_in_use",
			    json_string(client_mode_name(client_route_mode_now(r))));
	json_object_set_new(o, "duplicates", json_integer((json_int_t)r->duplicates));
	json_object_set_new(o, "paths", paths_json(r, now));
	return o;
}

static json_t *name_or_null(const struct client_route *r)
{
	return r ? json_string(r->name) : json_null();
}

static json_t *routes_json(struct client *c)
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

	if ((rc = name_arg(call, &name)) != LS_RC_OK)
		return rc;
	if (json_is_true(json_object_get(call->req, "direct"))) {
		/* The game server itself: nothing of a proxy goes with it. */
		if (json_object_get(call->req, "proxy") || json_object_get(call->req, "session_id") ||
		    json_object_get(call->req, "key"))
			return ls_steer_fail(call, LS_RC_INVALID,
					     "a direct route has no proxy, session_id or key: it goes "
					     "to the game server itself");
		rc = client_table_add_direct(c, name, replace, &r);
		if (rc == LS_RC_CONFLICT)
			return ls_steer_fail(call, rc, "'%s' is in use: set_route another before it "
					     "turns direct", name);
		if (rc == LS_RC_OK)
			ls_info("route %s: direct to the game server (no tunnel)", name);
	} else {
		if (!json_is_string(json_object_get(call->req, "proxy")))
			return ls_steer_fail(call, LS_RC_INVALID,
					     "proxy is missing (\"ip:port\"; or direct:true for the "
					     "game server itself)");
		if ((rc = addr_arg(c, call, "proxy", &proxy)) != LS_RC_OK ||
		    (rc = session_args(call, &sid, key, &keyp)) != LS_RC_OK)
			return rc;
		rc = client_table_add(c, name, &proxy, sid, keyp, probe, replace, &r);
		memset(key, 0, sizeof(key));
	}
	if (rc == LS_RC_OK && json_is_string(json_object_get(call->req, "path_mode"))) {
		enum client_mode m;

		if (client_mode_parse(json_string_value(json_object_get(call->req, "path_mode")), &m) == 0 &&
		    m != r->mode)
			client_route_set_mode(c, r, m);
	}
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

/* The route named by `route` (or, when absent and allowed, the active one). */
static enum ls_rc route_arg(struct client *c, struct ls_steer_call *call, bool active_ok,
			    struct client_route **out)
{
	const char *name = json_string_value(json_object_get(call->req, "route"));

	if (!name && active_ok) {
		*out = c->cur;
		if (!*out)
			return ls_steer_fail(call, LS_RC_NOT_FOUND, "no active route");
		return LS_RC_OK;
	}
	if (!client_route_name_ok(name))
		return ls_steer_fail(call, LS_RC_INVALID,
				     "route must be 1 to %d characters of A-Z a-z 0-9 . _ -",
				     CL_ROUTE_NAME_MAX);
	*out = client_table_find(c, name);
	if (!*out)
		return ls_steer_fail(call, LS_RC_NOT_FOUND, "no route named '%s'", name);
	return LS_RC_OK;
}

static enum ls_rc cmd_path_add(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	bool replace = json_is_true(json_object_get(call->req, "replace"));
	bool has_relay = json_is_string(json_object_get(call->req, "relay"));
	struct sockaddr_in relay, next_hop;
	struct client_route *r;
	uint8_t key[LS_KEY_LEN];
	const uint8_t *keyp = NULL;
	const char *name;
	uint32_t sid = 0;
	enum ls_rc rc;

	if ((rc = route_arg(c, call, false, &r)) != LS_RC_OK || (rc = name_arg(call, &name)) != LS_RC_OK)
		return rc;
	if (has_relay != (strcmp(name, CL_PATH_DIRECT) != 0))
		return ls_steer_fail(call, LS_RC_INVALID,
				     "the path \"%s\" goes straight to the egress (no relay); any "
				     "other name needs relay, session_id and key", CL_PATH_DIRECT);
	if (has_relay) {
		if ((rc = addr_arg(c, call, "relay", &relay)) != LS_RC_OK ||
		    (rc = session_args(call, &sid, key, &keyp)) != LS_RC_OK)
			return rc;
		if (!keyp)
			return ls_steer_fail(call, LS_RC_INVALID,
					     "a path through a relay needs the grant's session_id and "
					     "key (a relay forwards only for a grant)");
	} else if (json_object_get(call->req, "session_id") || json_object_get(call->req, "key")) {
		return ls_steer_fail(call, LS_RC_INVALID,
				     "session_id and key belong to a path through a relay");
	}
	if (json_is_string(json_object_get(call->req, "next_hop")) &&
	    (rc = addr_arg(c, call, "next_hop", &next_hop)) != LS_RC_OK)
		return rc;
	rc = client_path_add(c, r, name, has_relay ? &relay : NULL, sid, keyp,
			     json_is_string(json_object_get(call->req, "next_hop")) ? &next_hop : NULL,
			     replace);
	memset(key, 0, sizeof(key));
	if (rc == LS_RC_EXISTS)
		return ls_steer_fail(call, rc, "route '%s' has a path named '%s' (replace:true to "
				     "change it)", r->name, name);
	if (rc == LS_RC_FULL)
		return ls_steer_fail(call, rc, "route '%s' has %d paths already (path_del one)",
				     r->name, CL_MAX_PATHS);
	if (rc == LS_RC_CONFLICT)
		return ls_steer_fail(call, rc, "another path of route '%s' has this grant at this "
				     "relay", r->name);
	call->result = json_pack("{s:s,s:o}", "route", r->name, "paths",
				 paths_json(r, ls_now_us()));
	return LS_RC_OK;
}

static enum ls_rc cmd_path_del(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	struct client_route *r;
	const char *name;
	enum ls_rc rc;

	if ((rc = route_arg(c, call, false, &r)) != LS_RC_OK || (rc = name_arg(call, &name)) != LS_RC_OK)
		return rc;
	rc = client_path_del(c, r, name);
	if (rc == LS_RC_NOT_FOUND)
		return ls_steer_fail(call, rc, "route '%s' has no path named '%s'", r->name, name);
	if (rc == LS_RC_CONFLICT)
		return ls_steer_fail(call, rc, "'%s' is the last path of route '%s' (route_del the "
				     "route instead)", name, r->name);
	call->result = json_pack("{s:s,s:o}", "route", r->name, "paths",
				 paths_json(r, ls_now_us()));
	return LS_RC_OK;
}

static enum ls_rc cmd_set_path_mode(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	struct client_route *r;
	enum client_mode m;
	enum ls_rc rc;

	if ((rc = route_arg(c, call, true, &r)) != LS_RC_OK)
		return rc;
	/* The definition allows only the four names. */
	client_mode_parse(json_string_value(json_object_get(call->req, "mode")), &m);
	client_route_set_mode(c, r, m);
	call->result = route_json(c, r, ls_now_us());
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
	{ "path_add", cmd_path_add },
	{ "path_del", cmd_path_del },
	{ "set_path_mode", cmd_set_path_mode },
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

/* The state a route shows as a whole (every path down: down). */
static enum client_pstate route_state(struct client_route *r)
{
	if (!client_route_multipath(r))
		return client_route_view(r)->state;
	if (client_route_down(r))
		return CL_PATH_DOWN;
	return client_route_view(r)->state == CL_PATH_UNKNOWN ? CL_PATH_UNKNOWN : CL_PATH_UP;
}

/* A path's (or its relay hop's) state changed: logged and published. */
static void way_state_event(struct client *c, struct client_route *r, struct client_path *pa,
			    struct client_meas *m, bool hop, bool subs)
{
	const char *st = client_route_state_name(m->state), *was = client_route_state_name(m->reported);

	if (strcmp(st, was) == 0)
		return;
	m->reported = m->state;
	ls_log(m->state == CL_PATH_DOWN && r == c->cur ? LS_LOG_WARN : LS_LOG_INFO, __func__,
	       "route %s: path %s%s %s -> %s", r->name, pa->name, hop ? " (relay hop)" : "", was,
	       st);
	if (subs)
		ls_steer_publish(c->steer, "path_state",
				 json_pack("{s:s,s:s,s:b,s:s,s:s,s:i}", "route", r->name, "path",
					   pa->name, "hop", hop, "state", st, "previous", was, "missed",
					   (int)m->missed));
}

static void route_events(struct client *c, struct client_route *r)
{
	bool current = r == c->cur, multi = client_route_multipath(r);
	struct client_meas *v = client_route_view(r);
	char buf[LS_ADDRSTRLEN];
	bool subs = subscribed(c);

	for (unsigned i = 0; i < r->npaths; i++) {
		struct client_path *pa = &r->paths[i];
		struct client_meas *m = client_route_pmeas(r, i);

		if (multi && m->ev_path)
			way_state_event(c, r, pa, m, false, subs);
		if (m != v) {
			m->ev_path = false;
			m->n_ev_rtt = 0;
		}
		if (!pa->relay)
			continue;
		struct client_route *hop = pa->hop;
		ls_addr_fmt(&hop->proxy, buf);
		if (hop->m.ev_path)
			way_state_event(c, r, pa, &hop->m, true, subs);
		if (hop->ev_fin)
			ls_warn("route %s: relay %s (path %s) sent FIN: handshaking with it again",
				r->name, buf, pa->name);
		if (hop->ev_silent)
			ls_info("route %s: relay %s (path %s) went silent: handshaking", r->name, buf,
				pa->name);
		if (hop->ev_life)
			ls_debug("route %s: relay %s: grant %u, lifetime %u began", r->name, buf,
				 hop->session_id, hop->handshakes);
		hop->ev_fin = hop->ev_silent = hop->ev_life = hop->m.ev_path = false;
		hop->m.n_ev_rtt = 0;
	}
	if (r->ev_paths) {
		r->ev_paths = false;
		if (multi)
			ls_info("route %s: mode %s%s%s, data on path %s", r->name,
				client_mode_name(r->mode), r->mode == CL_MODE_AUTO ? " (now " : "",
				r->mode == CL_MODE_AUTO ? client_mode_name(r->mode_now) : "",
				r->npaths ? r->paths[r->data_path].name : "-");
		if (subs)
			ls_steer_publish(c->steer, "paths",
					 json_pack("{s:s,s:s,s:s,s:o}", "route", r->name, "path_mode",
						   client_mode_name(r->mode), "path_mode_in_use",
						   client_mode_name(client_route_mode_now(r)), "data_path",
						   r->npaths ? json_string(r->paths[r->data_path].name)
							     : json_null()));
	}
	/* Called after every batch: nothing is formatted unless something happened. */
	if (!r->ev_fin && !v->ev_path && !v->n_ev_rtt && !r->ev_life && !r->ev_silent &&
	    route_state(r) == r->reported)
		return;
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
	if (v->ev_path) {
		if (!current)
			ls_debug("route %s: %s -> %s", r->name, buf, client_path_name(v->state));
		else if (v->state == CL_PATH_DOWN)
			ls_warn("path %s -> down", buf);
		else if (v->state == CL_PATH_DEGRADED)
			ls_warn("path %s -> degraded: keepalives are answered but the game packets "
				"the proxy sends are dropped here (see stats drops)", buf);
		else
			ls_info("path %s -> %s", buf, client_path_name(v->state));
		if (subs && current)
			ls_steer_publish(c->steer, "path",
					 json_pack("{s:s,s:s}", "state", client_path_name(v->state),
						   "proxy", buf));
	}
	if (route_state(r) != r->reported) {
		const char *st = client_route_state_name(route_state(r));
		const char *was = client_route_state_name(r->reported);
		if (subs && strcmp(st, was) != 0)
			ls_steer_publish(c->steer, "route_state",
					 json_pack("{s:s,s:s,s:s,s:i}", "name", r->name, "state", st,
						   "previous", was, "missed",
						   (int)client_route_missed(r)));
		r->reported = route_state(r);
	}
	for (unsigned i = 0; subs && i < v->n_ev_rtt; i++) {
		if (current)
			ls_steer_publish(c->steer, "rtt",
					 measure_json(v, json_pack("{s:I}", "rtt_us",
								   (json_int_t)v->ev_rtt[i])));
		ls_steer_publish(c->steer, "route_sample",
				 measure_json(v, json_pack("{s:s,s:I}", "name", r->name, "rtt_us",
							   (json_int_t)v->ev_rtt[i])));
	}
	r->ev_fin = false;
	v->ev_path = false;
	r->ev_life = false;
	r->ev_silent = false;
	v->n_ev_rtt = 0;
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
	/* Another egress: the game server sees the player come from another address,
	 * which most games take for a new connection (1.9: paths change, egresses not). */
	bool moved = from && to && (from->proxy.sin_addr.s_addr != to->proxy.sin_addr.s_addr ||
				    from->proxy.sin_port != to->proxy.sin_port);

	if (strcmp(reason, "failover") == 0)
		ls_warn("failover: route %s missed %u keepalives in a row on every path: switched "
			"to the armed backup %s%s", from ? from->name : "-",
			from ? client_route_missed(from) : 0,
			to ? to->name : "-",
			moved ? " (another egress: the game server will see a new address)" : "");
	else if (moved)
		ls_info("route %s -> %s: another egress: the game server will see a new address",
			from->name, to->name);
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
