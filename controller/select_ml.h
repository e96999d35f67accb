/* lightspeed-controller: the `ml` selector. A node's score is the p95 of the RTTs it
 * will answer over the next 30 s as the model predicts it from the node's probe series
 * (ml_probe.c), plus the same loss penalty and leg to the game server that `nearest`
 * adds. Each prediction keeps its interval (the spread of the trees) and the three
 * features that moved it most, for /routes.
 *
 * Without a usable model (none yet, a file refused, a model that does not beat the
 * no-model baseline on its held-out rows, or one whose route choices were worse than
 * nearest's on any set of its route-choice check, ml_eval.c) the selector scores as
 * `nearest` does and says why; so does it for a node with no prediction (no probe answered for 10 s).
 * Anti-flap is select_decide's, as for every selector. No I/O, no allocation. */
#ifndef LS_CTRL_SELECT_ML_H
#define LS_CTRL_SELECT_ML_H

#include <stdbool.h>

#include "ml_model.h"
#include "ml_probe.h"
#include "select.h"

struct select_ml_pred {
	bool valid;
	double p95_ms;         /* the path's predicted p95 over the next 30 s */
	double low_ms, high_ms; /* the 10th and 90th percentile of the trees' predictions */
	unsigned n_top;
	unsigned top[3];       /* features (ml_features.h) that weighed most, largest first */
	double top_ms[3];      /* their contributions */
};

struct select_ml {
	struct select_nearest_conf *nearest;
	const struct ml_probe *probe;
	struct ml_model model;
	bool have_model;       /* a model is loaded (usable or not) */
	bool usable;           /* ... and it is the one scoring */
	char status[256];      /* what scores and why */
	struct select_ml_pred pred[SELECT_MAX];
	double scratch[ML_PROBE_KEEP + 16];
};

void select_ml_init(struct select_ml *m, struct select_nearest_conf *nearest,
		    const struct ml_probe *probe);
/* Use `model` (taken; NULL: none, `reason` says why, e.g. a refused file). A model that
 * does not beat its baseline, or chose worse than nearest anywhere in its route-choice
 * check (or was never checked), is kept for the record but not used. */
void select_ml_set_model(struct select_ml *m, struct ml_model *model, const char *reason);
void select_ml_free(struct select_ml *m);
struct selector select_ml(struct select_ml *m);

#endif
