/* lightspeed-proxy: the drops a user should hear about. The packet path only notes
 * them (a bit per reason in the session, or the latest peer of a drop no session was
 * charged for); at the end of each loop turn this logs, at warn and with what to do,
 * the first drop of each reason in a session, then at most one line per session every
 * PX_WARN_EVERY_US, and each sessionless reason at the log's rate limit. */
#include "proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define PX_WARN_EVERY_US 10000000ull

static const char *dst_fmt(uint32_t ip, uint16_t port, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = htonl(ip) };
	char s[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, s, sizeof(s));
	snprintf(buf, len, "%s:%u", s, port);
	return buf;
}

/* "a, b, c" of the session's destinations, cut to fit. */
static void dests_fmt(const struct px_session *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (uint32_t i = 0; i < s->ndests && n + 1 < len; i++) {
		char one[64];

		ls_dest_fmt(&s->dests[i], one, sizeof(one));
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", one);
	}
	if (!s->ndests)
		snprintf(buf, len, "none");
}

static void session_warn(struct px *p, struct px_session *s, enum ls_drop why, bool again)
{
	char name[48], a[LS_ADDRSTRLEN], d[64], list[256];
	const char *more = again ? " (still happening)" : "";

	if (s->auth)
		snprintf(name, sizeof(name), "session %u", s->id);
	else
		snprintf(name, sizeof(name), "session from %s", ls_addr_fmt(px_session_client(s), a));
	switch (why) {
	case LS_DROP_DENIED_DESTINATION:
		ls_warn("%s: packets to %s dropped%s: the address is in a denied range "
			"(docs/protocol.md 1.6); if it is a game server, let it through with "
			"--allow CIDR or [proxy] allow",
			name, dst_fmt(s->warn_dst_ip, s->warn_dst_port, d, sizeof(d)), more);
		break;
	case LS_DROP_NOT_ALLOWED:
		dests_fmt(s, list, sizeof(list));
		ls_warn("%s: packets to %s dropped%s: not among the session's destinations (%s); "
			"add it to the session's destinations (session_add, [[session]])",
			name, dst_fmt(s->warn_dst_ip, s->warn_dst_port, d, sizeof(d)), more, list);
		break;
	case LS_DROP_REPLAY:
		ls_warn("%s: replayed or stale packets from %s dropped%s (a recording sent "
			"again, or one from a lifetime that has ended)",
			name, ls_addr_fmt(&s->warn_peer, a), more);
		break;
	case LS_DROP_RATE_LIMITED:
		ls_warn("%s: packets dropped%s: over the session's limit of %llu packets/s and "
			"%llu bytes/s either way; raise pps and bps ([limits], [[session]] or "
			"session_add) if the game needs more",
			name, more, (unsigned long long)s->pps, (unsigned long long)s->bps);
		break;
	case LS_DROP_FLOW_LIMIT:
		ls_warn("%s: a new game socket's packets dropped%s: all %lld flows of the session "
			"are in use (none quiet); raise [proxy] max_flows",
			name, more, (long long)p->conf.proxy.max_flows);
		break;
	case LS_DROP_UNVALIDATED_LIMIT:
		ls_warn("%s: replies held back%s: client %s has not yet answered the address check "
			"(it gets no more bytes than it sent until it does)",
			name, more, ls_addr_fmt(px_session_client(s), a));
		break;
	case LS_DROP_UNEXPECTED_SOURCE:
		ls_warn("%s: datagrams from a server no flow sent to dropped%s", name, more);
		break;
	default:
		ls_warn("%s: packets dropped%s: %s", name, more, ls_drop_names[why]);
		break;
	}
}

static void note_warn(struct px *p, enum ls_drop why, struct px_note *n)
{
	char a[LS_ADDRSTRLEN], sid[24] = "";
	unsigned long long c = (unsigned long long)n->count;

	if (n->session_id)
		snprintf(sid, sizeof(sid), " for session %u", n->session_id);
	ls_addr_fmt(&n->peer, a);
	switch (why) {
	case LS_DROP_UNKNOWN_SESSION:
		ls_warn_rl(&n->rl, "%llu datagram(s) from %s%s dropped: no such session here; add it "
			   "(session_add, [[session]]) or check the client's --session-id",
			   c, a, sid);
		break;
	case LS_DROP_BAD_TAG:
		ls_warn_rl(&n->rl, "%llu datagram(s) from %s%s dropped: bad tag (a wrong key, or a "
			   "lifetime this proxy does not hold, and the client was told to "
			   "handshake again)", c, a, sid);
		break;
	case LS_DROP_UNAUTHENTICATED:
		ls_warn_rl(&n->rl, "%llu datagram(s) without AUTH from %s dropped: this proxy "
			   "requires authentication; give the client --session-id and --key",
			   c, a);
		break;
	case LS_DROP_SESSION_LIMIT:
		ls_warn_rl(&n->rl, "%llu datagram(s) from %s dropped: max_sessions (%lld) reached; "
			   "raise --max-sessions or [proxy] max_sessions",
			   c, a, (long long)p->conf.proxy.max_sessions);
		break;
	default:
		ls_warn_rl(&n->rl, "%llu datagram(s) from %s dropped: %s", c, a, ls_drop_names[why]);
		break;
	}
}

void px_warn_flush(struct px *p)
{
	uint64_t now;

	for (int i = 0; i < LS_DROP__COUNT; i++) {
		if (p->notes[i].count) {
			note_warn(p, (enum ls_drop)i, &p->notes[i]);
			p->notes[i].count = 0;
		}
	}
	if (!p->warn_list)
		return;
	now = ls_now_us();
	while (p->warn_list) {
		struct px_session *s = p->warn_list;
		uint32_t fresh = s->warn_new & ~s->warned;
		bool may_repeat = now >= s->warn_next_us;

		p->warn_list = s->warn_next;
		s->warn_next = NULL;
		if (s->dead) {
			s->warn_new = 0;
			continue;
		}
		/* First drops of a reason at once; a reason already logged again only
		 * when the session's quiet time has passed. */
		for (int i = 0; i < LS_DROP__COUNT; i++) {
			uint32_t bit = 1u << i;

			if (!(s->warn_new & bit))
				continue;
			if (fresh & bit)
				session_warn(p, s, (enum ls_drop)i, false);
			else if (may_repeat)
				session_warn(p, s, (enum ls_drop)i, true);
		}
		s->warned |= s->warn_new;
		if (fresh || may_repeat)
			s->warn_next_us = now + PX_WARN_EVERY_US;
		s->warn_new = 0;
	}
}
