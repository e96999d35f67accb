/* Training: a model from a training set (the forest learns the next 30 s's p95 as a
 * change from the historical p95, see ml_model.h), and the held-out check: split a set
 * by history, train on one part, measure on the other against the baseline that needs
 * no model (a node's next 30 s look like its last 120 s: its historical p95). */
#ifndef LS_ML_TRAIN_H
#define LS_ML_TRAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "ml_data.h"
#include "ml_forest.h"
#include "ml_model.h"

struct ml_train_report {
	size_t n_train, n_heldout;
	double mae_ms, p95_err_ms;           /* the model on the held-out rows */
	double base_mae_ms, base_p95_err_ms; /* the baseline on the same rows */
	double seconds;                      /* training time (wall clock) */
};

/* Train a model on every row of d; its meta says the parameters, the default window
 * and the row count (the caller fills source, created and the errors). 0, or -1 with
 * a message (m is then empty). */
int ml_train_fit(const struct ml_data *d, const struct ml_forest_params *p,
		 const struct ml_forest_progress *progress, struct ml_model *m, char *err,
		 size_t errlen);

/* Mean and p95 absolute error on d of the model m, or with m NULL of the baseline (the
 * row's historical p95). Allocates d->n doubles; NAN for an empty set or when out of
 * memory. */
void ml_train_errors(const struct ml_model *m, const struct ml_data *d, double *mae, double *p95);

/* Split d (a `heldout` share of its histories, seeded by p->seed), fit on the rest,
 * measure both on the held-out part, and record the errors in m's meta. heldout 0:
 * every row trains, the errors are NAN. 0, or -1 with a message. */
int ml_train_run(const struct ml_data *d, const struct ml_forest_params *p, double heldout,
		 const struct ml_forest_progress *progress, struct ml_model *m,
		 struct ml_train_report *rep, char *err, size_t errlen);

/* Whether the report shows the model better than the baseline on held-out rows. */
int ml_train_beats_baseline(const struct ml_train_report *rep);

/* Whether a newly trained model replaces the current one (have_current false: there is
 * none). Both MAEs are measured on the new training's held-out rows; "usable" means
 * in use: better than the baseline and not worse than nearest. A model in use is
 * replaced only by one in use with a lower held-out error; a model not in use by one
 * in use, or by one not in use with a lower error. An error that is not a number
 * (the current model could not be measured) loses. */
bool ml_train_replaces(bool have_current, bool cur_usable, double cur_mae, bool usable,
		       double mae);

#endif
