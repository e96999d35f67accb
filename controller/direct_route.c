/* lightspeed-controller: the direct route as a candidate (direct_route.h).
 *
 * Why a rule of its own beside selection: the direct path is free (no node, no extra
 * hop) and a relayed route is worth its cost only when it pays, so the margin is in
 * milliseconds saved and loss avoided (relay when it saves at least gain_ms, or the
 * direct path loses more than max_loss), not selection's ratio. And going from direct
 * to relayed or back gives the game server another source address, which most games
 * take for a new connection: so it happens when the game is quiet, not mid-match. */
#include "direct_route.h"

#include <stdio.h>
#include <string.h>

#include "controller.h"
#include "log.h"
#include "util.h"

int droute_slot(const struct ctrl *c)
{
	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used && c->nodes.n[i].conf.direct)
			return i;
	return -1;
}

static void outcome(struct droute *d, uint8_t ok)
{
	d->outcome[d->next_out] = ok;
	d->next_out = (d->next_out + 1) % DROUTE_OUTCOMES;
	if (d->n_out < DROUTE_OUTCOMES)
		d->n_out++;
}

static double loss(const struct droute *d)
{
	unsigned lost = 0;

	for (unsigned i = 0; i < d->n_out; i++)
		lost += !d->outcome[i];
	return d->n_out ? (double)lost / d->n_out : -1;
}

void droute_icmp_reply(struct ctrl *c, uint32_t rtt_us)
{
	int slot = droute_slot(c);

	outcome(&c->droute, 1);
	if (slot < 0)
		return;
	/* ICMP sees the round trip only: its loss stands as the upstream's. */
	health_sample(&c->nodes.n[slot].health, &c->conf.health, ls_now_us(), rtt_us, -1,
		      loss(&c->droute), 0);
	ctrl_health_events(c, slot);
}

void droute_icmp_sent(struct ctrl *c, unsigned unanswered)
{
	int slot = droute_slot(c);

	/* The echo before this one got no answer within an interval: lost. */
	if (unanswered >= 2)
		outcome(&c->droute, 0);
	if (slot < 0)
		return;
	health_missed(&c->nodes.n[slot].health, &c->conf.health, ls_now_us(),
		      unanswered ? unanswered - 1 : 0);
	ctrl_health_events(c, slot);
}

/* The client's game traffic, from its counters, read at each `stats` answer: quiet is
 * the span between the answer that last showed them growing and the latest answer
 * that showed them still (no packet can hide in it; between answers nothing is
 * known, so the time since the last answer never counts as quiet). */
static void watch_game(struct ctrl *c)
{
	struct droute *d = &c->droute;
	uint64_t at = c->dp ? dplink_stats_us(c->dp) : 0;
	json_t *v = c->dp ? json_object_get(dplink_stats(c->dp), "game_rx_packets") : NULL;
	int64_t rx;

	if (!at || !json_is_integer(v) || at == d->quiet_until_us)
		return;
	rx = json_integer_value(v);
	/* Zero at first: a client that moved packets before we looked counts as busy. */
	if (rx != d->game_rx || !d->last_game_us) {
		d->last_game_us = at;
		d->game_rx = rx;
	}
	d->quiet_until_us = at;
}

/* How long the game has been quiet for sure (s). */
static double quiet_s(const struct droute *d)
{
	return d->quiet_until_us > d->last_game_us ?
		       (double)(d->quiet_until_us - d->last_game_us) / 1e6 :
		       0;
}

/* The best usable relayed candidate, or -1. */
static int best_relayed(const struct ctrl *c, int direct)
{
	int best = -1;

	for (int i = 0; i < NODE_MAX; i++) {
		const struct node *n = &c->nodes.n[i];
		if (i == direct || !n->used || !n->score.usable)
			continue;
		if (best < 0 || n->score.score_us < c->nodes.n[best].score.score_us)
			best = i;
	}
	return best;
}

static void hold(struct ctrl *c, struct select_decision *d, int target, const char *detail)
{
	if (!c->droute.holding) {
		c->droute.holds++;
		ctrl_decision(c, "hold", target, detail);
	}
	c->droute.holding = true;
	d->reason = SELECT_KEEP;
	d->choose = -1;
}

void droute_filter(struct ctrl *c, struct select_decision *d)
{
	struct droute *dr = &c->droute;
	int D = droute_slot(c), cur = c->fo.active, R, target;
	const struct node *dn;
	double dl, quiet;
	char detail[512];

	if (D < 0) {
		dr->why[0] = '\0';
		return;
	}
	watch_game(c);
	dn = &c->nodes.n[D];
	R = best_relayed(c, D);
	dl = loss(dr);
	if (!dn->score.usable) {
		dr->want_direct = false;
		snprintf(dr->why, sizeof(dr->why), "relayed: the direct path is not usable (%s)",
			 dn->score.why);
	} else if (dl > c->conf.direct_max_loss) {
		dr->want_direct = false;
		snprintf(dr->why, sizeof(dr->why), "relayed: the direct path loses %.2f%% (more than %.2f%%)",
			 dl * 100, c->conf.direct_max_loss * 100);
	} else if (R >= 0 &&
		   c->nodes.n[R].score.score_us + c->conf.direct_gain_ms * 1000 <= dn->score.score_us) {
		dr->want_direct = false;
		snprintf(dr->why, sizeof(dr->why), "relayed: %s saves %.1f ms over direct (at least %.0f)",
			 c->nodes.n[R].conf.name,
			 (dn->score.score_us - c->nodes.n[R].score.score_us) / 1000,
			 c->conf.direct_gain_ms);
	} else {
		dr->want_direct = true;
		if (R >= 0)
			snprintf(dr->why, sizeof(dr->why),
				 "direct: no relayed route saves %.0f ms (%s: %.1f ms, direct %.1f ms)",
				 c->conf.direct_gain_ms, c->nodes.n[R].conf.name,
				 c->nodes.n[R].score.score_us / 1000, dn->score.score_us / 1000);
		else
			snprintf(dr->why, sizeof(dr->why), "direct: no relayed route is usable");
	}
	target = dr->want_direct ? D : R;
	/* No route yet: take the rule's choice as the first. */
	if (cur < 0 || d->reason == SELECT_INITIAL) {
		if (d->reason == SELECT_INITIAL && target >= 0)
			d->choose = target;
		dr->holding = false;
		return;
	}
	/* The active route is dead: leaving it costs the player nothing more. */
	if (d->reason == SELECT_DOWN) {
		dr->holding = false;
		return;
	}
	bool cur_direct = cur == D;
	if (cur_direct == dr->want_direct || target < 0) {
		/* The right kind already: selection goes on among the relayed ones, never to
		 * direct (the rule decides that), never away from direct. */
		if (d->choose >= 0 && (cur_direct || d->choose == D)) {
			d->reason = SELECT_KEEP;
			d->choose = -1;
		}
		dr->holding = false;
		return;
	}
	quiet = quiet_s(dr);
	if (quiet * 1000 < c->conf.direct_quiet_ms) {
		snprintf(detail, sizeof(detail),
			 "%s -> %s waits for %.1f s without game traffic (the game server would see a "
			 "new address mid-match; quiet for %.1f s): %s",
			 c->nodes.n[cur].conf.name, c->nodes.n[target].conf.name,
			 c->conf.direct_quiet_ms / 1000.0, quiet, dr->why);
		hold(c, d, target, detail);
		return;
	}
	dr->holding = false;
	d->choose = target;
	d->reason = SELECT_BETTER;
}

void droute_json(const struct ctrl *c, json_t *o)
{
	int D = droute_slot(c);

	json_object_set_new(o, "route", json_boolean(D >= 0));
	json_object_set_new(o, "in_use", json_boolean(D >= 0 && D == c->fo.active));
	json_object_set_new(o, "why", D >= 0 && c->droute.why[0] ? json_string(c->droute.why) :
								     json_null());
	json_object_set_new(o, "waiting_for_quiet", json_boolean(D >= 0 && c->droute.holding));
}
