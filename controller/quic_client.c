/* lightspeed-controller: the control connection to one node's agent (quic_client.h). */
#include "quic_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "quic.h"
#include "util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define FULL_RETRY_MS 10000
#define MAX_REQ LS_QUIC_MAX_STREAMS

struct req {
	int64_t sid;          /* -1: free */
	uint8_t type;
};

struct quic_client {
	uv_loop_t *loop;
	struct quic_client_conf conf;
	const struct quic_client_ops *ops;
	void *ctx;
	enum quic_client_state state;
	char err[256];
	int fd;
	struct sockaddr_in local;
	uv_poll_t poll;
	uv_timer_t retry;      /* reconnect */
	uv_timer_t tick;       /* PING, SERVER_INFO, PEERS */
	unsigned handles;
	struct ls_quic_tls *tls;
	struct ls_quic_conn *qc;
	uint32_t backoff_ms;
	bool has_session;
	struct quic_client_session s;
	struct req req[MAX_REQ];
	bool ping_out;
	uint64_t srtt_us;
	uint64_t last_info_us, last_peers_us;
	uint8_t fp[LS_CTL_FP_LEN];
	bool has_fp;
	bool pin_refused;
	bool closing;          /* quic_client_close: memory going */
	bool stopped;          /* quic_client_disconnect: no reconnect */
	struct ls_ratelog rl;
};

const char *quic_client_state_name(enum quic_client_state s)
{
	switch (s) {
	case QC_CONNECTING: return "connecting";
	case QC_REGISTERED: return "registered";
	case QC_BACKOFF: return "backoff";
	case QC_PIN_REFUSED: return "pin_refused";
	case QC_FULL: return "full";
	case QC_CLOSED: return "closed";
	}
	return "?";
}

static void set_err(struct quic_client *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct quic_client *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
}

/* ---- requests ------------------------------------------------------------------------ */

static int send_req(struct quic_client *q, const struct ls_ctl_msg *m)
{
	uint8_t buf[LS_CTL_MAX_REQUEST];
	long n = ls_ctl_encode(m, buf, sizeof(buf));
	int64_t sid;

	if (n < 0 || !q->qc)
		return -1;
	for (int i = 0; i < MAX_REQ; i++) {
		if (q->req[i].sid != -1)
			continue;
		if (ls_quic_conn_request(q->qc, buf, (size_t)n, &sid) != 0)
			return -1;
		q->req[i].sid = sid;
		q->req[i].type = m->type;
		return 0;
	}
	return -1;
}

static struct req *req_find(struct quic_client *q, int64_t sid)
{
	for (int i = 0; i < MAX_REQ; i++)
		if (q->req[i].sid == sid)
			return &q->req[i];
	return NULL;
}

static void send_register(struct quic_client *q)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_REGISTER;
	m.u.reg.version = LS_CTL_VERSION;
	m.u.reg.game_id = q->conf.game_id;
	m.u.reg.ndests = q->conf.ndests;
	memcpy(m.u.reg.dests, q->conf.dests, q->conf.ndests * sizeof(q->conf.dests[0]));
	if (q->has_session) {
		m.u.reg.resume = true;
		m.u.reg.session_id = q->s.session_id;
		memcpy(m.u.reg.key, q->s.key, LS_CTL_KEY_LEN);
	}
	if (send_req(q, &m) != 0)
		set_err(q, "cannot send REGISTER");
	memset(m.u.reg.key, 0, sizeof(m.u.reg.key));
}

static void send_query(struct quic_client *q, uint8_t type)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.query = true;
	send_req(q, &m);
}

static void send_ping(struct quic_client *q)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_PING;
	m.u.ping.client_ts_us = ls_now_us();
	if (send_req(q, &m) == 0)
		q->ping_out = true;
}

static void send_disconnect(struct quic_client *q)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_DISCONNECT;
	m.u.disc.reason = LS_CTL_R_NORMAL;
	send_req(q, &m);
}

/* ---- connection --------------------------------------------------------------------- */

static void connect_now(struct quic_client *q);

static void on_retry(uv_timer_t *t)
{
	connect_now(t->data);
}

static void schedule(struct quic_client *q, uint32_t ms)
{
	uv_timer_start(&q->retry, on_retry, ms, 0);
}

static void backoff(struct quic_client *q)
{
	schedule(q, q->backoff_ms);
	q->backoff_ms = q->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : q->backoff_ms * 2;
}

static void lost(struct quic_client *q, enum quic_client_state st, const char *why)
{
	q->state = st;
	if (!q->closing && q->ops->lost)
		q->ops->lost(q->ctx, st, why);
}

static int on_verify(struct ls_quic_conn *qc, const uint8_t fp[LS_CTL_FP_LEN])
{
	struct quic_client *q = ls_quic_conn_data(qc);
	char got[LS_CTL_FP_STRLEN], want[LS_CTL_FP_STRLEN];
	const uint8_t *pinned;

	memcpy(q->fp, fp, LS_CTL_FP_LEN);
	q->has_fp = true;
	switch (pin_check(q->conf.pins, q->conf.name, q->conf.has_pin ? q->conf.pin : NULL, fp)) {
	case PIN_OK:
		return 0;
	case PIN_NEW:
		ls_ctl_fp_fmt(fp, got);
		ls_info("node %s: certificate %s trusted on first use (kept in known_nodes)",
			q->conf.name, got);
		return 0;
	case PIN_MISMATCH:
		break;
	}
	pinned = q->conf.has_pin ? q->conf.pin : pin_get(q->conf.pins, q->conf.name);
	ls_ctl_fp_fmt(fp, got);
	if (pinned)
		ls_ctl_fp_fmt(pinned, want);
	else
		snprintf(want, sizeof(want), "(none)");
	q->pin_refused = true;
	set_err(q, "certificate %s is not the pinned %s: refused (lsctl trust %s accepts it)",
		got, want, q->conf.name);
	ls_err("node %s: CERTIFICATE CHANGED: the agent at %s presented %s, pinned is %s. "
	       "Refused; the node is down until an operator runs 'lsctl trust %s'%s",
	       q->conf.name, inet_ntoa(q->conf.control.sin_addr), got, want, q->conf.name,
	       q->conf.has_pin ? " (or changes fingerprint= in the configuration)" : "");
	return -1;
}

static void on_established(struct ls_quic_conn *qc)
{
	struct quic_client *q = ls_quic_conn_data(qc);

	send_register(q);
}

static void got_ack(struct quic_client *q, const struct ls_ctl_msg *m)
{
	bool resumed = q->has_session && q->s.session_id == m->u.ack.session_id &&
		       memcmp(q->s.key, m->u.ack.key, LS_CTL_KEY_LEN) == 0;

	q->s.session_id = m->u.ack.session_id;
	memcpy(q->s.key, m->u.ack.key, LS_CTL_KEY_LEN);
	q->s.data_port = m->u.ack.data_port;
	memcpy(q->s.node_id, m->u.ack.node_id, sizeof(q->s.node_id));
	memcpy(q->s.region, m->u.ack.region, sizeof(q->s.region));
	q->s.ndests = m->u.ack.ndests;
	memcpy(q->s.dests, m->u.ack.dests, sizeof(q->s.dests));
	q->s.resumed = resumed;
	q->has_session = true;
	q->state = QC_REGISTERED;
	q->backoff_ms = BACKOFF_MIN_MS;
	q->err[0] = '\0';
	if (q->ops->registered)
		q->ops->registered(q->ctx, &q->s);
	/* Measurements at once, not a tick later. */
	send_ping(q);
	send_query(q, LS_CTL_SERVER_INFO);
	q->last_info_us = ls_now_us();
	if (q->conf.peers_ms != UINT32_MAX) {
		send_query(q, LS_CTL_PEERS);
		q->last_peers_us = q->last_info_us;
	}
}

static void drop_session(struct quic_client *q, const char *why)
{
	bool had = q->has_session;

	q->has_session = false;
	memset(&q->s, 0, sizeof(q->s));
	if (had && !q->closing && q->ops->revoked)
		q->ops->revoked(q->ctx, why);
}

static void answer_register(struct quic_client *q, const struct ls_ctl_msg *m)
{
	switch (m->type) {
	case LS_CTL_REGISTER_ACK:
		got_ack(q, m);
		return;
	case LS_CTL_DISCONNECT:
		set_err(q, "the node refused: %s (DISCONNECT %u)", ls_ctl_reason_name(m->u.disc.reason),
			m->u.disc.reason);
		ls_warn_rl(&q->rl, "node %s: %s", q->conf.name, q->err);
		q->state = m->u.disc.reason == LS_CTL_R_FULL ? QC_FULL : QC_BACKOFF;
		ls_quic_conn_close(q->qc, LS_CTL_R_NORMAL, "refused");
		return;
	case LS_CTL_ERROR:
		if (m->u.err.code == LS_CTL_E_UNKNOWN_SESSION && q->has_session) {
			ls_info("node %s: the agent no longer holds session %u: registering anew",
				q->conf.name, q->s.session_id);
			drop_session(q, "the agent no longer holds the session");
			send_register(q);
			return;
		}
		set_err(q, "REGISTER refused: %s (%s)", m->u.err.msg, ls_ctl_code_name(m->u.err.code));
		ls_warn_rl(&q->rl, "node %s: %s", q->conf.name, q->err);
		ls_quic_conn_close(q->qc, LS_CTL_R_NORMAL, "refused");
		return;
	}
	set_err(q, "unexpected %s to REGISTER", ls_ctl_type_name(m->type));
	ls_quic_conn_close(q->qc, LS_CTL_R_NORMAL, "protocol");
}

static void on_frame(struct ls_quic_conn *qc, int64_t sid, const uint8_t *f, size_t n)
{
	struct quic_client *q = ls_quic_conn_data(qc);
	struct req *r = req_find(q, sid);
	struct ls_ctl_msg m;
	uint8_t type;
	int rc;

	if (!r)
		return;
	type = r->type;
	r->sid = -1;
	rc = ls_ctl_decode(f, n, LS_CTL_TO_CONTROLLER, &m);
	if (rc != LS_CTL_OK) {
		ls_warn_rl(&q->rl, "node %s: a %s answer did not decode (%s)", q->conf.name,
			   ls_ctl_type_name(type), ls_ctl_strerror(rc));
		if (type == LS_CTL_REGISTER) {
			set_err(q, "the REGISTER answer did not decode");
			ls_quic_conn_close(q->qc, LS_CTL_R_NORMAL, "protocol");
		}
		return;
	}
	switch (type) {
	case LS_CTL_REGISTER:
		answer_register(q, &m);
		break;
	case LS_CTL_PING:
		q->ping_out = false;
		if (m.type == LS_CTL_PONG && m.u.pong.client_ts_us <= ls_now_us()) {
			uint64_t rtt = ls_now_us() - m.u.pong.client_ts_us;

			q->srtt_us = q->srtt_us ? (7 * q->srtt_us + rtt) / 8 : rtt;
			if (q->ops->rtt)
				q->ops->rtt(q->ctx, rtt);
		}
		break;
	case LS_CTL_SERVER_INFO:
		if (m.type == LS_CTL_SERVER_INFO && q->ops->info)
			q->ops->info(q->ctx, &m);
		break;
	case LS_CTL_PEERS:
		if (m.type == LS_CTL_PEERS && q->ops->peers)
			q->ops->peers(q->ctx, &m);
		break;
	case LS_CTL_ALLOW:
		if (m.type == LS_CTL_ALLOW_ACK) {
			q->s.ndests = m.u.allow_ack.ndests;
			memcpy(q->s.dests, m.u.allow_ack.dests, sizeof(q->s.dests));
			ls_info("node %s: the agent allows %u destinations now", q->conf.name,
				q->s.ndests);
		} else if (m.type == LS_CTL_ERROR) {
			set_err(q, "ALLOW refused: %s (%s)", m.u.err.msg, ls_ctl_code_name(m.u.err.code));
			ls_warn_rl(&q->rl, "node %s: %s", q->conf.name, q->err);
		}
		break;
	case LS_CTL_DISCONNECT:
		/* Our revocation is done at the proxy: now the connection goes too (and
		 * comes back with a new session unless we stopped). */
		drop_session(q, "disconnected");
		ls_quic_conn_close(q->qc, LS_CTL_R_NORMAL, q->stopped ? "bye" : "renew");
		break;
	}
}

static void on_stream_closed(struct ls_quic_conn *qc, int64_t sid)
{
	struct quic_client *q = ls_quic_conn_data(qc);
	struct req *r = req_find(q, sid);

	if (r) {
		if (r->type == LS_CTL_PING)
			q->ping_out = false;
		r->sid = -1;
	}
}

static void on_closed(struct ls_quic_conn *qc, const struct ls_quic_end *end)
{
	struct quic_client *q = ls_quic_conn_data(qc);
	char why[300];

	for (int i = 0; i < MAX_REQ; i++)
		q->req[i].sid = -1;
	q->ping_out = false;
	uv_timer_stop(&q->tick);
	if (q->closing)
		return;
	if (q->stopped) {
		lost(q, QC_CLOSED, "disconnected");
		return;
	}
	if (q->pin_refused) {
		lost(q, QC_PIN_REFUSED, q->err);
		return;
	}
	snprintf(why, sizeof(why), "%s%s%s%s", ls_quic_end_name(end->kind),
		 end->reason[0] ? " (" : "", end->reason, end->reason[0] ? ")" : "");
	if (!q->err[0] || q->state == QC_REGISTERED)
		set_err(q, "connection %s", why);
	if (q->state == QC_FULL) {
		lost(q, QC_FULL, q->err);
		schedule(q, FULL_RETRY_MS);
		return;
	}
	if (end->app && end->code == LS_CTL_R_SHUTDOWN)
		ls_info("node %s: the agent is shutting down; reconnecting", q->conf.name);
	lost(q, QC_BACKOFF, q->err);
	/* A session gone because of a renew registers again at once. */
	backoff(q);
}

static void on_released(struct ls_quic_conn *qc)
{
	struct quic_client *q = ls_quic_conn_data(qc);

	if (q->qc == qc)
		q->qc = NULL;
}

static const struct ls_quic_ops conn_ops = {
	.established = on_established,
	.frame = on_frame,
	.stream_closed = on_stream_closed,
	.verify_peer = on_verify,
	.closed = on_closed,
	.released = on_released,
};

static void on_tick(uv_timer_t *t)
{
	struct quic_client *q = t->data;
	uint64_t now = ls_now_us();

	if (!q->qc || q->state != QC_REGISTERED)
		return;
	if (!q->ping_out)
		send_ping(q);
	if (now - q->last_info_us >= (uint64_t)q->conf.info_ms * 1000u) {
		send_query(q, LS_CTL_SERVER_INFO);
		q->last_info_us = now;
	}
	if (q->conf.peers_ms != UINT32_MAX &&
	    now - q->last_peers_us >= (uint64_t)q->conf.peers_ms * 1000u) {
		send_query(q, LS_CTL_PEERS);
		q->last_peers_us = now;
	}
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct quic_client *q = p->data;
	uint8_t buf[LS_QUIC_RX_BUF];

	(void)events;
	if (status < 0) {
		/* A connected UDP socket reports the ICMP "port unreachable" of an agent that
		 * is down as a socket error, and libuv stops the poll on it: take the error
		 * and keep listening (the agent coming back sends a stateless reset). */
		int e = 0;
		socklen_t el = sizeof(e);

		getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		uv_poll_start(&q->poll, UV_READABLE, on_readable);
		return;
	}
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(q->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fl);

		if (n < 0)
			break;
		if ((size_t)n > sizeof(buf) || !q->qc)
			continue;
		ls_quic_conn_input(q->qc, (struct sockaddr *)&q->local, sizeof(q->local),
				   (struct sockaddr *)&from, sizeof(from), buf, (size_t)n);
	}
}

static void connect_now(struct quic_client *q)
{
	char err[200];

	if (q->closing || q->stopped || q->pin_refused)
		return;
	if (q->qc) {
		ls_quic_conn_destroy(q->qc);
		q->qc = NULL;
	}
	q->state = QC_CONNECTING;
	struct ls_quic_conf c = {
		.loop = q->loop, .ops = &conn_ops, .data = q, .tls = q->tls, .fd = q->fd,
		.local = (struct sockaddr *)&q->local, .local_len = sizeof(q->local),
		.remote = (struct sockaddr *)&q->conf.control, .remote_len = sizeof(q->conf.control),
		.idle_timeout_ms = q->conf.idle_timeout_ms,
		.handshake_timeout_ms = q->conf.handshake_timeout_ms,
		.max_stream_rx = LS_CTL_MAX_FRAME,
	};
	q->qc = ls_quic_conn_client(&c, err, sizeof(err));
	if (!q->qc) {
		set_err(q, "%s", err);
		lost(q, QC_BACKOFF, q->err);
		backoff(q);
		return;
	}
	uv_timer_start(&q->tick, on_tick, q->conf.ping_ms, q->conf.ping_ms);
}

struct quic_client *quic_client_open(uv_loop_t *loop, const struct quic_client_conf *conf,
				     const struct quic_client_ops *ops, void *ctx, char *err,
				     size_t errlen)
{
	struct quic_client *q = calloc(1, sizeof(*q));
	socklen_t len = sizeof(q->local);

	if (!q) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->loop = loop;
	q->conf = *conf;
	if (!q->conf.ping_ms)
		q->conf.ping_ms = 1000;
	if (!q->conf.info_ms)
		q->conf.info_ms = 2000;
	if (!q->conf.peers_ms)
		q->conf.peers_ms = 30000;
	if (!q->conf.idle_timeout_ms)
		q->conf.idle_timeout_ms = 15000;
	if (!q->conf.handshake_timeout_ms)
		q->conf.handshake_timeout_ms = 3000;
	q->ops = ops;
	q->ctx = ctx;
	q->backoff_ms = BACKOFF_MIN_MS;
	for (int i = 0; i < MAX_REQ; i++)
		q->req[i].sid = -1;
	if (conf->has_session) {
		q->has_session = true;
		q->s.session_id = conf->session_id;
		memcpy(q->s.key, conf->key, LS_CTL_KEY_LEN);
	}
	q->tls = ls_quic_tls_client(err, errlen);
	if (!q->tls) {
		free(q);
		return NULL;
	}
	/* One socket for the client's life: reconnects are new QUIC connections on it. */
	q->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&q->conf.control, sizeof(q->conf.control)) != 0 ||
	    getsockname(q->fd, (struct sockaddr *)&q->local, &len) != 0) {
		snprintf(err, errlen, "node %s: UDP socket: %s", conf->name, strerror(errno));
		if (q->fd >= 0)
			close(q->fd);
		ls_quic_tls_free(q->tls);
		free(q);
		return NULL;
	}
	uv_poll_init(loop, &q->poll, q->fd);
	q->poll.data = q;
	uv_poll_start(&q->poll, UV_READABLE, on_readable);
	uv_timer_init(loop, &q->retry);
	q->retry.data = q;
	uv_timer_init(loop, &q->tick);
	q->tick.data = q;
	q->handles = 3;
	schedule(q, 0);
	return q;
}

static void handle_closed(uv_handle_t *h)
{
	struct quic_client *q = h->data;

	if (--q->handles > 0)
		return;
	close(q->fd);
	ls_quic_tls_free(q->tls);
	memset(&q->s, 0, sizeof(q->s));
	free(q);
}

static void finish_close(struct quic_client *q)
{
	if (q->qc) {
		ls_quic_conn_destroy(q->qc);
		q->qc = NULL;
	}
	uv_close((uv_handle_t *)&q->poll, handle_closed);
	uv_close((uv_handle_t *)&q->retry, handle_closed);
	uv_close((uv_handle_t *)&q->tick, handle_closed);
}

void quic_client_close(struct quic_client *q, bool revoke)
{
	if (!q || q->closing)
		return;
	q->closing = true;
	q->state = QC_CLOSED;
	uv_timer_stop(&q->retry);
	uv_timer_stop(&q->tick);
	if (revoke && q->qc && ls_quic_conn_established(q->qc)) {
		/* Best effort, without waiting: DISCONNECT and a clean close leave in the
		 * same flight (the agent revokes on either). */
		if (q->has_session)
			send_disconnect(q);
		ls_quic_conn_close(q->qc, LS_CTL_R_NORMAL, "node removed");
	}
	finish_close(q);
}

enum quic_client_state quic_client_state(const struct quic_client *q)
{
	return q->state;
}

const char *quic_client_error(const struct quic_client *q)
{
	return q->err;
}

const struct quic_client_session *quic_client_session(const struct quic_client *q)
{
	return q->has_session ? &q->s : NULL;
}

const uint8_t *quic_client_fingerprint(const struct quic_client *q)
{
	return q->has_fp ? q->fp : NULL;
}

uint64_t quic_client_rtt_us(const struct quic_client *q)
{
	return q->srtt_us;
}

int quic_client_trust(struct quic_client *q, char *err, size_t errlen)
{
	if (q->conf.has_pin) {
		snprintf(err, errlen, "node %s is pinned by its configuration (fingerprint=): "
			 "change it there", q->conf.name);
		return -1;
	}
	if (pin_trust(q->conf.pins, q->conf.name, NULL, err, errlen) != 0)
		return -1;
	ls_info("node %s: the operator trusted its new certificate: connecting", q->conf.name);
	q->pin_refused = false;
	q->err[0] = '\0';
	q->backoff_ms = BACKOFF_MIN_MS;
	schedule(q, 0);
	return 0;
}

void quic_client_poll(struct quic_client *q)
{
	if (q->qc && q->state == QC_REGISTERED) {
		send_query(q, LS_CTL_SERVER_INFO);
		if (q->conf.peers_ms != UINT32_MAX)
			send_query(q, LS_CTL_PEERS);
	}
}

void quic_client_renew(struct quic_client *q)
{
	if (q->qc && q->state == QC_REGISTERED && q->has_session)
		send_disconnect(q);
}

void quic_client_disconnect(struct quic_client *q)
{
	q->stopped = true;
	uv_timer_stop(&q->retry);
	if (q->qc && q->state == QC_REGISTERED && q->has_session) {
		send_disconnect(q);
		return;
	}
	drop_session(q, "disconnected");
	if (q->qc)
		ls_quic_conn_close(q->qc, LS_CTL_R_NORMAL, "bye");
	q->state = QC_CLOSED;
}

int quic_client_allow(struct quic_client *q, const struct ls_dest *d)
{
	struct ls_ctl_msg m;

	for (uint8_t i = 0; i < q->s.ndests; i++)
		if (memcmp(&q->s.dests[i], d, sizeof(*d)) == 0)
			return 0;
	if (q->conf.ndests < LS_CTL_MAX_DESTS) {
		bool known = false;

		for (uint8_t i = 0; i < q->conf.ndests; i++)
			known |= memcmp(&q->conf.dests[i], d, sizeof(*d)) == 0;
		if (!known)
			q->conf.dests[q->conf.ndests++] = *d; /* asked for again at a new REGISTER */
	}
	if (!q->qc || q->state != QC_REGISTERED)
		return 0;
	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_ALLOW;
	m.u.allow = *d;
	return send_req(q, &m);
}
