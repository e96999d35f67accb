/* lightspeed-controller: the failover state machine (actions out, no I/O). */
#include "failover.h"

#include <stdio.h>
#include <string.h>

/* A request unanswered this long is given up (the steering client answers every one
 * on disconnect or timeout, so this is only a backstop). */
#define FO_PENDING_US 3000000ull

const char *failover_reason_name(enum switch_reason r)
{
	static const char *const names[SW__COUNT] = {
		[SW_INITIAL] = "initial", [SW_SELECTION] = "selection", [SW_RECOVERY] = "recovery",
		[SW_FAILOVER] = "failover", [SW_MANUAL] = "manual", [SW_EXTERNAL] = "external",
	};

	return (unsigned)r < SW__COUNT ? names[r] : "external";
}

const char *failover_hold_name(enum fo_hold h)
{
	switch (h) {
	case FO_HOLD_PENDING:
		return "pending";
	case FO_HOLD_COOLDOWN:
		return "cooldown";
	case FO_HOLD_LIMIT:
		return "limit";
	case FO_HOLD_DATAPLANE:
		return "dataplane";
	default:
		return "none";
	}
}

void failover_conf_defaults(struct failover_conf *c)
{
	c->cooldown_ms = 10000;
	c->max_switches = 5;
	c->window_ms = 60000;
}

void failover_init(struct failover *f)
{
	memset(f, 0, sizeof(*f));
	f->active = f->backup = -1;
	f->pending_to = -1;
	f->arm_to = -1;
}

void failover_adopt(struct failover *f, int active, int backup)
{
	f->active = active;
	f->backup = backup;
	f->pending_to = -1;
	f->arm_pending = false;
}

static void note_switch(struct failover *f, enum switch_reason why, uint64_t now_us)
{
	f->down_seen_us = 0;
	/* The first route is no flap: neither cooldown nor the limit counts it. */
	if (why == SW_INITIAL)
		return;
	f->last_switch_us = now_us;
	f->recent[(f->recent_head + f->n_recent) % FO_RECENT] = now_us;
	if (f->n_recent < FO_RECENT)
		f->n_recent++;
	else
		f->recent_head = (f->recent_head + 1) % FO_RECENT;
}

/* Switches within the window ending now; *oldest gets the first of them. */
static unsigned switches_within(const struct failover *f, uint64_t window_us, uint64_t now_us,
				uint64_t *oldest)
{
	unsigned k = 0;

	*oldest = 0;
	for (unsigned i = 0; i < f->n_recent; i++) {
		uint64_t t = f->recent[(f->recent_head + i) % FO_RECENT];
		if (now_us - t < window_us) {
			if (!k)
				*oldest = t;
			k++;
		}
	}
	return k;
}

bool failover_observe(struct failover *f, int active, int backup, bool dp_failover,
		      uint64_t now_us, enum switch_reason *why)
{
	bool changed = active != f->active;

	f->backup = backup;
	if (f->arm_pending && backup == f->arm_to)
		f->arm_pending = false;
	if (!changed)
		return false;
	if (dp_failover)
		*why = SW_FAILOVER;
	else if (f->pending_to >= 0 && f->pending_to == active)
		*why = f->pending_reason;
	else
		*why = SW_EXTERNAL;
	if (f->pending_to == active)
		f->pending_to = -1;
	if (f->backup == active)
		f->backup = -1;
	f->active = active;
	note_switch(f, *why, now_us);
	return true;
}

bool failover_done(struct failover *f, enum fo_act kind, int slot, bool ok, uint64_t now_us,
		   enum switch_reason *why)
{
	if (kind == FO_ARM) {
		f->arm_pending = false;
		if (ok)
			f->backup = slot;
		return false;
	}
	if (f->pending_to != slot)
		return false; /* superseded (a manual request went ahead) or seen already */
	f->pending_to = -1;
	if (!ok || f->active == slot)
		return false;
	*why = f->pending_reason;
	/* set_route to the armed backup leaves the dataplane with none. */
	if (f->backup == slot)
		f->backup = -1;
	f->active = slot;
	note_switch(f, *why, now_us);
	return true;
}

void failover_forget(struct failover *f, int slot)
{
	if (f->pending_to == slot)
		f->pending_to = -1;
	if (f->arm_pending && f->arm_to == slot)
		f->arm_pending = false;
	if (f->backup == slot)
		f->backup = -1;
	if (f->active == slot)
		f->active = -1;
}

static void expire_pending(struct failover *f, uint64_t now_us)
{
	if (f->pending_to >= 0 && now_us - f->pending_us > FO_PENDING_US)
		f->pending_to = -1;
	if (f->arm_pending && now_us - f->arm_us > FO_PENDING_US)
		f->arm_pending = false;
}

static void set_route(struct failover *f, int slot, enum switch_reason why, uint64_t now_us,
		      struct failover_action *a)
{
	f->pending_to = slot;
	f->pending_reason = why;
	f->pending_us = now_us;
	*a = (struct failover_action){ FO_SET_ROUTE, slot, why };
}

/* The backup the dataplane should hold: the best standby, unless the one armed is
 * still usable and the best does not beat it by the margin (re-arming for every small
 * change of score would only churn). Never the active route, never a dead one. */
static int wanted_backup(const struct failover *f, const struct select_conf *sc,
			 const struct select_decision *d, const struct select_score *s, size_t n)
{
	int armed = f->backup;

	if (armed >= 0 && ((size_t)armed >= n || armed == f->active))
		armed = -1;
	/* One not measured yet (a controller that just started adopts the dataplane's)
	 * stays: judging it unknown would disarm a good backup for nothing. */
	if (armed >= 0 && !s[armed].known)
		return armed;
	if (armed >= 0 && !s[armed].usable)
		armed = -1;
	if (d->standby < 0 || d->standby == f->active)
		return armed;
	if (armed >= 0 && !select_beats(sc, s[d->standby].score_us, s[armed].score_us))
		return armed;
	return d->standby;
}

unsigned failover_step(struct failover *f, const struct failover_conf *c,
		       const struct select_conf *sc, const struct select_decision *d,
		       const struct select_score *s, size_t n, uint64_t now_us,
		       struct failover_action out[2], enum fo_hold *hold, uint64_t *until_us)
{
	unsigned k = 0;
	uint64_t oldest;

	*hold = FO_HOLD_NONE;
	*until_us = 0;
	expire_pending(f, now_us);

	bool backup_ok = f->backup >= 0 && (size_t)f->backup < n && s[f->backup].usable;
	if (d->reason != SELECT_DOWN || !backup_ok)
		f->down_seen_us = 0;
	else if (!f->down_seen_us)
		f->down_seen_us = now_us;

	if (d->choose >= 0 && d->choose != f->active) {
		if (f->pending_to >= 0) {
			*hold = FO_HOLD_PENDING;
		} else if (f->down_seen_us && now_us - f->down_seen_us < FO_DATAPLANE_GRACE_US) {
			*hold = FO_HOLD_DATAPLANE;
			*until_us = f->down_seen_us + FO_DATAPLANE_GRACE_US;
		} else if (d->reason == SELECT_BETTER && f->last_switch_us &&
			   now_us - f->last_switch_us < (uint64_t)c->cooldown_ms * 1000) {
			*hold = FO_HOLD_COOLDOWN;
			*until_us = f->last_switch_us + (uint64_t)c->cooldown_ms * 1000;
		} else if (d->reason == SELECT_BETTER &&
			   switches_within(f, (uint64_t)c->window_ms * 1000, now_us, &oldest) >=
				   c->max_switches) {
			*hold = FO_HOLD_LIMIT;
			*until_us = oldest + (uint64_t)c->window_ms * 1000;
		} else {
			/* A dead or missing route is left at once, cooldown or not: staying on
			 * it never helps the player. */
			enum switch_reason why = d->reason == SELECT_INITIAL ? SW_INITIAL :
						 d->reason == SELECT_DOWN    ? SW_RECOVERY :
									       SW_SELECTION;
			set_route(f, d->choose, why, now_us, &out[k++]);
			/* The backup is chosen again once the switch is seen. */
			return k;
		}
	}

	if (f->active >= 0 && f->pending_to < 0 && !f->arm_pending) {
		int want = wanted_backup(f, sc, d, s, n);
		if (want != f->backup) {
			f->arm_pending = true;
			f->arm_to = want;
			f->arm_us = now_us;
			out[k++] = (struct failover_action){ FO_ARM, want, SW_FAILOVER };
		}
	}
	return k;
}

enum ls_rc failover_manual(struct failover *f, const struct select_decision *d,
			   const struct select_score *s, const char *const *names, size_t n,
			   int target, uint64_t now_us, struct failover_action *out, char *msg,
			   size_t msglen)
{
	expire_pending(f, now_us);
	if (target < 0) {
		target = d->standby;
		if (target < 0 || target == f->active) {
			snprintf(msg, msglen, "no usable standby to fail over to");
			return LS_RC_CONFLICT;
		}
	}
	if ((size_t)target >= n || !names[target]) {
		snprintf(msg, msglen, "no such node");
		return LS_RC_NOT_FOUND;
	}
	if (target == f->active) {
		snprintf(msg, msglen, "%s is already the active route", names[target]);
		return LS_RC_CONFLICT;
	}
	if (!s[target].usable) {
		snprintf(msg, msglen, "%s is %s: not a route to fail over to", names[target],
			 s[target].known ? "down" : "not measured yet");
		return LS_RC_CONFLICT;
	}
	/* An operator's request goes ahead of one of ours still in flight. */
	set_route(f, target, SW_MANUAL, now_us, out);
	return LS_RC_OK;
}
