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
	json_t *o = json_object(), *drops = json_object(), *st;
	struct ls_steer_stats ss;
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
	if (p->steer) {
		ls_steer_get_stats(p->steer, &ss);
		st = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "conns", (json_int_t)ss.conns,
			       "conns_total", (json_int_t)ss.conns_total, "requests",
			       (json_int_t)ss.requests, "errors", (json_int_t)ss.errors,
			       "events_sent", (json_int_t)ss.events_sent, "events_dropped",
			       (json_int_t)ss.events_dropped);
		json_object_set_new(o, "steering", st);
	}
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

	return s->has_client ? json_string(ls_addr_fmt(&s->client, a)) : json_null();
}

static json_t *session_json(const struct px_session *s, uint64_t now)
{
	json_t *o = json_object(), *dests = json_array();
	char buf[64];

	json_object_set_new(o, "session_id", s->auth ? jint(s->id) : json_null());
	json_object_set_new(o, "client", client_json(s));
	json_object_set_new(o, "validated", json_boolean(s->validated));
	json_object_set_new(o, "static", json_boolean(s->is_static));
	json_object_set_new(o, "idle_ms", jint(now > s->last_us ? (now - s->last_us) / 1000 : 0));
	for (uint32_t i = 0; i < s->ndests; i++) {
		ls_dest_fmt(&s->dests[i], buf, sizeof(buf));
		json_array_append_new(dests, json_string(buf));
	}
	json_object_set_new(o, "destinations", dests);
	json_object_set_new(o, "flows", jint(s->nflows));
	json_object_set_new(o, "pps", jint(s->pps));
	json_object_set_new(o, "bps", jint(s->bps));
	json_object_set_new(o, "rx_packets", jint(s->rx_packets));
	json_object_set_new(o, "rx_bytes", jint(s->rx_bytes));
	json_object_set_new(o, "tx_packets", jint(s->tx_packets));
	json_object_set_new(o, "tx_bytes", jint(s->tx_bytes));
	json_object_set_new(o, "drops", jint(s->drops));
	px_fec_session_json(s, o);
	return o;
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

static enum ls_rc ctl_status(void *ctx, json_t *req, json_t **result, char *msg, size_t msglen)
{
	struct px *p = ctx;
	char a[LS_ADDRSTRLEN];

	(void)req, (void)msg, (void)msglen;
	*result = json_pack("{s:s,s:I,s:s,s:b,s:I,s:I,s:I}", "version", LS_VERSION, "uptime_s",
			    (json_int_t)((ls_now_us() - p->start_us) / 1000000u), "bind",
			    ls_addr_fmt(&p->bound, a), "require_auth", p->conf.proxy.require_auth,
			    "sessions", (json_int_t)p->tab.n, "max_sessions",
			    (json_int_t)p->conf.proxy.max_sessions, "idle_timeout_s",
			    (json_int_t)p->conf.proxy.idle_timeout);
	return *result ? LS_RC_OK : LS_RC_INTERNAL;
}

static enum ls_rc ctl_stats(void *ctx, json_t *req, json_t **result, char *msg, size_t msglen)
{
	struct px *p = ctx;
	json_t *fmt = json_object_get(req, "format");
	const char *f = fmt ? json_string_value(fmt) : "json";

	if (!f || (strcmp(f, "json") != 0 && strcmp(f, "prometheus") != 0)) {
		snprintf(msg, msglen, "format must be \"json\" or \"prometheus\"");
		return LS_RC_INVALID;
	}
	if (strcmp(f, "json") == 0) {
		*result = stats_json(p);
		return LS_RC_OK;
	}
	char *text = prom_text(p);
	if (!text) {
		snprintf(msg, msglen, "out of memory");
		return LS_RC_INTERNAL;
	}
	*result = json_pack("{s:s}", "text", text);
	free(text);
	return *result ? LS_RC_OK : LS_RC_INTERNAL;
}

static enum ls_rc ctl_sessions(void *ctx, json_t *req, json_t **result, char *msg, size_t msglen)
{
	struct px *p = ctx;
	json_t *arr = json_array();
	uint64_t now = ls_now_us();

	(void)req, (void)msg, (void)msglen;
	for (const struct px_session *s = p->tab.head; s; s = s->next)
		json_array_append_new(arr, session_json(s, now));
	*result = json_pack("{s:o}", "sessions", arr);
	return *result ? LS_RC_OK : LS_RC_INTERNAL;
}

static enum ls_rc arg_session_id(json_t *req, uint32_t *id, char *msg, size_t msglen)
{
	json_t *v = json_object_get(req, "session_id");

	if (!v) {
		snprintf(msg, msglen, "session_id is missing");
		return LS_RC_INVALID;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX) {
		snprintf(msg, msglen, "session_id must be an integer in 1..4294967295");
		return LS_RC_INVALID;
	}
	*id = (uint32_t)json_integer_value(v);
	return LS_RC_OK;
}

/* An optional rate: absent or null keeps the default; 0 means unlimited. */
static enum ls_rc arg_rate(json_t *req, const char *name, uint64_t *out, char *msg,
			   size_t msglen)
{
	json_t *v = json_object_get(req, name);

	if (!v || json_is_null(v))
		return LS_RC_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(msg, msglen, "%s must be an integer >= 0 (0 = unlimited)", name);
		return LS_RC_INVALID;
	}
	*out = (uint64_t)json_integer_value(v);
	return LS_RC_OK;
}

/* An optional FEC setting: absent or null follows what the client asks (*set = NULL). */
static enum ls_rc arg_fec(json_t *req, struct dp_fec_setting *out,
			  const struct dp_fec_setting **set, char *msg, size_t msglen)
{
	json_t *v = json_object_get(req, "fec");
	char err[160];

	*set = NULL;
	if (!v || json_is_null(v))
		return LS_RC_OK;
	if (!json_is_string(v)) {
		snprintf(msg, msglen, "fec must be \"off\", \"auto\", \"K:M\", \"K:M:MS\" or null");
		return LS_RC_INVALID;
	}
	if (dp_fec_parse(json_string_value(v), out, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "fec: %s", err);
		return LS_RC_INVALID;
	}
	*set = out;
	return LS_RC_OK;
}

static enum ls_rc ctl_session_add(void *ctx, json_t *req, json_t **result, char *msg,
				  size_t msglen)
{
	struct px *p = ctx;
	struct ls_dest dests[PX_MAX_DESTS];
	uint8_t key[LS_KEY_LEN];
	uint64_t pps = p->conf.limits.pps, bps = p->conf.limits.bps;
	struct dp_fec_setting fec;
	const struct dp_fec_setting *fec_set;
	uint32_t id;
	json_t *v;
	const char *ks;
	size_t n;
	enum ls_rc rc;

	if ((rc = arg_session_id(req, &id, msg, msglen)) != LS_RC_OK)
		return rc;
	v = json_object_get(req, "key");
	if (!v) {
		snprintf(msg, msglen, "key is missing");
		return LS_RC_INVALID;
	}
	ks = json_string_value(v);
	if (!ks || ls_hex_decode(ks, key, sizeof(key)) < 0) {
		snprintf(msg, msglen, "key must be a string of exactly 32 hex digits");
		return LS_RC_INVALID;
	}
	v = json_object_get(req, "destinations");
	if (!v) {
		snprintf(msg, msglen, "destinations is missing");
		return LS_RC_INVALID;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > PX_MAX_DESTS) {
		snprintf(msg, msglen, "destinations must be an array of 1 to %d strings",
			 PX_MAX_DESTS);
		return LS_RC_INVALID;
	}
	n = json_array_size(v);
	for (size_t i = 0; i < n; i++) {
		const char *d = json_string_value(json_array_get(v, i));

		if (!d || ls_dest_parse(d, &dests[i]) < 0) {
			snprintf(msg, msglen,
				 "destinations[%zu] is not a string \"ip[/len][:port[-port]]\"", i);
			return LS_RC_INVALID;
		}
	}
	if ((rc = arg_rate(req, "pps", &pps, msg, msglen)) != LS_RC_OK ||
	    (rc = arg_rate(req, "bps", &bps, msg, msglen)) != LS_RC_OK ||
	    (rc = arg_fec(req, &fec, &fec_set, msg, msglen)) != LS_RC_OK)
		return rc;

	if (px_session_by_id(&p->tab, id)) {
		snprintf(msg, msglen, "session %u exists", id);
		return LS_RC_EXISTS;
	}
	if (p->tab.n >= (size_t)p->conf.proxy.max_sessions) {
		snprintf(msg, msglen, "%zu sessions: max_sessions reached", p->tab.n);
		return LS_RC_FULL;
	}
	struct px_session *s = px_session_add_keyed(p, id, key, dests, n, pps, bps, fec_set,
						    false, ls_now_us());
	memset(key, 0, sizeof(key));
	if (!s) {
		snprintf(msg, msglen, "out of memory");
		return LS_RC_INTERNAL;
	}
	px_session_up(p, s, false);
	*result = json_pack("{s:I}", "session_id", (json_int_t)id);
	return LS_RC_OK;
}

static enum ls_rc ctl_session_del(void *ctx, json_t *req, json_t **result, char *msg,
				  size_t msglen)
{
	struct px *p = ctx;
	struct px_session *s;
	uint32_t id;
	enum ls_rc rc;

	if ((rc = arg_session_id(req, &id, msg, msglen)) != LS_RC_OK)
		return rc;
	s = px_session_by_id(&p->tab, id);
	if (!s) {
		snprintf(msg, msglen, "no session %u", id);
		return LS_RC_NOT_FOUND;
	}
	px_session_end(p, s, PX_END_DELETED);
	*result = json_pack("{s:I}", "session_id", (json_int_t)id);
	return LS_RC_OK;
}

static enum ls_rc ctl_set_fec(void *ctx, json_t *req, json_t **result, char *msg,
			      size_t msglen)
{
	struct px *p = ctx;
	struct dp_fec_setting fec;
	const struct dp_fec_setting *set;
	struct px_session *s;
	uint32_t id;
	enum ls_rc rc;

	if ((rc = arg_session_id(req, &id, msg, msglen)) != LS_RC_OK)
		return rc;
	if (!json_object_get(req, "fec")) {
		snprintf(msg, msglen, "fec is missing (a setting, or null to follow the client)");
		return LS_RC_INVALID;
	}
	if ((rc = arg_fec(req, &fec, &set, msg, msglen)) != LS_RC_OK)
		return rc;
	s = px_session_by_id(&p->tab, id);
	if (!s) {
		snprintf(msg, msglen, "no session %u", id);
		return LS_RC_NOT_FOUND;
	}
	if (px_fec_pin(s, set, ls_now_us()) < 0) {
		snprintf(msg, msglen, "out of memory");
		return LS_RC_INTERNAL;
	}
	*result = session_json(s, ls_now_us());
	return LS_RC_OK;
}

const struct ls_steer_cmd px_ctl_cmds[] = {
	{ "status", ctl_status, "version, uptime, bind address, auth, sessions and limits" },
	{ "stats", ctl_stats, "counters and drops; format: \"json\" (default) or \"prometheus\"" },
	{ "sessions", ctl_sessions, "every session with its client, flows and counters" },
	{ "session_add", ctl_session_add,
	  "add a session: session_id, key (32 hex digits), destinations, optional pps, bps, fec" },
	{ "session_del", ctl_session_del, "delete a session: session_id" },
	{ "set_fec", ctl_set_fec,
	  "a session's downstream FEC: session_id, fec (\"off\", \"auto\", \"K:M[:MS]\"; null: as the client asks)" },
	{ NULL, NULL, NULL },
};
