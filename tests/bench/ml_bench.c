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
 *                   [--first ID]
 *       route choice over synthetic groups of nodes by the controller's own code
 *       (controller/ml_eval.c): each node's probes (every 250 ms) go through its health
 *       module, `nearest` (select_nearest.c: recent RTT + loss penalty) and `ml`
 *       (select_ml.c: the model's predicted p95 + the same penalty) score them,
 *       select_decide's anti-flap rule (score * 1.1 + 5 ms < current, for 5 s) decides
 *       and failover.c acts (10 s cooldown, 5 switches a minute), as in the
 *       controller's round. Regret, every second once 120 s have passed: the chosen
 *       node's true p95 of the next 30 s minus the best node's. On the scenario set also
 *       whether the switch away from the degrading node came before the degradation
 *       showed (nearest's score of it worse than the best other's by the margin: from
 *       then on a selector of measurements may start its window)
 *   ml_bench trace --dir DIR --model FILE [--rows-out CSV] [--degrading NODE --from S]
 *       the same on a recorded history (DIR/ml-samples.csv, as the controller records
 *       it): its rows as CSV, and route choices over its nodes (one per recorded
 *       stretch)
 *   ml_bench check --model FILE [--dir DIR]
 *       the controller's own route-choice check of the model (ml_eval_check, as after
 *       every training), on DIR's recorded history too
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
#include "../../controller/ml_eval.h"
#include "../../controller/ml_record.h"

#define GROUP_S 1200.0

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
		      struct ml_synth_group *g)
{
	return scenario ? ml_synth_group_scenario(c, id, k, GROUP_S, g) :
			  ml_synth_group_steady(c, id, k, GROUP_S, g);
}

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
		if (ml_synth_dataset(&c, rows, NULL, &d, err, sizeof(err)) < 0)
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

static struct ml_eval *eval_open(const char *path)
{
	struct ml_window win;
	struct ml_model m;
	struct ml_eval *e;
	char err[512];

	ml_features_window_default(&win);
	if (ml_model_load(path, &win, &m, err, sizeof(err)) < 0)
		die("%s", err);
	e = ml_eval_new(&m, true, err, sizeof(err));
	if (!e)
		die("%s", err);
	ml_model_free(&m);
	return e;
}

static void choose_print(const char *set, unsigned k, const struct ml_eval_sum *s, bool scenario)
{
	printf("set=%s groups=%zu nodes=%u decisions=%zu\n", set, s->choices, k, s->decisions);
	for (unsigned p = 0; p < ML_EVAL_NPOL; p++) {
		const char *name = ml_eval_policy_name(p);

		printf("%s_regret_ms=%.4f %s_switches=%u", name, ml_eval_mean(s, p), name,
		       s->switches[p]);
		if (scenario)
			printf(" %s_before=%u %s_after=%u %s_never=%u %s_not_on_it=%u", name,
			       s->before[p], name, s->after[p], name, s->never[p], name, s->off[p]);
		printf("\n");
	}
	if (scenario)
		printf("ml_lead_median_s=%.1f lead_groups=%u\n",
		       s->n_lead ? median(s->lead, s->n_lead) : NAN, s->n_lead);
}

static int cmd_choose(const struct opts *o)
{
	struct ml_synth_conf c;
	const char *set = opt_need(o, "--set");
	int scenario = strcmp(set, "scenario") == 0;
	unsigned groups = (unsigned)opt_num(o, "--groups", 100, 1, 100000);
	unsigned k = (unsigned)opt_num(o, "--nodes", 3, 2, ML_SYNTH_MAX_GROUP);
	struct ml_eval_sum sum;

	if (!scenario && strcmp(set, "steady") != 0)
		die("--set: steady or scenario");
	ml_synth_conf_default(&c);
	c.seed = (uint64_t)opt_num(o, "--seed", 7, 0, 1e15);
	struct ml_eval *e = eval_open(opt_need(o, "--model"));
	memset(&sum, 0, sizeof(sum));
	sum.lead = calloc(groups, sizeof(*sum.lead));
	sum.lead_cap = groups;
	uint32_t first = (uint32_t)opt_num(o, "--first", 0, 0, 1e9);
	if (!sum.lead || ml_eval_synthetic(e, &c, scenario, first, groups, k, GROUP_S, NULL, &sum) < 0)
		die("out of memory");
	choose_print(set, k, &sum, scenario);
	free(sum.lead);
	ml_eval_free(e);
	return 0;
}

/* ml_bench trace --dir DIR --model FILE [--rows-out CSV] [--degrading NODE --from S]:
 * the recorded history in DIR (ml-samples.csv, as `lsctl export` writes it) as training
 * rows (for the forests' errors) and as route choices over its nodes. */
static int cmd_trace(const struct opts *o)
{
	struct ml_record_set set;
	struct ml_eval_sum sum;
	char err[512];
	size_t bad;
	const char *dir = opt_need(o, "--dir");
	const char *deg = opt_str(o, "--degrading", NULL);
	double lead[1];

	struct ml_eval *e = eval_open(opt_need(o, "--model"));
	const char *rows_out = opt_str(o, "--rows-out", NULL);
	if (rows_out) {
		struct ml_data d;
		struct ml_window win;

		ml_features_window_default(&win);
		ml_data_init(&d);
		if (ml_record_rows(dir, &win, 5.0, &d, &bad, err, sizeof(err)) < 0)
			die("%s", err);
		if (ml_data_write_csv(&d, rows_out, err, sizeof(err)) < 0)
			die("%s", err);
		printf("rows=%zu bad_lines=%zu\n", d.n, bad);
		ml_data_free(&d);
	}
	if (ml_record_load(dir, &set, &bad, err, sizeof(err)) < 0)
		die("%s", err);
	if (set.n_nodes < 2)
		die("%s: %zu nodes recorded (want 2 or more)", dir, set.n_nodes);
	memset(&sum, 0, sizeof(sum));
	sum.lead = lead;
	sum.lead_cap = 1;
	if (ml_eval_recorded(e, &set, 1e9, deg, opt_num(o, "--from", 0, 0, 1e9), &sum) < 0)
		die("out of memory");
	if (!sum.choices)
		die("%s: no stretch of two nodes recorded long enough to judge", dir);
	choose_print("trace", (unsigned)set.n_nodes, &sum, deg != NULL);
	ml_record_set_free(&set);
	ml_eval_free(e);
	return 0;
}

/* ml_bench check --model FILE [--dir DIR]: the controller's own route-choice check of a
 * model (ml_eval_check, as after every training), with DIR's recorded history. */
static int cmd_check(const struct opts *o)
{
	struct ml_window win;
	struct ml_model m;
	struct ml_record_set set;
	char err[512];
	size_t bad;
	const char *dir = opt_str(o, "--dir", NULL);
	double t0 = now_s();

	ml_features_window_default(&win);
	if (ml_model_load(opt_need(o, "--model"), &win, &m, err, sizeof(err)) < 0)
		die("%s", err);
	if (dir && ml_record_load(dir, &set, &bad, err, sizeof(err)) < 0)
		die("%s", err);
	if (ml_eval_check(&m, dir ? &set : NULL, NULL, err, sizeof(err)) < 0)
		die("%s", err);
	for (unsigned s = 0; s < ML_CHECK__COUNT; s++)
		printf("%s_decisions=%llu %s_ml_ms=%.4f %s_nearest_ms=%.4f %s_se_ms=%.4f\n",
		       ml_model_check_name(s), (unsigned long long)m.meta.check[s].decisions,
		       ml_model_check_name(s), m.meta.check[s].ml_ms, ml_model_check_name(s),
		       m.meta.check[s].nearest_ms, ml_model_check_name(s), m.meta.check[s].se_ms);
	int w = ml_model_worse_than_nearest(&m.meta);
	printf("worse_on=%s check_s=%.2f\n", w >= 0 ? ml_model_check_name((unsigned)w) : "none",
	       now_s() - t0);
	if (dir)
		ml_record_set_free(&set);
	ml_model_free(&m);
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
		     { "trace", cmd_trace }, { "check", cmd_check },
		     { "speed", cmd_speed } };

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: ml_bench data|fit|choose|trace|check|speed [--key value]...\n"
			"(see the comment at the top of tests/bench/ml_bench.c)\n");
		return argc < 2 ? 2 : 0;
	}
	struct opts o = { argc - 2, argv + 2 };
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(&o);
	die("unknown command '%s' (data, fit, choose, trace, check, speed)", argv[1]);
}
