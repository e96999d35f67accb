/* The load generator of the forwarding-rate benchmark: sends tunnel datagrams (20-byte
 * header, destination DST, then SIZE bytes of payload) to TO as fast as sendmmsg allows
 * for SECONDS. The same datagrams go to the proxy and to the reference reflector (which
 * strips the header), so both forward identical bytes.
 * Before blasting it waits up to --challenge-wait seconds for the proxy's address
 * challenge (a KEEPALIVE request) and echoes it, and it keeps answering any that come
 * later, as a real client would; the sink never replies, so this only matters for the
 * session to look like a real one.
 *   blast --to IP:PORT --dst IP:PORT [--seconds S] [--size B] [--challenge-wait S]
 * Prints: sent= seconds= pps= challenges= */
#include <poll.h>

#include "bench.h"

#define BATCH 32

static unsigned drain_challenges(int fd)
{
	uint8_t buf[LS_RX_BUF];
	unsigned answered = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
		answered += (unsigned)bench_answer_keepalive(fd, buf, (size_t)n);
	return answered;
}

int main(int argc, char **argv)
{
	struct sockaddr_in to, dst, self;
	int have_to = 0, have_dst = 0;
	double seconds = 5, size = 64, challenge_wait = 0;
	static uint8_t bufs[BATCH][LS_HDR_LEN + LS_MAX_PAYLOAD];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];

	for (int i = 1; i < argc; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			bench_die("%s: missing value", o);
		if (!strcmp(o, "--to")) {
			bench_parse_addr(v, &to);
			have_to = 1;
		} else if (!strcmp(o, "--dst")) {
			bench_parse_addr(v, &dst);
			have_dst = 1;
		} else if (!strcmp(o, "--seconds")) {
			seconds = bench_parse_num(o, v, 0.1, 3600);
		} else if (!strcmp(o, "--size")) {
			size = bench_parse_num(o, v, 0, LS_MAX_PAYLOAD);
		} else if (!strcmp(o, "--challenge-wait")) {
			challenge_wait = bench_parse_num(o, v, 0, 60);
		} else {
			bench_die("usage: blast --to IP:PORT --dst IP:PORT [--seconds S] [--size B] [--challenge-wait S]");
		}
	}
	if (!have_to || !have_dst)
		bench_die("blast: --to and --dst are required");

	int fd = bench_udp_socket(0);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0)
		bench_die("connect: %s", strerror(errno));
	socklen_t slen = sizeof(self);
	getsockname(fd, (struct sockaddr *)&self, &slen);

	uint16_t seq = 0;
	size_t len = LS_HDR_LEN + (size_t)size;
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		bench_data_hdr(bufs[i], 0, &self, &dst);
		memset(bufs[i] + LS_HDR_LEN, 'x', (size_t)size);
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = len;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	unsigned challenges = 0;
	if (challenge_wait > 0) {
		/* One packet opens the session; the challenge comes back at once. */
		bench_data_hdr(bufs[0], seq++, &self, &dst);
		(void)send(fd, bufs[0], len, 0);
		uint64_t until = bench_now_ns() + (uint64_t)(challenge_wait * 1e9);
		while (!challenges && bench_now_ns() < until) {
			struct pollfd pfd = { fd, POLLIN, 0 };

			if (poll(&pfd, 1, 10) > 0)
				challenges += drain_challenges(fd);
		}
		if (!challenges)
			fprintf(stderr, "blast: no address challenge within %.1f s\n", challenge_wait);
	}

	uint64_t sent = 0, start = bench_now_ns(), now = start;
	uint64_t stop = start + (uint64_t)(seconds * 1e9);
	while (now < stop) {
		for (int i = 0; i < BATCH; i++) {
			bufs[i][2] = (uint8_t)(seq >> 8);
			bufs[i][3] = (uint8_t)seq;
			seq++;
		}
		int n = sendmmsg(fd, msgs, BATCH, 0);
		if (n > 0)
			sent += (uint64_t)n;
		/* Reading is cheap next to 32 sends, and a late challenge must not wait. */
		if ((sent & 1023) < BATCH)
			challenges += drain_challenges(fd);
		now = bench_now_ns();
	}
	double el = (double)(now - start) / 1e9;
	printf("sent=%llu seconds=%.3f pps=%.0f challenges=%u\n", (unsigned long long)sent, el,
	       (double)sent / el, challenges);
	return 0;
}
