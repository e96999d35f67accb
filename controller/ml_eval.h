/* lightspeed-controller: route choice replayed, to judge the model against `nearest`.
 *
 * Probe histories of a few nodes (synthetic groups, or the recorded history) go
 * through the controller's own code as its round runs it: every 250 ms each node's
 * newest probes go to its health (health.c), `nearest` (select_nearest.c) and `ml`
 * (select_ml.c, the model under test) score the nodes, the anti-flap rule
 * (select_decide: beat the current route by x1.1 + 5 ms for 5 s) decides and the
 * failover state machine (failover.c: cooldown, switch limit) acts, the dataplane
 * doing at once what it is told. Regret, every second once the history window has
 * passed: the chosen node's true p95 over the next 30 s minus the best node's.
 * Optionally an oracle (the true future under the same rules) for scale.
 *
 * The controller runs this after every training (ml_ctl.c): a model whose choices
 * are worse than nearest's on a set is not used (select_ml.c). The benchmark
 * (tests/bench/ml_bench.c) runs it on larger sets. No I/O, no logging; one
 * allocation per evaluator. */
#ifndef LS_CTRL_ML_EVAL_H
#define LS_CTRL_ML_EVAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "failover.h"
#include "health.h"
#include "ml_features.h"
#include "ml_model.h"
#include "ml_probe.h"
#include "ml_record.h"
#include "ml_synth.h"
#include "select.h"
#include "select_ml.h"

enum ml_eval_policy_id { ML_EVAL_NEAREST, ML_EVAL_ML, ML_EVAL_ORACLE, ML_EVAL_NPOL };
/* "nearest", "ml", "oracle". */
const char *ml_eval_policy_name(unsigned p);

/* One node of a choice: its probes (t in seconds from the choice's start) and facts. */
struct ml_eval_node {
	struct ml_series s;
	struct node_facts facts;
};

/* What the strategies did, summed over choices. With a degrading node (scenario):
 * whether each strategy left it before the degradation showed (nearest's score of it
 * worse than the best other's by the margin), after, never, or was not on it when
 * its surge began; and how much earlier ml left it than nearest (lead). */
struct ml_eval_sum {
	size_t choices, decisions;
	double regret[ML_EVAL_NPOL]; /* sums over decisions, ms */
	unsigned switches[ML_EVAL_NPOL];
	unsigned before[ML_EVAL_NPOL], after[ML_EVAL_NPOL], never[ML_EVAL_NPOL],
		off[ML_EVAL_NPOL];
	double *lead;                /* NULL: not kept; else room for lead_cap */
	unsigned n_lead, lead_cap;
	/* ml's regret minus nearest's, averaged over blocks of 5 minutes of decisions. */
	unsigned n_blocks;
	double block_sum, block_sq;
};
/* Mean regret of policy p in ms (NAN without decisions). */
double ml_eval_mean(const struct ml_eval_sum *s, unsigned p);
/* The standard error of ml's mean regret minus nearest's, from the spread of the
 * 5-minute blocks (NAN with fewer than two). */
double ml_eval_diff_se(const struct ml_eval_sum *s);

struct ml_eval;

/* An evaluator of `model` (copied: the caller keeps its own), scoring through the
 * controller's default health, nearest, anti-flap and failover settings. oracle:
 * also run the oracle (it costs a target per node per round). NULL with a message. */
struct ml_eval *ml_eval_new(const struct ml_model *model, bool oracle, char *err, size_t errlen);
void ml_eval_free(struct ml_eval *e);

/* One choice over k nodes (2..SELECT_MAX) from t = 0 to end_s. degrading >= 0: that
 * node surges at surge_s (the scenario's bookkeeping); -1: none. */
void ml_eval_run(struct ml_eval *e, const struct ml_eval_node *nd, unsigned k, double end_s,
		 int degrading, double surge_s, struct ml_eval_sum *sum);

/* `groups` synthetic choices of k nodes over dur_s each (ml_synth_group_steady or
 * _scenario, from c's seed), group ids first_id on. cancel: stop early when it
 * becomes non-zero (may be NULL). 0, or -1 when out of memory. */
int ml_eval_synthetic(struct ml_eval *e, const struct ml_synth_conf *c, bool scenario,
		      uint32_t first_id, unsigned groups, unsigned k, double dur_s,
		      const atomic_int *cancel, struct ml_eval_sum *sum);

/* The recorded history as choices: every stretch of time in which at least two nodes
 * were recorded without a silence over 10 s and long enough to be judged (history
 * window + horizon + 30 s) is one choice over the nodes recorded in it; only the last
 * max_s seconds of such stretches are replayed (the newest first). degrading names
 * the node made to degrade from surge_s of the first choice on (the benchmark's
 * recorded trace), or NULL. 0, or -1 when out of memory. */
int ml_eval_recorded(struct ml_eval *e, const struct ml_record_set *set, double max_s,
		     const char *degrading, double surge_s, struct ml_eval_sum *sum);

/* The controller's check of a model, into m->meta.check: ML_EVAL_CHECK_GROUPS steady
 * and as many scenario choices of synthetic nodes (seeded: the same every time), and
 * the recorded history when `recorded` holds one (the last ML_EVAL_CHECK_RECORDED_S of
 * it). 0, or -1 with a message (out of memory, cancelled). */
#define ML_EVAL_CHECK_GROUPS 16
#define ML_EVAL_CHECK_GROUP_S 1200.0
#define ML_EVAL_CHECK_RECORDED_S 3600.0
int ml_eval_check(struct ml_model *m, const struct ml_record_set *recorded,
		  const atomic_int *cancel, char *err, size_t errlen);

#endif
