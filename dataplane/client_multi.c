/* lightspeed-client: a route's paths (docs/protocol.md 1.9) — direct to the egress or
 * through a relay, each relay a hop session of its own (a handshake, keepalives, a
 * relay hop header and tag around every datagram). Which path carries what follows the
 * route's mode: single (the best path), duplicate (every path), split (data on the
 * best path, FEC parity on the others) or auto (one of those, from the measured loss
 * and the cost budget). The egress is told each path's role in the keepalives sent
 * along it. Sending happens here; what happened is reported through client_ctl.c. */
#include "client.h"

#include <arpa/inet.h>
#include <string.h>

#include "util.h"

/* A path beats the one carrying the data by this much, for this long, to take over. */
#define BETTER_RATIO 0.8
#define BETTER_MS 2
#define BETTER_HOLD_US 2000000
/* Auto: loss of the best path (either way) that calls for split, and for duplicate;
 * and how long it must stay under the first before auto goes back to single. */
#define AUTO_SPLIT_LOSS 0.001
#define AUTO_DUP_LOSS 0.01
#define AUTO_CALM_US 10000000

/* ---- hops: the sessions with relays ---------------------------------------------- */

static struct client_route *hop_new(struct client *c)
{
	for (unsigned i = 0; i < CL_MAX_HOPS; i++)
		if (!c->hops[i].used)
			return &c->hops[i];
	return NULL;
}

/* A hop session with a relay under a grant: its handshake begins at once. */
static void hop_make(struct client_route *hop, const struct sockaddr_in *relay, uint32_t grant_id,
		     const uint8_t *key, uint32_t probe_ms, uint64_t now)
{
	client_route_init(hop, relay, grant_id, key, 0, now);
	hop->used = true;
	hop->is_hop = true;
	hop->next_probe_us = now;
	hop->probe_ms = probe_ms;
}

static void hop_free(struct client_route *hop)
{
	if (hop)
		memset(hop, 0, sizeof(*hop));
}

void client_route_drop_relays(struct client_route *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->npaths; i++) {
		if (r->paths[i].relay) {
			hop_free(r->paths[i].hop);
			continue;
		}
		r->paths[n++] = r->paths[i];
	}
	for (unsigned i = n; i < r->npaths; i++)
		memset(&r->paths[i], 0, sizeof(r->paths[i]));
	r->npaths = (uint8_t)n;
	r->data_path = 0;
	r->parity_next = 0;
}

void client_route_paths_init(struct client_route *r)
{
	memset(r->paths, 0, sizeof(r->paths));
	r->paths[0].used = true;
	snprintf(r->paths[0].name, sizeof(r->paths[0].name), "%s", CL_PATH_DIRECT);
	r->npaths = 1;
	r->data_path = 0;
}

int client_path_find(const struct client_route *r, const char *name)
{
	for (unsigned i = 0; i < r->npaths; i++)
		if (strcmp(r->paths[i].name, name) == 0)
			return (int)i;
	return -1;
}

enum ls_rc client_path_add(struct client *c, struct client_route *r, const char *name,
			   const struct sockaddr_in *relay, uint32_t grant_id, const uint8_t *key,
			   const struct sockaddr_in *next_hop, bool replace)
{
	int i = client_path_find(r, name);
	uint64_t now = ls_now_us();
	struct client_path *pa;

	if (i >= 0 && !replace)
		return LS_RC_EXISTS;
	if (!relay != (strcmp(name, CL_PATH_DIRECT) == 0))
		return LS_RC_INVALID;
	for (unsigned k = 0; relay && k < r->npaths; k++)
		if ((int)k != i && r->paths[k].relay &&
		    r->paths[k].hop->proxy.sin_addr.s_addr == relay->sin_addr.s_addr &&
		    r->paths[k].hop->proxy.sin_port == relay->sin_port &&
		    r->paths[k].hop->session_id == grant_id)
			return LS_RC_CONFLICT;
	if (i >= 0) {
		pa = &r->paths[i];
		pa->next_hop = next_hop ? *next_hop : r->proxy;
		if (!relay || client_route_is(pa->hop, relay, grant_id, key))
			return LS_RC_OK;
		/* A new grant or relay: a new hop. */
		hop_make(pa->hop, relay, grant_id, key, r->probe_ms, now);
		client_meas_init(&pa->m, now);
		r->ev_paths = true;
		return LS_RC_OK;
	}
	if (r->npaths >= CL_MAX_PATHS)
		return LS_RC_FULL;
	pa = &r->paths[r->npaths];
	memset(pa, 0, sizeof(*pa));
	if (relay) {
		pa->hop = hop_new(c);
		if (!pa->hop)
			return LS_RC_FULL;
		hop_make(pa->hop, relay, grant_id, key, r->probe_ms, now);
		pa->relay = true;
	}
	pa->used = true;
	pa->next_hop = next_hop ? *next_hop : r->proxy;
	snprintf(pa->name, sizeof(pa->name), "%s", name);
	client_meas_init(&pa->m, now);
	r->npaths++;
	r->ev_paths = true;
	client_route_roles(c, r, now);
	return LS_RC_OK;
}

enum ls_rc client_path_del(struct client *c, struct client_route *r, const char *name)
{
	int i = client_path_find(r, name);
	uint64_t now = ls_now_us();

	if (i < 0)
		return LS_RC_NOT_FOUND;
	if (r->npaths == 1)
		return LS_RC_CONFLICT;
	/* Open FEC blocks towards this route may hold parity meant for this path. */
	if (c->up_route == r)
		client_fec_close_all(c, r, now);
	if (r->paths[i].relay)
		hop_free(r->paths[i].hop);
	memmove(&r->paths[i], &r->paths[i + 1], (r->npaths - (unsigned)i - 1) * sizeof(r->paths[0]));
	r->npaths--;
	memset(&r->paths[r->npaths], 0, sizeof(r->paths[0]));
	if (r->data_path == i || r->data_path >= r->npaths)
		r->data_path = 0;
	else if (r->data_path > i)
		r->data_path--;
	r->parity_next = 0;
	if (r->hs_path >= r->npaths)
		r->hs_path = 0;
	r->ev_paths = true;
	client_route_roles(c, r, now);
	return LS_RC_OK;
}

/* ---- which path carries what ------------------------------------------------------ */

/* Can path i take datagrams now? A relay's hop needs its lifetime. */
static bool path_ready(struct client_route *r, unsigned i, uint64_t now)
{
	return !r->paths[i].relay || client_route_ready(r->paths[i].hop, now);
}

/* Usable for game packets: ready and not down. */
static bool path_usable(struct client_route *r, unsigned i, uint64_t now)
{
	return path_ready(r, i, now) && client_route_pmeas(r, i)->state != CL_PATH_DOWN;
}

/* A path's score: its RTT, plus 10 ms per 1 % of loss either way (as the controller's
 * nearest). Unknown RTT scores worst but one. */
static double path_score(struct client_route *r, unsigned i)
{
	const struct client_meas *m = client_route_pmeas(r, i);
	double loss = 0;

	if (m->loss_up > loss)
		loss = m->loss_up;
	if (m->loss_down > loss)
		loss = m->loss_down;
	return (m->srtt_us < 0 ? 1e9 : (double)m->srtt_us) + loss * 1e6;
}

uint32_t client_route_missed(const struct client_route *r)
{
	uint32_t least = UINT32_MAX;

	if (!client_route_multipath(r))
		return client_route_cview(r)->missed;
	for (unsigned i = 0; i < r->npaths; i++) {
		uint32_t m = client_route_cpmeas(r, i)->missed;
		if (m < least)
			least = m;
	}
	return least;
}

enum client_mode client_route_mode_now(const struct client_route *r)
{
	if (!client_route_multipath(r))
		return CL_MODE_SINGLE;
	return r->mode == CL_MODE_AUTO ? r->mode_now : r->mode;
}

void client_route_roles(struct client *c, struct client_route *r, uint64_t now)
{
	enum client_mode m = client_route_mode_now(r);

	(void)now;
	for (unsigned i = 0; i < r->npaths; i++) {
		uint8_t role;

		if (!client_route_multipath(r))
			role = LS_ROLE_ONLY;
		else if (m == CL_MODE_DUPLICATE || i == r->data_path)
			role = LS_ROLE_DATA;
		else if (m == CL_MODE_SPLIT)
			role = LS_ROLE_PARITY;
		else
			role = LS_ROLE_PROBE;
		r->paths[i].role = role;
	}
	/* Split needs a code even with FEC off; a route of one path never splits. */
	if (r == c->cur)
		client_fec_mode_changed(c);
}

unsigned client_route_targets(struct client_route *r, bool parity, uint64_t now,
			      uint8_t out[CL_MAX_PATHS])
{
	enum client_mode m = client_route_mode_now(r);
	unsigned n = 0;

	if (m == CL_MODE_DUPLICATE) {
		for (unsigned i = 0; i < r->npaths; i++)
			if (path_usable(r, i, now))
				out[n++] = (uint8_t)i;
	} else if (m == CL_MODE_SPLIT && parity) {
		/* One parity packet per path, taking turns: a burst on one path costs a
		 * share of the parity, never all of it. */
		for (unsigned k = 0; k < r->npaths && !n; k++) {
			unsigned i = (r->parity_next + k) % r->npaths;

			if (i != r->data_path && path_usable(r, i, now)) {
				out[n++] = (uint8_t)i;
				r->parity_next = (uint8_t)(i + 1);
			}
		}
	}
	/* Otherwise, and when nothing else is usable: the data path, if it is ready. */
	if (!n && r->data_path < r->npaths && path_ready(r, r->data_path, now))
		out[n++] = r->data_path;
	/* A data path whose hop is not up yet: any ready path rather than none. */
	for (unsigned i = 0; !n && i < r->npaths; i++)
		if (path_ready(r, i, now))
			out[n++] = (uint8_t)i;
	return n;
}

bool client_route_sendable(struct client_route *r, uint64_t now)
{
	if (!client_route_ready(r, now))
		return false;
	for (unsigned i = 0; i < r->npaths; i++)
		if (path_ready(r, i, now))
			return true;
	return r->npaths == 0;
}

/* The best path to carry the data: the current one unless it is down or another has
 * beaten it by the margin for BETTER_HOLD_US. */
static void choose_data_path(struct client *c, struct client_route *r, uint64_t now)
{
	unsigned best = r->data_path;
	bool cur_ok = r->data_path < r->npaths && path_usable(r, r->data_path, now);

	for (unsigned i = 0; i < r->npaths; i++) {
		if (!path_usable(r, i, now) || client_route_pmeas(r, i)->state == CL_PATH_UNKNOWN)
			continue;
		if (best >= r->npaths || !path_usable(r, best, now) ||
		    path_score(r, i) < path_score(r, best))
			best = i;
	}
	if (best == r->data_path || best >= r->npaths) {
		r->better_since_us = 0;
		return;
	}
	if (cur_ok) {
		double cur = path_score(r, r->data_path), alt = path_score(r, best);

		if (alt > cur * BETTER_RATIO - BETTER_MS * 1000.0) {
			r->better_since_us = 0;
			return;
		}
		if (!r->better_since_us)
			r->better_since_us = now;
		if (now - r->better_since_us < BETTER_HOLD_US)
			return;
	}
	/* Open blocks keep their parity on the paths they began on. */
	if (c->up_route == r)
		client_fec_close_all(c, r, now);
	r->data_path = (uint8_t)best;
	r->better_since_us = 0;
	r->ev_paths = true;
}

/* Auto (1.9): single while the best path loses nothing to speak of; split when it
 * loses a little; duplicate when it loses more, or misses keepalives. Within the cost
 * budget: duplicate costs a packet per path, split about 1.5. */
static void choose_mode(struct client *c, struct client_route *r, uint64_t now)
{
	const struct client_meas *m = client_route_pmeas(r, r->data_path);
	double loss = 0, budget = c->conf.cost_budget;
	enum client_mode want;
	unsigned usable = 0;

	for (unsigned i = 0; i < r->npaths; i++)
		usable += path_usable(r, i, now);
	if (m->loss_up > loss)
		loss = m->loss_up;
	if (m->loss_down > loss)
		loss = m->loss_down;
	if (usable < 2 || budget < 1.25)
		want = CL_MODE_SINGLE;
	else if ((loss > AUTO_DUP_LOSS || m->missed) && budget >= 2)
		want = CL_MODE_DUPLICATE;
	else if (loss > AUTO_SPLIT_LOSS || m->missed)
		want = CL_MODE_SPLIT;
	else
		want = CL_MODE_SINGLE;
	if (want == r->mode_now)
		return;
	/* Escalate at once; back down only after a calm spell. */
	if (want < r->mode_now || (r->mode_now == CL_MODE_DUPLICATE && want == CL_MODE_SPLIT)) {
		if (now - r->mode_since_us < AUTO_CALM_US)
			return;
	}
	if (c->up_route == r)
		client_fec_close_all(c, r, now);
	r->mode_now = want;
	r->mode_since_us = now;
	r->ev_paths = true;
}

void client_route_choose(struct client *c, struct client_route *r, uint64_t now)
{
	uint8_t data = r->data_path;
	enum client_mode mode = r->mode_now;

	if (!client_route_multipath(r))
		return;
	choose_data_path(c, r, now);
	if (r->mode == CL_MODE_AUTO)
		choose_mode(c, r, now);
	if (data != r->data_path || mode != r->mode_now) {
		client_route_roles(c, r, now);
		client_fec_mode_changed(c);
		/* The egress hears the new roles now, not an interval later. */
		client_send_keepalive(c, r, now);
	}
}

void client_route_set_mode(struct client *c, struct client_route *r, enum client_mode m)
{
	uint64_t now = ls_now_us();

	if (c->up_route == r)
		client_fec_close_all(c, r, now);
	r->mode = m;
	r->mode_now = m == CL_MODE_AUTO ? CL_MODE_SINGLE : m;
	r->mode_since_us = now;
	r->ev_paths = true;
	client_route_roles(c, r, now);
	client_fec_mode_changed(c);
	client_send_keepalive(c, r, now);
}

/* ---- sending along a path ---------------------------------------------------------- */

/* The relay hop around an end-to-end datagram (1.9): header, grant id, the datagram,
 * the hop's tag; into out (LS_MAX_RELAY_DATAGRAM bytes). 0 when the hop has no
 * lifetime yet. */
static size_t hop_wrap(const struct client_path *pa, const uint8_t *data, size_t len,
		       uint64_t now, uint8_t *out)
{
	struct client_route *hop = pa->hop;
	struct ls_seal k;
	struct ls_hdr h;

	if (!client_route_sealer(hop, &k) || !k.mac)
		return 0;
	memset(&h, 0, sizeof(h));
	h.version = LS_VER_RELAY;
	h.seq = hop->tx_seq++;
	h.ts_us = (uint32_t)now;
	h.dst_ip = ntohl(pa->next_hop.sin_addr.s_addr);
	h.dst_port = ntohs(pa->next_hop.sin_port);
	memmove(out + LS_HDR_LEN + LS_AUTH_ID_LEN, data, len);
	client_route_sent(hop, now);
	return ls_seal_at(&k, &h, out, len);
}

bool client_send_on(struct client *c, struct client_route *r, unsigned i, const uint8_t *buf,
		    size_t len, uint64_t now)
{
	struct client_path *pa = &r->paths[i];
	uint8_t out[LS_MAX_RELAY_DATAGRAM];
	size_t n;

	if (i >= r->npaths || !pa->relay)
		return client_send_control(c, &r->proxy, buf, len);
	n = hop_wrap(pa, buf, len, now, out);
	return n && client_send_control(c, &pa->hop->proxy, out, n);
}

bool client_queue_on(struct client *c, struct client_route *r, unsigned i, uint8_t *data,
		     size_t len, uint64_t now)
{
	struct client_txq *q = &c->io->up;
	struct client_path *pa = &r->paths[i];
	unsigned slot;
	size_t n;

	if (i >= r->npaths || !pa->relay) {
		client_txq_put(q, client_txq_slot(c, q), data, len, &r->proxy);
		if (i < r->npaths)
			pa->sent++;
		return true;
	}
	slot = client_txq_slot(c, q);
	n = hop_wrap(pa, data, len, now, q->own[slot]);
	if (!n) {
		q->n--; /* the slot just taken is the last one: give it back */
		return false;
	}
	client_txq_put(q, slot, q->own[slot], n, &pa->hop->proxy);
	pa->sent++;
	return true;
}

bool client_queue_copy_on(struct client *c, struct client_route *r, unsigned i,
			  const uint8_t *data, size_t len, uint64_t now)
{
	struct client_txq *q = &c->io->up;
	unsigned slot;

	if (i < r->npaths && r->paths[i].relay)
		return client_queue_on(c, r, i, (uint8_t *)(uintptr_t)data, len, now);
	slot = client_txq_slot(c, q);
	memcpy(q->own[slot], data, len);
	client_txq_put(q, slot, q->own[slot], len, &r->proxy);
	if (i < r->npaths)
		r->paths[i].sent++;
	return true;
}

/* ---- keepalives and the loop ------------------------------------------------------ */

void client_send_keepalive(struct client *c, struct client_route *r, uint64_t now_us)
{
	uint8_t buf[LS_MAX_OVERHEAD], k, m;
	bool multi;

	if (!r || r->direct)
		return;
	multi = client_route_multipath(r);
	client_fec_ask(c, &k, &m);
	if (r == c->cur)
		client_fec_ka_request(c, r, now_us);
	for (unsigned i = 0; i < r->npaths || (!r->npaths && i == 0); i++) {
		struct client_path *pa = r->npaths ? &r->paths[i] : NULL;
		uint8_t role = multi ? pa->role : LS_ROLE_ONLY;
		size_t len;

		if (pa && !path_ready(r, i, now_us))
			continue;
		len = client_route_ka_request(r, client_route_pmeas(r, i), pa ? pa->sent + 1 : 0,
					      role, now_us, k, m, buf);
		if (!len)
			break;
		if (pa)
			pa->sent++;
		if (client_send_on(c, r, i, buf, len, now_us))
			c->ctr.keepalives_sent++;
	}
	r->next_probe_us = now_us + (uint64_t)client_keepalive_ms(c, r, now_us) * 1000;
}

/* A relay hop's own keepalive: the first leg's measurement, and its lifetime's. */
static void hop_keepalive(struct client *c, struct client_route *hop, uint64_t now)
{
	uint8_t buf[LS_MAX_OVERHEAD];
	size_t len = client_route_ka_request(hop, &hop->m, 0, LS_ROLE_ONLY, now, 0, 0, buf);

	if (len && client_send_control(c, &hop->proxy, buf, len))
		c->ctr.keepalives_sent++;
	hop->next_probe_us = now + (uint64_t)hop->probe_ms * 1000;
}

uint64_t client_multi_run(struct client *c, uint64_t now)
{
	uint64_t next = 0, t;

#define SOONER(v) do { t = (v); if (t && (!next || t < next)) next = t; } while (0)
	for (unsigned i = 0; i < CL_MAX_HOPS; i++) {
		struct client_route *hop = &c->hops[i];
		uint8_t buf[LS_HS_MAX_LEN];
		uint64_t watch = 0;
		size_t n;

		if (!hop->used)
			continue;
		if (now >= hop->next_probe_us) {
			client_route_interval(hop, now, hop->probe_ms);
			hop_keepalive(c, hop, now);
		}
		if (hop->ka_now) {
			hop->ka_now = false;
			hop_keepalive(c, hop, now);
		}
		SOONER(hop->next_probe_us);
		SOONER(client_meas_watch(&hop->m, now));
		if (client_route_silence(hop, now, &watch))
			hop_keepalive(c, hop, now);
		SOONER(watch);
		n = client_route_hs_due(hop, now, buf);
		if (n)
			client_send_control(c, &hop->proxy, buf, n);
		SOONER(client_route_hs_next(hop));
	}
	return next;
#undef SOONER
}

void client_send_fins(struct client *c, uint64_t now)
{
	uint8_t fin[LS_MAX_OVERHEAD];
	struct client_route *r = c->cur && !c->cur->direct ? c->cur : NULL;
	size_t n = r ? client_route_fin(r, now, fin) : 0;

	/* One FIN along every path (the first copy ends the session), then one to each
	 * relay, whose grant session it ends too. */
	for (unsigned i = 0; n && i < r->npaths; i++)
		client_send_on(c, r, i, fin, n, now);
	if (n && !r->npaths)
		client_send_control(c, &r->proxy, fin, n);
	for (unsigned i = 0; r && i < r->npaths; i++) {
		struct client_route *hop = r->paths[i].hop;
		size_t h;

		if (r->paths[i].relay && (h = client_route_fin(hop, now, fin)) != 0)
			client_send_control(c, &hop->proxy, fin, h);
	}
}

/* ---- receiving: which route and path a datagram came by --------------------------- */

struct client_route *client_way_for(struct client *c, const struct sockaddr_in *from,
				    const struct ls_pkt *p, int *path)
{
	struct client_route *first = NULL;
	bool auth = p->h.flags & LS_F_AUTH;
	/* A keepalive reply belongs to the route that sent the request: two routes may
	 * share a proxy (unauthenticated ones, or different sessions). */
	bool echo = (p->h.flags & LS_F_KEEPALIVE) && (p->h.src_port & 0x0f) == LS_KA_REPLY;
	int first_path = 0;

	for (unsigned i = 0; i <= CL_MAX_ROUTES; i++) {
		struct client_route *r = i < CL_MAX_ROUTES ? &c->routes[i] : &c->retired;
		int direct;

		/* The direct route's replies come to its own sockets, never here. */
		if (!r->used || r->direct)
			continue;
		/* Through one of its relays: the hop's grant names it. */
		for (unsigned k = 0; k < r->npaths; k++) {
			const struct client_route *hop = r->paths[k].hop;

			if (r->paths[k].relay && hop->proxy.sin_addr.s_addr == from->sin_addr.s_addr &&
			    hop->proxy.sin_port == from->sin_port && auth &&
			    hop->session_id == p->h.session_id) {
				*path = (int)k;
				return r;
			}
		}
		if (r->proxy.sin_addr.s_addr != from->sin_addr.s_addr ||
		    r->proxy.sin_port != from->sin_port)
			continue;
		direct = client_path_find(r, CL_PATH_DIRECT);
		if (direct < 0 && r->npaths)
			continue;
		if (direct < 0)
			direct = 0;
		if (auth ? (r->keyed && r->session_id == p->h.session_id) : !r->keyed) {
			if (echo && client_meas_awaits(&r->m, p->h.seq, p->h.ts_us)) {
				*path = direct;
				return r;
			}
			/* The active route first, then the one just left. */
			if (r == c->cur && !echo) {
				*path = direct;
				return r;
			}
			if (!first || r == c->prev || r == c->cur) {
				first = r;
				first_path = direct;
			}
		} else if (!first) {
			first = r;
			first_path = direct;
		}
	}
	*path = first_path;
	return first;
}

bool client_table_knows(const struct client *c, const struct sockaddr_in *from)
{
	for (unsigned i = 0; i <= CL_MAX_ROUTES; i++) {
		const struct client_route *r = i < CL_MAX_ROUTES ? &c->routes[i] : &c->retired;

		if (!r->used || r->direct)
			continue;
		if (r->proxy.sin_addr.s_addr == from->sin_addr.s_addr &&
		    r->proxy.sin_port == from->sin_port)
			return true;
		for (unsigned k = 0; k < r->npaths; k++)
			if (r->paths[k].relay &&
			    r->paths[k].hop->proxy.sin_addr.s_addr == from->sin_addr.s_addr &&
			    r->paths[k].hop->proxy.sin_port == from->sin_port)
				return true;
	}
	return false;
}
