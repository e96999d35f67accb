/* lightspeed-client capture mode inside the client: the engine (client_capture.h) fed
 * from the game profile, the game servers the diverted datagrams go to (learnt from
 * each one's original destination: that is --game-server auto), the route each server
 * rides, `set_game` from the controller, and what `status` and `stats` show. The
 * packet path calls recv, route and send; they neither allocate nor log. */
#ifndef LS_CLIENT_CAPTURE_MODE_H
#define LS_CLIENT_CAPTURE_MODE_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "client_capture.h"
#include "profile.h"
#include "result.h"

struct client;
struct client_addrs;
struct client_route;
struct client_txq;

#define CL_CAPTURE_SERVERS 16   /* game servers told apart (more share the active route) */
#define CL_CAPTURE_RULES 16     /* server -> route assignments */
#define CL_CAPTURE_ROUTE_NAME 32 /* a route name and its NUL */

struct client_capture_server {
	uint32_t ip;              /* network order */
	uint16_t port;            /* network order */
	uint64_t packets, first_us, last_us;
	struct client_route *r;   /* its route by capture_route, resolved every batch; NULL: the active */
	char route[CL_CAPTURE_ROUTE_NAME];
	bool announced;           /* logged and published */
};

/* capture_route: the servers at ip (port 0: any port) ride route `name`. */
struct client_capture_rule {
	uint32_t ip;
	uint16_t port;
	char name[CL_CAPTURE_ROUTE_NAME];
};

struct client_capture_mode {
	struct client_capture cap;
	struct client_capture_match m;
	bool user_ports;          /* --ports: a game's profile does not change them */
	bool auto_game;           /* --game auto: set_game picks the game */
	struct ls_profile prof;
	bool have_prof;
	char game[LS_PROFILE_ID_MAX]; /* the game on ("" none) */
	pid_t pid;                /* its process, 0 unknown */
	char match_desc[160];     /* "cgroup /... (level 3)", "uid 1000", "ports only" */
	struct client_capture_server srv[CL_CAPTURE_SERVERS];
	unsigned nsrv, last;
	uint64_t other_servers;   /* datagrams to servers beyond the table */
	struct client_capture_rule rules[CL_CAPTURE_RULES];
	unsigned nrules;
	bool ev_new;              /* a server not announced yet */
};

/* Capture mode's start: the game profile (or --ports), the game's process if it runs,
 * the diversion. -1 with a message. */
int client_capture_mode_open(struct client *c, const struct client_addrs *a, char *err,
			     size_t errlen);
void client_capture_mode_close(struct client *c);
/* The descriptor diverted datagrams arrive on. */
int client_capture_mode_fd(const struct client *c);

/* ---- the packet path ---------------------------------------------------------------- */

/* One batch of diverted datagrams (the engine's recv), every route of the server
 * assignments looked up once per batch. */
int client_capture_mode_recv(struct client *c, struct mmsghdr *m, unsigned n,
			     struct sockaddr_in *dst);
/* The route a datagram to dst takes: its server's (when ready), else def. */
struct client_route *client_capture_mode_route(struct client *c, const struct sockaddr_in *dst,
					       struct client_route *def, uint64_t now_us);
/* Has the game sent to this server (host order)? Replies from others are not put back. */
bool client_capture_mode_known(struct client *c, uint32_t ip, uint16_t port);
/* Put the downstream queue's replies back on the machine from their servers. */
void client_capture_mode_send(struct client *c, struct client_txq *q);

/* ---- steering ------------------------------------------------------------------------ */

/* The game on (NULL: none), and its process (0: unknown): its profile's ports, its
 * process's sockets, its FEC and keepalive where the configuration left the defaults.
 * *applied false (with the reason in msg) when the configuration names another game. */
enum ls_rc client_capture_mode_set_game(struct client *c, const char *game, pid_t pid,
					bool *applied, char *msg, size_t msglen);
/* The servers at "ip" or "ip:port" ride route name (NULL: the active route again). */
enum ls_rc client_capture_mode_assign(struct client *c, const char *server, const char *name,
				      char *msg, size_t msglen);
/* status's "capture" object (null in redirect mode). */
json_t *client_capture_mode_json(const struct client *c);
/* After a batch: new servers logged and published (event `game_server`). */
void client_capture_mode_events(struct client *c);

#endif
