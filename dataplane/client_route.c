/* lightspeed-client: a route's tunnel headers, receive checks and measurement
 * (docs/protocol.md 1.3, 1.4 and 1.9). */
#include "client_route.h"

#include <arpa/inet.h>
#include <string.h>

/* Sending this long without hearing back is silence (at least; 4 RTT if longer). */
#define SILENCE_MIN_US 200000

static const char *const mode_names[] = {
	[CL_MODE_SINGLE] = "single",
	[CL_MODE_DUPLICATE] = "duplicate",
	[CL_MODE_SPLIT] = "split",
	[CL_MODE_AUTO] = "auto",
};

const char *client_mode_name(enum client_mode m)
{
	return (unsigned)m <= CL_MODE_AUTO ? mode_names[m] : "single";
}

int client_mode_parse(const char *s, enum client_mode *out)
{
	for (unsigned i = 0; s && i <= CL_MODE_AUTO; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum client_mode)i;
			return 0;
		}
	return -1;
}

void client_route_init(struct client_route *r, const struct sockaddr_in *proxy,
		       uint32_t session_id, const uint8_t *key, uint16_t first_seq, uint64_t now_us)
{
	memset(r, 0, sizeof(*r));
	r->proxy = *proxy;
	if (key) {
		r->keyed = true;
		r->session_id = session_id;
		r->token = (uint8_t)(session_id & 0xff);
		memcpy(r->key, key, LS_KEY_LEN);
		ls_mac_init(&r->mac, key);
	}
	r->started_us = now_us;
	r->tx_seq = first_seq;
	ls_lives_init(&r->lv);
	/* A keyed route begins with a handshake: its first lifetime. Without randomness
	 * it never gets one, and its game packets are counted as `handshake`. */
	if (key)
		ls_hs_start(&r->hs, now_us);
	client_meas_init(&r->m, now_us);
}

bool client_route_is(const struct client_route *r, const struct sockaddr_in *proxy,
		     uint32_t session_id, const uint8_t *key)
{
	if (r->proxy.sin_addr.s_addr != proxy->sin_addr.s_addr ||
	    r->proxy.sin_port != proxy->sin_port)
		return false;
	if (!key)
		return !r->keyed;
	return r->keyed && r->session_id == session_id && memcmp(r->key, key, LS_KEY_LEN) == 0;
}

bool client_route_ready(const struct client_route *r, uint64_t now_us)
{
	return !r->keyed || ls_lives_up(&r->lv, now_us);
}

bool client_route_sealer(struct client_route *r, struct ls_seal *k)
{
	k->mac = NULL;
	k->token = 0;
	k->session_id = 0;
	if (!r->keyed)
		return true;
	if (!r->lv.cur.live)
		return false;
	k->mac = &r->lv.cur.mac;
	k->token = r->token;
	k->session_id = r->session_id;
	return true;
}

void client_route_sent(struct client_route *r, uint64_t now_us)
{
	if (!r->quiet_since_us)
		r->quiet_since_us = now_us ? now_us : 1;
}

/* How long sending without hearing back is silence: a few round trips, and never
 * less than a game server's slowest usual answer. */
static uint64_t silence_us(const struct client_route *r)
{
	int64_t srtt = client_route_cview(r)->srtt_us;
	uint64_t t = srtt > 0 ? 4 * (uint64_t)srtt : 0;

	return t < SILENCE_MIN_US ? SILENCE_MIN_US : t;
}

bool client_route_silence(struct client_route *r, uint64_t now_us, uint64_t *next_us)
{
	uint64_t t = silence_us(r);

	*next_us = 0;
	if (!r->quiet_since_us || (r->keyed && r->hs.state != LS_HSS_IDLE))
		return false;
	if (!r->probe_us) {
		if (now_us - r->quiet_since_us < t) {
			*next_us = r->quiet_since_us + t;
			return false;
		}
		r->probe_us = now_us;
		*next_us = now_us + t;
		return true;
	}
	if (now_us - r->probe_us < t) {
		*next_us = r->probe_us + t;
		return false;
	}
	/* The ask went unanswered too. */
	r->probe_us = 0;
	r->quiet_since_us = 0;
	if (r->keyed && ls_hs_start(&r->hs, now_us) == 0)
		r->ev_silent = true;
	return false;
}

size_t client_route_wrap(struct client_route *r, struct ls_hdr *h, uint8_t *buf, size_t len,
			 uint64_t now_us, uint8_t **start)
{
	struct ls_seal k;
	size_t n;

	if (!client_route_sealer(r, &k))
		return 0;
	h->seq = r->tx_seq++;
	h->ts_us = (uint32_t)now_us;
	n = ls_seal_in_place(&k, h, buf + CL_HEADROOM, len, start);
	client_route_sent(r, now_us);
	return n;
}

/* A keepalive (ka set) or a FIN (ka NULL); 0 when there is no lifetime to seal with. */
static size_t control(struct client_route *r, uint8_t flags, uint16_t seq, uint32_t ts,
		      struct ls_keepalive *ka, uint8_t *buf)
{
	struct ls_seal k;
	struct ls_hdr h;

	if (!client_route_sealer(r, &k))
		return 0;
	memset(&h, 0, sizeof(h));
	h.version = LS_VER_PLAIN;
	h.flags = flags;
	h.seq = seq;
	h.ts_us = ts;
	if (ka) {
		ls_rx_report(&r->rx, ka);
		ls_keepalive_to_hdr(ka, &h);
	}
	return ls_seal_at(&k, &h, buf, 0);
}

size_t client_route_hs_due(struct client_route *r, uint64_t now_us, uint8_t *buf)
{
	if (!r->keyed)
		return 0;
	return ls_hs_due(&r->hs, &r->mac, r->token, r->session_id, now_us, buf);
}

uint64_t client_route_hs_next(const struct client_route *r)
{
	return r->keyed && r->hs.state != LS_HSS_IDLE ? r->hs.next_us : 0;
}

size_t client_route_ka_request(struct client_route *r, struct client_meas *m, uint32_t sent,
			       uint8_t role, uint64_t now_us, uint8_t fec_k, uint8_t fec_m,
			       uint8_t *buf)
{
	struct ls_keepalive ka = { .kind = LS_KA_REQUEST, .role = role, .fec_k = fec_k,
				   .fec_m = fec_m };
	uint16_t seq;
	uint32_t ts = (uint32_t)now_us;

	if (!client_route_ready(r, now_us))
		return 0; /* the handshake probes the proxy meanwhile */
	seq = r->tx_seq++;
	client_route_sent(r, now_us);
	client_meas_request(m, seq, ts, sent, now_us);
	return control(r, LS_F_KEEPALIVE, seq, ts, &ka, buf);
}

size_t client_route_ka_reply(struct client_route *r, const struct ls_hdr *req, uint8_t fec_k,
			     uint8_t fec_m, uint8_t *buf)
{
	struct ls_keepalive ka = { .kind = LS_KA_REPLY, .fec_k = fec_k, .fec_m = fec_m };

	return control(r, LS_F_KEEPALIVE, req->seq, req->ts_us, &ka, buf);
}

size_t client_route_fin(struct client_route *r, uint64_t now_us, uint8_t *buf)
{
	size_t n = control(r, LS_F_FIN, r->tx_seq, (uint32_t)now_us, NULL, buf);

	if (n)
		r->tx_seq++;
	return n;
}

bool client_route_awaits(const struct client_route *r, uint16_t seq, uint32_t ts)
{
	if (client_meas_awaits(&r->m, seq, ts))
		return true;
	for (unsigned i = 0; i < r->npaths; i++)
		if (r->paths[i].relay && client_meas_awaits(&r->paths[i].m, seq, ts))
			return true;
	return false;
}

bool client_route_down(const struct client_route *r)
{
	if (!r->npaths)
		return r->m.state == CL_PATH_DOWN;
	for (unsigned i = 0; i < r->npaths; i++)
		if (client_route_cpmeas(r, i)->state != CL_PATH_DOWN)
			return false;
	return true;
}

/* Every way of the route took its measurement from scratch: a new lifetime counts our
 * packets afresh. */
static void reports_restart(struct client_route *r)
{
	r->m.up_base.any = false;
	r->m.up_way_any = false;
	for (unsigned i = 0; i < r->npaths; i++) {
		r->paths[i].m.up_base.any = false;
		r->paths[i].m.up_way_any = false;
	}
}

static void lifetime_began(struct client_route *r, struct client_meas *m, uint64_t now_us)
{
	r->handshakes++;
	r->ev_life = true;
	r->ka_now = true;
	m->last_rx_us = now_us;
	r->quiet_since_us = r->probe_us = 0;
	/* The proxy counts our packets afresh in a new lifetime: so do the reports. */
	reports_restart(r);
}

/* A HANDSHAKE from the proxy (1.8). */
static enum client_rx handshake(struct client_route *r, const uint8_t *buf,
				const struct ls_pkt *p, struct client_meas *m, uint64_t now_us,
				enum ls_drop *why)
{
	enum ls_hs_event ev;

	if (!r->keyed || p->h.session_id != r->session_id) {
		*why = LS_DROP_UNKNOWN_SESSION;
		return CL_RX_DROP;
	}
	ev = ls_hs_receive(&r->hs, &r->lv, &r->mac, r->token, p, buf, now_us, why);
	switch (ev) {
	case LS_HSE_DROP:
		return CL_RX_DROP;
	case LS_HSE_NONE:
		return CL_RX_CONSUMED;
	case LS_HSE_SEND:
		m->last_rx_us = now_us;
		return CL_RX_HANDSHAKE;
	case LS_HSE_UP:
		break;
	}
	lifetime_began(r, m, now_us);
	client_meas_alive(m);
	return CL_RX_CONSUMED;
}

enum client_rx client_route_receive(struct client_route *r, const uint8_t *buf,
				    const struct ls_pkt *p, struct client_meas *m, bool copies,
				    uint64_t now_us, enum ls_drop *why)
{
	const struct ls_hdr *h = &p->h;
	struct ls_keepalive ka = { 0 };
	bool echo = false;
	/* Data and FIN carry the proxy's clock; its keepalive requests carry a random
	 * ts_us (an address-validation nonce, 1.6), which says nothing about time. */
	bool clocked = !(h->flags & LS_F_KEEPALIVE);
	uint64_t ext = 0;

	/* Shape first: a keepalive has no payload, a known kind and an FEC ask in range. */
	if (h->flags & LS_F_KEEPALIVE) {
		int rc = ls_keepalive_from_hdr(h, &ka);
		if (p->payload_len != 0 || rc != LS_PE_OK) {
			*why = rc == LS_PE_FEC_RANGE ? LS_DROP_FEC_RANGE : LS_DROP_MALFORMED;
			return CL_RX_DROP;
		}
		echo = ka.kind == LS_KA_REPLY;
	}

	if (h->flags & LS_F_HANDSHAKE)
		return handshake(r, buf, p, m, now_us, why);
	if (h->flags & LS_F_AUTH) {
		struct ls_rx_ok ok;

		if (!r->keyed || h->session_id != r->session_id) {
			*why = LS_DROP_UNKNOWN_SESSION;
			return CL_RX_DROP;
		}
		if (!ls_lives_check(&r->lv, r->token, p, buf, echo, clocked, copies, now_us, &ok,
				    why)) {
			/* The first packet under the lifetime whose ACK is late or lost. */
			if (*why != LS_DROP_BAD_TAG ||
			    !ls_hs_try_pending(&r->hs, &r->lv, r->token, p, buf, now_us) ||
			    !ls_lives_check(&r->lv, r->token, p, buf, echo, clocked, copies, now_us,
					    &ok, why)) {
				if (*why == LS_DROP_DUPLICATES)
					r->duplicates++;
				else if (!(h->flags & (LS_F_KEEPALIVE | LS_F_FIN)))
					client_meas_data(m, false);
				return CL_RX_DROP;
			}
			lifetime_began(r, m, now_us);
		}
		ext = ok.ext;
	} else if (r->keyed) {
		*why = LS_DROP_UNAUTHENTICATED;
		return CL_RX_DROP;
	} else {
		ext = r->rx.any ? ls_seq_extend(r->rx.top, h->seq) : h->seq;
	}

	if (echo) {
		/* A route of several paths learns each path's upstream loss (1.9). */
		if (!client_meas_reply(m, h, &ka, copies && !r->is_hop, now_us))
			return CL_RX_CONSUMED;
		r->quiet_since_us = r->probe_us = 0;
		return CL_RX_KA_REPLY;
	}

	ls_rx_note(&r->rx, ext);
	r->quiet_since_us = r->probe_us = 0;
	client_meas_heard(m, h->ts_us, clocked, now_us);
	if (h->flags & LS_F_FIN) {
		/* The proxy is going away. The route stays (fail-static): its lifetime
		 * ends with the proxy's, and handshakes go on until the proxy is back
		 * (nothing sent before the FIN authenticates in the lifetime after it).
		 * A proxy that comes back counts its seq afresh: so do the loss
		 * baselines. */
		ls_lives_end(&r->lv);
		if (r->keyed)
			ls_hs_start(&r->hs, now_us);
		r->rx.any = false;
		r->rx.top = 0;
		m->down_any = false;
		reports_restart(r);
		m->transit_any[0] = false;
		client_meas_set(m, CL_PATH_DOWN);
		r->ev_fin = true;
		return CL_RX_CONSUMED;
	}
	if (h->flags & LS_F_KEEPALIVE) {
		client_meas_alive(m);
		return CL_RX_KA_REQUEST;
	}
	client_meas_data(m, true);
	return CL_RX_DATA;
}

void client_route_interval(struct client_route *r, uint64_t now_us, uint32_t keepalive_ms)
{
	bool multi = client_route_multipath(r);

	/* One way: downstream loss from our own counters; several: each path's from its
	 * keepalives (our counters see the paths merged). */
	if (!r->npaths || r->is_hop || !multi || !r->paths[0].relay)
		client_meas_interval(&r->m, now_us, keepalive_ms, r->started_us,
				     multi ? NULL : &r->rx);
	for (unsigned i = 0; i < r->npaths; i++)
		if (r->paths[i].relay)
			client_meas_interval(&r->paths[i].m, now_us, keepalive_ms, r->started_us,
					     multi ? NULL : &r->rx);

	if (!r->keyed || r->hs.state != LS_HSS_IDLE)
		return;
	/* A silent proxy may have lost our lifetime (restarted, session re-added): a
	 * handshake finds out, and costs nothing if it had not. A lifetime near its end
	 * is renewed before the receivers refuse it (1.8). */
	if (client_route_down(r) ||
	    (r->lv.cur.live && now_us - r->lv.cur.started_us >= LS_LIFE_REKEY_US))
		ls_hs_start(&r->hs, now_us);
}
