/* lightspeed-agent: /health and /metrics (http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "httpd.h"
#include "icmp.h"
#include "log.h"
#include "prom.h"
#include "pxlink.h"
#include "quic_server.h"
#include "util.h"

struct agent_http {
	struct ls_httpd *h;
};

/* The agent's own counters, as a table so JSON and Prometheus agree. */
struct counter_def {
	const char *name;
	size_t offset;
	const char *help;
};
#define ACTR(f, h) { #f, offsetof(struct agent_counters, f), h }
static const struct counter_def agent_counters[] = {
	ACTR(registrations, "Sessions issued to controllers."),
	ACTR(resumes, "Sessions taken over by a controller's new connection."),
	ACTR(disconnects, "DISCONNECT requests from controllers."),
	ACTR(refused_full, "Registrations refused at capacity (DISCONNECT reason 3)."),
	ACTR(refused_addr, "Registrations refused because the address holds max_sessions_per_addr "
			   "sessions (DISCONNECT reason 3)."),
	ACTR(refused_other, "Registrations refused otherwise (proxy unreachable, destination)."),
	ACTR(expired, "Sessions revoked after their connection stayed away past the grace."),
	ACTR(closed, "Sessions revoked by their connection's clean close."),
	ACTR(adopted, "Sessions found at the proxy after the agent or its link restarted."),
	ACTR(readded, "Sessions the proxy had lost, added again."),
	ACTR(proxy_connects, "Times the proxy's steering socket came up."),
	ACTR(resume_failures, "Resumes of an unknown session or with a wrong key."),
};

#define QCTR(f, h) { #f, offsetof(struct qs_stats, f), h }
static const struct counter_def quic_counters[] = {
	QCTR(accepted, "QUIC handshakes completed."),
	QCTR(refused, "New QUIC connections refused by a limit (total, per address, half-open)."),
	QCTR(retries, "Retry packets sent to validate a client's address."),
	QCTR(bad_tokens, "Initial packets whose Retry token did not verify."),
	QCTR(resets, "Stateless resets sent for connections this process does not know."),
	QCTR(handshake_failures, "QUIC handshakes that failed or timed out."),
	QCTR(requests, "Well-formed control requests."),
	QCTR(malformed, "Control frames that did not decode, and broken streams."),
	QCTR(unknown_types, "Control frames of a type the agent does not answer."),
	QCTR(too_long, "Control requests over the size limit."),
	QCTR(stream_timeouts, "Streams reset for being left open without a request."),
	QCTR(datagrams, "UDP datagrams received on the QUIC socket."),
	QCTR(dropped, "UDP datagrams for no connection and not an acceptable Initial."),
};

static uint64_t ctr_get(const void *base, const struct counter_def *d)
{
	uint64_t v;

	memcpy(&v, (const char *)base + d->offset, sizeof(v));
	return v;
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

json_t *http_health_json(struct agent *a, int *status)
{
	json_t *o = json_object(), *ctr = json_object(), *q = json_object(), *sess;
	struct qs_stats qs;
	struct icmp_stats is;
	uint32_t cap = ctl_capacity(a), act = ctl_active(a), detached = 0;
	bool proxy = a->px && pxlink_ready(a->px);

	for (const struct session *s = a->sess.head; s; s = s->next)
		detached += !s->owner && !s->revoking;
	memset(&qs, 0, sizeof(qs));
	if (a->qs)
		qs_get_stats(a->qs, &qs);
	icmp_get_stats(a->icmp, &is);
	*status = proxy ? 200 : 503;
	json_object_set_new(o, "status", json_string(proxy ? "ok" : "degraded"));
	if (!proxy)
		json_object_set_new(o, "reason",
				    json_string("the proxy's steering socket is not connected: "
						"no new registrations until it is"));
	json_object_set_new(o, "version", json_string(LS_VERSION));
	json_object_set_new(o, "node_id", json_string(a->conf.agent.node_id));
	json_object_set_new(o, "region", json_string(a->conf.agent.region));
	json_object_set_new(o, "uptime_s", jint((ls_now_us() - a->start_us) / 1000000u));
	json_object_set_new(o, "fingerprint", json_string(a->cert.fp_str));
	sess = json_pack("{s:I,s:I,s:I,s:I}", "active", (json_int_t)act, "detached",
			 (json_int_t)detached, "capacity", (json_int_t)cap, "load_pct",
			 (json_int_t)(act >= cap ? 100 : (uint64_t)act * 100 / cap));
	json_object_set_new(o, "sessions", sess);
	for (size_t i = 0; i < LS_ARRAY_LEN(agent_counters); i++)
		json_object_set_new(ctr, agent_counters[i].name,
				    jint(ctr_get(&a->ctr, &agent_counters[i])));
	json_object_set_new(q, "connections", jint(qs.conns));
	json_object_set_new(q, "handshakes", jint(qs.half_open));
	for (size_t i = 0; i < LS_ARRAY_LEN(quic_counters); i++)
		json_object_set_new(q, quic_counters[i].name, jint(ctr_get(&qs, &quic_counters[i])));
	json_object_set_new(ctr, "quic", q);
	json_object_set_new(ctr, "icmp", json_pack("{s:s,s:I,s:I,s:I,s:I}", "mode",
						   icmp_mode(a->icmp), "targets",
						   (json_int_t)is.targets, "sent", (json_int_t)is.sent,
						   "replies", (json_int_t)is.replies, "lost",
						   (json_int_t)is.lost));
	json_object_set_new(ctr, "proxy",
			    proxy && pxlink_stats(a->px) ? json_deep_copy(pxlink_stats(a->px))
							  : json_null());
	json_object_set_new(o, "counters", ctr);
	json_object_set_new(o, "proxy", json_pack("{s:b,s:s,s:I}", "connected", proxy, "socket",
						  a->conf.agent.proxy_socket, "data_port",
						  (json_int_t)(a->conf.agent.data_port
								       ? a->conf.agent.data_port
								       : (a->px ? pxlink_data_port(a->px) : 0))));
	return o;
}

static uint64_t stat_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void prom_labelled(struct ls_buf *b, const char *name, const char *key, const char *value,
			  uint64_t v)
{
	struct ls_buf lab;

	ls_buf_init(&lab);
	ls_prom_label(&lab, key, value);
	ls_prom_u64(b, name, lab.data, v);
	ls_buf_free(&lab);
}

/* The latency buckets of the node's leg, in microseconds (0.5 ms .. 1 s). */
static const uint64_t leg_bounds[] = { 500, 1000, 2500, 5000, 10000, 25000, 50000,
				       100000, 250000, 500000, 1000000 };

char *http_metrics_text(struct agent *a)
{
	json_t *st = a->px && pxlink_ready(a->px) ? pxlink_stats(a->px) : NULL;
	json_t *drops = st ? json_object_get(st, "drops") : NULL;
	json_t *fec = st ? json_object_get(st, "fec") : NULL;
	struct qs_stats qs;
	struct ls_buf b, lab;
	char name[128];
	const char *k;
	json_t *v;

	memset(&qs, 0, sizeof(qs));
	if (a->qs)
		qs_get_stats(a->qs, &qs);
	ls_buf_init(&b);
	ls_prom_header(&b, "lightspeed_relayed_packets_total", "counter",
		       "Game datagrams relayed by the proxy: up (to game servers), down (replies "
		       "into the tunnel).");
	prom_labelled(&b, "lightspeed_relayed_packets_total", "direction", "up",
		      stat_u64(st, "forwarded_packets"));
	prom_labelled(&b, "lightspeed_relayed_packets_total", "direction", "down",
		      stat_u64(st, "reply_packets"));
	ls_prom_header(&b, "lightspeed_relayed_bytes_total", "counter",
		       "Game payload bytes relayed by the proxy, by direction.");
	prom_labelled(&b, "lightspeed_relayed_bytes_total", "direction", "up",
		      stat_u64(st, "forwarded_bytes"));
	prom_labelled(&b, "lightspeed_relayed_bytes_total", "direction", "down",
		      stat_u64(st, "reply_bytes"));
	ls_prom_header(&b, "lightspeed_drops_total", "counter",
		       "Datagrams the proxy dropped, by reason (docs/protocol.md 1.7).");
	if (json_is_object(drops))
		json_object_foreach(drops, k, v)
			prom_labelled(&b, "lightspeed_drops_total", "reason", k, stat_u64(drops, k));
	ls_prom_header(&b, "lightspeed_fec_recoveries_total", "counter",
		       "Lost game packets the proxy rebuilt from FEC parity.");
	ls_prom_u64(&b, "lightspeed_fec_recoveries_total", NULL, stat_u64(fec, "recovered"));
	ls_prom_header(&b, "lightspeed_proxy_up", "gauge",
		       "1 when the agent is connected to the proxy's steering socket.");
	ls_prom_u64(&b, "lightspeed_proxy_up", NULL, st ? 1 : 0);

	ls_prom_header(&b, "lightspeed_sessions", "gauge", "Sessions this agent holds.");
	ls_prom_u64(&b, "lightspeed_sessions", NULL, ctl_active(a));
	ls_prom_header(&b, "lightspeed_sessions_capacity", "gauge",
		       "Sessions this agent issues at most.");
	ls_prom_u64(&b, "lightspeed_sessions_capacity", NULL, ctl_capacity(a));
	ls_prom_histogram(&b, "lightspeed_relay_latency_seconds",
			  "Round-trip time of the node's leg to the game servers its sessions use "
			  "(ICMP echo from the node).",
			  NULL, icmp_hist(a->icmp), leg_bounds, LS_ARRAY_LEN(leg_bounds));

	ls_prom_header(&b, "lightspeed_quic_connections", "gauge",
		       "QUIC control connections open (handshake done).");
	ls_prom_u64(&b, "lightspeed_quic_connections", NULL, qs.conns);
	ls_prom_header(&b, "lightspeed_quic_handshakes", "gauge", "QUIC handshakes in progress.");
	ls_prom_u64(&b, "lightspeed_quic_handshakes", NULL, qs.half_open);
	for (size_t i = 0; i < LS_ARRAY_LEN(quic_counters); i++) {
		snprintf(name, sizeof(name), "lightspeed_quic_%s_total", quic_counters[i].name);
		ls_prom_header(&b, name, "counter", quic_counters[i].help);
		ls_prom_u64(&b, name, NULL, ctr_get(&qs, &quic_counters[i]));
	}
	for (size_t i = 0; i < LS_ARRAY_LEN(agent_counters); i++) {
		snprintf(name, sizeof(name), "lightspeed_agent_%s_total", agent_counters[i].name);
		ls_prom_header(&b, name, "counter", agent_counters[i].help);
		ls_prom_u64(&b, name, NULL, ctr_get(&a->ctr, &agent_counters[i]));
	}
	ls_prom_header(&b, "lightspeed_agent_uptime_seconds", "gauge", "Seconds since start.");
	ls_prom_u64(&b, "lightspeed_agent_uptime_seconds", NULL, (ls_now_us() - a->start_us) / 1000000u);
	ls_prom_header(&b, "lightspeed_agent_info", "gauge",
		       "The agent's version, node id, region and certificate fingerprint.");
	ls_buf_init(&lab);
	ls_prom_label(&lab, "version", LS_VERSION);
	ls_buf_append(&lab, ",", 1);
	ls_prom_label(&lab, "node_id", a->conf.agent.node_id);
	ls_buf_append(&lab, ",", 1);
	ls_prom_label(&lab, "region", a->conf.agent.region);
	ls_buf_append(&lab, ",", 1);
	ls_prom_label(&lab, "fingerprint", a->cert.fp_str);
	ls_prom_u64(&b, "lightspeed_agent_info", lab.data, 1);
	ls_buf_free(&lab);
	if (b.oom) {
		ls_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static enum ls_rc route_health(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = http_health_json(ctx, &rep->status);
	return LS_RC_OK;
}

static enum ls_rc route_metrics(void *ctx, const struct ls_httpd_req *req,
				struct ls_httpd_reply *rep)
{
	char *text = http_metrics_text(ctx);

	(void)req;
	if (!text) {
		snprintf(rep->msg, sizeof(rep->msg), "out of memory");
		return LS_RC_INTERNAL;
	}
	rep->text = text;
	rep->text_len = strlen(text);
	rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return LS_RC_OK;
}

static const struct ls_httpd_route routes[] = {
	{ "GET", "/health", route_health, NULL, NULL, false },
	{ "GET", "/metrics", route_metrics, NULL, NULL, false },
	{ NULL, NULL, NULL, NULL, NULL, false },
};

struct agent_http *http_open(struct agent *a, char *err, size_t errlen)
{
	struct agent_http *h = calloc(1, sizeof(*h));
	char listen[LS_ADDRSTRLEN];
	struct ls_httpd_conf hc = {
		.name = "agent HTTP",
		.listen = ls_addr_fmt(&a->conf.agent.http, listen),
		.token = a->conf.agent.http_token[0] ? a->conf.agent.http_token : NULL,
		.routes = routes,
		.ctx = a,
		.max_conns = 32,
	};

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->h = ls_httpd_open(&hc, err, errlen);
	if (!h->h) {
		free(h);
		return NULL;
	}
	if (ls_httpd_attach_uv(h->h, a->loop) != 0) {
		snprintf(err, errlen, "agent HTTP: cannot attach to the loop");
		ls_httpd_close(h->h);
		free(h);
		return NULL;
	}
	return h;
}

void http_close(struct agent_http *h)
{
	if (!h)
		return;
	ls_httpd_close(h->h);
	free(h);
}

unsigned http_port(const struct agent_http *h)
{
	return ls_httpd_port(h->h);
}
