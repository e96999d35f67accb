/* lightspeed-agent configuration: a flat struct (copyable, so a reload parses into a
 * new one), its defaults, the TOML schema of /etc/lightspeed/agent.toml, the checks the
 * schema cannot express, and the effective configuration that --check prints. */
#ifndef LS_AGENT_CONF_H
#define LS_AGENT_CONF_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "ctlmsg.h"

#define AGENT_PROG "lightspeed-agent"
#define AGENT_DEFAULT_CONF "/etc/lightspeed/agent.toml"
#define AGENT_MAX_DESTS 32

/* A node this agent tells controllers about (peer exchange). */
struct agent_peer {
	char name[LS_CTL_NAME_MAX + 1];
	char region[LS_CTL_NAME_MAX + 1];
	struct sockaddr_in addr;      /* the node's tunnel address (data port) */
	int64_t control_port;
	bool has_fp;
	uint8_t fp[LS_CTL_FP_LEN];
};

struct agent_dests {
	struct ls_dest v[AGENT_MAX_DESTS];
	uint32_t n;
};

struct agent_conf {
	struct {
		struct sockaddr_in listen;     /* QUIC */
		struct sockaddr_in http;       /* /health, /metrics */
		char http_token[128];          /* Bearer token for the HTTP routes */
		char proxy_socket[108];
		char state_dir[1024];
		char node_id[LS_CTL_NAME_MAX + 1];
		char region[LS_CTL_NAME_MAX + 1];
		int64_t data_port;             /* 0: the proxy's bind port */
		int64_t capacity;              /* sessions; 0: the proxy's max_sessions */
		int64_t max_sessions_per_addr; /* sessions issued to one controller address */
		int64_t idle_timeout;          /* s: a silent QUIC connection is gone */
		int64_t resume_grace;          /* s: a session without its connection is kept */
		int64_t icmp_interval_ms;      /* the node's leg to each game server */
		struct agent_dests destinations; /* what sessions may be allowed */
		struct ls_allowlist allow;     /* denied ranges let through (as the proxy's) */
		int log_level;
	} agent;
	struct {
		uint64_t pps, bps;             /* per session, pushed with session_add */
	} limits;
	struct {
		int64_t max_conns, max_conns_per_addr, max_half_open, max_half_open_per_addr;
		int64_t retry_after, handshake_timeout_ms, stream_timeout_ms;
	} quic;
	struct agent_peer peers[LS_CTL_MAX_PEERS];
	uint32_t npeers;
};

void agent_conf_defaults(struct agent_conf *c);
/* Parse path over c (holding defaults). 0 or -1 with "file:line:col: message". */
int agent_conf_load(struct agent_conf *c, const char *path, char *err, size_t errlen);
/* What the schema cannot say. 0 or -1 with a message naming `name` (the file). */
int agent_conf_validate(const struct agent_conf *c, const char *name, char *err, size_t errlen);
void agent_conf_print(const struct agent_conf *c);

#endif
