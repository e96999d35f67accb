/* lightspeed-client: a route's tunnel headers, receive checks and measurement
 * (docs/protocol.md 1.3 and 1.4). */
#include "client_route.h"

#include <arpa/inet.h>
#include <string.h>

const char *const client_drop_names[CL_DROP__COUNT] = {
	[CL_DROP_MALFORMED] = "malformed",
	[CL_DROP_BAD_VERSION] = "bad_version",
	[CL_DROP_FEC_RANGE] = "fec_range",
	[CL_DROP_OVERSIZE] = "oversize",
	[CL_DROP_UNAUTHENTICATED] = "unauthenticated",
	[CL_DROP_UNKNOWN_SESSION] = "unknown_session",
	[CL_DROP_BAD_TAG] = "bad_tag",
	[CL_DROP_REPLAY] = "replay",
	[CL_DROP_UNEXPECTED_SOURCE] = "unexpected_source",
	[CL_DROP_UNKNOWN_FLOW] = "unknown_flow",
	[CL_DROP_SEND_ERROR] = "send_error",
};

enum client_drop client_drop_from_decode(int err)
{
	switch (err) {
	case LS_PE_VERSION:
		return CL_DROP_BAD_VERSION;
	case LS_PE_FEC_RANGE:
		return CL_DROP_FEC_RANGE;
	case LS_PE_OVERSIZE:
		return CL_DROP_OVERSIZE;
	default: /* LS_PE_SHORT, LS_PE_FLAGS */
		return CL_DROP_MALFORMED;
	}
}

const char *client_path_name(enum client_path p)
{
	switch (p) {
	case CL_PATH_UP:
		return "up";
	case CL_PATH_DOWN:
		return "down";
	default:
		return "unknown";
	}
}

/* A packet more than this older than the newest accepted one is stale (1.3). */
#define FRESHNESS_US 10000000
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
	ls_replay_init(&r->replay);
	ls_hist_init(&r->rtt);
	r->srtt_us = -1;
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

static void hdr_base(const struct client_route *r, struct ls_hdr *h, uint8_t flags)
{
	memset(h, 0, sizeof(*h));
	h->version = LS_VER_PLAIN;
	h->flags = r->keyed ? (uint8_t)(flags | LS_F_AUTH) : flags;
	h->token = r->token;
	h->session_id = r->session_id;
}

/* Encode h at buf, then sign header + payload_len bytes following it. */
static size_t finish(struct client_route *r, const struct ls_hdr *h, uint8_t *buf,
		     size_t payload_len)
{
	size_t n = ls_hdr_encode(h, buf) + payload_len;

	if (r->keyed) {
		ls_mac_tag(&r->mac, buf, n, buf + n);
		n += LS_TAG_LEN;
	}
	return n;
}

size_t client_route_wrap(struct client_route *r, struct ls_hdr *h, uint8_t *buf, size_t len,
			 uint64_t now_us, uint8_t **start)
{
	h->flags = r->keyed ? LS_F_AUTH : 0;
	h->token = r->token;
	h->session_id = r->session_id;
	h->seq = r->tx_seq++;
	h->ts_us = (uint32_t)now_us;
	*start = buf + CL_HEADROOM - ls_hdr_len(h->version, h->flags);
	return finish(r, h, *start, len);
}

/* A keepalive (ka set) or a FIN (ka NULL). */
static size_t control(struct client_route *r, uint8_t flags, uint16_t seq, uint32_t ts,
		      struct ls_keepalive *ka, uint8_t *buf)
{
	struct ls_hdr h;

	hdr_base(r, &h, flags);
	h.seq = seq;
	h.ts_us = ts;
	if (ka) {
		ls_rx_report(&r->rx, ka);
		ls_keepalive_to_hdr(ka, &h);
	}
	return finish(r, &h, buf, 0);
}

size_t client_route_ka_request(struct client_route *r, uint64_t now_us, uint8_t fec_k,
			       uint8_t fec_m, uint8_t *buf)
{
	struct ls_keepalive ka = { .kind = LS_KA_REQUEST, .fec_k = fec_k, .fec_m = fec_m };
	uint16_t seq = r->tx_seq++;
	uint32_t ts = (uint32_t)now_us;
	unsigned slot = r->ka_next++ % CL_KA_OUTSTANDING;

	r->ka[slot].seq = seq;
	r->ka[slot].ts = ts;
	r->ka[slot].live = true;
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
	uint16_t seq = r->tx_seq++;

	return control(r, LS_F_FIN, seq, (uint32_t)now_us, NULL, buf);
}

/* The first reply to one of our requests: forget the request so that a duplicate or
 * a recorded copy of the reply counts for nothing. */
static bool ka_match(struct client_route *r, uint16_t seq, uint32_t ts)
{
	for (unsigned i = 0; i < CL_KA_OUTSTANDING; i++) {
		if (r->ka[i].live && r->ka[i].seq == seq && r->ka[i].ts == ts) {
			r->ka[i].live = false;
			return true;
		}
	}
	return false;
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
		r->path = p;
		r->ev_path = true;
	}
}

enum client_rx client_route_receive(struct client_route *r, const uint8_t *buf,
				    const struct ls_pkt *p, uint64_t now_us,
				    enum client_drop *why)
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
			*why = rc == LS_PE_FEC_RANGE ? CL_DROP_FEC_RANGE : CL_DROP_MALFORMED;
			return CL_RX_DROP;
		}
		echo = ka.kind == LS_KA_REPLY;
	}

	if (h->flags & LS_F_AUTH) {
		if (!r->keyed || h->session_id != r->session_id) {
			*why = CL_DROP_UNKNOWN_SESSION;
			return CL_RX_DROP;
		}
		if (h->token != r->token || !ls_mac_verify(&r->mac, buf, p->signed_len, p->tag)) {
			*why = CL_DROP_BAD_TAG;
			return CL_RX_DROP;
		}
		/* Echoes take no seq of their own: they stay out of the window and are
		 * matched to our requests instead. */
		if (!echo) {
			if (!ls_replay_check(&r->replay, h->seq, &ext) ||
			    (clocked && r->ts_any &&
			     (int32_t)(h->ts_us - r->ts_newest) < -FRESHNESS_US) ||
			    (clocked && r->floor_any && (int32_t)(h->ts_us - r->ts_floor) <= 0)) {
				*why = CL_DROP_REPLAY;
				return CL_RX_DROP;
			}
			ls_replay_accept(&r->replay, ext);
			if (clocked && (!r->ts_any || (int32_t)(h->ts_us - r->ts_newest) > 0)) {
				r->ts_newest = h->ts_us;
				r->ts_any = true;
			}
			/* Once freshness alone rules out everything before the FIN, the
			 * floor retires (a 32-bit ts cannot be compared for ever). */
			if (clocked && r->floor_any &&
			    (int32_t)(h->ts_us - r->ts_floor) > FRESHNESS_US)
				r->floor_any = false;
		}
	} else if (r->keyed) {
		*why = CL_DROP_UNAUTHENTICATED;
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
		path_set(r, CL_PATH_UP);
		rtt_sample(r, now32 - h->ts_us);
		jitter_sample(r, 1, now32, h->ts_us);
		loss_up_report(r, &ka);
		return CL_RX_KA_REPLY;
	}

	ls_rx_note(&r->rx, ext);
	r->last_rx_us = now_us;
	if (clocked)
		jitter_sample(r, 0, now32, h->ts_us);
	if (h->flags & LS_F_FIN) {
		/* The proxy is going away. The route stays (fail-static): keepalives go on
		 * and the path comes back up with the proxy. A proxy that comes back holds
		 * the session afresh and counts its seq from the start again, so the
		 * window and the loss baselines start over too; the ts floor keeps
		 * anything sent before the FIN from being replayed into the new window. */
		ls_replay_init(&r->replay);
		r->rx.any = false;
		r->rx.top = 0;
		r->down_any = false;
		r->up_base.any = false;
		r->transit_any[0] = false;
		r->floor_any = r->ts_any;
		r->ts_floor = r->ts_newest;
		path_set(r, CL_PATH_DOWN);
		r->ev_fin = true;
		return CL_RX_CONSUMED;
	}
	path_set(r, CL_PATH_UP);
	return (h->flags & LS_F_KEEPALIVE) ? CL_RX_KA_REQUEST : CL_RX_DATA;
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
}
