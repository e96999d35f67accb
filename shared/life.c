/* Session lifetimes, the AUTH checks in their order, and the handshake
 * (docs/protocol.md 1.3, 1.8). */
#include "life.h"

#include <string.h>

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void ls_lives_init(struct ls_lives *L)
{
	memset(L, 0, sizeof(*L));
}

void ls_lives_begin(struct ls_lives *L, const uint8_t key[LS_KEY_LEN], const uint8_t *nc,
		    uint64_t epoch, uint64_t now_us)
{
	if (L->cur.live) {
		L->prev = L->cur;
		L->prev_until = now_us + LS_LIFE_GRACE_US;
	}
	memset(&L->cur, 0, sizeof(L->cur));
	ls_mac_init(&L->cur.mac, key);
	ls_replay_init(&L->cur.replay);
	L->cur.started_us = now_us;
	L->cur.epoch = epoch;
	memcpy(L->cur.nc, nc, LS_HS_NONCE_LEN);
	L->cur.live = true;
	L->gen++;
}

void ls_lives_end(struct ls_lives *L)
{
	uint32_t gen = L->gen;

	memset(L, 0, sizeof(*L));
	L->gen = gen + 1;
}

bool ls_lives_up(const struct ls_lives *L, uint64_t now_us)
{
	return L->cur.live && now_us < L->cur.started_us + LS_LIFE_MAX_US;
}

bool ls_lives_check(struct ls_lives *L, uint8_t token, const struct ls_pkt *p,
		    const uint8_t *buf, bool echo, bool clocked, bool copies, uint64_t now_us,
		    struct ls_rx_ok *ok, enum ls_drop *why)
{
	const struct ls_hdr *h = &p->h;
	struct ls_life *l;

	ok->prev = false;
	ok->newest = false;
	ok->ext = 0;
	if (h->token != token) {
		*why = LS_DROP_BAD_TAG;
		return false;
	}
	if (L->cur.live && ls_mac_verify(&L->cur.mac, buf, p->signed_len, p->tag)) {
		l = &L->cur;
	} else if (L->prev.live && now_us < L->prev_until &&
		   ls_mac_verify(&L->prev.mac, buf, p->signed_len, p->tag)) {
		l = &L->prev;
		ok->prev = true;
	} else {
		*why = LS_DROP_BAD_TAG;
		return false;
	}
	/* Past this age a 32-bit ts_us could be taken for a newer one (1.3). */
	if (now_us >= l->started_us + LS_LIFE_MAX_US) {
		*why = LS_DROP_REPLAY;
		return false;
	}
	if (echo)
		return true;
	if (!ls_replay_check(&l->replay, h->seq, &ok->ext)) {
		*why = copies && ls_replay_seen(&l->replay, ok->ext) ? LS_DROP_DUPLICATES
								      : LS_DROP_REPLAY;
		return false;
	}
	if (clocked) {
		/* The sender's clock against ours: the highest offset seen is the sender's
		 * "now" less the shortest delay. A ts_us more than LS_FRESH_US either side of
		 * it is stale (or would be, in a lifetime shorter than half the ts wrap). */
		uint32_t d = h->ts_us - (uint32_t)now_us;

		if (l->ts_any) {
			int32_t e = (int32_t)(d - l->ts_base);

			if (e > (int32_t)LS_FRESH_US || e < -(int32_t)LS_FRESH_US) {
				*why = LS_DROP_REPLAY;
				return false;
			}
			if (e > 0)
				l->ts_base = d;
		} else {
			l->ts_base = d;
			l->ts_any = true;
		}
	}
	ok->newest = ls_replay_accept(&l->replay, ok->ext);
	return true;
}

bool ls_hs_tag_ok(struct ls_mac *base, uint8_t token, const struct ls_pkt *p,
		  const uint8_t *buf)
{
	return p->h.token == token && ls_mac_verify(base, buf, p->signed_len, p->tag);
}

void ls_life_key(struct ls_mac *base, const uint8_t *nc, const uint8_t *np, uint64_t epoch,
		 uint8_t out[LS_KEY_LEN])
{
	/* A leading 0x00 keeps this input apart from every datagram the session key
	 * tags (their first byte carries a version, 1 or 2). */
	uint8_t in[4 + 2 * LS_HS_NONCE_LEN + 8] = { 0x00, 'L', 'S', 'L' };

	memcpy(in + 4, nc, LS_HS_NONCE_LEN);
	memcpy(in + 4 + LS_HS_NONCE_LEN, np, LS_HS_NONCE_LEN);
	put64(in + 4 + 2 * LS_HS_NONCE_LEN, epoch);
	ls_mac_full(base, in, sizeof(in), out);
}

/* The proxy's nonce for a REPLY: a PRF of everything the CONFIRM must repeat, and of
 * the address the REPLY went to, so that a CONFIRM from there proves the address. */
static void cookie(struct ls_prf *secret, uint32_t session_id, const uint8_t *nc,
		   uint64_t epoch, uint32_t ip, uint16_t port, uint8_t np[LS_HS_NONCE_LEN])
{
	uint8_t in[4 + 4 + LS_HS_NONCE_LEN + 8 + 4 + 2] = { 0x01, 'L', 'S', 'C' };
	uint8_t *q = in + 4;

	put32(q, session_id);
	memcpy(q + 4, nc, LS_HS_NONCE_LEN);
	put64(q + 4 + LS_HS_NONCE_LEN, epoch);
	put32(q + 12 + LS_HS_NONCE_LEN, ip);
	q[16 + LS_HS_NONCE_LEN] = (uint8_t)(port >> 8);
	q[17 + LS_HS_NONCE_LEN] = (uint8_t)port;
	ls_mac_full(&secret->mac, in, sizeof(in), np);
}

size_t ls_hs_build(struct ls_mac *mac, uint8_t token, uint32_t session_id, uint8_t kind,
		   uint16_t seq, uint32_t ts, uint64_t value, const uint8_t *a, const uint8_t *b,
		   uint8_t *buf)
{
	struct ls_handshake hs = { .kind = kind, .value = value };
	struct ls_hdr h;
	size_t n;

	memset(&h, 0, sizeof(h));
	h.version = LS_VER_PLAIN;
	h.flags = LS_F_HANDSHAKE | LS_F_AUTH;
	h.token = token;
	h.seq = seq;
	h.ts_us = ts;
	h.session_id = session_id;
	ls_handshake_to_hdr(&hs, &h);
	n = ls_hdr_encode(&h, buf);
	if (a) {
		memcpy(buf + n, a, LS_HS_NONCE_LEN);
		if (b)
			memcpy(buf + n + LS_HS_NONCE_LEN, b, LS_HS_NONCE_LEN);
		else
			memset(buf + n + LS_HS_NONCE_LEN, 0, LS_HS_NONCE_LEN);
		n += LS_HS_PAYLOAD_LEN;
	}
	ls_mac_tag(mac, buf, n, buf + n);
	return n + LS_TAG_LEN;
}

/* ---- responder -------------------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

enum ls_hs_verdict ls_hs_respond(struct ls_lives *L, struct ls_mac *base, struct ls_prf *secret,
				 uint8_t token, uint32_t session_id, const struct ls_pkt *p,
				 uint32_t ip, uint16_t port, uint64_t now_us, uint8_t *out,
				 size_t *out_len, enum ls_drop *why)
{
	const struct ls_hdr *h = &p->h;
	const uint8_t *nc = p->payload, *np_in = p->payload + LS_HS_NONCE_LEN;
	uint8_t np[LS_HS_NONCE_LEN], key[LS_KEY_LEN];
	struct ls_handshake hs;
	uint64_t epoch;

	if (ls_handshake_from_hdr(h, &hs) != LS_PE_OK || p->payload_len != LS_HS_PAYLOAD_LEN ||
	    (hs.kind != LS_HS_INIT && hs.kind != LS_HS_CONFIRM)) {
		*why = LS_DROP_MALFORMED;
		return LS_HSV_DROP;
	}
	if (hs.kind == LS_HS_INIT) {
		if (hs.value || !all_zero(np_in, LS_HS_NONCE_LEN)) {
			*why = LS_DROP_MALFORMED;
			return LS_HSV_DROP;
		}
		/* Stateless: a recorded INIT replayed costs one REPLY of its own size and
		 * changes nothing here. */
		epoch = now_us;
		cookie(secret, session_id, nc, epoch, ip, port, np);
		*out_len = ls_hs_build(base, token, session_id, LS_HS_REPLY, h->seq, h->ts_us, epoch,
				       nc, np, out);
		return LS_HSV_ANSWER;
	}
	epoch = hs.value;
	if (epoch > now_us || now_us - epoch > LS_HS_EPOCH_US) {
		*why = LS_DROP_REPLAY;
		return LS_HSV_DROP;
	}
	cookie(secret, session_id, nc, epoch, ip, port, np);
	if (!ls_bytes_equal(np, np_in, LS_HS_NONCE_LEN)) {
		/* Not a REPLY of this process to this address. */
		*why = LS_DROP_BAD_TAG;
		return LS_HSV_DROP;
	}
	if (L->cur.live && L->cur.epoch == epoch &&
	    ls_bytes_equal(L->cur.nc, nc, LS_HS_NONCE_LEN)) {
		/* The ACK was lost: acknowledge again, change nothing. */
		*out_len = ls_hs_build(&L->cur.mac, token, session_id, LS_HS_ACK, h->seq, h->ts_us,
				       epoch, NULL, NULL, out);
		return LS_HSV_ANSWER;
	}
	if (L->cur.live && epoch <= L->cur.epoch) {
		/* An older handshake than the lifetime in force. */
		*why = LS_DROP_REPLAY;
		return LS_HSV_DROP;
	}
	ls_life_key(base, nc, np, epoch, key);
	ls_lives_begin(L, key, nc, epoch, now_us);
	memset(key, 0, sizeof(key));
	*out_len = ls_hs_build(&L->cur.mac, token, session_id, LS_HS_ACK, h->seq, h->ts_us, epoch,
			       NULL, NULL, out);
	return LS_HSV_COMMIT;
}

/* ---- initiator -------------------------------------------------------------------- */

int ls_hs_start(struct ls_hs *hs, uint64_t now_us)
{
	memset(hs, 0, sizeof(*hs));
	if (ls_random_bytes(hs->nc, sizeof(hs->nc)) < 0)
		return -1;
	hs->state = LS_HSS_INIT;
	hs->started_us = now_us;
	hs->next_us = now_us;
	return 0;
}

size_t ls_hs_due(struct ls_hs *hs, struct ls_mac *base, uint8_t token, uint32_t session_id,
		 uint64_t now_us, uint8_t *buf)
{
	if (hs->state == LS_HSS_IDLE || now_us < hs->next_us)
		return 0;
	/* Lost answers, or a proxy that forgot our REPLY (restarted): a new nonce. */
	if (now_us - hs->started_us >= LS_HS_RESTART_US && ls_hs_start(hs, now_us) < 0)
		return 0;
	hs->next_us = now_us + LS_HS_RESEND_US;
	if (hs->state == LS_HSS_INIT)
		return ls_hs_build(base, token, session_id, LS_HS_INIT, 0, (uint32_t)now_us, 0,
				   hs->nc, NULL, buf);
	return ls_hs_build(base, token, session_id, LS_HS_CONFIRM, 0, (uint32_t)now_us, hs->epoch,
			   hs->nc, hs->np, buf);
}

static void hs_up(struct ls_hs *hs, struct ls_lives *L, uint64_t now_us)
{
	ls_lives_begin(L, hs->key, hs->nc, hs->epoch, now_us);
	memset(hs->key, 0, sizeof(hs->key));
	hs->state = LS_HSS_IDLE;
}

enum ls_hs_event ls_hs_receive(struct ls_hs *hs, struct ls_lives *L, struct ls_mac *base,
			       uint8_t token, const struct ls_pkt *p,
			       const uint8_t *buf, uint64_t now_us, enum ls_drop *why)
{
	struct ls_handshake k;

	if (ls_handshake_from_hdr(&p->h, &k) != LS_PE_OK) {
		*why = LS_DROP_MALFORMED;
		return LS_HSE_DROP;
	}
	switch (k.kind) {
	case LS_HS_REPLY:
		if (p->payload_len != LS_HS_PAYLOAD_LEN) {
			*why = LS_DROP_MALFORMED;
			return LS_HSE_DROP;
		}
		if (!ls_hs_tag_ok(base, token, p, buf)) {
			*why = LS_DROP_BAD_TAG;
			return LS_HSE_DROP;
		}
		if (hs->state == LS_HSS_CONFIRM && ls_bytes_equal(p->payload, hs->nc, LS_HS_NONCE_LEN))
			return LS_HSE_NONE; /* an answer to a resent INIT */
		if (hs->state != LS_HSS_INIT || !ls_bytes_equal(p->payload, hs->nc, LS_HS_NONCE_LEN)) {
			*why = LS_DROP_REPLAY; /* not an answer to our INIT */
			return LS_HSE_DROP;
		}
		memcpy(hs->np, p->payload + LS_HS_NONCE_LEN, LS_HS_NONCE_LEN);
		hs->epoch = k.value;
		ls_life_key(base, hs->nc, hs->np, hs->epoch, hs->key);
		ls_mac_init(&hs->pending, hs->key);
		hs->state = LS_HSS_CONFIRM;
		hs->next_us = now_us;
		return LS_HSE_SEND;
	case LS_HS_ACK:
		if (p->payload_len != 0) {
			*why = LS_DROP_MALFORMED;
			return LS_HSE_DROP;
		}
		if (hs->state != LS_HSS_CONFIRM) {
			/* A second ACK of the lifetime in force, or a recorded one. */
			if (L->cur.live && k.value == L->cur.epoch &&
			    ls_hs_tag_ok(&L->cur.mac, token, p, buf))
				return LS_HSE_NONE;
			*why = LS_DROP_REPLAY;
			return LS_HSE_DROP;
		}
		if (k.value != hs->epoch || !ls_hs_tag_ok(&hs->pending, token, p, buf)) {
			*why = LS_DROP_BAD_TAG;
			return LS_HSE_DROP;
		}
		hs_up(hs, L, now_us);
		return LS_HSE_UP;
	default:
		*why = LS_DROP_MALFORMED;
		return LS_HSE_DROP;
	}
}

bool ls_hs_try_pending(struct ls_hs *hs, struct ls_lives *L, uint8_t token,
		       const struct ls_pkt *p, const uint8_t *buf, uint64_t now_us)
{
	if (hs->state != LS_HSS_CONFIRM || !ls_hs_tag_ok(&hs->pending, token, p, buf))
		return false;
	hs_up(hs, L, now_us);
	return true;
}
