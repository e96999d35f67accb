/* Unit tests for controller/ml_forest.c: splits on a data set worked out by hand, the
 * depth and leaf limits, determinism by seed, leaves that hold the training-time means
 * of the rows inference routes to them, contributions that add up, progress and
 * cancellation, refused input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../controller/ml_forest.h"
#include "../../controller/ml_rng.h"

#include "unit.h"

static struct ml_forest_params one_tree(uint32_t depth)
{
	struct ml_forest_params p;

	ml_forest_params_default(&p);
	p.n_trees = 1;
	p.max_depth = depth;
	p.min_samples_split = 2;
	p.bootstrap = 0;
	return p;
}

/* y = 1 2 3 10 11 30 over x0 = 1..6, and x1 a shuffle. By hand (sum of squared errors
 * of both sides): x0 <= 5.5 leaves 89.2, the best of the 10 candidates (x0 <= 4.5:
 * 230.5; the best on x1, <= 4.5: 424.75). Left of it, {1 2 3 10 11}: x0 <= 3.5 leaves
 * 2 + 0.5. */
static const double known_x[6][2] = { { 1, 6 }, { 2, 1 }, { 3, 5 }, { 4, 2 }, { 5, 4 }, { 6, 3 } };
static const double known_y[6] = { 1, 2, 3, 10, 11, 30 };

static void test_known_split(void)
{
	struct ml_forest f;
	struct ml_forest_params p = one_tree(2);
	char err[256];

	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, &known_x[0][0], known_y, 6, 2, &p, NULL, err,
					      sizeof(err)), 0);
	const struct ml_node *n = f.nodes;
	CU_ASSERT_EQUAL(n[0].feature, 0);
	CU_ASSERT_DOUBLE_EQUAL(n[0].threshold, 5.5, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(n[0].value, 57.0 / 6, 1e-12);
	/* Preorder: the left child follows its parent. */
	CU_ASSERT_EQUAL(n[1].feature, 0);
	CU_ASSERT_DOUBLE_EQUAL(n[1].threshold, 3.5, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(n[1].value, 5.4, 1e-12);
	CU_ASSERT_EQUAL(n[n[0].right].feature, ML_FOREST_LEAF);
	CU_ASSERT_DOUBLE_EQUAL(n[n[0].right].value, 30, 1e-12);
	CU_ASSERT_EQUAL(f.n_nodes, 5);
	double q[2] = { 2.9, 0 };
	CU_ASSERT_DOUBLE_EQUAL(ml_forest_predict_mean(&f, q), 2, 1e-12);
	q[0] = 3.6;
	CU_ASSERT_DOUBLE_EQUAL(ml_forest_predict_mean(&f, q), 10.5, 1e-12);
	q[0] = 100;
	CU_ASSERT_DOUBLE_EQUAL(ml_forest_predict_mean(&f, q), 30, 1e-12);
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), 0);
	ml_forest_free(&f);
}

/* A step in feature 2 of 5 with noise elsewhere: a depth-1 tree finds it. */
static void test_step_found_among_noise(void)
{
	enum { N = 400, F = 5 };
	static double x[N * F], y[N];
	struct ml_rng r;
	struct ml_forest f;
	struct ml_forest_params p = one_tree(1);
	char err[256];

	ml_rng_seed(&r, 9);
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < F; j++)
			x[i * F + j] = ml_rng_uniform(&r, 0, 100);
		y[i] = (x[i * F + 2] > 70 ? 50 : 20) + ml_rng_uniform(&r, -1, 1);
	}
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, x, y, N, F, &p, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(f.nodes[0].feature, 2);
	CU_ASSERT(fabs(f.nodes[0].threshold - 70) < 1.0);
	CU_ASSERT(fabs(f.nodes[1].value - 20) < 0.2);
	CU_ASSERT(fabs(f.nodes[2].value - 50) < 0.2);
	ml_forest_free(&f);
}

/* Depth of every leaf and distinct training rows reaching it. */
static void leaf_walk(const struct ml_forest *f, uint32_t i, uint32_t d, uint32_t *max_d)
{
	if (d > *max_d)
		*max_d = d;
	if (f->nodes[i].feature == ML_FOREST_LEAF)
		return;
	leaf_walk(f, i + 1, d + 1, max_d);
	leaf_walk(f, f->nodes[i].right, d + 1, max_d);
}

static void make_data(double *x, double *y, int n, int nf, uint64_t seed)
{
	struct ml_rng r;

	ml_rng_seed(&r, seed);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < nf; j++)
			x[i * nf + j] = floor(ml_rng_uniform(&r, 0, 50)); /* ties on purpose */
		y[i] = x[i * nf] * 0.5 + sin(x[i * nf + 1]) * 10 + ml_rng_normal(&r);
	}
}

static void test_limits(void)
{
	enum { N = 2000, F = 4 };
	static double x[N * F], y[N];
	struct ml_forest f;
	struct ml_forest_params p;
	char err[256];

	make_data(x, y, N, F, 3);
	ml_forest_params_default(&p);
	p.n_trees = 5;
	p.max_depth = 6;
	p.min_samples_leaf = 20;
	p.bootstrap = 0;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, x, y, N, F, &p, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), 0);
	/* Count the rows reaching every leaf. */
	unsigned *count = calloc(f.n_nodes, sizeof(*count));
	for (int i = 0; i < N; i++)
		for (uint32_t t = 0; t < f.n_trees; t++) {
			uint32_t k = f.tree[t];

			while (f.nodes[k].feature != ML_FOREST_LEAF)
				k = x[i * F + f.nodes[k].feature] <= f.nodes[k].threshold ? k + 1 :
											       f.nodes[k].right;
			count[k]++;
		}
	unsigned smallest = N;
	for (uint32_t k = 0; k < f.n_nodes; k++)
		if (f.nodes[k].feature == ML_FOREST_LEAF && count[k] < smallest)
			smallest = count[k];
	CU_ASSERT(smallest >= 20);
	for (uint32_t t = 0; t < f.n_trees; t++) {
		uint32_t d = 0;

		leaf_walk(&f, f.tree[t], 0, &d);
		CU_ASSERT(d <= 6);
		CU_ASSERT(d >= 4); /* 2000 rows of a rich function do reach down */
	}
	free(count);
	ml_forest_free(&f);
}

static void test_determinism(void)
{
	enum { N = 1500, F = 6 };
	static double x[N * F], y[N];
	struct ml_forest a, b, c;
	struct ml_forest_params p;
	char err[256];

	make_data(x, y, N, F, 4);
	ml_forest_params_default(&p);
	p.max_features = 3;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&a, x, y, N, F, &p, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&b, x, y, N, F, &p, NULL, err, sizeof(err)), 0);
	p.seed++;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&c, x, y, N, F, &p, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(a.n_nodes, b.n_nodes);
	CU_ASSERT_EQUAL(memcmp(a.nodes, b.nodes, a.n_nodes * sizeof(*a.nodes)), 0);
	CU_ASSERT_EQUAL(memcmp(a.tree, b.tree, (a.n_trees + 1) * sizeof(*a.tree)), 0);
	CU_ASSERT(a.n_nodes != c.n_nodes ||
		  memcmp(a.nodes, c.nodes, a.n_nodes * sizeof(*a.nodes)) != 0);
	ml_forest_free(&a);
	ml_forest_free(&b);
	ml_forest_free(&c);
}

/* Every leaf's value is the bootstrap-weighted mean of the training rows that inference
 * sends to it: training's partition and inference's routing agree. The bootstrap
 * counts are redrawn here from the documented generator and seed. */
static void test_leaves_hold_training_means(void)
{
	enum { N = 800, F = 3 };
	static double x[N * F], y[N];
	struct ml_forest f;
	struct ml_forest_params p;
	struct ml_rng r;
	static unsigned w[N];
	char err[256];

	make_data(x, y, N, F, 5);
	ml_forest_params_default(&p);
	p.n_trees = 1;
	p.seed = 77;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, x, y, N, F, &p, NULL, err, sizeof(err)), 0);
	ml_rng_seed(&r, p.seed);
	for (int i = 0; i < N; i++)
		w[ml_rng_below(&r, N)]++;
	double *sum = calloc(f.n_nodes, sizeof(double)), *wt = calloc(f.n_nodes, sizeof(double));
	for (int i = 0; i < N; i++) {
		uint32_t k = 0;

		while (f.nodes[k].feature != ML_FOREST_LEAF)
			k = x[i * F + f.nodes[k].feature] <= f.nodes[k].threshold ? k + 1 : f.nodes[k].right;
		sum[k] += w[i] * y[i];
		wt[k] += w[i];
	}
	int leaves = 0, bad = 0;
	for (uint32_t k = 0; k < f.n_nodes; k++) {
		if (f.nodes[k].feature != ML_FOREST_LEAF)
			continue;
		leaves++;
		if (wt[k] == 0 || fabs(sum[k] / wt[k] - f.nodes[k].value) > 1e-9)
			bad++;
	}
	CU_ASSERT(leaves > 20);
	CU_ASSERT_EQUAL(bad, 0);
	free(sum);
	free(wt);
	ml_forest_free(&f);
}

/* A single unbounded tree on distinct inputs reproduces every training target. */
static void test_fits_training_rows(void)
{
	enum { N = 300 };
	static double x[N], y[N];
	struct ml_forest f;
	struct ml_forest_params p = one_tree(ML_FOREST_MAX_DEPTH);
	char err[256];

	for (int i = 0; i < N; i++) {
		x[i] = (i * 37) % N;
		y[i] = sin(i * 0.7) * 100;
	}
	p.min_samples_leaf = 1;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, x, y, N, 1, &p, NULL, err, sizeof(err)), 0);
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += ml_forest_predict_mean(&f, &x[i]) != y[i];
	CU_ASSERT_EQUAL(bad, 0);
	ml_forest_free(&f);
}

static void test_prediction_parts(void)
{
	enum { N = 2000, F = 5 };
	static double x[N * F], y[N];
	struct ml_forest f;
	struct ml_forest_params p;
	char err[256];

	make_data(x, y, N, F, 6);
	ml_forest_params_default(&p);
	p.n_trees = 20;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, x, y, N, F, &p, NULL, err, sizeof(err)), 0);
	int bad_sum = 0, bad_order = 0, bad_mean = 0, bad_range = 0, first_is_x0 = 0;
	for (int i = 0; i < 200; i++) {
		struct ml_pred pr;
		const double *q = x + i * F;
		double s = 0, tmin = INFINITY, tmax = -INFINITY;

		ml_forest_predict(&f, q, &pr);
		for (int j = 0; j < F; j++)
			s += pr.contrib[j];
		bad_sum += fabs(pr.bias + s - pr.mean) > 1e-9;
		bad_mean += pr.mean != ml_forest_predict_mean(&f, q);
		for (int k = 1; k < pr.n_top; k++)
			bad_order += fabs(pr.contrib[pr.top[k]]) > fabs(pr.contrib[pr.top[k - 1]]);
		for (uint32_t t = 0; t < f.n_trees; t++) {
			uint32_t k = f.tree[t];

			while (f.nodes[k].feature != ML_FOREST_LEAF)
				k = q[f.nodes[k].feature] <= f.nodes[k].threshold ? k + 1 : f.nodes[k].right;
			tmin = fmin(tmin, f.nodes[k].value);
			tmax = fmax(tmax, f.nodes[k].value);
		}
		bad_range += !(pr.lo >= tmin && pr.lo <= pr.hi && pr.hi <= tmax && pr.sd >= 0 &&
			       pr.sd <= tmax - tmin);
		/* y is 0.5 x0 (range 25) + 10 sin(x1) (range 20) + noise: x0 or x1 leads. */
		first_is_x0 += pr.n_top > 0 && (pr.top[0] == 0 || pr.top[0] == 1);
	}
	CU_ASSERT_EQUAL(bad_sum, 0);
	CU_ASSERT_EQUAL(bad_mean, 0);
	CU_ASSERT_EQUAL(bad_order, 0);
	CU_ASSERT_EQUAL(bad_range, 0);
	CU_ASSERT(first_is_x0 >= 190);
	ml_forest_free(&f);

	/* One tree: no spread. */
	struct ml_forest_params p1 = one_tree(2);
	struct ml_pred pr;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, &known_x[0][0], known_y, 6, 2, &p1, NULL, err,
					      sizeof(err)), 0);
	ml_forest_predict(&f, known_x[3], &pr);
	CU_ASSERT_DOUBLE_EQUAL(pr.mean, 10.5, 1e-12);
	CU_ASSERT_EQUAL(pr.lo, pr.mean);
	CU_ASSERT_EQUAL(pr.hi, pr.mean);
	CU_ASSERT_EQUAL(pr.sd, 0);
	CU_ASSERT_EQUAL(pr.n_top, 1); /* only x0 is split on */
	CU_ASSERT_EQUAL(pr.top[0], 0);
	CU_ASSERT_DOUBLE_EQUAL(pr.contrib[0], 10.5 - 57.0 / 6, 1e-12);
	ml_forest_free(&f);
}

struct progress_log {
	unsigned calls, last;
	atomic_int cancel;
};

static void on_progress(void *ctx, uint32_t done, uint32_t n)
{
	struct progress_log *l = ctx;

	l->calls++;
	l->last = done;
	if (n == 8 && done == 3)
		atomic_store(&l->cancel, 1);
}

static void test_progress_and_cancel(void)
{
	enum { N = 500, F = 3 };
	static double x[N * F], y[N];
	struct ml_forest f;
	struct ml_forest_params p;
	struct progress_log log = { 0 };
	struct ml_forest_progress prog = { on_progress, &log, &log.cancel };
	char err[256];

	make_data(x, y, N, F, 8);
	ml_forest_params_default(&p);
	p.n_trees = 7;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, N, F, &p, &prog, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(log.calls, 7);
	CU_ASSERT_EQUAL(log.last, 7);
	ml_forest_free(&f);
	memset(&log, 0, sizeof(log));
	p.n_trees = 8;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, N, F, &p, &prog, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "cancelled after 3 of 8") != NULL);
	CU_ASSERT_PTR_NULL(f.nodes);
}

static void test_refused(void)
{
	double x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct ml_forest f;
	struct ml_forest_params p;
	char err[256];

	ml_forest_params_default(&p);
	x[5] = NAN;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, 8, 1, &p, NULL, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "row 5") != NULL);
	x[5] = 6;
	y[2] = INFINITY;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, 8, 1, &p, NULL, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "target") != NULL);
	y[2] = 3;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, 1, 1, &p, NULL, err, sizeof(err)), -1);
	p.max_features = 2;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, 8, 1, &p, NULL, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "max_features") != NULL);
	ml_forest_params_default(&p);
	p.max_depth = 0;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, 8, 1, &p, NULL, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "max_depth") != NULL);
	p.max_depth = 4;
	p.min_samples_split = 1;
	CU_ASSERT_EQUAL(ml_forest_train(&f, x, y, 8, 1, &p, NULL, err, sizeof(err)), -1);
	/* A constant target: one leaf per tree holding it. */
	ml_forest_params_default(&p);
	for (int i = 0; i < 8; i++)
		y[i] = 4;
	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, x, y, 8, 1, &p, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(f.n_nodes, f.n_trees);
	CU_ASSERT_EQUAL(ml_forest_predict_mean(&f, x), 4);
	ml_forest_free(&f);
}

/* ml_forest_check refuses a forest whose structure could mislead inference. */
static void test_check(void)
{
	struct ml_forest f;
	struct ml_forest_params p = one_tree(2);
	char err[256];

	CU_ASSERT_EQUAL_FATAL(ml_forest_train(&f, &known_x[0][0], known_y, 6, 2, &p, NULL, err,
					      sizeof(err)), 0);
	uint32_t right = f.nodes[0].right;
	f.nodes[0].right = 0; /* a loop */
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), -1);
	f.nodes[0].right = f.n_nodes; /* past the end */
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), -1);
	f.nodes[0].right = right;
	f.nodes[1].feature = 2; /* only 2 features */
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "feature 2 out of range") != NULL);
	f.nodes[1].feature = 0;
	f.nodes[1].threshold = NAN;
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), -1);
	f.nodes[1].threshold = 3.5;
	f.max_depth = 1; /* its splits go two deep */
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), -1);
	f.max_depth = 2;
	f.nodes[2].feature = 0; /* a leaf turned split: its subtree no longer fits */
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), -1);
	f.nodes[2].feature = ML_FOREST_LEAF;
	CU_ASSERT_EQUAL(ml_forest_check(&f, err, sizeof(err)), 0);
	ml_forest_free(&f);
}

UNIT_MAIN("ml_forest",
	  { "known split", test_known_split },
	  { "step found among noise", test_step_found_among_noise },
	  { "depth and leaf limits", test_limits },
	  { "determinism by seed", test_determinism },
	  { "leaves hold training-time means", test_leaves_hold_training_means },
	  { "unbounded tree fits training rows", test_fits_training_rows },
	  { "prediction, interval, contributions", test_prediction_parts },
	  { "progress and cancel", test_progress_and_cancel },
	  { "refused input", test_refused },
	  { "structure check", test_check })
