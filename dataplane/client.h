/* lightspeed-client (redirect mode): what the client's files share — the process
 * state, the game-socket flow table, the counters, and each file's entry points
 * (docs/protocol.md sections 1 and 3.2). */
#ifndef LS_CLIENT_H
#define LS_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client_conf.h"
#include "client_capture_mode.h"
#include "client_route.h"
#include "dp_fec.h"
#include "log.h"
#include "steer.h"

#ifndef LS_VERSION
#define LS_VERSION "0.1.0"
#endif

#define CL_PROG "lightspeed-client"

/* Datagrams per recvmmsg/sendmmsg, and batches per socket per wake-up: a flood on one
 * socket cannot starve the other, the timers or steering. */
#define CL_BATCH 32
#define CL_BATCHES_PER_WAKE 8

/* Game sockets that sent to us recently (a reply is delivered only to one of them). */
#define CL_MAX_FLOWS 64
#define CL_FLOW_IDLE_US (120ull * 1000000)

/* After a switch, the old route's proxy may still answer for this long. */
#define CL_OLD_ROUTE_MS 2000

/* The route table (docs/protocol.md 3.2). */
#define CL_MAX_ROUTES 8
#define CL_PROBE_DEFAULT_MS 250 /* a standby's keepalive interval */
#define CL_PROBE_MIN_MS 20
#define CL_MISS_FAILOVER 3      /* keepalives missed in a row that switch to the backup */
#define CL_DEFAULT_ROUTE "default" /* the route of --proxy */
/* Relay hops: every route's relayed paths (docs/protocol.md 1.9). */
#define CL_MAX_HOPS (CL_MAX_ROUTES * CL_MAX_PATHS)
#define CL_DEFAULT_CONFIG "/etc/lightspeed/client.toml" /* read without -c when it exists */
#define CL_MANUAL_ROUTE "manual"   /* set_route's {proxy, ...} form */

/* A game socket. Each one is its own FEC block stream in both directions. */
struct client_flow {
	uint32_t ip;     /* host order; a free slot has port 0 */
	uint16_t port;
	uint64_t last_us;
	/* Where its latest datagram went: the game server (host order) and the route.
	 * A block carries one server on one route; either changing closes it first. */
	uint32_t srv_ip;
	uint16_t srv_port;
	struct client_route *route;
	struct ls_fec_enc *enc; /* upstream blocks: while FEC is on */
	struct ls_fec_dec *dec; /* downstream recovery: from the first version-2 packet */
	int dfd;                /* the direct route's socket of this game socket; 0: none */
	struct client_route *dec_route; /* the route whose blocks dec follows */
};

/* The direct route's sockets (client_direct.c): spares kept ready while a direct route
 * exists, and the batch of datagrams queued for them. */
#define CL_DIRECT_SPARE 4
/* epoll tags of the flows' direct sockets: CL_EV_DIRECT + flow index. */
#define CL_EV_DIRECT 1000u
struct client_directs {
	int spare[CL_DIRECT_SPARE];
	unsigned nspare, open;
	struct mmsghdr msg[CL_BATCH];
	struct iovec iov[CL_BATCH];
	struct sockaddr_in to[CL_BATCH];
	int fd[CL_BATCH];
	unsigned n;
	struct ls_ratelog rl;
};

struct client_counters {
	uint64_t game_rx_packets, game_rx_bytes;
	uint64_t tunnel_tx_packets, tunnel_tx_bytes;
	uint64_t tunnel_rx_packets, tunnel_rx_bytes;
	uint64_t delivered_packets, delivered_bytes;
	uint64_t keepalives_sent, keepalive_replies;
	uint64_t route_changes;
	uint64_t direct_tx_packets, direct_tx_bytes; /* the direct route's, to game servers */
	uint64_t direct_rx_packets, direct_rx_bytes; /* and from them */
	uint64_t drops[LS_DROP__COUNT];
};

/* Datagrams waiting for one sendmmsg. Most point into the receive buffers; parity and
 * recovered packets, which have none, are built in the slot's own storage. */
#define CL_TXQ (2 * CL_BATCH)
struct client_txq {
	struct mmsghdr msg[CL_TXQ];
	struct iovec iov[CL_TXQ];
	struct sockaddr_in to[CL_TXQ];
	struct sockaddr_in from[CL_TXQ]; /* downstream in capture mode: the game server */
	uint8_t own[CL_TXQ][LS_RX_BUF];
	unsigned n;
};

/* Game datagrams that came before a keyed route's first lifetime (one round trip after
 * start), sent when it begins; older than CL_HOLD_US they are dropped (`handshake`). */
#define CL_HOLD 32
#define CL_HOLD_US 1000000
struct client_hold {
	uint8_t buf[CL_HOLD][LS_RX_BUF]; /* payload at CL_HEADROOM, as in up_buf */
	uint16_t len[CL_HOLD];
	struct sockaddr_in from[CL_HOLD];
	struct sockaddr_in dst[CL_HOLD];
	uint64_t at[CL_HOLD];
	unsigned n;
};

/* Batch buffers for both directions, allocated once at start. */
struct client_io {
	/* game -> tunnel: payloads land at CL_HEADROOM so headers go in front in place */
	uint8_t up_buf[CL_BATCH][LS_RX_BUF];
	struct mmsghdr up_rx[CL_BATCH];
	struct iovec up_rx_iov[CL_BATCH];
	struct sockaddr_in up_from[CL_BATCH];
	struct sockaddr_in up_dst[CL_BATCH]; /* capture mode: each one's game server */
	struct client_txq up;
	/* tunnel -> game */
	uint8_t down_buf[CL_BATCH][LS_RX_BUF];
	struct mmsghdr down_rx[CL_BATCH];
	struct iovec down_rx_iov[CL_BATCH];
	struct sockaddr_in down_from[CL_BATCH];
	struct client_txq down;
	struct client_hold hold;
	uint8_t scratch[LS_RX_BUF]; /* parity is built here, then copied along its paths */
};

/* Forward error correction: the setting applies to both directions. Upstream the
 * client encodes with it; downstream it asks the proxy for it in its keepalives. */
struct client_fec {
	struct dp_fec_setting set;  /* --fec, fec, set_fec */
	struct ls_fec_params up;    /* what the encoders use now */
	struct dp_fec_auto au;      /* the upstream policy for the current route */
	struct dp_fec_mirror mirror; /* the proxy's downstream policy, as seen from here */
	uint32_t ka_ms;             /* the keepalive interval in force */
	uint64_t next_us;           /* earliest deadline of an open block; 0: none */
	bool split;                 /* the active route is in split mode (1.9) */
	struct dp_fec_counters ctr; /* parity sent, and what freed decoders counted */
};

/* Seq counters of routes left behind, so that coming back to a proxy that still holds
 * the session continues its seq instead of falling behind its replay window. */
#define CL_SEQ_MEMO 16
struct client_seq_memo {
	struct sockaddr_in proxy;
	uint32_t session_id;
	uint16_t next_seq;
	bool used;
};

struct client {
	struct client_conf conf;
	struct sockaddr_in listen, game_server;

	int local_fd;   /* the game talks to this one (redirect mode) */
	int tunnel_fd;  /* to and from the proxies */
	int epoll_fd, signal_fd, tick_fd;
	struct ls_steer *steer;
	struct client_io *io;

	struct client_route routes[CL_MAX_ROUTES]; /* the candidates (used ones) */
	struct client_route hops[CL_MAX_HOPS];     /* their sessions with relays */
	struct client_route *cur;    /* the active route: game packets go here; NULL: none */
	struct client_route *backup; /* armed for fast failover, or NULL */
	/* The route left by the last switch, until prev_until_us: it still takes late
	 * replies, and the game's packets while the active one's first lifetime is a
	 * round trip away (so a switch loses nothing). A route whose parameters were
	 * replaced or that was deleted while so kept lives on in `retired`. */
	struct client_route *prev;
	uint64_t prev_until_us;
	struct client_route retired;
	/* Where game packets went last (FEC blocks never span two routes). */
	struct client_route *up_route;
	/* For switch_gap: the last game packet delivered, and a switch waiting for the
	 * first one through its new route. */
	uint64_t last_delivered_us;
	struct client_route *gap_to;
	uint64_t gap_from_us;
	uint64_t gap_us;     /* measured, */
	bool gap_ready;      /* and not published yet */
	struct client_seq_memo memo[CL_SEQ_MEMO];

	struct client_flow flows[CL_MAX_FLOWS];
	unsigned n_flows;
	struct client_directs direct;
	struct client_fec fec;
	struct client_capture_mode *capm; /* capture mode (client_capture_mode.h), or NULL */

	struct client_counters ctr;
	struct {
		uint64_t seen[LS_DROP__COUNT];    /* drops already told of */
		uint64_t next_us[LS_DROP__COUNT]; /* when a reason may be told of again */
	} warn;
	uint64_t started_us;
	bool stop;
};

/* ---- client_warn.c: drops in the log ------------------------------------------ */

/* Once a second: the first drop of each reason at warn with what to do, then at most
 * one line per reason every 10 s while it goes on. */
void client_warn_drops(struct client *c, uint64_t now_us);

/* ---- client_reload.c: SIGHUP ---------------------------------------------------- */

/* Apply what changed between the configuration read last (was) and the one read now
 * (now, checked, its addresses resolved in a); name: the file. */
void client_reload(struct client *c, const struct client_conf *was, const struct client_conf *now,
		   const struct client_addrs *a, const char *name);

/* ---- client_table.c: the candidate routes (docs/protocol.md 3.2) --------------- */

/* 1 to 31 characters of [A-Za-z0-9._-]. */
bool client_route_name_ok(const char *name);
struct client_route *client_table_find(struct client *c, const char *name);
unsigned client_table_count(const struct client *c);
/* Add a route (first probe at once; a keyed one begins its handshake). An existing name
 * is LS_RC_EXISTS unless replace: then it takes the new parameters (the active route
 * switches to them losing nothing). LS_RC_FULL beyond CL_MAX_ROUTES. *out: the route. */
enum ls_rc client_table_add(struct client *c, const char *name, const struct sockaddr_in *proxy,
			    uint32_t session_id, const uint8_t *key, uint32_t probe_ms,
			    bool replace, struct client_route **out);
/* The direct route (client_direct.c) named name: no proxy, the game server itself.
 * LS_RC_EXISTS unless replace (LS_RC_CONFLICT for a route in use), LS_RC_FULL. */
enum ls_rc client_table_add_direct(struct client *c, const char *name, bool replace,
				   struct client_route **out);
/* LS_RC_NOT_FOUND; LS_RC_CONFLICT for the active route; an armed backup is disarmed. */
enum ls_rc client_table_del(struct client *c, const char *name);
/* Arm a backup (NULL: none). LS_RC_NOT_FOUND; LS_RC_CONFLICT for the active route. */
enum ls_rc client_table_arm(struct client *c, const char *name);
/* Make `to` the active route, losing and duplicating nothing (reason "steer" or
 * "failover"); the route left stays in prev for CL_OLD_ROUTE_MS. */
void client_switch(struct client *c, struct client_route *to, const char *reason,
		   uint64_t now_us);
/* set_route's {proxy, session_id, key, game_server} form: the route "manual", added or
 * given these parameters, made active. False when nothing changed (or *rc says why
 * not: the table is full). */
bool client_set_route(struct client *c, const struct sockaddr_in *proxy, uint32_t session_id,
		      const uint8_t *key, const struct sockaddr_in *game_server, enum ls_rc *rc);
/* The route game packets go to now: the active one, or the one just left while the
 * active one has no lifetime yet; NULL without a route. */
struct client_route *client_up_route(struct client *c, uint64_t now_us);
/* The keepalive interval of r now: the active route's keepalive_ms (or FEC auto's, if
 * shorter), a standby's probe_ms. */
uint32_t client_keepalive_ms(const struct client *c, const struct client_route *r,
			     uint64_t now_us);
/* Each loop turn: keepalives due, missed ones counted, fast failover, handshakes, the
 * silence watch, held packets, events. Returns when to run again (0: no deadline). */
uint64_t client_table_run(struct client *c, uint64_t now_us);

/* ---- client_direct.c: the direct route, straight to the game server --------- */

/* A route of the table goes direct. */
bool client_direct_wanted(const struct client *c);
/* Keep CL_DIRECT_SPARE sockets ready while one does (each loop turn). */
void client_direct_refill(struct client *c);
/* Queue a game datagram for f's game server (to), from f's own socket. */
void client_direct_send(struct client *c, struct client_flow *f, uint8_t *payload, size_t len,
			const struct sockaddr_in *to);
void client_direct_flush(struct client *c);
/* f's socket is readable (idx: its index in flows). */
void client_direct_readable(struct client *c, unsigned idx);
/* A game socket goes: so does its direct socket. */
void client_direct_flow_gone(struct client *c, struct client_flow *f);
void client_direct_free(struct client *c);

/* ---- client_multi.c: a route's paths, direct or through relays (1.9) ---------- */

/* A route's paths as route_add makes them: the direct one alone. */
void client_route_paths_init(struct client_route *r);
/* Only the direct path stays (the relays' hops are freed). */
void client_route_drop_relays(struct client_route *r);
/* The index of the path named name, or -1. */
int client_path_find(const struct client_route *r, const char *name);
/* Add (or with replace change) a path: "direct" (relay NULL), or through a relay with
 * a grant (its hop begins its handshake at once); next_hop is the egress as the relay
 * reaches it (NULL: the route's own address for it). LS_RC_EXISTS, LS_RC_FULL beyond
 * CL_MAX_PATHS, LS_RC_CONFLICT when another path has that grant at that relay,
 * LS_RC_INVALID for "direct" with a relay or another name without one. */
enum ls_rc client_path_add(struct client *c, struct client_route *r, const char *name,
			   const struct sockaddr_in *relay, uint32_t grant_id, const uint8_t *key,
			   const struct sockaddr_in *next_hop, bool replace);
/* LS_RC_NOT_FOUND; LS_RC_CONFLICT for a route's last path. */
enum ls_rc client_path_del(struct client *c, struct client_route *r, const char *name);
/* The mode in force (auto's choice; single with one path). */
enum client_mode client_route_mode_now(const struct client_route *r);
void client_route_set_mode(struct client *c, struct client_route *r, enum client_mode m);
/* Each path's role from the mode and the data path. */
void client_route_roles(struct client *c, struct client_route *r, uint64_t now_us);
/* Each interval: the data path (the best, with a margin and a hold; at once when it is
 * down) and auto's mode. */
void client_route_choose(struct client *c, struct client_route *r, uint64_t now_us);
/* The paths a game packet (parity: an FEC parity packet) takes now, into out. */
unsigned client_route_targets(struct client_route *r, bool parity, uint64_t now_us,
			      uint8_t out[CL_MAX_PATHS]);
/* Can r carry game packets now: a lifetime, and a path whose hop is up? */
bool client_route_sendable(struct client_route *r, uint64_t now_us);
/* Keepalives unanswered in a row: the route's fewest over its paths. */
uint32_t client_route_missed(const struct client_route *r);
/* Send an end-to-end datagram along path i now (wrapped for a relay); false when it
 * could not go (counted). */
bool client_send_on(struct client *c, struct client_route *r, unsigned i, const uint8_t *buf,
		    size_t len, uint64_t now_us);
/* The same into the upstream queue; data must stay valid until the queue flushes. */
bool client_queue_on(struct client *c, struct client_route *r, unsigned i, uint8_t *data,
		     size_t len, uint64_t now_us);
/* The same for data that does not stay valid: copied into the queue's own storage. */
bool client_queue_copy_on(struct client *c, struct client_route *r, unsigned i,
			  const uint8_t *data, size_t len, uint64_t now_us);
/* Keepalive requests to r now, one along each path. */
void client_send_keepalive(struct client *c, struct client_route *r, uint64_t now_us);
/* Shutdown: a FIN to the active route along each path, and to each of its relays. */
void client_send_fins(struct client *c, uint64_t now_us);
/* Each loop turn: the hops' keepalives, handshakes and silence. Returns the next
 * deadline (0: none). */
uint64_t client_multi_run(struct client *c, uint64_t now_us);
/* The route (and *path) a datagram from `from` came by, or NULL. */
struct client_route *client_way_for(struct client *c, const struct sockaddr_in *from,
				    const struct ls_pkt *p, int *path);
/* Does any route (or the retired one) have this proxy or relay address? */
bool client_table_knows(const struct client *c, const struct sockaddr_in *from);

/* ---- client_fwd.c: the packet paths -------------------------------------------- */

/* Send what waited for the first lifetime, once it is up (each loop turn). */
void client_hold_release(struct client *c, uint64_t now_us);

int client_io_init(struct client *c);
/* Game -> tunnel: read what the game sent, wrap it, send it to the current proxy. */
void client_fwd_up(struct client *c);
/* Tunnel -> game: check what the proxies sent, deliver it to its game socket. */
void client_fwd_down(struct client *c);
/* Send one control datagram now (keepalive, reply, FIN, handshake); false when the
 * kernel refused it (counted). */
bool client_send_control(struct client *c, const struct sockaddr_in *to, const uint8_t *buf,
			 size_t len);
/* Forget game sockets idle for CL_FLOW_IDLE_US. */
void client_flows_expire(struct client *c, uint64_t now_us);
/* The outgoing queues: a slot (sending what is queued first when full), its
 * datagram, and the send. */
unsigned client_txq_slot(struct client *c, struct client_txq *q);
void client_txq_put(struct client_txq *q, unsigned i, void *data, size_t len,
		    const struct sockaddr_in *to);
void client_txq_flush(struct client *c, struct client_txq *q);

/* ---- client_fec.c: forward error correction (docs/protocol.md 1.2) ------------ */

/* Apply a setting: encoders follow it (auto starts from its policy's first choice). */
void client_fec_set(struct client *c, const struct dp_fec_setting *s);
/* The FEC ask our keepalives carry. */
void client_fec_ask(const struct client *c, uint8_t *fec_k, uint8_t *fec_m);
/* A keepalive request to r is about to leave: auto follows the report it carries. */
void client_fec_ka_request(struct client *c, const struct client_route *r, uint64_t now_us);
/* The keepalive interval to use now (faster while auto learns, 1.2.1). */
uint32_t client_fec_ka_ms(const struct client *c, uint64_t now_us);
/* A game socket appears (it gets an encoder while FEC is on) or goes. */
void client_fec_flow_new(struct client *c, struct client_flow *f);
void client_fec_flow_gone(struct client *c, struct client_flow *f);
/* A data packet of f joined the upstream queue towards r (full: it filled its block):
 * parity held back from the previous block follows it, then the full block's. */
void client_fec_sent(struct client *c, struct client_route *r, struct client_flow *f,
		     bool full, uint64_t now_us);
/* Close every block whose time is up (towards the current route), or every open
 * block towards r (before r stops being the route, so no block spans two). */
void client_fec_due(struct client *c, uint64_t now_us);
void client_fec_close_all(struct client *c, struct client_route *r, uint64_t now_us);
/* Close f's open block now (its server or its route is about to change). */
void client_fec_close_flow(struct client *c, struct client_flow *f, uint64_t now_us);
/* A version-2 datagram from r for game socket f: recovery, then delivery. */
void client_fec_down(struct client *c, struct client_route *r, struct client_flow *f,
		     const struct ls_pkt *pkt, uint8_t *payload, uint64_t now_us);
/* The proxy reported on our packets (m->up_sample: the way that carries the data):
 * the auto policy learns from it. */
void client_fec_report(struct client *c, struct client_route *r, struct client_meas *m,
		       uint64_t now_us);
/* A new route: decoders and the policy start over (another proxy, another path). */
void client_fec_route_changed(struct client *c);
/* The active route's mode changed: split needs a code even with FEC off. */
void client_fec_mode_changed(struct client *c);
/* Once a second: blocks that will never complete are counted. */
void client_fec_tick(struct client *c, uint64_t now_us);
/* The counters of `stats`: freed decoders and live ones. */
void client_fec_counters(const struct client *c, struct dp_fec_counters *out);
void client_fec_free(struct client *c);

/* ---- client_ctl.c: steering ---------------------------------------------------- */

int client_ctl_open(struct client *c, char *err, size_t errlen);
/* Publish and log what the packet path noted on the routes (rtt, path, FIN). */
void client_ctl_route_events(struct client *c);
void client_ctl_route_changed(struct client *c);
/* Events `switch` {from, to, reason, last_rx_us}, `switch_gap` {to, gap_us} and
 * `backup` {name}. */
void client_ctl_switch_event(struct client *c, const struct client_route *from,
			     const struct client_route *to, const char *reason);
void client_ctl_gap_event(struct client *c, const struct client_route *to, uint64_t gap_us);
void client_ctl_backup_event(struct client *c);
void client_ctl_counters_event(struct client *c);

#endif
