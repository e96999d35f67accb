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
#include "drop.h"
#include "hist.h"
#include "life.h"
#include "proto.h"
#include "seal.h"

/* ---- a route ------------------------------------------------------------------- */

/* Keepalive requests remembered for matching replies: enough for an RTT of 32
 * intervals at the shortest interval before a reply stops counting. */
#define CL_KA_OUTSTANDING 32
/* RTT samples awaiting an `rtt` event (normally one per batch of replies). */
#define CL_RTT_PENDING 8

/* degraded: the proxy answers keepalives, but the game packets it sends are being
 * dropped here (none accepted over a second while some were dropped). */
enum client_path { CL_PATH_UNKNOWN, CL_PATH_UP, CL_PATH_DOWN, CL_PATH_DEGRADED };
const char *client_path_name(enum client_path p);

#define CL_ROUTE_NAME_MAX 31

struct client_route {
	/* in the client's table (docs/protocol.md 3.2) */
	bool used;
	char name[CL_ROUTE_NAME_MAX + 1];
	uint32_t probe_ms;    /* keepalive interval while not the active route */
	uint64_t next_probe_us;

	/* identity */
	struct sockaddr_in proxy;
	bool keyed;
	uint32_t session_id;  /* 0 without a key */
	uint8_t key[LS_KEY_LEN];
	struct ls_mac mac;    /* the session key: handshakes only */
	uint8_t token;
	uint64_t started_us;

	/* keyed routes: the lifetimes everything else runs under, and the handshake
	 * that begins the next one */
	struct ls_lives lv;
	struct ls_hs hs;
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
	uint64_t last_rx_us;  /* last accepted packet of any kind; 0: none yet */
	/* game packets from the proxy accepted and dropped since iv_start_us (degraded) */
	uint32_t iv_data_ok, iv_data_drop;
	uint64_t iv_start_us;

	/* keepalive requests awaiting their first reply */
	struct {
		uint16_t seq;
		uint32_t ts;
		bool live;
		uint64_t sent_us;
	} ka[CL_KA_OUTSTANDING];
	unsigned ka_next;
	/* Keepalives unanswered in a row: sent after the newest answered one and not
	 * answered within a few RTT (client_route_watch). */
	uint32_t missed;
	uint64_t answered_sent_us; /* when the newest answered request left */
	uint64_t keepalives_sent, replies;
	uint32_t flips;           /* up <-> down */
	int64_t rtt_min_us;       /* -1 before the first sample */
	enum client_path reported; /* the state the last route_state event gave */

	/* measurement */
	struct ls_hist rtt;
	int64_t srtt_us;      /* smoothed RTT; -1 before the first sample */
	uint32_t jitter16;    /* RFC 3550 jitter in 1/16 us */
	bool transit_any[2];  /* [0] proxy-stamped packets, [1] echoes of our own ts */
	int32_t transit[2];
	bool jitter_any;
	struct ls_rx_base up_base; /* the proxy's previous report */
	double loss_up;       /* smoothed; < 0 before the first sample */
	/* The last reply's report of our packets, for the FEC policy: set with each
	 * reply that carried a sample, cleared by the caller. */
	bool up_sample;
	uint32_t up_expected, up_received;
	uint8_t up_burst;
	uint32_t down_count;  /* own counters at the last report interval */
	uint64_t down_top;
	bool down_any;
	double loss_down;

	/* path */
	enum client_path path;

	/* What happened on the packet path, for the loop to publish and log after the
	 * batch (the packet path itself never formats anything). */
	bool ev_path;
	bool ev_fin;
	bool ev_life;         /* a lifetime began */
	bool ev_silent;       /* the proxy went silent: handshaking */
	bool ka_now;          /* a lifetime began: send a keepalive request now */
	unsigned n_ev_rtt;
	uint32_t ev_rtt[CL_RTT_PENDING];
};

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
 * A keepalive request takes the next seq and is remembered for matching; a reply
 * echoes the request's seq and ts_us; a FIN request takes the next seq. Keepalives
 * carry our reception report and the FEC we ask the proxy for (fec_k, fec_m, 1.4). */
size_t client_route_ka_request(struct client_route *r, uint64_t now_us, uint8_t fec_k,
			       uint8_t fec_m, uint8_t *buf);
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
 * account for it: replay window, counters, jitter, RTT, path. buf is the datagram
 * (the tag covers it). */
enum client_rx client_route_receive(struct client_route *r, const uint8_t *buf,
				    const struct ls_pkt *p, uint64_t now_us, enum ls_drop *why);
/* A game packet from r's proxy was dropped after client_route_receive accepted it
 * (no such game socket): it counts towards `degraded`. */
void client_route_data_dropped(struct client_route *r);

/* Is a keepalive request with this seq and ts_us still awaiting its reply? */
bool client_route_awaits(const struct client_route *r, uint16_t seq, uint32_t ts);
/* "unknown", "up" (degraded too) or "down": a route object's state. */
const char *client_route_state_name(enum client_path p);

/* Recount the keepalives missed in a row (a request is missed when no answer came within
 * its deadline: srtt + max(4 jitter, 1.5 srtt, 5 ms), 1 s before any RTT sample); 3 or
 * more take the route down. Returns when to look again (0: nothing outstanding). */
uint64_t client_route_watch(struct client_route *r, uint64_t now_us);

/* Every keepalive interval: a downstream loss sample from the own counters; the path
 * goes down after max(3 intervals, 1 s) without any packet from the proxy (and a keyed
 * route then begins a new handshake), and is degraded or up again by the second's
 * game packets; a lifetime near its end is renewed. */
void client_route_interval(struct client_route *r, uint64_t now_us, uint32_t keepalive_ms);

#endif
