/* lightspeed-controller: the `ml` selector (see select_ml.h). */
#include "select_ml.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void select_ml_init(struct select_ml *m, struct select_nearest_conf *nearest,
		    const struct ml_probe *probe)
{
	memset(m, 0, sizeof(*m));
	m->nearest = nearest;
	m->probe = probe;
	snprintf(m->status, sizeof(m->status), "no model yet: lsctl model train");
}

void select_ml_free(struct select_ml *m)
{
	if (m->have_model)
		ml_model_free(&m->model);
	m->have_model = m->usable = false;
}

void select_ml_set_model(struct select_ml *m, struct ml_model *model, const char *reason)
{
	select_ml_free(m);
	memset(m->pred, 0, sizeof(m->pred));
	if (!model) {
		snprintf(m->status, sizeof(m->status), "%s", reason ? reason : "no model");
		return;
	}
	m->model = *model;
	memset(model, 0, sizeof(*model));
	m->have_model = true;
	const struct ml_model_meta *mt = &m->model.meta;
	if (!(isfinite(mt->mae_ms) && isfinite(mt->base_mae_ms) && mt->mae_ms < mt->base_mae_ms)) {
		snprintf(m->status, sizeof(m->status),
			 "the model does not beat the no-model baseline on its held-out rows "
			 "(MAE %.2f ms against %.2f ms): not used", mt->mae_ms, mt->base_mae_ms);
		return;
	}
	int worse = ml_model_worse_than_nearest(mt);
	if (worse == -2) {
		snprintf(m->status, sizeof(m->status),
			 "the model was not checked against nearest in route choice: not used "
			 "(lsctl model train)");
		return;
	}
	if (worse >= 0) {
		const struct ml_model_check *ck = &mt->check[worse];

		snprintf(m->status, sizeof(m->status),
			 "the model chooses routes worse than nearest on the %s set (mean regret "
			 "%.2f ms against %.2f ms): not used", ml_model_check_name((unsigned)worse),
			 ck->ml_ms, ck->nearest_ms);
		return;
	}
	m->usable = true;
	const struct ml_model_check *sc = &mt->check[ML_CHECK_SCENARIO];
	snprintf(m->status, sizeof(m->status),
		 "model of %s data, %llu rows: held-out MAE %.2f ms (baseline %.2f ms); route "
		 "regret %.2f ms (nearest %.2f ms) when a node degrades", mt->source,
		 (unsigned long long)mt->n_train, mt->mae_ms, mt->base_mae_ms, sc->ml_ms,
		 sc->nearest_ms);
}

/* The loss penalty and server leg, as nearest adds them. */
static double ml_extra_us(const struct select_ml *m, const struct select_cand *c, double *loss,
			  double *leg)
{
	const struct health_report *h = c->health;
	double up = h->loss_up > 0 ? h->loss_up : 0, down = h->loss_down > 0 ? h->loss_down : 0;

	*loss = 1 - (1 - up) * (1 - down);
	*leg = m->nearest->use_server_leg && c->server_leg_us >= 0 ? (double)c->server_leg_us : 0;
	return *loss * 100 * m->nearest->loss_penalty_ms * 1000 + *leg;
}

static void ml_score(void *self, const struct select_cand *c, size_t n, uint64_t now_us,
		     struct select_score *out)
{
	struct select_ml *m = self;
	struct selector near = select_nearest(m->nearest);

	/* nearest says what is usable and known, and scores whatever has no prediction. */
	near.score(near.self, c, n, now_us, out);
	for (size_t i = 0; i < n && i < SELECT_MAX; i++) {
		struct select_ml_pred *p = &m->pred[i];
		struct select_score *o = &out[i];
		struct ml_series s;
		double x[ML_NFEAT];
		char near_why[SELECT_WHY_LEN];

		p->valid = false;
		if (!o->usable)
			continue;
		memcpy(near_why, o->why, sizeof(near_why));
		if (!m->usable) {
			snprintf(o->why, sizeof(o->why), "as nearest (no usable model): %.120s", near_why);
			continue;
		}
		if (!ml_probe_series(m->probe, (int)i, now_us, &s) ||
		    ml_features_at(&s, s.n - 1, &m->model.meta.window, x, m->scratch,
				   sizeof(m->scratch) / sizeof(m->scratch[0])) < 0) {
			snprintf(o->why, sizeof(o->why), "as nearest (no probe answered for 10 s): %.110s",
				 near_why);
			continue;
		}
		struct ml_pred pr;
		double loss, leg;
		ml_model_predict(&m->model, x, &pr);
		p->valid = true;
		p->p95_ms = pr.mean;
		p->low_ms = pr.lo;
		p->high_ms = pr.hi;
		p->n_top = pr.n_top;
		for (unsigned k = 0; k < pr.n_top; k++) {
			p->top[k] = pr.top[k];
			p->top_ms[k] = pr.contrib[pr.top[k]];
		}
		o->score_us = pr.mean * 1000 + ml_extra_us(m, &c[i], &loss, &leg);
		int w = snprintf(o->why, sizeof(o->why), "p95 next 30 s %.1f ms (%.1f-%.1f)", pr.mean,
				 pr.lo, pr.hi);
		for (unsigned k = 0; k < pr.n_top && w > 0 && (size_t)w < sizeof(o->why); k++)
			w += snprintf(o->why + w, sizeof(o->why) - (size_t)w, "%s %s %+.1f",
				      k ? "," : ":", ml_features_name(pr.top[k]), pr.contrib[pr.top[k]]);
		if (w > 0 && (size_t)w < sizeof(o->why))
			w += snprintf(o->why + w, sizeof(o->why) - (size_t)w, "; + loss %.1f%%", loss * 100);
		if (leg > 0 && w > 0 && (size_t)w < sizeof(o->why))
			w += snprintf(o->why + w, sizeof(o->why) - (size_t)w, " + leg %.1f", leg / 1000);
		if (w > 0 && (size_t)w < sizeof(o->why))
			snprintf(o->why + w, sizeof(o->why) - (size_t)w, " = %.1f ms", o->score_us / 1000);
	}
}

struct selector select_ml(struct select_ml *m)
{
	return (struct selector){ .name = "ml", .self = m, .score = ml_score };
}
