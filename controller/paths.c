/* lightspeed-controller: the paths to each egress node (paths.h; docs/protocol.md 1.9).
 *
 * Why the controller and not the client: the client moves its game packets between
 * the paths it holds in the same loop turn (its data path and modes), but it holds at
 * most 3, and which relays to hold is a choice over every relay the configuration
 * knows, made on seconds of measurements: that is a controller's. A path is bad when
 * the client says it is down, it missed 3 keepalives, or it loses more than
 * `bad_loss` either way; bad for `replace_after_ms`, it gives its place to a spare
 * path to the same egress (the first candidate not on the route and not resting). */
#include "paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "controller.h"
#include "log.h"
#include "util.h"

#define PATHS_DIRECT "direct"
/* A request unanswered this long is taken as lost (the link reconnects meanwhile). */
#define PATHS_PENDING_US 5000000ull

static const char *const modes[] = { "single", "duplicate", "split", "auto" };

void paths_conf_defaults(struct multipath_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->paths = PATHS_PER_ROUTE;
	c->replace_after_ms = 2000;
	c->bad_loss = 0.05;
	c->rest_ms = 30000;
	c->direct = true;
}

bool paths_mode_valid(const char *mode)
{
	for (size_t i = 0; mode && i < LS_ARRAY_LEN(modes); i++)
		if (strcmp(mode, modes[i]) == 0)
			return true;
	return false;
}

int paths_relay_check(struct relay_conf *r, char *err, size_t errlen)
{
	struct node_conf n;
	char msg[300];

	/* A relay is checked as a node is: the same name, address and key rules. */
	node_conf_init(&n);
	snprintf(n.name, sizeof(n.name), "%s", r->name);
	snprintf(n.address, sizeof(n.address), "%s", r->address);
	n.session_id = r->session_id;
	n.key = r->key;
	snprintf(n.key_file, sizeof(n.key_file), "%s", r->key_file);
	if (ctrl_conf_node_check(&n, msg, sizeof(msg)) < 0) {
		if (strncmp(msg, "node ", 5) == 0)
			snprintf(err, errlen, "relay%s", msg + 4);
		else
			snprintf(err, errlen, "relay: %s", msg);
		return -1;
	}
	if (!n.key.set) {
		snprintf(err, errlen,
			 "relay %s: session_id and key (or key_file) are required: a relay forwards "
			 "only for the grant they name",
			 r->name);
		return -1;
	}
	if (strcmp(r->name, PATHS_DIRECT) == 0) {
		snprintf(err, errlen, "relay %s: the name is the path straight to the egress; choose "
			 "another", r->name);
		return -1;
	}
	r->addr = n.addr;
	r->key = n.key;
	return 0;
}

void paths_init(struct paths *p)
{
	memset(p, 0, sizeof(*p));
}

/* ---- candidates ---------------------------------------------------------------------- */

static bool relay_reaches(const struct relay_conf *r, const char *node)
{
	if (!r->nodes.n)
		return true;
	for (unsigned i = 0; i < r->nodes.n; i++)
		if (strcmp(r->nodes.name[i], node) == 0)
			return true;
	return false;
}

/* Candidate k of a node: 0 is direct (when enabled), then the relays that reach it. The
 * relay's index (-1 for direct) or -2 when k is no candidate of this node. */
static int candidate(const struct ctrl *c, const struct node *n, unsigned k)
{
	const struct multipath_conf *mp = &c->conf.mp;

	if (k == 0)
		return mp->direct ? -1 : -2;
	if (k - 1 >= mp->n_relays || !relay_reaches(&mp->relays[k - 1], n->conf.name))
		return -2;
	return (int)k - 1;
}

static const char *cand_name(const struct ctrl *c, unsigned k)
{
	return k == 0 ? PATHS_DIRECT : c->conf.mp.relays[k - 1].name;
}

static unsigned n_candidates(const struct ctrl *c, const struct node *n)
{
	unsigned m = 0;

	for (unsigned k = 0; k < PATHS_CAND_MAX; k++)
		m += candidate(c, n, k) != -2;
	return m;
}

bool paths_managed(const struct ctrl *c, int slot)
{
	const struct node *n;

	if (slot < 0 || slot >= NODE_MAX || !c->nodes.n[slot].used)
		return false;
	n = &c->nodes.n[slot];
	for (unsigned k = 1; k < PATHS_CAND_MAX; k++)
		if (candidate(c, n, k) >= 0)
			return true;
	return false;
}

/* The candidate a path reported by the client is (-1: a path someone else added). */
static int cand_of(const struct ctrl *c, const struct node *n, const char *name)
{
	for (unsigned k = 0; k < PATHS_CAND_MAX; k++)
		if (candidate(c, n, k) != -2 && strcmp(cand_name(c, k), name) == 0)
			return (int)k;
	return -1;
}

static struct node_paths *np_of(struct ctrl *c, int slot)
{
	struct node_paths *np = &c->paths.n[slot];

	/* The slot was given to another node since. */
	if (np->added_us != c->nodes.n[slot].added_us) {
		memset(np, 0, sizeof(*np));
		np->added_us = c->nodes.n[slot].added_us;
	}
	return np;
}

/* ---- the client's view ------------------------------------------------------------------ */

static int64_t int_or(json_t *o, const char *key, int64_t dflt, bool *bad)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return dflt;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		*bad = true;
		return dflt;
	}
	return json_integer_value(v);
}

static double ratio_or(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);
	double x;

	if (!v || json_is_null(v))
		return -1;
	x = json_is_number(v) ? json_number_value(v) : -1;
	if (!(x >= 0 && x <= 1)) {
		*bad = true;
		return -1;
	}
	return x;
}

static bool copy_str(char *dst, size_t len, json_t *v, bool name)
{
	const char *s = json_string_value(v);

	if (!s || strlen(s) >= len || (name && !node_name_valid(s)))
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

int paths_take(struct ctrl *c, int slot, json_t *route)
{
	struct node_paths *np = np_of(c, slot);
	json_t *arr = json_object_get(route, "paths"), *o;
	struct node_paths tmp;
	bool bad = false;
	size_t i;

	/* A client without multipath: nothing to manage there. */
	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > PATHS_PER_ROUTE)
		return -1;
	memset(&tmp, 0, sizeof(tmp));
	if (!copy_str(tmp.mode, sizeof(tmp.mode), json_object_get(route, "path_mode"), false) ||
	    !copy_str(tmp.mode_in_use, sizeof(tmp.mode_in_use),
		      json_object_get(route, "path_mode_in_use"), false))
		return -1;
	json_array_foreach(arr, i, o) {
		struct path_seen *p = &tmp.seen[i];
		json_t *hop;
		if (!json_is_object(o) || !copy_str(p->name, sizeof(p->name), json_object_get(o, "name"),
						    true) ||
		    !copy_str(p->state, sizeof(p->state), json_object_get(o, "state"), false))
			return -1;
		if (strcmp(p->state, "up") != 0 && strcmp(p->state, "down") != 0 &&
		    strcmp(p->state, "unknown") != 0 && strcmp(p->state, "degraded") != 0)
			return -1;
		p->relay = json_is_string(json_object_get(o, "relay"));
		p->data = json_is_true(json_object_get(o, "data"));
		p->rtt_us = int_or(o, "rtt_us", -1, &bad);
		p->loss_up = ratio_or(o, "loss_up", &bad);
		p->loss_down = ratio_or(o, "loss_down", &bad);
		p->missed = (uint32_t)int_or(o, "missed", 0, &bad);
		hop = json_object_get(o, "hop");
		p->hop_rtt_us = json_is_object(hop) ? int_or(hop, "rtt_us", -1, &bad) : -1;
		if (bad)
			return -1;
	}
	memcpy(np->seen, tmp.seen, sizeof(np->seen));
	np->n = (unsigned)json_array_size(arr);
	memcpy(np->mode, tmp.mode, sizeof(np->mode));
	memcpy(np->mode_in_use, tmp.mode_in_use, sizeof(np->mode_in_use));
	/* Answers come in order on the one connection: a `routes` answer taken when none
	 * of our requests is pending shows what they did. */
	if (!np->pending)
		np->known = true;
	return 0;
}

/* Why a path is bad now ("" when it is not). */
static void judge(const struct multipath_conf *mp, const struct path_seen *p, char *why,
		  size_t len)
{
	why[0] = '\0';
	if (strcmp(p->state, "down") == 0)
		snprintf(why, len, "down");
	else if (p->missed >= 3)
		snprintf(why, len, "%u keepalives missed", p->missed);
	else if (p->loss_up > mp->bad_loss)
		snprintf(why, len, "loses %.1f%% upstream", p->loss_up * 100);
	else if (p->loss_down > mp->bad_loss)
		snprintf(why, len, "loses %.1f%% downstream", p->loss_down * 100);
}

/* The client's own measure of a path (1.9): its RTT plus 10 ms per 1% of loss either
 * way; -1 until the RTT is measured. */
static double path_score_us(const struct path_seen *p)
{
	double loss = (p->loss_up > 0 ? p->loss_up : 0) + (p->loss_down > 0 ? p->loss_down : 0);

	return p->rtt_us < 0 ? -1 : (double)p->rtt_us + loss * 100 * 10000;
}

static bool path_works(const struct multipath_conf *mp, const struct path_seen *p)
{
	char why[64];

	judge(mp, p, why, sizeof(why));
	return !why[0] && strcmp(p->state, "unknown") != 0;
}

/* ---- requests ---------------------------------------------------------------------------- */

struct preq {
	struct ctrl *c;
	int slot;
	uint64_t added_us;
	char cmd[12], node[NODE_NAME_MAX], path[NODE_NAME_MAX];
};

static void on_answer(void *ud, const struct ls_steerc_answer *a)
{
	struct preq *r = ud;
	struct ctrl *c = r->c;

	if (c->nodes.n[r->slot].used && c->nodes.n[r->slot].added_us == r->added_us) {
		struct node_paths *np = &c->paths.n[r->slot];
		if (np->pending)
			np->pending--;
		/* Another path of that name already there is what was wanted. */
		if (a->rc != LS_RC_OK && a->rc != LS_RC_EXISTS && a->rc != LS_RC_NOT_FOUND)
			ls_warn("node %s: %s %s refused: %s: %s", r->node, r->cmd, r->path,
				a->code ? a->code : "error", a->message ? a->message : "");
	}
	free(r);
}

static void send_path(struct ctrl *c, int slot, const char *cmd, unsigned k)
{
	struct node *n = &c->nodes.n[slot];
	struct node_paths *np = &c->paths.n[slot];
	struct preq *r = calloc(1, sizeof(*r));
	json_t *args = json_pack("{s:s,s:s}", "route", n->conf.name, "name", cand_name(c, k));
	char a[LS_ADDRSTRLEN], hex[2 * NODE_KEY_LEN + 1];

	if (!r || !args) {
		free(r);
		json_decref(args);
		return;
	}
	if (strcmp(cmd, "path_add") == 0 && k > 0) {
		const struct relay_conf *rc = &c->conf.mp.relays[k - 1];
		ls_hex_encode(rc->key.b, NODE_KEY_LEN, hex);
		json_object_set_new(args, "relay", json_string(ls_addr_fmt(&rc->addr, a)));
		json_object_set_new(args, "session_id", json_integer(rc->session_id));
		json_object_set_new(args, "key", json_string(hex));
		memset(hex, 0, sizeof(hex));
	}
	*r = (struct preq){ c, slot, n->added_us, "", "", "" };
	snprintf(r->cmd, sizeof(r->cmd), "%s", cmd);
	snprintf(r->node, sizeof(r->node), "%s", n->conf.name);
	snprintf(r->path, sizeof(r->path), "%s", cand_name(c, k));
	if (!dplink_request(c->dp, cmd, args, on_answer, r)) {
		free(r);
		return;
	}
	np->pending++;
	np->pending_us = ls_now_us();
	np->known = false;
}

/* ---- one round ------------------------------------------------------------------------------ */

/* The first candidate of the node that is not on its route and not resting, or -1. */
static int spare(const struct ctrl *c, const struct node *n, const struct node_paths *np,
		 const bool on[PATHS_CAND_MAX], uint64_t now)
{
	for (unsigned k = 0; k < PATHS_CAND_MAX; k++)
		if (candidate(c, n, k) != -2 && !on[k] && np->rest_until[k] <= now)
			return (int)k;
	return -1;
}

static void node_round(struct ctrl *c, int slot, uint64_t now)
{
	const struct multipath_conf *mp = &c->conf.mp;
	struct node *n = &c->nodes.n[slot];
	struct node_paths *np = np_of(c, slot);
	bool on[PATHS_CAND_MAX] = { false };
	int worst = -1, k;
	unsigned wanted = mp->paths < n_candidates(c, n) ? mp->paths : n_candidates(c, n);
	char detail[256];

	if (np->pending && now - np->pending_us > PATHS_PENDING_US)
		np->pending = 0; /* known again with the next `routes` */
	if (!np->known || np->pending || n->removing || !n->dp.present)
		return;
	for (unsigned i = 0; i < np->n; i++) {
		const struct path_seen *p = &np->seen[i];
		char why[64];
		if ((k = cand_of(c, n, p->name)) < 0)
			continue;
		on[k] = true;
		judge(mp, p, why, sizeof(why));
		if (!why[0]) {
			np->bad_since[k] = 0;
			continue;
		}
		if (!np->bad_since[k])
			np->bad_since[k] = now;
		snprintf(np->bad_why[k], sizeof(np->bad_why[k]), "%s", why);
		if (now - np->bad_since[k] >= (uint64_t)mp->replace_after_ms * 1000 &&
		    (worst < 0 || np->bad_since[k] < np->bad_since[worst]))
			worst = k;
	}
	for (k = 0; k < PATHS_CAND_MAX; k++)
		if (!on[k])
			np->bad_since[k] = 0;
	/* The client gives every new route the direct path: off by configuration, it goes
	 * once a relay path is there to take over. */
	if (!mp->direct && np->n > 1)
		for (unsigned i = 0; i < np->n; i++)
			if (strcmp(np->seen[i].name, PATHS_DIRECT) == 0) {
				ls_info("node %s: the direct path goes ([multipath] direct = false)",
					n->conf.name);
				send_path(c, slot, "path_del", 0);
				return;
			}
	int s = spare(c, n, np, on, now);
	if (worst >= 0 && s < 0) {
		if (!np->no_spare_said)
			ls_warn("node %s: path %s is bad (%s) and no spare path to this egress is left",
				n->conf.name, cand_name(c, (unsigned)worst), np->bad_why[worst]);
		np->no_spare_said = true;
		return;
	}
	np->no_spare_said = false;
	if (worst >= 0) {
		/* Delete first when the route is full; else add first, so that it never runs
		 * on fewer paths than it had. Both go in order over one connection. */
		snprintf(detail, sizeof(detail),
			 "node %s: path %s replaced by %s (%s for %.1f s): the egress, and the address "
			 "the game server sees, stay the same",
			 n->conf.name, cand_name(c, (unsigned)worst), cand_name(c, (unsigned)s),
			 np->bad_why[worst], (double)(now - np->bad_since[worst]) / 1e6);
		if (np->n >= PATHS_PER_ROUTE) {
			send_path(c, slot, "path_del", (unsigned)worst);
			send_path(c, slot, "path_add", (unsigned)s);
		} else {
			send_path(c, slot, "path_add", (unsigned)s);
			send_path(c, slot, "path_del", (unsigned)worst);
		}
		np->rest_until[worst] = now + (uint64_t)mp->rest_ms * 1000;
		np->bad_since[worst] = 0;
		np->replaced++;
		c->paths.replaced++;
		ctrl_decision(c, "path", slot, detail);
		return;
	}
	if (np->n < wanted && np->n < PATHS_PER_ROUTE && s >= 0) {
		ls_info("node %s: adding path %s (%u of %u)", n->conf.name, cand_name(c, (unsigned)s),
			np->n + 1, wanted);
		send_path(c, slot, "path_add", (unsigned)s);
	}
}

void paths_round(struct ctrl *c, uint64_t now_us)
{
	if (!dplink_connected(c->dp))
		return;
	for (int i = 0; i < NODE_MAX; i++)
		if (paths_managed(c, i))
			node_round(c, i, now_us);
}

static bool egress_works(struct ctrl *c, int slot)
{
	struct node_paths *np;

	if (!paths_managed(c, slot))
		return false;
	np = np_of(c, slot);
	for (unsigned i = 0; i < np->n; i++)
		if (path_works(&c->conf.mp, &np->seen[i]))
			return true;
	return false;
}

void paths_filter(struct ctrl *c, struct select_decision *d)
{
	int cur = c->fo.active;
	char detail[256];

	if (d->reason != SELECT_BETTER || d->choose < 0 || !egress_works(c, cur)) {
		c->paths.egress_hold = false;
		return;
	}
	if (!c->paths.egress_hold) {
		c->paths.egress_holds++;
		snprintf(detail, sizeof(detail),
			 "%s would win on score, but a path to the egress %s works: the egress stays "
			 "(another would give the game server a new address)",
			 c->nodes.n[d->choose].conf.name, c->nodes.n[cur].conf.name);
		ctrl_decision(c, "hold", d->choose, detail);
	}
	c->paths.egress_hold = true;
	d->reason = SELECT_KEEP;
	d->choose = -1;
}

/* ---- GET /paths ------------------------------------------------------------------------------ */

static json_t *num_or_null(bool known, double v)
{
	return known ? json_real(v) : json_null();
}

static json_t *node_json(struct ctrl *c, int slot, uint64_t now)
{
	struct node *n = &c->nodes.n[slot];
	struct node_paths *np = np_of(c, slot);
	json_t *paths = json_array(), *spares = json_array();
	bool on[PATHS_CAND_MAX] = { false };

	for (unsigned i = 0; i < np->n; i++) {
		const struct path_seen *p = &np->seen[i];
		int k = cand_of(c, n, p->name);
		char why[64];
		judge(&c->conf.mp, p, why, sizeof(why));
		if (k >= 0)
			on[k] = true;
		double score = path_score_us(p);
		json_array_append_new(
			paths,
			json_pack("{s:s,s:o,s:b,s:b,s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "name", p->name,
				  "score_ms", num_or_null(score >= 0, score / 1000), "relay",
				  p->relay, "data", p->data, "state", p->state, "rtt_ms",
				  num_or_null(p->rtt_us >= 0, (double)p->rtt_us / 1000), "hop_rtt_ms",
				  num_or_null(p->hop_rtt_us >= 0, (double)p->hop_rtt_us / 1000), "loss_up",
				  num_or_null(p->loss_up >= 0, p->loss_up), "loss_down",
				  num_or_null(p->loss_down >= 0, p->loss_down), "bad",
				  why[0] ? json_string(why) : json_null(), "bad_for_ms",
				  k >= 0 && np->bad_since[k] ?
					  json_integer((json_int_t)((now - np->bad_since[k]) / 1000)) :
					  json_null()));
	}
	for (unsigned k = 0; k < PATHS_CAND_MAX; k++) {
		if (candidate(c, n, k) == -2 || on[k])
			continue;
		json_array_append_new(
			spares, json_pack("{s:s,s:o}", "name", cand_name(c, k), "resting_ms",
					  np->rest_until[k] > now ?
						  json_integer((json_int_t)((np->rest_until[k] - now) / 1000)) :
						  json_null()));
	}
	return json_pack("{s:s,s:b,s:b,s:o,s:o,s:o,s:o,s:I}", "node", n->conf.name, "active",
			 slot == c->fo.active, "managed", paths_managed(c, slot), "path_mode",
			 np->known ? json_string(np->mode) : json_null(), "path_mode_in_use",
			 np->known ? json_string(np->mode_in_use) : json_null(), "paths", paths,
			 "spares", spares, "replaced", (json_int_t)np->replaced);
}

/* Not const: np_of resets a reused slot's state, so the API's view is the round's. */
json_t *paths_json(struct ctrl *c, uint64_t now_us)
{
	json_t *arr = json_array();

	for (int i = 0; i < NODE_MAX; i++)
		if (c->nodes.n[i].used)
			json_array_append_new(arr, node_json(c, i, now_us));
	return json_pack("{s:o,s:b,s:I,s:I}", "nodes", arr, "egress_hold", c->paths.egress_hold,
			 "replaced", (json_int_t)c->paths.replaced, "egress_holds",
			 (json_int_t)c->paths.egress_holds);
}

enum ls_rc paths_api_get(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	(void)req;
	rep->json = paths_json(ctx, ls_now_us());
	return LS_RC_OK;
}

const struct ls_httpd_key paths_api_mode_keys[] = {
	{ "mode", LS_HTTPD_STRING, true },
	{ "node", LS_HTTPD_STRING, false },
	{ NULL, 0, false },
};

enum ls_rc paths_api_mode(void *ctx, const struct ls_httpd_req *req, struct ls_httpd_reply *rep)
{
	struct ctrl *c = ctx;
	const char *mode = json_string_value(json_object_get(req->body, "mode"));
	const char *node = json_string_value(json_object_get(req->body, "node"));
	int slot = node ? node_find(&c->nodes, node) : c->fo.active;
	enum ls_rc rc;

	if (!paths_mode_valid(mode)) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "mode must be single, duplicate, split or auto (not '%.32s')", mode);
		return LS_RC_INVALID;
	}
	if (slot < 0) {
		if (node)
			snprintf(rep->msg, sizeof(rep->msg), "no node named '%.32s'", node);
		else
			snprintf(rep->msg, sizeof(rep->msg), "no active node (name one with \"node\")");
		return node ? LS_RC_NOT_FOUND : LS_RC_CONFLICT;
	}
	rc = dplink_set_mode_now(c->dp, c->nodes.n[slot].conf.name, mode, rep->msg, sizeof(rep->msg));
	if (rc != LS_RC_OK)
		return rc;
	ls_info("node %s: path mode %s (by the API)", c->nodes.n[slot].conf.name, mode);
	rep->json = json_pack("{s:s,s:s}", "node", c->nodes.n[slot].conf.name, "mode", mode);
	return LS_RC_OK;
}
