/* lightspeed-proxy sessions and flows: a session is one client (by session id, or by
 * its address without auth); a flow is one game socket of that client, with its own
 * upstream UDP socket. Everything here is allocated when a session or flow is created
 * and never on the packet path. */
#ifndef LS_PROXY_SESSION_H
#define LS_PROXY_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "auth.h"
#include "dp_fec.h"
#include "life.h"
#include "proto.h"
#include "ratelimit.h"

struct px;

/* What an epoll event's data.ptr points at: every watched object starts with one. */
struct px_ev {
	int kind; /* enum px_ev_kind */
	int fd;
};

/* Replies are accepted from the destinations a flow sent to; this many are
 * remembered, least recently used replaced. */
#define PX_FLOW_DSTS 8

struct px_flow {
	struct px_ev ev;          /* PX_EV_FLOW; fd -1 once closed */
	int close_fd;             /* closed: the socket, shut when the loop turn ends */
	struct px_flow *next;     /* in the session, on the reap list, or spare */
	struct px_session *s;
	uint64_t last_us;
	uint32_t src_ip;          /* the game socket, as the client names it */
	uint16_t src_port;
	uint8_t ndst;
	struct {
		uint32_t ip;
		uint16_t port;
	} dst[PX_FLOW_DSTS];      /* most recently used first */
	/* FEC, each allocated when first needed: replies are encoded while the session's
	 * downstream FEC is on; the client's version-2 packets are decoded. */
	struct ls_fec_enc *enc;
	struct ls_fec_dec *dec;
	struct px_flow *fec_next;  /* on the list of flows with parity pending */
	bool fec_pending;
	uint32_t fec_src_ip;       /* the server of the latest encoded reply: parity's source */
	uint16_t fec_src_port;
};

/* A session's FEC state, allocated when it first needs one (an explicit setting, or a
 * client that asks for FEC); sessions without FEC carry only the pointer. */
struct px_fec {
	bool pinned;                /* set by session_add, [[session]] or set_fec */
	struct dp_fec_setting pin;  /* that setting; the client's ask is then ignored */
	struct dp_fec_setting ask;  /* what the client asks in its keepalive requests */
	struct ls_fec_params down;  /* what the encoders use now */
	struct dp_fec_auto au;      /* the policy, while the setting in force is auto */
	struct ls_rx_base base;     /* the client's previous report of our packets */
};

/* A session reaches its client over up to PX_PATHS addresses (docs/protocol.md 1.9):
 * the client itself, and relays. Each one is validated on its own and, until then,
 * gets no more bytes than it sent. */
#define PX_PATHS 4
/* A path silent this long gets no more game replies, and its slot may go to a new one. */
#define PX_PATH_QUIET_US 1000000

struct px_path {
	struct sockaddr_in addr;
	bool validated;
	bool chal_pending;              /* a validation request awaits its echo */
	uint8_t chal_fail;              /* wrong echoes of it from this address */
	uint8_t role;                   /* LS_ROLE_*: what the client asked this path for */
	uint16_t chal_seq;
	uint16_t rx16;                  /* packets taking a seq received here, copies too */
	uint32_t chal_ts;
	uint64_t chal_us;               /* when the request left */
	uint64_t unval_rx, unval_tx;    /* bytes from / to this address while unvalidated */
	uint64_t last_us;               /* the last authenticated packet from here */
	uint64_t rx_packets, tx_packets;
};

struct px_session {
	struct px_session *hnext;       /* hash chain (by id or by address), or reap list */
	struct px_session *prev, *next; /* every session, for housekeeping and listing */
	struct px_flow *flows;
	struct ls_dest *dests;          /* allowed destinations (a relay: its next hops) */
	uint32_t ndests;
	uint32_t nflows;

	uint32_t id;                    /* 0 without auth */
	bool auth;                      /* has a key: AUTH on everything it sends */
	bool is_static;                 /* from the config: reset, never deleted, when idle */
	bool relay;                     /* a relay grant: forwards tunnel datagrams (1.9) */
	bool dead;
	bool multipath;                 /* the client asked for path roles (1.9) */

	/* path[0 .. npaths): the client's addresses; a single-path session has one, the
	 * client address of 1.3, which moves when the client roams. */
	struct px_path path[PX_PATHS];
	uint8_t npaths;
	uint8_t parity_next;            /* split: the path the next parity packet takes */
	uint16_t tx_seq;                /* the next seq the proxy uses towards the client */
	uint64_t last_us;               /* last traffic either way */

	struct ls_rx_count rx;          /* packets taking a seq received from the client */
	struct px_fec *fec;             /* NULL: no FEC either way so far */

	uint64_t pps, bps;              /* limits, 0 = unlimited */
	struct ls_bucket b_pps, b_bps;  /* what the client sends */
	struct ls_bucket t_pps, t_bps;  /* what is sent to the client: the same limits */

	/* Drop reasons seen since the loop last logged them (bits of enum ls_drop), the
	 * ones logged once already, and when this session may log again. */
	uint32_t warn_new, warned;
	uint64_t warn_next_us;
	struct px_session *warn_next;   /* on the list of sessions with drops to log */
	struct sockaddr_in warn_peer;   /* the sender of the latest replay */
	uint32_t warn_dst_ip;           /* the latest refused destination */
	uint16_t warn_dst_port;

	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, drops;

	struct ls_mac mac;              /* the session key: handshakes only */
	struct ls_lives lv;             /* the lifetimes its other packets run under */
};

struct px_table {
	struct px_session **by_id;
	struct px_session **by_addr;    /* only without require_auth */
	size_t mask;                    /* both tables have mask + 1 buckets */
	uint64_t seed;                  /* hash key: spoofed sources cannot aim at a chain */
	struct px_session *head;
	size_t n, nflows;
	struct px_session *reap;        /* deleted, freed after the current loop turn */
	struct px_flow *reap_flows;     /* closed: sockets shut and memory freed then */
	struct px_flow *spare;          /* flows with a bound socket in epoll, ready */
	size_t nspare;
};

/* Flows kept ready, so the packet path never opens, binds or allocates: refilled
 * when a loop turn ends. */
#define PX_SPARE_FLOWS 16
/* A flow this long without traffic may give its place to a new game socket when the
 * session is at max_flows (the least recently used one goes). */
#define PX_FLOW_QUIET_US 200000

int px_table_init(struct px_table *t, size_t max_sessions, bool by_addr, uint64_t seed);
void px_table_free(struct px_table *t);
/* Free what was deleted during this loop turn (no epoll event can point at it now),
 * shutting the sockets of closed flows (after the send queue went out). */
void px_table_reap(struct px_table *t);
/* Keep PX_SPARE_FLOWS flows ready (outside the packet path). */
void px_flows_refill(struct px *p);

struct px_session *px_session_by_id(const struct px_table *t, uint32_t id);
struct px_session *px_session_by_addr(const struct px_table *t, const struct sockaddr_in *a);

/* A session with a key, known by id (steering or config). dests are copied (for a
 * relay grant: its next hops). fec is its explicit downstream FEC, or NULL to follow
 * what the client asks. */
struct px_session *px_session_add_keyed(struct px *p, uint32_t id, const uint8_t *key,
					const struct ls_dest *dests, size_t ndests,
					uint64_t pps, uint64_t bps, const struct dp_fec_setting *fec,
					bool is_static, bool relay, uint64_t now);
/* A session without auth, known by the client's address. */
struct px_session *px_session_add_addr(struct px *p, const struct sockaddr_in *client,
				       uint64_t now);
/* Why a session ends: the `reason` of the session_down event. */
enum px_end { PX_END_FIN, PX_END_IDLE, PX_END_DELETED };
/* A session came up (created, or a static one got a client): log and tell subscribers.
 * by_packet: caused by outside input, so the log line is rate-limited. */
void px_session_up(struct px *p, struct px_session *s, bool by_packet);
/* A session ends: event session_down, then deleted — or, for a static session ending
 * by FIN or idleness, reset to wait for its client again. */
void px_session_end(struct px *p, struct px_session *s, enum px_end why);
/* Remove it (flows closed); the memory goes when the loop turn ends. */
void px_session_delete(struct px *p, struct px_session *s);
/* A static session forgets its client, flows and lifetimes but keeps its key. */
void px_session_reset(struct px *p, struct px_session *s);
/* Make a the session's one client address (roaming): unvalidated until it echoes a
 * request. */
void px_session_set_client(struct px *p, struct px_session *s, const struct sockaddr_in *a);
/* A handshake began a new lifetime from a, which it proved (docs/protocol.md 1.8). */
void px_session_commit(struct px *p, struct px_session *s, const struct sockaddr_in *a,
		       uint64_t now);
/* Does the session have a client address yet? */
static inline bool px_session_has_client(const struct px_session *s)
{
	return s->npaths > 0;
}
/* The path of address a, or NULL. */
static inline struct px_path *px_path_find(struct px_session *s, const struct sockaddr_in *a)
{
	for (unsigned i = 0; i < s->npaths; i++)
		if (s->path[i].addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    s->path[i].addr.sin_port == a->sin_port)
			return &s->path[i];
	return NULL;
}
/* A new path of a multipath session (1.9): a free slot, or the one heard from least
 * recently if it has been quiet for PX_PATH_QUIET_US; NULL when there is none. */
struct px_path *px_path_add(struct px_session *s, const struct sockaddr_in *a, uint64_t now);
/* The client asked role for path pa in a keepalive request: LS_ROLE_ONLY makes pa the
 * session's one path again, any other role makes the session multipath. */
void px_path_role(struct px_session *s, struct px_path *pa, uint8_t role);
/* The session's primary address (the first path), for logs and listings. */
static inline const struct sockaddr_in *px_session_client(const struct px_session *s)
{
	static const struct sockaddr_in none;

	return s->npaths ? &s->path[0].addr : &none;
}

struct px_flow *px_flow_find(struct px_session *s, uint32_t ip, uint16_t port);
/* A new flow from the spare ones (its own UDP socket, already in epoll). At
 * max_flows the least recently used flow quiet for PX_FLOW_QUIET_US gives way; NULL
 * when none is quiet or no spare is ready. */
struct px_flow *px_flow_new(struct px *p, struct px_session *s, uint32_t ip, uint16_t port,
			    uint64_t now);
/* Out of the session at once; its socket is shut when the loop turn ends. */
void px_flow_close(struct px *p, struct px_flow *f);
/* Remember a destination the flow sent to (most recent first). */
static inline void px_flow_note_dst(struct px_flow *f, uint32_t ip, uint16_t port)
{
	unsigned i, n = f->ndst;

	for (i = 0; i < n; i++)
		if (f->dst[i].ip == ip && f->dst[i].port == port)
			break;
	if (i == 0 && n)
		return; /* the usual case: the flow's one server, already first */
	if (i == n) {
		/* Not known: add it, dropping the least recently used when full. */
		if (n < PX_FLOW_DSTS)
			f->ndst = (uint8_t)++n;
		i = n - 1;
	}
	for (; i > 0; i--)
		f->dst[i] = f->dst[i - 1];
	f->dst[0].ip = ip;
	f->dst[0].port = port;
}
static inline bool px_flow_sent_to(const struct px_flow *f, uint32_t ip, uint16_t port)
{
	for (unsigned i = 0; i < f->ndst; i++)
		if (f->dst[i].ip == ip && f->dst[i].port == port)
			return true;
	return false;
}

#endif
