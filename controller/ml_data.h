/* A training set: rows of the 11 features (ml_features.h) with their target, each
 * tagged with the probe history (a node's timeline) it came from, so that a held-out
 * split keeps every history on one side and the held-out error is not flattered by
 * near-copies of training rows. Also its CSV form (what the benchmark hands to
 * scikit-learn, and a way to inspect a set). */
#ifndef LS_ML_DATA_H
#define LS_ML_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ml_features.h"

struct ml_data {
	size_t n, cap;
	double *x;       /* n rows of ML_NFEAT */
	double *y;       /* n targets (ms) */
	uint32_t *group; /* n history ids */
};

void ml_data_init(struct ml_data *d);
void ml_data_free(struct ml_data *d);
/* Append one row. 0, or -1 when out of memory. */
int ml_data_add(struct ml_data *d, const double x[ML_NFEAT], double y, uint32_t group);
/* Append every row of src. 0 or -1. */
int ml_data_append(struct ml_data *d, const struct ml_data *src);

/* Rows of a probe history: the features and target every every_s seconds once a
 * full history window has passed (rows without a target are skipped), all tagged
 * `group`. 0, or -1 when out of memory. */
int ml_data_add_series(struct ml_data *d, const struct ml_series *s, const struct ml_window *w,
		       double every_s, uint32_t group);

/* Split by history: a history goes to `held` with probability frac (seeded), else to
 * `train`. Both are initialised here. 0, or -1 when out of memory. */
int ml_data_split(const struct ml_data *d, double frac, uint64_t seed, struct ml_data *train,
		  struct ml_data *held);

/* CSV with a header line (the 11 feature names, then p95_next_30s_ms, then group).
 * 0, or -1 with a message. */
int ml_data_write_csv(const struct ml_data *d, const char *path, char *err, size_t errlen);
int ml_data_read_csv(struct ml_data *d, const char *path, char *err, size_t errlen);

#endif
