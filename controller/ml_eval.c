/* Route choice replayed through the controller's own code (see ml_eval.h). */
#include "ml_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A round every 250 ms (the probe series' tick), regret judged every 4th. */
#define EVAL_TICK_S 0.25
#define EVAL_JUDGE_EVERY 4
/* The paired difference of ml's and nearest's regret is taken in blocks of this many
 * decisions (5 minutes); a last block of fewer than a fifth of it is dropped. Its
 * spread over the blocks is the noise the check's verdict allows for. */
#define EVAL_BLOCK 300
/* A recorded stretch ends at a silence of all nodes longer than this. */
#define EVAL_GAP_MS 10000
/* The target's window at the densest probing a series may have (20 ms). */
#define EVAL_SCRATCH_PER_S 50

struct ml_eval {
	struct health_conf hc;
	struct select_conf sc;
	struct select_nearest_conf nc;
	struct failover_conf fc;
	struct ml_window win;
	struct ml_probe probe;
	struct select_ml sml;
	bool oracle;
	struct health h[SELECT_MAX];
	double *scratch;
	size_t scratch_n;
};

const char *ml_eval_policy_name(unsigned p)
{
	static const char *const names[ML_EVAL_NPOL] = { "nearest", "ml", "oracle" };

	return p < ML_EVAL_NPOL ? names[p] : "?";
}

double ml_eval_mean(const struct ml_eval_sum *s, unsigned p)
{
	return s->decisions && p < ML_EVAL_NPOL ? s->regret[p] / (double)s->decisions : NAN;
}

double ml_eval_diff_se(const struct ml_eval_sum *s)
{
	if (s->n_blocks < 2)
		return NAN;
	double n = (double)s->n_blocks, mean = s->block_sum / n;
	double var = (s->block_sq - n * mean * mean) / (n - 1);
	return sqrt(var > 0 ? var : 0) / sqrt(n);
}

static void eval_block(struct ml_eval_sum *sum, double diff_sum, size_t n)
{
	if (n < EVAL_BLOCK / 5)
		return;
	double m = diff_sum / (double)n;
	sum->n_blocks++;
	sum->block_sum += m;
	sum->block_sq += m * m;
}

struct ml_eval *ml_eval_new(const struct ml_model *model, bool oracle, char *err, size_t errlen)
{
	struct ml_eval *e = calloc(1, sizeof(*e));
	struct ml_model copy;
	uint8_t *b = NULL;
	size_t len;

	if (!e) {
		snprintf(err, errlen, "route-choice check: out of memory");
		return NULL;
	}
	ml_features_window_default(&e->win);
	health_conf_defaults(&e->hc);
	select_conf_defaults(&e->sc);
	select_nearest_defaults(&e->nc);
	failover_conf_defaults(&e->fc);
	e->oracle = oracle;
	e->scratch_n = (size_t)(e->win.horizon_s * EVAL_SCRATCH_PER_S) + 16;
	e->scratch = malloc(e->scratch_n * sizeof(*e->scratch));
	select_ml_init(&e->sml, &e->nc, &e->probe);
	/* A copy through the file format: the selector owns the model it scores with. */
	if (!e->scratch || ml_model_encode(model, &b, &len) < 0) {
		snprintf(err, errlen, "route-choice check: out of memory");
		free(b);
		ml_eval_free(e);
		return NULL;
	}
	if (ml_model_decode(b, len, NULL, &copy, err, errlen) < 0) {
		free(b);
		ml_eval_free(e);
		return NULL;
	}
	free(b);
	select_ml_set_model(&e->sml, &copy, NULL);
	/* Judged as it predicts, whatever its verdicts so far: this is the judging. */
	e->sml.usable = true;
	return e;
}

void ml_eval_free(struct ml_eval *e)
{
	if (!e)
		return;
	select_ml_free(&e->sml);
	free(e->scratch);
	free(e);
}

/* One strategy through a choice: the anti-flap rule and the failover state machine
 * over its scores, as the controller's round runs them. */
struct eval_policy {
	struct select_state st;
	struct failover fo;
	unsigned switches;
	double regret_sum;
	size_t decisions;
	double first_away; /* when it first left the degrading node */
};

static void eval_step(const struct ml_eval *e, struct eval_policy *p, struct select_score *s,
		      unsigned k, uint64_t now, double t, int degrading)
{
	struct select_decision d;
	struct failover_action act[2];
	enum fo_hold hold;
	uint64_t until;

	for (unsigned i = 0; i < k; i++)
		s[i].present = true;
	select_decide(&p->st, &e->sc, s, k, p->fo.active, now, &d);
	unsigned n = failover_step(&p->fo, &e->fc, &e->sc, &d, s, k, now, act, &hold, &until);
	for (unsigned i = 0; i < n; i++) {
		enum switch_reason why;
		int from = p->fo.active;

		/* The dataplane answers within its loop turn: done at once. */
		if (!failover_done(&p->fo, act[i].kind, act[i].slot, true, now, &why))
			continue;
		if (from >= 0) {
			p->switches++;
			if (from == degrading && !isfinite(p->first_away))
				p->first_away = t;
		}
		/* As ctrl_switched: streaks were measured against the route just left. */
		memset(&p->st, 0, sizeof(p->st));
	}
}

/* The dataplane's view of a node's probes, fed to health: RTT samples with RFC 3550
 * jitter and a smoothed loss (1/4 per probe), misses counted. */
struct eval_feed {
	double jitter, loss, prev;
};

static void eval_probe(struct health *h, const struct health_conf *hc, struct eval_feed *f,
		       uint64_t now, double rtt_ms)
{
	if (isnan(rtt_ms)) {
		f->loss += (1 - f->loss) / 4;
		health_missed(h, hc, now, h->missed + 1);
		return;
	}
	f->loss -= f->loss / 4;
	if (isfinite(f->prev))
		f->jitter += (fabs(rtt_ms - f->prev) - f->jitter) / 16;
	f->prev = rtt_ms;
	health_sample(h, hc, now, (uint32_t)(rtt_ms * 1000), (int64_t)(f->jitter * 1000), f->loss, 0);
}

static int eval_argmin(const double *v, unsigned k)
{
	int best = -1;

	for (unsigned i = 0; i < k; i++)
		if (isfinite(v[i]) && (best < 0 || v[i] < v[best]))
			best = (int)i;
	return best;
}

void ml_eval_run(struct ml_eval *e, const struct ml_eval_node *nd, unsigned k, double end_s,
		 int degrading, double surge_s, struct ml_eval_sum *sum)
{
	static const char *const names[SELECT_MAX] = { "n0", "n1", "n2", "n3",
						       "n4", "n5", "n6", "n7" };
	struct selector near = select_nearest(&e->nc), ml = select_ml(&e->sml);
	struct eval_policy pol[ML_EVAL_NPOL];
	struct eval_feed fd[SELECT_MAX];
	struct health_report rep[SELECT_MAX];
	struct select_cand cand[SELECT_MAX];
	size_t next[SELECT_MAX] = { 0 };
	double load[SELECT_MAX];
	int on_it[ML_EVAL_NPOL] = { 0 };
	unsigned npol = e->oracle ? ML_EVAL_NPOL : ML_EVAL_ORACLE;
	double t_deg = NAN, block_diff = 0;
	size_t block_n = 0;
	const uint64_t t0 = 1000000;

	if (k < 2 || k > SELECT_MAX)
		return;
	memset(pol, 0, sizeof(pol));
	for (unsigned p = 0; p < ML_EVAL_NPOL; p++) {
		failover_init(&pol[p].fo);
		pol[p].first_away = NAN;
	}
	ml_probe_init(&e->probe, t0);
	for (unsigned n = 0; n < k; n++) {
		health_init(&e->h[n], t0);
		fd[n] = (struct eval_feed){ 0, 0, NAN };
		load[n] = -1;
	}
	for (long tick = 1;; tick++) {
		double t = (double)tick * EVAL_TICK_S;
		uint64_t now = t0 + (uint64_t)(t * 1e6);
		struct select_score sc[ML_EVAL_NPOL][SELECT_MAX];
		double truth[SELECT_MAX];
		struct ml_probe_rec recs[SELECT_MAX];
		bool judge = tick % EVAL_JUDGE_EVERY == 0, known = true;

		if (t > end_s)
			break;
		for (unsigned n = 0; n < k; n++) {
			const struct ml_series *s = &nd[n].s;

			for (; next[n] < s->n && s->t[next[n]] <= t; next[n]++) {
				eval_probe(&e->h[n], &e->hc, &fd[n], now, s->rtt_ms[next[n]]);
				load[n] = s->load && !isnan(s->load[next[n]]) ? s->load[next[n]] : -1;
			}
			health_report(&e->h[n], &e->hc, now, &rep[n]);
			cand[n] = (struct select_cand){ names[n], &rep[n], &e->h[n], &nd[n].facts, -1,
							load[n], (int)n == pol[ML_EVAL_ML].fo.active };
		}
		ml_probe_round(&e->probe, cand, k, now, recs);
		if (t < e->win.history_s)
			continue;
		/* The truth, to judge by (and for the oracle every round): a round whose
		 * future is not known for every node (a silent node, the end) judges nothing
		 * and the oracle, which needs it, waits. */
		if (judge || e->oracle)
			for (unsigned n = 0; n < k && known; n++)
				known = next[n] > 0 &&
					ml_features_target(&nd[n].s, next[n] - 1, &e->win, &truth[n],
							   e->scratch, e->scratch_n) == 0;
		else
			known = false;
		near.score(near.self, cand, k, now, sc[ML_EVAL_NEAREST]);
		ml.score(ml.self, cand, k, now, sc[ML_EVAL_ML]);
		if (e->oracle && known)
			for (unsigned n = 0; n < k; n++)
				sc[ML_EVAL_ORACLE][n] = (struct select_score){
					.usable = true, .known = true, .score_us = truth[n] * 1000 };
		/* The degradation shows: nearest's score of the node is worse than the best
		 * other's by the margin, so nearest's rule may start its window now. */
		if (degrading >= 0 && t >= surge_s && !isfinite(t_deg)) {
			double others = INFINITY;
			const struct select_score *s = sc[ML_EVAL_NEAREST];

			for (unsigned n = 0; n < k; n++)
				if ((int)n != degrading && s[n].usable)
					others = fmin(others, s[n].score_us);
			if (s[degrading].usable && select_beats(&e->sc, others, s[degrading].score_us))
				t_deg = t;
		}
		int best = judge && known ? eval_argmin(truth, k) : -1;
		double judged[ML_EVAL_NPOL] = { 0 };
		for (unsigned p = 0; p < npol; p++) {
			if (p == ML_EVAL_ORACLE && !known)
				continue;
			eval_step(e, &pol[p], sc[p], k, now, t, degrading);
			if (degrading >= 0 && t < surge_s)
				on_it[p] = pol[p].fo.active == degrading;
			if (pol[p].fo.active >= 0 && best >= 0) {
				judged[p] = truth[pol[p].fo.active] - truth[best];
				pol[p].regret_sum += judged[p];
				pol[p].decisions++;
			}
		}
		if (best >= 0 && pol[ML_EVAL_NEAREST].fo.active >= 0) {
			block_diff += judged[ML_EVAL_ML] - judged[ML_EVAL_NEAREST];
			if (++block_n == EVAL_BLOCK) {
				eval_block(sum, block_diff, block_n);
				block_diff = 0;
				block_n = 0;
			}
		}
	}
	eval_block(sum, block_diff, block_n);
	sum->choices++;
	sum->decisions += pol[ML_EVAL_NEAREST].decisions;
	for (unsigned p = 0; p < npol; p++) {
		sum->regret[p] += pol[p].regret_sum;
		sum->switches[p] += pol[p].switches;
		if (degrading < 0)
			continue;
		if (!on_it[p])
			sum->off[p]++;
		else if (!isfinite(pol[p].first_away))
			sum->never[p]++;
		else if (!isfinite(t_deg) || pol[p].first_away < t_deg)
			sum->before[p]++;
		else
			sum->after[p]++;
	}
	if (degrading >= 0 && on_it[ML_EVAL_NEAREST] && on_it[ML_EVAL_ML] &&
	    isfinite(pol[ML_EVAL_NEAREST].first_away) && isfinite(pol[ML_EVAL_ML].first_away) &&
	    sum->lead && sum->n_lead < sum->lead_cap)
		sum->lead[sum->n_lead++] = pol[ML_EVAL_NEAREST].first_away - pol[ML_EVAL_ML].first_away;
}

int ml_eval_synthetic(struct ml_eval *e, const struct ml_synth_conf *c, bool scenario,
		      uint32_t first_id, unsigned groups, unsigned k, double dur_s,
		      const atomic_int *cancel, struct ml_eval_sum *sum)
{
	for (unsigned gi = 0; gi < groups; gi++) {
		struct ml_synth_group g;
		struct ml_eval_node nd[ML_SYNTH_MAX_GROUP];
		uint32_t id = first_id + gi;

		if (cancel && atomic_load(cancel))
			return 0;
		if ((scenario ? ml_synth_group_scenario(c, id, k, dur_s, &g) :
				ml_synth_group_steady(c, id, k, dur_s, &g)) < 0)
			return -1;
		for (unsigned n = 0; n < g.k; n++) {
			const struct ml_synth_node *sn = &g.tr[n].node;

			nd[n].s = g.tr[n].series;
			nd[n].facts = (struct node_facts){
				"", sn->distance_known ? (int64_t)sn->distance_km : -1,
				sn->hops_known ? (int64_t)sn->hops : -1,
				sn->as_known ? (int64_t)sn->as_path_len : -1 };
		}
		ml_eval_run(e, nd, g.k, g.tr[0].t[g.tr[0].n - 1], scenario ? g.degrading : -1,
			    g.surge_start_s, sum);
		ml_synth_group_free(&g);
	}
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* One recorded stretch [a, b] (Unix ms) as a choice over the nodes recorded in it. */
static int eval_stretch(struct ml_eval *e, const struct ml_record_set *set, int64_t a, int64_t b,
			const char *degrading, double surge_s, struct ml_eval_sum *sum)
{
	struct ml_eval_node nd[SELECT_MAX];
	double *t[SELECT_MAX];
	float *rtt[SELECT_MAX], *load[SELECT_MAX];
	unsigned k = 0;
	int deg = -1, rc = 0;

	memset(t, 0, sizeof(t));
	memset(rtt, 0, sizeof(rtt));
	memset(load, 0, sizeof(load));
	for (size_t n = 0; n < set->n_nodes && k < SELECT_MAX; n++) {
		const struct ml_record_node *rn = &set->node[n];
		size_t m = 0;
		int64_t last = INT64_MIN;

		t[k] = malloc((rn->n ? rn->n : 1) * sizeof(double));
		rtt[k] = malloc((rn->n ? rn->n : 1) * sizeof(float));
		load[k] = malloc((rn->n ? rn->n : 1) * sizeof(float));
		if (!t[k] || !rtt[k] || !load[k]) {
			rc = -1;
			k++;
			break;
		}
		/* In time order only: a clock stepped back drops what repeats a time. */
		for (size_t i = 0; i < rn->n; i++)
			if (rn->ms[i] >= a && rn->ms[i] <= b && rn->ms[i] > last) {
				last = rn->ms[i];
				t[k][m] = (double)(rn->ms[i] - a) / 1000.0;
				rtt[k][m] = rn->rtt[i];
				load[k][m++] = rn->load[i];
			}
		if (m < 2 * e->win.min_future) {
			free(t[k]);
			free(rtt[k]);
			free(load[k]);
			t[k] = NULL;
			rtt[k] = load[k] = NULL;
			continue;
		}
		nd[k].s = (struct ml_series){ .n = m, .t = t[k], .rtt_ms = rtt[k], .load = load[k],
					      .week_s0 = ml_features_week_s((time_t)(a / 1000)),
					      .hops = rn->hops, .as_path_len = rn->as,
					      .distance_km = rn->km };
		nd[k].facts = (struct node_facts){ "", isnan(rn->km) ? -1 : (int64_t)rn->km,
						   isnan(rn->hops) ? -1 : (int64_t)rn->hops,
						   isnan(rn->as) ? -1 : (int64_t)rn->as };
		if (degrading && strcmp(degrading, rn->name) == 0)
			deg = (int)k;
		k++;
	}
	if (rc == 0 && k >= 2)
		ml_eval_run(e, nd, k, (double)(b - a) / 1000.0, deg, surge_s, sum);
	for (unsigned n = 0; n < k; n++) {
		free(t[n]);
		free(rtt[n]);
		free(load[n]);
	}
	return rc;
}

int ml_eval_recorded(struct ml_eval *e, const struct ml_record_set *set, double max_s,
		     const char *degrading, double surge_s, struct ml_eval_sum *sum)
{
	size_t total = 0, m = 0;
	int64_t *all;
	double min_s = e->win.history_s + e->win.horizon_s + 30, budget = max_s;

	for (size_t n = 0; n < set->n_nodes; n++)
		total += set->node[n].n;
	if (total == 0)
		return 0;
	all = malloc(total * sizeof(*all));
	if (!all)
		return -1;
	for (size_t n = 0; n < set->n_nodes; n++)
		for (size_t i = 0; i < set->node[n].n; i++)
			all[m++] = set->node[n].ms[i];
	qsort(all, m, sizeof(*all), cmp_i64);
	/* Stretches from the newest back, until the budget of time is spent. */
	size_t end = m;
	while (end > 0 && budget >= min_s) {
		size_t start = end - 1;

		while (start > 0 && all[start] - all[start - 1] <= EVAL_GAP_MS)
			start--;
		int64_t a = all[start], b = all[end - 1];
		if ((double)(b - a) / 1000.0 > budget)
			a = b - (int64_t)(budget * 1000);
		if ((double)(b - a) / 1000.0 >= min_s) {
			if (eval_stretch(e, set, a, b, start == 0 ? degrading : NULL, surge_s, sum) < 0) {
				free(all);
				return -1;
			}
			budget -= (double)(b - a) / 1000.0;
		}
		end = start;
	}
	free(all);
	return 0;
}

int ml_eval_check(struct ml_model *m, const struct ml_record_set *recorded,
		  const atomic_int *cancel, char *err, size_t errlen)
{
	struct ml_eval *e = ml_eval_new(m, false, err, errlen);
	struct ml_synth_conf c;
	int rc = 0;

	if (!e)
		return -1;
	ml_synth_conf_default(&c);
	for (unsigned s = 0; s < ML_CHECK__COUNT && rc == 0; s++) {
		struct ml_eval_sum sum;
		struct ml_model_check *ck = &m->meta.check[s];

		memset(&sum, 0, sizeof(sum));
		if (s == ML_CHECK_RECORDED)
			rc = recorded ? ml_eval_recorded(e, recorded, ML_EVAL_CHECK_RECORDED_S, NULL, 0,
							 &sum) : 0;
		else
			rc = ml_eval_synthetic(e, &c, s == ML_CHECK_SCENARIO, 0, ML_EVAL_CHECK_GROUPS, 3,
					       ML_EVAL_CHECK_GROUP_S, cancel, &sum);
		if (rc < 0)
			snprintf(err, errlen, "route-choice check: out of memory");
		else if (cancel && atomic_load(cancel))
			rc = -1, snprintf(err, errlen, "route-choice check cancelled");
		ck->decisions = sum.decisions;
		ck->nearest_ms = ml_eval_mean(&sum, ML_EVAL_NEAREST);
		ck->ml_ms = ml_eval_mean(&sum, ML_EVAL_ML);
		ck->se_ms = sum.decisions ? ml_eval_diff_se(&sum) : NAN;
	}
	ml_eval_free(e);
	return rc;
}
