/* lightspeed-controller: the ML selector's probe series (see ml_probe.h). */
#include "ml_probe.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "health.h"

void ml_probe_init(struct ml_probe *p, uint64_t now_us)
{
	memset(p, 0, sizeof(*p));
	p->t0_us = now_us;
	p->next_us = now_us + ML_PROBE_TICK_MS * 1000;
}

static double probe_fact(int64_t v)
{
	return v >= 0 ? (double)v : NAN;
}

static void probe_push(struct ml_probe_node *pn, double t, double rtt, double load)
{
	unsigned w;

	if (pn->n < ML_PROBE_KEEP) {
		w = (pn->head + pn->n++) % ML_PROBE_KEEP;
	} else {
		/* Full: the oldest record's place takes the newest. */
		w = pn->head;
		pn->head = (pn->head + 1) % ML_PROBE_KEEP;
	}
	pn->t[w] = pn->t[w + ML_PROBE_KEEP] = t;
	pn->rtt[w] = pn->rtt[w + ML_PROBE_KEEP] = (float)rtt;
	pn->load[w] = pn->load[w + ML_PROBE_KEEP] = (float)load;
}

unsigned ml_probe_round(struct ml_probe *p, const struct select_cand *c, size_t n,
			uint64_t now_us, struct ml_probe_rec *recs)
{
	unsigned k = 0;

	if (now_us < p->next_us)
		return 0;
	/* One tick per round at most: a late round does not invent records. */
	p->next_us += ML_PROBE_TICK_MS * 1000;
	if (p->next_us <= now_us)
		p->next_us = now_us + ML_PROBE_TICK_MS * 1000;
	double t = (double)(now_us - p->t0_us) / 1e6;
	for (size_t i = 0; i < n && i < SELECT_MAX; i++) {
		struct ml_probe_node *pn = &p->node[i];
		struct health_sample s[64];

		if (!c[i].name || !c[i].history) {
			pn->name[0] = '\0';
			continue;
		}
		if (strcmp(pn->name, c[i].name) != 0) {
			memset(pn, 0, sizeof(*pn));
			strncpy(pn->name, c[i].name, sizeof(pn->name) - 1);
			pn->lost_total = c[i].history->lost_total;
		}
		if (c[i].facts) {
			pn->hops = probe_fact(c[i].facts->hops);
			pn->as_path_len = probe_fact(c[i].facts->as_path_len);
			pn->distance_km = probe_fact(c[i].facts->distance_km);
		} else {
			pn->hops = pn->as_path_len = pn->distance_km = NAN;
		}
		unsigned got = health_samples(c[i].history, now_us, ML_PROBE_TICK_MS, s, 64);
		double rtt = NAN;
		if (got && s[got - 1].t_us > pn->last_t_us) {
			rtt = s[got - 1].rtt_us / 1000.0;
			pn->last_t_us = s[got - 1].t_us;
		}
		bool lost = c[i].history->lost_total > pn->lost_total;
		pn->lost_total = c[i].history->lost_total;
		if (isnan(rtt) && !lost)
			continue;
		double load = c[i].load >= 0 ? c[i].load : NAN;
		probe_push(pn, t, rtt, load);
		recs[k++] = (struct ml_probe_rec){ (int)i, rtt, load };
	}
	return k;
}

bool ml_probe_series(const struct ml_probe *p, int slot, uint64_t now_us, struct ml_series *s)
{
	const struct ml_probe_node *pn;

	if (slot < 0 || slot >= SELECT_MAX)
		return false;
	pn = &p->node[slot];
	if (!pn->name[0] || pn->n == 0)
		return false;
	double now_s = (double)(now_us - p->t0_us) / 1e6;
	*s = (struct ml_series){
		.n = pn->n,
		.t = pn->t + pn->head,
		.rtt_ms = pn->rtt + pn->head,
		.load = pn->load + pn->head,
		.week_s0 = ml_features_week_s(time(NULL)) - now_s,
		.hops = pn->hops,
		.as_path_len = pn->as_path_len,
		.distance_km = pn->distance_km,
	};
	return true;
}
