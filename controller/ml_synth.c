/* Synthetic probe histories (see ml_synth.h). The model, per probe tick of dt:
 *
 *   peak(h)   = 1 for hours 18-23, 0.5 for 12-17, 0 otherwise (local time)
 *   target    = load_base + load_peak * peak(h) + surges(t)
 *   load      += (target - load) * dt / load_tau_s, plus slow noise; clamped to 0..1
 *   queue     += (congestion_ms * max(0, load - 0.3)^2 / 0.49 - queue) * dt / lag_s
 *   loss      = 0.001 + 0.06 * max(0, load - 0.7)^2 / 0.09
 *   RTT       = (floor_ms + queue) * (1.1 on Saturday and Sunday) + 80 * loss
 *               + noise_ms * (0.5 + load) * Exp(1), or lost with probability loss
 *
 * A node's floor is its region's base, moved by how far it is (10 us per km: light in
 * fibre, both ways), its hops (0.3 ms each) and AS-path length (1 ms each) against
 * the region's typical ones, and a node offset of 0.7 sigma, less the probe noise's
 * mean (0.2 sigma): so a quiet region's RTTs average its base and, with the probe
 * noise (0.15-0.45 sigma), spread by about its sigma. The agent reports the load every
 * report_s with a little error. */
#include "ml_synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct ml_region_profile synth_regions[ML_REGION__COUNT] = {
	[ML_REGION_US_EAST] = { "us-east", 25, 8, 50, 1500 },
	[ML_REGION_EU_WEST] = { "eu-west", 30, 10, 100, 2000 },
	[ML_REGION_ASIA_SE] = { "asia-se", 45, 15, 300, 3000 },
};

/* Seed domains: the sets drawn from one seed must not share histories. */
#define SYNTH_DOMAIN_SET 0x5e7ull
#define SYNTH_DOMAIN_STEADY 0x57ead1ull
#define SYNTH_DOMAIN_SCENARIO 0x5ce7a210ull

const struct ml_region_profile *ml_synth_region(unsigned region)
{
	return region < ML_REGION__COUNT ? &synth_regions[region] : NULL;
}

void ml_synth_conf_default(struct ml_synth_conf *c)
{
	c->seed = 42;
	c->tick_s = 0.25;
	c->load_tau_s = 120;
	c->lag_s = 120;
	c->report_s = 5;
	c->surges_per_hour = 1.0;
	c->unknown_share = 0.1;
	c->no_agent_share = 0.2;
	c->history_h = 1;
	c->row_every_s = 60;
	ml_features_window_default(&c->win);
}

static void synth_seed(struct ml_rng *r, uint64_t seed, uint64_t domain, uint64_t id)
{
	ml_rng_seed(r, seed ^ (domain * 0xd1b54a32d192ed03ull) ^ (id * 0x9e3779b97f4a7c15ull));
}

static double synth_hops_of(double km, double extra)
{
	return floor(5 + km / 250 + extra);
}

void ml_synth_node_draw(const struct ml_synth_conf *c, struct ml_rng *r, unsigned region,
			struct ml_synth_node *n)
{
	const struct ml_region_profile *p = &synth_regions[region % ML_REGION__COUNT];
	double km_mid = (p->km_lo + p->km_hi) / 2;

	memset(n, 0, sizeof(*n));
	n->region = region % ML_REGION__COUNT;
	n->distance_km = ml_rng_uniform(r, p->km_lo, p->km_hi);
	n->hops = synth_hops_of(n->distance_km, ml_rng_uniform(r, 0, 5));
	n->as_path_len = 2 + floor(n->distance_km / 1500) + ml_rng_below(r, 3);
	n->floor_ms = p->base_ms + 0.01 * (n->distance_km - km_mid) +
		      0.3 * (n->hops - synth_hops_of(km_mid, 2.5)) +
		      1.0 * (n->as_path_len - (3 + floor(km_mid / 1500))) +
		      0.7 * p->sigma_ms * ml_rng_normal(r) - 0.2 * p->sigma_ms;
	if (n->floor_ms < 2)
		n->floor_ms = 2;
	n->noise_ms = p->sigma_ms * ml_rng_uniform(r, 0.15, 0.45);
	n->congestion_ms = p->sigma_ms * ml_rng_uniform(r, 1.5, 3.0);
	n->load_base = ml_rng_uniform(r, 0.05, 0.35);
	n->load_peak = ml_rng_uniform(r, 0.15, 0.5);
	n->distance_known = ml_rng_unit(r) >= c->unknown_share;
	n->hops_known = ml_rng_unit(r) >= c->unknown_share;
	n->as_known = ml_rng_unit(r) >= c->unknown_share;
	n->load_known = ml_rng_unit(r) >= c->no_agent_share;
}

static double synth_peak(double week_s)
{
	double h = fmod(week_s, 86400.0) / 3600.0;

	return h >= 18 ? 1.0 : h >= 12 ? 0.5 : 0.0;
}

static int synth_weekend(double week_s)
{
	return fmod(week_s, 7 * 86400.0) >= 5 * 86400.0;
}

static double synth_queue_target(const struct ml_synth_node *n, double load)
{
	double over = load > 0.3 ? load - 0.3 : 0;

	return n->congestion_ms * over * over / 0.49;
}

static double synth_loss(double load)
{
	double over = load > 0.7 ? load - 0.7 : 0;

	return 0.001 + 0.06 * over * over / 0.09;
}

static double synth_clamp01(double v)
{
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

int ml_synth_trace_run(const struct ml_synth_conf *c, struct ml_rng *r,
		       const struct ml_synth_node *node, double week_s0, double dur_s,
		       const struct ml_synth_surge *forced, struct ml_synth_trace *out)
{
	size_t n = (size_t)(dur_s / c->tick_s);
	struct ml_synth_surge surge = { 0, 0, 0 };
	double dt = c->tick_s;
	struct ml_synth_node nd = *node; /* node may live in *out */

	node = &nd;
	memset(out, 0, sizeof(*out));
	out->node = nd;
	out->t = malloc(n * sizeof(*out->t));
	out->rtt_ms = malloc(n * sizeof(*out->rtt_ms));
	out->load = malloc(n * sizeof(*out->load));
	out->true_load = malloc(n * sizeof(*out->true_load));
	if (!out->t || !out->rtt_ms || !out->load || !out->true_load) {
		ml_synth_trace_free(out);
		return -1;
	}
	out->n = n;

	/* Start in equilibrium: the load at its target, the queue at the load's. */
	double load = synth_clamp01(node->load_base + node->load_peak * synth_peak(week_s0));
	double noise = 0, queue = synth_queue_target(node, load), reported = load;
	double next_report = 0;
	/* The slow load noise: an Ornstein-Uhlenbeck process, stationary sd 0.03, 60 s. */
	const double ou_a = exp(-dt / 60.0), ou_s = 0.03 * sqrt(1 - ou_a * ou_a);
	const double p_surge = c->surges_per_hour * dt / 3600.0;

	if (forced)
		surge = *forced;
	for (size_t i = 0; i < n; i++) {
		double t = (double)i * dt, w = week_s0 + t;

		if (!forced && surge.dur_s <= 0 && ml_rng_unit(r) < p_surge) {
			surge.start_s = t;
			surge.dur_s = ml_rng_uniform(r, 300, 1800);
			surge.height = ml_rng_uniform(r, 0.2, 1.0);
		}
		double extra = t >= surge.start_s && t < surge.start_s + surge.dur_s ? surge.height : 0;
		if (!forced && surge.dur_s > 0 && t >= surge.start_s + surge.dur_s)
			surge.dur_s = 0;
		double target = node->load_base + node->load_peak * synth_peak(w) + extra;

		noise = ou_a * noise + ou_s * ml_rng_normal(r);
		load += (target - load) * dt / c->load_tau_s;
		double l = synth_clamp01(load + noise);
		queue += (synth_queue_target(node, l) - queue) * dt / c->lag_s;
		double loss = synth_loss(l);

		if (t >= next_report) {
			reported = synth_clamp01(l + 0.02 * ml_rng_normal(r));
			next_report = t + c->report_s;
		}
		out->t[i] = t;
		out->true_load[i] = (float)l;
		out->load[i] = node->load_known ? (float)reported : NAN;
		if (ml_rng_unit(r) < loss) {
			out->rtt_ms[i] = NAN;
			continue;
		}
		double rtt = (node->floor_ms + queue) * (synth_weekend(w) ? 1.1 : 1.0) + 80 * loss +
			     node->noise_ms * (0.5 + l) * ml_rng_exp(r);
		out->rtt_ms[i] = (float)rtt;
	}
	out->series = (struct ml_series){
		.n = n, .t = out->t, .rtt_ms = out->rtt_ms, .load = out->load, .week_s0 = week_s0,
		.hops = node->hops_known ? node->hops : NAN,
		.as_path_len = node->as_known ? node->as_path_len : NAN,
		.distance_km = node->distance_known ? node->distance_km : NAN,
	};
	return 0;
}

void ml_synth_trace_free(struct ml_synth_trace *t)
{
	free(t->t);
	free(t->rtt_ms);
	free(t->load);
	free(t->true_load);
	memset(t, 0, sizeof(*t));
}

int ml_synth_rows(const struct ml_synth_conf *c, const struct ml_synth_trace *t, uint32_t group,
		  struct ml_data *out)
{
	return ml_data_add_series(out, &t->series, &c->win, c->row_every_s, group);
}

int ml_synth_dataset(const struct ml_synth_conf *c, size_t n_rows, const atomic_int *cancel,
		     struct ml_data *out, char *err, size_t errlen)
{
	ml_data_init(out);
	for (uint32_t h = 0; out->n < n_rows; h++) {
		struct ml_rng r;
		struct ml_synth_node node;
		struct ml_synth_trace tr;

		if (cancel && atomic_load(cancel)) {
			snprintf(err, errlen, "synthetic set: cancelled at %zu rows", out->n);
			ml_data_free(out);
			return -1;
		}
		if (h >= 64 && out->n == 0) {
			snprintf(err, errlen, "synthetic set: histories give no rows (the window "
				 "is longer than a history?)");
			return -1;
		}
		synth_seed(&r, c->seed, SYNTH_DOMAIN_SET, h);
		ml_synth_node_draw(c, &r, ml_rng_below(&r, ML_REGION__COUNT), &node);
		if (ml_synth_trace_run(c, &r, &node, ml_rng_uniform(&r, 0, 7 * 86400.0),
				       c->history_h * 3600.0, NULL, &tr) < 0 ||
		    ml_synth_rows(c, &tr, h, out) < 0) {
			snprintf(err, errlen, "synthetic set: out of memory at %zu rows", out->n);
			ml_synth_trace_free(&tr);
			ml_data_free(out);
			return -1;
		}
		ml_synth_trace_free(&tr);
	}
	out->n = n_rows;
	return 0;
}

static int synth_group_run(const struct ml_synth_conf *c, struct ml_rng *r, double week_s0,
			   double dur_s, const struct ml_synth_surge *forced, struct ml_synth_group *g)
{
	for (unsigned i = 0; i < g->k; i++) {
		/* Each node its own stream, so that changing one node leaves the others. */
		struct ml_rng ri;

		ml_rng_seed(&ri, ml_rng_next(r));
		if (ml_synth_trace_run(c, &ri, &g->tr[i].node, week_s0, dur_s,
				       forced ? &forced[i] : NULL, &g->tr[i]) < 0) {
			ml_synth_group_free(g);
			return -1;
		}
	}
	return 0;
}

int ml_synth_group_steady(const struct ml_synth_conf *c, uint32_t id, unsigned k, double dur_s,
			  struct ml_synth_group *g)
{
	struct ml_rng r;

	memset(g, 0, sizeof(*g));
	g->k = k < 2 ? 2 : k > ML_SYNTH_MAX_GROUP ? ML_SYNTH_MAX_GROUP : k;
	g->degrading = -1;
	synth_seed(&r, c->seed, SYNTH_DOMAIN_STEADY, id);
	unsigned region = ml_rng_below(&r, ML_REGION__COUNT);
	for (unsigned i = 0; i < g->k; i++)
		ml_synth_node_draw(c, &r, region, &g->tr[i].node);
	return synth_group_run(c, &r, ml_rng_uniform(&r, 0, 7 * 86400.0), dur_s, NULL, g);
}

int ml_synth_group_scenario(const struct ml_synth_conf *c, uint32_t id, unsigned k,
			    double dur_s, struct ml_synth_group *g)
{
	struct ml_synth_surge forced[ML_SYNTH_MAX_GROUP];
	struct ml_rng r;

	memset(g, 0, sizeof(*g));
	memset(forced, 0, sizeof(forced));
	g->k = k < 2 ? 2 : k > ML_SYNTH_MAX_GROUP ? ML_SYNTH_MAX_GROUP : k;
	synth_seed(&r, c->seed, SYNTH_DOMAIN_SCENARIO, id);
	unsigned region = ml_rng_below(&r, ML_REGION__COUNT);
	double lowest = 1e9;
	for (unsigned i = 0; i < g->k; i++) {
		struct ml_synth_node *n = &g->tr[i].node;

		ml_synth_node_draw(c, &r, region, n);
		n->load_known = 1;
		if (n->floor_ms < lowest)
			lowest = n->floor_ms;
	}
	/* Node 0 is clearly the fastest (3-10 ms ahead of each other), quietly loaded. */
	struct ml_synth_node *fast = &g->tr[0].node;
	fast->floor_ms = lowest;
	fast->load_base = ml_rng_uniform(&r, 0.05, 0.2);
	for (unsigned i = 1; i < g->k; i++)
		g->tr[i].node.floor_ms = lowest + ml_rng_uniform(&r, 3, 10);
	g->degrading = 0;
	g->surge_start_s = ml_rng_uniform(&r, 300, 420);
	forced[0] = (struct ml_synth_surge){ g->surge_start_s, dur_s, 1.0 };
	/* A weekday morning, 6:00 to 10:00: no peak hour anywhere in the 20 minutes. */
	double week_s0 = ml_rng_below(&r, 5) * 86400.0 + ml_rng_uniform(&r, 6, 10) * 3600.0;
	return synth_group_run(c, &r, week_s0, dur_s, forced, g);
}

void ml_synth_group_free(struct ml_synth_group *g)
{
	for (unsigned i = 0; i < ML_SYNTH_MAX_GROUP; i++)
		ml_synth_trace_free(&g->tr[i]);
	g->k = 0;
}
