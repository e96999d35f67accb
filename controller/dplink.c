/* lightspeed-controller: the client dataplane's steering link (docs/protocol.md 3.2).
 * One connection through the shared steering client: it subscribes to the route
 * events, polls `routes` (misses, state, counters), `status` and `stats`, and sends
 * failover's actions. On every (re)connect it adopts what the dataplane holds (its
 * routes, the active one, the armed backup) instead of resetting it, and only adds
 * what the configuration has and the dataplane lacks. Everything read from the
 * socket is checked before use: a malformed event is counted and dropped. */
#include "controller.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "steer_uv.h"
#include "util.h"

/* `routes` this often: misses and counters between events. */
#define DP_POLL_MS 200
/* `status` and `stats` every this many polls. */
#define DP_STATUS_EVERY 5
/* The API's blocking calls wait at most this long for the dataplane. */
#define DP_CALL_MS 2000

struct dplink {
	struct ctrl *c;
	uint64_t stats_us;          /* when the last `stats` answer came (0: none) */
	struct ls_steer_uv *uv;
	struct ls_steerc *sc;
	uv_timer_t poll;
	unsigned polls;
	bool routes_pending, status_pending, stats_pending;
	bool adopted;           /* the first `routes` since the connect has been read */
	bool was_up;            /* for logging the first loss only */
	bool no_routes;         /* the client does not know `routes` */
	bool notify_failed;     /* the last dplink_notify was refused (logged once) */
	unsigned calls;         /* blocking calls made (see on_routes) */
	bool syncing;           /* since a blocking call, until a `routes` asked after it */
	int failover_to;        /* a dataplane failover seen while syncing, or -1 */
	json_t *status, *stats;
	char game_server[LS_ADDRSTRLEN];
	bool add_pending[NODE_MAX], del_pending[NODE_MAX];
	struct dplink_stats st;
	struct ls_ratelog rl;
};

/* ---- reading what the dataplane says -------------------------------------------- */

/* An integer member, or def when absent or null; -1 (and *bad) when of another type. */
static int64_t get_int(json_t *o, const char *key, int64_t def, bool *bad)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return def;
	if (!json_is_integer(v)) {
		*bad = true;
		return def;
	}
	return json_integer_value(v);
}

/* A ratio in [0, 1], or -1 when null or absent. */
static double get_ratio(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);
	double x;

	if (!v || json_is_null(v))
		return -1;
	if (!json_is_number(v)) {
		*bad = true;
		return -1;
	}
	x = json_number_value(v);
	if (!(x >= 0 && x <= 1)) {
		*bad = true;
		return -1;
	}
	return x;
}

/* A node name member (1..31 of the allowed bytes); NULL when absent, null or bad. */
static const char *get_name(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (!v || json_is_null(v))
		return NULL;
	s = json_string_value(v);
	if (!s || !node_name_valid(s)) {
		*bad = true;
		return NULL;
	}
	return s;
}

int dplink_parse_route(json_t *o, char name[NODE_NAME_MAX], struct node_dp *out)
{
	bool bad = false;
	const char *s, *state, *proxy;
	struct sockaddr_in a;
	char msg[64];

	if (!json_is_object(o))
		return -1;
	s = get_name(o, "name", &bad);
	proxy = json_string_value(json_object_get(o, "proxy"));
	state = json_string_value(json_object_get(o, "state"));
	if (!s || bad || !proxy || ls_hostport_parse(proxy, &a, false, false, msg, sizeof(msg)) < 0 ||
	    !state ||
	    (strcmp(state, "unknown") != 0 && strcmp(state, "up") != 0 && strcmp(state, "down") != 0))
		return -1;
	memset(out, 0, sizeof(*out));
	memcpy(name, s, strlen(s) + 1);
	out->present = true;
	out->direct = json_is_true(json_object_get(o, "direct"));
	ls_addr_fmt(&a, out->proxy);
	out->auth = json_is_true(json_object_get(o, "auth"));
	out->session_id = get_int(o, "session_id", -1, &bad);
	out->probe_ms = (uint32_t)get_int(o, "probe_ms", 0, &bad);
	snprintf(out->state, sizeof(out->state), "%s", state);
	out->rtt_us = get_int(o, "rtt_us", -1, &bad);
	out->rtt_min_us = get_int(o, "rtt_min_us", -1, &bad);
	out->jitter_us = get_int(o, "jitter_us", -1, &bad);
	out->loss_up = get_ratio(o, "loss_up", &bad);
	out->loss_down = get_ratio(o, "loss_down", &bad);
	out->missed = (uint32_t)get_int(o, "missed", 0, &bad);
	out->keepalives_sent = (uint64_t)get_int(o, "keepalives_sent", 0, &bad);
	out->replies = (uint64_t)get_int(o, "replies", 0, &bad);
	out->last_rx_ms = get_int(o, "last_rx_ms", -1, &bad);
	out->flips = (uint32_t)get_int(o, "flips", 0, &bad);
	if (bad || out->session_id < -1 || out->session_id > 0xffffffffll || out->rtt_us < -1 ||
	    out->jitter_us < -1 || out->last_rx_ms < -1 || get_int(o, "missed", 0, &bad) < 0 ||
	    out->probe_ms > NODE_PROBE_MS_MAX)
		return -1;
	return 0;
}

static void bad_input(struct dplink *d, const char *what)
{
	d->st.bad_events++;
	d->c->ctr.bad_events++;
	ls_warn_rl(&d->rl, "dataplane: ignored a malformed %s", what);
}

/* ---- requests ---------------------------------------------------------------------- */

/* Context of an asynchronous request: the node by name (its slot may be reused before
 * the answer comes). */
struct req {
	struct dplink *d;
	char name[NODE_NAME_MAX];
	char cmd[16];
	int slot;
	unsigned calls; /* d->calls when sent */
};

static struct req *req_new(struct dplink *d, const char *cmd, const char *name, int slot)
{
	struct req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->d = d;
	snprintf(r->cmd, sizeof(r->cmd), "%s", cmd);
	if (name)
		snprintf(r->name, sizeof(r->name), "%s", name);
	r->slot = slot;
	r->calls = d->calls;
	return r;
}

static bool send_req(struct dplink *d, const char *cmd, json_t *args, ls_steerc_answer_fn fn,
		     struct req *r)
{
	enum ls_rc rc;

	if (!r) {
		json_decref(args);
		return false;
	}
	d->st.requests++;
	rc = ls_steerc_request(d->sc, cmd, args, fn, r);
	if (rc != LS_RC_OK) {
		d->st.errors++;
		ls_debug("dataplane: %s not sent: %s", cmd, ls_steerc_error(d->sc));
		free(r);
		return false;
	}
	return true;
}

uint64_t dplink_stats_us(const struct dplink *d)
{
	return d ? d->stats_us : 0;
}

bool dplink_request(struct dplink *d, const char *cmd, json_t *args, ls_steerc_answer_fn fn,
		    void *ud)
{
	enum ls_rc rc;

	if (!dplink_connected(d)) {
		json_decref(args);
		return false;
	}
	d->st.requests++;
	rc = ls_steerc_request(d->sc, cmd, args, fn, ud);
	if (rc != LS_RC_OK)
		d->st.errors++;
	return rc == LS_RC_OK;
}

static void on_notified(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;

	if (a->rc == LS_RC_OK)
		r->d->notify_failed = false;
	else if (!r->d->notify_failed) {
		r->d->notify_failed = true;
		ls_warn("dataplane: %s refused: %s: %s", r->cmd, a->code ? a->code : "error",
			a->message ? a->message : "");
	}
	free(r);
}

void dplink_notify(struct dplink *d, const char *cmd, json_t *args)
{
	if (!dplink_connected(d)) {
		json_decref(args);
		return;
	}
	send_req(d, cmd, args, on_notified, req_new(d, cmd, NULL, -1));
}

static int slot_of(struct dplink *d, const char *name)
{
	return name ? node_find(&d->c->nodes, name) : -1;
}

/* The args of route_add for a node. */
static json_t *route_args(const struct dplink *d, const struct node_conf *n, bool replace)
{
	char proxy[LS_ADDRSTRLEN], hex[2 * NODE_KEY_LEN + 1];
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(n->name));
	if (n->direct) {
		/* The game server itself: nothing of a proxy goes with it. */
		json_object_set_new(o, "direct", json_true());
		if (replace)
			json_object_set_new(o, "replace", json_true());
		return o;
	}
	json_object_set_new(o, "proxy", json_string(ls_addr_fmt(&n->addr, proxy)));
	if (n->key.set) {
		ls_hex_encode(n->key.b, NODE_KEY_LEN, hex);
		json_object_set_new(o, "session_id", json_integer(n->session_id));
		json_object_set_new(o, "key", json_string(hex));
	}
	json_object_set_new(o, "probe_ms", json_integer(n->probe_ms));
	if (d->c->conf.mp.mode[0])
		json_object_set_new(o, "path_mode", json_string(d->c->conf.mp.mode));
	if (replace)
		json_object_set_new(o, "replace", json_true());
	return o;
}

/* ---- adopting and reconciling the route table ------------------------------------- */

static void adopt_route(struct dplink *d, const char *name, const struct node_dp *dp)
{
	struct node_conf nc;
	char msg[128];

	node_conf_init(&nc);
	snprintf(nc.name, sizeof(nc.name), "%s", name);
	snprintf(nc.address, sizeof(nc.address), "%s", dp->proxy);
	ls_hostport_parse(dp->proxy, &nc.addr, false, false, msg, sizeof(msg));
	nc.session_id = dp->session_id > 0 ? (uint32_t)dp->session_id : 0;
	nc.probe_ms = dp->probe_ms ? dp->probe_ms : NODE_PROBE_MS_DEFAULT;
	nc.source = NODE_SRC_DATAPLANE;
	nc.direct = dp->direct;
	if (ctrl_node_add(d->c, &nc, msg, sizeof(msg)) == LS_RC_OK) {
		ls_info("node %s: adopted from the dataplane's table (%s)", name, dp->proxy);
		ctrl_publish(d->c, "node", json_pack("{s:s,s:s}", "name", name, "change", "added"));
	} else
		ls_warn("node %s: in the dataplane's table but not taken: %s", name, msg);
}

/* The dataplane holds the route, but with other parameters than ours. */
static bool differs(const struct node_conf *n, const struct node_dp *dp)
{
	char proxy[LS_ADDRSTRLEN];

	if (n->direct || dp->direct)
		return n->direct != dp->direct;
	ls_addr_fmt(&n->addr, proxy);
	return strcmp(proxy, dp->proxy) != 0 || n->key.set != dp->auth ||
	       (n->key.set && dp->session_id != (int64_t)n->session_id) ||
	       (dp->probe_ms && dp->probe_ms != n->probe_ms);
}

static void on_route_added(void *ud, const struct ls_steerc_answer *a);
static void on_route_deleted(void *ud, const struct ls_steerc_answer *a);

void dplink_sync(struct dplink *d)
{
	struct ctrl *c = d->c;

	if (!d || !dplink_connected(d) || !d->adopted)
		return;
	for (int i = 0; i < NODE_MAX; i++) {
		struct node *n = &c->nodes.n[i];
		if (!n->used)
			continue;
		if (n->removing) {
			if (!n->dp.present) {
				failover_forget(&c->fo, i);
				select_forget(&c->sel_state, i);
				node_remove(&c->nodes, i);
			} else if (!d->del_pending[i]) {
				d->del_pending[i] = send_req(d, "route_del",
							     json_pack("{s:s}", "name", n->conf.name),
							     on_route_deleted,
							     req_new(d, "route_del", n->conf.name, i));
			}
			continue;
		}
		if (n->conf.source == NODE_SRC_DATAPLANE || d->add_pending[i])
			continue;
		/* A node with an agent has its route once the agent issued its key. */
		if (n->conf.control_port && !n->conf.key.set)
			continue;
		if (!n->dp.present || differs(&n->conf, &n->dp))
			d->add_pending[i] = send_req(d, "route_add", route_args(d, &n->conf, n->dp.present),
						     on_route_added,
						     req_new(d, "route_add", n->conf.name, i));
	}
}

static void on_route_added(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;
	struct dplink *d = r->d;
	int slot = slot_of(d, r->name);

	if (r->slot >= 0 && r->slot < NODE_MAX)
		d->add_pending[r->slot] = false;
	if (a->rc == LS_RC_OK) {
		ls_info("node %s: route added to the dataplane", r->name);
		if (slot >= 0)
			d->c->nodes.n[slot].dp.present = true;
	} else if (a->rc != LS_RC_NOT_READY) {
		d->st.errors++;
		ls_warn("node %s: route_add refused: %s: %s", r->name, a->code ? a->code : "?",
			a->message ? a->message : "");
	}
	free(r);
}

static void on_route_deleted(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;
	struct dplink *d = r->d;
	struct ctrl *c = d->c;
	int slot = slot_of(d, r->name);

	if (r->slot >= 0 && r->slot < NODE_MAX)
		d->del_pending[r->slot] = false;
	if (slot >= 0 && (a->rc == LS_RC_OK || a->rc == LS_RC_NOT_FOUND)) {
		failover_forget(&c->fo, slot);
		select_forget(&c->sel_state, slot);
		node_remove(&c->nodes, slot);
		ls_info("node %s: route removed from the dataplane", r->name);
	} else if (slot >= 0 && a->rc != LS_RC_NOT_READY) {
		/* The active route cannot go (conflict): keep the node, say so. */
		c->nodes.n[slot].removing = false;
		ls_warn("node %s: not removed: %s", r->name, a->message ? a->message : "refused");
	}
	free(r);
}

/* A `routes` answer: every route's state, the active one and the backup. */
static void take_routes(struct dplink *d, json_t *res)
{
	struct ctrl *c = d->c;
	json_t *arr = json_object_get(res, "routes"), *o;
	bool seen[NODE_MAX] = { false }, bad = false;
	const char *active, *backup;
	size_t i;
	uint64_t now = ls_now_us();

	if (!json_is_array(arr)) {
		bad_input(d, "routes answer");
		return;
	}
	json_array_foreach(arr, i, o) {
		char name[NODE_NAME_MAX];
		struct node_dp dp;
		int slot;
		if (dplink_parse_route(o, name, &dp) < 0) {
			bad_input(d, "route object");
			continue;
		}
		slot = slot_of(d, name);
		if (slot < 0) {
			adopt_route(d, name, &dp);
			slot = slot_of(d, name);
			if (slot < 0)
				continue;
		}
		seen[slot] = true;
		c->nodes.n[slot].dp = dp;
		if (paths_take(c, slot, o) < 0)
			bad_input(d, "route's paths");
		/* The direct route sends no keepalives: its health is ICMP's (direct_route.c). */
		if (!dp.direct)
			health_missed(&c->nodes.n[slot].health, &c->conf.health, now, dp.missed);
		ctrl_health_events(c, slot);
	}
	for (int s = 0; s < NODE_MAX; s++) {
		struct node *n = &c->nodes.n[s];
		if (!n->used || seen[s])
			continue;
		n->dp.present = false;
		/* A route someone else added and then took away: the node goes with it. */
		if (n->conf.source == NODE_SRC_DATAPLANE && s != c->fo.active) {
			ls_info("node %s: gone from the dataplane's table", n->conf.name);
			failover_forget(&c->fo, s);
			select_forget(&c->sel_state, s);
			node_remove(&c->nodes, s);
		}
	}
	active = get_name(res, "active", &bad);
	backup = get_name(res, "backup", &bad);
	if (bad)
		bad_input(d, "routes answer");
	int as = slot_of(d, active), bs = slot_of(d, backup);
	if (!d->adopted) {
		d->adopted = true;
		failover_adopt(&c->fo, as, bs);
		ls_info("dataplane: %zu routes, active %s, backup %s: adopted as they are",
			json_array_size(arr), active ? active : "(none)", backup ? backup : "(none)");
	} else {
		enum switch_reason why;
		int from = c->fo.active;
		bool dp_failover = d->failover_to >= 0 && d->failover_to == as;
		if (failover_observe(&c->fo, as, bs, dp_failover, now, &why))
			ctrl_switched(c, from, as, why);
	}
	dplink_sync(d);
}

static void poll_routes(struct dplink *d);

static void on_routes(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;
	struct dplink *d = r->d;

	d->routes_pending = false;
	if (a->rc == LS_RC_OK && r->calls != d->calls) {
		/* Asked on this connection before a blocking call on another one changed the
		 * active route or the table: read as it is, it would look like a switch by
		 * someone else (and the call's own switch like another one). Ask again. */
		ls_debug("dataplane: a routes answer from before a change of ours, asked again");
		poll_routes(d);
	} else if (a->rc == LS_RC_OK) {
		take_routes(d, a->result);
		d->syncing = false;
		d->failover_to = -1;
	} else if (a->rc == LS_RC_UNKNOWN_COMMAND) {
		/* An older client: nothing to steer, and nothing to gain by asking again. */
		if (!d->no_routes)
			ls_err("dataplane: %s has no route table (`routes` is unknown: a "
			       "lightspeed-client older than this controller?): not steering it",
			       d->c->conf.client_socket);
		d->no_routes = true;
	} else if (a->rc != LS_RC_NOT_READY)
		ls_warn_rl(&d->rl, "dataplane: routes: %s: %s", a->code ? a->code : "?",
			   a->message ? a->message : "");
	free(r);
}

static void keep_json(json_t **slot, json_t *v)
{
	json_decref(*slot);
	*slot = json_incref(v);
}

static void on_status(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;
	struct dplink *d = r->d;

	d->status_pending = false;
	if (a->rc == LS_RC_OK && json_is_object(a->result)) {
		const char *gs = json_string_value(json_object_get(a->result, "game_server"));
		struct sockaddr_in addr;
		char msg[64];
		keep_json(&d->status, a->result);
		if (gs && ls_hostport_parse(gs, &addr, false, false, msg, sizeof(msg)) == 0)
			ls_addr_fmt(&addr, d->game_server);
	}
	free(r);
}

static void on_stats(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;
	struct dplink *d = r->d;

	d->stats_pending = false;
	if (a->rc == LS_RC_OK && json_is_object(a->result)) {
		keep_json(&d->stats, a->result);
		d->stats_us = ls_now_us();
	}
	free(r);
}

static void poll_routes(struct dplink *d)
{
	if (!d->routes_pending && !d->no_routes)
		d->routes_pending = send_req(d, "routes", NULL, on_routes, req_new(d, "routes", NULL, -1));
}

static void on_poll(uv_timer_t *t)
{
	struct dplink *d = t->data;

	if (!dplink_connected(d))
		return;
	poll_routes(d);
	if (d->polls++ % DP_STATUS_EVERY == 0) {
		if (!d->status_pending)
			d->status_pending =
				send_req(d, "status", NULL, on_status, req_new(d, "status", NULL, -1));
		if (!d->stats_pending)
			d->stats_pending =
				send_req(d, "stats", NULL, on_stats, req_new(d, "stats", NULL, -1));
	}
}

/* ---- events ------------------------------------------------------------------------- */

static void ev_sample(struct dplink *d, json_t *ev)
{
	struct ctrl *c = d->c;
	bool bad = false;
	int slot = slot_of(d, get_name(ev, "name", &bad));
	int64_t rtt = get_int(ev, "rtt_us", -1, &bad), jit = get_int(ev, "jitter_us", -1, &bad);
	double up = get_ratio(ev, "loss_up", &bad), down = get_ratio(ev, "loss_down", &bad);

	if (bad || rtt < 0 || rtt > 60000000 || jit < -1) {
		bad_input(d, "route_sample event");
		return;
	}
	if (slot < 0)
		return; /* a route we have not adopted yet: the next poll brings it */
	health_sample(&c->nodes.n[slot].health, &c->conf.health, ls_now_us(), (uint32_t)rtt, jit, up,
		      down);
	c->ctr.samples++;
	if (api_streams(c))
		ctrl_publish(c, "sample",
			     json_pack("{s:s,s:f,s:o,s:o,s:o}", "name", c->nodes.n[slot].conf.name, "rtt_ms",
				       rtt / 1000.0, "jitter_ms",
				       jit >= 0 ? json_real(jit / 1000.0) : json_null(), "loss_up",
				       up >= 0 ? json_real(up) : json_null(), "loss_down",
				       down >= 0 ? json_real(down) : json_null()));
	ctrl_health_events(c, slot);
}

static void ev_state(struct dplink *d, json_t *ev)
{
	struct ctrl *c = d->c;
	bool bad = false;
	int slot = slot_of(d, get_name(ev, "name", &bad));
	int64_t missed = get_int(ev, "missed", 0, &bad);
	const char *state = json_string_value(json_object_get(ev, "state"));

	if (bad || missed < 0 || missed > 0xffffffffll || !state) {
		bad_input(d, "route_state event");
		return;
	}
	if (slot < 0)
		return;
	snprintf(c->nodes.n[slot].dp.state, sizeof(c->nodes.n[slot].dp.state), "%.11s", state);
	health_missed(&c->nodes.n[slot].health, &c->conf.health, ls_now_us(), (uint32_t)missed);
	ctrl_health_events(c, slot);
}

static void ev_switch(struct dplink *d, json_t *ev)
{
	struct ctrl *c = d->c;
	bool bad = false;
	const char *to = get_name(ev, "to", &bad), *reason;
	enum switch_reason why;
	int from = c->fo.active, ts;

	get_name(ev, "from", &bad);
	reason = json_string_value(json_object_get(ev, "reason"));
	if (bad || !to || !reason) {
		bad_input(d, "switch event");
		return;
	}
	ts = slot_of(d, to);
	if (ts < 0) {
		poll_routes(d); /* a route we do not know yet: adopt it first */
		return;
	}
	bool dp_failover = strcmp(reason, "failover") == 0;
	if (d->syncing) {
		/* Sent before a blocking call of ours ended, maybe (events of the link's
		 * connection and that call's answer are not ordered): the `routes` asked
		 * after the call says where the route is now. */
		if (dp_failover)
			d->failover_to = ts;
		return;
	}
	if (failover_observe(&c->fo, ts, c->fo.backup, dp_failover, ls_now_us(), &why))
		ctrl_switched(c, from, ts, why);
	/* The dataplane disarms the backup it used: the next one is armed by the next
	 * round. Not this instant after a failover: the route left is dead, but its
	 * route_state comes after this event, and until then it would look like the
	 * best standby. */
	if (!dp_failover)
		ctrl_round(c);
}

static void ev_gap(struct dplink *d, json_t *ev)
{
	struct ctrl *c = d->c;
	bool bad = false;
	const char *to = get_name(ev, "to", &bad);
	int64_t gap = get_int(ev, "gap_us", -1, &bad);
	char err[300];

	if (bad || !to || gap < 0) {
		bad_input(d, "switch_gap event");
		return;
	}
	if (history_set_gap(&c->hist, to, gap)) {
		ctrl_publish(c, "gap", json_pack("{s:s,s:f}", "to", to, "gap_ms", gap / 1000.0));
		ls_info("route: switch to %s took %.1f ms between game packets", to, gap / 1000.0);
		if (c->history_path[0] && history_save(&c->hist, c->history_path, err, sizeof(err)) < 0)
			ls_warn("history not saved: %s", err);
	}
}

static void ev_backup(struct dplink *d, json_t *ev)
{
	struct ctrl *c = d->c;
	bool bad = false;
	const char *name = get_name(ev, "name", &bad);
	enum switch_reason why;

	if (bad) {
		bad_input(d, "backup event");
		return;
	}
	if (!d->syncing)
		failover_observe(&c->fo, c->fo.active, slot_of(d, name), false, ls_now_us(), &why);
	ctrl_publish(c, "backup", json_pack("{s:o}", "name", name ? json_string(name) : json_null()));
}

static const struct {
	const char *name;
	void (*fn)(struct dplink *d, json_t *ev);
} event_table[] = {
	{ "route_sample", ev_sample }, { "route_state", ev_state }, { "switch", ev_switch },
	{ "switch_gap", ev_gap },      { "backup", ev_backup },
};

static void on_event(void *ctx, const char *name, json_t *ev)
{
	struct dplink *d = ctx;

	d->st.events++;
	for (size_t i = 0; i < LS_ARRAY_LEN(event_table); i++)
		if (strcmp(event_table[i].name, name) == 0) {
			event_table[i].fn(d, ev);
			return;
		}
	/* rtt, path, route, counters: the older events, read through the polls instead. */
}

static void on_connected(void *ctx)
{
	struct dplink *d = ctx;

	d->st.connects++;
	d->c->ctr.dataplane_connects++;
	d->adopted = false;
	d->no_routes = false;
	d->was_up = true;
	d->routes_pending = d->status_pending = d->stats_pending = false;
	d->syncing = false;
	d->failover_to = -1;
	memset(d->add_pending, 0, sizeof(d->add_pending));
	memset(d->del_pending, 0, sizeof(d->del_pending));
	ls_info("dataplane: connected to %s", d->c->conf.client_socket);
	ctrl_publish(d->c, "dataplane", json_pack("{s:b}", "connected", 1));
	poll_routes(d);
	d->polls = 0;
	on_poll(&d->poll);
	game_detect_dataplane_up(d->c->games);
}

static void on_disconnected(void *ctx, const char *why)
{
	struct dplink *d = ctx;

	d->adopted = false;
	ctrl_publish(d->c, "dataplane", json_pack("{s:b}", "connected", 0));
	ls_warn("dataplane: %s: lost (%s); it keeps forwarding on its last route, reconnecting",
		d->c->conf.client_socket, why);
}

/* ---- the link ----------------------------------------------------------------------- */

static const struct ls_steerc_ops dp_ops = { on_connected, on_disconnected, on_event };

static int link_open(struct dplink *d, char *err, size_t errlen)
{
	d->uv = ls_steer_uv_open(d->c->loop, d->c->conf.client_socket, &dp_ops, d, NULL, err, errlen);
	if (!d->uv)
		return -1;
	d->sc = ls_steer_uv_client(d->uv);
	ls_steerc_subscribe(d->sc);
	return 0;
}

struct dplink *dplink_open(struct ctrl *c, char *err, size_t errlen)
{
	struct dplink *d = calloc(1, sizeof(*d));

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->c = c;
	d->failover_to = -1;
	if (link_open(d, err, errlen) < 0) {
		free(d);
		return NULL;
	}
	d->poll.data = d;
	uv_timer_init(c->loop, &d->poll);
	uv_timer_start(&d->poll, on_poll, DP_POLL_MS, DP_POLL_MS);
	return d;
}

int dplink_reopen(struct dplink *d, char *err, size_t errlen)
{
	ls_steer_uv_close(d->uv);
	d->uv = NULL;
	d->sc = NULL;
	d->adopted = false;
	return link_open(d, err, errlen);
}

static void free_on_close(uv_handle_t *h)
{
	struct dplink *d = h->data;

	json_decref(d->status);
	json_decref(d->stats);
	free(d);
}

void dplink_close(struct dplink *d)
{
	if (!d)
		return;
	if (d->uv)
		ls_steer_uv_close(d->uv);
	uv_timer_stop(&d->poll);
	uv_close((uv_handle_t *)&d->poll, free_on_close);
}

bool dplink_connected(const struct dplink *d)
{
	return d && d->sc && ls_steerc_connected(d->sc);
}

json_t *dplink_status(const struct dplink *d)
{
	return dplink_connected(d) ? d->status : NULL;
}

json_t *dplink_stats(const struct dplink *d)
{
	return dplink_connected(d) ? d->stats : NULL;
}

const char *dplink_game_server(const struct dplink *d)
{
	return d && d->game_server[0] ? d->game_server : NULL;
}

void dplink_get_stats(const struct dplink *d, struct dplink_stats *st)
{
	*st = d->st;
}

/* ---- actions ------------------------------------------------------------------------- */

static void on_switch_answer(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;
	struct ctrl *c = r->d->c;
	int slot = slot_of(r->d, r->name), from = c->fo.active;
	enum switch_reason why;

	if (a->rc != LS_RC_OK && a->rc != LS_RC_NOT_READY)
		ls_warn("set_route %s refused: %s: %s", r->name, a->code ? a->code : "?",
			a->message ? a->message : "");
	if (slot >= 0 && failover_done(&c->fo, FO_SET_ROUTE, slot, a->rc == LS_RC_OK, ls_now_us(), &why))
		ctrl_switched(c, from, slot, why);
	else if (slot < 0)
		failover_done(&c->fo, FO_SET_ROUTE, r->slot, false, ls_now_us(), &why);
	free(r);
}

static void on_arm_answer(void *ud, const struct ls_steerc_answer *a)
{
	struct req *r = ud;
	struct ctrl *c = r->d->c;
	enum switch_reason why;
	int slot = r->name[0] ? slot_of(r->d, r->name) : -1;

	/* Success needs no word here: the dataplane's own `backup` event tells the streams. */
	if (a->rc != LS_RC_OK && a->rc != LS_RC_NOT_READY)
		ls_warn("arm_backup %s refused: %s: %s", r->name[0] ? r->name : "null",
			a->code ? a->code : "?", a->message ? a->message : "");
	failover_done(&c->fo, FO_ARM, slot, a->rc == LS_RC_OK, ls_now_us(), &why);
	free(r);
}

void dplink_act(struct dplink *d, const struct failover_action *a)
{
	struct ctrl *c = d->c;
	const char *name = a->slot >= 0 && c->nodes.n[a->slot].used ? c->nodes.n[a->slot].conf.name :
								      NULL;
	enum switch_reason why;

	if (a->kind == FO_SET_ROUTE && name) {
		if (!send_req(d, "set_route", json_pack("{s:s}", "name", name), on_switch_answer,
			      req_new(d, "set_route", name, a->slot)))
			failover_done(&c->fo, FO_SET_ROUTE, a->slot, false, ls_now_us(), &why);
	} else if (a->kind == FO_ARM) {
		json_t *args = json_pack("{s:o}", "name", name ? json_string(name) : json_null());
		if (!send_req(d, "arm_backup", args, on_arm_answer, req_new(d, "arm_backup", name, a->slot)))
			failover_done(&c->fo, FO_ARM, a->slot, false, ls_now_us(), &why);
	}
}

/* A blocking call on a connection of its own (the link's own connection is driven by
 * the loop, which is busy running the caller). The dataplane answers within its loop
 * turn, so the wait is short; the limit keeps a stuck dataplane from stalling us. */
static enum ls_rc call_now(struct dplink *d, const char *cmd, json_t *args, char *msg,
			   size_t msglen)
{
	json_t *res = NULL;
	enum ls_rc rc;

	if (!dplink_connected(d)) {
		json_decref(args);
		snprintf(msg, msglen, "no client dataplane connected at %s (is lightspeed-client running?)",
			 d->c->conf.client_socket);
		return LS_RC_NOT_READY;
	}
	d->st.requests++;
	rc = ls_steerc_call(d->c->conf.client_socket, cmd, args, DP_CALL_MS, &res, msg, msglen);
	d->calls++;
	d->syncing = true;
	poll_routes(d);
	json_decref(res);
	if (rc != LS_RC_OK)
		d->st.errors++;
	return rc;
}

enum ls_rc dplink_add_now(struct dplink *d, int slot, char *msg, size_t msglen)
{
	struct node *n = &d->c->nodes.n[slot];
	enum ls_rc rc = call_now(d, "route_add", route_args(d, &n->conf, false), msg, msglen);

	if (rc == LS_RC_OK)
		n->dp.present = true;
	return rc;
}

enum ls_rc dplink_set_fec_now(struct dplink *d, const char *fec, char *msg, size_t msglen)
{
	return call_now(d, "set_fec", json_pack("{s:s}", "fec", fec), msg, msglen);
}

enum ls_rc dplink_set_mode_now(struct dplink *d, const char *node, const char *mode, char *msg,
			       size_t msglen)
{
	return call_now(d, "set_path_mode", json_pack("{s:s,s:s}", "route", node, "mode", mode), msg,
			msglen);
}

enum ls_rc dplink_del_now(struct dplink *d, const char *name, char *msg, size_t msglen)
{
	return call_now(d, "route_del", json_pack("{s:s}", "name", name), msg, msglen);
}

enum ls_rc dplink_switch_now(struct dplink *d, int slot, char *msg, size_t msglen)
{
	struct ctrl *c = d->c;
	int from = c->fo.active;
	enum switch_reason why;
	enum ls_rc rc = call_now(d, "set_route", json_pack("{s:s}", "name", c->nodes.n[slot].conf.name),
				 msg, msglen);

	if (failover_done(&c->fo, FO_SET_ROUTE, slot, rc == LS_RC_OK, ls_now_us(), &why))
		ctrl_switched(c, from, slot, why);
	return rc;
}
