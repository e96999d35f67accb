/* Training and the held-out check. See ml_train.h. */
#include "ml_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The feature the forest's output adds to. */
#define TRAIN_BASE ML_F_P95_MS

static double train_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int ml_train_fit(const struct ml_data *d, const struct ml_forest_params *p,
		 const struct ml_forest_progress *progress, struct ml_model *m, char *err,
		 size_t errlen)
{
	double *r = d->n ? malloc(d->n * sizeof(*r)) : NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!r) {
		snprintf(err, errlen, d->n ? "training: out of memory" : "training: no rows");
		return -1;
	}
	for (size_t i = 0; i < d->n; i++)
		r[i] = d->y[i] - d->x[i * ML_NFEAT + TRAIN_BASE];
	rc = ml_forest_train(&m->forest, d->x, r, d->n, ML_NFEAT, p, progress, err, errlen);
	free(r);
	if (rc < 0)
		return -1;
	m->meta.base = TRAIN_BASE;
	m->meta.params = *p;
	m->meta.n_train = d->n;
	m->meta.mae_ms = m->meta.p95_err_ms = m->meta.base_mae_ms = m->meta.base_p95_err_ms = NAN;
	for (unsigned s = 0; s < ML_CHECK__COUNT; s++)
		m->meta.check[s] = (struct ml_model_check){ 0, NAN, NAN, NAN };
	ml_features_window_default(&m->meta.window);
	return 0;
}

void ml_train_errors(const struct ml_model *m, const struct ml_data *d, double *mae, double *p95)
{
	double *e = d->n ? malloc(d->n * sizeof(*e)) : NULL;
	double sum = 0;

	*mae = *p95 = NAN;
	if (!e)
		return;
	for (size_t i = 0; i < d->n; i++) {
		const double *x = d->x + i * ML_NFEAT;
		double pred = m ? ml_model_predict_mean(m, x) : x[TRAIN_BASE];

		e[i] = fabs(pred - d->y[i]);
		sum += e[i];
	}
	*mae = sum / (double)d->n;
	*p95 = ml_features_quantile(e, d->n, 0.95);
	free(e);
}

int ml_train_run(const struct ml_data *d, const struct ml_forest_params *p, double heldout,
		 const struct ml_forest_progress *progress, struct ml_model *m,
		 struct ml_train_report *rep, char *err, size_t errlen)
{
	struct ml_data train, held;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rep->mae_ms = rep->p95_err_ms = rep->base_mae_ms = rep->base_p95_err_ms = NAN;
	if (heldout > 0) {
		if (ml_data_split(d, heldout, p->seed, &train, &held) < 0) {
			snprintf(err, errlen, "training: out of memory splitting %zu rows", d->n);
			return -1;
		}
	} else {
		train = *d;
		ml_data_init(&held);
	}
	rep->n_train = train.n;
	rep->n_heldout = held.n;
	double t0 = train_now_s();
	rc = ml_train_fit(&train, p, progress, m, err, errlen);
	rep->seconds = train_now_s() - t0;
	if (rc == 0 && held.n) {
		ml_train_errors(m, &held, &rep->mae_ms, &rep->p95_err_ms);
		ml_train_errors(NULL, &held, &rep->base_mae_ms, &rep->base_p95_err_ms);
		m->meta.n_heldout = held.n;
		m->meta.mae_ms = rep->mae_ms;
		m->meta.p95_err_ms = rep->p95_err_ms;
		m->meta.base_mae_ms = rep->base_mae_ms;
		m->meta.base_p95_err_ms = rep->base_p95_err_ms;
	}
	if (heldout > 0)
		ml_data_free(&train);
	ml_data_free(&held);
	return rc;
}

int ml_train_beats_baseline(const struct ml_train_report *rep)
{
	return isfinite(rep->mae_ms) && isfinite(rep->base_mae_ms) && rep->mae_ms < rep->base_mae_ms;
}

bool ml_train_replaces(bool have_current, bool cur_usable, double cur_mae, bool usable,
		       double mae)
{
	if (!have_current)
		return true;
	if (usable != cur_usable)
		return usable;
	if (!isfinite(mae))
		return false;
	return !isfinite(cur_mae) || mae < cur_mae;
}
