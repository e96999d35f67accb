/* lightspeed-controller: the `nearest` selector. A node's score is what a game packet
 * would feel on its whole way: the path's recent RTT (client to node, measured by the
 * dataplane's keepalives), a penalty for the round-trip loss, and the node's own leg
 * to the game server when it reports one. */
#include "select.h"

#include <stdio.h>
#include <string.h>

void select_nearest_defaults(struct select_nearest_conf *c)
{
	c->loss_penalty_ms = 10;
	c->use_server_leg = true;
}

static void nearest_score(void *self, const struct select_cand *c, size_t n, uint64_t now_us,
			  struct select_score *out)
{
	const struct select_nearest_conf *conf = self;

	(void)now_us;
	for (size_t i = 0; i < n; i++) {
		const struct health_report *h = c[i].health;
		struct select_score *o = &out[i];
		double up, down, rtl, score, penalty, leg = 0;
		int w;

		memset(o, 0, sizeof(*o));
		if (!c[i].name || !h) {
			snprintf(o->why, sizeof(o->why), "empty");
			continue;
		}
		o->known = h->state != HEALTH_UNKNOWN;
		if (h->state == HEALTH_DOWN) {
			snprintf(o->why, sizeof(o->why), "down");
			continue;
		}
		if (h->state == HEALTH_UNKNOWN || h->rtt_recent_us < 0) {
			snprintf(o->why, sizeof(o->why), "not measured yet");
			continue;
		}
		up = h->loss_up > 0 ? h->loss_up : 0;
		down = h->loss_down > 0 ? h->loss_down : 0;
		rtl = 1 - (1 - up) * (1 - down);
		penalty = rtl * 100 * conf->loss_penalty_ms * 1000;
		score = (double)h->rtt_recent_us + penalty;
		w = snprintf(o->why, sizeof(o->why), "rtt %.1f ms + loss %.1f%% x %g ms",
			     h->rtt_recent_us / 1000.0, rtl * 100, conf->loss_penalty_ms);
		if (conf->use_server_leg && c[i].server_leg_us >= 0) {
			leg = (double)c[i].server_leg_us;
			score += leg;
			w += snprintf(o->why + w, sizeof(o->why) - (size_t)w, " + server leg %.1f ms",
				      leg / 1000.0);
		}
		if (w > 0 && (size_t)w < sizeof(o->why))
			snprintf(o->why + w, sizeof(o->why) - (size_t)w, " = %.1f ms", score / 1000.0);
		o->usable = true;
		o->score_us = score;
	}
}

struct selector select_nearest(struct select_nearest_conf *c)
{
	return (struct selector){ .name = "nearest", .self = c, .score = nearest_score };
}
