/* lightspeed-proxy configuration: defaults, the TOML schema, the checks the schema
 * cannot express, and the effective configuration that --check prints. */
#include "proxy.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "util.h"

#define PX_MAX_STATIC PX_SESSIONS_MAX

void px_conf_defaults(struct px_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->proxy.bind.sin_family = AF_INET;
	c->proxy.bind.sin_addr.s_addr = htonl(INADDR_ANY);
	c->proxy.bind.sin_port = htons(4434);
	snprintf(c->proxy.socket, sizeof(c->proxy.socket), "%s", "/run/lightspeed/proxy.sock");
	c->proxy.require_auth = true;
	c->proxy.idle_timeout = 60;
	c->proxy.max_sessions = 1000;
	c->proxy.max_flows = 8;
	c->proxy.log_level = LS_LOG_INFO;
	c->limits.pps = 1000;
	c->limits.bps = 1000000;
}

/* ---- custom value parsers (messages without position: the loader adds it) ------- */

static int want_type(const struct ls_cv *v, enum ls_cv_type t, const char *what, char *err,
		     size_t errlen)
{
	if (v->type == t)
		return 0;
	snprintf(err, errlen, "%s must be %s, not %s", what,
		 t == LS_CV_STRING ? "a string" : t == LS_CV_ARRAY ? "an array" : "an integer",
		 ls_cv_type_name(v->type));
	return -1;
}

static int parse_bind(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	char msg[200];

	if (want_type(v, LS_CV_STRING, "'bind'", err, errlen) < 0)
		return -1;
	if (ls_hostport_parse(v->u.s, dst, false, true, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "'bind': %s (expected \"a.b.c.d:port\")", msg);
		return -1;
	}
	return 0;
}

static int parse_socket(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	size_t cap = sizeof(((struct px_conf_main *)0)->socket);

	if (want_type(v, LS_CV_STRING, "'socket'", err, errlen) < 0)
		return -1;
	if (!v->u.s[0] || strlen(v->u.s) >= cap) {
		snprintf(err, errlen, "'socket' must be a path of 1 to %zu bytes", cap - 1);
		return -1;
	}
	memcpy(dst, v->u.s, strlen(v->u.s) + 1);
	return 0;
}

static int parse_allow(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct ls_allowlist al;

	if (want_type(v, LS_CV_ARRAY, "'allow'", err, errlen) < 0)
		return -1;
	memset(&al, 0, sizeof(al));
	if (v->u.arr.n > LS_MAX_ALLOW) {
		snprintf(err, errlen, "'allow' holds at most %d CIDRs", LS_MAX_ALLOW);
		return -1;
	}
	for (size_t i = 0; i < v->u.arr.n; i++) {
		const struct ls_cv *e = &v->u.arr.items[i];

		if (e->type != LS_CV_STRING || ls_cidr_parse(e->u.s, &al.c[al.n]) < 0) {
			snprintf(err, errlen, "'allow' item %zu is not a CIDR (\"a.b.c.d/len\")",
				 i + 1);
			return -1;
		}
		al.n++;
	}
	memcpy(dst, &al, sizeof(al));
	return 0;
}

static int parse_level(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	int lv;

	if (want_type(v, LS_CV_STRING, "'log_level'", err, errlen) < 0)
		return -1;
	lv = ls_log_level_parse(v->u.s);
	if (lv < 0) {
		snprintf(err, errlen, "'log_level' must be \"error\", \"warn\", \"info\" or \"debug\"");
		return -1;
	}
	memcpy(dst, &lv, sizeof(lv));
	return 0;
}

static int parse_key(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct px_key *k = dst;

	if (want_type(v, LS_CV_STRING, "'key'", err, errlen) < 0)
		return -1;
	if (ls_hex_decode(v->u.s, k->b, LS_KEY_LEN) < 0) {
		snprintf(err, errlen, "'key' must be exactly %d hex digits", 2 * LS_KEY_LEN);
		return -1;
	}
	k->set = true;
	return 0;
}

static int parse_dests(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct px_dest_list *dl = dst;
	struct ls_dest *d;

	if (want_type(v, LS_CV_ARRAY, "'destinations'", err, errlen) < 0)
		return -1;
	if (v->u.arr.n == 0 || v->u.arr.n > PX_MAX_DESTS) {
		snprintf(err, errlen, "'destinations' must hold 1 to %d entries", PX_MAX_DESTS);
		return -1;
	}
	d = calloc(v->u.arr.n, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < v->u.arr.n; i++) {
		const struct ls_cv *e = &v->u.arr.items[i];

		if (e->type != LS_CV_STRING || ls_dest_parse(e->u.s, &d[i]) < 0) {
			snprintf(err, errlen,
				 "'destinations' item %zu is not \"ip[/len][:port[-port]]\"", i + 1);
			free(d);
			return -1;
		}
	}
	free(dl->v);
	dl->v = d;
	dl->n = v->u.arr.n;
	return 0;
}

static int parse_rate(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct px_opt_rate *r = dst;

	if (want_type(v, LS_CV_INT, "a rate", err, errlen) < 0)
		return -1;
	if (v->u.i < 0) {
		snprintf(err, errlen, "a rate must be 0 (unlimited) or more");
		return -1;
	}
	r->v = (uint64_t)v->u.i;
	r->set = true;
	return 0;
}

static int parse_fec(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct px_opt_fec *f = dst;
	char msg[160];

	if (want_type(v, LS_CV_STRING, "'fec'", err, errlen) < 0)
		return -1;
	if (dp_fec_parse(v->u.s, &f->v, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "'fec': %s", msg);
		return -1;
	}
	f->set = true;
	return 0;
}

static void *add_static(void *conf, char *err, size_t errlen)
{
	struct px_conf *c = conf;
	struct px_static *st, **pp = &c->statics;

	if (c->nstatic >= PX_MAX_STATIC) {
		snprintf(err, errlen, "too many [[session]] sections (at most %d)", PX_MAX_STATIC);
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->at = ls_conf_header_at();
	while (*pp)
		pp = &(*pp)->next;
	*pp = st;
	c->nstatic++;
	return st;
}

/* ---- schema ---------------------------------------------------------------------- */

#define MAIN(f) offsetof(struct px_conf_main, f)
static const struct ls_conf_field main_fields[] = {
	{ "bind", LS_CF_CUSTOM, MAIN(bind), 0, 0, 0, parse_bind },
	{ "socket", LS_CF_CUSTOM, MAIN(socket), 0, 0, 0, parse_socket },
	{ "require_auth", LS_CF_BOOL, MAIN(require_auth), 0, 0, 0, NULL },
	{ "idle_timeout", LS_CF_INT, MAIN(idle_timeout), 0, 1, PX_IDLE_MAX, NULL },
	{ "max_sessions", LS_CF_INT, MAIN(max_sessions), 0, 1, PX_SESSIONS_MAX, NULL },
	{ "max_flows", LS_CF_INT, MAIN(max_flows), 0, 1, PX_FLOWS_MAX, NULL },
	{ "allow", LS_CF_CUSTOM, MAIN(allow), 0, 0, 0, parse_allow },
	{ "log_level", LS_CF_CUSTOM, MAIN(log_level), 0, 0, 0, parse_level },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_field limit_fields[] = {
	{ "pps", LS_CF_UINT, offsetof(struct px_conf_limits, pps), 0, 0, PX_RATE_MAX, NULL },
	{ "bps", LS_CF_UINT, offsetof(struct px_conf_limits, bps), 0, 0, PX_RATE_MAX, NULL },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

#define STATIC(f) offsetof(struct px_static, f)
static const struct ls_conf_field static_fields[] = {
	{ "id", LS_CF_INT, STATIC(id), 0, 1, UINT32_MAX, NULL },
	{ "key", LS_CF_CUSTOM, STATIC(key), 0, 0, 0, parse_key },
	{ "destinations", LS_CF_CUSTOM, STATIC(dests), 0, 0, 0, parse_dests },
	{ "pps", LS_CF_CUSTOM, STATIC(pps), 0, 0, 0, parse_rate },
	{ "bps", LS_CF_CUSTOM, STATIC(bps), 0, 0, 0, parse_rate },
	{ "fec", LS_CF_CUSTOM, STATIC(fec), 0, 0, 0, parse_fec },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_section schema[] = {
	{ "proxy", main_fields, offsetof(struct px_conf, proxy), NULL },
	{ "limits", limit_fields, offsetof(struct px_conf, limits), NULL },
	{ "session", static_fields, 0, add_static },
	{ NULL, NULL, 0, NULL },
};

int px_conf_load(struct px_conf *c, const char *path, char *err, size_t errlen)
{
	return ls_conf_load_file(path, schema, c, err, errlen);
}

int px_conf_validate(const struct px_conf *c, const char *name, char *err, size_t errlen)
{
	size_t i = 1;

	if (!c->proxy.socket[0]) {
		snprintf(err, errlen, "%s: 'socket' must not be empty", name);
		return -1;
	}
	if ((int64_t)c->nstatic > c->proxy.max_sessions) {
		const struct px_static *over = c->statics;

		for (int64_t k = 0; k < c->proxy.max_sessions; k++)
			over = over->next;
		snprintf(err, errlen,
			 "%s:%d:%d: %zu [[session]] sections, but max_sessions is %" PRId64
			 ": raise max_sessions or remove sessions", name, over->at.line,
			 over->at.col, c->nstatic, c->proxy.max_sessions);
		return -1;
	}
	for (const struct px_static *st = c->statics; st; st = st->next, i++) {
		const char *missing = !st->id ? "id" : !st->key.set ? "key" :
				      !st->dests.n ? "destinations" : NULL;
		size_t j = 1;

		if (missing) {
			snprintf(err, errlen, "%s:%d:%d: [[session]] #%zu: '%s' is missing", name,
				 st->at.line, st->at.col, i, missing);
			return -1;
		}
		for (const struct px_static *o = c->statics; o != st; o = o->next, j++) {
			if (o->id == st->id) {
				snprintf(err, errlen,
					 "%s:%d:%d: [[session]] #%zu: id %" PRId64
					 " is already used by #%zu (line %d)",
					 name, st->at.line, st->at.col, i, st->id, j, o->at.line);
				return -1;
			}
		}
	}
	return 0;
}

void px_conf_warn(const struct px_conf *c, bool to_stderr)
{
	size_t i = 1;

	for (const struct px_static *st = c->statics; st; st = st->next, i++) {
		for (size_t j = 0; j < st->dests.n; j++) {
			const char *denied = ls_dest_denied(&c->proxy.allow, &st->dests.v[j]);
			char d[64];

			if (!denied)
				continue;
			ls_dest_fmt(&st->dests.v[j], d, sizeof(d));
			if (to_stderr)
				fprintf(stderr,
					PX_PROG ": warning: [[session]] #%zu (id %" PRId64 "): destination "
					"%s is in the denied range %s, which allow does not cover: its "
					"packets will be dropped (denied_destination); add the range to "
					"[proxy] allow or --allow if it is a game server\n",
					i, st->id, d, denied);
			else
				ls_warn("[[session]] #%zu (id %" PRId64 "): destination %s is in the "
					"denied range %s, which allow does not cover: its packets will "
					"be dropped; add the range to [proxy] allow or --allow if it is a "
					"game server", i, st->id, d, denied);
		}
	}
}

void px_conf_free(struct px_conf *c)
{
	while (c->statics) {
		struct px_static *st = c->statics;

		c->statics = st->next;
		free(st->dests.v);
		free(st);
	}
	c->nstatic = 0;
}

/* ---- --check output -------------------------------------------------------------- */

static void print_str(const char *key, const char *s)
{
	printf("%s = \"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	printf("\"\n");
}

void px_conf_print(const struct px_conf *c)
{
	char a[LS_ADDRSTRLEN], buf[64];

	printf("[proxy]\n");
	print_str("bind", ls_addr_fmt(&c->proxy.bind, a));
	print_str("socket", c->proxy.socket);
	printf("require_auth = %s\n", c->proxy.require_auth ? "true" : "false");
	printf("idle_timeout = %" PRId64 "\n", c->proxy.idle_timeout);
	printf("max_sessions = %" PRId64 "\n", c->proxy.max_sessions);
	printf("max_flows = %" PRId64 "\n", c->proxy.max_flows);
	printf("allow = [");
	for (int i = 0; i < c->proxy.allow.n; i++) {
		ls_cidr_fmt(&c->proxy.allow.c[i], buf, sizeof(buf));
		printf("%s\"%s\"", i ? ", " : "", buf);
	}
	printf("]\n");
	print_str("log_level", ls_log_level_name((enum ls_log_level)c->proxy.log_level));
	printf("\n[limits]\npps = %" PRIu64 "\nbps = %" PRIu64 "\n", c->limits.pps, c->limits.bps);
	for (const struct px_static *st = c->statics; st; st = st->next) {
		printf("\n[[session]]\nid = %" PRId64 "\n", st->id);
		printf("# key: set, not shown\n");
		printf("destinations = [");
		for (size_t i = 0; i < st->dests.n; i++) {
			ls_dest_fmt(&st->dests.v[i], buf, sizeof(buf));
			printf("%s\"%s\"", i ? ", " : "", buf);
		}
		printf("]\n");
		printf("pps = %" PRIu64 "\n", st->pps.set ? st->pps.v : c->limits.pps);
		printf("bps = %" PRIu64 "\n", st->bps.set ? st->bps.v : c->limits.bps);
		if (st->fec.set) {
			dp_fec_fmt(&st->fec.v, buf, sizeof(buf));
			print_str("fec", buf);
		} else {
			printf("# fec: as the client asks\n");
		}
	}
}
