/* The model: a trained forest, how its output becomes a prediction, and what it was
 * trained on; and its file, in the state directory
 * (ML_MODEL_FILE), in a versioned little-endian format ending in a SHA-256 of all the
 * bytes before it. docs/ml.md describes it byte by byte. A file that is truncated,
 * damaged, of another format version, or made for other features or another feature
 * window is refused with a message that says which and what to do; nothing of it is
 * used then.
 *
 * Format version 2 (version 1 lacked the route-choice check):
 *
 *   off  size  field
 *     0     8  magic "LSFOREST"
 *     8     4  format version (1)
 *    12     4  n_features (11)          16  4  n_trees (1..1024)
 *    20     4  n_nodes (n_trees..2^24)  24  4  max_depth (1..32)
 *    28     4  min_samples_split        32  4  min_samples_leaf
 *    36     4  max_features (0: all)    40  4  bootstrap (0 or 1)
 *    44     4  base feature (0xffffffff: none)            48  8  seed
 *    56     8  created, Unix seconds    64 16  source: "synthetic", "recorded", "both"
 *    80     8  training rows            88  8  held-out rows
 *    96     8  held-out MAE, ms (f64)  104  8  held-out p95 absolute error, ms
 *   112     8  baseline MAE, ms        120  8  baseline p95 absolute error, ms
 *   128     8  history window, s       136  8  current-latency window, s
 *   144     8  horizon, s              152  4  minimum answered probes in the horizon
 *   156     4  reserved, 0
 *   160    96  route-choice check (ml_eval.c), for the synthetic steady, synthetic
 *              scenario and recorded sets in turn, 32 bytes each: decisions judged
 *              (u64; 0: not judged there), nearest's mean regret, ml's, and the
 *              standard error of their difference (f64 ms; NaN when not judged, the
 *              error NaN too when it could not be estimated)
 *   256  24 F  feature names, NUL-padded, in the order of ml_features.h
 *     .   4 T  first node of each tree
 *     .  24 N  nodes: threshold f64, value f64, right child u32, feature u16
 *              (0xffff: leaf), reserved u16 (0); each tree in preorder
 *     .    32  SHA-256 of every byte before it
 *
 * f64 is an IEEE 754 double. An unknown error metric (none held out) is a NaN.
 *
 * With a base feature, the forest predicts the target's difference from that feature
 * (the next 30 s's p95 minus the historical p95: trees are piecewise constant, and
 * learn a change far better than the identity), and the prediction is the feature's
 * value plus the forest's output. */
#ifndef LS_ML_MODEL_H
#define LS_ML_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ml_features.h"
#include "ml_forest.h"

#define ML_MODEL_FILE "ml-model.bin"
#define ML_MODEL_VERSION 2
#define ML_MODEL_HEADER_BYTES 256 /* where the feature names begin */
#define ML_MODEL_MAX_BYTES (64u << 20)

#define ML_MODEL_BASE_NONE 0xffffffffu

/* The route-choice check: the model's choices against nearest's on each kind of data
 * (ml_eval.c), through the controller's own selection code. */
enum ml_check_set { ML_CHECK_STEADY, ML_CHECK_SCENARIO, ML_CHECK_RECORDED, ML_CHECK__COUNT };
struct ml_model_check {
	uint64_t decisions;      /* 0: not judged on this set */
	double nearest_ms, ml_ms; /* mean regret of each; NAN when not judged */
	double se_ms;            /* standard error of ml_ms - nearest_ms; NAN: unknown */
};
/* "steady", "scenario", "recorded". */
const char *ml_model_check_name(unsigned set);
struct ml_model_meta;
/* What the route-choice check says of a model: ML_CHECK_* of the first set where its
 * mean regret is above nearest's by more than twice the standard error of the
 * difference (by anything, when that is unknown): worse beyond the noise of the check;
 * -1 when it is nowhere worse, -2 when it was judged nowhere (not checked). */
int ml_model_worse_than_nearest(const struct ml_model_meta *mt);

struct ml_model_meta {
	uint32_t base;    /* ML_MODEL_BASE_NONE or the feature the forest's output adds to */
	uint64_t created; /* Unix seconds */
	char source[16];  /* "synthetic", "recorded" or "both" */
	uint64_t n_train, n_heldout;
	double mae_ms, p95_err_ms, base_mae_ms, base_p95_err_ms;
	struct ml_model_check check[ML_CHECK__COUNT];
	struct ml_forest_params params;
	struct ml_window window;
};

struct ml_model {
	struct ml_forest forest;
	struct ml_model_meta meta;
};

/* The prediction for features x (ml_forest_predict with the base added to the mean and
 * the interval), and the mean alone. No allocation. */
void ml_model_predict(const struct ml_model *m, const double x[ML_NFEAT], struct ml_pred *out);
double ml_model_predict_mean(const struct ml_model *m, const double x[ML_NFEAT]);

/* The file's bytes (malloc'd; the caller frees). 0, or -1 when out of memory. */
int ml_model_encode(const struct ml_model *m, uint8_t **buf, size_t *len);
/* Parse and check len bytes. win is the feature window this controller uses (a model
 * made for another is refused). 0, or -1 with the reason; m is then empty. */
int ml_model_decode(const uint8_t *buf, size_t len, const struct ml_window *win,
		    struct ml_model *m, char *err, size_t errlen);

/* Write atomically (a temporary file, fsync, rename): a crash leaves the old file or
 * the new one, never half of one. 0, or -1 with a message naming the path. */
int ml_model_save(const char *path, const struct ml_model *m, char *err, size_t errlen);
/* Read and decode; messages start with the path. */
int ml_model_load(const char *path, const struct ml_window *win, struct ml_model *m, char *err,
		  size_t errlen);
/* dir + "/" + ML_MODEL_FILE into out. 0, or -1 when it does not fit. */
int ml_model_path(const char *dir, char *out, size_t outlen);

void ml_model_free(struct ml_model *m);

#endif
