/* lightspeed-agent: the QUIC endpoint (docs/protocol.md section 2). One UDP socket on
 * the libuv loop; connections found by connection id; the control frames of every
 * stream decoded here, so what the agent's logic sees is a well-formed request (bad
 * frames, unknown types, oversized or abandoned streams are answered and counted
 * here). Admission keeps the endpoint up under a flood of half-open connections:
 * beyond `retry_after` handshakes in progress, or `retry_after` connections taken
 * without a token within a second, every new client must first prove its address with
 * a Retry token (spoofed sources then create no state at all), and both
 * the handshakes in progress and the connections are bounded in total and per source
 * address. A short-header packet for a connection this process does not know (an
 * agent restarted under its controllers) is answered with a stateless reset, so the
 * controller learns at once instead of waiting for its idle timeout. */
#ifndef LS_AGENT_QUIC_SERVER_H
#define LS_AGENT_QUIC_SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ctlmsg.h"
#include "quic.h"

struct qs;

struct qs_conf {
	struct sockaddr_in listen;
	const char *cert_file, *key_file;
	const uint8_t *secret;          /* LS_QUIC_SECRET_LEN bytes */
	uint32_t idle_timeout_ms;       /* a connection silent this long is gone */
	uint32_t handshake_timeout_ms;
	uint32_t stream_timeout_ms;     /* a stream without a whole request is reset */
	uint32_t max_conns;             /* connections (handshaking or open) */
	uint32_t max_conns_per_addr;
	uint32_t max_half_open;         /* handshakes in progress */
	uint32_t max_half_open_per_addr;
	uint32_t retry_after;           /* handshakes in progress, or connections taken
	                                   without a token in a second, before Retry is
	                                   required (0: always) */
};

struct qs_ops {
	/* A handshake finished. */
	void (*open)(struct qs *s, struct ls_quic_conn *qc);
	/* A well-formed request on stream sid: answer it (now or later) with
	 * qs_answer. */
	void (*request)(struct qs *s, struct ls_quic_conn *qc, int64_t sid,
			const struct ls_ctl_msg *m);
	/* An open connection ended (never called for one that did not finish its
	 * handshake). */
	void (*closed)(struct qs *s, struct ls_quic_conn *qc, const struct ls_quic_end *end);
};

struct qs_stats {
	uint64_t conns;            /* open (handshake done) */
	uint64_t half_open;        /* handshakes in progress */
	uint64_t accepted;         /* handshakes finished, in total */
	uint64_t refused;          /* new connections refused by a limit */
	uint64_t retries;          /* Retry packets sent (address validation) */
	uint64_t bad_tokens;       /* Initial packets with a token that did not verify */
	uint64_t resets;           /* stateless resets sent */
	uint64_t handshake_failures; /* handshakes that failed or timed out */
	uint64_t requests;         /* well-formed requests */
	uint64_t malformed;        /* frames that did not decode, streams broken */
	uint64_t unknown_types;    /* frames of a type the agent does not answer */
	uint64_t too_long;         /* requests over LS_CTL_MAX_REQUEST */
	uint64_t stream_timeouts;  /* streams reset for being left open */
	uint64_t datagrams;        /* UDP datagrams received */
	uint64_t dropped;          /* datagrams for no connection, not an acceptable Initial */
};

/* Bind and start. NULL with err. */
struct qs *qs_open(uv_loop_t *loop, const struct qs_conf *conf, const struct qs_ops *ops,
		   void *ctx, char *err, size_t errlen);
void *qs_ctx(const struct qs *s);
uint16_t qs_port(const struct qs *s);
/* Encode m and send it as the answer on stream sid. 0 or -1 (the stream is gone). */
int qs_answer(struct qs *s, struct ls_quic_conn *qc, int64_t sid, const struct ls_ctl_msg *m);
void qs_get_stats(const struct qs *s, struct qs_stats *st);
/* Each connection's owner data (the agent's per-connection state). */
void *qs_conn_user(const struct ls_quic_conn *qc);
void qs_conn_set_user(struct ls_quic_conn *qc, void *user);
/* The peer's IPv4 address. */
const struct sockaddr_in *qs_conn_addr(const struct ls_quic_conn *qc);
/* Close every connection with code (LS_CTL_R_SHUTDOWN), then free everything. The
 * closed callback is not called. */
void qs_close(struct qs *s, uint64_t code);

#endif
