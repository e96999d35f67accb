/* lightspeed-controller: the control connection to one node's agent (docs/protocol.md
 * section 2). One QUIC connection per node, kept open: the agent's certificate checked
 * against its pin (pin.c) inside the handshake, then REGISTER (or a resume of the
 * session the controller holds, proven by its key), then PING every ping interval for
 * the control path's RTT, SERVER_INFO for the node's load and its leg to the game
 * server, and PEERS for the nodes it knows. A lost connection comes back by itself
 * (backoff from 100 ms doubling to 5 s) and resumes its session, so an agent restart
 * costs the traffic nothing; a refused certificate stays refused until
 * quic_client_trust. All on the owner's libuv loop. */
#ifndef LS_CTRL_QUIC_CLIENT_H
#define LS_CTRL_QUIC_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "addr.h"
#include "ctlmsg.h"
#include "pin.h"

struct quic_client;

enum quic_client_state {
	QC_CONNECTING,   /* handshake, or waiting for the REGISTER answer */
	QC_REGISTERED,   /* a session is held and the connection is up */
	QC_BACKOFF,      /* lost: trying again soon */
	QC_PIN_REFUSED,  /* the agent's certificate is not the pinned one: stopped */
	QC_FULL,         /* the node is at capacity (DISCONNECT 3): trying again later */
	QC_CLOSED,
};
const char *quic_client_state_name(enum quic_client_state s);

struct quic_client_conf {
	char name[LS_CTL_NAME_MAX + 1];
	struct sockaddr_in control;    /* the agent's QUIC address */
	bool has_pin;
	uint8_t pin[LS_CTL_FP_LEN];    /* the configuration's fingerprint */
	struct pin_store *pins;        /* trust on first use, and trusted changes */
	uint8_t game_id;
	uint8_t ndests;                /* the game server(s) to be allowed; 0: the node's */
	struct ls_dest dests[LS_CTL_MAX_DESTS];
	uint32_t ping_ms, info_ms, peers_ms; /* 0: 1000, 2000, 30000; peers UINT32_MAX off */
	uint32_t idle_timeout_ms;      /* 0: 15000 */
	uint32_t handshake_timeout_ms; /* 0: 3000 */
	/* A session held from before (an earlier run, or an earlier connection). */
	bool has_session;
	uint32_t session_id;
	uint8_t key[LS_CTL_KEY_LEN];
};

/* What the node gave (REGISTER_ACK). */
struct quic_client_session {
	uint32_t session_id;
	uint8_t key[LS_CTL_KEY_LEN];
	uint16_t data_port;
	char node_id[LS_CTL_NAME_MAX + 1];
	char region[LS_CTL_NAME_MAX + 1];
	uint8_t ndests;
	struct ls_dest dests[LS_CTL_MAX_DESTS];
	bool resumed;                  /* the same session as before */
};

struct quic_client_ops {
	/* A session is held (new, or resumed on a new connection). */
	void (*registered)(void *ctx, const struct quic_client_session *s);
	/* The connection went or the node refused (state tells which); why in words.
	 * The session, if any, is still held for a resume. */
	void (*lost)(void *ctx, enum quic_client_state st, const char *why);
	/* The session is gone for good (the agent did not know it any more, or
	 * DISCONNECT): a new one follows when the node allows. */
	void (*revoked)(void *ctx, const char *why);
	void (*rtt)(void *ctx, uint64_t rtt_us);
	void (*info)(void *ctx, const struct ls_ctl_msg *info);
	void (*peers)(void *ctx, const struct ls_ctl_msg *peers);
};

struct quic_client *quic_client_open(uv_loop_t *loop, const struct quic_client_conf *conf,
				     const struct quic_client_ops *ops, void *ctx, char *err,
				     size_t errlen);
/* revoke: DISCONNECT the session and close cleanly (the agent ends it); else just drop
 * the connection (the agent keeps the session for a resume). Memory goes once the
 * loop has run. */
void quic_client_close(struct quic_client *q, bool revoke);

enum quic_client_state quic_client_state(const struct quic_client *q);
/* The last failure, in words ("" when none). */
const char *quic_client_error(const struct quic_client *q);
/* The session held, or NULL. */
const struct quic_client_session *quic_client_session(const struct quic_client *q);
/* The agent's fingerprint as seen in the last handshake, or NULL. */
const uint8_t *quic_client_fingerprint(const struct quic_client *q);
/* Smoothed RTT of the last PINGs (us), 0 before one. */
uint64_t quic_client_rtt_us(const struct quic_client *q);
/* Accept the fingerprint the agent offered (after QC_PIN_REFUSED) and connect again.
 * 0, or -1 with err. */
int quic_client_trust(struct quic_client *q, char *err, size_t errlen);
/* Ask for SERVER_INFO / PEERS now (answers come through ops). */
void quic_client_poll(struct quic_client *q);
/* DISCONNECT the session, register anew on a new connection (a fresh key). */
void quic_client_renew(struct quic_client *q);
/* A destination more for the session (the game server, once known): ALLOW now when
 * registered, and in every later REGISTER. 0, or -1 when it could not be sent. */
int quic_client_allow(struct quic_client *q, const struct ls_dest *d);
/* DISCONNECT the session and close, for good: revoked() says when the agent has ended
 * it at the proxy (then lost() with QC_CLOSED). */
void quic_client_disconnect(struct quic_client *q);

#endif
