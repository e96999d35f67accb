/* lightspeed-client: configuration schema, command-line overrides, --check output. */
#include "client_conf.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "client_route.h"
#include "conf.h"
#include "log.h"
#include "secret.h"
#include "util.h"

void client_conf_defaults(struct client_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "%s", CL_DEFAULT_LISTEN);
	snprintf(c->socket, sizeof(c->socket), "%s", CL_DEFAULT_SOCKET);
	/* Redirect mode needs no privileges: a user's client steers from the user's own
	 * runtime directory, since /run/lightspeed belongs to root. */
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (geteuid() != 0 && xdg && xdg[0] == '/' &&
	    strlen(xdg) + sizeof("/lightspeed/client.sock") <= sizeof(c->socket))
		snprintf(c->socket, sizeof(c->socket), "%s/lightspeed/client.sock", xdg);
	c->keepalive_ms = CL_KEEPALIVE_DEFAULT_MS;
	dp_fec_parse("off", &c->fec, NULL, 0);
	c->mode = CL_MODE_SINGLE;
	c->cost_budget = CL_COST_BUDGET_DEFAULT;
	c->log_level = LS_LOG_INFO;
}

static int want_string(const struct ls_cv *v, char *err, size_t errlen)
{
	if (v->type == LS_CV_STRING)
		return 0;
	snprintf(err, errlen, "expected a string, not %s", ls_cv_type_name(v->type));
	return -1;
}

/* "host:port" checked for shape only: names are resolved once, after everything is
 * read, so that --check and a bad later key fail without a DNS wait. */
static int parse_hostport(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	const char *s, *colon;
	int64_t port;

	if (want_string(v, err, errlen) < 0)
		return -1;
	s = v->u.s;
	colon = strrchr(s, ':');
	if (!colon || colon == s) {
		snprintf(err, errlen, "expected host:port, not '%.64s'", s);
		return -1;
	}
	if (ls_parse_i64(colon + 1, 1, 65535, &port) < 0) {
		snprintf(err, errlen, "bad port in '%.64s' (1..65535)", s);
		return -1;
	}
	for (const char *p = s; p < colon; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-')) {
			snprintf(err, errlen, "bad host in '%.64s' (an IPv4 address or a name)", s);
			return -1;
		}
	}
	if (strlen(s) >= 256) {
		snprintf(err, errlen, "too long (at most 255 characters)");
		return -1;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* Capture mode takes "auto" too: every server the game talks to. */
static int parse_game_server(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (v->type == LS_CV_STRING && strcmp(v->u.s, "auto") == 0) {
		memcpy(dst, "auto", 5);
		return 0;
	}
	return parse_hostport(v, dst, err, errlen);
}

/* A profile's id, or "auto" (the profile of the game found running). */
static int parse_game(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	size_t n;

	if (want_string(v, err, errlen) < 0)
		return -1;
	n = strlen(v->u.s);
	for (size_t i = 0; i < n; i++) {
		char ch = v->u.s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			n = 0;
	}
	if (n == 0 || n >= LS_PROFILE_ID_MAX) {
		snprintf(err, errlen, "'%.40s' is not a game profile's name (a-z, 0-9, '-', '_') or "
			 "\"auto\"", v->u.s);
		return -1;
	}
	memcpy(dst, v->u.s, n + 1);
	return 0;
}

/* ["7000-9000", "27015"] in a file, "7000-9000,27015" on the command line. */
static int parse_ports(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct client_conf *c = (struct client_conf *)((char *)dst - offsetof(struct client_conf, ports));
	struct ls_port_range r[LS_PROFILE_MAX_PORTS];
	char buf[512], *save = NULL;
	size_t n = 0;

	if (v->type == LS_CV_STRING) {
		snprintf(buf, sizeof(buf), "%s", v->u.s);
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			if (n == LS_PROFILE_MAX_PORTS || ls_port_range_parse(t, &r[n++]) < 0)
				goto bad;
	} else if (v->type == LS_CV_ARRAY) {
		for (size_t i = 0; i < v->u.arr.n; i++)
			if (n == LS_PROFILE_MAX_PORTS || v->u.arr.items[i].type != LS_CV_STRING ||
			    ls_port_range_parse(v->u.arr.items[i].u.s, &r[n++]) < 0)
				goto bad;
	} else {
		goto bad;
	}
	if (n == 0)
		goto bad;
	memcpy(c->ports, r, n * sizeof(r[0]));
	c->nports = n;
	return 0;
bad:
	snprintf(err, errlen, "expected UDP ports or ranges, \"7000-9000\" or \"27015\" (at most %d)",
		 LS_PROFILE_MAX_PORTS);
	return -1;
}

static int parse_listen(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct in_addr a;

	if (want_string(v, err, errlen) < 0)
		return -1;
	if (strlen(v->u.s) >= sizeof(((struct client_conf *)0)->listen) ||
	    inet_pton(AF_INET, v->u.s, &a) != 1) {
		snprintf(err, errlen, "expected an IPv4 address, not '%.64s'", v->u.s);
		return -1;
	}
	memcpy(dst, v->u.s, strlen(v->u.s) + 1);
	return 0;
}

static int parse_socket(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	size_t cap = sizeof(((struct client_conf *)0)->socket);

	if (want_string(v, err, errlen) < 0)
		return -1;
	if (!v->u.s[0] || strlen(v->u.s) >= cap) {
		snprintf(err, errlen, "the steering socket must be a path of 1 to %zu bytes",
			 cap - 1);
		return -1;
	}
	memcpy(dst, v->u.s, strlen(v->u.s) + 1);
	return 0;
}

static int parse_key(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct client_key *k = dst;

	if (want_string(v, err, errlen) < 0)
		return -1;
	if (ls_hex_decode(v->u.s, k->b, LS_KEY_LEN) < 0) {
		snprintf(err, errlen, "the key must be exactly %d hex digits", 2 * LS_KEY_LEN);
		return -1;
	}
	k->set = true;
	k->in_config = true;
	return 0;
}

/* key_file / --key-file: the key in a file of its own, so it never shows in `ps`. */
static int parse_key_file(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct client_key *k = dst;
	char hex[2 * LS_KEY_LEN + 8], msg[300];

	if (want_string(v, err, errlen) < 0)
		return -1;
	if (ls_secret_read(v->u.s, hex, sizeof(hex), msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "key file %s", msg);
		return -1;
	}
	if (ls_hex_decode(hex, k->b, LS_KEY_LEN) < 0) {
		memset(hex, 0, sizeof(hex));
		snprintf(err, errlen, "key file %.200s: expected %d hex digits on its first line",
			 v->u.s, 2 * LS_KEY_LEN);
		return -1;
	}
	memset(hex, 0, sizeof(hex));
	ls_secret_check_mode(v->u.s, "a session key");
	k->set = true;
	k->in_config = false;
	return 0;
}

static int parse_fec(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	if (want_string(v, err, errlen) < 0)
		return -1;
	return dp_fec_parse(v->u.s, dst, err, errlen);
}

static int parse_mode(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	enum client_mode m;

	if (want_string(v, err, errlen) < 0)
		return -1;
	if (client_mode_parse(v->u.s, &m) < 0) {
		snprintf(err, errlen, "'%.32s' is not a path mode (single, duplicate, split, auto)",
			 v->u.s);
		return -1;
	}
	*(int *)dst = (int)m;
	return 0;
}

/* A number of wire packets per game packet: an integer or a decimal, in 1..3 (a
 * command-line string too). */
static int parse_budget(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	double d;
	char *end;

	if (v->type == LS_CV_INT)
		d = (double)v->u.i;
	else if (v->type == LS_CV_FLOAT)
		d = v->u.f;
	else if (v->type == LS_CV_STRING && (d = strtod(v->u.s, &end), end != v->u.s && !*end))
		;
	else {
		snprintf(err, errlen, "expected a number of wire packets per game packet");
		return -1;
	}
	if (!(d >= 1 && d <= 3)) {
		snprintf(err, errlen, "must be in 1..3 (wire packets per game packet)");
		return -1;
	}
	*(double *)dst = d;
	return 0;
}

static int parse_log_level(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	int level;

	if (want_string(v, err, errlen) < 0)
		return -1;
	level = ls_log_level_parse(v->u.s);
	if (level < 0) {
		snprintf(err, errlen, "'%.32s' is not a log level (error, warn, info, debug)",
			 v->u.s);
		return -1;
	}
	*(int *)dst = level;
	return 0;
}

#define F(key, kind, member, min, max, parse)                                              \
	{ key, kind, offsetof(struct client_conf, member),                                \
	  sizeof(((struct client_conf *)0)->member), min, max, parse }

static const struct ls_conf_field client_fields[] = {
	F("proxy", LS_CF_CUSTOM, proxy, 0, 0, parse_hostport),
	F("game_server", LS_CF_CUSTOM, game_server, 0, 0, parse_game_server),
	F("local_port", LS_CF_INT, local_port, 1, 65535, NULL),
	F("listen", LS_CF_CUSTOM, listen, 0, 0, parse_listen),
	F("socket", LS_CF_CUSTOM, socket, 0, 0, parse_socket),
	F("session_id", LS_CF_UINT, session_id, 1, CL_SESSION_ID_MAX, NULL),
	F("key", LS_CF_CUSTOM, key, 0, 0, parse_key),
	F("key_file", LS_CF_CUSTOM, key, 0, 0, parse_key_file),
	F("keepalive_ms", LS_CF_INT, keepalive_ms, CL_KEEPALIVE_MIN_MS, CL_KEEPALIVE_MAX_MS, NULL),
	F("fec", LS_CF_CUSTOM, fec, 0, 0, parse_fec),
	F("path_mode", LS_CF_CUSTOM, mode, 0, 0, parse_mode),
	F("cost_budget", LS_CF_CUSTOM, cost_budget, 0, 0, parse_budget),
	F("log_level", LS_CF_CUSTOM, log_level, 0, 0, parse_log_level),
	F("capture", LS_CF_BOOL, capture, 0, 0, NULL),
	F("game", LS_CF_CUSTOM, game, 0, 0, parse_game),
	F("ports", LS_CF_CUSTOM, ports, 0, 0, parse_ports),
	F("capture_mark", LS_CF_INT, capture_mark, 1, 0x7ffffffe, NULL),
	{ NULL, LS_CF_STRING, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_section client_schema[] = {
	{ "client", client_fields, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

int client_conf_load(const char *path, struct client_conf *c, char *err, size_t errlen)
{
	/* Into a copy: a file that fails half-way leaves c as it was. */
	struct client_conf tmp = *c;

	if (ls_conf_load_file(path, client_schema, &tmp, err, errlen) < 0)
		return -1;
	if ((tmp.session_id != 0) != tmp.key.set) {
		snprintf(err, errlen, "%s: session_id and key (or key_file) go together (both or "
			 "neither)", path);
		return -1;
	}
	if (tmp.key.set && tmp.key.in_config)
		ls_secret_check_mode(path, "a session key");
	*c = tmp;
	return 0;
}

int client_conf_set(struct client_conf *c, const char *key, const char *value, char *err,
		    size_t errlen)
{
	const struct ls_conf_field *f;
	char *dst;

	for (f = client_fields; f->key && strcmp(f->key, key) != 0; f++)
		;
	if (!f->key) {
		snprintf(err, errlen, "unknown setting '%s'", key);
		return -1;
	}
	dst = (char *)c + f->offset;
	switch (f->kind) {
	case LS_CF_INT:
	case LS_CF_UINT: {
		int64_t i;
		if (ls_parse_i64(value, f->min, f->max, &i) < 0) {
			snprintf(err, errlen, "must be an integer in %lld..%lld, not '%.64s'",
				 (long long)f->min, (long long)f->max, value);
			return -1;
		}
		if (f->kind == LS_CF_INT) {
			memcpy(dst, &i, sizeof(i));
		} else {
			uint64_t u = (uint64_t)i;
			memcpy(dst, &u, sizeof(u));
		}
		return 0;
	}
	case LS_CF_STRING:
		if (strlen(value) >= f->size) {
			snprintf(err, errlen, "too long (at most %zu characters)", f->size - 1);
			return -1;
		}
		memcpy(dst, value, strlen(value) + 1);
		return 0;
	case LS_CF_CUSTOM: {
		/* The parsers read an ls_cv, whose string is not const: hand them a copy. */
		char copy[512];
		struct ls_cv v = { .type = LS_CV_STRING };
		if (strlen(value) >= sizeof(copy)) {
			snprintf(err, errlen, "too long");
			return -1;
		}
		memcpy(copy, value, strlen(value) + 1);
		v.u.s = copy;
		return f->parse(&v, dst, err, errlen);
	}
	case LS_CF_BOOL:
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
			snprintf(err, errlen, "must be true or false, not '%.64s'", value);
			return -1;
		}
		*(bool *)dst = value[0] == 't';
		return 0;
	default:
		snprintf(err, errlen, "'%s' cannot be set from the command line", key);
		return -1;
	}
}

const char *client_addr_unusable(const struct sockaddr_in *a)
{
	uint32_t ip = ntohl(a->sin_addr.s_addr);

	if (a->sin_port == 0)
		return "port 0";
	if ((ip >> 24) == 0)
		return "an address in 0.0.0.0/8";
	if ((ip >> 28) == 0xe)
		return "a multicast address";
	if ((ip >> 28) == 0xf)
		return "a reserved or broadcast address";
	return NULL;
}

static int resolve(const char *what, const char *s, struct sockaddr_in *out, char *err,
		   size_t errlen)
{
	char msg[256];
	const char *bad;

	if (ls_hostport_parse(s, out, true, false, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", what, msg);
		return -1;
	}
	bad = client_addr_unusable(out);
	if (bad) {
		snprintf(err, errlen, "%s: '%s' is %s", what, s, bad);
		return -1;
	}
	return 0;
}

/* What either mode checks: the session's two halves, the steering socket. */
static int session_socket_ok(const struct client_conf *c, char *err, size_t errlen)
{
	if ((c->session_id != 0) != c->key.set) {
		snprintf(err, errlen, "session_id and key (or key_file) go together (both or neither)");
		return -1;
	}
	if (!c->socket[0]) {
		snprintf(err, errlen, "socket: empty path");
		return -1;
	}
	return 0;
}

/* Capture mode: no local port (the game talks to its server); what to divert is the
 * game profile's ports or --ports, every server or the one --game-server names. */
static int capture_finish(const struct client_conf *c, struct client_addrs *a, char *err,
			  size_t errlen)
{
	struct ls_profile p;
	char msg[512];

	if (!c->game[0] && !c->nports) {
		snprintf(err, errlen, "capture mode needs a game (--game NAME or auto) or ports "
			 "(--ports 7000-9000,...)");
		return -2;
	}
	if (c->game[0] && strcmp(c->game, "auto") != 0 && ls_profile_find(c->game, &p, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "game: %s", msg);
		return -1;
	}
	if (session_socket_ok(c, err, errlen) < 0)
		return -1;
	if (c->proxy[0] && resolve("proxy", c->proxy, &a->proxy, err, errlen) < 0)
		return -1;
	if (c->game_server[0] && strcmp(c->game_server, "auto") != 0 &&
	    resolve("game_server", c->game_server, &a->game_server, err, errlen) < 0)
		return -1;
	return 0;
}

int client_conf_finish(const struct client_conf *c, struct client_addrs *a, char *err,
		       size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (c->capture)
		return capture_finish(c, a, err, errlen);
	if (c->game[0] || c->nports || strcmp(c->game_server, "auto") == 0) {
		snprintf(err, errlen, "%s goes with capture mode (--capture)",
			 c->game[0] ? "game (--game)" : c->nports ? "ports (--ports)" : "game_server \"auto\"");
		return -2;
	}
	/* The proxy may come later, from a controller's route_add (3.2). */
	if (!c->game_server[0] || !c->local_port) {
		snprintf(err, errlen, "%s is required (flag or config file)",
			 !c->game_server[0] ? "game_server (--game-server)" :
					      "local_port (--local-port)");
		return -2;
	}
	if (session_socket_ok(c, err, errlen) < 0)
		return -1;
	a->listen.sin_family = AF_INET;
	a->listen.sin_port = htons((uint16_t)c->local_port);
	if (inet_pton(AF_INET, c->listen, &a->listen.sin_addr) != 1) {
		snprintf(err, errlen, "listen: '%s' is not an IPv4 address", c->listen);
		return -1;
	}
	if ((c->proxy[0] && resolve("proxy", c->proxy, &a->proxy, err, errlen) < 0) ||
	    resolve("game_server", c->game_server, &a->game_server, err, errlen) < 0)
		return -1;
	if (!c->proxy[0])
		return 0;
	/* Sending the tunnel into our own game socket would loop every datagram. */
	if (a->proxy.sin_port == a->listen.sin_port &&
	    (a->proxy.sin_addr.s_addr == a->listen.sin_addr.s_addr ||
	     (a->listen.sin_addr.s_addr == htonl(INADDR_ANY) &&
	      (ntohl(a->proxy.sin_addr.s_addr) >> 24) == 127))) {
		snprintf(err, errlen, "proxy %s is the client's own local address", c->proxy);
		return -1;
	}
	return 0;
}

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

static void print_addr(FILE *f, const char *key, const char *given, const struct sockaddr_in *a)
{
	char buf[LS_ADDRSTRLEN];

	fprintf(f, "%s = ", key);
	toml_str(f, given);
	ls_addr_fmt(a, buf);
	if (strcmp(buf, given) != 0)
		fprintf(f, "  # %s", buf);
	fputc('\n', f);
}

void client_conf_print(const struct client_conf *c, const struct client_addrs *a, FILE *f)
{
	fprintf(f, "[client]\n");
	if (c->proxy[0])
		print_addr(f, "proxy", c->proxy, &a->proxy);
	else
		fprintf(f, "# proxy: none (routes come by steering: route_add)\n");
	if (c->capture && (!c->game_server[0] || strcmp(c->game_server, "auto") == 0))
		fprintf(f, "game_server = \"auto\"  # every server the game talks to\n");
	else
		print_addr(f, "game_server", c->game_server, &a->game_server);
	if (c->capture) {
		/* The profile file that serves, so that a user's override can be checked. */
		struct ls_profile prof;
		char perr[512];
		bool have = c->game[0] && strcmp(c->game, "auto") != 0 &&
			    ls_profile_find(c->game, &prof, perr, sizeof(perr)) == 0;
		fprintf(f, "capture = true\n");
		if (have)
			fprintf(f, "game = \"%s\"  # %s, %s\n", c->game, prof.name, prof.path);
		else if (c->game[0])
			fprintf(f, "game = \"%s\"\n", c->game);
		if (c->nports) {
			char list[LS_PROFILE_MAX_PORTS * (LS_PORT_RANGE_STRLEN + 4)];
			ls_port_ranges_fmt(c->ports, c->nports, "\", \"", list, sizeof(list));
			fprintf(f, "ports = [\"%s\"]\n", list);
		} else if (have) {
			char list[LS_PROFILE_MAX_PORTS * (LS_PORT_RANGE_STRLEN + 1)];
			ls_port_ranges_fmt(prof.ports, prof.nports, " ", list, sizeof(list));
			fprintf(f, "# ports: the game profile's, %s\n", list);
		} else {
			fprintf(f, "# ports: the game profile's\n");
		}
		if (c->capture_mark)
			fprintf(f, "capture_mark = %lld\n", (long long)c->capture_mark);
	} else {
		fprintf(f, "local_port = %lld\n", (long long)c->local_port);
	}
	fprintf(f, "listen = ");
	toml_str(f, c->listen);
	fprintf(f, "\nsocket = ");
	toml_str(f, c->socket);
	fputc('\n', f);
	if (c->session_id) {
		fprintf(f, "session_id = %llu\n", (unsigned long long)c->session_id);
		/* A secret has no place on a terminal or in a log. */
		fprintf(f, "# key = (set; not shown)\n");
	} else {
		fprintf(f, "# session_id, key: not set (unauthenticated)\n");
	}
	fprintf(f, "keepalive_ms = %lld\n", (long long)c->keepalive_ms);
	char fec[32];
	dp_fec_fmt(&c->fec, fec, sizeof(fec));
	fprintf(f, "fec = \"%s\"\n", fec);
	fprintf(f, "path_mode = \"%s\"\n", client_mode_name((enum client_mode)c->mode));
	fprintf(f, "cost_budget = %g\n", c->cost_budget);
	fprintf(f, "log_level = \"%s\"\n", ls_log_level_name((enum ls_log_level)c->log_level));
}
