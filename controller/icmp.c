/* lightspeed-controller: the direct path. ICMP echo from the PC to the game server,
 * so that /routes can say what the tunnel gains or loses against going direct. A raw
 * socket needs CAP_NET_RAW; without it an unprivileged ping socket is tried (allowed
 * by net.ipv4.ping_group_range); without either the controller says so once and
 * carries on with the direct RTT unknown. Replies are checked (source, type, id,
 * sequence of a request we sent, checksum) before they count. */
#include "controller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "util.h"

#define ICMP_OUTSTANDING 16  /* requests remembered for matching */
#define ICMP_KEEP 16         /* RTTs the median is taken over */
#define ICMP_SILENT_AFTER 5  /* unanswered in a row: the server does not answer */
#define ICMP_READS_PER_WAKE 16
#define ICMP_PAYLOAD 16

struct icmp_probe {
	struct ctrl *c;
	int fd;
	bool raw;                /* raw socket (IP header in front) or ping socket */
	uv_poll_t poll;
	uv_timer_t timer;
	bool poll_on;
	uint16_t id, seq;
	uint8_t nonce[8];        /* in every payload, checked in every reply */
	struct {
		uint16_t seq;
		uint64_t sent_us;
		bool live;
	} out[ICMP_OUTSTANDING];
	uint32_t rtts[ICMP_KEEP];
	unsigned n_rtts, rtt_next;
	unsigned unanswered;     /* requests sent since the last reply */
	uint32_t target;         /* network order; 0: none yet */
	bool any_reply;
	bool logged_send_error;
	uint64_t bad_replies;
};

static uint16_t checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)(p[0] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t target_ip(struct icmp_probe *i)
{
	struct in_addr a;
	const char *gs;
	char host[LS_ADDRSTRLEN], *colon;

	if (i->c->conf.direct_target[0] && inet_pton(AF_INET, i->c->conf.direct_target, &a) == 1)
		return a.s_addr;
	gs = dplink_game_server(i->c->dp);
	if (!gs)
		return 0;
	snprintf(host, sizeof(host), "%s", gs);
	colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	return inet_pton(AF_INET, host, &a) == 1 ? a.s_addr : 0;
}

static void send_echo(struct icmp_probe *i)
{
	uint8_t pkt[8 + ICMP_PAYLOAD];
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint64_t now = ls_now_us();
	uint16_t seq = ++i->seq, sum;
	unsigned slot = seq % ICMP_OUTSTANDING;

	i->target = target_ip(i);
	if (!i->target)
		return;
	to.sin_addr.s_addr = i->target;
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = ICMP_ECHO;
	pkt[4] = (uint8_t)(i->id >> 8);
	pkt[5] = (uint8_t)i->id;
	pkt[6] = (uint8_t)(seq >> 8);
	pkt[7] = (uint8_t)seq;
	memcpy(pkt + 8, i->nonce, sizeof(i->nonce));
	memcpy(pkt + 16, &now, sizeof(now));
	sum = checksum(pkt, sizeof(pkt));
	pkt[2] = (uint8_t)(sum >> 8);
	pkt[3] = (uint8_t)sum;
	i->unanswered++;
	droute_icmp_sent(i->c, i->unanswered);
	i->out[slot].seq = seq;
	i->out[slot].sent_us = now;
	i->out[slot].live = true;
	if (sendto(i->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		if (!i->logged_send_error)
			ls_warn("direct path: ICMP echo to %s: %s", inet_ntoa(to.sin_addr),
				strerror(errno));
		i->logged_send_error = true;
	}
}

static void take_reply(struct icmp_probe *i, const uint8_t *buf, size_t n, const struct sockaddr_in *from)
{
	const uint8_t *icmp = buf;
	uint16_t id, seq;
	unsigned slot;
	uint64_t now = ls_now_us();

	if (i->raw) {
		size_t ihl;
		if (n < 20 || (buf[0] >> 4) != 4)
			goto bad;
		ihl = (size_t)(buf[0] & 0xf) * 4;
		if (ihl < 20 || n < ihl + 8)
			goto bad;
		icmp = buf + ihl;
		n -= ihl;
	}
	if (n < 8)
		goto bad;
	/* A raw socket sees every ICMP message to this host: only echo replies to us. */
	if (icmp[0] != ICMP_ECHOREPLY || icmp[1] != 0 || from->sin_addr.s_addr != i->target)
		return;
	id = (uint16_t)(icmp[4] << 8 | icmp[5]);
	seq = (uint16_t)(icmp[6] << 8 | icmp[7]);
	if (i->raw && id != i->id)
		return;
	if (n != 8 + ICMP_PAYLOAD || checksum(icmp, n) != 0 ||
	    memcmp(icmp + 8, i->nonce, sizeof(i->nonce)) != 0)
		goto bad;
	slot = seq % ICMP_OUTSTANDING;
	if (!i->out[slot].live || i->out[slot].seq != seq)
		return; /* late, duplicated or not ours */
	i->out[slot].live = false;
	i->rtts[i->rtt_next] = (uint32_t)(now - i->out[slot].sent_us);
	i->rtt_next = (i->rtt_next + 1) % ICMP_KEEP;
	if (i->n_rtts < ICMP_KEEP)
		i->n_rtts++;
	i->unanswered = 0;
	droute_icmp_reply(i->c, (uint32_t)(now - i->out[slot].sent_us));
	if (!i->any_reply)
		ls_info("direct path: %s answers ICMP echo (%.1f ms)", inet_ntoa(from->sin_addr),
			(now - i->out[slot].sent_us) / 1000.0);
	i->any_reply = true;
	return;
bad:
	i->bad_replies++;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct icmp_probe *i = p->data;
	uint8_t buf[1500];

	(void)events;
	if (status < 0)
		return;
	for (int k = 0; k < ICMP_READS_PER_WAKE; k++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(i->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			break;
		if (fl >= sizeof(from) && from.sin_family == AF_INET)
			take_reply(i, buf, (size_t)n, &from);
	}
}

static void on_timer(uv_timer_t *t)
{
	send_echo(t->data);
}

static int open_socket(struct icmp_probe *i)
{
	i->fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (i->fd >= 0) {
		i->raw = true;
		return 0;
	}
	/* The ping socket: the kernel fills in the id and gives us only our own replies. */
	i->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (i->fd >= 0) {
		i->raw = false;
		return 0;
	}
	return -1;
}

struct icmp_probe *icmp_open(struct ctrl *c)
{
	struct icmp_probe *i = calloc(1, sizeof(*i));

	if (!i)
		return NULL;
	i->c = c;
	i->fd = -1;
	if (!c->conf.icmp) {
		ls_info("direct path: not measured (direct icmp = false)");
		return i;
	}
	if (open_socket(i) < 0) {
		ls_warn("direct path: no ICMP socket (%s): the direct RTT stays unknown; run with "
			"CAP_NET_RAW or allow the group in net.ipv4.ping_group_range to measure it",
			strerror(errno));
		return i;
	}
	if (getrandom(i->nonce, sizeof(i->nonce), 0) != (ssize_t)sizeof(i->nonce))
		memset(i->nonce, 0x5a, sizeof(i->nonce));
	i->id = (uint16_t)(getpid() ^ (i->nonce[0] << 8 | i->nonce[1]));
	i->poll.data = i;
	i->timer.data = i;
	if (uv_poll_init(c->loop, &i->poll, i->fd) < 0 ||
	    uv_poll_start(&i->poll, UV_READABLE, on_readable) < 0) {
		ls_warn("direct path: cannot watch the ICMP socket: not measured");
		close(i->fd);
		i->fd = -1;
		return i;
	}
	i->poll_on = true;
	uv_timer_init(c->loop, &i->timer);
	uv_timer_start(&i->timer, on_timer, 200, c->conf.icmp_interval_ms);
	return i;
}

static void free_on_close(uv_handle_t *h)
{
	struct icmp_probe *i = h->data;

	if (i->fd >= 0)
		close(i->fd);
	free(i);
}

static void nothing(uv_handle_t *h)
{
	(void)h;
}

void icmp_close(struct icmp_probe *i)
{
	if (!i)
		return;
	if (!i->poll_on) {
		if (i->fd >= 0)
			close(i->fd);
		free(i);
		return;
	}
	uv_timer_stop(&i->timer);
	uv_close((uv_handle_t *)&i->timer, nothing);
	uv_poll_stop(&i->poll);
	uv_close((uv_handle_t *)&i->poll, free_on_close);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int64_t icmp_rtt_us(const struct icmp_probe *i, enum icmp_state *state)
{
	uint32_t v[ICMP_KEEP];

	if (!i || i->fd < 0) {
		*state = ICMP_UNAVAILABLE;
		return -1;
	}
	if (i->unanswered >= ICMP_SILENT_AFTER) {
		*state = ICMP_UNAVAILABLE;
		return -1;
	}
	if (!i->n_rtts) {
		*state = ICMP_UNKNOWN;
		return -1;
	}
	memcpy(v, i->rtts, i->n_rtts * sizeof(v[0]));
	qsort(v, i->n_rtts, sizeof(v[0]), cmp_u32);
	*state = ICMP_MEASURED;
	return v[(i->n_rtts - 1) / 2];
}
