/* lightspeed-client: keepalive measurement of one way to a peer (docs/protocol.md 1.4,
 * 1.9). */
#include "client_path.h"

#include <string.h>

/* Game packets dropped with none accepted over this long: the way is degraded. */
#define DEGRADED_US 1000000
/* A transit-time step this large is a clock restart on the peer, not jitter: the
 * estimator starts over from the next packet instead of remembering a spike. */
#define TRANSIT_STEP_MAX_US 10000000
/* Smoothing: RTT as TCP's SRTT (RFC 6298, 1/8); loss a little faster (1/4) because
 * each report already averages a whole interval. */
#define SRTT_SHIFT 3
#define LOSS_WEIGHT 0.25
/* Requests settled (answered or missed) before a round-trip loss sample, and packets
 * sent one way before an upstream loss sample of that way (1.9): fewer make a sample
 * too coarse to tell 10% from nothing. */
#define RT_SAMPLE 16
#define WAY_SAMPLE 32

const char *client_route_state_name(enum client_pstate p)
{
	return p == CL_PATH_DOWN ? "down" : p == CL_PATH_UNKNOWN ? "unknown" : "up";
}

const char *client_path_name(enum client_pstate p)
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

void client_meas_init(struct client_meas *m, uint64_t now_us)
{
	memset(m, 0, sizeof(*m));
	m->iv_start_us = now_us;
	ls_hist_init(&m->rtt);
	m->srtt_us = -1;
	m->rtt_min_us = -1;
	m->loss_up = -1;
	m->loss_down = -1;
	m->state = CL_PATH_UNKNOWN;
}

void client_meas_request(struct client_meas *m, uint16_t seq, uint32_t ts, uint32_t sent,
			 uint64_t now_us)
{
	unsigned slot = m->ka_next++ % CL_KA_OUTSTANDING;

	/* A request pushed out of the ring unanswered was lost (or is too late to count). */
	if (m->ka[slot].live)
		m->rt_req++;
	m->ka[slot].seq = seq;
	m->ka[slot].ts = ts;
	m->ka[slot].live = true;
	m->ka[slot].sent_us = now_us;
	m->ka[slot].sent = sent;
	m->keepalives_sent++;
}

bool client_meas_awaits(const struct client_meas *m, uint16_t seq, uint32_t ts)
{
	for (unsigned i = 0; i < CL_KA_OUTSTANDING; i++)
		if (m->ka[i].live && m->ka[i].seq == seq && m->ka[i].ts == ts)
			return true;
	return false;
}

void client_meas_set(struct client_meas *m, enum client_pstate s)
{
	if (m->state != s) {
		if ((m->state == CL_PATH_DOWN) != (s == CL_PATH_DOWN) && m->state != CL_PATH_UNKNOWN)
			m->flips++;
		m->state = s;
		m->ev_path = true;
	}
}

void client_meas_alive(struct client_meas *m)
{
	if (m->state != CL_PATH_DEGRADED)
		client_meas_set(m, CL_PATH_UP);
}

void client_meas_data(struct client_meas *m, bool ok)
{
	if (ok) {
		m->iv_data_ok++;
		client_meas_set(m, CL_PATH_UP);
	} else {
		m->iv_data_drop++;
	}
}

/* RFC 3550 6.4.1 interarrival jitter, in the integer form of its appendix A.8. A
 * difference is only taken between two packets stamped by the same clock: the peer's
 * data carries its clock, echoes carry ours (their transit is the RTT), so an idle
 * way is still measured by its keepalives. */
static void jitter_sample(struct client_meas *m, int domain, uint32_t now32, uint32_t ts)
{
	int32_t transit = (int32_t)(now32 - ts);

	if (m->transit_any[domain]) {
		int64_t d = (int64_t)transit - m->transit[domain];
		if (d < 0)
			d = -d;
		if (d <= TRANSIT_STEP_MAX_US) {
			int64_t j = m->jitter16;
			j += d - ((j + 8) >> 4);
			m->jitter16 = j < 0 ? 0 : (uint32_t)(j > UINT32_MAX ? UINT32_MAX : j);
			m->jitter_any = true;
		}
	}
	m->transit[domain] = transit;
	m->transit_any[domain] = true;
}

void client_meas_heard(struct client_meas *m, uint32_t ts, bool peer_clock, uint64_t now_us)
{
	m->last_rx_us = now_us;
	if (peer_clock)
		jitter_sample(m, 0, (uint32_t)now_us, ts);
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

static void up_sample(struct client_meas *m, uint32_t expected, uint32_t received, uint8_t burst)
{
	loss_smooth(&m->loss_up, loss_fraction(expected, received));
	m->up_sample = true;
	m->up_expected = expected;
	m->up_received = received;
	m->up_burst = burst;
}

/* Upstream loss from the peer's counters in a reply (RTCP style: growth of the highest
 * seq against growth of the count between two reports), kept for the FEC policy too. */
static void loss_up_report(struct client_meas *m, const struct ls_keepalive *ka)
{
	uint32_t expected, received;

	if (ls_rx_growth(&m->up_base, ka, &expected, &received))
		up_sample(m, expected, received, ka->burst);
}

/* The same for one way of several (1.9): the peer counted what came this way (16 bits),
 * we know what we sent this way up to the request. */
static void loss_up_way(struct client_meas *m, uint16_t path_rx, uint32_t sent)
{
	if (m->up_way_any) {
		uint32_t expected = sent - m->up_sent;
		uint32_t received = (uint16_t)(path_rx - m->up_rx16);

		/* Reordering across two reports evens out; more than 65535 in between
		 * cannot be told apart and is no sample. */
		if (expected && expected < 0x10000) {
			if (received > expected)
				received = expected;
			m->way_exp += expected;
			m->way_rcv += received;
		}
		if (m->way_exp >= WAY_SAMPLE) {
			up_sample(m, m->way_exp, m->way_rcv, 0);
			m->way_exp = m->way_rcv = 0;
		}
	}
	m->up_way_any = true;
	m->up_rx16 = path_rx;
	m->up_sent = sent;
}

static void rtt_sample(struct client_meas *m, uint32_t rtt)
{
	ls_hist_add(&m->rtt, rtt);
	if (m->rtt_min_us < 0 || rtt < m->rtt_min_us)
		m->rtt_min_us = rtt;
	if (m->srtt_us < 0)
		m->srtt_us = rtt;
	else
		m->srtt_us += ((int64_t)rtt - m->srtt_us) / (1 << SRTT_SHIFT);
	if (m->n_ev_rtt < CL_RTT_PENDING)
		m->ev_rtt[m->n_ev_rtt++] = rtt;
}

bool client_meas_reply(struct client_meas *m, const struct ls_hdr *h,
		       const struct ls_keepalive *ka, bool per_way, uint64_t now_us)
{
	uint32_t now32 = (uint32_t)now_us;

	/* Only the first reply to a request we sent counts, for RTT and for the way's
	 * state too: a recorded reply must not keep a dead way up. */
	for (unsigned i = 0; i < CL_KA_OUTSTANDING; i++) {
		if (!m->ka[i].live || m->ka[i].seq != h->seq || m->ka[i].ts != h->ts_us)
			continue;
		m->ka[i].live = false;
		m->replies++;
		m->rt_rep++;
		m->rt_req++;
		if (m->ka[i].sent_us > m->answered_sent_us)
			m->answered_sent_us = m->ka[i].sent_us;
		m->missed = 0;
		m->last_rx_us = now_us;
		client_meas_alive(m);
		rtt_sample(m, now32 - h->ts_us);
		jitter_sample(m, 1, now32, h->ts_us);
		if (per_way)
			loss_up_way(m, ka->path_rx, m->ka[i].sent);
		else
			loss_up_report(m, ka);
		return true;
	}
	return false;
}

/* How long a keepalive may wait for its answer before it counts as missed. */
static uint64_t answer_deadline_us(const struct client_meas *m)
{
	uint64_t srtt, j, d;

	if (m->srtt_us < 0)
		return 1000000;
	srtt = (uint64_t)m->srtt_us;
	j = 4 * (uint64_t)(m->jitter16 >> 4);
	/* 2.5 RTT in all: a step up of the way's delay by up to about that much (plus
	 * the 2 intervals before the third miss) is a slower way, not a dead one. */
	d = srtt * 3 / 2;
	if (j > d)
		d = j;
	if (d < 5000)
		d = 5000;
	return srtt + d;
}

uint64_t client_meas_watch(struct client_meas *m, uint64_t now_us)
{
	uint64_t d = answer_deadline_us(m), next = 0;
	uint32_t missed = 0;

	for (unsigned i = 0; i < CL_KA_OUTSTANDING; i++) {
		if (!m->ka[i].live || m->ka[i].sent_us <= m->answered_sent_us)
			continue;
		if (now_us >= m->ka[i].sent_us + d)
			missed++;
		else if (!next || m->ka[i].sent_us + d < next)
			next = m->ka[i].sent_us + d;
	}
	/* Missed keeps growing while the peer is silent: requests older than the ring
	 * were missed too. */
	if (missed >= CL_KA_OUTSTANDING && m->missed >= missed)
		missed = m->missed;
	m->missed = missed;
	if (missed >= 3 && m->state != CL_PATH_DOWN)
		client_meas_set(m, CL_PATH_DOWN);
	return next;
}

/* Round-trip loss from replies against requests (own false): the requests the ring
 * pushed out unanswered, and the answered ones, over RT_SAMPLE or more; the downstream
 * share of it is what the upstream loss does not explain. */
static void loss_down_rt(struct client_meas *m)
{
	double rt, up, down;

	if (m->rt_req < RT_SAMPLE)
		return;
	rt = loss_fraction(m->rt_req, m->rt_rep);
	up = m->loss_up < 0 ? 0 : m->loss_up;
	down = up >= 1 ? 0 : 1.0 - (1.0 - rt) / (1.0 - up);
	loss_smooth(&m->loss_down, down < 0 ? 0 : down);
	m->rt_req = m->rt_rep = 0;
}

void client_meas_interval(struct client_meas *m, uint64_t now_us, uint32_t interval_ms,
			  uint64_t since_us, const struct ls_rx_count *rx)
{
	uint64_t limit = 3 * (uint64_t)interval_ms * 1000;
	uint64_t since = m->last_rx_us ? m->last_rx_us : since_us;

	if (!rx) {
		loss_down_rt(m);
	} else {
		/* Downstream loss from our own counters over the interval just ended. */
		if (m->down_any && rx->top > m->down_top)
			loss_smooth(&m->loss_down,
				    loss_fraction((int64_t)(rx->top - m->down_top),
						  (uint32_t)(rx->count - m->down_count)));
		if (rx->any) {
			m->down_any = true;
			m->down_top = rx->top;
			m->down_count = rx->count;
		}
	}

	if (limit < 1000000)
		limit = 1000000;
	if (m->state != CL_PATH_DOWN && now_us - since >= limit)
		client_meas_set(m, CL_PATH_DOWN);

	/* Keepalives answered while every game packet from the peer is dropped here. */
	if (now_us - m->iv_start_us >= DEGRADED_US) {
		if (m->state == CL_PATH_UP && m->iv_data_drop && !m->iv_data_ok)
			client_meas_set(m, CL_PATH_DEGRADED);
		else if (m->state == CL_PATH_DEGRADED && (m->iv_data_ok || !m->iv_data_drop))
			client_meas_set(m, CL_PATH_UP);
		m->iv_data_ok = m->iv_data_drop = 0;
		m->iv_start_us = now_us;
	}
}
