/* The random forest: training (CART on variance reduction over bootstrap samples) and
 * inference with intervals and contributions. See ml_forest.h for the rules.
 *
 * Training sorts every feature's rows once, and every tree keeps, per feature, its
 * in-bag rows in that order; a node owns the same range [s, e) of every feature's
 * order, and a split partitions each range stably into left and right. So no node
 * sorts, and one tree costs O(rows x features x depth). */
#include "ml_forest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_rng.h"

/* Values closer than this are one value to a split (scikit-learn's FEATURE_THRESHOLD). */
#define FOREST_SAME 1e-7
/* A node whose weighted variance is this small is pure (a leaf). */
#define FOREST_PURE 2.220446049250313e-16

void ml_forest_params_default(struct ml_forest_params *p)
{
	p->n_trees = 10;
	p->max_depth = 12;
	p->min_samples_split = 10;
	p->min_samples_leaf = 1;
	p->max_features = 0;
	p->bootstrap = 1;
	p->seed = 42;
}

int ml_forest_params_check(const struct ml_forest_params *p, uint32_t n_features, char *err,
			   size_t errlen)
{
	const char *bad = NULL;

	if (n_features == 0 || n_features > ML_FOREST_MAX_FEATURES)
		bad = "n_features must be 1..32";
	else if (p->n_trees < 1 || p->n_trees > ML_FOREST_MAX_TREES)
		bad = "n_trees must be 1..1024";
	else if (p->max_depth < 1 || p->max_depth > ML_FOREST_MAX_DEPTH)
		bad = "max_depth must be 1..32";
	else if (p->min_samples_split < 2)
		bad = "min_samples_split must be at least 2";
	else if (p->min_samples_leaf < 1)
		bad = "min_samples_leaf must be at least 1";
	else if (p->max_features > n_features)
		bad = "max_features must be 0 (all) or 1..n_features";
	else if (p->bootstrap > 1)
		bad = "bootstrap must be 0 or 1";
	if (!bad)
		return 0;
	snprintf(err, errlen, "forest parameters: %s", bad);
	return -1;
}

/* ------------------------------------------------------------------ training */

/* A row in one feature's order, with what the split search reads, so the search walks
 * memory in order instead of jumping between rows. */
struct forest_item {
	double x;   /* the feature's value */
	double wy;  /* bootstrap weight x target */
	uint32_t w; /* bootstrap weight */
	uint32_t row;
};

struct forest_grow {
	const struct ml_forest_params *p;
	uint32_t nf;
	size_t n;          /* rows */
	size_t m;          /* in-bag rows of the current tree */
	const double *x;   /* row-major, as given */
	const double *y;
	uint32_t *w;       /* bootstrap count of each row (0: out of bag) */
	uint32_t *gord;    /* every row, sorted by each feature: gord[f * n + k] */
	struct forest_item *ord; /* in-bag rows, sorted by each feature: ord[f * m + k] */
	struct forest_item *tmp; /* m */
	uint8_t *left;     /* per row: goes left at the split being applied */
	struct ml_rng rng;
	struct ml_node *nodes;
	size_t n_nodes, cap;
};

struct forest_key {
	double v;
	uint32_t row;
};

static int forest_key_cmp(const void *a, const void *b)
{
	const struct forest_key *x = a, *y = b;

	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

static long forest_push(struct forest_grow *g, const struct ml_node *nd)
{
	if (g->n_nodes == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1024;
		struct ml_node *p;

		if (cap > ML_FOREST_MAX_NODES)
			cap = ML_FOREST_MAX_NODES;
		if (cap == g->n_nodes)
			return -1;
		p = realloc(g->nodes, cap * sizeof(*p));
		if (!p)
			return -1;
		g->nodes = p;
		g->cap = cap;
	}
	g->nodes[g->n_nodes] = *nd;
	return (long)g->n_nodes++;
}

struct forest_split {
	int found;
	uint32_t feature;
	double threshold;
	size_t n_left; /* distinct rows going left */
	double proxy;  /* sum_L^2 / w_L + sum_R^2 / w_R: the larger, the lower the variance */
};

/* The best split of feature f over the node's rows ord[f][s, e). */
static void forest_best_on(const struct forest_grow *g, uint32_t f, size_t s, size_t e,
			   double wsum, double ysum, struct forest_split *best)
{
	const struct forest_item *o = g->ord + (size_t)f * g->m;
	const uint32_t minleaf = g->p->min_samples_leaf;
	double wl = 0, yl = 0;

	for (size_t i = s; i + 1 < e; i++) {
		double xi = o[i].x, xn = o[i + 1].x;

		wl += o[i].w;
		yl += o[i].wy;
		if (xn <= xi + FOREST_SAME)
			continue;
		size_t nl = i - s + 1, nr = e - s - nl;
		if (nl < minleaf)
			continue;
		if (nr < minleaf)
			break;
		double wr = wsum - wl, yr = ysum - yl;
		double proxy = yl * yl / wl + yr * yr / wr;
		if (!best->found || proxy > best->proxy) {
			double thr = xi / 2.0 + xn / 2.0;

			if (thr == xn || isinf(thr))
				thr = xi;
			best->found = 1;
			best->feature = f;
			best->threshold = thr;
			best->n_left = nl;
			best->proxy = proxy;
		}
	}
}

/* Grow the subtree of the rows in [s, e) at depth d; return its root's index or -1
 * (out of memory). */
static long forest_grow_node(struct forest_grow *g, size_t s, size_t e, uint32_t d)
{
	const struct ml_forest_params *p = g->p;
	const struct forest_item *o0 = g->ord;
	double wsum = 0, ysum = 0, y2sum = 0;

	for (size_t i = s; i < e; i++) {
		wsum += o0[i].w;
		ysum += o0[i].wy;
		y2sum += o0[i].wy * o0[i].wy / o0[i].w;
	}
	double mean = ysum / wsum;
	double impurity = y2sum / wsum - mean * mean;
	struct ml_node nd = { .threshold = 0, .value = mean, .right = 0,
			      .feature = ML_FOREST_LEAF, .reserved = 0 };
	size_t rows = e - s;
	struct forest_split best = { 0 };

	if (d < p->max_depth && rows >= p->min_samples_split && rows >= 2u * p->min_samples_leaf &&
	    impurity > FOREST_PURE) {
		uint32_t feats[ML_FOREST_MAX_FEATURES];
		uint32_t maxf = p->max_features ? p->max_features : g->nf;
		uint32_t visited = 0, constant = 0;

		for (uint32_t k = 0; k < g->nf; k++)
			feats[k] = k;
		/* Draw features without replacement; constant ones count as looked at, but
		 * the search goes on until one that varies has been. */
		for (uint32_t k = 0; k < g->nf && (visited < maxf || visited <= constant); k++) {
			uint32_t j = k + ml_rng_below(&g->rng, g->nf - k);
			uint32_t f = feats[j];
			const struct forest_item *of = g->ord + (size_t)f * g->m;

			feats[j] = feats[k];
			feats[k] = f;
			visited++;
			if (of[e - 1].x <= of[s].x + FOREST_SAME) {
				constant++;
				continue;
			}
			forest_best_on(g, f, s, e, wsum, ysum, &best);
		}
	}
	if (!best.found)
		return forest_push(g, &nd);

	/* Mark the left rows from the split feature's order, then partition every other
	 * feature's range stably (the split feature's is partitioned already). */
	const struct forest_item *ob = g->ord + (size_t)best.feature * g->m;
	for (size_t i = s; i < e; i++)
		g->left[ob[i].row] = i < s + best.n_left;
	for (uint32_t f = 0; f < g->nf; f++) {
		struct forest_item *of = g->ord + (size_t)f * g->m;
		size_t l = s, r = 0;

		if (f == best.feature)
			continue;
		for (size_t i = s; i < e; i++) {
			if (g->left[of[i].row])
				of[l++] = of[i];
			else
				g->tmp[r++] = of[i];
		}
		memcpy(of + l, g->tmp, r * sizeof(*of));
	}
	nd.feature = (uint16_t)best.feature;
	nd.threshold = best.threshold;
	long me = forest_push(g, &nd);
	if (me < 0 || forest_grow_node(g, s, s + best.n_left, d + 1) < 0)
		return -1;
	long right = forest_grow_node(g, s + best.n_left, e, d + 1);
	if (right < 0)
		return -1;
	g->nodes[me].right = (uint32_t)right;
	return me;
}

/* One tree: draw its rows, order them per feature, grow from the root. */
static int forest_grow_tree(struct forest_grow *g)
{
	size_t n = g->n, m = 0;

	if (g->p->bootstrap) {
		memset(g->w, 0, n * sizeof(*g->w));
		for (size_t i = 0; i < n; i++)
			g->w[ml_rng_below(&g->rng, (uint32_t)n)]++;
	} else {
		for (size_t i = 0; i < n; i++)
			g->w[i] = 1;
	}
	for (size_t i = 0; i < n; i++)
		m += g->w[i] != 0;
	g->m = m;
	for (uint32_t f = 0; f < g->nf; f++) {
		const uint32_t *go = g->gord + (size_t)f * n;
		struct forest_item *of = g->ord + (size_t)f * m;
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			uint32_t row = go[i], w = g->w[row];

			if (w)
				of[k++] = (struct forest_item){ g->x[(size_t)row * g->nf + f],
								w * g->y[row], w, row };
		}
	}
	return forest_grow_node(g, 0, m, 0) < 0 ? -1 : 0;
}

int ml_forest_train(struct ml_forest *f, const double *x, const double *y, size_t n,
		    uint32_t n_features, const struct ml_forest_params *p,
		    const struct ml_forest_progress *progress, char *err, size_t errlen)
{
	struct forest_grow g = { .p = p, .nf = n_features, .n = n, .x = x, .y = y };
	struct forest_key *keys = NULL;
	int rc = -1;

	memset(f, 0, sizeof(*f));
	if (ml_forest_params_check(p, n_features, err, errlen) < 0)
		return -1;
	if (n < 2 || n > UINT32_MAX) {
		snprintf(err, errlen, "training set: %zu rows (need 2 to 4294967295)", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(y[i])) {
			snprintf(err, errlen, "training set: row %zu: target is not a finite number", i);
			return -1;
		}
		for (uint32_t j = 0; j < n_features; j++)
			if (!isfinite(x[i * n_features + j])) {
				snprintf(err, errlen,
					 "training set: row %zu: feature %u is not a finite number", i, j);
				return -1;
			}
	}

	g.gord = malloc(n * n_features * sizeof(*g.gord));
	g.ord = malloc(n * n_features * sizeof(*g.ord));
	g.tmp = malloc(n * sizeof(*g.tmp));
	g.w = malloc(n * sizeof(*g.w));
	g.left = malloc(n);
	keys = malloc(n * sizeof(*keys));
	f->tree = calloc((size_t)p->n_trees + 1, sizeof(*f->tree));
	if (!g.gord || !g.ord || !g.tmp || !g.w || !g.left || !keys || !f->tree) {
		snprintf(err, errlen, "training: out of memory for %zu rows", n);
		goto out;
	}
	for (uint32_t j = 0; j < n_features; j++) {
		for (size_t i = 0; i < n; i++) {
			keys[i].v = x[i * n_features + j];
			keys[i].row = (uint32_t)i;
		}
		qsort(keys, n, sizeof(*keys), forest_key_cmp);
		for (size_t i = 0; i < n; i++)
			g.gord[j * n + i] = keys[i].row;
	}
	free(keys);
	keys = NULL;
	ml_rng_seed(&g.rng, p->seed);

	for (uint32_t t = 0; t < p->n_trees; t++) {
		if (progress && progress->cancel && atomic_load(progress->cancel)) {
			snprintf(err, errlen, "training cancelled after %u of %u trees", t, p->n_trees);
			goto out;
		}
		f->tree[t] = (uint32_t)g.n_nodes;
		if (forest_grow_tree(&g) < 0) {
			snprintf(err, errlen, "training: out of memory (or over %u nodes) in tree %u",
				 ML_FOREST_MAX_NODES, t);
			goto out;
		}
		if (progress && progress->fn)
			progress->fn(progress->ctx, t + 1, p->n_trees);
	}
	f->tree[p->n_trees] = (uint32_t)g.n_nodes;
	f->n_features = n_features;
	f->n_trees = p->n_trees;
	f->n_nodes = (uint32_t)g.n_nodes;
	f->max_depth = p->max_depth;
	f->nodes = g.nodes;
	g.nodes = NULL;
	/* Shrink to fit: a trained model lives as long as the controller. */
	struct ml_node *fit = realloc(f->nodes, (size_t)f->n_nodes * sizeof(*fit));
	if (fit)
		f->nodes = fit;
	double b = 0;
	for (uint32_t t = 0; t < f->n_trees; t++)
		b += f->nodes[f->tree[t]].value;
	f->bias = b / f->n_trees;
	rc = 0;
out:
	free(keys);
	free(g.gord);
	free(g.ord);
	free(g.tmp);
	free(g.w);
	free(g.left);
	free(g.nodes);
	if (rc < 0)
		ml_forest_free(f);
	return rc;
}

/* ----------------------------------------------------------------- inference */

double ml_forest_predict_mean(const struct ml_forest *f, const double *x)
{
	const struct ml_node *nodes = f->nodes;
	double sum = 0;

	for (uint32_t t = 0; t < f->n_trees; t++) {
		uint32_t i = f->tree[t];

		while (nodes[i].feature != ML_FOREST_LEAF)
			i = x[nodes[i].feature] <= nodes[i].threshold ? i + 1 : nodes[i].right;
		sum += nodes[i].value;
	}
	return sum / f->n_trees;
}

void ml_forest_predict(const struct ml_forest *f, const double *x, struct ml_pred *out)
{
	const struct ml_node *nodes = f->nodes;
	double v[ML_FOREST_MAX_TREES];
	double sum = 0, sq = 0;
	uint32_t nt = f->n_trees;

	memset(out->contrib, 0, sizeof(out->contrib));
	for (uint32_t t = 0; t < nt; t++) {
		uint32_t i = f->tree[t];

		while (nodes[i].feature != ML_FOREST_LEAF) {
			uint32_t next = x[nodes[i].feature] <= nodes[i].threshold ? i + 1 : nodes[i].right;

			out->contrib[nodes[i].feature] += nodes[next].value - nodes[i].value;
			i = next;
		}
		v[t] = nodes[i].value;
		sum += v[t];
	}
	out->mean = sum / nt;
	for (uint32_t j = 0; j < f->n_features; j++)
		out->contrib[j] /= nt;
	out->bias = f->bias;
	for (uint32_t t = 0; t < nt; t++)
		sq += (v[t] - out->mean) * (v[t] - out->mean);
	out->sd = sqrt(sq / nt);
	/* Insertion sort: a forest has tens of trees. */
	for (uint32_t t = 1; t < nt; t++) {
		double k = v[t];
		uint32_t j = t;

		for (; j > 0 && v[j - 1] > k; j--)
			v[j] = v[j - 1];
		v[j] = k;
	}
	/* Nearest rank: the smallest value with at least q of them at or below it. */
	uint32_t rlo = (nt + 9) / 10, rhi = (9 * nt + 9) / 10;
	out->lo = v[rlo ? rlo - 1 : 0];
	out->hi = v[rhi ? rhi - 1 : 0];

	out->n_top = 0;
	for (int k = 0; k < 3; k++) {
		int pick = -1;

		for (uint32_t j = 0; j < f->n_features; j++) {
			int taken = 0;

			for (int q = 0; q < k; q++)
				taken |= out->top[q] == j;
			if (taken || out->contrib[j] == 0)
				continue;
			if (pick < 0 || fabs(out->contrib[j]) > fabs(out->contrib[pick]))
				pick = (int)j;
		}
		if (pick < 0)
			break;
		out->top[k] = (uint8_t)pick;
		out->n_top++;
	}
}

/* ----------------------------------------------------------------- checking */

/* The subtree rooted at i must span exactly [i, end). Depth is bounded by max_depth,
 * so the recursion is too. */
static int forest_check_sub(const struct ml_forest *f, uint32_t i, uint32_t end, uint32_t d,
			    char *err, size_t errlen)
{
	const struct ml_node *nd = &f->nodes[i];

	if (!isfinite(nd->value)) {
		snprintf(err, errlen, "node %u: value is not finite", i);
		return -1;
	}
	if (nd->feature == ML_FOREST_LEAF) {
		if (i + 1 != end) {
			snprintf(err, errlen, "node %u: a leaf with nodes after it in its subtree", i);
			return -1;
		}
		return 0;
	}
	if (d >= f->max_depth) {
		snprintf(err, errlen, "node %u: split below the maximum depth %u", i, f->max_depth);
		return -1;
	}
	if (nd->feature >= f->n_features) {
		snprintf(err, errlen, "node %u: feature %u out of range (%u features)", i,
			 nd->feature, f->n_features);
		return -1;
	}
	if (!isfinite(nd->threshold)) {
		snprintf(err, errlen, "node %u: threshold is not finite", i);
		return -1;
	}
	if (nd->right <= i + 1 || nd->right >= end) {
		snprintf(err, errlen, "node %u: right child %u outside its subtree (%u..%u)", i,
			 nd->right, i + 2, end - 1);
		return -1;
	}
	if (forest_check_sub(f, i + 1, nd->right, d + 1, err, errlen) < 0)
		return -1;
	return forest_check_sub(f, nd->right, end, d + 1, err, errlen);
}

int ml_forest_check(const struct ml_forest *f, char *err, size_t errlen)
{
	if (f->n_features == 0 || f->n_features > ML_FOREST_MAX_FEATURES || f->n_trees == 0 ||
	    f->n_trees > ML_FOREST_MAX_TREES || f->max_depth == 0 ||
	    f->max_depth > ML_FOREST_MAX_DEPTH || f->n_nodes > ML_FOREST_MAX_NODES) {
		snprintf(err, errlen, "forest: sizes out of range");
		return -1;
	}
	if (f->tree[0] != 0 || f->tree[f->n_trees] != f->n_nodes) {
		snprintf(err, errlen, "forest: trees do not cover the %u nodes", f->n_nodes);
		return -1;
	}
	for (uint32_t t = 0; t < f->n_trees; t++) {
		char sub[160];

		if (f->tree[t + 1] <= f->tree[t]) {
			snprintf(err, errlen, "tree %u: empty or out of order", t);
			return -1;
		}
		if (forest_check_sub(f, f->tree[t], f->tree[t + 1], 0, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "tree %u: %s", t, sub);
			return -1;
		}
	}
	return 0;
}

void ml_forest_free(struct ml_forest *f)
{
	free(f->tree);
	free(f->nodes);
	memset(f, 0, sizeof(*f));
}
