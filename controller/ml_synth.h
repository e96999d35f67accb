/* Seeded synthetic probe histories for training and judging the ML selector.
 *
 * The original design's region profiles (us-east base 25 ms sigma 8, eu-west 30 sigma
 * 10, asia-se 45 sigma 15), its hop, AS-path, distance, peak-hour (18-23 full, 12-17
 * half), weekend (x1.1), load and loss effects, plus time structure: a node's load
 * follows its target (its base, its peak hours, and surges of other tenants) with a
 * lag of minutes, and its queueing delay follows the load with a lag of its own, so
 * the next 30 s are partly predictable from the present (a loaded node whose latency
 * has not risen yet will be slow soon). The model is written out in ml_synth.c and
 * docs/ml.md.
 *
 * Histories are series (ml_features.h) of probes every tick_s, exactly what the
 * controller records, so the same feature code makes rows of them. Every history has
 * its own generator, seeded from the set's seed and the history's id: a set is the same
 * on every run. */
#ifndef LS_ML_SYNTH_H
#define LS_ML_SYNTH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ml_data.h"
#include "ml_features.h"
#include "ml_rng.h"

enum ml_region { ML_REGION_US_EAST = 0, ML_REGION_EU_WEST, ML_REGION_ASIA_SE, ML_REGION__COUNT };

struct ml_region_profile {
	const char *name;
	double base_ms, sigma_ms; /* the region's typical latency and its spread */
	double km_lo, km_hi;      /* the distances of its nodes from the player */
};
const struct ml_region_profile *ml_synth_region(unsigned region);

/* A node's fixed character. */
struct ml_synth_node {
	unsigned region;
	double distance_km, hops, as_path_len; /* true values */
	int distance_known, hops_known, as_known, load_known; /* what the controller is told */
	double floor_ms;      /* propagation and routing: the RTT of an idle node */
	double noise_ms;      /* scale of the per-probe noise (grows with load) */
	double congestion_ms; /* queueing delay at full load */
	double load_base;     /* load outside the peak hours */
	double load_peak;     /* extra load in the full peak hours (half of it 12-17) */
};

struct ml_synth_conf {
	uint64_t seed;
	double tick_s;          /* probe interval (0.25: a standby route's) */
	double load_tau_s;      /* load follows its target with this time constant (120) */
	double lag_s;           /* queueing delay follows the load with this one (120) */
	double report_s;        /* the agent reports load this often (5) */
	double surges_per_hour; /* other tenants' load surges per node-hour (1) */
	double unknown_share;   /* share of nodes without each configured fact (0.1) */
	double no_agent_share;  /* share of nodes that report no load (0.2) */
	double history_h;       /* one steady history's length in hours (1) */
	double row_every_s;     /* a row every this many seconds of a history (60) */
	struct ml_window win;
};
void ml_synth_conf_default(struct ml_synth_conf *c);

/* A load surge: the target load rises by `height` from start_s for dur_s. */
struct ml_synth_surge {
	double start_s, dur_s, height;
};

/* One simulated node history; `series` points into the arrays. */
struct ml_synth_trace {
	struct ml_synth_node node;
	size_t n;
	double *t;
	float *rtt_ms;
	float *load;      /* as reported (NAN without an agent) */
	float *true_load; /* the simulation's own */
	struct ml_series series;
};

/* Draw a node of a region. */
void ml_synth_node_draw(const struct ml_synth_conf *c, struct ml_rng *r, unsigned region,
			struct ml_synth_node *n);
/* Simulate dur_s of a node from local week time week_s0. With `forced`, that surge
 * and no random ones. 0, or -1 when out of memory. */
int ml_synth_trace_run(const struct ml_synth_conf *c, struct ml_rng *r,
		       const struct ml_synth_node *node, double week_s0, double dur_s,
		       const struct ml_synth_surge *forced, struct ml_synth_trace *out);
void ml_synth_trace_free(struct ml_synth_trace *t);

/* Rows of one trace: features every row_every_s once a full history window has
 * passed, while the horizon is still inside the trace. 0 or -1 (out of memory). */
int ml_synth_rows(const struct ml_synth_conf *c, const struct ml_synth_trace *t, uint32_t group,
		  struct ml_data *out);

/* The steady set: at least n_rows rows from histories of random nodes of random
 * regions at random times of the week. 0, or -1 with a message (also when *cancel
 * turns non-zero: a 100,000-row set takes seconds, and a stopping controller waits). */
int ml_synth_dataset(const struct ml_synth_conf *c, size_t n_rows, const atomic_int *cancel,
		     struct ml_data *out, char *err, size_t errlen);

/* A route choice: k nodes of one region measured over the same dur_s. */
#define ML_SYNTH_MAX_GROUP 8
struct ml_synth_group {
	unsigned k;
	struct ml_synth_trace tr[ML_SYNTH_MAX_GROUP];
	int degrading;      /* the node made to degrade (scenario), or -1 */
	double surge_start_s;
};
/* Steady: k random nodes of one region at a random time, surges at random.
 * Scenario: node 0 is clearly the fastest, in the quiet morning hours, until its load
 * surges into saturation some minutes in and its latency follows; the others stay
 * quiet. Group `id` seeds it. 0, or -1 when out of memory. */
int ml_synth_group_steady(const struct ml_synth_conf *c, uint32_t id, unsigned k, double dur_s,
			  struct ml_synth_group *g);
int ml_synth_group_scenario(const struct ml_synth_conf *c, uint32_t id, unsigned k,
			    double dur_s, struct ml_synth_group *g);
void ml_synth_group_free(struct ml_synth_group *g);

#endif
