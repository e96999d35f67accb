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

static json_t *status_json(const struct client *c)
{
	const struct client_route *r = c->cur;
	json_t *o = json_object();
	char fec[32];

	json_object_set_new(o, "proxy", addr_json(&r->proxy));
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
	const struct ls_hist *h = &c->cur->rtt;
	json_t *o = json_object(), *drops = json_object();
	struct ls_steer_stats st;
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
	ls_steer_get_stats(c->steer, &st);
	json_object_set_new(o, "steering",
			    json_pack("{s:I,s:I,s:I}", "connections", (json_int_t)st.conns,
				      "events_sent", (json_int_t)st.events_sent, "events_dropped",
				      (json_int_t)st.events_dropped));
	return o;
}

/* The Prometheus text (malloc'd), or NULL when out of memory. */
static char *stats_prometheus(const struct client *c)
{
	const struct client_route *r = c->cur;
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
	ls_prom_header(&b, "lightspeed_client_fec_up_k", "gauge",
		       "Data packets per FEC block towards the proxy (0: FEC off).");
	ls_prom_u64(&b, "lightspeed_client_fec_up_k", NULL, c->fec.up.k);
	ls_prom_header(&b, "lightspeed_client_fec_up_m", "gauge",
		       "Parity packets per full FEC block towards the proxy.");
	ls_prom_u64(&b, "lightspeed_client_fec_up_m", NULL, c->fec.up.m);
	ls_prom_hist(&b, "lightspeed_client_rtt_seconds",
		     "Keepalive round-trip time on the current route.", &r->rtt);
	ls_prom_header(&b, "lightspeed_client_path_up", "gauge",
		       "1 when the current route's proxy answers.");
	ls_prom_u64(&b, "lightspeed_client_path_up", NULL, r->path == CL_PATH_UP);
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

static enum ls_rc cmd_set_route(void *ctx, struct ls_steer_call *call)
{
	struct client *c = ctx;
	struct sockaddr_in proxy, game;
	/* null reads as absent, so that a status's session_id can be handed back. */
	json_t *jsid = json_object_get(call->req, "session_id");
	const char *key_hex = json_string_value(json_object_get(call->req, "key"));
	bool game_set = json_is_string(json_object_get(call->req, "game_server"));
	uint8_t key[LS_KEY_LEN];
	enum ls_rc rc;

	if (json_is_null(jsid))
		jsid = NULL;
	if ((rc = addr_arg(c, call, "proxy", &proxy)) != LS_RC_OK)
		return rc;
	if (!jsid != !key_hex)
		return ls_steer_fail(call, LS_RC_INVALID,
				     "session_id and key go together (both or neither)");
	if (key_hex && ls_hex_decode(key_hex, key, LS_KEY_LEN) < 0)
		return ls_steer_fail(call, LS_RC_INVALID, "key must be a string of %d hex digits",
				     2 * LS_KEY_LEN);
	if (game_set && (rc = addr_arg(c, call, "game_server", &game)) != LS_RC_OK)
		return rc;

	client_set_route(c, &proxy, jsid ? (uint32_t)json_integer_value(jsid) : 0,
			 key_hex ? key : NULL, game_set ? &game : NULL);
	call->result = status_json(c);
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
	client_send_keepalive(c, ls_now_us());
	ls_info("fec: %s", v);
	call->result = status_json(c);
	return LS_RC_OK;
}

/* The commands' definitions are ls_steer_cmd_client (shared/steer_cmd.c). */
static const struct ls_steer_handler client_handlers[] = {
	{ "status", cmd_status },
	{ "stats", cmd_stats },
	{ "set_route", cmd_set_route },
	{ "set_fec", cmd_set_fec },
	{ NULL, NULL },
};

int client_ctl_open(struct client *c, char *err, size_t errlen)
{
	c->steer = ls_steer_open(c->conf.socket, 0660, ls_steer_cmd_client, client_handlers, c,
				 err, errlen);
	return c->steer ? 0 : -1;
}

/* ---- events -------------------------------------------------------------------- */

static void route_events(struct client *c, struct client_route *r, bool current)
{
	char buf[LS_ADDRSTRLEN];
	bool subs;

	/* Called after every batch: nothing is formatted unless something happened. */
	if (!r->ev_fin && !r->ev_path && !r->n_ev_rtt && !r->ev_life && !r->ev_silent)
		return;
	subs = c->steer && ls_steer_has_subscribers(c->steer);
	ls_addr_fmt(&r->proxy, buf);
	if (r->ev_fin)
		ls_warn("proxy %s sent FIN%s", buf,
			current ? ": route down, still probing it" : " (old route)");
	if (r->ev_silent)
		ls_info("proxy %s went silent: handshaking (it may have restarted, or the "
			"session been added again)", buf);
	if (r->ev_life)
		ls_debug("proxy %s: session %u, lifetime %u began", buf, r->session_id,
			 r->handshakes);
	if (current && r->ev_path) {
		if (r->path == CL_PATH_DOWN)
			ls_warn("path %s -> down", buf);
		else if (r->path == CL_PATH_DEGRADED)
			ls_warn("path %s -> degraded: keepalives are answered but the game packets "
				"the proxy sends are dropped here (see stats drops)", buf);
		else
			ls_info("path %s -> %s", buf, client_path_name(r->path));
		if (subs)
			ls_steer_publish(c->steer, "path",
					 json_pack("{s:s,s:s}", "state", client_path_name(r->path),
						   "proxy", buf));
	}
	for (unsigned i = 0; current && subs && i < r->n_ev_rtt; i++)
		ls_steer_publish(c->steer, "rtt",
				 measure_json(r, json_pack("{s:I}", "rtt_us",
							   (json_int_t)r->ev_rtt[i])));
	r->ev_fin = false;
	r->ev_path = false;
	r->ev_life = false;
	r->ev_silent = false;
	r->n_ev_rtt = 0;
}

void client_ctl_route_events(struct client *c)
{
	route_events(c, c->cur, true);
	if (c->old)
		route_events(c, c->old, false);
}

void client_ctl_route_changed(struct client *c)
{
	const struct client_route *r = c->cur;
	char buf[LS_ADDRSTRLEN];

	ls_addr_fmt(&r->proxy, buf);
	if (r->keyed)
		ls_info("route: proxy %s, session %u", buf, r->session_id);
	else
		ls_info("route: proxy %s, unauthenticated", buf);
	if (c->steer && ls_steer_has_subscribers(c->steer))
		ls_steer_publish(c->steer, "route",
				 json_pack("{s:s,s:o}", "proxy", buf, "session_id",
					   opt_int(r->keyed, r->session_id)));
}

void client_ctl_counters_event(struct client *c)
{
	if (c->steer && ls_steer_has_subscribers(c->steer))
		ls_steer_publish(c->steer, "counters", stats_json(c));
}
