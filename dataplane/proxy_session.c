/* lightspeed-proxy session and flow tables (docs/protocol.md 1.3, 1.6). */
#include "proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

/* splitmix64's finaliser over a seeded key: cheap, and without the seed a sender of
 * spoofed addresses cannot pick keys that land in one chain. */
static size_t mix(uint64_t x, uint64_t seed, size_t mask)
{
	x ^= seed;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (size_t)x & mask;
}

static size_t hash_id(const struct px_table *t, uint32_t id)
{
	return mix(id, t->seed, t->mask);
}

static size_t hash_addr(const struct px_table *t, uint32_t ip, uint16_t port)
{
	return mix((uint64_t)ip << 16 | port, t->seed, t->mask);
}

static size_t hash_of(const struct px_table *t, const struct px_session *s)
{
	if (s->auth)
		return hash_id(t, s->id);
	return hash_addr(t, s->path[0].addr.sin_addr.s_addr, s->path[0].addr.sin_port);
}

int px_table_init(struct px_table *t, size_t max_sessions, bool by_addr, uint64_t seed)
{
	size_t n = 16;

	memset(t, 0, sizeof(*t));
	/* One bucket per allowed session keeps chains short; calloc'd pages that are
	 * never written stay out of the resident set. */
	while (n < max_sessions)
		n <<= 1;
	t->mask = n - 1;
	t->seed = seed;
	t->by_id = calloc(n, sizeof(*t->by_id));
	if (!t->by_id)
		return -1;
	if (by_addr) {
		t->by_addr = calloc(n, sizeof(*t->by_addr));
		if (!t->by_addr) {
			free(t->by_id);
			t->by_id = NULL;
			return -1;
		}
	}
	return 0;
}

struct px_session *px_session_by_id(const struct px_table *t, uint32_t id)
{
	struct px_session *s = t->by_id[hash_id(t, id)];

	while (s && s->id != id)
		s = s->hnext;
	return s;
}

struct px_session *px_session_by_addr(const struct px_table *t, const struct sockaddr_in *a)
{
	struct px_session *s;

	if (!t->by_addr)
		return NULL;
	s = t->by_addr[hash_addr(t, a->sin_addr.s_addr, a->sin_port)];
	while (s && (s->path[0].addr.sin_addr.s_addr != a->sin_addr.s_addr ||
		     s->path[0].addr.sin_port != a->sin_port))
		s = s->hnext;
	return s;
}

static void link_session(struct px_table *t, struct px_session *s)
{
	struct px_session **bucket = s->auth ? &t->by_id[hash_of(t, s)] : &t->by_addr[hash_of(t, s)];

	s->hnext = *bucket;
	*bucket = s;
	s->prev = NULL;
	s->next = t->head;
	if (t->head)
		t->head->prev = s;
	t->head = s;
	t->n++;
}

static void unlink_session(struct px_table *t, struct px_session *s)
{
	struct px_session **pp = s->auth ? &t->by_id[hash_of(t, s)] : &t->by_addr[hash_of(t, s)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	if (s->prev)
		s->prev->next = s->next;
	else
		t->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->hnext = s->prev = s->next = NULL;
	t->n--;
}

static void session_init_common(struct px_session *s, uint64_t pps, uint64_t bps, uint64_t now)
{
	s->pps = pps;
	s->bps = bps;
	ls_bucket_init(&s->b_pps, pps, 0, now);
	ls_bucket_init(&s->b_bps, bps, 0, now);
	/* The reply path has the same budget as the request path (parity included). */
	ls_bucket_init(&s->t_pps, pps, 0, now);
	ls_bucket_init(&s->t_bps, bps, 0, now);
	ls_lives_init(&s->lv);
	s->last_us = now;
}

struct px_session *px_session_add_keyed(struct px *p, uint32_t id, const uint8_t *key,
					const struct ls_dest *dests, size_t ndests,
					uint64_t pps, uint64_t bps, const struct dp_fec_setting *fec,
					bool is_static, bool relay, uint64_t now)
{
	struct px_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (ndests) {
		s->dests = malloc(ndests * sizeof(*dests));
		if (!s->dests) {
			free(s);
			return NULL;
		}
		memcpy(s->dests, dests, ndests * sizeof(*dests));
		s->ndests = (uint32_t)ndests;
	}
	if (fec && px_fec_pin(s, fec, now) < 0) {
		free(s->dests);
		free(s);
		return NULL;
	}
	s->id = id;
	s->auth = true;
	s->is_static = is_static;
	s->relay = relay;
	ls_mac_init(&s->mac, key);
	session_init_common(s, pps, bps, now);
	link_session(&p->tab, s);
	p->ctr.sessions_created++;
	return s;
}

struct px_session *px_session_add_addr(struct px *p, const struct sockaddr_in *client,
				       uint64_t now)
{
	struct px_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	session_init_common(s, p->conf.limits.pps, p->conf.limits.bps, now);
	/* The address is the key: set it before linking so the hash finds it. */
	s->path[0].addr = *client;
	s->npaths = 1;
	link_session(&p->tab, s);
	p->ctr.sessions_created++;
	return s;
}

static void path_init(struct px_path *pa, const struct sockaddr_in *a, uint8_t role)
{
	memset(pa, 0, sizeof(*pa));
	pa->addr = *a;
	pa->role = role;
}

void px_session_set_client(struct px *p, struct px_session *s, const struct sockaddr_in *a)
{
	(void)p;
	path_init(&s->path[0], a, LS_ROLE_ONLY);
	s->npaths = 1;
	s->multipath = false;
}

struct px_path *px_path_add(struct px_session *s, const struct sockaddr_in *a, uint64_t now)
{
	struct px_path *pa = px_path_find(s, a), *lru = NULL;

	if (pa)
		return pa;
	if (s->npaths < PX_PATHS) {
		pa = &s->path[s->npaths++];
	} else {
		for (unsigned i = 0; i < s->npaths; i++)
			if (!lru || s->path[i].last_us < lru->last_us)
				lru = &s->path[i];
		/* A path in use keeps its place: a stranger cannot push it out. */
		if (now - lru->last_us < PX_PATH_QUIET_US)
			return NULL;
		pa = lru;
	}
	path_init(pa, a, LS_ROLE_PROBE);
	pa->last_us = now;
	return pa;
}

void px_path_role(struct px_session *s, struct px_path *pa, uint8_t role)
{
	if (role != LS_ROLE_ONLY) {
		if (!s->multipath) {
			/* The one path so far carries the replies until told otherwise. */
			s->multipath = true;
			for (unsigned i = 0; i < s->npaths; i++)
				if (s->path[i].role == LS_ROLE_ONLY)
					s->path[i].role = LS_ROLE_DATA;
		}
		pa->role = role;
		return;
	}
	if (!s->multipath)
		return;
	/* Back to one path: this one, as it is (validated or not). */
	if (pa != &s->path[0])
		s->path[0] = *pa;
	s->path[0].role = LS_ROLE_ONLY;
	s->npaths = 1;
	s->multipath = false;
}

void px_session_commit(struct px *p, struct px_session *s, const struct sockaddr_in *a,
		       uint64_t now)
{
	bool first = !px_session_has_client(s);
	struct px_path *pa;

	/* A multipath session keeps its other paths; a single-path one moves. */
	if (s->multipath && (pa = px_path_add(s, a, now)) != NULL) {
		pa->validated = true;
	} else {
		px_session_set_client(p, s, a);
		pa = &s->path[0];
	}
	/* The CONFIRM echoed a cookie only this address received. */
	pa->validated = true;
	pa->last_us = now;
	s->last_us = now;
	if (first && s->is_static)
		px_session_up(p, s, true);
}

static void close_flows(struct px *p, struct px_session *s)
{
	while (s->flows)
		px_flow_close(p, s->flows);
}

void px_session_delete(struct px *p, struct px_session *s)
{
	struct px_table *t = &p->tab;

	if (s->dead)
		return;
	close_flows(p, s);
	unlink_session(t, s);
	s->dead = true;
	s->hnext = t->reap;
	t->reap = s;
}

void px_session_reset(struct px *p, struct px_session *s)
{
	close_flows(p, s);
	/* The lifetime ends with the client: whatever was recorded under it never
	 * authenticates again, and the next client begins its own (1.8). */
	ls_lives_end(&s->lv);
	memset(s->path, 0, sizeof(s->path));
	s->npaths = 0;
	s->multipath = false;
	px_fec_session_reset(s);
}

struct px_flow *px_flow_find(struct px_session *s, uint32_t ip, uint16_t port)
{
	struct px_flow *f;

	for (f = s->flows; f; f = f->next)
		if (f->src_ip == ip && f->src_port == port)
			return f;
	return NULL;
}

/* A flow with its socket bound and watched, for the spare list. */
static struct px_flow *flow_make(struct px *p)
{
	struct sockaddr_in any = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN };
	struct px_flow *f;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ls_warn_rl(&p->rl_warn, "cannot open a flow socket: %s", strerror(errno));
		return NULL;
	}
	/* Bound now rather than on the first send, so the port is fixed before any
	 * reply can arrive and a bind failure is seen here. */
	if (bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
		ls_warn_rl(&p->rl_warn, "cannot bind a flow socket: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return NULL;
	}
	f->ev.kind = PX_EV_FLOW;
	f->ev.fd = fd;
	f->close_fd = -1;
	ev.data.ptr = &f->ev;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ls_warn_rl(&p->rl_warn, "cannot watch a flow socket: %s", strerror(errno));
		close(fd);
		free(f);
		return NULL;
	}
	return f;
}

void px_flows_refill(struct px *p)
{
	struct px_table *t = &p->tab;

	while (t->nspare < PX_SPARE_FLOWS) {
		struct px_flow *f = flow_make(p);

		if (!f)
			return;
		f->next = t->spare;
		t->spare = f;
		t->nspare++;
	}
}

/* The least recently used flow of s that has been quiet long enough, or NULL. */
static struct px_flow *flow_lru_quiet(struct px_session *s, uint64_t now)
{
	struct px_flow *lru = NULL;

	for (struct px_flow *f = s->flows; f; f = f->next)
		if (now - f->last_us >= PX_FLOW_QUIET_US && (!lru || f->last_us < lru->last_us))
			lru = f;
	return lru;
}

struct px_flow *px_flow_new(struct px *p, struct px_session *s, uint32_t ip, uint16_t port,
			    uint64_t now)
{
	struct px_table *t = &p->tab;
	struct px_flow *f;

	if (s->nflows >= (uint64_t)p->conf.proxy.max_flows) {
		struct px_flow *old = flow_lru_quiet(s, now);

		if (!old)
			return NULL;
		px_flow_close(p, old);
	}
	f = t->spare;
	if (!f)
		return NULL;
	t->spare = f->next;
	t->nspare--;
	f->s = s;
	f->src_ip = ip;
	f->src_port = port;
	f->last_us = now;
	f->next = s->flows;
	s->flows = f;
	s->nflows++;
	t->nflows++;
	return f;
}

void px_flow_close(struct px *p, struct px_flow *f)
{
	struct px_session *s = f->s;
	struct px_flow **pp = &s->flows;

	px_fec_flow_close(p, f);
	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	/* Sends still queued may name this socket: it stays open (and its number
	 * unused) until the queue went out at the end of the loop turn. */
	f->close_fd = f->ev.fd;
	f->ev.fd = -1;
	s->nflows--;
	p->tab.nflows--;
	f->next = p->tab.reap_flows;
	p->tab.reap_flows = f;
}

void px_table_reap(struct px_table *t)
{
	while (t->reap) {
		struct px_session *s = t->reap;

		t->reap = s->hnext;
		free(s->dests);
		free(s->fec);
		free(s);
	}
	while (t->reap_flows) {
		struct px_flow *f = t->reap_flows;

		t->reap_flows = f->next;
		if (f->close_fd >= 0)
			close(f->close_fd); /* also leaves the epoll set */
		free(f);
	}
}

void px_table_free(struct px_table *t)
{
	px_table_reap(t);
	while (t->spare) {
		struct px_flow *f = t->spare;

		t->spare = f->next;
		close(f->ev.fd);
		free(f);
	}
	t->nspare = 0;
	free(t->by_id);
	free(t->by_addr);
	t->by_id = t->by_addr = NULL;
}

static const char *const end_names[] = {
	[PX_END_FIN] = "fin",
	[PX_END_IDLE] = "idle",
	[PX_END_DELETED] = "deleted",
};

static const char *session_name(const struct px_session *s, char *buf, size_t len)
{
	char a[LS_ADDRSTRLEN];

	if (s->auth)
		snprintf(buf, len, "session %u", s->id);
	else
		snprintf(buf, len, "session from %s", ls_addr_fmt(px_session_client(s), a));
	return buf;
}

void px_session_up(struct px *p, struct px_session *s, bool by_packet)
{
	char name[64], a[LS_ADDRSTRLEN], client[LS_ADDRSTRLEN + 16] = "";

	session_name(s, name, sizeof(name));
	/* Without auth the name is the client address already. */
	if (s->auth)
		snprintf(client, sizeof(client), " (%s %s)", s->relay ? "relay grant, client" : "client",
			 px_session_has_client(s) ? ls_addr_fmt(px_session_client(s), a) : "none yet");
	if (by_packet)
		ls_log_rl(&p->rl_sess, LS_LOG_INFO, __func__, "%s up%s", name, client);
	else
		ls_info("%s up%s", name, client);
	px_ctl_session_event(p, s, "session_up", NULL);
}

void px_session_end(struct px *p, struct px_session *s, enum px_end why)
{
	char name[64];

	session_name(s, name, sizeof(name));
	if (why == PX_END_DELETED)
		ls_info("%s down (%s)", name, end_names[why]);
	else
		ls_log_rl(&p->rl_sess, LS_LOG_INFO, __func__, "%s down (%s)", name, end_names[why]);
	px_ctl_session_event(p, s, "session_down", end_names[why]);
	if (s->is_static && why != PX_END_DELETED)
		px_session_reset(p, s);
	else
		px_session_delete(p, s);
}
