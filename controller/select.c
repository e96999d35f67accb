/* lightspeed-controller: the anti-flap rule that every selector's scores go through
 * (Valve's GameNetworkingSockets rule: a challenger must beat the current route by
 * score * 1.1 + 5 ms, sustained over a window). */
#include "select.h"

#include <string.h>

const char *select_reason_name(enum select_reason r)
{
	switch (r) {
	case SELECT_INITIAL:
		return "initial";
	case SELECT_DOWN:
		return "down";
	case SELECT_BETTER:
		return "better";
	default:
		return "keep";
	}
}

void select_conf_defaults(struct select_conf *c)
{
	c->margin_ratio = 1.1;
	c->margin_ms = 5;
	c->hold_ms = 5000;
	c->initial_wait_ms = 1500;
}

bool select_beats(const struct select_conf *c, double cand_us, double cur_us)
{
	return cand_us * c->margin_ratio + c->margin_ms * 1000.0 < cur_us;
}

void select_forget(struct select_state *st, int slot)
{
	if (slot >= 0 && slot < SELECT_MAX)
		st->beat_since[slot] = 0;
}

void select_decide(struct select_state *st, const struct select_conf *c,
		   const struct select_score *s, size_t n, int current, uint64_t now_us,
		   struct select_decision *out)
{
	bool cur_ok;

	memset(out, 0, sizeof(*out));
	out->reason = SELECT_KEEP;
	out->choose = out->best = out->standby = out->challenger = -1;
	if (n > SELECT_MAX)
		n = SELECT_MAX;
	if (current >= (int)n)
		current = -1;

	for (size_t i = 0; i < n; i++) {
		if (!s[i].usable)
			continue;
		if (out->best < 0 || s[i].score_us < s[out->best].score_us)
			out->best = (int)i;
		if ((int)i != current &&
		    (out->standby < 0 || s[i].score_us < s[out->standby].score_us))
			out->standby = (int)i;
	}
	cur_ok = current >= 0 && s[current].usable;

	/* Streaks: each slot that beats the current route now keeps the time it started;
	 * any round in which it does not ends the streak. */
	for (size_t i = 0; i < n; i++) {
		bool beats = cur_ok && (int)i != current && s[i].usable &&
			     select_beats(c, s[i].score_us, s[current].score_us);
		if (!beats) {
			st->beat_since[i] = 0;
			continue;
		}
		if (!st->beat_since[i])
			st->beat_since[i] = now_us ? now_us : 1;
		if (out->challenger < 0 || s[i].score_us < s[out->challenger].score_us)
			out->challenger = (int)i;
	}
	for (size_t i = n; i < SELECT_MAX; i++)
		st->beat_since[i] = 0;

	if (cur_ok && out->standby >= 0)
		out->lead_us = s[out->standby].score_us * c->margin_ratio + c->margin_ms * 1000.0 -
			       s[current].score_us;

	if (current < 0) {
		bool all_known = true;
		if (out->best < 0) {
			st->first_usable_us = 0;
			return;
		}
		if (!st->first_usable_us)
			st->first_usable_us = now_us ? now_us : 1;
		for (size_t i = 0; i < n; i++)
			all_known = all_known && (!s[i].present || s[i].known);
		if (all_known || now_us - st->first_usable_us >= (uint64_t)c->initial_wait_ms * 1000) {
			out->reason = SELECT_INITIAL;
			out->choose = out->best;
		}
		return;
	}
	st->first_usable_us = 0;
	if (!s[current].known)
		return;
	if (!cur_ok) {
		/* Staying on a dead route never helps; with nothing usable, stay anyway
		 * (fail-static). */
		if (out->best >= 0) {
			out->reason = SELECT_DOWN;
			out->choose = out->best;
		}
		return;
	}
	if (out->challenger < 0)
		return;
	out->beating_us = now_us - st->beat_since[out->challenger];
	/* The best of those whose streak has lasted the whole window. */
	int pick = -1;
	for (size_t i = 0; i < n; i++) {
		if (!st->beat_since[i] || now_us - st->beat_since[i] < (uint64_t)c->hold_ms * 1000)
			continue;
		if (pick < 0 || s[i].score_us < s[pick].score_us)
			pick = (int)i;
	}
	if (pick >= 0) {
		out->reason = SELECT_BETTER;
		out->choose = pick;
	}
}
