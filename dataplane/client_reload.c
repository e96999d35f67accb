/* lightspeed-client: SIGHUP. The configuration was read and checked in full (client.c)
 * before anything here runs, so a broken file changes nothing. Only what changed in
 * the file since it was last read is applied: what steering (set_route, set_fec) or a
 * game profile set meanwhile stays unless the file now says otherwise. The game-facing
 * socket, the steering socket and capture mode are kept until a restart. */
#include "client.h"

#include <string.h>

#include "log.h"

#define CHANGED(f) (memcmp(&was->f, &now->f, sizeof(now->f)) != 0)

void client_reload(struct client *c, const struct client_conf *was, const struct client_conf *now,
		   const struct client_addrs *a, const char *name)
{
	uint64_t t = ls_now_us();
	unsigned applied = 0;

	if (CHANGED(listen) || CHANGED(local_port))
		ls_warn("%s: the game's address (listen, local_port) needs a restart; still %s:%lld",
			name, was->listen, (long long)was->local_port);
	if (CHANGED(socket))
		ls_warn("%s: socket %s needs a restart; steering stays on %s", name, now->socket,
			was->socket);
	if (CHANGED(capture) || CHANGED(game) || CHANGED(ports) || CHANGED(nports) ||
	    CHANGED(capture_mark))
		ls_warn("%s: capture settings (capture, game, ports, capture_mark) need a restart",
			name);
	if (CHANGED(log_level)) {
		c->conf.log_level = now->log_level;
		applied++;
	}
	if (CHANGED(keepalive_ms)) {
		c->conf.keepalive_ms = now->keepalive_ms;
		applied++;
	}
	if (CHANGED(fec)) {
		c->conf.fec = now->fec;
		client_fec_set(c, &now->fec);
		if (c->cur)
			client_send_keepalive(c, c->cur, t);
		applied++;
	}
	if (CHANGED(game_server) && !c->conf.capture) {
		/* As set_route with a game_server: open FEC blocks go to the old server. */
		if (c->up_route)
			client_fec_close_all(c, c->up_route, t);
		c->game_server = a->game_server;
		memcpy(c->conf.game_server, now->game_server, sizeof(now->game_server));
		applied++;
	}
	/* --proxy and its session are the route "default": new parameters switch it as
	 * route_add with replace would, losing nothing. */
	if ((CHANGED(proxy) || CHANGED(session_id) || CHANGED(key)) && a->proxy.sin_family == AF_INET) {
		struct client_route *r;
		enum ls_rc rc = client_table_add(c, CL_DEFAULT_ROUTE, &a->proxy,
						 (uint32_t)now->session_id,
						 now->key.set ? now->key.b : NULL, CL_PROBE_DEFAULT_MS,
						 true, &r);

		if (rc != LS_RC_OK) {
			ls_warn("%s: the route \"" CL_DEFAULT_ROUTE "\" could not take the new proxy "
				"or session: %s", name, ls_rc_code(rc));
		} else {
			if (!c->cur)
				client_switch(c, r, "steer", t);
			memcpy(c->conf.proxy, now->proxy, sizeof(now->proxy));
			c->conf.session_id = now->session_id;
			c->conf.key = now->key;
			applied++;
		}
	}
	/* Said at the more verbose of the two levels: a change either way shows it. */
	if (c->conf.log_level > (int)ls_log_get_level())
		ls_log_set_level((enum ls_log_level)c->conf.log_level);
	ls_info("%s reloaded: %u setting%s changed", name, applied, applied == 1 ? "" : "s");
	ls_log_set_level((enum ls_log_level)c->conf.log_level);
}
