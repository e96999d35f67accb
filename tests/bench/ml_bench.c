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
 *       route choice over synthetic groups of nodes, decided every second by `ml` (the
 *       model's predicted p95) and by `nearest` (the current smoothed RTT), both through
 *       the same anti-flap rule (a challenger must score below current / 1.1 - 5 ms for
 *       5 s, which is score * 1.1 + 5 ms < current): regret (the chosen node's true p95
 *       of the next 30 s minus the best node's) and, on the scenario set, whether the
 *       switch away from the degrading node came before the degradation showed (its
 *       measured latency worse than the best other's by that margin: from then on a
 *       selector of measurements may start its window)
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

#define MARGIN_RATIO 1.1
#define MARGIN_MS 5.0
#define WINDOW_S 5.0
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

/* One strategy's state through a group's timeline. */
struct policy {
	int cur;          /* chosen node, -1 before the first decision */
	int pending;      /* a challenger has beaten the margin since pending_since */
	double pending_since;
	unsigned switches;
	double regret_sum;
	size_t decisions;
	double first_away; /* time of the first switch away from the degrading node */
};

static int argmin(const double *v, unsigned k)
{
	int best = -1;

	for (unsigned i = 0; i < k; i++)
		if (isfinite(v[i]) && (best < 0 || v[i] < v[best]))
			best = (int)i;
	return best;
}

/* The anti-flap rule: switch to the best challenger once some challenger has beaten
 * the current node's score by the margin for WINDOW_S in a row. */
static void policy_step(struct policy *p, const double *score, unsigned k, double t,
			int degrading)
{
	int best = argmin(score, k);

	if (best < 0)
		return;
	if (p->cur < 0 || !isfinite(score[p->cur])) {
		p->cur = best;
		p->pending = 0;
		return;
	}
	if (best != p->cur && score[best] * MARGIN_RATIO + MARGIN_MS < score[p->cur]) {
		if (!p->pending) {
			p->pending = 1;
			p->pending_since = t;
		}
		if (t - p->pending_since >= WINDOW_S) {
			if (p->cur == degrading && !isfinite(p->first_away))
				p->first_away = t;
			p->cur = best;
			p->switches++;
			p->pending = 0;
		}
	} else {
		p->pending = 0;
	}
}

static int load_group(const struct ml_synth_conf *c, int scenario, uint32_t id, unsigned k,
		      struct ml_synth_group *g)
{
	return scenario ? ml_synth_group_scenario(c, id, k, GROUP_S, g) :
			  ml_synth_group_steady(c, id, k, GROUP_S, g);
}

static int cmd_choose(const struct opts *o)
{
	struct ml_synth_conf c;
	struct ml_model m;
	char err[512];
	const char *set = opt_need(o, "--set");
	int scenario = strcmp(set, "scenario") == 0;
	unsigned groups = (unsigned)opt_num(o, "--groups", 100, 1, 100000);
	unsigned k = (unsigned)opt_num(o, "--nodes", 3, 2, ML_SYNTH_MAX_GROUP);
	/* nearest, ml, and the oracle: the true future under the same rule (the best any
	 * predictor could do with the margin). */
	static const char *const name[NPOL] = { "nearest", "ml", "oracle" };
	double regret[NPOL] = { 0 };
	size_t decisions = 0;
	unsigned switches[NPOL] = { 0 }, before[NPOL] = { 0 }, after[NPOL] = { 0 },
		 never[NPOL] = { 0 }, off[NPOL] = { 0 };
	double *lead = calloc(groups, sizeof(*lead)); /* nearest's switch minus ml's */
	unsigned n_lead = 0;

	if (!scenario && strcmp(set, "steady") != 0)
		die("--set: steady or scenario");
	ml_synth_conf_default(&c);
	c.seed = (uint64_t)opt_num(o, "--seed", 7, 0, 1e15);
	if (ml_model_load(opt_need(o, "--model"), &c.win, &m, err, sizeof(err)) < 0)
		die("%s", err);

	size_t hist = (size_t)(c.win.history_s / c.tick_s) + 16;
	size_t fut = (size_t)(c.win.horizon_s / c.tick_s) + 16;
	double *scratch = malloc((hist > fut ? hist : fut) * sizeof(*scratch));
	if (!scratch || !lead)
		die("out of memory");
	for (unsigned gi = 0; gi < groups; gi++) {
		struct ml_synth_group g;
		struct policy pol[NPOL];
		int on_it[NPOL] = { 0 }; /* on the degrading node when its surge began */
		double t_deg = NAN;

		if (load_group(&c, scenario, gi, k, &g) < 0)
			die("out of memory");
		for (int s = 0; s < NPOL; s++) {
			memset(&pol[s], 0, sizeof(pol[s]));
			pol[s].cur = -1;
			pol[s].first_away = NAN;
		}
		size_t step = (size_t)(1.0 / c.tick_s);
		for (size_t i = (size_t)(c.win.history_s / c.tick_s); i < g.tr[0].n; i += step) {
			double near[ML_SYNTH_MAX_GROUP] = { 0 }, ml[ML_SYNTH_MAX_GROUP] = { 0 };
			double truth[ML_SYNTH_MAX_GROUP] = { 0 };
			double t = g.tr[0].t[i];
			int known = 1;

			for (unsigned n = 0; n < g.k; n++) {
				double x[ML_NFEAT];

				near[n] = ml[n] = INFINITY;
				if (ml_features_target(&g.tr[n].series, i, &c.win, &truth[n], scratch, fut) < 0)
					known = 0;
				if (ml_features_at(&g.tr[n].series, i, &c.win, x, scratch, hist) < 0)
					continue;
				near[n] = x[ML_F_CURRENT_MS];
				ml[n] = ml_model_predict_mean(&m, x);
			}
			if (!known)
				break; /* the end of the timeline: no future to judge by */
			/* The degradation shows: the node's measured latency is worse than the best
			 * other's by the margin, so a selector that reacts to measurements may
			 * start its window now. */
			if (scenario && t >= g.surge_start_s && !isfinite(t_deg)) {
				double others = INFINITY;

				for (unsigned n = 1; n < g.k; n++)
					others = fmin(others, near[n]);
				if (near[0] > others * MARGIN_RATIO + MARGIN_MS)
					t_deg = t;
			}
			int best = argmin(truth, g.k);
			for (int s = 0; s < NPOL; s++) {
				policy_step(&pol[s], s == 0 ? near : s == 1 ? ml : truth, g.k, t,
					    scenario ? 0 : -1);
				if (t < g.surge_start_s)
					on_it[s] = pol[s].cur == 0;
				if (pol[s].cur >= 0) {
					pol[s].regret_sum += truth[pol[s].cur] - truth[best];
					pol[s].decisions++;
				}
			}
		}
		if (getenv("ML_BENCH_TRACE"))
			fprintf(stderr, "group %u: surge %.0f shows %.0f; away: nearest %.0f (%.0f), ml "
				"%.0f (%.0f), oracle %.0f (%.0f)\n", gi, g.surge_start_s, t_deg,
				pol[0].first_away, pol[0].regret_sum, pol[1].first_away,
				pol[1].regret_sum, pol[2].first_away, pol[2].regret_sum);
		decisions += pol[0].decisions;
		for (int s = 0; s < NPOL; s++) {
			regret[s] += pol[s].regret_sum;
			switches[s] += pol[s].switches;
			if (!scenario)
				continue;
			if (!on_it[s])
				off[s]++;
			else if (!isfinite(pol[s].first_away))
				never[s]++;
			else if (!isfinite(t_deg) || pol[s].first_away < t_deg)
				before[s]++;
			else
				after[s]++;
		}
		if (scenario && on_it[0] && on_it[1] && isfinite(pol[0].first_away) &&
		    isfinite(pol[1].first_away))
			lead[n_lead++] = pol[0].first_away - pol[1].first_away;
		ml_synth_group_free(&g);
	}
	free(scratch);
	ml_model_free(&m);
	printf("set=%s groups=%u nodes=%u decisions=%zu\n", set, groups, k, decisions);
	for (int s = 0; s < NPOL; s++) {
		printf("%s_regret_ms=%.4f %s_switches=%u", name[s],
		       decisions ? regret[s] / (double)decisions : NAN, name[s], switches[s]);
		if (scenario)
			printf(" %s_before=%u %s_after=%u %s_never=%u %s_not_on_it=%u", name[s], before[s],
			       name[s], after[s], name[s], never[s], name[s], off[s]);
		printf("\n");
	}
	if (scenario)
		printf("ml_lead_median_s=%.1f lead_groups=%u\n", n_lead ? median(lead, n_lead) : NAN,
		       n_lead);
	free(lead);
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
		     { "speed", cmd_speed } };

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: ml_bench data|fit|choose|speed [--key value]...\n"
			"(see the comment at the top of tests/bench/ml_bench.c)\n");
		return argc < 2 ? 2 : 0;
	}
	struct opts o = { argc - 2, argv + 2 };
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(&o);
	die("unknown command '%s' (data, fit, choose, speed)", argv[1]);
}
