/* The reference forwarder for the forwarding-rate benchmark: the least work a UDP relay
 * can do in user space. It receives with recvmmsg in batches of 32 and sends every
 * datagram on with one sendmmsg to a fixed address, no parsing, no per-packet state.
 * --strip N drops the first N bytes of each datagram, so that fed the same 20-byte
 * tunnel header + payload datagrams as the proxy it puts the same bytes on the wire.
 *   reflector --to IP:PORT [--strip N]      prints "port N" (the port it listens on) */
#include "bench.h"

#define BATCH 32

int main(int argc, char **argv)
{
	struct sockaddr_in to;
	int have_to = 0;
	size_t strip = 0;
	static uint8_t bufs[BATCH][LS_RX_BUF];
	struct mmsghdr rx[BATCH], tx[BATCH];
	struct iovec rxv[BATCH], txv[BATCH];

	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			bench_die("usage: reflector --to IP:PORT [--strip N]");
		if (!strcmp(argv[i], "--to")) {
			bench_parse_addr(argv[i + 1], &to);
			have_to = 1;
		} else if (!strcmp(argv[i], "--strip")) {
			strip = (size_t)bench_parse_num(argv[i], argv[i + 1], 0, 64);
		} else {
			bench_die("usage: reflector --to IP:PORT [--strip N]");
		}
	}
	if (!have_to)
		bench_die("reflector: --to is required");
	bench_tie_to_parent();
	int fd = bench_udp_socket(0);
	bench_announce_port(fd);

	memset(rx, 0, sizeof(rx));
	memset(tx, 0, sizeof(tx));
	for (int i = 0; i < BATCH; i++) {
		rxv[i].iov_base = bufs[i];
		rxv[i].iov_len = sizeof(bufs[i]);
		rx[i].msg_hdr.msg_iov = &rxv[i];
		rx[i].msg_hdr.msg_iovlen = 1;
		txv[i].iov_base = bufs[i] + strip;
		tx[i].msg_hdr.msg_iov = &txv[i];
		tx[i].msg_hdr.msg_iovlen = 1;
		tx[i].msg_hdr.msg_name = &to;
		tx[i].msg_hdr.msg_namelen = sizeof(to);
	}
	for (;;) {
		/* MSG_WAITFORONE: block for the first datagram, then take what is queued. */
		int n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			bench_die("recvmmsg: %s", strerror(errno));
		}
		int m = 0;
		for (int i = 0; i < n; i++) {
			if (rx[i].msg_len < strip)
				continue;
			txv[m].iov_base = bufs[i] + strip;
			txv[m].iov_len = rx[i].msg_len - strip;
			m++;
		}
		for (int off = 0; off < m;) {
			int s = sendmmsg(fd, tx + off, (unsigned)(m - off), 0);

			if (s <= 0) {
				/* Dropped like a full queue would drop it; keep forwarding. */
				if (s < 0 && errno == EINTR)
					continue;
				break;
			}
			off += s;
		}
	}
}
