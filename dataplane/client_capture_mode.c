/* lightspeed-client capture mode inside the client (see client_capture_mode.h). */
#include "client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "util.h"

/* ---- the game ------------------------------------------------------------------------ */

/* --game auto at start: the first profile whose game runs now. */
static bool find_any_game(struct ls_profile *out, pid_t *pid)
{
	struct ls_profile_set *set = calloc(1, sizeof(*set));
	struct ls_game_proc g;
	bool found = false;

	if (!set)
		return false;
	ls_profile_load_all(set, NULL, NULL);
	if (ls_profile_scan(set, NULL, &g, 1) > 0) {
		*out = set->p[g.profile];
		*pid = g.pid;
		found = true;
	}
	free(set);
	return found;
}

/* The profile's FEC and keepalive, where the configuration left the defaults. */
static void apply_tunnel(struct client *c, const struct ls_profile *p)
{
	struct dp_fec_setting s;

	if (c->conf.fec.mode == DP_FEC_OFF && p->fec[0] && dp_fec_parse(p->fec, &s, NULL, 0) == 0) {
		c->conf.fec = s;
		client_fec_set(c, &s);
	}
	if (c->conf.keepalive_ms == CL_KEEPALIVE_DEFAULT_MS && p->keepalive_ms)
		c->conf.keepalive_ms = p->keepalive_ms;
}

/* Which sockets are the game's: its process when known, else the ports alone. */
static void match_process(struct client_capture_mode *cm)
{
	char err[128];

	cm->m.cgroup_level = 0;
	cm->m.by_uid = false;
	if (!cm->pid ||
	    client_capture_match_pid(&cm->m, cm->pid, cm->match_desc, sizeof(cm->match_desc), err,
				     sizeof(err)) < 0) {
		cm->pid = 0;
		snprintf(cm->match_desc, sizeof(cm->match_desc), "ports only");
	}
}

static void take_profile(struct client_capture_mode *cm, const struct ls_profile *p)
{
	cm->prof = *p;
	cm->have_prof = true;
	snprintf(cm->game, sizeof(cm->game), "%s", p->id);
	if (!cm->user_ports) {
		memcpy(cm->m.ports, p->ports, sizeof(p->ports));
		cm->m.nports = p->nports;
	}
}

static void ports_text(const struct client_capture_match *m, char *buf, size_t len)
{
	ls_port_ranges_fmt(m->ports, m->nports, ",", buf, len);
	if (!m->nports)
		snprintf(buf, len, "none yet");
}

static void log_match(const struct client *c)
{
	const struct client_capture_mode *cm = c->capm;
	char ports[256], srv[LS_ADDRSTRLEN];

	ports_text(&cm->m, ports, sizeof(ports));
	if (cm->m.server_ip)
		ls_ipport_fmt(ntohl(cm->m.server_ip), cm->m.server_port, srv);
	ls_info("capture: diverting UDP to ports %s of %s, %s%s%s", ports,
		cm->m.server_ip ? srv : "every server", cm->match_desc,
		cm->have_prof ? ", game " : "", cm->have_prof ? cm->prof.name : "");
	if (!cm->pid && cm->m.nports)
		ls_warn("capture: the game's process is not known (not running yet?): every program's "
			"UDP to these ports is diverted until it is (set_game, or a restart)");
}

int client_capture_mode_open(struct client *c, const struct client_addrs *a, char *err,
			     size_t errlen)
{
	struct client_capture_mode *cm = calloc(1, sizeof(*cm));
	struct client_capture_kconf k;
	struct ls_profile p;

	if (!cm) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	client_capture_kconf_default(&k, (uint32_t)c->conf.capture_mark);
	cm->user_ports = c->conf.nports > 0;
	cm->auto_game = strcmp(c->conf.game, "auto") == 0;
	memcpy(cm->m.ports, c->conf.ports, sizeof(c->conf.ports));
	cm->m.nports = c->conf.nports;
	if (a->game_server.sin_port) {
		cm->m.server_ip = a->game_server.sin_addr.s_addr;
		cm->m.server_port = ntohs(a->game_server.sin_port);
	}
	if (cm->auto_game) {
		if (find_any_game(&p, &cm->pid))
			take_profile(cm, &p);
	} else if (c->conf.game[0]) {
		if (ls_profile_find(c->conf.game, &p, err, errlen) < 0) {
			free(cm);
			return -1;
		}
		take_profile(cm, &p);
		cm->pid = ls_profile_running(&p);
	}
	match_process(cm);
	c->capm = cm;
	if (cm->have_prof)
		apply_tunnel(c, &cm->prof);
	if (client_capture_open(&cm->cap, &k, &cm->m, err, errlen) < 0) {
		free(cm);
		c->capm = NULL;
		return -1;
	}
	/* The tunnel's own datagrams are never diverted, whatever port a proxy uses. */
	if (client_capture_mark_socket(&cm->cap, c->tunnel_fd) < 0) {
		snprintf(err, errlen, "SO_MARK on the tunnel socket: %m");
		client_capture_mode_close(c);
		return -1;
	}
	ls_info("capture: nftables table ip " CL_CAPTURE_TABLE " (owned: removed when the client "
		"exits or dies), ip rule pref %u fwmark 0x%x lookup %u, local route in table %u",
		cm->cap.k.rule_pref, cm->cap.k.divert_mark, cm->cap.k.route_table,
		cm->cap.k.route_table);
	log_match(c);
	if (cm->auto_game && !cm->have_prof)
		ls_info("capture: no game running: waiting for one (set_game from the controller)");
	return 0;
}

void client_capture_mode_close(struct client *c)
{
	if (!c->capm)
		return;
	client_capture_close(&c->capm->cap);
	free(c->capm);
	c->capm = NULL;
}

int client_capture_mode_fd(const struct client *c)
{
	return c->capm ? c->capm->cap.tproxy_fd : -1;
}

/* ---- the packet path ---------------------------------------------------------------- */

int client_capture_mode_recv(struct client *c, struct mmsghdr *m, unsigned n,
			     struct sockaddr_in *dst)
{
	struct client_capture_mode *cm = c->capm;

	/* Names resolve to routes once per batch: route_del and route_add run between
	 * batches, and a slot may hold another route since. */
	for (unsigned i = 0; i < cm->nsrv; i++)
		cm->srv[i].r = cm->srv[i].route[0] ? client_table_find(c, cm->srv[i].route) : NULL;
	return client_capture_recv(&cm->cap, m, n, dst);
}

static void apply_rules(struct client_capture_mode *cm, struct client_capture_server *s)
{
	s->route[0] = '\0';
	for (unsigned i = 0; i < cm->nrules; i++)
		if (cm->rules[i].ip == s->ip && (!cm->rules[i].port || cm->rules[i].port == s->port))
			snprintf(s->route, sizeof(s->route), "%s", cm->rules[i].name);
}

static struct client_capture_server *server_of(struct client_capture_mode *cm, uint32_t ip,
					       uint16_t port, bool add, uint64_t now_us)
{
	struct client_capture_server *s = &cm->srv[cm->last], *lru = NULL;

	if (cm->nsrv && s->ip == ip && s->port == port)
		return s;
	for (unsigned i = 0; i < cm->nsrv; i++) {
		if (cm->srv[i].ip == ip && cm->srv[i].port == port) {
			cm->last = i;
			return &cm->srv[i];
		}
		if (!lru || cm->srv[i].last_us < lru->last_us)
			lru = &cm->srv[i];
	}
	if (!add)
		return NULL;
	/* A new server; with the table full the one quiet the longest gives way. */
	s = cm->nsrv < CL_CAPTURE_SERVERS ? &cm->srv[cm->nsrv++] : lru;
	memset(s, 0, sizeof(*s));
	s->ip = ip;
	s->port = port;
	s->first_us = now_us;
	apply_rules(cm, s);
	cm->last = (unsigned)(s - cm->srv);
	cm->ev_new = true;
	return s;
}

struct client_route *client_capture_mode_route(struct client *c, const struct sockaddr_in *dst,
					       struct client_route *def, uint64_t now_us)
{
	struct client_capture_server *s =
		server_of(c->capm, dst->sin_addr.s_addr, dst->sin_port, true, now_us);

	/* A server new in this batch finds its route now, not at the next batch. */
	if (s->packets == 0 && s->route[0])
		s->r = client_table_find(c, s->route);
	s->packets++;
	s->last_us = now_us;
	return s->r && client_route_ready(s->r, now_us) ? s->r : def;
}

bool client_capture_mode_known(struct client *c, uint32_t ip, uint16_t port)
{
	return server_of(c->capm, htonl(ip), htons(port), false, 0) != NULL;
}

void client_capture_mode_send(struct client *c, struct client_txq *q)
{
	uint64_t bytes = 0;
	unsigned sent = client_capture_send(&c->capm->cap, q->iov, q->from, q->to, q->n, &bytes);

	c->ctr.delivered_packets += sent;
	c->ctr.delivered_bytes += bytes;
	c->ctr.drops[LS_DROP_SEND_ERROR] += q->n - sent;
	q->n = 0;
}

void client_capture_mode_events(struct client *c)
{
	struct client_capture_mode *cm = c->capm;
	char a[LS_ADDRSTRLEN];

	if (!cm->ev_new)
		return;
	cm->ev_new = false;
	for (unsigned i = 0; i < cm->nsrv; i++) {
		struct client_capture_server *s = &cm->srv[i];
		if (s->announced)
			continue;
		s->announced = true;
		ls_ipport_fmt(ntohl(s->ip), ntohs(s->port), a);
		ls_info("capture: game server %s (%s)", a, s->route[0] ? s->route : "the active route");
		if (c->steer && ls_steer_has_subscribers(c->steer))
			ls_steer_publish(c->steer, "game_server",
					 json_pack("{s:s,s:s?}", "server", a, "route",
						   s->route[0] ? s->route : NULL));
	}
}

/* ---- steering ------------------------------------------------------------------------ */

enum ls_rc client_capture_mode_set_game(struct client *c, const char *game, pid_t pid,
					bool *applied, char *msg, size_t msglen)
{
	struct client_capture_mode *cm = c->capm;
	struct ls_profile p;

	*applied = false;
	if (!cm) {
		snprintf(msg, msglen, "redirect mode: the game's traffic is what comes to the local port");
		return LS_RC_OK;
	}
	if (!cm->auto_game && game && strcmp(game, c->conf.game) != 0) {
		snprintf(msg, msglen, "the configuration names the game (%s)", c->conf.game[0] ?
			 c->conf.game : "--ports");
		return LS_RC_OK;
	}
	if (!game) {
		/* The game ended: its rules stay until another one starts. */
		if (cm->pid)
			ls_info("capture: %s ended", cm->have_prof ? cm->prof.name : "the game");
		cm->pid = 0;
		cm->game[0] = '\0';
		*applied = true;
		return LS_RC_OK;
	}
	if (!cm->have_prof || strcmp(cm->prof.id, game) != 0) {
		if (ls_profile_find(game, &p, msg, msglen) < 0)
			return LS_RC_NOT_FOUND;
		take_profile(cm, &p);
		apply_tunnel(c, &p);
	}
	snprintf(cm->game, sizeof(cm->game), "%s", game);
	cm->pid = pid;
	match_process(cm);
	if (client_capture_update(&cm->cap, &cm->m, msg, msglen) < 0)
		return LS_RC_INTERNAL;
	*applied = true;
	log_match(c);
	return LS_RC_OK;
}

enum ls_rc client_capture_mode_assign(struct client *c, const char *server, const char *name,
				      char *msg, size_t msglen)
{
	struct client_capture_mode *cm = c->capm;
	struct sockaddr_in a = { .sin_family = AF_INET };
	char err[128];
	unsigned i;

	if (!cm) {
		snprintf(msg, msglen, "not in capture mode (--capture)");
		return LS_RC_CONFLICT;
	}
	if (inet_pton(AF_INET, server, &a.sin_addr) != 1 &&
	    ls_hostport_parse(server, &a, false, false, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "server must be \"ip\" or \"ip:port\", not '%.40s'", server);
		return LS_RC_INVALID;
	}
	if (name && !client_route_name_ok(name)) {
		snprintf(msg, msglen, "route: 1 to 31 characters of A-Z a-z 0-9 . _ -");
		return LS_RC_INVALID;
	}
	for (i = 0; i < cm->nrules; i++)
		if (cm->rules[i].ip == a.sin_addr.s_addr && cm->rules[i].port == a.sin_port)
			break;
	if (!name) {
		if (i < cm->nrules)
			cm->rules[i] = cm->rules[--cm->nrules];
	} else {
		if (i == cm->nrules) {
			if (cm->nrules == CL_CAPTURE_RULES) {
				snprintf(msg, msglen, "at most %d assignments", CL_CAPTURE_RULES);
				return LS_RC_FULL;
			}
			cm->nrules++;
		}
		cm->rules[i].ip = a.sin_addr.s_addr;
		cm->rules[i].port = a.sin_port;
		snprintf(cm->rules[i].name, sizeof(cm->rules[i].name), "%s", name);
	}
	for (unsigned k = 0; k < cm->nsrv; k++)
		apply_rules(cm, &cm->srv[k]);
	ls_info("capture: server %s rides %s", server, name ? name : "the active route");
	return LS_RC_OK;
}

json_t *client_capture_mode_json(const struct client *c)
{
	struct client_capture_mode *cm = c->capm;
	json_t *servers = json_array(), *rules = json_array(), *o;
	uint64_t now = ls_now_us(), diverted = 0;
	char a[LS_ADDRSTRLEN], err[128];

	if (!cm)
		return json_null();
	for (unsigned i = 0; i < cm->nsrv; i++) {
		const struct client_capture_server *s = &cm->srv[i];
		json_array_append_new(servers,
				      json_pack("{s:s,s:s?,s:I,s:I}", "server",
						ls_ipport_fmt(ntohl(s->ip), ntohs(s->port), a), "route",
						s->route[0] ? s->route : NULL, "packets",
						(json_int_t)s->packets, "idle_ms",
						(json_int_t)((now - s->last_us) / 1000)));
	}
	for (unsigned i = 0; i < cm->nrules; i++) {
		const struct client_capture_rule *r = &cm->rules[i];
		char srv[LS_ADDRSTRLEN];
		if (r->port)
			ls_ipport_fmt(ntohl(r->ip), ntohs(r->port), srv);
		else
			inet_ntop(AF_INET, &r->ip, srv, sizeof(srv));
		json_array_append_new(rules, json_pack("{s:s,s:s}", "server", srv, "route", r->name));
	}
	if (cm->m.server_ip)
		ls_ipport_fmt(ntohl(cm->m.server_ip), cm->m.server_port, a);
	o = json_pack("{s:s?,s:s?,s:o,s:o,s:s,s:s,s:s,s:I,s:o,s:o}", "game",
		      cm->game[0] ? cm->game : NULL, "profile", cm->have_prof ? cm->prof.name : NULL,
		      "pid", cm->pid ? json_integer(cm->pid) : json_null(), "ports", ls_port_ranges_json(cm->m.ports, cm->m.nports),
		      "server", cm->m.server_ip ? a : "auto", "match", cm->match_desc, "table",
		      "ip " CL_CAPTURE_TABLE, "mark", (json_int_t)cm->cap.k.divert_mark, "servers",
		      servers, "assignments", rules);
	json_object_set_new(o, "received", json_integer((json_int_t)cm->cap.ctr.received));
	json_object_set_new(o, "injected", json_integer((json_int_t)cm->cap.ctr.injected));
	json_object_set_new(o, "inject_errors", json_integer((json_int_t)cm->cap.ctr.inject_errors));
	json_object_set_new(o, "no_destination",
			    json_integer((json_int_t)cm->cap.ctr.no_destination));
	/* What the kernel diverted: beside `received`, it shows datagrams lost between. */
	json_object_set_new(o, "diverted",
			    client_capture_nft_diverted(&cm->cap.nft, &diverted, err, sizeof(err)) == 0 ?
				    json_integer((json_int_t)diverted) : json_null());
	return o;
}
