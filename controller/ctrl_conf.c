/* lightspeed-controller: configuration schema, command-line overrides, the checks the
 * schema cannot express, and the effective configuration that --check prints. */
#include "ctrl_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "ctlmsg.h"
#include "log.h"
#include "secret.h"
#include "util.h"

void ctrl_conf_defaults(struct ctrl_conf *c)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	const char *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");

	memset(c, 0, sizeof(*c));
	snprintf(c->client_socket, sizeof(c->client_socket), "%s", CTRL_DEFAULT_SOCKET);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", CTRL_DEFAULT_STATE_DIR);
	/* Without privileges the client steers from the user's runtime directory
	 * (client_conf.c does the same), and the state goes where the user keeps state. */
	if (geteuid() != 0) {
		if (xdg && xdg[0] == '/' &&
		    strlen(xdg) + sizeof("/lightspeed/client.sock") <= sizeof(c->client_socket))
			snprintf(c->client_socket, sizeof(c->client_socket), "%s/lightspeed/client.sock",
				 xdg);
		if (state && state[0] == '/' && strlen(state) + 12 < sizeof(c->state_dir))
			snprintf(c->state_dir, sizeof(c->state_dir), "%s/lightspeed", state);
		else if (home && home[0] == '/' && strlen(home) + 24 < sizeof(c->state_dir))
			snprintf(c->state_dir, sizeof(c->state_dir), "%s/.local/state/lightspeed", home);
	}
	snprintf(c->api, sizeof(c->api), "%s", CTRL_DEFAULT_API);
	snprintf(c->dashboard, sizeof(c->dashboard), "%s", CTRL_DEFAULT_DASHBOARD);
	c->log_level = LS_LOG_INFO;
	snprintf(c->strategy, sizeof(c->strategy), "nearest");
	health_conf_defaults(&c->health);
	game_conf_defaults(&c->games);
	warp_conf_defaults(&c->warp);
	ml_conf_defaults(&c->ml);
	select_conf_defaults(&c->select);
	select_nearest_defaults(&c->nearest);
	paths_conf_defaults(&c->mp);
	failover_conf_defaults(&c->failover);
	discovery_conf_defaults(&c->discovery);
	c->icmp = true;
	c->icmp_interval_ms = 1000;
	c->direct_quiet_ms = 5000;
	c->direct_gain_ms = 10;
	c->direct_max_loss = 0.001;
}

/* ---- value parsers ------------------------------------------------------------ */

static int want(const struct ls_cv *v, enum ls_cv_type t, char *err, size_t errlen)
{
	if (v->type == t || (t == LS_CV_FLOAT && v->type == LS_CV_INT))
		return 0;
	snprintf(err, errlen, "expected %s, not %s", t == LS_CV_FLOAT ? "a number" : "a string",
		 ls_cv_type_name(v->type));
	return -1;
}

static int number(const struct ls_cv *v, double min, double max, double *out, char *err,
		  size_t errlen)
{
	double x;

	if (want(v, LS_CV_FLOAT, err, errlen) < 0)
		return -1;
	x = v->type == LS_CV_INT ? (double)v->u.i : v->u.f;
	if (!(x >= min && x <= max)) {
		snprintf(err, errlen, "must be a number in %g..%g", min, max);
		return -1;
	}
	*out = x;
	return 0;
}

static int parse_ratio(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return number(v, 1.0, 10.0, dst, err, errlen);
}

static int parse_fraction(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return number(v, 0.0, 1.0, dst, err, errlen);
}

static int parse_ms(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return number(v, 0.0, 10000.0, dst, err, errlen);
}

static int parse_log_level(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	int level;

	if (want(v, LS_CV_STRING, err, errlen) < 0)
		return -1;
	level = ls_log_level_parse(v->u.s);
	if (level < 0) {
		snprintf(err, errlen, "'%.32s' is not a log level (error, warn, info, debug)", v->u.s);
		return -1;
	}
	*(int *)dst = level;
	return 0;
}

static int parse_strategy(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (want(v, LS_CV_STRING, err, errlen) < 0)
		return -1;
	if (strcmp(v->u.s, "nearest") != 0 && strcmp(v->u.s, "ml") != 0) {
		snprintf(err, errlen, "'%.32s' is not a strategy (nearest, ml)", v->u.s);
		return -1;
	}
	snprintf(dst, 16, "%s", v->u.s);
	return 0;
}

/* "ADDR:PORT" with a numeric IPv4 address; port 0 picks a free one. */
static int check_api(const char *s, char *err, size_t errlen)
{
	struct sockaddr_in a;
	char msg[128];

	if (ls_hostport_parse(s, &a, false, true, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s (expected ADDR:PORT, e.g. 127.0.0.1:9000)", msg);
		return -1;
	}
	return 0;
}

/* The dashboard's address, or "off". */
static int check_dashboard(const char *s, char *err, size_t errlen)
{
	if (strcmp(s, "off") == 0)
		return 0;
	if (strlen(s) >= sizeof(((struct ctrl_conf *)0)->dashboard)) {
		snprintf(err, errlen, "dashboard: too long");
		return -1;
	}
	return check_api(s, err, errlen);
}

static int parse_dashboard(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (want(v, LS_CV_STRING, err, errlen) < 0 || check_dashboard(v->u.s, err, errlen) < 0)
		return -1;
	snprintf(dst, sizeof(((struct ctrl_conf *)0)->dashboard), "%s", v->u.s);
	return 0;
}

static int parse_api(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (want(v, LS_CV_STRING, err, errlen) < 0 || check_api(v->u.s, err, errlen) < 0)
		return -1;
	if (strlen(v->u.s) >= sizeof(((struct ctrl_conf *)0)->api)) {
		snprintf(err, errlen, "too long");
		return -1;
	}
	snprintf(dst, sizeof(((struct ctrl_conf *)0)->api), "%s", v->u.s);
	return 0;
}

static int parse_target(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct in_addr a;

	if (want(v, LS_CV_STRING, err, errlen) < 0)
		return -1;
	if (v->u.s[0] && (strlen(v->u.s) >= 64 || inet_pton(AF_INET, v->u.s, &a) != 1)) {
		snprintf(err, errlen, "expected an IPv4 address (or \"\" for the game server)");
		return -1;
	}
	snprintf(dst, 64, "%s", v->u.s);
	return 0;
}

static int parse_node_name(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (want(v, LS_CV_STRING, err, errlen) < 0)
		return -1;
	if (!node_name_valid(v->u.s)) {
		snprintf(err, errlen, "'%.40s' is not a node name (1..31 of A-Z a-z 0-9 . _ -)", v->u.s);
		return -1;
	}
	snprintf(dst, NODE_NAME_MAX, "%s", v->u.s);
	return 0;
}

static int parse_key(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct node_key *k = dst;

	if (want(v, LS_CV_STRING, err, errlen) < 0)
		return -1;
	if (ls_hex_decode(v->u.s, k->b, NODE_KEY_LEN) < 0) {
		snprintf(err, errlen, "the key must be exactly %d hex digits", 2 * NODE_KEY_LEN);
		return -1;
	}
	k->set = true;
	return 0;
}

static int parse_probe(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (v->type != LS_CV_INT || v->u.i < NODE_PROBE_MS_MIN || v->u.i > NODE_PROBE_MS_MAX) {
		snprintf(err, errlen, "must be an integer in %d..%d", NODE_PROBE_MS_MIN,
			 NODE_PROBE_MS_MAX);
		return -1;
	}
	*(uint32_t *)dst = (uint32_t)v->u.i;
	return 0;
}

/* ---- schema ------------------------------------------------------------------ */

#define FC(key, kind, member, min, max, parse)                                            \
	{ key, kind, offsetof(struct ctrl_conf, member),                                  \
	  sizeof(((struct ctrl_conf *)0)->member), min, max, parse }
/* A field of a section struct S (health_conf, ...) that lives at `sect` in ctrl_conf. */
#define FS(S, key, kind, member, min, max, parse)                                         \
	{ key, kind, offsetof(struct S, member), sizeof(((struct S *)0)->member), min, max, parse }

/* uint32 fields go through CUSTOM parsers: the loader writes int64 for LS_CF_INT. */
static int u32_in(const struct ls_cv *v, int64_t min, int64_t max, void *dst, char *err,
		  size_t errlen)
{
	if (v->type != LS_CV_INT || v->u.i < min || v->u.i > max) {
		snprintf(err, errlen, "must be an integer in %lld..%lld", (long long)min, (long long)max);
		return -1;
	}
	*(uint32_t *)dst = (uint32_t)v->u.i;
	return 0;
}
#define U32(name, min, max)                                                                \
	static int name(const struct ls_cv *v, void *dst, char *err, size_t errlen)        \
	{                                                                                  \
		return u32_in(v, min, max, dst, err, errlen);                              \
	}
U32(parse_window_ms, 100, 3600000)
U32(parse_count, 1, 1000)
U32(parse_rtt_limit, 0, 60000)
U32(parse_hold_ms, 0, 3600000)
U32(parse_interval_ms, 100, 60000)
U32(parse_max_switches, 1, 1000)

static int parse_bool(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (v->type != LS_CV_BOOL) {
		snprintf(err, errlen, "expected true or false, not %s", ls_cv_type_name(v->type));
		return -1;
	}
	*(bool *)dst = v->u.b;
	return 0;
}

static const struct ls_conf_field controller_fields[] = {
	FC("client_socket", LS_CF_STRING, client_socket, 0, 0, NULL),
	FC("api", LS_CF_CUSTOM, api, 0, 0, parse_api),
	FC("api_token", LS_CF_STRING, api_token, 0, 0, NULL),
	FC("api_token_file", LS_CF_STRING, api_token_file, 0, 0, NULL),
	FC("dashboard", LS_CF_CUSTOM, dashboard, 0, 0, parse_dashboard),
	FC("web_root", LS_CF_STRING, web_root, 0, 0, NULL),
	FC("state_dir", LS_CF_STRING, state_dir, 0, 0, NULL),
	FC("log_level", LS_CF_CUSTOM, log_level, 0, 0, parse_log_level),
	FC("strategy", LS_CF_CUSTOM, strategy, 0, 0, parse_strategy),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field health_fields[] = {
	FS(health_conf, "window_ms", LS_CF_CUSTOM, window_ms, 0, 0, parse_window_ms),
	FS(health_conf, "recent_ms", LS_CF_CUSTOM, recent_ms, 0, 0, parse_window_ms),
	FS(health_conf, "up_after", LS_CF_CUSTOM, up_after, 0, 0, parse_count),
	FS(health_conf, "down_after", LS_CF_CUSTOM, down_after, 0, 0, parse_count),
	FS(health_conf, "degrade_after", LS_CF_CUSTOM, degrade_after, 0, 0, parse_count),
	FS(health_conf, "degraded_loss", LS_CF_CUSTOM, degraded_loss, 0, 0, parse_fraction),
	FS(health_conf, "degraded_rtt_ms", LS_CF_CUSTOM, degraded_rtt_ms, 0, 0, parse_rtt_limit),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

/* [select] holds two structs: the anti-flap rule and nearest's weights. Its fields
 * are offsets from ctrl_conf itself (section offset 0). */
#define FSEL(key, member, parse)                                                            \
	{ key, LS_CF_CUSTOM, offsetof(struct ctrl_conf, member),                           \
	  sizeof(((struct ctrl_conf *)0)->member), 0, 0, parse }
static const struct ls_conf_field select_fields[] = {
	FSEL("margin_ratio", select.margin_ratio, parse_ratio),
	FSEL("margin_ms", select.margin_ms, parse_ms),
	FSEL("hold_ms", select.hold_ms, parse_hold_ms),
	FSEL("loss_penalty_ms", nearest.loss_penalty_ms, parse_ms),
	FSEL("server_leg", nearest.use_server_leg, parse_bool),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field failover_fields[] = {
	FS(failover_conf, "cooldown_ms", LS_CF_CUSTOM, cooldown_ms, 0, 0, parse_hold_ms),
	FS(failover_conf, "max_switches", LS_CF_CUSTOM, max_switches, 0, 0, parse_max_switches),
	FS(failover_conf, "window_ms", LS_CF_CUSTOM, window_ms, 0, 0, parse_window_ms),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field direct_fields[] = {
	FC("icmp", LS_CF_CUSTOM, icmp, 0, 0, parse_bool),
	FC("interval_ms", LS_CF_CUSTOM, icmp_interval_ms, 0, 0, parse_interval_ms),
	FC("target", LS_CF_CUSTOM, direct_target, 0, 0, parse_target),
	FC("route", LS_CF_CUSTOM, direct_route, 0, 0, parse_bool),
	FC("quiet_ms", LS_CF_CUSTOM, direct_quiet_ms, 0, 0, parse_hold_ms),
	FC("gain_ms", LS_CF_CUSTOM, direct_gain_ms, 0, 0, parse_ms),
	FC("max_loss", LS_CF_CUSTOM, direct_max_loss, 0, 0, parse_fraction),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static int parse_session(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return u32_in(v, 1, 0xffffffffll, dst, err, errlen);
}

static int parse_control(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (v->type != LS_CV_INT || v->u.i < 1 || v->u.i > 65535) {
		snprintf(err, errlen, "must be the agent's UDP port, 1..65535");
		return -1;
	}
	*(uint16_t *)dst = (uint16_t)v->u.i;
	return 0;
}

static int parse_fingerprint(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct node_conf *n = (struct node_conf *)((char *)dst - offsetof(struct node_conf, fp));

	if (want(v, LS_CV_STRING, err, errlen) < 0)
		return -1;
	if (ls_ctl_fp_parse(v->u.s, n->fp) < 0) {
		snprintf(err, errlen, "must be \"sha256:\" and 64 hex digits (the agent prints it at "
			 "start)");
		return -1;
	}
	n->has_fp = true;
	return 0;
}

static const struct ls_conf_field node_fields[] = {
	FS(node_conf, "name", LS_CF_CUSTOM, name, 0, 0, parse_node_name),
	FS(node_conf, "address", LS_CF_STRING, address, 0, 0, NULL),
	FS(node_conf, "session_id", LS_CF_CUSTOM, session_id, 0, 0, parse_session),
	FS(node_conf, "key", LS_CF_CUSTOM, key, 0, 0, parse_key),
	FS(node_conf, "key_file", LS_CF_STRING, key_file, 0, 0, NULL),
	FS(node_conf, "probe_ms", LS_CF_CUSTOM, probe_ms, 0, 0, parse_probe),
	FS(node_conf, "region", LS_CF_STRING, facts.region, 0, 0, NULL),
	FS(node_conf, "distance_km", LS_CF_INT, facts.distance_km, 0, 40075, NULL),
	FS(node_conf, "hops", LS_CF_INT, facts.hops, 0, 255, NULL),
	FS(node_conf, "as_path_len", LS_CF_INT, facts.as_path_len, 0, 255, NULL),
	FS(node_conf, "control_port", LS_CF_CUSTOM, control_port, 0, 0, parse_control),
	FS(node_conf, "fingerprint", LS_CF_CUSTOM, fp, 0, 0, parse_fingerprint),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static void *add_node(void *conf, char *err, size_t errlen)
{
	struct ctrl_conf *c = conf;

	if (c->n_nodes >= NODE_MAX) {
		snprintf(err, errlen, "too many [[node]] sections (at most %d: the client's route table)",
			 NODE_MAX);
		return NULL;
	}
	node_conf_init(&c->nodes[c->n_nodes]);
	c->nodes[c->n_nodes].source = NODE_SRC_CONFIG;
	return &c->nodes[c->n_nodes++];
}

static int parse_path_mode(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (want(v, LS_CV_STRING, err, errlen) < 0)
		return -1;
	if (v->u.s[0] && !paths_mode_valid(v->u.s)) {
		snprintf(err, errlen, "expected single, duplicate, split or auto (or \"\": the client's)");
		return -1;
	}
	snprintf(dst, PATHS_MODE_LEN, "%s", v->u.s);
	return 0;
}

static int parse_relay_nodes(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct relay_nodes *rn = dst;

	if (v->type != LS_CV_ARRAY || v->u.arr.n > NODE_MAX) {
		snprintf(err, errlen, "expected an array of at most %d node names", NODE_MAX);
		return -1;
	}
	rn->n = 0;
	for (size_t i = 0; i < v->u.arr.n; i++)
		if (parse_node_name(&v->u.arr.items[i], rn->name[rn->n++], err, errlen) < 0)
			return -1;
	return 0;
}

U32(parse_paths, 1, PATHS_PER_ROUTE)
U32(parse_replace_ms, 0, 3600000)

static const struct ls_conf_field multipath_fields[] = {
	FS(multipath_conf, "mode", LS_CF_CUSTOM, mode, 0, 0, parse_path_mode),
	FS(multipath_conf, "paths", LS_CF_CUSTOM, paths, 0, 0, parse_paths),
	FS(multipath_conf, "replace_after_ms", LS_CF_CUSTOM, replace_after_ms, 0, 0,
	   parse_replace_ms),
	FS(multipath_conf, "bad_loss", LS_CF_CUSTOM, bad_loss, 0, 0, parse_fraction),
	FS(multipath_conf, "rest_ms", LS_CF_CUSTOM, rest_ms, 0, 0, parse_replace_ms),
	FS(multipath_conf, "direct", LS_CF_CUSTOM, direct, 0, 0, parse_bool),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field relay_fields[] = {
	FS(relay_conf, "name", LS_CF_CUSTOM, name, 0, 0, parse_node_name),
	FS(relay_conf, "address", LS_CF_STRING, address, 0, 0, NULL),
	FS(relay_conf, "session_id", LS_CF_CUSTOM, session_id, 0, 0, parse_session),
	FS(relay_conf, "key", LS_CF_CUSTOM, key, 0, 0, parse_key),
	FS(relay_conf, "key_file", LS_CF_STRING, key_file, 0, 0, NULL),
	FS(relay_conf, "nodes", LS_CF_CUSTOM, nodes, 0, 0, parse_relay_nodes),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static void *add_relay(void *conf, char *err, size_t errlen)
{
	struct ctrl_conf *c = conf;

	if (c->mp.n_relays >= PATHS_RELAY_MAX) {
		snprintf(err, errlen, "too many [[relay]] sections (at most %d)", PATHS_RELAY_MAX);
		return NULL;
	}
	memset(&c->mp.relays[c->mp.n_relays], 0, sizeof(c->mp.relays[0]));
	return &c->mp.relays[c->mp.n_relays++];
}

static const struct ls_conf_section ctrl_schema[] = {
	{ "controller", controller_fields, 0, NULL },
	{ "health", health_fields, offsetof(struct ctrl_conf, health), NULL },
	{ "select", select_fields, 0, NULL },
	{ "failover", failover_fields, offsetof(struct ctrl_conf, failover), NULL },
	{ "direct", direct_fields, 0, NULL },
	{ "games", game_conf_fields, offsetof(struct ctrl_conf, games), NULL },
	{ "warp", warp_conf_fields, offsetof(struct ctrl_conf, warp), NULL },
	{ "discovery", discovery_conf_fields, offsetof(struct ctrl_conf, discovery), NULL },
	{ "ml", ml_conf_fields, offsetof(struct ctrl_conf, ml), NULL },
	{ "node", node_fields, 0, add_node },
	{ "multipath", multipath_fields, offsetof(struct ctrl_conf, mp), NULL },
	{ "relay", relay_fields, 0, add_relay },
	{ NULL, NULL, 0, NULL },
};

/* ---- whole-configuration checks ------------------------------------------------ */

bool ctrl_conf_api_loopback(const char *api)
{
	struct sockaddr_in a;
	char msg[64];

	if (ls_hostport_parse(api, &a, false, true, msg, sizeof(msg)) < 0)
		return false;
	return (ntohl(a.sin_addr.s_addr) >> 24) == 127;
}

int ctrl_conf_node_check(struct node_conf *n, char *err, size_t errlen)
{
	char msg[256];

	if (!n->name[0]) {
		snprintf(err, errlen, "a node needs a name");
		return -1;
	}
	if (!n->address[0]) {
		snprintf(err, errlen, "node %s: address (HOST:PORT) is required", n->name);
		return -1;
	}
	if (n->key_file[0]) {
		char hex[128];
		if (n->key.set) {
			snprintf(err, errlen, "node %s: key and key_file: give one", n->name);
			return -1;
		}
		if (ls_secret_read(n->key_file, hex, sizeof(hex), msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "node %s: key file %s", n->name, msg);
			return -1;
		}
		if (ls_hex_decode(hex, n->key.b, NODE_KEY_LEN) < 0) {
			snprintf(err, errlen, "node %s: key file %s: expected %d hex digits", n->name,
				 n->key_file, 2 * NODE_KEY_LEN);
			return -1;
		}
		n->key.set = true;
	}
	if ((n->session_id != 0) != n->key.set) {
		snprintf(err, errlen, "node %s: session_id and key go together (both or neither)",
			 n->name);
		return -1;
	}
	if (n->control_port && n->key.set) {
		snprintf(err, errlen, "node %s: its agent (control_port) issues the session: drop "
			 "session_id and key", n->name);
		return -1;
	}
	if (n->has_fp && !n->control_port) {
		snprintf(err, errlen, "node %s: a fingerprint pins an agent: give control_port too",
			 n->name);
		return -1;
	}
	if (ls_hostport_parse(n->address, &n->addr, true, false, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "node %s: %s", n->name, msg);
		return -1;
	}
	return 0;
}

static int finish(struct ctrl_conf *c, char *err, size_t errlen)
{
	if (!c->client_socket[0]) {
		snprintf(err, errlen, "client_socket: empty path");
		return -1;
	}
	if (check_api(c->api, err, errlen) < 0)
		return -1;
	if (c->api_token_file[0]) {
		char msg[300];
		if (c->api_token[0]) {
			snprintf(err, errlen, "api_token and api_token_file: give one");
			return -1;
		}
		if (ls_secret_read(c->api_token_file, c->api_token, sizeof(c->api_token), msg,
				   sizeof(msg)) < 0) {
			snprintf(err, errlen, "api_token_file %s", msg);
			return -1;
		}
	}
	if (!ctrl_conf_api_loopback(c->api) && !c->api_token[0]) {
		snprintf(err, errlen,
			 "api %s is not a loopback address: set api_token (or api_token_file) so that "
			 "only holders of the token can steer",
			 c->api);
		return -1;
	}
	if (!c->state_dir[0]) {
		snprintf(err, errlen, "state_dir: empty path");
		return -1;
	}
	for (unsigned i = 0; i < c->n_nodes; i++) {
		for (unsigned j = 0; j < i; j++)
			if (strcmp(c->nodes[i].name, c->nodes[j].name) == 0) {
				snprintf(err, errlen, "node %s is defined twice", c->nodes[i].name);
				return -1;
			}
		if (ctrl_conf_node_check(&c->nodes[i], err, errlen) < 0)
			return -1;
	}
	if (c->direct_route) {
		struct node_conf *d;
		for (unsigned i = 0; i < c->n_nodes; i++)
			if (strcmp(c->nodes[i].name, CTRL_DIRECT_NODE) == 0) {
				snprintf(err, errlen,
					 "node %s: the name is the direct route's ([direct] route = true); "
					 "choose another",
					 CTRL_DIRECT_NODE);
				return -1;
			}
		if (c->n_nodes >= NODE_MAX) {
			snprintf(err, errlen, "[direct] route = true needs a place in the client's route "
				 "table: at most %d [[node]] sections beside it", NODE_MAX - 1);
			return -1;
		}
		d = &c->nodes[c->n_nodes++];
		node_conf_init(d);
		snprintf(d->name, sizeof(d->name), "%s", CTRL_DIRECT_NODE);
		d->direct = true;
		d->source = NODE_SRC_CONFIG;
	}
	for (unsigned i = 0; i < c->mp.n_relays; i++) {
		struct relay_conf *r = &c->mp.relays[i];
		for (unsigned j = 0; j < i; j++)
			if (strcmp(r->name, c->mp.relays[j].name) == 0) {
				snprintf(err, errlen, "relay %s is defined twice", r->name);
				return -1;
			}
		if (paths_relay_check(r, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int ctrl_conf_build(const struct ctrl_flags *fl, struct ctrl_conf *out, char *err, size_t errlen)
{
	/* Large (every node's conf): on the heap rather than the loop's stack. */
	struct ctrl_conf *c = malloc(sizeof(*c));
	const char *path = fl->config;
	int rc = -1;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ctrl_conf_defaults(c);
	if (!path && access(CTRL_DEFAULT_CONFIG, F_OK) == 0) {
		path = CTRL_DEFAULT_CONFIG;
		ls_info("reading " CTRL_DEFAULT_CONFIG " (no -c given)");
	}
	if (path && ls_conf_load_file(path, ctrl_schema, c, err, errlen) < 0)
		goto out;

	if (fl->client_socket) {
		if (strlen(fl->client_socket) >= sizeof(c->client_socket)) {
			snprintf(err, errlen, "--client-socket: path too long (at most %zu)",
				 sizeof(c->client_socket) - 1);
			goto out;
		}
		snprintf(c->client_socket, sizeof(c->client_socket), "%s", fl->client_socket);
	}
	if (fl->api) {
		if (strlen(fl->api) >= sizeof(c->api) || check_api(fl->api, err, errlen) < 0) {
			if (strlen(fl->api) >= sizeof(c->api))
				snprintf(err, errlen, "--api: too long");
			goto out;
		}
		snprintf(c->api, sizeof(c->api), "%s", fl->api);
	}
	if (fl->dashboard) {
		if (check_dashboard(fl->dashboard, err, errlen) < 0)
			goto out;
		snprintf(c->dashboard, sizeof(c->dashboard), "%s", fl->dashboard);
	}
	if (fl->web_root) {
		if (strlen(fl->web_root) >= sizeof(c->web_root)) {
			snprintf(err, errlen, "--web-root: path too long");
			goto out;
		}
		snprintf(c->web_root, sizeof(c->web_root), "%s", fl->web_root);
	}
	if (fl->state_dir) {
		if (strlen(fl->state_dir) >= sizeof(c->state_dir)) {
			snprintf(err, errlen, "--state-dir: path too long");
			goto out;
		}
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", fl->state_dir);
	}
	if (fl->log_level) {
		int level = ls_log_level_parse(fl->log_level);
		if (level < 0) {
			snprintf(err, errlen, "--log-level: '%s' is not a level (error, warn, info, debug)",
				 fl->log_level);
			goto out;
		}
		c->log_level = level;
	}
	/* A --node replaces the file's node of the same name, else joins the list. */
	for (unsigned i = 0; i < fl->n_nodes; i++) {
		struct node_conf n;
		unsigned j;
		char msg[256];
		if (node_parse_spec(fl->nodes[i], &n, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "--node: %s", msg);
			goto out;
		}
		n.source = NODE_SRC_CMDLINE;
		for (j = 0; j < c->n_nodes && strcmp(c->nodes[j].name, n.name) != 0; j++)
			;
		if (j == c->n_nodes) {
			if (c->n_nodes >= NODE_MAX) {
				snprintf(err, errlen, "--node %s: too many nodes (at most %d)", n.name,
					 NODE_MAX);
				goto out;
			}
			c->n_nodes++;
		}
		c->nodes[j] = n;
	}
	if (finish(c, err, errlen) < 0) {
		if (path) {
			/* Say which file the whole-configuration error belongs to. */
			char tmp[512];
			snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
			snprintf(err, errlen, "%s", tmp);
		}
		goto out;
	}
	*out = *c;
	rc = 0;
out:
	free(c);
	return rc;
}

/* ---- --check ------------------------------------------------------------------ */

/* A TOML basic string. */
static void toml_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void kv_str(FILE *f, const char *key, const char *v)
{
	fprintf(f, "%s = ", key);
	toml_str(f, v);
	fputc('\n', f);
}

void ctrl_conf_print(const struct ctrl_conf *c, FILE *f)
{
	char buf[LS_ADDRSTRLEN];

	fprintf(f, "[controller]\n");
	kv_str(f, "client_socket", c->client_socket);
	kv_str(f, "api", c->api);
	kv_str(f, "dashboard", c->dashboard);
	if (c->web_root[0])
		kv_str(f, "web_root", c->web_root);
	if (c->api_token[0])
		fprintf(f, "# api_token = (set%s%s; not shown)\n", c->api_token_file[0] ? " from " : "",
			c->api_token_file);
	else
		fprintf(f, "# api_token: none (the API is on loopback)\n");
	kv_str(f, "state_dir", c->state_dir);
	kv_str(f, "log_level", ls_log_level_name((enum ls_log_level)c->log_level));
	kv_str(f, "strategy", c->strategy);

	fprintf(f, "\n[health]\nwindow_ms = %u\nrecent_ms = %u\nup_after = %u\ndown_after = %u\n"
		   "degrade_after = %u\ndegraded_loss = %g\ndegraded_rtt_ms = %u\n",
		c->health.window_ms, c->health.recent_ms, c->health.up_after, c->health.down_after,
		c->health.degrade_after, c->health.degraded_loss, c->health.degraded_rtt_ms);
	fprintf(f, "\n[select]\nmargin_ratio = %g\nmargin_ms = %g\nhold_ms = %u\n"
		   "loss_penalty_ms = %g\nserver_leg = %s\n",
		c->select.margin_ratio, c->select.margin_ms, c->select.hold_ms,
		c->nearest.loss_penalty_ms, c->nearest.use_server_leg ? "true" : "false");
	fprintf(f, "\n[failover]\ncooldown_ms = %u\nmax_switches = %u\nwindow_ms = %u\n",
		c->failover.cooldown_ms, c->failover.max_switches, c->failover.window_ms);
	fprintf(f, "\n[direct]\nicmp = %s\ninterval_ms = %u\n", c->icmp ? "true" : "false",
		c->icmp_interval_ms);
	kv_str(f, "target", c->direct_target);
	if (!c->direct_target[0])
		fprintf(f, "# target: the client's game server\n");
	fprintf(f, "route = %s\nquiet_ms = %u\ngain_ms = %g\nmax_loss = %g\n",
		c->direct_route ? "true" : "false", c->direct_quiet_ms, c->direct_gain_ms,
		c->direct_max_loss);

	fprintf(f, "\n[games]\ndetect = %s\nscan_ms = %llu\n", c->games.detect ? "true" : "false",
		(unsigned long long)c->games.scan_ms);
	discovery_conf_print(&c->discovery, f);
	fprintf(f, "\n[warp]\nallow_toggle = %s\ncompare_every_s = %llu\n",
		c->warp.allow_toggle ? "true" : "false", (unsigned long long)c->warp.compare_every_s);
	kv_str(f, "cli", c->warp.cli);
	kv_str(f, "interface", c->warp.interface);
	fprintf(f, "check_ms = %llu\nmeasure_ms = %llu\n", (unsigned long long)c->warp.check_ms,
		(unsigned long long)c->warp.measure_ms);
	ml_conf_print(&c->ml, f);
	for (unsigned i = 0; i < c->n_nodes; i++) {
		const struct node_conf *n = &c->nodes[i];
		if (n->direct) {
			fprintf(f, "\n# node %s: the direct route ([direct] route = true)\n", n->name);
			continue;
		}
		fprintf(f, "\n[[node]]%s\n", n->source == NODE_SRC_CMDLINE ? "  # from --node" : "");
		kv_str(f, "name", n->name);
		fprintf(f, "address = ");
		toml_str(f, n->address);
		ls_addr_fmt(&n->addr, buf);
		if (strcmp(buf, n->address) != 0)
			fprintf(f, "  # %s", buf);
		fputc('\n', f);
		if (n->key.set) {
			fprintf(f, "session_id = %u\n", n->session_id);
			if (n->key_file[0])
				kv_str(f, "key_file", n->key_file);
			else
				fprintf(f, "# key = (set; not shown)\n");
		}
		fprintf(f, "probe_ms = %u\n", n->probe_ms);
		if (n->control_port) {
			fprintf(f, "control_port = %u\n", n->control_port);
			if (n->has_fp) {
				char fp[LS_CTL_FP_STRLEN];

				ls_ctl_fp_fmt(n->fp, fp);
				kv_str(f, "fingerprint", fp);
			} else {
				fprintf(f, "# fingerprint: trusted on first use (known_nodes)\n");
			}
		}
		if (n->facts.region[0])
			kv_str(f, "region", n->facts.region);
		if (n->facts.distance_km >= 0)
			fprintf(f, "distance_km = %lld\n", (long long)n->facts.distance_km);
		if (n->facts.hops >= 0)
			fprintf(f, "hops = %lld\n", (long long)n->facts.hops);
		if (n->facts.as_path_len >= 0)
			fprintf(f, "as_path_len = %lld\n", (long long)n->facts.as_path_len);
	}
	if (!c->n_nodes)
		fprintf(f, "\n# no [[node]]: only the routes the client already holds\n");
	fprintf(f, "\n[multipath]\n");
	kv_str(f, "mode", c->mp.mode);
	if (!c->mp.mode[0])
		fprintf(f, "# mode: the client's path_mode\n");
	fprintf(f, "paths = %u\nreplace_after_ms = %u\nbad_loss = %g\nrest_ms = %u\ndirect = %s\n",
		c->mp.paths, c->mp.replace_after_ms, c->mp.bad_loss, c->mp.rest_ms,
		c->mp.direct ? "true" : "false");
	for (unsigned i = 0; i < c->mp.n_relays; i++) {
		const struct relay_conf *r = &c->mp.relays[i];
		fprintf(f, "\n[[relay]]\n");
		kv_str(f, "name", r->name);
		kv_str(f, "address", r->address);
		fprintf(f, "session_id = %u\n", r->session_id);
		if (r->key_file[0])
			kv_str(f, "key_file", r->key_file);
		else
			fprintf(f, "# key = (set; not shown)\n");
		fprintf(f, "nodes = [");
		for (unsigned j = 0; j < r->nodes.n; j++)
			fprintf(f, "%s\"%s\"", j ? ", " : "", r->nodes.name[j]);
		fprintf(f, "]%s\n", r->nodes.n ? "" : "  # every node");
	}
}
