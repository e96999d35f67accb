/* lightspeed-agent: ICMP echo to the game servers (icmp.h). */
#include "icmp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlmsg.h"
#include "log.h"
#include "quic.h"
#include "util.h"

#define BUCKETS 256
#define READ_BATCH 64
#define PAYLOAD 16  /* cookie (8) + send time (8) */

struct target {
	struct target *next;
	uint32_t ip;
	unsigned refs;
	uint16_t seq;
	uint32_t srtt_us;        /* 0: no sample yet */
	uint64_t last_reply_us;
};

struct icmp {
	uv_loop_t *loop;
	int fd;
	bool raw;                /* a raw socket (IP header in what we read) */
	uint16_t ident;
	uint8_t cookie[8];
	uint32_t interval_ms;
	uv_poll_t poll;
	uv_timer_t timer;
	unsigned handles;
	struct target *tab[BUCKETS];
	struct icmp_stats st;
	struct ls_hist hist;
};

static struct target **slot(struct icmp *m, uint32_t ip)
{
	return &m->tab[(ip ^ (ip >> 8) ^ (ip >> 16) ^ (ip >> 24)) & (BUCKETS - 1)];
}

static struct target *find(const struct icmp *m, uint32_t ip)
{
	for (struct target *t = *slot((struct icmp *)(uintptr_t)m, ip); t; t = t->next)
		if (t->ip == ip)
			return t;
	return NULL;
}

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void send_echo(struct icmp *m, struct target *t)
{
	uint8_t pkt[8 + PAYLOAD];
	uint64_t now = ls_now_us();
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(t->ip) };
	uint16_t c;

	t->seq++;
	pkt[0] = 8; /* echo request */
	pkt[1] = 0;
	pkt[2] = pkt[3] = 0;
	pkt[4] = (uint8_t)(m->ident >> 8);
	pkt[5] = (uint8_t)m->ident;
	pkt[6] = (uint8_t)(t->seq >> 8);
	pkt[7] = (uint8_t)t->seq;
	memcpy(pkt + 8, m->cookie, 8);
	for (int i = 0; i < 8; i++)
		pkt[16 + i] = (uint8_t)(now >> (56 - 8 * i));
	c = csum(pkt, sizeof(pkt));
	pkt[2] = (uint8_t)(c >> 8);
	pkt[3] = (uint8_t)c;
	if (sendto(m->fd, pkt, sizeof(pkt), MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) ==
	    (ssize_t)sizeof(pkt))
		m->st.sent++;
}

static void on_timer(uv_timer_t *h)
{
	struct icmp *m = h->data;

	for (int b = 0; b < BUCKETS; b++)
		for (struct target *t = m->tab[b]; t; t = t->next)
			send_echo(m, t);
}

static void on_reply(struct icmp *m, const uint8_t *p, size_t n, uint32_t from)
{
	uint64_t now = ls_now_us(), sent = 0;
	struct target *t;
	uint32_t rtt;

	/* An echo reply of ours: type 0, our cookie (the ping socket rewrites the id),
	 * a send time that is ours to have written. Anything else is someone else's. */
	if (n < 8 + PAYLOAD || p[0] != 0 || p[1] != 0)
		return;
	if (m->raw && (uint16_t)(p[4] << 8 | p[5]) != m->ident)
		return;
	if (memcmp(p + 8, m->cookie, 8) != 0)
		return;
	for (int i = 0; i < 8; i++)
		sent = sent << 8 | p[16 + i];
	if (sent > now || now - sent > 10 * 1000000ull)
		return;
	if (!(t = find(m, from)))
		return;
	rtt = (uint32_t)(now - sent);
	t->srtt_us = t->srtt_us ? (uint32_t)((7ull * t->srtt_us + rtt) / 8) : rtt;
	t->last_reply_us = now;
	m->st.replies++;
	ls_hist_add(&m->hist, rtt);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct icmp *m = p->data;
	uint8_t buf[1500];

	(void)events;
	if (status < 0) {
		/* libuv stops the poll on a socket error: take it and go on listening. */
		int e = 0;
		socklen_t el = sizeof(e);

		getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		uv_poll_start(p, UV_READABLE, on_readable);
		return;
	}
	for (int i = 0; i < READ_BATCH; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(m->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fl);
		size_t off = 0;

		if (n < 0)
			break;
		if (m->raw) {
			if (n < 20)
				continue;
			off = (size_t)(buf[0] & 0x0f) * 4;
			if (off < 20 || off > (size_t)n)
				continue;
		}
		on_reply(m, buf + off, (size_t)n - off, ntohl(from.sin_addr.s_addr));
	}
}

struct icmp *icmp_open(uv_loop_t *loop, uint32_t interval_ms)
{
	struct icmp *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->loop = loop;
	m->fd = -1;
	m->interval_ms = interval_ms;
	ls_hist_init(&m->hist);
	if (interval_ms == 0) {
		ls_info("ICMP measurement off (icmp_interval_ms = 0): the node's leg to game "
			"servers is not reported");
		return m;
	}
	ls_quic_random(&m->ident, sizeof(m->ident));
	ls_quic_random(m->cookie, sizeof(m->cookie));
	m->fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (m->fd >= 0) {
		m->raw = true;
	} else {
		int e = errno;

		m->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
		if (m->fd < 0) {
			ls_warn("no ICMP socket (%s; a raw socket needs CAP_NET_RAW, e.g. "
				"AmbientCapabilities=CAP_NET_RAW in the unit): the node's leg to "
				"game servers is not measured; everything else works",
				strerror(e));
			return m;
		}
	}
	uv_poll_init(loop, &m->poll, m->fd);
	m->poll.data = m;
	uv_poll_start(&m->poll, UV_READABLE, on_readable);
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	uv_timer_start(&m->timer, on_timer, interval_ms, interval_ms);
	m->handles = 2;
	return m;
}

static void handle_closed(uv_handle_t *h)
{
	struct icmp *m = h->data;

	if (--m->handles == 0) {
		close(m->fd);
		free(m);
	}
}

void icmp_close(struct icmp *m)
{
	if (!m)
		return;
	for (int b = 0; b < BUCKETS; b++)
		while (m->tab[b]) {
			struct target *t = m->tab[b];

			m->tab[b] = t->next;
			free(t);
		}
	if (m->handles == 0) {
		if (m->fd >= 0)
			close(m->fd);
		free(m);
		return;
	}
	uv_close((uv_handle_t *)&m->poll, handle_closed);
	uv_close((uv_handle_t *)&m->timer, handle_closed);
}

bool icmp_active(const struct icmp *m)
{
	return m->fd >= 0;
}

const char *icmp_mode(const struct icmp *m)
{
	return m->fd < 0 ? "off" : m->raw ? "raw" : "ping socket";
}

void icmp_ref(struct icmp *m, uint32_t ip)
{
	struct target *t = find(m, ip), **s;

	if (t) {
		t->refs++;
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return;
	t->ip = ip;
	t->refs = 1;
	s = slot(m, ip);
	t->next = *s;
	*s = t;
	m->st.targets++;
	/* The first sample at once: a new session wants its leg soon. */
	if (m->fd >= 0)
		send_echo(m, t);
}

void icmp_unref(struct icmp *m, uint32_t ip)
{
	struct target **pp = slot(m, ip);

	while (*pp && (*pp)->ip != ip)
		pp = &(*pp)->next;
	if (!*pp || --(*pp)->refs > 0)
		return;
	struct target *t = *pp;
	*pp = t->next;
	free(t);
	m->st.targets--;
}

uint32_t icmp_rtt_us(const struct icmp *m, uint32_t ip)
{
	const struct target *t = find(m, ip);
	uint64_t stale = 3ull * m->interval_ms * 1000u + 1000000u;

	if (!t || !t->srtt_us || ls_now_us() - t->last_reply_us > stale)
		return LS_CTL_RTT_NONE;
	return t->srtt_us;
}

void icmp_get_stats(const struct icmp *m, struct icmp_stats *st)
{
	*st = m->st;
	st->lost = m->st.sent > m->st.replies ? m->st.sent - m->st.replies : 0;
}

const struct ls_hist *icmp_hist(const struct icmp *m)
{
	return &m->hist;
}
