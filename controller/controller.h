/* lightspeed-controller: the process state that the controller's files share, and each
 * file's entry points. Health reports (health.c), selection decides (select*.c),
 * failover acts (failover.c); dplink.c carries what they need to and from the client
 * dataplane, api.c serves it over REST, icmp.c measures the direct path, and
 * controller.c runs the loop that ties them together. */
#ifndef LS_CTRL_CONTROLLER_H
#define LS_CTRL_CONTROLLER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ctrl_conf.h"
#include "direct_route.h"
#include "failover.h"
#include "game_detect.h"
#include "history.h"
#include "ml_ctl.h"
#include "node.h"
#include "paths.h"
#include "select.h"
#include "steer_client.h"
#include "warp.h"

#ifndef LS_VERSION
#define LS_VERSION "0.1.0"
#endif

#define CTRL_PROG "lightspeed-controller"

/* One round of health, selection and failover this often. */
#define CTRL_TICK_MS 100

struct dplink;
struct agents;
struct discovery_dns;
struct discovered;
struct icmp_probe;
struct ls_httpd;

struct ctrl_counters {
	uint64_t samples;            /* RTT samples taken in */
	uint64_t switches;           /* since start */
	uint64_t dataplane_connects;
	uint64_t bad_events;         /* events from the dataplane we could not read */
};

struct ctrl {
	struct ctrl_conf conf;
	struct ctrl_flags flags;     /* kept for SIGHUP: the same flags override the file */
	uv_loop_t *loop;
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t tick;

	struct node_table nodes;
	struct selector sel;
	struct select_state sel_state;
	struct select_decision decision; /* the last round's */
	enum fo_hold hold;               /* what held the decided switch back, if anything */
	uint64_t hold_until_us;
	struct failover fo;
	struct history hist;
	char history_path[300];

	struct dplink *dp;
	struct icmp_probe *icmp;
	struct ls_httpd *api;
	struct ls_httpd *dash;      /* the dashboard: the same routes, and web/'s files */
	struct agents *agents;       /* agents.c: the nodes' agents over QUIC */
	struct discovery_dns *dns;   /* discovery_dns.c: nodes found in DNS */
	struct game_detect *games;   /* game_detect.c */
	struct warp *warp;           /* warp.c */
	struct ml_ctl *ml;           /* ml_ctl.c: the ML selector's model, data, training */
	struct paths paths;          /* paths.c: each egress's paths through relays */
	struct droute droute;        /* direct_route.c: the direct route as a candidate */

	struct ctrl_counters ctr;
	uint64_t started_us;
	bool stopping;
};

/* ---- round.c ------------------------------------------------------------------------ */

/* Run one round now (after a switch or a node change, not to wait for the tick). */
void ctrl_round(struct ctrl *c);
/* The dataplane's route changed (an event, a poll or our own request's answer). */
void ctrl_switched(struct ctrl *c, int from, int to, enum switch_reason why);
/* A node's health flipped: log it once and tell the API's streams. */
void ctrl_health_events(struct ctrl *c, int slot);
/* Add a node from any source (it is probed once the dataplane has its route). */
enum ls_rc ctrl_node_add(struct ctrl *c, const struct node_conf *n, char *msg, size_t msglen);
/* Publish an event to the API's streams (data is taken). */
void ctrl_publish(struct ctrl *c, const char *event, json_t *data);
/* A decision, for the log and the streams. */
void ctrl_decision(struct ctrl *c, const char *kind, int slot, const char *detail);
/* Names for failover_manual and the like: names[slot] or NULL. */
void ctrl_names(const struct ctrl *c, const char *names[NODE_MAX]);
/* Scores of the last round, per slot. */
void ctrl_scores(const struct ctrl *c, struct select_score s[NODE_MAX]);

/* ---- dplink.c: the client dataplane's steering link ------------------------------ */

struct dplink *dplink_open(struct ctrl *c, char *err, size_t errlen);
void dplink_close(struct dplink *d);
bool dplink_connected(const struct dplink *d);
/* The dataplane's last `status` and `stats` (borrowed; NULL until read). */
json_t *dplink_status(const struct dplink *d);
json_t *dplink_stats(const struct dplink *d);
/* When the last `stats` answer came (ls_now_us(); 0: none yet). */
uint64_t dplink_stats_us(const struct dplink *d);
/* A request of another file's (paths.c), args taken; fn gets the answer (exactly once)
 * when true is returned. */
bool dplink_request(struct dplink *d, const char *cmd, json_t *args, ls_steerc_answer_fn fn,
		    void *ud);
/* set_path_mode on the client for a node's route (1.9). */
enum ls_rc dplink_set_mode_now(struct dplink *d, const char *node, const char *mode, char *msg,
			       size_t msglen);
/* "ip:port" of the game server the client serves, or NULL until known. */
const char *dplink_game_server(const struct dplink *d);
/* A request whose answer matters only when it is an error (logged, once until one
 * succeeds): telling the client which game is on. */
void dplink_notify(struct dplink *d, const char *cmd, json_t *args);
/* Actions, sent without waiting (answers come back through the loop). */
void dplink_act(struct dplink *d, const struct failover_action *a);
/* Blocking calls for the API (the answer is what the API must report): route_add of a
 * node, route_del, and a manual switch. LS_RC_OK, or an error with a message. */
enum ls_rc dplink_add_now(struct dplink *d, int slot, char *msg, size_t msglen);
enum ls_rc dplink_del_now(struct dplink *d, const char *name, char *msg, size_t msglen);
enum ls_rc dplink_switch_now(struct dplink *d, int slot, char *msg, size_t msglen);
/* set_fec on the client: "off", "auto" or "K:M[:MS[:S]]" (the client checks it). */
enum ls_rc dplink_set_fec_now(struct dplink *d, const char *fec, char *msg, size_t msglen);
/* The socket moved (reload): reconnect there. */
int dplink_reopen(struct dplink *d, char *err, size_t errlen);
/* Bring the dataplane's table in line with the node table (after a reload). */
void dplink_sync(struct dplink *d);
/* A route object of `routes` into *out and its name; -1 when it is malformed (every
 * field is checked: it comes from a socket). */
int dplink_parse_route(json_t *o, char name[NODE_NAME_MAX], struct node_dp *out);
struct dplink_stats {
	uint64_t connects, events, bad_events, requests, errors;
};
void dplink_get_stats(const struct dplink *d, struct dplink_stats *st);

/* ---- icmp.c: the direct path to the game server ------------------------------------ */

enum icmp_state { ICMP_UNKNOWN, ICMP_MEASURED, ICMP_UNAVAILABLE };
struct icmp_probe *icmp_open(struct ctrl *c);
void icmp_close(struct icmp_probe *i);
/* The direct RTT (median of the recent echoes, us) or -1; the state for /routes. */
int64_t icmp_rtt_us(const struct icmp_probe *i, enum icmp_state *state);

/* ---- agents.c: the nodes' agents (QUIC control, quic_client.c; pins, pin.c) --------- */

int agents_open(struct ctrl *c, char *err, size_t errlen);
void agents_close(struct ctrl *c);
/* A control connection for every node with an agent, none for the others; the
 * sessions into the routes. Cheap: every tick. */
void agents_sync(struct ctrl *c);
/* May selection use the node? No while its agent's certificate is refused or it has no
 * session yet (why says so). */
bool agents_usable(const struct ctrl *c, int slot, char *why, size_t len);
/* Its agent's certificate is refused: the node is down until trusted. */
bool agents_refused(const struct ctrl *c, int slot);
/* The Node's "agent" member (null without an agent). */
json_t *agents_json(const struct ctrl *c, int slot);
/* lsctl trust NAME: accept the certificate the node's agent offered. */
enum ls_rc agents_trust(struct ctrl *c, const char *name, char *msg, size_t msglen);
/* A node found by discovery (dns, or peer exchange via another node). */
void agents_discovered(struct ctrl *c, const struct discovered *d, enum node_source src,
		       const char *via);
/* discovery_dns's callback (ctx: the ctrl). */
void agents_found_dns(void *ctx, const struct discovered *d);

/* ---- api.c: the REST handlers ---------------------------------------------------------- */

int api_open(struct ctrl *c, char *err, size_t errlen);
void api_close(struct ctrl *c);
/* Is anyone listening to /events? (Build an event only then.) */
bool api_streams(const struct ctrl *c);
/* Event bodies in the API's shapes: a switch record, and a decision (kind: switch,
 * hold, arm, disarm, refuse). */
json_t *api_switch_json(const struct switch_rec *r);
json_t *api_decision_json(const char *kind, const char *node, const char *detail);

#endif
