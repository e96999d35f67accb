/* lightspeed-proxy packet paths (docs/protocol.md 1.3-1.6): tunnel datagrams in,
 * payloads out to game servers, replies wrapped back. Per packet there is no
 * allocation, no logging and no formatting: datagrams are read and sent in batches
 * through static buffers, and every outcome is a counter. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "proto.h"
#include "util.h"

#define RX_BATCH    32   /* datagrams per recvmmsg */
#define RX_PER_WAKE 256  /* per socket and wake-up, so no socket starves the others */
#define TXQ         (2 * RX_BATCH) /* sends queued before a flush: a datagram can cause two */
#define CTL_LEN     48   /* room for any control packet (36 bytes at most) */
/* Replies are read behind room for the headers, so they are wrapped in place. */
#define HEADROOM    (LS_HDR_LEN + LS_FEC_EXT_LEN + LS_AUTH_ID_LEN)
#define FRESH_US    10000000 /* ts_us freshness: 10 s (1.3) */
#define REVALIDATE_US 1000000

static uint8_t rx_buf[RX_BATCH][LS_RX_BUF];
static struct mmsghdr rx_msg[RX_BATCH];
static struct iovec rx_iov[RX_BATCH];
static struct sockaddr_in rx_from[RX_BATCH];

enum tx_kind { TX_FORWARD, TX_REPLY, TX_CONTROL, TX_PARITY };

struct tx_meta {
	int fd;
	enum tx_kind kind;
	struct px_session *s; /* NULL for a stateless answer */
	size_t payload;       /* game bytes, for the forwarded/reply counters */
};

static struct mmsghdr tx_msg[TXQ];
static struct iovec tx_iov[TXQ];
static struct sockaddr_in tx_to[TXQ];
static struct tx_meta tx_meta[TXQ];
static uint8_t tx_ctl[TXQ][CTL_LEN];
/* Datagrams with no receive buffer of their own (recovered packets, parity), by slot:
 * touched only when FEC is in use. */
static uint8_t tx_big[TXQ][LS_MAX_DATAGRAM];
static int tx_n;

static inline void drop(struct px *p, enum px_drop why)
{
	p->ctr.drops[why]++;
}

static inline void drop_s(struct px *p, struct px_session *s, enum px_drop why)
{
	p->ctr.drops[why]++;
	s->drops++;
}

static enum px_drop decode_drop(int rc)
{
	switch (rc) {
	case LS_PE_VERSION: return PX_DROP_BAD_VERSION;
	case LS_PE_FEC_RANGE: return PX_DROP_FEC_RANGE;
	case LS_PE_OVERSIZE: return PX_DROP_OVERSIZE;
	default: return PX_DROP_MALFORMED; /* LS_PE_SHORT, LS_PE_FLAGS */
	}
}

static inline bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* ---- sending ------------------------------------------------------------------- */

static void tx_done(struct px *p, int i)
{
	struct tx_meta *m = &tx_meta[i];
	size_t len = tx_iov[i].iov_len;

	if (m->kind == TX_FORWARD) {
		p->ctr.forwarded_packets++;
		p->ctr.forwarded_bytes += m->payload;
		return;
	}
	if (m->kind == TX_REPLY) {
		p->ctr.reply_packets++;
		p->ctr.reply_bytes += m->payload;
	}
	p->ctr.tx_packets++;
	p->ctr.tx_bytes += len;
	if (m->s) {
		m->s->tx_packets++;
		m->s->tx_bytes += len;
	}
}

void px_tx_flush(struct px *p)
{
	int i = 0;

	/* Every queued send uses the same socket: the queue is flushed when it changes. */
	while (i < tx_n) {
		int r = sendmmsg(tx_meta[i].fd, tx_msg + i, (unsigned)(tx_n - i), 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* The first message was refused (full buffer, unreachable, port 0):
			 * count it and go on with the rest. */
			drop(p, PX_DROP_SEND_ERROR);
			if (tx_meta[i].s)
				tx_meta[i].s->drops++;
			i++;
			continue;
		}
		for (int j = i; j < i + r; j++)
			tx_done(p, j);
		i += r;
	}
	tx_n = 0;
}

static int tx_slot(struct px *p, int fd)
{
	if (tx_n && (tx_n == TXQ || tx_meta[tx_n - 1].fd != fd))
		px_tx_flush(p);
	return tx_n++;
}

static void tx_fill(int i, int fd, uint8_t *data, size_t len, const struct sockaddr_in *to,
		    enum tx_kind kind, struct px_session *s, size_t payload)
{
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

/* data must stay valid until the flush: the receive buffers do, within a batch. */
static void tx_push(struct px *p, int fd, uint8_t *data, size_t len,
		    const struct sockaddr_in *to, enum tx_kind kind, struct px_session *s,
		    size_t payload)
{
	tx_fill(tx_slot(p, fd), fd, data, len, to, kind, s, payload);
}

/* A control packet built on the stack goes into the queue's own storage. */
static void tx_push_ctl(struct px *p, struct px_session *s, const uint8_t *pkt, size_t len,
			const struct sockaddr_in *to)
{
	int i = tx_slot(p, p->tun_fd);

	memcpy(tx_ctl[i], pkt, len);
	tx_fill(i, p->tun_fd, tx_ctl[i], len, to, TX_CONTROL, s, 0);
}

/* Until the client address is validated it gets no more bytes than it sent (1.6).
 * Echoes to another address are never larger than the request they answer. */
static bool budget_take(struct px_session *s, const struct sockaddr_in *to, size_t len)
{
	if (s->validated || !same_addr(to, &s->client))
		return true;
	if (s->unval_tx + len > s->unval_rx)
		return false;
	s->unval_tx += len;
	return true;
}

/* KEEPALIVE or FIN, version 1, authenticated when the session is. s may be NULL
 * (a stateless FIN answer without auth). */
static size_t build_ctl(struct px_session *s, uint8_t flags, uint16_t seq, uint32_t ts,
			const struct ls_keepalive *ka, uint8_t *out)
{
	struct ls_hdr h;
	size_t n;

	memset(&h, 0, sizeof(h));
	h.version = LS_VER_PLAIN;
	h.flags = flags;
	h.seq = seq;
	h.ts_us = ts;
	if (ka)
		ls_keepalive_to_hdr(ka, &h);
	if (s && s->auth) {
		h.flags |= LS_F_AUTH;
		h.token = (uint8_t)s->id;
		h.session_id = s->id;
	}
	n = ls_hdr_encode(&h, out);
	if (s && s->auth) {
		ls_mac_tag(&s->mac, out, n, out + n);
		n += LS_TAG_LEN;
	}
	return n;
}

/* Our reception report. The proxy asks nothing of the client's FEC (fec_k 0): the
 * client's setting governs its upstream. */
static void fill_report(struct px_session *s, uint8_t kind, struct ls_keepalive *ka)
{
	memset(ka, 0, sizeof(*ka));
	ls_rx_report(&s->rx, ka);
	ka->kind = kind;
}

/* A KEEPALIVE request with a random ts_us to the client address: its echo proves the
 * client can receive there (1.6). */
static void send_challenge(struct px *p, struct px_session *s, uint64_t now)
{
	uint8_t pkt[CTL_LEN];
	struct ls_keepalive ka;
	uint16_t seq = (uint16_t)(s->tx_seq + 1);
	uint32_t ts = (uint32_t)px_random(p);
	size_t n;

	fill_report(s, LS_KA_REQUEST, &ka);
	n = build_ctl(s, LS_F_KEEPALIVE, seq, ts, &ka, pkt);
	if (!budget_take(s, &s->client, n))
		return;
	s->tx_seq = seq;
	s->chal_seq = seq;
	s->chal_ts = ts;
	s->chal_pending = true;
	s->chal_us = now;
	tx_push_ctl(p, s, pkt, n, &s->client);
}

void px_revalidate(struct px *p, struct px_session *s, uint64_t now)
{
	/* A lost request would otherwise leave the address on its byte budget for good;
	 * the budget itself keeps these from flooding an address that sends nothing. */
	if (s->has_client && !s->validated &&
	    (!s->chal_pending || now - s->chal_us >= REVALIDATE_US))
		send_challenge(p, s, now);
}

void px_send_fins(struct px *p)
{
	uint32_t ts = (uint32_t)ls_now_us();

	for (struct px_session *s = p->tab.head; s; s = s->next) {
		uint8_t pkt[CTL_LEN];
		size_t n;

		if (!s->has_client || !s->validated)
			continue;
		s->tx_seq++;
		n = build_ctl(s, LS_F_FIN, s->tx_seq, ts, NULL, pkt);
		tx_push_ctl(p, s, pkt, n, &s->client);
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
 * rebuilt one, valid only during this call, is copied into the queue's own storage. */
static void fwd_deliver(void *arg, const uint8_t *payload, size_t len)
{
	struct fwd_ctx *x = arg;
	int fd = x->f->ev.fd, i;

	if (!rate_ok(x->s, len, x->now)) {
		drop_s(x->p, x->s, PX_DROP_RATE_LIMITED);
		return;
	}
	if (payload == x->arrived) {
		tx_push(x->p, fd, x->arrived_w, len, &x->to, TX_FORWARD, x->s, len);
		return;
	}
	i = tx_slot(x->p, fd);
	memcpy(tx_big[i], payload, len);
	tx_fill(i, fd, tx_big[i], len, &x->to, TX_FORWARD, x->s, len);
}

static void forward(struct px *p, struct px_session *s, const struct ls_hdr *h,
		    uint8_t *payload, size_t len, uint64_t now)
{
	bool fec = h->version == LS_VER_FEC;
	struct fwd_ctx x = { .p = p, .s = s, .arrived = payload, .arrived_w = payload, .now = now };
	struct px_flow *f;

	/* A parity packet names the flow's destination like data does, and is checked
	 * the same way: what it rebuilds goes there. */
	if (!ls_addr_permitted(&p->conf.proxy.allow, h->dst_ip)) {
		drop_s(p, s, PX_DROP_DENIED_DESTINATION);
		return;
	}
	if (s->ndests && !dest_allowed(s, h->dst_ip, h->dst_port)) {
		drop_s(p, s, PX_DROP_NOT_ALLOWED);
		return;
	}
	/* FEC traffic is rate-checked packet by packet as the decoder delivers it. */
	if (!fec && !rate_ok(s, len, now)) {
		drop_s(p, s, PX_DROP_RATE_LIMITED);
		return;
	}
	f = px_flow_find(s, h->src_ip, h->src_port);
	if (!f) {
		f = px_flow_new(p, s, h->src_ip, h->src_port, now);
		if (!f) {
			drop_s(p, s, PX_DROP_FLOW_LIMIT);
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
		tx_push(p, f->ev.fd, payload, len, &x.to, TX_FORWARD, s, len);
		return;
	}
	if (px_fec_dec(f))
		ls_fec_dec_add(f->dec, h, payload, len, now, fwd_deliver, &x);
	else if (!h->fec_k || h->fec_index < h->fec_k)
		fwd_deliver(&x, payload, len); /* no decoder (out of memory): data still goes */
}

static void answer_keepalive(struct px *p, struct px_session *s, const struct ls_hdr *h,
			     const struct sockaddr_in *from)
{
	uint8_t pkt[CTL_LEN];
	struct ls_keepalive ka;
	size_t n;

	fill_report(s, LS_KA_REPLY, &ka);
	n = build_ctl(s, LS_F_KEEPALIVE, h->seq, h->ts_us, &ka, pkt);
	/* The client's first probe pays for the validation challenge, so its echo usually
	 * does not fit the budget: the client misses one RTT sample, no data is lost, and
	 * nothing is counted as dropped (1.6). */
	if (!budget_take(s, from, n)) {
		p->ctr.keepalives_unanswered++;
		return;
	}
	tx_push_ctl(p, s, pkt, n, from);
}

static void answer_fin(struct px *p, struct px_session *s, const struct ls_hdr *h,
		       const struct sockaddr_in *from)
{
	uint8_t pkt[CTL_LEN];
	size_t n = build_ctl(s, LS_F_FIN, h->seq, h->ts_us, NULL, pkt);

	if (!s) {
		tx_push_ctl(p, NULL, pkt, n, from);
		return;
	}
	if (budget_take(s, from, n))
		tx_push_ctl(p, s, pkt, n, from);
	else
		drop_s(p, s, PX_DROP_UNVALIDATED_LIMIT);
	/* Out before the session's sockets close (which flushes anyway) and before its
	 * state resets. */
	px_tx_flush(p);
	px_session_end(p, s, PX_END_FIN);
}

/* An AUTH datagram: the checks of 1.3 in their order. Returns the session, or NULL
 * when dropped. *moved tells that the client address changed (roaming). */
static struct px_session *auth_check(struct px *p, const struct ls_pkt *pkt, const uint8_t *buf,
				     bool echo, const struct sockaddr_in *from, bool *moved)
{
	const struct ls_hdr *h = &pkt->h;
	struct px_session *s = px_session_by_id(&p->tab, h->session_id);
	uint64_t ext;

	if (!s) {
		drop(p, PX_DROP_UNKNOWN_SESSION);
		return NULL;
	}
	/* Forged ids are free to send, so a bad tag is not charged to the session. */
	if (h->token != (uint8_t)s->id || !ls_mac_verify(&s->mac, buf, pkt->signed_len, pkt->tag)) {
		drop(p, PX_DROP_BAD_TAG);
		return NULL;
	}
	/* Echoes take no seq of their own: no replay window, no roaming (1.4). */
	if (echo)
		return s;
	if (!ls_replay_check(&s->replay, h->seq, &ext)) {
		drop_s(p, s, PX_DROP_REPLAY);
		return NULL;
	}
	if (s->ts_any && (int32_t)(h->ts_us - s->newest_ts) < -FRESH_US) {
		drop_s(p, s, PX_DROP_REPLAY);
		return NULL;
	}
	bool newest = ls_replay_accept(&s->replay, ext);
	if (!s->ts_any || (int32_t)(h->ts_us - s->newest_ts) > 0) {
		s->newest_ts = h->ts_us;
		s->ts_any = true;
	}
	ls_rx_note(&s->rx, ext);
	/* A first address is taken from any authentic packet (even a reordered one);
	 * an existing one moves only for the newest. */
	if (!s->has_client || (newest && !same_addr(from, &s->client))) {
		bool first = !s->has_client;

		px_session_set_client(p, s, from);
		*moved = true;
		/* A static session has been waiting for a client: now it is up. */
		if (first && s->is_static)
			px_session_up(p, s, true);
	}
	return s;
}

/* A datagram without AUTH, allowed only with --insecure-no-auth: the session is the
 * client's address. */
static struct px_session *addr_check(struct px *p, const struct ls_pkt *pkt, bool echo,
				     const struct sockaddr_in *from, uint64_t now, bool *moved)
{
	const struct ls_hdr *h = &pkt->h;
	struct px_session *s;

	if (p->conf.proxy.require_auth) {
		drop(p, PX_DROP_UNAUTHENTICATED);
		return NULL;
	}
	s = px_session_by_addr(&p->tab, from);
	if (!s) {
		if (echo) {
			/* An echo of a request no session of this address sent. */
			drop(p, PX_DROP_UNKNOWN_SESSION);
			return NULL;
		}
		if (h->flags & LS_F_FIN) {
			/* Nothing to end; the answer still tells the client the route is
			 * gone, and is no larger than the FIN. */
			answer_fin(p, NULL, h, from);
			return NULL;
		}
		if (p->tab.n >= (size_t)p->conf.proxy.max_sessions ||
		    !(s = px_session_add_addr(p, from, now))) {
			drop(p, PX_DROP_SESSION_LIMIT);
			return NULL;
		}
		*moved = true;
		px_session_up(p, s, true);
	}
	if (!echo)
		ls_rx_note(&s->rx, s->rx.any ? ls_seq_extend(s->rx.top, h->seq) : h->seq);
	return s;
}

static void tunnel_packet(struct px *p, uint8_t *buf, size_t len, int mflags,
			  const struct sockaddr_in *from, uint64_t now)
{
	struct ls_pkt pkt;
	struct ls_keepalive ka;
	struct px_session *s;
	bool echo = false, moved = false;
	int rc;

	p->ctr.rx_packets++;
	p->ctr.rx_bytes += len;
	if ((mflags & MSG_TRUNC) || len > LS_MAX_DATAGRAM) {
		drop(p, PX_DROP_OVERSIZE);
		return;
	}
	rc = ls_pkt_decode(buf, len, &pkt);
	if (rc != LS_PE_OK) {
		drop(p, decode_drop(rc));
		return;
	}
	if (pkt.h.flags & LS_F_KEEPALIVE) {
		rc = ls_keepalive_from_hdr(&pkt.h, &ka);
		if (rc != LS_PE_OK) {
			drop(p, rc == LS_PE_FEC_RANGE ? PX_DROP_FEC_RANGE : PX_DROP_MALFORMED);
			return;
		}
		echo = ka.kind == LS_KA_REPLY;
	}
	if (pkt.h.flags & LS_F_AUTH)
		s = auth_check(p, &pkt, buf, echo, from, &moved);
	else
		s = addr_check(p, &pkt, echo, from, now, &moved);
	if (!s)
		return;

	s->rx_packets++;
	s->rx_bytes += len;
	s->last_us = now;
	if (!s->validated && same_addr(from, &s->client))
		s->unval_rx += len;
	if (moved)
		send_challenge(p, s, now);

	if (echo) {
		p->ctr.keepalives++;
		if (s->chal_pending && pkt.h.seq == s->chal_seq && pkt.h.ts_us == s->chal_ts &&
		    same_addr(from, &s->client)) {
			s->validated = true;
			s->chal_pending = false;
		}
		return;
	}
	if (pkt.h.flags & LS_F_KEEPALIVE) {
		p->ctr.keepalives++;
		answer_keepalive(p, s, &pkt.h, from);
		px_fec_client_request(s, &ka, now);
		return;
	}
	if (pkt.h.flags & LS_F_FIN) {
		answer_fin(p, s, &pkt.h, from);
		return;
	}
	/* The payload lies in our own writable buffer; the decoder only hands out a
	 * read-only view of it. */
	forward(p, s, &pkt.h, buf + (pkt.payload - buf), pkt.payload_len, now);
}

static void rx_prepare(size_t headroom, size_t room)
{
	for (int i = 0; i < RX_BATCH; i++) {
		rx_iov[i].iov_base = rx_buf[i] + headroom;
		rx_iov[i].iov_len = room;
		memset(&rx_msg[i].msg_hdr, 0, sizeof(rx_msg[i].msg_hdr));
		rx_msg[i].msg_hdr.msg_name = &rx_from[i];
		rx_msg[i].msg_hdr.msg_namelen = sizeof(rx_from[i]);
		rx_msg[i].msg_hdr.msg_iov = &rx_iov[i];
		rx_msg[i].msg_hdr.msg_iovlen = 1;
	}
}

void px_tunnel_readable(struct px *p)
{
	int total = 0;

	while (total < RX_PER_WAKE) {
		rx_prepare(0, LS_RX_BUF);
		int n = recvmmsg(p->tun_fd, rx_msg, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		uint64_t now = ls_now_us();
		for (int i = 0; i < n; i++) {
			if (rx_msg[i].msg_hdr.msg_namelen < sizeof(struct sockaddr_in) ||
			    rx_from[i].sin_family != AF_INET) {
				p->ctr.rx_packets++;
				p->ctr.rx_bytes += rx_msg[i].msg_len;
				drop(p, PX_DROP_MALFORMED);
				continue;
			}
			tunnel_packet(p, rx_buf[i], rx_msg[i].msg_len, rx_msg[i].msg_hdr.msg_flags,
				      &rx_from[i], now);
		}
		px_tx_flush(p);
		total += n;
		if (n < RX_BATCH)
			break;
	}
}

/* ---- game server -> tunnel ------------------------------------------------------ */

/* Parity rows first_row.. of a flow's block into the tunnel queue. Parity carries the
 * flow's addresses (1.2) and is held to the unvalidated budget like replies. */
static void send_parity(struct px *p, struct px_flow *f, const uint8_t *shards, size_t len,
			uint16_t block, uint8_t k, uint8_t first_row, int count, uint64_t now)
{
	struct px_session *s = f->s;
	uint8_t flags = s->auth ? LS_F_AUTH : 0;
	size_t hlen = ls_hdr_len(LS_VER_FEC, flags);
	size_t total = hlen + len + (s->auth ? LS_TAG_LEN : 0);

	for (int j = 0; j < count && s->has_client; j++) {
		struct ls_hdr h = {
			.version = LS_VER_FEC,
			.flags = flags,
			.token = s->auth ? (uint8_t)s->id : 0,
			.ts_us = (uint32_t)now,
			.src_ip = f->fec_src_ip,
			.src_port = f->fec_src_port,
			.dst_ip = f->src_ip,
			.dst_port = f->src_port,
			.fec_block = block,
			.fec_index = (uint8_t)(k + first_row + j),
			.fec_k = k,
			.session_id = s->id,
		};
		uint8_t *pkt;
		int i;

		if (!budget_take(s, &s->client, total)) {
			drop_s(p, s, PX_DROP_UNVALIDATED_LIMIT);
			continue;
		}
		h.seq = ++s->tx_seq;
		i = tx_slot(p, p->tun_fd);
		pkt = tx_big[i];
		ls_hdr_encode(&h, pkt);
		memcpy(pkt + hlen, shards + (size_t)j * LS_FEC_SHARD_MAX, len);
		if (s->auth)
			ls_mac_tag(&s->mac, pkt, hlen + len, pkt + hlen + len);
		tx_fill(i, p->tun_fd, pkt, total, &s->client, TX_PARITY, s, 0);
		p->fec_ctr.parity_sent++;
	}
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
	px_tx_flush(p);
}

static void flow_reply(struct px *p, struct px_flow *f, uint8_t *payload, size_t len,
		       int mflags, const struct sockaddr_in *from, uint64_t now)
{
	struct px_session *s = f->s;
	uint32_t sip = ntohl(from->sin_addr.s_addr);
	uint16_t sport = ntohs(from->sin_port);
	uint8_t flags = s->auth ? LS_F_AUTH : 0;
	struct ls_fec_enc *enc;
	struct ls_hdr h;
	size_t hlen, total;
	uint8_t *pkt;
	bool full = false;

	if (!px_flow_sent_to(f, sip, sport)) {
		drop_s(p, s, PX_DROP_UNEXPECTED_SOURCE);
		return;
	}
	/* Checked for the larger header a block member gets: an encoder must only see
	 * what is sent, or the client could rebuild a reply that was dropped. */
	enc = px_fec_enc(s, f);
	hlen = ls_hdr_len(enc && len <= LS_FEC_MAX_DATA ? LS_VER_FEC : LS_VER_PLAIN, flags);
	total = hlen + len + (s->auth ? LS_TAG_LEN : 0);
	/* The same limit as the tunnel's other direction: the wrapped datagram. */
	if ((mflags & MSG_TRUNC) || total > LS_MAX_DATAGRAM) {
		drop_s(p, s, PX_DROP_OVERSIZE);
		return;
	}
	if (!s->has_client) {
		/* Flows close when a session loses its client, so this cannot happen;
		 * counted rather than sent nowhere. */
		drop_s(p, s, PX_DROP_SEND_ERROR);
		return;
	}
	if (!budget_take(s, &s->client, total)) {
		drop_s(p, s, PX_DROP_UNVALIDATED_LIMIT);
		return;
	}
	memset(&h, 0, sizeof(h));
	h.version = LS_VER_PLAIN;
	h.flags = flags;
	h.token = s->auth ? (uint8_t)s->id : 0;
	h.seq = ++s->tx_seq;
	h.ts_us = (uint32_t)now;
	h.src_ip = sip;
	h.src_port = sport;
	h.dst_ip = f->src_ip;
	h.dst_port = f->src_port;
	h.session_id = s->id;
	if (enc)
		full = ls_fec_enc_add(enc, payload, len, now, &h);
	hlen = ls_hdr_len(h.version, flags);
	total = hlen + len + (s->auth ? LS_TAG_LEN : 0);
	pkt = payload - hlen;
	ls_hdr_encode(&h, pkt);
	if (s->auth)
		ls_mac_tag(&s->mac, pkt, hlen + len, pkt + hlen + len);
	s->last_us = now;
	f->last_us = now;
	tx_push(p, p->tun_fd, pkt, total, &s->client, TX_REPLY, s, len);
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

	while (total < RX_PER_WAKE) {
		rx_prepare(HEADROOM, LS_RX_BUF - HEADROOM - LS_TAG_LEN);
		int n = recvmmsg(f->ev.fd, rx_msg, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		uint64_t now = ls_now_us();
		for (int i = 0; i < n; i++)
			flow_reply(p, f, rx_buf[i] + HEADROOM, rx_msg[i].msg_len,
				   rx_msg[i].msg_hdr.msg_flags, &rx_from[i], now);
		px_tx_flush(p);
		total += n;
		if (n < RX_BATCH)
			break;
	}
}
