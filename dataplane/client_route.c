/* lightspeed-client: a route's tunnel headers, receive checks and measurement
 * (docs/protocol.md 1.3 and 1.4). */
#include "client_route.h"

#include <arpa/inet.h>
#include <string.h>

const char *client_route_state_name(enum client_path p)
{
	return p == CL_PATH_DOWN ? "down" : p == CL_PATH_UNKNOWN ? "unknown" : "up";
}

const char *client_path_name(enum client_path p)
{
	switch (p) {
	case CL_PATH_UP:
		return "up";
	case CL_PATH_DOWN:
		return "down";
	case CL_PATH_DEGRADED:
		return "degraded";
	default:
		return "unknown";
	}
}

/* Game packets dropped with none accepted over this long: the path is degraded. */
#define DEGRADED_US 1000000
/* Sending this long without hearing back is silence (at least; 4 RTT if longer). */
#define SILENCE_MIN_US 200000
/* A transit-time step this large is a clock restart on the proxy, not jitter: the
 * estimator starts over from the next packet instead of remembering a spike. */
#define TRANSIT_STEP_MAX_US 10000000
/* Smoothing: RTT as TCP's SRTT (RFC 6298, 1/8); loss a little faster (1/4) because
 * each report already averages a whole interval. */
#define SRTT_SHIFT 3
#define LOSS_WEIGHT 0.25

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
	r->iv_start_us = now_us;
	ls_hist_init(&r->rtt);
	r->srtt_us = -1;
	r->rtt_min_us = -1;
	r->loss_up = -1;
	r->loss_down = -1;
	r->path = CL_PATH_UNKNOWN;
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
	uint64_t t = r->srtt_us > 0 ? 4 * (uint64_t)r->srtt_us : 0;

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

size_t client_route_ka_request(struct client_route *r, uint64_t now_us, uint8_t fec_k,
			       uint8_t fec_m, uint8_t *buf)
{
	struct ls_keepalive ka = { .kind = LS_KA_REQUEST, .fec_k = fec_k, .fec_m = fec_m };
	uint16_t seq;
	uint32_t ts = (uint32_t)now_us;
	unsigned slot;

	if (!client_route_ready(r, now_us))
		return 0; /* the handshake probes the proxy meanwhile */
	seq = r->tx_seq++;
	client_route_sent(r, now_us);
	slot = r->ka_next++ % CL_KA_OUTSTANDING;
	r->ka[slot].seq = seq;
	r->ka[slot].ts = ts;
	r->ka[slot].live = true;
	r->ka[slot].sent_us = now_us;
	r->keepalives_sent++;
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

/* The first reply to one of our requests: forget the request so that a duplicate or
 * a recorded copy of the reply counts for nothing. */
static bool ka_match(struct client_route *r, uint16_t seq, uint32_t ts)
{
	for (unsigned i = 0; i < CL_KA_OUTSTANDING; i++) {
		if (r->ka[i].live && r->ka[i].seq == seq && r->ka[i].ts == ts) {
			r->ka[i].live = false;
			r->replies++;
			if (r->ka[i].sent_us > r->answered_sent_us)
				r->answered_sent_us = r->ka[i].sent_us;
			r->missed = 0;
			return true;
		}
	}
	return false;
}

static void path_set(struct client_route *r, enum client_path p);

bool client_route_awaits(const struct client_route *r, uint16_t seq, uint32_t ts)
{
	for (unsigned i = 0; i < CL_KA_OUTSTANDING; i++)
		if (r->ka[i].live && r->ka[i].seq == seq && r->ka[i].ts == ts)
			return true;
	return false;
}

/* How long a keepalive may wait for its answer before it counts as missed. */
static uint64_t answer_deadline_us(const struct client_route *r)
{
	uint64_t srtt, j, m;

	if (r->srtt_us < 0)
		return 1000000;
	srtt = (uint64_t)r->srtt_us;
	j = 4 * (uint64_t)(r->jitter16 >> 4);
	/* 2.5 RTT in all: a step up of the path's delay by up to about that much (plus
	 * the 2 intervals before the third miss) is a slower route, not a dead one. */
	m = srtt * 3 / 2;
	if (j > m)
		m = j;
	if (m < 5000)
		m = 5000;
	return srtt + m;
}

uint64_t client_route_watch(struct client_route *r, uint64_t now_us)
{
	uint64_t d = answer_deadline_us(r), next = 0;
	uint32_t missed = 0;

	for (unsigned i = 0; i < CL_KA_OUTSTANDING; i++) {
		if (!r->ka[i].live || r->ka[i].sent_us <= r->answered_sent_us)
			continue;
		if (now_us >= r->ka[i].sent_us + d)
			missed++;
		else if (!next || r->ka[i].sent_us + d < next)
			next = r->ka[i].sent_us + d;
	}
	/* Missed keeps growing while the proxy is silent: requests older than the ring
	 * were missed too. */
	if (missed >= CL_KA_OUTSTANDING && r->missed >= missed)
		missed = r->missed;
	r->missed = missed;
	if (missed >= 3 && r->path != CL_PATH_DOWN)
		path_set(r, CL_PATH_DOWN);
	return next;
}

/* RFC 3550 6.4.1 interarrival jitter, in the integer form of its appendix A.8. A
 * difference is only taken between two packets stamped by the same clock: the proxy's
 * data carries its clock, echoes carry ours (their transit is the RTT), so an idle
 * path is still measured by its keepalives. */
static void jitter_sample(struct client_route *r, int domain, uint32_t now32, uint32_t ts)
{
	int32_t transit = (int32_t)(now32 - ts);

	if (r->transit_any[domain]) {
		int64_t d = (int64_t)transit - r->transit[domain];
		if (d < 0)
			d = -d;
		if (d <= TRANSIT_STEP_MAX_US) {
			int64_t j = r->jitter16;
			j += d - ((j + 8) >> 4);
			r->jitter16 = j < 0 ? 0 : (uint32_t)(j > UINT32_MAX ? UINT32_MAX : j);
			r->jitter_any = true;
		}
	}
	r->transit[domain] = transit;
	r->transit_any[domain] = true;
}

static double loss_fraction(int64_t expected, int64_t received)
{
	double l = 1.0 - (double)received / (double)expected;

	return l < 0 ? 0 : (l > 1 ? 1 : l);
}

static void loss_smooth(double *avg, double sample)
{
	*avg = *avg < 0 ? sample : *avg + (sample - *avg) * LOSS_WEIGHT;
}

/* Upstream loss from the proxy's counters in a reply (RTCP style: growth of the
 * highest seq against growth of the count between two reports), kept for the FEC
 * policy too. */
static void loss_up_report(struct client_route *r, const struct ls_keepalive *ka)
{
	uint32_t expected, received;

	if (!ls_rx_growth(&r->up_base, ka, &expected, &received))
		return;
	loss_smooth(&r->loss_up, loss_fraction(expected, received));
	r->up_sample = true;
	r->up_expected = expected;
	r->up_received = received;
	r->up_burst = ka->burst;
}

static void rtt_sample(struct client_route *r, uint32_t rtt)
{
	ls_hist_add(&r->rtt, rtt);
	if (r->rtt_min_us < 0 || rtt < r->rtt_min_us)
		r->rtt_min_us = rtt;
	if (r->srtt_us < 0)
		r->srtt_us = rtt;
	else
		r->srtt_us += ((int64_t)rtt - r->srtt_us) / (1 << SRTT_SHIFT);
	if (r->n_ev_rtt < CL_RTT_PENDING)
		r->ev_rtt[r->n_ev_rtt++] = rtt;
}

static void path_set(struct client_route *r, enum client_path p)
{
	if (r->path != p) {
		if ((r->path == CL_PATH_DOWN) != (p == CL_PATH_DOWN) && r->path != CL_PATH_UNKNOWN)
			r->flips++;
		r->path = p;
		r->ev_path = true;
	}
}

/* Something genuine came from the proxy: a path down or unknown is up; a degraded one
 * stays so until game packets get through again. */
static void path_alive(struct client_route *r)
{
	if (r->path != CL_PATH_DEGRADED)
		path_set(r, CL_PATH_UP);
}

void client_route_data_dropped(struct client_route *r)
{
	r->iv_data_drop++;
}

/* A HANDSHAKE from the proxy (1.8). */
static enum client_rx handshake(struct client_route *r, const uint8_t *buf,
				const struct ls_pkt *p, uint64_t now_us, enum ls_drop *why)
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
		r->last_rx_us = now_us;
		return CL_RX_HANDSHAKE;
	case LS_HSE_UP:
		break;
	}
	r->handshakes++;
	r->ev_life = true;
	r->ka_now = true;
	r->last_rx_us = now_us;
	r->quiet_since_us = r->probe_us = 0;
	/* The proxy counts our packets afresh in a new lifetime: so do the reports. */
	r->up_base.any = false;
	path_alive(r);
	return CL_RX_CONSUMED;
}

enum client_rx client_route_receive(struct client_route *r, const uint8_t *buf,
				    const struct ls_pkt *p, uint64_t now_us,
				    enum ls_drop *why)
{
	const struct ls_hdr *h = &p->h;
	uint32_t now32 = (uint32_t)now_us;
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
		return handshake(r, buf, p, now_us, why);
	if (h->flags & LS_F_AUTH) {
		struct ls_rx_ok ok;

		if (!r->keyed || h->session_id != r->session_id) {
			*why = LS_DROP_UNKNOWN_SESSION;
			return CL_RX_DROP;
		}
		if (!ls_lives_check(&r->lv, r->token, p, buf, echo, clocked, now_us, &ok, why)) {
			/* The first packet under the lifetime whose ACK is late or lost. */
			if (*why != LS_DROP_BAD_TAG ||
			    !ls_hs_try_pending(&r->hs, &r->lv, r->token, p, buf, now_us) ||
			    !ls_lives_check(&r->lv, r->token, p, buf, echo, clocked, now_us, &ok, why)) {
				if (!(h->flags & (LS_F_KEEPALIVE | LS_F_FIN)))
					r->iv_data_drop++;
				return CL_RX_DROP;
			}
			r->handshakes++;
			r->ev_life = true;
			r->ka_now = true;
			r->up_base.any = false;
		}
		ext = ok.ext;
	} else if (r->keyed) {
		*why = LS_DROP_UNAUTHENTICATED;
		return CL_RX_DROP;
	} else {
		ext = r->rx.any ? ls_seq_extend(r->rx.top, h->seq) : h->seq;
	}

	if (echo) {
		/* Only the first reply to a request we sent counts, for RTT and for the
		 * path too: a recorded reply must not keep a dead path up. */
		if (!ka_match(r, h->seq, h->ts_us))
			return CL_RX_CONSUMED;
		r->last_rx_us = now_us;
		r->quiet_since_us = r->probe_us = 0;
		path_alive(r);
		rtt_sample(r, now32 - h->ts_us);
		jitter_sample(r, 1, now32, h->ts_us);
		loss_up_report(r, &ka);
		return CL_RX_KA_REPLY;
	}

	ls_rx_note(&r->rx, ext);
	r->last_rx_us = now_us;
	r->quiet_since_us = r->probe_us = 0;
	if (clocked)
		jitter_sample(r, 0, now32, h->ts_us);
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
		r->down_any = false;
		r->up_base.any = false;
		r->transit_any[0] = false;
		path_set(r, CL_PATH_DOWN);
		r->ev_fin = true;
		return CL_RX_CONSUMED;
	}
	if (h->flags & LS_F_KEEPALIVE) {
		path_alive(r);
		return CL_RX_KA_REQUEST;
	}
	r->iv_data_ok++;
	path_set(r, CL_PATH_UP);
	return CL_RX_DATA;
}

void client_route_interval(struct client_route *r, uint64_t now_us, uint32_t keepalive_ms)
{
	uint64_t limit = 3 * (uint64_t)keepalive_ms * 1000;
	uint64_t since = r->last_rx_us ? r->last_rx_us : r->started_us;

	/* Downstream loss from our own counters over the interval just ended. */
	if (r->down_any && r->rx.top > r->down_top)
		loss_smooth(&r->loss_down, loss_fraction((int64_t)(r->rx.top - r->down_top),
							 (uint32_t)(r->rx.count - r->down_count)));
	if (r->rx.any) {
		r->down_any = true;
		r->down_top = r->rx.top;
		r->down_count = r->rx.count;
	}

	if (limit < 1000000)
		limit = 1000000;
	if (r->path != CL_PATH_DOWN && now_us - since >= limit)
		path_set(r, CL_PATH_DOWN);

	/* Keepalives answered while every game packet from the proxy is dropped here. */
	if (now_us - r->iv_start_us >= DEGRADED_US) {
		if (r->path == CL_PATH_UP && r->iv_data_drop && !r->iv_data_ok)
			path_set(r, CL_PATH_DEGRADED);
		else if (r->path == CL_PATH_DEGRADED && (r->iv_data_ok || !r->iv_data_drop))
			path_set(r, CL_PATH_UP);
		r->iv_data_ok = r->iv_data_drop = 0;
		r->iv_start_us = now_us;
	}

	if (!r->keyed || r->hs.state != LS_HSS_IDLE)
		return;
	/* A silent proxy may have lost our lifetime (restarted, session re-added): a
	 * handshake finds out, and costs nothing if it had not. A lifetime near its end
	 * is renewed before the receivers refuse it (1.8). */
	if (r->path == CL_PATH_DOWN ||
	    (r->lv.cur.live && now_us - r->lv.cur.started_us >= LS_LIFE_REKEY_US))
		ls_hs_start(&r->hs, now_us);
}
