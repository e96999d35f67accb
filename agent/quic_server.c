/* lightspeed-agent: the QUIC endpoint (quic_server.h). */
#include "quic_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "util.h"

#define CID_BUCKETS  4096
#define ADDR_BUCKETS 1024
#define MAX_CIDS     16   /* ids one connection may hold (ngtcp2 issues a few) */
#define READ_BATCH   64   /* datagrams per wake-up: the loop stays fair */
#define RESETS_PER_S 100  /* stateless resets: an answer to garbage, so kept rare */

struct cid_ent {
	struct cid_ent *next;
	struct qsc *c;
	uint8_t len;
	uint8_t id[NGTCP2_MAX_CIDLEN];
};

struct addr_ent {
	struct addr_ent *next;
	uint32_t ip;
	uint32_t half_open, conns;
};

/* Per connection. */
struct qsc {
	struct qs *s;
	struct ls_quic_conn *qc;
	struct sockaddr_in addr;
	bool open, half;
	struct cid_ent *cids[MAX_CIDS];
	unsigned ncids;
	struct qsc *prev, *next;
	void *user;
};

struct qs {
	uv_loop_t *loop;
	struct qs_conf conf;
	const struct qs_ops *ops;
	void *ctx;
	int fd;
	uv_poll_t poll;
	uv_timer_t sweep;
	bool wildcard;
	uint16_t port;
	struct ls_quic_tls *tls;
	uint8_t secret[LS_QUIC_SECRET_LEN];
	uint64_t hash_key;
	struct cid_ent *cid_tab[CID_BUCKETS];
	struct addr_ent *addr_tab[ADDR_BUCKETS];
	struct qsc *conns;
	uint64_t total;            /* connections held (half-open included) */
	struct qs_stats st;
	uint64_t reset_window_us;
	unsigned resets_in_window;
	uint64_t fresh_window_us;  /* connections taken without a token, this second */
	unsigned fresh_in_window;
	struct ls_ratelog rl;
	int closing;
	unsigned handles;
};

/* ---- tables ------------------------------------------------------------------------ */

/* Keyed so that a peer choosing its own connection ids cannot aim them at one
 * bucket. */
static uint64_t hash_bytes(uint64_t key, const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ key;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h ^ (h >> 32);
}

static struct cid_ent **cid_slot(struct qs *s, const uint8_t *id, size_t len)
{
	return &s->cid_tab[hash_bytes(s->hash_key, id, len) & (CID_BUCKETS - 1)];
}

static struct qsc *cid_find(struct qs *s, const uint8_t *id, size_t len)
{
	for (struct cid_ent *e = *cid_slot(s, id, len); e; e = e->next)
		if (e->len == len && memcmp(e->id, id, len) == 0)
			return e->c;
	return NULL;
}

static void cid_add(struct qsc *c, const ngtcp2_cid *cid)
{
	struct qs *s = c->s;
	struct cid_ent *e, **slot;

	if (c->ncids >= MAX_CIDS || cid->datalen > NGTCP2_MAX_CIDLEN ||
	    cid_find(s, cid->data, cid->datalen))
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->c = c;
	e->len = (uint8_t)cid->datalen;
	memcpy(e->id, cid->data, cid->datalen);
	slot = cid_slot(s, e->id, e->len);
	e->next = *slot;
	*slot = e;
	c->cids[c->ncids++] = e;
}

static void cid_remove_all(struct qsc *c)
{
	for (unsigned i = 0; i < c->ncids; i++) {
		struct cid_ent *e = c->cids[i], **pp = cid_slot(c->s, e->id, e->len);

		while (*pp && *pp != e)
			pp = &(*pp)->next;
		if (*pp)
			*pp = e->next;
		free(e);
	}
	c->ncids = 0;
}

static struct addr_ent *addr_get(struct qs *s, uint32_t ip, bool create)
{
	struct addr_ent **slot = &s->addr_tab[hash_bytes(s->hash_key, (const uint8_t *)&ip, 4) &
					      (ADDR_BUCKETS - 1)];

	for (struct addr_ent *e = *slot; e; e = e->next)
		if (e->ip == ip)
			return e;
	if (!create)
		return NULL;
	struct addr_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ip = ip;
	e->next = *slot;
	*slot = e;
	return e;
}

static void addr_put(struct qs *s, uint32_t ip)
{
	struct addr_ent **pp = &s->addr_tab[hash_bytes(s->hash_key, (const uint8_t *)&ip, 4) &
					    (ADDR_BUCKETS - 1)];

	while (*pp && (*pp)->ip != ip)
		pp = &(*pp)->next;
	if (*pp && (*pp)->half_open == 0 && (*pp)->conns == 0) {
		struct addr_ent *e = *pp;

		*pp = e->next;
		free(e);
	}
}

/* ---- connection callbacks ---------------------------------------------------------- */

static void half_done(struct qsc *c)
{
	struct addr_ent *a;

	if (!c->half)
		return;
	c->half = false;
	c->s->st.half_open--;
	if ((a = addr_get(c->s, c->addr.sin_addr.s_addr, false)))
		a->half_open--;
}

static void on_established(struct ls_quic_conn *qc)
{
	struct qsc *c = ls_quic_conn_data(qc);

	half_done(c);
	c->open = true;
	c->s->st.conns++;
	c->s->st.accepted++;
	if (c->s->ops->open)
		c->s->ops->open(c->s, qc);
}

static void answer_error(struct qs *s, struct ls_quic_conn *qc, int64_t sid,
			 enum ls_ctl_code code, const char *what)
{
	struct ls_ctl_msg m;

	ls_ctl_error(&m, code, "%s", what);
	qs_answer(s, qc, sid, &m);
}

static void on_frame(struct ls_quic_conn *qc, int64_t sid, const uint8_t *f, size_t n)
{
	struct qsc *c = ls_quic_conn_data(qc);
	struct qs *s = c->s;
	struct ls_ctl_msg m;
	char what[96];
	int rc = ls_ctl_decode(f, n, LS_CTL_TO_AGENT, &m);

	if (rc == LS_CTL_ERR_TYPE) {
		s->st.unknown_types++;
		snprintf(what, sizeof(what), "type 0x%02x is not a request this agent answers",
			 f[2]);
		answer_error(s, qc, sid, LS_CTL_E_UNKNOWN_TYPE, what);
		return;
	}
	if (rc != LS_CTL_OK) {
		s->st.malformed++;
		snprintf(what, sizeof(what), "%s frame: %s", ls_ctl_type_name(f[2]),
			 ls_ctl_strerror(rc));
		answer_error(s, qc, sid, LS_CTL_E_MALFORMED, what);
		return;
	}
	s->st.requests++;
	s->ops->request(s, qc, sid, &m);
}

static void on_stream_bad(struct ls_quic_conn *qc, int64_t sid, enum ls_quic_bad why)
{
	struct qsc *c = ls_quic_conn_data(qc);
	struct qs *s = c->s;

	switch (why) {
	case LS_QUIC_BAD_TOO_LONG:
		s->st.too_long++;
		answer_error(s, qc, sid, LS_CTL_E_TOO_LONG, "a request is at most 512 bytes");
		break;
	case LS_QUIC_BAD_TIMEOUT:
		s->st.stream_timeouts++;
		break;
	case LS_QUIC_BAD_EXTRA:
		/* One request per stream: the rest is read and dropped. */
		s->st.malformed++;
		break;
	default:
		s->st.malformed++;
		answer_error(s, qc, sid, LS_CTL_E_MALFORMED, ls_quic_bad_name(why));
	}
}

static void on_cid_new(struct ls_quic_conn *qc, const ngtcp2_cid *cid)
{
	cid_add(ls_quic_conn_data(qc), cid);
}

static void on_closed(struct ls_quic_conn *qc, const struct ls_quic_end *end)
{
	struct qsc *c = ls_quic_conn_data(qc);
	struct qs *s = c->s;

	if (c->half) {
		s->st.handshake_failures++;
		half_done(c);
	}
	if (c->open) {
		c->open = false;
		s->st.conns--;
		if (!s->closing && s->ops->closed)
			s->ops->closed(s, qc, end);
	}
}

static void on_released(struct ls_quic_conn *qc)
{
	struct qsc *c = ls_quic_conn_data(qc);
	struct qs *s = c->s;
	struct addr_ent *a;

	half_done(c);
	if (c->open) {
		c->open = false;
		s->st.conns--;
	}
	cid_remove_all(c);
	if ((a = addr_get(s, c->addr.sin_addr.s_addr, false))) {
		a->conns--;
		addr_put(s, c->addr.sin_addr.s_addr);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->total--;
	free(c);
}

static const struct ls_quic_ops conn_ops = {
	.established = on_established,
	.frame = on_frame,
	.stream_bad = on_stream_bad,
	.cid_new = on_cid_new,
	.closed = on_closed,
	.released = on_released,
};

/* ---- admission --------------------------------------------------------------------- */

static void send_retry(struct qs *s, const ngtcp2_pkt_hd *hd, const struct sockaddr *local,
		       const struct sockaddr_in *from, size_t rxlen)
{
	uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN], buf[LS_QUIC_MAX_PKT];
	ngtcp2_cid scid;
	ngtcp2_ssize tlen, n;

	scid.datalen = LS_QUIC_SCIDLEN;
	if (ls_quic_random(scid.data, scid.datalen) != 0)
		return;
	tlen = ngtcp2_crypto_generate_retry_token(token, s->secret, sizeof(s->secret),
						  hd->version, (const struct sockaddr *)from,
						  sizeof(*from), &scid, &hd->dcid, ls_quic_wall_ns());
	if (tlen < 0)
		return;
	/* Never more bytes than came: a Retry to a spoofed address amplifies nothing. */
	n = ngtcp2_crypto_write_retry(buf, rxlen < sizeof(buf) ? rxlen : sizeof(buf),
				      hd->version, &hd->scid, &scid, &hd->dcid, token,
				      (size_t)tlen);
	if (n < 0)
		return;
	if (ls_quic_sendto(s->fd, s->wildcard ? local : NULL, (const struct sockaddr *)from,
			   sizeof(*from), buf, (size_t)n) == 0)
		s->st.retries++;
}

static void send_close(struct qs *s, const ngtcp2_pkt_hd *hd, const struct sockaddr *local,
		       const struct sockaddr_in *from, uint64_t code)
{
	uint8_t buf[LS_QUIC_MAX_PKT];
	ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(buf, sizeof(buf), hd->version,
							      &hd->scid, &hd->dcid, code, NULL, 0);

	if (n > 0)
		ls_quic_sendto(s->fd, s->wildcard ? local : NULL, (const struct sockaddr *)from,
			       sizeof(*from), buf, (size_t)n);
}

static void send_reset(struct qs *s, const uint8_t *pkt, size_t len, const struct sockaddr *local,
		       const struct sockaddr_in *from)
{
	uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64], buf[128];
	ngtcp2_cid cid;
	uint64_t now = ls_now_us();
	size_t randlen;
	ngtcp2_ssize n;

	/* A reset must be shorter than what triggered it (two agents can never ping-pong)
	 * and long enough to look like a packet: 1 + 18 (our id length) + room. */
	if (len < 1 + LS_QUIC_SCIDLEN + NGTCP2_STATELESS_RESET_TOKENLEN + 4)
		return;
	if (now - s->reset_window_us > 1000000) {
		s->reset_window_us = now;
		s->resets_in_window = 0;
	}
	if (s->resets_in_window >= RESETS_PER_S)
		return;
	s->resets_in_window++;
	cid.datalen = LS_QUIC_SCIDLEN;
	memcpy(cid.data, pkt + 1, LS_QUIC_SCIDLEN);
	if (ngtcp2_crypto_generate_stateless_reset_token(token, s->secret, sizeof(s->secret),
							 &cid) != 0)
		return;
	randlen = len - 1 - NGTCP2_STATELESS_RESET_TOKENLEN - 1;
	if (randlen > sizeof(rnd))
		randlen = sizeof(rnd);
	if (ls_quic_random(rnd, randlen) != 0)
		return;
	n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rnd, randlen);
	if (n > 0 && ls_quic_sendto(s->fd, s->wildcard ? local : NULL,
				    (const struct sockaddr *)from, sizeof(*from), buf,
				    (size_t)n) == 0)
		s->st.resets++;
}

/* A datagram for no connection we know: an Initial we may accept, or not. */
static void accept_new(struct qs *s, const uint8_t *pkt, size_t len, const struct sockaddr_in *local,
		       const struct sockaddr_in *from)
{
	ngtcp2_pkt_hd hd;
	ngtcp2_cid ocid, *pocid = NULL;
	struct addr_ent *a;
	struct qsc *c;
	char err[160], ab[LS_ADDRSTRLEN];
	bool validated = false;
	int rv;

	if (len > 0 && !(pkt[0] & 0x80)) {
		/* Short header: a connection of an earlier life of this agent. */
		send_reset(s, pkt, len, (const struct sockaddr *)local, from);
		s->st.dropped++;
		return;
	}
	rv = ngtcp2_accept(&hd, pkt, len);
	if (rv != 0) {
		s->st.dropped++;
		return;
	}
	if (hd.token.len > 0 && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
		if (ngtcp2_crypto_verify_retry_token(&ocid, hd.token.base, hd.token.len, s->secret,
						     sizeof(s->secret), hd.version,
						     (const struct sockaddr *)from, sizeof(*from),
						     &hd.dcid, 10 * NGTCP2_SECONDS,
						     ls_quic_wall_ns()) != 0) {
			s->st.bad_tokens++;
			send_close(s, &hd, (const struct sockaddr *)local, from, NGTCP2_INVALID_TOKEN);
			return;
		}
		pocid = &ocid;
		validated = true;
	} else {
		/* We issue no NEW_TOKEN tokens: anything else is ignored. */
		hd.token.base = NULL;
		hd.token.len = 0;
	}
	a = addr_get(s, from->sin_addr.s_addr, false);
	if (!validated) {
		uint64_t now = ls_now_us();

		/* Load is counted two ways: handshakes in progress, and connections taken
		 * on trust this second. The second catches Initials that do not decrypt:
		 * each is gone at once (never "in progress") but costs a connection's
		 * setup, so a flood of them would otherwise never meet a Retry. */
		if (now - s->fresh_window_us > 1000000) {
			s->fresh_window_us = now;
			s->fresh_in_window = 0;
		}
		if (s->conf.retry_after == 0 || s->st.half_open >= s->conf.retry_after ||
		    s->fresh_in_window >= s->conf.retry_after || (a && a->half_open > 0)) {
			send_retry(s, &hd, (const struct sockaddr *)local, from, len);
			return;
		}
	}
	if (s->total >= s->conf.max_conns || s->st.half_open >= s->conf.max_half_open ||
	    (a && (a->half_open >= s->conf.max_half_open_per_addr ||
		   a->conns >= s->conf.max_conns_per_addr))) {
		s->st.refused++;
		ls_warn_rl(&s->rl, "refused a QUIC connection from %s: %llu connections, %llu "
			   "handshakes in progress (limits max_conns, max_half_open, per address)",
			   ls_addr_fmt(from, ab), (unsigned long long)s->total,
			   (unsigned long long)s->st.half_open);
		/* Only a validated address hears why; a spoofed one hears nothing. */
		if (validated)
			send_close(s, &hd, (const struct sockaddr *)local, from,
				   NGTCP2_CONNECTION_REFUSED);
		return;
	}
	a = addr_get(s, from->sin_addr.s_addr, true);
	if (!validated)
		s->fresh_in_window++;
	c = calloc(1, sizeof(*c));
	if (!a || !c) {
		free(c);
		if (a)
			addr_put(s, from->sin_addr.s_addr);
		s->st.refused++;
		return;
	}
	c->s = s;
	c->addr = *from;
	c->half = true;
	a->half_open++;
	a->conns++;
	s->st.half_open++;
	s->total++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	struct ls_quic_conf qcf = {
		.loop = s->loop, .ops = &conn_ops, .data = c, .tls = s->tls, .fd = s->fd,
		.local = (const struct sockaddr *)local, .local_len = sizeof(*local),
		.remote = (const struct sockaddr *)from, .remote_len = sizeof(*from),
		.pktinfo = s->wildcard, .idle_timeout_ms = s->conf.idle_timeout_ms,
		.handshake_timeout_ms = s->conf.handshake_timeout_ms,
		.max_stream_rx = LS_CTL_MAX_REQUEST, .max_streams = LS_QUIC_MAX_STREAMS,
		.secret = s->secret,
	};
	c->qc = ls_quic_conn_server(&qcf, &hd, pocid, err, sizeof(err));
	if (!c->qc) {
		ls_warn_rl(&s->rl, "QUIC connection from %s: %s", ls_addr_fmt(from, ab), err);
		/* on_released has not run: undo by hand. */
		cid_remove_all(c);
		half_done(c);
		a->conns--;
		addr_put(s, from->sin_addr.s_addr);
		if (c->prev)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		s->total--;
		free(c);
		return;
	}
	ls_quic_conn_input(c->qc, (const struct sockaddr *)local, sizeof(*local),
			   (const struct sockaddr *)from, sizeof(*from), pkt, len);
}

/* ---- socket ------------------------------------------------------------------------ */

static void on_datagram(struct qs *s, const uint8_t *pkt, size_t len,
			const struct sockaddr_in *local, const struct sockaddr_in *from)
{
	ngtcp2_version_cid vc;
	struct qsc *c;
	int rv;

	s->st.datagrams++;
	/* ngtcp2 asserts on an empty datagram: refuse it here. */
	if (len == 0) {
		s->st.dropped++;
		return;
	}
	rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, LS_QUIC_SCIDLEN);
	if (rv != 0) {
		/* Version negotiation is not offered: there is one version. */
		s->st.dropped++;
		return;
	}
	c = cid_find(s, vc.dcid, vc.dcidlen);
	if (!c) {
		accept_new(s, pkt, len, local, from);
		return;
	}
	ls_quic_conn_input(c->qc, (const struct sockaddr *)local, sizeof(*local),
			   (const struct sockaddr *)from, sizeof(*from), pkt, len);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct qs *s = p->data;
	uint8_t buf[LS_QUIC_RX_BUF];

	(void)events;
	if (status < 0) {
		/* libuv stops the poll on a socket error: take it and go on listening. */
		int e = 0;
		socklen_t el = sizeof(e);

		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		uv_poll_start(p, UV_READABLE, on_readable);
		return;
	}
	for (int i = 0; i < READ_BATCH; i++) {
		struct sockaddr_in from, local;
		struct iovec iov = { buf, sizeof(buf) };
		union {
			char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} ctl;
		struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from),
				      .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		ssize_t n = recvmsg(s->fd, &msg, MSG_DONTWAIT);

		if (n < 0)
			break;
		if ((msg.msg_flags & MSG_TRUNC) || from.sin_family != AF_INET ||
		    msg.msg_namelen != sizeof(from)) {
			s->st.dropped++;
			continue;
		}
		local = s->conf.listen;
		local.sin_port = htons(s->port);
		if (s->wildcard) {
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
				if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
					struct in_pktinfo pi;

					memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
					local.sin_addr = pi.ipi_addr;
				}
		}
		on_datagram(s, buf, (size_t)n, &local, &from);
	}
}

static void on_sweep(uv_timer_t *t)
{
	struct qs *s = t->data;
	uint64_t now = ls_now_us();

	for (struct qsc *c = s->conns, *next; c; c = next) {
		next = c->next;
		ls_quic_conn_sweep(c->qc, now, (uint64_t)s->conf.stream_timeout_ms * 1000u);
	}
}

struct qs *qs_open(uv_loop_t *loop, const struct qs_conf *conf, const struct qs_ops *ops,
		   void *ctx, char *err, size_t errlen)
{
	struct qs *s = calloc(1, sizeof(*s));
	struct sockaddr_in bound;
	socklen_t blen = sizeof(bound);
	int one = 1, rcv = 4 << 20;
	char ab[LS_ADDRSTRLEN];

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->conf = *conf;
	s->ops = ops;
	s->ctx = ctx;
	memcpy(s->secret, conf->secret, sizeof(s->secret));
	if (ls_quic_random(&s->hash_key, sizeof(s->hash_key)) != 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		free(s);
		return NULL;
	}
	s->tls = ls_quic_tls_server(conf->cert_file, conf->key_file, err, errlen);
	if (!s->tls) {
		free(s);
		return NULL;
	}
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	s->wildcard = conf->listen.sin_addr.s_addr == htonl(INADDR_ANY);
	if (s->wildcard)
		setsockopt(s->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	if (bind(s->fd, (const struct sockaddr *)&conf->listen, sizeof(conf->listen)) != 0) {
		snprintf(err, errlen, "QUIC listen %s: %s (another agent running? choose "
			 "another with --listen)", ls_addr_fmt(&conf->listen, ab), strerror(errno));
		goto fail;
	}
	getsockname(s->fd, (struct sockaddr *)&bound, &blen);
	s->port = ntohs(bound.sin_port);
	uv_poll_init(loop, &s->poll, s->fd);
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE, on_readable);
	uv_timer_init(loop, &s->sweep);
	s->sweep.data = s;
	uv_timer_start(&s->sweep, on_sweep, 1000, 1000);
	return s;
fail:
	if (s->fd >= 0)
		close(s->fd);
	ls_quic_tls_free(s->tls);
	free(s);
	return NULL;
}

void *qs_ctx(const struct qs *s)
{
	return s->ctx;
}

uint16_t qs_port(const struct qs *s)
{
	return s->port;
}

int qs_answer(struct qs *s, struct ls_quic_conn *qc, int64_t sid, const struct ls_ctl_msg *m)
{
	uint8_t buf[8192];
	long n = ls_ctl_encode(m, buf, sizeof(buf));

	(void)s;
	if (n < 0) {
		ls_err("cannot encode a %s answer", ls_ctl_type_name(m->type));
		return -1;
	}
	return ls_quic_conn_answer(qc, sid, buf, (size_t)n);
}

void qs_get_stats(const struct qs *s, struct qs_stats *st)
{
	*st = s->st;
}

void *qs_conn_user(const struct ls_quic_conn *qc)
{
	return ((struct qsc *)ls_quic_conn_data(qc))->user;
}

void qs_conn_set_user(struct ls_quic_conn *qc, void *user)
{
	((struct qsc *)ls_quic_conn_data(qc))->user = user;
}

const struct sockaddr_in *qs_conn_addr(const struct ls_quic_conn *qc)
{
	return &((struct qsc *)ls_quic_conn_data(qc))->addr;
}

static void handle_closed(uv_handle_t *h)
{
	struct qs *s = h->data;

	if (--s->handles == 0) {
		close(s->fd);
		ls_quic_tls_free(s->tls);
		memset(s->secret, 0, sizeof(s->secret));
		free(s);
	}
}

void qs_close(struct qs *s, uint64_t code)
{
	s->closing = 1;
	while (s->conns) {
		struct ls_quic_conn *qc = s->conns->qc;

		ls_quic_conn_close(qc, code, "agent shutting down");
		ls_quic_conn_destroy(qc);
	}
	s->handles = 2;
	uv_poll_stop(&s->poll);
	uv_timer_stop(&s->sweep);
	uv_close((uv_handle_t *)&s->poll, handle_closed);
	uv_close((uv_handle_t *)&s->sweep, handle_closed);
}
