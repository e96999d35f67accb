/* The floor of the latency benchmark: a null tunnel hop. Two of these in a row
 * (ping -> relay -> relay -> echo) make the same process hops as client and proxy, with
 * the same per-datagram system calls (epoll_wait, recvmmsg, sendmmsg), but no header,
 * no session lookup, no accounting. Tunnel minus this path is what the LightSpeed code
 * itself adds; this path minus direct is what any two-process relay costs here.
 * Datagrams from any peer on the listening socket go to TO from a connected upstream
 * socket; what comes back goes to the peer that sent last.
 *   relay --to IP:PORT        prints "port N" (the listening port) */
#include <sys/epoll.h>

#include "bench.h"

#define BATCH 32

int main(int argc, char **argv)
{
	struct sockaddr_in to, peer;
	static uint8_t bufs[BATCH][LS_RX_BUF];
	static struct sockaddr_in from[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	int have_peer = 0;

	if (argc != 3 || strcmp(argv[1], "--to"))
		bench_die("usage: relay --to IP:PORT");
	bench_parse_addr(argv[2], &to);
	bench_tie_to_parent();
	int down = bench_udp_socket(0), up = bench_udp_socket(0);
	if (connect(up, (struct sockaddr *)&to, sizeof(to)) != 0)
		bench_die("connect: %s", strerror(errno));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = down };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, down, &ev) != 0)
		bench_die("epoll: %s", strerror(errno));
	ev.data.fd = up;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, up, &ev) != 0)
		bench_die("epoll: %s", strerror(errno));
	bench_announce_port(down);

	for (;;) {
		struct epoll_event evs[2];
		int ne = epoll_wait(ep, evs, 2, -1);

		for (int e = 0; e < ne; e++) {
			int fd = evs[e].data.fd;

			memset(msgs, 0, sizeof(msgs));
			for (int i = 0; i < BATCH; i++) {
				iov[i].iov_base = bufs[i];
				iov[i].iov_len = sizeof(bufs[i]);
				msgs[i].msg_hdr.msg_iov = &iov[i];
				msgs[i].msg_hdr.msg_iovlen = 1;
				msgs[i].msg_hdr.msg_name = &from[i];
				msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			}
			int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
			if (n <= 0)
				continue;
			for (int i = 0; i < n; i++) {
				iov[i].iov_len = msgs[i].msg_len;
				if (fd == down) {
					peer = from[i];
					have_peer = 1;
					msgs[i].msg_hdr.msg_name = NULL;
					msgs[i].msg_hdr.msg_namelen = 0;
				} else {
					msgs[i].msg_hdr.msg_name = &peer;
					msgs[i].msg_hdr.msg_namelen = sizeof(peer);
				}
			}
			if (fd == up && !have_peer)
				continue;
			/* A refused send loses the datagram, as the network would. */
			(void)sendmmsg(fd == down ? up : down, msgs, (unsigned)n, 0);
		}
	}
}
