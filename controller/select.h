/* lightspeed-controller: route selection. A selector scores candidates from plain
 * structs (each node's health report and sample history, its configured facts, its
 * reported leg to the game server and load) and explains each score; `nearest`
 * (select_nearest.c) is one, the learned model another. Anti-flap is not a selector's
 * business: select_decide applies the margin and the hold window to whatever scores
 * a selector returns, so every strategy switches by the same rule. Pure functions: no
 * I/O, no logging, no allocation. */
#ifndef LS_CTRL_SELECT_H
#define LS_CTRL_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health.h"

/* What the configuration says about a node where nothing measures it (-1 unknown). */
struct node_facts {
	char region[32];
	int64_t distance_km;
	int64_t hops;
	int64_t as_path_len;
};

/* One candidate, as a selector sees it. */
struct select_cand {
	const char *name;            /* NULL: an empty slot, never chosen */
	const struct health_report *health;
	const struct health *history; /* samples (health_samples) for selectors that learn */
	const struct node_facts *facts;
	int64_t server_leg_us;       /* the node's own RTT to the game server; -1 unknown */
	double load;                 /* 0..1; < 0 unknown */
	bool active;                 /* the route game packets take now */
};

#define SELECT_WHY_LEN 160

/* A selector's verdict on one candidate: lower scores are better. */
struct select_score {
	bool usable;                 /* false: never chosen (down, unmeasured, ...) */
	bool known;                  /* measured enough to judge; a current route not yet
	                                known is kept, never left as if it were down */
	bool present;                /* the slot holds a candidate (set by the caller, not
	                                the selector: the first choice waits for them) */
	double score_us;
	char why[SELECT_WHY_LEN];    /* what /routes shows: how the score was made */
};

/* A selector: a table of functions over an opaque state of its own. */
struct selector {
	const char *name;            /* "nearest", "ml" */
	void *self;
	/* Score the n candidates into out[0..n) (an empty slot: usable false). */
	void (*score)(void *self, const struct select_cand *c, size_t n, uint64_t now_us,
		      struct select_score *out);
};

/* ---- nearest (select_nearest.c) --------------------------------------------- */

struct select_nearest_conf {
	double loss_penalty_ms;      /* added per 1% of round-trip loss */
	bool use_server_leg;         /* add the node's leg to the game server when known */
};
void select_nearest_defaults(struct select_nearest_conf *c);
/* The selector over c (which must outlive it; a reload writes into it in place). */
struct selector select_nearest(struct select_nearest_conf *c);

/* ---- anti-flap (select.c) ----------------------------------------------------- */

struct select_conf {
	double margin_ratio;         /* a challenger must beat score * ratio ... */
	double margin_ms;            /* ... + this, */
	uint32_t hold_ms;            /* sustained this long */
	uint32_t initial_wait_ms;    /* the first choice waits this long for every
	                                candidate to be measured (standbys probe slowly) */
};
void select_conf_defaults(struct select_conf *c);

/* The candidate slots are stable (the node table's indices), so a challenger's
 * streak survives from one call to the next. */
#define SELECT_MAX 8

struct select_state {
	uint64_t beat_since[SELECT_MAX]; /* 0: not beating the current route now */
	uint64_t first_usable_us;        /* with no route: when a candidate became usable */
};

enum select_reason {
	SELECT_KEEP,      /* stay */
	SELECT_INITIAL,   /* no route yet: the best usable one, once every candidate is
	                     measured or the initial wait is over */
	SELECT_DOWN,      /* the current route is unusable: the best usable one, now */
	SELECT_BETTER,    /* a challenger beat the margin for the whole hold window */
};
/* "keep", "initial", "down", "better". */
const char *select_reason_name(enum select_reason r);

struct select_decision {
	enum select_reason reason;
	int choose;          /* the slot to switch to, or -1 (KEEP) */
	int best;            /* the best usable slot, or -1 */
	int standby;         /* the best usable slot other than the current one, or -1 */
	int challenger;      /* the best slot beating the margin now, or -1 */
	/* How far the current route stays ahead of the best standby under the rule:
	 * standby * ratio + margin - current (< 0: the standby beats it now); 0 when
	 * either is missing. */
	double lead_us;
	uint64_t beating_us; /* how long the challenger has been beating it */
};

/* Decide from this round's scores (slots 0..n, n <= SELECT_MAX) with `current` the
 * active slot (-1: none). Forget a slot's streak when its node changes. */
void select_decide(struct select_state *st, const struct select_conf *c,
		   const struct select_score *s, size_t n, int current, uint64_t now_us,
		   struct select_decision *out);
void select_forget(struct select_state *st, int slot);
/* Does a challenger of score `cand` beat a route of score `cur` by the margin? */
bool select_beats(const struct select_conf *c, double cand_us, double cur_us);

#endif
