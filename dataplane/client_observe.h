/* lightspeed-client --observe: watch a game's UDP with libpcap, divert nothing, and
 * report the servers it talks to, packet rates and sizes each way (to fill a profile or
 * choose a node). libpcap is loaded only in this mode, so the dataplane's other modes
 * map none of it. Needs CAP_NET_RAW only. */
#ifndef LS_CLIENT_OBSERVE_H
#define LS_CLIENT_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

#define CL_OBSERVE_MAX_SERVERS 256

/* One direction of one server's traffic. */
struct client_observe_dir {
	uint64_t packets, bytes;
	uint32_t min, max; /* payload bytes */
};

struct client_observe_server {
	uint32_t ip;         /* network order */
	uint16_t port;       /* host order */
	uint16_t local_port; /* the game-side socket (host order) */
	int8_t game;         /* 1: the game's own socket, 0: another process's, -1: unknown */
	uint64_t first_us, last_us;
	struct client_observe_dir up, down;
};

struct client_observe {
	struct ls_port_range ports[LS_PROFILE_MAX_PORTS];
	size_t nports;
	uint32_t local[32]; /* this machine's IPv4 addresses (network order) */
	size_t nlocal;
	uint16_t game_ports[64]; /* local UDP ports of the game's process */
	size_t ngame_ports;
	bool game_known;
	struct client_observe_server s[CL_OBSERVE_MAX_SERVERS];
	size_t n;
	uint64_t dropped_servers; /* datagrams of servers beyond the table */
	uint64_t started_us;
};

/* Account one UDP datagram (addresses network order, ports host order) seen now. */
void client_observe_account(struct client_observe *o, uint32_t src, uint16_t sport, uint32_t dst,
			    uint16_t dport, size_t payload, uint64_t now_us);

/* `lightspeed-client --observe ...`: parses its own arguments; returns the exit code. */
int client_observe_main(int argc, char **argv);

#endif
