/* quic_hostile: a hostile peer of a real lightspeed-agent's QUIC port, for the
 * end-to-end tests and the benchmark (docs/protocol.md 2.2 and 2.5). It speaks QUIC
 * through the same layer as the controller (shared/quic.c) and then misbehaves.
 *
 *   quic_hostile streams --agent IP:PORT [--dest IP:PORT] [--random N] [--seed S]
 *       One connection (it pins nothing: the agent is under test, not the client).
 *       Every case of a table of bad and out-of-order requests on a stream of its
 *       own, N random frames, streams left open, then a PING on the same
 *       connection. One JSON line per case: {"case","answer","code","reset"}; the
 *       summary line has "summary":true.
 *   quic_hostile halfopen --agent IP:PORT --sources N --per-source M
 *                         [--first-source IP] [--wait-ms MS]
 *       N x M handshakes from N source addresses (IP, IP+1, ...), each of which
 *       answers a Retry (so its address is proven) and then never speaks again:
 *       half-open connections the agent must hold within its limits. One line per
 *       source {"source","held","refused","retried","silent"} and a total line.
 *   quic_hostile sessions --agent IP:PORT --count N [--first-source IP] [--dest D]
 *                         [--leave vanish|close]
 *       N times from one address: a connection, REGISTER, and gone without a word
 *       (vanish: its session is left for a resume) or with CONNECTION_CLOSE code 0
 *       (close: the session ends with it). Prints {"acks","full","other"}.
 *   quic_hostile flood --agent IP:PORT --rate R --seconds S [--sources N]
 *                      [--first-source IP] [--kind initials|crafted|validated]
 *       New connections at R per second from N source addresses. initials (the
 *       default): real Initials (a ClientHello each, 16 sockets per address) that
 *       never answer anything, as from spoofed addresses; crafted: 1200 random bytes
 *       with an Initial's header, the cheapest thing a spoofer can send; validated:
 *       each answers its Retry (a real address) and then falls silent (a socket of
 *       its own, given up after 400 ms). Prints {"kind","sent","seconds"} with
 *       "answers" (datagrams back), or for validated "held", "refused", "retried". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "ctlmsg.h"
#include "log.h"
#include "prng.h"
#include "quic.h"
#include "util.h"

static uv_loop_t *loop;
static struct sockaddr_in agent;
static struct ls_quic_tls *tls;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "quic_hostile: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(2);
}

static void out(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static void run_ms(unsigned ms)
{
	uint64_t end = ls_now_us() + (uint64_t)ms * 1000u;

	while (ls_now_us() < end)
		uv_run(loop, UV_RUN_NOWAIT), usleep(200);
}

/* A UDP socket from src (any port) connected to the agent. */
static int open_socket(const struct sockaddr_in *src, struct sockaddr_in *local)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	socklen_t l = sizeof(*local);

	if (fd < 0)
		die("socket", strerror(errno));
	if (src && bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0)
		die("bind to the source address", strerror(errno));
	if (connect(fd, (const struct sockaddr *)&agent, sizeof(agent)) != 0 ||
	    getsockname(fd, (struct sockaddr *)local, &l) != 0)
		die("connect", strerror(errno));
	return fd;
}

/* ---- streams: one connection, bad requests ------------------------------------------ */

struct peer {
	struct ls_quic_conn *qc;
	int fd;
	struct sockaddr_in local;
	uv_poll_t poll;
	bool open, closed;
	struct ls_quic_end end;
	/* The stream waited on, and what it brought. */
	int64_t sid;
	bool answered, reset;
	struct ls_ctl_msg ans;
	int decode_rc;
	unsigned resets;            /* streams gone without an answer, in total */
};

static void p_established(struct ls_quic_conn *qc)
{
	((struct peer *)ls_quic_conn_data(qc))->open = true;
}

static void p_frame(struct ls_quic_conn *qc, int64_t sid, const uint8_t *f, size_t n)
{
	struct peer *p = ls_quic_conn_data(qc);

	if (sid != p->sid)
		return;
	p->answered = true;
	p->decode_rc = ls_ctl_decode(f, n, LS_CTL_TO_CONTROLLER, &p->ans);
}

static void p_stream_closed(struct ls_quic_conn *qc, int64_t sid)
{
	struct peer *p = ls_quic_conn_data(qc);

	if (sid == p->sid && !p->answered)
		p->reset = true;
	if (sid != p->sid)
		p->resets++;
}

static void p_closed(struct ls_quic_conn *qc, const struct ls_quic_end *end)
{
	struct peer *p = ls_quic_conn_data(qc);

	p->closed = true;
	p->end = *end;
}

static void p_released(struct ls_quic_conn *qc)
{
	((struct peer *)ls_quic_conn_data(qc))->qc = NULL;
}

static const struct ls_quic_ops peer_ops = {
	.established = p_established, .frame = p_frame, .stream_closed = p_stream_closed,
	.closed = p_closed, .released = p_released,
};

static void p_readable(uv_poll_t *h, int status, int events)
{
	struct peer *p = h->data;
	uint8_t buf[LS_QUIC_RX_BUF];
	ssize_t n;

	(void)events;
	if (status < 0) {
		int e;
		socklen_t el = sizeof(e);

		getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		uv_poll_start(h, UV_READABLE, p_readable);
		return;
	}
	while ((n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		if (p->qc)
			ls_quic_conn_input(p->qc, (struct sockaddr *)&p->local, sizeof(p->local),
					   (struct sockaddr *)&agent, sizeof(agent), buf, (size_t)n);
}

static bool wait_until(bool *flag, const bool *gone, unsigned ms)
{
	uint64_t end = ls_now_us() + (uint64_t)ms * 1000u;

	while (!*flag && !*gone && ls_now_us() < end)
		uv_run(loop, UV_RUN_ONCE);
	return *flag;
}

struct bad_case {
	const char *name;
	const uint8_t *bytes;
	size_t len;
	bool fin;
};

#define CASE(n, fin, ...) { n, (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }), fin }
/* Requests that are wrong on the wire or out of order (docs/protocol.md 2.2, 2.3). */
static const struct bad_case bad_cases[] = {
	CASE("unknown type 0x42", true, 0, 1, 0x42),
	CASE("an answer type (PONG) sent to the agent", true, 0, 17, 2, 0, 0, 0, 0, 0, 0, 0, 1,
	     0, 0, 0, 0, 0, 0, 0, 2),
	CASE("an ERROR sent to the agent", true, 0, 4, 0x7f, 1, 1, 'x'),
	CASE("length 0", true, 0, 0),
	CASE("PING with a short body", true, 0, 2, 1, 0),
	CASE("PING with a byte too many", true, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9),
	CASE("the stream ends inside the frame", true, 0, 9, 1, 0, 0),
	CASE("a frame and a byte after it", true, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0),
	CASE("length 65535 announced", true, 0xff, 0xff, 1, 0, 0),
	CASE("REGISTER of protocol version 9", true, 0, 3, 3, 9, 0),
	CASE("REGISTER of game 200", true, 0, 3, 3, 1, 200),
	CASE("REGISTER with unknown flag bits", true, 0, 4, 3, 1, 0, 0x80),
	CASE("REGISTER with 17 destinations announced", true, 0, 5, 3, 1, 0, 0, 17),
	CASE("REGISTER resuming session 0", true, 0, 25, 3, 1, 0, 1, 0, 0, 0, 0,
	     1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0),
	CASE("REGISTER resuming a session the agent never issued", true, 0, 25, 3, 1, 0, 1,
	     0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0),
	CASE("REGISTER to a destination the node does not serve", true, 0, 14, 3, 1, 0, 0, 1,
	     10, 1, 2, 3, 32, 0x69, 0x87, 0x69, 0x87),
	CASE("a destination with host bits under its prefix", true, 0, 14, 3, 1, 0, 0, 1,
	     10, 1, 2, 3, 8, 0, 0, 255, 255),
	CASE("DISCONNECT reason 9", true, 0, 2, 5, 9),
	CASE("SERVER_INFO request with a body", true, 0, 2, 6, 1),
	CASE("PEERS request with a body", true, 0, 3, 9, 0, 0),
	CASE("ALLOW before REGISTER", true, 0, 10, 7, 127, 0, 0, 1, 32, 0x69, 0x87, 0x69, 0x87),
	CASE("ALLOW with its last port below its first", true, 0, 10, 7, 127, 0, 0, 1, 32,
	     0x69, 0x88, 0x69, 0x87),
};

static json_t *answer_json(const struct peer *p, const char *name)
{
	json_t *o = json_pack("{s:s}", "case", name);

	if (p->answered && p->decode_rc == LS_CTL_OK) {
		json_object_set_new(o, "answer", json_string(ls_ctl_type_name(p->ans.type)));
		json_object_set_new(o, "code", p->ans.type == LS_CTL_ERROR
					       ? json_string(ls_ctl_code_name(p->ans.u.err.code))
					       : p->ans.type == LS_CTL_DISCONNECT
					       ? json_integer(p->ans.u.disc.reason)
					       : json_null());
		if (p->ans.type == LS_CTL_ERROR)
			json_object_set_new(o, "message", json_string(p->ans.u.err.msg));
	} else if (p->answered) {
		/* The agent's answer did not decode: a bug of the agent's, said so. */
		json_object_set_new(o, "answer", json_string("undecodable"));
		json_object_set_new(o, "code", json_string(ls_ctl_strerror(p->decode_rc)));
	} else {
		json_object_set_new(o, "answer", json_null());
		json_object_set_new(o, "code", json_null());
	}
	json_object_set_new(o, "reset", json_boolean(p->reset));
	return o;
}

/* Send bytes on a new stream (ending it when fin) and wait for its answer or reset. */
static int ask(struct peer *p, const uint8_t *b, size_t n, bool fin, unsigned ms)
{
	p->answered = p->reset = false;
	for (int tries = 0; tries < 100; tries++) {
		if (ls_quic_conn_write(p->qc, b, n, fin, &p->sid) == 0) {
			bool any = false;
			uint64_t end = ls_now_us() + (uint64_t)ms * 1000u;

			while (!(any = p->answered || p->reset) && !p->closed && ls_now_us() < end)
				uv_run(loop, UV_RUN_ONCE);
			return any ? 0 : -1;
		}
		/* No stream credit yet (streams still closing): let the loop run. */
		if (p->closed)
			return -1;
		run_ms(10);
	}
	return -1;
}

static long encode(const struct ls_ctl_msg *m, uint8_t *buf, size_t cap)
{
	long n = ls_ctl_encode(m, buf, cap);

	if (n < 0)
		die("encode", ls_ctl_type_name(m->type));
	return n;
}

/* A new registration, for dest when given (else the node's own destinations). */
static long register_frame(const struct ls_dest *dest, uint8_t *buf, size_t cap)
{
	struct ls_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_REGISTER;
	m.u.reg.version = LS_CTL_VERSION;
	if (dest) {
		m.u.reg.ndests = 1;
		m.u.reg.dests[0] = *dest;
	}
	return encode(&m, buf, cap);
}

/* A connection from src (NULL: any address), its handshake done. */
static void peer_open(struct peer *p, const struct sockaddr_in *src)
{
	char err[300];

	memset(p, 0, sizeof(*p));
	p->sid = -1;
	p->fd = open_socket(src, &p->local);
	struct ls_quic_conf c = {
		.loop = loop, .ops = &peer_ops, .data = p, .tls = tls, .fd = p->fd,
		.local = (struct sockaddr *)&p->local, .local_len = sizeof(p->local),
		.remote = (struct sockaddr *)&agent, .remote_len = sizeof(agent),
		.idle_timeout_ms = 30000, .handshake_timeout_ms = 5000, .max_stream_rx = 65537,
	};
	p->qc = ls_quic_conn_client(&c, err, sizeof(err));
	if (!p->qc)
		die("connection", err);
	uv_poll_init(loop, &p->poll, p->fd);
	p->poll.data = p;
	uv_poll_start(&p->poll, UV_READABLE, p_readable);
	if (!wait_until(&p->open, &p->closed, 5000))
		die("handshake", p->closed ? p->end.reason : "timed out");
}

/* Leave without a word (no CONNECTION_CLOSE), or close properly. */
static void peer_close(struct peer *p, bool vanish)
{
	if (p->qc) {
		if (vanish)
			ls_quic_conn_destroy(p->qc);
		else
			ls_quic_conn_close(p->qc, LS_CTL_R_NORMAL, "done");
	}
	run_ms(vanish ? 1 : 50);
	uv_close((uv_handle_t *)&p->poll, NULL);
	run_ms(1);
	close(p->fd);
}

static int do_streams(const struct ls_dest *dest, unsigned nrandom, uint64_t seed)
{
	struct peer p;
	uint8_t buf[1024];
	unsigned answered = 0, reset = 0, lost = 0, left_open = 3;
	struct ls_prng rng;
	struct ls_ctl_msg m;
	long n;

	peer_open(&p, NULL);
	for (size_t i = 0; i < LS_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *bc = &bad_cases[i];

		ask(&p, bc->bytes, bc->len, bc->fin, 3000);
		out(answer_json(&p, bc->name));
	}
	/* A request larger than the agent reads, sent in full. */
	memset(buf, 0, sizeof(buf));
	buf[0] = (600 - 2) >> 8;
	buf[1] = (600 - 2) & 0xff;
	buf[2] = LS_CTL_PING;
	ask(&p, buf, 600, true, 3000);
	out(answer_json(&p, "600 bytes of one request"));

	/* A session, then what is wrong with one. */
	n = register_frame(dest, buf, sizeof(buf));
	ask(&p, buf, (size_t)n, true, 3000);
	out(answer_json(&p, "REGISTER"));
	ask(&p, buf, (size_t)n, true, 3000);
	out(answer_json(&p, "REGISTER again on the same connection"));
	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_ALLOW;
	ls_dest_parse("10.1.2.3:27015", &m.u.allow);
	n = encode(&m, buf, sizeof(buf));
	ask(&p, buf, (size_t)n, true, 3000);
	out(answer_json(&p, "ALLOW of a destination the node does not serve"));

	/* Random frames: a valid length prefix over random bytes, or random bytes. */
	ls_prng_seed(&rng, seed, 0);
	for (unsigned i = 0; i < nrandom; i++) {
		size_t len = 1 + ls_prng_next(&rng) % 40;
		bool framed = ls_prng_next(&rng) % 4 != 0;

		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)ls_prng_next(&rng);
		if (framed && len >= 3) {
			buf[0] = (uint8_t)((len - 2) >> 8);
			buf[1] = (uint8_t)(len - 2);
			/* Mostly types the agent knows, so their bodies get parsed. */
			if (ls_prng_next(&rng) % 2)
				buf[2] = (uint8_t)(1 + ls_prng_next(&rng) % 9);
			/* Never the one frame that would end our session (DISCONNECT). */
			if (buf[2] == LS_CTL_DISCONNECT)
				buf[2] = 0x42;
		} else if (len >= 3 && buf[2] == LS_CTL_DISCONNECT) {
			buf[2] = 0x42;
		}
		if (ask(&p, buf, len, true, 3000) != 0)
			lost++;
		else if (p.answered)
			answered++;
		else
			reset++;
		if (p.closed)
			break;
	}
	out(json_pack("{s:s,s:i,s:i,s:i,s:i}", "case", "random frames", "sent", nrandom,
		      "answered", answered, "reset", reset, "unanswered", lost));

	/* Streams left open: half a PING each, never ended. The agent resets them after
	 * its stream timeout, and their slots come back. */
	p.resets = 0;
	for (unsigned i = 0; i < left_open; i++) {
		int64_t sid;

		if (ls_quic_conn_write(p.qc, (const uint8_t[]){ 0, 9, 1, 0, 0 }, 5, false, &sid) != 0)
			die("a stream left open", "no stream credit");
	}
	p.sid = -1;
	{
		uint64_t t0 = ls_now_us(), end = t0 + 30000000u;

		while (p.resets < left_open && !p.closed && ls_now_us() < end)
			uv_run(loop, UV_RUN_ONCE);
		out(json_pack("{s:s,s:i,s:i,s:I}", "case", "streams left open", "opened", left_open,
			      "reset", p.resets, "after_ms", (json_int_t)((ls_now_us() - t0) / 1000)));
	}

	/* The connection still answers. */
	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_PING;
	m.u.ping.client_ts_us = ls_now_us();
	n = encode(&m, buf, sizeof(buf));
	ask(&p, buf, (size_t)n, true, 3000);
	out(answer_json(&p, "PING at the end"));
	/* End our session properly. */
	memset(&m, 0, sizeof(m));
	m.type = LS_CTL_DISCONNECT;
	n = encode(&m, buf, sizeof(buf));
	ask(&p, buf, (size_t)n, true, 3000);
	out(answer_json(&p, "DISCONNECT"));
	out(json_pack("{s:b,s:b,s:s}", "summary", 1, "connection_open", !p.closed, "end",
		      p.closed ? ls_quic_end_name(p.end.kind) : ""));
	peer_close(&p, false);
	return 0;
}

static int do_sessions(uint32_t first, unsigned count, const struct ls_dest *dest, bool vanish)
{
	unsigned acks = 0, full = 0, other = 0;
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(first) };
	uint8_t buf[256];
	long n = register_frame(dest, buf, sizeof(buf));

	for (unsigned i = 0; i < count; i++) {
		struct peer p;

		peer_open(&p, &src);
		ask(&p, buf, (size_t)n, true, 3000);
		if (p.answered && p.decode_rc == LS_CTL_OK && p.ans.type == LS_CTL_REGISTER_ACK)
			acks++;
		else if (p.answered && p.decode_rc == LS_CTL_OK && p.ans.type == LS_CTL_DISCONNECT &&
			 p.ans.u.disc.reason == LS_CTL_R_FULL)
			full++;
		else
			other++;
		peer_close(&p, vanish);
	}
	out(json_pack("{s:i,s:i,s:i}", "acks", acks, "full", full, "other", other));
	return 0;
}

/* ---- half-open: prove the address, then fall silent --------------------------------- */

struct half {
	struct ls_quic_conn *qc;
	int fd;        /* the socket: what the agent sends arrives here */
	int out_fd;    /* what the connection sends by: the socket, then /dev/null */
	struct sockaddr_in local;
	uv_poll_t poll;
	unsigned src;
	bool retried, deaf, held, refused, answered;
};

static int devnull = -1;

static void h_established(struct ls_quic_conn *qc)
{
	((struct half *)ls_quic_conn_data(qc))->held = true;
}

/* The agent's certificate arrived: it holds a connection for us. */
static int h_verify(struct ls_quic_conn *qc, const uint8_t fp[LS_CTL_FP_LEN])
{
	(void)fp;
	((struct half *)ls_quic_conn_data(qc))->held = true;
	return 0;
}

static void h_closed(struct ls_quic_conn *qc, const struct ls_quic_end *end)
{
	struct half *h = ls_quic_conn_data(qc);

	/* CONNECTION_REFUSED (0x2): over a limit, told because the address is proven. */
	if (end->kind == LS_QUIC_END_PEER && !end->app && end->code == NGTCP2_CONNECTION_REFUSED)
		h->refused = true;
}

static void h_released(struct ls_quic_conn *qc)
{
	((struct half *)ls_quic_conn_data(qc))->qc = NULL;
}

static const struct ls_quic_ops half_ops = {
	.established = h_established, .verify_peer = h_verify, .closed = h_closed,
	.released = h_released,
};

static void h_readable(uv_poll_t *ph, int status, int events)
{
	struct half *h = ph->data;
	uint8_t buf[LS_QUIC_RX_BUF];
	ssize_t n;

	(void)status;
	(void)events;
	while ((n = recv(h->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		/* A Retry (long header, type 3) is answered; after anything else the
		 * connection speaks no more (its packets go to /dev/null), but what the
		 * agent sends is still read, to tell a held connection from a refused one. */
		bool retry = (buf[0] & 0xf0) == 0xf0;

		if (retry && !h->deaf) {
			h->retried = true;
		} else if (!h->deaf) {
			h->deaf = true;
			dup2(devnull, h->out_fd);
		}
		if (!retry)
			h->answered = true;
		if (h->qc)
			ls_quic_conn_input(h->qc, (struct sockaddr *)&h->local, sizeof(h->local),
					   (struct sockaddr *)&agent, sizeof(agent), buf, (size_t)n);
	}
}

static void source_addr(struct sockaddr_in *sa, uint32_t first, unsigned i)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(first + i);
}

static int do_halfopen(uint32_t first, unsigned sources, unsigned per, unsigned wait_ms)
{
	size_t total = (size_t)sources * per;
	struct half *h = calloc(total, sizeof(*h));
	unsigned tot_held = 0, tot_refused = 0, tot_retried = 0, tot_silent = 0;
	char err[300];

	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (!h || devnull < 0)
		die("setup", strerror(errno));
	for (size_t i = 0; i < total; i++) {
		struct sockaddr_in src;

		h[i].src = (unsigned)(i / per);
		source_addr(&src, first, h[i].src);
		h[i].fd = open_socket(&src, &h[i].local);
		h[i].out_fd = dup(h[i].fd);
		struct ls_quic_conf c = {
			.loop = loop, .ops = &half_ops, .data = &h[i], .tls = tls, .fd = h[i].out_fd,
			.local = (struct sockaddr *)&h[i].local, .local_len = sizeof(h[i].local),
			.remote = (struct sockaddr *)&agent, .remote_len = sizeof(agent),
			.idle_timeout_ms = 60000, .handshake_timeout_ms = 60000,
			.max_stream_rx = 1024,
		};
		uv_poll_init(loop, &h[i].poll, h[i].fd);
		h[i].poll.data = &h[i];
		uv_poll_start(&h[i].poll, UV_READABLE, h_readable);
		h[i].qc = ls_quic_conn_client(&c, err, sizeof(err));
		if (!h[i].qc)
			die("connection", err);
		/* The next one from this address once this one's Retry round is done. */
		run_ms(2);
	}
	run_ms(wait_ms);
	for (unsigned s = 0; s < sources; s++) {
		unsigned held = 0, refused = 0, retried = 0, silent = 0;
		char ip[INET_ADDRSTRLEN];
		struct in_addr a = { htonl(first + s) };

		for (unsigned k = 0; k < per; k++) {
			struct half *x = &h[(size_t)s * per + k];

			held += x->held && !x->refused;
			refused += x->refused;
			retried += x->retried;
			silent += !x->answered;
		}
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		out(json_pack("{s:s,s:i,s:i,s:i,s:i}", "source", ip, "held", held, "refused",
			      refused, "retried", retried, "silent", silent));
		tot_held += held;
		tot_refused += refused;
		tot_retried += retried;
		tot_silent += silent;
	}
	out(json_pack("{s:b,s:i,s:i,s:i,s:i,s:i}", "total", 1, "connections", (int)total, "held",
		      tot_held, "refused", tot_refused, "retried", tot_retried, "silent", tot_silent));
	/* Go without a word: the agent's half-open connections time out on their own. */
	for (size_t i = 0; i < total; i++) {
		if (h[i].qc)
			ls_quic_conn_destroy(h[i].qc);
		uv_close((uv_handle_t *)&h[i].poll, NULL);
	}
	run_ms(10);
	for (size_t i = 0; i < total; i++) {
		close(h[i].fd);
		close(h[i].out_fd);
	}
	free(h);
	return 0;
}

/* ---- flood: Initials at a rate ---------------------------------------------------- */

enum flood_kind {
	FLOOD_INITIALS,  /* real ClientHello Initials that never hear anything */
	FLOOD_CRAFTED,   /* 1200 random bytes shaped as Initials: what costs a spoofer least */
	FLOOD_VALIDATED, /* answer the Retry (the address is real), then fall silent */
};

static const struct ls_quic_ops deaf_ops = { 0 };

/* A QUIC v1 Initial header over random bytes, 1200 bytes long (RFC 9000 17.2.2):
 * everything the agent reads before it answers with a Retry. */
static size_t craft_initial(struct ls_prng *r, uint8_t *b)
{
	size_t o = 0, dl = 8 + ls_prng_next(r) % 13, sl = ls_prng_next(r) % 21, len;

	b[o++] = 0xc3;
	b[o++] = 0, b[o++] = 0, b[o++] = 0, b[o++] = 1;
	b[o++] = (uint8_t)dl;
	for (size_t i = 0; i < dl; i++)
		b[o++] = (uint8_t)ls_prng_next(r);
	b[o++] = (uint8_t)sl;
	for (size_t i = 0; i < sl; i++)
		b[o++] = (uint8_t)ls_prng_next(r);
	b[o++] = 0; /* no token */
	len = 1200 - o - 2;
	b[o++] = (uint8_t)(0x40 | len >> 8);
	b[o++] = (uint8_t)len;
	for (; o < 1200; o++)
		b[o] = (uint8_t)ls_prng_next(r);
	return o;
}

/* One validated flooder's connection, reaped after `life` microseconds. */
struct vconn {
	struct half h;     /* first: the poll handle's data points here */
	uint64_t born;
	bool used, closing;
};

static void vconn_closed(uv_handle_t *hd)
{
	struct vconn *v = hd->data;

	close(v->h.fd);
	close(v->h.out_fd);
	v->used = v->closing = false;
}

static void vconn_reap(struct vconn *v, unsigned *held, unsigned *refused, unsigned *retried)
{
	*held += v->h.held && !v->h.refused;
	*refused += v->h.refused;
	*retried += v->h.retried;
	if (v->h.qc)
		ls_quic_conn_destroy(v->h.qc);
	v->closing = true;
	uv_close((uv_handle_t *)&v->h.poll, vconn_closed);
}

static int do_flood(enum flood_kind kind, uint32_t first, unsigned sources, double rate,
		    double seconds)
{
	enum { PER_SOURCE = 16, RING = 4096 };
	size_t nsock = kind == FLOOD_VALIDATED ? 0 : (size_t)sources * PER_SOURCE;
	int *fds = calloc(nsock + 1, sizeof(int));
	struct sockaddr_in *local = calloc(nsock + 1, sizeof(*local));
	struct vconn *ring = kind == FLOOD_VALIDATED ? calloc(RING, sizeof(*ring)) : NULL;
	unsigned held = 0, refused = 0, retried = 0, skipped = 0;
	char err[300];
	uint8_t b[2048];
	uint64_t start = ls_now_us(), sent = 0, answers = 0, life = 400000;
	uint64_t end = start + (uint64_t)(seconds * 1e6);
	struct ls_prng rng;

	if (!fds || !local || (kind == FLOOD_VALIDATED && !ring))
		die("out of memory", NULL);
	ls_prng_seed(&rng, 7, 0);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	for (size_t i = 0; i < nsock; i++) {
		struct sockaddr_in src;

		source_addr(&src, first, (unsigned)(i % sources));
		fds[i] = open_socket(&src, &local[i]);
	}
	while (ls_now_us() < end) {
		uint64_t now = ls_now_us(), due = (uint64_t)((double)(now - start) * rate / 1e6);

		while (sent < due) {
			size_t k = nsock ? sent % nsock : 0;

			if (kind == FLOOD_CRAFTED) {
				size_t n = craft_initial(&rng, b);

				send(fds[k], b, n, MSG_DONTWAIT);
			} else if (kind == FLOOD_INITIALS) {
				struct ls_quic_conf c = {
					.loop = loop, .ops = &deaf_ops, .tls = tls, .fd = fds[k],
					.local = (struct sockaddr *)&local[k],
					.local_len = sizeof(local[k]), .remote = (struct sockaddr *)&agent,
					.remote_len = sizeof(agent), .idle_timeout_ms = 1000,
					.handshake_timeout_ms = 1000,
				};
				struct ls_quic_conn *qc = ls_quic_conn_client(&c, err, sizeof(err));

				/* Its Initial has left; it will never hear an answer. */
				if (qc)
					ls_quic_conn_destroy(qc);
			} else {
				struct vconn *v = &ring[sent % RING];
				struct sockaddr_in src;

				if (v->used) {
					/* The ring is full of young ones: this one is not sent. */
					skipped++;
					sent++;
					continue;
				}
				memset(v, 0, sizeof(*v));
				v->used = true;
				v->born = now;
				v->h.src = (unsigned)(sent % sources);
				source_addr(&src, first, v->h.src);
				v->h.fd = open_socket(&src, &v->h.local);
				v->h.out_fd = dup(v->h.fd);
				struct ls_quic_conf c = {
					.loop = loop, .ops = &half_ops, .data = &v->h, .tls = tls,
					.fd = v->h.out_fd, .local = (struct sockaddr *)&v->h.local,
					.local_len = sizeof(v->h.local), .remote = (struct sockaddr *)&agent,
					.remote_len = sizeof(agent), .idle_timeout_ms = 60000,
					.handshake_timeout_ms = 60000, .max_stream_rx = 1024,
				};
				uv_poll_init(loop, &v->h.poll, v->h.fd);
				v->h.poll.data = &v->h;
				uv_poll_start(&v->h.poll, UV_READABLE, h_readable);
				v->h.qc = ls_quic_conn_client(&c, err, sizeof(err));
				if (!v->h.qc)
					die("connection", err);
			}
			sent++;
		}
		/* Read what comes back (Retry mostly) and drop it. */
		for (size_t i = 0; i < nsock; i++)
			while (recv(fds[i], b, sizeof(b), MSG_DONTWAIT) > 0)
				answers++;
		if (ring)
			for (size_t i = 0; i < RING; i++)
				if (ring[i].used && !ring[i].closing && now - ring[i].born > life)
					vconn_reap(&ring[i], &held, &refused, &retried);
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(100);
	}
	if (ring) {
		run_ms(100);
		for (size_t i = 0; i < RING; i++)
			if (ring[i].used && !ring[i].closing)
				vconn_reap(&ring[i], &held, &refused, &retried);
	}
	run_ms(20);
	json_t *o = json_pack("{s:s,s:I,s:f}", "kind", kind == FLOOD_CRAFTED ? "crafted" :
			      kind == FLOOD_INITIALS ? "initials" : "validated", "sent",
			      (json_int_t)(sent - skipped), "seconds",
			      (double)(ls_now_us() - start) / 1e6);
	if (ring) {
		json_object_set_new(o, "held", json_integer(held));
		json_object_set_new(o, "refused", json_integer(refused));
		json_object_set_new(o, "retried", json_integer(retried));
		json_object_set_new(o, "skipped", json_integer(skipped));
	} else {
		json_object_set_new(o, "answers", json_integer((json_int_t)answers));
	}
	out(o);
	for (size_t i = 0; i < nsock; i++)
		close(fds[i]);
	free(fds);
	free(local);
	free(ring);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	unsigned sources = 1, per = 1, wait_ms = 1000, nrandom = 200;
	uint64_t seed = 1;
	uint32_t first = 0x7f00000a; /* 127.0.0.10 */
	double rate = 1000, seconds = 2;
	enum flood_kind flood_kind = FLOOD_INITIALS;
	bool vanish = true;
	struct ls_dest dest;
	bool has_dest = false;
	char err[300];
	struct rlimit rl;

	ls_log_init("quic_hostile", LS_LOG_ERR);
	if (strcmp(mode, "--help") == 0 || strcmp(mode, "-h") == 0) {
		printf("quic_hostile streams|halfopen|flood --agent IP:PORT ... (see the source's "
		       "header)\n");
		return 0;
	}
	for (int i = 2; i < argc; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		struct in_addr ia;

		if (!v)
			die("a value is missing after", o);
		if (strcmp(o, "--agent") == 0) {
			if (ls_hostport_parse(v, &agent, false, false, err, sizeof(err)) < 0)
				die("--agent", err);
		} else if (strcmp(o, "--dest") == 0) {
			if (ls_dest_parse(v, &dest) < 0)
				die("--dest: not ip[/len][:port[-port]]", v);
			has_dest = true;
		} else if (strcmp(o, "--random") == 0) {
			nrandom = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(o, "--seed") == 0) {
			seed = strtoull(v, NULL, 10);
		} else if (strcmp(o, "--sources") == 0) {
			sources = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(o, "--per-source") == 0 || strcmp(o, "--count") == 0) {
			per = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(o, "--first-source") == 0) {
			if (inet_pton(AF_INET, v, &ia) != 1)
				die("--first-source: not an IPv4 address", v);
			first = ntohl(ia.s_addr);
		} else if (strcmp(o, "--wait-ms") == 0) {
			wait_ms = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(o, "--leave") == 0) {
			if (strcmp(v, "vanish") != 0 && strcmp(v, "close") != 0)
				die("--leave: vanish or close", v);
			vanish = strcmp(v, "vanish") == 0;
		} else if (strcmp(o, "--kind") == 0) {
			if (strcmp(v, "initials") == 0)
				flood_kind = FLOOD_INITIALS;
			else if (strcmp(v, "crafted") == 0)
				flood_kind = FLOOD_CRAFTED;
			else if (strcmp(v, "validated") == 0)
				flood_kind = FLOOD_VALIDATED;
			else
				die("--kind: initials, crafted or validated", v);
		} else if (strcmp(o, "--rate") == 0) {
			rate = atof(v);
		} else if (strcmp(o, "--seconds") == 0) {
			seconds = atof(v);
		} else {
			die("unknown option (see the source's header)", o);
		}
	}
	if (!agent.sin_port)
		die("--agent IP:PORT is required", NULL);
	if (sources < 1 || per < 1 || sources > 4096)
		die("--sources 1..4096 and --per-source >= 1", NULL);
	/* A socket per connection. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	loop = uv_default_loop();
	tls = ls_quic_tls_client(err, sizeof(err));
	if (!tls)
		die("TLS", err);
	if (strcmp(mode, "streams") == 0)
		return do_streams(has_dest ? &dest : NULL, nrandom, seed);
	if (strcmp(mode, "sessions") == 0)
		return do_sessions(first, per, has_dest ? &dest : NULL, vanish);
	if (strcmp(mode, "halfopen") == 0)
		return do_halfopen(first, sources, per, wait_ms);
	if (strcmp(mode, "flood") == 0)
		return do_flood(flood_kind, first, sources, rate, seconds);
	die("unknown mode (streams, sessions, halfopen, flood)", mode);
	return 2;
}
