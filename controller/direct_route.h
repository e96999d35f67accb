/* lightspeed-controller: the direct route as a candidate ([direct] route = true). The
 * node named "direct" is the client's direct route (docs/protocol.md 3.2: the game
 * server itself, no tunnel); its health is the ICMP echo's (icmp.c). It is chosen only
 * when no relayed route beats it by [direct] gain_ms or it loses more than max_loss
 * (relay only when it pays), and a switch between direct and relayed, which changes
 * the address the game server sees, waits for quiet_ms without game traffic (between
 * matches) unless the active route is down or the user forces it (POST /failover). */
#ifndef LS_CTRL_DIRECT_ROUTE_H
#define LS_CTRL_DIRECT_ROUTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define DROUTE_OUTCOMES 64

/* Zeroed with struct ctrl: nothing to initialise. */
struct droute {
	/* ICMP outcomes, newest last (1 answered, 0 lost): the direct path's loss. */
	uint8_t outcome[DROUTE_OUTCOMES];
	unsigned n_out, next_out;
	int64_t game_rx;            /* the client's game_rx_packets when last seen */
	uint64_t last_game_us;      /* the `stats` answer that showed it growing (0: never) */
	uint64_t quiet_until_us;    /* the latest `stats` answer that showed it still */
	bool want_direct;           /* this round's rule */
	bool holding;               /* a switch waits for quiet */
	char why[200];              /* what /routes and the dashboard show */
	uint64_t holds;
};

struct ctrl;
struct select_decision;

/* The node of the direct route, or -1. */
int droute_slot(const struct ctrl *c);
/* icmp.c: an echo answered (its RTT), or sent with `unanswered` outstanding (counting
 * the one just sent). */
void droute_icmp_reply(struct ctrl *c, uint32_t rtt_us);
void droute_icmp_sent(struct ctrl *c, unsigned unanswered);
/* After selection: the direct-or-relayed rule and the quiet time. Changes *d. */
void droute_filter(struct ctrl *c, struct select_decision *d);
/* For GET /routes' direct object: {route, in_use, why}. Adds to o. */
void droute_json(const struct ctrl *c, json_t *o);

#endif
