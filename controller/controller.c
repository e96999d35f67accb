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
		"         [--dashboard ADDR:PORT|off] [--web-root DIR]\n"
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
		"  --dashboard ADDR:PORT   the web dashboard (default " CTRL_DEFAULT_DASHBOARD
		"; off: none)\n"
		"  --web-root DIR          the dashboard's files (default: the installed ones,\n"
		"                          or web/ of the source tree this program was built in)\n"
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

enum { OPT_SOCKET = 256, OPT_API, OPT_NODE, OPT_STATE, OPT_LOG, OPT_CHECK, OPT_DASH, OPT_WEB };

static void parse_cmdline(int argc, char **argv, struct ctrl_flags *fl)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "client-socket", required_argument, NULL, OPT_SOCKET },
		{ "api", required_argument, NULL, OPT_API },
		{ "dashboard", required_argument, NULL, OPT_DASH },
		{ "web-root", required_argument, NULL, OPT_WEB },
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
		case OPT_DASH:
			fl->dashboard = optarg;
			break;
		case OPT_WEB:
			fl->web_root = optarg;
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

static void on_tick(uv_timer_t *t)
{
	agents_sync(t->data);
	ctrl_round(t->data);
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
		/* With a dataplane its route goes first (dplink_sync); without one the
		 * dataplane's table is not ours to change, and the node just goes. */
		if (dplink_connected(c->dp)) {
			n->removing = true;
		} else {
			failover_forget(&c->fo, i);
			select_forget(&c->sel_state, i);
			node_remove(&c->nodes, i);
		}
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
	snprintf(nc->dashboard, sizeof(nc->dashboard), "%s", c->conf.dashboard);
	snprintf(nc->web_root, sizeof(nc->web_root), "%s", c->conf.web_root);
	snprintf(nc->state_dir, sizeof(nc->state_dir), "%s", c->conf.state_dir);
	c->conf = *nc;
	free(nc);
	if (ml_ctl_set_strategy(c, c->conf.strategy, err, sizeof(err)) != LS_RC_OK)
		ls_err("reload: %s", err);
	ls_log_set_level((enum ls_log_level)c->conf.log_level);
	if (socket_moved && dplink_reopen(c->dp, err, sizeof(err)) < 0)
		ls_err("reload: client socket %s: %s", c->conf.client_socket, err);
	dplink_sync(c->dp);
	game_detect_reload(c->games);
	warp_reload(c->warp);
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
	discovery_dns_close(c->dns);
	c->dns = NULL;
	agents_close(c);
	icmp_close(c->icmp);
	c->icmp = NULL;
	warp_close(c->warp);
	c->warp = NULL;
	ml_ctl_close(c->ml);
	game_detect_close(c->games);
	c->games = NULL;
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
	if (agents_open(c, err, sizeof(err)) < 0) {
		ls_err("agents: %s", err);
		return 1;
	}
	if (c->conf.discovery.dns_domain[0]) {
		c->dns = discovery_dns_open(c->loop, &c->conf.discovery, agents_found_dns, c, err,
					    sizeof(err));
		if (!c->dns)
			ls_warn("DNS discovery off: %s", err);
	}
	c->icmp = icmp_open(c);
	c->games = game_detect_open(c);
	c->warp = warp_open(c);
	c->ml = ml_ctl_open(c);
	if (!c->ml) {
		ls_err("out of memory");
		return 1;
	}

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
