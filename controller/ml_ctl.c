/* lightspeed-controller: the ML selector's life in the controller (see ml_ctl.h).
 *
 * A training runs in libuv's thread pool (uv_queue_work): the worker builds the rows,
 * trains, measures the new model, the current one and the no-model baseline on the
 * same held-out rows, and saves the new model when it is better; the loop thread only
 * starts it, reports its progress (read from atomics every 250 ms, published as
 * `model` events) and installs the result. While a training runs nothing else
 * changes the current model, which the worker reads. */
#include "ml_ctl.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller.h"
#include "log.h"
#include "ml_data.h"
#include "ml_eval.h"
#include "ml_model.h"
#include "ml_probe.h"
#include "ml_record.h"
#include "ml_synth.h"
#include "ml_train.h"
#include "select_ml.h"
#include "util.h"

#define ML_HELDOUT 0.2
#define ML_RECORDED_EVERY_S 5.0 /* a row of the recorded history every 5 s */
#define ML_PROGRESS_MS 250

/* ---- configuration ------------------------------------------------------------ */

void ml_conf_defaults(struct ml_conf *c)
{
	c->retrain_every_s = 6 * 3600;
	c->samples_max_mb = 32;
	c->synthetic_rows = 100000;
	c->min_rows = 500;
}

const struct ls_conf_field ml_conf_fields[] = {
	{ "retrain_every_s", LS_CF_UINT, offsetof(struct ml_conf, retrain_every_s), 0, 0, 30 * 86400,
	  NULL },
	{ "samples_max_mb", LS_CF_UINT, offsetof(struct ml_conf, samples_max_mb), 0, 1, 4096, NULL },
	{ "synthetic_rows", LS_CF_UINT, offsetof(struct ml_conf, synthetic_rows), 0, 1000, 2000000,
	  NULL },
	{ "min_rows", LS_CF_UINT, offsetof(struct ml_conf, min_rows), 0, 10, 1000000, NULL },
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

void ml_conf_print(const struct ml_conf *c, FILE *f)
{
	fprintf(f, "\n[ml]\nretrain_every_s = %llu\nsamples_max_mb = %llu\nsynthetic_rows = %llu\n"
		"min_rows = %llu\n", (unsigned long long)c->retrain_every_s,
		(unsigned long long)c->samples_max_mb, (unsigned long long)c->synthetic_rows,
		(unsigned long long)c->min_rows);
}

/* ---- state ------------------------------------------------------------------ */

enum job_phase { JOB_DATA, JOB_TRAINING, JOB_CHECKING, JOB_CHOOSING, JOB_SAVING, JOB__COUNT };
static const char *const job_phase_names[JOB__COUNT] = { "data", "training", "checking",
							 "choosing", "saving" };

struct ml_job {
	uv_work_t req;
	struct ml_ctl *owner;
	/* in */
	char from[16], why[32];
	char dir[256], path[300];
	struct ml_conf conf;
	struct ml_forest_params params;
	const struct ml_model *current; /* read-only while the job runs; NULL: none */
	/* progress (written by the worker, read by the loop) */
	atomic_int phase, trees_done, trees, cancel;
	/* out */
	int rc;
	char err[400];
	struct ml_model model;
	size_t rows, train_rows, held_rows, bad_lines, synthetic_rows, recorded_rows;
	double mae, p95, base_mae, base_p95, cur_mae;
	bool cur_usable;       /* the current model is in use (read by the loop at the start) */
	int worse;             /* ml_model_worse_than_nearest of the new model */
	bool installed;
	uint64_t started_us;
	double seconds;
};

struct ml_ctl {
	struct ctrl *c;
	int refs;              /* the owner, both timers' handles, a running job */
	bool closing;
	struct ml_probe probe;
	struct select_ml sel;
	struct ml_record rec;
	char model_path[300];
	uv_timer_t progress, retrain;
	struct ml_job *job;
	int last_phase, last_trees;
	json_t *last_job;      /* the last training's result */
};

static void ml_unref(struct ml_ctl *m)
{
	if (--m->refs > 0)
		return;
	select_ml_free(&m->sel);
	json_decref(m->last_job);
	free(m);
}

static void ml_on_close(uv_handle_t *h)
{
	ml_unref(h->data);
}

/* ---- training (worker thread) ------------------------------------------------ */

static void job_progress(void *ctx, uint32_t done, uint32_t n)
{
	struct ml_job *j = ctx;

	atomic_store(&j->trees_done, (int)done);
	atomic_store(&j->trees, (int)n);
}

static int job_rows(struct ml_job *j, struct ml_data *d)
{
	bool syn = strcmp(j->from, "synthetic") == 0 || strcmp(j->from, "both") == 0;
	bool rec = strcmp(j->from, "recorded") == 0 || strcmp(j->from, "both") == 0;
	struct ml_window win;

	ml_features_window_default(&win);
	ml_data_init(d);
	if (rec) {
		struct ml_data r;

		ml_data_init(&r);
		if (ml_record_rows(j->dir, &win, ML_RECORDED_EVERY_S, &r, &j->bad_lines, j->err,
				   sizeof(j->err)) < 0 && !syn)
			return -1;
		/* Recorded histories' ids apart from synthetic ones: a split keeps each whole. */
		for (size_t i = 0; i < r.n; i++)
			r.group[i] |= 0x80000000u;
		j->recorded_rows = r.n;
		if (ml_data_append(d, &r) < 0) {
			ml_data_free(&r);
			snprintf(j->err, sizeof(j->err), "out of memory");
			return -1;
		}
		ml_data_free(&r);
	}
	if (syn) {
		struct ml_synth_conf sc;
		struct ml_data s;

		ml_synth_conf_default(&sc);
		if (ml_synth_dataset(&sc, j->conf.synthetic_rows, &j->cancel, &s, j->err, sizeof(j->err)) < 0)
			return -1;
		j->synthetic_rows = s.n;
		int r = ml_data_append(d, &s);
		ml_data_free(&s);
		if (r < 0) {
			snprintf(j->err, sizeof(j->err), "out of memory");
			return -1;
		}
	}
	j->rows = d->n;
	if (d->n < j->conf.min_rows) {
		snprintf(j->err, sizeof(j->err), "%zu rows from %s data, fewer than the %llu needed%s",
			 d->n, j->from, (unsigned long long)j->conf.min_rows,
			 rec && !syn ? " (record longer, or train --from synthetic or both)" : "");
		return -1;
	}
	return 0;
}

static void job_work(uv_work_t *req)
{
	struct ml_job *j = req->data;
	struct ml_forest_progress prog = { job_progress, j, &j->cancel };
	struct ml_data d, train, held;

	j->rc = -1;
	j->mae = j->p95 = j->base_mae = j->base_p95 = j->cur_mae = NAN;
	atomic_store(&j->phase, JOB_DATA);
	if (job_rows(j, &d) < 0) {
		ml_data_free(&d);
		return;
	}
	if (ml_data_split(&d, ML_HELDOUT, j->params.seed, &train, &held) < 0) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		ml_data_free(&d);
		return;
	}
	ml_data_free(&d);
	j->train_rows = train.n;
	j->held_rows = held.n;
	atomic_store(&j->phase, JOB_TRAINING);
	if (train.n < 2 || held.n == 0) {
		snprintf(j->err, sizeof(j->err), "%zu rows in too few histories to hold some out",
			 j->rows);
	} else if (ml_train_fit(&train, &j->params, &prog, &j->model, j->err, sizeof(j->err)) == 0) {
		atomic_store(&j->phase, JOB_CHECKING);
		ml_train_errors(&j->model, &held, &j->mae, &j->p95);
		ml_train_errors(NULL, &held, &j->base_mae, &j->base_p95);
		j->cur_mae = NAN;
		if (j->current) {
			double p;
			ml_train_errors(j->current, &held, &j->cur_mae, &p);
		}
		struct ml_model_meta *mt = &j->model.meta;
		mt->created = (uint64_t)time(NULL);
		snprintf(mt->source, sizeof(mt->source), "%s", j->from);
		mt->n_heldout = held.n;
		mt->mae_ms = j->mae;
		mt->p95_err_ms = j->p95;
		mt->base_mae_ms = j->base_mae;
		mt->base_p95_err_ms = j->base_p95;
		/* Its route choices against nearest's, on synthetic choices and on what this
		 * controller recorded (whatever the training's source: that is its network). */
		atomic_store(&j->phase, JOB_CHOOSING);
		struct ml_record_set rs;
		size_t bad;
		bool have_rec = ml_record_load(j->dir, &rs, &bad, j->err, sizeof(j->err)) == 0;
		j->rc = ml_eval_check(&j->model, have_rec ? &rs : NULL, &j->cancel, j->err,
				      sizeof(j->err));
		if (have_rec)
			ml_record_set_free(&rs);
		j->worse = ml_model_worse_than_nearest(mt);
		bool usable = j->mae < j->base_mae && j->worse == -1;
		j->installed = j->rc == 0 && ml_train_replaces(j->current != NULL, j->cur_usable,
							       j->cur_mae, usable, j->mae);
		if (j->installed) {
			atomic_store(&j->phase, JOB_SAVING);
			if (ml_model_save(j->path, &j->model, j->err, sizeof(j->err)) < 0)
				j->rc = -1;
		}
	}
	ml_data_free(&train);
	ml_data_free(&held);
}

/* ---- training (loop thread) ----------------------------------------------------- */

static json_t *num_or_null(double v)
{
	return isfinite(v) ? json_real(round(v * 1000) / 1000) : json_null();
}

/* The route-choice check of a model: per set, null where it was not judged. */
static json_t *check_json(const struct ml_model_meta *mt)
{
	json_t *o = json_object();

	for (unsigned s = 0; s < ML_CHECK__COUNT; s++) {
		const struct ml_model_check *c = &mt->check[s];

		json_object_set_new(o, ml_model_check_name(s),
				    c->decisions ? json_pack("{s:I,s:o,s:o,s:o}", "decisions",
							     (json_int_t)c->decisions, "ml_regret_ms",
							     num_or_null(c->ml_ms), "nearest_regret_ms",
							     num_or_null(c->nearest_ms), "difference_se_ms",
							     num_or_null(c->se_ms)) :
						   json_null());
	}
	return o;
}

static json_t *job_running_json(const struct ml_job *j)
{
	int ph = atomic_load(&j->phase);

	return json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:f}", "state", "training", "from", j->from,
			 "why", j->why, "phase", job_phase_names[ph >= 0 && ph < JOB__COUNT ? ph : 0],
			 "trees_done", atomic_load(&j->trees_done), "trees", atomic_load(&j->trees),
			 "elapsed_s", (double)(ls_now_us() - j->started_us) / 1e6);
}

static void on_progress(uv_timer_t *t)
{
	struct ml_ctl *m = t->data;
	struct ml_job *j = m->job;

	if (!j)
		return;
	int ph = atomic_load(&j->phase), tr = atomic_load(&j->trees_done);
	if (ph == m->last_phase && tr == m->last_trees)
		return;
	m->last_phase = ph;
	m->last_trees = tr;
	ctrl_publish(m->c, "model", job_running_json(j));
}

static void job_done(uv_work_t *req, int status)
{
	struct ml_job *j = req->data;
	struct ml_ctl *m = j->owner;
	const char *state;

	if (status == UV_ECANCELED || atomic_load(&j->cancel))
		state = "cancelled";
	else if (j->rc < 0)
		state = "failed";
	else
		state = j->installed ? "installed" : "kept";
	j->seconds = (double)(ls_now_us() - j->started_us) / 1e6;
	if (!m->closing) {
		char msg[600];

		char verdict[200] = "";
		const struct ml_model_check *sc = &j->model.meta.check[ML_CHECK_SCENARIO];

		if (j->rc == 0 && !(j->mae < j->base_mae))
			snprintf(verdict, sizeof(verdict), "it does not beat the baseline");
		else if (j->rc == 0 && j->worse >= 0)
			snprintf(verdict, sizeof(verdict), "it chooses routes worse than nearest on the "
				 "%s set (mean regret %.2f ms against %.2f ms)",
				 ml_model_check_name((unsigned)j->worse), j->model.meta.check[j->worse].ml_ms,
				 j->model.meta.check[j->worse].nearest_ms);
		if (j->rc < 0)
			snprintf(msg, sizeof(msg), "training from %s data %s: %s", j->from, state, j->err);
		else if (j->installed)
			snprintf(msg, sizeof(msg), "trained a model on %zu rows of %s data in %.1f s: "
				 "held-out MAE %.2f ms (baseline %.2f ms), route regret %.2f ms when a "
				 "node degrades (nearest %.2f ms); installed%s%s", j->train_rows, j->from,
				 j->seconds, j->mae, j->base_mae, sc->ml_ms, sc->nearest_ms,
				 verdict[0] ? ", but not used: " : "", verdict);
		else if (verdict[0])
			snprintf(msg, sizeof(msg), "trained a model on %zu rows of %s data: %s; kept the "
				 "current one, which is in use", j->train_rows, j->from, verdict);
		else
			snprintf(msg, sizeof(msg), "trained a model on %zu rows of %s data: held-out MAE "
				 "%.2f ms, but the current model's is %.2f ms on the same rows: kept the "
				 "current one", j->train_rows, j->from, j->mae, j->cur_mae);
		if (j->rc < 0 && strcmp(j->why, "schedule") == 0)
			ls_info("%s", msg);
		else if (j->rc < 0)
			ls_warn("%s", msg);
		else
			ls_info("%s", msg);
		json_decref(m->last_job);
		m->last_job = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:f,s:o,s:o}",
					"state",
					state, "from", j->from, "why", j->why, "message", msg, "rows",
					(json_int_t)j->rows, "train_rows", (json_int_t)j->train_rows,
					"heldout_rows", (json_int_t)j->held_rows, "recorded_rows",
					(json_int_t)j->recorded_rows, "bad_lines", (json_int_t)j->bad_lines,
					"mae_ms", num_or_null(j->rc == 0 ? j->mae : NAN), "baseline_mae_ms",
					num_or_null(j->rc == 0 ? j->base_mae : NAN), "current_mae_ms",
					num_or_null(j->cur_mae), "installed",
					json_boolean(j->rc == 0 && j->installed), "seconds", j->seconds,
					"route_check", j->rc == 0 ? check_json(&j->model.meta) : json_null(),
					"worse_on", j->rc == 0 && j->worse >= 0 ?
						json_string(ml_model_check_name((unsigned)j->worse)) : json_null());
		if (j->rc == 0 && j->installed)
			select_ml_set_model(&m->sel, &j->model, NULL);
		ctrl_publish(m->c, "model", json_deep_copy(m->last_job));
		uv_timer_stop(&m->progress);
	}
	if (j->model.forest.nodes)
		ml_model_free(&j->model);
	m->job = NULL;
	free(j);
	ml_unref(m);
}

static enum ls_rc ml_start(struct ml_ctl *m, const char *from, const char *why, char *msg,
			   size_t msglen)
{
	struct ctrl *c = m->c;
	struct ml_job *j;

	if (strcmp(from, "synthetic") != 0 && strcmp(from, "recorded") != 0 &&
	    strcmp(from, "both") != 0) {
		snprintf(msg, msglen, "from: \"%.32s\" is not synthetic, recorded or both", from);
		return LS_RC_INVALID;
	}
	if (m->job) {
		snprintf(msg, msglen, "a training from %s data is running (lsctl model status)",
			 m->job->from);
		return LS_RC_CONFLICT;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		snprintf(msg, msglen, "out of memory");
		return LS_RC_INTERNAL;
	}
	j->req.data = j;
	j->owner = m;
	snprintf(j->from, sizeof(j->from), "%s", from);
	snprintf(j->why, sizeof(j->why), "%s", why);
	snprintf(j->dir, sizeof(j->dir), "%s", c->conf.state_dir);
	snprintf(j->path, sizeof(j->path), "%s", m->model_path);
	j->conf = c->conf.ml;
	ml_forest_params_default(&j->params);
	j->current = m->sel.have_model ? &m->sel.model : NULL;
	j->cur_usable = m->sel.usable;
	atomic_store(&j->trees, (int)j->params.n_trees);
	j->started_us = ls_now_us();
	if (uv_queue_work(c->loop, &j->req, job_work, job_done) < 0) {
		free(j);
		snprintf(msg, msglen, "cannot start a worker");
		return LS_RC_INTERNAL;
	}
	m->job = j;
	m->refs++;
	m->last_phase = m->last_trees = -1;
	uv_timer_start(&m->progress, on_progress, ML_PROGRESS_MS, ML_PROGRESS_MS);
	ls_info("training a model from %s data (%s)", from, why);
	ctrl_publish(c, "model", job_running_json(j));
	snprintf(msg, msglen, "training from %s data", from);
	return LS_RC_OK;
}

enum ls_rc ml_ctl_train(struct ctrl *c, const char *from, char *msg, size_t msglen)
{
	return ml_start(c->ml, from ? from : "synthetic", "request", msg, msglen);
}

static void on_retrain(uv_timer_t *t)
{
	struct ml_ctl *m = t->data;
	char msg[256];

	if (!m->job && ml_start(m, "recorded", "schedule", msg, sizeof(msg)) != LS_RC_OK)
		ls_info("scheduled retraining: %s", msg);
}

/* ---- strategy --------------------------------------------------------------- */

enum ls_rc ml_ctl_set_strategy(struct ctrl *c, const char *name, char *msg, size_t msglen)
{
	if (!name || (strcmp(name, "ml") != 0 && strcmp(name, "nearest") != 0)) {
		snprintf(msg, msglen, "strategy: \"%.32s\" is not ml or nearest", name ? name : "");
		return LS_RC_INVALID;
	}
	if (strcmp(c->sel.name, name) != 0) {
		c->sel = strcmp(name, "ml") == 0 ? select_ml(&c->ml->sel) : select_nearest(&c->conf.nearest);
		/* Streaks were measured in the other strategy's scores. */
		memset(&c->sel_state.beat_since, 0, sizeof(c->sel_state.beat_since));
		ls_info("strategy: %s%s%s", name, strcmp(name, "ml") == 0 ? "; " : "",
			strcmp(name, "ml") == 0 ? c->ml->sel.status : "");
		ctrl_publish(c, "strategy", ml_ctl_routes_json(c));
	}
	snprintf(c->conf.strategy, sizeof(c->conf.strategy), "%s", name);
	snprintf(msg, msglen, "strategy %s", name);
	return LS_RC_OK;
}

/* ---- lifetime --------------------------------------------------------------- */

static void ml_load(struct ml_ctl *m)
{
	struct ml_window win;
	struct ml_model model;
	char err[512], reason[600];

	ml_features_window_default(&win);
	if (ml_model_load(m->model_path, &win, &model, err, sizeof(err)) == 0) {
		select_ml_set_model(&m->sel, &model, NULL);
		ls_info("model: %s", m->sel.status);
		return;
	}
	if (access(m->model_path, F_OK) != 0 && errno == ENOENT) {
		char msg[256];

		snprintf(reason, sizeof(reason), "no model yet: training one from synthetic data");
		select_ml_set_model(&m->sel, NULL, reason);
		ml_start(m, "synthetic", "no model", msg, sizeof(msg));
		return;
	}
	snprintf(reason, sizeof(reason), "model file refused: %s", err);
	select_ml_set_model(&m->sel, NULL, reason);
	ls_warn("%s; the ml strategy scores as nearest until a model is trained "
		"(lsctl model train)", reason);
}

struct ml_ctl *ml_ctl_open(struct ctrl *c)
{
	struct ml_ctl *m = calloc(1, sizeof(*m));
	char err[512], msg[128];

	if (!m)
		return NULL;
	m->c = c;
	m->refs = 3;
	c->ml = m;
	ml_probe_init(&m->probe, ls_now_us());
	select_ml_init(&m->sel, &c->conf.nearest, &m->probe);
	m->progress.data = m->retrain.data = m;
	uv_timer_init(c->loop, &m->progress);
	uv_timer_init(c->loop, &m->retrain);
	if (ml_model_path(c->conf.state_dir, m->model_path, sizeof(m->model_path)) < 0)
		snprintf(m->model_path, sizeof(m->model_path), "%s", ML_MODEL_FILE);
	if (ml_record_open(&m->rec, c->conf.state_dir, c->conf.ml.samples_max_mb << 20, err,
			   sizeof(err)) < 0)
		ls_warn("recorded history off: %s", err);
	ml_load(m);
	if (c->conf.ml.retrain_every_s)
		uv_timer_start(&m->retrain, on_retrain, c->conf.ml.retrain_every_s * 1000,
			       c->conf.ml.retrain_every_s * 1000);
	ml_ctl_set_strategy(c, c->conf.strategy, msg, sizeof(msg));
	return m;
}

void ml_ctl_close(struct ml_ctl *m)
{
	if (!m)
		return;
	m->closing = true;
	if (m->job)
		atomic_store(&m->job->cancel, 1);
	ml_record_close(&m->rec);
	uv_timer_stop(&m->progress);
	uv_timer_stop(&m->retrain);
	uv_close((uv_handle_t *)&m->progress, ml_on_close);
	uv_close((uv_handle_t *)&m->retrain, ml_on_close);
	m->c->ml = NULL;
	ml_unref(m);
}

void ml_ctl_round(struct ml_ctl *m, const struct select_cand *c, size_t n, uint64_t now_us)
{
	struct ml_probe_rec recs[SELECT_MAX];
	unsigned k;

	if (!m)
		return;
	k = ml_probe_round(&m->probe, c, n, now_us, recs);
	if (k && m->rec.f) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		for (unsigned i = 0; i < k; i++) {
			const struct ml_probe_node *pn = &m->probe.node[recs[i].slot];

			ml_record_add(&m->rec, wall_ms, pn->name, recs[i].rtt_ms, recs[i].load, pn->hops,
				      pn->as_path_len, pn->distance_km);
		}
		if (m->rec.failed)
			ls_warn("recorded history off: %s", m->rec.err);
	}
	ml_record_flush(&m->rec, now_us, false);
}

/* ---- the API's views -------------------------------------------------------------- */

static void iso_time(uint64_t unix_s, char *buf, size_t len)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

json_t *ml_ctl_routes_json(const struct ctrl *c)
{
	const struct ml_ctl *m = c->ml;
	bool in_use = m && strcmp(c->sel.name, "ml") == 0 && m->sel.usable;

	return json_pack("{s:s,s:b,s:s}", "strategy", c->sel.name, "in_use", in_use, "status",
			 m ? m->sel.status : "off");
}

json_t *ml_ctl_status_json(const struct ctrl *c)
{
	const struct ml_ctl *m = c->ml;
	json_t *o = ml_ctl_routes_json(c), *model = json_null();

	if (!m)
		return o;
	if (m->sel.have_model) {
		const struct ml_model_meta *mt = &m->sel.model.meta;
		char created[32];

		iso_time(mt->created, created, sizeof(created));
		model = json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:I,s:I,s:o,s:o,s:o,s:o,s:b}", "file",
				  m->model_path, "source", mt->source, "created", created, "trees",
				  (int)m->sel.model.forest.n_trees, "nodes", (int)m->sel.model.forest.n_nodes,
				  "max_depth", (int)mt->params.max_depth, "train_rows",
				  (json_int_t)mt->n_train, "heldout_rows", (json_int_t)mt->n_heldout,
				  "mae_ms", num_or_null(mt->mae_ms), "p95_error_ms",
				  num_or_null(mt->p95_err_ms), "baseline_mae_ms",
				  num_or_null(mt->base_mae_ms), "baseline_p95_error_ms",
				  num_or_null(mt->base_p95_err_ms), "beats_baseline",
				  isfinite(mt->mae_ms) && isfinite(mt->base_mae_ms) &&
					  mt->mae_ms < mt->base_mae_ms);
		int worse = ml_model_worse_than_nearest(mt);
		json_object_set_new(model, "route_check", check_json(mt));
		json_object_set_new(model, "worse_on", worse >= 0 ?
				    json_string(ml_model_check_name((unsigned)worse)) : json_null());
		json_object_set_new(model, "used", json_boolean(m->sel.usable));
	}
	json_object_set_new(o, "model", model);
	json_object_set_new(o, "training", m->job ? job_running_json(m->job) : json_null());
	json_object_set_new(o, "last_training", m->last_job ? json_deep_copy(m->last_job) : json_null());
	json_object_set_new(o, "recorded",
			    json_pack("{s:s,s:b,s:I,s:I,s:o}", "file", m->rec.path, "recording",
				      m->rec.f != NULL, "records", (json_int_t)m->rec.records, "bytes",
				      (json_int_t)m->rec.bytes,
				      "error", m->rec.failed ? json_string(m->rec.err) : json_null()));
	json_object_set_new(o, "retrain_every_s", json_integer((json_int_t)c->conf.ml.retrain_every_s));
	return o;
}

json_t *ml_ctl_prediction_json(const struct ctrl *c, int slot)
{
	const struct ml_ctl *m = c->ml;

	if (!m || strcmp(c->sel.name, "ml") != 0 || slot < 0 || slot >= SELECT_MAX ||
	    !m->sel.pred[slot].valid)
		return json_null();
	const struct select_ml_pred *p = &m->sel.pred[slot];
	json_t *top = json_array();
	for (unsigned k = 0; k < p->n_top; k++)
		json_array_append_new(top, json_pack("{s:s,s:o}", "feature", ml_features_name(p->top[k]),
						     "ms", num_or_null(p->top_ms[k])));
	return json_pack("{s:o,s:o,s:o,s:o}", "p95_ms", num_or_null(p->p95_ms), "low_ms",
			 num_or_null(p->low_ms), "high_ms", num_or_null(p->high_ms), "top_features",
			 top);
}

const char *ml_ctl_state_dir(const struct ctrl *c)
{
	return c->conf.state_dir;
}
