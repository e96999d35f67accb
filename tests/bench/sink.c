/* The receiving end of the forwarding-rate benchmark: counts the datagrams that arrive.
 * The window starts WARMUP seconds after the first datagram (the forwarder's queues and
 * caches settle) and lasts SECONDS; only datagrams received inside it count. It also
 * reports the kernel's drop count on its own socket (SO_RXQ_OVFL): drops here would
 * mean the sink, not the forwarder, was the bottleneck.
 *   sink [--seconds S] [--warmup S] [--first-timeout S]    prints "port N", then
 *   packets= seconds= pps= sink_drops= per_second=a,b,c */
#include <sys/time.h>

#include "bench.h"

#define BATCH 64

int main(int argc, char **argv)
{
	double seconds = 3, warmup = 1, first_timeout = 10;
	static uint8_t bufs[BATCH][LS_RX_BUF];
	static uint8_t ctl[BATCH][CMSG_SPACE(sizeof(uint32_t))];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];

	for (int i = 1; i < argc; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			bench_die("%s: missing value", o);
		if (!strcmp(o, "--seconds"))
			seconds = bench_parse_num(o, v, 0.1, 3600);
		else if (!strcmp(o, "--warmup"))
			warmup = bench_parse_num(o, v, 0, 60);
		else if (!strcmp(o, "--first-timeout"))
			first_timeout = bench_parse_num(o, v, 0.1, 3600);
		else
			bench_die("usage: sink [--seconds S] [--warmup S] [--first-timeout S]");
	}
	bench_tie_to_parent();
	int fd = bench_udp_socket(0);
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	/* A receive timeout lets the loop notice the end of the window when traffic stops. */
	struct timeval tv = { 0, 50000 };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	bench_announce_port(fd);

	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
	}
	uint64_t t0 = bench_now_ns(), first = 0, win_start = 0, win_end = 0;
	uint64_t counted = 0;
	uint32_t drops_now = 0, drops_at_start = 0;
	int nsec = (int)(seconds + 0.999);
	uint64_t *per = calloc((size_t)nsec + 1, sizeof(*per));

	if (!per)
		bench_die("out of memory");
	for (;;) {
		memset(msgs, 0, sizeof(msgs));
		for (int i = 0; i < BATCH; i++) {
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_control = ctl[i];
			msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
		}
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		uint64_t now = bench_now_ns();

		if (n > 0) {
			/* The drop counter is cumulative; the last message carries the newest. */
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[n - 1].msg_hdr); c;
			     c = CMSG_NXTHDR(&msgs[n - 1].msg_hdr, c))
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
					memcpy(&drops_now, CMSG_DATA(c), sizeof(drops_now));
			if (!first) {
				first = now;
				win_start = first + (uint64_t)(warmup * 1e9);
				win_end = win_start + (uint64_t)(seconds * 1e9);
				drops_at_start = drops_now;
			}
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			bench_die("recvmmsg: %s", strerror(errno));
		}
		if (!first) {
			if (now - t0 > (uint64_t)(first_timeout * 1e9))
				break;
			continue;
		}
		if (now >= win_end)
			break;
		if (now < win_start) {
			drops_at_start = drops_now;
			continue;
		}
		if (n > 0) {
			counted += (uint64_t)n;
			per[(now - win_start) / 1000000000u] += (uint64_t)n;
		}
	}
	double el = first ? seconds : 0;
	printf("packets=%llu seconds=%.3f pps=%.0f sink_drops=%u per_second=",
	       (unsigned long long)counted, el, el > 0 ? (double)counted / el : 0.0,
	       drops_now - drops_at_start);
	for (int i = 0; i < nsec; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)per[i]);
	printf("\n");
	free(per);
	return counted ? 0 : 1;
}
