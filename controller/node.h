/* lightspeed-controller: the node table. Each node is a flat, copyable `node_conf`
 * (what a source said about it: the configuration, the command line, the API, the
 * dataplane's own table; later discovery) and its runtime state (health, the
 * dataplane's view of its route, what the node reports about itself, its score).
 * Slots are stable while a node lives, so selection and failover index by slot.
 * No I/O here. */
#ifndef LS_CTRL_NODE_H
#define LS_CTRL_NODE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "select.h"

/* The client dataplane holds at most 8 routes: the table matches it. */
#define NODE_MAX SELECT_MAX
#define NODE_NAME_MAX 32   /* 1..31 characters of [A-Za-z0-9._-] */
#define NODE_KEY_LEN 16
#define NODE_PROBE_MS_DEFAULT 250
#define NODE_PROBE_MS_MIN 20
#define NODE_PROBE_MS_MAX 60000

/* Where a node came from. */
enum node_source {
	NODE_SRC_CONFIG,    /* [[node]] in the file */
	NODE_SRC_CMDLINE,   /* --node */
	NODE_SRC_API,       /* POST /proxies */
	NODE_SRC_DATAPLANE, /* found in the client's route table, configured by no one here */
	NODE_SRC_DNS,       /* DNS SRV _lightspeed._udp.DOMAIN (discovery_dns.c) */
	NODE_SRC_PEER,      /* told by another node's agent (discovery_peers.c) */
	NODE_SRC__COUNT
};
/* "config", "command_line", "api", "dataplane", "dns", "peer". */
const char *node_source_name(enum node_source s);

struct node_key {
	uint8_t b[NODE_KEY_LEN];
	bool set;                /* the route is authenticated (with session_id) */
};

struct node_conf {
	char name[NODE_NAME_MAX];
	char address[256];       /* as given: "host:port" */
	struct sockaddr_in addr; /* resolved */
	uint32_t session_id;     /* 0: none */
	struct node_key key;
	char key_file[256];      /* where the key came from ("" inline or none) */
	uint32_t probe_ms;
	struct node_facts facts;
	enum node_source source;
	bool direct;             /* the client's direct route: no node, the game server itself */
	/* A node with an agent (agents.c): its QUIC control port, and the fingerprint its
	 * certificate is pinned to (has_fp false: trust on first use). Its session and key
	 * come from the agent, not from here. */
	uint16_t control_port;     /* 0: no agent */
	bool has_fp;
	uint8_t fp[32];
	char via[NODE_NAME_MAX];   /* NODE_SRC_PEER: the node that told us */
};
void node_conf_init(struct node_conf *c);
/* 1..31 characters of [A-Za-z0-9._-]. */
bool node_name_valid(const char *name);
/* Same identity for the dataplane (address, session, key)? */
bool node_conf_same_route(const struct node_conf *a, const struct node_conf *b);

/* A route as the client dataplane reports it (`routes`). */
struct node_dp {
	bool present;            /* in the dataplane's table */
	bool direct;             /* a direct route (proxy is the game server) */
	char proxy[32];
	bool auth;
	int64_t session_id;      /* -1 none */
	uint32_t probe_ms;
	char state[12];          /* "unknown", "up", "down" */
	int64_t rtt_us, rtt_min_us, jitter_us; /* -1 unknown */
	double loss_up, loss_down; /* -1 unknown */
	uint32_t missed;
	uint64_t keepalives_sent, replies;
	int64_t last_rx_ms;      /* -1 none */
	uint32_t flips;
};

struct node {
	bool used;
	struct node_conf conf;
	uint64_t added_us;
	struct health health;
	struct health_report report;   /* refreshed every round */
	struct node_dp dp;
	/* What the node reports about itself (the agent, later): -1 / < 0 unknown. */
	int64_t server_leg_us;
	double load;
	struct select_score score;     /* this round's, from the selector */
	bool removing;                 /* a route_del is on its way */
};

struct node_table {
	struct node n[NODE_MAX];
};

void node_table_init(struct node_table *t);
/* The slot of `name`, or -1. */
int node_find(const struct node_table *t, const char *name);
/* Add a node (health starts over). Returns its slot, or -1 when the name is taken
 * (*full false) or the table is full (*full true). */
int node_add(struct node_table *t, const struct node_conf *c, uint64_t now_us, bool *full);
void node_remove(struct node_table *t, int slot);
unsigned node_count(const struct node_table *t);

/* "NAME=HOST:PORT[,session=ID,key-file=PATH,probe-ms=N,control=PORT,
 * fingerprint=sha256:HEX]" (the --node flag) into c
 * (the address unresolved, the key file not read: see ctrl_conf.c). Returns 0 or -1
 * with a message. */
int node_parse_spec(const char *spec, struct node_conf *c, char *err, size_t errlen);

#endif
