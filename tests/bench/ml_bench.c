/* The ML selector's benchmark tool (tests/bench/ml_run drives it and prints the table).
 *
 *   ml_bench data [--set steady|scenario] [--rows N] [--groups N] [--seed S] --out CSV
 *       a synthetic set (ml_synth.c) as CSV: N rows of the steady set (what both forests
 *       train and are first judged on), or the rows of N scenario groups (every node
 *       every 5 s)
 *   ml_bench fit --train CSV --test CSV [--trees N] [--depth N] [--min-split N]
 *                [--min-leaf N] [--max-features N] [--seed S] [--repeat N]
 *                [--pred FILE] [--also CSV --also-pred FILE] [--model FILE]
 *       train our forest (--repeat times: the training time is the median), measure it on
 *       the test rows, write its predictions (one per line, for the test rows and for
 *       another set) and the model file
 *   ml_bench choose --model FILE --set steady|scenario --groups N [--seed S] [--nodes K]
 *       route choice over synthetic groups of nodes by the controller's own code: each
 *       node's probes (every 250 ms) go through its health module, `nearest`
 *       (select_nearest.c: recent RTT + loss penalty) and `ml` (select_ml.c: the
 *       model's predicted p95 + the same penalty) score them, and select_decide's
 *       anti-flap rule (score * 1.1 + 5 ms < current, for 5 s) decides, as in the
 *       controller's round. Regret, every second once 120 s have passed: the chosen
 *       node's true p95 of the next 30 s minus the best node's. On the scenario set also
 *       whether the switch away from the degrading node came before the degradation
 *       showed (nearest's score of it worse than the best other's by the margin: from
 *       then on a selector of measurements may start its window)
 *   ml_bench trace --dir DIR --model FILE [--rows-out CSV] [--degrading NODE --from S]
 *       the same on a recorded history (DIR/ml-samples.csv, as the controller records
 *       it): its rows as CSV, and one route choice over all its nodes
 *   ml_bench speed --model FILE --test CSV [--calls N]
 *       nanoseconds per prediction, with and without interval and contributions
 *
 * Every command prints key=value lines. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../controller/ml_data.h"
#include "../../controller/ml_features.h"
#include "../../controller/ml_forest.h"
#include "../../controller/ml_model.h"
#include "../../controller/ml_synth.h"
#include "../../controller/ml_train.h"
#include "../../controller/health.h"
#include "../../controller/ml_probe.h"
#include "../../controller/ml_record.h"
#include "../../controller/select.h"
#include "../../controller/select_ml.h"

#define GROUP_S 1200.0
#define NPOL 3

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("ml_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --key value options */
struct opts {
	int argc;
	char **argv;
};

static const char *opt_str(const struct opts *o, const char *key, const char *def)
{
	for (int i = 0; i + 1 < o->argc; i++)
		if (strcmp(o->argv[i], key) == 0)
			return o->argv[i + 1];
	return def;
}

static double opt_num(const struct opts *o, const char *key, double def, double min, double max)
{
	const char *s = opt_str(o, key, NULL);
	char *end;
	double v;

	if (!s)
		return def;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		die("%s: bad value '%s' (want %g..%g)", key, s, min, max);
	return v;
}

static const char *opt_need(const struct opts *o, const char *key)
{
	const char *s = opt_str(o, key, NULL);

	if (!s)
		die("%s is required", key);
	return s;
}

static void load_csv(const char *path, struct ml_data *d)
{
	char err[512];

	ml_data_init(d);
	if (ml_data_read_csv(d, path, err, sizeof(err)) < 0)
		die("%s", err);
	if (d->n == 0)
		die("%s: no rows", path);
}

/* ------------------------------------------------------------------ data */

static int load_group(const struct ml_synth_conf *c, int scenario, uint32_t id, unsigned k,
		      struct ml_synth_group *g);

/* Rows of the route-choice groups: every node every 5 s, as they are decided on. */
static void group_rows(const struct ml_synth_conf *c, int scenario, unsigned groups, unsigned k,
		       struct ml_data *d)
{
	struct ml_synth_conf rc = *c;

	rc.row_every_s = 5.0;
	ml_data_init(d);
	for (unsigned gi = 0; gi < groups; gi++) {
		struct ml_synth_group g;

		if (load_group(c, scenario, gi, k, &g) < 0)
			die("out of memory");
		for (unsigned n = 0; n < g.k; n++)
			if (ml_synth_rows(&rc, &g.tr[n], gi * k + n, d) < 0)
				die("out of memory");
		ml_synth_group_free(&g);
	}
}

static int cmd_data(const struct opts *o)
{
	struct ml_synth_conf c;
	struct ml_data d;
	char err[512];
	const char *set = opt_str(o, "--set", "steady");

	ml_synth_conf_default(&c);
	c.seed = (uint64_t)opt_num(o, "--seed", 1, 0, 1e15);
	c.surges_per_hour = opt_num(o, "--surges", c.surges_per_hour, 0, 100);
	c.row_every_s = opt_num(o, "--row-every", c.row_every_s, 0.25, 3600);
	c.history_h = opt_num(o, "--history-h", c.history_h, 0.1, 1000);
	c.lag_s = opt_num(o, "--lag", c.lag_s, 1, 3600);
	c.load_tau_s = opt_num(o, "--load-tau", c.load_tau_s, 1, 36000);
	size_t rows = (size_t)opt_num(o, "--rows", 10000, 1, 1e7);
	double t0 = now_s();
	if (strcmp(set, "steady") == 0) {
		if (ml_synth_dataset(&c, rows, &d, err, sizeof(err)) < 0)
			die("%s", err);
	} else {
		if (strcmp(set, "scenario") != 0)
			die("--set: steady or scenario");
		group_rows(&c, 1, (unsigned)opt_num(o, "--groups", 100, 1, 100000),
			   (unsigned)opt_num(o, "--nodes", 3, 2, ML_SYNTH_MAX_GROUP), &d);
	}
	double gen = now_s() - t0;
	if (ml_data_write_csv(&d, opt_need(o, "--out"), err, sizeof(err)) < 0)
		die("%s", err);
	printf("rows=%zu histories=%u gen_s=%.3f\n", d.n, d.group[d.n - 1] + 1, gen);
	ml_data_free(&d);
	return 0;
}

/* ------------------------------------------------------------------ fit */

static void params_from(const struct opts *o, struct ml_forest_params *p)
{
	ml_forest_params_default(p);
	p->n_trees = (uint32_t)opt_num(o, "--trees", p->n_trees, 1, ML_FOREST_MAX_TREES);
	p->max_depth = (uint32_t)opt_num(o, "--depth", p->max_depth, 1, ML_FOREST_MAX_DEPTH);
	p->min_samples_split = (uint32_t)opt_num(o, "--min-split", p->min_samples_split, 2, 1e9);
	p->min_samples_leaf = (uint32_t)opt_num(o, "--min-leaf", p->min_samples_leaf, 1, 1e9);
	p->max_features = (uint32_t)opt_num(o, "--max-features", p->max_features, 0, ML_NFEAT);
	p->seed = (uint64_t)opt_num(o, "--seed", (double)p->seed, 0, 1e15);
}

static void write_pred(const struct ml_model *m, const struct ml_data *d, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die("%s: %s", path, strerror(errno));
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "%.17g\n", ml_model_predict_mean(m, d->x + i * ML_NFEAT));
	if (fclose(f) != 0)
		die("%s: write failed", path);
}

static int cmd_fit(const struct opts *o)
{
	struct ml_forest_params p;
	struct ml_data train, test;
	struct ml_model m;
	char err[512];
	int repeat = (int)opt_num(o, "--repeat", 1, 1, 100);
	double times[100];

	params_from(o, &p);
	load_csv(opt_need(o, "--train"), &train);
	load_csv(opt_need(o, "--test"), &test);
	memset(&m, 0, sizeof(m));
	for (int r = 0; r < repeat; r++) {
		struct ml_model mr;
		double t0 = now_s();

		if (ml_train_fit(&train, &p, NULL, &mr, err, sizeof(err)) < 0)
			die("%s", err);
		times[r] = now_s() - t0;
		if (r == 0)
			m = mr;
		else
			ml_model_free(&mr);
	}
	double mae, p95, bmae, bp95;
	ml_train_errors(&m, &test, &mae, &p95);
	ml_train_errors(NULL, &test, &bmae, &bp95);
	const char *pred = opt_str(o, "--pred", NULL);
	if (pred)
		write_pred(&m, &test, pred);
	/* More sets to predict: --also CSV --also-pred FILE. */
	const char *also = opt_str(o, "--also", NULL);
	if (also) {
		struct ml_data d;

		load_csv(also, &d);
		write_pred(&m, &d, opt_need(o, "--also-pred"));
		ml_data_free(&d);
	}
	const char *model = opt_str(o, "--model", NULL);
	if (model) {
		m.meta.created = (uint64_t)time(NULL);
		snprintf(m.meta.source, sizeof(m.meta.source), "synthetic");
		m.meta.n_train = train.n;
		m.meta.n_heldout = test.n;
		m.meta.mae_ms = mae;
		m.meta.p95_err_ms = p95;
		m.meta.base_mae_ms = bmae;
		m.meta.base_p95_err_ms = bp95;
		if (ml_model_save(model, &m, err, sizeof(err)) < 0)
			die("%s", err);
	}
	printf("rows=%zu test_rows=%zu nodes=%u train_s=%.4f mae=%.4f p95=%.4f base_mae=%.4f "
	       "base_p95=%.4f\n", train.n, test.n, m.forest.n_nodes, median(times, (size_t)repeat),
	       mae, p95, bmae, bp95);
	ml_model_free(&m);
	ml_data_free(&train);
	ml_data_free(&test);
	return 0;
}

/* ---------------------------------------------------------------- choose */

/* One strategy through a group's timeline: the controller's own anti-flap rule
 * (select_decide) over the strategy's scores. */
struct policy {
	struct select_state st;
	int cur;           /* the active node, -1 before the first choice */
	unsigned switches;
	double regret_sum;
	size_t decisions;
	double first_away; /* when it first left the degrading node */
};

static int argmin(const double *v, unsigned k)
{
	int best = -1;

	for (unsigned i = 0; i < k; i++)
		if (isfinite(v[i]) && (best < 0 || v[i] < v[best]))
			best = (int)i;
	return best;
}

static void policy_step(struct policy *p, const struct select_conf *sc, struct select_score *s,
			unsigned k, uint64_t now, double t, int degrading)
{
	struct select_decision d;

	for (unsigned i = 0; i < k; i++)
		s[i].present = true;
	select_decide(&p->st, sc, s, k, p->cur, now, &d);
	if (d.reason == SELECT_KEEP || d.choose < 0 || d.choose == p->cur)
		return;
	if (p->cur >= 0) {
		p->switches++;
		if (p->cur == degrading && !isfinite(p->first_away))
			p->first_away = t;
	}
	p->cur = d.choose;
	/* As the controller does after a switch: streaks were against the route just left. */
	memset(&p->st, 0, sizeof(p->st));
}

static int load_group(const struct ml_synth_conf *c, int scenario, uint32_t id, unsigned k,
		      struct ml_synth_group *g)
{
	return scenario ? ml_synth_group_scenario(c, id, k, GROUP_S, g) :
			  ml_synth_group_steady(c, id, k, GROUP_S, g);
}

/* The dataplane's view of a node's probes, fed to the controller's health module:
 * RTT samples with RFC 3550 jitter and a smoothed loss (1/4 per probe), misses counted. */
struct feed {
	double jitter, loss, prev;
};

static void feed_probe(struct health *h, const struct health_conf *hc, struct feed *f,
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

/* One node of a route choice: its probes (t in seconds from the choice's start) as a
 * series, and its configured facts. */
struct choose_node {
	struct ml_series s;
	struct node_facts facts;
};

/* What the strategies did, summed over choices. */
struct choose_sum {
	double regret[NPOL];
	size_t decisions;
	unsigned switches[NPOL], before[NPOL], after[NPOL], never[NPOL], off[NPOL];
	double *lead;
	unsigned n_lead;
};

struct choose_env {
	struct health_conf hc;
	struct select_conf sc;
	struct select_nearest_conf nc;
	struct ml_probe probe;
	struct select_ml sml;
	struct ml_window win;
	double *scratch;
	size_t scratch_n;
};

/* Run the three strategies over k nodes from t = 0 to `end` s, a round every 250 ms
 * (each node's probes of the last 250 ms go to its health), regret every second once
 * the history window has passed. degrading >= 0: the scenario's node, surging at
 * surge_s. */
static void choose_run(struct choose_env *e, const struct choose_node *nd, unsigned k, double end,
		       int degrading, double surge_s, struct choose_sum *sum)
{
	static struct health h[ML_SYNTH_MAX_GROUP];
	static const char *const names[ML_SYNTH_MAX_GROUP] = { "n0", "n1", "n2", "n3",
							       "n4", "n5", "n6", "n7" };
	struct selector near = select_nearest(&e->nc), ml = select_ml(&e->sml);
	struct policy pol[NPOL];
	struct feed fd[ML_SYNTH_MAX_GROUP];
	struct health_report rep[ML_SYNTH_MAX_GROUP];
	struct select_cand cand[ML_SYNTH_MAX_GROUP];
	size_t next[ML_SYNTH_MAX_GROUP] = { 0 };
	double load[ML_SYNTH_MAX_GROUP];
	int on_it[NPOL] = { 0 };
	double t_deg = NAN;
	const uint64_t t0 = 1000000;

	memset(pol, 0, sizeof(pol));
	for (int p = 0; p < NPOL; p++) {
		pol[p].cur = -1;
		pol[p].first_away = NAN;
	}
	ml_probe_init(&e->probe, t0);
	for (unsigned n = 0; n < k; n++) {
		health_init(&h[n], t0);
		fd[n] = (struct feed){ 0, 0, NAN };
		load[n] = -1;
	}
	for (long tick = 1;; tick++) {
		double t = tick * 0.25;
		uint64_t now = t0 + (uint64_t)(t * 1e6);
		struct select_score sc[NPOL][ML_SYNTH_MAX_GROUP];
		double truth[ML_SYNTH_MAX_GROUP];
		struct ml_probe_rec recs[SELECT_MAX];
		int known = 1;

		if (t > end)
			break;
		for (unsigned n = 0; n < k; n++) {
			const struct ml_series *s = &nd[n].s;

			for (; next[n] < s->n && s->t[next[n]] <= t; next[n]++) {
				feed_probe(&h[n], &e->hc, &fd[n], now, s->rtt_ms[next[n]]);
				load[n] = s->load && !isnan(s->load[next[n]]) ? s->load[next[n]] : -1;
			}
			health_report(&h[n], &e->hc, now, &rep[n]);
			cand[n] = (struct select_cand){ names[n], &rep[n], &h[n], &nd[n].facts, -1, load[n],
							(int)n == pol[1].cur };
		}
		ml_probe_round(&e->probe, cand, k, now, recs);
		if (t < e->win.history_s)
			continue;
		for (unsigned n = 0; n < k; n++)
			if (next[n] == 0 || ml_features_target(&nd[n].s, next[n] - 1, &e->win, &truth[n],
							       e->scratch, e->scratch_n) < 0)
				known = 0;
		if (!known)
			continue; /* no future to judge by (a silent node, or the end) */
		near.score(near.self, cand, k, now, sc[0]);
		ml.score(ml.self, cand, k, now, sc[1]);
		for (unsigned n = 0; n < k; n++)
			sc[2][n] = (struct select_score){ .usable = true, .known = true,
							  .score_us = truth[n] * 1000 };
		/* The degradation shows: nearest's score of the node is worse than the best
		 * other's by the margin, so nearest's rule may start its window now. */
		if (degrading >= 0 && t >= surge_s && !isfinite(t_deg)) {
			double others = INFINITY;

			for (unsigned n = 0; n < k; n++)
				if ((int)n != degrading && sc[0][n].usable)
					others = fmin(others, sc[0][n].score_us);
			if (sc[0][degrading].usable && select_beats(&e->sc, others, sc[0][degrading].score_us))
				t_deg = t;
		}
		int best = argmin(truth, k);
		bool judge = tick % 4 == 0;
		for (int p = 0; p < NPOL; p++) {
			policy_step(&pol[p], &e->sc, sc[p], k, now, t, degrading);
			if (degrading >= 0 && t < surge_s)
				on_it[p] = pol[p].cur == degrading;
			if (pol[p].cur >= 0 && judge) {
				pol[p].regret_sum += truth[pol[p].cur] - truth[best];
				pol[p].decisions++;
			}
		}
	}
	if (getenv("ML_BENCH_TRACE"))
		fprintf(stderr, "choice: surge %.0f shows %.0f; away: nearest %.0f (%.0f), ml %.0f "
			"(%.0f), oracle %.0f (%.0f); switches %u %u %u\n", surge_s, t_deg,
			pol[0].first_away, pol[0].regret_sum, pol[1].first_away, pol[1].regret_sum,
			pol[2].first_away, pol[2].regret_sum, pol[0].switches, pol[1].switches,
			pol[2].switches);
	sum->decisions += pol[0].decisions;
	for (int p = 0; p < NPOL; p++) {
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
	if (degrading >= 0 && on_it[0] && on_it[1] && isfinite(pol[0].first_away) &&
	    isfinite(pol[1].first_away) && sum->lead)
		sum->lead[sum->n_lead++] = pol[0].first_away - pol[1].first_away;
}

static void choose_env_init(struct choose_env *e, const char *model)
{
	struct ml_model m;
	char err[512];

	memset(e, 0, sizeof(*e));
	ml_features_window_default(&e->win);
	if (ml_model_load(model, &e->win, &m, err, sizeof(err)) < 0)
		die("%s", err);
	health_conf_defaults(&e->hc);
	select_conf_defaults(&e->sc);
	select_nearest_defaults(&e->nc);
	select_ml_init(&e->sml, &e->nc, &e->probe);
	select_ml_set_model(&e->sml, &m, NULL);
	if (!e->sml.usable)
		die("the model is not usable: %s", e->sml.status);
	/* The target's window at the densest probing the series may have (20 ms). */
	e->scratch_n = (size_t)(e->win.horizon_s * 50) + 16;
	e->scratch = malloc(e->scratch_n * sizeof(*e->scratch));
	if (!e->scratch)
		die("out of memory");
}

static void choose_print(const char *set, unsigned choices, unsigned k, const struct choose_sum *s,
			 bool scenario)
{
	static const char *const name[NPOL] = { "nearest", "ml", "oracle" };

	printf("set=%s groups=%u nodes=%u decisions=%zu\n", set, choices, k, s->decisions);
	for (int p = 0; p < NPOL; p++) {
		printf("%s_regret_ms=%.4f %s_switches=%u", name[p],
		       s->decisions ? s->regret[p] / (double)s->decisions : NAN, name[p], s->switches[p]);
		if (scenario)
			printf(" %s_before=%u %s_after=%u %s_never=%u %s_not_on_it=%u", name[p],
			       s->before[p], name[p], s->after[p], name[p], s->never[p], name[p],
			       s->off[p]);
		printf("\n");
	}
	if (scenario) {
		double *lead = s->lead;
		printf("ml_lead_median_s=%.1f lead_groups=%u\n",
		       s->n_lead ? median(lead, s->n_lead) : NAN, s->n_lead);
	}
}

static int cmd_choose(const struct opts *o)
{
	struct ml_synth_conf c;
	const char *set = opt_need(o, "--set");
	int scenario = strcmp(set, "scenario") == 0;
	unsigned groups = (unsigned)opt_num(o, "--groups", 100, 1, 100000);
	unsigned k = (unsigned)opt_num(o, "--nodes", 3, 2, ML_SYNTH_MAX_GROUP);
	static struct choose_env e;
	struct choose_sum sum;

	if (!scenario && strcmp(set, "steady") != 0)
		die("--set: steady or scenario");
	ml_synth_conf_default(&c);
	c.seed = (uint64_t)opt_num(o, "--seed", 7, 0, 1e15);
	choose_env_init(&e, opt_need(o, "--model"));
	memset(&sum, 0, sizeof(sum));
	sum.lead = calloc(groups, sizeof(*sum.lead));
	for (unsigned gi = 0; gi < groups; gi++) {
		struct ml_synth_group g;
		struct choose_node nd[ML_SYNTH_MAX_GROUP];

		if (load_group(&c, scenario, gi, k, &g) < 0)
			die("out of memory");
		for (unsigned n = 0; n < g.k; n++) {
			const struct ml_synth_node *sn = &g.tr[n].node;

			nd[n].s = g.tr[n].series;
			nd[n].facts = (struct node_facts){ "",
				sn->distance_known ? (int64_t)sn->distance_km : -1,
				sn->hops_known ? (int64_t)sn->hops : -1, sn->as_known ? (int64_t)sn->as_path_len : -1 };
		}
		choose_run(&e, nd, g.k, g.tr[0].t[g.tr[0].n - 1], scenario ? 0 : -1, g.surge_start_s, &sum);
		ml_synth_group_free(&g);
	}
	choose_print(set, groups, k, &sum, scenario);
	free(sum.lead);
	free(e.scratch);
	select_ml_free(&e.sml);
	return 0;
}

/* ml_bench trace --dir DIR --model FILE [--rows-out CSV] [--degrading NAME --from S]:
 * the recorded history in DIR (ml-samples.csv, as `lsctl export` writes it) as training
 * rows (for the forests' errors) and as one route choice over all its nodes. */
static int cmd_trace(const struct opts *o)
{
	static struct choose_env e;
	struct ml_record_set set;
	struct choose_sum sum;
	struct choose_node nd[ML_SYNTH_MAX_GROUP];
	char err[512];
	size_t bad;
	const char *dir = opt_need(o, "--dir");
	const char *deg = opt_str(o, "--degrading", NULL);
	int degrading = -1;

	choose_env_init(&e, opt_need(o, "--model"));
	const char *rows_out = opt_str(o, "--rows-out", NULL);
	if (rows_out) {
		struct ml_data d;

		ml_data_init(&d);
		if (ml_record_rows(dir, &e.win, 5.0, &d, &bad, err, sizeof(err)) < 0)
			die("%s", err);
		if (ml_data_write_csv(&d, rows_out, err, sizeof(err)) < 0)
			die("%s", err);
		printf("rows=%zu bad_lines=%zu\n", d.n, bad);
		ml_data_free(&d);
	}
	if (ml_record_load(dir, &set, &bad, err, sizeof(err)) < 0)
		die("%s", err);
	if (set.n_nodes < 2 || set.n_nodes > ML_SYNTH_MAX_GROUP)
		die("%s: %zu nodes recorded (want 2..%d)", dir, set.n_nodes, ML_SYNTH_MAX_GROUP);
	int64_t ms0 = INT64_MAX, ms1 = 0;
	for (size_t n = 0; n < set.n_nodes; n++) {
		if (set.node[n].n && set.node[n].ms[0] < ms0)
			ms0 = set.node[n].ms[0];
		if (set.node[n].n && set.node[n].ms[set.node[n].n - 1] > ms1)
			ms1 = set.node[n].ms[set.node[n].n - 1];
	}
	double *tt[ML_SYNTH_MAX_GROUP];
	for (size_t n = 0; n < set.n_nodes; n++) {
		const struct ml_record_node *rn = &set.node[n];

		tt[n] = malloc((rn->n ? rn->n : 1) * sizeof(double));
		for (size_t i = 0; i < rn->n; i++)
			tt[n][i] = (double)(rn->ms[i] - ms0) / 1000.0;
		nd[n].s = (struct ml_series){ .n = rn->n, .t = tt[n], .rtt_ms = rn->rtt, .load = rn->load,
					      .week_s0 = ml_features_week_s((time_t)(ms0 / 1000)),
					      .hops = rn->hops, .as_path_len = rn->as, .distance_km = rn->km };
		nd[n].facts = (struct node_facts){ "", isnan(rn->km) ? -1 : (int64_t)rn->km,
						   isnan(rn->hops) ? -1 : (int64_t)rn->hops,
						   isnan(rn->as) ? -1 : (int64_t)rn->as };
		if (deg && strcmp(deg, rn->name) == 0)
			degrading = (int)n;
	}
	memset(&sum, 0, sizeof(sum));
	double lead[1];
	sum.lead = lead;
	choose_run(&e, nd, (unsigned)set.n_nodes, (double)(ms1 - ms0) / 1000.0, degrading,
		   opt_num(o, "--from", 0, 0, 1e9), &sum);
	choose_print("trace", 1, (unsigned)set.n_nodes, &sum, degrading >= 0);
	for (size_t n = 0; n < set.n_nodes; n++)
		free(tt[n]);
	ml_record_set_free(&set);
	free(e.scratch);
	select_ml_free(&e.sml);
	return 0;
}

/* ----------------------------------------------------------------- speed */

static int cmd_speed(const struct opts *o)
{
	struct ml_model m;
	struct ml_data test;
	char err[512];
	size_t calls = (size_t)opt_num(o, "--calls", 200000, 1000, 1e9);
	double full[7], fast[7];
	volatile double sink = 0;

	if (ml_model_load(opt_need(o, "--model"), NULL, &m, err, sizeof(err)) < 0)
		die("%s", err);
	load_csv(opt_need(o, "--test"), &test);
	for (int r = 0; r < 7; r++) {
		struct ml_pred pr;
		double t0 = now_s();

		for (size_t i = 0; i < calls; i++) {
			ml_model_predict(&m, test.x + (i % test.n) * ML_NFEAT, &pr);
			sink += pr.mean;
		}
		full[r] = (now_s() - t0) / (double)calls * 1e9;
		t0 = now_s();
		for (size_t i = 0; i < calls; i++)
			sink += ml_model_predict_mean(&m, test.x + (i % test.n) * ML_NFEAT);
		fast[r] = (now_s() - t0) / (double)calls * 1e9;
	}
	printf("trees=%u nodes=%u predict_ns=%.1f predict_mean_ns=%.1f\n", m.forest.n_trees,
	       m.forest.n_nodes, median(full, 7), median(fast, 7));
	(void)sink;
	ml_model_free(&m);
	ml_data_free(&test);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct opts *o);
	} cmds[] = { { "data", cmd_data }, { "fit", cmd_fit }, { "choose", cmd_choose },
		     { "trace", cmd_trace }, { "speed", cmd_speed } };

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: ml_bench data|fit|choose|trace|speed [--key value]...\n"
			"(see the comment at the top of tests/bench/ml_bench.c)\n");
		return argc < 2 ? 2 : 0;
	}
	struct opts o = { argc - 2, argv + 2 };
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(&o);
	die("unknown command '%s' (data, fit, choose, trace, speed)", argv[1]);
}
