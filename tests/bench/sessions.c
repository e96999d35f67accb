/* The session load of the memory benchmark: COUNT UDP sockets on 127.0.0.1, each a
 * distinct client address and so (without auth) a distinct proxy session. Each sends a
 * tunnel packet to DST through the proxy, answers the proxy's address challenge, and
 * counts as ready once an echo has come back through the tunnel (proof the session
 * forwards both ways). Then every INTERVAL seconds each sends one more packet so no
 * session idles out, until HOLD seconds pass or the process is terminated.
 *   sessions --proxy IP:PORT --dst IP:PORT [--count N] [--interval S] [--hold S]
 *            [--ready-timeout S]
 * Prints once: ready=N count=N challenged=N replied=N seconds=S */
#include <sys/epoll.h>

#include "bench.h"

#define PAYLOAD 32

struct cl {
	int fd;
	uint16_t seq;
	uint8_t challenged, replied;
	struct sockaddr_in self;
};

static void send_data(struct cl *c, const struct sockaddr_in *dst)
{
	uint8_t buf[LS_HDR_LEN + PAYLOAD];

	bench_data_hdr(buf, c->seq++, &c->self, dst);
	memset(buf + LS_HDR_LEN, 's', PAYLOAD);
	(void)send(c->fd, buf, sizeof(buf), 0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in proxy, dst;
	int have_proxy = 0, have_dst = 0;
	double count = 1000, interval = 2, hold = 120, ready_timeout = 15;

	for (int i = 1; i < argc; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			bench_die("%s: missing value", o);
		if (!strcmp(o, "--proxy")) {
			bench_parse_addr(v, &proxy);
			have_proxy = 1;
		} else if (!strcmp(o, "--dst")) {
			bench_parse_addr(v, &dst);
			have_dst = 1;
		} else if (!strcmp(o, "--count")) {
			count = bench_parse_num(o, v, 1, 19000);
		} else if (!strcmp(o, "--interval")) {
			interval = bench_parse_num(o, v, 0.05, 60);
		} else if (!strcmp(o, "--hold")) {
			hold = bench_parse_num(o, v, 0, 3600);
		} else if (!strcmp(o, "--ready-timeout")) {
			ready_timeout = bench_parse_num(o, v, 0.1, 600);
		} else {
			bench_die("usage: sessions --proxy IP:PORT --dst IP:PORT [--count N] "
				  "[--interval S] [--hold S] [--ready-timeout S]");
		}
	}
	if (!have_proxy || !have_dst)
		bench_die("sessions: --proxy and --dst are required");
	bench_tie_to_parent();
	/* One descriptor per session: the soft limit (often 1024) is too small. */
	ls_raise_nofile();

	size_t n = (size_t)count;
	struct cl *cls = calloc(n, sizeof(*cls));
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!cls || ep < 0)
		bench_die("setup: %s", strerror(errno));
	for (size_t i = 0; i < n; i++) {
		struct cl *c = &cls[i];
		struct sockaddr_in a;
		socklen_t alen = sizeof(c->self);

		/* Default buffer sizes: 1,000 sockets carry one small packet each. */
		c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			bench_die("socket %zu: %s", i, strerror(errno));
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    connect(c->fd, (struct sockaddr *)&proxy, sizeof(proxy)) != 0 ||
		    getsockname(c->fd, (struct sockaddr *)&c->self, &alen) != 0)
			bench_die("socket %zu: %s", i, strerror(errno));
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
			bench_die("epoll_ctl: %s", strerror(errno));
	}

	uint64_t start = bench_now_ns(), next_round = start, end_ready = 0;
	size_t ready = 0, challenged = 0;
	int announced = 0;
	/* Until ready: resend every 200 ms to those not ready yet (the first echo is
	 * held back by the proxy until the address is validated). Then: every INTERVAL. */
	for (;;) {
		uint64_t now = bench_now_ns();

		if (!announced && (ready == n || now - start > (uint64_t)(ready_timeout * 1e9))) {
			end_ready = now;
			printf("ready=%zu count=%zu challenged=%zu replied=%zu seconds=%.3f\n", ready, n,
			       challenged, ready, (double)(end_ready - start) / 1e9);
			fflush(stdout);
			announced = 1;
			next_round = now + (uint64_t)(interval * 1e9);
		}
		if (announced && now - end_ready > (uint64_t)(hold * 1e9))
			break;
		if (now >= next_round) {
			for (size_t i = 0; i < n; i++)
				if (announced || !cls[i].replied)
					send_data(&cls[i], &dst);
			next_round = now + (uint64_t)((announced ? interval : 0.2) * 1e9);
		}
		struct epoll_event evs[256];
		int timeout_ms = (int)((next_round - now) / 1000000u) + 1;
		int k = epoll_wait(ep, evs, 256, timeout_ms);

		for (int e = 0; e < k; e++) {
			struct cl *c = &cls[evs[e].data.u64];
			uint8_t buf[LS_RX_BUF];
			ssize_t len;

			while ((len = recv(c->fd, buf, sizeof(buf), 0)) >= 0) {
				struct ls_pkt p;

				if (bench_answer_keepalive(c->fd, buf, (size_t)len)) {
					if (!c->challenged) {
						c->challenged = 1;
						challenged++;
					}
					/* Validated now: this packet's echo will come back. */
					if (!c->replied)
						send_data(c, &dst);
				} else if (ls_pkt_decode(buf, (size_t)len, &p) == LS_PE_OK &&
					   !(p.h.flags & (LS_F_KEEPALIVE | LS_F_FIN)) && !c->replied) {
					c->replied = 1;
					ready++;
				}
			}
		}
	}
	return 0;
}
