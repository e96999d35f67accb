/* lsctl: the command-line client of the controller's REST API (api/openapi.yaml).
 *   lsctl [--api URL] [--json] [--token T] COMMAND [ARGS]
 * A table of subcommands; every answer goes through the output layer (output.h):
 * text for people, the API's exact JSON with --json. Exit codes: 0 ok, 1 the API
 * refused (its message on stderr), 2 usage, 3 the API unreachable. */
#include "lsctl.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_API "http://127.0.0.1:9000"

static int cmd_simple(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
static int cmd_node(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);
static int cmd_failover(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv);

static const struct lsctl_cmd commands[] = {
	{ "status", cmd_simple, "", "what the controller is doing: active node, backup, nodes",
	  "GET /status." },
	{ "routes", cmd_simple, "",
	  "per game server: the active node and why, the backup, every candidate",
	  "GET /routes. The table marks the active node with * and the armed backup with b;\n"
	  "RTT, P50, P95, JITTER, LEG (node to game server), PATH (the whole way) and SCORE\n"
	  "are milliseconds; - means not measured yet." },
	{ "proxies", cmd_simple, "", "every node: address, source, region, state, RTT, loss",
	  "GET /proxies." },
	{ "proxy", cmd_node, "NAME", "one node in detail", "GET /proxies/NAME." },
	{ "add", lsctl_cmd_add,
	  "NAME HOST:PORT [--session-id ID --key HEX] [--probe-ms MS] [--region NAME]",
	  "add a node at run time",
	  "POST /proxies. HOST:PORT is the node's tunnel address (UDP, default port 4434).\n"
	  "--session-id and --key (32 hex digits) go together, for a node that requires\n"
	  "authentication; --probe-ms sets the standby probe interval (default 250, min 20)." },
	{ "remove", cmd_node, "NAME", "remove a node (not the active one: fail over first)",
	  "DELETE /proxies/NAME." },
	{ "trust", cmd_node, "NAME", "accept the new certificate of a node's agent",
	  "POST /proxies/NAME/trust. A node whose agent shows a certificate other than the\n"
	  "one pinned at first use is refused and down; `lsctl proxy NAME` shows both\n"
	  "fingerprints. Check the new one with the node's operator (the agent prints it at\n"
	  "start), then trust it: it becomes the pin and the controller connects again.\n"
	  "A fingerprint given in the controller's configuration is changed there instead." },
	{ "failover", cmd_failover, "[--to NAME]",
	  "switch now: to the best standby, or to NAME",
	  "POST /failover. Refused (exit 1) when the target is down, already active, or\n"
	  "there is no standby." },
	{ "history", cmd_simple, "", "the switches so far, newest first, with reason and gap",
	  "GET /failovers." },
	{ "stats", cmd_simple, "", "counters: controller, API, FEC, the client dataplane",
	  "GET /stats." },
	{ "watch", lsctl_cmd_watch, "[--count N]",
	  "live: a table redrawn in place on a terminal, one line per event otherwise",
	  "GET /events. On a terminal the routes table is redrawn as samples, state flips\n"
	  "and switches arrive, with the latest events below it; otherwise (or with --json)\n"
	  "one line per event (--json: {\"event\":NAME,\"data\":DATA} with the API's DATA).\n"
	  "--count N stops after N events. When the controller restarts, watch reconnects." },
	{ "model", lsctl_cmd_model, "[status | train [--from synthetic|recorded|both]]",
	  "the ML model: what it is, how good, whether it scores; train a new one",
	  "GET /model, POST /model/train. A training runs in the background (watch it with\n"
	  "`lsctl model` or `lsctl watch`); its model replaces the current one only when its\n"
	  "error on the held-out histories is lower. --from: synthetic (the default), the\n"
	  "controller's recorded history of its nodes, or both." },
	{ "strategy", lsctl_cmd_strategy, "[ml | nearest]",
	  "how routes are chosen: the ML model's predicted p95, or the measured RTT",
	  "POST /route/strategy (without an argument: the current one). `ml` without a usable\n"
	  "model scores as nearest does and says why." },
	{ "paths", lsctl_cmd_paths, "",
	  "the paths to each egress node: direct and through relays, which is bad and why",
	  "GET /paths. Per node: its path mode (and what auto chose), every path with its\n"
	  "state, RTT (end to end; HOP: the first leg, client to relay), loss each way and\n"
	  "why it is bad; D marks the path carrying the game packets. Spares are the\n"
	  "relays not on the route; a bad path is replaced by one, the egress (the address\n"
	  "the game server sees) stays." },
	{ "mode", lsctl_cmd_mode, "[--node NAME] single|duplicate|split|auto",
	  "the path mode of a node's route (default: the active node)",
	  "POST /route/mode. single: the best path; duplicate: every packet on every path;\n"
	  "split: data on the best path, FEC parity on the others; auto: chosen from the\n"
	  "measured loss and the client's cost budget." },
	{ "export", lsctl_cmd_export, "[--out FILE]",
	  "the recorded probe history as CSV (what `model train --from recorded` uses)",
	  "GET /samples: time_ms,node,rtt_ms,load,hops,as_path_len,distance_km, one line per\n"
	  "node every 250 ms; empty rtt_ms is a lost probe. To stdout, or to FILE." },
	{ NULL, NULL, NULL, NULL, NULL },
};

/* GET paths of the commands that take no arguments, and how each renders. */
static const struct {
	const char *name, *path;
	size_t render; /* offset of the function in struct lsctl_output */
} simple[] = {
	{ "status", "/status", offsetof(struct lsctl_output, status) },
	{ "routes", "/routes", offsetof(struct lsctl_output, routes) },
	{ "proxies", "/proxies", offsetof(struct lsctl_output, proxies) },
	{ "history", "/failovers", offsetof(struct lsctl_output, history) },
	{ "stats", "/stats", offsetof(struct lsctl_output, stats) },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: lsctl [--api URL] [--json] [--token T] COMMAND [ARGS]\n\n"
		   "The command line of the LightSpeed controller's REST API.\n\ncommands:\n");
	for (const struct lsctl_cmd *c = commands; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->help);
	fprintf(f,
		"\noptions (before or after COMMAND):\n"
		"  --api URL    the API (default %s, or $LSCTL_API)\n"
		"  --json       print the API's JSON exactly as it answered\n"
		"  --token T    Bearer token, for an API bound beyond loopback (or $LSCTL_TOKEN)\n"
		"  -h, --help   this text; `lsctl COMMAND --help` for one command\n"
		"\nexit status: 0 ok, 1 the API refused (its message on stderr), 2 usage,\n"
		"3 the API could not be reached.\n",
		DEFAULT_API);
}

static void cmd_usage(FILE *f, const struct lsctl_cmd *c, bool full)
{
	fprintf(f, "usage: lsctl [--api URL] [--json] [--token T] %s%s%s\n", c->name,
		c->args[0] ? " " : "", c->args);
	if (full)
		fprintf(f, "\n%s.\n\n%s\n", c->help, c->more);
}

int lsctl_usage_error(const struct lsctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lsctl %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cmd_usage(stderr, cmd, false);
	return LSCTL_EXIT_USAGE;
}

bool lsctl_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 31 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int lsctl_report(struct lsctl *l, enum lsctl_http_rc rc, const struct lsctl_answer *ans)
{
	if (rc == LSCTL_HTTP_UNREACHABLE) {
		fprintf(stderr,
			"lsctl: cannot reach the API at %s: %s (is lightspeed-controller running? "
			"choose another with --api URL or $LSCTL_API)\n",
			l->api.base, ans->err);
		return LSCTL_EXIT_UNREACHABLE;
	}
	const json_t *e = json_object_get(ans->json, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));
	if (ans->status >= 400 && l->json && ans->json) {
		fwrite(ans->body, 1, ans->len, stderr);
		if (ans->len && ans->body[ans->len - 1] != '\n')
			fputc('\n', stderr);
	} else if (ans->status >= 400 && msg) {
		fprintf(stderr, "lsctl: %s (%s)\n", msg, code ? code : "error");
		if (ans->status == 401)
			fprintf(stderr, "lsctl: pass the API's token with --token T or $LSCTL_TOKEN\n");
	} else if (ans->status >= 400) {
		fprintf(stderr, "lsctl: the API answered HTTP %ld: %.200s\n", ans->status, ans->body);
	} else {
		fprintf(stderr, "lsctl: the API answered HTTP %ld with something that is not JSON: "
				"%.200s\n",
			ans->status, ans->body);
	}
	return LSCTL_EXIT_REFUSED;
}

int lsctl_request(struct lsctl *l, const char *method, const char *path, json_t *body,
		  lsctl_out_fn render)
{
	struct lsctl_answer ans;
	enum lsctl_http_rc rc = lsctl_http_call(&l->api, method, path, body, &ans);
	int ret;

	json_decref(body);
	if (rc == LSCTL_HTTP_OK && ans.status >= 200 && ans.status < 300 && ans.json) {
		struct lsctl_doc doc = { ans.body, ans.len, ans.json };
		render(stdout, &doc, &l->style);
		ret = LSCTL_EXIT_OK;
	} else {
		ret = lsctl_report(l, rc, &ans);
	}
	lsctl_answer_free(&ans);
	return ret;
}

static int cmd_simple(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return lsctl_usage_error(cmd, "takes no arguments (got '%s')", argv[1]);
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcmp(simple[i].name, cmd->name) != 0)
			continue;
		lsctl_out_fn fn;
		memcpy(&fn, (const char *)l->out + simple[i].render, sizeof(fn));
		return lsctl_request(l, "GET", simple[i].path, NULL, fn);
	}
	return LSCTL_EXIT_USAGE;
}

/* "/proxies/NAME" with NAME escaped; NULL (usage reported) for a bad name. */
static char *node_path(const struct lsctl_cmd *cmd, int argc, char **argv, int *ret)
{
	if (argc != 2) {
		*ret = lsctl_usage_error(cmd, argc < 2 ? "needs a node NAME" : "takes one NAME");
		return NULL;
	}
	if (!lsctl_name_ok(argv[1])) {
		*ret = lsctl_usage_error(cmd, "'%s' is not a node name (1-31 of A-Z a-z 0-9 . _ -)",
					 argv[1]);
		return NULL;
	}
	char *e = lsctl_http_escape(argv[1]);
	char *p = e ? malloc(strlen(e) + 16) : NULL;
	if (p)
		sprintf(p, "/proxies/%s", e);
	free(e);
	return p;
}

/* proxy NAME (GET) and remove NAME (DELETE): one node by name. */
static int cmd_node(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	bool remove = strcmp(cmd->name, "remove") == 0, trust = strcmp(cmd->name, "trust") == 0;
	int ret = LSCTL_EXIT_USAGE;
	char *p = node_path(cmd, argc, argv, &ret);

	if (!p)
		return ret;
	if (trust) {
		strcat(p, "/trust");
		ret = lsctl_request(l, "POST", p, NULL, l->out->proxy);
		free(p);
		return ret;
	}
	ret = lsctl_request(l, remove ? "DELETE" : "GET", p, NULL,
			    remove ? l->out->removed : l->out->proxy);
	free(p);
	return ret;
}

static int cmd_failover(struct lsctl *l, const struct lsctl_cmd *cmd, int argc, char **argv)
{
	const char *to = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strncmp(argv[i], "--to=", 5) == 0)
			to = argv[i] + 5;
		else if (strcmp(argv[i], "--to") == 0)
			return lsctl_usage_error(cmd, "--to needs a node NAME");
		else
			return lsctl_usage_error(cmd, "unknown argument '%s'", argv[i]);
	}
	if (to && !lsctl_name_ok(to))
		return lsctl_usage_error(cmd, "'%s' is not a node name", to);
	json_t *body = to ? json_pack("{s:s}", "to", to) : json_object();
	return lsctl_request(l, "POST", "/failover", body, l->out->switched);
}

/* Take the options every command shares out of argv, wherever they stand. Returns
 * the new argc, or -1 (usage printed). */
static int common_options(struct lsctl *l, int argc, char **argv, bool *help)
{
	int n = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		const char *val = NULL;
		if (strcmp(a, "--") == 0) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (strcmp(a, "--json") == 0) {
			l->json = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*help = true;
			continue;
		}
		if (strncmp(a, "--api", 5) == 0 && (a[5] == '\0' || a[5] == '='))
			dst = &l->api.base;
		else if (strncmp(a, "--token", 7) == 0 && (a[7] == '\0' || a[7] == '='))
			dst = &l->api.token;
		if (!dst) {
			argv[n++] = argv[i];
			continue;
		}
		val = strchr(a, '=');
		if (val)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "lsctl: %s needs a value\n", a);
			return -1;
		}
		*dst = val;
	}
	return n;
}

int main(int argc, char **argv)
{
	struct lsctl l = { 0 };
	bool help = false;

	l.api.base = getenv("LSCTL_API");
	if (!l.api.base || !l.api.base[0])
		l.api.base = DEFAULT_API;
	l.api.token = getenv("LSCTL_TOKEN");
	l.api.timeout_ms = 10000;
	argc = common_options(&l, argc - 1, argv + 1, &help);
	argv++;
	if (argc < 0) {
		usage(stderr);
		return LSCTL_EXIT_USAGE;
	}
	if (argc == 0) {
		usage(help ? stdout : stderr);
		return help ? LSCTL_EXIT_OK : LSCTL_EXIT_USAGE;
	}
	const struct lsctl_cmd *cmd = NULL;
	for (const struct lsctl_cmd *c = commands; c->name; c++)
		if (strcmp(c->name, argv[0]) == 0)
			cmd = c;
	if (!cmd) {
		fprintf(stderr, "lsctl: unknown command '%s' (see lsctl --help)\n", argv[0]);
		return LSCTL_EXIT_USAGE;
	}
	if (help) {
		cmd_usage(stdout, cmd, true);
		return LSCTL_EXIT_OK;
	}
	if (strncmp(l.api.base, "http://", 7) != 0 && strncmp(l.api.base, "https://", 8) != 0) {
		fprintf(stderr, "lsctl: --api must be an http:// or https:// URL, not '%s'\n",
			l.api.base);
		return LSCTL_EXIT_USAGE;
	}
	l.tty = isatty(STDOUT_FILENO);
	const char *nc = getenv("NO_COLOR");
	l.style.color = l.tty && !(nc && nc[0]) && !l.json;
	l.out = l.json ? &lsctl_output_json : &lsctl_output_text;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "lsctl: cannot start libcurl\n");
		return LSCTL_EXIT_UNREACHABLE;
	}
	int ret = cmd->fn(&l, cmd, argc, argv);
	fflush(stdout);
	curl_global_cleanup();
	return ret;
}
