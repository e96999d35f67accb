/* lightspeed-controller: health reports from probe results, with hysteresis. */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *health_state_name(enum health_state s)
{
	switch (s) {
	case HEALTH_HEALTHY:
		return "healthy";
	case HEALTH_DEGRADED:
		return "degraded";
	case HEALTH_DOWN:
		return "down";
	default:
		return "unknown";
	}
}

void health_conf_defaults(struct health_conf *c)
{
	c->window_ms = 10000;
	c->recent_ms = 2000;
	c->up_after = 3;
	c->down_after = 3;
	c->degrade_after = 3;
	c->degraded_loss = 0.05;
	c->degraded_rtt_ms = 0;
}

void health_init(struct health *h, uint64_t now_us)
{
	memset(h, 0, sizeof(*h));
	h->jitter_us = -1;
	h->loss_up = -1;
	h->loss_down = -1;
	h->state = HEALTH_UNKNOWN;
	h->since_us = now_us;
}

static void set_state(struct health *h, enum health_state to, uint64_t now_us, const char *fmt,
		      unsigned n, double v)
{
	if (h->state == to)
		return;
	/* A transition not yet logged keeps its origin: the log then reads as one step
	 * from where the caller last saw the node. */
	if (!h->changed)
		h->from = h->state;
	h->changed = true;
	h->state = to;
	h->since_us = now_us;
	h->flips++;
	snprintf(h->why, sizeof(h->why), fmt, n, v);
}

/* A probe is bad when its path loses more than the limit in either direction, or is
 * slower than the limit. */
static bool sample_bad(const struct health_conf *c, uint32_t rtt_us, double up, double down,
		       double *worst_loss)
{
	double loss = up > down ? up : down;

	*worst_loss = loss;
	if (loss > c->degraded_loss)
		return true;
	return c->degraded_rtt_ms && rtt_us > (uint64_t)c->degraded_rtt_ms * 1000;
}

void health_sample(struct health *h, const struct health_conf *c, uint64_t now_us,
		   uint32_t rtt_us, int64_t jitter_us, double loss_up, double loss_down)
{
	double loss;
	bool bad;

	if (h->n == HEALTH_SAMPLES) {
		h->head = (h->head + 1) % HEALTH_SAMPLES;
		h->n--;
	}
	h->ring[(h->head + h->n) % HEALTH_SAMPLES] = (struct health_sample){ now_us, rtt_us };
	h->n++;
	h->samples_total++;
	if (jitter_us >= 0)
		h->jitter_us = jitter_us;
	if (loss_up >= 0)
		h->loss_up = loss_up;
	if (loss_down >= 0)
		h->loss_down = loss_down;
	/* An answer ends the run of misses (the dataplane's count starts over too). */
	h->missed = 0;
	h->run_lost = 0;
	h->run_answered++;
	bad = sample_bad(c, rtt_us, h->loss_up, h->loss_down, &loss);
	if (bad) {
		h->run_bad++;
		h->run_good = 0;
	} else {
		h->run_good++;
		h->run_bad = 0;
	}

	switch (h->state) {
	case HEALTH_UNKNOWN:
	case HEALTH_DOWN:
		/* Back from down (or first seen): N answers in a row; healthy if the last N
		 * were all good, else degraded. */
		if (h->run_answered >= c->up_after) {
			if (h->run_good >= c->up_after)
				set_state(h, HEALTH_HEALTHY, now_us, "%u probes answered", h->run_answered,
					  0);
			else if (bad)
				set_state(h, HEALTH_DEGRADED, now_us, "%u probes answered, loss %.0f%%",
					  h->run_answered, loss * 100);
			else
				set_state(h, HEALTH_DEGRADED, now_us, "%u probes answered", h->run_answered,
					  0);
		}
		break;
	case HEALTH_HEALTHY:
		if (h->run_bad >= c->degrade_after) {
			if (loss > c->degraded_loss)
				set_state(h, HEALTH_DEGRADED, now_us, "%u probes with loss %.0f%%",
					  h->run_bad, loss * 100);
			else
				set_state(h, HEALTH_DEGRADED, now_us, "%u probes over %.0f ms", h->run_bad,
					  (double)c->degraded_rtt_ms);
		}
		break;
	case HEALTH_DEGRADED:
		if (h->run_good >= c->up_after)
			set_state(h, HEALTH_HEALTHY, now_us, "%u probes good", h->run_good, 0);
		break;
	}
}

void health_missed(struct health *h, const struct health_conf *c, uint64_t now_us,
		   uint32_t missed)
{
	uint32_t lost;

	/* The count only grows between answers; a smaller one means an answer came in
	 * between (and was counted as a sample), or the dataplane started over. */
	if (missed <= h->missed) {
		h->missed = missed;
		return;
	}
	lost = missed - h->missed;
	h->missed = missed;
	h->lost_total += lost;
	h->run_lost += lost;
	h->run_good = 0;
	h->run_bad = 0;
	h->run_answered = 0;
	if (h->state != HEALTH_DOWN && h->run_lost >= c->down_after)
		set_state(h, HEALTH_DOWN, now_us, "%u probes lost", h->run_lost, 0);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of sorted v[0..n). */
static uint32_t quantile(const uint32_t *v, unsigned n, double q)
{
	unsigned rank = (unsigned)(q * n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* The RTTs of the samples within the last `ms`, sorted, into v; returns the count. */
static unsigned window_rtts(const struct health *h, uint64_t now_us, uint32_t ms, uint32_t *v)
{
	uint64_t from = now_us > (uint64_t)ms * 1000 ? now_us - (uint64_t)ms * 1000 : 0;
	unsigned k = 0;

	for (unsigned i = 0; i < h->n; i++) {
		const struct health_sample *s = &h->ring[(h->head + i) % HEALTH_SAMPLES];
		if (s->t_us >= from)
			v[k++] = s->rtt_us;
	}
	qsort(v, k, sizeof(v[0]), cmp_u32);
	return k;
}

void health_report(const struct health *h, const struct health_conf *c, uint64_t now_us,
		   struct health_report *out)
{
	uint32_t v[HEALTH_SAMPLES];
	unsigned k;

	memset(out, 0, sizeof(*out));
	out->state = h->state;
	out->since_us = h->since_us;
	out->jitter_us = h->jitter_us;
	out->loss_up = h->loss_up;
	out->loss_down = h->loss_down;
	out->missed = h->missed;
	out->samples_total = h->samples_total;
	out->lost_total = h->lost_total;
	out->flips = h->flips;
	out->last_sample_age_us = -1;
	if (h->n) {
		const struct health_sample *last = &h->ring[(h->head + h->n - 1) % HEALTH_SAMPLES];
		out->last_sample_age_us = now_us >= last->t_us ? (int64_t)(now_us - last->t_us) : 0;
	}

	k = window_rtts(h, now_us, c->window_ms, v);
	out->window_samples = k;
	out->rtt_p50_us = k ? (int64_t)quantile(v, k, 0.5) : -1;
	out->rtt_p95_us = k ? (int64_t)quantile(v, k, 0.95) : -1;
	out->rtt_min_us = k ? (int64_t)v[0] : -1;
	k = window_rtts(h, now_us, c->recent_ms, v);
	out->rtt_recent_us = k ? (int64_t)quantile(v, k, 0.5) : -1;
}

bool health_take_transition(struct health *h, enum health_state *from, enum health_state *to,
			    const char **why)
{
	if (!h->changed)
		return false;
	h->changed = false;
	/* Down and back within one batch is no transition worth a line. */
	if (h->from == h->state)
		return false;
	*from = h->from;
	*to = h->state;
	*why = h->why;
	return true;
}

unsigned health_samples(const struct health *h, uint64_t now_us, uint32_t ms,
			struct health_sample *out, unsigned max)
{
	uint64_t from = now_us > (uint64_t)ms * 1000 ? now_us - (uint64_t)ms * 1000 : 0;
	unsigned first = h->n, k = 0;

	/* Samples are in time order: find the oldest within the window, and keep the
	 * newest `max` of them when there are more. */
	for (unsigned i = 0; i < h->n; i++) {
		if (h->ring[(h->head + i) % HEALTH_SAMPLES].t_us >= from) {
			first = i;
			break;
		}
	}
	if (h->n - first > max)
		first = h->n - max;
	for (unsigned i = first; i < h->n; i++)
		out[k++] = h->ring[(h->head + i) % HEALTH_SAMPLES];
	return k;
}
