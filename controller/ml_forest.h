/* A random-forest regressor: CART trees grown on variance reduction, each on a
 * bootstrap sample of the rows, trying a random subset of the features at every split
 * (max_features), limited in depth and leaf size, all driven by one seed.
 *
 * Training allocates (control path, may run in a worker thread: no globals, no I/O).
 * Inference never allocates, never fails, and walks at most max_depth nodes per tree;
 * besides the prediction it gives the spread of the trees' predictions (an interval)
 * and each feature's contribution to this one prediction (the path decomposition of
 * every tree: at each split the change of the node mean is credited to the split's
 * feature; the contributions plus the bias add up to the prediction).
 *
 * The rules follow CART as scikit-learn's RandomForestRegressor implements it, so that
 * the two can be compared with the same hyper-parameters: a node is split only if it
 * holds at least min_samples_split distinct rows and is shallower than max_depth; a
 * split leaves at least min_samples_leaf distinct rows on each side; thresholds lie
 * midway between two neighbouring distinct values (closer than 1e-7 counts as equal);
 * bootstrap duplicates are weights; the features are drawn without replacement until
 * max_features have been looked at, going on past constant ones until one varies. */
#ifndef LS_ML_FOREST_H
#define LS_ML_FOREST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ML_FOREST_MAX_FEATURES 32
#define ML_FOREST_MAX_TREES 1024
#define ML_FOREST_MAX_DEPTH 32
#define ML_FOREST_MAX_NODES (1u << 24)
#define ML_FOREST_LEAF 0xffffu

struct ml_forest_params {
	uint32_t n_trees;           /* 1..ML_FOREST_MAX_TREES */
	uint32_t max_depth;         /* 1..ML_FOREST_MAX_DEPTH (the root is depth 0) */
	uint32_t min_samples_split; /* >= 2 distinct rows to split a node */
	uint32_t min_samples_leaf;  /* >= 1 distinct rows on each side of a split */
	uint32_t max_features;      /* features looked at per split; 0: all of them */
	uint32_t bootstrap;         /* 1: n draws with replacement per tree; 0: every row once */
	uint64_t seed;
};

/* The defaults: the original design's forest (10 trees, split from 10 rows, seed 42)
 * grown 12 levels deep instead of 8, and every feature tried at each split
 * (scikit-learn's default for regression). On the benchmark's held-out synthetic set
 * depth 12 predicts better and chooses routes with less regret than depth 8, and
 * trying a subset of the features did no better. */
void ml_forest_params_default(struct ml_forest_params *p);
/* 0, or -1 with a message naming the bad parameter. */
int ml_forest_params_check(const struct ml_forest_params *p, uint32_t n_features, char *err,
			   size_t errlen);

struct ml_node {
	double threshold; /* x[feature] <= threshold: left child (the next node), else right */
	double value;     /* (weighted) mean target of the training rows that reached it */
	uint32_t right;   /* index of the right child in ml_forest.nodes */
	uint16_t feature; /* ML_FOREST_LEAF for a leaf */
	uint16_t reserved;
};

struct ml_forest {
	uint32_t n_features, n_trees, n_nodes, max_depth;
	uint32_t *tree;        /* n_trees + 1 offsets: tree t is nodes[tree[t] .. tree[t+1]) */
	struct ml_node *nodes; /* each tree in preorder: a node's left child follows it */
	double bias;           /* mean of the roots' values: the prediction before any split */
};

struct ml_pred {
	double mean;   /* the prediction: the mean of the trees' predictions */
	double sd;     /* standard deviation of the trees' predictions */
	double lo, hi; /* 10th and 90th percentile of the trees' predictions */
	double bias;   /* bias + sum(contrib) == mean */
	double contrib[ML_FOREST_MAX_FEATURES];
	uint8_t top[3]; /* the features of the largest |contrib|, largest first */
	uint8_t n_top;  /* < 3 when fewer features lie on the paths */
};

/* Progress and cancellation of a training that runs in a worker thread. */
struct ml_forest_progress {
	void (*fn)(void *ctx, uint32_t trees_done, uint32_t n_trees); /* after every tree */
	void *ctx;
	const atomic_int *cancel; /* non-zero: stop after the current tree */
};

/* Train on n rows of n_features values (row-major, x[i * n_features + j]) and targets
 * y[i]; every value must be finite. Return 0, or -1 with a message (bad input or
 * parameters, out of memory, cancelled); f is then empty. */
int ml_forest_train(struct ml_forest *f, const double *x, const double *y, size_t n,
		    uint32_t n_features, const struct ml_forest_params *p,
		    const struct ml_forest_progress *progress, char *err, size_t errlen);

/* The prediction alone (the fast path) and the prediction with its spread and the
 * contributions. x holds n_features finite values. No allocation. */
double ml_forest_predict_mean(const struct ml_forest *f, const double *x);
void ml_forest_predict(const struct ml_forest *f, const double *x, struct ml_pred *out);

/* Check the structure of a forest built elsewhere (a loaded file): every tree a proper
 * binary tree in preorder within its range, no deeper than max_depth, features in
 * range, thresholds and values finite. 0, or -1 with the first fault. Inference on a
 * forest that passed is safe. */
int ml_forest_check(const struct ml_forest *f, char *err, size_t errlen);

void ml_forest_free(struct ml_forest *f);

#endif
