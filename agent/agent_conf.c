/* lightspeed-agent configuration (agent_conf.h). */
#include "agent_conf.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

/* The game profiles' server ports (Fortnite 7000-9000; CS2 and Dota 2 27015-27050):
 * what a node serves unless its operator says otherwise. */
static const char *const default_dests[] = { "0.0.0.0/0:7000-9000", "0.0.0.0/0:27015-27050" };

static void default_node_id(char *out, size_t len)
{
	char host[256] = "";
	size_t n = 0;

	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	/* A node id is [A-Za-z0-9._-]: keep what fits of the host name. */
	for (const char *p = host; *p && n + 1 < len && n < LS_CTL_NAME_MAX; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '_' || *p == '-')
			out[n++] = *p;
	if (n == 0)
		n = (size_t)snprintf(out, len, "node");
	out[n] = '\0';
}

void agent_conf_defaults(struct agent_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->agent.listen.sin_family = AF_INET;
	c->agent.listen.sin_addr.s_addr = htonl(INADDR_ANY);
	c->agent.listen.sin_port = htons(4433);
	c->agent.http.sin_family = AF_INET;
	c->agent.http.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->agent.http.sin_port = htons(8080);
	snprintf(c->agent.proxy_socket, sizeof(c->agent.proxy_socket), "/run/lightspeed/proxy.sock");
	snprintf(c->agent.state_dir, sizeof(c->agent.state_dir), "/var/lib/lightspeed");
	default_node_id(c->agent.node_id, sizeof(c->agent.node_id));
	c->agent.max_sessions_per_addr = 16;
	c->agent.idle_timeout = 15;
	c->agent.resume_grace = 120;
	c->agent.icmp_interval_ms = 1000;
	for (size_t i = 0; i < sizeof(default_dests) / sizeof(default_dests[0]); i++)
		ls_dest_parse(default_dests[i], &c->agent.destinations.v[c->agent.destinations.n++]);
	c->agent.log_level = LS_LOG_INFO;
	c->limits.pps = 1000;
	c->limits.bps = 1000000;
	c->quic.max_conns = 4096;
	c->quic.max_conns_per_addr = 64;
	c->quic.max_half_open = 256;
	c->quic.max_half_open_per_addr = 4;
	c->quic.retry_after = 16;
	c->quic.handshake_timeout_ms = 5000;
	c->quic.stream_timeout_ms = 5000;
}

/* ---- custom value parsers -------------------------------------------------------- */

static int want_string(const struct ls_cv *v, const char *key, char *err, size_t errlen)
{
	if (v->type == LS_CV_STRING)
		return 0;
	snprintf(err, errlen, "'%s' must be a string, not %s", key, ls_cv_type_name(v->type));
	return -1;
}

static int parse_hostport(const struct ls_cv *v, void *dst, const char *key, char *err,
			  size_t errlen)
{
	char msg[200];

	if (want_string(v, key, err, errlen) < 0)
		return -1;
	if (ls_hostport_parse(v->u.s, dst, false, true, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "'%s': %s (expected \"a.b.c.d:port\")", key, msg);
		return -1;
	}
	return 0;
}

static int parse_listen(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return parse_hostport(v, dst, "listen", err, errlen);
}

static int parse_http(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return parse_hostport(v, dst, "http", err, errlen);
}

static int parse_name(const struct ls_cv *v, void *dst, const char *key, bool empty_ok,
		      char *err, size_t errlen)
{
	if (want_string(v, key, err, errlen) < 0)
		return -1;
	if (!(empty_ok && !v->u.s[0]) && !ls_ctl_name_ok(v->u.s)) {
		snprintf(err, errlen, "'%s' must be 1 to %d characters of A-Z a-z 0-9 . _ -", key,
			 LS_CTL_NAME_MAX);
		return -1;
	}
	snprintf(dst, LS_CTL_NAME_MAX + 1, "%s", v->u.s);
	return 0;
}

static int parse_node_id(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return parse_name(v, dst, "node_id", false, err, errlen);
}

static int parse_region(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return parse_name(v, dst, "region", true, err, errlen);
}

static int parse_peer_name(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	return parse_name(v, dst, "name", false, err, errlen);
}

static int parse_dests(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct agent_dests d = { .n = 0 };

	if (v->type != LS_CV_ARRAY || v->u.arr.n == 0 || v->u.arr.n > AGENT_MAX_DESTS) {
		snprintf(err, errlen, "'destinations' must be an array of 1 to %d strings",
			 AGENT_MAX_DESTS);
		return -1;
	}
	for (size_t i = 0; i < v->u.arr.n; i++) {
		const struct ls_cv *e = &v->u.arr.items[i];

		if (e->type != LS_CV_STRING || ls_dest_parse(e->u.s, &d.v[d.n]) < 0) {
			snprintf(err, errlen,
				 "'destinations' item %zu is not \"ip[/len][:port[-port]]\"", i + 1);
			return -1;
		}
		d.n++;
	}
	memcpy(dst, &d, sizeof(d));
	return 0;
}

static int parse_allow(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct ls_allowlist al;

	memset(&al, 0, sizeof(al));
	if (v->type != LS_CV_ARRAY || v->u.arr.n > LS_MAX_ALLOW) {
		snprintf(err, errlen, "'allow' must be an array of at most %d CIDRs", LS_MAX_ALLOW);
		return -1;
	}
	for (size_t i = 0; i < v->u.arr.n; i++) {
		const struct ls_cv *e = &v->u.arr.items[i];

		if (e->type != LS_CV_STRING || ls_cidr_parse(e->u.s, &al.c[al.n]) < 0) {
			snprintf(err, errlen, "'allow' item %zu is not a CIDR (\"a.b.c.d/len\")", i + 1);
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

	if (want_string(v, "log_level", err, errlen) < 0)
		return -1;
	lv = ls_log_level_parse(v->u.s);
	if (lv < 0) {
		snprintf(err, errlen, "'log_level' must be \"error\", \"warn\", \"info\" or \"debug\"");
		return -1;
	}
	memcpy(dst, &lv, sizeof(lv));
	return 0;
}

static int parse_peer_addr(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	char msg[200];

	if (want_string(v, "address", err, errlen) < 0)
		return -1;
	/* A peer may be named by host name: resolved once, here (configuration time). */
	if (ls_hostport_parse(v->u.s, dst, true, false, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "'address': %s (expected \"HOST:DATA_PORT\")", msg);
		return -1;
	}
	return 0;
}

static int parse_fp(const struct ls_cv *v, void *dst, char *err, size_t errlen)
{
	struct agent_peer *p = (struct agent_peer *)((char *)dst - offsetof(struct agent_peer, fp));

	if (want_string(v, "fingerprint", err, errlen) < 0)
		return -1;
	if (ls_ctl_fp_parse(v->u.s, dst) < 0) {
		snprintf(err, errlen, "'fingerprint' must be \"sha256:\" and 64 hex digits");
		return -1;
	}
	p->has_fp = true;
	return 0;
}

static void *add_peer(void *conf, char *err, size_t errlen)
{
	struct agent_conf *c = conf;
	struct agent_peer *p;

	if (c->npeers >= LS_CTL_MAX_PEERS) {
		snprintf(err, errlen, "too many [[peer]] sections (at most %d)", LS_CTL_MAX_PEERS);
		return NULL;
	}
	p = &c->peers[c->npeers++];
	memset(p, 0, sizeof(*p));
	p->control_port = 4433;
	return p;
}

/* ---- schema ---------------------------------------------------------------------- */

#define AG(f) offsetof(__typeof__(((struct agent_conf *)0)->agent), f)
#define AGSZ(f) sizeof(((struct agent_conf *)0)->agent.f)
static const struct ls_conf_field agent_fields[] = {
	{ "listen", LS_CF_CUSTOM, AG(listen), 0, 0, 0, parse_listen },
	{ "http", LS_CF_CUSTOM, AG(http), 0, 0, 0, parse_http },
	{ "http_token", LS_CF_STRING, AG(http_token), AGSZ(http_token), 0, 0, NULL },
	{ "proxy_socket", LS_CF_STRING, AG(proxy_socket), AGSZ(proxy_socket), 0, 0, NULL },
	{ "state_dir", LS_CF_STRING, AG(state_dir), AGSZ(state_dir), 0, 0, NULL },
	{ "node_id", LS_CF_CUSTOM, AG(node_id), 0, 0, 0, parse_node_id },
	{ "region", LS_CF_CUSTOM, AG(region), 0, 0, 0, parse_region },
	{ "data_port", LS_CF_INT, AG(data_port), 0, 0, 65535, NULL },
	{ "capacity", LS_CF_INT, AG(capacity), 0, 0, 1000000, NULL },
	{ "max_sessions_per_addr", LS_CF_INT, AG(max_sessions_per_addr), 0, 1, 1000000, NULL },
	{ "idle_timeout", LS_CF_INT, AG(idle_timeout), 0, 2, 3600, NULL },
	{ "resume_grace", LS_CF_INT, AG(resume_grace), 0, 0, 86400, NULL },
	{ "icmp_interval_ms", LS_CF_INT, AG(icmp_interval_ms), 0, 0, 60000, NULL },
	{ "destinations", LS_CF_CUSTOM, AG(destinations), 0, 0, 0, parse_dests },
	{ "allow", LS_CF_CUSTOM, AG(allow), 0, 0, 0, parse_allow },
	{ "log_level", LS_CF_CUSTOM, AG(log_level), 0, 0, 0, parse_level },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

#define LIM(f) offsetof(__typeof__(((struct agent_conf *)0)->limits), f)
static const struct ls_conf_field limit_fields[] = {
	{ "pps", LS_CF_UINT, LIM(pps), 0, 0, 100000000, NULL },
	{ "bps", LS_CF_UINT, LIM(bps), 0, 0, 100000000000LL, NULL },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

#define QU(f) offsetof(__typeof__(((struct agent_conf *)0)->quic), f)
static const struct ls_conf_field quic_fields[] = {
	{ "max_conns", LS_CF_INT, QU(max_conns), 0, 1, 100000, NULL },
	{ "max_conns_per_addr", LS_CF_INT, QU(max_conns_per_addr), 0, 1, 100000, NULL },
	{ "max_half_open", LS_CF_INT, QU(max_half_open), 0, 1, 100000, NULL },
	{ "max_half_open_per_addr", LS_CF_INT, QU(max_half_open_per_addr), 0, 1, 100000, NULL },
	{ "retry_after", LS_CF_INT, QU(retry_after), 0, 0, 100000, NULL },
	{ "handshake_timeout_ms", LS_CF_INT, QU(handshake_timeout_ms), 0, 100, 60000, NULL },
	{ "stream_timeout_ms", LS_CF_INT, QU(stream_timeout_ms), 0, 100, 600000, NULL },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

#define PE(f) offsetof(struct agent_peer, f)
static const struct ls_conf_field peer_fields[] = {
	{ "name", LS_CF_CUSTOM, PE(name), 0, 0, 0, parse_peer_name },
	{ "region", LS_CF_CUSTOM, PE(region), 0, 0, 0, parse_region },
	{ "address", LS_CF_CUSTOM, PE(addr), 0, 0, 0, parse_peer_addr },
	{ "control_port", LS_CF_INT, PE(control_port), 0, 1, 65535, NULL },
	{ "fingerprint", LS_CF_CUSTOM, PE(fp), 0, 0, 0, parse_fp },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct ls_conf_section schema[] = {
	{ "agent", agent_fields, offsetof(struct agent_conf, agent), NULL },
	{ "limits", limit_fields, offsetof(struct agent_conf, limits), NULL },
	{ "quic", quic_fields, offsetof(struct agent_conf, quic), NULL },
	{ "peer", peer_fields, 0, add_peer },
	{ NULL, NULL, 0, NULL },
};

int agent_conf_load(struct agent_conf *c, const char *path, char *err, size_t errlen)
{
	return ls_conf_load_file(path, schema, c, err, errlen);
}

int agent_conf_validate(const struct agent_conf *c, const char *name, char *err, size_t errlen)
{
	if (!c->agent.proxy_socket[0] || !c->agent.state_dir[0]) {
		snprintf(err, errlen, "%s: 'proxy_socket' and 'state_dir' must not be empty", name);
		return -1;
	}
	for (uint32_t i = 0; i < c->npeers; i++) {
		const struct agent_peer *p = &c->peers[i];

		if (!p->name[0] || !p->addr.sin_port) {
			snprintf(err, errlen, "%s: [[peer]] #%u: '%s' is missing", name, i + 1,
				 !p->name[0] ? "name" : "address");
			return -1;
		}
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(c->peers[j].name, p->name) == 0) {
				snprintf(err, errlen, "%s: [[peer]] #%u: name '%s' is already used by #%u",
					 name, i + 1, p->name, j + 1);
				return -1;
			}
	}
	if (c->quic.max_half_open_per_addr > c->quic.max_half_open ||
	    c->quic.max_conns_per_addr > c->quic.max_conns) {
		snprintf(err, errlen, "%s: [quic] a per-address limit exceeds its total", name);
		return -1;
	}
	return 0;
}

/* ---- --check output -------------------------------------------------------------- */

void agent_conf_print(const struct agent_conf *c)
{
	char a[LS_ADDRSTRLEN], buf[64];

	printf("[agent]\n");
	ls_conf_print_str("listen", ls_addr_fmt(&c->agent.listen, a));
	ls_conf_print_str("http", ls_addr_fmt(&c->agent.http, a));
	if (c->agent.http_token[0])
		printf("# http_token: set, not shown\n");
	ls_conf_print_str("proxy_socket", c->agent.proxy_socket);
	ls_conf_print_str("state_dir", c->agent.state_dir);
	ls_conf_print_str("node_id", c->agent.node_id);
	ls_conf_print_str("region", c->agent.region);
	printf("data_port = %" PRId64 "%s\n", c->agent.data_port,
	       c->agent.data_port ? "" : "   # the proxy's");
	printf("capacity = %" PRId64 "%s\n", c->agent.capacity,
	       c->agent.capacity ? "" : "   # the proxy's max_sessions");
	printf("max_sessions_per_addr = %" PRId64 "\n", c->agent.max_sessions_per_addr);
	printf("idle_timeout = %" PRId64 "\n", c->agent.idle_timeout);
	printf("resume_grace = %" PRId64 "\n", c->agent.resume_grace);
	printf("icmp_interval_ms = %" PRId64 "\n", c->agent.icmp_interval_ms);
	printf("destinations = [");
	for (uint32_t i = 0; i < c->agent.destinations.n; i++) {
		ls_dest_fmt(&c->agent.destinations.v[i], buf, sizeof(buf));
		printf("%s\"%s\"", i ? ", " : "", buf);
	}
	printf("]\nallow = [");
	for (int i = 0; i < c->agent.allow.n; i++) {
		ls_cidr_fmt(&c->agent.allow.c[i], buf, sizeof(buf));
		printf("%s\"%s\"", i ? ", " : "", buf);
	}
	printf("]\n");
	ls_conf_print_str("log_level", ls_log_level_name((enum ls_log_level)c->agent.log_level));
	printf("\n[limits]\npps = %" PRIu64 "\nbps = %" PRIu64 "\n", c->limits.pps, c->limits.bps);
	printf("\n[quic]\nmax_conns = %" PRId64 "\nmax_conns_per_addr = %" PRId64
	       "\nmax_half_open = %" PRId64 "\nmax_half_open_per_addr = %" PRId64
	       "\nretry_after = %" PRId64 "\nhandshake_timeout_ms = %" PRId64
	       "\nstream_timeout_ms = %" PRId64 "\n",
	       c->quic.max_conns, c->quic.max_conns_per_addr, c->quic.max_half_open,
	       c->quic.max_half_open_per_addr, c->quic.retry_after, c->quic.handshake_timeout_ms,
	       c->quic.stream_timeout_ms);
	for (uint32_t i = 0; i < c->npeers; i++) {
		const struct agent_peer *p = &c->peers[i];
		char fp[LS_CTL_FP_STRLEN];

		printf("\n[[peer]]\n");
		ls_conf_print_str("name", p->name);
		ls_conf_print_str("region", p->region);
		ls_conf_print_str("address", ls_addr_fmt(&p->addr, a));
		printf("control_port = %" PRId64 "\n", p->control_port);
		if (p->has_fp) {
			ls_ctl_fp_fmt(p->fp, fp);
			ls_conf_print_str("fingerprint", fp);
		}
	}
}
