/* The QUIC control plane on loopback, in one process: the agent's endpoint
 * (agent/quic_server.c) with a real certificate made by agent/cert.c, and the
 * controller's client (controller/quic_client.c) or a bare connection of the shared
 * layer (shared/quic.c). Checks the handshake with a pinned fingerprint, a wrong pin
 * refused, another application protocol refused in the handshake, trust on first use
 * and an operator's trust, resume of a held session, every
 * kind of bad stream answered and counted while the connection stays usable, and a
 * flood of half-open connections held to one per address by Retry while a
 * well-behaved client still gets in. The request handler here is a stand-in for the
 * agent's ctl.c (which the end-to-end tests run with a real proxy). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/cert.h"
#include "../../controller/pin.h"
#include "quic.h"
#include "../../controller/quic_client.h"
#include "../../agent/quic_server.h"
#include "statefile.h"
#include "util.h"

#include "unit.h"

static uv_loop_t *loop;
static uv_timer_t wake;
static char tmpdir[256];

static void on_wake(uv_timer_t *t)
{
	(void)t;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ls-unit-quic-%d-XXXXXX", getpid());
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
	loop = calloc(1, sizeof(*loop));
	uv_loop_init(loop);
	uv_timer_init(loop, &wake);
	uv_timer_start(&wake, on_wake, 5, 5);
}

static void teardown(void)
{
	char cmd[300];

	uv_close((uv_handle_t *)&wake, NULL);
	for (int i = 0; i < 50; i++)
		uv_run(loop, UV_RUN_NOWAIT);
	CU_ASSERT_EQUAL(uv_loop_close(loop), 0); /* a leaked handle fails the test */
	free(loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

static bool run_until(bool (*pred)(void *), void *arg, int ms)
{
	uint64_t end = ls_now_us() + (uint64_t)ms * 1000u;

	while (!pred(arg)) {
		if (ls_now_us() > end)
			return false;
		uv_run(loop, UV_RUN_ONCE);
	}
	return true;
}

static void run_for(int ms)
{
	uint64_t end = ls_now_us() + (uint64_t)ms * 1000u;

	while (ls_now_us() < end)
		uv_run(loop, UV_RUN_ONCE);
}

/* ---- a stand-in agent --------------------------------------------------------------- */

static const uint8_t test_key[LS_CTL_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static unsigned registers, resumes;

static void fake_request(struct qs *s, struct ls_quic_conn *qc, int64_t sid, const struct ls_ctl_msg *m)
{
	struct ls_ctl_msg a;

	memset(&a, 0, sizeof(a));
	switch (m->type) {
	case LS_CTL_PING:
		a.type = LS_CTL_PONG;
		a.u.pong.client_ts_us = m->u.ping.client_ts_us;
		a.u.pong.server_ts_us = ls_now_us();
		break;
	case LS_CTL_REGISTER:
		if (m->u.reg.resume && (m->u.reg.session_id != 0x1234 ||
					memcmp(m->u.reg.key, test_key, LS_CTL_KEY_LEN) != 0)) {
			ls_ctl_error(&a, LS_CTL_E_UNKNOWN_SESSION, "no such session");
			break;
		}
		registers++;
		resumes += m->u.reg.resume;
		a.type = LS_CTL_REGISTER_ACK;
		a.u.ack.session_id = 0x1234;
		strcpy(a.u.ack.node_id, "test-node");
		strcpy(a.u.ack.region, "lo");
		memcpy(a.u.ack.key, test_key, LS_CTL_KEY_LEN);
		a.u.ack.data_port = 4434;
		a.u.ack.ndests = m->u.reg.ndests;
		memcpy(a.u.ack.dests, m->u.reg.dests, sizeof(a.u.ack.dests));
		break;
	case LS_CTL_SERVER_INFO:
		a.type = LS_CTL_SERVER_INFO;
		a.u.info.load_pct = 10;
		a.u.info.active = 1;
		a.u.info.capacity = 10;
		a.u.info.nlegs = 1;
		a.u.info.legs[0].ip = 0x7f000001;
		a.u.info.legs[0].rtt_us = 42;
		break;
	default:
		ls_ctl_error(&a, LS_CTL_E_UNKNOWN_TYPE, "not here");
	}
	qs_answer(s, qc, sid, &a);
}

static const struct qs_ops fake_ops = { .request = fake_request };

static struct qs *server(const char *sub, uint16_t port, struct cert *c, uint32_t retry_after,
			 uint32_t per_addr_conns)
{
	char dir[400], err[300];
	struct qs *s;

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, sub);
	CU_ASSERT_EQUAL_FATAL(cert_load(dir, "test", c, err, sizeof(err)), 0);
	struct qs_conf qc = {
		.cert_file = c->cert_path, .key_file = c->key_path, .secret = c->secret,
		.idle_timeout_ms = 5000, .handshake_timeout_ms = 600, .stream_timeout_ms = 300,
		.max_conns = 64, .max_conns_per_addr = per_addr_conns, .max_half_open = 16,
		.max_half_open_per_addr = 4, .retry_after = retry_after,
	};
	qc.listen.sin_family = AF_INET;
	qc.listen.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	qc.listen.sin_port = htons(port);
	s = qs_open(loop, &qc, &fake_ops, NULL, err, sizeof(err));
	if (!s)
		fprintf(stderr, "qs_open: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

/* ---- the controller's client ------------------------------------------------------- */

struct watch {
	unsigned registered, lost, revoked, rtts, infos;
	enum quic_client_state last_lost;
	struct quic_client_session s;
	struct ls_ctl_msg info;
};

static void w_registered(void *ctx, const struct quic_client_session *s)
{
	struct watch *w = ctx;

	w->registered++;
	w->s = *s;
}

static void w_lost(void *ctx, enum quic_client_state st, const char *why)
{
	struct watch *w = ctx;

	(void)why;
	w->lost++;
	w->last_lost = st;
}

static void w_revoked(void *ctx, const char *why)
{
	(void)why;
	((struct watch *)ctx)->revoked++;
}

static void w_rtt(void *ctx, uint64_t rtt)
{
	(void)rtt;
	((struct watch *)ctx)->rtts++;
}

static void w_info(void *ctx, const struct ls_ctl_msg *m)
{
	struct watch *w = ctx;

	w->infos++;
	w->info = *m;
}

static const struct quic_client_ops watch_ops = {
	.registered = w_registered, .lost = w_lost, .revoked = w_revoked, .rtt = w_rtt,
	.info = w_info,
};

static struct quic_client *client(const char *name, uint16_t port, const uint8_t *pin,
				  struct pin_store *pins, struct watch *w)
{
	struct quic_client_conf c;
	char err[300];
	struct quic_client *q;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.control.sin_family = AF_INET;
	c.control.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c.control.sin_port = htons(port);
	if (pin) {
		c.has_pin = true;
		memcpy(c.pin, pin, LS_CTL_FP_LEN);
	}
	c.pins = pins;
	c.game_id = 2;
	c.ndests = 1;
	ls_dest_parse("127.0.0.1:27015", &c.dests[0]);
	c.ping_ms = 50;
	c.info_ms = 100;
	c.peers_ms = UINT32_MAX;
	q = quic_client_open(loop, &c, &watch_ops, w, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	return q;
}

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd);
	return ntohs(a.sin_port);
}

static bool is_registered(void *w) { return ((struct watch *)w)->registered > 0; }
static bool has_rtt_and_info(void *w) { return ((struct watch *)w)->rtts >= 3 && ((struct watch *)w)->infos >= 1; }
static bool was_lost(void *w) { return ((struct watch *)w)->lost > 0; }

static void test_pinned_handshake(void)
{
	struct cert c;
	struct watch w = { 0 };
	struct qs_stats st;
	char err[300];
	uint16_t port = free_port();
	struct pin_store *pins;

	setup();
	struct qs *s = server("a", port, &c, 16, 8);
	pins = pin_open(NULL, err, sizeof(err));
	struct quic_client *q = client("a", port, c.fp, pins, &w);

	CU_ASSERT_FATAL(run_until(is_registered, &w, 5000));
	CU_ASSERT_EQUAL(quic_client_state(q), QC_REGISTERED);
	CU_ASSERT_EQUAL(w.s.session_id, 0x1234);
	CU_ASSERT_EQUAL(memcmp(w.s.key, test_key, LS_CTL_KEY_LEN), 0);
	CU_ASSERT_EQUAL(w.s.data_port, 4434);
	CU_ASSERT_STRING_EQUAL(w.s.node_id, "test-node");
	CU_ASSERT_EQUAL(w.s.ndests, 1);
	CU_ASSERT_EQUAL(memcmp(quic_client_fingerprint(q), c.fp, LS_CTL_FP_LEN), 0);
	CU_ASSERT(run_until(has_rtt_and_info, &w, 3000));
	CU_ASSERT(quic_client_rtt_us(q) > 0);
	CU_ASSERT_EQUAL(w.info.u.info.nlegs, 1);
	CU_ASSERT_EQUAL(w.info.u.info.legs[0].rtt_us, 42);
	qs_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.accepted, 1);
	CU_ASSERT_EQUAL(st.conns, 1);
	CU_ASSERT(st.requests >= 4);
	CU_ASSERT_EQUAL(st.malformed, 0);
	/* The key file is private. */
	struct stat sb;
	CU_ASSERT_EQUAL(stat(c.key_path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(stat(c.cert_path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	quic_client_close(q, false);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	pin_close(pins);
	teardown();
}

static void test_wrong_pin_refused(void)
{
	struct cert c;
	struct watch w = { 0 };
	struct qs_stats st;
	uint8_t wrong[LS_CTL_FP_LEN];
	char err[300];
	uint16_t port = free_port();

	setup();
	struct qs *s = server("b", port, &c, 16, 8);
	struct pin_store *pins = pin_open(NULL, err, sizeof(err));
	memcpy(wrong, c.fp, sizeof(wrong));
	wrong[0] ^= 1;
	struct quic_client *q = client("b", port, wrong, pins, &w);

	CU_ASSERT_FATAL(run_until(was_lost, &w, 5000));
	CU_ASSERT_EQUAL(w.last_lost, QC_PIN_REFUSED);
	CU_ASSERT_EQUAL(quic_client_state(q), QC_PIN_REFUSED);
	CU_ASSERT(strstr(quic_client_error(q), "not the pinned") != NULL);
	run_for(500);
	/* Refused means refused: no registration, no second try. */
	CU_ASSERT_EQUAL(w.registered, 0);
	CU_ASSERT_EQUAL(w.lost, 1);
	qs_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.accepted, 0);
	CU_ASSERT_EQUAL(st.requests, 0);
	/* A configured pin is changed in the configuration, not by trust. */
	CU_ASSERT_EQUAL(quic_client_trust(q, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "configuration") != NULL);
	quic_client_close(q, false);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	pin_close(pins);
	teardown();
}

static void test_tofu_and_trust(void)
{
	struct cert c1, c2;
	struct watch w = { 0 }, w2 = { 0 };
	char err[300], path[400], fp1[LS_CTL_FP_STRLEN];
	uint16_t port = free_port();
	size_t n;

	setup();
	struct pin_store *pins = pin_open(tmpdir, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(pins);
	struct qs *s = server("c1", port, &c1, 16, 8);
	struct quic_client *q = client("node-c", port, NULL, pins, &w);

	CU_ASSERT_FATAL(run_until(is_registered, &w, 5000));
	/* First use: pinned and saved. */
	snprintf(path, sizeof(path), "%s/known_nodes", tmpdir);
	char *text = ls_statefile_read(path, 1 << 16, &n, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	ls_ctl_fp_fmt(c1.fp, fp1);
	CU_ASSERT(strstr(text, "node-c sha256:") != NULL);
	CU_ASSERT(strstr(text, fp1) != NULL);
	free(text);
	quic_client_close(q, false);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	run_for(50);

	/* The node comes back with another certificate: refused, loudly, and the offered
	 * one remembered for the operator. */
	s = server("c2", port, &c2, 16, 8);
	CU_ASSERT(memcmp(c1.fp, c2.fp, LS_CTL_FP_LEN) != 0);
	struct pin_store *pins2 = pin_open(tmpdir, err, sizeof(err)); /* as after a restart */
	q = client("node-c", port, NULL, pins2, &w2);
	CU_ASSERT_FATAL(run_until(was_lost, &w2, 5000));
	CU_ASSERT_EQUAL(w2.last_lost, QC_PIN_REFUSED);
	CU_ASSERT_EQUAL(w2.registered, 0);
	CU_ASSERT_EQUAL(memcmp(pin_offered(pins2, "node-c"), c2.fp, LS_CTL_FP_LEN), 0);
	CU_ASSERT_EQUAL(memcmp(pin_get(pins2, "node-c"), c1.fp, LS_CTL_FP_LEN), 0);
	/* The operator accepts it: pinned, saved, connected. */
	CU_ASSERT_EQUAL(quic_client_trust(q, err, sizeof(err)), 0);
	CU_ASSERT(run_until(is_registered, &w2, 5000));
	CU_ASSERT_EQUAL(memcmp(pin_get(pins2, "node-c"), c2.fp, LS_CTL_FP_LEN), 0);
	struct pin_store *pins3 = pin_open(tmpdir, err, sizeof(err));
	CU_ASSERT_EQUAL(memcmp(pin_get(pins3, "node-c"), c2.fp, LS_CTL_FP_LEN), 0);
	pin_close(pins3);
	quic_client_close(q, false);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	pin_close(pins);
	pin_close(pins2);
	teardown();
}

static bool registered_twice(void *w) { return ((struct watch *)w)->registered >= 2; }

/* The agent goes away and comes back (same state directory, so the same certificate
 * and secret): the client reconnects by itself and resumes its session. */
static void test_reconnect_resumes(void)
{
	struct cert c;
	struct watch w = { 0 };
	char err[300];
	uint16_t port = free_port();

	setup();
	registers = resumes = 0;
	struct pin_store *pins = pin_open(NULL, err, sizeof(err));
	struct qs *s = server("d", port, &c, 16, 8);
	struct quic_client *q = client("d", port, c.fp, pins, &w);

	CU_ASSERT_FATAL(run_until(is_registered, &w, 5000));
	CU_ASSERT_FALSE(w.s.resumed);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	CU_ASSERT(run_until(was_lost, &w, 3000));
	s = server("d", port, &c, 16, 8);
	CU_ASSERT_FATAL(run_until(registered_twice, &w, 8000));
	CU_ASSERT(w.s.resumed);
	CU_ASSERT_EQUAL(resumes, 1);
	CU_ASSERT_EQUAL(w.revoked, 0);
	quic_client_close(q, false);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	pin_close(pins);
	teardown();
}

/* ---- a bare connection that misbehaves -------------------------------------------- */

struct raw {
	struct ls_quic_conn *qc;
	int fd;
	struct sockaddr_in local, remote;
	uv_poll_t poll;
	bool open;
	unsigned frames, closed_streams;
	struct ls_ctl_msg last;
	int64_t last_sid;
	bool ended;
	struct ls_quic_end end;
};

static void raw_established(struct ls_quic_conn *qc)
{
	((struct raw *)ls_quic_conn_data(qc))->open = true;
}

static void raw_frame(struct ls_quic_conn *qc, int64_t sid, const uint8_t *f, size_t n)
{
	struct raw *r = ls_quic_conn_data(qc);

	r->frames++;
	r->last_sid = sid;
	CU_ASSERT_EQUAL(ls_ctl_decode(f, n, LS_CTL_TO_CONTROLLER, &r->last), LS_CTL_OK);
}

static void raw_stream_closed(struct ls_quic_conn *qc, int64_t sid)
{
	(void)sid;
	((struct raw *)ls_quic_conn_data(qc))->closed_streams++;
}

static void raw_released(struct ls_quic_conn *qc)
{
	((struct raw *)ls_quic_conn_data(qc))->qc = NULL;
}

static void raw_closed(struct ls_quic_conn *qc, const struct ls_quic_end *end)
{
	struct raw *r = ls_quic_conn_data(qc);

	r->ended = true;
	r->end = *end;
}

static const struct ls_quic_ops raw_ops = {
	.established = raw_established, .frame = raw_frame, .stream_closed = raw_stream_closed,
	.closed = raw_closed, .released = raw_released,
};

static void raw_readable(uv_poll_t *p, int status, int events)
{
	struct raw *r = p->data;
	uint8_t buf[LS_QUIC_RX_BUF];
	ssize_t n;

	(void)status;
	(void)events;
	while ((n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		if (r->qc)
			ls_quic_conn_input(r->qc, (struct sockaddr *)&r->local, sizeof(r->local),
					   (struct sockaddr *)&r->remote, sizeof(r->remote), buf,
					   (size_t)n);
}

/* A connection to port; reading stays off when `deaf` (a half-open flooder). */
static void raw_open_alpn(struct raw *r, uint16_t port, bool deaf, struct ls_quic_tls *tls,
			  const char *alpn)
{
	char err[200];
	socklen_t l = sizeof(r->local);

	memset(r, 0, sizeof(*r));
	r->remote.sin_family = AF_INET;
	r->remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->remote.sin_port = htons(port);
	r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	connect(r->fd, (struct sockaddr *)&r->remote, sizeof(r->remote));
	getsockname(r->fd, (struct sockaddr *)&r->local, &l);
	struct ls_quic_conf c = {
		.loop = loop, .ops = &raw_ops, .data = r, .tls = tls, .fd = r->fd,
		.local = (struct sockaddr *)&r->local, .local_len = sizeof(r->local),
		.remote = (struct sockaddr *)&r->remote, .remote_len = sizeof(r->remote),
		.idle_timeout_ms = 5000, .handshake_timeout_ms = 5000, .max_stream_rx = 65537,
		.alpn = alpn,
	};
	r->qc = ls_quic_conn_client(&c, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->qc);
	uv_poll_init(loop, &r->poll, r->fd);
	r->poll.data = r;
	if (!deaf)
		uv_poll_start(&r->poll, UV_READABLE, raw_readable);
}

static void raw_open(struct raw *r, uint16_t port, bool deaf, struct ls_quic_tls *tls)
{
	raw_open_alpn(r, port, deaf, tls, NULL);
}

static void raw_close(struct raw *r)
{
	if (r->qc)
		ls_quic_conn_destroy(r->qc);
	uv_close((uv_handle_t *)&r->poll, NULL);
	run_for(20);
	close(r->fd);
}

static bool raw_open_p(void *r) { return ((struct raw *)r)->open; }
static unsigned want_frames;
static bool raw_frames_p(void *r) { return ((struct raw *)r)->frames >= want_frames; }

static void raw_send(struct raw *r, const uint8_t *b, size_t n, uint8_t expect_code)
{
	int64_t sid;

	CU_ASSERT_EQUAL_FATAL(ls_quic_conn_request(r->qc, b, n, &sid), 0);
	want_frames = r->frames + 1;
	CU_ASSERT_FATAL(run_until(raw_frames_p, r, 3000));
	CU_ASSERT_EQUAL(r->last_sid, sid);
	if (expect_code) {
		CU_ASSERT_EQUAL(r->last.type, LS_CTL_ERROR);
		CU_ASSERT_EQUAL(r->last.u.err.code, expect_code);
	} else {
		CU_ASSERT_EQUAL(r->last.type, LS_CTL_PONG);
	}
}

static unsigned want_timeouts;
static struct qs *timeouts_qs;
static bool timeouts_p(void *arg)
{
	struct qs_stats st;

	(void)arg;
	qs_get_stats(timeouts_qs, &st);
	return st.stream_timeouts >= want_timeouts;
}

static void test_bad_streams(void)
{
	struct cert c;
	struct raw r;
	struct qs_stats st;
	char err[200];
	uint16_t port = free_port();
	uint8_t big[700];
	int64_t sid;

	setup();
	struct qs *s = server("e", port, &c, 16, 8);
	struct ls_quic_tls *tls = ls_quic_tls_client(err, sizeof(err));
	raw_open(&r, port, false, tls);
	CU_ASSERT_FATAL(run_until(raw_open_p, &r, 3000));

	static const uint8_t ping[] = { 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1 };
	raw_send(&r, ping, sizeof(ping), 0);
	/* an unknown type, a type the agent does not take, a short PING, length 0 */
	raw_send(&r, (const uint8_t[]){ 0, 1, 0x42 }, 3, LS_CTL_E_UNKNOWN_TYPE);
	raw_send(&r, (const uint8_t[]){ 0, 1, LS_CTL_PONG }, 3, LS_CTL_E_UNKNOWN_TYPE);
	raw_send(&r, (const uint8_t[]){ 0, 2, 1, 0 }, 4, LS_CTL_E_MALFORMED);
	raw_send(&r, (const uint8_t[]){ 0, 0 }, 2, LS_CTL_E_MALFORMED);
	/* the stream ends inside a frame; a frame with bytes after it */
	raw_send(&r, (const uint8_t[]){ 0, 9, 1, 0 }, 4, LS_CTL_E_MALFORMED);
	raw_send(&r, (const uint8_t[]){ 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, 12, LS_CTL_E_MALFORMED);
	/* a length beyond the request limit, announced and sent */
	memset(big, 0, sizeof(big));
	big[0] = (sizeof(big) - 2) >> 8;
	big[1] = (sizeof(big) - 2) & 0xff;
	big[2] = LS_CTL_PING;
	raw_send(&r, big, sizeof(big), LS_CTL_E_TOO_LONG);
	raw_send(&r, (const uint8_t[]){ 0xff, 0xff, 1 }, 3, LS_CTL_E_TOO_LONG);
	/* streams left open (no FIN, half a frame): reset after the stream timeout,
	 * their slots given back */
	timeouts_qs = s;
	want_timeouts = 3;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(ls_quic_conn_write(r.qc, ping, 5, false, &sid), 0);
	CU_ASSERT(run_until(timeouts_p, NULL, 3000));
	run_for(100);
	CU_ASSERT_EQUAL(ls_quic_conn_streams(r.qc), 0);
	/* After all that, the connection still answers. */
	raw_send(&r, ping, sizeof(ping), 0);
	qs_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.unknown_types, 2);
	CU_ASSERT(st.malformed >= 4);
	CU_ASSERT_EQUAL(st.too_long, 2);
	CU_ASSERT_EQUAL(st.conns, 1);
	raw_close(&r);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	ls_quic_tls_free(tls);
	teardown();
}

static bool raw_ended_p(void *r) { return ((struct raw *)r)->ended; }
static struct qs *accepted_qs;
static bool accepted_p(void *arg)
{
	struct qs_stats st;

	(void)arg;
	qs_get_stats(accepted_qs, &st);
	return st.accepted >= 1;
}

/* Another application protocol (h3 here) is refused in the handshake: no connection
 * for it, nothing it could send is read; the agent's own still gets in. */
static void test_other_alpn_refused(void)
{
	struct cert c;
	struct raw r;
	struct qs_stats st;
	char err[200];
	uint16_t port = free_port();

	setup();
	struct qs *s = server("g", port, &c, 16, 8);
	struct ls_quic_tls *tls = ls_quic_tls_client(err, sizeof(err));
	raw_open_alpn(&r, port, false, tls, "h3");
	CU_ASSERT_FATAL(run_until(raw_ended_p, &r, 3000));
	CU_ASSERT_FALSE(r.open);
	CU_ASSERT(r.end.kind == LS_QUIC_END_PEER || r.end.kind == LS_QUIC_END_ERROR);
	CU_ASSERT_FALSE(r.end.app); /* a transport (TLS alert) code, not one of ours */
	qs_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.accepted, 0);
	CU_ASSERT_EQUAL(st.conns, 0);
	CU_ASSERT_EQUAL(st.requests, 0);
	raw_close(&r);
	raw_open(&r, port, false, tls);
	CU_ASSERT(run_until(raw_open_p, &r, 3000));
	accepted_qs = s;
	CU_ASSERT(run_until(accepted_p, NULL, 3000));
	raw_close(&r);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	ls_quic_tls_free(tls);
	teardown();
}

static struct qs *flood_qs;
static bool flood_settled(void *arg)
{
	struct qs_stats st;
	unsigned n = *(unsigned *)arg;

	qs_get_stats(flood_qs, &st);
	return st.retries + st.half_open >= n;
}

static bool flood_expired(void *arg)
{
	struct qs_stats st;

	(void)arg;
	qs_get_stats(flood_qs, &st);
	return st.half_open == 0 && st.handshake_failures >= 1;
}

static void test_half_open_flood(void)
{
	enum { FLOOD = 40 };
	struct cert c;
	static struct raw deaf[FLOOD];
	struct watch w = { 0 }, w2 = { 0 }, w3 = { 0 };
	struct qs_stats st;
	char err[200];
	uint16_t port = free_port();
	unsigned n = FLOOD;

	setup();
	/* A well-behaved client gets in after proving its address; at most 2
	 * connections per address. */
	struct qs *s = server("f", port, &c, 2, 2);
	struct ls_quic_tls *tls = ls_quic_tls_client(err, sizeof(err));
	struct pin_store *pins = pin_open(NULL, err, sizeof(err));
	flood_qs = s;
	for (int i = 0; i < FLOOD; i++)
		raw_open(&deaf[i], port, true, tls);
	CU_ASSERT(run_until(flood_settled, &n, 3000));
	qs_get_stats(s, &st);
	/* One handshake per address is held; every other one was asked to prove its
	 * address first (and a deaf sender never does): no state for them. */
	CU_ASSERT_EQUAL(st.half_open, 1);
	CU_ASSERT(st.retries >= FLOOD - 1);
	struct quic_client *q = client("f", port, c.fp, pins, &w);
	CU_ASSERT(run_until(is_registered, &w, 5000));
	struct quic_client *q2 = client("f2", port, c.fp, pins, &w2);
	CU_ASSERT(run_until(is_registered, &w2, 5000));
	/* The third from the same address is over max_conns_per_addr: refused. */
	struct quic_client *q3 = client("f3", port, c.fp, pins, &w3);
	CU_ASSERT(run_until(was_lost, &w3, 5000));
	CU_ASSERT_EQUAL(w3.registered, 0);
	qs_get_stats(s, &st);
	CU_ASSERT(st.refused >= 1);
	CU_ASSERT_EQUAL(st.conns, 2);
	/* The held half-open connection times out. */
	CU_ASSERT(run_until(flood_expired, NULL, 3000));
	CU_ASSERT_EQUAL(quic_client_state(q), QC_REGISTERED);
	quic_client_close(q3, false);
	quic_client_close(q2, false);
	quic_client_close(q, false);
	for (int i = 0; i < FLOOD; i++)
		raw_close(&deaf[i]);
	qs_close(s, LS_CTL_R_SHUTDOWN);
	ls_quic_tls_free(tls);
	pin_close(pins);
	teardown();
}

UNIT_MAIN("quic",
	  { "handshake with a pinned fingerprint, register, ping, server info", test_pinned_handshake },
	  { "a wrong pin is refused and stays refused", test_wrong_pin_refused },
	  { "trust on first use, a changed certificate refused, trust", test_tofu_and_trust },
	  { "a lost agent: reconnect and resume", test_reconnect_resumes },
	  { "bad streams answered, the connection stays", test_bad_streams },
	  { "another application protocol is refused in the handshake", test_other_alpn_refused },
	  { "half-open flood: Retry, per-address limits", test_half_open_flood })
