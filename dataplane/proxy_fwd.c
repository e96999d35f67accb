/* lightspeed-proxy packet paths (docs/protocol.md 1.3-1.8): tunnel datagrams in,
 * payloads out to game servers, replies wrapped back. Per packet there is no
 * allocation, no logging and no formatting: datagrams are read into the receive
 * buffers of the loop turn, every send is queued, and the queue goes out at the end of
 * the turn with one sendmmsg per socket. Every outcome is a counter; drops a user
 * should hear about are noted for the loop to log. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "life.h"
#include "proto.h"
#include "seal.h"
#include "util.h"

#define RX_BATCH    32   /* datagrams per recvmmsg */
#define RX_PER_WAKE 256  /* per socket and wake-up, so no socket starves the others */
#define RX_SLOTS    256  /* receive buffers of one loop turn */
#define TXQ         512  /* sends queued in one loop turn before an early flush */
#define TX_BIG      64   /* of them, with a datagram of their own (parity, rebuilt) */
#define CTL_LEN     LS_HS_MAX_LEN
#define FRESH_HEADROOM LS_SEAL_HEADROOM
#define REVALIDATE_US 1000000
/* Wrong echoes from the client address that void a validation request: the nonce
 * cannot be guessed at the packet rate (a new one comes after REVALIDATE_US). */
#define CHAL_FAIL_MAX 8

/* Receive buffers: a recvmmsg takes RX_BATCH free slots; the data stays put until the
 * queue that points into it has gone out. */
static uint8_t rx_buf[RX_SLOTS][LS_RX_BUF];
static unsigned rx_used;
static struct mmsghdr rx_msg[RX_BATCH];
static struct iovec rx_iov[RX_BATCH];
static struct sockaddr_in rx_from[RX_BATCH];

/* What a queued datagram is, for the counters (TX_COPY: a reply's copy on another path). */
enum tx_kind { TX_FORWARD, TX_REPLY, TX_CONTROL, TX_PARITY, TX_RELAY, TX_RELAY_REPLY, TX_COPY };

struct tx_meta {
	int fd;
	enum tx_kind kind;
	struct px_session *s; /* NULL for a stateless answer */
	struct px_path *pa;   /* the path it goes to, if any */
	size_t payload;       /* game bytes, for the forwarded/reply counters */
};

static struct mmsghdr tx_msg[TXQ];
static struct iovec tx_iov[TXQ];
static struct sockaddr_in tx_to[TXQ];
static struct tx_meta tx_meta[TXQ];
static uint8_t tx_ctl[TXQ][CTL_LEN];
static unsigned tx_n;
/* Datagrams with no receive buffer of their own (rebuilt packets, parity): touched
 * only when FEC is in use. */
static uint8_t tx_big[TX_BIG][LS_SEAL_HEADROOM + LS_FEC_SHARD_MAX + LS_TAG_LEN];
static unsigned big_used;
/* The flush groups the queue by socket. */
static struct mmsghdr tx_out[TXQ];
static unsigned tx_order[TXQ];
static uint8_t tx_taken[TXQ];

/* ---- drops: counted at once, noted for the loop to log ----------------------- */

static void note_warn(struct px *p, struct px_session *s, enum ls_drop why)
{
	uint32_t bit = 1u << why;

	if (s->warn_new & bit)
		return;
	if (!s->warn_new) {
		s->warn_next = p->warn_list;
		p->warn_list = s;
	}
	s->warn_new |= bit;
}

static inline void drop(struct px *p, enum ls_drop why)
{
	p->ctr.drops[why]++;
}

static inline void drop_s(struct px *p, struct px_session *s, enum ls_drop why)
{
	p->ctr.drops[why]++;
	s->drops++;
	note_warn(p, s, why);
}

/* A drop with no session to charge (forged ids are free): the peer and the id it
 * named are kept for the log line. */
static void drop_peer(struct px *p, enum ls_drop why, const struct sockaddr_in *from,
		      uint32_t session_id)
{
	struct px_note *n = &p->notes[why];

	p->ctr.drops[why]++;
	n->count++;
	n->peer = *from;
	n->session_id = session_id;
}

static inline bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* ---- sending ------------------------------------------------------------------- */

static void tx_done(struct px *p, unsigned i)
{
	struct tx_meta *m = &tx_meta[i];
	size_t len = tx_iov[i].iov_len;

	if (m->kind == TX_FORWARD) {
		p->ctr.forwarded_packets++;
		p->ctr.forwarded_bytes += m->payload;
		return;
	}
	if (m->kind == TX_RELAY) {
		p->ctr.relayed_packets++;
		p->ctr.relayed_bytes += m->payload;
		return;
	}
	if (m->kind == TX_REPLY) {
		p->ctr.reply_packets++;
		p->ctr.reply_bytes += m->payload;
	} else if (m->kind == TX_RELAY_REPLY) {
		p->ctr.relay_reply_packets++;
		p->ctr.relay_reply_bytes += m->payload;
	}
	p->ctr.tx_packets++;
	p->ctr.tx_bytes += len;
	if (m->s) {
		m->s->tx_packets++;
		m->s->tx_bytes += len;
	}
	if (m->pa)
		m->pa->tx_packets++;
}

void px_tx_flush(struct px *p)
{
	unsigned n = 0, i, j;

	/* Group by socket, each keeping its order: one sendmmsg per socket. */
	memset(tx_taken, 0, tx_n);
	for (i = 0; i < tx_n; i++) {
		if (tx_taken[i])
			continue;
		for (j = i; j < tx_n; j++) {
			if (!tx_taken[j] && tx_meta[j].fd == tx_meta[i].fd) {
				tx_taken[j] = 1;
				tx_order[n] = j;
				tx_out[n] = tx_msg[j];
				n++;
			}
		}
	}
	i = 0;
	while (i < n) {
		unsigned run = 1;
		int fd = tx_meta[tx_order[i]].fd;

		while (i + run < n && tx_meta[tx_order[i + run]].fd == fd)
			run++;
		int r = sendmmsg(fd, tx_out + i, run, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* The first message was refused (full buffer, unreachable, port 0):
			 * count it and go on with the rest. */
			struct px_session *s = tx_meta[tx_order[i]].s;
			drop(p, LS_DROP_SEND_ERROR);
			if (s)
				s->drops++;
			i++;
			continue;
		}
		for (unsigned k = i; k < i + (unsigned)r; k++)
			tx_done(p, tx_order[k]);
		i += (unsigned)r;
	}
	tx_n = 0;
	big_used = 0;
}

/* n places in the queue, and with big a datagram slot of their own: what is queued
 * goes out first when either has run out (never while a caller holds a place). The
 * first place is returned; the others follow it. */
static unsigned tx_reserve_n(struct px *p, unsigned n, uint8_t **big)
{
	unsigned first;

	if (tx_n + n > TXQ || (big && big_used == TX_BIG))
		px_tx_flush(p);
	if (big)
		*big = tx_big[big_used++];
	first = tx_n;
	tx_n += n;
	return first;
}

static unsigned tx_reserve(struct px *p, uint8_t **big)
{
	return tx_reserve_n(p, 1, big);
}

void px_turn_end(struct px *p)
{
	px_tx_flush(p);
	rx_used = 0;
	/* Logged before the reap: a session deleted this turn is still readable. */
	px_warn_flush(p);
	px_table_reap(&p->tab);
	px_flows_refill(p);
}

static void tx_fill(unsigned i, int fd, uint8_t *data, size_t len, const struct sockaddr_in *to,
		    enum tx_kind kind, struct px_session *s, size_t payload)
{
	tx_meta[i].pa = NULL;
	tx_iov[i].iov_base = data;
	tx_iov[i].iov_len = len;
	tx_to[i] = *to;
	memset(&tx_msg[i], 0, sizeof(tx_msg[i]));
	tx_msg[i].msg_hdr.msg_name = &tx_to[i];
	tx_msg[i].msg_hdr.msg_namelen = sizeof(tx_to[i]);
	tx_msg[i].msg_hdr.msg_iov = &tx_iov[i];
	tx_msg[i].msg_hdr.msg_iovlen = 1;
	tx_meta[i].fd = fd;
	tx_meta[i].kind = kind;
	tx_meta[i].s = s;
	tx_meta[i].payload = payload;
}

/* data must stay valid until the flush: the receive buffers of the turn do. */
static void tx_push(struct px *p, int fd, uint8_t *data, size_t len,
		    const struct sockaddr_in *to, enum tx_kind kind, struct px_session *s,
		    size_t payload)
{
	tx_fill(tx_reserve(p, NULL), fd, data, len, to, kind, s, payload);
}

/* A control packet built on the stack goes into the queue's own storage. */
static void tx_push_ctl(struct px *p, struct px_session *s, const uint8_t *pkt, size_t len,
			const struct sockaddr_in *to)
{
	unsigned i = tx_reserve(p, NULL);

	memcpy(tx_ctl[i], pkt, len);
	tx_fill(i, p->tun_fd, tx_ctl[i], len, to, TX_CONTROL, s, 0);
}

/* May len bytes go to path pa of session s? Until a path is validated it gets no more
 * bytes than it sent (1.6); game replies and their parity (budget) take from the
 * session's reply budget, the request path's limits, every copy on every path counted.
 * Control packets answer one request each, no larger than it; echoes to an address
 * that is no path (pa NULL) likewise. */
static enum ls_drop tx_admit(struct px_session *s, struct px_path *pa, size_t len, bool budget,
			     uint64_t now)
{
	if (!pa)
		return LS_DROP__COUNT;
	if (!pa->validated && pa->unval_tx + len > pa->unval_rx)
		return LS_DROP_UNVALIDATED_LIMIT;
	if (budget && !ls_bucket_take(&s->t_pps, 1, now))
		return LS_DROP_RATE_LIMITED;
	if (budget && !ls_bucket_take(&s->t_bps, len, now))
		return LS_DROP_RATE_LIMITED;
	if (!pa->validated)
		pa->unval_tx += len;
	return LS_DROP__COUNT;
}

/* Where a session's game replies go (1.9): its one path, or in a multipath session
 * every data path heard from lately (parity: one parity path heard from lately, taking
 * turns, else as the data); when no data path was heard from lately, the path heard
 * from last. Returns the count written into out. */
static unsigned reply_paths(struct px_session *s, bool parity, uint64_t now,
			    struct px_path *out[PX_PATHS])
{
	struct px_path *last = NULL;
	unsigned n = 0;

	if (!s->multipath) {
		if (s->npaths)
			out[n++] = &s->path[0];
		return n;
	}
	for (unsigned k = 0; parity && k < s->npaths && !n; k++) {
		unsigned i = (s->parity_next + k) % s->npaths;
		struct px_path *pa = &s->path[i];

		if (pa->role == LS_ROLE_PARITY && now - pa->last_us < PX_PATH_QUIET_US) {
			out[n++] = pa;
			s->parity_next = (uint8_t)(i + 1);
		}
	}
	if (n)
		return n;
	for (unsigned i = 0; i < s->npaths; i++) {
		struct px_path *pa = &s->path[i];

		if (!last || pa->last_us > last->last_us)
			last = pa;
		if (pa->role == LS_ROLE_DATA && now - pa->last_us < PX_PATH_QUIET_US)
			out[n++] = pa;
	}
	if (!n && last)
		out[n++] = last;
	return n;
}

/* Who seals for the session: its current lifetime, or no AUTH without a key. */
static struct ls_seal seal_of(struct px_session *s, struct ls_mac *mac)
{
	struct ls_seal k = { .mac = NULL, .token = 0, .session_id = 0 };

	if (s && s->auth) {
		k.mac = mac ? mac : &s->lv.cur.mac;
		k.token = (uint8_t)s->id;
		k.session_id = s->id;
	}
	return k;
}

/* KEEPALIVE or FIN, version 1, sealed under mac (NULL: the current lifetime). s may be
 * NULL (a stateless FIN answer without auth). */
static size_t build_ctl(struct px_session *s, struct ls_mac *mac, uint8_t flags, uint16_t seq,
			uint32_t ts, const struct ls_keepalive *ka, uint8_t *out)
{
	struct ls_seal k = seal_of(s, mac);
	struct ls_hdr h;

	memset(&h, 0, sizeof(h));
	h.version = LS_VER_PLAIN;
	h.flags = flags;
	h.seq = seq;
	h.ts_us = ts;
	if (ka)
		ls_keepalive_to_hdr(ka, &h);
	return ls_seal_at(&k, &h, out, 0);
}

/* Our reception report. The proxy asks nothing of the client's FEC (fec_k 0): the
 * client's setting governs its upstream. */
static void fill_report(struct px_session *s, uint8_t kind, struct ls_keepalive *ka)
{
	memset(ka, 0, sizeof(*ka));
	ls_rx_report(&s->rx, ka);
	ka->kind = kind;
}

/* A KEEPALIVE request with an unpredictable ts_us (the keyed PRF) to a path's
 * address: its echo proves the client can receive there (1.6). */
static void send_challenge(struct px *p, struct px_session *s, struct px_path *pa, uint64_t now)
{
	uint8_t pkt[CTL_LEN];
	struct ls_keepalive ka;
	uint16_t seq = s->tx_seq;
	uint32_t ts = (uint32_t)ls_prf_next(&p->prf);
	size_t n;

	if (s->auth && !s->lv.cur.live)
		return; /* nothing to seal with: the client's handshake comes first */
	fill_report(s, LS_KA_REQUEST, &ka);
	n = build_ctl(s, NULL, LS_F_KEEPALIVE, seq, ts, &ka, pkt);
	pa->chal_us = now;
	if (tx_admit(s, pa, n, false, now) != LS_DROP__COUNT)
		return;
	s->tx_seq++;
	pa->chal_seq = seq;
	pa->chal_ts = ts;
	pa->chal_pending = true;
	pa->chal_fail = 0;
	tx_push_ctl(p, s, pkt, n, &pa->addr);
}

void px_revalidate(struct px *p, struct px_session *s, uint64_t now)
{
	/* A lost request would otherwise leave the address on its byte budget for good;
	 * the budget itself keeps these from flooding an address that sends nothing. */
	for (unsigned i = 0; i < s->npaths; i++)
		if (!s->path[i].validated && now - s->path[i].chal_us >= REVALIDATE_US)
			send_challenge(p, s, &s->path[i], now);
}

void px_send_fins(struct px *p)
{
	uint32_t ts = (uint32_t)ls_now_us();

	for (struct px_session *s = p->tab.head; s; s = s->next) {
		uint8_t pkt[CTL_LEN];
		uint16_t seq = s->tx_seq++;
		size_t n;

		if (s->auth && !s->lv.cur.live)
			continue;
		/* One FIN, to every validated path: whichever reaches the client tells it. */
		n = build_ctl(s, NULL, LS_F_FIN, seq, ts, NULL, pkt);
		for (unsigned i = 0; i < s->npaths; i++)
			if (s->path[i].validated)
				tx_push_ctl(p, s, pkt, n, &s->path[i].addr);
	}
	px_tx_flush(p);
}

/* ---- tunnel -> game server ------------------------------------------------------ */

static bool dest_allowed(const struct px_session *s, uint32_t ip, uint16_t port)
{
	for (uint32_t i = 0; i < s->ndests; i++)
		if (ls_dest_match(&s->dests[i], ip, port))
			return true;
	return false;
}

static bool rate_ok(struct px_session *s, size_t len, uint64_t now)
{
	return ls_bucket_take(&s->b_pps, 1, now) && ls_bucket_take(&s->b_bps, len, now);
}

/* Where a flow's game datagrams go: its server, within the session's rate. */
struct fwd_ctx {
	struct px *p;
	struct px_session *s;
	struct px_flow *f;
	struct sockaddr_in to;
	const uint8_t *arrived; /* the datagram's payload, read-only view */
	uint8_t *arrived_w;     /* the same bytes, writable */
	uint64_t now;
};

/* The decoder's delivery: a packet still in our receive buffer is sent from there; a
 * rebuilt one, valid only during this call, is copied into a slot of its own. */
static void fwd_deliver(void *arg, const uint8_t *payload, size_t len)
{
	struct fwd_ctx *x = arg;
	int fd = x->f->ev.fd;
	uint8_t *own;
	unsigned i;

	if (!rate_ok(x->s, len, x->now)) {
		drop_s(x->p, x->s, LS_DROP_RATE_LIMITED);
		return;
	}
	if (payload == x->arrived) {
		tx_push(x->p, fd, x->arrived_w, len, &x->to, TX_FORWARD, x->s, len);
		return;
	}
	i = tx_reserve(x->p, &own);
	memcpy(own, payload, len);
	tx_fill(i, fd, own, len, &x->to, TX_FORWARD, x->s, len);
}

static void forward(struct px *p, struct px_session *s, const struct ls_hdr *h,
		    uint8_t *payload, size_t len, uint64_t now)
{
	bool fec = h->version == LS_VER_FEC;
	struct fwd_ctx x = { .p = p, .s = s, .arrived = payload, .arrived_w = payload, .now = now };
	struct px_flow *f;

	/* A parity packet names the flow's destination like data does, and is checked
	 * the same way: what it rebuilds goes there. A relay's next hop likewise. */
	if (!ls_addr_permitted(&p->conf.proxy.allow, h->dst_ip)) {
		drop_s(p, s, LS_DROP_DENIED_DESTINATION);
		s->warn_dst_ip = h->dst_ip;
		s->warn_dst_port = h->dst_port;
		return;
	}
	if ((s->ndests || s->relay) && !dest_allowed(s, h->dst_ip, h->dst_port)) {
		drop_s(p, s, LS_DROP_NOT_ALLOWED);
		s->warn_dst_ip = h->dst_ip;
		s->warn_dst_port = h->dst_port;
		return;
	}
	if (s->relay) {
		struct ls_pkt inner;

		/* The relay forwards tunnel datagrams only: what it cannot parse as one it
		 * does not send (it never checks, nor could check, the inner tag). */
		if (ls_pkt_decode(payload, len, &inner) != LS_PE_OK || !(inner.h.flags & LS_F_AUTH)) {
			drop_s(p, s, LS_DROP_MALFORMED);
			return;
		}
	}
	/* FEC traffic is rate-checked packet by packet as the decoder delivers it. */
	if (!fec && !rate_ok(s, len, now)) {
		drop_s(p, s, LS_DROP_RATE_LIMITED);
		return;
	}
	f = px_flow_find(s, h->src_ip, h->src_port);
	if (!f) {
		f = px_flow_new(p, s, h->src_ip, h->src_port, now);
		if (!f) {
			drop_s(p, s, LS_DROP_FLOW_LIMIT);
			return;
		}
	}
	px_flow_note_dst(f, h->dst_ip, h->dst_port);
	f->last_us = now;
	x.f = f;
	x.to.sin_family = AF_INET;
	x.to.sin_addr.s_addr = htonl(h->dst_ip);
	x.to.sin_port = htons(h->dst_port);
	if (!fec) {
		tx_push(p, f->ev.fd, payload, len, &x.to, s->relay ? TX_RELAY : TX_FORWARD, s, len);
		return;
	}
	if (px_fec_dec(f))
		ls_fec_dec_add(f->dec, h, payload, len, now, fwd_deliver, &x);
	else if (!h->fec_k || h->fec_index < h->fec_k)
		fwd_deliver(&x, payload, len); /* no decoder (out of memory): data still goes */
}

static void answer_keepalive(struct px *p, struct px_session *s, struct px_path *pa,
			     struct ls_mac *mac, const struct ls_hdr *h, uint8_t role,
			     const struct sockaddr_in *from, uint64_t now)
{
	uint8_t pkt[CTL_LEN];
	struct ls_keepalive ka;
	size_t n;

	fill_report(s, LS_KA_REPLY, &ka);
	/* A request that names its path's role learns how many of its packets came
	 * that way (1.9): the loss of each path apart. */
	if (role != LS_ROLE_ONLY && pa)
		ka.path_rx = pa->rx16;
	n = build_ctl(s, mac, LS_F_KEEPALIVE, h->seq, h->ts_us, &ka, pkt);
	/* The client's first probe after roaming pays for the validation request, so its
	 * echo may not fit the budget: the client misses one RTT sample, no data is lost,
	 * and nothing is counted as dropped (1.6). */
	if (tx_admit(s, pa, n, false, now) != LS_DROP__COUNT) {
		p->ctr.keepalives_unanswered++;
		return;
	}
	tx_push_ctl(p, s, pkt, n, from);
}

static void answer_fin(struct px *p, struct px_session *s, struct px_path *pa,
		       const struct ls_hdr *h, const struct sockaddr_in *from, uint64_t now)
{
	uint8_t pkt[CTL_LEN];
	size_t n = build_ctl(s, NULL, LS_F_FIN, h->seq, h->ts_us, NULL, pkt);
	enum ls_drop why;

	if (!s) {
		tx_push_ctl(p, NULL, pkt, n, from);
		return;
	}
	why = tx_admit(s, pa, n, false, now);
	if (why == LS_DROP__COUNT)
		tx_push_ctl(p, s, pkt, n, from);
	else
		drop_s(p, s, why);
	/* Out before the session's state resets. */
	px_tx_flush(p);
	px_session_end(p, s, PX_END_FIN);
}

/* A HANDSHAKE of a known session (1.8): answered statelessly, or a CONFIRM that
 * begins a new lifetime from the address it came from. Never refreshes the session
 * unless it begins one. */
static void handshake(struct px *p, struct px_session *s, const struct ls_pkt *pkt,
		      const uint8_t *buf, const struct sockaddr_in *from, uint64_t now)
{
	uint8_t out[LS_HS_MAX_LEN];
	size_t n = 0;
	enum ls_drop why = LS_DROP_MALFORMED;
	enum ls_hs_verdict v;

	if (!ls_hs_tag_ok(&s->mac, (uint8_t)s->id, pkt, buf)) {
		drop_peer(p, LS_DROP_BAD_TAG, from, pkt->h.session_id);
		return;
	}
	v = ls_hs_respond(&s->lv, &s->mac, &p->prf, (uint8_t)s->id, s->id, pkt,
			  ntohl(from->sin_addr.s_addr), ntohs(from->sin_port), now, out, &n, &why);
	if (v == LS_HSV_DROP) {
		drop_s(p, s, why);
		return;
	}
	if (v == LS_HSV_COMMIT)
		px_session_commit(p, s, from, now);
	/* No answer outgrows its request: INIT and REPLY are the same size. */
	tx_push_ctl(p, s, out, n, from);
}

/* What the checks found out about a datagram. */
struct rx_path {
	struct px_path *pa;   /* the path it came over (NULL: not one of the session's) */
	struct ls_mac *mac;   /* the lifetime that accepted it */
	bool moved;           /* a path is new (roaming, or another path): validate it */
};

/* An AUTH datagram other than a HANDSHAKE: the checks of 1.3 in their order. Returns
 * the session, or NULL when dropped. role: a keepalive request's role for its path
 * (1.9), else LS_ROLE_ONLY. */
static struct px_session *auth_check(struct px *p, const struct ls_pkt *pkt, const uint8_t *buf,
				     bool echo, uint8_t role, const struct sockaddr_in *from,
				     uint64_t now, struct rx_path *rp)
{
	const struct ls_hdr *h = &pkt->h;
	struct px_session *s = px_session_by_id(&p->tab, h->session_id);
	enum ls_drop why = LS_DROP_BAD_TAG;
	struct ls_rx_ok ok;
	bool multi;

	if (!s) {
		drop_peer(p, LS_DROP_UNKNOWN_SESSION, from, h->session_id);
		return NULL;
	}
	if (h->flags & LS_F_HANDSHAKE) {
		handshake(p, s, pkt, buf, from, now);
		return NULL;
	}
	rp->pa = px_path_find(s, from);
	/* Copies of one datagram over several paths of the session are duplicates. */
	multi = s->multipath && !s->relay;
	/* The client's packets carry its clock, except echoes of our requests. */
	if (!ls_lives_check(&s->lv, (uint8_t)s->id, pkt, buf, echo, !echo, multi && rp->pa, now,
			    &ok, &why)) {
		if (why == LS_DROP_BAD_TAG) {
			/* Forged ids are free to send, so a bad tag is not charged to the
			 * session; nor is it ever answered (a client whose lifetime we lost,
			 * after a restart, finds out by our silence: 1.8). */
			drop_peer(p, why, from, h->session_id);
		} else if (why == LS_DROP_DUPLICATES) {
			/* Expected in duplicate mode: counted, never logged. */
			p->ctr.drops[why]++;
			rp->pa->rx16++;
			rp->pa->last_us = now;
		} else {
			drop_s(p, s, why);
			s->warn_peer = *from;
		}
		return NULL;
	}
	rp->mac = ok.prev ? &s->lv.prev.mac : &s->lv.cur.mac;
	if (echo)
		return s;
	/* A FIN of a lifetime that has ended ends nothing. */
	if (ok.prev && (h->flags & LS_F_FIN)) {
		drop_s(p, s, LS_DROP_REPLAY);
		s->warn_peer = *from;
		return NULL;
	}
	ls_rx_note(&s->rx, ok.ext);
	if (!ok.prev && !rp->pa) {
		bool first = !px_session_has_client(s);

		if ((multi || (role != LS_ROLE_ONLY && !s->relay)) && !first) {
			/* Another path of a multipath session (1.9); a request naming a role
			 * makes the session one. Nothing moves. */
			rp->pa = px_path_add(s, from, now);
			rp->moved = rp->pa != NULL;
		} else if (first || ok.newest) {
			/* Only the newest packet of the current lifetime moves a single-path
			 * session (roaming). */
			px_session_set_client(p, s, from);
			rp->pa = &s->path[0];
			rp->moved = true;
			/* A static session has been waiting for a client: now it is up. */
			if (first && s->is_static)
				px_session_up(p, s, true);
		}
	}
	if (rp->pa) {
		rp->pa->rx16++;
		rp->pa->rx_packets++;
		if (!ok.prev)
			rp->pa->last_us = now;
	}
	return s;
}

/* A datagram without AUTH, allowed only with --insecure-no-auth: the session is the
 * client's address (one path; roles are ignored). */
static struct px_session *addr_check(struct px *p, const struct ls_pkt *pkt, bool echo,
				     const struct sockaddr_in *from, uint64_t now,
				     struct rx_path *rp)
{
	const struct ls_hdr *h = &pkt->h;
	struct px_session *s;

	if (p->conf.proxy.require_auth) {
		drop_peer(p, LS_DROP_UNAUTHENTICATED, from, 0);
		return NULL;
	}
	s = px_session_by_addr(&p->tab, from);
	if (!s) {
		if (echo) {
			/* An echo of a request no session of this address sent. */
			drop_peer(p, LS_DROP_UNKNOWN_SESSION, from, 0);
			return NULL;
		}
		if (h->flags & LS_F_FIN) {
			/* Nothing to end; the answer still tells the client the route is
			 * gone, and is no larger than the FIN. */
			answer_fin(p, NULL, NULL, h, from, now);
			return NULL;
		}
		if (p->tab.n >= (size_t)p->conf.proxy.max_sessions ||
		    !(s = px_session_add_addr(p, from, now))) {
			drop_peer(p, LS_DROP_SESSION_LIMIT, from, 0);
			return NULL;
		}
		rp->moved = true;
		px_session_up(p, s, true);
	}
	rp->pa = &s->path[0];
	if (!echo) {
		ls_rx_note(&s->rx, s->rx.any ? ls_seq_extend(s->rx.top, h->seq) : h->seq);
		rp->pa->rx16++;
		rp->pa->rx_packets++;
		rp->pa->last_us = now;
	}
	return s;
}

/* An echo of our validation request, from the path it went to: it validates the
 * path, refreshes the session, and is the only echo that does (1.4). */
static void echo_received(struct px *p, struct px_session *s, struct px_path *pa,
			  const struct ls_hdr *h, uint64_t now)
{
	p->ctr.keepalives++;
	if (!pa || !pa->chal_pending)
		return;
	if (h->seq == pa->chal_seq && h->ts_us == pa->chal_ts) {
		pa->validated = true;
		pa->chal_pending = false;
		pa->last_us = now;
		s->last_us = now;
	} else if (++pa->chal_fail >= CHAL_FAIL_MAX) {
		pa->chal_pending = false;
	}
}

static void tunnel_packet(struct px *p, uint8_t *buf, size_t len, int mflags,
			  const struct sockaddr_in *from, uint64_t now)
{
	struct ls_pkt pkt;
	struct ls_keepalive ka = { 0 };
	struct px_session *s;
	struct rx_path rp = { 0 };
	bool echo = false;
	int rc;

	p->ctr.rx_packets++;
	p->ctr.rx_bytes += len;
	if ((mflags & MSG_TRUNC) || len > LS_MAX_RELAY_DATAGRAM) {
		drop_peer(p, LS_DROP_OVERSIZE, from, 0);
		return;
	}
	rc = ls_pkt_decode(buf, len, &pkt);
	if (rc != LS_PE_OK) {
		drop_peer(p, ls_drop_from_decode(rc), from, 0);
		return;
	}
	if (pkt.h.flags & LS_F_KEEPALIVE) {
		rc = ls_keepalive_from_hdr(&pkt.h, &ka);
		if (rc != LS_PE_OK || pkt.payload_len) {
			drop_peer(p, rc == LS_PE_FEC_RANGE ? LS_DROP_FEC_RANGE : LS_DROP_MALFORMED,
				  from, 0);
			return;
		}
		echo = ka.kind == LS_KA_REPLY;
	}
	if (pkt.h.flags & LS_F_AUTH)
		s = auth_check(p, &pkt, buf, echo, echo ? LS_ROLE_ONLY : ka.role, from, now, &rp);
	else
		s = addr_check(p, &pkt, echo, from, now, &rp);
	if (!s)
		return;

	s->rx_packets++;
	s->rx_bytes += len;
	if (rp.pa && !rp.pa->validated)
		rp.pa->unval_rx += len;
	if (rp.moved && rp.pa)
		send_challenge(p, s, rp.pa, now);

	if (echo) {
		echo_received(p, s, rp.pa, &pkt.h, now);
		return;
	}
	s->last_us = now;
	if (pkt.h.flags & LS_F_KEEPALIVE) {
		p->ctr.keepalives++;
		/* Roles belong to authenticated multipath clients (1.9). */
		if (rp.pa && s->auth && !s->relay)
			px_path_role(s, rp.pa, ka.role);
		answer_keepalive(p, s, rp.pa ? px_path_find(s, from) : NULL, rp.mac, &pkt.h, ka.role,
				 from, now);
		px_fec_client_request(s, &ka, now);
		return;
	}
	if (pkt.h.flags & LS_F_FIN) {
		answer_fin(p, s, rp.pa, &pkt.h, from, now);
		return;
	}
	/* A relay grant carries relay hops only, and a session that is none carries no
	 * relay hop: a datagram for the other role was never granted. */
	if ((pkt.h.version == LS_VER_RELAY) != s->relay) {
		drop_s(p, s, LS_DROP_NOT_ALLOWED);
		s->warn_dst_ip = pkt.h.dst_ip;
		s->warn_dst_port = pkt.h.dst_port;
		return;
	}
	/* The payload lies in our own writable buffer; the decoder only hands out a
	 * read-only view of it. */
	forward(p, s, &pkt.h, buf + (pkt.payload - buf), pkt.payload_len, now);
}

/* RX_BATCH receive buffers of the turn, headroom bytes in: the queue goes out first
 * when the turn has used them all. */
static uint8_t (*rx_prepare(struct px *p, size_t headroom, size_t room))[LS_RX_BUF]
{
	uint8_t(*slots)[LS_RX_BUF];

	if (rx_used + RX_BATCH > RX_SLOTS) {
		px_tx_flush(p);
		rx_used = 0;
	}
	slots = &rx_buf[rx_used];
	for (int i = 0; i < RX_BATCH; i++) {
		rx_iov[i].iov_base = slots[i] + headroom;
		rx_iov[i].iov_len = room;
		memset(&rx_msg[i].msg_hdr, 0, sizeof(rx_msg[i].msg_hdr));
		rx_msg[i].msg_hdr.msg_name = &rx_from[i];
		rx_msg[i].msg_hdr.msg_namelen = sizeof(rx_from[i]);
		rx_msg[i].msg_hdr.msg_iov = &rx_iov[i];
		rx_msg[i].msg_hdr.msg_iovlen = 1;
	}
	return slots;
}

void px_tunnel_readable(struct px *p)
{
	int total = 0;

	while (total < RX_PER_WAKE) {
		uint8_t(*slots)[LS_RX_BUF] = rx_prepare(p, 0, LS_RX_BUF);
		int n = recvmmsg(p->tun_fd, rx_msg, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rx_used += (unsigned)n;
		uint64_t now = ls_now_us();
		for (int i = 0; i < n; i++) {
			if (rx_msg[i].msg_hdr.msg_namelen < sizeof(struct sockaddr_in) ||
			    rx_from[i].sin_family != AF_INET) {
				p->ctr.rx_packets++;
				p->ctr.rx_bytes += rx_msg[i].msg_len;
				drop(p, LS_DROP_MALFORMED);
				continue;
			}
			tunnel_packet(p, slots[i], rx_msg[i].msg_len, rx_msg[i].msg_hdr.msg_flags,
				      &rx_from[i], now);
		}
		total += n;
		if (n < RX_BATCH)
			break;
	}
}

/* ---- game server -> tunnel ------------------------------------------------------ */

/* Of the paths a reply or its parity goes to, those that may take len bytes now (the
 * others' refusals are counted): written back into to, their count returned. */
static unsigned admit_paths(struct px *p, struct px_session *s, struct px_path *to[PX_PATHS],
			    unsigned n, size_t len, uint64_t now)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++) {
		enum ls_drop why = tx_admit(s, to[i], len, true, now);

		if (why == LS_DROP__COUNT)
			to[ok++] = to[i];
		else
			drop_s(p, s, why);
	}
	return ok;
}

/* Parity into the tunnel queue towards the session's parity paths (1.9), within the
 * reply budget (1.2, 1.6): one datagram, a queue place per path. */
struct parity_ctx {
	struct px *p;
	struct px_session *s;
	uint64_t now;
	struct px_path *to[PX_PATHS];
	unsigned nto;
	unsigned slot; /* the first queue place parity_slot reserved */
};

static uint8_t *parity_slot(void *arg, size_t wire_len)
{
	struct parity_ctx *x = arg;
	uint8_t *own;

	x->nto = reply_paths(x->s, true, x->now, x->to);
	x->nto = admit_paths(x->p, x->s, x->to, x->nto, wire_len, x->now);
	if (!x->nto)
		return NULL;
	x->slot = tx_reserve_n(x->p, x->nto, &own);
	return own;
}

static void parity_queue(void *arg, uint8_t *start, size_t len)
{
	struct parity_ctx *x = arg;

	for (unsigned i = 0; i < x->nto; i++) {
		tx_fill(x->slot + i, x->p->tun_fd, start, len, &x->to[i]->addr, TX_PARITY, x->s, 0);
		tx_meta[x->slot + i].pa = x->to[i];
	}
	x->p->fec_ctr.parity_sent++;
}

/* Parity rows first_row.. of a flow's block: they carry the flow's addresses, the
 * server of the block's latest reply as their source. */
static void send_parity(struct px *p, struct px_flow *f, const uint8_t *shards, size_t len,
			uint16_t block, uint8_t k, uint8_t first_row, int count, uint64_t now)
{
	struct px_session *s = f->s;
	struct parity_ctx x = { .p = p, .s = s, .now = now };
	struct ls_parity_sink sink = { .slot = parity_slot, .queue = parity_queue, .ctx = &x };
	struct ls_seal key = seal_of(s, NULL);
	struct ls_hdr addrs = {
		.src_ip = f->fec_src_ip,
		.src_port = f->fec_src_port,
		.dst_ip = f->src_ip,
		.dst_port = f->src_port,
	};

	if (count <= 0 || !px_session_has_client(s))
		return;
	ls_parity_send(&key, &addrs, &s->tx_seq, (uint32_t)now, shards, len, block, k, first_row,
		       count, &sink);
}

static void close_block(struct px *p, struct px_flow *f, uint64_t now)
{
	const uint8_t *shards;
	size_t len;
	uint16_t block;
	uint8_t k;
	int m = ls_fec_enc_close(f->enc, &shards, &len, &block, &k);

	send_parity(p, f, shards, len, block, k, 0, m, now);
}

/* Parity held back (spread) from the flow's last closed block, if due at now. */
static void send_held(struct px *p, struct px_flow *f, uint64_t now)
{
	const uint8_t *shards;
	size_t len;
	uint16_t block;
	uint8_t k, row;
	int n = ls_fec_enc_take_held(f->enc, now, &shards, &len, &block, &k, &row);

	send_parity(p, f, shards, len, block, k, row, n, now);
}

/* The flow has parity pending: the loop's wait must end at its deadline. */
static void fec_pending(struct px *p, struct px_flow *f)
{
	uint64_t d = ls_fec_enc_deadline(f->enc);

	if (!d)
		return;
	if (!f->fec_pending) {
		f->fec_pending = true;
		f->fec_next = p->fec_pending;
		p->fec_pending = f;
	}
	if (!p->fec_next_us || d < p->fec_next_us)
		p->fec_next_us = d;
}

void px_fec_due(struct px *p, uint64_t now)
{
	struct px_flow **pp = &p->fec_pending, *f;
	uint64_t next = 0, d;

	if (!p->fec_next_us || now < p->fec_next_us)
		return;
	while ((f = *pp)) {
		send_held(p, f, now);
		if (ls_fec_enc_due(f->enc, now))
			close_block(p, f, now);
		d = ls_fec_enc_deadline(f->enc);
		if (!d) {
			*pp = f->fec_next;
			f->fec_pending = false;
			continue;
		}
		if (!next || d < next)
			next = d;
		pp = &f->fec_next;
	}
	p->fec_next_us = next;
}

/* What a relay grant's next hop sent back (1.9): a tunnel datagram, wrapped in a relay
 * hop towards the client as it came, never read beyond its headers. */
static void relay_reply(struct px *p, struct px_flow *f, uint8_t *payload, size_t len,
			uint32_t sip, uint16_t sport, uint64_t now)
{
	struct px_session *s = f->s;
	struct ls_seal key = seal_of(s, NULL);
	struct px_path *to = &s->path[0];
	struct ls_pkt inner;
	struct ls_hdr h;
	enum ls_drop why;
	uint8_t *pkt;
	size_t total;

	if (len > LS_MAX_DATAGRAM) {
		drop_s(p, s, LS_DROP_OVERSIZE);
		return;
	}
	if (ls_pkt_decode(payload, len, &inner) != LS_PE_OK || !(inner.h.flags & LS_F_AUTH)) {
		drop_s(p, s, LS_DROP_MALFORMED);
		return;
	}
	total = LS_RELAY_OVERHEAD + len;
	why = tx_admit(s, to, total, true, now);
	if (why != LS_DROP__COUNT) {
		drop_s(p, s, why);
		return;
	}
	memset(&h, 0, sizeof(h));
	h.version = LS_VER_RELAY;
	h.seq = s->tx_seq++;
	h.ts_us = (uint32_t)now;
	h.src_ip = sip;
	h.src_port = sport;
	total = ls_seal_in_place(&key, &h, payload, len, &pkt);
	s->last_us = now;
	f->last_us = now;
	tx_push(p, p->tun_fd, pkt, total, &to->addr, TX_RELAY_REPLY, s, len);
	tx_meta[tx_n - 1].pa = to;
}

static void flow_reply(struct px *p, struct px_flow *f, uint8_t *payload, size_t len,
		       int mflags, const struct sockaddr_in *from, uint64_t now)
{
	struct px_session *s = f->s;
	uint32_t sip = ntohl(from->sin_addr.s_addr);
	uint16_t sport = ntohs(from->sin_port);
	struct ls_seal key = seal_of(s, NULL);
	struct px_path *to[PX_PATHS];
	struct ls_fec_enc *enc;
	struct ls_hdr h;
	size_t total;
	uint8_t *pkt;
	unsigned nto;
	bool full = false;

	if (!px_flow_sent_to(f, sip, sport)) {
		drop_s(p, s, LS_DROP_UNEXPECTED_SOURCE);
		return;
	}
	if (MSG_TRUNC & mflags) {
		drop_s(p, s, LS_DROP_OVERSIZE);
		return;
	}
	if (!px_session_has_client(s)) {
		/* Flows close when a session loses its client, so this cannot happen;
		 * counted rather than sent nowhere. */
		drop_s(p, s, LS_DROP_SEND_ERROR);
		return;
	}
	if (s->relay) {
		relay_reply(p, f, payload, len, sip, sport, now);
		return;
	}
	/* The same payload limit as the other direction, with or without AUTH. */
	if (len > LS_MAX_PAYLOAD) {
		drop_s(p, s, LS_DROP_OVERSIZE);
		return;
	}
	/* Checked for the larger header a block member gets: an encoder must only see
	 * what is sent, or the client could rebuild a reply that was dropped. */
	enc = px_fec_enc(s, f);
	total = ls_hdr_len(enc && len <= LS_FEC_MAX_DATA ? LS_VER_FEC : LS_VER_PLAIN,
			   s->auth ? LS_F_AUTH : 0) + len + (s->auth ? LS_TAG_LEN : 0);
	nto = admit_paths(p, s, to, reply_paths(s, false, now, to), total, now);
	if (!nto)
		return;
	memset(&h, 0, sizeof(h));
	h.version = LS_VER_PLAIN;
	h.seq = s->tx_seq++;
	h.ts_us = (uint32_t)now;
	h.src_ip = sip;
	h.src_port = sport;
	h.dst_ip = f->src_ip;
	h.dst_port = f->src_port;
	if (enc)
		full = ls_fec_enc_add(enc, payload, len, now, &h);
	total = ls_seal_in_place(&key, &h, payload, len, &pkt);
	s->last_us = now;
	f->last_us = now;
	/* Sealed once; the same datagram to every data path (1.9). */
	for (unsigned i = 0; i < nto; i++) {
		tx_push(p, p->tun_fd, pkt, total, &to[i]->addr, i ? TX_COPY : TX_REPLY, s, len);
		tx_meta[tx_n - 1].pa = to[i];
	}
	if (s->fec)
		dp_fec_auto_sent(&s->fec->au, now);
	if (enc) {
		/* Held parity follows the next data packet, then a full block's parity. */
		f->fec_src_ip = sip;
		f->fec_src_port = sport;
		send_held(p, f, now);
		if (full)
			close_block(p, f, now);
		fec_pending(p, f);
	}
}

void px_flow_readable(struct px *p, struct px_flow *f)
{
	int total = 0;

	while (total < RX_PER_WAKE && f->ev.fd >= 0) {
		uint8_t(*slots)[LS_RX_BUF] = rx_prepare(p, FRESH_HEADROOM,
							LS_RX_BUF - FRESH_HEADROOM - LS_TAG_LEN);
		int n = recvmmsg(f->ev.fd, rx_msg, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rx_used += (unsigned)n;
		uint64_t now = ls_now_us();
		for (int i = 0; i < n; i++)
			flow_reply(p, f, slots[i] + FRESH_HEADROOM, rx_msg[i].msg_len,
				   rx_msg[i].msg_hdr.msg_flags, &rx_from[i], now);
		total += n;
		if (n < RX_BATCH)
			break;
	}
}
