/* lightspeed-controller: the configuration. One flat struct built from defaults, then
 * /etc/lightspeed/controller.toml (or -c FILE), then the command-line flags; --check
 * prints the effective result; SIGHUP builds a new one the same way and the running
 * one is kept when that fails. */
#ifndef LS_CTRL_CONF_H
#define LS_CTRL_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "discovery.h"
#include "failover.h"
#include "game_detect.h"
#include "health.h"
#include "ml_ctl.h"
#include "node.h"
#include "paths.h"
#include "select.h"
#include "warp.h"

#define CTRL_DEFAULT_CONFIG "/etc/lightspeed/controller.toml"
#define CTRL_DEFAULT_SOCKET "/run/lightspeed/client.sock"
#define CTRL_DEFAULT_API "127.0.0.1:9000"
#define CTRL_DEFAULT_STATE_DIR "/var/lib/lightspeed"
#define CTRL_TOKEN_MAX 256
#define CTRL_DEFAULT_DASHBOARD "127.0.0.1:8080"
#define CTRL_DIRECT_NODE "direct" /* the direct route's node ([direct] route) */

struct ctrl_conf {
	char client_socket[108];    /* the client dataplane's steering socket */
	char api[64];               /* "ADDR:PORT" of the REST API */
	char api_token[CTRL_TOKEN_MAX]; /* Bearer token ("" none) */
	char api_token_file[256];   /* where it was read from ("" inline or none) */
	char dashboard[64];         /* "ADDR:PORT" of the dashboard, or "off" */
	char web_root[256];         /* the dashboard's files ("": found at start) */
	char state_dir[256];        /* switch history (and, later, models, pins) */
	int log_level;              /* enum ls_log_level */
	char strategy[16];          /* "nearest" or "ml" */

	struct health_conf health;
	struct select_conf select;
	struct select_nearest_conf nearest;
	struct failover_conf failover;

	bool icmp;                  /* measure the direct path to the game server */
	uint32_t icmp_interval_ms;
	char direct_target[64];     /* "ip" to ping; "" = the client's game server */
	/* The direct route as a candidate (direct_route.c): a node named "direct". */
	bool direct_route;
	uint32_t direct_quiet_ms;   /* no game traffic this long before direct <-> relayed */
	double direct_gain_ms;      /* relay only when it saves this much ... */
	double direct_max_loss;     /* ... or the direct path loses more than this */

	struct discovery_conf discovery; /* [discovery] (discovery.h) */
	struct game_conf games;     /* [games] */
	struct warp_conf warp;      /* [warp] */
	struct ml_conf ml;          /* [ml] */

	struct node_conf nodes[NODE_MAX];
	unsigned n_nodes;
	struct multipath_conf mp;   /* [multipath] and [[relay]] (paths.h) */
};

/* The command line's share (pointers into argv). */
struct ctrl_flags {
	const char *config;         /* -c; NULL: the default file if it exists */
	const char *client_socket, *api, *state_dir, *log_level, *dashboard, *web_root;
	const char *nodes[NODE_MAX + 1];
	unsigned n_nodes;
	bool check;
};

void ctrl_conf_defaults(struct ctrl_conf *c);
/* Defaults, the file, the flags, then whole-configuration checks: node addresses
 * resolved, key files read, a token required off loopback. Returns 0, or -1 with
 * "file:line:col: message" (or a plain message) in err; `out` is written only on
 * success, so a failed reload leaves the running configuration alone. */
int ctrl_conf_build(const struct ctrl_flags *fl, struct ctrl_conf *out, char *err, size_t errlen);
/* The effective configuration as TOML (secrets not shown). */
void ctrl_conf_print(const struct ctrl_conf *c, FILE *f);
/* Is "ADDR:PORT" a loopback address? */
bool ctrl_conf_api_loopback(const char *api);
/* A node given at run time (POST /proxies): the same checks as the file's. 0 or -1. */
int ctrl_conf_node_check(struct node_conf *n, char *err, size_t errlen);

#endif
