/* lightspeed-client: what keepalives measure on one way to a peer (docs/protocol.md
 * 1.4): RTT, jitter, keepalives missed in a row, loss each way and the state of the
 * way — for a route's direct path to its egress, for each relayed path end to end, and
 * for each relay hop (1.9). And a route's paths: direct, or via a relay. Nothing here
 * does I/O, logs or allocates. */
#ifndef LS_CLIENT_PATH_H
#define LS_CLIENT_PATH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "proto.h"

/* Keepalive requests remembered for matching replies: enough for an RTT of 32
 * intervals at the shortest interval before a reply stops counting. */
#define CL_KA_OUTSTANDING 32
/* RTT samples awaiting an `rtt` event (normally one per batch of replies). */
#define CL_RTT_PENDING 8

/* degraded: the peer answers keepalives, but the game packets it sends are being
 * dropped here (none accepted over a second while some were dropped). */
enum client_pstate { CL_PATH_UNKNOWN, CL_PATH_UP, CL_PATH_DOWN, CL_PATH_DEGRADED };
const char *client_path_name(enum client_pstate p);
/* "unknown", "up" (degraded too) or "down": a route or path object's state. */
const char *client_route_state_name(enum client_pstate p);

/* One way's measurement. */
struct client_meas {
	/* keepalive requests awaiting their first reply */
	struct {
		uint16_t seq;
		uint32_t ts;
		bool live;
		uint64_t sent_us;
		uint32_t sent;    /* the way's datagrams sent by then, this one included */
	} ka[CL_KA_OUTSTANDING];
	unsigned ka_next;
	/* Keepalives unanswered in a row: sent after the newest answered one and not
	 * answered within a few RTT (client_meas_watch). */
	uint32_t missed;
	uint64_t answered_sent_us; /* when the newest answered request left */
	uint64_t keepalives_sent, replies;
	uint32_t flips;           /* up <-> down */
	int64_t rtt_min_us;       /* -1 before the first sample */
	enum client_pstate reported; /* the state the last route_state event gave */
	enum client_pstate state;

	struct ls_hist rtt;
	int64_t srtt_us;      /* smoothed RTT; -1 before the first sample */
	uint32_t jitter16;    /* RFC 3550 jitter in 1/16 us */
	bool transit_any[2];  /* [0] peer-stamped packets, [1] echoes of our own ts */
	int32_t transit[2];
	bool jitter_any;
	double loss_up, loss_down; /* smoothed; < 0 before the first sample */

	/* upstream loss: the peer's previous report (of the session, or of this way) */
	struct ls_rx_base up_base;
	uint16_t up_rx16;     /* per way (1.9): the peer's count and our own at that reply */
	uint32_t up_sent;
	uint32_t way_exp, way_rcv; /* gathered until a sample is big enough */
	bool up_way_any;
	/* The last reply's report of our packets, for the FEC policy: set with each reply
	 * that carried a sample, cleared by the caller. */
	bool up_sample;
	uint32_t up_expected, up_received;
	uint8_t up_burst;
	/* downstream loss: own counters at the last interval */
	uint32_t down_count;
	uint64_t down_top;
	bool down_any;
	/* replies against requests over the last few (a way's loss both ways together) */
	uint32_t rt_req, rt_rep;

	uint64_t last_rx_us;  /* last accepted packet of any kind; 0: none yet */
	/* game packets accepted and dropped since iv_start_us (degraded) */
	uint32_t iv_data_ok, iv_data_drop;
	uint64_t iv_start_us;

	/* for the loop to publish after the batch */
	bool ev_path;
	unsigned n_ev_rtt;
	uint32_t ev_rtt[CL_RTT_PENDING];
};

void client_meas_init(struct client_meas *m, uint64_t now_us);
/* A keepalive request left with this seq and ts_us; sent: the way's count of datagrams
 * so far (per-way loss, 1.9). */
void client_meas_request(struct client_meas *m, uint16_t seq, uint32_t ts, uint32_t sent,
			 uint64_t now_us);
bool client_meas_awaits(const struct client_meas *m, uint16_t seq, uint32_t ts);
/* A reply echoing seq and ts_us: true for the first reply to an outstanding request (an
 * RTT sample, the way is up, the report measures upstream loss: of the session from
 * rx_count and rx_highest, or with per_way of this way from path_rx against what we
 * sent); false for anything else, which changes nothing. */
bool client_meas_reply(struct client_meas *m, const struct ls_hdr *h,
		       const struct ls_keepalive *ka, bool per_way, uint64_t now_us);
/* A genuine packet other than a reply came this way (peer_clock: ts_us is the peer's
 * clock, a jitter sample). */
void client_meas_heard(struct client_meas *m, uint32_t ts, bool peer_clock, uint64_t now_us);
/* Game packets of this way accepted, or dropped after the checks (degraded). */
void client_meas_data(struct client_meas *m, bool ok);
void client_meas_set(struct client_meas *m, enum client_pstate s);
/* Something genuine came: down or unknown becomes up; degraded stays until game
 * packets get through. */
void client_meas_alive(struct client_meas *m);
/* Recount the keepalives missed in a row (a request is missed when no answer came
 * within srtt + max(4 jitter, 1.5 srtt, 5 ms), 1 s before any RTT sample); 3 or more
 * take the way down. Returns when to look again (0: nothing outstanding). */
uint64_t client_meas_watch(struct client_meas *m, uint64_t now_us);
/* Every keepalive interval: downstream loss from own counters (rx: what was received
 * from the peer; NULL: from the way's replies against its requests, less the upstream
 * loss), down after max(3 intervals, 1 s) without a packet (since: the way's start),
 * degraded or up again by the second's game packets. */
void client_meas_interval(struct client_meas *m, uint64_t now_us, uint32_t interval_ms,
			  uint64_t since_us, const struct ls_rx_count *rx);

/* ---- a route's paths (1.9) ------------------------------------------------------- */

#define CL_MAX_PATHS 3
#define CL_PATH_DIRECT "direct" /* the name of the path straight to the egress */

struct client_route;

/* One way from the client to a route's egress: direct (to the egress's address; its
 * measurement is the route's own), or through a relay (a hop session with the relay,
 * and the measurement end to end through it). */
struct client_path {
	bool used;
	bool relay;
	char name[32];
	uint8_t role;              /* LS_ROLE_* asked of the egress for this way */
	struct client_route *hop;  /* relay: the session with the relay (from the pool) */
	struct sockaddr_in next_hop; /* relay: the egress as the relay reaches it */
	struct client_meas m;      /* relay: end-to-end keepalives through it */
	uint32_t sent;             /* datagrams taking an end-to-end seq sent this way */
	uint64_t copies;           /* end-to-end datagrams received this way, copies too */
	uint64_t duplicates;       /* of them, copies dropped (another way was first) */
};

#endif
