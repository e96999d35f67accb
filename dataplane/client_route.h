/* lightspeed-client: one route (a proxy, with or without a session key) — its
 * lifetimes and handshake (docs/protocol.md 1.8), the tunnel header it writes, the
 * checks on what comes back from its proxy (1.3), and what its keepalives measure: RTT,
 * jitter, loss per direction, path state (1.4). Nothing here does I/O, logs or
 * allocates: callers send and report. */
#ifndef LS_CLIENT_ROUTE_H
#define LS_CLIENT_ROUTE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "client_path.h"
#include "drop.h"
#include "hist.h"
#include "life.h"
#include "proto.h"
#include "seal.h"

/* ---- a route ------------------------------------------------------------------- */

#define CL_ROUTE_NAME_MAX 31

/* How a route with several paths uses them (docs/protocol.md 1.9). */
enum client_mode {
	CL_MODE_SINGLE,    /* everything on the best path */
	CL_MODE_DUPLICATE, /* every packet on every path */
	CL_MODE_SPLIT,     /* data on the best path, FEC parity on the others */
	CL_MODE_AUTO,      /* one of those, from the measured loss and the cost budget */
};
const char *client_mode_name(enum client_mode m);
/* "single", "duplicate", "split", "auto": 0, or -1. */
int client_mode_parse(const char *s, enum client_mode *out);

struct client_route {
	/* in the client's table (docs/protocol.md 3.2) */
	bool used;
	char name[CL_ROUTE_NAME_MAX + 1];
	uint32_t probe_ms;    /* keepalive interval while not the active route */
	uint64_t next_probe_us;

	/* identity */
	struct sockaddr_in proxy; /* the egress (for a relay hop: the relay) */
	bool keyed;
	uint32_t session_id;  /* 0 without a key */
	uint8_t key[LS_KEY_LEN];
	struct ls_mac mac;    /* the session key: handshakes only */
	uint8_t token;
	uint64_t started_us;

	/* keyed routes: the lifetimes everything else runs under, and the handshake
	 * that begins the next one (over hs_path: an INIT and its CONFIRM go one way) */
	struct ls_lives lv;
	struct ls_hs hs;
	uint8_t hs_path;
	uint32_t handshakes;  /* lifetimes begun */
	/* Silence: since when we have sent without hearing back (0: we heard), and a
	 * keepalive sent to ask; unanswered too, a keyed route handshakes (the proxy may
	 * have lost our lifetime: it never answers a tag it cannot check). */
	uint64_t quiet_since_us;
	uint64_t probe_us;

	/* sending */
	uint16_t tx_seq;      /* the seq of the next request or data packet */

	/* receiving: counters for loss reports */
	struct ls_rx_count rx; /* packets accepted from the proxy, echoes left out */

	/* keepalives sent straight to `proxy`: the direct path's measurement (a relay
	 * hop's, for a hop) */
	struct client_meas m;

	/* paths to the egress (1.9): paths[0 .. npaths); a route made by route_add has
	 * the direct path alone */
	struct client_path paths[CL_MAX_PATHS];
	uint8_t npaths;
	uint8_t data_path;    /* the path game packets take in single and split modes */
	uint8_t parity_next;  /* split: the path the next parity packet takes */
	enum client_mode mode, mode_now; /* the setting, and what it means now (auto) */
	uint64_t mode_since_us; /* auto: when the choice last changed */
	uint64_t better_since_us; /* since when another path beats the data path */
	uint64_t duplicates;  /* copies dropped: another path's came first */
	bool is_hop;          /* a relay hop's session, not a route of the table */
	bool direct;          /* no tunnel: the game server itself (client_direct.c) */
	enum client_pstate reported; /* the state the last route_state event gave */

	/* What happened on the packet path, for the loop to publish and log after the
	 * batch (the packet path itself never formats anything). */
	bool ev_fin;
	bool ev_life;         /* a lifetime began */
	bool ev_silent;       /* the proxy went silent: handshaking */
	bool ev_paths;        /* the data path or the mode in use changed */
	bool ka_now;          /* a lifetime began: send a keepalive request now */
};

/* Several paths: copies, roles, per-path measurement. */
static inline bool client_route_multipath(const struct client_route *r)
{
	return r->npaths > 1;
}
/* The measurement of path i (the direct path's is the route's own). */
static inline struct client_meas *client_route_pmeas(struct client_route *r, unsigned i)
{
	return r->paths[i].relay ? &r->paths[i].m : &r->m;
}
static inline const struct client_meas *client_route_cpmeas(const struct client_route *r,
							    unsigned i)
{
	return r->paths[i].relay ? &r->paths[i].m : &r->m;
}
/* What the route shows as a whole: the path that carries its game packets. */
static inline struct client_meas *client_route_view(struct client_route *r)
{
	return r->npaths ? client_route_pmeas(r, r->data_path) : &r->m;
}
static inline const struct client_meas *client_route_cview(const struct client_route *r)
{
	return r->npaths ? client_route_cpmeas(r, r->data_path) : &r->m;
}

/* A fresh route; key is NULL for an unauthenticated one. The first request or data
 * packet carries seq first_seq. */
void client_route_init(struct client_route *r, const struct sockaddr_in *proxy,
		       uint32_t session_id, const uint8_t *key, uint16_t first_seq, uint64_t now_us);
/* Does r have exactly this proxy address, session and key? */
bool client_route_is(const struct client_route *r, const struct sockaddr_in *proxy,
		     uint32_t session_id, const uint8_t *key);

/* Headroom that callers leave in front of a payload for client_route_wrap. */
#define CL_HEADROOM LS_SEAL_HEADROOM

/* Can the route carry game packets now? A keyed route needs a lifetime. */
bool client_route_ready(const struct client_route *r, uint64_t now_us);
/* The sealer for r's datagrams (false: a keyed route without a lifetime yet). */
bool client_route_sealer(struct client_route *r, struct ls_seal *k);
/* A datagram left towards the proxy (for the silence watch). */
void client_route_sent(struct client_route *r, uint64_t now_us);

/* Wrap the payload at buf[CL_HEADROOM .. CL_HEADROOM+len) in place: headers in front,
 * tag (keyed routes) behind; buf must hold CL_HEADROOM + len + LS_TAG_LEN bytes. h
 * brings the version, FEC fields and addresses (a data or parity packet); the route
 * fills in the rest. Sets *start to the first byte of the datagram and returns its
 * length, or 0 when the route is not ready (the caller counts `handshake`). */
size_t client_route_wrap(struct client_route *r, struct ls_hdr *h, uint8_t *buf, size_t len,
			 uint64_t now_us, uint8_t **start);

/* The handshake datagram due now (INIT or CONFIRM), or 0; and when the next one is
 * due (0: no handshake under way). */
size_t client_route_hs_due(struct client_route *r, uint64_t now_us, uint8_t *buf);
uint64_t client_route_hs_next(const struct client_route *r);

/* The silence watch, each loop turn: true when a keepalive request should go now to
 * ask whether the proxy still hears us; a keyed route whose ask went unanswered too
 * begins a handshake. *next_us: when to look again (0: nothing to watch). */
bool client_route_silence(struct client_route *r, uint64_t now_us, uint64_t *next_us);

/* Control packets, built into buf (at least LS_MAX_OVERHEAD bytes); return the length
 * (0: a keyed route without a lifetime, nothing to send).
 * A keepalive request takes the next seq and is remembered in m (the measurement of the
 * way it goes; sent: that way's count of datagrams so far) for matching; role is the
 * path's role asked of the egress (1.9; LS_ROLE_ONLY for a route of one path). A reply
 * echoes the request's seq and ts_us; a FIN request takes the next seq. Keepalives
 * carry our reception report and the FEC we ask the proxy for (fec_k, fec_m, 1.4). */
size_t client_route_ka_request(struct client_route *r, struct client_meas *m, uint32_t sent,
			       uint8_t role, uint64_t now_us, uint8_t fec_k, uint8_t fec_m,
			       uint8_t *buf);
size_t client_route_ka_reply(struct client_route *r, const struct ls_hdr *req, uint8_t fec_k,
			     uint8_t fec_m, uint8_t *buf);
size_t client_route_fin(struct client_route *r, uint64_t now_us, uint8_t *buf);

/* What an accepted datagram from the proxy is. */
enum client_rx {
	CL_RX_DROP,       /* *why tells the reason */
	CL_RX_DATA,       /* deliver the payload */
	CL_RX_KA_REQUEST, /* answer with client_route_ka_reply */
	CL_RX_KA_REPLY,   /* the first reply to one of our requests (measured) */
	CL_RX_CONSUMED,   /* a FIN, a handshake, or a reply matching no request */
	CL_RX_HANDSHAKE,  /* send what client_route_hs_due gives now */
};
/* Check a decoded datagram from this route's proxy (docs/protocol.md 1.3 order) and
 * account for it: replay window, counters, jitter, RTT, state of the way it came (m).
 * copies: it came over one of several paths, so a seq seen already is a copy
 * (`duplicates`, 1.9). buf is the datagram (the tag covers it). */
enum client_rx client_route_receive(struct client_route *r, const uint8_t *buf,
				    const struct ls_pkt *p, struct client_meas *m, bool copies,
				    uint64_t now_us, enum ls_drop *why);

/* Is a keepalive request with this seq and ts_us awaiting its reply on a way of r? */
bool client_route_awaits(const struct client_route *r, uint16_t seq, uint32_t ts);
/* Every path of the route is down (or its own way, without paths). */
bool client_route_down(const struct client_route *r);

/* Every keepalive interval: a downstream loss sample from the own counters; the path
 * goes down after max(3 intervals, 1 s) without any packet from the proxy (and a keyed
 * route then begins a new handshake), and is degraded or up again by the second's
 * game packets; a lifetime near its end is renewed. */
void client_route_interval(struct client_route *r, uint64_t now_us, uint32_t keepalive_ms);

#endif
