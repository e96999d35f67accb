/* lightspeed-client: one route (a proxy, with or without a session key) — the tunnel
 * header it writes, the checks on what comes back from its proxy (docs/protocol.md
 * 1.3), and what its keepalives measure: RTT, jitter, loss per direction, path state
 * (1.4). Nothing here does I/O, logs or allocates: callers send and report. */
#ifndef LS_CLIENT_ROUTE_H
#define LS_CLIENT_ROUTE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "hist.h"
#include "proto.h"

/* ---- drop reasons the client counts (docs/protocol.md 1.7), one enum and names ---- */

enum client_drop {
	CL_DROP_MALFORMED,
	CL_DROP_BAD_VERSION,
	CL_DROP_FEC_RANGE,
	CL_DROP_OVERSIZE,
	CL_DROP_UNAUTHENTICATED,
	CL_DROP_UNKNOWN_SESSION,
	CL_DROP_BAD_TAG,
	CL_DROP_REPLAY,
	CL_DROP_UNEXPECTED_SOURCE,
	CL_DROP_UNKNOWN_FLOW,
	CL_DROP_SEND_ERROR,
	CL_DROP__COUNT
};
extern const char *const client_drop_names[CL_DROP__COUNT];

/* The drop reason for a decode error of ls_pkt_decode. */
enum client_drop client_drop_from_decode(int err);

/* ---- a route ------------------------------------------------------------------- */

/* Keepalive requests remembered for matching replies: enough for an RTT of 32
 * intervals at the shortest interval before a reply stops counting. */
#define CL_KA_OUTSTANDING 32
/* RTT samples awaiting an `rtt` event (normally one per batch of replies). */
#define CL_RTT_PENDING 8

enum client_path { CL_PATH_UNKNOWN, CL_PATH_UP, CL_PATH_DOWN };
const char *client_path_name(enum client_path p);

struct client_route {
	/* identity */
	struct sockaddr_in proxy;
	bool keyed;
	uint32_t session_id;  /* 0 without a key */
	uint8_t key[LS_KEY_LEN];
	struct ls_mac mac;
	uint8_t token;
	uint64_t started_us;

	/* sending */
	uint16_t tx_seq;      /* the seq of the next request or data packet */

	/* receiving: replay state for keyed routes, counters for loss reports */
	struct ls_replay replay;
	bool ts_any;
	uint32_t ts_newest;   /* newest ts_us accepted from the proxy (freshness) */
	struct ls_rx_count rx; /* packets accepted from the proxy, echoes left out */
	uint64_t last_rx_us;  /* last accepted packet of any kind; 0: none yet */
	bool floor_any;       /* after a FIN: nothing stamped at or before ts_floor */
	uint32_t ts_floor;

	/* keepalive requests awaiting their first reply */
	struct {
		uint16_t seq;
		uint32_t ts;
		bool live;
	} ka[CL_KA_OUTSTANDING];
	unsigned ka_next;

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
#define CL_HEADROOM (LS_HDR_LEN + LS_FEC_EXT_LEN + LS_AUTH_ID_LEN)

/* Wrap the payload at buf[CL_HEADROOM .. CL_HEADROOM+len) in place: headers in front,
 * tag (keyed routes) behind; buf must hold CL_HEADROOM + len + LS_TAG_LEN bytes. h
 * brings the version, FEC fields and addresses (a data or parity packet); the route
 * fills in the rest. Sets *start to the first byte of the datagram and returns its
 * length. */
size_t client_route_wrap(struct client_route *r, struct ls_hdr *h, uint8_t *buf, size_t len,
			 uint64_t now_us, uint8_t **start);

/* Control packets, built into buf (at least LS_MAX_OVERHEAD bytes); return the length.
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
	CL_RX_CONSUMED,   /* a FIN, or a reply matching no request: nothing to do */
};
/* Check a decoded datagram from this route's proxy (docs/protocol.md 1.3 order) and
 * account for it: replay window, counters, jitter, RTT, path. buf is the datagram
 * (the tag covers it). */
enum client_rx client_route_receive(struct client_route *r, const uint8_t *buf,
				    const struct ls_pkt *p, uint64_t now_us,
				    enum client_drop *why);

/* Every keepalive interval: a downstream loss sample from the own counters, and the
 * path goes down after max(3 intervals, 1 s) without any packet from the proxy. */
void client_route_interval(struct client_route *r, uint64_t now_us, uint32_t keepalive_ms);

#endif
