/* Steering command definitions: the tables of both dataplanes (docs/protocol.md 3.1 and
 * 3.2), the argument check every server runs before a handler, and `help` built from
 * the same tables, so that what is documented, checked and answered cannot drift. */
#include "steer_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>


/* ---- the tables ---------------------------------------------------------------------- */

static const char *const stats_formats[] = { "json", "prometheus", NULL };

const struct ls_steer_arg ls_steer_cmd_help_args[] = {
	{ .key = "command", .types = LS_SA_STRING, .min = 1, .max = 64,
	  .help = "describe this command only" },
	{ NULL },
};

static const struct ls_steer_arg stats_args[] = {
	{ .key = "format", .types = LS_SA_STRING, .choices = stats_formats,
	  .help = "json (the default) or prometheus (the text exposition format)" },
	{ .key = "raw", .types = LS_SA_BOOL,
	  .help = "with format prometheus: answer the text alone, not a JSON line" },
	{ NULL },
};

#define ARG_SESSION_ID(req)                                                                 \
	{ .key = "session_id", .types = LS_SA_INT, .required = req, .min = 1,                \
	  .max = UINT32_MAX, .help = "the session id" }
#define ARG_KEY(types_)                                                                     \
	{ .key = "key", .types = types_, .min = 32, .max = 32,                               \
	  .help = "the session's 128-bit key, 32 hex digits" }
#define ARG_RATE(name, what)                                                                \
	{ .key = name, .types = LS_SA_INT | LS_SA_NULL, .min = 0, .max = INT64_MAX,          \
	  .help = what " per second towards game servers (0: unlimited; absent or null: the "  \
		  "[limits] default)" }

static const struct ls_steer_arg session_add_args[] = {
	ARG_SESSION_ID(true),
	{ .key = "key", .types = LS_SA_STRING, .required = true, .min = 32, .max = 32,
	  .help = "the session's 128-bit key, 32 hex digits" },
	{ .key = "destinations", .types = LS_SA_STRINGS, .required = true, .min = 1, .max = 64,
	  .help = "the game servers the session may reach, \"ip[/len][:port[-port]]\"" },
	ARG_RATE("pps", "packets"),
	ARG_RATE("bps", "bytes"),
	{ .key = "fec", .types = LS_SA_STRING | LS_SA_NULL, .max = 32,
	  .help = "FEC of the replies: off, auto, K:M, K:M:MS, K:M:MS:S (absent or null: as "
		  "the client asks)" },
	{ NULL },
};

static const struct ls_steer_arg grant_add_args[] = {
	ARG_SESSION_ID(true),
	{ .key = "key", .types = LS_SA_STRING, .required = true, .min = 32, .max = 32,
	  .help = "the grant's 128-bit key, 32 hex digits (the client's hop key)" },
	{ .key = "next_hops", .types = LS_SA_STRINGS, .required = true, .min = 1, .max = 8,
	  .help = "the nodes the relay may forward the client's tunnel datagrams to, \"ip:port\"" },
	ARG_RATE("pps", "packets"),
	ARG_RATE("bps", "bytes"),
	{ NULL },
};

static const struct ls_steer_arg session_id_args[] = {
	ARG_SESSION_ID(true),
	{ NULL },
};

static const struct ls_steer_arg proxy_set_fec_args[] = {
	ARG_SESSION_ID(true),
	{ .key = "fec", .types = LS_SA_STRING | LS_SA_NULL, .required = true, .max = 32,
	  .help = "FEC of the session's replies: off, auto, K:M, K:M:MS, K:M:MS:S; null: "
		  "follow what the client asks again" },
	{ NULL },
};

const struct ls_steer_def ls_steer_cmd_proxy[] = {
	{ "status", NULL, "version, uptime, bind address, auth, sessions and limits" },
	{ "stats", stats_args, "counters, drops by reason, FEC and steering counters" },
	{ "sessions", NULL, "every session with its client, flows and counters" },
	{ "session_add", session_add_args,
	  "add an authenticated session; exists if the id is taken, full at max_sessions" },
	{ "grant_add", grant_add_args,
	  "add a relay grant: forward this session's tunnel datagrams to its next hops only; "
	  "exists if the id is taken, full at max_sessions" },
	{ "session_del", session_id_args,
	  "end a session or a relay grant; not_found if there is none" },
	{ "set_fec", proxy_set_fec_args, "set a session's downstream FEC" },
	LS_STEER_CMD_BUILTINS,
	{ NULL, NULL, NULL },
};

#define ARG_ROUTE_NAME(req, types_)                                                         \
	{ .key = "name", .types = types_, .required = req, .min = 1, .max = 31,              \
	  .help = "the route's name: 1 to 31 characters of A-Z a-z 0-9 . _ -" }

static const struct ls_steer_arg set_route_args[] = {
	ARG_ROUTE_NAME(false, LS_SA_STRING),
	{ .key = "proxy", .types = LS_SA_STRING, .min = 1, .max = 64,
	  .help = "instead of name: the proxy's tunnel address, \"ip:port\" (the route "
		  "\"manual\", added or changed)" },
	{ .key = "session_id", .types = LS_SA_INT | LS_SA_NULL, .min = 1, .max = UINT32_MAX,
	  .help = "the session id (with key; neither: unauthenticated)" },
	ARG_KEY(LS_SA_STRING | LS_SA_NULL),
	{ .key = "game_server", .types = LS_SA_STRING | LS_SA_NULL, .min = 1, .max = 64,
	  .help = "a new game server, \"ip:port\" (absent: the same)" },
	{ NULL },
};

static const char *const route_modes[] = { "single", "duplicate", "split", "auto", NULL };

static const struct ls_steer_arg route_add_args[] = {
	ARG_ROUTE_NAME(true, LS_SA_STRING),
	{ .key = "proxy", .types = LS_SA_STRING, .min = 1, .max = 64,
	  .help = "the proxy's tunnel address, \"ip:port\" (required unless direct)" },
	{ .key = "direct", .types = LS_SA_BOOL,
	  .help = "true: no tunnel, the game server itself (no proxy, session or key)" },
	{ .key = "session_id", .types = LS_SA_INT | LS_SA_NULL, .min = 1, .max = UINT32_MAX,
	  .help = "the session id (with key; neither: unauthenticated)" },
	ARG_KEY(LS_SA_STRING | LS_SA_NULL),
	{ .key = "probe_ms", .types = LS_SA_INT, .min = 20, .max = 60000,
	  .help = "keepalive interval while not the active route (default 250)" },
	{ .key = "replace", .types = LS_SA_BOOL,
	  .help = "true: an existing route takes the new parameters (default false: exists)" },
	{ .key = "path_mode", .types = LS_SA_STRING | LS_SA_NULL, .choices = route_modes,
	  .help = "how the route uses its paths: single, duplicate, split or auto (default: "
		  "the client's path_mode)" },
	{ NULL },
};

#define ARG_PATH_ROUTE                                                                      \
	{ .key = "route", .types = LS_SA_STRING, .required = true, .min = 1, .max = 31,      \
	  .help = "the route (its egress): a name from routes" }

static const struct ls_steer_arg path_add_args[] = {
	ARG_PATH_ROUTE,
	{ .key = "name", .types = LS_SA_STRING, .required = true, .min = 1, .max = 31,
	  .help = "the path's name: \"direct\" (straight to the egress), or 1 to 31 characters "
		  "of A-Z a-z 0-9 . _ - for a path through a relay" },
	{ .key = "relay", .types = LS_SA_STRING | LS_SA_NULL, .min = 1, .max = 64,
	  .help = "the relay's tunnel address, \"ip:port\" (none for \"direct\")" },
	{ .key = "session_id", .types = LS_SA_INT | LS_SA_NULL, .min = 1, .max = UINT32_MAX,
	  .help = "the relay grant's id (with relay)" },
	ARG_KEY(LS_SA_STRING | LS_SA_NULL),
	{ .key = "next_hop", .types = LS_SA_STRING | LS_SA_NULL, .min = 1, .max = 64,
	  .help = "the egress as the relay reaches it, \"ip:port\" (absent: the route's proxy "
		  "address; the relay's grant must name it)" },
	{ .key = "replace", .types = LS_SA_BOOL,
	  .help = "true: an existing path takes the new relay or grant (default false: exists)" },
	{ NULL },
};

static const struct ls_steer_arg path_del_args[] = {
	ARG_PATH_ROUTE,
	ARG_ROUTE_NAME(true, LS_SA_STRING),
	{ NULL },
};

static const struct ls_steer_arg set_path_mode_args[] = {
	{ .key = "route", .types = LS_SA_STRING | LS_SA_NULL, .min = 1, .max = 31,
	  .help = "the route (absent or null: the active one)" },
	{ .key = "mode", .types = LS_SA_STRING, .required = true, .choices = route_modes,
	  .help = "single, duplicate, split or auto" },
	{ NULL },
};

static const struct ls_steer_arg route_name_args[] = {
	ARG_ROUTE_NAME(true, LS_SA_STRING),
	{ NULL },
};

static const struct ls_steer_arg arm_backup_args[] = {
	ARG_ROUTE_NAME(true, LS_SA_STRING | LS_SA_NULL),
	{ NULL },
};

static const struct ls_steer_arg client_set_fec_args[] = {
	{ .key = "fec", .types = LS_SA_STRING, .required = true, .min = 1, .max = 32,
	  .help = "off, auto, K:M, K:M:MS or K:M:MS:S, for both directions" },
	{ NULL },
};

static const struct ls_steer_arg set_game_args[] = {
	{ .key = "game", .types = LS_SA_STRING | LS_SA_NULL, .required = true, .min = 1, .max = 31,
	  .help = "the game profile on (profiles/<game>.toml), or null: none" },
	{ .key = "pid", .types = LS_SA_INT | LS_SA_NULL, .min = 1, .max = INT32_MAX,
	  .help = "its process, whose sockets capture mode then matches" },
	{ NULL },
};

static const struct ls_steer_arg capture_route_args[] = {
	{ .key = "server", .types = LS_SA_STRING, .required = true, .min = 7, .max = 21,
	  .help = "a game server, \"ip\" (every port) or \"ip:port\"" },
	ARG_ROUTE_NAME(true, LS_SA_STRING | LS_SA_NULL),
	{ NULL },
};

const struct ls_steer_def ls_steer_cmd_client[] = {
	{ "status", NULL, "route, path, measurements and FEC in use" },
	{ "stats", stats_args, "counters, drops by reason, RTT summary, FEC and steering counters" },
	{ "set_route", set_route_args,
	  "make a route active (by name, or the route \"manual\" by proxy), losing and "
	  "duplicating nothing" },
	{ "set_fec", client_set_fec_args, "set forward error correction for both directions" },
	{ "route_add", route_add_args,
	  "add a candidate route (at most 8); exists unless replace, full beyond 8" },
	{ "route_del", route_name_args,
	  "delete a route; conflict for the active one; an armed backup is disarmed" },
	{ "routes", NULL, "the active route, the armed backup, and every route measured" },
	{ "path_add", path_add_args,
	  "add a path to a route's egress: direct, or through a relay with a grant (at most 3 "
	  "paths); exists unless replace" },
	{ "path_del", path_del_args, "delete a path of a route; conflict for its last path" },
	{ "set_path_mode", set_path_mode_args,
	  "how a route uses its paths: single, duplicate, split or auto" },
	{ "arm_backup", arm_backup_args,
	  "arm the route the client fails over to by itself (null: none); conflict for the "
	  "active one" },
	{ "set_game", set_game_args,
	  "the game being played (the controller's detection): capture mode applies its "
	  "profile and matches its process" },
	{ "capture_route", capture_route_args,
	  "capture mode: the game server rides route name (null: the active route again)" },
	LS_STEER_CMD_BUILTINS,
	{ NULL, NULL, NULL },
};

/* ---- lookup and checks --------------------------------------------------------------- */

const struct ls_steer_def *ls_steer_cmd_find(const struct ls_steer_def *defs, const char *name)
{
	for (const struct ls_steer_def *d = defs; name && d->name; d++)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

static const struct ls_steer_arg *arg_find(const struct ls_steer_def *d, const char *key)
{
	for (const struct ls_steer_arg *a = d->args; a && a->key; a++)
		if (strcmp(a->key, key) == 0)
			return a;
	return NULL;
}

static bool bounded(const struct ls_steer_arg *a)
{
	return a->min != 0 || a->max != 0;
}

static bool in_bounds(const struct ls_steer_arg *a, int64_t v)
{
	return !bounded(a) || (v >= a->min && v <= a->max);
}

/* A string argument: no NUL inside (handlers read C strings), length and choices. */
static bool string_fits(const struct ls_steer_arg *a, json_t *v)
{
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);

	if (strlen(s) != len || len > INT64_MAX || !in_bounds(a, (int64_t)len))
		return false;
	if (!a->choices)
		return true;
	for (const char *const *c = a->choices; *c; c++)
		if (strcmp(*c, s) == 0)
			return true;
	return false;
}

static bool value_fits(const struct ls_steer_arg *a, json_t *v)
{
	size_t i;
	json_t *item;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return (a->types & LS_SA_STRING) && string_fits(a, v);
	case JSON_INTEGER:
		return (a->types & LS_SA_INT) && in_bounds(a, json_integer_value(v));
	case JSON_TRUE:
	case JSON_FALSE:
		return a->types & LS_SA_BOOL;
	case JSON_NULL:
		return a->types & LS_SA_NULL;
	case JSON_ARRAY:
		if (!(a->types & LS_SA_STRINGS) || !in_bounds(a, (int64_t)json_array_size(v)))
			return false;
		json_array_foreach(v, i, item) {
			if (!json_is_string(item) ||
			    strlen(json_string_value(item)) != json_string_length(item))
				return false;
		}
		return true;
	default:
		return false;
	}
}

/* One phrase per JSON type allowed, joined: "a string of 32 bytes, or null". */
void ls_steer_cmd_describe(const struct ls_steer_arg *a, char *buf, size_t len)
{
	char alt[5][96];
	int n = 0;
	size_t o = 0;

	if (a->types & LS_SA_STRING) {
		if (a->choices) {
			size_t w = 0;
			alt[n][0] = '\0';
			for (const char *const *c = a->choices; *c && w < sizeof(alt[n]); c++) {
				const char *sep = c == a->choices ? "" : c[1] ? ", " : " or ";
				int r = snprintf(alt[n] + w, sizeof(alt[n]) - w, "%s\"%s\"", sep, *c);
				w += r > 0 ? (size_t)r : 0;
			}
		} else if (bounded(a) && a->min == a->max) {
			snprintf(alt[n], sizeof(alt[n]), "a string of %" PRId64 " bytes", a->min);
		} else if (bounded(a)) {
			snprintf(alt[n], sizeof(alt[n]), "a string of %" PRId64 " to %" PRId64 " bytes",
				 a->min, a->max);
		} else {
			snprintf(alt[n], sizeof(alt[n]), "a string");
		}
		n++;
	}
	if (a->types & LS_SA_INT) {
		if (bounded(a))
			snprintf(alt[n], sizeof(alt[n]), "an integer in %" PRId64 "..%" PRId64, a->min,
				 a->max);
		else
			snprintf(alt[n], sizeof(alt[n]), "an integer");
		n++;
	}
	if (a->types & LS_SA_BOOL)
		snprintf(alt[n++], sizeof(alt[0]), "true or false");
	if (a->types & LS_SA_STRINGS) {
		if (bounded(a))
			snprintf(alt[n], sizeof(alt[n]), "an array of %" PRId64 " to %" PRId64 " strings",
				 a->min, a->max);
		else
			snprintf(alt[n], sizeof(alt[n]), "an array of strings");
		n++;
	}
	if (a->types & LS_SA_NULL)
		snprintf(alt[n++], sizeof(alt[0]), "null");
	buf[0] = '\0';
	for (int i = 0; i < n && o < len; i++) {
		int r = snprintf(buf + o, len - o, "%s%s", i == 0 ? "" : i == n - 1 ? ", or " : ", ",
				 alt[i]);
		o += r > 0 ? (size_t)r : 0;
	}
}

/* "session_id, key, destinations" for a message. */
static void arg_list(const struct ls_steer_def *d, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (const struct ls_steer_arg *a = d->args; a && a->key && o < len; a++) {
		int w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", a->key);
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

enum ls_rc ls_steer_cmd_check(const struct ls_steer_def *def, json_t *req, char *msg,
			      size_t msglen)
{
	char what[160], list[256];
	const char *key;
	json_t *v;

	json_object_foreach(req, key, v) {
		const struct ls_steer_arg *a;

		if (strcmp(key, "id") == 0 || strcmp(key, "cmd") == 0)
			continue;
		a = arg_find(def, key);
		if (!a) {
			arg_list(def, list, sizeof(list));
			if (list[0])
				snprintf(msg, msglen, "unknown argument '%.64s' (%s takes: %s)", key,
					 def->name, list);
			else
				snprintf(msg, msglen, "unknown argument '%.64s' (%s takes none)", key,
					 def->name);
			return LS_RC_INVALID;
		}
		if (!value_fits(a, v)) {
			ls_steer_cmd_describe(a, what, sizeof(what));
			snprintf(msg, msglen, "%s must be %s", a->key, what);
			return LS_RC_INVALID;
		}
	}
	for (const struct ls_steer_arg *a = def->args; a && a->key; a++) {
		if (!a->required || json_object_get(req, a->key))
			continue;
		ls_steer_cmd_describe(a, what, sizeof(what));
		snprintf(msg, msglen, "%s is missing (%s: %s)", a->key, what, a->help);
		return LS_RC_INVALID;
	}
	return LS_RC_OK;
}

static json_t *def_json(const struct ls_steer_def *d)
{
	json_t *args = json_array();
	char what[160];

	for (const struct ls_steer_arg *a = d->args; a && a->key; a++) {
		ls_steer_cmd_describe(a, what, sizeof(what));
		json_array_append_new(args, json_pack("{s:s,s:s,s:b,s:s}", "key", a->key, "type",
						      what, "required", a->required, "help",
						      a->help ? a->help : ""));
	}
	return json_pack("{s:s,s:s,s:o}", "cmd", d->name, "help", d->help ? d->help : "",
			 "args", args);
}

json_t *ls_steer_cmd_help(const struct ls_steer_def *defs, const char *only)
{
	json_t *arr = json_array();

	for (const struct ls_steer_def *d = defs; d->name; d++)
		if (!only || strcmp(only, d->name) == 0)
			json_array_append_new(arr, def_json(d));
	if (only && json_array_size(arr) == 0) {
		json_decref(arr);
		return NULL;
	}
	return json_pack("{s:o}", "commands", arr);
}
