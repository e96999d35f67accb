/* lightspeed-client: the configuration — one flat struct, filled from defaults, then
 * the [client] section of a TOML file, then command-line flags, each value checked by
 * the same rule wherever it comes from. */
#ifndef LS_CLIENT_CONF_H
#define LS_CLIENT_CONF_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "dp_fec.h"
#include "profile.h"

#define CL_DEFAULT_SOCKET "/run/lightspeed/client.sock"
#define CL_DEFAULT_LISTEN "127.0.0.1"
#define CL_KEEPALIVE_MIN_MS 20
#define CL_KEEPALIVE_MAX_MS 60000
#define CL_KEEPALIVE_DEFAULT_MS 30
#define CL_SESSION_ID_MAX 0xffffffffu
#define CL_COST_BUDGET_DEFAULT 2.0

struct client_key {
	uint8_t b[LS_KEY_LEN];
	bool set;
	bool in_config; /* written in the config file (key), not read from a key_file */
};

struct client_conf {
	char proxy[256];        /* "host:port"; the host may be a name */
	char game_server[256];  /* "host:port" */
	int64_t local_port;     /* 0: not given */
	char listen[64];        /* IPv4 address */
	char socket[108];       /* steering socket path (fits sun_path) */
	uint64_t session_id;    /* 0: unauthenticated */
	struct client_key key;
	int64_t keepalive_ms;
	struct dp_fec_setting fec; /* off, auto or K:M[:MS], both directions */
	int mode;               /* enum client_mode of a route's paths (1.9) */
	double cost_budget;     /* wire packets per game packet auto may spend, 1..3 */
	int log_level;          /* enum ls_log_level */
	/* Capture mode (client_capture.h): the game talks to its server directly and the
	 * kernel diverts its datagrams to the client. */
	bool capture;
	char game[LS_PROFILE_ID_MAX]; /* a profile's id, "auto", or "" */
	struct ls_port_range ports[LS_PROFILE_MAX_PORTS]; /* UDP server ports to divert */
	size_t nports;          /* 0: the game profile's */
	int64_t capture_mark;   /* the diversion's packet mark (0: the default) */
};

/* The addresses, resolved once at start (in capture mode game_server may be 0.0.0.0:0:
 * "auto", every server the game talks to). */
struct client_addrs {
	struct sockaddr_in proxy, game_server, listen;
};

void client_conf_defaults(struct client_conf *c);
/* Load a file over c. Return 0, or -1 with "file:line:col: message" in err. */
int client_conf_load(const char *path, struct client_conf *c, char *err, size_t errlen);
/* Set one key (the config file's name, e.g. "game_server") from a command-line string.
 * Return 0, or -1 with a message in err. */
int client_conf_set(struct client_conf *c, const char *key, const char *value, char *err,
		    size_t errlen);
/* Whole-configuration checks (required keys, session_id with key), then resolve the
 * names. Return 0; -2 when a required setting is missing (a usage error); or -1, each
 * with a message in err. */
int client_conf_finish(const struct client_conf *c, struct client_addrs *a, char *err,
		       size_t errlen);
/* The effective configuration as a [client] section (the key is not shown). */
void client_conf_print(const struct client_conf *c, const struct client_addrs *a, FILE *f);

/* Checks that set_route applies too: an address the client can send to. */
const char *client_addr_unusable(const struct sockaddr_in *a);

#endif
