/* lightspeed-client: the drops a user should hear about. The packet path only counts
 * (stats); once a second this logs, at warn and with what to do, the first drop of each
 * reason, then at most one line per reason every CL_WARN_EVERY_US while it goes on. */
#include "client.h"

#include <stdio.h>

#include "addr.h"
#include "log.h"

#define CL_WARN_EVERY_US 10000000ull

static const char *hint(enum ls_drop why)
{
	switch (why) {
	case LS_DROP_NO_ROUTE:
		return "there is no route to a proxy yet: give --proxy HOST:PORT, or let a "
		       "controller add one (route_add)";
	case LS_DROP_HANDSHAKE:
		return "the route's first lifetime is not up (the proxy did not answer its "
		       "handshake within 1 s): check --session-id and --key-file against the "
		       "proxy's session, and that the proxy is reachable";
	case LS_DROP_BAD_TAG:
		return "a tag did not verify: the proxy holds another key for this session id, "
		       "or someone else sends to the tunnel port";
	case LS_DROP_REPLAY:
		return "replayed or stale packets (a recording sent again, or one from a "
		       "lifetime that has ended): harmless while it stays small";
	case LS_DROP_UNEXPECTED_SOURCE:
		return "datagrams from an address that is none of the routes' proxies (or a "
		       "reply from a server the game did not send to)";
	case LS_DROP_UNKNOWN_FLOW:
		return "replies for a game socket the client no longer knows (it was quiet "
		       "past the idle time)";
	case LS_DROP_OVERSIZE:
		return "datagrams over the 1,472-byte payload limit (docs/protocol.md 1.1): "
		       "the game's packets must fit one tunnel datagram";
	case LS_DROP_MALFORMED:
	case LS_DROP_BAD_VERSION:
	case LS_DROP_FEC_RANGE:
		return "datagrams on the tunnel socket that are not LightSpeed packets of this "
		       "version: another program sends there, or the proxy is of another version";
	case LS_DROP_SEND_ERROR:
		return "the kernel refused sends (a full socket buffer, or no route to the "
		       "address): see the system's network state";
	default:
		return "see stats";
	}
}

void client_warn_drops(struct client *c, uint64_t now_us)
{
	char route[160] = "no active route", a[LS_ADDRSTRLEN];

	if (c->cur) {
		if (c->cur->keyed)
			snprintf(route, sizeof(route), "route %s: proxy %s, session %u", c->cur->name,
				 ls_addr_fmt(&c->cur->proxy, a), c->cur->session_id);
		else
			snprintf(route, sizeof(route), "route %s: proxy %s, no session", c->cur->name,
				 ls_addr_fmt(&c->cur->proxy, a));
	}
	for (int i = 0; i < LS_DROP__COUNT; i++) {
		uint64_t n = c->ctr.drops[i], seen = c->warn.seen[i];
		bool again = c->warn.next_us[i] != 0;

		if (n == seen || (again && now_us < c->warn.next_us[i]))
			continue;
		ls_warn("%llu packet%s dropped (%s)%s; %s: %s", (unsigned long long)(n - seen),
			n - seen == 1 ? "" : "s", ls_drop_names[i], again ? ", still happening" : "",
			route, hint((enum ls_drop)i));
		c->warn.seen[i] = n;
		c->warn.next_us[i] = now_us + CL_WARN_EVERY_US;
	}
}
