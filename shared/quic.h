/* One QUIC connection of the control plane (docs/protocol.md section 2), either end:
 * ngtcp2 0.12 + ngtcp2_crypto_gnutls + GnuTLS, TLS 1.3 only, ALPN lightspeed-ctl/1,
 * driven by its owner's libuv loop (one timer per connection; the owner reads the
 * socket and hands datagrams in). Streams carry one control frame each way: the layer
 * reassembles a frame (u16 length prefix) per stream, within a byte limit, and calls
 * its owner back only from the top of the loop, never from inside ngtcp2, so the owner
 * may answer, close or send from any callback.
 *
 * The agent's endpoint (agent/quic_server.c) accepts connections; the controller's
 * client (controller/quic_client.c) opens them. */
#ifndef LS_QUIC_H
#define LS_QUIC_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "ctlmsg.h"

#define LS_QUIC_SCIDLEN      18   /* the agent's connection ids */
#define LS_QUIC_MAX_STREAMS  8    /* streams open at once per connection */
#define LS_QUIC_MAX_PKT      1452 /* the largest UDP payload sent */
#define LS_QUIC_RX_BUF       2048 /* receive buffer: larger than any packet we take */
#define LS_QUIC_SECRET_LEN   32   /* static secret: Retry tokens, stateless resets */

struct ls_quic_conn;

/* TLS credentials: the agent's certificate, or none (the client pins instead). */
struct ls_quic_tls;
struct ls_quic_tls *ls_quic_tls_server(const char *cert_file, const char *key_file, char *err,
				       size_t errlen);
struct ls_quic_tls *ls_quic_tls_client(char *err, size_t errlen);
void ls_quic_tls_free(struct ls_quic_tls *t);

/* SHA-256 of a DER certificate: the fingerprint the controller pins. */
void ls_quic_fp_der(const uint8_t *der, size_t len, uint8_t fp[LS_CTL_FP_LEN]);

/* Why a connection ended. */
enum ls_quic_end_kind {
	LS_QUIC_END_LOCAL,      /* we closed it */
	LS_QUIC_END_PEER,       /* the peer sent CONNECTION_CLOSE */
	LS_QUIC_END_IDLE,       /* nothing heard for the idle timeout */
	LS_QUIC_END_HANDSHAKE,  /* the handshake did not finish in time */
	LS_QUIC_END_RESET,      /* a stateless reset: the peer lost the connection */
	LS_QUIC_END_ERROR,      /* a protocol or TLS error (the peer was told) */
};
struct ls_quic_end {
	enum ls_quic_end_kind kind;
	bool app;               /* code is an application code (enum ls_ctl_reason) */
	uint64_t code;
	char reason[96];        /* printable */
};
const char *ls_quic_end_name(enum ls_quic_end_kind k);

/* What a stream did wrong. */
enum ls_quic_bad {
	LS_QUIC_BAD_TOO_LONG,   /* a frame longer than the stream's limit */
	LS_QUIC_BAD_TRUNCATED,  /* the stream ended inside a frame */
	LS_QUIC_BAD_EXTRA,      /* bytes after the frame already delivered */
	LS_QUIC_BAD_FRAMING,    /* a length field of 0, or bytes after the frame */
	LS_QUIC_BAD_TIMEOUT,    /* left open without a whole frame (ls_quic_conn_sweep) */
};
const char *ls_quic_bad_name(enum ls_quic_bad b);

struct ls_quic_ops {
	/* The handshake is done (and, on the client, the peer's certificate passed
	 * verify). */
	void (*established)(struct ls_quic_conn *qc);
	/* A whole frame arrived on stream sid (once per stream). */
	void (*frame)(struct ls_quic_conn *qc, int64_t sid, const uint8_t *frame, size_t len);
	/* A stream misbehaved; its read side is shut already, its write side is open for
	 * an error answer. */
	void (*stream_bad)(struct ls_quic_conn *qc, int64_t sid, enum ls_quic_bad why);
	/* A stream is gone, either way (answered, reset, or with the connection). */
	void (*stream_closed)(struct ls_quic_conn *qc, int64_t sid);
	/* Client: the peer's certificate fingerprint; return 0 to go on, -1 to refuse
	 * (the handshake fails with a bad_certificate alert). Called inside the TLS
	 * handshake: decide only, call nothing of this layer. */
	int (*verify_peer)(struct ls_quic_conn *qc, const uint8_t fp[LS_CTL_FP_LEN]);
	/* Server: a connection id now names this connection (route datagrams to it). */
	void (*cid_new)(struct ls_quic_conn *qc, const ngtcp2_cid *cid);
	/* The connection can no longer carry anything (once). Its memory stays until
	 * released. */
	void (*closed)(struct ls_quic_conn *qc, const struct ls_quic_end *end);
	/* Just before the memory goes: forget every pointer to qc and its ids. */
	void (*released)(struct ls_quic_conn *qc);
};

struct ls_quic_conf {
	uv_loop_t *loop;
	const struct ls_quic_ops *ops;
	void *data;                   /* the owner's, ls_quic_conn_data() */
	struct ls_quic_tls *tls;
	int fd;                       /* the UDP socket packets leave by (not owned) */
	const struct sockaddr *local; /* the path: our address as the peer sees it */
	socklen_t local_len;
	const struct sockaddr *remote;
	socklen_t remote_len;
	bool pktinfo;                 /* send with IP_PKTINFO = local (a wildcard bind) */
	uint64_t idle_timeout_ms;
	uint64_t handshake_timeout_ms;
	size_t max_stream_rx;         /* bytes a peer may send on one stream */
	unsigned max_streams;         /* server: streams the peer may open at once */
	const uint8_t *secret;        /* server: LS_QUIC_SECRET_LEN bytes */
	const char *alpn;             /* client: the protocol offered; NULL is LS_CTL_ALPN
				       * (another is only for probing a server's refusal) */
};

/* Open a client connection (the first packet leaves at once). NULL with err. */
struct ls_quic_conn *ls_quic_conn_client(const struct ls_quic_conf *c, char *err, size_t errlen);
/* Accept a server connection for the Initial packet hd (from ngtcp2_accept); ocid is
 * the original destination id when the client came back with a Retry token. The
 * caller then feeds that same packet with ls_quic_conn_input. NULL with err. */
struct ls_quic_conn *ls_quic_conn_server(const struct ls_quic_conf *c, const ngtcp2_pkt_hd *hd,
					 const ngtcp2_cid *ocid, char *err, size_t errlen);

/* A datagram for this connection. Callbacks run from here; qc may be released before
 * it returns (the released callback says so). */
void ls_quic_conn_input(struct ls_quic_conn *qc, const struct sockaddr *local, socklen_t local_len,
			const struct sockaddr *remote, socklen_t remote_len, const uint8_t *pkt,
			size_t len);

/* Send a frame on stream sid and end our side of it (an answer). 0, or -1 when the
 * stream is gone or a frame was sent on it already. */
int ls_quic_conn_answer(struct ls_quic_conn *qc, int64_t sid, const uint8_t *frame, size_t len);
/* Open a stream, send a frame and end our side (a request): 0 with *sid, or -1 (no
 * stream credit, not established, closing). */
int ls_quic_conn_request(struct ls_quic_conn *qc, const uint8_t *frame, size_t len, int64_t *sid);
/* The same, ending our side only when fin (a stream can carry a frame in pieces, and
 * a peer can be seen leaving one open). */
int ls_quic_conn_write(struct ls_quic_conn *qc, const uint8_t *frame, size_t len, bool fin,
		       int64_t *sid);
/* Close the connection with an application code (enum ls_ctl_reason) and a reason
 * phrase; closed() follows at once, released() after the closing period. */
void ls_quic_conn_close(struct ls_quic_conn *qc, uint64_t app_code, const char *reason);
/* Free at once: no packet, no closed() (shutting the owner down); released() runs. */
void ls_quic_conn_destroy(struct ls_quic_conn *qc);
/* Reset every stream open for longer than max_age_us without a whole frame. */
void ls_quic_conn_sweep(struct ls_quic_conn *qc, uint64_t now_us, uint64_t max_age_us);

void *ls_quic_conn_data(const struct ls_quic_conn *qc);
void ls_quic_conn_set_data(struct ls_quic_conn *qc, void *data);
bool ls_quic_conn_established(const struct ls_quic_conn *qc);
bool ls_quic_conn_closing(const struct ls_quic_conn *qc);
/* Streams open now. */
unsigned ls_quic_conn_streams(const struct ls_quic_conn *qc);
/* The peer's address. */
const struct sockaddr *ls_quic_conn_remote(const struct ls_quic_conn *qc, socklen_t *len);
/* Smoothed RTT of the QUIC path in microseconds (0 before a sample). */
uint64_t ls_quic_conn_rtt_us(struct ls_quic_conn *qc);
/* The peer's certificate fingerprint (client, after verify). */
const uint8_t *ls_quic_conn_peer_fp(const struct ls_quic_conn *qc);
uint64_t ls_quic_conn_started_us(const struct ls_quic_conn *qc);

/* ---- helpers of the endpoint ---- */
/* Nanoseconds for ngtcp2 (CLOCK_MONOTONIC) and for tokens (CLOCK_REALTIME: a token
 * outlives a restart of the process). */
uint64_t ls_quic_now_ns(void);
uint64_t ls_quic_wall_ns(void);
/* Random bytes from the kernel (getrandom); 0 or -1. */
int ls_quic_random(void *buf, size_t len);
/* Send one datagram from fd to remote (with IP_PKTINFO from local when given).
 * Returns 0 or -1 (errno; a full socket buffer drops it: QUIC recovers). */
int ls_quic_sendto(int fd, const struct sockaddr *local, const struct sockaddr *remote,
		   socklen_t remote_len, const uint8_t *buf, size_t len);

#endif
