/* Session lifetimes (docs/protocol.md 1.8): every authenticated session runs under a
 * lifetime key that a HANDSHAKE derives from the session key and two fresh nonces, so
 * nothing recorded in one lifetime (or before a restart of either side) authenticates
 * in another; and the checks of an AUTH datagram in their order (1.3): token, tag,
 * replay window, freshness. Both dataplanes use this one implementation. No I/O, no
 * allocation, no logging. */
#ifndef LS_LIFE_H
#define LS_LIFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "drop.h"
#include "proto.h"

#define LS_FRESH_US      10000000ull            /* ts_us freshness, either way (1.3) */
#define LS_LIFE_GRACE_US 3000000ull             /* the previous lifetime after a new one */
#define LS_LIFE_MAX_US   (30ull * 60 * 1000000) /* a receiver ends a lifetime this old */
#define LS_LIFE_REKEY_US (20ull * 60 * 1000000) /* the client begins the next one by then */
#define LS_HS_EPOCH_US   10000000ull            /* a proxy's REPLY can be confirmed this long */
#define LS_HS_RESEND_US  200000ull              /* INIT and CONFIRM are resent this often */
#define LS_HS_RESTART_US 2000000ull             /* then a handshake starts over */

/* One lifetime: its key, its replay window, and the sender's clock as last seen. */
struct ls_life {
	struct ls_mac mac;
	struct ls_replay replay;
	uint64_t started_us;  /* receiver's clock */
	uint64_t epoch;       /* the proxy's epoch of its handshake */
	uint8_t nc[LS_HS_NONCE_LEN];
	uint32_t ts_base;     /* sender's ts_us minus our clock, highest seen (freshness) */
	bool ts_any;
	bool live;
};

struct ls_lives {
	struct ls_life cur, prev;
	uint64_t prev_until;  /* prev is accepted until then (packets in flight) */
	uint32_t gen;         /* lifetimes begun so far (0: none) */
};

void ls_lives_init(struct ls_lives *L);
/* A new lifetime under key: the current one becomes the previous (for its grace). */
void ls_lives_begin(struct ls_lives *L, const uint8_t key[LS_KEY_LEN], const uint8_t *nc,
		    uint64_t epoch, uint64_t now_us);
/* Forget every lifetime (a FIN, a reset session). */
void ls_lives_end(struct ls_lives *L);
/* A current lifetime that a receiver still accepts. */
bool ls_lives_up(const struct ls_lives *L, uint64_t now_us);

/* What an accepted datagram was. */
struct ls_rx_ok {
	bool prev;      /* under the previous lifetime: forwarded, but it moves nothing */
	uint64_t ext;   /* its extended seq (not for echoes) */
	bool newest;    /* newer than anything before in its lifetime */
};

/* An AUTH datagram of a known session, not a HANDSHAKE, through the checks of 1.3 after
 * the session lookup: token (bad_tag), tag under the current lifetime or else the
 * previous one in its grace (bad_tag; a lifetime past LS_LIFE_MAX_US: replay), replay
 * window (replay) and freshness of a clocked ts_us (replay). echo: a keepalive reply,
 * which takes no seq (no window, no freshness). copies: the datagram came over one of
 * several paths of the session (1.9), so a seq the window accepted already is a copy
 * sent over another path: `duplicates`, not `replay`. On success the seq is recorded. */
bool ls_lives_check(struct ls_lives *L, uint8_t token, const struct ls_pkt *p,
		    const uint8_t *buf, bool echo, bool clocked, bool copies, uint64_t now_us,
		    struct ls_rx_ok *ok, enum ls_drop *why);

/* A HANDSHAKE's token and tag, under the session's own key. */
bool ls_hs_tag_ok(struct ls_mac *base, uint8_t token, const struct ls_pkt *p,
		  const uint8_t *buf);

/* The lifetime key: CMAC(session key, 0x00 "LSL" nc np epoch). */
void ls_life_key(struct ls_mac *base, const uint8_t *nc, const uint8_t *np, uint64_t epoch,
		 uint8_t out[LS_KEY_LEN]);

/* A HANDSHAKE datagram into buf (at least LS_HDR_LEN + LS_AUTH_ID_LEN +
 * LS_HS_PAYLOAD_LEN + LS_TAG_LEN bytes), tagged with mac; a and b are the two 16-byte
 * payload fields, or both NULL for none. Returns its length. */
size_t ls_hs_build(struct ls_mac *mac, uint8_t token, uint32_t session_id, uint8_t kind,
		   uint16_t seq, uint32_t ts, uint64_t value, const uint8_t *a, const uint8_t *b,
		   uint8_t *buf);
#define LS_HS_MAX_LEN (LS_HDR_LEN + LS_AUTH_ID_LEN + LS_HS_PAYLOAD_LEN + LS_TAG_LEN)

/* ---- the proxy's side (responder): stateless until a CONFIRM proves freshness ---- */

enum ls_hs_verdict {
	LS_HSV_DROP,    /* *why says why; nothing to send */
	LS_HSV_ANSWER,  /* send out to the sender; no state changed */
	LS_HSV_COMMIT,  /* a new lifetime began (its sender's address is proven): send out */
};
/* A client's HANDSHAKE whose tag ls_hs_tag_ok accepted, from ip:port (host order).
 * secret keys the proxy's cookies. The answer is never larger than the request. */
enum ls_hs_verdict ls_hs_respond(struct ls_lives *L, struct ls_mac *base, struct ls_prf *secret,
				 uint8_t token, uint32_t session_id, const struct ls_pkt *p,
				 uint32_t ip, uint16_t port, uint64_t now_us, uint8_t *out,
				 size_t *out_len, enum ls_drop *why);

/* ---- the client's side (initiator) ---------------------------------------------- */

enum ls_hs_state { LS_HSS_IDLE, LS_HSS_INIT, LS_HSS_CONFIRM };

struct ls_hs {
	uint8_t state;                 /* enum ls_hs_state */
	uint8_t nc[LS_HS_NONCE_LEN];   /* ours, fresh for each handshake */
	uint8_t np[LS_HS_NONCE_LEN];   /* the proxy's, from its REPLY */
	uint64_t epoch;
	uint8_t key[LS_KEY_LEN];       /* the lifetime key while CONFIRM awaits its ACK */
	struct ls_mac pending;
	uint64_t started_us, next_us;  /* when it began; when to resend */
};

/* Begin a handshake (a new nonce). -1 when the kernel gives no randomness. */
int ls_hs_start(struct ls_hs *hs, uint64_t now_us);
/* The INIT or CONFIRM to send now (at start, then every LS_HS_RESEND_US; after
 * LS_HS_RESTART_US without an answer it starts over), or 0. */
size_t ls_hs_due(struct ls_hs *hs, struct ls_mac *base, uint8_t token, uint32_t session_id,
		 uint64_t now_us, uint8_t *buf);

enum ls_hs_event {
	LS_HSE_DROP,     /* *why */
	LS_HSE_NONE,     /* accepted, nothing to do (a duplicate) */
	LS_HSE_SEND,     /* a REPLY came: send the CONFIRM ls_hs_due gives now */
	LS_HSE_UP,       /* the lifetime began */
};
/* A HANDSHAKE from the proxy (not yet checked). */
enum ls_hs_event ls_hs_receive(struct ls_hs *hs, struct ls_lives *L, struct ls_mac *base,
			       uint8_t token, const struct ls_pkt *p,
			       const uint8_t *buf, uint64_t now_us, enum ls_drop *why);
/* A datagram that no lifetime accepted may be the first one under the lifetime whose
 * CONFIRM is out (its ACK lost or late): true when it is, and the lifetime began. */
bool ls_hs_try_pending(struct ls_hs *hs, struct ls_lives *L, uint8_t token,
		       const struct ls_pkt *p, const uint8_t *buf, uint64_t now_us);

#endif
