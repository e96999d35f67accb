/* lightspeed-client: the packet paths. Per datagram nothing here allocates, logs or
 * formats; the clock is read once per batch and the kernel is entered once per batch
 * and direction. */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void txq_init(struct client_txq *q)
{
	for (int i = 0; i < CL_TXQ; i++) {
		q->msg[i].msg_hdr.msg_iov = &q->iov[i];
		q->msg[i].msg_hdr.msg_iovlen = 1;
		q->msg[i].msg_hdr.msg_name = &q->to[i];
		q->msg[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
	}
}

int client_io_init(struct client *c)
{
	struct client_io *io = calloc(1, sizeof(*io));

	if (!io)
		return -1;
	for (int i = 0; i < CL_BATCH; i++) {
		/* Room in front for the headers and behind for the tag; the slot is still
		 * larger than any valid payload, so an oversized one shows as such. */
		io->up_rx_iov[i].iov_base = io->up_buf[i] + CL_HEADROOM;
		io->up_rx_iov[i].iov_len = LS_RX_BUF - CL_HEADROOM - LS_TAG_LEN;
		io->up_rx[i].msg_hdr.msg_iov = &io->up_rx_iov[i];
		io->up_rx[i].msg_hdr.msg_iovlen = 1;
		io->up_rx[i].msg_hdr.msg_name = &io->up_from[i];

		io->down_rx_iov[i].iov_base = io->down_buf[i];
		io->down_rx_iov[i].iov_len = LS_RX_BUF;
		io->down_rx[i].msg_hdr.msg_iov = &io->down_rx_iov[i];
		io->down_rx[i].msg_hdr.msg_iovlen = 1;
		io->down_rx[i].msg_hdr.msg_name = &io->down_from[i];
	}
	txq_init(&io->up);
	txq_init(&io->down);
	c->io = io;
	return 0;
}

/* One recvmmsg; MSG_TRUNC makes msg_len the datagram's real size. */
static int recv_batch(int fd, struct mmsghdr *m)
{
	int n;

	for (int i = 0; i < CL_BATCH; i++) {
		m[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
		m[i].msg_hdr.msg_flags = 0;
	}
	do
		n = recvmmsg(fd, m, CL_BATCH, MSG_TRUNC | MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	return n;
}

/* sendmmsg until every message went or failed; a refused one is counted and skipped
 * (a game datagram late is worse than lost). The upstream queue goes into the
 * tunnel, the downstream one to the game sockets. */
void client_txq_flush(struct client *c, struct client_txq *q)
{
	bool up = q == &c->io->up;

	/* Capture mode: replies go back from their servers' addresses (a raw socket). */
	if (!up && c->capm && q->n) {
		client_capture_mode_send(c, q);
		return;
	}
	int fd = up ? c->tunnel_fd : c->local_fd;
	uint64_t *pkts = up ? &c->ctr.tunnel_tx_packets : &c->ctr.delivered_packets;
	uint64_t *bytes = up ? &c->ctr.tunnel_tx_bytes : &c->ctr.delivered_bytes;
	unsigned i = 0;

	while (i < q->n) {
		int r = sendmmsg(fd, q->msg + i, q->n - i, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			c->ctr.drops[LS_DROP_SEND_ERROR]++;
			i++;
			continue;
		}
		for (int k = 0; k < r; k++, i++) {
			(*pkts)++;
			*bytes += q->iov[i].iov_len;
		}
	}
	q->n = 0;
}

unsigned client_txq_slot(struct client *c, struct client_txq *q)
{
	if (q->n == CL_TXQ)
		client_txq_flush(c, q);
	return q->n++;
}

void client_txq_put(struct client_txq *q, unsigned i, void *data, size_t len,
		    const struct sockaddr_in *to)
{
	q->iov[i].iov_base = data;
	q->iov[i].iov_len = len;
	q->to[i] = *to;
}

bool client_send_control(struct client *c, const struct sockaddr_in *to, const uint8_t *buf,
			 size_t len)
{
	ssize_t n = sendto(c->tunnel_fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)to,
			   sizeof(*to));

	if (n < 0) {
		c->ctr.drops[LS_DROP_SEND_ERROR]++;
		return false;
	}
	c->ctr.tunnel_tx_packets++;
	c->ctr.tunnel_tx_bytes += (uint64_t)n;
	return true;
}

/* ---- flow table: game sockets that sent to us --------------------------------- */

static struct client_flow *flow_find(struct client *c, uint32_t ip, uint16_t port)
{
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++)
		if (c->flows[i].port == port && c->flows[i].ip == ip && port != 0)
			return &c->flows[i];
	return NULL;
}

/* Record a game socket. With the table full the least recently active one goes: a
 * game that opens a new socket uses it, not the oldest. */
static struct client_flow *flow_touch(struct client *c, uint32_t ip, uint16_t port,
				      uint64_t now_us)
{
	struct client_flow *f = flow_find(c, ip, port), *lru = NULL;

	if (!f) {
		for (unsigned i = 0; i < CL_MAX_FLOWS; i++) {
			if (c->flows[i].port == 0) {
				f = &c->flows[i];
				c->n_flows++;
				break;
			}
			if (!lru || c->flows[i].last_us < lru->last_us)
				lru = &c->flows[i];
		}
		if (!f) {
			f = lru;
			client_fec_flow_gone(c, f);
			client_direct_flow_gone(c, f);
		}
		f->ip = ip;
		f->port = port;
		client_fec_flow_new(c, f);
	}
	f->last_us = now_us;
	return f;
}

void client_flows_expire(struct client *c, uint64_t now_us)
{
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++) {
		struct client_flow *f = &c->flows[i];
		if (f->port != 0 && now_us - f->last_us >= CL_FLOW_IDLE_US) {
			client_fec_flow_gone(c, f);
			client_direct_flow_gone(c, f);
			memset(f, 0, sizeof(*f));
			c->n_flows--;
		}
	}
}

/* ---- game -> tunnel ------------------------------------------------------------ */

/* A game datagram (payload at slot + CL_HEADROOM) into the upstream queue towards r.
 * Before a keyed route's first lifetime (one round trip) it waits in the hold, when
 * may_hold and there is room, else it is dropped as `handshake`. */
static void up_one(struct client *c, struct client_route *r, uint8_t *slot, size_t len,
		   const struct sockaddr_in *from, const struct sockaddr_in *dst, uint64_t now,
		   bool may_hold)
{
	struct client_io *io = c->io;
	uint32_t ip = ntohl(from->sin_addr.s_addr);
	uint16_t port = ntohs(from->sin_port);
	struct client_flow *f = flow_touch(c, ip, port, now);
	struct ls_hdr h = {
		.version = LS_VER_PLAIN,
		.src_ip = ip,
		.src_port = port,
		.dst_ip = ntohl(dst->sin_addr.s_addr),
		.dst_port = ntohs(dst->sin_port),
	};
	struct client_hold *hd = &io->hold;
	uint8_t to[CL_MAX_PATHS];
	unsigned nto;
	uint8_t *start;
	size_t wire;
	bool full;

	if (r->direct) {
		/* No tunnel: the game server itself, from this game socket's own socket. */
		f->srv_ip = h.dst_ip;
		f->srv_port = h.dst_port;
		f->route = r;
		client_direct_send(c, f, slot + CL_HEADROOM, len, dst);
		return;
	}
	if (!client_route_sendable(r, now)) {
		if (may_hold && hd->n < CL_HOLD) {
			memcpy(hd->buf[hd->n] + CL_HEADROOM, slot + CL_HEADROOM, len);
			hd->len[hd->n] = (uint16_t)len;
			hd->from[hd->n] = *from;
			hd->dst[hd->n] = *dst;
			hd->at[hd->n] = now;
			hd->n++;
		} else {
			c->ctr.drops[LS_DROP_HANDSHAKE]++;
		}
		return;
	}
	/* A block carries one game server on one route: a change closes it first. */
	if (f->enc && (f->srv_ip != h.dst_ip || f->srv_port != h.dst_port || f->route != r))
		client_fec_close_flow(c, f, now);
	f->srv_ip = h.dst_ip;
	f->srv_port = h.dst_port;
	f->route = r;
	/* With an encoder the packet joins its flow's open block (or goes as version 1
	 * when FEC is off or it is too long to protect). */
	full = f->enc && ls_fec_enc_add(f->enc, slot + CL_HEADROOM, len, now, &h);
	wire = client_route_wrap(r, &h, slot, len, now, &start);
	/* Sealed once, end to end; then the same datagram along each path the mode
	 * gives it (1.9). */
	nto = client_route_targets(r, false, now, to);
	for (unsigned i = 0; i < nto; i++)
		client_queue_on(c, r, to[i], start, wire, now);
	dp_fec_auto_sent(&c->fec.au, now);
	if (f->enc)
		client_fec_sent(c, r, f, full, now);
}

void client_hold_release(struct client *c, uint64_t now_us)
{
	struct client_hold *hd = &c->io->hold;
	struct client_route *r;

	if (!hd->n)
		return;
	r = client_up_route(c, now_us);
	if (!r || !client_route_sendable(r, now_us)) {
		/* Still no lifetime after a while: the held packets are too old to matter. */
		if (now_us - hd->at[0] >= CL_HOLD_US) {
			c->ctr.drops[LS_DROP_HANDSHAKE] += hd->n;
			hd->n = 0;
		}
		return;
	}
	for (unsigned i = 0; i < hd->n; i++) {
		if (now_us - hd->at[i] >= CL_HOLD_US)
			c->ctr.drops[LS_DROP_HANDSHAKE]++;
		else
			up_one(c, r, hd->buf[i], hd->len[i], &hd->from[i], &hd->dst[i], now_us, false);
	}
	/* Out now: the queue points into the hold. */
	client_txq_flush(c, &c->io->up);
	client_direct_flush(c);
	hd->n = 0;
}


void client_fwd_up(struct client *c)
{
	struct client_io *io = c->io;

	for (int round = 0; round < CL_BATCHES_PER_WAKE; round++) {
		int n = c->capm ? client_capture_mode_recv(c, io->up_rx, CL_BATCH, io->up_dst) :
				  recv_batch(c->local_fd, io->up_rx);
		if (n <= 0)
			return;
		uint64_t now = ls_now_us();
		/* Read once per batch: set_route runs between batches, never inside. */
		struct client_route *r = client_up_route(c, now);
		if (!r) {
			/* No route yet (a controller adds them): counted, never queued. */
			c->ctr.game_rx_packets += (unsigned)n;
			for (int i = 0; i < n; i++)
				c->ctr.game_rx_bytes += io->up_rx[i].msg_len;
			c->ctr.drops[LS_DROP_NO_ROUTE] += (unsigned)n;
			if (n < CL_BATCH)
				return;
			continue;
		}

		for (int i = 0; i < n; i++) {
			const struct msghdr *mh = &io->up_rx[i].msg_hdr;
			size_t len = io->up_rx[i].msg_len;

			c->ctr.game_rx_packets++;
			c->ctr.game_rx_bytes += len;
			if (len > LS_MAX_PAYLOAD || (mh->msg_flags & MSG_TRUNC)) {
				c->ctr.drops[LS_DROP_OVERSIZE]++;
				continue;
			}
			/* Redirect mode sends to the one game server; capture mode to where each
			 * datagram was going, on its server's route. */
			const struct sockaddr_in *dst = &c->game_server;
			struct client_route *ri = r;
			if (c->capm) {
				dst = &io->up_dst[i];
				if (dst->sin_port == 0) {
					c->ctr.drops[LS_DROP_MALFORMED]++;
					continue;
				}
				ri = client_capture_mode_route(c, dst, r, now);
			}
			up_one(c, ri, io->up_buf[i], len, &io->up_from[i], dst, now, true);
		}
		client_txq_flush(c, &io->up);
		client_direct_flush(c);
		if (c->capm)
			client_capture_mode_events(c);
		if (n < CL_BATCH)
			return;
	}
}

/* ---- tunnel -> game ------------------------------------------------------------ */


/* An end-to-end datagram from route r's egress, arrived along path i (straight, or
 * unwrapped from a relay hop): the checks of 1.3, then delivery. buf is where it lies
 * (writable: the payload is delivered from there). */
static void down_one(struct client *c, struct client_route *r, int i, uint8_t *buf,
		     const struct ls_pkt *pkt, uint64_t now)
{
	struct client_io *io = c->io;
	struct client_meas *m = client_route_pmeas(r, (unsigned)i);
	bool multi = client_route_multipath(r);
	enum ls_drop why = LS_DROP_MALFORMED;

	if (r->npaths)
		r->paths[i].copies++;
	switch (client_route_receive(r, buf, pkt, m, multi, now, &why)) {
	case CL_RX_DROP:
		c->ctr.drops[why]++;
		if (why == LS_DROP_DUPLICATES && r->npaths)
			r->paths[i].duplicates++;
		return;
	case CL_RX_KA_REQUEST: {
		/* The egress validates this path's address this way (1.6): answer at once,
		 * the way it came. */
		uint8_t ans[LS_MAX_OVERHEAD], k, mm;
		size_t alen;
		client_fec_ask(c, &k, &mm);
		alen = client_route_ka_reply(r, &pkt->h, k, mm, ans);
		if (alen)
			client_send_on(c, r, (unsigned)i, ans, alen, now);
		return;
	}
	case CL_RX_HANDSHAKE: {
		/* The CONFIRM goes back the way the REPLY came: its cookie names that
		 * address. */
		uint8_t hs[LS_HS_MAX_LEN];
		size_t hlen = client_route_hs_due(r, now, hs);
		r->hs_path = (uint8_t)i;
		if (hlen)
			client_send_on(c, r, (unsigned)i, hs, hlen, now);
		return;
	}
	case CL_RX_KA_REPLY:
		c->ctr.keepalive_replies++;
		if (r == c->cur && (!multi || i == r->data_path))
			client_fec_report(c, r, m, now);
		return;
	case CL_RX_CONSUMED:
		return;
	case CL_RX_DATA:
		break;
	}
	struct client_flow *f = flow_find(c, pkt->h.dst_ip, pkt->h.dst_port);
	/* Put back on the machine only what comes from a server the game sent to. */
	if (f && c->capm && !client_capture_mode_known(c, pkt->h.src_ip, pkt->h.src_port)) {
		c->ctr.drops[LS_DROP_UNEXPECTED_SOURCE]++;
		client_meas_data(m, false);
		return;
	}
	if (!f) {
		c->ctr.drops[LS_DROP_UNKNOWN_FLOW]++;
		client_meas_data(m, false);
		return;
	}
	/* The first game packet through a new route closes the switch's gap (published
	 * by the loop). */
	if (c->gap_to == r && !c->gap_ready) {
		c->gap_us = now - c->gap_from_us;
		c->gap_ready = true;
	}
	c->last_delivered_us = now;
	/* The payload stays where it arrived; only its place is computed. */
	uint8_t *payload = buf + (pkt->payload - buf);
	if (pkt->h.version == LS_VER_FEC) {
		client_fec_down(c, r, f, pkt, payload, now);
		return;
	}
	struct sockaddr_in to = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(pkt->h.dst_ip),
		.sin_port = htons(pkt->h.dst_port),
	};
	unsigned slot = client_txq_slot(c, &io->down);
	client_txq_put(&io->down, slot, payload, pkt->payload_len, &to);
	io->down.from[slot] = (struct sockaddr_in){ .sin_family = AF_INET,
						    .sin_addr.s_addr = htonl(pkt->h.src_ip),
						    .sin_port = htons(pkt->h.src_port) };
}

/* A datagram from the relay of route r's path i (1.9): the hop's own checks and
 * control, and a relay hop's payload on to down_one. */
static void down_hop(struct client *c, struct client_route *r, int i, uint8_t *buf,
		     const struct ls_pkt *pkt, uint64_t now)
{
	struct client_route *hop = r->paths[i].hop;
	enum ls_drop why = LS_DROP_MALFORMED;
	struct ls_pkt inner;
	uint8_t *ibuf;
	int rc;

	switch (client_route_receive(hop, buf, pkt, &hop->m, false, now, &why)) {
	case CL_RX_DROP:
		c->ctr.drops[why]++;
		return;
	case CL_RX_KA_REQUEST: {
		/* The relay validates our address (1.6). */
		uint8_t ans[LS_MAX_OVERHEAD];
		size_t alen = client_route_ka_reply(hop, &pkt->h, 0, 0, ans);
		if (alen)
			client_send_control(c, &hop->proxy, ans, alen);
		return;
	}
	case CL_RX_HANDSHAKE: {
		uint8_t hs[LS_HS_MAX_LEN];
		size_t hlen = client_route_hs_due(hop, now, hs);
		if (hlen)
			client_send_control(c, &hop->proxy, hs, hlen);
		return;
	}
	case CL_RX_KA_REPLY:
		c->ctr.keepalive_replies++;
		return;
	case CL_RX_CONSUMED:
		return;
	case CL_RX_DATA:
		break;
	}
	/* Data from a relay is a relay hop from the egress this path leads to. */
	if (pkt->h.version != LS_VER_RELAY) {
		c->ctr.drops[LS_DROP_MALFORMED]++;
		return;
	}
	if (pkt->h.src_ip != ntohl(r->paths[i].next_hop.sin_addr.s_addr) ||
	    pkt->h.src_port != ntohs(r->paths[i].next_hop.sin_port)) {
		c->ctr.drops[LS_DROP_UNEXPECTED_SOURCE]++;
		return;
	}
	ibuf = buf + (pkt->payload - buf);
	rc = ls_pkt_decode(ibuf, pkt->payload_len, &inner);
	if (rc != LS_PE_OK || inner.h.version == LS_VER_RELAY) {
		c->ctr.drops[rc != LS_PE_OK ? ls_drop_from_decode(rc) : LS_DROP_MALFORMED]++;
		return;
	}
	down_one(c, r, i, ibuf, &inner, now);
}

void client_fwd_down(struct client *c)
{
	struct client_io *io = c->io;

	for (int round = 0; round < CL_BATCHES_PER_WAKE; round++) {
		int n = recv_batch(c->tunnel_fd, io->down_rx);
		if (n <= 0)
			return;
		uint64_t now = ls_now_us();

		for (int i = 0; i < n; i++) {
			const struct msghdr *mh = &io->down_rx[i].msg_hdr;
			size_t len = io->down_rx[i].msg_len;
			const struct sockaddr_in *from = &io->down_from[i];
			uint8_t *buf = io->down_buf[i];
			struct client_route *r;
			struct ls_pkt pkt;
			int rc, path = 0;

			c->ctr.tunnel_rx_packets++;
			c->ctr.tunnel_rx_bytes += len;
			if (!client_table_knows(c, from)) {
				c->ctr.drops[LS_DROP_UNEXPECTED_SOURCE]++;
				continue;
			}
			if (len > LS_MAX_RELAY_DATAGRAM || (mh->msg_flags & MSG_TRUNC)) {
				c->ctr.drops[LS_DROP_OVERSIZE]++;
				continue;
			}
			rc = ls_pkt_decode(buf, len, &pkt);
			if (rc != LS_PE_OK) {
				c->ctr.drops[ls_drop_from_decode(rc)]++;
				continue;
			}
			r = client_way_for(c, from, &pkt, &path);
			if (!r) {
				c->ctr.drops[LS_DROP_UNEXPECTED_SOURCE]++;
				continue;
			}
			if (r->npaths && r->paths[path].relay)
				down_hop(c, r, path, buf, &pkt, now);
			else if (pkt.h.version == LS_VER_RELAY)
				c->ctr.drops[LS_DROP_MALFORMED]++; /* only a relay sends relay hops */
			else
				down_one(c, r, path, buf, &pkt, now);
		}
		client_txq_flush(c, &io->down);
		client_ctl_route_events(c);
		if (n < CL_BATCH)
			return;
	}
}
