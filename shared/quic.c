/* One QUIC connection of the control plane, either end (shared/quic.h). The shape
 * follows ngtcp2 0.12.1's examples (gtlssimpleclient.c, server.cc): packets in through
 * ngtcp2_conn_read_pkt, packets out through ngtcp2_conn_writev_stream until it has
 * nothing, then the timer set to ngtcp2_conn_get_expiry. ngtcp2 forbids calling its
 * write functions from inside its callbacks, so the callbacks here only record what
 * happened; the owner hears of it after read_pkt returns. */
#include "quic.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* TLS 1.3 only, the AEADs ngtcp2's GnuTLS backend supports, no middlebox
 * compatibility mode (QUIC has no record layer to disguise). */
static const char tls_priority[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
	"+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
	"+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

struct ls_quic_tls {
	gnutls_certificate_credentials_t cred;
	/* Parsed once: gnutls_priority_set_direct on every connection kept a parsed copy
	 * (8 KB) per connection for as long as it lived. */
	gnutls_priority_t prio;
	bool server;
};

static int tls_prio(struct ls_quic_tls *t, char *err, size_t errlen)
{
	int rv = gnutls_priority_init(&t->prio, tls_priority, NULL);

	if (rv < 0) {
		t->prio = NULL;
		snprintf(err, errlen, "TLS priority: %s", gnutls_strerror(rv));
		return -1;
	}
	return 0;
}

enum stream_ev {
	SEV_FRAME = 1,  /* a whole frame waits for delivery */
	SEV_BAD = 2,    /* a fault waits for delivery */
	SEV_CLOSED = 4, /* ngtcp2 closed it: tell the owner, free the slot */
};

struct stream {
	bool used;
	int64_t id;
	uint64_t opened_us;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	bool rx_done;       /* a frame (or a fault) was taken from it */
	bool rx_fin;
	bool faulted;       /* a fault was recorded: later bytes are dropped quietly */
	uint8_t *tx;        /* kept until the stream closes: ngtcp2 does not copy */
	size_t tx_len, tx_sent;
	bool tx_fin;        /* end our side once tx is sent */
	bool tx_fin_sent;   /* everything we have to send is sent */
	bool has_tx;
	unsigned ev;
	enum ls_quic_bad bad;
	size_t frame_len;
};

enum conn_state { CS_HANDSHAKE, CS_OPEN, CS_CLOSING, CS_DRAINING, CS_DEAD };

struct ls_quic_conn {
	ngtcp2_crypto_conn_ref ref;
	ngtcp2_conn *conn;
	gnutls_session_t tls;
	const struct ls_quic_ops *ops;
	void *data;
	uv_loop_t *loop;
	uv_timer_t timer;
	int fd;
	bool server, pktinfo;
	struct sockaddr_storage local, remote;
	socklen_t local_len, remote_len;
	enum conn_state state;
	bool ev_established, ev_reset, in_read, freed;
	struct ls_quic_end end;
	bool end_set;
	ngtcp2_connection_close_error last_error;
	uint8_t closebuf[LS_QUIC_MAX_PKT];
	size_t close_len;
	unsigned close_resent;
	size_t max_stream_rx;
	uint8_t secret[LS_QUIC_SECRET_LEN];
	uint8_t peer_fp[LS_CTL_FP_LEN];
	bool has_peer_fp;
	uint64_t started_us;
	struct stream streams[LS_QUIC_MAX_STREAMS];
};

/* ---- small helpers ----------------------------------------------------------------- */

uint64_t ls_quic_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

uint64_t ls_quic_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

int ls_quic_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ls_quic_sendto(int fd, const struct sockaddr *local, const struct sockaddr *remote,
		   socklen_t remote_len, const uint8_t *buf, size_t len)
{
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { .msg_name = (void *)(uintptr_t)remote, .msg_namelen = remote_len,
			      .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (local && local->sa_family == AF_INET) {
		struct cmsghdr *cm;
		struct in_pktinfo pi = { 0 };

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		pi.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	}
	do
		n = sendmsg(fd, &msg, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

void ls_quic_fp_der(const uint8_t *der, size_t len, uint8_t fp[LS_CTL_FP_LEN])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der, len, fp) != 0)
		memset(fp, 0, LS_CTL_FP_LEN);
}

const char *ls_quic_end_name(enum ls_quic_end_kind k)
{
	switch (k) {
	case LS_QUIC_END_LOCAL: return "closed";
	case LS_QUIC_END_PEER: return "closed by peer";
	case LS_QUIC_END_IDLE: return "idle timeout";
	case LS_QUIC_END_HANDSHAKE: return "handshake timeout";
	case LS_QUIC_END_RESET: return "stateless reset";
	case LS_QUIC_END_ERROR: return "error";
	}
	return "?";
}

const char *ls_quic_bad_name(enum ls_quic_bad b)
{
	switch (b) {
	case LS_QUIC_BAD_TOO_LONG: return "frame too long";
	case LS_QUIC_BAD_TRUNCATED: return "stream ended inside a frame";
	case LS_QUIC_BAD_EXTRA: return "bytes after the frame";
	case LS_QUIC_BAD_FRAMING: return "not one whole frame";
	case LS_QUIC_BAD_TIMEOUT: return "stream left open";
	}
	return "?";
}

/* ---- TLS ------------------------------------------------------------------------- */

struct ls_quic_tls *ls_quic_tls_server(const char *cert_file, const char *key_file, char *err,
				       size_t errlen)
{
	struct ls_quic_tls *t = calloc(1, sizeof(*t));
	int rv;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->server = true;
	if ((rv = gnutls_certificate_allocate_credentials(&t->cred)) < 0 ||
	    (rv = gnutls_certificate_set_x509_key_file(t->cred, cert_file, key_file,
							GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(err, errlen, "%s / %s: %s", cert_file, key_file, gnutls_strerror(rv));
		ls_quic_tls_free(t);
		return NULL;
	}
	if (tls_prio(t, err, errlen) != 0) {
		ls_quic_tls_free(t);
		return NULL;
	}
	return t;
}

struct ls_quic_tls *ls_quic_tls_client(char *err, size_t errlen)
{
	struct ls_quic_tls *t = calloc(1, sizeof(*t));
	int rv;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* No trust store: the agent's certificate is self-signed and pinned by its
	 * fingerprint (verify_peer), as ssh pins host keys. */
	if ((rv = gnutls_certificate_allocate_credentials(&t->cred)) < 0) {
		snprintf(err, errlen, "TLS credentials: %s", gnutls_strerror(rv));
		free(t);
		return NULL;
	}
	if (tls_prio(t, err, errlen) != 0) {
		ls_quic_tls_free(t);
		return NULL;
	}
	return t;
}

void ls_quic_tls_free(struct ls_quic_tls *t)
{
	if (!t)
		return;
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	if (t->prio)
		gnutls_priority_deinit(t->prio);
	free(t);
}

static const gnutls_datum_t alpn_datum = { (unsigned char *)LS_CTL_ALPN,
					   sizeof(LS_CTL_ALPN) - 1 };

static bool alpn_ok(gnutls_session_t s)
{
	gnutls_datum_t p;

	return gnutls_alpn_get_selected_protocol(s, &p) == 0 && p.size == alpn_datum.size &&
	       memcmp(p.data, alpn_datum.data, p.size) == 0;
}

/* Client side: the pin. The handshake has verified that the peer holds the key of the
 * certificate it sent (CertificateVerify); which certificate is acceptable is the
 * owner's decision. */
static int tls_verify(gnutls_session_t s)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
	struct ls_quic_conn *qc = ref->user_data;
	const gnutls_datum_t *certs;
	unsigned n = 0;

	certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n == 0)
		return -1;
	ls_quic_fp_der(certs[0].data, certs[0].size, qc->peer_fp);
	qc->has_peer_fp = true;
	if (!qc->ops->verify_peer)
		return 0;
	return qc->ops->verify_peer(qc, qc->peer_fp) == 0 ? 0 : -1;
}

static int tls_session(struct ls_quic_conn *qc, struct ls_quic_tls *t, const char *alpn,
		       char *err, size_t errlen)
{
	gnutls_datum_t other = { (unsigned char *)(uintptr_t)alpn, alpn ? (unsigned)strlen(alpn) : 0 };
	unsigned flags = (t->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_TICKETS |
			 GNUTLS_NO_END_OF_EARLY_DATA;
	int rv;

	if ((rv = gnutls_init(&qc->tls, flags)) < 0) {
		snprintf(err, errlen, "gnutls_init: %s", gnutls_strerror(rv));
		qc->tls = NULL;
		return -1;
	}
	if ((t->server ? ngtcp2_crypto_gnutls_configure_server_session(qc->tls)
		       : ngtcp2_crypto_gnutls_configure_client_session(qc->tls)) != 0) {
		snprintf(err, errlen, "ngtcp2_crypto_gnutls_configure_session failed");
		return -1;
	}
	if ((rv = gnutls_priority_set(qc->tls, t->prio)) < 0 ||
	    (rv = gnutls_credentials_set(qc->tls, GNUTLS_CRD_CERTIFICATE, t->cred)) < 0) {
		snprintf(err, errlen, "TLS setup: %s", gnutls_strerror(rv));
		return -1;
	}
	gnutls_session_set_ptr(qc->tls, &qc->ref);
	/* Mandatory on both sides: a peer that does not speak lightspeed-ctl/1 fails the
	 * handshake (no_application_protocol), and cb_handshake_completed checks again. */
	gnutls_alpn_set_protocols(qc->tls, alpn ? &other : &alpn_datum, 1,
				  GNUTLS_ALPN_MANDATORY |
					  (t->server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0));
	if (!t->server)
		gnutls_session_set_verify_function(qc->tls, tls_verify);
	return 0;
}

/* ---- streams ------------------------------------------------------------------------- */

static struct stream *stream_find(struct ls_quic_conn *qc, int64_t id)
{
	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS; i++)
		if (qc->streams[i].used && qc->streams[i].id == id)
			return &qc->streams[i];
	return NULL;
}

static struct stream *stream_new(struct ls_quic_conn *qc, int64_t id)
{
	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS; i++) {
		struct stream *s = &qc->streams[i];

		if (!s->used) {
			memset(s, 0, sizeof(*s));
			s->used = true;
			s->id = id;
			s->opened_us = ls_now_us();
			return s;
		}
	}
	return NULL;
}

static void stream_free(struct stream *s)
{
	free(s->rx);
	free(s->tx);
	memset(s, 0, sizeof(*s));
}

unsigned ls_quic_conn_streams(const struct ls_quic_conn *qc)
{
	unsigned n = 0;

	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS; i++)
		n += qc->streams[i].used;
	return n;
}

static void stream_fault(struct stream *s, enum ls_quic_bad why)
{
	s->rx_done = true;
	s->faulted = true;
	s->ev |= SEV_BAD;
	s->bad = why;
}

/* Bytes in: keep them until one frame is whole; anything wrong is a fault. */
static void stream_rx(struct ls_quic_conn *qc, struct stream *s, const uint8_t *data, size_t n,
		      bool fin)
{
	size_t need;
	int rc;

	if (fin)
		s->rx_fin = true;
	if (s->rx_done) {
		if (n > 0 && !s->faulted)
			stream_fault(s, LS_QUIC_BAD_EXTRA);
		return;
	}
	if (s->rx_len + n > qc->max_stream_rx) {
		stream_fault(s, LS_QUIC_BAD_TOO_LONG);
		return;
	}
	if (n > 0) {
		if (s->rx_len + n > s->rx_cap) {
			size_t cap = s->rx_cap ? s->rx_cap : 256;
			uint8_t *p;

			while (cap < s->rx_len + n)
				cap *= 2;
			if (cap > qc->max_stream_rx)
				cap = qc->max_stream_rx;
			p = realloc(s->rx, cap);
			if (!p) {
				stream_fault(s, LS_QUIC_BAD_TOO_LONG);
				return;
			}
			s->rx = p;
			s->rx_cap = cap;
		}
		memcpy(s->rx + s->rx_len, data, n);
		s->rx_len += n;
	}
	rc = ls_ctl_frame_len(s->rx, s->rx_len, &need);
	if (rc == LS_CTL_ERR_MALFORMED) {
		stream_fault(s, LS_QUIC_BAD_FRAMING);
		return;
	}
	if (rc == LS_CTL_OK && need > qc->max_stream_rx) {
		stream_fault(s, LS_QUIC_BAD_TOO_LONG);
		return;
	}
	if (rc == LS_CTL_OK && s->rx_len >= need) {
		if (s->rx_len > need) {
			/* More than one frame in one request: not a request. */
			stream_fault(s, LS_QUIC_BAD_FRAMING);
			return;
		}
		s->rx_done = true;
		s->frame_len = need;
		s->ev |= SEV_FRAME;
		return;
	}
	if (s->rx_fin)
		stream_fault(s, LS_QUIC_BAD_TRUNCATED);
}

/* ---- ngtcp2 callbacks (record only) ----------------------------------------------- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct ls_quic_conn *)ref->user_data)->conn;
}

static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
	(void)ctx;
	/* ngtcp2 uses this for packet-number skipping and padding, not for secrets. */
	if (ls_quic_random(dest, len) != 0)
		memset(dest, 0, len);
}

static int cb_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
		      void *user)
{
	struct ls_quic_conn *qc = user;

	(void)conn;
	if (ls_quic_random(cid->data, cidlen) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	cid->datalen = cidlen;
	if (qc->server) {
		/* Tokens derived from the static secret: an agent restarted with the same
		 * state directory can still reset a connection it no longer knows. */
		if (ngtcp2_crypto_generate_stateless_reset_token(token, qc->secret,
								 sizeof(qc->secret), cid) != 0)
			return NGTCP2_ERR_CALLBACK_FAILURE;
		if (qc->ops->cid_new)
			qc->ops->cid_new(qc, cid);
	} else if (ls_quic_random(token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0) {
		return NGTCP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int cb_handshake_completed(ngtcp2_conn *conn, void *user)
{
	struct ls_quic_conn *qc = user;

	(void)conn;
	if (!alpn_ok(qc->tls))
		return NGTCP2_ERR_CALLBACK_FAILURE;
	qc->ev_established = true;
	return 0;
}

static int cb_stream_open(ngtcp2_conn *conn, int64_t id, void *user)
{
	struct ls_quic_conn *qc = user;

	/* Only the client opens streams (the client's transport parameters allow the
	 * agent none); the agent's MAX_STREAMS keeps a peer within our slots. */
	if (!stream_new(qc, id))
		ngtcp2_conn_shutdown_stream(conn, id, 1);
	return 0;
}

static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
			       const uint8_t *data, size_t len, void *user, void *stream_user)
{
	struct ls_quic_conn *qc = user;
	struct stream *s = stream_find(qc, id);

	(void)offset;
	(void)stream_user;
	/* We hold the bytes now (or drop them): give the flow-control credit back for
	 * the connection. A stream's own window is its byte limit, never extended. */
	ngtcp2_conn_extend_max_offset(conn, len);
	if (!s)
		return 0;
	stream_rx(qc, s, data, len, flags & NGTCP2_STREAM_DATA_FLAG_FIN);
	if ((s->ev & SEV_BAD) && !s->rx_fin)
		ngtcp2_conn_shutdown_stream_read(conn, id, 1);
	return 0;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t code,
			   void *user, void *stream_user)
{
	struct ls_quic_conn *qc = user;
	struct stream *s = stream_find(qc, id);

	(void)flags;
	(void)code;
	(void)stream_user;
	if (qc->server && !ngtcp2_conn_is_local_stream(conn, id))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	if (s)
		s->ev |= SEV_CLOSED;
	return 0;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size, uint64_t code,
			   void *user, void *stream_user)
{
	struct ls_quic_conn *qc = user;
	struct stream *s = stream_find(qc, id);

	(void)conn;
	(void)final_size;
	(void)code;
	(void)stream_user;
	if (s && !s->rx_done)
		stream_fault(s, LS_QUIC_BAD_TRUNCATED);
	return 0;
}

static int cb_stateless_reset(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr,
			      void *user)
{
	(void)conn;
	(void)sr;
	((struct ls_quic_conn *)user)->ev_reset = true;
	return 0;
}

static const ngtcp2_callbacks client_callbacks = {
	.client_initial = ngtcp2_crypto_client_initial_cb,
	.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
	.handshake_completed = cb_handshake_completed,
	.encrypt = ngtcp2_crypto_encrypt_cb,
	.decrypt = ngtcp2_crypto_decrypt_cb,
	.hp_mask = ngtcp2_crypto_hp_mask_cb,
	.recv_stream_data = cb_recv_stream_data,
	.stream_open = cb_stream_open,
	.stream_close = cb_stream_close,
	.recv_stateless_reset = cb_stateless_reset,
	.recv_retry = ngtcp2_crypto_recv_retry_cb,
	.rand = cb_rand,
	.get_new_connection_id = cb_new_cid,
	.update_key = ngtcp2_crypto_update_key_cb,
	.stream_reset = cb_stream_reset,
	.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
	.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
	.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
	.version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

static const ngtcp2_callbacks server_callbacks = {
	.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
	.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
	.handshake_completed = cb_handshake_completed,
	.encrypt = ngtcp2_crypto_encrypt_cb,
	.decrypt = ngtcp2_crypto_decrypt_cb,
	.hp_mask = ngtcp2_crypto_hp_mask_cb,
	.recv_stream_data = cb_recv_stream_data,
	.stream_open = cb_stream_open,
	.stream_close = cb_stream_close,
	.rand = cb_rand,
	.get_new_connection_id = cb_new_cid,
	.update_key = ngtcp2_crypto_update_key_cb,
	.stream_reset = cb_stream_reset,
	.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
	.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
	.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
	.version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

static void quic_log(void *user, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	(void)user;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ls_debug("ngtcp2: %s", line);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);
static void conn_flush(struct ls_quic_conn *qc);

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* The end of the memory: the owner forgets qc, the timer closes, the free follows in
 * the close callback (libuv frees nothing a handle still names). */
static void conn_release(struct ls_quic_conn *qc)
{
	if (qc->freed)
		return;
	qc->freed = true;
	qc->state = CS_DEAD;
	if (qc->ops->released)
		qc->ops->released(qc);
	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS; i++)
		if (qc->streams[i].used)
			stream_free(&qc->streams[i]);
	if (qc->conn)
		ngtcp2_conn_del(qc->conn);
	qc->conn = NULL;
	if (qc->tls)
		gnutls_deinit(qc->tls);
	qc->tls = NULL;
	memset(qc->secret, 0, sizeof(qc->secret));
	uv_timer_stop(&qc->timer);
	qc->timer.data = qc;
	uv_close((uv_handle_t *)&qc->timer, timer_closed);
}

static void conn_set_end(struct ls_quic_conn *qc, enum ls_quic_end_kind kind, bool app,
			 uint64_t code, const char *reason)
{
	if (qc->end_set)
		return;
	qc->end_set = true;
	qc->end.kind = kind;
	qc->end.app = app;
	qc->end.code = code;
	snprintf(qc->end.reason, sizeof(qc->end.reason), "%s", reason ? reason : "");
	for (char *p = qc->end.reason; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

/* Tell the owner that the connection is over; streams are closed with it. */
static void conn_report_end(struct ls_quic_conn *qc)
{
	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS; i++) {
		struct stream *s = &qc->streams[i];

		if (s->used) {
			int64_t id = s->id;

			stream_free(s);
			if (qc->ops->stream_closed)
				qc->ops->stream_closed(qc, id);
		}
	}
	if (qc->ops->closed)
		qc->ops->closed(qc, &qc->end);
}

static void period_timer(struct ls_quic_conn *qc)
{
	uint64_t ms = 3 * ngtcp2_conn_get_pto(qc->conn) / NGTCP2_MILLISECONDS + 1;

	uv_timer_start(&qc->timer, on_timer, ms, 0);
}

static void conn_drain(struct ls_quic_conn *qc, enum ls_quic_end_kind kind)
{
	ngtcp2_connection_close_error ce;
	char reason[sizeof(qc->end.reason)] = "";

	if (qc->state >= CS_CLOSING)
		return;
	ngtcp2_conn_get_connection_close_error(qc->conn, &ce);
	if (ce.reasonlen) {
		/* ngtcp2's reason is not NUL-terminated; conn_set_end cleans it. */
		size_t k = ce.reasonlen < sizeof(reason) - 1 ? ce.reasonlen : sizeof(reason) - 1;

		memcpy(reason, ce.reason, k);
		reason[k] = '\0';
	}
	qc->state = CS_DRAINING;
	conn_set_end(qc, kind, ce.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION,
		     ce.error_code, reason);
	period_timer(qc);
	conn_report_end(qc);
}

/* Write CONNECTION_CLOSE with last_error, keep it for the closing period. */
static void conn_enter_closing(struct ls_quic_conn *qc, enum ls_quic_end_kind kind,
			       const char *why)
{
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_ssize n;

	if (qc->state >= CS_CLOSING)
		return;
	ngtcp2_path_storage_zero(&ps);
	n = ngtcp2_conn_write_connection_close(qc->conn, &ps.path, &pi, qc->closebuf,
					       sizeof(qc->closebuf), &qc->last_error,
					       ls_quic_now_ns());
	qc->state = CS_CLOSING;
	conn_set_end(qc, kind,
		     qc->last_error.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION,
		     qc->last_error.error_code, why);
	if (n > 0) {
		qc->close_len = (size_t)n;
		ls_quic_sendto(qc->fd, qc->pktinfo ? (struct sockaddr *)&qc->local : NULL,
			       (struct sockaddr *)&qc->remote, qc->remote_len, qc->closebuf,
			       qc->close_len);
	}
	period_timer(qc);
	conn_report_end(qc);
}

/* A library error: tell the peer (a TLS alert for a handshake failure), close. */
static void conn_fail(struct ls_quic_conn *qc, int liberr)
{
	char why[96];

	if (liberr == NGTCP2_ERR_CRYPTO)
		ngtcp2_connection_close_error_set_transport_error_tls_alert(
			&qc->last_error, ngtcp2_conn_get_tls_alert(qc->conn), NULL, 0);
	else
		ngtcp2_connection_close_error_set_transport_error_liberr(&qc->last_error, liberr,
									 NULL, 0);
	snprintf(why, sizeof(why), "%s", ngtcp2_strerror(liberr));
	if (liberr == NGTCP2_ERR_CRYPTO && qc->has_peer_fp && !qc->server)
		snprintf(why, sizeof(why), "TLS handshake failed (certificate refused?)");
	conn_enter_closing(qc, LS_QUIC_END_ERROR, why);
}

static void on_timer(uv_timer_t *t)
{
	struct ls_quic_conn *qc = t->data;
	int rv;

	if (qc->state == CS_CLOSING || qc->state == CS_DRAINING) {
		conn_release(qc);
		return;
	}
	if (qc->state == CS_DEAD)
		return;
	rv = ngtcp2_conn_handle_expiry(qc->conn, ls_quic_now_ns());
	if (rv == NGTCP2_ERR_IDLE_CLOSE || rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
		/* Nothing to say to a peer that went silent: just forget it. */
		conn_set_end(qc, rv == NGTCP2_ERR_IDLE_CLOSE ? LS_QUIC_END_IDLE
							     : LS_QUIC_END_HANDSHAKE,
			     false, 0, NULL);
		qc->state = CS_DEAD;
		conn_report_end(qc);
		conn_release(qc);
		return;
	}
	if (rv != 0) {
		conn_fail(qc, rv);
		return;
	}
	conn_flush(qc);
}

static void conn_arm_timer(struct ls_quic_conn *qc)
{
	ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(qc->conn), now = ls_quic_now_ns();
	uint64_t ms;

	if (exp == UINT64_MAX) {
		uv_timer_stop(&qc->timer);
		return;
	}
	ms = exp <= now ? 0 : (exp - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
	uv_timer_start(&qc->timer, on_timer, ms, 0);
}

static struct stream *stream_pending_tx(struct ls_quic_conn *qc, const bool *skip)
{
	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS; i++) {
		struct stream *s = &qc->streams[i];

		if (s->used && s->has_tx && !s->tx_fin_sent && !skip[i] &&
		    (s->tx_fin || s->tx_sent < s->tx_len))
			return s;
	}
	return NULL;
}

/* Everything ngtcp2 has to send, now. Bounded per call so one connection cannot hold
 * the loop; the timer comes back for the rest. */
static void conn_flush(struct ls_quic_conn *qc)
{
	uint8_t buf[LS_QUIC_MAX_PKT];
	bool skip[LS_QUIC_MAX_STREAMS] = { false };
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_tstamp ts = ls_quic_now_ns();
	unsigned pkts = 0;

	if (qc->state != CS_HANDSHAKE && qc->state != CS_OPEN)
		return;
	ngtcp2_path_storage_zero(&ps);
	for (;;) {
		struct stream *s = stream_pending_tx(qc, skip);
		ngtcp2_vec v = { NULL, 0 };
		ngtcp2_ssize n, ndata = -1;
		uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		int64_t sid = -1;

		if (s) {
			sid = s->id;
			v.base = s->tx + s->tx_sent;
			v.len = s->tx_len - s->tx_sent;
			if (s->tx_fin)
				flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
		}
		n = ngtcp2_conn_writev_stream(qc->conn, &ps.path, &pi, buf, sizeof(buf), &ndata,
					      flags, sid, &v, v.len ? 1 : 0, ts);
		if (n < 0) {
			if (n == NGTCP2_ERR_WRITE_MORE) {
				s->tx_sent += (size_t)ndata;
				if (s->tx_sent == s->tx_len)
					s->tx_fin_sent = true;
				continue;
			}
			if (s && (n == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
				  n == NGTCP2_ERR_STREAM_SHUT_WR ||
				  n == NGTCP2_ERR_STREAM_NOT_FOUND)) {
				skip[s - qc->streams] = true;
				continue;
			}
			conn_fail(qc, (int)n);
			return;
		}
		if (s && ndata >= 0) {
			s->tx_sent += (size_t)ndata;
			if (s->tx_sent == s->tx_len)
				s->tx_fin_sent = true;
		}
		if (n == 0)
			break;
		ls_quic_sendto(qc->fd, qc->pktinfo ? (struct sockaddr *)&qc->local : NULL,
			       (struct sockaddr *)&qc->remote, qc->remote_len, buf, (size_t)n);
		if (++pkts >= 64)
			break;
	}
	/* Paced only once the handshake is done: before the first RTT sample ngtcp2 paces
	 * at cwnd / 333 ms, which held the second datagram of the agent's handshake flight
	 * (its certificate) back some 20 ms on every connection. A handshake is a few
	 * datagrams within the congestion window; after it the pace follows the path. */
	if (ngtcp2_conn_get_handshake_completed(qc->conn))
		ngtcp2_conn_update_pkt_tx_time(qc->conn, ts);
	conn_arm_timer(qc);
}

/* After ngtcp2 returns: deliver what the callbacks recorded, in order. */
static void conn_deliver(struct ls_quic_conn *qc)
{
	if (qc->ev_established && qc->state == CS_HANDSHAKE) {
		qc->ev_established = false;
		qc->state = CS_OPEN;
		if (qc->ops->established)
			qc->ops->established(qc);
	}
	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS && qc->state <= CS_OPEN; i++) {
		struct stream *s = &qc->streams[i];
		int64_t id = s->id;

		if (!s->used)
			continue;
		if (s->ev & SEV_FRAME) {
			s->ev &= ~(unsigned)SEV_FRAME;
			if (qc->ops->frame)
				qc->ops->frame(qc, id, s->rx, s->frame_len);
		}
		if (s->used && s->id == id && (s->ev & SEV_BAD)) {
			s->ev &= ~(unsigned)SEV_BAD;
			if (qc->ops->stream_bad)
				qc->ops->stream_bad(qc, id, s->bad);
		}
		if (s->used && s->id == id && (s->ev & SEV_CLOSED)) {
			stream_free(s);
			if (qc->ops->stream_closed)
				qc->ops->stream_closed(qc, id);
		}
	}
}

void ls_quic_conn_input(struct ls_quic_conn *qc, const struct sockaddr *local, socklen_t local_len,
			const struct sockaddr *remote, socklen_t remote_len, const uint8_t *pkt,
			size_t len)
{
	ngtcp2_path path = {
		{ (struct sockaddr *)(uintptr_t)local, local_len },
		{ (struct sockaddr *)(uintptr_t)remote, remote_len },
		NULL,
	};
	ngtcp2_pkt_info pi = { 0 };
	int rv;

	if (qc->state == CS_DEAD || qc->state == CS_DRAINING)
		return;
	if (qc->state == CS_CLOSING) {
		/* Repeat our CONNECTION_CLOSE a few times (it is smaller than what came). */
		if (qc->close_len && qc->close_resent++ < 8 && qc->close_len <= len)
			ls_quic_sendto(qc->fd, qc->pktinfo ? (struct sockaddr *)&qc->local : NULL,
				       (struct sockaddr *)&qc->remote, qc->remote_len,
				       qc->closebuf, qc->close_len);
		return;
	}
	qc->in_read = true;
	rv = ngtcp2_conn_read_pkt(qc->conn, &path, &pi, pkt, len, ls_quic_now_ns());
	qc->in_read = false;
	if (rv == NGTCP2_ERR_DRAINING) {
		conn_drain(qc, qc->ev_reset ? LS_QUIC_END_RESET : LS_QUIC_END_PEER);
		return;
	}
	if (rv == NGTCP2_ERR_DROP_CONN || rv == NGTCP2_ERR_RETRY) {
		/* ngtcp2 wants the connection gone without a word (a bad first packet). */
		conn_set_end(qc, LS_QUIC_END_ERROR, false, 0, ngtcp2_strerror(rv));
		qc->state = CS_DEAD;
		conn_report_end(qc);
		conn_release(qc);
		return;
	}
	if (rv != 0 && rv != NGTCP2_ERR_DISCARD_PKT) {
		conn_fail(qc, rv);
		return;
	}
	conn_deliver(qc);
	conn_flush(qc);
}

static void conn_init_common(struct ls_quic_conn *qc, const struct ls_quic_conf *c)
{
	qc->ref.get_conn = get_conn;
	qc->ref.user_data = qc;
	qc->ops = c->ops;
	qc->data = c->data;
	qc->loop = c->loop;
	qc->fd = c->fd;
	qc->pktinfo = c->pktinfo;
	memcpy(&qc->local, c->local, c->local_len);
	qc->local_len = c->local_len;
	memcpy(&qc->remote, c->remote, c->remote_len);
	qc->remote_len = c->remote_len;
	qc->max_stream_rx = c->max_stream_rx ? c->max_stream_rx : LS_CTL_MAX_REQUEST;
	qc->started_us = ls_now_us();
	ngtcp2_connection_close_error_default(&qc->last_error);
	uv_timer_init(c->loop, &qc->timer);
	qc->timer.data = qc;
}

static void settings_common(ngtcp2_settings *s, const struct ls_quic_conf *c)
{
	ngtcp2_settings_default(s);
	s->initial_ts = ls_quic_now_ns();
	s->max_tx_udp_payload_size = LS_QUIC_MAX_PKT;
	s->handshake_timeout = c->handshake_timeout_ms ? c->handshake_timeout_ms * NGTCP2_MILLISECONDS
						       : 10 * NGTCP2_SECONDS;
	if (getenv("LS_QUIC_DEBUG"))
		s->log_printf = quic_log;
}

static void conn_abort(struct ls_quic_conn *qc)
{
	/* Setup failed before anyone knew of qc: no callbacks. */
	qc->ops = &(const struct ls_quic_ops){ 0 };
	conn_release(qc);
}

struct ls_quic_conn *ls_quic_conn_client(const struct ls_quic_conf *c, char *err, size_t errlen)
{
	struct ls_quic_conn *qc = calloc(1, sizeof(*qc));
	ngtcp2_path path;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_cid dcid, scid;
	int rv;

	if (!qc) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	conn_init_common(qc, c);
	path = (ngtcp2_path){ { (struct sockaddr *)&qc->local, qc->local_len },
			      { (struct sockaddr *)&qc->remote, qc->remote_len }, NULL };
	dcid.datalen = LS_QUIC_SCIDLEN;
	scid.datalen = 8;
	if (ls_quic_random(dcid.data, dcid.datalen) != 0 ||
	    ls_quic_random(scid.data, scid.datalen) != 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		conn_abort(qc);
		return NULL;
	}
	settings_common(&settings, c);
	ngtcp2_transport_params_default(&params);
	params.initial_max_streams_bidi = 0; /* the agent opens no stream */
	params.initial_max_streams_uni = 0;
	params.initial_max_stream_data_bidi_local = qc->max_stream_rx;
	params.initial_max_data = 1 << 20;
	params.max_idle_timeout = c->idle_timeout_ms * NGTCP2_MILLISECONDS;
	rv = ngtcp2_conn_client_new(&qc->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
				    &client_callbacks, &settings, &params, NULL, qc);
	if (rv != 0) {
		snprintf(err, errlen, "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
		qc->conn = NULL;
		conn_abort(qc);
		return NULL;
	}
	if (tls_session(qc, c->tls, c->alpn, err, errlen) != 0) {
		conn_abort(qc);
		return NULL;
	}
	ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
	conn_flush(qc);
	return qc;
}

struct ls_quic_conn *ls_quic_conn_server(const struct ls_quic_conf *c, const ngtcp2_pkt_hd *hd,
					 const ngtcp2_cid *ocid, char *err, size_t errlen)
{
	struct ls_quic_conn *qc = calloc(1, sizeof(*qc));
	ngtcp2_path path;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_cid scid;
	int rv;

	if (!qc) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	conn_init_common(qc, c);
	qc->server = true;
	memcpy(qc->secret, c->secret, sizeof(qc->secret));
	path = (ngtcp2_path){ { (struct sockaddr *)&qc->local, qc->local_len },
			      { (struct sockaddr *)&qc->remote, qc->remote_len }, NULL };
	scid.datalen = LS_QUIC_SCIDLEN;
	if (ls_quic_random(scid.data, scid.datalen) != 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		conn_abort(qc);
		return NULL;
	}
	settings_common(&settings, c);
	settings.token = hd->token;
	ngtcp2_transport_params_default(&params);
	params.initial_max_streams_bidi = c->max_streams ? c->max_streams : 4;
	params.initial_max_streams_uni = 0;
	params.initial_max_stream_data_bidi_remote = qc->max_stream_rx;
	params.initial_max_data = 64 * 1024;
	params.max_idle_timeout = c->idle_timeout_ms * NGTCP2_MILLISECONDS;
	params.active_connection_id_limit = 4;
	params.stateless_reset_token_present = 1;
	if (ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token, qc->secret,
							 sizeof(qc->secret), &scid) != 0) {
		snprintf(err, errlen, "stateless reset token");
		conn_abort(qc);
		return NULL;
	}
	if (ocid) {
		params.original_dcid = *ocid;
		params.retry_scid = hd->dcid;
		params.retry_scid_present = 1;
	} else {
		params.original_dcid = hd->dcid;
	}
	rv = ngtcp2_conn_server_new(&qc->conn, &hd->scid, &scid, &path, hd->version,
				    &server_callbacks, &settings, &params, NULL, qc);
	if (rv != 0) {
		snprintf(err, errlen, "ngtcp2_conn_server_new: %s", ngtcp2_strerror(rv));
		qc->conn = NULL;
		conn_abort(qc);
		return NULL;
	}
	if (tls_session(qc, c->tls, c->alpn, err, errlen) != 0) {
		conn_abort(qc);
		return NULL;
	}
	ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
	if (qc->ops->cid_new) {
		qc->ops->cid_new(qc, &scid);
		qc->ops->cid_new(qc, &hd->dcid);
	}
	return qc;
}

/* ---- owner's actions -------------------------------------------------------------- */

static int stream_queue(struct stream *s, const uint8_t *frame, size_t len, bool fin)
{
	if (s->has_tx)
		return -1;
	s->tx_fin = fin;
	s->tx = malloc(len ? len : 1);
	if (!s->tx)
		return -1;
	memcpy(s->tx, frame, len);
	s->tx_len = len;
	s->has_tx = true;
	return 0;
}

int ls_quic_conn_answer(struct ls_quic_conn *qc, int64_t sid, const uint8_t *frame, size_t len)
{
	struct stream *s;

	if (qc->state != CS_OPEN || !(s = stream_find(qc, sid)) || stream_queue(s, frame, len, true) != 0)
		return -1;
	if (!qc->in_read)
		conn_flush(qc);
	return 0;
}

int ls_quic_conn_request(struct ls_quic_conn *qc, const uint8_t *frame, size_t len, int64_t *sid)
{
	return ls_quic_conn_write(qc, frame, len, true, sid);
}

int ls_quic_conn_write(struct ls_quic_conn *qc, const uint8_t *frame, size_t len, bool fin,
		       int64_t *sid)
{
	struct stream *s;
	int64_t id;

	if (qc->state != CS_OPEN || ls_quic_conn_streams(qc) >= LS_QUIC_MAX_STREAMS)
		return -1;
	if (ngtcp2_conn_open_bidi_stream(qc->conn, &id, NULL) != 0)
		return -1;
	s = stream_new(qc, id);
	if (!s || stream_queue(s, frame, len, fin) != 0) {
		if (s)
			stream_free(s);
		ngtcp2_conn_shutdown_stream(qc->conn, id, 1);
		return -1;
	}
	*sid = id;
	if (!qc->in_read)
		conn_flush(qc);
	return 0;
}

void ls_quic_conn_close(struct ls_quic_conn *qc, uint64_t app_code, const char *reason)
{
	if (qc->state != CS_HANDSHAKE && qc->state != CS_OPEN)
		return;
	ngtcp2_connection_close_error_set_application_error(
		&qc->last_error, app_code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
	conn_enter_closing(qc, LS_QUIC_END_LOCAL, reason);
}

void ls_quic_conn_destroy(struct ls_quic_conn *qc)
{
	conn_release(qc);
}

void ls_quic_conn_sweep(struct ls_quic_conn *qc, uint64_t now_us, uint64_t max_age_us)
{
	bool any = false;

	if (qc->state != CS_OPEN)
		return;
	for (unsigned i = 0; i < LS_QUIC_MAX_STREAMS; i++) {
		struct stream *s = &qc->streams[i];

		if (s->used && !s->rx_done && now_us - s->opened_us > max_age_us) {
			int64_t id = s->id;

			stream_fault(s, LS_QUIC_BAD_TIMEOUT);
			s->ev &= ~(unsigned)SEV_BAD;
			ngtcp2_conn_shutdown_stream(qc->conn, id, 1);
			any = true;
			if (qc->ops->stream_bad)
				qc->ops->stream_bad(qc, id, LS_QUIC_BAD_TIMEOUT);
		}
	}
	if (any)
		conn_flush(qc);
}

void *ls_quic_conn_data(const struct ls_quic_conn *qc)
{
	return qc->data;
}

void ls_quic_conn_set_data(struct ls_quic_conn *qc, void *data)
{
	qc->data = data;
}

bool ls_quic_conn_established(const struct ls_quic_conn *qc)
{
	return qc->state == CS_OPEN;
}

bool ls_quic_conn_closing(const struct ls_quic_conn *qc)
{
	return qc->state >= CS_CLOSING;
}

const struct sockaddr *ls_quic_conn_remote(const struct ls_quic_conn *qc, socklen_t *len)
{
	if (len)
		*len = qc->remote_len;
	return (const struct sockaddr *)&qc->remote;
}

uint64_t ls_quic_conn_rtt_us(struct ls_quic_conn *qc)
{
	ngtcp2_conn_stat st;

	if (!qc->conn)
		return 0;
	ngtcp2_conn_get_conn_stat(qc->conn, &st);
	return st.smoothed_rtt / 1000u;
}

const uint8_t *ls_quic_conn_peer_fp(const struct ls_quic_conn *qc)
{
	return qc->has_peer_fp ? qc->peer_fp : NULL;
}

uint64_t ls_quic_conn_started_us(const struct ls_quic_conn *qc)
{
	return qc->started_us;
}
