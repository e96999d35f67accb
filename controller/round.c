/* lightspeed-controller: one round of the control loop and the bookkeeping around it.
 * Health reports go to the selector, its scores through the anti-flap rule, the
 * decision to failover, whose actions go to the dataplane; switches are recorded and
 * health flips logged here, once each. */
#include "controller.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

void ctrl_names(const struct ctrl *c, const char *names[NODE_MAX])
{
	for (int i = 0; i < NODE_MAX; i++)
		names[i] = c->nodes.n[i].used ? c->nodes.n[i].conf.name : NULL;
}

void ctrl_scores(const struct ctrl *c, struct select_score s[NODE_MAX])
{
	for (int i = 0; i < NODE_MAX; i++)
		s[i] = c->nodes.n[i].score;
}

static const char *slot_name(const struct ctrl *c, int slot)
{
	return slot >= 0 && slot < NODE_MAX && c->nodes.n[slot].used ? c->nodes.n[slot].conf.name :
								       NULL;
}

/* Health reports and this round's scores, from the selector. */
static void score_nodes(struct ctrl *c, uint64_t now)
{
	struct select_cand cand[NODE_MAX];
	struct select_score s[NODE_MAX];

	for (int i = 0; i < NODE_MAX; i++) {
		struct node *n = &c->nodes.n[i];
		memset(&cand[i], 0, sizeof(cand[i]));
		if (!n->used)
			continue;
		health_report(&n->health, &c->conf.health, now, &n->report);
		cand[i] = (struct select_cand){ n->conf.name, &n->report, &n->health, &n->conf.facts,
						n->server_leg_us, n->load, i == c->fo.active };
	}
	ml_ctl_round(c->ml, cand, NODE_MAX, now); /* the ML's probe series, whatever the strategy */
	c->sel.score(c->sel.self, cand, NODE_MAX, now, s);
	for (int i = 0; i < NODE_MAX; i++) {
		struct node *n = &c->nodes.n[i];
		/* A node the dataplane holds no route for cannot carry traffic yet. */
		if (n->used && !n->dp.present && s[i].usable) {
			s[i].usable = false;
			snprintf(s[i].why, sizeof(s[i].why), "no route in the dataplane yet");
		}
		if (n->used && s[i].usable && !agents_usable(c, i, s[i].why, sizeof(s[i].why)))
			s[i].usable = false;
		s[i].present = n->used && n->dp.present;
		n->score = s[i];
	}
}

void ctrl_decision(struct ctrl *c, const char *kind, int slot, const char *detail)
{
	ls_info("%s", detail);
	ctrl_publish(c, "decision", api_decision_json(kind, slot_name(c, slot), detail));
}

static void log_hold(struct ctrl *c, enum fo_hold hold, uint64_t until, uint64_t now)
{
	const struct select_decision *d = &c->decision;

	/* Once per episode: a hold that goes on says nothing new every tick. */
	if (hold == c->hold)
		return;
	c->hold = hold;
	c->hold_until_us = until;
	if (hold == FO_HOLD_COOLDOWN || hold == FO_HOLD_LIMIT) {
		char detail[200];
		snprintf(detail, sizeof(detail), "%s would win on score, but %s holds for %.1f s more",
			 slot_name(c, d->choose),
			 hold == FO_HOLD_COOLDOWN ? "the cooldown" : "the switch limit",
			 until > now ? (double)(until - now) / 1e6 : 0);
		ctrl_decision(c, "hold", d->choose, detail);
	}
}

void ctrl_round(struct ctrl *c)
{
	uint64_t now = ls_now_us(), until = 0;
	struct select_score s[NODE_MAX];
	struct failover_action act[2];
	enum fo_hold hold = FO_HOLD_NONE;
	unsigned n = 0;

	score_nodes(c, now);
	ctrl_scores(c, s);
	select_decide(&c->sel_state, &c->conf.select, s, NODE_MAX, c->fo.active, now, &c->decision);
	paths_filter(c, &c->decision);
	droute_filter(c, &c->decision);
	if (!dplink_connected(c->dp))
		return;
	paths_round(c, now);
	n = failover_step(&c->fo, &c->conf.failover, &c->conf.select, &c->decision, s, NODE_MAX, now,
			  act, &hold, &until);
	log_hold(c, hold, until, now);
	for (unsigned i = 0; i < n; i++) {
		const struct select_decision *d = &c->decision;
		const char *cur = slot_name(c, c->fo.active), *to = slot_name(c, act[i].slot);
		char detail[256];
		if (act[i].kind == FO_SET_ROUTE && d->reason == SELECT_BETTER)
			snprintf(detail, sizeof(detail),
				 "switching %s -> %s: %.1f ms beat %.1f ms by the margin for %.1f s", cur, to,
				 s[act[i].slot].score_us / 1000, s[c->fo.active].score_us / 1000,
				 (double)d->beating_us / 1e6);
		else if (act[i].kind == FO_SET_ROUTE)
			snprintf(detail, sizeof(detail), "switching %s -> %s (%s)", cur ? cur : "(none)", to,
				 failover_reason_name(act[i].reason));
		else if (to)
			snprintf(detail, sizeof(detail), "arming %s as the backup of %s (%s)", to,
				 cur ? cur : "(none)", s[act[i].slot].why);
		else
			snprintf(detail, sizeof(detail), "disarming the backup of %s: no usable standby",
				 cur ? cur : "(none)");
		ctrl_decision(c, act[i].kind == FO_SET_ROUTE ? "switch" : to ? "arm" : "disarm",
			      act[i].slot, detail);
		dplink_act(c->dp, &act[i]);
	}
}

void ctrl_switched(struct ctrl *c, int from, int to, enum switch_reason why)
{
	struct timespec ts;
	char err[300];
	const char *f = slot_name(c, from), *t = slot_name(c, to);

	clock_gettime(CLOCK_REALTIME, &ts);
	history_add(&c->hist, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, f, t, why);
	c->ctr.switches++;
	/* Streaks were measured against the route just left. */
	memset(&c->sel_state, 0, sizeof(c->sel_state));
	ls_info("route: %s -> %s (%s)", f ? f : "(none)", t ? t : "(none)",
		failover_reason_name(why));
	ctrl_publish(c, "switch", api_switch_json(history_at(&c->hist, history_len(&c->hist) - 1)));
	/* Another egress is another source address at the game server (1.9): say so. */
	if (f && t && from != to) {
		char detail[200];
		snprintf(detail, sizeof(detail),
			 "egress %s -> %s (%s): the game server will see a new address", f, t,
			 paths_managed(c, from) && (why == SW_FAILOVER || why == SW_RECOVERY) ?
				 "no path to it works" :
				 failover_reason_name(why));
		ls_warn("%s", detail);
		ctrl_publish(c, "decision", api_decision_json("egress", t, detail));
	}
	if (c->history_path[0] && history_save(&c->hist, c->history_path, err, sizeof(err)) < 0)
		ls_warn("history not saved: %s", err);
}

void ctrl_health_events(struct ctrl *c, int slot)
{
	struct node *n = &c->nodes.n[slot];
	enum health_state from, to;
	const char *why;

	if (!health_take_transition(&n->health, &from, &to, &why))
		return;
	ls_log(to == HEALTH_DOWN ? LS_LOG_WARN : LS_LOG_INFO, __func__, "node %s: %s -> %s (%s)",
	       n->conf.name, health_state_name(from), health_state_name(to), why);
	ctrl_publish(c, "state",
		     json_pack("{s:s,s:s,s:s,s:s}", "name", n->conf.name, "state", health_state_name(to),
			       "previous", health_state_name(from), "reason", why));
	/* A change of health may change the route or the backup: decide now. */
	ctrl_round(c);
}

enum ls_rc ctrl_node_add(struct ctrl *c, const struct node_conf *nc, char *msg, size_t msglen)
{
	bool full;
	int slot = node_add(&c->nodes, nc, ls_now_us(), &full);

	if (slot < 0) {
		if (full)
			snprintf(msg, msglen, "the node table is full (at most %d nodes)", NODE_MAX);
		else
			snprintf(msg, msglen, "a node named %s exists", nc->name);
		return full ? LS_RC_FULL : LS_RC_EXISTS;
	}
	select_forget(&c->sel_state, slot);
	return LS_RC_OK;
}

