/* lightspeed-client: forward error correction (docs/protocol.md 1.2). Each game socket
 * is one block stream per direction: upstream an encoder, created while FEC is on,
 * whose parity leaves when a block fills or its time runs out; downstream a decoder,
 * created on the first version-2 packet. The setting (off, auto, K:M[:MS]) governs
 * both directions: the proxy learns it from our keepalives. An encoder or decoder is
 * allocated once per game socket, never per packet. */
#include "client.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- encoders ------------------------------------------------------------------ */

/* Out of memory: the flow goes unprotected rather than unsent. */
static void enc_create(struct client_flow *f, const struct ls_fec_params *p)
{
	f->enc = dp_fec_enc_new(p);
}

/* The encoders take new parameters (from their next block); while FEC is on every game
 * socket has one. */
static void apply_up(struct client *c, const struct ls_fec_params *p)
{
	c->fec.up = *p;
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++) {
		struct client_flow *f = &c->flows[i];

		if (f->port == 0)
			continue;
		if (f->enc)
			ls_fec_enc_set(f->enc, p);
		else if (p->k)
			enc_create(f, p);
	}
}

/* Split mode (docs/protocol.md 1.9) sends parity on the paths that do not carry the
 * data: with FEC off it uses this code, whose parity can rebuild a whole block, so the
 * death of the path carrying the data costs no game packet. */
static const struct dp_fec_setting split_default = {
	.mode = DP_FEC_FIXED,
	.p = { .k = 2, .m = 2, .block_us = LS_FEC_BLOCK_US_DEFAULT },
};

/* The setting in force: the user's, unless split needs a code the user left off. */
static const struct dp_fec_setting *in_force(const struct client *c)
{
	return c->fec.split && c->fec.set.mode == DP_FEC_OFF ? &split_default : &c->fec.set;
}

void client_fec_set(struct client *c, const struct dp_fec_setting *s)
{
	struct ls_fec_params p;

	uint64_t now = ls_now_us();

	c->fec.set = *s;
	dp_fec_start(in_force(c), &c->fec.au, now, &p);
	dp_fec_mirror_start(&c->fec.mirror, now);
	apply_up(c, &p);
}

void client_fec_mode_changed(struct client *c)
{
	bool split = c->cur && client_route_mode_now(c->cur) == CL_MODE_SPLIT;

	if (split == c->fec.split)
		return;
	c->fec.split = split;
	if (c->fec.set.mode == DP_FEC_OFF)
		client_fec_set(c, &c->fec.set);
}

void client_fec_ka_request(struct client *c, const struct client_route *r, uint64_t now_us)
{
	struct ls_rx_count rx = r->rx;
	struct ls_keepalive ka;

	if (in_force(c)->mode != DP_FEC_AUTO)
		return;
	/* The report the request will carry, from a copy: the route's count goes on. */
	ls_rx_report(&rx, &ka);
	dp_fec_mirror_report(&c->fec.mirror, &ka, now_us);
}

uint32_t client_fec_ka_ms(const struct client *c, uint64_t now_us)
{
	return dp_fec_ka_ms(in_force(c), &c->fec.au, &c->fec.mirror, (uint32_t)c->conf.keepalive_ms,
			    now_us);
}

void client_fec_ask(const struct client *c, uint8_t *fec_k, uint8_t *fec_m)
{
	dp_fec_to_ask(in_force(c), fec_k, fec_m);
}

void client_fec_flow_new(struct client *c, struct client_flow *f)
{
	f->enc = NULL;
	f->dec = NULL;
	if (c->fec.up.k)
		enc_create(f, &c->fec.up);
}

static void dec_drop(struct client *c, struct client_flow *f)
{
	if (!f->dec)
		return;
	dp_fec_add_dec(&c->fec.ctr, f->dec);
	ls_fec_dec_delete(f->dec);
	f->dec = NULL;
}

void client_fec_flow_gone(struct client *c, struct client_flow *f)
{
	dec_drop(c, f);
	ls_fec_enc_delete(f->enc);
	f->enc = NULL;
}

/* The earliest deadline among the encoders, after f's changed. */
static void noted(struct client *c, const struct client_flow *f)
{
	uint64_t d = ls_fec_enc_deadline(f->enc);

	if (d && (!c->fec.next_us || d < c->fec.next_us))
		c->fec.next_us = d;
}

/* The upstream queue as a parity sink towards one route: each parity datagram is
 * built in a scratch buffer, then copied into the queue along the paths parity takes
 * (1.9: in split mode, the ones that do not carry the data). */
struct parity_ctx {
	struct client *c;
	struct client_route *r;
	uint64_t now_us;
};

static uint8_t *parity_slot(void *arg, size_t wire_len)
{
	struct parity_ctx *x = arg;

	(void)wire_len;
	return x->c->io->scratch;
}

static void parity_queue(void *arg, uint8_t *start, size_t len)
{
	struct parity_ctx *x = arg;
	uint8_t to[CL_MAX_PATHS];
	unsigned n = client_route_targets(x->r, true, x->now_us, to);

	client_route_sent(x->r, x->now_us);
	for (unsigned i = 0; i < n; i++)
		client_queue_copy_on(x->c, x->r, to[i], start, len, x->now_us);
	x->c->fec.ctr.parity_sent++;
}

/* Parity rows first_row.. of a block into the upstream queue towards r. Parity carries
 * the flow's addresses, like its data (1.2). */
static void send_parity(struct client *c, struct client_route *r, const struct client_flow *f,
			const uint8_t *shards, size_t len, uint16_t block, uint8_t k,
			uint8_t first_row, int count, uint64_t now_us)
{
	struct parity_ctx x = { .c = c, .r = r, .now_us = now_us };
	struct ls_parity_sink sink = { .slot = parity_slot, .queue = parity_queue, .ctx = &x };
	struct ls_hdr addrs = {
		.src_ip = f->ip,
		.src_port = f->port,
		.dst_ip = f->srv_ip,
		.dst_port = f->srv_port,
	};
	struct ls_seal key;

	if (count <= 0 || !client_route_sealer(r, &key))
		return;
	ls_parity_send(&key, &addrs, &r->tx_seq, (uint32_t)now_us, shards, len, block, k,
		       first_row, count, &sink);
}

static void close_block(struct client *c, struct client_route *r, struct client_flow *f,
			uint64_t now_us)
{
	const uint8_t *shards;
	size_t len;
	uint16_t block;
	uint8_t k;
	int m = ls_fec_enc_close(f->enc, &shards, &len, &block, &k);

	send_parity(c, r, f, shards, len, block, k, 0, m, now_us);
}

/* Parity of the last closed block that was held back (spread) and is due at t. */
static void send_held(struct client *c, struct client_route *r, struct client_flow *f,
		      uint64_t t, uint64_t now_us)
{
	const uint8_t *shards;
	size_t len;
	uint16_t block;
	uint8_t k, row;
	int n = ls_fec_enc_take_held(f->enc, t, &shards, &len, &block, &k, &row);

	send_parity(c, r, f, shards, len, block, k, row, n, now_us);
}

void client_fec_sent(struct client *c, struct client_route *r, struct client_flow *f,
		     bool full, uint64_t now_us)
{
	send_held(c, r, f, now_us, now_us);
	if (full)
		close_block(c, r, f, now_us);
	noted(c, f);
}

/* One flow's encoder: what is due now goes out; with drain, everything pending, each
 * piece as if its own deadline had come (a few rounds: closing a block may hold back
 * some of its parity). Returns its next deadline. */
static uint64_t flow_blocks(struct client *c, struct client_route *r, struct client_flow *f,
			    uint64_t now_us, bool drain)
{
	uint64_t t = now_us;

	for (int round = 0; round < (drain ? 4 : 1); round++) {
		if (drain) {
			t = ls_fec_enc_deadline(f->enc);
			if (!t)
				break;
			t = t < now_us ? now_us : t;
		}
		send_held(c, r, f, t, now_us);
		if (ls_fec_enc_due(f->enc, t))
			close_block(c, r, f, now_us);
	}
	return ls_fec_enc_deadline(f->enc);
}

/* A flow's blocks go to the route its data went to (capture mode may send flows to
 * servers on different routes); r serves flows without one. Draining for r (r stops
 * being the route) leaves other routes' blocks open. */
static struct client_route *flow_route(struct client_flow *f, struct client_route *r)
{
	return f->route && f->route->used ? f->route : r;
}

static void close_blocks(struct client *c, struct client_route *r, uint64_t now_us, bool drain)
{
	uint64_t next = 0, d;

	for (unsigned i = 0; i < CL_MAX_FLOWS; i++) {
		struct client_flow *f = &c->flows[i];
		struct client_route *fr;

		if (f->port == 0 || !f->enc)
			continue;
		fr = flow_route(f, r);
		if (drain && fr != r)
			d = ls_fec_enc_deadline(f->enc);
		else
			d = fr ? flow_blocks(c, fr, f, now_us, drain) : ls_fec_enc_deadline(f->enc);
		if (d && (!next || d < next))
			next = d;
	}
	c->fec.next_us = next;
	client_txq_flush(c, &c->io->up);
}

void client_fec_close_flow(struct client *c, struct client_flow *f, uint64_t now_us)
{
	struct client_route *r = flow_route(f, c->cur);

	if (f->enc && r && ls_fec_enc_deadline(f->enc))
		flow_blocks(c, r, f, now_us, true);
}

void client_fec_due(struct client *c, uint64_t now_us)
{
	if (c->fec.next_us && now_us >= c->fec.next_us)
		close_blocks(c, c->up_route ? c->up_route : c->cur, now_us, false);
}

void client_fec_close_all(struct client *c, struct client_route *r, uint64_t now_us)
{
	if (c->fec.next_us)
		close_blocks(c, r, now_us, true);
}

/* ---- decoders ------------------------------------------------------------------ */

/* Where ls_fec_dec_add delivers: the game socket, through the downstream queue. A
 * packet still in our receive buffer is sent from there; a rebuilt one, valid only
 * during the callback, is copied into the queue's own storage. */
struct deliver_ctx {
	struct client *c;
	struct sockaddr_in to;
	struct sockaddr_in from; /* the game server (capture mode sends from it) */
	const uint8_t *arrived; /* the datagram's payload, read-only view */
	uint8_t *arrived_w;     /* the same bytes, writable */
};

static void deliver(void *arg, const uint8_t *payload, size_t len)
{
	struct deliver_ctx *x = arg;
	struct client_txq *q = &x->c->io->down;
	unsigned slot = client_txq_slot(x->c, q);
	uint8_t *data = x->arrived_w;

	if (payload != x->arrived) {
		data = q->own[slot];
		memcpy(data, payload, len);
	}
	client_txq_put(q, slot, data, len, &x->to);
	q->from[slot] = x->from;
}

void client_fec_down(struct client *c, struct client_route *r, struct client_flow *f,
		     const struct ls_pkt *pkt, uint8_t *payload, uint64_t now_us)
{
	struct deliver_ctx x = {
		.c = c,
		.to = {
			.sin_family = AF_INET,
			.sin_addr.s_addr = htonl(pkt->h.dst_ip),
			.sin_port = htons(pkt->h.dst_port),
		},
		.from = {
			.sin_family = AF_INET,
			.sin_addr.s_addr = htonl(pkt->h.src_ip),
			.sin_port = htons(pkt->h.src_port),
		},
		.arrived = pkt->payload,
		.arrived_w = payload,
	};
	bool parity = pkt->h.fec_k && pkt->h.fec_index >= pkt->h.fec_k;

	/* A decoder follows one route's block numbers: the active route's, or in capture
	 * mode the route the flow's data goes to. Late packets of a route left behind are
	 * delivered as they come, their parity unused; two routes' blocks never meet in
	 * one decoder (their numbers are unrelated, and a rebuilt packet could repeat one
	 * already delivered). */
	struct client_route *own = c->capm && f->route && f->route->used ? f->route : c->cur;
	bool decoding = r == own;
	if (decoding && f->dec && f->dec_route != r)
		dec_drop(c, f);
	if (decoding && !f->dec) {
		f->dec = ls_fec_dec_new(0);
		f->dec_route = r;
	}
	/* Parity over another path may come later than the data (1.9). */
	if (f->dec)
		f->dec->timeout_us = client_route_multipath(r) ? LS_FEC_DEC_TIMEOUT_PATHS
							       : LS_FEC_DEC_TIMEOUT_DEFAULT;
	if (!decoding || !f->dec) {
		if (!parity)
			deliver(&x, pkt->payload, pkt->payload_len);
		return;
	}
	ls_fec_dec_add(f->dec, &pkt->h, pkt->payload, pkt->payload_len, now_us, deliver, &x);
}

/* ---- the policy and the counters ---------------------------------------------- */

void client_fec_report(struct client *c, struct client_route *r, struct client_meas *m,
		       uint64_t now_us)
{
	struct ls_fec_params p;

	(void)r;
	if (!m->up_sample)
		return;
	m->up_sample = false;
	if (dp_fec_report(&c->fec.au, in_force(c)->mode == DP_FEC_AUTO, m->up_expected,
			  m->up_received, m->up_burst, now_us, &p))
		apply_up(c, &p);
}

void client_fec_route_changed(struct client *c)
{
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++)
		dec_drop(c, &c->flows[i]);
	client_fec_set(c, &c->fec.set);
}

void client_fec_tick(struct client *c, uint64_t now_us)
{
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++)
		if (c->flows[i].dec)
			ls_fec_dec_expire(c->flows[i].dec, now_us);
}

void client_fec_counters(const struct client *c, struct dp_fec_counters *out)
{
	*out = c->fec.ctr;
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++)
		if (c->flows[i].dec)
			dp_fec_add_dec(out, c->flows[i].dec);
}

void client_fec_free(struct client *c)
{
	for (unsigned i = 0; i < CL_MAX_FLOWS; i++)
		client_fec_flow_gone(c, &c->flows[i]);
}
