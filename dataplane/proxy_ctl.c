/* lightspeed-proxy steering commands and events (docs/protocol.md 3.1). Control path:
 * JSON and allocation are fine here, never in the packet paths. */
#include "proxy.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "util.h"

/* The traffic counters of `stats`, as a table so JSON and Prometheus agree. */
struct counter_def {
	const char *name;
	size_t offset; /* in struct px_counters */
	const char *help;
};
#define CTR(f, h) { #f, offsetof(struct px_counters, f), h }
static const struct counter_def counter_defs[] = {
	CTR(rx_packets, "Datagrams received on the tunnel socket."),
	CTR(rx_bytes, "Bytes received on the tunnel socket."),
	CTR(forwarded_packets, "Datagrams forwarded to game servers."),
	CTR(forwarded_bytes, "Payload bytes forwarded to game servers."),
	CTR(reply_packets, "Game server replies sent into the tunnel."),
	CTR(reply_bytes, "Payload bytes of game server replies sent into the tunnel."),
	CTR(relayed_packets, "Tunnel datagrams a relay grant forwarded to its next hop."),
	CTR(relayed_bytes, "Bytes of tunnel datagrams forwarded to next hops."),
	CTR(relay_reply_packets, "Tunnel datagrams from next hops relayed back to clients."),
	CTR(relay_reply_bytes, "Bytes of tunnel datagrams relayed back to clients."),
	CTR(tx_packets, "Datagrams sent on the tunnel socket."),
	CTR(tx_bytes, "Bytes sent on the tunnel socket."),
	CTR(keepalives, "Keepalive requests answered and replies received."),
	CTR(keepalives_unanswered, "Keepalive requests from unvalidated addresses left unanswered (budget)."),
	CTR(sessions_created, "Sessions created."),
	CTR(sessions_expired, "Sessions ended by idleness."),
};

static uint64_t counter_get(const struct px_counters *c, const struct counter_def *d)
{
	uint64_t v;

	memcpy(&v, (const char *)c + d->offset, sizeof(v));
	return v;
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *stats_json(const struct px *p)
{
	json_t *o = json_object(), *drops = json_object();
	struct dp_fec_counters fec;

	for (size_t i = 0; i < LS_ARRAY_LEN(counter_defs); i++)
		json_object_set_new(o, counter_defs[i].name, jint(counter_get(&p->ctr, &counter_defs[i])));
	json_object_set_new(o, "sessions", jint(p->tab.n));
	json_object_set_new(o, "flows", jint(p->tab.nflows));
	for (int i = 0; i < LS_DROP__COUNT; i++)
		json_object_set_new(drops, ls_drop_names[i], jint(p->ctr.drops[i]));
	json_object_set_new(o, "drops", drops);
	px_fec_counters(p, &fec);
	json_object_set_new(o, "fec", dp_fec_counters_json(&fec));
	/* protocol.md 3: lost events are counted in the process's steering stats. */
	if (p->steer)
		json_object_set_new(o, "steering", ls_steer_stats_json(p->steer));
	return o;
}

static char *prom_text(const struct px *p)
{
	struct dp_fec_counters fec;
	struct ls_buf b;
	char name[96];

	ls_buf_init(&b);
	for (size_t i = 0; i < LS_ARRAY_LEN(counter_defs); i++) {
		snprintf(name, sizeof(name), "lightspeed_proxy_%s_total", counter_defs[i].name);
		ls_prom_header(&b, name, "counter", counter_defs[i].help);
		ls_prom_u64(&b, name, NULL, counter_get(&p->ctr, &counter_defs[i]));
	}
	ls_prom_header(&b, "lightspeed_proxy_sessions", "gauge", "Sessions held.");
	ls_prom_u64(&b, "lightspeed_proxy_sessions", NULL, p->tab.n);
	ls_prom_header(&b, "lightspeed_proxy_flows", "gauge", "Flows (game sockets) held.");
	ls_prom_u64(&b, "lightspeed_proxy_flows", NULL, p->tab.nflows);
	ls_prom_header(&b, "lightspeed_proxy_drops_total", "counter",
		       "Datagrams dropped, by reason.");
	for (int i = 0; i < LS_DROP__COUNT; i++) {
		struct ls_buf lab;

		ls_buf_init(&lab);
		ls_prom_label(&lab, "reason", ls_drop_names[i]);
		ls_prom_u64(&b, "lightspeed_proxy_drops_total", lab.data, p->ctr.drops[i]);
		ls_buf_free(&lab);
	}
	px_fec_counters(p, &fec);
	dp_fec_counters_prom(&b, "lightspeed_proxy", &fec);
	if (p->steer)
		ls_steer_stats_prom(p->steer, &b, "lightspeed_proxy");
	ls_prom_header(&b, "lightspeed_proxy_uptime_seconds", "gauge", "Seconds since start.");
	ls_prom_u64(&b, "lightspeed_proxy_uptime_seconds", NULL,
		    (ls_now_us() - p->start_us) / 1000000u);
	if (b.oom) {
		ls_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static json_t *client_json(const struct px_session *s)
{
	char a[LS_ADDRSTRLEN];

	return px_session_has_client(s) ? json_string(ls_addr_fmt(px_session_client(s), a))
					: json_null();
}

static const char *const role_names[] = {
	[LS_ROLE_ONLY] = "only", [LS_ROLE_DATA] = "data", [LS_ROLE_PARITY] = "parity",
	[LS_ROLE_PROBE] = "probe",
};

/* The client's addresses (1.9): each with its role and validation. */
static void paths_write(struct ls_jw *w, const struct px_session *s, uint64_t now)
{
	char a[LS_ADDRSTRLEN];

	ls_jw_arr(w);
	for (unsigned i = 0; i < s->npaths; i++) {
		const struct px_path *pa = &s->path[i];

		ls_jw_obj(w);
		ls_jw_key(w, "address");
		ls_jw_str(w, ls_addr_fmt(&pa->addr, a));
		ls_jw_key(w, "role");
		ls_jw_str(w, role_names[pa->role <= LS_ROLE_MAX ? pa->role : 0]);
		ls_jw_key(w, "validated");
		ls_jw_bool(w, pa->validated);
		ls_jw_key(w, "idle_ms");
		ls_jw_u64(w, now > pa->last_us ? (now - pa->last_us) / 1000 : 0);
		ls_jw_key(w, "rx_packets");
		ls_jw_u64(w, pa->rx_packets);
		ls_jw_key(w, "tx_packets");
		ls_jw_u64(w, pa->tx_packets);
		ls_jw_end_obj(w);
	}
	ls_jw_end_arr(w);
}

/* A session object (docs/protocol.md 3.1), written as text: a listing of 1,000 of them
 * must fit in a steering turn's budget, which building jansson trees does not. */
static void session_write(struct ls_jw *w, const struct px_session *s, uint64_t now)
{
	char a[LS_ADDRSTRLEN], buf[64];

	ls_jw_obj(w);
	ls_jw_key(w, "session_id");
	if (s->auth)
		ls_jw_u64(w, s->id);
	else
		ls_jw_null(w);
	ls_jw_key(w, "client");
	if (px_session_has_client(s))
		ls_jw_str(w, ls_addr_fmt(px_session_client(s), a));
	else
		ls_jw_null(w);
	ls_jw_key(w, "validated");
	ls_jw_bool(w, s->npaths && s->path[0].validated);
	ls_jw_key(w, "static");
	ls_jw_bool(w, s->is_static);
	ls_jw_key(w, "relay");
	ls_jw_bool(w, s->relay);
	ls_jw_key(w, "multipath");
	ls_jw_bool(w, s->multipath);
	ls_jw_key(w, "paths");
	paths_write(w, s, now);
	ls_jw_key(w, "idle_ms");
	ls_jw_u64(w, now > s->last_us ? (now - s->last_us) / 1000 : 0);
	ls_jw_key(w, "destinations");
	ls_jw_arr(w);
	for (uint32_t i = 0; i < s->ndests; i++) {
		ls_dest_fmt(&s->dests[i], buf, sizeof(buf));
		ls_jw_str(w, buf);
	}
	ls_jw_end_arr(w);
	ls_jw_key(w, "flows");
	ls_jw_u64(w, s->nflows);
	const struct {
		const char *name;
		uint64_t v;
	} nums[] = {
		{ "pps", s->pps },           { "bps", s->bps },
		{ "rx_packets", s->rx_packets }, { "rx_bytes", s->rx_bytes },
		{ "tx_packets", s->tx_packets }, { "tx_bytes", s->tx_bytes },
		{ "drops", s->drops },
	};
	for (size_t i = 0; i < LS_ARRAY_LEN(nums); i++) {
		ls_jw_key(w, nums[i].name);
		ls_jw_u64(w, nums[i].v);
	}
	px_fec_session_write(s, w);
	ls_jw_end_obj(w);
}

/* Hand a written result to the steering server (NULL text: out of memory). */
static enum ls_rc answer_written(struct ls_steer_call *call, struct ls_buf *b)
{
	if (b->oom || !b->data) {
		ls_buf_free(b);
		return ls_steer_fail(call, LS_RC_INTERNAL, "out of memory");
	}
	call->json = b->data;
	return LS_RC_OK;
}

/* ---- events ------------------------------------------------------------------------ */

void px_ctl_counters_event(struct px *p)
{
	if (p->steer && ls_steer_has_subscribers(p->steer))
		ls_steer_publish(p->steer, "counters", stats_json(p));
}

void px_ctl_session_event(struct px *p, const struct px_session *s, const char *event,
			  const char *reason)
{
	json_t *o;

	if (!p->steer || !ls_steer_has_subscribers(p->steer))
		return;
	o = json_object();
	json_object_set_new(o, "session_id", s->auth ? jint(s->id) : json_null());
	json_object_set_new(o, "client", client_json(s));
	json_object_set_new(o, "static", json_boolean(s->is_static));
	if (reason)
		json_object_set_new(o, "reason", json_string(reason));
	if (p->in_steer) {
		if (!p->deferred)
			p->deferred = json_array();
		json_array_append_new(p->deferred, json_pack("[s,o]", event, o));
		return;
	}
	ls_steer_publish(p->steer, event, o);
}

void px_ctl_flush_deferred(struct px *p)
{
	json_t *all = p->deferred;
	size_t i;
	json_t *ev;

	if (!all)
		return;
	p->deferred = NULL;
	json_array_foreach(all, i, ev) {
		if (p->steer)
			ls_steer_publish(p->steer, json_string_value(json_array_get(ev, 0)),
					 json_incref(json_array_get(ev, 1)));
	}
	json_decref(all);
}

/* ---- commands ---------------------------------------------------------------------- */

static enum ls_rc ctl_status(void *ctx, struct ls_steer_call *call)
{
	struct px *p = ctx;
	char a[LS_ADDRSTRLEN];

	call->result = json_pack("{s:s,s:I,s:s,s:b,s:I,s:I,s:I}", "version", LS_VERSION,
				 "uptime_s", (json_int_t)((ls_now_us() - p->start_us) / 1000000u),
				 "bind", ls_addr_fmt(&p->bound, a), "require_auth",
				 p->conf.proxy.require_auth, "sessions", (json_int_t)p->tab.n,
				 "max_sessions", (json_int_t)p->conf.proxy.max_sessions,
				 "idle_timeout_s", (json_int_t)p->conf.proxy.idle_timeout);
	return call->result ? LS_RC_OK : LS_RC_INTERNAL;
}

static enum ls_rc ctl_stats(void *ctx, struct ls_steer_call *call)
{
	int text = ls_steer_text_format(call);

	if (text < 0)
		return LS_RC_INVALID;
	if (text)
		return ls_steer_answer_text(call, prom_text(ctx));
	call->result = stats_json(ctx);
	return LS_RC_OK;
}

static enum ls_rc ctl_sessions(void *ctx, struct ls_steer_call *call)
{
	struct px *p = ctx;
	uint64_t now = ls_now_us();
	struct ls_buf b;
	struct ls_jw w;

	ls_buf_init(&b);
	ls_jw_init(&w, &b);
	ls_jw_obj(&w);
	ls_jw_key(&w, "sessions");
	ls_jw_arr(&w);
	for (const struct px_session *s = p->tab.head; s; s = s->next)
		session_write(&w, s, now);
	ls_jw_end_arr(&w);
	ls_jw_end_obj(&w);
	return answer_written(call, &b);
}

/* The definition (steer_cmd.c) has checked the type and range of every argument. */
static uint32_t arg_session_id(const struct ls_steer_call *call)
{
	return (uint32_t)json_integer_value(json_object_get(call->req, "session_id"));
}

/* An optional rate: absent or null keeps the default; 0 means unlimited. */
static void arg_rate(const struct ls_steer_call *call, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(call->req, name);

	if (json_is_integer(v))
		*out = (uint64_t)json_integer_value(v);
}

/* An optional FEC setting: absent or null follows what the client asks (*set = NULL). */
static enum ls_rc arg_fec(struct ls_steer_call *call, struct dp_fec_setting *out,
			  const struct dp_fec_setting **set)
{
	const char *v = json_string_value(json_object_get(call->req, "fec"));
	char err[160];

	*set = NULL;
	if (!v)
		return LS_RC_OK;
	if (dp_fec_parse(v, out, err, sizeof(err)) < 0)
		return ls_steer_fail(call, LS_RC_INVALID, "fec: %s", err);
	*set = out;
	return LS_RC_OK;
}

/* session_add and grant_add: a session, or a relay grant whose destinations are its
 * next hops (docs/protocol.md 1.9). */
static enum ls_rc add_keyed(struct px *p, struct ls_steer_call *call, bool relay)
{
	const char *what = relay ? "next_hops" : "destinations";
	struct ls_dest dests[PX_MAX_DESTS];
	uint8_t key[LS_KEY_LEN];
	uint64_t pps = p->conf.limits.pps, bps = p->conf.limits.bps;
	struct dp_fec_setting fec;
	const struct dp_fec_setting *fec_set = NULL;
	uint32_t id = arg_session_id(call);
	json_t *v = json_object_get(call->req, what);
	size_t n = json_array_size(v);
	enum ls_rc rc;

	if (ls_hex_decode(json_string_value(json_object_get(call->req, "key")), key,
			  sizeof(key)) < 0)
		return ls_steer_fail(call, LS_RC_INVALID, "key must be 32 hex digits");
	if (n > PX_MAX_DESTS)
		return ls_steer_fail(call, LS_RC_INVALID, "at most %d %s", PX_MAX_DESTS, what);
	for (size_t i = 0; i < n; i++) {
		const char *str = json_string_value(json_array_get(v, i)), *denied;
		struct sockaddr_in a;
		char err[96];

		if (relay) {
			/* A relay sends to exactly the nodes it was told: one address and port
			 * each, never a range. */
			if (ls_hostport_parse(str, &a, false, false, err, sizeof(err)) < 0)
				return ls_steer_fail(call, LS_RC_INVALID,
						     "next_hops[%zu] is not \"ip:port\" (%s)", i, err);
			dests[i].cidr.net = ntohl(a.sin_addr.s_addr);
			dests[i].cidr.mask = 0xffffffffu;
			dests[i].cidr.len = 32;
			dests[i].port_lo = dests[i].port_hi = ntohs(a.sin_port);
		} else if (ls_dest_parse(str, &dests[i]) < 0) {
			return ls_steer_fail(call, LS_RC_INVALID,
					     "destinations[%zu] is not \"ip[/len][:port[-port]]\"",
					     i);
		}
		/* Its packets would all be dropped: say so now, not at the first packet. */
		denied = ls_dest_denied(&p->conf.proxy.allow, &dests[i]);
		if (denied)
			return ls_steer_fail(call, LS_RC_INVALID,
					     "%s[%zu] '%.64s' is in the denied range %s "
					     "(docs/protocol.md 1.6), which the proxy's allow list "
					     "does not cover; let it through with --allow CIDR or "
					     "[proxy] allow if it is a %s",
					     what, i, str, denied, relay ? "node" : "game server");
	}
	arg_rate(call, "pps", &pps);
	arg_rate(call, "bps", &bps);
	if (!relay && (rc = arg_fec(call, &fec, &fec_set)) != LS_RC_OK)
		return rc;
	if (px_session_by_id(&p->tab, id))
		return ls_steer_fail(call, LS_RC_EXISTS, "session %u exists", id);
	if (p->tab.n >= (size_t)p->conf.proxy.max_sessions)
		return ls_steer_fail(call, LS_RC_FULL, "%zu sessions: max_sessions reached",
				     p->tab.n);
	struct px_session *s = px_session_add_keyed(p, id, key, dests, n, pps, bps, fec_set,
						    false, relay, ls_now_us());
	memset(key, 0, sizeof(key));
	if (!s)
		return ls_steer_fail(call, LS_RC_INTERNAL, "out of memory");
	px_session_up(p, s, false);
	call->result = json_pack("{s:I}", "session_id", (json_int_t)id);
	return LS_RC_OK;
}

static enum ls_rc ctl_session_add(void *ctx, struct ls_steer_call *call)
{
	return add_keyed(ctx, call, false);
}

static enum ls_rc ctl_grant_add(void *ctx, struct ls_steer_call *call)
{
	return add_keyed(ctx, call, true);
}

static enum ls_rc ctl_session_del(void *ctx, struct ls_steer_call *call)
{
	struct px *p = ctx;
	uint32_t id = arg_session_id(call);
	struct px_session *s = px_session_by_id(&p->tab, id);

	if (!s)
		return ls_steer_fail(call, LS_RC_NOT_FOUND, "no session %u", id);
	px_session_end(p, s, PX_END_DELETED);
	call->result = json_pack("{s:I}", "session_id", (json_int_t)id);
	return LS_RC_OK;
}

static enum ls_rc ctl_set_fec(void *ctx, struct ls_steer_call *call)
{
	struct px *p = ctx;
	struct dp_fec_setting fec;
	const struct dp_fec_setting *set;
	uint32_t id = arg_session_id(call);
	struct px_session *s;
	enum ls_rc rc;

	if ((rc = arg_fec(call, &fec, &set)) != LS_RC_OK)
		return rc;
	s = px_session_by_id(&p->tab, id);
	if (!s)
		return ls_steer_fail(call, LS_RC_NOT_FOUND, "no session %u", id);
	if (px_fec_pin(s, set, ls_now_us()) < 0)
		return ls_steer_fail(call, LS_RC_INTERNAL, "out of memory");
	struct ls_buf b;
	struct ls_jw w;

	ls_buf_init(&b);
	ls_jw_init(&w, &b);
	session_write(&w, s, ls_now_us());
	return answer_written(call, &b);
}

/* The commands' definitions are ls_steer_cmd_proxy (shared/steer_cmd.c). */
const struct ls_steer_handler px_ctl_handlers[] = {
	{ "status", ctl_status },
	{ "stats", ctl_stats },
	{ "sessions", ctl_sessions },
	{ "session_add", ctl_session_add },
	{ "grant_add", ctl_grant_add },
	{ "session_del", ctl_session_del },
	{ "set_fec", ctl_set_fec },
	{ NULL, NULL },
};
