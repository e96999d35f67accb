/* lightspeed-proxy: SIGHUP applies a configuration that was parsed and checked in
 * full beforehand (proxy.c), so a broken file never leaves the proxy half changed.
 * What a running proxy can change changes here: log level, limits, allow list,
 * timeouts and the static sessions; the tunnel address, the steering socket and
 * require_auth are kept until a restart. */
#include "proxy.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const struct px_static *static_by_id(const struct px_static *list, int64_t id)
{
	for (; list; list = list->next)
		if (list->id == id)
			return list;
	return NULL;
}

static uint64_t rate_of(const struct px_opt_rate *r, uint64_t dflt)
{
	return r->set ? r->v : dflt;
}

/* The same session, new destinations, limits or FEC: its client, flows and lifetime
 * stay. The flows' destinations are checked again at each packet. */
static int static_update(struct px_session *s, const struct px_static *st,
			 const struct px_conf *next, uint64_t now)
{
	uint64_t pps = rate_of(&st->pps, next->limits.pps), bps = rate_of(&st->bps, next->limits.bps);
	struct ls_dest *d = malloc(st->dests.n * sizeof(*d));

	if (!d)
		return -1;
	memcpy(d, st->dests.v, st->dests.n * sizeof(*d));
	free(s->dests);
	s->dests = d;
	s->ndests = (uint32_t)st->dests.n;
	if (pps != s->pps || bps != s->bps) {
		s->pps = pps;
		s->bps = bps;
		ls_bucket_init(&s->b_pps, pps, 0, now);
		ls_bucket_init(&s->b_bps, bps, 0, now);
		ls_bucket_init(&s->t_pps, pps, 0, now);
		ls_bucket_init(&s->t_bps, bps, 0, now);
	}
	return px_fec_pin(s, st->fec.set ? &st->fec.v : NULL, now);
}

static bool static_same(const struct px_static *a, const struct px_static *b,
			const struct px_conf *ca, const struct px_conf *cb)
{
	return a->dests.n == b->dests.n &&
	       memcmp(a->dests.v, b->dests.v, a->dests.n * sizeof(*a->dests.v)) == 0 &&
	       rate_of(&a->pps, ca->limits.pps) == rate_of(&b->pps, cb->limits.pps) &&
	       rate_of(&a->bps, ca->limits.bps) == rate_of(&b->bps, cb->limits.bps) &&
	       a->fec.set == b->fec.set &&
	       (!a->fec.set || memcmp(&a->fec.v, &b->fec.v, sizeof(a->fec.v)) == 0);
}

void px_reload(struct px *p, struct px_conf *next, const char *name)
{
	struct px_conf *cur = &p->conf;
	unsigned added = 0, changed = 0, removed = 0, kept = 0;
	uint64_t now = ls_now_us();
	char a[LS_ADDRSTRLEN], b[LS_ADDRSTRLEN];

	/* What only a restart changes: the sockets and the authentication mode. */
	if (memcmp(&next->proxy.bind, &cur->proxy.bind, sizeof(next->proxy.bind)) != 0)
		ls_warn("%s: bind %s -> %s needs a restart; still on %s", name,
			ls_addr_fmt(&cur->proxy.bind, a), ls_addr_fmt(&next->proxy.bind, b),
			ls_addr_fmt(&p->bound, a));
	if (strcmp(next->proxy.socket, cur->proxy.socket) != 0)
		ls_warn("%s: socket %s needs a restart; steering stays on %s", name,
			next->proxy.socket, cur->proxy.socket);
	if (next->proxy.require_auth != cur->proxy.require_auth)
		ls_warn("%s: require_auth = %s needs a restart; it stays %s", name,
			next->proxy.require_auth ? "true" : "false",
			cur->proxy.require_auth ? "true" : "false");
	next->proxy.bind = cur->proxy.bind;
	memcpy(next->proxy.socket, cur->proxy.socket, sizeof(next->proxy.socket));
	next->proxy.require_auth = cur->proxy.require_auth;

	/* Sessions gone from the file end now (session_down, reason "deleted"). */
	for (const struct px_static *st = cur->statics; st; st = st->next) {
		struct px_session *s = px_session_by_id(&p->tab, (uint32_t)st->id);

		if (s && s->is_static && !static_by_id(next->statics, st->id)) {
			px_session_end(p, s, PX_END_DELETED);
			removed++;
		}
	}
	for (const struct px_static *st = next->statics; st; st = st->next) {
		const struct px_static *old = static_by_id(cur->statics, st->id);
		struct px_session *s = px_session_by_id(&p->tab, (uint32_t)st->id);

		if (s && !s->is_static) {
			ls_warn("%s: [[session]] id %" PRId64 " is in use by a session added by "
				"steering: left as it is (session_del it to take the file's)",
				name, st->id);
			continue;
		}
		if (s && old && memcmp(old->key.b, st->key.b, sizeof(st->key.b)) == 0) {
			if (static_same(old, st, cur, next)) {
				kept++;
				continue;
			}
			if (static_update(s, st, next, now) < 0)
				ls_err("%s: out of memory changing session %" PRId64, name, st->id);
			else
				changed++;
			continue;
		}
		/* A new key is a new session: the old one's client and lifetime go. */
		if (s) {
			px_session_end(p, s, PX_END_DELETED);
			removed++;
		}
		if (p->tab.n >= (size_t)next->proxy.max_sessions) {
			ls_warn("%s: [[session]] id %" PRId64 " not added: max_sessions (%" PRId64
				") reached", name, st->id, next->proxy.max_sessions);
			continue;
		}
		if (!px_session_add_keyed(p, (uint32_t)st->id, st->key.b, st->dests.v, st->dests.n,
					  rate_of(&st->pps, next->limits.pps),
					  rate_of(&st->bps, next->limits.bps),
					  st->fec.set ? &st->fec.v : NULL, true, false, now)) {
			ls_err("%s: out of memory adding session %" PRId64, name, st->id);
			continue;
		}
		added++;
	}

	/* The rest applies as it is read: allow list and max_flows at each packet,
	 * idle_timeout at housekeeping, max_sessions and [limits] at the next session. */
	px_conf_free(cur);
	*cur = *next;
	memset(next, 0, sizeof(*next));
	px_conf_warn(cur, false);
	/* Said at the more verbose of the two levels: a change either way shows it. */
	if ((int)cur->proxy.log_level > (int)ls_log_get_level())
		ls_log_set_level((enum ls_log_level)cur->proxy.log_level);
	ls_info("%s reloaded: static sessions %u added, %u changed, %u removed, %u as they "
		"were; log_level %s, idle_timeout %" PRId64 "s, max_sessions %" PRId64
		", max_flows %" PRId64 ", %d allow ranges, limits %" PRIu64 " pps %" PRIu64 " B/s",
		name, added, changed, removed, kept,
		ls_log_level_name((enum ls_log_level)cur->proxy.log_level), cur->proxy.idle_timeout,
		cur->proxy.max_sessions, cur->proxy.max_flows, cur->proxy.allow.n, cur->limits.pps,
		cur->limits.bps);
	ls_log_set_level((enum ls_log_level)cur->proxy.log_level);
}
