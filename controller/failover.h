/* lightspeed-controller: the failover state machine. It turns selection's decisions
 * into actions on the client dataplane (switch the route, arm a backup) within a
 * cooldown after every switch and a limit on switches per window, keeps the best
 * standby armed so that the dataplane fails over by itself in the same loop turn,
 * and adopts whatever the dataplane did on its own. Pure: it returns actions, its
 * caller sends them and logs. Slots are the node table's indices. */
#ifndef LS_CTRL_FAILOVER_H
#define LS_CTRL_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"
#include "select.h"

struct failover_conf {
	uint32_t cooldown_ms;  /* no switch for a better score this soon after any switch */
	uint32_t max_switches; /* at most this many switches ... */
	uint32_t window_ms;    /* ... within this window (then only a dead route is left) */
};
void failover_conf_defaults(struct failover_conf *c);

/* Why a route changed (the history keeps it). */
enum switch_reason {
	SW_INITIAL,  /* the controller set the first route (no cooldown follows) */
	SW_SELECTION, /* the controller: a challenger beat the margin for the window */
	SW_RECOVERY, /* the controller: the active route was down and no backup took over */
	SW_FAILOVER, /* the dataplane itself: 3 keepalives missed, to the armed backup */
	SW_MANUAL,   /* an operator (POST /failover) */
	SW_EXTERNAL, /* someone else steered the dataplane */
	SW__COUNT
};
/* "initial", "selection", "recovery", "failover", "manual", "external". */
const char *failover_reason_name(enum switch_reason r);

#define FO_RECENT 64

struct failover {
	int active, backup;    /* as the dataplane holds them; -1 none */
	uint64_t last_switch_us; /* 0: none yet */
	uint64_t recent[FO_RECENT]; /* times of recent switches (a ring) */
	unsigned n_recent, recent_head;

	/* Requests sent and not answered yet: nothing more is asked meanwhile. */
	int pending_to;        /* -1 none */
	enum switch_reason pending_reason;
	uint64_t pending_us;
	bool arm_pending;
	int arm_to;
	uint64_t arm_us;

	/* When the active route was first seen down with a usable backup armed: the
	 * dataplane fails over to it by itself, so the controller waits a moment before
	 * doing the same (0: not waiting). */
	uint64_t down_seen_us;
};

enum fo_act { FO_NONE, FO_SET_ROUTE, FO_ARM };
struct failover_action {
	enum fo_act kind;
	int slot;              /* FO_ARM: -1 disarms */
	enum switch_reason reason;
};

/* Why a better route was not taken this round. */
enum fo_hold { FO_HOLD_NONE, FO_HOLD_PENDING, FO_HOLD_COOLDOWN, FO_HOLD_LIMIT, FO_HOLD_DATAPLANE };
/* How long the dataplane gets to fail over to the armed backup by itself. */
#define FO_DATAPLANE_GRACE_US 1000000ull
const char *failover_hold_name(enum fo_hold h);

void failover_init(struct failover *f);
/* The dataplane's state, as found on (re)connect: taken as it is, nothing reset. */
void failover_adopt(struct failover *f, int active, int backup);

/* What the dataplane holds now, from an event or a poll. dp_failover: it switched by
 * itself (its `switch` event said "failover"). Returns true when the active route
 * changed, with the reason to record in *why. */
bool failover_observe(struct failover *f, int active, int backup, bool dp_failover,
		      uint64_t now_us, enum switch_reason *why);

/* One round: up to two actions from selection's decision and the scores. *hold tells
 * what kept a decided switch back (and *until_us when it ends, 0 if unknown). */
unsigned failover_step(struct failover *f, const struct failover_conf *c,
		       const struct select_conf *sc, const struct select_decision *d,
		       const struct select_score *s, size_t n, uint64_t now_us,
		       struct failover_action out[2], enum fo_hold *hold, uint64_t *until_us);

/* A manual failover to `target` (-1: the best standby). Returns LS_RC_OK with the
 * action in *out, or LS_RC_CONFLICT (target down or unmeasured, already active, no
 * usable standby) with a message. */
enum ls_rc failover_manual(struct failover *f, const struct select_decision *d,
			   const struct select_score *s, const char *const *names, size_t n,
			   int target, uint64_t now_us, struct failover_action *out, char *msg,
			   size_t msglen);

/* The answer to a request of ours (the next one may go). A set_route that worked to
 * `slot` is the switch: true with our reason in *why, unless the dataplane's event
 * showed it first (then false: it was recorded already). */
bool failover_done(struct failover *f, enum fo_act kind, int slot, bool ok, uint64_t now_us,
		   enum switch_reason *why);
/* A slot's node left the table. */
void failover_forget(struct failover *f, int slot);

#endif
