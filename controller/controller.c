/* lightspeed-controller: main, the libuv loop, signals and reload, and the round that
 * runs every tick: health reports in, the selector's scores, selection's decision,
 * failover's actions out to the client dataplane. */
#include "controller.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "addr.h"
#include "log.h"
#include "util.h"

/* ---- command line -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " CTRL_PROG " [-c FILE] [--client-socket PATH] [--api ADDR:PORT]\n"
		"         [--node NAME=HOST:PORT[,session=ID,key-file=PATH]]... [--state-dir DIR]\n"
		"         [--log-level LEVEL] [--check]\n"
		"\n"
		"Measures every node along the path game packets take, picks the route (nearest,\n"
		"with anti-flap), keeps the best standby armed in the client dataplane for its\n"
		"own fast failover, and serves the REST API. Without a controller the dataplane\n"
		"keeps its last route; a controller that starts adopts what the dataplane holds.\n"
		"\n"
		"  -c, --config FILE       configuration (default " CTRL_DEFAULT_CONFIG
		" if it exists);\n"
		"                          flags override it\n"
		"  --client-socket PATH    the client dataplane's steering socket (default\n"
		"                          " CTRL_DEFAULT_SOCKET
		"; $XDG_RUNTIME_DIR/lightspeed/client.sock\n"
		"                          when not root)\n"
		"  --api ADDR:PORT         the REST API (default " CTRL_DEFAULT_API
		"; off loopback it\n"
		"                          needs api_token in the configuration)\n"
		"  --node NAME=HOST:PORT[,session=ID,key-file=PATH][,probe-ms=N]\n"
		"                          a node by its tunnel address (repeatable; replaces the\n"
		"                          file's node of the same name); session and key file for\n"
		"                          a proxy that requires authentication\n"
		"  --state-dir DIR         where the switch history is kept (default " CTRL_DEFAULT_STATE_DIR
		")\n"
		"  --log-level LEVEL       error, warn, info or debug (default info)\n"
		"  --check                 validate, print the effective configuration, exit 0/1\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n"
		"\n"
		"Signals: SIGHUP reloads the configuration (kept as it was when the new one has an\n"
		"error); SIGTERM and SIGINT stop the controller (the dataplane keeps forwarding).\n");
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, CTRL_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" CTRL_PROG " --help' for more information.\n");
	exit(2);
}

enum { OPT_SOCKET = 256, OPT_API, OPT_NODE, OPT_STATE, OPT_LOG, OPT_CHECK };

static void parse_cmdline(int argc, char **argv, struct ctrl_flags *fl)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "client-socket", required_argument, NULL, OPT_SOCKET },
		{ "api", required_argument, NULL, OPT_API },
		{ "node", required_argument, NULL, OPT_NODE },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "log-level", required_argument, NULL, OPT_LOG },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(fl, 0, sizeof(*fl));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			fl->config = optarg;
			break;
		case OPT_SOCKET:
			fl->client_socket = optarg;
			break;
		case OPT_API:
			fl->api = optarg;
			break;
		case OPT_NODE:
			if (fl->n_nodes >= NODE_MAX)
				usage_error("too many --node flags (at most %d)", NODE_MAX);
			fl->nodes[fl->n_nodes++] = optarg;
			break;
		case OPT_STATE:
			fl->state_dir = optarg;
			break;
		case OPT_LOG:
			fl->log_level = optarg;
			break;
		case OPT_CHECK:
			fl->check = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(CTRL_PROG " " LS_VERSION "\n");
			exit(0);
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
}

/* ---- the round --------------------------------------------------------------------- */

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
	c->sel.score(c->sel.self, cand, NODE_MAX, now, s);
	for (int i = 0; i < NODE_MAX; i++) {
		struct node *n = &c->nodes.n[i];
		/* A node the dataplane holds no route for cannot carry traffic yet. */
		if (n->used && !n->dp.present && s[i].usable) {
			s[i].usable = false;
			snprintf(s[i].why, sizeof(s[i].why), "no route in the dataplane yet");
		}
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
	if (!dplink_connected(c->dp))
		return;
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

static void on_tick(uv_timer_t *t)
{
	ctrl_round(t->data);
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

/* ---- configuration and reload ---------------------------------------------------- */

static void state_dir_ready(struct ctrl *c)
{
	char err[300];
	unsigned skipped = 0;

	c->history_path[0] = '\0';
	/* The history is worth keeping but not worth refusing to run for. */
	if (mkdir(c->conf.state_dir, 0750) < 0 && errno != EEXIST) {
		ls_warn("state directory %s: %s: the switch history is kept in memory only "
			"(set state_dir or --state-dir)",
			c->conf.state_dir, strerror(errno));
		return;
	}
	snprintf(c->history_path, sizeof(c->history_path), "%s/history.jsonl", c->conf.state_dir);
	history_init(&c->hist);
	if (history_load(&c->hist, c->history_path, &skipped, err, sizeof(err)) < 0)
		ls_warn("history: %s", err);
	else if (skipped)
		ls_warn("history %s: %u unreadable lines skipped", c->history_path, skipped);
}

/* Nodes of the new configuration: added, changed in place, or removed when a
 * configuration brought them and no longer does. */
static void apply_nodes(struct ctrl *c, const struct ctrl_conf *nc)
{
	char msg[200];

	for (int i = 0; i < NODE_MAX; i++) {
		struct node *n = &c->nodes.n[i];
		bool keep = false;
		if (!n->used || (n->conf.source != NODE_SRC_CONFIG && n->conf.source != NODE_SRC_CMDLINE))
			continue;
		for (unsigned j = 0; j < nc->n_nodes && !keep; j++)
			keep = strcmp(nc->nodes[j].name, n->conf.name) == 0;
		if (keep)
			continue;
		if (i == c->fo.active) {
			ls_warn("node %s left the configuration but carries the active route: kept "
				"until the route moves",
				n->conf.name);
			n->conf.source = NODE_SRC_DATAPLANE;
			continue;
		}
		ls_info("node %s: removed (no longer configured)", n->conf.name);
		n->removing = true;
	}
	for (unsigned j = 0; j < nc->n_nodes; j++) {
		int slot = node_find(&c->nodes, nc->nodes[j].name);
		if (slot < 0) {
			if (ctrl_node_add(c, &nc->nodes[j], msg, sizeof(msg)) != LS_RC_OK)
				ls_warn("node %s: %s", nc->nodes[j].name, msg);
			continue;
		}
		struct node *n = &c->nodes.n[slot];
		if (!node_conf_same_route(&n->conf, &nc->nodes[j]))
			n->dp.present = false; /* dplink_sync replaces the route */
		n->conf = nc->nodes[j];
	}
}

static void reload(struct ctrl *c)
{
	struct ctrl_conf *nc = malloc(sizeof(*nc));
	char err[1024];
	bool socket_moved;

	if (!nc) {
		ls_err("reload: out of memory; the running configuration stays");
		return;
	}
	if (ctrl_conf_build(&c->flags, nc, err, sizeof(err)) < 0) {
		ls_err("reload: %s; the running configuration stays", err);
		free(nc);
		return;
	}
	if (strcmp(nc->api, c->conf.api) != 0 || strcmp(nc->api_token, c->conf.api_token) != 0)
		ls_warn("reload: the API's address and token change at the next start");
	if (strcmp(nc->state_dir, c->conf.state_dir) != 0)
		ls_warn("reload: state_dir changes at the next start");
	if (strcmp(nc->strategy, c->conf.strategy) != 0)
		ls_info("reload: strategy %s", nc->strategy);
	socket_moved = strcmp(nc->client_socket, c->conf.client_socket) != 0;
	apply_nodes(c, nc);
	/* Everything the modules read goes in place (the selector reads c->conf.nearest). */
	snprintf(nc->api, sizeof(nc->api), "%s", c->conf.api);
	snprintf(nc->api_token, sizeof(nc->api_token), "%s", c->conf.api_token);
	snprintf(nc->state_dir, sizeof(nc->state_dir), "%s", c->conf.state_dir);
	c->conf = *nc;
	free(nc);
	ls_log_set_level((enum ls_log_level)c->conf.log_level);
	if (socket_moved && dplink_reopen(c->dp, err, sizeof(err)) < 0)
		ls_err("reload: client socket %s: %s", c->conf.client_socket, err);
	dplink_sync(c->dp);
	ls_info("reload: configuration applied (%u nodes)", node_count(&c->nodes));
	ctrl_round(c);
}

/* ---- signals and shutdown -------------------------------------------------------- */

static void on_close(uv_handle_t *h)
{
	(void)h;
}

static void stop(struct ctrl *c)
{
	if (c->stopping)
		return;
	c->stopping = true;
	ls_info("stopping (the dataplane keeps its route)");
	uv_timer_stop(&c->tick);
	uv_close((uv_handle_t *)&c->tick, on_close);
	uv_close((uv_handle_t *)&c->sig_hup, on_close);
	uv_close((uv_handle_t *)&c->sig_term, on_close);
	uv_close((uv_handle_t *)&c->sig_int, on_close);
	api_close(c);
	icmp_close(c->icmp);
	c->icmp = NULL;
	dplink_close(c->dp);
	c->dp = NULL;
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct ctrl *c = s->data;

	if (signum == SIGHUP)
		reload(c);
	else
		stop(c);
}

static int start_signal(struct ctrl *c, uv_signal_t *s, int signum)
{
	s->data = c;
	if (uv_signal_init(c->loop, s) < 0)
		return -1;
	return uv_signal_start(s, on_signal, signum);
}

int main(int argc, char **argv)
{
	static struct ctrl ctrl; /* large (sample rings): not on the stack */
	struct ctrl *c = &ctrl;
	char err[1024];
	int rc;

	parse_cmdline(argc, argv, &c->flags);
	if (ctrl_conf_build(&c->flags, &c->conf, err, sizeof(err)) < 0) {
		fprintf(stderr, CTRL_PROG ": %s\n", err);
		return 1;
	}
	if (c->flags.check) {
		ctrl_conf_print(&c->conf, stdout);
		return 0;
	}
	ls_log_init(CTRL_PROG, (enum ls_log_level)c->conf.log_level);
	c->started_us = ls_now_us();
	c->loop = uv_default_loop();

	node_table_init(&c->nodes);
	for (unsigned i = 0; i < c->conf.n_nodes; i++)
		if (ctrl_node_add(c, &c->conf.nodes[i], err, sizeof(err)) != LS_RC_OK)
			ls_warn("node %s: %s", c->conf.nodes[i].name, err);
	c->sel = select_nearest(&c->conf.nearest);
	failover_init(&c->fo);
	history_init(&c->hist);
	state_dir_ready(c);

	if (start_signal(c, &c->sig_hup, SIGHUP) < 0 || start_signal(c, &c->sig_term, SIGTERM) < 0 ||
	    start_signal(c, &c->sig_int, SIGINT) < 0) {
		ls_err("cannot watch signals");
		return 1;
	}
	/* A write to a steering peer or HTTP client that went away must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	if (api_open(c, err, sizeof(err)) < 0) {
		ls_err("REST API: %s", err);
		return 1;
	}
	c->dp = dplink_open(c, err, sizeof(err));
	if (!c->dp) {
		ls_err("client dataplane link: %s", err);
		return 1;
	}
	c->icmp = icmp_open(c);

	c->tick.data = c;
	uv_timer_init(c->loop, &c->tick);
	uv_timer_start(&c->tick, on_tick, CTRL_TICK_MS, CTRL_TICK_MS);
	ls_info("started: %u nodes, client socket %s, strategy %s", node_count(&c->nodes),
		c->conf.client_socket, c->sel.name);

	uv_run(c->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(c->loop);
	if (rc != 0)
		ls_warn("loop closed with handles open: %s", uv_strerror(rc));
	return 0;
}
