/* A minimal UDP echo server (the "game server" of the benchmarks): every datagram goes
 * straight back to its sender. Plain blocking recvfrom/sendto: one datagram in flight at
 * a time is the latency case, and nothing here should add more than the kernel does.
 *   echo [PORT]      binds 127.0.0.1:PORT (default 0 = any), prints "port N" */
#include "bench.h"

int main(int argc, char **argv)
{
	int64_t port = 0;
	uint8_t buf[LS_RX_BUF];

	if (argc > 2 || (argc == 2 && ls_parse_i64(argv[1], 0, 65535, &port) != 0))
		bench_die("usage: echo [PORT]");
	bench_tie_to_parent();
	int fd = bench_udp_socket((uint16_t)port);
	bench_announce_port(fd);
	for (;;) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			bench_die("recvfrom: %s", strerror(errno));
		}
		/* A full socket buffer on the other side is the sender's problem, not ours. */
		(void)sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
	}
}
