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
#include "client_route.h"
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

/* After set_route, the old route's proxy may still answer for this long. */
#define CL_OLD_ROUTE_MS 2000

struct client_flow {
	uint32_t ip;     /* host order; a free slot has port 0 */
	uint16_t port;
	uint64_t last_us;
};

struct client_counters {
	uint64_t game_rx_packets, game_rx_bytes;
	uint64_t tunnel_tx_packets, tunnel_tx_bytes;
	uint64_t tunnel_rx_packets, tunnel_rx_bytes;
	uint64_t delivered_packets, delivered_bytes;
	uint64_t keepalives_sent, keepalive_replies;
	uint64_t route_changes;
	uint64_t drops[CL_DROP__COUNT];
};

/* Batch buffers for both directions, allocated once at start. */
struct client_io {
	/* game -> tunnel: payloads land at CL_HEADROOM so headers go in front in place */
	uint8_t up_buf[CL_BATCH][LS_RX_BUF];
	struct mmsghdr up_rx[CL_BATCH], up_tx[CL_BATCH];
	struct iovec up_rx_iov[CL_BATCH], up_tx_iov[CL_BATCH];
	struct sockaddr_in up_from[CL_BATCH];
	/* tunnel -> game */
	uint8_t down_buf[CL_BATCH][LS_RX_BUF];
	struct mmsghdr down_rx[CL_BATCH], down_tx[CL_BATCH];
	struct iovec down_rx_iov[CL_BATCH], down_tx_iov[CL_BATCH];
	struct sockaddr_in down_from[CL_BATCH], down_to[CL_BATCH];
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

	int local_fd;   /* the game talks to this one */
	int tunnel_fd;  /* to and from the proxies */
	int epoll_fd, signal_fd, keepalive_fd, tick_fd, old_route_fd;
	struct ls_steer *steer;
	struct client_io *io;

	struct client_route routes[2];
	struct client_route *cur;  /* every packet goes here */
	struct client_route *old;  /* still accepted for late replies, or NULL */
	struct client_seq_memo memo[CL_SEQ_MEMO];

	struct client_flow flows[CL_MAX_FLOWS];
	unsigned n_flows;

	struct client_counters ctr;
	uint64_t started_us;
	bool stop;
};

/* ---- client.c ---------------------------------------------------------------------- */

/* Make (proxy, session, key) the current route; the previous one stays open for late
 * replies for CL_OLD_ROUTE_MS. A game_server may come with it (NULL keeps it).
 * Returns true when the route changed (false: it was already the current one). */
bool client_set_route(struct client *c, const struct sockaddr_in *proxy, uint32_t session_id,
		      const uint8_t *key, const struct sockaddr_in *game_server);

/* ---- client_fwd.c: the packet paths -------------------------------------------- */

int client_io_init(struct client *c);
/* Game -> tunnel: read what the game sent, wrap it, send it to the current proxy. */
void client_fwd_up(struct client *c);
/* Tunnel -> game: check what the proxies sent, deliver it to its game socket. */
void client_fwd_down(struct client *c);
/* Send one control datagram to a route's proxy (keepalive, reply, FIN); false when
 * the kernel refused it (counted). */
bool client_send_control(struct client *c, const struct client_route *r, const uint8_t *buf,
			 size_t len);
/* Forget game sockets idle for CL_FLOW_IDLE_US. */
void client_flows_expire(struct client *c, uint64_t now_us);

/* ---- client_ctl.c: steering ---------------------------------------------------- */

int client_ctl_open(struct client *c, char *err, size_t errlen);
/* Publish and log what the packet path noted on the routes (rtt, path, FIN). */
void client_ctl_route_events(struct client *c);
void client_ctl_route_changed(struct client *c);
void client_ctl_counters_event(struct client *c);

#endif
