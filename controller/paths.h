/* lightspeed-controller: the paths to each egress node (docs/protocol.md 1.9). A node
 * whose route may run through relays ([[relay]] in the configuration) gets up to
 * `[multipath] paths` of its candidate paths (direct, then each relay that reaches
 * it) on its client route; a path that stays bad is replaced by a spare path to the
 * same egress, so the game server keeps seeing the same address; the egress itself
 * changes only when no path to it works. No I/O of its own: requests go through the
 * dataplane link. */
#ifndef LS_CTRL_PATHS_H
#define LS_CTRL_PATHS_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "httpd.h"
#include "node.h"

#define PATHS_RELAY_MAX 8
#define PATHS_PER_ROUTE 3              /* the client's limit per route */
#define PATHS_CAND_MAX (1 + PATHS_RELAY_MAX) /* direct, then the relays */
#define PATHS_MODE_LEN 12

/* A relay as the configuration names it: its tunnel address and the grant the client
 * runs there; the egresses its grant reaches (none named: every node). */
struct relay_conf {
	char name[NODE_NAME_MAX];
	char address[256];
	struct sockaddr_in addr;
	uint32_t session_id;
	struct node_key key;
	char key_file[256];
	struct relay_nodes {
		char name[NODE_MAX][NODE_NAME_MAX];
		unsigned n;
	} nodes;
};

struct multipath_conf {
	char mode[PATHS_MODE_LEN]; /* path_mode of every route ("": the client's own) */
	uint32_t paths;            /* paths a route runs at once, 1..3 */
	uint32_t replace_after_ms; /* a path bad this long is replaced by a spare */
	double bad_loss;           /* a path losing more than this either way is bad */
	uint32_t rest_ms;          /* a replaced path is no spare for this long */
	bool direct;               /* the path straight to the egress is a candidate */
	struct relay_conf relays[PATHS_RELAY_MAX];
	unsigned n_relays;
};
void paths_conf_defaults(struct multipath_conf *c);
/* One relay's checks (key file read, address resolved, node names valid). 0 or -1. */
int paths_relay_check(struct relay_conf *r, char *err, size_t errlen);
/* Is `mode` one of single, duplicate, split, auto? */
bool paths_mode_valid(const char *mode);

/* A path of a node's route as the client reports it (`routes`, 3.2). */
struct path_seen {
	char name[NODE_NAME_MAX];
	bool relay, data;
	char state[12];                 /* unknown, up, down */
	int64_t rtt_us;                 /* -1 unknown */
	double loss_up, loss_down;      /* -1 unknown */
	uint32_t missed;
	int64_t hop_rtt_us;             /* the relay's own leg; -1 unknown or direct */
};

struct node_paths {
	uint64_t added_us;              /* the node this belongs to (slots are reused) */
	bool known;                     /* a route object with paths came */
	struct path_seen seen[PATHS_PER_ROUTE];
	unsigned n;
	char mode[PATHS_MODE_LEN], mode_in_use[PATHS_MODE_LEN];
	uint64_t bad_since[PATHS_CAND_MAX]; /* 0: not bad */
	char bad_why[PATHS_CAND_MAX][64];
	uint64_t rest_until[PATHS_CAND_MAX];
	unsigned pending;               /* path_add / path_del on their way */
	uint64_t pending_us;
	bool no_spare_said;
	uint64_t replaced;
};

struct paths {
	struct node_paths n[NODE_MAX];
	bool egress_hold;               /* a switch of egress is held back now */
	uint64_t replaced, egress_holds;
};

struct ctrl;
struct select_decision;

void paths_init(struct paths *p);
/* A route object of `routes` for the node in `slot`: its paths (checked, they come
 * from a socket). -1 when malformed. */
int paths_take(struct ctrl *c, int slot, json_t *route);
/* One round: fill every multipath node's route up to its paths, replace a path that
 * stayed bad by a spare. */
void paths_round(struct ctrl *c, uint64_t now_us);
/* Hold a switch to another egress for a better score while a path to the active one
 * works (the game server would see a new address for nothing). Changes *d. */
void paths_filter(struct ctrl *c, struct select_decision *d);
/* Does the node in `slot` run through relays (is it this file's)? */
bool paths_managed(const struct ctrl *c, int slot);
/* GET /paths: every node's paths, spares and why. */
json_t *paths_json(struct ctrl *c, uint64_t now_us);

/* The REST handlers (api/openapi.yaml), in api.c's table: GET /paths, and
 * POST /route/mode {"mode", "node"} (the path mode of a node's route; default the
 * active one). */
enum ls_rc paths_api_get(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep);
enum ls_rc paths_api_mode(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep);
extern const struct ls_httpd_key paths_api_mode_keys[];

#endif
