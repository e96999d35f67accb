/* lightspeed-client: the table of candidate routes (docs/protocol.md 3.2) — up to
 * CL_MAX_ROUTES named routes, one active and at most one armed backup. Every route is
 * probed with keepalives from the tunnel socket (the active one every keepalive_ms, the
 * others every probe_ms), so a standby is measured along the path game packets would
 * take; when the active route misses 3 keepalives in a row and a backup is armed, the
 * client switches to it within the same loop turn. No I/O here except the keepalives and
 * handshakes it sends; what happened is reported through client_ctl.c. */
#include "client.h"

#include <ctype.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "util.h"

/* After a switch, the route left still takes late replies (and the game's packets, while
 * the new one's first lifetime is a round trip away) for this long. */
#define PREV_KEEP_US ((uint64_t)CL_OLD_ROUTE_MS * 1000)

bool client_route_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > CL_ROUTE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

struct client_route *client_table_find(struct client *c, const char *name)
{
	for (unsigned i = 0; i < CL_MAX_ROUTES; i++)
		if (c->routes[i].used && strcmp(c->routes[i].name, name) == 0)
			return &c->routes[i];
	return NULL;
}

unsigned client_table_count(const struct client *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < CL_MAX_ROUTES; i++)
		n += c->routes[i].used;
	return n;
}

/* ---- seq memo: coming back to a proxy that still holds the session ---------------- */

static void memo_save(struct client *c, const struct client_route *r)
{
	struct client_seq_memo *slot = NULL;

	for (unsigned i = 0; i < CL_SEQ_MEMO && !slot; i++)
		if (!c->memo[i].used || (c->memo[i].session_id == r->session_id &&
					 c->memo[i].proxy.sin_addr.s_addr == r->proxy.sin_addr.s_addr &&
					 c->memo[i].proxy.sin_port == r->proxy.sin_port))
			slot = &c->memo[i];
	if (!slot) {
		/* Full: the oldest entry (the front) goes. */
		memmove(&c->memo[0], &c->memo[1], sizeof(c->memo) - sizeof(c->memo[0]));
		slot = &c->memo[CL_SEQ_MEMO - 1];
	}
	slot->proxy = r->proxy;
	slot->session_id = r->session_id;
	slot->next_seq = r->tx_seq;
	slot->used = true;
}

static uint16_t memo_take(struct client *c, const struct sockaddr_in *proxy, uint32_t session_id)
{
	for (unsigned i = 0; i < CL_SEQ_MEMO; i++) {
		struct client_seq_memo *m = &c->memo[i];
		if (m->used && m->session_id == session_id &&
		    m->proxy.sin_addr.s_addr == proxy->sin_addr.s_addr &&
		    m->proxy.sin_port == proxy->sin_port) {
			m->used = false;
			return m->next_seq;
		}
	}
	return 0;
}

/* ---- the route left behind ---------------------------------------------------------- */

static void prev_forget(struct client *c, uint64_t now_us)
{
	if (!c->prev)
		return;
	if (c->up_route == c->prev) {
		client_fec_close_all(c, c->prev, now_us);
		c->up_route = NULL;
	}
	if (c->prev == &c->retired) {
		memo_save(c, &c->retired);
		c->retired.used = false;
	}
	c->prev = NULL;
	c->prev_until_us = 0;
}

/* A route's state moves to the retired slot (late replies, the game's packets until
 * the route taking its place is up); the slot is free again afterwards. */
static void retire(struct client *c, struct client_route *r, uint64_t now_us)
{
	if (c->retired.used && c->prev != &c->retired)
		memo_save(c, &c->retired);
	if (c->up_route == r) {
		client_fec_close_all(c, r, now_us);
		c->up_route = NULL;
	}
	/* Its relays go with the slot (their grants were for its egress): the retired
	 * state keeps the direct path alone. */
	client_route_drop_relays(r);
	c->retired = *r;
	c->retired.name[0] = 0;
	c->prev = &c->retired;
	c->prev_until_us = now_us + PREV_KEEP_US;
}

/* ---- keepalives --------------------------------------------------------------------- */

uint32_t client_keepalive_ms(const struct client *c, const struct client_route *r,
			     uint64_t now_us)
{
	uint32_t ms = (uint32_t)c->conf.keepalive_ms;

	if (r != c->cur)
		return r->probe_ms;
	uint32_t f = client_fec_ka_ms(c, now_us);
	return f && f < ms ? f : ms;
}

/* ---- switching ---------------------------------------------------------------------- */

void client_switch(struct client *c, struct client_route *to, const char *reason,
		   uint64_t now_us)
{
	struct client_route *from = c->cur;

	if (to == from)
		return;
	/* No FEC block spans two routes. */
	if (from)
		client_fec_close_all(c, from, now_us);
	if (c->up_route && c->up_route != from)
		client_fec_close_all(c, c->up_route, now_us);
	c->up_route = NULL;
	if (c->prev && c->prev != to)
		prev_forget(c, now_us);
	c->prev = from;
	c->prev_until_us = from ? now_us + PREV_KEEP_US : 0;
	c->cur = to;
	if (c->backup == to) {
		c->backup = NULL;
		client_ctl_backup_event(c);
	}
	if (from)
		c->ctr.route_changes++;
	client_fec_route_changed(c);
	client_fec_mode_changed(c);
	/* The gap a player sees: last game packet delivered before, first one after. */
	c->gap_to = c->last_delivered_us ? to : NULL; /* no packet before: no gap to measure */
	c->gap_from_us = c->last_delivered_us;
	c->gap_ready = false;
	client_ctl_switch_event(c, from, to, reason);
	client_ctl_route_changed(c);
	/* Probe at once at the active route's pace: its RTT and path state are known
	 * within a round trip, and its proxy sees our address right away. */
	if (to)
		client_send_keepalive(c, to, now_us);
}

/* ---- the table ---------------------------------------------------------------------- */

static struct client_route *free_slot(struct client *c)
{
	for (unsigned i = 0; i < CL_MAX_ROUTES; i++)
		if (!c->routes[i].used)
			return &c->routes[i];
	return NULL;
}

static void route_make(struct client *c, struct client_route *r, const char *name,
		       const struct sockaddr_in *proxy, uint32_t session_id, const uint8_t *key,
		       uint32_t probe_ms, uint64_t now_us)
{
	client_route_init(r, proxy, session_id, key, memo_take(c, proxy, session_id), now_us);
	r->used = true;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->probe_ms = probe_ms;
	r->next_probe_us = now_us; /* a first probe at once */
	client_route_paths_init(r);
	r->mode = (enum client_mode)c->conf.mode;
	r->mode_now = r->mode == CL_MODE_AUTO ? CL_MODE_SINGLE : r->mode;
	r->mode_since_us = now_us;
}

enum ls_rc client_table_add(struct client *c, const char *name, const struct sockaddr_in *proxy,
			    uint32_t session_id, const uint8_t *key, uint32_t probe_ms,
			    bool replace, struct client_route **out)
{
	struct client_route *r = client_table_find(c, name);
	uint64_t now = ls_now_us();

	*out = r;
	if (r && !replace)
		return LS_RC_EXISTS;
	/* Two routes of one session to one proxy would take its lifetime from each
	 * other at every handshake. */
	for (unsigned i = 0; key && i < CL_MAX_ROUTES; i++) {
		struct client_route *o = &c->routes[i];

		if (o->used && o != r && o->keyed && o->session_id == session_id &&
		    o->proxy.sin_addr.s_addr == proxy->sin_addr.s_addr &&
		    o->proxy.sin_port == proxy->sin_port) {
			*out = o;
			return LS_RC_CONFLICT;
		}
	}
	if (r) {
		if (client_route_is(r, proxy, session_id, key)) {
			/* The same route: only its probe interval may change. */
			r->probe_ms = probe_ms;
			for (unsigned i = 0; i < r->npaths; i++)
				if (r->paths[i].relay)
					r->paths[i].hop->probe_ms = probe_ms;
			return LS_RC_OK;
		}
		/* New parameters. The active route's old state keeps taking late replies
		 * and the game's packets until the new one is up: as a set_route. */
		if (r == c->cur) {
			retire(c, r, now);
			route_make(c, r, name, proxy, session_id, key, probe_ms, now);
			c->ctr.route_changes++;
			client_fec_route_changed(c);
			c->gap_to = c->last_delivered_us ? r : NULL;
			c->gap_from_us = c->last_delivered_us;
			c->gap_ready = false;
			client_ctl_switch_event(c, r, r, "steer");
			client_ctl_route_changed(c);
			client_send_keepalive(c, r, now);
		} else {
			if (c->prev == r)
				retire(c, r, now);
			else
				memo_save(c, r);
			client_route_drop_relays(r);
			route_make(c, r, name, proxy, session_id, key, probe_ms, now);
		}
		return LS_RC_OK;
	}
	r = free_slot(c);
	if (!r)
		return LS_RC_FULL;
	route_make(c, r, name, proxy, session_id, key, probe_ms, now);
	*out = r;
	return LS_RC_OK;
}

enum ls_rc client_table_add_direct(struct client *c, const char *name, bool replace,
				   struct client_route **out)
{
	struct client_route *r = client_table_find(c, name);
	uint64_t now = ls_now_us();

	*out = r;
	if (r && r->direct)
		return LS_RC_OK;
	if (r && !replace)
		return LS_RC_EXISTS;
	/* A route of the table turning direct: as a replacement of its parameters. */
	if (r && (r == c->cur || r == c->prev))
		return LS_RC_CONFLICT;
	if (r) {
		memo_save(c, r);
		client_route_drop_relays(r);
	} else if (!(r = free_slot(c))) {
		return LS_RC_FULL;
	}
	route_make(c, r, name, &c->game_server, 0, NULL, CL_PROBE_DEFAULT_MS, now);
	/* No tunnel, no paths, no keepalives: the game server answers its own socket. */
	r->direct = true;
	r->npaths = 0;
	memset(r->paths, 0, sizeof(r->paths));
	*out = r;
	client_direct_refill(c);
	return LS_RC_OK;
}

enum ls_rc client_table_del(struct client *c, const char *name)
{
	struct client_route *r = client_table_find(c, name);
	uint64_t now = ls_now_us();

	if (!r)
		return LS_RC_NOT_FOUND;
	if (r == c->cur)
		return LS_RC_CONFLICT;
	if (r == c->backup) {
		c->backup = NULL;
		client_ctl_backup_event(c);
	}
	if (r == c->prev)
		retire(c, r, now);
	else
		memo_save(c, r);
	if (c->up_route == r)
		c->up_route = NULL;
	if (c->gap_to == r) {
		c->gap_to = NULL;
		c->gap_ready = false;
	}
	client_route_drop_relays(r);
	memset(r, 0, sizeof(*r));
	return LS_RC_OK;
}

enum ls_rc client_table_arm(struct client *c, const char *name)
{
	struct client_route *r = NULL;

	if (name) {
		r = client_table_find(c, name);
		if (!r)
			return LS_RC_NOT_FOUND;
		if (r == c->cur)
			return LS_RC_CONFLICT;
	}
	if (r != c->backup) {
		c->backup = r;
		client_ctl_backup_event(c);
	}
	return LS_RC_OK;
}

bool client_set_route(struct client *c, const struct sockaddr_in *proxy, uint32_t session_id,
		      const uint8_t *key, const struct sockaddr_in *game_server, enum ls_rc *rc)
{
	uint64_t now = ls_now_us();
	struct client_route *r;

	*rc = LS_RC_OK;
	if (game_server && (game_server->sin_addr.s_addr != c->game_server.sin_addr.s_addr ||
			    game_server->sin_port != c->game_server.sin_port)) {
		char buf[LS_ADDRSTRLEN];
		/* A block carries one flow to one server: the open ones close first. */
		if (c->up_route)
			client_fec_close_all(c, c->up_route, now);
		c->game_server = *game_server;
		ls_info("game server: %s", ls_addr_fmt(game_server, buf));
	}
	if (c->cur && client_route_is(c->cur, proxy, session_id, key))
		return false;
	/* The route just left, when it is that one: it still holds its seq and replay
	 * state (a table route keeps its name; the retired state comes back as "manual"). */
	r = client_table_find(c, CL_MANUAL_ROUTE);
	if (r && r != c->cur && client_route_is(r, proxy, session_id, key)) {
		client_switch(c, r, "steer", now);
		return true;
	}
	*rc = client_table_add(c, CL_MANUAL_ROUTE, proxy, session_id, key, CL_PROBE_DEFAULT_MS,
			       true, &r);
	if (*rc != LS_RC_OK)
		return false;
	if (r != c->cur)
		client_switch(c, r, "steer", now);
	return true;
}

struct client_route *client_up_route(struct client *c, uint64_t now_us)
{
	struct client_route *r = c->cur;

	if (!r)
		return NULL;
	if (!client_route_sendable(r, now_us) && c->prev && client_route_sendable(c->prev, now_us))
		r = c->prev;
	if (c->up_route && c->up_route != r)
		client_fec_close_all(c, c->up_route, now_us);
	c->up_route = r;
	return r;
}

uint64_t client_table_run(struct client *c, uint64_t now_us)
{
	uint64_t next = 0;

#define SOONER(t) do { if ((t) && (!next || (t) < next)) next = (t); } while (0)
	if (c->prev && now_us >= c->prev_until_us)
		prev_forget(c, now_us);
	SOONER(c->prev ? c->prev_until_us : 0);
	for (unsigned i = 0; i < CL_MAX_ROUTES; i++) {
		struct client_route *r = &c->routes[i];

		/* The direct route has no proxy to probe: the controller pings the server. */
		if (!r->used || r->direct)
			continue;
		if (now_us >= r->next_probe_us) {
			client_route_interval(r, now_us, client_keepalive_ms(c, r, now_us));
			client_route_choose(c, r, now_us);
			client_send_keepalive(c, r, now_us);
		}
		SOONER(r->next_probe_us);
		SOONER(client_meas_watch(&r->m, now_us));
		for (unsigned k = 0; k < r->npaths; k++) {
			if (!r->paths[k].relay)
				continue;
			SOONER(client_meas_watch(&r->paths[k].m, now_us));
		}
		/* A path that carries the data and misses keepalives is left at once (the
		 * egress stays: its address at the game server does not change). */
		if (client_route_multipath(r) &&
		    client_route_pmeas(r, r->data_path)->missed >= CL_MISS_FAILOVER)
			client_route_choose(c, r, now_us);
	}
	/* Fast failover: the active route missed 3 keepalives in a row (every path of it),
	 * a backup is armed and answers. The controller chose it; the dataplane acts at
	 * once. */
	if (c->cur && client_route_missed(c->cur) >= CL_MISS_FAILOVER && c->backup &&
	    !client_route_down(c->backup))
		client_switch(c, c->backup, "failover", now_us);
	/* Handshakes of every route, and the silence watch of the one carrying the game. */
	for (unsigned i = 0; i < CL_MAX_ROUTES; i++) {
		struct client_route *r = &c->routes[i];
		uint8_t buf[LS_HS_MAX_LEN];
		uint64_t watch = 0;
		size_t n;

		if (!r->used || r->direct)
			continue;
		if (r->ka_now) {
			r->ka_now = false;
			client_send_keepalive(c, r, now_us);
			SOONER(r->next_probe_us);
		}
		if (r == c->up_route && client_route_silence(r, now_us, &watch))
			client_send_keepalive(c, r, now_us);
		SOONER(watch);
		/* An INIT may go any ready way; its CONFIRM must follow it (the cookie names
		 * the address the REPLY went to). */
		if (r->hs.state == LS_HSS_INIT && now_us >= r->hs.next_us) {
			uint8_t t[CL_MAX_PATHS];
			unsigned nt = client_route_targets(r, false, now_us, t);
			if (nt)
				r->hs_path = t[0];
		}
		n = client_route_hs_due(r, now_us, buf);
		if (n)
			client_send_on(c, r, r->hs_path, buf, n, now_us);
		SOONER(client_route_hs_next(r));
	}
	SOONER(client_multi_run(c, now_us));
	client_hold_release(c, now_us);
	client_direct_refill(c);
	client_ctl_route_events(c);
	return next;
#undef SOONER
}
